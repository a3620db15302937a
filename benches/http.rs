//! Throughput of the HTTP sink end to end on loopback: events enqueued into
//! the spool (fsynced), drained in batches, gzip-compressed, POSTed, and
//! decoded by an in-process receiver that keeps every event.
//!
//! Not a criterion benchmark: one run of 200,000 events per mode is the
//! figure an operator asks for ("can it keep up?"), printed as events/s of
//! wall time and per CPU-second of the sink (the process's CPU less the
//! receiver thread's), since wall time on a shared machine measures the
//! neighbours; the README quotes both. Run with `cargo bench --bench http`
//! (`-- bulk` for the modes whose label has "bulk").

mod common;
#[path = "../tests/integration/support/http_receiver.rs"]
mod http_receiver;

use std::time::{Duration, Instant};

use common::cpu;
use http_receiver::{Protocol, Receiver};
use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::http::client::{Auth, ClientSettings, TlsSettings};
use swantrail::sink::http::{Compression, HttpSink, HttpSinkConfig, Mode, elasticsearch};
use swantrail::sink::{Delivery, Encoding};

const EVENTS: u32 = 200_000;

/// A `child-sa-established` event of the usual size (about 750 bytes).
fn event(n: u32) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-28T09:25:42Z","ecs":{{"version":"8.11.0"}},"event":{{"id":"{n:032x}","kind":"event","category":["network","session"],"type":["start"],"action":"child-sa-established","sequence":{n},"module":"libreswan","dataset":"libreswan.tunnel"}},"observer":{{"hostname":"west","vendor":"libreswan","product":"libreswan","type":"vpn","version":"4.10"}},"source":{{"ip":"192.0.2.1"}},"destination":{{"ip":"192.0.2.2","port":500}},"user":{{"name":"@east-v2"}},"libreswan":{{"connection":{{"name":"v2-tun"}},"sa":{{"serial":{n},"kind":"child","ike_version":2,"state":"STATE_V2_ESTABLISHED_CHILD_SA","parent_serial":39,"spi_in":"ecd27db7","spi_out":"c0ffee01"}},"tunnel":{{"up_since":"2026-11-28T09:20:48Z","duration_s":254,"rekeys":1,"bytes_in":47536,"bytes_out":47536}},"pluto":{{"generation":0}}}}}}"#
    )
}

/// Starts the receiver on a runtime of its own, on its own thread, in
/// counting mode: a real Elasticsearch or collector is another process, so
/// its work must not share the sink's runtime or be counted as the sink's.
fn start_receiver(protocol: Protocol) -> (Receiver, tokio::runtime::Handle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("receiver runtime");
        runtime.block_on(async move {
            let receiver = Receiver::start(protocol).await;
            receiver.state.lock().expect("state").counting = true;
            let handle = tokio::runtime::Handle::current();
            tx.send((receiver, handle)).expect("hand over the receiver");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("receiver started")
}

/// CPU time of the receiver's thread, asked on that thread.
async fn receiver_cpu(handle: &tokio::runtime::Handle) -> Duration {
    handle
        .spawn(async { cpu(libc::RUSAGE_THREAD) })
        .await
        .expect("receiver thread answers")
}

async fn run(label: &str, protocol: Protocol, mode: Mode, compression: Compression) {
    // `cargo bench --bench http -- bulk` runs only the modes whose label has "bulk".
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
        return;
    }
    let (receiver, receiver_runtime) = start_receiver(protocol);
    let state = tempfile::tempdir().expect("temp dir");
    let config = HttpSinkConfig {
        name: "bench".into(),
        url: receiver.url().parse().expect("url"),
        mode,
        compression,
        encoding: Encoding::Ecs,
        auth: Auth::None,
        client: ClientSettings {
            tls: TlsSettings {
                verify: true,
                ..TlsSettings::default()
            },
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            headers: Vec::new(),
        },
        spool: SpoolSettings {
            max_bytes: 1 << 30,
            full_policy: FullPolicy::Block,
            segment_bytes: 64 << 20,
            batch_max_events: 2000,
            batch_max_bytes: 2 << 20,
            batch_max_wait: Duration::from_millis(5),
        },
        retry: RetrySettings::default(),
    };
    let delivery = Delivery::builder(state.path())
        .add_sink(
            "bench",
            &config.spool.clone(),
            &config.retry.clone(),
            HttpSink::new(config),
        )
        .expect("spool")
        .start();
    let lines: Vec<String> = (0..EVENTS).map(event).collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let started = Instant::now();
    let cpu_before = cpu(libc::RUSAGE_SELF);
    let receiver_before = receiver_cpu(&receiver_runtime).await;
    for chunk in lines.chunks(2000) {
        delivery.enqueue(chunk).await.expect("enqueue");
    }
    while delivery.stats()[0].delivered_events < u64::from(EVENTS) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let receiver_used = receiver_cpu(&receiver_runtime).await - receiver_before;
    let sink_used = cpu(libc::RUSAGE_SELF) - cpu_before - receiver_used;
    let requests = receiver.requests();
    let (counted, decoded) = {
        let state = receiver.state.lock().expect("state");
        (state.counted, state.decoded_bytes)
    };
    assert_eq!(
        counted,
        u64::from(EVENTS),
        "every event reached the receiver once"
    );
    println!(
        "{label}: {EVENTS} events ({:.0} MiB of NDJSON) in {:.2} s = {:.0} events/s wall; \
         sink CPU {:.2} s = {:.0} events per CPU-second (receiver thread {:.2} s); {} requests, receiver decoded {:.0} MiB",
        bytes as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        f64::from(EVENTS) / elapsed.as_secs_f64(),
        sink_used.as_secs_f64(),
        f64::from(EVENTS) / sink_used.as_secs_f64(),
        receiver_used.as_secs_f64(),
        requests.len(),
        decoded as f64 / 1048576.0,
    );
    assert!(
        requests
            .iter()
            .all(|r| r.gzip == (compression == Compression::Gzip))
    );
    delivery
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shutdown");
}

#[tokio::main]
async fn main() {
    run(
        "ndjson, gzip",
        Protocol::Ndjson,
        Mode::Ndjson,
        Compression::Gzip,
    )
    .await;
    run(
        "ndjson, no compression",
        Protocol::Ndjson,
        Mode::Ndjson,
        Compression::None,
    )
    .await;
    let index = elasticsearch::IndexName::parse(elasticsearch::DEFAULT_INDEX).expect("index");
    run(
        "elasticsearch _bulk, gzip",
        Protocol::Elasticsearch,
        Mode::Elasticsearch { index },
        Compression::Gzip,
    )
    .await;
}
