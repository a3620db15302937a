//! The HTTP sink against receivers that speak each protocol (see
//! `http_receiver`), through the real spool and drain: what arrives, what is
//! retried, what is dead-lettered, and that nothing is lost or duplicated.

use std::time::{Duration, Instant};

use crate::support::http_receiver::{Protocol, Receiver, Reply};
use crate::support::http_sink::{
    config, es_mode, events, expected_ids, ids, start, wait_delivered,
};
use swantrail::sink::Batch;
use swantrail::sink::http::client::{Auth, SecretSource};
use swantrail::sink::http::{HttpSink, Mode, splunk};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_batches_arrive_gzipped_with_headers_and_every_event_once() {
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let state = tempfile::tempdir().unwrap();
    let delivery = start(
        state.path(),
        config(&format!("{}/ingest", receiver.url()), Mode::Ndjson),
    );
    for chunk in events(0..1000).chunks(50) {
        delivery.enqueue(chunk).await.unwrap();
    }
    wait_delivered(&delivery, 1000, Duration::from_secs(20)).await;
    assert_eq!(ids(&receiver.events(), "/event/id"), expected_ids(0..1000));
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.gzip), "every body is gzip");
    assert!(requests.iter().all(|r| r.path == "/ingest"));
    assert_eq!(requests[0].headers["content-type"], "application/x-ndjson");
    assert_eq!(requests[0].headers["x-test"], "yes");
    assert!(
        requests
            .iter()
            .all(|r| r.body.split(|b| *b == b'\n').count() <= 101),
        "batches of at most 100"
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_partial_bulk_failures_are_retried_and_each_event_is_one_document() {
    let receiver = Receiver::start(Protocol::Elasticsearch).await;
    // The first bulk request: items 2 and 5 are refused for now (429, 503).
    receiver.script([Reply::Items(vec![201, 201, 429, 201, 201, 503])]);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(&receiver.url(), es_mode());
    cfg.spool.batch_max_wait = Duration::from_millis(200);
    let delivery = start(state.path(), cfg);
    delivery.enqueue(&events(0..10)).await.unwrap();
    wait_delivered(&delivery, 10, Duration::from_secs(20)).await;
    let docs = receiver.docs();
    assert_eq!(docs.len(), 10, "one document per event");
    assert_eq!(
        docs.keys().cloned().collect::<Vec<_>>(),
        expected_ids(0..10)
    );
    assert!(
        docs.values()
            .all(|(index, _)| index == "logs-libreswan.tunnel-default")
    );
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.path == "/_bulk" && r.gzip));
    // The second request holds only the two refused events, nothing twice.
    let second = String::from_utf8(requests[1].body.clone()).unwrap();
    let resent: Vec<&str> = second.lines().step_by(2).collect();
    assert_eq!(resent.len(), 2, "{second}");
    assert!(
        resent[0].contains(&expected_ids(2..3)[0]) && resent[1].contains(&expected_ids(5..6)[0]),
        "{second}"
    );
    assert_eq!(requests.len(), 2);
    assert_eq!(delivery.stats()[0].dead_lettered_events, 0);
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn elasticsearch_the_same_spool_delivered_twice_leaves_one_document_per_event() {
    // A SIGKILL between send and acknowledgement sends the batch again.
    let receiver = Receiver::start(Protocol::Elasticsearch).await;
    let mut sink = HttpSink::new(config(&receiver.url(), es_mode()));
    let mut ndjson = events(0..20).join("\n");
    ndjson.push('\n');
    let batch = Batch::from_ndjson(ndjson);
    use swantrail::sink::http::answer::Verdict;
    assert_eq!(sink.deliver(&batch).await, Verdict::Delivered);
    assert_eq!(
        sink.deliver(&batch).await,
        Verdict::Delivered,
        "409 counts as delivered"
    );
    assert_eq!(receiver.docs().len(), 20);
    let second = String::from_utf8(receiver.requests()[1].body.clone()).unwrap();
    assert!(
        second
            .lines()
            .step_by(2)
            .all(|l| l.starts_with(r#"{"create":"#))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_batch_goes_to_the_dead_letter_file_with_status_and_body_and_the_rest_flows() {
    let receiver = Receiver::start(Protocol::Ndjson).await;
    receiver.script([Reply::Status {
        status: 400,
        body: r#"{"error":"field [x] not allowed"}"#.into(),
        retry_after: None,
    }]);
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), config(&receiver.url(), Mode::Ndjson));
    delivery.enqueue(&events(0..5)).await.unwrap();
    wait_delivered(&delivery, 5, Duration::from_secs(10)).await;
    delivery.enqueue(&events(5..8)).await.unwrap();
    wait_delivered(&delivery, 8, Duration::from_secs(10)).await;
    let stats = delivery.stats()[0].clone();
    assert_eq!((stats.dead_lettered_events, stats.delivered_events), (5, 3));
    let dead = std::fs::read_to_string(state.path().join("dead-letter/http.ndjson")).unwrap();
    assert_eq!(dead.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["reason"],
        r#"HTTP 400 Bad Request: {"error":"field [x] not allowed"}"#
    );
    assert_eq!(first["event"]["event"]["sequence"], 0);
    assert_eq!(ids(&receiver.events(), "/event/id"), expected_ids(5..8));
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_closed_connections_and_stalls_are_retried_until_delivered() {
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let busy = |status| Reply::Status {
        status,
        body: "try later".into(),
        retry_after: None,
    };
    receiver.script([
        busy(500),
        Reply::Close,
        busy(503),
        Reply::Stall(Duration::from_secs(3)),
        busy(401),
    ]);
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), config(&receiver.url(), Mode::Ndjson));
    delivery.enqueue(&events(0..30)).await.unwrap();
    wait_delivered(&delivery, 30, Duration::from_secs(30)).await;
    let stats = delivery.stats()[0].clone();
    assert_eq!(
        (stats.delivered_events, stats.dead_lettered_events),
        (30, 0)
    );
    // The stalled request timed out (2 s) and its batch was sent again; the
    // receiver may have taken it too, so count distinct ids.
    let mut got = ids(&receiver.events(), "/event/id");
    got.dedup();
    assert_eq!(got, expected_ids(0..30));
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert!(statuses.starts_with(&[500, 0, 503]), "{statuses:?}");
    assert!(
        statuses.contains(&401) && statuses.ends_with(&[200]),
        "{statuses:?}"
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_in_seconds_or_as_a_date_is_respected_to_the_measured_moment() {
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let scripted = Instant::now();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(6));
    receiver.script([
        Reply::Status {
            status: 429,
            body: "slow down".into(),
            retry_after: Some("2".into()),
        },
        Reply::Status {
            status: 503,
            body: "maintenance".into(),
            retry_after: Some(date),
        },
    ]);
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), config(&receiver.url(), Mode::Ndjson));
    delivery.enqueue(&events(0..3)).await.unwrap();
    wait_delivered(&delivery, 3, Duration::from_secs(20)).await;
    let at: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    let first_wait = at[1] - at[0];
    let until_date = at[2] - scripted;
    println!(
        "Retry-After: 2 -> next request after {first_wait:?}; Retry-After: <date 6 s after scripting> -> request {until_date:?} after scripting"
    );
    assert!(first_wait >= Duration::from_secs(2), "{first_wait:?}");
    // An HTTP date has one-second resolution: at least 5 of the 6 s.
    assert!(until_date >= Duration::from_secs(5), "{until_date:?}");
    assert_eq!(ids(&receiver.events(), "/event/id"), expected_ids(0..3));
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_invalid_event_is_dead_lettered_alone_and_the_others_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, "t0ken").unwrap();
    let receiver = Receiver::start(Protocol::SplunkHec {
        token: "t0ken".into(),
    })
    .await;
    let mut cfg = config(
        &receiver.url(),
        Mode::SplunkHec(splunk::Envelope {
            source: "swantrail".into(),
            sourcetype: splunk::DEFAULT_SOURCETYPE.into(),
            index: None,
        }),
    );
    cfg.auth = Auth::Bearer {
        scheme: "Splunk".into(),
        token: SecretSource::File(token_file),
    };
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), cfg);
    // An event whose `event` HEC would take as blank: not JSON an encoder can read.
    let mut batch = events(0..3);
    batch.push("[1]".into());
    batch.extend(events(3..5));
    delivery.enqueue(&batch).await.unwrap();
    wait_delivered(&delivery, 6, Duration::from_secs(20)).await;
    let stats = delivery.stats()[0].clone();
    assert_eq!((stats.delivered_events, stats.dead_lettered_events), (5, 1));
    assert_eq!(
        ids(&receiver.events(), "/event/event/id"),
        expected_ids(0..5)
    );
    let dead = std::fs::read_to_string(state.path().join("dead-letter/http.ndjson")).unwrap();
    assert!(
        dead.contains("event 3 of the batch is not a JSON object"),
        "{dead}"
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn splunk_hec_invalid_event_number_splits_the_answer() {
    let receiver = Receiver::start(Protocol::SplunkHec { token: "t".into() }).await;
    receiver.script([Reply::Status {
        status: 400,
        body: r#"{"text":"Invalid data format","code":6,"invalid-event-number":2}"#.into(),
        retry_after: None,
    }]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t"), "t").unwrap();
    let mut cfg = config(
        &receiver.url(),
        Mode::SplunkHec(splunk::Envelope {
            source: "swantrail".into(),
            sourcetype: splunk::DEFAULT_SOURCETYPE.into(),
            index: None,
        }),
    );
    cfg.auth = Auth::Bearer {
        scheme: "Splunk".into(),
        token: SecretSource::File(dir.path().join("t")),
    };
    let mut sink = HttpSink::new(cfg);
    let mut ndjson = events(0..4).join("\n");
    ndjson.push('\n');
    use swantrail::sink::http::answer::{ItemOutcome, Verdict};
    let Verdict::PerEvent { outcomes, .. } = sink.deliver(&Batch::from_ndjson(ndjson)).await else {
        panic!("expected per-event outcomes");
    };
    assert_eq!(
        outcomes[..2],
        [ItemOutcome::Delivered, ItemOutcome::Delivered]
    );
    assert!(
        matches!(&outcomes[2], ItemOutcome::Rejected(r) if r.contains("HTTP 400") && r.contains("Invalid data format"))
    );
    assert!(matches!(outcomes[3], ItemOutcome::Retry(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_envelopes_carry_the_token_and_busy_answers_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, "11111111-2222-3333-4444-555555555555\n").unwrap();
    let receiver = Receiver::start(Protocol::SplunkHec {
        token: "11111111-2222-3333-4444-555555555555".into(),
    })
    .await;
    receiver.script([Reply::Status {
        status: 503,
        body: r#"{"text":"Server is busy","code":9}"#.into(),
        retry_after: None,
    }]);
    let mut cfg = config(
        &receiver.url(),
        Mode::SplunkHec(splunk::Envelope {
            source: "swantrail".into(),
            sourcetype: splunk::DEFAULT_SOURCETYPE.into(),
            index: Some("vpn".into()),
        }),
    );
    cfg.auth = Auth::Bearer {
        scheme: "Splunk".into(),
        token: SecretSource::File(token_file),
    };
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), cfg);
    delivery.enqueue(&events(0..40)).await.unwrap();
    wait_delivered(&delivery, 40, Duration::from_secs(20)).await;
    let got = receiver.events();
    assert_eq!(ids(&got, "/event/event/id"), expected_ids(0..40));
    assert_eq!(got[0]["sourcetype"], "libreswan:swantrail");
    assert_eq!(got[0]["host"], "west");
    assert_eq!(got[0]["index"], "vpn");
    assert!(got[0]["time"].as_f64().unwrap() > 1.7e9);
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r.path == "/services/collector/event")
    );
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_log_records_carry_the_event_and_its_resource() {
    let receiver = Receiver::start(Protocol::Otlp).await;
    let state = tempfile::tempdir().unwrap();
    let delivery = start(state.path(), config(&receiver.url(), Mode::Otlp));
    delivery.enqueue(&events(0..25)).await.unwrap();
    wait_delivered(&delivery, 25, Duration::from_secs(20)).await;
    let records = receiver.events();
    assert_eq!(records.len(), 25);
    let uid = |r: &serde_json::Value| {
        r["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "log.record.uid")
            .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
            .unwrap()
    };
    let mut got: Vec<String> = records.iter().map(uid).collect();
    got.sort();
    assert_eq!(got, expected_ids(0..25));
    // tunnel-up is informational in the syslog table, which OTLP shares.
    assert_eq!(records[0]["severityText"], "INFO");
    assert_eq!(records[0]["severityNumber"], 9);
    assert!(
        records[0]["timeUnixNano"]
            .as_str()
            .unwrap()
            .starts_with("17958579")
    );
    let resource = records[0]["resource"]["attributes"].to_string();
    assert!(resource.contains(r#""service.name""#) && resource.contains("swantrail"));
    assert!(resource.contains(r#""host.name""#) && resource.contains("west"));
    let request = &receiver.requests()[0];
    assert_eq!(request.path, "/v1/logs");
    assert_eq!(request.headers["content-type"], "application/json");
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn otlp_partial_success_is_delivered_not_resent() {
    let receiver = Receiver::start(Protocol::Otlp).await;
    receiver.script([Reply::PartialSuccess(2)]);
    let mut sink = HttpSink::new(config(&receiver.url(), Mode::Otlp));
    let mut ndjson = events(0..5).join("\n");
    ndjson.push('\n');
    use swantrail::sink::http::answer::Verdict;
    assert_eq!(
        sink.deliver(&Batch::from_ndjson(ndjson)).await,
        Verdict::Delivered
    );
    assert_eq!(receiver.requests().len(), 1);
}

/// `encoding = "ocsf"` end to end: the daemon watches the lab series and
/// its `ndjson` HTTP sink posts to the receiver; every line of every body
/// is the OCSF Tunnel Activity event `swantrail replay --encoding ocsf`
/// gives for it, valid by the OCSF schema, each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_encoding_from_the_daemon_posts_each_event_once_as_ocsf() {
    use crate::support::config::DaemonConfig;
    use crate::support::daemon::{Daemon, feed, lab_series, ocsf_by_id};

    let receiver = Receiver::start(Protocol::Ndjson).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let series = lab_series();
    let expected = ocsf_by_id(&series);
    let config = DaemonConfig::new(&root)
        .file_source("lab", &root.join("watch/status.txt"))
        .with("settle", "30ms")
        .http_sink("siem", &format!("{}/in", receiver.url()), "ndjson")
        .with("encoding", "ocsf")
        .spool("batch_max_wait", "20ms")
        .retry("initial_backoff", "50ms")
        .retry("max_backoff", "200ms")
        .write();
    let fed = tokio::task::spawn_blocking(move || {
        let daemon = Daemon::start(&config, &root.join("daemon.log"));
        feed(&root, &daemon, &series);
        daemon
    });
    let daemon = fed.await.unwrap();
    let want = expected.len();
    receiver
        .wait(Duration::from_secs(60), "every OCSF event", |s| {
            s.events.len() >= want
        })
        .await;
    let got = receiver.events();
    assert_eq!(got.len(), expected.len(), "each event once");
    for event in &got {
        let id = event["metadata"]["uid"].as_str().expect("metadata.uid");
        assert_eq!(event, &expected[id], "the OCSF event of {id}");
    }
    crate::support::assert_ocsf_valid(&got);
    let requests = receiver.requests();
    assert_eq!(requests[0].headers["content-type"], "application/x-ndjson");
    assert!(
        tokio::task::spawn_blocking(move || daemon.terminate().success())
            .await
            .unwrap()
    );
}
