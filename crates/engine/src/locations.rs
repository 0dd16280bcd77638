//! Where PhotoBulk keeps its state when no folder is given: one set of rules for every
//! door (the CLI's `ad`, `import`, `restore`, `graph`, `sync-hd-to-ad`, and the sidecar),
//! so a backup one command takes is where the next one looks for it.
//!
//! | what | flag | else | else |
//! |---|---|---|---|
//! | state folder (journals) | `--state-dir` | `PHOTOBULK_STATE_DIR` | the platform's (below) |
//! | AD backups | `--backup-dir` | `PHOTOBULK_BACKUP_DIR` | `STATE/ad-backups` |
//! | cloud (Graph) backups | `--backup-dir` | `PHOTOBULK_BACKUP_DIR/graph` | `STATE/graph-backups` |
//!
//! The platform's state folder: Windows `%LOCALAPPDATA%\PhotoBulk`; macOS
//! `~/Library/Application Support/PhotoBulk`; elsewhere `$XDG_STATE_HOME/photobulk`, else
//! `~/.local/state/photobulk`. The journals have the same file names from every door
//! ([`IMPORT_JOURNAL`], [`UPLOAD_JOURNAL`], [`SYNC_HD_JOURNAL`]).
//!
//! Nothing here creates a folder: the stores create theirs on their first write.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The AD import's journal, in the state folder (or the run's folder).
pub const IMPORT_JOURNAL: &str = "journal.jsonl";
/// The cloud upload's journal, in the cloud backup folder.
pub const UPLOAD_JOURNAL: &str = "upload-journal.jsonl";
/// The sync-HD-to-AD journal, in the AD backup folder.
pub const SYNC_HD_JOURNAL: &str = "sync-hd.jsonl";

/// The environment the defaults are read from (the process's, or a test's).
pub trait Env {
    fn var(&self, name: &str) -> Option<OsString>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl<F: Fn(&str) -> Option<OsString>> Env for F {
    fn var(&self, name: &str) -> Option<OsString> {
        self(name)
    }
}

fn set(env: &dyn Env, name: &str) -> Option<PathBuf> {
    env.var(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The operating systems whose conventions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    MacOs,
    /// Linux and the other Unix systems (XDG).
    Unix,
}

impl Platform {
    /// The one this was built for.
    pub const fn current() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Unix
        }
    }
}

/// The platform's state folder, before `PHOTOBULK_STATE_DIR` (`None`: no home to put it in).
pub fn platform_state_dir(env: &dyn Env, platform: Platform) -> Option<PathBuf> {
    match platform {
        Platform::Windows => set(env, "LOCALAPPDATA").map(|d| d.join("PhotoBulk")),
        Platform::MacOs => set(env, "HOME").map(|h| {
            h.join("Library")
                .join("Application Support")
                .join("PhotoBulk")
        }),
        Platform::Unix => set(env, "XDG_STATE_HOME")
            .or_else(|| set(env, "HOME").map(|h| h.join(".local").join("state")))
            .map(|s| s.join("photobulk")),
    }
}

/// The state folder: `flag`, else `PHOTOBULK_STATE_DIR`, else the platform's.
pub fn state_dir_in(env: &dyn Env, platform: Platform, flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| set(env, "PHOTOBULK_STATE_DIR"))
        .or_else(|| platform_state_dir(env, platform))
}

/// The AD backup folder: `flag`, else `PHOTOBULK_BACKUP_DIR`, else `STATE/ad-backups`.
pub fn ad_backup_dir_in(
    env: &dyn Env,
    platform: Platform,
    flag: Option<&Path>,
    state_flag: Option<&Path>,
) -> Option<PathBuf> {
    backup_dir_in(env, platform, flag, state_flag, None, "ad-backups")
}

/// The cloud backup folder: `flag`, else `PHOTOBULK_BACKUP_DIR/graph`, else
/// `STATE/graph-backups`.
pub fn graph_backup_dir_in(
    env: &dyn Env,
    platform: Platform,
    flag: Option<&Path>,
    state_flag: Option<&Path>,
) -> Option<PathBuf> {
    backup_dir_in(
        env,
        platform,
        flag,
        state_flag,
        Some("graph"),
        "graph-backups",
    )
}

/// A backup folder: `flag`, else `PHOTOBULK_BACKUP_DIR` (its `in_variable` subfolder when
/// given), else `in_state` under the state folder.
fn backup_dir_in(
    env: &dyn Env,
    platform: Platform,
    flag: Option<&Path>,
    state_flag: Option<&Path>,
    in_variable: Option<&str>,
    in_state: &str,
) -> Option<PathBuf> {
    let variable = set(env, "PHOTOBULK_BACKUP_DIR").map(|d| match in_variable {
        Some(sub) => d.join(sub),
        None => d,
    });
    flag.map(Path::to_path_buf)
        .or(variable)
        .or_else(|| state_dir_in(env, platform, state_flag).map(|s| s.join(in_state)))
}

/// [`state_dir_in`] for this process on this platform.
pub fn state_dir(flag: Option<&Path>) -> Option<PathBuf> {
    state_dir_in(&ProcessEnv, Platform::current(), flag)
}

/// [`ad_backup_dir_in`] for this process on this platform.
pub fn ad_backup_dir(flag: Option<&Path>, state_flag: Option<&Path>) -> Option<PathBuf> {
    ad_backup_dir_in(&ProcessEnv, Platform::current(), flag, state_flag)
}

/// [`graph_backup_dir_in`] for this process on this platform.
pub fn graph_backup_dir(flag: Option<&Path>, state_flag: Option<&Path>) -> Option<PathBuf> {
    graph_backup_dir_in(&ProcessEnv, Platform::current(), flag, state_flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn platform_defaults() {
        let e = env(&[
            ("HOME", "/home/ann"),
            ("LOCALAPPDATA", r"C:\Users\ann\AppData\Local"),
        ]);
        assert_eq!(
            state_dir_in(&e, Platform::Unix, None),
            Some(PathBuf::from("/home/ann/.local/state/photobulk"))
        );
        assert_eq!(
            state_dir_in(&e, Platform::MacOs, None),
            Some(PathBuf::from(
                "/home/ann/Library/Application Support/PhotoBulk"
            ))
        );
        assert_eq!(
            state_dir_in(&e, Platform::Windows, None),
            Some(PathBuf::from(r"C:\Users\ann\AppData\Local").join("PhotoBulk"))
        );
        let xdg = env(&[("HOME", "/home/ann"), ("XDG_STATE_HOME", "/var/st")]);
        assert_eq!(
            state_dir_in(&xdg, Platform::Unix, None),
            Some(PathBuf::from("/var/st/photobulk"))
        );
        assert_eq!(state_dir_in(&env(&[]), Platform::Unix, None), None);
        assert_eq!(
            state_dir_in(&env(&[("HOME", "")]), Platform::Windows, None),
            None
        );
    }

    #[test]
    fn every_folder_follows_the_state_folder_and_the_variables() {
        let e = env(&[("HOME", "/h"), ("PHOTOBULK_STATE_DIR", "/s")]);
        let u = Platform::Unix;
        assert_eq!(state_dir_in(&e, u, None), Some(PathBuf::from("/s")));
        assert_eq!(
            ad_backup_dir_in(&e, u, None, None),
            Some(PathBuf::from("/s/ad-backups"))
        );
        assert_eq!(
            graph_backup_dir_in(&e, u, None, None),
            Some(PathBuf::from("/s/graph-backups"))
        );
        // --state-dir beats PHOTOBULK_STATE_DIR, for the backups under it too.
        let flag = Path::new("/f");
        assert_eq!(
            ad_backup_dir_in(&e, u, None, Some(flag)),
            Some(PathBuf::from("/f/ad-backups"))
        );
        let b = env(&[("HOME", "/h"), ("PHOTOBULK_BACKUP_DIR", "/b")]);
        assert_eq!(
            ad_backup_dir_in(&b, u, None, None),
            Some(PathBuf::from("/b"))
        );
        assert_eq!(
            graph_backup_dir_in(&b, u, None, None),
            Some(PathBuf::from("/b/graph"))
        );
        // --backup-dir beats everything.
        assert_eq!(
            graph_backup_dir_in(&b, u, Some(Path::new("/x")), None),
            Some(PathBuf::from("/x"))
        );
    }
}
