//! What an import reads: folders of photos named after accounts, and CSV files with
//! `Identity,Path` columns; plus the user export (`--users`) that gives DNs to an offline LDIF.
//!
//! # Photo CSV (`Identity,Path`)
//! A header row, then one row per photo. Column names are case-insensitive and the usual
//! PowerShell property names are accepted as aliases, so `Import-Csv | Export-Csv` round trips
//! and hand-made files both work:
//! - identity: `Identity`, `SamAccountName`, `UserPrincipalName`, `Mail`, `Account`, `User`
//! - path: `Path`, `FullName`, `File`, `Photo`
//!
//! The identity column's name says how the row is matched when it names an attribute:
//! `SamAccountName`, `UserPrincipalName` or `Mail` rows are looked up by that
//! attribute whatever `--by` says (an export from `Get-ADUser` means what its header says);
//! `Identity`, `Account` and `User` rows use `--by`.
//!
//! Relative paths are relative to the CSV file's folder. A UTF-8 BOM and Windows PowerShell's
//! `#TYPE ...` first line are skipped. Fields may be quoted (RFC 4180: `""` is a quote).
//!
//! # Two files for one account
//! The newest file (modification time; ties broken by path) wins, and both are reported: the
//! winner lists the others in `also`, each loser is [`Take::Superseded`] naming the winner.
//! Here "one account" means the same name looked up the same way; different names that turn
//! out to be the same directory user (a file named by sAMAccountName and a CSV row naming the
//! UPN) are merged the same way by the import once the users are found
//! ([`crate::import`], phase 2).

use photobulk_kind::ErrorKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use photobulk_directory::Lookup;

use crate::naming::account_key;
use crate::plan::{plan, PlanOptions, Verdict};
use crate::EngineError;

/// One photo the import will consider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// The account it names (file name up to the first space, or the CSV's Identity).
    pub account: Option<String>,
    pub take: Take,
    /// For the winner of several files for one account: the other files.
    pub also: Vec<PathBuf>,
    /// `file.csv:LINE` when the row came from a CSV.
    pub origin: Option<String>,
    /// How to find the user when the input says so (a CSV whose identity column is
    /// `SamAccountName`, `UserPrincipalName` or `Mail`); `None`: the job's `--by`.
    pub by: Option<Lookup>,
}

/// Whether the input will be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    Yes,
    /// The file name names no account (or the CSV row has no identity).
    NoAccount,
    /// The path cannot be read, or a CSV row is malformed.
    Unreadable {
        reason: String,
    },
    /// A newer file names the same account.
    Superseded {
        by: PathBuf,
    },
}

/// All inputs, in a stable order, and the non-image files skipped in scanned folders.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub items: Vec<Input>,
    pub skipped: Vec<PathBuf>,
}

impl Inputs {
    /// Items that will be used.
    pub fn taken(&self) -> usize {
        self.items.iter().filter(|i| i.take == Take::Yes).count()
    }
}

/// Collect `paths`: folders are scanned (file name = account), files ending in `.csv` are read
/// as `Identity,Path` lists, other files are taken as photos. Only a CSV that cannot be read at
/// all is an error; everything about a single photo is in its [`Input`].
pub fn collect(paths: &[PathBuf], recurse: bool) -> Result<Inputs, EngineError> {
    let mut out = Inputs::default();
    let (csvs, others): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| {
        p.is_file()
            && p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    });
    let p = plan(&others, PlanOptions { recurse });
    out.skipped = p.skipped;
    for item in p.items {
        let take = match item.verdict {
            Verdict::Convert | Verdict::Duplicate { .. } => Take::Yes,
            Verdict::NoAccount => Take::NoAccount,
            Verdict::Unreadable { reason } => Take::Unreadable { reason },
        };
        out.items.push(Input {
            path: item.path,
            account: item.account,
            take,
            also: Vec::new(),
            origin: None,
            by: None,
        });
    }
    for csv in csvs {
        read_photo_csv(&csv, &mut out.items)?;
    }
    newest_wins(&mut out.items);
    Ok(out)
}

fn read_photo_csv(csv: &Path, items: &mut Vec<Input>) -> Result<(), EngineError> {
    let text = std::fs::read_to_string(csv).map_err(|e| EngineError::io(csv, e))?;
    let rows = parse_csv(&text);
    let bad = |reason: String| EngineError::Csv {
        path: csv.to_path_buf(),
        reason,
    };
    let (header_line, header) = rows
        .first()
        .ok_or_else(|| bad("empty file: expected a header row Identity,Path".into()))?;
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let id_col = col(&[
        "Identity",
        "SamAccountName",
        "UserPrincipalName",
        "Mail",
        "Account",
        "User",
    ])
    .ok_or_else(|| {
        bad(format!(
            "line {header_line}: no Identity column (header: {})",
            header.join(",")
        ))
    })?;
    let path_col = col(&["Path", "FullName", "File", "Photo"]).ok_or_else(|| {
        bad(format!(
            "line {header_line}: no Path column (header: {})",
            header.join(",")
        ))
    })?;
    let by = match header[id_col].trim().to_ascii_lowercase().as_str() {
        "samaccountname" => Some(Lookup::SamAccountName),
        "userprincipalname" => Some(Lookup::UserPrincipalName),
        "mail" => Some(Lookup::Mail),
        _ => None,
    };
    let base = csv.parent().unwrap_or_else(|| Path::new("."));
    for (line, row) in rows.iter().skip(1) {
        if row.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let origin = Some(format!("{}:{line}", csv.display()));
        let identity = row
            .get(id_col)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let raw_path = row
            .get(path_col)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let path = if raw_path.is_empty() {
            PathBuf::new()
        } else {
            let p = PathBuf::from(&raw_path);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        };
        let take = if raw_path.is_empty() {
            Take::Unreadable {
                reason: format!("CSV line {line}: empty Path"),
            }
        } else if identity.is_empty() {
            Take::NoAccount
        } else {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Take::Yes,
                Ok(_) => Take::Unreadable {
                    reason: "not a file".into(),
                },
                Err(e) => Take::Unreadable {
                    reason: e.to_string(),
                },
            }
        };
        items.push(Input {
            path,
            account: (!identity.is_empty()).then_some(identity),
            take,
            also: Vec::new(),
            origin,
            by: by.clone(),
        });
    }
    Ok(())
}

/// Among inputs naming the same account (case-insensitively), keep the newest.
fn newest_wins(items: &mut [Input]) {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if let (Take::Yes, Some(a)) = (&it.take, &it.account) {
            let how = it.by.as_ref().map(Lookup::attribute).unwrap_or("");
            by_key
                .entry(format!("{how}:{}", account_key(a)))
                .or_default()
                .push(i);
        }
    }
    for idx in by_key.values().filter(|v| v.len() > 1) {
        let mtime = |i: usize| {
            std::fs::metadata(&items[i].path)
                .and_then(|m| m.modified())
                .ok()
        };
        let winner = *idx
            .iter()
            .max_by(|&&a, &&b| {
                mtime(a)
                    .cmp(&mtime(b))
                    .then_with(|| items[a].path.cmp(&items[b].path))
            })
            .unwrap_or(&idx[0]);
        let win_path = items[winner].path.clone();
        let others: Vec<PathBuf> = idx
            .iter()
            .filter(|&&i| i != winner)
            .map(|&i| items[i].path.clone())
            .collect();
        for &i in idx {
            if i == winner {
                items[i].also = others.clone();
            } else {
                items[i].take = Take::Superseded {
                    by: win_path.clone(),
                };
                items[i].also = vec![win_path.clone()];
            }
        }
    }
}

/// Parse CSV text into (1-based line number, fields) rows. RFC 4180 quoting; CRLF or LF; a
/// UTF-8 BOM and a leading `#TYPE` line (Windows PowerShell's Export-Csv) are skipped.
pub fn parse_csv(text: &str) -> Vec<(usize, Vec<String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1usize;
    let mut row_line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    if rows
        .first()
        .and_then(|(_, r)| r.first())
        .is_some_and(|f| f.starts_with("#TYPE"))
    {
        rows.remove(0);
    }
    rows
}

/// Users exported from the directory (`Get-ADUser -Filter * | Export-Csv`, `csvde -f`, or
/// `ldapsearch` turned into CSV): account → DN, for the offline LDIF.
///
/// The DN column is `DistinguishedName` or `DN`; the account column is whichever of
/// `SamAccountName`, `UserPrincipalName`, `Mail`, `EmployeeID` matches `by` (an attribute name,
/// case-insensitive). Keys are compared case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct UserExport {
    dns: HashMap<String, String>,
}

impl UserExport {
    /// Read the export; `by` is the attribute photo names are matched on (e.g. `sAMAccountName`).
    pub fn read(path: &Path, by: &str) -> Result<UserExport, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        let rows = parse_csv(&text);
        let bad = |reason: String| EngineError::Csv {
            path: path.to_path_buf(),
            reason,
        };
        let (_, header) = rows
            .first()
            .ok_or_else(|| bad("empty file: expected a header row".into()))?;
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let dn_col = col("DistinguishedName")
            .or_else(|| col("DN"))
            .ok_or_else(|| bad("no DistinguishedName (or DN) column".into()))?;
        let key_col =
            col(by).ok_or_else(|| bad(format!("no {by} column to match photo names on")))?;
        let mut dns = HashMap::new();
        for (_, row) in rows.iter().skip(1) {
            let (Some(dn), Some(key)) = (row.get(dn_col), row.get(key_col)) else {
                continue;
            };
            if dn.trim().is_empty() || key.trim().is_empty() {
                continue;
            }
            dns.insert(account_key(key.trim()), dn.trim().to_string());
        }
        Ok(UserExport { dns })
    }

    /// The DN of `account`, if the export has it.
    pub fn dn(&self, account: &str) -> Option<&str> {
        self.dns.get(&account_key(account)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.dns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dns.is_empty()
    }
}

/// Why an input is not taken, as every job reports it: `Some((action, error))` with the job's
/// own `skipped` action for `superseded` (a newer file names the same account) and its
/// `failed` action for `no_account` and `unreadable`; `None` for an input to be used. The
/// same words for every job.
pub fn refusal<A>(input: &Input, skipped: A, failed: A) -> Option<(A, crate::import::ItemError)> {
    let path = input.path.display();
    let (action, kind, message) = match &input.take {
        Take::Yes => return None,
        Take::NoAccount => (
            failed,
            ErrorKind::NoAccount,
            format!(
                "{path}: the file name names no account \
                 (expected 'account.jpg' or 'account anything.jpg')"
            ),
        ),
        Take::Unreadable { reason } => (failed, ErrorKind::Unreadable, format!("{path}: {reason}")),
        Take::Superseded { by } => (
            skipped,
            ErrorKind::Superseded,
            format!(
                "{path}: the newer {} names the same account (the newest file wins)",
                by.display()
            ),
        ),
    };
    Some((action, crate::import::ItemError::new(kind, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_bom_crlf_and_type_line() {
        let rows = parse_csv(
            "\u{feff}#TYPE Selected.X\r\nIdentity,Path\r\n\"a,b\",\"x \"\"y\"\".jpg\"\r\nc,d\n",
        );
        assert_eq!(
            rows,
            vec![
                (2, vec!["Identity".to_string(), "Path".to_string()]),
                (3, vec!["a,b".to_string(), "x \"y\".jpg".to_string()]),
                (4, vec!["c".to_string(), "d".to_string()]),
            ]
        );
    }

    #[test]
    fn csv_inputs_relative_paths_and_newest_wins() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("old.jpg"), b"x").expect("w");
        std::fs::write(d.path().join("new.jpg"), b"x").expect("w");
        // "Newest" by modification time, set here rather than waited for.
        std::fs::File::options()
            .write(true)
            .open(d.path().join("old.jpg"))
            .and_then(|f| {
                f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            })
            .expect("set mtime");
        std::fs::write(
            d.path().join("list.csv"),
            "SamAccountName,FullName\njohn.smith,old.jpg\nJOHN.SMITH,new.jpg\n,new.jpg\njane,missing.jpg\n",
        )
        .expect("w");
        let inputs = collect(&[d.path().join("list.csv")], false).expect("collect");
        assert_eq!(inputs.items.len(), 4);
        let old = &inputs.items[0];
        let new = &inputs.items[1];
        assert_eq!(
            old.take,
            Take::Superseded {
                by: d.path().join("new.jpg")
            }
        );
        assert_eq!(new.take, Take::Yes);
        assert_eq!(new.also, vec![d.path().join("old.jpg")]);
        assert_eq!(inputs.items[2].take, Take::NoAccount);
        assert!(matches!(inputs.items[3].take, Take::Unreadable { .. }));
        assert_eq!(inputs.taken(), 1);
    }

    #[test]
    fn user_export_maps_accounts_to_dns() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("users.csv");
        std::fs::write(
            &p,
            "\"DistinguishedName\",\"SamAccountName\"\n\"CN=Smith\\, John,OU=People,DC=x\",\"john.smith\"\n",
        )
        .expect("w");
        let u = UserExport::read(&p, "sAMAccountName").expect("read");
        assert_eq!(u.dn("John.Smith"), Some("CN=Smith\\, John,OU=People,DC=x"));
        assert_eq!(u.dn("nobody"), None);
        assert!(UserExport::read(&p, "mail").is_err());
    }
}
