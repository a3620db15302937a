//! The TOML configuration: what the daemon reads, its defaults, and its validation.
//!
//! An operator edits one file (`config/swantrail.toml` documents every key), so
//! every mistake must come back as one line that names the file, the line, the
//! key and what to write instead. Unknown keys are errors: a typo'd key that is
//! silently ignored is a setting the operator believes in and does not have.
//! This module only reads and checks values; it must never open sockets, spool
//! files or start anything.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use crate::sink::file::FileSinkConfig;
pub use crate::sink::http::HttpSinkConfig;
pub use crate::sink::stdout::StdoutSinkConfig;
pub use crate::sink::syslog::SyslogSinkConfig;

/// How one sink type reads its own keys into a [`SinkConfig`].
type ReadSink =
    fn(&Validator<'_>, SinkHeader, Spanned<DeTable<'_>>) -> Result<SinkConfig, ConfigError>;

/// Every sink type, the keys of its own (beyond the shared `type`, `name`,
/// `spool` and `retry`, so that a key of another type is reported as not
/// applying rather than as unknown) and how it reads them.
const SINK_TYPES: &[(&str, &[&str], ReadSink)] = &[
    ("file", crate::sink::file::CONFIG_KEYS, |v, h, own| {
        FileSinkConfig::read(v, h, own).map(SinkConfig::File)
    }),
    ("stdout", crate::sink::stdout::CONFIG_KEYS, |v, h, own| {
        StdoutSinkConfig::read(v, h, own).map(SinkConfig::Stdout)
    }),
    ("syslog", crate::sink::syslog::CONFIG_KEYS, |v, h, own| {
        SyslogSinkConfig::read(v, h, own).map(SinkConfig::Syslog)
    }),
    (
        "http",
        crate::sink::http::config::CONFIG_KEYS,
        |v, h, own| HttpSinkConfig::read(v, h, own).map(|c| SinkConfig::Http(Box::new(c))),
    ),
];

/// The keys every [[sink]] has.
const SINK_HEADER_KEYS: [&str; 4] = ["type", "name", "spool", "retry"];

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
    /// `sources`. Kept apart from `sources` because an audit source makes no
    /// snapshots of its own and has no tracker: it only adds exact times and
    /// short-lived SAs to the source of the same pluto.
    pub audit: Vec<AuditSourceConfig>,
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

/// One place snapshots come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// Run a command (by default `ipsec whack --status`) every interval.
    Command(CommandSourceConfig),
    /// Watch a file that something else rewrites with status dumps.
    File(FileSourceConfig),
}

impl SourceConfig {
    /// The name used in logs and in the checkpoint, unique among sources.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Command(c) => &c.name,
            SourceConfig::File(f) => &f.name,
        }
    }
}

/// Where an audit source reads pluto's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFrom {
    /// The kernel's audit netlink multicast group (needs `CAP_AUDIT_READ`).
    Netlink,
    /// auditd's log file, followed across rotation.
    AuditdLog(PathBuf),
    /// journald's copy (`journalctl -f -o json _TRANSPORT=audit`).
    Journal,
}

/// pluto's own audit records for one snapshot source (`[[source]] type = "audit"`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSourceConfig {
    /// Unique source name (default: `audit`), for logs and metrics.
    pub name: String,
    /// The snapshot source (command or file) watching the same pluto, whose
    /// tracker the records are fused into.
    pub pluto: String,
    /// Where the records are read.
    pub from: AuditFrom,
    /// The file where this pluto writes its pid. The kernel hands every
    /// reader the records of every pluto on the host (one per network
    /// namespace, or a test peer), all from the same program; only the pid
    /// tells this one's apart. Read again when a record comes from a pid
    /// not seen before, so a restarted pluto is followed.
    pub pid_file: PathBuf,
}

/// auditd's log where a distribution puts it.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/audit/audit.log";

/// Where pluto writes its pid (`--rundir`, default `/run/pluto`).
pub const DEFAULT_PLUTO_PID_FILE: &str = "/run/pluto/pluto.pid";

/// Polls pluto by running a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSourceConfig {
    /// Unique source name (default: `command`).
    pub name: String,
    /// The program and its arguments, run without a shell.
    pub argv: Vec<String>,
    /// Further commands run in the same poll, their output merged with
    /// `argv`'s into one snapshot (e.g. `--trafficstatus` then
    /// `--showstates` on a big gateway instead of the heavy `--status`).
    /// Added by the daemon branch for the command source.
    pub extra_argv: Vec<Vec<String>>,
    /// Time between two runs.
    pub interval: Duration,
    /// A run taking longer is killed and counted as pluto unreachable.
    pub timeout: Duration,
    /// Random extra delay up to this much, so a fleet does not poll in lockstep.
    pub jitter: Duration,
    /// A command printing more than this is stopped and its output skipped:
    /// a runaway command must not keep the daemon parsing (the output is
    /// parsed as it arrives, so this bounds time, not memory).
    pub max_bytes: u64,
}

/// Watches one status-dump file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    /// Unique source name (default: `file`).
    pub name: String,
    /// The dump to watch.
    pub path: PathBuf,
    /// The file must be unchanged this long before it is read (rewrite-in-place).
    pub settle: Duration,
    /// How often to look when inotify is unavailable (or `force_poll`).
    pub poll_interval: Duration,
    /// Poll even when inotify works (network filesystems).
    pub force_poll: bool,
    /// A dump larger than this is not read (it is not a status dump).
    pub max_bytes: u64,
    /// Warn when the dump has not changed for this many times its usual
    /// interval (its writer probably died); 0 turns the warning off.
    pub stale_after_intervals: u32,
}

/// One place events go; every sink has its own spool.
///
/// Each sink's settings live next to the sink (`src/sink/<type>.rs`): a new
/// sink adds its arm here, its row in `SINK_TYPES` and its arm in
/// `sink::build`, and documents its keys in `config/swantrail.toml`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// NDJSON appended to a file with size-based rotation.
    File(FileSinkConfig),
    /// NDJSON on standard output.
    Stdout(StdoutSinkConfig),
    /// Syslog messages to /dev/log or a remote receiver.
    Syslog(SyslogSinkConfig),
    /// Batches POSTed to a log pipeline, Elasticsearch, Splunk HEC or an OTLP collector.
    Http(Box<HttpSinkConfig>),
}

impl SinkConfig {
    /// The name of the sink: unique, and the name of its spool directory.
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::File(f) => &f.name,
            SinkConfig::Stdout(s) => &s.name,
            SinkConfig::Syslog(s) => &s.name,
            SinkConfig::Http(h) => &h.name,
        }
    }

    /// The sink's spool and batching settings.
    pub fn spool(&self) -> &SpoolSettings {
        match self {
            SinkConfig::File(f) => &f.spool,
            SinkConfig::Stdout(s) => &s.spool,
            SinkConfig::Syslog(s) => &s.spool,
            SinkConfig::Http(h) => &h.spool,
        }
    }

    /// The sink's retry settings.
    pub fn retry(&self) -> &RetrySettings {
        match self {
            SinkConfig::File(f) => &f.retry,
            SinkConfig::Stdout(s) => &s.retry,
            SinkConfig::Syslog(s) => &s.retry,
            SinkConfig::Http(h) => &h.retry,
        }
    }
}

/// A sink's on-disk spool and how it is drained in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSettings {
    /// Bound on undelivered events (bytes); disk use may exceed it by one segment.
    pub max_bytes: u64,
    /// What to do when an append would exceed `max_bytes`.
    pub full_policy: FullPolicy,
    /// The spool rolls to a new segment file past this size; delivered segments are deleted.
    pub segment_bytes: u64,
    /// A batch sent to the sink holds at most this many events...
    pub batch_max_events: usize,
    /// ...and at most this many bytes (a single larger event still goes alone)...
    pub batch_max_bytes: u64,
    /// ...and is sent at the latest this long after its first event was spooled.
    pub batch_max_wait: Duration,
}

/// What a full spool does to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Stop taking events (polling waits) until the sink delivers: nothing is lost.
    Block,
    /// Delete the oldest undelivered events to make room, with a warning and a counter.
    DropOldest,
}

/// Exponential backoff with jitter after a failed delivery, shared by all sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// The first wait after a failure.
    pub initial_backoff: Duration,
    /// The wait doubles after every failure up to this.
    pub max_backoff: Duration,
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

impl Default for CommandSourceConfig {
    fn default() -> CommandSourceConfig {
        CommandSourceConfig {
            name: "command".to_string(),
            argv: ["ipsec", "whack", "--status"].map(String::from).to_vec(),
            extra_argv: Vec::new(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            jitter: Duration::from_secs(1),
            max_bytes: crate::input::DEFAULT_MAX_BYTES,
        }
    }
}

impl FileSourceConfig {
    /// A file source on `path` with every other setting at its default.
    pub fn new(path: PathBuf) -> FileSourceConfig {
        FileSourceConfig {
            name: "file".to_string(),
            path,
            settle: Duration::from_millis(500),
            poll_interval: Duration::from_secs(2),
            force_poll: false,
            max_bytes: crate::input::DEFAULT_MAX_BYTES,
            stale_after_intervals: 5,
        }
    }
}

/// The default `batch_max_events` of an `http` sink, lower than the others'
/// (why: [`SpoolSettings::defaults_for`]).
pub const HTTP_BATCH_MAX_EVENTS: usize = 500;

/// Batches bounded by bytes, not by count: a sink pays about one fsync (or
/// one round trip) per batch whatever its size, so the default count is far
/// above what `batch_max_bytes` lets through (1 MiB is about 1,600 lab events),
/// and a batch of the usual events is as large as `batch_max_bytes` allows.
impl Default for SpoolSettings {
    fn default() -> SpoolSettings {
        SpoolSettings {
            max_bytes: 256 * MIB,
            full_policy: FullPolicy::Block,
            segment_bytes: 16 * MIB,
            batch_max_events: 10_000,
            batch_max_bytes: MIB,
            batch_max_wait: Duration::from_secs(1),
        }
    }
}

impl SpoolSettings {
    /// The defaults of a `kind` of `[[sink]]`. An `http` sink keeps 500 events
    /// per request: every mode but `ndjson` wraps each event (a `_bulk`
    /// action line, a HEC envelope, an OTLP LogRecord), so a request is
    /// larger than the batch, and receivers refuse a body past their limit
    /// with a 413 that costs a split into smaller requests (nginx's
    /// `client_max_body_size` is 1 MiB unless raised, Splunk HEC has
    /// `max_content_length`).
    pub fn defaults_for(kind: &str) -> SpoolSettings {
        let mut settings = SpoolSettings::default();
        if kind == "http" {
            settings.batch_max_events = HTTP_BATCH_MAX_EVENTS;
        }
        settings
    }
}

impl Default for RetrySettings {
    fn default() -> RetrySettings {
        RetrySettings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

const KIB: u64 = 1024;
pub(crate) const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A configuration that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error: in the message, and so not also a `source` that
        /// an error chain (`{:#}`) would print a second time.
        error: std::io::Error,
    },
    /// More than one value is wrong: every one, in file order, so that one
    /// run of `check-config` names all that needs fixing.
    #[error("{}", several(.0))]
    Several(Vec<ConfigError>),
    /// The file was read but a value is wrong; `line`/`column` are 1-based.
    #[error("{}", Located { path, line: *line, column: *column, message })]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Line of the offending key or value, when known.
        line: Option<usize>,
        /// Column of the offending key or value, when known.
        column: Option<usize>,
        /// What is wrong and, where possible, what to write instead.
        message: String,
    },
}

/// One error per line.
fn several(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Collects the errors of the independent parts of a config (each top-level
/// key, each source, each sink) so that all of them are reported at once.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    /// The value, or `default` after keeping the error.
    fn keep<T>(&mut self, result: Result<T, ConfigError>, default: T) -> T {
        match result {
            Ok(value) => value,
            Err(e) => {
                self.0.push(e);
                default
            }
        }
    }

    /// `Ok(value)` when nothing was wrong; the one error, or all of them.
    fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        self.0.sort_by_key(|e| match e {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            _ => (None, None),
        });
        match self.0.len() {
            0 => Ok(value),
            1 => Err(self.0.remove(0)),
            _ => Err(ConfigError::Several(self.0)),
        }
    }
}

struct Located<'a> {
    path: &'a Path,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
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
    // Sinks are read one by one, each by its own module (see `Validator::sink`).
    let sinks = document.get_mut().remove("sink");
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(document)).map_err(toml_error)?;
    Validator { text, origin }.config(raw, sinks)
}

/// A TOML or serde error at its position, with the table named in "unknown field".
fn toml_error(text: &str, origin: &Path, e: toml::de::Error) -> ConfigError {
    let span = e.span();
    let message = e.message().to_string();
    let message = match span.as_ref().and_then(|s| enclosing_table(text, s.start)) {
        Some(table) if message.starts_with("unknown field") => insert_table_name(&message, &table),
        _ => message,
    };
    invalid(text, origin, span.map(|s| s.start), message)
}

/// An error about the value of `key` (`state_dir`, `metrics.listen`,
/// `sink.1.tls.ca_file` for the second [[sink]]) in config `text`, at the
/// line of that key; at the header of the nearest
/// table written out when the key is not (its default applies); at no line
/// when neither is.
///
/// For what only the machine can tell (can the state directory be written,
/// can the metrics address be bound): this module never touches either, so
/// `check-config` asks, and its answers carry positions like every other
/// mistake in the file.
pub fn error_at_key(text: &str, origin: &Path, key: &str, message: String) -> ConfigError {
    let Ok(document) = DeTable::parse(text) else {
        return invalid(text, origin, None, message);
    };
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut span = None;
    for part in key.split('.') {
        let next = match value.map(Spanned::get_ref) {
            None => document.get_ref().get(part),
            Some(DeValue::Table(table)) => table.get(part),
            Some(DeValue::Array(array)) => part.parse().ok().and_then(|i: usize| array.get(i)),
            Some(_) => None,
        };
        let Some(next) = next else {
            break;
        };
        span = Some(next.span());
        value = Some(next);
    }
    match span {
        Some(span) => Validator { text, origin }.key_invalid(span, message),
        None => invalid(text, origin, None, message),
    }
}

/// Deserialize one table (a [[sink]]'s own keys) with positions kept.
pub(crate) fn read_table<T: de::DeserializeOwned>(
    reader: &Validator<'_>,
    table: Spanned<DeTable<'_>>,
) -> Result<T, ConfigError> {
    let span = table.span();
    let value = Spanned::new(span, DeValue::Table(table.into_inner()));
    T::deserialize(toml::de::ValueDeserializer::from(value))
        .map_err(|e| toml_error(reader.text, reader.origin, e))
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

fn invalid(text: &str, origin: &Path, offset: Option<usize>, message: String) -> ConfigError {
    let (line, column) = match offset.map(|o| line_column(text, o)) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    ConfigError::Invalid {
        path: origin.to_path_buf(),
        line,
        column,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The `[table]` or `[[table]]` header in force at `offset`, for messages.
fn enclosing_table(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let header = before
        .lines()
        .rev()
        .skip(1)
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let end = header.find(']')?;
    let end = if header.starts_with("[[") {
        end + 2
    } else {
        end + 1
    };
    Some(header.get(..end)?.to_string())
}

/// "unknown field `x`, expected ..." becomes "unknown field `x` in [[sink]], expected ...".
fn insert_table_name(message: &str, table: &str) -> String {
    match message.find(", expected") {
        Some(i) => format!("{} in {table}{}", &message[..i], &message[i..]),
        None => format!("{message} in {table}"),
    }
}

/// A duration written as `"10s"`, `"500ms"`, `"2m"`, `"1h30m"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(DurationValue)
            .map_err(de::Error::custom)
    }
}

/// A duration that may be `"off"`.
#[derive(Debug, Clone, Copy)]
struct OptionalDuration(Option<Duration>);

impl<'de> Deserialize<'de> for OptionalDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(OptionalDuration(None));
        }
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(de::Error::custom(
                "a zero interval is not allowed; write \"off\" to disable",
            )),
            Ok(d) => Ok(OptionalDuration(Some(d))),
            Err(e) => Err(de::Error::custom(format!("{e}, or \"off\""))),
        }
    }
}

/// Parse `"10s"`, `"500ms"`, `"2m"`, `"1h30m"` (units ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration \"{text}\": write a number and a unit (ms, s, m, h), e.g. \"10s\", \"500ms\", \"1m30s\""
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A size written as an integer (bytes) or a string [`parse_byte_size`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes or a string like \"16MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Parse a size, the one rule for the config and `--max-bytes`: a number of
/// bytes, optionally followed by `B`, `K`/`KiB`, `M`/`MiB` or `G`/`GiB`
/// (`"65536"`, `"64KiB"`, `"64M"`, `"1 GiB"`). The units are powers of 1024;
/// `KB`, `MB` and lower case are refused, because `16MB` may mean 16 000 000.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size \"{text}\": write a number of bytes or e.g. \"512KiB\", \"64M\", \"1GiB\" (K, M and G are powers of 1024)"
        )
    };
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(bad());
    }
    let number: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = match t[digits..].trim_start() {
        "" | "B" => 1,
        "K" | "KiB" => KIB,
        "M" | "MiB" => MIB,
        "G" | "GiB" => GIB,
        _ => return Err(bad()),
    };
    number.checked_mul(unit).ok_or_else(bad)
}

// The raw file as written: every key optional so that defaults apply, every
// table `deny_unknown_fields`. Sources and sinks are flat tables (not serde's
// internally tagged enums) because those lose the position of an error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    hostname: Option<Spanned<String>>,
    shutdown_grace: Option<DurationValue>,
    tracker: Option<RawTracker>,
    log: Option<RawLog>,
    metrics: Option<RawMetrics>,
    source: Option<Spanned<Vec<RawSource>>>,
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

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    Command,
    File,
    Audit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(rename = "type")]
    kind: Spanned<SourceKind>,
    name: Option<Spanned<String>>,
    argv: Option<Spanned<Vec<String>>>,
    extra_argv: Option<Spanned<Vec<Vec<String>>>>,
    interval: Option<Spanned<DurationValue>>,
    timeout: Option<Spanned<DurationValue>>,
    jitter: Option<Spanned<DurationValue>>,
    path: Option<Spanned<PathBuf>>,
    settle: Option<Spanned<DurationValue>>,
    poll_interval: Option<Spanned<DurationValue>>,
    force_poll: Option<Spanned<bool>>,
    max_bytes: Option<Spanned<ByteSize>>,
    stale_after_intervals: Option<Spanned<u32>>,
    from: Option<Spanned<String>>,
    pluto: Option<Spanned<String>>,
    pid_file: Option<Spanned<PathBuf>>,
}

/// What one `[[source]]` table turned out to be.
enum ParsedSource {
    Snapshot(SourceConfig),
    /// An audit source, with the span of its table for errors about `pluto`.
    Audit {
        name: String,
        pluto: Option<Spanned<String>>,
        from: AuditFrom,
        pid_file: PathBuf,
        span: std::ops::Range<usize>,
    },
}

/// The keys every [[sink]] shares; the rest belong to its type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSinkHeader {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    name: Option<Spanned<String>>,
    spool: Option<RawSpool>,
    retry: Option<RawRetry>,
}

/// The shared settings of one [[sink]], read before its own keys.
pub(crate) struct SinkHeader {
    /// The unique name (default: the type).
    pub(crate) name: String,
    /// Spool and batching.
    pub(crate) spool: SpoolSettings,
    /// Retry on failure.
    pub(crate) retry: RetrySettings,
    /// Where the table's `type` is, for errors about the table as a whole.
    pub(crate) span: std::ops::Range<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_bytes: Option<Spanned<ByteSize>>,
    full_policy: Option<FullPolicy>,
    segment_bytes: Option<Spanned<ByteSize>>,
    batch_max_events: Option<Spanned<usize>>,
    batch_max_bytes: Option<Spanned<ByteSize>>,
    batch_max_wait: Option<DurationValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    initial_backoff: Option<Spanned<DurationValue>>,
    max_backoff: Option<Spanned<DurationValue>>,
}

/// Turns raw values into a `Config`, reporting problems at their position.
pub(crate) struct Validator<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Validator<'_> {
    /// An error at `span` of the text.
    pub(crate) fn error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(self.invalid(span, message))
    }

    /// The error of [`Validator::error`] itself, for collecting.
    fn invalid(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        invalid(self.text, self.origin, Some(span.start), message)
    }

    /// Position of the key whose value is at `span`: the start of its line.
    pub(crate) fn key_error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(self.key_invalid(span, message))
    }

    /// The error of [`Validator::key_error`] itself.
    fn key_invalid(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        let line_start = self
            .text
            .get(..span.start)
            .and_then(|b| b.rfind('\n'))
            .map_or(0, |i| i + 1);
        let indent = self
            .text
            .get(line_start..)
            .map_or(0, |l| l.len() - l.trim_start().len());
        self.invalid(line_start + indent..span.end, message)
    }

    fn config(
        &self,
        raw: RawConfig,
        sinks: Option<Spanned<DeValue<'_>>>,
    ) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let mut errors = Errors::default();
        let hostname = match raw.hostname {
            Some(h) if h.get_ref().trim().is_empty() => errors.keep(
                self.error(
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
                        self.positive(d, "tracker.stalled_after"),
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
                            self.error(
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
            .and_then(|m| errors.keep(self.metrics(m).map(Some), None));
        let sources = match raw.source {
            None => defaults
                .sources
                .into_iter()
                .map(ParsedSource::Snapshot)
                .collect(),
            Some(list) if list.get_ref().is_empty() => errors.keep(
                self.error(list.span(), "at least one [[source]] is needed".into()),
                Vec::new(),
            ),
            Some(list) => {
                let mut sources = Vec::new();
                let mut names = Vec::new();
                for raw in list.into_inner() {
                    if let Some(source) = errors.keep(self.source(raw, &mut names).map(Some), None)
                    {
                        sources.push(source);
                    }
                }
                sources
            }
        };
        let (sources, audit) = self.audit_sources(sources, &mut errors);
        let sinks = match sinks {
            None => defaults.sinks,
            Some(list) => {
                let span = list.span();
                let mut sinks = Vec::new();
                match list.into_inner() {
                    DeValue::Array(tables) if tables.is_empty() => errors
                        .0
                        .push(self.invalid(span, "at least one [[sink]] is needed".into())),
                    DeValue::Array(tables) => {
                        let mut names = Vec::new();
                        for table in tables {
                            let span = table.span();
                            let DeValue::Table(table) = table.into_inner() else {
                                errors.0.push(self.invalid(
                                    span,
                                    "`sink` must be a list of tables; write [[sink]]".into(),
                                ));
                                continue;
                            };
                            let sink = self.sink(Spanned::new(span, table), &mut names);
                            if let Some(sink) = errors.keep(sink.map(Some), None) {
                                sinks.push(sink);
                            }
                        }
                    }
                    _ => errors.0.push(self.invalid(
                        span,
                        "`sink` must be a list of tables; write [[sink]]".into(),
                    )),
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
            sinks,
            log,
            shutdown_grace: raw.shutdown_grace.map_or(defaults.shutdown_grace, |d| d.0),
            metrics,
        })
    }

    /// The `[metrics]` table: an address that parses, loopback unless allowed.
    fn metrics(&self, raw: RawMetrics) -> Result<MetricsSettings, ConfigError> {
        let d = MetricsSettings::default();
        let allow_non_loopback = raw.allow_non_loopback.unwrap_or(d.allow_non_loopback);
        let listen = match raw.listen {
            None => d.listen,
            Some(text) => {
                let span = text.span();
                let Ok(listen) = text.get_ref().parse::<std::net::SocketAddr>() else {
                    return self.error(
                        span,
                        format!(
                            "`metrics.listen` \"{}\" is not an address and port; write e.g. \"127.0.0.1:9846\" or \"[::1]:9846\"",
                            text.get_ref()
                        ),
                    );
                };
                if !listen.ip().is_loopback() && !allow_non_loopback {
                    return self.error(
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

    /// A duration that must not be zero.
    pub(crate) fn positive(
        &self,
        value: Spanned<DurationValue>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let span = value.span();
        let duration = value.into_inner().0;
        if duration.is_zero() {
            return self.error(span, format!("`{key}` must be longer than 0s"));
        }
        Ok(duration)
    }

    fn name(
        &self,
        name: Option<Spanned<String>>,
        default: &str,
        table: &str,
        table_span: std::ops::Range<usize>,
        seen: &mut Vec<String>,
    ) -> Result<String, ConfigError> {
        let (name, span) = match name {
            Some(n) => {
                let span = n.span();
                (n.into_inner(), span)
            }
            None => (default.to_string(), table_span),
        };
        let valid = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return self.error(
                span,
                format!(
                    "invalid {table} name \"{name}\": use 1 to 64 letters, digits, '-', '_' or '.' (it names a directory)"
                ),
            );
        }
        if seen.contains(&name) {
            return self.error(
                span,
                format!(
                    "two {table} entries are named \"{name}\"; give each a distinct `name` (the default is its type)"
                ),
            );
        }
        seen.push(name.clone());
        Ok(name)
    }

    fn not_for<T>(
        &self,
        key: &str,
        value: &Option<Spanned<T>>,
        what: &str,
    ) -> Result<(), ConfigError> {
        match value {
            Some(v) => self.key_error(v.span(), format!("key `{key}` does not apply to {what}")),
            None => Ok(()),
        }
    }

    fn source(&self, raw: RawSource, names: &mut Vec<String>) -> Result<ParsedSource, ConfigError> {
        let table_span = raw.kind.span();
        if *raw.kind.get_ref() != SourceKind::Audit {
            self.not_for("from", &raw.from, "a snapshot [[source]]")?;
            self.not_for("pluto", &raw.pluto, "a snapshot [[source]]")?;
            self.not_for("pid_file", &raw.pid_file, "a snapshot [[source]]")?;
        }
        match *raw.kind.get_ref() {
            SourceKind::Audit => self.audit_source(raw, names),
            SourceKind::Command => {
                let what = "a `command` [[source]]";
                self.not_for("path", &raw.path, what)?;
                self.not_for("settle", &raw.settle, what)?;
                self.not_for("poll_interval", &raw.poll_interval, what)?;
                self.not_for("force_poll", &raw.force_poll, what)?;
                self.not_for("stale_after_intervals", &raw.stale_after_intervals, what)?;
                let d = CommandSourceConfig::default();
                let argv = match raw.argv {
                    Some(a) if a.get_ref().is_empty() || a.get_ref()[0].is_empty() => {
                        return self.error(
                            a.span(),
                            "`argv` needs at least the program, e.g. [\"ipsec\", \"whack\", \"--status\"]".into(),
                        );
                    }
                    Some(a) => a.into_inner(),
                    None => d.argv,
                };
                let extra_argv = match raw.extra_argv {
                    Some(a) if a.get_ref().iter().any(|c| c.is_empty() || c[0].is_empty()) => {
                        return self.error(
                            a.span(),
                            "every command in `extra_argv` needs at least the program, e.g. [[\"ipsec\", \"whack\", \"--showstates\"]]".into(),
                        );
                    }
                    Some(a) => a.into_inner(),
                    None => d.extra_argv,
                };
                Ok(ParsedSource::Snapshot(SourceConfig::Command(
                    CommandSourceConfig {
                        name: self.name(raw.name, "command", "[[source]]", table_span, names)?,
                        argv,
                        extra_argv,
                        interval: match raw.interval {
                            Some(v) => self.positive(v, "interval")?,
                            None => d.interval,
                        },
                        timeout: match raw.timeout {
                            Some(v) => self.positive(v, "timeout")?,
                            None => d.timeout,
                        },
                        jitter: raw.jitter.map_or(d.jitter, |v| v.into_inner().0),
                        max_bytes: raw.max_bytes.map_or(d.max_bytes, |v| v.into_inner().0),
                    },
                )))
            }
            SourceKind::File => {
                let what = "a `file` [[source]]";
                self.not_for("argv", &raw.argv, what)?;
                self.not_for("extra_argv", &raw.extra_argv, what)?;
                self.not_for("interval", &raw.interval, what)?;
                self.not_for("timeout", &raw.timeout, what)?;
                self.not_for("jitter", &raw.jitter, what)?;
                let Some(path) = raw.path else {
                    return self.error(
                        table_span,
                        "a `file` [[source]] needs `path`, the status dump to watch".into(),
                    );
                };
                let d = FileSourceConfig::new(path.into_inner());
                Ok(ParsedSource::Snapshot(SourceConfig::File(
                    FileSourceConfig {
                        name: self.name(raw.name, "file", "[[source]]", table_span, names)?,
                        settle: raw.settle.map_or(d.settle, |v| v.into_inner().0),
                        poll_interval: match raw.poll_interval {
                            Some(v) => self.positive(v, "poll_interval")?,
                            None => d.poll_interval,
                        },
                        force_poll: raw.force_poll.map_or(d.force_poll, Spanned::into_inner),
                        max_bytes: raw.max_bytes.map_or(d.max_bytes, |v| v.into_inner().0),
                        stale_after_intervals: raw
                            .stale_after_intervals
                            .map_or(d.stale_after_intervals, Spanned::into_inner),
                        path: d.path,
                    },
                )))
            }
        }
    }

    /// One `[[source]] type = "audit"`: where its records come from; which
    /// snapshot source it belongs to is settled once every source is read.
    fn audit_source(
        &self,
        raw: RawSource,
        names: &mut Vec<String>,
    ) -> Result<ParsedSource, ConfigError> {
        let span = raw.kind.span();
        let what = "an `audit` [[source]]";
        self.not_for("argv", &raw.argv, what)?;
        self.not_for("extra_argv", &raw.extra_argv, what)?;
        self.not_for("interval", &raw.interval, what)?;
        self.not_for("timeout", &raw.timeout, what)?;
        self.not_for("jitter", &raw.jitter, what)?;
        self.not_for("settle", &raw.settle, what)?;
        self.not_for("poll_interval", &raw.poll_interval, what)?;
        self.not_for("force_poll", &raw.force_poll, what)?;
        self.not_for("max_bytes", &raw.max_bytes, what)?;
        self.not_for("stale_after_intervals", &raw.stale_after_intervals, what)?;
        let from = match raw.from.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
            None | Some(("netlink", _)) => {
                self.not_for("path", &raw.path, "an audit source reading netlink")?;
                AuditFrom::Netlink
            }
            Some(("journal", _)) => {
                self.not_for("path", &raw.path, "an audit source reading the journal")?;
                AuditFrom::Journal
            }
            Some(("auditd-log", _)) => AuditFrom::AuditdLog(
                raw.path
                    .map_or_else(|| PathBuf::from(DEFAULT_AUDIT_LOG), Spanned::into_inner),
            ),
            Some((other, span)) => {
                return self.error(
                    span,
                    format!(
                        "unknown `from` {other:?}: an audit source reads \"netlink\", \"auditd-log\" or \"journal\""
                    ),
                );
            }
        };
        Ok(ParsedSource::Audit {
            name: self.name(raw.name, "audit", "[[source]]", span.clone(), names)?,
            pluto: raw.pluto,
            from,
            pid_file: raw.pid_file.map_or_else(
                || PathBuf::from(DEFAULT_PLUTO_PID_FILE),
                Spanned::into_inner,
            ),
            span,
        })
    }

    /// Ties every audit source to its snapshot source: the one `pluto`
    /// names, or the only one there is. Two audit sources for one pluto
    /// would feed it every record twice.
    fn audit_sources(
        &self,
        parsed: Vec<ParsedSource>,
        errors: &mut Errors,
    ) -> (Vec<SourceConfig>, Vec<AuditSourceConfig>) {
        let mut sources = Vec::new();
        let mut pending = Vec::new();
        for p in parsed {
            match p {
                ParsedSource::Snapshot(s) => sources.push(s),
                ParsedSource::Audit {
                    name,
                    pluto,
                    from,
                    pid_file,
                    span,
                } => pending.push((name, pluto, from, pid_file, span)),
            }
        }
        if !pending.is_empty() && sources.is_empty() {
            sources.push(SourceConfig::Command(CommandSourceConfig::default()));
        }
        let mut audit: Vec<AuditSourceConfig> = Vec::new();
        for (name, pluto, from, pid_file, span) in pending {
            let target = match pluto {
                Some(p) => {
                    let known = sources.iter().any(|s| s.name() == p.get_ref());
                    if !known {
                        let names: Vec<&str> = sources.iter().map(SourceConfig::name).collect();
                        errors.0.push(self.invalid(
                            p.span(),
                            format!(
                                "`pluto` names no command or file [[source]]: {:?} is not one of {}",
                                p.get_ref(),
                                names.join(", ")
                            ),
                        ));
                        continue;
                    }
                    p.into_inner()
                }
                None if sources.len() == 1 => sources[0].name().to_string(),
                None => {
                    errors.0.push(self.invalid(
                        span,
                        "an `audit` [[source]] next to several snapshot sources needs `pluto`, the name of the one watching the same pluto".into(),
                    ));
                    continue;
                }
            };
            if audit.iter().any(|a| a.pluto == target) {
                errors.0.push(self.invalid(
                    span,
                    format!("two audit sources feed the source {target:?}; one per pluto is enough (each would repeat every record)"),
                ));
                continue;
            }
            audit.push(AuditSourceConfig {
                name,
                pluto: target,
                from,
                pid_file,
            });
        }
        (sources, audit)
    }

    /// One [[sink]]: the shared header here, its own keys by its module.
    fn sink(
        &self,
        table: Spanned<DeTable<'_>>,
        names: &mut Vec<String>,
    ) -> Result<SinkConfig, ConfigError> {
        let span = table.span();
        let (mut header, mut own) = (DeTable::new(), DeTable::new());
        for (key, value) in table.into_inner() {
            if SINK_HEADER_KEYS.contains(&key.get_ref().as_ref()) {
                header.insert(key, value);
            } else {
                own.insert(key, value);
            }
        }
        let raw: RawSinkHeader = read_table(self, Spanned::new(span.clone(), header))?;
        let kind_span = raw.kind.span();
        let kind = raw.kind.into_inner();
        let Some((_, own_keys, read)) = SINK_TYPES.iter().find(|(t, _, _)| *t == kind) else {
            let known: Vec<String> = SINK_TYPES
                .iter()
                .map(|(t, _, _)| format!("`{t}`"))
                .collect();
            return self.error(
                kind_span,
                format!(
                    "unknown variant `{kind}`, expected one of {}",
                    known.join(", ")
                ),
            );
        };
        for (key, _) in own.iter() {
            let name = key.get_ref().as_ref();
            if own_keys.contains(&name) {
                continue;
            }
            if SINK_TYPES.iter().any(|(_, keys, _)| keys.contains(&name)) {
                return self.key_error(
                    key.span(),
                    format!("key `{name}` does not apply to a `{kind}` [[sink]]"),
                );
            }
            let expected: Vec<String> = SINK_HEADER_KEYS
                .iter()
                .chain(own_keys.iter())
                .map(|k| format!("`{k}`"))
                .collect();
            return self.error(
                key.span(),
                format!(
                    "unknown field `{name}` in [[sink]], expected one of {}",
                    expected.join(", ")
                ),
            );
        }
        let header = SinkHeader {
            name: self.name(raw.name, &kind, "[[sink]]", kind_span.clone(), names)?,
            spool: self.spool(raw.spool, &kind)?,
            retry: self.retry(raw.retry)?,
            span: kind_span,
        };
        read(self, header, Spanned::new(span, own))
    }

    fn spool(&self, raw: Option<RawSpool>, kind: &str) -> Result<SpoolSettings, ConfigError> {
        let d = SpoolSettings::defaults_for(kind);
        let Some(raw) = raw else { return Ok(d) };
        let nonzero = |v: Option<Spanned<ByteSize>>, key: &str, default: u64| match v {
            Some(v) if v.get_ref().0 == 0 => {
                self.error(v.span(), format!("`spool.{key}` must be larger than 0"))
            }
            Some(v) => Ok(v.into_inner().0),
            None => Ok(default),
        };
        let max_span = raw.max_bytes.as_ref().map(Spanned::span);
        let max_bytes = nonzero(raw.max_bytes, "max_bytes", d.max_bytes)?;
        let segment_bytes = nonzero(raw.segment_bytes, "segment_bytes", d.segment_bytes)?;
        let batch_max_bytes = nonzero(raw.batch_max_bytes, "batch_max_bytes", d.batch_max_bytes)?;
        if segment_bytes > max_bytes {
            let span = max_span.unwrap_or(0..0);
            return self.error(
                span,
                format!(
                    "`spool.max_bytes` ({max_bytes}) is smaller than `spool.segment_bytes` ({segment_bytes}); raise it or lower `segment_bytes`"
                ),
            );
        }
        let batch_max_events = match raw.batch_max_events {
            Some(v) if *v.get_ref() == 0 => {
                return self.error(
                    v.span(),
                    "`spool.batch_max_events` must be at least 1".into(),
                );
            }
            Some(v) => v.into_inner(),
            None => d.batch_max_events,
        };
        Ok(SpoolSettings {
            max_bytes,
            full_policy: raw.full_policy.unwrap_or(d.full_policy),
            segment_bytes,
            batch_max_events,
            batch_max_bytes,
            batch_max_wait: raw.batch_max_wait.map_or(d.batch_max_wait, |v| v.0),
        })
    }

    fn retry(&self, raw: Option<RawRetry>) -> Result<RetrySettings, ConfigError> {
        let d = RetrySettings::default();
        let Some(raw) = raw else { return Ok(d) };
        let initial_backoff = match raw.initial_backoff {
            Some(v) => self.positive(v, "retry.initial_backoff")?,
            None => d.initial_backoff,
        };
        let max_backoff = match raw.max_backoff {
            Some(v) => {
                let span = v.span();
                let max = v.into_inner().0;
                if max < initial_backoff {
                    return self.error(
                        span,
                        "`retry.max_backoff` is shorter than `retry.initial_backoff`".into(),
                    );
                }
                max
            }
            None => d.max_backoff.max(initial_backoff),
        };
        Ok(RetrySettings {
            initial_backoff,
            max_backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn durations_accept_units_and_sequences() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "10", "s", "10 s", "1.5s", "10sec", "-1s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.starts_with(&format!("invalid duration \"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn sizes_accept_bytes_and_binary_units() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_byte_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("64M"), Ok(64 << 20));
        for bad in ["", "MiB", "16MB", "16 mib", "1.5GiB"] {
            assert!(parse_byte_size(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn log_levels_are_levels_or_target_directives() {
        assert!(check_log_level("info").is_ok());
        assert!(check_log_level("WARN").is_ok());
        assert!(check_log_level("info,swantrail::sink=debug").is_ok());
        assert!(check_log_level("verbose").is_err());
    }
}
