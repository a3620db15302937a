//! What an HTTP answer means for the events of the batch it answers.
//!
//! Every mode shares the reading of the status line (2xx delivered; 408, 429
//! and 5xx retried, honouring `Retry-After`; 401 and 403 retried because
//! credentials get fixed; 413 "too large", which smaller requests may pass;
//! any other 4xx rejected with the status and the start of the body) and adds its own reading of a 2xx body (bulk items,
//! partial success). These are pure functions over values so that each rule
//! is tested without a socket; this module must never decide to drop an
//! event: the worst verdict is "rejected", which the drain dead-letters.

use std::time::{Duration, SystemTime};

/// How many bytes of an error answer are kept for the log and dead letters.
pub const BODY_EXCERPT_BYTES: usize = 512;

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The destination has it (for Elasticsearch, also "it was already there").
    Delivered,
    /// Send it again later: the destination was busy or failed on it.
    Retry(String),
    /// It will never be accepted as it is; the reason goes to the dead letter.
    Rejected(String),
    /// The request that held it was too large (HTTP 413): it may pass in a
    /// smaller one.
    TooLarge(String),
}

/// What the destination said about a whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every event is delivered.
    Delivered,
    /// Nothing was taken; send the whole batch again, not before `after` if given.
    Retry {
        /// Why, for the drain's state-change log line.
        reason: String,
        /// The server's `Retry-After`, as a wait from now.
        after: Option<Duration>,
    },
    /// Nothing was taken and the same request will never pass.
    Rejected(String),
    /// Nothing was taken because the request was too large (HTTP 413); a
    /// smaller request may pass.
    TooLarge(String),
    /// The destination judged each event (bulk item statuses, HEC's
    /// invalid-event-number); one outcome per event, in batch order.
    PerEvent {
        /// One per event of the batch.
        outcomes: Vec<ItemOutcome>,
        /// The server's `Retry-After` for the events to retry, if it sent one.
        after: Option<Duration>,
    },
}

impl Verdict {
    /// Collapses per-event outcomes that are all the same into a batch verdict,
    /// so the common cases stay cheap.
    pub fn simplified(self) -> Verdict {
        let Verdict::PerEvent { outcomes, after } = self else {
            return self;
        };
        if outcomes.iter().all(|o| *o == ItemOutcome::Delivered) {
            return Verdict::Delivered;
        }
        if let Some(ItemOutcome::Retry(first)) = outcomes.first()
            && outcomes.iter().all(|o| matches!(o, ItemOutcome::Retry(_)))
        {
            return Verdict::Retry {
                reason: first.clone(),
                after,
            };
        }
        Verdict::PerEvent { outcomes, after }
    }
}

/// The part of an answer every mode reads the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: the mode reads the body.
    Success,
    /// Try the whole batch again.
    Retry {
        /// Status and body excerpt, or the credentials hint for 401/403.
        reason: String,
        /// From `Retry-After`.
        after: Option<Duration>,
    },
    /// A 4xx that will not pass by itself.
    Rejected(String),
    /// 413: the body was larger than the receiver takes; a smaller one may pass.
    TooLarge(String),
}

/// Classifies an HTTP status; `retry_after` is the raw header, `body` the answer.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        401 | 403 => StatusClass::Retry {
            reason: format!(
                "HTTP {status} {}: the credentials were refused ({}); fix the secret and send SIGHUP, the events wait in the spool",
                reason_phrase(status),
                excerpt(body)
            ),
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        408 | 429 | 500..=599 => StatusClass::Retry {
            reason: format!("HTTP {status} {}: {}", reason_phrase(status), excerpt(body)),
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        413 => StatusClass::TooLarge(format!(
            "HTTP {status} {}: {}",
            reason_phrase(status),
            excerpt(body)
        )),
        _ => StatusClass::Rejected(format!(
            "HTTP {status} {}: {}",
            reason_phrase(status),
            excerpt(body)
        )),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The start of an answer body as one line of text, for logs and dead letters.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_EXCERPT_BYTES)];
    let text = String::from_utf8_lossy(cut);
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line = line.trim().to_string();
    if body.len() > BODY_EXCERPT_BYTES {
        line.push('…');
    }
    if line.is_empty() {
        "empty body".to_string()
    } else {
        line
    }
}

/// `Retry-After` as a wait from `now`: delay-seconds or an HTTP date
/// (RFC 9110 §10.2.3); a date in the past means "now". Anything else is
/// ignored (the backoff applies), since a garbled header must not stall delivery.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110.
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn retry_after_takes_seconds_and_the_three_http_date_forms() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        let later = "Sun, 06 Nov 1994 08:50:07 GMT";
        assert_eq!(
            parse_retry_after(later, now()),
            Some(Duration::from_secs(30))
        );
        let rfc850 = "Sunday, 06-Nov-94 08:50:07 GMT";
        assert_eq!(
            parse_retry_after(rfc850, now()),
            Some(Duration::from_secs(30))
        );
        let asctime = "Sun Nov  6 08:50:07 1994";
        assert_eq!(
            parse_retry_after(asctime, now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_in_the_past_is_now_and_garbage_is_ignored() {
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "120s"] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad}");
        }
    }

    #[test]
    fn statuses_split_into_delivered_retried_and_rejected() {
        let class = |s| classify(s, Some("7"), b"busy", now());
        assert_eq!(class(200), StatusClass::Success);
        assert_eq!(class(204), StatusClass::Success);
        for s in [408, 429, 500, 502, 503, 504, 401, 403] {
            match class(s) {
                StatusClass::Retry { after, .. } => {
                    assert_eq!(after, Some(Duration::from_secs(7)), "{s}")
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        for s in [400, 404, 405, 422] {
            assert!(matches!(class(s), StatusClass::Rejected(_)), "{s}");
        }
        assert_eq!(
            class(413),
            StatusClass::TooLarge("HTTP 413 Payload Too Large: busy".into())
        );
        assert_eq!(
            class(400),
            StatusClass::Rejected("HTTP 400 Bad Request: busy".into())
        );
    }

    #[test]
    fn an_excerpt_is_one_line_and_cut() {
        assert_eq!(excerpt(b"a\nb\r\n"), "a b");
        assert_eq!(excerpt(b""), "empty body");
        let long = vec![b'x'; 2000];
        assert_eq!(excerpt(&long).chars().count(), BODY_EXCERPT_BYTES + 1);
    }

    #[test]
    fn uniform_per_event_outcomes_collapse() {
        let all = |o: ItemOutcome| Verdict::PerEvent {
            outcomes: vec![o.clone(), o],
            after: None,
        };
        assert_eq!(all(ItemOutcome::Delivered).simplified(), Verdict::Delivered);
        assert!(matches!(
            all(ItemOutcome::Retry("x".into())).simplified(),
            Verdict::Retry { .. }
        ));
    }
}
