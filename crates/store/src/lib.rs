//! Durable local records shared by the AD target (`photobulk-directory`) and the Graph target
//! (`photobulk-graph`): a UTC clock for ids and timestamps, fsync'd JSON-lines files, the
//! photo backup folder, and the runs a journal records.
//!
//! # Why it is its own crate
//! Both targets must back up a photo the same way before they overwrite it (same layout, same
//! durability order, same checks on restore), and both write journals that must survive a crash
//! mid-append. That logic lives here once. The crate knows nothing of LDAP, HTTP or images:
//! each target names its users its own way (the `W` of [`backup::BackupRecord`]) because who a
//! user is differs (DN and objectGUID on-premises, object id and UPN in the cloud), and maps
//! [`StoreError`] onto its own error type.

pub mod backup;
pub mod clock;
mod error;
pub mod jsonl;
pub mod runs;

pub use backup::{hex, sha256_hex, BackupFolder, BackupReason, BackupRecord};
pub use clock::Utc;
pub use error::StoreError;
pub use jsonl::JsonlLog;
pub use runs::{RunInfo, Runs};
