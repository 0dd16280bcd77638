//! Turning the paths a user names into a list of work items, one per file, before any
//! pixel is touched: folders are scanned, each file gets its account, and two files
//! for one account are both marked so that neither silently wins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::naming::{account_from_file_name, account_key, has_image_extension};

/// One input file and what the planner decided about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    pub path: PathBuf,
    pub account: Option<String>,
    pub verdict: Verdict,
}

/// Whether a planned file will be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Convert it.
    Convert,
    /// The file name names no account.
    NoAccount,
    /// Another file names the same account (case-insensitively); the others' paths.
    Duplicate { others: Vec<PathBuf> },
    /// The path could not be read (missing, permission, not a file).
    Unreadable { reason: String },
}

/// The planned work, in a stable order (sorted by path within each named folder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    /// Files in scanned folders that were left out because they are not images by name
    /// (`Thumbs.db`, `desktop.ini`, `notes.txt`). Named files are never skipped.
    pub skipped: Vec<PathBuf>,
}

/// Options for [`plan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Descend into sub-folders of named folders.
    pub recurse: bool,
}

/// Build the plan for `inputs` (files and folders). Files named directly are always
/// attempted; inside folders only files with an image extension are taken, and hidden
/// files (starting with `.`) are ignored.
pub fn plan(inputs: &[PathBuf], opts: PlanOptions) -> Plan {
    let mut out = Plan::default();
    let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => scan_dir(input, opts.recurse, &mut files, &mut out),
            Ok(_) => files.push((input.clone(), None)),
            Err(e) => files.push((input.clone(), Some(e.to_string()))),
        }
    }
    // The same file named twice (e.g. folder and file) is one item.
    let mut seen = std::collections::HashSet::new();
    files.retain(|(p, _)| seen.insert(p.clone()));

    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (path, unreadable) in files {
        let account = account_from_file_name(&path);
        let verdict = match (&unreadable, &account) {
            (Some(reason), _) => Verdict::Unreadable {
                reason: reason.clone(),
            },
            (None, None) => Verdict::NoAccount,
            (None, Some(a)) => {
                by_key
                    .entry(account_key(a))
                    .or_default()
                    .push(out.items.len());
                Verdict::Convert
            }
        };
        out.items.push(PlanItem {
            path,
            account,
            verdict,
        });
    }
    for indices in by_key.values().filter(|v| v.len() > 1) {
        for &i in indices {
            let others = indices
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| out.items[j].path.clone())
                .collect();
            out.items[i].verdict = Verdict::Duplicate { others };
        }
    }
    out
}

fn scan_dir(dir: &Path, recurse: bool, files: &mut Vec<(PathBuf, Option<String>)>, out: &mut Plan) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            files.push((dir.to_path_buf(), Some(e.to_string())));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            if recurse {
                scan_dir(&p, recurse, files, out);
            }
        } else if has_image_extension(&p) {
            files.push((p, None));
        } else {
            out.skipped.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"x").expect("write");
        p
    }

    #[test]
    fn duplicates_are_all_marked_and_case_insensitive() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = touch(d.path(), "Bob.Jones a.jpg");
        let b = touch(d.path(), "bob.jones.png");
        let c = touch(d.path(), "John.Smith 648x648.jpg");
        touch(d.path(), "Thumbs.db");
        touch(d.path(), ".DS_Store");
        let p = plan(&[d.path().to_path_buf()], PlanOptions::default());
        assert_eq!(p.items.len(), 3);
        let find = |path: &Path| p.items.iter().find(|i| i.path == path).expect("item");
        assert_eq!(
            find(&a).verdict,
            Verdict::Duplicate {
                others: vec![b.clone()]
            }
        );
        assert_eq!(
            find(&b).verdict,
            Verdict::Duplicate {
                others: vec![a.clone()]
            }
        );
        assert_eq!(find(&c).verdict, Verdict::Convert);
        assert_eq!(find(&c).account.as_deref(), Some("John.Smith"));
        assert_eq!(p.skipped, vec![d.path().join("Thumbs.db")]);
    }

    #[test]
    fn named_files_are_always_taken_and_missing_ones_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let txt = touch(d.path(), "ann.lee.txt");
        let missing = d.path().join("nobody.jpg");
        let p = plan(
            &[txt.clone(), missing.clone(), txt.clone()],
            PlanOptions::default(),
        );
        assert_eq!(p.items.len(), 2, "the same file twice is one item");
        assert_eq!(p.items[0].verdict, Verdict::Convert);
        assert_eq!(p.items[0].account.as_deref(), Some("ann.lee.txt"));
        assert!(matches!(p.items[1].verdict, Verdict::Unreadable { .. }));
    }

    #[test]
    fn recursion_is_opt_in() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        touch(&d.path().join("sub"), "x.y.jpg");
        touch(d.path(), "a.b.jpg");
        assert_eq!(
            plan(&[d.path().to_path_buf()], PlanOptions::default())
                .items
                .len(),
            1
        );
        assert_eq!(
            plan(&[d.path().to_path_buf()], PlanOptions { recurse: true })
                .items
                .len(),
            2
        );
    }
}
