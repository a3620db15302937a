//! The `splunk-hec` mode: Splunk's HTTP Event Collector, JSON event endpoint.
//!
//! A batch is the events' HEC envelopes concatenated
//! (`{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,"event":{…}}`),
//! the event itself embedded as it was spooled. HEC answers
//! `{"text":…,"code":N}`; its status codes follow HTTP (401/403 for a
//! missing, bad or disabled token, 503 when busy, 400 for bad data), and for
//! a batch with one bad event it names it (`invalid-event-number`): the
//! events before it were indexed, the bad one is rejected, the rest are sent
//! again. This module only builds bodies and reads answers.

use std::fmt::Write as _;

use serde::Deserialize;

use super::answer::{ItemOutcome, StatusClass, Verdict};
use super::fields::EventFields;

/// The path of HEC's JSON event endpoint.
pub const EVENT_PATH: &str = "/services/collector/event";

/// The sourcetype every event is sent with unless configured otherwise.
pub const DEFAULT_SOURCETYPE: &str = "libreswan:swantrail";

/// What is the same for every event of a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// HEC `source`.
    pub source: String,
    /// HEC `sourcetype`.
    pub sourcetype: String,
    /// HEC `index`; `None` leaves it to the token's default index.
    pub index: Option<String>,
}

/// Appends the HEC envelope of one event to the body.
pub fn encode_event(body: &mut Vec<u8>, envelope: &Envelope, line: &str, fields: &EventFields) {
    let mut head = String::with_capacity(160);
    head.push('{');
    if let Some(nanos) = fields.unix_nanos() {
        // Epoch seconds with millisecond decimals, as HEC documents `time`.
        let millis = nanos.div_euclid(1_000_000);
        let _ = write!(
            head,
            "\"time\":{}.{:03},",
            millis.div_euclid(1000),
            millis.rem_euclid(1000)
        );
    }
    if let Some(host) = &fields.observer.hostname {
        let _ = write!(head, "\"host\":{},", serde_json::Value::from(host.as_ref()));
    }
    let _ = write!(
        head,
        "\"source\":{},\"sourcetype\":{},",
        serde_json::Value::from(envelope.source.as_str()),
        serde_json::Value::from(envelope.sourcetype.as_str())
    );
    if let Some(index) = &envelope.index {
        let _ = write!(
            head,
            "\"index\":{},",
            serde_json::Value::from(index.as_str())
        );
    }
    head.push_str("\"event\":");
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(line.as_bytes());
    body.extend_from_slice(b"}\n");
}

#[derive(Deserialize)]
struct HecAnswer {
    #[serde(default)]
    text: String,
    #[serde(default)]
    code: Option<i64>,
    #[serde(rename = "invalid-event-number", default)]
    invalid_event: Option<usize>,
}

/// Reads HEC's answer to a request of `items` events, given how the shared
/// status rules classed it.
pub fn read_answer(class: StatusClass, body: &[u8], items: usize) -> Verdict {
    let answer: Option<HecAnswer> = serde_json::from_slice(body).ok();
    let said = answer.as_ref().map(|a| match a.code {
        Some(code) => format!("HEC code {code}: {}", a.text),
        None => a.text.clone(),
    });
    match class {
        StatusClass::Success => Verdict::Delivered,
        StatusClass::Retry { reason, after } => Verdict::Retry {
            reason: said.map_or(reason.clone(), |s| format!("{reason} ({s})")),
            after,
        },
        StatusClass::TooLarge(reason) => Verdict::TooLarge(reason),
        StatusClass::Rejected(reason) => {
            let Some(bad) = answer.as_ref().and_then(|a| a.invalid_event) else {
                return Verdict::Rejected(reason);
            };
            if bad >= items {
                return Verdict::Rejected(reason);
            }
            let outcomes = (0..items)
                .map(|i| match i.cmp(&bad) {
                    std::cmp::Ordering::Less => ItemOutcome::Delivered,
                    std::cmp::Ordering::Equal => ItemOutcome::Rejected(reason.clone()),
                    std::cmp::Ordering::Greater => ItemOutcome::Retry(format!(
                        "HEC stopped at the invalid event {bad} of the batch"
                    )),
                })
                .collect();
            Verdict::PerEvent {
                outcomes,
                after: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::answer::classify;
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            source: "swantrail".into(),
            sourcetype: DEFAULT_SOURCETYPE.into(),
            index: Some("vpn".into()),
        }
    }

    #[test]
    fn an_event_is_wrapped_with_time_host_and_the_sink_metadata() {
        let line = r#"{"@timestamp":"2026-11-28T09:25:42.5Z","observer":{"hostname":"west"}}"#;
        let mut body = Vec::new();
        encode_event(
            &mut body,
            &envelope(),
            line,
            &EventFields::read(line, 0).unwrap(),
        );
        let text = String::from_utf8(body).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["time"].as_f64(), Some(1_795_857_942.5));
        assert_eq!(parsed["host"], "west");
        assert_eq!(parsed["sourcetype"], "libreswan:swantrail");
        assert_eq!(parsed["index"], "vpn");
        assert_eq!(parsed["event"]["observer"]["hostname"], "west");
    }

    fn answer(status: u16, body: &str, items: usize) -> Verdict {
        let class = classify(status, None, body.as_bytes(), SystemTime::now());
        read_answer(class, body.as_bytes(), items)
    }

    #[test]
    fn hec_codes_map_to_delivered_retry_and_rejected() {
        assert_eq!(
            answer(200, r#"{"text":"Success","code":0}"#, 3),
            Verdict::Delivered
        );
        assert!(matches!(
            answer(503, r#"{"text":"Server is busy","code":9}"#, 3),
            Verdict::Retry { .. }
        ));
        match answer(403, r#"{"text":"Token disabled","code":1}"#, 3) {
            Verdict::Retry { reason, .. } => {
                assert!(reason.contains("HEC code 1: Token disabled"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer(401, r#"{"text":"Invalid authorization","code":3}"#, 3),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            answer(400, r#"{"text":"Incorrect index","code":7}"#, 3),
            Verdict::Rejected(_)
        ));
    }

    #[test]
    fn an_invalid_event_number_splits_the_batch_around_it() {
        let v = answer(
            400,
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
            3,
        );
        let Verdict::PerEvent { outcomes, .. } = v else {
            panic!("{v:?}")
        };
        assert_eq!(outcomes[0], ItemOutcome::Delivered);
        assert!(
            matches!(&outcomes[1], ItemOutcome::Rejected(r) if r.contains("Invalid data format"))
        );
        assert!(matches!(outcomes[2], ItemOutcome::Retry(_)));
    }
}
