//! The drop-oldest policy: a full spool loses the oldest events with a loud
//! log line and a counter, and the pipeline never waits. In its own test
//! binary because it installs a global log subscriber to read the log line.

#[path = "integration/support/gated_sink.rs"]
mod gated_sink;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gated_sink::GatedSink;
use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::Delivery;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn event(n: u32) -> String {
    format!("{{\"n\":{n:3},\"pad\":\"xxxxxxxxxxx\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_policy_never_blocks_and_counts_and_logs_what_it_dropped() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let state = tempfile::tempdir().unwrap();
    let sink = GatedSink::default();
    let spool = SpoolSettings {
        max_bytes: 200,
        full_policy: FullPolicy::DropOldest,
        segment_bytes: 64,
        batch_max_events: 1000,
        batch_max_bytes: 1 << 20,
        batch_max_wait: Duration::ZERO,
    };
    let retry = RetrySettings {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    let delivery = Delivery::builder(state.path())
        .add_sink("gated", &spool, &retry, sink.clone())
        .unwrap()
        .start();

    for n in 0..20 {
        tokio::time::timeout(Duration::from_secs(5), delivery.enqueue(&[event(n)]))
            .await
            .expect("drop-oldest never makes the pipeline wait")
            .unwrap();
    }
    // 30-byte events under a 200-byte bound: the newest six stay.
    let stats = &delivery.stats()[0];
    assert_eq!(stats.dropped_events, 14);
    assert_eq!(stats.pending_events, 6);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("DROPPED")).collect();
    assert_eq!(warnings.len(), 14, "one loud line per drop:\n{text}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[13].contains("sink `gated`: spool full (max_bytes = 200), DROPPED the 1 oldest undelivered event to make room (14 dropped since start; full_policy = drop-oldest)"),
        "{}",
        warnings[13]
    );

    // Let the drain's retry notice the spool moved on before the gate opens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sink.open.store(true, Ordering::SeqCst);
    for _ in 0..1000 {
        if sink.received.lock().unwrap().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *sink.received.lock().unwrap(),
        (14..20).map(event).collect::<Vec<_>>(),
        "only the kept events are delivered, the dropped ones are not sent late"
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}
