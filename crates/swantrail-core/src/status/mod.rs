//! The parser: libreswan status text of any dialect into a [`Snapshot`].
//!
//! It reads `status`, `trafficstatus`, `showstates`, `briefstatus`,
//! `connectionstatus`, `shuntstatus` and `globalstatus` output from 3.20 to
//! 5.4+, prefixed or not, in any mix, one line at a time. It must never
//! panic and never reject a whole dump for one odd line: a line it does not
//! recognise becomes a [`Diagnostic`] with its line number (the first
//! [`crate::snapshot::MAX_DIAGNOSTICS`] of them; the rest are counted, so
//! that no input makes the snapshot grow without bound). A dump that
//! ends too early is marked incomplete so the tracker never diffs it.

mod connections;
mod lexical;
mod states;

use crate::listing::ListingBuilder;
use crate::snapshot_json::RecordsJson;
use rustc_hash::FxHashMap;

use crate::snapshot::{
    ConnRef, Connection, Diagnostic, FormatEpoch, OutputKind, Pending, SaKind, Shunt, Snapshot,
    SpiLine, State,
};

use self::lexical::{Word, excerpt, serial_colon, strip_rc};
use self::states::{ReadInto, Scratch, blank_state, serial_line_into};

/// The longest line the parser reads. libreswan prints none longer than
/// its log buffer (a few KiB with every algorithm and selector listed), so
/// a longer line is not status output: it becomes a diagnostic saying how
/// long it was, and nothing of it is stored but a short excerpt.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parse one dump. Never panics; unrecognised lines become diagnostics.
///
/// An empty input is a valid snapshot with no kinds; use [`parse_as`] when
/// the caller knows which command produced it, because an empty
/// `trafficstatus` means "no tunnels" while an empty file means nothing.
pub fn parse(input: &str) -> Snapshot {
    let mut feed = LineFeed::new();
    feed.text(input);
    feed.finish()
}

/// Parse the output of a known command: like [`parse`], but an output
/// with nothing that identifies it (an empty `trafficstatus`, say) is
/// recorded as `kind`.
///
/// An empty answer is only an answer where the command can give one:
/// `trafficstatus` and `showstates` print nothing when there is nothing to
/// list, but `status`, `briefstatus` and `globalstatus` always print
/// something on a running pluto. Empty output of those is a writer that
/// has not written yet (or a command that failed quietly), so it is marked
/// incomplete: diffed, it would report every tunnel down.
pub fn parse_as(input: &str, kind: OutputKind) -> Snapshot {
    let mut feed = LineFeed::new();
    feed.text(input);
    feed.finish_as(kind)
}

/// A dump read line by line as it arrives, so that a source never holds
/// the whole text next to the snapshot it becomes.
///
/// [`parse`] is this fed one whole text; a feed given the same bytes in any
/// split gives the same snapshot. The caller splits the input at `\n` and
/// hands over each line as it completes; what is left without a final
/// newline when the input ends goes to [`LineFeed::cut_short`], and is what
/// makes a truncated dump incomplete. It never sees bytes, only text: the
/// caller (in swantrail, `input::DumpFeed`) vets encoding and size.
#[derive(Default)]
pub struct LineFeed {
    parser: LineParser,
    number: usize,
    /// Every line so far holds only whitespace (for [`parse_as`]).
    not_blank: bool,
    /// The input ended inside a line.
    cut_short: bool,
}

impl LineFeed {
    /// A feed that has read nothing yet.
    pub fn new() -> LineFeed {
        LineFeed::default()
    }

    /// One line of the input, without its `\n` (a `\r` before it is dropped).
    pub fn line(&mut self, raw: &str) {
        if raw.len() > MAX_LINE_BYTES {
            let cut = (0..=MAX_LINE_BYTES)
                .rev()
                .find(|&i| raw.is_char_boundary(i))
                .unwrap_or(0);
            self.overlong(&raw[..cut], raw.len() as u64, false);
            return;
        }
        self.number += 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if !self.not_blank {
            self.not_blank = !raw.trim().is_empty();
        }
        self.parser.line(self.number, raw);
    }

    /// The end of an input that stopped inside a line: `raw` is that last,
    /// unterminated piece (nothing happens when it is empty).
    pub fn cut_short(&mut self, raw: &str) {
        if !raw.is_empty() {
            self.line(raw);
            self.cut_short = true;
        }
    }

    /// A line longer than [`MAX_LINE_BYTES`], of which only `start` was
    /// read (a reader that streams need not hold the rest): a diagnostic, and, if it is an SA's line, that SA's
    /// state unknown. `cut_short`: the input ended inside it.
    pub fn overlong(&mut self, start: &str, length: u64, cut_short: bool) {
        self.number += 1;
        if !self.not_blank {
            self.not_blank = !start.trim().is_empty();
        }
        self.parser.overlong(self.number, start, length);
        self.cut_short |= cut_short;
    }

    /// A whole text, or a run of whole lines followed by a piece that may
    /// be cut short (the last piece is taken as the end of the input).
    pub fn text(&mut self, input: &str) {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', input.as_bytes()) {
            self.line(&input[start..end]);
            start = end + 1;
        }
        self.cut_short(&input[start..]);
    }

    /// A feed that hands every SA and connection record to `builder` as
    /// it reads it, instead of keeping it: the snapshot it finishes with
    /// ([`LineFeed::finish_streamed`]) holds everything else (kinds,
    /// completeness, diagnostics, totals), and no SA, trafficstatus line
    /// or connection. A daemon polling a big gateway never holds the
    /// whole snapshot; the listing it builds is what the tracker reads.
    pub fn streaming(builder: ListingBuilder) -> LineFeed {
        LineFeed::to(Records::Listing(Box::new(Stream {
            mark: builder.mark(),
            builder,
            current: None,
        })))
    }

    /// A feed that encodes every SA and connection record as JSON as it
    /// reads it, instead of keeping it: what `swantrail parse` prints,
    /// without the whole snapshot held to print it. The snapshot it
    /// finishes with ([`LineFeed::finish_json`]) holds everything else,
    /// which [`RecordsJson::write`] writes around the records.
    pub fn encoding() -> LineFeed {
        LineFeed::to(Records::Json(Box::default()))
    }

    fn to(records: Records) -> LineFeed {
        LineFeed {
            parser: LineParser {
                records,
                ..LineParser::default()
            },
            ..LineFeed::default()
        }
    }

    /// The snapshot of everything fed, as [`parse`] gives it.
    pub fn finish(self) -> Snapshot {
        self.finish_streamed(None).0
    }

    /// The snapshot of everything fed, as [`parse_as`] gives it.
    pub fn finish_as(self, kind: OutputKind) -> Snapshot {
        self.finish_streamed(Some(kind)).0
    }

    /// The snapshot of everything fed (as [`LineFeed::finish_as`] when a
    /// kind is given), with the builder of a streaming feed
    /// ([`LineFeed::streaming`]), which holds its records.
    pub fn finish_streamed(self, kind: Option<OutputKind>) -> (Snapshot, Option<ListingBuilder>) {
        let (snap, records) = self.finish_records(kind);
        let builder = match records {
            Records::Listing(stream) => Some(stream.builder),
            _ => None,
        };
        (snap, builder)
    }

    /// The snapshot of everything fed (as [`LineFeed::finish_as`] when a
    /// kind is given), with the records of an encoding feed
    /// ([`LineFeed::encoding`]) as JSON.
    pub fn finish_json(self, kind: Option<OutputKind>) -> (Snapshot, Option<RecordsJson>) {
        let (snap, records) = self.finish_records(kind);
        let json = match records {
            Records::Json(json) => Some(*json),
            _ => None,
        };
        (snap, json)
    }

    fn finish_records(self, kind: Option<OutputKind>) -> (Snapshot, Records) {
        let blank = !self.not_blank;
        let (mut snap, records) = self.parser.finish(self.cut_short);
        if let Some(kind) = kind {
            if snap.kinds.is_empty() && snap.is_complete() {
                if never_empty(kind) && blank {
                    snap.incomplete = Some(format!(
                        "the output is empty, and `{}` always prints something on a running pluto",
                        kind.word()
                    ));
                } else {
                    snap.kinds.push(kind);
                }
            }
        }
        (snap, records)
    }
}

/// Where the parser's connection, SA and trafficstatus records go.
#[derive(Default)]
enum Records {
    /// Into the snapshot ([`parse`]).
    #[default]
    Kept,
    /// Into a listing ([`LineFeed::streaming`]).
    Listing(Box<Stream>),
    /// Encoded as JSON ([`LineFeed::encoding`]).
    Json(Box<RecordsJson>),
}

/// Where a streaming feed's records go ([`LineFeed::streaming`]).
#[derive(Debug)]
struct Stream {
    builder: ListingBuilder,
    /// What the builder held before this feed (an earlier command's
    /// records), for the serials of this one.
    mark: (usize, usize),
    /// The connection entry whose lines are being read, by its index in
    /// the builder: its lines come together, and it goes to the builder
    /// when another entry's line comes.
    current: Option<(usize, Connection)>,
}

/// Whether a running pluto always prints something for this command.
fn never_empty(kind: OutputKind) -> bool {
    matches!(
        kind,
        OutputKind::Status | OutputKind::BriefStatus | OutputKind::GlobalStatus
    )
}

/// Where in a `status` dump the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Section {
    /// Nothing that places us yet.
    #[default]
    Start,
    /// The configuration chatter before `Connection list:`.
    Preamble,
    /// Inside or after the connection list.
    Body,
    /// After `Bare Shunt list:`.
    Shunts,
}

/// Dialect evidence gathered while reading, turned into an epoch at the end.
#[derive(Debug, Default)]
struct Evidence {
    import_item: bool,
    v3_names: bool,
    long_events: bool,
    rekey_expire_events: bool,
    short_events: bool,
    old_newest: bool,
    new_items: bool,
    v2_established_names: bool,
    short_v2_names: bool,
    nameless_states: bool,
    max_bytes: bool,
    conn_serial: bool,
    routed_total: bool,
}

impl Evidence {
    fn epoch(&self, prefixed: bool, unprefixed_lines: bool) -> Option<FormatEpoch> {
        use FormatEpoch::*;
        if unprefixed_lines && !prefixed {
            return Some(if self.nameless_states {
                E8
            } else if self.short_v2_names || self.routed_total {
                E7
            } else {
                E6
            });
        }
        if !prefixed {
            return None;
        }
        Some(if self.new_items || self.max_bytes {
            E5
        } else if self.short_events {
            E4
        } else if self.v2_established_names || self.conn_serial {
            E3
        } else if self.import_item {
            E1
        } else if self.rekey_expire_events || self.v3_names || self.long_events || self.old_newest {
            // 3.26/3.27 look the same once `import:` is gone; 3.28+ is
            // far more common in the field.
            E2
        } else {
            return None;
        })
    }
}

/// One pass over the lines of a dump.
#[derive(Default)]
struct LineParser {
    snap: Snapshot,
    /// Where records go: into `snap`, unless the feed streams them.
    records: Records,
    /// What each state and SPI line is read into (boxed: it is taken
    /// and put back for every line).
    scratch: Option<Box<Scratch>>,
    section: Section,
    evidence: Evidence,
    conn_index: FxHashMap<(String, Vec<u64>), usize>,
    /// The head (`"name"[1]:`, up to the colon) of the last
    /// connection-list line and its connection's index: the lines of one
    /// connection come together, so most lines find theirs by comparing
    /// their first bytes, without reading a name or building a key.
    last_conn: Option<(String, usize)>,
    unprefixed_lines: bool,
    saw_status: bool,
    saw_conn_header: bool,
    saw_conn_lines: bool,
    saw_totals: bool,
    saw_shunt_header: bool,
    saw_states: bool,
    saw_traffic: bool,
    saw_brief: bool,
    last_was_blank: bool,
    not_running: Option<String>,
    /// The first `#` line without a readable serial.
    unread_no_serial: Option<usize>,
    /// The first line of each SA whose `#N:` line could not be read, while
    /// fewer than [`MAX_UNREAD_SERIALS`] are.
    unread_serials: FxHashMap<u64, usize>,
    /// Where more SAs than that had a line not understood.
    too_many_unread: Option<usize>,
}

/// How many SAs with a line not understood are remembered, to be told at
/// the end from those the dump shows anyway. Past this (half of it still
/// unknown when it fills), the dump is incomplete: so many unreadable SAs
/// are a format this parser does not know, and a junk writer numbering its
/// lines `#1:`, `#2:`... must not grow this list without bound.
const MAX_UNREAD_SERIALS: usize = 10_000;

/// Lines of the configuration chatter that can open a `status` dump.
const PREAMBLE_STARTS: &[&str] = &[
    "using kernel interface",
    "interface ",
    "fips mode",
    "SElinux",
    "seccomp",
    "config setup options:",
];

impl LineParser {
    fn diag(&mut self, line: usize, reason: &str, text: &str) {
        self.snap.note_diagnostic(|| Diagnostic {
            line,
            reason: reason.to_string(),
            text: excerpt(text, 200),
        });
    }

    fn line(&mut self, number: usize, raw: &str) {
        let (code, text) = strip_rc(raw);
        // Nine lines in ten of a gateway's dump are connection-list or SA
        // lines: told by their first byte, they skip every test below,
        // none of which such a line can pass.
        match text.as_bytes().first() {
            Some(b'#') => {
                self.note_prefix(code);
                self.serial_line(number, text, raw);
                return;
            }
            Some(b'"') => {
                self.note_prefix(code);
                self.connection_line(number, text);
                return;
            }
            _ => {}
        }
        if text.trim().is_empty() {
            self.last_was_blank = true;
            return;
        }
        if text.starts_with("| ") || text == "|" {
            self.last_was_blank = false;
            return; // pluto debug output interleaved with whack's
        }
        self.note_prefix(code);
        // whack's own complaint (three wordings, none of them a connection
        // or SA line: a connection may be named anything).
        static NOT_RUNNING: Word = Word::new("Pluto is not running");
        if NOT_RUNNING.is_in(text) {
            self.not_running = Some(excerpt(text, 200));
            return;
        }
        if text.starts_with("no such connection or aliased connection named")
            || text.starts_with("no connection or alias named")
        {
            return; // a name query that matched nothing: a valid, empty answer
        }
        if self.structure_line(text) {
            return;
        }
        if self.section == Section::Preamble {
            // Configuration chatter: no stable grammar, nothing to track
            // but the version (`pluto_version=4.10, pluto_vendorid=...`).
            if let Some((_, rest)) = text.split_once("pluto_version=") {
                let version = rest.split([',', ' ']).next().unwrap_or("");
                if !version.is_empty() {
                    self.snap.pluto_version = Some(version.to_string());
                }
            }
            return;
        }
        if self.section == Section::Start && PREAMBLE_STARTS.iter().any(|p| text.starts_with(p)) {
            self.section = Section::Preamble;
            self.saw_status = true;
            return;
        }
        if is_shunt(text) {
            if self.snap.shunts.len() < MAX_SHUNTS {
                self.snap.shunts.push(Shunt {
                    text: text.to_string(),
                });
            } else {
                self.diag(number, "shunt line past the first ones, not kept", raw);
            }
            return;
        }
        if code.is_none() {
            if let Some((k, v)) = global_pair(text) {
                if self.snap.global.len() < MAX_GLOBAL_PAIRS {
                    self.snap.global.push((k.to_string(), v.to_string()));
                } else {
                    self.diag(
                        number,
                        "globalstatus line past the first ones, not kept",
                        raw,
                    );
                }
                return;
            }
        }
        if text.contains(" <==> ") && text.contains('\t') {
            self.saw_conn_lines = true; // briefconnectionstatus: nothing a tracker needs
            return;
        }
        self.diag(number, "unrecognised line", raw);
    }

    /// A line that is neither blank nor debug output: whether it carried
    /// the RC prefix is dialect evidence.
    fn note_prefix(&mut self, code: Option<u16>) {
        self.last_was_blank = false;
        match code {
            Some(_) => self.snap.prefixed = true,
            None => self.unprefixed_lines = true,
        }
    }

    /// A line too long to be libreswan's, of which `start` was read.
    fn overlong(&mut self, number: usize, start: &str, length: u64) {
        let (_, text) = strip_rc(start);
        if text.starts_with('#') {
            self.unread(number, serial_colon(text).ok().map(|(_, serial)| serial));
        }
        self.diag(
            number,
            &format!("a line of {length} bytes, longer than libreswan prints; skipped"),
            start,
        );
    }

    /// An SA's line (`#N: ...`, or `#` without a readable serial) that
    /// could not be read: that SA's state is unknown unless the dump shows
    /// it elsewhere.
    fn unread(&mut self, number: usize, serial: Option<u64>) {
        let Some(serial) = serial else {
            self.unread_no_serial.get_or_insert(number);
            return;
        };
        if self.too_many_unread.is_some() || self.unread_serials.contains_key(&serial) {
            return;
        }
        if self.unread_serials.len() >= MAX_UNREAD_SERIALS {
            let known = self.serials();
            self.unread_serials.retain(|s, _| !known.contains(s));
            if self.unread_serials.len() >= MAX_UNREAD_SERIALS / 2 {
                self.too_many_unread = Some(number);
                self.unread_serials = FxHashMap::default();
                return;
            }
        }
        self.unread_serials.insert(serial, number);
    }

    /// Section headers, totals and brief-status lines.
    fn structure_line(&mut self, text: &str) -> bool {
        let t = &mut self.snap.totals;
        if text.starts_with("Connection list:") {
            self.saw_conn_header = true;
            self.section = Section::Body;
        } else if connections::total_line(text, t) {
            self.evidence.routed_total |= t.routed.is_some();
            self.saw_totals = true;
            self.section = Section::Body;
        } else if let Some(info) = text.strip_prefix("State Information: ") {
            t.state_information = Some(info.to_string());
            self.saw_brief = true;
        } else if let Some((ike, counts)) = connections::brief_counts(text) {
            if ike {
                t.ike_sas = counts;
            } else {
                t.ipsec_sas = counts;
            }
            self.saw_brief = true;
        } else if text.starts_with("Bare Shunt list:") {
            self.saw_shunt_header = true;
            self.section = Section::Shunts;
        } else {
            return false;
        }
        true
    }

    fn connection_line(&mut self, number: usize, text: &str) {
        let (idx, payload) = match self.same_connection(text) {
            Some(same) => same,
            None => {
                let Some(line) = connections::conn_line(text) else {
                    self.diag(number, "connection-list line without `\"name\":`", text);
                    return;
                };
                let key = (line.name.to_string(), line.instances);
                let idx = match self.conn_index.get(&key) {
                    Some(&i) => i,
                    None => {
                        let i = self.new_connection(Connection {
                            conn: ConnRef {
                                name: key.0.as_str().into(),
                                instances: key.1.clone(),
                                peer: None,
                            },
                            ..Connection::default()
                        });
                        self.conn_index.insert(key, i);
                        i
                    }
                };
                let head = &text[..text.len() - line.payload.len()];
                match &mut self.last_conn {
                    Some((last, last_idx)) => {
                        last.clear();
                        last.push_str(head);
                        *last_idx = idx;
                    }
                    None => self.last_conn = Some((head.to_string(), idx)),
                }
                (idx, line.payload)
            }
        };
        self.saw_conn_lines = true;
        if self.section != Section::Shunts {
            self.section = Section::Body;
        }
        static CONN_SERIAL: Word = Word::new("conn serial:");
        if !self.evidence.conn_serial {
            self.evidence.conn_serial = CONN_SERIAL.is_in(payload);
        }
        match &mut self.records {
            Records::Kept => connections::apply(&mut self.snap.connections[idx], payload),
            Records::Json(json) => connections::apply(json.connection_mut(idx), payload),
            Records::Listing(stream) => {
                if stream.current.as_ref().is_none_or(|(i, _)| *i != idx) {
                    // A line of an entry read before (its lines came apart):
                    // go on with what the builder kept of it.
                    let revived = stream.builder.take_up_connection(idx);
                    if let Some((i, c)) = stream.current.replace((idx, revived)) {
                        stream.builder.put_connection(i, &c);
                    }
                }
                if let Some((_, c)) = &mut stream.current {
                    connections::apply(c, payload);
                }
            }
        }
    }

    /// A new connection entry, and its index.
    fn new_connection(&mut self, c: Connection) -> usize {
        match &mut self.records {
            Records::Kept => {
                self.snap.connections.push(c);
                self.snap.connections.len() - 1
            }
            Records::Json(json) => json.new_connection(c),
            Records::Listing(stream) => {
                let i = stream.builder.connection_count();
                stream.builder.connection(&c);
                if let Some((j, done)) = stream.current.replace((i, c)) {
                    stream.builder.put_connection(j, &done);
                }
                i
            }
        }
    }

    /// The serials this feed's SA and trafficstatus lines showed.
    fn serials(&self) -> std::collections::BTreeSet<u64> {
        match &self.records {
            Records::Kept => self.snap.serials(),
            Records::Json(json) => json.serials(),
            Records::Listing(stream) => stream.builder.serials_since(stream.mark),
        }
    }

    /// The connection and payload of a line that starts with the same
    /// head as the line before: the same name and instances, read as
    /// [`connections::conn_line`] would read them.
    fn same_connection<'t>(&self, text: &'t str) -> Option<(usize, &'t str)> {
        let (head, idx) = self.last_conn.as_ref()?;
        let payload = text.strip_prefix(head.as_str())?;
        (payload.is_empty() || payload.starts_with(' ')).then_some((*idx, payload))
    }

    fn serial_line(&mut self, number: usize, text: &str, raw: &str) {
        let Ok((rest, serial)) = serial_colon(text) else {
            self.diag(number, "`#` line without a `#N: ` serial", raw);
            self.unread(number, None);
            return;
        };
        // A feed that does not keep its records reads each line into the
        // buffers of the last one; a snapshot takes the values out.
        let mut into = self.scratch.take().unwrap_or_default();
        match serial_line_into(serial, rest, number, &mut into) {
            Some(ReadInto::State) => {
                self.note_state_evidence(&into.state, rest);
                self.saw_states = true;
                match &mut self.records {
                    Records::Kept => self
                        .snap
                        .states
                        .push(std::mem::replace(&mut into.state, blank_state())),
                    Records::Json(json) => {
                        json.state(&mut into.state);
                        // What comes back is the state line before, encoded:
                        // its SPI line's buffers are for the next one.
                        if let Some(spi) = into.state.spi_line.take() {
                            into.spi = spi;
                        }
                    }
                    Records::Listing(stream) => stream.builder.state(&into.state),
                }
            }
            Some(ReadInto::Spi) => {
                let attached = match &mut self.records {
                    Records::Listing(stream) => stream.builder.spi_line(serial, &into.spi),
                    _ => self
                        .state_mut(serial)
                        .map(|st| attach_spi_line(st, std::mem::take(&mut into.spi)))
                        .is_some(),
                };
                if !attached {
                    self.diag(number, "SPI line without its state line", raw);
                }
            }
            Some(ReadInto::Pending(p)) => {
                let attached = match &mut self.records {
                    Records::Listing(stream) => stream.builder.pending_line(serial),
                    _ => self
                        .state_mut(serial)
                        .map(|st| attach_pending(st, p))
                        .is_some(),
                };
                if !attached {
                    self.diag(number, "pending line without its IKE SA's state line", raw);
                }
            }
            Some(ReadInto::Traffic(t, problems)) => {
                for p in problems {
                    self.diag(
                        number,
                        &format!("trafficstatus field not understood: {p}"),
                        raw,
                    );
                }
                self.evidence.max_bytes |= t.max_bytes.is_some();
                self.saw_traffic = true;
                match &mut self.records {
                    Records::Kept => self.snap.traffic.push(*t),
                    Records::Json(json) => json.traffic(&t),
                    Records::Listing(stream) => stream.builder.traffic(&t),
                }
            }
            None => {
                self.diag(number, "unrecognised `#N:` line", raw);
                self.unread(number, Some(serial));
            }
        }
        self.scratch = Some(into);
    }

    /// The latest state line of `serial`: SPI and pending lines follow it.
    fn state_mut(&mut self, serial: u64) -> Option<&mut State> {
        match &mut self.records {
            Records::Json(json) => json.state_mut(serial),
            _ => self
                .snap
                .states
                .iter_mut()
                .rev()
                .find(|s| s.serial == serial),
        }
    }

    fn note_state_evidence(&mut self, st: &State, rest: &str) {
        static IMPORT: Word = Word::new("; import:");
        static NEWEST_ISAKMP: Word = Word::new("; newest ISAKMP");
        static NEWEST_IPSEC: Word = Word::new("; newest IPSEC");
        static ISAKMP_PARENT: Word = Word::new("isakmp#");
        static NEWEST: Word = Word::new(" newest;");
        static IKE_SA: Word = Word::new(" IKE SA #");
        static ISAKMP_SA: Word = Word::new(" ISAKMP SA #");
        let e = &mut self.evidence;
        // Each piece of evidence is searched for only until it is found,
        // and the older items not at all once the 4.6+ items are: they
        // would change no epoch (see `Evidence::epoch`).
        if !e.import_item && !e.new_items {
            e.import_item = IMPORT.is_in(rest);
        }
        match st.name.as_deref() {
            None => e.nameless_states = true,
            Some(n) => {
                e.v3_names |= n.starts_with("STATE_PARENT_") || n.starts_with("STATE_V2_IPSEC_");
                e.v2_established_names |=
                    n.starts_with("STATE_V2_ESTABLISHED_") || n.starts_with("STATE_V2_PARENT_");
                e.short_v2_names |= !n.starts_with("STATE_");
            }
        }
        for t in &st.timers {
            if t.name.starts_with("EVENT_") {
                e.long_events = true;
                e.rekey_expire_events |= matches!(
                    t.name.as_str(),
                    "EVENT_SA_REKEY" | "EVENT_SA_EXPIRE" | "EVENT_RETRANSMIT"
                );
            } else {
                e.short_events = true;
            }
        }
        if !e.old_newest && !e.new_items {
            e.old_newest =
                NEWEST_ISAKMP.is_in(rest) || NEWEST_IPSEC.is_in(rest) || ISAKMP_PARENT.is_in(rest);
        }
        if !e.new_items {
            e.new_items = NEWEST.is_in(rest) || IKE_SA.is_in(rest) || ISAKMP_SA.is_in(rest);
        }
    }

    fn finish(mut self, cut_short: bool) -> (Snapshot, Records) {
        if let Records::Listing(stream) = &mut self.records {
            if let Some((i, c)) = stream.current.take() {
                stream.builder.put_connection(i, &c);
            }
        }
        let prefixed = self.snap.prefixed;
        self.snap.epoch = self.evidence.epoch(prefixed, self.unprefixed_lines);
        let kinds = &mut self.snap.kinds;
        if self.saw_status {
            kinds.push(OutputKind::Status);
        } else {
            if self.saw_conn_header || self.saw_conn_lines {
                kinds.push(OutputKind::ConnectionStatus);
            }
            if self.saw_states {
                kinds.push(OutputKind::ShowStates);
            }
            if self.saw_brief {
                kinds.push(OutputKind::BriefStatus);
            }
            if self.saw_shunt_header {
                kinds.push(OutputKind::ShuntStatus);
            }
            if !self.snap.global.is_empty() {
                kinds.push(OutputKind::GlobalStatus);
            }
        }
        if self.saw_traffic {
            kinds.push(OutputKind::TrafficStatus);
        }
        kinds.sort();
        self.snap.incomplete = self.incompleteness(cut_short);
        (self.snap, self.records)
    }

    /// Why this dump must not be diffed, if it must not.
    fn incompleteness(&self, cut_short: bool) -> Option<String> {
        if let Some(line) = &self.not_running {
            return Some(format!("pluto is not running ({line})"));
        }
        // An SA line that could not be read leaves that SA's state unknown:
        // diffing would report it gone. (A serial read elsewhere, e.g. an
        // odd SPI line after a good state line, is still known.)
        if let Some(line) = self.too_many_unread {
            return Some(format!(
                "line {line}: the lines of more than {} SAs were not understood, so their states are unknown",
                MAX_UNREAD_SERIALS / 2
            ));
        }
        // The serials the dump shows are gathered only when some SA line
        // was unreadable: on a whole dump, that is never.
        let known = if self.unread_serials.is_empty() {
            Default::default()
        } else {
            self.serials()
        };
        let first_unknown = self
            .unread_serials
            .iter()
            .filter(|(s, _)| !known.contains(s))
            .map(|(&s, &line)| (line, Some(s)))
            .chain(self.unread_no_serial.map(|line| (line, None)))
            .min_by_key(|&(line, _)| line);
        if let Some((line, serial)) = first_unknown {
            return Some(match serial {
                Some(s) => format!(
                    "line {line}: the line of SA #{s} was not understood, so its state is unknown"
                ),
                None => format!("line {line}: an SA line without a readable serial"),
            });
        }
        if self.snap.kinds.is_empty() && !self.snap.diagnostics.is_empty() {
            // Not one line of it is status output: a shell error, the wrong
            // file, garbage. Taken as a dump, it would say "no tunnels".
            return Some(format!(
                "nothing in it is libreswan status output ({} not recognised, the first at line {})",
                crate::counted(self.snap.diagnostic_count(), "line", "lines"),
                self.snap.diagnostics[0].line
            ));
        }
        if cut_short {
            return Some("the last line is cut short (no final newline)".to_string());
        }
        if !self.saw_status {
            return None;
        }
        if !self.saw_conn_header && !self.saw_conn_lines {
            return Some("status output ends before `Connection list:`".to_string());
        }
        if !self.saw_totals {
            return Some(
                "status output ends inside the connection list (no `Total IPsec connections`)"
                    .to_string(),
            );
        }
        // libreswan 3.x with KLIPS prints no shunt list; its status then
        // ends with the unconditional blank lines around the state block.
        let old = self.snap.epoch.is_none_or(|e| e <= FormatEpoch::E2);
        if !(self.saw_shunt_header || old && self.last_was_blank) {
            return Some("status output ends before `Bare Shunt list:`".to_string());
        }
        None
    }
}

/// An SPI line read into the state line before it.
fn attach_spi_line(st: &mut State, spi: SpiLine) {
    if !spi.saids.is_empty() {
        // Only an established Child SA has SAIDs; the 3.x IKE SA that
        // prints an empty SPI line stays IKE.
        st.kind = Some(SaKind::Child);
        st.established = true;
    }
    st.spi_line = Some(spi);
}

/// A pending line read into the IKE SA's state line before it.
fn attach_pending(st: &mut State, p: Pending) {
    st.kind.get_or_insert(SaKind::Ike);
    st.pending.push(p);
}

/// `192.1.3.209/32:0 -0-> 192.1.2.23/32:0 => %pass 0    oe-failing`.
fn is_shunt(text: &str) -> bool {
    text.contains(" => %") && text.contains("-> ")
}

/// The most `globalstatus` pairs kept: pluto prints a few hundred, so more
/// is junk of that shape, and keeping it all would grow memory with it.
const MAX_GLOBAL_PAIRS: usize = 4096;

/// The most shunt lines kept; nothing reads them but `parse`, and a flood
/// of lines of that shape must not grow memory with the input.
const MAX_SHUNTS: usize = 65_536;

/// A `globalstatus` line: `current.states.ike=0`.
fn global_pair(text: &str) -> Option<(&str, &str)> {
    let (k, v) = text.split_once('=')?;
    let ok = k.contains('.')
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    ok.then_some((k, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::MAX_DIAGNOSTICS;

    #[test]
    fn a_flood_of_globalstatus_or_shunt_shaped_lines_is_kept_only_in_part() {
        let globals = "a.b=c\n".repeat(MAX_GLOBAL_PAIRS + 100);
        let snap = parse(&globals);
        assert_eq!(snap.global.len(), MAX_GLOBAL_PAIRS);
        assert_eq!(snap.diagnostics.len(), MAX_DIAGNOSTICS);
        let shunts = "10.0.0.1/32:0 -0-> 10.0.0.2/32:0 => %pass 0    oe\n".repeat(MAX_SHUNTS + 5);
        let snap = parse(&shunts);
        assert_eq!(snap.shunts.len(), MAX_SHUNTS);
        assert_eq!(snap.diagnostics.len(), 5);
    }

    #[test]
    fn only_the_first_diagnostics_are_kept_and_the_rest_counted() {
        let junk = "junk\n".repeat(1000);
        let snap = parse(&junk);
        assert_eq!(snap.diagnostics.len(), MAX_DIAGNOSTICS);
        assert_eq!(snap.diagnostics_omitted, 1000 - MAX_DIAGNOSTICS as u64);
        assert_eq!(snap.diagnostic_count(), 1000);
        let lines: Vec<usize> = snap.diagnostics.iter().map(|d| d.line).collect();
        assert_eq!(lines, (1..=MAX_DIAGNOSTICS).collect::<Vec<_>>());
        assert_eq!(
            snap.incomplete.as_deref(),
            Some(
                "nothing in it is libreswan status output (1000 lines not recognised, the first at line 1)"
            )
        );
    }

    #[test]
    fn merged_snapshots_keep_the_first_diagnostics_and_add_up_the_rest() {
        let mut a = parse(&"junk\n".repeat(15));
        a.merge(parse(&"more junk\n".repeat(30)));
        assert_eq!(a.diagnostics.len(), MAX_DIAGNOSTICS);
        assert_eq!(a.diagnostics[14].text, "junk");
        assert_eq!(a.diagnostics[15].text, "more junk");
        assert_eq!(a.diagnostic_count(), 45);
    }

    #[test]
    fn endless_unreadable_sa_lines_make_the_dump_incomplete_not_a_long_list() {
        let text: String = (1..=3 * MAX_UNREAD_SERIALS as u64)
            .map(|n| format!("#{n}: junk\n"))
            .collect();
        let mut feed = LineFeed::new();
        feed.text(&text);
        assert!(feed.parser.unread_serials.len() <= MAX_UNREAD_SERIALS);
        let snap = feed.finish();
        let why = snap.incomplete.unwrap_or_default();
        assert!(
            why.starts_with(&format!(
                "line {}: the lines of more than",
                MAX_UNREAD_SERIALS + 1
            )),
            "{why}"
        );
    }

    #[test]
    fn a_connection_named_like_whacks_complaint_is_a_connection_not_a_dead_pluto() {
        let snap = parse(concat!(
            "\"Pluto is not running\": 192.0.2.1...192.0.2.2; unrouted;\n",
            "\"Pluto is not running\":   conn serial: $1;\n",
            "#1: \"Pluto is not running\":500 established IKE SA; REKEY in 900s; newest; idle;\n",
        ));
        assert_eq!(snap.incomplete, None);
        assert_eq!(snap.connections.len(), 1);
        assert_eq!(snap.connections[0].conn.name, "Pluto is not running");
        assert_eq!(snap.connections[0].conn_serial, Some(1));
        assert_eq!(snap.states.len(), 1);
        assert_eq!(snap.states[0].conn.name, "Pluto is not running");
        // whack's own complaint still marks the dump.
        let snap = parse("whack: Pluto is not running (no \"/run/pluto/pluto.ctl\")\n");
        assert!(
            snap.incomplete
                .unwrap_or_default()
                .starts_with("pluto is not running")
        );
    }

    #[test]
    fn the_lines_of_one_connection_find_it_by_their_head_and_others_by_name() {
        // Heads that share a prefix, instances, a name holding a quote, a
        // line with no space after its colon: each is read as on its own.
        let snap = parse(concat!(
            "\"a\": 192.0.2.1...192.0.2.2; unrouted;\n",
            "\"a\":   conn serial: $1;\n",
            "\"a\"[1]: 192.0.2.1...192.0.2.3; erouted;\n",
            "\"a\"[1]:   conn serial: $2;\n",
            "\"a\":x\n",
            "\"a\"b\":   conn serial: $3;\n",
            "\"a\":   policy: IKEv1+PSK;\n",
        ));
        let serials: Vec<_> = snap
            .connections
            .iter()
            .map(|c| {
                (
                    c.conn.name.as_str(),
                    c.conn.instances.clone(),
                    c.conn_serial,
                )
            })
            .collect();
        assert_eq!(
            serials,
            [
                ("a", vec![], Some(1)),
                ("a", vec![1], Some(2)),
                ("a\"b", vec![], Some(3)),
            ]
        );
        assert_eq!(
            snap.connections[0].ike_version,
            Some(crate::snapshot::IkeVersion::V1)
        );
        assert_eq!(snap.diagnostics.len(), 1);
        assert_eq!(snap.diagnostics[0].line, 5);
    }

    #[test]
    fn the_first_unreadable_line_of_an_unknown_sa_is_the_one_named() {
        // The first unreadable line of an SA the dump does not show is the
        // one the reason names, whatever the order of the serials.
        let snap = parse("#9: junk\n#3: junk\n#9: more junk\n");
        assert_eq!(
            snap.incomplete.as_deref(),
            Some("line 1: the line of SA #9 was not understood, so its state is unknown")
        );
    }
}
