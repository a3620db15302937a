//! The `[metrics]` endpoint of the real daemon binary: `/metrics` read with
//! a real Prometheus text parser (`prometheus-parse`) after feeding the
//! bundled lab series (examples/lab-4.10), checked against what was fed in;
//! per-tunnel series against the trafficstatus lines of the same moment;
//! and `/health` going 503 while the source command fails and 200 again
//! when it answers.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

use prometheus_parse::{Scrape, Value};
use support::config::DaemonConfig;
use support::daemon::{
    Daemon, checkpoint_taken_at, event_lines, file_config, lab_series, script, toml_path,
    wait_until, write_by_rename,
};
use swantrail::snapshot::SaKind;
use swantrail::track::TrackerConfig;

/// `GET path` on the endpoint: (status code, body).
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    (status, body.to_string())
}

/// `/metrics`, parsed.
fn scrape_metrics(address: &str) -> Scrape {
    let (status, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "not a whole exposition: {body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{metric} is not a number: {other:?}"),
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{metric}{labels:?} matches {} samples",
        matching.len()
    );
    matching.first().copied()
}

/// Every sample of `metric` as (label `key`, value).
fn by_label(scrape: &Scrape, metric: &str, key: &str) -> BTreeMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| {
            let v = match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{metric} is not a number: {other:?}"),
            };
            (s.labels.get(key).unwrap_or_default().to_string(), v)
        })
        .collect()
}

/// The endpoint's address, from the daemon's log line (the config asks for port 0).
fn endpoint(daemon: &Daemon) -> String {
    let mut address = None;
    wait_until(
        Duration::from_secs(30),
        "the metrics endpoint",
        daemon,
        || {
            address = daemon
                .own_log()
                .lines()
                .find_map(|l| l.split("metrics endpoint on http://").nth(1))
                .and_then(|rest| rest.split('/').next())
                .map(String::from);
            address.is_some()
        },
    );
    address.unwrap_or_default()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn metrics_after_the_lab_series_count_every_poll_event_and_delivery_and_show_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = file_config(root)
        .source_with("settle", "30ms")
        .table("metrics", "listen", "127.0.0.1:0")
        .write();
    let series = lab_series();
    let started = unix_now();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let address = endpoint(&daemon);
    let state = root.join("state");
    for (epoch, dump) in &series {
        write_by_rename(
            &root.join("watch/status.txt"),
            &fs::read_to_string(dump).unwrap(),
            *epoch,
        );
        wait_until(
            Duration::from_secs(20),
            &format!("dump {epoch} checkpointed"),
            &daemon,
            || checkpoint_taken_at(&state, "lab") == Some(*epoch),
        );
    }
    // What the daemon should have made of it: the same series replayed by
    // the library, with the daemon's hostname.
    let expected = support::replay(&support::lab_inputs(false), TrackerConfig::new("gw-test"));
    let mut expected_actions: BTreeMap<String, f64> = BTreeMap::new();
    for event in &expected {
        *expected_actions
            .entry(event.action().to_string())
            .or_default() += 1.0;
    }
    let out = root.join("out");
    wait_until(
        Duration::from_secs(30),
        "every event delivered",
        &daemon,
        || event_lines(&out).len() == expected.len(),
    );
    let scrape = scrape_metrics(&address);

    let polls = by_label(&scrape, "swantrail_polls_total", "outcome");
    assert_eq!(
        polls.get("snapshot"),
        Some(&(series.len() as f64)),
        "{polls:?}"
    );
    assert_eq!(polls.get("unreachable"), None, "{polls:?}");
    assert_eq!(polls.get("incomplete"), None, "{polls:?}");
    assert_eq!(
        by_label(&scrape, "swantrail_events_total", "action"),
        expected_actions
    );
    let diagnostics: usize = series
        .iter()
        .map(|(epoch, dump)| support::snapshot(dump, *epoch).diagnostics.len())
        .sum();
    assert_eq!(
        value(
            &scrape,
            "swantrail_parse_diagnostics_total",
            &[("source", "lab")]
        ),
        Some(diagnostics as f64)
    );
    let sink = [("sink", "file")];
    assert_eq!(
        value(&scrape, "swantrail_sink_delivered_events_total", &sink),
        Some(expected.len() as f64)
    );
    for zero in [
        "swantrail_sink_retried_events_total",
        "swantrail_sink_dead_lettered_events_total",
        "swantrail_sink_dropped_events_total",
        "swantrail_spool_events",
        "swantrail_spool_bytes",
        "swantrail_sink_failing",
    ] {
        assert_eq!(value(&scrape, zero, &sink), Some(0.0), "{zero}");
    }
    let source = [("source", "lab")];
    let last_poll = value(
        &scrape,
        "swantrail_last_successful_poll_timestamp_seconds",
        &source,
    )
    .unwrap();
    assert!(
        (started..=unix_now()).contains(&last_poll),
        "last poll {last_poll} outside the run"
    );
    let age = value(&scrape, "swantrail_checkpoint_age_seconds", &source).unwrap();
    assert!((0.0..60.0).contains(&age), "checkpoint age {age}");

    // The gateway gauges are the last dump's, counted here from its states.
    let (last_epoch, last_dump) = series.last().unwrap();
    let last = support::snapshot(last_dump, *last_epoch);
    assert_eq!(
        value(&scrape, "swantrail_tunnels_up", &source),
        Some(last.tunnels_up().len() as f64)
    );
    let mut ike: BTreeMap<String, f64> = BTreeMap::new();
    let mut child: BTreeMap<String, f64> = BTreeMap::new();
    let mut half_open = 0.0;
    for state in &last.states {
        let name = state.name.clone().unwrap();
        match state.kind {
            Some(SaKind::Ike) => {
                *ike.entry(name).or_default() += 1.0;
                if !state.established {
                    half_open += 1.0;
                }
            }
            Some(SaKind::Child) => *child.entry(name).or_default() += 1.0,
            None => panic!("state #{} of the lab dump has no kind", state.serial),
        }
    }
    assert!(half_open > 0.0, "the lab's dead peers never answer");
    assert_eq!(by_label(&scrape, "swantrail_ike_sas", "state"), ike);
    assert_eq!(by_label(&scrape, "swantrail_child_sas", "state"), child);
    assert_eq!(
        value(&scrape, "swantrail_half_open_negotiations", &source),
        Some(half_open)
    );
    let connections = by_label(&scrape, "swantrail_connection_tunnels_up", "connection");
    assert_eq!(connections.len(), last.connections.len(), "{connections:?}");
    for tunnel in last.tunnels_up() {
        assert_eq!(
            connections.get(tunnel.name.as_str()),
            Some(&1.0),
            "{}",
            tunnel.name
        );
    }
    assert_eq!(
        connections.values().filter(|n| **n == 0.0).count(),
        last.connections.len() - last.tunnels_up().len()
    );
    assert!(daemon.terminate().success());
}

#[test]
fn health_is_503_with_the_reason_while_the_command_fails_and_200_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let series = lab_series();
    let (epoch, status) = series.last().unwrap();
    let traffic = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "examples/lab-4.10/series-trafficstatus/trafficstatus-{epoch}.txt"
    ));
    let up = root.join("pluto-up");
    fs::write(&up, "").unwrap();
    // pluto answering while `pluto-up` exists, as `ipsec whack` fails when it is not running.
    let whack = script(
        &root.join("whack"),
        &format!(
            "[ -f {up} ] || {{ echo 'connect(pluto_ctl) failed: No such file or directory' >&2; exit 1; }}\ncat {dump}\n",
            up = toml_path(&up),
            dump = toml_path(status),
        ),
    );
    let config = DaemonConfig::new(root)
        .table("metrics", "listen", "127.0.0.1:0")
        .table("metrics", "max_tunnel_series", 2)
        .command_source("pluto", &[whack.to_str().unwrap()])
        .with("extra_argv", vec![vec!["cat", traffic.to_str().unwrap()]])
        .with("interval", "200ms")
        .with("jitter", "0s")
        .with("timeout", "10s")
        .file_sink("", &root.join("out/events.ndjson"))
        .write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let address = endpoint(&daemon);
    let mut health = (0, String::new());
    wait_until(Duration::from_secs(30), "/health 200", &daemon, || {
        health = get(&address, "/health");
        health.0 == 200
    });
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&health.1).unwrap()["status"],
        "ok"
    );

    // The per-tunnel series, capped at two, against the trafficstatus lines.
    let scrape = scrape_metrics(&address);
    let lines = fs::read_to_string(&traffic).unwrap();
    let traffic_of = |connection: &str, key: &str| -> f64 {
        let line = lines
            .lines()
            .find(|l| l.contains(&format!("\"{connection}\"")))
            .unwrap();
        let field = line
            .split(", ")
            .find_map(|f| f.strip_prefix(&format!("{key}=")))
            .unwrap();
        field.parse().unwrap()
    };
    let bytes_in = by_label(&scrape, "swantrail_tunnel_in_bytes", "connection");
    assert_eq!(
        bytes_in.len(),
        2,
        "capped at max_tunnel_series: {bytes_in:?}"
    );
    for (connection, bytes) in &bytes_in {
        assert_eq!(*bytes, traffic_of(connection, "inBytes"), "{connection}");
        let labels = [("connection", connection.as_str()), ("peer", "192.0.2.2")];
        assert_eq!(
            value(&scrape, "swantrail_tunnel_out_bytes", &labels),
            Some(traffic_of(connection, "outBytes"))
        );
        assert_eq!(
            value(
                &scrape,
                "swantrail_tunnel_up_since_timestamp_seconds",
                &labels
            ),
            Some(traffic_of(connection, "add_time"))
        );
    }
    let up_tunnels = lines.lines().filter(|l| l.contains("type=ESP")).count();
    assert_eq!(
        value(
            &scrape,
            "swantrail_tunnel_series_left_out",
            &[("kind", "tunnel")]
        ),
        Some((up_tunnels - 2) as f64)
    );

    fs::remove_file(&up).unwrap();
    wait_until(Duration::from_secs(30), "/health 503", &daemon, || {
        health = get(&address, "/health");
        health.0 == 503
    });
    let reason: serde_json::Value = serde_json::from_str(&health.1).unwrap();
    assert_eq!(reason["status"], "failing");
    let why = reason["reasons"][0].as_str().unwrap();
    assert!(
        why.contains("source `pluto` last polled successfully")
            && why.contains("unreachable: command-failed"),
        "{why}"
    );
    let scrape_down = scrape_metrics(&address);
    assert_eq!(
        value(&scrape_down, "swantrail_source_up", &[("source", "pluto")]),
        Some(0.0)
    );
    assert!(
        value(
            &scrape_down,
            "swantrail_polls_total",
            &[("outcome", "unreachable")]
        )
        .unwrap()
            >= 1.0
    );

    fs::write(&up, "").unwrap();
    wait_until(
        Duration::from_secs(30),
        "/health 200 again",
        &daemon,
        || get(&address, "/health").0 == 200,
    );
    assert_eq!(get(&address, "/nothing").0, 404);
    assert!(daemon.terminate().success());
}

#[test]
fn a_sink_that_cannot_deliver_makes_health_503_and_counts_its_retries_and_spool() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, status) = lab_series().pop().unwrap();
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = DaemonConfig::new(root)
        .set("shutdown_grace", "1s")
        .table("metrics", "listen", "127.0.0.1:0")
        .command_source("pluto", &["cat", status.to_str().unwrap()])
        .with("interval", "200ms")
        .with("jitter", "0s")
        .http_sink("collector", &format!("http://{closed}/"), "ndjson")
        .retry("initial_backoff", "50ms")
        .retry("max_backoff", "200ms")
        .write();
    let daemon = Daemon::start(&config, &root.join("stderr.log"));
    let address = endpoint(&daemon);
    let mut health = (0, String::new());
    wait_until(
        Duration::from_secs(30),
        "/health 503 for the sink",
        &daemon,
        || {
            health = get(&address, "/health");
            health.0 == 503 && health.1.contains("sink `collector`")
        },
    );
    let reason: serde_json::Value = serde_json::from_str(&health.1).unwrap();
    let reasons = reason["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "only the sink fails: {reasons:?}");
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .starts_with("sink `collector` is failing and retrying"),
        "{reasons:?}"
    );
    let mut scrape = scrape_metrics(&address);
    wait_until(Duration::from_secs(30), "two retries", &daemon, || {
        scrape = scrape_metrics(&address);
        let sink = [("sink", "collector")];
        value(&scrape, "swantrail_sink_retried_events_total", &sink).unwrap_or(0.0) >= 2.0
    });
    let sink = [("sink", "collector")];
    let queued: f64 = by_label(&scrape, "swantrail_events_total", "action")
        .values()
        .sum();
    assert!(queued > 0.0);
    assert_eq!(
        value(&scrape, "swantrail_spool_events", &sink),
        Some(queued)
    );
    assert!(value(&scrape, "swantrail_spool_bytes", &sink).unwrap() > queued);
    assert_eq!(value(&scrape, "swantrail_sink_failing", &sink), Some(1.0));
    assert_eq!(
        value(&scrape, "swantrail_sink_delivered_events_total", &sink),
        Some(0.0)
    );
    assert!(daemon.terminate().success());
}
