//! `Tracker::observe` on a gateway of 1,000, 10,000 and 50,000 tunnels at
//! 1 % churn per poll (the target: ≤ 20 ms at 50,000), the first
//! observation (the inventory) beside it, and `Tracker::prime` (the
//! inventory without its events, what `swantrail diff` does to its first
//! dump).
//!
//! Snapshots come from the synthetic series (`swantrail::synth`, 5.4
//! `status`) and are parsed before timing: this measures the tracker alone.
//! Each iteration observes the next snapshot of the series on a clone of a
//! tracker that has seen the previous one, so every poll shows the same
//! amount of change; the clone is made, and the tracker dropped, outside
//! the timed part (the daemon keeps its tracker from poll to poll).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use swantrail::snapshot::Snapshot;
use swantrail::synth::{Churn, Dialect, Output, Series};
use swantrail::track::{Tracker, TrackerConfig};

fn snapshot(series: &Series, at: i64) -> Snapshot {
    let mut snap = swantrail::parse(&series.gateway().dump(Dialect::V5_4, Output::Status).text);
    snap.taken_at = Some(at);
    snap
}

fn observe(c: &mut Criterion) {
    let mut group = c.benchmark_group("observe_1pct_churn");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for tunnels in [1_000, 10_000, 50_000] {
        let mut series = Series::new(tunnels, Churn::even(0.01));
        let first = snapshot(&series, 1_795_100_000);
        series.advance();
        let second = snapshot(&series, 1_795_100_010);
        let mut tracker = Tracker::new(TrackerConfig::new("gw"));
        tracker.observe(&first);
        group.throughput(Throughput::Elements(tunnels as u64));
        group.bench_with_input(BenchmarkId::new("steady", tunnels), &second, |b, snap| {
            b.iter_batched(
                || tracker.clone(),
                |mut t| {
                    let events = black_box(t.observe(snap));
                    (t, events)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("inventory", tunnels), &first, |b, snap| {
            b.iter_batched(
                || Tracker::new(TrackerConfig::new("gw")),
                |mut t| {
                    let events = black_box(t.observe(snap));
                    (t, events)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("prime", tunnels), &first, |b, snap| {
            b.iter_batched(
                || Tracker::new(TrackerConfig::new("gw")),
                |mut t| {
                    t.prime(snap);
                    t
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, observe);
criterion_main!(benches);
