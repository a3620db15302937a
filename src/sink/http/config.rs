//! The HTTP sink's own keys in a `[[sink]] type = "http"` table: reading
//! them, their defaults, and the checks that keep secrets out of the file.
//!
//! An operator's mistake comes back as one line naming the key and the fix,
//! like every config error. A secret is only ever named by where it is
//! (`password_file`, `token_env`, ...): a `url` with credentials or an
//! `Authorization` header is refused, and no message here may echo a value
//! that could be one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::client::{Auth, ClientSettings, SecretSource, TlsSettings};
use super::{Compression, HttpSinkConfig, Mode, elasticsearch, splunk};
use crate::sink::SinkHeader;
use crate::toml_config::{ConfigError, DurationValue, Validator, read_table};

/// The keys of an http [[sink]] beyond the shared ones.
pub(crate) const CONFIG_KEYS: &[&str] = &[
    "url",
    "mode",
    "compression",
    "headers",
    "auth",
    "user",
    "password_file",
    "password_env",
    "token_file",
    "token_env",
    "index",
    "source",
    "sourcetype",
    "connect_timeout",
    "request_timeout",
    "tls",
];

/// The http sink's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSink {
    url: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    compression: Option<Spanned<Compression>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    auth: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    token_env: Option<Spanned<String>>,
    index: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    sourcetype: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<DurationValue>>,
    request_timeout: Option<Spanned<DurationValue>>,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    verify: Option<bool>,
}

impl HttpSinkConfig {
    /// An http [[sink]] from its shared header and its own keys.
    pub(crate) fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<HttpSinkConfig, ConfigError> {
        let raw: RawHttpSink = read_table(reader, own)?;
        let Some(url_text) = raw.url else {
            return reader.error(
                header.span.clone(),
                "an `http` [[sink]] needs `url`, e.g. \"https://es.example.net:9200\"".into(),
            );
        };
        let url = match reqwest::Url::parse(url_text.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
            _ => {
                return reader.error(
                    url_text.span(),
                    format!(
                        "`url` \"{}\" is not an http:// or https:// URL",
                        url_text.get_ref()
                    ),
                );
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoed: the URL holds a credential.
            return reader.error(
                url_text.span(),
                "`url` must not carry credentials (user:password@); use `auth` with `password_file` or `password_env`".into(),
            );
        }
        let mode_name = raw.mode.as_ref().map_or("ndjson", |m| m.get_ref().as_str());
        let mode_span = raw.mode.as_ref().map_or(header.span.clone(), Spanned::span);
        let only_for = |key: &str, v: Option<std::ops::Range<usize>>, modes: &str| match v {
            Some(span) => {
                reader.key_error(span, format!("key `{key}` only applies to mode {modes}"))
            }
            None => Ok(()),
        };
        let span_of = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
        let mode = match mode_name {
            "ndjson" | "otlp" => {
                only_for(
                    "index",
                    span_of(&raw.index),
                    "\"elasticsearch\" or \"splunk-hec\"",
                )?;
                only_for("source", span_of(&raw.source), "\"splunk-hec\"")?;
                only_for("sourcetype", span_of(&raw.sourcetype), "\"splunk-hec\"")?;
                if mode_name == "otlp" {
                    Mode::Otlp
                } else {
                    Mode::Ndjson
                }
            }
            "elasticsearch" => {
                only_for("source", span_of(&raw.source), "\"splunk-hec\"")?;
                only_for("sourcetype", span_of(&raw.sourcetype), "\"splunk-hec\"")?;
                let (text, span) = match &raw.index {
                    Some(i) => (i.get_ref().as_str(), i.span()),
                    None => (elasticsearch::DEFAULT_INDEX, header.span.clone()),
                };
                match elasticsearch::IndexName::parse(text) {
                    Ok(index) => Mode::Elasticsearch { index },
                    Err(e) => return reader.error(span, e),
                }
            }
            "splunk-hec" => Mode::SplunkHec(splunk::Envelope {
                source: raw
                    .source
                    .as_ref()
                    .map_or_else(|| "swantrail".to_string(), |s| s.get_ref().clone()),
                sourcetype: raw.sourcetype.as_ref().map_or_else(
                    || splunk::DEFAULT_SOURCETYPE.to_string(),
                    |s| s.get_ref().clone(),
                ),
                index: raw.index.as_ref().map(|i| i.get_ref().clone()),
            }),
            other => {
                return reader.error(
                    mode_span,
                    format!(
                        "unknown `mode` \"{other}\": write \"ndjson\", \"elasticsearch\", \"splunk-hec\" or \"otlp\""
                    ),
                );
            }
        };
        let secret = |file: Option<Spanned<PathBuf>>,
                      env: Option<Spanned<String>>,
                      file_key: &str,
                      env_key: &str,
                      why: &str|
         -> Result<Option<SecretSource>, ConfigError> {
            match (file, env) {
                (Some(f), Some(e)) => {
                    let _ = f;
                    reader.key_error(
                        e.span(),
                        format!("give either `{file_key}` or `{env_key}`, not both"),
                    )
                }
                (Some(f), None) => Ok(Some(SecretSource::File(f.into_inner()))),
                (None, Some(e)) if e.get_ref().is_empty() => reader.error(
                    e.span(),
                    format!("`{env_key}` names an environment variable and cannot be empty"),
                ),
                (None, Some(e)) => Ok(Some(SecretSource::Env(e.into_inner()))),
                (None, None) if why.is_empty() => Ok(None),
                (None, None) => reader.error(
                    header.span.clone(),
                    format!("{why} needs `{file_key}` or `{env_key}` (the secret itself never goes in this file)"),
                ),
            }
        };
        let auth_name = raw.auth.as_ref().map(|a| a.get_ref().as_str());
        let auth_span = raw.auth.as_ref().map_or(header.span.clone(), Spanned::span);
        let user_span = raw.user.as_ref().map(Spanned::span);
        let password_span = raw
            .password_file
            .as_ref()
            .map(Spanned::span)
            .or(span_of(&raw.password_env));
        let token_span = raw
            .token_file
            .as_ref()
            .map(Spanned::span)
            .or(span_of(&raw.token_env));
        let not_with = |span: Option<std::ops::Range<usize>>, key: &str, auth: &str| match span {
            Some(span) => reader.key_error(span, format!("key `{key}` does not apply to {auth}")),
            None => Ok(()),
        };
        let auth = match (mode_name, auth_name) {
            ("splunk-hec", None | Some("splunk")) => {
                not_with(user_span, "user", "HEC's token authentication")?;
                not_with(password_span, "password_file", "HEC's token authentication")?;
                let token = secret(
                    raw.token_file,
                    raw.token_env,
                    "token_file",
                    "token_env",
                    "mode \"splunk-hec\"",
                )?;
                match token {
                    Some(token) => Auth::Bearer {
                        scheme: "Splunk".into(),
                        token,
                    },
                    None => Auth::None,
                }
            }
            (_, None | Some("none")) => {
                not_with(
                    user_span,
                    "user",
                    "`auth = \"none\"`; set `auth = \"basic\"`",
                )?;
                not_with(
                    password_span,
                    "password_file/password_env",
                    "`auth = \"none\"`; set `auth = \"basic\"`",
                )?;
                not_with(
                    token_span,
                    "token_file/token_env",
                    "`auth = \"none\"`; set `auth = \"bearer\"`",
                )?;
                Auth::None
            }
            (_, Some("basic")) => {
                not_with(token_span, "token_file/token_env", "`auth = \"basic\"`")?;
                let Some(user) = raw.user else {
                    return reader.error(auth_span, "`auth = \"basic\"` needs `user`".into());
                };
                let password = secret(
                    raw.password_file,
                    raw.password_env,
                    "password_file",
                    "password_env",
                    "`auth = \"basic\"`",
                )?;
                match password {
                    Some(password) => Auth::Basic {
                        user: user.into_inner(),
                        password,
                    },
                    None => Auth::None,
                }
            }
            (_, Some(scheme @ ("bearer" | "apikey"))) => {
                not_with(user_span, "user", "token authentication")?;
                not_with(
                    password_span,
                    "password_file/password_env",
                    "token authentication",
                )?;
                let token = secret(
                    raw.token_file,
                    raw.token_env,
                    "token_file",
                    "token_env",
                    "token authentication",
                )?;
                match token {
                    Some(token) => Auth::Bearer {
                        scheme: if scheme == "bearer" {
                            "Bearer"
                        } else {
                            "ApiKey"
                        }
                        .into(),
                        token,
                    },
                    None => Auth::None,
                }
            }
            (_, Some(other)) => {
                return reader.error(
                    auth_span,
                    format!("unknown `auth` \"{other}\": write \"none\", \"basic\", \"bearer\" or \"apikey\" (for splunk-hec the token is implied)"),
                );
            }
        };
        let mut headers = Vec::new();
        if let Some(h) = raw.headers {
            let span = h.span();
            for (key, value) in h.into_inner() {
                if key.eq_ignore_ascii_case("authorization") {
                    return reader.key_error(
                        span,
                        "`headers` must not set Authorization (a secret would sit in this file); use `auth` with a file or environment variable".into(),
                    );
                }
                if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(&value).is_err()
                {
                    return reader.key_error(
                        span,
                        format!("`headers`: \"{key}\" is not a valid HTTP header name and value"),
                    );
                }
                headers.push((key, value));
            }
        }
        let tls = match raw.tls {
            None => TlsSettings {
                verify: true,
                ..TlsSettings::default()
            },
            Some(t) => {
                let span = t.span();
                let t = t.into_inner();
                if t.client_cert.is_some() != t.client_key.is_some() {
                    return reader.key_error(
                        span,
                        "`tls.client_cert` and `tls.client_key` go together".into(),
                    );
                }
                TlsSettings {
                    ca_file: t.ca_file,
                    client_cert: t.client_cert,
                    client_key: t.client_key,
                    verify: t.verify.unwrap_or(true),
                }
            }
        };
        let timeout = |v: Option<Spanned<DurationValue>>, key: &str, default: u64| match v {
            Some(v) => reader.positive(v, key),
            None => Ok(Duration::from_secs(default)),
        };
        Ok(HttpSinkConfig {
            name: header.name,
            url,
            mode,
            compression: raw
                .compression
                .map_or(Compression::Gzip, Spanned::into_inner),
            auth,
            client: ClientSettings {
                tls,
                connect_timeout: timeout(raw.connect_timeout, "connect_timeout", 10)?,
                request_timeout: timeout(raw.request_timeout, "request_timeout", 30)?,
                headers,
            },
            spool: header.spool,
            retry: header.retry,
        })
    }
}
