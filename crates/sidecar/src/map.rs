//! Library errors → protocol errors. The only place that knows both sides.

use photobulk_directory::DirectoryError;
use photobulk_imaging::ImagingError;
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

pub(crate) fn directory(e: &DirectoryError) -> ResponseError {
    use DirectoryError as D;
    let code = match e {
        D::InvalidCredentials { .. }
        | D::NoKerberosTicket { .. }
        | D::KerberosTicketExpired { .. }
        | D::KerberosWrongRealm { .. }
        | D::KerberosSpnUnknown { .. }
        | D::Kerberos { .. } => ErrorCode::InvalidCredentials,
        D::NoDomain | D::NoDcRecord { .. } | D::Dns { .. } | D::AllDcsFailed { .. } => {
            ErrorCode::ConnectionFailed
        }
        D::InvalidUrl { .. }
        | D::PlaintextBindRefused { .. }
        | D::TlsConfig(_)
        | D::Tls { .. }
        | D::Connect { .. } => ErrorCode::ConnectionFailed,
        D::Timeout { .. } | D::ConnectionLost { .. } | D::ServerBusy { .. } => {
            ErrorCode::Unavailable
        }
        D::InsufficientRights { .. } | D::Unwilling { .. } | D::StrongAuthRequired { .. } => {
            ErrorCode::AccessDenied
        }
        D::UserNotFound { .. } | D::NoSuchObject { .. } => ErrorCode::UserNotFound,
        D::Ambiguous { .. } => ErrorCode::AmbiguousUser,
        D::PhotoTooLarge { .. } => ErrorCode::PhotoTooLarge,
        D::PhotoRejected { .. } => ErrorCode::PhotoRejected,
        D::BackupNotFound(_) => ErrorCode::BackupNotFound,
        D::BackupRequired => ErrorCode::BackupRequired,
        D::BackupIo { .. } => ErrorCode::Io,
        D::InvalidAttribute(_) => ErrorCode::InvalidParams,
        _ => ErrorCode::Directory,
    };
    ResponseError::new(code, e.to_string())
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
    ResponseError::new(crate::graph::error_code(e), e.to_string())
        .with_detail(e.kind())
        .retryable(e.is_retryable())
}

pub(crate) fn io(what: impl std::fmt::Display, e: &std::io::Error) -> ResponseError {
    ResponseError::new(ErrorCode::Io, format!("{what}: {e}"))
}

pub(crate) fn item(e: ResponseError) -> ItemError {
    ItemError::from(e)
}
