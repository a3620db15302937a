//! The commands: each subcommand's arguments and the function that runs it.
//! Only this layer reads arguments and opens files; the library below it
//! never imports it.

pub mod report;
