//! `report.run`: the photo report (`photobulk_engine::audit`, the same code as the CLI's
//! `photobulk report`) with each row streamed as a `report/row` notification. This file only
//! maps parameters, rows and errors between the engine and the protocol.

use photobulk_engine::audit::{self, CloudSide, Item, ReportOptions, Scope, Writers};
use photobulk_engine::sync_hd::CloudMatch;
use photobulk_engine::{Cancel, Journal};
use photobulk_protocol::methods::{self as m, ReportRow};
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

use crate::ctx::Ctx;
use crate::{common, map};

pub(crate) async fn run(p: m::ReportParams, ctx: &Ctx) -> Result<m::ReportResult, ResponseError> {
    let b = ctx.session.bound().await?;
    let graph = if p.cloud {
        Some(ctx.session.graph().await?)
    } else {
        None
    };
    let scope = if p.identities.is_empty() {
        Scope::Under {
            base: p.search_base.clone(),
            only_with_photo: p.only_with_photo,
        }
    } else {
        Scope::Identities {
            by: common::lookup(&p.match_by)?,
            values: p.identities.clone(),
        }
    };
    let journal_path = match &p.journal_path {
        Some(j) => Some(std::path::PathBuf::from(j)),
        None => photobulk_engine::locations::state_dir(None)
            .map(|s| s.join(photobulk_engine::locations::IMPORT_JOURNAL)),
    };
    let journal = match &journal_path {
        Some(path) => Some(Journal::read_only(path).map_err(|e| map::engine(&e))?),
        None => None,
    };
    let cancel = Cancel::new();
    let opts = ReportOptions {
        scope,
        cloud: graph.as_ref().map(|g| audit::Cloud {
            graph: &g.client,
            match_by: match p.cloud_match {
                m::CloudMatch::Upn => CloudMatch::Upn,
                m::CloudMatch::Mail => CloudMatch::Mail,
                m::CloudMatch::Alias => CloudMatch::Alias,
            },
        }),
        journal: journal.as_ref(),
        photos: p.photos_path.as_ref().map(std::path::PathBuf::from),
        cancel: Some(cancel.clone()),
    };
    let inline = !p.identities.is_empty() && p.identities.len() <= 1000;
    let mut writers = Writers::create(
        p.csv_path.as_deref().map(std::path::Path::new),
        p.html_path.as_deref().map(std::path::Path::new),
        inline,
    )
    .map_err(|e| map::engine(&e))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(16);
    let consume = async {
        let mut write_error = None;
        while let Some(item) = rx.recv().await {
            if ctx.cancel.is_cancelled() {
                cancel.cancel();
            }
            if write_error.is_none() {
                write_error = writers.item(&item).err();
            }
            ctx.out
                .notify::<m::ReportRowNotice>(&m::ReportRowParams {
                    request_id: ctx.id.clone(),
                    row: row(item.row),
                })
                .await;
        }
        write_error
    };
    let (summary, write_error) = tokio::join!(audit::run(&b.dir, &opts, tx), consume);
    let summary = summary.map_err(|e| map::report(&e))?;
    if let Some(e) = write_error {
        return Err(map::engine(&e));
    }
    writers.finish(&summary).map_err(|e| map::engine(&e))?;
    if summary.cancelled {
        // The rows sent so far stand; the caller learns the report is partial.
        ctx.server.log(format_args!(
            "report.run {} cancelled after {} rows",
            ctx.id, summary.total
        ));
    }
    Ok(m::ReportResult {
        total: summary.total,
        with_photo: summary.with_ad_photo,
        with_cloud_photo: summary.with_cloud_photo,
        flagged: summary.flagged,
        csv_path: p.csv_path.clone(),
        html_path: p.html_path.clone(),
        cancelled: summary.cancelled,
    })
}

/// An engine row as the protocol's.
pub(crate) fn row(r: audit::Row) -> ReportRow {
    let (state, user, photo) = match &r.cloud {
        CloudSide::NotChecked => (None, None, None),
        CloudSide::NotInCloud { .. } => (Some("notInCloud"), None, None),
        CloudSide::NoPhoto { user } => (Some("noPhoto"), Some(user.clone()), None),
        CloudSide::Photo { user, photo } => (Some("photo"), Some(user.clone()), Some(photo)),
        CloudSide::Failed { user, .. } => (Some("failed"), Some(user.clone()), None),
    };
    ReportRow {
        identity: r.identity.clone(),
        dn: r.dn.clone(),
        user_principal_name: r.user_principal_name.clone(),
        mail: r.mail.clone(),
        display_name: r.display_name.clone(),
        has_photo: r.ad.is_some(),
        bytes: r.ad.as_ref().map(|p| p.bytes),
        width: r.ad.as_ref().and_then(|p| p.width),
        height: r.ad.as_ref().and_then(|p| p.height),
        format: r.ad.as_ref().and_then(|p| p.format.clone()),
        cloud_state: state.map(str::to_string),
        cloud_user: user,
        cloud_bytes: photo.map(|p| p.bytes),
        cloud_width: photo.and_then(|p| p.width),
        cloud_height: photo.and_then(|p| p.height),
        file: r.file.as_ref().map(|p| p.display().to_string()),
        written_by_run: r.written.as_ref().map(|w| w.run.clone()),
        written_at: r.written.as_ref().and_then(|w| w.time.clone()),
        flags: r.flags.iter().map(|f| f.code().to_string()).collect(),
        error: r.error.as_ref().map(|e| {
            let code = match e.kind {
                audit::RowErrorKind::UserNotFound => ErrorCode::UserNotFound,
                audit::RowErrorKind::Ambiguous => ErrorCode::AmbiguousUser,
                _ => ErrorCode::Directory,
            };
            ItemError::from(ResponseError::new(code, e.message.clone()).retryable(e.retryable))
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn protocol_flags_are_the_engine_flags() {
        let engine: Vec<&str> = audit::Flag::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(engine, m::flags::ALL);
    }

    #[test]
    fn rows_map_cloud_columns_and_typed_errors() {
        let r = row(audit::Row {
            identity: "a".into(),
            cloud: CloudSide::Photo {
                user: "a@x".into(),
                photo: audit::PhotoFacts {
                    bytes: 5,
                    width: Some(648),
                    height: Some(648),
                    ..Default::default()
                },
            },
            flags: vec![audit::Flag::CloudOnly],
            ..Default::default()
        });
        assert_eq!(r.cloud_state.as_deref(), Some("photo"));
        assert_eq!((r.cloud_bytes, r.cloud_width), (Some(5), Some(648)));
        assert_eq!(r.flags, vec!["cloud_only"]);
        let e = row(audit::Row {
            identity: "b".into(),
            error: Some(audit::RowError {
                kind: audit::RowErrorKind::UserNotFound,
                message: "no such user".into(),
                retryable: false,
            }),
            ..Default::default()
        });
        assert_eq!(e.error.unwrap().kind, ErrorCode::UserNotFound.kind());
    }
}
