//! Rendering the rows of [`super::TunnelTable`] for a terminal: columns,
//! ANSI colours, display width, and the escaping of control and
//! bidirectional formatting characters.
//!
//! Kept apart from the row model so that what a row says and how it looks
//! can change independently; this module only formats, it never decides
//! what a tunnel is or where its numbers come from.

use super::{
    ByteCount, Due, NegotiationRow, NegotiationState, Remote, Summary, TunnelRow, TunnelState,
    TunnelTable,
};
use crate::snapshot::{ConnRef, IkeVersion, TimerKind};
use unicode_width::UnicodeWidthChar;

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
    let mut s = conn.name.to_string();
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
        TimerKind::Other => "timer",
        kind => kind.name(),
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

/// Control characters and bidirectional formatting characters written out
/// (`\x1b`, `\u{9b}`, `\u{202e}`), so that text from outside cannot move the
/// cursor, recolour or retitle the terminal, nor reorder what is printed
/// after it (a right-to-left override makes `gw-evil` read as `live-wg`).
fn escape_controls(text: &str) -> String {
    if !text.chars().any(must_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if must_escape(c) && c.is_ascii() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if must_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` may not reach the terminal as it is: a control character, or
/// one of the bidirectional marks, embeddings, overrides and isolates
/// (U+061C, U+200E/U+200F, U+202A to U+202E, U+2066 to U+2069).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Printed width in terminal columns: two for East Asian wide and
/// fullwidth characters and emoji, none for combining marks and zero-width
/// characters, one otherwise.
fn text_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// The columns one character takes, character by character as terminals
/// count them (wcwidth), not by grapheme cluster: a cut between two
/// characters then never changes the width of what is kept.
fn char_width(c: char) -> usize {
    // Control characters have no width; they never get here unescaped
    // (see `escape_controls`).
    UnicodeWidthChar::width(c).unwrap_or(0)
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
            let stem = text.trim_end_matches(|c: char| c == '[' || c == ']' || c.is_ascii_digit());
            let suffix_len = text_width(&text[stem.len()..]);
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
    use crate::show::tests::{rekeyed_snapshot, traffic};
    use crate::show::tunnel_table;
    use crate::snapshot::Snapshot;
    use proptest::prelude::*;

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
    fn bidi_controls_in_a_name_are_written_out_not_sent_to_the_terminal() {
        assert_eq!(
            escape_controls("gw-\u{202e}live\u{202c}-\u{2066}x\u{2069}\u{200e}\u{200f}\u{61c}"),
            "gw-\\u{202e}live\\u{202c}-\\u{2066}x\\u{2069}\\u{200e}\\u{200f}\\u{61c}"
        );
        // A zero-width joiner only joins: it cannot reorder, and emoji need it.
        assert_eq!(escape_controls("a\u{200d}b"), "a\u{200d}b");
    }

    #[test]
    fn a_shortened_name_ending_in_a_multibyte_character_is_cut_between_characters() {
        assert_eq!(
            shorten("v2-tunnel-with-a-long-long-namé", 10, Shorten::Name),
            "v2-tunnel…"
        );
        assert_eq!(shorten("東京大阪名古屋", 8, Shorten::Name), "東京大…");
        assert_eq!(
            shorten("tunnel-🚀🚀🚀🚀[3]", 10, Shorten::Name),
            "tunnel…[3]"
        );
        assert_eq!(shorten("🚀🚀🚀🚀🚀🚀", 8, Shorten::Name), "🚀🚀🚀…");
    }

    #[test]
    fn wide_characters_take_two_columns_when_padding_and_shortening() {
        assert_eq!(text_width("東京-gw"), 7);
        assert_eq!(pad("東京", 6, false), "東京  ");
        let cut = shorten("東京大阪名古屋", 7, Shorten::Middle);
        assert!(text_width(&cut) <= 7, "{cut}");
        assert_eq!(cut, "東…屋");
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

    /// A character of a generated name: anything, with a bias towards what
    /// breaks terminals and column arithmetic (multibyte, wide, zero-width,
    /// control and bidi characters, instance brackets).
    fn name_char() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            prop::char::range('a', 'z'),
            prop::sample::select(vec![
                '[', ']', '0', '7', '-', 'é', ' ', '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}',
                '\u{2066}', '\u{200f}', '\u{61c}', '\u{301}', '\u{200d}', '\u{fe0f}', '\u{3000}',
            ]),
            prop::char::range('\u{4e00}', '\u{9fff}'),
            prop::char::range('\u{1f300}', '\u{1faff}'),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(name_char(), 0..60).prop_map(|c| c.into_iter().collect())
    }

    /// The rekeyed tunnel and the half-open negotiation renamed, the tunnel
    /// also given instance numbers.
    fn renamed(tunnel: &str, instances: &[u64], negotiation: &str) -> Snapshot {
        let mut snap = rekeyed_snapshot();
        snap.traffic = vec![traffic(4, "tun", 1_795_857_783, 21120)];
        let rename = |conn: &mut ConnRef| match conn.name.as_str() {
            "tun" => {
                conn.name = tunnel.into();
                conn.instances = instances.to_vec();
            }
            "dead" => conn.name = negotiation.into(),
            _ => {}
        };
        snap.states.iter_mut().for_each(|s| rename(&mut s.conn));
        snap.connections
            .iter_mut()
            .for_each(|c| rename(&mut c.conn));
        snap.traffic.iter_mut().for_each(|t| rename(&mut t.conn));
        snap
    }

    /// What may not reach a terminal raw, listed here apart from the code
    /// under test: C0/C1 controls and the bidi formatting characters.
    fn raw_control_or_bidi(c: char) -> bool {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{61c}')
    }

    /// Display columns as the unicode-width tables count them per character.
    fn columns(line: &str) -> usize {
        line.chars()
            .map(|c| UnicodeWidthChar::width(c).unwrap_or(0))
            .sum()
    }

    proptest! {
        #[test]
        fn any_unicode_name_renders_within_80_columns_with_nothing_raw(
            tunnel in name(),
            instances in prop::collection::vec(0u64..100_000, 0..3),
            negotiation in name(),
        ) {
            let table = tunnel_table(&renamed(&tunnel, &instances, &negotiation));
            let narrow = render(&table, &RenderOptions { width: Some(80), color: false });
            let wide = render(&table, &RenderOptions { width: None, color: false });
            for text in [&narrow, &wide] {
                prop_assert!(text.ends_with('\n'));
                for line in text.lines() {
                    prop_assert!(!line.chars().any(raw_control_or_bidi), "raw: {line:?}");
                }
            }
            for line in narrow.lines() {
                prop_assert!(columns(line) <= 80, "{} columns: {line:?}", columns(line));
            }
            // `--wide` never shortens: both names are there as they are
            // (escaped, when they hold something that must not go raw).
            let full = escape_controls(&conn_text(&ConnRef {
                name: tunnel.as_str().into(),
                instances: instances.clone(),
                peer: None,
            }));
            prop_assert!(wide.contains(&full), "{full:?} not in {wide}");
            prop_assert!(wide.contains(&escape_controls(&negotiation)));
            // A table that fits 80 columns as it is is printed unchanged.
            let table_of = |text: &str| text.split("\ntotal: ").next().map(str::to_string);
            let wide_table = table_of(&wide);
            if wide_table.as_deref().is_some_and(|t| t.lines().all(|l| columns(l) <= 80)) {
                prop_assert_eq!(table_of(&narrow), wide_table);
            }
        }
    }
}
