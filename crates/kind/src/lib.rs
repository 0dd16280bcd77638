//! The one list of PhotoBulk's error kinds.
//!
//! Every failure PhotoBulk reports — a library error (`DirectoryError::kind`,
//! `GraphError::kind`), an engine job's per-item error, a journal's failed record — names one
//! [`ErrorKind`]. The doors map it once each: the sidecar to a JSON-RPC error code
//! (`photobulk-sidecar`'s `map::kind_code`, an exhaustive `match`, so a new kind cannot be
//! forgotten there), the CLI to its JSON `kind` and exit code. On the wire and on disk a kind
//! is its snake_case name ([`ErrorKind::as_str`]), stable across releases.

use std::fmt;

/// What went wrong, as a stable name. See the crate docs.
/// Deliberately not `#[non_exhaustive]`: the doors match it exhaustively, so a new kind does
/// not build until each door has said what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The server URL cannot be used.
    InvalidUrl,
    /// A simple bind over clear text was refused (opt in with --allow-plaintext-bind).
    PlaintextBindRefused,
    /// The TLS settings (CA file, ...) cannot be used.
    TlsConfig,
    /// The TLS handshake failed.
    Tls,
    /// The server cannot be reached.
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// The connection dropped mid-operation.
    ConnectionLost,
    /// The directory refused the credentials.
    InvalidCredentials,
    /// The directory wants signing/sealing or TLS.
    StrongAuthRequired,
    /// No Kerberos ticket (run kinit).
    NoKerberosTicket,
    /// The Kerberos ticket expired.
    KerberosTicketExpired,
    /// The ticket is for another realm.
    KerberosWrongRealm,
    /// The KDC does not know the LDAP service principal.
    KerberosSpnUnknown,
    /// Another Kerberos failure.
    Kerberos,
    /// No domain to locate a DC in.
    NoDomain,
    /// DNS has no SRV record for a DC.
    NoDcRecord,
    /// DNS failed.
    Dns,
    /// Every DC located failed.
    AllDcsFailed,
    /// The account may not do this.
    InsufficientRights,
    /// The directory object does not exist.
    NoSuchObject,
    /// No user by that name.
    UserNotFound,
    /// The name fits more than one user.
    Ambiguous,
    /// Two inputs name one user: neither is written.
    Duplicate,
    /// A newer file names the same account: this one is not used.
    Superseded,
    /// The file name names no account.
    NoAccount,
    /// The cloud user has no Exchange Online mailbox.
    NoMailbox,
    /// The directory refused the photo's size.
    PhotoTooLarge,
    /// The directory refused the photo.
    PhotoRejected,
    /// Over Graph's 4 MB photo limit.
    TooLarge,
    /// Graph takes JPEG photos only.
    NotJpeg,
    /// Graph refused the image (too small, unreadable).
    ImageRejected,
    /// The file cannot be converted (empty, not an image, corrupt, a bomb, ...).
    Image,
    /// The file or CSV row cannot be read.
    Unreadable,
    /// The directory is busy.
    ServerBusy,
    /// The directory is unwilling to perform the operation.
    Unwilling,
    /// Another LDAP result code.
    Ldap,
    /// The attribute is not one PhotoBulk writes.
    InvalidAttribute,
    /// No search base could be found.
    NoBaseDn,
    /// The server answered something PhotoBulk does not understand.
    Protocol,
    /// Signing in to Microsoft Graph failed.
    Auth,
    /// Graph refused the access token.
    TokenRejected,
    /// The app credential (secret, certificate) cannot be used.
    Credential,
    /// Graph says the app may not do this.
    Forbidden,
    /// Another HTTP error.
    Http,
    /// Still throttled or unavailable after every retry.
    GaveUp,
    /// The network failed under an HTTP request.
    Network,
    /// Graph answered something PhotoBulk does not understand.
    InvalidResponse,
    /// The configuration cannot be used.
    Config,
    /// Writing needs a backup folder (or an explicit no-backup).
    BackupRequired,
    /// The backup folder cannot be read or written.
    BackupIo,
    /// The backup index cannot be read.
    BackupIndex,
    /// No such backup.
    BackupNotFound,
    /// The user has no photo (nothing to read or save).
    NoPhoto,
    /// The run took no backup of this user's photo, so there is nothing to put back.
    NoBackup,
    /// A backup does not match its recorded hash.
    BackupCorrupt,
    /// A local file cannot be read or written.
    Io,
    /// A journal or backup record cannot be read.
    BadRecord,
    /// The run's journal cannot be written.
    Journal,
    /// The write failed.
    Write,
    /// Set-UserPhoto did not write the photo (Exchange on-premises).
    SetUserphoto,
    /// Cancelled before it was done.
    Cancelled,
    /// The run stopped writing (its own state could not be kept).
    Stopped,
    /// A bug in PhotoBulk.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidUrl,
        ErrorKind::PlaintextBindRefused,
        ErrorKind::TlsConfig,
        ErrorKind::Tls,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::ConnectionLost,
        ErrorKind::InvalidCredentials,
        ErrorKind::StrongAuthRequired,
        ErrorKind::NoKerberosTicket,
        ErrorKind::KerberosTicketExpired,
        ErrorKind::KerberosWrongRealm,
        ErrorKind::KerberosSpnUnknown,
        ErrorKind::Kerberos,
        ErrorKind::NoDomain,
        ErrorKind::NoDcRecord,
        ErrorKind::Dns,
        ErrorKind::AllDcsFailed,
        ErrorKind::InsufficientRights,
        ErrorKind::NoSuchObject,
        ErrorKind::UserNotFound,
        ErrorKind::Ambiguous,
        ErrorKind::Duplicate,
        ErrorKind::Superseded,
        ErrorKind::NoAccount,
        ErrorKind::NoMailbox,
        ErrorKind::PhotoTooLarge,
        ErrorKind::PhotoRejected,
        ErrorKind::TooLarge,
        ErrorKind::NotJpeg,
        ErrorKind::ImageRejected,
        ErrorKind::Image,
        ErrorKind::Unreadable,
        ErrorKind::ServerBusy,
        ErrorKind::Unwilling,
        ErrorKind::Ldap,
        ErrorKind::InvalidAttribute,
        ErrorKind::NoBaseDn,
        ErrorKind::Protocol,
        ErrorKind::Auth,
        ErrorKind::TokenRejected,
        ErrorKind::Credential,
        ErrorKind::Forbidden,
        ErrorKind::Http,
        ErrorKind::GaveUp,
        ErrorKind::Network,
        ErrorKind::InvalidResponse,
        ErrorKind::Config,
        ErrorKind::BackupRequired,
        ErrorKind::BackupIo,
        ErrorKind::BackupIndex,
        ErrorKind::BackupNotFound,
        ErrorKind::NoPhoto,
        ErrorKind::NoBackup,
        ErrorKind::BackupCorrupt,
        ErrorKind::Io,
        ErrorKind::BadRecord,
        ErrorKind::Journal,
        ErrorKind::Write,
        ErrorKind::SetUserphoto,
        ErrorKind::Cancelled,
        ErrorKind::Stopped,
        ErrorKind::Internal,
    ];

    /// The stable snake_case name (`"user_not_found"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::PlaintextBindRefused => "plaintext_bind_refused",
            ErrorKind::TlsConfig => "tls_config",
            ErrorKind::Tls => "tls",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::InvalidCredentials => "invalid_credentials",
            ErrorKind::StrongAuthRequired => "strong_auth_required",
            ErrorKind::NoKerberosTicket => "no_kerberos_ticket",
            ErrorKind::KerberosTicketExpired => "kerberos_ticket_expired",
            ErrorKind::KerberosWrongRealm => "kerberos_wrong_realm",
            ErrorKind::KerberosSpnUnknown => "kerberos_spn_unknown",
            ErrorKind::Kerberos => "kerberos",
            ErrorKind::NoDomain => "no_domain",
            ErrorKind::NoDcRecord => "no_dc_record",
            ErrorKind::Dns => "dns",
            ErrorKind::AllDcsFailed => "all_dcs_failed",
            ErrorKind::InsufficientRights => "insufficient_rights",
            ErrorKind::NoSuchObject => "no_such_object",
            ErrorKind::UserNotFound => "user_not_found",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::Superseded => "superseded",
            ErrorKind::NoAccount => "no_account",
            ErrorKind::NoMailbox => "no_mailbox",
            ErrorKind::PhotoTooLarge => "photo_too_large",
            ErrorKind::PhotoRejected => "photo_rejected",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::NotJpeg => "not_jpeg",
            ErrorKind::ImageRejected => "image_rejected",
            ErrorKind::Image => "image",
            ErrorKind::Unreadable => "unreadable",
            ErrorKind::ServerBusy => "server_busy",
            ErrorKind::Unwilling => "unwilling",
            ErrorKind::Ldap => "ldap",
            ErrorKind::InvalidAttribute => "invalid_attribute",
            ErrorKind::NoBaseDn => "no_base_dn",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Auth => "auth",
            ErrorKind::TokenRejected => "token_rejected",
            ErrorKind::Credential => "credential",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Http => "http",
            ErrorKind::GaveUp => "gave_up",
            ErrorKind::Network => "network",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Config => "config",
            ErrorKind::BackupRequired => "backup_required",
            ErrorKind::BackupIo => "backup_io",
            ErrorKind::BackupIndex => "backup_index",
            ErrorKind::BackupNotFound => "backup_not_found",
            ErrorKind::NoPhoto => "no_photo",
            ErrorKind::NoBackup => "no_backup",
            ErrorKind::BackupCorrupt => "backup_corrupt",
            ErrorKind::Io => "io",
            ErrorKind::BadRecord => "bad_record",
            ErrorKind::Journal => "journal",
            ErrorKind::Write => "write",
            ErrorKind::SetUserphoto => "set_userphoto",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Stopped => "stopped",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind named `name` (its [`ErrorKind::as_str`]).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// Whether an error of this kind is, as a rule, worth running again unchanged (a server
    /// that timed out, dropped the connection, was busy or kept throttling). A library error
    /// may know better for its instance (`is_retryable`: an HTTP 503 is, a 400 is not).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::ConnectionLost
                | ErrorKind::ServerBusy
                | ErrorKind::GaveUp
                | ErrorKind::Stopped
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        ErrorKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error kind {name:?}")))
    }
}

impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(*k));
            let json = serde_json::to_string(k).expect("json");
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).expect("back"), *k);
        }
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "no two kinds share a name");
        assert!(serde_json::from_str::<ErrorKind>("\"no_such_kind\"").is_err());
    }

    #[test]
    fn only_passing_troubles_are_retryable_by_kind() {
        assert!(ErrorKind::Timeout.retryable() && ErrorKind::ConnectionLost.retryable());
        assert!(!ErrorKind::UserNotFound.retryable() && !ErrorKind::Image.retryable());
    }
}

/// Why one item of a bulk job failed or was skipped: its [`ErrorKind`], whether running the
/// same thing again later may succeed, and a message for people. The engine's jobs and the
/// CLI's JSON items carry this one type; JSON `{"kind", "retryable", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemError {
    /// `user_not_found`, `ambiguous`, `no_account`, `unreadable`, `image`, `superseded`,
    /// `cancelled`, `connection_lost`, `insufficient_rights`, ...
    pub kind: ErrorKind,
    /// Running the same command again later may succeed without anyone changing anything.
    pub retryable: bool,
    pub message: String,
}

impl ItemError {
    /// A failure that running the same thing again will not mend by itself.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ItemError::with(kind, false, message)
    }

    /// With whether a later run of the same thing may succeed.
    pub fn with(kind: ErrorKind, retryable: bool, message: impl Into<String>) -> Self {
        ItemError {
            kind,
            retryable,
            message: message.into(),
        }
    }
}
