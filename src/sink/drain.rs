//! The machinery every sink shares: appending to a spool under its full
//! policy, and the drain loop (batch, send, split what is too large,
//! acknowledge, retry, dead-letter).
//!
//! A sink only implements [`Sink::send`]; everything about when to send, what
//! to do on failure and how to log it is here, once. Logging is per state
//! change (failing, still failing with a different error, recovered, blocked,
//! resumed), never per retry, so a sink that is down for a day does not fill
//! the journal. This module must never advance a spool's acknowledged offset
//! before the sink (or the dead-letter file) has the batch.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::dead_letter;
use super::spool::{Spool, SpoolError, SpooledBatch};
use super::{Batch, EventOutcome, SendError, Shared, Sink, SinkError, policy_name};
use super::{FullPolicy, RetrySettings};

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
        // A batch cut short by a limit is as full as it gets, even when its
        // last event left part of the byte budget unused.
        let full = batch.more_waiting
            || batch.events as usize >= settings.batch_max_events
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

/// Send one batch until each of its events is delivered or dead-lettered,
/// then acknowledge it. Events the sink asks to retry are sent again alone
/// (see the order guarantee in the module `sink`). The batch goes to the
/// sink as it was read from the spool; only the events of a partial answer
/// are copied out, to be sent again.
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
    let lines = spooled.events + spooled.corrupt;
    let mut unsent = Batch::counted(spooled.ndjson, spooled.events as usize);
    let (mut delivered, mut dead_lettered) = (0, 0);
    let mut backoff = retry.initial_backoff;
    // Only corrupt lines: nothing to send, acknowledge them away.
    while !unsent.is_empty() {
        let split = tokio::select! {
            split = send_splitting(sink, &unsent) => split,
            () = deadline_passed(stop) => return Wake::Stop,
        };
        note_split(shared, &split, unsent.len());
        let outcomes = split.outcomes;
        let sorted = sort_outcomes(&unsent, outcomes);
        delivered += sorted.delivered;
        let mut retry_lines = sorted.retry;
        let mut message = sorted.message;
        if !sorted.rejected.is_empty() {
            let count = sorted.rejected.len() as u64;
            match write_dead_letter(&shared.name, dead_letter, &sorted.rejected).await {
                Ok(()) => {
                    dead_lettered += count;
                    error!(
                        sink = %shared.name,
                        events = count,
                        "sink `{}`: destination rejected {} for good ({}); written to {}",
                        shared.name,
                        crate::counted(count, "event", "events"),
                        reasons(&sorted.rejected),
                        dead_letter.display()
                    );
                }
                Err(e) => {
                    // Keep them (in order, ahead of the retried ones): they
                    // may only leave the spool once the dead-letter file has them.
                    message.get_or_insert_with(|| {
                        format!(
                            "rejected ({}) and the dead-letter file failed: {e}",
                            reasons(&sorted.rejected)
                        )
                    });
                    let mut kept: Vec<String> =
                        sorted.rejected.into_iter().map(|(line, _)| line).collect();
                    kept.append(&mut retry_lines);
                    retry_lines = kept;
                }
            }
        }
        unsent = batch_of(retry_lines.iter().map(String::as_str));
        let Some(message) = message.filter(|_| !unsent.is_empty()) else {
            break;
        };
        note_failure(shared, failing, message);
        shared
            .retried
            .fetch_add(unsent.len() as u64, Ordering::Relaxed);
        let mut wait = jittered(backoff);
        if let Some(not_before) = sorted.not_before {
            wait = wait.max(not_before.saturating_duration_since(Instant::now()));
        }
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
        start,
        end,
        lines,
        delivered,
        dead_lettered,
        corrupt,
    };
    acknowledge(shared, sink, stop, outcome, retry).await
}

/// A batch of the given events, in their order.
pub(super) fn batch_of<'a>(lines: impl IntoIterator<Item = &'a str> + Clone) -> Batch {
    let bytes = lines.clone().into_iter().map(|l| l.len() + 1).sum();
    let mut ndjson = String::with_capacity(bytes);
    let mut events = 0;
    for line in lines {
        ndjson.push_str(line);
        ndjson.push('\n');
        events += 1;
    }
    Batch::counted(ndjson, events)
}

/// What became of a batch sent by [`send_splitting`].
pub(super) struct Split {
    /// One per event of the batch, in its order; never `TooLarge`.
    pub(super) outcomes: Vec<EventOutcome>,
    /// Requests made: 1 when the batch was not found too large.
    pub(super) requests: u32,
    /// Events sent again in smaller requests, counted once per request.
    pub(super) resent: u64,
    /// The destination's answer to the first request found too large.
    pub(super) too_large: Option<String>,
}

/// Send `batch`; while the destination finds a request too large
/// ([`SendError::TooLarge`], HTTP 413), send its events again in two halves,
/// the first half (and its own halves) before the second, so they keep
/// their order. An event refused as too large in a request of its own is
/// `Rejected` with the destination's answer, for the dead-letter file: a
/// batch of n events costs at most 2n - 1 requests.
pub(super) async fn send_splitting<S: Sink>(sink: &mut S, batch: &Batch) -> Split {
    let mut split = Split {
        outcomes: per_event(sink.send_each(batch).await, batch.len()),
        requests: 1,
        resent: 0,
        too_large: None,
    };
    // Pieces still to send, as positions in the batch; the next one on top.
    let mut pieces: Vec<Vec<usize>> = Vec::new();
    let whole: Vec<usize> = (0..batch.len()).collect();
    halve(&mut pieces, &mut split, &whole);
    if pieces.is_empty() {
        return split;
    }
    let lines: Vec<&str> = batch.lines().collect();
    while let Some(piece) = pieces.pop() {
        let part = batch_of(piece.iter().map(|&i| lines[i]));
        split.requests += 1;
        split.resent += piece.len() as u64;
        let answer = per_event(sink.send_each(&part).await, piece.len());
        for (&i, outcome) in piece.iter().zip(answer) {
            split.outcomes[i] = outcome;
        }
        halve(&mut pieces, &mut split, &piece);
    }
    split
}

/// The events of `sent` (one request) that came back too large: alone in
/// their request, rejected for good; otherwise sent again, alone or in two
/// halves pushed so that the first half is sent first.
fn halve(pieces: &mut Vec<Vec<usize>>, split: &mut Split, sent: &[usize]) {
    let too_large: Vec<usize> = sent
        .iter()
        .copied()
        .filter(|&i| matches!(split.outcomes[i], Err(SendError::TooLarge(_))))
        .collect();
    if let Some(Err(SendError::TooLarge(reason))) = too_large.first().map(|&i| &split.outcomes[i]) {
        split.too_large.get_or_insert_with(|| reason.clone());
    }
    match too_large.len() {
        0 => {}
        1 if sent.len() == 1 => {
            let i = too_large[0];
            if let Err(SendError::TooLarge(reason)) = &split.outcomes[i] {
                split.outcomes[i] = Err(SendError::Rejected(reason.clone()));
            }
        }
        1 => pieces.push(too_large),
        n => {
            let (first, second) = too_large.split_at(n / 2);
            pieces.push(second.to_vec());
            pieces.push(first.to_vec());
        }
    }
}

/// Count the events a split sent again, and log once when batches start
/// needing a split (a state change, like a failure): the receiver's limit
/// is below the batch size, and every batch costs extra requests until the
/// limits are brought together.
fn note_split(shared: &Shared, split: &Split, events: usize) {
    shared.retried.fetch_add(split.resent, Ordering::Relaxed);
    let Some(answer) = &split.too_large else {
        shared.splitting.store(false, Ordering::Relaxed);
        return;
    };
    if !shared.splitting.swap(true, Ordering::Relaxed) {
        warn!(
            sink = %shared.name,
            "sink `{}`: the destination refused a request of {} as too large ({answer}); sent it again in {} smaller requests, halving until each passes. Until a whole batch passes again, this is not logged again; lower [sink.spool] batch_max_bytes or batch_max_events below the receiver's limit to save the extra requests",
            shared.name,
            crate::counted(events as u64, "event", "events"),
            split.requests - 1,
        );
    }
}

/// One outcome per event: a whole-batch answer applies to every event, and
/// a sink that miscounted gets all of them retried (a duplicate, never a loss).
fn per_event(result: Result<Vec<EventOutcome>, SendError>, events: usize) -> Vec<EventOutcome> {
    match result {
        Ok(outcomes) if outcomes.len() == events => outcomes,
        Ok(outcomes) => {
            let message = format!(
                "the sink reported {} outcomes for a batch of {events} events (a bug in the sink); sending the batch again",
                outcomes.len()
            );
            vec![Err(SendError::Retryable(message)); events]
        }
        Err(e) => vec![Err(e); events],
    }
}

/// The events of one send, sorted by what the destination said.
pub(super) struct Sorted {
    pub(super) delivered: u64,
    /// To send again, in their order.
    pub(super) retry: Vec<String>,
    /// For the dead-letter file, each with its reason.
    pub(super) rejected: Vec<(String, String)>,
    /// The first retry message, for the log.
    pub(super) message: Option<String>,
    /// The latest time a destination asked to wait for.
    pub(super) not_before: Option<Instant>,
}

/// Only the events not delivered are copied out of the batch: in the usual
/// answer, all delivered, nothing is.
pub(super) fn sort_outcomes(batch: &Batch, outcomes: Vec<EventOutcome>) -> Sorted {
    let mut sorted = Sorted {
        delivered: 0,
        retry: Vec::new(),
        rejected: Vec::new(),
        message: None,
        not_before: None,
    };
    if outcomes.iter().all(Result::is_ok) {
        sorted.delivered = outcomes.len() as u64;
        return sorted;
    }
    for (line, outcome) in batch.lines().zip(outcomes) {
        match outcome {
            Ok(()) => sorted.delivered += 1,
            // `send_splitting` turned a lone event's TooLarge into
            // Rejected; any other is refused for good all the same.
            Err(SendError::Rejected(reason) | SendError::TooLarge(reason)) => {
                sorted.rejected.push((line.to_string(), reason))
            }
            Err(e) => {
                if let SendError::RetryNotBefore { not_before, .. } = &e {
                    sorted.not_before = sorted.not_before.max(Some(*not_before));
                }
                sorted.message.get_or_insert_with(|| e.to_string());
                sorted.retry.push(line.to_string());
            }
        }
    }
    sorted
}

/// The first reason of a set of rejections, and how many others there are
/// (the dead-letter file has each one).
fn reasons(rejected: &[(String, String)]) -> String {
    let Some((_, first)) = rejected.first() else {
        return String::new();
    };
    let others = rejected
        .iter()
        .filter(|(_, r)| r != first)
        .map(|(_, r)| r.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    match others {
        0 => first.clone(),
        n => format!("{first}; and {n} other reasons"),
    }
}

/// Where a batch ended up, for the counters.
struct Outcome {
    /// The batch's place in the spool and how many lines it spans (events
    /// and corrupt ones), so the acknowledgement need not count them again.
    start: u64,
    end: u64,
    lines: u64,
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
        spool.ack_batch(outcome.start, outcome.end, outcome.lines)?;
        let unsaved = spool.unsaved_ack().map(str::to_string);
        note_unsaved_ack(&task_shared, unsaved, spool.pending_events());
        note_unreclaimed(&task_shared, spool.unreclaimed());
        let counters = [
            (&task_shared.delivered, outcome.delivered),
            (&task_shared.dead_lettered, outcome.dead_lettered),
            (&task_shared.quarantined, outcome.corrupt),
        ];
        for (counter, n) in counters {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        Ok::<_, SpoolError>(spool.quarantine_path().to_path_buf())
    })
    .await;
    match acked {
        Ok(Ok(quarantine)) => {
            if corrupt > 0 {
                error!(
                    sink = %shared.name,
                    corrupt,
                    "sink `{}`: moved {} from the spool to {} (not a complete JSON line: disk damage or an edit); every event around it is delivered",
                    shared.name,
                    crate::counted(corrupt, "damaged line", "damaged lines"),
                    quarantine.display()
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

/// Log once when delivered events stop being deleted from the spool (the
/// disk keeps their space) and once when they are again.
fn note_unreclaimed(shared: &Shared, unreclaimed: Option<&str>) {
    match unreclaimed {
        Some(e) if !shared.unreclaimed.swap(true, Ordering::Relaxed) => warn!(
            sink = %shared.name,
            "sink `{}`: {e}; delivered events keep their disk space until a later acknowledgement frees it",
            shared.name
        ),
        None if shared.unreclaimed.swap(false, Ordering::Relaxed) => info!(
            sink = %shared.name,
            "sink `{}`: delivered events are deleted from the spool again",
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
pub(super) fn jittered(delay: Duration) -> Duration {
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

/// Append the rejected events, each wrapped with its reason, to the sink's
/// dead-letter file and fsync it.
pub(super) async fn write_dead_letter(
    sink: &str,
    path: &Path,
    rejected: &[(String, String)],
) -> std::io::Result<()> {
    let path = path.to_path_buf();
    let rejected_at = dead_letter::now_rfc3339();
    let records: String = rejected
        .iter()
        .map(|(line, reason)| dead_letter::record(sink, reason, &rejected_at, line))
        .collect();
    tokio::task::spawn_blocking(move || dead_letter::append(&path, &records))
        .await
        .map_err(std::io::Error::other)?
}
