//! The bundled real libreswan 5.2 run (`examples/lab-5.2/`, made by
//! `e2e/lab.sh --libreswan 5.2`): replayed through the tracker, both the
//! way a `--status` + `--trafficstatus` daemon sees it and the way a
//! `--trafficstatus` + `--showstates` daemon does, it must report every
//! rekey (naming the SA replaced) and every establishment, revivals
//! included, that west's pluto logged, and nothing else. The expectations
//! come from the pluto log itself (tests/common/pluto_log.rs), which
//! holds both pluto runs of the scenario: west's pluto is restarted at
//! the end and counts serials from #1 again.

mod common;

use std::path::{Path, PathBuf};

use common::pluto_log::{judge, read_history};
use swantrail::source::replay;
use swantrail::track::{Tracker, TrackerConfig};

fn run_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab-5.2")
}

/// The events of the series in `dirs` (names under the run), as JSON. The
/// ticks where west's pluto did not answer (`series-gaps.txt`, while it
/// restarted) are fed to the tracker as the daemon saw them: unreachable.
fn replay_run(dirs: &[&str]) -> Vec<serde_json::Value> {
    let inputs: Vec<PathBuf> = dirs.iter().map(|d| run_dir().join(d)).collect();
    let gaps: std::collections::BTreeMap<i64, String> =
        std::fs::read_to_string(run_dir().join("series-gaps.txt"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(' ')?;
                Some((t.parse().ok()?, rest.to_string()))
            })
            .collect();
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let mut out = Vec::new();
    let mut push = |events: Vec<swantrail::event::Event>| {
        for e in events {
            out.push(serde_json::from_str(&e.to_json_line()).unwrap());
        }
    };
    let mut pending = gaps.iter().peekable();
    for step in replay::plan(&inputs).unwrap() {
        while let Some((at, why)) = pending.next_if(|(at, _)| **at < step.taken_at) {
            push(tracker.observe_unreachable(*at, why));
        }
        let snap = replay::load_step(&step).unwrap();
        push(tracker.observe(&snap));
    }
    out
}

/// The series are 5 s apart: an SA is judged when it lived two of them
/// and a margin.
const MIN_LIFE: i64 = 12;

/// Seconds since midnight UTC of the series' first tick.
fn series_start() -> i64 {
    let first = replay::plan(&[run_dir().join("series")]).unwrap()[0].taken_at;
    first.rem_euclid(86_400)
}

fn check(dirs: &[&str]) {
    let history = read_history(&run_dir().join("west-pluto.log"));
    assert_eq!(history.runs, 2, "west's pluto started twice in the run");
    let events = replay_run(dirs);
    let score = judge(&history, &events, MIN_LIFE, series_start());
    let starts = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|m| {
                m.starts_with("Start") || m.contains("-established") || m.contains("-rekeyed")
            })
            .cloned()
            .collect()
    };
    assert!(
        starts(&score.missed).is_empty(),
        "{dirs:?}: establishments or rekeys pluto logged, not reported: {:#?}",
        starts(&score.missed)
    );
    assert!(
        starts(&score.false_reports).is_empty(),
        "{dirs:?}: establishments or rekeys pluto never logged: {:#?}",
        starts(&score.false_reports)
    );
    let rekeys = history
        .sas
        .values()
        .filter(|sa| sa.replaces.is_some())
        .count();
    assert!(rekeys >= 4, "the log shows only {rekeys} rekeys");
    let revivals = events
        .iter()
        .filter(|e| e["event"]["action"] == "child-sa-established")
        .count();
    assert!(revivals >= 8, "only {revivals} Child SAs established");
    eprintln!(
        "{dirs:?}: recall {:.3} precision {:.3} end reasons {:.3}; missed {:?}; false {:?}; wrong reasons {:?}",
        score.recall(),
        score.precision(),
        score.end_reasons(),
        score.missed,
        score.false_reports,
        score.wrong_reasons
    );
}

#[test]
fn status_and_trafficstatus_give_every_rekey_and_revival_pluto_logged() {
    check(&["series", "series-trafficstatus"]);
}

#[test]
fn trafficstatus_and_showstates_give_every_rekey_and_revival_pluto_logged() {
    check(&["series-trafficstatus", "series-showstates"]);
}

#[test]
fn a_rekey_always_names_the_sa_pluto_said_it_replaced() {
    let history = read_history(&run_dir().join("west-pluto.log"));
    let events = replay_run(&["series", "series-trafficstatus"]);
    let score = judge(&history, &events, MIN_LIFE, series_start());
    let bad: Vec<&String> = score
        .false_reports
        .iter()
        .filter(|f| f.contains("-rekeyed"))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}
