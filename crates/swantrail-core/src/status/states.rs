//! The `#N:` lines: state lines, SPI/traffic lines, pending lines and
//! `trafficstatus` lines, in every dialect from 3.20 to 5.4+.
//!
//! Each function takes the text after `#N: ` and returns a value or `None`
//! when the line is not of its shape; it never guesses a field that was
//! not printed, and never panics.

use crate::snapshot::{ConnRef, IkeVersion, Pending, SaKind, Said, SpiLine, State, Timer, Traffic};

use super::lexical::{
    Word, after_conn_ref, conn_ref, conn_ref_parts, humber, number, semicolon_items, timer_item,
    timer_kind, trim_bangs, trim_end, trim_start, words,
};

/// The markers of a `trafficstatus` line; a line with neither is not one.
static TYPE_FIELD: Word = Word::new(", type=");
static USERNAME_FIELD: Word = Word::new(", username=");
/// The counters of an SPI line.
static TRAFFIC: Word = Word::new("Traffic:");

/// Where a feed that does not keep its records (a daemon's listing,
/// `swantrail parse`'s JSON) reads each state and SPI line: one of each,
/// filled again line after line, so that the text of a gateway's hundred
/// thousand SAs is copied into buffers already there instead of a dozen
/// new strings each.
#[derive(Debug)]
pub struct Scratch {
    /// The last state line read.
    pub state: State,
    /// The last SPI line read.
    pub spi: SpiLine,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            state: blank_state(),
            spi: SpiLine::default(),
        }
    }
}

/// A state with nothing read into it yet (and no buffer allocated).
pub fn blank_state() -> State {
    State {
        serial: 0,
        conn: ConnRef::default(),
        port: None,
        tcp: false,
        kind: None,
        ike_version: None,
        name: None,
        story: String::new(),
        established: false,
        timers: Vec::new(),
        newest: false,
        eroute_owner: false,
        parent_serial: None,
        spi_line: None,
        pending: Vec::new(),
        other_items: Vec::new(),
        line: 0,
    }
}

/// What kind of `#N:` line [`serial_line_into`] read, decided from its
/// shape alone; a state or SPI line is in
/// the [`Scratch`] it was given.
pub enum ReadInto {
    /// A state line, in [`Scratch::state`].
    State,
    /// An SPI line, in [`Scratch::spi`].
    Spi,
    /// A Child SA queued on the IKE SA `#N`.
    Pending(Pending),
    /// A `trafficstatus` line, with the fields that could not be read.
    Traffic(Box<Traffic>, Vec<String>),
}

/// Classify and parse the text after `#serial: `, reading a state or SPI
/// line into `into`: what it held before is overwritten whole (and is
/// anything when `None` is returned). Given a fresh [`Scratch`], it makes
/// new values; given the last one, it reuses its buffers.
pub fn serial_line_into(
    serial: u64,
    rest: &str,
    line: usize,
    into: &mut Scratch,
) -> Option<ReadInto> {
    if let Some(p) = rest.strip_prefix("pending ") {
        return pending(p).map(ReadInto::Pending);
    }
    // Most `#` lines are state lines: look for the traffic markers before
    // reading the line as one.
    if has_traffic_field(rest) {
        if let Some((t, problems)) = traffic(serial, rest, line) {
            return Some(ReadInto::Traffic(Box::new(t), problems));
        }
    }
    static SPI_TRAFFIC: Word = Word::new(" Traffic:");
    if SPI_TRAFFIC.is_in(rest) {
        return spi_line(rest, &mut into.spi).map(|()| ReadInto::Spi);
    }
    state(serial, rest, line, &mut into.state).map(|()| ReadInto::State)
}

/// Make `to` hold `text`, in the buffer it has.
fn set<B: Buffer>(to: &mut B, text: &str) {
    to.clear();
    to.push_str(text);
}

/// Make `to` hold `text` or nothing, in the buffer it has.
fn set_opt<B: Buffer>(to: &mut Option<B>, text: Option<&str>) {
    match (to.as_mut(), text) {
        (Some(buffer), Some(text)) => set(buffer, text),
        (None, Some(text)) => *to = Some(B::from(text)),
        (_, None) => *to = None,
    }
}

/// A text buffer [`set`] refills in place: the parser's own strings and
/// the snapshot's compact ones (connection names and peers).
trait Buffer: for<'a> From<&'a str> {
    fn clear(&mut self);
    fn push_str(&mut self, text: &str);
}

impl Buffer for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
}

impl Buffer for crate::snapshot::Text {
    fn clear(&mut self) {
        crate::snapshot::Text::clear(self);
    }
    fn push_str(&mut self, text: &str) {
        crate::snapshot::Text::push_str(self, text);
    }
}

/// Item `i` of `items`, filled by `fill` when it is there (its buffers
/// reused) and made by `make` when it is not.
fn refill<T>(items: &mut Vec<T>, i: usize, fill: impl FnOnce(&mut T), make: impl FnOnce() -> T) {
    match items.get_mut(i) {
        Some(item) => fill(item),
        None => items.push(make()),
    }
}

/// Whether `rest` holds `, type=` or `, username=`: looked for at its
/// commas, which a state or SPI line rarely has, in one pass instead of
/// two substring searches.
fn has_traffic_field(rest: &str) -> bool {
    let b = rest.as_bytes();
    memchr::memchr_iter(b',', b).any(|i| {
        let after = &b[i + 1..];
        after.starts_with(b" type=") || after.starts_with(b" username=")
    })
}

/// `pending CHILD SA for "c"[1] peer replacing #5` (any of the four wordings).
fn pending(text: &str) -> Option<Pending> {
    let (_, after) = text.split_once(" for ")?;
    let (conn, rest) = conn_ref(after, |s| s.find(" replacing #").unwrap_or(s.len()))?;
    let replacing = match rest.trim().strip_prefix("replacing #") {
        Some(n) => Some(number(n).ok()?.1),
        None if rest.trim().is_empty() => None,
        None => return None,
    };
    Some(Pending { conn, replacing })
}

/// Where the port of a state line starts: the first `:` followed by
/// digits (or a sanitised word) and then a space or `(tcp)`.
fn port_position(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b':' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            let token = &s[start..j];
            let numeric = !token.is_empty() && token.bytes().all(|c| c.is_ascii_digit());
            let sanitized = token == "EPHEM" || token == "PORT";
            if (numeric || sanitized) && (s[j..].starts_with(' ') || s[j..].starts_with("(tcp)")) {
                return Some((i, j));
            }
        }
        i += 1;
    }
    None
}

/// A state line: `"c"[1] peer:500 NAME (story); ITEM; ITEM;`.
fn state(serial: u64, rest: &str, line: usize, st: &mut State) -> Option<()> {
    let (conn_name, instances, peer, after) =
        conn_ref_parts(rest, |s| port_position(s).map_or(s.len(), |(i, _)| i))?;
    let (colon, port_end) = port_position(after)?;
    if colon != 0 {
        return None;
    }
    let port = after[1..port_end].parse::<u16>().ok();
    let mut rest = &after[port_end..];
    let tcp = rest.starts_with("(tcp)");
    if tcp {
        rest = &rest["(tcp)".len()..];
    }
    let rest = rest.strip_prefix(' ')?;
    let (name, story, items) = state_part(rest)?;

    st.serial = serial;
    set(&mut st.conn.name, conn_name);
    st.conn.instances = instances;
    set_opt(&mut st.conn.peer, peer);
    st.port = port;
    st.tcp = tcp;
    st.kind = None;
    st.ike_version = None;
    set_opt(&mut st.name, name);
    set(&mut st.story, story);
    st.established = false;
    st.newest = false;
    st.eroute_owner = false;
    st.parent_serial = None;
    st.spi_line = None;
    st.pending.clear();
    st.line = line;
    let (mut timers, mut others) = (0, 0);
    let mut parent_version = None;
    for item in semicolon_items(items)
        .map(|i| trim_end(trim_start(i)))
        .filter(|i| !i.is_empty())
    {
        if let Some((tname, due)) = timer_item(item) {
            if tname != "none" {
                let kind = timer_kind(tname);
                refill(
                    &mut st.timers,
                    timers,
                    |t| {
                        t.kind = kind;
                        set(&mut t.name, tname);
                        t.due_s = due;
                    },
                    || Timer {
                        kind,
                        name: tname.to_string(),
                        due_s: due,
                    },
                );
                timers += 1;
            }
            continue;
        }
        match item {
            "newest" | "newest ISAKMP" | "newest IPSEC" => st.newest = true,
            "eroute owner" => st.eroute_owner = true,
            _ => {
                let parent = [
                    ("isakmp#", None),
                    ("IKE SA #", Some(IkeVersion::V2)),
                    ("ISAKMP SA #", Some(IkeVersion::V1)),
                ]
                .into_iter()
                .find_map(|(p, v)| item.strip_prefix(p).map(|n| (n, v)));
                match parent.and_then(|(n, v)| n.parse::<u64>().ok().map(|n| (n, v))) {
                    Some((0, _)) => {}
                    Some((n, v)) => {
                        st.parent_serial = Some(n);
                        parent_version = v;
                    }
                    None => {
                        refill(
                            &mut st.other_items,
                            others,
                            |o| set(o, item),
                            || item.to_string(),
                        );
                        others += 1;
                    }
                }
            }
        }
    }
    st.timers.truncate(timers);
    st.other_items.truncate(others);
    classify(st, parent_version);
    Some(())
}

/// Split the state part into (name, story, items).
///
/// Up to 5.3 it is `NAME (story); items`, where the story may contain
/// parentheses and commas but ends at the first `);`. From 5.4 there is no
/// name and the story ends at the first `;`.
fn state_part(s: &str) -> Option<(Option<&str>, &str, &str)> {
    if let Some((token, after)) = s.split_once(' ') {
        let is_name = !token.is_empty()
            && token
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if is_name && after.starts_with('(') {
            let body = &after[1..];
            let b = body.as_bytes();
            let story_end = memchr::memchr_iter(b')', b).find(|&i| b.get(i + 1) == Some(&b';'));
            if let Some(end) = story_end {
                return Some((Some(token), &body[..end], &body[end + 1..]));
            }
            if let Some(story) = body.strip_suffix(')') {
                return Some((Some(token), story, ""));
            }
        }
    }
    match s.split_once(';') {
        Some((story, items)) => Some((None, story.trim(), items)),
        None if !s.trim().is_empty() => Some((None, s.trim(), "")),
        None => None,
    }
}

/// Decide kind, IKE version and "established" from the name, the story
/// and the parent reference (docs/libreswan-format.md §6, §12).
fn classify(st: &mut State, parent_version: Option<IkeVersion>) {
    use IkeVersion::{V1, V2};
    use SaKind::{Child, Ike};
    let (kind, version, established) = match st.name.as_deref() {
        Some(name) => by_name(name),
        None => by_story(&st.story),
    };
    st.kind = kind;
    st.ike_version = parent_version.or(version);
    st.established = established;
    if st.parent_serial.is_some() {
        // A parent reference is printed only for established Child SAs;
        // this also catches the 3.x bug where the first Child SA wears
        // the parent's STATE_PARENT_I3/R2 name.
        st.kind = Some(Child);
        st.established = true;
    }
    if st.name.as_deref() == Some("STATE_PARENT_I3")
        || st.name.as_deref() == Some("STATE_PARENT_R2")
    {
        st.ike_version = Some(V2);
    }
    if st.kind.is_none() && st.ike_version == Some(V1) && st.story.contains("ISAKMP") {
        st.kind = Some(Ike);
    }
}

/// Kind, version and established from a state name (3.x – 5.3).
fn by_name(name: &str) -> (Option<SaKind>, Option<IkeVersion>, bool) {
    use IkeVersion::{V1, V2};
    use SaKind::{Child, Ike};
    let short = name.strip_prefix("STATE_").unwrap_or(name);
    let short = short.strip_prefix("V2_").unwrap_or(short);
    match short {
        "MAIN_I4" | "MAIN_R3" | "AGGR_I2" | "AGGR_R2" => (Some(Ike), Some(V1), true),
        s if s.starts_with("MAIN_") || s.starts_with("AGGR_") || s.starts_with("INFO") => {
            (Some(Ike), Some(V1), false)
        }
        s if s.starts_with("XAUTH_") || s.starts_with("MODE_CFG_") => (Some(Ike), Some(V1), true),
        "QUICK_I2" | "QUICK_R2" | "QUICK_R1" => (Some(Child), Some(V1), true),
        s if s.starts_with("QUICK_") => (Some(Child), Some(V1), false),
        "PARENT_I3" | "PARENT_R2" | "ESTABLISHED_IKE_SA" => (Some(Ike), Some(V2), true),
        "IPSEC_I" | "IPSEC_R" | "ESTABLISHED_CHILD_SA" => (Some(Child), Some(V2), true),
        s if s.starts_with("PARENT_")
            || s.starts_with("IKE_SA_INIT")
            || s.starts_with("IKE_INTERMEDIATE")
            || s.starts_with("IKE_SESSION_RESUME")
            || s.starts_with("IKE_AUTH_EAP")
            || s == "IKE_AUTH_I"
            || s.starts_with("REKEY_IKE")
            || s == "UNSECURED_R"
            || s == "IKESA_DEL"
            || s == "IKE_SA_DELETE"
            || s == "ZOMBIE" =>
        {
            (Some(Ike), Some(V2), false)
        }
        s if s.starts_with("CREATE_")
            || s.starts_with("NEW_CHILD")
            || s.starts_with("REKEY_CHILD")
            || s.starts_with("IKE_AUTH_CHILD")
            || s == "CHILDSA_DEL"
            || s == "CHILD_SA_DELETE" =>
        {
            (Some(Child), Some(V2), false)
        }
        _ => (None, None, false),
    }
}

/// Kind, version and established from the story alone (5.4+).
fn by_story(story: &str) -> (Option<SaKind>, Option<IkeVersion>, bool) {
    use IkeVersion::{V1, V2};
    use SaKind::{Child, Ike};
    if story.starts_with("STATE_") {
        // Some states print their own name as the story.
        return by_name(story);
    }
    match story {
        "established IKE SA" => (Some(Ike), Some(V2), true),
        "established Child SA" => (Some(Child), Some(V2), true),
        s if s.ends_with("ISAKMP SA established") || s == "IKE SA established" => {
            (Some(Ike), Some(V1), true)
        }
        s if s.ends_with("IPsec SA established") => (Some(Child), None, true),
        s if s.contains("Quick Mode") || s.contains("QI1") || s.contains("QR1") => {
            (Some(Child), Some(V1), false)
        }
        s if s.contains("Main Mode")
            || s.contains("Aggressive Mode")
            || s.contains("XAUTH")
            || s.contains("ModeCfg")
            || s.contains("MODE_CFG")
            || s.contains("Informational") =>
        {
            (Some(Ike), Some(V1), false)
        }
        s if s.contains("rekey IPsec SA")
            || s.contains("new IPsec SA")
            || s.contains("Child SA") =>
        {
            (Some(Child), Some(V2), false)
        }
        s if s.contains("IKE_SA_INIT")
            || s.contains("IKE_AUTH")
            || s.contains("IKE_INTERMEDIATE")
            || s.contains("IKE_SESSION_RESUME")
            || s.contains("IKE_FOLLOWUP_KE")
            || s.contains("rekey IKE SA")
            || s.contains("IKE SA")
            || s.contains("KE to finish")
            || s == "deleted state" =>
        {
            (Some(Ike), Some(V2), false)
        }
        _ => (None, None, false),
    }
}

/// Whether `token` is a SAID (`esp.c0ffee@1.2.3.4`, `tun:0@2001:db8::1`).
fn is_said(token: &str) -> bool {
    ["esp", "ah", "comp", "tun"].iter().any(|p| {
        token
            .strip_prefix(p)
            .is_some_and(|r| (r.starts_with('.') || r.starts_with(':')) && r.contains('@'))
    })
}

/// The SPI/traffic line: `"c"[1] peer used 3s ago; esp.x@a esp.y@b Traffic: ESPin=84B ...`.
fn spi_line(rest: &str, spi: &mut SpiLine) -> Option<()> {
    let suffix_end = |s: &str| {
        let mut pos: usize = 0;
        for tok in s.split(' ') {
            if is_said(tok) || tok == "used" || tok == "Traffic:" || tok.starts_with("ref=") {
                return pos.saturating_sub(1);
            }
            pos += tok.len() + 1;
        }
        s.len()
    };
    let after = after_conn_ref(rest, suffix_end)?;
    let (head, traffic) = TRAFFIC.split_once(after)?;
    spi.used_s_ago = None;
    let mut saids = 0;
    let mut tokens = words(head);
    while let Some(tok) = tokens.next() {
        if tok == "used" {
            let secs = tokens.next()?;
            spi.used_s_ago = secs.strip_suffix('s').and_then(|n| n.parse().ok());
            if tokens.next() != Some("ago;") {
                return None;
            }
        } else if is_said(tok) {
            let sep = tok.bytes().position(|c| c == b'.' || c == b':')?;
            let (spi_text, addr) = tok[sep + 1..].split_once('@')?;
            let proto = &tok[..sep];
            refill(
                &mut spi.saids,
                saids,
                |s| {
                    set(&mut s.proto, proto);
                    set(&mut s.spi, spi_text);
                    set(&mut s.addr, addr);
                },
                || Said {
                    proto: proto.to_string(),
                    spi: spi_text.to_string(),
                    addr: addr.to_string(),
                },
            );
            saids += 1;
        } else if tok.starts_with("ref=") || tok.starts_with("refhim=") {
            // KLIPS SAref numbers (3.x): not part of the model.
        } else {
            return None;
        }
    }
    let traffic = traffic.trim_start();
    static USERNAME: Word = Word::new("username=");
    let (counters, user) = match USERNAME.split_once(traffic) {
        Some((counters, user)) => (counters, Some(user.trim_end())),
        None => (traffic, None),
    };
    spi.saids.truncate(saids);
    set_opt(&mut spi.username, user);
    let mut counters_read = 0;
    for tok in words(counters) {
        let tok = trim_bangs(tok);
        let (name, value) = tok.split_once('=')?;
        if !name.bytes().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let bytes = humber(value);
        refill(
            &mut spi.counters,
            counters_read,
            |(n, b)| {
                set(n, name);
                *b = bytes;
            },
            || (name.to_string(), bytes),
        );
        counters_read += 1;
    }
    spi.counters.truncate(counters_read);
    Some(())
}

/// A `trafficstatus` line: `"c"[1] peer, type=ESP, add_time=..., inBytes=..., id='...'`.
///
/// Once the line is known to be a traffic line (conn ref, then `, type=` or
/// `, username=`), an odd field never loses the entry: losing it would
/// look like a deleted Child SA. The fields not understood are returned.
fn traffic(serial: u64, rest: &str, line: usize) -> Option<(Traffic, Vec<String>)> {
    let field_start = |s: &str| {
        [&TYPE_FIELD, &USERNAME_FIELD]
            .iter()
            .filter_map(|m| m.find(s))
            .min()
            .unwrap_or(s.len())
    };
    let (conn, after) = conn_ref(rest, field_start)?;
    if !(after.starts_with(", type=") || after.starts_with(", username=")) {
        return None;
    }
    let mut t = Traffic {
        serial,
        conn,
        sa_type: String::new(),
        add_time: None,
        in_bytes: None,
        out_bytes: None,
        max_bytes: None,
        id: None,
        username: None,
        leases: Vec::new(),
        line,
    };
    let mut problems = Vec::new();
    let mut s = after;
    if let Some(u) = s.strip_prefix(", username=") {
        match u.find(", type=") {
            Some(end) => {
                t.username = Some(u[..end].to_string());
                s = &u[end..];
            }
            None => {
                t.username = Some(u.to_string());
                problems.push("no `type=` after `username=`".to_string());
                s = "";
            }
        }
    }
    // The id is printed raw and may hold ", " and "'": cut it off first.
    let (fields, id_and_lease) = match s.find(", id='") {
        Some(i) => (&s[..i], Some(&s[i + ", id='".len()..])),
        None => (s, None),
    };
    let (fields, mut lease) = match (id_and_lease, fields.find(", lease=")) {
        (None, Some(i)) => (&fields[..i], Some(&fields[i + ", lease=".len()..])),
        _ => (fields, None),
    };
    if let Some(rest) = id_and_lease {
        let (id, l) = match rest.rfind("', lease=") {
            Some(i) => (&rest[..i], Some(&rest[i + "', lease=".len()..])),
            None => match rest.trim_end().strip_suffix('\'') {
                Some(id) => (id, None),
                None => {
                    problems.push("`id='` without its closing quote".to_string());
                    (rest, None)
                }
            },
        };
        t.id = Some(id.to_string());
        lease = l.or(lease);
    }
    if let Some(l) = lease {
        t.leases = l.trim().split(',').map(|x| x.trim().to_string()).collect();
    }
    for field in fields.split(", ").filter(|f| !f.is_empty()) {
        let Some((key, value)) = field.split_once('=') else {
            problems.push(format!("field `{field}` is not `key=value`"));
            continue;
        };
        let value = value.trim();
        let count = |problems: &mut Vec<String>| match value.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!("`{key}={value}` is not a byte count"));
                None
            }
        };
        match key {
            "type" => t.sa_type = value.to_string(),
            // 0 means unknown; 1234567890 is the test suite's sanitised time.
            "add_time" => {
                t.add_time = value
                    .parse::<u64>()
                    .ok()
                    .filter(|&v| v != 0 && v != 1_234_567_890)
            }
            "inBytes" => t.in_bytes = count(&mut problems),
            "outBytes" => t.out_bytes = count(&mut problems),
            "maxBytes" => t.max_bytes = Some(value.to_string()),
            _ => problems.push(format!("unknown field `{key}`")),
        }
    }
    if t.sa_type.is_empty() {
        problems.push("no `type=` field".to_string());
    }
    Some((t, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::TimerKind;

    fn st(line: &str) -> State {
        let (_, rest) = crate::status::lexical::strip_rc(line);
        let (rest, serial) = crate::status::lexical::serial_colon(rest).unwrap();
        let mut into = Scratch::default();
        match serial_line_into(serial, rest, 1, &mut into) {
            Some(ReadInto::State) => into.state,
            _ => panic!("not a state line: {line}"),
        }
    }

    #[test]
    fn lines_read_into_the_last_ones_buffers_are_read_as_into_new_ones() {
        // Longer lines before shorter ones, so that timers, items, SAIDs
        // and counters left over from the line before must go.
        let lines = [
            "#2: \"c\"[3] 192.0.2.9:500 STATE_QUICK_I2 (sent QI2); EVENT_SA_REPLACE in 20s; EVENT_SA_EXPIRE in 30s; newest IPSEC; eroute owner; isakmp#1; idle; nodpd;",
            "#2: \"c\"[3] 192.0.2.9 used 3s ago; esp.1@192.0.2.9 esp.2@192.0.2.1 tun.0@192.0.2.9 tun.0@192.0.2.1 Traffic: ESPin=84B ESPout=1KB! ESPmax=2^63B username=alice",
            "#4: \"d\":4500(tcp) established IKE SA; REKEY in 5s;",
            "#4: \"d\" esp.3@192.0.2.8 Traffic: ESPin=0B",
            "#5: \"e\":500 STATE_MAIN_I1 (sent MI1);",
            "#6: \"e\" Traffic: ",
            "#7: \"f\":500 junk without a story",
            "#8: pending Child SA for \"g\"[1] 192.0.2.7 replacing #2",
        ];
        let mut reused = Scratch::default();
        for line in lines {
            let (rest, serial) = crate::status::lexical::serial_colon(line).unwrap();
            let mut fresh = Scratch::default();
            let want = serial_line_into(serial, rest, 1, &mut fresh);
            let got = serial_line_into(serial, rest, 1, &mut reused);
            match (want, got) {
                (Some(ReadInto::State), Some(ReadInto::State)) => {
                    assert_eq!(reused.state, fresh.state, "{line}")
                }
                (Some(ReadInto::Spi), Some(ReadInto::Spi)) => {
                    assert_eq!(reused.spi, fresh.spi, "{line}")
                }
                (Some(ReadInto::Pending(a)), Some(ReadInto::Pending(b))) => assert_eq!(a, b),
                (None, None) => {}
                _ => panic!("read differently: {line}"),
            }
        }
    }

    #[test]
    fn port_after_unbracketed_ipv6_peer() {
        let s = st(
            "#3: \"east\"[2] 2001:db8:1:2::45:500 STATE_V2_ESTABLISHED_IKE_SA (established IKE SA); REKEY in 10s; newest; idle;",
        );
        assert_eq!(s.conn.peer.as_deref(), Some("2001:db8:1:2::45"));
        assert_eq!(s.port, Some(500));
        assert_eq!(s.kind, Some(SaKind::Ike));
    }

    #[test]
    fn tcp_port_is_marked() {
        let s = st("#1: \"c\":4500(tcp) established IKE SA; newest; idle;");
        assert!(s.tcp);
        assert_eq!(s.port, Some(4500));
        assert!(s.established);
    }

    #[test]
    fn story_with_parentheses_and_lastdpd() {
        let s = st(
            "#1: \"c\":500 STATE_MAIN_I4 (ISAKMP SA established); EVENT_SA_REPLACE in 20s; newest ISAKMP; lastdpd=-1s(seq in:0 out:0); idle;",
        );
        assert_eq!(s.story, "ISAKMP SA established");
        assert_eq!(s.other_items, vec!["lastdpd=-1s(seq in:0 out:0)", "idle"]);
        assert_eq!(s.due(TimerKind::Replace), Some(20));
        let s = st(
            "#7: \"c\":500 STATE_V2_PARENT_R1 (sent IKE_SA_INIT (or IKE_INTERMEDIATE) response); DISCARD in 9s; idle;",
        );
        assert_eq!(s.story, "sent IKE_SA_INIT (or IKE_INTERMEDIATE) response");
        assert!(!s.established);
    }

    #[test]
    fn trafficstatus_id_with_commas_quotes_and_lease_list() {
        let (t, problems) = traffic(
            2,
            "\"east\"[2] 2001:db8:1:2::45, type=ESP, add_time=1795857783, inBytes=188, outBytes=188, maxBytes=2^63B, id='C=CA, O=it's, CN=x', lease=192.3.1.0/32,2001:db8:0:3:1::/128",
            1,
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(t.id.as_deref(), Some("C=CA, O=it's, CN=x"));
        assert_eq!(t.leases, vec!["192.3.1.0/32", "2001:db8:0:3:1::/128"]);
        assert_eq!(t.add_time, Some(1795857783));
        assert_eq!(t.conn.peer.as_deref(), Some("2001:db8:1:2::45"));
    }
}
