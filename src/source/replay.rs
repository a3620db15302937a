//! The replay source: a directory or list of saved dumps, put in time order
//! and grouped by moment, for backfill, `swantrail replay` and tests.
//!
//! A dump's time comes from an epoch in its file name
//! (`status-1795857662.txt`, `trafficstatus-1795857662.txt`), else from its
//! modification time. Dumps whose names carry the same epoch are one moment
//! and are combined into one snapshot (`status` + `trafficstatus`, …). This
//! module only reads files: it never interprets what pluto said beyond
//! telling which command a dump came from, and never follows a directory
//! more than one level deep.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::input::InputError;
use crate::snapshot::{OutputKind, Snapshot};

/// The largest dump read by default: the `--max-bytes` default of every command.
pub const MAX_DUMP_BYTES: u64 = crate::input::DEFAULT_MAX_BYTES;

/// What can go wrong reading a replay; each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A path could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error (in the message, so not a separate cause).
        error: std::io::Error,
    },
    /// A dump is larger than the limit (`--max-bytes`, by default [`MAX_DUMP_BYTES`]).
    #[error("{cause}")]
    TooLarge {
        /// What the dump reader said, naming the file.
        cause: InputError,
    },
    /// A dump is binary or not UTF-8.
    #[error("{cause}")]
    NotText {
        /// What the dump reader said, naming the file.
        cause: InputError,
    },
    /// A dump could not be read (missing, a directory, no permission).
    #[error("{0}")]
    Unreadable(InputError),
    /// Nothing to replay.
    #[error("no dumps found in {0}")]
    Empty(String),
    /// A line of an auditd log claims to be a pluto record but is not one.
    #[error("{}:{line}: {cause}; fix or remove the line", path.display())]
    BadRecord {
        /// The auditd log.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// What the record reader said.
        cause: crate::linux_audit::record::RecordError,
    },
}

/// The lines of a saved pluto log, decoded, handed to the tracker as a
/// live daemon would have read them: every line logged before the end of
/// a snapshot's second before that snapshot is observed.
#[derive(Debug, Clone, Default)]
pub struct PlutoLogFeed {
    records: Vec<crate::pluto_log::PlutoLogRecord>,
    next: usize,
}

impl PlutoLogFeed {
    /// Read a pluto log (`logfile=`, or syslog's copy). Its `logtime`
    /// stamps carry no year and no zone: the year is the one nearest
    /// `reference_s` (the series' first dump), the zone UTC. Lines that say
    /// nothing about an SA are skipped; none is an error.
    pub fn read(path: &Path, reference_s: i64) -> Result<PlutoLogFeed, ReplayError> {
        let text = read_dump(path)?;
        let time = crate::pluto_log::LineTime::Stamped {
            reference_s,
            utc_offset_s: 0,
        };
        let records = text
            .lines()
            .filter_map(|line| crate::pluto_log::decode(line, time))
            .collect();
        Ok(PlutoLogFeed { records, next: 0 })
    }

    /// The lines not handed out yet that were logged before the end of
    /// second `taken_at` (in the order pluto wrote them).
    pub fn until(&mut self, taken_at: i64) -> &[crate::pluto_log::PlutoLogRecord] {
        self.before_us(taken_at.saturating_add(1).saturating_mul(1_000_000))
    }

    /// The lines not handed out yet that were logged before `end_us`
    /// (microseconds since the epoch): what a reader had taken in at a
    /// moment inside a second, such as a daemon's SIGTERM.
    pub fn before_us(&mut self, end: i64) -> &[crate::pluto_log::PlutoLogRecord] {
        let start = self.next;
        while self.records.get(self.next).is_some_and(|r| r.at_us < end) {
            self.next += 1;
        }
        &self.records[start..self.next]
    }
}

/// pluto's records from a saved auditd log, in time order, handed to the
/// tracker as a live daemon would have received them: every record before
/// the end of a snapshot's second before that snapshot is observed.
#[derive(Debug, Clone, Default)]
pub struct AuditFeed {
    records: Vec<crate::linux_audit::record::PlutoRecord>,
    next: usize,
}

impl AuditFeed {
    /// Read an auditd log (raw or enriched; other programs' lines are
    /// skipped). A broken pluto record stops the replay with its line
    /// number rather than replaying a history with a hole in it.
    pub fn read(path: &Path) -> Result<AuditFeed, ReplayError> {
        let text = read_dump(path)?;
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match crate::linux_audit::record::from_auditd_line(line) {
                Ok(Some(r)) => records.push(r),
                Ok(None) => {}
                Err(cause) => {
                    return Err(ReplayError::BadRecord {
                        path: path.to_path_buf(),
                        line: i + 1,
                        cause,
                    });
                }
            }
        }
        records.sort_by_key(|r| (r.unix_ms, r.seq));
        Ok(AuditFeed { records, next: 0 })
    }

    /// The records not handed out yet that were written before the end of
    /// second `taken_at`.
    pub fn until(&mut self, taken_at: i64) -> &[crate::linux_audit::record::PlutoRecord] {
        let end = taken_at.saturating_add(1).saturating_mul(1000);
        let start = self.next;
        while self.records.get(self.next).is_some_and(|r| r.unix_ms < end) {
            self.next += 1;
        }
        &self.records[start..self.next]
    }

    /// Keep only the records of pluto `pid`, as the daemon keeps only those
    /// of the pid in its `pid_file`.
    pub fn keep_pid(&mut self, pid: u32) {
        self.records.retain(|r| r.pid == Some(pid));
        self.next = self.next.min(self.records.len());
    }

    /// How many pluto records the log holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the log holds no pluto record at all.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// One moment of a replay: the dumps taken then, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStep {
    /// Unix seconds: the epoch in the file names, else the mtime.
    pub taken_at: i64,
    /// The dumps of this moment, in name order.
    pub files: Vec<PathBuf>,
}

/// Put `inputs` (files, or directories whose regular, non-hidden files are
/// all dumps) in time order and group the dumps of one moment.
///
/// Files whose names carry an epoch are grouped by it. Files timed by
/// their mtime are each a step of their own (equal mtimes are common after
/// a copy, and must not merge unrelated dumps); ties are broken by natural
/// name order, so `x__2` comes before `x__10`.
pub fn plan(inputs: &[PathBuf]) -> Result<Vec<ReplayStep>, ReplayError> {
    let mut files: Vec<(i64, bool, PathBuf)> = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(|error| ReplayError::Io {
            path: input.clone(),
            error,
        })?;
        if meta.is_dir() {
            let entries = fs::read_dir(input).map_err(|error| ReplayError::Io {
                path: input.clone(),
                error,
            })?;
            for entry in entries {
                let entry = entry.map_err(|error| ReplayError::Io {
                    path: input.clone(),
                    error,
                })?;
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && path.is_file() {
                    files.push(timed(path)?);
                }
            }
        } else {
            files.push(timed(input.clone())?);
        }
    }
    if files.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(ReplayError::Empty(names.join(", ")));
    }
    files.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| natural_cmp(&name_of(&a.2), &name_of(&b.2)))
    });
    files.dedup_by(|a, b| a.2 == b.2);
    let mut steps: Vec<ReplayStep> = Vec::new();
    let mut last_named: Option<i64> = None;
    for (t, named, path) in files {
        match steps.last_mut() {
            Some(step) if named && last_named == Some(t) => step.files.push(path),
            _ => steps.push(ReplayStep {
                taken_at: t,
                files: vec![path],
            }),
        }
        last_named = named.then_some(t);
    }
    Ok(steps)
}

/// Read one dump as text: at most [`MAX_DUMP_BYTES`], UTF-8, no NUL bytes.
pub fn read_dump(path: &Path) -> Result<String, ReplayError> {
    read_dump_within(path, MAX_DUMP_BYTES)
}

/// Read one dump as text with the reader and messages of `parse`.
pub fn read_dump_within(path: &Path, max_bytes: u64) -> Result<String, ReplayError> {
    crate::input::read_file(path, max_bytes).map_err(replay_error)
}

/// The replay error of a dump that could not be read.
fn replay_error(cause: InputError) -> ReplayError {
    match cause {
        InputError::TooLarge { .. } => ReplayError::TooLarge { cause },
        InputError::Binary { .. } | InputError::NotUtf8 { .. } => ReplayError::NotText { cause },
        other => ReplayError::Unreadable(other),
    }
}

/// Read, parse and combine the dumps of one step into one snapshot taken
/// at the step's time.
///
/// A dump the parser could not attribute to a command (an empty
/// `trafficstatus-<epoch>.txt` means "no tunnels", not "nothing known") is
/// attributed by its file name's first word.
pub fn load_step(step: &ReplayStep) -> Result<Snapshot, ReplayError> {
    load_step_within(step, MAX_DUMP_BYTES)
}

/// [`load_step`] with dumps of at most `max_bytes` (`--max-bytes`).
pub fn load_step_within(step: &ReplayStep, max_bytes: u64) -> Result<Snapshot, ReplayError> {
    let mut combined: Option<Snapshot> = None;
    for path in &step.files {
        let snap = crate::input::parse_file(path, max_bytes, kind_from_name(path))
            .map_err(replay_error)?;
        match combined.as_mut() {
            None => combined = Some(snap),
            Some(c) => c.merge(snap),
        }
    }
    let mut snap = combined.unwrap_or_default();
    snap.taken_at = Some(step.taken_at);
    Ok(snap)
}

/// The status command a dump's file name starts with (`trafficstatus-…`).
pub fn kind_from_name(path: &Path) -> Option<OutputKind> {
    let name = name_of(path);
    let word: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    OutputKind::from_word(&word)
}

/// The epoch in a file name: a run of 9 to 12 digits (1973 to 33658).
pub fn epoch_in_name(path: &Path) -> Option<i64> {
    let name = name_of(path);
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|run| (9..=12).contains(&run.len()))
        .find_map(|run| run.parse().ok())
}

fn timed(path: PathBuf) -> Result<(i64, bool, PathBuf), ReplayError> {
    let (t, named) = dump_time(&path)?;
    Ok((t, named, path))
}

/// When a dump was taken: the epoch in its name (`true`), else its mtime
/// in whole seconds (`false`).
pub fn dump_time(path: &Path) -> Result<(i64, bool), ReplayError> {
    if let Some(t) = epoch_in_name(path) {
        return Ok((t, true));
    }
    let meta = fs::metadata(path).map_err(|error| ReplayError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok((mtime, false))
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Compare names with digit runs compared as numbers (`a2` < `a10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let n = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_read_from_status_and_trafficstatus_names() {
        assert_eq!(
            epoch_in_name(Path::new("/x/status-1795857662.txt")),
            Some(1795857662)
        );
        assert_eq!(
            epoch_in_name(Path::new("trafficstatus-1795857667.txt")),
            Some(1795857667)
        );
        assert_eq!(epoch_in_name(Path::new("certoe-17-x__road__2.txt")), None);
    }

    #[test]
    fn natural_order_puts_2_before_10() {
        assert_eq!(natural_cmp("x__2.txt", "x__10.txt"), Ordering::Less);
        assert_eq!(natural_cmp("x__10.txt", "x__9.txt"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
    }

    #[test]
    fn kind_comes_from_the_first_word_of_the_name() {
        assert_eq!(
            kind_from_name(Path::new("trafficstatus-1.txt")),
            Some(OutputKind::TrafficStatus)
        );
        assert_eq!(
            kind_from_name(Path::new("status-1.txt")),
            Some(OutputKind::Status)
        );
        assert_eq!(kind_from_name(Path::new("notes.txt")), None);
    }
}
