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
use std::io::{self, Write};
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
    let directory = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let failed = |path: &Path, action: &'static str| {
        let path = path.to_path_buf();
        move |error| ReplaceError {
            path,
            action,
            error,
        }
    };
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&temporary)
        .map_err(failed(&temporary, "create"))?;
    let mut buffered = io::BufWriter::with_capacity(WRITE_BUFFER, file);
    write(&mut buffered)
        .and_then(|()| buffered.flush())
        .map_err(failed(&temporary, "write"))?;
    let file = buffered
        .into_inner()
        .map_err(|e| failed(&temporary, "write")(e.into_error()))?;
    file.sync_all().map_err(failed(&temporary, "write"))?;
    drop(file);
    fs::rename(&temporary, path).map_err(failed(path, "rename"))?;
    File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(failed(directory, "fsync directory"))
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
