//! `swantrail parse`: one dump in, the snapshot as JSON out.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{warn_about, write_stdout};
use crate::input::{DEFAULT_MAX_BYTES, parse_byte_size, read_dump};

/// Arguments of `swantrail parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The dump to read; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Refuse inputs larger than this (bytes; KiB, MiB, GiB suffixes allowed).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
}

/// Run `swantrail parse`: the snapshot as one JSON document on stdout.
///
/// Unrecognised lines do not fail the command (they are in `diagnostics`);
/// a note on stderr says how many there were, so a script that keeps only
/// stdout still gets clean JSON.
pub fn parse_command(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let text = read_dump(args.file.as_deref(), args.max_bytes)?;
    let snapshot = crate::parse(&text);
    let mut json = if args.pretty {
        serde_json::to_string_pretty(&snapshot)?
    } else {
        serde_json::to_string(&snapshot)?
    };
    json.push('\n');
    write_stdout(json.as_bytes())?;
    warn_about(&snapshot);
    Ok(ExitCode::SUCCESS)
}
