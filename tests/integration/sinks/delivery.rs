//! Delivery end to end on real spool files: the full-spool policies, restart
//! redelivery, and the configured file sink.

use crate::support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::gated_sink::GatedSink;
use swantrail::config::{FileSinkConfig, FullPolicy, RetrySettings, SinkConfig, SpoolSettings};
use swantrail::sink::{Batch, Delivery, SendError, Sink};

impl GatedSink {
    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..1000 {
            if self.received.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

/// 30 bytes with its newline.
fn event(n: u32) -> String {
    format!("{{\"n\":{n:3},\"pad\":\"xxxxxxxxxxx\"}}")
}

fn small_spool(policy: FullPolicy) -> SpoolSettings {
    SpoolSettings {
        max_bytes: 200,
        full_policy: policy,
        segment_bytes: 64,
        batch_max_events: 1000,
        batch_max_bytes: 1 << 20,
        batch_max_wait: Duration::ZERO,
    }
}

fn quick_retry() -> RetrySettings {
    RetrySettings {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

fn start(state: &Path, sink: &GatedSink, policy: FullPolicy) -> Delivery {
    Delivery::builder(state)
        .add_sink("gated", &small_spool(policy), &quick_retry(), sink.clone())
        .unwrap()
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_holds_the_pipeline_without_loss_and_resumes_after_the_sink_drains() {
    assert_eq!(event(0).len() + 1, 30);
    let state = tempfile::tempdir().unwrap();
    let sink = GatedSink::default();
    let delivery = start(state.path(), &sink, FullPolicy::Block);

    // Six events (180 bytes) fit under the 200-byte bound; the seventh must wait.
    for n in 0..6 {
        delivery.enqueue(&[event(n)]).await.unwrap();
    }
    let seventh = [event(6)];
    let mut blocked = Box::pin(delivery.enqueue(&seventh));
    let early = tokio::time::timeout(Duration::from_millis(300), &mut blocked).await;
    assert!(early.is_err(), "enqueue must block while the spool is full");
    let stats = &delivery.stats()[0];
    assert_eq!(stats.pending_events, 6);
    assert_eq!(stats.pending_bytes, 180);
    assert!(stats.failing);

    sink.open.store(true, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("enqueue resumes once the sink delivered")
        .unwrap();
    for n in 7..20 {
        delivery.enqueue(&[event(n)]).await.unwrap();
    }
    let received = sink.wait_for(20).await;
    assert_eq!(received, (0..20).map(event).collect::<Vec<_>>());
    for _ in 0..1000 {
        if delivery.stats()[0].pending_events == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = &delivery.stats()[0];
    assert_eq!(stats.pending_events, 0);
    assert_eq!(stats.dropped_events, 0);
    assert_eq!(stats.delivered_events, 20);
    assert!(!stats.failing);
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_not_acknowledged_before_shutdown_are_delivered_after_restart() {
    let state = tempfile::tempdir().unwrap();
    let down = GatedSink::default();
    let delivery = start(state.path(), &down, FullPolicy::Block);
    delivery
        .enqueue(&[event(0), event(1), event(2)])
        .await
        .unwrap();
    delivery.shutdown(Duration::from_millis(100)).await.unwrap();
    assert!(down.received().is_empty());

    let up = GatedSink::default();
    let delivery = start(state.path(), &up, FullPolicy::Block);
    assert_eq!(delivery.stats()[0].pending_events, 3);
    up.open.store(true, Ordering::SeqCst);
    delivery.enqueue(&[event(3)]).await.unwrap();
    assert_eq!(up.wait_for(4).await, (0..4).map(event).collect::<Vec<_>>());
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_what_it_can_within_the_grace() {
    let state = tempfile::tempdir().unwrap();
    let sink = GatedSink::default();
    sink.open.store(true, Ordering::SeqCst);
    let mut spool = small_spool(FullPolicy::Block);
    spool.batch_max_wait = Duration::from_secs(3600);
    let delivery = Delivery::builder(state.path())
        .add_sink("gated", &spool, &quick_retry(), sink.clone())
        .unwrap()
        .start();
    delivery.enqueue(&[event(0), event(1)]).await.unwrap();
    // The batch would wait an hour to fill up; shutdown sends it now.
    delivery.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.received(), vec![event(0), event(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_by_the_byte_budget_goes_at_once_without_waiting_to_fill() {
    let state = tempfile::tempdir().unwrap();
    let sink = GatedSink::default();
    sink.open.store(true, Ordering::SeqCst);
    let mut spool = small_spool(FullPolicy::Block);
    // Two 30-byte events fit, a third does not: every batch leaves 15 bytes
    // of its budget unused, and is full all the same.
    spool.batch_max_bytes = 75;
    spool.batch_max_wait = Duration::from_secs(3600);
    let delivery = Delivery::builder(state.path())
        .add_sink("gated", &spool, &quick_retry(), sink.clone())
        .unwrap()
        .start();
    delivery
        .enqueue(&(0..5).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    // The fifth is alone and waits for company (an hour) until shutdown.
    assert_eq!(
        sink.wait_for(4).await,
        (0..4).map(event).collect::<Vec<_>>()
    );
    delivery.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.received(), (0..5).map(event).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_file_sink_receives_events_and_reopens_after_logrotate() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("events.ndjson");
    let mut config = FileSinkConfig::new(path.clone());
    config.spool.batch_max_wait = Duration::ZERO;
    let delivery = Delivery::start(&[SinkConfig::File(config)], state.path()).unwrap();
    delivery.enqueue(&[event(0), event(1)]).await.unwrap();
    let read_when = |p: &Path, want: &str| {
        let p = p.to_path_buf();
        let want = want.to_string();
        async move {
            for _ in 0..1000 {
                if std::fs::read_to_string(&p).is_ok_and(|t| t == want) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        }
    };
    let first = format!("{}\n{}\n", event(0), event(1));
    assert!(read_when(&path, &first).await);

    let rotated = out.path().join("events.ndjson.1");
    std::fs::rename(&path, &rotated).unwrap();
    delivery.reopen();
    assert!(read_when(&path, "").await, "SIGHUP recreates the file");
    delivery.enqueue(&[event(2)]).await.unwrap();
    assert!(read_when(&path, &format!("{}\n", event(2))).await);
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), first);
    assert!(state.path().join("spool").join("file").is_dir());
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn unusable_state_dir_fails_at_start_naming_the_sink_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("state");
    std::fs::write(&not_a_dir, "").unwrap();
    let sinks = [SinkConfig::Stdout(Default::default())];
    let error = Delivery::start(&sinks, &not_a_dir)
        .err()
        .expect("start must fail");
    let message = error.to_string();
    assert!(message.contains("sink `stdout`"), "{message}");
    assert!(message.contains("state/spool/stdout"), "{message}");
}

#[tokio::test]
async fn an_event_with_a_newline_is_refused_before_anything_is_spooled() {
    let state = tempfile::tempdir().unwrap();
    let sink = GatedSink::default();
    let delivery = start(state.path(), &sink, FullPolicy::Block);
    let error = delivery
        .enqueue(&[event(0), "{\"a\":\n1}".to_string()])
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "event 1 of the batch is not a single non-empty line"
    );
    assert_eq!(delivery.stats()[0].pending_events, 0);
}

/// A destination that rejects every batch for good (like an HTTP 400).
struct RejectingSink;

impl Sink for RejectingSink {
    async fn send(&mut self, _batch: &Batch) -> Result<(), SendError> {
        Err(SendError::Rejected("HTTP 400: mapping conflict".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_batches_go_to_the_dead_letter_file_with_the_reason() {
    let state = tempfile::tempdir().unwrap();
    let delivery = Delivery::builder(state.path())
        .add_sink(
            "collector",
            &small_spool(FullPolicy::Block),
            &quick_retry(),
            RejectingSink,
        )
        .unwrap()
        .start();
    delivery.enqueue(&[event(0), event(1)]).await.unwrap();
    for _ in 0..1000 {
        if delivery.stats()[0].dead_lettered_events == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = &delivery.stats()[0];
    assert_eq!(stats.dead_lettered_events, 2);
    assert_eq!(stats.pending_events, 0);
    let text = std::fs::read_to_string(state.path().join("dead-letter/collector.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sink"], "collector");
    assert_eq!(lines[0]["reason"], "HTTP 400: mapping conflict");
    assert_eq!(lines[1]["event"]["n"], 1);
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_does_not_hold_up_another_below_its_bound() {
    let state = tempfile::tempdir().unwrap();
    let down = GatedSink::default();
    let up = GatedSink::default();
    up.open.store(true, Ordering::SeqCst);
    let spool = small_spool(FullPolicy::Block);
    let delivery = Delivery::builder(state.path())
        .add_sink("down", &spool, &quick_retry(), down.clone())
        .unwrap()
        .add_sink("up", &spool, &quick_retry(), up.clone())
        .unwrap()
        .start();
    for n in 0..5 {
        delivery.enqueue(&[event(n)]).await.unwrap();
    }
    assert_eq!(up.wait_for(5).await, (0..5).map(event).collect::<Vec<_>>());
    assert!(down.received().is_empty());
    let stats = delivery.stats();
    assert_eq!(
        (stats[0].name.as_str(), stats[0].pending_events),
        ("down", 5)
    );
    delivery.shutdown(Duration::from_millis(100)).await.unwrap();
}
