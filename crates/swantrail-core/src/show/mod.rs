//! What `swantrail show` says about a snapshot: tunnels, negotiations, totals.
//!
//! The pure function [`tunnel_table`] turns a snapshot into rows, and
//! [`render()`] (in `render.rs`) turns rows into text, so what a row says is tested apart from
//! terminals and colours; the command itself lives in `cli::show`. This
//! module presents what the parser found; it must never guess a value the
//! dump did not print (unknown is shown as `-`), and never print.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::snapshot::{
    ConnRef, Connection, IkeVersion, SaKind, Seen, Snapshot, State, TimerKind, Traffic,
};
use crate::work;

mod render;

pub use render::{RenderOptions, render};

/// Everything `show` prints, as values: the tunnels, the negotiations, the totals.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelTable {
    /// One row per connection instance with an established Child SA.
    pub tunnels: Vec<TunnelRow>,
    /// SAs that are not (or not fully) up: half-open IKE SAs, larval Child
    /// SAs, and established IKE SAs whose connection has no Child SA.
    pub negotiations: Vec<NegotiationRow>,
    /// The totals line.
    pub summary: Summary,
}

/// A tunnel: a connection instance carrying traffic through its newest Child SA.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelRow {
    /// The connection and instance (`"rw"[3]`), without quotes when rendered.
    pub conn: ConnRef,
    /// The peer address: the instance suffix, else the connection's remote host.
    pub peer: Option<String>,
    /// IKE version of the Child SA or its connection.
    pub ike_version: Option<IkeVersion>,
    /// Up, or up while a replacement Child SA is being negotiated.
    pub state: TunnelState,
    /// The parent IKE SA serial.
    pub ike_serial: Option<u64>,
    /// The newest established Child SA serial.
    pub child_serial: u64,
    /// Kernel SA creation time (trafficstatus `add_time`), Unix seconds.
    pub established_since: Option<u64>,
    /// When the Child SA will be rekeyed (REKEY timer, else REPLACE).
    pub next_rekey: Option<Due>,
    /// Bytes received through the Child SA.
    pub bytes_in: Option<ByteCount>,
    /// Bytes sent through the Child SA.
    pub bytes_out: Option<ByteCount>,
    /// The remote ID, or the XAUTH/EAP user.
    pub remote: Option<Remote>,
}

/// What a tunnel is doing, in the words an operator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelState {
    /// Established and nothing pending.
    Up,
    /// Established, and a replacement Child SA is being negotiated.
    Rekeying,
}

impl TunnelState {
    /// The plain word printed in the STATE column.
    pub fn word(self) -> &'static str {
        match self {
            TunnelState::Up => "up",
            TunnelState::Rekeying => "rekeying",
        }
    }
}

/// When a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// In this many seconds (negative when overdue).
    In(i64),
    /// The dump had the timer but hid its value (`XXs`).
    Hidden,
}

/// A byte counter and whether it is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteCount {
    /// The number of bytes.
    pub bytes: u64,
    /// `true` from trafficstatus; `false` from the rounded SPI-line counters (`20KB`).
    pub exact: bool,
}

/// Who is at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The remote IKE identity (`@east`, a DN).
    Id(String),
    /// The XAUTH/EAP user name.
    User(String),
}

/// An SA on its way up, or an IKE SA without a tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct NegotiationRow {
    /// The connection and instance.
    pub conn: ConnRef,
    /// The peer address, as for tunnels.
    pub peer: Option<String>,
    /// IKE version.
    pub ike_version: Option<IkeVersion>,
    /// The state serial.
    pub serial: u64,
    /// What kind of not-up this is.
    pub state: NegotiationState,
    /// pluto's own words for the state (`sent IKE_SA_INIT request`).
    pub story: String,
    /// The first timer of the state: what happens next and when.
    pub next: Option<(TimerKind, Due)>,
}

/// The plain-words state of a negotiation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationState {
    /// A new IKE or Child SA is being negotiated.
    Negotiating,
    /// A replacement Child SA for a tunnel that is up.
    Rekeying,
    /// The IKE SA is established but its connection has no Child SA.
    IkeOnly,
}

impl NegotiationState {
    /// The plain words printed in the STATE column.
    pub fn word(self) -> &'static str {
        match self {
            NegotiationState::Negotiating => "negotiating",
            NegotiationState::Rekeying => "rekeying",
            NegotiationState::IkeOnly => "ike only",
        }
    }
}

/// The totals line: our counts, then pluto's own where it printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tunnel rows.
    pub tunnels: usize,
    /// Negotiation rows that are negotiating or rekeying.
    pub negotiating: usize,
    /// Negotiation rows that are IKE SAs without a tunnel.
    pub ike_only: usize,
    /// `Total IPsec connections: loaded N`.
    pub loaded: Option<u64>,
    /// `Total IPsec connections: ... active M`.
    pub active: Option<u64>,
    /// `IKE SAs: total(T)`.
    pub ike_sas: Option<u64>,
    /// `IKE SAs: ... half-open(H)`.
    pub half_open: Option<u64>,
    /// `IPsec SAs: total(T)`.
    pub ipsec_sas: Option<u64>,
}

/// A connection instance, ignoring the peer suffix (lines of one instance
/// agree on it, but trafficstatus and state lines may differ in detail).
/// Borrowed from the snapshot: it is built for every state of a dump.
///
/// Not a tunnel key: `show` has a row per instance, and the connection list
/// and pending lines it joins to states name instances. The tunnel a row
/// belongs to is its connection's [`crate::snapshot::TunnelKey`], the
/// tracker's and the STATUS line's.
type InstanceKey<'a> = (&'a str, &'a [u64]);

fn key_of(conn: &ConnRef) -> InstanceKey<'_> {
    (conn.name.as_str(), conn.instances.as_slice())
}

/// Whether a state is a Child SA: by its kind, else by its SPI line.
fn is_child(state: &State) -> bool {
    match state.kind {
        Some(kind) => kind == SaKind::Child,
        None => state.spi_line.is_some(),
    }
}

/// Whether a state is an IKE SA (an unknown kind without an SPI line counts).
fn is_ike(state: &State) -> bool {
    match state.kind {
        Some(kind) => kind == SaKind::Ike,
        None => state.spi_line.is_none(),
    }
}

/// What the rows look up per tunnel and per state, indexed once: a dump of
/// a big gateway has tens of thousands of each, and scanning the snapshot
/// for every row made `show` quadratic.
struct Lookup<'a> {
    /// The first state line of each serial.
    states: HashMap<u64, &'a State>,
    /// The first trafficstatus line of each serial.
    traffic: HashMap<u64, &'a Traffic>,
    /// The first connection-list entry of each instance.
    connections: HashMap<InstanceKey<'a>, &'a Connection>,
    /// Instances negotiating a replacement Child SA.
    rekeying: HashSet<InstanceKey<'a>>,
    /// The highest established IKE SA serial of each instance.
    newest_ike: HashMap<InstanceKey<'a>, u64>,
}

impl<'a> Lookup<'a> {
    fn new(snapshot: &'a Snapshot) -> Lookup<'a> {
        let mut lookup = Lookup {
            states: HashMap::with_capacity(snapshot.states.len()),
            traffic: HashMap::with_capacity(snapshot.traffic.len()),
            connections: HashMap::with_capacity(snapshot.connections.len()),
            rekeying: HashSet::new(),
            newest_ike: HashMap::new(),
        };
        for s in &snapshot.states {
            work::count(1);
            lookup.states.entry(s.serial).or_insert(s);
            if !s.established && is_child(s) {
                lookup.rekeying.insert(key_of(&s.conn));
            }
            for p in s.pending.iter().filter(|p| p.replacing.is_some()) {
                lookup.rekeying.insert(key_of(&p.conn));
            }
            if s.established && is_ike(s) {
                let newest = lookup.newest_ike.entry(key_of(&s.conn)).or_insert(s.serial);
                *newest = (*newest).max(s.serial);
            }
        }
        for t in &snapshot.traffic {
            work::count(1);
            lookup.traffic.entry(t.serial).or_insert(t);
        }
        for c in &snapshot.connections {
            work::count(1);
            lookup.connections.entry(key_of(&c.conn)).or_insert(c);
        }
        lookup
    }

    fn state(&self, serial: u64) -> Option<&'a State> {
        work::count(1);
        self.states.get(&serial).copied()
    }

    fn traffic(&self, serial: u64) -> Option<&'a Traffic> {
        work::count(1);
        self.traffic.get(&serial).copied()
    }

    /// The connection-list entry of an instance, when the dump has one.
    fn connection(&self, key: &InstanceKey<'a>) -> Option<&'a Connection> {
        work::count(1);
        self.connections.get(key).copied()
    }
}

/// Turn a snapshot into the rows `show` prints. Pure: no I/O, no clock.
///
/// A tunnel is a connection instance with an established Child SA, in
/// `states` or (for a trafficstatus-only dump) in `traffic`; its row shows
/// the newest one. Everything not established becomes a negotiation row,
/// as does an established IKE SA whose connection has no tunnel.
pub fn tunnel_table(snapshot: &Snapshot) -> TunnelTable {
    let lookup = Lookup::new(snapshot);
    let children = established_children(snapshot, &lookup);
    let tunnels = tunnel_rows(&lookup, &children);
    let negotiations = negotiation_rows(snapshot, &lookup, &children);
    let summary = summary(snapshot, &tunnels, &negotiations);
    TunnelTable {
        tunnels,
        negotiations,
        summary,
    }
}

/// The established Child SAs of every connection instance: from the states,
/// then any serial only trafficstatus knows.
fn established_children<'a>(
    snapshot: &'a Snapshot,
    lookup: &Lookup<'a>,
) -> BTreeMap<InstanceKey<'a>, Vec<u64>> {
    let mut children: BTreeMap<InstanceKey<'a>, Vec<u64>> = BTreeMap::new();
    for state in snapshot
        .states
        .iter()
        .filter(|s| s.established && is_child(s))
    {
        children
            .entry(key_of(&state.conn))
            .or_default()
            .push(state.serial);
    }
    for traffic in &snapshot.traffic {
        if lookup.state(traffic.serial).is_none() {
            children
                .entry(key_of(&traffic.conn))
                .or_default()
                .push(traffic.serial);
        }
    }

    children
}

/// One row per instance with an established Child SA, showing the newest.
fn tunnel_rows<'a>(
    lookup: &Lookup<'a>,
    children: &BTreeMap<InstanceKey<'a>, Vec<u64>>,
) -> Vec<TunnelRow> {
    let mut tunnels = Vec::with_capacity(children.len());
    for (key, serials) in children {
        let conn_entry = lookup.connection(key);
        let child_serial = newest_child(lookup, serials, conn_entry.and_then(|c| c.newest_child));
        let state = lookup.state(child_serial);
        let traffic = lookup.traffic(child_serial);
        let conn = state
            .map(|s| s.conn.clone())
            .or_else(|| traffic.map(|t| t.conn.clone()))
            .unwrap_or_else(|| ConnRef {
                name: key.0.into(),
                instances: key.1.to_vec(),
                peer: None,
            });
        let ike_serial = state
            .and_then(|s| s.parent_serial)
            .or_else(|| conn_entry.and_then(|c| c.newest_ike))
            .or_else(|| lookup.newest_ike.get(key).copied());
        let ike_version = state
            .and_then(|s| s.ike_version)
            .or_else(|| conn_entry.and_then(|c| c.ike_version))
            .or_else(|| ike_serial.and_then(|p| lookup.state(p)?.ike_version));
        let spi = state.and_then(|s| s.spi_line.as_ref());
        // The snapshot's one rule (also the ledger's): trafficstatus where
        // printed, else the rounded SPI-line counters.
        let (bytes_in, bytes_out, exact) = Seen { state, traffic }.bytes();
        let counted = |bytes: Option<u64>| bytes.map(|bytes| ByteCount { bytes, exact });
        let remote = traffic
            .and_then(|t| {
                t.username
                    .clone()
                    .map(Remote::User)
                    .or_else(|| t.id.clone().map(Remote::Id))
            })
            .or_else(|| spi.and_then(|l| l.username.clone()).map(Remote::User))
            .or_else(|| {
                conn_entry
                    .and_then(|c| c.topology.as_deref())
                    .and_then(remote_id_from_topology)
                    .map(Remote::Id)
            });
        tunnels.push(TunnelRow {
            peer: conn
                .peer
                .as_deref()
                .map(String::from)
                .or_else(|| conn_entry.and_then(|c| c.remote_host.clone())),
            conn,
            ike_version,
            state: if lookup.rekeying.contains(key) {
                TunnelState::Rekeying
            } else {
                TunnelState::Up
            },
            ike_serial,
            child_serial,
            established_since: traffic.and_then(|t| t.add_time),
            next_rekey: state.and_then(|s| {
                due_of(s, TimerKind::Rekey).or_else(|| due_of(s, TimerKind::Replace))
            }),
            bytes_in: counted(bytes_in),
            bytes_out: counted(bytes_out),
            remote,
        });
    }

    tunnels
}

/// Everything not established, and established IKE SAs without a tunnel.
fn negotiation_rows<'a>(
    snapshot: &'a Snapshot,
    lookup: &Lookup<'a>,
    children: &BTreeMap<InstanceKey<'a>, Vec<u64>>,
) -> Vec<NegotiationRow> {
    let mut negotiations: Vec<NegotiationRow> = snapshot
        .states
        .iter()
        .filter_map(|s| {
            let key = key_of(&s.conn);
            let state = if !s.established {
                if is_child(s) && children.contains_key(&key) {
                    NegotiationState::Rekeying
                } else {
                    NegotiationState::Negotiating
                }
            } else if is_ike(s) && !children.contains_key(&key) {
                NegotiationState::IkeOnly
            } else {
                return None;
            };
            let conn_entry = lookup.connection(&key);
            Some(NegotiationRow {
                conn: s.conn.clone(),
                peer: s
                    .conn
                    .peer
                    .as_deref()
                    .map(String::from)
                    .or_else(|| conn_entry.and_then(|c| c.remote_host.clone())),
                ike_version: s
                    .ike_version
                    .or_else(|| conn_entry.and_then(|c| c.ike_version)),
                serial: s.serial,
                state,
                story: s.story.clone(),
                next: s
                    .timers
                    .first()
                    .map(|t| (t.kind, t.due_s.map_or(Due::Hidden, Due::In))),
            })
        })
        .collect();
    negotiations.sort_by(|a, b| (&a.conn, a.serial).cmp(&(&b.conn, b.serial)));

    negotiations
}

/// The totals line: what the rows count and what pluto's totals say.
fn summary(snapshot: &Snapshot, tunnels: &[TunnelRow], negotiations: &[NegotiationRow]) -> Summary {
    let count =
        |name: &str, list: &[(String, u64)]| list.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let totals = &snapshot.totals;
    Summary {
        tunnels: tunnels.len(),
        negotiating: negotiations
            .iter()
            .filter(|n| n.state != NegotiationState::IkeOnly)
            .count(),
        ike_only: negotiations
            .iter()
            .filter(|n| n.state == NegotiationState::IkeOnly)
            .count(),
        loaded: totals.loaded,
        active: totals.active,
        ike_sas: count("total", &totals.ike_sas),
        half_open: count("half-open", &totals.ike_sas),
        ipsec_sas: count("total", &totals.ipsec_sas),
    }
}

/// The Child SA a tunnel row shows: the one the connection list calls
/// newest, else the one flagged `newest`, else the highest serial.
fn newest_child(lookup: &Lookup<'_>, serials: &[u64], listed: Option<u64>) -> u64 {
    if let Some(listed) = listed.filter(|s| serials.contains(s)) {
        return listed;
    }
    let flagged = serials
        .iter()
        .copied()
        .filter(|&s| lookup.state(s).is_some_and(|st| st.newest))
        .max();
    flagged
        .or_else(|| serials.iter().copied().max())
        .unwrap_or_default()
}

fn due_of(state: &State, kind: TimerKind) -> Option<Due> {
    state
        .has_timer(kind)
        .then(|| state.due(kind).map_or(Due::Hidden, Due::In))
}

/// The remote ID in a connection's topology (`...HOST[@east]===...`), for
/// dumps without trafficstatus. Only the bracket right after the remote host.
fn remote_id_from_topology(topology: &str) -> Option<String> {
    let remote = &topology[topology.rfind("...")? + 3..];
    let open = remote.find('[')?;
    // The host ends at the bracket: no `===`, `;` or space may come first.
    if remote[..open].contains(['=', ';', ' ']) {
        return None;
    }
    let inner = &remote[open + 1..];
    let close = inner.find("]===").or_else(|| inner.rfind(']'))?;
    let id = &inner[..close];
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Connection, SpiLine, Timer, Totals, Traffic};

    fn conn(name: &str) -> ConnRef {
        ConnRef {
            name: name.into(),
            instances: vec![],
            peer: None,
        }
    }

    fn timer(kind: TimerKind, name: &str, due: i64) -> Timer {
        Timer {
            kind,
            name: name.into(),
            due_s: Some(due),
        }
    }

    fn state(serial: u64, name: &str, kind: SaKind, established: bool) -> State {
        State {
            serial,
            conn: conn(name),
            port: Some(500),
            tcp: false,
            kind: Some(kind),
            ike_version: Some(IkeVersion::V2),
            name: None,
            story: if established {
                format!("established {kind:?} SA")
            } else {
                "sent IKE_SA_INIT request".into()
            },
            established,
            timers: vec![],
            newest: false,
            eroute_owner: false,
            parent_serial: None,
            spi_line: None,
            pending: vec![],
            other_items: vec![],
            line: serial as usize,
        }
    }

    fn spi(esp_in: u64, esp_out: u64) -> SpiLine {
        SpiLine {
            counters: vec![
                ("ESPin".into(), Some(esp_in)),
                ("ESPout".into(), Some(esp_out)),
                ("ESPmax".into(), None),
            ],
            ..SpiLine::default()
        }
    }

    pub(super) fn traffic(serial: u64, name: &str, add_time: u64, bytes: u64) -> Traffic {
        Traffic {
            serial,
            conn: conn(name),
            sa_type: "ESP".into(),
            add_time: Some(add_time),
            in_bytes: Some(bytes),
            out_bytes: Some(bytes + 1),
            max_bytes: Some("2^63B".into()),
            id: Some(format!("@peer-of-{name}")),
            username: None,
            leases: vec![],
            line: serial as usize,
        }
    }

    /// A rekeyed IKEv2 tunnel (old child #2 expiring, new #4 newest), one
    /// half-open negotiation and one IKE SA without a child.
    pub(super) fn rekeyed_snapshot() -> Snapshot {
        let mut ike = state(1, "tun", SaKind::Ike, true);
        ike.newest = true;
        let mut old = state(2, "tun", SaKind::Child, true);
        old.parent_serial = Some(1);
        old.timers = vec![timer(TimerKind::Expire, "EXPIRE", 10)];
        old.spi_line = Some(spi(1000, 1000));
        let mut new = state(4, "tun", SaKind::Child, true);
        new.parent_serial = Some(1);
        new.newest = true;
        new.timers = vec![
            timer(TimerKind::Liveness, "LIVENESS", 4),
            timer(TimerKind::Rekey, "REKEY", 27908),
            timer(TimerKind::Replace, "REPLACE", 28680),
        ];
        new.spi_line = Some(spi(20 * 1024, 20 * 1024));
        let mut dead = state(5, "dead", SaKind::Ike, false);
        dead.timers = vec![timer(TimerKind::Retransmit, "RETRANSMIT", 7)];
        let lonely = state(6, "lonely", SaKind::Ike, true);
        Snapshot {
            states: vec![ike, old, new, dead, lonely],
            connections: vec![Connection {
                conn: conn("tun"),
                topology: Some(
                    "10.0.0.0/28===192.0.2.1[@west]...192.0.2.2[@east]===10.0.1.0/28".into(),
                ),
                remote_host: Some("192.0.2.2".into()),
                newest_ike: Some(1),
                newest_child: Some(4),
                ike_version: Some(IkeVersion::V2),
                ..Connection::default()
            }],
            totals: Totals {
                loaded: Some(3),
                active: Some(1),
                ike_sas: vec![("total".into(), 3), ("half-open".into(), 1)],
                ipsec_sas: vec![("total".into(), 2)],
                ..Totals::default()
            },
            ..Snapshot::default()
        }
    }

    #[test]
    fn tunnel_row_shows_the_newest_child_with_its_parent_and_rekey_timer() {
        let table = tunnel_table(&rekeyed_snapshot());
        assert_eq!(table.tunnels.len(), 1);
        let row = &table.tunnels[0];
        assert_eq!(row.conn.name, "tun");
        assert_eq!(row.child_serial, 4);
        assert_eq!(row.ike_serial, Some(1));
        assert_eq!(row.state, TunnelState::Up);
        assert_eq!(row.next_rekey, Some(Due::In(27908)));
        assert_eq!(row.peer.as_deref(), Some("192.0.2.2"));
        assert_eq!(row.ike_version, Some(IkeVersion::V2));
    }

    #[test]
    fn without_trafficstatus_bytes_come_rounded_from_the_spi_line() {
        let row = &tunnel_table(&rekeyed_snapshot()).tunnels[0];
        let approx = Some(ByteCount {
            bytes: 20 * 1024,
            exact: false,
        });
        assert_eq!(row.bytes_in, approx);
        assert_eq!(row.bytes_out, approx);
        assert_eq!(row.established_since, None);
        assert_eq!(row.remote, Some(Remote::Id("@east".into())));
    }

    #[test]
    fn trafficstatus_gives_exact_bytes_add_time_and_id() {
        let mut snap = rekeyed_snapshot();
        snap.traffic = vec![traffic(4, "tun", 1_795_857_783, 21120)];
        let row = &tunnel_table(&snap).tunnels[0];
        assert_eq!(
            row.bytes_in,
            Some(ByteCount {
                bytes: 21120,
                exact: true
            })
        );
        assert_eq!(row.bytes_out.map(|b| b.bytes), Some(21121));
        assert_eq!(row.established_since, Some(1_795_857_783));
        assert_eq!(row.remote, Some(Remote::Id("@peer-of-tun".into())));
    }

    #[test]
    fn trafficstatus_only_dump_makes_one_row_per_connection_with_highest_serial() {
        let snap = Snapshot {
            traffic: vec![
                traffic(32, "v1-tun", 100, 5808),
                traffic(34, "v1-tun", 200, 3168),
                traffic(21, "v2-tun", 50, 21120),
            ],
            ..Snapshot::default()
        };
        let table = tunnel_table(&snap);
        let rows: Vec<(&str, u64, Option<u64>)> = table
            .tunnels
            .iter()
            .map(|r| (r.conn.name.as_str(), r.child_serial, r.ike_serial))
            .collect();
        assert_eq!(rows, vec![("v1-tun", 34, None), ("v2-tun", 21, None)]);
        assert!(table.negotiations.is_empty());
        assert_eq!(table.summary.tunnels, 2);
        assert_eq!(table.summary.loaded, None);
    }

    #[test]
    fn half_open_and_childless_ike_sas_are_negotiations() {
        let table = tunnel_table(&rekeyed_snapshot());
        let rows: Vec<(&str, u64, NegotiationState)> = table
            .negotiations
            .iter()
            .map(|n| (n.conn.name.as_str(), n.serial, n.state))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("dead", 5, NegotiationState::Negotiating),
                ("lonely", 6, NegotiationState::IkeOnly),
            ]
        );
        assert_eq!(
            table.negotiations[0].next,
            Some((TimerKind::Retransmit, Due::In(7)))
        );
        assert_eq!(table.negotiations[0].story, "sent IKE_SA_INIT request");
    }

    #[test]
    fn larval_child_of_an_up_tunnel_marks_it_rekeying() {
        let mut snap = rekeyed_snapshot();
        let mut larval = state(7, "tun", SaKind::Child, false);
        larval.story = "sent CREATE_CHILD_SA request for new IPsec SA".into();
        snap.states.push(larval);
        let table = tunnel_table(&snap);
        assert_eq!(table.tunnels[0].state, TunnelState::Rekeying);
        let larval_row = table.negotiations.iter().find(|n| n.serial == 7).unwrap();
        assert_eq!(larval_row.state, NegotiationState::Rekeying);
    }

    #[test]
    fn summary_counts_rows_and_copies_plutos_totals() {
        let summary = tunnel_table(&rekeyed_snapshot()).summary;
        assert_eq!(
            summary,
            Summary {
                tunnels: 1,
                negotiating: 1,
                ike_only: 1,
                loaded: Some(3),
                active: Some(1),
                ike_sas: Some(3),
                half_open: Some(1),
                ipsec_sas: Some(2),
            }
        );
    }

    #[test]
    fn remote_id_is_read_from_the_topology_remote_side() {
        assert_eq!(
            remote_id_from_topology(
                "10.0.0.0/28===192.0.2.1[@west]...192.0.2.2[@east]===10.0.1.0/28"
            ),
            Some("@east".into())
        );
        assert_eq!(
            remote_id_from_topology("192.0.2.1[C=CA, CN=west]...192.0.2.2[C=CA, CN=east]"),
            Some("C=CA, CN=east".into())
        );
        assert_eq!(
            remote_id_from_topology("192.0.2.1...192.0.2.2===10.0.1.0/28"),
            None
        );
    }
}
