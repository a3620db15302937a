//! The dead-letter file of a sink: what a destination refused for good, one
//! record per line, kept until `swantrail redeliver` sends it again.
//!
//! A record is `{"sink":..,"reason":..,"rejected_at":..,"event":<the event
//! line as it was spooled>}`, so the event can be sent again byte for byte,
//! with its `event.id`. The drain appends records while `redeliver` may be
//! taking the file aside to send it again: both hold an exclusive `flock`
//! on the file, and an appender that finds the path moved on while it waited
//! opens it again, so no record lands in a file already read. This module
//! must never lose a record: a file taken aside is removed only by its
//! reader, once every record is delivered or written elsewhere.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The longest record read back. swantrail's events are a few kilobytes; a
/// longer line is not one it wrote, and reading it must not take unbounded
/// memory.
pub const MAX_RECORD_BYTES: u64 = 8 << 20;

/// What a file taken aside to be sent again is called: the original name
/// with this appended, in the same directory.
pub const ASIDE_SUFFIX: &str = ".redelivering";

/// Where the dead letters of sink `name` go.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("dead-letter").join(format!("{name}.ndjson"))
}

/// One record, newline included: `event` is a spooled event line (one JSON
/// object, no newline), `reason` what the destination answered.
pub fn record(sink: &str, reason: &str, rejected_at: &str, event: &str) -> String {
    format!(
        "{{\"sink\":{},\"reason\":{},\"rejected_at\":{},\"event\":{event}}}\n",
        serde_json::Value::from(sink),
        serde_json::Value::from(reason),
        serde_json::Value::from(rejected_at),
    )
}

/// The time now, as records write it.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Append `records` (whole lines) to the dead-letter file at `path` and
/// fsync it, creating it (0640, in a 0750 directory) if need be. Blocks
/// while `redeliver` holds the file.
pub fn append(path: &Path, records: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    }
    loop {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)?;
        lock(&file)?;
        // Taken aside while we waited for the lock: append to the new file.
        let opened = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == opened.dev() && now.ino() == opened.ino() => {}
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        file.write_all(records.as_bytes())?;
        return file.sync_data();
    }
}

/// An exclusive `flock`, released when the file is closed.
fn lock(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor `file` owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Why a dead-letter file cannot be read or taken aside.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The file could not be opened, read, locked or renamed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What failed (in the message, so not a separate cause).
        error: io::Error,
    },
    /// A line is not a record as the drain writes them.
    #[error("{}:{line}: not a dead-letter record ({what}); nothing was sent and the file is unchanged: fix or remove that line", path.display())]
    NotARecord {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        what: String,
    },
    /// An earlier `redeliver` stopped before it was done with its file.
    #[error("{} exists: an earlier redeliver of {} stopped before it was done; redeliver that file first, with the same --config and --sink (what it delivered already is sent again, with the same event.id)", aside.display(), file.display())]
    Interrupted {
        /// The file given.
        file: PathBuf,
        /// The file the earlier run took aside.
        aside: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DeadLetterError + '_ {
    move |error| DeadLetterError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Take the dead-letter file at `file` aside (rename it to
/// `<file>.redelivering`), once all of it reads as records, so that the
/// drain starts a new one and the records can be sent again. A file whose
/// name already ends in the suffix (an interrupted run) is used as it is.
/// Returns the path of the file to read.
pub fn take_aside(file: &Path) -> Result<PathBuf, DeadLetterError> {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    if name.ends_with(ASIDE_SUFFIX) {
        check(&File::open(file).map_err(io_error(file))?, file)?;
        return Ok(file.to_path_buf());
    }
    let aside = file.with_file_name(format!("{name}{ASIDE_SUFFIX}"));
    if aside.exists() {
        return Err(DeadLetterError::Interrupted {
            file: file.to_path_buf(),
            aside,
        });
    }
    let held = File::open(file).map_err(io_error(file))?;
    lock(&held).map_err(io_error(file))?;
    check(&held, file)?;
    std::fs::rename(file, &aside).map_err(io_error(file))?;
    if let Some(dir) = aside.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok(aside)
}

/// Every line of the file is a record.
fn check(file: &File, path: &Path) -> Result<(), DeadLetterError> {
    let mut records = Records::new(file, path);
    while records.next_record()?.is_some() {}
    Ok(())
}

/// A record read back: the whole line (without its newline) and where the
/// event is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    line: String,
    event: std::ops::Range<usize>,
}

impl Record {
    /// The event line, byte for byte as it was spooled.
    pub fn event(&self) -> &str {
        &self.line[self.event.clone()]
    }

    /// The whole record, without its newline (to keep it as it is).
    pub fn line(&self) -> &str {
        &self.line
    }

    fn parse(line: String) -> Result<Record, String> {
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            #[serde(borrow)]
            event: &'a serde_json::value::RawValue,
        }
        let wire: Wire<'_> = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        let event = wire.event.get();
        if !event.starts_with('{') {
            return Err("its \"event\" is not a JSON object".into());
        }
        // The raw value is a slice of `line`.
        let start = event.as_ptr() as usize - line.as_ptr() as usize;
        let event = start..start + event.len();
        Ok(Record { line, event })
    }
}

/// The records of a dead-letter file, one line at a time.
pub struct Records<'a, R> {
    reader: BufReader<R>,
    path: &'a Path,
    line: u64,
}

impl<'a, R: Read> Records<'a, R> {
    /// Records read from `reader`; `path` names it in errors.
    pub fn new(reader: R, path: &'a Path) -> Records<'a, R> {
        Records {
            reader: BufReader::new(reader),
            path,
            line: 0,
        }
    }

    /// The next record, or `None` at the end; an empty line is skipped.
    pub fn next_record(&mut self) -> Result<Option<Record>, DeadLetterError> {
        loop {
            let mut bytes = Vec::new();
            let read = (&mut self.reader)
                .take(MAX_RECORD_BYTES + 1)
                .read_until(b'\n', &mut bytes)
                .map_err(io_error(self.path))?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let not_a_record = |what: String| DeadLetterError::NotARecord {
                path: self.path.to_path_buf(),
                line: self.line,
                what,
            };
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
            } else if bytes.len() as u64 > MAX_RECORD_BYTES {
                return Err(not_a_record(format!(
                    "longer than {MAX_RECORD_BYTES} bytes"
                )));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = String::from_utf8(bytes).map_err(|_| not_a_record("not UTF-8".into()))?;
            return Record::parse(line).map(Some).map_err(not_a_record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_back_its_event_byte_for_byte() {
        let event = r#"{"event":{"id":"ab"},"z":1,"a":[1.50, "x\"y"]}"#;
        let line = record("http", "HTTP 422: \"no\"", "2026-11-28T09:25:00Z", event);
        let text = format!("{line}\n{line}");
        let mut records = Records::new(text.as_bytes(), Path::new("dl"));
        for _ in 0..2 {
            let r = records.next_record().unwrap().unwrap();
            assert_eq!(r.event(), event);
            assert_eq!(format!("{}\n", r.line()), line);
        }
        assert_eq!(records.next_record().unwrap(), None);
    }

    #[test]
    fn a_line_that_is_not_a_record_is_named_with_its_line_number() {
        let good = record("http", "x", "t", r#"{"a":1}"#);
        for (bad, what) in [
            ("{\"event\":[1]}\n", "not a JSON object"),
            ("{\"sink\":\"http\"}\n", "missing field `event`"),
            ("{\"event\":{\"a\":1}\n", "EOF"),
        ] {
            let text = format!("{good}{bad}");
            let mut records = Records::new(text.as_bytes(), Path::new("dl.ndjson"));
            assert!(records.next_record().unwrap().is_some());
            let error = records.next_record().unwrap_err().to_string();
            assert!(
                error.starts_with("dl.ndjson:2: not a dead-letter record"),
                "{error}"
            );
            assert!(error.contains(what), "{error}");
        }
    }
}
