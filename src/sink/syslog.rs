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
//! module must never retry or sleep by itself, and must never turn off TLS
//! certificate checks unless the operator wrote `insecure_skip_verify`.

pub mod encode;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};

use super::{
    Batch, RetrySettings, SendError, Sink, SinkError, SinkHeader, SinkKind, SpoolSettings, WithSink,
};
use toml::Spanned;
use toml::de::DeTable;

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
    /// TLS settings (tls only).
    pub tls: TlsSettings,
    /// Spool and batching.
    pub spool: SpoolSettings,
    /// Retry on failure.
    pub retry: RetrySettings,
}

/// How TLS checks the receiver and presents this sender.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsSettings {
    /// PEM file of the CA(s) that signed the receiver's certificate; `None` uses the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for receivers that authenticate senders.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// The name the receiver's certificate must carry; `None` uses the host of `address`.
    pub server_name: Option<String>,
    /// Accept any certificate (logged as a warning at start): for a lab only.
    pub insecure_skip_verify: bool,
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

/// The `[sink.tls]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    client_cert: Option<Spanned<PathBuf>>,
    client_key: Option<Spanned<PathBuf>>,
    server_name: Option<Spanned<String>>,
    insecure_skip_verify: Option<bool>,
}

impl SyslogSinkConfig {
    /// A syslog sink; refuses every transport/format/framing mix that cannot work.
    pub(crate) fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<SyslogSinkConfig, ConfigError> {
        let raw: RawSyslogSink = read_table(reader, own)?;
        let (name, table_span, spool, retry) =
            (header.name, header.span, header.spool, header.retry);
        let d = SyslogSinkConfig::new();
        let transport = raw.transport.as_ref().map_or(d.transport, |t| *t.get_ref());
        let tname = match transport {
            Transport::Unix => "unix",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        let format = raw.format.as_ref().map_or(d.format, |f| *f.get_ref());
        if let (Some(f), Transport::Tls) = (&raw.format, transport) {
            if *f.get_ref() == Format::Rfc3164 {
                return reader.key_error(
                    f.span(),
                    "format = \"rfc3164\" does not go with transport = \"tls\": RFC 5425 carries RFC 5424 messages; write format = \"rfc5424\", or use transport = \"tcp\"".into(),
                );
            }
        }
        if let Some(framing) = &raw.framing {
            if transport.is_datagram() {
                return reader.key_error(
                    framing.span(),
                    format!("key `framing` does not apply to transport = \"{tname}\" (a datagram is one message); it is for \"tcp\" and \"tls\""),
                );
            }
        }
        if let Some(tls) = &raw.tls {
            if transport != Transport::Tls {
                return reader.key_error(
                    tls.span(),
                    format!("the [sink.tls] table does not apply to transport = \"{tname}\"; write transport = \"tls\" or remove it"),
                );
            }
        }
        let max_message_bytes = match &raw.max_message_bytes {
            Some(m) if !transport.is_datagram() => {
                return reader.key_error(
                    m.span(),
                    format!("key `max_message_bytes` does not apply to transport = \"{tname}\" (a stream takes any length); it is for \"udp\" and \"unix\""),
                );
            }
            Some(m) if m.get_ref().0 < 480 || m.get_ref().0 > 65507 => {
                return reader.error(
                    m.span(),
                    "`max_message_bytes` must be between 480 (what every receiver must take, RFC 5424 §6.1) and 65507 (the largest UDP datagram)".into(),
                );
            }
            Some(m) => usize::try_from(m.get_ref().0).ok(),
            None if transport.is_datagram() => Some(default_max_message_bytes(format)),
            None => None,
        };
        let address = match raw.address {
            Some(a) => {
                let span = a.span();
                let address = a.into_inner();
                let ok = match transport {
                    Transport::Unix => address.starts_with('/'),
                    _ => address.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                    }),
                };
                if !ok {
                    let want = match transport {
                        Transport::Unix => "an absolute socket path such as \"/dev/log\"",
                        _ => "host:port, e.g. \"logs.example.net:514\" or \"[2001:db8::1]:6514\"",
                    };
                    return reader.error(
                        span,
                        format!("invalid `address` \"{address}\" for transport = \"{tname}\": write {want}"),
                    );
                }
                address
            }
            None if transport == Transport::Unix => d.address,
            None => {
                return reader.error(
                    table_span,
                    format!("a `syslog` [[sink]] with transport = \"{tname}\" needs `address`, the receiver's host:port"),
                );
            }
        };
        let header = |value: Option<Spanned<String>>, key: &str, max: usize| {
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
        };
        let app_name = header(raw.app_name, "app_name", 48)?.unwrap_or(d.app_name);
        let hostname = header(raw.hostname, "hostname", 255)?;
        let tls = match raw.tls {
            None => TlsSettings::default(),
            Some(t) => {
                let span = t.span();
                let t = t.into_inner();
                if t.client_cert.is_some() != t.client_key.is_some() {
                    let at = t
                        .client_cert
                        .as_ref()
                        .or(t.client_key.as_ref())
                        .map_or(span, Spanned::span);
                    return reader.key_error(
                        at,
                        "`tls.client_cert` and `tls.client_key` go together: give both or neither"
                            .into(),
                    );
                }
                if let Some(n) = &t.server_name {
                    if rustls_pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
                        return reader.error(
                            n.span(),
                            format!("invalid `tls.server_name` \"{}\": write a DNS name or an IP address", n.get_ref()),
                        );
                    }
                }
                TlsSettings {
                    ca_file: t.ca_file,
                    client_cert: t.client_cert.map(Spanned::into_inner),
                    client_key: t.client_key.map(Spanned::into_inner),
                    server_name: t.server_name.map(Spanned::into_inner),
                    insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
                }
            }
        };
        Ok(SyslogSinkConfig {
            name,
            transport,
            address,
            format,
            framing: raw.framing.map_or(d.framing, Spanned::into_inner),
            facility: raw.facility.map_or(d.facility, Spanned::into_inner),
            app_name,
            hostname,
            message: raw.message.map_or(d.message, Spanned::into_inner),
            max_message_bytes,
            tls,
            spool,
            retry,
        })
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

    fn build<W: WithSink>(&self, with: W) -> Result<W::Output, SinkError> {
        let sink = SyslogSink::new(self.clone()).map_err(|message| SinkError::Setup {
            sink: self.name.clone(),
            message,
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
    pub fn new(config: SyslogSinkConfig) -> Result<SyslogSink, String> {
        let tls = match config.transport {
            Transport::Tls => Some(tls_connector(&config)?),
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
                let name = server_name(&self.config)
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
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let max = self.config.max_message_bytes;
        let mut reduced = 0;
        let messages: Vec<Vec<u8>> = batch
            .lines()
            .map(|line| {
                let encoded = self.encoder.encode(line, max);
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

fn server_name(config: &SyslogSinkConfig) -> Result<rustls_pki_types::ServerName<'static>, String> {
    let name = config
        .tls
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(&config.address).to_string());
    rustls_pki_types::ServerName::try_from(name.clone()).map_err(|e| {
        format!("`{name}` is not a valid TLS server name ({e}); set `tls.server_name`")
    })
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

fn read_error(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> String {
    format!("cannot read the {what} {}: {e}", path.display())
}

fn tls_connector(config: &SyslogSinkConfig) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let tls = &config.tls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            sink = %config.name,
            "sink `{}`: TLS certificate verification is OFF (tls.insecure_skip_verify = true): anyone on the path to {} can read and forge these events",
            config.name,
            config.address
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| read_error("CA file (tls.ca_file)", path, e))?
                {
                    let cert = cert.map_err(|e| read_error("CA file (tls.ca_file)", path, e))?;
                    roots
                        .add(cert)
                        .map_err(|e| read_error("CA file (tls.ca_file)", path, e))?;
                }
                if roots.is_empty() {
                    return Err(read_error(
                        "CA file (tls.ca_file)",
                        path,
                        "no certificate in it",
                    ));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "no system CA certificates found; give the receiver's CA in `tls.ca_file`"
                            .into(),
                    );
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let client = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| read_error("client certificate (tls.client_cert)", cert, e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| read_error("client key (tls.client_key)", key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("TLS client certificate and key do not fit: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client)))
}

/// The verifier behind `insecure_skip_verify`: accepts any certificate but
/// still checks the handshake signatures, so the session is at least
/// consistent.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
