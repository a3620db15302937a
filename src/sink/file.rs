//! The file sink. TODO: being written.

use std::path::PathBuf;

use super::{Batch, SendError, Sink};

/// NDJSON appended to a file.
pub struct FileSink {
    path: PathBuf,
    rotate_bytes: u64,
    rotate_keep: u32,
}

impl FileSink {
    /// A sink writing to `path`, rotating past `rotate_bytes` (0 = never), keeping `rotate_keep` old files.
    pub fn new(path: PathBuf, rotate_bytes: u64, rotate_keep: u32) -> FileSink {
        FileSink {
            path,
            rotate_bytes,
            rotate_keep,
        }
    }
}

impl Sink for FileSink {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let _ = (batch, &self.path, self.rotate_bytes, self.rotate_keep);
        Err(SendError::Retryable("not implemented".into()))
    }
}
