//! A restarted daemon runs with the configuration it is given, not the one
//! its checkpoint was saved with: the real binary, a file source and a file
//! sink on the bundled lab series (examples/lab-4.10, real 4.10 dumps).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::config::DaemonConfig;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
const SERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab-4.10/series");
/// Two dumps of the series with seven events between them.
const FIRST: i64 = 1795857662;
const LATER: i64 = 1795857707;
const WARNING: &str = "the hostname changed from";

fn write_config(root: &Path, hostname: &str, stalled_after: &str) {
    DaemonConfig::new(root)
        .hostname(hostname)
        .table("tracker", "stalled_after", stalled_after)
        .file_source("lab", &root.join("watch/status.txt"))
        .with("settle", "50ms")
        .with("poll_interval", "50ms")
        .file_sink("", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
        .write();
}

/// Put a dump in place by rename, with its epoch as mtime.
fn put_dump(root: &Path, epoch: i64) {
    let text = fs::read_to_string(format!("{SERIES}/status-{epoch}.txt")).unwrap();
    let temporary = root.join("watch/status.tmp");
    fs::write(&temporary, text).unwrap();
    fs::File::options()
        .write(true)
        .open(&temporary)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch as u64))
        .unwrap();
    fs::rename(&temporary, root.join("watch/status.txt")).unwrap();
}

fn checkpoint(root: &Path) -> Option<Value> {
    crate::support::daemon::saved_checkpoint(&root.join("state"), "lab")
}

fn events(root: &Path) -> Vec<Value> {
    fs::read_to_string(root.join("out/events.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Run the daemon until `epoch` is checkpointed and its events are out,
/// then stop it with SIGTERM; returns its stderr.
fn run_until_checkpointed(root: &Path, epoch: i64, events_at_least: usize) -> String {
    let stderr = root.join("stderr.log");
    let log = fs::File::create(&stderr).unwrap();
    let mut child: Child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(root.join("swantrail.toml"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    put_dump(root, epoch);
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint(root).and_then(|c| c["taken_at"].as_i64()) != Some(epoch)
        || events(root).len() < events_at_least
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "dump {epoch} was not checkpointed: {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    fs::read_to_string(&stderr).unwrap()
}

#[test]
fn a_restart_with_a_new_hostname_and_stalled_after_uses_them_and_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["watch", "state", "out"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    write_config(root, "gw-old", "120s");
    let first_log = run_until_checkpointed(root, FIRST, 1);
    assert!(!first_log.contains(WARNING), "{first_log}");
    let before = events(root).len();
    assert_eq!(
        checkpoint(root).unwrap()["tracker"]["config"]["hostname"],
        "gw-old"
    );

    write_config(root, "gw-new", "30s");
    let second_log = run_until_checkpointed(root, LATER, before + 1);
    assert_eq!(second_log.matches(WARNING).count(), 1, "{second_log}");
    assert!(second_log.contains("\"gw-old\""), "{second_log}");

    let saved = checkpoint(root).unwrap();
    assert_eq!(saved["tracker"]["config"]["hostname"], "gw-new");
    assert_eq!(saved["tracker"]["config"]["stalled_after_s"], 30);
    let all = events(root);
    let hosts = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["observer"]["hostname"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(hosts(&all[..before]).iter().all(|h| h == "gw-old"));
    let after = hosts(&all[before..]);
    assert!(!after.is_empty());
    assert!(after.iter().all(|h| h == "gw-new"), "{after:?}");
}
