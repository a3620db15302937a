//! `swantrail parse`: one dump in, the snapshot as JSON out.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::warn_about;
use crate::input::{DEFAULT_MAX_BYTES, encode_dump, parse_byte_size, parse_dump};

/// Arguments of `swantrail parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The dump to read; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Refuse inputs larger than this (bytes; KiB, MiB, GiB suffixes allowed).
    /// The default, 1 GiB, is ten times the `ipsec status` of a 50,000-tunnel
    /// gateway; the dump is parsed as it is read, so this bounds time, not memory.
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
}

/// Run `swantrail parse`: the snapshot as one JSON document on stdout.
///
/// Unrecognised lines do not fail the command (the first
/// [`crate::snapshot::MAX_DIAGNOSTICS`] are in `diagnostics`, the rest
/// counted in `diagnostics_omitted`, so that junk of any length prints a
/// few lines); a note on stderr says how many there were, so a script that
/// keeps only stdout still gets clean JSON.
///
/// The dump is parsed as it is read and the JSON written as it is made, so
/// neither the text nor the JSON of a big gateway is held whole.
pub fn parse_command(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    // Compact JSON is encoded record by record as the dump is read; the
    // pretty form, for a person reading a small dump, is serde's own.
    let (snapshot, written) = if args.pretty {
        let snapshot = parse_dump(args.file.as_deref(), args.max_bytes, None)?;
        let written =
            serde_json::to_writer_pretty(&mut out, &snapshot).map_err(std::io::Error::from);
        (snapshot, written)
    } else {
        let (snapshot, records) = encode_dump(args.file.as_deref(), args.max_bytes)?;
        let written = records.write(&snapshot, &mut out);
        (snapshot, written)
    };
    let written = written
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to standard output");
        }
        _ => {}
    }
    warn_about(&snapshot);
    Ok(ExitCode::SUCCESS)
}
