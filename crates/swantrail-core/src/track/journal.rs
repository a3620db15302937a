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
//! changed is written as its serial and counters, packed ([`Packed`]:
//! about 25 bytes, not the 600 of the whole record nor the 140 of the
//! counters' own JSON): the counters are what a tunnel's end reports, and a
//! daemon killed at any moment must report the same afterwards as one
//! that never stopped. `last_seen` is left out: the full save the journal is compacted into now and then
//! (the daemon's checkpoint) carries it, and the next listing sets it
//! again; a tracker rebuilt from a full save and its deltas gives the
//! same events as one that never stopped (`tests/integration/track`).
//!
//! This module only describes and applies changes; where they are written
//! and when a journal is compacted is the daemon's business.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::{Deserialize, Serialize};

use super::Tracker;
use super::ledger::{
    ByteCounter, ConnectionRecord, Reading, SaChanges, SaRecord, TunnelRecord, due_slot,
};
use crate::snapshot::{Text, TunnelKey};

/// The fingerprints of a tracker's records as last written, by table, and
/// the records marked changed since then.
///
/// A delta fingerprints only the records the tracker marked changed
/// ([`Changes`]), not every record at every poll: at 50,000 tunnels that
/// was a sixth of a poll's CPU. The marks are kept here until a delta that
/// holds them is durable ([`Saved::accept`]). Debug builds check, at every
/// delta, that no record changed unmarked.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    /// Per SA: the fingerprint of the record without its byte counters,
    /// and that of the byte counters.
    sas: FxHashMap<u64, (u64, u64)>,
    /// Per tunnel and per connection, by the fingerprint of its key (16
    /// bytes an entry where the key itself took 56): a table is looked up
    /// only by the keys the tracker marked. Two keys of one fingerprint
    /// share an entry, which costs a record written again, never one left
    /// out: a record is written unless its own fingerprint is the entry's.
    tunnels: FxHashMap<u64, u64>,
    connections: FxHashMap<u64, u64>,
    /// The tracker's marks taken since the last durable delta.
    pending: Changes,
}

/// What a tracker marked changed, by table.
#[derive(Debug, Default, Clone)]
struct Changes {
    sas: SaChanges,
    tunnels: FxHashSet<TunnelKey>,
    connections: FxHashSet<Text>,
}

impl Changes {
    fn absorb(&mut self, tracker: &mut Tracker) {
        self.sas.absorb(tracker.sas.take_changes());
        self.tunnels.extend(tracker.tunnels.take_changes());
        self.connections
            .extend(std::mem::take(&mut tracker.connections_changed));
    }
}

/// An SA whose byte counters alone changed: its serial and counters, each
/// written [`Packed`].
type Bytes<'a> = (u64, Packed<'a>, Packed<'a>);

/// A byte counter as a journal line writes it: its exact and its rounded
/// reading, each as `null` when it has none, as one number when its total
/// is its last raw value (no wrap, the common case), else as
/// `[last, total]`. A gateway whose tunnels all carry traffic writes one
/// per Child SA at every poll; as the counter's own JSON
/// (`{"exact":{"last":…,"total":…},"rounded":…}`) they were most of each
/// line and made the journal fold into a whole save every few polls.
#[derive(Debug, Clone, Copy)]
struct Packed<'a>(&'a ByteCounter);

impl Serialize for Packed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = serializer.serialize_tuple(2)?;
        t.serialize_element(&PackedReading(&self.0.exact))?;
        t.serialize_element(&PackedReading(&self.0.rounded))?;
        t.end()
    }
}

/// One reading of a [`Packed`] counter.
struct PackedReading<'a>(&'a Reading);

impl Serialize for PackedReading<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.0.last, self.0.total) {
            (None, 0) => serializer.serialize_none(),
            (Some(last), total) if last == total => serializer.serialize_u64(last),
            (last, total) => (last, total).serialize(serializer),
        }
    }
}

/// A reading of a [`Packed`] counter, read back.
#[derive(Deserialize)]
#[serde(untagged)]
enum ReadingIn {
    /// Its total is its last raw value.
    Same(u64),
    /// Its last raw value (if any) and its total.
    Apart(Option<u64>, u64),
}

impl ReadingIn {
    fn reading(read: Option<ReadingIn>) -> Reading {
        match read {
            None => Reading::default(),
            Some(ReadingIn::Same(n)) => Reading {
                last: Some(n),
                total: n,
            },
            Some(ReadingIn::Apart(last, total)) => Reading { last, total },
        }
    }
}

/// A counter of a [`Packed`] line, read back: exact, then rounded.
type CounterIn = (Option<ReadingIn>, Option<ReadingIn>);

fn counter_of((exact, rounded): CounterIn) -> ByteCounter {
    ByteCounter {
        exact: ReadingIn::reading(exact),
        rounded: ReadingIn::reading(rounded),
    }
}

/// A delta as written: the head and the changed records, borrowed.
#[derive(Serialize)]
struct DeltaOut<'a> {
    head: &'a serde_json::Value,
    sas: Vec<(u64, Option<&'a SaRecord>)>,
    counters: Vec<Bytes<'a>>,
    tunnels: Vec<(&'a TunnelKey, Option<&'a TunnelRecord>)>,
    connections: Vec<(&'a Text, Option<&'a ConnectionRecord>)>,
}

/// A delta as read back.
#[derive(Deserialize)]
struct DeltaIn {
    head: serde_json::Value,
    sas: Vec<(u64, Option<SaRecord>)>,
    /// Counters as journals before [`Packed`] wrote them.
    #[serde(default)]
    bytes: Vec<(u64, ByteCounter, ByteCounter)>,
    #[serde(default)]
    counters: Vec<(u64, CounterIn, CounterIn)>,
    tunnels: Vec<(TunnelKey, Option<TunnelRecord>)>,
    connections: Vec<(Text, Option<ConnectionRecord>)>,
}

/// One delta, encoded, and the fingerprints to keep once it is durable.
#[derive(Debug, Default)]
pub struct Delta {
    /// The delta as one line of JSON, without the newline.
    pub json: Vec<u8>,
    /// How many records it writes or removes.
    pub records: usize,
    sas: Vec<(u64, Option<(u64, u64)>)>,
    tunnels: Vec<(u64, Option<u64>)>,
    connections: Vec<(u64, Option<u64>)>,
}

/// How many byte-counter lines of a delta weigh as much as one record
/// against [`Saved::delta_at_most`]'s limit: a line is its serial and two
/// [`Packed`] counters (about 25 bytes of JSON), a whole SA record 600 or
/// more; counted at a quarter, a delta of every Child SA's counters is
/// still well under the limit.
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
        due_slot(*due).hash(&mut h);
    }
    (h.finish(), counters_print(bytes_in, bytes_out))
}

/// The fingerprint of an SA's byte counters.
fn counters_print(bytes_in: &ByteCounter, bytes_out: &ByteCounter) -> u64 {
    print_of(&(bytes_in, bytes_out))
}

impl Saved {
    /// The fingerprints of `tracker` as a full save of it holds them; the
    /// tracker's marks of what changed are dropped (the save holds it).
    pub fn of(tracker: &mut Tracker) -> Saved {
        Changes::default().absorb(tracker);
        Saved {
            sas: tracker
                .sas
                .values()
                .map(|r| (r.serial, sa_print(r)))
                .collect(),
            tunnels: tracker
                .tunnels
                .iter()
                .map(|(k, t)| (print_of(k), print_of(t)))
                .collect(),
            connections: tracker
                .connections
                .iter()
                .map(|(k, c)| (print_of(k), print_of(c)))
                .collect(),
            pending: Changes::default(),
        }
    }

    /// The records of `tracker` that differ from what was last saved, with
    /// its head, encoded. Nothing is remembered until [`Saved::accept`]:
    /// a delta that could not be written is simply taken again, larger.
    pub fn delta(&mut self, tracker: &mut Tracker) -> Result<Delta, serde_json::Error> {
        self.delta_at_most(tracker, usize::MAX)
            .map(|d| d.unwrap_or_default())
    }

    /// [`Saved::delta`], or `None` (nothing encoded) when more than
    /// `at_most` records changed (byte-counter changes counting a quarter
    /// each, [`BYTES_PER_RECORD`]): a change of most of the tracker (a first
    /// poll, a pluto restart) is cheaper saved whole, as it is written
    /// (one journal line would hold it all in memory, twice).
    pub fn delta_at_most(
        &mut self,
        tracker: &mut Tracker,
        at_most: usize,
    ) -> Result<Option<Delta>, serde_json::Error> {
        self.pending.absorb(tracker);
        #[cfg(debug_assertions)]
        self.check_marks(tracker);
        let head = tracker.head()?;
        let mut out = DeltaOut {
            head: &head,
            sas: Vec::new(),
            counters: Vec::new(),
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
        let marked = &self.pending.sas;
        let counted = marked
            .counters
            .iter()
            .filter(|s| !marked.records.contains(s));
        for &serial in marked.records.iter().chain(counted) {
            let known = self.sas.get(&serial);
            let Some(rec) = tracker.sas.get(serial) else {
                if known.is_some() {
                    out.sas.push((serial, None));
                    delta.sas.push((serial, None));
                }
                continue;
            };
            // Marked for its counters alone: the rest is as it was saved.
            let print = match known {
                Some(known) if !marked.records.contains(&serial) => {
                    (known.0, counters_print(&rec.bytes_in, &rec.bytes_out))
                }
                _ => sa_print(rec),
            };
            match known {
                Some(known) if *known == print => continue,
                Some(known) if known.0 == print.0 => {
                    out.counters
                        .push((serial, Packed(&rec.bytes_in), Packed(&rec.bytes_out)));
                }
                _ => out.sas.push((serial, Some(rec))),
            }
            delta.sas.push((serial, Some(print)));
        }
        changed(
            &self.tunnels,
            &self.pending.tunnels,
            |key| tracker.tunnels.get_key_value(key),
            &mut out.tunnels,
            &mut delta.tunnels,
        );
        changed(
            &self.connections,
            &self.pending.connections,
            |name| tracker.connections.get_key_value(name),
            &mut out.connections,
            &mut delta.connections,
        );
        // Sorted, so that the same change is written the same way.
        out.sas.sort_unstable_by_key(|e| e.0);
        out.counters.sort_unstable_by_key(|e| e.0);
        out.tunnels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.connections.sort_unstable_by(|a, b| a.0.cmp(b.0));
        delta.records =
            out.sas.len() + out.counters.len() + out.tunnels.len() + out.connections.len();
        // A byte-counter line is a fifth of a record's JSON or less, and a
        // gateway whose tunnels all carry traffic has one per Child SA at
        // every poll: counted whole, they made every poll of a big gateway
        // a whole save (80 MB of JSON at 50,000 tunnels).
        let weight = out.sas.len()
            + out.counters.len().div_ceil(BYTES_PER_RECORD)
            + out.tunnels.len()
            + out.connections.len();
        if weight > at_most {
            return Ok(None);
        }
        // Sized as it will be, about: grown by doubling, a big delta was
        // two or three times its size while it was encoded.
        let estimate = 800 * out.sas.len()
            + 40 * out.counters.len()
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
        self.pending = Changes::default();
    }

    /// Panic if a record of `tracker` differs from what was saved of it
    /// and is not marked changed: a change made past the tables' marking
    /// methods, which a journal would never write. Every record is
    /// fingerprinted, as deltas were before they followed the marks.
    #[cfg(debug_assertions)]
    fn check_marks(&self, tracker: &Tracker) {
        let marked = &self.pending;
        for rec in tracker.sas.values() {
            let print = sa_print(rec);
            let known = self.sas.get(&rec.serial);
            let ok = known == Some(&print)
                || marked.sas.records.contains(&rec.serial)
                || (marked.sas.counters.contains(&rec.serial)
                    && known.is_some_and(|k| k.0 == print.0));
            assert!(ok, "SA #{} changed unmarked: {rec:?}", rec.serial);
        }
        for serial in self.sas.keys() {
            assert!(
                tracker.sas.contains(*serial) || marked.sas.records.contains(serial),
                "SA #{serial} closed unmarked"
            );
        }
        for (key, t) in tracker.tunnels.iter() {
            let ok = self.tunnels.get(&print_of(key)) == Some(&print_of(t))
                || marked.tunnels.contains(key);
            assert!(ok, "tunnel {key} changed unmarked: {t:?}");
        }
        let held: FxHashSet<u64> = (tracker.tunnels.iter().map(|(k, _)| k))
            .chain(&marked.tunnels)
            .map(print_of)
            .collect();
        for key in self.tunnels.keys() {
            assert!(held.contains(key), "tunnel {key:x} removed unmarked");
        }
        for (name, c) in &tracker.connections {
            let ok = self.connections.get(&print_of(name)) == Some(&print_of(c))
                || marked.connections.contains(name);
            assert!(ok, "connection {name} changed unmarked: {c:?}");
        }
        let held: FxHashSet<u64> = (tracker.connections.keys())
            .chain(&marked.connections)
            .map(print_of)
            .collect();
        for name in self.connections.keys() {
            assert!(held.contains(name), "connection {name:x} removed unmarked");
        }
    }
}

/// Of the `marked` keys of a keyed table (`get` looks one up), the records
/// whose fingerprint differs from `known`'s and the keys `known` has that
/// the table no longer does: into `out` to write, with their new
/// fingerprints into `prints`.
fn changed<'a, K: Hash + Eq, R: Hash>(
    known: &FxHashMap<u64, u64>,
    marked: &'a FxHashSet<K>,
    get: impl Fn(&K) -> Option<(&'a K, &'a R)>,
    out: &mut Vec<(&'a K, Option<&'a R>)>,
    prints: &mut Vec<(u64, Option<u64>)>,
) {
    for key in marked {
        let key_print = print_of(key);
        match get(key) {
            Some((key, rec)) => {
                let print = print_of(rec);
                if known.get(&key_print) != Some(&print) {
                    out.push((key, Some(rec)));
                    prints.push((key_print, Some(print)));
                }
            }
            None if known.contains_key(&key_print) => {
                out.push((key, None));
                prints.push((key_print, None));
            }
            None => {}
        }
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
        let packed = delta
            .counters
            .into_iter()
            .map(|(serial, i, o)| (serial, counter_of(i), counter_of(o)));
        for (serial, bytes_in, bytes_out) in delta.bytes.into_iter().chain(packed) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape a counter's readings take comes back as it was written,
    /// and a journal line of the counters' own JSON (before they were
    /// packed) still reads.
    #[test]
    fn packed_counters_read_back_as_written_and_old_lines_still_read() {
        let readings = [
            Reading::default(),
            Reading {
                last: Some(0),
                total: 0,
            },
            Reading {
                last: Some(98_765),
                total: 98_765,
            },
            Reading {
                last: Some(200),
                total: (1 << 32) + 200,
            },
            Reading {
                last: None,
                total: 7,
            },
            Reading {
                last: Some(u64::MAX),
                total: u64::MAX,
            },
        ];
        for exact in &readings {
            for rounded in &readings {
                let counter = ByteCounter {
                    exact: exact.clone(),
                    rounded: rounded.clone(),
                };
                let json = serde_json::to_string(&Packed(&counter)).expect("encoded");
                let back: CounterIn = serde_json::from_str(&json).expect("read back");
                assert_eq!(counter_of(back), counter, "{json}");
            }
        }
        let counter = ByteCounter {
            exact: readings[2].clone(),
            rounded: Reading::default(),
        };
        assert_eq!(
            serde_json::to_string(&(7u64, Packed(&counter), Packed(&counter))).expect("encoded"),
            "[7,[98765,null],[98765,null]]"
        );

        // A tracker with one SA, saved, then a delta of its counters in the
        // old form and in the packed one: both set the counters.
        let mut tracker = Tracker::new(crate::track::TrackerConfig::new("gw"));
        let snap = crate::status::parse(include_str!(
            "../../../../tests/fixtures/lab-4.10/02-established-showstates.txt"
        ));
        let _ = tracker.observe(&snap);
        let serial = tracker.sas.serials()[0];
        let old = format!(
            r#"{{"head":{head},"sas":[],"bytes":[[{serial},{c},{c}]],"tunnels":[],"connections":[]}}"#,
            head = tracker.head().expect("head"),
            c = serde_json::to_string(&counter).expect("counter"),
        );
        tracker.apply_delta(old.as_bytes()).expect("old line");
        assert_eq!(tracker.sas.get(serial).map(|r| &r.bytes_in), Some(&counter));
        let later = ByteCounter {
            exact: readings[3].clone(),
            rounded: readings[4].clone(),
        };
        let packed = format!(
            r#"{{"head":{head},"sas":[],"counters":[[{serial},{c},{c}]],"tunnels":[],"connections":[]}}"#,
            head = tracker.head().expect("head"),
            c = serde_json::to_string(&Packed(&later)).expect("counter"),
        );
        tracker.apply_delta(packed.as_bytes()).expect("packed line");
        assert_eq!(tracker.sas.get(serial).map(|r| &r.bytes_out), Some(&later));
    }

    /// A tracker rebuilt from a full save and the deltas of a churning
    /// series (rekeys, deletes, adds, half-open negotiations, timers
    /// counting down) holds what the tracker holds, but for `last_seen`,
    /// which deltas leave out: the deltas follow the marks, and the marks
    /// miss no change.
    #[test]
    fn deltas_that_follow_the_marks_rebuild_the_tracker() {
        use swantrail_core::synth::{Churn, Dialect, Output, Series};
        let without_last_seen = |tracker: &Tracker| {
            let mut value = serde_json::to_value(tracker).expect("saved");
            for rec in value["sas"].as_object_mut().expect("sas").values_mut() {
                rec["last_seen"] = serde_json::Value::Null;
                for due in ["expire_due_at", "replace_due_at", "rekey_due_at"] {
                    rec[due] = due_slot(rec[due].as_i64()).into();
                }
            }
            value
        };
        for output in [Output::Status, Output::ShowStates] {
            let mut series = Series::new(300, Churn::even(0.05));
            let mut tracker = Tracker::new(crate::track::TrackerConfig::new("gw"));
            let mut full = String::new();
            let mut saved = Saved::default();
            let mut deltas = Vec::new();
            for step in 0..40 {
                let mut snap =
                    crate::status::parse(&series.gateway().dump(Dialect::V5_4, output).text);
                if output == Output::ShowStates {
                    snap.merge(crate::status::parse(
                        &series
                            .gateway()
                            .dump(Dialect::V5_4, Output::TrafficStatus)
                            .text,
                    ));
                }
                snap.taken_at = Some(1_795_000_000 + 10 * step);
                let _ = tracker.observe(&snap);
                if step == 0 {
                    full = serde_json::to_string(&tracker).expect("saved");
                    saved = Saved::of(&mut tracker);
                } else {
                    let delta = saved.delta(&mut tracker).expect("delta");
                    deltas.push(delta.json.clone());
                    saved.accept(delta);
                }
                series.advance();
            }
            let mut rebuilt: Tracker = serde_json::from_str(&full).expect("read");
            for delta in &deltas {
                rebuilt.apply_delta(delta).expect("applied");
            }
            let (rebuilt, tracker) = (without_last_seen(&rebuilt), without_last_seen(&tracker));
            for table in ["sas", "tunnels", "connections"] {
                let (a, b) = (&rebuilt[table], &tracker[table]);
                let keys = b.as_object().expect("table").keys();
                let differs = keys.into_iter().find(|k| a.get(*k) != b.get(*k));
                assert!(
                    a == b,
                    "{output:?}: {table} differ first at {differs:?}: {:?} / {:?}",
                    differs.map(|k| &a[k]),
                    differs.map(|k| &b[k])
                );
            }
            assert_eq!(rebuilt, tracker, "{output:?}: the rebuilt tracker differs");
        }
    }

    /// The check that debug builds run at every delta fails on a record
    /// changed without its mark.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "changed unmarked")]
    fn a_change_without_its_mark_is_caught() {
        let mut tracker = Tracker::new(crate::track::TrackerConfig::new("gw"));
        let snap = crate::status::parse(include_str!(
            "../../../../tests/fixtures/lab-4.10/02-established-showstates.txt"
        ));
        let _ = tracker.observe(&snap);
        let mut saved = Saved::of(&mut tracker);
        let serial = tracker.sas.serials()[0];
        tracker
            .sas
            .update(serial, |r| r.state = Some("moved".into()));
        let _ = tracker.sas.take_changes();
        let _ = saved.delta(&mut tracker);
    }
}
