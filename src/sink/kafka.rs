//! The Kafka sink: every event a record of a Kafka topic, for SIEM pipelines
//! that put Kafka between their shippers and their indexers.
//!
//! The client is librdkafka (through `rdkafka`), the one rsyslog's omkafka,
//! syslog-ng, Vector and Fluent Bit use, with its idempotent producer and
//! `acks = all` by default. Each event is one record: the NDJSON line as
//! the value, the tunnel key as the record key (one tunnel's events go to
//! one partition, in order), `event.id` and `event.action` as headers. Each
//! record's delivery report is that event's outcome: a broker that is down,
//! a leader that moved, a full queue or a timeout keep the event spooled for
//! the drain to retry; a record too large, an authorization failure or an
//! unknown topic send it to the dead-letter file with the broker's reason.
//! TLS takes the shared `[sink.tls]` table (`crate::sink::tls`), whose files
//! are checked at start like every sink's, and hands them to librdkafka's
//! OpenSSL; when a broker's certificate is refused, the shared rustls
//! checks say which key to fix. SASL PLAIN and SCRAM take their password
//! from a file or the environment like the HTTP sink. Records that time
//! out make the next try start with a new producer (a broker that lost its
//! state does not know the old producer id). This module must never put
//! the password in a log line, an error or a dead letter (the librdkafka
//! configuration that holds it is never printed), never call an event
//! delivered without its delivery report, and never let librdkafka's own
//! log reach the daemon's log but as the one reason of a failed send.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::http::client::{SecretError, SecretSource};
use super::http::config::read_secret;
use super::tls::{Alias, RawTls, TlsSettings};
use super::{
    Batch, Encoding, EventOutcome, RetrySettings, SendError, Sink, SinkError, SinkHeader, SinkKind,
    SpoolSettings, WithSink,
};
use crate::toml_config::{ConfigError, DurationValue, Validator, read_table};

/// The keys of a kafka [[sink]] beyond the shared ones.
const CONFIG_KEYS: &[&str] = &[
    "brokers",
    "topic",
    "compression",
    "acks",
    "idempotence",
    "message_timeout",
    "sasl_mechanism",
    "user",
    "password_file",
    "password_env",
    "tls",
];

/// Record batch compression, done by librdkafka per partition batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain records.
    None,
    /// gzip: the best ratio, the most CPU.
    Gzip,
    /// LZ4: cheap, about 4:1 on the NDJSON events.
    Lz4,
    /// Zstandard: close to gzip's ratio at a fraction of its CPU.
    Zstd,
}

impl Compression {
    /// librdkafka's name for it (`compression.type`).
    fn librdkafka(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Which acknowledgement the broker gives before a record counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    /// Every in-sync replica has the record: what the idempotent producer
    /// needs, and the default.
    All,
    /// The partition leader has it (a leader lost before its followers
    /// copied the record loses it).
    Leader,
}

/// The SASL mechanism and where its password is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The user name (not a secret).
    pub user: String,
    /// Where the password is; the configuration never holds it.
    pub password: SecretSource,
}

/// A SASL mechanism librdkafka speaks without Kerberos or OAuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// The password in the clear: only over TLS.
    Plain,
    /// Salted challenge-response with SHA-256.
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The name the config and librdkafka write (`sasl.mechanism`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A topic name, fixed or with placeholders filled from each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    parts: Vec<TopicPart>,
}

/// A piece of a [`Topic`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum TopicPart {
    Text(String),
    Hostname,
    Action,
}

/// The event fields a `topic` may name, as `{field}`.
const TOPIC_FIELDS: &str = "`{observer.hostname}` or `{event.action}`";

/// Why a `topic` cannot name Kafka topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// A `{` without its `}` or naming another field.
    #[error("only {TOPIC_FIELDS} may stand between braces")]
    Placeholder,
    /// Empty, `.` or `..`, or longer than the 249 characters Kafka takes.
    #[error("a Kafka topic name is 1 to 249 characters and not `.` or `..`")]
    Length,
    /// A character Kafka refuses in a topic name.
    #[error("'{0}' cannot be in a Kafka topic name (letters, digits, '.', '_', '-')")]
    Character(char),
}

impl Topic {
    /// A topic name as written, checked against Kafka's rules so that a
    /// typo is a config error rather than every event dead-lettered.
    pub fn parse(text: &str) -> Result<Topic, TopicError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TopicPart::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or(TopicError::Placeholder)? + open;
            parts.push(match &rest[open + 1..close] {
                "observer.hostname" => TopicPart::Hostname,
                "event.action" => TopicPart::Action,
                _ => return Err(TopicError::Placeholder),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TopicPart::Text(rest.to_string()));
        }
        for part in &parts {
            if let TopicPart::Text(t) = part
                && let Some(c) = t.chars().find(|c| !topic_char(*c))
            {
                return Err(TopicError::Character(c));
            }
        }
        let fixed = parts.iter().all(|p| matches!(p, TopicPart::Text(_)));
        if fixed && (text.is_empty() || text == "." || text == ".." || text.len() > 249) {
            return Err(TopicError::Length);
        }
        Ok(Topic { parts })
    }

    /// The topic of one event: a field it lacks, and a character Kafka
    /// refuses in it, become `_`.
    fn expand(&self, fields: &EventFields<'_>) -> String {
        let mut topic = String::new();
        for part in &self.parts {
            let value = match part {
                TopicPart::Text(t) => {
                    topic.push_str(t);
                    continue;
                }
                TopicPart::Hostname => fields.observer.hostname.as_deref(),
                TopicPart::Action => fields.event.action.as_deref(),
            };
            let value = value.filter(|v| !v.is_empty()).unwrap_or("_");
            topic.extend(value.chars().map(|c| if topic_char(c) { c } else { '_' }));
        }
        topic.truncate(249);
        topic
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                TopicPart::Text(t) => f.write_str(t)?,
                TopicPart::Hostname => f.write_str("{observer.hostname}")?,
                TopicPart::Action => f.write_str("{event.action}")?,
            }
        }
        Ok(())
    }
}

/// The characters of a legal Kafka topic name.
fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The Kafka sink's settings: `type = "kafka"` in a `[[sink]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSinkConfig {
    /// Unique sink name (default: `kafka`).
    pub name: String,
    /// The bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Where the records go.
    pub topic: Topic,
    /// Record batch compression (default none).
    pub compression: Compression,
    /// The acknowledgement a record waits for (default all).
    pub acks: Acks,
    /// The idempotent producer: no duplicate and no reordering from
    /// librdkafka's own retries (default on).
    pub idempotence: bool,
    /// How long librdkafka keeps trying one record before its delivery
    /// report says it timed out and the drain takes over (default 30s).
    pub message_timeout: Duration,
    /// SASL authentication, if any.
    pub sasl: Option<Sasl>,
    /// TLS: `Some` when the table has a `[sink.tls]` table (empty for the
    /// system's CA certificates).
    pub tls: Option<TlsSettings>,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
    /// What the payload says of each event: ECS as spooled, or OCSF.
    pub encoding: Encoding,
}

/// The kafka sink's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaSink {
    brokers: Option<Spanned<Vec<String>>>,
    topic: Option<Spanned<String>>,
    compression: Option<Spanned<Compression>>,
    acks: Option<Spanned<Acks>>,
    idempotence: Option<Spanned<bool>>,
    message_timeout: Option<Spanned<DurationValue>>,
    sasl_mechanism: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    tls: Option<Spanned<RawTls>>,
}

/// `type = "kafka"`: its own keys are read by [`KafkaSinkConfig::read`].
impl SinkKind for KafkaSinkConfig {
    const TYPE_NAME: &'static str = "kafka";
    const CONFIG_KEYS: &'static [&'static str] = CONFIG_KEYS;

    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<KafkaSinkConfig, ConfigError> {
        KafkaSinkConfig::read(reader, header, own)
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (&self.name, &self.spool, &self.retry)
    }

    fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        let sink = KafkaSink::try_new(self.clone()).map_err(|message| SinkError::Setup {
            sink: self.name.clone(),
            message,
        })?;
        Ok(with.with(&self.name, &self.spool, &self.retry, sink))
    }
}

impl KafkaSinkConfig {
    /// A kafka [[sink]] from its shared header and its own keys.
    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<KafkaSinkConfig, ConfigError> {
        let raw: RawKafkaSink = read_table(reader, own)?;
        let table = header.span.clone();
        let Some(brokers) = raw.brokers else {
            return reader.error(
                table,
                "a kafka [[sink]] needs `brokers`, e.g. [\"kafka1:9092\", \"kafka2:9092\"]".into(),
            );
        };
        let span = brokers.span();
        let brokers = brokers.into_inner();
        if brokers.is_empty() {
            return reader.key_error(
                span,
                "`brokers` lists no broker; give at least one host:port".into(),
            );
        }
        if let Some(bad) = brokers.iter().find(|b| !is_host_port(b)) {
            return reader.key_error(
                span,
                format!("`brokers`: \"{bad}\" is not host:port (e.g. \"kafka1:9092\")"),
            );
        }
        let Some(topic) = raw.topic else {
            return reader.error(table, "a kafka [[sink]] needs `topic`".into());
        };
        let topic = match Topic::parse(topic.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                return reader.key_error(
                    topic.span(),
                    format!("invalid `topic` \"{}\": {e}", topic.get_ref()),
                );
            }
        };
        let acks = raw.acks.map(|a| (a.span(), a.into_inner()));
        let idempotence = raw.idempotence.is_none_or(Spanned::into_inner);
        if let Some((span, Acks::Leader)) = &acks
            && idempotence
        {
            return reader.key_error(
                span.clone(),
                "`acks = \"leader\"` needs `idempotence = false`: the idempotent producer waits for all replicas".into(),
            );
        }
        let message_timeout = match raw.message_timeout {
            Some(v) => reader.positive(v, "message_timeout")?,
            None => Duration::from_secs(30),
        };
        let sasl = read_sasl(
            reader,
            raw.sasl_mechanism,
            raw.user,
            raw.password_file,
            raw.password_env,
            &table,
        )?;
        let tls = match raw.tls {
            None => None,
            Some(t) => {
                if let Some(name) = t.get_ref().server_name_span() {
                    return reader.key_error(
                        name,
                        "`tls.server_name` does not apply to a kafka sink: librdkafka checks each broker's certificate against the host it connects to; name the brokers as their certificates do".into(),
                    );
                }
                Some(TlsSettings::read(reader, Some(t), Alias::Refused)?)
            }
        };
        Ok(KafkaSinkConfig {
            name: header.name,
            brokers,
            topic,
            compression: raw
                .compression
                .map_or(Compression::None, Spanned::into_inner),
            acks: acks.map_or(Acks::All, |(_, a)| a),
            idempotence,
            message_timeout,
            sasl,
            tls,
            spool: header.spool,
            retry: header.retry,
            encoding: header.encoding,
        })
    }

    /// The librdkafka configuration of the producer, with the password read
    /// now. It holds the secret: never print it.
    fn client_config(&self) -> Result<ClientConfig, SecretError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", "swantrail")
            .set("compression.type", self.compression.librdkafka())
            .set("enable.idempotence", self.idempotence.to_string())
            .set(
                "acks",
                match self.acks {
                    Acks::All => "all",
                    Acks::Leader => "1",
                },
            )
            .set("message.timeout.ms", millis(self.message_timeout))
            // A whole spool batch (10,000 events by default) fits in the
            // queue, so that a full queue is a broker falling behind, not
            // the batch size.
            .set("queue.buffering.max.messages", "1000000")
            .set("linger.ms", "5")
            // Metadata refreshes and reconnects are librdkafka's; a stop
            // of a minute should find it connecting again within a second.
            .set("reconnect.backoff.max.ms", "1000")
            .set_log_level(RDKafkaLogLevel::Warning);
        let protocol = match (&self.tls, &self.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some(tls) = &self.tls {
            match &tls.ca_file {
                Some(ca) => config.set("ssl.ca.location", ca.to_string_lossy()),
                // OpenSSL is built with the crate, so its default paths are
                // not Debian's: librdkafka looks in the usual places.
                None => config.set("ssl.ca.location", "probe"),
            };
            if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
                config
                    .set("ssl.certificate.location", cert.to_string_lossy())
                    .set("ssl.key.location", key.to_string_lossy());
            }
            config
                .set(
                    "enable.ssl.certificate.verification",
                    tls.verify.to_string(),
                )
                .set(
                    "ssl.endpoint.identification.algorithm",
                    if tls.verify { "https" } else { "none" },
                );
        }
        if let Some(sasl) = &self.sasl {
            let password = sasl.password.read()?;
            config
                .set("sasl.mechanism", sasl.mechanism.name())
                .set("sasl.username", &sasl.user)
                .set("sasl.password", password.expose());
        }
        Ok(config)
    }
}

/// `host:port` with a port number.
fn is_host_port(broker: &str) -> bool {
    match broker.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(['/', ' ', ','])
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().min(i32::MAX as u128).to_string()
}

/// `sasl_mechanism`, `user` and where the password is: all or none.
fn read_sasl(
    reader: &Validator<'_>,
    mechanism: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    table: &std::ops::Range<usize>,
) -> Result<Option<Sasl>, ConfigError> {
    let Some(mechanism) = mechanism else {
        reader.not_for("user", &user, "a kafka sink without `sasl_mechanism`")?;
        reader.not_for(
            "password_file",
            &password_file,
            "a kafka sink without `sasl_mechanism`",
        )?;
        reader.not_for(
            "password_env",
            &password_env,
            "a kafka sink without `sasl_mechanism`",
        )?;
        return Ok(None);
    };
    let span = mechanism.span();
    let mechanism = match mechanism.get_ref().as_str() {
        "PLAIN" => SaslMechanism::Plain,
        "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
        "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
        other => {
            return reader.key_error(
                span,
                format!("unknown `sasl_mechanism` \"{other}\": write \"PLAIN\", \"SCRAM-SHA-256\" or \"SCRAM-SHA-512\""),
            );
        }
    };
    let Some(user) = user else {
        return reader.key_error(
            span,
            format!("`sasl_mechanism = \"{}\"` needs `user`", mechanism.name()),
        );
    };
    let why = format!("`sasl_mechanism = \"{}\"`", mechanism.name());
    let keys = ("password_file", "password_env");
    let password = read_secret(reader, password_file, password_env, keys, &why, table)?;
    Ok(password.map(|password| Sasl {
        mechanism,
        user: user.into_inner(),
        password,
    }))
}

/// What the sink reads of one event line: its id and action for the
/// headers, its gateway and tunnel for the key and the topic.
#[derive(Debug, Default, Deserialize)]
struct EventFields<'a> {
    #[serde(borrow, default)]
    event: Meta<'a>,
    #[serde(borrow, default)]
    observer: Observer<'a>,
    #[serde(borrow, default)]
    libreswan: Libreswan<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Observer<'a> {
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Libreswan<'a> {
    #[serde(borrow, default)]
    connection: Option<Connection<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Connection<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    peer: Option<Cow<'a, str>>,
}

impl EventFields<'_> {
    /// The record key: the gateway, then the tunnel (connection name and
    /// instance peer) when the event is about one, `/` between them. One
    /// tunnel's events share it, so they share a partition and its order.
    fn record_key(&self) -> String {
        let mut key = String::from(self.observer.hostname.as_deref().unwrap_or(""));
        if let Some(conn) = &self.libreswan.connection {
            if let Some(name) = &conn.name {
                let _ = write!(key, "/{name}");
            }
            if let Some(peer) = conn.peer.as_deref().filter(|p| !p.is_empty()) {
                let _ = write!(key, "/{peer}");
            }
        }
        key
    }
}

/// Where librdkafka says what goes wrong between sends (a broker that
/// cannot be reached, a TLS handshake or a SASL login that failed): kept
/// as the reason of the next delivery report that times out, instead of
/// one log line per reconnect.
#[derive(Clone, Default)]
struct Context {
    last_error: Arc<Mutex<Option<String>>>,
}

impl Context {
    /// What librdkafka last said went wrong, until a record is delivered.
    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn clear(&self) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(?level, fac, "librdkafka: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
        // "1/1 brokers are down" follows the reason they are (a refused
        // connection, a failed handshake); it must not hide it.
        let summary = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        if let Ok(mut last) = self.last_error.lock()
            && !(summary && last.is_some())
        {
            *last = Some(one_line(reason));
        }
    }
}

/// A librdkafka message on one line, without the counters it appends
/// (`(after 3ms in state CONNECT, 4 identical error(s) suppressed)`), so
/// that the same failure reads the same and the drain logs it once.
fn one_line(text: &str) -> String {
    let text = text.split(" (after ").next().unwrap_or(text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The librdkafka producer of one sink.
type Producer = FutureProducer<Context>;

/// Produces each event of a batch as one record and waits for every
/// record's delivery report.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    context: Context,
    /// Which certificate check the brokers fail, as the shared TLS checks
    /// found it when librdkafka's handshake last failed.
    tls_diagnosis: Option<String>,
    /// Records timed out: make a new producer before the next send.
    renew: bool,
    /// The producer, or why it cannot be made (a password file that cannot
    /// be read): then every send says so and the events stay spooled.
    producer: Result<Producer, String>,
}

impl KafkaSink {
    /// A sink whose producer could be made now: what the daemon starts, so
    /// that a configuration librdkafka refuses stops the start.
    pub fn try_new(config: KafkaSinkConfig) -> Result<KafkaSink, String> {
        let sink = KafkaSink::new(config);
        match &sink.producer {
            Err(e) => Err(e.clone()),
            Ok(_) => Ok(sink),
        }
    }

    /// A sink for `config`; a producer that cannot be made now is made
    /// again at each send and on SIGHUP.
    pub fn new(config: KafkaSinkConfig) -> KafkaSink {
        if let Some(tls) = &config.tls {
            tls.warn_at_start(&config.name, &config.brokers.join(","));
        }
        let context = Context::default();
        let producer = make_producer(&config, &context);
        KafkaSink {
            config,
            context,
            tls_diagnosis: None,
            renew: false,
            producer,
        }
    }

    /// The producer, made again when it is missing, when librdkafka
    /// declared it unusable (an idempotence sequence it cannot repair), or
    /// after records timed out.
    fn producer(&mut self) -> Result<Producer, String> {
        let fatal = match &self.producer {
            Ok(_) if std::mem::take(&mut self.renew) => Some(String::new()),
            Ok(p) => p.client().fatal_error().map(|(_, reason)| reason),
            Err(_) => Some(String::new()),
        };
        if let Some(reason) = fatal {
            if !reason.is_empty() {
                tracing::warn!(sink = %self.config.name, "sink `{}`: librdkafka's producer failed for good ({}); making a new one", self.config.name, one_line(&reason));
            }
            self.producer = make_producer(&self.config, &self.context);
        }
        self.producer.clone()
    }

    /// The delivery report of each event of the batch, in order.
    async fn deliver(&mut self, batch: &Batch) -> Result<Vec<EventOutcome>, SendError> {
        let producer = self.producer().map_err(SendError::Retryable)?;
        let mut outcomes: Vec<Option<EventOutcome>> = vec![None; batch.len()];
        let mut reports: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(batch.len());
        let mut lines = batch.events().enumerate();
        for (index, (line, payload)) in lines.by_ref() {
            let fields: EventFields<'_> = match serde_json::from_str(line) {
                Ok(f) => f,
                Err(e) => {
                    outcomes[index] = Some(Err(SendError::Rejected(format!(
                        "event {index} of the batch is not a JSON object: {e}"
                    ))));
                    continue;
                }
            };
            let topic = self.config.topic.expand(&fields);
            let key = fields.record_key();
            let mut headers = OwnedHeaders::new_with_capacity(2);
            if let Some(id) = fields.event.id.as_deref() {
                headers = headers.insert(Header {
                    key: "event.id",
                    value: Some(id),
                });
            }
            if let Some(action) = fields.event.action.as_deref() {
                headers = headers.insert(Header {
                    key: "event.action",
                    value: Some(action),
                });
            }
            let record = FutureRecord::to(&topic)
                .payload(payload.unwrap_or(line))
                .key(&key)
                .headers(headers);
            match producer.send_result(record) {
                Ok(report) => reports.push((index, report)),
                Err((error, _)) => {
                    let outcome = self.outcome(&error);
                    let stop = matches!(outcome, Err(SendError::Retryable(_)));
                    outcomes[index] = Some(outcome);
                    if stop {
                        // Later events wait too, so that none overtakes this one.
                        break;
                    }
                }
            }
        }
        for (index, _) in lines {
            outcomes[index] = Some(Err(SendError::Retryable(
                "not produced: an earlier event of the batch waits for a retry".into(),
            )));
        }
        let mut diagnosed = false;
        for (index, report) in reports {
            outcomes[index] = Some(match report.await {
                Ok(Ok(_)) => {
                    self.context.clear();
                    Ok(())
                }
                Ok(Err((error, _))) => {
                    if !diagnosed
                        && error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut)
                    {
                        diagnosed = true;
                        self.diagnose_tls().await;
                        // A broker that lost its state (restarted empty,
                        // or past its producer-id expiry) answers this
                        // producer's records with UNKNOWN_PRODUCER_ID, and
                        // librdkafka retries them until they time out: the
                        // next try starts with a new producer, and so a
                        // new producer id. Every report of this one was
                        // awaited, so it holds no record.
                        self.renew = true;
                    }
                    self.outcome(&error)
                }
                Err(_) => Err(SendError::Retryable(
                    "librdkafka dropped the record before its delivery report".into(),
                )),
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(SendError::Retryable("not produced".into()))))
            .collect())
    }

    /// What a producer error means for the event: dead letter for what the
    /// broker will never take, retry for the rest.
    fn outcome(&self, error: &KafkaError) -> EventOutcome {
        let code = error.rdkafka_error_code();
        let brokers = self.config.brokers.join(",");
        match code {
            Some(code) if fatal(code) => Err(SendError::Rejected(format!(
                "the broker refused the record: {code}"
            ))),
            Some(RDKafkaErrorCode::MessageTimedOut) => {
                let why = self
                    .context
                    .last_error()
                    .map_or_else(String::new, |e| format!(": {}", self.explain(&e)));
                Err(SendError::Retryable(format!(
                    "no delivery report from {brokers} within {}s{why}",
                    self.config.message_timeout.as_secs()
                )))
            }
            _ => Err(SendError::Retryable(format!("{brokers}: {error}"))),
        }
    }
}

impl KafkaSink {
    /// When librdkafka's last reason is a failed certificate check, ask the
    /// shared TLS checks (`crate::sink::tls`, the other sinks' rustls
    /// client) which one failed, by a handshake of their own with the first
    /// broker: OpenSSL says "certificate verify failed" for an unknown CA
    /// and a wrong name alike, and the operator needs to know which key to fix.
    async fn diagnose_tls(&mut self) {
        let Some(tls) = &self.config.tls else { return };
        let Some(reason) = self.context.last_error() else {
            return;
        };
        if !reason
            .to_ascii_lowercase()
            .contains("certificate verify failed")
        {
            self.tls_diagnosis = None;
            return;
        }
        let Some(broker) = self.config.brokers.first() else {
            return;
        };
        self.tls_diagnosis = certificate_failure(tls, broker).await;
    }

    /// librdkafka's reason, with the key to fix when it is a TLS or SASL
    /// refusal (librdkafka names its own settings, not the operator's).
    fn explain(&self, reason: &str) -> String {
        let lower = reason.to_ascii_lowercase();
        if lower.contains("ssl handshake failed") || lower.contains("certificate verify failed") {
            let what = self.tls_diagnosis.as_deref().unwrap_or(
                "the broker's certificate is not signed by a CA of `tls.ca_file`, or does not name the host written in `brokers`",
            );
            return format!("TLS refused: {what} ({reason})");
        }
        if let Some(sasl) = &self.config.sasl
            && (lower.contains("sasl") || lower.contains("authentication"))
        {
            let key = match sasl.password {
                SecretSource::File(_) => "password_file",
                SecretSource::Env(_) => "password_env",
            };
            return format!(
                "SASL {} login as `{}` refused: check `user` and the password of `{key}` ({reason})",
                sasl.mechanism.name(),
                sasl.user
            );
        }
        reason.to_string()
    }
}

/// Which certificate check `broker` fails, by a handshake with the shared
/// TLS settings' rustls client; `None` when it passes or cannot be made.
async fn certificate_failure(tls: &TlsSettings, broker: &str) -> Option<String> {
    use rustls::{CertificateError, Error};
    let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = tls.expected_name(host).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls.client_config().ok()?));
    let limit = Duration::from_secs(5);
    let tcp = tokio::time::timeout(limit, tokio::net::TcpStream::connect(broker))
        .await
        .ok()?
        .ok()?;
    let error = match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Err(e)) => e,
        _ => return None,
    };
    let trusted = if tls.ca_file.is_some() {
        "a CA of `tls.ca_file`"
    } else {
        "a CA the system trusts (give its CA in `tls.ca_file`)"
    };
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Some(format!(
            "the certificate of {broker} is not valid for the name `{host}`; write in `brokers` a name the certificate carries"
        )),
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Some(format!(
            "the certificate of {broker} is not signed by {trusted}"
        )),
        Some(Error::InvalidCertificate(other)) => Some(format!(
            "the certificate of {broker} is not acceptable ({other:?})"
        )),
        _ => None,
    }
}

/// Errors about the record itself or the right to write it, which no retry
/// repairs.
fn fatal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::PolicyViolation
            | C::UnsupportedForMessageFormat
    )
}

/// The producer of `config`, or why librdkafka refuses its configuration
/// (never echoing the configuration, which holds the password).
fn make_producer(config: &KafkaSinkConfig, context: &Context) -> Result<Producer, String> {
    let client = config.client_config().map_err(|e| e.to_string())?;
    client
        .create_with_context(context.clone())
        .map_err(|e| format!("librdkafka refused the producer's settings: {e}"))
}

impl Sink for KafkaSink {
    /// All or nothing, for callers that cannot take per-event outcomes; the
    /// drain calls `send_each`.
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        match self.deliver(batch).await?.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    async fn send_each(&mut self, batch: &Batch) -> Result<Vec<EventOutcome>, SendError> {
        self.deliver(batch).await
    }

    /// SIGHUP: read the password file and the TLS files again, in a new
    /// producer; one that cannot be made keeps the one that works.
    fn reopen(&mut self) -> Result<(), SendError> {
        match make_producer(&self.config, &self.context) {
            Ok(p) => {
                self.producer = Ok(p);
                Ok(())
            }
            Err(e) if self.producer.is_ok() => Err(SendError::Retryable(format!(
                "{e}; still using the producer made before"
            ))),
            Err(e) => {
                self.producer = Err(e.clone());
                Err(SendError::Retryable(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_template_takes_the_gateway_and_replaces_what_kafka_refuses() {
        let topic = Topic::parse("ipsec-{observer.hostname}").unwrap();
        let fields: EventFields<'_> =
            serde_json::from_str(r#"{"observer":{"hostname":"gw 1.example"}}"#).unwrap();
        assert_eq!(topic.expand(&fields), "ipsec-gw_1.example");
        assert_eq!(topic.expand(&EventFields::default()), "ipsec-_");
        assert_eq!(topic.to_string(), "ipsec-{observer.hostname}");
    }

    #[test]
    fn a_topic_with_an_unknown_field_or_a_bad_character_is_refused() {
        assert_eq!(Topic::parse("a-{host}"), Err(TopicError::Placeholder));
        assert_eq!(
            Topic::parse("a-{observer.hostname"),
            Err(TopicError::Placeholder)
        );
        assert_eq!(Topic::parse("a b"), Err(TopicError::Character(' ')));
        assert_eq!(Topic::parse(""), Err(TopicError::Length));
    }

    #[test]
    fn the_record_key_is_the_gateway_and_the_tunnel() {
        let line = r#"{"observer":{"hostname":"west"},"libreswan":{"connection":{"name":"v2-tun","peer":"192.0.2.9"}}}"#;
        let fields: EventFields<'_> = serde_json::from_str(line).unwrap();
        assert_eq!(fields.record_key(), "west/v2-tun/192.0.2.9");
        let line = r#"{"observer":{"hostname":"west"}}"#;
        let fields: EventFields<'_> = serde_json::from_str(line).unwrap();
        assert_eq!(fields.record_key(), "west");
    }

    #[test]
    fn what_no_retry_repairs_is_fatal_and_a_timeout_is_not() {
        assert!(fatal(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(fatal(RDKafkaErrorCode::TopicAuthorizationFailed));
        assert!(!fatal(RDKafkaErrorCode::MessageTimedOut));
        assert!(!fatal(RDKafkaErrorCode::NotLeaderForPartition));
        assert!(!fatal(RDKafkaErrorCode::QueueFull));
    }
}
