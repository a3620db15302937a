//! The syslog sink: each event as one RFC 5424 (or RFC 3164) message over the
//! local socket (`/dev/log`), UDP, TCP with RFC 6587 framing, or TLS
//! (RFC 5425), so that SIEM forwarders (rsyslog, syslog-ng, QRadar, ArcSight,
//! Splunk and Sentinel collectors, Wazuh) take the events as they come.
//!
//! Formatting is pure and lives in [`encode`]; this module only holds the
//! connection. A batch counts as delivered when it was handed to the kernel
//! completely: for a datagram when `send` returned, for TCP and TLS when
//! every byte was written (and TLS flushed). Syslog has no application ack,
//! so what a receiver had read but not yet stored when it died is lost to
//! it; what this sink can do is not write into a connection the receiver
//! already closed, so it looks for the receiver's EOF before every batch and
//! reconnects first. On any error the connection is dropped and the drain
//! retries the batch on a new one; events wait in the spool meanwhile. This
//! module must never retry or sleep by itself; TLS (its settings, its files,
//! turning verification off only when the operator wrote `verify = false`)
//! is `super::tls`'s, shared with the http sink.

pub mod encode;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};

use super::{
    Batch, Encoding, RetrySettings, SendError, Sink, SinkError, SinkHeader, SinkKind,
    SpoolSettings, WithSink,
};
use toml::Spanned;
use toml::de::DeTable;

use super::tls::{Alias, RawTls, TlsError, TlsSettings};
use crate::toml_config::{ByteSize, ConfigError, Validator, read_table};
use encode::{Encoder, frame};

/// How long connecting (and the TLS handshake) and writing one batch may take
/// before the connection is given up and the batch retried.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The syslog sink as configured (`[[sink]] type = "syslog"`).
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogSinkConfig {
    /// Unique sink name (default: `syslog`).
    pub name: String,
    /// How messages travel.
    pub transport: Transport,
    /// `host:port` for udp/tcp/tls, a socket path for unix.
    pub address: String,
    /// The message header: RFC 5424 or the older BSD format.
    pub format: Format,
    /// Stream framing (tcp and tls only).
    pub framing: Framing,
    /// The facility of PRI.
    pub facility: Facility,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: String,
    /// HOSTNAME; `None` uses each event's `observer.hostname`.
    pub hostname: Option<String>,
    /// The JSON event or a CEF line as MSG.
    pub message: MessageFormat,
    /// Datagram transports: a longer message is sent as a reduced event; `None` on streams.
    pub max_message_bytes: Option<usize>,
    /// TLS settings (tls only): the `[sink.tls]` table every TLS sink shares.
    pub tls: TlsSettings,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
    /// What the payload says of each event: ECS as spooled, or OCSF.
    pub encoding: Encoding,
}

/// The transport of a syslog sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A local datagram socket such as `/dev/log`.
    Unix,
    /// UDP datagrams (RFC 5426): no delivery guarantee at all.
    Udp,
    /// TCP (RFC 6587).
    Tcp,
    /// TLS over TCP (RFC 5425).
    Tls,
}

impl Transport {
    /// The transport's name as the config writes it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// True for the transports that carry one message per datagram.
    pub fn is_datagram(self) -> bool {
        matches!(self, Transport::Unix | Transport::Udp)
    }
}

/// The message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 5424: MSGID and STRUCTURED-DATA; the default.
    Rfc5424,
    /// RFC 3164 (BSD): for old receivers; no MSGID and no SD.
    Rfc3164,
}

/// How messages are delimited on a stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `LEN SP MSG` (§3.4.1); the default, robust against any content.
    OctetCounting,
    /// Each message ends in LF (§3.4.2), for receivers that only know that.
    Newline,
}

/// What MSG holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    /// The event as JSON (printable ASCII, non-ASCII `\u`-escaped); the default.
    Json,
    /// An ArcSight CEF line (mapping in `docs/events.md`).
    Cef,
}

/// The syslog facility (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The numeric code that goes into PRI.
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

impl SyslogSinkConfig {
    /// A sink to `/dev/log` with every setting at its default.
    pub fn new() -> SyslogSinkConfig {
        SyslogSinkConfig {
            name: "syslog".into(),
            transport: Transport::Unix,
            address: "/dev/log".into(),
            format: Format::Rfc5424,
            framing: Framing::OctetCounting,
            facility: Facility::Authpriv,
            app_name: "swantrail".into(),
            hostname: None,
            message: MessageFormat::Json,
            max_message_bytes: Some(default_max_message_bytes(Format::Rfc5424)),
            tls: TlsSettings::default(),
            spool: SpoolSettings::default(),
            retry: RetrySettings::default(),
            encoding: Encoding::default(),
        }
    }
}

impl Default for SyslogSinkConfig {
    fn default() -> SyslogSinkConfig {
        SyslogSinkConfig::new()
    }
}

/// The syslog sink's own keys (beyond `type`, `name`, `spool`, `retry`).
pub(crate) const CONFIG_KEYS: &[&str] = &[
    "transport",
    "address",
    "format",
    "framing",
    "facility",
    "app_name",
    "hostname",
    "message",
    "max_message_bytes",
    "tls",
];

/// The syslog sink's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyslogSink {
    transport: Option<Spanned<Transport>>,
    address: Option<Spanned<String>>,
    format: Option<Spanned<Format>>,
    framing: Option<Spanned<Framing>>,
    facility: Option<Spanned<Facility>>,
    app_name: Option<Spanned<String>>,
    hostname: Option<Spanned<String>>,
    message: Option<Spanned<MessageFormat>>,
    max_message_bytes: Option<Spanned<ByteSize>>,
    tls: Option<Spanned<RawTls>>,
}

impl SyslogSinkConfig {
    /// A syslog sink; refuses every transport/format/framing mix that cannot work.
    pub(crate) fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<SyslogSinkConfig, ConfigError> {
        let raw: RawSyslogSink = read_table(reader, own)?;
        let d = SyslogSinkConfig::new();
        let transport = raw.transport.as_ref().map_or(d.transport, |t| *t.get_ref());
        let format = read_format(reader, raw.format.as_ref(), transport)?;
        only_for_streams(reader, &raw, transport)?;
        let max_message_bytes =
            read_max_message_bytes(reader, raw.max_message_bytes.as_ref(), transport, format)?;
        let address = read_address(reader, raw.address, transport, header.span)?;
        let app_name = read_header_field(reader, raw.app_name, "app_name", 48)?;
        Ok(SyslogSinkConfig {
            name: header.name,
            transport,
            address: address.unwrap_or(d.address),
            format,
            framing: raw.framing.map_or(d.framing, Spanned::into_inner),
            facility: raw.facility.map_or(d.facility, Spanned::into_inner),
            app_name: app_name.unwrap_or(d.app_name),
            hostname: read_header_field(reader, raw.hostname, "hostname", 255)?,
            message: raw.message.map_or(d.message, Spanned::into_inner),
            max_message_bytes,
            tls: TlsSettings::read(reader, raw.tls, Alias::Deprecated)?,
            spool: header.spool,
            retry: header.retry,
            encoding: header.encoding,
        })
    }
}

/// `format`; RFC 5425 (TLS) carries RFC 5424 only.
fn read_format(
    reader: &Validator<'_>,
    format: Option<&Spanned<Format>>,
    transport: Transport,
) -> Result<Format, ConfigError> {
    match format {
        Some(f) if *f.get_ref() == Format::Rfc3164 && transport == Transport::Tls => reader.key_error(
            f.span(),
            "format = \"rfc3164\" does not go with transport = \"tls\": RFC 5425 carries RFC 5424 messages; write format = \"rfc5424\", or use transport = \"tcp\"".into(),
        ),
        Some(f) => Ok(*f.get_ref()),
        None => Ok(Format::Rfc5424),
    }
}

/// `framing` is for streams and `[sink.tls]` for TLS only.
fn only_for_streams(
    reader: &Validator<'_>,
    raw: &RawSyslogSink,
    transport: Transport,
) -> Result<(), ConfigError> {
    let tname = transport.name();
    if let Some(framing) = &raw.framing
        && transport.is_datagram()
    {
        return reader.key_error(
            framing.span(),
            format!("key `framing` does not apply to transport = \"{tname}\" (a datagram is one message); it is for \"tcp\" and \"tls\""),
        );
    }
    if let Some(tls) = &raw.tls
        && transport != Transport::Tls
    {
        return reader.key_error(
            tls.span(),
            format!("the [sink.tls] table does not apply to transport = \"{tname}\"; write transport = \"tls\" or remove it"),
        );
    }
    Ok(())
}

/// `max_message_bytes`: for datagrams only, within what UDP and RFC 5424 allow.
fn read_max_message_bytes(
    reader: &Validator<'_>,
    max: Option<&Spanned<ByteSize>>,
    transport: Transport,
    format: Format,
) -> Result<Option<usize>, ConfigError> {
    match max {
        Some(m) if !transport.is_datagram() => reader.key_error(
            m.span(),
            format!("key `max_message_bytes` does not apply to transport = \"{}\" (a stream takes any length); it is for \"udp\" and \"unix\"", transport.name()),
        ),
        Some(m) if m.get_ref().0 < 480 || m.get_ref().0 > 65507 => reader.error(
            m.span(),
            "`max_message_bytes` must be between 480 (what every receiver must take, RFC 5424 §6.1) and 65507 (the largest UDP datagram)".into(),
        ),
        Some(m) => Ok(usize::try_from(m.get_ref().0).ok()),
        None if transport.is_datagram() => Ok(Some(default_max_message_bytes(format))),
        None => Ok(None),
    }
}

/// `address`: a socket path for unix, `host:port` otherwise (required then);
/// `None` keeps the default `/dev/log`.
fn read_address(
    reader: &Validator<'_>,
    address: Option<Spanned<String>>,
    transport: Transport,
    table_span: std::ops::Range<usize>,
) -> Result<Option<String>, ConfigError> {
    let tname = transport.name();
    let Some(address) = address else {
        if transport == Transport::Unix {
            return Ok(None);
        }
        return reader.error(
            table_span,
            format!("a `syslog` [[sink]] with transport = \"{tname}\" needs `address`, the receiver's host:port"),
        );
    };
    let ok = match transport {
        Transport::Unix => address.get_ref().starts_with('/'),
        _ => address
            .get_ref()
            .rsplit_once(':')
            .is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            }),
    };
    if ok {
        return Ok(Some(address.into_inner()));
    }
    let want = match transport {
        Transport::Unix => "an absolute socket path such as \"/dev/log\"",
        _ => "host:port, e.g. \"logs.example.net:514\" or \"[2001:db8::1]:6514\"",
    };
    reader.error(
        address.span(),
        format!(
            "invalid `address` \"{}\" for transport = \"{tname}\": write {want}",
            address.get_ref()
        ),
    )
}

/// APP-NAME or HOSTNAME: what the syslog header allows.
fn read_header_field(
    reader: &Validator<'_>,
    value: Option<Spanned<String>>,
    key: &str,
    max: usize,
) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.get_ref().is_empty()
            || v.get_ref().len() > max
            || !v.get_ref().chars().all(|c| c.is_ascii_graphic()) =>
        {
            reader.error(
                v.span(),
                format!("invalid `{key}` \"{}\": syslog allows 1 to {max} printable ASCII characters without spaces", v.get_ref()),
            )
        }
        Some(v) => Ok(Some(v.into_inner())),
        None => Ok(None),
    }
}

/// `type = "syslog"`: its own keys are read by [`SyslogSinkConfig::read`].
impl SinkKind for SyslogSinkConfig {
    const TYPE_NAME: &'static str = "syslog";
    const CONFIG_KEYS: &'static [&'static str] = CONFIG_KEYS;

    fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<SyslogSinkConfig, ConfigError> {
        SyslogSinkConfig::read(reader, header, own)
    }

    fn common(&self) -> (&str, &SpoolSettings, &RetrySettings) {
        (&self.name, &self.spool, &self.retry)
    }

    fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// A CEF line is an encoding of its own.
    fn refuses(&self, encoding: Encoding) -> Option<String> {
        (encoding != Encoding::Ecs && self.message == MessageFormat::Cef).then(|| format!(
            "encoding = \"{}\" does not go with message = \"cef\" (a CEF line is an encoding of its own); write message = \"json\" to send the OCSF event as MSG",
            encoding.name()
        ))
    }

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        let sink = SyslogSink::new(self.clone()).map_err(|e| SinkError::Setup {
            sink: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(with.with(&self.name, &self.spool, &self.retry, sink))
    }
}

/// The datagram size limit when none is configured: 2048 for RFC 3164
/// (twice its 1024, what receivers take in practice), 8192 for RFC 5424
/// (rsyslog's and syslog-ng's default maximum).
pub fn default_max_message_bytes(format: Format) -> usize {
    match format {
        Format::Rfc3164 => 2048,
        Format::Rfc5424 => 8192,
    }
}

/// A stream the sink writes to: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

enum Connection {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Stream(Box<dyn Stream>),
}

impl Connection {
    /// One message as one datagram on the datagram transports; a stream
    /// frames and writes a whole batch instead, so it never comes here.
    async fn send_datagram(&self, message: &[u8]) -> io::Result<()> {
        match self {
            Connection::Unix(socket) => socket.send(message).await.map(drop),
            Connection::Udp(socket) => socket.send(message).await.map(drop),
            Connection::Stream(_) => Err(io::Error::other("a stream takes framed batches")),
        }
    }
}

/// Sends batches to one syslog receiver.
pub struct SyslogSink {
    config: SyslogSinkConfig,
    encoder: Encoder,
    tls: Option<tokio_rustls::TlsConnector>,
    connection: Option<Connection>,
    reduced_total: u64,
}

impl SyslogSink {
    /// A sink for `config`; reads the TLS files now so that a wrong path
    /// fails at start, not at the first event. Connects at the first batch.
    pub fn new(config: SyslogSinkConfig) -> Result<SyslogSink, TlsError> {
        let tls = match config.transport {
            Transport::Tls => {
                config.tls.warn_at_start(&config.name, &config.address);
                Some(tls_connector(&config.tls)?)
            }
            _ => None,
        };
        let encoder = Encoder {
            format: config.format,
            facility: config.facility,
            message: config.message,
            app_name: config.app_name.clone(),
            hostname: config.hostname.clone(),
            procid: std::process::id(),
        };
        Ok(SyslogSink {
            config,
            encoder,
            tls,
            connection: None,
            reduced_total: 0,
        })
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let address = &self.config.address;
        let retry = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Retryable(format!("cannot {what} {address}: {e}"))
        };
        match self.config.transport {
            Transport::Unix => {
                let socket = UnixDatagram::unbound().map_err(|e| retry("open a socket for", &e))?;
                socket.connect(address).map_err(|e| retry("reach", &e))?;
                Ok(Connection::Unix(socket))
            }
            Transport::Udp => {
                let peer = tokio::net::lookup_host(address)
                    .await
                    .map_err(|e| retry("resolve", &e))?
                    .next()
                    .ok_or_else(|| retry("resolve", &"no address"))?;
                let local = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| retry("open a socket for", &e))?;
                socket.connect(peer).await.map_err(|e| retry("reach", &e))?;
                Ok(Connection::Udp(socket))
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = timed(TcpStream::connect(address.as_str()))
                    .await
                    .map_err(|e| retry("connect to", &e))?;
                let _ = tcp.set_nodelay(true);
                let Some(connector) = &self.tls else {
                    return Ok(Connection::Stream(Box::new(tcp)));
                };
                let name = self
                    .config
                    .tls
                    .expected_name(host_of(address))
                    .map_err(|e| SendError::Retryable(format!("{address}: {e}")))?;
                let tls = timed(connector.connect(name, tcp))
                    .await
                    .map_err(|e| SendError::Retryable(tls_failure(&self.config, &e)))?;
                Ok(Connection::Stream(Box::new(tls)))
            }
        }
    }

    fn count_reduced(&mut self, reduced: u64) {
        if reduced == 0 {
            return;
        }
        let before = self.reduced_total;
        self.reduced_total += reduced;
        // One line for the first and then one per power of two, so that a
        // stream of oversized events is visible without a line per event.
        if before == 0 || before.leading_zeros() != self.reduced_total.leading_zeros() {
            tracing::warn!(
                sink = %self.config.name,
                reduced_total = self.reduced_total,
                "sink `{}`: {} events since start were longer than max_message_bytes = {} and went as reduced events (id, action, connection, serial, `swantrail.truncated`)",
                self.config.name,
                self.reduced_total,
                self.config.max_message_bytes.unwrap_or_default(),
            );
        }
    }
}

impl Sink for SyslogSink {
    /// SIGHUP: read the TLS files again (a renewed client certificate or CA
    /// takes effect at the next connection); one that no longer reads keeps
    /// the configuration that works, as every TLS sink does.
    fn reopen(&mut self) -> Result<(), SendError> {
        if self.config.transport != Transport::Tls {
            return Ok(());
        }
        match tls_connector(&self.config.tls) {
            Ok(connector) => {
                self.tls = Some(connector);
                self.connection = None;
                Ok(())
            }
            Err(e) => Err(SendError::Retryable(format!(
                "{e}; still using the TLS files read before"
            ))),
        }
    }

    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let max = self.config.max_message_bytes;
        let mut reduced = 0;
        let messages: Vec<Vec<u8>> = batch
            .events()
            .map(|(line, payload)| {
                let encoded = self.encoder.encode_with(line, payload, max);
                reduced += u64::from(encoded.reduced);
                encoded.bytes
            })
            .collect();
        if let Some(Connection::Stream(stream)) = &mut self.connection {
            if let Some(why) = closed_by_peer(stream.as_mut()) {
                tracing::debug!(sink = %self.config.name, "sink `{}`: {why}; reconnecting", self.config.name);
                self.connection = None;
            }
        }
        let mut connection = match self.connection.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let address = &self.config.address;
        let sent = if let Connection::Stream(stream) = &mut connection {
            let mut buffer = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
            for message in &messages {
                frame(message, self.config.framing, &mut buffer);
            }
            timed(async {
                stream.write_all(&buffer).await?;
                stream.flush().await
            })
            .await
            .map_err(|e| SendError::Retryable(format!("cannot write to {address}: {e}")))
        } else {
            let mut result = Ok(());
            for message in &messages {
                if let Err(e) = connection.send_datagram(message).await {
                    result = Err(datagram_error(address, message.len(), e));
                    break;
                }
            }
            result
        };
        sent?;
        self.connection = Some(connection);
        self.count_reduced(reduced);
        Ok(())
    }
}

fn datagram_error(address: &str, len: usize, e: io::Error) -> SendError {
    if e.raw_os_error() == Some(libc::EMSGSIZE) {
        SendError::Rejected(format!(
            "{address} does not take a datagram of {len} bytes: lower max_message_bytes"
        ))
    } else {
        SendError::Retryable(format!("cannot send to {address}: {e}"))
    }
}

/// `future` with [`IO_TIMEOUT`], a timeout being an I/O error like the others.
async fn timed<T>(future: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no progress in {}s", IO_TIMEOUT.as_secs()),
        )),
    }
}

/// Whether the receiver closed (or reset) the connection: a syslog receiver
/// never sends, so a readable stream means EOF or an error. Looks once,
/// without waiting.
fn closed_by_peer(stream: &mut dyn Stream) -> Option<String> {
    let mut buf = [0u8; 256];
    let mut read = ReadBuf::new(&mut buf);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(stream).poll_read(&mut cx, &mut read) {
        Poll::Pending => None,
        Poll::Ready(Ok(())) if read.filled().is_empty() => {
            Some("the receiver closed the connection".into())
        }
        Poll::Ready(Ok(())) => None,
        Poll::Ready(Err(e)) => Some(format!("the connection failed: {e}")),
    }
}

/// The host part of `host:port` (without the brackets of an IPv6 literal).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The handshake error in the operator's words: which check failed and which key to look at.
fn tls_failure(config: &SyslogSinkConfig, e: &io::Error) -> String {
    use rustls::{CertificateError, Error};
    let name = config
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(&config.address).to_string());
    let address = &config.address;
    let cause = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>());
    match cause {
        Some(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => format!(
            "TLS: the certificate of {address} is not valid for the name `{name}`; refusing to send (set `tls.server_name` to a name the certificate carries)"
        ),
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
            "TLS: the certificate of {address} is not signed by a trusted CA; refusing to send (give its CA in `tls.ca_file`)"
        ),
        Some(Error::InvalidCertificate(other)) => format!(
            "TLS: the certificate of {address} is not acceptable ({other:?}); refusing to send"
        ),
        _ => format!("TLS handshake with {address} failed: {e}"),
    }
}

fn tls_connector(tls: &TlsSettings) -> Result<tokio_rustls::TlsConnector, TlsError> {
    Ok(tokio_rustls::TlsConnector::from(Arc::new(
        tls.client_config()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_defaults_to_the_host_of_the_address() {
        assert_eq!(host_of("logs.example.net:6514"), "logs.example.net");
        assert_eq!(host_of("[2001:db8::1]:6514"), "2001:db8::1");
        assert_eq!(host_of("127.0.0.1:6514"), "127.0.0.1");
    }
}
