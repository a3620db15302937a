//! The `swantrail.toml` of a daemon under test, built key by key instead of
//! written out as a template in every test: the state directory, the
//! sources and the sinks, each with only the keys the test cares about.
//!
//! It only writes configurations that are meant to load: the tests of
//! configuration mistakes and their messages keep their literal TOML, since
//! the exact text and its line numbers are what they check.

use std::fs;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// Which array of tables a key given to [`DaemonConfig::with`] goes to.
#[derive(Clone, Copy)]
enum Last {
    Source,
    Sink,
}

/// A daemon configuration under `root`: `state_dir` is `root/state` and the
/// hostname `gw-test` unless the test says otherwise.
#[derive(Clone)]
pub struct DaemonConfig {
    root: PathBuf,
    top: Table,
    sources: Vec<Table>,
    sinks: Vec<Table>,
    last: Option<Last>,
}

/// A path as a TOML value; the temporary directories of tests are UTF-8.
fn path_value(path: &Path) -> Value {
    Value::String(
        path.to_str()
            .unwrap_or_else(|| panic!("not UTF-8: {}", path.display()))
            .to_string(),
    )
}

/// The table `name` inside `table`, made if missing.
fn sub_table<'a>(table: &'a mut Table, name: &str) -> &'a mut Table {
    let value = table
        .entry(name.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    match value {
        Value::Table(sub) => sub,
        other => panic!("`{name}` is already {other}, not a table"),
    }
}

impl DaemonConfig {
    /// A configuration with no source and no sink yet.
    pub fn new(root: &Path) -> DaemonConfig {
        let config = DaemonConfig {
            root: root.to_path_buf(),
            top: Table::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            last: None,
        };
        config.state_dir(&root.join("state")).hostname("gw-test")
    }

    /// Where the daemon keeps its checkpoints and spools.
    pub fn state_dir(self, path: &Path) -> DaemonConfig {
        self.set("state_dir", path_value(path))
    }

    /// The `observer.hostname` of every event.
    pub fn hostname(self, name: &str) -> DaemonConfig {
        self.set("hostname", name)
    }

    /// A top-level key (e.g. `shutdown_grace`).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        self.top.insert(key.to_string(), value.into());
        self
    }

    /// A key of a top-level table: `[tracker]`, `[log]`, `[metrics]`.
    pub fn table(mut self, table: &str, key: &str, value: impl Into<Value>) -> DaemonConfig {
        sub_table(&mut self.top, table).insert(key.to_string(), value.into());
        self
    }

    /// A `[[source]]` of this type, with a name unless `name` is empty (the
    /// daemon then names it after its type).
    pub fn source(mut self, kind: &str, name: &str) -> DaemonConfig {
        let mut table = Table::new();
        table.insert("type".into(), kind.into());
        if !name.is_empty() {
            table.insert("name".into(), name.into());
        }
        self.sources.push(table);
        self.last = Some(Last::Source);
        self
    }

    /// A file source watching `path` (its directory is made).
    pub fn file_source(self, name: &str, path: &Path) -> DaemonConfig {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        self.source("file", name).with("path", path_value(path))
    }

    /// A command source running `argv` (polled as the command source's
    /// defaults say, unless the test adds `interval` and the like).
    pub fn command_source(self, name: &str, argv: &[&str]) -> DaemonConfig {
        let argv: Vec<Value> = argv.iter().map(|a| Value::from(*a)).collect();
        self.source("command", name).with("argv", argv)
    }

    /// A `[[sink]]` of this type, with a name unless `name` is empty.
    pub fn sink(mut self, kind: &str, name: &str) -> DaemonConfig {
        let mut table = Table::new();
        table.insert("type".into(), kind.into());
        if !name.is_empty() {
            table.insert("name".into(), name.into());
        }
        self.sinks.push(table);
        self.last = Some(Last::Sink);
        self
    }

    /// A file sink writing `path` (its directory is made).
    pub fn file_sink(self, name: &str, path: &Path) -> DaemonConfig {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        self.sink("file", name).with("path", path_value(path))
    }

    /// An HTTP sink posting to `url` in `mode` (`ndjson`, `splunk-hec`, ...).
    pub fn http_sink(self, name: &str, url: &str, mode: &str) -> DaemonConfig {
        self.sink("http", name).with("url", url).with("mode", mode)
    }

    /// A key of the source or sink added last.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        self.last_table().insert(key.to_string(), value.into());
        self
    }

    /// A key of the source added last, when a sink came after it.
    pub fn source_with(mut self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        let source = self
            .sources
            .last_mut()
            .expect("add a source before its keys");
        source.insert(key.to_string(), value.into());
        self
    }

    /// A path-valued key of the source or sink added last.
    pub fn with_path(self, key: &str, path: &Path) -> DaemonConfig {
        self.with(key, path_value(path))
    }

    /// A key of the last sink's `[sink.spool]`.
    pub fn spool(self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        self.sink_table("spool", key, value.into())
    }

    /// A key of the last sink's `[sink.retry]`.
    pub fn retry(self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        self.sink_table("retry", key, value.into())
    }

    /// A key of the last sink's `[sink.tls]`.
    pub fn tls(self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        self.sink_table("tls", key, value.into())
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        let mut whole = self.top.clone();
        for (key, tables) in [("source", &self.sources), ("sink", &self.sinks)] {
            if !tables.is_empty() {
                let array = tables.iter().cloned().map(Value::Table).collect();
                whole.insert(key.to_string(), Value::Array(array));
            }
        }
        toml::to_string(&whole).expect("a table of plain values is TOML")
    }

    /// Write `root/swantrail.toml`, returning its path.
    pub fn write(&self) -> PathBuf {
        let path = self.root.join("swantrail.toml");
        fs::write(&path, self.to_toml()).unwrap();
        path
    }

    fn last_table(&mut self) -> &mut Table {
        let table = match self.last {
            Some(Last::Source) => self.sources.last_mut(),
            Some(Last::Sink) => self.sinks.last_mut(),
            None => None,
        };
        table.expect("add a source or a sink before its keys")
    }

    fn sink_table(mut self, table: &str, key: &str, value: Value) -> DaemonConfig {
        let sink = self.sinks.last_mut().expect("add a sink before its tables");
        sub_table(sink, table).insert(key.to_string(), value);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::DaemonConfig;

    #[test]
    fn a_built_config_loads_with_each_key_in_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let text = DaemonConfig::new(root)
            .set("shutdown_grace", "3s")
            .table("metrics", "listen", "127.0.0.1:0")
            .file_source("lab", &root.join("watch/status.txt"))
            .with("settle", "30ms")
            .file_sink("", &root.join("out/events.ndjson"))
            .spool("batch_max_wait", "20ms")
            .http_sink("collector", "http://127.0.0.1:9/", "ndjson")
            .retry("initial_backoff", "50ms")
            .source("audit", "audit")
            .with("from", "netlink")
            .with("pluto", "lab")
            .to_toml();
        let config = swantrail::config::from_toml_str(&text, Path::new("built.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.state_dir, root.join("state"));
        assert_eq!(config.hostname.as_deref(), Some("gw-test"));
        assert_eq!(config.shutdown_grace, Duration::from_secs(3));
        assert_eq!(config.sources.len(), 1, "{text}");
        assert_eq!(config.audit.len(), 1, "{text}");
        assert_eq!(config.sinks.len(), 2, "{text}");
        assert!(config.metrics.is_some(), "{text}");
    }
}
