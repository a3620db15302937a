//! Snapshots into lifecycle events. TODO(issue 3): implement.

pub mod cli;
