//! The tracker's memory: what it knows about every open SA, tunnel and
//! connection between two snapshots.
//!
//! These records are plain serialisable data, so the whole tracker state can
//! be checkpointed and restored. They hold facts and small derived values
//! (byte totals with wraps undone, absolute due times); they never decide
//! which events to emit — that is `track::Tracker`'s job.

use std::collections::BTreeSet;
use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::listing::Seen;
use crate::snapshot::{ConnRef, IkeVersion, SaKind, Text, TimerKind, TunnelKey};
use crate::work;

/// One SA (IKE or Child, established or still negotiating) of the current
/// pluto run, keyed by its serial in the tracker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaRecord {
    /// The `#N` serial.
    pub serial: u64,
    /// IKE or Child.
    pub kind: SaKind,
    /// IKE version, when printed.
    pub ike_version: Option<IkeVersion>,
    /// The connection reference as last printed.
    pub conn: ConnRef,
    /// The tunnel this SA belongs to: always the key of `conn`.
    pub tunnel: TunnelKey,
    /// Whether it has been seen established.
    pub established: bool,
    /// When it was first seen.
    pub first_seen: i64,
    /// When it was first seen established (or its kernel `add_time`).
    pub established_at: Option<i64>,
    /// When it was last seen.
    pub last_seen: i64,
    /// State name (or story in 5.4+) as last printed.
    pub state: Option<Text>,
    /// Parent IKE SA of a Child SA.
    pub parent_serial: Option<u64>,
    /// Inbound SPI from the SPI line.
    pub spi_in: Option<Text>,
    /// Outbound SPI from the SPI line.
    pub spi_out: Option<Text>,
    /// Kernel `add_time` from trafficstatus.
    pub add_time: Option<u64>,
    /// Remote IKE port.
    pub port: Option<u16>,
    /// XAUTH username or remote ID.
    pub user: Option<Text>,
    /// Whether the last listing showed an `EXPIRE` timer.
    pub expire_shown: bool,
    /// Absolute time (unix s) the last listing's `EXPIRE` timer was due.
    pub expire_due_at: Option<i64>,
    /// Absolute time (unix s) the last listing's `REPLACE` timer was due.
    pub replace_due_at: Option<i64>,
    /// Absolute time (unix s) the last listing's `REKEY` timer was due.
    #[serde(default)]
    pub rekey_due_at: Option<i64>,
    /// Inbound bytes, wraps undone.
    pub bytes_in: ByteCounter,
    /// Outbound bytes, wraps undone.
    pub bytes_out: ByteCounter,
    /// The SA this one replaced (a rekey).
    pub replaces: Option<u64>,
    /// The SA that replaced this one.
    pub replaced_by: Option<u64>,
    /// It was listed negotiating a new Child SA, not a rekey
    /// (`STATE_V2_NEW_CHILD_I1`, 5.4's `sent CREATE_CHILD_SA request for
    /// new IPsec SA`): pluto adding a Child SA beside a live one (a
    /// revival), which no rekey listing can look like.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_child: bool,
    /// It was listed negotiating a Child SA rekey (`STATE_V2_REKEY_CHILD_I0`,
    /// 5.4's `sent CREATE_CHILD_SA request to rekey IPsec SA`): a rekey,
    /// even when the SA it rekeys is gone before it is up (a collision the
    /// peer's rekey settled first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rekey_child: bool,
}

/// Whether a state name (or 5.4's story) is an IKEv2 negotiation of a new
/// Child SA (`CREATE_CHILD_SA` for a new one, not a rekey).
fn is_new_child(state: &str) -> bool {
    let name = state.strip_prefix("STATE_").unwrap_or(state);
    let name = name.strip_prefix("V2_").unwrap_or(name);
    name.starts_with("NEW_CHILD") || state.contains("request for new IPsec SA")
}

/// Whether a state name (or 5.4's story) is an IKEv2 Child SA rekey under
/// way (`STATE_V2_REKEY_CHILD_I0`, `..._I1`, `sent CREATE_CHILD_SA request
/// to rekey IPsec SA`).
pub(super) fn is_rekey_child(state: &str) -> bool {
    state.contains("REKEY_CHILD") || state.contains("request to rekey IPsec SA")
}

impl SaRecord {
    /// A record for an SA seen for the first time at `now`.
    pub fn new(serial: u64, seen: &Seen<'_>, now: i64) -> SaRecord {
        let mut rec = SaRecord {
            serial,
            kind: seen.kind(),
            ike_version: None,
            conn: seen.conn().clone(),
            tunnel: TunnelKey::of(seen.conn()),
            established: false,
            first_seen: now,
            established_at: None,
            last_seen: now,
            state: None,
            parent_serial: None,
            spi_in: None,
            spi_out: None,
            add_time: None,
            port: None,
            user: None,
            expire_shown: false,
            expire_due_at: None,
            replace_due_at: None,
            rekey_due_at: None,
            bytes_in: ByteCounter::default(),
            bytes_out: ByteCounter::default(),
            replaces: None,
            replaced_by: None,
            new_child: false,
            rekey_child: false,
        };
        rec.update(seen, now);
        rec
    }

    /// Take in what this snapshot printed about the SA, and say what of
    /// what a checkpoint holds changed ([`Change`]).
    ///
    /// Runs for every listed SA at every poll: a value that did not change
    /// is left alone rather than copied again.
    pub fn update(&mut self, seen: &Seen<'_>, now: i64) -> Change {
        self.last_seen = now;
        let before = self.listed_values();
        let mut texts = false;
        if seen.has_state() {
            self.ike_version = seen.ike_version().or(self.ike_version);
            let state = seen.state_name().or_else(|| seen.story());
            // A state name is read only when it changed: at every poll
            // nearly every SA prints the one it printed before.
            if let Some(state) = state.filter(|s| self.state.as_deref() != Some(*s)) {
                self.new_child |= is_new_child(state);
                self.rekey_child |= is_rekey_child(state);
                self.state = Some(Text::from(state));
                texts = true;
            }
            self.parent_serial = seen.parent_serial().or(self.parent_serial);
            self.port = seen.port().or(self.port);
            self.expire_shown = seen.shows_expire();
            self.expire_due_at = seen.due(TimerKind::Expire).map(|d| now + d);
            self.replace_due_at = seen.due(TimerKind::Replace).map(|d| now + d);
            self.rekey_due_at = seen.due(TimerKind::Rekey).map(|d| now + d);
            if seen.has_spi_line() {
                if let Some(s) = seen.spi_in().filter(|s| is_hex(s)) {
                    texts |= set_text(&mut self.spi_in, s);
                }
                if let Some(s) = seen.spi_out().filter(|s| is_hex(s)) {
                    texts |= set_text(&mut self.spi_out, s);
                }
                if let Some(u) = seen.spi_username() {
                    texts |= set_text(&mut self.user, u);
                }
            }
        }
        if seen.has_traffic() {
            // The earliest reading: pluto prints either direction's add time.
            self.add_time = match (seen.add_time(), self.add_time) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(u) = seen.traffic_user() {
                texts |= set_text(&mut self.user, u);
            }
        }
        let (bytes_in, bytes_out, exact) = seen.bytes();
        let mut counters = false;
        if let Some(b) = bytes_in {
            counters |= self.bytes_in.update(b, exact);
        }
        if let Some(b) = bytes_out {
            counters |= self.bytes_out.update(b, exact);
        }
        Change {
            record: texts || self.listed_values() != before,
            counters,
        }
    }

    /// The numbers [`SaRecord::update`] may set, as a checkpoint's
    /// fingerprint sees them (due times to their slot, [`due_slot`]): what
    /// it compares to tell whether a listing changed the record.
    #[allow(clippy::type_complexity)]
    fn listed_values(
        &self,
    ) -> (
        Option<IkeVersion>,
        Option<u64>,
        Option<u16>,
        [Option<i64>; 3],
        Option<u64>,
        [bool; 3],
    ) {
        (
            self.ike_version,
            self.parent_serial,
            self.port,
            [
                due_slot(self.expire_due_at),
                due_slot(self.replace_due_at),
                due_slot(self.rekey_due_at),
            ],
            self.add_time,
            [self.expire_shown, self.new_child, self.rekey_child],
        )
    }

    /// Whether `seen`, listed under this record's serial, is the same SA,
    /// another one (which only happens when pluto restarted), or cannot
    /// be told.
    ///
    /// SPIs are random per SA, so they decide when both are known. The
    /// connection and kind of an established SA never change. The kernel
    /// `add_time` is weaker evidence: pluto prints the add time of
    /// whichever direction's kernel SA it queried last (a `status` in
    /// between changes it), and a responder installs the inbound SA
    /// seconds before the outbound one; only a larger difference counts.
    pub fn identity(&self, seen: &Seen<'_>) -> Identity {
        let spi = seen.spi_in().filter(|s| is_hex(s));
        if let (Some(a), Some(b)) = (spi, &self.spi_in) {
            return if a == b {
                Identity::Same
            } else {
                Identity::Other
            };
        }
        if self.established && (seen.conn().name != self.conn.name || seen.kind() != self.kind) {
            return Identity::Other;
        }
        match (seen.add_time(), self.add_time) {
            (Some(a), Some(b)) if a.abs_diff(b) > ADD_TIME_SLACK_S => Identity::Other,
            (Some(_), Some(_)) => Identity::Same,
            _ => Identity::Unknown,
        }
    }
}

/// What a listing changed of an SA's record, as a checkpoint holds it: the
/// journal writes only the records marked so ([`SaTable::update_listed`]),
/// not every record it would otherwise have to fingerprint at every poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// Anything but the byte counters and `last_seen` (which a checkpoint's
    /// journal leaves out).
    pub record: bool,
    /// The byte counters.
    pub counters: bool,
}

/// Due times are fingerprinted to this many seconds. pluto prints a timer
/// as whole seconds from its own clock, so the due time a listing gives
/// (poll time + `in Ns`) moves by a second either way from poll to poll
/// without anything having changed; a record is written again when one
/// moves to another 64-second slot (about one SA in thirty per poll), or
/// changes otherwise, and a rescheduled timer almost always does.
pub const DUE_SLACK_S: i64 = 64;

/// The slot of a due time a checkpoint's fingerprint compares.
pub fn due_slot(due: Option<i64>) -> Option<i64> {
    due.map(|d| d.div_euclid(DUE_SLACK_S))
}

/// How far apart (seconds) two `add_time` readings of one SA can be: the
/// inbound and outbound kernel SAs of a slow responder are installed up to
/// a few seconds apart, and pluto prints either.
const ADD_TIME_SLACK_S: u64 = 10;

/// What a listing says about a known serial: see [`SaRecord::identity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Positively the SA the record is about.
    Same,
    /// Positively another SA under the same serial.
    Other,
    /// Nothing printed tells.
    Unknown,
}

/// A byte counter observed over time, with 32-bit wraps undone.
///
/// Counters are only ever compared within one serial. Before libreswan 5.0
/// trafficstatus prints them as 32-bit values, so a decrease means a wrap.
/// Exact (trafficstatus) and rounded (status `ESPin=5KB`) readings are kept
/// apart, so rounding is never mistaken for a wrap; the total is the larger
/// of the two, the best lower bound of what really went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteCounter {
    /// Readings from trafficstatus.
    pub exact: Reading,
    /// Readings from the rounded status SPI line.
    pub rounded: Reading,
}

/// One source of byte readings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reading {
    /// The last raw reading.
    pub last: Option<u64>,
    /// Bytes counted over the SA's life from this source.
    pub total: u64,
}

impl Reading {
    /// Take in a raw reading; whether it changed anything (a reading equal
    /// to the last one does not).
    fn update(&mut self, raw: u64) -> bool {
        let changed = self.last != Some(raw);
        match self.last {
            None => self.total = raw,
            Some(last) if raw >= last => self.total = self.total.saturating_add(raw - last),
            Some(last) if last <= u64::from(u32::MAX) => {
                let wrapped = (1u64 << 32) - last + raw;
                self.total = self.total.saturating_add(wrapped);
            }
            // A 64-bit counter that went down was reset: count what is new.
            Some(_) => self.total = self.total.saturating_add(raw),
        }
        self.last = Some(raw);
        changed
    }
}

impl ByteCounter {
    /// Take in a new raw reading; whether it changed the counter.
    pub fn update(&mut self, raw: u64, exact: bool) -> bool {
        if exact {
            self.exact.update(raw)
        } else {
            self.rounded.update(raw)
        }
    }

    /// Bytes counted over the SA's life.
    pub fn total(&self) -> u64 {
        self.exact.total.max(self.rounded.total)
    }
}

/// One tunnel: a connection instance keyed by (base name, peer), so that
/// road-warrior instances that churn (`"rw"[1]` → `"rw"[2]`) stay one tunnel.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct TunnelRecord {
    /// The connection reference last seen for this tunnel.
    pub conn: ConnRef,
    /// The local IKE address, when the connection list printed one.
    pub local_ip: Option<Text>,
    /// The remote IKE address, when known.
    pub remote_ip: Option<Text>,
    /// Set while the tunnel has an established Child SA.
    pub up: Option<UpPeriod>,
    /// Set while the tunnel tries to come up.
    pub negotiating: Option<Negotiating>,
}

/// The current up period of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpPeriod {
    /// When it came up.
    pub since: i64,
    /// The Child SA that brought it up (names the period in event ids).
    pub first_serial: u64,
    /// Child SA rekeys during this period.
    pub rekeys: u64,
    /// Bytes in of the Child SAs of this period that already ended.
    pub closed_in: u64,
    /// Bytes out of the Child SAs of this period that already ended.
    pub closed_out: u64,
}

/// A tunnel that is trying to come up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negotiating {
    /// When the first attempt was seen.
    pub since: i64,
    /// SAs tried so far.
    pub attempts: u64,
    /// Whether `negotiation-stalled` was already emitted for this episode.
    pub stalled: bool,
}

/// A loaded connection (base connections only; instances are tunnels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// `$N` connection serial, 4.0+.
    pub conn_serial: Option<u64>,
    /// How often this name was added.
    pub loads: u64,
    /// Names this load in event ids: `$N`, else the load count.
    pub load_id: Text,
    /// Whether the connection list still shows it.
    pub present: bool,
}

/// The open SAs by serial, with the indexes the tracker looks up per SA
/// (the SAs of a tunnel and the Child SAs of an IKE SA) and the set of
/// those not established.
///
/// A gateway holds tens of thousands of SAs; scanning all of them for each
/// one made a poll quadratic. The indexes are derived data: a checkpoint
/// holds only the records (the same JSON as a plain map by serial, in
/// serial order) and the indexes are rebuilt on restore. Every change of a
/// record's tunnel or parent goes through [`SaTable::update`] or
/// [`SaTable::move_to_tunnel`], so the indexes never go stale. Every map is
/// hashed (each listed SA is looked up at every poll); what needs an order
/// says so and sorts.
#[derive(Debug, Clone, Default)]
pub struct SaTable {
    /// Boxed: a record is about 500 bytes, and a table of them inline grows
    /// by doubling (a gateway's 100,000 records were a 64 MB table, 96 MB
    /// while it grew); boxed, the table is 16 bytes a slot.
    by_serial: FxHashMap<u64, Box<SaRecord>>,
    /// Serials of every SA of a tunnel.
    by_tunnel: FxHashMap<TunnelKey, Serials>,
    /// Serials of the SAs whose `parent_serial` is the key.
    by_parent: FxHashMap<u64, Serials>,
    /// Serials of the SAs not (yet) established: the few a poll checks for
    /// a stalled negotiation, without visiting every record.
    half_open: BTreeSet<u64>,
    /// What changed since the marks were last taken
    /// ([`SaTable::take_changes`]): what the checkpoint's journal writes.
    changes: SaChanges,
}

/// The serials whose records changed, by what changed.
#[derive(Debug, Clone, Default)]
pub struct SaChanges {
    /// Opened, closed, or changed in anything but the byte counters (and
    /// `last_seen`).
    pub records: FxHashSet<u64>,
    /// Changed in their byte counters (and perhaps more).
    pub counters: FxHashSet<u64>,
}

impl SaChanges {
    /// Take in `other`'s marks too.
    pub fn absorb(&mut self, other: SaChanges) {
        self.records.extend(other.records);
        self.counters.extend(other.counters);
    }
}

impl SaTable {
    /// The record of `serial`.
    pub fn get(&self, serial: u64) -> Option<&SaRecord> {
        work::count(1);
        self.by_serial.get(&serial).map(Box::as_ref)
    }

    /// Whether `serial` is open.
    pub fn contains(&self, serial: u64) -> bool {
        work::count(1);
        self.by_serial.contains_key(&serial)
    }

    /// Whether no SA is open.
    pub fn is_empty(&self) -> bool {
        self.by_serial.is_empty()
    }

    /// How many SAs are open.
    pub fn len(&self) -> usize {
        self.by_serial.len()
    }

    /// Every record, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &SaRecord> {
        self.by_serial
            .values()
            .map(Box::as_ref)
            .inspect(|_| work::count(1))
    }

    /// Every open serial, in order.
    pub fn serials(&self) -> Vec<u64> {
        let mut serials: Vec<u64> = self
            .by_serial
            .keys()
            .copied()
            .inspect(|_| work::count(1))
            .collect();
        serials.sort_unstable();
        serials
    }

    /// Open a record (replacing one under the same serial).
    pub fn insert(&mut self, rec: SaRecord) {
        work::count(1);
        self.changes.records.insert(rec.serial);
        let _replaced = self.remove(rec.serial);
        self.index(&rec);
        self.by_serial.insert(rec.serial, Box::new(rec));
    }

    /// Close a record.
    pub fn remove(&mut self, serial: u64) -> Option<SaRecord> {
        work::count(1);
        let rec = self.by_serial.remove(&serial)?;
        self.changes.records.insert(serial);
        self.unindex(&rec);
        Some(*rec)
    }

    /// The records not (yet) established, by serial.
    pub fn half_open(&self) -> impl Iterator<Item = &SaRecord> + '_ {
        self.half_open
            .iter()
            .filter_map(|s| self.by_serial.get(s).map(Box::as_ref))
            .inspect(|_| work::count(1))
    }

    /// Change a record with `change`, keeping the parent index current; the
    /// tunnel is changed only by [`SaTable::move_to_tunnel`]. The record is
    /// marked changed.
    pub fn update<R>(&mut self, serial: u64, change: impl FnOnce(&mut SaRecord) -> R) -> Option<R> {
        self.update_listed(serial, |rec| {
            (
                change(rec),
                Change {
                    record: true,
                    counters: true,
                },
            )
        })
    }

    /// [`SaTable::update`] for a change that says what it changed (as
    /// [`SaRecord::update`] does): a record listed as it was is not marked,
    /// and one whose counters alone moved is marked for its counters.
    pub fn update_listed<R>(
        &mut self,
        serial: u64,
        change: impl FnOnce(&mut SaRecord) -> (R, Change),
    ) -> Option<R> {
        work::count(1);
        let rec = self.by_serial.get_mut(&serial)?;
        let (parent, established) = (rec.parent_serial, rec.established);
        let (out, changed) = change(rec);
        if changed.record {
            self.changes.records.insert(serial);
        }
        if changed.counters {
            self.changes.counters.insert(serial);
        }
        if rec.established != established {
            if rec.established {
                self.half_open.remove(&serial);
            } else {
                self.half_open.insert(serial);
            }
        }
        let now = rec.parent_serial;
        if parent != now {
            if let Some(p) = parent {
                remove_from(&mut self.by_parent, &p, serial);
            }
            if let Some(p) = now {
                add_serial(self.by_parent.entry(p).or_default(), serial);
            }
        }
        Some(out)
    }

    /// Move a record to the tunnel of `conn` (a responder's SA that
    /// IKE_AUTH switched to another connection).
    pub fn move_to_tunnel(&mut self, serial: u64, conn: &ConnRef) {
        work::count(1);
        let Some(rec) = self.by_serial.get_mut(&serial) else {
            return;
        };
        let key = TunnelKey::of(conn);
        rec.conn = conn.clone();
        self.changes.records.insert(serial);
        if rec.tunnel != key {
            remove_from(&mut self.by_tunnel, &rec.tunnel, serial);
            add_serial(self.by_tunnel.entry(key.clone()).or_default(), serial);
            rec.tunnel = key;
        }
    }

    /// The SAs of a tunnel, oldest (lowest serial) first.
    pub fn of_tunnel<'s>(
        &'s self,
        key: &TunnelKey,
    ) -> impl DoubleEndedIterator<Item = &'s SaRecord> + 's {
        self.by_tunnel
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|s| self.by_serial.get(s).map(Box::as_ref))
            .inspect(|_| work::count(1))
    }

    /// Whether the tunnel `key` has any open SA.
    pub fn tunnel_has_sas(&self, key: &TunnelKey) -> bool {
        work::count(1);
        self.by_tunnel.contains_key(key)
    }

    /// The SAs whose parent is `serial`, oldest first.
    pub fn children_of(&self, serial: u64) -> impl Iterator<Item = &SaRecord> + '_ {
        self.by_parent
            .get(&serial)
            .into_iter()
            .flatten()
            .filter_map(|s| self.by_serial.get(s).map(Box::as_ref))
            .inspect(|_| work::count(1))
    }

    /// The changes marked since the last call, taken out.
    pub fn take_changes(&mut self) -> SaChanges {
        std::mem::take(&mut self.changes)
    }

    fn index(&mut self, rec: &SaRecord) {
        match self.by_tunnel.get_mut(&rec.tunnel) {
            Some(set) => add_serial(set, rec.serial),
            None => {
                self.by_tunnel.insert(rec.tunnel.clone(), vec![rec.serial]);
            }
        }
        if let Some(p) = rec.parent_serial {
            add_serial(self.by_parent.entry(p).or_default(), rec.serial);
        }
        if !rec.established {
            self.half_open.insert(rec.serial);
        }
    }

    fn unindex(&mut self, rec: &SaRecord) {
        remove_from(&mut self.by_tunnel, &rec.tunnel, rec.serial);
        if let Some(p) = rec.parent_serial {
            remove_from(&mut self.by_parent, &p, rec.serial);
        }
        self.half_open.remove(&rec.serial);
    }

    fn from_records(mut by_serial: FxHashMap<u64, Box<SaRecord>>) -> SaTable {
        let mut table = SaTable {
            by_serial: FxHashMap::default(),
            by_tunnel: FxHashMap::default(),
            by_parent: FxHashMap::default(),
            half_open: BTreeSet::new(),
            changes: SaChanges::default(),
        };
        for rec in by_serial.values_mut() {
            rec.tunnel = std::mem::take(&mut rec.tunnel).resolve_saved(&rec.conn);
            table.index(rec);
        }
        table.by_serial = by_serial;
        table
    }
}

/// The serials under one key of an index, ascending. A tunnel has one to
/// three SAs and an IKE SA one or two children: a sorted vector holds them
/// in the 16 bytes they take, where a `BTreeSet` took a 200-byte node, for
/// each of a gateway's tens of thousands of tunnels.
type Serials = Vec<u64>;

/// Add `serial` to a set of serials, keeping it sorted.
fn add_serial(set: &mut Serials, serial: u64) {
    if let Err(at) = set.binary_search(&serial) {
        set.insert(at, serial);
    }
}

/// Take `serial` out of `key`'s set, dropping the set when it empties so
/// that churn does not leave empty sets behind.
fn remove_from<K, Q>(map: &mut FxHashMap<K, Serials>, key: &Q, serial: u64)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(set) = map.get_mut(key) {
        if let Ok(at) = set.binary_search(&serial) {
            set.remove(at);
        }
        if set.is_empty() {
            map.remove(key);
        }
    }
}

impl PartialEq for SaTable {
    fn eq(&self, other: &SaTable) -> bool {
        self.by_serial == other.by_serial
    }
}

impl Serialize for SaTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        sorted::serialize(&self.by_serial, serializer)
    }
}

impl<'de> Deserialize<'de> for SaTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SaTable, D::Error> {
        FxHashMap::<u64, Box<SaRecord>>::deserialize(deserializer).map(SaTable::from_records)
    }
}

/// The tunnels by [`TunnelKey`], hashed because every listed SA looks its
/// tunnel up at every poll; whatever reports tunnels in turn asks for them
/// sorted by key, the order a map by key would give.
///
/// It also keeps which tunnels one observation touched (an SA of theirs
/// appeared, came up, moved or went), as a set of their keys: a poll
/// touches a few tunnels of tens of thousands, so taking them out
/// ([`TunnelTable::take_touched`]) visits those few, in key order, and
/// never the whole table. The set is never saved: a checkpoint holds the
/// same JSON as a plain map by key.
///
/// The keys are also indexed by their base name, so that
/// [`TunnelTable::of_name`] visits the tunnels of one name instead of every
/// tunnel; like the marks, the index is derived and never saved.
#[derive(Debug, Clone, Default)]
pub struct TunnelTable {
    /// Boxed, as [`SaTable`]'s records are: a table of them inline is
    /// mostly empty slots the size of a record.
    by_key: FxHashMap<TunnelKey, Box<TunnelRecord>>,
    /// The keys under each base name.
    by_name: FxHashMap<Text, Vec<TunnelKey>>,
    /// The known tunnels touched since the last [`TunnelTable::take_touched`].
    touched: BTreeSet<TunnelKey>,
    /// The tunnels added, changed or removed since the last
    /// [`TunnelTable::take_changes`]: what the checkpoint's journal writes.
    changes: FxHashSet<TunnelKey>,
}

impl TunnelTable {
    /// The tunnel `key`.
    pub fn get(&self, key: &TunnelKey) -> Option<&TunnelRecord> {
        work::count(1);
        self.by_key.get(key).map(Box::as_ref)
    }

    /// The tunnel `key`, with the key as the table holds it.
    pub fn get_key_value(&self, key: &TunnelKey) -> Option<(&TunnelKey, &TunnelRecord)> {
        work::count(1);
        self.by_key.get_key_value(key).map(|(k, t)| (k, t.as_ref()))
    }

    /// The tunnel `key`, to change; it is marked changed.
    pub fn get_mut(&mut self, key: &TunnelKey) -> Option<&mut TunnelRecord> {
        work::count(1);
        let rec = self.by_key.get_mut(key)?;
        if !self.changes.contains(key) {
            self.changes.insert(key.clone());
        }
        Some(rec.as_mut())
    }

    /// Change the tunnel `key` with `change`, which says whether it changed
    /// anything: a tunnel listed as it was is not marked.
    pub fn update<R>(
        &mut self,
        key: &TunnelKey,
        change: impl FnOnce(&mut TunnelRecord) -> (R, bool),
    ) -> Option<R> {
        work::count(1);
        let rec = self.by_key.get_mut(key)?;
        let (out, changed) = change(rec.as_mut());
        if changed && !self.changes.contains(key) {
            self.changes.insert(key.clone());
        }
        Some(out)
    }

    /// The changes marked since the last call, taken out.
    pub fn take_changes(&mut self) -> FxHashSet<TunnelKey> {
        std::mem::take(&mut self.changes)
    }

    /// Whether the tunnel `key` is known.
    pub fn contains(&self, key: &TunnelKey) -> bool {
        work::count(1);
        self.by_key.contains_key(key)
    }

    /// Add the tunnel `key` (replacing one under the same key).
    pub fn insert(&mut self, key: TunnelKey, rec: TunnelRecord) {
        self.insert_new(key, rec);
    }

    /// Add the tunnel `key` (replacing one under the same key) and hand it
    /// back, to be filled in without looking it up again.
    pub fn insert_new(&mut self, key: TunnelKey, rec: TunnelRecord) -> &mut TunnelRecord {
        work::count(1);
        self.changes.insert(key.clone());
        match self.by_key.entry(key) {
            Entry::Occupied(e) => {
                let slot = e.into_mut();
                **slot = rec;
                slot
            }
            Entry::Vacant(v) => {
                self.by_name
                    .entry(v.key().name.clone())
                    .or_default()
                    .push(v.key().clone());
                v.insert(Box::new(rec))
            }
        }
    }

    /// How many tunnels are known.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no tunnel is known.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Every tunnel record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&TunnelKey, &TunnelRecord)> {
        self.by_key
            .iter()
            .map(|(k, t)| (k, t.as_ref()))
            .inspect(|_| work::count(1))
    }

    /// The keys of the tunnels `pick` selects, sorted.
    pub fn keys_where(
        &self,
        mut pick: impl FnMut(&TunnelKey, &TunnelRecord) -> bool,
    ) -> Vec<TunnelKey> {
        let mut keys: Vec<TunnelKey> = self
            .iter()
            .filter(|(k, t)| pick(k, t))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The tunnels of the base connection `name`, by key.
    pub fn of_name(&self, name: &str) -> Vec<(&TunnelKey, &TunnelRecord)> {
        let keys = self.by_name.get(name).map_or(&[][..], Vec::as_slice);
        let mut found: Vec<(&TunnelKey, &TunnelRecord)> = keys
            .iter()
            .filter_map(|key| {
                work::count(1);
                self.by_key.get_key_value(key).map(|(k, t)| (k, t.as_ref()))
            })
            .collect();
        found.sort_unstable_by(|a, b| a.0.cmp(b.0));
        found
    }

    /// Mark the tunnel `key` as touched by this observation (nothing if
    /// it is not known).
    pub fn touch(&mut self, key: &TunnelKey) {
        work::count(1);
        if self.by_key.contains_key(key) && !self.touched.contains(key) {
            self.touched.insert(key.clone());
        }
    }

    /// Clear every mark, and return the keys of the touched tunnels that
    /// are still known and that `changed` picks, sorted.
    pub fn take_touched(
        &mut self,
        mut changed: impl FnMut(&TunnelKey, &TunnelRecord) -> bool,
    ) -> Vec<TunnelKey> {
        let touched = std::mem::take(&mut self.touched);
        touched
            .into_iter()
            .filter(|key| {
                work::count(1);
                self.by_key.get(key).is_some_and(|t| changed(key, t))
            })
            .collect()
    }

    /// Remove the tunnel `key`, if known.
    pub fn remove(&mut self, key: &TunnelKey) -> Option<TunnelRecord> {
        work::count(1);
        let rec = self.by_key.remove(key)?;
        self.touched.remove(key);
        self.changes.insert(key.clone());
        if let Some(keys) = self.by_name.get_mut(key.name.as_str()) {
            keys.retain(|other| other != key);
            if keys.is_empty() {
                self.by_name.remove(key.name.as_str());
            }
        }
        Some(*rec)
    }

    /// Keep only the tunnels `keep` says to.
    pub fn retain(&mut self, mut keep: impl FnMut(&TunnelKey, &TunnelRecord) -> bool) {
        let by_name = &mut self.by_name;
        let touched = &mut self.touched;
        let changes = &mut self.changes;
        self.by_key.retain(|k, t| {
            work::count(1);
            let kept = keep(k, t.as_ref());
            if !kept {
                touched.remove(k);
                changes.insert(k.clone());
                let name = k.name.as_str();
                if let Some(keys) = by_name.get_mut(name) {
                    keys.retain(|other| other != k);
                    if keys.is_empty() {
                        by_name.remove(name);
                    }
                }
            }
            kept
        });
    }
}

impl PartialEq for TunnelTable {
    fn eq(&self, other: &TunnelTable) -> bool {
        self.by_key == other.by_key
    }
}

impl Serialize for TunnelTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        sorted::serialize(&self.by_key, serializer)
    }
}

impl<'de> Deserialize<'de> for TunnelTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TunnelTable, D::Error> {
        let saved = FxHashMap::<TunnelKey, Box<TunnelRecord>>::deserialize(deserializer)?;
        let mut by_key = FxHashMap::with_capacity_and_hasher(saved.len(), Default::default());
        let mut by_name: FxHashMap<Text, Vec<TunnelKey>> = FxHashMap::default();
        for (key, rec) in saved {
            let key = key.resolve_saved(&rec.conn);
            by_name
                .entry(key.name.clone())
                .or_default()
                .push(key.clone());
            by_key.insert(key, rec);
        }
        Ok(TunnelTable {
            by_key,
            by_name,
            touched: BTreeSet::new(),
            changes: FxHashSet::default(),
        })
    }
}

/// Hashed maps saved as a map sorted by key: the same JSON, byte for byte,
/// as the `BTreeMap` they replace, so checkpoints read both ways.
pub mod sorted {
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serialise `map` sorted by key.
    pub fn serialize<K, V, H, S>(map: &HashMap<K, V, H>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut entries: Vec<(&K, &V)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(entries)
    }

    /// Read a map saved by [`serialize`] (or by a `BTreeMap`).
    pub fn deserialize<'de, K, V, H, D>(deserializer: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + std::hash::Hash + Eq,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        HashMap::<K, V, H>::deserialize(deserializer)
    }
}

/// Set `slot` to `text`, copying only when it differs; whether it did.
fn set_text(slot: &mut Option<Text>, text: &str) -> bool {
    let differs = slot.as_deref() != Some(text);
    if differs {
        *slot = Some(Text::from(text));
    }
    differs
}

/// Whether an SPI as printed is one (test transcripts print `ESPSPIi`).
fn is_hex(spi: &str) -> bool {
    !spi.is_empty() && spi.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(name: &str, peer: Option<&str>) -> (TunnelKey, TunnelRecord) {
        let conn = ConnRef {
            name: name.into(),
            instances: Vec::new(),
            peer: peer.map(Into::into),
        };
        let rec = TunnelRecord {
            conn: conn.clone(),
            local_ip: None,
            remote_ip: None,
            up: None,
            negotiating: None,
        };
        (TunnelKey::of(&conn), rec)
    }

    fn names_of(table: &TunnelTable, name: &str) -> Vec<String> {
        table
            .of_name(name)
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect()
    }

    #[test]
    fn tunnels_of_a_name_follow_inserts_retains_and_a_checkpoint() {
        let mut table = TunnelTable::default();
        for (name, peer) in [
            ("rw", Some("192.0.2.9")),
            ("rw", Some("192.0.2.1")),
            ("rw-2", None),
            ("rw", None),
        ] {
            let (key, rec) = tunnel(name, peer);
            table.insert(key.clone(), rec.clone());
            table.insert(key, rec); // a second insert indexes nothing twice
        }
        assert_eq!(
            names_of(&table, "rw"),
            ["rw\u{1f}", "rw\u{1f}192.0.2.1", "rw\u{1f}192.0.2.9"]
        );
        assert_eq!(names_of(&table, "rw-2"), ["rw-2\u{1f}"]);
        assert!(names_of(&table, "r").is_empty());

        table.retain(|k, _| k.to_string() != "rw\u{1f}192.0.2.1");
        assert_eq!(names_of(&table, "rw"), ["rw\u{1f}", "rw\u{1f}192.0.2.9"]);
        table.retain(|k, _| k.name != "rw-2");
        assert!(names_of(&table, "rw-2").is_empty());

        let restored: TunnelTable =
            serde_json::from_str(&serde_json::to_string(&table).expect("saved")).expect("read");
        assert_eq!(names_of(&restored, "rw"), names_of(&table, "rw"));
    }

    #[test]
    fn tunnels_of_a_name_are_only_that_names_even_with_a_separator_in_a_name() {
        let mut table = TunnelTable::default();
        for (name, peer) in [
            ("a", None),
            ("a\u{1f}b", None),
            ("a", Some("b\u{1f}c")),
            ("a\u{1f}b", Some("c")),
        ] {
            let (key, rec) = tunnel(name, peer);
            table.insert(key, rec);
        }
        let names = |name: &str| {
            table
                .of_name(name)
                .into_iter()
                .map(|(k, t)| {
                    assert_eq!(t.conn.name, name);
                    k.peer.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names("a"), [None, Some("b\u{1f}c".into())]);
        assert_eq!(names("a\u{1f}b"), [None, Some("c".into())]);
    }

    #[test]
    fn half_open_sas_follow_inserts_establishing_removes_and_a_checkpoint() {
        // A state line of the lab's 4.10 showstates (tests/fixtures/lab-4.10).
        let snap = crate::status::parse(include_str!(
            "../../../../tests/fixtures/lab-4.10/02-established-showstates.txt"
        ));
        let mut snap = snap;
        snap.states.truncate(1);
        snap.traffic.clear();
        let listing = crate::listing::Listing::of(&snap);
        let seen = listing.seen().next().expect("one state listed");
        let half_open = |t: &SaTable| t.half_open().map(|r| r.serial).collect::<Vec<_>>();
        let mut table = SaTable::default();
        for serial in [7, 3, 5] {
            table.insert(SaRecord::new(serial, &seen, 100));
        }
        assert_eq!(half_open(&table), [3, 5, 7]);
        table.update(5, |r| r.established = true);
        assert_eq!(half_open(&table), [3, 7]);
        table.remove(7);
        assert_eq!(half_open(&table), [3]);
        let restored: SaTable =
            serde_json::from_str(&serde_json::to_string(&table).expect("saved")).expect("read");
        assert_eq!(half_open(&restored), [3]);
        assert!(restored.get(5).is_some_and(|r| r.established));
    }

    #[test]
    fn byte_counter_undoes_a_32_bit_wrap() {
        let mut c = ByteCounter::default();
        c.update(4_294_967_000, true);
        c.update(200, true);
        assert_eq!(c.total(), 4_294_967_296 + 200);
    }

    #[test]
    fn byte_counter_never_treats_a_source_switch_as_a_wrap() {
        let mut c = ByteCounter::default();
        c.update(5668, true);
        c.update(5120, false);
        assert_eq!(c.total(), 5668);
        c.update(6000, true);
        assert_eq!(c.total(), 6000);
        c.update(7168, false);
        assert_eq!(c.total(), 7168);
    }

    #[test]
    fn byte_counter_adds_growth() {
        let mut c = ByteCounter::default();
        c.update(100, true);
        c.update(150, true);
        assert_eq!(c.total(), 150);
    }
}
