//! The commands of `swantrail`, one file per subcommand: the only place clap,
//! anyhow and stdout live.
//!
//! Each file holds its subcommand's argument struct and the function that
//! runs it; the work itself is the library's (parse, track, show, daemon).
//! `main.rs` only picks the subcommand. Nothing below `cli` may be imported
//! by the core modules (status, snapshot, track, event): they stay usable
//! without a terminal or a runtime.

pub mod check_config;
pub mod completions;
pub mod diff;
pub mod man;
pub mod parse;
pub mod redeliver;
pub mod replay;
pub mod report;
pub mod run;
pub mod show;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;

use crate::event::Event;
use crate::snapshot::Snapshot;
use crate::track::TrackerConfig;

/// Options shared by `diff` and `replay`: how the tracker is set up.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackerArgs {
    /// `observer.hostname` of the events (default: this machine's host name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// `observer.version`: the libreswan version that printed the dumps.
    #[arg(long)]
    pub observer_version: Option<String>,
    /// How long negotiating without an established Child SA lasts before
    /// `negotiation-stalled`, in the config's units (`120`, `90s`, `2m`).
    #[arg(long, default_value = "2m", value_parser = seconds)]
    pub stalled_after: i64,
    /// Emit `traffic` metrics for up tunnels at most this often (`60`, `5m`).
    #[arg(long, value_parser = seconds)]
    pub traffic_interval: Option<i64>,
}

/// `--encoding` of `diff` and `replay`: what each printed line says of
/// its event, as a sink's `encoding` key says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    /// The ECS event line, as the spools keep it.
    #[default]
    Ecs,
    /// OCSF 1.8 Tunnel Activity (class 4014).
    Ocsf,
}

/// A duration as the config writes it (`2m`, `90s`), or bare seconds, in
/// whole seconds: the command line takes what the config file takes.
fn seconds(text: &str) -> Result<i64, String> {
    let duration = match text.parse::<u64>() {
        Ok(n) => std::time::Duration::from_secs(n),
        Err(_) => crate::config::parse_duration(text).map_err(|e| e.to_string())?,
    };
    i64::try_from(duration.as_secs()).map_err(|_| format!("{text:?} is too long"))
}

impl TrackerArgs {
    pub(crate) fn config(&self) -> TrackerConfig {
        let mut config = TrackerConfig::new(
            self.hostname
                .clone()
                .unwrap_or_else(crate::hostname::system_hostname),
        );
        config.observer_version = self.observer_version.clone();
        config.stalled_after_s = self.stalled_after;
        config.traffic_interval_s = self.traffic_interval;
        config
    }
}

/// Print events as NDJSON on stdout; a closed pipe ends quietly.
pub(crate) fn print_events(events: &[Event], encoding: EncodingArg) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for event in events {
        if !write_line(&mut out, event, encoding)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Write one event line; `false` when the reader went away (a closed pipe
/// such as `| head` is a normal end, not an error).
pub(crate) fn write_line(
    out: &mut impl Write,
    event: &Event,
    encoding: EncodingArg,
) -> anyhow::Result<bool> {
    let line = match encoding {
        EncodingArg::Ecs => event.to_json_line(),
        EncodingArg::Ocsf => crate::ocsf::tunnel_activity(event, env!("CARGO_PKG_VERSION"))
            .with_context(|| format!("event {} as OCSF", event.id()))?
            .to_string(),
    };
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing events to stdout"),
    }
}

/// Flush stdout; a closed pipe is a normal end.
pub(crate) fn flush(out: &mut impl Write) -> anyhow::Result<()> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("writing events to stdout")
        }
        _ => Ok(()),
    }
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

/// Tell the operator on stderr what the parser skipped or found wanting.
pub(crate) fn warn_about(snapshot: &Snapshot) {
    if let Some(why) = &snapshot.incomplete {
        eprintln!("swantrail: warning: the dump is incomplete: {why}");
    }
    if let Some(first) = snapshot.diagnostics.first() {
        let listed = match snapshot.diagnostics_omitted {
            0 => "lists them under \"diagnostics\"".to_string(),
            _ => format!(
                "lists the first {} under \"diagnostics\" and counts the rest in \"diagnostics_omitted\"",
                snapshot.diagnostics.len()
            ),
        };
        eprintln!(
            "swantrail: note: {} line(s) not recognised (first: line {}: {}); `swantrail parse` {listed}",
            snapshot.diagnostic_count(),
            first.line,
            first.reason,
        );
    }
}
