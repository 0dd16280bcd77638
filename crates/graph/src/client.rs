//! [`GraphClient`]: one HTTP client, one token cache, one photo-request limit, and the retry
//! loop every request goes through.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::auth::{pct_encode, Credentials, TokenSource};
use crate::error::parse_error_body;
use crate::retry::{parse_retry_after, RetryPolicy};
use crate::GraphError;

/// Graph's documented limit on concurrent photo requests per app, and the default here.
pub const DEFAULT_PHOTO_CONCURRENCY: usize = 4;

/// Which Microsoft cloud: sets the authority (sign-in) and Graph URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// login.microsoftonline.com / graph.microsoft.com
    Global,
    /// US Government L4: login.microsoftonline.us / graph.microsoft.us
    UsGov,
    /// US Government L5 (DOD): login.microsoftonline.us / dod-graph.microsoft.us
    UsGovDod,
    /// China (21Vianet): login.chinacloudapi.cn / microsoftgraph.chinacloudapi.cn
    China,
}

impl Cloud {
    /// (authority, Graph root) for this cloud.
    pub fn urls(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::UsGov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Cloud::UsGovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Cloud::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        }
    }
}

/// Where and how to talk to Graph.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Sign-in authority, e.g. `https://login.microsoftonline.com` (the tenant is appended).
    pub authority_url: String,
    /// Graph root including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_url: String,
    /// OAuth scope; `None` = `{Graph origin}/.default`.
    pub scope: Option<String>,
    /// At most this many photo requests in flight (Graph documents 4 per app).
    pub photo_concurrency: usize,
    pub retry: RetryPolicy,
    /// Per attempt, from sending to the last byte of the answer.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Refresh a cached token when less than this is left (or half its lifetime, if shorter).
    pub refresh_before: Duration,
    /// Trust this PEM CA bundle instead of the system roots (private CAs, tests).
    pub ca_file: Option<PathBuf>,
}

impl GraphConfig {
    /// The defaults for a cloud.
    pub fn for_cloud(cloud: Cloud) -> Self {
        let (authority, graph) = cloud.urls();
        GraphConfig {
            authority_url: authority.into(),
            graph_url: format!("{graph}/v1.0"),
            scope: None,
            photo_concurrency: DEFAULT_PHOTO_CONCURRENCY,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            refresh_before: Duration::from_secs(300),
            ca_file: None,
        }
    }

    /// The same URLs for sign-in and Graph (how the emulator is reached).
    pub fn with_urls(authority_url: impl Into<String>, graph_url: impl Into<String>) -> Self {
        GraphConfig {
            authority_url: authority_url.into(),
            graph_url: graph_url.into(),
            ..GraphConfig::for_cloud(Cloud::Global)
        }
    }
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig::for_cloud(Cloud::Global)
    }
}

/// Counters for reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// Attempts after the first, for any reason.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 503/504/502 answers.
    pub unavailable: u64,
    /// Network errors (resets, timeouts).
    pub network_errors: u64,
    /// Waits that followed a Retry-After header.
    pub retry_after_waits: u64,
    /// Tokens fetched from the identity platform.
    pub token_fetches: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
    network_errors: AtomicU64,
    retry_after_waits: AtomicU64,
}

/// A user as listed by Graph (the fields PhotoBulk selects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
}

impl User {
    /// The UPN prefix (`john.smith` of `john.smith@contoso.com`): what a photo file is named
    /// after in the cloud.
    pub fn alias(&self) -> &str {
        self.user_principal_name
            .split('@')
            .next()
            .unwrap_or(&self.user_principal_name)
    }
}

/// One page of `GET /users`.
#[derive(Deserialize)]
struct UsersPage {
    value: Vec<User>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

/// The `$select` PhotoBulk asks for.
pub const USER_SELECT: &str = "id,userPrincipalName,mail,displayName,mailNickname";

/// How to find a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Object id (GUID).
    Id,
    /// userPrincipalName.
    Upn,
    /// Primary SMTP address (`mail`).
    Mail,
    /// A short name: alias (`mailNickname`), else UPN prefix, else mail prefix (the rule of
    /// [`crate::UserIndex`]; two users answering to it = ambiguous).
    Alias,
    /// Guess: a GUID is an id; with `@` a UPN, else a mail; otherwise an alias.
    Auto,
}

/// Photo metadata (`GET /users/{id}/photo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Graph's size id, e.g. `648X648`.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(rename = "@odata.mediaContentType", default)]
    pub content_type: Option<String>,
    #[serde(rename = "@odata.mediaEtag", default)]
    pub etag: Option<String>,
}

/// A final answer (2xx, or an error status that is not worth retrying).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    #[allow(dead_code)]
    pub headers: HeaderMap,
}

/// The Graph client. Cheap to clone; clones share the token cache, the photo-request limit and
/// the counters.
#[derive(Debug, Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    graph_url: String,
    graph_origin: String,
    tokens: TokenSource,
    photo_slots: Semaphore,
    retry: RetryPolicy,
    counters: Counters,
}

/// Install rustls' *ring* provider as the process default (the one provider in this binary;
/// harmless when already installed, e.g. by the directory crate).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn origin_of(url: &str) -> String {
    // scheme://host[:port]
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find('/').unwrap_or(rest.len());
            url[..i + 3 + end].to_string()
        }
        None => url.to_string(),
    }
}

impl GraphClient {
    /// A client for `config`, signing in with `creds` on first use.
    pub fn new(config: GraphConfig, creds: Credentials) -> Result<Self, GraphError> {
        install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                use rustls_pki_types::pem::PemObject;
                use rustls_pki_types::CertificateDer;
                let pem = std::fs::read(path).map_err(GraphError::io(path))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| {
                        GraphError::Config(format!("{}: bad PEM: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        GraphError::Config(format!("{}: bad certificate: {e}", path.display()))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
            }
        }
        // Built with the ring provider explicitly, whatever else is installed.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| GraphError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.photo_concurrency.max(4) * 2)
            .user_agent(concat!("PhotoBulk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        let graph_url = config.graph_url.trim_end_matches('/').to_string();
        let graph_origin = origin_of(&graph_url);
        let scope = config
            .scope
            .clone()
            .unwrap_or_else(|| format!("{graph_origin}/.default"));
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                tokens: TokenSource::new(
                    creds,
                    &config.authority_url,
                    scope,
                    config.refresh_before,
                ),
                graph_url,
                graph_origin,
                photo_slots: Semaphore::new(config.photo_concurrency.max(1)),
                retry: config.retry,
                counters: Counters::default(),
            }),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            unavailable: c.unavailable.load(Ordering::Relaxed),
            network_errors: c.network_errors.load(Ordering::Relaxed),
            retry_after_waits: c.retry_after_waits.load(Ordering::Relaxed),
            token_fetches: self.inner.tokens.fetches.load(Ordering::Relaxed),
        }
    }

    /// A token now (signs in if needed): checks the credentials up front.
    pub async fn sign_in(&self) -> Result<(), GraphError> {
        self.inner.tokens.token(self).await.map(|_| ())
    }

    /// Send one logical request, retrying throttling, unavailability and network errors.
    /// `token`: attach a bearer token (Graph calls) or not (the token endpoint). `photo`: count
    /// against the photo-request limit. Every attempt carries the same `client-request-id`.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        url: &str,
        token: Option<()>,
        body: Option<(Bytes, &'static str)>,
        photo: bool,
    ) -> Result<Answer, GraphError> {
        let inner = &self.inner;
        let c = &inner.counters;
        let request_id = request_id();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            if attempt > 1 {
                c.retries.fetch_add(1, Ordering::Relaxed);
            }
            let bearer = match token {
                Some(()) => Some(inner.tokens.token(self).await?),
                None => None,
            };
            let permit = if photo {
                Some(
                    inner
                        .photo_slots
                        .acquire()
                        .await
                        .map_err(|_| GraphError::Config("client shut down".into()))?,
                )
            } else {
                None
            };
            let mut req = inner
                .http
                .request(method.clone(), url)
                .header("client-request-id", &request_id);
            if let Some(t) = &bearer {
                req = req.bearer_auth(t.expose());
            }
            if let Some((b, ctype)) = &body {
                req = req.header(CONTENT_TYPE, *ctype).body(b.clone());
            }
            c.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            drop(permit);
            let (status, headers, body) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    c.network_errors.fetch_add(1, Ordering::Relaxed);
                    let message = error_chain(&e);
                    // An untrusted or wrong certificate will not fix itself: fail at once.
                    let retryable =
                        !e.is_builder() && !e.is_redirect() && !message.contains("certificate");
                    let err = GraphError::Transport {
                        url: strip_query(url),
                        message,
                        retryable,
                    };
                    if !retryable {
                        return Err(err);
                    }
                    if attempt >= inner.retry.max_attempts {
                        return Err(GraphError::GaveUp {
                            attempts: attempt,
                            last: Box::new(err),
                        });
                    }
                    inner
                        .retry
                        .sleeper
                        .sleep(inner.retry.backoff(attempt))
                        .await;
                    continue;
                }
            };
            match status {
                401 if bearer.is_some() => {
                    let (code, message) = parse_error_body(&body);
                    if inner.tokens.creds.refreshable() && !refreshed {
                        // Expired early or revoked: drop it and sign in again, once.
                        refreshed = true;
                        if let Some(t) = &bearer {
                            inner.tokens.invalidate(t).await;
                        }
                        continue;
                    }
                    if !inner.tokens.creds.refreshable() {
                        return Err(GraphError::TokenRejected { code, message });
                    }
                    return Err(GraphError::Http {
                        status,
                        code,
                        message,
                    });
                }
                429 | 502 | 503 | 504 => {
                    if status == 429 {
                        c.throttled.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    if attempt >= inner.retry.max_attempts {
                        let (code, message) = parse_error_body(&body);
                        return Err(GraphError::GaveUp {
                            attempts: attempt,
                            last: Box::new(GraphError::Http {
                                status,
                                code,
                                message,
                            }),
                        });
                    }
                    if retry_after.is_some() {
                        c.retry_after_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    let wait = inner.retry.delay(attempt, retry_after);
                    inner.retry.sleeper.sleep(wait).await;
                }
                _ => {
                    return Ok(Answer {
                        status,
                        body,
                        headers,
                    })
                }
            }
        }
    }

    async fn graph(
        &self,
        method: Method,
        url: &str,
        body: Option<(Bytes, &'static str)>,
        photo: bool,
    ) -> Result<Answer, GraphError> {
        self.send_raw(method, url, Some(()), body, photo).await
    }

    /// The Graph root this client talks to (with the version), e.g. for job fingerprints.
    pub fn config_graph_url(&self) -> String {
        self.inner.graph_url.clone()
    }

    /// Now, by the client's clock ([`crate::Sleeper::now`]).
    pub(crate) fn now(&self) -> std::time::Instant {
        self.inner.retry.sleeper.now()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.graph_url)
    }

    fn json<T: serde::de::DeserializeOwned>(url: &str, a: &Answer) -> Result<T, GraphError> {
        serde_json::from_slice(&a.body).map_err(|e| GraphError::InvalidResponse {
            url: strip_query(url),
            message: e.to_string(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Users

    /// Every user (`$select` = [`USER_SELECT`], `$top=999`, following `@odata.nextLink`).
    pub async fn list_users(&self) -> Result<Vec<User>, GraphError> {
        self.list_users_where(None).await
    }

    /// The first page of users (`$top` = `top`, 1 to 999) and whether there are more: a cheap
    /// check that the token works and the app may read users (environment detection).
    pub async fn users_page(&self, top: u32) -> Result<(Vec<User>, bool), GraphError> {
        let url = self.url(&format!(
            "/users?$select={USER_SELECT}&$top={}",
            top.clamp(1, 999)
        ));
        let a = self.graph(Method::GET, &url, None, false).await?;
        if a.status != 200 {
            return Err(http_error(a.status, &a.body));
        }
        let page: UsersPage = Self::json(&url, &a)?;
        Ok((page.value, page.next.is_some()))
    }

    async fn list_users_where(&self, filter: Option<&str>) -> Result<Vec<User>, GraphError> {
        let mut url = self.url(&format!("/users?$select={USER_SELECT}&$top=999"));
        if let Some(f) = filter {
            url.push_str("&$filter=");
            url.push_str(&pct_encode(f, b"-._~@"));
        }
        let mut out = Vec::new();
        loop {
            let a = self.graph(Method::GET, &url, None, false).await?;
            if a.status != 200 {
                return Err(http_error(a.status, &a.body));
            }
            let page: UsersPage = Self::json(&url, &a)?;
            out.extend(page.value);
            match page.next {
                // The token goes wherever nextLink points: only ever to Graph itself.
                Some(next) if next.starts_with(&self.inner.graph_origin) => url = next,
                Some(next) => {
                    return Err(GraphError::InvalidResponse {
                        url: strip_query(&url),
                        message: format!("@odata.nextLink leaves Graph: {}", strip_query(&next)),
                    })
                }
                None => return Ok(out),
            }
        }
    }

    /// Find one user. Several matches are [`GraphError::Ambiguous`].
    pub async fn find_user(&self, by: Lookup, key: &str) -> Result<User, GraphError> {
        let by = match by {
            Lookup::Auto if looks_like_guid(key) => Lookup::Id,
            Lookup::Auto if key.contains('@') => {
                return match Box::pin(self.find_user(Lookup::Upn, key)).await {
                    Err(GraphError::UserNotFound(_)) => {
                        Box::pin(self.find_user(Lookup::Mail, key)).await
                    }
                    other => other,
                }
            }
            Lookup::Auto => Lookup::Alias,
            other => other,
        };
        match by {
            Lookup::Id | Lookup::Upn | Lookup::Auto => {
                let url = self.url(&format!(
                    "/users/{}?$select={USER_SELECT}",
                    user_segment(key)
                ));
                let a = self.graph(Method::GET, &url, None, false).await?;
                match a.status {
                    200 => Self::json(&url, &a),
                    404 => Err(GraphError::UserNotFound(key.to_string())),
                    s => Err(http_error(s, &a.body)),
                }
            }
            Lookup::Mail => {
                let users = self
                    .list_users_where(Some(&format!("mail eq '{}'", odata_quote(key))))
                    .await?;
                one(key, users)
            }
            Lookup::Alias => {
                // The rule of [`UserIndex`]: alias, then UPN prefix, then mail prefix; two
                // users answering to the name is ambiguous.
                let q = odata_quote(key);
                let mut found: Vec<User> = Vec::new();
                for filter in [
                    format!("mailNickname eq '{q}'"),
                    format!("startswith(userPrincipalName,'{q}@')"),
                    format!("startswith(mail,'{q}@')"),
                ] {
                    for u in self.list_users_where(Some(&filter)).await? {
                        if !found.iter().any(|f| f.id == u.id) {
                            found.push(u);
                        }
                    }
                }
                crate::bulk::UserIndex::new(found).find(key).cloned()
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Photos (each counts against the photo-request limit)

    /// Photo metadata; `None` when the user has no photo (404 `ImageNotFound`).
    pub async fn photo_meta(&self, user: &str) -> Result<Option<PhotoMeta>, GraphError> {
        let url = self.url(&format!("/users/{}/photo", user_segment(user)));
        let a = self.graph(Method::GET, &url, None, true).await?;
        match a.status {
            200 => Self::json(&url, &a).map(Some),
            _ => photo_error(user, a.status, &a.body).map(|()| None),
        }
    }

    /// The photo's bytes (as Graph stores them: re-encoded, never what was uploaded); `None`
    /// when the user has no photo.
    pub async fn get_photo(&self, user: &str) -> Result<Option<Vec<u8>>, GraphError> {
        let url = self.url(&format!("/users/{}/photo/$value", user_segment(user)));
        let a = self.graph(Method::GET, &url, None, true).await?;
        match a.status {
            200 => Ok(Some(a.body.to_vec())),
            _ => photo_error(user, a.status, &a.body).map(|()| None),
        }
    }

    /// Upload a JPEG as the user's photo (no backup: see [`GraphClient::set_photo`]). Refuses
    /// more than 4 MB and non-JPEG bodies before sending anything.
    pub async fn put_photo(&self, user: &str, jpeg: Bytes) -> Result<(), GraphError> {
        check_photo(&jpeg)?;
        let url = self.url(&format!("/users/{}/photo/$value", user_segment(user)));
        let a = self
            .graph(Method::PUT, &url, Some((jpeg, "image/jpeg")), true)
            .await?;
        match a.status {
            200..=299 => Ok(()),
            s => match photo_error(user, s, &a.body) {
                // 404 ImageNotFound on a PUT would be nonsense: report it as it came.
                Ok(()) => Err(http_error(s, &a.body)),
                Err(e) => Err(e),
            },
        }
    }

    /// Delete the user's photo. `false` when there was none.
    pub async fn delete_photo(&self, user: &str) -> Result<bool, GraphError> {
        let url = self.url(&format!("/users/{}/photo", user_segment(user)));
        let a = self.graph(Method::DELETE, &url, None, true).await?;
        match a.status {
            200..=299 => Ok(true),
            s => photo_error(user, s, &a.body).map(|()| false),
        }
    }
}

/// Graph's limit for a photo upload: 4 MB.
pub const MAX_PHOTO_BYTES: usize = 4 * 1024 * 1024;

/// Whether `jpeg` may be uploaded: at most 4 MB and a JPEG.
pub fn check_photo(jpeg: &[u8]) -> Result<(), GraphError> {
    if jpeg.len() > MAX_PHOTO_BYTES {
        return Err(GraphError::PhotoTooLarge {
            bytes: jpeg.len(),
            max: MAX_PHOTO_BYTES,
        });
    }
    if !jpeg.starts_with(&[0xff, 0xd8, 0xff]) {
        return Err(GraphError::NotJpeg);
    }
    Ok(())
}

fn one(key: &str, mut users: Vec<User>) -> Result<User, GraphError> {
    match users.len() {
        0 => Err(GraphError::UserNotFound(key.to_string())),
        1 => Ok(users.remove(0)),
        _ => Err(GraphError::Ambiguous {
            key: key.to_string(),
            matches: users.into_iter().map(|u| u.user_principal_name).collect(),
        }),
    }
}

/// Map a photo endpoint's error answer. `Ok(())` = 404 `ImageNotFound` ("no photo").
fn photo_error(user: &str, status: u16, body: &[u8]) -> Result<(), GraphError> {
    let (code, message) = parse_error_body(body);
    match (status, code.as_str()) {
        (404, "ImageNotFound") => Ok(()),
        (
            400 | 404,
            "ErrorEntityNotFound"
            | "MailboxNotEnabledForRESTAPI"
            | "MailboxNotHostedInExchangeOnline"
            | "ErrorNonExistentMailbox"
            | "ErrorInvalidUser",
        ) => Err(GraphError::NoMailbox {
            user: user.to_string(),
            code,
            message,
        }),
        (404, _) => Err(GraphError::UserNotFound(user.to_string())),
        (413, _) => Err(GraphError::PayloadTooLarge { message }),
        (400, c) if c.contains("Validation") || c.contains("Image") || c.contains("Photo") => {
            Err(GraphError::ImageRejected { code, message })
        }
        _ => Err(http_error(status, body)),
    }
}

fn http_error(status: u16, body: &[u8]) -> GraphError {
    let (code, message) = parse_error_body(body);
    match status {
        403 => GraphError::Forbidden { code, message },
        _ => GraphError::Http {
            status,
            code,
            message,
        },
    }
}

/// A user id or UPN as one URL path segment. UPNs starting with `$` need the `('…')` form.
pub fn user_segment(key: &str) -> String {
    let enc = pct_encode(key, b"-._~@");
    if key.starts_with('$') {
        format!("('{}')", pct_encode(&odata_quote(key), b"-._~@"))
    } else {
        enc
    }
}

/// Quote a value for an OData string literal (`'` doubles).
fn odata_quote(s: &str) -> String {
    s.replace('\'', "''")
}

fn looks_like_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// A random UUID-shaped id for `client-request-id` (the same on every attempt of a request, so
/// Graph's and our logs can tell a retry from a second upload).
pub(crate) fn request_id() -> String {
    let a = fastrand::u128(..);
    let h = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_guids() {
        assert_eq!(
            user_segment("john.smith@contoso.com"),
            "john.smith@contoso.com"
        );
        assert_eq!(
            user_segment("ext_x#EXT#@t.onmicrosoft.com"),
            "ext_x%23EXT%23@t.onmicrosoft.com"
        );
        assert_eq!(user_segment("o'neil@x.com"), "o%27neil@x.com");
        assert_eq!(user_segment("$adm@x.com"), "('%24adm@x.com')");
        assert!(looks_like_guid("5f0b7c2e-1d2a-4e43-9f3a-0b1c2d3e4f50"));
        assert!(!looks_like_guid("john.smith"));
        assert_eq!(
            origin_of("https://graph.microsoft.com/v1.0"),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:4000/v1.0"),
            "http://127.0.0.1:4000"
        );
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, request_id());
    }

    #[test]
    fn photo_checks_before_sending() {
        assert!(matches!(
            check_photo(&vec![0xff; MAX_PHOTO_BYTES + 1]),
            Err(GraphError::PhotoTooLarge { .. })
        ));
        assert!(matches!(check_photo(b"\x89PNG"), Err(GraphError::NotJpeg)));
        assert!(check_photo(b"\xff\xd8\xff\xe0").is_ok());
    }

    #[test]
    fn error_mapping() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert!(photo_error("u", 404, body("ImageNotFound").as_bytes()).is_ok());
        assert!(matches!(
            photo_error("u", 404, body("ErrorEntityNotFound").as_bytes()),
            Err(GraphError::NoMailbox { .. })
        ));
        assert!(matches!(
            photo_error("u", 404, body("Request_ResourceNotFound").as_bytes()),
            Err(GraphError::UserNotFound(_))
        ));
        assert!(matches!(
            photo_error("u", 413, b"too big"),
            Err(GraphError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            photo_error("u", 400, body("ValidationWidthTooSmall").as_bytes()),
            Err(GraphError::ImageRejected { .. })
        ));
        assert!(matches!(
            photo_error("u", 403, body("Authorization_RequestDenied").as_bytes()),
            Err(GraphError::Forbidden { .. })
        ));
    }
}
