//! The per-sink drain loop and the enqueue side of the spool. TODO: being written.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Shared, Sink, SinkError};
use crate::config::RetrySettings;

pub(super) async fn enqueue(
    shared: &Shared,
    ndjson: Arc<str>,
    events: u64,
) -> Result<(), SinkError> {
    let _ = (
        &shared.settings,
        &shared.appended,
        &shared.acked,
        &shared.blocked,
        ndjson,
        events,
    );
    Ok(())
}

pub(super) async fn run<S: Sink>(
    shared: Arc<Shared>,
    sink: S,
    retry: RetrySettings,
    dead_letter: PathBuf,
    stop: watch::Receiver<Option<tokio::time::Instant>>,
) {
    let _ = (
        shared,
        sink,
        retry,
        dead_letter,
        stop,
        super::policy_name(crate::config::FullPolicy::Block),
    );
}
