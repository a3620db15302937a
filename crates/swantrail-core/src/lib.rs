//! swantrail-core: libreswan's status output parsed into values, and those
//! values tracked into tunnel lifecycle events, shown and reported on.
//!
//! It is plain functions over values: it must never do I/O of its own beyond
//! a `Read` or `Write` handed in, never start an async runtime, never touch
//! the network and never read a command line (the `swantrail` daemon does
//! all that around it).
#![doc = include_str!("../README.md")]
//! ## Module map
//!
//! | module | owns | must never import |
//! |---|---|---|
//! | [`status`] | the parser: text in, [`Snapshot`] out (or its records into a [`listing::ListingBuilder`] or [`snapshot_json::RecordsJson`] as they are read) | anything but `snapshot`, `listing` and `snapshot_json` |
//! | [`listing`] | what the tracker reads of a snapshot, in compact records, built whole or record by record | anything but `snapshot` |
//! | [`snapshot`] | the model the parser produces, and the one key of a tunnel ([`snapshot::TunnelKey`]) | anything of this crate |
//! | [`snapshot_json`] | a snapshot's JSON, serde_json's bytes, encoded record by record as they are read | anything but `snapshot` |
//! | [`track`] | snapshots to events: the tunnel ledger, the tracker state a checkpoint saves | `show`, `report` |
//! | [`event`] | the event schema and its NDJSON encoding | `track`, `show`, `report` |
//! | [`ocsf`] | an event mapped to OCSF Tunnel Activity (class 4014) | `track`, `show`, `report` |
//! | [`show`] | the rows of `swantrail show` and their rendering | `track`, `report` |
//! | [`report`] | the event trail read back into per-tunnel figures and their table, CSV, JSON and HTML | `track`, `show` |
//! | [`linux_audit`] | one of pluto's Linux audit records parsed | anything but `snapshot` (its `SaKind`) |
//! | [`pluto_log`] | one line of pluto's own log decoded | anything but `snapshot` (its `SaKind`) |
//! | `work` | the dev-only count of records visited, for the linear-growth test | anything of this crate |
#![warn(missing_docs)]

pub mod event;
pub mod linux_audit;
pub mod listing;
pub mod ocsf;
pub mod pluto_log;
pub mod report;
pub mod show;
pub mod snapshot;
pub mod snapshot_json;
pub mod status;
#[cfg(feature = "synth")]
#[doc(hidden)]
pub mod synth;
pub mod track;
#[doc(hidden)]
pub mod work;

pub use snapshot::Snapshot;
pub use status::parse;

/// A count with its noun, `1 line` or `2 lines`, for diagnostics: "1
/// lines" reads as a bug to the operator who sees it.
pub(crate) fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
