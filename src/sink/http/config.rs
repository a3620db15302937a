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

use super::client::{Auth, ClientSettings, SecretSource};
use super::{Compression, HttpSinkConfig, Mode, elasticsearch, splunk};
use crate::sink::SinkHeader;
use crate::sink::tls::{Alias, RawTls, TlsSettings};
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

/// `mode` as written, before its own keys make it a [`Mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeName {
    Ndjson,
    Elasticsearch,
    SplunkHec,
    Otlp,
}

/// `auth` as written, or the token scheme splunk-hec implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthName {
    None,
    Basic,
    Bearer,
    ApiKey,
    Splunk,
}

/// The keys that say where the credentials are.
struct RawAuth {
    auth: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    token_env: Option<Spanned<String>>,
}

/// The keys that only some modes take.
struct RawModeKeys {
    mode: Option<Spanned<String>>,
    index: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    sourcetype: Option<Spanned<String>>,
}

/// Where a value is in the config text.
type Span = std::ops::Range<usize>;

impl HttpSinkConfig {
    /// An http [[sink]] from its shared header and its own keys.
    pub(crate) fn read(
        reader: &Validator<'_>,
        header: SinkHeader,
        own: Spanned<DeTable<'_>>,
    ) -> Result<HttpSinkConfig, ConfigError> {
        let raw: RawHttpSink = read_table(reader, own)?;
        let table = header.span.clone();
        let url = read_url(reader, raw.url, &table)?;
        let modes = RawModeKeys {
            mode: raw.mode,
            index: raw.index,
            source: raw.source,
            sourcetype: raw.sourcetype,
        };
        let (name, mode) = read_mode(reader, modes, &table)?;
        let auth = RawAuth {
            auth: raw.auth,
            user: raw.user,
            password_file: raw.password_file,
            password_env: raw.password_env,
            token_file: raw.token_file,
            token_env: raw.token_env,
        };
        let auth = read_auth(reader, auth, name, &table)?;
        let headers = read_headers(reader, raw.headers)?;
        let tls = read_tls(reader, raw.tls, &url)?;
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
            encoding: header.encoding,
        })
    }
}

/// `url`: required, http or https, without credentials.
fn read_url(
    reader: &Validator<'_>,
    url: Option<Spanned<String>>,
    table: &Span,
) -> Result<reqwest::Url, ConfigError> {
    let Some(text) = url else {
        return reader.error(
            table.clone(),
            "an `http` [[sink]] needs `url`, e.g. \"https://es.example.net:9200\"".into(),
        );
    };
    let url = match reqwest::Url::parse(text.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
        _ => {
            return reader.error(
                text.span(),
                format!(
                    "`url` \"{}\" is not an http:// or https:// URL",
                    text.get_ref()
                ),
            );
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds a credential.
        return reader.error(
            text.span(),
            "`url` must not carry credentials (user:password@); use `auth` with `password_file` or `password_env`".into(),
        );
    }
    Ok(url)
}

/// `mode` and the keys of the mode it names (`index`, `source`, `sourcetype`).
fn read_mode(
    reader: &Validator<'_>,
    raw: RawModeKeys,
    table: &Span,
) -> Result<(ModeName, Mode), ConfigError> {
    let name = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("ndjson", _)) => ModeName::Ndjson,
        Some(("elasticsearch", _)) => ModeName::Elasticsearch,
        Some(("splunk-hec", _)) => ModeName::SplunkHec,
        Some(("otlp", _)) => ModeName::Otlp,
        Some((other, span)) => {
            return reader.error(
                span,
                format!(
                    "unknown `mode` \"{other}\": write \"ndjson\", \"elasticsearch\", \"splunk-hec\" or \"otlp\""
                ),
            );
        }
    };
    let only_for = |key: &str, value: &Option<Spanned<String>>, modes: &str| match value {
        Some(v) => reader.key_error(
            v.span(),
            format!("key `{key}` only applies to mode {modes}"),
        ),
        None => Ok(()),
    };
    if matches!(name, ModeName::Ndjson | ModeName::Otlp) {
        only_for("index", &raw.index, "\"elasticsearch\" or \"splunk-hec\"")?;
    }
    if name != ModeName::SplunkHec {
        only_for("source", &raw.source, "\"splunk-hec\"")?;
        only_for("sourcetype", &raw.sourcetype, "\"splunk-hec\"")?;
    }
    let mode = match name {
        ModeName::Ndjson => Mode::Ndjson,
        ModeName::Otlp => Mode::Otlp,
        ModeName::Elasticsearch => {
            let (text, span) = match &raw.index {
                Some(i) => (i.get_ref().as_str(), i.span()),
                None => (elasticsearch::DEFAULT_INDEX, table.clone()),
            };
            match elasticsearch::IndexName::parse(text) {
                Ok(index) => Mode::Elasticsearch { index },
                Err(e) => return reader.error(span, e.to_string()),
            }
        }
        ModeName::SplunkHec => Mode::SplunkHec(splunk::Envelope {
            source: raw
                .source
                .map_or_else(|| "swantrail".to_string(), Spanned::into_inner),
            sourcetype: raw.sourcetype.map_or_else(
                || splunk::DEFAULT_SOURCETYPE.to_string(),
                Spanned::into_inner,
            ),
            index: raw.index.map(Spanned::into_inner),
        }),
    };
    Ok((name, mode))
}

/// `auth` and where its secret is; splunk-hec implies its token scheme.
fn read_auth(
    reader: &Validator<'_>,
    raw: RawAuth,
    mode: ModeName,
    table: &Span,
) -> Result<Auth, ConfigError> {
    let auth_span = raw.auth.as_ref().map_or(table.clone(), Spanned::span);
    let name = match (mode, raw.auth.as_ref().map(|a| a.get_ref().as_str())) {
        (ModeName::SplunkHec, None | Some("splunk")) => AuthName::Splunk,
        (_, None | Some("none")) => AuthName::None,
        (_, Some("basic")) => AuthName::Basic,
        (_, Some("bearer")) => AuthName::Bearer,
        (_, Some("apikey")) => AuthName::ApiKey,
        (_, Some(other)) => {
            return reader.error(
                auth_span,
                format!("unknown `auth` \"{other}\": write \"none\", \"basic\", \"bearer\" or \"apikey\" (for splunk-hec the token is implied)"),
            );
        }
    };
    refuse_other_credentials(reader, &raw, name)?;
    let token = |scheme: &str, why: &str| {
        let keys = ("token_file", "token_env");
        let source = read_secret(reader, raw.token_file, raw.token_env, keys, why, table)?;
        Ok(source.map_or(Auth::None, |token| Auth::Bearer {
            scheme: scheme.into(),
            token,
        }))
    };
    match name {
        AuthName::None => Ok(Auth::None),
        AuthName::Splunk => token("Splunk", "mode \"splunk-hec\""),
        AuthName::Bearer => token("Bearer", "token authentication"),
        AuthName::ApiKey => token("ApiKey", "token authentication"),
        AuthName::Basic => {
            let Some(user) = raw.user else {
                return reader.error(auth_span, "`auth = \"basic\"` needs `user`".into());
            };
            let keys = ("password_file", "password_env");
            let why = "`auth = \"basic\"`";
            let password = read_secret(
                reader,
                raw.password_file,
                raw.password_env,
                keys,
                why,
                table,
            )?;
            Ok(password.map_or(Auth::None, |password| Auth::Basic {
                user: user.into_inner(),
                password,
            }))
        }
    }
}

/// The credential keys that `auth` does not use, refused by name.
fn refuse_other_credentials(
    reader: &Validator<'_>,
    raw: &RawAuth,
    name: AuthName,
) -> Result<(), ConfigError> {
    let either = |file: &Option<Spanned<PathBuf>>, env: &Option<Spanned<String>>| {
        file.as_ref()
            .map(Spanned::span)
            .or(env.as_ref().map(Spanned::span))
    };
    let user = raw.user.as_ref().map(Spanned::span);
    let password = either(&raw.password_file, &raw.password_env);
    let token = either(&raw.token_file, &raw.token_env);
    let not_with = |span: Option<Span>, key: &str, auth: &str| match span {
        Some(span) => reader.key_error(span, format!("key `{key}` does not apply to {auth}")),
        None => Ok(()),
    };
    match name {
        AuthName::Splunk => {
            const HEC: &str = "HEC's token authentication";
            not_with(user, "user", HEC)?;
            not_with(password, "password_file", HEC)
        }
        AuthName::None => {
            not_with(user, "user", "`auth = \"none\"`; set `auth = \"basic\"`")?;
            let basic = "`auth = \"none\"`; set `auth = \"basic\"`";
            not_with(password, "password_file/password_env", basic)?;
            let bearer = "`auth = \"none\"`; set `auth = \"bearer\"`";
            not_with(token, "token_file/token_env", bearer)
        }
        AuthName::Basic => not_with(token, "token_file/token_env", "`auth = \"basic\"`"),
        AuthName::Bearer | AuthName::ApiKey => {
            not_with(user, "user", "token authentication")?;
            not_with(
                password,
                "password_file/password_env",
                "token authentication",
            )
        }
    }
}

/// Where one secret is: a file or an environment variable, never both;
/// `why` (when not empty) says what needs it.
pub(crate) fn read_secret(
    reader: &Validator<'_>,
    file: Option<Spanned<PathBuf>>,
    env: Option<Spanned<String>>,
    (file_key, env_key): (&str, &str),
    why: &str,
    table: &Span,
) -> Result<Option<SecretSource>, ConfigError> {
    match (file, env) {
        (Some(_), Some(e)) => reader.key_error(
            e.span(),
            format!("give either `{file_key}` or `{env_key}`, not both"),
        ),
        (Some(f), None) => Ok(Some(SecretSource::File(f.into_inner()))),
        (None, Some(e)) if e.get_ref().is_empty() => reader.error(
            e.span(),
            format!("`{env_key}` names an environment variable and cannot be empty"),
        ),
        (None, Some(e)) => Ok(Some(SecretSource::Env(e.into_inner()))),
        (None, None) if why.is_empty() => Ok(None),
        (None, None) => reader.error(
            table.clone(),
            format!("{why} needs `{file_key}` or `{env_key}` (the secret itself never goes in this file)"),
        ),
    }
}

/// `headers`: valid HTTP, and never `Authorization` (a secret in the file).
fn read_headers(
    reader: &Validator<'_>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(headers) = headers else {
        return Ok(Vec::new());
    };
    let span = headers.span();
    let mut read = Vec::new();
    for (key, value) in headers.into_inner() {
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
        read.push((key, value));
    }
    Ok(read)
}

/// `[sink.tls]`, which only an https `url` uses.
fn read_tls(
    reader: &Validator<'_>,
    tls: Option<Spanned<RawTls>>,
    url: &reqwest::Url,
) -> Result<TlsSettings, ConfigError> {
    if let Some(table) = &tls
        && url.scheme() != "https"
    {
        return reader.key_error(
            table.span(),
            "the [sink.tls] table does not apply to an http:// `url`; write https:// or remove it"
                .into(),
        );
    }
    TlsSettings::read(reader, tls, Alias::Refused)
}
