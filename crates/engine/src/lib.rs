//! Bulk jobs for PhotoBulk: the layer between what the user names (files, folders) and
//! the pure imaging library.
//!
//! It is shaped as three steps so each can be tested alone:
//! 1. [`plan`] decides, without decoding anything, which account each file belongs to
//!    ([`naming`]: the file name up to the first space) and marks every file of an
//!    account named twice as a duplicate, so neither silently wins;
//! 2. [`ConvertJob::run`] converts the planned files on a few threads, writes each output
//!    atomically and records one [`ItemResult`] per file — a bad file is an item error,
//!    never the end of the batch;
//! 3. the [`Manifest`] (JSON, documented in [`manifest`]) and an HTML contact sheet
//!    ([`report`]) describe what happened, for scripts and for people.
//!
//! The import into Active Directory ([`import`]) reuses the same naming rule and adds what a
//! run against a live directory needs: inputs from folders and `Identity,Path` CSV files
//! ([`inputs`]), a durable journal for resume and "unchanged" ([`journal`]), backups through
//! `photobulk_directory::BackupStore`, and restore of a whole run. With no directory, the
//! offline import ([`offline`]) writes the JPEGs, the manifest and an LDIF ([`ldif`]) instead.
//! Two jobs span both directories: [`sync_hd`] reads a user's cloud HD photo through
//! `photobulk_graph` and writes its 96x96 version to AD, and [`environment`] probes LDAP and
//! Graph to say whether a tenant is on-premises, cloud-only or hybrid. LDAP itself is
//! `photobulk_directory`'s job and HTTP `photobulk_graph`'s; this crate knows nothing of
//! JSON-RPC.

pub mod audit;
pub mod cloud;
pub mod convert;
pub mod environment;
pub mod exchange;
pub mod hd;
pub mod import;
pub mod inputs;
pub mod journal;
pub mod ldif;
pub mod locations;
pub mod manifest;
pub mod naming;
pub mod offline;
mod ordered;
pub mod plan;
pub mod report;
pub mod sync_hd;

use std::path::{Path, PathBuf};

pub use convert::ConvertJob;
pub use import::{
    job_key, options_key, restore_run, Action, Cancel, ImportItem, ImportJob, ImportReport,
    ImportSummary, Reconnect, RestoreItem, RestoreReport, RunMeta,
};
pub use inputs::{collect, Input, Inputs, Take, UserExport};
pub use journal::Journal;
pub use manifest::{ItemResult, Manifest, Status, Summary, WrittenOutput};
pub use offline::{OfflineJob, OfflineReport};
pub use plan::{plan, Plan, PlanItem, PlanOptions, Verdict};

/// Problems with the job as a whole (never with a single file: those are item results).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("target name {0:?} may only contain letters, digits, '-' and '_'")]
    InvalidTargetName(String),
    #[error("cannot write manifest: {0}")]
    Manifest(String),
    #[error("{path}: {reason}")]
    Csv { path: PathBuf, reason: String },
    #[error("journal {path}: {reason}")]
    Journal { path: PathBuf, reason: String },
    #[error("directory: {0}")]
    Directory(String),
    #[error("no run {0:?} in the journal")]
    UnknownRun(String),
    /// The run stopped sending writes because its own state (journal, backups) could not be kept.
    #[error("the run stopped writing: {0}")]
    Stopped(String),
}

impl EngineError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
