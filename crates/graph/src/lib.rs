//! Microsoft Graph for user photos: Exchange Online / Entra ID, the only cloud path since
//! `Set-UserPhoto` was retired in Exchange Online.
//!
//! # What it is for
//! Sign in as an app (client secret or certificate) or with a token the caller already has,
//! list and find users, and read, replace, remove and restore their photos — in bulk, under
//! Graph's throttling, with a durable record of what was uploaded. It knows nothing of image
//! formats (it is handed finished JPEGs, normally the 648x648 HD output of the imaging engine),
//! LDAP or JSON-RPC.
//!
//! # Why it is shaped so
//! - **One retry loop for every request** ([`GraphClient`]): `Retry-After` on 429, 503 and 504
//!   is obeyed to the second; without it, exponential backoff with full jitter; network resets
//!   and timeouts are retried; other 4xx never are; attempts are capped
//!   ([`RetryPolicy::max_attempts`]) and the last error is kept ([`GraphError::GaveUp`]). Every
//!   attempt of one request carries the same `client-request-id`, so logs on both sides tell a
//!   retry from a second upload. Waiting goes through a [`Sleeper`] so tests need no wall clock.
//! - **At most 4 photo requests in flight per client** (Graph's documented photo limit;
//!   [`GraphConfig::photo_concurrency`]). A request waiting out a `Retry-After` gives its slot
//!   back.
//! - **Tokens are cached and refreshed before they expire**, one fetch at a time; a 401 drops
//!   the cached token once. Authority and Graph URLs are configuration ([`Cloud`] for the
//!   national clouds; tests point both at the emulator).
//! - **"No photo" is an answer, not an error**: 404 `ImageNotFound` is `Ok(None)`. Users without a
//!   mailbox, too-large and too-small images are typed errors ([`GraphError`]), so a bulk run
//!   records them per user and goes on.
//! - **Nothing over 4 MB, nothing but JPEG, is sent** ([`check_photo`]).
//! - **Backups before writes** ([`CloudBackupStore`], the AD backup format keyed by object id).
//! - **"Unchanged" comes from our own journal** ([`UploadJournal`]): Graph re-encodes photos, so
//!   neither its bytes nor its ETag ever equal what was uploaded.
//! - **Runs own their backups** ([`UploadJournal::begin_run`], [`restore_run`]): an intent naming
//!   the pre-run backup is recorded before each upload; a resumed attempt of the run never backs
//!   a user up again, so undoing the run gives back what each user had before it.
//! - **One matching rule** ([`UserIndex`]): id, UPN or mail; else alias (`mailNickname`), UPN
//!   prefix, mail prefix; a short name two users answer to is refused, never guessed.
//! - **One TLS stack**: rustls with the *ring* provider, the same as the LDAP side, configured
//!   explicitly on the HTTP client (no aws-lc-rs in the binary).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), photobulk_graph::GraphError> {
//! use photobulk_graph::*;
//! let creds = Credentials::ClientSecret {
//!     tenant: "contoso.onmicrosoft.com".into(),
//!     client_id: "00000000-0000-0000-0000-000000000000".into(),
//!     secret: Secret::new(std::env::var("SECRET").unwrap_or_default()),
//! };
//! let graph = GraphClient::new(GraphConfig::default(), creds)?;
//! let user = graph.find_user(Lookup::Alias, "john.smith").await?;
//! let store = CloudBackupStore::open("backups/cloud")?;
//! let jpeg = std::fs::read("hd/john.smith.jpg").unwrap_or_default();
//! graph.set_photo(&user, jpeg.into(), &WriteOptions::backup_to(store)).await?;
//! # Ok(()) }
//! ```

mod auth;
pub mod backup;
pub mod bulk;
mod client;
mod error;
pub mod journal;
pub mod retry;
pub mod undo;
mod write;

pub use auth::{CertificateCredential, Credentials, Secret};
pub use backup::{sha256_hex, BackupReason, CloudBackupRecord, CloudBackupStore, CloudSubject};
pub use bulk::{
    upload_all, upload_resolved, BulkOptions, ShortMatch, UploadItem, UploadResult, UploadStatus,
    UserIndex,
};
pub use client::{
    check_photo, install_crypto_provider, user_segment, Cloud, GraphClient, GraphConfig, Lookup,
    PhotoMeta, Stats, User, DEFAULT_PHOTO_CONCURRENCY, MAX_PHOTO_BYTES, USER_SELECT,
};
pub use error::GraphError;
pub use journal::{
    new_run_id, CloudRecord, JournalEntry, RunEnd, RunInfo, RunStart, UploadIntent, UploadJournal,
};
pub use photobulk_kind::ErrorKind;
pub use retry::{parse_retry_after, RetryPolicy, Sleeper, TokioSleeper};
pub use undo::{restore_run, RestoredUser, RunRestore};
pub use write::{RestoreFrom, WriteOptions, WriteOutcome};
