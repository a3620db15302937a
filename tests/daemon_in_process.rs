//! The daemon loop run in-process: `serve` takes its control stream as a
//! channel, so a test feeds it a dump, watches the state directory and stops
//! it without signals. It pins the delivery order of docs/design.md: a snapshot's
//! events are in the spool before its checkpoint names it.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use swantrail::config;
use swantrail::daemon::{Request, serve};
use tokio::sync::mpsc;

/// A real 4.10 dump of the bundled lab series (examples/lab-4.10).
const EPOCH: i64 = 1795857662;
const DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/lab-4.10/series/status-1795857662.txt"
);

fn checkpoint_taken_at(state: &Path) -> Option<i64> {
    let text = fs::read_to_string(state.join("checkpoint/lab.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["taken_at"].as_i64()
}

/// Every line ever appended to the sink's spool (one segment holds them all).
fn spooled_lines(state: &Path) -> usize {
    let Ok(entries) = fs::read_dir(state.join("spool/file")) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        // Whole lines only: the daemon may be halfway through an append.
        .map(|e| {
            fs::read(e.path())
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshots_events_are_spooled_before_its_checkpoint_and_a_stop_ends_serve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["watch", "state", "out"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let path = |p: &str| format!("{:?}", root.join(p).to_str().unwrap());
    let text = format!(
        "state_dir = {}\nhostname = \"gw-test\"\n\n[[source]]\ntype = \"file\"\nname = \"lab\"\npath = {}\nsettle = \"20ms\"\npoll_interval = \"20ms\"\n\n[[sink]]\ntype = \"file\"\npath = {}\n",
        path("state"),
        path("watch/status.txt"),
        path("out/events.ndjson"),
    );
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

    // The spool is read right after the checkpoint is first seen: if the
    // daemon spools first, every event of the snapshot is already there.
    let mut spooled_at_checkpoint = None;
    for _ in 0..20_000 {
        if checkpoint_taken_at(&state) == Some(EPOCH) {
            spooled_at_checkpoint = Some(spooled_lines(&state));
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let spooled_at_checkpoint = spooled_at_checkpoint.expect("the dump was never checkpointed");

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
    assert_eq!(spooled_at_checkpoint, events);
}
