//! The `swantrail` command line: turns arguments into calls to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// swantrail turns libreswan's status output into an audit trail.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll pluto (or watch dumps) and ship events to the sinks.
    Run(swantrail::daemon::RunArgs),
    /// Parse one dump and print the snapshot as JSON.
    Parse(swantrail::show::ParseArgs),
    /// Print a readable table of the tunnels in one dump.
    Show(swantrail::show::ShowArgs),
    /// Print the events between two dumps as NDJSON.
    Diff(swantrail::track::cli::DiffArgs),
    /// Replay a series of dumps and print the events as NDJSON.
    Replay(swantrail::track::cli::ReplayArgs),
    /// Print the audit history of tunnel lifetimes from event files.
    Report(swantrail::cli::report::ReportArgs),
    /// Validate a configuration file and say exactly what is wrong.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => swantrail::daemon::run(args),
        Command::Parse(args) => swantrail::show::parse_command(args),
        Command::Show(args) => swantrail::show::show_command(args),
        Command::Diff(args) => swantrail::track::cli::diff_command(args),
        Command::Replay(args) => swantrail::track::cli::replay_command(args),
        Command::Report(args) => swantrail::cli::report::report_command(args),
        Command::CheckConfig { file } => swantrail::config::check_config_command(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swantrail: {e:#}");
            ExitCode::FAILURE
        }
    }
}
