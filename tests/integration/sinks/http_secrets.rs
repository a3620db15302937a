//! No secret of the HTTP sink — a basic password, a bearer token, a HEC
//! token — appears in anything the daemon writes: its log at `trace`
//! level, its stdout, its dead-letter files, or `check-config` output.

use crate::support::http_receiver;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::config::DaemonConfig;
use crate::support::daemon::lab_series;
use http_receiver::{Protocol, Receiver, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");

const HEC_TOKEN: &str = "hec-5ec7e7-0b5e55ed";
const BEARER_TOKEN: &str = "bearer-77a1c0de-f00d";
const PASSWORD: &str = "pa55-9f1e-never-log";

fn all_files_under(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_files_under(&path, out);
        } else {
            out.push_str(&String::from_utf8_lossy(
                &fs::read(&path).unwrap_or_default(),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_trace_log_the_dead_letters_or_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let hec = Receiver::start(Protocol::SplunkHec {
        token: HEC_TOKEN.into(),
    })
    .await;
    // The first HEC batch is refused for good: it goes to the dead letters.
    hec.script([Reply::Status {
        status: 400,
        body: r#"{"text":"Invalid data format","code":6}"#.into(),
        retry_after: None,
    }]);
    let bearer = Receiver::start(Protocol::Ndjson).await;
    bearer.state.lock().unwrap().authorization = Some(format!("Bearer {BEARER_TOKEN}"));
    bearer.script([Reply::Status {
        status: 401,
        body: "token expired".into(),
        retry_after: None,
    }]);
    let basic = Receiver::start(Protocol::Ndjson).await;
    // base64("swantrail:" + PASSWORD)
    basic.state.lock().unwrap().authorization =
        Some("Basic c3dhbnRyYWlsOnBhNTUtOWYxZS1uZXZlci1sb2c=".into());

    fs::write(dir.path().join("hec-token"), format!("{HEC_TOKEN}\n")).unwrap();
    fs::write(dir.path().join("password"), PASSWORD).unwrap();
    let watch = dir.path().join("watch");
    fs::create_dir_all(&watch).unwrap();
    let (_, dump) = lab_series().remove(0);
    fs::copy(&dump, watch.join("status.txt")).unwrap();
    let state = dir.path().join("state");
    let config = DaemonConfig::new(dir.path())
        .state_dir(&state)
        .table("log", "level", "trace")
        .file_source("", &watch.join("status.txt"))
        .with("settle", "50ms")
        .http_sink("hec", &hec.url(), "splunk-hec")
        .with_path("token_file", &dir.path().join("hec-token"))
        .spool("batch_max_wait", "20ms")
        .retry("initial_backoff", "100ms")
        .sink("http", "bearer")
        .with("url", format!("{}/in", bearer.url()))
        .with("auth", "bearer")
        .with("token_env", "SWANTRAIL_TEST_BEARER")
        .with("compression", "none")
        .spool("batch_max_wait", "20ms")
        .retry("initial_backoff", "100ms")
        .sink("http", "basic")
        .with("url", format!("{}/in", basic.url()))
        .with("auth", "basic")
        .with("user", "swantrail")
        .with_path("password_file", &dir.path().join("password"))
        .spool("batch_max_wait", "20ms")
        .write();
    let stderr = dir.path().join("daemon.log");
    let stdout = dir.path().join("daemon.out");
    let mut daemon = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .env("SWANTRAIL_TEST_BEARER", BEARER_TOKEN)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let done = state.join("dead-letter/hec.ndjson").exists()
            && !bearer.events().is_empty()
            && !basic.events().is_empty();
        if done {
            break;
        }
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(
            Instant::now() < until,
            "not delivered: {}",
            fs::read_to_string(&stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();

    let log = fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("HTTP 401"), "the 401 was logged");
    assert!(log.contains("TRACE"), "the log is at trace level");
    let mut everything = log.clone();
    everything.push_str(&fs::read_to_string(&stdout).unwrap_or_default());
    all_files_under(&state.join("dead-letter"), &mut everything);
    let dead = fs::read_to_string(state.join("dead-letter/hec.ndjson")).unwrap();
    assert!(dead.contains("Invalid data format"), "{dead}");
    let check = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success());
    everything.push_str(&String::from_utf8_lossy(&check.stdout));
    everything.push_str(&String::from_utf8_lossy(&check.stderr));
    for secret in [HEC_TOKEN, BEARER_TOKEN, PASSWORD, "c3dhbnRyYWlsOnBhNTUt"] {
        assert!(
            !everything.contains(secret),
            "a secret ({} characters) was written out",
            secret.len()
        );
    }
}
