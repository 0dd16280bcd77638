//! The offline import — the embedded default, no server needed: prepare every photo (AD and HD
//! JPEGs), write `manifest.json` and `report.html` (as `photobulk convert` does) and an LDIF
//! change file (`thumbnailPhoto.ldif`, see [`crate::ldif`]) that `ldapmodify -f` or
//! `ldifde -i -f` applies later.
//!
//! Output folder layout:
//!
//! ```text
//! OUT/ad/<account>.jpg      96x96, <= 10,240 bytes: the bytes the LDIF carries
//! OUT/hd/<account>.jpg      648x648 (Exchange / Graph)
//! OUT/manifest.json         photobulk-convert-manifest v1 (see crate::manifest)
//! OUT/report.html           contact sheet
//! OUT/thumbnailPhoto.ldif   one replace per converted photo
//! ```
//!
//! Two files for one account: the newest wins (converted), the older is reported in the
//! manifest with status `duplicate` and an error naming the winner.

use std::io::Write;
use std::path::PathBuf;

use crate::convert::{write_atomic, ConvertJob};
use crate::inputs::{Inputs, Take, UserExport};
use crate::ldif;
use crate::manifest::{ItemResult, Manifest, Status};
use crate::plan::{Plan, PlanItem, Verdict};
use crate::EngineError;

/// File name of the LDIF in the output folder.
pub const LDIF_FILE: &str = "thumbnailPhoto.ldif";

/// An offline import.
#[derive(Debug, Clone)]
pub struct OfflineJob {
    /// The conversion: its options must include a target named `ad` (the LDIF carries its
    /// bytes), usually `ad` and `hd`; the LDIF is written beside its outputs.
    pub convert: ConvertJob,
    /// Account → DN, from a user export (`--users`).
    pub users: Option<UserExport>,
    /// Base for placeholder DNs (`CN=<account>,CN=Users,<base>`).
    pub placeholder_base: Option<String>,
}

/// What an offline import produced.
#[derive(Debug, Clone)]
pub struct OfflineReport {
    pub manifest: Manifest,
    pub ldif: PathBuf,
    /// LDIF entries written.
    pub entries: usize,
    /// Of those, how many carry a placeholder DN.
    pub placeholders: usize,
    /// Older files that lost to a newer one for the same account.
    pub superseded: usize,
}

impl OfflineJob {
    pub fn run(
        &self,
        inputs: &Inputs,
        on_item: &(dyn Fn(&ItemResult) + Sync),
    ) -> Result<OfflineReport, EngineError> {
        if !self.convert.options.targets.iter().any(|t| t.name == "ad") {
            return Err(EngineError::InvalidTargetName(
                "the offline import needs the ad target (the LDIF carries it)".into(),
            ));
        }
        let mut plan = Plan {
            items: Vec::new(),
            skipped: inputs.skipped.clone(),
        };
        let mut superseded = Vec::new();
        for it in &inputs.items {
            let verdict = match &it.take {
                Take::Yes => Verdict::Convert,
                Take::NoAccount => Verdict::NoAccount,
                Take::Unreadable { reason } => Verdict::Unreadable {
                    reason: reason.clone(),
                },
                Take::Superseded { by } => {
                    superseded.push(ItemResult {
                        file: it.path.clone(),
                        account: it.account.clone(),
                        status: Status::Duplicate,
                        error: Some(format!(
                            "not converted: {} names the same account and is newer (the newest file wins)",
                            by.display()
                        )),
                        duplicates: vec![by.clone()],
                        source: None,
                        outputs: Vec::new(),
                        warnings: Vec::new(),
                        crop: None,
                        face: None,
                        thumbnail: None,
                    });
                    continue;
                }
            };
            plan.items.push(PlanItem {
                path: it.path.clone(),
                account: it.account.clone(),
                verdict,
            });
        }
        let mut manifest = self.convert.run(&plan, on_item)?;
        let n_superseded = superseded.len();
        if n_superseded > 0 {
            for s in &superseded {
                on_item(s);
            }
            manifest.items.extend(superseded);
            manifest.summary.total += n_superseded;
            manifest.summary.duplicate += n_superseded;
            let json = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| EngineError::Manifest(e.to_string()))?;
            write_atomic(&self.convert.out_dir.join("manifest.json"), &json)?;
            write_atomic(
                &self.convert.out_dir.join("report.html"),
                crate::report::html(&manifest).as_bytes(),
            )?;
        }
        // The LDIF, streamed: one photo in memory at a time.
        let ldif_path = self.convert.out_dir.join(LDIF_FILE);
        let tmp = self
            .convert
            .out_dir
            .join(format!(".{LDIF_FILE}.{}.tmp", std::process::id()));
        let io = |e| EngineError::io(&tmp, e);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        ldif::write_comment(
            &mut w,
            "PhotoBulk thumbnailPhoto changes. Apply: ldapmodify -H ldaps://DC -D BIND -W -f thumbnailPhoto.ldif   (or: ldifde -i -f thumbnailPhoto.ldif)",
        )
        .map_err(io)?;
        let (mut entries, mut placeholders) = (0, 0);
        for it in manifest.items.iter().filter(|i| i.status == Status::Ok) {
            let (Some(account), Some(out)) =
                (&it.account, it.outputs.iter().find(|o| o.target == "ad"))
            else {
                continue;
            };
            let path = self.convert.out_dir.join(&out.path);
            let photo = std::fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
            let (dn, note) = match self.users.as_ref().and_then(|u| u.dn(account)) {
                Some(dn) => (dn.to_string(), String::new()),
                None => {
                    placeholders += 1;
                    (
                        ldif::placeholder_dn(account, self.placeholder_base.as_deref()),
                        " PLACEHOLDER DN: not in the --users export; fix before applying"
                            .to_string(),
                    )
                }
            };
            writeln!(w).map_err(io)?;
            ldif::write_comment(
                &mut w,
                &format!(
                    "{account} <- {} ({} bytes, sha256 {}){note}",
                    it.file.display(),
                    photo.len(),
                    out.sha256
                ),
            )
            .map_err(io)?;
            ldif::write_replace(&mut w, &dn, &photo).map_err(io)?;
            entries += 1;
        }
        w.flush().map_err(io)?;
        drop(w);
        std::fs::rename(&tmp, &ldif_path).map_err(|e| EngineError::io(&ldif_path, e))?;
        Ok(OfflineReport {
            manifest,
            ldif: ldif_path,
            entries,
            placeholders,
            superseded: n_superseded,
        })
    }
}
