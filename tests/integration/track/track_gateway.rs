//! The tracker's defects a busy-gateway lab run exposed (issue 26, the
//! bundled `examples/lab-4.10-gateway/`), each pinned on the real listings
//! (and, where the fusion is at stake, pluto's real audit records) of
//! that run, trimmed to the ticks that matter in `tests/fixtures/lab-gateway-*/`.
//! What each test expects is what west's pluto log says happened.

use crate::support::{root, snapshot};

use std::collections::BTreeMap;
use std::path::PathBuf;

use swantrail::event::Event;
use swantrail::source::replay::{self, AuditFeed, PlutoLogFeed, ReplayStep};
use swantrail::track::{Tracker, TrackerConfig};

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// One tick of a fixture series: a listing (`--status`, or `--status`
/// and `--trafficstatus` of the same poll, as a daemon polls), a poll
/// pluto did not answer, or the daemon's stop (SIGTERM) at that
/// millisecond, after which no tick follows.
enum Tick<'a> {
    Listing(i64, &'a str),
    Listings(i64, Vec<String>),
    Unreachable(i64),
    Stop(i64),
}

/// The `--status` and `--trafficstatus` of the poll at `at`, as a daemon
/// polling both sees them.
fn both(at: i64) -> Tick<'static> {
    Tick::Listings(
        at,
        vec![
            format!("status-{at}.txt"),
            format!("trafficstatus-{at}.txt"),
        ],
    )
}

/// What a fixture's listings are fused with, as a daemon's other sources
/// (or `swantrail replay --audit-log` / `--pluto-log`) feed them.
#[derive(Clone, Copy, PartialEq)]
enum Fused {
    No,
    /// The fixture's `audit.log`.
    LinuxAudit,
    /// The fixture's `west-pluto.log`.
    PlutoLog,
}

/// Feed the ticks to a fresh tracker, fused as `fused` says; all events.
fn track(dir: &str, ticks: &[Tick<'_>], fused: Fused) -> Vec<Event> {
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    tracker.expect_linux_audit_records(fused != Fused::No);
    let mut audit = (fused == Fused::LinuxAudit)
        .then(|| AuditFeed::read(&fixture(dir).join("audit.log")).unwrap());
    let first = ticks.iter().find_map(|t| match t {
        Tick::Listing(at, _) | Tick::Listings(at, _) => Some(*at),
        Tick::Unreachable(_) | Tick::Stop(_) => None,
    });
    let mut log = (fused == Fused::PlutoLog).then(|| {
        PlutoLogFeed::read(&fixture(dir).join("west-pluto.log"), first.unwrap_or(0)).unwrap()
    });
    let mut events = Vec::new();
    for tick in ticks {
        let at = match tick {
            Tick::Unreachable(at) => {
                events.extend(tracker.observe_unreachable(*at, "pluto is not running"));
                continue;
            }
            Tick::Stop(at_ms) => {
                let at_us = at_ms.saturating_mul(1000);
                // What the log reader had read by then (the stop of a
                // daemon fused with the audit records is not pinned here).
                if let Some(feed) = log.as_mut() {
                    tracker.ingest_pluto_log(feed.before_us(at_us), None);
                }
                events.extend(tracker.release_at_stop(at_ms.div_euclid(1000)));
                return events;
            }
            Tick::Listing(at, _) | Tick::Listings(at, _) => *at,
        };
        if let Some(feed) = audit.as_mut() {
            tracker.ingest_linux_audit_records(feed.until(at));
        }
        if let Some(feed) = log.as_mut() {
            tracker.ingest_pluto_log(feed.until(at), None);
        }
        let snap = match tick {
            Tick::Listing(_, file) => snapshot(&fixture(dir).join(file), at),
            Tick::Listings(_, files) => replay::load_step(&ReplayStep {
                taken_at: at,
                files: files.iter().map(|f| fixture(dir).join(f)).collect(),
            })
            .unwrap(),
            Tick::Unreachable(_) | Tick::Stop(_) => continue,
        };
        events.extend(tracker.observe(&snap));
    }
    events.extend(tracker.release_held());
    events
}

/// (action, reason, @timestamp) of every event about `serial`, in order.
fn about(events: &[Event], serial: u64) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| {
            e.libreswan
                .sa
                .as_ref()
                .is_some_and(|sa| sa.serial == serial)
        })
        .map(|e| {
            (
                e.action().to_string(),
                e.event.reason.clone().unwrap_or_default(),
                e.timestamp.clone(),
            )
        })
        .collect()
}

/// The events of `serial` whose action starts with `kind` (`ike-sa-`,
/// `child-sa-`), but for the start-up inventory's: what the tracker
/// decided happened to it.
fn changes<'a>(events: &'a [Event], serial: u64, kind: &'a str) -> impl Iterator<Item = &'a Event> {
    events
        .iter()
        .filter(move |e| {
            e.libreswan
                .sa
                .as_ref()
                .is_some_and(|sa| sa.serial == serial)
        })
        .filter(move |e| e.action().starts_with(kind))
        .filter(|e| e.event.reason.as_deref() != Some("observed-at-start"))
}

/// [`changes`] of `serial` whose action starts with `kind`, each as
/// (action, reason): what the tracker decided happened to it.
fn decided(events: &[Event], serial: u64, kind: &str) -> Vec<(String, String)> {
    changes(events, serial, kind)
        .map(|e| {
            (
                e.action().to_string(),
                e.event.reason.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// (action, reason, replaces, replaced_by) of an SA event.
type Linked = (String, String, Option<u64>, Option<u64>);

/// [`changes`] of `serial` whose action starts with `kind`, each as what
/// it says happened and which SAs it links.
fn linked(events: &[Event], serial: u64, kind: &str) -> Vec<Linked> {
    changes(events, serial, kind)
        .map(|e| {
            let sa = e.libreswan.sa.as_ref();
            (
                e.action().to_string(),
                e.event.reason.clone().unwrap_or_default(),
                sa.and_then(|sa| sa.replaces),
                sa.and_then(|sa| sa.replaced_by),
            )
        })
        .collect()
}

fn assert_one_content_per_id(events: &[Event]) {
    let mut by_id: BTreeMap<&str, &Event> = BTreeMap::new();
    for e in events {
        if let Some(first) = by_id.insert(e.id(), e) {
            panic!("event id {} twice:\n{first:?}\n{e:?}", e.id());
        }
    }
}

/// West's pluto restarted with `v2-deadpeer` #616 half-open: listed in
/// `STATE_V2_PARENT_I1` at 07:11:29, deleted by the shutdown at
/// 07:11:35.067 (pluto's log: `deleting state (STATE_V2_PARENT_I1) ...
/// NOT sending notification`, after `Pluto is shutting down`), its failed
/// start recorded at 07:11:35.059; the next listing is the new pluto's.
fn restart_with_a_half_open_negotiation(fused: Fused) -> Vec<Event> {
    track(
        "lab-gateway-restart",
        &[
            Tick::Listing(1796627489, "status-1796627489.txt"),
            Tick::Unreachable(1796627494),
            Tick::Unreachable(1796627522),
            Tick::Listing(1796627526, "status-1796627526.txt"),
        ],
        fused,
    )
}

#[test]
fn a_negotiation_ended_by_pluto_s_shutdown_is_one_event_at_its_record_s_time() {
    let events = restart_with_a_half_open_negotiation(Fused::LinuxAudit);
    assert_one_content_per_id(&events);
    assert_eq!(
        about(&events, 616)
            .into_iter()
            .filter(|(a, _, _)| a == "negotiation-failed")
            .collect::<Vec<_>>(),
        vec![(
            "negotiation-failed".to_string(),
            "pluto-restart".to_string(),
            "2026-12-07T07:11:35.059Z".to_string()
        )]
    );
}

#[test]
fn a_child_sa_pluto_deleted_as_stale_just_before_its_shutdown_was_deleted() {
    // pluto's log, 07:11:33.38: `"g14" #548: not rekey stale Child SA
    // #548; as already got a newer #604`, `deleting established Child
    // SA`; 0.3 s later `Pluto is shutting down`, which deleted #604. The
    // listing of 07:11:29 shows #548 with `REKEY in 3s` beside #604; the
    // poll of 07:11:34 found pluto gone. The same for g03, g09, g12, g20
    // and g11.
    let events = restart_with_a_half_open_negotiation(Fused::No);
    let end = |serial| -> Vec<(String, String)> {
        about(&events, serial)
            .into_iter()
            .filter(|(a, _, _)| a.starts_with("child-sa-") && a != "child-sa-established")
            .map(|(a, r, _)| (a, r))
            .collect()
    };
    for serial in [548, 550, 553, 567, 577, 579] {
        assert_eq!(
            end(serial),
            [("child-sa-deleted".to_string(), "deleted".to_string())],
            "#{serial}"
        );
    }
    assert_eq!(
        end(604),
        [("child-sa-deleted".to_string(), "pluto-restart".to_string())]
    );
}

#[test]
fn without_records_the_same_negotiation_ends_with_pluto_at_the_next_listing() {
    let events = restart_with_a_half_open_negotiation(Fused::No);
    assert_one_content_per_id(&events);
    assert_eq!(
        about(&events, 616)
            .into_iter()
            .filter(|(a, _, _)| a == "negotiation-failed")
            .collect::<Vec<_>>(),
        vec![(
            "negotiation-failed".to_string(),
            "pluto-restart".to_string(),
            "2026-12-07T07:12:06Z".to_string()
        )]
    );
}

/// East's pluto dead and back: west's IKE SAs in `IKE_AUTH`, each beside
/// its `STATE_V2_IKE_AUTH_CHILD_I0` placeholder (#360 to #384); four came
/// up, the others went with their IKE SAs.
fn placeholders_while_the_peer_is_dead(fused: Fused) -> Vec<Event> {
    track(
        "lab-gateway-peer-dead",
        &[
            Tick::Listing(1796627350, "status-1796627350.txt"),
            Tick::Listing(1796627354, "status-1796627354.txt"),
            Tick::Listing(1796627369, "status-1796627369.txt"),
            Tick::Listing(1796627375, "status-1796627375.txt"),
        ],
        fused,
    )
}

#[test]
fn an_ike_auth_placeholder_starts_and_fails_no_negotiation_of_its_own() {
    let events = placeholders_while_the_peer_is_dead(Fused::No);
    let never_logged = (361..=368).chain(373..=384);
    for serial in never_logged {
        assert_eq!(about(&events, serial), vec![], "#{serial}");
    }
    // Their IKE SAs' negotiations have their own events: g03's IKE SA #341
    // timed out in IKE_AUTH (pluto: `deleting state (STATE_V2_PARENT_I2)`),
    // and pluto retried at once.
    assert!(
        about(&events, 341)
            .iter()
            .any(|(a, r, _)| a == "negotiation-failed" && r == "retried"),
        "{:?}",
        about(&events, 341)
    );
    // A placeholder that came up is a Child SA like any other (pluto:
    // `"g01" #369: initiator established Child SA using #344`).
    for serial in 369..=372 {
        assert_eq!(
            about(&events, serial)
                .into_iter()
                .map(|(a, _, _)| a)
                .filter(|a| !a.starts_with("tunnel-"))
                .collect::<Vec<_>>(),
            vec!["child-sa-established".to_string()],
            "#{serial}"
        );
    }
}

#[test]
fn the_failed_start_pluto_records_for_a_placeholder_reports_nothing_either() {
    // pluto writes `op=start ... satype=ipsec-policy ... res=failed` for
    // each placeholder when its IKE SA fails (`audit.log`: #366 at
    // 07:09:30.078, a second after the last listing that showed it).
    let records =
        std::fs::read_to_string(fixture("lab-gateway-peer-dead").join("audit.log")).unwrap();
    assert!(records.contains("connstate=366, satype=ipsec-policy"));
    let events = placeholders_while_the_peer_is_dead(Fused::LinuxAudit);
    for serial in (361..=368).chain(373..=384) {
        assert_eq!(about(&events, serial), vec![], "#{serial}");
    }
}

#[test]
fn a_quick_mode_reply_never_confirmed_is_a_failed_negotiation() {
    let events = track(
        "lab-gateway-quick-r1",
        &[
            Tick::Listing(1796627399, "status-1796627399.txt"),
            Tick::Listing(1796627404, "status-1796627404.txt"),
            Tick::Listing(1796627414, "status-1796627414.txt"),
            Tick::Listing(1796627419, "status-1796627419.txt"),
            Tick::Listing(1796627424, "status-1796627424.txt"),
        ],
        Fused::No,
    );
    // pluto: `deleting state (STATE_QUICK_R1)` after `15 second timeout
    // exceeded`, no `IPsec SA established`.
    for (serial, started, failed) in [(464, 1796627404, 1796627419), (466, 1796627414, 1796627424)]
    {
        let of: Vec<(String, String)> = about(&events, serial)
            .into_iter()
            .filter(|(a, _, _)| !a.starts_with("tunnel-"))
            .map(|(a, _, at)| (a, at))
            .collect();
        let at = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        assert_eq!(
            of,
            vec![
                ("negotiation-started".to_string(), at(started)),
                ("negotiation-failed".to_string(), at(failed)),
            ],
            "#{serial}"
        );
    }
}

#[test]
fn an_sa_only_the_trafficstatus_of_a_poll_shows_is_judged_by_its_state_at_the_next() {
    // The poll of 07:09:59: pluto answered `--status` before east's Quick
    // Mode reached it and `--trafficstatus` 0.6 s into it (`add_time=
    // 1796627400`): #464 is only in the second. Its state (`STATE_QUICK_R1`)
    // comes with the next poll, and pluto never established it.
    let events = track(
        "lab-gateway-quick-r1",
        &[1796627399, 1796627404, 1796627414, 1796627419, 1796627424].map(both),
        Fused::No,
    );
    let of: Vec<String> = about(&events, 464)
        .into_iter()
        .map(|(a, _, _)| a)
        .filter(|a| !a.starts_with("tunnel-"))
        .collect();
    assert_eq!(of, ["negotiation-started", "negotiation-failed"]);
}

#[test]
fn a_quick_mode_west_answered_replaces_nothing() {
    // pluto's log: `"v1b" #583: responding to Quick Mode proposal` and
    // `IPsec SA established` at 07:11:16, beside #520, which expired at
    // 07:11:30 (`aged 59.2s`); `"v1a" #586` the same at 07:11:21 beside
    // #559. No `to replace`: pluto replaces only with Quick Modes it starts.
    let ticks = [1796627474, 1796627479, 1796627484].map(both);
    let events = track("lab-gateway-v1-responder", &ticks, Fused::No);
    let starts = |serial| -> Vec<(String, Option<u64>)> {
        changes(&events, serial, "child-sa-")
            .map(|e| {
                (
                    e.action().to_string(),
                    e.libreswan.sa.as_ref().and_then(|sa| sa.replaces),
                )
            })
            .collect()
    };
    assert_eq!(starts(583), [("child-sa-established".to_string(), None)]);
    assert_eq!(starts(586), [("child-sa-established".to_string(), None)]);
    assert_eq!(starts(520), []);
    assert_eq!(starts(559), []);
}

/// East deleted the IKE SA `sh1`..`sh3` share (#197, 11 s after a forced
/// rekey of #2) and its three Child SAs; west brought `sh1` up anew as
/// #212. pluto's log: `"sh1" #197: deleting state
/// (STATE_V2_ESTABLISHED_IKE_SA) aged 11.683255s and NOT sending
/// notification`, `deleting IKE SA but connection is supposed to remain
/// up; schedule EVENT_REVIVE_CONNS`, then `"sh1": initiating connection
/// ... which received a Delete/Notify but must remain up`; no `expired`.
fn ike_sa_deleted_by_the_peer(fused: Fused) -> Vec<Event> {
    track(
        "lab-gateway-sh-delete",
        &[1796627219, 1796627224, 1796627229, 1796627234]
            .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")])),
        fused,
    )
}

#[test]
fn an_ike_sa_the_peer_deleted_with_its_child_sas_is_deleted_not_replaced_by_the_next() {
    for fused in [Fused::No, Fused::PlutoLog] {
        let events = ike_sa_deleted_by_the_peer(fused);
        let of = |serial| linked(&events, serial, "ike-sa-");
        let ended: Vec<_> = of(197).into_iter().skip(1).collect();
        assert_eq!(
            ended,
            [(
                "ike-sa-deleted".to_string(),
                "deleted".to_string(),
                None,
                None
            )],
            "{}",
            if fused == Fused::No {
                "snapshots"
            } else {
                "with pluto's log"
            }
        );
        assert_eq!(
            of(212),
            [("ike-sa-established".to_string(), String::new(), None, None)]
        );
        // sh1's Child SA #3 went with #197 (its traffic summary and no
        // delete of its own at 07:07:12.01), and #213 came with #212 at
        // 07:07:13.89, in the same poll window: a new Child SA of sh1, not
        // a rekey of #3.
        let child = |serial| linked(&events, serial, "child-sa-");
        let ended: Vec<_> = child(3)
            .into_iter()
            .filter(|(a, ..)| a != "child-sa-established")
            .collect();
        assert_eq!(
            ended,
            [(
                "child-sa-deleted".to_string(),
                "deleted".to_string(),
                None,
                None
            )],
            "{}",
            if fused == Fused::No {
                "snapshots"
            } else {
                "with pluto's log"
            }
        );
        assert_eq!(
            child(213),
            [(
                "child-sa-established".to_string(),
                String::new(),
                None,
                None
            )]
        );
    }
}

#[test]
fn a_restarted_pluto_that_lists_nothing_yet_does_not_take_the_old_run_s_ids() {
    // pluto's log: `Starting Pluto ... pid:10000` at 07:12:07.2; the
    // listings of 07:12:06 and 07:12:09 show no SA (pluto still loading);
    // g01's #1 and #2 are established at 07:12:11.5 and 07:12:13.2, and
    // listed with g02's #3 and #4 at 07:12:14. A replay of the dumps alone
    // (no failed poll between) finds the restart only there: the new run's
    // SAs are its own, reported once each, never under the old run.
    let events = track(
        "lab-gateway-restart",
        &[1796627489, 1796627526, 1796627529, 1796627534]
            .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")])),
        Fused::PlutoLog,
    );
    let restarted = events
        .iter()
        .position(|e| e.action() == "pluto-restarted")
        .expect("the restart is found");
    let mut starts: Vec<(u64, u64, String)> = events
        .iter()
        .filter(|e| e.action().ends_with("-established"))
        .filter_map(|e| {
            let sa = e.libreswan.sa.as_ref().filter(|sa| sa.serial <= 4)?;
            Some((
                sa.serial,
                e.libreswan.pluto.generation,
                e.action().to_string(),
            ))
        })
        .collect();
    starts.sort();
    assert_eq!(
        starts,
        [
            (1, 1, "ike-sa-established".to_string()),
            (2, 1, "child-sa-established".to_string()),
            (3, 1, "ike-sa-established".to_string()),
            (4, 1, "child-sa-established".to_string()),
        ]
    );
    assert!(
        events[..restarted]
            .iter()
            .all(|e| e.libreswan.sa.as_ref().is_none_or(|sa| sa.serial > 4))
    );
}

#[test]
fn an_isakmp_sa_replaced_before_a_restart_ends_replaced() {
    // pluto's log: `"v1a" #587: IKE SA established` at 07:11:22.89 (its
    // Main Mode started `to replace #332`); #332 listed beside it on its
    // EXPIRE timer until the shutdown deleted both at 07:11:37.98.
    let events = track(
        "lab-gateway-restart",
        &[
            Tick::Listing(1796627479, "status-1796627479.txt"),
            Tick::Listing(1796627484, "status-1796627484.txt"),
            Tick::Listing(1796627489, "status-1796627489.txt"),
            Tick::Unreachable(1796627494),
            Tick::Unreachable(1796627522),
            Tick::Listing(1796627526, "status-1796627526.txt"),
        ],
        Fused::No,
    );
    let ends: Vec<(String, String, Option<u64>)> = events
        .iter()
        .filter(|e| e.libreswan.sa.as_ref().is_some_and(|sa| sa.serial == 332))
        .filter(|e| e.action().starts_with("ike-sa-") && e.action() != "ike-sa-established")
        .map(|e| {
            (
                e.action().to_string(),
                e.event.reason.clone().unwrap_or_default(),
                e.libreswan.sa.as_ref().and_then(|sa| sa.replaced_by),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [(
            "ike-sa-expired".to_string(),
            "replaced".to_string(),
            Some(587)
        )]
    );
}

#[test]
fn a_child_sa_deleted_as_stale_beside_a_new_one_is_deleted_not_replaced() {
    // pluto's log: `"g04" #614: initiating Child SA using IKE SA #535`
    // (a revival pending since the peer's restart), then `initiator
    // established Child SA using #535` (07:11:26.25, no rekey), then
    // `"g04" #540: not rekey stale Child SA #540; as already got a newer
    // #614` and its delete at 07:11:29.31, its REKEY time. The listing of
    // 07:11:24 shows #614 negotiating `STATE_V2_NEW_CHILD_I1 (sent
    // CREATE_CHILD_SA request for new IPsec SA)` beside #540 (`REKEY in
    // 4s`): a new Child SA, which a rekey (`STATE_V2_REKEY_CHILD_I1`)
    // never lists as; the log says it in words.
    for fused in [Fused::No, Fused::PlutoLog] {
        let events = track(
            "lab-gateway-restart",
            &[1796627479, 1796627484, 1796627489]
                .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")])),
            fused,
        );
        /// (action, reason, replaces, replaced_by, end cause) of a Child SA event.
        type ChildEvent = (String, String, Option<u64>, Option<u64>, Option<String>);
        let child = |serial| -> Vec<ChildEvent> {
            changes(&events, serial, "child-sa-")
                .map(|e| {
                    let sa = e.libreswan.sa.as_ref();
                    (
                        e.action().to_string(),
                        e.event.reason.clone().unwrap_or_default(),
                        sa.and_then(|sa| sa.replaces),
                        sa.and_then(|sa| sa.replaced_by),
                        e.libreswan.end.as_ref().map(|end| end.cause.clone()),
                    )
                })
                .collect()
        };
        let cause = (fused == Fused::PlutoLog).then(|| "local-delete".to_string());
        assert_eq!(
            child(540),
            [(
                "child-sa-deleted".to_string(),
                "deleted".to_string(),
                None,
                None,
                cause
            )]
        );
        assert_eq!(
            child(614),
            [(
                "child-sa-established".to_string(),
                String::new(),
                None,
                None,
                None
            )]
        );
    }
}

#[test]
fn with_pluto_s_log_the_peer_s_delete_ends_each_sa_at_its_line_even_one_started_before_the_log() {
    // The log of the fixture begins at 07:06:55, after #3, #4 and #5 were
    // established: only their traffic summaries (07:07:12.01, .22, .62)
    // show them, then #197's `deleting state ... NOT sending
    // notification` (07:07:12.87). A daemon whose log source was added
    // while they were up reads just that.
    let events = ike_sa_deleted_by_the_peer(Fused::PlutoLog);
    let ended = |serial| -> Vec<(String, String, String, Option<String>)> {
        changes(&events, serial, "")
            .filter(|e| e.action().ends_with("-deleted") || e.action().ends_with("-expired"))
            .map(|e| {
                (
                    e.action().to_string(),
                    e.event.reason.clone().unwrap_or_default(),
                    e.timestamp.clone(),
                    e.libreswan.end.as_ref().map(|end| end.cause.clone()),
                )
            })
            .collect()
    };
    let peer = Some("peer-deleted".to_string());
    for (serial, at) in [
        (3, "2026-12-07T07:07:12.011Z"),
        (4, "2026-12-07T07:07:12.219Z"),
        (5, "2026-12-07T07:07:12.623Z"),
    ] {
        assert_eq!(
            ended(serial),
            [(
                "child-sa-deleted".to_string(),
                "deleted".to_string(),
                at.to_string(),
                peer.clone()
            )],
            "#{serial}"
        );
    }
    assert_eq!(
        ended(197),
        [(
            "ike-sa-deleted".to_string(),
            "deleted".to_string(),
            "2026-12-07T07:07:12.870Z".to_string(),
            peer
        )]
    );
}

#[test]
fn child_sas_pluto_adds_beside_live_ones_are_new_and_the_old_ones_deleted_as_stale() {
    // See the fixture's README: after the peer's restart, pluto brought a
    // new Child SA up beside a live one of g03, g18 and g07, and deleted
    // the old one when its REKEY came (`not rekey stale`).
    let events = track(
        "lab-gateway-revival",
        &[1796647117, 1796647122, 1796647128, 1796647132, 1796647137]
            .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")])),
        Fused::No,
    );
    let child = |serial| linked(&events, serial, "child-sa-");
    for (old, new) in [(553, 585), (554, 593), (570, 590)] {
        assert_eq!(
            child(new),
            [(
                "child-sa-established".to_string(),
                String::new(),
                None,
                None
            )],
            "#{new}"
        );
        let ended: Vec<_> = child(old)
            .into_iter()
            .filter(|(a, ..)| a != "child-sa-established")
            .collect();
        assert_eq!(
            ended,
            [(
                "child-sa-deleted".to_string(),
                "deleted".to_string(),
                None,
                None
            )],
            "#{old}"
        );
    }
}

#[test]
fn a_child_sa_first_listed_as_its_ike_sa_s_ike_auth_child_continues_no_sa_of_a_gone_ike_sa() {
    // A daemon polling `--status` then `--trafficstatus` (gateway lab
    // 4.10, another run of this fixture's scenario): east had deleted
    // `sh1`'s IKE SA and its Child SAs; the poll's `--status` listed the
    // new IKE SA in `STATE_V2_PARENT_I2` with its IKE_AUTH child
    // (`STATE_V2_IKE_AUTH_CHILD_I0`, which names no IKE SA), and its
    // `--trafficstatus`, answered a moment later, the Child SA up. The
    // fixture's `status-1796627234-ike-auth.txt` is `status-1796627234.txt`
    // with #212 and #213 edited back to those two state lines (and `sh1`'s
    // newest SAs and eroute to none), beside the run's own
    // `trafficstatus-1796627234.txt`; pluto's log: #213 `initiator
    // established Child SA using #212`, no rekey of #3.
    let mut ticks: Vec<Tick<'_>> = [1796627219, 1796627224, 1796627229]
        .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")]))
        .into_iter()
        .collect();
    ticks.push(Tick::Listings(
        1796627234,
        vec![
            "status-1796627234-ike-auth.txt".to_string(),
            "trafficstatus-1796627234.txt".to_string(),
        ],
    ));
    let events = track("lab-gateway-sh-delete", &ticks, Fused::No);
    let child = |serial| linked(&events, serial, "child-sa-");
    assert_eq!(
        child(213),
        [(
            "child-sa-established".to_string(),
            String::new(),
            None,
            None
        )]
    );
    let ended: Vec<_> = child(3)
        .into_iter()
        .filter(|(a, ..)| a != "child-sa-established")
        .collect();
    assert_eq!(
        ended,
        [(
            "child-sa-deleted".to_string(),
            "deleted".to_string(),
            None,
            None
        )]
    );
}

#[test]
fn a_rekey_beside_a_revival_replaces_the_sa_that_was_up_when_it_began() {
    // See the fixture's README: g01's revival #618 beside #576 (deleted
    // as stale); g10's revival #622 and, meanwhile, #626 rekeying #581;
    // then #622 deleted as stale beside #626.
    let events = track(
        "lab-gateway-revival-rekey",
        &[
            1796656162, 1796656168, 1796656172, 1796656177, 1796656182, 1796656188, 1796656192,
        ]
        .map(|at| Tick::Listings(at, vec![format!("status-{at}.txt")])),
        Fused::No,
    );
    let child = |serial| linked(&events, serial, "child-sa-");
    let ended = |serial| -> Vec<Linked> {
        child(serial)
            .into_iter()
            .filter(|(a, ..)| a != "child-sa-established" && a != "child-sa-rekeyed")
            .collect()
    };
    let new = |serial| -> Vec<Linked> {
        child(serial)
            .into_iter()
            .filter(|(a, ..)| a == "child-sa-established" || a == "child-sa-rekeyed")
            .collect()
    };
    let deleted = [(
        "child-sa-deleted".to_string(),
        "deleted".to_string(),
        None,
        None,
    )];
    for revival in [618, 622] {
        assert_eq!(
            new(revival),
            [(
                "child-sa-established".to_string(),
                String::new(),
                None,
                None
            )],
            "#{revival}"
        );
    }
    assert_eq!(ended(576), deleted, "#576");
    assert_eq!(ended(622), deleted, "#622");
    assert_eq!(
        new(626),
        [(
            "child-sa-rekeyed".to_string(),
            "rekey".to_string(),
            Some(581),
            None
        )]
    );
    assert_eq!(
        ended(581),
        [(
            "child-sa-expired".to_string(),
            "replaced".to_string(),
            None,
            Some(626)
        )]
    );
}

/// `v2-tun` brought up and terminated at once (the small scenario's
/// short-lived phase, the bundled `lab-4.10-audit` run): a poll lists its
/// IKE SA #44 in `IKE_AUTH` beside the placeholder #45, and by the next
/// poll both came up and were deleted (pluto's log: `initiator
/// established Child SA using #44` at 04:59:09.41, `deleting state
/// (STATE_V2_ESTABLISHED_IKE_SA) aged 3.797419s and sending
/// notification` at 04:59:11.14). See the fixture's README.
fn up_and_terminated_after_a_listed_placeholder(fused: Fused) -> Vec<Event> {
    track(
        "lab-4.10-ike-auth-terminated",
        &[
            Tick::Listing(1796187546, "status-1796187546.txt"),
            Tick::Listing(1796187548, "status-1796187548.txt"),
            Tick::Listing(1796187551, "status-1796187551.txt"),
            Tick::Listing(1796187556, "status-1796187556.txt"),
        ],
        fused,
    )
}

#[test]
fn a_child_sa_up_and_deleted_after_its_placeholder_was_listed_is_reported_from_its_records() {
    let events = up_and_terminated_after_a_listed_placeholder(Fused::LinuxAudit);
    assert_one_content_per_id(&events);
    let said = |a: &str, r: &str, t: &str| (a.to_string(), r.to_string(), t.to_string());
    assert_eq!(
        about(&events, 45),
        vec![
            said("child-sa-established", "", "2026-12-02T04:59:09.396Z"),
            said("child-sa-deleted", "deleted", "2026-12-02T04:59:11.136Z"),
        ]
    );
    assert_eq!(
        about(&events, 44),
        vec![
            said("negotiation-started", "", "2026-12-02T04:59:08Z"),
            said("ike-sa-established", "", "2026-12-02T04:59:08.606Z"),
            said("ike-sa-deleted", "deleted", "2026-12-02T04:59:11.136Z"),
        ]
    );
}

#[test]
fn the_same_child_sa_fused_with_pluto_s_log_is_reported_as_the_log_says() {
    let events = up_and_terminated_after_a_listed_placeholder(Fused::PlutoLog);
    assert_one_content_per_id(&events);
    for (serial, kind) in [(45, "child-sa-"), (44, "ike-sa-")] {
        let said = decided(&events, serial, kind);
        assert_eq!(
            said,
            vec![
                (format!("{kind}established"), String::new()),
                (format!("{kind}deleted"), "deleted".to_string()),
            ],
            "#{serial}"
        );
        let cause = changes(&events, serial, kind)
            .find_map(|e| e.libreswan.end.as_ref())
            .map(|end| end.cause.clone());
        assert_eq!(cause.as_deref(), Some("local-delete"), "#{serial}");
    }
}

/// Another run: `g10`'s revival #618 (`STATE_V2_NEW_CHILD_I1`) and the
/// rekey #638 of #600 (`STATE_V2_REKEY_CHILD_I0`) listed by one
/// `--status`, whose `--trafficstatus` already shows #618 up; the next
/// poll lists #638 up and #600 gone. pluto's log: `#638: initiator rekeyed
/// Child SA #600 using #577` at 16:56:21.58, `#600: deleting established
/// Child SA` at 22.72, and 20 s later `#618: not rekey stale Child SA
/// #618; as already got a newer #638`.
#[test]
fn a_rekey_listed_beside_a_revival_that_came_up_in_the_same_poll_replaces_the_old_sa() {
    let events = track(
        "lab-gateway-rekey-beside-revival",
        &[
            both(1796662567),
            both(1796662572),
            both(1796662578),
            both(1796662583),
            both(1796662588),
        ],
        Fused::No,
    );
    assert_one_content_per_id(&events);
    let said = |a: &str, r: &str, replaces: Option<u64>, by: Option<u64>| {
        (a.to_string(), r.to_string(), replaces, by)
    };
    assert_eq!(
        linked(&events, 638, "child-sa-"),
        vec![said("child-sa-rekeyed", "rekey", Some(600), None)]
    );
    assert_eq!(
        linked(&events, 600, "child-sa-"),
        vec![said("child-sa-expired", "replaced", None, Some(638))]
    );
    assert_eq!(
        linked(&events, 618, "child-sa-"),
        vec![said("child-sa-established", "", None, None)]
    );
}

/// The same run's last listings before west's pluto restarted: `g14` #604
/// and `g16` #625 beside the revivals #615 and #637, their REKEY 1 and 2 s
/// ahead; the next poll found pluto gone (`Pluto is shutting down` at
/// 16:56:47.19). pluto's log: `#604: not rekey stale Child SA #604; as
/// already got a newer #615` at 45.68, the same of #625 at 46.08. See the
/// fixture's README for the listing's time.
#[test]
fn child_sas_pluto_deleted_as_stale_just_before_a_poll_found_it_gone_were_deleted() {
    let events = track(
        "lab-gateway-stale-at-shutdown",
        &[
            both(1796662597),
            both(1796662604),
            Tick::Unreachable(1796662605),
            both(1796662637),
        ],
        Fused::No,
    );
    assert_one_content_per_id(&events);
    for (serial, reason) in [
        (604, "deleted"),
        (625, "deleted"),
        (615, "pluto-restart"),
        (637, "pluto-restart"),
    ] {
        let ends = decided(&events, serial, "child-sa-");
        assert_eq!(
            ends,
            vec![("child-sa-deleted".to_string(), reason.to_string())],
            "#{serial}"
        );
    }
}

/// West's pluto restarted while `v2-deadpeer` #651 was half-open: started
/// at 17:11:58.71 (`initiating IKEv2 connection to replace establishing IKE
/// SA #617`), 0.4 s before `Pluto is shutting down`, which deleted it at
/// 17:12:00.39 (`deleting state (STATE_V2_PARENT_I1) ... NOT sending
/// notification`). The daemon's last listing (as the lab series' of
/// 17:11:53) came before it; its next poll found pluto gone at 17:11:57.
/// Only the audit records saw #651: its failed start at 17:12:00.373.
#[test]
fn a_negotiation_only_the_records_saw_fail_after_pluto_was_found_gone_ended_with_the_restart() {
    let events = track(
        "lab-gateway-restart-audit-only",
        &[
            both(1796663508),
            both(1796663513),
            Tick::Unreachable(1796663517),
            both(1796663553),
        ],
        Fused::LinuxAudit,
    );
    assert_one_content_per_id(&events);
    assert_eq!(
        about(&events, 651),
        vec![(
            "negotiation-failed".to_string(),
            "pluto-restart".to_string(),
            "2026-12-07T17:12:00.373Z".to_string()
        )]
    );
}

/// West's pluto rekeyed three Child SAs a moment before its shutdown
/// (`g03` #605 rekeyed #568 at 17:22:14.23, `g15` #606 and `g06` #607 the
/// same second; `Pluto is shutting down` at 17:22:16.03, which deleted
/// the new ones); the last listing showed them negotiating
/// (`REKEY_CHILD`), the next poll found pluto gone at 17:22:14. See the
/// fixture's README.
#[test]
fn rekeys_that_came_up_just_before_a_shutdown_are_rekeys_and_end_with_it() {
    let events = track(
        "lab-gateway-rekey-at-shutdown",
        &[
            both(1796664126),
            both(1796664133),
            Tick::Unreachable(1796664134),
            both(1796664161),
        ],
        Fused::LinuxAudit,
    );
    assert_one_content_per_id(&events);
    for (new, old) in [(605, 568), (606, 588), (607, 582)] {
        assert_eq!(
            linked(&events, new, "child-sa-"),
            vec![
                (
                    "child-sa-rekeyed".to_string(),
                    "rekey".to_string(),
                    Some(old),
                    None
                ),
                (
                    "child-sa-deleted".to_string(),
                    "pluto-restart".to_string(),
                    None,
                    None
                ),
            ],
            "#{new}"
        );
        assert_eq!(
            linked(&events, old, "child-sa-"),
            vec![(
                "child-sa-expired".to_string(),
                "replaced".to_string(),
                None,
                Some(new)
            )],
            "#{old}"
        );
        assert!(
            !about(&events, new)
                .iter()
                .any(|(action, _, _)| action == "negotiation-failed"),
            "#{new}"
        );
    }
}

/// A rekey collision seen by a 2 s poll: `coll` #185 (west's rekey of #90,
/// `REKEY_CHILD_I1`) still negotiating while east's rekey of #90, #187,
/// is up beside #90 for two listings; then #90 goes and #185 comes up.
/// pluto's log: `#187: responder rekeyed Child SA #90 using #77` at
/// 17:30:48.84, `#90: ESP traffic information` at 53.12, `#185: initiator
/// rekeyed Child SA #90 using #77` at 53.37. See the fixture's README.
#[test]
fn the_peer_s_rekey_up_beside_the_old_sa_while_ours_negotiates_is_a_rekey_of_it() {
    let events = track(
        "lab-gateway-collision-beside",
        &[
            Tick::Listing(1796664642, "status-1796664642.txt"),
            Tick::Listing(1796664647, "status-1796664647.txt"),
            Tick::Listing(1796664649, "status-1796664649.txt"),
            Tick::Listing(1796664651, "status-1796664651.txt"),
            Tick::Listing(1796664652, "status-1796664652.txt"),
            Tick::Listing(1796664657, "status-1796664657.txt"),
        ],
        Fused::No,
    );
    assert_one_content_per_id(&events);
    for new in [187, 185] {
        let rekey = linked(&events, new, "child-sa-");
        assert_eq!(
            rekey
                .first()
                .map(|(a, _, replaces, _)| (a.as_str(), *replaces)),
            Some(("child-sa-rekeyed", Some(90))),
            "#{new}: {rekey:?}"
        );
    }
    let end = linked(&events, 90, "child-sa-");
    assert_eq!(
        end.first().map(|(a, r, _, _)| (a.as_str(), r.as_str())),
        Some(("child-sa-expired", "replaced")),
        "{end:?}"
    );
}

/// East's pluto SIGKILLed: west's IKE SAs went at once when `g05` #231's
/// liveness failed (`liveness action - restarting all connections that
/// share this peer` at 16:53:30.91), among them `g01` #226, listed
/// `REPLACE in 5s` at 16:53:28 and deleted at 31.24, two seconds before
/// that REPLACE. The next poll came after it. See the fixture's README.
#[test]
fn an_ike_sa_past_its_replace_that_went_with_every_ike_sa_of_its_peer_was_deleted() {
    let events = track(
        "lab-gateway-peer-dead-replace",
        &[
            Tick::Listing(1796662402, "status-1796662402.txt"),
            Tick::Listing(1796662408, "status-1796662408.txt"),
            Tick::Listing(1796662418, "status-1796662418.txt"),
        ],
        Fused::No,
    );
    assert_one_content_per_id(&events);
    for serial in [226, 231] {
        let ends = decided(&events, serial, "ike-sa-");
        assert_eq!(
            ends,
            vec![("ike-sa-deleted".to_string(), "deleted".to_string())],
            "#{serial}"
        );
    }
}

/// West's second pluto run: `g02` #6 rekeyed #4 at 19:22:03.80 (`initiator
/// rekeyed Child SA #4 using #3`), after the daemon's last listing and
/// 1.1 s before its SIGTERM (04.94); #4's delete (04.89) was not read yet,
/// as this stop at 04.85 has it. Its stop
/// fused the rekey's line, and reported #6 as a Child SA established anew.
/// See the fixture's README.
#[test]
fn a_rekey_the_log_read_after_the_last_poll_is_a_rekey_at_the_stop() {
    for fused in [Fused::PlutoLog, Fused::No] {
        let events = track(
            "lab-gateway-rekey-before-stop",
            &[
                both(1796671297),
                both(1796671313),
                Tick::Stop(1_796_671_324_850),
            ],
            fused,
        );
        assert_one_content_per_id(&events);
        let rekey = linked(&events, 6, "child-sa-");
        if fused == Fused::No {
            // No listing showed #6, and nothing else was read.
            assert_eq!(rekey, vec![]);
            continue;
        }
        assert_eq!(
            rekey,
            vec![(
                "child-sa-rekeyed".to_string(),
                "rekey".to_string(),
                Some(4),
                None
            )],
        );
        let up = changes(&events, 6, "child-sa-").next().expect("#6");
        assert_eq!(up.timestamp, "2026-12-07T19:22:03.802Z");
    }
}
