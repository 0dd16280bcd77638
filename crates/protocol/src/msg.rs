//! The JSON-RPC 2.0 envelope: [`Message`] is a [`Request`], a [`Response`] or a
//! [`Notification`]; [`ResponseError`] carries an [`ErrorCode`] and [`ErrorData`].
//!
//! Parsing never panics and never trusts its input: [`Message::parse`] turns any bytes into
//! either a message or a [`ParseFailure`] holding the error reply to send (with the request id
//! when one could be read, so a client can match it).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, ErrorData};

/// A request id: JSON-RPC allows numbers and strings (PowerShell's module sends numbers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Number(n)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A call that expects exactly one [`Response`] with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    /// `params` as sent; `Value::Null` when absent.
    pub params: Value,
}

/// A message without an id; never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

/// The answer to a [`Request`]: exactly one of `result` / `error`. `id` is `None` only for
/// errors about a message whose id could not be read (JSON-RPC's `"id": null`).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Option<RequestId>,
    pub outcome: Result<Value, ResponseError>,
}

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// The JSON-RPC number of an [`ErrorCode`].
    pub code: i64,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
    /// For programs: always present in errors this server sends, with the stable `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

impl ResponseError {
    /// An error of `code` with `message`; `data.kind` is the code's kind.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ResponseError {
            code: code.code(),
            message: message.into(),
            data: Some(ErrorData::new(code)),
        }
    }
    /// The same error with `data.detail` set (the library's own error name).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        if let Some(d) = &mut self.data {
            d.detail = Some(detail.into());
        }
        self
    }
    /// The same error marked retryable (`data.retryable`).
    pub fn retryable(mut self, yes: bool) -> Self {
        if let Some(d) = &mut self.data {
            d.retryable = yes;
        }
        self
    }
    /// The [`ErrorCode`] named by `data.kind` (or, failing that, by `code`).
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.data
            .as_ref()
            .and_then(|d| ErrorCode::from_kind(&d.kind))
            .or_else(|| ErrorCode::from_code(self.code))
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ResponseError {}

/// Any JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Response(Response),
    Notification(Notification),
}

/// Why bytes are not a usable message, with the reply to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseFailure {
    /// The request id, when the message was an object with a readable id.
    pub id: Option<RequestId>,
    pub error: ResponseError,
}

impl Message {
    /// Read one message. Not JSON → `parse_error`; JSON but not a JSON-RPC 2.0 object (a
    /// batch array, a missing `method`, `"jsonrpc"` not `"2.0"`, a bad id) → `invalid_request`.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseFailure> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ParseFailure {
            id: None,
            error: ResponseError::new(ErrorCode::ParseError, format!("not valid JSON: {e}")),
        })?;
        Message::from_value(value)
    }

    /// Classify an already parsed JSON value (see [`Message::parse`]).
    pub fn from_value(value: Value) -> Result<Message, ParseFailure> {
        let invalid = |id: Option<RequestId>, why: &str| ParseFailure {
            id,
            error: ResponseError::new(ErrorCode::InvalidRequest, why.to_string()),
        };
        let Value::Object(mut obj) = value else {
            let why = if value.is_array() {
                "batch requests are not supported: send one object per message"
            } else {
                "a JSON-RPC message must be a JSON object"
            };
            return Err(invalid(None, why));
        };
        let id = match obj.remove("id") {
            None => None,
            Some(v) => match serde_json::from_value::<RequestId>(v.clone()) {
                Ok(id) => Some(id),
                Err(_) if v.is_null() => None,
                Err(_) => return Err(invalid(None, "\"id\" must be a number or a string")),
            },
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(id, "\"jsonrpc\" must be \"2.0\""));
        }
        let params = obj.remove("params").unwrap_or(Value::Null);
        if let Some(method) = obj.remove("method") {
            let Value::String(method) = method else {
                return Err(invalid(id, "\"method\" must be a string"));
            };
            if !(params.is_null() || params.is_object() || params.is_array()) {
                return Err(invalid(id, "\"params\" must be an object or an array"));
            }
            return Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            });
        }
        if let Some(err) = obj.remove("error") {
            let error: ResponseError = serde_json::from_value(err)
                .map_err(|_| invalid(id.clone(), "\"error\" must have a code and a message"))?;
            return Ok(Message::Response(Response {
                id,
                outcome: Err(error),
            }));
        }
        match obj.remove("result") {
            Some(result) => Ok(Message::Response(Response {
                id,
                outcome: Ok(result),
            })),
            None => Err(invalid(
                id,
                "a message needs \"method\", \"result\" or \"error\"",
            )),
        }
    }

    /// The message as a JSON value with `"jsonrpc": "2.0"`.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("jsonrpc".into(), Value::from("2.0"));
        let id_value = |id: &RequestId| serde_json::to_value(id).unwrap_or(Value::Null);
        match self {
            Message::Request(r) => {
                obj.insert("id".into(), id_value(&r.id));
                obj.insert("method".into(), Value::from(r.method.clone()));
                if !r.params.is_null() {
                    obj.insert("params".into(), r.params.clone());
                }
            }
            Message::Notification(n) => {
                obj.insert("method".into(), Value::from(n.method.clone()));
                if !n.params.is_null() {
                    obj.insert("params".into(), n.params.clone());
                }
            }
            Message::Response(r) => {
                obj.insert(
                    "id".into(),
                    r.id.as_ref().map(id_value).unwrap_or(Value::Null),
                );
                match &r.outcome {
                    Ok(v) => obj.insert("result".into(), v.clone()),
                    Err(e) => obj.insert(
                        "error".into(),
                        serde_json::to_value(e).unwrap_or(Value::Null),
                    ),
                };
            }
        }
        Value::Object(obj)
    }
}

impl Response {
    pub fn ok(id: RequestId, result: Value) -> Self {
        Response {
            id: Some(id),
            outcome: Ok(result),
        }
    }
    pub fn err(id: Option<RequestId>, error: ResponseError) -> Self {
        Response {
            id,
            outcome: Err(error),
        }
    }
}

impl Notification {
    /// A notification of a typed method ([`crate::methods::Notify`]).
    pub fn new<N: crate::methods::Notify>(params: &N::Params) -> Self {
        Notification {
            method: N::NAME.to_string(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        }
    }
}

impl Request {
    /// A request of a typed method ([`crate::methods::Method`]).
    pub fn new<M: crate::methods::Method>(id: impl Into<RequestId>, params: &M::Params) -> Self {
        Request {
            id: id.into(),
            method: M::NAME.to_string(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        }
    }

    /// `params` as the method's typed parameters; `invalid_params` otherwise. Absent params
    /// read as `{}`, so methods whose fields all have defaults may be called without any.
    pub fn typed_params<M: crate::methods::Method>(&self) -> Result<M::Params, ResponseError> {
        let params = if self.params.is_null() {
            Value::Object(Map::new())
        } else {
            self.params.clone()
        };
        serde_json::from_value(params).map_err(|e| {
            ResponseError::new(ErrorCode::InvalidParams, format!("{}: {e}", self.method))
        })
    }
}
