//! The HTTP client of a sink: TLS (the shared `[sink.tls]` configuration
//! of `crate::sink::tls`), timeouts, and the credentials read from files or
//! the environment.
//!
//! Secrets are read here and nowhere else, kept in a type whose `Debug` and
//! `Display` print `<redacted>`, and put in headers marked sensitive, so no
//! log line at any level, no error message and no dead letter can carry
//! one. Files are read again on SIGHUP (a fixed password takes effect
//! without a restart). This module must never format a secret into a
//! string that leaves it, and never turn TLS verification off unless the
//! configuration says so.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::sink::tls::TlsError;

/// Where a secret comes from; the config holds this, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the secret (a trailing newline is ignored); mode 0600 advised.
    File(PathBuf),
    /// An environment variable of the daemon.
    Env(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// A secret in memory; it cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    /// The secret itself, only for a client library that keeps it as one
    /// (librdkafka's `sasl.password`, which it never logs); never for a
    /// string that leaves the process.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl SecretSource {
    /// Reads the secret now; the error names the source, never the content.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let unreadable = |e: &dyn fmt::Display| SecretError::Read {
            from: self.clone(),
            reason: e.to_string(),
        };
        let text = match self {
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| unreadable(&e))?
            }
            SecretSource::Env(name) => std::env::var(name).map_err(|e| unreadable(&e))?,
        };
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(SecretError::Empty(self.clone()));
        }
        if secret.contains(['\n', '\r']) {
            return Err(SecretError::SeveralLines(self.clone()));
        }
        Ok(Secret(secret.to_string()))
    }
}

/// Why a secret cannot be used; names where it is, never what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The file or the environment variable cannot be read.
    #[error("cannot read the secret from {from}: {reason}")]
    Read {
        /// Where the secret was looked for.
        from: SecretSource,
        /// The I/O or environment error.
        reason: String,
    },
    /// Nothing but a newline.
    #[error("the secret from {0} is empty")]
    Empty(SecretSource),
    /// A secret is one line; more is a file given by mistake.
    #[error("the secret from {0} has more than one line")]
    SeveralLines(SecretSource),
    /// It cannot go in an `Authorization` header.
    #[error(
        "the secret holds characters an HTTP header cannot carry (control characters or non-ASCII)"
    )]
    NotHeaderText,
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name (not a secret).
        user: String,
        /// Where the password is.
        password: SecretSource,
    },
    /// `Authorization: Bearer <token>` (an Elasticsearch API key takes `ApiKey`; see `scheme`).
    Bearer {
        /// The scheme word: `Bearer`, or `ApiKey` for Elasticsearch API keys.
        scheme: String,
        /// Where the token is.
        token: SecretSource,
    },
}

/// The `Authorization` header value for `auth`, read now, marked sensitive.
pub fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, SecretError> {
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::Basic { user, password } => {
            let Secret(password) = password.read()?;
            format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
        }
        Auth::Bearer { scheme, token } => {
            let Secret(token) = token.read()?;
            format!("{scheme} {token}")
        }
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| SecretError::NotHeaderText)?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `[sink.tls]` table, shared by every TLS sink (named here too, where
/// the http sink's settings have always been).
pub use crate::sink::tls::TlsSettings;

/// Everything the client is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// TLS.
    pub tls: TlsSettings,
    /// Giving up on a TCP + TLS connect after this long.
    pub connect_timeout: Duration,
    /// Giving up on a whole request (connect, send, answer) after this long.
    pub request_timeout: Duration,
    /// Extra headers sent with every request (not secrets: they are shown by `check-config`).
    pub headers: Vec<(String, String)>,
}

/// Why the HTTP client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `[sink.tls]` files.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A `headers` name (the config reader refuses it first).
    #[error("header name \"{0}\" is not a valid HTTP header name")]
    HeaderName(String),
    /// A `headers` value (the config reader refuses it first).
    #[error("the value of header {0} is not a valid HTTP header value")]
    HeaderValue(String),
    /// reqwest refused the settings.
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
}

/// Builds the client; for an `https` receiver the TLS files (CA, client
/// certificate) are read now, for a plain `http` one no CA at all.
pub fn build(settings: &ClientSettings, https: bool) -> Result<reqwest::Client, ClientError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &settings.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::HeaderName(name.clone()))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| ClientError::HeaderValue(name.to_string()))?;
        headers.insert(name, value);
    }
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .user_agent(concat!("swantrail/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .pool_idle_timeout(Duration::from_secs(30));
    if https {
        let mut tls = settings.tls.client_config()?;
        // reqwest speaks HTTP/1.1 only here (no `http2` feature).
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        builder = builder.use_preconfigured_tls(tls);
    } else {
        // Without this reqwest reads and parses the system's CA
        // certificates (about 300, 1 MB of heap held for the client's
        // life) for a receiver it never speaks TLS to.
        builder = builder.tls_built_in_root_certs(false);
    }
    builder.build().map_err(|e| ClientError::Build(chain(&e)))
}

/// An error and its causes in one line (`a: b: c`), without repeats.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn a_secret_file_is_read_without_its_newline_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let source = SecretSource::File(path);
        let secret = source.read().unwrap();
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let auth = Auth::Bearer {
            scheme: "Bearer".into(),
            token: source,
        };
        let value = authorization(&auth).unwrap().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer s3cr3t");
        assert!(!format!("{value:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_missing_or_empty_secret_names_its_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = SecretSource::File(empty.clone())
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is empty") && e.contains(&empty.display().to_string()),
            "{e}"
        );
        let e = SecretSource::Env("SWANTRAIL_TEST_NO_SUCH_VARIABLE".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(e.contains("SWANTRAIL_TEST_NO_SUCH_VARIABLE"), "{e}");
    }

    #[test]
    fn basic_credentials_are_user_colon_password_in_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "open sesame").unwrap();
        let auth = Auth::Basic {
            user: "Aladdin".into(),
            password: SecretSource::File(path),
        };
        let value = authorization(&auth).unwrap().unwrap();
        assert_eq!(
            value.to_str().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
