//! The state every connection shares: the configuration, the stop signals, the request
//! tracker and the log. A leaf: it knows nothing of connections or methods.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    pub(crate) stop: CancellationToken,
    /// Cancel running requests (between items). Set by `exit`, signals, disconnects (per
    /// connection, through child tokens).
    pub(crate) cancel: CancellationToken,
    pub(crate) shutting_down: AtomicBool,
    /// A client has sent at least one message (a bare connect, e.g. a liveness probe by a
    /// second server, does not count towards "the last client left").
    pub(crate) had_client: AtomicBool,
    pub(crate) connections: AtomicUsize,
    /// Every request's handler task, on every connection: `shutdown` waits on it.
    pub(crate) requests: TaskTracker,
    pub(crate) changed: tokio::sync::Notify,
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
            requests: TaskTracker::new(),
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

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst) || self.stop.is_cancelled()
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}
