//! Library errors → protocol errors. The only place that knows both sides.
//!
//! Every library error has a stable `kind()` (`DirectoryError`, `GraphError`) and the engine
//! carries those kinds on its per-item results (plus a few of its own: `image`, `journal`,
//! `superseded`, …; the HD sync prefixes Graph's with `graph_`). [`kind_code`] is the one
//! table from a kind to a protocol error code: a library error and the same error met inside
//! a bulk job's item come out as the same code.

use photobulk_directory::DirectoryError;
use photobulk_imaging::ImagingError;
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

pub(crate) fn directory(e: &DirectoryError) -> ResponseError {
    ResponseError::new(kind_code(e.kind(), e.is_retryable()), e.to_string())
        .with_detail(e.kind())
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
        .with_detail(e.kind())
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
        kind: kind_code(&e.kind, e.retryable).kind().to_string(),
        message: e.message.clone(),
        retryable: e.retryable,
        detail: Some(e.kind.clone()),
    }
}

/// The one table: a library or engine error kind (and whether it is retryable) → the
/// protocol's error code.
pub(crate) fn kind_code(kind: &str, retryable: bool) -> ErrorCode {
    // The HD sync names Graph's kinds `graph_<kind>`; they mean what Graph's own do.
    let kind = kind.strip_prefix("graph_").unwrap_or(kind);
    match kind {
        // Sign-in (directory and Graph).
        "invalid_credentials"
        | "no_kerberos_ticket"
        | "kerberos_ticket_expired"
        | "kerberos_wrong_realm"
        | "kerberos_spn_unknown"
        | "kerberos" => ErrorCode::InvalidCredentials,
        "auth" | "token_rejected" | "credential" => ErrorCode::GraphAuth,
        // Reaching the server.
        "no_domain"
        | "no_dc_record"
        | "dns"
        | "all_dcs_failed"
        | "invalid_url"
        | "plaintext_bind_refused"
        | "tls_config"
        | "tls"
        | "connect"
        | "config" => ErrorCode::ConnectionFailed,
        "timeout" | "connection_lost" | "server_busy" | "gave_up" => ErrorCode::Unavailable,
        "network" | "http" if retryable => ErrorCode::Unavailable,
        "network" => ErrorCode::ConnectionFailed,
        // Rights.
        "insufficient_rights" | "unwilling" | "strong_auth_required" | "forbidden" => {
            ErrorCode::AccessDenied
        }
        // Who.
        "user_not_found" | "no_such_object" => ErrorCode::UserNotFound,
        "ambiguous" => ErrorCode::AmbiguousUser,
        "no_account" => ErrorCode::NoAccount,
        "no_mailbox" => ErrorCode::NoMailbox,
        "duplicate" | "superseded" => ErrorCode::Duplicate,
        // The photo.
        "photo_too_large" | "too_large" => ErrorCode::PhotoTooLarge,
        "photo_rejected" | "not_jpeg" | "image_rejected" => ErrorCode::PhotoRejected,
        "image" => ErrorCode::ImageInvalid,
        // Backups, journals, files.
        "backup_not_found" => ErrorCode::BackupNotFound,
        "backup_required" => ErrorCode::BackupRequired,
        "backup_io" | "backup_corrupt" | "io" | "bad_record" | "unreadable" | "journal" => {
            ErrorCode::Io
        }
        "invalid_attribute" => ErrorCode::InvalidParams,
        "cancelled" => ErrorCode::RequestCancelled,
        "internal" => ErrorCode::InternalError,
        _ => ErrorCode::Directory,
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
            kind_code("invalid_attribute", false),
            ErrorCode::InvalidParams
        );
        // Graph's kinds, bare (Graph calls) and prefixed (the HD sync's items).
        for (k, code) in [
            ("ambiguous", ErrorCode::AmbiguousUser),
            ("auth", ErrorCode::GraphAuth),
            ("forbidden", ErrorCode::AccessDenied),
            ("gave_up", ErrorCode::Unavailable),
        ] {
            assert_eq!(kind_code(k, false), code, "{k}");
            assert_eq!(kind_code(&format!("graph_{k}"), false), code, "graph_{k}");
        }
        assert_eq!(kind_code("network", true), ErrorCode::Unavailable);
        assert_eq!(kind_code("network", false), ErrorCode::ConnectionFailed);
    }
}
