//! [`GraphError`]: what went wrong, typed so a bulk run can record it per user and decide
//! whether trying again later could help ([`GraphError::is_retryable`]).

pub(crate) use photobulk_kind::ErrorKind;
use std::path::PathBuf;

/// Everything this crate can fail with. Graph's own error bodies
/// (`{"error":{"code":…,"message":…}}`) are mapped to the variants an administrator acts on
/// differently; anything else keeps its status, code and message in [`GraphError::Http`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The token endpoint refused the credentials (`invalid_client`, unknown tenant, bad
    /// certificate…). Fix the app registration or the secret; retrying will not help.
    #[error("sign-in failed (HTTP {status}, {code}): {message}")]
    Auth {
        status: u16,
        code: String,
        message: String,
    },
    /// A caller-provided access token was rejected (expired or revoked). It cannot be
    /// refreshed here: get a new one (e.g. `Connect-MgGraph` again).
    #[error("the access token was rejected and cannot be refreshed ({code}): {message}")]
    TokenRejected { code: String, message: String },
    /// The certificate or private key could not be used.
    #[error("certificate credential: {0}")]
    Credential(String),
    /// Graph answered 403: the app lacks `ProfilePhoto.ReadWrite.All` / `User.ReadWrite.All`
    /// (or a delegated caller lacks an administrator role).
    #[error("permission denied ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// No user with this id, UPN, mail or alias.
    #[error("user not found: {0}")]
    UserNotFound(String),
    /// More than one user matches (for example an alias shared by two UPN domains).
    #[error("{key:?} matches {} users: {}", matches.len(), matches.join(", "))]
    Ambiguous { key: String, matches: Vec<String> },
    /// Two photos in one run name the same user; neither is guessed between.
    #[error("{user} is named by more than one photo in this run ({first} and {second})")]
    Duplicate {
        user: String,
        first: String,
        second: String,
    },
    /// The user exists but has no Exchange Online mailbox, so it cannot hold a photo.
    #[error("{user} has no Exchange Online mailbox ({code}): {message}")]
    NoMailbox {
        user: String,
        code: String,
        message: String,
    },
    /// Refused before sending: Graph takes at most 4 MB ([`crate::MAX_PHOTO_BYTES`]).
    #[error("photo is {bytes} bytes; Graph accepts at most {max} (resize to 648x648 first)")]
    PhotoTooLarge { bytes: usize, max: usize },
    /// Refused before sending: the body is not a JPEG (`Content-Type: image/jpeg` would lie).
    #[error("photo is not a JPEG (convert it first)")]
    NotJpeg,
    /// Graph answered 413 Request Entity Too Large.
    #[error("Graph refused the photo as too large (413): {message}")]
    PayloadTooLarge { message: String },
    /// Graph refused the image itself (too small, e.g. under 48x48 — `ValidationWidthTooSmall`
    /// — or not an image it can read).
    #[error("Graph refused the image ({code}): {message}")]
    ImageRejected { code: String, message: String },
    /// Any other error answer.
    #[error("Graph answered HTTP {status} ({code}): {message}")]
    Http {
        status: u16,
        code: String,
        message: String,
    },
    /// Still throttled, failing or unreachable after the last allowed attempt.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<GraphError>,
    },
    /// Network failure: connection refused or reset, timeout, TLS failure, body cut short.
    #[error("network error talking to {url}: {message}")]
    Transport {
        url: String,
        message: String,
        /// A timeout or a reset (retryable) rather than, say, a bad URL.
        retryable: bool,
    },
    /// Graph answered something this client does not understand.
    #[error("unexpected answer from {url}: {message}")]
    InvalidResponse { url: String, message: String },
    /// Bad configuration (URL, CA file…).
    #[error("configuration: {0}")]
    Config(String),
    /// A backup or journal file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A backup or journal file has a line that is not a record.
    #[error("{} line {line}: {reason}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// No backup matches.
    #[error("no backup found for {0}")]
    BackupNotFound(String),
    /// A saved photo does not match the checksum in the backup index.
    #[error("backup {id} is corrupt: {} has SHA-256 {found}, the index says {expected}", path.display())]
    BackupCorrupt {
        id: String,
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl GraphError {
    /// Whether the same request could succeed later unchanged (throttling, server busy,
    /// network trouble). Other 4xx answers never are.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Transport { retryable, .. } => *retryable,
            GraphError::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            GraphError::GaveUp { .. } => true,
            _ => false,
        }
    }

    /// A short stable name for reports and JSON output (`no_mailbox`, `too_large`, …).
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::Auth { .. } => ErrorKind::Auth,
            GraphError::TokenRejected { .. } => ErrorKind::TokenRejected,
            GraphError::Credential(_) => ErrorKind::Credential,
            GraphError::Forbidden { .. } => ErrorKind::Forbidden,
            GraphError::UserNotFound(_) => ErrorKind::UserNotFound,
            GraphError::Ambiguous { .. } => ErrorKind::Ambiguous,
            GraphError::Duplicate { .. } => ErrorKind::Duplicate,
            GraphError::NoMailbox { .. } => ErrorKind::NoMailbox,
            GraphError::PhotoTooLarge { .. } | GraphError::PayloadTooLarge { .. } => {
                ErrorKind::TooLarge
            }
            GraphError::NotJpeg => ErrorKind::NotJpeg,
            GraphError::ImageRejected { .. } => ErrorKind::ImageRejected,
            GraphError::Http { .. } => ErrorKind::Http,
            GraphError::GaveUp { .. } => ErrorKind::GaveUp,
            GraphError::Transport { .. } => ErrorKind::Network,
            GraphError::InvalidResponse { .. } => ErrorKind::InvalidResponse,
            GraphError::Config(_) => ErrorKind::Config,
            GraphError::Io { .. } => ErrorKind::Io,
            GraphError::BadRecord { .. } => ErrorKind::BadRecord,
            GraphError::BackupNotFound(_) => ErrorKind::BackupNotFound,
            GraphError::BackupCorrupt { .. } => ErrorKind::BackupCorrupt,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GraphError {
        let path = path.into();
        move |source| GraphError::Io { path, source }
    }
}

/// Graph's error body: `{"error":{"code":"ImageNotFound","message":"…","innerError":{…}}}`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: ErrorDetail,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The code and message of an error answer (empty strings when the body is not Graph's JSON).
pub(crate) fn parse_error_body(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        ),
    }
}
