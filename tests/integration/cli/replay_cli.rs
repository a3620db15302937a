//! `swantrail replay` / `swantrail diff` and the replay planner, on real files.

use crate::support;

use std::fs;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use support::*;
use swantrail::source::replay::{self, ReplayError};

#[test]
fn plan_groups_dumps_of_one_epoch_and_orders_by_it() {
    let steps = replay::plan(&lab_inputs(true)).unwrap();
    assert_eq!(steps.len(), 60);
    assert_eq!(steps[0].taken_at, 1795857662);
    assert_eq!(steps[59].taken_at, 1795857957);
    for s in &steps {
        let names: Vec<String> = s
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                format!("status-{}.txt", s.taken_at),
                format!("trafficstatus-{}.txt", s.taken_at)
            ]
        );
    }
}

#[test]
fn plan_orders_unnamed_dumps_by_mtime_then_natural_name_and_never_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, secs: u64| {
        let p = dir.path().join(name);
        fs::write(&p, "").unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    write("t__10.txt", 2000);
    write("t__2.txt", 2000);
    write("t__1.txt", 3000);
    write(".hidden", 1);
    let steps = replay::plan(&[dir.path().to_path_buf()]).unwrap();
    let got: Vec<(i64, String)> = steps
        .iter()
        .map(|s| {
            assert_eq!(s.files.len(), 1);
            (
                s.taken_at,
                s.files[0]
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2000, "t__2.txt".to_string()),
            (2000, "t__10.txt".to_string()),
            (3000, "t__1.txt".to_string())
        ]
    );
}

#[test]
fn binary_and_oversized_dumps_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("status-1795857662.txt");
    fs::write(&bin, b"000 #1: \x00\xff").unwrap();
    let err = replay::read_dump(&bin).unwrap_err();
    assert!(matches!(err, ReplayError::NotText { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("status-1795857662.txt") && !msg.contains('\n'),
        "{msg}"
    );

    let big = dir.path().join("big.txt");
    let f = fs::File::create(&big).unwrap();
    f.set_len(replay::MAX_DUMP_BYTES + 1).unwrap();
    let err = replay::read_dump(&big).unwrap_err();
    assert!(matches!(err, ReplayError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("big.txt"));
}

#[test]
fn an_empty_trafficstatus_dump_means_no_tunnels() {
    let dir = root().join("examples/lab-4.10/series-trafficstatus");
    let snap = snapshot(&dir.join("trafficstatus-1795857932.txt"), 1795857932);
    assert_eq!(
        snap.kinds,
        vec![swantrail::snapshot::OutputKind::TrafficStatus]
    );
    assert!(snap.traffic.is_empty());
}

fn swantrail(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn replay_command_prints_the_library_events_as_ndjson() {
    let out = swantrail(&[
        "replay",
        "--hostname",
        "west",
        "examples/lab-4.10/series",
        "examples/lab-4.10/series-trafficstatus",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want: Vec<String> = replay(&lab_inputs(true), west())
        .iter()
        .map(|e| e.to_json_line())
        .collect();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got, want);
}

#[test]
fn diff_command_prints_only_the_changes_between_two_dumps() {
    let old = "examples/lab-4.10/series/status-1795857682.txt";
    let new = "examples/lab-4.10/series/status-1795857687.txt";
    let out = swantrail(&["diff", "--hostname", "west", old, new]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let actions: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"]["action"].as_str().unwrap().to_string(),
                v["libreswan"]["sa"]["serial"].as_u64().unwrap(),
            )
        })
        .collect();
    // pluto: "v2-short" #10: initiator rekeyed Child SA #8 (09:21:27).
    assert_eq!(actions, vec![("child-sa-rekeyed".to_string(), 10)]);
    assert!(text.contains("\"@timestamp\":\"2026-11-28T09:21:27Z\""));
}

#[test]
fn replay_of_a_missing_path_fails_with_one_clear_line() {
    let out = swantrail(&["replay", "no/such/dir"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no/such/dir"), "{err}");
}
