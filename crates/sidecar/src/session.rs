//! One connection's sign-ins: the directory binding and the Graph sign-in. A leaf.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use photobulk_directory::{BackupStore, Directory};
use photobulk_graph::{CloudBackupStore, GraphClient, UploadJournal};
use photobulk_protocol::{ErrorCode, ResponseError};
use tokio::sync::Mutex;

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
    graph: Mutex<Option<GraphBound>>,
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
    pub(crate) async fn graph(&self) -> Result<GraphBound, ResponseError> {
        self.graph
            .lock()
            .await
            .clone()
            .ok_or_else(|| ResponseError::new(ErrorCode::NotConnected, "call graph.connect first"))
    }
    /// Bind the directory; returns the binding it replaces (to be unbound).
    pub(crate) async fn bind(&self, b: Bound) -> Option<Bound> {
        self.bound.lock().await.replace(b)
    }
    pub(crate) async fn set_graph(&self, g: GraphBound) {
        *self.graph.lock().await = Some(g);
    }
    /// The directory binding, if any (no error when there is none).
    pub(crate) async fn bound_opt(&self) -> Option<Bound> {
        self.bound.lock().await.clone()
    }
    /// The Graph sign-in, if any.
    pub(crate) async fn graph_opt(&self) -> Option<GraphBound> {
        self.graph.lock().await.clone()
    }
    pub(crate) async fn bound(&self) -> Result<Bound, ResponseError> {
        self.bound.lock().await.clone().ok_or_else(|| {
            ResponseError::new(ErrorCode::NotConnected, "call directory.connect first")
        })
    }
}

/// A connection's Graph sign-in.
#[derive(Debug, Clone)]
pub(crate) struct GraphBound {
    pub(crate) client: GraphClient,
    pub(crate) backup: Option<CloudBackupStore>,
    pub(crate) journal: Arc<UploadJournal>,
}
