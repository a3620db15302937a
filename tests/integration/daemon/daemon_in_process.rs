//! The daemon loop run in-process: `serve` takes its control stream as a
//! channel, so a test feeds it a dump, watches the state directory and stops
//! it without signals. It pins the delivery order of docs/design.md: a snapshot's
//! events are in the spool before its checkpoint names it.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::config::DaemonConfig;
use crate::support::daemon::checkpoint_taken_at;
use swantrail::config;
use swantrail::daemon::{Request, serve};
use tokio::sync::mpsc;

/// A real 4.10 dump of the bundled lab series (examples/lab-4.10).
const EPOCH: i64 = 1795857662;
const DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/lab-4.10/series/status-1795857662.txt"
);

/// The complete lines of the files of `dir` whose name ends in `suffix`.
fn lines_in(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        if !entry.file_name().to_string_lossy().ends_with(suffix) {
            continue;
        }
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        // A last line without its newline is not yet written.
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        lines.extend(complete.lines().map(String::from));
    }
    lines
}

/// Every event spooled so far: the lines still in the sink's spool, and
/// those the sink delivered, which left the spool (a delivered segment is
/// deleted) only once they were in its file. Read in that order, an event
/// is in one or the other, or both.
fn spooled_events(root: &Path) -> std::collections::BTreeSet<String> {
    let mut events: std::collections::BTreeSet<String> =
        lines_in(&root.join("state/spool/file"), ".seg")
            .into_iter()
            .collect();
    events.extend(lines_in(&root.join("out"), "events.ndjson"));
    events
}

/// The events in the source's pending file, if there is one (its first
/// line is a header).
fn pending_lines(state: &Path) -> Option<usize> {
    let bytes = fs::read(state.join("checkpoint/lab.pending")).ok()?;
    Some(
        bytes
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .saturating_sub(1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshots_events_are_pending_or_spooled_once_its_checkpoint_is_written_and_a_stop_ends_serve()
 {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = DaemonConfig::new(root)
        .file_source("lab", &root.join("watch/status.txt"))
        .with("settle", "20ms")
        .with("poll_interval", "20ms")
        .file_sink("", &root.join("out/events.ndjson"))
        .to_toml();
    let config = config::from_toml_str(&text, Path::new("in-process.toml")).unwrap();
    let state = root.join("state");

    let (control, requests) = mpsc::channel(4);
    let daemon = tokio::spawn(serve(config, requests));
    let temporary = root.join("watch/status.tmp");
    fs::copy(DUMP, &temporary).unwrap();
    fs::File::options()
        .write(true)
        .open(&temporary)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH as u64))
        .unwrap();
    fs::rename(&temporary, root.join("watch/status.txt")).unwrap();

    // Right after the checkpoint is first seen, the snapshot's events are
    // all in the pending file (written before the checkpoint, removed only
    // once every spool has them) or, that file gone, all in the spool.
    // The pending file is read first: it goes only after the spool has them.
    let mut at_checkpoint = None;
    for _ in 0..20_000 {
        if checkpoint_taken_at(&state, "lab") == Some(EPOCH) {
            let pending = pending_lines(&state);
            at_checkpoint = Some((pending, spooled_events(root).len()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (pending, spooled) = at_checkpoint.expect("the dump was never checkpointed");

    control.send(Request::Stop("test")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), daemon)
        .await
        .expect("serve stops on a Stop request")
        .unwrap()
        .unwrap();

    let delivered = fs::read_to_string(root.join("out/events.ndjson")).unwrap();
    let events = delivered.lines().count();
    assert!(events > 0);
    for line in delivered.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["observer"]["hostname"], "gw-test");
    }
    assert!(
        pending == Some(events) || spooled == events,
        "at the checkpoint: {pending:?} pending, {spooled} spooled, of {events} events"
    );
    assert!(
        !state.join("checkpoint/lab.pending").exists(),
        "the pending file stays after its events were spooled"
    );
}
