//! The machinery every sink shares: appending to a spool under its full
//! policy, and the drain loop (batch, send, acknowledge, retry, dead-letter).
//!
//! A sink only implements [`Sink::send`]; everything about when to send, what
//! to do on failure and how to log it is here, once. Logging is per state
//! change (failing, still failing with a different error, recovered, blocked,
//! resumed), never per retry, so a sink that is down for a day does not fill
//! the journal. This module must never advance a spool's acknowledged offset
//! before the sink (or the dead-letter file) has the batch.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::spool::{Spool, SpoolError, SpooledBatch};
use super::{Batch, SendError, Shared, Sink, SinkError, policy_name};
use crate::config::{FullPolicy, RetrySettings};

/// What a try to append found.
enum Appended {
    /// The events are in the spool; `dropped` old ones made room for them.
    Done { dropped: u64 },
    /// `Block` policy and no room: wait for an acknowledgement.
    Full { pending: u64 },
}

fn lock(shared: &Shared) -> MutexGuard<'_, Spool> {
    shared.spool.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spool_error(shared: &Shared, error: SpoolError) -> SinkError {
    SinkError::Spool {
        sink: shared.name.clone(),
        error,
    }
}

fn task_error(shared: &Shared, e: tokio::task::JoinError) -> SinkError {
    SinkError::Task {
        sink: shared.name.clone(),
        message: e.to_string(),
    }
}

fn try_append(shared: &Shared, ndjson: &str, events: u64) -> Result<Appended, SpoolError> {
    let mut spool = lock(shared);
    let pending = spool.pending_bytes();
    let size = ndjson.len() as u64;
    let max = shared.settings.max_bytes;
    let mut dropped = 0;
    // An empty spool takes any append, or an oversized one could never go in.
    if pending > 0 && pending + size > max {
        match shared.settings.full_policy {
            FullPolicy::Block => return Ok(Appended::Full { pending }),
            FullPolicy::DropOldest => {
                dropped = spool.drop_oldest(pending + size - max)?;
                shared.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }
    spool.append(ndjson.as_bytes(), events)?;
    Ok(Appended::Done { dropped })
}

/// Append to one sink's spool under its full policy; returns once the events are fsynced.
pub(super) async fn enqueue(
    shared: &Arc<Shared>,
    ndjson: Arc<str>,
    events: u64,
) -> Result<(), SinkError> {
    loop {
        // Created before looking, so an acknowledgement in between is not missed.
        let room = shared.acked.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        let task_shared = Arc::clone(shared);
        let data = Arc::clone(&ndjson);
        let outcome = tokio::task::spawn_blocking(move || try_append(&task_shared, &data, events))
            .await
            .map_err(|e| task_error(shared, e))?
            .map_err(|e| spool_error(shared, e))?;
        match outcome {
            Appended::Done { dropped } => {
                if dropped > 0 {
                    let total = shared.dropped.load(Ordering::Relaxed);
                    warn!(
                        sink = %shared.name,
                        dropped,
                        dropped_total = total,
                        "sink `{}`: spool full (max_bytes = {}), DROPPED the {} to make room ({total} dropped since start; full_policy = {})",
                        shared.name,
                        shared.settings.max_bytes,
                        crate::counted(dropped, "oldest undelivered event", "oldest undelivered events"),
                        policy_name(shared.settings.full_policy),
                    );
                }
                if shared.blocked.swap(false, Ordering::Relaxed) {
                    info!(
                        sink = %shared.name,
                        "sink `{}`: spool has room again; the pipeline goes on",
                        shared.name
                    );
                }
                shared.appended.notify_one();
                return Ok(());
            }
            Appended::Full { pending } => {
                if !shared.blocked.swap(true, Ordering::Relaxed) {
                    warn!(
                        sink = %shared.name,
                        pending_bytes = pending,
                        "sink `{}`: spool full ({pending} of {} bytes undelivered); the pipeline waits until the sink delivers (full_policy = {})",
                        shared.name,
                        shared.settings.max_bytes,
                        policy_name(shared.settings.full_policy),
                    );
                }
                room.await;
            }
        }
    }
}

/// A run of failed sends, for logging state changes only.
struct Failing {
    since: Instant,
    attempts: u32,
    last: String,
}

/// Why the loop stopped waiting.
enum Wake {
    Go,
    Stop,
}

/// The drain loop of one sink: runs until shutdown's deadline passes or its
/// spool is empty after shutdown was asked.
pub(super) async fn run<S: Sink>(
    shared: Arc<Shared>,
    mut sink: S,
    retry: RetrySettings,
    dead_letter: PathBuf,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let settings = shared.settings.clone();
    let mut first_seen: Option<Instant> = None;
    let mut failing: Option<Failing> = None;
    loop {
        let deadline = *stop.borrow_and_update();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let appended = shared.appended.notified();
        let batch = match read(&shared).await {
            Ok(batch) => batch,
            Err(e) => {
                error!(sink = %shared.name, "sink `{}`: {e}; retrying", shared.name);
                if let Wake::Stop = pause(&shared, &mut sink, &mut stop, retry.max_backoff).await {
                    return;
                }
                continue;
            }
        };
        let Some(batch) = batch else {
            first_seen = None;
            if deadline.is_some() {
                return;
            }
            tokio::select! {
                _ = appended => {}
                _ = shared.reopen.notified() => reopen(&shared, &mut sink),
                changed = stop.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let full = batch.events as usize >= settings.batch_max_events
            || batch.ndjson.len() as u64 >= settings.batch_max_bytes;
        let started = *first_seen.get_or_insert_with(Instant::now);
        let send_at = started + settings.batch_max_wait;
        if !full && deadline.is_none() && Instant::now() < send_at {
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep_until(send_at) => {}
                _ = shared.reopen.notified() => reopen(&shared, &mut sink),
                changed = stop.changed() => if changed.is_err() { return },
            }
            continue;
        }
        first_seen = None;
        match deliver(
            &shared,
            &mut sink,
            &retry,
            &dead_letter,
            &mut stop,
            &mut failing,
            batch,
        )
        .await
        {
            Wake::Go => {}
            Wake::Stop => return,
        }
    }
}

async fn read(shared: &Arc<Shared>) -> Result<Option<SpooledBatch>, SinkError> {
    let task_shared = Arc::clone(shared);
    let (max_events, max_bytes) = (
        shared.settings.batch_max_events,
        shared.settings.batch_max_bytes,
    );
    tokio::task::spawn_blocking(move || lock(&task_shared).read_batch(max_events, max_bytes))
        .await
        .map_err(|e| task_error(shared, e))?
        .map_err(|e| spool_error(shared, e))
}

/// Send one batch until it is delivered (or dead-lettered), then acknowledge it.
async fn deliver<S: Sink>(
    shared: &Arc<Shared>,
    sink: &mut S,
    retry: &RetrySettings,
    dead_letter: &Path,
    stop: &mut watch::Receiver<Option<Instant>>,
    failing: &mut Option<Failing>,
    spooled: SpooledBatch,
) -> Wake {
    let (start, end, corrupt) = (spooled.start, spooled.end, spooled.corrupt);
    let batch = Batch::from_ndjson(spooled.ndjson);
    let events = batch.len() as u64;
    let mut backoff = retry.initial_backoff;
    loop {
        let result = if batch.is_empty() {
            Ok(()) // only corrupt lines: nothing to send, acknowledge them away
        } else {
            tokio::select! {
                result = sink.send(&batch) => result,
                () = deadline_passed(stop) => return Wake::Stop,
            }
        };
        let rejected = matches!(result, Err(SendError::Rejected(_)));
        let error = match result {
            Ok(()) => None,
            Err(SendError::Retryable(message)) => Some(message),
            Err(SendError::Rejected(reason)) => {
                match write_dead_letter(shared, dead_letter, &batch, &reason).await {
                    Ok(()) => {
                        error!(
                            sink = %shared.name,
                            events,
                            "sink `{}`: destination rejected {} for good ({reason}); written to {}",
                            shared.name,
                            crate::counted(events, "event", "events"),
                            dead_letter.display()
                        );
                        None
                    }
                    Err(e) => Some(format!(
                        "rejected ({reason}) and the dead-letter file failed: {e}"
                    )),
                }
            }
        };
        match error {
            None => {
                if let Some(f) = failing.take() {
                    shared.failing.store(false, Ordering::Relaxed);
                    let pending = lock(shared).pending_events();
                    info!(
                        sink = %shared.name,
                        pending_events = pending,
                        "sink `{}`: delivery recovered after {} over {}s; {} in the spool",
                        shared.name,
                        crate::counted(u64::from(f.attempts), "failed attempt", "failed attempts"),
                        f.since.elapsed().as_secs(),
                        crate::counted(pending, "event waits", "events wait"),
                    );
                }
                let outcome = Outcome {
                    end,
                    delivered: if rejected { 0 } else { events },
                    dead_lettered: if rejected { events } else { 0 },
                    corrupt,
                };
                return acknowledge(shared, sink, stop, outcome, retry).await;
            }
            Some(message) => {
                note_failure(shared, failing, message);
                let wait = jittered(backoff);
                backoff = (backoff * 2).min(retry.max_backoff);
                if let Wake::Stop = pause(shared, sink, stop, wait).await {
                    return Wake::Stop;
                }
                // Drop-oldest moved the spool on while we waited: read afresh
                // rather than deliver events already counted as dropped.
                if lock(shared).acked() != start {
                    return Wake::Go;
                }
            }
        }
    }
}

/// Where a batch ended up, for the counters.
struct Outcome {
    end: u64,
    delivered: u64,
    dead_lettered: u64,
    corrupt: u64,
}

/// Advance the acknowledged offset past a delivered batch and count it.
async fn acknowledge<S: Sink>(
    shared: &Arc<Shared>,
    sink: &mut S,
    stop: &mut watch::Receiver<Option<Instant>>,
    outcome: Outcome,
    retry: &RetrySettings,
) -> Wake {
    let corrupt = outcome.corrupt;
    let task_shared = Arc::clone(shared);
    let acked = tokio::task::spawn_blocking(move || {
        // Counted under the spool lock so that stats never see a batch as
        // neither pending nor delivered.
        let mut spool = lock(&task_shared);
        spool.ack(outcome.end)?;
        let unsaved = spool.unsaved_ack().map(str::to_string);
        note_unsaved_ack(&task_shared, unsaved, spool.pending_events());
        let counters = [
            (&task_shared.delivered, outcome.delivered),
            (&task_shared.dead_lettered, outcome.dead_lettered),
            (&task_shared.dropped, outcome.corrupt),
        ];
        for (counter, n) in counters {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        Ok::<(), SpoolError>(())
    })
    .await;
    match acked {
        Ok(Ok(())) => {
            if corrupt > 0 {
                error!(
                    sink = %shared.name,
                    corrupt,
                    "sink `{}`: skipped {} in the spool (not valid JSON; disk damage?)",
                    shared.name,
                    crate::counted(corrupt, "corrupt line", "corrupt lines")
                );
            }
            shared.acked.notify_waiters();
            Wake::Go
        }
        Ok(Err(e)) => {
            // The batch was delivered but will be sent again: a duplicate, never a loss.
            error!(sink = %shared.name, "sink `{}`: {e}; the last batch will be sent again", shared.name);
            pause(shared, sink, stop, retry.initial_backoff).await
        }
        Err(e) => {
            error!(sink = %shared.name, "sink `{}`: acknowledging failed: {e}", shared.name);
            pause(shared, sink, stop, retry.initial_backoff).await
        }
    }
}

/// Log once when the acknowledged offset stops being saved (delivery goes
/// on from memory) and once when it is saved again.
fn note_unsaved_ack(shared: &Shared, unsaved: Option<String>, pending: u64) {
    match unsaved {
        Some(e) if !shared.ack_unsaved.swap(true, Ordering::Relaxed) => warn!(
            sink = %shared.name,
            pending_events = pending,
            "sink `{}`: {e}; delivery goes on, but a crash before the offset is saved would send the events delivered since then again",
            shared.name
        ),
        None if shared.ack_unsaved.swap(false, Ordering::Relaxed) => info!(
            sink = %shared.name,
            pending_events = pending,
            "sink `{}`: the acknowledged offset is saved again",
            shared.name
        ),
        _ => {}
    }
}

fn note_failure(shared: &Shared, failing: &mut Option<Failing>, message: String) {
    let pending = lock(shared).pending_events();
    match failing {
        None => {
            shared.failing.store(true, Ordering::Relaxed);
            warn!(
                sink = %shared.name,
                pending_events = pending,
                "sink `{}`: delivery failed: {message}; {} in the spool, retrying with backoff",
                shared.name,
                crate::counted(pending, "event waits", "events wait")
            );
            *failing = Some(Failing {
                since: Instant::now(),
                attempts: 1,
                last: message,
            });
        }
        Some(f) => {
            f.attempts += 1;
            if f.last != message {
                warn!(
                    sink = %shared.name,
                    pending_events = pending,
                    "sink `{}`: delivery still failing, now: {message}; {} in the spool",
                    shared.name,
                    crate::counted(pending, "event waits", "events wait")
                );
                f.last = message;
            }
        }
    }
}

/// Half the delay plus a random part of the other half, so that many
/// gateways retrying one collector do not hit it in step.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let extra = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=extra))
}

/// Wait `wait`, serving reopen requests, unless the shutdown deadline passes first.
async fn pause<S: Sink>(
    shared: &Shared,
    sink: &mut S,
    stop: &mut watch::Receiver<Option<Instant>>,
    wait: Duration,
) -> Wake {
    let until = Instant::now() + wait;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return Wake::Go,
            () = deadline_passed(stop) => return Wake::Stop,
            _ = shared.reopen.notified() => reopen(shared, sink),
        }
    }
}

/// Completes once shutdown was asked and its deadline passed (or the
/// `Delivery` is gone).
async fn deadline_passed(stop: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *stop.borrow_and_update();
        match deadline {
            Some(d) => {
                tokio::time::sleep_until(d).await;
                return;
            }
            None => {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

fn reopen<S: Sink>(shared: &Shared, sink: &mut S) {
    match sink.reopen() {
        Ok(()) => info!(sink = %shared.name, "sink `{}`: reopened", shared.name),
        Err(e) => warn!(
            sink = %shared.name,
            "sink `{}`: reopen failed: {e}; retrying at the next batch",
            shared.name
        ),
    }
}

async fn write_dead_letter(
    shared: &Shared,
    path: &Path,
    batch: &Batch,
    reason: &str,
) -> std::io::Result<()> {
    let path = path.to_path_buf();
    let ndjson = batch.shared();
    let prefix = format!(
        "{{\"sink\":{},\"reason\":{},\"rejected_at\":{},\"event\":",
        serde_json::Value::from(shared.name.as_str()),
        serde_json::Value::from(reason),
        serde_json::Value::from(now_rfc3339()),
    );
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&path)?;
        let mut out = String::new();
        for line in ndjson.split_terminator('\n') {
            out.push_str(&prefix);
            out.push_str(line);
            out.push_str("}\n");
        }
        file.write_all(out.as_bytes())?;
        file.sync_data()
    })
    .await
    .map_err(std::io::Error::other)?
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
