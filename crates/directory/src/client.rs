//! The connection: TLS, bind, rootDSE, lookups, paged listings, photo reads and writes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, StdStream};
use serde::Serialize;

use crate::backup::{AdSubject, BackupReason, BackupRecord, BackupStore};
use crate::error::{map_ldap, map_rc};
use crate::filter::{escape_filter_value, user_filter, Lookup};
use crate::kerberos::{self, Ticket};
use crate::locate::{DomainController, Locator};
use crate::{DirectoryError, MAX_PHOTO_BYTES, PHOTO_ATTR};

/// A password that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    /// The secret itself, for the bind request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How to authenticate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// No bind (rootDSE reads; most directories allow little else).
    Anonymous,
    /// Simple bind: a DN, a UPN (`admin@example.com`) or `DOMAIN\user` on AD, and a password.
    Simple { bind: String, password: Password },
    /// Kerberos (SASL GSSAPI) as the current user: the ticket cache (`kinit`, `KRB5CCNAME`) on
    /// Unix, the logon session through SSPI on Windows. The service principal is
    /// `ldap/<host>@<REALM>`: `host` is `spn_host` when given, else the URL's host name, else
    /// (URL by IP address) the DC's `dnsHostName` from its rootDSE; the realm is the DC's
    /// domain in capitals (from `defaultNamingContext`). Plain `ldap://` is allowed: the SASL
    /// layer then signs and seals every message (what AD's "LDAP signing required" asks for).
    Kerberos { spn_host: Option<String> },
}

/// How to sign in, as asked for on the command line (`--auth`) or in `directory.connect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Kerberos when no bind name is given, else a simple bind with the password.
    #[default]
    Auto,
    /// Kerberos (SASL GSSAPI) as the current user.
    Kerberos,
    /// Simple bind: a bind name and a password, over TLS unless allowed otherwise.
    Simple,
    /// No bind (rootDSE reads).
    Anonymous,
}

impl AuthMethod {
    /// `auto`, `kerberos` (also `gssapi`, `negotiate`), `simple`, `anonymous` (also `none`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" | "default" => AuthMethod::Auto,
            "kerberos" | "gssapi" | "negotiate" => AuthMethod::Kerberos,
            "simple" | "basic" | "password" => AuthMethod::Simple,
            "anonymous" | "none" => AuthMethod::Anonymous,
            _ => return None,
        })
    }

    /// What `auto` means here: [`AuthMethod::Kerberos`] without a bind name, else
    /// [`AuthMethod::Simple`]. The other methods stay as they are.
    pub fn resolve(self, has_bind_name: bool) -> AuthMethod {
        match self {
            AuthMethod::Auto if has_bind_name => AuthMethod::Simple,
            AuthMethod::Auto => AuthMethod::Kerberos,
            m => m,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::Kerberos => "kerberos",
            AuthMethod::Simple => "simple",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the session is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// LDAPS or StartTLS.
    Tls,
    /// Kerberos SASL security layer: every message signed and encrypted (no TLS).
    SaslSealing,
    /// Nothing (anonymous, or an explicitly allowed plain-text simple bind).
    None,
}

/// Who the connection is bound as, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignIn {
    /// `kerberos`, `simple` or `anonymous` (never `auto`).
    pub method: AuthMethod,
    /// The Kerberos principal (from the ticket cache; unknown before the bind on Windows) or
    /// the simple bind name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Kerberos: the service principal the ticket was for (`ldap/dc1.corp.example@CORP.EXAMPLE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_principal: Option<String>,
    pub protection: Protection,
}

impl fmt::Display for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match (self.method, self.protection) {
            (AuthMethod::Kerberos, Protection::Tls) => "Kerberos over TLS",
            (AuthMethod::Kerberos, _) => "Kerberos, SASL signed and sealed",
            (AuthMethod::Simple, Protection::Tls) => "simple bind over TLS",
            (AuthMethod::Simple, _) => "simple bind in clear text",
            _ => "anonymous",
        };
        match &self.principal {
            Some(p) => write!(f, "{p} ({how})"),
            None => f.write_str(how),
        }
    }
}

/// A DC found in DNS and used for this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// The domain looked up.
    pub domain: String,
    /// The SRV name asked for (`_ldap._tcp.dc._msdcs.<domain>`).
    pub srv_name: String,
    /// The DC that answered.
    pub dc: DomainController,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// DCs tried before it, each with why it failed.
    pub skipped: Vec<String>,
}

/// Where and how to connect. [`ConnectOptions::new`] gives safe defaults: certificates verified
/// against the system roots, no clear-text binds, 30 s per operation.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `ldaps://host[:636]` or `ldap://host[:389]`.
    pub url: String,
    /// Connect TCP to this address instead of resolving the URL's host (DC discovery with a
    /// given DNS server). TLS and Kerberos still use the URL's host name.
    pub address: Option<SocketAddr>,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// Trust this PEM file's certificates instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate. Only by explicit choice (tests, first contact).
    pub insecure_skip_verify: bool,
    /// Allow a simple bind over a connection without TLS (the password travels in clear).
    pub allow_plaintext_bind: bool,
    /// Search base; defaults to the rootDSE's defaultNamingContext.
    pub base_dn: Option<String>,
    /// Limit for each operation (each search reply, each modify), and for the bind.
    pub timeout: Duration,
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Entries per page in paged searches (RFC 2696). AD's MaxPageSize is 1000.
    pub page_size: i32,
    /// Operations kept in flight on the one connection by the bulk calls.
    pub window: usize,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            address: None,
            starttls: false,
            ca_file: None,
            insecure_skip_verify: false,
            allow_plaintext_bind: false,
            base_dn: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            page_size: 500,
            window: 32,
        }
    }
}

/// What kind of directory answered, from its rootDSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerKind {
    /// Microsoft Active Directory (supportedCapabilities has the AD OID, no Samba vendorName).
    ActiveDirectory,
    /// A Samba AD DC (AD capability OIDs, vendorName "Samba Team").
    Samba,
    /// OpenLDAP (rootDSE objectClass OpenLDAProotDSE).
    OpenLdap,
    /// Anything else that speaks LDAP v3.
    Generic,
}

impl ServerKind {
    /// AD or Samba: objectGUID, `<GUID=...>` DNs, AD result-code habits.
    pub fn is_ad(self) -> bool {
        matches!(self, ServerKind::ActiveDirectory | ServerKind::Samba)
    }
}

/// What the rootDSE says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub kind: ServerKind,
    pub vendor_name: Option<String>,
    pub vendor_version: Option<String>,
    pub default_naming_context: Option<String>,
    pub naming_contexts: Vec<String>,
    /// AD's domainControllerFunctionality (7 = Windows Server 2016 level).
    pub dc_functionality: Option<u32>,
    pub dns_host_name: Option<String>,
    /// Whether the simple paged results control (1.2.840.113556.1.4.319) is advertised.
    pub paged_results: bool,
}

const OID_AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";
const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

impl ServerInfo {
    fn from_entry(e: &SearchEntry) -> Self {
        let caps = values(e, "supportedCapabilities");
        let classes = values(e, "objectClass");
        let vendor_name = first(e, "vendorName");
        let kind = if caps.iter().any(|c| c == OID_AD_CAPABILITY) {
            if vendor_name.as_deref().is_some_and(|v| v.contains("Samba")) {
                ServerKind::Samba
            } else {
                ServerKind::ActiveDirectory
            }
        } else if classes
            .iter()
            .any(|c| c.eq_ignore_ascii_case("OpenLDAProotDSE"))
        {
            ServerKind::OpenLdap
        } else {
            ServerKind::Generic
        };
        ServerInfo {
            kind,
            vendor_name,
            vendor_version: first(e, "vendorVersion"),
            default_naming_context: first(e, "defaultNamingContext"),
            naming_contexts: values(e, "namingContexts"),
            dc_functionality: first(e, "domainControllerFunctionality")
                .and_then(|v| v.parse().ok()),
            dns_host_name: first(e, "dnsHostName"),
            paged_results: values(e, "supportedControl")
                .iter()
                .any(|c| c == OID_PAGED_RESULTS),
        }
    }
}

/// A user as found in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub dn: String,
    pub sam_account_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub employee_id: Option<String>,
    pub display_name: Option<String>,
    /// objectGUID as a GUID string (AD byte order), or entryUUID on OpenLDAP.
    pub object_guid: Option<String>,
    /// thumbnailPhoto bytes, when they were asked for and present.
    #[serde(skip)]
    pub photo: Option<Vec<u8>>,
}

impl User {
    /// Who this user is, as a backup record names them.
    pub fn subject(&self) -> AdSubject {
        AdSubject {
            dn: self.dn.clone(),
            object_guid: self.object_guid.clone(),
            sam_account_name: self.sam_account_name.clone(),
        }
    }

    fn from_entry(e: &SearchEntry) -> Self {
        let object_guid = bin_value(e, "objectGUID")
            .and_then(|b| format_guid(&b))
            .or_else(|| first(e, "entryUUID"));
        User {
            dn: e.dn.clone(),
            sam_account_name: first(e, "sAMAccountName"),
            user_principal_name: first(e, "userPrincipalName"),
            mail: first(e, "mail"),
            employee_id: first(e, "employeeID"),
            display_name: first(e, "displayName"),
            object_guid,
            photo: bin_value(e, PHOTO_ATTR),
        }
    }
}

/// How many values [`Directory::find_users`] ORs into one search.
pub const FIND_USERS_CHUNK: usize = 50;

const USER_ATTRS: [&str; 7] = [
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "employeeID",
    "displayName",
    "objectGUID",
    "entryUUID",
];

fn user_attrs(with_photo: bool) -> Vec<&'static str> {
    let mut a = USER_ATTRS.to_vec();
    if with_photo {
        a.push(PHOTO_ATTR);
    }
    a
}

/// Users as a paged search returns them ([`Directory::stream_users`]).
pub struct UserStream {
    inner: Option<ldap3::SearchStream<'static, &'static str, Vec<&'static str>>>,
    base: String,
    timeout: Duration,
}

impl fmt::Debug for UserStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl UserStream {
    /// The next user; `None` once the search is complete. An error ends the stream.
    pub async fn next(&mut self) -> Result<Option<User>, DirectoryError> {
        let Some(mut s) = self.inner.take() else {
            return Ok(None);
        };
        let (base, timeout) = (self.base.as_str(), self.timeout);
        match s.next().await {
            Ok(Some(re)) => {
                self.inner = Some(s);
                Ok(Some(User::from_entry(&SearchEntry::construct(re))))
            }
            Ok(None) => {
                let res = s.finish().await;
                if res.rc != 0 && res.rc != 10 {
                    return Err(map_rc("list users", base, res.rc, res.text));
                }
                Ok(None)
            }
            Err(e) => Err(map_ldap("list users", base, e, timeout)),
        }
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Search under this DN instead of the connection's base.
    pub base: Option<String>,
    /// Only users that have a thumbnailPhoto (`(thumbnailPhoto=*)` on the server).
    pub only_with_photo: bool,
    /// Fetch the photo bytes too.
    pub fetch_photo: bool,
}

/// How writes are protected. There is no `Default`: every write states its backup policy.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Save the old value here before writing.
    pub backup: Option<BackupStore>,
    /// Write without a backup. Must be set explicitly when `backup` is `None`.
    pub no_backup: bool,
}

impl WriteOptions {
    /// Back up into `store` before every write.
    pub fn backup_to(store: BackupStore) -> Self {
        WriteOptions {
            backup: Some(store),
            no_backup: false,
        }
    }
    /// Write without backups (the caller accepts that old photos are lost).
    pub fn without_backup() -> Self {
        WriteOptions {
            backup: None,
            no_backup: true,
        }
    }
    fn check(&self) -> Result<(), DirectoryError> {
        if self.backup.is_none() && !self.no_backup {
            return Err(DirectoryError::BackupRequired);
        }
        Ok(())
    }
}

/// The result of one write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    pub dn: String,
    /// Bytes written (0 for a removal).
    pub bytes: usize,
    /// The backup taken before the write, when backups are on.
    pub backup: Option<BackupRecord>,
}

/// The result of one restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOutcome {
    pub dn: String,
    /// The backup that was put back.
    pub restored: BackupRecord,
    /// The backup of the value the restore replaced (undo the restore with this id).
    pub backup: Option<BackupRecord>,
}

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreFrom {
    /// The newest backup of this user taken before a replace or removal.
    Latest,
    /// A backup by id (must be about this user).
    Id(String),
}

/// One item of a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoItem {
    pub dn: String,
    pub photo: Vec<u8>,
}

/// Refuse a photo over [`MAX_PHOTO_BYTES`] (AD's schema rangeUpper) without touching the network.
pub fn check_photo_size(photo: &[u8]) -> Result<(), DirectoryError> {
    if photo.len() > MAX_PHOTO_BYTES {
        return Err(DirectoryError::PhotoTooLarge {
            bytes: photo.len(),
            limit: MAX_PHOTO_BYTES,
        });
    }
    Ok(())
}

/// A bound connection. Cheap to clone: clones share the one connection, and operations from
/// several clones (or several futures) are multiplexed on it.
///
/// # Reconnecting
/// [`Directory::reconnect`] replaces the shared connection with a new one (same options, same
/// credentials, kept in memory for that purpose): every clone uses the new connection for its
/// next operation. Each connection has a *generation*; a caller that saw an operation fail on
/// generation `g` calls `reconnect(g)`, and when several callers do so at once only the first
/// opens a new connection: the others find the generation already moved on and return at once.
/// Retry policy (how often, how long to wait) belongs to the caller.
#[derive(Debug, Clone)]
pub struct Directory {
    conn: Arc<Shared>,
    url: String,
    sign_in: Arc<SignIn>,
    located: Option<Arc<Located>>,
    base: Option<String>,
    server: Arc<ServerInfo>,
    timeout: Duration,
    page_size: i32,
    window: usize,
}

/// What clones of one [`Directory`] share: the live connection (with its generation) and what
/// it takes to open another.
struct Shared {
    live: std::sync::Mutex<(u64, Ldap)>,
    reconnecting: tokio::sync::Mutex<()>,
    opts: ConnectOptions,
    creds: Credentials,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("url", &self.opts.url)
            .field("generation", &self.live.lock().map(|l| l.0).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Connect, secure the connection, bind and read the rootDSE.
    pub async fn connect(
        opts: &ConnectOptions,
        creds: &Credentials,
    ) -> Result<Self, DirectoryError> {
        let (ldap, sign_in) = open(opts, creds).await?;
        let mut dir = Directory {
            conn: Arc::new(Shared {
                live: std::sync::Mutex::new((0, ldap)),
                reconnecting: tokio::sync::Mutex::new(()),
                opts: opts.clone(),
                creds: creds.clone(),
            }),
            url: opts.url.clone(),
            sign_in: Arc::new(sign_in),
            located: None,
            base: None,
            server: Arc::new(ServerInfo {
                kind: ServerKind::Generic,
                vendor_name: None,
                vendor_version: None,
                default_naming_context: None,
                naming_contexts: Vec::new(),
                dc_functionality: None,
                dns_host_name: None,
                paged_results: false,
            }),
            timeout: opts.timeout,
            page_size: opts.page_size.max(1),
            window: opts.window.max(1),
        };
        let info = dir.read_root_dse().await?;
        dir.base = opts
            .base_dn
            .clone()
            .or_else(|| info.default_naming_context.clone())
            .or_else(|| {
                if info.naming_contexts.len() == 1 {
                    info.naming_contexts.first().cloned()
                } else {
                    None
                }
            });
        dir.server = Arc::new(info);
        Ok(dir)
    }

    /// The generation of the connection in use: 0 for the first, +1 per [`Self::reconnect`].
    pub fn generation(&self) -> u64 {
        self.conn
            .live
            .lock()
            .map(|l| l.0)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    /// Open a new connection (TLS, bind) in place of generation `seen`, for this value and all
    /// its clones; returns the generation now in use. When the generation has already moved
    /// past `seen` (another caller reconnected), nothing is opened. One attempt: retries and
    /// backoff are the caller's. The rootDSE is not read again (same server, same base).
    pub async fn reconnect(&self, seen: u64) -> Result<u64, DirectoryError> {
        let _one_at_a_time = self.conn.reconnecting.lock().await;
        let current = self.generation();
        if current != seen {
            return Ok(current);
        }
        let (ldap, _) = open(&self.conn.opts, &self.conn.creds).await?;
        let mut live = self.conn.live.lock().unwrap_or_else(|p| p.into_inner());
        // The old handle is dropped here; its driver ends with its last clone.
        *live = (current + 1, ldap);
        Ok(current + 1)
    }
}

/// TCP, TLS (or StartTLS) and bind: a connection ready for operations.
async fn open(
    opts: &ConnectOptions,
    creds: &Credentials,
) -> Result<(Ldap, SignIn), DirectoryError> {
    let tls = TlsMode::from_url(&opts.url, opts.starttls)?;
    if matches!(creds, Credentials::Simple { .. })
        && tls == TlsMode::None
        && !opts.allow_plaintext_bind
    {
        return Err(DirectoryError::PlaintextBindRefused {
            url: opts.url.clone(),
        });
    }
    // Kerberos: what the ticket cache holds, before anything is sent (no ticket / expired).
    let ticket = match creds {
        Credentials::Kerberos { .. } => kerberos::current_ticket()?,
        _ => None,
    };
    let mut settings = LdapConnSettings::new().set_conn_timeout(opts.connect_timeout);
    if tls != TlsMode::None {
        install_crypto_provider();
        settings = settings.set_starttls(tls == TlsMode::StartTls);
        if opts.insecure_skip_verify {
            settings = settings.set_no_tls_verify(true);
        } else {
            settings = settings.set_config(tls_config(opts.ca_file.as_deref())?);
        }
    }
    if let Some(addr) = opts.address {
        settings = settings.set_std_stream(StdStream::Tcp(
            tcp_connect(&opts.url, addr, opts.connect_timeout).await?,
        ));
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &opts.url)
        .await
        .map_err(|e| connect_error(&opts.url, e, opts.connect_timeout))?;
    tokio::spawn(async move {
        // The driver ends when the last handle is dropped or the connection fails; pending
        // operations then see their result channel close (mapped to ConnectionLost).
        let _ = conn.drive().await;
    });
    let protection = if tls != TlsMode::None {
        Protection::Tls
    } else {
        Protection::None
    };
    let sign_in = match creds {
        Credentials::Anonymous => SignIn {
            method: AuthMethod::Anonymous,
            principal: None,
            service_principal: None,
            protection,
        },
        Credentials::Simple { bind, password } => {
            let res = ldap
                .with_timeout(opts.timeout)
                .simple_bind(bind, password.expose())
                .await
                .map_err(|e| map_ldap("bind", bind, e, opts.timeout))?;
            if res.rc != 0 {
                return Err(map_rc("bind", bind, res.rc, res.text));
            }
            SignIn {
                method: AuthMethod::Simple,
                principal: Some(bind.clone()),
                service_principal: None,
                protection,
            }
        }
        Credentials::Kerberos { spn_host } => {
            let (host, realm) = kerberos_target(&mut ldap, opts, spn_host.as_deref()).await?;
            let spn = kerberos::service_principal(&host, realm.as_deref());
            let failed = |message: &str| {
                kerberos::classify_failure(message, &spn, ticket.as_ref(), realm.as_deref())
            };
            let res = match ldap.with_timeout(opts.timeout).sasl_gssapi_bind(&spn).await {
                Ok(res) => res,
                Err(ldap3::LdapError::GssapiOperationError(m)) => return Err(failed(&m)),
                Err(e) => return Err(map_ldap("Kerberos bind", &spn, e, opts.timeout)),
            };
            if res.rc != 0 {
                return Err(match wrong_realm(ticket.as_ref(), realm.as_deref()) {
                    Some(e) => e,
                    None if res.rc == 49 => failed(&res.text),
                    None => map_rc("Kerberos bind", &spn, res.rc, res.text),
                });
            }
            SignIn {
                method: AuthMethod::Kerberos,
                principal: ticket.as_ref().map(|t: &Ticket| t.principal.clone()),
                service_principal: Some(format!("ldap/{spn}")),
                protection: if tls != TlsMode::None {
                    Protection::Tls
                } else {
                    Protection::SaslSealing
                },
            }
        }
    };
    Ok((ldap, sign_in))
}

/// The one user a lookup by `by` = `value` found: none is `UserNotFound`, two or more
/// `Ambiguous` (with their DNs).
fn only_user(entries: Vec<SearchEntry>, by: &str, value: &str) -> Result<User, DirectoryError> {
    match entries.as_slice() {
        [] => Err(DirectoryError::UserNotFound {
            by: by.to_string(),
            value: value.to_string(),
        }),
        [one] => Ok(User::from_entry(one)),
        _ => Err(DirectoryError::Ambiguous {
            by: by.to_string(),
            value: value.to_string(),
            dns: entries.iter().map(|e| e.dn.clone()).collect(),
        }),
    }
}

fn wrong_realm(ticket: Option<&Ticket>, dc_realm: Option<&str>) -> Option<DirectoryError> {
    let (t, dc) = (ticket?, dc_realm?);
    let have = t.realm()?;
    (!have.eq_ignore_ascii_case(dc)).then(|| DirectoryError::KerberosWrongRealm {
        principal: t.principal.clone(),
        realm: dc.to_ascii_uppercase(),
    })
}

async fn tcp_connect(
    url: &str,
    addr: SocketAddr,
    limit: Duration,
) -> Result<std::net::TcpStream, DirectoryError> {
    let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| DirectoryError::Timeout {
            op: "connect",
            after: limit,
        })?
        .map_err(|e| DirectoryError::Connect {
            url: format!("{url} ({addr})"),
            reason: e.to_string(),
        })?;
    stream.into_std().map_err(|e| DirectoryError::Connect {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// The host name and realm for the DC's service principal: the given name, else the URL's
/// host when it is a name, else the rootDSE's dnsHostName; the realm from the rootDSE's
/// defaultNamingContext. The rootDSE is read anonymously before the bind (AD allows it).
async fn kerberos_target(
    ldap: &mut Ldap,
    opts: &ConnectOptions,
    spn_host: Option<&str>,
) -> Result<(String, Option<String>), DirectoryError> {
    let res = ldap
        .with_timeout(opts.timeout)
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["dnsHostName", "defaultNamingContext"],
        )
        .await
        .map_err(|e| map_ldap("read rootDSE", "", e, opts.timeout))?;
    let root = res.0.into_iter().next().map(SearchEntry::construct);
    let realm = root
        .as_ref()
        .and_then(|e| first(e, "defaultNamingContext"))
        .and_then(|nc| kerberos::realm_of_naming_context(&nc));
    let host = spn_host
        .map(str::to_string)
        .or_else(|| url_host(&opts.url).filter(|h| h.parse::<IpAddr>().is_err()))
        .or_else(|| root.as_ref().and_then(|e| first(e, "dnsHostName")))
        .ok_or_else(|| DirectoryError::Kerberos {
            reason: format!(
                "{} is an address and its rootDSE names no dnsHostName: give the DC's host name for its service principal",
                opts.url
            ),
        })?;
    Ok((host, realm))
}

/// The host part of an LDAP URL (no port, no brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

impl Directory {
    /// The rootDSE as read at connect time.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// The search base in use.
    pub fn base(&self) -> Result<&str, DirectoryError> {
        self.base.as_deref().ok_or(DirectoryError::NoBaseDn)
    }

    /// The URL connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Who the connection is bound as, and how.
    pub fn signed_in(&self) -> &SignIn {
        &self.sign_in
    }

    /// The DC found in DNS, when the connection was made by [`Directory::connect_located`].
    pub fn located(&self) -> Option<&Located> {
        self.located.as_deref()
    }

    /// The server's view of who we are: the LDAP "Who am I?" operation (RFC 4532), e.g.
    /// `u:PHOTOBULK\\Administrator` on AD. `None` when the server does not say.
    pub async fn whoami(&self) -> Result<Option<String>, DirectoryError> {
        let (exop, _) = self
            .handle()
            .extended(ldap3::exop::WhoAmI)
            .await
            .and_then(|r| r.success())
            .map_err(|e| map_ldap("who am I", "", e, self.timeout))?;
        let id = exop.parse::<ldap3::exop::WhoAmIResp>().authzid;
        Ok((!id.is_empty()).then_some(id))
    }

    /// Find the domain's DCs in DNS ([`Locator::find`]) and connect to the first that answers,
    /// failing over to the next on connection errors (refused, unreachable, timeout, TLS). An
    /// error that another DC would give just the same (credentials, Kerberos) ends the search.
    ///
    /// `template` gives everything but the URL, which is built per DC: Kerberos goes to
    /// `ldap://dc:<SRV port>` (the SASL layer seals) unless `template.starttls`; a simple bind
    /// to `ldaps://dc:636`, or `ldap://dc:<SRV port>` with StartTLS when `template.starttls`.
    pub async fn connect_located(
        domain: &str,
        locator: &Locator,
        template: &ConnectOptions,
        creds: &Credentials,
    ) -> Result<Self, DirectoryError> {
        // Refuse what needs no network before asking DNS.
        if let Credentials::Kerberos { .. } = creds {
            kerberos::current_ticket()?;
        }
        let dcs = locator.find(domain).await?;
        let mut skipped = Vec::new();
        for dc in dcs.iter().take(MAX_DCS_TRIED) {
            let ldaps = matches!(creds, Credentials::Simple { .. }) && !template.starttls;
            let (scheme, port) = if ldaps {
                ("ldaps", 636)
            } else {
                ("ldap", dc.port)
            };
            let mut opts = template.clone();
            opts.url = format!("{scheme}://{}:{port}", dc.host);
            let addrs: Vec<Option<SocketAddr>> = if dc.addresses.is_empty() {
                vec![None]
            } else {
                dc.addresses
                    .iter()
                    .map(|ip| Some(SocketAddr::new(*ip, port)))
                    .collect()
            };
            for address in addrs {
                opts.address = address;
                match Directory::connect(&opts, creds).await {
                    Ok(mut dir) => {
                        dir.located = Some(Arc::new(Located {
                            domain: domain.to_string(),
                            srv_name: crate::locate::srv_name(domain),
                            dc: dc.clone(),
                            address,
                            skipped,
                        }));
                        return Ok(dir);
                    }
                    Err(e) if fails_over(&e) => {
                        let at = address.map(|a| format!(" at {a}")).unwrap_or_default();
                        skipped.push(format!("{}{at}: {e}", opts.url));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(DirectoryError::AllDcsFailed {
            domain: domain.to_string(),
            tried: skipped,
        })
    }

    /// The user-class filter for this server ([`user_filter`]).
    pub fn user_filter(&self) -> &'static str {
        user_filter(self.server.kind.is_ad())
    }

    fn ldap(&self) -> Ldap {
        self.conn
            .live
            .lock()
            .map(|l| l.1.clone())
            .unwrap_or_else(|p| p.into_inner().1.clone())
    }

    fn handle(&self) -> Ldap {
        let mut l = self.ldap();
        l.with_timeout(self.timeout);
        l
    }

    async fn read_root_dse(&self) -> Result<ServerInfo, DirectoryError> {
        let attrs = vec![
            "defaultNamingContext",
            "namingContexts",
            "supportedCapabilities",
            "supportedControl",
            "domainControllerFunctionality",
            "vendorName",
            "vendorVersion",
            "dnsHostName",
            "objectClass",
        ];
        let entries = self
            .search_all("read rootDSE", "", Scope::Base, "(objectClass=*)", attrs, 0)
            .await?;
        let e = entries
            .first()
            .ok_or_else(|| DirectoryError::Protocol("the server returned no rootDSE".into()))?;
        Ok(ServerInfo::from_entry(e))
    }

    /// Search without paging, skipping referrals; `sizelimit` 0 = server's limit. A
    /// sizeLimitExceeded (rc 4) answer is accepted when a limit was asked for.
    async fn search_all(
        &self,
        op: &'static str,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<&str>,
        sizelimit: i32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut l = self.handle();
        if sizelimit > 0 {
            l.with_search_options(ldap3::SearchOptions::new().sizelimit(sizelimit));
        }
        let map = |e| map_ldap(op, base, e, self.timeout);
        let mut s = l
            .streaming_search_with(EntriesOnly::new(), base, scope, filter, attrs)
            .await
            .map_err(map)?;
        let mut out = Vec::new();
        while let Some(re) = s.next().await.map_err(map)? {
            out.push(SearchEntry::construct(re));
            if sizelimit > 0 && out.len() >= sizelimit as usize {
                // Samba ignores the request's size limit: stop reading and abandon the rest.
                let msgid = s.ldap_handle().last_id();
                let _ = s.finish().await;
                let _ = self.ldap().abandon(msgid).await;
                return Ok(out);
            }
        }
        let res = s.finish().await;
        match res.rc {
            0 | 10 => {}
            4 if sizelimit > 0 => {}
            rc => return Err(map_rc(op, base, rc, res.text)),
        }
        Ok(out)
    }

    /// Paged subtree search (RFC 2696) for listings of any size, skipping referrals. Works
    /// where the server caps unpaged searches (AD's MaxPageSize of 1000).
    async fn search_paged(
        &self,
        op: &'static str,
        base: &str,
        filter: &str,
        attrs: Vec<&'static str>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut l = self.handle();
        let map = |e| map_ldap(op, base, e, self.timeout);
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        let mut s = l
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(map)?;
        let mut out = Vec::new();
        while let Some(re) = s.next().await.map_err(map)? {
            out.push(SearchEntry::construct(re));
        }
        let res = s.finish().await;
        if res.rc != 0 && res.rc != 10 {
            return Err(map_rc(op, base, res.rc, res.text));
        }
        Ok(out)
    }

    /// Find exactly one user whose `by` attribute equals `value` (escaped: wildcards and filter
    /// syntax in `value` are literal). None → `UserNotFound`; two or more → `Ambiguous`.
    ///
    /// A value containing NUL is not found without asking the server: no directory name can
    /// hold NUL, and Samba compares filter values as C strings, so `john.smith\0x` would match
    /// `john.smith` there.
    pub async fn find_user(
        &self,
        by: &Lookup,
        value: &str,
        with_photo: bool,
    ) -> Result<User, DirectoryError> {
        let filter = by.filter(self.user_filter(), value)?;
        if value.contains('\0') {
            return Err(DirectoryError::UserNotFound {
                by: by.to_string(),
                value: value.to_string(),
            });
        }
        self.find_one(&filter, with_photo, &by.to_string(), value)
            .await
    }

    /// Find many users at once: for each of `values`, what [`Directory::find_user`] would
    /// answer, in the same order, from one subtree search whose filter ORs the values (one
    /// search per [`FIND_USERS_CHUNK`] values) instead of one search each. On a Samba DC a
    /// lookup in a batch of 50 cost the server about a tenth of the CPU of a lookup of its own.
    ///
    /// The server decides what matches; the answers are assigned back by comparing each found
    /// entry's `by` attribute with the values, case-insensitively. Wherever that comparison
    /// could disagree with the server, the value is asked again on its own with `find_user`,
    /// so the answer is always the server's: a value no entry was assigned to (an unknown
    /// user, or a value the server matched some other way), every value of a chunk with an
    /// entry that matched no value, every value of a chunk whose search failed (each then
    /// gets its own error), and lookups by an attribute other than sAMAccountName, UPN, mail
    /// or employeeID (those are never batched).
    pub async fn find_users(
        &self,
        by: &Lookup,
        values: &[String],
        with_photo: bool,
    ) -> Vec<Result<User, DirectoryError>> {
        let batchable = !matches!(by, Lookup::Attribute(_)) && values.len() > 1;
        let mut out: Vec<Option<Result<User, DirectoryError>>> = Vec::new();
        out.resize_with(values.len(), || None);
        if batchable {
            let indexes: Vec<usize> = (0..values.len()).collect();
            for chunk in indexes.chunks(FIND_USERS_CHUNK) {
                if let Some(found) = self.find_chunk(by, values, chunk, with_photo).await {
                    for (i, user) in found {
                        out[i] = Some(user);
                    }
                }
            }
        }
        let alone: Vec<usize> = (0..values.len()).filter(|&i| out[i].is_none()).collect();
        let answers: Vec<(usize, Result<User, DirectoryError>)> = stream::iter(alone)
            .map(|i| async move { (i, self.find_user(by, &values[i], with_photo).await) })
            .buffer_unordered(self.window.max(1))
            .collect()
            .await;
        for (i, r) in answers {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("every value answered"))
            .collect()
    }

    /// One chunk of [`Directory::find_users`]: the answers it can give from one search (found
    /// or ambiguous, by index into `values`), or `None` when the whole chunk must be asked
    /// one by one.
    async fn find_chunk(
        &self,
        by: &Lookup,
        values: &[String],
        chunk: &[usize],
        with_photo: bool,
    ) -> Option<Vec<(usize, Result<User, DirectoryError>)>> {
        // NUL never matches (see find_user): such values are left to find_user.
        let asked: Vec<usize> = chunk
            .iter()
            .copied()
            .filter(|&i| !values[i].contains('\0'))
            .collect();
        if asked.len() < 2 {
            return None;
        }
        let mut filter = format!("(&{}(|", self.user_filter());
        for &i in &asked {
            filter.push_str(&by.term(&values[i]).ok()?);
        }
        filter.push_str("))");
        let base = self.base().ok()?.to_string();
        let entries = self
            .search_all(
                "find users",
                &base,
                Scope::Subtree,
                &filter,
                user_attrs(with_photo),
                0,
            )
            .await
            .ok()?;
        let users: Vec<User> = entries.iter().map(User::from_entry).collect();
        // Each entry's lookup attribute, lower-cased once: the values are matched against these.
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (u, user) in users.iter().enumerate() {
            let key = match by {
                Lookup::SamAccountName => user.sam_account_name.as_deref(),
                Lookup::UserPrincipalName => user.user_principal_name.as_deref(),
                Lookup::Mail => user.mail.as_deref(),
                Lookup::EmployeeId => user.employee_id.as_deref(),
                Lookup::Attribute(_) => None,
            };
            if let Some(key) = key {
                by_key.entry(key.to_lowercase()).or_default().push(u);
            }
        }
        let mut matched = vec![false; users.len()];
        let mut answers = Vec::new();
        for &i in &asked {
            let hits: &[usize] = by_key
                .get(&values[i].to_lowercase())
                .map_or(&[], Vec::as_slice);
            for &u in hits {
                matched[u] = true;
            }
            match hits {
                [] => {}
                [one] => answers.push((i, Ok(users[*one].clone()))),
                _ => answers.push((
                    i,
                    Err(DirectoryError::Ambiguous {
                        by: by.to_string(),
                        value: values[i].clone(),
                        dns: hits.iter().map(|&u| users[u].dn.clone()).collect(),
                    }),
                )),
            }
        }
        // An entry the server returned that no value claims: the server and this comparison
        // disagree somewhere in the chunk, so none of its answers is trusted.
        if matched.iter().any(|m| !m) {
            return None;
        }
        Some(answers)
    }

    /// The one user `filter` finds below the base (at most two asked for: enough to tell
    /// "one" from "ambiguous"); `by` and `value` name the lookup in the errors.
    async fn find_one(
        &self,
        filter: &str,
        with_photo: bool,
        by: &str,
        value: &str,
    ) -> Result<User, DirectoryError> {
        let base = self.base()?.to_string();
        let entries = self
            .search_all(
                "find user",
                &base,
                Scope::Subtree,
                filter,
                user_attrs(with_photo),
                2,
            )
            .await?;
        only_user(entries, by, value)
    }

    /// Read one user by DN.
    pub async fn read_user(&self, dn: &str, with_photo: bool) -> Result<User, DirectoryError> {
        let entries = self
            .search_all(
                "read user",
                dn,
                Scope::Base,
                "(objectClass=*)",
                user_attrs(with_photo),
                0,
            )
            .await?;
        entries
            .first()
            .map(User::from_entry)
            .ok_or_else(|| DirectoryError::NoSuchObject {
                dn: dn.to_string(),
                text: String::new(),
            })
    }

    /// The base and filter of a listing.
    fn listing(&self, opts: &ListOptions) -> Result<(String, String), DirectoryError> {
        let base = match &opts.base {
            Some(b) => b.clone(),
            None => self.base()?.to_string(),
        };
        let filter = if opts.only_with_photo {
            format!("(&{}({PHOTO_ATTR}=*))", self.user_filter())
        } else {
            self.user_filter().to_string()
        };
        Ok((base, filter))
    }

    /// Every user under the base (or `opts.base`), paged.
    pub async fn list_users(&self, opts: &ListOptions) -> Result<Vec<User>, DirectoryError> {
        let (base, filter) = self.listing(opts)?;
        let entries = self
            .search_paged("list users", &base, &filter, user_attrs(opts.fetch_photo))
            .await?;
        Ok(entries.iter().map(User::from_entry).collect())
    }

    /// Every user under the base (or `opts.base`), paged, handed out one at a time as the
    /// server sends them: at most one page (the connection's page size) is held in memory
    /// however many users there are, photos included. Use this instead of [`Self::list_users`]
    /// for reports over a whole directory.
    pub async fn stream_users(&self, opts: &ListOptions) -> Result<UserStream, DirectoryError> {
        let (base, filter) = self.listing(opts)?;
        let mut l = self.handle();
        let adapters: Vec<Box<dyn Adapter<'static, &'static str, Vec<&'static str>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        let inner = l
            .streaming_search_with(
                adapters,
                &base,
                Scope::Subtree,
                &filter,
                user_attrs(opts.fetch_photo),
            )
            .await
            .map_err(|e| map_ldap("list users", &base, e, self.timeout))?;
        Ok(UserStream {
            inner: Some(inner),
            base,
            timeout: self.timeout,
        })
    }

    /// The user's thumbnailPhoto bytes, or `None`.
    pub async fn read_photo(&self, dn: &str) -> Result<Option<Vec<u8>>, DirectoryError> {
        let entries = self
            .search_all(
                "read photo",
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec![PHOTO_ATTR],
                0,
            )
            .await?;
        let e = entries
            .first()
            .ok_or_else(|| DirectoryError::NoSuchObject {
                dn: dn.to_string(),
                text: String::new(),
            })?;
        Ok(bin_value(e, PHOTO_ATTR))
    }

    /// Replace the user's thumbnailPhoto with `photo`, backing up the old value first (see
    /// [`WriteOptions`]). A photo over 102,400 bytes is refused before anything is sent.
    pub async fn set_photo(
        &self,
        dn: &str,
        photo: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, DirectoryError> {
        check_photo_size(photo)?;
        opts.check()?;
        let backup = self.backup_current(dn, opts, BackupReason::Replace).await?;
        self.modify_photo("replace photo", dn, Some(photo)).await?;
        Ok(WriteOutcome {
            dn: dn.to_string(),
            bytes: photo.len(),
            backup,
        })
    }

    /// Remove the user's thumbnailPhoto (no error if there is none), backing up first.
    pub async fn remove_photo(
        &self,
        dn: &str,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, DirectoryError> {
        opts.check()?;
        let backup = self.backup_current(dn, opts, BackupReason::Remove).await?;
        self.modify_photo("remove photo", dn, None).await?;
        Ok(WriteOutcome {
            dn: dn.to_string(),
            bytes: 0,
            backup,
        })
    }

    /// Put backup `id` back on the user it was taken from, found by that backup's objectGUID
    /// (the user may have been renamed or moved since), else by its DN. Returns the user and
    /// the outcome of [`Directory::restore_photo`].
    pub async fn restore_backup(
        &self,
        store: &BackupStore,
        id: &str,
        opts: &WriteOptions,
    ) -> Result<(User, RestoreOutcome), DirectoryError> {
        let record = store.get(id)?;
        let user = match &record.who.object_guid {
            Some(g) => match self.find_by_guid(g, false).await {
                Ok(u) => u,
                Err(DirectoryError::UserNotFound { .. }) => {
                    self.read_user(&record.who.dn, false).await?
                }
                Err(e) => return Err(e),
            },
            None => self.read_user(&record.who.dn, false).await?,
        };
        let outcome = self
            .restore_photo(&user, store, &RestoreFrom::Id(id.to_string()), opts)
            .await?;
        Ok((user, outcome))
    }

    /// Put a backed-up value back on `user`, byte for byte (or remove the photo if the backup
    /// says there was none). The value being replaced is itself backed up first (reason
    /// `restore`) unless `opts.no_backup`.
    pub async fn restore_photo(
        &self,
        user: &User,
        store: &BackupStore,
        from: &RestoreFrom,
        opts: &WriteOptions,
    ) -> Result<RestoreOutcome, DirectoryError> {
        opts.check()?;
        let who = user.subject();
        let record = match from {
            RestoreFrom::Latest => store.latest_for(&who)?,
            RestoreFrom::Id(id) => {
                let r = store.get(id)?;
                if !r.who.is_same_user(&who) {
                    return Err(DirectoryError::BackupNotFound(format!(
                        "id {id} for user {} (it is about {})",
                        user.dn, r.who.dn
                    )));
                }
                r
            }
        };
        let store2 = store.clone();
        let rec2 = record.clone();
        let bytes = tokio::task::spawn_blocking(move || store2.load(&rec2))
            .await
            .map_err(|e| DirectoryError::Protocol(format!("backup reader failed: {e}")))??;
        if let Some(b) = &bytes {
            check_photo_size(b)?;
        }
        let backup = self
            .backup_current(&user.dn, opts, BackupReason::Restore)
            .await?;
        match &bytes {
            Some(b) => {
                self.modify_photo("restore photo", &user.dn, Some(b))
                    .await?
            }
            None => {
                self.modify_photo("restore photo (remove)", &user.dn, None)
                    .await?
            }
        }
        Ok(RestoreOutcome {
            dn: user.dn.clone(),
            restored: record,
            backup,
        })
    }

    /// Replace many photos on this one connection, keeping up to `window` operations in flight.
    /// Results come back in input order, one per item; a failing item does not stop the rest.
    pub async fn set_photos(
        &self,
        items: Vec<PhotoItem>,
        opts: &WriteOptions,
    ) -> Vec<Result<WriteOutcome, DirectoryError>> {
        let mut results: Vec<(usize, Result<WriteOutcome, DirectoryError>)> = stream::iter(
            items.into_iter().enumerate(),
        )
        .map(|(i, item)| async move { (i, self.set_photo(&item.dn, &item.photo, opts).await) })
        .buffer_unordered(self.window)
        .collect()
        .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// Remove many photos; per-item results in input order.
    pub async fn remove_photos(
        &self,
        dns: Vec<String>,
        opts: &WriteOptions,
    ) -> Vec<Result<WriteOutcome, DirectoryError>> {
        let mut results: Vec<(usize, Result<WriteOutcome, DirectoryError>)> =
            stream::iter(dns.into_iter().enumerate())
                .map(|(i, dn)| async move { (i, self.remove_photo(&dn, opts).await) })
                .buffer_unordered(self.window)
                .collect()
                .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// Politely close the connection.
    pub async fn unbind(self) -> Result<(), DirectoryError> {
        let mut l = self.ldap();
        l.unbind()
            .await
            .map_err(|e| map_ldap("unbind", "", e, self.timeout))
    }

    async fn backup_current(
        &self,
        dn: &str,
        opts: &WriteOptions,
        reason: BackupReason,
    ) -> Result<Option<BackupRecord>, DirectoryError> {
        let Some(store) = opts.backup.clone() else {
            return Ok(None);
        };
        let user = self.read_user(dn, true).await?;
        let rec = tokio::task::spawn_blocking(move || {
            store.save(user.subject(), user.photo.as_deref(), reason)
        })
        .await
        .map_err(|e| DirectoryError::Protocol(format!("backup writer failed: {e}")))??;
        Ok(Some(rec))
    }

    async fn modify_photo(
        &self,
        op: &'static str,
        dn: &str,
        photo: Option<&[u8]>,
    ) -> Result<(), DirectoryError> {
        let values: HashSet<Vec<u8>> = match photo {
            Some(p) => {
                check_photo_size(p)?;
                HashSet::from([p.to_vec()])
            }
            None => HashSet::new(),
        };
        let res = self
            .handle()
            .modify(
                dn,
                vec![Mod::Replace(PHOTO_ATTR.as_bytes().to_vec(), values)],
            )
            .await
            .map_err(|e| map_ldap(op, dn, e, self.timeout))?;
        if res.rc != 0 {
            return Err(map_rc(op, dn, res.rc, res.text));
        }
        Ok(())
    }

    /// Find a user by objectGUID string (AD/Samba) or entryUUID (OpenLDAP).
    pub async fn find_by_guid(&self, guid: &str, with_photo: bool) -> Result<User, DirectoryError> {
        let filter = match parse_guid(guid) {
            Some(bytes) if self.server.kind.is_ad() => {
                format!("(objectGUID={})", escape_filter_value(&bytes))
            }
            _ => format!("(entryUUID={})", escape_filter_value(guid.as_bytes())),
        };
        self.find_one(&filter, with_photo, "objectGUID", guid).await
    }
}

/// A server as users type it: a URL as it is, a bare host name (`dc1.corp.example`, as
/// `-Server` takes it) as `ldap://host` for Kerberos (the SASL layer seals) and `ldaps://host`
/// otherwise.
pub fn server_url(server: &str, method: AuthMethod) -> String {
    let s = server.trim();
    if s.is_empty() || s.contains("://") {
        return s.to_string();
    }
    match method.resolve(false) {
        AuthMethod::Kerberos => format!("ldap://{s}"),
        _ => format!("ldaps://{s}"),
    }
}

/// At most this many DCs are tried by [`Directory::connect_located`].
const MAX_DCS_TRIED: usize = 8;

/// Errors after which the next DC may do better.
fn fails_over(e: &DirectoryError) -> bool {
    e.is_retryable() || matches!(e, DirectoryError::Tls { .. })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    Ldaps,
    StartTls,
}

impl TlsMode {
    fn from_url(url: &str, starttls: bool) -> Result<Self, DirectoryError> {
        let bad = |reason: &str| DirectoryError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected ldap://host or ldaps://host"))?;
        if rest.trim_end_matches('/').is_empty() {
            return Err(bad("no host"));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "ldaps" if starttls => {
                Err(bad("StartTLS is for ldap:// URLs; ldaps:// is already TLS"))
            }
            "ldaps" => Ok(TlsMode::Ldaps),
            "ldap" if starttls => Ok(TlsMode::StartTls),
            "ldap" => Ok(TlsMode::None),
            _ => Err(bad("scheme must be ldap or ldaps")),
        }
    }
}

/// The workspace uses rustls' ring provider; make it the process default (no-op if some
/// provider is already installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                DirectoryError::TlsConfig(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    DirectoryError::TlsConfig(format!("CA file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    DirectoryError::TlsConfig(format!("CA file {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(DirectoryError::TlsConfig(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(DirectoryError::TlsConfig(
                    "no system CA certificates found; give a CA file".into(),
                ));
            }
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn connect_error(url: &str, e: ldap3::LdapError, timeout: Duration) -> DirectoryError {
    use ldap3::LdapError as E;
    match e {
        E::Io { source } => {
            // rustls handshake failures surface as io errors wrapping rustls::Error.
            if source
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
                || source.kind() == std::io::ErrorKind::InvalidData
            {
                DirectoryError::Tls {
                    url: url.to_string(),
                    reason: source.to_string(),
                }
            } else {
                DirectoryError::Connect {
                    url: url.to_string(),
                    reason: source.to_string(),
                }
            }
        }
        E::Timeout { .. } => DirectoryError::Timeout {
            op: "connect",
            after: timeout,
        },
        e @ (E::Rustls { .. } | E::DNSName { .. }) => DirectoryError::Tls {
            url: url.to_string(),
            reason: e.to_string(),
        },
        E::UrlParsing { source } => DirectoryError::InvalidUrl {
            url: url.to_string(),
            reason: source.to_string(),
        },
        E::UnknownScheme(s) => DirectoryError::InvalidUrl {
            url: url.to_string(),
            reason: format!("unknown scheme {s}"),
        },
        E::LdapResult { result } => map_rc("StartTLS", "", result.rc, result.text),
        e => DirectoryError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        },
    }
}

fn find_key<'a, V>(map: &'a HashMap<String, V>, attr: &str) -> Option<&'a V> {
    map.get(attr).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v)
    })
}

fn values(e: &SearchEntry, attr: &str) -> Vec<String> {
    find_key(&e.attrs, attr).cloned().unwrap_or_default()
}

fn first(e: &SearchEntry, attr: &str) -> Option<String> {
    find_key(&e.attrs, attr).and_then(|v| v.first().cloned())
}

/// A binary attribute's first value. ldap3 puts values that happen to be valid UTF-8 into
/// `attrs` and the rest into `bin_attrs`, so look in both.
fn bin_value(e: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    find_key(&e.bin_attrs, attr)
        .and_then(|v| v.first().cloned())
        .or_else(|| find_key(&e.attrs, attr).and_then(|v| v.first().map(|s| s.as_bytes().to_vec())))
}

/// AD stores objectGUID as 16 bytes with the first three fields little-endian.
fn format_guid(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

fn parse_guid(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    Some(order.iter().map(|&i| raw[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_round_trip_in_ad_byte_order() {
        let bytes: Vec<u8> = (0u8..16).collect();
        let s = format_guid(&bytes).expect("16 bytes");
        assert_eq!(s, "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(parse_guid(&s).expect("parse"), bytes);
        assert!(parse_guid("nope").is_none());
    }

    #[test]
    fn tls_modes_from_urls() {
        assert_eq!(
            TlsMode::from_url("ldaps://127.0.0.1", false).expect("ok"),
            TlsMode::Ldaps
        );
        assert_eq!(
            TlsMode::from_url("ldap://127.0.0.1:389", true).expect("ok"),
            TlsMode::StartTls
        );
        assert_eq!(
            TlsMode::from_url("LDAP://dc1", false).expect("ok"),
            TlsMode::None
        );
        assert!(TlsMode::from_url("ldaps://h", true).is_err());
        assert!(TlsMode::from_url("http://h", false).is_err());
        assert!(TlsMode::from_url("ldap://", false).is_err());
        assert!(TlsMode::from_url("h:389", false).is_err());
    }

    #[test]
    fn auth_methods_and_server_names() {
        assert_eq!(AuthMethod::parse("Kerberos"), Some(AuthMethod::Kerberos));
        assert_eq!(AuthMethod::parse(""), Some(AuthMethod::Auto));
        assert_eq!(AuthMethod::parse("ntlm"), None);
        assert_eq!(AuthMethod::Auto.resolve(false), AuthMethod::Kerberos);
        assert_eq!(AuthMethod::Auto.resolve(true), AuthMethod::Simple);
        assert_eq!(AuthMethod::Anonymous.resolve(true), AuthMethod::Anonymous);
        assert_eq!(
            server_url("dc1.corp.example", AuthMethod::Kerberos),
            "ldap://dc1.corp.example"
        );
        assert_eq!(server_url("dc1", AuthMethod::Simple), "ldaps://dc1");
        assert_eq!(
            server_url("ldaps://dc1:636", AuthMethod::Kerberos),
            "ldaps://dc1:636"
        );
        assert_eq!(server_url(" ", AuthMethod::Auto), "");
        assert_eq!(
            url_host("ldap://127.0.0.4:389").as_deref(),
            Some("127.0.0.4")
        );
        assert_eq!(
            url_host("ldaps://dc1.corp.example/").as_deref(),
            Some("dc1.corp.example")
        );
        assert_eq!(url_host("ldap://[::1]:389").as_deref(), Some("::1"));
        assert_eq!(url_host("ldap://"), None);
    }

    #[test]
    fn sign_in_says_who_and_how() {
        let s = SignIn {
            method: AuthMethod::Kerberos,
            principal: Some("jsmith@CORP.EXAMPLE".into()),
            service_principal: Some("ldap/dc1.corp.example@CORP.EXAMPLE".into()),
            protection: Protection::SaslSealing,
        };
        assert_eq!(
            s.to_string(),
            "jsmith@CORP.EXAMPLE (Kerberos, SASL signed and sealed)"
        );
    }

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let c = Credentials::Simple {
            bind: "cn=a".into(),
            password: p,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn photo_size_limit_is_inclusive() {
        assert!(check_photo_size(&vec![0; MAX_PHOTO_BYTES]).is_ok());
        assert!(matches!(
            check_photo_size(&vec![0; MAX_PHOTO_BYTES + 1]),
            Err(DirectoryError::PhotoTooLarge {
                bytes: 102_401,
                limit: 102_400
            })
        ));
    }

    #[tokio::test]
    async fn plaintext_simple_bind_is_refused_before_connecting() {
        // Port 9 on loopback: nothing listens; the refusal must come before any connect attempt.
        let opts = ConnectOptions::new("ldap://127.0.0.1:9");
        let creds = Credentials::Simple {
            bind: "cn=x".into(),
            password: Password::new("pw"),
        };
        let err = Directory::connect(&opts, &creds)
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), "plaintext_bind_refused", "{err}");
        // With the opt-in it gets as far as connecting (and fails there: retryable).
        let opts = ConnectOptions {
            allow_plaintext_bind: true,
            ..opts
        };
        let err = Directory::connect(&opts, &creds)
            .await
            .expect_err("nothing listens");
        assert_eq!(err.kind(), "connect", "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn write_options_demand_an_explicit_backup_choice() {
        let w = WriteOptions {
            backup: None,
            no_backup: false,
        };
        assert!(matches!(w.check(), Err(DirectoryError::BackupRequired)));
        assert!(WriteOptions::without_backup().check().is_ok());
    }
}
