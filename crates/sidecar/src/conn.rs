//! One connection: read frames, dispatch, write replies. See the crate docs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use photobulk_protocol::methods::{self, Method, Notify};
use photobulk_protocol::{
    Decoder, ErrorCode, FrameError, Framing, Message, Notification, Request, RequestId, Response,
    ResponseError,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handlers::{self, Session};
use crate::Server;

/// The sending side of a connection: every reply and notification goes through here to the
/// one writer task.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Vec<u8>>,
    framing: Framing,
}

impl Outbox {
    pub(crate) async fn send(&self, msg: &Message) {
        let json = serde_json::to_vec(&msg.to_value()).unwrap_or_default();
        let _ = self.tx.send(self.framing.encode(&json)).await;
    }
    pub(crate) async fn notify<N: Notify>(&self, params: &N::Params) {
        self.send(&Message::Notification(Notification::new::<N>(params)))
            .await;
    }
    async fn respond(&self, id: Option<RequestId>, outcome: Result<Value, ResponseError>) {
        let outcome = outcome.and_then(|v| {
            let len = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
            if len > photobulk_protocol::MAX_RESPONSE_BYTES {
                Err(ResponseError::new(
                    ErrorCode::InternalError,
                    format!("result of {len} bytes is over the response limit; ask for less (paths instead of data)"),
                ))
            } else {
                Ok(v)
            }
        });
        self.send(&Message::Response(Response { id, outcome }))
            .await;
    }
}

/// What a request handler gets.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub id: RequestId,
    pub cancel: CancellationToken,
    pub out: Outbox,
    pub session: Arc<Session>,
    pub server: Arc<Server>,
}

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
            let r = handlers::initialize(&req);
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
            while server.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            out.respond(Some(req.id), Ok(Value::Null)).await;
            server.stop();
        });
        return;
    }
    let cancel = state.cancel.child_token();
    if let Ok(mut m) = state.in_flight.lock() {
        m.insert(req.id.clone(), cancel.clone());
    }
    server.in_flight.fetch_add(1, Ordering::SeqCst);
    let ctx = Ctx {
        id: req.id.clone(),
        cancel,
        out: out.clone(),
        session: state.session.clone(),
        server: server.clone(),
    };
    let permits = state.permits.clone();
    let registry = state.in_flight.clone();
    state.tasks.spawn(async move {
        let _permit = permits.acquire_owned().await;
        let outcome = handlers::dispatch(&req, &ctx).await;
        if let Ok(mut m) = registry.lock() {
            m.remove(&req.id);
        }
        ctx.out.respond(Some(req.id), outcome).await;
        ctx.server.in_flight.fetch_sub(1, Ordering::SeqCst);
    });
}
