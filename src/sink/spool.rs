//! A durable, bounded, append-only queue of NDJSON events on disk, one per sink.
//!
//! TODO: being written.

use std::path::Path;

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {message}")]
pub struct SpoolError {
    /// The file or directory concerned.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// One sink's spool.
#[derive(Debug)]
pub struct Spool {
    pending_events: u64,
    pending_bytes: u64,
}

impl Spool {
    /// Open (or create) the spool in `dir`.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<Spool, SpoolError> {
        let _ = (dir, segment_bytes);
        Ok(Spool {
            pending_events: 0,
            pending_bytes: 0,
        })
    }

    /// Events not yet acknowledged.
    pub fn pending_events(&self) -> u64 {
        self.pending_events
    }

    /// Bytes not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }
}
