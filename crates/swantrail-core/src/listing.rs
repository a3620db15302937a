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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// One listed SA: its state line and/or its trafficstatus line, as
/// indexes into [`Listing`]'s records (`NONE` for neither).
#[derive(Debug, Clone, Copy)]
struct ListedSa {
    serial: u64,
    state: u32,
    traffic: u32,
}

/// No record.
const NONE: u32 = u32::MAX;

/// What the tracker reads of one state line (and its SPI line), in 96
/// bytes: which optional values it holds are bits of `has`, so that an
/// absent one takes no tag of its own.
#[derive(Debug, Clone, Default)]
struct ListedState {
    conn: u32,
    /// Interned state name.
    name: u32,
    /// Interned story, when not empty.
    story: u32,
    has: u16,
    port: u16,
    kind: Option<SaKind>,
    ike_version: Option<IkeVersion>,
    parent_serial: u64,
    expire_due: i64,
    replace_due: i64,
    rekey_due: i64,
    spi_in: Span,
    spi_out: Span,
    username: Span,
    /// The SPI line's rounded counters, as [`crate::snapshot::Seen::bytes`] picks them.
    bytes_in: u64,
    bytes_out: u64,
}

/// The bits of [`ListedState::has`] and [`ListedTraffic::has`].
mod has {
    pub const ESTABLISHED: u16 = 1;
    pub const SPI_LINE: u16 = 1 << 1;
    pub const EXPIRE_SHOWN: u16 = 1 << 2;
    pub const NEWEST: u16 = 1 << 3;
    pub const PORT: u16 = 1 << 4;
    pub const NAME: u16 = 1 << 5;
    pub const STORY: u16 = 1 << 6;
    pub const PARENT: u16 = 1 << 7;
    pub const EXPIRE_DUE: u16 = 1 << 8;
    pub const REPLACE_DUE: u16 = 1 << 9;
    pub const REKEY_DUE: u16 = 1 << 10;
    pub const SPI_IN: u16 = 1 << 11;
    pub const SPI_OUT: u16 = 1 << 12;
    pub const USERNAME: u16 = 1 << 13;
    pub const BYTES_IN: u16 = 1 << 14;
    pub const BYTES_OUT: u16 = 1 << 15;
    // A trafficstatus line's.
    pub const ADD_TIME: u16 = 1;
    pub const IN: u16 = 1 << 1;
    pub const OUT: u16 = 1 << 2;
    pub const ID: u16 = 1 << 3;
    pub const USER: u16 = 1 << 4;
}

/// `value` if bit `bit` of `has` is set.
fn when<T>(has: u16, bit: u16, value: T) -> Option<T> {
    (has & bit != 0).then_some(value)
}

/// Store `value` (or nothing) under bit `bit` of `has`.
fn put<T: Default>(has: &mut u16, bit: u16, slot: &mut T, value: Option<T>) {
    match value {
        Some(v) => {
            *has |= bit;
            *slot = v;
        }
        None => {
            *has &= !bit;
            *slot = T::default();
        }
    }
}

/// What the tracker reads of one trafficstatus line.
#[derive(Debug, Clone, Default)]
struct ListedTraffic {
    conn: u32,
    has: u16,
    add_time: u64,
    in_bytes: u64,
    out_bytes: u64,
    username: Span,
    id: Span,
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
    states: Vec<ListedState>,
    traffic: Vec<ListedTraffic>,
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
        self.listing.states.get(self.sa.state as usize)
    }

    fn traffic(&self) -> Option<&'a ListedTraffic> {
        self.listing.traffic.get(self.sa.traffic as usize)
    }

    fn text(&self, span: Option<Span>) -> Option<&'a str> {
        span.map(|s| self.listing.span(s))
    }

    /// The state line's optional value under `bit`.
    fn state_has<T>(&self, bit: u16, value: impl FnOnce(&ListedState) -> T) -> Option<T> {
        let s = self.state()?;
        when(s.has, bit, ()).map(|()| value(s))
    }

    /// The trafficstatus line's optional value under `bit`.
    fn traffic_has<T>(&self, bit: u16, value: impl FnOnce(&ListedTraffic) -> T) -> Option<T> {
        let t = self.traffic()?;
        when(t.has, bit, ()).map(|()| value(t))
    }

    /// The `#N` serial.
    pub fn serial(&self) -> u64 {
        self.sa.serial
    }

    /// Whether a state line lists it (else only trafficstatus does).
    pub fn has_state(&self) -> bool {
        self.sa.state != NONE
    }

    /// Whether trafficstatus lists it.
    pub fn has_traffic(&self) -> bool {
        self.sa.traffic != NONE
    }

    /// IKE or Child: as the parser said, else told by what was printed.
    pub fn kind(&self) -> SaKind {
        if let Some(k) = self.state().and_then(|s| s.kind) {
            return k;
        }
        let child_signs = self.traffic().is_some()
            || self
                .state()
                .is_some_and(|s| s.has & (has::SPI_LINE | has::PARENT) != 0);
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
        self.state_has(has::ESTABLISHED, |_| ()).is_some()
    }

    /// Whether this listing shows the SA established.
    pub fn established(&self) -> bool {
        self.traffic().is_some()
            || self
                .state()
                .is_some_and(|s| s.has & (has::ESTABLISHED | has::SPI_LINE) != 0)
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
        let (i, o) = (
            self.traffic_has(has::IN, |t| t.in_bytes),
            self.traffic_has(has::OUT, |t| t.out_bytes),
        );
        if i.is_some() || o.is_some() {
            return (i, o, true);
        }
        (
            self.state_has(has::BYTES_IN, |s| s.bytes_in),
            self.state_has(has::BYTES_OUT, |s| s.bytes_out),
            false,
        )
    }

    /// The state name as printed (`STATE_V2_ESTABLISHED_CHILD_SA`).
    pub fn state_name(&self) -> Option<&'a str> {
        self.state_has(has::NAME, |s| &*self.listing.words[s.name as usize])
    }

    /// The state's story, when one was printed.
    pub fn story(&self) -> Option<&'a str> {
        self.state_has(has::STORY, |s| &*self.listing.words[s.story as usize])
    }

    /// IKE version, when the state line tells.
    pub fn ike_version(&self) -> Option<IkeVersion> {
        self.state().and_then(|s| s.ike_version)
    }

    /// The parent IKE SA of a Child SA, when printed.
    pub fn parent_serial(&self) -> Option<u64> {
        self.state_has(has::PARENT, |s| s.parent_serial)
    }

    /// The remote IKE port, when printed.
    pub fn port(&self) -> Option<u16> {
        self.state_has(has::PORT, |s| s.port)
    }

    /// Whether the state shows a timer of `kind` at all (even sanitized).
    /// Only EXPIRE is kept for this.
    pub fn shows_expire(&self) -> bool {
        self.state_has(has::EXPIRE_SHOWN, |_| ()).is_some()
    }

    /// Seconds until the first timer of `kind` (EXPIRE, REPLACE or REKEY).
    pub fn due(&self, kind: TimerKind) -> Option<i64> {
        match kind {
            TimerKind::Expire => self.state_has(has::EXPIRE_DUE, |s| s.expire_due),
            TimerKind::Replace => self.state_has(has::REPLACE_DUE, |s| s.replace_due),
            TimerKind::Rekey => self.state_has(has::REKEY_DUE, |s| s.rekey_due),
            _ => None,
        }
    }

    /// Whether the state line says it is its connection's newest SA of its
    /// kind (`newest`, `newest IPSEC`).
    pub fn newest(&self) -> bool {
        self.state_has(has::NEWEST, |_| ()).is_some()
    }

    /// Whether the state has an SPI line.
    pub fn has_spi_line(&self) -> bool {
        self.state_has(has::SPI_LINE, |_| ()).is_some()
    }

    /// The inbound SPI of the SPI line ([`crate::snapshot::SpiLine::spi_in`]).
    pub fn spi_in(&self) -> Option<&'a str> {
        self.text(self.state_has(has::SPI_IN, |s| s.spi_in))
    }

    /// The outbound SPI of the SPI line ([`crate::snapshot::SpiLine::spi_out`]).
    pub fn spi_out(&self) -> Option<&'a str> {
        self.text(self.state_has(has::SPI_OUT, |s| s.spi_out))
    }

    /// The XAUTH username of the SPI line.
    pub fn spi_username(&self) -> Option<&'a str> {
        self.text(self.state_has(has::USERNAME, |s| s.username))
    }

    /// The kernel `add_time` of the trafficstatus line.
    pub fn add_time(&self) -> Option<u64> {
        self.traffic_has(has::ADD_TIME, |t| t.add_time)
    }

    /// The trafficstatus line's username, else its remote ID.
    pub fn traffic_user(&self) -> Option<&'a str> {
        let user = self.traffic_has(has::USER, |t| t.username);
        self.text(user.or_else(|| self.traffic_has(has::ID, |t| t.id)))
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

    /// How many records of each kind it holds.
    pub fn sizes(&self) -> ListingSizes {
        ListingSizes {
            states: self.states.len(),
            traffic: self.traffic.len(),
            connections: self.connections.len(),
            conns: self.conns.len(),
            text: self.text.len(),
        }
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

    /// How many tunnels have an established Child SA (the length of
    /// [`Listing::tunnels_up`]), without building their keys: the daemon
    /// counts them at every poll.
    pub fn count_tunnels_up(&self) -> usize {
        // Instances of one name and peer are one tunnel.
        let mut keys: Vec<(&str, &str)> = self
            .up_conns()
            .map(|c| (c.name.as_str(), c.peer.as_deref().unwrap_or("")))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    /// The tunnels with an established Child SA, as
    /// [`Snapshot::tunnels_up`] counts them.
    pub fn tunnels_up(&self) -> std::collections::BTreeSet<TunnelKey> {
        self.up_conns().map(ConnRef::tunnel).collect()
    }

    /// The connection references of the established Child SAs, each once.
    fn up_conns(&self) -> impl Iterator<Item = &ConnRef> + '_ {
        let mut ids: Vec<u32> = self
            .seen()
            .filter(|s| s.kind() == SaKind::Child && s.established())
            .map(|s| s.conn_id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| &self.conns[id as usize])
    }

    /// The first connection-list entry of each instance, by (name,
    /// instances): what the tracker and the gauges look an SA's entry up by.
    pub fn connections_by_instance(&self) -> FxHashMap<(&str, &[u64]), ConnectionSeen<'_>> {
        let mut first =
            FxHashMap::with_capacity_and_hasher(self.connections.len(), Default::default());
        for c in self.connections() {
            let conn = c.conn();
            first
                .entry((conn.name.as_str(), conn.instances.as_slice()))
                .or_insert(c);
        }
        first
    }
}

/// How many records of each kind a listing holds, to size the next one
/// ([`ListingBuilder::with_sizes`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListingSizes {
    states: usize,
    traffic: usize,
    connections: usize,
    conns: usize,
    text: usize,
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
    /// Each connection reference's id by its hash: the references
    /// themselves are held once, in `conns` (a second copy as the map's
    /// key was 6 MB at 50,000 tunnels).
    conn_ids: FxHashMap<u64, u32>,
    /// The ids of references whose hash another one has already.
    conn_collided: FxHashMap<ConnRef, u32>,
    /// The id [`ListingBuilder::conn`] gave last.
    last_conn: usize,
    /// Every reference hashes alike: the collisions, tested.
    #[cfg(test)]
    collide_all: bool,
    conns: Vec<ConnRef>,
    word_ids: FxHashMap<Box<str>, u32>,
    words: Vec<Box<str>>,
    text: String,
    /// The serial of each state line, in print order, beside its record.
    state_serials: Vec<u64>,
    states: Vec<ListedState>,
    traffic_serials: Vec<u64>,
    traffic: Vec<ListedTraffic>,
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

    /// A builder with room for a listing of `sizes` and a little more: a
    /// daemon sizes each poll's listing by the last one, so that its
    /// tables are not grown by doubling (half of them empty, and twice
    /// their size while they grow) at every poll.
    pub fn with_sizes(sizes: ListingSizes) -> ListingBuilder {
        let room = |n: usize| n + n / 16;
        let mut b = ListingBuilder::default();
        b.conn_ids.reserve(room(sizes.conns));
        b.conns.reserve(room(sizes.conns));
        b.text.reserve(room(sizes.text));
        b.state_serials.reserve(room(sizes.states));
        b.states.reserve(room(sizes.states));
        b.traffic_serials.reserve(room(sizes.traffic));
        b.traffic.reserve(room(sizes.traffic));
        b.connections.reserve(room(sizes.connections));
        b.topology_seen.reserve(room(sizes.connections));
        b
    }

    fn conn(&mut self, conn: &ConnRef) -> u32 {
        // An IKE SA, its Child SAs, their SPI lines and traffic lines come
        // one after the other under one reference: the last one interned
        // is compared before any hashing.
        if self.last_conn < self.conns.len() && self.conns[self.last_conn] == *conn {
            return self.last_conn as u32;
        }
        let id = self.intern_conn(conn);
        self.last_conn = id as usize;
        id
    }

    fn intern_conn(&mut self, conn: &ConnRef) -> u32 {
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            conn.hash(&mut h);
            h.finish()
        };
        #[cfg(test)]
        let hash = if self.collide_all { 0 } else { hash };
        let next = self.conns.len() as u32;
        match self.conn_ids.entry(hash) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let id = *e.get();
                if self.conns[id as usize] == *conn {
                    return id;
                }
                if let Some(&id) = self.conn_collided.get(conn) {
                    return id;
                }
                self.conn_collided.insert(conn.clone(), next);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(next);
            }
        }
        self.conns.push(conn.clone());
        next
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
        let mut rec = ListedState {
            conn: self.conn(&st.conn),
            kind: st.kind,
            ike_version: st.ike_version,
            ..ListedState::default()
        };
        let h = &mut rec.has;
        for (bit, on) in [
            (has::ESTABLISHED, st.established),
            (has::EXPIRE_SHOWN, st.has_timer(TimerKind::Expire)),
            (has::NEWEST, st.newest),
        ] {
            if on {
                *h |= bit;
            }
        }
        put(h, has::PORT, &mut rec.port, st.port);
        let name = st.name.as_deref().map(|n| self.word(n));
        put(&mut rec.has, has::NAME, &mut rec.name, name);
        let story = (!st.story.is_empty()).then(|| self.word(&st.story));
        put(&mut rec.has, has::STORY, &mut rec.story, story);
        let h = &mut rec.has;
        put(h, has::PARENT, &mut rec.parent_serial, st.parent_serial);
        put(
            h,
            has::EXPIRE_DUE,
            &mut rec.expire_due,
            st.due(TimerKind::Expire),
        );
        put(
            h,
            has::REPLACE_DUE,
            &mut rec.replace_due,
            st.due(TimerKind::Replace),
        );
        put(
            h,
            has::REKEY_DUE,
            &mut rec.rekey_due,
            st.due(TimerKind::Rekey),
        );
        if let Some(line) = &st.spi_line {
            self.take_spi_line(&mut rec, line);
        }
        self.state_serials.push(st.serial);
        self.states.push(rec);
    }

    /// What a state's SPI line says, into its record.
    fn take_spi_line(&mut self, rec: &mut ListedState, line: &SpiLine) {
        if !line.saids.is_empty() {
            // As the parser says: only an established Child SA has SAIDs.
            rec.kind = Some(SaKind::Child);
            rec.has |= has::ESTABLISHED;
        }
        rec.has |= has::SPI_LINE;
        let spi_in = line.spi_in().map(|s| self.span(s));
        put(&mut rec.has, has::SPI_IN, &mut rec.spi_in, spi_in);
        let spi_out = line.spi_out().map(|s| self.span(s));
        put(&mut rec.has, has::SPI_OUT, &mut rec.spi_out, spi_out);
        let username = line.username.as_deref().map(|u| self.span(u));
        put(&mut rec.has, has::USERNAME, &mut rec.username, username);
        let (bytes_in, bytes_out) = rounded_bytes(line);
        put(&mut rec.has, has::BYTES_IN, &mut rec.bytes_in, bytes_in);
        put(&mut rec.has, has::BYTES_OUT, &mut rec.bytes_out, bytes_out);
    }

    /// Take in an SPI line of the last state line of `serial` taken in, as
    /// the parser attaches it to that state; false when there is none.
    pub fn spi_line(&mut self, serial: u64, line: &SpiLine) -> bool {
        let Some(i) = self.state_serials.iter().rposition(|&s| s == serial) else {
            return false;
        };
        let mut rec = std::mem::take(&mut self.states[i]);
        self.take_spi_line(&mut rec, line);
        self.states[i] = rec;
        true
    }

    /// Take in a pending line of the last state line of `serial`: that SA
    /// is an IKE SA unless it said otherwise. False when there is none.
    pub fn pending_line(&mut self, serial: u64) -> bool {
        match self.state_serials.iter().rposition(|&s| s == serial) {
            Some(i) => {
                self.states[i].kind.get_or_insert(SaKind::Ike);
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
        let states = self.state_serials.get(mark.0..).unwrap_or_default();
        let traffic = self.traffic_serials.get(mark.1..).unwrap_or_default();
        states.iter().chain(traffic).copied().collect()
    }

    /// Keep only the trafficstatus lines of serials a state line lists
    /// (a poll whose states' listing came after its trafficstatus).
    pub fn traffic_of_states_only(&mut self) {
        self.traffic_of_states_only = true;
    }

    /// Take in one trafficstatus line, in print order.
    pub fn traffic(&mut self, t: &Traffic) {
        let mut rec = ListedTraffic {
            conn: self.conn(&t.conn),
            ..ListedTraffic::default()
        };
        let username = t.username.as_deref().map(|u| self.span(u));
        let id = t.id.as_deref().map(|u| self.span(u));
        let h = &mut rec.has;
        put(h, has::ADD_TIME, &mut rec.add_time, t.add_time);
        put(h, has::IN, &mut rec.in_bytes, t.in_bytes);
        put(h, has::OUT, &mut rec.out_bytes, t.out_bytes);
        put(h, has::USER, &mut rec.username, username);
        put(h, has::ID, &mut rec.id, id);
        self.traffic_serials.push(t.serial);
        self.traffic.push(rec);
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
            state_serials,
            states,
            traffic_serials,
            traffic,
            connections,
            traffic_of_states_only,
            ..
        } = self;
        let mut sas: Vec<ListedSa> = state_serials
            .iter()
            .enumerate()
            .map(|(i, &serial)| ListedSa {
                serial,
                state: i as u32,
                traffic: NONE,
            })
            .collect();
        // Stable: of two state lines of one serial the first is kept.
        if !sas.is_sorted_by_key(|sa| sa.serial) {
            sas.sort_by_key(|sa| sa.serial);
        }
        sas.dedup_by_key(|sa| sa.serial);
        let listed_states = sas.len();
        for (i, &serial) in traffic_serials.iter().enumerate() {
            match sas[..listed_states].binary_search_by_key(&serial, |sa| sa.serial) {
                Ok(at) => {
                    let sa = &mut sas[at];
                    if sa.traffic == NONE {
                        sa.traffic = i as u32;
                    }
                }
                Err(_) if traffic_of_states_only => {}
                Err(_) => sas.push(ListedSa {
                    serial,
                    state: NONE,
                    traffic: i as u32,
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
            states,
            traffic,
            connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_references_are_interned_once_even_when_their_hashes_collide() {
        for collide_all in [false, true] {
            let mut b = ListingBuilder {
                collide_all,
                ..ListingBuilder::default()
            };
            let refs: Vec<ConnRef> = (0..50)
                .map(|i| ConnRef {
                    name: format!("c{}", i % 10).into(),
                    instances: vec![i / 10],
                    peer: (i % 2 == 0).then(|| format!("192.0.2.{i}").into()),
                })
                .collect();
            let ids: Vec<u32> = refs.iter().chain(&refs).map(|c| b.conn(c)).collect();
            assert_eq!(ids[..50], ids[50..], "collide_all {collide_all}");
            assert_eq!(b.conns.len(), 50);
            for (id, c) in ids.iter().zip(&refs) {
                assert_eq!(&b.conns[*id as usize], c);
            }
        }
    }
}
