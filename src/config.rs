//! The TOML configuration. TODO(issue 4): implement.

use std::path::Path;
use std::process::ExitCode;

/// Run `swantrail check-config`.
pub fn check_config_command(file: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("check-config is not implemented yet ({})", file.display())
}
