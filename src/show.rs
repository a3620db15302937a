//! `swantrail parse` and `swantrail show`: one dump to JSON or to a table.
//! TODO(issue 2): implement.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `swantrail parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The dump to read; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
}

/// Arguments of `swantrail show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The dump to read; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
}

/// Run `swantrail parse`.
pub fn parse_command(args: ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parse is not implemented yet ({:?})", args.file)
}

/// Run `swantrail show`.
pub fn show_command(args: ShowArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("show is not implemented yet ({:?})", args.file)
}
