//! The HTTP sink through a 30 s outage with every connection refused: no
//! event is lost, and the outage and the recovery are one log line each.
//! In its own test binary because it installs the global log subscriber to
//! read those lines (the sink's tasks run on the runtime's worker threads,
//! which a thread-local subscriber does not see), and a global subscriber
//! in the integration binary would also take every other test's lines.

#[path = "integration/support/http_receiver.rs"]
mod http_receiver;
#[path = "integration/support/http_sink.rs"]
mod http_sink;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_receiver::{Protocol, Receiver};
use http_sink::{config, events, expected_ids, ids, start, wait_delivered};
use swantrail::sink::http::Mode;

/// Captures the daemon's log lines of one test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30s_outage_with_connection_refused_loses_nothing_and_is_told_once() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("swantrail=trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, since a thread-local subscriber misses callsites other tests hit first;
    // this sink's lines are told apart by its name.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // Take a free port and close it: connections are refused until the receiver binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(&url, Mode::Ndjson);
    cfg.name = "outage".into();
    cfg.retry.max_backoff = Duration::from_secs(2);
    let delivery = start(state.path(), cfg);
    let outage = Instant::now();
    let mut sent = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        delivery.enqueue(&events(sent..sent + 10)).await.unwrap();
        sent += 10;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(delivery.stats()[0].delivered_events, 0);
    assert!(delivery.stats()[0].failing);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let receiver = Receiver::serve(listener, Protocol::Ndjson, Default::default());
    wait_delivered(&delivery, u64::from(sent), Duration::from_secs(20)).await;
    assert_eq!(ids(&receiver.events(), "/event/id"), expected_ids(0..sent));
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
    let log: String = lines
        .text()
        .lines()
        .filter(|l| l.contains("sink `outage`"))
        .map(|l| format!("{l}\n"))
        .collect();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("delivery failed"))
        .collect();
    assert_eq!(failed.len(), 1, "one line per outage:\n{log}");
    assert!(
        failed[0].contains(&format!("cannot connect to http://127.0.0.1:{port}")),
        "{}",
        failed[0]
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("delivery recovered"))
            .count(),
        1,
        "{log}"
    );
}
