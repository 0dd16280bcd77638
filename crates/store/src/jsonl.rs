//! JSON-lines files written for durability: one record a line, each append fsync'd before the
//! caller acts on it; a crash can tear only the last line, which readers skip.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// An append-only JSON-lines log (a journal): opened once, appended from many tasks, each line
/// fsync'd before [`JsonlLog::append`] returns.
#[derive(Debug)]
pub struct JsonlLog {
    path: PathBuf,
    /// Opened (and the file and its folder created) by the first append.
    file: Mutex<Option<File>>,
}

impl JsonlLog {
    /// Open the log at `path` and return what it already holds, oldest first (a missing file
    /// holds nothing). The file and its folder are created by the first append, not here, so
    /// a plan that only reads leaves nothing behind. A torn last line from a crash is cut
    /// off, so the next append starts a clean line.
    pub fn open<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<(Self, Vec<T>), StoreError> {
        let path = path.as_ref().to_path_buf();
        let entries = read_jsonl(&path)?;
        if let Ok(bytes) = std::fs::read(&path) {
            if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(StoreError::io(&path))?;
                f.set_len(keep as u64).map_err(StoreError::io(&path))?;
                f.sync_all().map_err(StoreError::io(&path))?;
            }
        }
        Ok((
            JsonlLog {
                path,
                file: Mutex::new(None),
            },
            entries,
        ))
    }

    /// A handle on `path` that neither reads nor touches the file (readers that load the lines
    /// themselves, read-only journals); it is created only by a first [`JsonlLog::append`].
    pub fn detached(path: impl AsRef<Path>) -> Self {
        JsonlLog {
            path: path.as_ref().to_path_buf(),
            file: Mutex::new(None),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `record` as one line and fsync it.
    pub fn append<T: Serialize>(&self, record: &T) -> Result<(), StoreError> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let file = match &mut *f {
            Some(file) => file,
            slot @ None => {
                if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
                }
                slot.insert(open_append(&self.path)?)
            }
        };
        append_synced(file, &self.path, record)
    }

    /// Every record in the file now, oldest first.
    pub fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        read_jsonl(&self.path)
    }
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

    #[test]
    fn log_cuts_a_torn_tail_and_appends_on_a_clean_line() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub/log.jsonl");
        let (log, old) = JsonlLog::open::<u32>(&path).expect("open");
        assert!(old.is_empty());
        assert!(
            !path.exists() && !tmp.path().join("sub").exists(),
            "open creates nothing"
        );
        log.append(&1u32).expect("append");
        log.append(&2u32).expect("append");
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).expect("f");
        f.write_all(b"{\"torn").expect("write");
        drop(f);
        let (log, old) = JsonlLog::open::<u32>(&path).expect("reopen");
        assert_eq!(old, vec![1, 2]);
        log.append(&3u32).expect("append");
        assert_eq!(log.read::<u32>().expect("read"), vec![1, 2, 3]);
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "1\n2\n3\n");
    }
}
