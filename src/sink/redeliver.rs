//! Sending a dead-letter file again through one sink, once the cause of the
//! refusals (a mapping, a size limit, a missing index) is fixed.
//!
//! The file is taken aside first (`<file>.redelivering`, see `dead_letter`),
//! so that a running daemon starts a new dead-letter file meanwhile. Its
//! events go out in the sink's batches, through the drain's own sending (a
//! 413 splits, retries back off), each byte for byte with its `event.id`.
//! What is refused again is appended to the sink's dead-letter file with the
//! new answer; what cannot be sent because the destination stays down or
//! busy past `give_up_after` is appended there as it was. This must never
//! lose a record: the file taken aside is removed only after every record
//! in it was delivered or written (and fsynced) to the dead-letter file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::dead_letter::{self, DeadLetterError, Records};
use super::drain::{batch_of, jittered, send_splitting, sort_outcomes};
use super::{RetrySettings, Sink, SinkConfig, SinkError, SpoolSettings, WithSink, build};

/// What became of the records of a dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivered {
    /// The dead-letter file given.
    pub file: PathBuf,
    /// Where the records not delivered are now.
    pub dead_letter: PathBuf,
    /// Events the destination took.
    pub delivered: u64,
    /// Events the destination refused again, with a new record.
    pub refused: u64,
    /// The first answer that refused one, for the report.
    pub first_refusal: Option<String>,
    /// Events not sent again because the destination stayed unavailable.
    pub not_sent: u64,
    /// Why they were not sent.
    pub unavailable: Option<String>,
}

/// Why a dead-letter file could not be sent again.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    /// `--sink` names no sink of the configuration.
    #[error("the configuration has no sink named `{name}`; its sinks are: {known}")]
    UnknownSink {
        /// The name given.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The dead-letter file cannot be read or taken aside.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    /// The sink cannot be set up.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Records could not be written to the dead-letter file; `file` still
    /// holds every record (some may be delivered already).
    #[error("cannot write to {}: {error}; {} keeps the records; run swantrail redeliver on it again once that is fixed (what was delivered is sent again, with the same event.id)", dead_letter.display(), file.display())]
    Write {
        /// The sink's dead-letter file.
        dead_letter: PathBuf,
        /// The file taken aside.
        file: PathBuf,
        /// What failed (in the message, so not a separate cause).
        error: std::io::Error,
    },
}

/// Send the dead letters in `file` again through the sink named `sink` of
/// `sinks` (the configured ones; their dead letters are under
/// `state_dir`), retrying a destination that is down or busy for at most
/// `give_up_after`.
pub async fn redeliver(
    sinks: &[SinkConfig],
    state_dir: &Path,
    sink: &str,
    file: &Path,
    give_up_after: Duration,
) -> Result<Redelivered, RedeliverError> {
    let Some(sink_config) = sinks.iter().find(|s| s.name() == sink) else {
        let known: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        return Err(RedeliverError::UnknownSink {
            name: sink.to_string(),
            known: known.join(", "),
        });
    };
    let job = Job {
        file: file.to_path_buf(),
        dead_letter: dead_letter::path(state_dir, sink),
        give_up_after,
    };
    build(sink_config, job)?.await
}

/// One redelivery, waiting for its sink.
struct Job {
    file: PathBuf,
    dead_letter: PathBuf,
    give_up_after: Duration,
}

type Running = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Redelivered, RedeliverError>> + Send>,
>;

impl WithSink for Job {
    type Output = Running;

    fn with<S: Sink>(
        self,
        name: &str,
        spool: &SpoolSettings,
        retry: &RetrySettings,
        sink: S,
    ) -> Running {
        Box::pin(run(
            self,
            name.to_string(),
            spool.clone(),
            retry.clone(),
            sink,
        ))
    }
}

async fn run<S: Sink>(
    job: Job,
    name: String,
    spool: SpoolSettings,
    retry: RetrySettings,
    mut sink: S,
) -> Result<Redelivered, RedeliverError> {
    let aside = dead_letter::take_aside(&job.file)?;
    let opened = File::open(&aside).map_err(|error| DeadLetterError::Io {
        path: aside.clone(),
        error,
    })?;
    let mut records = Records::new(opened, &aside);
    let mut done = Redelivered {
        file: job.file.clone(),
        dead_letter: job.dead_letter.clone(),
        delivered: 0,
        refused: 0,
        first_refusal: None,
        not_sent: 0,
        unavailable: None,
    };
    let write = |records: &str| {
        dead_letter::append(&job.dead_letter, records).map_err(|error| RedeliverError::Write {
            dead_letter: job.dead_letter.clone(),
            file: aside.clone(),
            error,
        })
    };
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < spool.batch_max_events && (bytes as u64) < spool.batch_max_bytes {
            let Some(record) = records.next_record()? else {
                break;
            };
            bytes += record.event().len() + 1;
            batch.push(record);
        }
        if batch.is_empty() {
            break;
        }
        if done.unavailable.is_some() {
            // Not tried again: kept as they were, original answer and all.
            let kept: String = batch.iter().map(|r| format!("{}\n", r.line())).collect();
            write(&kept)?;
            done.not_sent += batch.len() as u64;
            continue;
        }
        let mut unsent: Vec<String> = batch.iter().map(|r| r.event().to_string()).collect();
        let started = Instant::now();
        let mut backoff = retry.initial_backoff;
        while !unsent.is_empty() {
            let attempt = batch_of(unsent.iter().map(String::as_str));
            let split = send_splitting(&mut sink, &attempt).await;
            let sorted = sort_outcomes(&attempt, split.outcomes);
            done.delivered += sorted.delivered;
            if let Some((_, reason)) = sorted.rejected.first() {
                done.first_refusal.get_or_insert_with(|| reason.clone());
                let at = dead_letter::now_rfc3339();
                let refused: String = sorted
                    .rejected
                    .iter()
                    .map(|(event, reason)| dead_letter::record(&name, reason, &at, event))
                    .collect();
                write(&refused)?;
                done.refused += sorted.rejected.len() as u64;
            }
            unsent = sorted.retry;
            let Some(message) = sorted.message.filter(|_| !unsent.is_empty()) else {
                break;
            };
            let mut wait = jittered(backoff);
            if let Some(not_before) = sorted.not_before {
                wait = wait.max(not_before.saturating_duration_since(Instant::now()));
            }
            backoff = (backoff * 2).min(retry.max_backoff);
            if started.elapsed() + wait > job.give_up_after {
                let at = dead_letter::now_rfc3339();
                let kept: String = unsent
                    .iter()
                    .map(|event| dead_letter::record(&name, &message, &at, event))
                    .collect();
                write(&kept)?;
                done.not_sent += unsent.len() as u64;
                done.unavailable = Some(message);
                break;
            }
            tokio::time::sleep(wait).await;
        }
    }
    drop(records);
    std::fs::remove_file(&aside).map_err(|error| DeadLetterError::Io {
        path: aside.clone(),
        error,
    })?;
    Ok(done)
}
