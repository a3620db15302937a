//! `swantrail diff` and `swantrail replay`. TODO(issue 3): implement.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `swantrail diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier dump.
    pub old: PathBuf,
    /// The later dump.
    pub new: PathBuf,
}

/// Arguments of `swantrail replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Dumps or directories of dumps.
    pub inputs: Vec<PathBuf>,
}

/// Run `swantrail diff`.
pub fn diff_command(args: DiffArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("diff is not implemented yet ({:?})", args.old)
}

/// Run `swantrail replay`.
pub fn replay_command(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("replay is not implemented yet ({:?})", args.inputs)
}
