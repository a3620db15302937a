//! Reading a TOML file so that every mistake is one line with its place:
//! the `file:line:column` of the key or value, what is wrong and what to
//! write instead. Durations (`"10s"`), sizes (`"16MiB"`), names, and the
//! [`Validator`] every table reader (the top-level table, each source and
//! each sink kind) reports through.
//!
//! It is apart from `config` so that the sinks and sources, which read
//! their own keys, import only these helpers and never the table that
//! lists them. It must never import a source, a sink or `config`, and
//! never open anything but the text it is given.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(crate) const KIB: u64 = 1024;
pub(crate) const MIB: u64 = 1024 * KIB;
pub(crate) const GIB: u64 = 1024 * MIB;

/// A configuration that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error: in the message, and so not also a `source` that
        /// an error chain (`{:#}`) would print a second time.
        error: std::io::Error,
    },
    /// More than one value is wrong: every one, in file order, so that one
    /// run of `check-config` names all that needs fixing.
    #[error("{}", several(.0))]
    Several(Vec<ConfigError>),
    /// The file was read but a value is wrong; `line`/`column` are 1-based.
    #[error("{}", Located { path, line: *line, column: *column, message })]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Line of the offending key or value, when known.
        line: Option<usize>,
        /// Column of the offending key or value, when known.
        column: Option<usize>,
        /// What is wrong and, where possible, what to write instead.
        message: String,
    },
}

/// One error per line.
fn several(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Collects the errors of the independent parts of a config (each top-level
/// key, each source, each sink) so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    /// The value, or `default` after keeping the error.
    pub(crate) fn keep<T>(&mut self, result: Result<T, ConfigError>, default: T) -> T {
        match result {
            Ok(value) => value,
            Err(e) => {
                self.0.push(e);
                default
            }
        }
    }

    /// `Ok(value)` when nothing was wrong; the one error, or all of them.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        self.0.sort_by_key(|e| match e {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            _ => (None, None),
        });
        match self.0.len() {
            0 => Ok(value),
            1 => Err(self.0.remove(0)),
            _ => Err(ConfigError::Several(self.0)),
        }
    }
}

struct Located<'a> {
    path: &'a Path,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A TOML or serde error at its position, with the table named in "unknown field".
pub(crate) fn toml_error(text: &str, origin: &Path, e: toml::de::Error) -> ConfigError {
    let span = e.span();
    let message = e.message().to_string();
    let message = match span.as_ref().and_then(|s| enclosing_table(text, s.start)) {
        Some(table) if message.starts_with("unknown field") => insert_table_name(&message, &table),
        _ => message,
    };
    invalid(text, origin, span.map(|s| s.start), message)
}

/// An error about the value of `key` (`state_dir`, `metrics.listen`,
/// `sink.1.tls.ca_file` for the second [[sink]]) in config `text`, at the
/// line of that key; at the header of the nearest table written out when
/// the key is not (its default applies); at no line when neither is.
///
/// For what only the machine can tell (can the state directory be written,
/// can the metrics address be bound): this module never touches either, so
/// `check-config` asks, and its answers carry positions like every other
/// mistake in the file.
pub fn error_at_key(text: &str, origin: &Path, key: &str, message: String) -> ConfigError {
    let Ok(document) = DeTable::parse(text) else {
        return invalid(text, origin, None, message);
    };
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut span = None;
    for part in key.split('.') {
        let next = match value.map(Spanned::get_ref) {
            None => document.get_ref().get(part),
            Some(DeValue::Table(table)) => table.get(part),
            Some(DeValue::Array(array)) => part.parse().ok().and_then(|i: usize| array.get(i)),
            Some(_) => None,
        };
        let Some(next) = next else {
            break;
        };
        span = Some(next.span());
        value = Some(next);
    }
    match span {
        Some(span) => Validator { text, origin }.key_invalid(span, message),
        None => invalid(text, origin, None, message),
    }
}

/// Deserialize one table (a [[sink]]'s own keys) with positions kept.
pub(crate) fn read_table<T: de::DeserializeOwned>(
    reader: &Validator<'_>,
    table: Spanned<DeTable<'_>>,
) -> Result<T, ConfigError> {
    let span = table.span();
    let value = Spanned::new(span, DeValue::Table(table.into_inner()));
    T::deserialize(toml::de::ValueDeserializer::from(value))
        .map_err(|e| toml_error(reader.text, reader.origin, e))
}
/// A `[[sink]]` or `[[source]]` table cut in two: its common header (the
/// keys of `header_keys`) and the keys of its kind, each with the table's
/// span, so that every kind reads only its own keys.
pub(crate) fn split_table<'t>(
    table: Spanned<DeTable<'t>>,
    header_keys: &[&str],
) -> (Spanned<DeTable<'t>>, Spanned<DeTable<'t>>) {
    let span = table.span();
    let (mut header, mut own) = (DeTable::new(), DeTable::new());
    for (key, value) in table.into_inner() {
        if header_keys.contains(&key.get_ref().as_ref()) {
            header.insert(key, value);
        } else {
            own.insert(key, value);
        }
    }
    (Spanned::new(span.clone(), header), Spanned::new(span, own))
}

/// "unknown variant `kind`, expected one of ...": a `type` no kind of the
/// registry has, with the types it has.
pub(crate) fn unknown_type<'a, T>(
    reader: &Validator<'_>,
    kind: &str,
    span: std::ops::Range<usize>,
    known: impl Iterator<Item = &'a str>,
) -> Result<T, ConfigError> {
    let known: Vec<String> = known.map(|name| format!("`{name}`")).collect();
    reader.error(
        span,
        format!(
            "unknown variant `{kind}`, expected one of {}",
            known.join(", ")
        ),
    )
}

/// "unknown field `key` in [[sink]], expected one of ...": a key no kind
/// has, with the keys this table may have.
pub(crate) fn unknown_key<T>(
    reader: &Validator<'_>,
    key: &str,
    span: std::ops::Range<usize>,
    table: &str,
    header_keys: &[&str],
    own_keys: &[&str],
) -> Result<T, ConfigError> {
    let expected: Vec<String> = header_keys
        .iter()
        .chain(own_keys)
        .map(|k| format!("`{k}`"))
        .collect();
    reader.error(
        span,
        format!(
            "unknown field `{key}` in {table}, expected one of {}",
            expected.join(", ")
        ),
    )
}

fn invalid(text: &str, origin: &Path, offset: Option<usize>, message: String) -> ConfigError {
    let (line, column) = match offset.map(|o| line_column(text, o)) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    ConfigError::Invalid {
        path: origin.to_path_buf(),
        line,
        column,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The `[table]` or `[[table]]` header in force at `offset`, for messages.
fn enclosing_table(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let header = before
        .lines()
        .rev()
        .skip(1)
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let end = header.find(']')?;
    let end = if header.starts_with("[[") {
        end + 2
    } else {
        end + 1
    };
    Some(header.get(..end)?.to_string())
}

/// "unknown field `x`, expected ..." becomes "unknown field `x` in [[sink]], expected ...".
fn insert_table_name(message: &str, table: &str) -> String {
    match message.find(", expected") {
        Some(i) => format!("{} in {table}{}", &message[..i], &message[i..]),
        None => format!("{message} in {table}"),
    }
}

/// A duration written as `"10s"`, `"500ms"`, `"2m"`, `"1h30m"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(DurationValue)
            .map_err(de::Error::custom)
    }
}

/// A duration that may be `"off"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionalDuration(pub(crate) Option<Duration>);

impl<'de> Deserialize<'de> for OptionalDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(OptionalDuration(None));
        }
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(de::Error::custom(
                "a zero interval is not allowed; write \"off\" to disable",
            )),
            Ok(d) => Ok(OptionalDuration(Some(d))),
            Err(e) => Err(de::Error::custom(format!("{e}, or \"off\""))),
        }
    }
}

/// A duration that is not written as a number and a unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration \"{text}\": write a number and a unit (ms, s, m, h), e.g. \"10s\", \"500ms\", \"1m30s\""
)]
pub struct InvalidDuration {
    /// What was written.
    pub text: String,
}

/// Parse `"10s"`, `"500ms"`, `"2m"`, `"1h30m"` (units ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let bad = || InvalidDuration {
        text: text.to_string(),
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A size written as an integer (bytes) or a string [`parse_byte_size`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes or a string like \"16MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A size that is not a number of bytes with an optional binary unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size \"{text}\": write a number of bytes or e.g. \"512KiB\", \"64M\", \"1GiB\" (K, M and G are powers of 1024)"
)]
pub struct InvalidSize {
    /// What was written.
    pub text: String,
}

/// Parse a size, the one rule for the config and `--max-bytes`: a number of
/// bytes, optionally followed by `B`, `K`/`KiB`, `M`/`MiB` or `G`/`GiB`
/// (`"65536"`, `"64KiB"`, `"64M"`, `"1 GiB"`). The units are powers of 1024;
/// `KB`, `MB` and lower case are refused, because `16MB` may mean 16 000 000.
pub fn parse_byte_size(text: &str) -> Result<u64, InvalidSize> {
    let bad = || InvalidSize {
        text: text.to_string(),
    };
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(bad());
    }
    let number: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = match t[digits..].trim_start() {
        "" | "B" => 1,
        "K" | "KiB" => KIB,
        "M" | "MiB" => MIB,
        "G" | "GiB" => GIB,
        _ => return Err(bad()),
    };
    number.checked_mul(unit).ok_or_else(bad)
}
/// Turns raw values into settings, reporting problems at their position
/// in the text: every table reader gets one.
pub(crate) struct Validator<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl<'a> Validator<'a> {
    /// A validator of `text`, read from `origin` (named in every error).
    pub(crate) fn new(text: &'a str, origin: &'a Path) -> Validator<'a> {
        Validator { text, origin }
    }

    /// An error at `span` of the text.
    pub(crate) fn error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(self.invalid(span, message))
    }

    /// The error of [`Validator::error`] itself, for collecting.
    pub(crate) fn invalid(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        invalid(self.text, self.origin, Some(span.start), message)
    }

    /// Position of the key whose value is at `span`: the start of its line.
    pub(crate) fn key_error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(self.key_invalid(span, message))
    }

    /// The error of [`Validator::key_error`] itself.
    pub(crate) fn key_invalid(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        let line_start = self
            .text
            .get(..span.start)
            .and_then(|b| b.rfind('\n'))
            .map_or(0, |i| i + 1);
        let indent = self
            .text
            .get(line_start..)
            .map_or(0, |l| l.len() - l.trim_start().len());
        self.invalid(line_start + indent..span.end, message)
    }
    /// A duration that must not be zero.
    pub(crate) fn positive(
        &self,
        value: Spanned<DurationValue>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let span = value.span();
        let duration = value.into_inner().0;
        if duration.is_zero() {
            return self.error(span, format!("`{key}` must be longer than 0s"));
        }
        Ok(duration)
    }

    /// A `[[source]]` or `[[sink]]` name (`name`, or `default` when unset):
    /// unique among `seen`, and fit to name a directory.
    pub(crate) fn name(
        &self,
        name: Option<Spanned<String>>,
        default: &str,
        table: &str,
        table_span: std::ops::Range<usize>,
        seen: &mut Vec<String>,
    ) -> Result<String, ConfigError> {
        let (name, span) = match name {
            Some(n) => {
                let span = n.span();
                (n.into_inner(), span)
            }
            None => (default.to_string(), table_span),
        };
        let valid = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return self.error(
                span,
                format!(
                    "invalid {table} name \"{name}\": use 1 to 64 letters, digits, '-', '_' or '.' (it names a directory)"
                ),
            );
        }
        if seen.contains(&name) {
            return self.error(
                span,
                format!(
                    "two {table} entries are named \"{name}\"; give each a distinct `name` (the default is its type)"
                ),
            );
        }
        seen.push(name.clone());
        Ok(name)
    }

    /// An error when `value` was written: `key` does not apply to `what`.
    pub(crate) fn not_for<T>(
        &self,
        key: &str,
        value: &Option<Spanned<T>>,
        what: &str,
    ) -> Result<(), ConfigError> {
        match value {
            Some(v) => self.key_error(v.span(), format!("key `{key}` does not apply to {what}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_sequences() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "10", "s", "10 s", "1.5s", "10sec", "-1s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid duration \"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn sizes_accept_bytes_and_binary_units() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_byte_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("64M"), Ok(64 << 20));
        for bad in ["", "MiB", "16MB", "16 mib", "1.5GiB"] {
            assert!(parse_byte_size(bad).is_err(), "{bad} must be refused");
        }
    }
}
