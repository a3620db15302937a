//! The daemon with an audit source, as an operator runs it: records fused
//! into the file source's events, and snapshots alone (with one log line)
//! when the records cannot be read.
//!
//! The dumps are the bundled lab series (examples/lab-4.10/series); the
//! audit record is written in auditd's log format as pluto's
//! `linux_audit_conn` writes it, for a Child SA `#46` of `v2-tun` that lived
//! less than a second between two dumps.

use crate::support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use support::config::DaemonConfig;
use support::daemon::*;

const LIMIT: Duration = Duration::from_secs(60);

fn record(stamp: &str, seq: u64, op: &str) -> String {
    format!(
        "type=CRYPTO_IPSEC_SA msg=audit({stamp}:{seq}): pid=2841 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op={op} conn-name=\"v2-tun\" connstate=46, satype=ipsec-esp samode=tunnel cipher=AES_GCM_16 ksize=256 integ=NONE in-spi=3248488449(0xc1a00001) out-spi=1577058374(0x5e000046) in-ipcomp=0(0x00000000) out-ipcomp=0(0x00000000) raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'\n"
    )
}

/// `config` with an audit source, and the pid file of the pluto whose
/// records it keeps (2841, the records' `pid=`).
fn with_audit_source(
    config: DaemonConfig,
    root: &Path,
    from: &str,
    path: Option<&Path>,
) -> DaemonConfig {
    let pid_file = root.join("run/pluto.pid");
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::write(&pid_file, "2841\n").unwrap();
    let config = config
        .source("audit", "audit")
        .with("from", from)
        .with("pluto", "lab")
        .with_path("pid_file", &pid_file);
    match path {
        Some(path) => config.with_path("path", path),
        None => config,
    }
}

/// How many audit records the daemon's debug log says it took in.
fn records_taken_in(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("audit records taken in"))
        .filter_map(|l| {
            l.split_once("records=")?
                .1
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn has_event(out: &Path, action: &str) -> bool {
    event_lines(out)
        .iter()
        .any(|l| support::daemon::action(l) == action)
}

#[test]
fn a_missing_auditd_log_is_one_line_then_its_records_are_fused_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log = root.join("audit/audit.log");
    let config = with_audit_source(file_config(root), root, "auditd-log", Some(&log)).write();
    let stderr = root.join("stderr.log");
    let daemon = Daemon::start(&config, &stderr);
    let series = lab_series();
    let (first, _) = series[0];
    write_by_rename(&root.join("watch/status.txt"), &fixture(first), first);
    let out = root.join("out");
    wait_until(LIMIT, "the snapshot's inventory", &daemon, || {
        has_event(&out, "tunnel-up")
    });
    wait_until(LIMIT, "the missing log said once", &daemon, || {
        daemon.log().contains("does not exist")
    });
    let said = count_lines(&daemon.log(), "audit records unavailable");
    assert_eq!(said, 1, "{}", daemon.log());
    assert!(daemon.log().contains("going on with snapshots alone"));

    fs::create_dir_all(log.parent().unwrap()).unwrap();
    fs::write(&log, "").unwrap();
    wait_until(LIMIT, "the log opened", &daemon, || {
        daemon.log().contains("audit records are read again")
    });
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(record("1795857663.250", 330, "start").as_bytes())
        .unwrap();
    file.write_all(record("1795857664.100", 331, "destroy").as_bytes())
        .unwrap();
    drop(file);
    // The follower hands the records over in its own time; the dump that
    // fuses them comes after they are in the tracker.
    wait_until(LIMIT, "both records taken in", &daemon, || {
        records_taken_in(&daemon.log()) >= 2
    });
    let (second, _) = series[1];
    write_by_rename(&root.join("watch/status.txt"), &fixture(second), second);
    wait_until(LIMIT, "the short-lived SA", &daemon, || {
        has_event(&out, "child-sa-deleted")
    });
    let lines = event_lines(&out);
    let of_46: Vec<(String, String)> = lines
        .iter()
        .map(|l| parse_event(l))
        .filter(|e| field(e, "libreswan.sa.serial").and_then(|s| s.as_u64()) == Some(46))
        .map(|e| {
            (
                field(&e, "event.action")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["@timestamp"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        of_46,
        vec![
            (
                "child-sa-established".into(),
                "2026-11-28T09:21:03.250Z".into()
            ),
            ("child-sa-deleted".into(), "2026-11-28T09:21:04.100Z".into()),
        ]
    );
    assert_eq!(count_lines(&daemon.log(), "audit records unavailable"), 1);
}

#[test]
fn a_netlink_socket_that_cannot_be_opened_is_one_line_and_snapshots_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = with_audit_source(file_config(root), root, "netlink", None).write();
    let stderr = root.join("stderr.log");
    // As root, take CAP_AUDIT_READ away; any other user has none.
    let root_user = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let wrapper: &[&str] = if root_user {
        &[
            "setpriv",
            "--bounding-set=-audit_read",
            "--inh-caps=-audit_read",
            "--",
        ]
    } else {
        &[]
    };
    let daemon = Daemon::start_under(wrapper, &config, &stderr, &[], &[]);
    let series = lab_series();
    for &(at, _) in &series[..2] {
        write_by_rename(&root.join("watch/status.txt"), &fixture(at), at);
        let taken = at;
        wait_until(LIMIT, "the dump diffed", &daemon, || {
            checkpoint_taken_at(&root.join("state"), "lab") == Some(taken)
        });
    }
    // The checkpoint is written before the sink has delivered.
    wait_until(LIMIT, "tunnel-up delivered", &daemon, || {
        has_event(&root.join("out"), "tunnel-up")
    });
    wait_until(LIMIT, "the reason said", &daemon, || {
        daemon
            .log()
            .contains("cannot open the audit netlink socket")
    });
    // Retries (after 2 s, 4 s, ...) are silent.
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log();
    assert_eq!(count_lines(&log, "audit records unavailable"), 1, "{log}");
    assert!(log.contains("CAP_AUDIT_READ"), "{log}");
    assert!(daemon.exited().is_none());
}

/// The events of `action` the sink holds for `serial`.
fn count_of(out: &Path, action: &str, serial: u64) -> usize {
    event_lines(out)
        .iter()
        .map(|l| parse_event(l))
        .filter(|e| {
            field(e, "event.action").and_then(|a| a.as_str()) == Some(action)
                && field(e, "libreswan.sa.serial").and_then(|s| s.as_u64()) == Some(serial)
        })
        .count()
}

#[test]
fn events_held_for_their_records_are_delivered_at_sigterm_and_not_again_after_a_restart() {
    // A command source with an audit source: the poll that finds Child SA
    // #9 rekeyed (two real dumps of the bundled series, 5 s apart) holds
    // its events for #9's record, which never comes; the next poll never
    // answers (the fake whack waits for `go`), so only the stop can let
    // them out.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = root.to_str().unwrap();
    fs::write(root.join("a.txt"), fixture(1_795_857_677)).unwrap();
    fs::write(root.join("b.txt"), fixture(1_795_857_682)).unwrap();
    let whack = script(
        &root.join("whack"),
        &format!(
            "n=$(cat \"{d}/calls\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"{d}/calls\"\n\
             case $n in\n0) cat \"{d}/a.txt\" ;;\n\
             *) [ \"$n\" = 1 ] || while [ ! -e \"{d}/go\" ]; do sleep 0.05; done; cat \"{d}/b.txt\" ;;\nesac\n"
        ),
    );
    let log = root.join("audit/audit.log");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    fs::write(&log, "").unwrap();
    let config = DaemonConfig::new(root)
        .set("shutdown_grace", "10s")
        .command_source("lab", &[whack.to_str().unwrap()])
        .with("interval", "100ms")
        .with("jitter", "0s")
        .with("timeout", "10m")
        .file_sink("", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms");
    let config = with_audit_source(config, root, "auditd-log", Some(&log)).write();
    let stderr = root.join("stderr.log");
    let holds_the_rekey = || {
        let json = saved_checkpoint(&root.join("state"), "lab").unwrap_or_default();
        json["tracker"]["audit"]["waiting"]
            .as_array()
            .is_some_and(|w| w.iter().any(|e| e.to_string().contains("child-sa-rekeyed")))
    };
    let out = root.join("out");

    let daemon = Daemon::start(&config, &stderr);
    wait_until(
        LIMIT,
        "the rekey held in the checkpoint",
        &daemon,
        holds_the_rekey,
    );
    assert_eq!(count_of(&out, "child-sa-rekeyed", 9), 0, "held, not sent");
    assert!(daemon.terminate().success());
    assert_eq!(
        count_of(&out, "child-sa-rekeyed", 9),
        1,
        "the held rekey is delivered at the stop; log:\n{}",
        fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert!(!holds_the_rekey(), "sent, so no longer held");

    // The next start polls the same dump again: nothing more to say.
    fs::write(root.join("go"), "").unwrap();
    let polls = calls(root);
    let daemon = Daemon::start(&config, &stderr);
    wait_until(LIMIT, "two more polls", &daemon, || {
        calls(root) >= polls + 2
    });
    wait_until(LIMIT, "the poll after the restart diffed", &daemon, || {
        count_lines(&daemon.own_log(), "snapshot diffed") >= 1
    });
    assert!(daemon.terminate().success());
    assert_eq!(count_of(&out, "child-sa-rekeyed", 9), 1, "not sent twice");
}
