//! `swantrail diff` and `swantrail replay`: saved dumps in, NDJSON events out.
//!
//! Both run the same [`Tracker`] the daemon runs, with event times taken
//! from the dumps (epoch in the file name, else mtime), so their output is
//! reproducible and lines up with pluto's log. They only read files and
//! write to stdout; they never talk to pluto.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::event::Event;
use crate::source::replay::{self, ReplayStep};
use crate::track::{Tracker, TrackerConfig};

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

impl TrackerArgs {
    fn config(&self) -> TrackerConfig {
        let mut config = TrackerConfig::new(self.hostname.clone().unwrap_or_else(local_hostname));
        config.observer_version = self.observer_version.clone();
        config.stalled_after_s = self.stalled_after;
        config.traffic_interval_s = self.traffic_interval;
        config
    }
}

/// Arguments of `swantrail diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier dump.
    pub old: PathBuf,
    /// The later dump.
    pub new: PathBuf,
    /// How the tracker is set up.
    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// Arguments of `swantrail replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Dumps or directories of dumps (`status-<epoch>.txt`,
    /// `trafficstatus-<epoch>.txt`, …); dumps of one epoch are combined.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// How the tracker is set up.
    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// A duration as the config writes it (`2m`, `90s`), or bare seconds, in
/// whole seconds: the command line takes what the config file takes.
fn seconds(text: &str) -> Result<i64, String> {
    let duration = match text.parse::<u64>() {
        Ok(n) => std::time::Duration::from_secs(n),
        Err(_) => crate::config::parse_duration(text)?,
    };
    i64::try_from(duration.as_secs()).map_err(|_| format!("{text:?} is too long"))
}

/// Run `swantrail diff`: the events between OLD and NEW (the inventory of
/// OLD itself is not printed).
pub fn diff_command(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let mut tracker = Tracker::new(args.tracker.config());
    let mut events = Vec::new();
    for (i, path) in [&args.old, &args.new].into_iter().enumerate() {
        let (taken_at, _) = replay::dump_time(path)?;
        let step = ReplayStep {
            taken_at,
            files: vec![path.clone()],
        };
        let snapshot = replay::load_step(&step)?;
        if let Some(why) = &snapshot.incomplete {
            anyhow::bail!(
                "{}: incomplete dump ({why}); nothing to diff",
                path.display()
            );
        }
        let observed = tracker.observe(&snapshot);
        if i == 1 {
            events = observed;
        }
    }
    print_events(&events)
}

/// Run `swantrail replay`: every event of a series of dumps, as NDJSON.
pub fn replay_command(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let steps = replay::plan(&args.inputs)?;
    let mut tracker = Tracker::new(args.tracker.config());
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for step in &steps {
        let snapshot = replay::load_step(step)?;
        if let Some(why) = &snapshot.incomplete {
            let first = step.files.first().map(|p| p.display().to_string());
            eprintln!(
                "swantrail: skipping incomplete dump {} ({why})",
                first.unwrap_or_default()
            );
            continue;
        }
        for event in tracker.observe(&snapshot) {
            if !write_line(&mut out, &event)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

fn print_events(events: &[Event]) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for event in events {
        if !write_line(&mut out, event)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Write one event line; `false` when the reader went away (a closed pipe
/// such as `| head` is a normal end, not an error).
fn write_line(out: &mut impl Write, event: &Event) -> anyhow::Result<bool> {
    match writeln!(out, "{}", event.to_json_line()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing events to stdout"),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<()> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("writing events to stdout")
        }
        _ => Ok(()),
    }
}

/// This machine's host name, for `observer.hostname`.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes
    // at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}
