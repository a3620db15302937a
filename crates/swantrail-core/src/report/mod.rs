//! The audit history of tunnel lifetimes, read back from swantrail's own
//! event trail.
//!
//! A [`Reader`] takes event lines one at a time (the file sink's output,
//! rotated files oldest first) and keeps only per-tunnel and per-gateway
//! state, so a year of a large gateway's events is read in one linear pass
//! in bounded memory; [`Reader::finish`] turns that state into a [`Report`]
//! that [`table`] and [`html`] print. Duplicates (the same `event.id`, as a
//! crash may redeliver) are dropped through a bounded per-host window of
//! recent ids; a line that is not an event (a torn last line) is counted and
//! skipped. This module never opens files, parses arguments or talks to
//! pluto: the command (`cli::report`) does the I/O and hands it lines.

pub mod html;
pub mod table;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::event::rfc3339;
use crate::snapshot::TunnelKey;

/// How many recent `event.id`s per host are remembered to drop duplicates.
///
/// Duplicates come from redelivery after a crash: the tail of a spool sent
/// again, so they follow the original within the few thousand events a
/// spool holds between fsync and acknowledgement. 65,536 ids (about 3 MiB a
/// host) covers that many times over while keeping memory fixed.
pub const DEDUP_WINDOW: usize = 1 << 16;

/// Most up periods and rekey marks kept per tunnel for the HTML timeline;
/// beyond it the timeline says how many it did not draw (the figures still
/// count everything).
pub const TIMELINE_CAP: usize = 512;

/// Most entries kept per gateway list (restarts, outages, connection
/// changes, stalls); the rest are counted, not listed.
pub const GATEWAY_LIST_CAP: usize = 10_000;

/// What to report on: the time window and which tunnels.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Unix seconds; events before it only set the state at its start.
    pub since: Option<i64>,
    /// Unix seconds; events after it are ignored.
    pub until: Option<i64>,
    /// Only tunnels whose connection name (or name with instance) is this.
    pub tunnel: Option<String>,
    /// Keep up periods and rekey times for a timeline (HTML only).
    pub timeline: bool,
}

/// The fields of an event line the report needs, borrowed from the line so
/// reading does not allocate per field.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    event: LineMeta<'a>,
    #[serde(borrow)]
    observer: LineObserver<'a>,
    #[serde(default, borrow)]
    destination: Option<LineEndpoint<'a>>,
    #[serde(default, borrow)]
    user: Option<LineUser<'a>>,
    #[serde(borrow)]
    libreswan: LineLibreswan<'a>,
}

#[derive(Deserialize)]
struct LineMeta<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LineObserver<'a> {
    #[serde(borrow)]
    hostname: Cow<'a, str>,
}

#[derive(Deserialize)]
struct LineEndpoint<'a> {
    #[serde(default, borrow)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LineUser<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct LineLibreswan<'a> {
    #[serde(default, borrow)]
    connection: Option<LineConnection<'a>>,
    #[serde(default, borrow)]
    tunnel: Option<LineTunnel<'a>>,
    #[serde(default)]
    negotiation: Option<LineNegotiation>,
    #[serde(default, borrow)]
    end: Option<LineEnd<'a>>,
}

/// `libreswan.end`: why an SA ended, as pluto's own log says.
#[derive(Deserialize)]
struct LineEnd<'a> {
    #[serde(borrow)]
    cause: Cow<'a, str>,
}

#[derive(Deserialize)]
struct LineConnection<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    instance: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    peer: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LineTunnel<'a> {
    #[serde(borrow)]
    up_since: Cow<'a, str>,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Deserialize)]
struct LineNegotiation {
    duration_s: i64,
}

/// Why a line was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not a JSON event (a torn last line, or not swantrail's output).
    #[error("not an event: {0}")]
    NotAnEvent(String),
    /// An event whose `@timestamp` is not RFC 3339.
    #[error("unreadable @timestamp {0:?}")]
    BadTimestamp(String),
}

/// A tunnel as the events name it: the gateway, and the tunnel's key there
/// (connection and peer: a road warrior reconnecting as `[2]` is the same
/// tunnel), the key the tracker that wrote the events used.
type GatewayTunnel = (String, TunnelKey);

/// The running state of one tunnel while the trail is read.
#[derive(Debug)]
struct TunnelState {
    instance: Option<String>,
    remote_ip: Option<String>,
    remote_id: Option<String>,
    first_seen: i64,
    last_seen: i64,
    ever_up: bool,
    up_since: Option<i64>,
    down_since: Option<(i64, String)>,
    up_s: i64,
    periods: u64,
    outages: u64,
    longest_outage_s: i64,
    ike_rekeys: u64,
    child_rekeys: u64,
    end_reasons: BTreeMap<String, u64>,
    /// The cause pluto's log gave for the last SA of this tunnel that
    /// ended while it was up: the cause of the outage that follows.
    last_end_cause: Option<String>,
    outage_causes: BTreeMap<String, u64>,
    bytes_in: u64,
    bytes_out: u64,
    open_bytes: (u64, u64),
    unobserved_s: i64,
    negotiations_failed: u64,
    negotiations_stalled: u64,
    timeline: Timeline,
}

/// What a tunnel's timeline draws: its up periods and rekeys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Up periods in order, each with the reason it ended.
    pub up: Vec<UpPeriod>,
    /// Times of Child and IKE SA rekeys.
    pub rekeys: Vec<i64>,
    /// Up periods and rekeys beyond [`TIMELINE_CAP`], counted but not drawn.
    pub not_drawn: u64,
}

/// One period a tunnel was up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpPeriod {
    /// Unix seconds it came up (the tunnel's `up_since`).
    pub start: i64,
    /// Unix seconds it went down; `None` if still up at the report's end.
    pub end: Option<i64>,
    /// The `tunnel-down` reason, which colours the gap after it.
    pub end_reason: Option<String>,
}

/// A gateway outage: pluto could not be queried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreachable {
    /// When the first query failed (RFC 3339).
    pub start: String,
    /// When pluto answered again; `None` if it had not by the report's end.
    pub end: Option<String>,
    /// Seconds it lasted (up to the report's end if still open).
    pub duration_s: i64,
    /// The error the query gave.
    pub reason: Option<String>,
    #[serde(skip)]
    start_s: i64,
    #[serde(skip)]
    end_s: Option<i64>,
}

impl Unreachable {
    /// Unix seconds it started, for drawing.
    pub fn start_s(&self) -> i64 {
        self.start_s
    }
    /// Unix seconds it ended, for drawing.
    pub fn end_s(&self) -> Option<i64> {
        self.end_s
    }
}

/// A timed gateway incident worth listing for an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// When (RFC 3339).
    pub at: String,
    /// The connection or tunnel it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The event's reason, or for a stall how long it had been trying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip)]
    at_s: i64,
}

impl Incident {
    /// Unix seconds, for drawing.
    pub fn at_s(&self) -> i64 {
        self.at_s
    }
}

/// Everything per gateway: dedup window and the audit lists.
#[derive(Debug, Default)]
struct HostState {
    recent_ids: VecDeque<u128>,
    recent_set: HashSet<u128>,
    open_outage: Option<(i64, Option<String>)>,
    gateway: Gateway,
}

/// The events of one gateway that matter for an audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gateway {
    /// The gateway (`observer.hostname`).
    pub host: String,
    /// `pluto-restarted` events.
    pub pluto_restarts: Vec<Incident>,
    /// Periods pluto could not be queried.
    pub unreachable: Vec<Unreachable>,
    /// Total seconds pluto could not be queried within the period.
    pub unreachable_s: i64,
    /// `connection-added` events after the start-up inventory.
    pub connections_added: Vec<Incident>,
    /// `connection-removed` events.
    pub connections_removed: Vec<Incident>,
    /// `negotiation-failed` events by reason.
    pub negotiations_failed: BTreeMap<String, u64>,
    /// `negotiation-stalled` events.
    pub negotiations_stalled: Vec<Incident>,
    /// List entries beyond [`GATEWAY_LIST_CAP`], counted but not listed.
    pub not_listed: u64,
}

/// How the input was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputStats {
    /// Lines read (blank lines not counted).
    pub lines: u64,
    /// Events used (after dropping duplicates and out-of-window events).
    pub events: u64,
    /// Events dropped because their `event.id` was already seen.
    pub duplicates: u64,
    /// Lines that were not events (torn last lines and the like).
    pub unreadable: u64,
}

/// One row of the report: a tunnel's audit figures over the period.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelRow {
    /// The gateway.
    pub host: String,
    /// The connection name.
    pub connection: String,
    /// The last instance it was seen as (`[2]`), for template instances.
    pub instance: Option<String>,
    /// The instance's peer, for template instances.
    pub peer: Option<String>,
    /// The peer's IKE address, last seen.
    pub remote_ip: Option<String>,
    /// The peer's ID or XAUTH/EAP user, last seen.
    pub remote_id: Option<String>,
    /// First time the trail mentions it (or its first `up_since`), RFC 3339.
    pub first_seen: String,
    /// Last time the trail mentions it, RFC 3339.
    pub last_seen: String,
    /// `up`, `down` or `never-up` at the end of the period.
    pub state_at_end: String,
    /// Seconds up within the period.
    pub up_s: i64,
    /// Seconds of the period from its first sighting on: what availability
    /// is a share of.
    pub observed_s: i64,
    /// `up_s / observed_s` in percent.
    pub availability_pct: f64,
    /// Up periods within the period.
    pub up_periods: u64,
    /// Times it went down after having been up (an ongoing one included).
    pub outages: u64,
    /// The longest of those, in seconds.
    pub longest_outage_s: i64,
    /// IKE SA rekeys.
    pub ike_rekeys: u64,
    /// Child SA rekeys.
    pub child_rekeys: u64,
    /// `tunnel-down` reasons and how often.
    pub end_reasons: BTreeMap<String, u64>,
    /// Times it went down by the cause pluto's own log gave for the SA
    /// whose end took it down (`libreswan.end.cause`: `peer-deleted`,
    /// `liveness-failure`, `local-delete`, …), when the trail was written
    /// with pluto's log fused; empty otherwise. The audit question "why
    /// was this tunnel down" in pluto's words rather than inferred.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outage_causes: BTreeMap<String, u64>,
    /// Bytes received, summed over its up periods.
    pub bytes_in: u64,
    /// Bytes sent, summed over its up periods.
    pub bytes_out: u64,
    /// Seconds of its observed time pluto could not be queried: neither up
    /// nor down is known then.
    pub unobserved_s: i64,
    /// `negotiation-failed` events.
    pub negotiations_failed: u64,
    /// `negotiation-stalled` events.
    pub negotiations_stalled: u64,
    /// What the HTML timeline draws (empty unless asked for).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// `reason count` for each reason of a tally, in the tally's order: how
/// every format prints end reasons and failed negotiations.
pub fn tally(counts: &BTreeMap<String, u64>) -> Vec<String> {
    counts.iter().map(|(r, n)| format!("{r} {n}")).collect()
}

impl TunnelRow {
    /// What is known of the far end, in this order: peer, remote IP, remote id.
    pub fn remote(&self) -> Vec<&str> {
        [
            self.peer.as_deref(),
            self.remote_ip.as_deref(),
            self.remote_id.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The name an operator types: connection plus instance (`rw[2]`).
    pub fn label(&self) -> String {
        format!(
            "{}{}",
            self.connection,
            self.instance.as_deref().unwrap_or("")
        )
    }
}

/// The whole report: period, tunnels, gateways and how the input read.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Start of the period (RFC 3339).
    pub since: String,
    /// End of the period (RFC 3339).
    pub until: String,
    /// Unix seconds of `since`, for drawing.
    #[serde(skip)]
    pub since_s: i64,
    /// Unix seconds of `until`, for drawing.
    #[serde(skip)]
    pub until_s: i64,
    /// One row per tunnel, ordered by gateway, connection, peer.
    pub tunnels: Vec<TunnelRow>,
    /// One entry per gateway.
    pub gateways: Vec<Gateway>,
    /// How the input read.
    pub input: InputStats,
}

/// Reads event lines in one pass and keeps only what the report needs.
#[derive(Debug, Default)]
pub struct Reader {
    options: Options,
    hosts: HashMap<String, HostState>,
    tunnels: HashMap<GatewayTunnel, TunnelState>,
    stats: InputStats,
    earliest: Option<i64>,
    latest: Option<i64>,
}

impl Reader {
    /// A reader for this window and tunnel filter.
    pub fn new(options: Options) -> Reader {
        Reader {
            options,
            ..Reader::default()
        }
    }

    /// Reads one line of NDJSON. Blank lines are ignored; a line that is not
    /// an event is counted and its error returned so the caller can say
    /// where it was.
    pub fn feed_line(&mut self, line: &str) -> Result<(), LineError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        self.stats.lines += 1;
        let parsed: Line = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                self.stats.unreadable += 1;
                return Err(LineError::NotAnEvent(e.to_string()));
            }
        };
        let Some(at) = parse_rfc3339(&parsed.timestamp) else {
            self.stats.unreadable += 1;
            return Err(LineError::BadTimestamp(parsed.timestamp.into_owned()));
        };
        self.apply(&parsed, at);
        Ok(())
    }

    fn apply(&mut self, ev: &Line, at: i64) {
        let host_name = ev.observer.hostname.as_ref();
        let host = self
            .hosts
            .entry(host_name.to_string())
            .or_insert_with(|| HostState {
                gateway: Gateway {
                    host: host_name.to_string(),
                    ..Gateway::default()
                },
                ..HostState::default()
            });
        if !remember_id(host, &ev.event.id) {
            self.stats.duplicates += 1;
            return;
        }
        if self.options.until.is_some_and(|u| at > u) {
            return;
        }
        let in_window = self.options.since.is_none_or(|s| at >= s);
        let action = ev.event.action.as_ref();
        let reason = ev.event.reason.as_deref();
        if let Some(c) = &ev.libreswan.connection {
            if let Some(want) = &self.options.tunnel {
                let with_instance = format!("{}{}", c.name, c.instance.as_deref().unwrap_or(""));
                if *want != c.name && *want != with_instance {
                    return;
                }
            }
        }
        self.stats.events += 1;
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
        self.latest = Some(self.latest.map_or(at, |l| l.max(at)));
        let gateway_event = self.gateway_event(host_name, ev, at, in_window);
        if gateway_event {
            return;
        }
        let Some(c) = &ev.libreswan.connection else {
            return;
        };
        let key = (
            host_name.to_string(),
            TunnelKey::new(c.name.as_ref(), c.peer.as_deref()),
        );
        let up_since = ev
            .libreswan
            .tunnel
            .as_ref()
            .and_then(|t| parse_rfc3339(&t.up_since))
            .filter(|&u| u <= at);
        let first = up_since.unwrap_or(at).min(at);
        let timeline = self.options.timeline;
        let since = self.options.since;
        let t = self
            .tunnels
            .entry(key)
            .or_insert_with(|| TunnelState::new(first));
        t.first_seen = t.first_seen.min(first);
        t.last_seen = t.last_seen.max(at);
        if let Some(i) = &c.instance {
            t.instance = Some(i.to_string());
        }
        if let Some(ip) = ev.destination.as_ref().and_then(|d| d.ip.as_deref()) {
            t.remote_ip = Some(ip.to_string());
        }
        if let Some(u) = &ev.user {
            t.remote_id = Some(u.name.to_string());
        }
        if let Some(tf) = &ev.libreswan.tunnel {
            if t.up_since.is_some() {
                t.open_bytes = (tf.bytes_in, tf.bytes_out);
            }
        }
        if let Some(end) = &ev.libreswan.end {
            // An SA a rekey replaced took nothing down; any other end is
            // what a tunnel-down after it owes to.
            let sa_end = action.ends_with("-deleted") || action.ends_with("-expired");
            if sa_end && end.cause != "replaced" {
                t.last_end_cause = Some(end.cause.to_string());
            }
        }
        match action {
            // A tunnel-up of a later tracker's start-up inventory for a tunnel
            // already up continues its period.
            "tunnel-up" if t.up_since.is_none() => {
                let start = up_since.unwrap_or(at);
                if let Some((down_at, _)) = t.down_since.take() {
                    t.record_outage(down_at, start.max(down_at), since);
                }
                t.up_since = Some(start);
                t.ever_up = true;
                t.last_end_cause = None;
                t.open_bytes = ev
                    .libreswan
                    .tunnel
                    .as_ref()
                    .map_or((0, 0), |tf| (tf.bytes_in, tf.bytes_out));
            }
            "tunnel-down" => {
                let start = t.up_since.take().or(up_since).unwrap_or(at);
                let (bytes_in, bytes_out) = ev
                    .libreswan
                    .tunnel
                    .as_ref()
                    .map_or(t.open_bytes, |tf| (tf.bytes_in, tf.bytes_out));
                let reason = reason.unwrap_or("unknown").to_string();
                t.ever_up = true;
                t.close_period(start, at, &reason, since, timeline);
                if in_window {
                    t.bytes_in += bytes_in;
                    t.bytes_out += bytes_out;
                    *t.end_reasons.entry(reason.clone()).or_default() += 1;
                    if let Some(cause) = t.last_end_cause.take() {
                        *t.outage_causes.entry(cause).or_default() += 1;
                    }
                }
                t.last_end_cause = None;
                t.open_bytes = (0, 0);
                t.down_since = Some((at, reason));
            }
            "child-sa-rekeyed" | "ike-sa-rekeyed" if in_window => {
                if action == "child-sa-rekeyed" {
                    t.child_rekeys += 1;
                } else {
                    t.ike_rekeys += 1;
                }
                if timeline {
                    if t.timeline.rekeys.len() < TIMELINE_CAP {
                        t.timeline.rekeys.push(at);
                    } else {
                        t.timeline.not_drawn += 1;
                    }
                }
            }
            "negotiation-failed" if in_window => t.negotiations_failed += 1,
            "negotiation-stalled" if in_window => t.negotiations_stalled += 1,
            _ => {}
        }
    }

    /// Applies an event about the gateway rather than a tunnel; false if
    /// the event is a tunnel's alone.
    fn gateway_event(&mut self, host_name: &str, ev: &Line, at: i64, in_window: bool) -> bool {
        let Some(host) = self.hosts.get_mut(host_name) else {
            return false;
        };
        let action = ev.event.action.as_ref();
        let reason = ev.event.reason.as_deref().map(str::to_string);
        let subject = ev
            .libreswan
            .connection
            .as_ref()
            .map(|c| format!("{}{}", c.name, c.instance.as_deref().unwrap_or("")));
        let g = &mut host.gateway;
        let incident = |detail: Option<String>| Incident {
            at: rfc3339(at),
            subject: subject.clone(),
            detail,
            at_s: at,
        };
        match action {
            "pluto-restarted" => {
                if in_window {
                    push_capped(&mut g.pluto_restarts, incident(None), &mut g.not_listed);
                }
                true
            }
            "pluto-unreachable" => {
                if host.open_outage.is_none() {
                    host.open_outage = Some((at, reason));
                }
                true
            }
            "pluto-reachable" => {
                if let Some((start, why)) = host.open_outage.take() {
                    self.close_outage(host_name, start, Some(at), why);
                }
                true
            }
            "connection-added" => {
                if in_window && reason.as_deref() != Some("observed-at-start") {
                    push_capped(
                        &mut g.connections_added,
                        incident(reason),
                        &mut g.not_listed,
                    );
                }
                true
            }
            "connection-removed" => {
                if in_window {
                    push_capped(
                        &mut g.connections_removed,
                        incident(reason),
                        &mut g.not_listed,
                    );
                }
                true
            }
            "negotiation-failed" => {
                if in_window {
                    let why = reason.unwrap_or_else(|| "unknown".to_string());
                    *g.negotiations_failed.entry(why).or_default() += 1;
                }
                false
            }
            "negotiation-stalled" => {
                if in_window {
                    let detail = ev
                        .libreswan
                        .negotiation
                        .as_ref()
                        .map(|n| format!("trying for {}", human_duration(n.duration_s)));
                    push_capped(
                        &mut g.negotiations_stalled,
                        incident(detail),
                        &mut g.not_listed,
                    );
                }
                false
            }
            _ => false,
        }
    }

    /// Records an outage of a gateway and charges its time, as unobserved,
    /// to every tunnel of the gateway already seen by then.
    fn close_outage(&mut self, host_name: &str, start: i64, end: Option<i64>, why: Option<String>) {
        let (lo, hi) = self.clip(start, end.unwrap_or(self.period_end()));
        let Some(host) = self.hosts.get_mut(host_name) else {
            return;
        };
        if hi < lo {
            return;
        }
        let g = &mut host.gateway;
        g.unreachable_s += hi - lo;
        let entry = Unreachable {
            start: rfc3339(start),
            end: end.map(rfc3339),
            duration_s: end.unwrap_or(hi) - start,
            reason: why,
            start_s: start,
            end_s: end,
        };
        push_capped(&mut g.unreachable, entry, &mut g.not_listed);
        for ((host, _), t) in self.tunnels.iter_mut() {
            if host == host_name && t.first_seen < hi {
                t.unobserved_s += hi - lo.max(t.first_seen);
            }
        }
    }

    fn period_start(&self) -> i64 {
        let first_seen = self.tunnels.values().map(|t| t.first_seen).min();
        let earliest = match (self.earliest, first_seen) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        self.options.since.unwrap_or(earliest)
    }

    fn period_end(&self) -> i64 {
        self.options
            .until
            .or(self.latest)
            .unwrap_or_else(|| self.period_start())
    }

    fn clip(&self, start: i64, end: i64) -> (i64, i64) {
        let lo = self.options.since.map_or(start, |s| start.max(s));
        let hi = self.options.until.map_or(end, |u| end.min(u));
        (lo, hi)
    }

    /// Closes what is still open at the end of the period and builds the
    /// report.
    pub fn finish(mut self) -> Report {
        let start = self.period_start();
        let end = self.period_end().max(start);
        let open: Vec<(String, i64, Option<String>)> = self
            .hosts
            .iter_mut()
            .filter_map(|(h, s)| s.open_outage.take().map(|(t, why)| (h.clone(), t, why)))
            .collect();
        for (h, t, why) in open {
            self.close_outage(&h, t, None, why);
        }
        let since = self.options.since;
        let timeline = self.options.timeline;
        let mut tunnels: Vec<(GatewayTunnel, TunnelState)> = self.tunnels.into_iter().collect();
        tunnels.sort_by(|a, b| a.0.cmp(&b.0));
        let rows = tunnels
            .into_iter()
            .map(|((host, tunnel), mut t)| {
                let state_at_end = if t.up_since.is_some() {
                    "up"
                } else if t.ever_up {
                    "down"
                } else {
                    "never-up"
                };
                if let Some(up) = t.up_since {
                    let (bytes_in, bytes_out) = t.open_bytes;
                    t.bytes_in += bytes_in;
                    t.bytes_out += bytes_out;
                    t.count_up(up, end, since);
                    if timeline {
                        t.push_period(up, None, None);
                    }
                }
                if let Some((down_at, _)) = t.down_since.take() {
                    t.record_outage(down_at, end.max(down_at), since);
                }
                let observed_s = (end - start.max(t.first_seen)).max(0);
                let availability_pct = if observed_s > 0 {
                    (t.up_s as f64 * 100.0 / observed_s as f64).min(100.0)
                } else if t.up_since.is_some() {
                    100.0
                } else {
                    0.0
                };
                TunnelRow {
                    host,
                    connection: tunnel.name.into(),
                    instance: t.instance,
                    peer: tunnel.peer.map(String::from),
                    remote_ip: t.remote_ip,
                    remote_id: t.remote_id,
                    first_seen: rfc3339(t.first_seen),
                    last_seen: rfc3339(t.last_seen),
                    state_at_end: state_at_end.to_string(),
                    up_s: t.up_s,
                    observed_s,
                    availability_pct,
                    up_periods: t.periods,
                    outages: t.outages,
                    longest_outage_s: t.longest_outage_s,
                    ike_rekeys: t.ike_rekeys,
                    child_rekeys: t.child_rekeys,
                    end_reasons: t.end_reasons,
                    outage_causes: t.outage_causes,
                    bytes_in: t.bytes_in,
                    bytes_out: t.bytes_out,
                    unobserved_s: t.unobserved_s.min(observed_s),
                    negotiations_failed: t.negotiations_failed,
                    negotiations_stalled: t.negotiations_stalled,
                    timeline: t.timeline,
                }
            })
            .collect();
        let mut gateways: Vec<Gateway> = self.hosts.into_values().map(|h| h.gateway).collect();
        gateways.sort_by(|a, b| a.host.cmp(&b.host));
        Report {
            since: rfc3339(start),
            until: rfc3339(end),
            since_s: start,
            until_s: end,
            tunnels: rows,
            gateways,
            input: self.stats,
        }
    }
}

impl TunnelState {
    fn new(first_seen: i64) -> TunnelState {
        TunnelState {
            instance: None,
            remote_ip: None,
            remote_id: None,
            first_seen,
            last_seen: first_seen,
            ever_up: false,
            up_since: None,
            down_since: None,
            up_s: 0,
            periods: 0,
            outages: 0,
            longest_outage_s: 0,
            ike_rekeys: 0,
            child_rekeys: 0,
            end_reasons: BTreeMap::new(),
            last_end_cause: None,
            outage_causes: BTreeMap::new(),
            bytes_in: 0,
            bytes_out: 0,
            open_bytes: (0, 0),
            unobserved_s: 0,
            negotiations_failed: 0,
            negotiations_stalled: 0,
            timeline: Timeline::default(),
        }
    }

    /// Adds the part of an up period inside the window to the up time.
    fn count_up(&mut self, start: i64, end: i64, since: Option<i64>) {
        let lo = since.map_or(start, |s| start.max(s));
        if end >= lo {
            self.up_s += end - lo;
            self.periods += 1;
        }
    }

    fn close_period(
        &mut self,
        start: i64,
        end: i64,
        reason: &str,
        since: Option<i64>,
        timeline: bool,
    ) {
        self.count_up(start, end, since);
        if timeline && since.is_none_or(|s| end >= s) {
            self.push_period(start, Some(end), Some(reason.to_string()));
        }
    }

    fn push_period(&mut self, start: i64, end: Option<i64>, end_reason: Option<String>) {
        if self.timeline.up.len() < TIMELINE_CAP {
            self.timeline.up.push(UpPeriod {
                start,
                end,
                end_reason,
            });
        } else {
            self.timeline.not_drawn += 1;
        }
    }

    /// Counts a down period that followed an up one, clipped to the window.
    fn record_outage(&mut self, down_at: i64, back_at: i64, since: Option<i64>) {
        let lo = since.map_or(down_at, |s| down_at.max(s));
        if back_at < lo {
            return;
        }
        self.outages += 1;
        self.longest_outage_s = self.longest_outage_s.max(back_at - lo);
    }
}

/// Remembers an event id in the host's window; false if it was there.
fn remember_id(host: &mut HostState, id: &str) -> bool {
    let key = u128::from_str_radix(id, 16).unwrap_or_else(|_| fallback_id(id));
    if !host.recent_set.insert(key) {
        return false;
    }
    host.recent_ids.push_back(key);
    if host.recent_ids.len() > DEDUP_WINDOW {
        if let Some(old) = host.recent_ids.pop_front() {
            host.recent_set.remove(&old);
        }
    }
    true
}

/// A stable 128-bit key for an id that is not 32 hex digits (not one of
/// swantrail's): FNV-1a, twice with different offsets.
fn fallback_id(id: &str) -> u128 {
    let fnv = |offset: u64| {
        id.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4))
}

fn push_capped<T>(list: &mut Vec<T>, item: T, not_listed: &mut u64) {
    if list.len() < GATEWAY_LIST_CAP {
        list.push(item);
    } else {
        *not_listed += 1;
    }
}

/// Unix seconds of an RFC 3339 time; the `2026-11-28T09:21:02Z` form the
/// events use is read directly, anything else through the `time` crate.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z' {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && se < 61 {
            return Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se);
        }
        return None;
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm), so the common timestamp form needs no calendar library.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Why a `--since`/`--until` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is neither an RFC 3339 time (2026-11-28T09:21:02Z) nor a time ago like 30d, 12h, 15m, 2w"
)]
pub struct BadTimeBound(pub String);

/// A `--since`/`--until` value: RFC 3339, or an age (`30d`, `12h`, `15m`,
/// `90s`, `2w`) counted back from `now`.
pub fn parse_time_bound(s: &str, now: i64) -> Result<i64, BadTimeBound> {
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    let bad = || BadTimeBound(s.to_string());
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .and_then(|ago| now.checked_sub(ago))
        .ok_or_else(bad)
}

/// Seconds as a short duration (`0s`, `4m30s`, `2h05m`, `3d04h`).
pub fn human_duration(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Bytes as a short size (`512 B`, `41.0 KiB`, `3.2 GiB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rfc3339_reads_the_event_form_like_the_time_crate() {
        assert_eq!(parse_rfc3339("2026-11-28T09:21:02Z"), Some(1795857662));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00+01:00"), Some(1709204400));
        assert_eq!(parse_rfc3339("2026-13-28T09:21:02Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn time_bounds_are_rfc3339_or_an_age_back_from_now() {
        assert_eq!(parse_time_bound("30d", 100 * 86_400), Ok(70 * 86_400));
        assert_eq!(parse_time_bound("15m", 1000), Ok(100));
        assert_eq!(parse_time_bound("1970-01-01T00:01:00Z", 0), Ok(60));
        assert!(parse_time_bound("30x", 0).is_err());
        assert!(parse_time_bound("d", 0).is_err());
    }

    fn line(
        id: u32,
        at: &str,
        action: &str,
        reason: Option<&str>,
        up_since: Option<&str>,
    ) -> String {
        let reason = reason.map_or(String::new(), |r| format!(",\"reason\":\"{r}\""));
        let tunnel = up_since.map_or(String::new(), |u| {
            format!(",\"tunnel\":{{\"up_since\":\"{u}\",\"duration_s\":0,\"rekeys\":0,\"bytes_in\":10,\"bytes_out\":20}}")
        });
        format!(
            "{{\"@timestamp\":\"{at}\",\"event\":{{\"id\":\"{id:032x}\",\"action\":\"{action}\"{reason}}},\
             \"observer\":{{\"hostname\":\"gw\"}},\"libreswan\":{{\"connection\":{{\"name\":\"t\"}}{tunnel},\"pluto\":{{\"generation\":0}}}}}}"
        )
    }

    #[test]
    fn a_duplicate_id_and_a_torn_line_change_nothing() {
        let mut r = Reader::new(Options::default());
        let up = line(
            1,
            "2026-01-01T00:00:00Z",
            "tunnel-up",
            None,
            Some("2026-01-01T00:00:00Z"),
        );
        let down = line(
            2,
            "2026-01-01T00:10:00Z",
            "tunnel-down",
            Some("deleted"),
            Some("2026-01-01T00:00:00Z"),
        );
        r.feed_line(&up).unwrap();
        r.feed_line(&up).unwrap();
        r.feed_line(&down).unwrap();
        r.feed_line(&down).unwrap();
        assert!(r.feed_line(&down[..40]).is_err());
        let rep = r.finish();
        assert_eq!(rep.input.duplicates, 2);
        assert_eq!(rep.input.unreadable, 1);
        let t = &rep.tunnels[0];
        assert_eq!(
            (t.up_s, t.up_periods, t.bytes_in, t.bytes_out),
            (600, 1, 10, 20)
        );
        assert_eq!(t.state_at_end, "down");
    }

    #[test]
    fn an_outage_runs_from_down_to_up_and_since_clips_it() {
        let lines = [
            line(
                1,
                "2026-01-01T00:00:00Z",
                "tunnel-up",
                None,
                Some("2026-01-01T00:00:00Z"),
            ),
            line(
                2,
                "2026-01-01T01:00:00Z",
                "tunnel-down",
                Some("expired"),
                Some("2026-01-01T00:00:00Z"),
            ),
            line(
                3,
                "2026-01-01T01:30:00Z",
                "tunnel-up",
                None,
                Some("2026-01-01T01:30:00Z"),
            ),
            line(
                4,
                "2026-01-01T02:00:00Z",
                "child-sa-rekeyed",
                Some("rekey"),
                Some("2026-01-01T01:30:00Z"),
            ),
        ];
        let mut r = Reader::new(Options::default());
        for l in &lines {
            r.feed_line(l).unwrap();
        }
        let t = &r.finish().tunnels[0];
        assert_eq!(
            (t.up_s, t.observed_s, t.outages, t.longest_outage_s),
            (5400, 7200, 1, 1800)
        );
        assert_eq!((t.child_rekeys, t.availability_pct), (1, 75.0));
        assert_eq!(t.end_reasons.get("expired"), Some(&1));

        let mut r = Reader::new(Options {
            since: parse_rfc3339("2026-01-01T01:15:00Z"),
            ..Options::default()
        });
        for l in &lines {
            r.feed_line(l).unwrap();
        }
        let t = &r.finish().tunnels[0];
        assert_eq!(
            (t.up_s, t.observed_s, t.outages, t.longest_outage_s),
            (1800, 2700, 1, 900)
        );
        assert!(t.end_reasons.is_empty());
    }

    #[test]
    fn the_dedup_window_forgets_the_oldest_id() {
        let mut h = HostState::default();
        for i in 0..=DEDUP_WINDOW as u128 {
            assert!(remember_id(&mut h, &format!("{i:032x}")));
        }
        assert_eq!(h.recent_set.len(), DEDUP_WINDOW);
        assert!(remember_id(&mut h, &format!("{:032x}", 0)));
        assert!(!remember_id(&mut h, &format!("{:032x}", 5)));
    }
}
