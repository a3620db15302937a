//! `show` of a gateway's dump: the rows (`tunnel_table`) and their text
//! (`render`), at 1,000, 10,000 and 50,000 tunnels, from a parsed 5.4
//! `status`. The target is `show` ≤ 2× the parse of the same dump;
//! `benches/parse.rs` gives the parse figure.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use swantrail::show::{RenderOptions, render, tunnel_table};
use swantrail::synth::{Dialect, status_dump};

fn show(c: &mut Criterion) {
    let mut group = c.benchmark_group("show");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let options = RenderOptions {
        width: Some(80),
        color: false,
    };
    for tunnels in [1_000, 10_000, 50_000] {
        let snap = swantrail::parse(&status_dump(tunnels, Dialect::V5_4).text);
        group.throughput(Throughput::Elements(tunnels as u64));
        group.bench_with_input(BenchmarkId::new("table", tunnels), &snap, |b, snap| {
            b.iter(|| black_box(tunnel_table(snap)))
        });
        let table = tunnel_table(&snap);
        group.bench_with_input(BenchmarkId::new("render", tunnels), &table, |b, table| {
            b.iter(|| black_box(render(table, &options)))
        });
    }
    group.finish();
}

criterion_group!(benches, show);
criterion_main!(benches);
