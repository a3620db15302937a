//! An event as OCSF 1.8 Tunnel Activity (class 4014), for the pipelines
//! that store the Open Cybersecurity Schema Framework instead of ECS
//! (Amazon Security Lake, and the OCSF parsers of Splunk, Sentinel and
//! Chronicle).
//!
//! The canonical event stays the ECS line of [`crate::event`]: spools keep
//! it, its `event.id` decides duplicates, and this module maps it, field
//! by field as the table in `docs/events.md` says, when a sink builds its
//! payload. The mapping is a pure function: it never decides what happened,
//! never reads a clock and never performs I/O; whatever OCSF has no
//! attribute for goes under `unmapped`, so nothing of the event is lost.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{Action, Event};

/// The OCSF version the mapping follows, written to `metadata.version`.
pub const OCSF_VERSION: &str = "1.8.0";

/// `class_uid` of Tunnel Activity.
pub const CLASS_UID: u32 = 4014;

/// `category_uid` of Network Activity.
pub const CATEGORY_UID: u32 = 4;

/// Why a spooled line could not be mapped: it is kept (the sink dead-letters
/// it with this reason), never dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcsfError {
    /// The line is not a swantrail event (hand-edited, or an action this
    /// version does not know).
    #[error("not a swantrail event, so it has no OCSF form: {0}")]
    NotAnEvent(String),
    /// `@timestamp` is not RFC 3339, so OCSF's `time` cannot be given.
    #[error("`@timestamp` {0:?} is not an RFC 3339 time, so OCSF's `time` cannot be given")]
    BadTime(String),
}

/// OCSF `activity_id` of Tunnel Activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// 1: a tunnel, an SA or a negotiation begins (a failed negotiation is
    /// an Open whose status is Failure).
    Open = 1,
    /// 2: a tunnel or an SA ends.
    Close = 2,
    /// 3: an SA is replaced by a rekey.
    Renew = 3,
    /// 99: anything else; `activity_name` names swantrail's action.
    Other = 99,
}

impl Activity {
    /// The activity of an action (the table in `docs/events.md`).
    pub fn of(action: Action) -> Activity {
        match action {
            Action::TunnelUp
            | Action::IkeSaEstablished
            | Action::ChildSaEstablished
            | Action::NegotiationStarted
            | Action::NegotiationFailed
            | Action::ConnectionAdded
            | Action::PlutoReachable => Activity::Open,
            Action::TunnelDown
            | Action::IkeSaExpired
            | Action::IkeSaDeleted
            | Action::ChildSaExpired
            | Action::ChildSaDeleted
            | Action::ConnectionRemoved
            | Action::PlutoUnreachable => Activity::Close,
            Action::IkeSaRekeyed | Action::ChildSaRekeyed => Activity::Renew,
            Action::NegotiationStalled | Action::PlutoRestarted | Action::Traffic => {
                Activity::Other
            }
        }
    }

    /// OCSF's caption of the activity.
    pub fn caption(self) -> &'static str {
        match self {
            Activity::Open => "Open",
            Activity::Close => "Close",
            Activity::Renew => "Renew",
            Activity::Other => "Other",
        }
    }
}

/// OCSF `status_id`: Failure (2) for what did not come up or could not be
/// watched, Success (1) for every other change.
fn status(action: Action) -> (u8, &'static str) {
    match action {
        Action::NegotiationFailed | Action::NegotiationStalled | Action::PlutoUnreachable => {
            (2, "Failure")
        }
        _ => (1, "Success"),
    }
}

/// OCSF `severity_id`, in step with the syslog severity of the same action
/// (`docs/events.md`, Severity): warning is Medium, notice is Low.
fn severity(action: Action) -> (u8, &'static str) {
    match action {
        Action::NegotiationFailed
        | Action::NegotiationStalled
        | Action::PlutoUnreachable
        | Action::PlutoRestarted => (3, "Medium"),
        Action::TunnelDown
        | Action::IkeSaDeleted
        | Action::ChildSaDeleted
        | Action::ConnectionRemoved => (2, "Low"),
        _ => (1, "Informational"),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn epoch_ms(text: &str) -> Result<i64, OcsfError> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| OcsfError::BadTime(text.into()))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| OcsfError::BadTime(text.into()))
}

/// One spooled event line as one line of OCSF Tunnel Activity JSON, made by
/// `product_version` of swantrail (`metadata.product.version`).
pub fn encode_line(line: &str, product_version: &str) -> Result<String, OcsfError> {
    let event: Event =
        serde_json::from_str(line).map_err(|e| OcsfError::NotAnEvent(e.to_string()))?;
    tunnel_activity(&event, product_version).map(|v| v.to_string())
}

/// The event as an OCSF 1.8 Tunnel Activity (class 4014) object; every
/// attribute's source is in the mapping table of `docs/events.md`.
pub fn tunnel_activity(event: &Event, product_version: &str) -> Result<Value, OcsfError> {
    let action = event.event.action;
    let activity = Activity::of(action);
    let time = epoch_ms(&event.timestamp)?;
    let (status_id, status) = status(action);
    let (severity_id, severity) = severity(action);
    let activity_name = match activity {
        Activity::Other => action.as_str(),
        _ => activity.caption(),
    };
    let mut top = Map::new();
    for (key, value) in [
        ("class_uid", json!(CLASS_UID)),
        ("class_name", json!("Tunnel Activity")),
        ("category_uid", json!(CATEGORY_UID)),
        ("category_name", json!("Network Activity")),
        ("activity_id", json!(activity as u8)),
        ("activity_name", json!(activity_name)),
        ("type_uid", json!(CLASS_UID * 100 + activity as u32)),
        (
            "type_name",
            json!(format!("Tunnel Activity: {activity_name}")),
        ),
        ("time", json!(time)),
        ("status_id", json!(status_id)),
        ("status", json!(status)),
        ("severity_id", json!(severity_id)),
        ("severity", json!(severity)),
        ("metadata", metadata(event, product_version)),
        (
            "device",
            json!({
                "hostname": event.observer.hostname,
                "type_id": 99,
                "type": event.observer.kind,
            }),
        ),
        ("tunnel_type_id", json!(99)),
        ("tunnel_type", json!("IPsec")),
        ("protocol_name", json!("IPsec")),
        ("unmapped", unmapped(event)),
    ] {
        top.insert(key.into(), value);
    }
    if let Some(reason) = &event.event.reason {
        top.insert("status_detail".into(), reason.as_str().into());
    }
    if let Some(endpoint) = endpoint(event.source.as_ref()) {
        top.insert("src_endpoint".into(), endpoint);
    }
    if let Some(endpoint) = endpoint(event.destination.as_ref()) {
        top.insert("dst_endpoint".into(), endpoint);
    }
    if let Some(user) = &event.user {
        top.insert("user".into(), json!({ "name": user.name }));
    }
    if let Some(session) = session(event, time)? {
        top.insert("session".into(), session);
    }
    if let Some(duration_s) = duration_s(event) {
        top.insert("duration".into(), (duration_s.saturating_mul(1000)).into());
    }
    if let Some(traffic) = traffic(event) {
        top.insert("traffic".into(), traffic);
    }
    if let Some(info) = connection_info(event) {
        top.insert("connection_info".into(), info);
    }
    Ok(Value::Object(top))
}

/// `metadata`: who made the event (swantrail), its id and its order.
fn metadata(event: &Event, product_version: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {
            "name": "swantrail",
            "vendor_name": "swantrail",
            "version": product_version,
        },
        "uid": event.event.id,
        "original_time": event.timestamp,
        "sequence": event.event.sequence,
        "event_code": event.event.action.as_str(),
        "log_name": event.event.dataset,
        "log_provider": event.observer.product,
    })
}

/// An endpoint with an address; OCSF wants one of its identifiers, and a
/// port alone names nothing.
fn endpoint(endpoint: Option<&crate::event::Endpoint>) -> Option<Value> {
    let endpoint = endpoint?;
    let ip = endpoint.ip.as_ref()?;
    let mut out = Map::new();
    out.insert("ip".into(), ip.as_str().into());
    if let Some(port) = endpoint.port {
        out.insert("port".into(), port.into());
    }
    Some(Value::Object(out))
}

/// True for the actions about a whole tunnel rather than one SA.
fn about_tunnel(action: Action) -> bool {
    matches!(
        action,
        Action::TunnelUp | Action::TunnelDown | Action::Traffic
    )
}

/// `session`: the tunnel's up period for tunnel events (named by its
/// connection and `up_since`, the same in its `tunnel-up` and its
/// `tunnel-down`), else the SA (named by pluto run and serial).
fn session(event: &Event, time: i64) -> Result<Option<Value>, OcsfError> {
    let lib = &event.libreswan;
    let generation = lib.pluto.generation;
    let sa_uid = lib
        .sa
        .as_ref()
        .map(|sa| format!("{generation}-{}", sa.serial));
    let mut out = Map::new();
    out.insert("is_vpn".into(), true.into());
    match (&lib.tunnel, &lib.connection) {
        (Some(tunnel), Some(connection)) if about_tunnel(event.event.action) => {
            let mut uid = connection.name.clone();
            if let Some(peer) = &connection.peer {
                uid.push('/');
                uid.push_str(peer);
            }
            uid.push('@');
            uid.push_str(&tunnel.up_since);
            out.insert("uid".into(), uid.into());
            out.insert("created_time".into(), epoch_ms(&tunnel.up_since)?.into());
            if let Some(sa_uid) = sa_uid {
                out.insert("uid_alt".into(), sa_uid.into());
            }
        }
        _ => {
            let Some(sa_uid) = sa_uid else {
                return Ok(None);
            };
            out.insert("uid".into(), sa_uid.into());
            if let Some(parent) = lib.sa.as_ref().and_then(|sa| sa.parent_serial) {
                out.insert("uid_alt".into(), format!("{generation}-{parent}").into());
            }
            if let Some(duration_s) = lib.sa.as_ref().and_then(|sa| sa.duration_s) {
                let created = time.saturating_sub(duration_s.saturating_mul(1000));
                out.insert("created_time".into(), created.into());
            }
        }
    }
    if Activity::of(event.event.action) == Activity::Close {
        out.insert("expiration_time".into(), time.into());
        if let Some(reason) = &event.event.reason {
            out.insert("expiration_reason".into(), reason.as_str().into());
        }
    }
    Ok(Some(Value::Object(out)))
}

/// `duration`'s seconds: the tunnel's for tunnel events, the SA's for an
/// ended SA.
fn duration_s(event: &Event) -> Option<i64> {
    let lib = &event.libreswan;
    if about_tunnel(event.event.action) {
        return lib.tunnel.as_ref().map(|t| t.duration_s);
    }
    lib.sa.as_ref().and_then(|sa| sa.duration_s)
}

/// `traffic`: the tunnel's byte totals, else an ended SA's own.
fn traffic(event: &Event) -> Option<Value> {
    let lib = &event.libreswan;
    let (bytes_in, bytes_out) = match (&lib.tunnel, &lib.sa) {
        (Some(t), _) => (t.bytes_in, t.bytes_out),
        (None, Some(sa)) => (sa.bytes_in?, sa.bytes_out?),
        (None, None) => return None,
    };
    Some(json!({
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "bytes": bytes_in.saturating_add(bytes_out),
    }))
}

/// `connection_info`: the SA's protocol (ESP for a Child SA, IKE over UDP
/// for an IKE SA) and the IP version of its peer. The direction is
/// Unknown: the event does not say which side initiated.
fn connection_info(event: &Event) -> Option<Value> {
    let sa = event.libreswan.sa.as_ref()?;
    let (name, number) = match sa.kind.as_str() {
        "child" => ("esp", 50),
        "ike" => ("udp", 17),
        _ => return None,
    };
    let mut out = Map::new();
    out.insert("direction_id".into(), 0.into());
    out.insert("direction".into(), "Unknown".into());
    out.insert("protocol_name".into(), name.into());
    out.insert("protocol_num".into(), number.into());
    let ip = event
        .destination
        .as_ref()
        .or(event.source.as_ref())
        .and_then(|e| e.ip.as_deref())
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    if let Some(ip) = ip {
        let id = if ip.is_ipv4() { 4 } else { 6 };
        out.insert("protocol_ver_id".into(), id.into());
        out.insert(
            "protocol_ver".into(),
            format!("Internet Protocol version {id} (IPv{id})").into(),
        );
    }
    Some(Value::Object(out))
}

/// `unmapped`: what OCSF has no attribute for, under the names the ECS
/// event gives it (`libreswan.*`, `event.kind`, `observer.*`).
fn unmapped(event: &Event) -> Value {
    let libreswan = serde_json::to_value(&event.libreswan).unwrap_or(Value::Null);
    let mut observer = Map::new();
    observer.insert("vendor".into(), event.observer.vendor.as_str().into());
    observer.insert("product".into(), event.observer.product.as_str().into());
    if let Some(version) = &event.observer.version {
        observer.insert("version".into(), version.as_str().into());
    }
    json!({
        "libreswan": libreswan,
        "event": { "kind": event.event.kind.as_str(), "action": event.event.action.as_str() },
        "observer": observer,
    })
}

/// The reduced form of an OCSF event too large for a datagram: the required
/// attributes, the id and the action, bounded in size whatever the event
/// held, with `metadata.is_truncated` and the full size.
pub fn reduced(full: &Value, original_bytes: usize) -> Value {
    let keep = [
        "class_uid",
        "class_name",
        "category_uid",
        "category_name",
        "activity_id",
        "activity_name",
        "type_uid",
        "type_name",
        "time",
        "status_id",
        "status",
        "severity_id",
        "severity",
        "tunnel_type_id",
        "tunnel_type",
    ];
    let mut out = Map::new();
    for key in keep {
        if let Some(value) = full.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    let mut metadata = Map::new();
    for key in ["version", "product", "uid", "sequence", "event_code"] {
        if let Some(value) = full.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), value.clone());
        }
    }
    metadata.insert("is_truncated".into(), true.into());
    metadata.insert("untruncated_size".into(), original_bytes.into());
    out.insert("metadata".into(), Value::Object(metadata));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_the_type_uid_of_its_activity() {
        for action in Action::ALL {
            let activity = Activity::of(action);
            assert!(matches!(activity as u8, 1 | 2 | 3 | 99), "{action}");
        }
        assert_eq!(Activity::of(Action::NegotiationFailed), Activity::Open);
        assert_eq!(status(Action::NegotiationFailed), (2, "Failure"));
        assert_eq!(Activity::of(Action::ChildSaRekeyed), Activity::Renew);
    }

    #[test]
    fn a_line_that_is_not_an_event_is_refused_with_a_reason() {
        let err = encode_line("{\"a\":1}", "0.1.0").unwrap_err();
        assert!(matches!(err, OcsfError::NotAnEvent(_)), "{err}");
    }
}
