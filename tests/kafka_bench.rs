//! Throughput of the Kafka sink to a local broker (tansu, memory storage,
//! started on loopback): events enqueued through the spool, counted once
//! the broker has acknowledged each record (`acks = all`, idempotent), then
//! read back with kcat to check that every one is there. Ignored by default
//! (it measures, it does not check behaviour); run it with
//! `cargo test --release --test kafka_bench -- --ignored --nocapture`
//! (`SWANTRAIL_BENCH_EVENTS`, `SWANTRAIL_BENCH_COMPRESSION` to vary it).
//!
//! Besides the wall time it prints the CPU this process spent: the sink,
//! the spool and librdkafka's threads (the broker is another process, and
//! on a shared machine the wall time measures the neighbours too).

// The benchmarks' helpers: CPU time by getrusage.
#[path = "../benches/common/mod.rs"]
mod bench;
// The tests' broker and consumer; the bench uses only some of them.
#[allow(dead_code)]
#[path = "integration/support/kafka.rs"]
mod kafka;
#[path = "integration/support/syslog.rs"]
mod receivers;

use std::time::{Duration, Instant};

use kafka::{Broker, BrokerOptions};
use receivers::event;
use swantrail::sink::Delivery;
use swantrail::sink::kafka::KafkaSink;

const TOPIC: &str = "bench";

/// The sink's settings for the broker at `address`, from a config text as
/// an operator writes it.
fn sink_config(address: &str, compression: &str) -> swantrail::sink::kafka::KafkaSinkConfig {
    let text = format!(
        "[[sink]]\ntype = \"kafka\"\nbrokers = [\"{address}\"]\ntopic = \"{TOPIC}\"\ncompression = \"{compression}\"\n[sink.spool]\nbatch_max_events = 10000\nbatch_max_wait = \"5ms\"\n"
    );
    let config = swantrail::config::from_toml_str(&text, std::path::Path::new("bench.toml"))
        .expect("the bench's config");
    match config.sinks.into_iter().next() {
        Some(swantrail::sink::SinkConfig::Kafka(k)) => *k,
        other => panic!("not a kafka sink: {other:?}"),
    }
}

async fn run(compression: &str, events: u64) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), BrokerOptions::default());
    broker.create_topic(TOPIC, 3);
    let config = sink_config(&broker.address(), compression);
    let (spool, retry) = (config.spool.clone(), config.retry.clone());
    let delivery = Delivery::builder(&dir.path().join("state"))
        .add_sink("kafka", &spool, &retry, KafkaSink::try_new(config).unwrap())
        .unwrap()
        .start();
    let lines: Vec<String> = (1..=events)
        .map(|n| event(n, &format!("tun-{}", n % 100), "@east").to_string())
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let started = Instant::now();
    let cpu_before = bench::cpu(libc::RUSAGE_SELF);
    for chunk in lines.chunks(2000) {
        delivery.enqueue(chunk).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while delivery.stats()[0].delivered_events < events {
        assert!(
            Instant::now() < deadline,
            "not delivered within 10 minutes: {:?}",
            delivery.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let used = bench::cpu(libc::RUSAGE_SELF) - cpu_before;
    delivery.shutdown(Duration::from_secs(5)).await.unwrap();
    let read = kafka::read_topic(&broker.address(), TOPIC, &[]);
    assert_eq!(read.len() as u64, events, "kcat read back another count");
    eprintln!(
        "{events} events ({bytes} bytes of JSON), compression {compression}, to tansu in {:.2}s: \
         {:.0} events/s wall; sink CPU {:.2}s: {:.1} µs per event, {:.0} events per CPU-second",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        used.as_secs_f64(),
        used.as_secs_f64() * 1e6 / events as f64,
        events as f64 / used.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark; run with --ignored --nocapture"]
async fn events_per_second_to_a_local_broker() {
    let events = std::env::var("SWANTRAIL_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    // lz4 and zstd are on request: with 200,000 events they did not finish
    // within 10 minutes against tansu 0.6.0 (2,000 events do, and kcat
    // reads them back), which is not yet explained.
    let compression =
        std::env::var("SWANTRAIL_BENCH_COMPRESSION").unwrap_or_else(|_| "none".to_string());
    run(&compression, events).await;
}
