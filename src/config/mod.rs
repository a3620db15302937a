//! The TOML configuration: the top-level table the daemon reads, its
//! defaults, and its validation.
//!
//! An operator edits one file (`config/swantrail.toml` documents every key), so
//! every mistake must come back as one line that names the file, the line, the
//! key and what to write instead. Unknown keys are errors: a typo'd key that is
//! silently ignored is a setting the operator believes in and does not have.
//! The top-level keys are read here; each `[[source]]` and `[[sink]]` table
//! is handed to the registry of its layer (`source::registry`,
//! `sink::registry`), whose kinds read their own keys with the helpers of
//! `toml_config`, so that neither layer imports this one. This module only
//! reads and checks values; it must never open sockets, spool files or
//! start anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::sink;
use crate::source;
use crate::source::registry::ReadSource;
use crate::toml_config::{DurationValue, Errors, OptionalDuration, Validator, toml_error};

// The settings of the sources and sinks are their layers'; they are named
// here too, where a reader of the configuration looks for them.
pub use crate::sink::file::FileSinkConfig;
pub use crate::sink::http::HttpSinkConfig;
pub use crate::sink::stdout::StdoutSinkConfig;
pub use crate::sink::syslog::SyslogSinkConfig;
pub use crate::sink::{
    FullPolicy, HTTP_BATCH_MAX_EVENTS, RetrySettings, SinkConfig, SpoolSettings,
};
pub use crate::source::SourceConfig;
pub use crate::source::command::CommandSourceConfig;
pub use crate::source::file::FileSourceConfig;
#[doc(hidden)]
pub use crate::source::linux_audit::{AuditFrom, AuditSourceConfig};
pub use crate::source::linux_audit::{
    DEFAULT_AUDIT_LOG, DEFAULT_PLUTO_PID_FILE, LinuxAuditFrom, LinuxAuditSourceConfig,
};
pub use crate::source::pluto_log::{DEFAULT_PLUTO_LOG, PlutoLogFrom, PlutoLogSourceConfig};
pub use crate::toml_config::{ConfigError, error_at_key, parse_byte_size, parse_duration};

/// The whole daemon configuration, after defaults were applied and values checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where spools and the tracker checkpoint live; must survive reboots.
    pub state_dir: PathBuf,
    /// `observer.hostname` of every event; `None` means the system's host name.
    pub hostname: Option<String>,
    /// How snapshots become events.
    pub tracker: TrackerSettings,
    /// Where snapshots come from (at least one).
    pub sources: Vec<SourceConfig>,
    /// pluto's Linux audit records, each fused into the tracker of one of
    /// `sources` (`[[source]] type = "linux-audit"`; the field keeps its
    /// first name). Kept apart from `sources` because an audit source makes no
    /// snapshots of its own and has no tracker: it only adds exact times and
    /// short-lived SAs to the source of the same pluto.
    pub audit: Vec<LinuxAuditSourceConfig>,
    /// pluto's own log, each fused into the tracker of one of `sources`
    /// (`[[source]] type = "pluto-log"`), which keeps where it was read up
    /// to in its checkpoint. Kept apart from `sources` for the reason
    /// `audit` is.
    pub pluto_log: Vec<PlutoLogSourceConfig>,
    /// Where events go (at least one); each has its own spool.
    pub sinks: Vec<SinkConfig>,
    /// How the daemon itself logs.
    pub log: LogSettings,
    /// On SIGTERM, how long the sinks may keep draining their spools before exit.
    pub shutdown_grace: Duration,
    /// The `/metrics` and `/health` endpoint; `None` (the default) serves nothing.
    pub metrics: Option<MetricsSettings>,
}

/// The `[metrics]` table: where the daemon serves `/metrics` (Prometheus) and
/// `/health`, and how many per-tunnel series it may export.
///
/// Off unless the table is present, and loopback only unless
/// `allow_non_loopback = true`: the gauges name every peer and connection of
/// the gateway, which is not for the network at large, and the endpoint has
/// no authentication (put a reverse proxy with TLS in front to scrape it
/// from elsewhere).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    /// The address to listen on (default `127.0.0.1:9846`; port 0 picks one).
    pub listen: std::net::SocketAddr,
    /// Whether a non-loopback `listen` is accepted (it is refused otherwise).
    pub allow_non_loopback: bool,
    /// At most this many tunnels get per-tunnel series (bytes, up-since) per
    /// source; the rest are counted in `swantrail_tunnel_series_left_out`,
    /// so a 50,000-tunnel gateway does not flood the Prometheus server.
    pub max_tunnel_series: usize,
}

impl Default for MetricsSettings {
    /// The documented defaults of a bare `[metrics]` table.
    fn default() -> MetricsSettings {
        MetricsSettings {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9846)),
            allow_non_loopback: false,
            max_tunnel_series: 1000,
        }
    }
}

/// Tracker knobs that change which events are produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSettings {
    /// A negotiation still not established after this long yields `negotiation-stalled`.
    pub stalled_after: Duration,
    /// Emit `traffic` metric events this often; `None` (the default) emits none.
    pub traffic_interval: Option<Duration>,
}

/// The daemon's own diagnostics (not the events).
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// Human-readable lines or one JSON object per line (for journald/ELK).
    pub format: LogFormat,
    /// A tracing filter: a level (`info`) or directives (`info,swantrail::sink=debug`).
    pub level: String,
}

/// The shape of the daemon's own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    /// The behaviour without a config file: poll the local pluto every 10 s, NDJSON to stdout.
    fn default() -> Config {
        Config {
            state_dir: PathBuf::from("/var/lib/swantrail"),
            hostname: None,
            tracker: TrackerSettings::default(),
            sources: vec![SourceConfig::Command(CommandSourceConfig::default())],
            audit: Vec::new(),
            pluto_log: Vec::new(),
            sinks: vec![SinkConfig::Stdout(StdoutSinkConfig::default())],
            log: LogSettings::default(),
            shutdown_grace: Duration::from_secs(5),
            metrics: None,
        }
    }
}

impl Default for TrackerSettings {
    fn default() -> TrackerSettings {
        TrackerSettings {
            stalled_after: Duration::from_secs(120),
            traffic_interval: None,
        }
    }
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    from_toml_str(&text, path)
}

/// Validate config text; `origin` names the file in error messages.
pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let toml_error = |e: toml::de::Error| toml_error(text, origin, e);
    let mut document = DeTable::parse(text).map_err(toml_error)?;
    // Sources and sinks are read one by one, each by its kind's reader
    // (see `source::registry` and `sink::registry`).
    let sources = document.get_mut().remove("source");
    let sinks = document.get_mut().remove("sink");
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(document)).map_err(toml_error)?;
    config(&Validator::new(text, origin), raw, sources, sinks)
}

/// A tracing filter that is a level or `target=level` directives; a bare
/// word that is not a level would silently be read as a target and log nothing.
fn check_log_level(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!("`{directive}` is not one of {}", LEVELS.join(", ")));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|e| e.to_string())
}

// The raw file as written: every key optional so that defaults apply, every
// table `deny_unknown_fields`. Sources and sinks are not here: each is read
// by its registry, because their kinds are not known to this module.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    hostname: Option<Spanned<String>>,
    shutdown_grace: Option<DurationValue>,
    tracker: Option<RawTracker>,
    log: Option<RawLog>,
    metrics: Option<RawMetrics>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
    allow_non_loopback: Option<bool>,
    max_tunnel_series: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracker {
    stalled_after: Option<Spanned<DurationValue>>,
    traffic_interval: Option<OptionalDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<Spanned<String>>,
}

/// The whole file: the top-level keys here, each `[[source]]` and
/// `[[sink]]` by its registry.
fn config(
    reader: &Validator<'_>,
    raw: RawConfig,
    sources: Option<Spanned<DeValue<'_>>>,
    sinks: Option<Spanned<DeValue<'_>>>,
) -> Result<Config, ConfigError> {
    let defaults = Config::default();
    let mut errors = Errors::default();
    let hostname = match raw.hostname {
        Some(h) if h.get_ref().trim().is_empty() => errors.keep(
            reader.error(
                h.span(),
                "`hostname` is empty; remove the key to use the system's host name".into(),
            ),
            None,
        ),
        Some(h) => Some(h.into_inner()),
        None => None,
    };
    let tracker = match raw.tracker {
        None => defaults.tracker,
        Some(t) => TrackerSettings {
            stalled_after: match t.stalled_after {
                Some(d) => errors.keep(
                    reader.positive(d, "tracker.stalled_after"),
                    defaults.tracker.stalled_after,
                ),
                None => defaults.tracker.stalled_after,
            },
            traffic_interval: t.traffic_interval.and_then(|d| d.0),
        },
    };
    let log = match raw.log {
        None => defaults.log,
        Some(l) => LogSettings {
            format: l.format.unwrap_or(defaults.log.format),
            level: match l.level {
                Some(level) => match check_log_level(level.get_ref()) {
                    Err(e) => errors.keep(
                        reader.error(
                            level.span(),
                            format!(
                                "invalid `log.level` \"{}\": {e}; write e.g. \"info\" or \"info,swantrail::sink=debug\"",
                                level.get_ref()
                            ),
                        ),
                        defaults.log.level,
                    ),
                    Ok(()) => level.into_inner(),
                },
                None => defaults.log.level,
            },
        },
    };
    let metrics = raw
        .metrics
        .and_then(|m| errors.keep(metrics(reader, m).map(Some), None));
    let sources = match sources {
        None => defaults
            .sources
            .into_iter()
            .map(ReadSource::Snapshot)
            .collect(),
        Some(list) => {
            let mut names = Vec::new();
            let mut sources = Vec::new();
            for table in tables(reader, list, "source", &mut errors) {
                let source = source::registry::read(reader, table, &mut names);
                if let Some(source) = errors.keep(source.map(Some), None) {
                    sources.push(source);
                }
            }
            sources
        }
    };
    let source::registry::TiedSources {
        sources,
        audit,
        pluto_log,
    } = source::registry::tie_to_snapshot_sources(reader, sources, &mut errors);
    let sinks = match sinks {
        None => defaults.sinks,
        Some(list) => {
            let mut names = Vec::new();
            let mut sinks = Vec::new();
            for table in tables(reader, list, "sink", &mut errors) {
                let sink = sink::registry::read(reader, table, &mut names);
                if let Some(sink) = errors.keep(sink.map(Some), None) {
                    sinks.push(sink);
                }
            }
            sinks
        }
    };
    errors.finish(())?;
    Ok(Config {
        state_dir: raw.state_dir.unwrap_or(defaults.state_dir),
        hostname,
        tracker,
        sources,
        audit,
        pluto_log,
        sinks,
        log,
        shutdown_grace: raw.shutdown_grace.map_or(defaults.shutdown_grace, |d| d.0),
        metrics,
    })
}

/// The `[metrics]` table: an address that parses, loopback unless allowed.
fn metrics(reader: &Validator<'_>, raw: RawMetrics) -> Result<MetricsSettings, ConfigError> {
    let d = MetricsSettings::default();
    let allow_non_loopback = raw.allow_non_loopback.unwrap_or(d.allow_non_loopback);
    let listen = match raw.listen {
        None => d.listen,
        Some(text) => {
            let span = text.span();
            let Ok(listen) = text.get_ref().parse::<std::net::SocketAddr>() else {
                return reader.error(
                    span,
                    format!(
                        "`metrics.listen` \"{}\" is not an address and port; write e.g. \"127.0.0.1:9846\" or \"[::1]:9846\"",
                        text.get_ref()
                    ),
                );
            };
            if !listen.ip().is_loopback() && !allow_non_loopback {
                return reader.error(
                    span,
                    format!(
                        "`metrics.listen` \"{listen}\" is not a loopback address: the metrics name every peer and have no authentication; listen on 127.0.0.1 (and scrape through a proxy), or set `allow_non_loopback = true`"
                    ),
                );
            }
            listen
        }
    };
    let max_tunnel_series = raw.max_tunnel_series.unwrap_or(d.max_tunnel_series);
    Ok(MetricsSettings {
        listen,
        allow_non_loopback,
        max_tunnel_series,
    })
}

/// The tables of a `[[source]]` or `[[sink]]` list (`key`), or an error
/// for a list that is empty or not of tables.
fn tables<'t>(
    reader: &Validator<'_>,
    list: Spanned<DeValue<'t>>,
    key: &str,
    errors: &mut Errors,
) -> Vec<Spanned<DeTable<'t>>> {
    let span = list.span();
    let DeValue::Array(values) = list.into_inner() else {
        errors.0.push(reader.invalid(
            span,
            format!("`{key}` must be a list of tables; write [[{key}]]"),
        ));
        return Vec::new();
    };
    if values.is_empty() {
        errors
            .0
            .push(reader.invalid(span, format!("at least one [[{key}]] is needed")));
    }
    let mut tables = Vec::new();
    for value in values {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => tables.push(Spanned::new(span, table)),
            _ => errors.0.push(reader.invalid(
                span,
                format!("`{key}` must be a list of tables; write [[{key}]]"),
            )),
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_config::MIB;

    #[test]
    fn batches_are_bounded_by_bytes_except_for_http_requests() {
        let text = "[[sink]]\ntype = \"file\"\npath = \"/tmp/e.ndjson\"\n\n\
                    [[sink]]\ntype = \"http\"\nurl = \"https://logs.example.net/\"\n\n\
                    [[sink]]\ntype = \"http\"\nname = \"bulk\"\nurl = \"https://es.example.net/\"\n\
                    [sink.spool]\nbatch_max_events = 4000\n";
        let config = from_toml_str(text, Path::new("t.toml")).unwrap();
        let events: Vec<usize> = config
            .sinks
            .iter()
            .map(|s| s.spool().batch_max_events)
            .collect();
        assert_eq!(events, [10_000, HTTP_BATCH_MAX_EVENTS, 4000]);
        assert!(
            config
                .sinks
                .iter()
                .all(|s| s.spool().batch_max_bytes == MIB)
        );
    }

    #[test]
    fn log_levels_are_levels_or_target_directives() {
        assert!(check_log_level("info").is_ok());
        assert!(check_log_level("WARN").is_ok());
        assert!(check_log_level("info,swantrail::sink=debug").is_ok());
        assert!(check_log_level("verbose").is_err());
    }
}
