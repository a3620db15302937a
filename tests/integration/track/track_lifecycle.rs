//! Tracker behaviour on real dumps other than the main lab series: a pluto
//! restart (east's view of the lab), a corpus rekey sequence from
//! trafficstatus alone, and pluto outages.

use crate::support;

use std::collections::BTreeSet;

use support::*;
use swantrail::event::Event;
use swantrail::track::{Tracker, TrackerConfig};

fn east_restart_events() -> Vec<Event> {
    replay(
        &[root().join("tests/fixtures/lab-east-restart")],
        TrackerConfig::new("east"),
    )
}

#[test]
fn pluto_restart_is_reported_once_and_ends_every_old_sa() {
    let events = east_restart_events();
    let restarts: Vec<&Event> = events
        .iter()
        .filter(|e| e.action() == "pluto-restarted")
        .collect();
    assert_eq!(restarts.len(), 1);
    assert_eq!(time_of(restarts[0]), 1795857937);
    // Open on east before its pluto was killed (status-1795857907.txt):
    // v1-tun ISAKMP #22, IPsec #24 and #26; v2-tun IKE #18, Child #15.
    let ended: BTreeSet<(String, Option<u64>)> = events
        .iter()
        .filter(|e| e.event.reason.as_deref() == Some("pluto-restart"))
        .filter(|e| e.libreswan.sa.is_some())
        .map(|e| {
            (
                e.action().to_string(),
                e.libreswan.sa.as_ref().map(|s| s.serial),
            )
        })
        .collect();
    let expected: BTreeSet<(String, Option<u64>)> = [
        ("child-sa-deleted", 15),
        ("child-sa-deleted", 24),
        ("child-sa-deleted", 26),
        ("ike-sa-deleted", 18),
        ("ike-sa-deleted", 22),
    ]
    .iter()
    .map(|(a, s)| (a.to_string(), Some(*s)))
    .collect();
    assert_eq!(ended, expected);
    let downs: BTreeSet<(&str, Option<&str>)> = events
        .iter()
        .filter(|e| e.action() == "tunnel-down" && time_of(e) == 1795857937)
        .map(|e| (conn_of(e).unwrap(), e.event.reason.as_deref()))
        .collect();
    assert_eq!(
        downs,
        [
            ("v1-tun", Some("pluto-restart")),
            ("v2-tun", Some("pluto-restart"))
        ]
        .into_iter()
        .collect()
    );
}

#[test]
fn sas_after_a_pluto_restart_are_new_not_rekeys() {
    let events = east_restart_events();
    let after: Vec<(String, Option<u64>, Option<u64>)> = events
        .iter()
        .filter(|e| time_of(e) >= 1795857937 && e.action().ends_with("-established"))
        .map(sa_of)
        .collect();
    assert_eq!(
        after,
        vec![
            ("ike-sa-established".to_string(), Some(1), None),
            ("child-sa-established".to_string(), Some(2), None),
            ("ike-sa-established".to_string(), Some(3), None),
            ("ike-sa-established".to_string(), Some(4), None),
            ("child-sa-established".to_string(), Some(5), None),
            ("child-sa-established".to_string(), Some(6), None),
        ]
    );
    assert!(
        !events
            .iter()
            .any(|e| time_of(e) >= 1795857937 && e.action().ends_with("-rekeyed"))
    );
    // The new run's SAs are a new generation, so their ids cannot collide
    // with the old run's SAs of the same serial.
    let new_gen: Vec<u64> = events
        .iter()
        .filter(|e| time_of(e) >= 1795857937 && e.action().ends_with("-established"))
        .map(|e| e.libreswan.pluto.generation)
        .collect();
    assert!(new_gen.iter().all(|&g| g == 1));
    assert_schema_valid(&events);
}

fn certoe_events() -> Vec<Event> {
    let dir = root().join("tests/fixtures/certoe-17");
    let mut tracker = Tracker::new(TrackerConfig::new("road"));
    let mut events = Vec::new();
    for n in [2, 3, 5, 7, 9, 10] {
        let path = dir.join(format!("certoe-17-ike-replace-initiator__road__{n}.txt"));
        events.extend(tracker.observe(&snapshot(&path, 1000 + n)));
    }
    events
}

#[test]
fn certoe_17_ike_replace_sequence_is_a_chain_of_child_rekeys() {
    let events = certoe_events();
    let got: Vec<(String, Option<u64>, Option<u64>)> = events.iter().map(sa_of).collect();
    let want: Vec<(&str, Option<u64>, Option<u64>)> = vec![
        ("child-sa-established", Some(2), None),
        ("tunnel-up", Some(2), None),
        ("child-sa-rekeyed", Some(6), Some(2)),
        ("child-sa-rekeyed", Some(8), Some(6)),
        ("child-sa-expired", Some(2), None),
        ("child-sa-rekeyed", Some(10), Some(8)),
        ("child-sa-rekeyed", Some(13), Some(10)),
        ("child-sa-expired", Some(6), None),
        ("child-sa-expired", Some(8), None),
        ("child-sa-rekeyed", Some(15), Some(13)),
        ("child-sa-expired", Some(10), None),
        ("child-sa-rekeyed", Some(18), Some(15)),
        ("child-sa-expired", Some(13), None),
        ("child-sa-rekeyed", Some(24), Some(18)),
        ("child-sa-expired", Some(15), None),
        ("child-sa-expired", Some(18), None),
    ];
    let want: Vec<(String, Option<u64>, Option<u64>)> = want
        .into_iter()
        .map(|(a, s, r)| (a.to_string(), s, r))
        .collect();
    assert_eq!(got, want);
    let by: Vec<Option<u64>> = events
        .iter()
        .filter(|e| e.action() == "child-sa-expired")
        .map(|e| e.libreswan.sa.as_ref().unwrap().replaced_by)
        .collect();
    assert_eq!(
        by,
        vec![
            Some(6),
            Some(8),
            Some(10),
            Some(13),
            Some(15),
            Some(18),
            Some(24)
        ]
    );
    let conn = events[0].libreswan.connection.as_ref().unwrap();
    assert_eq!(conn.name, "private#192.1.2.0/24");
    assert_eq!(conn.instance.as_deref(), Some("[1]"));
    assert_schema_valid(&events);
}

#[test]
fn pluto_unreachable_is_reported_once_per_outage_and_reachable_when_back() {
    let dir = root().join("examples/lab-4.10/series");
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    tracker.observe(&snapshot(&dir.join("status-1795857662.txt"), 1795857662));
    let first = tracker.observe_unreachable(1795857667, "connect: No such file or directory");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].action(), "pluto-unreachable");
    assert_eq!(
        first[0].event.reason.as_deref(),
        Some("connect: No such file or directory")
    );
    assert!(tracker.observe_unreachable(1795857672, "again").is_empty());
    let back = tracker.observe(&snapshot(&dir.join("status-1795857677.txt"), 1795857677));
    assert_eq!(back.first().map(|e| e.action()), Some("pluto-reachable"));
    assert_eq!(back.len(), 1, "nothing else changed: {back:?}");
    let second = tracker.observe_unreachable(1795857682, "timeout");
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id(), first[0].id());
    let mut all = first;
    all.extend(back);
    all.extend(second);
    assert_schema_valid(&all);
}

#[test]
fn traffic_metrics_come_at_the_configured_interval_for_up_tunnels_only() {
    let mut config = TrackerConfig::new("west");
    config.traffic_interval_s = Some(60);
    let events = replay(&lab_inputs(true), config);
    let traffic: Vec<(i64, &str)> = events
        .iter()
        .filter(|e| e.action() == "traffic")
        .map(|e| (time_of(e), conn_of(e).unwrap()))
        .collect();
    let times: BTreeSet<i64> = traffic.iter().map(|t| t.0).collect();
    assert_eq!(
        times,
        [1795857662, 1795857722, 1795857782, 1795857842, 1795857902]
            .into_iter()
            .collect()
    );
    assert!(
        traffic
            .iter()
            .all(|(_, c)| ["v1-tun", "v2-short", "v2-tun"].contains(c))
    );
    assert!(
        events
            .iter()
            .filter(|e| e.action() == "traffic")
            .all(|e| e.event.kind == swantrail::event::EventKind::Metric)
    );
}

#[test]
fn negotiation_stall_is_reported_once_per_episode_after_the_configured_time() {
    let mut config = TrackerConfig::new("west");
    config.stalled_after_s = 60;
    let events = replay(&lab_inputs(true), config);
    let stalls: Vec<(i64, &str)> = events
        .iter()
        .filter(|e| e.action() == "negotiation-stalled")
        .map(|e| (time_of(e), conn_of(e).unwrap()))
        .collect();
    // Both dead peers negotiate from the first dump (1795857662) on.
    assert_eq!(
        stalls,
        vec![(1795857722, "v1-deadpeer"), (1795857722, "v2-deadpeer")]
    );
}

/// A 5.4 `showstates` dump at `at`, from state lines in the 5.4 dialect
/// (docs/libreswan-format.md §6.1, E8; as a live 5.4 pluto prints them).
fn showstates_54(at: i64, lines: &[&str]) -> swantrail::Snapshot {
    let mut text = lines.join("\n");
    text.push('\n');
    let mut snap = swantrail::status::parse_as(&text, swantrail::snapshot::OutputKind::ShowStates);
    snap.taken_at = Some(at);
    snap
}

#[test]
fn a_reconnect_within_one_poll_is_new_sas_not_a_rekey() {
    // libreswan 5.x revives a connection at once under new serials after
    // the peer deletes it (§14.1): a new IKE SA and a new Child SA, while
    // the old ones and their far-off timers are gone.
    let mut tracker = Tracker::new(TrackerConfig::new("gw"));
    tracker.observe(&showstates_54(
        1000,
        &[
            "#1: \"east-west\":500 established IKE SA; REKEY in 27000s; REPLACE in 28000s; newest; idle;",
            "#2: \"east-west\":500 established Child SA; REKEY in 27000s; REPLACE in 28000s; newest; eroute owner; IKE SA #1; idle;",
        ],
    ));
    let revived = tracker.observe(&showstates_54(
        1010,
        &[
            "#3: \"east-west\":500 established IKE SA; REKEY in 27000s; REPLACE in 28000s; newest; idle;",
            "#4: \"east-west\":500 established Child SA; REKEY in 27000s; REPLACE in 28000s; newest; eroute owner; IKE SA #3; idle;",
        ],
    ));
    let actions: BTreeSet<(String, u64)> = revived
        .iter()
        .filter_map(|e| {
            e.libreswan
                .sa
                .as_ref()
                .map(|s| (e.action().to_string(), s.serial))
        })
        .collect();
    let expected: BTreeSet<(String, u64)> = [
        ("ike-sa-established", 3),
        ("child-sa-established", 4),
        ("ike-sa-deleted", 1),
        ("child-sa-deleted", 2),
    ]
    .into_iter()
    .map(|(a, s)| (a.to_string(), s))
    .collect();
    assert_eq!(actions, expected);
    assert!(revived.iter().all(|e| !e.action().ends_with("-rekeyed")));
    // A real rekey afterwards, on the same IKE SA, is still a rekey.
    let rekeyed = tracker.observe(&showstates_54(
        1020,
        &[
            "#3: \"east-west\":500 established IKE SA; REKEY in 26980s; REPLACE in 27980s; newest; idle;",
            "#5: \"east-west\":500 established Child SA; REKEY in 27000s; REPLACE in 28000s; newest; eroute owner; IKE SA #3; idle;",
        ],
    ));
    let rekey = rekeyed
        .iter()
        .find(|e| e.action() == "child-sa-rekeyed")
        .expect("a rekey");
    assert_eq!(
        rekey.libreswan.sa.as_ref().map(|s| (s.serial, s.replaces)),
        Some((5, Some(4)))
    );
}

#[test]
fn an_ike_rekey_and_a_child_rekey_in_one_poll_are_both_rekeys() {
    // Both were due: the old IKE SA's REKEY time passed within the poll.
    let mut tracker = Tracker::new(TrackerConfig::new("gw"));
    tracker.observe(&showstates_54(
        1000,
        &[
            "#1: \"east-west\":500 established IKE SA; REKEY in 5s; REPLACE in 60s; newest; idle;",
            "#2: \"east-west\":500 established Child SA; REKEY in 4s; REPLACE in 50s; newest; eroute owner; IKE SA #1; idle;",
        ],
    ));
    let events = tracker.observe(&showstates_54(
        1010,
        &[
            "#3: \"east-west\":500 established IKE SA; REKEY in 95s; REPLACE in 120s; newest; idle;",
            "#4: \"east-west\":500 established Child SA; REKEY in 40s; REPLACE in 50s; newest; eroute owner; IKE SA #3; idle;",
        ],
    ));
    let rekeys: BTreeSet<(String, u64, Option<u64>)> = events
        .iter()
        .filter(|e| e.action().ends_with("-rekeyed"))
        .filter_map(|e| {
            e.libreswan
                .sa
                .as_ref()
                .map(|s| (e.action().to_string(), s.serial, s.replaces))
        })
        .collect();
    assert_eq!(
        rekeys,
        [
            ("ike-sa-rekeyed".to_string(), 3, Some(1)),
            ("child-sa-rekeyed".to_string(), 4, Some(2))
        ]
        .into_iter()
        .collect()
    );
}

/// The lab's real 4.10 status and trafficstatus of one moment, with the
/// trafficstatus text passed through `edit`.
fn lab_moment(at: i64, edit: impl Fn(&str) -> String) -> swantrail::Snapshot {
    let dir = root().join("tests/fixtures/lab-4.10");
    let status = std::fs::read_to_string(dir.join("status.txt")).unwrap();
    let traffic = edit(&std::fs::read_to_string(dir.join("trafficstatus.txt")).unwrap());
    let mut snap = swantrail::parse(&status);
    snap.merge(swantrail::parse(&traffic));
    snap.taken_at = Some(at);
    snap
}

#[test]
fn an_add_time_that_moves_by_a_second_is_not_a_pluto_restart() {
    // pluto prints the kernel add time of whichever direction it queried
    // last; on a slow responder the two differ by a second or more. Seen
    // on a real 4.10 responder polled every 2 s: the same SA's add_time
    // alternated between two values.
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    tracker.observe(&lab_moment(1795857905, |t| t.to_string()));
    let moved = tracker.observe(&lab_moment(1795857907, |t| {
        t.replace("add_time=1795857886", "add_time=1795857887")
    }));
    assert!(
        moved.is_empty(),
        "{:?}",
        moved.iter().map(|e| e.action()).collect::<Vec<_>>()
    );
    // trafficstatus alone (no SPIs to go by) is no more fooled.
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let traffic = |at: i64, edit: &dyn Fn(&str) -> String| {
        let text = edit(
            &std::fs::read_to_string(root().join("tests/fixtures/lab-4.10/trafficstatus.txt"))
                .unwrap(),
        );
        let mut snap = swantrail::parse(&text);
        snap.taken_at = Some(at);
        snap
    };
    tracker.observe(&traffic(1795857905, &|t| t.to_string()));
    let moved = tracker.observe(&traffic(1795857907, &|t| {
        t.replace("add_time=1795857886", "add_time=1795857887")
    }));
    assert!(
        moved.is_empty(),
        "{:?}",
        moved.iter().map(|e| e.action()).collect::<Vec<_>>()
    );
    // But the same serials with add times minutes apart are new SAs of a
    // new pluto run.
    let restarted = tracker.observe(&traffic(1795858500, &|t| {
        t.replace("add_time=179585", "add_time=179586")
    }));
    assert_eq!(
        restarted
            .iter()
            .filter(|e| e.action() == "pluto-restarted")
            .count(),
        1
    );
}

#[test]
fn pluto_back_after_an_outage_without_any_known_sa_is_a_restart() {
    // Seen on a real 4.10 peer killed and started again under a running
    // daemon: the first answer of the new pluto lists none of the old SAs.
    let mut tracker = Tracker::new(TrackerConfig::new("east"));
    tracker.observe(&showstates_54(
        1000,
        &[
            "#21: \"east-west\":500 established IKE SA; REKEY in 27000s; REPLACE in 28000s; newest; idle;",
            "#22: \"east-west\":500 established Child SA; REKEY in 27000s; REPLACE in 28000s; newest; eroute owner; IKE SA #21; idle;",
        ],
    ));
    assert_eq!(
        tracker.observe_unreachable(1010, "pluto-not-running").len(),
        1
    );
    let back = tracker.observe(&showstates_54(1030, &[]));
    let actions: Vec<&str> = back.iter().map(|e| e.action()).collect();
    assert_eq!(actions[..2], ["pluto-reachable", "pluto-restarted"]);
    assert!(
        back.iter()
            .filter(|e| e.libreswan.sa.is_some())
            .all(|e| e.event.reason.as_deref() == Some("pluto-restart"))
    );
    assert!(
        back.iter()
            .any(|e| e.action() == "tunnel-down"
                && e.event.reason.as_deref() == Some("pluto-restart"))
    );
    // A pluto that only stopped answering still lists its SAs: no restart.
    let mut tracker = Tracker::new(TrackerConfig::new("east"));
    let listing = [
        "#21: \"east-west\":500 established IKE SA; REKEY in 27000s; REPLACE in 28000s; newest; idle;",
        "#22: \"east-west\":500 established Child SA; REKEY in 27000s; REPLACE in 28000s; newest; eroute owner; IKE SA #21; idle;",
    ];
    tracker.observe(&showstates_54(1000, &listing));
    tracker.observe_unreachable(1010, "command-timed-out");
    let back = tracker.observe(&showstates_54(1030, &listing));
    assert_eq!(
        back.iter().map(|e| e.action()).collect::<Vec<_>>(),
        ["pluto-reachable"]
    );
}

#[test]
fn a_responder_sa_that_switches_connection_is_reported_on_its_final_one() {
    // Real 4.10 responder (east's pluto log): `"v2-tun" #3: switched to
    // "v2-short"` after IKE_AUTH; IKE_SA_INIT had picked the first
    // connection for the host pair.
    let at = |t: i64, text: &str| {
        let mut s = swantrail::status::parse_as(text, swantrail::snapshot::OutputKind::ShowStates);
        s.taken_at = Some(t);
        s
    };
    let mut tracker = Tracker::new(TrackerConfig::new("east"));
    tracker.observe(&at(100, ""));
    tracker.observe(&at(
        102,
        "000 #3: \"v2-tun\":500 STATE_V2_PARENT_R1 (sent IKE_SA_INIT reply); DISCARD in 10s; idle;\n",
    ));
    let events = tracker.observe(&at(
        104,
        "000 #3: \"v2-short\":500 STATE_V2_ESTABLISHED_IKE_SA (established IKE SA); REKEY in 40s; REPLACE in 60s; newest; idle;\n\
000 #5: \"v2-short\":500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); REKEY in 30s; REPLACE in 45s; newest; eroute owner; IKE SA #3; idle;\n\
000 #5: \"v2-short\" esp.cf23db7@192.0.2.1 esp.7b1319c8@192.0.2.2 tun.0@192.0.2.1 tun.0@192.0.2.2 Traffic: ESPin=0B ESPout=0B ESPmax=2^63B \n",
    ));
    let ike = events
        .iter()
        .find(|e| e.action() == "ike-sa-established")
        .expect("IKE SA established");
    assert_eq!(conn_of(ike), Some("v2-short"));
    assert!(
        events
            .iter()
            .any(|e| e.action() == "tunnel-up" && conn_of(e) == Some("v2-short"))
    );
    assert!(
        events.iter().all(|e| conn_of(e) != Some("v2-tun")),
        "nothing more happened on v2-tun"
    );
}

#[test]
fn connections_reloaded_by_a_restarted_pluto_get_ids_of_their_own() {
    // A restarted 4.10 pluto answers before it has loaded its connections,
    // then loads them under the same `$N` serials.
    let dir = root().join("tests/fixtures/lab-4.10");
    let full = std::fs::read_to_string(dir.join("status.txt")).unwrap();
    let no_sas: String = full
        .lines()
        .filter(|l| !l.starts_with("000 #"))
        .map(|l| format!("{l}\n"))
        .collect();
    let no_conns: String = no_sas
        .lines()
        .filter(|l| !l.starts_with("000 \""))
        .map(|l| format!("{l}\n"))
        .collect();
    let at = |t: i64, text: &str| {
        let mut s = swantrail::parse(text);
        assert!(s.is_complete());
        s.taken_at = Some(t);
        s
    };
    let mut tracker = Tracker::new(TrackerConfig::new("east"));
    let mut events = tracker.observe(&at(100, &full));
    events.extend(tracker.observe_unreachable(110, "pluto-not-running"));
    events.extend(tracker.observe(&at(130, &no_conns)));
    events.extend(tracker.observe(&at(132, &no_sas)));
    let removed: Vec<&Event> = events
        .iter()
        .filter(|e| e.action() == "connection-removed")
        .collect();
    assert_eq!(removed.len(), 5);
    assert!(
        removed
            .iter()
            .all(|e| e.event.reason.as_deref() == Some("pluto-restart"))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action() == "connection-added")
            .count(),
        10
    );
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), events.len(), "every change has an id of its own");
    // Restarted between two polls, unseen: the same `$N` serials must
    // still not repeat the first load's ids.
    let mut tracker = Tracker::new(TrackerConfig::new("east"));
    let mut events = tracker.observe(&at(100, &full));
    events.extend(tracker.observe(&at(130, &no_conns)));
    events.extend(tracker.observe(&at(132, &no_sas)));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action() == "connection-added")
            .count(),
        10
    );
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), events.len(), "every change has an id of its own");
}

#[test]
fn events_name_the_pluto_version_the_status_preamble_gives() {
    // The configuration names none; the lab's 4.10 status says
    // `pluto_version=4.10`. A trafficstatus dump, which names none, keeps it.
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let events = tracker.observe(&lab_moment(1795857905, |t| t.to_string()));
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.observer.version.as_deref() == Some("4.10"))
    );
    let mut config = TrackerConfig::new("west");
    config.observer_version = Some("4.10-2+deb12u1".to_string());
    let mut tracker = Tracker::new(config);
    let events = tracker.observe(&lab_moment(1795857905, |t| t.to_string()));
    assert!(
        events
            .iter()
            .all(|e| e.observer.version.as_deref() == Some("4.10-2+deb12u1"))
    );
}

#[test]
fn an_ikev1_sa_gone_past_its_replace_before_any_expire_was_listed_was_deleted() {
    // Real 4.10 lines (lab, v1-tun): IKEv1's REPLACE starts a replacement;
    // its life ends at EXPIRE, which pluto lists from the REPLACE on
    // (`EXPIRE in 27s`, lab 4.10). Gone past REPLACE before any listing
    // showed that EXPIRE, with the ISAKMP SA beside it or without, the
    // IPsec SA was deleted (a DPD hold, a terminate; gateway lab 4.10:
    // `v1a` #359, `REPLACE in 2s`, terminated 4 s later beside its shared
    // ISAKMP SA). Gone after a listing showed its EXPIRE come, it ran out.
    let before = [
        "000 #30: \"v1-tun\":500 STATE_MAIN_I4 (IKE SA established); REPLACE in 81s; newest; lastdpd=4s(seq in:17183 out:17182); idle;",
        "000 #29: \"v1-tun\":500 STATE_QUICK_I2 (IPsec SA established); REPLACE in 11s; newest; eroute owner; ISAKMP SA #30; idle;",
    ];
    let expiring = [
        before[0],
        "000 #29: \"v1-tun\":500 STATE_QUICK_I2 (IPsec SA established); EXPIRE in 3s; eroute owner; ISAKMP SA #30; idle;",
    ];
    let end_of_29 = |listings: &[&[&str]]| {
        let mut tracker = Tracker::new(TrackerConfig::new("west"));
        let mut events = Vec::new();
        for (k, listing) in listings.iter().enumerate() {
            events.extend(tracker.observe(&showstates_54(1000 + 15 * k as i64, listing)));
        }
        events
            .into_iter()
            .filter(|e| e.event.reason.as_deref() != Some("observed-at-start"))
            .find(|e| e.libreswan.sa.as_ref().map(|s| s.serial) == Some(29))
            .map(|e| (e.action().to_string(), e.event.reason.clone()))
    };
    let deleted = Some(("child-sa-deleted".to_string(), Some("deleted".to_string())));
    assert_eq!(end_of_29(&[&before, &[]]), deleted);
    assert_eq!(end_of_29(&[&before, &before[..1]]), deleted);
    assert_eq!(
        end_of_29(&[&before, &expiring, &before[..1]]),
        Some(("child-sa-expired".to_string(), Some("expired".to_string())))
    );
}

/// A daemon writes an observation's events out as the tracker makes them
/// (`observe_spilling`): they must be exactly `observe`'s, in its order,
/// through a first poll's inventory, churn and a pluto restart; and with
/// audit records expected (whose fusion rewrites a whole observation's
/// events at its end) none is handed out early.
#[test]
fn events_handed_out_as_made_are_the_events_of_observe() {
    use swantrail::synth::{Churn, Dialect, Output, Series};
    let snapshot = |series: &Series, at: i64| {
        let text = series.gateway().dump(Dialect::V5_4, Output::Status).text;
        let mut snap = swantrail::status::parse(&text);
        snap.taken_at = Some(at);
        snap
    };
    let mut series = Series::new(1500, Churn::even(0.05));
    let mut snaps = Vec::new();
    for step in 0..4 {
        snaps.push(snapshot(&series, 1_800_000_000 + step * 10));
        series.advance();
    }
    // A new pluto: serials from 1 again, every SA a new one.
    snaps.push(snapshot(
        &Series::new(1500, Churn::even(0.05)),
        1_800_000_100,
    ));
    for audit in [false, true] {
        let mut whole = Tracker::new(TrackerConfig::new("gw"));
        let mut spilling = Tracker::new(TrackerConfig::new("gw"));
        whole.expect_linux_audit_records(audit);
        spilling.expect_linux_audit_records(audit);
        let mut most_spilled = 0;
        for snap in &snaps {
            let expected: Vec<String> = whole
                .observe(snap)
                .iter()
                .map(Event::to_json_line)
                .collect();
            let mut got = Vec::new();
            let rest = spilling
                .observe_spilling(&swantrail::listing::Listing::of(snap), &mut |e| {
                    got.push(e.to_json_line())
                });
            most_spilled = most_spilled.max(got.len());
            got.extend(rest.iter().map(Event::to_json_line));
            assert_eq!(got.len(), expected.len(), "audit {audit}");
            assert!(got == expected, "audit {audit}: the events differ");
        }
        if audit {
            assert_eq!(most_spilled, 0, "fused events are handed out whole");
        } else {
            // The inventory (three events per tunnel) and the restart go
            // out as made.
            assert!(most_spilled >= 4000, "{most_spilled} handed out early");
        }
    }
}
