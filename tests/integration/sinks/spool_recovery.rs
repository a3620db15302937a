//! The spool on disk, through the real `swantrail` binary: a damaged line
//! in a stopped daemon's spool is quarantined and every event after it is
//! delivered at the next start, and a sink that has caught up leaves no
//! delivered events on the state disk.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::{
    Daemon, Tmpfs, checkpoint_taken_at, count_lines, toml_path, wait_until, write_by_rename,
};
use swantrail::synth::{Dialect, status_dump};

/// Generous: the machine running the tests may be busy.
const LIMIT: Duration = Duration::from_secs(60);
/// The dump's mtime, which becomes the events' `@timestamp`.
const EPOCH: i64 = 1_760_000_000;

/// A config with one file source watching `root/watch/status.txt`, one file
/// sink named `archive` writing `root/out/events.ndjson`, and `/metrics`.
fn config(root: &Path, spool_extra: &str) -> PathBuf {
    for dir in ["watch", "state", "out"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let text = format!(
        r#"state_dir = {state}
hostname = "gw-test"
shutdown_grace = "500ms"

[metrics]
listen = "127.0.0.1:0"

[[source]]
type = "file"
name = "lab"
path = {watched}
settle = "30ms"

[[sink]]
type = "file"
name = "archive"
path = {out}

[sink.spool]
batch_max_wait = "20ms"
{spool_extra}

[sink.retry]
initial_backoff = "50ms"
max_backoff = "200ms"
"#,
        state = toml_path(&root.join("state")),
        watched = toml_path(&root.join("watch/status.txt")),
        out = toml_path(&root.join("out/events.ndjson")),
    );
    let path = root.join("swantrail.toml");
    fs::write(&path, text).unwrap();
    path
}

/// The sink's spool directory.
fn spool_dir(root: &Path) -> PathBuf {
    root.join("state/spool/archive")
}

/// The spool's segment files, oldest first, with their sizes.
fn segments(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut found: Vec<(PathBuf, u64)> = fs::read_dir(spool_dir(root))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect();
    found.sort();
    found
}

/// The endpoint's address, from the daemon's log line (the config asks for port 0).
fn endpoint(daemon: &Daemon) -> String {
    let mut address = None;
    wait_until(LIMIT, "the metrics endpoint", daemon, || {
        address = daemon
            .own_log()
            .lines()
            .find_map(|l| l.split("metrics endpoint on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(String::from);
        address.is_some()
    });
    address.unwrap_or_default()
}

/// The value of the sample `metric{sink="archive"}` on `/metrics`.
fn sink_metric(address: &str, metric: &str) -> Option<f64> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let sample = format!("{metric}{{sink=\"archive\"}} ");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&sample))
        .map(|v| v.parse().unwrap())
}

/// The complete lines of a file (a last line without its `\n` is not yet
/// written, so it is left out).
fn complete_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if lines.last().is_some_and(|l| !l.ends_with(b"\n")) {
        lines.pop();
    }
    lines
}

/// The daemon's peak resident memory.
fn peak_kib(daemon: &Daemon) -> u64 {
    let status = fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// What a run of [`damaged_spool_delivered`] saw.
struct Delivered {
    /// Events spooled while the sink was down (and all delivered after).
    events: usize,
    /// The spool's segments when the daemon stopped.
    segments: usize,
    /// The second daemon's peak resident memory.
    peak_kib: u64,
    /// The second daemon's log.
    log: String,
}

/// Spool the inventories of synthetic gateways of `tunnels` (one dump
/// each) for a file sink that cannot write, stop the daemon, put `garbage`
/// after line 5 of the oldest segment, and start again with the sink
/// working: every event arrives once and in order, the quarantine file holds
/// the garbage after a header saying where it was, `/metrics` counts one
/// line and the log says so in one line.
fn damaged_spool_delivered(garbage: &[u8], tunnels: &[usize], spool_extra: &str) -> Delivered {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = config(root, spool_extra);
    let stderr = root.join("stderr.log");
    // The sink cannot deliver: where its directory goes is a file.
    fs::remove_dir(root.join("out")).unwrap();
    fs::write(root.join("out"), "in the way\n").unwrap();
    let daemon = Daemon::start(&config, &stderr);
    for (step, &tunnels) in tunnels.iter().enumerate() {
        let epoch = EPOCH + 10 * step as i64;
        write_by_rename(
            &root.join("watch/status.txt"),
            &status_dump(tunnels, Dialect::V4_10).text,
            epoch,
        );
        wait_until(
            LIMIT,
            "the events spooled and checkpointed",
            &daemon,
            || checkpoint_taken_at(&root.join("state"), "lab") == Some(epoch),
        );
    }
    wait_until(LIMIT, "a failed delivery", &daemon, || {
        daemon.log().contains("sink `archive`: delivery failed")
    });
    assert!(daemon.terminate().success());

    let spooled = segments(root);
    let mut events: Vec<Vec<u8>> = Vec::new();
    for (path, _) in &spooled {
        events.extend(complete_lines(path));
    }
    let oldest = &spooled[0].0;
    let lines = complete_lines(oldest);
    assert!(lines.len() > 5, "{} lines in {oldest:?}", lines.len());
    let mut edited: Vec<u8> = lines[..5].concat();
    let offset = edited.len();
    edited.extend_from_slice(garbage);
    edited.extend_from_slice(&lines[5..].concat());
    fs::write(oldest, edited).unwrap();

    // The sink works again.
    fs::remove_file(root.join("out")).unwrap();
    let daemon = Daemon::start(&config, &stderr);
    let address = endpoint(&daemon);
    let out = root.join("out");
    wait_until(LIMIT, "every spooled event delivered", &daemon, || {
        delivered(&out).len() >= events.len()
    });
    let expected: Vec<String> = events
        .iter()
        .map(|l| String::from_utf8(l.strip_suffix(b"\n").unwrap().to_vec()).unwrap())
        .collect();
    assert!(
        delivered(&out) == expected,
        "every event, in order, once; log:\n{}",
        daemon.log()
    );
    let quarantine = fs::read(spool_dir(root).join("quarantine")).unwrap();
    let header = format!(
        "--- {} offset {offset} length {} ---\n",
        oldest.file_name().unwrap().to_str().unwrap(),
        garbage.len()
    );
    assert!(
        quarantine.len() == header.len() + garbage.len()
            && quarantine.starts_with(header.as_bytes())
            && quarantine.ends_with(garbage),
        "the quarantine file holds {} bytes, starting {:?}",
        quarantine.len(),
        String::from_utf8_lossy(&quarantine[..quarantine.len().min(200)])
    );
    let mut quarantined = None;
    wait_until(LIMIT, "the quarantine counted", &daemon, || {
        quarantined = sink_metric(&address, "swantrail_spool_quarantined_lines_total");
        quarantined == Some(1.0)
    });
    let said = "sink `archive`: moved 1 damaged line from the spool to";
    wait_until(LIMIT, "the quarantine logged", &daemon, || {
        daemon.own_log().contains(said)
    });
    let log = daemon.own_log();
    assert_eq!(count_lines(&log, "quarantine"), 1, "{log}");
    assert_eq!(count_lines(&log, said), 1, "{log}");
    assert_eq!(count_lines(&log, "torn tail"), 0, "{log}");
    assert_eq!(
        sink_metric(&address, "swantrail_sink_dropped_events_total"),
        Some(0.0),
        "a damaged line is not an event dropped"
    );
    let peak_kib = peak_kib(&daemon);
    assert!(daemon.terminate().success());
    Delivered {
        events: events.len(),
        segments: spooled.len(),
        peak_kib,
        log,
    }
}

/// The events the file sink wrote, complete lines only.
fn delivered(out: &Path) -> Vec<String> {
    complete_lines(&out.join("events.ndjson"))
        .into_iter()
        .map(|l| String::from_utf8(l.strip_suffix(b"\n").unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn a_garbage_line_in_a_stopped_daemons_spool_is_quarantined_and_every_event_is_delivered() {
    // The reported case: 99 events, a line inserted after the fifth.
    let run = damaged_spool_delivered(b"{\"event\": this line was damaged on disk\n", &[25], "");
    assert_eq!((run.events, run.segments), (99, 1));
}

#[test]
fn binary_garbage_with_zero_bytes_in_the_spool_is_quarantined_not_taken_for_a_torn_tail() {
    // Zeros (what a torn append leaves), bytes that are not UTF-8, a
    // carriage return, and good lines after it: damage, not a tear.
    let garbage = b"\x00\x00\x00\x00\x89PNG\r\x1a\xff\xfe\xc3\x28 \x00\x00\n";
    let run = damaged_spool_delivered(garbage, &[25], "");
    assert_eq!(run.events, 99);
}

#[test]
fn a_huge_garbage_line_is_quarantined_in_pieces_with_memory_bounded() {
    // No newline in 64 MiB: read whole, it would take 64 MiB on top of the
    // daemon's own 40 or so (a debug build, measured on the other cases).
    let mut garbage = vec![b'A'; 64 << 20];
    garbage.push(b'\n');
    let run = damaged_spool_delivered(&garbage, &[25], "");
    assert_eq!(run.events, 99);
    eprintln!("peak memory: {} KiB", run.peak_kib);
    assert!(run.peak_kib < 64 * 1024, "{} KiB", run.peak_kib);
}

#[test]
fn a_garbage_line_in_an_older_segment_is_quarantined_and_the_newer_ones_delivered() {
    let run = damaged_spool_delivered(
        b"<<<<<<< an editor's conflict marker\n",
        &[25, 40, 60],
        "segment_bytes = \"4KiB\"",
    );
    assert_eq!(run.segments, 3, "one segment per dump");
    assert!(run.events > 99);
    // The oldest segment grew into the offsets of the other two.
    assert_eq!(
        count_lines(&run.log, "sink `archive`: renamed 2 spool segments in"),
        1,
        "{}",
        run.log
    );
}

#[test]
fn a_sink_that_caught_up_leaves_no_delivered_events_on_the_state_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Segments larger than all the events: before, only whole older
    // segments were deleted, so the newest kept every delivered byte.
    let config = config(root, "segment_bytes = \"1MiB\"");
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let out = root.join("out");
    let mut so_far = 0;
    for (step, tunnels) in [30, 60].into_iter().enumerate() {
        write_by_rename(
            &root.join("watch/status.txt"),
            &status_dump(tunnels, Dialect::V4_10).text,
            EPOCH + 10 * step as i64,
        );
        wait_until(LIMIT, "more events delivered", &daemon, || {
            delivered(&out).len() > so_far
        });
        wait_until(
            LIMIT,
            "the spool emptied of delivered events",
            &daemon,
            || {
                let on_disk = segments(root);
                on_disk.len() == 1 && on_disk[0].1 == 0
            },
        );
        so_far = delivered(&out).len();
    }
    let written = fs::metadata(out.join("events.ndjson")).unwrap().len();
    assert!(written > 50_000, "{written} bytes went through the spool");
    // What is left: the empty newest segment and the acknowledged offset.
    let left: u64 = fs::read_dir(spool_dir(root))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(left <= 1024, "{left} bytes left in the spool");
    assert!(daemon.terminate().success());
    // The next start finds nothing to send again.
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    wait_until(LIMIT, "the daemon up", &daemon, || {
        daemon.own_log().contains("metrics endpoint on")
    });
    assert_eq!(count_lines(&daemon.own_log(), "from the previous run"), 0);
    assert!(daemon.terminate().success());
    assert_eq!(delivered(&out).len(), so_far);
}

/// Free bytes of the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

/// The spool itself on a 1 MiB tmpfs that its undelivered events filled
/// (segments are 16 MiB, so all of them are in the newest): once they are
/// delivered, the disk is free again and the next append goes in.
#[test]
fn a_spool_that_filled_its_disk_frees_it_once_its_events_are_delivered() {
    use swantrail::sink::spool::Spool;
    let root = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&root.path().join("state"), "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root, or no mount(8))");
        return;
    };
    let dir = root.path().join("state/spool/http");
    let mut spool = Spool::open(&dir, 16 << 20).unwrap();
    let event = format!("{{\"message\":\"{}\"}}\n", "x".repeat(1000));
    let mut spooled = 0;
    let full = loop {
        match spool.append(event.as_bytes(), 1) {
            Ok(()) => spooled += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(full.error.raw_os_error(), Some(libc::ENOSPC), "{full}");
    assert!(spooled > 900, "{spooled} events filled 1 MiB");
    assert!(free_bytes(&dir) < 8192);
    let mut delivered = 0;
    while let Some(batch) = spool.read_batch(100, 1 << 20).unwrap() {
        delivered += batch.events;
        spool.ack(batch.end).unwrap();
    }
    assert_eq!(delivered, spooled);
    assert_eq!(spool.unsaved_ack(), None, "the offset was saved in place");
    assert_eq!(spool.unreclaimed(), None);
    assert!(
        free_bytes(&dir) > 900 * 1024,
        "{} bytes free",
        free_bytes(&dir)
    );
    spool.append(event.as_bytes(), 1).unwrap();
}
