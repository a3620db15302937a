//! `swantrail run`: the command line of the daemon.
//!
//! It only reads the configuration (refusing, at the key's line, TLS files
//! that do not read, as `check-config` does), merges the flags into it, sets
//! up logging, the runtime and the process's memory policy (no transparent
//! huge pages: see [`small_pages`]), and hands over to
//! [`crate::daemon::serve`]; everything the daemon does lives there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Config, ConfigError, LogFormat};
use crate::daemon::{init_logging, serve, signals};

/// Arguments of `swantrail run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML configuration; without it, poll the local pluto and print to stdout.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where spools and checkpoints live (overrides `state_dir` in the config).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log format on stderr (overrides `log.format` in the config).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format`: how log lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// One readable line per record.
    Text,
    /// One JSON object per record, for log shippers.
    Json,
}

/// The configuration at `path`, refused (at the line of the key) when a TLS
/// sink's files do not read: a start error, as `check-config` reports it.
fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let config = crate::config::from_toml_str(&text, path)?;
    let mut errors = crate::sink::tls::check_files(&config.sinks, &text, path);
    match errors.len() {
        0 => Ok(config),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

/// Turns transparent huge pages off for this process, before the daemon
/// touches its heap.
///
/// The binary's allocator (mimalloc) reserves its heap as one 1 GiB arena
/// and asks the kernel for huge pages on it (`MADV_HUGEPAGE`), so even where
/// the system only gives them on request (`enabled = madvise`, the usual
/// default) every 2 MiB region the heap touches becomes 2 MiB resident: a
/// 3-tunnel gateway's daemon held 16 MB of heap for 2 MB in use. With 4 KiB
/// pages its resident memory follows what it uses. This is what mimalloc's
/// own `MIMALLOC_ALLOW_THP=0` does; it is done here so that it needs no
/// environment and leaves the one-shot commands (`parse`, `show`, `diff` of
/// big dumps, where huge pages save TLB misses and resident size does not
/// matter) as they were. Failing (a kernel without the call) costs only the
/// memory, so the result is ignored.
fn small_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument (1: disable)
    // and the rest zero; it reads and writes no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    small_pages();
    let mut config = match &args.config {
        Some(path) => load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    match args.log_format {
        Some(LogFormatArg::Text) => config.log.format = LogFormat::Text,
        Some(LogFormatArg::Json) => config.log.format = LogFormat::Json,
        None => {}
    }
    init_logging(config.log.format, &config.log.level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // First of all, so that a SIGTERM during startup is a clean stop.
        let control = signals()?;
        serve(config, control).await
    })?;
    Ok(ExitCode::SUCCESS)
}
