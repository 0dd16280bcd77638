//! The import journal: what was written to whom, by which run, durably, so that a run killed at
//! any point can be finished without writing anyone twice or losing anyone.
//!
//! # Why an append-only JSON-lines file (and not SQLite)
//! - The access pattern is exactly an append log: records are only ever added, in the order
//!   things happen, and read back in full once at start-up (to resume, to decide "unchanged",
//!   to restore a run). Nothing is updated in place, so no query engine is needed.
//! - Crash safety is simple to reason about: a record is one line; a `kill -9` can at worst tear
//!   the last line, which the reader ignores ([`Journal::open`]). No WAL, no lock files.
//! - A human (or `jq`, or PowerShell's `ConvertFrom-Json`) can read it during an incident.
//! - No new native dependency (SQLite would be ~1.5 MB of C to build on every platform).
//!
//! The cost is a full read at start-up (10,000 users ≈ 30,000 lines ≈ 10 MB, well under a
//! second) and linear growth; rotate by moving the file away — older runs are then no longer
//! restorable by id (their backups stay in the backup folder and `photobulk ad restore` still
//! works per user).
//!
//! # Durability and group commit
//! One writer thread owns the file. Records are queued to it; it writes everything queued, calls
//! `fsync` once, then acknowledges every record of that batch. An **intent** record is awaited
//! (durable) before its LDAP modify is sent; **done** and **failed** records are not awaited
//! (losing one only means the next run re-reads the directory and finds the bytes already
//! there). So 32 writes in flight cost about one `fsync` per batch, not one per record.
//!
//! # Records (one JSON object per line, field `t` = kind)
//! ```json
//! {"t":"run","run":"20261125T130501Z-4242","time":"2026-11-25T13:05:01.123456Z","job":"9f2c…",
//!  "resumed":false,"command":"import","server":"ldaps://dc1:636","by":"sAMAccountName",
//!  "inputs":["/photos"],"restores":null}
//! {"t":"intent","run":"…","time":"…","target":"ad","dn":"CN=John Smith,OU=People,DC=x",
//!  "guid":"5f0b…","account":"john.smith","file":"/photos/john.smith.jpg","source_sha256":"…",
//!  "options":"…","sha256":"…","bytes":9312,"backup_id":"20261125T…-000001","had_photo":true}
//! {"t":"done","run":"…","time":"…","target":"ad","dn":"…","sha256":"…"}
//! {"t":"failed","run":"…","time":"…","target":"ad","dn":"…","account":"…","kind":"connection_lost",
//!  "retryable":true,"message":"…"}
//! {"t":"end","run":"…","time":"…","cancelled":false,"summary":{"total":300,"set":290,…}}
//! ```
//! An `intent` is written after the old photo was backed up and before the modify is sent; a
//! `done` after the server said yes. `options` is a SHA-256 of the imaging options, so a later
//! run knows whether the same source file would give the same bytes.

use photobulk_directory::clock::Utc;
use photobulk_store::StoreError;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// A run started (or resumed: same `run` id as an unfinished earlier run of the same job).
    Run {
        run: String,
        time: String,
        /// Fingerprint of the job (inputs, server, lookup, imaging options).
        job: String,
        resumed: bool,
        command: String,
        #[serde(default)]
        server: Option<String>,
        #[serde(default)]
        by: Option<String>,
        #[serde(default)]
        inputs: Vec<String>,
        /// For a restore run: the run it undoes.
        #[serde(default)]
        restores: Option<String>,
    },
    /// About to send a write (the old value is already backed up).
    Intent(Intent),
    /// The server accepted the write.
    Done {
        run: String,
        time: String,
        target: String,
        dn: String,
        sha256: Option<String>,
    },
    /// A write (or the lookup before it) failed.
    Failed {
        run: String,
        time: String,
        target: String,
        #[serde(default)]
        dn: Option<String>,
        #[serde(default)]
        account: Option<String>,
        kind: String,
        retryable: bool,
        message: String,
    },
    /// The run finished (all items have a result) or stopped on Ctrl+C.
    End {
        run: String,
        time: String,
        cancelled: bool,
        summary: serde_json::Value,
    },
}

/// The intent to write `sha256` to `dn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub run: String,
    pub time: String,
    pub target: String,
    pub dn: String,
    #[serde(default)]
    pub guid: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub source_sha256: Option<String>,
    /// Fingerprint of the imaging options the bytes were made with.
    #[serde(default)]
    pub options: Option<String>,
    /// SHA-256 of the bytes being written; `None` for a removal (a restore of "no photo").
    pub sha256: Option<String>,
    pub bytes: usize,
    /// Backup of the value being replaced (`None` when backups are off).
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub had_photo: Option<bool>,
}

impl Intent {
    /// Whether this intent was for `user` (objectGUID when both have one, else the DN).
    pub fn is_for(&self, user: &photobulk_directory::User) -> bool {
        match (&self.guid, &user.object_guid) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => self.dn.eq_ignore_ascii_case(&user.dn),
        }
    }
}

/// What the journal knows was last written to a user (per target), from `done` records joined
/// with their `intent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWrite {
    pub run: String,
    /// When the server accepted the write (the `done` record's time).
    pub time: Option<String>,
    pub sha256: Option<String>,
    pub source_sha256: Option<String>,
    pub options: Option<String>,
}

/// What `photobulk runs` shows of one run; `last_end` is the summary of the last attempt
/// that ended.
pub type RunInfo = photobulk_store::RunInfo<serde_json::Value>;

/// What the journal knew at open time.
#[derive(Debug, Default)]
struct State {
    /// (target, lower-case DN) → last successful write.
    last: HashMap<(String, String), LastWrite>,
    runs: photobulk_store::Runs<serde_json::Value>,
}

/// An open journal file. Cheap to clone; all clones share the one writer thread.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    state: State,
    /// Sticky write error: once the journal cannot be written, no further write may be sent.
    broken: Arc<Mutex<Option<String>>>,
    /// Opened by [`Journal::read_only`]: flushing is a no-op, appending an error.
    read_only: bool,
}

enum Msg {
    Line(
        String,
        Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    ),
    Flush(std::sync::mpsc::Sender<Result<(), String>>),
}

impl Journal {
    /// Open (creating if needed) the journal at `path` and read what it holds. A torn last line
    /// (crash mid-append) is ignored; any other unreadable line is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, EngineError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
        let state = load_state(&path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let broken = Arc::new(Mutex::new(None));
        let broken2 = broken.clone();
        let wpath = path.clone();
        let writer = std::thread::Builder::new()
            .name("photobulk-journal".into())
            .spawn(move || writer_loop(file, &wpath, rx, &broken2))
            .map_err(|e| EngineError::io(&path, e))?;
        Ok(Journal {
            inner: Arc::new(Inner {
                path,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                state,
                broken,
                read_only: false,
            }),
        })
    }

    /// The journal at `path` for reading only (a plan, `-WhatIf`): nothing is created, not
    /// even the file or its folder when they are missing, and every append is refused.
    pub fn read_only(path: impl AsRef<Path>) -> Result<Journal, EngineError> {
        let path = path.as_ref().to_path_buf();
        let state = load_state(&path)?;
        Ok(Journal {
            inner: Arc::new(Inner {
                path,
                tx: Mutex::new(None),
                writer: Mutex::new(None),
                state,
                broken: Arc::new(Mutex::new(None)),
                read_only: true,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The last successful write to `dn` for `target` recorded before this journal was opened.
    pub fn last_write(&self, target: &str, dn: &str) -> Option<&LastWrite> {
        self.inner
            .state
            .last
            .get(&(target.to_string(), dn.to_lowercase()))
    }

    /// The newest run of job `job` if it did not end complete: killed or machine stopped (no
    /// `end` record), stopped with Ctrl+C, or ended with retryable failures (a lost server). Running the
    /// same command again continues it, so one `restore --run` undoes every attempt.
    pub fn unfinished_run(&self, job: &str) -> Option<String> {
        self.inner.state.runs.unfinished(job).map(|r| r.run.clone())
    }

    /// Whether a run with this id was ever started.
    pub fn has_run(&self, run: &str) -> bool {
        self.inner.state.runs.contains(run)
    }

    /// Every run the journal held when it was opened, oldest first.
    pub fn runs(&self) -> Vec<RunInfo> {
        self.inner.state.runs.list().to_vec()
    }

    /// Append `record` and wait until it is on disk.
    pub async fn append_durable(&self, record: &Record) -> Result<(), EngineError> {
        let line = self.line(record)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Msg::Line(line, Some(tx)))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err(e)),
            Err(_) => Err(self.err("the journal writer stopped".into())),
        }
    }

    /// Append `record` without waiting (it is written and fsync'd with the next batch).
    pub fn append(&self, record: &Record) -> Result<(), EngineError> {
        let line = self.line(record)?;
        self.send(Msg::Line(line, None))
    }

    /// Wait until everything appended so far is on disk.
    pub fn flush(&self) -> Result<(), EngineError> {
        if self.inner.read_only {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err(e)),
            Err(_) => Err(self.err("the journal writer stopped".into())),
        }
    }

    /// Flush and stop the writer thread.
    pub fn close(&self) -> Result<(), EngineError> {
        let r = self.flush();
        if let Ok(mut tx) = self.inner.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.inner.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
        r
    }

    /// The first intent of run `run` for each user and target (by DN): its backup holds what
    /// that user had before the run, however many attempts the run took. An unknown run is
    /// [`EngineError::UnknownRun`].
    pub fn first_intents(&self, run: &str) -> Result<Vec<Intent>, EngineError> {
        if !self.has_run(run) {
            return Err(EngineError::UnknownRun(run.to_string()));
        }
        let mut seen = std::collections::HashSet::new();
        Ok(self
            .records()?
            .into_iter()
            .filter_map(|r| match r {
                Record::Intent(i) if i.run == run => Some(i),
                _ => None,
            })
            .filter(|i| seen.insert((i.target.clone(), i.dn.to_lowercase())))
            .collect())
    }

    /// Every record in the file now (for restores and tests).
    pub fn records(&self) -> Result<Vec<Record>, EngineError> {
        self.flush()?;
        read_records(&self.inner.path)
    }

    fn line(&self, record: &Record) -> Result<String, EngineError> {
        let mut line = serde_json::to_string(record).map_err(|e| self.err(e.to_string()))?;
        line.push('\n');
        Ok(line)
    }

    fn send(&self, msg: Msg) -> Result<(), EngineError> {
        if self.inner.read_only {
            return Err(self.err("opened read-only (a plan writes nothing)".into()));
        }
        if let Some(e) = self.inner.broken.lock().ok().and_then(|b| b.clone()) {
            return Err(self.err(e));
        }
        let tx = self
            .inner
            .tx
            .lock()
            .map_err(|_| self.err("journal lock poisoned".into()))?;
        tx.as_ref()
            .ok_or_else(|| self.err("the journal is closed".into()))?
            .send(msg)
            .map_err(|_| self.err("the journal writer stopped".into()))
    }

    fn err(&self, reason: String) -> EngineError {
        EngineError::Journal {
            path: self.inner.path.clone(),
            reason,
        }
    }
}

fn writer_loop(
    mut file: File,
    path: &Path,
    rx: mpsc::Receiver<Msg>,
    broken: &Mutex<Option<String>>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let mut buf = Vec::new();
        for m in &batch {
            if let Msg::Line(l, _) = m {
                buf.extend_from_slice(l.as_bytes());
            }
        }
        let already = broken.lock().ok().and_then(|b| b.clone());
        let result = match already {
            Some(e) => Err(e),
            None => file
                .write_all(&buf)
                .and_then(|_| file.sync_data())
                .map_err(|e| format!("{}: {e}", path.display())),
        };
        if let Err(e) = &result {
            if let Ok(mut b) = broken.lock() {
                b.get_or_insert_with(|| e.clone());
            }
        }
        for m in batch {
            match m {
                Msg::Line(_, Some(ack)) => {
                    let _ = ack.send(result.clone());
                }
                Msg::Line(_, None) => {}
                Msg::Flush(ack) => {
                    let _ = ack.send(result.clone());
                }
            }
        }
    }
}

/// What a journal file says: the last write per (target, DN) and the runs, finished or not.
fn load_state(path: &Path) -> Result<State, EngineError> {
    let records = read_records(path)?;
    let mut state = State::default();
    let mut intents: HashMap<(String, String, String), Intent> = HashMap::new();
    for r in records {
        match r {
            Record::Run {
                run,
                job,
                command,
                time,
                restores,
                ..
            } => state.runs.started(run, job, command, restores, time),
            Record::End {
                run,
                cancelled,
                summary,
                ..
            } => {
                // Interrupted = stopped, or failures that may pass on a re-run (a lost
                // server, timeouts); a user not found or a broken file does not keep a run open.
                let count = |k: &str| summary.get(k).and_then(serde_json::Value::as_u64);
                let retryable = count("retryable").or_else(|| count("failed")).unwrap_or(0);
                state
                    .runs
                    .ended(&run, !cancelled && retryable == 0, summary);
            }
            Record::Intent(i) => {
                let key = (i.run.clone(), i.target.clone(), i.dn.to_lowercase());
                if !intents.contains_key(&key) {
                    state.runs.user_added(&i.run);
                }
                // The newest intent joins its `done` (restore_run reads the first per user).
                intents.insert(key, i);
            }
            Record::Done {
                run,
                time,
                target,
                dn,
                sha256,
                ..
            } => {
                let key = (target.clone(), dn.to_lowercase());
                let intent = intents.get(&(run.clone(), target, key.1.clone()));
                state.last.insert(
                    key,
                    LastWrite {
                        run,
                        time: Some(time),
                        sha256,
                        source_sha256: intent.and_then(|i| i.source_sha256.clone()),
                        options: intent.and_then(|i| i.options.clone()),
                    },
                );
            }
            Record::Failed { .. } => {}
        }
    }
    Ok(state)
}

/// Every record, by the store's JSON-lines rule: a missing file is empty, a torn final line
/// (killed mid-append) is ignored, any other unreadable line is an error.
fn read_records(path: &Path) -> Result<Vec<Record>, EngineError> {
    photobulk_store::jsonl::read_jsonl(path).map_err(|e| match e {
        StoreError::Io { path, source } => EngineError::io(&path, source),
        StoreError::BadLine { path, line, reason } => EngineError::Journal {
            path,
            reason: format!("line {line}: {reason}"),
        },
        other => EngineError::Journal {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// `2026-11-25T13:05:01.123456Z`.
pub fn now_rfc3339() -> String {
    Utc::now().rfc3339()
}

pub use photobulk_store::runs::new_run_id;

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(run: &str, dn: &str, sha: &str) -> Record {
        Record::Intent(Intent {
            run: run.into(),
            time: now_rfc3339(),
            target: "ad".into(),
            dn: dn.into(),
            guid: None,
            account: Some("a".into()),
            file: None,
            source_sha256: Some("src".into()),
            options: Some("opt".into()),
            sha256: Some(sha.into()),
            bytes: 3,
            backup_id: None,
            had_photo: Some(false),
        })
    }

    #[tokio::test]
    async fn read_only_journal_reads_state_and_creates_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        let missing = d.path().join("state/journal.jsonl");
        let j = Journal::read_only(&missing).expect("read-only open of a missing journal");
        assert!(j.last_write("ad", "CN=A,DC=x").is_none());
        assert!(j.append(&intent("r", "CN=A,DC=x", "s1")).is_err());
        j.close().expect("closing a read-only journal");
        assert!(!d.path().join("state").exists(), "no folder, no file");

        let p = d.path().join("j.jsonl");
        let w = Journal::open(&p).expect("open");
        w.append_durable(&intent("r", "CN=A,DC=x", "s1"))
            .await
            .expect("intent");
        w.append(&Record::Done {
            run: "r".into(),
            time: now_rfc3339(),
            target: "ad".into(),
            dn: "CN=A,DC=x".into(),
            sha256: Some("s1".into()),
        })
        .expect("done");
        w.close().expect("close");
        let before = std::fs::read(&p).expect("read");
        let r = Journal::read_only(&p).expect("read-only");
        assert_eq!(
            r.last_write("ad", "cn=a,dc=x")
                .and_then(|l| l.sha256.as_deref()),
            Some("s1")
        );
        assert_eq!(r.records().expect("records").len(), 2);
        assert!(r
            .append_durable(&intent("r", "CN=B,DC=x", "s2"))
            .await
            .is_err());
        assert_eq!(std::fs::read(&p).expect("read"), before, "file unchanged");
    }

    #[tokio::test]
    async fn resume_state_survives_reopen_and_torn_lines() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("j.jsonl");
        let j = Journal::open(&p).expect("open");
        let run = new_run_id();
        j.append_durable(&Record::Run {
            run: run.clone(),
            time: now_rfc3339(),
            job: "job1".into(),
            resumed: false,
            command: "import".into(),
            server: None,
            by: None,
            inputs: vec![],
            restores: None,
        })
        .await
        .expect("run");
        j.append_durable(&intent(&run, "CN=A,DC=x", "s1"))
            .await
            .expect("intent");
        j.append(&Record::Done {
            run: run.clone(),
            time: now_rfc3339(),
            target: "ad".into(),
            dn: "CN=A,DC=x".into(),
            sha256: Some("s1".into()),
        })
        .expect("done");
        j.append_durable(&intent(&run, "CN=B,DC=x", "s2"))
            .await
            .expect("intent");
        j.close().expect("close");
        // A torn last line, as kill -9 mid-append leaves.
        let mut f = OpenOptions::new().append(true).open(&p).expect("append");
        f.write_all(b"{\"t\":\"done\",\"ru").expect("torn");
        drop(f);

        let j = Journal::open(&p).expect("reopen");
        assert_eq!(j.unfinished_run("job1").as_deref(), Some(run.as_str()));
        assert_eq!(j.unfinished_run("job2"), None);
        let last = j.last_write("ad", "cn=a,dc=X").expect("A was done");
        assert_eq!(last.sha256.as_deref(), Some("s1"));
        assert_eq!(last.source_sha256.as_deref(), Some("src"));
        assert!(
            j.last_write("ad", "CN=B,DC=x").is_none(),
            "B had only an intent"
        );
        j.close().expect("close");
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("j.jsonl");
        std::fs::write(&p, "nonsense\n{\"t\":\"end\",\"run\":\"r\",\"time\":\"t\",\"cancelled\":false,\"summary\":{}}\n")
            .expect("write");
        assert!(matches!(
            Journal::open(&p),
            Err(EngineError::Journal { .. })
        ));
    }

    #[test]
    fn run_ids_are_unique_and_times_look_right() {
        assert_ne!(new_run_id(), new_run_id());
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-11-25T13:05:01.123456Z".len(), "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
