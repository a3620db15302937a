//! The JSON of a snapshot (`swantrail parse`), byte for byte what
//! `serde_json::to_writer` makes of it, encoded record by record as the
//! parser reads them.
//!
//! A 50,000-tunnel `status` is a snapshot of about 180 MB and 80 MB of
//! JSON; holding the snapshot only to serialise it cost more than the
//! parse (its pages, then serde's generic walk). Here each connection, SA
//! and trafficstatus line is encoded as soon as the parser is done with
//! it, into one buffer per array, and the snapshot's small fields (kinds,
//! completeness, diagnostics, totals), known only at the end, are written
//! around them. The rare line that changes a record already encoded (an
//! SPI line under an older SA, a connection entry whose lines came apart)
//! has that record decoded back and re-encoded at the end, so the bytes are
//! always those of the whole snapshot. It must never write anything
//! serde_json would not, and never hold a record longer than its lines
//! take to read.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rustc_hash::FxHashMap;

use crate::snapshot::{ConnRef, Connection, IkeVersion, SaKind, Snapshot, SpiLine, State, Traffic};

/// The connection, SA and trafficstatus records of one dump, encoded as
/// they were read; [`RecordsJson::write`] writes them inside the rest of
/// the snapshot.
#[derive(Debug, Default)]
pub struct RecordsJson {
    connections: Encoded,
    /// The connection entry whose lines are being read, by index: its
    /// lines come together, and it is encoded when another entry's comes.
    current: Option<(usize, Connection)>,
    /// How many connection entries there are, encoded or not.
    connection_count: usize,
    /// Connection entries changed after they were encoded, by index.
    patched_connections: BTreeMap<usize, Connection>,
    states: Encoded,
    /// The newest state line, open to the SPI and pending lines after it.
    held: Option<State>,
    /// The newest state line of each serial, by index.
    latest_state: FxHashMap<u64, usize>,
    /// States changed after they were encoded (by an SPI or pending line
    /// under an older state), by index.
    patched_states: BTreeMap<usize, State>,
    traffic: Encoded,
    /// The serial of each trafficstatus line, for [`RecordsJson::serials`].
    traffic_serials: Vec<u64>,
}

/// One array's records as JSON, comma-separated, in chunks of about
/// [`CHUNK_BYTES`] (a record never spans two), with where each starts.
///
/// Chunks, not one buffer: a buffer grown by doubling would hold up to
/// twice the JSON, and both copies while it grows.
#[derive(Debug, Default)]
struct Encoded {
    chunks: Vec<Vec<u8>>,
    /// Where each record starts: its chunk and its offset in it.
    starts: Vec<(u32, u32)>,
}

/// The size a chunk of [`Encoded`] is closed at.
const CHUNK_BYTES: usize = 1 << 20;

impl Encoded {
    /// Append the next record.
    fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.chunks.last().is_none_or(|c| c.len() >= CHUNK_BYTES) {
            self.chunks
                .push(Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 8));
        }
        let index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[index];
        if !self.starts.is_empty() {
            chunk.push(b',');
        }
        self.starts.push((index as u32, chunk.len() as u32));
        encode(chunk);
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Where record `i` is: its chunk and its byte range there.
    fn place(&self, i: usize) -> Option<(usize, std::ops::Range<usize>)> {
        let &(chunk, start) = self.starts.get(i)?;
        let (chunk, start) = (chunk as usize, start as usize);
        let end = match self.starts.get(i + 1) {
            Some(&(next_chunk, next)) if next_chunk as usize == chunk => next as usize - 1,
            _ => self.chunks[chunk].len(),
        };
        Some((chunk, start..end))
    }

    /// The JSON of record `i`.
    fn record(&self, i: usize) -> &[u8] {
        self.place(i)
            .map_or(&[], |(chunk, range)| &self.chunks[chunk][range])
    }

    /// The array, with the records in `patched` encoded anew in place of
    /// their first encoding.
    fn write<T>(
        &self,
        out: &mut impl Write,
        patched: &BTreeMap<usize, T>,
        encode: impl Fn(&mut Vec<u8>, &T),
    ) -> io::Result<()> {
        out.write_all(b"[")?;
        // Written up to `from` of chunk `at`.
        let (mut at, mut from) = (0, 0);
        let mut scratch = Vec::new();
        for (&i, record) in patched {
            let Some((chunk, range)) = self.place(i) else {
                continue;
            };
            while at < chunk {
                out.write_all(&self.chunks[at][from..])?;
                (at, from) = (at + 1, 0);
            }
            out.write_all(&self.chunks[chunk][from..range.start])?;
            scratch.clear();
            encode(&mut scratch, record);
            out.write_all(&scratch)?;
            from = range.end;
        }
        for chunk in self.chunks.get(at..).unwrap_or_default() {
            out.write_all(&chunk[from..])?;
            from = 0;
        }
        out.write_all(b"]")
    }
}

impl RecordsJson {
    /// Records of a dump not read yet.
    pub fn new() -> RecordsJson {
        RecordsJson::default()
    }

    /// A new connection entry, and its index.
    pub(crate) fn new_connection(&mut self, c: Connection) -> usize {
        let i = self.connection_count;
        self.connection_count += 1;
        self.close_connection();
        self.current = Some((i, c));
        i
    }

    /// Connection entry `i`, to read one more of its lines into.
    pub(crate) fn connection_mut(&mut self, i: usize) -> &mut Connection {
        if self.current.as_ref().is_none_or(|(c, _)| *c != i) {
            self.close_connection();
            let revived = match self.patched_connections.remove(&i) {
                Some(c) => c,
                None => decode(self.connections.record(i)).unwrap_or_default(),
            };
            self.current = Some((i, revived));
        }
        match &mut self.current {
            Some((_, c)) => c,
            None => unreachable!("set just above"),
        }
    }

    /// Encode the current connection entry: appended the first time,
    /// kept aside to be encoded again at the end after that.
    fn close_connection(&mut self) {
        if let Some((i, c)) = self.current.take() {
            if i == self.connections.len() {
                self.connections.push(|out| encode_connection(out, &c));
            } else {
                self.patched_connections.insert(i, c);
            }
        }
    }

    /// The next state line, exchanged for the one before (encoded now,
    /// and given back for its buffers to be filled again).
    pub(crate) fn state(&mut self, st: &mut State) {
        let index = self.states.len() + usize::from(self.held.is_some());
        self.latest_state.insert(st.serial, index);
        match &mut self.held {
            Some(held) => {
                let before = &*held;
                self.states.push(|out| encode_state(out, before));
                std::mem::swap(held, st);
            }
            None => self.held = Some(st.clone()),
        }
    }

    fn close_state(&mut self) {
        if let Some(st) = self.held.take() {
            self.states.push(|out| encode_state(out, &st));
        }
    }

    /// The newest state line of `serial`, for the SPI or pending line
    /// that follows it.
    pub(crate) fn state_mut(&mut self, serial: u64) -> Option<&mut State> {
        if self.held.as_ref().is_some_and(|st| st.serial == serial) {
            return self.held.as_mut();
        }
        let i = *self.latest_state.get(&serial)?;
        if !self.patched_states.contains_key(&i) {
            let st = decode::<State>(self.states.record(i))?;
            self.patched_states.insert(i, st);
        }
        self.patched_states.get_mut(&i)
    }

    /// The next trafficstatus line.
    pub(crate) fn traffic(&mut self, t: &Traffic) {
        self.traffic_serials.push(t.serial);
        self.traffic.push(|out| encode_traffic(out, t));
    }

    /// Every serial of the state and trafficstatus lines so far.
    pub(crate) fn serials(&self) -> std::collections::BTreeSet<u64> {
        self.latest_state
            .keys()
            .chain(&self.traffic_serials)
            .copied()
            .collect()
    }

    /// The whole snapshot's JSON: `rest` (the snapshot the parser
    /// finished with, which holds no connection, SA or trafficstatus line)
    /// with these records in its arrays, as `serde_json::to_writer` writes
    /// the snapshot that holds them.
    pub fn write(mut self, rest: &Snapshot, out: &mut impl Write) -> io::Result<()> {
        self.close_connection();
        self.close_state();
        write_head(rest, out)?;
        out.write_all(b",\"connections\":")?;
        self.connections
            .write(out, &self.patched_connections, encode_connection)?;
        out.write_all(b",\"totals\":")?;
        serde_json::to_writer(&mut *out, &rest.totals)?;
        out.write_all(b",\"states\":")?;
        self.states.write(out, &self.patched_states, encode_state)?;
        out.write_all(b",\"traffic\":")?;
        self.traffic
            .write(out, &BTreeMap::<usize, Traffic>::new(), encode_traffic)?;
        write_tail(rest, out)
    }
}

/// A record encoded here, read back (to change it after its encoding).
fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Option<T> {
    serde_json::from_slice(json).ok()
}

/// The whole of `snapshot` as `serde_json::to_writer` writes it, records
/// encoded here: what [`RecordsJson::write`] writes when the parser
/// streamed the records, for a snapshot held whole.
pub fn write_snapshot(snapshot: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    write_head(snapshot, out)?;
    let array = |out: &mut Vec<u8>, n: usize, each: &dyn Fn(&mut Vec<u8>, usize)| {
        out.push(b'[');
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            each(out, i);
        }
        out.push(b']');
    };
    let mut buf = Vec::new();
    buf.extend_from_slice(b",\"connections\":");
    let c = &snapshot.connections;
    array(&mut buf, c.len(), &|out, i| encode_connection(out, &c[i]));
    out.write_all(&buf)?;
    out.write_all(b",\"totals\":")?;
    serde_json::to_writer(&mut *out, &snapshot.totals)?;
    buf.clear();
    buf.extend_from_slice(b",\"states\":");
    let s = &snapshot.states;
    array(&mut buf, s.len(), &|out, i| encode_state(out, &s[i]));
    buf.extend_from_slice(b",\"traffic\":");
    let t = &snapshot.traffic;
    array(&mut buf, t.len(), &|out, i| encode_traffic(out, &t[i]));
    out.write_all(&buf)?;
    write_tail(snapshot, out)
}

/// `{` and the members before `connections`, as serde writes them.
fn write_head(s: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"{")?;
    member(out, "", "taken_at", &s.taken_at)?;
    if let Some(ms) = s.taken_at_ms {
        member(out, ",", "taken_at_ms", &ms)?;
    }
    member(out, ",", "kinds", &s.kinds)?;
    member(out, ",", "epoch", &s.epoch)?;
    member(out, ",", "prefixed", &s.prefixed)?;
    if let Some(version) = &s.pluto_version {
        member(out, ",", "pluto_version", version)?;
    }
    member(out, ",", "incomplete", &s.incomplete)
}

/// The members after `traffic`, and `}`.
fn write_tail(s: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    member(out, ",", "shunts", &s.shunts)?;
    member(out, ",", "global", &s.global)?;
    member(out, ",", "diagnostics", &s.diagnostics)?;
    if s.diagnostics_omitted != 0 {
        member(out, ",", "diagnostics_omitted", &s.diagnostics_omitted)?;
    }
    out.write_all(b"}")
}

/// One member as serde writes it: `sep`, the key (this module's own
/// literal, which needs no escaping), `:` and the value.
fn member(
    out: &mut impl Write,
    sep: &str,
    key: &str,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    for piece in [sep, "\"", key, "\":"] {
        out.write_all(piece.as_bytes())?;
    }
    Ok(serde_json::to_writer(&mut *out, value)?)
}

/// A JSON object being written: keys in the order given, commas between
/// members. Keys are this module's own literals, which need no escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        push_str(self.key(key), value);
    }

    /// A string, or `null`.
    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        let out = self.key(key);
        match value {
            Some(v) => push_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn int(&mut self, key: &str, value: impl itoa::Integer) {
        push_int(self.key(key), value);
    }

    /// An integer, or `null`.
    fn opt_int(&mut self, key: &str, value: Option<impl itoa::Integer>) {
        let out = self.key(key);
        match value {
            Some(v) => push_int(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A value that is a fixed word (an enum's name), or `null`.
    fn opt_word(&mut self, key: &str, value: Option<&str>) {
        let out = self.key(key);
        match value {
            Some(w) => {
                out.push(b'"');
                out.extend_from_slice(w.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }

    fn array<T>(&mut self, key: &str, items: &[T], each: impl Fn(&mut Vec<u8>, &T)) {
        let out = self.key(key);
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            each(out, item);
        }
        out.push(b']');
    }
}

fn push_int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` as a JSON string, escaped exactly as serde_json does: `"` and
/// `\` with a backslash, `\b \f \n \r \t` by name, every other control
/// character below U+0020 as `\u00xx` (lower-case hex), and everything
/// else (DEL, any non-ASCII) as it is.
fn push_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.push(b'"');
    // Nearly every string pluto prints needs no escape: told in one pass
    // the compiler vectorises, and copied whole.
    let plain = bytes.iter().fold(true, |plain, &b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
    } else {
        push_escaped(out, bytes);
    }
    out.push(b'"');
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn ike_version(v: Option<IkeVersion>) -> Option<&'static str> {
    v.map(|v| match v {
        IkeVersion::V1 => "1",
        IkeVersion::V2 => "2",
    })
}

fn sa_kind(k: Option<SaKind>) -> Option<&'static str> {
    k.map(|k| match k {
        SaKind::Ike => "ike",
        SaKind::Child => "child",
    })
}

fn encode_conn_ref(out: &mut Vec<u8>, c: &ConnRef) {
    let mut o = Object::open(out);
    o.str("name", &c.name);
    o.array("instances", &c.instances, |out, &n| push_int(out, n));
    if let Some(peer) = &c.peer {
        o.str("peer", peer);
    }
    o.close();
}

fn encode_connection(out: &mut Vec<u8>, c: &Connection) {
    let mut o = Object::open(out);
    encode_conn_ref(o.key("conn"), &c.conn);
    o.opt_str("topology", c.topology.as_deref());
    o.opt_str("local_subnet", c.local_subnet.as_deref());
    o.opt_str("local_host", c.local_host.as_deref());
    o.opt_str("remote_host", c.remote_host.as_deref());
    o.opt_str("remote_subnet", c.remote_subnet.as_deref());
    o.opt_str("routing", c.routing.as_deref());
    o.opt_int("newest_ike", c.newest_ike);
    o.opt_int("newest_child", c.newest_child);
    o.opt_word("ike_version", ike_version(c.ike_version));
    o.opt_str("ike_algorithm", c.ike_algorithm.as_deref());
    o.opt_str("child_algorithm", c.child_algorithm.as_deref());
    o.opt_int("conn_serial", c.conn_serial);
    o.close();
}

fn encode_state(out: &mut Vec<u8>, st: &State) {
    let mut o = Object::open(out);
    o.int("serial", st.serial);
    encode_conn_ref(o.key("conn"), &st.conn);
    o.opt_int("port", st.port);
    o.bool("tcp", st.tcp);
    o.opt_word("kind", sa_kind(st.kind));
    o.opt_word("ike_version", ike_version(st.ike_version));
    o.opt_str("name", st.name.as_deref());
    o.str("story", &st.story);
    o.bool("established", st.established);
    o.array("timers", &st.timers, |out, t| {
        let mut o = Object::open(out);
        o.opt_word("kind", Some(t.kind.name()));
        o.str("name", &t.name);
        o.opt_int("due_s", t.due_s);
        o.close();
    });
    o.bool("newest", st.newest);
    o.bool("eroute_owner", st.eroute_owner);
    o.opt_int("parent_serial", st.parent_serial);
    let out = o.key("traffic");
    match &st.spi_line {
        Some(spi) => encode_spi_line(out, spi),
        None => out.extend_from_slice(b"null"),
    }
    o.array("pending", &st.pending, |out, p| {
        let mut o = Object::open(out);
        encode_conn_ref(o.key("conn"), &p.conn);
        o.opt_int("replacing", p.replacing);
        o.close();
    });
    o.array("other_items", &st.other_items, |out, s| push_str(out, s));
    o.int("line", st.line);
    o.close();
}

fn encode_spi_line(out: &mut Vec<u8>, spi: &SpiLine) {
    let mut o = Object::open(out);
    o.array("saids", &spi.saids, |out, s| {
        let mut o = Object::open(out);
        o.str("proto", &s.proto);
        o.str("spi", &s.spi);
        o.str("addr", &s.addr);
        o.close();
    });
    o.opt_int("used_s_ago", spi.used_s_ago);
    o.array("counters", &spi.counters, |out, (name, bytes)| {
        out.push(b'[');
        push_str(out, name);
        out.push(b',');
        match bytes {
            Some(n) => push_int(out, *n),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b']');
    });
    o.opt_str("username", spi.username.as_deref());
    o.close();
}

fn encode_traffic(out: &mut Vec<u8>, t: &Traffic) {
    let mut o = Object::open(out);
    o.int("serial", t.serial);
    encode_conn_ref(o.key("conn"), &t.conn);
    o.str("sa_type", &t.sa_type);
    o.opt_int("add_time", t.add_time);
    o.opt_int("in_bytes", t.in_bytes);
    o.opt_int("out_bytes", t.out_bytes);
    o.opt_str("max_bytes", t.max_bytes.as_deref());
    o.opt_str("id", t.id.as_deref());
    o.opt_str("username", t.username.as_deref());
    o.array("leases", &t.leases, |out, s| push_str(out, s));
    o.int("line", t.line);
    o.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        write_snapshot(snapshot, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "quote\" back\\slash",
            "\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}",
            "é \u{2028} 😀",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn a_parsed_fixture_is_written_as_serde_json_writes_it() {
        let text = include_str!("../../../tests/fixtures/lab-4.10/status.txt");
        let snapshot = crate::parse(text);
        assert!(!snapshot.states.is_empty());
        assert_eq!(ours(&snapshot), serde_json::to_string(&snapshot).unwrap());
    }
}
