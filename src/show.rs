//! `swantrail parse` and `swantrail show`: one dump to JSON or to a table.
//!
//! Both commands read one dump with [`crate::input::read_dump`] and parse it.
//! `show` first turns the snapshot into rows with the pure function
//! [`tunnel_table`], then renders them with [`render`], so what a row says
//! is tested apart from terminals and colours. This module presents what
//! the parser found; it must never guess a value the dump did not print
//! (unknown is shown as `-`) and never write anything but the requested
//! output to stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::input::{DEFAULT_MAX_BYTES, parse_byte_size, read_dump};
use crate::snapshot::{ConnRef, IkeVersion, SaKind, Snapshot, State, TimerKind};

/// Arguments of `swantrail parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The dump to read; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Refuse inputs larger than this (bytes; KiB, MiB, GiB suffixes allowed).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
}

/// Arguments of `swantrail show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The dump to read; `-` or nothing for standard input. With neither a
    /// file nor piped input (a terminal on stdin), the local pluto is asked.
    pub file: Option<PathBuf>,
    /// Ask the local pluto (`ipsec whack --status` and `--trafficstatus`)
    /// instead of reading a dump.
    #[arg(long, conflicts_with = "file")]
    pub live: bool,
    /// pluto's control socket, for `--live` (default: whack's own).
    #[arg(long, value_name = "PATH")]
    pub ctlsocket: Option<PathBuf>,
    /// Refuse inputs larger than this (bytes; KiB, MiB, GiB suffixes allowed).
    #[arg(long, value_name = "SIZE", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_byte_size)]
    pub max_bytes: u64,
    /// When to colour the table: `auto` colours only a terminal without `NO_COLOR`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Do not shorten anything to fit 80 columns.
    #[arg(long)]
    pub wide: bool,
}

/// Whether `show` writes ANSI colours; a flag because pipes to `less -R` want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Run `swantrail parse`: the snapshot as one JSON document on stdout.
///
/// Unrecognised lines do not fail the command (they are in `diagnostics`);
/// a note on stderr says how many there were, so a script that keeps only
/// stdout still gets clean JSON.
pub fn parse_command(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let text = read_dump(args.file.as_deref(), args.max_bytes)?;
    let snapshot = crate::parse(&text);
    let mut json = if args.pretty {
        serde_json::to_string_pretty(&snapshot)?
    } else {
        serde_json::to_string(&snapshot)?
    };
    json.push('\n');
    write_stdout(json.as_bytes())?;
    warn_about(&snapshot);
    Ok(ExitCode::SUCCESS)
}

/// Run `swantrail show`: the readable table instead of `ipsec status`.
pub fn show_command(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let live = args.live || (args.file.is_none() && std::io::stdin().is_terminal());
    let snapshot = if live {
        ask_pluto(args.ctlsocket.as_deref())?
    } else {
        crate::parse(&read_dump(args.file.as_deref(), args.max_bytes)?)
    };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let options = RenderOptions {
        width: if args.wide { None } else { Some(80) },
        color,
    };
    write_stdout(render(&tunnel_table(&snapshot), &options).as_bytes())?;
    warn_about(&snapshot);
    Ok(ExitCode::SUCCESS)
}

/// How long one `ipsec whack` may take before `show` gives up on pluto.
const WHACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The local pluto's `--status` merged with its `--trafficstatus` (exact
/// bytes and "since"), asked the way the daemon's command source asks it.
fn ask_pluto(ctlsocket: Option<&std::path::Path>) -> anyhow::Result<Snapshot> {
    let whack = |what: &str| {
        let mut argv = vec!["ipsec".to_string(), "whack".to_string()];
        if let Some(socket) = ctlsocket {
            argv.push("--ctlsocket".to_string());
            argv.push(socket.display().to_string());
        }
        argv.push(what.to_string());
        argv
    };
    let commands = [whack("--status"), whack("--trafficstatus")];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (snapshot, _) = runtime
        .block_on(crate::source::command::poll(
            &commands,
            WHACK_TIMEOUT,
            crate::input::DEFAULT_MAX_BYTES,
        ))
        .map_err(|failure| {
            anyhow::anyhow!(
                "cannot ask pluto: {}; give a dump file or pipe `ipsec status` in",
                failure.detail
            )
        })?;
    Ok(snapshot)
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

/// Tell the operator on stderr what the parser skipped or found wanting.
fn warn_about(snapshot: &Snapshot) {
    if let Some(why) = &snapshot.incomplete {
        eprintln!("swantrail: warning: the dump is incomplete: {why}");
    }
    if let Some(first) = snapshot.diagnostics.first() {
        eprintln!(
            "swantrail: note: {} line(s) not recognised (first: line {}: {}); `swantrail parse` lists them under \"diagnostics\"",
            snapshot.diagnostics.len(),
            first.line,
            first.reason
        );
    }
}

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
type InstanceKey = (String, Vec<u64>);

fn key_of(conn: &ConnRef) -> InstanceKey {
    (conn.name.clone(), conn.instances.clone())
}

/// Whether a state is a Child SA: by its kind, else by its SPI line.
fn is_child(state: &State) -> bool {
    match state.kind {
        Some(kind) => kind == SaKind::Child,
        None => state.traffic.is_some(),
    }
}

/// Whether a state is an IKE SA (an unknown kind without an SPI line counts).
fn is_ike(state: &State) -> bool {
    match state.kind {
        Some(kind) => kind == SaKind::Ike,
        None => state.traffic.is_none(),
    }
}

/// Turn a snapshot into the rows `show` prints. Pure: no I/O, no clock.
///
/// A tunnel is a connection instance with an established Child SA, in
/// `states` or (for a trafficstatus-only dump) in `traffic`; its row shows
/// the newest one. Everything not established becomes a negotiation row,
/// as does an established IKE SA whose connection has no tunnel.
pub fn tunnel_table(snapshot: &Snapshot) -> TunnelTable {
    // Established Child SAs per instance: from the states, then any serial
    // only trafficstatus knows.
    let mut children: BTreeMap<InstanceKey, Vec<u64>> = BTreeMap::new();
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
        if snapshot.state(traffic.serial).is_none() {
            children
                .entry(key_of(&traffic.conn))
                .or_default()
                .push(traffic.serial);
        }
    }

    let connection = |key: &InstanceKey| {
        snapshot
            .connections
            .iter()
            .find(|c| c.conn.name == key.0 && c.conn.instances == key.1)
    };
    let rekeying = |key: &InstanceKey| {
        snapshot.states.iter().any(|s| {
            (!s.established && is_child(s) && key_of(&s.conn) == *key)
                || s.pending
                    .iter()
                    .any(|p| p.replacing.is_some() && key_of(&p.conn) == *key)
        })
    };

    let mut tunnels = Vec::new();
    for (key, serials) in &children {
        let conn_entry = connection(key);
        let child_serial = newest_child(snapshot, serials, conn_entry.and_then(|c| c.newest_child));
        let state = snapshot.state(child_serial);
        let traffic = snapshot.traffic_of(child_serial);
        let conn = state
            .map(|s| s.conn.clone())
            .or_else(|| traffic.map(|t| t.conn.clone()))
            .unwrap_or_else(|| ConnRef {
                name: key.0.clone(),
                instances: key.1.clone(),
                peer: None,
            });
        let ike_serial = state
            .and_then(|s| s.parent_serial)
            .or_else(|| conn_entry.and_then(|c| c.newest_ike))
            .or_else(|| {
                snapshot
                    .states
                    .iter()
                    .filter(|s| s.established && is_ike(s) && key_of(&s.conn) == *key)
                    .map(|s| s.serial)
                    .max()
            });
        let ike_version = state
            .and_then(|s| s.ike_version)
            .or_else(|| conn_entry.and_then(|c| c.ike_version))
            .or_else(|| ike_serial.and_then(|p| snapshot.state(p)?.ike_version));
        let spi = state.and_then(|s| s.traffic.as_ref());
        let counted = |exact: Option<u64>, direction: &str| {
            exact
                .map(|bytes| ByteCount { bytes, exact: true })
                .or_else(|| {
                    let spi = spi?;
                    ["ESP", "AH", "IPCOMP"]
                        .iter()
                        .find_map(|proto| spi.counter(&format!("{proto}{direction}")))
                        .map(|bytes| ByteCount {
                            bytes,
                            exact: false,
                        })
                })
        };
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
                .clone()
                .or_else(|| conn_entry.and_then(|c| c.remote_host.clone())),
            conn,
            ike_version,
            state: if rekeying(key) {
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
            bytes_in: counted(traffic.and_then(|t| t.in_bytes), "in"),
            bytes_out: counted(traffic.and_then(|t| t.out_bytes), "out"),
            remote,
        });
    }

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
            let conn_entry = connection(&key);
            Some(NegotiationRow {
                conn: s.conn.clone(),
                peer: s
                    .conn
                    .peer
                    .clone()
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

    let count =
        |name: &str, list: &[(String, u64)]| list.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let totals = &snapshot.totals;
    let summary = Summary {
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
    };
    TunnelTable {
        tunnels,
        negotiations,
        summary,
    }
}

/// The Child SA a tunnel row shows: the one the connection list calls
/// newest, else the one flagged `newest`, else the highest serial.
fn newest_child(snapshot: &Snapshot, serials: &[u64], listed: Option<u64>) -> u64 {
    if let Some(listed) = listed.filter(|s| serials.contains(s)) {
        return listed;
    }
    let flagged = serials
        .iter()
        .copied()
        .filter(|&s| snapshot.state(s).is_some_and(|st| st.newest))
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

/// How to render a [`TunnelTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Shorten names so that no line is wider than this; `None` never shortens.
    pub width: Option<usize>,
    /// Use ANSI colours.
    pub color: bool,
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// Gap between columns; narrowed to one space before any name is shortened.
const GAP: &str = "  ";
/// Indent of a row's detail line.
const DETAIL_INDENT: &str = "    ";

/// How a cell is shortened when its column is too narrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shorten {
    /// Never (numbers, short words): the column keeps its natural width.
    Never,
    /// Cut the end but keep an instance suffix (`long-na…[3]`).
    Name,
    /// Cut the middle (addresses: both ends matter).
    Middle,
}

struct Column {
    header: &'static str,
    right: bool,
    shorten: Shorten,
    min: usize,
}

const fn col(header: &'static str, right: bool, shorten: Shorten, min: usize) -> Column {
    Column {
        header,
        right,
        shorten,
        min,
    }
}

/// One printed row: cells, the colour of the state cell, a detail line.
struct Line {
    cells: Vec<String>,
    state_color: &'static str,
    detail: String,
}

/// Render the table for a terminal: the tunnels (each with a detail line of
/// remote ID and establishment time), the negotiations, then the totals.
pub fn render(table: &TunnelTable, options: &RenderOptions) -> String {
    let mut out = String::new();
    if table.tunnels.is_empty() {
        out.push_str("no tunnels up\n");
    } else {
        const TUNNEL_COLUMNS: [Column; 8] = [
            col("TUNNEL", false, Shorten::Name, 8),
            col("PEER", false, Shorten::Middle, 9),
            col("IKE", false, Shorten::Never, 3),
            col("STATE", false, Shorten::Never, 5),
            col("IKE/CHILD", false, Shorten::Never, 9),
            col("REKEY", true, Shorten::Never, 5),
            col("IN", true, Shorten::Never, 2),
            col("OUT", true, Shorten::Never, 3),
        ];
        let lines: Vec<Line> = table.tunnels.iter().map(tunnel_line).collect();
        render_block(&mut out, &TUNNEL_COLUMNS, &lines, options);
    }
    if !table.negotiations.is_empty() {
        out.push('\n');
        const NEGOTIATION_COLUMNS: [Column; 6] = [
            col("NEGOTIATING", false, Shorten::Name, 8),
            col("PEER", false, Shorten::Middle, 9),
            col("IKE", false, Shorten::Never, 3),
            col("SA", false, Shorten::Never, 2),
            col("STATE", false, Shorten::Never, 5),
            col("NEXT", false, Shorten::Name, 8),
        ];
        let lines: Vec<Line> = table.negotiations.iter().map(negotiation_line).collect();
        render_block(&mut out, &NEGOTIATION_COLUMNS, &lines, options);
    }
    out.push('\n');
    let totals = summary_text(&table.summary, options.width);
    if options.color {
        out.push_str(BOLD);
        out.push_str(&totals);
        out.push_str(RESET);
    } else {
        out.push_str(&totals);
    }
    out.push('\n');
    out
}

fn tunnel_line(row: &TunnelRow) -> Line {
    let mut detail = Vec::new();
    match &row.remote {
        Some(Remote::Id(id)) => detail.push(format!("remote {id}")),
        Some(Remote::User(user)) => detail.push(format!("user {user}")),
        None => detail.push("remote -".to_string()),
    }
    detail.push(match row.established_since {
        Some(t) => format!("since {}", utc_time(t)),
        None => "since -".to_string(),
    });
    Line {
        cells: vec![
            conn_text(&row.conn),
            row.peer.clone().unwrap_or_else(|| "-".into()),
            version_text(row.ike_version),
            row.state.word().to_string(),
            format!(
                "{}/#{}",
                row.ike_serial.map_or("-".to_string(), |s| format!("#{s}")),
                row.child_serial
            ),
            row.next_rekey.map_or("-".to_string(), due_text),
            row.bytes_in.map_or("-".to_string(), bytes_text),
            row.bytes_out.map_or("-".to_string(), bytes_text),
        ],
        state_color: match row.state {
            TunnelState::Up => GREEN,
            TunnelState::Rekeying => YELLOW,
        },
        detail: detail.join(", "),
    }
}

fn negotiation_line(row: &NegotiationRow) -> Line {
    Line {
        cells: vec![
            conn_text(&row.conn),
            row.peer.clone().unwrap_or_else(|| "-".into()),
            version_text(row.ike_version),
            format!("#{}", row.serial),
            row.state.word().to_string(),
            row.next.map_or("-".to_string(), |(kind, due)| {
                format!("{} {}", timer_word(kind), due_phrase(due))
            }),
        ],
        state_color: match row.state {
            NegotiationState::IkeOnly => CYAN,
            _ => YELLOW,
        },
        detail: row.story.clone(),
    }
}

/// Lay out one block: header, then each row and its detail line.
fn render_block(out: &mut String, columns: &[Column], lines: &[Line], options: &RenderOptions) {
    // Names come from pluto's config: a control character in one must not
    // reach the terminal as an escape sequence.
    let lines: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            cells: l.cells.iter().map(|c| escape_controls(c)).collect(),
            state_color: l.state_color,
            detail: escape_controls(&l.detail),
        })
        .collect();
    let lines = &lines[..];
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            lines
                .iter()
                .map(|l| text_width(&l.cells[i]))
                .chain([c.header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut gap = GAP;
    if let Some(limit) = options.width {
        let cells = widths.iter().sum::<usize>();
        if cells + gap.len() * (widths.len() - 1) > limit {
            gap = " ";
        }
        let mut excess = (cells + gap.len() * (widths.len() - 1)).saturating_sub(limit);
        for (i, c) in columns.iter().enumerate() {
            if c.shorten != Shorten::Never && excess > 0 {
                let give = excess.min(widths[i].saturating_sub(c.min));
                widths[i] -= give;
                excess -= give;
            }
        }
    }
    let state_col = columns.iter().position(|c| c.header == "STATE");
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, &w)| pad(c.header, w, c.right))
        .collect();
    let header = header.join(gap);
    if options.color {
        out.push_str(&format!("{BOLD}{}{RESET}\n", header.trim_end()));
    } else {
        out.push_str(header.trim_end());
        out.push('\n');
    }
    for line in lines {
        let cells: Vec<String> = columns
            .iter()
            .zip(&widths)
            .zip(&line.cells)
            .enumerate()
            .map(|(i, ((c, &w), text))| {
                let cell = pad(&shorten(text, w, c.shorten), w, c.right);
                if options.color && Some(i) == state_col {
                    format!("{}{cell}{RESET}", line.state_color)
                } else {
                    cell
                }
            })
            .collect();
        out.push_str(cells.join(gap).trim_end());
        out.push('\n');
        if !line.detail.is_empty() {
            let room = options.width.map(|w| w.saturating_sub(DETAIL_INDENT.len()));
            let detail = match room {
                Some(room) => shorten(&line.detail, room, Shorten::Name),
                None => line.detail.clone(),
            };
            if options.color {
                out.push_str(&format!("{DETAIL_INDENT}{DIM}{detail}{RESET}\n"));
            } else {
                out.push_str(&format!("{DETAIL_INDENT}{detail}\n"));
            }
        }
    }
}

/// The totals, wrapped at `width` between its parts.
fn summary_text(summary: &Summary, width: Option<usize>) -> String {
    let mut parts = vec![format!(
        "{} tunnel{} up, {} negotiating, {} ike only",
        summary.tunnels,
        if summary.tunnels == 1 { "" } else { "s" },
        summary.negotiating,
        summary.ike_only
    )];
    if let (Some(loaded), Some(active)) = (summary.loaded, summary.active) {
        parts.push(format!("connections: {loaded} loaded, {active} active"));
    }
    if let Some(total) = summary.ike_sas {
        let half = summary
            .half_open
            .map_or(String::new(), |h| format!(" ({h} half-open)"));
        parts.push(format!("IKE SAs: {total}{half}"));
    }
    if let Some(total) = summary.ipsec_sas {
        parts.push(format!("IPsec SAs: {total}"));
    }
    let mut text = String::from("total: ");
    let mut line_len = text.len();
    for (i, part) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        // `+ 1`: room for the `;` that ends the line if the next part wraps.
        if i > 0 && width.is_some_and(|w| line_len + sep.len() + part.len() + 1 > w) {
            text.push_str(";\n       ");
            line_len = 7;
        } else {
            text.push_str(sep);
            line_len += sep.len();
        }
        text.push_str(part);
        line_len += part.len();
    }
    text
}

fn conn_text(conn: &ConnRef) -> String {
    let mut s = conn.name.clone();
    for i in &conn.instances {
        s.push_str(&format!("[{i}]"));
    }
    s
}

fn version_text(version: Option<IkeVersion>) -> String {
    match version {
        Some(IkeVersion::V1) => "v1".into(),
        Some(IkeVersion::V2) => "v2".into(),
        None => "-".into(),
    }
}

fn timer_word(kind: TimerKind) -> &'static str {
    match kind {
        TimerKind::Rekey => "rekey",
        TimerKind::Replace => "replace",
        TimerKind::Expire => "expire",
        TimerKind::Retransmit => "retransmit",
        TimerKind::Liveness => "liveness",
        TimerKind::Discard => "discard",
        TimerKind::Other => "timer",
    }
}

/// `in 7s`, `overdue 3s`, `in ?` (hidden).
fn due_phrase(due: Due) -> String {
    match due {
        Due::In(s) if s < 0 => format!("overdue {}", duration_text(s.unsigned_abs())),
        Due::In(s) => format!("in {}", duration_text(s.unsigned_abs())),
        Due::Hidden => "in ?".into(),
    }
}

/// The REKEY cell: `7h45m`, `overdue`, `?` (hidden).
fn due_text(due: Due) -> String {
    match due {
        Due::In(s) if s < 0 => "overdue".into(),
        Due::In(s) => duration_text(s.unsigned_abs()),
        Due::Hidden => "?".into(),
    }
}

/// A duration in the two largest units: `45s`, `5m03s`, `7h45m`, `3d04h`.
fn duration_text(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `812 B`, `20.6 KiB`, `1.2 GiB`; `~` marks a count rounded by pluto.
fn bytes_text(count: ByteCount) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let approx = if count.exact { "" } else { "~" };
    if count.bytes < 1024 {
        return format!("{approx}{} B", count.bytes);
    }
    let mut value = count.bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{approx}{value:.1} {}", UNITS[unit])
}

/// `2026-11-28 09:23:03 UTC`, or the raw number if it is out of range.
fn utc_time(unix: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(format).ok())
        .map_or_else(|| format!("@{unix}"), |t| format!("{t} UTC"))
}

/// Control characters written out (`\x1b`, `\u{9b}`), so that text from
/// outside cannot move the cursor, recolour or retitle the terminal.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Printed width in terminal columns: two for East Asian wide and
/// fullwidth characters and most emoji, none for combining marks and
/// zero-width characters, one otherwise.
fn text_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// The columns one character takes (see [`text_width`]).
fn char_width(c: char) -> usize {
    let c = c as u32;
    let zero = [
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0591, 0x05BD),
        (0x0610, 0x061A),
        (0x064B, 0x065F),
        (0x200B, 0x200F),
        (0x20D0, 0x20FF),
        (0xFE00, 0xFE0F),
        (0xFE20, 0xFE2F),
    ];
    let wide = [
        (0x1100, 0x115F),
        (0x2E80, 0x303E),
        (0x3041, 0x33FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xA000, 0xA4CF),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF),
        (0x20000, 0x3FFFD),
    ];
    let within = |ranges: &[(u32, u32)]| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c));
    if within(&zero) {
        0
    } else if within(&wide) {
        2
    } else {
        1
    }
}

/// The longest prefix of `text` that fits in `width` columns.
fn take_width(text: &str, width: usize) -> String {
    let mut used = 0;
    text.chars()
        .take_while(|&c| {
            used += char_width(c);
            used <= width
        })
        .collect()
}

/// The longest suffix of `text` that fits in `width` columns.
fn tail_width(text: &str, width: usize) -> String {
    let mut used = 0;
    let mut tail: Vec<char> = text
        .chars()
        .rev()
        .take_while(|&c| {
            used += char_width(c);
            used <= width
        })
        .collect();
    tail.reverse();
    tail.into_iter().collect()
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(text_width(text)));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

/// Fit `text` into `width` columns with a `…` where something was cut.
fn shorten(text: &str, width: usize, how: Shorten) -> String {
    let len = text_width(text);
    if len <= width || how == Shorten::Never || width == 0 {
        return text.to_string();
    }
    let take = |n: usize| take_width(text, n);
    let tail = |n: usize| tail_width(text, n);
    match how {
        Shorten::Name => {
            // Keep the `[N]` instance suffix: it tells instances apart.
            let suffix_len = text
                .rfind(|c| c != ']' && c != '[' && !char::is_ascii_digit(&c))
                .map_or(0, |i| text_width(&text[i + 1..]));
            if suffix_len > 0 && suffix_len + 2 <= width {
                format!("{}…{}", take(width - 1 - suffix_len), tail(suffix_len))
            } else {
                format!("{}…", take(width - 1))
            }
        }
        Shorten::Middle => {
            let head = (width - 1).div_ceil(2);
            format!("{}…{}", take(head), tail(width - 1 - head))
        }
        Shorten::Never => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Connection, SpiLine, Timer, Totals, Traffic};

    #[test]
    fn control_characters_in_a_name_are_written_out_not_sent_to_the_terminal() {
        assert_eq!(
            escape_controls("v2\u{1b}]0;owned\u{7}"),
            "v2\\x1b]0;owned\\x07"
        );
        assert_eq!(escape_controls("a\u{9b}b"), "a\\u{9b}b");
        assert_eq!(escape_controls("plain"), "plain");
    }

    #[test]
    fn wide_characters_take_two_columns_when_padding_and_shortening() {
        assert_eq!(text_width("東京-gw"), 7);
        assert_eq!(pad("東京", 6, false), "東京  ");
        let cut = shorten("東京大阪名古屋", 7, Shorten::Middle);
        assert!(text_width(&cut) <= 7, "{cut}");
        assert_eq!(cut, "東…屋");
    }

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
            traffic: None,
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

    fn traffic(serial: u64, name: &str, add_time: u64, bytes: u64) -> Traffic {
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
    fn rekeyed_snapshot() -> Snapshot {
        let mut ike = state(1, "tun", SaKind::Ike, true);
        ike.newest = true;
        let mut old = state(2, "tun", SaKind::Child, true);
        old.parent_serial = Some(1);
        old.timers = vec![timer(TimerKind::Expire, "EXPIRE", 10)];
        old.traffic = Some(spi(1000, 1000));
        let mut new = state(4, "tun", SaKind::Child, true);
        new.parent_serial = Some(1);
        new.newest = true;
        new.timers = vec![
            timer(TimerKind::Liveness, "LIVENESS", 4),
            timer(TimerKind::Rekey, "REKEY", 27908),
            timer(TimerKind::Replace, "REPLACE", 28680),
        ];
        new.traffic = Some(spi(20 * 1024, 20 * 1024));
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
    fn empty_snapshot_renders_no_tunnels_and_zero_totals() {
        let text = render(
            &tunnel_table(&Snapshot::default()),
            &RenderOptions {
                width: Some(80),
                color: false,
            },
        );
        assert_eq!(
            text,
            "no tunnels up\n\ntotal: 0 tunnels up, 0 negotiating, 0 ike only\n"
        );
    }

    #[test]
    fn render_without_colour_has_no_escapes_and_aligned_columns() {
        let mut snap = rekeyed_snapshot();
        snap.traffic = vec![traffic(4, "tun", 1_795_857_783, 21120)];
        let text = render(
            &tunnel_table(&snap),
            &RenderOptions {
                width: Some(80),
                color: false,
            },
        );
        let expected = "\
TUNNEL  PEER       IKE  STATE  IKE/CHILD  REKEY        IN       OUT
tun     192.0.2.2  v2   up     #1/#4      7h45m  20.6 KiB  20.6 KiB
    remote @peer-of-tun, since 2026-11-28 09:23:03 UTC

NEGOTIATING  PEER  IKE  SA  STATE        NEXT
dead         -     v2   #5  negotiating  retransmit in 7s
    sent IKE_SA_INIT request
lonely       -     v2   #6  ike only     -
    established Ike SA

total: 1 tunnel up, 1 negotiating, 1 ike only; connections: 3 loaded, 1 active;
       IKE SAs: 3 (1 half-open); IPsec SAs: 2
";
        assert_eq!(text, expected);
    }

    #[test]
    fn long_names_and_addresses_are_elided_to_fit_80_columns() {
        let mut snap = rekeyed_snapshot();
        for s in &mut snap.states {
            s.conn = ConnRef {
                name: "a-very-long-connection-name-from-a-generated-config".into(),
                instances: vec![17],
                peer: Some("2001:db8:ffff:1234:5678:9abc:def0:1".into()),
            };
        }
        snap.connections.clear();
        let text = render(
            &tunnel_table(&snap),
            &RenderOptions {
                width: Some(80),
                color: false,
            },
        );
        for line in text.lines() {
            assert!(text_width(line) <= 80, "too wide: {line:?}");
        }
        assert!(text.contains("…[17]"), "{text}");
        assert!(text.contains("2001:db8"), "{text}");
        let wide = render(
            &tunnel_table(&snap),
            &RenderOptions {
                width: None,
                color: false,
            },
        );
        assert!(wide.contains("a-very-long-connection-name-from-a-generated-config[17]"));
    }

    #[test]
    fn colour_marks_state_and_headers() {
        let text = render(
            &tunnel_table(&rekeyed_snapshot()),
            &RenderOptions {
                width: Some(80),
                color: true,
            },
        );
        assert!(text.starts_with("\x1b[1mTUNNEL"), "{text:?}");
        assert!(text.contains("\x1b[32mup   \x1b[0m"), "{text:?}");
    }

    #[test]
    fn totals_wrap_before_80_columns_counting_the_semicolon() {
        let summary = Summary {
            loaded: Some(10),
            active: Some(0),
            ike_sas: Some(0),
            half_open: Some(0),
            ipsec_sas: Some(0),
            ..Summary::default()
        };
        let text = summary_text(&summary, Some(80));
        assert_eq!(
            text,
            "total: 0 tunnels up, 0 negotiating, 0 ike only;\n       connections: 10 loaded, 0 active; IKE SAs: 0 (0 half-open); IPsec SAs: 0"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(duration_text(45), "45s");
        assert_eq!(duration_text(303), "5m03s");
        assert_eq!(duration_text(27908), "7h45m");
        assert_eq!(duration_text(3 * 86400 + 4 * 3600), "3d04h");
        assert_eq!(due_text(Due::In(-3)), "overdue");
        assert_eq!(due_text(Due::Hidden), "?");
        let exact = |bytes| ByteCount { bytes, exact: true };
        assert_eq!(bytes_text(exact(812)), "812 B");
        assert_eq!(bytes_text(exact(21120)), "20.6 KiB");
        assert_eq!(bytes_text(exact(3 << 30)), "3.0 GiB");
        assert_eq!(
            bytes_text(ByteCount {
                bytes: 5 * 1024,
                exact: false
            }),
            "~5.0 KiB"
        );
        assert_eq!(utc_time(1_795_857_783), "2026-11-28 09:23:03 UTC");
    }

    #[test]
    fn shorten_keeps_instance_suffix_and_address_ends() {
        assert_eq!(shorten("abcdefghij[12]", 10, Shorten::Name), "abcde…[12]");
        assert_eq!(shorten("abcdefghij", 6, Shorten::Name), "abcde…");
        assert_eq!(shorten("2001:db8::1234:1", 9, Shorten::Middle), "2001…34:1");
        assert_eq!(shorten("short", 9, Shorten::Middle), "short");
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
