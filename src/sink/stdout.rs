//! The stdout sink: NDJSON on standard output, for trying swantrail out and for pipes.
//!
//! It goes through the same spool as every sink, so a stalled reader holds
//! events in the spool instead of losing them. It must never write anything
//! but events to stdout (the daemon's own log goes to stderr).

use tokio::io::AsyncWriteExt;

use super::{Batch, SendError, Sink};

/// Writes each batch to stdout and flushes it.
pub struct StdoutSink {
    out: tokio::io::Stdout,
}

impl StdoutSink {
    /// A sink on the process's standard output.
    pub fn new() -> StdoutSink {
        StdoutSink {
            out: tokio::io::stdout(),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> StdoutSink {
        StdoutSink::new()
    }
}

impl Sink for StdoutSink {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let written = async {
            self.out.write_all(batch.ndjson().as_bytes()).await?;
            self.out.flush().await
        };
        written
            .await
            .map_err(|e| SendError::Retryable(format!("cannot write to stdout: {e}")))
    }
}
