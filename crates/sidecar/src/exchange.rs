//! The `ExchangeOnPrem` target through the engine's machinery: inputs and naming
//! (`photobulk_engine::collect`: folders, `Identity,Path` CSVs, the newest of two files for one
//! account wins and the other is reported), HD conversion, and the engine's journal with
//! target `"exchange"`.
//!
//! The sidecar cannot call Exchange: the client's session does (`Set-UserPhoto -PictureData`).
//! So `bulk.run` prepares each 648x648 JPEG, writes an `intent` record (durable) and sends the
//! item as `ready` with `hdPath`/`hdSha256`; the client writes, then sends the outcomes with
//! `bulk.record`, which adds `done`/`failed` records and, at the end, the run's `end`.
//! "Unchanged" (Exchange re-encodes, so it cannot be read back and compared) is a `done`
//! record for the same account with the same bytes; a run the client never finished has no
//! `end`, and the same job run again resumes it under the same run id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use photobulk_engine::journal::{new_run_id, now_rfc3339, Intent, Record};
use photobulk_engine::{job_key, options_key, Journal, Take};
use photobulk_imaging::{Options, Target};
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ResponseError};
use serde_json::json;

use crate::common::{count, inputs_of, notify_item, skipped_input};
use crate::ctx::Ctx;
use crate::{common, map};

/// The journal's target name for Exchange HD photos.
const TARGET: &str = "exchange";
const COMMAND: &str = "exchange";

/// `bulk.plan` (`dry_run`) or `bulk.run` for ExchangeOnPrem.
pub(crate) async fn prepare(
    p: &BulkParams,
    ctx: &Ctx,
    out_dir: &Path,
    journal_path: &Path,
    dry_run: bool,
) -> Result<(Vec<BulkItem>, BulkSummary, bool), ResponseError> {
    let by = common::lookup(&p.match_by)?;
    let options = Options {
        crop: common::crop(p.crop),
        targets: vec![Target::hd()],
        ..Options::default()
    };
    let items = p.items.clone();
    let inputs = tokio::task::spawn_blocking(move || inputs_of(&items))
        .await
        .map_err(map::join)??;
    // A plan reads the journal ("unchanged") and creates nothing, not even the file.
    let journal = if dry_run {
        Journal::read_only(journal_path)
    } else {
        Journal::open(journal_path)
    }
    .map_err(|e| map::engine(&e))?;
    let paths: Vec<PathBuf> = p.items.iter().map(|i| PathBuf::from(&i.path)).collect();
    let job = job_key(&paths, "exchange:", None, &by, &options);
    let resume = journal.unfinished_run(&job);
    let run = resume.clone().unwrap_or_else(new_run_id);
    if !dry_run {
        journal
            .append_durable(&Record::Run {
                run: run.clone(),
                time: now_rfc3339(),
                job,
                resumed: resume.is_some(),
                command: COMMAND.into(),
                server: None,
                by: Some(by.attribute().to_string()),
                inputs: paths.iter().map(|p| p.display().to_string()).collect(),
                restores: None,
            })
            .await
            .map_err(|e| map::engine(&e))?;
    }
    let opts_key = options_key(&options);
    let total = inputs.items.len();
    let mut summary = BulkSummary {
        total,
        ..Default::default()
    };
    let (mut out, mut cancelled) = (Vec::with_capacity(total), false);
    for (n, input) in inputs.items.into_iter().enumerate() {
        let mut item = skipped_input(&input, BulkTarget::ExchangeOnPrem);
        if ctx.cancel.is_cancelled() {
            cancelled = true;
            item.status = ItemStatus::Cancelled;
        } else if input.take == Take::Yes {
            let account = input.account.clone().unwrap_or_default();
            let (path, name, crop, dir) = (
                input.path.clone(),
                account.clone(),
                options.crop,
                out_dir.to_path_buf(),
            );
            let converted = tokio::task::spawn_blocking(move || {
                common::convert_file(&path, &name, &[Target::hd()], crop, &dir)
            })
            .await
            .map_err(map::join)?;
            match converted.map(|mut c| {
                c.frame(&mut item);
                c.outputs.pop()
            }) {
                Ok(Some((o, file))) => {
                    item.hd_path = Some(file.display().to_string());
                    item.hd_bytes = Some(o.bytes);
                    item.hd_sha256 = Some(o.sha256.clone());
                    let last = journal
                        .last_write(TARGET, &account)
                        .and_then(|w| w.sha256.clone());
                    if !p.force && last.as_deref() == Some(o.sha256.as_str()) {
                        item.status = ItemStatus::Unchanged;
                    } else if !dry_run {
                        journal
                            .append_durable(&Record::Intent(Intent {
                                run: run.clone(),
                                time: now_rfc3339(),
                                target: TARGET.into(),
                                dn: account.clone(),
                                guid: None,
                                account: Some(account.clone()),
                                file: Some(input.path.display().to_string()),
                                source_sha256: None,
                                options: Some(opts_key.clone()),
                                sha256: Some(o.sha256.clone()),
                                bytes: o.bytes,
                                backup_id: None,
                                had_photo: None,
                            }))
                            .await
                            .map_err(|e| map::engine(&e))?;
                    }
                }
                Ok(None) => {
                    item.status = ItemStatus::Failed;
                    item.error = Some(photobulk_protocol::ItemError::new(
                        ErrorCode::ImageInvalid,
                        "no HD output",
                    ));
                }
                Err(e) => {
                    item.status = ItemStatus::Failed;
                    item.error = Some(map::item(e));
                }
            }
        }
        count(&mut summary, item.status);
        if !dry_run {
            notify_item(ctx, &item, n + 1, total).await;
        }
        out.push(item);
    }
    journal.close().map_err(|e| map::engine(&e))?;
    Ok((out, summary, cancelled))
}

/// `bulk.record`: the client's `Set-UserPhoto` outcomes into the newest ExchangeOnPrem run of
/// the journal.
pub(crate) async fn record(
    p: m::BulkRecordParams,
    _ctx: &Ctx,
) -> Result<m::BulkRecordResult, ResponseError> {
    let path = PathBuf::from(&p.journal);
    if !path.is_file() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            format!(
                "journal {:?} does not exist (the journal of a bulk.run result)",
                p.journal
            ),
        ));
    }
    tokio::task::spawn_blocking(move || -> Result<m::BulkRecordResult, ResponseError> {
        let journal = Journal::open(&path).map_err(|e| map::engine(&e))?;
        let records = journal.records().map_err(|e| map::engine(&e))?;
        let run = records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::Run { run, command, .. } if command == COMMAND => Some(run.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                ResponseError::new(ErrorCode::InvalidParams, "no ExchangeOnPrem run in this journal")
            })?;
        // Intents of this run with no outcome yet, by account.
        let mut pending: HashMap<String, Intent> = HashMap::new();
        for r in &records {
            match r {
                Record::Intent(i) if i.run == run && i.target == TARGET => {
                    pending.insert(i.dn.to_lowercase(), i.clone());
                }
                Record::Done { run: r_, target, dn, .. }
                | Record::Failed { run: r_, target, dn: Some(dn), .. }
                    if *r_ == run && target == TARGET =>
                {
                    pending.remove(&dn.to_lowercase());
                }
                _ => {}
            }
        }
        let mut result = m::BulkRecordResult::default();
        let (mut written, mut failed) = (0usize, 0usize);
        for it in &p.items {
            let Some(intent) = pending.remove(&it.identity.to_lowercase()) else {
                result.unknown.push(it.identity.clone());
                continue;
            };
            let same = it.hd_sha256.is_none() || it.hd_sha256 == intent.sha256;
            let rec = if it.status == Some(ItemStatus::Written) && same {
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
                    kind: "set_userphoto".into(),
                    retryable: false,
                    message: it
                        .message
                        .clone()
                        .unwrap_or_else(|| "Set-UserPhoto did not write the photo".into()),
                }
            };
            journal.append(&rec).map_err(|e| map::engine(&e))?;
            result.recorded += 1;
        }
        if p.end {
            journal
                .append(&Record::End {
                    run: run.clone(),
                    time: now_rfc3339(),
                    cancelled: !pending.is_empty(),
                    summary: json!({"written": written, "failed": failed, "unreported": pending.len()}),
                })
                .map_err(|e| map::engine(&e))?;
        }
        journal.close().map_err(|e| map::engine(&e))?;
        Ok(result)
    })
    .await
    .map_err(map::join)?
}
