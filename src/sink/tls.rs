//! TLS for every sink that speaks it (http, syslog): one `[sink.tls]` table,
//! one reader for it, one rustls client configuration built from it, and one
//! failure policy.
//!
//! The policy: the files the table names are read when the sink starts
//! ([`check_files`] places what is wrong at its key for `check-config` and
//! `run` alike, `file:line: ...`) and again on SIGHUP, where a file that no
//! longer reads keeps the last good configuration and says why. A receiver
//! whose certificate fails verification later is a delivery failure like
//! any other: the events stay spooled and the drain logs the change of state
//! once. This module must never turn certificate verification off unless the
//! configuration says `verify = false` (or its deprecated syslog alias
//! `insecure_skip_verify = true`), and never start a sink on a file it could
//! not read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Deserialize;
use toml::Spanned;

use crate::sink::SinkConfig;
use crate::toml_config::{ConfigError, Validator, error_at_key};

/// The `[sink.tls]` table of a sink, as the sink uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain), for receivers that authenticate senders...
    pub client_cert: Option<PathBuf>,
    /// ...and its private key.
    pub client_key: Option<PathBuf>,
    /// `false` accepts any server certificate: for a lab only, warned at every start.
    pub verify: bool,
    /// The name the receiver's certificate must carry; `None` uses the host
    /// of the sink's `url` or `address` (for a receiver reached by an
    /// address its certificate does not name).
    pub server_name: Option<String>,
    /// The table said `insecure_skip_verify`, the old syslog name of
    /// `verify`: it still works, and start and `check-config` say it is deprecated.
    pub deprecated_alias: bool,
}

impl Default for TlsSettings {
    /// The system's CA certificates, no client certificate, verification on.
    fn default() -> TlsSettings {
        TlsSettings {
            ca_file: None,
            client_cert: None,
            client_key: None,
            verify: true,
            server_name: None,
            deprecated_alias: false,
        }
    }
}

/// The `[sink.tls]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    ca_file: Option<Spanned<PathBuf>>,
    client_cert: Option<Spanned<PathBuf>>,
    client_key: Option<Spanned<PathBuf>>,
    verify: Option<Spanned<bool>>,
    server_name: Option<Spanned<String>>,
    insecure_skip_verify: Option<Spanned<bool>>,
}

impl RawTls {
    /// Where `server_name` is written, for a sink that cannot use it (the
    /// kafka sink: librdkafka checks each broker's certificate against
    /// the host it connects to).
    pub(crate) fn server_name_span(&self) -> Option<std::ops::Range<usize>> {
        self.server_name.as_ref().map(Spanned::span)
    }
}

/// Whether a sink still takes `insecure_skip_verify` (syslog did before
/// `verify` was shared; http never did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alias {
    /// `insecure_skip_verify = true` means `verify = false`, with a warning.
    Deprecated,
    /// The key is refused with what to write instead.
    Refused,
}

impl TlsSettings {
    /// The `[sink.tls]` table: the files are only named here, read at start
    /// (see [`check_files`]), so that the configuration can be checked on
    /// another machine.
    pub(crate) fn read(
        reader: &Validator<'_>,
        raw: Option<Spanned<RawTls>>,
        alias: Alias,
    ) -> Result<TlsSettings, ConfigError> {
        let Some(raw) = raw else {
            return Ok(TlsSettings::default());
        };
        let raw = raw.into_inner();
        if raw.client_cert.is_some() != raw.client_key.is_some() {
            let at = raw.client_cert.as_ref().or(raw.client_key.as_ref());
            if let Some(at) = at {
                return reader.key_error(
                    at.span(),
                    "`tls.client_cert` and `tls.client_key` go together: give both or neither"
                        .into(),
                );
            }
        }
        if let Some(name) = &raw.server_name
            && ServerName::try_from(name.get_ref().as_str()).is_err()
        {
            return reader.error(
                name.span(),
                format!(
                    "invalid `tls.server_name` \"{}\": write a DNS name or an IP address",
                    name.get_ref()
                ),
            );
        }
        let deprecated_alias = raw.insecure_skip_verify.is_some();
        let verify = match (raw.verify, raw.insecure_skip_verify) {
            (Some(_), Some(alias)) => {
                return reader.key_error(
                    alias.span(),
                    "give `tls.verify` or its deprecated alias `tls.insecure_skip_verify`, not both; keep `verify`".into(),
                );
            }
            (_, Some(skip)) if alias == Alias::Refused => {
                return reader.key_error(
                    skip.span(),
                    format!(
                        "`tls.insecure_skip_verify` is the old syslog name; write `verify = {}`",
                        !skip.get_ref()
                    ),
                );
            }
            (_, Some(skip)) => !skip.into_inner(),
            (verify, None) => verify.is_none_or(Spanned::into_inner),
        };
        Ok(TlsSettings {
            deprecated_alias,
            ca_file: raw.ca_file.map(Spanned::into_inner),
            client_cert: raw.client_cert.map(Spanned::into_inner),
            client_key: raw.client_key.map(Spanned::into_inner),
            verify,
            server_name: raw.server_name.map(Spanned::into_inner),
        })
    }

    /// The rustls client configuration: the files are read now.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify {
            let roots = Arc::new(self.roots()?);
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| TlsError::Setup(rustls::Error::General(e.to_string())))?;
            match &self.server_name {
                None => webpki,
                Some(name) => Arc::new(ExpectName {
                    inner: webpki,
                    name: server_name(name)?,
                }),
            }
        } else {
            Arc::new(AcceptAnyCertificate(provider))
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TlsError::read(File::ClientCert, cert, e))?;
                if chain.is_empty() {
                    return Err(TlsError::read(
                        File::ClientCert,
                        cert,
                        "no certificate in it",
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| TlsError::read(File::ClientKey, key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::ClientIdentity)
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err(TlsError::HalfIdentity),
        }
    }

    /// The CA certificates of `ca_file`, or the system's.
    fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        let Some(path) = &self.ca_file else {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
            return Ok(roots);
        };
        let read = |e: &dyn std::fmt::Display| TlsError::read(File::Ca, path, e);
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| read(&e))? {
            roots
                .add(cert.map_err(|e| read(&e))?)
                .map_err(|e| read(&e))?;
        }
        if roots.is_empty() {
            return Err(read(&"no certificate in it"));
        }
        Ok(roots)
    }

    /// The name the receiver's certificate is checked against: `server_name`,
    /// or `host` (of the sink's address).
    pub fn expected_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        server_name(self.server_name.as_deref().unwrap_or(host))
    }

    /// Logs, once at the sink's start, what in these settings weakens or
    /// is about to change: verification off, the deprecated alias.
    pub fn warn_at_start(&self, sink: &str, peer: &str) {
        if self.deprecated_alias {
            tracing::warn!(
                sink = %sink,
                "sink `{sink}`: `tls.insecure_skip_verify` is deprecated; write `tls.verify = {}` instead (it means the same)",
                self.verify
            );
        }
        if !self.verify {
            tracing::warn!(
                sink = %sink,
                "sink `{sink}`: TLS certificate verification is OFF (tls.verify = false): anyone on the path to {peer} can read and forge these events"
            );
        }
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string()).map_err(|_| TlsError::ServerName(name.to_string()))
}

/// A file of `[sink.tls]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// `ca_file`.
    Ca,
    /// `client_cert`.
    ClientCert,
    /// `client_key`.
    ClientKey,
}

impl File {
    /// Its key in `[sink.tls]`.
    pub fn key(self) -> &'static str {
        match self {
            File::Ca => "ca_file",
            File::ClientCert => "client_cert",
            File::ClientKey => "client_key",
        }
    }

    fn what(self) -> &'static str {
        match self {
            File::Ca => "CA file (tls.ca_file)",
            File::ClientCert => "client certificate (tls.client_cert)",
            File::ClientKey => "client key (tls.client_key)",
        }
    }
}

/// Why a TLS client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file of the table is missing, unreadable or holds nothing usable.
    #[error("cannot read the {} {}: {reason}", file.what(), path.display())]
    Read {
        /// Which file.
        file: File,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No `ca_file` and no system CA certificates.
    #[error("no system CA certificates found; give the receiver's CA in `tls.ca_file`")]
    NoSystemRoots,
    /// The client certificate and key do not belong together.
    #[error("TLS client certificate and key do not fit: {0}")]
    ClientIdentity(rustls::Error),
    /// Only one of `client_cert` and `client_key` (the config reader refuses it).
    #[error("`tls.client_cert` and `tls.client_key` go together: give both or neither")]
    HalfIdentity,
    /// The name to check the certificate against is not a DNS name or an IP address.
    #[error("`{0}` is not a valid TLS server name; set `tls.server_name`")]
    ServerName(String),
    /// rustls refused the settings.
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
}

impl TlsError {
    fn read(file: File, path: &Path, reason: impl std::fmt::Display) -> TlsError {
        TlsError::Read {
            file,
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// The key of `[sink.tls]` to fix, where one is to blame.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            TlsError::Read { file, .. } => Some(file.key()),
            TlsError::NoSystemRoots => Some(File::Ca.key()),
            TlsError::ClientIdentity(_) | TlsError::HalfIdentity => Some(File::ClientKey.key()),
            TlsError::ServerName(_) => Some("server_name"),
            TlsError::Setup(_) => None,
        }
    }
}

/// The TLS settings of a configured sink, if it speaks TLS.
pub fn settings_of(sink: &SinkConfig) -> Option<&TlsSettings> {
    match sink {
        SinkConfig::Syslog(s) if s.transport == crate::sink::syslog::Transport::Tls => Some(&s.tls),
        SinkConfig::Http(h) if h.url.scheme() == "https" => Some(&h.client.tls),
        SinkConfig::Kafka(k) => k.tls.as_ref(),
        _ => None,
    }
}

/// Reads the TLS files of every configured sink (the `[[sink]]` tables of
/// `text`, the file `origin`, in order) as the sinks will at start; each
/// failure is placed at its key, `origin:line:column: sink `name`: ...`.
pub fn check_files(sinks: &[SinkConfig], text: &str, origin: &Path) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (index, sink) in sinks.iter().enumerate() {
        let Some(tls) = settings_of(sink) else {
            continue;
        };
        if let Err(e) = tls.client_config() {
            let key = match e.key() {
                Some(key) => format!("sink.{index}.tls.{key}"),
                None => format!("sink.{index}.tls"),
            };
            let message = format!("sink `{}`: {e}", sink.name());
            errors.push(error_at_key(text, origin, &key, message));
        }
    }
    errors
}

/// Where `insecure_skip_verify` is still written, as warnings placed at the
/// key (`check-config` prints them and still accepts the file).
pub fn deprecations(sinks: &[SinkConfig], text: &str, origin: &Path) -> Vec<ConfigError> {
    sinks
        .iter()
        .enumerate()
        .filter(|(_, sink)| settings_of(sink).is_some_and(|t| t.deprecated_alias))
        .map(|(index, sink)| {
            error_at_key(
                text,
                origin,
                &format!("sink.{index}.tls.insecure_skip_verify"),
                format!(
                    "warning: sink `{}`: `tls.insecure_skip_verify` is deprecated; write `tls.verify = {}` instead (it means the same)",
                    sink.name(),
                    settings_of(sink).is_some_and(|t| t.verify)
                ),
            )
        })
        .collect()
}

/// Checks the receiver's certificate against `server_name` rather than the
/// host that was dialled (for a receiver reached by an address its
/// certificate does not name).
#[derive(Debug)]
struct ExpectName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The verifier behind `verify = false`: accepts any certificate but still
/// checks the handshake signatures, so the session is at least consistent.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
