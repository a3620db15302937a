//! Throughput of the HTTP sink end to end on loopback: events enqueued into
//! the spool (fsynced), drained in batches, gzip-compressed, POSTed, and
//! decoded by an in-process receiver that keeps every event.
//!
//! Not a criterion benchmark: one run of 200,000 events per mode is the
//! figure an operator asks for ("can it keep up?"), printed as events/s;
//! the README quotes it. Run with `cargo bench --bench http`.

#[path = "../tests/http_receiver/mod.rs"]
mod http_receiver;

use std::time::{Duration, Instant};

use http_receiver::{Protocol, Receiver};
use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::Delivery;
use swantrail::sink::http::client::{Auth, ClientSettings, TlsSettings};
use swantrail::sink::http::{Compression, HttpSink, HttpSinkConfig, Mode, elasticsearch};

const EVENTS: u32 = 200_000;

/// A `child-sa-established` event of the usual size (about 750 bytes).
fn event(n: u32) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-28T09:25:42Z","ecs":{{"version":"8.11.0"}},"event":{{"id":"{n:032x}","kind":"event","category":["network","session"],"type":["start"],"action":"child-sa-established","sequence":{n},"module":"libreswan","dataset":"libreswan.tunnel"}},"observer":{{"hostname":"west","vendor":"libreswan","product":"libreswan","type":"vpn","version":"4.10"}},"source":{{"ip":"192.0.2.1"}},"destination":{{"ip":"192.0.2.2","port":500}},"user":{{"name":"@east-v2"}},"libreswan":{{"connection":{{"name":"v2-tun"}},"sa":{{"serial":{n},"kind":"child","ike_version":2,"state":"STATE_V2_ESTABLISHED_CHILD_SA","parent_serial":39,"spi_in":"ecd27db7","spi_out":"c0ffee01"}},"tunnel":{{"up_since":"2026-11-28T09:20:48Z","duration_s":254,"rekeys":1,"bytes_in":47536,"bytes_out":47536}},"pluto":{{"generation":0}}}}}}"#
    )
}

async fn run(label: &str, protocol: Protocol, mode: Mode, compression: Compression) {
    let receiver = Receiver::start(protocol).await;
    let state = tempfile::tempdir().expect("temp dir");
    let config = HttpSinkConfig {
        name: "bench".into(),
        url: receiver.url().parse().expect("url"),
        mode,
        compression,
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
    for chunk in lines.chunks(2000) {
        delivery.enqueue(chunk).await.expect("enqueue");
    }
    while delivery.stats()[0].delivered_events < u64::from(EVENTS) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let requests = receiver.requests();
    let wire: usize = requests.iter().map(|r| r.body.len()).sum();
    println!(
        "{label}: {EVENTS} events ({:.0} MiB of NDJSON) in {:.2} s = {:.0} events/s, {} requests, receiver decoded {:.0} MiB",
        bytes as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        f64::from(EVENTS) / elapsed.as_secs_f64(),
        requests.len(),
        wire as f64 / 1048576.0,
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
