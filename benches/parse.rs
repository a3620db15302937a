//! Parse throughput on gateway-sized dumps, per dialect and per command.
//!
//! Two kinds of input: the synthetic generator's 10,000-tunnel `status`
//! (4.10 with `000 ` prefixes, 5.4 without), and real captures (the lab's
//! 4.10, libreswan's own 4.15 / 5.0 / 5.3 / 5.4 test transcripts) scaled up
//! by repetition to about 16 MB, for `status`, `showstates` and
//! `trafficstatus`. Criterion reports MB/s (`Throughput::Bytes`).
//!
//! Before the Criterion runs, a table compares the parser's CPU time with
//! the CPU time `wc -l` takes on the same dump written to a file, measured
//! in the same run: the target (issue 25) is a parser at 1 GB/s or more
//! on `status`, 4.x and 5.x. The next columns are the CPU time of a
//! streamed feed (the daemon's: records into a listing as they are read),
//! and of what `swantrail parse` does after reading its input (records
//! encoded as JSON as they are read, the whole written to `io::sink`), in
//! `wc -l`s; the command's target is 10 `wc -l`s, reading included. Set
//! `SWANTRAIL_BENCH_SKIP_WC=1` to leave the table out.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use swantrail::listing::ListingBuilder;
use swantrail::status::LineFeed;
use swantrail::synth::{Dialect, status_dump};

/// The allocator the binary and the daemon run with (`src/main.rs`): the
/// snapshot is a few hundred thousand small strings, and the parser is
/// measured as it runs there, not with glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TUNNELS: usize = 10_000;

/// Bytes each real capture is scaled up to.
const SCALED_BYTES: usize = 16 << 20;

/// The real captures, by dialect and command.
const CAPTURES: &[(&str, &str)] = &[
    (
        "status/4.10-prefixed-lab",
        "tests/fixtures/lab-4.10/status.txt",
    ),
    (
        "status/4.15-prefixed",
        "v4.15/status/ikev2-42-rw-replace-responder__road__1.txt",
    ),
    (
        "status/5.0",
        "v5.0/status/ikev2-42-rw-replace-responder__road__1.txt",
    ),
    (
        "status/5.3",
        "v5.3.2/status/ikev2-42-rw-replace-responder__road__1.txt",
    ),
    (
        "status/5.4-nameless",
        "v5.4/status/ikev2-42-rw-replace-responder__road__1.txt",
    ),
    (
        "showstates/4.15-prefixed",
        "v4.15/showstates/ikev2-rw-multiple-subnets-4-mismatch__road__1.txt",
    ),
    (
        "showstates/5.0",
        "v5.0/showstates/ikev2-rw-multiple-subnets-4-mismatch__road__1.txt",
    ),
    (
        "showstates/5.4-nameless",
        "v5.4/showstates/ikev1-hostpair-02__east__1.txt",
    ),
    (
        "trafficstatus/4.15-prefixed",
        "v4.15/trafficstatus/ikev2-rw-multiple-subnets-4-mismatch__road__1.txt",
    ),
    (
        "trafficstatus/5.0",
        "v5.0/trafficstatus/ikev2-rw-multiple-subnets-4-mismatch__road__1.txt",
    ),
    (
        "trafficstatus/5.4",
        "v5.4/trafficstatus/ikev2-rw-multiple-subnets-4-mismatch__road__1.txt",
    ),
];

/// Every dump of the benchmark: (label, text).
fn dumps() -> Vec<(String, String)> {
    let mut all = vec![
        (
            "synth-status-10k/4.10-prefixed".to_string(),
            status_dump(TUNNELS, Dialect::V4_10).text,
        ),
        (
            "synth-status-10k/5.4-nameless".to_string(),
            status_dump(TUNNELS, Dialect::V5_4).text,
        ),
    ];
    for (label, path) in CAPTURES {
        let path = if path.starts_with("tests/") {
            common::fixture(path)
        } else {
            common::corpus(path)
        };
        let text = common::scale_to(&common::read(&path), SCALED_BYTES);
        all.push((format!("real-x{label}"), text));
    }
    all
}

/// The `wc -l` comparison, printed once before the Criterion runs.
fn wc_table(dumps: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
    println!(
        "{:<40} {:>6} {:>10} {:>9} {:>8} {:>9} {:>9} {:>8}",
        "dump", "MB", "parse MB/s", "wc-l MB/s", "parse/wc", ">=1GB/s", "stream/wc", "json/wc"
    );
    for (label, text) in dumps {
        let path = dir.path().join("dump.txt");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write the dump: {e}"));
        let wc = common::wc_l_cpu(&path, 7);
        let parse = common::least_cpu(5, || {
            black_box(swantrail::parse(black_box(text)));
        });
        // The daemon's way: records into a listing as they are read.
        let stream = common::least_cpu(5, || {
            let mut feed = LineFeed::streaming(ListingBuilder::new());
            feed.text(black_box(text));
            black_box(feed.finish_streamed(None));
        });
        // `swantrail parse` after its read: records encoded as they are
        // read, then the whole JSON written nowhere.
        let json = common::least_cpu(5, || {
            let mut feed = LineFeed::encoding();
            feed.text(black_box(text));
            let (rest, records) = feed.finish_json(None);
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::sink());
            records
                .unwrap_or_default()
                .write(&rest, &mut out)
                .unwrap_or_else(|e| panic!("cannot encode the snapshot: {e}"));
        });
        let in_wc = |t: Duration| t.as_secs_f64() / wc.as_secs_f64().max(1e-6);
        let mb_s = common::mb_per_s(text.len(), parse);
        println!(
            "{:<40} {:>6.1} {:>10.0} {:>9.0} {:>7.1}x {:>9} {:>8.1}x {:>7.1}x",
            label,
            text.len() as f64 / 1e6,
            mb_s,
            common::mb_per_s(text.len(), wc),
            in_wc(parse),
            if mb_s >= 1000.0 { "met" } else { "missed" },
            in_wc(stream),
            in_wc(json),
        );
    }
}

fn parse_dumps(c: &mut Criterion, dumps: &[(String, String)]) {
    let mut group = c.benchmark_group("parse");
    // One dump is tens of MB: a few samples give a stable figure quickly.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    for (label, text) in dumps {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(label.as_str(), |b| {
            b.iter(|| swantrail::parse(black_box(text)))
        });
    }
    group.finish();
}

fn main() {
    let dumps = dumps();
    if std::env::var_os("SWANTRAIL_BENCH_SKIP_WC").is_none() {
        wc_table(&dumps);
    }
    let mut criterion = Criterion::default().configure_from_args();
    parse_dumps(&mut criterion, &dumps);
    criterion.final_summary();
}
