//! The file sink: NDJSON appended to a file, with size-based rotation and
//! reopen on SIGHUP so that logrotate works either way.
//!
//! A batch counts as delivered once it is written and fdatasync'ed to the
//! file the configured path still names: before each write the path's
//! device and inode are compared with the open file's, and a file (or
//! directory) removed or replaced behind our back is recreated, so nothing
//! acknowledged lands in an unreachable inode. A failed write is cut back
//! to where it started, and a torn last line left by a crash is cut on
//! open, so a retry never glues a whole line onto half a one. The file is created with mode 0640 (its
//! directory with 0750) because events name users and peers. This sink must
//! never truncate or delete the current file except by the rotation the
//! operator configured.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::{
    Batch, Encoding, RetrySettings, SendError, Sink, SinkError, SinkHeader, SinkKind,
    SpoolSettings, WithSink,
};
use crate::toml_config::{ByteSize, ConfigError, MIB, Validator, read_table};

/// The file sink's settings: `type = "file"` in a `[[sink]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSinkConfig {
    /// Unique sink name (default: `file`).
    pub name: String,
    /// The NDJSON file; created with mode 0640 (and its directory with 0750).
    pub path: PathBuf,
    /// Rotate before a write would make the file larger than this; 0 = never (leave it to logrotate).
    pub rotate_bytes: u64,
    /// How many rotated files (`path.1` .. `path.N`) to keep.
    pub rotate_keep: u32,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
    /// What the payload says of each event: ECS as spooled, or OCSF.
    pub encoding: Encoding,
}

/// The file sink's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSink {
    path: Option<Spanned<PathBuf>>,
    rotate_bytes: Option<Spanned<ByteSize>>,
    rotate_keep: Option<Spanned<u32>>,
}

impl FileSinkConfig {
    /// A file sink on `path` with every other setting at its default.
    pub fn new(path: PathBuf) -> FileSinkConfig {
        FileSinkConfig {
            name: "file".to_string(),
            path,
            rotate_bytes: 100 * MIB,
            rotate_keep: 5,
            spool: SpoolSettings::default(),
            retry: RetrySettings::default(),
            encoding: Encoding::default(),
        }
    }
}

/// `type = "file"`: its keys beyond the common header, read here.
impl SinkKind for FileSinkConfig {
    const TYPE_NAME: &'static str = "file";
    const CONFIG_KEYS: &'static [&'static str] = &["path", "rotate_bytes", "rotate_keep"];

    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<FileSinkConfig, ConfigError> {
        let raw: RawFileSink = read_table(reader, own)?;
        let Some(path) = raw.path else {
            return reader.error(
                header.span,
                "a `file` [[sink]] needs `path`, the NDJSON file to write".into(),
            );
        };
        let d = FileSinkConfig::new(path.into_inner());
        Ok(FileSinkConfig {
            name: header.name,
            rotate_bytes: raw
                .rotate_bytes
                .map_or(d.rotate_bytes, |v| v.into_inner().0),
            rotate_keep: raw.rotate_keep.map_or(d.rotate_keep, Spanned::into_inner),
            path: d.path,
            spool: header.spool,
            retry: header.retry,
            encoding: header.encoding,
        })
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (&self.name, &self.spool, &self.retry)
    }

    fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        let sink = FileSink::new(self.path.clone(), self.rotate_bytes, self.rotate_keep);
        Ok(with.with(&self.name, &self.spool, &self.retry, sink))
    }
}

/// Appends batches to one NDJSON file.
pub struct FileSink {
    writer: Arc<Mutex<Writer>>,
}

/// The blocking half: runs on a blocking thread.
struct Writer {
    path: PathBuf,
    rotate_bytes: u64,
    rotate_keep: u32,
    file: Option<File>,
}

impl FileSink {
    /// A sink writing to `path`, rotating before a write would pass
    /// `rotate_bytes` (0 = never) and keeping `rotate_keep` old files
    /// (`path.1` is the newest). Nothing is opened until the first batch.
    pub fn new(path: PathBuf, rotate_bytes: u64, rotate_keep: u32) -> FileSink {
        FileSink {
            writer: Arc::new(Mutex::new(Writer {
                path,
                rotate_bytes,
                rotate_keep,
                file: None,
            })),
        }
    }
}

impl Sink for FileSink {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let writer = Arc::clone(&self.writer);
        let ndjson = batch.shared();
        tokio::task::spawn_blocking(move || {
            let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
            writer.write(ndjson.as_bytes())
        })
        .await
        .map_err(|e| SendError::Retryable(format!("file writer task failed: {e}")))?
    }

    fn reopen(&mut self) -> Result<(), SendError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.file = None;
        let path = writer.path.clone();
        writer.file = Some(open(&path).map_err(|e| cannot(&path, "open", e))?);
        Ok(())
    }
}

fn cannot(path: &Path, what: &str, e: io::Error) -> SendError {
    SendError::Retryable(format!("cannot {what} {}: {e}", path.display()))
}

/// Open (creating it and its directory) the file at `path`, and make it
/// end at a line boundary: a SIGKILL in the middle of a large write leaves
/// half a line that was never acknowledged, and the resent batch must not
/// be glued to it.
fn open(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)?;
    let cut = cut_torn_tail(&file)?;
    if cut > 0 {
        tracing::warn!(path = %path.display(), cut_bytes = cut,
            "file sink: cut a torn last line of {cut} bytes from {} (a write interrupted by a crash; its batch is sent again)",
            path.display());
    }
    Ok(file)
}

/// Truncate what follows the file's last newline; returns how many bytes went.
fn cut_torn_tail(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let piece = &mut chunk[..(end - start) as usize];
        file.read_exact_at(piece, start)?;
        if let Some(i) = piece.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(len - end)
}

/// Whether `path` still names the open file: `rm` of the file (or of its
/// directory) leaves us writing to an inode no one can reach, so a batch
/// written there must not count as delivered.
fn still_named(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

impl Writer {
    fn write(&mut self, data: &[u8]) -> Result<(), SendError> {
        let path = self.path.clone();
        let mut file = match self.file.take() {
            Some(file) if still_named(&path, &file) => file,
            Some(_) => {
                tracing::warn!(path = %path.display(),
                    "file sink: {} was removed or replaced; writing to a new file there",
                    path.display());
                open(&path).map_err(|e| cannot(&path, "open", e))?
            }
            None => open(&path).map_err(|e| cannot(&path, "open", e))?,
        };
        // Asked of the file each time: copytruncate may have emptied it.
        let size = file.metadata().map_err(|e| cannot(&path, "stat", e))?.len();
        if self.rotate_bytes > 0 && size > 0 && size + data.len() as u64 > self.rotate_bytes {
            drop(file);
            self.rotate().map_err(|e| cannot(&path, "rotate", e))?;
            return self.write(data);
        }
        if let Err(e) = file.write_all(data).and_then(|()| file.sync_data()) {
            // Best effort: the retry writes the batch again from this point.
            let _ = file.set_len(size);
            return Err(cannot(&path, "write", e));
        }
        self.file = Some(file);
        Ok(())
    }

    /// `path.N-1` → `path.N`, …, `path` → `path.1`; the oldest beyond `rotate_keep` goes.
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if self.rotate_keep == 0 {
            return fs::remove_file(&self.path);
        }
        for n in (1..self.rotate_keep).rev() {
            match fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, numbered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn batch(range: std::ops::Range<u32>) -> Batch {
        Batch::from_ndjson(
            range
                .map(|i| format!("{{\"n\":{i}}}\n"))
                .collect::<String>(),
        )
    }

    #[tokio::test]
    async fn new_file_is_created_with_mode_0640_and_gets_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log").join("events.ndjson");
        let mut sink = FileSink::new(path.clone(), 0, 3);
        sink.send(&batch(0..2)).await.unwrap();
        sink.send(&batch(2..3)).await.unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[tokio::test]
    async fn rotation_keeps_the_configured_number_of_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        // Each event is 8 bytes: two fit under 20 bytes, a third rotates.
        let mut sink = FileSink::new(path.clone(), 20, 2);
        for i in 0..9 {
            sink.send(&batch(i..i + 1)).await.unwrap();
        }
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "{\"n\":8}\n");
        assert_eq!(
            read(&dir.path().join("events.ndjson.1")),
            "{\"n\":6}\n{\"n\":7}\n"
        );
        assert_eq!(
            read(&dir.path().join("events.ndjson.2")),
            "{\"n\":4}\n{\"n\":5}\n"
        );
        assert!(!dir.path().join("events.ndjson.3").exists());
    }

    #[tokio::test]
    async fn reopen_after_logrotate_moved_the_file_writes_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let moved = dir.path().join("events.ndjson-20250101");
        let mut sink = FileSink::new(path.clone(), 0, 0);
        sink.send(&batch(0..1)).await.unwrap();
        fs::rename(&path, &moved).unwrap();
        sink.reopen().unwrap();
        assert!(path.exists(), "reopen creates the file at once");
        sink.send(&batch(1..2)).await.unwrap();
        assert_eq!(fs::read_to_string(&moved).unwrap(), "{\"n\":0}\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":1}\n");
    }

    #[tokio::test]
    async fn a_removed_file_and_directory_are_recreated_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log").join("events.ndjson");
        let mut sink = FileSink::new(path.clone(), 0, 0);
        sink.send(&batch(0..1)).await.unwrap();
        fs::remove_dir_all(dir.path().join("log")).unwrap();
        sink.send(&batch(1..2)).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":1}\n");
        fs::remove_file(&path).unwrap();
        sink.send(&batch(2..3)).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
    }

    #[tokio::test]
    async fn a_torn_last_line_left_by_a_crash_is_cut_before_the_resent_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let torn = format!("{{\"n\":0}}\n{{\"n\":1,\"pad\":\"{}", "x".repeat(20_000));
        fs::write(&path, torn).unwrap();
        let mut sink = FileSink::new(path.clone(), 0, 0);
        sink.send(&batch(1..3)).await.unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
        );
        fs::write(&path, "no newline at all").unwrap();
        let mut sink = FileSink::new(path.clone(), 0, 0);
        sink.send(&batch(3..4)).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":3}\n");
    }

    #[tokio::test]
    async fn copytruncate_is_noticed_and_rotation_counts_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let mut sink = FileSink::new(path.clone(), 20, 1);
        sink.send(&batch(0..2)).await.unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        sink.send(&batch(2..4)).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":2}\n{\"n\":3}\n");
        assert!(!dir.path().join("events.ndjson.1").exists());
    }

    #[tokio::test]
    async fn unwritable_directory_is_a_retryable_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "").unwrap();
        let path = blocker.join("events.ndjson");
        let mut sink = FileSink::new(path.clone(), 0, 0);
        match sink.send(&batch(0..1)).await {
            Err(SendError::Retryable(m)) => assert!(m.contains("not-a-dir"), "{m}"),
            other => panic!("expected a retryable error, got {other:?}"),
        }
    }
}
