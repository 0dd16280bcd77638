//! The upload journal: what was sent to whom, by which run, durably, so that a bulk run that was
//! killed or failed half-way can be run again without uploading anyone twice, so "unchanged" can
//! be decided at all (Graph re-encodes photos: its bytes and ETag never equal what was sent),
//! and so a whole run can be undone.
//!
//! `FILE` is JSON lines, each appended and fsync'd, field `t` = kind:
//!
//! ```json
//! {"t":"run","run":"20261125T120000Z-4242-0","time":"…","job":"9f2c…","resumed":false,"command":"upload"}
//! {"t":"intent","run":"…","time":"…","user_id":"5f0b7c2e-…","upn":"john.smith@contoso.com",
//!  "sha256":"9f86d0…","bytes":48123,"source":"John.Smith.jpg","backup_id":"2026…-000001","had_photo":true}
//! {"t":"done","user_id":"5f0b7c2e-…","upn":"…","sha256":"9f86d0…","bytes":48123,"time":"…",
//!  "source":"John.Smith.jpg","backup_id":"2026…-000001","run":"…"}
//! {"t":"end","run":"…","time":"…","cancelled":false,"uploaded":290,"unchanged":8,"failed":2}
//! ```
//! Lines without `t` (journals written before runs existed) are `done` lines of no run.
//!
//! - **Unchanged**: a user counts as done with a photo when its newest `done` line has the
//!   SHA-256 of the bytes about to be sent.
//! - **Runs and resumes** ([`UploadJournal::begin_run`]): a run of the same job (the caller's
//!   fingerprint of inputs, target and options) that did not end complete — killed (no `end`),
//!   stopped (`cancelled`) or left with failures (a lost connection, throttling) — is
//!   *continued* under the same run id, so one `restore --run` undoes every attempt.
//! - **The run owns the pre-run backup**: the first `intent` of a user in a run names the backup
//!   holding the photo from before the run. A later attempt of the same run never backs that
//!   user up again (what Graph holds then may be our own upload, which a byte comparison cannot
//!   tell — Graph re-encodes) and never replaces that intent: it reuses its backup id.
//! - A crash between Graph's 200 and the `done` line means that user is sent again on the next
//!   attempt (at most one per request in flight): at-least-once, never lost, never a second
//!   backup.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use photobulk_store::jsonl::JsonlLog;
use photobulk_store::Utc;

use crate::GraphError;

/// One completed upload (a `done` line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub user_id: String,
    pub upn: String,
    /// SHA-256 of the bytes sent (empty when a restore removed the photo).
    pub sha256: String,
    pub bytes: usize,
    pub time: String,
    /// Where the photo came from (file name or caller's key).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub backup_id: Option<String>,
    /// The run that sent it (`None` in journals older than runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// A run (or another attempt of one) started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStart {
    pub run: String,
    pub time: String,
    /// The caller's fingerprint of the job.
    pub job: String,
    pub resumed: bool,
    /// `upload` or `restore`.
    pub command: String,
    /// For a restore run: the run it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
}

/// About to send a photo (or remove one, for a restore of "no photo"); the old photo is
/// already backed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadIntent {
    pub run: String,
    pub time: String,
    pub user_id: String,
    pub upn: String,
    /// SHA-256 of the bytes being sent; `None` for a removal.
    pub sha256: Option<String>,
    pub bytes: usize,
    #[serde(default)]
    pub source: Option<String>,
    /// The backup holding the photo from before the run (`None`: backups were off).
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub had_photo: Option<bool>,
}

/// An attempt finished (or stopped on Ctrl+C).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEnd {
    pub run: String,
    pub time: String,
    pub cancelled: bool,
    pub uploaded: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Of `failed`: how many may pass on a re-run (network, throttling, Graph unavailable).
    #[serde(default)]
    pub retryable: usize,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum CloudRecord {
    Run(RunStart),
    Intent(UploadIntent),
    Done(JournalEntry),
    End(RunEnd),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Tagged(CloudRecord),
    Legacy(JournalEntry),
}

/// What `photobulk runs` shows of one run; `last_end` holds the counts of the last attempt
/// that ended.
pub type RunInfo = photobulk_store::RunInfo<RunEnd>;

#[derive(Debug, Default)]
struct State {
    /// lower-case user id → SHA-256 of the newest `done`.
    done: HashMap<String, String>,
    runs: photobulk_store::Runs<RunEnd>,
    /// (run, lower-case user id) → the user's first intent in that run.
    first_intent: HashMap<(String, String), UploadIntent>,
    /// run → users in the order of their first intent.
    run_users: HashMap<String, Vec<String>>,
    ended_in_attempt: HashMap<String, bool>,
}

impl State {
    fn apply(&mut self, r: CloudRecord) {
        match r {
            CloudRecord::Run(s) => {
                self.runs
                    .started(s.run.clone(), s.job, s.command, s.restores, s.time);
                self.ended_in_attempt.insert(s.run, false);
            }
            CloudRecord::Intent(i) => {
                let key = (i.run.clone(), i.user_id.to_ascii_lowercase());
                if !self.first_intent.contains_key(&key) {
                    self.run_users
                        .entry(i.run.clone())
                        .or_default()
                        .push(key.1.clone());
                    self.runs.user_added(&i.run);
                    self.first_intent.insert(key, i);
                }
            }
            CloudRecord::Done(e) => {
                self.done.insert(e.user_id.to_ascii_lowercase(), e.sha256);
            }
            CloudRecord::End(e) => {
                self.runs
                    .ended(&e.run, !e.cancelled && e.retryable == 0, e.clone());
                self.ended_in_attempt.insert(e.run, true);
            }
        }
    }
}

/// An open journal.
#[derive(Debug)]
pub struct UploadJournal {
    log: JsonlLog,
    state: Mutex<State>,
    /// Opened by [`UploadJournal::read_only`]: every append is refused.
    read_only: bool,
}

impl UploadJournal {
    /// Open the journal at `path` and read what it already records (the file and its folder
    /// are created with the first line written).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GraphError> {
        let (log, lines) = JsonlLog::open::<Line>(path)?;
        let mut state = State::default();
        for l in lines {
            state.apply(match l {
                Line::Tagged(r) => r,
                Line::Legacy(e) => CloudRecord::Done(e),
            });
        }
        Ok(UploadJournal {
            log,
            state: Mutex::new(state),
            read_only: false,
        })
    }

    /// The journal at `path` for reading only (a plan, `-WhatIf`): nothing is created or
    /// changed, not even a torn last line, and every append is refused.
    pub fn read_only(path: impl AsRef<Path>) -> Result<Self, GraphError> {
        let path = path.as_ref();
        let lines: Vec<Line> = photobulk_store::jsonl::read_jsonl(path)?;
        let mut state = State::default();
        for l in lines {
            state.apply(match l {
                Line::Tagged(r) => r,
                Line::Legacy(e) => CloudRecord::Done(e),
            });
        }
        // A log handle that is never written (JsonlLog opens its file on first append).
        let tmp_log = JsonlLog::detached(path);
        Ok(UploadJournal {
            log: tmp_log,
            state: Mutex::new(state),
            read_only: true,
        })
    }

    pub fn path(&self) -> &Path {
        self.log.path()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, r: CloudRecord) -> Result<(), GraphError> {
        if self.read_only {
            return Err(GraphError::Io {
                path: self.path().to_path_buf(),
                source: std::io::Error::other("the journal was opened read-only (a plan)"),
            });
        }
        self.log.append(&r)?;
        self.state().apply(r);
        Ok(())
    }

    /// The SHA-256 last uploaded for this user, if any.
    pub fn uploaded(&self, user_id: &str) -> Option<String> {
        self.state()
            .done
            .get(&user_id.to_ascii_lowercase())
            .cloned()
    }

    /// Number of users recorded as done.
    pub fn len(&self) -> usize {
        self.state().done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start an attempt of `job`: the newest run of that job that did not end complete (killed,
    /// cancelled, or with retryable failures; a user not found does not keep it open) is
    /// continued (same id, `resumed` true), else a new run begins. Returns (run id, resumed).
    pub fn begin_run(
        &self,
        job: &str,
        command: &str,
        restores: Option<&str>,
    ) -> Result<(String, bool), GraphError> {
        let open = self.state().runs.unfinished(job).map(|r| r.run.clone());
        let (run, resumed) = match open {
            Some(r) => (r, true),
            None => (new_run_id(), false),
        };
        self.append(CloudRecord::Run(RunStart {
            run: run.clone(),
            time: Utc::now().rfc3339(),
            job: job.to_string(),
            resumed,
            command: command.to_string(),
            restores: restores.map(str::to_string),
        }))?;
        Ok((run, resumed))
    }

    /// The user's first intent in `run`: its backup holds the photo from before the run.
    pub fn first_intent(&self, run: &str, user_id: &str) -> Option<UploadIntent> {
        self.state()
            .first_intent
            .get(&(run.to_string(), user_id.to_ascii_lowercase()))
            .cloned()
    }

    /// Every user `run` wrote to, with its first intent, in the order first written.
    pub fn run_intents(&self, run: &str) -> Vec<UploadIntent> {
        let st = self.state();
        st.run_users
            .get(run)
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| st.first_intent.get(&(run.to_string(), u.clone())).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a run with this id was ever started.
    pub fn has_run(&self, run: &str) -> bool {
        self.state().runs.contains(run)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Vec<RunInfo> {
        self.state().runs.list().to_vec()
    }

    /// Record (durably) that a photo is about to be sent.
    pub fn intent(&self, mut intent: UploadIntent) -> Result<(), GraphError> {
        if intent.time.is_empty() {
            intent.time = Utc::now().rfc3339();
        }
        self.append(CloudRecord::Intent(intent))
    }

    /// Append and fsync one `done` entry (`time` is filled in when empty).
    pub fn record(&self, mut entry: JournalEntry) -> Result<(), GraphError> {
        if entry.time.is_empty() {
            entry.time = Utc::now().rfc3339();
        }
        self.append(CloudRecord::Done(entry))
    }

    /// Record the end of an attempt (`retryable` of `failed` may pass on a re-run).
    pub fn end(
        &self,
        run: &str,
        cancelled: bool,
        uploaded: usize,
        unchanged: usize,
        failed: usize,
        retryable: usize,
    ) -> Result<(), GraphError> {
        self.append(CloudRecord::End(RunEnd {
            run: run.to_string(),
            time: Utc::now().rfc3339(),
            cancelled,
            uploaded,
            unchanged,
            failed,
            retryable,
        }))
    }

    /// Every `done` entry in the file, oldest first.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, GraphError> {
        let lines: Vec<Line> = self.log.read()?;
        Ok(lines
            .into_iter()
            .filter_map(|l| match l {
                Line::Tagged(CloudRecord::Done(e)) | Line::Legacy(e) => Some(e),
                _ => None,
            })
            .collect())
    }
}

pub use photobulk_store::runs::new_run_id;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn entry(id: &str, sha: &str) -> JournalEntry {
        JournalEntry {
            user_id: id.into(),
            upn: format!("{id}@x"),
            sha256: sha.into(),
            bytes: 3,
            time: String::new(),
            source: None,
            backup_id: None,
            run: None,
        }
    }

    #[test]
    fn survives_reopen_and_torn_lines() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub/journal.jsonl");
        let j = UploadJournal::open(&path).expect("open");
        j.record(entry("A", "1")).expect("record");
        j.record(entry("b", "2")).expect("record");
        j.record(entry("a", "3")).expect("record");
        drop(j);
        // a crash mid-append
        let mut f = OpenOptions::new().append(true).open(&path).expect("f");
        f.write_all(br#"{"user_id":"c","up"#).expect("w");
        drop(f);
        let j = UploadJournal::open(&path).expect("reopen");
        assert_eq!(j.uploaded("a").as_deref(), Some("3"));
        assert_eq!(j.uploaded("B").as_deref(), Some("2"));
        assert_eq!(j.uploaded("c"), None);
        j.record(entry("c", "4")).expect("record after torn line");
        drop(j);
        let j = UploadJournal::open(&path).expect("reopen");
        assert_eq!(j.uploaded("c").as_deref(), Some("4"));
        assert_eq!(j.len(), 3);
        assert_eq!(j.entries().expect("entries").len(), 4);
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .all(|l| l.ends_with('}')));
    }

    fn intent(run: &str, id: &str, backup: &str) -> UploadIntent {
        UploadIntent {
            run: run.into(),
            time: String::new(),
            user_id: id.into(),
            upn: format!("{id}@x"),
            sha256: Some("s".into()),
            bytes: 1,
            source: None,
            backup_id: Some(backup.into()),
            had_photo: Some(true),
        }
    }

    #[test]
    fn runs_continue_until_complete_and_keep_the_first_backup() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("j.jsonl");
        // A journal from before runs: plain done lines.
        std::fs::write(
            &path,
            "{\"user_id\":\"old\",\"upn\":\"o@x\",\"sha256\":\"9\",\"bytes\":1,\"time\":\"t\"}\n",
        )
        .expect("legacy");
        let j = UploadJournal::open(&path).expect("open");
        assert_eq!(j.uploaded("OLD").as_deref(), Some("9"));
        let (run, resumed) = j.begin_run("job", "upload", None).expect("run");
        assert!(!resumed);
        j.intent(intent(&run, "a", "b1")).expect("intent");
        drop(j); // killed: no end
        let j = UploadJournal::open(&path).expect("reopen");
        assert_eq!(j.runs()[0].state, "interrupted");
        let (again, resumed) = j.begin_run("job", "upload", None).expect("resume");
        assert_eq!((again.as_str(), resumed), (run.as_str(), true));
        assert_eq!(
            j.first_intent(&run, "A")
                .expect("first")
                .backup_id
                .as_deref(),
            Some("b1")
        );
        j.intent(intent(&run, "a", "b2")).expect("second intent");
        j.intent(intent(&run, "c", "b3")).expect("intent");
        assert_eq!(
            j.first_intent(&run, "a")
                .expect("first")
                .backup_id
                .as_deref(),
            Some("b1")
        );
        // Ended with a failure that may pass (a lost connection): the same job continues it.
        j.end(&run, false, 1, 0, 1, 1).expect("end");
        assert_eq!(j.begin_run("job", "upload", None).expect("r").0, run);
        // Failures that a re-run cannot fix (user not found) do not keep it open.
        j.end(&run, false, 2, 0, 1, 0).expect("end");
        let info = &j.runs()[0];
        assert_eq!((info.state, info.attempts, info.users), ("complete", 3, 2));
        let users: Vec<String> = j.run_intents(&run).into_iter().map(|i| i.user_id).collect();
        assert_eq!(users, ["a", "c"]);
        // Complete: the next run of the job is a new one; another job never continues it.
        let (next, resumed) = j.begin_run("job", "upload", None).expect("new");
        assert!(!resumed && next != run);
        let (other, resumed) = j.begin_run("job2", "upload", None).expect("other");
        assert!(!resumed && other != next);
    }

    #[test]
    fn read_only_creates_nothing_and_refuses_writes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub/j.jsonl");
        let j = UploadJournal::read_only(&path).expect("read-only");
        assert!(j.begin_run("job", "upload", None).is_err());
        assert!(!tmp.path().join("sub").exists());
    }
}
