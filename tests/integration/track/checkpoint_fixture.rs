//! A checkpoint written by an earlier version of swantrail still loads, and
//! the daemon resumes from it exactly where that version stood: the real
//! binary, fed the rest of the lab's real 4.10 series, gives the same events
//! (ids, sequence numbers, content) as one uninterrupted run of the series.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::config::DaemonConfig;
use support::daemon::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/checkpoint/lab-4.10-gw-fixture.json"
);
/// The last dump the fixture's run had read.
const FIXTURE_TAKEN_AT: i64 = 1795857807;
const LIMIT: Duration = Duration::from_secs(60);

/// The configuration the fixture was written with.
fn config(root: &Path) -> PathBuf {
    DaemonConfig::new(root)
        .hostname("gw-fixture")
        .table("tracker", "stalled_after", "100000s")
        .file_source("lab", &root.join("watch/status.txt"))
        .with("settle", "30ms")
        .with("poll_interval", "1h")
        .with("stale_after_intervals", 0)
        .file_sink("file", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
        .write()
}

/// Feed `dumps` one at a time, each checkpointed before the next; the
/// events written, by `event.id`.
fn run(root: &Path, dumps: &[(i64, PathBuf)]) -> BTreeMap<String, Value> {
    let daemon = Daemon::start(&config(root), &root.join("stderr.log"));
    let state = root.join("state");
    for (epoch, dump) in dumps {
        write_by_rename(
            &root.join("watch/status.txt"),
            &fs::read_to_string(dump).unwrap(),
            *epoch,
        );
        wait_until(
            LIMIT,
            &format!("dump {epoch} checkpointed"),
            &daemon,
            || checkpoint_taken_at(&state, "lab") == Some(*epoch),
        );
    }
    wait_until(LIMIT, "the start", &daemon, || {
        daemon.own_log().contains("swantrail started")
    });
    assert!(daemon.terminate().success());
    event_lines(&root.join("out"))
        .iter()
        .map(|l| (event_id(l), parse_event(l)))
        .collect()
}

#[test]
fn a_checkpoint_of_an_earlier_version_resumes_exactly_where_that_run_stood() {
    let series = lab_series();
    let split = series
        .iter()
        .position(|(epoch, _)| *epoch == FIXTURE_TAKEN_AT)
        .expect("the fixture's last dump is in the series")
        + 1;

    let reference_dir = tempfile::tempdir().unwrap();
    let reference = run(reference_dir.path(), &series);
    let before: u64 = 47; // events of the fixture's run: its tracker's `sequence`
    let fixture: Value = serde_json::from_str(&fs::read_to_string(FIXTURE).unwrap()).unwrap();
    assert_eq!(fixture["tracker"]["sequence"], before);
    let after: BTreeMap<&String, &Value> = reference
        .iter()
        .filter(|(_, e)| field(e, "event.sequence").and_then(Value::as_u64).unwrap() > before)
        .collect();
    assert!(
        after.len() >= 10,
        "too few events after the split: {}",
        after.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("state/checkpoint")).unwrap();
    fs::copy(FIXTURE, root.join("state/checkpoint/lab.json")).unwrap();
    let resumed = run(root, &series[split..]);
    let resumed: BTreeMap<&String, &Value> = resumed.iter().collect();
    assert_eq!(
        resumed.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the resumed run's events are not those of the uninterrupted run after the fixture"
    );
    for (id, event) in &resumed {
        assert_eq!(*event, after[id], "{id} differs from the uninterrupted run");
    }
}
