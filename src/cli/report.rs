//! `swantrail report`: reads event trails and prints the audit history of
//! tunnel lifetimes.
//!
//! This is the I/O shell around `report`: it orders the inputs (rotated
//! files oldest first), streams their lines into the reader, says where a
//! line was unreadable, and writes the chosen format. It computes nothing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::report::{self, Options, Reader, html, table};

/// Arguments of `swantrail report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Event files (NDJSON, as the file sink writes them) or directories of
    /// them; a directory's rotated files (`events.ndjson.2`, `.1`, then
    /// `events.ndjson`) are read oldest first. `-` or nothing reads stdin.
    pub inputs: Vec<PathBuf>,
    /// Start of the period: RFC 3339 (`2026-11-01T00:00:00Z`) or an age
    /// back from now (`30d`, `12h`, `2w`).
    #[arg(long)]
    pub since: Option<String>,
    /// End of the period, in the same forms; default: the last event.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this tunnel: a connection name, or name and instance (`rw[2]`).
    #[arg(long)]
    pub tunnel: Option<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The output formats of `swantrail report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table for a terminal.
    Table,
    /// One JSON document with every figure.
    Json,
    /// One CSV row per tunnel.
    Csv,
    /// A self-contained HTML page with a timeline per tunnel.
    Html,
}

/// Runs `swantrail report`.
pub fn report_command(args: ReportArgs) -> Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let bound = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| report::parse_time_bound(s, now).with_context(|| format!("--{flag}")))
            .transpose()
    };
    let options = Options {
        since: bound(&args.since, "since")?,
        until: bound(&args.until, "until")?,
        tunnel: args.tunnel,
        timeline: args.format == Format::Html,
    };
    if let (Some(s), Some(u)) = (options.since, options.until) {
        if s > u {
            bail!("--since is after --until: nothing to report");
        }
    }
    let mut reader = Reader::new(options);
    let inputs = ordered_inputs(&args.inputs)?;
    if inputs.is_empty() {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            bail!(
                "no event file given and stdin is a terminal: name the files (e.g. /var/log/swantrail/events.ndjson) or pipe them in"
            );
        }
        read_lines(&mut reader, stdin.lock(), Path::new("<stdin>"))?;
    } else {
        for path in &inputs {
            let file =
                File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
            read_lines(&mut reader, BufReader::with_capacity(1 << 20, file), path)?;
        }
    }
    let report = reader.finish();
    let text = match args.format {
        Format::Table => table::render_table(&report),
        Format::Json => table::render_json(&report) + "\n",
        Format::Csv => table::render_csv(&report),
        Format::Html => html::render_html(&report),
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the report to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Files in reading order: each argument in turn, a directory's files by
/// name with rotated copies (`NAME.N`) before `NAME`, highest N first.
fn ordered_inputs(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.as_os_str() == "-" {
            continue;
        }
        if a.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(a)
                .with_context(|| format!("{}: cannot list", a.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort_by_key(|p| rotation_key(p));
            out.extend(files);
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// `events.ndjson.3` → (`events.ndjson`, -3): the base name, then older
/// rotations (higher numbers) first and the live file (0) last.
fn rotation_key(p: &Path) -> (String, i64) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((base, n)) = name.rsplit_once('.') {
        if let Ok(n) = n.parse::<i64>() {
            return (base.to_string(), -n);
        }
    }
    (name, 0)
}

/// Streams one input's lines into the reader; an unreadable line is
/// reported with its place (a torn last line is expected after a crash).
fn read_lines(reader: &mut Reader, mut input: impl BufRead, path: &Path) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let torn = buf.last() != Some(&b'\n');
        let line = String::from_utf8_lossy(&buf);
        if let Err(e) = reader.feed_line(&line) {
            let what = if torn {
                "torn last line skipped"
            } else {
                "line skipped"
            };
            eprintln!("swantrail: {}:{number}: {what}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_sort_oldest_first() {
        let mut v: Vec<PathBuf> = [
            "events.ndjson",
            "events.ndjson.1",
            "events.ndjson.10",
            "events.ndjson.2",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        v.sort_by_key(|p| rotation_key(p));
        let names: Vec<String> = v.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "events.ndjson.10",
                "events.ndjson.2",
                "events.ndjson.1",
                "events.ndjson"
            ]
        );
    }
}
