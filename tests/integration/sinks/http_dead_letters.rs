//! Dead letters of the HTTP sink at the binary level: the real daemon on a
//! real lab dump, a real HTTP receiver (`http_receiver`), and a file sink
//! beside it as the record of every event the run made.
//!
//! * A receiver with a body limit (nginx's `client_max_body_size`) answers
//!   413 to a larger request: the batch is sent again in halves until each
//!   request passes, and only an event too large on its own is dead-lettered,
//!   with the receiver's answer.
//! * `swantrail redeliver` sends a dead-letter file again once the receiver
//!   takes the events: each exactly once, with its `event.id` unchanged; what
//!   is refused again stays in the sink's dead-letter file.

use crate::support;
use crate::support::http_receiver;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http_receiver::{Protocol, Receiver, Reply};
use serde_json::Value;
use support::daemon::{
    BIN, Daemon, SERIES, checkpoint_taken_at, event_id, event_lines, file_config, set_mtime,
};

/// The sink under test, and its dead-letter file under the state directory.
const SINK: &str = "collector";

/// The first dump of the lab series, in place for a file source, with a
/// fixed mtime so that every run makes the same events with the same ids.
fn lab_dump(root: &Path) {
    let first = fs::read_dir(SERIES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    fs::create_dir_all(root.join("watch")).unwrap();
    let watched = root.join("watch/status.txt");
    fs::copy(first, &watched).unwrap();
    set_mtime(&watched, 1_795_857_662);
}

/// A config with a file source on the lab dump, a file sink (every event of
/// the run) and, given a receiver, an uncompressed `ndjson` HTTP sink to it.
fn config(root: &Path, receiver: Option<&Receiver>) -> PathBuf {
    let config = file_config(root).source_with("settle", "50ms");
    let config = match receiver {
        Some(r) => config
            .http_sink(SINK, &format!("{}/in", r.url()), "ndjson")
            .with("compression", "none")
            .spool("batch_max_wait", "20ms")
            .retry("initial_backoff", "50ms")
            .retry("max_backoff", "200ms"),
        None => config,
    };
    config.write()
}

/// The events of a daemon run without an HTTP sink: the checkpoint is
/// written once the events are spooled, and a clean stop drains the spool.
async fn reference_events() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    lab_dump(dir.path());
    let daemon = Daemon::start(&config(dir.path(), None), &dir.path().join("daemon.log"));
    let state = dir.path().join("state");
    wait_for(Duration::from_secs(60), "the checkpoint", &daemon, || {
        checkpoint_taken_at(&state, "lab").is_some()
    })
    .await;
    assert!(daemon.terminate().success());
    let lines = event_lines(&dir.path().join("out"));
    assert!(lines.len() > 4, "the lab dump makes events: {lines:?}");
    lines
}

/// Wait until `done` holds, failing with `what` and the log after `limit`.
async fn wait_for(limit: Duration, what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Some(status) = daemon.exited() {
            panic!(
                "the daemon exited ({status}) while waiting for {what}; log:\n{}",
                daemon.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The complete records of a dead-letter file (a line without its `\n` is
/// not written yet); none when there is no file.
fn dead_letters(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn id_of(event: &Value) -> String {
    event["event"]["id"].as_str().unwrap().to_string()
}

/// Ids in order, asserting that none is there twice.
fn unique_ids(events: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for id in events {
        assert!(ids.insert(id.clone()), "{id} arrived twice");
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_until_each_request_passes_and_dead_letters_only_an_event_too_large_alone()
 {
    let reference = reference_events().await;
    // The largest event's body (the line and its newline) is one byte over
    // the limit; every other event fits alone, no two events fit together.
    let largest = reference.iter().map(String::len).max().unwrap();
    let limit = largest;
    let receiver = Receiver::start(Protocol::Ndjson).await;
    receiver.state.lock().unwrap().max_body_bytes = Some(limit);

    let dir = tempfile::tempdir().unwrap();
    lab_dump(dir.path());
    let config = config(dir.path(), Some(&receiver));
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    let dead_letter_file = dir.path().join(format!("state/dead-letter/{SINK}.ndjson"));
    wait_for(
        Duration::from_secs(60),
        "every event delivered or dead-lettered",
        &daemon,
        || receiver.events().len() + dead_letters(&dead_letter_file).len() >= reference.len(),
    )
    .await;
    let log = daemon.own_log();
    assert!(daemon.terminate().success());
    assert_eq!(
        event_lines(&dir.path().join("out")),
        reference,
        "the same dump makes the same events"
    );

    let too_large: BTreeSet<String> = reference
        .iter()
        .filter(|l| l.len() + 1 > limit)
        .map(|l| event_id(l))
        .collect();
    assert!(!too_large.is_empty() && too_large.len() < reference.len());
    let delivered = unique_ids(receiver.events().iter().map(id_of));
    let dead = dead_letters(&dead_letter_file);
    let dead_ids = unique_ids(dead.iter().map(|r| id_of(&r["event"])));
    assert_eq!(dead_ids, too_large, "only the events too large alone");
    let all: BTreeSet<String> = reference.iter().map(|l| event_id(l)).collect();
    assert_eq!(
        delivered.union(&dead_ids).cloned().collect::<BTreeSet<_>>(),
        all
    );
    assert!(delivered.is_disjoint(&dead_ids));
    for record in &dead {
        let reason = record["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("HTTP 413") && reason.contains("413 Request Entity Too Large"),
            "the reason is the receiver's answer: {reason}"
        );
        assert_eq!(record["sink"], SINK);
    }

    let requests = receiver.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.status == 413 && r.body.iter().filter(|b| **b == b'\n').count() > 1),
        "a batch of several events was refused first"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.body.len() <= limit)
    );
    assert_eq!(
        log.matches("as too large").count(),
        1,
        "the split is logged once: {log}"
    );
}

/// `swantrail redeliver FILE --config C --sink NAME`: its exit status and stdout.
fn redeliver(file: &Path, config: &Path) -> (bool, String) {
    let output = Command::new(BIN)
        .arg("redeliver")
        .arg(file)
        .arg("--config")
        .arg(config)
        .args(["--sink", SINK])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.success(), format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_sends_dead_letters_again_once_the_receiver_takes_them_each_exactly_once_with_its_id()
 {
    let reference = reference_events().await;
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let refusal = Reply::Status {
        status: 422,
        body: r#"{"error":"field [libreswan] mapping conflict"}"#.into(),
        retry_after: None,
    };
    receiver.state.lock().unwrap().default_reply = Some(refusal);

    let dir = tempfile::tempdir().unwrap();
    lab_dump(dir.path());
    let config = config(dir.path(), Some(&receiver));
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    let dead_letter_file = dir.path().join(format!("state/dead-letter/{SINK}.ndjson"));
    wait_for(
        Duration::from_secs(60),
        "every event dead-lettered",
        &daemon,
        || dead_letters(&dead_letter_file).len() >= reference.len(),
    )
    .await;
    let all: BTreeSet<String> = reference.iter().map(|l| event_id(l)).collect();
    let dead_ids = |path: &Path| unique_ids(dead_letters(path).iter().map(|r| id_of(&r["event"])));
    assert_eq!(dead_ids(&dead_letter_file), all);

    // The receiver still refuses: every event is refused again and stays a
    // dead letter, with the new answer; nothing else is left behind.
    let (ok, said) = redeliver(&dead_letter_file, &config);
    assert!(!ok, "refusals are a failure: {said}");
    let n = reference.len();
    assert!(
        said.contains(&format!("0 delivered, {n} refused again")),
        "{said}"
    );
    assert_eq!(dead_ids(&dead_letter_file), all);
    assert!(
        dead_letters(&dead_letter_file)
            .iter()
            .all(|r| r["reason"].as_str().unwrap().starts_with("HTTP 422"))
    );
    let left: Vec<_> = fs::read_dir(dir.path().join("state/dead-letter"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(receiver.events().is_empty());

    // The cause is fixed; the daemon still runs beside the redelivery.
    receiver.state.lock().unwrap().default_reply = None;
    let (ok, said) = redeliver(&dead_letter_file, &config);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("{n} delivered, 0 refused again")),
        "{said}"
    );
    assert!(
        !dead_letter_file.exists(),
        "every dead letter was delivered"
    );
    let received = receiver.events();
    assert_eq!(unique_ids(received.iter().map(id_of)), all);
    let sent: Vec<Value> = reference
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(received, sent, "the events as they were made, in order");
    assert!(daemon.terminate().success());
    assert_eq!(event_lines(&dir.path().join("out")), reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_to_a_destination_that_stays_down_gives_up_and_keeps_every_record() {
    let reference = reference_events().await;
    let receiver = Receiver::start(Protocol::Ndjson).await;
    receiver.state.lock().unwrap().default_reply = Some(Reply::Status {
        status: 503,
        body: "maintenance".into(),
        retry_after: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Some(&receiver));
    // Dead letters as the drain writes them, from the events of a real run.
    let file = dir.path().join("kept.ndjson");
    let records: String = reference
        .iter()
        .map(|event| {
            format!(
                "{{\"sink\":\"{SINK}\",\"reason\":\"HTTP 400 Bad Request: no\",\"rejected_at\":\"2026-12-01T00:00:00Z\",\"event\":{event}}}\n"
            )
        })
        .collect();
    fs::write(&file, records).unwrap();

    let output = Command::new(BIN)
        .arg("redeliver")
        .arg(&file)
        .arg("--config")
        .arg(&config)
        .args(["--sink", SINK, "--give-up-after", "1s"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{said}");
    let n = reference.len();
    assert!(
        said.contains(&format!(
            "0 delivered, 0 refused again, {n} not sent (the destination stayed unavailable: HTTP 503"
        )),
        "{said}"
    );
    assert!(receiver.requests().len() > 1, "retried before giving up");
    assert!(receiver.events().is_empty());
    assert!(
        !file.exists(),
        "its records are in the sink's dead-letter file"
    );
    let kept = dead_letters(&dir.path().join(format!("state/dead-letter/{SINK}.ndjson")));
    let kept_events: Vec<String> = kept.iter().map(|r| r["event"].to_string()).collect();
    let sent: Vec<String> = reference
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect();
    assert_eq!(kept_events, sent, "every event kept, in order");
    assert!(
        kept.iter()
            .all(|r| r["reason"].as_str().unwrap().starts_with("HTTP 503"))
    );
}
