//! Following a log file from a saved position, across rotation and a
//! restart: the reader of pluto's own log (`logfile=`).
//!
//! auditd's log is followed from "now" ([`crate::linux_audit::logfile`]);
//! pluto's must be followed from where the last run stopped, so this
//! follower says, after every line it hands out, where the next one starts
//! ([`Position`]: device, inode, byte offset and a fingerprint of the
//! file's first bytes), and opens a file at such a position again. Between
//! two reads it follows logrotate's two ways: `create` (the file renamed,
//! a new one at the path: the old handle is drained first, then the new
//! file is read from its start) and `copytruncate` (the same file cut to
//! nothing: read again from its start). A rotation while the daemon was
//! stopped is found by the position: another inode at the path sends it
//! looking for the old inode beside it, to finish that first; the same
//! inode with other first bytes, or shorter than the offset, was truncated.
//!
//! It reads only complete lines, a bounded chunk at a time, and cuts a line
//! longer than [`MAX_LINE`] (the rest of it is skipped, not held): its
//! memory is bounded whatever the file holds. It polls (a `stat` and a
//! read every interval) rather than using inotify, like the audit log's
//! follower, and for the same reason: a log directory is often unreadable
//! while the file is readable through a group. It must never hand out a
//! line twice or skip one it could have read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The longest line handed out whole; a longer one is cut here. pluto's
/// own lines stay under a kilobyte or two.
pub const MAX_LINE: usize = 16 * 1024;
/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;
/// How many first bytes of a file its fingerprint covers: enough to tell a
/// log that was truncated and written again (its first line has another
/// time stamp) from the one the position was taken in.
const HEAD: usize = 64;
/// Entries of a log's directory looked at for a file rotated while the
/// daemon was stopped.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Where the next unread line of a followed file starts, and enough to know
/// the file again: kept in the checkpoint as text ([`Position::encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The file's device.
    pub dev: u64,
    /// The file's inode.
    pub ino: u64,
    /// The byte offset of the next unread line.
    pub offset: u64,
    /// FNV-1a of the file's first `min(offset, 64)` bytes: the same inode
    /// truncated and written again has other first bytes.
    pub head: u64,
}

impl Position {
    /// `file:DEV:INO:OFFSET:HEAD` (HEAD in hex).
    pub fn encode(&self) -> String {
        format!(
            "file:{}:{}:{}:{:016x}",
            self.dev, self.ino, self.offset, self.head
        )
    }

    /// A position written by [`Position::encode`]; `None` for anything else
    /// (a journal cursor, a damaged value).
    pub fn decode(text: &str) -> Option<Position> {
        let mut parts = text.strip_prefix("file:")?.split(':');
        let position = Position {
            dev: parts.next()?.parse().ok()?,
            ino: parts.next()?.parse().ok()?,
            offset: parts.next()?.parse().ok()?,
            head: u64::from_str_radix(parts.next()?, 16).ok()?,
        };
        parts.next().is_none().then_some(position)
    }
}

/// FNV-1a, 64 bits: a fingerprint that stays the same across versions and
/// machines (the standard library's hashers promise neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What [`Follower::open`] found at the saved position, for the one line
/// the caller logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// No position: the file is read from its current end (or from its
    /// start once it appears).
    AtEnd,
    /// The same file, from the saved offset.
    Same,
    /// The file was rotated meanwhile; the old one (this path) is finished
    /// from the saved offset first.
    Rotated(PathBuf),
    /// The file was truncated or replaced and the old one is not beside it:
    /// the file at the path is read from its start.
    FromStart,
}

/// The file being read.
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes of the file consumed so far (the next read starts here).
    read_to: u64,
    /// The file's first bytes, up to [`HEAD`], as far as read.
    head: Vec<u8>,
}

impl Open {
    fn new(file: File, offset: u64) -> io::Result<Open> {
        let meta = file.metadata()?;
        let mut head = vec![0; HEAD.min(usize::try_from(offset).unwrap_or(HEAD))];
        let n = read_fully_at(&file, &mut head, 0)?;
        head.truncate(n);
        let mut open = Open {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            read_to: offset,
            head,
        };
        open.file.seek(SeekFrom::Start(offset))?;
        Ok(open)
    }

    /// Whether the file's first bytes are still those read: a file
    /// truncated and written again past the offset has others.
    fn head_unchanged(&self) -> io::Result<bool> {
        let mut now = vec![0; self.head.len()];
        let n = read_fully_at(&self.file, &mut now, 0)?;
        Ok(n == self.head.len() && now == self.head)
    }
}

/// `pread` until `buf` is full or the file ends; how many bytes were read.
fn read_fully_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A follower of one log file.
pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    /// The start of a line whose end is not written yet (bounded: a line
    /// past [`MAX_LINE`] keeps only its first bytes).
    partial: Vec<u8>,
    /// How many bytes of the file the unfinished line takes (more than
    /// `partial` holds when it is being cut).
    partial_bytes: u64,
    /// The line being read is past [`MAX_LINE`]: its rest is skipped.
    cutting: bool,
    /// Lines cut because they were longer than [`MAX_LINE`].
    pub cut_lines: u64,
    /// Unfinished last lines lost when their file was rotated or truncated.
    pub lost_partials: u64,
}

impl Follower {
    /// Start following `path`: from `position` when there is one (a
    /// restart), else from the file's current end (what was written before
    /// the source existed is not its to report); a file that does not
    /// exist yet is read from its start once it appears.
    pub fn open(path: &Path, position: Option<Position>) -> io::Result<(Follower, Resumed)> {
        let mut follower = Follower {
            path: path.to_path_buf(),
            open: None,
            partial: Vec::new(),
            partial_bytes: 0,
            cutting: false,
            cut_lines: 0,
            lost_partials: 0,
        };
        let current = match File::open(path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(saved) = position else {
            if let Some(file) = current {
                let end = file.metadata()?.len();
                follower.open = Some(Open::new(file, end)?);
            }
            return Ok((follower, Resumed::AtEnd));
        };
        if let Some(file) = current {
            let meta = file.metadata()?;
            if (meta.dev(), meta.ino()) == (saved.dev, saved.ino) {
                let open = Open::new(file, saved.offset)?;
                if meta.len() >= saved.offset && fnv1a(&open.head) == saved.head {
                    follower.open = Some(open);
                    return Ok((follower, Resumed::Same));
                }
                follower.open = Some(Open::new(open.file, 0)?);
                return Ok((follower, Resumed::FromStart));
            }
        }
        if let Some((old, file)) = find_inode(path, &saved) {
            let open = Open::new(file, saved.offset)?;
            if fnv1a(&open.head) == saved.head {
                follower.open = Some(open);
                return Ok((follower, Resumed::Rotated(old)));
            }
        }
        // The file at the path (if any) is read from its start.
        if let Ok(file) = File::open(path) {
            follower.open = Some(Open::new(file, 0)?);
        }
        Ok((follower, Resumed::FromStart))
    }

    /// Where the next line to hand out starts; `None` before any file was
    /// found.
    pub fn position(&self) -> Option<Position> {
        let open = self.open.as_ref()?;
        let offset = open.read_to - self.partial_bytes;
        let covered = open.head.len().min(usize::try_from(offset).unwrap_or(HEAD));
        Some(Position {
            dev: open.dev,
            ino: open.ino,
            offset,
            head: fnv1a(&open.head[..covered]),
        })
    }

    /// At most `max` complete lines written since the last call, in order,
    /// across a rotation or a truncation; fewer than `max` means the file
    /// has nothing more for now. Errors are the file's (permission, I/O);
    /// the follower can be called again after one.
    pub fn read_lines(&mut self, max: usize) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            if self.open.is_none() {
                match File::open(&self.path) {
                    Ok(file) => self.switch_to(file)?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(lines),
                    Err(e) => return Err(e),
                }
            }
            if let Some(open) = &self.open
                && open.read_to > 0
                && !open.head_unchanged()?
            {
                // Truncated and written again since the last read.
                let file = open.file.try_clone()?;
                self.switch_to(file)?;
            }
            if !self.drain(&mut lines, max)? {
                return Ok(lines);
            }
            // At the end of the file held: has the path moved on?
            let Some(open) = &self.open else {
                return Ok(lines);
            };
            let now = match std::fs::metadata(&self.path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(lines),
                Err(e) => return Err(e),
            };
            if (now.dev(), now.ino()) != (open.dev, open.ino) {
                // Rotated: the old file is drained; the new one from its start.
                let file = File::open(&self.path)?;
                self.switch_to(file)?;
            } else if now.len() < open.read_to {
                // copytruncate: the same file, cut.
                let file = open.file.try_clone()?;
                self.switch_to(file)?;
            } else {
                return Ok(lines);
            }
        }
    }

    /// Read `file` from its start from now on; an unfinished line of the
    /// file before can never be finished.
    fn switch_to(&mut self, file: File) -> io::Result<()> {
        if !self.partial.is_empty() || self.cutting {
            self.lost_partials += 1;
        }
        self.partial.clear();
        self.partial_bytes = 0;
        self.cutting = false;
        self.open = Some(Open::new(file, 0)?);
        Ok(())
    }

    /// Read the held file to its end or until `max` lines are out; `true`
    /// when its end was reached.
    fn drain(&mut self, lines: &mut Vec<String>, max: usize) -> io::Result<bool> {
        let Some(open) = &mut self.open else {
            return Ok(true);
        };
        let mut chunk = vec![0; CHUNK];
        while lines.len() < max {
            let n = match open.file.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let start = open.read_to;
            if open.head.len() < HEAD && open.head.len() as u64 == start {
                let want = (HEAD - open.head.len()).min(n);
                open.head.extend_from_slice(&chunk[..want]);
            }
            let mut rest = &chunk[..n];
            let mut at = start;
            while let Some(end) = memchr::memchr(b'\n', rest) {
                if lines.len() >= max {
                    break;
                }
                take(&mut self.partial, &mut self.cutting, &rest[..end]);
                if std::mem::take(&mut self.cutting) {
                    self.cut_lines += 1;
                }
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
                self.partial_bytes = 0;
                rest = &rest[end + 1..];
                at += end as u64 + 1;
            }
            if lines.len() >= max && !rest.is_empty() {
                // Give the unread rest back to the file: read next time.
                open.file.seek(SeekFrom::Start(at))?;
                open.read_to = at;
                return Ok(false);
            }
            take(&mut self.partial, &mut self.cutting, rest);
            self.partial_bytes += rest.len() as u64;
            open.read_to = start + n as u64;
        }
        Ok(false)
    }
}

/// Add `bytes` to the unfinished line, keeping at most [`MAX_LINE`] of it.
fn take(partial: &mut Vec<u8>, cutting: &mut bool, bytes: &[u8]) {
    let room = MAX_LINE.saturating_sub(partial.len());
    if bytes.len() > room {
        *cutting = true;
    }
    partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// The file beside `path` with the saved position's device and inode (the
/// log renamed by a rotation while the daemon was stopped), opened.
fn find_inode(path: &Path, saved: &Position) -> Option<(PathBuf, File)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in std::fs::read_dir(dir).ok()?.flatten().take(MAX_DIR_ENTRIES) {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && (meta.dev(), meta.ino()) == (saved.dev, saved.ino) {
            let file = File::open(entry.path()).ok()?;
            return Some((entry.path(), file));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_position_reads_back_as_written_and_nothing_else_does() {
        let p = Position {
            dev: 2049,
            ino: 1_234_567,
            offset: 88,
            head: 0xdead_beef,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("journal:s=abc"), None);
        assert_eq!(Position::decode("file:1:2:3"), None);
        assert_eq!(Position::decode("file:1:2:3:4:5"), None);
    }

    #[test]
    fn lines_resume_after_the_position_neither_repeated_nor_missed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pluto.log");
        append(&log, "before\n");
        let (mut f, resumed) = Follower::open(&log, None).unwrap();
        assert_eq!(resumed, Resumed::AtEnd);
        append(&log, "a\nb\npart");
        assert_eq!(f.read_lines(1).unwrap(), ["a"]);
        let after_a = f.position().unwrap();
        assert_eq!(f.read_lines(10).unwrap(), ["b"]);
        let after_b = f.position().unwrap();
        assert_eq!(after_b.offset, "before\na\nb\n".len() as u64);
        drop(f);
        append(&log, "ial\nc\n");
        let (mut again, resumed) = Follower::open(&log, Some(after_a)).unwrap();
        assert_eq!(resumed, Resumed::Same);
        assert_eq!(again.read_lines(10).unwrap(), ["b", "partial", "c"]);
        let (mut again, _) = Follower::open(&log, Some(after_b)).unwrap();
        assert_eq!(again.read_lines(10).unwrap(), ["partial", "c"]);
    }

    #[test]
    fn renamed_and_created_then_truncated_the_log_is_followed_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pluto.log");
        append(&log, "");
        let (mut f, _) = Follower::open(&log, None).unwrap();
        append(&log, "1\n2\n");
        std::fs::rename(&log, dir.path().join("pluto.log.1")).unwrap();
        append(&log, "3\n");
        assert_eq!(f.read_lines(100).unwrap(), ["1", "2", "3"]);
        // copytruncate: copied away, cut to nothing, written again.
        append(&log, "4\n");
        assert_eq!(f.read_lines(100).unwrap(), ["4"]);
        std::fs::write(&log, "").unwrap();
        append(&log, "5\n");
        assert_eq!(f.read_lines(100).unwrap(), ["5"]);
        // Cut and written past the old end before the next look.
        std::fs::write(&log, "6 a much longer line than before\n").unwrap();
        assert_eq!(
            f.read_lines(100).unwrap(),
            ["6 a much longer line than before"]
        );
    }

    #[test]
    fn a_rotation_while_stopped_finishes_the_old_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pluto.log");
        append(&log, "old first line of the log\n");
        let (mut f, _) = Follower::open(&log, None).unwrap();
        append(&log, "x\n");
        assert_eq!(f.read_lines(100).unwrap(), ["x"]);
        let saved = f.position().unwrap();
        drop(f);
        append(&log, "y\n");
        let rotated = dir.path().join("pluto.log-20261207");
        std::fs::rename(&log, &rotated).unwrap();
        append(&log, "z\n");
        let (mut f, resumed) = Follower::open(&log, Some(saved)).unwrap();
        assert_eq!(resumed, Resumed::Rotated(rotated));
        assert_eq!(f.read_lines(100).unwrap(), ["y", "z"]);
        // Truncated while stopped and written again: from the start.
        let saved = f.position().unwrap();
        drop(f);
        std::fs::write(&log, "new first line, other bytes\n").unwrap();
        let (mut f, resumed) = Follower::open(&log, Some(saved)).unwrap();
        assert_eq!(resumed, Resumed::FromStart);
        assert_eq!(f.read_lines(100).unwrap(), ["new first line, other bytes"]);
    }

    #[test]
    fn a_huge_line_is_cut_and_its_position_is_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pluto.log");
        append(&log, "");
        let (mut f, _) = Follower::open(&log, None).unwrap();
        append(&log, &"z".repeat(MAX_LINE * 5));
        assert!(f.read_lines(10).unwrap().is_empty());
        assert_eq!(f.position().unwrap().offset, 0, "the line is not over");
        append(&log, "\nok\n");
        let lines = f.read_lines(10).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "ok");
        assert_eq!(f.cut_lines, 1);
        assert_eq!(f.position().unwrap().offset, (MAX_LINE * 5 + 4) as u64);
    }
}
