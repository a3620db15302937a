//! Replacing a small file atomically and durably.
//!
//! The tracker checkpoint, and the spool's `acked` file when it is first
//! made (or converted from an older version's format), are rewritten whole
//! and must survive a crash as either the old or the new content, never a
//! mix: write `<file>.tmp` (mode 0640: both name peers and users,
//! like the events do), fsync it, rename it over the file, fsync the
//! directory so the rename itself is durable. One definition, so the two
//! cannot drift apart.

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How much of the content is buffered between writes to the file.
const WRITE_BUFFER: usize = 1 << 20;

/// Which step of a replacement failed, on which file, and the OS error, so
/// that each caller can word its message as it always has (the spool names
/// the step; the checkpoint only the file).
#[derive(Debug)]
pub struct ReplaceError {
    /// The file concerned: the temporary file for `create` and `write`, the
    /// target for `rename`, the directory for `fsync directory`.
    pub path: PathBuf,
    /// The step: `"create"`, `"write"`, `"rename"` or `"fsync directory"`.
    pub action: &'static str,
    /// What the system said; a full disk (`ENOSPC`) arrives here like any
    /// other error, and the old file is still intact.
    pub error: io::Error,
}

/// Replace `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix: temporary file (0640), fsync, rename, fsync of the
/// directory.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), ReplaceError> {
    replace_with(path, |file| file.write_all(bytes))
}

/// [`replace`] with content written by `write` as it is made, through a
/// buffer: a big gateway's tracker checkpoint (80 MB of JSON at 50,000
/// tunnels) is never held whole in memory next to the tracker.
pub fn replace_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), ReplaceError> {
    let mut replacement = Replacement::begin(path)?;
    write(&mut replacement.buffered).map_err(replacement.failed_write())?;
    replacement.finish()
}

/// A replacement under way, for content made a piece at a time by a caller
/// that cannot hand [`replace_with`] one closure (a commit's events, written
/// while the tracker makes them). [`Replacement::finish`] makes it the
/// file's content; dropped unfinished, it leaves the file as it was (and a
/// temporary the next replacement truncates).
#[derive(Debug)]
pub struct Replacement {
    path: PathBuf,
    temporary: PathBuf,
    buffered: io::BufWriter<File>,
}

impl Replacement {
    /// Create `path`'s temporary file (mode 0640).
    pub fn begin(path: &Path) -> Result<Replacement, ReplaceError> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&temporary)
            .map_err(|error| ReplaceError {
                path: temporary.clone(),
                action: "create",
                error,
            })?;
        Ok(Replacement {
            path: path.to_path_buf(),
            temporary,
            buffered: io::BufWriter::with_capacity(WRITE_BUFFER, file),
        })
    }

    fn failed_write(&self) -> impl FnOnce(io::Error) -> ReplaceError + use<> {
        let path = self.temporary.clone();
        move |error| ReplaceError {
            path,
            action: "write",
            error,
        }
    }

    /// Append `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), ReplaceError> {
        let failed = self.failed_write();
        self.buffered.write_all(bytes).map_err(failed)
    }

    /// Overwrite what was written at `offset` with `bytes` (as long as it
    /// was), then go on appending: a header whose figures are known only
    /// at the end.
    pub fn rewrite_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), ReplaceError> {
        let failed = self.failed_write();
        let file = &mut self.buffered;
        file.flush()
            .and_then(|()| file.get_mut().seek(io::SeekFrom::Start(offset)))
            .and_then(|_| file.get_mut().write_all(bytes))
            .and_then(|()| file.get_mut().seek(io::SeekFrom::End(0)))
            .map(|_| ())
            .map_err(failed)
    }

    /// Give up: remove the temporary, leave the file as it was.
    pub fn abandon(self) {
        drop(self.buffered);
        // Best effort: a temporary left behind is truncated by the next
        // replacement.
        let _ = fs::remove_file(&self.temporary);
    }

    /// fsync the temporary, rename it over the file, fsync the directory.
    pub fn finish(self) -> Result<(), ReplaceError> {
        let Replacement {
            path,
            temporary,
            buffered,
        } = self;
        let failed = |path: &Path, action: &'static str| {
            let path = path.to_path_buf();
            move |error| ReplaceError {
                path,
                action,
                error,
            }
        };
        let directory = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let file = buffered
            .into_inner()
            .map_err(|e| failed(&temporary, "write")(e.into_error()))?;
        file.sync_all().map_err(failed(&temporary, "write"))?;
        drop(file);
        fs::rename(&temporary, &path).map_err(failed(&path, "rename"))?;
        File::open(directory)
            .and_then(|d| d.sync_all())
            .map_err(failed(directory, "fsync directory"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_names_the_file_it_failed_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("acked");
        let e = replace(&path, b"1\n").unwrap_err();
        assert_eq!(e.action, "create");
        assert_eq!(e.path, dir.path().join("missing").join("acked.tmp"));
    }
}
