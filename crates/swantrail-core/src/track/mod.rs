//! Snapshots into lifecycle events: the tracker.
//!
//! A [`Tracker`] remembers what the previous snapshots showed (open SAs,
//! tunnels, connections) and turns each new snapshot into the events that
//! happened in between, following docs/libreswan-format.md §14: SAs are keyed by
//! (pluto generation, serial), a serial that drops means pluto restarted, a
//! new SA for a tunnel that already had one is a rekey linked to the SA it
//! replaces, and counters are compared only within one serial. It is a pure
//! function of its state and the snapshot: no clock, no I/O, no randomness,
//! so the same checkpoint and snapshot always give the same events with the
//! same ids. It must never diff an incomplete snapshot, and never conclude
//! that an SA is gone from a snapshot kind that does not list such SAs.

pub mod journal;
pub mod ledger;
mod linux_audit;
mod pluto_log;

pub use linux_audit::rfc3339_ms;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::event::{
    Action, ConnectionFields, ECS_VERSION, Ecs, Endpoint, Event, EventKind, EventMeta, Libreswan,
    NegotiationFields, Observer, PlutoFields, SaFields, TunnelFields, User, event_id, rfc3339,
};
use crate::listing::{ConnectionSeen, Listing};
use crate::snapshot::{ConnRef, IkeVersion, OutputKind, SaKind, Snapshot, Text, TunnelKey};
use crate::work;
use ledger::{
    ConnectionRecord, Identity, Negotiating, SaRecord, SaTable, Seen, TunnelRecord, TunnelTable,
    UpPeriod, is_rekey_child,
};

/// The reason given to everything found already there when tracking starts.
pub const OBSERVED_AT_START: &str = "observed-at-start";

/// How the tracker is told about the gateway and which optional events to
/// emit. It is saved in the checkpoint; the daemon re-applies the configured one
/// on restore (see `Tracker::reconfigure`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackerConfig {
    /// `observer.hostname` of every event, and part of every event id.
    pub hostname: String,
    /// `observer.version` (the libreswan version), when known.
    pub observer_version: Option<String>,
    /// Seconds a tunnel may negotiate without an established Child SA
    /// before `negotiation-stalled` is emitted (default 120).
    pub stalled_after_s: i64,
    /// Emit `traffic` metrics for every up tunnel at most this often;
    /// `None` emits none.
    pub traffic_interval_s: Option<i64>,
}

impl TrackerConfig {
    /// The defaults for a gateway called `hostname`.
    pub fn new(hostname: impl Into<String>) -> TrackerConfig {
        TrackerConfig {
            hostname: hostname.into(),
            observer_version: None,
            stalled_after_s: 120,
            traffic_interval_s: None,
        }
    }
}

/// Which kinds of things have been listed at least once, so the first
/// listing of each is reported as an inventory (`observed-at-start`) rather
/// than as changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Listed {
    ike: bool,
    child: bool,
    connections: bool,
}

/// The snapshot-to-events state machine; its whole state serialises so the
/// daemon can checkpoint it and a restarted tracker continues exactly where
/// it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tracker {
    config: TrackerConfig,
    /// The time of the last observation, for snapshots without one.
    clock: Option<i64>,
    /// The last `event.sequence` handed out.
    sequence: u64,
    /// pluto restarts seen.
    generation: u64,
    /// When the current pluto run was first seen; names the run in ids.
    run_anchor: Option<i64>,
    /// Highest serial seen in the current run.
    max_serial: u64,
    listed: Listed,
    sas: SaTable,
    tunnels: TunnelTable,
    #[serde(with = "ledger::sorted")]
    connections: FxHashMap<Text, ConnectionRecord>,
    /// The connections added or changed since the checkpoint's journal last
    /// took the tracker's changes (`journal::Saved`); never saved.
    #[serde(skip)]
    connections_changed: FxHashSet<Text>,
    /// Set while pluto is unreachable: the outage number.
    outage: Option<u64>,
    outages: u64,
    last_traffic_at: Option<i64>,
    /// pluto's version as the last `status` named it, for
    /// `observer.version` when the configuration does not give one.
    #[serde(default)]
    pluto_version: Option<String>,
    /// When the current outage began: the first poll that found pluto
    /// gone. An SA whose last listed EXPIRE or REPLACE time came before
    /// it ran out before pluto stopped (see `restart`).
    #[serde(default)]
    unreachable_since: Option<i64>,
    /// IKEv2 Child SAs whose establishment waits one listing: they came up
    /// beside an older Child SA of the tunnel that still runs its own
    /// lifetime, which is a responder's rekey (the old one goes within a
    /// second) or a second Child SA (the old one stays); see `establish`.
    #[serde(default)]
    held: BTreeSet<u64>,
    /// pluto's Linux audit records not yet fused (track/linux_audit.rs).
    /// Saved under its old name, `audit`, so that checkpoints written
    /// before the rename still load.
    #[serde(default, rename = "audit")]
    linux_audit: linux_audit::LinuxAuditState,
    /// What pluto's own log said (track/pluto_log.rs). Not written while
    /// empty, so a tracker without the log saves what it saved before.
    #[serde(default, skip_serializing_if = "pluto_log::PlutoLogState::is_empty")]
    pluto_log: pluto_log::PlutoLogState,
}

/// How many events an observation holds before handing them to its spill
/// ([`Tracker::observe_spilling`]).
const SPILL_AT: usize = 1024;

/// Builds events with consecutive sequence numbers and deterministic ids.
struct Emitter {
    host: String,
    version: Option<String>,
    anchor: String,
    generation: u64,
    sequence: u64,
    now: i64,
    /// Audit records from before this instant (Unix ms) are ones the
    /// snapshot reflects: when its listing was answered, else `now`'s second.
    cutoff_ms: i64,
    events: Vec<Event>,
    /// Per tunnel, why its last Child SA ended in this snapshot.
    end_reasons: BTreeMap<TunnelKey, String>,
    /// Priming ([`Tracker::prime`]): count the sequence but build no event.
    silent: bool,
}

/// The optional parts of an event.
#[derive(Default)]
struct Detail {
    connection: Option<ConnectionFields>,
    sa: Option<SaFields>,
    tunnel: Option<TunnelFields>,
    negotiation: Option<NegotiationFields>,
    source: Option<Endpoint>,
    destination: Option<Endpoint>,
    user: Option<User>,
}

impl Emitter {
    /// While priming, count one event and say so, so that the caller skips
    /// building a detail nobody will read.
    fn skip(&mut self) -> bool {
        if self.silent {
            self.sequence += 1;
        }
        self.silent
    }

    fn push(
        &mut self,
        action: Action,
        kind: EventKind,
        reason: Option<&str>,
        subject: &str,
        d: Detail,
    ) {
        self.sequence += 1;
        if self.silent {
            return;
        }
        let id = event_id(&[&self.host, &self.anchor, action.as_str(), subject]);
        self.events.push(Event {
            timestamp: rfc3339(self.now),
            ecs: Ecs {
                version: ECS_VERSION.to_string(),
            },
            event: EventMeta {
                id,
                kind,
                category: vec!["network".to_string(), "session".to_string()],
                types: vec![action.ecs_type().to_string()],
                action,
                reason: reason.map(str::to_string),
                sequence: self.sequence,
                module: "libreswan".to_string(),
                dataset: "libreswan.tunnel".to_string(),
            },
            observer: Observer {
                hostname: self.host.clone(),
                vendor: "libreswan".to_string(),
                product: "libreswan".to_string(),
                kind: "vpn".to_string(),
                version: self.version.clone(),
            },
            source: d.source,
            destination: d.destination,
            user: d.user,
            libreswan: Libreswan {
                connection: d.connection,
                sa: d.sa,
                tunnel: d.tunnel,
                negotiation: d.negotiation,
                pluto: PlutoFields {
                    generation: self.generation,
                },
                end: None,
            },
        });
    }
}

/// What one listing lists, indexed once per observation so that the
/// per-SA steps look things up instead of scanning it.
struct Index<'a> {
    /// Every listed serial with what the listing says about it, in
    /// serial order ([`Listing::seen`]).
    current: Vec<(u64, Seen<'a>)>,
    /// The first connection-list entry of each instance (name, instances).
    connections: FxHashMap<(&'a str, &'a [u64]), ConnectionSeen<'a>>,
    /// Base names the connection list shows, gathered the first time a
    /// half-open SA goes (they are asked for nothing else).
    names: std::cell::OnceCell<FxHashSet<&'a str>>,
    /// The listing indexed, for `names`.
    listing: &'a Listing,
    /// The listed serials as bits from the lowest one, when they are dense
    /// enough (they are: pluto counts serials up from 1): `lists` is asked
    /// for every known SA at every poll.
    bits: Option<SerialBits>,
}

/// A set of serials as one bit each from `base`.
struct SerialBits {
    base: u64,
    words: Vec<u64>,
}

impl SerialBits {
    /// The bits of `sorted` (ascending serials), or None when they spread
    /// over more than one word per listed serial (then a search of the
    /// listing itself is as fast and takes no memory).
    fn new(sorted: &[(u64, Seen<'_>)]) -> Option<SerialBits> {
        let (first, last) = (sorted.first()?.0, sorted.last()?.0);
        let span = usize::try_from(last - first).ok()? / 64 + 1;
        if span > sorted.len() {
            return None;
        }
        let mut words = vec![0u64; span];
        for (serial, _) in sorted {
            let i = serial - first;
            words[(i / 64) as usize] |= 1 << (i % 64);
        }
        Some(SerialBits { base: first, words })
    }

    fn contains(&self, serial: u64) -> bool {
        let Some(i) = serial.checked_sub(self.base) else {
            return false;
        };
        usize::try_from(i / 64)
            .ok()
            .and_then(|w| self.words.get(w))
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }
}

impl<'a> Index<'a> {
    fn new(listing: &'a Listing) -> Index<'a> {
        work::count(listing.connections().len() as u64);
        let connections = listing.connections_by_instance();
        let current: Vec<(u64, Seen<'a>)> = listing.seen().map(|s| (s.serial(), s)).collect();
        Index {
            bits: SerialBits::new(&current),
            current,
            connections,
            names: std::cell::OnceCell::new(),
            listing,
        }
    }

    /// Whether the connection list shows a connection called `name`.
    fn shows_name(&self, name: &str) -> bool {
        self.names
            .get_or_init(|| {
                self.listing
                    .connections()
                    .inspect(|_| work::count(1))
                    .map(|c| c.conn().name.as_str())
                    .collect()
            })
            .contains(name)
    }

    /// Whether `serial` is new in this snapshot and shown only by its
    /// `--trafficstatus`, though its `--status` (or `--showstates`) lists
    /// every state without it: pluto answered the second command after
    /// the SA appeared (gateway lab: IKEv1 responder #464 in the
    /// trafficstatus of 07:09:59, 0.6 s into its Quick Mode, not in the
    /// status of the same tick). Whether it is established, and what it
    /// replaces, only its state tells (see [`listed_established`]), so the
    /// next listing judges it.
    fn shown_before_its_state(&self, serial: u64, seen: &Seen<'_>, known: bool) -> bool {
        !known && !seen.has_state() && self.listing.lists_ike_sas() && self.lists(serial)
    }

    /// Whether the snapshot lists `serial` in a way the tracker judges now:
    /// listed, and not only by a `--trafficstatus` beside a listing of
    /// every state (see [`Listing::shown_before_its_state`]).
    fn lists_with_state(&self, serial: u64) -> bool {
        work::count(1);
        match self.current.binary_search_by_key(&serial, |e| e.0) {
            Ok(i) => self.current[i].1.has_state() || !self.listing.lists_ike_sas(),
            Err(_) => false,
        }
    }

    fn lists(&self, serial: u64) -> bool {
        work::count(1);
        match &self.bits {
            Some(bits) => bits.contains(serial),
            None => self.current.binary_search_by_key(&serial, |e| e.0).is_ok(),
        }
    }
}

/// Whether an event is part of the start-up inventory or a change.
fn kind_and_reason(inventory: bool, reason: Option<&str>) -> (EventKind, Option<&str>) {
    if inventory {
        (EventKind::State, Some(OBSERVED_AT_START))
    } else {
        (EventKind::Event, reason)
    }
}

fn connection_fields(conn: &ConnRef) -> ConnectionFields {
    let instance = (!conn.instances.is_empty())
        .then(|| conn.instances.iter().map(|i| format!("[{i}]")).collect());
    ConnectionFields {
        name: conn.name.to_string(),
        instance,
        peer: conn.peer.as_deref().map(String::from),
    }
}

fn kind_str(kind: SaKind) -> &'static str {
    match kind {
        SaKind::Ike => "ike",
        SaKind::Child => "child",
    }
}

fn version_num(v: Option<IkeVersion>) -> Option<u8> {
    v.map(|v| match v {
        IkeVersion::V1 => 1,
        IkeVersion::V2 => 2,
    })
}

/// An address only if it really is one (`%any`, `<address>` are not).
fn ip_only(text: Option<&str>) -> Option<String> {
    let t = text?.trim();
    t.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// Set `slot` to the address in `text` if it is one, copying only when it
/// differs (the slot always holds an address in its canonical form).
/// Whether it did.
fn set_ip(slot: &mut Option<Text>, text: Option<&str>) -> bool {
    let Some(text) = text.map(str::trim) else {
        return false;
    };
    // The common case at every poll: printed as it was last time.
    if slot.as_deref() == Some(text) {
        return false;
    }
    let Some(ip) = text.parse::<std::net::IpAddr>().ok() else {
        return false;
    };
    let same = slot
        .as_deref()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        .is_some_and(|known| known == ip);
    if !same {
        *slot = Some(compact_str::ToCompactString::to_compact_string(&ip));
    }
    !same
}

/// When an SA (or a tunnel) started: the kernel `add_time` if it is
/// plausible (not after `now`, not before the previous snapshot), else `now`.
fn start_time(add_time: Option<u64>, previous: Option<i64>, now: i64) -> i64 {
    match add_time.and_then(|a| i64::try_from(a).ok()) {
        Some(a) if a <= now && previous.is_none_or(|p| a > p) => a,
        _ => now,
    }
}

/// Whether `rec` is an IKEv1 IPsec SA this pluto negotiated as responder
/// (`STATE_QUICK_R2`): the peer's Quick Mode. pluto logs a replacement
/// only for the Quick Modes it initiates (`initiating Quick Mode ... to
/// replace #M`); one it answers is `IPsec SA established`, beside the SA
/// it may later supersede, which runs on to its own end (gateway lab:
/// v1b #583 answered at 07:11:16 beside #520, which expired at 07:11:30).
fn answers_peer_quick_mode(rec: &SaRecord) -> bool {
    rec.kind == SaKind::Child
        && rec.ike_version == Some(IkeVersion::V1)
        && rec
            .state
            .as_deref()
            .is_some_and(|s| s.strip_prefix("STATE_").unwrap_or(s).starts_with("QUICK_R"))
}

/// Whether `r` is an IKE SA this poll found established and judged a new
/// start, not a rekey (`establish` saw the old IKE SA's Child SAs gone
/// with it before its rekey time: a teardown and a reconnect). Closing the
/// old IKE SA later in the same poll, with those Child SAs already out of
/// the ledger, must not name it the successor (gateway lab: `sh1` IKE SA
/// #197, deleted by the peer with its three Child SAs 11 s after a forced
/// rekey, then #212 brought up anew: `ike-sa-deleted`, not `expired` /
/// `replaced` by #212).
fn new_ike_sa_after_teardown(r: &SaRecord, now: i64) -> bool {
    r.kind == SaKind::Ike && r.replaces.is_none() && r.first_seen == now
}

/// Whether the tracker takes `seen` as established: as the listing shows
/// it, except an IKEv1 responder's Quick Mode SA still waiting for the
/// initiator's confirmation (`STATE_QUICK_R1`, "sent Quick Mode reply,
/// inbound IPsec SA installed, expecting confirmation"). pluto lists it
/// with its SPIs and in `--trafficstatus`, but logs `IPsec SA established`
/// only when the confirmation comes (`STATE_QUICK_R2`); without it, it
/// deletes the state after its retransmits (gateway lab: v1b #464, `15
/// second timeout exceeded`) and never had the SA. Until then it is a
/// negotiation. A `--trafficstatus` alone prints no state, so it cannot
/// tell.
fn listed_established(seen: &Seen<'_>) -> bool {
    let awaits_confirmation = seen
        .state_name()
        .is_some_and(|name| name.strip_prefix("STATE_").unwrap_or(name) == "QUICK_R1");
    seen.established() && !awaits_confirmation
}

/// Whether `rec` is the Child SA pluto creates, before it is negotiated,
/// to stand for the Child SA its IKE SA's `IKE_AUTH` exchange brings up
/// (`STATE_V2_IKE_AUTH_CHILD_I0`, "ephemeral: initiator creating child
/// from IKE exchange"). Its negotiation is its IKE SA's, which has its own
/// events; pluto logs nothing of the placeholder when the exchange fails
/// and deletes it with its IKE SA (lab 4.10 gateway: #361 to #384 while
/// the peer was dead). So it starts and fails no negotiation of its own;
/// it is reported once it is established, as any Child SA.
fn is_ike_auth_placeholder(rec: &SaRecord) -> bool {
    !rec.established
        && rec.kind == SaKind::Child
        && rec
            .state
            .as_deref()
            .is_some_and(|s| s.contains("IKE_AUTH_CHILD"))
}

/// Seconds by which a timer a listing printed may be early against the
/// poll that finds its SA gone: pluto prints whole seconds, and a poll's
/// time is its whole second.
const TIMER_ROUNDING_S: i64 = 2;

/// Whether any timer `rec`'s last listing showed (REKEY, REPLACE, EXPIRE)
/// was due by `now`: something in its lifetime was to happen.
fn timer_due(rec: &SaRecord, now: i64) -> bool {
    [rec.rekey_due_at, rec.replace_due_at, rec.expire_due_at]
        .into_iter()
        .flatten()
        .any(|at| at <= now + TIMER_ROUNDING_S)
}

/// What went in one poll, as [`Tracker::close`] weighs each SA's end.
#[derive(Clone, Copy)]
struct Gone<'a> {
    /// The serials the poll no longer lists.
    serials: &'a BTreeSet<u64>,
    /// The peers (remote addresses) whose IKE SAs went with no timer of
    /// theirs due: a teardown of that peer's IKE SAs.
    torn_down: &'a BTreeSet<Text>,
    /// pluto's run ended (see `close`).
    run_ended: bool,
}

/// Whether the IKEv2 Child SA `new` was listed beside `old` and judged
/// then to rekey nothing (a second Child SA, a revival pluto added beside
/// it): when `old` goes later it was not replaced by `new` (gateway lab
/// 4.10: g01 #618 up beside #576 for 6.7 s, then #576 deleted as stale).
/// SAs of a run's first listing (`run_anchor`) were judged nothing.
fn judged_beside(new: &SaRecord, old: &SaRecord, run_anchor: Option<i64>) -> bool {
    new.kind == SaKind::Child
        && new.ike_version == Some(IkeVersion::V2)
        && new.replaces.is_none()
        && new.first_seen <= old.last_seen
        && Some(new.first_seen) != run_anchor
}

/// Whether the IKEv2 Child SA `old`, listed last with its REKEY still
/// ahead and now gone, went when that REKEY came (`now` is the first
/// listing without it): what pluto does to a Child SA that a newer one
/// of its connection stands beside, not rekeyed from it.
fn went_at_its_rekey(old: &SaRecord, listing: &Index<'_>, now: i64) -> bool {
    old.kind == SaKind::Child
        && old.ike_version == Some(IkeVersion::V2)
        && !listing.lists(old.serial)
        && old
            .rekey_due_at
            .is_some_and(|due| due >= old.last_seen && due <= now + TIMER_ROUNDING_S)
}

/// The rekey margin pluto gave an IKEv2 SA, as its last listing showed
/// it: the seconds from its REKEY to its REPLACE timer.
///
/// It says which end started the SA (libreswan's `fuzz_rekey_margin`):
/// the initiator gets the configured `rekeymargin` plus 0 to `rekeyfuzz`
/// percent of it, the responder exactly half of it, so that the initiator
/// rekeys first.
fn rekey_margin(rec: &SaRecord) -> Option<i64> {
    let margin = rec.replace_due_at? - rec.rekey_due_at?;
    (margin > 0).then_some(margin)
}

/// Whether two Child SAs of one connection were started from opposite
/// ends: one's rekey margin is at most half the other's (see
/// [`rekey_margin`]; one second of rounding on each timer). Without both
/// margins nothing says so.
fn started_from_opposite_ends(a: &SaRecord, b: &SaRecord) -> bool {
    match (rekey_margin(a), rekey_margin(b)) {
        (Some(x), Some(y)) => 2 * x.min(y) <= x.max(y) + TIMER_ROUNDING_S,
        _ => false,
    }
}

/// The established Child SAs of a tunnel, oldest first.
fn live_children<'s>(
    sas: &'s SaTable,
    key: &'s TunnelKey,
) -> impl Iterator<Item = &'s SaRecord> + 's {
    sas.of_tunnel(key)
        .filter(|r| r.established && r.kind == SaKind::Child)
}

impl Tracker {
    /// A tracker that has seen nothing yet: its first snapshot yields an
    /// inventory of what is already up.
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker {
            config,
            clock: None,
            sequence: 0,
            generation: 0,
            run_anchor: None,
            max_serial: 0,
            listed: Listed::default(),
            sas: SaTable::default(),
            tunnels: TunnelTable::default(),
            connections: FxHashMap::default(),
            connections_changed: FxHashSet::default(),
            outage: None,
            outages: 0,
            last_traffic_at: None,
            pluto_version: None,
            unreachable_since: None,
            held: BTreeSet::new(),
            linux_audit: linux_audit::LinuxAuditState::default(),
            pluto_log: pluto_log::PlutoLogState::default(),
        }
    }

    /// The configuration the tracker runs with.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Run with `config` from now on, keeping everything the tracker has seen.
    ///
    /// A checkpoint holds the configuration it was saved with; the daemon
    /// re-applies the operator's current one on restore, or an edited
    /// `stalled_after` or `hostname` would silently do nothing. A new
    /// hostname changes the ids of the events from now on.
    pub fn reconfigure(&mut self, config: TrackerConfig) {
        self.config = config;
    }

    /// The tunnels the tracker holds up: the same rule as
    /// [`Snapshot::tunnels_up`], accumulated over the snapshots seen.
    pub fn tunnels_up(&self) -> BTreeSet<TunnelKey> {
        self.tunnels
            .iter()
            .filter(|(_, t)| t.up.is_some())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The last `event.sequence` handed out.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    fn emitter(&self, now: i64) -> Emitter {
        Emitter {
            host: self.config.hostname.clone(),
            version: self
                .config
                .observer_version
                .clone()
                .or_else(|| self.pluto_version.clone()),
            anchor: self.anchor(),
            generation: self.generation,
            sequence: self.sequence,
            now,
            cutoff_ms: now.saturating_mul(1000),
            events: Vec::new(),
            end_reasons: BTreeMap::new(),
            silent: false,
        }
    }

    fn anchor(&self) -> String {
        format!("{}@{}", self.generation, self.run_anchor.unwrap_or(0))
    }

    /// pluto could not be queried at `at` (unix seconds): one
    /// `pluto-unreachable` per outage, none on repeats.
    pub fn observe_unreachable(&mut self, at: i64, reason: &str) -> Vec<Event> {
        let at = at.max(self.clock.unwrap_or(i64::MIN));
        self.clock = Some(at);
        if self.outage.is_some() {
            return Vec::new();
        }
        self.run_anchor.get_or_insert(at);
        self.unreachable_since = Some(at);
        self.outages += 1;
        self.outage = Some(self.outages);
        let mut em = self.emitter(at);
        let subject = format!("outage:{}", self.outages);
        em.push(
            Action::PlutoUnreachable,
            EventKind::Event,
            Some(reason),
            &subject,
            Detail::default(),
        );
        self.sequence = em.sequence;
        // What waited for its records goes first, as it happened first.
        let mut events = self.release_held();
        events.append(&mut em.events);
        events
    }

    /// The time of the last observation; the tracker's clock never runs
    /// backwards, so a snapshot stamped earlier is treated as taken then.
    pub fn clock(&self) -> Option<i64> {
        self.clock
    }

    /// Diff `snapshot` (its `taken_at` is the event time; if None use the
    /// last known time) against the previous one.
    /// An incomplete snapshot returns no events and leaves the state unchanged.
    /// If the tracker was unreachable before, first emits one `pluto-reachable`.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Vec<Event> {
        if !snapshot.is_complete() {
            return Vec::new();
        }
        self.observe_with(&Listing::of(snapshot), false, None)
    }

    /// [`Tracker::observe`] of a snapshot's [`Listing`]: what a daemon
    /// builds as it parses, never holding the whole snapshot.
    pub fn observe_listing(&mut self, listing: &Listing) -> Vec<Event> {
        self.observe_with(listing, false, None)
    }

    /// [`Tracker::observe`], handing events to `spill` as they are made
    /// when nothing later in the observation can change them (no audit
    /// records or log lines are fused: those passes stamp, hold and rewrite
    /// the events of a whole observation at its end); returns the rest, in
    /// order after the spilled ones. The events are the same, in the same
    /// order, as `observe` gives.
    ///
    /// A first poll of a big gateway makes three events per tunnel, and a
    /// pluto restart twice that: a daemon that writes them out as they come
    /// never holds them all.
    pub fn observe_spilling(
        &mut self,
        listing: &Listing,
        spill: &mut dyn FnMut(Event),
    ) -> Vec<Event> {
        self.observe_with(listing, false, Some(spill))
    }

    /// Whether an observation's events are final as they are made (see
    /// [`Tracker::observe_spilling`]).
    fn events_final_when_made(&self) -> bool {
        self.linux_audit_idle() && self.pluto_log.is_empty()
    }

    /// Observe `snapshot` for its effect on the tracker alone: the state it
    /// leaves (sequence numbers included) is exactly what [`Tracker::observe`]
    /// would leave, but no event is built.
    ///
    /// `swantrail diff` prints only the events of its second dump; the first
    /// one's inventory (three events per tunnel, 100,000 at a big gateway)
    /// would be built and dropped for nothing.
    pub fn prime(&mut self, snapshot: &Snapshot) {
        if snapshot.is_complete() {
            self.observe_with(&Listing::of(snapshot), true, None);
        }
    }

    fn observe_with(
        &mut self,
        snapshot: &Listing,
        silent: bool,
        spill: Option<&mut dyn FnMut(Event)>,
    ) -> Vec<Event> {
        if !snapshot.is_complete() {
            return Vec::new();
        }
        // Events hand out as made only when nothing changes them later.
        let mut spill = spill.filter(|_| self.events_final_when_made());
        // Hand the events made so far to `spill` once there are enough of
        // them to be worth it.
        let mut spill_made = |em: &mut Emitter| {
            if let Some(out) = spill.as_mut()
                && em.events.len() >= SPILL_AT
            {
                em.events.drain(..).for_each(&mut **out);
            }
        };
        // Never backwards: an NTP step or an old dump would give negative
        // durations and a tunnel ending before it began.
        let now = snapshot
            .taken_at
            .or(self.clock)
            .unwrap_or(0)
            .max(self.clock.unwrap_or(i64::MIN));
        if snapshot.pluto_version.is_some() {
            self.pluto_version = snapshot.pluto_version.clone();
        }
        let previous = self.clock;
        self.run_anchor.get_or_insert(now);
        let mut em = self.emitter(now);
        em.silent = silent;
        if let Some(ms) = snapshot.taken_at_ms.filter(|ms| ms.div_euclid(1000) == now) {
            em.cutoff_ms = ms;
        }

        let after_outage = self.outage.is_some();
        if let Some(n) = self.outage.take() {
            em.push(
                Action::PlutoReachable,
                EventKind::Event,
                None,
                &format!("outage:{n}"),
                Detail::default(),
            );
        }

        let listing = Index::new(snapshot);
        let current = &listing.current;
        let restarted = self.restart_detected(current, after_outage);
        // The first poll that found pluto gone, if one did: a pluto
        // restarted between two polls leaves no such evidence.
        let gone_at = self.unreachable_since.take();
        if restarted {
            self.restart(&mut em, now, gone_at);
            spill_made(&mut em);
        }
        self.claim_linux_audit_sas(&listing, em.cutoff_ms);
        self.bind_pluto_log_run(em.cutoff_ms);

        let lists_ike = snapshot.lists_ike_sas();
        let lists_child = snapshot.lists_child_sas();
        let lists_conns = snapshot
            .kinds
            .iter()
            .any(|k| matches!(k, OutputKind::Status | OutputKind::ConnectionStatus));
        let inventory_ike = lists_ike && !self.listed.ike;
        let inventory_child = lists_child && !self.listed.child;
        let inventory_conns = lists_conns && !self.listed.connections;

        let listed_names = if lists_conns {
            self.added_connections(&mut em, snapshot, inventory_conns)
        } else {
            FxHashSet::default()
        };
        spill_made(&mut em);
        self.learn_endpoints(&listing);

        // Serials this snapshot shows gone: it lists their kind, and they are absent.
        let gone: BTreeSet<u64> = self
            .sas
            .values()
            .filter(|r| !listing.lists(r.serial))
            .filter(|r| {
                if r.established && r.kind == SaKind::Child {
                    lists_child
                } else {
                    lists_ike
                }
            })
            .map(|r| r.serial)
            .collect();

        // IKE SAs first: whether a new Child SA continues an old one
        // depends on whether its new parent rekeyed the old one's parent.
        let ike_first = current
            .iter()
            .filter(|(_, seen)| seen.kind() == SaKind::Ike)
            .chain(
                current
                    .iter()
                    .filter(|(_, seen)| seen.kind() != SaKind::Ike),
            );
        for &(serial, ref seen) in ike_first {
            if listing.shown_before_its_state(serial, seen, self.sas.contains(serial)) {
                continue;
            }
            self.max_serial = self.max_serial.max(serial);
            let inventory = if listed_established(seen) && seen.kind() == SaKind::Child {
                inventory_child
            } else {
                inventory_ike
            };
            // The common case, an SA listed again as it was: one lookup
            // and the record's update. Only an SA that moves, appears,
            // comes up or goes can change whether its tunnel is up, so
            // only those mark their tunnel for `tunnel_transitions`.
            let known = self.sas.update_listed(serial, |rec| {
                let was_established = rec.established;
                let moves = !was_established && rec.conn != *seen.conn();
                let change = if moves {
                    ledger::Change::default()
                } else {
                    rec.update(seen, now)
                };
                ((was_established, moves), change)
            });
            match known {
                Some((was_established, moves)) => {
                    let comes_up = !was_established && listed_established(seen);
                    if moves {
                        // A responder's SA moves to the connection that
                        // IKE_AUTH picked ("switched to ..." in pluto's log).
                        if let Some(rec) = self.sas.get(serial) {
                            self.tunnels.touch(&rec.tunnel);
                        }
                        self.sas.move_to_tunnel(serial, seen.conn());
                        self.sas.update(serial, |rec| rec.update(seen, now));
                    }
                    if moves || comes_up {
                        if let Some(rec) = self.sas.get(serial) {
                            self.tunnels.touch(&rec.tunnel);
                        }
                    }
                    if comes_up {
                        self.establish(&mut em, serial, seen, inventory, previous, &listing);
                    }
                }
                None => {
                    let rec = SaRecord::new(serial, seen, now);
                    self.tunnels.touch(&rec.tunnel);
                    self.sas.insert(rec);
                    if listed_established(seen) {
                        self.establish(&mut em, serial, seen, inventory, previous, &listing);
                    } else {
                        self.negotiation_started(&mut em, serial, &gone, inventory);
                    }
                }
            }
            spill_made(&mut em);
        }

        // A listing of no SA at all, after the SAs of two IKE SAs or more
        // went at once: pluto's run ended (see `close`).
        let run_ended = lists_ike
            && lists_child
            && current.is_empty()
            && gone
                .iter()
                .filter_map(|s| self.sas.get(*s))
                .filter(|r| r.kind == SaKind::Ike)
                .nth(1)
                .is_some();
        // The peers whose IKE SAs went in this poll with no timer of theirs
        // due: torn down, not run out (see `close`).
        let torn_down: BTreeSet<Text> = gone
            .iter()
            .filter_map(|s| self.sas.get(*s))
            .filter(|r| r.kind == SaKind::Ike && r.established && !timer_due(r, em.now))
            .filter_map(|r| {
                self.tunnels
                    .get(&r.tunnel)
                    .and_then(|t| t.remote_ip.clone())
            })
            .collect();
        for serial in &gone {
            if let Some(rec) = self.sas.get(*serial) {
                self.tunnels.touch(&rec.tunnel);
            }
            let gone_now = Gone {
                serials: &gone,
                torn_down: &torn_down,
                run_ended,
            };
            self.close(&mut em, *serial, &listing, lists_conns, gone_now);
            spill_made(&mut em);
        }
        let audit_made = self.fuse_linux_audit_records(&mut em);

        // Only a touched tunnel that is up without an established Child SA,
        // or down with one, comes up or goes down; in key order, as the
        // events of one poll always came.
        let sas = &self.sas;
        let changed = self
            .tunnels
            .take_touched(|key, t| t.up.is_some() != live_children(sas, key).next().is_some());
        for key in &changed {
            self.tunnel_transitions(&mut em, key, inventory_child);
            spill_made(&mut em);
        }
        // Only a tunnel with an attempt or a negotiation episode has
        // anything to check; the others would be visited for nothing.
        let mut negotiating = self.tunnels.keys_where(|_, t| t.negotiating.is_some());
        for r in self.sas.half_open() {
            if self.tunnels.contains(&r.tunnel) {
                negotiating.push(r.tunnel.clone());
            }
        }
        negotiating.sort_unstable();
        negotiating.dedup();
        for key in &negotiating {
            self.check_stalled(&mut em, key);
        }

        if lists_conns {
            let reason = if restarted {
                "pluto-restart"
            } else {
                "deleted"
            };
            self.removed_connections(&mut em, &listed_names, reason);
        }
        self.traffic_metrics(&mut em);
        self.forget_idle_tunnels();

        self.listed.ike |= lists_ike;
        self.listed.child |= lists_child;
        self.listed.connections |= lists_conns;
        self.clock = Some(now);
        self.sequence = em.sequence;
        self.finish_linux_audit_wait(&mut em.events, audit_made);
        self.decide_by_pluto_log(&mut em.events);
        em.events
    }

    /// Whether this snapshot comes from a new pluto run: a known serial
    /// now names a different SA, or an unknown serial at or below the
    /// highest one seen appears while no newer known SA is listed (pluto
    /// only hands out growing serials within one run) — and no listed SA is
    /// positively one the tracker knows (a restart ends every SA).
    ///
    /// After pluto could not be reached, a listing without any SA the
    /// tracker knows is a new pluto: one that merely stopped answering for
    /// a while still lists its SAs.
    fn restart_detected(&self, current: &[(u64, Seen<'_>)], after_outage: bool) -> bool {
        if self.max_serial == 0 {
            return false;
        }
        // The highest listed serial the tracker knows: an unknown serial
        // below it is simply new in this run.
        let highest_known = current
            .iter()
            .rev()
            .map(|e| &e.0)
            .find(|s| self.sas.contains(**s));
        let mut evidence = after_outage && !self.sas.is_empty() && highest_known.is_none();
        for (serial, seen) in current {
            match self.sas.get(*serial).map(|rec| rec.identity(seen)) {
                Some(Identity::Same) => return false,
                Some(Identity::Other) => evidence = true,
                Some(Identity::Unknown) => {}
                None => {
                    evidence |=
                        *serial <= self.max_serial && highest_known.is_none_or(|k| k <= serial);
                }
            }
        }
        evidence
    }

    /// pluto restarted: report it, end every SA of the old run with reason
    /// `pluto-restart`, and start a new generation.
    ///
    /// An established SA whose last listing gave it an EXPIRE time at or
    /// before `gone_at` (the first poll that found pluto gone) ran out
    /// while pluto still ran: pluto logged it expired, not deleted at
    /// shutdown, so it ends `expired`. A REPLACE time is no such evidence:
    /// when it comes, pluto starts the replacement (or, with `rekey=no`,
    /// IKEv1 only swaps it for the EXPIRE timer: a 5.2 lab's IPsec SA
    /// listed `REPLACE in 5s` lived on until the shutdown deleted it). Without such a poll (pluto
    /// restarted between two listings) nothing says which came first, and
    /// every SA ends `pluto-restart`.
    fn restart(&mut self, em: &mut Emitter, now: i64, gone_at: Option<i64>) {
        let old_anchor = em.anchor.clone();
        let old_generation = self.generation;
        if let Some(gone) = gone_at {
            self.linux_audit.note_run_gone(old_generation, gone);
        }
        self.generation += 1;
        self.run_anchor = Some(now);
        em.anchor = self.anchor();
        em.generation = self.generation;
        em.push(
            Action::PlutoRestarted,
            EventKind::Event,
            Some("serials-reset"),
            "restart",
            Detail::default(),
        );
        em.anchor = old_anchor;
        em.generation = old_generation;
        // Child SAs first, then IKE SAs, each by serial.
        let mut order: Vec<(bool, u64)> = self
            .sas
            .values()
            .map(|r| (r.kind == SaKind::Ike, r.serial))
            .collect();
        order.sort_unstable();
        for (_, serial) in order {
            let Some(rec) = self.sas.remove(serial) else {
                continue;
            };
            let ran_out = rec.established
                && rec.replaced_by.is_none()
                && rec
                    .expire_due_at
                    .is_some_and(|due| gone_at.is_some_and(|gone| due <= gone));
            // One a listed SA had replaced (IKEv1 keeps a replaced SA until
            // it expires, or the shutdown deletes it) was replaced, as
            // pluto's log says (gateway lab: ISAKMP SA #332, replaced by
            // #587 13 s before the shutdown).
            let replaced_by = rec.replaced_by.filter(|_| rec.established);
            let reason = if replaced_by.is_some() {
                "replaced"
            } else if ran_out {
                "expired"
            } else if self.deleted_as_stale(
                &rec,
                // A whole-second REKEY against the whole second the poll
                // found pluto gone (lab 4.10 gateway: g16 #625 listed
                // `REKEY in 2s` at 16:56:44, pluto gone from 16:56:45 on,
                // its log: deleted as stale at 46.08, shutting down at
                // 47.19).
                gone_at.map(|gone| gone + TIMER_ROUNDING_S),
            ) {
                "deleted"
            } else {
                "pluto-restart"
            };
            self.end_sa(em, rec, reason, replaced_by);
        }
        self.held.clear();
        for key in self.tunnels.keys_where(|_, _| true) {
            self.tunnel_down(em, &key, "pluto-restart");
            if let Some(t) = self.tunnels.get_mut(&key) {
                t.negotiating = None;
            }
        }
        em.anchor = self.anchor();
        em.generation = self.generation;
        self.max_serial = 0;
        // The new run's start is known (empty): nothing after this is an inventory.
        self.listed.ike = true;
        self.listed.child = true;
    }

    /// Whether pluto deleted the IKEv2 Child SA `rec` at its `REKEY` time,
    /// before the shutdown the first poll that found pluto gone (`gone_at`)
    /// caught: a newer Child SA of its tunnel runs beside it and replaced
    /// nothing (a revival pluto started beside it), and its last listing
    /// gave it a `REKEY` time at or before `gone_at`. At that time pluto
    /// rekeys no Child SA its connection has a newer one of: it deletes it
    /// (4.10: `not rekey stale Child SA #548; as already got a newer #604`,
    /// then `deleting established Child SA`; gateway lab, 0.3 s before
    /// `Pluto is shutting down`).
    fn deleted_as_stale(&self, rec: &SaRecord, gone_at: Option<i64>) -> bool {
        let rekey_came = rec
            .rekey_due_at
            .is_some_and(|due| gone_at.is_some_and(|gone| due <= gone));
        // Or listed last with only an EXPIRE due at once: what pluto's
        // REKEY leaves on a Child SA it deletes as stale (`EXPIRE in
        // -1s`, gateway lab 4.10 g07 #570 beside #590); a Child SA rekeyed
        // away is listed so too, but then its successor replaced it.
        let expiring_now = rec.expire_shown
            && rec.rekey_due_at.is_none()
            && rec.replace_due_at.is_none()
            && rec.expire_due_at.is_some_and(|d| d <= rec.last_seen);
        (rekey_came || expiring_now)
            && rec.established
            && rec.kind == SaKind::Child
            && rec.ike_version == Some(IkeVersion::V2)
            && rec.replaced_by.is_none()
            && self.sas.of_tunnel(&rec.tunnel).any(|r| {
                r.serial > rec.serial
                    && r.kind == SaKind::Child
                    && r.established
                    && r.replaces != Some(rec.serial)
                    && r.first_seen <= rec.last_seen
            })
    }

    /// An SA became established: a rekey if its tunnel already had an
    /// established SA of its kind that it continues, else a new one.
    fn establish(
        &mut self,
        em: &mut Emitter,
        serial: u64,
        seen: &Seen<'_>,
        inventory: bool,
        previous: Option<i64>,
        listing: &Index<'_>,
    ) {
        let Some(rec) = self.sas.get(serial) else {
            return;
        };
        let (tunnel, kind) = (rec.tunnel.clone(), rec.kind);
        let mut replaces = if inventory {
            None
        } else {
            let older: Vec<&SaRecord> = self
                .sas
                .of_tunnel(&tunnel)
                .filter(|r| r.serial < serial && r.established && r.kind == kind)
                // A rekey replaces an SA that was up when it began: not
                // one that came up while it was listed negotiating
                // (gateway lab 4.10: g10 #626 `REKEY_CHILD` from 15:09:32,
                // rekeying #581, beside #622 up at 15:09:38).
                .filter(|r| r.established_at.is_none_or(|t| t <= rec.first_seen))
                .filter(|r| self.continues(rec, r, listing, em.now))
                .collect();
            // pluto rekeys a Child SA when its REKEY comes: of two up when
            // the rekey began, one whose REKEY is still well ahead is not
            // the one rekeyed (gateway lab 4.10: g10 #638 `REKEY_CHILD`
            // rekeying #600, its REKEY passed, beside the revival #618
            // with `REKEY in 17s`, up in the same poll).
            let rekey_ahead = |r: &SaRecord| {
                r.rekey_due_at
                    .is_some_and(|due| due > rec.first_seen + TIMER_ROUNDING_S)
            };
            older
                .iter()
                .rev()
                .find(|r| r.replaced_by.is_none() && !rekey_ahead(r))
                .or_else(|| older.iter().rev().find(|r| r.replaced_by.is_none()))
                .or(older.last())
                .map(|r| r.serial)
        };
        if answers_peer_quick_mode(rec)
            || (rec.new_child && rec.ike_version == Some(IkeVersion::V2))
        {
            replaces = None;
        }
        if replaces.is_none() && !inventory && rec.rekey_child && !rec.new_child {
            // Listed negotiating a rekey, and the SA it rekeyed is gone:
            // the peer's rekey of the same SA came up while this one
            // negotiated and settled the collision first (gateway lab
            // 4.10: `coll` #185 rekeyed #90 at 17:30:53.37, after #90 went
            // at 53.12 beside east's #187, up since 48.84).
            replaces = self
                .sas
                .of_tunnel(&tunnel)
                .filter(|r| r.serial != serial && r.kind == kind && r.established)
                .filter(|r| r.established_at.is_some_and(|t| t >= rec.first_seen))
                .find_map(|r| r.replaces);
        }
        if let Some(first) = replaces
            .and_then(|s| self.sas.get(s))
            .and_then(|sibling| self.collides_with(rec, sibling, em.now))
        {
            replaces = Some(first);
        }
        let beside_live = replaces
            .and_then(|old| self.sas.get(old))
            .is_some_and(|old| self.still_runs_beside(rec, old, listing));
        let gone_at_its_rekey = !beside_live
            && self.held.contains(&serial)
            && replaces
                .and_then(|old| self.sas.get(old))
                .is_some_and(|old| went_at_its_rekey(old, listing, em.now));
        if gone_at_its_rekey {
            // Held beside a live Child SA whose REKEY was still ahead, and
            // that one went when its REKEY came: pluto deleted it as stale
            // (`not rekey stale Child SA #553; as already got a newer
            // #585`) beside a Child SA it had added anew (a revival), not
            // rekeyed it (a rekey deletes the old one at once, before its
            // own REKEY). Gateway lab 4.10, after the peer's restart.
            replaces = None;
        } else if beside_live && rec.ike_version == Some(IkeVersion::V1) {
            // IKEv1: an IPsec SA that pluto replaced is listed with only
            // its EXPIRE timer from the moment the replacement starts; one
            // still running its REPLACE timer was not replaced by this SA
            // (the peer's own Quick Mode beside it, a second IPsec SA).
            replaces = None;
        } else if beside_live && self.rekey_under_way_beside(rec) {
            // Up beside the old SA while a rekey of its tunnel is still
            // listed negotiating: the peer's rekey of the same SA, a
            // collision (gateway lab 4.10: `coll` #187, `responder rekeyed
            // Child SA #90`, up 4.5 s before west's own #185 was, #90
            // listed beside it until then). The old SA goes once the
            // collision is settled.
        } else if beside_live {
            // Listed a second time and the old one still runs on its own
            // lifetime: a second Child SA, not a rekey. Listed the first
            // time: wait one listing for the old one to go (a rekey).
            if !self.held.remove(&serial) {
                self.held.insert(serial);
                return;
            }
            replaces = None;
        }
        self.held.remove(&serial);
        if let Some(old) = replaces {
            self.sas.update(old, |old| old.replaced_by = Some(serial));
        }
        let add_time = seen.add_time();
        let now = em.now;
        let established = self.sas.update(serial, |rec| {
            rec.established = true;
            rec.replaces = replaces;
            rec.established_at = Some(start_time(add_time, previous, now));
        });
        if established.is_none() {
            return;
        }
        let action = match (kind, replaces.is_some()) {
            (SaKind::Ike, false) => Action::IkeSaEstablished,
            (SaKind::Ike, true) => Action::IkeSaRekeyed,
            (SaKind::Child, false) => Action::ChildSaEstablished,
            (SaKind::Child, true) => Action::ChildSaRekeyed,
        };
        if kind == SaKind::Child && replaces.is_some() {
            if let Some(up) = self.tunnels.get_mut(&tunnel).and_then(|t| t.up.as_mut()) {
                up.rekeys += 1;
            }
        }
        if em.skip() {
            return;
        }
        let Some(rec) = self.sas.get(serial) else {
            return;
        };
        let mut detail = self.sa_detail(rec, false, em.now);
        if let Some(sa) = detail.sa.as_mut() {
            sa.replaces = replaces;
        }
        let subject = match replaces {
            Some(r) => format!("sa:{serial}:replaces:{r}"),
            None => format!("sa:{serial}"),
        };
        let (ek, reason) = kind_and_reason(inventory, replaces.map(|_| "rekey"));
        em.push(action, ek, reason, &subject, detail);
    }

    /// Whether a Child SA of `new`'s tunnel, listed from before `new` was,
    /// is negotiating a rekey (`REKEY_CHILD`, 5.4's `sent CREATE_CHILD_SA
    /// request to rekey IPsec SA`): this end rekeying the SA `new` came up
    /// beside.
    fn rekey_under_way_beside(&self, new: &SaRecord) -> bool {
        new.kind == SaKind::Child
            && new.ike_version == Some(IkeVersion::V2)
            && self.sas.of_tunnel(&new.tunnel).any(|r| {
                r.serial != new.serial
                    && r.kind == SaKind::Child
                    && !r.established
                    && r.first_seen <= new.first_seen
                    && r.state.as_deref().is_some_and(is_rekey_child)
            })
    }

    /// The SA that `new` and `sibling` both rekeyed, when the two are a
    /// Child SA rekey collision (both ends rekeyed it at once, RFC 7296
    /// §2.8.1; pluto logs `initiator rekeyed Child SA #M` for one and
    /// `responder rekeyed Child SA #M` for the other, and one of the two is
    /// deleted soon after).
    ///
    /// `sibling` is the newest SA `new` would otherwise be a rekey of. It
    /// is a collision, not a rekey of `sibling`, when `sibling` itself
    /// rekeyed an SA the tracker still holds (its rekey went less than a
    /// poll ago), still shows its own REKEY or REPLACE time ahead (nothing
    /// rekeyed it on its timer; a Child SA an initiator rekeyed away is
    /// listed without them), and the two were started from opposite ends
    /// (their rekey margins, see [`rekey_margin`]): a collision is one rekey
    /// from each end.
    fn collides_with(&self, new: &SaRecord, sibling: &SaRecord, now: i64) -> Option<u64> {
        let first = sibling.replaces.filter(|&s| self.sas.contains(s))?;
        let own_lifetime_ahead = [sibling.rekey_due_at, sibling.replace_due_at]
            .into_iter()
            .flatten()
            .any(|at| at > now + TIMER_ROUNDING_S);
        (new.kind == SaKind::Child
            && sibling.kind == SaKind::Child
            && new.ike_version == Some(IkeVersion::V2)
            && sibling.ike_version == new.ike_version
            && own_lifetime_ahead
            && started_from_opposite_ends(new, sibling))
        .then_some(first)
    }

    /// Whether `old` is still listed beside the new IKEv2 Child SA `new`
    /// with a lifetime of its own (a REKEY or REPLACE timer), so that this
    /// listing cannot tell a rekey from a second Child SA.
    ///
    /// The evidence, from real 4.10 and 5.2 listings: a Child SA that an
    /// initiator rekeyed away is listed, until pluto deletes it, with
    /// only `EXPIRE in 0s` (a rekey on its timer) or no timer at all (a
    /// forced `--rekey-child`); the responder's old Child SA keeps its
    /// timers until the initiator's delete arrives, about a second later;
    /// and a second Child SA that pluto adds beside a live one (two
    /// revivals pending) leaves the first listed with its timers at every
    /// poll after. IKEv1 lists an IPsec SA it replaced with only its
    /// `EXPIRE` timer (`EXPIRE in 27s` beside the new one's `REPLACE in
    /// 35s`, real 4.10 listings) until it expires, so an IKEv1 SA still
    /// running its `REPLACE` timer beside the new one was not replaced by
    /// it (a 5.2 lab: the peer's Quick Mode for the same `rekey=no`
    /// connection one second after ours); IKEv1 is decided at once, never
    /// held.
    fn still_runs_beside(&self, new: &SaRecord, old: &SaRecord, listing: &Index<'_>) -> bool {
        new.kind == SaKind::Child
            && old.kind == SaKind::Child
            && new.ike_version.is_some()
            && new.ike_version == old.ike_version
            && listing.lists(old.serial)
            && (old.rekey_due_at.is_some() || old.replace_due_at.is_some())
    }

    /// Whether the new SA `new` continues `old` (a rekey) rather than
    /// starting afresh after `old` was torn down (a reconnect, or a 5.x
    /// revival after the peer deleted it: a new SA, not a rekey).
    ///
    /// A rekey shows in the listing: the old SA is still listed beside the
    /// new one; an old SA that is gone and was last listed with only an
    /// `EXPIRE` timer expired (no rekey was coming); else a Child SA's new parent is its old parent or the IKE SA
    /// that rekeyed it, or an IKE SA's surviving Child SAs moved onto the
    /// new IKE SA. When the listing cannot tell (no parents printed, an
    /// IKE SA without children), it is a rekey, as docs/libreswan-format.md §14
    /// suggests.
    fn continues(&self, new: &SaRecord, old: &SaRecord, listing: &Index<'_>, now: i64) -> bool {
        if listing.lists(old.serial) {
            return true;
        }
        // An IKE SA listed negotiating while the old one was still up:
        // pluto started it to replace the old one, which ran out before
        // the replacement was done (4.10: an ISAKMP SA `to replace #43`
        // that took 21 s of retransmits against a restarting peer). A
        // revival starts only after the old SA is gone. (Child SAs of one
        // connection can overlap without replacing each other: see
        // `still_runs_beside`.)
        if new.kind == SaKind::Ike && new.first_seen <= old.last_seen {
            return true;
        }
        // Gone after a listing that showed it expiring with no rekey or
        // replace timer (`rekey=no`, `EXPIRE in 15s`): it ran out, and the
        // new SA is a 5.x revival on the same parent, not a rekey.
        if old.expire_shown && old.rekey_due_at.is_none() && old.replace_due_at.is_none() {
            return false;
        }
        // IKEv1 keeps an IPsec SA it replaced listed beside the new one, on
        // its EXPIRE timer, until it expires (see `still_runs_beside`): one
        // gone before its REPLACE came, never listed beside the new SA, was
        // deleted (a peer's Delete, a local `--deletestate`), and the new
        // SA is a revival on the same ISAKMP SA, not a rekey. IKEv2 leaves
        // no such trace: see docs/events.md.
        if new.kind == SaKind::Child
            && old.ike_version == Some(IkeVersion::V1)
            && new.ike_version == old.ike_version
            && old.replace_due_at.is_some()
            && new.first_seen > old.last_seen
            && !timer_due(old, now)
        {
            return false;
        }
        match new.kind {
            SaKind::Child => match (new.parent_serial, old.parent_serial) {
                (Some(np), Some(op)) => {
                    np == op
                        || listing.lists(op)
                        || self.sas.get(np).is_some_and(|p| p.replaces == Some(op))
                }
                // A new Child SA whose IKE SA no listing has named yet (the
                // IKE_AUTH child, `STATE_V2_IKE_AUTH_CHILD_I0`, prints
                // none, and `--trafficstatus` shows it established a moment
                // later): it continues the old one only if the old one's
                // IKE SA is still listed or was rekeyed. Gone unreplaced,
                // that IKE SA took its Child SAs with it, and the new one
                // came with a fresh IKE SA (gateway lab 4.10: east deleted
                // `sh1`'s IKE SA #201, and `sh1` #215 came up with #212 in
                // the `--trafficstatus` of the poll whose `--status` listed
                // it as #212's IKE_AUTH child).
                (None, Some(op)) => {
                    !listing.listing.lists_ike_sas()
                        || listing.lists(op)
                        || self.sas.get(op).is_none_or(|p| p.replaced_by.is_some())
                }
                _ => true,
            },
            SaKind::Ike => {
                let children: Vec<u64> = self
                    .sas
                    .children_of(old.serial)
                    .filter(|r| r.kind == SaKind::Child && r.established)
                    .map(|r| r.serial)
                    .collect();
                // Child SAs that outlive their IKE SA were handed over: the
                // IKE SA was replaced. When they all went with it, only a
                // rekey timer that was due says it was not a reconnect.
                // IKEv1's REPLACE starts a replacement (listed beside the old
                // SA until it expires, caught above); passing it is no sign
                // that a new IKE SA after a teardown continues the old one.
                let replace = match old.ike_version {
                    Some(IkeVersion::V1) => None,
                    _ => old.replace_due_at,
                };
                let due = [old.rekey_due_at, replace, old.expire_due_at]
                    .into_iter()
                    .flatten()
                    .any(|at| at <= now);
                children.is_empty() || children.iter().any(|&c| listing.lists(c)) || due
            }
        }
    }

    /// A not-yet-established SA appeared: a negotiation attempt.
    fn negotiation_started(
        &mut self,
        em: &mut Emitter,
        serial: u64,
        gone: &BTreeSet<u64>,
        inventory: bool,
    ) {
        let Some(rec) = self.sas.get(serial) else {
            return;
        };
        if is_ike_auth_placeholder(rec) {
            return;
        }
        let (tunnel, kind) = (rec.tunnel.clone(), rec.kind);
        // The newest gone attempt of the same tunnel and kind.
        let retry_of = self
            .sas
            .of_tunnel(&tunnel)
            .rev()
            .filter(|r| gone.contains(&r.serial))
            .find(|r| !r.established && r.kind == kind)
            .map(|r| r.serial);
        if let Some(old) = retry_of {
            self.sas.update(old, |old| old.replaced_by = Some(serial));
        }
        self.sas.update(serial, |rec| rec.replaces = retry_of);
        let is_up = self.tunnels.get(&tunnel).is_some_and(|t| t.up.is_some());
        if let Some(t) = self.tunnels.get_mut(&tunnel) {
            if !is_up {
                let n = t.negotiating.get_or_insert(Negotiating {
                    since: em.now,
                    attempts: 0,
                    stalled: false,
                });
                n.attempts += 1;
            }
        }
        let Some(rec) = self.sas.get(serial) else {
            return;
        };
        let mut detail = self.sa_detail(rec, false, em.now);
        if let Some(sa) = detail.sa.as_mut() {
            sa.replaces = retry_of;
        }
        let why = match (retry_of, is_up) {
            (Some(_), _) => Some("retry"),
            (None, true) => Some("rekey"),
            (None, false) => None,
        };
        let (ek, reason) = kind_and_reason(inventory, why);
        em.push(
            Action::NegotiationStarted,
            ek,
            reason,
            &format!("sa:{serial}"),
            detail,
        );
    }

    /// A listed SA is gone: decide why and report it.
    ///
    /// `gone` holds every serial this poll found gone; `run_ended` says
    /// that pluto's run ended between this poll and the last one, though
    /// no poll failed to show it.
    fn close(
        &mut self,
        em: &mut Emitter,
        serial: u64,
        listing: &Index<'_>,
        lists_conns: bool,
        gone_now: Gone<'_>,
    ) {
        let Gone {
            serials: gone,
            torn_down,
            run_ended,
        } = gone_now;
        self.held.remove(&serial);
        let Some(mut rec) = self.sas.remove(serial) else {
            return;
        };
        let now = em.now;
        if rec.established {
            // Gone at its REKEY beside a newer Child SA that rekeyed
            // nothing (see `went_at_its_rekey`): deleted as stale, no
            // successor to look for.
            let stale = self.deleted_as_stale(&rec, Some(now));
            if rec.replaced_by.is_none() && !stale {
                // A Child SA that rekeyed the same SA as this one (a rekey
                // collision, see `collides_with`) is its sibling, not its
                // successor: this one, the loser, was deleted.
                rec.replaced_by = self
                    .sas
                    .of_tunnel(&rec.tunnel)
                    .filter(|r| r.serial > serial && r.established && r.kind == rec.kind)
                    .filter(|r| rec.replaces.is_none() || r.replaces != rec.replaces)
                    .filter(|r| !new_ike_sa_after_teardown(r, now))
                    .filter(|r| !judged_beside(r, &rec, self.run_anchor))
                    .filter(|r| listing.lists(r.serial))
                    .filter(|r| self.continues(r, &rec, listing, now))
                    .map(|r| r.serial)
                    .max();
            } else if rec.replaced_by.is_some_and(|by| !listing.lists(by)) {
                // Rekeyed twice at once (a collision): the rekey still
                // listed survived the other.
                let survivor = self
                    .sas
                    .of_tunnel(&rec.tunnel)
                    .filter(|r| r.replaces == Some(serial) && listing.lists(r.serial))
                    .map(|r| r.serial)
                    .max();
                if survivor.is_some() {
                    rec.replaced_by = survivor;
                }
            }
            let due_passed = |due: Option<i64>| due.is_some_and(|d| d <= now);
            // IKEv1's REPLACE is where pluto starts a replacement (or,
            // with `rekey=no`, swaps in the EXPIRE timer), not the end of
            // the SA's life: that is its EXPIRE, which every listing after
            // the REPLACE shows. An IKEv1 SA gone past its REPLACE before
            // any listing showed an EXPIRE was deleted (a DPD hold, a
            // terminate; lab 4.10: a Quick Mode SA 35 s into a 60 s life;
            // gateway lab: `v1a` #359, `REPLACE in 2s` at 17:20:06,
            // terminated at 17:20:10 beside its shared ISAKMP SA).
            let replace_ends_it = rec.ike_version != Some(IkeVersion::V1);
            // An IKEv2 Child SA whose IKE SA went in the same poll went
            // with it (a liveness or DPD failure, a peer's Delete of the
            // IKE SA), even past its REPLACE time: pluto deleted the
            // family, logging no expiry for the Child SA.
            let went_with_parent = rec.kind == SaKind::Child
                && rec.ike_version == Some(IkeVersion::V2)
                && rec.parent_serial.is_some_and(|p| gone.contains(&p));
            // An IKE SA past its REPLACE that went in the same poll as an
            // IKE SA of the same peer with no timer due went with it: a
            // liveness failure restarts every connection that shares the
            // peer (gateway lab 4.10: g01 #226, `REPLACE in 5s` at
            // 16:53:28, deleted at 31.24 when `g05` #231's liveness failed
            // and pluto restarted every connection to the dead east).
            let peer_torn_down = rec.kind == SaKind::Ike
                && self
                    .tunnels
                    .get(&rec.tunnel)
                    .and_then(|t| t.remote_ip.as_ref())
                    .is_some_and(|ip| torn_down.contains(ip));
            let reason = if rec.replaced_by.is_some() {
                "replaced"
            } else if stale {
                "deleted"
            } else if (rec.expire_shown && rec.expire_due_at.is_none_or(|d| d <= now))
                || (replace_ends_it
                    && due_passed(rec.replace_due_at)
                    && !went_with_parent
                    && !peer_torn_down)
            {
                "expired"
            } else {
                "deleted"
            };
            let replaced_by = rec.replaced_by;
            self.end_sa(em, rec, reason, replaced_by);
        } else {
            let removed = lists_conns && !listing.shows_name(&rec.conn.name);
            // pluto ends its negotiations only when it stops: the SAs of
            // independent IKE SAs do not all go at once otherwise, and a
            // restarted pluto lists nothing until it starts anew (a
            // restart between two polls, which `restart_detected` sees
            // only at the new run's first SA).
            let reason = if rec.replaced_by.is_some() {
                "retried"
            } else if run_ended {
                "pluto-restart"
            } else if removed {
                "connection-removed"
            } else {
                "abandoned"
            };
            let replaced_by = rec.replaced_by;
            self.end_sa(em, rec, reason, replaced_by);
        }
    }

    /// Report the end of an SA that was removed from the ledger.
    fn end_sa(&mut self, em: &mut Emitter, rec: SaRecord, reason: &str, replaced_by: Option<u64>) {
        if is_ike_auth_placeholder(&rec) {
            self.placeholder_let_go(em.generation, rec.serial);
            return;
        }
        let action = match (rec.established, rec.kind) {
            (false, _) => Action::NegotiationFailed,
            (true, SaKind::Ike) if matches!(reason, "replaced" | "expired") => Action::IkeSaExpired,
            (true, SaKind::Ike) => Action::IkeSaDeleted,
            (true, SaKind::Child) if matches!(reason, "replaced" | "expired") => {
                Action::ChildSaExpired
            }
            (true, SaKind::Child) => Action::ChildSaDeleted,
        };
        if rec.established && rec.kind == SaKind::Child {
            if let Some(up) = self
                .tunnels
                .get_mut(&rec.tunnel)
                .and_then(|t| t.up.as_mut())
            {
                up.closed_in = up.closed_in.saturating_add(rec.bytes_in.total());
                up.closed_out = up.closed_out.saturating_add(rec.bytes_out.total());
            }
        }
        let mut detail = self.sa_detail(&rec, true, em.now);
        if let Some(sa) = detail.sa.as_mut() {
            sa.replaced_by = replaced_by;
            sa.replaces = None;
        }
        em.push(
            action,
            EventKind::Event,
            Some(reason),
            &format!("sa:{}", rec.serial),
            detail,
        );
        if rec.established && rec.kind == SaKind::Child {
            em.end_reasons
                .insert(rec.tunnel.clone(), reason.to_string());
        }
    }

    /// The connection, SA, tunnel and endpoint parts of an SA's event.
    fn sa_detail(&self, rec: &SaRecord, ended: bool, now: i64) -> Detail {
        let child = rec.kind == SaKind::Child;
        let sa = SaFields {
            serial: rec.serial,
            kind: kind_str(rec.kind).to_string(),
            ike_version: version_num(rec.ike_version),
            state: rec.state.as_deref().map(String::from),
            parent_serial: rec.parent_serial,
            replaces: rec.replaces,
            replaced_by: None,
            spi_in: rec.spi_in.as_deref().map(String::from),
            spi_out: rec.spi_out.as_deref().map(String::from),
            bytes_in: (ended && child && rec.established).then(|| rec.bytes_in.total()),
            bytes_out: (ended && child && rec.established).then(|| rec.bytes_out.total()),
            duration_s: ended.then(|| now - rec.established_at.unwrap_or(rec.first_seen)),
        };
        let mut detail = self.tunnel_detail(&rec.tunnel, now);
        if !child {
            detail.tunnel = None;
        }
        detail.connection = Some(connection_fields(&rec.conn));
        detail.sa = Some(sa);
        if let Some(d) = detail.destination.as_mut() {
            d.port = rec.port;
        }
        detail.user = rec.user.as_deref().map(|name| User {
            name: name.to_string(),
        });
        detail
    }

    /// The connection, tunnel totals and endpoints of a tunnel's event.
    fn tunnel_detail(&self, key: &TunnelKey, now: i64) -> Detail {
        let Some(t) = self.tunnels.get(key) else {
            return Detail::default();
        };
        let tunnel = t.up.as_ref().map(|up| {
            let (mut bytes_in, mut bytes_out) = (up.closed_in, up.closed_out);
            for r in self.live_children(key) {
                bytes_in = bytes_in.saturating_add(r.bytes_in.total());
                bytes_out = bytes_out.saturating_add(r.bytes_out.total());
            }
            TunnelFields {
                up_since: rfc3339(up.since),
                duration_s: now - up.since,
                rekeys: up.rekeys,
                bytes_in,
                bytes_out,
            }
        });
        Detail {
            connection: Some(connection_fields(&t.conn)),
            tunnel,
            source: t.local_ip.as_deref().map(|ip| Endpoint {
                ip: Some(ip.to_string()),
                port: None,
            }),
            destination: t.remote_ip.as_deref().map(|ip| Endpoint {
                ip: Some(ip.to_string()),
                port: None,
            }),
            ..Detail::default()
        }
    }

    /// The established Child SAs of a tunnel, oldest first.
    fn live_children<'s>(&'s self, key: &'s TunnelKey) -> impl Iterator<Item = &'s SaRecord> + 's {
        live_children(&self.sas, key)
    }

    /// Record the tunnels of every listed SA, with the endpoints the
    /// connection list prints for them.
    ///
    /// This runs for every listed SA at every poll, so it copies nothing
    /// that did not change: one key buffer is reused, a connection
    /// reference or address is replaced only when it differs, and an SA
    /// listed under the same reference as the one before it is skipped.
    fn learn_endpoints(&mut self, listing: &Index<'_>) {
        let mut key = TunnelKey::default();
        let mut previous: Option<&ConnRef> = None;
        for (_, seen) in &listing.current {
            work::count(1);
            let conn = seen.conn();
            // An IKE SA and its Child SAs are listed one after the other
            // under one connection reference: the second time changes
            // nothing.
            if previous.replace(conn) == Some(conn) {
                continue;
            }
            key.set_to(conn);
            let listed = listing
                .connections
                .get(&(conn.name.as_str(), conn.instances.as_slice()));
            let learn = |t: &mut TunnelRecord| {
                let mut changed = false;
                if t.conn != *conn {
                    t.conn = conn.clone();
                    changed = true;
                }
                if let Some(c) = listed {
                    changed |= set_ip(&mut t.local_ip, c.local_host());
                    changed |= set_ip(&mut t.remote_ip, c.remote_host());
                }
                changed |= set_ip(&mut t.remote_ip, conn.peer.as_deref());
                ((), changed)
            };
            // Every listed tunnel at every poll: only one whose record
            // changes is marked for the checkpoint.
            if self.tunnels.update(&key, learn).is_none() {
                let t = self.tunnels.insert_new(
                    key.clone(),
                    TunnelRecord {
                        conn: conn.clone(),
                        local_ip: None,
                        remote_ip: None,
                        up: None,
                        negotiating: None,
                    },
                );
                let _ = learn(t);
            }
        }
    }

    /// Report a tunnel that got its first established Child SA, or lost
    /// its last one.
    fn tunnel_transitions(&mut self, em: &mut Emitter, key: &TunnelKey, inventory: bool) {
        let Some(t) = self.tunnels.get(key) else {
            return;
        };
        let was_up = t.up.is_some();
        let live: Vec<&SaRecord> = self.live_children(key).collect();
        if !was_up && !live.is_empty() {
            let since = live
                .iter()
                .map(|r| r.established_at.unwrap_or(em.now))
                .min()
                .unwrap_or(em.now);
            let first = live[0].serial;
            if let Some(t) = self.tunnels.get_mut(key) {
                t.up = Some(UpPeriod {
                    since,
                    first_serial: first,
                    rekeys: 0,
                    closed_in: 0,
                    closed_out: 0,
                });
                t.negotiating = None;
            }
            if em.skip() {
                return;
            }
            let Some(first_rec) = self.sas.get(first) else {
                return;
            };
            let mut detail = self.sa_detail(first_rec, false, em.now);
            detail.tunnel = self.tunnel_detail(key, em.now).tunnel;
            let (ek, reason) = kind_and_reason(inventory, None);
            em.push(
                Action::TunnelUp,
                ek,
                reason,
                &format!("tunnel:{key}:{first}"),
                detail,
            );
        } else if was_up && live.is_empty() {
            let reason = em
                .end_reasons
                .get(key)
                .cloned()
                .unwrap_or_else(|| "deleted".to_string());
            self.tunnel_down(em, key, &reason);
        }
    }

    /// End a tunnel's up period and report it with its lifetime totals.
    fn tunnel_down(&mut self, em: &mut Emitter, key: &TunnelKey, reason: &str) {
        let Some(first) = self
            .tunnels
            .get(key)
            .and_then(|t| t.up.as_ref())
            .map(|up| up.first_serial)
        else {
            return;
        };
        let detail = self.tunnel_detail(key, em.now);
        if let Some(t) = self.tunnels.get_mut(key) {
            t.up = None;
        }
        em.push(
            Action::TunnelDown,
            EventKind::Event,
            Some(reason),
            &format!("tunnel:{key}:{first}"),
            detail,
        );
    }

    /// Report a tunnel that has been negotiating for too long, once per episode.
    fn check_stalled(&mut self, em: &mut Emitter, key: &TunnelKey) {
        // Every negotiating tunnel is checked at every poll, and few stall:
        // the attempt is looked up again only for the event.
        let newest_attempt = self
            .sas
            .of_tunnel(key)
            .rev()
            .find(|r| !r.established)
            .map(|r| r.serial);
        let limit = self.config.stalled_after_s;
        let Some(t) = self.tunnels.get_mut(key) else {
            return;
        };
        let Some(attempt) = newest_attempt.filter(|_| t.up.is_none()) else {
            t.negotiating = None;
            return;
        };
        let n = t.negotiating.get_or_insert(Negotiating {
            since: em.now,
            attempts: 1,
            stalled: false,
        });
        if n.stalled || em.now - n.since < limit {
            return;
        }
        n.stalled = true;
        let fields = NegotiationFields {
            since: rfc3339(n.since),
            duration_s: em.now - n.since,
            attempts: n.attempts,
        };
        let subject = format!("stall:{key}:{}", n.since);
        let Some(attempt) = self.sas.get(attempt) else {
            return;
        };
        let mut detail = self.sa_detail(attempt, false, em.now);
        detail.negotiation = Some(fields);
        em.push(
            Action::NegotiationStalled,
            EventKind::Event,
            Some("not-established"),
            &subject,
            detail,
        );
    }

    /// Report connections the list shows for the first time (or reloaded
    /// under a new `$N` serial).
    ///
    /// Returns the base names the list shows, for `removed_connections`.
    fn added_connections<'s>(
        &mut self,
        em: &mut Emitter,
        listing: &'s Listing,
        inventory: bool,
    ) -> FxHashSet<&'s str> {
        let mut done: FxHashSet<&str> =
            FxHashSet::with_capacity_and_hasher(listing.connections().len(), Default::default());
        for c in listing
            .connections()
            .filter(|c| c.conn().instances.is_empty())
        {
            let name = c.conn().name.as_str();
            if !done.insert(name) {
                continue;
            }
            let known = self.connections.get(name);
            if let Some(rec) = known {
                let reloaded =
                    matches!((rec.conn_serial, c.conn_serial()), (Some(a), Some(b)) if a != b);
                if rec.present && !reloaded {
                    continue;
                }
            }
            let loads = known.map_or(0, |r| r.loads) + 1;
            if known.is_some_and(|r| r.present) {
                self.connection_removed(em, name, "reloaded");
            }
            // The `$N` serial repeats after a pluto restart, and 3.x has
            // none: the load count keeps every load's id its own.
            let load_id = match c.conn_serial() {
                Some(s) => format!("load{loads}:${s}"),
                None => format!("load{loads}"),
            };
            let subject = format!("conn:{name}:{load_id}");
            self.connections_changed.insert(Text::from(name));
            self.connections.insert(
                Text::from(name),
                ConnectionRecord {
                    conn_serial: c.conn_serial(),
                    loads,
                    load_id: load_id.into(),
                    present: true,
                },
            );
            if em.skip() {
                continue;
            }
            let detail = Detail {
                connection: Some(connection_fields(c.conn())),
                source: ip_only(c.local_host()).map(|ip| Endpoint {
                    ip: Some(ip),
                    port: None,
                }),
                destination: ip_only(c.remote_host()).map(|ip| Endpoint {
                    ip: Some(ip),
                    port: None,
                }),
                ..Detail::default()
            };
            let (ek, reason) = kind_and_reason(inventory, None);
            em.push(Action::ConnectionAdded, ek, reason, &subject, detail);
        }
        done
    }

    /// Report connections the list no longer shows (`listed`: the base
    /// names it shows).
    fn removed_connections(&mut self, em: &mut Emitter, listed: &FxHashSet<&str>, reason: &str) {
        let mut gone: Vec<Text> = self
            .connections
            .iter()
            .filter(|(name, rec)| rec.present && !listed.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        // In name order, as they always came.
        gone.sort_unstable();
        for name in gone {
            self.connection_removed(em, &name, reason);
        }
    }

    fn connection_removed(&mut self, em: &mut Emitter, name: &str, reason: &str) {
        let Some(rec) = self.connections.get_mut(name) else {
            return;
        };
        self.connections_changed.insert(Text::from(name));
        rec.present = false;
        let subject = format!("conn:{name}:{}", rec.load_id);
        let detail = Detail {
            connection: Some(ConnectionFields {
                name: name.to_string(),
                instance: None,
                peer: None,
            }),
            ..Detail::default()
        };
        em.push(
            Action::ConnectionRemoved,
            EventKind::Event,
            Some(reason),
            &subject,
            detail,
        );
    }

    /// Periodic byte counters of every up tunnel, when configured.
    fn traffic_metrics(&mut self, em: &mut Emitter) {
        let Some(interval) = self.config.traffic_interval_s else {
            return;
        };
        if self.last_traffic_at.is_some_and(|t| em.now - t < interval) {
            return;
        }
        self.last_traffic_at = Some(em.now);
        for key in self.tunnels.keys_where(|_, t| t.up.is_some()) {
            let detail = self.tunnel_detail(&key, em.now);
            em.push(
                Action::Traffic,
                EventKind::Metric,
                None,
                &format!("traffic:{key}:{}", em.now),
                detail,
            );
        }
    }

    /// Drop tunnels that are down, not negotiating and have no SA left, so
    /// road-warrior churn does not grow the state forever.
    fn forget_idle_tunnels(&mut self) {
        let sas = &self.sas;
        self.tunnels
            .retain(|key, t| t.up.is_some() || t.negotiating.is_some() || sas.tunnel_has_sas(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's 4.10 `showstates` and `trafficstatus` of one moment
    /// (tests/fixtures/lab-4.10), with a second state line for a listed
    /// serial and a trafficstatus line no state line shows.
    fn lab_listing() -> Snapshot {
        let mut snap = crate::status::parse(include_str!(
            "../../../../tests/fixtures/lab-4.10/02-established-showstates.txt"
        ));
        snap.merge(crate::status::parse(include_str!(
            "../../../../tests/fixtures/lab-4.10/02-established-trafficstatus.txt"
        )));
        assert!(!snap.states.is_empty() && !snap.traffic.is_empty());
        let again = snap.states[0].clone();
        snap.states.push(again);
        let mut alone = snap.traffic[0].clone();
        alone.serial = 9_999;
        snap.traffic.push(alone);
        snap
    }

    #[test]
    fn listed_serials_are_found_as_bits_or_by_search_alike() {
        let listed = Listing::of(&lab_listing());
        let listing = Index::new(&listed);
        assert!(
            listing.bits.is_none(),
            "9,999 among a few serials is sparse"
        );
        let dense = Index {
            current: listing.current[..listing.current.len() - 1].to_vec(),
            ..Index::new(&listed)
        };
        let dense = Index {
            bits: SerialBits::new(&dense.current),
            ..dense
        };
        assert!(dense.bits.is_some());
        for serial in 0..20 {
            let listed = dense.current.iter().any(|e| e.0 == serial);
            assert_eq!(dense.lists(serial), listed, "#{serial}");
        }
        assert!(listing.lists(9_999) && !listing.lists(9_998));
    }

    /// The tracker a checkpoint of the released daemon holds (its
    /// `tracker` member, as the daemon wrote it): the lab's 4.10 gateway
    /// of tests/fixtures/checkpoint.
    fn released_checkpoint_tracker() -> &'static str {
        let file = include_str!("../../../../tests/fixtures/checkpoint/lab-4.10-gw-fixture.json");
        let tracker = file
            .trim_end()
            .split_once(r#","tracker":"#)
            .and_then(|(_, rest)| rest.strip_suffix('}'))
            .expect("a checkpoint whose last member is the tracker");
        assert!(tracker.contains(r#""v2-short\u001f":{"conn""#));
        tracker
    }

    #[test]
    fn a_released_checkpoint_tracker_saves_again_byte_for_byte() {
        let saved = released_checkpoint_tracker();
        let tracker: Tracker = serde_json::from_str(saved).expect("the released tracker loads");
        assert_eq!(serde_json::to_string(&tracker).expect("saved"), saved);
        let keys: Vec<String> = tracker.tunnels.iter().map(|(k, _)| k.to_string()).collect();
        assert!(keys.contains(&"v1-tun\u{1f}".to_string()), "{keys:?}");
        let v2_tun = TunnelKey::new("v2-tun", None::<String>);
        assert_eq!(tracker.sas.get(24).map(|r| &r.tunnel), Some(&v2_tun));
        assert!(tracker.tunnels_up().contains(&v2_tun));
        assert_eq!(
            tracker
                .sas
                .of_tunnel(&v2_tun)
                .map(|r| r.serial)
                .collect::<Vec<_>>(),
            [21, 24]
        );
    }

    #[test]
    fn a_tunnel_whose_name_holds_the_key_separator_keeps_its_key_through_a_checkpoint() {
        let mut snap = lab_listing();
        for state in &mut snap.states {
            state.conn.name = format!("odd\u{1f}{}", state.conn.name).into();
        }
        for traffic in &mut snap.traffic {
            traffic.conn.name = format!("odd\u{1f}{}", traffic.conn.name).into();
        }
        let mut tracker = Tracker::new(TrackerConfig::new("gw"));
        tracker.observe(&snap);
        let restored: Tracker =
            serde_json::from_str(&serde_json::to_string(&tracker).expect("saved")).expect("read");
        assert_eq!(restored.tunnels, tracker.tunnels);
        assert_eq!(restored.sas, tracker.sas);
        assert!(!restored.tunnels_up().is_empty());
        assert_eq!(restored.tunnels_up(), tracker.tunnels_up());
        for (key, t) in restored.tunnels.iter() {
            assert_eq!(*key, TunnelKey::of(&t.conn));
            assert!(key.name.starts_with("odd\u{1f}"), "{key:?}");
        }
    }
}
