//! Throughput of the syslog sink over TCP to a local rsyslog: events enqueued
//! through the spool, counted once rsyslog has written them. Ignored by
//! default (it measures, it does not check behaviour); run it with
//! `cargo test --release --test syslog_bench -- --ignored --nocapture`.
//!
//! Besides the wall time it prints the CPU this process spent (the sink;
//! rsyslog is another process), since on a shared machine the wall time
//! measures the neighbours. Both are taken when the sink has written every
//! event to rsyslog's socket; rsyslog's file is counted afterwards (each
//! count re-reads it) and must hold every event.

// The benchmarks' helpers: CPU time by getrusage.
#[path = "../benches/common/mod.rs"]
mod bench;
#[path = "integration/support/syslog.rs"]
mod receivers;

use std::time::{Duration, Instant};

use receivers::{Kind, Listen, Receiver, delivery, event, sink_config};
use swantrail::sink::syslog::Transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark; run with --ignored --nocapture"]
async fn events_per_second_over_tcp_to_rsyslog() {
    const EVENTS: u64 = 50_000;
    let receiver = Receiver::start(Kind::Rsyslog, Listen::Tcp);
    let mut config = sink_config(&receiver, Transport::Tcp);
    config.spool.batch_max_events = 1000;
    let state = tempfile::tempdir().unwrap();
    let delivery = delivery(config, state.path());
    let events: Vec<String> = (1..=EVENTS)
        .map(|n| event(n, &format!("tun-{}", n % 100), "@east").to_string())
        .collect();
    let bytes: usize = events.iter().map(String::len).sum();
    let started = Instant::now();
    let cpu_before = bench::cpu(libc::RUSAGE_SELF);
    for chunk in events.chunks(1000) {
        delivery.enqueue(chunk).await.unwrap();
    }
    // Timed until the sink has written every event to rsyslog's socket; then
    // rsyslog's file is counted, slowly, since each count re-reads it.
    let deadline = Instant::now() + Duration::from_secs(300);
    while delivery.stats()[0].delivered_events < EVENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let used = bench::cpu(libc::RUSAGE_SELF) - cpu_before;
    while receiver.count() < EVENTS as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = receiver.received();
    delivery.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len() as u64, EVENTS);
    eprintln!(
        "{EVENTS} events ({} bytes of JSON) over TCP to rsyslog in {:.2}s: {:.0} events/s wall; \
         sink CPU {:.2}s: {:.0} events per CPU-second",
        bytes,
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64(),
        used.as_secs_f64(),
        EVENTS as f64 / used.as_secs_f64()
    );
}
