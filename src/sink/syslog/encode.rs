//! Pure formatting of one event as a syslog message: RFC 5424 or RFC 3164
//! header, RFC 5424 STRUCTURED-DATA, and the JSON or ArcSight CEF body, with
//! the escaping each syntax needs, plus RFC 6587 framing for streams.
//!
//! Whatever a connection name, peer id or error text holds, the message this
//! module returns is one syntactically valid message with no line break in
//! it, so no framing can split it and no receiver's parser can read a field
//! boundary that was not meant. It must never cut a message mid-syntax: an
//! event too large for a datagram becomes a smaller, still valid event with
//! a `truncated` marker. No sockets, clocks or configuration files here.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{Facility, Format, Framing, MessageFormat};

/// The SD-ID of swantrail's STRUCTURED-DATA element. swantrail has no IANA
/// enterprise number of its own, so it uses 32473, the number RFC 5612
/// reserves for documentation and examples, rather than squat on someone's.
pub const SD_ID: &str = "swantrail@32473";

/// Syslog severity (RFC 5424 §6.2.1) of an event, from its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 4: something failed or pluto itself changed (failed negotiation, restart, outage).
    Warning = 4,
    /// 5: a normal but significant end (a tunnel or SA went down, a connection was removed).
    Notice = 5,
    /// 6: everything else (starts, rekeys, inventory, traffic).
    Informational = 6,
}

impl Severity {
    /// The CEF severity (0–10) an ArcSight console sorts by: low, medium, high.
    pub fn cef(self) -> u8 {
        match self {
            Severity::Warning => 7,
            Severity::Notice => 5,
            Severity::Informational => 3,
        }
    }
}

/// The severity table of `docs/events.md`; an unknown action is informational
/// so that a newer tracker never makes an older receiver page someone.
pub fn severity(action: &str) -> Severity {
    match action {
        "negotiation-failed" | "negotiation-stalled" | "pluto-unreachable" | "pluto-restarted" => {
            Severity::Warning
        }
        "tunnel-down" | "ike-sa-deleted" | "child-sa-deleted" | "connection-removed" => {
            Severity::Notice
        }
        _ => Severity::Informational,
    }
}

/// What the operator chose about the message; everything else comes from the event.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// RFC 5424 or RFC 3164.
    pub format: Format,
    /// The facility part of PRI.
    pub facility: Facility,
    /// JSON event or CEF line as MSG.
    pub message: MessageFormat,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164), as configured.
    pub app_name: String,
    /// HOSTNAME; `None` uses the event's `observer.hostname`.
    pub hostname: Option<String>,
    /// PROCID: swantrail's process id.
    pub procid: u32,
}

/// One encoded message, without framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The message bytes: no CR or LF in them.
    pub bytes: Vec<u8>,
    /// True if the event was too large and was replaced by its reduced form.
    pub reduced: bool,
}

impl Encoder {
    /// The message for one spooled event line; with `max_bytes`, an event
    /// whose message would be longer is sent as its reduced form (id, action,
    /// sequence, connection, serial and `swantrail.truncated = true`).
    pub fn encode(&self, line: &str, max_bytes: Option<usize>) -> Encoded {
        self.encode_with(line, None, max_bytes)
    }

    /// The message for one spooled event line whose MSG is `payload`, the
    /// event in the sink's `encoding` (OCSF) rather than the spooled line
    /// itself; the header and STRUCTURED-DATA still come from the spooled
    /// line. Too long for `max_bytes`, MSG becomes the payload's reduced
    /// form (`metadata.is_truncated`).
    pub fn encode_with(
        &self,
        line: &str,
        payload: Option<&str>,
        max_bytes: Option<usize>,
    ) -> Encoded {
        // A spool line is JSON (the spool skips corrupt lines), but a message
        // must come out even for one that is not: it goes as a plain string.
        let event =
            serde_json::from_str::<Value>(line).unwrap_or_else(|_| Value::String(line.into()));
        let payload = payload
            .map(|p| serde_json::from_str::<Value>(p).unwrap_or_else(|_| Value::String(p.into())));
        let full = self.message_for(&event, payload.as_ref(), false);
        let Some(max) = max_bytes.filter(|&max| full.len() > max) else {
            return Encoded {
                bytes: full.into_bytes(),
                reduced: false,
            };
        };
        let mut reduced = reduce(&event, full.len());
        let payload = payload.map(|p| crate::ocsf::reduced(&p, full.len()));
        let mut message = self.message_for(&reduced, payload.as_ref(), true);
        // The connection name is the only unbounded field left: shorten it
        // until the message fits, then drop it if even that is not enough.
        while message.len() > max {
            let pointer = "/libreswan/connection/name";
            let Some(name) = reduced.pointer(pointer).and_then(Value::as_str) else {
                break;
            };
            let keep = name.len().saturating_sub(message.len() - max);
            let shorter = cut_at_char(name, keep).to_string();
            match reduced.pointer_mut(pointer) {
                Some(slot) if !shorter.is_empty() => *slot = Value::String(shorter),
                _ => {
                    if let Some(libreswan) =
                        reduced.get_mut("libreswan").and_then(Value::as_object_mut)
                    {
                        libreswan.remove("connection");
                    }
                }
            }
            message = self.message_for(&reduced, payload.as_ref(), true);
        }
        Encoded {
            bytes: message.into_bytes(),
            reduced: true,
        }
    }

    /// The header and STRUCTURED-DATA from `event`, MSG from `payload`
    /// when the sink encodes events otherwise, else from `event`.
    fn message_for(&self, event: &Value, payload: Option<&Value>, truncated: bool) -> String {
        let action = text_at(event, "/event/action");
        let severity = severity(action.as_deref().unwrap_or(""));
        let pri = self.facility.code() * 8 + severity as u8;
        let body = match (payload, self.message) {
            (Some(payload), _) => ascii_json(payload),
            (None, MessageFormat::Json) => ascii_json(event),
            (None, MessageFormat::Cef) => cef(event, severity),
        };
        let host = self
            .hostname
            .clone()
            .or_else(|| text_at(event, "/observer/hostname"));
        let mut out = String::with_capacity(body.len() + 256);
        match self.format {
            Format::Rfc5424 => {
                let _ = write!(
                    out,
                    "<{pri}>1 {} {} {} {} {} ",
                    rfc5424_time(event),
                    header_field(host.as_deref(), 255),
                    header_field(Some(&self.app_name), 48),
                    self.procid,
                    header_field(action.as_deref(), 32),
                );
                structured_data(event, truncated, &mut out);
                out.push(' ');
            }
            Format::Rfc3164 => {
                let _ = write!(
                    out,
                    "<{pri}>{} {} {}[{}]: ",
                    rfc3164_time(event),
                    header_field(host.as_deref(), 255),
                    tag(&self.app_name),
                    self.procid,
                );
            }
        }
        out.push_str(&body);
        out
    }
}

/// Append one message to a stream buffer with RFC 6587 framing: octet
/// counting (`LEN SP MSG`, §3.4.1) or a trailing LF (§3.4.2, safe because a
/// message never holds one).
pub fn frame(message: &[u8], framing: Framing, out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            out.extend_from_slice(message.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(message);
        }
        Framing::Newline => {
            out.extend_from_slice(message);
            out.push(b'\n');
        }
    }
}

/// The event's field at a JSON pointer as text (strings as they are, numbers written out).
fn text_at(event: &Value, pointer: &str) -> Option<String> {
    match event.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A header field (HOSTNAME, APP-NAME, MSGID) is 1 to `max` printable
/// US-ASCII characters without spaces; anything else becomes `_`, and a
/// missing value is the NILVALUE `-`.
fn header_field(value: Option<&str>, max: usize) -> String {
    match value.filter(|v| !v.is_empty()) {
        None => "-".to_string(),
        Some(v) => v
            .chars()
            .take(max)
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect(),
    }
}

/// An RFC 3164 TAG: up to 32 alphanumerics (and `-_.`), since receivers end
/// it at the first `[`, `:` or space.
fn tag(app_name: &str) -> String {
    let tag: String = app_name
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if tag.is_empty() { "-".into() } else { tag }
}

fn timestamp(event: &Value) -> Option<time::OffsetDateTime> {
    let text = event.pointer("/@timestamp")?.as_str()?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
}

/// The event's `@timestamp` in the RFC 5424 TIMESTAMP grammar (UTC, at most
/// six fraction digits), or `-` when it has none.
fn rfc5424_time(event: &Value) -> String {
    let Some(t) = timestamp(event) else {
        return "-".into();
    };
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.microsecond() != 0 {
        let _ = write!(out, ".{:06}", t.microsecond());
    }
    out.push('Z');
    out
}

/// `Mmm dd hh:mm:ss` of RFC 3164, in UTC (the format has no zone; the
/// daemon never guesses the local one).
fn rfc3164_time(event: &Value) -> String {
    let t = timestamp(event).unwrap_or_else(time::OffsetDateTime::now_utc);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The SD-PARAMs: name, JSON pointer into the event.
const SD_PARAMS: [(&str, &str); 9] = [
    ("id", "/event/id"),
    ("seq", "/event/sequence"),
    ("action", "/event/action"),
    ("reason", "/event/reason"),
    ("conn", "/libreswan/connection/name"),
    ("serial", "/libreswan/sa/serial"),
    ("user", "/user/name"),
    ("src", "/source/ip"),
    ("dst", "/destination/ip"),
];

/// `[swantrail@32473 id="…" seq="…" …]`, or `-` for a line that is not an event.
fn structured_data(event: &Value, truncated: bool, out: &mut String) {
    if !event.is_object() {
        out.push('-');
        return;
    }
    out.push('[');
    out.push_str(SD_ID);
    for (name, pointer) in SD_PARAMS {
        if let Some(value) = text_at(event, pointer) {
            let _ = write!(out, " {name}=\"{}\"", sd_value(&value));
        }
    }
    if truncated {
        out.push_str(" truncated=\"1\"");
    }
    out.push(']');
}

/// An SD-PARAM value as RFC 5424 §6.3.3 says: `"`, `\` and `]` get a
/// backslash. Control characters (C0, DEL, C1) become U+FFFD: the grammar
/// would allow them, but receivers rewrite them and a newline would split
/// the message under newline framing.
pub fn sd_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}

/// The event as JSON in pure printable ASCII: every non-ASCII character and
/// DEL as a `\uXXXX` escape. It parses back to the same event, needs no
/// RFC 5424 BOM, and survives receivers that escape 8-bit or control bytes.
fn ascii_json(event: &Value) -> String {
    let compact = event.to_string();
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The reduced form of an event too large for a datagram.
fn reduce(event: &Value, original_bytes: usize) -> Value {
    let keep = |pointer: &str| event.pointer(pointer).cloned();
    let mut reduced = Map::new();
    if let Some(t) = keep("/@timestamp") {
        reduced.insert("@timestamp".into(), t);
    }
    let mut ev = Map::new();
    for key in ["id", "action", "sequence"] {
        if let Some(v) = keep(&format!("/event/{key}")) {
            ev.insert(key.into(), v);
        }
    }
    reduced.insert("event".into(), Value::Object(ev));
    if let Some(host) = keep("/observer/hostname") {
        reduced.insert("observer".into(), json!({ "hostname": host }));
    }
    let mut libreswan = Map::new();
    if let Some(name) = keep("/libreswan/connection/name") {
        libreswan.insert("connection".into(), json!({ "name": name }));
    }
    if let Some(serial) = keep("/libreswan/sa/serial") {
        libreswan.insert("sa".into(), json!({ "serial": serial }));
    }
    reduced.insert("libreswan".into(), Value::Object(libreswan));
    reduced.insert(
        "swantrail".into(),
        json!({ "truncated": true, "original_bytes": original_bytes }),
    );
    Value::Object(reduced)
}

fn cut_at_char(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// CEF extension keys taken from the event: key, JSON pointers (first present wins).
const CEF_FIELDS: [(&str, &[&str]); 9] = [
    ("externalId", &["/event/id"]),
    ("act", &["/event/action"]),
    ("dvchost", &["/observer/hostname"]),
    ("src", &["/source/ip"]),
    ("spt", &["/source/port"]),
    ("dst", &["/destination/ip"]),
    ("dpt", &["/destination/port"]),
    ("suser", &["/user/name"]),
    (
        "in",
        &["/libreswan/tunnel/bytes_in", "/libreswan/sa/bytes_in"],
    ),
];

/// The custom string fields: number, label, JSON pointer.
const CEF_CUSTOM: [(u8, &str, &str); 6] = [
    (1, "connection", "/libreswan/connection/name"),
    (2, "reason", "/event/reason"),
    (3, "saSerial", "/libreswan/sa/serial"),
    (4, "instance", "/libreswan/connection/instance"),
    (5, "sequence", "/event/sequence"),
    (6, "plutoGeneration", "/libreswan/pluto/generation"),
];

/// `CEF:0|libreswan|swantrail|<version>|<action>|<name>|<severity>|<extension>`.
fn cef(event: &Value, severity: Severity) -> String {
    let action = text_at(event, "/event/action").unwrap_or_else(|| "unknown".into());
    let mut out = format!(
        "CEF:0|libreswan|swantrail|{}|{}|{}|{}|",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&action),
        cef_header(&cef_name(&action)),
        severity.cef()
    );
    let mut fields: Vec<(String, String)> = Vec::new();
    for (key, pointers) in CEF_FIELDS {
        if let Some(v) = pointers.iter().find_map(|p| text_at(event, p)) {
            fields.push((key.into(), v));
        }
    }
    if let Some(v) = ["/libreswan/tunnel/bytes_out", "/libreswan/sa/bytes_out"]
        .iter()
        .find_map(|p| text_at(event, p))
    {
        fields.push(("out".into(), v));
    }
    if let Some(t) = timestamp(event) {
        let millis = t.unix_timestamp_nanos() / 1_000_000;
        fields.push(("rt".into(), millis.to_string()));
    }
    for (n, label, pointer) in CEF_CUSTOM {
        if let Some(v) = text_at(event, pointer) {
            fields.push((format!("cs{n}"), v));
            fields.push((format!("cs{n}Label"), label.into()));
        }
    }
    if text_at(event, "/swantrail/truncated").is_some() {
        fields.push(("reason".into(), "truncated".into()));
    }
    if !event.is_object() {
        fields.push(("msg".into(), event.as_str().unwrap_or_default().into()));
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{key}={}", cef_extension(value));
    }
    out
}

/// The CEF Name: the action in words ("tunnel-down" → "Tunnel down").
fn cef_name(action: &str) -> String {
    let words = action.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// A CEF header field: `\` and `|` get a backslash; a header cannot hold a
/// line break, so control characters become U+FFFD.
fn cef_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\` and `=` get a backslash, CR and LF are written
/// `\r` and `\n` as the spec says, other control characters become U+FFFD.
pub fn cef_extension(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"@timestamp":"2026-11-28T09:25:32Z","event":{"id":"2266b4adfa4d5be540bfd660f134c188","action":"tunnel-down","reason":"deleted","sequence":107},"observer":{"hostname":"west","version":"4.10"},"source":{"ip":"192.0.2.1"},"destination":{"ip":"192.0.2.2"},"libreswan":{"connection":{"name":"v2-tun"},"tunnel":{"bytes_in":48064,"bytes_out":48063},"pluto":{"generation":0}}}"#;

    fn encoder(format: Format, message: MessageFormat) -> Encoder {
        Encoder {
            format,
            facility: Facility::Authpriv,
            message,
            app_name: "swantrail".into(),
            hostname: None,
            procid: 42,
        }
    }

    fn text(e: &Encoded) -> String {
        String::from_utf8(e.bytes.clone()).unwrap()
    }

    #[test]
    fn rfc5424_header_sd_and_json_body() {
        let e = encoder(Format::Rfc5424, MessageFormat::Json).encode(EVENT, None);
        assert_eq!(
            text(&e),
            format!(
                "<85>1 2026-11-28T09:25:32Z west swantrail 42 tunnel-down [swantrail@32473 id=\"2266b4adfa4d5be540bfd660f134c188\" seq=\"107\" action=\"tunnel-down\" reason=\"deleted\" conn=\"v2-tun\" src=\"192.0.2.1\" dst=\"192.0.2.2\"] {}",
                serde_json::from_str::<Value>(EVENT).unwrap()
            )
        );
    }

    #[test]
    fn rfc3164_has_tag_and_pid_and_no_sd() {
        let e = encoder(Format::Rfc3164, MessageFormat::Json).encode(EVENT, None);
        assert!(
            text(&e).starts_with("<85>Nov 28 09:25:32 west swantrail[42]: {\"@timestamp\""),
            "{}",
            text(&e)
        );
    }

    #[test]
    fn cef_line_maps_the_fields() {
        let e = encoder(Format::Rfc5424, MessageFormat::Cef).encode(EVENT, None);
        let t = text(&e);
        let cef = &t[t.find("CEF:").unwrap()..];
        assert_eq!(
            cef,
            format!(
                "CEF:0|libreswan|swantrail|{}|tunnel-down|Tunnel down|5|externalId=2266b4adfa4d5be540bfd660f134c188 act=tunnel-down dvchost=west src=192.0.2.1 dst=192.0.2.2 in=48064 out=48063 rt=1795857932000 cs1=v2-tun cs1Label=connection cs2=deleted cs2Label=reason cs5=107 cs5Label=sequence cs6=0 cs6Label=plutoGeneration",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn hostile_values_are_escaped_and_never_break_a_line() {
        let name = "a\"b]c\\d=e|f\ng\rh\u{1}i\u{7f}j é😀";
        let event = json!({"event": {"id": "x", "action": "tunnel-up"}, "libreswan": {"connection": {"name": name}}});
        for message in [MessageFormat::Json, MessageFormat::Cef] {
            let e = encoder(Format::Rfc5424, message).encode(&event.to_string(), None);
            let t = text(&e);
            assert!(!t.contains(['\n', '\r', '\u{1}', '\u{7f}']), "{t}");
            match message {
                MessageFormat::Json => {
                    assert!(t.contains(r#"conn="a\"b\]c\\d=e|f�g�h�i�j é😀""#), "{t}");
                    let body = &t[t.find("] {").unwrap() + 2..];
                    assert!(body.is_ascii());
                    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), event);
                }
                MessageFormat::Cef => {
                    assert!(t.contains(r#"cs1=a"b]c\\d\=e|f\ng\rh�i�j é😀 "#), "{t}");
                }
            }
        }
    }

    #[test]
    fn an_event_too_large_is_reduced_to_a_valid_event_with_a_marker() {
        let long = "n".repeat(5000);
        let event = json!({"event": {"id": "abc", "action": "tunnel-up", "sequence": 7}, "libreswan": {"connection": {"name": long}, "sa": {"serial": 9}}, "user": {"name": "u".repeat(3000)}});
        let line = event.to_string();
        for (format, max) in [
            (Format::Rfc5424, 8192),
            (Format::Rfc3164, 2048),
            (Format::Rfc5424, 480),
        ] {
            let e = encoder(format, MessageFormat::Json).encode(&line, Some(max));
            assert!(e.reduced);
            assert!(e.bytes.len() <= max, "{} > {max}", e.bytes.len());
            let t = text(&e);
            let body: Value = serde_json::from_str(&t[t.find("{\"").unwrap()..]).unwrap();
            assert_eq!(body["event"]["id"], "abc");
            assert_eq!(body["event"]["action"], "tunnel-up");
            assert_eq!(body["libreswan"]["sa"]["serial"], 9);
            assert_eq!(body["swantrail"]["truncated"], true);
        }
        let small = encoder(Format::Rfc5424, MessageFormat::Json).encode(EVENT, Some(8192));
        assert!(!small.reduced);
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        let mut out = Vec::new();
        frame("é".as_bytes(), Framing::OctetCounting, &mut out);
        frame(b"x", Framing::Newline, &mut out);
        assert_eq!(out, "2 é".bytes().chain(*b"x\n").collect::<Vec<u8>>());
    }

    #[test]
    fn severity_follows_the_documented_table() {
        assert_eq!(severity("tunnel-down"), Severity::Notice);
        assert_eq!(severity("negotiation-failed"), Severity::Warning);
        assert_eq!(severity("pluto-restarted"), Severity::Warning);
        assert_eq!(severity("tunnel-up"), Severity::Informational);
        assert_eq!(severity("something-new"), Severity::Informational);
    }

    #[test]
    fn an_ocsf_payload_too_large_for_a_datagram_goes_reduced_and_still_ocsf() {
        let huge = "x".repeat(5000);
        let ocsf = json!({
            "class_uid": 4014, "category_uid": 4, "activity_id": 2, "type_uid": 401402,
            "time": 1_795_857_932_000_i64, "severity_id": 2, "tunnel_type_id": 99,
            "metadata": {"version": "1.8.0", "uid": "2266b4adfa4d5be540bfd660f134c188",
                         "product": {"name": "swantrail"}},
            "unmapped": {"libreswan": {"connection": {"name": huge}}},
        })
        .to_string();
        let e = encoder(Format::Rfc5424, MessageFormat::Json).encode_with(
            EVENT,
            Some(&ocsf),
            Some(1024),
        );
        assert!(e.reduced);
        let message = text(&e);
        assert!(message.len() <= 1024, "{}", message.len());
        assert!(message.contains(" truncated=\"1\"]"), "{message}");
        let body: Value =
            serde_json::from_str(&message[message.find("] ").unwrap() + 2..]).unwrap();
        assert_eq!(body["class_uid"], 4014);
        assert_eq!(body["metadata"]["uid"], "2266b4adfa4d5be540bfd660f134c188");
        assert_eq!(body["metadata"]["is_truncated"], true);
        assert!(body["metadata"]["untruncated_size"].as_u64().unwrap() > 5000);
        assert!(body.get("unmapped").is_none());
    }
}
