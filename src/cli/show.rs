//! `swantrail show`: one dump (or the local pluto) in, a readable table out.
//!
//! The rows and their rendering are `crate::show`'s; this file only picks the
//! input, the colours and the width, and refuses an input with nothing of
//! pluto's in it (empty or garbage) rather than show it as "no tunnels up".

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{warn_about, write_stdout};
use crate::input::{DEFAULT_MAX_BYTES, DumpOrigin, parse_byte_size, parse_dump};
use crate::show::{RenderOptions, render, tunnel_table};
use crate::snapshot::Snapshot;

/// Arguments of `swantrail show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The dump to read; `-` or nothing for standard input. With neither a
    /// file nor piped input (a terminal on stdin), the local pluto is asked.
    pub file: Option<PathBuf>,
    /// Ask the local pluto (`ipsec whack --status` and `--trafficstatus`)
    /// instead of reading a dump.
    #[arg(long, conflicts_with = "file")]
    pub live: bool,
    /// pluto's control socket, for `--live` (default: whack's own).
    #[arg(long, value_name = "PATH")]
    pub ctlsocket: Option<PathBuf>,
    /// Refuse inputs larger than this (bytes; KiB, MiB, GiB suffixes allowed;
    /// default 1 GiB, ten times the `status` of a 50,000-tunnel gateway).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
    /// When to colour the table: `auto` colours only a terminal without `NO_COLOR`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Do not shorten anything to fit 80 columns.
    #[arg(long)]
    pub wide: bool,
}

/// Whether `show` writes ANSI colours; a flag because pipes to `less -R` want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Run `swantrail show`: the readable table instead of `ipsec status`.
pub fn show_command(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let live = args.live || (args.file.is_none() && std::io::stdin().is_terminal());
    let (snapshot, input) = if live {
        (ask_pluto(args.ctlsocket.as_deref())?, "pluto".to_string())
    } else {
        let snapshot = parse_dump(args.file.as_deref(), args.max_bytes, None)?;
        (
            snapshot,
            DumpOrigin::from_arg(args.file.as_deref()).to_string(),
        )
    };
    if snapshot.kinds.is_empty() {
        // Nothing pluto prints: "no tunnels up" would pass for an answer.
        let why = snapshot
            .incomplete
            .as_deref()
            .unwrap_or("empty, no libreswan status output");
        let hint = if live {
            ""
        } else {
            " (give it `ipsec status` output, or use --live)"
        };
        anyhow::bail!("{input}: {why}; nothing to show{hint}");
    }
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let options = RenderOptions {
        width: if args.wide { None } else { Some(80) },
        color,
    };
    let table = tunnel_table(&snapshot);
    write_stdout(render(&table, &options).as_bytes())?;
    warn_about(&snapshot);
    // The process ends now: freeing a gateway-sized snapshot and its rows one
    // allocation at a time would only add to the run's CPU time.
    std::mem::forget(table);
    std::mem::forget(snapshot);
    Ok(ExitCode::SUCCESS)
}

/// How long one `ipsec whack` may take before `show` gives up on pluto.
const WHACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The local pluto's `--status` merged with its `--trafficstatus` (exact
/// bytes and "since"), asked the way the daemon's command source asks it.
fn ask_pluto(ctlsocket: Option<&std::path::Path>) -> anyhow::Result<Snapshot> {
    let whack = |what: &str| {
        let mut argv = vec!["ipsec".to_string(), "whack".to_string()];
        if let Some(socket) = ctlsocket {
            argv.push("--ctlsocket".to_string());
            argv.push(socket.display().to_string());
        }
        argv.push(what.to_string());
        argv
    };
    let commands = [whack("--status"), whack("--trafficstatus")];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let snapshot = runtime
        .block_on(crate::source::command::poll(
            &commands,
            WHACK_TIMEOUT,
            crate::input::DEFAULT_MAX_BYTES,
        ))
        .map_err(|failure| {
            anyhow::anyhow!(
                "cannot ask pluto: {}; give a dump file or pipe `ipsec status` in",
                failure.detail
            )
        })?;
    Ok(snapshot)
}
