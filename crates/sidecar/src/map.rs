//! Library errors → protocol errors. The only place that knows both sides.
//!
//! Every library error has a typed `kind()` ([`ErrorKind`], `photobulk-kind`: `DirectoryError`,
//! `GraphError`) and the engine carries those kinds on its per-item results (plus a few of its
//! own: `image`, `journal`, `superseded`, …). [`kind_code`] is the one table from a kind to a
//! protocol error code, an exhaustive match: a library error and the same error met inside a
//! bulk job's item come out as the same code, with the kind's name as `detail`.

use photobulk_directory::DirectoryError;
use photobulk_imaging::ImagingError;
use photobulk_kind::ErrorKind;
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

pub(crate) fn directory(e: &DirectoryError) -> ResponseError {
    ResponseError::new(kind_code(e.kind(), e.is_retryable()), e.to_string())
        .with_detail(e.kind().as_str())
        .retryable(e.is_retryable())
}

pub(crate) fn imaging(e: &ImagingError) -> ResponseError {
    let detail = match e {
        ImagingError::UnknownFormat => "unknown_format",
        ImagingError::Empty => "empty",
        ImagingError::InputTooLarge { .. } => "input_too_large",
        ImagingError::TooManyPixels { .. } => "too_many_pixels",
        ImagingError::TooSmall { .. } => "too_small",
        ImagingError::Decode { .. } => "decode",
        ImagingError::Unsupported { .. } => "unsupported",
        ImagingError::BudgetUnreachable { .. } => "budget_unreachable",
        ImagingError::InvalidOption(_) => "invalid_option",
        _ => "imaging",
    };
    ResponseError::new(ErrorCode::ImageInvalid, e.to_string()).with_detail(detail)
}

pub(crate) fn graph(e: &photobulk_graph::GraphError) -> ResponseError {
    ResponseError::new(kind_code(e.kind(), e.is_retryable()), e.to_string())
        .with_detail(e.kind().as_str())
        .retryable(e.is_retryable())
}

/// The engine's own failures (its journal, its files).
pub(crate) fn engine(e: &photobulk_engine::EngineError) -> ResponseError {
    ResponseError::new(ErrorCode::Io, e.to_string())
}

/// A blocking task that did not finish (it panicked or was cancelled).
pub(crate) fn join(e: tokio::task::JoinError) -> ResponseError {
    ResponseError::new(ErrorCode::InternalError, e.to_string())
}

/// What ends a photo report early.
pub(crate) fn report(e: &photobulk_engine::audit::ReportError) -> ResponseError {
    use photobulk_engine::audit::ReportError;
    match e {
        ReportError::Directory(d) => directory(d),
        ReportError::Graph(g) => graph(g),
        ReportError::Engine(x) => engine(x),
        _ => ResponseError::new(ErrorCode::Directory, e.to_string()),
    }
}

/// What ends an HD sync early.
pub(crate) fn sync_hd(e: &photobulk_engine::sync_hd::SyncHdError) -> ResponseError {
    use photobulk_engine::sync_hd::SyncHdError;
    match e {
        SyncHdError::Directory(d) => directory(d),
        SyncHdError::Graph(g) => graph(g),
        other => ResponseError::new(ErrorCode::Io, other.to_string()),
    }
}

pub(crate) fn io(what: impl std::fmt::Display, e: &std::io::Error) -> ResponseError {
    ResponseError::new(ErrorCode::Io, format!("{what}: {e}"))
}

pub(crate) fn item(e: ResponseError) -> ItemError {
    ItemError::from(e)
}

/// An engine job's item error (AD import, cloud upload) → the protocol's item error: the
/// code from [`kind_code`], the engine's kind as `detail`.
pub(crate) fn engine_item(e: &photobulk_engine::import::ItemError) -> ItemError {
    ItemError {
        kind: kind_code(e.kind, e.retryable).kind().to_string(),
        message: e.message.clone(),
        retryable: e.retryable,
        detail: Some(e.kind.to_string()),
    }
}

/// The one table: a library or engine error kind (and whether this instance is retryable) →
/// the protocol's error code. Exhaustive: a new [`ErrorKind`] does not build until it is here.
pub(crate) fn kind_code(kind: ErrorKind, retryable: bool) -> ErrorCode {
    use ErrorKind as K;
    match kind {
        // Sign-in (directory and Graph).
        K::InvalidCredentials
        | K::NoKerberosTicket
        | K::KerberosTicketExpired
        | K::KerberosWrongRealm
        | K::KerberosSpnUnknown
        | K::Kerberos => ErrorCode::InvalidCredentials,
        K::Auth | K::TokenRejected | K::Credential => ErrorCode::GraphAuth,
        // Reaching the server.
        K::NoDomain
        | K::NoDcRecord
        | K::Dns
        | K::AllDcsFailed
        | K::InvalidUrl
        | K::PlaintextBindRefused
        | K::TlsConfig
        | K::Tls
        | K::Connect
        | K::Config => ErrorCode::ConnectionFailed,
        K::Timeout | K::ConnectionLost | K::ServerBusy | K::GaveUp | K::Stopped => {
            ErrorCode::Unavailable
        }
        K::Network | K::Http if retryable => ErrorCode::Unavailable,
        K::Network => ErrorCode::ConnectionFailed,
        // Rights.
        K::InsufficientRights | K::Unwilling | K::StrongAuthRequired | K::Forbidden => {
            ErrorCode::AccessDenied
        }
        // Who.
        K::UserNotFound | K::NoSuchObject => ErrorCode::UserNotFound,
        K::Ambiguous => ErrorCode::AmbiguousUser,
        K::NoAccount => ErrorCode::NoAccount,
        K::NoMailbox => ErrorCode::NoMailbox,
        K::Duplicate | K::Superseded => ErrorCode::Duplicate,
        // The photo.
        K::PhotoTooLarge | K::TooLarge => ErrorCode::PhotoTooLarge,
        K::PhotoRejected | K::NotJpeg | K::ImageRejected | K::SetUserphoto => {
            ErrorCode::PhotoRejected
        }
        K::Image => ErrorCode::ImageInvalid,
        // Backups, journals, files.
        K::BackupNotFound | K::NoBackup => ErrorCode::BackupNotFound,
        K::BackupRequired => ErrorCode::BackupRequired,
        K::BackupIo
        | K::BackupIndex
        | K::BackupCorrupt
        | K::Io
        | K::BadRecord
        | K::Unreadable
        | K::Journal => ErrorCode::Io,
        K::InvalidAttribute => ErrorCode::InvalidParams,
        K::Cancelled => ErrorCode::RequestCancelled,
        K::Internal => ErrorCode::InternalError,
        // What the server said that PhotoBulk has no better word for.
        K::Ldap
        | K::NoBaseDn
        | K::Protocol
        | K::InvalidResponse
        | K::Http
        | K::Write
        | K::NoPhoto => ErrorCode::Directory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_maps_to_one_code_on_every_path() {
        // The issue-18 case: InvalidAttribute met directly and inside an import item.
        let e = DirectoryError::InvalidAttribute("thumbnailPhoto".into());
        assert_eq!(directory(&e).code, kind_code(e.kind(), false).code());
        assert_eq!(
            kind_code(ErrorKind::InvalidAttribute, false),
            ErrorCode::InvalidParams
        );
        let item = photobulk_engine::import::ItemError::new(e.kind(), e.to_string());
        let (one, other) = (engine_item(&item), directory(&e).data.expect("data"));
        assert_eq!((one.kind, one.detail), (other.kind, other.detail));
        for (k, code) in [
            (ErrorKind::Ambiguous, ErrorCode::AmbiguousUser),
            (ErrorKind::Auth, ErrorCode::GraphAuth),
            (ErrorKind::Forbidden, ErrorCode::AccessDenied),
            (ErrorKind::GaveUp, ErrorCode::Unavailable),
        ] {
            assert_eq!(kind_code(k, false), code, "{k}");
        }
        assert_eq!(kind_code(ErrorKind::Network, true), ErrorCode::Unavailable);
        assert_eq!(
            kind_code(ErrorKind::Network, false),
            ErrorCode::ConnectionFailed
        );
    }
}
