//! The photobulk sidecar's wire protocol: JSON-RPC 2.0 between the PowerShell module (or any
//! JSON-RPC client) and `photobulk serve`.
//!
//! # What it is for
//! This crate is the only place the wire format is defined. The server maps these types to
//! calls into the library crates (imaging, directory, engine), which never see JSON-RPC; this
//! crate knows nothing of LDAP or pixels. `docs/protocol.md` describes the same protocol for
//! script authors, and a test keeps it in step with [`methods::CLIENT_METHODS`] and
//! [`ErrorCode::ALL`].
//!
//! # Shape (after rust-analyzer's `lsp-server`)
//! - [`msg`]: the envelope. [`Message`] is a [`Request`], [`Response`] or [`Notification`];
//!   [`Message::parse`] never panics and turns malformed input into the error reply to send.
//! - [`framing`]: newline-delimited JSON (what PowerShell 5.1's `StreamReader.ReadLine`
//!   speaks) and LSP `Content-Length` framing (StreamJsonRpc, vscode-jsonrpc), detected from a
//!   connection's first byte; a push [`Decoder`] with a size cap that skips oversize messages
//!   instead of buffering them.
//! - [`methods`]: one marker type per method with its name constant and typed params/result
//!   ([`methods::Method`], [`methods::Notify`]).
//! - [`error`]: [`ErrorCode`], one enum whose entries carry a JSON-RPC number and a stable
//!   `data.kind` string scripts switch on.
//!
//! # Lifecycle
//! `initialize` → work (`image.prepare`, `directory.connect`, `photo.*`, `bulk.*`,
//! `report.run`, any number, concurrently) → `shutdown` → `exit`. Requests before
//! `initialize` get `not_initialized`; requests after `shutdown` get `shutting_down`.
//! Long requests (`bulk.run`, `report.run`) stream notifications tagged with their request id
//! and stop early on `$/cancelRequest`, answering with what was done and `cancelled: true`.
//!
//! # Example exchange (NDJSON)
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientName":"PhotoBulk.psm1"}}
//! ← {"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"serverName":"photobulk","serverVersion":"0.1.0","capabilities":{…}}}
//! → {"jsonrpc":"2.0","id":2,"method":"photo.get","params":{"identity":"nobody"}}
//! ← {"jsonrpc":"2.0","id":2,"error":{"code":-32010,"message":"call directory.connect first","data":{"kind":"not_connected","retryable":false}}}
//! ```
//!
//! ```
//! use photobulk_protocol::{Decoder, Framing, Message, methods::{Method, Initialize}};
//! let mut d = Decoder::new(photobulk_protocol::DEFAULT_MAX_MESSAGE_BYTES);
//! d.feed(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}\n");
//! let frame = d.next_frame().unwrap().unwrap();
//! let Message::Request(req) = Message::parse(&frame).unwrap() else { panic!() };
//! assert_eq!(req.method, Initialize::NAME);
//! assert_eq!(d.framing(), Some(Framing::Lines));
//! ```

pub mod error;
pub mod framing;
pub mod methods;
pub mod msg;

pub use error::{ErrorCode, ErrorData, ItemError};
pub use framing::{Decoder, FrameError, Framing, DEFAULT_MAX_MESSAGE_BYTES};
pub use msg::{Message, Notification, ParseFailure, Request, RequestId, Response, ResponseError};

/// Windows PowerShell 5.1's `ConvertFrom-Json` refuses input over 2,097,152 characters;
/// results are kept under this.
pub const MAX_RESPONSE_BYTES: usize = 2_000_000;

/// The Unix socket path .NET's `NamedPipeClientStream` uses for a pipe name: `$TMPDIR/CoreFxPipe_NAME`
/// (`/tmp/` when `TMPDIR` is unset or empty).
pub fn unix_socket_path(pipe: &str, tmpdir: Option<&std::ffi::OsStr>) -> std::path::PathBuf {
    let dir = tmpdir
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/tmp/"));
    dir.join(format!("CoreFxPipe_{pipe}"))
}

/// Whether `name` is acceptable as a pipe name: 1–100 of letters, digits, `.`, `_`, `-`.
pub fn valid_pipe_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_classifies_and_reports_ids() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}"#);
        assert!(matches!(m, Ok(Message::Request(ref r)) if r.id == RequestId::String("a".into())));
        let m = Message::parse(br#"{"jsonrpc":"2.0","method":"exit"}"#);
        assert!(matches!(m, Ok(Message::Notification(_))));
        let e = Message::parse(b"{nope").unwrap_err();
        assert_eq!(e.error.code, -32700);
        assert_eq!(
            e.error.data.as_ref().map(|d| d.kind.as_str()),
            Some("parse_error")
        );
        let e = Message::parse(br#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((e.id, e.error.code), (Some(RequestId::Number(7)), -32600));
        let e = Message::parse(br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#).unwrap_err();
        assert_eq!(e.error.code, -32600);
        let e = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(e.error.code, -32600);
        let e = Message::parse(b"\xff\xfe").unwrap_err();
        assert_eq!(e.error.code, -32700);
    }

    #[test]
    fn responses_round_trip() {
        let r = Message::Response(Response::err(
            Some(RequestId::Number(3)),
            ResponseError::new(ErrorCode::UserNotFound, "no user").with_detail("user_not_found"),
        ));
        let v = r.to_value();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32014,"message":"no user",
                "data":{"kind":"user_not_found","retryable":false,"detail":"user_not_found"}}})
        );
        assert_eq!(Message::from_value(v).ok(), Some(r));
    }

    #[test]
    fn error_codes_are_unique_and_stable() {
        let mut codes: Vec<i64> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        let mut kinds: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.kind()).collect();
        codes.sort_unstable();
        codes.dedup();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(kinds.len(), ErrorCode::ALL.len());
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_kind(c.kind()), Some(*c));
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
        }
    }

    #[test]
    fn connect_params_never_show_the_password() {
        let p = methods::ConnectParams {
            password: Some("s3cret".into()),
            ..Default::default()
        };
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn socket_path_matches_dotnet() {
        assert_eq!(
            unix_socket_path("pb", None),
            std::path::Path::new("/tmp/CoreFxPipe_pb")
        );
        let t = std::ffi::OsStr::new("/run/x");
        assert_eq!(
            unix_socket_path("pb", Some(t)),
            std::path::Path::new("/run/x/CoreFxPipe_pb")
        );
        assert!(valid_pipe_name("PhotoBulk-1a2b"));
        assert!(!valid_pipe_name("../x") && !valid_pipe_name(""));
    }
}
