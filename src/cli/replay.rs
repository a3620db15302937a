//! `swantrail replay`: a series of saved dumps in, NDJSON events out.
//!
//! It runs the same [`Tracker`] the daemon runs, with event times taken
//! from the dumps (epoch in the file name, else mtime), so its output is
//! reproducible and lines up with pluto's log; with `--audit-log` pluto's
//! audit records, with `--pluto-log` pluto's own log, are fused in as
//! the daemon fuses them; `--encoding ocsf` prints the events as a sink
//! with that encoding sends them. It only reads files and writes to
//! stdout; it never talks to pluto.

use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{EncodingArg, TrackerArgs, flush, write_line};
use crate::input::{DEFAULT_MAX_BYTES, parse_byte_size};
use crate::source::replay;
use crate::track::Tracker;

/// Arguments of `swantrail replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Dumps or directories of dumps (`status-<epoch>.txt`,
    /// `trafficstatus-<epoch>.txt`, …); dumps of one epoch are combined.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Refuse dumps larger than this (bytes; K/KiB, M/MiB, G/GiB suffixes allowed;
    /// default 1 GiB, ten times the `status` of a 50,000-tunnel gateway).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
    /// pluto's Linux audit records (an auditd log, `audit.log`) of the same
    /// time: fused with the dumps for exact times and the SAs no dump shows.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Fuse only the records of this pluto pid: a host's log holds every
    /// pluto's records (one per network namespace, or a lab's two peers),
    /// as the daemon's `pid_file` sorts them out.
    #[arg(long, value_name = "PID", requires = "audit_log")]
    pub audit_pid: Option<u32>,
    /// What each line says of its event: `ecs` (the default, as the spools
    /// keep it) or `ocsf` (OCSF 1.8 Tunnel Activity, class 4014).
    #[arg(long, value_enum, default_value_t)]
    pub encoding: EncodingArg,
    /// pluto's own log (`logfile=` with `logtime=yes`, stamps read as
    /// UTC) of the same time: fused with the dumps, it decides which SA
    /// rekeyed which and why each ended (`libreswan.end.cause`).
    #[arg(long, value_name = "FILE")]
    pub pluto_log: Option<PathBuf>,
    /// How the tracker is set up.
    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// Run `swantrail replay`: every event of a series of dumps, as NDJSON.
pub fn replay_command(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let steps = replay::plan(&args.inputs)?;
    let mut audit = match &args.audit_log {
        Some(path) => replay::AuditFeed::read(path)?,
        None => replay::AuditFeed::default(),
    };
    if let Some(pid) = args.audit_pid {
        audit.keep_pid(pid);
    }
    let mut pluto_log = match (&args.pluto_log, steps.first()) {
        (Some(path), Some(first)) => replay::PlutoLogFeed::read(path, first.taken_at)?,
        _ => replay::PlutoLogFeed::default(),
    };
    let mut tracker = Tracker::new(args.tracker.config());
    // Every dump is a poll: held events are released by the next one.
    tracker.expect_linux_audit_records(args.audit_log.is_some() || args.pluto_log.is_some());
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for step in &steps {
        let snapshot = replay::load_step_within(step, args.max_bytes)?;
        if let Some(why) = &snapshot.incomplete {
            let first = step.files.first().map(|p| p.display().to_string());
            eprintln!(
                "swantrail: skipping incomplete dump {} ({why})",
                first.unwrap_or_default()
            );
            continue;
        }
        tracker.ingest_linux_audit_records(audit.until(step.taken_at));
        tracker.ingest_pluto_log(pluto_log.until(step.taken_at), None);
        for event in tracker.observe(&snapshot) {
            if !write_line(&mut out, &event, args.encoding)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    for event in tracker.release_held() {
        if !write_line(&mut out, &event, args.encoding)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}
