//! Where snapshots come from: a command, a watched file, or a replay.

pub mod command;
pub mod file;
pub mod replay;
