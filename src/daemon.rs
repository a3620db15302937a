//! The daemon: wires sources, trackers, spools and sinks together and
//! behaves as a systemd service.
//!
//! Sources send reports over one channel; a single loop owns the trackers,
//! so events are computed in the order snapshots arrived. For every report
//! that makes events the order is fixed ([`checkpoint`]): compute the
//! events, write them to the source's pending file, write the checkpoint
//! that counts them, then append them to every sink's spool. A crash or a
//! full disk between two steps either leaves nothing of the snapshot
//! (computed afresh later) or its exact lines, spooled again at the next
//! start: events repeat with the same `event.id` and content, and no
//! `event.id` or `event.sequence` is ever given to two contents. The loop also answers the requests of the control stream it is
//! given ([`signals`] in production: SIGTERM/SIGINT drain and stop, SIGHUP
//! reopens files, the watchdog timer pings) and talks to systemd (READY,
//! WATCHDOG, STATUS). Every report and checkpoint write is also counted in
//! `metrics`, which the optional `[metrics]` endpoint serves.
//! [`serve`] is three steps, as mini-redis's server is: start (state
//! directory, lock, trackers, endpoint, delivery, sources), run (the loop)
//! and shutdown (spool, queue what is held, drain, checkpoint).
//! It must never diff an incomplete snapshot and never write a checkpoint
//! ahead of both the spools and the pending file.

pub mod checkpoint;
mod endpoint;
mod metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::{Config, LogFormat};
use crate::sink::Delivery;
use crate::source::{self, Observation, Report};
use crate::track::{Tracker, TrackerConfig};
use checkpoint::Checkpoint;
use metrics::Metrics;

/// Send log records to stderr: journald-friendly (no timestamps, journald
/// adds its own) when `JOURNAL_STREAM` says stderr goes to the journal.
/// `RUST_LOG`, when set and valid, overrides `log.level` for one run.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => tracing_subscriber::EnvFilter::try_new(level)
            .with_context(|| format!("log level {level:?} is not a valid filter"))?,
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(!journald && std::io::stderr().is_terminal());
    let installed = match (format, journald) {
        (LogFormat::Text, false) => builder.try_init(),
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Json, true) => builder.json().without_time().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// One source's tracker and where its checkpoint goes.
struct Tracked {
    checkpoint: Checkpoint,
    path: PathBuf,
    /// The checkpoint file and journal, and what they hold.
    store: checkpoint::Store,
    /// The tracker settings of the configuration (they win over a
    /// checkpoint's), and whether it waits for Linux audit records.
    configured: TrackerConfig,
    expects_linux_audit: bool,
    /// Linux audit records taken in since the last save: a snapshot whose
    /// commit fails is undone by reading the saved state back, and these
    /// are taken in again.
    linux_audit_since_save: Vec<crate::linux_audit::record::PlutoRecord>,
    /// Lines of pluto's log taken in since the last save, and where their
    /// reader stood after them, for the same undo.
    pluto_log_since_save: Vec<crate::pluto_log::PlutoLogRecord>,
    pluto_log_position_since_save: Option<String>,
    /// Whether the source has reported at least once (for READY=1).
    reported: bool,
    /// Tunnels up in the last snapshot, for STATUS=.
    tunnels_up: usize,
    /// Whether the last look found pluto unreachable, for STATUS=.
    unreachable: bool,
    /// Checkpoint writes failed in a row (logged once, at the first).
    checkpoint_failures: u64,
    /// Whether the source's clock is behind the tracker's (logged once).
    clock_behind: bool,
    /// Events of the checkpoint's commit that are not yet in every spool
    /// (a spool append failed, or the last run stopped first): spooled
    /// before anything else of this source, exactly as they are.
    unspooled: Option<Unspooled>,
}

/// The events of one commit, encoded in its pending file (never all in
/// memory: a first poll of a big gateway makes hundreds of thousands), with
/// how many of each action there are for the counters.
struct Unspooled {
    /// How many events the pending file holds.
    count: usize,
    /// How many of them are already in every spool (an earlier try that
    /// failed part way): the next try goes on after them.
    spooled: usize,
    /// Per `event.action`, how many.
    actions: BTreeMap<String, u64>,
}

/// NDJSON bytes handed to the spools at a time when a commit's events are
/// spooled from its pending file.
const SPOOL_BATCH_BYTES: usize = 1 << 20;

/// The daemon proper, inside the runtime: `Daemon::start`, then
/// `Daemon::run` until a stop, then `Daemon::shutdown`.
///
/// `control` is what the outside world asks while it runs: [`signals`] in
/// the real daemon, a channel in tests (as mini-redis passes its shutdown
/// future), so the whole loop runs in-process. A closed `control` is a stop.
pub async fn serve(config: Config, mut control: mpsc::Receiver<Request>) -> anyhow::Result<()> {
    let mut daemon = Daemon::start(&config).await?;
    daemon.run(&mut control).await;
    daemon.shutdown(&mut control).await;
    Ok(())
}

/// Everything [`Daemon::start`] set up, for [`Daemon::run`] to use and
/// [`Daemon::shutdown`] to take down in order.
struct Daemon {
    /// The exclusive lock on the state directory, held until the daemon
    /// is gone: dropped last, with the rest of this value.
    _lock: File,
    /// One tracker per snapshot source, by source name.
    trackers: BTreeMap<String, Tracked>,
    /// The spools and the sinks draining them.
    delivery: Delivery,
    /// The counters `/metrics` serves.
    metrics: Arc<Metrics>,
    /// The `/metrics` endpoint's task, if one is configured.
    endpoint: Option<JoinHandle<()>>,
    /// The sources' tasks (snapshot sources and Linux audit sources).
    sources: Vec<JoinHandle<()>>,
    /// What the sources report, in the order they report it.
    reports: mpsc::Receiver<Report>,
    /// How long a stop waits for work in progress and for the sinks.
    grace: std::time::Duration,
    /// Events queued since the start, for STATUS= and the closing line.
    events_queued: u64,
}

impl Daemon {
    /// The state directory and its lock, the trackers restored from their
    /// checkpoints with their pending commits, the `/metrics` endpoint,
    /// delivery and the sources, in that order: whatever fails stops the
    /// start before a source has looked at pluto.
    async fn start(config: &Config) -> anyhow::Result<Daemon> {
        let checkpoint_dir = config.state_dir.join("checkpoint");
        for dir in [&config.state_dir, &checkpoint_dir] {
            // 0750, like the spool's: checkpoints name peers and users.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the state directory {}: {e}; {}",
                        dir.display(),
                        state_dir_advice()
                    )
                })?;
        }
        let lock = lock_state_dir(&config.state_dir)?;
        let hostname = config
            .hostname
            .clone()
            .unwrap_or_else(crate::hostname::system_hostname);
        let mut trackers = BTreeMap::new();
        let mut renamed_from = BTreeSet::new();
        for source in &config.sources {
            let name = source.name();
            if trackers.contains_key(name) {
                bail!("two sources are named {name:?}; every source needs its own name");
            }
            let (tracked, previous) = restore(&checkpoint_dir, name, config, &hostname);
            renamed_from.extend(previous);
            trackers.insert(name.to_string(), tracked);
        }
        if !renamed_from.is_empty() {
            let previous: Vec<String> = renamed_from.into_iter().collect();
            warn!(
                "the hostname changed from {} to {hostname:?} since the checkpoint; new events carry the new observer.hostname and event ids built from it",
                previous.join(", ")
            );
        }
        // Bound before anything starts, so that a port in use is a clear stop.
        let listener = match &config.metrics {
            Some(settings) => Some(endpoint::bind(settings).await?),
            None => None,
        };
        let delivery =
            Delivery::start(&config.sinks, &config.state_dir).context("cannot start the sinks")?;
        let metrics = Arc::new(Metrics::new(config));
        metrics.watch_delivery(delivery.stats_handle());
        let endpoint = listener.map(|l| tokio::spawn(endpoint::serve(l, Arc::clone(&metrics))));

        let (tx, reports) = mpsc::channel::<Report>(16);
        let mut sources: Vec<JoinHandle<()>> = Vec::new();
        for source in &config.sources {
            let tx = tx.clone();
            let last = trackers
                .get(source.name())
                .and_then(|t| t.checkpoint.content_sha256.clone());
            sources.push(tokio::spawn(source.clone().run(last, tx)));
        }
        for log in &config.pluto_log {
            // Where the last run stopped reading, saved with what it read.
            let position = trackers
                .get(&log.pluto)
                .and_then(|t| t.checkpoint.tracker.pluto_log_position())
                .map(str::to_string);
            let stats = Arc::new(source::pluto_log::PlutoLogStats::default());
            metrics.watch_pluto_log(&log.name, Arc::clone(&stats));
            sources.push(tokio::spawn(source::pluto_log::run(
                log.clone(),
                position,
                stats,
                tx.clone(),
            )));
        }
        for audit in &config.audit {
            let stats = Arc::new(source::linux_audit::LinuxAuditStats::default());
            metrics.watch_linux_audit(&audit.name, Arc::clone(&stats));
            sources.push(tokio::spawn(source::linux_audit::run(
                audit.clone(),
                stats,
                tx.clone(),
            )));
        }
        drop(tx);

        info!(
            sources = config.sources.len(),
            sinks = config.sinks.len(),
            state_dir = %config.state_dir.display(),
            "swantrail started"
        );
        Ok(Daemon {
            _lock: lock,
            trackers,
            delivery,
            metrics,
            endpoint,
            sources,
            reports,
            grace: config.shutdown_grace,
            events_queued: 0,
        })
    }

    /// Take the sources' reports one at a time through the pipeline and
    /// answer `control`, until a stop is asked or every source stopped.
    /// A report whose events cannot be committed is held and retried
    /// before the next one; a stop lets the snapshot in progress finish
    /// within the grace time.
    async fn run(&mut self, control: &mut mpsc::Receiver<Request>) {
        let Daemon {
            trackers,
            delivery,
            metrics,
            reports,
            grace,
            events_queued,
            ..
        } = self;
        let grace = *grace;
        let mut ready = false;
        let mut last_status = String::new();
        // STATUS= follows deliveries and sink outages too, not only snapshots.
        let mut status_refresh = tokio::time::interval(std::time::Duration::from_secs(1));
        'running: loop {
            let report = tokio::select! {
                report = reports.recv() => report,
                _ = status_refresh.tick() => {
                    let status = status_line(trackers, delivery, *events_queued);
                    if status != last_status {
                        notify(&[NotifyState::Status(&status)]);
                        last_status = status;
                    }
                    continue;
                }
                request = control.recv() => {
                    if let Some(why) = answer(request, Some(delivery)) {
                        info!("{why}: draining and stopping");
                        break 'running;
                    }
                    continue;
                }
            };
            let Some(report) = report else {
                warn!("every source stopped; shutting down");
                break;
            };
            // A full spool (full_policy = "block") or a slow disk can hold the
            // pipeline here; signals and watchdog pings are still served, and a
            // stop abandons the report, which loses nothing: its events were not
            // checkpointed, so the next start finds them again.
            //
            // Events that cannot be spooled (a full or failing state disk) keep
            // their report: it is retried, with backoff, before the next one is
            // taken, so that the next diff is against what was reported, never
            // against a stale checkpoint (which turns a rekey into a deletion).
            metrics.report(&report);
            let mut failed_attempts: u64 = 0;
            loop {
                let handling = handle(trackers, delivery, metrics, &report);
                match until_finished(control, delivery, grace, handling).await {
                    Err((why, Some(Ok(queued)))) => {
                        info!("{why}: stopping after the snapshot in progress");
                        *events_queued += queued;
                        break 'running;
                    }
                    Err((why, _)) => {
                        info!("{why}: abandoning the snapshot in progress and stopping");
                        break 'running;
                    }
                    Ok(Ok(queued)) => {
                        if failed_attempts > 0 {
                            info!(source = %report.source, failed_attempts, events = queued,
                                "events queued again after {}; the pipeline goes on",
                                crate::counted(failed_attempts, "failed attempt", "failed attempts"));
                        }
                        *events_queued += queued;
                        break;
                    }
                    Ok(Err(e)) => {
                        failed_attempts += 1;
                        if failed_attempts == 1 {
                            error!(source = %report.source,
                                "cannot queue events: {e}; holding this snapshot and retrying it before the next one");
                            let status = format!("cannot queue events: {e}");
                            notify(&[NotifyState::Status(&status)]);
                            last_status = status;
                        }
                        let wait = QUEUE_RETRY.saturating_mul(failed_attempts.min(5) as u32);
                        if let Err(why) = until(control, delivery, tokio::time::sleep(wait)).await {
                            info!("{why}: abandoning the snapshot in progress and stopping");
                            break 'running;
                        }
                    }
                }
            }
            if !ready && trackers.values().all(|t| t.reported) {
                ready = true;
                notify(&[NotifyState::Ready]);
                info!("every source has looked once; ready");
            }
            let status = status_line(trackers, delivery, *events_queued);
            if status != last_status {
                notify(&[NotifyState::Status(&status)]);
                last_status = status;
            }
        }
    }

    /// Stop the sources, spool what a commit left unspooled, queue what is
    /// held for Linux audit records, drain the sinks within the grace time
    /// (a second stop request cuts that short), write the checkpoints and
    /// say so in one closing line. The lock goes last, with `self`.
    async fn shutdown(self, control: &mut mpsc::Receiver<Request>) {
        let Daemon {
            _lock,
            mut trackers,
            delivery,
            metrics,
            endpoint,
            sources,
            mut reports,
            grace,
            mut events_queued,
        } = self;
        notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
        // Reports still in the channel are dropped with the sources: they were
        // never diffed or checkpointed, so the next start looks again. pluto's
        // audit records among them are taken in first (they make no events by
        // themselves), so that what is held for them gets their times.
        for task in sources.iter().chain(&endpoint) {
            task.abort();
        }
        while let Ok(report) = reports.try_recv() {
            let Some(tracked) = trackers.get_mut(&report.source) else {
                continue;
            };
            match &report.observation {
                Observation::LinuxAudit(records) => tracked.ingest_linux_audit_records(records),
                Observation::PlutoLog { records, position } => {
                    tracked.ingest_pluto_log(records, position.clone());
                }
                _ => {}
            }
        }
        drop(reports);
        // A commit whose spooling the stop interrupted: its events go now, or
        // stay in the pending file for the next start.
        for (name, tracked) in trackers.iter_mut() {
            if tracked.unspooled.is_none() {
                continue;
            }
            let spooling = spool_unspooled(name, tracked, &delivery, &metrics);
            match tokio::time::timeout(grace, spooling).await {
                Ok(Ok(n)) => events_queued += n,
                Ok(Err(e)) => warn!(source = %name,
                    "stopping: cannot spool the events of the last snapshot: {e}; they stay in its pending file for the next start"),
                Err(_) => warn!(source = %name,
                    "stopping: the events of the last snapshot were not spooled within {grace:?}; they stay in its pending file for the next start"),
            }
        }
        events_queued += queue_held(&mut trackers, &delivery, &metrics, grace).await;
        let shutdown = delivery.shutdown(grace);
        tokio::pin!(shutdown);
        let mut left_in_spools = None;
        loop {
            tokio::select! {
                drained = &mut shutdown => {
                    match drained {
                        Ok(left) => left_in_spools = Some(left),
                        Err(e) => warn!("not every sink drained within {grace:?}: {e}; the rest stays in the spools"),
                    }
                    break;
                }
                request = control.recv() => {
                    // The sinks are shutting down: a reopen has nothing to do.
                    if let Some(why) = answer(request, None) {
                        warn!("second {why}: stopping without waiting for the sinks");
                        break;
                    }
                }
            }
        }
        // Whole files at a stop: the next start reads no journal.
        for (name, tracked) in &mut trackers {
            write_checkpoint(name, tracked, &metrics, true);
        }
        match left_in_spools {
            Some(left) => info!(
                events_queued,
                left_in_spools = left,
                "stopped; {} for the next start",
                crate::counted(
                    left,
                    "event stays in the spools",
                    "events stay in the spools"
                )
            ),
            None => info!(
                events_queued,
                "stopped; undelivered events stay in the spools for the next start"
            ),
        }
    }
}

/// At a stop, queue the events each tracker still holds for their audit
/// records (the settle window waits for a next poll that will not come),
/// with the times they have, and return how many. A daemon stopped for
/// good must not keep them back. They are committed like a snapshot's
/// events: a tracker whose commit cannot be written keeps them in its
/// checkpoint, and a commit whose events cannot be spooled within `grace`
/// leaves them in its pending file; either way the next start sends them
/// once, with the same content.
async fn queue_held(
    trackers: &mut BTreeMap<String, Tracked>,
    delivery: &Delivery,
    metrics: &Metrics,
    grace: std::time::Duration,
) -> u64 {
    let mut queued = 0;
    for (name, tracked) in trackers.iter_mut() {
        let tracker = &tracked.checkpoint.tracker;
        if !tracker.holds_events() && !tracker.holds_unfused_linux_audit_records() {
            continue;
        }
        let events = tracked
            .checkpoint
            .tracker
            .release_at_stop(crate::source::unix_now());
        if events.is_empty() {
            continue;
        }
        let count = events.len();
        let queueing = async {
            let earlier = spool_unspooled(name, tracked, delivery, metrics).await?;
            let mut pending = PendingEvents::begin(name, tracked)?;
            events.into_iter().for_each(|e| pending.add(e));
            commit(name, tracked, pending, metrics).await?;
            Ok::<u64, QueueError>(
                earlier + spool_unspooled(name, tracked, delivery, metrics).await?,
            )
        };
        match tokio::time::timeout(grace, queueing).await {
            Ok(Ok(n)) => {
                info!(source = %name, events = count,
                    "stopping: queued the events held for their audit records");
                queued += n;
            }
            Ok(Err(e)) => warn!(source = %name,
                "stopping: cannot queue the {count} events held for their audit records: {e}; the next start sends them (from the checkpoint or its pending file)"),
            Err(_) => warn!(source = %name,
                "stopping: the {count} events held for their audit records were not queued within {grace:?}; the next start sends them (from the checkpoint or its pending file)"),
        }
    }
    queued
}

/// The first wait before retrying a snapshot whose events could not be
/// spooled; later waits grow to five times this.
const QUEUE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Run `work` to completion while serving signals and watchdog pings;
/// `Err` names the signal that asked to stop first.
async fn until<T>(
    control: &mut mpsc::Receiver<Request>,
    delivery: &Delivery,
    work: impl std::future::Future<Output = T>,
) -> Result<T, &'static str> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Ok(done),
            request = control.recv() => {
                if let Some(why) = answer(request, Some(delivery)) {
                    return Err(why);
                }
            }
        }
    }
}

/// [`until`] for work that should not be cut short by a stop: the events
/// of a snapshot being committed and spooled. A stop lets it finish within
/// `grace` (a spool append cut halfway would be appended again at the next
/// start); `Err` names the signal, with the work's result if it finished.
async fn until_finished<T>(
    control: &mut mpsc::Receiver<Request>,
    delivery: &Delivery,
    grace: std::time::Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, (&'static str, Option<T>)> {
    tokio::pin!(work);
    let why = match until(control, delivery, &mut work).await {
        Ok(done) => return Ok(done),
        Err(why) => why,
    };
    Err((why, tokio::time::timeout(grace, work).await.ok()))
}

/// What the outside world asks of the daemon while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT (named): drain and exit.
    Stop(&'static str),
    /// SIGHUP: reopen output files (logrotate).
    Reopen,
    /// Time to tell systemd's watchdog we are alive.
    Ping,
}

/// Serve one request; `Some(why)` when it asks to stop (a closed control
/// stream does too). Without `delivery` (sinks shutting down) a reopen is moot.
fn answer(request: Option<Request>, delivery: Option<&Delivery>) -> Option<&'static str> {
    match request {
        None => Some("control stream closed"),
        Some(Request::Stop(why)) => Some(why),
        Some(Request::Reopen) => {
            if let Some(delivery) = delivery {
                info!("SIGHUP: reopening output files");
                delivery.reopen();
            }
            None
        }
        Some(Request::Ping) => {
            notify(&[NotifyState::Watchdog]);
            None
        }
    }
}

/// Signals and the systemd watchdog timer as a stream of [`Request`]s for
/// [`serve`]. Install it first, so that a SIGTERM during startup is a clean
/// stop rather than death; needs a tokio runtime.
pub fn signals() -> anyhow::Result<mpsc::Receiver<Request>> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    // Half of `WATCHDOG_USEC`, when systemd asked for pings.
    let mut watchdog = sd_notify::watchdog_enabled().map(|usec| tokio::time::interval(usec / 2));
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let ping = async {
                match watchdog.as_mut() {
                    Some(interval) => interval.tick().await,
                    None => std::future::pending().await,
                }
            };
            let request = tokio::select! {
                _ = sigterm.recv() => Request::Stop("SIGTERM"),
                _ = sigint.recv() => Request::Stop("SIGINT"),
                _ = sighup.recv() => Request::Reopen,
                _ = ping => Request::Ping,
            };
            if tx.send(request).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Why a report's events could not be queued; the report is held and
/// tried again.
#[derive(Debug, thiserror::Error)]
enum QueueError {
    /// The pending file or the checkpoint could not be written: nothing of
    /// the snapshot was handed out, and it is diffed again.
    #[error("{0}")]
    Commit(#[from] checkpoint::CheckpointError),
    /// A spool refused the events of a commit: they are kept and spooled
    /// again, as they are.
    #[error("{0}")]
    Spool(#[from] crate::sink::SinkError),
}

/// Feed one report through the pipeline; returns how many events it queued.
///
/// Events of an earlier commit that are not in every spool yet go first.
/// The tracker is then advanced on a copy that replaces the source's state
/// only once the commit is durable (pending file, then checkpoint): if that
/// fails (or the daemon stops meanwhile) nothing changed, and the caller
/// retries the same report, which gives the same events with the same ids.
async fn handle(
    trackers: &mut BTreeMap<String, Tracked>,
    delivery: &Delivery,
    metrics: &Metrics,
    report: &Report,
) -> Result<u64, QueueError> {
    let Some(tracked) = trackers.get_mut(&report.source) else {
        warn!(source = %report.source, "report from an unknown source ignored");
        return Ok(0);
    };
    let mut queued = spool_unspooled(&report.source, tracked, delivery, metrics).await?;
    if let Observation::LinuxAudit(records) = &report.observation {
        // No events yet: the tracker's next snapshot fuses them, and the
        // checkpoint then written holds whatever is still waiting.
        debug!(source = %report.source, records = records.len(), "audit records taken in");
        tracked.ingest_linux_audit_records(records);
        return Ok(queued);
    }
    if let Observation::PlutoLog { records, position } = &report.observation {
        // As audit records: fused by the next snapshot, and the position
        // is saved in the same checkpoint as their effect.
        debug!(source = %report.source, lines = records.len(), position = position.as_deref().unwrap_or(""),
            "pluto log lines taken in");
        let first = tracked.checkpoint.tracker.pluto_log_position().is_none();
        tracked.ingest_pluto_log(records, position.clone());
        if first && position.is_some() {
            // Where a new source began (the log's end): saved now, not at
            // the next snapshot, so that a daemon killed before that one
            // still reads on from here rather than from a later end.
            write_checkpoint(&report.source, tracked, metrics, false);
        }
        return Ok(queued);
    }
    tracked.reported = true;
    // The tracker is advanced in place; a commit that fails is undone by
    // reading the saved state back (`Tracked::undo`), never by keeping a
    // copy of a tracker that can hold a gateway's 150,000 records.
    let name = &report.source;
    match &report.observation {
        Observation::Waiting | Observation::LinuxAudit(_) | Observation::PlutoLog { .. } => {
            return Ok(queued);
        }
        Observation::Snapshot { listing, .. } => {
            if let Some(reason) = &listing.incomplete {
                warn!(source = %name, "incomplete snapshot not diffed: {reason}");
                return Ok(queued);
            }
        }
        Observation::Unreachable { .. } => {}
    }
    // The events go into the pending file as the tracker makes them.
    let mut pending = PendingEvents::begin(name, tracked)?;
    match &report.observation {
        Observation::Snapshot {
            listing,
            content_sha256,
        } => {
            tracked.checkpoint.taken_at = listing.taken_at;
            tracked.checkpoint.content_sha256 = content_sha256.clone();
            tracked.unreachable = false;
            tracked.tunnels_up = listing.count_tunnels_up();
            note_clock(name, tracked, listing.taken_at);
            let rest = tracked
                .checkpoint
                .tracker
                .observe_spilling(listing, &mut |e| pending.add(e));
            rest.into_iter().for_each(|e| pending.add(e));
            debug!(source = %name, taken_at = listing.taken_at, events = pending.writer.count(),
                "snapshot diffed");
        }
        Observation::Unreachable { at, reason } => {
            tracked.unreachable = true;
            note_clock(name, tracked, Some(*at));
            let events = tracked.checkpoint.tracker.observe_unreachable(*at, reason);
            events.into_iter().for_each(|e| pending.add(e));
        }
        Observation::Waiting | Observation::LinuxAudit(_) | Observation::PlutoLog { .. } => {}
    }
    if pending.writer.count() == 0 && pending.failed.is_none() {
        pending.writer.abandon();
        write_checkpoint(name, tracked, metrics, false);
        return Ok(queued);
    }
    commit(name, tracked, pending, metrics).await?;
    queued += spool_unspooled(name, tracked, delivery, metrics).await?;
    Ok(queued)
}

/// A commit's events being written into its pending file as they are made
/// (never all in memory), with their actions counted for the metrics. A
/// write that fails is kept to fail the commit (which undoes the tracker);
/// the events after it are dropped, as the whole commit is.
struct PendingEvents {
    writer: checkpoint::PendingWriter,
    actions: BTreeMap<String, u64>,
    failed: Option<checkpoint::CheckpointError>,
    source: String,
}

impl PendingEvents {
    /// The pending file of `tracked`'s next commit.
    fn begin(name: &str, tracked: &Tracked) -> Result<PendingEvents, checkpoint::CheckpointError> {
        let path = checkpoint::pending_path(&tracked.path);
        Ok(PendingEvents {
            writer: checkpoint::PendingWriter::create(&path, name, tracked.checkpoint.commit + 1)?,
            actions: BTreeMap::new(),
            failed: None,
            source: name.to_string(),
        })
    }

    /// Encode `event` into the file; the event is dropped.
    fn add(&mut self, event: crate::event::Event) {
        debug!(source = %self.source, id = event.id(), action = event.action(), "computed");
        if self.failed.is_some() {
            return;
        }
        *self.actions.entry(event.action().to_string()).or_default() += 1;
        if let Err(e) = self.writer.write_line(&event.to_json_line()) {
            self.failed = Some(e);
        }
    }
}

/// Make a snapshot's events and the tracker state after them durable: the
/// pending file first (each event encoded straight into it and dropped, so
/// a big commit is never held as text), then the checkpoint save that
/// counts it; only then are the lines handed out (from the pending file,
/// by [`spool_unspooled`]). The tracker was already advanced in place: on
/// failure it is put back as the last save left it ([`Tracked::undo`]), so
/// nothing changed.
async fn commit(
    name: &str,
    tracked: &mut Tracked,
    pending: PendingEvents,
    metrics: &Metrics,
) -> Result<(), checkpoint::CheckpointError> {
    let PendingEvents {
        writer,
        actions,
        failed,
        ..
    } = pending;
    let stored = match failed {
        Some(e) => {
            writer.abandon();
            Err(e)
        }
        None => writer.finish(),
    };
    let saved = stored.and_then(|count| {
        tracked.checkpoint.commit += 1;
        tracked
            .store
            .save(&mut tracked.checkpoint, false)
            .map(|_| count)
    });
    let count = match saved {
        Ok(count) => count,
        Err(e) => {
            // Best effort: a pending file of a commit that never happened is
            // ignored at the next start anyway.
            let _ = checkpoint::remove_pending(&checkpoint::pending_path(&tracked.path));
            tracked.undo(name);
            return Err(e);
        }
    };
    tracked.unspooled = Some(Unspooled {
        count,
        spooled: 0,
        actions,
    });
    checkpoint_written(name, tracked, metrics);
    Ok(())
}

/// Append the events of the checkpoint's commit to every spool, from its
/// pending file a batch at a time, then remove the file; returns how many
/// were queued. On failure they stay, and the next try goes on from the
/// first batch not in every spool (a batch some spools took is appended to
/// them again, identical).
async fn spool_unspooled(
    name: &str,
    tracked: &mut Tracked,
    delivery: &Delivery,
    metrics: &Metrics,
) -> Result<u64, crate::sink::SinkError> {
    let Some(events) = &mut tracked.unspooled else {
        return Ok(0);
    };
    let pending = checkpoint::pending_path(&tracked.path);
    match checkpoint::open_pending(&pending, name) {
        Ok(Some(mut reader)) if reader.commit == tracked.checkpoint.commit => loop {
            // Past the lines an earlier try spooled (a no-op once there).
            let batch = match reader
                .skip(events.spooled)
                .and_then(|()| reader.next_batch(SPOOL_BATCH_BYTES))
            {
                Ok(batch) => batch,
                Err(e) => {
                    // Damage, not a crash (the file was replaced atomically):
                    // what it still held cannot be read, however often tried.
                    error!(source = %name, "{e}; the events of the last commit after the first {} may not be in the spools", events.spooled);
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            delivery.enqueue(&batch).await?;
            events.spooled += batch.len();
        },
        Ok(_) => {
            warn!(source = %name, "the pending file of the last commit is gone; its events may not all be in the spools");
        }
        Err(e) => {
            error!(source = %name, "{e}; the events of the last commit may not all be in the spools");
        }
    }
    metrics.events_queued(name, events.actions.iter().map(|(a, n)| (a.as_str(), *n)));
    let count = events.count as u64;
    tracked.unspooled = None;
    if let Err(e) = tokio::task::spawn_blocking(move || checkpoint::remove_pending(&pending))
        .await
        .unwrap_or(Ok(()))
    {
        // Harmless but for repeats: the next start spools them once more.
        warn!(source = %name, "{e}; its events are spooled again at the next start");
    }
    Ok(count)
}

/// The `event.action` of an encoded event, for the queued-events counter.
fn action_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.pointer("/event/action")
                .or_else(|| v.get("event.action"))
                .and_then(|a| a.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Say once when a source's clock goes behind the tracker's (an NTP step,
/// a dump copied with its old mtime), and once when it has caught up. The
/// tracker itself never lets its clock run backwards.
fn note_clock(source: &str, tracked: &mut Tracked, at: Option<i64>) {
    let (Some(at), Some(clock)) = (at, tracked.checkpoint.tracker.clock()) else {
        return;
    };
    if at < clock && !tracked.clock_behind {
        warn!(source = %source, behind_s = clock - at,
            "the snapshot's time is {}s before the last one's; events keep the last time until it catches up",
            clock - at);
        tracked.clock_behind = true;
    } else if at >= clock && tracked.clock_behind {
        info!(source = %source, "the snapshot time has caught up with the tracker's clock");
        tracked.clock_behind = false;
    }
}

/// Note a checkpoint that reached the disk, by a commit or a plain save:
/// the audit records it now holds, the metric, and one line when writes
/// work again.
fn checkpoint_written(name: &str, tracked: &mut Tracked, metrics: &Metrics) {
    tracked.linux_audit_since_save.clear();
    tracked.pluto_log_since_save.clear();
    tracked.pluto_log_position_since_save = None;
    metrics.checkpoint_current(name);
    if tracked.checkpoint_failures > 0 {
        info!(source = %name, failed_writes = tracked.checkpoint_failures,
            "checkpoint written again after {}",
            crate::counted(tracked.checkpoint_failures, "failed write", "failed writes"));
        tracked.checkpoint_failures = 0;
    }
}

/// Save a source's checkpoint: what changed since the last save, or the
/// whole state when `whole` (at a stop) or when the journal has grown.
fn write_checkpoint(name: &str, tracked: &mut Tracked, metrics: &Metrics, whole: bool) {
    let failure = match tracked.store.save(&mut tracked.checkpoint, whole) {
        Ok(saved) => {
            debug!(source = %name, ?saved, "checkpoint saved");
            checkpoint_written(name, tracked, metrics);
            return;
        }
        Err(e) => e.to_string(),
    };
    tracked.checkpoint_failures += 1;
    if tracked.checkpoint_failures == 1 {
        error!(source = %name,
            "{failure}; tracking goes on in memory, and a snapshot with events waits until its checkpoint can be written");
    }
}

impl Tracked {
    /// Take in Linux audit records, keeping them until the next save in
    /// case an undo reads back a state from before them.
    fn ingest_linux_audit_records(&mut self, records: &[crate::linux_audit::record::PlutoRecord]) {
        self.checkpoint.tracker.ingest_linux_audit_records(records);
        // Bounded: past this many, an undo loses the oldest of them (the
        // tracker itself bounds what it holds anyway).
        const KEPT: usize = 100_000;
        let kept = &mut self.linux_audit_since_save;
        kept.extend_from_slice(records);
        kept.drain(..kept.len().saturating_sub(KEPT));
    }

    /// Take in lines of pluto's log and where their reader stood after
    /// them, keeping both until the next save in case an undo reads back a
    /// state from before them.
    fn ingest_pluto_log(
        &mut self,
        records: &[crate::pluto_log::PlutoLogRecord],
        position: Option<String>,
    ) {
        self.checkpoint
            .tracker
            .ingest_pluto_log(records, position.clone());
        // Bounded as the audit records are.
        const KEPT: usize = 100_000;
        let kept = &mut self.pluto_log_since_save;
        kept.extend_from_slice(records);
        kept.drain(..kept.len().saturating_sub(KEPT));
        if position.is_some() {
            self.pluto_log_position_since_save = position;
        }
    }

    /// Put the tracker back as the last save left it: a snapshot whose
    /// commit failed never happened. The saved state is read back from the
    /// checkpoint file and its journal (a failing disk still reads); if even
    /// that fails, the tracker starts afresh, as a restart would.
    fn undo(&mut self, name: &str) {
        let (checkpoint, store) = match checkpoint::Store::load(&self.path, name) {
            Ok((Some(checkpoint), store, _)) => (checkpoint, store),
            Ok((None, store, _)) => (
                Checkpoint::new(name, Tracker::new(self.configured.clone())),
                store,
            ),
            Err(e) => {
                warn!(source = %name, "{e}; undoing the failed commit by starting afresh");
                (
                    Checkpoint::new(name, Tracker::new(self.configured.clone())),
                    checkpoint::Store::new(&self.path, name),
                )
            }
        };
        self.checkpoint = checkpoint;
        self.store = store;
        self.checkpoint.tracker.reconfigure(self.configured.clone());
        self.checkpoint
            .tracker
            .expect_linux_audit_records(self.expects_linux_audit);
        let records = std::mem::take(&mut self.linux_audit_since_save);
        self.checkpoint.tracker.ingest_linux_audit_records(&records);
        self.linux_audit_since_save = records;
        let lines = std::mem::take(&mut self.pluto_log_since_save);
        let position = self.pluto_log_position_since_save.clone();
        self.checkpoint.tracker.ingest_pluto_log(&lines, position);
        self.pluto_log_since_save = lines;
    }
}

/// A source's tracker from its checkpoint, or a new one. An unreadable
/// checkpoint is set aside (renamed `.bad`) rather than blocking the start:
/// a fresh tracker re-announces what is up, it loses nothing.
/// A source's tracker from its checkpoint (or fresh), running with the
/// configured settings: the configuration wins over what the checkpoint
/// saved. Also returns the checkpoint's hostname (quoted) when it differs.
fn restore(
    directory: &Path,
    name: &str,
    config: &Config,
    hostname: &str,
) -> (Tracked, Option<String>) {
    let path = checkpoint::path_for(directory, name);
    let configured = TrackerConfig {
        hostname: hostname.to_string(),
        observer_version: None,
        stalled_after_s: config.tracker.stalled_after.as_secs() as i64,
        traffic_interval_s: config.tracker.traffic_interval.map(|d| d.as_secs() as i64),
    };
    let fresh = || Tracker::new(configured.clone());
    let mut previous = None;
    let mut store = checkpoint::Store::new(&path, name);
    let checkpoint = match checkpoint::Store::load(&path, name) {
        Ok((Some(mut checkpoint), loaded, warning)) => {
            store = loaded;
            if let Some(warning) = warning {
                warn!(source = %name, "{warning}");
            }
            info!(source = %name, path = %path.display(), "resuming from the checkpoint");
            let saved = &checkpoint.tracker.config().hostname;
            if saved != hostname {
                previous = Some(format!("{saved:?}"));
            }
            checkpoint.tracker.reconfigure(configured.clone());
            checkpoint
        }
        Ok((None, ..)) => Checkpoint::new(name, fresh()),
        Err(e) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".bad");
            let aside = PathBuf::from(aside);
            warn!(source = %name, "{e}; moved to {} and starting afresh", aside.display());
            if let Err(e) = std::fs::rename(&path, &aside) {
                warn!(source = %name, "cannot move it aside: {e}");
            }
            Checkpoint::new(name, fresh())
        }
    };
    let mut checkpoint = checkpoint;
    // A command source polls every interval, so an observation held for
    // its records is released at the next poll even before the first
    // record came; a file source may not look again for a long time.
    let polled = config
        .sources
        .iter()
        .any(|s| s.name() == name && s.interval().is_some());
    let audited = config.audit.iter().any(|a| a.pluto == name)
        || config.pluto_log.iter().any(|l| l.pluto == name);
    checkpoint
        .tracker
        .expect_linux_audit_records(audited && polled);
    let unspooled = restore_pending(&path, name, checkpoint.commit);
    let tracked = Tracked {
        checkpoint,
        path,
        store,
        configured,
        expects_linux_audit: audited && polled,
        linux_audit_since_save: Vec::new(),
        pluto_log_since_save: Vec::new(),
        pluto_log_position_since_save: None,
        reported: false,
        tunnels_up: 0,
        unreachable: false,
        checkpoint_failures: 0,
        clock_behind: false,
        unspooled,
    };
    (tracked, previous)
}

/// The events of the checkpoint's last commit that may not have reached
/// every spool before the last stop, from its pending file; a pending file
/// of another commit never happened, and is ignored.
fn restore_pending(path: &Path, name: &str, commit: u64) -> Option<Unspooled> {
    let pending = checkpoint::pending_path(path);
    match checkpoint::open_pending(&pending, name) {
        Ok(Some(mut p)) if p.commit == commit => {
            info!(source = %name, events = p.events,
                "events of the last commit may not be in every spool; spooling them again");
            // Their actions, for the counters, read a batch at a time.
            let mut actions: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                match p.next_batch(SPOOL_BATCH_BYTES) {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => {
                        for line in &batch {
                            *actions.entry(action_of(line)).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        error!(source = %name, "{e}; the events it held may not all be in the spools");
                        return None;
                    }
                }
            }
            Some(Unspooled {
                count: p.events,
                spooled: 0,
                actions,
            })
        }
        Ok(Some(p)) => {
            debug!(source = %name, pending = p.commit, checkpoint = commit,
                "a pending file of a commit that never happened is ignored");
            None
        }
        Ok(None) => None,
        Err(e) => {
            // Replaced atomically, so this is damage: say it, lose nothing
            // more than the file already lost.
            error!(source = %name, "{e}; the events it held may not all be in the spools");
            None
        }
    }
}

/// The one-line summary systemd shows in `systemctl status`.
fn status_line(trackers: &BTreeMap<String, Tracked>, delivery: &Delivery, queued: u64) -> String {
    let tunnels: usize = trackers.values().map(|t| t.tunnels_up).sum();
    let unreachable: Vec<&str> = trackers
        .iter()
        .filter(|(_, t)| t.unreachable)
        .map(|(n, _)| n.as_str())
        .collect();
    let stats = delivery.stats();
    let pending: u64 = stats.iter().map(|s| s.pending_events).sum();
    let mut line =
        format!("{tunnels} tunnels up, {queued} events since start, {pending} pending in spools");
    for failing in stats.iter().filter(|s| s.failing) {
        line.push_str(&format!("; sink {} failing", failing.name));
    }
    if !unreachable.is_empty() {
        line.push_str(&format!(
            "; pluto unreachable via {}",
            unreachable.join(", ")
        ));
    }
    line
}

/// Tell systemd something; outside systemd (no `NOTIFY_SOCKET`) nothing happens.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!("sd_notify failed: {e}");
    }
}

/// What to do about a state directory that cannot be created or written:
/// running as root only helps someone who is not root already; root is
/// refused by the file system itself (read-only, not a directory), and
/// only another directory helps.
pub(crate) fn state_dir_advice() -> &'static str {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        "choose another with --state-dir DIR or `state_dir` in the config"
    } else {
        "run as root, or choose another with --state-dir DIR or `state_dir` in the config"
    }
}

/// Hold an exclusive lock on the state directory for the daemon's life: two
/// daemons appending to the same spools and checkpoints would corrupt them.
/// The kernel drops the lock when the process dies, however it dies.
fn lock_state_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o640)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another swantrail (pid {}) already runs with the state directory {}; stop it, \
                 or give this one its own --state-dir",
                holder.trim(),
                dir.display()
            );
        }
        bail!("cannot lock {}: {error}", path.display());
    }
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .with_context(|| format!("cannot write the lock file {}", path.display()))?;
    Ok(file)
}
