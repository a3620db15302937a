//! What the tracker reads of one snapshot, held compactly.
//!
//! A [`Snapshot`] holds everything pluto printed, as owned text: about
//! 2.5 KB per tunnel, 124 MB for a 50,000-tunnel gateway's listing (five
//! times the text it was parsed from). The tracker reads a small part of
//! it: per SA its serial, connection, kind, state name, parent, timers,
//! SPIs, user and byte counters; per connection its hosts and `$N`. A
//! [`Listing`] holds exactly that, in fixed-size records: connection
//! references and state names interned once per listing, SPIs and user
//! names in one shared text buffer. It is what [`crate::track::Tracker`]
//! diffs, built from a whole snapshot ([`Listing::of`]) or, by a daemon,
//! as the parser reads each record ([`ListingBuilder`]), so that no whole
//! snapshot of the gateway is ever held.
//!
//! It must hold nothing the snapshot did not say, and say it the way the
//! snapshot's [`crate::snapshot::Seen`] would: the same kind, the same
//! established, the same byte counters, the same first line of a serial.

use rustc_hash::FxHashMap;

use crate::snapshot::{
    ConnRef, Connection, IkeVersion, OutputKind, SaKind, Snapshot, SpiLine, State, TimerKind,
    Traffic, TunnelKey,
};
use crate::work;

/// A piece of [`Listing`]'s shared text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// One listed SA: its state line and/or its trafficstatus line.
#[derive(Debug, Clone)]
struct ListedSa {
    serial: u64,
    state: Option<ListedState>,
    traffic: Option<ListedTraffic>,
}

/// What the tracker reads of one state line (and its SPI line).
#[derive(Debug, Clone)]
struct ListedState {
    conn: u32,
    kind: Option<SaKind>,
    ike_version: Option<IkeVersion>,
    established: bool,
    spi_line: bool,
    expire_shown: bool,
    newest: bool,
    port: Option<u16>,
    /// Interned state name.
    name: Option<u32>,
    /// Interned story, when not empty.
    story: Option<u32>,
    parent_serial: Option<u64>,
    expire_due: Option<i64>,
    replace_due: Option<i64>,
    rekey_due: Option<i64>,
    spi_in: Option<Span>,
    spi_out: Option<Span>,
    username: Option<Span>,
    /// The SPI line's rounded counters, as [`crate::snapshot::Seen::bytes`] picks them.
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
}

/// What the tracker reads of one trafficstatus line.
#[derive(Debug, Clone)]
struct ListedTraffic {
    conn: u32,
    add_time: Option<u64>,
    in_bytes: Option<u64>,
    out_bytes: Option<u64>,
    username: Option<Span>,
    id: Option<Span>,
}

/// What the tracker reads of one connection-list entry.
#[derive(Debug, Clone)]
struct ListedConnection {
    conn: u32,
    conn_serial: Option<u64>,
    newest_child: Option<u64>,
    local_host: Option<Span>,
    remote_host: Option<Span>,
}

/// The tracker's view of one snapshot (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// When the dump was taken, in Unix seconds ([`Snapshot::taken_at`]).
    pub taken_at: Option<i64>,
    /// The same in Unix milliseconds ([`Snapshot::taken_at_ms`]).
    pub taken_at_ms: Option<i64>,
    /// Which status commands contributed lines ([`Snapshot::kinds`]).
    pub kinds: Vec<OutputKind>,
    /// pluto's version as `status` names it ([`Snapshot::pluto_version`]).
    pub pluto_version: Option<String>,
    /// Why the dump is not whole ([`Snapshot::incomplete`]): the tracker
    /// never diffs it then.
    pub incomplete: Option<String>,
    /// How many lines were not recognised ([`Snapshot::diagnostic_count`]).
    pub diagnostics: u64,
    conns: Vec<ConnRef>,
    words: Vec<Box<str>>,
    text: String,
    /// Sorted by serial, one per serial, none with serial 0.
    sas: Vec<ListedSa>,
    connections: Vec<ListedConnection>,
}

/// What one listing says about one serial: the compact counterpart of
/// [`crate::snapshot::Seen`], with the same rules.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    listing: &'a Listing,
    sa: &'a ListedSa,
}

impl<'a> Seen<'a> {
    fn state(&self) -> Option<&'a ListedState> {
        self.sa.state.as_ref()
    }

    fn traffic(&self) -> Option<&'a ListedTraffic> {
        self.sa.traffic.as_ref()
    }

    fn text(&self, span: Option<Span>) -> Option<&'a str> {
        span.map(|s| self.listing.span(s))
    }

    /// The `#N` serial.
    pub fn serial(&self) -> u64 {
        self.sa.serial
    }

    /// Whether a state line lists it (else only trafficstatus does).
    pub fn has_state(&self) -> bool {
        self.sa.state.is_some()
    }

    /// Whether trafficstatus lists it.
    pub fn has_traffic(&self) -> bool {
        self.sa.traffic.is_some()
    }

    /// IKE or Child: as the parser said, else told by what was printed.
    pub fn kind(&self) -> SaKind {
        if let Some(k) = self.state().and_then(|s| s.kind) {
            return k;
        }
        let child_signs = self.traffic().is_some()
            || self
                .state()
                .is_some_and(|s| s.spi_line || s.parent_serial.is_some());
        if child_signs {
            SaKind::Child
        } else {
            SaKind::Ike
        }
    }

    /// The kind the state line itself gave, if any (`show` tells Child SAs
    /// by this, else by an SPI line).
    pub fn listed_kind(&self) -> Option<SaKind> {
        self.state().and_then(|s| s.kind)
    }

    /// Whether the state line (with its SPI line) says established.
    pub fn state_established(&self) -> bool {
        self.state().is_some_and(|s| s.established)
    }

    /// Whether this listing shows the SA established.
    pub fn established(&self) -> bool {
        self.traffic().is_some() || self.state().is_some_and(|s| s.established || s.spi_line)
    }

    /// The connection reference (the state line's, else trafficstatus').
    pub fn conn(&self) -> &'a ConnRef {
        let id = match (self.state(), self.traffic()) {
            (Some(s), _) => s.conn,
            (None, Some(t)) => t.conn,
            // A listed SA has at least one of the two.
            (None, None) => return empty_conn(),
        };
        &self.listing.conns[id as usize]
    }

    /// The interned id of [`Seen::conn`] in its listing: two SAs of one
    /// listing have the same id exactly when their references are equal.
    pub fn conn_id(&self) -> u32 {
        match (self.state(), self.traffic()) {
            (Some(s), _) => s.conn,
            (None, Some(t)) => t.conn,
            (None, None) => u32::MAX,
        }
    }

    /// Byte counters (in, out) and whether they are exact: trafficstatus
    /// where printed, else the rounded SPI-line counters.
    pub fn bytes(&self) -> (Option<u64>, Option<u64>, bool) {
        if let Some(t) = self.traffic() {
            if t.in_bytes.is_some() || t.out_bytes.is_some() {
                return (t.in_bytes, t.out_bytes, true);
            }
        }
        match self.state() {
            Some(s) => (s.bytes_in, s.bytes_out, false),
            None => (None, None, false),
        }
    }

    /// The state name as printed (`STATE_V2_ESTABLISHED_CHILD_SA`).
    pub fn state_name(&self) -> Option<&'a str> {
        self.state()
            .and_then(|s| s.name)
            .map(|w| &*self.listing.words[w as usize])
    }

    /// The state's story, when one was printed.
    pub fn story(&self) -> Option<&'a str> {
        self.state()
            .and_then(|s| s.story)
            .map(|w| &*self.listing.words[w as usize])
    }

    /// IKE version, when the state line tells.
    pub fn ike_version(&self) -> Option<IkeVersion> {
        self.state().and_then(|s| s.ike_version)
    }

    /// The parent IKE SA of a Child SA, when printed.
    pub fn parent_serial(&self) -> Option<u64> {
        self.state().and_then(|s| s.parent_serial)
    }

    /// The remote IKE port, when printed.
    pub fn port(&self) -> Option<u16> {
        self.state().and_then(|s| s.port)
    }

    /// Whether the state shows a timer of `kind` at all (even sanitized).
    /// Only EXPIRE is kept for this.
    pub fn shows_expire(&self) -> bool {
        self.state().is_some_and(|s| s.expire_shown)
    }

    /// Seconds until the first timer of `kind` (EXPIRE, REPLACE or REKEY).
    pub fn due(&self, kind: TimerKind) -> Option<i64> {
        let s = self.state()?;
        match kind {
            TimerKind::Expire => s.expire_due,
            TimerKind::Replace => s.replace_due,
            TimerKind::Rekey => s.rekey_due,
            _ => None,
        }
    }

    /// Whether the state line says it is its connection's newest SA of its
    /// kind (`newest`, `newest IPSEC`).
    pub fn newest(&self) -> bool {
        self.state().is_some_and(|s| s.newest)
    }

    /// Whether the state has an SPI line.
    pub fn has_spi_line(&self) -> bool {
        self.state().is_some_and(|s| s.spi_line)
    }

    /// The inbound SPI of the SPI line ([`crate::snapshot::SpiLine::spi_in`]).
    pub fn spi_in(&self) -> Option<&'a str> {
        self.text(self.state().and_then(|s| s.spi_in))
    }

    /// The outbound SPI of the SPI line ([`crate::snapshot::SpiLine::spi_out`]).
    pub fn spi_out(&self) -> Option<&'a str> {
        self.text(self.state().and_then(|s| s.spi_out))
    }

    /// The XAUTH username of the SPI line.
    pub fn spi_username(&self) -> Option<&'a str> {
        self.text(self.state().and_then(|s| s.username))
    }

    /// The kernel `add_time` of the trafficstatus line.
    pub fn add_time(&self) -> Option<u64> {
        self.traffic().and_then(|t| t.add_time)
    }

    /// The trafficstatus line's username, else its remote ID.
    pub fn traffic_user(&self) -> Option<&'a str> {
        let t = self.traffic()?;
        self.text(t.username.or(t.id))
    }
}

/// The rounded counters of an SPI line, as [`crate::snapshot::Seen::bytes`]
/// picks them: the first protocol that prints either direction.
fn rounded_bytes(line: &SpiLine) -> (Option<u64>, Option<u64>) {
    for (name_in, name_out) in [
        ("ESPin", "ESPout"),
        ("AHin", "AHout"),
        ("IPCOMPin", "IPCOMPout"),
    ] {
        let i = line.counter(name_in);
        let o = line.counter(name_out);
        if i.is_some() || o.is_some() {
            return (i, o);
        }
    }
    (None, None)
}

fn empty_conn() -> &'static ConnRef {
    static EMPTY: std::sync::OnceLock<ConnRef> = std::sync::OnceLock::new();
    EMPTY.get_or_init(ConnRef::default)
}

/// One connection-list entry as a listing holds it.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSeen<'a> {
    listing: &'a Listing,
    c: &'a ListedConnection,
}

impl<'a> ConnectionSeen<'a> {
    /// The connection name and instance.
    pub fn conn(&self) -> &'a ConnRef {
        &self.listing.conns[self.c.conn as usize]
    }

    /// `$N` connection serial, 4.0+.
    pub fn conn_serial(&self) -> Option<u64> {
        self.c.conn_serial
    }

    /// The newest established Child SA the entry names.
    pub fn newest_child(&self) -> Option<u64> {
        self.c.newest_child
    }

    /// The local IKE host as printed.
    pub fn local_host(&self) -> Option<&'a str> {
        self.c.local_host.map(|s| self.listing.span(s))
    }

    /// The remote IKE host as printed.
    pub fn remote_host(&self) -> Option<&'a str> {
        self.c.remote_host.map(|s| self.listing.span(s))
    }
}

impl Listing {
    /// The listing of a whole snapshot.
    pub fn of(snapshot: &Snapshot) -> Listing {
        let mut b = ListingBuilder::default();
        for c in &snapshot.connections {
            b.connection(c);
        }
        for st in &snapshot.states {
            b.state(st);
        }
        for t in &snapshot.traffic {
            b.traffic(t);
        }
        b.finish(ListingMeta::of(snapshot))
    }

    fn span(&self, s: Span) -> &str {
        &self.text[s.start as usize..(s.start + s.len) as usize]
    }

    /// Whether the tracker can diff it.
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_none()
    }

    /// Whether it lists every IKE SA ([`OutputKind::lists_ike_sas`]).
    pub fn lists_ike_sas(&self) -> bool {
        self.kinds.iter().any(|k| k.lists_ike_sas())
    }

    /// Whether it lists every established Child SA.
    pub fn lists_child_sas(&self) -> bool {
        self.kinds.iter().any(|k| k.lists_child_sas())
    }

    /// How many serials it lists.
    pub fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether it lists no SA.
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty()
    }

    /// Every listed serial in serial order: the first state line of each,
    /// joined with its first trafficstatus line (as
    /// [`Snapshot::seen_by_serial`]).
    pub fn seen(&self) -> impl DoubleEndedIterator<Item = Seen<'_>> + ExactSizeIterator + '_ {
        self.sas.iter().map(move |sa| Seen { listing: self, sa })
    }

    /// What it says of `serial`, if it lists it.
    pub fn get(&self, serial: u64) -> Option<Seen<'_>> {
        work::count(1);
        self.sas
            .binary_search_by_key(&serial, |sa| sa.serial)
            .ok()
            .map(|i| Seen {
                listing: self,
                sa: &self.sas[i],
            })
    }

    /// The connection-list entries, in print order.
    pub fn connections(&self) -> impl ExactSizeIterator<Item = ConnectionSeen<'_>> + '_ {
        self.connections
            .iter()
            .map(move |c| ConnectionSeen { listing: self, c })
    }

    /// The tunnels with an established Child SA, as
    /// [`Snapshot::tunnels_up`] counts them.
    pub fn tunnels_up(&self) -> std::collections::BTreeSet<TunnelKey> {
        let mut ids: Vec<u32> = self
            .seen()
            .filter(|s| s.kind() == SaKind::Child && s.established())
            .map(|s| s.conn_id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| self.conns[id as usize].tunnel())
            .collect()
    }
}

/// The snapshot-wide facts of a listing, given to [`ListingBuilder::finish`].
#[derive(Debug, Clone, Default)]
pub struct ListingMeta {
    /// [`Listing::taken_at`].
    pub taken_at: Option<i64>,
    /// [`Listing::taken_at_ms`].
    pub taken_at_ms: Option<i64>,
    /// [`Listing::kinds`].
    pub kinds: Vec<OutputKind>,
    /// [`Listing::pluto_version`].
    pub pluto_version: Option<String>,
    /// [`Listing::incomplete`].
    pub incomplete: Option<String>,
    /// [`Listing::diagnostics`].
    pub diagnostics: u64,
}

impl ListingMeta {
    /// The facts of a whole snapshot.
    pub fn of(snapshot: &Snapshot) -> ListingMeta {
        ListingMeta {
            taken_at: snapshot.taken_at,
            taken_at_ms: snapshot.taken_at_ms,
            kinds: snapshot.kinds.clone(),
            pluto_version: snapshot.pluto_version.clone(),
            incomplete: snapshot.incomplete.clone(),
            diagnostics: snapshot.diagnostic_count(),
        }
    }
}

/// Builds a [`Listing`] one record at a time, as a parser reads them:
/// each state, trafficstatus line and connection entry is taken in and
/// can be dropped at once.
#[derive(Debug, Default)]
pub struct ListingBuilder {
    conn_ids: FxHashMap<ConnRef, u32>,
    conns: Vec<ConnRef>,
    word_ids: FxHashMap<Box<str>, u32>,
    words: Vec<Box<str>>,
    text: String,
    states: Vec<(u64, ListedState)>,
    traffic: Vec<(u64, ListedTraffic)>,
    connections: Vec<ListedConnection>,
    /// Whether a connection entry had its first (topology) line, per
    /// entry: what [`crate::status`] needs to go on with an entry whose
    /// lines come apart.
    topology_seen: Vec<bool>,
    /// Drop trafficstatus lines of serials no state line lists.
    traffic_of_states_only: bool,
}

impl ListingBuilder {
    /// A builder that has taken nothing yet.
    pub fn new() -> ListingBuilder {
        ListingBuilder::default()
    }

    fn conn(&mut self, conn: &ConnRef) -> u32 {
        if let Some(&id) = self.conn_ids.get(conn) {
            return id;
        }
        let id = self.conns.len() as u32;
        self.conns.push(conn.clone());
        self.conn_ids.insert(conn.clone(), id);
        id
    }

    fn word(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.word_ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.into());
        self.word_ids.insert(word.into(), id);
        id
    }

    fn span(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            len: text.len() as u32,
        }
    }

    /// Take in one state line (with its SPI line), in print order.
    pub fn state(&mut self, st: &State) {
        let conn = self.conn(&st.conn);
        let name = st.name.as_deref().map(|n| self.word(n));
        let story = (!st.story.is_empty()).then(|| self.word(&st.story));
        let (mut spi_in, mut spi_out, mut username) = (None, None, None);
        let (mut bytes_in, mut bytes_out) = (None, None);
        if let Some(line) = &st.spi_line {
            spi_in = line.spi_in().map(|s| self.span(s));
            spi_out = line.spi_out().map(|s| self.span(s));
            username = line.username.as_deref().map(|u| self.span(u));
            (bytes_in, bytes_out) = rounded_bytes(line);
        }
        self.states.push((
            st.serial,
            ListedState {
                conn,
                kind: st.kind,
                ike_version: st.ike_version,
                established: st.established,
                spi_line: st.spi_line.is_some(),
                expire_shown: st.has_timer(TimerKind::Expire),
                newest: st.newest,
                port: st.port,
                name,
                story,
                parent_serial: st.parent_serial,
                expire_due: st.due(TimerKind::Expire),
                replace_due: st.due(TimerKind::Replace),
                rekey_due: st.due(TimerKind::Rekey),
                spi_in,
                spi_out,
                username,
                bytes_in,
                bytes_out,
            },
        ));
    }

    /// Take in an SPI line of the last state line of `serial` taken in, as
    /// the parser attaches it to that state; false when there is none.
    pub fn spi_line(&mut self, serial: u64, line: &SpiLine) -> bool {
        let Some(i) = self.states.iter().rposition(|e| e.0 == serial) else {
            return false;
        };
        let spi_in = line.spi_in().map(|s| self.span(s));
        let spi_out = line.spi_out().map(|s| self.span(s));
        let username = line.username.as_deref().map(|u| self.span(u));
        let (bytes_in, bytes_out) = rounded_bytes(line);
        let st = &mut self.states[i].1;
        if !line.saids.is_empty() {
            // As the parser says: only an established Child SA has SAIDs.
            st.kind = Some(SaKind::Child);
            st.established = true;
        }
        st.spi_line = true;
        (st.spi_in, st.spi_out, st.username) = (spi_in, spi_out, username);
        (st.bytes_in, st.bytes_out) = (bytes_in, bytes_out);
        true
    }

    /// Take in a pending line of the last state line of `serial`: that SA
    /// is an IKE SA unless it said otherwise. False when there is none.
    pub fn pending_line(&mut self, serial: u64) -> bool {
        match self.states.iter_mut().rev().find(|e| e.0 == serial) {
            Some((_, st)) => {
                st.kind.get_or_insert(SaKind::Ike);
                true
            }
            None => false,
        }
    }

    /// How many state and trafficstatus lines were taken in: a mark for
    /// [`ListingBuilder::serials_since`].
    pub fn mark(&self) -> (usize, usize) {
        (self.states.len(), self.traffic.len())
    }

    /// The serials of the lines taken in since `mark`.
    pub fn serials_since(&self, mark: (usize, usize)) -> std::collections::BTreeSet<u64> {
        let states = self.states.get(mark.0..).unwrap_or_default();
        let traffic = self.traffic.get(mark.1..).unwrap_or_default();
        states
            .iter()
            .map(|e| e.0)
            .chain(traffic.iter().map(|e| e.0))
            .collect()
    }

    /// Keep only the trafficstatus lines of serials a state line lists
    /// (a poll whose states' listing came after its trafficstatus).
    pub fn traffic_of_states_only(&mut self) {
        self.traffic_of_states_only = true;
    }

    /// Take in one trafficstatus line, in print order.
    pub fn traffic(&mut self, t: &Traffic) {
        let conn = self.conn(&t.conn);
        let username = t.username.as_deref().map(|u| self.span(u));
        let id = t.id.as_deref().map(|u| self.span(u));
        self.traffic.push((
            t.serial,
            ListedTraffic {
                conn,
                add_time: t.add_time,
                in_bytes: t.in_bytes,
                out_bytes: t.out_bytes,
                username,
                id,
            },
        ));
    }

    /// Take in one connection-list entry, in print order.
    pub fn connection(&mut self, c: &Connection) {
        let i = self.connections.len();
        self.connections.push(ListedConnection {
            conn: 0,
            conn_serial: None,
            newest_child: None,
            local_host: None,
            remote_host: None,
        });
        self.topology_seen.push(false);
        self.put_connection(i, c);
    }

    /// How many connection entries were taken in (the index the next one
    /// gets).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Replace entry `i` with what `c` holds now (a parser that read more
    /// lines of it).
    pub fn put_connection(&mut self, i: usize, c: &Connection) {
        let conn = self.conn(&c.conn);
        let local_host = c.local_host.as_deref().map(|h| self.span(h));
        let remote_host = c.remote_host.as_deref().map(|h| self.span(h));
        if let Some(slot) = self.connections.get_mut(i) {
            *slot = ListedConnection {
                conn,
                conn_serial: c.conn_serial,
                newest_child: c.newest_child,
                local_host,
                remote_host,
            };
            self.topology_seen[i] = c.topology.is_some();
        }
    }

    /// Entry `i` as a [`Connection`] holding what a listing keeps of it,
    /// for a parser to go on with (its other fields are empty; the
    /// topology, when it was read, is an empty text).
    pub fn take_up_connection(&self, i: usize) -> Connection {
        let Some(c) = self.connections.get(i) else {
            return Connection::default();
        };
        let text = |s: Option<Span>| {
            s.map(|s| self.text[s.start as usize..(s.start + s.len) as usize].to_string())
        };
        Connection {
            conn: self.conns[c.conn as usize].clone(),
            topology: self.topology_seen[i].then(String::new),
            local_host: text(c.local_host),
            remote_host: text(c.remote_host),
            conn_serial: c.conn_serial,
            newest_child: c.newest_child,
            ..Connection::default()
        }
    }

    /// The listing of everything taken in: one entry per serial, its first
    /// state line joined with its first trafficstatus line.
    pub fn finish(self, meta: ListingMeta) -> Listing {
        let ListingBuilder {
            conns,
            words,
            text,
            mut states,
            traffic,
            connections,
            traffic_of_states_only,
            ..
        } = self;
        // Stable: of two state lines of one serial the first is kept.
        states.sort_by_key(|e| e.0);
        states.dedup_by_key(|e| e.0);
        let mut sas: Vec<ListedSa> = states
            .into_iter()
            .map(|(serial, state)| ListedSa {
                serial,
                state: Some(state),
                traffic: None,
            })
            .collect();
        let listed_states = sas.len();
        for (serial, t) in traffic {
            match sas[..listed_states].binary_search_by_key(&serial, |sa| sa.serial) {
                Ok(i) => {
                    let sa = &mut sas[i];
                    if sa.traffic.is_none() {
                        sa.traffic = Some(t);
                    }
                }
                Err(_) if traffic_of_states_only => {}
                Err(_) => sas.push(ListedSa {
                    serial,
                    state: None,
                    traffic: Some(t),
                }),
            }
        }
        if sas.len() > listed_states {
            // Stable again: of two traffic-only lines of a serial, the first.
            sas.sort_by_key(|sa| sa.serial);
            sas.dedup_by_key(|sa| sa.serial);
        }
        sas.retain(|sa| sa.serial != 0);
        sas.shrink_to_fit();
        Listing {
            taken_at: meta.taken_at,
            taken_at_ms: meta.taken_at_ms,
            kinds: meta.kinds,
            pluto_version: meta.pluto_version,
            incomplete: meta.incomplete,
            diagnostics: meta.diagnostics,
            conns,
            words,
            text,
            sas,
            connections,
        }
    }
}
