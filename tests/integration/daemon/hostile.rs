//! The daemon against a hostile operator (issue "Nothing false, nothing
//! lost"): empty answers, deleted sink files, full disks, crashes in the
//! middle of large writes, clocks going backwards. Each test runs the real
//! binary with a command source or a watched file and a file sink, and
//! asserts on the events it wrote and the lines it logged.

use crate::support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use support::daemon::*;

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
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
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
    let config = file_config(root)
        .source_with("settle", "30ms")
        .source_with("poll_interval", "100ms")
        .write();
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

#[test]
fn removing_the_sink_directory_loses_no_event_the_directory_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let whack = answering_whack(root);
    let series = lab_series();
    fs::write(root.join("answer.txt"), fixture(series[0].0)).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let out = root.join("out");
    wait_until(LIMIT, "the inventory", &daemon, || {
        actions_of(&out).iter().any(|a| a == "tunnel-up")
    });
    fs::remove_dir_all(&out).unwrap();
    // pluto stops answering: one `pluto-unreachable` event must reach a file.
    fs::write(
        &whack,
        "#!/bin/sh\necho 'whack: Pluto is not running (no \"/run/pluto/pluto.ctl\")' >&2\nexit 1\n",
    )
    .unwrap();
    wait_until(LIMIT, "the event in a recreated file", &daemon, || {
        actions_of(&out).iter().any(|a| a == "pluto-unreachable")
    });
    assert!(daemon.terminate().success());
    let actions = actions_of(&out);
    assert_eq!(actions, vec!["pluto-unreachable".to_string()]);
}

#[test]
fn a_snapshot_older_than_the_last_never_gives_a_negative_duration() {
    use swantrail::snapshot::OutputKind;
    use swantrail::track::{Tracker, TrackerConfig};
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let mut first = swantrail::parse(&fixture(A));
    first.taken_at = Some(A);
    let up = tracker.observe(&first);
    assert!(up.iter().any(|e| e.action() == "tunnel-up"));
    // An NTP step of an hour back, and every Child SA gone.
    let mut gone = swantrail::status::parse_as("", OutputKind::TrafficStatus);
    gone.taken_at = Some(A - 3600);
    let down = tracker.observe(&gone);
    let downs: Vec<serde_json::Value> = down
        .iter()
        .filter(|e| e.action() == "tunnel-down")
        .map(|e| serde_json::from_str(&e.to_json_line()).unwrap())
        .collect();
    assert!(!downs.is_empty());
    for event in &downs {
        let duration = field(event, "libreswan.tunnel.duration_s").and_then(|v| v.as_i64());
        assert_eq!(duration, Some(0), "{event}");
    }
    assert_eq!(tracker.clock(), Some(A));
    support::assert_schema_valid(&down);
}

#[test]
fn sigterm_during_a_poll_kills_the_wrapper_scripts_grandchild() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let d = root.to_str().unwrap();
    let wrapper = script(
        &root.join("ipsec"),
        &format!("sleep 300 &\necho $! > \"{d}/grandchild.pid\"\nwait\n"),
    );
    let config = command_config(root, &[wrapper.to_str().unwrap(), "--status"]).write();
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("timeout = \"10s\"", "timeout = \"600s\"");
    fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let pid_file = root.join("grandchild.pid");
    wait_until(LIMIT, "the poll's grandchild", &daemon, || {
        fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n'))
    });
    wait_until(LIMIT, "the start", &daemon, || {
        daemon.log().contains("swantrail started")
    });
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(daemon.terminate().success());
    let alive = || {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z ") && s.contains("sleep"))
    };
    let deadline = std::time::Instant::now() + LIMIT;
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("the grandchild {pid} outlived the daemon");
    }
}

#[test]
fn binary_output_is_warned_about_once_per_outage_not_once_per_poll() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let d = root.to_str().unwrap();
    // Binary with the NUL at a different offset on every call.
    let whack = script(
        &root.join("whack"),
        &format!(
            "n=$(cat \"{d}/calls\" 2>/dev/null || echo 0)\nhead -c $((n + 1)) /dev/zero | tr '\\0' a\nprintf '\\000\\001binary\\n'\necho $((n + 1)) > \"{d}/calls\"\n"
        ),
    );
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "eight polls", &daemon, || calls(root) >= 8);
    let log = daemon.log();
    assert!(daemon.terminate().success());
    assert_eq!(count_lines(&log, "binary data"), 1, "{log}");
}

#[test]
fn state_directory_files_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let whack = answering_whack(root);
    fs::write(root.join("answer.txt"), fixture(A)).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let state = root.join("state");
    let acked = state.join("spool/file/acked");
    wait_until(
        LIMIT,
        "the checkpoint and an acknowledgement",
        &daemon,
        || state.join("checkpoint/pluto.json").exists() && acked.exists(),
    );
    assert!(daemon.terminate().success());
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for dir in [state.clone(), state.join("checkpoint")] {
        assert_eq!(mode(&dir), 0o750, "{}", dir.display());
    }
    for file in [
        state.join("checkpoint/pluto.json"),
        state.join("lock"),
        acked,
    ] {
        assert_eq!(mode(&file), 0o640, "{}", file.display());
    }
}

fn warnings(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count()
}

/// Feed `dumps` by rename. With `full` (the first dump written while the
/// state disk is full, and how many), the disk is filled before that dump,
/// those dumps come every 3 s, and space returns 30 s after it filled,
/// before the rest. Returns the event lines and the log.
fn run_with_full_disk(
    root: &std::path::Path,
    dumps: &[(i64, std::path::PathBuf)],
    full: Option<(usize, usize)>,
) -> (Vec<String>, String) {
    let config = file_config(root)
        .source_with("settle", "30ms")
        .source_with("poll_interval", "1s")
        .write();
    let watched = root.join("watch/status.txt");
    let state = root.join("state");
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let mut filler = None;
    let mut full_since = std::time::Instant::now();
    for (index, (epoch, dump)) in dumps.iter().enumerate() {
        let epoch = *epoch;
        let during = full.is_some_and(|(from, n)| index >= from && index < from + n);
        if full.is_some_and(|(from, _)| index == from) {
            filler = Some(fill(&state));
            full_since = std::time::Instant::now();
        }
        if full.is_some_and(|(from, n)| index == from + n) {
            let held = Duration::from_secs(30).saturating_sub(full_since.elapsed());
            std::thread::sleep(held);
            if let Some(f) = filler.take() {
                fs::remove_file(f).unwrap();
            }
        }
        write_by_rename(&watched, &fs::read_to_string(dump).unwrap(), epoch);
        if during {
            std::thread::sleep(Duration::from_secs(3));
        } else {
            wait_until(
                LIMIT * 2,
                &format!("dump {epoch} checkpointed"),
                &daemon,
                || checkpoint_taken_at(&state, "lab") == Some(epoch),
            );
        }
    }
    let log = daemon.own_log();
    assert!(daemon.terminate().success());
    (event_lines(&root.join("out")), log)
}

#[test]
fn a_full_state_disk_for_30s_loses_falsifies_and_floods_nothing() {
    let root = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&root.path().join("full/state"), "2m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root, or no mount(8))");
        return;
    };
    let dumps: Vec<_> = lab_series().into_iter().take(16).collect();
    let reference_root = tempfile::tempdir().unwrap();
    let (reference, reference_log) = run_with_full_disk(reference_root.path(), &dumps, None);
    let (events, log) = run_with_full_disk(&root.path().join("full"), &dumps, Some((4, 8)));
    drop(tmpfs);

    let mut by_id = std::collections::BTreeMap::new();
    for line in &reference {
        assert!(by_id.insert(event_id(line), line).is_none(), "{line}");
    }
    let ids: std::collections::BTreeSet<String> = events.iter().map(|l| event_id(l)).collect();
    let missing: Vec<_> = by_id.keys().filter(|id| !ids.contains(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}\nlog:\n{log}");
    for line in &events {
        let original = by_id
            .get(&event_id(line))
            .unwrap_or_else(|| panic!("an event the uninterrupted run never gave: {line}"));
        assert_eq!(parse_event(line), parse_event(original));
    }
    let duplicates = events.len() - reference.len();
    let extra_warnings = warnings(&log).saturating_sub(warnings(&reference_log));
    eprintln!(
        "{} events, {duplicates} duplicates, {extra_warnings} warning/error lines",
        reference.len()
    );
    assert!(duplicates <= reference.len() / 2, "{duplicates} duplicates");
    assert!(extra_warnings <= 5, "{log}");
}

/// The daemon's peak resident memory in KiB (`VmHWM`).
fn peak_kib(daemon: &Daemon) -> u64 {
    let status = fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn sixty_dumps_renamed_in_faster_than_settle_are_each_diffed_or_counted() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let config = file_config(root)
        .source_with("settle", "500ms")
        .source_with("poll_interval", "2s")
        .write();
    let watched = root.join("watch/status.txt");
    let state = root.join("state");
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "the start", &daemon, || {
        daemon.log().contains("swantrail started")
    });
    let series = lab_series();
    for (epoch, dump) in &series {
        write_by_rename(&watched, &fs::read_to_string(dump).unwrap(), *epoch);
        std::thread::sleep(Duration::from_millis(300));
    }
    let last = series.last().unwrap().0;
    wait_until(LIMIT, "the last dump", &daemon, || {
        checkpoint_taken_at(&state, "lab") == Some(last)
    });
    let log = daemon.log();
    assert!(daemon.terminate().success());
    let diffed = series
        .iter()
        .filter(|(epoch, _)| {
            log.lines()
                .any(|l| l.contains("snapshot diffed") && l.contains(&format!("taken_at={epoch}")))
        })
        .count();
    let skipped: usize = log
        .lines()
        .filter_map(|l| l.split(" skipped=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    eprintln!(
        "{diffed} of {} dumps diffed, {skipped} counted as skipped",
        series.len()
    );
    assert_eq!(diffed + skipped, series.len(), "{log}");
}

#[test]
fn an_unreadable_dump_and_a_stale_one_are_each_warned_about_once() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let config = file_config(root)
        .source_with("settle", "30ms")
        .source_with("poll_interval", "100ms")
        .source_with("stale_after_intervals", 3)
        .write();
    let watched = root.join("watch/status.txt");
    let state = root.join("state");
    fs::create_dir(&watched).unwrap();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "the warning about the directory", &daemon, || {
        daemon.log().contains("cannot read the dump")
    });
    fs::remove_dir(&watched).unwrap();
    let series = lab_series();
    for (epoch, dump) in series.iter().take(5) {
        write_by_rename(&watched, &fs::read_to_string(dump).unwrap(), *epoch);
        let epoch = *epoch;
        wait_until(LIMIT, "the dump", &daemon, || {
            checkpoint_taken_at(&state, "lab") == Some(epoch)
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_until(LIMIT, "the stale warning", &daemon, || {
        daemon.log().contains("has not changed for")
    });
    let log = daemon.log();
    assert!(daemon.terminate().success());
    assert_eq!(count_lines(&log, "cannot read the dump"), 1, "{log}");
    assert_eq!(count_lines(&log, "readable again"), 1, "{log}");
    assert_eq!(count_lines(&log, "has not changed for"), 1, "{log}");
}

#[test]
fn junk_past_max_bytes_is_not_read_into_memory() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // A watched (sparse) file of junk just past the default limit.
    let config = file_config(root)
        .source_with("settle", "30ms")
        .source_with("poll_interval", "100ms")
        .write();
    let watched = root.join("watch/status.txt");
    let file = fs::File::create(&watched).unwrap();
    file.set_len(swantrail::input::DEFAULT_MAX_BYTES + 1)
        .unwrap();
    drop(file);
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "the warning", &daemon, || {
        daemon.log().contains("larger than max_bytes")
    });
    let file_peak = peak_kib(&daemon);
    assert!(daemon.terminate().success());

    // 100 MB on a command's stdout, with a limit of 1 MiB.
    let junk = script(
        &root.join("junk"),
        "head -c 100000000 /dev/zero | tr '\\0' x\n",
    );
    let config = command_config(root, &[junk.to_str().unwrap(), "--status"])
        .source_with("max_bytes", "1MiB")
        .write();
    let daemon = Daemon::start(&config, &root.join("command.log"));
    wait_until(LIMIT, "the warning", &daemon, || {
        daemon.log().contains("printed more than max_bytes")
    });
    let command_peak = peak_kib(&daemon);
    let log = daemon.log();
    assert!(daemon.terminate().success());
    eprintln!("peak memory: {file_peak} KiB (1 GiB file), {command_peak} KiB (100 MB stdout)");
    assert!(file_peak < 64 * 1024, "{file_peak} KiB");
    assert!(command_peak < 64 * 1024, "{command_peak} KiB");
    assert_eq!(count_lines(&log, "printed more than max_bytes"), 1, "{log}");
}

/// `yes` as pluto's answer (issue 23: 3.1 GB within 12 s, a diagnostic of
/// about a hundred bytes kept per line). Stopped at `max_bytes`, with one
/// warning, never diffed, and the daemon's memory does not grow with it.
#[test]
fn endless_junk_from_a_command_is_stopped_at_max_bytes_in_constant_memory() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let d = root.to_str().unwrap();
    let whack = script(
        &root.join("whack"),
        &format!(
            "n=$(cat \"{d}/calls\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"{d}/calls\"\n\
             if [ -f \"{d}/junk\" ]; then exec yes 'junk junk junk'; fi\ncat \"{d}/answer.txt\"\n"
        ),
    );
    fs::write(root.join("answer.txt"), fixture(A)).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"])
        .source_with("max_bytes", "16MiB")
        .write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let out = root.join("out");
    wait_until(LIMIT, "the inventory", &daemon, || {
        actions_of(&out).iter().any(|a| a == "tunnel-up")
    });
    let n = calls(root);
    wait_until(LIMIT, "three more polls", &daemon, || calls(root) >= n + 3);
    let before = event_lines(&out).len();
    let base_kib = peak_kib(&daemon);

    // 16 MiB of junk per poll: a million lines, a diagnostic each before.
    fs::write(root.join("junk"), "").unwrap();
    let n = calls(root);
    // The third junk poll has begun: two were read to the limit and killed.
    wait_until(LIMIT, "two junk polls", &daemon, || calls(root) >= n + 3);
    let junk_kib = peak_kib(&daemon);
    fs::remove_file(root.join("junk")).unwrap();
    let n = calls(root);
    wait_until(LIMIT, "five full polls", &daemon, || calls(root) >= n + 5);
    let log = daemon.log();
    assert!(daemon.terminate().success());
    eprintln!("peak RSS {base_kib} KiB before the junk, {junk_kib} KiB after it");
    // Nothing diffed from the junk: an empty or cut dump taken as pluto's
    // answer would have ended every tunnel, and the real one brought them back.
    assert_eq!(event_lines(&out).len(), before, "{:#?}", event_lines(&out));
    assert_eq!(
        count_lines(
            &log,
            "skipping incomplete output: `{whack} --status` printed more than max_bytes = 16777216 bytes; it was stopped and its output skipped"
                .replace("{whack}", whack.to_str().unwrap())
                .as_str()
        ),
        1,
        "{log}"
    );
    // What reading junk costs is constant: a 256 KiB read buffer, one line
    // of at most 64 KiB, 20 diagnostics, 64 KiB of stderr. 16 MiB leaves
    // room for the allocator and the debug build; a diagnostic per line
    // was about 150 MB here.
    assert!(
        junk_kib < base_kib + 16 * 1024,
        "peak RSS {junk_kib} KiB after the junk, {base_kib} KiB before"
    );
    assert!(junk_kib < 64 * 1024, "peak RSS {junk_kib} KiB");
}

/// A deterministic series with thousands of events per step: a synthetic
/// gateway of 1,000 tunnels alternating with the lab's three, so that every
/// step is one large batch (MBs) for the file sink.
fn large_series() -> Vec<(i64, String)> {
    use swantrail::synth::{Dialect, status_dump};
    let big = status_dump(1_000, Dialect::V4_10).text;
    (0..6)
        .map(|i| {
            let epoch = A + 5 * i;
            let text = if i % 2 == 0 { big.clone() } else { fixture(A) };
            (epoch, text)
        })
        .collect()
}

/// The crash harness of daemon/run.rs with large batches: feed `series`
/// by rename, SIGKILL at a random moment after the dumps in `kills`, and
/// `rm -rf` the sink's directory after the dumps in `removals` (its files
/// are moved aside first and collected once the sink has moved on to a new
/// directory). Returns every event line written, and the log.
fn crash_harness(
    root: &std::path::Path,
    series: &[(i64, String)],
    kills: &std::collections::BTreeSet<usize>,
    removals: &std::collections::BTreeSet<usize>,
    seed: u64,
) -> (Vec<String>, String) {
    let config = file_config(root)
        .source_with("settle", "30ms")
        .source_with("poll_interval", "1s")
        .write();
    let text = fs::read_to_string(&config).unwrap().replace(
        "batch_max_wait = \"20ms\"",
        "batch_max_wait = \"20ms\"\nbatch_max_events = 20000\nbatch_max_bytes = \"64MiB\"",
    );
    fs::write(&config, text).unwrap();
    let state = root.join("state");
    let out = root.join("out");
    let collected = root.join("collected");
    fs::create_dir_all(&collected).unwrap();
    let watched = root.join("watch/status.txt");
    let stderr = root.join("stderr.log");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut daemon = Daemon::start(&config, &stderr);
    let mut moved_aside: Option<std::path::PathBuf> = None;
    for (index, (epoch, dump)) in series.iter().enumerate() {
        let sink_file = out.join("events.ndjson");
        let size = || fs::metadata(&sink_file).map_or(0, |m| m.len());
        let before = size();
        write_by_rename(&watched, dump, *epoch);
        if kills.contains(&index) {
            if rng.bool() {
                // As soon as the sink starts writing this step's batch.
                let deadline = std::time::Instant::now() + LIMIT;
                while size() == before && std::time::Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
            }
            daemon.crash();
            daemon = Daemon::start(&config, &stderr);
        }
        let epoch = *epoch;
        wait_until(
            LIMIT * 2,
            &format!("dump {epoch} checkpointed"),
            &daemon,
            || checkpoint_taken_at(&state, "lab") == Some(epoch),
        );
        if let Some(gone) = moved_aside.take() {
            // The sink wrote this step's events to a new directory: nothing
            // more goes to the removed one.
            wait_until(LIMIT * 2, "the sink directory recreated", &daemon, || {
                out.join("events.ndjson").exists()
            });
            for line in event_lines(&gone) {
                let mut file = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(collected.join(format!("{index}.ndjson")))
                    .unwrap();
                std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes()).unwrap();
            }
            fs::remove_dir_all(&gone).unwrap();
        }
        if removals.contains(&index) {
            let gone = root.join(format!("out.removed-{index}"));
            std::thread::sleep(Duration::from_millis(rng.u64(0..200)));
            fs::rename(&out, &gone).unwrap();
            moved_aside = Some(gone);
        }
    }
    wait_until(LIMIT, "the last start", &daemon, || {
        daemon.own_log().contains("swantrail started")
    });
    let log = daemon.log();
    assert!(daemon.terminate().success());
    let mut lines = event_lines(&collected);
    lines.extend(event_lines(&out));
    (lines, log)
}

#[test]
fn crashes_in_large_batches_and_a_removed_sink_directory_lose_nothing_and_tear_no_line() {
    let series = large_series();
    let reference_root = tempfile::tempdir().unwrap();
    let none = std::collections::BTreeSet::new();
    let (reference, _) = crash_harness(reference_root.path(), &series, &none, &none, 0);
    let mut by_id = std::collections::BTreeMap::new();
    for line in &reference {
        assert!(
            by_id.insert(event_id(line), line).is_none(),
            "repeated: {line}"
        );
    }
    assert!(reference.len() > 3_000, "{} events", reference.len());

    let seed = std::env::var("SWANTRAIL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0007);
    eprintln!("seed {seed}");
    let kills: std::collections::BTreeSet<usize> = [0, 2, 3, 5].into();
    let removals: std::collections::BTreeSet<usize> = [1, 4].into();
    let crashed_root = tempfile::tempdir().unwrap();
    let (crashed, log) = crash_harness(crashed_root.path(), &series, &kills, &removals, seed);
    // event_lines and event_id fail on a line that is not JSON (a torn write).
    let ids: std::collections::BTreeSet<String> = crashed.iter().map(|l| event_id(l)).collect();
    let missing = by_id.keys().filter(|id| !ids.contains(*id)).count();
    assert_eq!(missing, 0, "{missing} events lost");
    for line in &crashed {
        let original = by_id
            .get(&event_id(line))
            .unwrap_or_else(|| panic!("never in the uninterrupted run: {line}"));
        assert_eq!(parse_event(line), parse_event(original));
    }
    eprintln!(
        "{} events, {} lines after {} crashes and {} removals ({} torn tails cut)",
        reference.len(),
        crashed.len(),
        kills.len(),
        removals.len(),
        count_lines(&log, "cut a torn last line")
    );
}

#[test]
fn a_missing_dump_names_the_os_error_once() {
    let output = Command::new(BIN)
        .args([
            "diff",
            "/nonexistent/status-1.txt",
            "/nonexistent/status-2.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

#[test]
fn stopping_with_a_sink_down_says_how_many_events_stay_in_the_spool() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let whack = answering_whack(root);
    fs::write(root.join("answer.txt"), fixture(A)).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
    // A directory where the sink's file should be: every write fails.
    fs::create_dir_all(root.join("out/events.ndjson")).unwrap();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "the failing delivery", &daemon, || {
        daemon.log().contains("delivery failed")
    });
    let failed = daemon.log();
    assert!(daemon.terminate().success());
    let log = fs::read_to_string(root.join("stderr.log")).unwrap();
    let failing = failed
        .lines()
        .find(|l| l.contains("delivery failed"))
        .unwrap();
    let waiting: u64 = failing
        .split("; ")
        .find_map(|part| part.split_once(" events wait in the spool").map(|(n, _)| n))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{failing}"));
    assert!(waiting > 1, "{failing}");
    let stopped = log.lines().find(|l| l.contains("stopped;")).unwrap();
    assert!(
        stopped.contains(&format!("{waiting} events stay in the spools")),
        "{stopped}"
    );
}

#[test]
fn stalled_after_and_traffic_interval_take_the_configs_units() {
    let old = format!("{SERIES}/status-{A}.txt");
    let new = format!("{SERIES}/status-{}.txt", A + 5);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("diff")
            .arg(&old)
            .arg(&new)
            .args(args)
            .output()
            .unwrap()
    };
    let minutes = run(&["--stalled-after", "2m", "--traffic-interval", "1m"]);
    let seconds = run(&["--stalled-after", "120", "--traffic-interval", "60"]);
    assert!(
        minutes.status.success(),
        "{}",
        String::from_utf8_lossy(&minutes.stderr)
    );
    assert_eq!(minutes.stdout, seconds.stdout);
    let wrong = run(&["--stalled-after", "2 fortnights"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid duration"));
}
