//! The Exchange on-premises hand-off: the HD photos a client session writes with
//! `Set-UserPhoto -PictureData` (PhotoBulk cannot call Exchange itself; `Set-PhotoBulk
//! -Target ExchangeOnPrem` does, in the admin's Exchange Management Shell session).
//!
//! The engine does everything but that call, in two steps:
//! 1. [`HandOff::prepare`]: inputs and naming as for AD ([`crate::inputs`]: folders,
//!    `Identity,Path` CSVs, the newest of two files for one account wins), each file converted
//!    to the 648x648 JPEG and written to `OUT/hd/ACCOUNT.jpg`, and an `intent` record (durable)
//!    in the engine's journal under target `"exchange"` before the item is handed to the
//!    client as ready. "Unchanged" (Exchange re-encodes, so it cannot be read back and
//!    compared) is a `done` record for the same account with the same bytes; a run the client
//!    never finished has no `end`, and the same job run again resumes it under the same run id.
//! 2. [`record`]: the client's outcomes become `done` / `failed` records of that run and, at
//!    the end, the run's `end` (with the users never reported counted as unreported).

use photobulk_kind::ErrorKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream;

use photobulk_directory::Lookup;
use photobulk_imaging::{Options, Target};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::hd::{make_hd_pooled, HdPhoto};
use crate::import::{Cancel, ItemError};
use crate::inputs::{refusal, Input};
use crate::journal::{new_run_id, now_rfc3339, Intent, Record};
use crate::ordered::in_input_order;
use crate::{job_key, options_key, EngineError, Journal};

/// The journal's target name (and run command) for Exchange HD photos.
pub const TARGET: &str = "exchange";

/// What the hand-off says about one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandOffAction {
    /// Converted and journaled: the client is to write it (in a plan: would be).
    Ready,
    /// The journal records these bytes as written for this account.
    Unchanged,
    Failed,
    /// Superseded by a newer file, or cancelled before it was prepared.
    Skipped,
}

/// One input's result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct HandOffItem {
    pub file: PathBuf,
    #[serialize_always]
    pub account: Option<String>,
    pub action: HandOffAction,
    pub error: Option<ItemError>,
    pub hd: Option<HdPhoto>,
}

/// What [`HandOff::prepare`] did.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The journal run (also for a plan: the id a run would have).
    pub run: String,
    pub resumed: bool,
    pub cancelled: bool,
    /// In input order.
    pub items: Vec<HandOffItem>,
}

/// An Exchange on-premises hand-off job.
#[derive(Debug, Clone)]
pub struct HandOff {
    pub options: Options,
    /// How the client finds users (it goes into the job's fingerprint and the run record).
    pub by: Lookup,
    /// Hand over even accounts the journal records with the same bytes.
    pub force: bool,
    /// Prepare and say what would happen; write nothing (no file, no journal record).
    pub dry_run: bool,
    /// Where `hd/ACCOUNT.jpg` files go.
    pub out_dir: PathBuf,
    /// Conversions at once.
    pub image_threads: usize,
}

impl HandOff {
    pub fn new(crop: photobulk_imaging::Crop, by: Lookup, out_dir: PathBuf) -> Self {
        HandOff {
            options: Options {
                crop,
                targets: vec![Target::hd()],
                ..Options::default()
            },
            by,
            force: false,
            dry_run: false,
            out_dir,
            image_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// Prepare every input (see the module docs); `paths` are the job's inputs as given (its
    /// fingerprint). `on_item` sees each item as it is ready.
    pub async fn prepare(
        &self,
        journal_path: &Path,
        paths: &[PathBuf],
        inputs: Vec<Input>,
        cancel: &Cancel,
        on_item: &(dyn Fn(&HandOffItem) + Sync),
    ) -> Result<Prepared, EngineError> {
        // A plan reads the journal ("unchanged") and creates nothing, not even the file.
        let journal = Arc::new(if self.dry_run {
            Journal::read_only(journal_path)?
        } else {
            Journal::open(journal_path)?
        });
        let job = job_key(paths, "exchange:", None, &self.by, &self.options);
        let resume = journal.unfinished_run(&job);
        let run = resume.clone().unwrap_or_else(new_run_id);
        if !self.dry_run {
            journal
                .append_durable(&Record::Run {
                    run: run.clone(),
                    time: now_rfc3339(),
                    job,
                    resumed: resume.is_some(),
                    command: TARGET.into(),
                    server: None,
                    by: Some(self.by.attribute().to_string()),
                    inputs: paths.iter().map(|p| p.display().to_string()).collect(),
                    restores: None,
                })
                .await?;
        }
        let opts_key = options_key(&self.options);
        let images = Semaphore::new(self.image_threads.max(1));
        let (journal_ref, images, run_ref, opts_key) = (&journal, &images, &run, &opts_key);
        let work = inputs.into_iter().map(|input| async move {
            let item = self
                .one(input, journal_ref, run_ref, opts_key, cancel, images)
                .await;
            if let Ok(item) = &item {
                on_item(item);
            }
            item
        });
        let items = in_input_order(stream::iter(work), self.image_threads.max(1) * 2)
            .await
            .into_iter()
            .collect::<Result<Vec<HandOffItem>, _>>()?;
        journal.close()?;
        Ok(Prepared {
            run,
            resumed: resume.is_some(),
            cancelled: cancel.is_cancelled(),
            items,
        })
    }

    /// One input. Only a journal that cannot be written is an error (the run stops).
    async fn one(
        &self,
        input: Input,
        journal: &Journal,
        run: &str,
        opts_key: &str,
        cancel: &Cancel,
        images: &Semaphore,
    ) -> Result<HandOffItem, EngineError> {
        let mut item = HandOffItem {
            file: input.path.clone(),
            account: input.account.clone(),
            action: HandOffAction::Failed,
            error: None,
            hd: None,
        };
        let fail = |mut item: HandOffItem, kind: ErrorKind, message: String| {
            item.action = HandOffAction::Failed;
            item.error = Some(ItemError::new(kind, message));
            Ok(item)
        };
        if let Some((action, e)) = refusal(&input, HandOffAction::Skipped, HandOffAction::Failed) {
            item.action = action;
            item.error = Some(e);
            return Ok(item);
        }
        if cancel.is_cancelled() {
            item.action = HandOffAction::Skipped;
            item.error = Some(ItemError::new(
                ErrorKind::Cancelled,
                "cancelled before it was prepared",
            ));
            return Ok(item);
        }
        let account = input.account.clone().unwrap_or_default();
        // A plan writes no file.
        let out = (!self.dry_run).then(|| self.out_dir.clone());
        let converted = make_hd_pooled(
            images,
            input.path.clone(),
            account.clone(),
            self.options.crop,
            false,
            out,
        );
        let hd = match converted.await {
            Ok((_, hd)) => hd,
            Err((kind, message)) => return fail(item, kind, message),
        };
        let last = journal
            .last_write(TARGET, &account)
            .and_then(|w| w.sha256.clone());
        item.action = if !self.force && last.as_deref() == Some(hd.sha256.as_str()) {
            HandOffAction::Unchanged
        } else {
            if !self.dry_run {
                journal
                    .append_durable(&Record::Intent(Intent {
                        run: run.to_string(),
                        time: now_rfc3339(),
                        target: TARGET.into(),
                        dn: account.clone(),
                        guid: None,
                        account: Some(account.clone()),
                        file: Some(input.path.display().to_string()),
                        source_sha256: None,
                        options: Some(opts_key.to_string()),
                        sha256: Some(hd.sha256.clone()),
                        bytes: hd.bytes,
                        backup_id: None,
                        had_photo: None,
                    }))
                    .await?;
            }
            HandOffAction::Ready
        };
        item.hd = Some(hd);
        Ok(item)
    }
}

/// One account's outcome as the client reports it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub identity: String,
    /// `Set-UserPhoto` wrote the photo.
    pub written: bool,
    /// The bytes the client wrote (checked against the intent's, when given).
    pub sha256: Option<String>,
    /// Why it was not written.
    pub message: Option<String>,
}

/// What [`record`] did.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub recorded: usize,
    /// Identities with no pending intent in the run.
    pub unknown: Vec<String>,
}

/// Why [`record`] recorded nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("journal {0:?} does not exist (the journal of a bulk.run result)")]
    NoJournal(PathBuf),
    #[error("no ExchangeOnPrem run in this journal")]
    NoRun,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The client's outcomes into the newest Exchange run of the journal at `path`; with `end`,
/// the run's `end` record too.
pub fn record(path: &Path, outcomes: &[Outcome], end: bool) -> Result<Recorded, RecordError> {
    if !path.is_file() {
        return Err(RecordError::NoJournal(path.to_path_buf()));
    }
    let journal = Journal::open(path)?;
    let records = journal.records()?;
    let run = records
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Run { run, command, .. } if command == TARGET => Some(run.clone()),
            _ => None,
        })
        .ok_or(RecordError::NoRun)?;
    // Intents of this run with no outcome yet, by account.
    let mut pending: HashMap<String, Intent> = HashMap::new();
    for r in &records {
        match r {
            Record::Intent(i) if i.run == run && i.target == TARGET => {
                pending.insert(i.dn.to_lowercase(), i.clone());
            }
            Record::Done {
                run: r_,
                target,
                dn,
                ..
            }
            | Record::Failed {
                run: r_,
                target,
                dn: Some(dn),
                ..
            } if *r_ == run && target == TARGET => {
                pending.remove(&dn.to_lowercase());
            }
            _ => {}
        }
    }
    let mut result = Recorded::default();
    let (mut written, mut failed) = (0usize, 0usize);
    for o in outcomes {
        let Some(intent) = pending.remove(&o.identity.to_lowercase()) else {
            result.unknown.push(o.identity.clone());
            continue;
        };
        let same = o.sha256.is_none() || o.sha256 == intent.sha256;
        let rec = if o.written && same {
            written += 1;
            Record::Done {
                run: run.clone(),
                time: now_rfc3339(),
                target: TARGET.into(),
                dn: intent.dn.clone(),
                sha256: intent.sha256.clone(),
            }
        } else {
            failed += 1;
            Record::Failed {
                run: run.clone(),
                time: now_rfc3339(),
                target: TARGET.into(),
                dn: Some(intent.dn.clone()),
                account: intent.account.clone(),
                kind: ErrorKind::SetUserphoto.as_str().into(),
                retryable: false,
                message: o
                    .message
                    .clone()
                    .unwrap_or_else(|| "Set-UserPhoto did not write the photo".into()),
            }
        };
        journal.append(&rec)?;
        result.recorded += 1;
    }
    if end {
        journal.append(&Record::End {
            run: run.clone(),
            time: now_rfc3339(),
            cancelled: !pending.is_empty(),
            summary: json!({"written": written, "failed": failed, "unreported": pending.len()}),
        })?;
    }
    journal.close()?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let len = e.metadata().map_or(0, |m| m.len());
                    out.push((p, len));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hand_off_journals_intents_records_outcomes_and_a_plan_writes_nothing() {
        let work = tempfile::tempdir().expect("tempdir");
        let photos = work.path().join("photos");
        std::fs::create_dir_all(&photos).expect("mkdir");
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real/hopper.jpg");
        std::fs::copy(&src, photos.join("jsmith portrait.jpg")).expect("copy");
        std::fs::copy(&src, photos.join("akim.jpg")).expect("copy");
        std::fs::write(photos.join("broken.jpg"), b"not a picture").expect("write");
        let out = work.path().join("out");
        let journal = work.path().join("state/journal.jsonl");
        let paths = vec![photos.clone()];
        let inputs = || crate::collect(&paths, false).expect("inputs").items;
        let job = |dry_run: bool| {
            let mut j = HandOff::new(
                photobulk_imaging::Crop::Center,
                Lookup::SamAccountName,
                out.clone(),
            );
            j.dry_run = dry_run;
            j
        };
        let actions = |p: &Prepared| -> Vec<(String, HandOffAction, Option<String>)> {
            p.items
                .iter()
                .map(|i| {
                    (
                        i.account.clone().unwrap_or_default(),
                        i.action,
                        i.error.as_ref().map(|e| e.kind.to_string()),
                    )
                })
                .collect()
        };

        // A plan: what would happen, and not a file or a folder created.
        let before = listing(work.path());
        let plan = job(true)
            .prepare(&journal, &paths, inputs(), &Cancel::new(), &|_| {})
            .await
            .expect("plan");
        assert_eq!(listing(work.path()), before);
        let want = vec![
            ("akim".to_string(), HandOffAction::Ready, None),
            (
                "broken".to_string(),
                HandOffAction::Failed,
                Some("image".to_string()),
            ),
            ("jsmith".to_string(), HandOffAction::Ready, None),
        ];
        assert_eq!(actions(&plan), want);

        // The run: HD files of 648x648 and an intent for each ready account.
        let seen = std::sync::Mutex::new(0usize);
        let run = job(false)
            .prepare(&journal, &paths, inputs(), &Cancel::new(), &|_| {
                *seen.lock().expect("lock") += 1;
            })
            .await
            .expect("run");
        assert_eq!(*seen.lock().expect("lock"), 3);
        assert_eq!(actions(&run), want);
        let hd = run.items[2].hd.as_ref().expect("hd");
        let file = hd.path.as_ref().expect("written");
        assert_eq!(file, &out.join("hd/jsmith.jpg"));
        let img = image::open(file).expect("decodes");
        assert_eq!((img.width(), img.height()), (648, 648));
        assert_eq!(
            std::fs::metadata(file).expect("file").len() as usize,
            hd.bytes
        );

        // The client wrote jsmith, failed akim: recorded; an unknown identity is said so.
        let rec = record(
            &journal,
            &[
                Outcome {
                    identity: "JSMITH".into(),
                    written: true,
                    sha256: Some(hd.sha256.clone()),
                    message: None,
                },
                Outcome {
                    identity: "akim".into(),
                    written: false,
                    sha256: None,
                    message: Some("The operation couldn't be performed".into()),
                },
                Outcome {
                    identity: "nobody".into(),
                    written: true,
                    sha256: None,
                    message: None,
                },
            ],
            true,
        )
        .expect("record");
        assert_eq!((rec.recorded, rec.unknown), (2, vec!["nobody".to_string()]));

        // Again: jsmith is unchanged (the journal has its bytes), akim is handed over again.
        let again = job(false)
            .prepare(&journal, &paths, inputs(), &Cancel::new(), &|_| {})
            .await
            .expect("again");
        // akim failed, so the run did not end complete: the same job continues it.
        assert_eq!(again.run, run.run);
        assert!(again.resumed);
        assert_eq!(again.items[0].action, HandOffAction::Ready);
        assert_eq!(again.items[2].action, HandOffAction::Unchanged);

        // No run of the hand-off in a journal, or no journal: said plainly.
        let other = work.path().join("other.jsonl");
        assert!(matches!(
            record(&other, &[], true),
            Err(RecordError::NoJournal(_))
        ));
    }
}
