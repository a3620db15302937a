//! Synthetic libreswan status output of any size, for benchmarks and tests.
//!
//! Real dumps are small (the lab has five connections); a gateway with
//! thousands of tunnels is what the parser, the tracker and `show` must be
//! fast on. This module writes such output from templates copied from real
//! output (the 4.10 lab capture, libreswan's own 5.0, 5.3 and 5.4 test
//! transcripts in the corpus), in every epoch the field runs: 4.x with
//! `000 `/`006 ` prefixes, 5.0 unprefixed with `STATE_V2_` names, 5.1–5.3
//! with short IKEv2 names, 5.4+ with stories only. It writes `status`,
//! `showstates` and `trafficstatus`, and [`Series`] turns a gateway into
//! successive snapshots with a given share of rekeys, new tunnels,
//! deletions and half-open negotiations per step. It covers the connection
//! list (with road-warrior templates and instances), totals, briefstatus,
//! established IKE and Child SAs with SPI lines, just-rekeyed tunnels whose
//! old Child SA is expiring, and half-open negotiations with pending Child
//! SAs. It is deterministic (the same arguments give the same text) and is
//! compiled only with the dev-only `synth` feature: it must never be used
//! for anything but tests, benchmarks and the scale examples.

/// Which libreswan output dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// libreswan 4.x (4.10, Debian 12): `000 ` prefixes, state names, `newest IKE SA: #N`.
    V4_10,
    /// libreswan 5.0: no prefixes, `STATE_V2_` names, the reworked connection list.
    V5_0,
    /// libreswan 5.1–5.3: IKEv2 state names without `STATE_V2_`, `routed N` in the totals.
    V5_3,
    /// libreswan 5.4+: no prefixes, stories only, `routing: ...; established ... SA: #N`.
    V5_4,
}

impl Dialect {
    /// Every dialect, oldest first: for tests and benches that cover all epochs.
    pub const ALL: [Dialect; 4] = [Dialect::V4_10, Dialect::V5_0, Dialect::V5_3, Dialect::V5_4];

    /// A short label for bench and file names (`4.10`, `5.4`).
    pub fn label(self) -> &'static str {
        match self {
            Dialect::V4_10 => "4.10",
            Dialect::V5_0 => "5.0",
            Dialect::V5_3 => "5.3",
            Dialect::V5_4 => "5.4",
        }
    }

    /// The dialect a label names (`4.10`, `5.0`, `5.3`, `5.4`).
    pub fn from_label(label: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.label() == label)
    }

    fn family(self) -> Family {
        match self {
            Dialect::V4_10 => Family::Four,
            _ => Family::Five,
        }
    }
}

/// The connection-list layout: 4.x or the 5.x rework.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Four,
    Five,
}

/// Which status command's output to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `ipsec status`: everything, connection list included.
    Status,
    /// `ipsec showstates`: the state lines only.
    ShowStates,
    /// `ipsec trafficstatus`: one line per established Child SA.
    TrafficStatus,
}

/// A generated dump and what a correct parser must find in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthDump {
    /// The dump text.
    pub text: String,
    /// Connection groups in the connection list (templates and instances).
    pub connections: usize,
    /// State lines (IKE SAs, Child SAs, half-open SAs).
    pub states: usize,
    /// Connection instances with an established Child SA.
    pub tunnels: usize,
    /// IKE SAs still negotiating.
    pub half_open: usize,
}

/// What tunnel `i` of the dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// IKEv2 tunnel, one Child SA.
    V2,
    /// IKEv2 tunnel just rekeyed: the old Child SA waits for EXPIRE.
    V2Rekeyed,
    /// IKEv1 tunnel (ISAKMP SA + IPsec SA).
    V1,
    /// IKEv2 road warrior: a template plus instance `[1]` with the peer suffix.
    RoadWarrior,
    /// IKEv2 peer that never answers: a half-open IKE SA with a pending Child SA.
    DeadV2,
    /// IKEv1 peer that never answers.
    DeadV1,
}

fn shape(i: usize) -> Shape {
    match i % 20 {
        9 => Shape::DeadV2,
        19 => Shape::DeadV1,
        3 | 13 => Shape::V2Rekeyed,
        1 | 5 | 11 | 15 => Shape::V1,
        7 => Shape::RoadWarrior,
        _ => Shape::V2,
    }
}

/// Serials of one tunnel's states, allocated in negotiation order.
#[derive(Debug, Clone)]
struct Serials {
    ike: u64,
    old_child: Option<u64>,
    child: Option<u64>,
}

/// Everything the templates need about one tunnel.
#[derive(Debug, Clone)]
struct Tunnel {
    /// Its number: names it and seeds its timers and counters.
    id: usize,
    name: String,
    /// `[1]` for road-warrior instances.
    instance: &'static str,
    /// The peer suffix printed after `[1]` in state lines.
    suffix: String,
    peer: String,
    local_subnet: String,
    remote_subnet: String,
    shape: Shape,
    serials: Serials,
    conn_serial: u64,
}

impl Tunnel {
    fn ikev1(&self) -> bool {
        matches!(self.shape, Shape::V1 | Shape::DeadV1)
    }

    fn dead(&self) -> bool {
        matches!(self.shape, Shape::DeadV2 | Shape::DeadV1)
    }

    /// `"name"` or `"name"[1] 10.0.0.7` as state lines print it.
    fn conn_ref(&self) -> String {
        format!("\"{}\"{}{}", self.name, self.instance, self.suffix)
    }
}

const LOCAL: &str = "192.0.2.1";

/// A gateway's tunnels and pluto's counters: what every dump of it prints.
#[derive(Debug, Clone)]
pub struct Gateway {
    tunnels: Vec<Tunnel>,
    next_serial: u64,
    next_conn_serial: u64,
    next_id: usize,
    /// Steps taken; the byte counters grow with it.
    step: u64,
}

impl Gateway {
    /// A gateway with `tunnels` connections: one in ten a dead peer
    /// (half-open), one in ten just rekeyed, one in five IKEv1 and one in
    /// twenty a road-warrior instance.
    pub fn new(tunnels: usize) -> Gateway {
        let mut gw = Gateway {
            tunnels: Vec::with_capacity(tunnels),
            next_serial: 1,
            next_conn_serial: 1,
            next_id: 0,
            step: 0,
        };
        for _ in 0..tunnels {
            let id = gw.next_id;
            gw.add(shape(id));
        }
        gw
    }

    fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    /// Add the next tunnel, of `shape`, with fresh serials.
    fn add(&mut self, shape: Shape) {
        let i = self.next_id;
        self.next_id += 1;
        let serials = match shape {
            Shape::DeadV1 | Shape::DeadV2 => Serials {
                ike: self.serial(),
                old_child: None,
                child: None,
            },
            Shape::V2Rekeyed => {
                let ike = self.serial();
                let old = self.serial();
                Serials {
                    ike,
                    old_child: Some(old),
                    child: Some(self.serial()),
                }
            }
            _ => {
                let ike = self.serial();
                Serials {
                    ike,
                    old_child: None,
                    child: Some(self.serial()),
                }
            }
        };
        let (a, b, c) = ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        let peer = format!("10.{a}.{b}.{c}");
        let rw = shape == Shape::RoadWarrior;
        if rw {
            self.next_conn_serial += 1; // the template
        }
        let conn_serial = self.next_conn_serial;
        self.next_conn_serial += 1;
        self.tunnels.push(Tunnel {
            id: i,
            name: format!(
                "c{i:06}-{}",
                match shape {
                    Shape::V1 => "v1",
                    Shape::V2 | Shape::V2Rekeyed => "v2",
                    Shape::RoadWarrior => "rw",
                    Shape::DeadV1 | Shape::DeadV2 => "dead",
                }
            ),
            instance: if rw { "[1]" } else { "" },
            suffix: if rw {
                format!(" {peer}")
            } else {
                String::new()
            },
            peer,
            local_subnet: format!("172.{}.{b}.{c}/32", 16 + a % 16),
            remote_subnet: format!("100.{}.{b}.{c}/32", 64 + a % 64),
            shape,
            serials,
            conn_serial,
        });
    }

    /// Tunnels with an established Child SA.
    pub fn tunnels_up(&self) -> usize {
        self.tunnels.iter().filter(|t| !t.dead()).count()
    }

    /// The output of one status command in `dialect`.
    pub fn dump(&self, dialect: Dialect, output: Output) -> SynthDump {
        match output {
            Output::Status => self.status(dialect),
            Output::ShowStates => self.showstates(dialect),
            Output::TrafficStatus => self.trafficstatus(dialect),
        }
    }

    fn status(&self, dialect: Dialect) -> SynthDump {
        let list = &self.tunnels;
        let prefix = prefix(dialect);
        let mut out = String::with_capacity(list.len() * 2600 + 4096);
        let mut line = |text: &str| {
            out.push_str(prefix);
            out.push_str(text);
            out.push('\n');
        };
        // Every dialect separates sections with a line holding one space.
        let blank = " ";

        for text in chatter(dialect) {
            line(text);
        }
        line("Connection list:");
        line(blank);
        let mut connections = 0;
        for t in list {
            if t.shape == Shape::RoadWarrior {
                for text in template_group(t, dialect) {
                    line(&text);
                }
                connections += 1;
            }
            for text in connection_group(t, dialect) {
                line(&text);
            }
            connections += 1;
        }
        line(blank);
        let up = self.tunnels_up();
        let half_open = list.len() - up;
        let children: usize = list
            .iter()
            .map(|t| {
                usize::from(t.serials.child.is_some()) + usize::from(t.serials.old_child.is_some())
            })
            .sum();
        match dialect {
            Dialect::V4_10 | Dialect::V5_0 => line(&format!(
                "Total IPsec connections: loaded {connections}, active {up}"
            )),
            Dialect::V5_3 | Dialect::V5_4 => line(&format!(
                "Total IPsec connections: loaded {connections}, routed {up}, active {up}"
            )),
        }
        line(blank);
        line("State Information: DDoS cookies not required, Accepting new IKE connections");
        line(&format!(
            "IKE SAs: total({}), half-open({half_open}), open(0), authenticated({up}), anonymous(0)",
            list.len()
        ));
        line(&format!(
            "IPsec SAs: total({children}), authenticated({children}), anonymous(0)"
        ));
        line(blank);
        let mut states = 0;
        for t in list {
            let lines = state_lines(t, self.step, dialect);
            states += lines.iter().filter(|(is_state, _)| *is_state).count();
            for (_, text) in lines {
                line(&text);
            }
        }
        line(blank);
        line("Bare Shunt list:");
        line(blank);

        SynthDump {
            text: out,
            connections,
            states,
            tunnels: up,
            half_open,
        }
    }

    fn showstates(&self, dialect: Dialect) -> SynthDump {
        let prefix = prefix(dialect);
        let mut out = String::with_capacity(self.tunnels.len() * 400);
        let mut states = 0;
        for t in &self.tunnels {
            for (is_state, text) in state_lines(t, self.step, dialect) {
                states += usize::from(is_state);
                out.push_str(prefix);
                out.push_str(&text);
                out.push('\n');
            }
        }
        let up = self.tunnels_up();
        SynthDump {
            text: out,
            connections: 0,
            states,
            tunnels: up,
            half_open: self.tunnels.len() - up,
        }
    }

    fn trafficstatus(&self, dialect: Dialect) -> SynthDump {
        // trafficstatus lines carry RC 006 before 5.0.
        let prefix = match dialect {
            Dialect::V4_10 => "006 ",
            _ => "",
        };
        let mut out = String::with_capacity(self.tunnels.len() * 160);
        for t in &self.tunnels {
            for serial in [t.serials.old_child, t.serials.child].into_iter().flatten() {
                let bytes = counter(t.id, self.step);
                out.push_str(&format!(
                    "{prefix}#{serial}: {}, type=ESP, add_time={}, inBytes={bytes}, outBytes={}, maxBytes=2^63B, id='@east-{}'\n",
                    t.conn_ref(),
                    ADD_TIME_BASE + serial,
                    bytes / 2 + 84,
                    t.name
                ));
            }
        }
        SynthDump {
            text: out,
            connections: 0,
            states: 0,
            tunnels: self.tunnels_up(),
            half_open: 0,
        }
    }
}

/// The kernel `add_time` of serial 0: a fixed day, so dumps are reproducible.
const ADD_TIME_BASE: u64 = 1_795_000_000;

/// The seconds one step of a [`Series`] stands for: the daemon's default
/// poll interval, which `scripts/scale.sh` polls at. Printed timers count
/// down by this much per step, as pluto's do between two listings, so a
/// tracker polling the series sees each SA due at the same time.
pub const STEP_SECONDS: u64 = 10;

/// Bytes through tunnel `id` after `step` steps: grows by step, wraps
/// nowhere near 32 bits.
fn counter(id: usize, step: u64) -> u64 {
    (id as u64 + 1) * 98_765 % 3_000_000_000 + step * 4096
}

fn prefix(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::V4_10 => "000 ",
        _ => "",
    }
}

/// Write a `status` dump with `tunnels` connections in `dialect`.
///
/// One in ten connections is a dead peer (half-open), one in ten was just
/// rekeyed, one in five is IKEv1 and one in twenty a road-warrior instance.
pub fn status_dump(tunnels: usize, dialect: Dialect) -> SynthDump {
    Gateway::new(tunnels).dump(dialect, Output::Status)
}

/// How much of the gateway changes per step of a [`Series`], as shares of
/// the tunnels that are up (0.01 = 1 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Tunnels whose Child SA is replaced by a new serial.
    pub rekeyed: f64,
    /// Tunnels added (connection and SAs), established.
    pub added: f64,
    /// Tunnels deleted (connection and SAs gone).
    pub deleted: f64,
    /// Half-open negotiations added (a dead peer's IKE SA).
    pub half_open: f64,
}

impl Churn {
    /// The same share for each kind of change: `Churn::even(0.01)` is the
    /// issue's "1 % churn" split evenly, 0.25 % of each kind.
    pub fn even(total: f64) -> Churn {
        let each = total / 4.0;
        Churn {
            rekeyed: each,
            added: each,
            deleted: each,
            half_open: each,
        }
    }
}

/// What one step of a [`Series`] changed: what the tracker must report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Child SAs rekeyed (`child-sa-rekeyed`).
    pub rekeyed: usize,
    /// Tunnels added and up (`tunnel-up`, `connection-added`).
    pub added: usize,
    /// Tunnels deleted (`tunnel-down`, `connection-removed`).
    pub deleted: usize,
    /// Half-open negotiations started (`negotiation-started`).
    pub half_open: usize,
}

/// Successive snapshots of one gateway: each [`Series::advance`] applies
/// the churn deterministically (the same arguments give the same series).
#[derive(Debug, Clone)]
pub struct Series {
    gateway: Gateway,
    churn: Churn,
    /// State of the pick sequence.
    seed: u64,
}

impl Series {
    /// A series starting from `Gateway::new(tunnels)`.
    pub fn new(tunnels: usize, churn: Churn) -> Series {
        Series {
            gateway: Gateway::new(tunnels),
            churn,
            seed: 0x5eed_0000_0000_0001,
        }
    }

    /// The gateway as the current snapshot shows it.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Go to the next snapshot: rekey, delete, add and half-open as many
    /// tunnels as the churn says (at least one of each share above zero).
    pub fn advance(&mut self) -> Step {
        let up = self.gateway.tunnels_up();
        let count = |share: f64| -> usize {
            if share <= 0.0 {
                0
            } else {
                ((up as f64 * share).round() as usize).max(1)
            }
        };
        let (rekeys, deletes) = (count(self.churn.rekeyed), count(self.churn.deleted));
        let (adds, half_opens) = (count(self.churn.added), count(self.churn.half_open));
        self.gateway.step += 1;
        // Distinct up tunnels: the first `rekeys` are rekeyed, the next
        // `deletes` deleted.
        let mut picked: Vec<usize> = Vec::with_capacity(rekeys + deletes);
        let mut taken = std::collections::HashSet::new();
        let candidates: Vec<usize> = (0..self.gateway.tunnels.len())
            .filter(|&i| !self.gateway.tunnels[i].dead())
            .collect();
        let wanted = (rekeys + deletes).min(candidates.len());
        while picked.len() < wanted {
            let i = candidates[(self.next() % candidates.len() as u64) as usize];
            if taken.insert(i) {
                picked.push(i);
            }
        }
        let mut step = Step::default();
        for &i in picked.iter().take(rekeys) {
            let serial = self.gateway.serial();
            let tunnel = &mut self.gateway.tunnels[i];
            let ikev1 = tunnel.ikev1();
            let s = &mut tunnel.serials;
            // IKEv2 deletes the old Child SA with the rekey; IKEv1 keeps the
            // IPsec SA it replaced listed beside the new one until it
            // expires, as pluto does (a v1 SA gone at once was deleted and
            // revived, not rekeyed).
            s.old_child = if ikev1 { s.child } else { None };
            s.child = Some(serial);
            step.rekeyed += 1;
        }
        let mut deleted: Vec<usize> = picked.iter().skip(rekeys).copied().collect();
        deleted.sort_unstable();
        for &i in deleted.iter().rev() {
            self.gateway.tunnels.remove(i);
            step.deleted += 1;
        }
        for _ in 0..adds {
            self.gateway.add(Shape::V2);
            step.added += 1;
        }
        for _ in 0..half_opens {
            self.gateway.add(Shape::DeadV2);
            step.half_open += 1;
        }
        step
    }

    /// splitmix64: a fixed, dependency-free sequence.
    fn next(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The configuration chatter before `Connection list:`: constant per dump.
fn chatter(dialect: Dialect) -> Vec<&'static str> {
    let mut lines = vec![
        "using kernel interface: xfrm",
        " ",
        "interface lo UDP 127.0.0.1:4500",
        "interface lo UDP 127.0.0.1:500",
        "interface eth1 UDP 192.0.2.1:4500",
        "interface eth1 UDP 192.0.2.1:500",
        " ",
        "fips mode=disabled;",
        "SElinux=disabled",
        "seccomp=unsupported",
        " ",
        "config setup options:",
        " ",
        "configdir=/etc, configfile=/etc/ipsec.conf, secrets=/etc/ipsec.secrets, ipsecdir=/etc/ipsec.d",
        "nssdir=/var/lib/ipsec/nss, dumpdir=/run/pluto, statsbin=unset",
        "sbindir=/usr/sbin, libexecdir=/usr/libexec/ipsec",
    ];
    lines.push(match dialect {
        Dialect::V4_10 => "pluto_version=4.10, pluto_vendorid=OE-Libreswan-4.10, audit-log=yes",
        Dialect::V5_0 => "pluto_version=5.0, pluto_vendorid=OE-Libreswan-5.0, audit-log=yes",
        Dialect::V5_3 => "pluto_version=5.3, pluto_vendorid=OE-Libreswan-5.3, audit-log=yes",
        Dialect::V5_4 => "pluto_version=5.4, pluto_vendorid=OE-Libreswan-5.4, audit-log=yes",
    });
    lines.extend([
        "nhelpers=-1, uniqueids=yes, dnssec-enable=yes, logappend=yes, logip=yes, shuntlifetime=900s, xfrmlifetime=30s",
        "ddos-cookies-threshold=25000, ddos-max-halfopen=50000, ddos-mode=auto, ikev1-policy=accept",
        "ocsp-enable=no, ocsp-strict=no, ocsp-timeout=2, ocsp-uri=<unset>",
        " ",
        "nat-traversal=yes, keep-alive=20, nat-ikeport=4500",
        "virtual-private (%priv):",
        " ",
        "Kernel algorithms supported:",
        " ",
        "algorithm ESP encrypt: name=AES_CBC, keysizemin=128, keysizemax=256",
        "algorithm ESP encrypt: name=AES_GCM_16, keysizemin=128, keysizemax=256",
        "algorithm AH/ESP auth: name=HMAC_SHA2_256_128, key-length=256",
        " ",
        "IKE algorithms supported:",
        " ",
        "algorithm IKE encrypt: v1id=7, v1name=OAKLEY_AES_CBC, v2id=12, v2name=AES_CBC, blocksize=16, keydeflen=128",
        "algorithm IKE PRF: name=HMAC_SHA2_256, hashlen=32",
        "algorithm IKE DH Key Exchange: name=MODP2048, bits=2048",
        " ",
        "stats db_ops: {curr_cnt, total_cnt, maxsz} :context={0,0,0} trans={0,0,0} attrs={0,0,0} ",
        " ",
    ]);
    lines
}

/// The template of a road-warrior instance: configured, never negotiated.
fn template_group(t: &Tunnel, dialect: Dialect) -> Vec<String> {
    let n = format!("\"{}\":", t.name);
    let mut lines = vec![match dialect.family() {
        Family::Four => format!(
            "{n} {}==={LOCAL}[@west-{name}]...%any[@east-{name}]==={}; unrouted; eroute owner: #0",
            t.local_subnet,
            t.remote_subnet,
            name = t.name
        ),
        Family::Five => format!(
            "{n} {}==={LOCAL}[@west-{name}]...%any[@east-{name}]==={}; unrouted; my_ip=unset; their_ip=unset;",
            t.local_subnet,
            t.remote_subnet,
            name = t.name
        ),
    }];
    lines.push(match dialect.family() {
        Family::Four => {
            format!("{n}     oriented; my_ip=unset; their_ip=unset; my_updown=ipsec _updown;")
        }
        Family::Five => format!("{n}   host: oriented; local: {LOCAL}; remote: %any;"),
    });
    lines.push(format!(
        "{n}   policy: IKEv2+PSK+ENCRYPT+TUNNEL+PFS+UP+IKE_FRAG_ALLOW+ESN_NO+ESN_YES;"
    ));
    lines.push(match dialect.family() {
        Family::Four => format!(
            "{n}   newest IKE SA: #0; newest IPsec SA: #0; conn serial: ${};",
            t.conn_serial - 1
        ),
        Family::Five => format!("{n}   conn serial: ${};", t.conn_serial - 1),
    });
    lines
}

/// The connection-list group of one connection (or instance).
fn connection_group(t: &Tunnel, dialect: Dialect) -> Vec<String> {
    let n = format!("\"{}\"{}:", t.name, t.instance);
    let name = &t.name;
    let v1 = t.ikev1();
    let (ike_word, child_word) = if v1 {
        ("ISAKMP SA", "IPsec SA")
    } else {
        ("IKE SA", "Child SA")
    };
    let ike = if t.dead() { 0 } else { t.serials.ike };
    let child = t.serials.child.unwrap_or(0);
    let policy = if v1 { "IKEv1" } else { "IKEv2" };
    let mut lines = Vec::with_capacity(26);
    match dialect.family() {
        Family::Four => {
            let routing = if t.dead() { "unrouted" } else { "erouted" };
            lines.push(format!(
                "{n} {}==={LOCAL}[@west-{name}]...{}[@east-{name}]==={}; {routing}; eroute owner: #{child}",
                t.local_subnet, t.peer, t.remote_subnet
            ));
            lines.push(format!(
                "{n}     oriented; my_ip=unset; their_ip=unset; my_updown=ipsec _updown;"
            ));
            lines.push(format!(
                "{n}   xauth us:none, xauth them:none,  my_username=[any]; their_username=[any]"
            ));
            lines.push(format!(
                "{n}   our auth:secret, their auth:secret, our autheap:none, their autheap:none;"
            ));
            lines.push(format!("{n}   modecfg info: us:none, them:none, modecfg policy:push, dns:unset, domains:unset, cat:unset;"));
            lines.push(format!("{n}   sec_label:unset;"));
            lines.push(format!("{n}   ike_life: 28800s; ipsec_life: 28800s; ipsec_max_bytes: 2^63B; ipsec_max_packets: 2^63; replay_window: 128; rekey_margin: 540s; rekey_fuzz: 100%; keyingtries: 0;"));
            lines.push(format!("{n}   retransmit-interval: 500ms; retransmit-timeout: 60s; iketcp:no; iketcp-port:4500;"));
            lines.push(format!("{n}   initial-contact:no; cisco-unity:no; fake-strongswan:no; send-vendorid:no; send-no-esp-tfc:no;"));
            lines.push(format!(
                "{n}   policy: {policy}+PSK+ENCRYPT+TUNNEL+PFS+UP+IKE_FRAG_ALLOW+ESN_NO+ESN_YES;"
            ));
            if !v1 {
                lines.push(format!("{n}   v2-auth-hash-policy: none;"));
            }
            lines.push(format!("{n}   conn_prio: 32,32; interface: eth1; metric: 0; mtu: unset; sa_prio:auto; sa_tfc:none;"));
            lines.push(format!("{n}   nflog-group: unset; mark: unset; vti-iface:unset; vti-routing:no; vti-shared:no; nic-offload:auto;"));
            lines.push(format!("{n}   our idtype: ID_FQDN; our id=@west-{name}; their idtype: ID_FQDN; their id=@east-{name}"));
            if v1 {
                lines.push(format!(
                    "{n}   dpd: active; action:hold; delay:5s; timeout:15s"
                ));
                lines.push(format!(
                    "{n}   nat-traversal: encaps:auto; keepalive:20s; ikev1-method:rfc+drafts"
                ));
            } else {
                lines.push(format!(
                    "{n}   liveness: passive; dpdaction:hold; dpddelay:0s; retransmit-timeout:60s"
                ));
                lines.push(format!("{n}   nat-traversal: encaps:auto; keepalive:20s"));
            }
            let instantiated = if t.instance.is_empty() {
                String::new()
            } else {
                format!(" instantiated from: ${};", t.conn_serial - 1)
            };
            let newest_ike = if v1 { "ISAKMP SA" } else { "IKE SA" };
            lines.push(format!(
                "{n}   newest {newest_ike}: #{ike}; newest IPsec SA: #{child}; conn serial: ${};{instantiated}",
                t.conn_serial
            ));
        }
        Family::Five => {
            let routing = if t.dead() {
                "routed-negotiation"
            } else {
                "routed-tunnel"
            };
            lines.push(format!(
                "{n} {}==={LOCAL}[@west-{name}]...{}[@east-{name}]==={}; {routing}; my_ip=unset; their_ip=unset;",
                t.local_subnet, t.peer, t.remote_subnet
            ));
            let host_sa = if t.dead() {
                format!(" negotiating {ike_word}: #{};", t.serials.ike)
            } else {
                format!(" established {ike_word}: #{ike};")
            };
            lines.push(format!(
                "{n}   host: oriented; local: {LOCAL}; remote: {};{host_sa}",
                t.peer
            ));
            lines.push(format!(
                "{n}   my_updown=ipsec _updown; my_updown-config=noasync,noexec;"
            ));
            lines.push(format!(
                "{n}   xauth us:none, xauth them:none, my_username=[any]; their_username=[any]"
            ));
            lines.push(format!("{n}   our auth:secret, their auth:secret, our autheap:none, their autheap:none, send-supported-auth-methods:no;"));
            lines.push(format!("{n}   modecfg info: us:none, them:none, modecfg policy:push, dns:unset, domains:unset, cat:unset;"));
            lines.push(format!(
                "{n}   cisco-split: no; cisco-unity: no; cisco-peer: no; nm-configured: no;"
            ));
            lines.push(format!("{n}   sec_label:unset;"));
            lines.push(format!("{n}   ike_life: 28800s; ipsec_life: 28800s; ipsec_max_bytes: 2^63B; ipsec_max_packets: 2^63; replay_window: 128; rekey_margin: 540s; rekey_fuzz: 100%; clones: no (unset);"));
            lines.push(format!("{n}   iptfs: no; fragmentation: yes; packet-size: 0; max-queue-size: 0; drop-time: 0; init-delay: 0; reorder-window: 0;"));
            lines.push(format!("{n}   retransmit-interval: 500ms; retransmit-timeout: 60s; iketcp:no; iketcp-port:4500;"));
            lines.push(format!(
                "{n}   initial-contact:no; fake-strongswan:no; send-vendorid:no; send-no-esp-tfc:no;"
            ));
            lines.push(format!(
                "{n}   policy: {policy}+PSK+ENCRYPT+TUNNEL+PFS+UP+IKE_FRAG_ALLOW+ESN_NO+ESN_YES;"
            ));
            if !v1 {
                lines.push(format!("{n}   v2-auth-hash-policy: none;"));
            }
            lines.push(format!("{n}   conn_prio: 32,32,0; interface: eth1; metric: 0; mtu: unset; sa_prio:auto; sa_tfc:none;"));
            lines.push(format!("{n}   nflog-group: unset; mark: unset; vti-iface:unset; vti-routing:no; vti-shared:no; nic-offload:no;"));
            lines.push(format!("{n}   our idtype: FQDN; our id=@west-{name}; their idtype: FQDN; their id=@east-{name}"));
            lines.push(format!(
                "{n}   sendca: all; our sendcert: always; their sendcert: always;"
            ));
            lines.push(format!(
                "{n}   liveness: passive; dpddelay:0s; retransmit-timeout:60s"
            ));
            lines.push(format!(
                "{n}   nat-traversal: encapsulation:auto; keepalive:20s"
            ));
            lines.push(if t.dead() {
                format!(
                    "{n}   routing: {routing}; owner: {ike_word} #{ike_serial}; negotiating {ike_word}: #{ike_serial};",
                    ike_serial = t.serials.ike
                )
            } else {
                format!(
                    "{n}   routing: {routing}; owner: {child_word} #{child}; established {ike_word}: #{ike}; established {child_word}: #{child};"
                )
            });
            lines.push(format!("{n}   reqid: {};", 16388 + 4 * t.conn_serial));
            lines.push(if t.instance.is_empty() {
                format!("{n}   conn serial: ${};", t.conn_serial)
            } else {
                format!(
                    "{n}   conn serial: ${}, instantiated from: ${};",
                    t.conn_serial,
                    t.conn_serial - 1
                )
            });
        }
    }
    if !t.dead() {
        let ike_alg = if v1 { "IKEv1" } else { "IKEv2" };
        lines.push(format!(
            "{n}   {ike_alg} algorithm newest: AES_GCM_16_256-HMAC_SHA2_512-MODP2048"
        ));
        lines.push(format!(
            "{n}   ESP algorithm newest: AES_GCM_16_256-NONE; pfsgroup=<Phase1>"
        ));
    }
    lines
}

/// `20KB`-style rounding of the SPI line (libreswan's `jam_readable_humber`).
fn readable_humber(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{}KB", bytes / 1024),
        _ => format!("{}MB", bytes / 1_048_576),
    }
}

/// A plausible SPI: lower-case hex without leading zeros, never 0.
fn spi(seed: u64) -> String {
    format!(
        "{:x}",
        (seed.wrapping_mul(2_654_435_761) & 0xffff_ffff) | 0x100
    )
}

/// The state lines of one tunnel in serial order; `true` marks a state line
/// (as opposed to an SPI or pending line).
fn state_lines(t: &Tunnel, step: u64, dialect: Dialect) -> Vec<(bool, String)> {
    let conn = t.conn_ref();
    let bare = &conn;
    let i = t.id;
    // pluto's timers count down between listings: a step is
    // STEP_SECONDS, so each SA's due times stay where they were.
    let rekey = (600 + (i as u64 * 37) % 27_000)
        .saturating_sub(step * STEP_SECONDS)
        .max(60);
    let mut lines = Vec::new();
    let s = &t.serials;
    if t.dead() {
        let (name, story) = match (t.ikev1(), dialect) {
            (true, Dialect::V5_4) => ("", "sent Main Mode request"),
            (true, _) => ("STATE_MAIN_I1 ", "(sent Main Mode request)"),
            (false, Dialect::V4_10 | Dialect::V5_0) => {
                ("STATE_V2_PARENT_I1 ", "(sent IKE_SA_INIT request)")
            }
            (false, Dialect::V5_3) => ("IKE_SA_INIT_I ", "(sent IKE_SA_INIT request)"),
            (false, Dialect::V5_4) => ("", "sent IKE_SA_INIT request"),
        };
        let pending = match (t.ikev1(), dialect) {
            (true, Dialect::V4_10) => "Phase 2",
            (false, Dialect::V4_10) => "CHILD SA",
            (true, _) => "IPsec SA",
            (false, _) => "Child SA",
        };
        let dpd = if t.ikev1() { " nodpd;" } else { "" };
        lines.push((
            true,
            format!(
                "#{}: {conn}:500 {name}{story}; RETRANSMIT in {}s;{dpd} idle;",
                s.ike,
                1 + i % 9
            ),
        ));
        lines.push((
            false,
            format!("#{}: pending {pending} for \"{}\"", s.ike, t.name),
        ));
        return lines;
    }
    let ike_part = match (t.ikev1(), dialect) {
        (true, Dialect::V4_10) => "STATE_MAIN_I4 (IKE SA established)",
        (true, Dialect::V5_4) => "ISAKMP SA established",
        (true, _) => "STATE_MAIN_I4 (ISAKMP SA established)",
        (false, Dialect::V4_10 | Dialect::V5_0) => {
            "STATE_V2_ESTABLISHED_IKE_SA (established IKE SA)"
        }
        (false, Dialect::V5_3) => "ESTABLISHED_IKE_SA (established IKE SA)",
        (false, Dialect::V5_4) => "established IKE SA",
    };
    let ike_line = if t.ikev1() {
        format!(
            "#{}: {conn}:500 {ike_part}; REPLACE in {}s; newest; lastdpd=-1s(seq in:0 out:0); idle;",
            s.ike,
            rekey + 900
        )
    } else {
        format!(
            "#{}: {conn}:500 {ike_part}; REKEY in {}s; REPLACE in {}s; newest; idle;",
            s.ike,
            rekey + 300,
            rekey + 1100
        )
    };
    lines.push((true, ike_line));
    let child_state = |serial: u64, newest: bool| -> String {
        let parent = if t.ikev1() { "ISAKMP SA" } else { "IKE SA" };
        let timers = if !newest {
            "EXPIRE in 10s;".to_string()
        } else if t.ikev1() {
            format!("REPLACE in {rekey}s;")
        } else {
            format!("REKEY in {rekey}s; REPLACE in {}s;", rekey + 780)
        };
        let flags = if newest { " newest; eroute owner;" } else { "" };
        let part = match (t.ikev1(), dialect) {
            (true, Dialect::V5_4) => "IPsec SA established",
            (true, _) => "STATE_QUICK_I2 (IPsec SA established)",
            (false, Dialect::V4_10 | Dialect::V5_0) => {
                "STATE_V2_ESTABLISHED_CHILD_SA (established Child SA)"
            }
            (false, Dialect::V5_3) => "ESTABLISHED_CHILD_SA (established Child SA)",
            (false, Dialect::V5_4) => "established Child SA",
        };
        format!(
            "#{serial}: {conn}:500 {part}; {timers}{flags} {parent} #{}; idle;",
            s.ike
        )
    };
    let spi_line = |serial: u64| -> String {
        let bytes = counter(i, step);
        format!(
            "#{serial}: {bare} esp.{}@{peer} esp.{}@{LOCAL} tun.0@{peer} tun.0@{LOCAL} Traffic: ESPin={} ESPout={} ESPmax=2^63B ",
            spi(serial * 2),
            spi(serial * 2 + 1),
            readable_humber(bytes),
            readable_humber(bytes / 2 + 84),
            peer = t.peer
        )
    };
    if let Some(old) = s.old_child {
        lines.push((true, child_state(old, false)));
        lines.push((false, spi_line(old)));
    }
    if let Some(child) = s.child {
        lines.push((true, child_state(child, true)));
        lines.push((false, spi_line(child)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_dialect_prefixes_every_line_and_unprefixed_none() {
        let old = status_dump(40, Dialect::V4_10);
        assert!(old.text.lines().all(|l| l.starts_with("000 ")));
        let new = status_dump(40, Dialect::V5_4);
        assert!(new.text.lines().all(|l| !l.starts_with("000 ")));
        assert!(!new.text.contains("STATE_V2_"));
    }

    #[test]
    fn counts_match_the_shapes_written() {
        let dump = status_dump(40, Dialect::V4_10);
        // 40 tunnels: 4 dead, 4 rekeyed (one extra child), 2 road warriors (one extra template).
        assert_eq!(dump.tunnels, 36);
        assert_eq!(dump.half_open, 4);
        assert_eq!(dump.connections, 42);
        assert_eq!(dump.states, 4 + 36 * 2 + 4);
        let state_lines = dump
            .text
            .lines()
            .filter(|l| l.starts_with("000 #") && l.contains(":500 "))
            .count();
        assert_eq!(state_lines, dump.states);
        assert!(
            dump.text
                .contains("000 Total IPsec connections: loaded 42, active 36\n")
        );
    }

    #[test]
    fn same_arguments_give_the_same_dump() {
        assert_eq!(
            status_dump(25, Dialect::V5_4),
            status_dump(25, Dialect::V5_4)
        );
    }

    #[test]
    fn road_warrior_instances_carry_the_peer_suffix() {
        let dump = status_dump(8, Dialect::V5_4);
        assert!(
            dump.text
                .contains("#16: \"c000007-rw\"[1] 10.0.0.7:500 established IKE SA;"),
            "{}",
            dump.text
        );
        assert!(
            dump.text
                .contains("\"c000007-rw\"[1]:   conn serial: $9, instantiated from: $8;")
        );
    }

    #[test]
    fn spi_line_counters_round_like_pluto() {
        assert_eq!(readable_humber(1023), "1023B");
        assert_eq!(readable_humber(20 * 1024 + 5), "20KB");
        assert_eq!(readable_humber(3 << 30), "3072MB");
    }
}
