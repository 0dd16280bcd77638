//! Which photo stores this run can reach, as the seeds' importer decides it: on-premises only
//! (an AD domain controller answers an LDAP bind), cloud only (Graph gives a token and lists
//! users), hybrid (both), or none.
//!
//! Both sides are probed at once, each under its own time limit, and each reports why it is or
//! is not usable, so an administrator sees "LDAP bind ok to ldaps://dc1 (ActiveDirectory,
//! DC=contoso,DC=com)" or "Graph: sign-in failed (HTTP 401, invalid_client): …" rather than a
//! bare verdict.
//!
//! The JSON form ([`EnvironmentReport`], also what the sidecar's `initialize` carries):
//!
//! ```json
//! {"environment":"hybrid",
//!  "on_premises":{"configured":true,"ok":true,"detail":"LDAP bind ok to ldaps://127.0.0.5:636 as CN=Administrator,CN=Users,DC=photobulk,DC=test (simple bind over TLS) (samba, DC=photobulk,DC=test)",
//!                 "elapsed_ms":41,"server_kind":"samba","naming_context":"DC=photobulk,DC=test","users":null},
//!  "cloud":{"configured":true,"ok":true,"detail":"Graph token ok, tenant has 12 users",
//!           "elapsed_ms":18,"server_kind":null,"naming_context":null,"users":12}}
//! ```
//!
//! `environment` is `on_premises`, `cloud`, `hybrid` or `none`. For the cloud side, `users` is
//! the size of the first page of `GET /users?$top=999`; with more pages the detail says "at
//! least 999".

use std::future::Future;
use std::time::{Duration, Instant};

use photobulk_directory::{ConnectOptions, Credentials, Directory};
use photobulk_graph::GraphClient;
use serde::{Deserialize, Serialize};

/// Where photos can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Only the AD domain controller answers.
    OnPremises,
    /// Only Microsoft Graph answers.
    Cloud,
    /// Both.
    Hybrid,
    /// Neither (or neither is configured).
    None,
}

impl Environment {
    /// From whether each side is usable.
    pub fn from_sides(on_premises: bool, cloud: bool) -> Self {
        match (on_premises, cloud) {
            (true, true) => Environment::Hybrid,
            (true, false) => Environment::OnPremises,
            (false, true) => Environment::Cloud,
            (false, false) => Environment::None,
        }
    }
}

/// What probing one side found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideProbe {
    /// Settings for this side were given.
    pub configured: bool,
    /// The side answered and accepted the credentials.
    pub ok: bool,
    /// Why, in words.
    pub detail: String,
    pub elapsed_ms: u64,
    /// On-premises: what the rootDSE says the server is (`active_directory`, `samba`, …).
    pub server_kind: Option<String>,
    /// On-premises: the search base in use (defaultNamingContext unless set).
    pub naming_context: Option<String>,
    /// Cloud: users on the first page of `GET /users` (up to 999).
    pub users: Option<usize>,
}

impl SideProbe {
    /// A side with no settings (`what`: "LDAP" or "Graph").
    pub fn not_configured(what: &str) -> Self {
        SideProbe {
            configured: false,
            ok: false,
            detail: format!("{what}: not configured"),
            elapsed_ms: 0,
            server_kind: None,
            naming_context: None,
            users: None,
        }
    }

    fn failed(detail: String, started: Instant) -> Self {
        SideProbe {
            configured: true,
            ok: false,
            detail,
            elapsed_ms: elapsed_ms(started),
            server_kind: None,
            naming_context: None,
            users: None,
        }
    }
}

/// Both sides and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentReport {
    pub environment: Environment,
    pub on_premises: SideProbe,
    pub cloud: SideProbe,
}

/// How to reach the domain controller.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    pub connect: ConnectOptions,
    pub credentials: Credentials,
}

/// Probe whatever is given, both at once, each within `limit` (a side that takes longer is
/// reported as not answering in time).
pub async fn detect(
    directory: Option<&DirectorySettings>,
    graph: Option<&GraphClient>,
    limit: Duration,
) -> EnvironmentReport {
    let (on_premises, cloud) = tokio::join!(
        async {
            match directory {
                Some(d) => probe_directory(d, limit).await,
                None => SideProbe::not_configured("LDAP"),
            }
        },
        async {
            match graph {
                Some(g) => probe_graph(g, limit).await,
                None => SideProbe::not_configured("Graph"),
            }
        }
    );
    EnvironmentReport::from_probes(on_premises, cloud)
}

impl EnvironmentReport {
    /// The verdict for two probes made by the caller (e.g. with its own way to connect:
    /// [`probe_directory_with`]).
    pub fn from_probes(on_premises: SideProbe, cloud: SideProbe) -> Self {
        EnvironmentReport {
            environment: Environment::from_sides(on_premises.ok, cloud.ok),
            on_premises,
            cloud,
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, f).await.ok()
}

/// Connect, bind and read the rootDSE, within `limit`.
pub async fn probe_directory(d: &DirectorySettings, limit: Duration) -> SideProbe {
    let mut opts = d.connect.clone();
    opts.connect_timeout = opts.connect_timeout.min(limit);
    opts.timeout = opts.timeout.min(limit);
    probe_directory_with(
        &d.connect.url,
        Directory::connect(&opts, &d.credentials),
        limit,
    )
    .await
}

/// [`probe_directory`] with the caller's own connect (bind and rootDSE read), e.g. one that
/// reads the password the way the CLI does; `url` is for the report.
pub async fn probe_directory_with<E: std::fmt::Display>(
    url: &str,
    connect: impl Future<Output = Result<Directory, E>>,
    limit: Duration,
) -> SideProbe {
    let started = Instant::now();
    let dir = match within(limit, connect).await {
        None => {
            return SideProbe::failed(
                format!("LDAP: no answer from {url} within {} ms", limit.as_millis()),
                started,
            )
        }
        Some(Err(e)) => return SideProbe::failed(format!("LDAP: {url}: {e}"), started),
        Some(Ok(dir)) => dir,
    };
    let kind = serde_json::to_value(dir.server().kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    let base = dir.base().ok().map(str::to_string);
    // The URL actually used (a DC found in DNS has its own), and who we are bound as.
    let detail = format!(
        "LDAP bind ok to {} as {} ({}, {})",
        dir.url(),
        dir.signed_in(),
        kind.as_deref().unwrap_or("unknown server"),
        base.as_deref().unwrap_or("no naming context")
    );
    // The connection was only for the probe.
    let _ = within(limit, dir.unbind()).await;
    SideProbe {
        configured: true,
        ok: true,
        detail,
        elapsed_ms: elapsed_ms(started),
        server_kind: kind,
        naming_context: base,
        users: None,
    }
}

/// Get a token and read the first page of users, within `limit`.
pub async fn probe_graph(g: &GraphClient, limit: Duration) -> SideProbe {
    let started = Instant::now();
    let probe = async {
        g.sign_in().await?;
        g.users_page(999).await
    };
    match within(limit, probe).await {
        None => SideProbe::failed(
            format!("Graph: no answer within {} ms", limit.as_millis()),
            started,
        ),
        Some(Err(e)) => SideProbe::failed(format!("Graph: {e}"), started),
        Some(Ok((users, more))) => SideProbe {
            configured: true,
            ok: true,
            detail: if more {
                format!("Graph token ok, tenant has at least {} users", users.len())
            } else {
                format!("Graph token ok, tenant has {} users", users.len())
            },
            elapsed_ms: elapsed_ms(started),
            server_kind: None,
            naming_context: None,
            users: Some(users.len()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_from_sides() {
        assert_eq!(Environment::from_sides(true, true), Environment::Hybrid);
        assert_eq!(
            Environment::from_sides(true, false),
            Environment::OnPremises
        );
        assert_eq!(Environment::from_sides(false, true), Environment::Cloud);
        assert_eq!(Environment::from_sides(false, false), Environment::None);
        assert_eq!(
            serde_json::to_value(Environment::OnPremises).expect("json"),
            "on_premises"
        );
    }

    #[tokio::test]
    async fn nothing_configured_is_none() {
        let r = detect(None, None, Duration::from_secs(1)).await;
        assert_eq!(r.environment, Environment::None);
        assert!(!r.on_premises.configured && !r.cloud.configured);
        assert_eq!(r.cloud.detail, "Graph: not configured");
    }
}
