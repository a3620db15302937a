//! The `elasticsearch` mode: the `_bulk` API of Elasticsearch and OpenSearch.
//!
//! Each event becomes a `create` action with `_id` = `event.id`, so a batch
//! sent twice (a retry, a crash between send and acknowledgement) leaves one
//! document per event: the second `create` answers 409, which counts as
//! delivered. `create` is also the only action a data stream takes. Every
//! item of the answer is read: 201 and 409 delivered, 429 and 5xx retried
//! alone, anything else rejected with the item's error. This module only
//! builds bodies and reads answers; it must never treat an answer it cannot
//! match item by item as success.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;

use super::answer::{ItemOutcome, Verdict, excerpt};
use super::fields::EventFields;

/// The data stream the ECS `event.dataset` of every event names
/// (`logs-<dataset>-<namespace>`), matched by Elasticsearch's built-in
/// `logs-*-*` index template.
pub const DEFAULT_INDEX: &str = "logs-libreswan.tunnel-default";

/// Only what is read of the answer is asked for (both Elasticsearch and
/// OpenSearch honour `filter_path`): answers of big batches stay small.
pub const BULK_QUERY: &str =
    "filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason";

/// Where documents go: one name, or a pattern with `%Y`, `%m`, `%d` taken
/// from each event's `@timestamp` (UTC) for classic daily indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexName {
    pattern: String,
}

/// Why an `index` is not one both servers would take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index \"{pattern}\"{why}")]
pub struct IndexNameError {
    /// The name or pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub why: IndexNameWhy,
}

/// What is wrong with an index name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexNameWhy {
    /// A `%` followed by anything but `Y`, `m`, `d` or `%`.
    #[error(": only %Y, %m, %d and %% may follow a '%'")]
    Placeholder,
    /// Empty, `.`, `..`, or starting with `-`, `_` or `+`.
    #[error(" is not a valid index name: it must not be empty or start with '-', '_' or '+'")]
    Start,
    /// An uppercase letter or a character the servers refuse.
    #[error(
        " is not a valid index name: '{0}' is not allowed (lowercase letters, digits, '-', '_', '.', '+')"
    )]
    Character(char),
}

impl IndexName {
    /// Checks a name or pattern against the rules both servers enforce
    /// (lowercase, no `\ / * ? " < > | , #` or space, not starting with `- _ +`),
    /// so a typo is a config error rather than every batch dead-lettered.
    pub fn parse(pattern: &str) -> Result<IndexName, IndexNameError> {
        let invalid = |why: IndexNameWhy| IndexNameError {
            pattern: pattern.to_string(),
            why,
        };
        let mut rest = pattern;
        while let Some(i) = rest.find('%') {
            match rest.get(i + 1..i + 2) {
                Some("Y" | "m" | "d" | "%") => rest = &rest[i + 2..],
                _ => return Err(invalid(IndexNameWhy::Placeholder)),
            }
        }
        let sample = IndexName {
            pattern: pattern.to_string(),
        }
        .expand(None);
        let bad = sample
            .chars()
            .find(|c| c.is_ascii_uppercase() || "\\/*?\"<>|,# :".contains(*c));
        if sample.is_empty()
            || sample.starts_with(['-', '_', '+'])
            || sample == "."
            || sample == ".."
        {
            return Err(invalid(IndexNameWhy::Start));
        }
        if let Some(c) = bad {
            return Err(invalid(IndexNameWhy::Character(c)));
        }
        Ok(IndexName {
            pattern: pattern.to_string(),
        })
    }

    /// The index for an event of this date (today when the event has none).
    fn expand(&self, at: Option<time::OffsetDateTime>) -> String {
        if !self.pattern.contains('%') {
            return self.pattern.clone();
        }
        let at = at.unwrap_or_else(time::OffsetDateTime::now_utc);
        let mut out = String::with_capacity(self.pattern.len() + 4);
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let _ = match chars.next() {
                Some('Y') => write!(out, "{:04}", at.year()),
                Some('m') => write!(out, "{:02}", u8::from(at.month())),
                Some('d') => write!(out, "{:02}", at.day()),
                Some(other) => write!(out, "{other}"),
                None => Ok(()),
            };
        }
        out
    }
}

/// Appends the `create` action and the document of one event to a bulk body.
pub fn encode_event(body: &mut Vec<u8>, index: &IndexName, line: &str, fields: &EventFields) {
    let name = index.expand(fields.datetime());
    // Written directly rather than through a `serde_json::Value`: this runs
    // once per event, and the strings still go through serde_json's escaping.
    body.extend_from_slice(br#"{"create":{"_index":"#);
    json_string(body, &name);
    if let Some(id) = &fields.event.id {
        body.extend_from_slice(br#","_id":"#);
        json_string(body, id);
    }
    body.extend_from_slice(b"}}\n");
    body.extend_from_slice(line.as_bytes());
    body.push(b'\n');
}

/// Appends `text` as a JSON string.
fn json_string(body: &mut Vec<u8>, text: &str) {
    // Writing a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *body, text);
}

/// The top of a `_bulk` answer: when `errors` is false every item was
/// created, and the items (one per document) need not be decoded at all.
#[derive(Deserialize)]
struct BulkHead {
    errors: bool,
}

#[derive(Deserialize)]
struct BulkAnswer {
    errors: bool,
    #[serde(default)]
    items: Vec<HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads a 2xx `_bulk` answer for a request of `items` documents.
pub fn read_answer(body: &[u8], items: usize) -> Verdict {
    if let Ok(BulkHead { errors: false }) = serde_json::from_slice(body) {
        return Verdict::Delivered;
    }
    let answer: BulkAnswer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            return Verdict::Retry {
                reason: format!(
                    "the _bulk answer is not what Elasticsearch sends ({e}): {}",
                    excerpt(body)
                ),
                after: None,
            };
        }
    };
    if !answer.errors {
        return Verdict::Delivered;
    }
    if answer.items.len() != items {
        return Verdict::Retry {
            reason: format!(
                "the _bulk answer has {} items for {items} documents; sending them again",
                answer.items.len()
            ),
            after: None,
        };
    }
    let outcomes = answer
        .items
        .iter()
        .map(|item| match item.values().next() {
            None => ItemOutcome::Retry("a _bulk answer item without an action".into()),
            Some(item) => item_outcome(item),
        })
        .collect();
    Verdict::PerEvent {
        outcomes,
        after: None,
    }
    .simplified()
}

fn item_outcome(item: &BulkItem) -> ItemOutcome {
    match item.status {
        200..=299 | 409 => ItemOutcome::Delivered,
        status => {
            let error = describe(item.error.as_ref());
            if status == 429 || status >= 500 {
                ItemOutcome::Retry(format!("document status {status}: {error}"))
            } else {
                ItemOutcome::Rejected(format!(
                    "Elasticsearch refused the document: status {status}: {error}"
                ))
            }
        }
    }
}

/// `type: reason` of a bulk item error (an object, or a plain string in old versions).
fn describe(error: Option<&serde_json::Value>) -> String {
    match error {
        None => "no error given".into(),
        Some(serde_json::Value::Object(e)) => {
            let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
            format!("{}: {}", text("type"), text("reason"))
        }
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, ts: &str) -> String {
        format!(r#"{{"@timestamp":"{ts}","event":{{"id":"{id}"}}}}"#)
    }

    #[test]
    fn each_event_is_a_create_with_its_id_into_the_data_stream() {
        let index = IndexName::parse(DEFAULT_INDEX).unwrap();
        let mut body = Vec::new();
        for (id, ts) in [
            ("a1", "2026-11-28T09:25:42Z"),
            ("b2", "2026-11-29T00:00:00Z"),
        ] {
            let line = event(id, ts);
            let fields = EventFields::read(&line, 0).unwrap();
            encode_event(&mut body, &index, &line, &fields);
        }
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            r#"{"create":{"_index":"logs-libreswan.tunnel-default","_id":"a1"}}"#
        );
        assert_eq!(lines[1], event("a1", "2026-11-28T09:25:42Z"));
        assert!(text.ends_with('\n'), "a bulk body ends with a newline");
    }

    #[test]
    fn a_hostile_id_stays_inside_its_json_string() {
        let index = IndexName::parse(DEFAULT_INDEX).unwrap();
        let line =
            r#"{"@timestamp":"2026-11-28T09:25:42Z","event":{"id":"x\"}},{\"delete\":\n\u0000"}}"#;
        let fields = EventFields::read(line, 0).unwrap();
        let mut body = Vec::new();
        encode_event(&mut body, &index, line, &fields);
        let text = String::from_utf8(body).unwrap();
        let action: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(action["create"]["_id"], "x\"}},{\"delete\":\n\u{0}");
        assert_eq!(text.lines().count(), 2, "no line break escaped the action");
    }

    #[test]
    fn a_date_pattern_names_the_index_of_the_event_day() {
        let index = IndexName::parse("swantrail-%Y.%m.%d").unwrap();
        let line = event("a1", "2026-01-02T23:59:59Z");
        let fields = EventFields::read(&line, 0).unwrap();
        assert_eq!(index.expand(fields.datetime()), "swantrail-2026.01.02");
    }

    #[test]
    fn invalid_index_names_are_refused_with_the_rule() {
        for bad in ["Logs", "a b", "-x", "", "a%H", "a*b", "x#y"] {
            assert!(IndexName::parse(bad).is_err(), "{bad}");
        }
        assert!(IndexName::parse("swantrail-%Y.%m").is_ok());
    }

    #[test]
    fn errors_false_is_delivered_without_reading_items() {
        let body = br#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(read_answer(body, 5), Verdict::Delivered);
    }

    #[test]
    fn each_item_status_decides_its_event() {
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a] document already exists"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [x]"}}},
            {"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
        ]}"#;
        let Verdict::PerEvent { outcomes, .. } = read_answer(body, 5) else {
            panic!("expected per-event outcomes");
        };
        assert_eq!(outcomes[0], ItemOutcome::Delivered);
        assert_eq!(outcomes[1], ItemOutcome::Delivered);
        assert_eq!(
            outcomes[2],
            ItemOutcome::Retry(
                "document status 429: es_rejected_execution_exception: queue full".into()
            )
        );
        assert_eq!(
            outcomes[3],
            ItemOutcome::Rejected(
                "Elasticsearch refused the document: status 400: document_parsing_exception: failed to parse field [x]".into()
            )
        );
        assert!(matches!(outcomes[4], ItemOutcome::Retry(_)));
    }

    #[test]
    fn an_answer_that_does_not_match_the_request_is_retried_whole() {
        let short = br#"{"errors":true,"items":[{"create":{"status":201}}]}"#;
        assert!(matches!(read_answer(short, 2), Verdict::Retry { .. }));
        assert!(matches!(read_answer(b"<html>", 2), Verdict::Retry { .. }));
    }
}
