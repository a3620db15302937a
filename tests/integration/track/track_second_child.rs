//! A new IKEv2 Child SA listed beside an older one of the same connection:
//! a rekey, or a second Child SA that lives on beside the first (pluto
//! adds one when two revivals are pending, 4.10 and 5.x alike). And an SA
//! whose lifetime ran out just before pluto stopped: `expired`, not
//! `pluto-restart`. Every listing here is a real one from the project's
//! libreswan labs (`examples/lab-5.2/`, `tests/fixtures/lab-east-responder-rekey/`);
//! where a case was not caught live, the test says which lines it adds to
//! a real listing, so the rest of the listing stays what pluto printed.

use std::path::PathBuf;

use crate::support::root;
use swantrail::event::Event;
use swantrail::status::parse;
use swantrail::track::{Tracker, TrackerConfig};

fn listing(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// Feed `(taken_at, status text)` listings to a fresh tracker; all events.
fn track(steps: &[(i64, String)]) -> Vec<Event> {
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let mut events = Vec::new();
    for (at, text) in steps {
        let mut snap = parse(text);
        snap.taken_at = Some(*at);
        events.extend(tracker.observe(&snap));
    }
    events
}

/// (action, serial, replaces, reason) of every SA event, in order.
fn sa_events(events: &[Event]) -> Vec<(String, u64, Option<u64>, Option<String>)> {
    events
        .iter()
        .filter(|e| e.action().contains("-sa-"))
        .filter_map(|e| {
            let sa = e.libreswan.sa.as_ref()?;
            Some((
                e.action().to_string(),
                sa.serial,
                sa.replaces,
                e.event.reason.clone(),
            ))
        })
        .collect()
}

/// West's 5.2 listing at `at` from the bundled run, with a second Child SA
/// `#60` of `v2-delchild` on the same IKE SA `#14` beside the live `#15`:
/// `#15`'s own lines, new SPIs, the `newest` flag moved to `#60` (as pluto
/// moves the connection's newest Child SA), `#15` keeping its timers.
fn with_second_child(at: i64) -> String {
    let text = listing(&format!("examples/lab-5.2/series/status-{at}.txt"));
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#15: \"v2-delchild\":500 ESTABLISHED_CHILD_SA") {
            out.push_str(&line.replace("; newest;", ";"));
            out.push('\n');
            out.push_str(
                &line
                    .replace("#15:", "#60:")
                    .replace("REKEY in ", "REKEY in 1")
                    .replace("REPLACE in ", "REPLACE in 1"),
            );
        } else if line.starts_with("#15: \"v2-delchild\" esp.") {
            out.push_str(line);
            out.push('\n');
            out.push_str(
                &line
                    .replace("#15:", "#60:")
                    .replace("esp.9721577c", "esp.c0ffee01")
                    .replace("esp.f7421344", "esp.c0ffee02"),
            );
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(
        out.contains("#60: \"v2-delchild\":500"),
        "{at}: no #15 to copy"
    );
    out
}

#[test]
fn a_second_child_sa_beside_a_live_one_is_established_not_a_rekey() {
    let steps: Vec<(i64, String)> = [1796177823, 1796177827, 1796177832, 1796177837]
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let text = if i == 0 {
                listing(&format!("examples/lab-5.2/series/status-{at}.txt"))
            } else {
                with_second_child(at)
            };
            (at, text)
        })
        .collect();
    let events = track(&steps);
    let about = |serial: u64| -> Vec<(String, Option<u64>, Option<String>)> {
        sa_events(&events)
            .into_iter()
            .filter(|(_, s, _, _)| *s == serial)
            .map(|(a, _, r, why)| (a, r, why))
            .collect()
    };
    // Held for one listing (the old one might have been going), then
    // reported once: an establishment, replacing nothing.
    assert_eq!(
        about(60),
        vec![("child-sa-established".to_string(), None, None)]
    );
    let at = events
        .iter()
        .find(|e| e.libreswan.sa.as_ref().is_some_and(|sa| sa.serial == 60))
        .map(|e| e.timestamp.clone());
    assert_eq!(at.as_deref(), Some("2026-12-02T02:17:12Z"));
    // The first lives on: nothing ends it, nothing rekeys it.
    let fifteen: Vec<String> = about(15).into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(fifteen, vec!["child-sa-established".to_string()]);
    assert!(
        !events.iter().any(|e| e.action().ends_with("-rekeyed")
            && e.libreswan
                .connection
                .as_ref()
                .is_some_and(|c| c.name == "v2-delchild")),
        "a second Child SA was reported as a rekey"
    );
}

#[test]
fn a_responders_rekey_with_the_old_child_sa_still_listed_stays_a_rekey() {
    let dir = "tests/fixtures/lab-east-responder-rekey";
    let steps: Vec<(i64, String)> = [1796182102, 1796182107, 1796182112]
        .iter()
        .map(|&at| (at, listing(&format!("{dir}/status-{at}.txt"))))
        .collect();
    let events = track(&steps);
    // Held while both were listed, reported when #6 had gone.
    let rekeyed_at = events
        .iter()
        .find(|e| {
            e.action() == "child-sa-rekeyed"
                && e.libreswan.sa.as_ref().is_some_and(|sa| sa.serial == 8)
        })
        .map(|e| e.timestamp.clone());
    assert_eq!(rekeyed_at.as_deref(), Some("2026-12-02T03:28:32Z"));
    let short: Vec<(String, u64, Option<u64>, Option<String>)> = sa_events(&events)
        .into_iter()
        .filter(|(_, s, _, _)| [6, 8].contains(s))
        .collect();
    assert_eq!(
        short,
        vec![
            (
                "child-sa-established".to_string(),
                6,
                None,
                Some("observed-at-start".to_string())
            ),
            (
                "child-sa-rekeyed".to_string(),
                8,
                Some(6),
                Some("rekey".to_string())
            ),
            (
                "child-sa-expired".to_string(),
                6,
                None,
                Some("replaced".to_string())
            ),
        ]
    );
}

#[test]
fn initiator_rekeys_forced_ones_included_are_reported_at_once_with_the_serial_replaced() {
    // The bundled 5.2 run: `v2-short` rekeys on its timers (the old Child
    // SA listed with `EXPIRE in 0s` beside the new one at 1796177871) and
    // `v2-tun` is forced with `--rekey-child` (#39 for #7, the old one
    // listed with no timer at 1796177900) and `--rekey-ike` (#45 for #5).
    let series = root().join("examples/lab-5.2/series");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&series)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let steps: Vec<(i64, String)> = files
        .iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?;
            let at: i64 = name.strip_prefix("status-")?.parse().ok()?;
            Some((at, std::fs::read_to_string(p).ok()?))
        })
        .filter(|(at, _)| *at < 1796177972)
        .collect();
    let events = track(&steps);
    let rekey_at = |serial: u64| -> Option<(String, Option<u64>, String)> {
        events.iter().find_map(|e| {
            let sa = e.libreswan.sa.as_ref()?;
            (sa.serial == serial && e.action().ends_with("-rekeyed"))
                .then(|| (e.action().to_string(), sa.replaces, e.timestamp.clone()))
        })
    };
    assert_eq!(
        rekey_at(39),
        Some((
            "child-sa-rekeyed".to_string(),
            Some(7),
            "2026-12-02T02:18:20Z".to_string()
        ))
    );
    assert_eq!(
        rekey_at(36),
        Some((
            "child-sa-rekeyed".to_string(),
            Some(31),
            "2026-12-02T02:17:51Z".to_string()
        ))
    );
    assert_eq!(rekey_at(45).map(|r| r.1), Some(Some(5)));
}

/// The bundled run's last listing before west's pluto stopped, the poll
/// that found it gone (`series-gaps.txt`), and the first listing of the
/// new pluto; `edit` changes the last listing first.
fn shutdown(edit: impl Fn(&str) -> String) -> Vec<Event> {
    let last = edit(&listing("examples/lab-5.2/series/status-1796177968.txt"));
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let mut events = Vec::new();
    let mut snap = parse(&last);
    snap.taken_at = Some(1796177968);
    events.extend(tracker.observe(&snap));
    events.extend(tracker.observe_unreachable(1796177972, "Pluto is not running"));
    let mut snap = parse(&listing("examples/lab-5.2/series/status-1796178015.txt"));
    snap.taken_at = Some(1796178015);
    events.extend(tracker.observe(&snap));
    events
}

fn end_of(events: &[Event], serial: u64) -> Option<(String, Option<String>)> {
    sa_events(events)
        .into_iter()
        .find(|(a, s, _, _)| *s == serial && (a.ends_with("-expired") || a.ends_with("-deleted")))
        .map(|(a, _, _, why)| (a, why))
}

#[test]
fn an_sa_whose_expire_time_came_before_pluto_was_found_gone_ends_expired() {
    // As listed, v1-norekey's #44 had 13 s left (due 1796177981): pluto's
    // shutdown at 1796177973 ended it, and it ends with the restart.
    let events = shutdown(str::to_string);
    assert_eq!(
        end_of(&events, 44),
        Some((
            "child-sa-deleted".to_string(),
            Some("pluto-restart".to_string())
        ))
    );
    // With 2 s left (due 1796177970, before the poll at 1796177972 found
    // pluto gone) it ran out while pluto still ran: expired.
    let events = shutdown(|t| t.replace("EXPIRE in 13s", "EXPIRE in 2s"));
    assert_eq!(
        end_of(&events, 44),
        Some(("child-sa-expired".to_string(), Some("expired".to_string())))
    );
    // The others had hours left: the restart ended them.
    assert_eq!(
        end_of(&events, 15),
        Some((
            "child-sa-deleted".to_string(),
            Some("pluto-restart".to_string())
        ))
    );
}

/// West's real 5.2 listings of `tests/fixtures/lab-west-v1-second-sa/`.
fn v1_second_sa() -> Vec<Event> {
    let dir = "tests/fixtures/lab-west-v1-second-sa";
    let steps: Vec<(i64, String)> = [
        1796190982, 1796190988, 1796190992, 1796191028, 1796191032, 1796191047, 1796191053,
    ]
    .into_iter()
    .map(|at| (at, listing(&format!("{dir}/status-{at}.txt"))))
    .collect();
    track(&steps)
}

#[test]
fn a_second_ikev1_ipsec_sa_beside_one_on_its_replace_timer_replaces_nothing() {
    let events: Vec<_> = sa_events(&v1_second_sa())
        .into_iter()
        .filter(|(_, s, _, _)| [19, 29, 32, 42].contains(s))
        .filter(|(_, _, _, why)| why.as_deref() != Some("observed-at-start"))
        .map(|(a, s, r, why)| (a, s, r, why.unwrap_or_default()))
        .collect();
    let want = |a: &str, s: u64, why: &str| (a.to_string(), s, None, why.to_string());
    assert_eq!(
        events,
        vec![
            // #19 ran out with rekey=no; #29 is its revival, not a rekey.
            want("child-sa-established", 29, ""),
            want("child-sa-expired", 19, "expired"),
            // The peer's Quick Mode beside #29, which still ran its REPLACE
            // timer: a second IPsec SA.
            want("child-sa-established", 32, ""),
            want("child-sa-expired", 29, "expired"),
            want("child-sa-established", 42, ""),
            want("child-sa-expired", 32, "expired"),
        ]
    );
}

#[test]
fn a_replace_time_before_pluto_was_found_gone_is_no_expiry() {
    // #44 listed `REPLACE in 2s` (due before the failed poll) instead of
    // its EXPIRE timer: pluto would have started a replacement, or with
    // rekey=no only swapped the timer; the shutdown ended it.
    let events = shutdown(|t| t.replace("EXPIRE in 13s", "REPLACE in 2s"));
    assert_eq!(
        end_of(&events, 44),
        Some((
            "child-sa-deleted".to_string(),
            Some("pluto-restart".to_string())
        ))
    );
}

#[test]
fn an_isakmp_sa_that_negotiated_beside_the_one_it_replaces_is_its_rekey_even_after_it_ran_out() {
    let dir = "tests/fixtures/lab-west-v1-isakmp-replace";
    let mut steps: Vec<(i64, String)> = [1796192139, 1796192150, 1796192160]
        .into_iter()
        .map(|at| (at, listing(&format!("{dir}/status-{at}.txt"))))
        .collect();
    // The daemon's poll just after the last listing: #43 is gone.
    let last: String = steps[2]
        .1
        .lines()
        .filter(|l| !l.starts_with("000 #43: "))
        .map(|l| format!("{l}\n"))
        .collect();
    steps.push((1796192161, last));
    steps.remove(2);
    let events: Vec<_> = sa_events(&track(&steps))
        .into_iter()
        .filter(|(a, s, _, _)| [43, 51].contains(s) && a.starts_with("ike-sa-"))
        .filter(|(_, _, _, why)| why.as_deref() != Some("observed-at-start"))
        .collect();
    assert_eq!(
        events,
        vec![
            (
                "ike-sa-rekeyed".to_string(),
                51,
                Some(43),
                Some("rekey".to_string())
            ),
            (
                "ike-sa-expired".to_string(),
                43,
                None,
                Some("replaced".to_string())
            ),
        ]
    );
}
