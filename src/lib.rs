//! swantrail: libreswan's status output turned into an audit trail.
//!
//! The pipeline is `source → parse → track → spool → sink`. Every stage is a
//! plain function or a small type with one job; the async runtime lives
//! only in the daemon wiring, the sources and the network sinks. The binary
//! (`main.rs`) only turns the command line into calls to this library.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod event;
pub mod input;
pub mod report;
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
