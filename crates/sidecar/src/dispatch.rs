//! The top of the method tree: `initialize`'s answer and the router from a method name to
//! its family (`image`, `directory`, `graph`, `exchange`, `bulk`, `sync_hd`, `report`).
//! Nothing below imports this module.

use photobulk_imaging::Target;
use photobulk_protocol::methods::{self as m, Method};
use photobulk_protocol::{ErrorCode, Request, ResponseError};

use crate::common::{to_value, Outcome};
use crate::ctx::Ctx;

pub(crate) fn initialize(req: &Request) -> Outcome {
    let p = req.typed_params::<m::Initialize>()?;
    if let Some(v) = p.protocol_version {
        if v != m::PROTOCOL_VERSION {
            return Err(ResponseError::new(
                ErrorCode::InvalidParams,
                format!(
                    "protocol version {v} is not supported; this server speaks {}",
                    m::PROTOCOL_VERSION
                ),
            ));
        }
    }
    let mut formats: Vec<String> = ["jpeg", "png", "gif", "bmp", "tiff", "webp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if cfg!(feature = "heic") {
        formats.push("heic".into());
    }
    let targets = [Target::ad(), Target::hd()]
        .into_iter()
        .map(|t| m::TargetInfo {
            name: t.name,
            size: t.size,
            max_bytes: t.max_bytes,
        })
        .collect();
    to_value(&m::InitializeResult {
        protocol_version: m::PROTOCOL_VERSION,
        server_name: "photobulk".into(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        capabilities: m::Capabilities {
            formats,
            targets,
            methods: m::CLIENT_METHODS.iter().map(|s| s.to_string()).collect(),
            notifications: m::SERVER_NOTIFICATIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            framings: vec!["ndjson".into(), "content-length".into()],
            max_message_bytes: photobulk_protocol::DEFAULT_MAX_MESSAGE_BYTES,
            max_response_bytes: photobulk_protocol::MAX_RESPONSE_BYTES,
        },
        // Nothing is connected before the first request: see `environment.detect`.
        environment: None,
    })
}

/// Unit tests only: the method whose handler panics (to show a panic is answered).
#[cfg(test)]
pub(crate) static PANIC_IN: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

pub(crate) async fn dispatch(req: &Request, ctx: &Ctx) -> Outcome {
    #[cfg(test)]
    if PANIC_IN.lock().ok().and_then(|m| *m) == Some(req.method.as_str()) {
        panic!("test panic in {}", req.method);
    }
    match req.method.as_str() {
        m::ImagePrepare::NAME => {
            crate::image::prepare(req.typed_params::<m::ImagePrepare>()?, ctx).await
        }
        m::DirectoryConnect::NAME => {
            crate::directory::connect(req.typed_params::<m::DirectoryConnect>()?, ctx).await
        }
        m::GraphConnect::NAME => {
            to_value(&crate::graph::connect(req.typed_params::<m::GraphConnect>()?, ctx).await?)
        }
        m::BulkRecord::NAME => {
            to_value(&crate::exchange::record(req.typed_params::<m::BulkRecord>()?, ctx).await?)
        }
        m::PhotoGet::NAME => {
            crate::directory::photo_get(req.typed_params::<m::PhotoGet>()?, ctx).await
        }
        m::PhotoSet::NAME => {
            crate::directory::photo_set(req.typed_params::<m::PhotoSet>()?, ctx).await
        }
        m::PhotoRemove::NAME => {
            crate::directory::photo_remove(req.typed_params::<m::PhotoRemove>()?, ctx).await
        }
        m::PhotoRestore::NAME => {
            crate::directory::photo_restore(req.typed_params::<m::PhotoRestore>()?, ctx).await
        }
        m::BulkPlan::NAME => {
            to_value(&crate::bulk::plan(req.typed_params::<m::BulkPlan>()?, ctx).await?)
        }
        m::BulkRun::NAME => {
            to_value(&crate::bulk::run(req.typed_params::<m::BulkRun>()?, ctx).await?)
        }
        m::EnvironmentDetect::NAME => to_value(
            &crate::sync_hd::environment(req.typed_params::<m::EnvironmentDetect>()?, ctx).await,
        ),
        m::SyncHdToAd::NAME => {
            to_value(&crate::sync_hd::run(req.typed_params::<m::SyncHdToAd>()?, ctx).await?)
        }
        m::ReportRun::NAME => {
            to_value(&crate::report::run(req.typed_params::<m::ReportRun>()?, ctx).await?)
        }
        other => Err(ResponseError::new(
            ErrorCode::MethodNotFound,
            format!("unknown method {other:?}"),
        )),
    }
}
