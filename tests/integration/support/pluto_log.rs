//! What pluto's own log says happened, read by the patterns pluto 4.10
//! and 5.x print (`initiator rekeyed Child SA #M`, `initiating Quick Mode
//! ... to replace #M`, `IPsec SA established`, `CHILD SA expired
//! (--dontrekey)`, ...). Tests compare swantrail's events against it:
//! pluto's log is the truth.
//!
//! [`read_log`] gives the rekeys and lifetimes by serial; [`read_history`]
//! gives every SA and negotiation of every pluto run in the log (a
//! restarted pluto appends to the same log and counts serials from #1
//! again), and [`judge`] scores a daemon's events against it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the log says happened.
#[derive(Default)]
pub struct PlutoLog {
    /// (kind, new serial, replaced serial).
    pub rekeys: BTreeSet<(&'static str, u64, u64)>,
    /// Serials of SAs pluto logged as established, IKE and Child.
    pub established: BTreeSet<u64>,
    /// For every serial: seconds since midnight when pluto first logged it
    /// established, and when it first logged deleting it (or, for a Child
    /// SA, its traffic summary, which is all a deletion with its parent logs).
    pub lifetimes: BTreeMap<u64, (Option<i64>, Option<i64>)>,
}

/// Whether pluto's words say the SA is up (as initiator, responder or
/// by a rekey).
fn says_established(what: &str) -> bool {
    [
        "initiator established",
        "responder established",
        "IKE SA established",
        "ISAKMP SA established",
        "IPsec SA established",
        "initiator rekeyed",
        "responder rekeyed",
    ]
    .iter()
    .any(|p| what.starts_with(p))
}

/// Seconds since midnight of a log line (`Nov 28 10:39:13.978532: ...`).
fn time_of_day(line: &str) -> Option<i64> {
    let hms = line.get(7..15)?;
    let p: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    (p.len() == 3).then(|| p[0] * 3600 + p[1] * 60 + p[2])
}

/// `"conn" #N: rest` → (N, rest).
fn serial_and_text(line: &str) -> Option<(u64, &str)> {
    let after_conn = line.split_once("\" #")?.1;
    let (n, rest) = after_conn.split_once(": ")?;
    Some((n.parse().ok()?, rest))
}

/// The number at the start of `text`.
fn leading_serial(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn read_log(path: &Path) -> PlutoLog {
    let text = std::fs::read_to_string(path).unwrap();
    let mut log = PlutoLog::default();
    let mut v1_replacing = Vec::new();
    for line in text.lines() {
        let Some((serial, what)) = serial_and_text(line) else {
            continue;
        };
        let life = log.lifetimes.entry(serial).or_default();
        if says_established(what) {
            log.established.insert(serial);
            if life.0.is_none() {
                life.0 = time_of_day(line);
            }
        }
        // A Child SA deleted with its IKE SA (at shutdown, say) gets no
        // "deleting" line of its own, only the traffic summary pluto logs
        // as it deletes it.
        let deleted = what.starts_with("deleting") || what.starts_with("ESP traffic information");
        if deleted && life.1.is_none() {
            life.1 = time_of_day(line);
        }
        if let Some(rest) = what.strip_prefix("initiator rekeyed Child SA #") {
            log.rekeys
                .insert(("child-sa-rekeyed", serial, leading_serial(rest).unwrap()));
        } else if let Some(rest) = what.strip_prefix("initiator rekeyed IKE SA #") {
            log.rekeys
                .insert(("ike-sa-rekeyed", serial, leading_serial(rest).unwrap()));
        } else if let Some((_, old)) = what
            .split_once(" to replace #")
            .filter(|_| what.starts_with("initiating Quick Mode"))
        {
            v1_replacing.push(("child-sa-rekeyed", serial, leading_serial(old).unwrap()));
        } else if let Some(old) =
            what.strip_prefix("initiating IKEv1 Main Mode connection to replace #")
        {
            v1_replacing.push(("ike-sa-rekeyed", serial, leading_serial(old).unwrap()));
        }
    }
    // An IKEv1 "replace" is a rekey only when both SAs were up: the dead
    // peers' retries also say "to replace #N".
    for (kind, new, old) in v1_replacing {
        if log.established.contains(&new) && log.established.contains(&old) {
            log.rekeys.insert((kind, new, old));
        }
    }
    log
}

/// IKE SA (IKEv1 ISAKMP SA) or Child SA (IKEv1 IPsec SA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Ike,
    Child,
}

impl Kind {
    /// The prefix of swantrail's actions for this kind (`ike-sa`, `child-sa`).
    pub fn action_prefix(self) -> &'static str {
        match self {
            Kind::Ike => "ike-sa",
            Kind::Child => "child-sa",
        }
    }
}

/// One serial of one pluto run, as its log lines tell it.
#[derive(Clone, Debug, Default)]
pub struct Sa {
    /// The connection named on its lines.
    pub conn: String,
    /// Seconds since midnight of its first line.
    pub first: i64,
    /// The same to the microsecond.
    pub first_us: i64,
    /// Known once it was established.
    pub kind: Option<Kind>,
    /// When pluto logged it established (or rekeyed).
    pub up: Option<i64>,
    /// The same to the microsecond (microseconds since midnight).
    pub up_us: Option<i64>,
    /// The SA it rekeyed, when pluto said so.
    pub replaces: Option<u64>,
    /// When pluto logged deleting it (or, for a Child SA, its traffic
    /// summary), or when that pluto shut down.
    pub down: Option<i64>,
    /// The same to the microsecond (microseconds since midnight).
    pub down_us: Option<i64>,
    /// pluto logged `IKE SA expired` / `CHILD SA expired` for it.
    pub expired: bool,
    /// It ended while its pluto was shutting down.
    pub at_shutdown: bool,
    /// When that shutdown began (`Pluto is shutting down`): pluto answers
    /// no `whack` from then on, so nothing can list the SA after it.
    pub shutdown_began: Option<i64>,
    /// A later SA of the same pluto run rekeyed it.
    pub replaced: bool,
    /// The peer deleted it (`received Delete SA payload`, `received Delete`).
    pub peer_deleted: bool,
    /// pluto scheduled a revival of its connection on its account
    /// (5.x: `connection is supposed to remain up; revival attempt N`).
    pub revived: bool,
    /// pluto deleted it on its own, telling the peer nothing
    /// (`deleting IPsec SA (QUICK_I2) aged 61.5s and NOT sending
    /// notification`): what an IKEv1 lifetime running out looks like.
    pub quiet_delete: bool,
    /// Seconds since midnight of its last line.
    pub last: i64,
    /// The same to the microsecond.
    pub last_us: i64,
    /// A Child SA's IKE SA (`using #N`, IKEv1 `using isakmp#N`).
    pub parent: Option<u64>,
    /// Its IKE SA was deleted within a second of its own end.
    pub parent_went_too: bool,
    /// An IKEv1 SA (`IPsec SA established`, `ISAKMP SA established`).
    pub ikev1: bool,
    /// A newer SA of the same kind and connection was up beside it when it
    /// ended, one that did not replace it (IKEv1: a second Quick Mode
    /// SA of a revival): pluto deletes a superseded SA at its EXPIRE with
    /// a Delete to the peer and no `expired` line (`timer.c` logs that
    /// only for the newest).
    pub superseded: bool,
    /// It sent an IKE_AUTH request (an IKEv2 IKE SA): pluto made the
    /// larval Child SA of that exchange then, the next serial, and logs
    /// nothing of it unless it comes up.
    pub sent_ike_auth: bool,
    /// Its connection was terminated (`"c": terminating SAs using this
    /// connection`) in the five seconds before it ended.
    pub terminated: bool,
}

impl Sa {
    /// The end reason swantrail must give it (`replaced`, `expired`,
    /// `pluto-restart`, `deleted`), judged from pluto's own words.
    pub fn end_reason(&self) -> &'static str {
        if self.replaced {
            "replaced"
        } else if self.at_shutdown {
            "pluto-restart"
        } else if self.expired
            || (self.ikev1
                && (self.revived || self.quiet_delete || (self.superseded && !self.terminated))
                && !self.peer_deleted
                && !self.parent_went_too)
        {
            // 5.x logs no `expired` line for an IKEv1 Child SA whose
            // lifetime ran out with rekey=no: it schedules the revival and
            // deletes it. An IKEv1 revival that no Delete (of it or of its
            // ISAKMP SA) explains is that. (IKEv2 logs `CHILD SA expired`;
            // a peer's IKEv2 Delete of a Child SA leaves only the revival
            // line.) An IKEv1 IPsec SA beside a newer one of its
            // connection gets no revival line: pluto deleting it unasked
            // and without a Delete to the peer is its lifetime running out;
            // so is pluto deleting it, Delete sent, with a newer one up
            // beside it, neither its peer nor a terminate asking (lab 4.10:
            // a Quick Mode SA deleted at 60.09 s of its 60 s life).
            "expired"
        } else {
            "deleted"
        }
    }
}

/// Every SA and negotiation of every pluto run in one log.
#[derive(Default)]
pub struct History {
    /// (pluto run, counted from 0, serial) → what happened to it.
    pub sas: BTreeMap<(usize, u64), Sa>,
    /// How many times pluto started in this log.
    pub runs: usize,
}

/// Seconds since midnight of a log line, or `None` when it has no stamp.
fn stamp(line: &str) -> Option<i64> {
    line.get(15..16).filter(|c| *c == "." || *c == ":")?;
    time_of_day(line)
}

/// Microseconds since midnight of a log line stamped to the microsecond
/// (`Nov 28 10:39:13.978532: ...`).
fn stamp_us(line: &str) -> Option<i64> {
    let micros: i64 = line
        .get(16..22)
        .filter(|_| line.get(15..16) == Some("."))?
        .parse()
        .ok()?;
    Some(time_of_day(line)? * 1_000_000 + micros)
}

/// The connection name of `"conn" #N: ...` (or `"conn"[1] ... #N: ...`).
fn conn_of_line(line: &str) -> Option<&str> {
    let start = line.find('"')? + 1;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// The stretches of at least `min_secs` seconds in which pluto logged
/// nothing (start and end, seconds since midnight): a pluto too busy to
/// answer whack in time logs nothing either.
pub fn silences(path: &Path, min_secs: i64) -> Vec<(i64, i64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let times: Vec<i64> = text.lines().filter_map(stamp).collect();
    times
        .windows(2)
        .filter(|w| w[1] - w[0] >= min_secs)
        .map(|w| (w[0], w[1]))
        .collect()
}

/// Reads every SA and negotiation from a pluto log of 4.10 or 5.x.
pub fn read_history(path: &Path) -> History {
    let text = std::fs::read_to_string(path).unwrap();
    let mut h = History::default();
    let mut run = 0usize;
    let mut shutting_down = false;
    let mut shutdown_began: Option<i64> = None;
    let mut v1_replacing: Vec<(usize, u64, u64)> = Vec::new();
    // (pluto run, connection, when): `"c": terminating SAs using this connection`.
    let mut terminates: Vec<(usize, String, i64)> = Vec::new();
    let mut last = 0;
    let mut last_us = 0;
    for line in text.lines() {
        let Some(t) = stamp(line) else { continue };
        let t_us = stamp_us(line).unwrap_or(t * 1_000_000);
        last = t;
        last_us = t_us;
        let body = line.split_once(": ").map_or("", |(_, b)| b);
        if body.starts_with("Starting Pluto") {
            if h.runs > 0 {
                close_run(&mut h, run, (t, t_us), shutdown_began.unwrap_or(t));
                run += 1;
            }
            h.runs += 1;
            shutting_down = false;
            shutdown_began = None;
            continue;
        }
        if body.starts_with("Pluto is shutting down") {
            shutting_down = true;
            shutdown_began.get_or_insert(t);
            continue;
        }
        if body.ends_with(": terminating SAs using this connection") {
            if let Some(conn) = conn_of_line(line) {
                terminates.push((run, conn.to_string(), t));
            }
        }
        let Some((serial, what)) = serial_and_text(line) else {
            continue;
        };
        let sa = h.sas.entry((run, serial)).or_insert_with(|| Sa {
            conn: conn_of_line(line).unwrap_or("").to_string(),
            first: t,
            first_us: t_us,
            ..Sa::default()
        });
        if says_established(what) {
            if sa.up.is_none() {
                sa.up = Some(t);
                sa.up_us = Some(t_us);
            }
            let ike = what.contains("IKE SA") || what.contains("ISAKMP SA");
            sa.ikev1 |= [
                "IPsec SA established",
                "ISAKMP SA established",
                "IKE SA established",
            ]
            .iter()
            .any(|p| what.starts_with(p));
            sa.kind = Some(if ike { Kind::Ike } else { Kind::Child });
            for (p, _) in [
                ("rekeyed Child SA #", Kind::Child),
                ("rekeyed IKE SA #", Kind::Ike),
            ] {
                if let Some((_, rest)) = what.split_once(p) {
                    sa.replaces = leading_serial(rest);
                }
            }
        }
        sa.last = t;
        sa.last_us = t_us;
        if sa.parent.is_none() {
            for p in ["using isakmp#", "established Child SA using #", " using #"] {
                if let Some((_, rest)) = what.split_once(p) {
                    sa.parent = leading_serial(rest);
                    break;
                }
            }
        }
        if what.starts_with("IKE SA expired") || what.starts_with("CHILD SA expired") {
            sa.expired = true;
        }
        if what.starts_with("received Delete") {
            sa.peer_deleted = true;
        }
        if what.starts_with("sent IKE_AUTH request") {
            sa.sent_ike_auth = true;
        }
        if what.starts_with("connection is supposed to remain up; revival") {
            sa.revived = true;
        }
        let deleted = what.starts_with("deleting") || what.starts_with("ESP traffic information");
        if deleted && sa.down.is_none() {
            sa.down = Some(t);
            sa.down_us = Some(t_us);
            sa.at_shutdown = shutting_down;
            sa.shutdown_began = shutdown_began.filter(|_| shutting_down);
            sa.quiet_delete = what.contains("NOT sending notification");
        }
        if let Some((_, old)) = what
            .split_once(" to replace #")
            .filter(|_| what.starts_with("initiating Quick Mode"))
        {
            if let Some(old) = leading_serial(old) {
                v1_replacing.push((run, serial, old));
            }
        } else if let Some(old) =
            what.strip_prefix("initiating IKEv1 Main Mode connection to replace #")
        {
            if let Some(old) = leading_serial(old) {
                v1_replacing.push((run, serial, old));
            }
        }
    }
    if shutting_down {
        close_run(&mut h, run, (last, last_us), shutdown_began.unwrap_or(last));
    }
    // An IKEv1 "replace" is a rekey only when the old SA was still up as
    // the new one came up: the dead peers' retries also say "to replace
    // #N", and 5.x with rekey=no logs "to replace #N" for an ISAKMP SA that
    // then expires (`IKE SA expired (--dontrekey)`) before the new one is
    // established, which is a revival.
    for (run, new, old) in v1_replacing {
        let (Some(n), Some(o)) = (h.sas.get(&(run, new)), h.sas.get(&(run, old))) else {
            continue;
        };
        let both_up = match (n.up, o.up) {
            (Some(nu), Some(_)) => o.down.is_none_or(|od| od >= nu),
            _ => false,
        };
        if both_up {
            if let Some(sa) = h.sas.get_mut(&(run, new)) {
                sa.replaces = Some(old);
            }
        }
    }
    for sa in h.sas.values_mut() {
        if sa.up.is_none() && sa.down.is_none() {
            sa.down = Some(sa.last);
            sa.down_us = Some(sa.last_us);
        }
    }
    let ends: BTreeMap<(usize, u64), i64> = h
        .sas
        .iter()
        .filter_map(|(k, sa)| sa.down.map(|d| (*k, d)))
        .collect();
    for ((run, _), sa) in h.sas.iter_mut() {
        if let (Some(p), Some(down)) = (sa.parent, sa.down) {
            sa.parent_went_too = ends
                .get(&(*run, p))
                .is_some_and(|pd| (pd - down).abs() <= 1);
        }
    }
    // Superseded: a newer SA of its kind and connection up when it ended.
    let superseded: Vec<(usize, u64)> = h
        .sas
        .iter()
        .filter(|((run, serial), sa)| {
            let (Some(kind), Some(down)) = (sa.kind, sa.down_us) else {
                return false;
            };
            h.sas
                .range((*run, serial + 1)..(*run + 1, 0))
                .any(|(_, n)| {
                    n.kind == Some(kind)
                        && n.conn == sa.conn
                        && n.replaces != Some(*serial)
                        && n.up_us.is_some_and(|u| u < down)
                        && n.down_us.is_none_or(|d| d >= down)
                })
        })
        .map(|(k, _)| *k)
        .collect();
    for key in superseded {
        if let Some(sa) = h.sas.get_mut(&key) {
            sa.superseded = true;
        }
    }
    for ((run, _), sa) in h.sas.iter_mut() {
        if let Some(down) = sa.down {
            sa.terminated = terminates
                .iter()
                .any(|(r, c, t)| r == run && *c == sa.conn && *t <= down && down - t <= 5);
        }
    }
    let replaced: Vec<(usize, u64)> = h
        .sas
        .iter()
        .filter_map(|((run, _), sa)| sa.replaces.map(|old| (*run, old)))
        .collect();
    for key in replaced {
        if let Some(sa) = h.sas.get_mut(&key) {
            sa.replaced = true;
        }
    }
    // An IKEv1 ISAKMP SA that a new one replaced takes no IPsec SA with it
    // when it goes (they live on beside the new one): an IPsec SA that
    // ended within that second ended on its own (a CI gateway run: `v1a`
    // #86, deleted at the EXPIRE of an SA a newer one superseded, 0.6 s
    // before the peer deleted the replaced ISAKMP SA #6).
    let replaced_parents: BTreeSet<(usize, u64)> = h
        .sas
        .iter()
        .filter(|(_, sa)| sa.ikev1 && sa.kind == Some(Kind::Ike) && sa.replaced)
        .map(|(k, _)| *k)
        .collect();
    for ((run, _), sa) in h.sas.iter_mut() {
        if sa.ikev1
            && sa
                .parent
                .is_some_and(|p| replaced_parents.contains(&(*run, p)))
        {
            sa.parent_went_too = false;
        }
    }
    h
}

/// A pluto run is over: the SAs it had open ended with it. A larval SA
/// that never got up and was never logged deleted (the Child SA of a
/// refused IKE SA) ended at its last line.
fn close_run(h: &mut History, run: usize, (t, t_us): (i64, i64), shutdown_began: i64) {
    for ((r, _), sa) in h.sas.iter_mut() {
        if *r == run && sa.down.is_none() {
            if sa.up.is_some() {
                sa.down = Some(t);
                sa.down_us = Some(t_us);
                sa.at_shutdown = true;
                sa.shutdown_began = Some(shutdown_began);
            } else {
                sa.down = Some(sa.last);
                sa.down_us = Some(sa.last_us);
            }
        }
    }
}

/// One transition: an SA starting (established, or rekeyed from the
/// serial named), an SA ending, or a negotiation failing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transition {
    Start {
        run: usize,
        serial: u64,
        kind: Kind,
        replaces: Option<u64>,
    },
    End {
        run: usize,
        serial: u64,
        kind: Kind,
    },
    NegotiationFailed {
        run: usize,
        serial: u64,
    },
}

/// How a daemon's events compare with pluto's log.
#[derive(Default, Debug)]
pub struct Score {
    /// Judged transitions pluto logged (SAs and negotiations that lived at
    /// least `min_life` seconds, ends before the daemon's last event).
    pub judged: usize,
    /// Judged transitions the daemon reported.
    pub found: usize,
    /// Transitions the daemon reported.
    pub reported: usize,
    /// Reported transitions that are in pluto's log.
    pub right: usize,
    /// Judged ends the daemon reported (SA ends, and negotiations that
    /// ended with pluto), and how many of them carry pluto's reason.
    pub ends: usize,
    pub ends_right: usize,
    /// What was missed, reported falsely, or reported with a wrong reason.
    pub missed: Vec<String>,
    pub false_reports: Vec<String>,
    pub wrong_reasons: Vec<String>,
}

impl Score {
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.judged)
    }
    pub fn precision(&self) -> f64 {
        ratio(self.right, self.reported)
    }
    pub fn end_reasons(&self) -> f64 {
        ratio(self.ends_right, self.ends)
    }
}

/// The three figures with their counts, as the tests print them.
impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recall {:.3} ({}/{}) precision {:.3} ({}/{}) end reasons {:.3} ({}/{})",
            self.recall(),
            self.found,
            self.judged,
            self.precision(),
            self.right,
            self.reported,
            self.end_reasons(),
            self.ends_right,
            self.ends,
        )
    }
}

/// `a` out of `b`, as a fraction; nothing out of nothing is all of it.
pub fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Seconds since midnight UTC of an event's `@timestamp`.
fn event_time(e: &serde_json::Value) -> i64 {
    let ts = e["@timestamp"].as_str().unwrap_or("");
    ts.get(11..19)
        .and_then(|hms| {
            let p: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
            (p.len() == 3).then(|| p[0] * 3600 + p[1] * 60 + p[2])
        })
        .unwrap_or(0)
}

/// One transition a daemon reported, read from one of its events.
pub struct Reported<'a> {
    pub transition: Transition,
    pub action: &'a str,
    pub serial: u64,
    /// The pluto run it is about.
    pub run: usize,
    pub reason: &'a str,
    /// The event's `@timestamp`, microseconds since midnight UTC.
    pub at_us: Option<i64>,
}

/// The transitions a daemon's events (in the order written) report. The
/// daemon's pluto run is the number of `pluto-restarted` events before the
/// event; its inventory of what it found (`observed-at-start`) is no
/// transition.
pub fn reported(events: &[serde_json::Value]) -> Vec<Reported<'_>> {
    let mut out = Vec::new();
    let mut run: usize = 0;
    for e in events {
        let action = e["event"]["action"].as_str().unwrap_or("");
        if action == "pluto-restarted" {
            run += 1;
            continue;
        }
        let sa = &e["libreswan"]["sa"];
        let Some(serial) = sa["serial"].as_u64() else {
            continue;
        };
        let reason = e["event"]["reason"].as_str().unwrap_or("");
        if reason == "observed-at-start" {
            continue;
        }
        // What a restart ends is reported just after `pluto-restarted`,
        // about SAs of the run before: the event's pluto generation says
        // which run (an SA that expired just before the shutdown ends
        // `expired` there); without one, its reason does.
        let run = match e["libreswan"]["pluto"]["generation"].as_u64() {
            Some(g) => usize::try_from(g).unwrap_or(run),
            None if reason == "pluto-restart" => run.saturating_sub(1),
            None => run,
        };
        let kind = if action.starts_with("ike-sa-") {
            Kind::Ike
        } else {
            Kind::Child
        };
        let transition = if action.ends_with("-sa-established") || action.ends_with("-sa-rekeyed") {
            Transition::Start {
                run,
                serial,
                kind,
                replaces: sa["replaces"]
                    .as_u64()
                    .filter(|_| action.ends_with("-rekeyed")),
            }
        } else if action.ends_with("-sa-expired") || action.ends_with("-sa-deleted") {
            Transition::End { run, serial, kind }
        } else if action == "negotiation-failed" {
            Transition::NegotiationFailed { run, serial }
        } else {
            continue;
        };
        out.push(Reported {
            transition,
            action,
            serial,
            run,
            reason,
            at_us: e["@timestamp"].as_str().and_then(timestamp_us),
        });
    }
    out
}

/// Microseconds since midnight of an RFC 3339 UTC time
/// (`2026-12-02T04:33:46.123456Z`; the fraction may be shorter or absent).
fn timestamp_us(ts: &str) -> Option<i64> {
    let hms = ts.get(11..19)?;
    let p: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = p[..] else { return None };
    let fraction: String = ts
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|f| f.chars().take_while(char::is_ascii_digit).take(6).collect())
        .unwrap_or_default();
    let micros = format!("{fraction:0<6}").parse::<i64>().ok()?;
    Some(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// How close a daemon's `@timestamp`s are to pluto's log lines.
#[derive(Default, Debug)]
pub struct Timing {
    /// Transitions in pluto's log that the daemon reported (the first
    /// report of each), whose time was compared.
    pub checked: usize,
    /// Of those, the ones within the tolerance.
    pub within: usize,
    /// The largest distance seen, in microseconds.
    pub worst_us: i64,
    /// The ones outside it.
    pub off: Vec<String>,
}

/// Compares the `@timestamp` of the first report of every transition in
/// pluto's log with the line pluto logged it on: the established (or
/// rekeyed) line for a start, the deleting line (or a Child SA's traffic
/// summary) for an end, the SA's last line for a failed negotiation.
pub fn timing(h: &History, events: &[serde_json::Value], tolerance_us: i64) -> Timing {
    let mut t = Timing::default();
    let mut seen = BTreeSet::new();
    for r in reported(events) {
        let (run, serial, pluto_us) = match r.transition {
            Transition::Start { run, serial, .. } => (
                run,
                serial,
                h.sas.get(&(run, serial)).and_then(|sa| sa.up_us),
            ),
            Transition::End { run, serial, .. } | Transition::NegotiationFailed { run, serial } => {
                (
                    run,
                    serial,
                    h.sas.get(&(run, serial)).and_then(|sa| sa.down_us),
                )
            }
        };
        let (Some(pluto_us), Some(at_us)) = (pluto_us, r.at_us) else {
            continue;
        };
        if !seen.insert(r.transition) {
            continue;
        }
        // Both are times of day: a distance across midnight is the short way round.
        let day = 86_400 * 1_000_000;
        let d = (at_us - pluto_us).rem_euclid(day);
        let distance = d.min(day - d);
        t.checked += 1;
        t.worst_us = t.worst_us.max(distance);
        if distance <= tolerance_us {
            t.within += 1;
        } else {
            t.off.push(format!(
                "{} #{serial} (pluto run {run}): {:.6} s from pluto's line",
                r.action,
                distance as f64 / 1e6
            ));
        }
    }
    t
}

/// One poll command a daemon ran, from its debug log line `ran a poll
/// command` (src/source/command.rs): pluto answered between its start and
/// its exit.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Microseconds since midnight (UTC, as pluto's `logtime`) it started.
    pub start_us: i64,
    /// The same when it exited.
    pub exit_us: i64,
    /// `--status` and `--showstates` list every state; `--trafficstatus`
    /// only established Child SAs.
    pub all_states: bool,
}

/// The number after `key` in a tracing or audit line.
fn field_number(line: &str, key: &str) -> Option<i64> {
    let at = line.find(key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Every poll command a daemon's log says it ran (empty when it logged
/// none: a daemon started without the debug directive).
pub fn read_listings(daemon_log: &Path) -> Vec<Listing> {
    let text = std::fs::read_to_string(daemon_log).unwrap_or_default();
    let day_us = 86_400 * 1_000_000;
    text.lines()
        .filter(|l| l.contains("ran a poll command"))
        .filter_map(|l| {
            let start = field_number(l, "started_us=")?;
            let exit = field_number(l, "exited_us=")?;
            Some(Listing {
                start_us: start % day_us,
                exit_us: exit % day_us,
                all_states: l.contains("--status") || l.contains("--showstates"),
            })
        })
        .collect()
}

/// Whether some listing ran entirely while `sa` was established, so that a
/// snapshot daemon could have seen it up (an IKE SA only in a listing of
/// every state).
fn listed_up(sa: &Sa, listings: &[Listing]) -> bool {
    let Some(up) = sa.up_us.or(sa.up.map(|t| t * 1_000_000)) else {
        return false;
    };
    let down = sa
        .down_us
        .or(sa.down.map(|t| t * 1_000_000 + 999_999))
        .unwrap_or(i64::MAX);
    listings.iter().any(|l| {
        (l.all_states || sa.kind == Some(Kind::Child)) && up <= l.start_us && l.exit_us <= down
    })
}

/// Whether some listing of every state ran entirely while the negotiation
/// `sa` was under way, so that a snapshot daemon could have seen it
/// half-open (`--trafficstatus` lists no negotiation).
fn listed_half_open(sa: &Sa, listings: &[Listing]) -> bool {
    let down = sa
        .down_us
        .or(sa.down.map(|t| t * 1_000_000 + 999_999))
        .unwrap_or(i64::MAX);
    listings
        .iter()
        .any(|l| l.all_states && sa.first_us <= l.start_us && l.exit_us <= down)
}

/// Scores a daemon's events (in the order written) against pluto's log.
/// A transition is judged when its SA (or negotiation) lived `min_life`
/// seconds or more, and, for an end, when the daemon ran `min_life`
/// seconds past it ([`reported`] says how events are read). Transitions
/// before `from` (seconds since midnight: when a replayed series starts)
/// are not judged.
pub fn judge(h: &History, events: &[serde_json::Value], min_life: i64, from: i64) -> Score {
    score(h, events, min_life, from, None, &BTreeSet::new())
}

/// The serials of one pluto run that its Linux audit records name: every
/// `CRYPTO_IKE_SA` / `CRYPTO_IPSEC_SA` line of `audit_log` from the pid
/// that `pluto_log` says it started with (`pid:N`; both plutos of the lab
/// write to one kernel).
pub fn recorded_serials(audit_log: &Path, pluto_log: &Path) -> BTreeSet<u64> {
    let pluto = std::fs::read_to_string(pluto_log).unwrap_or_default();
    let Some(pid) = pluto.split("pid:").nth(1).and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    }) else {
        return BTreeSet::new();
    };
    let needle = format!(" pid={pid} ");
    std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("type=CRYPTO_") && l.contains(&needle))
        .filter_map(|l| field_number(l, "connstate=").map(|n| n as u64))
        .collect()
}

/// [`judge`] for a daemon that reads pluto's audit records next to its
/// listings: every transition counts however short, except a negotiation
/// that neither left a record (pluto writes none for a Quick Mode it
/// deletes half-open) nor lasted across a listing (lab 4.10: one deleted
/// 22 ms after it began, its peer gone): nothing pluto sends shows it.
pub fn judge_audited(
    h: &History,
    events: &[serde_json::Value],
    recorded: &BTreeSet<u64>,
    listings: &[Listing],
) -> Score {
    let unseen: BTreeSet<(usize, u64)> = h
        .sas
        .iter()
        .filter(|(_, sa)| sa.kind.is_none())
        .filter(|((_, serial), sa)| {
            let (first, down) = (sa.first * 1_000_000, sa.down_us.unwrap_or(i64::MAX));
            !recorded.contains(serial)
                && !listings
                    .iter()
                    .any(|l| l.all_states && first <= l.start_us && l.exit_us <= down)
        })
        .map(|(key, _)| *key)
        .collect();
    score(h, events, 0, 0, None, &unseen)
}

/// [`judge`] for a snapshot daemon whose poll commands are known
/// ([`read_listings`]): what no listing could show is out of its reach.
/// An SA established and gone between two listings may be reported as a
/// failed negotiation (a listing saw it half-open), and the SA it replaced
/// as ended for another reason than `replaced` (no listing showed the
/// successor): neither is counted against the daemon. SAs that lived long
/// enough are judged as by [`judge`].
pub fn judge_polled(
    h: &History,
    events: &[serde_json::Value],
    min_life: i64,
    from: i64,
    listings: Option<&[Listing]>,
) -> Score {
    score(h, events, min_life, from, listings, &BTreeSet::new())
}

/// The judge itself; `out_of_reach` lists negotiations not judged.
fn score(
    h: &History,
    events: &[serde_json::Value],
    min_life: i64,
    from: i64,
    listings: Option<&[Listing]>,
    out_of_reach: &BTreeSet<(usize, u64)>,
) -> Score {
    // SAs whose successor no listing showed: their end reason is out of
    // reach; and the established SAs no listing showed up.
    let mut unseen_successor: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut unseen_up: BTreeSet<(usize, u64)> = BTreeSet::new();
    if let Some(listings) = listings {
        for ((run, serial), sa) in &h.sas {
            if sa.kind.is_some() && !listed_up(sa, listings) {
                unseen_up.insert((*run, *serial));
                if let Some(old) = sa.replaces {
                    unseen_successor.insert((*run, old));
                }
            }
        }
    }
    let last = events.iter().map(event_time).max().unwrap_or(0);
    let mut truth: BTreeMap<Transition, String> = BTreeMap::new();
    let mut judged: BTreeSet<Transition> = BTreeSet::new();
    // SAs replaced, just before pluto shut down, by an SA that never lived
    // long enough to be listed (lab 5.2: a Child SA rekeyed 0.7 s before
    // `Pluto is shutting down`): a daemon sees them go with pluto.
    let mut unlisted_successor: BTreeSet<(usize, u64)> = BTreeSet::new();
    for ((run, serial), sa) in &h.sas {
        let (run, serial) = (*run, *serial);
        // What a listing could see: pluto answers nothing while it shuts
        // down, so an SA that came up just before (lab 5.2: an ISAKMP SA
        // 4 s before `Pluto is shutting down`, pluto busy in between)
        // lived too short to be listed, however long the shutdown took.
        let listable_until = if sa.at_shutdown {
            sa.shutdown_began.or(sa.down)
        } else {
            sa.down
        };
        let lived = listable_until
            .unwrap_or(i64::MAX)
            .saturating_sub(sa.up.unwrap_or(sa.first));
        if sa.at_shutdown && lived < min_life {
            if let Some(old) = sa.replaces {
                unlisted_successor.insert((run, old));
            }
        }
        let began = sa.up.unwrap_or(sa.first);
        let long = lived >= min_life && began + min_life <= last && began > from;
        let ended_in_view = sa.down.is_some_and(|d| d + min_life < last);
        match sa.kind {
            Some(kind) => {
                let start = Transition::Start {
                    run,
                    serial,
                    kind,
                    replaces: sa.replaces,
                };
                truth.insert(start.clone(), String::new());
                if unseen_up.contains(&(run, serial)) {
                    truth
                        .entry(Transition::NegotiationFailed { run, serial })
                        .or_default();
                }
                if long {
                    judged.insert(start);
                } else if sa.at_shutdown {
                    // Up too briefly before the shutdown to be listed up: a
                    // daemon that listed it half-open can only tell that it
                    // ended with pluto.
                    truth.insert(
                        Transition::NegotiationFailed { run, serial },
                        "pluto-restart".to_string(),
                    );
                }
                if sa.down.is_some() {
                    let end = Transition::End { run, serial, kind };
                    truth.insert(end.clone(), sa.end_reason().to_string());
                    if long && ended_in_view {
                        judged.insert(end);
                    }
                }
            }
            None => {
                if sa.down.is_some() {
                    let t = Transition::NegotiationFailed { run, serial };
                    let reason = if sa.at_shutdown { "pluto-restart" } else { "" };
                    truth.insert(t.clone(), reason.to_string());
                    let listable = listings.is_none_or(|ls| listed_half_open(sa, ls));
                    if long && ended_in_view && listable && !out_of_reach.contains(&(run, serial)) {
                        judged.insert(t);
                    }
                }
            }
        }
    }
    // The larval Child SA of an IKE_AUTH that never completed (lab 4.10:
    // east stalled 23 s, west's IKE SA #49 timed out): listed half-open
    // (`STATE_V2_IKE_AUTH_CHILD_I0`) and deleted with its IKE SA, and never
    // named in pluto's log. Its `negotiation-failed` is true, not judged.
    for ((run, serial), sa) in &h.sas {
        if sa.sent_ike_auth && sa.up.is_none() && !h.sas.contains_key(&(*run, serial + 1)) {
            truth
                .entry(Transition::NegotiationFailed {
                    run: *run,
                    serial: serial + 1,
                })
                .or_default();
        }
    }
    // What the daemon's first listing showed (its start-up inventory,
    // `observed-at-start`) was up when pluto answered it, which can be a
    // second or more after the tick `from` names (gateway lab: the
    // listing of 07:05:44 shows g19's #116, which pluto logged rekeyed at
    // 07:05:45.03): its start is out of any daemon's reach.
    let inventory: BTreeSet<u64> = events
        .iter()
        .filter(|e| e["event"]["reason"] == "observed-at-start")
        .filter(|e| e["libreswan"]["pluto"]["generation"].as_u64().unwrap_or(0) == 0)
        .filter_map(|e| e["libreswan"]["sa"]["serial"].as_u64())
        .collect();
    judged.retain(
        |t| !matches!(t, Transition::Start { run: 0, serial, .. } if inventory.contains(serial)),
    );
    let mut score = Score {
        judged: judged.len(),
        ..Score::default()
    };
    let mut seen = BTreeSet::new();
    for Reported {
        transition: t,
        action,
        serial,
        run,
        reason,
        ..
    } in reported(events)
    {
        score.reported += 1;
        let describe = || format!("{action} #{serial} (pluto run {run}, reason {reason:?})");
        match truth.get(&t) {
            Some(want) => {
                score.right += 1;
                if judged.contains(&t) && seen.insert(t.clone()) {
                    score.found += 1;
                    let checks_reason = (matches!(t, Transition::End { .. })
                        || want == "pluto-restart")
                        && !(want == "replaced" && unseen_successor.contains(&(run, serial)));
                    if checks_reason {
                        score.ends += 1;
                        // An SA pluto deleted while it shut down was both.
                        let both = (want == "pluto-restart" && reason == "deleted")
                            || (want == "replaced"
                                && reason == "pluto-restart"
                                && unlisted_successor.contains(&(run, serial)));
                        if reason == want || both {
                            score.ends_right += 1;
                        } else {
                            score
                                .wrong_reasons
                                .push(format!("{}, pluto: {want}", describe()));
                        }
                    }
                }
            }
            None => score.false_reports.push(describe()),
        }
    }
    for t in judged.difference(&seen) {
        let sa = match t {
            Transition::Start { run, serial, .. }
            | Transition::End { run, serial, .. }
            | Transition::NegotiationFailed { run, serial } => &h.sas[&(*run, *serial)],
        };
        score
            .missed
            .push(format!("{t:?} of {:?} (pluto: {sa:?})", sa.conn));
    }
    score
}
