//! The daemon's counters and the gateway's gauges, for `/metrics`, and the
//! verdict of `/health`.
//!
//! The daemon loop calls the hooks here (a poll came back, events were
//! queued, a checkpoint was written); sink counters are read from the
//! spools' own counters when a scrape asks, so nothing is counted twice. The
//! gateway gauges are the last complete snapshot of each source, seen
//! through the same definitions `show` and the STATUS line use
//! ([`Snapshot::tunnels_up`], [`crate::show::tunnel_table`]), so the three
//! views never disagree. This module must never block the daemon loop (every
//! hook is a few atomic writes or a short lock) and never export a series
//! per tunnel beyond `max_tunnel_series` per source.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::listing::{Listing, Seen};
use crate::sink::DeliveryStats;
use crate::snapshot::SaKind;
use crate::source::linux_audit::LinuxAuditStats;
use crate::source::pluto_log::PlutoLogStats;
use crate::source::{Observation, Report};

/// Label pairs of one series.
type Labels = Vec<(String, String)>;
/// A gauge that holds seconds or bytes as a float.
type FloatGauge = Gauge<f64, AtomicU64>;

/// How one look of a source ended, the `outcome` label of `swantrail_polls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollOutcome {
    /// A complete snapshot, diffed.
    Snapshot,
    /// A snapshot that was cut short or not status output; not diffed.
    Incomplete,
    /// pluto could not be asked (not running, command failed or timed out).
    Unreachable,
    /// The source looked and had nothing new (a watched file absent or unchanged).
    Waiting,
}

impl PollOutcome {
    fn word(self) -> &'static str {
        match self {
            PollOutcome::Snapshot => "snapshot",
            PollOutcome::Incomplete => "incomplete",
            PollOutcome::Unreachable => "unreachable",
            PollOutcome::Waiting => "waiting",
        }
    }
}

/// What `/health` needs to know about one source.
struct SourceHealth {
    /// A command source must answer within 3 of these; a file source has no
    /// schedule (it reports when its dump changes), so looking once suffices.
    interval: Option<Duration>,
    /// The last look that gave a usable answer.
    last_success: Option<Instant>,
    /// Why the last look failed, while it is the latest.
    failure: Option<String>,
    /// When the checkpoint was last known to match the tracker.
    checkpoint_current: Option<Instant>,
}

/// The gauges of one source's last complete snapshot.
#[derive(Default)]
struct Gateway {
    tunnels_up: i64,
    half_open: i64,
    ike_sas: BTreeMap<String, i64>,
    child_sas: BTreeMap<String, i64>,
    connections: BTreeMap<String, i64>,
    tunnels: Vec<TunnelSeries>,
    tunnels_left_out: i64,
    connections_left_out: i64,
}

/// One up tunnel's series.
struct TunnelSeries {
    connection: String,
    instance: String,
    peer: String,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    up_since: Option<u64>,
}

/// Every metric the daemon exports, and the state `/health` reads.
pub(crate) struct Metrics {
    registry: Registry,
    /// At most this many per-tunnel series per source; `None` when no
    /// endpoint serves the gauges, so none are computed.
    max_tunnel_series: Option<usize>,
    started: Instant,
    sources: Mutex<BTreeMap<String, SourceHealth>>,
    gateways: Mutex<BTreeMap<String, Gateway>>,
    delivery: Mutex<Option<DeliveryStats>>,
    polls: Family<Labels, Counter>,
    diagnostics: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    last_success: Family<Labels, FloatGauge>,
    checkpoint_age: Family<Labels, FloatGauge>,
    source_up: Family<Labels, Gauge>,
    spool_events: Family<Labels, Gauge>,
    spool_bytes: Family<Labels, Gauge>,
    delivered: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    quarantined: Family<Labels, Counter>,
    sink_failing: Family<Labels, Gauge>,
    tunnels_up: Family<Labels, Gauge>,
    half_open: Family<Labels, Gauge>,
    ike_sas: Family<Labels, Gauge>,
    child_sas: Family<Labels, Gauge>,
    connection_tunnels_up: Family<Labels, Gauge>,
    tunnel_in: Family<Labels, Gauge>,
    tunnel_out: Family<Labels, Gauge>,
    tunnel_up_since: Family<Labels, Gauge>,
    left_out: Family<Labels, Gauge>,
    audit: Mutex<Vec<(String, Arc<LinuxAuditStats>)>>,
    audit_records: Family<Labels, Counter>,
    audit_overruns: Family<Labels, Counter>,
    audit_dropped: Family<Labels, Counter>,
    audit_unreadable: Family<Labels, Counter>,
    audit_other_pluto: Family<Labels, Counter>,
    audit_kernel_lost: Family<Labels, Gauge>,
    audit_reading: Family<Labels, Gauge>,
    pluto_log: Mutex<Vec<(String, Arc<PlutoLogStats>)>>,
    pluto_log_lines: Family<Labels, Counter>,
    pluto_log_cut: Family<Labels, Counter>,
    pluto_log_unreadable: Family<Labels, Counter>,
    pluto_log_reading: Family<Labels, Gauge>,
}

/// A label set from pairs.
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    /// The metrics of a daemon with this configuration (its sources decide
    /// what `/health` waits for).
    pub(crate) fn new(config: &Config) -> Metrics {
        let mut registry = Registry::default();
        macro_rules! metric {
            ($name:literal, $help:literal) => {{
                let family = Family::default();
                registry.register($name, $help, family.clone());
                family
            }};
        }
        Metrics {
            max_tunnel_series: config.metrics.as_ref().map(|m| m.max_tunnel_series),
            started: Instant::now(),
            sources: Mutex::new(
                config
                    .sources
                    .iter()
                    .map(|s| {
                        let interval = s.interval();
                        let health = SourceHealth {
                            interval,
                            last_success: None,
                            failure: None,
                            checkpoint_current: None,
                        };
                        (s.name().to_string(), health)
                    })
                    .collect(),
            ),
            gateways: Mutex::new(BTreeMap::new()),
            delivery: Mutex::new(None),
            audit: Mutex::new(Vec::new()),
            audit_records: metric!(
                "swantrail_audit_records",
                "pluto audit records read, by audit source"
            ),
            audit_overruns: metric!(
                "swantrail_audit_overruns",
                "Audit socket reads that failed with ENOBUFS: the kernel dropped records for this reader"
            ),
            audit_dropped: metric!(
                "swantrail_audit_queue_dropped",
                "pluto audit records dropped because the daemon's in-memory queue was full"
            ),
            audit_unreadable: metric!(
                "swantrail_audit_unreadable",
                "Lines that claimed to be pluto audit records but could not be read"
            ),
            audit_other_pluto: metric!(
                "swantrail_audit_other_pluto",
                "Records of another pluto on the host (not the pid in the source's pid_file), dropped"
            ),
            audit_kernel_lost: metric!(
                "swantrail_audit_kernel_lost",
                "The kernel's own lost-record counter (auditctl -s), read over netlink"
            ),
            audit_reading: metric!(
                "swantrail_audit_reading",
                "1 while an audit source is open and reading, 0 while it falls back to snapshots alone"
            ),
            pluto_log: Mutex::new(Vec::new()),
            pluto_log_lines: metric!(
                "swantrail_pluto_log_lines",
                "Lines of pluto's own log read, by pluto-log source"
            ),
            pluto_log_cut: metric!(
                "swantrail_pluto_log_cut",
                "Lines of pluto's log longer than the source keeps, cut"
            ),
            pluto_log_unreadable: metric!(
                "swantrail_pluto_log_unreadable",
                "journalctl lines that were no journal entry of pluto, skipped"
            ),
            pluto_log_reading: metric!(
                "swantrail_pluto_log_reading",
                "1 while a pluto-log source is open and reading, 0 while it falls back to snapshots alone"
            ),
            polls: metric!(
                "swantrail_polls",
                "Looks at pluto by source and outcome (snapshot, incomplete, unreachable, waiting)"
            ),
            diagnostics: metric!(
                "swantrail_parse_diagnostics",
                "Lines of complete snapshots the parser did not recognise (skipped; `swantrail parse` lists them)"
            ),
            events: metric!(
                "swantrail_events",
                "Events queued to the sinks, by source and event.action"
            ),
            last_success: metric!(
                "swantrail_last_successful_poll_timestamp_seconds",
                "When each source last gave a usable answer, in Unix seconds"
            ),
            checkpoint_age: metric!(
                "swantrail_checkpoint_age_seconds",
                "Seconds since each source's tracker checkpoint was last known to be current"
            ),
            source_up: metric!(
                "swantrail_source_up",
                "1 when the source's last look gave a usable answer, 0 when pluto was unreachable or the dump unusable"
            ),
            spool_events: metric!(
                "swantrail_spool_events",
                "Events in each sink's spool not yet delivered"
            ),
            spool_bytes: metric!(
                "swantrail_spool_bytes",
                "Bytes in each sink's spool not yet delivered"
            ),
            delivered: metric!(
                "swantrail_sink_delivered_events",
                "Events each sink's destination accepted since start"
            ),
            retried: metric!(
                "swantrail_sink_retried_events",
                "Events each sink sent again after a failed attempt, once per retry"
            ),
            dead_lettered: metric!(
                "swantrail_sink_dead_lettered_events",
                "Events a destination rejected for good, written to the sink's dead-letter file"
            ),
            dropped: metric!(
                "swantrail_sink_dropped_events",
                "Events deleted unsent (full spool with drop-oldest)"
            ),
            quarantined: metric!(
                "swantrail_spool_quarantined_lines",
                "Damaged lines (not a complete JSON value) moved from each sink's spool to its quarantine file"
            ),
            sink_failing: metric!(
                "swantrail_sink_failing",
                "1 while the sink's last delivery attempt failed and it is retrying"
            ),
            tunnels_up: metric!(
                "swantrail_tunnels_up",
                "Connection instances with an established Child SA in the source's last snapshot"
            ),
            half_open: metric!(
                "swantrail_half_open_negotiations",
                "IKE SAs not yet established in the last snapshot"
            ),
            ike_sas: metric!(
                "swantrail_ike_sas",
                "IKE SAs in the last snapshot, by pluto's state name"
            ),
            child_sas: metric!(
                "swantrail_child_sas",
                "Child (IPsec) SAs in the last snapshot, by pluto's state name"
            ),
            connection_tunnels_up: metric!(
                "swantrail_connection_tunnels_up",
                "Up tunnels of each connection the last snapshot listed (0: loaded but down); capped by max_tunnel_series"
            ),
            tunnel_in: metric!(
                "swantrail_tunnel_in_bytes",
                "Bytes received through each up tunnel's newest Child SA; capped by max_tunnel_series"
            ),
            tunnel_out: metric!(
                "swantrail_tunnel_out_bytes",
                "Bytes sent through each up tunnel's newest Child SA; capped by max_tunnel_series"
            ),
            tunnel_up_since: metric!(
                "swantrail_tunnel_up_since_timestamp_seconds",
                "When each up tunnel's newest Child SA was added to the kernel (trafficstatus add_time), Unix seconds"
            ),
            left_out: metric!(
                "swantrail_tunnel_series_left_out",
                "Tunnels (kind=tunnel) and connections (kind=connection) of the last snapshot without their own series because of max_tunnel_series"
            ),
            registry,
        }
    }

    /// Read a pluto-log source's counters at every scrape.
    pub(crate) fn watch_pluto_log(&self, name: &str, stats: Arc<PlutoLogStats>) {
        lock(&self.pluto_log).push((name.to_string(), stats));
    }

    /// Read an audit source's counters at every scrape.
    pub(crate) fn watch_linux_audit(&self, name: &str, stats: Arc<LinuxAuditStats>) {
        lock(&self.audit).push((name.to_string(), stats));
    }

    /// Read sink counters from these spools at every scrape.
    pub(crate) fn watch_delivery(&self, delivery: DeliveryStats) {
        *lock(&self.delivery) = Some(delivery);
    }

    /// A source's report arrived: count the look and, for a complete
    /// snapshot, take its diagnostics and gateway gauges. Called once per
    /// report, before the pipeline handles it (and maybe retries it).
    pub(crate) fn report(&self, report: &Report) {
        match &report.observation {
            Observation::Snapshot { listing, .. } => match &listing.incomplete {
                Some(why) => self.poll(&report.source, PollOutcome::Incomplete, Some(why)),
                None => {
                    self.poll(&report.source, PollOutcome::Snapshot, None);
                    self.snapshot(&report.source, listing);
                }
            },
            Observation::Unreachable { reason, .. } => {
                self.poll(&report.source, PollOutcome::Unreachable, Some(reason));
            }
            Observation::Waiting => self.poll(&report.source, PollOutcome::Waiting, None),
            // Counted by the audit source itself (`watch_linux_audit`).
            Observation::LinuxAudit(_) | Observation::PlutoLog { .. } => {}
        }
    }

    /// One look of `source` came back with `outcome` (`why` when it failed).
    fn poll(&self, source: &str, outcome: PollOutcome, why: Option<&str>) {
        self.polls
            .get_or_create(&labels(&[("source", source), ("outcome", outcome.word())]))
            .inc();
        let mut sources = lock(&self.sources);
        let Some(health) = sources.get_mut(source) else {
            return;
        };
        let usable = match outcome {
            PollOutcome::Snapshot => true,
            PollOutcome::Waiting => health.interval.is_none(),
            PollOutcome::Incomplete | PollOutcome::Unreachable => false,
        };
        let source_labels = labels(&[("source", source)]);
        if usable {
            health.last_success = Some(Instant::now());
            health.failure = None;
            self.last_success
                .get_or_create(&source_labels)
                .set(unix_now());
            self.source_up.get_or_create(&source_labels).set(1);
        } else if outcome != PollOutcome::Waiting {
            health.failure = Some(format!(
                "{}: {}",
                outcome.word(),
                why.unwrap_or("no usable answer")
            ));
            self.source_up.get_or_create(&source_labels).set(0);
        }
    }

    /// Events of `source` reached every spool.
    pub(crate) fn events_queued<'a>(
        &self,
        source: &str,
        actions: impl Iterator<Item = (&'a str, u64)>,
    ) {
        for (action, count) in actions {
            self.events
                .get_or_create(&labels(&[("source", source), ("action", action)]))
                .inc_by(count);
        }
    }

    /// `source`'s checkpoint matches its tracker (written, or unchanged).
    pub(crate) fn checkpoint_current(&self, source: &str) {
        if let Some(health) = lock(&self.sources).get_mut(source) {
            health.checkpoint_current = Some(Instant::now());
        }
    }

    /// A complete snapshot of `source`: its diagnostics, and the gateway
    /// gauges it replaces.
    fn snapshot(&self, source: &str, listing: &Listing) {
        self.diagnostics
            .get_or_create(&labels(&[("source", source)]))
            .inc_by(listing.diagnostics);
        // The gauges cost a pass over every SA of the snapshot; without an
        // endpoint to serve them (a 50,000-tunnel gateway), skip it.
        let Some(cap) = self.max_tunnel_series else {
            return;
        };
        let gateway = gateway_of(listing, cap);
        let mut gateways = lock(&self.gateways);
        gateways.insert(source.to_string(), gateway);
        self.publish(&gateways);
    }

    /// Rebuild the gateway families from every source's last snapshot, so
    /// that a tunnel gone or an SA state no longer held leaves no stale series.
    fn publish(&self, gateways: &BTreeMap<String, Gateway>) {
        for family in [
            &self.tunnels_up,
            &self.half_open,
            &self.ike_sas,
            &self.child_sas,
            &self.connection_tunnels_up,
            &self.tunnel_in,
            &self.tunnel_out,
            &self.tunnel_up_since,
            &self.left_out,
        ] {
            family.clear();
        }
        for (source, g) in gateways {
            let source_labels = labels(&[("source", source)]);
            self.tunnels_up
                .get_or_create(&source_labels)
                .set(g.tunnels_up);
            self.half_open
                .get_or_create(&source_labels)
                .set(g.half_open);
            for (kind, n) in [
                ("tunnel", g.tunnels_left_out),
                ("connection", g.connections_left_out),
            ] {
                self.left_out
                    .get_or_create(&labels(&[("source", source), ("kind", kind)]))
                    .set(n);
            }
            for (state, n) in &g.ike_sas {
                self.ike_sas
                    .get_or_create(&labels(&[("source", source), ("state", state)]))
                    .set(*n);
            }
            for (state, n) in &g.child_sas {
                self.child_sas
                    .get_or_create(&labels(&[("source", source), ("state", state)]))
                    .set(*n);
            }
            for (connection, n) in &g.connections {
                self.connection_tunnels_up
                    .get_or_create(&labels(&[("source", source), ("connection", connection)]))
                    .set(*n);
            }
            for t in &g.tunnels {
                let series = labels(&[
                    ("source", source),
                    ("connection", &t.connection),
                    ("connection_instance", &t.instance),
                    ("peer", &t.peer),
                ]);
                let gauge = |family: &Family<Labels, Gauge>, value: Option<u64>| {
                    if let Some(value) = value {
                        family
                            .get_or_create(&series)
                            .set(i64::try_from(value).unwrap_or(i64::MAX));
                    }
                };
                gauge(&self.tunnel_in, t.bytes_in);
                gauge(&self.tunnel_out, t.bytes_out);
                gauge(&self.tunnel_up_since, t.up_since);
            }
        }
    }

    /// The exposition for `/metrics`, with the sink counters and the
    /// checkpoint ages read now.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        if let Some(delivery) = lock(&self.delivery).as_ref() {
            for stats in delivery.stats() {
                let sink = labels(&[("sink", &stats.name)]);
                let sync = |family: &Family<Labels, Counter>, total: u64| {
                    let counter = family.get_or_create(&sink);
                    counter.inc_by(total.saturating_sub(counter.get()));
                };
                sync(&self.delivered, stats.delivered_events);
                sync(&self.retried, stats.retried_events);
                sync(&self.dead_lettered, stats.dead_lettered_events);
                sync(&self.dropped, stats.dropped_events);
                sync(&self.quarantined, stats.quarantined_lines);
                let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                self.spool_events
                    .get_or_create(&sink)
                    .set(as_i64(stats.pending_events));
                self.spool_bytes
                    .get_or_create(&sink)
                    .set(as_i64(stats.pending_bytes));
                self.sink_failing
                    .get_or_create(&sink)
                    .set(i64::from(stats.failing));
            }
        }
        for (name, stats) in lock(&self.audit).iter() {
            let source = labels(&[("source", name)]);
            let sync = |family: &Family<Labels, Counter>, total: &std::sync::atomic::AtomicU64| {
                let counter = family.get_or_create(&source);
                counter.inc_by(total.load(Relaxed).saturating_sub(counter.get()));
            };
            sync(&self.audit_records, &stats.records);
            sync(&self.audit_overruns, &stats.overruns);
            sync(&self.audit_dropped, &stats.queue_dropped);
            sync(&self.audit_unreadable, &stats.unreadable);
            sync(&self.audit_other_pluto, &stats.other_pluto);
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            self.audit_kernel_lost
                .get_or_create(&source)
                .set(as_i64(stats.kernel_lost.load(Relaxed)));
            self.audit_reading
                .get_or_create(&source)
                .set(as_i64(stats.reading.load(Relaxed)));
        }
        for (name, stats) in lock(&self.pluto_log).iter() {
            let source = labels(&[("source", name)]);
            let sync = |family: &Family<Labels, Counter>, total: &std::sync::atomic::AtomicU64| {
                let counter = family.get_or_create(&source);
                counter.inc_by(total.load(Relaxed).saturating_sub(counter.get()));
            };
            sync(&self.pluto_log_lines, &stats.lines);
            sync(&self.pluto_log_cut, &stats.cut);
            sync(&self.pluto_log_unreadable, &stats.unreadable);
            self.pluto_log_reading
                .get_or_create(&source)
                .set(i64::try_from(stats.reading.load(Relaxed)).unwrap_or(i64::MAX));
        }
        for (source, health) in lock(&self.sources).iter() {
            if let Some(at) = health.checkpoint_current {
                self.checkpoint_age
                    .get_or_create(&labels(&[("source", source)]))
                    .set(at.elapsed().as_secs_f64());
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// `/health`: `Ok` when every source gave a usable answer within 3 of
    /// its intervals (a file source: once) and no sink is failing; else
    /// every reason, one per source or sink.
    pub(crate) fn health(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        for (name, health) in lock(&self.sources).iter() {
            let failure = health.failure.as_deref().unwrap_or("no usable answer yet");
            match (health.last_success, health.interval) {
                (None, _) => reasons.push(format!(
                    "source `{name}` has not polled successfully since start ({}s ago): {failure}",
                    self.started.elapsed().as_secs()
                )),
                (Some(at), Some(interval)) if at.elapsed() > interval * 3 => {
                    reasons.push(format!(
                        "source `{name}` last polled successfully {:.1}s ago (more than 3 intervals of {}s): {failure}",
                        at.elapsed().as_secs_f64(),
                        interval.as_secs_f64()
                    ))
                }
                _ => {}
            }
        }
        if let Some(delivery) = lock(&self.delivery).as_ref() {
            for stats in delivery.stats().iter().filter(|s| s.failing) {
                reasons.push(format!(
                    "sink `{}` is failing and retrying; {} waiting in its spool",
                    stats.name,
                    crate::counted(stats.pending_events, "event", "events")
                ));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}

/// The gauges of one snapshot, at most `cap` tunnels and connections with
/// their own series (the first by name; the rest only counted).
///
/// The tunnels' series are `swantrail show`'s rows (one per connection
/// instance with an established Child SA, showing the newest), read from
/// the listing the daemon built rather than from a whole snapshot it never
/// holds.
fn gateway_of(listing: &Listing, cap: usize) -> Gateway {
    let mut g = Gateway::default();
    let up = listing.tunnels_up();
    g.tunnels_up = up.len() as i64;
    // `show`'s tunnels: the established Child SAs of each instance.
    let mut children: BTreeMap<(&str, &[u64]), Vec<Seen<'_>>> = BTreeMap::new();
    for seen in listing.seen() {
        let established = seen.established();
        let state = seen.state_name().map_or_else(
            || {
                if established {
                    "established".to_string()
                } else {
                    "negotiating".to_string()
                }
            },
            str::to_string,
        );
        match seen.kind() {
            SaKind::Ike => {
                if !established {
                    g.half_open += 1;
                }
                *g.ike_sas.entry(state).or_default() += 1;
            }
            SaKind::Child => *g.child_sas.entry(state).or_default() += 1,
        }
        let shown_child = if seen.has_state() {
            seen.state_established()
                && seen
                    .listed_kind()
                    .map_or(seen.has_spi_line(), |k| k == SaKind::Child)
        } else {
            seen.has_traffic()
        };
        if shown_child {
            let conn = seen.conn();
            children
                .entry((conn.name.as_str(), conn.instances.as_slice()))
                .or_default()
                .push(seen);
        }
    }
    // The up tunnels of each connection, counted in one pass over them:
    // counting them again for each connection would visit every tunnel
    // `cap` times at every poll.
    let mut connections: BTreeMap<&str, i64> = listing
        .connections()
        .map(|c| (c.conn().name.as_str(), 0))
        .collect();
    for tunnel in &up {
        crate::work::count(1);
        *connections.entry(tunnel.name.as_str()).or_default() += 1;
    }
    for (i, (name, count)) in connections.into_iter().enumerate() {
        if i >= cap {
            g.connections_left_out += 1;
            continue;
        }
        g.connections.insert(name.to_string(), count);
    }
    if children.len() > cap {
        g.tunnels_left_out = (children.len() - cap) as i64;
    }
    let entries = listing.connections_by_instance();
    for (key, serials) in children.iter().take(cap) {
        let entry = entries.get(key);
        // The newest: the one the connection list names, else the newest
        // flagged, else the highest serial (as `show` picks it).
        let named = entry
            .and_then(|c| c.newest_child())
            .and_then(|n| serials.iter().find(|s| s.serial() == n));
        let flagged = serials
            .iter()
            .filter(|s| s.newest())
            .max_by_key(|s| s.serial());
        let Some(child) = named
            .or(flagged)
            .or_else(|| serials.iter().max_by_key(|s| s.serial()))
        else {
            continue;
        };
        let conn = child.conn();
        let (bytes_in, bytes_out, _) = child.bytes();
        let instance: Vec<String> = conn.instances.iter().map(u64::to_string).collect();
        g.tunnels.push(TunnelSeries {
            connection: conn.name.to_string(),
            instance: instance.join("/"),
            peer: conn
                .peer
                .as_deref()
                .or_else(|| entry.and_then(|c| c.remote_host()))
                .unwrap_or_default()
                .to_string(),
            bytes_in,
            bytes_out,
            up_since: child.add_time(),
        });
    }
    g
}

/// A lock that survives a panicked holder: the metrics are counters, a
/// half-updated one is still better than none.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(all(test, feature = "synth"))]
mod tests {
    use crate::listing::Listing;
    use crate::synth::{Dialect, Output, Series, status_dump};

    #[test]
    fn the_gauges_visit_each_up_tunnel_once_whatever_the_series_cap() {
        let snapshot = crate::parse(&status_dump(3_000, Dialect::V5_4).text);
        let listing = Listing::of(&snapshot);
        let up = snapshot.tunnels_up().len() as u64;
        for cap in [10, 1_000] {
            let work = crate::work::visited();
            let g = super::gateway_of(&listing, cap);
            let visits = crate::work::visited() - work;
            assert_eq!(g.tunnels_up as u64, up);
            assert_eq!(g.connections.len(), cap);
            assert_eq!(visits, up, "cap {cap}: {visits} visits of {up} up tunnels");
        }
    }

    /// The tunnels' series are `show`'s rows, read from the listing.
    #[test]
    fn the_tunnel_series_are_the_rows_of_show() {
        let mut series = Series::new(400, crate::synth::Churn::even(0.05));
        series.advance();
        let gateway = series.gateway();
        let mut texts = vec![gateway.dump(Dialect::V5_4, Output::Status).text];
        texts.push(gateway.dump(Dialect::V4_10, Output::ShowStates).text);
        texts.push(gateway.dump(Dialect::V4_10, Output::TrafficStatus).text);
        let mut merged = crate::parse(&texts[1]);
        merged.merge(crate::parse(&texts[2]));
        for snapshot in [crate::parse(&texts[0]), merged] {
            let table = crate::show::tunnel_table(&snapshot);
            assert!(table.tunnels.len() > 100);
            let g = super::gateway_of(&Listing::of(&snapshot), 10_000);
            assert_eq!(g.tunnels.len(), table.tunnels.len());
            for (got, row) in g.tunnels.iter().zip(&table.tunnels) {
                let instance: Vec<String> = row.conn.instances.iter().map(u64::to_string).collect();
                assert_eq!(got.connection, row.conn.name);
                assert_eq!(got.instance, instance.join("/"));
                assert_eq!(got.peer, row.peer.clone().unwrap_or_default());
                assert_eq!(got.bytes_in, row.bytes_in.map(|b| b.bytes));
                assert_eq!(got.bytes_out, row.bytes_out.map(|b| b.bytes));
                assert_eq!(got.up_since, row.established_since);
            }
            let capped = super::gateway_of(&Listing::of(&snapshot), 10);
            assert_eq!(capped.tunnels.len(), 10);
            assert_eq!(capped.tunnels_left_out as usize, table.tunnels.len() - 10);
        }
    }
}
