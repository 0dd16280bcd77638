//! `photobulk env`: which photo stores this machine can reach — on-premises AD (LDAP bind),
//! Exchange Online / Entra ID (Graph sign-in and a user listing), both (hybrid) or neither —
//! and why, per side. The probes are `photobulk_engine::environment`'s; the LDAP options are
//! `photobulk ad`'s, the Graph options `photobulk graph`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use photobulk_engine::environment::{
    probe_directory_with, probe_graph, Environment, EnvironmentReport, SideProbe,
};

use crate::{ad, graph};

/// Both sides' connection options: `photobulk ad`'s for LDAP, `photobulk graph`'s for Graph,
/// whose CA file is `--graph-ca-file` here (LDAP has `--ca-file`). Also used by
/// `sync-hd-to-ad`.
#[derive(clap::Args, Debug)]
pub(crate) struct BothSides {
    #[command(flatten)]
    pub(crate) ad: ad::ConnArgs,
    #[command(flatten)]
    pub(crate) graph: graph::GraphConnArgs,
    /// Trust this PEM CA bundle for Graph instead of the system roots
    #[arg(long, value_name = "PATH")]
    pub(crate) graph_ca_file: Option<PathBuf>,
}

impl BothSides {
    pub(crate) fn graph_client(&self) -> anyhow::Result<photobulk_graph::GraphClient> {
        graph::connect(&self.graph, self.graph_ca_file.as_deref())
    }
}

/// Detect on-premises, cloud or hybrid.
#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    #[command(flatten)]
    conn: BothSides,
    /// Seconds allowed for each side's probe
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    probe_timeout: u64,
}

/// What the LDAP side will reach, when it is configured: --server, or a DC found in DNS for
/// --domain, or (signing in as the current user) for the domain of USERDNSDOMAIN or the
/// Kerberos ticket.
fn ldap_target(conn: &ad::ConnArgs) -> Option<String> {
    if let Some(url) = &conn.server {
        return Some(url.clone());
    }
    if let Some(d) = &conn.domain {
        return Some(format!("a domain controller of {d} (DNS)"));
    }
    let current_user = conn.bind.is_none() && conn.auth != ad::AuthArg::Anonymous;
    let ticket = photobulk_directory::kerberos::current_ticket()
        .ok()
        .flatten();
    let domain =
        photobulk_directory::locate::default_domain(ticket.as_ref().and_then(|t| t.realm()))
            .filter(|(_, source)| *source != "the DNS search domain");
    match (current_user, domain) {
        (true, Some((d, _))) => Some(format!("a domain controller of {d} (DNS)")),
        _ => None,
    }
}

pub async fn run(args: EnvArgs) -> anyhow::Result<ExitCode> {
    let limit = Duration::from_secs(args.probe_timeout.max(1));
    let on_premises = async {
        match ldap_target(&args.conn.ad) {
            Some(what) => probe_directory_with(&what, ad::connect(&args.conn.ad), limit).await,
            None => SideProbe::not_configured("LDAP"),
        }
    };
    let cloud = async {
        if !args.conn.graph.configured() {
            return SideProbe::not_configured("Graph");
        }
        match args.conn.graph_client() {
            Ok(g) => probe_graph(&g, limit).await,
            Err(e) => SideProbe {
                configured: true,
                ok: false,
                detail: format!("Graph: {e:#}"),
                elapsed_ms: 0,
                server_kind: None,
                naming_context: None,
                users: None,
            },
        }
    };
    let (on_premises, cloud) = tokio::join!(on_premises, cloud);
    let report = EnvironmentReport::from_probes(on_premises, cloud);
    if args.conn.ad.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verdict = match report.environment {
            Environment::OnPremises => "on-premises (Active Directory only)",
            Environment::Cloud => "cloud (Exchange Online / Entra ID only)",
            Environment::Hybrid => "hybrid (Active Directory and Exchange Online)",
            Environment::None => "none (neither side is reachable)",
        };
        println!("environment: {verdict}");
        println!("  on-premises: {}", report.on_premises.detail);
        println!("  cloud: {}", report.cloud.detail);
    }
    Ok(if report.environment == Environment::None {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
