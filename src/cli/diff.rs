//! `swantrail diff`: two saved dumps in, the events between them out.
//!
//! It runs the daemon's [`Tracker`] over both dumps, with times taken from the
//! dumps, and prints only the events of the second one.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EncodingArg, TrackerArgs, print_events};
use crate::input::{DEFAULT_MAX_BYTES, parse_byte_size};
use crate::source::replay::{self, ReplayStep};
use crate::track::Tracker;

/// Arguments of `swantrail diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier dump.
    pub old: PathBuf,
    /// The later dump.
    pub new: PathBuf,
    /// Refuse dumps larger than this (bytes; K/KiB, M/MiB, G/GiB suffixes allowed;
    /// default 1 GiB, ten times the `status` of a 50,000-tunnel gateway).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
    /// What each line says of its event: `ecs` (the default, as the spools
    /// keep it) or `ocsf` (OCSF 1.8 Tunnel Activity, class 4014).
    #[arg(long, value_enum, default_value_t)]
    pub encoding: EncodingArg,
    /// How the tracker is set up.
    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// Run `swantrail diff`: the events between OLD and NEW (the inventory of
/// OLD itself is neither printed nor built: OLD only primes the tracker).
pub fn diff_command(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let mut tracker = Tracker::new(args.tracker.config());
    let mut events = Vec::new();
    for (i, path) in [&args.old, &args.new].into_iter().enumerate() {
        let (taken_at, _) = replay::dump_time(path)?;
        let step = ReplayStep {
            taken_at,
            files: vec![path.clone()],
        };
        let snapshot = replay::load_step_within(&step, args.max_bytes)?;
        if let Some(why) = &snapshot.incomplete {
            anyhow::bail!(
                "{}: incomplete dump ({why}); nothing to diff",
                path.display()
            );
        }
        if i == 0 {
            tracker.prime(&snapshot);
        } else {
            events = tracker.observe(&snapshot);
        }
        // The process ends right after printing: handing a gateway-sized
        // snapshot (hundreds of thousands of small allocations) back to the
        // allocator one by one would cost a fifth of the run.
        std::mem::forget(snapshot);
    }
    let printed = print_events(&events, args.encoding);
    std::mem::forget(events);
    std::mem::forget(tracker);
    printed
}
