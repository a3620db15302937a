//! The bundled busy-gateway run on real libreswan 4.10
//! (`examples/lab-4.10-gateway/`): thirty-odd connections on west, east's
//! pluto killed and restarted, west's pluto restarted with a negotiation
//! half-open, pluto's Linux audit records beside the series. Replayed
//! through the snapshot tracker alone, and fused with the records as a
//! daemon with a Linux audit source does, it must score at least 99 %
//! recall, precision and right end reasons against west's pluto log (the
//! lab's judge, support/pluto_log.rs), and never give one event id two
//! contents.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use support::pluto_log::{Score, judge, read_history, recorded_serials};
use support::*;
use swantrail::event::Event;
use swantrail::source::replay::{self, AuditFeed};
use swantrail::track::Tracker;

fn bundle() -> PathBuf {
    root().join("examples/lab-4.10-gateway")
}

fn inputs() -> Vec<PathBuf> {
    vec![
        bundle().join("series"),
        bundle().join("series-trafficstatus"),
    ]
}

/// The ticks where west's pluto did not answer (`series-gaps.txt`: while
/// it shut down and started again), fed to the tracker as unreachable.
fn gaps() -> BTreeMap<i64, String> {
    std::fs::read_to_string(bundle().join("series-gaps.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(' ')?;
            Some((t.parse().ok()?, rest.to_string()))
        })
        .collect()
}

/// The series replayed as a daemon polling `--status` and
/// `--trafficstatus` sees it, with the records of `audit.log` when `fused`.
fn replay_run(fused: bool) -> Vec<Event> {
    let mut feed = AuditFeed::read(&bundle().join("audit/audit.log")).unwrap();
    let mut tracker = Tracker::new(west());
    tracker.expect_linux_audit_records(fused);
    let gaps = gaps();
    let mut pending = gaps.iter().peekable();
    let mut out = Vec::new();
    let steps = replay::plan(&inputs()).unwrap();
    // A daemon started with the series hears no record written before.
    feed.until(steps[0].taken_at - 1);
    for step in steps {
        while let Some((at, why)) = pending.next_if(|(at, _)| **at < step.taken_at) {
            out.extend(tracker.observe_unreachable(*at, why));
        }
        if fused {
            tracker.ingest_linux_audit_records(feed.until(step.taken_at));
        }
        out.extend(tracker.observe(&replay::load_step(&step).unwrap()));
    }
    out.extend(tracker.release_held());
    out
}

fn as_json(events: &[Event]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// Seconds since midnight UTC of the series' first tick.
fn series_start() -> i64 {
    replay::plan(&inputs()).unwrap()[0]
        .taken_at
        .rem_euclid(86_400)
}

fn assert_scores_at_least_99(what: &str, score: &Score) {
    eprintln!(
        "{what}: recall {:.1}% ({}/{}), precision {:.1}% ({}/{}), right end reasons {:.1}% ({}/{})\n  missed {:#?}\n  not in pluto's log {:#?}\n  wrong reasons {:#?}",
        score.recall() * 100.0,
        score.found,
        score.judged,
        score.precision() * 100.0,
        score.right,
        score.reported,
        score.end_reasons() * 100.0,
        score.ends_right,
        score.ends,
        score.missed,
        score.false_reports,
        score.wrong_reasons
    );
    assert!(score.judged > 500, "{what}: only {} judged", score.judged);
    for (name, value) in [
        ("recall", score.recall()),
        ("precision", score.precision()),
        ("right end reasons", score.end_reasons()),
    ] {
        assert!(value >= 0.99, "{what}: {name} {:.1}%", value * 100.0);
    }
}

/// Every event id names one content: an id seen twice is the same event
/// written twice, never two different ones.
fn assert_one_content_per_id(what: &str, events: &[Event]) {
    let mut by_id: BTreeMap<&str, &Event> = BTreeMap::new();
    for e in events {
        if let Some(first) = by_id.insert(e.id(), e) {
            panic!("{what}: event id {} twice:\n{first:?}\n{e:?}", e.id());
        }
    }
}

#[test]
fn the_bundle_holds_west_s_two_pluto_runs_and_their_records() {
    let history = read_history(&bundle().join("west-pluto.log"));
    assert_eq!(history.runs, 2, "west's pluto started twice in the run");
    let audit = std::fs::read_to_string(bundle().join("audit/audit.log")).unwrap();
    let pids: BTreeSet<&str> = audit
        .lines()
        .filter(|l| l.contains("type=CRYPTO_"))
        .filter_map(|l| l.split(" pid=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(pids, BTreeSet::from(["10000", "821"]));
    assert!(
        recorded_serials(
            &bundle().join("audit/audit.log"),
            &bundle().join("west-pluto.log")
        )
        .len()
            > 500
    );
}

#[test]
fn the_snapshot_replay_scores_99_percent_against_pluto_s_log() {
    let events = replay_run(false);
    assert_one_content_per_id("snapshots", &events);
    assert_schema_valid(&events);
    let history = read_history(&bundle().join("west-pluto.log"));
    // The series are 5 s apart: an SA is judged when it lived two of them
    // and a margin (as lab_52.rs).
    let score = judge(&history, &as_json(&events), 12, series_start());
    assert_scores_at_least_99("snapshots", &score);
}

#[test]
fn the_fused_replay_scores_99_percent_against_pluto_s_log() {
    let events = replay_run(true);
    assert_one_content_per_id("fused", &events);
    assert_schema_valid(&events);
    let history = read_history(&bundle().join("west-pluto.log"));
    // Every transition from the series' first tick on counts, however
    // short it lived (as audit_lab_bundle.rs).
    let score = judge(&history, &as_json(&events), 0, series_start());
    assert_scores_at_least_99("fused", &score);
}
