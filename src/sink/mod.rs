//! Delivery: one durable spool per sink, and the shared machinery that drains it.
//!
//! The pipeline hands encoded events to [`Delivery::enqueue`], which appends
//! them to every sink's spool and fsyncs before returning; only then may the
//! daemon drop the source's pending file that holds them (the checkpoint
//! that counts them was written before, `daemon::checkpoint`). Each sink
//! then drains its own spool in its own
//! task: read a batch, [`Sink::send`] it, and advance the acknowledged offset
//! only after the destination accepted it. Batching, retry with backoff, dead
//! letters, the full-spool policy and the logging of state changes live here,
//! once, so that a sink (file, stdout, and later syslog and HTTP) only says how
//! to send a batch. This module must never drop an event silently: every loss
//! (drop-oldest, dead letter, corrupt spool line) is logged and counted.
//!
//! A new sink is written by analogy with `file.rs`: its config struct next
//! to it, implementing `registry::SinkKind` (its `type` name, its own keys
//! and their reader, which gets the common `name`/`spool`/`retry` header
//! already read, and its constructor); a type implementing [`Sink`] whose
//! `send` turns a [`Batch`] into its wire format
//! (`Batch::lines` per event, `Batch::ndjson` for a body) and returns
//! [`SendError::Retryable`] (or [`SendError::RetryNotBefore`] when the
//! destination said when, like an HTTP `Retry-After`) for anything that may
//! pass later, [`SendError::TooLarge`] for a request the destination found
//! too large (the drain splits the batch in halves) and
//! [`SendError::Rejected`] for what never will. Then one line in the
//! registry (`registry.rs`) and its keys in `config/swantrail.toml`. A sink
//! that speaks TLS takes the shared `[sink.tls]` table and its failure
//! policy from [`tls`]. A destination that answers per event
//! (Elasticsearch `_bulk`) implements
//! [`Sink::send_each`] as well. A sink never retries, sleeps or counts by
//! itself, and never imports `config`: its keys are read with the TOML
//! helpers (`crate::toml_config`).
//!
//! # Order and acknowledgement
//!
//! Events reach a sink in spool order, batch after batch. A batch is
//! acknowledged as a whole, and only once every one of its events was
//! delivered or written to the dead-letter file. The events of a batch that a
//! sink asked to retry are sent again, alone and in their order, before any
//! event of a later batch is read: a retried event may arrive after later
//! events of its own batch, never after an event of a later batch. A batch
//! the destination finds too large is sent again in halves, the first half
//! first, down to single events. An event
//! reported delivered is not sent again, except after a crash or a drop-oldest
//! that cut into the batch while it waited: then the whole unacknowledged
//! batch is read afresh and may be delivered twice (with the same `event.id`).

mod ack;
pub mod dead_letter;
mod drain;
pub mod encoding;
pub mod file;
pub mod http;
pub mod kafka;
pub mod redeliver;
pub(crate) mod registry;
pub mod settings;
pub mod spool;
pub mod stdout;
pub mod syslog;
pub mod tls;

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use registry::{SinkConfig, WithSink, build};
pub(crate) use registry::{SinkHeader, SinkKind};
pub use settings::{Encoding, FullPolicy, HTTP_BATCH_MAX_EVENTS, RetrySettings, SpoolSettings};
use spool::{Spool, SpoolError};

/// A destination for events; implement `send` (and `reopen` where it means
/// something) and the shared drain loop does the rest.
///
/// Shaped after Vector's sinks: the sink knows its wire format and its
/// destination, nothing about spools, retries or acknowledgements.
pub trait Sink: Send + 'static {
    /// Deliver the whole batch. `Ok` means the destination has it (for a file:
    /// written and fdatasync'ed); only then is the batch acknowledged. A sink may
    /// be called again with the same batch after an error, so a partial write
    /// must not leave garbage behind.
    fn send(&mut self, batch: &Batch) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Deliver the batch and say what became of each event, for destinations
    /// that answer per event (an Elasticsearch `_bulk` response). The drain
    /// calls only this; the default is all-or-nothing through [`Sink::send`], so
    /// a sink that cannot tell events apart (file, stdout, syslog) leaves it be.
    ///
    /// `Err` is an answer for the whole batch (connection refused); `Ok` holds
    /// one [`EventOutcome`] per event of `batch`, in its order. The drain sends
    /// the events to retry again, alone, in a smaller batch.
    fn send_each(
        &mut self,
        batch: &Batch,
    ) -> impl Future<Output = Result<Vec<EventOutcome>, SendError>> + Send {
        let events = batch.len();
        let sent = self.send(batch);
        async move {
            sent.await?;
            Ok(vec![Ok(()); events])
        }
    }

    /// Let go of the destination and open it again (SIGHUP, for logrotate).
    fn reopen(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

/// What became of one event of a batch: `Ok` delivered, or why not (the
/// [`SendError`] says whether to retry it, when, or to dead-letter it).
pub type EventOutcome = Result<(), SendError>;

/// Why a batch (or one event of it) was not delivered; decides whether the
/// drain retries, when, or dead-letters it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The destination may accept it later (down, full, timeout, 5xx): keep it
    /// and retry after the drain's backoff.
    #[error("{0}")]
    Retryable(String),
    /// The destination may accept it later and said when (HTTP 429 or 503 with
    /// `Retry-After`): the drain waits at least until `not_before`, and at
    /// least its own backoff, before it tries again.
    #[error("{message} (retry not before {}s from now)", not_before.saturating_duration_since(Instant::now()).as_secs())]
    RetryNotBefore {
        /// What the destination answered, for the log.
        message: String,
        /// The earliest time to try again.
        not_before: Instant,
    },
    /// The destination will never accept this batch or event (a 4xx that is
    /// not 429): it goes to the sink's dead-letter file with the reason, and
    /// draining goes on.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The request was larger than the destination takes (HTTP 413): the
    /// drain sends the events again in two halves, and halves of those, and
    /// dead-letters with this reason an event refused in a request of its
    /// own. Splitting is the drain's so that every sink that can tell "too
    /// large" gets it, and a sink never sends more than it was given.
    #[error("too large: {0}")]
    TooLarge(String),
}

impl SendError {
    /// Retryable, not before `after` from now: the usual way to turn an HTTP
    /// `Retry-After: <seconds>` into an error.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> SendError {
        SendError::RetryNotBefore {
            message: message.into(),
            not_before: Instant::now() + after,
        }
    }
}

/// Events read from a spool, handed to a sink: NDJSON, one event per line, each
/// line ending in `\n`.
///
/// For a sink with `encoding = "ocsf"` the lines are the events so encoded
/// (`encoding.rs`), and the batch keeps the spooled lines beside them for
/// the sinks that take their envelope from the event (a syslog header, a
/// Kafka key): [`Batch::events`].
#[derive(Debug, Clone)]
pub struct Batch {
    ndjson: Arc<str>,
    events: usize,
    spooled: Option<Arc<str>>,
}

impl Batch {
    /// A batch from NDJSON text whose every line ends in `\n` (tests and spool reads).
    pub fn from_ndjson(ndjson: impl Into<Arc<str>>) -> Batch {
        let ndjson = ndjson.into();
        let events = ndjson.matches('\n').count();
        Batch {
            ndjson,
            events,
            spooled: None,
        }
    }

    /// A batch of `payload` lines, one for each line of `spooled` (the
    /// same count, in the same order): the spooled events re-encoded.
    pub(crate) fn encoded(payload: String, spooled: Arc<str>, events: usize) -> Batch {
        debug_assert_eq!(
            memchr::memchr_iter(b'\n', payload.as_bytes()).count(),
            events
        );
        Batch {
            ndjson: payload.into(),
            events,
            spooled: Some(spooled),
        }
    }

    /// A batch from NDJSON text whose `events` lines each end in `\n`, as
    /// the spool read them: counted already, so not counted again.
    pub(crate) fn counted(ndjson: String, events: usize) -> Batch {
        debug_assert_eq!(
            memchr::memchr_iter(b'\n', ndjson.as_bytes()).count(),
            events
        );
        Batch {
            ndjson: ndjson.into(),
            events,
            spooled: None,
        }
    }

    /// The whole batch as NDJSON (for a file or an HTTP body).
    pub fn ndjson(&self) -> &str {
        &self.ndjson
    }

    /// The batch as a shared buffer, for sinks that hand it to another task or thread.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.ndjson)
    }

    /// The events one by one as the sink sends them, without their newline.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.ndjson.split_terminator('\n')
    }

    /// The events one by one as spooled (the canonical ECS line), each
    /// with its payload line when the sink encodes events otherwise: a
    /// sink that reads fields of the event for its envelope (a syslog
    /// header, a Kafka key) reads them here, whatever the encoding.
    pub fn events(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let spooled = self.spooled.as_deref().unwrap_or(&self.ndjson);
        let encoded = self.spooled.is_some();
        spooled
            .split_terminator('\n')
            .zip(self.lines())
            .map(move |(line, payload)| (line, encoded.then_some(payload)))
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.events
    }

    /// True for a batch without events.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }
}

/// Why delivery could not start or take events.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A spool could not be opened or written.
    #[error("sink `{sink}`: {error}")]
    Spool {
        /// The sink whose spool failed.
        sink: String,
        /// What failed (in the message, so not a separate cause).
        error: SpoolError,
    },
    /// Two sinks with the same name would share a spool.
    #[error("two sinks are named `{0}`; sink names must be unique")]
    DuplicateName(String),
    /// An event to enqueue was empty or contained a newline (it would corrupt NDJSON).
    #[error("event {index} of the batch is not a single non-empty line")]
    InvalidEvent {
        /// Position in the slice given to `enqueue`.
        index: usize,
    },
    /// A sink could not be set up (a TLS file that cannot be read).
    #[error("sink `{sink}`: {message}")]
    Setup {
        /// The sink concerned.
        sink: String,
        /// What is wrong and which key to fix.
        message: String,
    },
    /// A drain task panicked or a blocking spool task failed.
    #[error("sink `{sink}`: internal task failed: {message}")]
    Task {
        /// The sink concerned.
        sink: String,
        /// What happened.
        message: String,
    },
}

/// Counters of one sink, for logs and `sd_notify` STATUS=.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Events in the spool not yet acknowledged.
    pub pending_events: u64,
    /// Bytes in the spool not yet acknowledged.
    pub pending_bytes: u64,
    /// Events acknowledged by the destination since start.
    pub delivered_events: u64,
    /// Events deleted unsent since start (drop-oldest policy).
    pub dropped_events: u64,
    /// Damaged spool lines (not an event) moved to the spool's quarantine
    /// file since start: the operator has something to look at.
    pub quarantined_lines: u64,
    /// Events the destination rejected for good, written to the dead-letter file.
    pub dead_lettered_events: u64,
    /// Events sent again after a failed attempt, counted once per retry
    /// (an event retried three times counts three).
    pub retried_events: u64,
    /// The last send failed and the drain is retrying.
    pub failing: bool,
}

/// The delivery half of the pipeline: every sink's spool and drain task.
pub struct Delivery {
    sinks: Vec<SinkHandle>,
    stop: watch::Sender<Option<Instant>>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

/// What `enqueue`, `stats` and the drain task of one sink share.
struct Shared {
    name: String,
    spool: Mutex<Spool>,
    settings: SpoolSettings,
    /// Signalled after an append: the drain has something to read.
    appended: Notify,
    /// Signalled after an acknowledgement: a blocked enqueue may find room.
    acked: Notify,
    /// Signalled by `reopen`.
    reopen: Notify,
    delivered: AtomicU64,
    dropped: AtomicU64,
    quarantined: AtomicU64,
    dead_lettered: AtomicU64,
    retried: AtomicU64,
    failing: AtomicBool,
    /// True while an enqueue waits for room (to log the state change once).
    blocked: AtomicBool,
    /// True while batches are found too large and split (to log it once).
    splitting: AtomicBool,
    /// True while the spool's acknowledged offset cannot be saved.
    ack_unsaved: AtomicBool,
    /// True while delivered events cannot be deleted from the spool.
    unreclaimed: AtomicBool,
}

struct SinkHandle {
    shared: Arc<Shared>,
}

type DrainFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Assembles a [`Delivery`] from sinks; `Delivery::start` uses it for the
/// configured sinks, and tests use it to add a sink of their own.
pub struct DeliveryBuilder {
    state_dir: PathBuf,
    names: HashSet<String>,
    sinks: Vec<SinkHandle>,
    drains: Vec<(String, DrainFuture)>,
    stop: watch::Sender<Option<Instant>>,
}

impl Delivery {
    /// Opens one spool per sink under `state_dir/spool/<sink name>/` and
    /// spawns one drain task per sink (needs a tokio runtime).
    pub fn start(sinks: &[SinkConfig], state_dir: &Path) -> Result<Delivery, SinkError> {
        let mut builder = Delivery::builder(state_dir);
        for config in sinks {
            builder = build(config, AddSink(builder))??;
        }
        Ok(builder.start())
    }

    /// A builder for delivery to sinks given as values (any [`Sink`] impl).
    pub fn builder(state_dir: &Path) -> DeliveryBuilder {
        DeliveryBuilder {
            state_dir: state_dir.to_path_buf(),
            names: HashSet::new(),
            sinks: Vec::new(),
            drains: Vec::new(),
            stop: watch::Sender::new(None),
        }
    }

    /// Appends the encoded events (one JSON object per String, no newline)
    /// durably (write + fsync) to EVERY sink's spool before returning.
    ///
    /// Policy `Block`: waits until every spool has room. `DropOldest`: drops the
    /// oldest spooled events with one loud `warn!` line and a counter.
    pub async fn enqueue(&self, lines: &[String]) -> Result<(), SinkError> {
        if lines.is_empty() {
            return Ok(());
        }
        for (index, line) in lines.iter().enumerate() {
            // memchr's vector search: core's `contains` of a char was a
            // tenth of the delivery benchmark's CPU.
            if line.is_empty() || memchr::memchr(b'\n', line.as_bytes()).is_some() {
                return Err(SinkError::InvalidEvent { index });
            }
        }
        let mut ndjson = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            ndjson.push_str(line);
            ndjson.push('\n');
        }
        let ndjson: Arc<str> = ndjson.into();
        for sink in &self.sinks {
            drain::enqueue(&sink.shared, Arc::clone(&ndjson), lines.len() as u64).await?;
        }
        Ok(())
    }

    /// SIGHUP: file sinks reopen their files (logrotate).
    pub fn reopen(&self) {
        for sink in &self.sinks {
            sink.shared.reopen.notify_one();
        }
    }

    /// Drain what can be drained within `grace`, then stop the drain tasks;
    /// what is left stays in the spools for the next start. Returns how
    /// many events that is, so that the operator hears it at shutdown.
    pub async fn shutdown(self, grace: Duration) -> Result<u64, SinkError> {
        let deadline = Instant::now() + grace;
        self.stop.send_replace(Some(deadline));
        let mut result = Ok(());
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                result = Err(SinkError::Task {
                    sink: name,
                    message: e.to_string(),
                });
            }
        }
        let left = self
            .sinks
            .iter()
            .map(|s| s.shared.stats().pending_events)
            .sum();
        result.map(|()| left)
    }

    /// Per-sink pending/delivered/dropped counters, for logs and sd_notify STATUS=.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(|s| s.shared.stats()).collect()
    }

    /// A view of the same counters that another task can keep: the metrics
    /// endpoint answers scrapes while the daemon loop owns the `Delivery`.
    pub fn stats_handle(&self) -> DeliveryStats {
        DeliveryStats {
            sinks: self.sinks.iter().map(|s| Arc::clone(&s.shared)).collect(),
        }
    }
}

/// Every sink's counters, readable from anywhere ([`Delivery::stats_handle`]);
/// it can only read them, never enqueue or stop anything.
#[derive(Clone)]
pub struct DeliveryStats {
    sinks: Vec<Arc<Shared>>,
}

impl DeliveryStats {
    /// Per-sink counters, as [`Delivery::stats`] gives them.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(|s| s.stats()).collect()
    }
}

impl Shared {
    fn stats(&self) -> SinkStats {
        // Read under the spool lock: acknowledging moves events from pending
        // to delivered under it, so the numbers always add up.
        let spool = self
            .spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        SinkStats {
            name: self.name.clone(),
            pending_events: spool.pending_events(),
            pending_bytes: spool.pending_bytes(),
            delivered_events: self.delivered.load(Ordering::Relaxed),
            dropped_events: self.dropped.load(Ordering::Relaxed),
            quarantined_lines: self.quarantined.load(Ordering::Relaxed),
            dead_lettered_events: self.dead_lettered.load(Ordering::Relaxed),
            retried_events: self.retried.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
        }
    }
}

impl DeliveryBuilder {
    /// Open the spool of one sink (`state_dir/spool/<name>/`) and prepare its drain task.
    pub fn add_sink<S: Sink>(
        mut self,
        name: &str,
        spool: &SpoolSettings,
        retry: &RetrySettings,
        sink: S,
    ) -> Result<DeliveryBuilder, SinkError> {
        if !self.names.insert(name.to_string()) {
            return Err(SinkError::DuplicateName(name.to_string()));
        }
        let dir = self.state_dir.join("spool").join(name);
        let opened = Spool::open(&dir, spool.segment_bytes).map_err(|error| SinkError::Spool {
            sink: name.to_string(),
            error,
        })?;
        if opened.recovery().truncated_bytes > 0 {
            tracing::warn!(
                sink = name,
                "sink `{name}`: cut a torn tail of {} bytes from the spool (an append interrupted by a crash; those events were never confirmed)",
                opened.recovery().truncated_bytes
            );
        }
        if opened.recovery().realigned_segments > 0 {
            tracing::warn!(
                sink = name,
                "sink `{name}`: renamed {} in {} because the segment before had grown into their offsets (a line put in by hand?), so that none of their events is skipped",
                crate::counted(
                    opened.recovery().realigned_segments,
                    "spool segment",
                    "spool segments"
                ),
                dir.display()
            );
        }
        if let Some(e) = opened.unsaved_ack() {
            tracing::warn!(
                sink = name,
                "sink `{name}`: {e}; its acknowledged offset is saved at the first delivery that can write it"
            );
        }
        if let Some(e) = opened.unreclaimed() {
            tracing::warn!(
                sink = name,
                "sink `{name}`: {e}; delivered events keep their disk space until the next acknowledgement can free it"
            );
        }
        if opened.recovery().unreadable_ack {
            tracing::warn!(
                sink = name,
                "sink `{name}`: the spool's acknowledged offset in {} was unreadable; every spooled event will be delivered again (duplicates keep their event.id)",
                dir.join("acked").display()
            );
        }
        if opened.pending_events() > 0 {
            tracing::info!(
                sink = name,
                "sink `{name}`: {} from the previous run in the spool",
                crate::counted(
                    opened.pending_events(),
                    "undelivered event",
                    "undelivered events"
                )
            );
        }
        let unreclaimed = opened.unreclaimed().is_some();
        let ack_unsaved = opened.unsaved_ack().is_some();
        let shared = Arc::new(Shared {
            name: name.to_string(),
            spool: Mutex::new(opened),
            settings: spool.clone(),
            appended: Notify::new(),
            acked: Notify::new(),
            reopen: Notify::new(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            splitting: AtomicBool::new(false),
            ack_unsaved: AtomicBool::new(ack_unsaved),
            unreclaimed: AtomicBool::new(unreclaimed),
        });
        let dead_letter = dead_letter::path(&self.state_dir, name);
        let drain = drain::run(
            Arc::clone(&shared),
            sink,
            retry.clone(),
            dead_letter,
            self.stop.subscribe(),
        );
        self.drains.push((name.to_string(), Box::pin(drain)));
        self.sinks.push(SinkHandle { shared });
        Ok(self)
    }

    /// Spawn the drain tasks (needs a tokio runtime).
    pub fn start(self) -> Delivery {
        let tasks = self
            .drains
            .into_iter()
            .map(|(name, drain)| (name, tokio::spawn(drain)))
            .collect();
        Delivery {
            sinks: self.sinks,
            stop: self.stop,
            tasks,
        }
    }
}

/// [`Delivery::start`]'s use of a sink: add it to the builder.
struct AddSink(DeliveryBuilder);

impl WithSink for AddSink {
    type Output = Result<DeliveryBuilder, SinkError>;

    fn with<S: Sink>(
        self,
        name: &str,
        spool: &SpoolSettings,
        retry: &RetrySettings,
        sink: S,
    ) -> Self::Output {
        self.0.add_sink(name, spool, retry, sink)
    }
}

/// `FullPolicy` in words, for log lines.
fn policy_name(policy: FullPolicy) -> &'static str {
    match policy {
        FullPolicy::Block => "block",
        FullPolicy::DropOldest => "drop-oldest",
    }
}
