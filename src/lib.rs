//! swantrail: libreswan's status output turned into an audit trail.
//!
//! The pipeline is `source → parse → track → spool → sink`. Every stage is a
//! plain function or a small type with one job; the async runtime lives
//! only in the daemon wiring, the sources and the network sinks. The binary
//! (`main.rs`) only turns the command line into calls to this library.
//! The parser, the tracker, the event schema, `show` and `report` are the
//! `swantrail-core` crate (re-exported here under their old paths), which
//! does no I/O of its own.
//!
//! # Module map
//!
//! | module | owns | must never import |
//! |---|---|---|
//! | [`status`] | the parser: text in, [`Snapshot`] out | anything but `snapshot` |
//! | [`snapshot`] | the model the parser produces | anything of this crate |
//! | [`track`] | snapshots to events: the tunnel ledger, the tracker state a checkpoint saves | `source`, `sink`, `cli`, `daemon`, clap, anyhow, tokio |
//! | [`event`] | the event schema and its NDJSON encoding | `source`, `sink`, `cli`, clap, anyhow |
//! | [`input`] | reading one dump (size limit, binary and UTF-8 checks) | `track`, `sink`, `cli` |
//! | [`show`] | the rows of `swantrail show` and their rendering | `source`, `sink`, `cli`, clap, anyhow |
//! | [`source`] | where snapshots come from: command, file watch, Linux audit records, pluto's own log, replay; each kind reads its own config keys | `config`, `track`, `sink`, `cli` |
//! | [`sink`] | spools, the shared drain, each sink and its own config keys | `config`, `source`, `track`, `cli` |
//! | [`config`] | the TOML file's top-level table, defaults and checks; each `[[source]]` and `[[sink]]` goes to its layer's registry | `daemon`, `cli` |
//! | [`toml_config`] | the helpers of every table reader: errors at `file:line:column`, durations, sizes, names | anything of this crate |
//! | [`daemon`] | the wiring: sources, trackers, spools, checkpoint, signals, systemd, the `/metrics` and `/health` endpoint | `cli` |
//! | [`report`] | the event trail read back into per-tunnel figures and their table, CSV, JSON and HTML | `source`, `sink`, `cli`, clap |
//! | [`cli`] | one file per subcommand; the only place of clap and stdout | (may import all) |
//! | [`linux_audit`] | pluto's Linux audit records (not the audit trail this crate writes): reading them from netlink and auditd's log (the parser is the core's `linux_audit`) | `track`, `sink`, `cli`, `daemon` |
//! | [`follow`] | following a log file from a saved position across rotation (pluto's own log) | anything of this crate |
//! | [`atomic`] | replacing a small file atomically and durably (spool ack, checkpoint) | anything of this crate |
//! | [`hostname`] | this machine's name, the default `observer.hostname` | anything of this crate |
//! | `work` | the dev-only count of records visited, for the linear-growth test | anything of this crate |

#![warn(missing_docs)]

pub mod atomic;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod follow;
pub mod hostname;
pub mod input;
pub mod linux_audit;
pub mod sink;
pub mod source;
pub mod toml_config;

/// The old path of [`linux_audit`], kept for code written before "audit"
/// meant only the audit trail this crate writes.
#[doc(hidden)]
pub use linux_audit as audit;

// The I/O-free core lives in its own crate, so that the compiler keeps it
// apart from tokio, the network and the command line; its modules keep
// their old paths here.
#[cfg(feature = "synth")]
#[doc(hidden)]
pub use swantrail_core::synth;
#[doc(hidden)]
pub use swantrail_core::work;
pub use swantrail_core::{
    event, listing, ocsf, pluto_log, report, show, snapshot, snapshot_json, status, track,
};

pub use snapshot::Snapshot;
pub use status::parse;

/// A count with its noun, `1 event` or `2 events`, for log lines: "1
/// events" reads as a bug to the operator who sees it.
pub(crate) fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
