//! The one error-code enum. Every entry has a JSON-RPC number ([`ErrorCode::code`]) and a
//! stable snake_case name ([`ErrorCode::kind`]) sent as `error.data.kind` — the field scripts
//! switch on (`switch ($e.data.kind) { 'user_not_found' { … } }`). Numbers follow JSON-RPC
//! 2.0 (-32700…-32600), LSP (-32002 not initialized, -32800 cancelled) and this protocol's
//! own range (-32001, -32003…-32099). Per-item failures inside `bulk.run` and `report.run`
//! use the same kinds in [`ItemError`].

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $kind:literal, $retry:literal; )*) => {
        /// Why a request failed. `#[non_exhaustive]`: clients must treat unknown kinds as
        /// failures of the request they answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The JSON-RPC `error.code` number.
            pub fn code(self) -> i64 {
                match self { $(ErrorCode::$name => $code,)* }
            }
            /// The stable `error.data.kind` string.
            pub fn kind(self) -> &'static str {
                match self { $(ErrorCode::$name => $kind,)* }
            }
            /// Whether the same request may succeed later unchanged (sent as `data.retryable`).
            pub fn default_retryable(self) -> bool {
                match self { $(ErrorCode::$name => $retry,)* }
            }
            /// The code named by a `data.kind` string.
            pub fn from_kind(kind: &str) -> Option<ErrorCode> {
                match kind { $($kind => Some(ErrorCode::$name),)* _ => None }
            }
            /// The code with this number.
            pub fn from_code(code: i64) -> Option<ErrorCode> {
                match code { $($code => Some(ErrorCode::$name),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// -32700: the bytes of a message are not JSON (or not UTF-8).
    ParseError = -32700, "parse_error", false;
    /// -32600: JSON, but not a JSON-RPC 2.0 request (batch, no method, wrong `jsonrpc`).
    InvalidRequest = -32600, "invalid_request", false;
    /// -32601: no such method.
    MethodNotFound = -32601, "method_not_found", false;
    /// -32602: the params do not fit the method (missing field, wrong type, bad value).
    InvalidParams = -32602, "invalid_params", false;
    /// -32603: a bug or an unexpected failure inside the server.
    InternalError = -32603, "internal_error", false;
    /// -32002: a request other than `initialize` before `initialize`.
    ServerNotInitialized = -32002, "not_initialized", false;
    /// -32800: the request was cancelled (`$/cancelRequest`, client gone, shutdown).
    RequestCancelled = -32800, "cancelled", false;
    /// -32001: a message over the size cap (16 MiB by default); it was skipped unread.
    MessageTooLarge = -32001, "message_too_large", false;
    /// -32003: the server is shutting down and takes no new work.
    ShuttingDown = -32003, "shutting_down", false;
    /// -32004: the connecting process belongs to another user; the connection is closed.
    PeerRefused = -32004, "peer_refused", false;
    /// -32010: a directory method before a successful `directory.connect`.
    NotConnected = -32010, "not_connected", false;
    /// -32011: wrong bind name or password (or a locked/expired account).
    InvalidCredentials = -32011, "invalid_credentials", false;
    /// -32012: the directory could not be reached, or TLS failed.
    ConnectionFailed = -32012, "connection_failed", true;
    /// -32013: the account may not do this (LDAP insufficient rights / unwilling).
    AccessDenied = -32013, "access_denied", false;
    /// -32014: no user matches the identity.
    UserNotFound = -32014, "user_not_found", false;
    /// -32015: more than one user matches the identity; nothing was picked.
    AmbiguousUser = -32015, "ambiguous_user", false;
    /// -32016: the photo is over AD's 102,400-byte limit; nothing was sent.
    PhotoTooLarge = -32016, "photo_too_large", false;
    /// -32017: the directory refused the photo.
    PhotoRejected = -32017, "photo_rejected", false;
    /// -32018: the file is not an image that can be converted (format, size, corrupt data).
    ImageInvalid = -32018, "image_invalid", false;
    /// -32019: no backup matches (restore).
    BackupNotFound = -32019, "backup_not_found", false;
    /// -32020: a write without a backup folder and without `noBackup`.
    BackupRequired = -32020, "backup_required", false;
    /// -32021: reading or writing a local file failed.
    Io = -32021, "io", false;
    /// -32022: the directory was busy, timed out or dropped the connection; try again.
    Unavailable = -32022, "unavailable", true;
    /// -32023: any other directory failure (`data.detail` names it).
    Directory = -32023, "directory", false;
    /// -32024: the file name names no account and no identity was given.
    NoAccount = -32024, "no_account", false;
    /// -32025: two inputs name the same account; neither was written.
    Duplicate = -32025, "duplicate", false;
    /// -32026: the user exists but has no Exchange Online mailbox, so it cannot hold a photo.
    NoMailbox = -32026, "no_mailbox", false;
    /// -32027: Microsoft Graph refused the sign-in or the token (`data.detail`: `auth`,
    /// `token_rejected`, `credential`).
    GraphAuth = -32027, "graph_auth", false;
}

/// `error.data` of every error this server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// [`ErrorCode::kind`].
    pub kind: String,
    /// Whether repeating the same request later can succeed.
    #[serde(default)]
    pub retryable: bool,
    /// The library's own, finer name for the failure (`"insufficient_rights"`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ErrorData {
    pub fn new(code: ErrorCode) -> Self {
        ErrorData {
            kind: code.kind().to_string(),
            retryable: code.default_retryable(),
            detail: None,
        }
    }
}

/// A per-item failure inside a result or notification (the same kinds as [`ErrorCode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ItemError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ItemError {
            kind: code.kind().to_string(),
            message: message.into(),
            retryable: code.default_retryable(),
            detail: None,
        }
    }
}

impl From<crate::ResponseError> for ItemError {
    fn from(e: crate::ResponseError) -> Self {
        let data = e
            .data
            .unwrap_or_else(|| ErrorData::new(ErrorCode::InternalError));
        ItemError {
            kind: data.kind,
            message: e.message,
            retryable: data.retryable,
            detail: data.detail,
        }
    }
}
