//! A state directory that fills up during a sink outage, a stop and a start
//! while it is full, and space coming back: the real binary, the lab's real
//! 4.10 series, a tmpfs made by the test, a real HTTP receiver.
//!
//! What must hold: the sinks together deliver exactly the events of an
//! uninterrupted run (same ids, same content), no `event.id` is ever seen
//! with two contents, no `event.sequence` names two events, and the daemon
//! goes on by itself once the receiver takes the spooled events again.

use crate::support;
use crate::support::http_receiver;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_receiver::{Protocol, Receiver, Reply, State};
use serde_json::Value;
use support::config::DaemonConfig;
use support::daemon::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A file source on `watch/status.txt` (dump mtimes are the event times,
/// so two runs of the series give the same events), a file sink and, when
/// `http` is given, an NDJSON HTTP sink; small segments and quick retries.
fn config(root: &Path, state: &Path, http: Option<&str>) -> PathBuf {
    let config = DaemonConfig::new(root)
        .state_dir(state)
        .hostname("gw-full")
        .set("shutdown_grace", "2s")
        .table("tracker", "stalled_after", "100000s")
        .file_source("lab", &root.join("watch/status.txt"))
        .with("settle", "30ms")
        .with("poll_interval", "1h")
        .with("stale_after_intervals", 0)
        .file_sink("file", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
        .spool("segment_bytes", "64KiB");
    let config = match http {
        Some(url) => config
            .http_sink("collector", &format!("{url}/"), "ndjson")
            .with("compression", "none")
            .spool("batch_max_wait", "20ms")
            .spool("segment_bytes", "64KiB")
            .retry("initial_backoff", "50ms")
            .retry("max_backoff", "200ms"),
        None => config,
    };
    config.write()
}

/// Write dump `index` of the series and wait until its checkpoint is written.
fn feed(root: &Path, state: &Path, daemon: &Daemon, (epoch, dump): &(i64, PathBuf)) {
    write_by_rename(
        &root.join("watch/status.txt"),
        &fs::read_to_string(dump).unwrap(),
        *epoch,
    );
    let epoch = *epoch;
    wait_until(LIMIT, &format!("dump {epoch} checkpointed"), daemon, || {
        checkpoint_taken_at(state, "lab") == Some(epoch)
    });
}

/// Event lines as JSON by `event.id`, failing on an id with two contents.
fn by_id(events: impl IntoIterator<Item = Value>, what: &str) -> BTreeMap<String, Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for event in events {
        let id = field(&event, "event.id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{what}: no event.id in {event}"))
            .to_string();
        if let Some(seen) = map.get(&id) {
            assert_eq!(seen, &event, "{what}: event.id {id} with two contents");
        }
        map.insert(id, event);
    }
    map
}

#[test]
fn a_full_state_disk_during_an_outage_then_a_restart_loses_nothing_and_reuses_no_id() {
    let series = lab_series();
    assert!(series.len() > 10, "the lab series is too short");

    // The uninterrupted run.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference_root = reference_dir.path();
    let reference_state = reference_root.join("state");
    let daemon = Daemon::start(
        &config(reference_root, &reference_state, None),
        &reference_root.join("stderr.log"),
    );
    for step in &series {
        feed(reference_root, &reference_state, &daemon, step);
    }
    assert!(daemon.terminate().success());
    let reference: Vec<Value> = event_lines(&reference_root.join("out"))
        .iter()
        .map(|l| parse_event(l))
        .collect();
    let reference = by_id(reference, "the uninterrupted run");
    assert!(reference.len() >= 20, "too few events: {}", reference.len());

    // The same series with a state directory that fills up.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let state = root.join("state");
    let Some(_tmpfs) = Tmpfs::mount(&state, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = Arc::new(Mutex::new(State {
            // The outage: every request answered 503 until it ends.
            default_reply: Some(Reply::Status {
                status: 503,
                body: "down for maintenance".into(),
                retry_after: None,
            }),
            ..State::default()
        }));
        Receiver::serve(listener, Protocol::Ndjson, state)
    });
    let config = config(root, &state, Some(&receiver.url()));
    let stderr = root.join("stderr.log");
    // The disk fills up before a dump that makes events, two thirds in.
    let full_at = (series.len() * 2 / 3..series.len())
        .find(|&i| {
            let at = swantrail::event::rfc3339(series[i].0);
            reference
                .values()
                .any(|e| field(e, "@timestamp").and_then(Value::as_str) == Some(&at))
        })
        .expect("a dump with events in the last third of the series");

    let daemon = Daemon::start(&config, &stderr);
    for step in &series[..full_at] {
        feed(root, &state, &daemon, step);
    }
    // The file sink has delivered all that and given its spool's space
    // back, so that no delivery frees pages after the disk is filled.
    wait_until(LIMIT, "the file sink's spool emptied", &daemon, || {
        fs::read_dir(state.join("spool/file"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .all(|e| e.metadata().is_ok_and(|m| m.len() == 0))
    });
    // Full but for a page less than a copy of the checkpoint takes: room
    // for a few spooled events, not for a new checkpoint next to the old
    // one, as when a spool filled the disk.
    let checkpoint_pages = fs::metadata(state.join("checkpoint/lab.json"))
        .unwrap()
        .len()
        .div_ceil(4096);
    let room = checkpoint_pages.saturating_sub(1).max(1) * 4096;
    let filler = fill(&state);
    let filled = fs::metadata(&filler).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(filled.saturating_sub(room))
        .unwrap();
    let (held_epoch, held_dump) = &series[full_at];
    let diffed = format!("snapshot diffed source=lab taken_at={held_epoch} ");
    write_by_rename(
        &root.join("watch/status.txt"),
        &fs::read_to_string(held_dump).unwrap(),
        *held_epoch,
    );
    wait_until(LIMIT, "the dump diffed on a full disk", &daemon, || {
        daemon.own_log().contains(&diffed)
    });
    wait_until(LIMIT, "a failed write", &daemon, || {
        daemon.own_log().contains("No space left on device")
    });

    // Stopped and started again while the disk is still full.
    assert!(daemon.terminate().success());
    // Either the held snapshot's commit never reached the disk (it is
    // diffed again), or it did, as a short journal line in the room left,
    // and only its spooling failed (its pending events are spooled again,
    // never recomputed).
    let daemon = Daemon::start(&config, &stderr);
    wait_until(
        LIMIT,
        "the dump diffed again, or its committed events spooled again, after the restart",
        &daemon,
        || {
            let log = daemon.own_log();
            log.contains(&diffed)
                || log.contains("events of the last commit may not be in every spool")
        },
    );

    // The outage ends: what the receiver takes is reclaimed from the spool,
    // and the daemon goes on by itself, without a restart.
    receiver.state.lock().unwrap().default_reply = None;
    wait_until(LIMIT, "the held snapshot committed", &daemon, || {
        checkpoint_taken_at(&state, "lab") == Some(*held_epoch)
    });
    assert!(daemon.exited().is_none());
    fs::remove_file(&filler).unwrap();
    for step in &series[full_at + 1..] {
        feed(root, &state, &daemon, step);
    }
    let all = reference.len();
    let received = || by_id(receiver.events(), "the receiver").len();
    wait_until(LIMIT, "every event at the receiver", &daemon, || {
        received() >= all
    });
    wait_until(LIMIT, "every event in the file", &daemon, || {
        by_id(
            event_lines(&root.join("out"))
                .iter()
                .map(|l| parse_event(l)),
            "the file sink",
        )
        .len()
            >= all
    });
    assert!(daemon.terminate().success());

    let file: Vec<Value> = event_lines(&root.join("out"))
        .iter()
        .map(|l| parse_event(l))
        .collect();
    let http = receiver.events();
    let file_ids = by_id(file.clone(), "the file sink");
    let http_ids = by_id(http.clone(), "the receiver");
    let union = by_id(file.into_iter().chain(http), "the sinks together");
    let mut sequences: BTreeMap<u64, &str> = BTreeMap::new();
    for (id, event) in &union {
        let sequence = field(event, "event.sequence")
            .and_then(Value::as_u64)
            .unwrap();
        if let Some(other) = sequences.insert(sequence, id) {
            panic!("event.sequence {sequence} names {other} and {id}");
        }
    }
    for (what, got) in [
        ("the file sink", &file_ids),
        ("the receiver", &http_ids),
        ("the sinks together", &union),
    ] {
        let missing: Vec<&String> = reference.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !reference.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: {} missing, {} not in the uninterrupted run: {missing:?} {extra:?}",
            missing.len(),
            extra.len()
        );
        for (id, event) in got {
            assert_eq!(
                event, &reference[id],
                "{what}: {id} differs from the uninterrupted run"
            );
        }
    }
}
