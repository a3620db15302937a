//! `swantrail check-config`: read a configuration and say exactly what is wrong.
//!
//! The checks are `crate::config`'s; this file only prints the verdict, on
//! stdout when the file is good and as one `file:line:column: message` line
//! per mistake on stderr when it is not (every key, source and sink is checked
//! on its own, so one run names everything to fix; a TOML syntax error or an
//! unknown key still stops the reading where it is).

use std::path::Path;
use std::process::ExitCode;

use crate::config::load;

/// Run `swantrail check-config`.
pub fn check_config_command(file: &Path) -> anyhow::Result<ExitCode> {
    match load(file) {
        Ok(config) => {
            let audit = match config.audit.len() {
                0 => String::new(),
                n => format!(", {n} audit {}", plural(n, "source", "sources")),
            };
            let metrics = match &config.metrics {
                Some(m) => format!(", metrics on {}", m.listen),
                None => String::new(),
            };
            println!(
                "{}: ok ({} {}{audit}, {} {}{metrics})",
                file.display(),
                config.sources.len(),
                plural(config.sources.len(), "source", "sources"),
                config.sinks.len(),
                plural(config.sinks.len(), "sink", "sinks"),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
