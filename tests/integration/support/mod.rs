//! What the integration tests share, so that each is written once: the
//! real daemon under test and its configuration (`daemon`, `config`), real
//! receivers for its sinks (`http_receiver`, `syslog`, `gated_sink`, the
//! Kafka broker and consumer `kafka`) and the
//! HTTP sink's fixtures (`http_sink`), pluto's own logs as the truth
//! (`pluto_log`), and here replaying real dumps and checking every event
//! against the published JSON Schema. It drives the real binary and the
//! real library; it never stands in for either.
#![allow(dead_code)]

pub mod config;
pub mod daemon;
pub mod gated_sink;
pub mod http_receiver;
pub mod http_sink;
pub mod kafka;
pub mod pluto_log;
pub mod syslog;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use swantrail::event::Event;
use swantrail::source::replay;
use swantrail::track::{Tracker, TrackerConfig};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `swantrail ARGS` with `input` on its stdin and its stdout captured, as
/// `report` is fed events.
pub fn swantrail_fed(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run swantrail");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("swantrail's output")
}

/// The bundled lab series: status dumps, and trafficstatus of the same moments.
pub fn lab_inputs(with_traffic: bool) -> Vec<PathBuf> {
    let mut v = vec![root().join("examples/lab-4.10/series")];
    if with_traffic {
        v.push(root().join("examples/lab-4.10/series-trafficstatus"));
    }
    v
}

/// The lab's `west` tracker configuration.
pub fn west() -> TrackerConfig {
    TrackerConfig::new("west")
}

/// Replay inputs with a fresh tracker, returning the events of every step.
pub fn replay(inputs: &[PathBuf], config: TrackerConfig) -> Vec<Event> {
    let mut tracker = Tracker::new(config);
    let mut out = Vec::new();
    for step in replay::plan(inputs).expect("plan") {
        let snap = replay::load_step(&step).expect("load");
        out.extend(tracker.observe(&snap));
    }
    out
}

/// Parse one dump file at a given time.
pub fn snapshot(path: &Path, taken_at: i64) -> swantrail::Snapshot {
    let step = replay::ReplayStep {
        taken_at,
        files: vec![path.to_path_buf()],
    };
    replay::load_step(&step).expect("load")
}

/// Assert that every event validates against `docs/event.schema.json`.
pub fn assert_schema_valid(events: &[Event]) {
    let values: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.to_json_line()).expect("event JSON"))
        .collect();
    assert_json_schema_valid(&values);
}

/// Assert that every JSON event (as a daemon wrote it) validates against
/// `docs/event.schema.json`.
pub fn assert_json_schema_valid(events: &[serde_json::Value]) {
    let text = std::fs::read_to_string(root().join("docs/event.schema.json")).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    for value in events {
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|err| format!("{} at {}", err, err.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }
}

/// (action, serial, replaces) of an event, for compact assertions.
pub fn sa_of(e: &Event) -> (String, Option<u64>, Option<u64>) {
    let sa = e.libreswan.sa.as_ref();
    (
        e.action().to_string(),
        sa.map(|s| s.serial),
        sa.and_then(|s| s.replaces),
    )
}

/// The connection name of an event.
pub fn conn_of(e: &Event) -> Option<&str> {
    e.libreswan.connection.as_ref().map(|c| c.name.as_str())
}

/// The Unix time of an event.
pub fn time_of(e: &Event) -> i64 {
    time::OffsetDateTime::parse(&e.timestamp, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
        .unix_timestamp()
}

/// The validator of OCSF 1.8 Tunnel Activity (class 4014): the JSON Schema
/// that `scripts/ocsf-schema.sh` made from the OCSF schema a registry
/// package ships, not a hand-written one.
pub fn ocsf_validator() -> jsonschema::Validator {
    let path = root().join("docs/ocsf-tunnel-activity.schema.json");
    let text = std::fs::read_to_string(&path).expect("the OCSF schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the OCSF schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the OCSF schema compiles")
}

/// Assert that every JSON value is a valid OCSF 1.8 Tunnel Activity event.
pub fn assert_ocsf_valid(events: &[serde_json::Value]) {
    let validator = ocsf_validator();
    for value in events {
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|err| format!("{} at {}", err, err.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{value}: {errors:?}");
    }
}
