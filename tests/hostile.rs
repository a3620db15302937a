//! The daemon against a hostile operator (issue "Nothing false, nothing
//! lost"): empty answers, deleted sink files, full disks, crashes in the
//! middle of large writes, clocks going backwards. Each test runs the real
//! binary with a command source or a watched file and a file sink, and
//! asserts on the events it wrote and the lines it logged.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::daemon::*;

/// Long enough for a loaded machine; the tests wait for conditions, never
/// for a fixed time.
const LIMIT: Duration = Duration::from_secs(60);

const A: i64 = 1795857662;

fn actions_of(dir: &std::path::Path) -> Vec<String> {
    event_lines(dir).iter().map(|l| action(l)).collect()
}

#[test]
fn an_empty_status_answer_is_skipped_with_one_warning_not_read_as_everything_down() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let whack = answering_whack(root);
    fs::write(root.join("answer.txt"), fixture(A)).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"], "", "");
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let out = root.join("out");
    wait_until(LIMIT, "the inventory", &daemon, || {
        actions_of(&out).iter().any(|a| a == "tunnel-up")
    });
    let before = event_lines(&out).len();
    fs::write(root.join("answer.txt"), "").unwrap();
    let n = calls(root);
    wait_until(LIMIT, "five empty polls", &daemon, || calls(root) >= n + 5);
    fs::write(root.join("answer.txt"), fixture(A)).unwrap();
    let n = calls(root);
    wait_until(LIMIT, "five full polls", &daemon, || calls(root) >= n + 5);
    let log = daemon.log();
    assert!(daemon.terminate().success());
    assert_eq!(event_lines(&out).len(), before, "{:#?}", event_lines(&out));
    assert_eq!(count_lines(&log, "the output is empty"), 1, "{log}");
}

#[test]
fn an_empty_status_txt_renamed_in_is_skipped_not_diffed() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let config = file_config(root, "settle = \"30ms\"\npoll_interval = \"100ms\"");
    let watched = root.join("watch/status.txt");
    let state = root.join("state");
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    write_by_rename(&watched, &fixture(A), A);
    wait_until(LIMIT, "the first dump", &daemon, || {
        checkpoint_taken_at(&state, "lab") == Some(A)
    });
    write_by_rename(&watched, "", A + 5);
    wait_until(LIMIT, "the empty dump skipped", &daemon, || {
        daemon.log().contains("the output is empty")
    });
    let b = A + 5;
    write_by_rename(&watched, &fixture(b), b);
    wait_until(LIMIT, "the next dump", &daemon, || {
        checkpoint_taken_at(&state, "lab") == Some(b)
    });
    assert!(daemon.terminate().success());
    let actions = actions_of(&root.join("out"));
    for wrong in ["tunnel-down", "connection-removed", "pluto-restarted"] {
        assert!(!actions.iter().any(|a| a == wrong), "{actions:?}");
    }
}

#[test]
fn diff_against_an_empty_status_dump_refuses_and_exits_non_zero() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("status-empty.txt");
    fs::write(&empty, "").unwrap();
    let old = format!("{SERIES}/status-{A}.txt");
    let output = Command::new(BIN)
        .arg("diff")
        .arg(&old)
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the output is empty"), "{stderr}");
}
