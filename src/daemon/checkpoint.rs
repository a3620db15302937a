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
//!
//! # The journal
//!
//! A 50,000-tunnel gateway's tracker is about 80 MB of JSON, and a poll at
//! 1 % churn changes a few hundred of its records. So a poll does not
//! rewrite the checkpoint file: [`Store::save`] appends one line to the
//! source's *journal* (`<name>.journal`) with what changed since the last
//! save ([`crate::track::journal`]: the tracker's head and the changed
//! records) and the checkpoint's own fields, and syncs it. Every save is
//! numbered; the checkpoint file says which save it holds (`save`). When
//! the journal has grown past the checkpoint file's size (and past
//! [`JOURNAL_MIN_BYTES`]), or the daemon stops, the whole state is
//! written as a new checkpoint file (atomically, as above) and the journal
//! is removed. Reading back ([`Store::load`]) takes the checkpoint file and
//! replays the journal's lines that come after its save, in order.
//!
//! A line cut short by a crash or a full disk is never followed by
//! another: a failed append is cut back to where it began, and if even
//! that fails the next save is a whole checkpoint file. A line that does
//! not read back ends the replay there (with one warning): what came
//! after it cannot be applied to what came before it.

use std::fs;
use std::io::{self, BufRead, Seek};
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
    /// The number of the last save this state comes from (see the journal,
    /// above); 0 in checkpoints of versions without a journal.
    #[serde(default)]
    pub save: u64,
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
            save: 0,
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

/// The journal beside a checkpoint file.
pub fn journal_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("journal")
}

/// The journal is folded into a whole checkpoint file once it is larger
/// than that file and than this: a small gateway's checkpoint is a few
/// kilobytes, and rewriting it at every second poll would be the cost the
/// journal is there to avoid. A big gateway's whole file (76 MB at 50,000
/// tunnels) costs about half a second to write; past its size, a journal
/// of 2-3 MB lines folds into it every thirty polls or so, and a restart
/// replays at most that much.
pub const JOURNAL_MIN_BYTES: u64 = 1024 * 1024;

/// A delta of at most this many records is always a journal line (a few
/// MB at most); a bigger one only when it is under a quarter of the
/// tracker.
const WHOLE_AFTER_RECORDS: usize = 4096;

/// The checkpoint's own fields as a journal line repeats them.
#[derive(Serialize, Deserialize)]
struct Head {
    taken_at: Option<i64>,
    content_sha256: Option<String>,
    commit: u64,
}

/// One journal line, as written.
#[derive(Serialize)]
struct EntryOut<'a> {
    save: u64,
    source: &'a str,
    head: Head,
    delta: &'a serde_json::value::RawValue,
}

/// A journal line up to its delta: the line as [`EntryOut`] is written
/// with the delta left out, so that the delta (encoded already) and `}`
/// complete it byte for byte.
fn entry_head(save: u64, source: &str, head: Head) -> io::Result<Vec<u8>> {
    let placeholder =
        serde_json::value::RawValue::from_string("0".to_string()).map_err(io::Error::other)?;
    let entry = EntryOut {
        save,
        source,
        head,
        delta: &placeholder,
    };
    let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    // `..."delta":0}`: the placeholder and the closing brace go.
    if !line.ends_with(b"0}") {
        return Err(io::Error::other(
            "a journal line that does not end with its delta",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// One journal line, as read back.
#[derive(Deserialize)]
struct Entry {
    save: u64,
    source: String,
    head: Head,
    delta: Box<serde_json::value::RawValue>,
}

/// What a [`Store::save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// One line appended to the journal, with this many changed records.
    Delta(usize),
    /// A whole checkpoint file (the journal folded in and removed).
    Full,
}

/// One source's saved state: its checkpoint file, its journal, and what
/// they hold (record fingerprints), so that a save writes only what changed.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    source: String,
    saved: crate::track::journal::Saved,
    /// The number of the last save that reached the disk.
    save: u64,
    journal_bytes: u64,
    full_bytes: u64,
    /// Set when the journal may end in a torn line: the next save is whole.
    whole_next: bool,
}

impl Store {
    /// An empty store for `source` at `path` (nothing saved yet).
    pub fn new(path: &Path, source: &str) -> Store {
        Store {
            path: path.to_path_buf(),
            source: source.to_string(),
            saved: Default::default(),
            save: 0,
            journal_bytes: 0,
            full_bytes: 0,
            whole_next: true,
        }
    }

    /// Read a source's checkpoint file and replay its journal; `Ok(None)`
    /// (with an empty store) when there is none yet. A journal line that
    /// does not read back ends the replay; it is named in the returned
    /// warning.
    pub fn load(
        path: &Path,
        source: &str,
    ) -> Result<(Option<Checkpoint>, Store, Option<String>), CheckpointError> {
        let mut store = Store::new(path, source);
        let Some(mut checkpoint) = load(path, source)? else {
            return Ok((None, store, None));
        };
        store.full_bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        store.save = checkpoint.save;
        let journal = journal_path(path);
        let mut warning = None;
        if let Some(bytes) = read_if_there(&journal)? {
            let mut offset = 0;
            for line in bytes.split_inclusive(|b| *b == b'\n') {
                let at = offset;
                offset += line.len();
                let Some(line) = line.strip_suffix(b"\n") else {
                    // Torn by a crash: that save never happened.
                    break;
                };
                let applied = serde_json::from_slice::<Entry>(line)
                    .map_err(|e| e.to_string())
                    .and_then(|entry| {
                        if entry.source != source {
                            return Err(format!("a line of source {:?}", entry.source));
                        }
                        if entry.save <= store.save {
                            return Ok(()); // folded into the checkpoint file already
                        }
                        if entry.save != store.save + 1 {
                            return Err(format!("save {} follows save {}", entry.save, store.save));
                        }
                        checkpoint
                            .tracker
                            .apply_delta(entry.delta.get().as_bytes())
                            .map_err(|e| e.to_string())?;
                        checkpoint.taken_at = entry.head.taken_at;
                        checkpoint.content_sha256 = entry.head.content_sha256;
                        checkpoint.commit = entry.head.commit;
                        checkpoint.save = entry.save;
                        store.save = entry.save;
                        Ok(())
                    });
                if let Err(reason) = applied {
                    warning = Some(format!(
                        "journal {} unreadable at byte {at} ({reason}); resuming from save {}",
                        journal.display(),
                        store.save
                    ));
                    break;
                }
            }
            store.journal_bytes = bytes.len() as u64;
        }
        store.saved = crate::track::journal::Saved::of(&mut checkpoint.tracker);
        // A journal that ends early or badly is replaced by a whole file.
        store.whole_next = warning.is_some();
        Ok((Some(checkpoint), store, warning))
    }

    /// Save `checkpoint` (setting its `save` number): one journal line with
    /// what changed since the last save, or a whole checkpoint file when
    /// the journal has grown large (or `whole` asks for one). On failure
    /// nothing counts as saved, and the next save writes the change again.
    pub fn save(
        &mut self,
        checkpoint: &mut Checkpoint,
        whole: bool,
    ) -> Result<Saved, CheckpointError> {
        let large = self.journal_bytes > JOURNAL_MIN_BYTES.max(self.full_bytes);
        if whole || large || self.whole_next {
            self.save_whole(checkpoint)?;
            return Ok(Saved::Full);
        }
        let journal = journal_path(&self.path);
        let io = |error: io::Error| CheckpointError::Io {
            path: journal.clone(),
            error,
        };
        // More than a quarter of a big tracker's records changed (its first
        // poll, a pluto restart): saved whole, as it is written.
        let at_most = (checkpoint.tracker.records() / 4).max(WHOLE_AFTER_RECORDS);
        let delta = self
            .saved
            .delta_at_most(&mut checkpoint.tracker, at_most)
            .map_err(|e| io(io::Error::other(e)))?;
        let Some(mut delta) = delta else {
            self.save_whole(checkpoint)?;
            return Ok(Saved::Full);
        };
        let json = std::mem::take(&mut delta.json);
        let head = entry_head(
            self.save + 1,
            &self.source,
            Head {
                taken_at: checkpoint.taken_at,
                content_sha256: checkpoint.content_sha256.clone(),
                commit: checkpoint.commit,
            },
        )
        .map_err(io)?;
        // The line is written in its three pieces: a copy of a big delta
        // joined into one line was as big again.
        self.append(&[&head, &json, b"}\n"]).map_err(io)?;
        let line_len = head.len() + json.len() + 2;
        let records = delta.records;
        self.saved.accept(delta);
        self.save += 1;
        checkpoint.save = self.save;
        self.journal_bytes += line_len as u64;
        Ok(Saved::Delta(records))
    }

    /// Append one line to the journal and sync it; a failed append is cut
    /// back to where it began (or, failing that, the next save is whole).
    fn append(&mut self, line: &[&[u8]]) -> io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let path = journal_path(&self.path);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)?;
        let start = file.metadata()?.len();
        let written = line
            .iter()
            .try_for_each(|piece| file.write_all(piece))
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            if file.set_len(start).and_then(|()| file.sync_data()).is_err() {
                self.whole_next = true;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Write the whole state as the checkpoint file and remove the journal.
    fn save_whole(&mut self, checkpoint: &mut Checkpoint) -> Result<(), CheckpointError> {
        checkpoint.save = self.save + 1;
        let written = crate::atomic::replace_with(&self.path, |file| {
            serde_json::to_writer(file, &*checkpoint).map_err(io::Error::other)
        });
        if let Err(e) = written {
            checkpoint.save = self.save;
            return Err(CheckpointError::Io {
                path: self.path.clone(),
                error: e.error,
            });
        }
        self.save += 1;
        self.full_bytes = fs::metadata(&self.path).map_or(0, |m| m.len());
        self.whole_next = false;
        self.saved = crate::track::journal::Saved::of(&mut checkpoint.tracker);
        // Its lines are all folded in now. Left behind (it cannot be
        // removed), they are skipped at the next load, and new ones follow.
        if fs::remove_file(journal_path(&self.path)).is_ok() {
            self.journal_bytes = 0;
        }
        Ok(())
    }
}

/// The pending file beside a checkpoint file: the events of its last
/// commit, kept until every spool has them.
pub fn pending_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("pending")
}

/// The first line of a pending file.
#[derive(Serialize, Deserialize)]
struct PendingHeader {
    format: u32,
    source: String,
    commit: u64,
    events: usize,
}

/// The pending file of one commit being written, its events one at a time
/// as they are made: a gateway's whole inventory is never held as text.
/// Atomic and durable like the checkpoint: [`PendingWriter::finish`]
/// renames it into place; dropped unfinished, nothing replaced the file.
#[derive(Debug)]
pub struct PendingWriter {
    file: crate::atomic::Replacement,
    /// Where the header's event count starts (written last, in its padding).
    count_at: u64,
    count: usize,
    path: PathBuf,
}

/// Room for the header's event count: any `usize`, padded with spaces
/// (JSON whitespace), so that the count is written once the events are.
const COUNT_WIDTH: usize = 20;

fn io_error(path: &Path, e: crate::atomic::ReplaceError) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        error: e.error,
    }
}

impl PendingWriter {
    /// Begin the pending file of `source`'s commit `commit` at `path`.
    pub fn create(
        path: &Path,
        source: &str,
        commit: u64,
    ) -> Result<PendingWriter, CheckpointError> {
        let mut file = crate::atomic::Replacement::begin(path).map_err(|e| io_error(path, e))?;
        let header = serde_json::to_string(&PendingHeader {
            format: FORMAT,
            source: source.to_string(),
            commit,
            events: 0,
        })
        .map_err(|e| CheckpointError::Io {
            path: path.to_path_buf(),
            error: io::Error::other(e),
        })?;
        // `..."events":0}`: the count goes where the 0 is, padded.
        let prefix = header.strip_suffix("0}").unwrap_or(&header);
        let line = format!("{prefix}{:<COUNT_WIDTH$}}}\n", 0);
        file.write_all(line.as_bytes())
            .map_err(|e| io_error(path, e))?;
        Ok(PendingWriter {
            file,
            count_at: prefix.len() as u64,
            count: 0,
            path: path.to_path_buf(),
        })
    }

    /// Append one encoded event (a single line, without its newline).
    pub fn write_line(&mut self, line: &str) -> Result<(), CheckpointError> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(|e| io_error(&self.path, e))?;
        self.count += 1;
        Ok(())
    }

    /// How many events were written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Give up on this commit's file: the one in place (if any) stays.
    pub fn abandon(self) {
        self.file.abandon();
    }

    /// Write the count into the header and put the file in place,
    /// durably; returns the count.
    pub fn finish(mut self) -> Result<usize, CheckpointError> {
        let count = format!("{:<COUNT_WIDTH$}", self.count);
        self.file
            .rewrite_at(self.count_at, count.as_bytes())
            .map_err(|e| io_error(&self.path, e))?;
        let (path, count) = (self.path, self.count);
        self.file.finish().map_err(|e| io_error(&path, e))?;
        Ok(count)
    }
}

/// A pending file being read back in batches, so that spooling a big
/// commit holds one batch of it at a time.
#[derive(Debug)]
pub struct PendingReader {
    /// The checkpoint commit its events belong to.
    pub commit: u64,
    /// How many events it holds.
    pub events: usize,
    lines: io::Lines<io::BufReader<fs::File>>,
    read: usize,
    path: PathBuf,
}

/// Open a pending file; `Ok(None)` when there is none. A file that does not
/// hold as many whole lines as its header says is unreadable (it was
/// replaced atomically, so that is damage, not a crash): that is checked
/// here, in one pass that holds no line.
pub fn open_pending(path: &Path, source: &str) -> Result<Option<PendingReader>, CheckpointError> {
    let unreadable = |reason: String| CheckpointError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let failed = |error: io::Error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    // Count the newlines, and see that the file ends with one.
    let mut counting = io::BufReader::with_capacity(1 << 16, file);
    let (mut newlines, mut last) = (0usize, None);
    loop {
        let chunk = counting.fill_buf().map_err(failed)?;
        if chunk.is_empty() {
            break;
        }
        newlines += memchr::memchr_iter(b'\n', chunk).count();
        last = chunk.last().copied();
        let n = chunk.len();
        counting.consume(n);
    }
    let mut file = counting.into_inner();
    file.seek(io::SeekFrom::Start(0)).map_err(failed)?;
    let mut lines = io::BufReader::with_capacity(1 << 16, file).lines();
    let header = match lines.next() {
        Some(Ok(line)) => line,
        Some(Err(e)) => return Err(unreadable(e.to_string())),
        None => String::new(),
    };
    let header: PendingHeader =
        serde_json::from_str(&header).map_err(|e| unreadable(format!("header: {e}")))?;
    if header.format != FORMAT || header.source != source {
        return Err(unreadable(format!(
            "format {} of source {:?} where {FORMAT} of {source:?} was expected",
            header.format, header.source
        )));
    }
    let whole = newlines.saturating_sub(1);
    if whole != header.events || last != Some(b'\n') {
        return Err(unreadable(format!(
            "{whole} whole lines where the header says {}",
            header.events
        )));
    }
    Ok(Some(PendingReader {
        commit: header.commit,
        events: header.events,
        lines,
        read: 0,
        path: path.to_path_buf(),
    }))
}

impl PendingReader {
    /// The next lines, about `max_bytes` of them (at least one); empty once
    /// every line was read.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<String>, CheckpointError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes && self.read < self.events {
            match self.lines.next() {
                Some(Ok(line)) => {
                    bytes += line.len() + 1;
                    batch.push(line);
                    self.read += 1;
                }
                Some(Err(e)) => {
                    return Err(CheckpointError::Unreadable {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    });
                }
                None => break,
            }
        }
        Ok(batch)
    }

    /// Skip the first `n` lines (those an earlier try already spooled).
    pub fn skip(&mut self, n: usize) -> Result<(), CheckpointError> {
        while self.read < n.min(self.events) {
            self.next_batch(1)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Write the pending file of `source`'s commit `commit` from `lines`;
    /// returns how many there were.
    fn store_pending(
        path: &Path,
        source: &str,
        commit: u64,
        lines: impl Iterator<Item = String>,
    ) -> Result<usize, CheckpointError> {
        let mut writer = PendingWriter::create(path, source, commit)?;
        for line in lines {
            writer.write_line(&line)?;
        }
        writer.finish()
    }

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
        assert_eq!(
            store_pending(&path, "local", 7, lines.clone().into_iter()).unwrap(),
            2
        );
        let header = fs::read_to_string(&path).unwrap();
        let header = header.lines().next().unwrap();
        assert!(
            header.ends_with(r#""events":2                   }"#),
            "{header}"
        );
        let mut pending = open_pending(&path, "local").unwrap().unwrap();
        assert_eq!((pending.commit, pending.events), (7, 2));
        assert_eq!(pending.next_batch(1).unwrap(), lines[..1]);
        assert_eq!(pending.next_batch(1 << 20).unwrap(), lines[1..]);
        assert!(pending.next_batch(1 << 20).unwrap().is_empty());
        let mut again = open_pending(&path, "local").unwrap().unwrap();
        again.skip(1).unwrap();
        assert_eq!(again.next_batch(1 << 20).unwrap(), lines[1..]);
        assert!(
            open_pending(&path, "other").is_err(),
            "another source's file"
        );
        // A writer dropped unfinished replaced nothing.
        let mut unfinished = PendingWriter::create(&path, "local", 8).unwrap();
        unfinished.write_line("{}").unwrap();
        drop(unfinished);
        assert_eq!(open_pending(&path, "local").unwrap().unwrap().commit, 7);
        remove_pending(&path).unwrap();
        assert!(open_pending(&path, "local").unwrap().is_none());
        remove_pending(&path).unwrap();
    }

    #[test]
    fn a_pending_file_short_of_its_lines_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.pending");
        let lines = vec!["{}".to_string(), "{}".to_string()];
        store_pending(&path, "local", 1, lines.into_iter()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 1]).unwrap();
        assert!(open_pending(&path, "local").is_err());
        fs::write(&path, &text[..text.len() - 3]).unwrap();
        assert!(open_pending(&path, "local").is_err());
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

    /// A journal line written in pieces is the line `EntryOut` encodes
    /// whole, byte for byte, whatever the source's name holds.
    #[test]
    fn a_journal_line_in_pieces_is_the_line_encoded_whole() {
        for source in ["gw", "a \"quoted\" name}0", "naïve\u{1f}\n"] {
            let head = || Head {
                taken_at: Some(1_800_000_000),
                content_sha256: Some("ab".repeat(32)),
                commit: 7,
            };
            let delta = r#"{"head":{"x":[1,2]},"sas":[[3,null]]}"#;
            let raw = serde_json::value::RawValue::from_string(delta.to_string()).unwrap();
            let whole = serde_json::to_vec(&EntryOut {
                save: 12,
                source,
                head: head(),
                delta: &raw,
            })
            .unwrap();
            let mut pieces = entry_head(12, source, head()).unwrap();
            pieces.extend_from_slice(delta.as_bytes());
            pieces.push(b'}');
            assert_eq!(
                String::from_utf8(pieces).unwrap(),
                String::from_utf8(whole).unwrap(),
                "{source:?}"
            );
        }
    }

    /// A big gateway whose every tunnel carries traffic changes every
    /// Child SA's counters at every poll: those changes are journal lines,
    /// not a reason to save the whole tracker at every poll.
    #[cfg(feature = "synth")]
    #[test]
    fn byte_counters_of_every_tunnel_are_journal_lines_not_whole_saves() {
        use crate::synth::{Churn, Dialect, Output, Series};
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new(&dir.path().join("gw.json"), "gw");
        let mut checkpoint =
            Checkpoint::new("gw", Tracker::new(crate::track::TrackerConfig::new("gw")));
        let mut series = Series::new(6_000, Churn::even(0.01));
        let mut lines = Vec::new();
        for step in 0..4 {
            let gateway = series.gateway();
            let mut snap =
                crate::status::parse(&gateway.dump(Dialect::V5_4, Output::ShowStates).text);
            snap.merge(crate::status::parse(
                &gateway.dump(Dialect::V5_4, Output::TrafficStatus).text,
            ));
            snap.taken_at = Some(1_800_000_000 + 10 * step);
            checkpoint.taken_at = snap.taken_at;
            checkpoint.tracker.observe(&snap);
            lines.push(store.save(&mut checkpoint, false).unwrap());
            series.advance();
        }
        assert_eq!(lines[0], Saved::Full, "the inventory is saved whole");
        for (i, saved) in lines.iter().enumerate().skip(1) {
            let Saved::Delta(records) = saved else {
                panic!("save {i} was whole: {lines:?}");
            };
            // Every Child SA's counters, and the tunnels that churned.
            assert!(*records > 6_000, "save {i}: {records} records");
        }
    }

    /// The lab series through a tracker, saved after every snapshot; returns
    /// the store, the checkpoint and the JSON of every state saved.
    fn saved_series(dir: &Path) -> (Store, Checkpoint, Vec<String>) {
        let path = dir.join("lab.json");
        let mut store = Store::new(&path, "lab");
        let mut checkpoint = Checkpoint::new(
            "lab",
            Tracker::new(crate::track::TrackerConfig::new("west")),
        );
        let series = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab-4.10/series");
        let mut dumps: Vec<_> = fs::read_dir(series)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dumps.sort();
        let mut states = Vec::new();
        for (i, dump) in dumps.iter().enumerate().take(20) {
            let mut snap = crate::status::parse(&fs::read_to_string(dump).unwrap());
            snap.taken_at = Some(1_795_857_662 + 5 * i as i64);
            checkpoint.taken_at = snap.taken_at;
            checkpoint.tracker.observe(&snap);
            let saved = store.save(&mut checkpoint, false).unwrap();
            assert_eq!(saved == Saved::Full, i == 0, "save {i}: {saved:?}");
            states.push(serde_json::to_string(&checkpoint.tracker).unwrap());
        }
        (store, checkpoint, states)
    }

    /// The tracker as JSON, without the `last_seen` a journal leaves out,
    /// and with due times to the minute, as a journal compares them.
    fn comparable(json: &str) -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        if let Some(sas) = v["sas"].as_object_mut() {
            for sa in sas.values_mut() {
                sa["last_seen"] = serde_json::Value::Null;
                for due in ["expire_due_at", "replace_due_at", "rekey_due_at"] {
                    if let Some(d) = sa[due].as_i64() {
                        sa[due] = serde_json::Value::from(d.div_euclid(64));
                    }
                }
            }
        }
        v
    }

    #[test]
    fn a_journal_replays_to_the_state_last_saved_and_a_torn_line_is_no_save() {
        let dir = tempfile::tempdir().unwrap();
        let (store, checkpoint, states) = saved_series(dir.path());
        assert_eq!(store.save, 20);
        let journal = journal_path(&dir.path().join("lab.json"));
        assert!(
            journal.exists(),
            "19 saves after the first are journal lines"
        );
        let (loaded, again, warning) = Store::load(&dir.path().join("lab.json"), "lab").unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(warning, None);
        assert_eq!((loaded.save, again.save), (20, 20));
        assert_eq!(loaded.taken_at, checkpoint.taken_at);
        assert_eq!(
            comparable(&serde_json::to_string(&loaded.tracker).unwrap()),
            comparable(&states[19])
        );
        // Cut the last line short: the state of the save before it.
        let bytes = fs::read(&journal).unwrap();
        fs::write(&journal, &bytes[..bytes.len() - 10]).unwrap();
        let (loaded, _, warning) = Store::load(&dir.path().join("lab.json"), "lab").unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(
            warning, None,
            "a torn last line is a save that never happened"
        );
        assert_eq!(loaded.save, 19);
        assert_eq!(
            comparable(&serde_json::to_string(&loaded.tracker).unwrap()),
            comparable(&states[18])
        );
    }

    #[test]
    fn a_garbled_journal_line_ends_the_replay_there_with_one_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, states) = saved_series(dir.path());
        let journal = journal_path(&dir.path().join("lab.json"));
        let text = fs::read_to_string(&journal).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[5] = "{not json";
        fs::write(&journal, lines.join("\n") + "\n").unwrap();
        let (loaded, _, warning) = Store::load(&dir.path().join("lab.json"), "lab").unwrap();
        let loaded = loaded.unwrap();
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("lab.journal") && warning.contains("save 6"),
            "{warning}"
        );
        assert_eq!(loaded.save, 6);
        assert_eq!(
            comparable(&serde_json::to_string(&loaded.tracker).unwrap()),
            comparable(&states[5])
        );
    }

    #[test]
    fn a_whole_save_folds_the_journal_in_and_lines_left_behind_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.json");
        let (mut store, mut checkpoint, _) = saved_series(dir.path());
        let journal = journal_path(&path);
        let old_journal = fs::read(&journal).unwrap();
        assert_eq!(store.save(&mut checkpoint, true).unwrap(), Saved::Full);
        assert!(!journal.exists());
        assert_eq!(load(&path, "lab").unwrap().unwrap().save, 21);
        // A journal that could not be removed: its saves are in the file.
        fs::write(&journal, &old_journal).unwrap();
        let (loaded, _, warning) = Store::load(&path, "lab").unwrap();
        assert_eq!((loaded.unwrap().save, warning), (21, None));
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
