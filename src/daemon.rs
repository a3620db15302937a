//! The daemon wiring. TODO(issue 4): implement.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `swantrail run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML configuration; without it, poll the local pluto and print to stdout.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("run is not implemented yet ({:?})", args.config)
}
