//! The stdout sink. TODO: being written.

use super::{Batch, SendError, Sink};

/// NDJSON on standard output.
pub struct StdoutSink;

impl StdoutSink {
    /// The sink.
    pub fn new() -> StdoutSink {
        StdoutSink
    }
}

impl Default for StdoutSink {
    fn default() -> StdoutSink {
        StdoutSink::new()
    }
}

impl Sink for StdoutSink {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let _ = batch;
        Err(SendError::Retryable("not implemented".into()))
    }
}
