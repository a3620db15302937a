//! pluto's log fused with the snapshots (`swantrail replay --pluto-log`,
//! the real binary) on every bundled lab run (libreswan 4.10 and 5.2):
//! judged against the same log by the test-only judge
//! (`support/pluto_log.rs`), which reads it independently of the source.
//! With the log, every transition pluto logged after the series began is
//! reported, nothing else is, every end has pluto's reason and a cause in
//! pluto's words, and every event is within a second of its log line.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::pluto_log::{judge, read_history, timing};

/// Every bundled lab run with west's pluto log and a status series.
fn runs() -> Vec<PathBuf> {
    let examples = support::root().join("examples");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("west-pluto.log").is_file() && p.join("series").is_dir())
        .collect();
    runs.sort();
    runs
}

/// `swantrail replay --pluto-log west-pluto.log series [series-trafficstatus]`
/// of a lab run's directory, the real binary, as JSON events.
pub(super) fn replayed(run: &Path) -> Vec<serde_json::Value> {
    replayed_with_log(run, &run.join("west-pluto.log"))
}

/// [`replayed`] with another copy of west's log (a part of it).
pub(super) fn replayed_with_log(run: &Path, log: &Path) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swantrail"));
    cmd.args(["replay", "--hostname", "west", "--pluto-log"])
        .arg(log)
        .arg(run.join("series"));
    if run.join("series-trafficstatus").is_dir() {
        cmd.arg(run.join("series-trafficstatus"));
    }
    let out = cmd.output().expect("run swantrail replay");
    assert!(
        out.status.success(),
        "{}: {}",
        run.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn series_start(run: &Path) -> i64 {
    let first = swantrail::source::replay::plan(&[run.join("series")]).unwrap()[0].taken_at;
    first.rem_euclid(86_400)
}

#[test]
fn every_lab_run_scores_full_marks_with_pluto_s_log() {
    let runs = runs();
    assert!(runs.len() >= 4, "bundled lab runs: {runs:?}");
    let mut failures = Vec::new();
    for run in runs {
        let history = read_history(&run.join("west-pluto.log"));
        let events = replayed(&run);
        let score = judge(&history, &events, 0, series_start(&run));
        let time = timing(&history, &events, 1_000_000);
        eprintln!(
            "{}: {score}; within 1 s {}/{} (worst {:.3} s)",
            run.display(),
            time.within,
            time.checked,
            time.worst_us as f64 / 1e6,
        );
        if score.recall() < 1.0
            || score.precision() < 1.0
            || score.end_reasons() < 1.0
            || time.within < time.checked
        {
            failures.push(format!(
                "{}: missed {:#?}; false {:#?}; wrong {:#?}; late {:#?}",
                run.display(),
                score.missed,
                score.false_reports,
                score.wrong_reasons,
                time.off
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every end the log explains carries the cause and the line, and the
/// cause agrees with the reason consumers read.
#[test]
fn every_end_carries_a_cause_in_pluto_s_words() {
    for run in runs() {
        let log = std::fs::read_to_string(run.join("west-pluto.log")).unwrap();
        for e in replayed(&run) {
            let action = e["event"]["action"].as_str().unwrap_or("");
            let Some(cause) = e["libreswan"]["end"]["cause"].as_str() else {
                continue;
            };
            let line = e["libreswan"]["end"]["log"].as_str().unwrap();
            assert!(
                line.is_empty() || log.contains(line),
                "{}: {action}: the cause's line is not pluto's: {line}",
                run.display()
            );
            let reason = e["event"]["reason"].as_str().unwrap_or("");
            let agrees = match cause {
                "replaced" => reason == "replaced" && action.ends_with("-expired"),
                "expired" => reason == "expired" || action == "negotiation-failed",
                "pluto-shutdown" => reason == "pluto-restart" || action == "negotiation-failed",
                _ => reason == "deleted" || action == "negotiation-failed",
            };
            assert!(
                agrees,
                "{}: {action} reason {reason:?} with cause {cause}",
                run.display()
            );
        }
    }
}
