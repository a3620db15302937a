//! The event a tracker emits, and its encoding as one ECS-shaped JSON line.
//!
//! Field names follow the Elastic Common Schema so that ELK and most SIEMs
//! index events without mapping work; whatever ECS has no field for lives
//! under `libreswan.*`. `docs/events.md` documents every field and
//! `docs/event.schema.json` is the contract the tests check. This module
//! only describes and encodes events: it never decides what happened (that
//! is the tracker's job) and never performs I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The ECS version the field layout follows, written to `ecs.version`.
pub const ECS_VERSION: &str = "8.11.0";

/// One lifecycle event: a change pluto's status showed, or a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the change was observed: the time of the snapshot that showed
    /// it, RFC 3339 in UTC, so replays are reproducible.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// `ecs.version`, so receivers know which ECS the layout follows.
    pub ecs: Ecs,
    /// What happened (`event.*`).
    pub event: EventMeta,
    /// The gateway that observed it (`observer.*`).
    pub observer: Observer,
    /// The local endpoint of the tunnel, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    /// The remote endpoint (the peer), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    /// The XAUTH/EAP user or the peer's ID, where printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Everything ECS has no field for.
    pub libreswan: Libreswan,
}

/// `ecs.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ecs {
    /// The ECS version of the layout.
    pub version: String,
}

/// `event.*`: the ECS categorisation plus swantrail's action and reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Deterministic id: the same change always gets the same id, so a
    /// receiver can drop duplicates after a crash or a retry.
    pub id: String,
    /// `event` for changes, `metric` for traffic reports, `state` for the
    /// inventory a tracker emits when it starts.
    pub kind: EventKind,
    /// ECS categories: always `network` and `session`.
    pub category: Vec<String>,
    /// ECS types: `start`, `end`, `change` or `info`.
    #[serde(rename = "type")]
    pub types: Vec<String>,
    /// What happened, one of [`Action`].
    pub action: Action,
    /// Why, where known (`expired`, `replaced`, `deleted`, `pluto-restart`,
    /// `observed-at-start`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per-host monotonic counter; it orders events and shows gaps. It is
    /// never part of the id.
    pub sequence: u64,
    /// Always `libreswan`: the ECS module that produced the event.
    pub module: String,
    /// Always `libreswan.tunnel`, so an index template can match on it.
    pub dataset: String,
}

/// ECS `event.kind` values swantrail uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A change.
    Event,
    /// A periodic measurement (`traffic`).
    Metric,
    /// Part of the inventory of what was already there at start.
    State,
}

/// Every action swantrail emits (`event.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A tunnel (connection instance) got its first established Child SA.
    TunnelUp,
    /// A tunnel lost its last established Child SA: the audit record with
    /// lifetime and byte totals.
    TunnelDown,
    /// A new IKE/ISAKMP SA for a tunnel that had none.
    IkeSaEstablished,
    /// A new IKE/ISAKMP SA that replaces the tunnel's previous one.
    IkeSaRekeyed,
    /// An IKE SA went away after it was replaced or its lifetime ran out.
    IkeSaExpired,
    /// An IKE SA went away before its time (delete, DPD, restart).
    IkeSaDeleted,
    /// A new Child/IPsec SA for a tunnel that had none.
    ChildSaEstablished,
    /// A new Child/IPsec SA that replaces the tunnel's previous one.
    ChildSaRekeyed,
    /// A Child SA went away after it was replaced or its lifetime ran out.
    ChildSaExpired,
    /// A Child SA went away before its time.
    ChildSaDeleted,
    /// A not-yet-established SA appeared.
    NegotiationStarted,
    /// A tunnel has been negotiating, without an established Child SA,
    /// for longer than the configured time.
    NegotiationStalled,
    /// A not-yet-established SA went away without establishing.
    NegotiationFailed,
    /// A connection was loaded.
    ConnectionAdded,
    /// A connection was deleted.
    ConnectionRemoved,
    /// pluto's serials started again: every SA of the old run ended.
    PlutoRestarted,
    /// pluto could not be queried.
    PlutoUnreachable,
    /// pluto answers again after being unreachable.
    PlutoReachable,
    /// Periodic byte counters of an up tunnel.
    Traffic,
}

impl Action {
    /// Every action, in documentation order.
    pub const ALL: [Action; 19] = [
        Action::TunnelUp,
        Action::TunnelDown,
        Action::IkeSaEstablished,
        Action::IkeSaRekeyed,
        Action::IkeSaExpired,
        Action::IkeSaDeleted,
        Action::ChildSaEstablished,
        Action::ChildSaRekeyed,
        Action::ChildSaExpired,
        Action::ChildSaDeleted,
        Action::NegotiationStarted,
        Action::NegotiationStalled,
        Action::NegotiationFailed,
        Action::ConnectionAdded,
        Action::ConnectionRemoved,
        Action::PlutoRestarted,
        Action::PlutoUnreachable,
        Action::PlutoReachable,
        Action::Traffic,
    ];

    /// The action as it appears in `event.action` (and as syslog MSGID).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::TunnelUp => "tunnel-up",
            Action::TunnelDown => "tunnel-down",
            Action::IkeSaEstablished => "ike-sa-established",
            Action::IkeSaRekeyed => "ike-sa-rekeyed",
            Action::IkeSaExpired => "ike-sa-expired",
            Action::IkeSaDeleted => "ike-sa-deleted",
            Action::ChildSaEstablished => "child-sa-established",
            Action::ChildSaRekeyed => "child-sa-rekeyed",
            Action::ChildSaExpired => "child-sa-expired",
            Action::ChildSaDeleted => "child-sa-deleted",
            Action::NegotiationStarted => "negotiation-started",
            Action::NegotiationStalled => "negotiation-stalled",
            Action::NegotiationFailed => "negotiation-failed",
            Action::ConnectionAdded => "connection-added",
            Action::ConnectionRemoved => "connection-removed",
            Action::PlutoRestarted => "pluto-restarted",
            Action::PlutoUnreachable => "pluto-unreachable",
            Action::PlutoReachable => "pluto-reachable",
            Action::Traffic => "traffic",
        }
    }

    /// The ECS `event.type` for this action.
    pub fn ecs_type(self) -> &'static str {
        match self {
            Action::TunnelUp
            | Action::IkeSaEstablished
            | Action::ChildSaEstablished
            | Action::NegotiationStarted
            | Action::ConnectionAdded
            | Action::PlutoReachable => "start",
            Action::TunnelDown
            | Action::IkeSaExpired
            | Action::IkeSaDeleted
            | Action::ChildSaExpired
            | Action::ChildSaDeleted
            | Action::NegotiationFailed
            | Action::ConnectionRemoved
            | Action::PlutoUnreachable => "end",
            Action::IkeSaRekeyed | Action::ChildSaRekeyed | Action::PlutoRestarted => "change",
            Action::NegotiationStalled | Action::Traffic => "info",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `observer.*`: the gateway whose pluto was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observer {
    /// The gateway's host name (from the configuration).
    pub hostname: String,
    /// Always `libreswan`.
    pub vendor: String,
    /// Always `libreswan`.
    pub product: String,
    /// Always `vpn`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The libreswan version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `source.*` / `destination.*`: one end of the tunnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The IKE endpoint address (only a real IP address, never `%any`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The IKE port, when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `user.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// XAUTH/EAP username, else the peer's IKE ID as trafficstatus prints it.
    pub name: String,
}

/// `libreswan.*`: what ECS has no field for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Libreswan {
    /// Which tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionFields>,
    /// Which SA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sa: Option<SaFields>,
    /// Lifetime totals of the tunnel, summed across rekeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelFields>,
    /// How long a tunnel has been trying to come up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiation: Option<NegotiationFields>,
    /// Which pluto run the serials belong to.
    pub pluto: PlutoFields,
    /// Why an SA or negotiation ended, in pluto's own words: set only when
    /// a `pluto-log` source reads pluto's log (`event.reason` keeps its
    /// coarser values, which consumers and `report` rely on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndFields>,
}

/// `libreswan.end.*`: the cause of an end as pluto's log states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndFields {
    /// `peer-deleted`, `local-delete`, `liveness-failure`, `expired`,
    /// `replaced`, `authentication-failed`, `pluto-shutdown` or
    /// `negotiation-timeout`.
    pub cause: String,
    /// The log line that says it, as pluto wrote it (without its time
    /// stamp), so that an auditor can find it in pluto's log.
    pub log: String,
}

/// `libreswan.connection.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionFields {
    /// The base connection name, without quotes.
    pub name: String,
    /// The instance as printed (`[2]`, `[1][1]`), for template instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The instance suffix: the peer address of a road warrior, or the OE text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// `libreswan.sa.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaFields {
    /// The `#N` serial, unique within one pluto run.
    pub serial: u64,
    /// `ike` or `child`.
    pub kind: String,
    /// `1` or `2`, when it can be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_version: Option<u8>,
    /// The state name as printed (`STATE_V2_ESTABLISHED_CHILD_SA`), or the
    /// story where no name is printed (5.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The parent IKE SA of a Child SA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_serial: Option<u64>,
    /// For a rekey: the serial of the SA this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<u64>,
    /// For an ended SA: the serial of the SA that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<u64>,
    /// Inbound SPI (hex), from the status SPI line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spi_in: Option<String>,
    /// Outbound SPI (hex), from the status SPI line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spi_out: Option<String>,
    /// For an ended Child SA: bytes received over its life (wraps undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// For an ended Child SA: bytes sent over its life (wraps undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// For an ended SA: seconds from when it was first seen established
    /// (or first seen at all) to when it was seen gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<i64>,
}

/// `libreswan.tunnel.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelFields {
    /// When the tunnel came up (RFC 3339). For a tunnel found up at start,
    /// the kernel `add_time` of its oldest Child SA if printed, else the
    /// first snapshot's time.
    pub up_since: String,
    /// Seconds from `up_since` to this event.
    pub duration_s: i64,
    /// Child SA rekeys during this up period.
    pub rekeys: u64,
    /// Bytes received, summed across the tunnel's Child SAs and their rekeys.
    pub bytes_in: u64,
    /// Bytes sent, summed across the tunnel's Child SAs and their rekeys.
    pub bytes_out: u64,
}

/// `libreswan.negotiation.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegotiationFields {
    /// When the tunnel started negotiating (RFC 3339).
    pub since: String,
    /// Seconds it has been negotiating.
    pub duration_s: i64,
    /// How many SAs were tried so far (each retry gets a new serial).
    pub attempts: u64,
}

/// `libreswan.pluto.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlutoFields {
    /// How many pluto restarts this tracker has seen; serials are only
    /// unique within one generation.
    pub generation: u64,
}

impl Event {
    /// The deterministic id (`event.id`).
    pub fn id(&self) -> &str {
        &self.event.id
    }

    /// The action as printed (`event.action`).
    pub fn action(&self) -> &str {
        self.event.action.as_str()
    }

    /// The event as one line of JSON, without a trailing newline.
    ///
    /// Byte for byte what `serde_json::to_string` makes of the derive (the
    /// tests compare the two on generated hostile events), written by hand
    /// because the daemon encodes every event of every poll and the derive
    /// was a tenth of the speed.
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(1024);
        self.write_json_line(&mut out);
        out
    }

    /// Append the event as one line of JSON, without a newline, to `out`:
    /// the same bytes as [`Event::to_json_line`], into a buffer the caller
    /// reuses (a whole poll's events go into one NDJSON buffer).
    pub fn write_json_line(&self, out: &mut String) {
        let mut top = JsonObject::open(out);
        top.str("@timestamp", &self.timestamp);
        top.object("ecs", |o| o.str("version", &self.ecs.version));
        let e = &self.event;
        top.object("event", |o| {
            o.str("id", &e.id);
            o.raw_str("kind", e.kind.as_str());
            o.str_array("category", &e.category);
            o.str_array("type", &e.types);
            o.raw_str("action", e.action.as_str());
            o.opt_str("reason", e.reason.as_deref());
            o.int("sequence", e.sequence);
            o.str("module", &e.module);
            o.str("dataset", &e.dataset);
        });
        let v = &self.observer;
        top.object("observer", |o| {
            o.str("hostname", &v.hostname);
            o.str("vendor", &v.vendor);
            o.str("product", &v.product);
            o.str("type", &v.kind);
            o.opt_str("version", v.version.as_deref());
        });
        for (key, end) in [("source", &self.source), ("destination", &self.destination)] {
            if let Some(end) = end {
                top.object(key, |o| {
                    o.opt_str("ip", end.ip.as_deref());
                    o.opt_int("port", end.port);
                });
            }
        }
        if let Some(user) = &self.user {
            top.object("user", |o| o.str("name", &user.name));
        }
        let l = &self.libreswan;
        top.object("libreswan", |o| {
            if let Some(c) = &l.connection {
                o.object("connection", |o| {
                    o.str("name", &c.name);
                    o.opt_str("instance", c.instance.as_deref());
                    o.opt_str("peer", c.peer.as_deref());
                });
            }
            if let Some(sa) = &l.sa {
                o.object("sa", |o| {
                    o.int("serial", sa.serial);
                    o.str("kind", &sa.kind);
                    o.opt_int("ike_version", sa.ike_version);
                    o.opt_str("state", sa.state.as_deref());
                    o.opt_int("parent_serial", sa.parent_serial);
                    o.opt_int("replaces", sa.replaces);
                    o.opt_int("replaced_by", sa.replaced_by);
                    o.opt_str("spi_in", sa.spi_in.as_deref());
                    o.opt_str("spi_out", sa.spi_out.as_deref());
                    o.opt_int("bytes_in", sa.bytes_in);
                    o.opt_int("bytes_out", sa.bytes_out);
                    o.opt_int("duration_s", sa.duration_s);
                });
            }
            if let Some(t) = &l.tunnel {
                o.object("tunnel", |o| {
                    o.str("up_since", &t.up_since);
                    o.int("duration_s", t.duration_s);
                    o.int("rekeys", t.rekeys);
                    o.int("bytes_in", t.bytes_in);
                    o.int("bytes_out", t.bytes_out);
                });
            }
            if let Some(n) = &l.negotiation {
                o.object("negotiation", |o| {
                    o.str("since", &n.since);
                    o.int("duration_s", n.duration_s);
                    o.int("attempts", n.attempts);
                });
            }
            o.object("pluto", |o| o.int("generation", l.pluto.generation));
            if let Some(end) = &l.end {
                o.object("end", |o| {
                    o.str("cause", &end.cause);
                    o.str("log", &end.log);
                });
            }
        });
        top.close();
    }
}

impl EventKind {
    /// The kind as it appears in `event.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Event => "event",
            EventKind::Metric => "metric",
            EventKind::State => "state",
        }
    }
}

/// A JSON object being written into a `String`: keys in the order given,
/// commas between members. Keys are this module's own literals, which
/// need no escaping; values go through [`push_json_str`].
struct JsonObject<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    fn open(out: &'a mut String) -> JsonObject<'a> {
        out.push('{');
        JsonObject { out, empty: true }
    }

    fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.out, value);
    }

    /// A value known to need no escaping (an enum's name).
    fn raw_str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push('"');
        self.out.push_str(value);
        self.out.push('"');
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn str_array(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.out.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_json_str(self.out, value);
        }
        self.out.push(']');
    }

    /// An integer, formatted as serde_json formats it (itoa).
    fn int(&mut self, key: &str, value: impl itoa::Integer) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn opt_int(&mut self, key: &str, value: Option<impl itoa::Integer>) {
        if let Some(value) = value {
            self.int(key, value);
        }
    }

    fn object(&mut self, key: &str, members: impl FnOnce(&mut JsonObject<'_>)) {
        self.key(key);
        let mut inner = JsonObject::open(self.out);
        members(&mut inner);
        inner.close();
    }
}

/// `value` as a JSON string, escaped exactly as `serde_json` does: `"` and
/// `\` with a backslash, `\b \f \n \r \t` by name, every other control
/// character below U+0020 as `\u00xx` (lower-case hex), and everything
/// else (DEL, U+2028/U+2029, any non-ASCII) as it is.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is a char boundary.
        out.push_str(&value[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

/// The deterministic id of a change: a SHA-256 over the parts that name it
/// (host, pluto run, action, subject), shortened to 128 bits of hex.
///
/// The parts are separated by a byte that never occurs in them, so two
/// different part lists cannot hash the same text.
pub fn event_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds as RFC 3339 in UTC (`2026-11-28T09:21:02Z`).
///
/// Out-of-range times (far beyond year 9999) fall back to the epoch rather
/// than failing an event.
pub fn rfc3339(unix_s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_s)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_unix_seconds_in_utc() {
        assert_eq!(rfc3339(1795857662), "2026-11-28T09:21:02Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn event_id_separates_parts_and_is_stable() {
        let a = event_id(&["h", "1", "x"]);
        assert_eq!(a, event_id(&["h", "1", "x"]));
        assert_ne!(a, event_id(&["h1", "", "x"]));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn action_strings_match_serde_names() {
        for a in Action::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }
}
