//! The settings every sink has, whatever its kind: its spool (how much it
//! may hold, what a full one does, how batches are cut) and its retry
//! backoff, as types and as the `[sink.spool]` and `[sink.retry]` tables.
//!
//! They belong to the delivery layer that uses them (the spool and the
//! drain), not to the config file that lists the sinks; the registry reads
//! them once, as part of every sink's common header. This module must
//! never know about a kind of sink.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::toml_config::{ByteSize, ConfigError, DurationValue, MIB, Validator};

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

/// What a sink's payload says of each event: the spool always keeps the
/// canonical ECS line, and a sink encodes it as it builds its payload, so a
/// spooled backlog is delivered in whatever encoding the sink has now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The event line as spooled: Elastic Common Schema fields (`docs/events.md`).
    #[default]
    Ecs,
    /// OCSF 1.8 Tunnel Activity, class 4014 (`docs/events.md`, the mapping table).
    Ocsf,
}

impl Encoding {
    /// The encoding as the config and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Ecs => "ecs",
            Encoding::Ocsf => "ocsf",
        }
    }
}

/// Exponential backoff with jitter after a failed delivery, shared by all sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// The first wait after a failure.
    pub initial_backoff: Duration,
    /// The wait doubles after every failure up to this.
    pub max_backoff: Duration,
}

/// The default `batch_max_events` of an `http` sink, lower than the others'
/// (why: `HttpSinkConfig`'s `SinkKind::default_spool`).
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

impl Default for RetrySettings {
    fn default() -> RetrySettings {
        RetrySettings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The `[sink.spool]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpool {
    max_bytes: Option<Spanned<ByteSize>>,
    full_policy: Option<FullPolicy>,
    segment_bytes: Option<Spanned<ByteSize>>,
    batch_max_events: Option<Spanned<usize>>,
    batch_max_bytes: Option<Spanned<ByteSize>>,
    batch_max_wait: Option<DurationValue>,
}

/// The `[sink.retry]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    initial_backoff: Option<Spanned<DurationValue>>,
    max_backoff: Option<Spanned<DurationValue>>,
}

impl SpoolSettings {
    /// The `[sink.spool]` table over `defaults`, the sink kind's own.
    pub(crate) fn read(
        reader: &Validator<'_>,
        raw: Option<RawSpool>,
        defaults: SpoolSettings,
    ) -> Result<SpoolSettings, ConfigError> {
        let d = defaults;
        let Some(raw) = raw else { return Ok(d) };
        let nonzero = |v: Option<Spanned<ByteSize>>, key: &str, default: u64| match v {
            Some(v) if v.get_ref().0 == 0 => {
                reader.error(v.span(), format!("`spool.{key}` must be larger than 0"))
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
            return reader.error(
                span,
                format!(
                    "`spool.max_bytes` ({max_bytes}) is smaller than `spool.segment_bytes` ({segment_bytes}); raise it or lower `segment_bytes`"
                ),
            );
        }
        let batch_max_events = match raw.batch_max_events {
            Some(v) if *v.get_ref() == 0 => {
                return reader.error(
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
}

impl RetrySettings {
    /// The `[sink.retry]` table over the defaults.
    pub(crate) fn read(
        reader: &Validator<'_>,
        raw: Option<RawRetry>,
    ) -> Result<RetrySettings, ConfigError> {
        let d = RetrySettings::default();
        let Some(raw) = raw else { return Ok(d) };
        let initial_backoff = match raw.initial_backoff {
            Some(v) => reader.positive(v, "retry.initial_backoff")?,
            None => d.initial_backoff,
        };
        let max_backoff = match raw.max_backoff {
            Some(v) => {
                let span = v.span();
                let max = v.into_inner().0;
                if max < initial_backoff {
                    return reader.error(
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
