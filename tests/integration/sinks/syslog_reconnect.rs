//! The syslog sink when the receiver goes away: a real rsyslog (TCP) and a
//! real syslog-ng (TLS) are stopped for 30 s in the middle of a stream of
//! events and started again; every event must arrive, duplicates only as
//! identical event ids. And a TLS receiver that must be refused keeps the
//! events in the spool.

use crate::support::syslog as receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use receivers::{Kind, Listen, Receiver, TestCa, delivery, event, sink_config};
use serde_json::Value;
use swantrail::sink::syslog::{SyslogSinkConfig, Transport};

const OUTAGE: Duration = Duration::from_secs(30);

async fn survives_an_outage(mut receiver: Receiver, config: SyslogSinkConfig) {
    let state = tempfile::tempdir().unwrap();
    let delivery = delivery(config, state.path());
    let events: Vec<Value> = (1..=300)
        .map(|n| event(n, &format!("tun-{}", n % 7), "@east"))
        .collect();
    let sent: BTreeSet<String> = events
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect();
    let mut stopped_at = None;
    let mut restarted = false;
    for (i, chunk) in events.chunks(5).enumerate() {
        let lines: Vec<String> = chunk.iter().map(Value::to_string).collect();
        delivery.enqueue(&lines).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        if i == 20 {
            receiver.stop();
            stopped_at = Some(Instant::now());
        }
        if let Some(at) = stopped_at.filter(|_| !restarted) {
            if i == 40 {
                // Halfway through the outage: the events are in the spool.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let stats = &delivery.stats()[0];
                assert!(
                    stats.failing,
                    "the sink noticed the receiver is gone: {stats:?}"
                );
                assert!(stats.pending_events > 0, "{stats:?}");
                tokio::time::sleep(OUTAGE.saturating_sub(at.elapsed())).await;
                receiver.restart();
                restarted = true;
            }
        }
    }
    let got = receiver
        .wait_for(events.len(), Duration::from_secs(60))
        .await;
    delivery.shutdown(Duration::from_secs(5)).await.unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in &got {
        let id = g.sd.get("id").cloned().unwrap_or_default();
        assert!(
            sent.contains(&id),
            "an id that was never sent arrived: {id:?}"
        );
        *counts.entry(id).or_default() += 1;
    }
    let missing: Vec<_> = sent.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never arrived at {:?}: {missing:?}",
        missing.len(),
        sent.len(),
        receiver.kind
    );
    let duplicates = counts.values().filter(|&&n| n > 1).count();
    eprintln!(
        "{:?}: {} events sent, {} messages received, {duplicates} ids twice",
        receiver.kind,
        sent.len(),
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_stopped_for_30s_over_tcp_loses_nothing() {
    let receiver = Receiver::start(Kind::Rsyslog, Listen::Tcp);
    let config = sink_config(&receiver, Transport::Tcp);
    survives_an_outage(receiver, config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_stopped_for_30s_over_tls_loses_nothing() {
    let ca = TestCa::new("swantrail test CA");
    let (cert, key) = ca.server("receiver", &["127.0.0.1"]);
    let receiver = Receiver::start(Kind::SyslogNg, Listen::Tls { cert, key });
    let mut config = sink_config(&receiver, Transport::Tls);
    config.tls.ca_file = Some(ca.ca.clone());
    survives_an_outage(receiver, config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tls_receiver_leaves_the_events_in_the_spool() {
    let ca = TestCa::new("swantrail test CA");
    let (cert, key) = ca.server("other", &["other.example"]);
    let receiver = Receiver::start(Kind::Rsyslog, Listen::Tls { cert, key });
    let mut config = sink_config(&receiver, Transport::Tls);
    config.tls.ca_file = Some(ca.ca.clone());
    let state = tempfile::tempdir().unwrap();
    let delivery = delivery(config, state.path());
    let lines: Vec<String> = (1..=10).map(|n| event(n, "t", "u").to_string()).collect();
    delivery.enqueue(&lines).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = &delivery.stats()[0];
    assert!(stats.failing, "{stats:?}");
    assert_eq!(stats.pending_events, 10, "{stats:?}");
    assert_eq!(stats.delivered_events, 0);
    assert!(receiver.received().is_empty());
    delivery.shutdown(Duration::ZERO).await.unwrap();
}
