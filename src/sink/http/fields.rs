//! The few fields of a spooled event line that the request encoders need.
//!
//! The spool holds events as JSON text; an encoder needs their id, time,
//! host and a handful of ECS fields, not the whole `Event`. Reading only
//! those (borrowing where the text has no escapes) keeps encoding cheap and
//! lets a line the current schema does not know still be sent. A line that
//! is not a JSON object is reported, never guessed at.

use std::borrow::Cow;

use serde::Deserialize;

/// What the encoders read of one event.
#[derive(Debug, Default, Deserialize)]
pub struct EventFields<'a> {
    /// `@timestamp`, RFC 3339.
    #[serde(rename = "@timestamp", borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    /// `event.*`.
    #[serde(borrow, default)]
    pub event: Meta<'a>,
    /// `observer.*`.
    #[serde(borrow, default)]
    pub observer: Observer<'a>,
    /// `source.*`.
    #[serde(borrow, default)]
    pub source: Option<Endpoint<'a>>,
    /// `destination.*`.
    #[serde(borrow, default)]
    pub destination: Option<Endpoint<'a>>,
    /// `user.*`.
    #[serde(borrow, default)]
    pub user: Option<User<'a>>,
}

/// `event.*` as the encoders need it.
#[derive(Debug, Default, Deserialize)]
pub struct Meta<'a> {
    /// `event.id`, the deduplication key.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// `event.action`.
    #[serde(borrow, default)]
    pub action: Option<Cow<'a, str>>,
    /// `event.reason`.
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
}

/// `observer.*`.
#[derive(Debug, Default, Deserialize)]
pub struct Observer<'a> {
    /// The gateway's host name.
    #[serde(borrow, default)]
    pub hostname: Option<Cow<'a, str>>,
    /// The libreswan version.
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}

/// `source.*` or `destination.*`.
#[derive(Debug, Default, Deserialize)]
pub struct Endpoint<'a> {
    /// The IP address.
    #[serde(borrow, default)]
    pub ip: Option<Cow<'a, str>>,
    /// The port.
    #[serde(default)]
    pub port: Option<u16>,
}

/// `user.*`.
#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    /// The user or peer ID.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
}

/// Why an event line cannot be encoded for the receiver (it is rejected
/// with this reason, the rest of its batch goes on).
#[derive(Debug, thiserror::Error)]
pub enum UnreadableEvent {
    /// The fields the modes read are not there as JSON.
    #[error("event {index} of the batch is not a JSON object: {error}")]
    NotAnObject {
        /// The event's position in its batch.
        index: usize,
        /// What serde_json found.
        error: serde_json::Error,
    },
    /// The event as a whole is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
}

impl<'a> EventFields<'a> {
    /// Reads the fields of one event line; the error names the event's position.
    pub fn read(line: &'a str, index: usize) -> Result<EventFields<'a>, UnreadableEvent> {
        serde_json::from_str(line).map_err(|error| UnreadableEvent::NotAnObject { index, error })
    }

    /// `@timestamp` as nanoseconds since the epoch, when present and valid.
    pub fn unix_nanos(&self) -> Option<i128> {
        let text = self.timestamp.as_deref()?;
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(time::OffsetDateTime::unix_timestamp_nanos)
    }

    /// `@timestamp` as a UTC date-time, for index name patterns.
    pub fn datetime(&self) -> Option<time::OffsetDateTime> {
        let text = self.timestamp.as_deref()?;
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_unknown_ones_ignored() {
        let line = r#"{"@timestamp":"2026-11-28T09:25:42Z","event":{"id":"ab","action":"tunnel-up","sequence":3},"observer":{"hostname":"west"},"destination":{"ip":"192.0.2.2","port":500},"libreswan":{}}"#;
        let f = EventFields::read(line, 0).unwrap();
        assert_eq!(f.event.id.as_deref(), Some("ab"));
        assert_eq!(f.observer.hostname.as_deref(), Some("west"));
        assert_eq!(f.destination.as_ref().and_then(|d| d.port), Some(500));
        assert_eq!(f.unix_nanos(), Some(1_795_857_942_000_000_000));
    }

    #[test]
    fn a_line_that_is_not_an_object_is_named_by_its_position() {
        let e = EventFields::read("[1]", 4).unwrap_err().to_string();
        assert!(e.starts_with("event 4 of the batch"), "{e}");
    }
}
