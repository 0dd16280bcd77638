//! `photobulk import` and `photobulk restore --run ID`: the main job.
//!
//! - `photobulk import PHOTOS... --out DIR [--users users.csv]` — offline (no server): AD and HD
//!   JPEGs, `manifest.json`, `report.html` and `thumbnailPhoto.ldif` for `ldapmodify`/`ldifde`.
//! - `photobulk import PHOTOS... --server ldaps://dc ...` — into AD `thumbnailPhoto`: backups on,
//!   journal, resume by running the same command again, Ctrl+C finishes writes in flight.
//! - `--plan` (alias `--what-if`): the dry run — who each file matches, set / replace /
//!   unchanged, warnings, and with `--scope DN` the users in scope that have no file.
//! - `photobulk restore --run ID` puts back every photo a run replaced, byte for byte.
//!
//! Connection options and the password (`PHOTOBULK_LDAP_PASSWORD`, `--password-file`, prompt)
//! are those of `photobulk ad` ([`crate::ad::ConnArgs`]).
//!
//! # State
//! `--state-dir` (else `PHOTOBULK_STATE_DIR`, else the platform's folder, see
//! [`photobulk_engine::locations`]) holds `journal.jsonl` ([`photobulk_engine::journal`]). Backups
//! go to `--backup-dir`, else `PHOTOBULK_BACKUP_DIR`, else `STATE/ad-backups`.
//!
//! # JSON (`--json`)
//! One JSON object per line as each item finishes (`{"type":"item",...}`, fields as
//! [`photobulk_engine::ImportItem`]), then `{"type":"summary","run":...,"summary":{...}}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::graph::shown;
use anyhow::{anyhow, bail, Context};
use photobulk_directory::{BackupStore, Lookup};
use photobulk_engine::{
    collect, job_key, restore_run, Action, Cancel, ConvertJob, ImportItem, ImportJob, Journal,
    OfflineJob, Reconnect, RunMeta, UserExport,
};
use photobulk_imaging::{Options, Target};

use crate::ad::{self, ConnArgs};
use crate::progress;
use crate::AdPhotoArgs;

/// Put photos into AD thumbnailPhoto (or, offline, into JPEGs + LDIF).
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Photo files, folders of photos (file name = account, up to the first space) and CSV
    /// files with Identity,Path columns.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    conn: ConnArgs,
    /// Offline: write JPEGs, manifest.json, report.html and thumbnailPhoto.ldif here (no server).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Offline: a user export (CSV with DistinguishedName or DN, and the --by column) that gives
    /// the LDIF its DNs. Without it DNs are placeholders: CN=<account>,CN=Users,<--base or
    /// DC=example,DC=invalid>.
    #[arg(long, value_name = "CSV")]
    users: Option<PathBuf>,
    /// Dry run: show who each file matches and what would be done; write nothing.
    #[arg(long, visible_alias = "what-if", alias = "dry-run")]
    plan: bool,
    /// Write even when AD already holds exactly these bytes (the old photo is still backed up).
    #[arg(long)]
    force: bool,
    /// With --plan: also list the users under this DN that no file names.
    #[arg(long, value_name = "DN")]
    scope: Option<String>,
    /// Also take photos from sub-folders.
    #[arg(long)]
    recurse: bool,
    /// Users in flight at once (lookups, conversions, writes).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    window: u32,
    /// Conversions at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// When the connection drops mid-run: reconnect attempts (waiting 0.5 s, then twice as
    /// long each time up to 8 s) before the remaining users fail as retryable. 0: no reconnect.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=100))]
    reconnect_attempts: u32,
    /// Journal folder (default: PHOTOBULK_STATE_DIR, else ~/.local/state/photobulk, or
    /// %LOCALAPPDATA%\PhotoBulk on Windows, ~/Library/Application Support/PhotoBulk on macOS).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Do not back up replaced photos (they are lost; restore --run cannot undo the run).
    #[arg(long)]
    no_backup: bool,
    #[command(flatten)]
    photo: AdPhotoArgs,
}

impl ImportArgs {
    /// The demo is offline whatever the environment says (PHOTOBULK_LDAP_SERVER).
    pub(crate) fn force_offline(&mut self) {
        self.conn.server = None;
    }
}

/// Put back every photo a run replaced.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The run id (printed by `photobulk import`, and in journal.jsonl).
    #[arg(long, value_name = "ID")]
    run: String,
    #[command(flatten)]
    conn: ConnArgs,
    /// Journal folder (as for import).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Users in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    window: u32,
}

fn state_dir(arg: Option<&Path>) -> anyhow::Result<PathBuf> {
    photobulk_engine::locations::state_dir(arg)
        .ok_or_else(|| anyhow!("no state folder: give --state-dir DIR (or PHOTOBULK_STATE_DIR)"))
}

fn backup_store(conn: &ConnArgs, state: &Path) -> anyhow::Result<BackupStore> {
    let dir = photobulk_engine::locations::ad_backup_dir(conn.backup_dir.as_deref(), Some(state))
        .unwrap_or_else(|| state.join("ad-backups"));
    ad::open_backup_dir(Some(&dir))
}

fn imaging_options(args: &ImportArgs, with_hd: bool) -> anyhow::Result<Options> {
    let mut targets = vec![args.photo.ad_target()?];
    if with_hd {
        targets.push(Target::hd());
    }
    Ok(Options {
        crop: args.photo.crop.to_crop(),
        targets,
        ..Options::default()
    })
}

/// `photobulk import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    // Offline with --out and no directory named; without --out, a DC is found in DNS.
    let directory_named = args.conn.server.is_some() || args.conn.domain.is_some();
    if !directory_named && (args.out.is_some() || args.users.is_some()) {
        return offline(args);
    }
    if args.out.is_some() || args.users.is_some() {
        bail!("--out and --users are for the offline import (no --server or --domain); with a directory the photos go to it");
    }
    crate::block_on(online(args))
}

fn offline(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.clone().ok_or_else(|| {
        anyhow!("give --out DIR (offline: JPEGs, manifest, LDIF) or --server URL (write to the directory)")
    })?;
    if args.plan {
        bail!("--plan needs a directory to compare with: give --server");
    }
    let by = Lookup::parse(&args.conn.by).map_err(|e| anyhow!("--by: {e}"))?;
    let users = match &args.users {
        Some(p) => Some(
            UserExport::read(p, by.attribute())
                .with_context(|| format!("--users {}", p.display()))?,
        ),
        None => None,
    };
    let inputs = collect(&args.inputs, args.recurse)?;
    let job = OfflineJob {
        convert: ConvertJob {
            options: imaging_options(&args, true)?,
            out_dir: out.clone(),
            threads: args.threads,
        },
        users,
        placeholder_base: args.conn.base.clone(),
    };
    let bar = progress::bar(inputs.items.len());
    let on_item = |r: &photobulk_engine::ItemResult| {
        let line = r
            .error
            .as_ref()
            .map(|e| format!("error: {}: {e}", r.file.display()));
        progress::item(&bar, None, line, args.conn.json);
    };
    let report = job
        .run(&inputs, &on_item)
        .context("the offline import could not run")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let s = report.manifest.summary;
    if args.conn.json {
        println!(
            "{}",
            serde_json::json!({
                "type": "summary", "offline": true, "out": out, "ldif": report.ldif,
                "ldif_entries": report.entries, "placeholder_dns": report.placeholders,
                "superseded": report.superseded, "summary": s,
            })
        );
    } else {
        println!(
            "{} files: {} prepared, {} failed, {} naming nobody, {} older duplicates skipped; {} other files ignored",
            s.total, s.ok, s.failed, s.no_account, report.superseded, s.skipped_files
        );
        println!(
            "photos:   {} and {}",
            out.join("ad").display(),
            out.join("hd").display()
        );
        println!("manifest: {}", out.join("manifest.json").display());
        println!("report:   {}", out.join("report.html").display());
        println!(
            "ldif:     {} ({} entries{})",
            report.ldif.display(),
            report.entries,
            if report.placeholders > 0 {
                format!(
                    ", {} with PLACEHOLDER DNs: give --users users.csv",
                    report.placeholders
                )
            } else {
                String::new()
            }
        );
        println!(
            "apply:    ldapmodify -H ldaps://DC -D BIND -W -f {}   (or ldifde -i -f ...)",
            report.ldif.display()
        );
    }
    if s.total == 0 {
        eprintln!("error: no photos found in the inputs");
        return Ok(ExitCode::from(1));
    }
    // Older duplicates are reported, not failures: the newest file for the account was used.
    Ok(if s.failed + s.no_account > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn online(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let by = Lookup::parse(&args.conn.by).map_err(|e| anyhow!("--by: {e}"))?;
    let options = imaging_options(&args, false)?;
    let state = state_dir(args.state_dir.as_deref())?;
    // `--plan` reads the journal (unchanged, resume) and leaves no file behind.
    let journal = if args.plan {
        Journal::read_only(state.join(photobulk_engine::locations::IMPORT_JOURNAL))?
    } else {
        Journal::open(state.join(photobulk_engine::locations::IMPORT_JOURNAL))?
    };
    let backup = if args.no_backup || args.plan {
        None
    } else {
        Some(backup_store(&args.conn, &state)?)
    };
    let inputs = collect(&args.inputs, args.recurse)?;
    let dir = ad::connect(&args.conn).await?;
    // The job is the same whichever DC of the domain answers this time (resume still works).
    let target = match (&args.conn.server, &args.conn.domain) {
        (Some(s), _) => s.clone(),
        (None, Some(d)) => format!("dns:{}", d.to_ascii_lowercase()),
        (None, None) => format!(
            "dns:{}",
            dir.located().map(|l| l.domain.as_str()).unwrap_or("")
        ),
    };
    let meta = RunMeta {
        job: job_key(
            &args.inputs,
            &target,
            args.conn.base.as_deref(),
            &by,
            &options,
        ),
        server: Some(dir.url().to_string()),
        inputs: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let job = ImportJob {
        options,
        by,
        window: args.window as usize,
        image_threads: args.threads,
        dry_run: args.plan,
        force: args.force,
        backup,
        journal: journal.clone(),
        scope: args.scope.clone(),
        reconnect: Reconnect {
            attempts: args.reconnect_attempts,
            ..Reconnect::default()
        },
    };
    let cancel = Cancel::new();
    cancel.on_ctrl_c(|| {
        eprintln!("photobulk: Ctrl+C: finishing the writes in flight, then stopping (Ctrl+C again quits at once)")
    });
    let json = args.conn.json;
    let bar = progress::bar(inputs.items.len());
    let bar2 = bar.clone();
    let mut on_item = move |it: &ImportItem| {
        if json {
            let mut v = serde_json::to_value(it).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "item".into());
            }
            println!("{v}");
        }
        let line = match (&it.action, &it.error) {
            (Action::Failed, Some(e)) => Some(format!(
                "error: {} ({}): {}",
                shown(&it.file.display().to_string()),
                shown(it.account.as_deref().unwrap_or("?")),
                shown(&e.message)
            )),
            (Action::Skipped, Some(e)) if e.kind == "superseded" => Some(format!(
                "note: {}: {}",
                shown(&it.file.display().to_string()),
                shown(&e.message)
            )),
            _ => None,
        };
        progress::item(
            &bar2,
            Some(it.account.as_deref().unwrap_or_default()),
            line,
            json || args.plan,
        );
    };
    let result = job.run(&dir, inputs, &meta, &cancel, &mut on_item).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let _ = dir.unbind().await;
    journal.close()?;
    let report = result?;
    let s = report.summary;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "type": "summary", "run": report.run, "resumed": report.resumed,
                "cancelled": report.cancelled, "dry_run": args.plan, "summary": s,
                "users_without_file": report.users_without_file,
                "journal": journal.path(),
            })
        );
    } else if args.plan {
        let mut items = report.items.clone();
        items.sort_by(|a, b| a.file.cmp(&b.file));
        println!(
            "{:<10} {:<24} {:<50} FILE / WARNINGS",
            "ACTION", "ACCOUNT", "USER (DN) OR REASON"
        );
        for it in &items {
            let action = match it.action {
                Action::Set => "set",
                Action::Replace => "replace",
                Action::Unchanged => "unchanged",
                Action::Failed => "FAIL",
                Action::Skipped => "skip",
            };
            let who = match (&it.dn, &it.error) {
                (_, Some(e)) => format!("{}: {}", e.kind, e.message),
                (Some(dn), None) => dn.clone(),
                _ => String::new(),
            };
            let mut tail = it.file.display().to_string();
            if !it.warnings.is_empty() {
                tail.push_str(&format!("  [{}]", it.warnings.join("; ")));
            }
            // File names and accounts come from the file system and CSVs: no raw NUL or
            // escape sequence reaches the terminal.
            let (who, tail) = (shown(&who), shown(&tail));
            println!(
                "{action:<10} {:<24} {who:<50} {tail}",
                shown(it.account.as_deref().unwrap_or("-"))
            );
        }
        println!(
            "plan: {} files: {} to set, {} to replace, {} unchanged, {} failing, {} skipped (nothing was written)",
            s.total, s.set, s.replaced, s.unchanged, s.failed, s.skipped
        );
        if let Some(missing) = &report.users_without_file {
            println!(
                "{} users in scope have no file: {}",
                missing.len(),
                missing.join(", ")
            );
        }
    } else {
        println!(
            "{} files: {} set, {} replaced, {} unchanged, {} failed ({} retryable), {} skipped",
            s.total, s.set, s.replaced, s.unchanged, s.failed, s.retryable, s.skipped
        );
        if let Some(run) = &report.run {
            println!(
                "run {run}{}: journal {}; undo with: photobulk restore --run {run}",
                if report.resumed { " (resumed)" } else { "" },
                journal.path().display()
            );
        }
        if report.cancelled {
            println!("cancelled: run the same command again to finish");
        } else if s.retryable > 0 {
            println!(
                "{} users failed for reasons that may pass: run the same command again to finish",
                s.retryable
            );
        }
    }
    Ok(if s.failed > 0 || report.cancelled {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `photobulk restore --run ID`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    crate::block_on(restore_async(args))
}

async fn restore_async(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let state = state_dir(args.state_dir.as_deref())?;
    let journal = Journal::open(state.join(photobulk_engine::locations::IMPORT_JOURNAL))?;
    let store = backup_store(&args.conn, &state)?;
    let dir = ad::connect(&args.conn).await?;
    let cancel = Cancel::new();
    cancel.on_ctrl_c(|| {
        eprintln!("photobulk: Ctrl+C: finishing the writes in flight, then stopping")
    });
    let json = args.conn.json;
    let mut on_item = |it: &photobulk_engine::RestoreItem| {
        if json {
            let mut v = serde_json::to_value(it).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "item".into());
            }
            println!("{v}");
        } else if let Some(e) = &it.error {
            eprintln!("error: {}: {}", it.dn, e.message);
        }
    };
    let result = restore_run(
        &dir,
        &journal,
        &store,
        &args.run,
        args.window as usize,
        &cancel,
        &mut on_item,
    )
    .await;
    let _ = dir.unbind().await;
    journal.close()?;
    let r = result?;
    if json {
        println!(
            "{}",
            serde_json::json!({"type":"summary","run":r.run,"restores":r.restores,
                "restored":r.restored,"unchanged":r.unchanged,"failed":r.failed})
        );
    } else {
        println!(
            "restore of run {}: {} photos put back, {} already as before, {} failed",
            r.restores, r.restored, r.unchanged, r.failed
        );
        println!(
            "this restore is run {} (undo it with: photobulk restore --run {})",
            r.run, r.run
        );
    }
    Ok(if r.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
