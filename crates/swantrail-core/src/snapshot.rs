//! The model of one libreswan status snapshot, as the parser produces it.
//!
//! A `Snapshot` is plain data: it says what pluto printed at one moment, in
//! operator words, independent of which libreswan dialect printed it. The
//! tracker diffs two of them; nothing here performs I/O or knows about
//! events. It must never hold anything the input did not say: a value that
//! was not printed is `None`, not a guess.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

/// One parsed dump of pluto's status, possibly combined from several commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the dump was taken, in Unix seconds, if the caller knows it.
    ///
    /// The parser never sets this; sources and `replay` do, so events carry
    /// the time of the snapshot that showed the change.
    pub taken_at: Option<i64>,
    /// The same moment in Unix milliseconds, when the source knows it (a
    /// command source: the first byte pluto answered with). Pluto's audit
    /// records carry milliseconds; a record from before the listing was
    /// answered is one the listing already reflects, even within the same
    /// second (`taken_at` alone would leave it for the next poll, by then
    /// too late to link a rekey to an SA this poll found gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at_ms: Option<i64>,
    /// Which status commands contributed lines. "No states" means something
    /// only for the kinds that list states.
    pub kinds: Vec<OutputKind>,
    /// The libreswan dialect the lines were printed in, when it could be told.
    pub epoch: Option<FormatEpoch>,
    /// Whether lines carried the 3-digit `000 `/`006 ` prefix (libreswan < 5.0).
    pub prefixed: bool,
    /// pluto's version as the `status` preamble names it (`pluto_version=4.10`),
    /// so events can say which libreswan they came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pluto_version: Option<String>,
    /// `None` when the dump is whole; otherwise why it is not. The tracker
    /// never diffs an incomplete snapshot: it would look like tunnels went down.
    pub incomplete: Option<String>,
    /// The connection list (`status`, `connectionstatus`).
    pub connections: Vec<Connection>,
    /// Totals and brief-status counters.
    pub totals: Totals,
    /// IKE and Child SAs (`status`, `showstates`).
    pub states: Vec<State>,
    /// Established Child SAs as `trafficstatus` lists them.
    pub traffic: Vec<Traffic>,
    /// Bare shunts (`shuntstatus`, end of `status`).
    pub shunts: Vec<Shunt>,
    /// `key=value` counters from `globalstatus`.
    pub global: Vec<(String, String)>,
    /// The first [`MAX_DIAGNOSTICS`] lines that were not recognised, with
    /// where they were ([`Snapshot::note_diagnostic`] keeps them).
    pub diagnostics: Vec<Diagnostic>,
    /// How many more lines were not recognised than `diagnostics` lists:
    /// endless junk is counted, never held line by line. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub diagnostics_omitted: u64,
}

/// How many unrecognised lines a snapshot keeps with their text and line
/// number. The first few say what went wrong and where; a thousand more
/// like them say nothing new, and a writer of endless junk (`yes`, a log
/// file named as the dump) would otherwise grow the snapshot by a hundred
/// bytes per line of it. The rest are counted in
/// [`Snapshot::diagnostics_omitted`].
pub const MAX_DIAGNOSTICS: usize = 20;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The status command a block of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// `ipsec status` / `whack --status`: everything below, in one dump.
    Status,
    /// `ipsec trafficstatus`: one line per established Child SA.
    TrafficStatus,
    /// `ipsec showstates`: the state lines only.
    ShowStates,
    /// `whack --briefstatus`: three counter lines.
    BriefStatus,
    /// `ipsec connectionstatus` (5.0+): the connection list only.
    ConnectionStatus,
    /// `ipsec shuntstatus`: the bare shunt list.
    ShuntStatus,
    /// `whack --globalstatus`: `key=value` counters.
    GlobalStatus,
}

impl OutputKind {
    /// The kind a command word names (`trafficstatus`, `--showstates`, as in
    /// `ipsec trafficstatus` or `ipsec whack --showstates`).
    pub fn from_word(word: &str) -> Option<OutputKind> {
        match word.trim_start_matches('-').to_ascii_lowercase().as_str() {
            "status" => Some(OutputKind::Status),
            "trafficstatus" => Some(OutputKind::TrafficStatus),
            "showstates" => Some(OutputKind::ShowStates),
            "briefstatus" => Some(OutputKind::BriefStatus),
            "connectionstatus" => Some(OutputKind::ConnectionStatus),
            "shuntstatus" => Some(OutputKind::ShuntStatus),
            "globalstatus" => Some(OutputKind::GlobalStatus),
            _ => None,
        }
    }

    /// The command word of this kind, as `ipsec` takes it (for messages).
    pub fn word(self) -> &'static str {
        match self {
            OutputKind::Status => "status",
            OutputKind::TrafficStatus => "trafficstatus",
            OutputKind::ShowStates => "showstates",
            OutputKind::BriefStatus => "briefstatus",
            OutputKind::ConnectionStatus => "connectionstatus",
            OutputKind::ShuntStatus => "shuntstatus",
            OutputKind::GlobalStatus => "globalstatus",
        }
    }

    /// The kind of output a command line asks for: its last argument that
    /// names one (`["ipsec", "whack", "--ctlsocket", "X", "--trafficstatus"]`).
    pub fn of_command(argv: &[String]) -> Option<OutputKind> {
        argv.iter().rev().find_map(|a| OutputKind::from_word(a))
    }

    /// Whether output of this kind lists every IKE SA, so that an IKE SA
    /// missing from it is really gone.
    pub fn lists_ike_sas(self) -> bool {
        matches!(self, OutputKind::Status | OutputKind::ShowStates)
    }

    /// Whether output of this kind lists every established Child SA.
    pub fn lists_child_sas(self) -> bool {
        matches!(
            self,
            OutputKind::Status | OutputKind::ShowStates | OutputKind::TrafficStatus
        )
    }
}

/// The dialect epochs of docs/libreswan-format.md §0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FormatEpoch {
    /// 3.20 – 3.27: prefixed, one `EVENT_SA_*` timer, `import:` item up to 3.25.
    E1,
    /// 3.28 – 3.32: prefixed, `EVENT_SA_REKEY`/`EXPIRE` names.
    E2,
    /// 4.0 – 4.4: prefixed, `STATE_V2_ESTABLISHED_*` names.
    E3,
    /// 4.5: short timer names, still `newest IPSEC`/`isakmp#N`.
    E4,
    /// 4.6 – 4.15: ` item;` lists, `newest;`, `IKE SA #N;`.
    E5,
    /// 5.0: no prefixes, reworked connection list.
    E6,
    /// 5.1 – 5.3: IKEv2 names without `STATE_V2_`.
    E7,
    /// 5.4+: no state names, stories only.
    E8,
}

/// A short text held inline when it fits 24 bytes (a connection name, a
/// peer address, an SPI), in one heap block otherwise: a gateway holds
/// several per tunnel, and a heap block each was most of a big gateway's
/// memory. It serialises as the string it holds.
pub type Text = compact_str::CompactString;

/// A connection reference as printed: `"name"[1][2] suffix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnRef {
    /// The base connection name, without quotes.
    pub name: Text,
    /// Instance serials, outermost first (`[1][2]` for labeled IPsec).
    pub instances: Vec<u64>,
    /// The instance suffix: the peer address for road warriors, or the
    /// opaque OE `client=== ...peer===client` text. Only read after `[N]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<Text>,
}

/// A tunnel: a connection keyed by base name and peer, so that the
/// instances of a road warrior that churn (`"rw"[1]` then `"rw"[2]`) stay
/// one tunnel.
///
/// This is the one key of a tunnel: the tracker's tables and checkpoint,
/// the STATUS line's count, `show`'s rows, `report`'s rows and the
/// daemon's gauges all name tunnels with it, so that they cannot disagree
/// on what one tunnel is. An empty peer is no peer: keys that differ only
/// in that are equal.
///
/// Saved (a checkpoint's tunnel table and each SA's `tunnel`), it is the
/// string `name` U+001F `peer` checkpoints have always held; it is also
/// ordered as that string, so tables saved sorted by key and events
/// emitted in key order come out as they always did.
#[derive(Debug, Clone, Default)]
pub struct TunnelKey {
    /// The base connection name.
    pub name: Text,
    /// The instance suffix (the peer), when printed.
    pub peer: Option<Text>,
}

/// What separates the name from the peer in a saved [`TunnelKey`].
const KEY_SEPARATOR: char = '\u{1f}';

impl TunnelKey {
    /// The tunnel of the connection `name` with instance suffix `peer`.
    pub fn new(name: impl Into<Text>, peer: Option<impl Into<Text>>) -> TunnelKey {
        let peer = peer.map(Into::into).filter(|p: &Text| !p.is_empty());
        TunnelKey {
            name: name.into(),
            peer,
        }
    }

    /// The tunnel a connection reference belongs to.
    pub fn of(conn: &ConnRef) -> TunnelKey {
        TunnelKey::new(conn.name.as_str(), conn.peer.as_deref())
    }

    /// Make this the key of `conn`, reusing the key's buffers: the tracker
    /// looks a tunnel up for every listed SA at every poll, and a lookup
    /// should not cost two allocations.
    pub fn set_to(&mut self, conn: &ConnRef) {
        self.name.clear();
        self.name.push_str(&conn.name);
        match (
            conn.peer.as_deref().filter(|p| !p.is_empty()),
            &mut self.peer,
        ) {
            (Some(peer), Some(mine)) => {
                mine.clear();
                mine.push_str(peer);
            }
            (Some(peer), mine) => *mine = Some(Text::from(peer)),
            (None, mine) => *mine = None,
        }
    }

    /// The peer as saved: empty when there is none.
    fn saved_peer(&self) -> &str {
        self.peer.as_deref().unwrap_or("")
    }

    /// The bytes of the saved form, without building it.
    fn saved_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.name
            .bytes()
            .chain(std::iter::once(KEY_SEPARATOR as u8))
            .chain(self.saved_peer().bytes())
    }

    /// The key a saved string names: the name is what comes before the
    /// first U+001F.
    ///
    /// A connection name holding U+001F itself makes the string ambiguous;
    /// [`TunnelKey::resolve_saved`] settles it with the record it keys.
    pub fn from_saved(saved: &str) -> TunnelKey {
        match saved.split_once(KEY_SEPARATOR) {
            Some((name, peer)) => TunnelKey::new(name, Some(peer)),
            None => TunnelKey::new(saved, None::<String>),
        }
    }

    /// The key of `conn` if it saves as the same string as this one, else
    /// this one: a checkpoint saves a record under the key of its own
    /// connection reference, so this restores the exact key even when the
    /// name holds U+001F.
    pub fn resolve_saved(self, conn: &ConnRef) -> TunnelKey {
        let of_conn = TunnelKey::of(conn);
        if of_conn.saved_bytes().eq(self.saved_bytes()) {
            of_conn
        } else {
            self
        }
    }
}

impl PartialEq for TunnelKey {
    fn eq(&self, other: &TunnelKey) -> bool {
        self.name == other.name && self.saved_peer() == other.saved_peer()
    }
}

impl Eq for TunnelKey {}

impl std::hash::Hash for TunnelKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.saved_peer().hash(state);
    }
}

impl Ord for TunnelKey {
    /// As the saved strings compare; two keys that save alike (only when a
    /// name holds U+001F) by the length of their name.
    fn cmp(&self, other: &TunnelKey) -> std::cmp::Ordering {
        self.saved_bytes()
            .cmp(other.saved_bytes())
            .then_with(|| self.name.len().cmp(&other.name.len()))
    }
}

impl PartialOrd for TunnelKey {
    fn partial_cmp(&self, other: &TunnelKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for TunnelKey {
    /// The saved form: `name` U+001F `peer`, also what event ids hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{KEY_SEPARATOR}{}", self.name, self.saved_peer())
    }
}

impl Serialize for TunnelKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TunnelKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TunnelKey, D::Error> {
        String::deserialize(deserializer).map(|saved| TunnelKey::from_saved(&saved))
    }
}

impl ConnRef {
    /// The tunnel this connection reference belongs to.
    pub fn tunnel(&self) -> TunnelKey {
        TunnelKey::of(self)
    }

    /// The `"name"[N]` text libreswan prints, without the suffix.
    pub fn display_name(&self) -> String {
        let mut s = format!("\"{}\"", self.name);
        for i in &self.instances {
            s.push_str(&format!("[{i}]"));
        }
        s
    }
}

/// IKE protocol version of an SA or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IkeVersion {
    /// IKEv1: Main/Aggressive Mode ISAKMP SAs and Quick Mode IPsec SAs.
    #[serde(rename = "1")]
    V1,
    /// IKEv2: IKE SAs and Child SAs.
    #[serde(rename = "2")]
    V2,
}

/// Whether a state is an IKE (ISAKMP) SA or a Child (IPsec) SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaKind {
    /// IKE SA (IKEv2) or ISAKMP SA (IKEv1): the control channel.
    Ike,
    /// Child SA (IKEv2) or IPsec SA (IKEv1): the tunnel that carries traffic.
    Child,
}

/// What a timer item (`REKEY in 27944s`) will do when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerKind {
    /// Start a rekey (`REKEY`, `EVENT_SA_REKEY`).
    Rekey,
    /// Hard replacement (`REPLACE`, `EVENT_SA_REPLACE`, `*_IF_USED`).
    Replace,
    /// Superseded or not rekeyed: will be deleted (`EXPIRE`, `EVENT_SA_EXPIRE`).
    Expire,
    /// A negotiation message is in flight (`RETRANSMIT`, `TIMEOUT_*`).
    Retransmit,
    /// Liveness or DPD probing (`LIVENESS`, `DPD`, `DPD_TIMEOUT`).
    Liveness,
    /// A half-open or larval state will be dropped (`DISCARD`).
    Discard,
    /// Any other timer (`NAT_KEEPALIVE`, `CRYPTO_TIMEOUT`, `RETAIN`, …).
    Other,
}

impl TimerKind {
    /// Its name as it is serialised (`rekey`), for writers that encode the
    /// snapshot by hand and for `show`'s timer column.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Rekey => "rekey",
            TimerKind::Replace => "replace",
            TimerKind::Expire => "expire",
            TimerKind::Retransmit => "retransmit",
            TimerKind::Liveness => "liveness",
            TimerKind::Discard => "discard",
            TimerKind::Other => "other",
        }
    }
}

/// One `NAME in Ns` timer item of a state line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// What the timer will do.
    pub kind: TimerKind,
    /// The event name exactly as printed (`REKEY`, `EVENT_SA_REPLACE`).
    pub name: String,
    /// Seconds until it fires; negative when overdue. `None` when sanitized (`XXs`).
    pub due_s: Option<i64>,
}

/// One IKE or Child SA from a state line, with its SPI line and pending lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The `#N` serial, unique within one pluto run.
    pub serial: u64,
    /// The connection this SA belongs to.
    pub conn: ConnRef,
    /// The remote IKE port, when printed as a number.
    pub port: Option<u16>,
    /// IKE over TCP (`(tcp)` after the port).
    pub tcp: bool,
    /// IKE/ISAKMP SA or Child/IPsec SA, when it can be told.
    pub kind: Option<SaKind>,
    /// The IKE version, when it can be told.
    pub ike_version: Option<IkeVersion>,
    /// The state name (`STATE_V2_ESTABLISHED_CHILD_SA`); `None` from 5.4 on.
    pub name: Option<String>,
    /// The human story (`established Child SA`).
    pub story: String,
    /// Whether this SA is established (docs/libreswan-format.md §6, §12).
    pub established: bool,
    /// Timer items in print order.
    pub timers: Vec<Timer>,
    /// `newest` / `newest ISAKMP` / `newest IPSEC`: the connection's newest SA of its kind.
    pub newest: bool,
    /// `eroute owner`: this Child SA owns the kernel policy.
    pub eroute_owner: bool,
    /// The parent IKE SA of an established Child SA (`IKE SA #P`, `isakmp#P`).
    pub parent_serial: Option<u64>,
    /// The SPI line of an established Child SA (SPIs and pluto's rounded
    /// byte counters); named apart from [`Snapshot::traffic`], the
    /// trafficstatus rows, which hold the exact bytes. Still `traffic` in
    /// the `parse` JSON, which stays as it was.
    #[serde(rename = "traffic")]
    pub spi_line: Option<SpiLine>,
    /// Child SAs queued on this IKE SA (`pending Child SA for ...`).
    pub pending: Vec<Pending>,
    /// Items not otherwise modelled (`idle`, `lastdpd=...`, `nodpd`), as printed.
    pub other_items: Vec<String>,
    /// Line number (1-based) of the state line in the input.
    pub line: usize,
}

impl State {
    /// Seconds until the first timer of `kind`, if the state shows one.
    pub fn due(&self, kind: TimerKind) -> Option<i64> {
        self.timers
            .iter()
            .find(|t| t.kind == kind)
            .and_then(|t| t.due_s)
    }

    /// Whether the state shows a timer of `kind` at all (even sanitized).
    pub fn has_timer(&self, kind: TimerKind) -> bool {
        self.timers.iter().any(|t| t.kind == kind)
    }
}

/// The second line of an established Child SA: SAIDs and rounded counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpiLine {
    /// SAIDs in print order: outbound then inbound for each protocol.
    pub saids: Vec<Said>,
    /// `used Ns ago`, when printed.
    pub used_s_ago: Option<i64>,
    /// Counters (`ESPin`, `ESPout`, `ESPmax`, …) as (name, bytes); `bytes`
    /// is `None` for values that are not byte counts (`2^63B`, sanitized).
    pub counters: Vec<(String, Option<u64>)>,
    /// XAUTH username printed after the counters.
    pub username: Option<String>,
}

impl SpiLine {
    /// The inbound SPI of the first ESP or AH SAID (the one addressed to us).
    pub fn spi_in(&self) -> Option<&str> {
        self.saids
            .iter()
            .filter(|s| s.proto == "esp" || s.proto == "ah")
            .nth(1)
            .map(|s| s.spi.as_str())
    }

    /// The outbound SPI of the first ESP or AH SAID (addressed to the peer).
    pub fn spi_out(&self) -> Option<&str> {
        self.saids
            .iter()
            .find(|s| s.proto == "esp" || s.proto == "ah")
            .map(|s| s.spi.as_str())
    }

    /// A counter's value in bytes, by name (`ESPin`).
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| *v)
    }
}

/// One `proto.spi@addr` security association id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    /// `esp`, `ah`, `comp` or `tun`.
    pub proto: String,
    /// The SPI in lower-case hex as printed.
    pub spi: String,
    /// The destination address.
    pub addr: String,
}

/// A Child SA queued on an IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The connection the Child SA is for.
    pub conn: ConnRef,
    /// The serial it will replace, for a rekey.
    pub replacing: Option<u64>,
}

/// One `trafficstatus` line: an established Child SA with exact counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// The Child SA serial.
    pub serial: u64,
    /// The connection.
    pub conn: ConnRef,
    /// `ESP`, `AH`, `IPCOMP` or `UNKNOWN`, with any `(nic-offload=...)` note.
    pub sa_type: String,
    /// Kernel SA creation time in Unix seconds; `None` when 0 or sanitized.
    pub add_time: Option<u64>,
    /// Inbound bytes (32-bit wrapping before 5.0).
    pub in_bytes: Option<u64>,
    /// Outbound bytes (32-bit wrapping before 4.8).
    pub out_bytes: Option<u64>,
    /// `maxBytes=` as printed (`2^63B`, `1GiB`), 4.8+.
    pub max_bytes: Option<String>,
    /// The remote ID (`@east`, a DN, `ID_NULL`).
    pub id: Option<String>,
    /// XAUTH/EAP username; replaces `id`.
    pub username: Option<String>,
    /// Address-pool leases.
    pub leases: Vec<String>,
    /// Line number (1-based).
    pub line: usize,
}

/// One connection of the connection list, with the fields a tracker uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The connection name and instance.
    pub conn: ConnRef,
    /// The topology text of the first line (`LEFT...RIGHT`), as printed.
    pub topology: Option<String>,
    /// Local client subnet(s), from the topology.
    pub local_subnet: Option<String>,
    /// Local host address, from the topology.
    pub local_host: Option<String>,
    /// Remote host address, from the topology.
    pub remote_host: Option<String>,
    /// Remote client subnet(s), from the topology.
    pub remote_subnet: Option<String>,
    /// Routing word (`erouted`, `unrouted`, `routed-tunnel`, …).
    pub routing: Option<String>,
    /// Newest (or established) IKE/ISAKMP SA serial; `None` for `#0`.
    pub newest_ike: Option<u64>,
    /// Newest (or established) IPsec/Child SA serial; `None` for `#0`.
    pub newest_child: Option<u64>,
    /// IKE version, from the policy line or the SA wording.
    pub ike_version: Option<IkeVersion>,
    /// Negotiated IKE algorithm, when printed.
    pub ike_algorithm: Option<String>,
    /// Negotiated ESP/AH algorithm, when printed.
    pub child_algorithm: Option<String>,
    /// Connection serial (`$N`), 4.0+.
    pub conn_serial: Option<u64>,
}

/// The `Total IPsec connections` line and the brief-status counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Connections loaded.
    pub loaded: Option<u64>,
    /// Connections routed (5.3+).
    pub routed: Option<u64>,
    /// Connections active.
    pub active: Option<u64>,
    /// `IKE SAs: total(T), half-open(H), open(O), authenticated(A), anonymous(N)`.
    pub ike_sas: Vec<(String, u64)>,
    /// `IPsec SAs: total(T), authenticated(A), anonymous(N)`.
    pub ipsec_sas: Vec<(String, u64)>,
    /// `State Information: ...` text.
    pub state_information: Option<String>,
}

/// One bare shunt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shunt {
    /// The line as printed, without prefix.
    pub text: String,
}

/// A line the parser did not recognise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// 1-based line number in the input.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
    /// The line (at most 200 characters of it).
    pub text: String,
}

impl Snapshot {
    /// Record a line that was not recognised: kept (made by `diagnostic`)
    /// while fewer than [`MAX_DIAGNOSTICS`] are, else only counted, so
    /// that the snapshot of any input stays small.
    pub fn note_diagnostic(&mut self, diagnostic: impl FnOnce() -> Diagnostic) {
        if self.diagnostics.len() < MAX_DIAGNOSTICS {
            self.diagnostics.push(diagnostic());
        } else {
            self.diagnostics_omitted += 1;
        }
    }

    /// How many lines were not recognised in all: those listed in
    /// `diagnostics` and those only counted.
    pub fn diagnostic_count(&self) -> u64 {
        self.diagnostics.len() as u64 + self.diagnostics_omitted
    }

    /// Every serial a snapshot shows, with its state line and trafficstatus line.
    pub fn seen_by_serial(&self) -> BTreeMap<u64, Seen<'_>> {
        let mut map: BTreeMap<u64, Seen<'_>> = BTreeMap::new();
        for st in &self.states {
            map.entry(st.serial).or_insert(Seen {
                state: Some(st),
                traffic: None,
            });
        }
        for t in &self.traffic {
            let e = map.entry(t.serial).or_insert(Seen {
                state: None,
                traffic: None,
            });
            if e.traffic.is_none() {
                e.traffic = Some(t);
            }
        }
        map.remove(&0);
        map
    }

    /// The tunnels with an established Child SA: the one rule `show`, the
    /// tracker's events and the systemd STATUS line count tunnels by
    /// ([`Seen::kind`], [`Seen::established`], [`ConnRef::tunnel`]).
    pub fn tunnels_up(&self) -> BTreeSet<TunnelKey> {
        self.seen_by_serial()
            .values()
            .filter(|seen| seen.kind() == SaKind::Child && seen.established())
            .map(|seen| seen.conn().tunnel())
            .collect()
    }
    /// Whether this snapshot can be diffed by the tracker.
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_none()
    }

    /// Whether the snapshot lists every IKE SA (so absence means gone).
    pub fn lists_ike_sas(&self) -> bool {
        self.kinds.iter().any(|k| k.lists_ike_sas())
    }

    /// Whether the snapshot lists every established Child SA.
    pub fn lists_child_sas(&self) -> bool {
        self.kinds.iter().any(|k| k.lists_child_sas())
    }

    /// The state with this serial.
    pub fn state(&self, serial: u64) -> Option<&State> {
        self.states.iter().find(|s| s.serial == serial)
    }

    /// The traffic entry with this serial.
    pub fn traffic_of(&self, serial: u64) -> Option<&Traffic> {
        self.traffic.iter().find(|t| t.serial == serial)
    }

    /// Every serial the snapshot holds, from states and traffic entries.
    pub fn serials(&self) -> std::collections::BTreeSet<u64> {
        self.states
            .iter()
            .map(|s| s.serial)
            .chain(self.traffic.iter().map(|t| t.serial))
            .collect()
    }

    /// Combine another dump of the same moment into this one (e.g.
    /// `showstates` + `trafficstatus`). Incompleteness and diagnostics add up.
    pub fn merge(&mut self, other: Snapshot) {
        for k in other.kinds {
            if !self.kinds.contains(&k) {
                self.kinds.push(k);
            }
        }
        self.kinds.sort();
        self.epoch = self.epoch.max(other.epoch);
        self.prefixed |= other.prefixed;
        if self.pluto_version.is_none() {
            self.pluto_version = other.pluto_version;
        }
        if self.incomplete.is_none() {
            self.incomplete = other.incomplete;
        }
        // Sets of what this side holds, so that merging the dumps of a big
        // gateway is not a scan of one side per item of the other.
        let mut conns: HashSet<ConnRef> = self.connections.iter().map(|c| c.conn.clone()).collect();
        for c in other.connections {
            if !conns.contains(&c.conn) {
                conns.insert(c.conn.clone());
                self.connections.push(c);
            }
        }
        if self.totals == Totals::default() {
            self.totals = other.totals;
        }
        let mut serials: HashSet<u64> = self.states.iter().map(|s| s.serial).collect();
        for s in other.states {
            if serials.insert(s.serial) {
                self.states.push(s);
            }
        }
        let mut serials: HashSet<u64> = self.traffic.iter().map(|t| t.serial).collect();
        for t in other.traffic {
            if serials.insert(t.serial) {
                self.traffic.push(t);
            }
        }
        self.shunts.extend(other.shunts);
        self.global.extend(other.global);
        for d in other.diagnostics {
            self.note_diagnostic(|| d);
        }
        self.diagnostics_omitted += other.diagnostics_omitted;
        if self.taken_at.is_none() {
            self.taken_at = other.taken_at;
            self.taken_at_ms = other.taken_at_ms;
        }
    }
}

/// What one snapshot says about one serial: its state line and/or its
/// trafficstatus line.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The state line, from `status` / `showstates`.
    pub state: Option<&'a State>,
    /// The trafficstatus line.
    pub traffic: Option<&'a Traffic>,
}

impl<'a> Seen<'a> {
    /// IKE or Child: as the parser said, else told by what was printed.
    pub fn kind(&self) -> SaKind {
        if let Some(k) = self.state.and_then(|s| s.kind) {
            return k;
        }
        let child_signs = self.traffic.is_some()
            || self
                .state
                .is_some_and(|s| s.spi_line.is_some() || s.parent_serial.is_some());
        if child_signs {
            SaKind::Child
        } else {
            SaKind::Ike
        }
    }

    /// Whether this snapshot shows the SA established.
    pub fn established(&self) -> bool {
        self.traffic.is_some()
            || self
                .state
                .is_some_and(|s| s.established || s.spi_line.is_some())
    }

    /// The connection reference (the state line's, else trafficstatus').
    pub fn conn(&self) -> &'a ConnRef {
        match (self.state, self.traffic) {
            (Some(s), _) => &s.conn,
            (None, Some(t)) => &t.conn,
            // A Seen is only built from at least one of the two.
            (None, None) => {
                static EMPTY: std::sync::OnceLock<ConnRef> = std::sync::OnceLock::new();
                EMPTY.get_or_init(ConnRef::default)
            }
        }
    }

    /// Byte counters (in, out) and whether they are exact: trafficstatus
    /// where printed, else the rounded SPI-line counters.
    pub fn bytes(&self) -> (Option<u64>, Option<u64>, bool) {
        if let Some(t) = self.traffic {
            if t.in_bytes.is_some() || t.out_bytes.is_some() {
                return (t.in_bytes, t.out_bytes, true);
            }
        }
        if let Some(line) = self.state.and_then(|s| s.spi_line.as_ref()) {
            // Static names: this runs for every SA at every poll.
            for (name_in, name_out) in [
                ("ESPin", "ESPout"),
                ("AHin", "AHout"),
                ("IPCOMPin", "IPCOMPout"),
            ] {
                let i = line.counter(name_in);
                let o = line.counter(name_out);
                if i.is_some() || o.is_some() {
                    return (i, o, false);
                }
            }
        }
        (None, None, false)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timer_kinds_name_is_its_serialised_name() {
        use TimerKind::*;
        for kind in [Rekey, Replace, Expire, Retransmit, Liveness, Discard, Other] {
            let serialised = serde_json::to_string(&kind).expect("serialised");
            assert_eq!(serialised, format!("\"{}\"", kind.name()));
        }
    }

    use super::*;

    #[test]
    fn tunnel_keys_order_and_save_as_the_strings_checkpoints_hold() {
        let keys = [
            TunnelKey::new("rw", Some("192.0.2.9")),
            TunnelKey::new("rw-2", None::<String>),
            TunnelKey::new("rw", None::<String>),
            TunnelKey::new("rw", Some("192.0.2.10")),
            TunnelKey::new("r", Some("w")),
            TunnelKey::new("a\u{1}", None::<String>),
            TunnelKey::new("a", None::<String>),
        ];
        let mut by_key = keys.to_vec();
        by_key.sort();
        let mut by_string: Vec<String> = keys.iter().map(ToString::to_string).collect();
        by_string.sort();
        let saved: Vec<String> = by_key.iter().map(ToString::to_string).collect();
        assert_eq!(saved, by_string);
        assert_eq!(saved[1], "a\u{1f}");
        for key in &keys {
            let json = serde_json::to_string(key).expect("saved");
            assert_eq!(
                json,
                serde_json::to_string(&key.to_string()).expect("a string")
            );
            assert_eq!(
                serde_json::from_str::<TunnelKey>(&json).expect("read"),
                *key
            );
        }
    }

    #[test]
    fn an_empty_peer_is_no_peer() {
        use std::hash::BuildHasher;

        let conn = ConnRef {
            name: "rw".into(),
            instances: vec![3],
            peer: Some(Text::default()),
        };
        assert_eq!(TunnelKey::of(&conn), TunnelKey::new("rw", None::<String>));
        let mut key = TunnelKey::new("other", Some("192.0.2.1"));
        key.set_to(&conn);
        assert_eq!(key, TunnelKey::of(&conn));
        assert_eq!(key.peer, None);
        let spelled_out = TunnelKey {
            name: "rw".into(),
            peer: Some(Text::default()),
        };
        assert_eq!(spelled_out, key);
        assert_eq!(spelled_out.cmp(&key), std::cmp::Ordering::Equal);
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&spelled_out), hasher.hash_one(&key));
    }

    #[test]
    fn a_saved_key_is_settled_by_its_records_connection() {
        let conn = ConnRef {
            name: "a\u{1f}b".into(),
            instances: Vec::new(),
            peer: Some("192.0.2.1".into()),
        };
        let saved = TunnelKey::of(&conn).to_string();
        let read = TunnelKey::from_saved(&saved);
        assert_eq!(read.name, "a", "the string alone cannot tell");
        assert_eq!(read.resolve_saved(&conn), TunnelKey::of(&conn));
        let other = ConnRef {
            name: "a".to_string().into(),
            ..conn.clone()
        };
        let kept = TunnelKey::from_saved(&saved).resolve_saved(&other);
        assert_eq!(kept, TunnelKey::from_saved(&saved));
    }
}
