//! `swantrail check-config`: read a configuration and say exactly what is wrong.
//!
//! The checks of the text are `crate::config`'s; this file prints the
//! verdict, on stdout when the file is good and as one
//! `file:line:column: message` line per mistake on stderr when it is not
//! (every key, source and sink is checked on its own, so one run names
//! everything to fix; a TOML syntax error or an unknown key still stops the
//! reading where it is). It also asks the machine what only the machine can
//! tell, which `crate::config` must never touch: whether the state directory
//! can be created or written, whether the metrics address can be bound, and
//! whether every TLS sink's files read (as `run` asks too). A deprecated key
//! is a warning line on stderr; the file is still good.
//! Those checks leave nothing behind: no directory or file is created, and
//! a socket bound for the question is closed at once.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, ConfigError, error_at_key, from_toml_str};
use crate::sink::tls;

/// Run `swantrail check-config`.
pub fn check_config_command(file: &Path) -> anyhow::Result<ExitCode> {
    let checked = std::fs::read_to_string(file)
        .map_err(|error| ConfigError::Read {
            path: file.to_path_buf(),
            error,
        })
        .and_then(|text| {
            let config = from_toml_str(&text, file)?;
            machine_check(&config, &text, file)?;
            for warning in tls::deprecations(&config.sinks, &text, file) {
                eprintln!("{warning}");
            }
            Ok(config)
        });
    match checked {
        Ok(config) => {
            let audit = match config.audit.len() {
                0 => String::new(),
                n => format!(", {n} audit {}", plural(n, "source", "sources")),
            };
            let pluto_log = match config.pluto_log.len() {
                0 => String::new(),
                n => format!(", {n} pluto-log {}", plural(n, "source", "sources")),
            };
            let metrics = match &config.metrics {
                Some(m) => format!(", metrics on {}", m.listen),
                None => String::new(),
            };
            println!(
                "{}: ok ({} {}{audit}{pluto_log}, {} {}{metrics})",
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

/// What the daemon would find wrong at start although the text is good:
/// a state directory it cannot make or write, a metrics address in use, a
/// TLS file that does not read.
fn machine_check(config: &Config, text: &str, file: &Path) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    if let Some(why) = state_dir_problem(&config.state_dir) {
        errors.push(error_at_key(
            text,
            file,
            "state_dir",
            format!(
                "the state directory {} cannot be used: {why}; {}",
                config.state_dir.display(),
                crate::daemon::state_dir_advice()
            ),
        ));
    }
    if let Some(metrics) = &config.metrics {
        // Bound and dropped at once, as the daemon binds it (SO_REUSEADDR).
        if let Err(e) = std::net::TcpListener::bind(metrics.listen) {
            errors.push(error_at_key(
                text,
                file,
                "metrics.listen",
                format!(
                    "`metrics.listen` {}: cannot listen there: {e}; stop what uses it (a running \
                     swantrail with this config?) or choose another address",
                    metrics.listen
                ),
            ));
        }
    }
    errors.extend(tls::check_files(&config.sinks, text, file));
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

/// Why the daemon could not create `dir` or write into it, if it could not.
///
/// Asked of the kernel without creating anything: the nearest part of the
/// path that exists must be a directory that this user may write into and
/// enter (`faccessat` with the effective ids, so root on a read-only file
/// system is refused too); the daemon creates the rest.
fn state_dir_problem(dir: &Path) -> Option<String> {
    let mut existing: PathBuf = dir.to_path_buf();
    let meta = loop {
        match std::fs::metadata(&existing) {
            Ok(meta) => break meta,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                let parent = match existing.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    // A relative path: its first part is in the current directory.
                    _ => PathBuf::from("."),
                };
                if parent == existing {
                    return Some(format!("{}: {e}", existing.display()));
                }
                existing = parent;
            }
            Err(e) => return Some(format!("{}: {e}", existing.display())),
        }
    };
    if !meta.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    let Ok(path) = CString::new(existing.as_os_str().as_bytes()) else {
        return Some("the path holds a NUL byte".to_string());
    };
    // SAFETY: faccessat(2) reads the NUL-terminated path, which outlives the call.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if rc == 0 {
        return None;
    }
    let error = std::io::Error::last_os_error();
    Some(if existing == dir {
        format!("cannot write into it: {error}")
    } else {
        format!("cannot create it in {}: {error}", existing.display())
    })
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
