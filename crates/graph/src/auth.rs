//! Signing in: OAuth 2.0 client credentials against the Microsoft identity platform
//! (`POST {authority}/{tenant}/oauth2/v2.0/token`), with a client secret or a certificate
//! (an RS256-signed JWT client assertion), or an access token the caller already has.
//!
//! The token is cached and fetched again before it expires (when less than
//! `min(refresh_before, lifetime / 2)` is left), by one task at a time; a 401 from Graph drops
//! the cached token once so a revoked token is replaced. A caller-provided token cannot be
//! refreshed: a 401 with it is [`GraphError::TokenRejected`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::GraphError;

/// A secret string (client secret, access token): never printed by `Debug`.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Arc::from(s.into()))
    }
    /// The secret itself, for sending.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How to sign in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// App registration with a client secret.
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: Secret,
    },
    /// App registration with a certificate: the private key signs a short-lived JWT.
    Certificate {
        tenant: String,
        client_id: String,
        certificate: CertificateCredential,
    },
    /// A bearer token obtained elsewhere (e.g. PowerShell's `Connect-MgGraph` context). Used as
    /// is; it cannot be refreshed.
    AccessToken(Secret),
}

impl Credentials {
    pub(crate) fn refreshable(&self) -> bool {
        !matches!(self, Credentials::AccessToken(_))
    }
}

/// A certificate and its RSA private key, ready to sign client assertions.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaKeyPair>,
    /// base64url SHA-1 of the certificate's DER (`x5t`).
    x5t: String,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    x5t_s256: String,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl CertificateCredential {
    /// From PEM text: the certificate (the first `CERTIFICATE` block) and an RSA private key
    /// (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE KEY` PKCS#1). Both may be the same file.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, GraphError> {
        let cert = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| GraphError::Credential(format!("no certificate in the PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| GraphError::Credential(format!("no private key in the PEM: {e}")))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(GraphError::Credential(
                    "the private key is not RSA (Entra certificate credentials need RSA)".into(),
                ))
            }
        }
        .map_err(|e| GraphError::Credential(format!("unusable RSA key: {e}")))?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        let sha256 = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Ok(CertificateCredential {
            key: Arc::new(key),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        })
    }

    /// The `x5t` thumbprint the identity platform matches against the uploaded certificate.
    pub fn thumbprint(&self) -> &str {
        &self.x5t
    }

    /// A client assertion for `client_id` addressed to `token_url`, valid for 10 minutes.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, GraphError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| GraphError::Credential("no system randomness".into()))?;
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": token_url, "iss": client_id, "sub": client_id,
            "jti": photobulk_store::hex(&jti), "nbf": now, "iat": now, "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| GraphError::Credential("RS256 signing failed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    fetched: Instant,
    expires: Instant,
}

/// The token cache. One fetch at a time (the lock is held across it), so a crowd of workers
/// whose token expired together causes one request to the identity platform, not one each.
#[derive(Debug)]
pub(crate) struct TokenSource {
    pub creds: Credentials,
    pub token_url: Option<String>,
    pub scope: String,
    pub refresh_before: Duration,
    cache: tokio::sync::Mutex<Option<Cached>>,
    pub fetches: AtomicU64,
}

/// What the token endpoint answers.
#[derive(Debug, serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Seconds; a number in v2.0, a string in some older endpoints.
    expires_in: serde_json::Value,
}

impl TokenSource {
    pub fn new(
        creds: Credentials,
        authority: &str,
        scope: String,
        refresh_before: Duration,
    ) -> Self {
        let token_url = match &creds {
            Credentials::ClientSecret { tenant, .. } | Credentials::Certificate { tenant, .. } => {
                Some(format!(
                    "{}/{}/oauth2/v2.0/token",
                    authority.trim_end_matches('/'),
                    tenant
                ))
            }
            Credentials::AccessToken(_) => None,
        };
        TokenSource {
            creds,
            token_url,
            scope,
            refresh_before,
            cache: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// A token valid for a while yet, fetching one when needed.
    pub async fn token(&self, client: &crate::GraphClient) -> Result<Secret, GraphError> {
        if let Credentials::AccessToken(t) = &self.creds {
            return Ok(t.clone());
        }
        let mut cache = self.cache.lock().await;
        let now = client.now();
        if let Some(c) = cache.as_ref() {
            let lifetime = c.expires.saturating_duration_since(c.fetched);
            let margin = self.refresh_before.min(lifetime / 2);
            if now + margin < c.expires {
                return Ok(c.token.clone());
            }
        }
        let fresh = Box::pin(self.fetch(client)).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Forget `token` if it is still the cached one (Graph said 401 to it).
    pub async fn invalidate(&self, token: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.expose() == token.expose())
        {
            *cache = None;
        }
    }

    async fn fetch(&self, client: &crate::GraphClient) -> Result<Cached, GraphError> {
        let url = self
            .token_url
            .clone()
            .ok_or_else(|| GraphError::Config("no token endpoint".into()))?;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("scope", self.scope.clone()),
        ];
        match &self.creds {
            Credentials::ClientSecret {
                client_id, secret, ..
            } => {
                form.push(("client_id", client_id.clone()));
                form.push(("client_secret", secret.expose().to_string()));
            }
            Credentials::Certificate {
                client_id,
                certificate,
                ..
            } => {
                form.push(("client_id", client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", certificate.assertion(client_id, &url)?));
            }
            Credentials::AccessToken(_) => {
                return Err(GraphError::Config(
                    "a caller-provided access token cannot be refreshed".into(),
                ))
            }
        }
        let body = form_urlencode(&form);
        let started = client.now();
        let answer = client
            .send_raw(
                reqwest::Method::POST,
                &url,
                None,
                Some((
                    body.into_bytes().into(),
                    "application/x-www-form-urlencoded",
                )),
                false,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            // {"error":"invalid_client","error_description":"AADSTS7000215: …"}
            let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            return Err(GraphError::Auth {
                status: answer.status,
                code: v["error"].as_str().unwrap_or("").to_string(),
                message: v["error_description"]
                    .as_str()
                    .map(|s| s.lines().next().unwrap_or("").to_string())
                    .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned()),
            });
        }
        let t: TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| GraphError::InvalidResponse {
                url: url.clone(),
                message: format!("token answer: {e}"),
            })?;
        let secs = match &t.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(300);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(Cached {
            token: Secret::new(t.access_token),
            fetched: started,
            expires: started + Duration::from_secs(secs),
        })
    }
}

/// `application/x-www-form-urlencoded`.
pub(crate) fn form_urlencode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct_encode(k, b"-._~"), pct_encode(v, b"-._~")))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode everything but ASCII alphanumerics and `keep`.
pub(crate) fn pct_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(…)");
        let c = Credentials::ClientSecret {
            tenant: "t".into(),
            client_id: "c".into(),
            secret: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_urlencode(&[
                ("a b", "x&y=z/é".into()),
                ("scope", "https://g/.default".into())
            ]),
            "a%20b=x%26y%3Dz%2F%C3%A9&scope=https%3A%2F%2Fg%2F.default"
        );
    }
}
