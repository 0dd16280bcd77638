//! What a request handler gets ([`Ctx`]): its id and cancellation token, the connection's
//! [`Outbox`] (replies and notifications go through the one writer task), the session and
//! the server. A leaf below every method family.

use std::sync::Arc;

use photobulk_protocol::methods::Notify;
use photobulk_protocol::{
    ErrorCode, Framing, Message, Notification, RequestId, Response, ResponseError,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::server::Server;
use crate::session::Session;

/// The sending side of a connection: every reply and notification goes through here to the
/// one writer task.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) tx: mpsc::Sender<Vec<u8>>,
    pub(crate) framing: Framing,
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
    pub(crate) async fn respond(
        &self,
        id: Option<RequestId>,
        outcome: Result<Value, ResponseError>,
    ) {
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
