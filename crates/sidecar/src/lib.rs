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

mod bulk;
mod bulk_engine;
mod conn;
mod exchange;
mod graph;
mod handlers;
mod map;
mod report;
pub mod serve;
mod sync_hd;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use conn::serve_connection;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Cap on one incoming message (16 MiB by default).
    pub max_message_bytes: usize,
    /// Exit after this long with no client connected.
    pub idle_timeout: Option<Duration>,
    /// Exit when the last connected client disconnects (the module's sidecar does).
    pub exit_when_last_client_leaves: bool,
    /// Requests one connection may run at once; more wait.
    pub max_concurrent_requests: usize,
    /// Default backup folder for writes when `directory.connect` names none.
    pub backup_dir: Option<PathBuf>,
    /// Where default output folders are made (the system temporary folder by default).
    pub work_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_bytes: photobulk_protocol::DEFAULT_MAX_MESSAGE_BYTES,
            idle_timeout: Some(Duration::from_secs(900)),
            exit_when_last_client_leaves: true,
            max_concurrent_requests: 8,
            backup_dir: None,
            work_dir: std::env::temp_dir(),
        }
    }
}

/// Where log lines go. Never the pipe.
pub type LogSink = Box<dyn Write + Send>;

/// The state all connections share: config, stop signals, the log.
pub struct Server {
    pub config: Config,
    /// Stop accepting and reading; connections finish their requests and close.
    stop: CancellationToken,
    /// Cancel running requests (between items). Set by `exit`, signals, disconnects (per
    /// connection, through child tokens).
    cancel: CancellationToken,
    shutting_down: AtomicBool,
    /// A client has sent at least one message (a bare connect, e.g. a liveness probe by a
    /// second server, does not count towards "the last client left").
    had_client: AtomicBool,
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    changed: tokio::sync::Notify,
    log: Mutex<LogSink>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(config: Config, log: LogSink) -> Arc<Server> {
        Arc::new(Server {
            config,
            stop: CancellationToken::new(),
            cancel: CancellationToken::new(),
            shutting_down: AtomicBool::new(false),
            had_client: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            changed: tokio::sync::Notify::new(),
            log: Mutex::new(log),
        })
    }

    /// A server logging to stderr.
    pub fn with_stderr(config: Config) -> Arc<Server> {
        Server::new(config, Box::new(std::io::stderr()))
    }

    /// Write one log line (stderr or the log file; never the pipe).
    pub fn log(&self, msg: impl std::fmt::Display) {
        if let Ok(mut w) = self.log.lock() {
            let _ = writeln!(w, "photobulk serve[{}]: {msg}", std::process::id());
            let _ = w.flush();
        }
    }

    /// Exit now: stop accepting, cancel running requests between items, close connections.
    pub fn exit(&self) {
        self.cancel.cancel();
        self.stop.cancel();
    }

    /// Stop accepting and close connections once their requests are done.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst) || self.stop.is_cancelled()
    }

    fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// A listener: the Unix socket, the Windows pipe, or a test's own.
pub trait Accept: Send {
    type Conn: AsyncRead + AsyncWrite + Send + 'static;
    /// The next client (already checked: same user).
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send;
}

/// Accept clients until the server stops, exits, goes idle, or (when configured) its last
/// client leaves; then wait for every connection to finish.
pub async fn run<L: Accept>(mut listener: L, server: Arc<Server>) {
    let tracker = TaskTracker::new();
    loop {
        // Registered before the count is read, so no change is missed.
        let changed = server.changed.notified();
        let idle = server.connections.load(Ordering::SeqCst) == 0;
        let had_client = server.had_client.load(Ordering::SeqCst);
        if idle && had_client && server.config.exit_when_last_client_leaves {
            server.log("last client disconnected: exiting");
            break;
        }
        let idle_sleep = async {
            match (idle, server.config.idle_timeout) {
                (true, Some(t)) => tokio::time::sleep(t).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = server.stop.cancelled() => break,
            _ = changed => {}
            _ = idle_sleep => {
                server.log("idle timeout with no client connected: exiting");
                break;
            }
            r = listener.accept() => match r {
                Ok(stream) => {
                    server.connection_opened();
                    let s = server.clone();
                    tracker.spawn(async move {
                        serve_connection(stream, s.clone()).await;
                        s.connection_closed();
                    });
                }
                Err(e) => {
                    server.log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    server.stop();
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener nobody ever connects to.
    struct Nobody;
    impl Accept for Nobody {
        type Conn = tokio::io::DuplexStream;
        fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send {
            std::future::pending()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_the_server() {
        let config = Config {
            idle_timeout: Some(Duration::from_secs(900)),
            ..Config::default()
        };
        let server = Server::new(config, Box::new(std::io::sink()));
        let t0 = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(901), run(Nobody, server))
            .await
            .expect("run returns after the idle timeout");
        assert!(t0.elapsed() >= Duration::from_secs(900));
    }

    #[tokio::test(start_paused = true)]
    async fn without_idle_timeout_only_stop_ends_the_server() {
        let config = Config {
            idle_timeout: None,
            ..Config::default()
        };
        let server = Server::new(config, Box::new(std::io::sink()));
        let task = tokio::spawn(run(Nobody, server.clone()));
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        assert!(!task.is_finished());
        server.exit();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("run returns after exit")
            .expect("no panic");
    }
}
