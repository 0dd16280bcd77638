//! `bulk.plan` and `bulk.run`: one pass per target, each through library machinery, never a
//! loop of its own here.
//!
//! - `ActiveDirectory`: the engine's import job ([`crate::ad_bulk`]).
//! - `ExchangeOnPrem`: the engine's inputs, naming and journal ([`crate::exchange`]); the
//!   client writes with its own `Set-UserPhoto` and reports back with `bulk.record`.
//! - `ExchangeOnline`: `photobulk_graph`'s bulk upload ([`crate::graph`]).
//!
//! The passes run in that order, share one output folder, and tag every item with its target.
//! A cancel stops the pass in progress between items (writes in flight finish and are
//! journaled); later passes do not start.

use std::path::PathBuf;

use photobulk_protocol::methods::{self as m, BulkItem, BulkParams, BulkSummary, BulkTarget};
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::ctx::Ctx;
use crate::{common, map};

fn check(p: &BulkParams) -> Result<(), ResponseError> {
    if p.items.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "items is empty",
        ));
    }
    if p.targets.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "targets is empty (ActiveDirectory, ExchangeOnPrem, ExchangeOnline)",
        ));
    }
    Ok(())
}

fn add(total: &mut BulkSummary, s: &BulkSummary) {
    total.total += s.total;
    total.ready += s.ready;
    total.written += s.written;
    total.unchanged += s.unchanged;
    total.skipped += s.skipped;
    total.failed += s.failed;
    total.cancelled += s.cancelled;
}

struct Outcome {
    items: Vec<BulkItem>,
    summary: BulkSummary,
    cancelled: bool,
    out_dir: PathBuf,
    journal: Option<PathBuf>,
}

async fn each_target(p: &BulkParams, ctx: &Ctx, dry_run: bool) -> Result<Outcome, ResponseError> {
    check(p)?;
    let out_dir = match &p.out_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| map::io(d, &e))?;
            PathBuf::from(d)
        }
        None => common::fresh_dir(ctx, if dry_run { "plan" } else { "bulk" })?,
    };
    let engine_journal = p
        .journal
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir.join(photobulk_engine::locations::IMPORT_JOURNAL));
    let mut out = Outcome {
        items: Vec::new(),
        summary: BulkSummary::default(),
        cancelled: false,
        out_dir: out_dir.clone(),
        journal: None,
    };
    for target in [
        BulkTarget::ActiveDirectory,
        BulkTarget::ExchangeOnPrem,
        BulkTarget::ExchangeOnline,
    ] {
        if !p.targets.contains(&target) || out.cancelled {
            continue;
        }
        let (mut items, summary, cancelled, journal) = match target {
            BulkTarget::ActiveDirectory => {
                let (i, s, c) = crate::ad_bulk::import(p, ctx, &engine_journal, dry_run).await?;
                (i, s, c, engine_journal.clone())
            }
            BulkTarget::ExchangeOnPrem => {
                let (i, s, c) =
                    crate::exchange::prepare(p, ctx, &out_dir, &engine_journal, dry_run).await?;
                (i, s, c, engine_journal.clone())
            }
            BulkTarget::ExchangeOnline => crate::graph::bulk(p, ctx, &out_dir, dry_run).await?,
        };
        // The list an admin reads under -WhatIf comes in a stable order (notifications keep
        // completion order).
        items.sort_by(|a, b| a.identity.cmp(&b.identity));
        if dry_run && p.stream_items {
            let total = items.len();
            for (n, item) in items.iter().enumerate() {
                crate::common::notify_item(ctx, item, n + 1, total).await;
            }
        } else {
            out.items.extend(items);
        }
        add(&mut out.summary, &summary);
        out.cancelled |= cancelled;
        out.journal.get_or_insert(journal);
    }
    if !dry_run {
        let s = &out.summary;
        ctx.server.log(format_args!(
            "bulk.run {}: {} written, {} ready for the client, {} unchanged, {} skipped, {} failed, {} cancelled",
            ctx.id, s.written, s.ready, s.unchanged, s.skipped, s.failed, s.cancelled
        ));
    }
    Ok(out)
}

pub(crate) async fn plan(p: BulkParams, ctx: &Ctx) -> Result<m::BulkPlanResult, ResponseError> {
    let o = each_target(&p, ctx, true).await?;
    let environment = crate::sync_hd::environment(m::EnvironmentParams::default(), ctx).await;
    Ok(m::BulkPlanResult {
        items: o.items,
        summary: o.summary,
        environment: Some(environment),
    })
}

pub(crate) async fn run(p: BulkParams, ctx: &Ctx) -> Result<m::BulkRunResult, ResponseError> {
    let o = each_target(&p, ctx, false).await?;
    Ok(m::BulkRunResult {
        summary: o.summary,
        cancelled: o.cancelled,
        out_dir: o.out_dir.display().to_string(),
        journal: o
            .journal
            .map(|j| j.display().to_string())
            .unwrap_or_default(),
    })
}
