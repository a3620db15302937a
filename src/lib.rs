//! swantrail: libreswan's status output turned into an audit trail.
//!
//! The pipeline is `source → parse → track → spool → sink`. Every stage is a
//! plain function or a small type with one job; the async runtime lives
//! only in the daemon wiring, the sources and the network sinks. The binary
//! (`main.rs`) only turns the command line into calls to this library.

pub mod config;
pub mod daemon;
pub mod event;
pub mod input;
pub mod show;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod status;
#[doc(hidden)]
pub mod synth;
pub mod track;

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
