//! The daemon with an audit source, as an operator runs it: records fused
//! into the file source's events, and snapshots alone (with one log line)
//! when the records cannot be read.
//!
//! The dumps are the bundled lab series (examples/lab-4.10/series); the
//! audit record is written in auditd's log format as pluto's
//! `linux_audit_conn` writes it, for a Child SA `#46` of `v2-tun` that lived
//! less than a second between two dumps.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::daemon::*;

const LIMIT: Duration = Duration::from_secs(60);

fn record(stamp: &str, seq: u64, op: &str) -> String {
    format!(
        "type=CRYPTO_IPSEC_SA msg=audit({stamp}:{seq}): pid=2841 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op={op} conn-name=\"v2-tun\" connstate=46, satype=ipsec-esp samode=tunnel cipher=AES_GCM_16 ksize=256 integ=NONE in-spi=3248488449(0xc1a00001) out-spi=1577058374(0x5e000046) in-ipcomp=0(0x00000000) out-ipcomp=0(0x00000000) raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'\n"
    )
}

/// The audit table, and the pid file of the pluto whose records it keeps
/// (2841, the records' `pid=`).
fn audit_table(root: &Path, from: &str, path: Option<&Path>) -> String {
    let path = path.map_or(String::new(), |p| format!("path = {}\n", toml_path(p)));
    let pid_file = root.join("run/pluto.pid");
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::write(&pid_file, "2841\n").unwrap();
    format!(
        "\n[[source]]\ntype = \"audit\"\nname = \"audit\"\nfrom = \"{from}\"\n{path}pluto = \"lab\"\npid_file = {}\n",
        toml_path(&pid_file)
    )
}

fn has_event(out: &Path, action: &str) -> bool {
    event_lines(out)
        .iter()
        .any(|l| common::daemon::action(l) == action)
}

#[test]
fn a_missing_auditd_log_is_one_line_then_its_records_are_fused_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log = root.join("audit/audit.log");
    let config = file_config(root, &audit_table(root, "auditd-log", Some(&log)));
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
    // Long enough for the follower (every 250 ms) to hand them over.
    std::thread::sleep(Duration::from_millis(1500));
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
    let config = file_config(root, &audit_table(root, "netlink", None));
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
