//! The daemon's resident memory on a small gateway (issue 25): the real
//! binary polling the lab's 3-tunnel dump, its heap read from `/proc`.
//! Bounds are on what the heap holds, never on time; the figures of a
//! release build are in README's "A small gateway".

use crate::support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::daemon::*;

/// Long enough for a loaded machine; the test waits for conditions, never
/// for a fixed time.
const LIMIT: Duration = Duration::from_secs(60);

/// The value in kB of `key` (`"AnonHugePages:"`, `"RssAnon:"`) in a
/// `/proc/PID/...` file of the daemon.
fn kib(daemon: &Daemon, file: &str, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{}/{file}", daemon.pid())).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/PID/{file}:\n{text}"))
}

/// Whether this kernel can give a process transparent huge pages at all
/// (`never`, or no THP support, leaves nothing for the test to catch).
fn huge_pages_possible() -> bool {
    fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"))
}

#[test]
fn a_small_gateway_daemon_keeps_its_heap_in_small_pages_and_under_12_mib() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let whack = answering_whack(root);
    let dump = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab-4.10/status.txt");
    fs::copy(dump, root.join("answer.txt")).unwrap();
    let config = command_config(root, &[whack.to_str().unwrap(), "--status"]).write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let out = root.join("out");
    wait_until(LIMIT, "the 3 tunnels", &daemon, || {
        event_lines(&out)
            .iter()
            .filter(|l| action(l) == "tunnel-up")
            .count()
            == 3
    });
    wait_until(LIMIT, "30 polls", &daemon, || calls(root) >= 30);
    let huge = kib(&daemon, "smaps_rollup", "AnonHugePages:");
    let anon = kib(&daemon, "status", "RssAnon:");
    assert!(daemon.terminate().success());
    eprintln!("after 30 polls: {anon} KiB of anonymous memory, {huge} KiB of it in huge pages");
    // mimalloc madvises its 1 GiB arena for huge pages: each 2 MiB region
    // the heap touched was then resident whole (10 of a release build's
    // 16 MB of heap here). None may be left.
    if huge_pages_possible() {
        assert_eq!(huge, 0, "{anon} KiB anonymous, {huge} KiB in huge pages");
    } else {
        eprintln!("this kernel gives no transparent huge pages: only the bound below is checked");
    }
    // A release build holds about 2 MiB; the debug build's frames and
    // unoptimised collections take more. 16 MiB was the heap of a
    // release build before.
    assert!(anon < 12 * 1024, "{anon} KiB of anonymous memory");
}
