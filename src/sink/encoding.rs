//! A sink's `encoding`: the spooled ECS event lines re-encoded as the sink
//! sends them, for every kind of sink at once.
//!
//! The spool keeps the canonical ECS line whatever a sink sends, so
//! `event.id`, acknowledgement and dead letters are unchanged and a
//! backlog survives a change of encoding. The registry wraps a sink whose
//! `encoding` is `ocsf` in [`OcsfSink`], which hands the sink a batch of
//! OCSF lines (with the spooled lines beside them, [`Batch::events`]); the
//! sink itself never knows an encoding. A line that has no OCSF form (not
//! an event of this version) is dead-lettered with the reason, never sent
//! half-mapped and never dropped. This module must never send, retry or
//! sleep: that is the wrapped sink's and the drain's.

use super::{
    Batch, Encoding, EventOutcome, RetrySettings, SendError, Sink, SpoolSettings, WithSink,
};
use crate::ocsf;

/// The version that goes into OCSF's `metadata.product.version`.
const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sends each event of a batch to the wrapped sink as OCSF Tunnel Activity.
pub struct OcsfSink<S> {
    inner: S,
}

/// A batch re-encoded: the lines that have an OCSF form, and why the
/// others have none (by their index in the spooled batch).
struct Reencoded {
    batch: Option<Batch>,
    refused: Vec<(usize, String)>,
}

/// Every line of `batch` as OCSF; the spooled lines kept beside them.
fn reencode(batch: &Batch) -> Reencoded {
    let mut payload = String::with_capacity(batch.ndjson().len() * 2);
    let mut refused = Vec::new();
    for (index, line) in batch.lines().enumerate() {
        match ocsf::encode_line(line, PRODUCT_VERSION) {
            Ok(encoded) => {
                payload.push_str(&encoded);
                payload.push('\n');
            }
            Err(e) => refused.push((index, format!("encoding = \"ocsf\": {e}"))),
        }
    }
    let sent = batch.len() - refused.len();
    let spooled = if refused.is_empty() {
        batch.shared()
    } else {
        let mut kept = String::with_capacity(batch.ndjson().len());
        let mut refused_at = refused.iter().map(|(i, _)| *i).peekable();
        for (index, line) in batch.lines().enumerate() {
            if refused_at.next_if_eq(&index).is_none() {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        kept.into()
    };
    Reencoded {
        batch: (sent > 0).then(|| Batch::encoded(payload, spooled, sent)),
        refused,
    }
}

impl<S: Sink> Sink for OcsfSink<S> {
    async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
        let reencoded = reencode(batch);
        if let Some((_, why)) = reencoded.refused.into_iter().next() {
            return Err(SendError::Rejected(why));
        }
        match reencoded.batch {
            Some(encoded) => self.inner.send(&encoded).await,
            None => Ok(()),
        }
    }

    async fn send_each(&mut self, batch: &Batch) -> Result<Vec<EventOutcome>, SendError> {
        let reencoded = reencode(batch);
        let sent = match &reencoded.batch {
            Some(encoded) => self.inner.send_each(encoded).await?,
            None => Vec::new(),
        };
        let mut sent = sent.into_iter();
        let mut refused = reencoded.refused.into_iter().peekable();
        let outcomes = (0..batch.len())
            .map(|index| match refused.next_if(|(i, _)| *i == index) {
                Some((_, why)) => Err(SendError::Rejected(why)),
                None => sent.next().unwrap_or_else(|| {
                    Err(SendError::Retryable(
                        "the sink answered for fewer events than it was given".into(),
                    ))
                }),
            })
            .collect();
        Ok(outcomes)
    }

    fn reopen(&mut self) -> Result<(), SendError> {
        self.inner.reopen()
    }
}

/// The registry's use of a sink: hand it on as it is, or wrapped in the
/// encoder of its `encoding`.
pub(crate) struct Encode<W> {
    /// What to do with the sink.
    pub(crate) with: W,
    /// The sink's `encoding`.
    pub(crate) encoding: Encoding,
}

impl<W: WithSink> WithSink for Encode<W> {
    type Output = W::Output;

    fn with<S: Sink>(
        self,
        name: &str,
        spool: &SpoolSettings,
        retry: &RetrySettings,
        sink: S,
    ) -> Self::Output {
        match self.encoding {
            Encoding::Ecs => self.with.with(name, spool, retry, sink),
            Encoding::Ocsf => self.with.with(name, spool, retry, OcsfSink { inner: sink }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps what it was given.
    #[derive(Default)]
    struct Keep {
        sent: Vec<(String, Option<String>)>,
    }

    impl Sink for Keep {
        async fn send(&mut self, batch: &Batch) -> Result<(), SendError> {
            for (line, payload) in batch.events() {
                self.sent
                    .push((line.to_string(), payload.map(str::to_string)));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_line_without_an_ocsf_form_is_rejected_alone_and_the_rest_is_sent() {
        let event = crate::event::Event {
            timestamp: "2026-11-28T09:21:02Z".into(),
            ecs: crate::event::Ecs {
                version: crate::event::ECS_VERSION.into(),
            },
            event: crate::event::EventMeta {
                id: "926b8f19559d7d85b38738ec5959b99f".into(),
                kind: crate::event::EventKind::Event,
                category: vec!["network".into(), "session".into()],
                types: vec!["start".into()],
                action: crate::event::Action::PlutoReachable,
                reason: None,
                sequence: 1,
                module: "libreswan".into(),
                dataset: "libreswan.tunnel".into(),
            },
            observer: crate::event::Observer {
                hostname: "west".into(),
                vendor: "libreswan".into(),
                product: "libreswan".into(),
                kind: "vpn".into(),
                version: None,
            },
            source: None,
            destination: None,
            user: None,
            libreswan: Default::default(),
        };
        let good = event.to_json_line();
        let bad = good.replace("pluto-reachable", "pluto-sideways");
        let batch = Batch::from_ndjson(format!("{good}\n{bad}\n{good}\n"));
        let mut sink = OcsfSink {
            inner: Keep::default(),
        };
        let outcomes = sink.send_each(&batch).await.unwrap();
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(&outcomes[1], Err(SendError::Rejected(why)) if why.contains("pluto-sideways")),
            "{outcomes:?}"
        );
        assert_eq!(sink.inner.sent.len(), 2);
        for (line, payload) in &sink.inner.sent {
            assert_eq!(line, &good);
            let ocsf: serde_json::Value =
                serde_json::from_str(payload.as_deref().unwrap()).unwrap();
            assert_eq!(ocsf["metadata"]["uid"], "926b8f19559d7d85b38738ec5959b99f");
            assert_eq!(ocsf["class_uid"], 4014);
        }
    }
}
