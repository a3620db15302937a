//! The bundled busy-gateway run on real libreswan 4.10
//! (`examples/lab-4.10-gateway/`): thirty connections on west, east's
//! pluto killed and restarted, west's pluto restarted with a negotiation
//! half-open, pluto's Linux audit records beside the series. Replayed
//! through the snapshot tracker alone, fused with the records as a daemon
//! with a Linux audit source does, and fused with pluto's log (`swantrail
//! replay --pluto-log`, the real binary), it is scored against west's
//! pluto log by the lab's judge (support/pluto_log.rs), and never gives
//! one event id two contents.
//!
//! Issue 26 asks 99 % recall, precision and right end reasons. The
//! snapshots (alone or with the records) reach it on all three; every
//! event still missed or wrong is named (see `assert_scores`). With
//! pluto's log every figure is 100 %.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use support::pluto_log::{Score, judge, read_history, recorded_serials, timing};
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

/// The Child SAs pluto deleted as stale at their rekey time beside a
/// revival it had started on the same IKE SA (`not rekey stale Child SA
/// #540; as already got a newer #614`), both between two polls. Since the
/// listings' `NEW_CHILD` negotiations and the old ones' REKEY timers
/// tell (docs/events.md), they end `deleted` as pluto's log says; a run
/// whose polls catch neither would see a rekey in them ("What a snapshot
/// cannot tell").
const STALE_BESIDE_A_REVIVAL: [u64; 5] = [540, 552, 568, 569, 576];
/// Their revivals, reported `child-sa-rekeyed` for the same reason.
const REVIVALS_BESIDE: [u64; 5] = [592, 598, 611, 614, 615];
/// `pdel`'s Child SA #139, deleted by east and revived on the same IKE SA
/// between two polls, reported as a rekey: another fix's pattern
/// (issue 26, pattern 1), not this run's.
const DELETED_AND_REVIVED: u64 = 139;

fn serial_in(line: &str) -> Option<u64> {
    let rest = line
        .split(" serial: ")
        .nth(1)
        .or_else(|| line.split(" #").nth(1))?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Print the score; hold recall and precision to 99 % and end reasons to
/// `min_end_reasons`, and require every miss to be one of the known
/// patterns above.
fn assert_scores(what: &str, score: &Score, min_end_reasons: f64) {
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
    for (name, value, min) in [
        ("recall", score.recall(), 0.99),
        ("precision", score.precision(), 0.99),
        ("right end reasons", score.end_reasons(), min_end_reasons),
    ] {
        assert!(value >= min, "{what}: {name} {:.1}%", value * 100.0);
    }
    let known = |line: &String| {
        serial_in(line).is_some_and(|s| {
            STALE_BESIDE_A_REVIVAL.contains(&s)
                || REVIVALS_BESIDE.contains(&s)
                || s == DELETED_AND_REVIVED
        })
    };
    for line in score
        .missed
        .iter()
        .chain(&score.false_reports)
        .chain(&score.wrong_reasons)
    {
        assert!(known(line), "{what}: a new miss: {line}");
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
    // Reached: 237 of 237.
    assert_scores("snapshots", &score, 0.99);
}

#[test]
fn the_fused_replay_scores_99_percent_against_pluto_s_log() {
    let events = replay_run(true);
    assert_one_content_per_id("fused", &events);
    assert_schema_valid(&events);
    let history = read_history(&bundle().join("west-pluto.log"));
    let events = as_json(&events);
    // Every transition from the series' first tick on counts, however
    // short it lived (as audit_lab_bundle.rs).
    let score = judge(&history, &events, 0, series_start());
    // Reached: 269 of 269.
    assert_scores("fused", &score, 0.99);
    // The records' times: as the lab holds a daemon with a Linux audit
    // source on this scenario (e2e_lab.rs), 95 % within 0.5 s of pluto's
    // line.
    let t = timing(&history, &events, 500_000);
    eprintln!(
        "fused: {} of {} within 0.5 s (worst {:.3} s)",
        t.within,
        t.checked,
        t.worst_us as f64 / 1e6
    );
    assert!(t.checked >= score.found, "{} of {}", t.checked, score.found);
    assert!(t.within * 100 >= t.checked * 95, "{:?}", t.off);
}

#[test]
fn fused_with_pluto_s_log_the_replay_scores_full_marks() {
    let events = super::pluto_log_fused::replayed(&bundle());
    let mut ids: BTreeMap<&str, &serde_json::Value> = BTreeMap::new();
    for e in &events {
        let id = e["event"]["id"].as_str().unwrap();
        if let Some(first) = ids.insert(id, e) {
            panic!("event id {id} twice:\n{first}\n{e}");
        }
    }
    assert_json_schema_valid(&events);
    let history = read_history(&bundle().join("west-pluto.log"));
    let score = judge(&history, &events, 0, series_start());
    assert!(score.judged > 700, "only {} judged", score.judged);
    assert!(
        score.missed.is_empty() && score.false_reports.is_empty() && score.wrong_reasons.is_empty(),
        "missed {:#?}, not in pluto's log {:#?}, wrong reasons {:#?}",
        score.missed,
        score.false_reports,
        score.wrong_reasons
    );
    let t = timing(&history, &events, 1_000_000);
    assert!(t.checked >= score.found, "{} of {}", t.checked, score.found);
    assert!(t.off.is_empty(), "{:?}", t.off);
}

/// Seconds since midnight of a pluto log line's stamp (`Dec  7 07:03:36.3: ...`).
fn line_second(line: &str) -> Option<i64> {
    let hms = line.get(7..15)?;
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
}

#[test]
fn a_log_source_added_while_sas_are_up_ends_them_as_pluto_s_log_says() {
    // A daemon whose pluto-log source starts at the log's end reads no
    // start of the SAs already up; their ends still come from the log.
    // The bundle's log from the fourth listing on, fused with the whole
    // series, judged against the whole log: every SA up before that and
    // ended in view ends with pluto's reason at its log line.
    let steps = replay::plan(&inputs()).unwrap();
    let cut = steps[3].taken_at.rem_euclid(86_400);
    let full = std::fs::read_to_string(bundle().join("west-pluto.log")).unwrap();
    let late: String = full
        .lines()
        .skip_while(|l| line_second(l).is_none_or(|s| s < cut))
        .flat_map(|l| [l, "\n"])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("west-pluto.log");
    std::fs::write(&log, late).unwrap();
    let events = super::pluto_log_fused::replayed_with_log(&bundle(), &log);
    let history = read_history(&bundle().join("west-pluto.log"));
    let first_generation = events[0]["libreswan"]["pluto"]["generation"].as_u64();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for e in &events {
        let action = e["event"]["action"].as_str().unwrap();
        if !(action.ends_with("-deleted") || action.ends_with("-expired"))
            || e["libreswan"]["pluto"]["generation"].as_u64() != first_generation
        {
            continue;
        }
        let serial = e["libreswan"]["sa"]["serial"].as_u64().unwrap();
        let Some(sa) = history.sas.get(&(0, serial)) else {
            continue;
        };
        let up_before_the_cut = sa.up.is_some_and(|up| up < cut);
        if !up_before_the_cut || sa.down.is_none_or(|d| d < cut) || sa.at_shutdown {
            continue;
        }
        checked += 1;
        let reason = e["event"]["reason"].as_str().unwrap_or_default();
        let at = e["@timestamp"].as_str().unwrap_or_default();
        let down_us = sa.down_us.unwrap_or_default();
        let want_at = format!(
            "{:02}:{:02}:{:02}.{:03}",
            down_us / 3_600_000_000,
            down_us / 60_000_000 % 60,
            down_us / 1_000_000 % 60,
            down_us / 1000 % 1000
        );
        if reason != sa.end_reason() || !at.contains(&want_at) {
            wrong.push(format!(
                "#{serial} {action} {reason} at {at}; pluto: {} at {want_at}",
                sa.end_reason()
            ));
        }
    }
    assert!(
        checked >= 20,
        "only {checked} SAs up before the cut ended in view"
    );
    assert!(wrong.is_empty(), "{checked} checked, wrong: {wrong:#?}");
}
