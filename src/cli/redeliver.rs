//! `swantrail redeliver`: send a sink's dead letters again once the cause
//! of the refusals is fixed.
//!
//! The work is `crate::sink::redeliver`'s; this file reads the config, runs
//! it and reports on stdout how many events were delivered and how many
//! were refused again (and where those are), with a failing exit status
//! unless every one was delivered, so that a script can tell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::daemon::init_logging;
use crate::sink::redeliver::{Redelivered, redeliver};

/// Arguments of `swantrail redeliver`.
#[derive(Debug, clap::Args)]
pub struct RedeliverArgs {
    /// The dead-letter file: `state_dir/dead-letter/<sink>.ndjson` (the
    /// daemon may keep running: it starts a new one), a copy of it, or the
    /// `.redelivering` file an interrupted run left.
    pub file: PathBuf,
    /// The TOML configuration the daemon runs with.
    #[arg(long)]
    pub config: PathBuf,
    /// The sink to send through, by its `name` in the configuration; what
    /// it refuses again goes to its dead-letter file.
    #[arg(long, value_name = "NAME")]
    pub sink: String,
    /// Where spools and dead letters live (overrides `state_dir` in the config).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to retry a destination that is down or busy before the
    /// events not yet sent go back to the dead-letter file (`90s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = crate::config::parse_duration)]
    pub give_up_after: Duration,
}

/// Run `swantrail redeliver`.
pub fn redeliver_command(args: RedeliverArgs) -> anyhow::Result<ExitCode> {
    let mut config = crate::config::load(&args.config)?;
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    init_logging(config.log.format, &config.log.level)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let done = runtime.block_on(redeliver(
        &config.sinks,
        &config.state_dir,
        &args.sink,
        &args.file,
        args.give_up_after,
    ))?;
    println!("{}", report(&done));
    if done.refused + done.not_sent == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// One line: the counts, then where what was not delivered is and why.
fn report(done: &Redelivered) -> String {
    let mut line = format!(
        "{}: {} delivered, {} refused again",
        done.file.display(),
        done.delivered,
        done.refused
    );
    if let Some(reason) = &done.first_refusal {
        line.push_str(&format!(" (first answer: {reason})"));
    }
    if let Some(reason) = &done.unavailable {
        line.push_str(&format!(
            ", {} not sent (the destination stayed unavailable: {reason})",
            done.not_sent
        ));
    }
    if done.refused + done.not_sent > 0 {
        line.push_str(&format!(
            "; those are in {}, to send again with swantrail redeliver",
            done.dead_letter.display()
        ));
    }
    line
}
