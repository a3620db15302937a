//! What a tracker changed since it was last saved, so that a checkpoint
//! costs what a poll changed, not what the gateway holds.
//!
//! A 50,000-tunnel gateway's tracker is about 80 MB of JSON; at 1 % churn
//! a poll changes a few hundred of its 150,000 records. [`Saved`] keeps a
//! 64-bit fingerprint of every record as it was last written, and
//! [`Saved::delta`] writes the tracker's *head* (everything but its three
//! tables: clocks, sequence, pending audit records, …) and the records
//! whose fingerprint differs or that are gone; [`Tracker::apply_delta`]
//! replays such a delta onto the tracker it was taken from.
//!
//! Due times are compared to the minute, see [`DUE_SLACK_S`].
//!
//! Two fields of an SA change at every poll on a busy gateway: its byte
//! counters and the time it was last listed. An SA whose counters alone
//! changed is written as its serial and counters (about 60 bytes, not the
//! whole record): the counters are what a tunnel's end reports, and a
//! daemon killed at any moment must report the same afterwards as one
//! that never stopped. `last_seen` is left out: the full save the journal is compacted into now and then
//! (the daemon's checkpoint) carries it, and the next listing sets it
//! again; a tracker rebuilt from a full save and its deltas gives the
//! same events as one that never stopped (`tests/integration/track`).
//!
//! This module only describes and applies changes; where they are written
//! and when a journal is compacted is the daemon's business.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use super::Tracker;
use super::ledger::{ByteCounter, ConnectionRecord, SaRecord, TunnelRecord};
use crate::snapshot::TunnelKey;

/// The fingerprints of a tracker's records as last written, by table.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    /// Per SA: the fingerprint of the record without its byte counters,
    /// and that of the byte counters.
    sas: FxHashMap<u64, (u64, u64)>,
    tunnels: FxHashMap<TunnelKey, u64>,
    connections: FxHashMap<String, u64>,
}

/// An SA whose byte counters alone changed: its serial and counters.
type Bytes<'a> = (u64, &'a ByteCounter, &'a ByteCounter);

/// A delta as written: the head and the changed records, borrowed.
#[derive(Serialize)]
struct DeltaOut<'a> {
    head: &'a serde_json::Value,
    sas: Vec<(u64, Option<&'a SaRecord>)>,
    bytes: Vec<Bytes<'a>>,
    tunnels: Vec<(&'a TunnelKey, Option<&'a TunnelRecord>)>,
    connections: Vec<(&'a String, Option<&'a ConnectionRecord>)>,
}

/// A delta as read back.
#[derive(Deserialize)]
struct DeltaIn {
    head: serde_json::Value,
    sas: Vec<(u64, Option<SaRecord>)>,
    #[serde(default)]
    bytes: Vec<(u64, ByteCounter, ByteCounter)>,
    tunnels: Vec<(TunnelKey, Option<TunnelRecord>)>,
    connections: Vec<(String, Option<ConnectionRecord>)>,
}

/// One delta, encoded, and the fingerprints to keep once it is durable.
#[derive(Debug, Default)]
pub struct Delta {
    /// The delta as one line of JSON, without the newline.
    pub json: Vec<u8>,
    /// How many records it writes or removes.
    pub records: usize,
    sas: Vec<(u64, Option<(u64, u64)>)>,
    tunnels: Vec<(TunnelKey, Option<u64>)>,
    connections: Vec<(String, Option<u64>)>,
}

/// Due times are fingerprinted to this many seconds. pluto prints a timer
/// as whole seconds from its own clock, so the due time a listing gives
/// (poll time + `in Ns`) moves by a second either way from poll to poll
/// without anything having changed; a record is written again when one
/// moves to another 64-second slot (about one SA in thirty per poll), or
/// changes otherwise, and a rescheduled timer almost always does.
const DUE_SLACK_S: i64 = 64;

/// How many byte-counter lines of a delta weigh as much as one record
/// against [`Saved::delta_at_most`]'s limit: a line is its serial and two
/// counters (about 130 bytes of JSON), a whole SA record 600 or more.
pub const BYTES_PER_RECORD: usize = 4;

fn print_of(value: &impl Hash) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// An SA's fingerprints: of every field but the byte counters and
/// `last_seen`, and of the byte counters.
fn sa_print(rec: &SaRecord) -> (u64, u64) {
    let mut h = FxHasher::default();
    let SaRecord {
        serial,
        kind,
        ike_version,
        conn,
        tunnel,
        established,
        first_seen,
        established_at,
        last_seen: _,
        state,
        parent_serial,
        spi_in,
        spi_out,
        add_time,
        port,
        user,
        expire_shown,
        expire_due_at,
        replace_due_at,
        rekey_due_at,
        bytes_in,
        bytes_out,
        replaces,
        replaced_by,
        new_child,
        rekey_child,
    } = rec;
    (serial, kind, ike_version, conn, tunnel, established).hash(&mut h);
    (
        first_seen,
        established_at,
        state,
        parent_serial,
        spi_in,
        spi_out,
    )
        .hash(&mut h);
    (add_time, port, user, expire_shown, replaces, replaced_by).hash(&mut h);
    (new_child, rekey_child).hash(&mut h);
    for due in [expire_due_at, replace_due_at, rekey_due_at] {
        due.map(|d| d.div_euclid(DUE_SLACK_S)).hash(&mut h);
    }
    (h.finish(), print_of(&(bytes_in, bytes_out)))
}

impl Saved {
    /// The fingerprints of `tracker` as a full save of it holds them.
    pub fn of(tracker: &Tracker) -> Saved {
        Saved {
            sas: tracker
                .sas
                .values()
                .map(|r| (r.serial, sa_print(r)))
                .collect(),
            tunnels: tracker
                .tunnels
                .iter()
                .map(|(k, t)| (k.clone(), print_of(t)))
                .collect(),
            connections: tracker
                .connections
                .iter()
                .map(|(k, c)| (k.clone(), print_of(c)))
                .collect(),
        }
    }

    /// The records of `tracker` that differ from what was last saved, with
    /// its head, encoded. Nothing is remembered until [`Saved::accept`]:
    /// a delta that could not be written is simply taken again, larger.
    pub fn delta(&self, tracker: &mut Tracker) -> Result<Delta, serde_json::Error> {
        self.delta_at_most(tracker, usize::MAX)
            .map(|d| d.unwrap_or_default())
    }

    /// [`Saved::delta`], or `None` (nothing encoded) when more than
    /// `at_most` records changed (byte-counter changes counting a quarter
    /// each, [`BYTES_PER_RECORD`]): a change of most of the tracker (a first
    /// poll, a pluto restart) is cheaper saved whole, as it is written
    /// (one journal line would hold it all in memory, twice).
    pub fn delta_at_most(
        &self,
        tracker: &mut Tracker,
        at_most: usize,
    ) -> Result<Option<Delta>, serde_json::Error> {
        let head = tracker.head()?;
        let mut out = DeltaOut {
            head: &head,
            sas: Vec::new(),
            bytes: Vec::new(),
            tunnels: Vec::new(),
            connections: Vec::new(),
        };
        let mut delta = Delta {
            json: Vec::new(),
            records: 0,
            sas: Vec::new(),
            tunnels: Vec::new(),
            connections: Vec::new(),
        };
        for rec in tracker.sas.values() {
            let print = sa_print(rec);
            match self.sas.get(&rec.serial) {
                Some(known) if *known == print => continue,
                Some(known) if known.0 == print.0 => {
                    out.bytes.push((rec.serial, &rec.bytes_in, &rec.bytes_out));
                }
                _ => out.sas.push((rec.serial, Some(rec))),
            }
            delta.sas.push((rec.serial, Some(print)));
        }
        for serial in self.sas.keys() {
            if !tracker.sas.contains(*serial) {
                out.sas.push((*serial, None));
                delta.sas.push((*serial, None));
            }
        }
        changed(
            &self.tunnels,
            tracker.tunnels.iter(),
            |key| tracker.tunnels.contains(key),
            &mut out.tunnels,
            &mut delta.tunnels,
        );
        changed(
            &self.connections,
            tracker.connections.iter(),
            |name| tracker.connections.contains_key(name),
            &mut out.connections,
            &mut delta.connections,
        );
        // Sorted, so that the same change is written the same way.
        out.sas.sort_unstable_by_key(|e| e.0);
        out.bytes.sort_unstable_by_key(|e| e.0);
        out.tunnels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.connections.sort_unstable_by(|a, b| a.0.cmp(b.0));
        delta.records = out.sas.len() + out.bytes.len() + out.tunnels.len() + out.connections.len();
        // A byte-counter line is a fifth of a record's JSON or less, and a
        // gateway whose tunnels all carry traffic has one per Child SA at
        // every poll: counted whole, they made every poll of a big gateway
        // a whole save (80 MB of JSON at 50,000 tunnels).
        let weight = out.sas.len()
            + out.bytes.len().div_ceil(BYTES_PER_RECORD)
            + out.tunnels.len()
            + out.connections.len();
        if weight > at_most {
            return Ok(None);
        }
        // Sized as it will be, about: grown by doubling, a big delta was
        // two or three times its size while it was encoded.
        let estimate = 800 * out.sas.len()
            + 160 * out.bytes.len()
            + 400 * out.tunnels.len()
            + 200 * out.connections.len()
            + 4096;
        delta.json = Vec::with_capacity(estimate);
        serde_json::to_writer(&mut delta.json, &out)?;
        Ok(Some(delta))
    }

    /// Remember what `delta` wrote, once it is durable.
    pub fn accept(&mut self, delta: Delta) {
        remember(&mut self.sas, delta.sas);
        remember(&mut self.tunnels, delta.tunnels);
        remember(&mut self.connections, delta.connections);
    }
}

/// The records of a keyed table whose fingerprint differs from `known`'s,
/// and the keys `known` has that the table no longer does (`still` says
/// which it has): into `out` to write, with their new fingerprints into
/// `prints`.
fn changed<'a, K: Hash + Eq + Clone, R: Hash>(
    known: &'a FxHashMap<K, u64>,
    records: impl Iterator<Item = (&'a K, &'a R)>,
    still: impl Fn(&K) -> bool,
    out: &mut Vec<(&'a K, Option<&'a R>)>,
    prints: &mut Vec<(K, Option<u64>)>,
) {
    for (key, rec) in records {
        let print = print_of(rec);
        if known.get(key) != Some(&print) {
            out.push((key, Some(rec)));
            prints.push((key.clone(), Some(print)));
        }
    }
    for key in known.keys().filter(|key| !still(key)) {
        out.push((key, None));
        prints.push((key.clone(), None));
    }
}

/// Set or remove each fingerprint as a durable delta wrote it.
fn remember<K: Hash + Eq, P>(known: &mut FxHashMap<K, P>, changes: Vec<(K, Option<P>)>) {
    for (key, print) in changes {
        match print {
            Some(p) => known.insert(key, p),
            None => known.remove(&key),
        };
    }
}

impl Tracker {
    /// How many records a whole save writes (SAs, tunnels, connections):
    /// what a journal line's size is weighed against.
    pub fn records(&self) -> usize {
        self.sas.len() + self.tunnels.len() + self.connections.len()
    }

    /// The tracker without its tables, as JSON: the part of it that a
    /// delta always carries.
    fn head(&mut self) -> Result<serde_json::Value, serde_json::Error> {
        let sas = std::mem::take(&mut self.sas);
        let tunnels = std::mem::take(&mut self.tunnels);
        let connections = std::mem::take(&mut self.connections);
        let head = serde_json::to_value(&*self);
        self.sas = sas;
        self.tunnels = tunnels;
        self.connections = connections;
        head
    }

    /// Replay a delta that [`Saved::delta`] took of this tracker's state
    /// (as of its last save) or of a later one.
    pub fn apply_delta(&mut self, json: &[u8]) -> Result<(), serde_json::Error> {
        let delta: DeltaIn = serde_json::from_slice(json)?;
        let mut next: Tracker = serde_json::from_value(delta.head)?;
        next.sas = std::mem::take(&mut self.sas);
        next.tunnels = std::mem::take(&mut self.tunnels);
        next.connections = std::mem::take(&mut self.connections);
        for (serial, rec) in delta.sas {
            next.sas.remove(serial);
            if let Some(rec) = rec {
                next.sas.insert(rec);
            }
        }
        for (serial, bytes_in, bytes_out) in delta.bytes {
            next.sas.update(serial, |rec| {
                rec.bytes_in = bytes_in;
                rec.bytes_out = bytes_out;
            });
        }
        for (key, rec) in delta.tunnels {
            match rec {
                Some(rec) => {
                    let key = key.resolve_saved(&rec.conn);
                    next.tunnels.insert(key, rec);
                }
                None => {
                    next.tunnels.remove(&key);
                }
            }
        }
        for (name, rec) in delta.connections {
            match rec {
                Some(rec) => next.connections.insert(name, rec),
                None => next.connections.remove(&name),
            };
        }
        *self = next;
        Ok(())
    }
}
