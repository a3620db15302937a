//! Parse throughput on a gateway-sized `ipsec status`: 10,000 tunnels.
//!
//! The dumps come from the synthetic generator (`swantrail::synth`), one per
//! dialect the field runs most: 4.10 with `000 ` prefixes, 5.4 without.
//! Criterion reports MB/s (`Throughput::Bytes`); the README quotes them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use swantrail::synth::{Dialect, status_dump};

const TUNNELS: usize = 10_000;

fn parse_status(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_status_10k_tunnels");
    // One dump is tens of MB: a few samples give a stable figure quickly.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for (label, dialect) in [
        ("4.10-prefixed", Dialect::V4_10),
        ("5.4-unprefixed", Dialect::V5_4),
    ] {
        let dump = status_dump(TUNNELS, dialect);
        group.throughput(Throughput::Bytes(dump.text.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| swantrail::parse(black_box(&dump.text)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse_status);
criterion_main!(benches);
