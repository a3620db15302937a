//! The HTTP sink's test fixtures: events with ids the test can predict, a
//! sink configuration with quick retries, and a delivery of that one sink
//! through the real spool and drain. Shared by the HTTP sink's tests in the
//! integration binary and by the one that needs a process to itself.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::http::client::{Auth, ClientSettings, TlsSettings};
use swantrail::sink::http::{Compression, HttpSink, HttpSinkConfig, Mode, elasticsearch};
use swantrail::sink::{Delivery, Encoding};

/// An event as the tracker writes it, with a distinct id and sequence.
pub fn event(n: u32) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-28T09:25:{:02}Z","ecs":{{"version":"8.11.0"}},"event":{{"id":"{:032x}","kind":"event","category":["network","session"],"type":["start"],"action":"tunnel-up","sequence":{n},"module":"libreswan","dataset":"libreswan.tunnel"}},"observer":{{"hostname":"west","vendor":"libreswan","product":"libreswan","type":"vpn"}},"destination":{{"ip":"192.0.2.2","port":500}},"libreswan":{{"connection":{{"name":"v2-tun"}},"pluto":{{"generation":0}}}}}}"#,
        n % 60,
        u128::from(n) + 0xabc0_0000
    )
}

/// The events numbered `range`, each as [`event`] writes it.
pub fn events(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(event).collect()
}

/// An HTTP sink to `url` with gzip, a test header, a 10 ms batch wait and
/// quick retries, so that a test waits for the sink's logic, not its clock.
pub fn config(url: &str, mode: Mode) -> HttpSinkConfig {
    HttpSinkConfig {
        name: "http".into(),
        url: url.parse().unwrap(),
        mode,
        compression: Compression::Gzip,
        auth: Auth::None,
        client: ClientSettings {
            tls: TlsSettings {
                verify: true,
                ..TlsSettings::default()
            },
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            headers: vec![("X-Test".into(), "yes".into())],
        },
        spool: SpoolSettings {
            max_bytes: 64 << 20,
            full_policy: FullPolicy::Block,
            segment_bytes: 1 << 20,
            batch_max_events: 100,
            batch_max_bytes: 1 << 20,
            batch_max_wait: Duration::from_millis(10),
        },
        retry: RetrySettings {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
        },
        encoding: Encoding::Ecs,
    }
}

/// The Elasticsearch mode into the default data stream.
pub fn es_mode() -> Mode {
    Mode::Elasticsearch {
        index: elasticsearch::IndexName::parse(elasticsearch::DEFAULT_INDEX).unwrap(),
    }
}

/// A delivery with this one HTTP sink, its spool under `state`.
pub fn start(state: &Path, config: HttpSinkConfig) -> Delivery {
    Delivery::builder(state)
        .add_sink(
            &config.name.clone(),
            &config.spool.clone(),
            &config.retry.clone(),
            HttpSink::new(config),
        )
        .unwrap()
        .start()
}

/// The string at `pointer` in every value, sorted (`?` where there is none).
pub fn ids(values: &[serde_json::Value], pointer: &str) -> Vec<String> {
    let mut ids: Vec<String> = values
        .iter()
        .map(|v| {
            v.pointer(pointer)
                .and_then(|i| i.as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

/// The sorted `event.id`s of [`event`] for the numbers in `range`.
pub fn expected_ids(range: std::ops::Range<u32>) -> Vec<String> {
    let mut v: Vec<String> = range
        .map(|n| format!("{:032x}", u128::from(n) + 0xabc0_0000))
        .collect();
    v.sort();
    v
}

/// Wait until the sink has delivered or dead-lettered `n` events, failing
/// after `limit`.
pub async fn wait_delivered(delivery: &Delivery, n: u64, limit: Duration) {
    let until = Instant::now() + limit;
    while delivery.stats()[0].delivered_events + delivery.stats()[0].dead_lettered_events < n {
        assert!(
            Instant::now() < until,
            "not delivered in time: {:?}",
            delivery.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
