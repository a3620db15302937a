//! The `otlp` mode: OpenTelemetry logs over HTTP (OTLP/HTTP, `/v1/logs`) in
//! the JSON encoding the OTLP specification allows.
//!
//! One LogRecord per event: `timeUnixNano` from `@timestamp`, the severity
//! from the table the syslog sink uses, `body` = the whole event as an
//! AnyValue map, and the ECS fields that OpenTelemetry's semantic
//! conventions name again as attributes; events are grouped by host under a
//! resource with `service.name = swantrail` and `host.name`. The JSON
//! follows the OTLP/JSON rules (lowerCamelCase names, 64-bit integers as
//! strings, enums as numbers). A 2xx answer may carry `partialSuccess`: the
//! records it counts were refused for good and must not be resent, so the
//! sink reports them in one line. This module only builds bodies and reads answers.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::fields::{EventFields, UnreadableEvent};
use crate::sink::syslog::encode::{Severity, severity};

/// The path of the logs endpoint (appended to the configured base URL).
pub const LOGS_PATH: &str = "/v1/logs";

/// OpenTelemetry's SeverityNumber and SeverityText for an event: the
/// syslog sink's table (docs/events.md "Severity"), so that a collector and
/// a syslog receiver rank the same event alike, mapped as the
/// OpenTelemetry log data model maps syslog severities.
fn otel_severity(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Warning => (13, "WARN"),
        Severity::Notice => (10, "INFO2"),
        Severity::Informational => (9, "INFO"),
    }
}

/// A JSON value as an OTLP AnyValue.
fn any_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64() }),
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => {
            json!({ "arrayValue": { "values": items.iter().map(any_value).collect::<Vec<_>>() } })
        }
        Value::Object(map) => json!({ "kvlistValue": { "values": key_values(map) } }),
    }
}

fn key_values(map: &Map<String, Value>) -> Vec<Value> {
    map.iter()
        .map(|(k, v)| json!({ "key": k, "value": any_value(v) }))
        .collect()
}

fn string_attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// One LogRecord for an event line.
pub fn log_record(line: &str, fields: &EventFields) -> Result<Value, UnreadableEvent> {
    let event: Value = serde_json::from_str(line).map_err(UnreadableEvent::NotJson)?;
    let action = fields.event.action.as_deref().unwrap_or("");
    let (number, text) = otel_severity(severity(action));
    let mut attributes = Vec::new();
    if let Some(id) = &fields.event.id {
        attributes.push(string_attribute("log.record.uid", id));
    }
    if !action.is_empty() {
        attributes.push(string_attribute(
            "event.name",
            &format!("libreswan.{action}"),
        ));
    }
    for (prefix, endpoint) in [
        ("source", &fields.source),
        ("destination", &fields.destination),
    ] {
        if let Some(endpoint) = endpoint {
            if let Some(ip) = &endpoint.ip {
                attributes.push(string_attribute(&format!("{prefix}.address"), ip));
            }
            if let Some(port) = endpoint.port {
                attributes.push(json!({ "key": format!("{prefix}.port"), "value": { "intValue": port.to_string() } }));
            }
        }
    }
    if let Some(name) = fields.user.as_ref().and_then(|u| u.name.as_deref()) {
        attributes.push(string_attribute("user.name", name));
    }
    let mut record = json!({
        "severityNumber": number,
        "severityText": text,
        "body": any_value(&event),
        "attributes": attributes,
    });
    if let Some(nanos) = fields.unix_nanos() {
        record["timeUnixNano"] = Value::from(nanos.to_string());
    }
    Ok(record)
}

/// The ExportLogsServiceRequest for records grouped by their host.
pub fn request(records: Vec<(Option<String>, Value)>) -> Value {
    let mut by_host: Vec<(Option<String>, Vec<Value>)> = Vec::new();
    for (host, record) in records {
        match by_host.iter_mut().find(|(h, _)| *h == host) {
            Some((_, list)) => list.push(record),
            None => by_host.push((host, vec![record])),
        }
    }
    let resource_logs: Vec<Value> = by_host
        .into_iter()
        .map(|(host, records)| {
            let mut attributes = vec![
                string_attribute("service.name", "swantrail"),
                string_attribute("service.version", env!("CARGO_PKG_VERSION")),
            ];
            if let Some(host) = host {
                attributes.push(string_attribute("host.name", &host));
            }
            json!({
                "resource": { "attributes": attributes },
                "scopeLogs": [{
                    "scope": { "name": "swantrail", "version": env!("CARGO_PKG_VERSION") },
                    "logRecords": records,
                }],
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExportAnswer {
    #[serde(default)]
    partial_success: Option<PartialSuccess>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartialSuccess {
    /// int64: a string in OTLP/JSON, though some servers send a number.
    #[serde(default)]
    rejected_log_records: Option<Value>,
    #[serde(default)]
    error_message: String,
}

/// What a 2xx answer says the collector refused: `(records, message)`, or
/// `None` when it took everything (an empty body also means that).
pub fn partial_success(body: &[u8]) -> Option<(u64, String)> {
    let answer: ExportAnswer = serde_json::from_slice(body).ok()?;
    let partial = answer.partial_success?;
    let rejected = match partial.rejected_log_records {
        None => 0,
        Some(Value::String(s)) => s.parse().ok()?,
        Some(Value::Number(n)) => n.as_u64()?,
        Some(_) => return None,
    };
    (rejected > 0 || !partial.error_message.is_empty()).then_some((rejected, partial.error_message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"@timestamp":"2026-11-28T09:25:42Z","event":{"id":"3680","action":"tunnel-down","reason":"deleted","sequence":7},"observer":{"hostname":"west"},"destination":{"ip":"192.0.2.2","port":500},"user":{"name":"@east"}}"#;

    #[test]
    fn an_event_becomes_one_log_record_with_semantic_attributes() {
        let fields = EventFields::read(LINE, 0).unwrap();
        let record = log_record(LINE, &fields).unwrap();
        assert_eq!(record["timeUnixNano"], "1795857942000000000");
        assert_eq!(record["severityNumber"], 10);
        assert_eq!(record["severityText"], "INFO2");
        let attributes = record["attributes"].as_array().unwrap();
        let get = |k: &str| {
            attributes
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        assert_eq!(get("log.record.uid"), Some(json!({"stringValue": "3680"})));
        assert_eq!(
            get("destination.address"),
            Some(json!({"stringValue": "192.0.2.2"}))
        );
        assert_eq!(get("destination.port"), Some(json!({"intValue": "500"})));
        assert_eq!(get("user.name"), Some(json!({"stringValue": "@east"})));
        let body = &record["body"]["kvlistValue"]["values"];
        let event = body
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["key"] == "event")
            .unwrap();
        let sequence = event["value"]["kvlistValue"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["key"] == "sequence")
            .unwrap();
        assert_eq!(sequence["value"], json!({"intValue": "7"}));
    }

    #[test]
    fn records_are_grouped_under_one_resource_per_host() {
        let fields = EventFields::read(LINE, 0).unwrap();
        let record = log_record(LINE, &fields).unwrap();
        let body = request(vec![
            (Some("west".into()), record.clone()),
            (Some("east".into()), record.clone()),
            (Some("west".into()), record),
        ]);
        let resources = body["resourceLogs"].as_array().unwrap();
        assert_eq!(resources.len(), 2);
        assert_eq!(
            resources[0]["scopeLogs"][0]["logRecords"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let attributes = resources[0]["resource"]["attributes"].as_array().unwrap();
        assert!(attributes.contains(&string_attribute("service.name", "swantrail")));
        assert!(attributes.contains(&string_attribute("host.name", "west")));
    }

    #[test]
    fn partial_success_counts_refused_records_as_string_or_number() {
        assert_eq!(partial_success(b""), None);
        assert_eq!(partial_success(b"{}"), None);
        assert_eq!(partial_success(br#"{"partialSuccess":{}}"#), None);
        assert_eq!(
            partial_success(
                br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}"#
            ),
            Some((2, "too old".into()))
        );
        assert_eq!(
            partial_success(br#"{"partialSuccess":{"rejectedLogRecords":3}}"#),
            Some((3, String::new()))
        );
    }

    #[test]
    fn severities_follow_the_syslog_table() {
        let otel = |action| otel_severity(severity(action));
        assert_eq!(otel("pluto-unreachable"), (13, "WARN"));
        assert_eq!(otel("negotiation-failed"), (13, "WARN"));
        assert_eq!(otel("tunnel-down"), (10, "INFO2"));
        assert_eq!(otel("child-sa-deleted"), (10, "INFO2"));
        assert_eq!(otel("child-sa-rekeyed"), (9, "INFO"));
        assert_eq!(otel("tunnel-up"), (9, "INFO"));
    }
}
