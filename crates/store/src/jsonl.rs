//! JSON-lines files written for durability: one record a line, each append fsync'd before the
//! caller acts on it; a crash can tear only the last line, which readers skip.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StoreError;

/// Every record of `path`, oldest first. A missing file is empty; a torn final line (crash
/// mid-append) is ignored; any other line that is not a `T` is [`StoreError::BadLine`].
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, StoreError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(path)(e)),
    };
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(StoreError::io(path))?;
    let last = lines.len();
    let mut out = Vec::with_capacity(last);
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(r) => out.push(r),
            Err(_) if n + 1 == last => {} // torn final append
            Err(e) => {
                return Err(StoreError::BadLine {
                    path: path.to_path_buf(),
                    line: n + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Append `record` as one line to `file` (opened for appending; `path` names it in errors) and
/// fsync it. The caller serialises appends to one file.
pub fn append_synced<T: Serialize>(
    file: &mut File,
    path: &Path,
    record: &T,
) -> Result<(), StoreError> {
    let mut line = serde_json::to_string(record)
        .map_err(|e| StoreError::io(path)(std::io::Error::other(e)))?;
    line.push('\n');
    file.write_all(line.as_bytes())
        .map_err(StoreError::io(path))?;
    file.sync_data().map_err(StoreError::io(path))
}

/// Open `path` for appending, creating it (and its folder's entry, fsync'd) when missing.
pub fn open_append(path: &Path) -> Result<File, StoreError> {
    let existed = path.exists();
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(StoreError::io(path))?;
    if !existed {
        f.sync_all().map_err(StoreError::io(path))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
    }
    Ok(f)
}

/// fsync a folder, so a file created in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_read_back_and_torn_lines() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("j.jsonl");
        assert!(read_jsonl::<u32>(&path).expect("missing").is_empty());
        let mut f = open_append(&path).expect("open");
        for n in [1u32, 2, 3] {
            append_synced(&mut f, &path, &n).expect("append");
        }
        assert_eq!(read_jsonl::<u32>(&path).expect("read"), vec![1, 2, 3]);
        f.write_all(b"{\"torn").expect("write");
        assert_eq!(read_jsonl::<u32>(&path).expect("torn").len(), 3);
        f.write_all(b"\n4\n").expect("write");
        assert!(matches!(
            read_jsonl::<u32>(&path),
            Err(StoreError::BadLine { line: 4, .. })
        ));
    }
}
