//! pluto's audit records fused with the bundled libreswan 4.10 lab series
//! (`examples/lab-4.10/`): exact times, SAs no poll saw, no duplicates.
//!
//! The records are written in auditd's log format exactly as
//! `linux_audit_conn` (libreswan `programs/pluto/linux_audit.c`) fills them,
//! for SAs and at the moments west's pluto log shows (`west-pluto.log`; the
//! series' first dump, `status-1795857662.txt`, is 09:21:02):
//!
//! * 09:23:03.159225 `"v2-tun" #21: initiator rekeyed Child SA #4`,
//!   09:23:04.160742 `#4: deleting established Child SA`;
//! * 09:23:14.398103 `"v2-tun" #24: initiator rekeyed IKE SA #3`,
//!   09:23:15.389832 `#3: deleting state (STATE_V2_ESTABLISHED_IKE_SA)`.
//!
//! Two records are of SAs this run did not have, the kind the audit source
//! exists for: a Child SA `#46` of `v2-tun` that lived 1.7 s between the
//! last two dumps (a rekey whose new SA was deleted at once), and a failed
//! IKE SA `#47` of `v2-deadpeer`.

use crate::support;

use std::collections::BTreeSet;
use std::io::Write;

use support::*;
use swantrail::audit::record::{self, PlutoRecord};
use swantrail::event::Event;
use swantrail::snapshot::Snapshot;
use swantrail::source::replay::{self, AuditFeed};
use swantrail::track::Tracker;

const PID: u32 = 2841;

fn ike(
    secs_ms: &str,
    seq: u64,
    op: &str,
    conn: &str,
    serial: u64,
    raddr: &str,
    res: &str,
) -> String {
    format!(
        "type=CRYPTO_IKE_SA msg=audit({secs_ms}:{seq}): pid={PID} uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op={op} direction=initiator conn-name=\"{conn}\" connstate={serial} ike-version=2.0 auth=PRESHARED_KEY cipher=aes_gcm_16 ksize=256 integ=none prf=sha512 pfs=MODP2048  raddr={raddr} exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res={res}'"
    )
}

fn child(secs_ms: &str, seq: u64, op: &str, serial: u64, spis: (u32, u32)) -> String {
    let (i, o) = spis;
    format!(
        "type=CRYPTO_IPSEC_SA msg=audit({secs_ms}:{seq}): pid={PID} uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op={op} conn-name=\"v2-tun\" connstate={serial}, satype=ipsec-esp samode=tunnel cipher=AES_GCM_16 ksize=256 integ=NONE in-spi={i}(0x{i:08x}) out-spi={o}(0x{o:08x}) in-ipcomp=0(0x00000000) out-ipcomp=0(0x00000000) raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'\u{1d}UID=\"root\" AUID=\"unset\""
    )
}

/// The auditd log of the scenario, with another program's record between.
fn audit_log() -> String {
    [
        child("1795857783.159", 301, "start", 21, (0x0fbd_8669, 0x2db9_3214)),
        "type=USER_LOGIN msg=audit(1795857783.500:302): pid=9 uid=0 auid=0 ses=3 msg='op=login id=0 exe=\"/usr/sbin/sshd\" hostname=? addr=? terminal=ssh res=success'".to_string(),
        child("1795857784.163", 303, "destroy", 4, (0x9641_8de6, 0xbc9b_28e1)),
        ike("1795857794.398", 310, "start", "v2-tun", 24, "192.0.2.2", "success"),
        ike("1795857795.389", 311, "destroy", "v2-tun", 3, "192.0.2.2", "success"),
        child("1795857953.210", 420, "start", 46, (0xc1a0_0001, 0x5e00_0046)),
        ike("1795857953.744", 421, "start", "v2-deadpeer", 47, "192.0.2.99", "failed"),
        child("1795857954.902", 422, "destroy", 46, (0xc1a0_0001, 0x5e00_0046)),
    ]
    .join("\n")
        + "\n"
}

fn records() -> Vec<PlutoRecord> {
    audit_log()
        .lines()
        .filter_map(|l| record::from_auditd_line(l).expect("a pluto record or none"))
        .collect()
}

/// Replay the lab series, handing each snapshot the records written before
/// the end of its second, as the daemon would have received them.
fn fused(records: &[PlutoRecord]) -> Vec<Event> {
    let mut series = replay_series(records);
    series.events.extend(series.tracker.release_held());
    series.events
}

/// The lab series replayed with its records, up to its last snapshot.
struct Replayed {
    tracker: Tracker,
    events: Vec<Event>,
    /// The last snapshot's `taken_at`.
    last: i64,
    /// The records written after the end of the last snapshot's second.
    unread: Vec<PlutoRecord>,
}

fn replay_series(records: &[PlutoRecord]) -> Replayed {
    let mut records = records.to_vec();
    records.sort_by_key(|r| r.unix_ms);
    let mut tracker = Tracker::new(west());
    tracker.expect_audit(true);
    let mut events = Vec::new();
    let (mut last, mut next) = (0, 0);
    for step in replay::plan(&lab_inputs(true)).expect("plan") {
        let end = (step.taken_at + 1) * 1000;
        let start = next;
        while records.get(next).is_some_and(|r| r.unix_ms < end) {
            next += 1;
        }
        tracker.ingest_audit(&records[start..next]);
        events.extend(tracker.observe(&replay::load_step(&step).expect("load")));
        last = step.taken_at;
    }
    Replayed {
        tracker,
        events,
        last,
        unread: records.split_off(next),
    }
}

fn find<'a>(events: &'a [Event], action: &str, serial: u64) -> &'a Event {
    events
        .iter()
        .find(|e| e.action() == action && e.libreswan.sa.as_ref().map(|s| s.serial) == Some(serial))
        .unwrap_or_else(|| panic!("no {action} of #{serial}"))
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(Event::id).collect()
}

#[test]
fn an_sa_both_saw_is_reported_once_at_the_records_time_with_its_rekey_link() {
    let events = fused(&records());
    let rekeyed = find(&events, "child-sa-rekeyed", 21);
    assert_eq!(rekeyed.timestamp, "2026-11-28T09:23:03.159Z");
    assert_eq!(rekeyed.libreswan.sa.as_ref().unwrap().replaces, Some(4));
    let gone = find(&events, "child-sa-expired", 4);
    assert_eq!(gone.timestamp, "2026-11-28T09:23:04.163Z");
    assert_eq!(gone.libreswan.sa.as_ref().unwrap().replaced_by, Some(21));
    let ike = find(&events, "ike-sa-rekeyed", 24);
    assert_eq!(ike.timestamp, "2026-11-28T09:23:14.398Z");
    assert_eq!(ike.libreswan.sa.as_ref().unwrap().replaces, Some(3));
    assert_eq!(
        find(&events, "ike-sa-expired", 3).timestamp,
        "2026-11-28T09:23:15.389Z"
    );
    for (action, serial) in [("child-sa-rekeyed", 21), ("ike-sa-rekeyed", 24)] {
        let n = events
            .iter()
            .filter(|e| {
                e.action() == action && e.libreswan.sa.as_ref().map(|s| s.serial) == Some(serial)
            })
            .count();
        assert_eq!(n, 1, "{action} #{serial} once");
    }
}

#[test]
fn the_fused_replay_is_the_snapshot_replay_plus_the_sas_only_the_records_saw() {
    let alone = replay(&lab_inputs(true), west());
    let events = fused(&records());
    let alone_ids: BTreeSet<&str> = ids(&alone).into_iter().collect();
    let fused_ids: BTreeSet<&str> = ids(&events).into_iter().collect();
    assert_eq!(fused_ids.len(), events.len(), "no event id twice");
    assert!(
        alone_ids.is_subset(&fused_ids),
        "the snapshot events keep their ids"
    );
    let extra: Vec<(String, Option<u64>, Option<u64>)> = events
        .iter()
        .filter(|e| !alone_ids.contains(e.id()))
        .map(sa_of)
        .collect();
    assert_eq!(
        extra,
        vec![
            ("child-sa-established".to_string(), Some(46), None),
            ("negotiation-failed".to_string(), Some(47), None),
            ("child-sa-deleted".to_string(), Some(46), None),
        ]
    );
    assert_schema_valid(&events);
}

#[test]
fn an_sa_shorter_than_a_poll_gets_its_start_and_end_at_the_records_times() {
    let events = fused(&records());
    let up = find(&events, "child-sa-established", 46);
    assert_eq!(up.timestamp, "2026-11-28T09:25:53.210Z");
    assert_eq!(conn_of(up), Some("v2-tun"));
    assert_eq!(
        up.destination.as_ref().and_then(|d| d.ip.as_deref()),
        Some("192.0.2.2")
    );
    let down = find(&events, "child-sa-deleted", 46);
    assert_eq!(down.timestamp, "2026-11-28T09:25:54.902Z");
    assert_eq!(down.libreswan.sa.as_ref().unwrap().duration_s, Some(1));
    let failed = find(&events, "negotiation-failed", 47);
    assert_eq!(failed.timestamp, "2026-11-28T09:25:53.744Z");
    assert_eq!(conn_of(failed), Some("v2-deadpeer"));
    // The snapshots stay the authority for the tunnel: #46 never took it down.
    assert!(
        !events
            .iter()
            .any(|e| e.action() == "tunnel-down" && time_of(e) > 1_795_857_950)
    );
}

#[test]
fn records_read_twice_or_again_after_a_checkpointed_restart_make_no_new_event() {
    let records = records();
    let twice: Vec<PlutoRecord> = records.iter().chain(&records).cloned().collect();
    assert_eq!(ids(&fused(&twice)), ids(&fused(&records)));

    // Stop after the dump that reported #46 and start again from the
    // checkpoint, re-reading the whole log (an auditd log read from its start).
    let steps = replay::plan(&lab_inputs(true)).expect("plan");
    let mut tracker = Tracker::new(west());
    tracker.expect_audit(true);
    let mut first = Vec::new();
    let (before, after) = steps.split_at(steps.len() - 1);
    for step in before {
        tracker.ingest_audit(
            &records
                .iter()
                .filter(|r| r.unix_ms < (step.taken_at + 1) * 1000)
                .cloned()
                .collect::<Vec<_>>(),
        );
        first.extend(tracker.observe(&replay::load_step(step).expect("load")));
    }
    let checkpoint = serde_json::to_string(&tracker).expect("checkpoint");
    let mut restored: Tracker = serde_json::from_str(&checkpoint).expect("restore");
    restored.expect_audit(true);
    restored.ingest_audit(&records);
    let mut second = Vec::new();
    for step in after {
        second.extend(restored.observe(&replay::load_step(step).expect("load")));
    }
    // What waited for its records went through the checkpoint with them.
    second.extend(restored.release_held());
    let seen: BTreeSet<&str> = ids(&first).into_iter().collect();
    for e in &second {
        assert!(
            !seen.contains(e.id()),
            "{} re-emitted after the restart",
            e.action()
        );
    }
    let all: Vec<&str> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_eq!(all, ids(&fused(&records)));
}

#[test]
fn the_replay_command_reads_an_auditd_log_next_to_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::File::create(&log)
        .unwrap()
        .write_all(audit_log().as_bytes())
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("replay")
        .args(lab_inputs(true))
        .arg("--audit-log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"child-sa-deleted\"") && l.contains("\"serial\":46"))
        .expect("the short-lived SA is in the replay's output");
    assert!(
        line.contains("\"@timestamp\":\"2026-11-28T09:25:54.902Z\""),
        "{line}"
    );

    let broken = dir.path().join("broken.log");
    std::fs::write(&broken, audit_log().replace("connstate=24 ", "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("replay")
        .args(lab_inputs(true))
        .arg("--audit-log")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.log:4:") && err.contains("connstate"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_feed_hands_out_each_record_once_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, audit_log()).unwrap();
    let mut feed = AuditFeed::read(&log).unwrap();
    assert_eq!(feed.len(), 7, "the sshd record is not pluto's");
    assert_eq!(feed.until(1_795_857_783).len(), 1);
    assert_eq!(feed.until(1_795_857_783).len(), 0);
    assert_eq!(feed.until(1_795_857_999).len(), 6);
}

#[test]
fn a_feed_of_two_plutos_keeps_the_one_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // The peer's pluto in the same kernel: same program, another pid.
    let peer = audit_log().replace(&format!("pid={PID} "), "pid=4242 ");
    std::fs::write(&log, audit_log() + &peer).unwrap();
    let mut both = AuditFeed::read(&log).unwrap();
    assert_eq!(both.len(), 14);
    both.keep_pid(PID);
    assert_eq!(both.len(), 7);
    assert_eq!(both.until(1_795_857_999).len(), 7);
    let own = dir.path().join("own.log");
    std::fs::write(&own, audit_log()).unwrap();
    let run = |log: &std::path::Path, pid: Option<u32>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_swantrail"));
        cmd.arg("replay")
            .args(lab_inputs(true))
            .arg("--audit-log")
            .arg(log);
        if let Some(pid) = pid {
            cmd.args(["--audit-pid", &pid.to_string()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let alone = run(&own, None);
    assert!(alone.contains("\"sa\":{\"serial\":46"), "#46 is fused");
    assert_eq!(run(&log, Some(PID)), alone);
    assert_ne!(
        run(&log, None),
        alone,
        "the peer's records change the events"
    );
}

#[test]
fn a_stop_reports_what_the_records_read_after_the_last_poll_say() {
    // The daemon's stop: records read after the last observation (a Child
    // SA started in the second before SIGTERM) are fused then, with their
    // times; no observation follows and the next start will not hear them.
    let Replayed {
        mut tracker,
        last,
        unread,
        ..
    } = replay_series(&records());
    let line = child(
        &format!("{}.250", last + 1),
        900,
        "start",
        99,
        (0xc1a0_0099, 0x5e00_0099),
    );
    let late: Vec<PlutoRecord> = unread
        .into_iter()
        .chain(record::from_auditd_line(&line).expect("a pluto record"))
        .collect();
    tracker.ingest_audit(&late);
    assert!(tracker.holds_unfused_records());
    let events = tracker.release_at_stop(last + 2);
    let up = events
        .iter()
        .find(|e| {
            e.libreswan.sa.as_ref().map(|s| s.serial) == Some(99)
                && (e.action() == "child-sa-established" || e.action() == "child-sa-rekeyed")
        })
        .unwrap_or_else(|| panic!("#99 not reported at the stop: {:?}", ids(&events)));
    assert!(up.timestamp.ends_with(".250Z"), "{}", up.timestamp);
    assert_eq!(time_of(up), last + 1);
    // Reported once: a second stop finds nothing left.
    assert!(
        tracker
            .release_at_stop(last + 3)
            .iter()
            .all(|e| e.libreswan.sa.as_ref().map(|s| s.serial) != Some(99))
    );
}

/// The lab's dump with v2-tun's IKE SA #3 and Child SA #4 up, and the same
/// dump with both gone (the tunnel terminated), as two polls ten seconds
/// apart; the second one answered at `answered_ms` past its second.
fn teardown_polls(
    answered_ms: Option<i64>,
) -> (swantrail::snapshot::Snapshot, swantrail::snapshot::Snapshot) {
    let text =
        std::fs::read_to_string(root().join("examples/lab-4.10/series/status-1795857672.txt"))
            .expect("the lab dump");
    let mut up = swantrail::status::parse(&text);
    up.taken_at = Some(1_795_857_672);
    let gone_text: String = text
        .lines()
        .filter(|l| !(l.starts_with("000 #3: ") || l.starts_with("000 #4: ")))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut gone = swantrail::status::parse(&gone_text);
    assert!(gone.is_complete(), "{:?}", gone.incomplete);
    gone.taken_at = Some(1_795_857_682);
    gone.taken_at_ms = answered_ms.map(|ms| 1_795_857_682_000 + ms);
    (up, gone)
}

/// `first` observed, then `lines` (auditd's log) read, then `then`
/// observed, and what is held released: the events of all three.
fn observe_with_records(first: &Snapshot, lines: &[String], then: &Snapshot) -> Vec<Event> {
    let records: Vec<PlutoRecord> = lines
        .iter()
        .filter_map(|l| record::from_auditd_line(l).expect("a pluto record"))
        .collect();
    let mut tracker = Tracker::new(west());
    tracker.expect_audit(true);
    let mut events = tracker.observe(first);
    tracker.ingest_audit(&records);
    events.extend(tracker.observe(then));
    events.extend(tracker.release_held());
    events
}

fn serial_of(e: &Event) -> Option<u64> {
    e.libreswan.sa.as_ref().map(|s| s.serial)
}

#[test]
fn a_rekey_and_its_teardown_just_before_a_poll_are_linked_by_that_poll() {
    // A forced Child SA rekey followed at once by --terminate, all within
    // the 0.4 s before pluto answered the next poll, in the same second: the
    // new SA #21 no listing showed rekeyed #4, which that poll found gone.
    let (up, gone) = teardown_polls(Some(450));
    let lines = [
        child(
            "1795857682.046",
            501,
            "start",
            21,
            (0xc1a0_0021, 0x5e00_0021),
        ),
        child(
            "1795857682.050",
            502,
            "destroy",
            4,
            (0x9641_8de6, 0xbc9b_28e1),
        ),
        child(
            "1795857682.397",
            503,
            "destroy",
            21,
            (0xc1a0_0021, 0x5e00_0021),
        ),
        ike(
            "1795857682.398",
            504,
            "destroy",
            "v2-tun",
            3,
            "192.0.2.2",
            "success",
        ),
    ];
    let events = observe_with_records(&up, &lines, &gone);
    let rekeyed = find(&events, "child-sa-rekeyed", 21);
    assert_eq!(rekeyed.timestamp, "2026-11-28T09:21:22.046Z");
    assert_eq!(rekeyed.libreswan.sa.as_ref().unwrap().replaces, Some(4));
    let old = find(&events, "child-sa-expired", 4);
    assert_eq!(old.event.reason.as_deref(), Some("replaced"));
    assert_eq!(old.libreswan.sa.as_ref().unwrap().replaced_by, Some(21));
    assert_eq!(old.timestamp, "2026-11-28T09:21:22.050Z");
    let new_end = find(&events, "child-sa-deleted", 21);
    assert_eq!(new_end.timestamp, "2026-11-28T09:21:22.397Z");
    assert_eq!(
        find(&events, "ike-sa-deleted", 3).timestamp,
        "2026-11-28T09:21:22.398Z"
    );
    for serial in [4, 21] {
        let ends = events
            .iter()
            .filter(|e| serial_of(e) == Some(serial) && e.action().starts_with("child-sa-"))
            .count();
        assert_eq!(
            ends,
            2,
            "#{serial}: one start and one end: {:?}",
            ids(&events)
        );
    }
}

#[test]
fn a_start_reported_from_its_record_is_not_reported_again_by_the_listing_after() {
    // The lab's rekey of #4 by #21 (09:23:03.159), with the poll of that
    // second answered 6 ms after the record but its listing written just
    // before it (pluto answered, went on, and the daemon read the first
    // byte a moment later): the audit path reports #21's start, and the
    // next listing, the first to show #21, adds no second one.
    let dump = |at: i64| {
        let path = root().join(format!("examples/lab-4.10/series/status-{at}.txt"));
        let mut s = swantrail::status::parse(&std::fs::read_to_string(path).expect("the lab dump"));
        assert!(s.is_complete(), "{:?}", s.incomplete);
        s.taken_at = Some(at);
        s
    };
    let mut before = dump(1_795_857_782);
    before.taken_at = Some(1_795_857_783);
    before.taken_at_ms = Some(1_795_857_783_165);
    let lines = [
        child(
            "1795857783.159",
            301,
            "start",
            21,
            (0x0fbd_8669, 0x2db9_3214),
        ),
        child(
            "1795857784.163",
            303,
            "destroy",
            4,
            (0x9641_8de6, 0xbc9b_28e1),
        ),
    ];
    let records: Vec<PlutoRecord> = lines
        .iter()
        .filter_map(|l| record::from_auditd_line(l).expect("a pluto record"))
        .collect();
    let mut tracker = Tracker::new(west());
    tracker.expect_audit(true);
    let mut events = tracker.observe(&dump(1_795_857_777));
    tracker.ingest_audit(&records[..1]);
    // Held for the next poll (the settle window: #14's end has no record),
    // with the audit path's start of #21 among them.
    events.extend(tracker.observe(&before));
    tracker.ingest_audit(&records[1..]);
    events.extend(tracker.observe(&dump(1_795_857_787)));
    events.extend(tracker.release_held());
    let starts: Vec<&str> = events
        .iter()
        .filter(|e| serial_of(e) == Some(21))
        .filter(|e| e.action() == "child-sa-established" || e.action() == "child-sa-rekeyed")
        .map(Event::id)
        .collect();
    assert_eq!(starts.len(), 1, "#21's start once: {:?}", ids(&events));
    let start = find(&events, "child-sa-established", 21);
    assert_eq!(start.timestamp, "2026-11-28T09:23:03.159Z");
    let old = find(&events, "child-sa-expired", 4);
    assert_eq!(old.timestamp, "2026-11-28T09:23:04.163Z");
    let sequences: Vec<u64> = events.iter().map(|e| e.event.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "no hole in the sequence: {sequences:?}"
    );
}

#[test]
fn a_failure_only_the_records_saw_keeps_its_own_time_after_a_teardown() {
    // The lab's v1-tun: its tunnel torn down (DPD hold), then a new
    // negotiation that pluto gave up 3 s later, between two polls; pluto
    // wrote `op=start res=failed` for it. Its `negotiation-failed` is at
    // that record's time, not at the teardown before it.
    let (up, gone) = teardown_polls(Some(450));
    let lines = [
        child(
            "1795857682.050",
            701,
            "destroy",
            4,
            (0x9641_8de6, 0xbc9b_28e1),
        ),
        ike(
            "1795857682.060",
            702,
            "destroy",
            "v2-tun",
            3,
            "192.0.2.2",
            "success",
        ),
        ike(
            "1795857682.300",
            703,
            "start",
            "v2-tun",
            99,
            "192.0.2.2",
            "failed",
        ),
    ];
    let events = observe_with_records(&up, &lines, &gone);
    let failed = find(&events, "negotiation-failed", 99);
    assert_eq!(failed.timestamp, "2026-11-28T09:21:22.300Z");
    assert_eq!(
        find(&events, "child-sa-deleted", 4).timestamp,
        "2026-11-28T09:21:22.050Z"
    );
}
