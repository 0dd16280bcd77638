//! Running a planned bulk conversion: files are read and converted on a small pool of
//! threads (imaging is CPU work; reading overlaps with it), each output is written
//! atomically (temporary file, then rename), and every file gets its own result. One
//! bad file never stops the batch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use photobulk_imaging::{ImagingError, Options};

use crate::manifest::{ItemResult, Manifest, ManifestOptions, Status, Summary, WrittenOutput};
use crate::plan::{Plan, PlanItem, Verdict};
use crate::EngineError;

/// Folder (under the output folder) of the contact sheet's source thumbnails.
pub const THUMBS: &str = "thumbs";

/// A bulk conversion to run over a [`Plan`].
#[derive(Debug, Clone)]
pub struct ConvertJob {
    pub options: Options,
    /// Outputs go to `out_dir/<target name>/<account>.jpg`.
    pub out_dir: PathBuf,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

impl ConvertJob {
    /// Run the job. `on_item` is called (from worker threads) as each file finishes, for
    /// progress display. Returns the manifest, which is also written to
    /// `out_dir/manifest.json`. Only problems with the output folder itself are errors;
    /// everything about a single file is in its [`ItemResult`].
    pub fn run(
        &self,
        plan: &Plan,
        on_item: &(dyn Fn(&ItemResult) + Sync),
    ) -> Result<Manifest, EngineError> {
        for t in &self.options.targets {
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(EngineError::InvalidTargetName(t.name.clone()));
            }
            let dir = self.out_dir.join(&t.name);
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        }
        let dir = self.out_dir.join(THUMBS);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let threads = match self.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        }
        .min(plan.items.len().max(1));

        let slots: Vec<Mutex<Option<ItemResult>>> =
            plan.items.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = plan.items.get(i) else { break };
                    let result = self.one(item);
                    on_item(&result);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                });
            }
        });
        let items: Vec<ItemResult> = slots
            .into_iter()
            .zip(&plan.items)
            .map(|(slot, item)| {
                slot.into_inner().ok().flatten().unwrap_or_else(|| {
                    failed(
                        item,
                        "internal error: worker stopped before this file".to_string(),
                    )
                })
            })
            .collect();

        let mut summary = Summary {
            total: items.len(),
            skipped_files: plan.skipped.len(),
            ..Summary::default()
        };
        for it in &items {
            match it.status {
                Status::Ok => summary.ok += 1,
                Status::Failed => summary.failed += 1,
                Status::Duplicate => summary.duplicate += 1,
                Status::NoAccount => summary.no_account += 1,
            }
        }
        let manifest = Manifest {
            format: "photobulk-convert-manifest",
            version: 1,
            tool_version: env!("CARGO_PKG_VERSION"),
            finished_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            options: ManifestOptions {
                crop: self.options.crop,
                background: self.options.background,
                targets: self.options.targets.clone(),
            },
            summary,
            items,
            skipped_files: plan.skipped.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| EngineError::Manifest(e.to_string()))?;
        write_atomic(&self.out_dir.join("manifest.json"), &json)?;
        std::fs::write(
            self.out_dir.join("report.html"),
            crate::report::html(&manifest),
        )
        .map_err(|e| EngineError::io(&self.out_dir.join("report.html"), e))?;
        Ok(manifest)
    }

    fn one(&self, item: &PlanItem) -> ItemResult {
        let account = match (&item.verdict, &item.account) {
            (Verdict::Convert, Some(a)) => a.clone(),
            (Verdict::NoAccount, _) | (Verdict::Convert, None) => {
                return ItemResult {
                    status: Status::NoAccount,
                    ..failed(
                        item,
                        "the file name names no account (it must start with the account name)"
                            .into(),
                    )
                }
            }
            (Verdict::Unreadable { reason }, _) => {
                return failed(item, format!("cannot read file: {reason}"))
            }
            (Verdict::Duplicate { others }, _) => {
                if let Some(a) = &item.account {
                    self.remove_stale(a);
                }
                let names: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
                return ItemResult {
                    status: Status::Duplicate,
                    duplicates: others.clone(),
                    ..failed(
                        item,
                        format!(
                            "{} files name account {}; none was converted (also: {})",
                            others.len() + 1,
                            item.account.as_deref().unwrap_or("?"),
                            names.join(", ")
                        ),
                    )
                };
            }
        };
        match self.convert_file(&item.path, &account) {
            Ok(r) => ItemResult {
                file: item.path.clone(),
                account: Some(account),
                ..r
            },
            Err(msg) => {
                self.remove_stale(&account);
                failed(item, msg)
            }
        }
    }

    fn convert_file(&self, path: &Path, account: &str) -> Result<ItemResult, String> {
        let limit = self.options.limits.max_input_bytes;
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read file: {e}"))?;
        if meta.len() > limit as u64 {
            let bytes = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            return Err(ImagingError::InputTooLarge { bytes, limit }.to_string());
        }
        let input = std::fs::read(path).map_err(|e| format!("cannot read file: {e}"))?;
        // The contact sheet draws the crop on a thumbnail of the whole source.
        let options = Options {
            thumbnail: true,
            ..self.options.clone()
        };
        let conv = photobulk_imaging::convert(&input, &options).map_err(|e| e.to_string())?;
        let thumbnail = match &conv.thumbnail {
            Some(t) => {
                let rel = format!("{THUMBS}/{account}.jpg");
                write_atomic(&self.out_dir.join(&rel), &t.jpeg).map_err(|e| e.to_string())?;
                Some(rel)
            }
            None => None,
        };
        let mut outputs = Vec::with_capacity(conv.outputs.len());
        for o in &conv.outputs {
            let rel = format!("{}/{}.jpg", o.target, account);
            write_atomic(&self.out_dir.join(&rel), &o.jpeg).map_err(|e| e.to_string())?;
            outputs.push(WrittenOutput {
                target: o.target.clone(),
                path: rel,
                width: o.width,
                height: o.height,
                bytes: o.bytes,
                quality: o.quality,
                sha256: o.sha256.clone(),
                crop: o.crop,
            });
        }
        Ok(ItemResult {
            file: path.to_path_buf(),
            account: Some(account.to_string()),
            status: Status::Ok,
            error: None,
            duplicates: Vec::new(),
            source: Some(conv.source),
            crop: conv.outputs.first().map(|o| o.crop),
            face: conv.face,
            thumbnail,
            outputs,
            warnings: conv.warnings,
        })
    }

    /// A file that failed this run must not leave an older run's output behind under
    /// its account: the folder always matches the manifest.
    fn remove_stale(&self, account: &str) {
        for t in &self.options.targets {
            let p = self.out_dir.join(&t.name).join(format!("{account}.jpg"));
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_file(self.out_dir.join(THUMBS).join(format!("{account}.jpg")));
    }
}

fn failed(item: &PlanItem, error: String) -> ItemResult {
    ItemResult {
        file: item.path.clone(),
        account: item.account.clone(),
        status: Status::Failed,
        error: Some(error),
        duplicates: Vec::new(),
        source: None,
        outputs: Vec::new(),
        warnings: Vec::new(),
        crop: None,
        face: None,
        thumbnail: None,
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(path, e)
    })
}
