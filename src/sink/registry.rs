//! The registry of sink kinds: the one list of every kind of `[[sink]]`,
//! and the one place that reads a `[[sink]]` table and builds its sink.
//!
//! A kind (file, stdout, syslog, http) owns its `type` name, its own keys,
//! their reader and its constructor, in its own file, by implementing
//! [`SinkKind`]; the list at the end of this file names each kind once and
//! makes of it a variant of [`SinkConfig`], a row the `[[sink]]` reader
//! looks `type` up in, and an arm of [`build`]. The keys every sink has,
//! `name`, `spool`, `retry` and `encoding`, are its common header: read
//! here, once, before the kind's own reader runs; [`build`] wraps the sink
//! in the encoder of its `encoding` (`encoding.rs`), so no kind encodes. This module must never read a key
//! of a kind itself, nor open or start anything but through [`build`].

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::encoding::Encode;
use super::settings::{Encoding, RawRetry, RawSpool, RetrySettings, SpoolSettings};
use super::{Sink, SinkError, file, http, kafka, stdout, syslog};
use crate::toml_config::{
    ConfigError, Validator, read_table, split_table, unknown_key, unknown_type,
};

/// One kind of sink, as its own file describes it to the registry.
///
/// Shaped after Vector's sink configs: the kind says what it is called,
/// which keys are its own and how to read them, and how to make the sink;
/// spools, batches and retries are the shared drain's.
pub(crate) trait SinkKind: Sized {
    /// The `type` of its `[[sink]]` tables.
    const TYPE_NAME: &'static str;
    /// Its keys beyond the common header, so that a key of another kind is
    /// reported as not applying to this one rather than as unknown.
    const CONFIG_KEYS: &'static [&'static str];

    /// The spool settings of a table that writes none: the common default
    /// unless the kind's destination wants other batches.
    fn default_spool() -> SpoolSettings {
        SpoolSettings::default()
    }

    /// The kind's settings from the common `header` and its `own` keys
    /// (those of `CONFIG_KEYS` that the table has).
    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<Self, ConfigError>;

    /// The common header again: name, spool and retry settings.
    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings);

    /// The common header's `encoding`.
    fn encoding(&self) -> Encoding;

    /// Why these settings cannot send events in `encoding`, if they cannot:
    /// a payload that is an envelope of its own (an Elasticsearch bulk
    /// action, a CEF line) rather than the event as it is.
    fn refuses(&self, encoding: Encoding) -> Option<String> {
        let _ = encoding;
        None
    }

    /// Make the sink these settings describe and hand it to `with`.
    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError>;
}

/// A boxed kind is the kind: a large config is boxed in [`SinkConfig`].
impl<K: SinkKind> SinkKind for Box<K> {
    const TYPE_NAME: &'static str = K::TYPE_NAME;
    const CONFIG_KEYS: &'static [&'static str] = K::CONFIG_KEYS;

    fn default_spool() -> SpoolSettings {
        K::default_spool()
    }

    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<Self, ConfigError> {
        K::read(reader, header, own).map(Box::new)
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (**self).common()
    }

    fn encoding(&self) -> Encoding {
        (**self).encoding()
    }

    fn refuses(&self, encoding: Encoding) -> Option<String> {
        (**self).refuses(encoding)
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        (**self).build(with)
    }
}

/// Something to do with one configured sink, whatever its kind: [`build`]
/// makes the sink and hands it over with its own type, so that the daemon's
/// drain and `redeliver` share the one place that knows the kinds.
pub trait WithSink {
    /// What doing it gives.
    type Output;
    /// Do it with `sink`, named `name`, with its spool and retry settings.
    fn with<S: Sink>(
        self,
        name: &str,
        spool: &SpoolSettings,
        retry: &RetrySettings,
        sink: S,
    ) -> Self::Output;
}

/// The common header of every `[[sink]]`, read before its own keys.
pub(crate) struct SinkHeader {
    /// The unique name (default: the type).
    pub(crate) name: String,
    /// Spool and batching.
    pub(crate) spool: SpoolSettings,
    /// Retry on failure.
    pub(crate) retry: RetrySettings,
    /// What the payload says of each event.
    pub(crate) encoding: Encoding,
    /// Where the table's `type` is, for errors about the table as a whole.
    pub(crate) span: std::ops::Range<usize>,
}

/// The keys of the common header.
const HEADER_KEYS: &[&str] = &["type", "name", "spool", "retry", "encoding"];

/// The common header as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSinkHeader {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    name: Option<Spanned<String>>,
    spool: Option<RawSpool>,
    retry: Option<RawRetry>,
    encoding: Option<Spanned<Encoding>>,
}

/// How one kind reads its own keys into a [`SinkConfig`].
type ReadSink =
    fn(&Validator<'_>, SinkHeader, Spanned<DeTable<'_>>) -> Result<SinkConfig, ConfigError>;

/// One row of the registry: a [`SinkKind`] without its type.
struct Kind {
    type_name: &'static str,
    config_keys: &'static [&'static str],
    default_spool: fn() -> SpoolSettings,
    read: ReadSink,
}

/// One `[[sink]]` table: the common header here, the kind's own keys by
/// its reader; `names` are those of the sinks read before it.
pub(crate) fn read(
    reader: &Validator<'_>,
    table: Spanned<DeTable<'_>>,
    names: &mut Vec<String>,
) -> Result<SinkConfig, ConfigError> {
    let (header, own) = split_table(table, HEADER_KEYS);
    let raw: RawSinkHeader = read_table(reader, header)?;
    let kind_span = raw.kind.span();
    let kind = raw.kind.into_inner();
    let Some(found) = KINDS.iter().find(|k| k.type_name == kind) else {
        return unknown_type(reader, &kind, kind_span, KINDS.iter().map(|k| k.type_name));
    };
    for (key, _) in own.get_ref().iter() {
        let name = key.get_ref().as_ref();
        if found.config_keys.contains(&name) {
            continue;
        }
        if KINDS.iter().any(|k| k.config_keys.contains(&name)) {
            return reader.key_error(
                key.span(),
                format!("key `{name}` does not apply to a `{kind}` [[sink]]"),
            );
        }
        return unknown_key(
            reader,
            name,
            key.span(),
            "[[sink]]",
            HEADER_KEYS,
            found.config_keys,
        );
    }
    let header = SinkHeader {
        name: reader.name(raw.name, &kind, "[[sink]]", kind_span.clone(), names)?,
        spool: SpoolSettings::read(reader, raw.spool, (found.default_spool)())?,
        retry: RetrySettings::read(reader, raw.retry)?,
        encoding: raw
            .encoding
            .as_ref()
            .map_or_else(Encoding::default, |e| *e.get_ref()),
        span: kind_span,
    };
    let config = (found.read)(reader, header, own)?;
    if let Some(encoding) = raw.encoding
        && let Some(why) = config.refuses(*encoding.get_ref())
    {
        return reader.key_error(encoding.span(), why);
    }
    Ok(config)
}

impl SinkConfig {
    /// The name of the sink: unique, and the name of its spool directory.
    pub fn name(&self) -> &str {
        self.common().0
    }

    /// The sink's spool and batching settings.
    pub fn spool(&self) -> &SpoolSettings {
        self.common().1
    }

    /// The sink's retry settings.
    pub fn retry(&self) -> &RetrySettings {
        self.common().2
    }
}

/// Lists the kinds once: makes [`SinkConfig`], the rows of `KINDS` and the
/// arms of [`build`] from one line per kind.
macro_rules! sink_kinds {
    ($($(#[$doc:meta])* $variant:ident($config:ty),)+) => {
        /// One place events go; every sink has its own spool. One variant
        /// per kind of sink, each kind's settings next to its sink
        /// (`src/sink/<type>.rs`).
        #[derive(Debug, Clone, PartialEq)]
        pub enum SinkConfig {
            $($(#[$doc])* $variant($config),)+
        }

        impl SinkConfig {
            fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
                match self {
                    $(SinkConfig::$variant(c) => c.common(),)+
                }
            }

            /// What the sink's payload says of each event.
            pub fn encoding(&self) -> Encoding {
                match self {
                    $(SinkConfig::$variant(c) => c.encoding(),)+
                }
            }

            fn refuses(&self, encoding: Encoding) -> Option<String> {
                match self {
                    $(SinkConfig::$variant(c) => c.refuses(encoding),)+
                }
            }
        }

        /// Every kind, in the order an unknown `type` lists them.
        const KINDS: &[Kind] = &[$(Kind {
            type_name: <$config as SinkKind>::TYPE_NAME,
            config_keys: <$config as SinkKind>::CONFIG_KEYS,
            default_spool: <$config as SinkKind>::default_spool,
            read: |reader, header, own| {
                <$config as SinkKind>::read(reader, header, own).map(SinkConfig::$variant)
            },
        },)+];

        /// Build the sink `config` describes and hand it to `with`.
        pub fn build<W: WithSink>(config: &SinkConfig, with: W) -> Result<W::Output, SinkError> {
            match config {
                $(SinkConfig::$variant(c) => c.build(Encode { with, encoding: c.encoding() }),)+
            }
        }
    };
}

// The registry: one line per kind of sink.
sink_kinds! {
    /// NDJSON appended to a file with size-based rotation.
    File(file::FileSinkConfig),
    /// NDJSON on standard output.
    Stdout(stdout::StdoutSinkConfig),
    /// Syslog messages to /dev/log or a remote receiver.
    Syslog(syslog::SyslogSinkConfig),
    /// Batches POSTed to a log pipeline, Elasticsearch, Splunk HEC or an OTLP collector.
    Http(Box<http::HttpSinkConfig>),
    /// One record per event on a Kafka topic, keyed by tunnel.
    Kafka(Box<kafka::KafkaSinkConfig>),
}
