//! Method handlers: protocol params in, library calls, protocol results out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use photobulk_directory::{
    check_photo_size, sha256_hex, AuthMethod, BackupStore, ConnectOptions, Credentials, Directory,
    Locator, Lookup, Password, RestoreFrom, WriteOptions,
};
use photobulk_imaging::{Crop as ImgCrop, Options, Target};
use photobulk_protocol::methods::{self as m, Method};
use photobulk_protocol::{ErrorCode, Request, ResponseError};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::conn::Ctx;
use crate::map;

/// A connection's directory binding.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    pub dir: Directory,
    pub backup: Option<BackupStore>,
    /// The backup folder (also where the sync-HD journal goes).
    pub backup_dir: Option<PathBuf>,
    /// How it was reached, for `environment.detect` (which probes with a fresh connection).
    pub settings: std::sync::Arc<photobulk_engine::environment::DirectorySettings>,
}

/// Per-connection state.
#[derive(Debug)]
pub(crate) struct Session {
    bound: Mutex<Option<Bound>>,
    graph: Mutex<Option<crate::graph::GraphBound>>,
    default_backup_dir: Option<PathBuf>,
}

impl Session {
    pub(crate) fn new(default_backup_dir: Option<PathBuf>) -> Self {
        Session {
            bound: Mutex::new(None),
            graph: Mutex::new(None),
            default_backup_dir,
        }
    }
    pub(crate) fn default_backup_dir(&self) -> Option<&Path> {
        self.default_backup_dir.as_deref()
    }
    pub(crate) async fn graph(&self) -> Result<crate::graph::GraphBound, ResponseError> {
        self.graph
            .lock()
            .await
            .clone()
            .ok_or_else(|| ResponseError::new(ErrorCode::NotConnected, "call graph.connect first"))
    }
    pub(crate) async fn set_graph(&self, g: crate::graph::GraphBound) {
        *self.graph.lock().await = Some(g);
    }
    /// The directory binding, if any (no error when there is none).
    pub(crate) async fn bound_opt(&self) -> Option<Bound> {
        self.bound.lock().await.clone()
    }
    /// The Graph sign-in, if any.
    pub(crate) async fn graph_opt(&self) -> Option<crate::graph::GraphBound> {
        self.graph.lock().await.clone()
    }
    pub(crate) async fn bound(&self) -> Result<Bound, ResponseError> {
        self.bound.lock().await.clone().ok_or_else(|| {
            ResponseError::new(ErrorCode::NotConnected, "call directory.connect first")
        })
    }
}

type Outcome = Result<Value, ResponseError>;

fn to_value<T: Serialize>(v: &T) -> Outcome {
    serde_json::to_value(v).map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))
}

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

pub(crate) async fn dispatch(req: &Request, ctx: &Ctx) -> Outcome {
    match req.method.as_str() {
        m::ImagePrepare::NAME => prepare(req.typed_params::<m::ImagePrepare>()?, ctx).await,
        m::DirectoryConnect::NAME => connect(req.typed_params::<m::DirectoryConnect>()?, ctx).await,
        m::GraphConnect::NAME => {
            to_value(&crate::graph::connect(req.typed_params::<m::GraphConnect>()?, ctx).await?)
        }
        m::BulkRecord::NAME => {
            to_value(&crate::exchange::record(req.typed_params::<m::BulkRecord>()?, ctx).await?)
        }
        m::PhotoGet::NAME => photo_get(req.typed_params::<m::PhotoGet>()?, ctx).await,
        m::PhotoSet::NAME => photo_set(req.typed_params::<m::PhotoSet>()?, ctx).await,
        m::PhotoRemove::NAME => photo_remove(req.typed_params::<m::PhotoRemove>()?, ctx).await,
        m::PhotoRestore::NAME => photo_restore(req.typed_params::<m::PhotoRestore>()?, ctx).await,
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

pub(crate) fn lookup(match_by: &Option<String>) -> Result<Lookup, ResponseError> {
    Lookup::parse(match_by.as_deref().unwrap_or("samaccountname"))
        .map_err(|e| ResponseError::new(ErrorCode::InvalidParams, format!("matchBy: {e}")))
}

pub(crate) fn crop(c: m::Crop) -> ImgCrop {
    match c {
        m::Crop::Face => ImgCrop::Face,
        m::Crop::Center => ImgCrop::Center,
        m::Crop::Top => ImgCrop::Top,
        m::Crop::Pad => ImgCrop::Pad,
    }
}

pub(crate) fn write_options(bound: &Bound, no_backup: bool) -> Result<WriteOptions, ResponseError> {
    match (&bound.backup, no_backup) {
        (_, true) => Ok(WriteOptions::without_backup()),
        (Some(s), false) => Ok(WriteOptions::backup_to(s.clone())),
        (None, false) => Err(map::directory(
            &photobulk_directory::DirectoryError::BackupRequired,
        )),
    }
}

/// A fresh output folder under the work folder.
pub(crate) fn fresh_dir(ctx: &Ctx, prefix: &str) -> Result<PathBuf, ResponseError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = ctx
        .server
        .config
        .work_dir
        .join(format!("photobulk-{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| map::io(dir.display(), &e))?;
    Ok(dir)
}

/// One file converted: its outputs (with the files written) and how it was framed.
#[derive(Debug)]
pub(crate) struct Converted {
    pub outputs: Vec<(photobulk_imaging::Output, PathBuf)>,
    pub crop: Option<m::CropRect>,
    pub face: Option<m::FaceRect>,
    pub warnings: Vec<m::ImageWarning>,
}

impl Converted {
    /// Put the framing (crop, face, warnings) on a bulk item.
    pub(crate) fn frame(&self, item: &mut m::BulkItem) {
        item.crop = self.crop;
        item.face = self.face;
        item.warnings = self.warnings.clone();
    }
}

pub(crate) fn crop_rect(c: photobulk_imaging::CropBox) -> m::CropRect {
    m::CropRect {
        x: c.x,
        y: c.y,
        width: c.width,
        height: c.height,
    }
}

pub(crate) fn face_rect(f: photobulk_imaging::FaceBox) -> m::FaceRect {
    m::FaceRect {
        x: f.x,
        y: f.y,
        width: f.width,
        height: f.height,
        score: f.score,
    }
}

pub(crate) fn image_warning(w: &photobulk_imaging::Warning) -> m::ImageWarning {
    m::ImageWarning {
        kind: w.code().to_string(),
        message: w.to_string(),
    }
}

/// Convert one file for `targets`, write `out/<target>/<name>.jpg` for each.
pub(crate) fn convert_file(
    path: &Path,
    name: &str,
    targets: &[Target],
    crop_: ImgCrop,
    out: &Path,
) -> Result<Converted, ResponseError> {
    let data = std::fs::read(path).map_err(|e| map::io(path.display(), &e))?;
    let opts = Options {
        crop: crop_,
        targets: targets.to_vec(),
        ..Options::default()
    };
    let conv = photobulk_imaging::convert(&data, &opts).map_err(|e| map::imaging(&e))?;
    let mut written = Converted {
        outputs: Vec::new(),
        crop: conv.outputs.first().map(|o| crop_rect(o.crop)),
        face: conv.face.map(face_rect),
        warnings: conv.warnings.iter().map(image_warning).collect(),
    };
    for o in conv.outputs {
        let dir = out.join(&o.target);
        std::fs::create_dir_all(&dir).map_err(|e| map::io(dir.display(), &e))?;
        let file = dir.join(format!("{}.jpg", safe_file_name(name)));
        photobulk_engine::convert::write_atomic(&file, &o.jpeg)
            .map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?;
        written.outputs.push((o, file));
    }
    Ok(written)
}

fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn targets_named(names: &[String]) -> Result<Vec<Target>, ResponseError> {
    if names.is_empty() {
        return Ok(vec![Target::ad(), Target::hd()]);
    }
    names
        .iter()
        .map(|n| match n.to_ascii_lowercase().as_str() {
            "ad" => Ok(Target::ad()),
            "hd" => Ok(Target::hd()),
            _ => Err(ResponseError::new(
                ErrorCode::InvalidParams,
                format!("unknown target {n:?} (ad, hd)"),
            )),
        })
        .collect()
}

async fn prepare(p: m::PrepareParams, ctx: &Ctx) -> Outcome {
    if p.paths.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "paths is empty",
        ));
    }
    let targets = targets_named(&p.targets)?;
    let out_dir = match &p.out_dir {
        Some(d) => PathBuf::from(d),
        None => fresh_dir(ctx, "prepare")?,
    };
    let inputs: Vec<PathBuf> = p.paths.iter().map(PathBuf::from).collect();
    let cancel = ctx.cancel.clone();
    let crop_ = crop(p.crop);
    let include = p.include_data;
    let out = out_dir.clone();
    let items = tokio::task::spawn_blocking(move || {
        let plan = photobulk_engine::plan(&inputs, photobulk_engine::PlanOptions::default());
        let mut budget = photobulk_protocol::MAX_RESPONSE_BYTES - 256 * 1024;
        let mut items = Vec::new();
        for it in plan.items {
            let path = it.path.display().to_string();
            let mut item = m::PreparedItem {
                path: path.clone(),
                account: it.account.clone(),
                ok: false,
                outputs: vec![],
                error: None,
                crop: None,
                face: None,
                warnings: Vec::new(),
            };
            if cancel.is_cancelled() {
                item.error = Some(photobulk_protocol::ItemError::new(
                    ErrorCode::RequestCancelled,
                    "cancelled",
                ));
                items.push(item);
                continue;
            }
            let name = it.account.clone().unwrap_or_else(|| {
                it.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "photo".into())
            });
            let result = match &it.verdict {
                photobulk_engine::Verdict::Duplicate { others } => Err(ResponseError::new(
                    ErrorCode::Duplicate,
                    format!(
                        "{name} is also named by {}",
                        others
                            .iter()
                            .map(|o| o.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                photobulk_engine::Verdict::Unreadable { reason } => Err(ResponseError::new(
                    ErrorCode::Io,
                    format!("{path}: {reason}"),
                )),
                _ => convert_file(&it.path, &name, &targets, crop_, &out),
            };
            match result {
                Ok(conv) => {
                    item.ok = true;
                    item.crop = conv.crop;
                    item.face = conv.face;
                    item.warnings = conv.warnings;
                    for (o, file) in conv.outputs {
                        let b64_len = o.jpeg.len().div_ceil(3) * 4;
                        let data = (include && b64_len < budget).then(|| {
                            budget -= b64_len;
                            base64::engine::general_purpose::STANDARD.encode(&o.jpeg)
                        });
                        item.outputs.push(m::PreparedOutput {
                            target: o.target.clone(),
                            path: file.display().to_string(),
                            width: o.width,
                            height: o.height,
                            bytes: o.bytes,
                            sha256: o.sha256.clone(),
                            data_omitted: include && data.is_none(),
                            data,
                        });
                    }
                }
                Err(e) => item.error = Some(map::item(e)),
            }
            items.push(item);
        }
        items
    })
    .await
    .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?;
    to_value(&m::PrepareResult {
        out_dir: out_dir.display().to_string(),
        items,
    })
}

async fn connect(p: m::ConnectParams, ctx: &Ctx) -> Outcome {
    let invalid = |msg: &str| ResponseError::new(ErrorCode::InvalidParams, msg.to_string());
    let asked = match p.auth.as_deref() {
        None => AuthMethod::Auto,
        Some(a) => AuthMethod::parse(a)
            .ok_or_else(|| invalid("auth must be auto, kerberos, simple or anonymous"))?,
    };
    let method = asked.resolve(p.bind.is_some());
    let creds = match method {
        AuthMethod::Simple => match (&p.bind, &p.password) {
            (Some(bind), Some(pw)) => Credentials::Simple {
                bind: bind.clone(),
                password: Password::new(pw.clone()),
            },
            (Some(_), None) => return Err(invalid("bind given without password")),
            (None, _) => return Err(invalid("auth simple needs bind and password")),
        },
        AuthMethod::Kerberos => {
            if p.bind.is_some() {
                return Err(invalid(
                    "bind is for a simple bind: Kerberos signs in as the current user (leave bind and password out)",
                ));
            }
            Credentials::Kerberos { spn_host: None }
        }
        _ => Credentials::Anonymous,
    };
    let mut opts = ConnectOptions::new(photobulk_directory::server_url(&p.server, method));
    opts.starttls = p.starttls;
    opts.ca_file = p.ca_file.as_ref().map(PathBuf::from);
    opts.insecure_skip_verify = p.insecure_skip_verify;
    opts.allow_plaintext_bind = p.allow_plaintext_bind;
    opts.base_dn = p.base.clone();
    if let Some(t) = p.timeout_seconds {
        opts.timeout = Duration::from_secs(t.max(1));
        opts.connect_timeout = opts.connect_timeout.min(opts.timeout);
    }
    let backup_dir = p
        .backup_dir
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| ctx.session.default_backup_dir.clone());
    let backup = match &backup_dir {
        Some(d) => Some(BackupStore::open(d).map_err(|e| map::directory(&e))?),
        None => None,
    };
    photobulk_directory::install_crypto_provider();
    let dir = if p.server.trim().is_empty() {
        let locator = Locator {
            dns_server: match p.dns_server.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    photobulk_directory::locate::parse_dns_server(s)
                        .ok_or_else(|| invalid("dnsServer must be IP or IP:PORT"))?,
                ),
                None => None,
            },
            timeout: Some(opts.connect_timeout.min(Duration::from_secs(5))),
        };
        let domain = match p.domain.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => d.to_string(),
            None => {
                let ticket = match creds {
                    Credentials::Kerberos { .. } => photobulk_directory::kerberos::current_ticket()
                        .map_err(|e| map::directory(&e))?,
                    _ => photobulk_directory::kerberos::current_ticket()
                        .ok()
                        .flatten(),
                };
                photobulk_directory::locate::default_domain(ticket.as_ref().and_then(|t| t.realm()))
                    .map(|(d, _)| d)
                    .ok_or_else(|| map::directory(&photobulk_directory::DirectoryError::NoDomain))?
            }
        };
        Directory::connect_located(&domain, &locator, &opts, &creds).await
    } else {
        Directory::connect(&opts, &creds).await
    }
    .map_err(|e| map::directory(&e))?;
    // The method and the DC, never the ticket or the password.
    ctx.server.log(format_args!(
        "connected to {} ({:?}), signed in with {}",
        dir.url(),
        dir.server().kind,
        dir.signed_in().method
    ));
    // environment.detect probes this very DC again.
    opts.url = dir.url().to_string();
    opts.address = dir.located().and_then(|l| l.address);
    let sign_in = dir.signed_in().clone();
    let bound_as = match &sign_in.principal {
        Some(p) => Some(p.clone()),
        None => dir.whoami().await.ok().flatten(),
    };
    let settings = std::sync::Arc::new(photobulk_engine::environment::DirectorySettings {
        connect: opts,
        credentials: creds,
    });
    let result = m::ConnectResult {
        server_kind: serde_json::to_value(dir.server().kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "generic".into()),
        server: Some(dir.url().to_string()),
        auth: Some(sign_in.method.to_string()),
        bound_as,
        protection: serde_json::to_value(sign_in.protection)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        dc: dir.located().map(|l| l.dc.host.clone()),
        vendor_name: dir.server().vendor_name.clone(),
        base: dir.base().ok().map(str::to_string),
        backup_dir: backup_dir.as_ref().map(|d| d.display().to_string()),
    };
    let old = ctx.session.bound.lock().await.replace(Bound {
        dir,
        backup,
        backup_dir,
        settings,
    });
    if let Some(old) = old {
        let _ = old.dir.unbind().await;
    }
    to_value(&result)
}

async fn photo_get(p: m::PhotoGetParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let u = b
        .dir
        .find_user(&by, &p.identity, true)
        .await
        .map_err(|e| map::directory(&e))?;
    let mut info = m::PhotoInfo {
        identity: p.identity.clone(),
        dn: u.dn.clone(),
        has_photo: u.photo.is_some(),
        ..Default::default()
    };
    if let Some(photo) = &u.photo {
        info.bytes = Some(photo.len());
        info.sha256 = Some(sha256_hex(photo));
        if let Ok(s) = photobulk_imaging::probe(photo) {
            info.format = Some(s.format);
            info.width = Some(s.width);
            info.height = Some(s.height);
        }
        if let Some(out) = &p.out {
            std::fs::write(out, photo).map_err(|e| map::io(out, &e))?;
            info.file = Some(out.clone());
        }
    }
    to_value(&info)
}

async fn photo_set(p: m::PhotoSetParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let wo = write_options(&b, p.no_backup)?;
    let path = PathBuf::from(&p.path);
    let (raw, crop_) = (p.raw, crop(p.crop));
    let photo = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ResponseError> {
        let data = std::fs::read(&path).map_err(|e| map::io(path.display(), &e))?;
        if raw {
            return Ok(data);
        }
        let opts = Options {
            crop: crop_,
            targets: vec![Target::ad()],
            ..Options::default()
        };
        let conv = photobulk_imaging::convert(&data, &opts).map_err(|e| map::imaging(&e))?;
        Ok(conv
            .outputs
            .into_iter()
            .next()
            .map(|o| o.jpeg)
            .unwrap_or_default())
    })
    .await
    .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))??;
    check_photo_size(&photo).map_err(|e| map::directory(&e))?;
    let u = b
        .dir
        .find_user(&by, &p.identity, false)
        .await
        .map_err(|e| map::directory(&e))?;
    let o = b
        .dir
        .set_photo(&u.dn, &photo, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: o.bytes,
        sha256: Some(sha256_hex(&photo)),
        backup_id: o.backup.map(|r| r.id),
        restored_id: None,
    })
}

async fn photo_remove(p: m::PhotoRemoveParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let wo = write_options(&b, p.no_backup)?;
    let u = b
        .dir
        .find_user(&by, &p.identity, false)
        .await
        .map_err(|e| map::directory(&e))?;
    let o = b
        .dir
        .remove_photo(&u.dn, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: 0,
        backup_id: o.backup.map(|r| r.id),
        ..Default::default()
    })
}

async fn photo_restore(p: m::PhotoRestoreParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let store = b
        .backup
        .clone()
        .ok_or_else(|| map::directory(&photobulk_directory::DirectoryError::BackupRequired))?;
    let wo = if p.no_backup {
        WriteOptions::without_backup()
    } else {
        WriteOptions::backup_to(store.clone())
    };
    let u = b
        .dir
        .find_user(&by, &p.identity, false)
        .await
        .map_err(|e| map::directory(&e))?;
    let from = p
        .backup_id
        .clone()
        .map(RestoreFrom::Id)
        .unwrap_or(RestoreFrom::Latest);
    let o = b
        .dir
        .restore_photo(&u, &store, &from, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: o.restored.bytes,
        sha256: o.restored.sha256.clone(),
        backup_id: o.backup.map(|r| r.id),
        restored_id: Some(o.restored.id),
    })
}
