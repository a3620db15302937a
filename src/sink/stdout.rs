//! The stdout sink: NDJSON on standard output, for trying swantrail out and for pipes.
//!
//! It goes through the same spool as every sink, so a stalled reader holds
//! events in the spool instead of losing them. It must never write anything
//! but events to stdout (the daemon's own log goes to stderr).

use tokio::io::AsyncWriteExt;

use toml::Spanned;
use toml::de::DeTable;

use super::{
    Batch, Encoding, RetrySettings, SendError, Sink, SinkError, SinkHeader, SinkKind,
    SpoolSettings, WithSink,
};
use crate::toml_config::{ConfigError, Validator};

/// The stdout sink's settings: `type = "stdout"` in a `[[sink]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StdoutSinkConfig {
    /// Unique sink name (default: `stdout`).
    pub name: String,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
    /// What the payload says of each event: ECS as spooled, or OCSF.
    pub encoding: Encoding,
}

impl Default for StdoutSinkConfig {
    fn default() -> StdoutSinkConfig {
        StdoutSinkConfig {
            name: "stdout".to_string(),
            spool: SpoolSettings::default(),
            retry: RetrySettings::default(),
            encoding: Encoding::default(),
        }
    }
}

/// `type = "stdout"`: no keys beyond the common header.
impl SinkKind for StdoutSinkConfig {
    const TYPE_NAME: &'static str = "stdout";
    const CONFIG_KEYS: &'static [&'static str] = &[];

    fn read(
        _reader: &Validator<'_>,
        header: SinkHeader,
        _own: Spanned<DeTable<'_>>,
    ) -> Result<StdoutSinkConfig, ConfigError> {
        Ok(StdoutSinkConfig {
            name: header.name,
            spool: header.spool,
            retry: header.retry,
            encoding: header.encoding,
        })
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (&self.name, &self.spool, &self.retry)
    }

    fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        Ok(with.with(&self.name, &self.spool, &self.retry, StdoutSink::new()))
    }
}

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
