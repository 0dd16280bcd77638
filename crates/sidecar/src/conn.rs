//! One connection: read frames, dispatch, write replies. See the crate docs.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;

use photobulk_protocol::methods::{self, Method, Notify};
use photobulk_protocol::{
    Decoder, ErrorCode, FrameError, Framing, Message, Notification, Request, RequestId,
    ResponseError,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ctx::{Ctx, Outbox};
use crate::dispatch;
use crate::server::Server;
use crate::session::Session;

struct ConnState {
    initialized: AtomicBool,
    in_flight: Arc<Mutex<HashMap<RequestId, CancellationToken>>>,
    tasks: TaskTracker,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
    session: Arc<Session>,
}

/// Serve one client until it disconnects, the server stops, or the stream loses sync.
/// Returns after every request of this connection has finished and its reply was written.
pub async fn serve_connection<S>(stream: S, server: Arc<Server>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let conn_cancel = server.cancel.child_token();
    let writer_cancel = conn_cancel.clone();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                // The client is gone: stop its work.
                writer_cancel.cancel();
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let state = ConnState {
        initialized: AtomicBool::new(false),
        in_flight: Arc::new(Mutex::new(HashMap::new())),
        tasks: TaskTracker::new(),
        permits: Arc::new(Semaphore::new(server.config.max_concurrent_requests.max(1))),
        cancel: conn_cancel.clone(),
        session: Arc::new(Session::new(server.config.backup_dir.clone())),
    };
    let mut decoder = Decoder::new(server.config.max_message_bytes);
    let mut out: Option<Outbox> = None;
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = tokio::select! {
            _ = server.stop.cancelled() => break 'read,
            _ = conn_cancel.cancelled() => break 'read,
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    if !server.is_stopping() {
                        server.log("client disconnected");
                    }
                    // Disconnect: running requests of this client stop between items.
                    conn_cancel.cancel();
                    break 'read;
                }
                Ok(n) => n,
            },
        };
        decoder.feed(&buf[..n]);
        server.had_client.store(true, Ordering::SeqCst);
        while let Some(frame) = decoder.next_frame() {
            let outbox = out.get_or_insert_with(|| Outbox {
                tx: tx.clone(),
                framing: decoder.framing().unwrap_or(Framing::Lines),
            });
            match frame {
                Ok(bytes) => handle_frame(&bytes, outbox, &state, &server).await,
                Err(e) => {
                    server.log(format_args!("framing: {e}"));
                    let code = match e {
                        FrameError::TooLarge { .. } => ErrorCode::MessageTooLarge,
                        FrameError::BadHeader(_) => ErrorCode::ParseError,
                    };
                    outbox
                        .respond(None, Err(ResponseError::new(code, e.to_string())))
                        .await;
                    if e.is_fatal() {
                        break 'read;
                    }
                }
            }
        }
    }
    // Let requests finish (those cancelled stop at their next checkpoint), then close.
    state.tasks.close();
    state.tasks.wait().await;
    drop(out);
    drop(tx);
    let _ = writer.await;
}

async fn handle_frame(bytes: &[u8], out: &Outbox, state: &ConnState, server: &Arc<Server>) {
    match Message::parse(bytes) {
        Err(failure) => out.respond(failure.id, Err(failure.error)).await,
        Ok(Message::Response(_)) => {} // the server sends no requests
        Ok(Message::Notification(n)) => handle_notification(n, state, server),
        Ok(Message::Request(req)) => handle_request(req, out, state, server).await,
    }
}

fn handle_notification(n: Notification, state: &ConnState, server: &Arc<Server>) {
    match n.method.as_str() {
        methods::Exit::NAME => {
            server.log("exit requested");
            server.exit();
        }
        methods::CancelRequest::NAME => {
            if let Ok(p) = serde_json::from_value::<methods::CancelParams>(n.params) {
                if let Some(t) = state
                    .in_flight
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&p.id).cloned())
                {
                    t.cancel();
                }
            }
        }
        _ => {} // unknown notifications are ignored (JSON-RPC: never answered)
    }
}

async fn handle_request(req: Request, out: &Outbox, state: &ConnState, server: &Arc<Server>) {
    let method = req.method.as_str();
    if !methods::CLIENT_METHODS.contains(&method) || method == methods::CancelRequest::NAME {
        let msg = format!("unknown method {method:?}");
        return out
            .respond(
                Some(req.id),
                Err(ResponseError::new(ErrorCode::MethodNotFound, msg)),
            )
            .await;
    }
    if method == methods::Exit::NAME {
        out.respond(Some(req.id), Ok(Value::Null)).await;
        server.log("exit requested");
        server.exit();
        return;
    }
    if method == methods::Initialize::NAME {
        let outcome = if state.initialized.load(Ordering::SeqCst) {
            Err(ResponseError::new(
                ErrorCode::InvalidRequest,
                "already initialized",
            ))
        } else {
            let r = dispatch::initialize(&req);
            if r.is_ok() {
                state.initialized.store(true, Ordering::SeqCst);
            }
            r
        };
        return out.respond(Some(req.id), outcome).await;
    }
    if !state.initialized.load(Ordering::SeqCst) && method != methods::Shutdown::NAME {
        let e = ResponseError::new(ErrorCode::ServerNotInitialized, "send initialize first");
        return out.respond(Some(req.id), Err(e)).await;
    }
    if server.is_shutting_down() {
        let e = ResponseError::new(ErrorCode::ShuttingDown, "the server is shutting down");
        return out.respond(Some(req.id), Err(e)).await;
    }
    if method == methods::Shutdown::NAME {
        server.shutting_down.store(true, Ordering::SeqCst);
        server.log("shutdown requested: finishing in-flight requests");
        let (out, server) = (out.clone(), server.clone());
        state.tasks.spawn(async move {
            // Every request handler runs inside `server.requests`; no new one is accepted
            // from here on, so the tracker empties when the last handler ends (a handler that
            // panicked counts as ended: its reply is an internal error, see below).
            server.requests.close();
            server.requests.wait().await;
            out.respond(Some(req.id), Ok(Value::Null)).await;
            server.stop();
        });
        return;
    }
    let cancel = state.cancel.child_token();
    if let Ok(mut m) = state.in_flight.lock() {
        m.insert(req.id.clone(), cancel.clone());
    }
    let ctx = Ctx {
        id: req.id.clone(),
        cancel,
        out: out.clone(),
        session: state.session.clone(),
        server: server.clone(),
    };
    let permits = state.permits.clone();
    let registry = state.in_flight.clone();
    let handler = server.requests.track_future(async move {
        let _permit = permits.acquire_owned().await;
        // A handler that panics is answered (internal error) instead of leaving its caller,
        // and a later `shutdown`, waiting for a reply that never comes.
        let outcome = AssertUnwindSafe(dispatch::dispatch(&req, &ctx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                ctx.server.log(format_args!(
                    "{} {}: the handler panicked",
                    req.method, req.id
                ));
                Err(ResponseError::new(
                    ErrorCode::InternalError,
                    format!(
                        "{} failed inside the server (a bug: see its log)",
                        req.method
                    ),
                ))
            });
        if let Ok(mut m) = registry.lock() {
            m.remove(&req.id);
        }
        ctx.out.respond(Some(req.id), outcome).await;
    });
    state.tasks.spawn(handler);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Config;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// A handler that panics gets an `internal_error` reply, and a `shutdown` sent after it
    /// is still answered (it waits on the handlers, which all ended), then the server stops.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_and_shutdown_still_completes() {
        *crate::dispatch::PANIC_IN.lock().expect("lock") = Some(methods::PhotoGet::NAME);
        let (client, server_end) = tokio::io::duplex(1 << 16);
        let server = Server::new(Config::default(), Box::new(std::io::sink()));
        let task = tokio::spawn(serve_connection(server_end, server.clone()));
        let (rd, mut wr) = tokio::io::split(client);
        let mut rd = BufReader::new(rd);
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"photo.get","params":{"identity":"x"}}"#,
        ] {
            wr.write_all(format!("{line}\n").as_bytes())
                .await
                .expect("write");
        }
        let mut replies = Vec::new();
        while replies.len() < 2 {
            let mut l = String::new();
            let n = tokio::time::timeout(std::time::Duration::from_secs(20), rd.read_line(&mut l))
                .await
                .expect("a reply in time")
                .expect("read");
            assert!(n > 0, "the connection closed early");
            replies.push(serde_json::from_str::<Value>(&l).expect("JSON"));
        }
        let panicked = replies.iter().find(|r| r["id"] == 2).expect("reply to 2");
        assert_eq!(
            panicked["error"]["data"]["kind"], "internal_error",
            "{panicked}"
        );
        wr.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\"}\n")
            .await
            .expect("write");
        let mut l = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(20), rd.read_line(&mut l))
            .await
            .expect("shutdown answered in time")
            .expect("read");
        let reply: Value = serde_json::from_str(&l).expect("JSON");
        assert_eq!(reply["id"], 3, "{reply}");
        assert_eq!(reply["result"], Value::Null, "{reply}");
        assert!(server.is_stopping());
        *crate::dispatch::PANIC_IN.lock().expect("lock") = None;
        drop(wr);
        tokio::time::timeout(std::time::Duration::from_secs(20), task)
            .await
            .expect("the connection ends")
            .expect("no panic escapes the connection");
    }
}
