//! The `swantrail` command line: turns arguments into calls to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Every poll of a big gateway builds and frees about a million small strings
/// (the snapshot); mimalloc does that in a fraction of glibc malloc's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// swantrail turns libreswan's status output into an audit trail.
#[derive(Parser)]
#[command(
    version,
    about,
    propagate_version = true,
    after_long_help = "Files: /etc/swantrail/swantrail.toml (the configuration the systemd unit \
        runs with; see swantrail.toml(5)), /var/lib/swantrail (spools and checkpoints), \
        /var/log/swantrail (the example's event file). Every event field and action: \
        /usr/share/doc/swantrail/docs/events.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll pluto (or watch dumps) and ship events to the sinks.
    Run(swantrail::cli::run::RunArgs),
    /// Parse one dump and print the snapshot as JSON.
    Parse(swantrail::cli::parse::ParseArgs),
    /// Print a readable table of the tunnels in one dump.
    Show(swantrail::cli::show::ShowArgs),
    /// Print the events between two dumps as NDJSON.
    Diff(swantrail::cli::diff::DiffArgs),
    /// Replay a series of dumps and print the events as NDJSON.
    Replay(swantrail::cli::replay::ReplayArgs),
    /// Print the audit history of tunnel lifetimes from event files.
    Report(swantrail::cli::report::ReportArgs),
    /// Send a sink's dead letters again once the cause of the refusals is fixed.
    Redeliver(swantrail::cli::redeliver::RedeliverArgs),
    /// Validate a configuration file and say exactly what is wrong.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(swantrail::cli::completions::CompletionsArgs),
    /// Print a manual page, or write them all with --out-dir.
    Man(swantrail::cli::man::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => swantrail::cli::run::run(args),
        Command::Parse(args) => swantrail::cli::parse::parse_command(args),
        Command::Show(args) => swantrail::cli::show::show_command(args),
        Command::Diff(args) => swantrail::cli::diff::diff_command(args),
        Command::Replay(args) => swantrail::cli::replay::replay_command(args),
        Command::Redeliver(args) => swantrail::cli::redeliver::redeliver_command(args),
        Command::CheckConfig { file } => swantrail::cli::check_config::check_config_command(&file),
        Command::Report(args) => swantrail::cli::report::report_command(args),
        Command::Completions(args) => {
            swantrail::cli::completions::completions_command(args, Cli::command())
        }
        Command::Man(args) => swantrail::cli::man::man_command(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swantrail: {e:#}");
            ExitCode::FAILURE
        }
    }
}
