//! `photobulk runs`: every run in the AD import journal (`STATE/journal.jsonl`) and the Graph
//! upload journal (`upload-journal.jsonl` in the cloud backup folder), with its state —
//! `complete`, `interrupted` (killed), `incomplete` (stopped or left with failures), and
//! `resumed` when it took more than one attempt — and its counts. Reads only; creates nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

/// List import and upload runs with their state and counts.
#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// State folder (holds journal.jsonl; default as for `import`)
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Cloud backup folder (holds upload-journal.jsonl; default as for `graph upload`)
    #[arg(long, value_name = "DIR")]
    graph_backup_dir: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize)]
struct Row {
    target: &'static str,
    run: String,
    command: String,
    state: &'static str,
    resumed: bool,
    attempts: usize,
    users: usize,
    started: String,
    restores: Option<String>,
    counts: Option<serde_json::Value>,
    /// How to undo it.
    undo: String,
}

impl Row {
    /// The row of run `r` of `target`, undone by `undo` followed by the run id.
    fn of<E>(
        target: &'static str,
        undo: &str,
        r: photobulk_store::RunInfo<E>,
        counts: Option<serde_json::Value>,
    ) -> Row {
        Row {
            target,
            undo: format!("{undo} {}", r.run),
            run: r.run,
            command: r.command,
            state: r.state,
            resumed: r.attempts > 1,
            attempts: r.attempts,
            users: r.users,
            started: r.started,
            restores: r.restores,
            counts,
        }
    }
}

pub fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    let state = photobulk_engine::locations::state_dir(args.state_dir.as_deref());
    if let Some(state) = &state {
        let path = state.join(photobulk_engine::locations::IMPORT_JOURNAL);
        let j = photobulk_engine::Journal::read_only(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for r in j.runs() {
            let counts = r.last_end.clone();
            rows.push(Row::of("ad", "photobulk restore --run", r, counts));
        }
    }
    let gdir = photobulk_engine::locations::graph_backup_dir(
        args.graph_backup_dir.as_deref(),
        args.state_dir.as_deref(),
    );
    if let Some(gdir) = &gdir {
        let path = gdir.join(photobulk_engine::locations::UPLOAD_JOURNAL);
        let j = photobulk_graph::UploadJournal::read_only(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for r in j.runs() {
            let counts = r.last_end.as_ref().map(|e| {
                serde_json::json!({"uploaded": e.uploaded, "unchanged": e.unchanged,
                    "failed": e.failed, "retryable": e.retryable, "cancelled": e.cancelled})
            });
            rows.push(Row::of("graph", "photobulk graph restore --run", r, counts));
        }
    }
    rows.sort_by(|a, b| a.started.cmp(&b.started));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no runs recorded");
    }
    for r in &rows {
        let counts = r
            .counts
            .as_ref()
            .and_then(|c| c.as_object())
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| *k != "total")
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "{:<5}  {}  {:<7}  {}{}  {} attempt{}  {} users  {}  {counts}",
            r.target,
            r.run,
            r.command,
            r.state,
            if r.resumed { ", resumed" } else { "" },
            r.attempts,
            if r.attempts == 1 { "" } else { "s" },
            r.users,
            r.started,
        );
    }
    Ok(ExitCode::SUCCESS)
}
