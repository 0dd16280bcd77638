//! A Microsoft Graph emulator for PhotoBulk's tests and benchmark. **Test-only: never part of
//! the shipped binary** (a `publish = false` workspace member that only `tests/` and
//! `scripts/bench/graph` use).
//!
//! It implements what the photo path touches, with Microsoft's status codes and error bodies:
//!
//! | endpoint | answers |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` | client credentials with a secret or an RS256 client assertion (signature, `x5t`, `aud`, `exp` checked); `invalid_client` AADSTS7000215 / 700027, `unauthorized_client` AADSTS700016 |
//! | `GET /v1.0/users` | `$select`, `$top` (default 100, max 999, else 400), `@odata.nextLink` with `$skiptoken`, `$filter` for `mail eq`, `userPrincipalName eq`, `mailNickname eq`, `startswith(userPrincipalName,…)`, `startswith(mail,…)` |
//! | `GET /v1.0/users/{id or UPN}` | the user, or 404 `Request_ResourceNotFound` |
//! | `GET /v1.0/users/{u}/photo` | metadata JSON, or 404 `ImageNotFound` |
//! | `GET /v1.0/users/{u}/photo/$value` | the stored JPEG, or 404 `ImageNotFound` |
//! | `PUT`/`PATCH /v1.0/users/{u}/photo/$value` | 200; 413 over 4 MB; 400 `ValidationWidthTooSmall` under 48 px; 400 `ErrorInvalidImage` when not an image |
//! | `DELETE /v1.0/users/{u}/photo` | 204, or 404 `ImageNotFound` |
//! | any photo call, user without a mailbox | 404 `ErrorEntityNotFound` |
//! | no or expired token | 401 `InvalidAuthenticationToken` |
//! | `GET /_emulator/stats` | this emulator's counters as JSON (for the benchmark) |
//!
//! Photos are stored **re-encoded** (decoded, shrunk to at most 648 px, JPEG quality 80), so
//! their bytes never equal the upload, as in Exchange Online. A fresh upload becomes readable
//! only after [`Config::read_after_write`] (emulated seconds; the previous photo, or 404, is
//! served until then).
//!
//! Faults ([`Faults`]) are injected on photo endpoints only, from a seeded RNG: 429 with and
//! without `Retry-After`, 503 with `Retry-After`, 504 without, slow answers, and connection
//! resets before or after the upload is applied. A token-bucket throttle ([`Throttle`]) and a
//! per-app concurrency limit answer 429 with `Retry-After` when exceeded.
//!
//! Time: `Retry-After` values are emulated seconds; [`Config::time_scale`] converts them to
//! real time (0.01 = a 2-second Retry-After lasts 20 ms), so a test's client scales its sleeps
//! by the same factor. Every request is logged ([`LogEntry`]) with its `client-request-id`, and
//! a retry that comes back before the Retry-After it was given is flagged `early`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// Graph's upload limit.
pub const MAX_UPLOAD: usize = 4 * 1024 * 1024;
/// Smallest accepted side (reported behaviour: 23x23 fails with ValidationWidthTooSmall).
pub const MIN_SIDE: u32 = 48;

/// A user in the emulated tenant.
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub display_name: String,
    /// `false`: an Entra-only user; photo calls answer 404 `ErrorEntityNotFound`.
    pub mailbox: bool,
    /// `mailNickname` (the Exchange alias); `None`: the UPN prefix, as for most users.
    pub mail_nickname: Option<String>,
}

impl UserSpec {
    /// `mailNickname` as served.
    pub fn alias(&self) -> &str {
        self.mail_nickname
            .as_deref()
            .unwrap_or_else(|| self.upn.split('@').next().unwrap_or(""))
    }

    /// `seed.NNNNN@photobulk.test` with a deterministic GUID-shaped id.
    pub fn numbered(n: usize) -> Self {
        let alias = format!("seed.{n:05}");
        UserSpec {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            upn: format!("{alias}@photobulk.test"),
            mail: Some(format!("{alias}@mail.photobulk.test")),
            display_name: format!("Seed {n:05}"),
            mailbox: true,
            mail_nickname: None,
        }
    }
}

/// An app registration the token endpoint accepts.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub secret: Option<String>,
    /// The certificate (DER) whose key signs client assertions.
    pub certificate_der: Option<Vec<u8>>,
}

/// Injected faults: probabilities per photo request (they add up; the rest is served).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub p_429_retry_after: f64,
    pub p_429_bare: f64,
    pub p_503: f64,
    pub p_504: f64,
    /// Drop the connection without answering, before the request is applied.
    pub p_reset: f64,
    /// Apply the upload, then drop the connection (the client cannot know it worked).
    pub p_reset_after_apply: f64,
    /// Answer after [`Faults::slow`] (emulated seconds).
    pub p_slow: f64,
    pub slow: f64,
    /// The Retry-After value sent with injected 429/503s (emulated seconds).
    pub retry_after: u64,
}

impl Faults {
    /// `total` split evenly over 429 with and without Retry-After, 503, 504 and resets before
    /// and after applying, with `Retry-After: retry_after`.
    pub fn mixed(total: f64, retry_after: u64) -> Self {
        let p = total / 6.0;
        Faults {
            p_429_retry_after: p,
            p_429_bare: p,
            p_503: p,
            p_504: p,
            p_reset: p,
            p_reset_after_apply: p,
            retry_after,
            ..Faults::default()
        }
    }
}

/// A per-app token bucket over photo requests: `rate` per emulated second, at most `burst`
/// saved up. When empty: 429 with `Retry-After` = the whole seconds until a token is back.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub rate: f64,
    pub burst: f64,
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub users: Vec<UserSpec>,
    pub apps: Vec<App>,
    /// `expires_in` of issued tokens, in seconds of the emulator's clock (real time plus
    /// [`Emulator::advance_clock`]), so a client's refresh-before-expiry logic is tested as is.
    pub token_lifetime: u64,
    /// Real seconds per emulated second (Retry-After, throttle, slow answers, read-after-write).
    pub time_scale: f64,
    pub faults: Faults,
    pub throttle: Option<Throttle>,
    /// Photo requests in flight per app before answering 429 (Graph documents 4).
    pub concurrency_limit: Option<usize>,
    /// Emulated seconds before an upload is readable.
    pub read_after_write: f64,
    pub seed: u64,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Decode and re-encode uploads (as Exchange does). `false`: check the header only and
    /// store the JPEG with a comment segment added — bytes still differ from the upload, but
    /// the emulator's CPU does not compete with the client under test (the benchmark).
    pub reencode: bool,
    /// Emulated seconds to wait **after** an upload is stored before answering: the window in
    /// which a killed client has uploaded but cannot have recorded it.
    pub delay_after_store: f64,
}

impl Config {
    /// `n` numbered users with mailboxes, one app `test-app` / secret `test-secret`, 1-hour
    /// tokens, real time, no faults, no throttle, a 4-request concurrency limit.
    pub fn with_users(n: usize) -> Self {
        Config {
            users: (1..=n).map(UserSpec::numbered).collect(),
            apps: vec![App {
                client_id: TEST_CLIENT_ID.into(),
                secret: Some(TEST_SECRET.into()),
                certificate_der: None,
            }],
            token_lifetime: 3600,
            time_scale: 1.0,
            faults: Faults::default(),
            throttle: None,
            concurrency_limit: Some(4),
            read_after_write: 0.0,
            seed: 6,
            tls: None,
            reencode: true,
            delay_after_store: 0.0,
        }
    }
}

pub const TEST_TENANT: &str = "photobulk.test";
pub const TEST_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const TEST_SECRET: &str = "test-secret";

/// One request as the emulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Real time since the emulator started.
    pub at: Duration,
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The user's object id, for user and photo calls that named a known user.
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub request_id: Option<String>,
    /// 0 = connection dropped without an answer.
    pub status: u16,
    /// Which fault or limit produced this answer, if any.
    pub fault: Option<&'static str>,
    pub retry_after: Option<u64>,
    /// A retry that came before the Retry-After this request id was given had passed.
    pub early: bool,
    /// For uploads: the upload was stored.
    pub applied: bool,
    /// For uploads: SHA-256 of the body received.
    pub body_sha256: Option<String>,
}

#[derive(Debug, Clone)]
struct Stored {
    bytes: Bytes,
    width: u32,
    height: u32,
    etag: String,
    visible_at: Instant,
}

#[derive(Debug, Default)]
struct Photos {
    current: Option<Stored>,
    previous: Option<Stored>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct State {
    start: Instant,
    cfg: Mutex<Config>,
    users: Vec<UserSpec>,
    by_key: HashMap<String, usize>,
    photos: Mutex<HashMap<usize, Photos>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// Added to the real clock for token expiry ([`Emulator::advance_clock`]).
    clock_offset: Mutex<Duration>,
    inflight: Mutex<HashMap<String, usize>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    not_before: Mutex<HashMap<String, Instant>>,
    rng: Mutex<fastrand::Rng>,
    log: Mutex<Vec<LogEntry>>,
    token_seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running emulator. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counters for the benchmark and quick checks.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub requests: usize,
    pub uploads_applied: usize,
    pub users_with_photo: usize,
    /// Users whose photo was applied under more than one client-request-id (a true duplicate
    /// upload, not a retry of the same request).
    pub users_uploaded_twice: usize,
    pub throttled: usize,
    pub injected: usize,
    pub early_retries: usize,
    pub unauthorized: usize,
}

impl Emulator {
    /// Start on 127.0.0.1 at a free port.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Start on `addr`.
    pub async fn start_on(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut by_key = HashMap::new();
        for (i, u) in config.users.iter().enumerate() {
            by_key.insert(u.id.to_ascii_lowercase(), i);
            by_key.insert(u.upn.to_lowercase(), i);
        }
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let state = Arc::new(State {
            start: Instant::now(),
            users: config.users.clone(),
            by_key,
            photos: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            clock_offset: Mutex::new(Duration::ZERO),
            inflight: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            not_before: Mutex::new(HashMap::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            log: Mutex::new(Vec::new()),
            token_seq: AtomicU64::new(0),
            cfg: Mutex::new(config),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acc) => {
                            if let Ok(s) = acc.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Ok(Emulator {
            addr,
            scheme,
            state,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the authority URL (tenants hang below it).
    pub fn base_url(&self) -> String {
        let host = if self.scheme == "https" {
            format!("localhost:{}", self.addr.port())
        } else {
            self.addr.to_string()
        };
        format!("{}://{host}", self.scheme)
    }

    /// `…/v1.0` — the Graph URL.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url())
    }

    /// Change behaviour while running.
    pub fn configure(&self, f: impl FnOnce(&mut Config)) {
        f(&mut lock(&self.state.cfg));
    }

    /// Move the emulator's clock for token expiry forward by `d` (tests move the client's clock
    /// the same way, so token lifetimes are tested without waiting on the wall clock).
    pub fn advance_clock(&self, d: Duration) {
        *lock(&self.state.clock_offset) += d;
    }

    /// Forget every issued token (as if revoked): the next call with one gets 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Give a user a photo directly (as stored, not re-encoded).
    pub fn seed_photo(&self, user_id: &str, jpeg: &[u8], width: u32, height: u32) {
        if let Some(&i) = self.state.by_key.get(&user_id.to_ascii_lowercase()) {
            let stored = Stored {
                bytes: Bytes::copy_from_slice(jpeg),
                width,
                height,
                etag: etag(jpeg),
                visible_at: Instant::now(),
            };
            lock(&self.state.photos).entry(i).or_default().current = Some(stored);
        }
    }

    /// End the read-after-write delay now: every stored photo becomes readable (tests wait on
    /// this instead of sleeping past [`Config::read_after_write`]).
    pub fn publish_pending(&self) {
        let now = Instant::now();
        for p in lock(&self.state.photos).values_mut() {
            if let Some(c) = p.current.as_mut() {
                c.visible_at = c.visible_at.min(now);
            }
        }
    }

    /// A user's stored photo (even before it is readable through the API).
    pub fn photo(&self, user_id: &str) -> Option<Vec<u8>> {
        let i = *self.state.by_key.get(&user_id.to_ascii_lowercase())?;
        lock(&self.state.photos)
            .get(&i)
            .and_then(|p| p.current.as_ref().map(|s| s.bytes.to_vec()))
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.state.log).clone()
    }

    /// Counters over the log.
    pub fn summary(&self) -> Summary {
        summarize(&self.state)
    }
}

fn summarize(st: &State) -> Summary {
    let log = lock(&st.log);
    let mut ids: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    let mut s = Summary {
        requests: log.len(),
        ..Summary::default()
    };
    for e in log.iter() {
        if e.applied {
            s.uploads_applied += 1;
            if let Some(u) = &e.user {
                ids.entry(u)
                    .or_default()
                    .insert(e.request_id.as_deref().unwrap_or(""));
            }
        }
        match e.fault {
            Some("throttle") | Some("concurrency") => s.throttled += 1,
            Some(_) => s.injected += 1,
            None => {}
        }
        s.early_retries += usize::from(e.early);
        s.unauthorized += usize::from(e.status == 401);
    }
    s.users_uploaded_twice = ids.values().filter(|v| v.len() > 1).count();
    drop(log);
    s.users_with_photo = lock(&st.photos)
        .values()
        .filter(|p| p.current.is_some())
        .count();
    s
}

fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("certificate PEM: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("key PEM: {e}")))?;
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

// ---------------------------------------------------------------------------------------------
// Request handling

/// Returned to hyper to drop the connection without an answer (a "reset").
#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}
impl std::error::Error for DropConnection {}

type Resp = Response<Full<Bytes>>;

struct Reply {
    status: u16,
    body: Bytes,
    ctype: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Self {
        Reply {
            status,
            body: Bytes::from(v.to_string()),
            ctype: "application/json",
            headers: Vec::new(),
        }
    }
    fn error(status: u16, code: &str, message: &str, request_id: Option<&str>) -> Self {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message, "innerError": {
                "date": "2026-11-25T12:00:00", "request-id": "emulator",
                "client-request-id": request_id.unwrap_or("")}}}),
        )
    }
    fn empty(status: u16) -> Self {
        Reply {
            status,
            body: Bytes::new(),
            ctype: "text/plain",
            headers: Vec::new(),
        }
    }
    fn header(mut self, k: &'static str, v: String) -> Self {
        self.headers.push((k, v));
        self
    }
    fn into_response(self) -> Resp {
        let mut b = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", self.ctype);
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

struct Ctx {
    entry: LogEntry,
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let ctype = req
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match Limited::new(req.into_body(), MAX_UPLOAD * 3)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(()),
    };
    let mut ctx = Ctx {
        entry: LogEntry {
            at: st.start.elapsed(),
            method: method.to_string(),
            path: raw_path.clone(),
            user: None,
            client_id: None,
            request_id: request_id.clone(),
            status: 0,
            fault: None,
            retry_after: None,
            early: false,
            applied: false,
            body_sha256: None,
        },
    };
    let scheme = if lock(&st.cfg).tls.is_some() {
        "https"
    } else {
        "http"
    };
    let origin = format!("{scheme}://{host}");
    let outcome = route(
        &st, &mut ctx, &method, &raw_path, &query, &origin, bearer, &ctype, body,
    )
    .await;
    let status = match &outcome {
        Ok(r) => r.status,
        Err(DropConnection) => 0,
    };
    ctx.entry.status = status;
    if let (Ok(_), Some(ra)) = (&outcome, ctx.entry.retry_after) {
        if let Some(id) = &request_id {
            let scale = lock(&st.cfg).time_scale;
            lock(&st.not_before).insert(
                id.clone(),
                Instant::now() + Duration::from_secs_f64(ra as f64 * scale),
            );
        }
    }
    lock(&st.log).push(ctx.entry);
    outcome.map(Reply::into_response)
}

fn decode_path(p: &str) -> String {
    pct_decode(p)
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn route(
    st: &Arc<State>,
    ctx: &mut Ctx,
    method: &Method,
    raw_path: &str,
    query: &str,
    origin: &str,
    bearer: Option<String>,
    ctype: &str,
    body: Result<Bytes, ()>,
) -> Result<Reply, DropConnection> {
    let path = decode_path(raw_path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rid = ctx.entry.request_id.clone();
    let rid = rid.as_deref();

    // Token endpoint
    if segs.len() == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" {
        if *method != Method::POST {
            return Ok(Reply::error(405, "MethodNotAllowed", "POST only", rid));
        }
        let body = body.unwrap_or_default();
        let token_url = format!("{origin}{raw_path}");
        return Ok(token(st, ctx, &String::from_utf8_lossy(&body), &token_url));
    }
    if segs.len() == 2 && segs[0] == "_emulator" && segs[1] == "stats" {
        return Ok(Reply::json(200, json!(summarize(st))));
    }
    if segs.first() != Some(&"v1.0") || segs.get(1) != Some(&"users") {
        return Ok(Reply::error(
            400,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segs.first().unwrap_or(&"")
            ),
            rid,
        ));
    }

    // Authentication
    let client_id = match bearer {
        None => {
            return Ok(Reply::error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
                rid,
            ))
        }
        Some(t) => match lock(&st.tokens).get(&t).cloned() {
            None => {
                return Ok(Reply::error(
                    401,
                    "InvalidAuthenticationToken",
                    "IDX14100: JWT is not well formed.",
                    rid,
                ))
            }
            Some((_, exp)) if Instant::now() + *lock(&st.clock_offset) >= exp => {
                return Ok(Reply::error(
                    401,
                    "InvalidAuthenticationToken",
                    "Lifetime validation failed, the token is expired.",
                    rid,
                ))
            }
            Some((client, _)) => client,
        },
    };
    ctx.entry.client_id = Some(client_id.clone());

    if segs.len() == 2 {
        if *method != Method::GET {
            return Ok(Reply::error(
                405,
                "Request_BadRequest",
                "Method not allowed",
                rid,
            ));
        }
        return Ok(list_users(st, query, origin, rid));
    }
    let key = segs[2].trim_start_matches("('").trim_end_matches("')");
    let Some(&ui) = st.by_key.get(&key.to_lowercase()) else {
        return Ok(Reply::error(
            404,
            "Request_ResourceNotFound",
            &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
            rid,
        ));
    };
    let user = &st.users[ui];
    ctx.entry.user = Some(user.id.clone());
    if segs.len() == 3 {
        let q = parse_query(query);
        return Ok(Reply::json(
            200,
            user_json(user, q.get("$select").map(String::as_str)),
        ));
    }
    let value = match &segs[3..] {
        ["photo"] => false,
        ["photo", "$value"] => true,
        _ => return Ok(Reply::error(400, "BadRequest", "Unsupported segment", rid)),
    };

    // Photo calls: the per-app concurrency limit, faults and the throttle.
    let _slot = match InFlight::enter(st, &client_id) {
        Some(s) => s,
        None => {
            ctx.entry.fault = Some("concurrency");
            ctx.entry.retry_after = Some(1);
            return Ok(Reply::error(
                429,
                "TooManyRequests",
                "Too many concurrent requests for this application.",
                rid,
            )
            .header("retry-after", "1".into()));
        }
    };
    if let Some(id) = rid {
        if let Some(nb) = lock(&st.not_before).get(id) {
            ctx.entry.early = Instant::now() < *nb;
        }
    }
    let (faults, scale, throttle, raw_delay, full) = {
        let c = lock(&st.cfg);
        (
            c.faults.clone(),
            c.time_scale,
            c.throttle,
            c.read_after_write,
            c.reencode,
        )
    };
    let roll = lock(&st.rng).f64();
    let mut acc = 0.0;
    let mut pick = |p: f64| {
        acc += p;
        roll < acc
    };
    let mut reset_after = false;
    if pick(faults.p_reset) {
        ctx.entry.fault = Some("reset");
        return Err(DropConnection);
    } else if pick(faults.p_reset_after_apply) {
        reset_after = true;
    } else if pick(faults.p_429_retry_after) {
        ctx.entry.fault = Some("429");
        ctx.entry.retry_after = Some(faults.retry_after);
        return Ok(
            Reply::error(429, "TooManyRequests", "Too many requests.", rid)
                .header("retry-after", faults.retry_after.to_string()),
        );
    } else if pick(faults.p_429_bare) {
        ctx.entry.fault = Some("429-bare");
        return Ok(Reply::error(
            429,
            "TooManyRequests",
            "Too many requests.",
            rid,
        ));
    } else if pick(faults.p_503) {
        ctx.entry.fault = Some("503");
        ctx.entry.retry_after = Some(faults.retry_after);
        return Ok(Reply::error(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
            rid,
        )
        .header("retry-after", faults.retry_after.to_string()));
    } else if pick(faults.p_504) {
        ctx.entry.fault = Some("504");
        return Ok(Reply::error(
            504,
            "GatewayTimeout",
            "The gateway timed out.",
            rid,
        ));
    } else if pick(faults.p_slow) {
        ctx.entry.fault = Some("slow");
        tokio::time::sleep(Duration::from_secs_f64(faults.slow * scale)).await;
    }
    if let Some(t) = throttle {
        if let Some(wait) = take_token(st, &client_id, t, scale) {
            ctx.entry.fault = Some("throttle");
            ctx.entry.retry_after = Some(wait);
            return Ok(Reply::error(
                429,
                "TooManyRequests",
                "Application is over its request quota.",
                rid,
            )
            .header("retry-after", wait.to_string()));
        }
    }
    if !user.mailbox {
        return Ok(Reply::error(
            404,
            "ErrorEntityNotFound",
            &format!("The requested user '{}' is invalid.", user.upn),
            rid,
        ));
    }
    let reply = photo_op(
        st, ctx, ui, method, value, ctype, body, scale, raw_delay, full,
    )
    .await;
    if reset_after {
        ctx.entry.fault = Some("reset-after-apply");
        return Err(DropConnection);
    }
    if ctx.entry.applied {
        let wait = lock(&st.cfg).delay_after_store;
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait * scale)).await;
        }
    }
    Ok(reply)
}

struct InFlight {
    st: Arc<State>,
    client: String,
}

impl InFlight {
    fn enter(st: &Arc<State>, client: &str) -> Option<InFlight> {
        let limit = lock(&st.cfg).concurrency_limit;
        let mut m = lock(&st.inflight);
        let n = m.entry(client.to_string()).or_insert(0);
        if limit.is_some_and(|l| *n >= l) {
            return None;
        }
        *n += 1;
        Some(InFlight {
            st: st.clone(),
            client: client.to_string(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.st.inflight).get_mut(&self.client) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Take one token; `Some(seconds)` to wait when there is none.
fn take_token(st: &State, client: &str, t: Throttle, scale: f64) -> Option<u64> {
    let now = Instant::now();
    let mut buckets = lock(&st.buckets);
    let b = buckets.entry(client.to_string()).or_insert(Bucket {
        tokens: t.burst,
        last: now,
    });
    let emulated = now.duration_since(b.last).as_secs_f64() / scale;
    b.tokens = (b.tokens + emulated * t.rate).min(t.burst);
    b.last = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        None
    } else {
        Some(((1.0 - b.tokens) / t.rate).ceil().max(1.0) as u64)
    }
}

fn user_json(u: &UserSpec, select: Option<&str>) -> serde_json::Value {
    let full = json!({
        "id": u.id, "userPrincipalName": u.upn, "mail": u.mail, "displayName": u.display_name,
        "mailNickname": u.alias(),
    });
    match select {
        None => full,
        Some(sel) => {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), full["id"].clone());
            for f in sel.split(',') {
                if let Some(v) = full.get(f.trim()) {
                    m.insert(f.trim().to_string(), v.clone());
                }
            }
            serde_json::Value::Object(m)
        }
    }
}

fn list_users(st: &State, query: &str, origin: &str, rid: Option<&str>) -> Reply {
    let q = parse_query(query);
    let top: usize = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=999).contains(&n) => n,
        Some(_) => {
            return Reply::error(
                400,
                "Request_UnsupportedQuery",
                "Invalid page size specified: must be between 1 and 999 inclusive.",
                rid,
            )
        }
    };
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let filter = q.get("$filter").map(String::as_str);
    let matches: Box<dyn Fn(&UserSpec) -> bool> = match filter {
        None => Box::new(|_| true),
        Some(f) => {
            let lit = |s: &str| -> Option<String> {
                let s = s.trim();
                let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
                Some(inner.replace("''", "'").to_lowercase())
            };
            if let Some(v) = f.strip_prefix("mail eq ").and_then(lit) {
                Box::new(move |u| u.mail.as_deref().map(str::to_lowercase) == Some(v.clone()))
            } else if let Some(v) = f.strip_prefix("userPrincipalName eq ").and_then(lit) {
                Box::new(move |u| u.upn.to_lowercase() == v)
            } else if let Some(v) = f.strip_prefix("mailNickname eq ").and_then(lit) {
                Box::new(move |u| u.alias().to_lowercase() == v)
            } else if let Some(v) = f
                .strip_prefix("startswith(userPrincipalName,")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(lit)
            {
                Box::new(move |u| u.upn.to_lowercase().starts_with(&v))
            } else if let Some(v) = f
                .strip_prefix("startswith(mail,")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(lit)
            {
                Box::new(move |u| {
                    u.mail
                        .as_deref()
                        .is_some_and(|m| m.to_lowercase().starts_with(&v))
                })
            } else {
                return Reply::error(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported or invalid query filter clause specified.",
                    rid,
                );
            }
        }
    };
    let all: Vec<&UserSpec> = st.users.iter().filter(|u| matches(u)).collect();
    let page: Vec<serde_json::Value> = all
        .iter()
        .skip(skip)
        .take(top)
        .map(|u| user_json(u, q.get("$select").map(String::as_str)))
        .collect();
    let mut v = json!({"@odata.context": format!("{origin}/v1.0/$metadata#users"), "value": page});
    if skip + top < all.len() {
        let mut next = format!("{origin}/v1.0/users?$top={top}&$skiptoken={}", skip + top);
        for k in ["$select", "$filter"] {
            if let Some(val) = q.get(k) {
                next.push_str(&format!("&{k}={}", pct_encode(val)));
            }
        }
        v["@odata.nextLink"] = json!(next);
    }
    Reply::json(200, v)
}

fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@,".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn etag(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(&d[..12]))
}

#[allow(clippy::too_many_arguments)]
async fn photo_op(
    st: &Arc<State>,
    ctx: &mut Ctx,
    ui: usize,
    method: &Method,
    value: bool,
    ctype: &str,
    body: Result<Bytes, ()>,
    scale: f64,
    raw_delay: f64,
    full: bool,
) -> Reply {
    let rid = ctx.entry.request_id.clone();
    let rid = rid.as_deref();
    let now = Instant::now();
    let visible = |p: &Photos| -> Option<Stored> {
        match &p.current {
            Some(c) if c.visible_at <= now => Some(c.clone()),
            Some(_) => p.previous.clone(),
            None => None,
        }
    };
    let not_found = || {
        Reply::error(404, "ImageNotFound", "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.", rid)
    };
    match (method.clone(), value) {
        (Method::GET, false) => {
            let p = lock(&st.photos).get(&ui).and_then(visible);
            match p {
                None => not_found(),
                Some(s) => Reply::json(
                    200,
                    json!({
                        "@odata.context": "$metadata#users/photo/$entity",
                        "@odata.mediaContentType": "image/jpeg",
                        "@odata.mediaEtag": s.etag,
                        "id": format!("{}X{}", s.width, s.height),
                        "width": s.width, "height": s.height,
                    }),
                ),
            }
        }
        (Method::GET, true) => {
            let p = lock(&st.photos).get(&ui).and_then(visible);
            match p {
                None => not_found(),
                Some(s) => Reply {
                    status: 200,
                    body: s.bytes.clone(),
                    ctype: "image/jpeg",
                    headers: vec![("etag", s.etag.clone())],
                },
            }
        }
        (Method::PUT | Method::PATCH, true) => {
            let Ok(body) = body else {
                return Reply::error(
                    413,
                    "RequestBodyTooLarge",
                    "The request body is too large.",
                    rid,
                );
            };
            ctx.entry.body_sha256 = Some(hex(&Sha256::digest(&body)));
            if body.len() > MAX_UPLOAD {
                return Reply::error(
                    413,
                    "RequestBodyTooLarge",
                    "The maximum photo size is 4 MB.",
                    rid,
                );
            }
            if !ctype.starts_with("image/") {
                return Reply::error(
                    415,
                    "UnsupportedMediaType",
                    "Content-Type must be an image type.",
                    rid,
                );
            }
            let enc = if full {
                tokio::task::spawn_blocking(move || reencode(&body)).await
            } else {
                Ok(mark(&body))
            };
            let (bytes, w, h) = match enc {
                Ok(Ok(x)) => x,
                Ok(Err(Reencode::TooSmall(w, h))) => {
                    return Reply::error(400, "ValidationWidthTooSmall", &format!("The image is {w}x{h}; photos must be at least {MIN_SIDE}x{MIN_SIDE} pixels."), rid)
                }
                Ok(Err(Reencode::Bad(msg))) => {
                    return Reply::error(400, "ErrorInvalidImage", &format!("The photo could not be read: {msg}"), rid)
                }
                Err(e) => return Reply::error(500, "InternalServerError", &e.to_string(), rid),
            };
            let stored = Stored {
                etag: etag(&bytes),
                bytes: Bytes::from(bytes),
                width: w,
                height: h,
                visible_at: Instant::now() + Duration::from_secs_f64(raw_delay * scale),
            };
            let mut photos = lock(&st.photos);
            let p = photos.entry(ui).or_default();
            // What a reader sees until the new one is visible.
            let shown = match &p.current {
                Some(c) if c.visible_at <= Instant::now() => Some(c.clone()),
                _ => p.previous.clone(),
            };
            p.previous = shown;
            p.current = Some(stored);
            ctx.entry.applied = true;
            Reply::empty(200)
        }
        (Method::DELETE, false) => {
            let mut photos = lock(&st.photos);
            match photos.get_mut(&ui) {
                Some(p) if p.current.is_some() => {
                    p.current = None;
                    p.previous = None;
                    Reply::empty(204)
                }
                _ => not_found(),
            }
        }
        _ => Reply::error(
            405,
            "ErrorInvalidRequest",
            "Method not allowed on this resource.",
            rid,
        ),
    }
}

enum Reencode {
    TooSmall(u32, u32),
    Bad(String),
}

/// Decode, shrink to at most 648 px, JPEG quality 80: the bytes never equal the upload.
fn reencode(body: &[u8]) -> Result<(Vec<u8>, u32, u32), Reencode> {
    let img = image::load_from_memory(body).map_err(|e| Reencode::Bad(e.to_string()))?;
    let (w, h) = (img.width(), img.height());
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(Reencode::TooSmall(w, h));
    }
    let img = if w > 648 || h > 648 {
        img.resize(648, 648, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    enc.encode_image(&rgb)
        .map_err(|e| Reencode::Bad(e.to_string()))?;
    Ok((out, rgb.width(), rgb.height()))
}

/// The cheap stand-in for [`reencode`]: read the size from the header, insert a JPEG comment.
fn mark(body: &[u8]) -> Result<(Vec<u8>, u32, u32), Reencode> {
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(body))
        .with_guessed_format()
        .map_err(|e| Reencode::Bad(e.to_string()))?
        .into_dimensions()
        .map_err(|e| Reencode::Bad(e.to_string()))?;
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(Reencode::TooSmall(w, h));
    }
    if !body.starts_with(&[0xff, 0xd8]) {
        return Err(Reencode::Bad("not a JPEG".into()));
    }
    let com = b"stored by the PhotoBulk Graph emulator";
    let mut out = Vec::with_capacity(body.len() + com.len() + 4);
    out.extend_from_slice(&body[..2]);
    out.extend_from_slice(&[0xff, 0xfe, 0, (com.len() + 2) as u8]);
    out.extend_from_slice(com);
    out.extend_from_slice(&body[2..]);
    Ok((out, w, h))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

fn token(st: &State, ctx: &mut Ctx, form: &str, token_url: &str) -> Reply {
    let f = parse_form(form);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let aad = |status: u16, code: &str, desc: &str| {
        Reply::json(
            status,
            json!({"error": code, "error_description": desc, "error_codes": [desc.split(':').next().unwrap_or("").trim_start_matches("AADSTS").parse::<u64>().unwrap_or(0)]}),
        )
    };
    if get("grant_type") != "client_credentials" {
        return aad(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client_id = get("client_id");
    ctx.entry.client_id = Some(client_id.to_string());
    let app = lock(&st.cfg)
        .apps
        .iter()
        .find(|a| a.client_id == client_id)
        .cloned();
    let Some(app) = app else {
        return aad(400, "unauthorized_client", &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory."));
    };
    if !get("scope").ends_with("/.default") {
        return aad(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.");
    }
    if let Some(secret) = f.get("client_secret") {
        if app.secret.as_deref() != Some(secret.as_str()) {
            return aad(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            );
        }
    } else if let Some(assertion) = f.get("client_assertion") {
        if get("client_assertion_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
            return aad(
                400,
                "invalid_request",
                "AADSTS50027: Invalid client_assertion_type.",
            );
        }
        if let Err(why) = check_assertion(&app, assertion, token_url) {
            return aad(
                401,
                "invalid_client",
                &format!("AADSTS700027: Client assertion failed signature validation. {why}"),
            );
        }
    } else {
        return aad(401, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    let (lifetime, _) = {
        let c = lock(&st.cfg);
        (c.token_lifetime, c.time_scale)
    };
    let n = st.token_seq.fetch_add(1, Ordering::Relaxed);
    let tok = format!("emulated.{n}.{}", fastrand::u64(..));
    lock(&st.tokens).insert(
        tok.clone(),
        (
            client_id.to_string(),
            Instant::now() + *lock(&st.clock_offset) + Duration::from_secs(lifetime),
        ),
    );
    Reply::json(
        200,
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": tok}),
    )
}

fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                pct_decode(&k.replace('+', " ")),
                pct_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn check_assertion(app: &App, jwt: &str, token_url: &str) -> Result<(), String> {
    let cert = app
        .certificate_der
        .as_ref()
        .ok_or("no certificate registered")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("not a JWT".into());
    }
    let dec = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string());
    let header: serde_json::Value =
        serde_json::from_slice(&dec(parts[0])?).map_err(|e| e.to_string())?;
    let claims: serde_json::Value =
        serde_json::from_slice(&dec(parts[1])?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert);
    if header["x5t"] != URL_SAFE_NO_PAD.encode(sha1.as_ref()) {
        return Err("x5t does not match the registered certificate".into());
    }
    let spki = rsa_public_key(cert).ok_or("cannot read the certificate's public key")?;
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spki);
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify(signed.as_bytes(), &dec(parts[2])?)
        .map_err(|_| "bad signature".to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims["aud"] != token_url {
        return Err(format!("aud {} is not {token_url}", claims["aud"]));
    }
    if claims["iss"] != app.client_id || claims["sub"] != app.client_id {
        return Err("iss/sub must be the client id".into());
    }
    if claims["exp"].as_u64().unwrap_or(0) <= now
        || claims["nbf"].as_u64().unwrap_or(u64::MAX) > now + 300
    {
        return Err("assertion expired or not yet valid".into());
    }
    Ok(())
}

/// The RSAPublicKey inside a certificate's subjectPublicKeyInfo (a minimal DER walk:
/// Certificate → tbsCertificate → [version] serial sigAlg issuer validity subject SPKI).
fn rsa_public_key(cert: &[u8]) -> Option<Vec<u8>> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let first = *b.get(1)? as usize;
        let (len, hdr) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *b.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let body = b.get(hdr..hdr + len)?;
        Some((tag, body, &b[hdr + len..]))
    }
    let (_, cert_body, _) = tlv(cert)?;
    let (_, mut tbs, _) = tlv(cert_body)?;
    let mut fields = Vec::new();
    while !tbs.is_empty() {
        let (tag, body, rest) = tlv(tbs)?;
        fields.push((tag, body));
        tbs = rest;
    }
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, spki) = *fields.get(skip + 5)?;
    let (_, _alg, rest) = tlv(spki)?;
    let (tag, bits, _) = tlv(rest)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return None;
    }
    Some(bits[1..].to_vec())
}
