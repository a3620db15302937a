//! Where snapshots come from: a command, a watched file, or a replay; and
//! pluto's Linux audit records, which add exact times to those snapshots,
//! and pluto's own log, which says what happened and why.
//!
//! The live sources (`command`, `file`) are tokio tasks that look at pluto
//! and send what they saw, as a [`Report`], over one channel to the daemon,
//! which owns the trackers. A source never diffs, never decides what is an
//! event and never sends an incomplete snapshot: it only says "this is what
//! pluto looks like now" or "pluto could not be asked".

pub mod command;
pub mod file;
pub mod linux_audit;
pub mod pluto_log;
pub(crate) mod registry;
pub mod replay;

/// The old path of [`linux_audit`], kept for code written before "audit"
/// meant only the audit trail this crate writes.
#[doc(hidden)]
pub use linux_audit as audit;

pub use registry::SourceConfig;

use crate::listing::Listing;
use crate::snapshot::Snapshot;

/// One message from a live source to the daemon.
///
/// It carries the source's name because the daemon keeps one tracker (and
/// one checkpoint) per source: two sources watching two gateways must never
/// be diffed against each other.
#[derive(Debug)]
pub struct Report {
    /// The `name` of the source in the configuration.
    pub source: String,
    /// What the source saw.
    pub observation: Observation,
}

/// What a source saw on one look at pluto.
#[derive(Debug)]
pub enum Observation {
    /// A complete snapshot, ready to be diffed; `taken_at` is set.
    Snapshot {
        /// What the tracker reads of the parsed (and, for several
        /// commands, merged) snapshot, built as it was read; boxed because
        /// it is large next to the other variants.
        listing: Box<Listing>,
        /// A digest of the text it was parsed from, from a file source. The
        /// daemon stores it in the checkpoint so that a restarted file
        /// source does not feed the same dump twice. A command source has
        /// none: a poll's answer is never fed again.
        content_sha256: Option<String>,
    },
    /// pluto could not be asked (not running, command failed or timed out).
    Unreachable {
        /// When the attempt was made, in Unix seconds.
        at: i64,
        /// One line saying why, for the event and the log.
        reason: String,
    },
    /// The source looked but has nothing to diff (the watched file is
    /// absent, unchanged since the checkpoint or incomplete; the command's
    /// output was incomplete). The daemon only counts it as "this source
    /// has looked", so that it can tell systemd it is ready.
    Waiting,
    /// pluto's Linux audit records, sent by a Linux audit source to the
    /// tracker of the snapshot source of the same pluto (`pluto = …`); they
    /// make no events until that tracker's next snapshot.
    LinuxAudit(Vec<crate::linux_audit::record::PlutoRecord>),
    /// Lines of pluto's own log (decoded; the lines that say nothing about
    /// an SA are left out), sent by a pluto-log source to the tracker of
    /// the snapshot source of the same pluto; like audit records they make
    /// no events until that tracker's next snapshot.
    PlutoLog {
        /// The decoded lines, in the order pluto wrote them.
        records: Vec<crate::pluto_log::PlutoLogRecord>,
        /// Where the next unread line is (file position or journal
        /// cursor), kept in the checkpoint with these lines' effects.
        position: Option<String>,
    },
}

/// One line about the lines of a usable dump that were not recognised
/// (they were skipped; the rest was read), or `None` when there are none.
pub(crate) fn unrecognised_summary(snapshot: &Snapshot) -> Option<String> {
    let first = snapshot.diagnostics.first()?;
    Some(format!(
        "{} not recognised and skipped, the first at line {} ({}): {}",
        crate::counted(snapshot.diagnostic_count(), "line", "lines"),
        first.line,
        first.reason,
        first.text
    ))
}

/// The current time in Unix seconds, as sources stamp their snapshots.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The same clock in milliseconds: when pluto answered a poll, to compare
/// with its audit records' millisecond times.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A digest in hex, as checkpoints store "the same content" (the
/// SHA-256 of a dump's text).
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
