//! The one TLS policy of every TLS sink, at the binary: a `[sink.tls]` file
//! that does not read is a configuration error at its `file:line`, from
//! `check-config` and from `run` alike, before anything starts; and syslog's
//! old `insecure_skip_verify` still turns verification off, with one
//! deprecation warning at start and one from `check-config`; a file gone at
//! SIGHUP keeps the configuration that works; a receiver certificate that
//! fails keeps the events spooled with one log line for the whole outage.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::syslog::{Kind, Listen, Receiver, TestCa};
use swantrail::sink::syslog::{SyslogSink, Transport};

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
const SERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab-4.10/series");

fn toml_path(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// The 1-based number of the line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
}

/// `swantrail run --config FILE`, which must exit by itself within a
/// deadline; its success and stderr.
fn run_until_exit(config: &Path, dir: &Path) -> (bool, String) {
    let stderr = dir.join("run.stderr");
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`run` did not refuse the config; it was still running after 30s: {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), fs::read_to_string(&stderr).unwrap())
}

#[test]
fn an_http_ca_file_that_does_not_read_is_refused_at_its_line_by_check_config_and_run() {
    for (case, content) in [
        ("missing", None),
        ("not-pem", Some("this is not a certificate\n")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join(format!("{case}-ca.pem"));
        if let Some(content) = content {
            fs::write(&ca, content).unwrap();
        }
        let state = dir.path().join("state");
        let text = format!(
            r#"state_dir = {state}

[[source]]
type = "file"
path = {status}

[[sink]]
type = "stdout"

[[sink]]
type = "http"
name = "siem"
url = "https://logs.example.net:8080/ingest"

[sink.tls]
ca_file = {ca}
"#,
            state = toml_path(&state),
            status = toml_path(&dir.path().join("status.txt")),
            ca = toml_path(&ca),
        );
        let config = dir.path().join("swantrail.toml");
        fs::write(&config, &text).unwrap();
        let expected = format!(
            "{}:{}:1: sink `siem`: cannot read the CA file (tls.ca_file) {}: ",
            config.display(),
            line_of(&text, "ca_file = "),
            ca.display()
        );

        let out = Command::new(BIN)
            .arg("check-config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{case}: check-config accepted it");
        assert!(stderr.starts_with(&expected), "{case}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");

        let (ok, stderr) = run_until_exit(&config, dir.path());
        assert!(!ok, "{case}: run exited with success");
        assert!(
            stderr.starts_with(&format!("swantrail: {expected}")),
            "{case}: {stderr}"
        );
        assert!(!state.exists(), "{case}: run started before refusing");
    }
}

#[test]
fn a_syslog_client_key_that_does_not_read_is_refused_at_its_line_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("swantrail test CA");
    let (cert, _) = ca.server("client", &["client.test"]);
    let key = dir.path().join("missing.key");
    let text = format!(
        r#"state_dir = {state}

[[sink]]
type = "syslog"
transport = "tls"
address = "127.0.0.1:6514"

[sink.tls]
ca_file = {ca}
client_cert = {cert}
client_key = {key}
"#,
        state = toml_path(&dir.path().join("state")),
        ca = toml_path(&ca.ca),
        cert = toml_path(&cert),
        key = toml_path(&key),
    );
    let config = dir.path().join("swantrail.toml");
    fs::write(&config, &text).unwrap();
    let expected = format!(
        "{}:{}:1: sink `syslog`: cannot read the client key (tls.client_key) {}: ",
        config.display(),
        line_of(&text, "client_key = "),
        key.display()
    );
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stderr.starts_with(&expected), "{stderr}");
    let (ok, stderr) = run_until_exit(&config, dir.path());
    assert!(!ok);
    assert!(
        stderr.starts_with(&format!("swantrail: {expected}")),
        "{stderr}"
    );
}

#[test]
fn insecure_skip_verify_still_turns_verification_off_and_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    // Signed by a CA the sink is not given: only skipping verification lets it through.
    let stranger = TestCa::new("a CA nobody trusts");
    let (cert, key) = stranger.server("receiver", &["receiver.test"]);
    let receiver = Receiver::start(Kind::Rsyslog, Listen::Tls { cert, key });
    let watch = dir.path().join("watch");
    fs::create_dir_all(&watch).unwrap();
    let dump = fs::read_dir(SERIES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    fs::copy(&dump, watch.join("status.txt")).unwrap();
    let text = format!(
        r#"state_dir = {state}
hostname = "gw-test"

[[source]]
type = "file"
path = {watched}
settle = "50ms"

[[sink]]
type = "syslog"
name = "siem"
transport = "tls"
address = "{address}"

[sink.tls]
insecure_skip_verify = true

[sink.spool]
batch_max_wait = "20ms"

[sink.retry]
initial_backoff = "100ms"
max_backoff = "500ms"
"#,
        state = toml_path(&dir.path().join("state")),
        watched = toml_path(&watch.join("status.txt")),
        address = receiver.address(),
    );
    let config = dir.path().join("swantrail.toml");
    fs::write(&config, &text).unwrap();

    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "{}:{}:1: warning: sink `siem`: `tls.insecure_skip_verify` is deprecated; write `tls.verify = false` instead (it means the same)\n",
            config.display(),
            line_of(&text, "insecure_skip_verify = ")
        )
    );

    let log_path = dir.path().join("daemon.log");
    let mut daemon = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(&log_path).unwrap_or_default();
    let until = Instant::now() + Duration::from_secs(30);
    while receiver.count() == 0 {
        if Instant::now() > until || daemon.try_wait().unwrap().is_some() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!(
                "nothing arrived over TLS: {}\nreceiver: {}",
                log(),
                receiver.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the pid of the child this test spawned and has not reaped.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    assert!(status.success(), "{}", log());
    let log = log();
    let deprecated = log
        .lines()
        .filter(|l| l.contains("`tls.insecure_skip_verify` is deprecated"))
        .count();
    assert_eq!(deprecated, 1, "one deprecation warning:\n{log}");
    let off = log
        .lines()
        .filter(|l| l.contains("TLS certificate verification is OFF"))
        .count();
    assert_eq!(off, 1, "one warning that verification is off:\n{log}");
    assert!(
        !log.contains("delivery failed"),
        "no delivery failed:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_ca_file_gone_at_sighup_keeps_the_configuration_that_works() {
    use swantrail::sink::{Batch, Sink as _};
    let ca = TestCa::new("swantrail test CA");
    let (cert, key) = ca.server("receiver", &["127.0.0.1"]);
    let mut receiver = Receiver::start(Kind::Rsyslog, Listen::Tls { cert, key });
    let dir = tempfile::tempdir().unwrap();
    let ca_copy = dir.path().join("ca.pem");
    fs::copy(&ca.ca, &ca_copy).unwrap();
    let mut config = crate::support::syslog::sink_config(&receiver, Transport::Tls);
    config.tls.ca_file = Some(ca_copy.clone());
    let mut sink = SyslogSink::new(config).unwrap();
    let batch = |n: u64| {
        Batch::from_ndjson(format!(
            "{}\n",
            crate::support::syslog::event(n, "tun", "user@example.net")
        ))
    };
    sink.send(&batch(1)).await.unwrap();

    fs::remove_file(&ca_copy).unwrap();
    let e = sink.reopen().unwrap_err().to_string();
    assert!(
        e.contains("tls.ca_file") && e.contains("still using the TLS files read before"),
        "{e}"
    );
    // A new connection, so a new handshake, with the configuration kept.
    receiver.stop();
    receiver.restart();
    let until = Instant::now() + Duration::from_secs(20);
    while let Err(e) = sink.send(&batch(2)).await {
        assert!(Instant::now() < until, "not sent after SIGHUP: {e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2, "{}", receiver.logs());
}

#[test]
fn the_tls_table_is_read_alike_for_both_sinks_with_the_alias_for_syslog_only() {
    let error = |text: &str| {
        swantrail::config::from_toml_str(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string()
    };
    let syslog =
        "[[sink]]\ntype = \"syslog\"\ntransport = \"tls\"\naddress = \"h:6514\"\n[sink.tls]\n";
    let http = "[[sink]]\ntype = \"http\"\nurl = \"https://h:8080/\"\n[sink.tls]\n";
    let e = error(&format!(
        "{syslog}verify = true\ninsecure_skip_verify = true\n"
    ));
    assert!(
        e.starts_with("t.toml:7:1: give `tls.verify` or its deprecated alias"),
        "{e}"
    );
    let e = error(&format!("{http}insecure_skip_verify = true\n"));
    assert!(
        e.starts_with(
            "t.toml:5:1: `tls.insecure_skip_verify` is the old syslog name; write `verify = false`"
        ),
        "{e}"
    );
    let e = error(&format!("{http}server_name = \"no such name!\"\n"));
    assert!(
        e.starts_with("t.toml:5:15: invalid `tls.server_name`"),
        "{e}"
    );
    let e =
        error("[[sink]]\ntype = \"http\"\nurl = \"http://h:8080/\"\n[sink.tls]\nverify = false\n");
    assert!(
        e.contains("the [sink.tls] table does not apply to an http:// `url`"),
        "{e}"
    );
    for (text, verify, name) in [
        (
            format!("{syslog}insecure_skip_verify = true\n"),
            false,
            None,
        ),
        (format!("{syslog}verify = false\n"), false, None),
        (format!("{http}verify = false\n"), false, None),
        (
            format!("{http}server_name = \"logs.example.net\"\n"),
            true,
            Some("logs.example.net"),
        ),
    ] {
        let config = swantrail::config::from_toml_str(&text, Path::new("t.toml")).unwrap();
        let tls = swantrail::sink::tls::settings_of(&config.sinks[0]).unwrap();
        assert_eq!(tls.verify, verify, "{text}");
        assert_eq!(tls.server_name.as_deref(), name, "{text}");
    }
}

/// The value of `name{sink="siem"}` on the daemon's `/metrics` at `port`.
fn siem_metric(port: u16, name: &str) -> Option<u64> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let prefix = format!("{name}{{sink=\"siem\"}} ");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_receiver_certificate_that_fails_keeps_the_events_spooled_and_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("swantrail test CA");
    // The receiver's certificate is signed by another CA than the one given.
    let stranger = TestCa::new("some other CA");
    let (cert, key) = stranger.server("receiver", &["127.0.0.1"]);
    let receiver = Receiver::start(Kind::Rsyslog, Listen::Tls { cert, key });
    let watch = dir.path().join("watch");
    fs::create_dir_all(&watch).unwrap();
    let dump = fs::read_dir(SERIES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    fs::copy(&dump, watch.join("status.txt")).unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        r#"state_dir = {state}
hostname = "gw-test"
shutdown_grace = "1s"

[metrics]
listen = "127.0.0.1:{metrics_port}"

[[source]]
type = "file"
path = {watched}
settle = "50ms"

[[sink]]
type = "syslog"
name = "siem"
transport = "tls"
address = "{address}"

[sink.tls]
ca_file = {ca}

[sink.spool]
batch_max_wait = "20ms"

[sink.retry]
initial_backoff = "50ms"
max_backoff = "200ms"
"#,
        state = toml_path(&dir.path().join("state")),
        watched = toml_path(&watch.join("status.txt")),
        address = receiver.address(),
        ca = toml_path(&ca.ca),
    );
    let config = dir.path().join("swantrail.toml");
    fs::write(&config, &text).unwrap();
    let log_path = dir.path().join("daemon.log");
    let mut daemon = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(&log_path).unwrap_or_default();
    // Several attempts, each refused: every pending event retried three times.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = siem_metric(metrics_port, "swantrail_spool_events").unwrap_or(0);
        let retried = siem_metric(metrics_port, "swantrail_sink_retried_events_total").unwrap_or(0);
        if pending > 0 && retried >= 3 * pending {
            break;
        }
        if Instant::now() > until || daemon.try_wait().unwrap().is_some() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!(
                "no repeated attempts (pending {pending}, retried {retried}): {}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(siem_metric(metrics_port, "swantrail_sink_failing"), Some(1));
    // SAFETY: kill(2) on the pid of the child this test spawned and has not reaped.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
    let log = log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("delivery failed") || l.contains("delivery still failing"))
        .collect();
    assert_eq!(failures.len(), 1, "one line for the failure:\n{log}");
    assert!(
        failures[0].contains("not signed by a trusted CA") && failures[0].contains("tls.ca_file"),
        "{log}"
    );
    assert_eq!(receiver.count(), 0, "nothing may arrive");
}
