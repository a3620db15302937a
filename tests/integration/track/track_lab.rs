//! The tracker on the bundled real libreswan 4.10 lab series
//! (`examples/lab-4.10/`). Every expectation here is written from west's
//! pluto log and the lab timeline, not from swantrail's output:
//!
//! * `"v2-short" #15: initiator rekeyed IKE SA #7`, `#26 … IKE SA #15`,
//!   `#37 … IKE SA #26`; Child `#10 … Child SA #8`, `#13 ← #10`, `#18 ← #13`,
//!   `#22 ← #18`, `#25 ← #22`, `#31 ← #25`, `#33 ← #31`;
//! * `"v1-tun" #16: initiating IKEv1 Main Mode connection to replace #5`,
//!   `#30 … to replace #16`; Quick Mode `#9 to replace #6`, `#14 ← #9`,
//!   `#17 ← #14`, `#23 ← #17`, `#27 ← #23`, `#32 ← #27`, `#34 ← #32`;
//! * forced `"v2-tun" #21: initiator rekeyed Child SA #4`, `#24 … IKE SA #3`;
//! * 09:25:05 (1795857905) `"v2-short": terminating SAs`; east killed at
//!   1795857911, west's liveness gives up at 09:25:28 and restarts the
//!   connections; `v1-tun` #40/#42 up at 09:25:36, `v2-short` #41/#43 at
//!   09:25:39-40, `v2-tun` #39/#44 at 09:25:40-41;
//! * the dead peers never answer: `initiating … to replace establishing IKE SA #1` every ~64 s.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use support::*;
use swantrail::event::{Event, EventKind};
use swantrail::source::replay;
use swantrail::track::Tracker;

/// (kind, new serial, replaced serial) of every rekey pluto logged during the series.
fn rekeys_from_pluto_log() -> BTreeSet<(&'static str, u64, u64)> {
    let ike = [(15, 7), (26, 15), (37, 26), (16, 5), (30, 16), (24, 3)];
    let child = [
        (10, 8),
        (13, 10),
        (18, 13),
        (22, 18),
        (25, 22),
        (31, 25),
        (33, 31),
        (9, 6),
        (14, 9),
        (17, 14),
        (23, 17),
        (27, 23),
        (32, 27),
        (34, 32),
        (21, 4),
    ];
    ike.iter()
        .map(|&(n, o)| ("ike-sa-rekeyed", n, o))
        .chain(child.iter().map(|&(n, o)| ("child-sa-rekeyed", n, o)))
        .collect()
}

fn rekeys_in(events: &[Event]) -> BTreeSet<(String, u64, u64)> {
    events
        .iter()
        .filter(|e| e.action().ends_with("-rekeyed"))
        .map(|e| {
            let (a, s, r) = sa_of(e);
            (a, s.unwrap(), r.expect("a rekey names what it replaces"))
        })
        .collect()
}

fn expected_rekeys() -> BTreeSet<(String, u64, u64)> {
    rekeys_from_pluto_log()
        .into_iter()
        .map(|(a, n, o)| (a.to_string(), n, o))
        .collect()
}

#[test]
fn lab_replay_yields_exactly_the_rekeys_pluto_logged() {
    let events = replay(&lab_inputs(true), west());
    assert_eq!(rekeys_in(&events), expected_rekeys());
}

#[test]
fn lab_replay_from_status_dumps_alone_yields_the_same_rekeys() {
    let events = replay(&lab_inputs(false), west());
    assert_eq!(rekeys_in(&events), expected_rekeys());
}

#[test]
fn lab_tunnels_never_go_down_during_a_rekey() {
    let events = replay(&lab_inputs(true), west());
    let downs: Vec<(String, i64)> = events
        .iter()
        .filter(|e| e.action() == "tunnel-down")
        .map(|e| (conn_of(e).unwrap().to_string(), time_of(e)))
        .collect();
    // v2-short is terminated at 1795857905 (seen in the 1795857907 dump);
    // v1-tun and v2-tun go down when west gives up on east (seen at 1795857932).
    assert_eq!(
        downs,
        vec![
            ("v2-short".to_string(), 1795857907),
            ("v1-tun".to_string(), 1795857932),
            ("v2-tun".to_string(), 1795857932),
        ]
    );
}

/// Last exact trafficstatus counters per (connection, serial), read straight
/// from the dump text.
fn last_traffic_counters() -> BTreeMap<(String, u64), (u64, u64)> {
    let dir = root().join("examples/lab-4.10/series-trafficstatus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut last = BTreeMap::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let line = line.trim_start_matches("006 ");
            let serial: u64 = line[1..line.find(':').unwrap()].parse().unwrap();
            let name = line.split('"').nth(1).unwrap().to_string();
            let field = |k: &str| -> u64 {
                let at = line.find(k).unwrap() + k.len();
                line[at..].split(',').next().unwrap().parse().unwrap()
            };
            last.insert((name, serial), (field("inBytes="), field("outBytes=")));
        }
    }
    last
}

#[test]
fn terminated_tunnel_reports_its_lifetime_and_bytes_summed_across_rekeys() {
    let events = replay(&lab_inputs(true), west());
    let down = events
        .iter()
        .find(|e| e.action() == "tunnel-down" && conn_of(e) == Some("v2-short"))
        .expect("v2-short goes down");
    let t = down.libreswan.tunnel.as_ref().unwrap();
    // Its first Child SA #8 was added by the kernel at 1795857653
    // (trafficstatus add_time); pluto terminated it at 1795857905.
    assert_eq!(t.up_since, "2026-11-28T09:20:53Z");
    assert!((252..=257).contains(&t.duration_s), "{}", t.duration_s);
    assert_eq!(t.rekeys, 7);
    let counters = last_traffic_counters();
    let (bytes_in, bytes_out) = counters
        .iter()
        .filter(|((name, serial), _)| name == "v2-short" && *serial <= 33)
        .fold((0, 0), |acc, (_, (i, o))| (acc.0 + i, acc.1 + o));
    assert_eq!((t.bytes_in, t.bytes_out), (bytes_in, bytes_out));
    assert_eq!(down.event.reason.as_deref(), Some("deleted"));
}

#[test]
fn peer_gone_ends_both_tunnels_with_their_totals_and_they_come_back_as_new() {
    let events = replay(&lab_inputs(true), west());
    let counters = last_traffic_counters();
    for (conn, first_add_time, last_child) in
        [("v1-tun", 1795857650, 34), ("v2-tun", 1795857648, 21)]
    {
        let down = events
            .iter()
            .find(|e| e.action() == "tunnel-down" && conn_of(e) == Some(conn))
            .unwrap();
        let t = down.libreswan.tunnel.as_ref().unwrap();
        assert_eq!(t.duration_s, 1795857932 - first_add_time, "{conn}");
        let (bytes_in, _) = counters
            .iter()
            .filter(|((name, serial), _)| name == conn && *serial <= last_child)
            .fold((0, 0), |acc, (_, (i, o))| (acc.0 + i, acc.1 + o));
        assert_eq!(t.bytes_in, bytes_in, "{conn}");
    }
    // After the peer came back, the SAs are new ones, not rekeys of the old.
    let after: Vec<(String, Option<u64>, Option<u64>)> = events
        .iter()
        .filter(|e| time_of(e) > 1795857932 && e.libreswan.sa.is_some())
        .filter(|e| e.action().contains("-sa-"))
        .map(sa_of)
        .collect();
    let mut after_sorted = after.clone();
    after_sorted.sort();
    assert_eq!(
        after_sorted,
        vec![
            ("child-sa-established".to_string(), Some(42), None),
            ("child-sa-established".to_string(), Some(43), None),
            ("child-sa-established".to_string(), Some(44), None),
            ("ike-sa-established".to_string(), Some(39), None),
            ("ike-sa-established".to_string(), Some(40), None),
            ("ike-sa-established".to_string(), Some(41), None),
        ]
    );
    let ups: Vec<&str> = events
        .iter()
        .filter(|e| e.action() == "tunnel-up" && time_of(e) > 1795857932)
        .map(|e| conn_of(e).unwrap())
        .collect();
    assert_eq!(ups, vec!["v1-tun", "v2-short", "v2-tun"]);
}

#[test]
fn dead_peer_connections_negotiate_and_never_come_up() {
    let events = replay(&lab_inputs(true), west());
    for conn in ["v1-deadpeer", "v2-deadpeer"] {
        let actions: BTreeSet<&str> = events
            .iter()
            .filter(|e| conn_of(e) == Some(conn))
            .map(|e| e.action())
            .collect();
        assert!(actions.contains("negotiation-started"), "{conn}");
        assert!(actions.contains("negotiation-failed"), "{conn}");
        assert!(actions.contains("negotiation-stalled"), "{conn}");
        assert!(
            actions
                .iter()
                .all(|a| a.starts_with("negotiation-") || a.starts_with("connection-")),
            "{conn}: {actions:?}"
        );
    }
    // pluto retries v2-deadpeer as #1 → #11 → #19 → #29 → #35, each replacing the last.
    let retries: Vec<(Option<u64>, Option<u64>)> = events
        .iter()
        .filter(|e| e.action() == "negotiation-started" && conn_of(e) == Some("v2-deadpeer"))
        .map(|e| {
            let (_, s, r) = sa_of(e);
            (s, r)
        })
        .collect();
    assert_eq!(
        retries,
        vec![
            (Some(1), None),
            (Some(11), Some(1)),
            (Some(19), Some(11)),
            (Some(29), Some(19)),
            (Some(35), Some(29))
        ]
    );
    // `whack --delete v2-deadpeer` at 1795857905.
    let removed: Vec<_> = events
        .iter()
        .filter(|e| e.action() == "connection-removed")
        .map(|e| (conn_of(e).unwrap(), time_of(e)))
        .collect();
    assert_eq!(removed, vec![("v2-deadpeer", 1795857907)]);
}

#[test]
fn first_snapshot_is_an_inventory_of_what_is_already_up() {
    let events = replay(&lab_inputs(true), west());
    let first: Vec<&Event> = events.iter().filter(|e| time_of(e) == 1795857662).collect();
    assert!(first.iter().all(|e| e.event.kind == EventKind::State
        && e.event.reason.as_deref() == Some("observed-at-start")));
    let mut ups: Vec<&str> = first
        .iter()
        .filter(|e| e.action() == "tunnel-up")
        .map(|e| conn_of(e).unwrap())
        .collect();
    ups.sort();
    assert_eq!(ups, vec!["v1-tun", "v2-short", "v2-tun"]);
    let established: BTreeSet<(String, Option<u64>, Option<u64>)> = first
        .iter()
        .filter(|e| e.action().ends_with("-established"))
        .map(|e| sa_of(e))
        .collect();
    assert_eq!(established.len(), 6);
    assert!(
        events[first.len()..]
            .iter()
            .all(|e| e.event.reason.as_deref() != Some("observed-at-start"))
    );
}

#[test]
fn same_input_twice_gives_byte_identical_events() {
    let a: Vec<String> = replay(&lab_inputs(true), west())
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    let b: Vec<String> = replay(&lab_inputs(true), west())
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn tracker_restored_from_a_mid_series_checkpoint_continues_identically() {
    let steps = replay::plan(&lab_inputs(true)).unwrap();
    let straight: Vec<String> = replay(&lab_inputs(true), west())
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    for cut in [1, 17, 30, 54] {
        let mut tracker = Tracker::new(west());
        let mut lines = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            if i == cut {
                let json = serde_json::to_string(&tracker).unwrap();
                tracker = serde_json::from_str(&json).unwrap();
            }
            let snap = replay::load_step(step).unwrap();
            lines.extend(tracker.observe(&snap).iter().map(|e| e.to_json_line()));
        }
        assert_eq!(lines, straight, "checkpoint before step {cut}");
    }
}

#[test]
fn event_ids_are_unique_per_change_and_sequences_grow_by_one() {
    let events = replay(&lab_inputs(true), west());
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), events.len());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.event.sequence, i as u64 + 1);
    }
    let other_host = replay(
        &lab_inputs(true),
        swantrail::track::TrackerConfig::new("east"),
    );
    assert!(other_host.iter().all(|e| !ids.contains(e.id())));
}

#[test]
fn ids_do_not_depend_on_the_snapshot_kinds_that_showed_the_change() {
    // The rekey of v2-short's Child #8 by #10 gets the same id whether the
    // series is replayed with or without the trafficstatus dumps.
    let id_of = |events: &[Event]| {
        events
            .iter()
            .find(|e| sa_of(e) == ("child-sa-rekeyed".to_string(), Some(10), Some(8)))
            .unwrap()
            .id()
            .to_string()
    };
    assert_eq!(
        id_of(&replay(&lab_inputs(true), west())),
        id_of(&replay(&lab_inputs(false), west()))
    );
}

#[test]
fn every_lab_event_matches_the_json_schema() {
    let mut config = west();
    config.traffic_interval_s = Some(60);
    config.observer_version = Some("4.10".to_string());
    assert_schema_valid(&replay(&lab_inputs(true), config));
}

#[test]
fn trafficstatus_only_snapshots_invent_no_ike_events_or_deletions() {
    let dir = root().join("examples/lab-4.10");
    let mut tracker = Tracker::new(west());
    let first = tracker.observe(&snapshot(
        &dir.join("series/status-1795857662.txt"),
        1795857662,
    ));
    assert!(!first.is_empty());
    for t in [1795857667, 1795857672, 1795857677] {
        let path = dir.join(format!("series-trafficstatus/trafficstatus-{t}.txt"));
        let events = tracker.observe(&snapshot(&path, t));
        assert!(events.is_empty(), "{t}: {events:?}");
    }
    // At 1795857682 trafficstatus shows the new v1-tun Child #9 next to #6.
    let path = dir.join("series-trafficstatus/trafficstatus-1795857682.txt");
    let events = tracker.observe(&snapshot(&path, 1795857682));
    let got: Vec<_> = events.iter().map(sa_of).collect();
    assert_eq!(
        got,
        vec![("child-sa-rekeyed".to_string(), Some(9), Some(6))]
    );
    // Back on full status dumps nothing is reported twice or lost.
    let events = tracker.observe(&snapshot(
        &dir.join("series/status-1795857687.txt"),
        1795857687,
    ));
    let got: Vec<_> = events.iter().map(sa_of).collect();
    assert_eq!(
        got,
        vec![("child-sa-rekeyed".to_string(), Some(10), Some(8))]
    );
}

#[test]
fn an_incomplete_snapshot_yields_nothing_and_changes_nothing() {
    let dir = root().join("examples/lab-4.10/series");
    let mut tracker = Tracker::new(west());
    tracker.observe(&snapshot(&dir.join("status-1795857662.txt"), 1795857662));
    let before = serde_json::to_string(&tracker).unwrap();
    let mut cut = swantrail::Snapshot {
        taken_at: Some(1795857667),
        kinds: vec![swantrail::snapshot::OutputKind::Status],
        incomplete: Some("cut after 10 lines".to_string()),
        ..Default::default()
    };
    assert!(tracker.observe(&cut).is_empty());
    assert_eq!(serde_json::to_string(&tracker).unwrap(), before);
    cut.incomplete = None;
    // The same empty dump, complete, really means everything went away.
    let events = tracker.observe(&cut);
    assert!(events.iter().any(|e| e.action() == "tunnel-down"));
}

#[test]
fn the_schema_rejects_an_event_that_breaks_the_contract() {
    let events = replay(&lab_inputs(true), west());
    let text = std::fs::read_to_string(root().join("docs/event.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let rekey = events
        .iter()
        .find(|e| e.action() == "child-sa-rekeyed")
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&rekey.to_json_line()).unwrap();
    assert!(validator.is_valid(&v));
    v["libreswan"]["sa"]
        .as_object_mut()
        .unwrap()
        .remove("replaces");
    assert!(
        !validator.is_valid(&v),
        "a rekey must name what it replaces"
    );
    v["event"]["action"] = serde_json::json!("tunnel-sideways");
    assert!(!validator.is_valid(&v));
}

/// `swantrail diff` primes the tracker with its first dump instead of
/// building that dump's inventory; the state it leaves must be the one an
/// observation leaves, or the printed events of the second dump would differ.
#[test]
fn priming_leaves_the_state_an_observation_leaves() {
    let steps = replay::plan(&lab_inputs(true)).unwrap();
    let snaps: Vec<_> = steps
        .iter()
        .map(|s| replay::load_step(s).unwrap())
        .collect();
    for prime_at in [0, 1, 5, 17, 30, 54] {
        let (mut observed, mut primed) = (Tracker::new(west()), Tracker::new(west()));
        for snap in &snaps[..prime_at] {
            observed.observe(snap);
            primed.observe(snap);
        }
        assert!(!observed.observe(&snaps[prime_at]).is_empty() || prime_at > 0);
        primed.prime(&snaps[prime_at]);
        assert_eq!(
            serde_json::to_value(&primed).unwrap(),
            serde_json::to_value(&observed).unwrap(),
            "state after priming step {prime_at}"
        );
        for snap in &snaps[prime_at + 1..] {
            let want: Vec<String> = observed
                .observe(snap)
                .iter()
                .map(|e| e.to_json_line())
                .collect();
            let got: Vec<String> = primed
                .observe(snap)
                .iter()
                .map(|e| e.to_json_line())
                .collect();
            assert_eq!(got, want, "events after priming step {prime_at}");
        }
    }
}

/// The same on a synthetic gateway at 1 % churn: the inventory that priming
/// skips is three events per tunnel, the case `diff` of a big dump is about.
#[test]
fn priming_a_synthetic_gateway_gives_the_same_next_events() {
    use swantrail::synth::{Churn, Dialect, Output, Series};
    let mut series = Series::new(300, Churn::even(0.05));
    let first =
        swantrail::status::parse(&series.gateway().dump(Dialect::V5_4, Output::Status).text);
    series.advance();
    let second =
        swantrail::status::parse(&series.gateway().dump(Dialect::V5_4, Output::Status).text);
    let (mut observed, mut primed) = (Tracker::new(west()), Tracker::new(west()));
    assert!(!observed.observe(&first).is_empty());
    primed.prime(&first);
    let want: Vec<String> = observed
        .observe(&second)
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    let got: Vec<String> = primed
        .observe(&second)
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

/// A tracker rebuilt at any step from an old full save and the deltas
/// taken since (the daemon's checkpoint journal) gives, from there on, the
/// events of the tracker that never stopped — although the deltas leave
/// out `last_seen` and compare due times to the minute (track/journal.rs).
#[test]
fn tracker_rebuilt_from_a_full_save_and_its_deltas_continues_identically() {
    use swantrail::track::journal::Saved;
    for with_traffic in [true, false] {
        let inputs = lab_inputs(with_traffic);
        let steps = replay::plan(&inputs).unwrap();
        let straight: Vec<String> = replay(&inputs, west())
            .iter()
            .map(|e| e.to_json_line())
            .collect();
        for base in [0, 9, 31] {
            let mut tracker = Tracker::new(west());
            let mut full = String::new();
            let mut saved = Saved::default();
            let mut deltas: Vec<Vec<u8>> = Vec::new();
            let mut lines = Vec::new();
            for (i, step) in steps.iter().enumerate() {
                if i == base {
                    full = serde_json::to_string(&tracker).unwrap();
                    saved = Saved::of(&mut tracker);
                    deltas.clear();
                }
                if i > base {
                    // Continue from the old save and every delta since.
                    let mut rebuilt: Tracker = serde_json::from_str(&full).unwrap();
                    for d in &deltas {
                        rebuilt.apply_delta(d).unwrap();
                    }
                    tracker = rebuilt;
                }
                let snap = replay::load_step(step).unwrap();
                lines.extend(tracker.observe(&snap).iter().map(|e| e.to_json_line()));
                if i >= base {
                    let delta = saved.delta(&mut tracker).unwrap();
                    deltas.push(delta.json.clone());
                    saved.accept(delta);
                }
            }
            let first = lines.iter().zip(&straight).position(|(a, b)| a != b);
            assert!(
                first.is_none() && lines.len() == straight.len(),
                "full save before step {base}, traffic {with_traffic}: {} events where {} were expected; first difference: {:?}",
                lines.len(),
                straight.len(),
                first.map(|i| (&lines[i], &straight[i]))
            );
        }
    }
}
