//! `photobulk report`: the photo report for CLI users — every user's AD photo, next to the
//! cloud photo when Graph sign-in options are given, with the flags to act on, as text,
//! JSON, CSV and an HTML contact sheet. The work is `photobulk_engine::audit` (the same code
//! `Get-PhotoReport` reaches through the sidecar); this file parses arguments, connects and
//! prints.
//!
//! Exit codes: 0 when the report ran (flagged users are findings, not failures), 1 when it
//! was stopped early, 2 on usage errors, and the error exit on connection or listing errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use photobulk_directory::Lookup;
use photobulk_engine::audit::{self, CloudSide, Item, ReportOptions, Scope, Writers};
use photobulk_engine::sync_hd::CloudMatch;
use photobulk_engine::{Cancel, Journal};

use crate::env::BothSides;
use crate::sync_hd::MatchArg;

/// Report every user's AD photo (and cloud photo) with what is wrong with it.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    conn: BothSides,
    /// Only the users named in this file, one a line (found by --by); `-` reads stdin.
    /// Default: every user under --base
    #[arg(long, value_name = "FILE|-")]
    users: Option<PathBuf>,
    /// Only these users (repeatable), found by --by
    #[arg(long = "user", value_name = "NAME")]
    user: Vec<String>,
    /// Leave out users without an AD photo
    #[arg(long)]
    only_with_photo: bool,
    /// How an AD user is found in the tenant (with Graph sign-in options)
    #[arg(long = "match", value_enum, default_value_t = MatchArg::Upn)]
    match_by: MatchArg,
    /// A photo folder (file name = account): show the photo a run would write and who would change
    #[arg(long, value_name = "DIR")]
    photos: Option<PathBuf>,
    /// Write the rows as CSV here (as they arrive)
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the HTML contact sheet here (photos in FILE-stem_photos/ beside it)
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The import journal that says which photos PhotoBulk wrote (default: STATE/journal.jsonl)
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// State folder (default: PHOTOBULK_STATE_DIR, else the platform's)
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let json = args.conn.ad.json;
    let graph = if args.conn.graph.configured() {
        Some(args.conn.graph_client()?)
    } else {
        None
    };
    if let Some(g) = &graph {
        g.sign_in().await.context("signing in to Microsoft Graph")?;
    }
    let dir = crate::ad::connect(&args.conn.ad).await?;

    let mut values = args.user.clone();
    if let Some(p) = &args.users {
        values.extend(crate::sync_hd::read_user_list(p)?);
    }
    let scope = if values.is_empty() && args.users.is_none() {
        Scope::Under {
            base: args.conn.ad.base.clone(),
            only_with_photo: args.only_with_photo,
        }
    } else {
        Scope::Identities {
            by: Lookup::parse(&args.conn.ad.by)?,
            values: values.clone(),
        }
    };
    let journal_path = match &args.journal {
        Some(p) => Some(p.clone()),
        None => photobulk_engine::locations::state_dir(args.state_dir.as_deref())
            .map(|s| s.join(photobulk_engine::locations::IMPORT_JOURNAL)),
    };
    let journal = match &journal_path {
        Some(p) => Some(
            Journal::read_only(p)
                .with_context(|| format!("reading the journal {}", p.display()))?,
        ),
        None => None,
    };
    let cancel = Cancel::new();
    cancel.on_ctrl_c(|| eprintln!("photobulk: stopping the report (Ctrl+C again to quit now)"));
    let opts = ReportOptions {
        scope,
        cloud: graph.as_ref().map(|g| audit::Cloud {
            graph: g,
            match_by: match args.match_by {
                MatchArg::Upn => CloudMatch::Upn,
                MatchArg::Mail => CloudMatch::Mail,
                MatchArg::Alias => CloudMatch::Alias,
            },
        }),
        journal: journal.as_ref(),
        photos: args.photos.clone(),
        cancel: Some(cancel),
    };
    // A handful of named users fit in one file; a whole directory gets a photo folder.
    let inline = !values.is_empty() && values.len() <= 1000;
    let mut writers = Writers::create(args.csv.as_deref(), args.html.as_deref(), inline)?;

    let bar = if values.is_empty() {
        crate::progress::spinner("users")
    } else {
        crate::progress::bar(values.len())
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(16);
    let mut rows_json = Vec::new();
    let consume = async {
        let mut write_error = None;
        while let Some(item) = rx.recv().await {
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(item.row.identity.clone());
            }
            if write_error.is_none() {
                if let Err(e) = writers.item(&item) {
                    write_error = Some(e);
                }
            }
            if json {
                rows_json.push(item.row);
            } else if bar.is_none() || !std::io::stdout().is_terminal() {
                println!("{}", line(&item.row));
            } else if let Some(b) = &bar {
                b.println(line(&item.row));
            }
        }
        write_error
    };
    let (summary, write_error) = tokio::join!(audit::run(&dir, &opts, tx), consume);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    writers.finish(&summary)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "summary": summary, "rows": rows_json })
            )?
        );
    } else {
        let mut parts = vec![
            format!("{} users", summary.total),
            format!("{} with an AD photo", summary.with_ad_photo),
        ];
        if summary.cloud_checked {
            parts.push(format!("{} with a cloud photo", summary.with_cloud_photo));
        }
        parts.push(format!("{} flagged", summary.flagged));
        for f in audit::Flag::ALL {
            let n = summary.count(*f);
            if n > 0 {
                parts.push(format!("{n} {}", f.code()));
            }
        }
        eprintln!(
            "{}{}",
            parts.join(", "),
            if summary.cancelled {
                " (stopped early)"
            } else {
                ""
            }
        );
        for (what, p) in [("CSV", &args.csv), ("contact sheet", &args.html)] {
            if let Some(p) = p {
                eprintln!("{what}: {}", p.display());
            }
        }
    }
    Ok(if summary.cancelled {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn line(r: &audit::Row) -> String {
    let ad = match &r.ad {
        Some(p) => format!("AD {} bytes", p.bytes),
        None => "AD none".into(),
    };
    let cloud = match &r.cloud {
        CloudSide::NotChecked => String::new(),
        CloudSide::NotInCloud { .. } => ", not in the tenant".into(),
        CloudSide::NoPhoto { .. } => ", cloud none".into(),
        CloudSide::Photo { photo, .. } => format!(", cloud {} bytes", photo.bytes),
        CloudSide::Failed { message, .. } => format!(", cloud failed: {message}"),
    };
    let flags: Vec<&str> = r.flags.iter().map(|f| f.code()).collect();
    let err = r
        .error
        .as_ref()
        .map(|e| format!(": {}", e.message))
        .unwrap_or_default();
    let identity = printable(&r.identity);
    if flags.is_empty() {
        format!("{identity}: {ad}{cloud}{err}")
    } else {
        format!("{identity}: {ad}{cloud} [{}]{err}", flags.join(", "))
    }
}

/// A name as it can be printed: control characters (NUL, escape sequences) shown escaped.
fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}
