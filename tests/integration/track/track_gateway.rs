//! The tracker's defects a busy-gateway lab run exposed (issue 26, the
//! bundled `examples/lab-4.10-gateway/`), each pinned on the real listings
//! (and, where the fusion is at stake, pluto's real audit records) of
//! that run, trimmed to the ticks that matter in `tests/fixtures/lab-gateway-*/`.
//! What each test expects is what west's pluto log says happened.

use crate::support::{root, snapshot};

use std::collections::BTreeMap;
use std::path::PathBuf;

use swantrail::event::Event;
use swantrail::source::replay::{self, AuditFeed, ReplayStep};
use swantrail::track::{Tracker, TrackerConfig};

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// One tick of a fixture series: a listing (`--status`, or `--status`
/// and `--trafficstatus` of the same poll, as a daemon polls), or a poll
/// pluto did not answer.
enum Tick<'a> {
    Listing(i64, &'a str),
    Listings(i64, Vec<String>),
    Unreachable(i64),
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

/// Feed the ticks to a fresh tracker (fused with the fixture's `audit.log`
/// as a daemon with a Linux audit source is, when `fused`); all events.
fn track(dir: &str, ticks: &[Tick<'_>], fused: bool) -> Vec<Event> {
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    tracker.expect_linux_audit_records(fused);
    let mut feed = fused.then(|| AuditFeed::read(&fixture(dir).join("audit.log")).unwrap());
    let mut events = Vec::new();
    for tick in ticks {
        match tick {
            Tick::Unreachable(at) => {
                events.extend(tracker.observe_unreachable(*at, "pluto is not running"))
            }
            Tick::Listing(at, file) => {
                if let Some(feed) = feed.as_mut() {
                    tracker.ingest_linux_audit_records(feed.until(*at));
                }
                events.extend(tracker.observe(&snapshot(&fixture(dir).join(file), *at)));
            }
            Tick::Listings(at, files) => {
                let step = ReplayStep {
                    taken_at: *at,
                    files: files.iter().map(|f| fixture(dir).join(f)).collect(),
                };
                events.extend(tracker.observe(&replay::load_step(&step).unwrap()));
            }
        }
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
fn restart_with_a_half_open_negotiation(fused: bool) -> Vec<Event> {
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
    let events = restart_with_a_half_open_negotiation(true);
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
    let events = restart_with_a_half_open_negotiation(false);
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
    let events = restart_with_a_half_open_negotiation(false);
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
fn placeholders_while_the_peer_is_dead(fused: bool) -> Vec<Event> {
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
    let events = placeholders_while_the_peer_is_dead(false);
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
    let events = placeholders_while_the_peer_is_dead(true);
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
        false,
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
        false,
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
    let events = track("lab-gateway-v1-responder", &ticks, false);
    let starts = |serial| -> Vec<(String, Option<u64>)> {
        events
            .iter()
            .filter(|e| {
                e.libreswan
                    .sa
                    .as_ref()
                    .is_some_and(|sa| sa.serial == serial)
            })
            .filter(|e| e.action().starts_with("child-sa-"))
            .filter(|e| e.event.reason.as_deref() != Some("observed-at-start"))
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
