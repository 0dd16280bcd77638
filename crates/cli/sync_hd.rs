//! `photobulk sync-hd-to-ad`: each user's cloud HD photo (Graph) into AD thumbnailPhoto at
//! 96x96 ≤ 10 KB ("Use existing HD"). The work is `photobulk_engine::sync_hd`; this file parses
//! arguments, connects both sides and prints results. LDAP options are `photobulk ad`'s,
//! Graph options `photobulk graph`'s (secrets from env vars, files or stdin, never argv), the
//! Graph CA file is `--graph-ca-file`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use photobulk_directory::{Lookup, WriteOptions};
use photobulk_engine::sync_hd::{
    sync_hd_to_ad, CloudMatch, SyncHdOptions, SyncItem, SyncJournal, SyncScope, SyncStatus,
};
use photobulk_engine::Cancel;

use crate::env::BothSides;
use crate::{ad, CropArg};

/// Put each user's cloud HD photo into AD thumbnailPhoto (96x96, <= 10 KB).
#[derive(clap::Args, Debug)]
pub struct SyncHdArgs {
    #[command(flatten)]
    conn: BothSides,
    /// Only these users (repeatable), found by --by; default: every user under --base
    #[arg(long = "user", value_name = "NAME")]
    users: Vec<String>,
    /// Only the users named in this file, one a line (found by --by)
    #[arg(long, value_name = "PATH")]
    users_file: Option<PathBuf>,
    /// How an AD user is found in the tenant
    #[arg(long = "match", value_enum, default_value_t = MatchArg::Upn)]
    match_by: MatchArg,
    /// How non-square cloud photos become square
    #[arg(long, value_enum, default_value_t = CropArg::Face)]
    crop: CropArg,
    /// Decide and report, write nothing
    #[arg(long)]
    dry_run: bool,
    /// Convert and compare even users the journal says are already synced
    #[arg(long)]
    force: bool,
    /// Do not back up the AD photos replaced (they are lost)
    #[arg(long)]
    no_backup: bool,
    /// Sync journal (default: sync-hd.jsonl in the AD backup folder)
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Users in flight (Graph photo requests are capped by --concurrency on top)
    #[arg(long, default_value_t = 8)]
    workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MatchArg {
    /// AD userPrincipalName = cloud UPN
    Upn,
    /// AD mail = cloud mail
    Mail,
    /// AD sAMAccountName = cloud UPN prefix
    Alias,
}

pub async fn run(args: SyncHdArgs) -> anyhow::Result<ExitCode> {
    let json = args.conn.ad.json;
    let graph = args.conn.graph_client()?;
    let dir = ad::connect(&args.conn.ad).await?;

    let mut values = args.users.clone();
    if let Some(p) = &args.users_file {
        values.extend(read_user_list(p)?);
    }
    let scope = if values.is_empty() && args.users_file.is_none() {
        SyncScope::Under {
            base: args.conn.ad.base.clone(),
        }
    } else {
        SyncScope::Identities {
            by: Lookup::parse(&args.conn.ad.by)?,
            values,
        }
    };

    let backup_dir = args
        .conn
        .ad
        .backup_dir
        .clone()
        .or_else(ad::default_backup_dir)
        .context("no backup folder: give --backup-dir DIR (or PHOTOBULK_BACKUP_DIR)")?;
    let write = if args.no_backup {
        WriteOptions::without_backup()
    } else {
        WriteOptions::backup_to(ad::open_backup_dir(Some(&backup_dir))?)
    };
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| backup_dir.join(photobulk_engine::locations::SYNC_HD_JOURNAL));
    let journal = SyncJournal::open(&journal_path)
        .with_context(|| format!("opening the sync journal {}", journal_path.display()))?;

    let cancel = Cancel::new();
    cancel.on_ctrl_c(|| {
        eprintln!("photobulk: stopping after the users in flight (Ctrl+C again to quit now)")
    });
    let opts = SyncHdOptions {
        match_by: match args.match_by {
            MatchArg::Upn => CloudMatch::Upn,
            MatchArg::Mail => CloudMatch::Mail,
            MatchArg::Alias => CloudMatch::Alias,
        },
        crop: args.crop.to_crop(),
        journal: Some(Arc::new(journal)),
        workers: args.workers.max(1),
        dry_run: args.dry_run,
        force: args.force,
        cancel: Some(cancel),
        ..SyncHdOptions::new(write)
    };
    let show = |item: &SyncItem| {
        if !json {
            println!("{}", line(item));
        }
    };
    let report = sync_hd_to_ad(&dir, &graph, &scope, &opts, &show).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let s = &report.summary;
        eprintln!(
            "{} users: {} written, {} would write, {} unchanged, {} without a cloud photo, {} without a mailbox, {} not in the tenant, {} failed{}",
            s.total,
            s.written,
            s.would_write,
            s.unchanged,
            s.no_cloud_photo,
            s.no_mailbox,
            s.not_in_cloud,
            s.failed,
            if report.cancelled { " (stopped early)" } else { "" }
        );
    }
    Ok(if report.summary.failed == 0 && !report.cancelled {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn line(item: &SyncItem) -> String {
    let what = match item.status {
        SyncStatus::Written => format!(
            "written ({} bytes{})",
            item.written_bytes.unwrap_or(0),
            item.backup_id
                .as_deref()
                .map(|b| format!(", backup {b}"))
                .unwrap_or_default()
        ),
        SyncStatus::WouldWrite => {
            format!("would write ({} bytes)", item.written_bytes.unwrap_or(0))
        }
        SyncStatus::Unchanged => "unchanged".into(),
        SyncStatus::NoCloudPhoto => "no cloud photo".into(),
        SyncStatus::NoMailbox => "no mailbox in the cloud".into(),
        SyncStatus::NotInCloud => "not in the tenant".into(),
        SyncStatus::Failed => "FAILED".into(),
    };
    match &item.error {
        Some(e) if item.status == SyncStatus::Failed => {
            format!("{}: {what}: {} ({})", item.identity, e.message, e.kind)
        }
        _ => format!("{}: {what}", item.identity),
    }
}

/// The names in a user list: one a line, blank lines and `#` comments skipped; `-` is stdin.
pub(crate) fn read_user_list(p: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = if p.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the user list from stdin")?
    } else {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}
