//! Every time series of the corpus (`../shared/corpus/<rev>/<kind>/<test>__<host>__<n>.txt`,
//! consecutive `n` of one test and host) replayed through the tracker: no
//! panics, and the events agree with the dumps. Skips when the corpus is absent.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use support::*;
use swantrail::Snapshot;
use swantrail::event::Event;
use swantrail::snapshot::{OutputKind, SaKind};
use swantrail::track::{Tracker, TrackerConfig};

fn corpus() -> Option<PathBuf> {
    let dir = root().join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} is absent; corpus series test skipped",
            dir.display()
        );
        None
    }
}

/// (test, host) → files in invocation order, for one revision and kind.
fn series_of(kind_dir: &Path) -> BTreeMap<(String, String), Vec<(u64, PathBuf)>> {
    let mut map: BTreeMap<(String, String), Vec<(u64, PathBuf)>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(kind_dir) else {
        return map;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".txt") else {
            continue;
        };
        let parts: Vec<&str> = stem.rsplitn(3, "__").collect();
        if parts.len() != 3 {
            continue;
        }
        let Ok(n) = parts[0].parse::<u64>() else {
            continue;
        };
        map.entry((parts[2].to_string(), parts[1].to_string()))
            .or_default()
            .push((n, entry.path()));
    }
    for files in map.values_mut() {
        files.sort();
    }
    map
}

fn output_kind(dir: &str) -> OutputKind {
    match dir {
        "status" => OutputKind::Status,
        "showstates" => OutputKind::ShowStates,
        _ => OutputKind::TrafficStatus,
    }
}

/// Serials the snapshot shows established, by kind.
fn established(snap: &Snapshot) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut ike = BTreeSet::new();
    let mut child: BTreeSet<u64> = snap.traffic.iter().map(|t| t.serial).collect();
    for s in &snap.states {
        let is_child = match s.kind {
            Some(k) => k == SaKind::Child,
            None => s.spi_line.is_some() || s.parent_serial.is_some(),
        };
        if is_child && (s.established || s.spi_line.is_some()) {
            child.insert(s.serial);
        } else if !is_child && s.established {
            ike.insert(s.serial);
        }
    }
    child.remove(&0);
    ike.remove(&0);
    (ike, child)
}

/// Follow the events: which SAs they say are open now.
#[derive(Default)]
struct Open {
    ike: BTreeSet<(u64, u64)>,
    child: BTreeSet<(u64, u64)>,
    tunnels_up: BTreeSet<String>,
}

impl Open {
    fn apply(&mut self, e: &Event, where_: &str) {
        let generation = e.libreswan.pluto.generation;
        let serial = e.libreswan.sa.as_ref().map(|s| (generation, s.serial));
        let tunnel = e
            .libreswan
            .connection
            .as_ref()
            .map(|c| format!("{}|{}", c.name, c.peer.clone().unwrap_or_default()));
        match e.action() {
            "ike-sa-established" | "ike-sa-rekeyed" => {
                assert!(self.ike.insert(serial.unwrap()), "{where_}: twice {e:?}")
            }
            "child-sa-established" | "child-sa-rekeyed" => {
                assert!(self.child.insert(serial.unwrap()), "{where_}: twice {e:?}")
            }
            "ike-sa-expired" | "ike-sa-deleted" => {
                assert!(
                    self.ike.remove(&serial.unwrap()),
                    "{where_}: ends unopened {e:?}"
                )
            }
            "child-sa-expired" | "child-sa-deleted" => {
                assert!(
                    self.child.remove(&serial.unwrap()),
                    "{where_}: ends unopened {e:?}"
                )
            }
            "tunnel-up" => assert!(
                self.tunnels_up.insert(tunnel.unwrap()),
                "{where_}: up twice"
            ),
            "tunnel-down" => assert!(
                self.tunnels_up.remove(&tunnel.unwrap()),
                "{where_}: down unopened"
            ),
            _ => {}
        }
        if let Some(r) = e.libreswan.sa.as_ref().and_then(|s| s.replaces) {
            if e.action().ends_with("-rekeyed") {
                let set = if e.action().starts_with("ike") {
                    &self.ike
                } else {
                    &self.child
                };
                let known =
                    set.contains(&(generation, r)) || r < e.libreswan.sa.as_ref().unwrap().serial;
                assert!(known, "{where_}: replaces unknown #{r}");
            }
        }
    }
}

#[test]
fn every_corpus_time_series_replays_consistently() {
    let Some(corpus) = corpus() else { return };
    let mut revisions: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    revisions.sort();
    let (mut series_count, mut event_count) = (0, 0);
    let mut all_events: Vec<Event> = Vec::new();
    for rev in &revisions {
        for kind in ["status", "showstates", "trafficstatus"] {
            for ((test, host), files) in series_of(&rev.join(kind)) {
                if files.len() < 2 {
                    continue;
                }
                series_count += 1;
                let mut tracker = Tracker::new(TrackerConfig::new(host.clone()));
                let mut open = Open::default();
                let mut ids = BTreeSet::new();
                for (i, (n, path)) in files.iter().enumerate() {
                    let where_ = format!("{}/{kind}/{test}__{host}__{n}", rev.display());
                    let mut snap = snapshot(path, 1_000_000_000 + 10 * i as i64);
                    if snap.kinds.is_empty() {
                        // An empty dump: the corpus directory says which command printed it.
                        snap.kinds.push(output_kind(kind));
                    }
                    let events = tracker.observe(&snap);
                    for e in &events {
                        assert!(ids.insert(e.id().to_string()), "{where_}: duplicate id");
                        if kind == "trafficstatus" {
                            assert!(
                                !e.action().starts_with("ike-sa")
                                    && !e.action().starts_with("negotiation"),
                                "{where_}: {} from trafficstatus alone",
                                e.action()
                            );
                        }
                        open.apply(e, &where_);
                    }
                    if snap.is_complete() {
                        let (ike, child) = established(&snap);
                        let generation = events
                            .last()
                            .map(|e| e.libreswan.pluto.generation)
                            .unwrap_or_else(|| {
                                open.child
                                    .iter()
                                    .chain(&open.ike)
                                    .map(|s| s.0)
                                    .max()
                                    .unwrap_or(0)
                            });
                        let child_open: BTreeSet<u64> = open
                            .child
                            .iter()
                            .filter(|s| s.0 == generation)
                            .map(|s| s.1)
                            .collect();
                        assert_eq!(child_open, child, "{where_}: open Child SAs");
                        if snap.lists_ike_sas() {
                            let ike_open: BTreeSet<u64> = open
                                .ike
                                .iter()
                                .filter(|s| s.0 == generation)
                                .map(|s| s.1)
                                .collect();
                            assert_eq!(ike_open, ike, "{where_}: open IKE SAs");
                        }
                    }
                    event_count += events.len();
                    if all_events.len() < 20_000 {
                        all_events.extend(events);
                    }
                }
            }
        }
    }
    assert!(series_count > 100, "only {series_count} series found");
    assert!(event_count > 0);
    assert_schema_valid(&all_events);
}
