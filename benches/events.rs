//! Event throughput after the tracker: encoding, spool append, file sink.
//!
//! The events are the ones the tracker emits for the lab's real 4.10
//! capture (`tests/fixtures/lab-4.10/status.txt`, five connections), repeated
//! with their own ids until there are enough for a steady figure. Criterion
//! reports events/s (`Throughput::Elements`):
//!
//! * `encode` — `Event::to_json_line`, what the daemon does to every event
//!   (target: 1,000,000 events/s);
//! * `spool_append` — one fsynced append of a 500-event batch to a sink's
//!   spool, what every poll with changes costs before the checkpoint;
//! * `file_sink` — `FileSink::send` of a 500-event batch (the default
//!   `batch_max_events` before batches were bounded by bytes) and of a
//!   batch of the default `batch_max_bytes` (1 MiB), each written and
//!   fdatasync'ed; and the whole delivery path (spool append, drain, file
//!   write, acknowledgement) for 50,000 events enqueued 500 or 5,000 at a
//!   time, as polls with that many changes would, until a shutdown has
//!   delivered the last of them (target: 200,000 events/s with one fsync
//!   per batch).
//!
//! The files go to a temporary directory (`TMPDIR`); fsync cost depends on
//! that filesystem, so put it on the disk the daemon's state would use.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use swantrail::config::{RetrySettings, SpoolSettings};
use swantrail::event::Event;
use swantrail::sink::file::FileSink;
use swantrail::sink::spool::Spool;
use swantrail::sink::{Batch, Delivery, Sink};
use swantrail::track::{Tracker, TrackerConfig};

/// Events per enqueue and per small batch: one poll's worth.
const BATCH: usize = 500;

/// `count` events as the tracker makes them for a real capture.
fn events(count: usize) -> Vec<Event> {
    let text = common::read(&common::fixture("tests/fixtures/lab-4.10/status.txt"));
    let mut snapshot = swantrail::parse(&text);
    snapshot.taken_at = Some(1_795_857_662);
    let mut tracker = Tracker::new(TrackerConfig::new("west"));
    let seed = tracker.observe(&snapshot);
    assert!(!seed.is_empty(), "the lab capture gives events");
    (0..count)
        .map(|i| {
            let mut e = seed[i % seed.len()].clone();
            e.event.id = format!("{:032x}", i);
            e.event.sequence = i as u64;
            e
        })
        .collect()
}

fn ndjson(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.to_json_line());
        out.push('\n');
    }
    out
}

fn encode(c: &mut Criterion) {
    let events = events(10_000);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("to_json_line", |b| {
        b.iter(|| {
            for e in &events {
                black_box(e.to_json_line());
            }
        })
    });
    group.finish();
}

fn spool_append(c: &mut Criterion) {
    let batch = ndjson(&events(BATCH));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut spool = Spool::open(dir.path(), 16 << 20).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("spool_append");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("500-event-batch-fsynced", |b| {
        b.iter(|| {
            spool
                .append(batch.as_bytes(), BATCH as u64)
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    group.finish();
}

fn file_sink(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let batch = Batch::from_ndjson(ndjson(&events(BATCH)));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    // Rotation off: the figure is the write and the fdatasync.
    let mut sink = FileSink::new(dir.path().join("events.ndjson"), 0, 0);
    let mut group = c.benchmark_group("file_sink");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("send-500-event-batch-fdatasync", |b| {
        b.iter(|| {
            runtime
                .block_on(sink.send(&batch))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    // As many events as a batch of the default batch_max_bytes holds.
    let budget = SpoolSettings::default().batch_max_bytes as usize;
    let mut full = String::new();
    let mut in_full = 0;
    for e in events(10_000) {
        let line = e.to_json_line();
        if full.len() + line.len() + 1 > budget {
            break;
        }
        full.push_str(&line);
        full.push('\n');
        in_full += 1;
    }
    let full = Batch::from_ndjson(full);
    group.throughput(Throughput::Elements(in_full as u64));
    group.bench_function(format!("send-1MiB-batch-{in_full}-events-fdatasync"), |b| {
        b.iter(|| {
            runtime
                .block_on(sink.send(&full))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });

    const DELIVERED: usize = 50_000;
    let lines: Vec<String> = events(DELIVERED).iter().map(Event::to_json_line).collect();
    group.throughput(Throughput::Elements(DELIVERED as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for per_poll in [BATCH, 10 * BATCH] {
        let name = if per_poll == BATCH {
            "delivery-50k-events-spool-drain-file".to_string()
        } else {
            format!("delivery-50k-events-{per_poll}-per-poll")
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")),
                |state| {
                    runtime.block_on(async {
                        let sink = FileSink::new(state.path().join("events.ndjson"), 0, 0);
                        let delivery = Delivery::builder(state.path())
                            .add_sink(
                                "file",
                                &SpoolSettings::default(),
                                &RetrySettings::default(),
                                sink,
                            )
                            .unwrap_or_else(|e| panic!("{e}"))
                            .start();
                        // One poll's worth at a time, as the daemon enqueues.
                        for chunk in lines.chunks(per_poll) {
                            delivery
                                .enqueue(chunk)
                                .await
                                .unwrap_or_else(|e| panic!("{e}"));
                        }
                        // Shutdown sends the last, partial batch at once
                        // rather than after batch_max_wait, and returns once
                        // everything is delivered.
                        let left = delivery
                            .shutdown(Duration::from_secs(60))
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                        assert_eq!(left, 0, "every event delivered");
                    });
                    state
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    encode(&mut criterion);
    spool_append(&mut criterion);
    file_sink(&mut criterion);
    criterion.final_summary();
}
