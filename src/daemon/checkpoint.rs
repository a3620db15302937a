//! The tracker checkpoint: what a source's tracker knew after the last
//! snapshot whose events it handed out, and those events until every spool
//! has them.
//!
//! One JSON file per source under `<state_dir>/checkpoint/`, replaced by an
//! atomic rename ([`crate::atomic::replace`]: write a temporary file, fsync
//! it, rename it over the old one, fsync the directory), so that after a
//! crash the file is either the old checkpoint or the new one, never a mix.
//!
//! A snapshot that makes events is committed in three steps: its events go
//! to the source's *pending* file (`<name>.pending`, also replaced
//! atomically, numbered with the commit it belongs to), then the
//! checkpoint that counts that commit is written, then the events are
//! appended to every spool and the pending file is removed. A crash (or a
//! full disk) before the checkpoint is written leaves the old checkpoint,
//! and nothing of the snapshot reached a spool: the next start computes its
//! events afresh. After it, the next start finds a pending file with the
//! checkpoint's commit number and spools exactly those lines again, never
//! recomputing them: an `event.id` and an `event.sequence` name one content
//! forever, whatever the disk did. A pending file of another number is
//! left over from a commit that never happened and is ignored.
//!
//! It must never write a checkpoint whose events are in no pending file and
//! not yet in every spool: then a crash could lose them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::track::Tracker;

/// The version of the checkpoint file's layout; a file of another version
/// is set aside and the tracker starts afresh.
const FORMAT: u32 = 1;

/// Everything one source needs to resume where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// The source's name, to catch a file copied to the wrong place.
    pub source: String,
    /// The `taken_at` of the last snapshot fed to the tracker.
    pub taken_at: Option<i64>,
    /// The digest of the text of that snapshot, so that a file source does
    /// not feed the same dump again after a restart.
    pub content_sha256: Option<String>,
    /// How many snapshots with events this source has committed; a
    /// pending file with the same number holds the events of the last one
    /// until every spool has them. Absent (0) in checkpoints of versions
    /// that had no pending file.
    #[serde(default)]
    pub commit: u64,
    /// The tracker itself.
    pub tracker: Tracker,
}

impl Checkpoint {
    /// A checkpoint of `tracker` for `source`.
    pub fn new(source: &str, tracker: Tracker) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            source: source.to_string(),
            taken_at: None,
            content_sha256: None,
            commit: 0,
            tracker,
        }
    }
}

/// Why a checkpoint file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {error}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What the system said (in the message, so not a separate cause).
        error: io::Error,
    },
    /// The file is not a checkpoint this version can read.
    #[error("checkpoint {path} is unreadable ({reason})")]
    Unreadable {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The checkpoint file of a source: its name, with anything that is not
/// safe in a file name replaced by `_`.
pub fn path_for(directory: &Path, source: &str) -> PathBuf {
    let safe: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    directory.join(format!("{}.json", safe.trim_start_matches('.')))
}

/// The bytes of a state file; `Ok(None)` when there is none.
fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(CheckpointError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Read a checkpoint; `Ok(None)` when there is none yet.
pub fn load(path: &Path, source: &str) -> Result<Option<Checkpoint>, CheckpointError> {
    let Some(bytes) = read_if_there(path)? else {
        return Ok(None);
    };
    let unreadable = |reason: String| CheckpointError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let checkpoint: Checkpoint =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if checkpoint.format != FORMAT {
        return Err(unreadable(format!(
            "format {} where {FORMAT} was expected",
            checkpoint.format
        )));
    }
    if checkpoint.source != source {
        return Err(unreadable(format!(
            "it belongs to source {:?}, not {source:?}",
            checkpoint.source
        )));
    }
    Ok(Some(checkpoint))
}

/// The SHA-256 of a checkpoint's JSON, to tell whether it changed.
pub type Digest = [u8; 32];

/// Replace the checkpoint file atomically and durably unless its JSON has
/// the digest `previous` (the last one written): returns the new digest and
/// whether the file was replaced. The JSON is streamed into the file and
/// hashed on the way; at 50,000 tunnels it is about 80 MB, which neither a
/// buffer of it nor a copy of the last one kept for comparing adds to the
/// daemon's memory, and it is encoded once per poll, not twice.
pub fn store_if_changed(
    path: &Path,
    checkpoint: &Checkpoint,
    previous: Option<Digest>,
) -> Result<(Digest, bool), CheckpointError> {
    use sha2::Digest as _;
    let mut digest = None;
    let replaced = crate::atomic::replace_with_if(path, |file| {
        let mut hashing = Hashing {
            inner: file,
            hash: sha2::Sha256::new(),
        };
        serde_json::to_writer(&mut hashing, checkpoint).map_err(std::io::Error::other)?;
        let d: Digest = hashing.hash.finalize().into();
        digest = Some(d);
        Ok(previous != Some(d))
    })
    .map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        error: e.error,
    })?;
    Ok((digest.unwrap_or_default(), replaced))
}

/// The pending file beside a checkpoint file: the events of its last
/// commit, kept until every spool has them.
pub fn pending_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("pending")
}

/// The events of one commit that may not be in every spool yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The checkpoint commit they belong to.
    pub commit: u64,
    /// The encoded events, one JSON object each, exactly as first spooled.
    pub lines: Vec<String>,
}

/// The first line of a pending file.
#[derive(Serialize, Deserialize)]
struct PendingHeader {
    format: u32,
    source: String,
    commit: u64,
    events: usize,
}

/// Write the pending file of `source`'s commit `commit` atomically and
/// durably: a header line, then the events, one per line.
pub fn store_pending(
    path: &Path,
    source: &str,
    commit: u64,
    lines: &[String],
) -> Result<(), CheckpointError> {
    let header = PendingHeader {
        format: FORMAT,
        source: source.to_string(),
        commit,
        events: lines.len(),
    };
    crate::atomic::replace_with(path, |file| {
        serde_json::to_writer(&mut *file, &header).map_err(std::io::Error::other)?;
        file.write_all(b"\n")?;
        for line in lines {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        error: e.error,
    })
}

/// Read a pending file; `Ok(None)` when there is none. A file that does
/// not hold as many whole lines as its header says is unreadable (it was
/// replaced atomically, so that is damage, not a crash).
pub fn load_pending(path: &Path, source: &str) -> Result<Option<Pending>, CheckpointError> {
    let Some(text) = read_if_there(path)? else {
        return Ok(None);
    };
    let unreadable = |reason: String| CheckpointError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let text = String::from_utf8(text).map_err(|e| unreadable(e.to_string()))?;
    let mut lines = text.split_terminator('\n');
    let header: PendingHeader = serde_json::from_str(lines.next().unwrap_or_default())
        .map_err(|e| unreadable(format!("header: {e}")))?;
    if header.format != FORMAT || header.source != source {
        return Err(unreadable(format!(
            "format {} of source {:?} where {FORMAT} of {source:?} was expected",
            header.format, header.source
        )));
    }
    let lines: Vec<String> = lines.map(str::to_string).collect();
    if lines.len() != header.events || !text.ends_with('\n') {
        return Err(unreadable(format!(
            "{} whole lines where the header says {}",
            lines.len(),
            header.events
        )));
    }
    Ok(Some(Pending {
        commit: header.commit,
        lines,
    }))
}

/// Remove a pending file whose events every spool has; a missing one is
/// fine.
pub fn remove_pending(path: &Path) -> Result<(), CheckpointError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(CheckpointError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// A writer that hashes what it passes on.
struct Hashing<'a> {
    inner: &'a mut dyn std::io::Write,
    hash: sha2::Sha256,
}

impl std::io::Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.json");
        crate::atomic::replace(&path, b"a long first version").unwrap();
        crate::atomic::replace(&path, b"short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("local.json")]);
    }

    #[test]
    fn a_checkpoint_is_readable_by_its_owner_and_group_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.json");
        crate::atomic::replace(&path, b"{}").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn source_names_become_safe_file_names() {
        let dir = Path::new("/state/checkpoint");
        assert_eq!(path_for(dir, "local"), dir.join("local.json"));
        assert_eq!(path_for(dir, "../etc/x y"), dir.join("_etc_x_y.json"));
    }

    #[test]
    fn a_missing_checkpoint_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&dir.path().join("none.json"), "none").unwrap();
        assert!(loaded.is_none());
    }

    #[test]
    fn a_pending_file_reads_back_the_lines_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = pending_path(&dir.path().join("local.json"));
        assert_eq!(path, dir.path().join("local.pending"));
        let lines = vec![r#"{"a":1}"#.to_string(), r#"{"b":"x\ny"}"#.to_string()];
        store_pending(&path, "local", 7, &lines).unwrap();
        let pending = load_pending(&path, "local").unwrap().unwrap();
        assert_eq!(pending, Pending { commit: 7, lines });
        assert!(
            load_pending(&path, "other").is_err(),
            "another source's file"
        );
        remove_pending(&path).unwrap();
        assert!(load_pending(&path, "local").unwrap().is_none());
        remove_pending(&path).unwrap();
    }

    #[test]
    fn a_pending_file_short_of_its_lines_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.pending");
        let lines = vec!["{}".to_string(), "{}".to_string()];
        store_pending(&path, "local", 1, &lines).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 1]).unwrap();
        assert!(load_pending(&path, "local").is_err());
        fs::write(&path, &text[..text.len() - 3]).unwrap();
        assert!(load_pending(&path, "local").is_err());
    }

    #[test]
    fn a_checkpoint_without_a_commit_number_loads_as_commit_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.json");
        let tracker = Tracker::new(crate::track::TrackerConfig::new("gw"));
        let mut json = serde_json::to_value(Checkpoint::new("local", tracker)).unwrap();
        json.as_object_mut().unwrap().remove("commit");
        fs::write(&path, json.to_string()).unwrap();
        assert_eq!(load(&path, "local").unwrap().unwrap().commit, 0);
    }

    #[test]
    fn a_garbled_checkpoint_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.json");
        fs::write(&path, b"{not json").unwrap();
        let err = load(&path, "local").unwrap_err();
        assert!(err.to_string().contains("local.json"), "{err}");
    }
}
