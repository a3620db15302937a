//! End-to-end tests of `swantrail run`: the real binary, real files, real
//! child processes and real signals, with a temporary state directory.
//!
//! They pin the promises an operator relies on: no event is lost across
//! crashes (duplicates only with the same `event.id`), a watched dump is read
//! once when it is complete and never when it is not, pluto going away and
//! coming back is reported once, and the service talks to systemd.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;
use support::config::DaemonConfig;
use support::daemon::*;

// ---------------------------------------------------------------- helpers

/// Rewrite a dump in place the way `whack --status > file` does: truncate,
/// then write in pieces with short pauses.
fn write_in_place(target: &Path, text: &str, mtime: i64) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(target)
        .unwrap();
    let bytes = text.as_bytes();
    let third = bytes.len() / 3;
    for piece in [
        &bytes[..third],
        &bytes[third..2 * third],
        &bytes[2 * third..],
    ] {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    drop(file);
    set_mtime(target, mtime);
}

/// A config with one file source and one file sink, all under `root`.
fn file_to_file_config(root: &Path, settle: &str, poll: &str, force_poll: bool) -> PathBuf {
    file_config(root)
        .source_with("settle", settle)
        .source_with("poll_interval", poll)
        .source_with("force_poll", force_poll)
        .write()
}

// ------------------------------------------------------------------ tests

/// Feed the series one dump at a time, waiting until each is checkpointed;
/// with `kills`, SIGKILL the daemon at a random moment within `kill_window`
/// after those dumps and restart it. Without kills, and with a zero
/// `kill_window`, sets it to half again the median time a dump took to be
/// checkpointed, for a run with kills. Returns the event lines of all
/// output files.
fn run_series(
    root: &Path,
    series: &[(i64, PathBuf)],
    kills: &BTreeSet<usize>,
    seed: u64,
    kill_window: &mut Duration,
    killed_before_checkpoint: &mut usize,
) -> Vec<String> {
    let config = file_to_file_config(root, "30ms", "1s", false);
    let state = root.join("state");
    let watched = root.join("watch/status.txt");
    let stderr = root.join("stderr.log");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut daemon = Daemon::start(&config, &stderr);
    let mut took = Vec::new();
    for (index, (epoch, dump)) in series.iter().enumerate() {
        let text = fs::read_to_string(dump).unwrap();
        let written = Instant::now();
        write_by_rename(&watched, &text, *epoch);
        if kills.contains(&index) {
            // Anywhere from "not yet seen" through "spooled, not yet
            // checkpointed" to "checkpointed, sink still draining".
            std::thread::sleep(Duration::from_millis(
                rng.u64(0..kill_window.as_millis().max(1) as u64),
            ));
            daemon.crash();
            if checkpoint_taken_at(&state, "lab") != Some(*epoch) {
                *killed_before_checkpoint += 1;
            }
            daemon = Daemon::start(&config, &stderr);
        }
        let epoch = *epoch;
        wait_until(
            Duration::from_secs(20),
            &format!("dump {epoch} checkpointed"),
            &daemon,
            || checkpoint_taken_at(&state, "lab") == Some(epoch),
        );
        took.push(written.elapsed());
    }
    if kill_window.is_zero() {
        took.sort();
        *kill_window = took[took.len() / 2] * 3 / 2;
    }
    // SIGTERM before the daemon set up its handlers would kill it outright.
    wait_until(Duration::from_secs(20), "the last start", &daemon, || {
        daemon.own_log().contains("swantrail started")
    });
    let status = daemon.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
    event_lines(&root.join("out"))
}

/// Run `series` uninterrupted and again with `kill_count` SIGKILLs at
/// random moments, and check that the crashed run lost no event of the
/// uninterrupted one and that every id it gave names the same event.
/// A kill lands within `kill_window` after a dump is written; zero means
/// half again the median time the uninterrupted run took for one.
/// Returns the uninterrupted run's actions.
fn assert_crash_safe(
    series: &[(i64, PathBuf)],
    kill_count: usize,
    mut kill_window: Duration,
) -> BTreeSet<String> {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = run_series(
        reference_dir.path(),
        series,
        &BTreeSet::new(),
        0,
        &mut kill_window,
        &mut 0,
    );
    assert!(
        reference.len() >= 5,
        "the series gives too few events: {reference:?}"
    );
    let mut by_id: BTreeMap<String, &String> = BTreeMap::new();
    for line in &reference {
        let previous = by_id.insert(event_id(line), line);
        assert!(previous.is_none(), "an uninterrupted run repeated {line}");
    }
    let actions: BTreeSet<String> = reference.iter().map(|l| action(l)).collect();

    // SWANTRAIL_TEST_SEED replays (or varies) the kill moments.
    let seed = std::env::var("SWANTRAIL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0004);
    eprintln!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kills = BTreeSet::new();
    while kills.len() < kill_count.min(series.len()) {
        kills.insert(rng.usize(0..series.len()));
    }
    let crashed_dir = tempfile::tempdir().unwrap();
    let mut early_kills = 0;
    let crashed = run_series(
        crashed_dir.path(),
        series,
        &kills,
        seed,
        &mut kill_window,
        &mut early_kills,
    );

    let crashed_ids: BTreeSet<String> = crashed.iter().map(|l| event_id(l)).collect();
    let missing: Vec<&&String> = by_id
        .iter()
        .filter(|(id, _)| !crashed_ids.contains(*id))
        .map(|(_, line)| line)
        .collect();
    assert!(
        missing.is_empty(),
        "{} events lost across crashes, the first: {:#?}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>()
    );
    for line in &crashed {
        let id = event_id(line);
        let Some(original) = by_id.get(&id) else {
            panic!("an event the uninterrupted run never produced: {line}");
        };
        assert_eq!(
            parse_event(line),
            parse_event(original),
            "a repeated event.id carries a different event"
        );
    }
    eprintln!(
        "{} events, {} lines after {} crashes within {kill_window:?} of a dump ({early_kills} before it was checkpointed, {} duplicates)",
        reference.len(),
        crashed.len(),
        kills.len(),
        crashed.len() - reference.len()
    );
    actions
}

#[test]
fn sigkill_at_twenty_random_moments_loses_no_event_and_repeats_only_identical_ids() {
    let actions = assert_crash_safe(&lab_series(), 20, Duration::from_millis(100));
    assert!(actions.contains("tunnel-up"), "{actions:?}");
}

/// The same on a 10,000-tunnel gateway churning 1 % per poll (rekeys,
/// additions, deletions, half-open negotiations): the checkpoint is a
/// journal of what each poll changed, folded into a whole file now and
/// then, and a kill may land in either.
#[test]
fn sigkill_on_a_ten_thousand_tunnel_churning_gateway_loses_no_event_and_repeats_only_identical_ids()
{
    use swantrail::synth::{Churn, Dialect, Output, STEP_SECONDS, Series};
    let dir = tempfile::tempdir().unwrap();
    let mut series = Series::new(10_000, Churn::even(0.01));
    let mut dumps = Vec::new();
    for step in 0..6 {
        let path = dir.path().join(format!("status-{step}.txt"));
        fs::write(
            &path,
            series.gateway().dump(Dialect::V5_4, Output::Status).text,
        )
        .unwrap();
        dumps.push((1_800_000_000 + step * STEP_SECONDS as i64, path));
        series.advance();
    }
    let actions = assert_crash_safe(&dumps, 4, Duration::ZERO);
    for action in [
        "child-sa-rekeyed",
        "tunnel-down",
        "tunnel-up",
        "negotiation-started",
    ] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
}

/// The watched-file scenario, by inotify or by polling.
fn renamed_and_rewritten_dumps_are_read_once_and_a_truncated_one_never(force_poll: bool) {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let config = file_to_file_config(root, "300ms", "100ms", force_poll);
    let state = root.join("state");
    let watched = root.join("watch/status.txt");
    let stderr = root.join("stderr.log");
    let daemon = Daemon::start(&config, &stderr);
    let state = state.as_path();
    let checkpointed = |epoch: i64| move || checkpoint_taken_at(state, "lab") == Some(epoch);
    let limit = Duration::from_secs(15);

    let (a, b, d) = (1795857662, 1795857667, 1795857672);
    let truncated_at = 1795857670;
    write_by_rename(&watched, &fixture(a), a);
    wait_until(limit, "the renamed dump", &daemon, checkpointed(a));
    write_in_place(&watched, &fixture(b), b);
    wait_until(
        limit,
        "the dump rewritten in place",
        &daemon,
        checkpointed(b),
    );

    // A writer that died in the middle of the state list: the rest of the
    // tunnels are missing, which must not read as "they went down".
    let whole = fixture(d);
    let cut = whole
        .find("\"v2-short\":500 STATE_V2_ESTABLISHED_CHILD_SA")
        .unwrap()
        + 20;
    write_in_place(&watched, &whole[..cut], truncated_at);
    wait_until(limit, "the truncated dump to be skipped", &daemon, || {
        daemon.log().contains("skipping incomplete dump")
    });
    write_by_rename(&watched, &whole, d);
    wait_until(limit, "the last dump", &daemon, checkpointed(d));

    let log = daemon.log();
    assert!(daemon.terminate().success());
    let skipped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("skipping incomplete dump"))
        .collect();
    assert_eq!(skipped.len(), 1, "{log}");
    assert!(
        skipped[0].contains("status.txt"),
        "the log line names the file: {}",
        skipped[0]
    );
    for epoch in [a, b, d] {
        let diffed = log
            .lines()
            .filter(|l| l.contains("snapshot diffed") && l.contains(&format!("taken_at={epoch}")))
            .count();
        assert_eq!(diffed, 1, "dump {epoch} diffed {diffed} times; log:\n{log}");
    }
    assert!(!log.contains(&format!("taken_at={truncated_at}")), "{log}");

    let events = event_lines(&root.join("out"));
    let actions: Vec<String> = events.iter().map(|l| action(l)).collect();
    assert!(actions.iter().any(|a| a == "tunnel-up"), "{actions:?}");
    assert!(!actions.iter().any(|a| a == "tunnel-down"), "{events:#?}");
}

#[test]
fn watched_file_renamed_and_rewritten_dumps_are_read_once_and_a_truncated_one_never() {
    renamed_and_rewritten_dumps_are_read_once_and_a_truncated_one_never(false);
}

#[test]
fn polled_file_renamed_and_rewritten_dumps_are_read_once_and_a_truncated_one_never() {
    renamed_and_rewritten_dumps_are_read_once_and_a_truncated_one_never(true);
}

/// A fake `ipsec whack` that says pluto is not running for its first
/// `failures` calls (and while a file `down` exists next to it), otherwise
/// prints a real captured dump; it counts its calls.
fn flaky_whack(dir: &Path, failures: u32) -> PathBuf {
    fs::write(dir.join("status.txt"), fixture(1795857662)).unwrap();
    let script = dir.join("whack");
    let dir = dir.to_str().unwrap();
    fs::write(
        &script,
        format!(
            r#"#!/bin/sh
n=$(cat "{dir}/calls" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "{dir}/calls"
if [ "$n" -le {failures} ] || [ -e "{dir}/down" ]; then
    echo 'whack: Pluto is not running (no "/run/pluto/pluto.ctl")' >&2
    exit 1
fi
cat "{dir}/status.txt"
"#
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn pluto_config(root: &Path, argv: &[&str]) -> PathBuf {
    DaemonConfig::new(root)
        .command_source("pluto", argv)
        .with("interval", "100ms")
        .with("jitter", "0s")
        .with("timeout", "5s")
        .file_sink("", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
        .write()
}

#[test]
fn pluto_failing_then_answering_gives_one_unreachable_and_one_reachable() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = flaky_whack(root, 4);
    let config = pluto_config(root, &[script.to_str().unwrap()]);
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(Duration::from_secs(20), "ten polls", &daemon, || {
        calls(root) >= 10
    });
    let log = daemon.log();
    assert!(daemon.terminate().success());

    let events = event_lines(&root.join("out"));
    let actions: Vec<String> = events.iter().map(|l| action(l)).collect();
    let position = |wanted: &str| actions.iter().position(|a| a == wanted);
    let count = |wanted: &str| actions.iter().filter(|a| *a == wanted).count();
    assert_eq!(count("pluto-unreachable"), 1, "{actions:?}");
    assert_eq!(count("pluto-reachable"), 1, "{actions:?}");
    assert!(
        position("pluto-unreachable") < position("pluto-reachable"),
        "{actions:?}"
    );
    // The log, too, says it once per outage, not once per poll.
    let warnings = log
        .lines()
        .filter(|l| l.contains("pluto unreachable"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(log.contains("Pluto is not running"), "{log}");
}

#[test]
fn systemd_hears_ready_status_and_watchdog_pings_then_stopping() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = flaky_whack(root, 0);
    let config = pluto_config(root, &[script.to_str().unwrap()]);
    let socket_path = root.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let daemon = Daemon::start_with(
        &config,
        &root.join("stderr.log"),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        &[],
    );
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..n]).to_string());
        }
    }
    let status = daemon.terminate();
    while let Ok(n) = socket.recv(&mut buffer) {
        messages.push(String::from_utf8_lossy(&buffer[..n]).to_string());
    }
    assert!(status.success());
    let has = |prefix: &str| {
        messages
            .iter()
            .filter(|m| m.lines().any(|l| l.starts_with(prefix)))
            .count()
    };
    assert_eq!(has("READY=1"), 1, "{messages:#?}");
    assert!(has("WATCHDOG=1") >= 3, "{messages:#?}");
    assert!(has("STOPPING=1") >= 1, "{messages:#?}");
    let status_lines: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("STATUS="))
        .collect();
    assert!(
        status_lines.iter().any(|m| m.contains("3 tunnels up")),
        "{status_lines:#?}"
    );
}

#[test]
fn an_unusable_state_directory_is_one_clear_line_naming_the_way_out() {
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("not-a-directory");
    fs::write(&blocker, "").unwrap();
    let output = Command::new(BIN)
        .args(["run", "--state-dir"])
        .arg(blocker.join("state"))
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("state directory"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("--state-dir"), "{line}");
    assert!(line.contains("not-a-directory"), "{line}");
}

#[test]
fn sighup_makes_the_file_sink_start_a_new_file_after_logrotate_moved_it() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = flaky_whack(root, 0);
    let config = pluto_config(root, &[script.to_str().unwrap()]);
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let current = root.join("out/events.ndjson");
    wait_until(Duration::from_secs(15), "the inventory", &daemon, || {
        fs::read_to_string(&current).is_ok_and(|t| t.contains("tunnel-up"))
    });
    let rotated = root.join("rotated.ndjson");
    fs::rename(&current, &rotated).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(15), "the reopen", &daemon, || {
        daemon.log().contains("reopened")
    });
    fs::write(root.join("down"), "").unwrap();
    wait_until(Duration::from_secs(15), "the outage event", &daemon, || {
        fs::read_to_string(&current).is_ok_and(|t| t.contains("pluto-unreachable"))
    });
    assert!(daemon.terminate().success());

    let before = fs::read_to_string(&rotated).unwrap();
    let after = fs::read_to_string(&current).unwrap();
    assert!(
        before.lines().all(|l| action(l) != "pluto-unreachable"),
        "{before}"
    );
    assert!(after.lines().all(|l| action(l) != "tunnel-up"), "{after}");
    assert_eq!(
        after
            .lines()
            .filter(|l| action(l) == "pluto-unreachable")
            .count(),
        1
    );
}

#[test]
fn log_lines_are_json_when_asked_and_carry_no_timestamp_under_journald() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = flaky_whack(root, 1);
    let config = pluto_config(root, &[script.to_str().unwrap()]);
    for (journald, stderr) in [(false, "plain.log"), (true, "journal.log")] {
        let env: &[(&str, &str)] = if journald {
            &[("JOURNAL_STREAM", "8:12345")]
        } else {
            &[]
        };
        let stderr = root.join(stderr);
        let daemon = Daemon::start_with(&config, &stderr, env, &["--log-format", "json"]);
        wait_until(Duration::from_secs(15), "a few log lines", &daemon, || {
            daemon.log().contains("ready")
        });
        assert!(daemon.terminate().success());
        let log = fs::read_to_string(&stderr).unwrap();
        let records: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert!(records.len() >= 3, "{log}");
        for record in &records {
            assert!(record["level"].is_string(), "{record}");
            assert_eq!(record.get("timestamp").is_some(), !journald, "{record}");
        }
    }
}

#[test]
fn a_second_daemon_on_the_same_state_directory_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = flaky_whack(root, 0);
    let config = pluto_config(root, &[script.to_str().unwrap()]);
    let first = Daemon::start(&config, &root.join("first.log"));
    wait_until(Duration::from_secs(15), "the first daemon", &first, || {
        first.log().contains("ready")
    });
    let second = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("already runs with the state directory"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    assert!(first.terminate().success());
}

/// A fake `ipsec` that prints whatever `answer.txt` next to it holds, as
/// `ipsec whack --trafficstatus` would; it counts its calls.
fn scripted_ipsec(dir: &Path) -> PathBuf {
    let script = dir.join("ipsec");
    let d = dir.to_str().unwrap();
    fs::write(
        &script,
        format!("#!/bin/sh\nn=$(cat \"{d}/calls\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"{d}/calls\"\ncat \"{d}/answer.txt\"\n"),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Replaces `answer.txt` in one step (write aside, rename): a poll that
/// reads it half-written would see an empty trafficstatus, "no tunnels".
fn set_answer(dir: &Path, answer: impl AsRef<[u8]>) {
    let aside = dir.join("answer.txt.new");
    fs::write(&aside, answer).unwrap();
    fs::rename(&aside, dir.join("answer.txt")).unwrap();
}

#[test]
fn trafficstatus_polling_sees_the_last_tunnel_go_and_skips_what_is_not_status() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = scripted_ipsec(root);
    // Real 4.10 trafficstatus (the lab's 04-rekeyed phase), one tunnel.
    let one_tunnel = "006 #21: \"v2-tun\", type=ESP, add_time=1795857783, inBytes=21120, outBytes=21120, maxBytes=2^63B, id='@east-v2'\n";
    set_answer(root, one_tunnel);
    let config = pluto_config(
        root,
        &[script.to_str().unwrap(), "whack", "--trafficstatus"],
    );
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let polls_from = |n: u32| move || calls(root) >= n;
    wait_until(
        Duration::from_secs(20),
        "three polls",
        &daemon,
        polls_from(3),
    );

    // Garbage and binary output are skipped with one line each, not read
    // as "no tunnels".
    set_answer(root, "bash: ipsec: command not found\n");
    let n = calls(root);
    wait_until(
        Duration::from_secs(20),
        "polls of garbage",
        &daemon,
        polls_from(n + 3),
    );
    set_answer(root, b"\x00\x01\x02binary\xff\xfe\n");
    let n = calls(root);
    wait_until(
        Duration::from_secs(20),
        "polls of binary",
        &daemon,
        polls_from(n + 3),
    );
    assert!(
        !event_lines(&root.join("out"))
            .iter()
            .any(|l| action(l) == "tunnel-down"),
        "garbage taken for an empty trafficstatus"
    );

    // pluto prints nothing at all when no Child SA is left.
    set_answer(root, "");
    wait_until(Duration::from_secs(20), "the tunnel-down", &daemon, || {
        event_lines(&root.join("out"))
            .iter()
            .any(|l| action(l) == "tunnel-down")
    });
    let log = daemon.log();
    assert!(daemon.terminate().success());
    assert!(
        log.contains("nothing in it is libreswan status output"),
        "{log}"
    );
    assert!(log.contains("binary data"), "{log}");
    let actions: Vec<String> = event_lines(&root.join("out"))
        .iter()
        .map(|l| action(l))
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "tunnel-up").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "tunnel-down").count(),
        1,
        "{actions:?}"
    );
}
