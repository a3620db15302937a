//! The HTTP sink: batches of events POSTed to a log pipeline or a SIEM.
//!
//! Four modes share one client and one reading of status codes and differ
//! only in how a batch becomes a request and how a 2xx answer is read
//! (`answer` for the shared rules, one module per mode for the rest):
//! `ndjson` for Logstash, Vector or Fluent Bit HTTP inputs, `elasticsearch`
//! for the `_bulk` API of Elasticsearch and OpenSearch, `splunk-hec` for
//! Splunk's HTTP Event Collector, `otlp` for an OpenTelemetry Collector.
//! The sink says what became of each event; retrying, waiting for
//! `Retry-After`, splitting a batch the receiver found too large (413),
//! acknowledging and dead-lettering are the drain's. It must
//! never put a secret in an error, a log line or a dead letter (`client`
//! keeps them), and never call a batch delivered without a 2xx answer that,
//! in the bulk modes, accepts each event.

pub mod answer;
pub mod client;
pub mod config;
pub mod elasticsearch;
pub mod fields;
pub mod otlp;
pub mod splunk;

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::{
    Batch, Encoding, EventOutcome, HTTP_BATCH_MAX_EVENTS, RetrySettings, SendError, Sink,
    SinkError, SinkHeader, SinkKind, SpoolSettings, WithSink,
};
use crate::toml_config::{ConfigError, Validator};
use answer::{ItemOutcome, StatusClass, Verdict};
use client::{Auth, ClientError, ClientSettings, SecretError};
use fields::EventFields;

/// What the receiver speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// NDJSON bodies (`application/x-ndjson`); any 2xx is delivered.
    Ndjson,
    /// `_bulk` `create` actions with `_id` = `event.id` into `index`.
    Elasticsearch {
        /// The data stream, index, or daily index pattern.
        index: elasticsearch::IndexName,
    },
    /// HEC event envelopes.
    SplunkHec(splunk::Envelope),
    /// OTLP/HTTP logs, JSON encoding.
    Otlp,
}

impl Mode {
    /// The mode's name as the config writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Ndjson => "ndjson",
            Mode::Elasticsearch { .. } => "elasticsearch",
            Mode::SplunkHec(_) => "splunk-hec",
            Mode::Otlp => "otlp",
        }
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `Content-Encoding: gzip` (fast level: the CPU goes to throughput, the
    /// ratio on JSON is still about 10:1).
    Gzip,
    /// Plain bodies.
    None,
}

/// The HTTP sink's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSinkConfig {
    /// Unique sink name (default: `http`).
    pub name: String,
    /// The receiver: the full URL for `ndjson`, the base URL for the others
    /// (`/_bulk`, `/services/collector/event`, `/v1/logs` are added unless already there).
    pub url: reqwest::Url,
    /// What the receiver speaks.
    pub mode: Mode,
    /// Body compression.
    pub compression: Compression,
    /// Credentials.
    pub auth: Auth,
    /// TLS, timeouts, extra headers.
    pub client: ClientSettings,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
    /// What the payload says of each event: ECS as spooled, or OCSF.
    pub encoding: Encoding,
}

impl HttpSinkConfig {
    /// The URL requests go to: the configured one plus the mode's path.
    pub fn endpoint(&self) -> reqwest::Url {
        let path = match &self.mode {
            Mode::Ndjson => return self.url.clone(),
            Mode::Elasticsearch { .. } => "/_bulk",
            Mode::SplunkHec(_) => splunk::EVENT_PATH,
            Mode::Otlp => otlp::LOGS_PATH,
        };
        let mut url = self.url.clone();
        if !url.path().trim_end_matches('/').ends_with(path) {
            let joined = format!("{}{path}", url.path().trim_end_matches('/'));
            url.set_path(&joined);
        }
        if let Mode::Elasticsearch { .. } = self.mode
            && url.query().is_none()
        {
            url.set_query(Some(elasticsearch::BULK_QUERY));
        }
        url
    }
}

/// A batch as one request: its body and which event each request item is.
struct Encoded {
    body: Vec<u8>,
    content_type: &'static str,
    /// Batch position of each item of the request, in request order.
    items: Vec<usize>,
    /// Events that could not be put in the request, with why.
    unencodable: Vec<(usize, String)>,
}

/// `type = "http"`: its own keys are read by [`HttpSinkConfig::read`].
impl SinkKind for HttpSinkConfig {
    const TYPE_NAME: &'static str = "http";
    const CONFIG_KEYS: &'static [&'static str] = config::CONFIG_KEYS;

    /// 500 events per request instead of 10,000: every mode but `ndjson`
    /// wraps each event (a `_bulk` action line, a HEC envelope, an OTLP
    /// LogRecord), so a request is larger than the batch, and receivers
    /// refuse a body past their limit with a 413 that costs a split into
    /// smaller requests (nginx's `client_max_body_size` is 1 MiB unless
    /// raised, Splunk HEC has `max_content_length`).
    fn default_spool() -> SpoolSettings {
        SpoolSettings {
            batch_max_events: HTTP_BATCH_MAX_EVENTS,
            ..SpoolSettings::default()
        }
    }

    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: toml::Spanned<toml::de::DeTable<'_>>,
    ) -> Result<HttpSinkConfig, ConfigError> {
        HttpSinkConfig::read(reader, header, own)
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (&self.name, &self.spool, &self.retry)
    }

    fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Only `ndjson` sends the event as it is; the other modes wrap it in
    /// an envelope whose fields come from the ECS event.
    fn refuses(&self, encoding: Encoding) -> Option<String> {
        if self.mode == Mode::Ndjson {
            return None;
        }
        let mode = self.mode.name();
        (encoding != Encoding::Ecs).then(|| format!(
            "encoding = \"{}\" does not go with mode = \"{mode}\", whose requests wrap each event in an envelope of its own; use mode = \"ndjson\" to send OCSF events, or leave `encoding` out",
            encoding.name()
        ))
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        let sink = HttpSink::try_new(self.clone()).map_err(|e| SinkError::Setup {
            sink: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(with.with(&self.name, &self.spool, &self.retry, sink))
    }
}

/// Posts batches to one receiver.
pub struct HttpSink {
    config: HttpSinkConfig,
    endpoint: reqwest::Url,
    /// The client, or why it cannot be built (a CA file missing).
    client: Result<reqwest::Client, ClientError>,
    /// The `Authorization` header, or why the secret could not be read.
    authorization: Result<Option<HeaderValue>, SecretError>,
}

impl HttpSink {
    /// A sink for `config` whose TLS files must read now: what the daemon
    /// starts, so that a missing CA file stops the start rather than every
    /// send (`check-config` and `run` find it first, at its line).
    pub fn try_new(config: HttpSinkConfig) -> Result<HttpSink, ClientError> {
        let sink = HttpSink::new(config);
        match sink.client {
            Err(e) => Err(e),
            Ok(_) => Ok(sink),
        }
    }

    /// A sink for `config`; the client and secrets are set up now, and a
    /// failure there (an unreadable CA or password file) keeps the events in
    /// the spool, each send reporting it, until SIGHUP finds it fixed.
    pub fn new(config: HttpSinkConfig) -> HttpSink {
        let endpoint = config.endpoint();
        let https = endpoint.scheme() == "https";
        if https {
            config
                .client
                .tls
                .warn_at_start(&config.name, &endpoint.origin().ascii_serialization());
        }
        let client = client::build(&config.client, https);
        let authorization = client::authorization(&config.auth);
        HttpSink {
            config,
            endpoint,
            client,
            authorization,
        }
    }

    fn encode(&self, batch: &Batch) -> Encoded {
        let mut encoded = Encoded {
            body: Vec::with_capacity(batch.ndjson().len() + batch.len() * 96),
            content_type: "application/x-ndjson",
            items: Vec::with_capacity(batch.len()),
            unencodable: Vec::new(),
        };
        if let Mode::Ndjson = self.config.mode {
            encoded.body.extend_from_slice(batch.ndjson().as_bytes());
            encoded.items.extend(0..batch.len());
            return encoded;
        }
        let mut records = Vec::new();
        for (index, line) in batch.lines().enumerate() {
            let fields = match EventFields::read(line, index) {
                Ok(f) => f,
                Err(e) => {
                    encoded.unencodable.push((index, e.to_string()));
                    continue;
                }
            };
            match &self.config.mode {
                Mode::Ndjson => {}
                Mode::Elasticsearch { index: name } => {
                    elasticsearch::encode_event(&mut encoded.body, name, line, &fields)
                }
                Mode::SplunkHec(envelope) => {
                    splunk::encode_event(&mut encoded.body, envelope, line, &fields)
                }
                Mode::Otlp => match otlp::log_record(line, &fields) {
                    Ok(record) => {
                        let host = fields.observer.hostname.as_deref().map(str::to_string);
                        records.push((host, record));
                    }
                    Err(e) => {
                        encoded.unencodable.push((index, e.to_string()));
                        continue;
                    }
                },
            }
            encoded.items.push(index);
        }
        match self.config.mode {
            Mode::Otlp => {
                encoded.body = otlp::request(records).to_string().into_bytes();
                encoded.content_type = "application/json";
            }
            Mode::SplunkHec(_) => encoded.content_type = "application/json",
            _ => {}
        }
        encoded
    }

    /// One request for the batch and what the answer means for each event.
    pub async fn deliver(&mut self, batch: &Batch) -> Verdict {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => return retry(e.to_string()),
        };
        let authorization = match &self.authorization {
            Ok(a) => a.clone(),
            Err(e) => return retry(e.to_string()),
        };
        let encoded = self.encode(batch);
        let verdict = if encoded.items.is_empty() {
            Verdict::PerEvent {
                outcomes: Vec::new(),
                after: None,
            }
        } else {
            self.post(&client, authorization, &encoded).await
        };
        spread(verdict, &encoded, batch.len())
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        authorization: Option<HeaderValue>,
        encoded: &Encoded,
    ) -> Verdict {
        let mut request = client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, encoded.content_type);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request = match self.config.compression {
            Compression::None => request.body(encoded.body.clone()),
            Compression::Gzip => match gzip(&encoded.body) {
                Ok(body) => request.header(CONTENT_ENCODING, "gzip").body(body),
                Err(e) => return retry(format!("cannot compress the batch: {e}")),
            },
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return retry(self.transport_error(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return retry(self.transport_error(&e)),
        };
        let class = answer::classify(status, retry_after.as_deref(), &body, SystemTime::now());
        let items = encoded.items.len();
        match (&self.config.mode, class) {
            (Mode::SplunkHec(_), class) => splunk::read_answer(class, &body, items),
            (_, StatusClass::Retry { reason, after }) => Verdict::Retry { reason, after },
            (_, StatusClass::Rejected(reason)) => Verdict::Rejected(reason),
            (_, StatusClass::TooLarge(reason)) => Verdict::TooLarge(reason),
            (Mode::Ndjson, StatusClass::Success) => Verdict::Delivered,
            (Mode::Elasticsearch { .. }, StatusClass::Success) => {
                elasticsearch::read_answer(&body, items)
            }
            (Mode::Otlp, StatusClass::Success) => {
                if let Some((refused, message)) = otlp::partial_success(&body) {
                    // OTLP forbids resending refused records and does not say which they were.
                    tracing::warn!(
                        sink = %self.config.name,
                        refused,
                        "sink `{}`: the collector took the batch of {items} log records but refused {refused} of them for good: {message}",
                        self.config.name
                    );
                }
                Verdict::Delivered
            }
        }
    }

    /// A connection-level failure in one line, without the URL's query.
    fn transport_error(&self, error: &reqwest::Error) -> String {
        let what = if error.is_timeout() {
            format!(
                "no answer from {} within the timeout (connect {}s, request {}s)",
                self.origin(),
                self.config.client.connect_timeout.as_secs(),
                self.config.client.request_timeout.as_secs()
            )
        } else if error.is_connect() {
            format!("cannot connect to {}", self.origin())
        } else {
            format!("request to {} failed", self.origin())
        };
        let cause = match std::error::Error::source(error) {
            Some(source) => client::chain(source),
            None => String::new(),
        };
        if cause.is_empty() {
            what
        } else {
            format!("{what}: {cause}")
        }
    }

    fn origin(&self) -> String {
        self.endpoint.origin().ascii_serialization()
    }
}

fn retry(reason: String) -> Verdict {
    Verdict::Retry {
        reason,
        after: None,
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

/// The verdict on the request's items, as a verdict on the batch's events
/// (events that could not be encoded are rejected with their reason).
fn spread(verdict: Verdict, encoded: &Encoded, events: usize) -> Verdict {
    if encoded.unencodable.is_empty() && encoded.items.len() == events {
        return verdict;
    }
    let (item_outcomes, after): (Vec<ItemOutcome>, _) = match verdict {
        Verdict::Delivered => (vec![ItemOutcome::Delivered; encoded.items.len()], None),
        Verdict::Retry { reason, after } => {
            (vec![ItemOutcome::Retry(reason); encoded.items.len()], after)
        }
        Verdict::Rejected(reason) => (
            vec![ItemOutcome::Rejected(reason); encoded.items.len()],
            None,
        ),
        Verdict::TooLarge(reason) => (
            vec![ItemOutcome::TooLarge(reason); encoded.items.len()],
            None,
        ),
        Verdict::PerEvent { outcomes, after } => (outcomes, after),
    };
    let mut outcomes = vec![ItemOutcome::Retry("not sent".into()); events];
    for (position, outcome) in encoded.items.iter().zip(item_outcomes) {
        outcomes[*position] = outcome;
    }
    for (position, reason) in &encoded.unencodable {
        outcomes[*position] = ItemOutcome::Rejected(reason.clone());
    }
    Verdict::PerEvent { outcomes, after }.simplified()
}

/// A retry, not before the server's `Retry-After` when it sent one.
fn retry_error(reason: String, after: Option<Duration>) -> SendError {
    match after {
        Some(after) => SendError::retry_after(reason, after),
        None => SendError::Retryable(reason),
    }
}

/// A verdict in the drain's terms: an error for the whole batch, or one
/// outcome per event.
fn outcomes(verdict: Verdict, events: usize) -> Result<Vec<EventOutcome>, SendError> {
    match verdict {
        Verdict::Delivered => Ok(vec![Ok(()); events]),
        Verdict::Retry { reason, after } => Err(retry_error(reason, after)),
        Verdict::Rejected(reason) => Err(SendError::Rejected(reason)),
        Verdict::TooLarge(reason) => Err(SendError::TooLarge(reason)),
        Verdict::PerEvent { outcomes, after } => Ok(outcomes
            .into_iter()
            .map(|o| match o {
                ItemOutcome::Delivered => Ok(()),
                ItemOutcome::Retry(reason) => Err(retry_error(reason, after)),
                ItemOutcome::Rejected(reason) => Err(SendError::Rejected(reason)),
                ItemOutcome::TooLarge(reason) => Err(SendError::TooLarge(reason)),
            })
            .collect()),
    }
}

impl Sink for HttpSink {
    /// All or nothing, for callers that cannot take per-event outcomes; the
    /// drain calls `send_each`.
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let events = batch.len();
        match outcomes(self.deliver(batch).await, events)?
            .into_iter()
            .find_map(Result::err)
        {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    async fn send_each(&mut self, batch: &Batch) -> Result<Vec<EventOutcome>, SendError> {
        let events = batch.len();
        outcomes(self.deliver(batch).await, events)
    }

    /// SIGHUP: read the secret files, the CA and the client certificate
    /// again. A TLS file that no longer reads keeps the client that works
    /// (the TLS policy of every sink, `crate::sink::tls`); a secret that no
    /// longer reads is reported at each send until it is fixed.
    fn reopen(&mut self) -> Result<(), SendError> {
        let https = self.endpoint.scheme() == "https";
        let client = client::build(&self.config.client, https);
        let kept = match (client, &self.client) {
            (Err(e), Ok(_)) => Some(e.to_string()),
            (client, _) => {
                self.client = client;
                None
            }
        };
        self.authorization = client::authorization(&self.config.auth);
        let failed = match (&self.client, &self.authorization) {
            (Err(e), _) => Some(e.to_string()),
            (_, Err(e)) => Some(e.to_string()),
            _ => None,
        };
        match (kept, failed) {
            (_, Some(e)) => Err(SendError::Retryable(e)),
            (Some(e), None) => Err(SendError::Retryable(format!(
                "{e}; still using the TLS files read before"
            ))),
            (None, None) => Ok(()),
        }
    }
}
