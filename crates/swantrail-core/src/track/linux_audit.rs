//! Fusing pluto's Linux audit records into the tracker.
//!
//! Snapshots stay the authority for names, instances, rekey links,
//! lifetimes, bytes and tunnel state; the records add what a poll cannot
//! know: the exact moment an SA started, failed or ended, and the SAs that
//! lived and died between two snapshots. The rules (docs/events.md, "How the
//! tracker decides"):
//!
//! * **Ownership.** Every (pluto run, serial) belongs to exactly one path.
//!   A serial a snapshot lists, or the ledger holds, is the snapshot path's:
//!   its events are the ones the tracker always made, with `@timestamp`
//!   replaced by the record's time. Any other serial with a start record is
//!   the audit path's: it gets `*-established` (or `negotiation-failed`)
//!   and `*-deleted`/`*-expired` from the records alone. A serial handled by
//!   the audit path is remembered (in the checkpoint), so a record read again
//!   after a restart never makes a second event. Both paths name events the
//!   same way (host, run anchor, action, `sa:N`), so an id is one per
//!   (run, serial, transition) whichever path saw it.
//! * **Timing.** Records arrive at once, snapshots every interval. A record
//!   is acted on at the first observation whose snapshot was taken after
//!   it: to the millisecond when the snapshot knows when pluto answered
//!   (`taken_at_ms`, a command source), else in a later second (`taken_at`
//!   has one-second resolution). By then the snapshot has had its chance to
//!   list the SA and supply its instance and links. A start the audit path
//!   reported that a later listing shows after all (the record came a hair
//!   before the answer) is not reported a second time. Until then it waits in the tracker's state. The
//!   other way round, an observation whose snapshot-path SA events have no
//!   record yet is held until the next one (the settle window), so that
//!   they still get the record's time.
//! * **pluto runs.** Records carry pluto's pid, and the audit source passes
//!   on only those of its own pluto (its `pid_file`). The newest pid that
//!   wrote before a snapshot is bound to the tracker's current run
//!   (generation and anchor); a restart found by the snapshots binds the new
//!   pid to the new run, and the old run's records keep the old run's ids.
//!
//! This module never overrules what the snapshot path decided from what it
//! saw (which SA replaced which, why a tunnel went down); it adds times and
//! SAs, and, for a rekey whose new SA no snapshot saw, the link and the old
//! SA's `replaced`, which no snapshot could show.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Detail, Emitter, Index, Tracker, connection_fields};
use crate::event::{Action, Endpoint, Event, EventKind, SaFields, event_id, rfc3339};
use crate::linux_audit::{Op, PlutoRecord};
use crate::snapshot::{ConnRef, SaKind, TunnelKey};

/// pluto runs remembered; older ones are forgotten with their records.
const MAX_RUNS: usize = 8;
/// Serials per run remembered as handled by the audit path.
const MAX_DONE: usize = 65_536;
/// SAs with records waiting for a snapshot; beyond this the oldest serial of
/// the oldest run is dropped (a gateway whose snapshots stopped).
const MAX_PENDING: usize = 200_000;

/// What the records say about one SA.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LinuxAuditSa {
    kind: Option<SaKind>,
    connection: String,
    started_ms: Option<i64>,
    failed_ms: Option<i64>,
    destroyed_ms: Option<i64>,
    ike_version: Option<u8>,
    remote: Option<String>,
    local: Option<String>,
    /// The snapshot path owns it: it was listed or is in the ledger.
    claimed: bool,
    /// The audit path has reported its start.
    start_reported: bool,
}

/// One pluto run as the records see it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Run {
    /// The earliest record of this pid.
    first_ms: i64,
    /// The tracker run it is bound to: (generation, anchor).
    bound: Option<(u64, String)>,
    /// Serials whose records are kept, by serial.
    sas: BTreeMap<u64, LinuxAuditSa>,
    /// Serials the audit path (or the snapshot path, once done) finished.
    done: BTreeSet<u64>,
    /// `IKE_AUTH` placeholders the snapshot path let go before any record
    /// of theirs came: a failed start that comes later is no negotiation
    /// of their own, a start that succeeded is theirs to report.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    placeholders: BTreeSet<u64>,
}

/// The records the tracker holds, per pluto pid; part of the checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct LinuxAuditState {
    runs: BTreeMap<u32, Run>,
    /// One observation's events held for their records (`finish_linux_audit_wait`).
    #[serde(default)]
    waiting: Vec<Event>,
    /// When the observation before the current one was taken (seconds).
    #[serde(default)]
    previous: Option<i64>,
    /// Hold events for their records (the settle window): an audit source
    /// feeds this tracker and a next observation is sure to come (a
    /// command source's poll, a replay's next dump); a file source may not
    /// look again for hours. Set by its user, not saved.
    #[serde(skip)]
    expected: bool,
    /// Serials of (generation, serial) the snapshot path held events for
    /// before any record of their pluto run was bound: claimed for it once
    /// the run is.
    #[serde(default)]
    early: BTreeSet<(u64, u64)>,
    /// When the first poll that found each ended pluto run gone was taken
    /// (unix s), by the run's generation: a negotiation whose failure
    /// record came after it failed because pluto was shutting down, as the
    /// snapshot path says of one it listed (`pluto-restart`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    gone: BTreeMap<u64, i64>,
}

/// `unix_ms` as RFC 3339 with milliseconds (`2026-11-28T09:21:02.840Z`).
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let secs = rfc3339(unix_ms.div_euclid(1000));
    let base = secs.strip_suffix('Z').unwrap_or(&secs);
    format!("{base}.{:03}Z", unix_ms.rem_euclid(1000))
}

/// Give the event just pushed the record's time.
fn stamp_last(em: &mut Emitter, unix_ms: Option<i64>) {
    if let (Some(event), Some(ms)) = (em.events.last_mut(), unix_ms) {
        event.timestamp = rfc3339_ms(ms);
    }
}

impl LinuxAuditState {
    /// A pluto run whose start is known (pluto's log said `Starting
    /// Pluto`), so that it is bound to the snapshots taken after it even
    /// before it writes about an SA.
    pub(super) fn note_pluto_run(&mut self, pid: u32, first_ms: i64) {
        let run = self.runs.entry(pid).or_insert_with(|| Run {
            first_ms,
            ..Run::default()
        });
        run.first_ms = run.first_ms.min(first_ms);
    }

    /// The pluto run of tracker generation `generation` ended, found gone
    /// by the poll of `gone_at` (see [`LinuxAuditState::gone`]).
    pub(super) fn note_run_gone(&mut self, generation: u64, gone_at: i64) {
        self.gone.insert(generation, gone_at);
        while self.gone.len() > MAX_RUNS {
            self.gone.pop_first();
        }
    }

    fn pending(&self) -> usize {
        self.runs.values().map(|r| r.sas.len()).sum()
    }

    /// The pid bound to the tracker run `generation`, with its first
    /// record's time. A pluto that started after it belongs to a run the
    /// snapshots have not found yet: a restarted pluto that lists nothing
    /// for a few polls (gateway lab: `Starting Pluto` at 07:12:07, its
    /// first SA listed at 07:12:14) must not take the old run's ids.
    fn shown_run(&self, generation: u64) -> Option<(u32, i64)> {
        let pid = self.pid_of(generation)?;
        Some((pid, self.runs.get(&pid)?.first_ms))
    }

    /// The pid bound to the tracker run `generation`.
    fn pid_of(&self, generation: u64) -> Option<u32> {
        self.runs
            .iter()
            .find(|(_, r)| r.bound.as_ref().is_some_and(|(g, _)| *g == generation))
            .map(|(pid, _)| *pid)
    }

    /// When pluto tore down `connection`'s SAs between the last observation
    /// and `now`: the first end record of one of them. pluto writes no
    /// record for a negotiation it abandons (an IKEv1 Quick Mode still
    /// waiting), but it abandons one when it ends its connection's SAs
    /// (a terminate, a dead peer, a restart), in the same instant.
    fn torn_down(&self, pid: u32, connection: &str, now: i64) -> Option<i64> {
        let from = self.previous?.saturating_mul(1000);
        let to = now.saturating_add(1).saturating_mul(1000);
        self.runs
            .get(&pid)?
            .sas
            .values()
            .filter(|sa| sa.connection == connection)
            .filter_map(|sa| sa.destroyed_ms.or(sa.failed_ms))
            .filter(|t| *t > from && *t < to)
            .min()
    }

    /// The record time that stamps `action` of `serial` in run `generation`.
    fn stamp(&self, generation: u64, serial: u64, action: Action) -> Option<i64> {
        let sa = self.runs.get(&self.pid_of(generation)?)?.sas.get(&serial)?;
        match action {
            Action::IkeSaEstablished
            | Action::IkeSaRekeyed
            | Action::ChildSaEstablished
            | Action::ChildSaRekeyed
            | Action::TunnelUp => sa.started_ms,
            Action::NegotiationFailed => sa.failed_ms.or(sa.destroyed_ms),
            Action::IkeSaExpired
            | Action::IkeSaDeleted
            | Action::ChildSaExpired
            | Action::ChildSaDeleted => sa.destroyed_ms,
            _ => None,
        }
    }
}

impl Tracker {
    /// Say that a Linux audit source feeds this tracker and that observations
    /// keep coming (a polled source), so that an observation whose SA
    /// events lack their records waits for the next one (the settle
    /// window), from the first observation on.
    pub fn expect_linux_audit_records(&mut self, expected: bool) {
        self.linux_audit.expected = expected;
    }

    /// Take pluto's Linux audit records (any order, repeats allowed) into the
    /// tracker's state. They make no events by themselves: the next
    /// [`Tracker::observe`] fuses them with its snapshot, so that the
    /// snapshot can still say which instance an SA belonged to.
    pub fn ingest_linux_audit_records(&mut self, records: &[PlutoRecord]) {
        let state = &mut self.linux_audit;
        for r in records {
            let pid = r.pid.unwrap_or(0);
            let run = state.runs.entry(pid).or_insert_with(|| Run {
                first_ms: r.unix_ms,
                ..Run::default()
            });
            run.first_ms = run.first_ms.min(r.unix_ms);
            if run.done.contains(&r.serial)
                || (r.op == Op::Failed && run.placeholders.contains(&r.serial))
            {
                continue;
            }
            let sa = run.sas.entry(r.serial).or_default();
            sa.kind = Some(r.kind);
            if sa.connection.is_empty() {
                sa.connection = r.connection.clone();
            }
            let slot = match r.op {
                Op::Established => &mut sa.started_ms,
                Op::Failed => &mut sa.failed_ms,
                Op::Destroyed => &mut sa.destroyed_ms,
            };
            *slot = Some(slot.map_or(r.unix_ms, |t| t.min(r.unix_ms)));
            sa.ike_version = sa.ike_version.or(r.ike_version);
            if let Some(ip) = r.remote {
                sa.remote = Some(ip.to_string());
            }
            if let Some(ip) = r.local {
                sa.local = Some(ip.to_string());
            }
        }
        while state.runs.len() > MAX_RUNS {
            let oldest = state
                .runs
                .iter()
                .min_by_key(|(_, r)| r.first_ms)
                .map(|(pid, _)| *pid);
            if let Some(pid) = oldest {
                state.runs.remove(&pid);
            }
        }
        while state.pending() > MAX_PENDING {
            let Some(run) = state.runs.values_mut().find(|r| !r.sas.is_empty()) else {
                break;
            };
            run.sas.pop_first();
        }
    }

    /// The observe hook before the snapshot path judges anything (after a
    /// restart was handled): bind the current pluto run, and hand the
    /// serials the snapshot lists or the ledger holds to the snapshot path,
    /// before it closes any of them.
    pub(super) fn claim_linux_audit_sas(&mut self, listing: &Index<'_>, cutoff: i64) {
        if self.linux_audit.runs.is_empty() {
            return;
        }
        // The newest pluto that wrote before this snapshot is the one it shows.
        let current = self
            .linux_audit
            .runs
            .iter()
            .filter(|(_, r)| r.first_ms < cutoff)
            .max_by_key(|(_, r)| r.first_ms)
            .map(|(pid, _)| *pid);
        let binding = (self.generation, self.anchor());
        let shown = self.linux_audit.shown_run(self.generation);
        for (pid, run) in self.linux_audit.runs.iter_mut() {
            let newer_than_shown =
                shown.is_some_and(|(p, first)| p != *pid && run.first_ms > first);
            if run.bound.is_none()
                && (Some(*pid) == current || run.first_ms < cutoff)
                && !newer_than_shown
            {
                run.bound = Some(binding.clone());
            }
        }
        let Some(run) = current.and_then(|pid| self.linux_audit.runs.get_mut(&pid)) else {
            return;
        };
        if run.bound.as_ref().map(|(g, _)| *g) != Some(self.generation) {
            return;
        }
        let generation = self.generation;
        let early = &self.linux_audit.early;
        for (serial, sa) in run.sas.iter_mut().filter(|(_, sa)| !sa.claimed) {
            sa.claimed = self.sas.contains(*serial)
                || listing.lists_with_state(*serial)
                || early.contains(&(generation, *serial));
        }
        self.linux_audit.early.retain(|(g, _)| *g >= generation);
    }

    /// The observe hook after the snapshot path has handled every listed
    /// and gone SA: report the SAs only the records saw. Returns where in
    /// `em.events` those reports are: they carry their records' times
    /// already, and [`Tracker::finish_linux_audit_wait`] leaves them as they are.
    pub(super) fn fuse_linux_audit_records(&mut self, em: &mut Emitter) -> Range<usize> {
        if self.linux_audit.runs.is_empty() {
            return em.events.len()..em.events.len();
        }
        self.claim_reported_by_snapshots(em);
        let cutoff = em.cutoff_ms;
        let (anchor, generation) = (em.anchor.clone(), em.generation);
        let renumber = self.established_between_polls(em);
        let first_new = em.events.len();
        let pids: Vec<u32> = self.linux_audit.runs.keys().copied().collect();
        for pid in pids {
            let Some(run) = self.linux_audit.runs.get(&pid) else {
                continue;
            };
            let Some((run_generation, run_anchor)) = run.bound.clone() else {
                continue;
            };
            let due: Vec<(u64, LinuxAuditSa)> = run
                .sas
                .iter()
                .filter(|(_, sa)| !sa.claimed)
                .map(|(s, sa)| (*s, sa.clone()))
                .collect();
            em.anchor = run_anchor;
            em.generation = run_generation;
            for (serial, sa) in due {
                self.audit_only(em, pid, serial, &sa, cutoff);
            }
        }
        em.anchor = anchor;
        em.generation = generation;
        // In the order they happened, not by serial; the sequence numbers
        // they were given stay theirs in that order.
        let tail = &mut em.events[first_new..];
        let mut sequences: Vec<u64> = tail.iter().map(|e| e.event.sequence).collect();
        sequences.sort_unstable();
        tail.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        for (event, sequence) in tail.iter_mut().zip(sequences) {
            event.event.sequence = sequence;
        }
        let made = first_new..em.events.len();
        // The failures taken back leave no hole in the sequence.
        if let Some((from, first)) = renumber {
            for (k, event) in em.events[from..].iter_mut().enumerate() {
                event.event.sequence = first + k as u64;
            }
            em.sequence = first + (em.events.len() - from) as u64 - 1;
        }
        made
    }

    /// Hand to the snapshot path every serial it reported on in this
    /// observation, in whichever pluto run. A restart ends every SA of the
    /// old run and empties the ledger before the records are claimed, so
    /// an old-run SA whose record came after its last listing (lab 4.10
    /// gateway: `v2-deadpeer` #616, half-open, deleted by pluto's shutdown,
    /// its failed start written then) would otherwise be reported by both
    /// paths under one event id, with two contents.
    fn claim_reported_by_snapshots(&mut self, em: &Emitter) {
        for event in em
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::Event)
        {
            let Some(serial) = event.libreswan.sa.as_ref().map(|f| f.serial) else {
                continue;
            };
            let Some(pid) = self.linux_audit.pid_of(event.libreswan.pluto.generation) else {
                continue;
            };
            if let Some(sa) = self
                .linux_audit
                .runs
                .get_mut(&pid)
                .and_then(|r| r.sas.get_mut(&serial))
            {
                sa.claimed = true;
            }
        }
    }

    /// An SA a poll listed half-open and the next found gone is the
    /// snapshot path's `negotiation-failed` (`abandoned`); when its records
    /// say it was established (and then ended between the two polls), it
    /// was no failure: the event is taken back and the SA handed to the
    /// audit path, which reports its start and end at the records' times.
    /// A start the audit path reported already, of an SA a listing shows
    /// now, is taken back too.
    /// Returns where the events after the first one taken back start, and
    /// its sequence number, for renumbering.
    fn established_between_polls(&mut self, em: &mut Emitter) -> Option<(usize, u64)> {
        let mut first: Option<(usize, u64)> = None;
        let mut i = 0;
        while i < em.events.len() {
            let e = &em.events[i];
            let generation = e.libreswan.pluto.generation;
            let serial = e.libreswan.sa.as_ref().map(|f| f.serial);
            // Of this pluto run or of one a restart just ended: a rekey
            // listed negotiating before the shutdown that came up before
            // it (gateway lab 4.10: g03 #605, up 1.8 s before `Pluto is
            // shutting down`) is no negotiation the restart cut short.
            let record = match (self.linux_audit.pid_of(generation), serial) {
                (Some(pid), Some(serial)) => self
                    .linux_audit
                    .runs
                    .get_mut(&pid)
                    .and_then(|run| run.sas.get_mut(&serial)),
                _ => None,
            };
            let ours = e.event.kind == EventKind::Event;
            let taken_back = ours
                && e.event.action == Action::NegotiationFailed
                && record
                    .as_ref()
                    .is_some_and(|r| r.started_ms.is_some() && r.failed_ms.is_none());
            // A record a hair older than the listing's answer that the
            // listing did not reflect yet (pluto wrote the listing and went
            // on before the daemon read its first byte): the audit path
            // reported the start, and this listing is the first to show the
            // SA. Its start goes out once.
            let said_already = ours
                && generation == em.generation
                && matches!(
                    e.event.action,
                    Action::IkeSaEstablished
                        | Action::IkeSaRekeyed
                        | Action::ChildSaEstablished
                        | Action::ChildSaRekeyed
                )
                && record
                    .as_ref()
                    .is_some_and(|r| r.start_reported && r.claimed);
            match record {
                Some(r) if taken_back => {
                    r.claimed = false;
                    first.get_or_insert((i, e.event.sequence));
                    em.events.remove(i);
                }
                Some(_) if said_already => {
                    first.get_or_insert((i, e.event.sequence));
                    em.events.remove(i);
                }
                _ => i += 1,
            }
        }
        first
    }

    /// Report what the records alone say about an SA no snapshot showed.
    ///
    /// Its events carry the records' times; they are stamped here because
    /// the records are let go as soon as the SA is finished.
    fn audit_only(
        &mut self,
        em: &mut Emitter,
        pid: u32,
        serial: u64,
        sa: &LinuxAuditSa,
        cutoff: i64,
    ) {
        let Some(kind) = sa.kind else { return };
        let before = |t: Option<i64>| t.filter(|t| *t < cutoff);
        let (conn, tunnel) = self.conn_of(sa);
        let mut detail = Detail {
            connection: Some(connection_fields(&conn)),
            source: sa.local.clone().map(|ip| Endpoint {
                ip: Some(ip),
                port: None,
            }),
            destination: sa.remote.clone().map(|ip| Endpoint {
                ip: Some(ip),
                port: None,
            }),
            sa: Some(SaFields {
                serial,
                kind: super::kind_str(kind).to_string(),
                ike_version: sa.ike_version,
                state: None,
                parent_serial: None,
                replaces: None,
                replaced_by: None,
                spi_in: None,
                spi_out: None,
                bytes_in: None,
                bytes_out: None,
                duration_s: None,
            }),
            ..Detail::default()
        };
        let subject = format!("sa:{serial}");
        if before(sa.failed_ms).is_some() && !sa.start_reported {
            // Failed after a poll had found its pluto gone (not answering
            // while it shut down): the shutdown ended it (gateway lab 4.10:
            // `v2-deadpeer` #651, started 0.4 s before `Pluto is shutting
            // down`, deleted by it 1.3 s later, never listed).
            let gone = self.linux_audit.gone.get(&em.generation);
            let reason = match (gone, sa.failed_ms) {
                (Some(gone), Some(t)) if t >= gone.saturating_mul(1000) => "pluto-restart",
                _ => "failed",
            };
            em.push(
                Action::NegotiationFailed,
                EventKind::Event,
                Some(reason),
                &subject,
                detail,
            );
            stamp_last(em, sa.failed_ms);
            self.audit_done(pid, serial);
            return;
        }
        let Some(started) = before(sa.started_ms) else {
            return;
        };
        if !sa.start_reported {
            let replaces = self.rekeyed_from(pid, serial, kind, sa, started);
            let action = match (kind, replaces.is_some()) {
                (SaKind::Ike, false) => Action::IkeSaEstablished,
                (SaKind::Ike, true) => Action::IkeSaRekeyed,
                (SaKind::Child, false) => Action::ChildSaEstablished,
                (SaKind::Child, true) => Action::ChildSaRekeyed,
            };
            let mut start_sa = detail.sa.clone();
            if let Some(f) = start_sa.as_mut() {
                f.replaces = replaces;
            }
            // The snapshot path's id for the same rekey.
            let start_subject = match replaces {
                Some(old) => format!("{subject}:replaces:{old}"),
                None => subject.clone(),
            };
            em.push(
                action,
                EventKind::Event,
                replaces.map(|_| "rekey"),
                &start_subject,
                Detail {
                    connection: detail.connection.clone(),
                    source: detail.source.clone(),
                    destination: detail.destination.clone(),
                    sa: start_sa,
                    ..Detail::default()
                },
            );
            stamp_last(em, Some(started));
            if let Some(old) = replaces {
                self.replaced_by_audit_only(em, old, serial, kind);
            }
            if let Some(s) = self
                .linux_audit
                .runs
                .get_mut(&pid)
                .and_then(|r| r.sas.get_mut(&serial))
            {
                s.start_reported = true;
            }
        }
        let Some(ended) = before(sa.destroyed_ms) else {
            return;
        };
        // A newer SA of the same kind on the tunnel that was up before this
        // one ended took over: it ran out and was replaced; else it was
        // deleted (a tunnel brought up again later replaces nothing).
        let run = self.linux_audit.runs.get(&pid);
        let started_by = |s: u64, established_at: Option<i64>| {
            run.and_then(|r| r.sas.get(&s))
                .and_then(|r| r.started_ms)
                .or_else(|| established_at.map(|t| t.saturating_mul(1000)))
                .is_some_and(|t| t <= ended)
        };
        let newer = tunnel.as_ref().and_then(|key| {
            self.sas
                .of_tunnel(key)
                .filter(|r| r.serial > serial && r.kind == kind && r.established)
                .filter(|r| started_by(r.serial, r.established_at))
                .map(|r| r.serial)
                .next()
        });
        let action = match (kind, newer.is_some()) {
            (SaKind::Ike, true) => Action::IkeSaExpired,
            (SaKind::Ike, false) => Action::IkeSaDeleted,
            (SaKind::Child, true) => Action::ChildSaExpired,
            (SaKind::Child, false) => Action::ChildSaDeleted,
        };
        if let Some(f) = detail.sa.as_mut() {
            f.replaced_by = newer;
            f.duration_s = Some((ended - started).div_euclid(1000));
        }
        // Destroyed after a poll had found its pluto gone: the shutdown
        // deleted it, as the snapshot path says of one it listed.
        let at_shutdown = self
            .linux_audit
            .gone
            .get(&em.generation)
            .is_some_and(|gone| ended >= gone.saturating_mul(1000));
        let reason = if newer.is_some() {
            "replaced"
        } else if at_shutdown {
            "pluto-restart"
        } else {
            "deleted"
        };
        em.push(action, EventKind::Event, Some(reason), &subject, detail);
        stamp_last(em, Some(ended));
        self.audit_done(pid, serial);
    }

    /// The SA an audit-only SA rekeyed: the newest older SA of the same
    /// kind and connection that was up when it started and ended after
    /// that. A rekey and its old SA's end can both fall between two polls;
    /// pluto's records carry no link, but only a rekey starts an SA while
    /// its predecessor runs and then ends the predecessor (within a second
    /// in IKEv2; IKEv1 keeps it until it expires or is terminated). An old
    /// SA whose destroy record has not come yet counts when this poll
    /// found it gone (the lab's IKE SA #52, deleted 0.7 s after its rekey,
    /// between the record batches). An SA started next to one that goes
    /// on running is a second SA, no rekey.
    fn rekeyed_from(
        &self,
        pid: u32,
        serial: u64,
        kind: SaKind,
        sa: &LinuxAuditSa,
        started: i64,
    ) -> Option<u64> {
        self.linux_audit
            .runs
            .get(&pid)?
            .sas
            .iter()
            .filter(|(s, r)| {
                **s < serial
                    && r.kind == Some(kind)
                    && r.connection == sa.connection
                    && r.failed_ms.is_none()
                    && r.started_ms.is_none_or(|t| t <= started)
                    && r.destroyed_ms
                        .map_or(!self.sas.contains(**s), |t| t >= started)
            })
            .map(|(s, _)| *s)
            .max()
    }

    /// Tell the old SA of an audit-only rekey that it was replaced: in the
    /// ledger if it still runs, or in its end event if this observation
    /// (or the one held back) reported it already.
    fn replaced_by_audit_only(&mut self, em: &mut Emitter, old: u64, new: u64, kind: SaKind) {
        self.sas.update(old, |r| {
            r.replaced_by.get_or_insert(new);
        });
        let (host, anchor, generation) = (em.host.clone(), em.anchor.clone(), em.generation);
        let ended = em
            .events
            .iter_mut()
            .chain(self.linux_audit.waiting.iter_mut())
            .filter(|e| e.libreswan.pluto.generation == generation)
            .filter(|e| e.libreswan.sa.as_ref().is_some_and(|f| f.serial == old))
            .find(|e| {
                matches!(
                    e.event.action,
                    Action::IkeSaExpired
                        | Action::IkeSaDeleted
                        | Action::ChildSaExpired
                        | Action::ChildSaDeleted
                )
            });
        let Some(event) = ended else { return };
        if event.event.reason.as_deref() == Some("replaced") {
            return;
        }
        let action = match kind {
            SaKind::Ike => Action::IkeSaExpired,
            SaKind::Child => Action::ChildSaExpired,
        };
        event.event.reason = Some("replaced".to_string());
        if let Some(f) = event.libreswan.sa.as_mut() {
            f.replaced_by = Some(new);
        }
        if event.event.action != action {
            event.event.action = action;
            event.event.types = vec![action.ecs_type().to_string()];
            event.event.id = event_id(&[&host, &anchor, action.as_str(), &format!("sa:{old}")]);
        }
    }

    /// The connection an audit-only SA belongs to: the tunnel of that name
    /// whose peer is the record's remote address (or the only one of that
    /// name), else the bare name.
    fn conn_of(&self, sa: &LinuxAuditSa) -> (ConnRef, Option<TunnelKey>) {
        let candidates = self.tunnels.of_name(&sa.connection);
        let pick = candidates
            .iter()
            .find(|(_, t)| t.remote_ip.is_some() && t.remote_ip.as_deref() == sa.remote.as_deref())
            .or_else(|| (candidates.len() == 1).then(|| &candidates[0]));
        match pick {
            Some((key, t)) => (t.conn.clone(), Some((*key).clone())),
            None => (
                ConnRef {
                    name: sa.connection.as_str().into(),
                    instances: Vec::new(),
                    peer: None,
                },
                None,
            ),
        }
    }

    /// The snapshot path let an `IKE_AUTH` placeholder of run `generation`
    /// go without an event. A failed start record for it (pluto writes a
    /// failed `ipsec-policy` start for the placeholder when its IKE SA
    /// fails), now or later, reports nothing. A start that succeeded says
    /// the Child SA came up and ended between two polls (lab 4.10: `v2-tun`
    /// brought up and terminated at once, #43 up for 0.33 s, listed in
    /// `IKE_AUTH` by the poll before): only the records saw it, so the
    /// audit path reports its start and end.
    pub(super) fn placeholder_let_go(&mut self, generation: u64, serial: u64) {
        let Some(run) = self
            .linux_audit
            .pid_of(generation)
            .and_then(|pid| self.linux_audit.runs.get_mut(&pid))
        else {
            return;
        };
        match run.sas.get_mut(&serial) {
            Some(sa) if sa.started_ms.is_some() && sa.failed_ms.is_none() => sa.claimed = false,
            Some(_) => {
                run.sas.remove(&serial);
                run.done.insert(serial);
            }
            None => {
                run.placeholders.insert(serial);
                while run.placeholders.len() > MAX_DONE {
                    run.placeholders.pop_first();
                }
            }
        }
    }

    fn audit_done(&mut self, pid: u32, serial: u64) {
        if let Some(run) = self.linux_audit.runs.get_mut(&pid) {
            run.sas.remove(&serial);
            run.done.insert(serial);
            while run.done.len() > MAX_DONE {
                run.done.pop_first();
            }
        }
    }

    /// The observe hook at the very end: every SA event the snapshot path
    /// made gets the record's time as its `@timestamp`, and the records of
    /// SAs the snapshot path has finished with are let go.
    ///
    /// A poll can list (or miss) an SA before its record is read: IKEv1
    /// writes it a moment after the state is established, and a batch of
    /// records reaches the daemon after the snapshot taken at the same
    /// instant. So while records come, an observation whose SA events lack
    /// one is held back, whole and in order, until the next observation
    /// (the settle window: one interval, never longer), and stamped then;
    /// what still has no record goes out with the poll's time.
    ///
    /// `audit_made` is where the audit path's own reports are in `events`
    /// ([`Tracker::fuse_linux_audit_records`]): stamped from their records, whose
    /// records are let go once the SA is finished. Stamping them again
    /// would find none, and take a failure for one the snapshot path
    /// found abandoned (the time of its connection's teardown).
    pub(super) fn finish_linux_audit_wait(
        &mut self,
        events: &mut Vec<Event>,
        audit_made: Range<usize>,
    ) {
        let mut out = std::mem::take(&mut self.linux_audit.waiting);
        let released = out.len();
        let audit_made = audit_made.start + released..audit_made.end + released;
        out.append(events);
        *events = out;
        if self.linux_audit.runs.is_empty() && !self.linux_audit.expected {
            return;
        }
        let current = self.linux_audit.pid_of(self.generation);
        let now = self.clock.unwrap_or(0);
        let mut waiting: BTreeSet<u64> = BTreeSet::new();
        for (i, event) in events.iter_mut().enumerate() {
            if event.event.kind != EventKind::Event || audit_made.contains(&i) {
                continue;
            }
            let Some(serial) = event.libreswan.sa.as_ref().map(|s| s.serial) else {
                continue;
            };
            let generation = event.libreswan.pluto.generation;
            let fresh_failure = i >= released
                && generation == self.generation
                && event.event.action == Action::NegotiationFailed;
            let torn_down_with = || {
                let name = event.libreswan.connection.as_ref()?.name.as_str();
                self.linux_audit.torn_down(current?, name, now)
            };
            let stamp = self
                .linux_audit
                .stamp(generation, serial, event.event.action)
                .or_else(|| torn_down_with().filter(|_| fresh_failure));
            match stamp {
                Some(ms) => event.timestamp = rfc3339_ms(ms),
                None if i >= released
                    && self.linux_audit.expected
                    && generation == self.generation
                    && awaits_record(event.event.action) =>
                {
                    waiting.insert(serial);
                }
                None => {}
            }
        }
        if !waiting.is_empty() {
            self.linux_audit.waiting = events.split_off(released);
        }
        // An SA the snapshot path ended is finished whatever record comes
        // later (pluto may write a failed start after its state is gone
        // from the listing): that record must not report it a second time.
        for event in events.iter() {
            let ended = matches!(
                event.event.action,
                Action::NegotiationFailed
                    | Action::IkeSaExpired
                    | Action::IkeSaDeleted
                    | Action::ChildSaExpired
                    | Action::ChildSaDeleted
            );
            let Some(serial) = event.libreswan.sa.as_ref().map(|s| s.serial) else {
                continue;
            };
            let pid = self.linux_audit.pid_of(event.libreswan.pluto.generation);
            if let Some(run) = pid
                .filter(|_| ended)
                .and_then(|p| self.linux_audit.runs.get_mut(&p))
            {
                run.sas.remove(&serial);
                run.done.insert(serial);
            }
        }
        for (pid, run) in self.linux_audit.runs.iter_mut() {
            let ours = Some(*pid) == current;
            let finished: Vec<u64> = run
                .sas
                .iter()
                .filter(|(s, sa)| {
                    sa.claimed && (!ours || (!self.sas.contains(**s) && !waiting.contains(*s)))
                })
                .map(|(s, _)| *s)
                .collect();
            for serial in finished {
                run.sas.remove(&serial);
                run.done.insert(serial);
            }
            while run.done.len() > MAX_DONE {
                run.done.pop_first();
            }
        }
        self.linux_audit.previous = Some(now);
        // The held events' serials stay the snapshot path's, so that the
        // record that arrives is kept for them and reports nothing itself.
        match current.and_then(|pid| self.linux_audit.runs.get_mut(&pid)) {
            Some(run) => {
                for serial in waiting {
                    run.done.remove(&serial);
                    run.sas.entry(serial).or_default().claimed = true;
                }
            }
            None => {
                let generation = self.generation;
                self.linux_audit
                    .early
                    .extend(waiting.into_iter().map(|s| (generation, s)));
                while self.linux_audit.early.len() > MAX_DONE {
                    self.linux_audit.early.pop_first();
                }
            }
        }
    }

    /// Whether the Linux audit fusion has nothing to do with an
    /// observation's events: no records expected, none held, no event
    /// waiting for one.
    pub(super) fn linux_audit_idle(&self) -> bool {
        !self.linux_audit.expected
            && self.linux_audit.runs.is_empty()
            && self.linux_audit.waiting.is_empty()
    }

    /// The events still held for their records (see `finish_linux_audit_wait`), at
    /// the time they have: for the end of a replay, or a daemon's stop,
    /// when no observation follows.
    pub fn release_held(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.finish_linux_audit_wait(&mut events, 0..0);
        self.decide_by_pluto_log(&mut events);
        events
    }

    /// Whether events are held for their records: what
    /// [`Tracker::release_held`] would give out, asked without a change
    /// (a daemon's stop copies its checkpoint only when there is some).
    pub fn holds_events(&self) -> bool {
        !self.linux_audit.waiting.is_empty()
    }

    /// Whether Linux audit records are held that no observation has fused yet (read
    /// after the last one): what [`Tracker::release_at_stop`] reports
    /// besides the held events.
    pub fn holds_unfused_linux_audit_records(&self) -> bool {
        self.linux_audit
            .runs
            .values()
            .any(|run| run.bound.is_some() && run.sas.values().any(|sa| !sa.claimed))
    }

    /// At a daemon's stop, when no observation follows: the held events
    /// ([`Tracker::release_held`]) and what the records read since the
    /// last observation say of SAs no listing showed (an SA rekeyed in the
    /// second before SIGTERM), stamped at the records' times. The next
    /// start's socket will not hear those records again.
    pub fn release_at_stop(&mut self, now: i64) -> Vec<Event> {
        let now = now.max(self.clock.unwrap_or(i64::MIN));
        let mut em = self.emitter(now);
        self.fuse_linux_audit_records(&mut em);
        self.sequence = em.sequence;
        // What the records read since the last observation made says what
        // pluto's log says, as every observation's events do (a rekey the
        // log names is one even when its old SA's end was not read yet).
        self.decide_by_pluto_log(&mut em.events);
        let mut events = self.release_held();
        events.append(&mut em.events);
        events
    }

    /// The old name of [`Tracker::expect_linux_audit_records`], kept for
    /// code written before "audit" meant only the product's audit trail.
    #[doc(hidden)]
    pub fn expect_audit(&mut self, expected: bool) {
        self.expect_linux_audit_records(expected);
    }

    /// The old name of [`Tracker::ingest_linux_audit_records`], kept for
    /// code written against it.
    #[doc(hidden)]
    pub fn ingest_audit(&mut self, records: &[PlutoRecord]) {
        self.ingest_linux_audit_records(records);
    }

    /// The old name of [`Tracker::holds_unfused_linux_audit_records`],
    /// kept for code written against it.
    #[doc(hidden)]
    pub fn holds_unfused_records(&self) -> bool {
        self.holds_unfused_linux_audit_records()
    }
}

/// The actions an audit record gives the time of.
fn awaits_record(action: Action) -> bool {
    matches!(
        action,
        Action::IkeSaEstablished
            | Action::IkeSaRekeyed
            | Action::ChildSaEstablished
            | Action::ChildSaRekeyed
            | Action::NegotiationFailed
            | Action::IkeSaExpired
            | Action::IkeSaDeleted
            | Action::ChildSaExpired
            | Action::ChildSaDeleted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_written_with_three_digits() {
        assert_eq!(rfc3339_ms(1_796_177_538_840), "2026-12-02T02:12:18.840Z");
        assert_eq!(rfc3339_ms(1_796_177_538_005), "2026-12-02T02:12:18.005Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
