//! The one error type of this crate, with LDAP result codes mapped to what an administrator
//! can act on.

pub(crate) use photobulk_kind::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to the directory or keeping backups.
///
/// Messages are for administrators: they say what failed and, where the server said why, its
/// diagnostic text. [`DirectoryError::is_retryable`] tells a bulk caller whether trying the same
/// item again later can succeed without anyone changing anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The server URL is not `ldap://host[:port]` or `ldaps://host[:port]`.
    #[error("invalid LDAP URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A simple bind would send the password in clear text (ldap:// without StartTLS) and the
    /// caller did not opt in. Refused before any connection is made.
    #[error("refusing a simple bind over clear text to {url}: use ldaps://, --starttls, or opt in explicitly with --allow-plaintext-bind (allowPlaintextBind over JSON-RPC)")]
    PlaintextBindRefused { url: String },

    /// Reading the CA file or building the TLS configuration failed.
    #[error("TLS configuration: {0}")]
    TlsConfig(String),

    /// The TLS handshake failed (certificate not trusted, name mismatch, protocol error).
    #[error("TLS handshake with {url} failed: {reason}")]
    Tls { url: String, reason: String },

    /// TCP connect failed (refused, unreachable). Retryable: the server may come back.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },

    /// An operation did not finish in time. Retryable. The operation may or may not have been
    /// applied by the server; a replace is idempotent, so retrying it is safe.
    #[error("{op} timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },

    /// The connection dropped during an operation. Retryable.
    #[error("connection lost during {op}: {reason}")]
    ConnectionLost { op: &'static str, reason: String },

    /// rc 49: wrong bind name or password (or the account is locked/expired; AD puts the reason
    /// in the diagnostic text, e.g. `data 52e` = bad password, `data 775` = locked).
    #[error("invalid credentials (LDAP rc 49): {text}")]
    InvalidCredentials { text: String },

    /// Kerberos was asked for (or chosen by `auto` because no bind name was given) and the
    /// current user has no ticket. Found before connecting (Unix) or at bind time (SSPI).
    #[error("no Kerberos ticket and no password: sign in with `kinit USER@REALM` (Windows: log on to the domain), or give a bind name (--bind, -Credential) and a password [{reason}]")]
    NoKerberosTicket { reason: String },

    /// The ticket in the cache has expired.
    #[error("the Kerberos ticket{} has expired: renew it with `kinit` (`klist` shows what the cache holds), then run this again", principal.as_deref().map(|p| format!(" of {p}")).unwrap_or_default())]
    KerberosTicketExpired { principal: Option<String> },

    /// The ticket is for another realm than the DC's, and the bind failed.
    #[error("the Kerberos ticket is for {principal}, but the domain controller is in realm {realm}: run `kinit USER@{realm}`, or give a bind name (--bind, -Credential) and a password")]
    KerberosWrongRealm { principal: String, realm: String },

    /// The KDC has no such service principal: the DC was reached by a name it is not
    /// registered under (a DNS alias, an IP address with a wrong reverse name).
    #[error("the KDC does not know the service principal {spn}: connect to the DC by its own host name (its dnsHostName, e.g. --server ldap://dc1.corp.example), or have a domain admin register the name (`setspn -S {} DCNAME$`)", spn.split('@').next().unwrap_or(spn))]
    KerberosSpnUnknown { spn: String },

    /// Any other Kerberos (GSSAPI / SSPI) failure, with the library's words.
    #[error("Kerberos sign-in failed: {reason}")]
    Kerberos { reason: String },

    /// No server given and no domain to find a DC in.
    #[error("no server given and no domain to look a domain controller up in: give --server URL (-Server) or --domain NAME (USERDNSDOMAIN is not set, no Kerberos ticket names a realm, and DNS has no search domain)")]
    NoDomain,

    /// DNS answered, but has no SRV record for the domain's DCs.
    #[error("DNS has no SRV record {name}: check the domain name (--domain), the DNS server (--dns-server), or give --server URL")]
    NoDcRecord { name: String },

    /// The DNS lookup itself failed (no DNS server answered, bad name).
    #[error("DNS lookup of {name} failed: {reason}")]
    Dns { name: String, reason: String },

    /// DCs were found, and none could be reached. Retryable.
    #[error("no domain controller of {domain} could be reached ({}): check the network and firewall (LDAP 389/636, Kerberos 88), or give --server URL", tried.join("; "))]
    AllDcsFailed { domain: String, tried: Vec<String> },

    /// rc 8 or 13: the server wants a protected connection or a stronger bind.
    #[error("the server requires a stronger authentication or a protected connection (LDAP rc {rc}): {text}")]
    StrongAuthRequired { rc: u32, text: String },

    /// rc 50: the bound account may not do this.
    #[error("insufficient access rights for {op} on {dn} (LDAP rc 50): {text}")]
    InsufficientRights {
        op: &'static str,
        dn: String,
        text: String,
    },

    /// rc 32: the object named does not exist.
    #[error("no such object {dn} (LDAP rc 32): {text}")]
    NoSuchObject { dn: String, text: String },

    /// A lookup found nobody.
    #[error("no user with {by}={value:?}")]
    UserNotFound { by: String, value: String },

    /// A lookup found more than one entry; nothing is picked silently.
    #[error("{by}={value:?} matches more than one entry: {}", dns.join("; "))]
    Ambiguous {
        by: String,
        value: String,
        dns: Vec<String>,
    },

    /// A photo over the limit, refused on the client before anything is sent.
    #[error("photo is {bytes} bytes, over the {limit}-byte thumbnailPhoto limit: not sent")]
    PhotoTooLarge { bytes: usize, limit: usize },

    /// The server refused the value (rc 19 constraint violation as Windows AD answers for an
    /// oversize thumbnailPhoto, rc 21 invalid syntax as Samba answers).
    #[error("the server rejected the photo for {dn} (LDAP rc {rc}): {text}")]
    PhotoRejected { dn: String, rc: u32, text: String },

    /// rc 51 busy / rc 52 unavailable. Retryable.
    #[error("the server is busy or unavailable (LDAP rc {rc}): {text}")]
    ServerBusy { rc: u32, text: String },

    /// rc 53: the server will not do it (policy). Not retryable: AD answers 53 for permanent
    /// conditions too.
    #[error("the server is unwilling to perform {op} (LDAP rc 53): {text}")]
    Unwilling { op: &'static str, text: String },

    /// Any other LDAP result code.
    #[error("{op} failed (LDAP rc {rc}): {text}")]
    Ldap {
        op: &'static str,
        rc: u32,
        text: String,
    },

    /// An attribute name that is not an LDAP attribute description (letters, digits, hyphens,
    /// starting with a letter, or a numeric OID).
    #[error("invalid attribute name {0:?}")]
    InvalidAttribute(String),

    /// No base DN given and the rootDSE names no single default.
    #[error(
        "no base DN given and the server's rootDSE has no defaultNamingContext (pass a base DN)"
    )]
    NoBaseDn,

    /// The server answered something this client cannot interpret.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),

    /// A write was asked for without a backup store and without an explicit `no_backup`.
    #[error(
        "refusing to overwrite without a backup: give a backup folder or say no_backup explicitly"
    )]
    BackupRequired,

    /// Reading or writing the backup folder failed. Nothing was sent to the server.
    #[error("backup folder {path}: {source}")]
    BackupIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The backup index has a line that is not a backup record.
    #[error("backup index {path} line {line}: {reason}")]
    BackupIndex {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// No backup matches the request.
    #[error("no backup found for {0}")]
    BackupNotFound(String),

    /// A backed-up file no longer has the SHA-256 recorded for it: not restored.
    #[error("backup {id}: saved bytes in {path} do not match the recorded SHA-256 (expected {expected}, found {found}); not restored")]
    BackupCorrupt {
        id: String,
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl DirectoryError {
    /// True when the same operation may succeed later without anyone changing anything:
    /// connection failures, drops, timeouts, busy/unavailable servers.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DirectoryError::Connect { .. }
                | DirectoryError::Timeout { .. }
                | DirectoryError::ConnectionLost { .. }
                | DirectoryError::ServerBusy { .. }
                | DirectoryError::Dns { .. }
                | DirectoryError::AllDcsFailed { .. }
        )
    }

    /// The LDAP result code behind this error, when the server sent one.
    pub fn ldap_rc(&self) -> Option<u32> {
        match self {
            DirectoryError::InvalidCredentials { .. } => Some(49),
            DirectoryError::InsufficientRights { .. } => Some(50),
            DirectoryError::NoSuchObject { .. } => Some(32),
            DirectoryError::Unwilling { .. } => Some(53),
            DirectoryError::StrongAuthRequired { rc, .. }
            | DirectoryError::PhotoRejected { rc, .. }
            | DirectoryError::ServerBusy { rc, .. }
            | DirectoryError::Ldap { rc, .. } => Some(*rc),
            _ => None,
        }
    }

    /// A short stable name for reports and JSON output (`"insufficient_rights"`, ...).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DirectoryError::InvalidUrl { .. } => ErrorKind::InvalidUrl,
            DirectoryError::PlaintextBindRefused { .. } => ErrorKind::PlaintextBindRefused,
            DirectoryError::TlsConfig(_) => ErrorKind::TlsConfig,
            DirectoryError::Tls { .. } => ErrorKind::Tls,
            DirectoryError::Connect { .. } => ErrorKind::Connect,
            DirectoryError::Timeout { .. } => ErrorKind::Timeout,
            DirectoryError::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            DirectoryError::InvalidCredentials { .. } => ErrorKind::InvalidCredentials,
            DirectoryError::StrongAuthRequired { .. } => ErrorKind::StrongAuthRequired,
            DirectoryError::NoKerberosTicket { .. } => ErrorKind::NoKerberosTicket,
            DirectoryError::KerberosTicketExpired { .. } => ErrorKind::KerberosTicketExpired,
            DirectoryError::KerberosWrongRealm { .. } => ErrorKind::KerberosWrongRealm,
            DirectoryError::KerberosSpnUnknown { .. } => ErrorKind::KerberosSpnUnknown,
            DirectoryError::Kerberos { .. } => ErrorKind::Kerberos,
            DirectoryError::NoDomain => ErrorKind::NoDomain,
            DirectoryError::NoDcRecord { .. } => ErrorKind::NoDcRecord,
            DirectoryError::Dns { .. } => ErrorKind::Dns,
            DirectoryError::AllDcsFailed { .. } => ErrorKind::AllDcsFailed,
            DirectoryError::InsufficientRights { .. } => ErrorKind::InsufficientRights,
            DirectoryError::NoSuchObject { .. } => ErrorKind::NoSuchObject,
            DirectoryError::UserNotFound { .. } => ErrorKind::UserNotFound,
            DirectoryError::Ambiguous { .. } => ErrorKind::Ambiguous,
            DirectoryError::PhotoTooLarge { .. } => ErrorKind::PhotoTooLarge,
            DirectoryError::PhotoRejected { .. } => ErrorKind::PhotoRejected,
            DirectoryError::ServerBusy { .. } => ErrorKind::ServerBusy,
            DirectoryError::Unwilling { .. } => ErrorKind::Unwilling,
            DirectoryError::Ldap { .. } => ErrorKind::Ldap,
            DirectoryError::InvalidAttribute(_) => ErrorKind::InvalidAttribute,
            DirectoryError::NoBaseDn => ErrorKind::NoBaseDn,
            DirectoryError::Protocol(_) => ErrorKind::Protocol,
            DirectoryError::BackupRequired => ErrorKind::BackupRequired,
            DirectoryError::BackupIo { .. } => ErrorKind::BackupIo,
            DirectoryError::BackupIndex { .. } => ErrorKind::BackupIndex,
            DirectoryError::BackupNotFound(_) => ErrorKind::BackupNotFound,
            DirectoryError::BackupCorrupt { .. } => ErrorKind::BackupCorrupt,
        }
    }
}

/// Map an ldap3 error from operation `op` on `dn` to a typed error.
pub(crate) fn map_ldap(
    op: &'static str,
    dn: &str,
    err: ldap3::LdapError,
    timeout: Duration,
) -> DirectoryError {
    use ldap3::LdapError as E;
    match err {
        E::LdapResult { result } => map_rc(op, dn, result.rc, result.text),
        E::Timeout { .. } => DirectoryError::Timeout { op, after: timeout },
        E::Io { source } => DirectoryError::ConnectionLost {
            op,
            reason: source.to_string(),
        },
        e @ (E::OpSend { .. }
        | E::ResultRecv { .. }
        | E::IdScrubSend { .. }
        | E::MiscSend { .. }
        | E::EndOfStream) => DirectoryError::ConnectionLost {
            op,
            reason: e.to_string(),
        },
        E::FilterParsing => DirectoryError::Protocol(format!(
            "{op}: filter did not parse (a bug: filters are built escaped)"
        )),
        e @ (E::Rustls { .. } | E::DNSName { .. }) => DirectoryError::Tls {
            url: String::new(),
            reason: e.to_string(),
        },
        e => DirectoryError::Protocol(format!("{op}: {e}")),
    }
}

/// Map a non-zero LDAP result code.
pub(crate) fn map_rc(op: &'static str, dn: &str, rc: u32, text: String) -> DirectoryError {
    let dn = dn.to_string();
    match rc {
        8 | 13 => DirectoryError::StrongAuthRequired { rc, text },
        19 | 21 if op.contains("photo") => DirectoryError::PhotoRejected { dn, rc, text },
        32 => DirectoryError::NoSuchObject { dn, text },
        49 => DirectoryError::InvalidCredentials { text },
        50 => DirectoryError::InsufficientRights { op, dn, text },
        51 | 52 => DirectoryError::ServerBusy { rc, text },
        53 => DirectoryError::Unwilling { op, text },
        _ => DirectoryError::Ldap { op, rc, text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(
            map_rc("bind", "", 49, "x".into()).kind(),
            "invalid_credentials"
        );
        assert_eq!(
            map_rc("replace photo", "cn=a", 50, "x".into()).kind(),
            "insufficient_rights"
        );
        assert_eq!(
            map_rc("replace photo", "cn=a", 19, "x".into()).kind(),
            "photo_rejected"
        );
        assert_eq!(
            map_rc("replace photo", "cn=a", 21, "x".into()).kind(),
            "photo_rejected"
        );
        assert_eq!(map_rc("search", "cn=a", 21, "x".into()).kind(), "ldap");
        assert_eq!(
            map_rc("read photo", "cn=a", 32, "x".into()).kind(),
            "no_such_object"
        );
        assert_eq!(
            map_rc("bind", "", 8, "x".into()).kind(),
            "strong_auth_required"
        );
        assert!(map_rc("x", "", 51, String::new()).is_retryable());
        assert!(map_rc("x", "", 52, String::new()).is_retryable());
        assert!(!map_rc("x", "", 53, String::new()).is_retryable());
        assert!(!map_rc("x", "", 50, String::new()).is_retryable());
        assert_eq!(map_rc("x", "", 50, String::new()).ldap_rc(), Some(50));
    }

    #[test]
    fn io_and_timeouts_are_retryable() {
        let e = map_ldap(
            "replace photo",
            "cn=a",
            ldap3::LdapError::Io {
                source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            },
            Duration::from_secs(1),
        );
        assert_eq!(e.kind(), "connection_lost");
        assert!(e.is_retryable());
        let e = map_ldap(
            "search",
            "",
            ldap3::LdapError::EndOfStream,
            Duration::from_secs(1),
        );
        assert!(e.is_retryable());
        assert!(!DirectoryError::PhotoTooLarge { bytes: 1, limit: 0 }.is_retryable());
    }
}
