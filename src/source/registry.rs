//! The registry of source kinds: the one list of every kind of
//! `[[source]]`, and the one place that reads a `[[source]]` table and
//! starts the source it describes.
//!
//! A kind (command, file, linux-audit, pluto-log) owns its `type` name, its own keys and
//! their reader, in its own file, as a [`SourceKind`] that [`KINDS`]
//! lists. The keys every source has, `type` and `name`, are its common
//! header: read here, once, before the kind's own reader runs; a key of
//! another kind is refused here too, so that no reader has to know the
//! others. A Linux audit or pluto-log source makes no snapshots: it is tied
//! here to the snapshot source of its pluto. This module must never read a key of a
//! kind itself.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use toml::Spanned;
use toml::de::DeTable;

use super::command::CommandSourceConfig;
use super::file::FileSourceConfig;
use super::linux_audit::{LinuxAuditFrom, LinuxAuditSourceConfig};
use super::pluto_log::{PlutoLogFrom, PlutoLogSourceConfig};
use super::{Report, command, file, linux_audit, pluto_log};
use crate::toml_config::{
    ConfigError, Errors, Validator, read_table, split_table, unknown_key, unknown_type,
};

/// One kind of source, as its own file describes it to the registry.
pub(crate) struct SourceKind {
    /// The `type` of its `[[source]]` tables.
    pub(crate) type_name: &'static str,
    /// The kind in the words of an error: "a `command` [[source]]".
    pub(crate) what: &'static str,
    /// The `type` the kind was first written with, still read as this
    /// kind so that operators' configurations keep working. It stays the
    /// default `name` under either type: the name labels metrics and log
    /// lines, which must not change when a configuration moves to the new
    /// type.
    pub(crate) old_type_name: Option<OldTypeName>,
    /// Whether it sends snapshots (and has a tracker of its own); an audit
    /// source only adds records to the tracker of another.
    pub(crate) makes_snapshots: bool,
    /// Its keys beyond the common header, so that a key of another kind is
    /// reported as not applying to this one rather than as unknown.
    pub(crate) config_keys: &'static [&'static str],
    /// Its settings from the common header and its own keys.
    pub(crate) read: ReadKind,
}

/// A kind's first `type`, still accepted (see [`SourceKind::old_type_name`]).
pub(crate) struct OldTypeName {
    /// The `type` as first written.
    pub(crate) type_name: &'static str,
    /// The kind in the words of an error about a table of that `type`.
    pub(crate) what: &'static str,
}

impl SourceKind {
    /// Whether a table's `type` names this kind, under its name or its
    /// first one.
    fn named(&self, type_name: &str) -> bool {
        self.type_name == type_name
            || self
                .old_type_name
                .as_ref()
                .is_some_and(|o| o.type_name == type_name)
    }

    /// The kind in the words of an error about a table written with
    /// `type_name`: the words of the type the operator wrote.
    fn what(&self, type_name: &str) -> &'static str {
        match &self.old_type_name {
            Some(old) if old.type_name == type_name => old.what,
            _ => self.what,
        }
    }

    /// The `name` of a table that gives none.
    fn default_name(&self) -> &'static str {
        self.old_type_name
            .as_ref()
            .map_or(self.type_name, |o| o.type_name)
    }
}

/// How one kind reads its own keys.
pub(crate) type ReadKind =
    fn(&Validator<'_>, SourceHeader, Spanned<DeTable<'_>>) -> Result<ReadSource, ConfigError>;

/// The registry: every kind of source, in the order an unknown `type`
/// lists them.
pub(crate) const KINDS: &[SourceKind] = &[
    command::KIND,
    file::KIND,
    linux_audit::KIND,
    pluto_log::KIND,
];

/// The common header of every `[[source]]`, read before its own keys.
pub(crate) struct SourceHeader {
    /// The unique name (default: the type).
    pub(crate) name: String,
    /// Where the table's `type` is, for errors about the table as a whole.
    pub(crate) span: std::ops::Range<usize>,
    /// The kind in the words of an error, under the `type` as written.
    pub(crate) what: &'static str,
}

/// The keys of the common header.
const HEADER_KEYS: &[&str] = &["type", "name"];

/// The common header as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceHeader {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    name: Option<Spanned<String>>,
}

/// What one `[[source]]` table turned out to be.
pub(crate) enum ReadSource {
    /// A source of snapshots, with a tracker of its own.
    Snapshot(SourceConfig),
    /// A Linux audit source, until it is tied to its snapshot source.
    LinuxAudit(PendingLinuxAudit),
    /// A pluto-log source, until it is tied to its snapshot source.
    PlutoLog(PendingPlutoLog),
}

/// A pluto-log source whose snapshot source is not settled yet.
pub(crate) struct PendingPlutoLog {
    /// Its unique name.
    pub(crate) name: String,
    /// The snapshot source it names, if it names one.
    pub(crate) pluto: Option<Spanned<String>>,
    /// Where its lines are read.
    pub(crate) from: PlutoLogFrom,
    /// Where its table's `type` is, for errors about `pluto`.
    pub(crate) span: std::ops::Range<usize>,
    /// The kind in the words of those errors.
    pub(crate) what: &'static str,
}

/// A Linux audit source whose snapshot source is not settled yet.
pub(crate) struct PendingLinuxAudit {
    /// Its unique name.
    pub(crate) name: String,
    /// The snapshot source it names, if it names one.
    pub(crate) pluto: Option<Spanned<String>>,
    /// Where its records are read.
    pub(crate) from: LinuxAuditFrom,
    /// Where its pluto writes its pid.
    pub(crate) pid_file: PathBuf,
    /// Where its table's `type` is, for errors about `pluto`.
    pub(crate) span: std::ops::Range<usize>,
    /// The kind in the words of those errors.
    pub(crate) what: &'static str,
}

/// One `[[source]]` table: the common header here, the kind's own keys by
/// its reader; `names` are those of the sources read before it.
pub(crate) fn read(
    reader: &Validator<'_>,
    table: Spanned<DeTable<'_>>,
    names: &mut Vec<String>,
) -> Result<ReadSource, ConfigError> {
    let (header, own) = split_table(table, HEADER_KEYS);
    let raw: RawSourceHeader = read_table(reader, header)?;
    let kind_span = raw.kind.span();
    let kind = raw.kind.into_inner();
    let Some(found) = KINDS.iter().find(|k| k.named(&kind)) else {
        return unknown_type(reader, &kind, kind_span, KINDS.iter().map(|k| k.type_name));
    };
    for (key, _) in own.get_ref().iter() {
        let name = key.get_ref().as_ref();
        if found.config_keys.contains(&name) {
            continue;
        }
        let owners = || KINDS.iter().filter(|k| k.config_keys.contains(&name));
        if owners().next().is_none() {
            return unknown_key(
                reader,
                name,
                key.span(),
                "[[source]]",
                HEADER_KEYS,
                found.config_keys,
            );
        }
        // A key only audit sources have is said not to apply to snapshot
        // sources as a whole: that is the mistake, not the kind.
        let what = if found.makes_snapshots && owners().all(|k| !k.makes_snapshots) {
            "a snapshot [[source]]"
        } else {
            found.what(&kind)
        };
        return reader.key_error(key.span(), format!("key `{name}` does not apply to {what}"));
    }
    let header = SourceHeader {
        name: reader.name(
            raw.name,
            found.default_name(),
            "[[source]]",
            kind_span.clone(),
            names,
        )?,
        span: kind_span,
        what: found.what(&kind),
    };
    (found.read)(reader, header, own)
}

/// The sources of a configuration once every source that makes no
/// snapshots is tied to the one that does for the same pluto.
pub(crate) struct TiedSources {
    /// The snapshot sources (command, file).
    pub(crate) sources: Vec<SourceConfig>,
    /// The Linux audit sources.
    pub(crate) audit: Vec<LinuxAuditSourceConfig>,
    /// The pluto-log sources.
    pub(crate) pluto_log: Vec<PlutoLogSourceConfig>,
}

/// Ties every Linux audit and pluto-log source to its snapshot source: the
/// one `pluto` names, or the only one there is. Two audit sources (or two
/// log sources) for one pluto would feed it every record twice.
pub(crate) fn tie_to_snapshot_sources(
    reader: &Validator<'_>,
    parsed: Vec<ReadSource>,
    errors: &mut Errors,
) -> TiedSources {
    let mut sources = Vec::new();
    let mut pending_audit = Vec::new();
    let mut pending_log = Vec::new();
    for p in parsed {
        match p {
            ReadSource::Snapshot(s) => sources.push(s),
            ReadSource::LinuxAudit(a) => pending_audit.push(a),
            ReadSource::PlutoLog(l) => pending_log.push(l),
        }
    }
    if (!pending_audit.is_empty() || !pending_log.is_empty()) && sources.is_empty() {
        sources.push(SourceConfig::Command(CommandSourceConfig::default()));
    }
    let mut audit: Vec<LinuxAuditSourceConfig> = Vec::new();
    for PendingLinuxAudit {
        name,
        pluto,
        from,
        pid_file,
        span,
        what,
    } in pending_audit
    {
        let taken: Vec<&str> = audit.iter().map(|a| a.pluto.as_str()).collect();
        let tied = tie(reader, &sources, pluto, span, what, &taken, "audit", errors);
        if let Some(pluto) = tied {
            audit.push(LinuxAuditSourceConfig {
                name,
                pluto,
                from,
                pid_file,
            });
        }
    }
    let mut pluto_log: Vec<PlutoLogSourceConfig> = Vec::new();
    for PendingPlutoLog {
        name,
        pluto,
        from,
        span,
        what,
    } in pending_log
    {
        let taken: Vec<&str> = pluto_log.iter().map(|l| l.pluto.as_str()).collect();
        let tied = tie(
            reader,
            &sources,
            pluto,
            span,
            what,
            &taken,
            "pluto-log",
            errors,
        );
        if let Some(pluto) = tied {
            pluto_log.push(PlutoLogSourceConfig { name, pluto, from });
        }
    }
    TiedSources {
        sources,
        audit,
        pluto_log,
    }
}

/// The snapshot source one source that makes no snapshots belongs to, or
/// `None` with the reason in `errors`. `taken` are the snapshot sources
/// already fed by a source of the same `kind`.
#[allow(clippy::too_many_arguments)]
fn tie(
    reader: &Validator<'_>,
    sources: &[SourceConfig],
    pluto: Option<Spanned<String>>,
    span: std::ops::Range<usize>,
    what: &str,
    taken: &[&str],
    kind: &str,
    errors: &mut Errors,
) -> Option<String> {
    let target = match pluto {
        Some(p) => {
            let known = sources.iter().any(|s| s.name() == p.get_ref());
            if !known {
                let names: Vec<&str> = sources.iter().map(SourceConfig::name).collect();
                errors.0.push(reader.invalid(
                    p.span(),
                    format!(
                        "`pluto` names no command or file [[source]]: {:?} is not one of {}",
                        p.get_ref(),
                        names.join(", ")
                    ),
                ));
                return None;
            }
            p.into_inner()
        }
        None if sources.len() == 1 => sources[0].name().to_string(),
        None => {
            errors.0.push(reader.invalid(
                span,
                format!("{what} next to several snapshot sources needs `pluto`, the name of the one watching the same pluto"),
            ));
            return None;
        }
    };
    if taken.contains(&target.as_str()) {
        errors.0.push(reader.invalid(
            span,
            format!("two {kind} sources feed the source {target:?}; one per pluto is enough (each would repeat every record)"),
        ));
        return None;
    }
    Some(target)
}

/// One place snapshots come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// Run a command (by default `ipsec whack --status`) every interval.
    Command(CommandSourceConfig),
    /// Watch a file that something else rewrites with status dumps.
    File(FileSourceConfig),
}

/// A running source: the task the daemon spawns.
pub type Running = Pin<Box<dyn Future<Output = ()> + Send>>;

impl SourceConfig {
    /// The name used in logs and in the checkpoint, unique among sources.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Command(c) => &c.name,
            SourceConfig::File(f) => &f.name,
        }
    }

    /// How often it looks when it looks on a clock (a command source
    /// polls); `None` for a source that looks when told (a file watch).
    pub fn interval(&self) -> Option<Duration> {
        match self {
            SourceConfig::Command(c) => Some(c.interval),
            SourceConfig::File(_) => None,
        }
    }

    /// The source's task, sending its reports over `tx`; `last_sha256` is
    /// the digest of the content its tracker saw last (from the
    /// checkpoint), so that a file source does not send it again.
    pub fn run(self, last_sha256: Option<String>, tx: mpsc::Sender<Report>) -> Running {
        match self {
            SourceConfig::Command(c) => Box::pin(command::run(c, tx)),
            SourceConfig::File(f) => Box::pin(file::run(f, last_sha256, tx)),
        }
    }
}
