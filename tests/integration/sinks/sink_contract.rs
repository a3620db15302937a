//! The sink contract end to end on a real spool: a sink that answers per
//! event (like an Elasticsearch `_bulk` response) gets each event delivered
//! once, its retries sent again alone and not before the time it asked for,
//! its rejections in the dead-letter file, and nothing lost. Time is paused,
//! so the 30 s `Retry-After` costs no wall-clock time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::{Batch, Delivery, EventOutcome, SendError, Sink};
use tokio::time::Instant;

/// One call of `send_each`: when, and the events it carried.
type Call = (Instant, Vec<String>);

/// Answers the first batch with a mix of outcomes, and accepts everything after.
#[derive(Clone, Default)]
struct BulkSink {
    calls: Arc<Mutex<Vec<Call>>>,
}

const RETRY_AFTER: Duration = Duration::from_secs(30);

impl Sink for BulkSink {
    async fn send(&mut self, _batch: &Batch) -> Result<(), SendError> {
        unreachable!("the drain calls send_each")
    }

    async fn send_each(&mut self, batch: &Batch) -> Result<Vec<EventOutcome>, SendError> {
        let lines: Vec<String> = batch.lines().map(String::from).collect();
        let mut calls = self.calls.lock().unwrap();
        let first = calls.is_empty();
        calls.push((Instant::now(), lines));
        if !first {
            return Ok(vec![Ok(()); batch.len()]);
        }
        Ok(vec![
            Ok(()),
            Err(SendError::retry_after(
                "HTTP 429 for this item",
                RETRY_AFTER,
            )),
            Err(SendError::Rejected(
                "HTTP 400: mapper_parsing_exception".into(),
            )),
            Ok(()),
            Err(SendError::Retryable("HTTP 503 for this item".into())),
            Err(SendError::Rejected("HTTP 413: document too large".into())),
        ])
    }
}

fn event(n: u32) -> String {
    format!("{{\"n\":{n}}}")
}

fn spool() -> SpoolSettings {
    SpoolSettings {
        max_bytes: 1 << 20,
        full_policy: FullPolicy::Block,
        segment_bytes: 1 << 16,
        batch_max_events: 1000,
        batch_max_bytes: 1 << 20,
        batch_max_wait: Duration::ZERO,
    }
}

fn retry() -> RetrySettings {
    RetrySettings {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    }
}

async fn wait_until(what: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if what() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out");
}

#[tokio::test(start_paused = true)]
async fn partial_outcome_delivers_once_retries_after_the_time_and_dead_letters_the_rejected() {
    let state = tempfile::tempdir().unwrap();
    let sink = BulkSink::default();
    let delivery = Delivery::builder(state.path())
        .add_sink("bulk", &spool(), &retry(), sink.clone())
        .unwrap()
        .start();
    let started = Instant::now();
    delivery
        .enqueue(&(0..6).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    wait_until(|| !sink.calls.lock().unwrap().is_empty()).await;
    // A later event waits behind the retries of the first batch.
    delivery.enqueue(&[event(6)]).await.unwrap();
    wait_until(|| delivery.stats()[0].pending_events == 0).await;

    let calls = sink.calls.lock().unwrap().clone();
    let sent: Vec<Vec<String>> = calls.iter().map(|(_, lines)| lines.clone()).collect();
    assert_eq!(
        sent,
        vec![
            (0..6).map(event).collect::<Vec<_>>(),
            vec![event(1), event(4)],
            vec![event(6)],
        ]
    );
    assert!(
        calls[1].0 >= started + RETRY_AFTER,
        "retried {:?} after the start, before the 30 s it was asked to wait",
        calls[1].0 - started
    );

    let stats = &delivery.stats()[0];
    assert_eq!(stats.delivered_events, 5);
    assert_eq!(stats.dead_lettered_events, 2);
    assert_eq!(stats.dropped_events, 0);
    assert!(!stats.failing);

    let text = std::fs::read_to_string(state.path().join("dead-letter/bulk.ndjson")).unwrap();
    let dead: Vec<(serde_json::Value, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["event"].clone(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        dead,
        vec![
            (
                serde_json::json!({"n": 2}),
                "HTTP 400: mapper_parsing_exception".to_string()
            ),
            (
                serde_json::json!({"n": 5}),
                "HTTP 413: document too large".to_string()
            ),
        ]
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();

    // Everything was acknowledged: a restart on the same spool sends nothing again.
    let again = BulkSink::default();
    let delivery = Delivery::builder(state.path())
        .add_sink("bulk", &spool(), &retry(), again.clone())
        .unwrap()
        .start();
    assert_eq!(delivery.stats()[0].pending_events, 0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(again.calls.lock().unwrap().is_empty());
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}
