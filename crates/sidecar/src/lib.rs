//! The `photobulk serve` sidecar: a JSON-RPC 2.0 server on a named pipe (Windows) or a Unix
//! socket at .NET's `CoreFxPipe_NAME` path, through which the PowerShell module (or any
//! JSON-RPC client) hands image work and directory writes to the Rust libraries.
//!
//! # What it is for
//! Admin scripts stay in PowerShell; conversion, LDAP and bulk bookkeeping run here. The wire
//! format is `photobulk_protocol`'s; this crate maps it onto `photobulk_imaging`,
//! `photobulk_directory` and `photobulk_engine`, which never see JSON-RPC.
//!
//! # Why it is shaped so (after tokio's mini-redis and rust-analyzer's lsp-server)
//! - [`run`] takes the listener ([`Accept`]) and the [`Server`] (with its stop signals) as
//!   arguments, so tests bind their own; [`serve_connection`] takes any
//!   `AsyncRead + AsyncWrite`, so dispatch is tested over `tokio::io::duplex` with no socket.
//! - One reader per connection cuts frames ([`photobulk_protocol::Decoder`], framing detected
//!   from the first byte) and dispatches; each request runs as its own task with a
//!   cancellation token, so `$/cancelRequest` and new requests are read while `bulk.run`
//!   works; one writer task owns the write half (nothing else writes to the pipe).
//! - Bad input is answered, never fatal: malformed JSON, unknown methods, bad params and
//!   oversize messages get JSON-RPC errors and the connection stays up. Only a
//!   `Content-Length` stream that lost sync is closed (after an error reply).
//! - Shutdown is graceful: cancellation is checked *between* items, so an LDAP write in
//!   flight completes and its journal line is written; [`run`] waits for every connection,
//!   and every connection for its requests, before returning.
//! - Secrets (the bind password) arrive only in `directory.connect` params; requests are never
//!   logged with their params, and results never echo the password.
//!
//! # Lifecycle of the process
//! It prints one start line on stdout (`{"status":"started",…}` or `{"status":"failed",…}`,
//! [`photobulk_protocol::methods::StartLine`]), logs to stderr or a file, and exits on
//! `shutdown` (after in-flight requests finish), on `exit`, when its last client disconnects
//! (unless `--persist`), or after an idle timeout with no client connected.

// The module tree, leaves first (no module imports one above it):
// - leaves: `server` (shared state, stop signals), `session` (a connection's sign-ins),
//   `ctx` (what a handler gets), `map` (library errors → protocol errors, the only place),
//   `common` (helpers every family shares);
// - one module per method family: `image`, `directory`, `graph`, `exchange`, `ad_bulk`,
//   `sync_hd`, `report`, and `bulk` (bulk.plan / bulk.run over the target families);
// - on top: `dispatch` (method name → family), `conn` (one connection), and this file's
//   `listen` ([`run`], the accept loop), then `serve` (the process: socket or pipe, signals).
mod ad_bulk;
mod bulk;
mod common;
mod conn;
mod ctx;
mod directory;
mod dispatch;
mod exchange;
mod graph;
mod image;
mod listen;
mod map;
mod report;
pub mod serve;
mod server;
mod session;
mod sync_hd;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

pub use conn::serve_connection;
pub use listen::{run, Accept};
pub use server::{Config, LogSink, Server};
