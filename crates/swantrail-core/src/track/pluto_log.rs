//! Fusing pluto's own log into the tracker: the log decides what happened
//! and why.
//!
//! Snapshots give the inventory (instances, bytes, tunnels, and whatever
//! no log line shows); audit records give exact times; pluto's log says in
//! words which SA rekeyed which, and why an SA ended. The rules
//! (docs/events.md, "What pluto's log decides"):
//!
//! * **Times and SAs between polls.** Every SA the log shows established
//!   or gone is handed to the Linux audit fusion (`track/linux_audit.rs`)
//!   as the record pluto would have written, at the log line's time, under
//!   the log's pluto run (its `pid:` when `Starting Pluto` logged one). So
//!   the log alone gets everything that fusion gives: events at the log's
//!   time, the SAs that lived and died between two polls, held events for a
//!   line not yet read, and the same event ids whichever path saw an SA.
//! * **What happened.** As events go out, every SA event the log knows is
//!   made to say what the log says: a start is a rekey of the SA the log
//!   names (`initiator rekeyed Child SA #25`), or no rekey at all when the
//!   log says the SA was established anew (a Child SA deleted and revived
//!   between two polls); an end is `replaced`, `expired` or `deleted` as
//!   the log's cause says, and carries `libreswan.end.cause` and the line
//!   (`libreswan.end.log`). An event id follows its action, as the
//!   snapshot path names it, so it stays one per (run, serial, transition).
//! * **Why.** A cause is read from the SA's lines together, when its end
//!   event goes out: a later SA that rekeyed it (`replaced`), pluto
//!   shutting down, an `expired` line, the peer's Delete, a liveness
//!   failure (or a timeout of an established IKE SA), a refused
//!   authentication, a negotiation's timeout, its IKE SA's cause for a
//!   Child SA that went with it, a connection an administrator terminated
//!   or an SA pluto deleted with a notification unasked (`local-delete`),
//!   and, for IKEv1, the lifetime running out (a quiet delete, a revival,
//!   a newer SA of the connection beside it); for IKEv2, the peer's Delete
//!   that 4.10 does not name (an IKE SA deleted without notification, a
//!   Child SA ended by its traffic summary alone).
//! * **Joining late.** A source added while SAs are up reads no start for
//!   them: a line that says one was up (its traffic summary, an
//!   established state deleted, a rekey of it) still makes its end the
//!   log's, and the rules that need its whole life are not applied.
//!
//! Everything is bounded: at most [`MAX_RUNS`] pluto runs and [`MAX_SAS`]
//! SAs per run are remembered, the oldest forgotten first, and a line is
//! kept cut. Without a `pluto-log` source this state stays empty and
//! nothing changes. This module never decides anything a snapshot shows and
//! no log line does (instances, bytes, tunnels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Tracker;
use crate::event::{Action, EndFields, Event, EventKind, event_id};
use crate::linux_audit::{Op, PlutoRecord};
use crate::pluto_log::{Happening, PlutoLogRecord, Role};
use crate::snapshot::SaKind;

/// pluto runs remembered (their SAs' causes); older ones are forgotten.
const MAX_RUNS: usize = 4;
/// SAs remembered per run; beyond this the lowest serials are forgotten.
const MAX_SAS: usize = 32_768;
/// Connections whose last `terminating SAs` time is remembered per run.
const MAX_TERMINATED: usize = 4096;
/// How long after an administrator terminated a connection an SA of it
/// ending counts as deleted by that (µs): pluto deletes them at once, but
/// a busy one logs the deletes over a few seconds.
const TERMINATE_WINDOW_US: i64 = 5_000_000;
/// How close a Child SA's end must be to its IKE SA's for it to have
/// gone with it (µs).
const WITH_PARENT_US: i64 = 1_000_000;
/// How long after a Child SA the peer deleted its IKE SA can go and still
/// be the same Delete of the peer's (µs): the peer deletes the Child SAs
/// first, each in an exchange of its own.
const PEER_DELETE_US: i64 = 5_000_000;

/// Why an SA ended, as pluto's log says it (`libreswan.end.cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The peer sent a Delete.
    PeerDeleted,
    /// pluto deleted it on its own side: an administrator's `whack
    /// --down`, `--delete` or `--deletestate`.
    LocalDelete,
    /// The peer stopped answering liveness (DPD) checks.
    LivenessFailure,
    /// Its lifetime ran out with no rekey.
    Expired,
    /// A rekey replaced it.
    Replaced,
    /// Authentication was refused.
    AuthenticationFailed,
    /// pluto shut down (or was stopped) with it.
    PlutoShutdown,
    /// The negotiation got no (acceptable) answer in time.
    NegotiationTimeout,
}

impl Cause {
    /// The value of `libreswan.end.cause`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::PeerDeleted => "peer-deleted",
            Cause::LocalDelete => "local-delete",
            Cause::LivenessFailure => "liveness-failure",
            Cause::Expired => "expired",
            Cause::Replaced => "replaced",
            Cause::AuthenticationFailed => "authentication-failed",
            Cause::PlutoShutdown => "pluto-shutdown",
            Cause::NegotiationTimeout => "negotiation-timeout",
        }
    }

    /// The `event.reason` an end with this cause keeps (its existing
    /// values: `replaced`, `expired`, `pluto-restart`, `deleted`).
    fn reason(self) -> &'static str {
        match self {
            Cause::Replaced => "replaced",
            Cause::Expired => "expired",
            Cause::PlutoShutdown => "pluto-restart",
            _ => "deleted",
        }
    }
}

/// What the log says about one SA.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct LogSa {
    connection: String,
    kind: Option<SaKind>,
    ikev1: bool,
    /// When it was logged established (µs).
    up_us: Option<i64>,
    /// The line that says so (for a rekey, the cause its predecessor cites).
    up_line: Option<String>,
    /// When pluto logged deleting it (µs).
    down_us: Option<i64>,
    /// Its last line (µs).
    #[serde(default)]
    last_us: i64,
    /// The SA it rekeyed.
    replaces: Option<u64>,
    /// An IKEv1 negotiation's `to replace #N`: a rekey when it comes up
    /// while #N is still up.
    replacing: Option<u64>,
    /// The kind a negotiation was meant to make, for a failed one.
    negotiating: Option<SaKind>,
    /// A Child SA's IKE SA.
    parent: Option<u64>,
    /// Lines that say why, by what they say.
    said: Vec<(Said, String)>,
    /// `and sending notification` (true) or `NOT` (false) on its delete.
    notified: Option<bool>,
    /// Its delete line, the cause's line when no other says it.
    deleting: Option<String>,
    /// It ended with its pluto run.
    at_shutdown: bool,
    /// A line says it was up (its traffic summary, an established state
    /// deleted, a later SA that rekeyed it), though the log did not show
    /// its start (a source added while it was up).
    #[serde(default)]
    installed: bool,
}

impl LogSa {
    /// The log shows it was up: its start, or a line that says it was.
    fn was_up(&self) -> bool {
        self.up_us.is_some() || self.installed
    }
}

/// What a line said about an SA, before the end is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Said {
    PeerDeleted,
    Liveness,
    Timeout,
    AuthenticationFailed,
    Expired,
    Revival,
    Stale,
}

/// One pluto run as its log shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct LogRun {
    /// When it started (µs), if the log shows its start.
    started_us: Option<i64>,
    /// When it began shutting down (µs).
    shutting_down: Option<i64>,
    sas: BTreeMap<u64, LogSa>,
    /// Connection → when an administrator last terminated it (µs).
    terminated: BTreeMap<String, i64>,
}

/// The log's pluto runs and what they said; part of the checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct PlutoLogState {
    /// Runs by key: the pid `Starting Pluto` logged, else a number of
    /// our own counted down from `u32::MAX`.
    runs: BTreeMap<u32, LogRun>,
    /// The run the lines being read belong to.
    current: Option<u32>,
    /// Tracker generation → (run key, run anchor): which log run a
    /// generation's events are about, and the anchor their ids use.
    bound: BTreeMap<u64, (u32, String)>,
    /// Where the reader of the log stopped (its file position or journal
    /// cursor), written by it and kept with the tracker, so that a
    /// restarted daemon reads on from the line after the last one fused.
    position: Option<String>,
}

impl PlutoLogState {
    /// Nothing read from the log: the state of every tracker without it.
    pub(crate) fn is_empty(&self) -> bool {
        *self == PlutoLogState::default()
    }
}

impl Tracker {
    /// Take lines of pluto's log (decoded, in the order pluto wrote them)
    /// into the tracker's state; `position` is where the reader stopped,
    /// kept in the checkpoint with them. Like audit records, they make no
    /// events by themselves: the next [`Tracker::observe`] fuses them.
    pub fn ingest_pluto_log(&mut self, records: &[PlutoLogRecord], position: Option<String>) {
        let mut audit = Vec::new();
        for r in records {
            self.pluto_log_line(r, &mut audit);
        }
        if position.is_some() {
            self.pluto_log.position = position;
        }
        self.ingest_linux_audit_records(&audit);
    }

    /// Where the reader of pluto's log stopped, as it said in
    /// [`Tracker::ingest_pluto_log`]: a restarted daemon's reader goes on
    /// from there.
    pub fn pluto_log_position(&self) -> Option<&str> {
        self.pluto_log.position.as_deref()
    }

    fn pluto_log_line(&mut self, r: &PlutoLogRecord, audit: &mut Vec<PlutoRecord>) {
        let state = &mut self.pluto_log;
        if let Happening::PlutoStarted { pid } = r.what {
            let key = match pid {
                Some(pid) => pid,
                None => state
                    .runs
                    .keys()
                    .filter(|k| **k > u32::MAX - 1024)
                    .min()
                    .map_or(u32::MAX, |k| k - 1),
            };
            // The run before is over: what it still had open ended with it.
            if let Some(old) = state.current.filter(|old| *old != key) {
                close_run(state, old, r.at_us, audit);
            }
            state.runs.insert(
                key,
                LogRun {
                    started_us: Some(r.at_us),
                    ..LogRun::default()
                },
            );
            state.current = Some(key);
            self.linux_audit
                .note_pluto_run(key, r.at_us.div_euclid(1000));
            forget_old_runs(state);
            return;
        }
        let key = *state.current.get_or_insert(r.pid.unwrap_or(0));
        let run = state.runs.entry(key).or_default();
        match (&r.what, r.serial, r.connection.as_deref()) {
            (Happening::PlutoShuttingDown, _, _) => {
                run.shutting_down.get_or_insert(r.at_us);
            }
            (Happening::Terminating, _, Some(conn)) => {
                run.terminated.insert(conn.to_string(), r.at_us);
                while run.terminated.len() > MAX_TERMINATED {
                    let oldest = run
                        .terminated
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(c, _)| c.clone());
                    if let Some(c) = oldest {
                        run.terminated.remove(&c);
                    }
                }
            }
            (what, Some(serial), Some(conn)) => {
                let shutting_down = run.shutting_down.is_some();
                let up_before: Option<bool> = match what {
                    Happening::Established { replaces: None, .. } => {
                        let replacing = run.sas.get(&serial).and_then(|s| s.replacing);
                        // An SA the log shows nothing of but lines about it
                        // began before the log did: up, as a rekey says.
                        replacing.map(|old| {
                            run.sas.get(&old).is_none_or(|o| {
                                o.down_us.is_none()
                                    && (o.was_up()
                                        || (o.up_us.is_none() && o.negotiating.is_none()))
                            })
                        })
                    }
                    _ => None,
                };
                // The SA a rekey names was up, whether or not the log
                // holds its start.
                if let Happening::Established {
                    kind,
                    ike_version,
                    replaces: Some(old),
                    ..
                } = what
                {
                    let o = run.sas.entry(*old).or_default();
                    if o.up_us.is_none() && o.down_us.is_none() && *old != serial {
                        o.installed = true;
                        o.kind.get_or_insert(*kind);
                        o.ikev1 |= *ike_version == 1;
                        if o.connection.is_empty() {
                            o.connection = conn.to_string();
                        }
                    }
                }
                let sa = run.sas.entry(serial).or_default();
                if sa.connection.is_empty() {
                    sa.connection = conn.to_string();
                }
                sa.last_us = sa.last_us.max(r.at_us);
                let line = || r.text.clone();
                match what {
                    Happening::Established {
                        kind,
                        ike_version,
                        role,
                        replaces,
                        parent,
                    } => {
                        if sa.up_us.is_none() {
                            sa.up_us = Some(r.at_us);
                            sa.up_line = Some(line());
                            sa.kind = Some(*kind);
                            sa.ikev1 = *ike_version == 1;
                            sa.replaces =
                                replaces.or(sa.replacing.filter(|_| up_before == Some(true)));
                            sa.parent = parent.or(sa.parent);
                            audit.push(record(
                                r.at_us,
                                key,
                                conn,
                                serial,
                                *kind,
                                Op::Established,
                                *ike_version,
                                *role,
                            ));
                        }
                    }
                    Happening::Negotiating { kind, replaces } => {
                        sa.negotiating.get_or_insert(*kind);
                        if sa.replacing.is_none() {
                            sa.replacing = *replaces;
                        }
                    }
                    Happening::PeerDeleted => sa.said.push((Said::PeerDeleted, line())),
                    Happening::LivenessFailure => sa.said.push((Said::Liveness, line())),
                    Happening::Timeout => sa.said.push((Said::Timeout, line())),
                    Happening::AuthenticationFailed => {
                        sa.said.push((Said::AuthenticationFailed, line()));
                    }
                    Happening::Expired => sa.said.push((Said::Expired, line())),
                    Happening::StaleNotRekeyed => sa.said.push((Said::Stale, line())),
                    Happening::Revival => sa.said.push((Said::Revival, line())),
                    Happening::Deleting {
                        notified,
                        revival,
                        was_up,
                    } => {
                        if *revival {
                            sa.said.push((Said::Revival, line()));
                        }
                        if let Some(w) =
                            was_up.filter(|_| sa.up_us.is_none() && sa.down_us.is_none())
                        {
                            sa.installed = true;
                            sa.kind.get_or_insert(w.kind);
                            sa.ikev1 |= w.ike_version == Some(1);
                        }
                        if sa.down_us.is_none() {
                            sa.down_us = Some(r.at_us);
                            sa.notified = *notified;
                            sa.deleting = Some(line());
                            sa.at_shutdown = shutting_down;
                            let (kind, op) = match (sa.was_up(), sa.kind) {
                                (true, Some(kind)) => (kind, Op::Destroyed),
                                _ => (sa.negotiating.unwrap_or(SaKind::Ike), Op::Failed),
                            };
                            let version = if sa.ikev1 { 1 } else { 2 };
                            audit.push(record(r.at_us, key, conn, serial, kind, op, version, None));
                        }
                    }
                    Happening::PlutoStarted { .. }
                    | Happening::PlutoShuttingDown
                    | Happening::Terminating
                    | Happening::Mentioned => {}
                }
                // Only the first lines of each kind are kept: the one that
                // says it, and a bound on what a chatty SA can hold.
                sa.said.dedup_by_key(|(s, _)| *s);
                sa.said.truncate(4);
                while run.sas.len() > MAX_SAS {
                    run.sas.pop_first();
                }
            }
            _ => {}
        }
    }

    /// The observe hook after a restart was handled: the log run that is
    /// current for this snapshot is the tracker's current generation.
    pub(super) fn bind_pluto_log_run(&mut self, cutoff_ms: i64) {
        let anchor = self.anchor();
        let generation = self.generation;
        let state = &mut self.pluto_log;
        let Some(current) = state.current else {
            return;
        };
        // The newest run the log started before this snapshot.
        let key = state
            .runs
            .iter()
            .filter(|(_, r)| r.started_us.is_none_or(|t| t.div_euclid(1000) < cutoff_ms))
            .max_by_key(|(k, r)| (r.started_us.unwrap_or(i64::MIN), **k == current))
            .map_or(current, |(k, _)| *k);
        // A run the log started after the one this generation is bound to
        // is a restart the snapshots have not found yet (see
        // `LinuxAuditState::shown_run`): it waits for its own generation.
        let started = |k: &u32| state.runs.get(k).and_then(|r| r.started_us);
        match state.bound.get(&generation) {
            Some((k, _)) if *k == key => {}
            Some((k, _)) if started(k) < started(&key) && state.runs.contains_key(k) => {}
            _ => {
                state.bound.insert(generation, (key, anchor));
            }
        }
        while state.bound.len() > MAX_RUNS {
            state.bound.pop_first();
        }
    }

    /// Make every SA event going out say what pluto's log says (see the
    /// module comment). Events of SAs the log does not know are left as
    /// the snapshots made them.
    pub(super) fn decide_by_pluto_log(&self, events: &mut [Event]) {
        if self.pluto_log.runs.is_empty() {
            return;
        }
        let host = &self.config.hostname;
        for event in events.iter_mut() {
            if event.event.kind != EventKind::Event {
                continue;
            }
            let Some(serial) = event.libreswan.sa.as_ref().map(|s| s.serial) else {
                continue;
            };
            let generation = event.libreswan.pluto.generation;
            let Some((key, anchor)) = self.pluto_log.bound.get(&generation) else {
                continue;
            };
            let Some(run) = self.pluto_log.runs.get(key) else {
                continue;
            };
            let Some(sa) = run.sas.get(&serial) else {
                continue;
            };
            let action = event.event.action;
            let (new_action, subject) = match action {
                Action::IkeSaEstablished
                | Action::IkeSaRekeyed
                | Action::ChildSaEstablished
                | Action::ChildSaRekeyed => {
                    let Some(kind) = sa.kind.filter(|_| sa.up_us.is_some()) else {
                        continue;
                    };
                    let replaces = sa.replaces;
                    let new_action = match (kind, replaces.is_some()) {
                        (SaKind::Ike, false) => Action::IkeSaEstablished,
                        (SaKind::Ike, true) => Action::IkeSaRekeyed,
                        (SaKind::Child, false) => Action::ChildSaEstablished,
                        (SaKind::Child, true) => Action::ChildSaRekeyed,
                    };
                    if let Some(f) = event.libreswan.sa.as_mut() {
                        f.replaces = replaces;
                    }
                    event.event.reason = replaces.map(|_| "rekey".to_string());
                    let subject = match replaces {
                        Some(old) => format!("sa:{serial}:replaces:{old}"),
                        None => format!("sa:{serial}"),
                    };
                    (new_action, subject)
                }
                Action::IkeSaExpired
                | Action::IkeSaDeleted
                | Action::ChildSaExpired
                | Action::ChildSaDeleted => {
                    let seen = if action.as_str().starts_with("ike") {
                        SaKind::Ike
                    } else {
                        SaKind::Child
                    };
                    let v1 = event.libreswan.sa.as_ref().and_then(|f| f.ike_version) == Some(1);
                    match cause_of(run, serial, Some((seen, v1))) {
                        None => {
                            // The log has its start and its end and no SA that
                            // rekeyed it: whatever the snapshots inferred, no
                            // rekey replaced it. (Without its start, the rekey
                            // may have come before the log.)
                            if event.event.reason.as_deref() != Some("replaced")
                                || sa.up_us.is_none()
                                || sa.down_us.is_none()
                            {
                                continue;
                            }
                            event.event.reason = Some("deleted".to_string());
                            if let Some(f) = event.libreswan.sa.as_mut() {
                                f.replaced_by = None;
                            }
                            let deleted = match seen {
                                SaKind::Ike => Action::IkeSaDeleted,
                                SaKind::Child => Action::ChildSaDeleted,
                            };
                            (deleted, format!("sa:{serial}"))
                        }
                        Some((cause, line, successor)) => {
                            let kind = sa.kind.unwrap_or(seen);
                            let expired = matches!(cause, Cause::Replaced | Cause::Expired);
                            let new_action = match (kind, expired) {
                                (SaKind::Ike, true) => Action::IkeSaExpired,
                                (SaKind::Ike, false) => Action::IkeSaDeleted,
                                (SaKind::Child, true) => Action::ChildSaExpired,
                                (SaKind::Child, false) => Action::ChildSaDeleted,
                            };
                            event.event.reason = Some(cause.reason().to_string());
                            if let Some(f) = event.libreswan.sa.as_mut() {
                                f.replaced_by = successor.or(f.replaced_by.filter(|_| expired));
                            }
                            event.libreswan.end = Some(EndFields {
                                cause: cause.as_str().to_string(),
                                log: line,
                            });
                            (new_action, format!("sa:{serial}"))
                        }
                    }
                }
                Action::NegotiationFailed => {
                    if sa.up_us.is_none() && sa.down_us.is_none() && sa.last_us > 0 {
                        // Dropped without a word (the larval Child SA of a
                        // refused IKE_AUTH): it ended at its last line.
                        event.timestamp = super::rfc3339_ms(sa.last_us.div_euclid(1000));
                    }
                    if let Some((cause, line, _)) = cause_of(run, serial, None) {
                        if cause == Cause::PlutoShutdown {
                            event.event.reason = Some(cause.reason().to_string());
                        }
                        event.libreswan.end = Some(EndFields {
                            cause: cause.as_str().to_string(),
                            log: line,
                        });
                    }
                    continue;
                }
                _ => continue,
            };
            if new_action != action
                || event.event.id != event_id(&[host, anchor, action.as_str(), &subject])
            {
                event.event.action = new_action;
                event.event.types = vec![new_action.ecs_type().to_string()];
                event.event.id = event_id(&[host, anchor, new_action.as_str(), &subject]);
            }
        }
    }
}

/// The audit record pluto would have written for what a line says, at
/// `at_us`.
#[allow(clippy::too_many_arguments)]
fn record(
    at_us: i64,
    key: u32,
    conn: &str,
    serial: u64,
    kind: SaKind,
    op: Op,
    ike_version: u8,
    role: Option<Role>,
) -> PlutoRecord {
    PlutoRecord {
        unix_ms: at_us.div_euclid(1000),
        seq: 0,
        pid: Some(key),
        kind,
        op,
        connection: conn.to_string(),
        serial,
        ike_version: Some(ike_version),
        role: role.map(|r| match r {
            Role::Initiator => crate::linux_audit::Role::Initiator,
            Role::Responder => crate::linux_audit::Role::Responder,
        }),
        remote: None,
        local: None,
        satype: None,
        samode: None,
        cipher: None,
        spis: None,
    }
}

/// A run is over (a new pluto started): what it still had open ended with
/// it, at the new run's start.
fn close_run(state: &mut PlutoLogState, key: u32, at_us: i64, audit: &mut Vec<PlutoRecord>) {
    let Some(run) = state.runs.get_mut(&key) else {
        return;
    };
    run.shutting_down.get_or_insert(at_us);
    for (serial, sa) in run.sas.iter_mut().filter(|(_, sa)| sa.down_us.is_none()) {
        // A negotiation pluto dropped without a word ended at its last line.
        let (kind, op, ended) = match (sa.was_up(), sa.kind) {
            (true, Some(kind)) => {
                sa.at_shutdown = true;
                (kind, Op::Destroyed, at_us)
            }
            _ => (
                sa.negotiating.unwrap_or(SaKind::Ike),
                Op::Failed,
                sa.last_us,
            ),
        };
        sa.down_us = Some(ended);
        let ike_version = if sa.ikev1 { 1 } else { 2 };
        audit.push(record(
            ended,
            key,
            &sa.connection,
            *serial,
            kind,
            op,
            ike_version,
            None,
        ));
    }
}

fn forget_old_runs(state: &mut PlutoLogState) {
    while state.runs.len() > MAX_RUNS {
        let oldest = state
            .runs
            .iter()
            .filter(|(k, _)| Some(**k) != state.current)
            .min_by_key(|(_, r)| r.started_us.unwrap_or(i64::MIN))
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => {
                state.runs.remove(&k);
            }
            None => break,
        }
    }
}

/// Why `serial` of `run` ended, the line that says it, and (for a rekey)
/// the SA that replaced it; `None` while the log has not said it ended.
/// `seen` is the kind of SA the snapshots saw established under that
/// serial (and whether it was IKEv1), when they did: the log may not hold
/// its start (a source added while it was up).
fn cause_of(
    run: &LogRun,
    serial: u64,
    seen: Option<(SaKind, bool)>,
) -> Option<(Cause, String, Option<u64>)> {
    let sa = run.sas.get(&serial)?;
    let down = sa.down_us?;
    let up = sa.was_up() || seen.is_some();
    let kind = sa.kind.or(seen.map(|(k, _)| k));
    let ikev1 = sa.ikev1 || seen.is_some_and(|(_, v1)| v1);
    let said = |what: Said| {
        sa.said
            .iter()
            .find(|(s, _)| *s == what)
            .map(|(_, l)| l.clone())
    };
    let deleting = || sa.deleting.clone().unwrap_or_default();
    if up {
        let successor = run
            .sas
            .range(serial + 1..)
            .find(|(_, n)| n.replaces == Some(serial) && n.up_us.is_some())
            .map(|(s, n)| (*s, n));
        if let Some((new, n)) = successor {
            return Some((
                Cause::Replaced,
                n.up_line.clone().unwrap_or_default(),
                Some(new),
            ));
        }
    }
    if sa.at_shutdown {
        return Some((
            Cause::PlutoShutdown,
            sa.deleting
                .clone()
                .unwrap_or_else(|| "Pluto is shutting down".to_string()),
            None,
        ));
    }
    if let Some(line) = said(Said::Expired) {
        return Some((Cause::Expired, line, None));
    }
    if let Some(line) = said(Said::PeerDeleted) {
        return Some((Cause::PeerDeleted, line, None));
    }
    if let Some(line) = said(Said::Liveness) {
        return Some((Cause::LivenessFailure, line, None));
    }
    if let Some(line) = said(Said::AuthenticationFailed) {
        return Some((Cause::AuthenticationFailed, line, None));
    }
    if let Some(line) = said(Said::Timeout) {
        let cause = if up {
            Cause::LivenessFailure
        } else {
            Cause::NegotiationTimeout
        };
        return Some((cause, line, None));
    }
    // Deleted at its rekey time (so it was up, whether or not the log
    // still holds its start) beside a newer SA of its connection that
    // did not rekey it (a revival pluto started beside it): pluto's own
    // delete, no lifetime running out (gateway lab, g04 #540 beside #614).
    if let Some(line) = said(Said::Stale) {
        return Some((Cause::LocalDelete, line, None));
    }
    if !up {
        return None;
    }
    // A Child SA that went with its IKE SA ended for the IKE SA's reason.
    let parent = sa.parent.and_then(|p| run.sas.get(&p).map(|ps| (p, ps)));
    let parent_went = parent.is_some_and(|(_, ps)| {
        ps.down_us
            .is_some_and(|pd| (pd - down).abs() <= WITH_PARENT_US)
    });
    if let Some((p, _)) = parent.filter(|_| parent_went) {
        if let Some((cause, line, _)) =
            cause_of(run, p, Some((SaKind::Ike, ikev1))).filter(|(c, _, _)| *c != Cause::Replaced)
        {
            return Some((cause, line, None));
        }
    }
    let terminated = run
        .terminated
        .get(&sa.connection)
        .is_some_and(|t| *t <= down && down - t <= TERMINATE_WINDOW_US);
    if ikev1 && !parent_went {
        // IKEv1 says no `expired`: a lifetime running out is pluto
        // deleting the SA unasked without telling the peer, or scheduling
        // its revival, or deleting it beside a newer SA of its connection.
        let quiet = sa.notified == Some(false);
        if quiet || said(Said::Revival).is_some() {
            return Some((Cause::Expired, deleting(), None));
        }
        let superseded = run.sas.range(serial + 1..).any(|(_, n)| {
            n.kind == kind
                && n.connection == sa.connection
                && n.up_us.is_some_and(|u| u < down)
                && n.down_us.is_none_or(|d| d >= down)
        });
        if superseded && !terminated {
            return Some((Cause::Expired, deleting(), None));
        }
    }
    // pluto deleting it with a Delete to the peer, unasked, is a local
    // delete only when the log holds its start: a rekey that came before
    // the log began ends it so too (IKEv1 deletes the old SA with a
    // notification when it expires), and the snapshots saw that rekey.
    if terminated || (sa.notified == Some(true) && sa.up_us.is_some()) {
        return Some((Cause::LocalDelete, deleting(), None));
    }
    // IKEv2 says `expired` when a lifetime runs out (caught above): a
    // revival scheduled without it follows the peer's Delete (4.10 logs
    // only `received a Delete/Notify` of the connection after it; gateway
    // lab: `sh1` IKE SA #197, deleted by east 11 s after a forced rekey),
    // which the snapshots' `deleted` already says.
    if ikev1 && said(Said::Revival).is_some() {
        return Some((Cause::Expired, deleting(), None));
    }
    if !ikev1 {
        // IKEv2 pluto deletes an established IKE SA without telling the
        // peer only when the peer's Delete asked it (every other end said
        // why above: a rekey, `expired`, liveness, a terminate, shutdown).
        // 4.10 logs no `received Delete SA payload`; the revival line
        // after it (`... which received a Delete/Notify`) names no SA
        // (gateway lab: `sh1` #200, deleted by east 13 s after a forced
        // rekey).
        if kind == Some(SaKind::Ike) && sa.notified == Some(false) {
            return Some((Cause::PeerDeleted, deleting(), None));
        }
        // A Child SA whose only end line is its traffic summary was not
        // deleted by pluto on its own (that logs `deleting ...` first):
        // the peer's Delete took it, with its IKE SA when that went too
        // (east deletes the Child SAs, then the IKE SA, a second or more
        // later on a busy gateway).
        if kind == Some(SaKind::Child) && sa.notified.is_none() && ended_by_summary(sa) {
            let parent_cause = parent
                .filter(|(_, ps)| {
                    ps.down_us.is_some_and(|pd| {
                        pd >= down - WITH_PARENT_US && pd - down <= PEER_DELETE_US
                    })
                })
                .and_then(|(p, _)| cause_of(run, p, Some((SaKind::Ike, ikev1))))
                .filter(|(c, _, _)| *c != Cause::Replaced);
            if let Some((cause, line, _)) = parent_cause {
                return Some((cause, line, None));
            }
            return Some((Cause::PeerDeleted, deleting(), None));
        }
    }
    None
}

/// Its first end line is a traffic summary (`ESP traffic information`),
/// not a `deleting` line of its own.
fn ended_by_summary(sa: &LogSa) -> bool {
    sa.deleting
        .as_deref()
        .is_some_and(|l| l.contains(" traffic information"))
}
