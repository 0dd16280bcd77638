//! Accepting clients: the [`Accept`] trait (the Unix socket, the Windows pipe, or a test's
//! own listener) and [`run`], the accept loop that ends when the server stops, exits, goes
//! idle, or its last client leaves. Above `conn` (it serves each connection), below `serve`.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::task::TaskTracker;

use crate::conn::serve_connection;
use crate::server::Server;

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
    use crate::server::Config;

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
