//! Following auditd's log (`/var/log/audit/audit.log`) as it grows and rotates.
//!
//! Where no process may hold `CAP_AUDIT_READ` but auditd runs, its log is
//! the record stream. auditd appends whole lines and rotates by renaming
//! (`audit.log` to `audit.log.1`) and starting a new file. The follower
//! reads only complete lines, keeps a partial last line for the next read,
//! and on rotation first drains the renamed file through the handle it
//! still holds, then opens the new one from its start: no line is lost or
//! read twice across a rotation. It polls (a `stat` and a read every
//! interval) rather than using inotify, because the file's directory is
//! often unreadable to the daemon while the file itself is readable
//! through a group, and a quarter of a second is far inside what the
//! events need.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The longest line kept: auditd's own limit (MAX_AUDIT_MESSAGE_LENGTH) is
/// 8970 bytes; a longer "line" is not auditd's and is skipped.
const MAX_LINE: usize = 64 * 1024;

/// A follower of one auditd log file.
pub struct Follower {
    path: PathBuf,
    file: Option<(File, u64)>,
    partial: Vec<u8>,
    /// Lines skipped because they were longer than any auditd writes.
    pub oversized: u64,
}

impl Follower {
    /// Starts following `path` from its current end (`from_start` false: the
    /// records already there were written before the daemon started and are
    /// not its to report) or from its beginning. A file that does not exist
    /// yet is waited for.
    pub fn open(path: &Path, from_start: bool) -> io::Result<Follower> {
        let mut follower = Follower {
            path: path.to_path_buf(),
            file: None,
            partial: Vec::new(),
            oversized: 0,
        };
        match File::open(path) {
            Ok(mut file) => {
                let inode = file.metadata()?.ino();
                if !from_start {
                    file.seek(SeekFrom::End(0))?;
                }
                follower.file = Some((file, inode));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(follower)
    }

    /// The complete lines appended since the last call, in order, rotation
    /// included. Errors are the file's (permission, I/O); the follower can
    /// be called again after one.
    pub fn read_lines(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        if self.file.is_some() {
            self.drain(&mut lines)?;
        }
        // Rotated (another inode at the path) or truncated: the old handle
        // has been drained, the new file is read from its start.
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let reopen = match (&mut self.file, &current) {
            (None, Some(_)) => true,
            (Some((file, inode)), Some(meta)) => {
                let position = file.stream_position()?;
                meta.ino() != *inode || meta.len() < position
            }
            (_, None) => false,
        };
        if reopen {
            let file = File::open(&self.path)?;
            let inode = file.metadata()?.ino();
            // A partial line of the old file can never be completed.
            self.partial.clear();
            self.file = Some((file, inode));
            self.drain(&mut lines)?;
        }
        Ok(lines)
    }

    fn drain(&mut self, lines: &mut Vec<String>) -> io::Result<()> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        let mut rest = &chunk[..];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            if self.partial.len() > MAX_LINE {
                self.oversized += 1;
            } else {
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            }
            self.partial.clear();
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE {
            // Keep only enough to know it is oversized when it ends.
            self.partial.truncate(MAX_LINE + 1);
        }
        Ok(())
    }
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
    fn complete_lines_once_across_a_rotation_and_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        append(&log, "old\n");
        let mut follower = Follower::open(&log, false).unwrap();
        assert!(
            follower.read_lines().unwrap().is_empty(),
            "what was there before is not ours"
        );
        append(&log, "a\nb");
        assert_eq!(follower.read_lines().unwrap(), ["a"]);
        append(&log, "\nc\n");
        // auditd rotates: the old file is renamed after its last lines.
        append(&log, "d\n");
        std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
        append(&log, "e\n");
        assert_eq!(follower.read_lines().unwrap(), ["b", "c", "d", "e"]);
        append(&log, "f\n");
        assert_eq!(follower.read_lines().unwrap(), ["f"]);
    }

    #[test]
    fn a_missing_file_is_waited_for_and_a_truncated_one_reread() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let mut follower = Follower::open(&log, false).unwrap();
        assert!(follower.read_lines().unwrap().is_empty());
        append(&log, "first\nsecond\n");
        assert_eq!(follower.read_lines().unwrap(), ["first", "second"]);
        std::fs::write(&log, "x\n").unwrap();
        assert_eq!(follower.read_lines().unwrap(), ["x"]);
    }

    #[test]
    fn an_oversized_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(&log, "").unwrap();
        let mut follower = Follower::open(&log, true).unwrap();
        append(&log, &"z".repeat(MAX_LINE + 10));
        assert!(follower.read_lines().unwrap().is_empty());
        append(&log, "\nok\n");
        assert_eq!(follower.read_lines().unwrap(), ["ok"]);
        assert_eq!(follower.oversized, 1);
    }
}
