//! The small tokens every status dialect shares: the RC prefix, serials,
//! connection references, numbers with units and timer items.
//!
//! These are zero-copy scanners over `&str` slices. They never panic on any
//! input and never allocate except to build the values they return.

use nom::IResult;
use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1};
use nom::combinator::map_res;
use nom::sequence::delimited;

use crate::snapshot::{ConnRef, TimerKind};

/// Strip the 3-digit RC prefix (`000 `, `006 `) of libreswan < 5.0.
///
/// Returns the code, if any, and the rest of the line. A bare `000` whose
/// trailing space was lost counts as a prefixed blank line.
pub fn strip_rc(line: &str) -> (Option<u16>, &str) {
    let b = line.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        let code =
            u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
        if b.len() == 3 {
            return (Some(code), "");
        }
        if b[3] == b' ' {
            return (Some(code), &line[4..]);
        }
    }
    (None, line)
}

/// A substring searcher built once for a word the parser looks for on
/// every line, so that the search runs at memory speed (SIMD) instead of
/// setting up a new searcher per line.
pub struct Word {
    needle: &'static str,
    finder: std::sync::OnceLock<memchr::memmem::Finder<'static>>,
}

impl Word {
    /// The searcher for `needle`, built on first use.
    pub const fn new(needle: &'static str) -> Word {
        Word {
            needle,
            finder: std::sync::OnceLock::new(),
        }
    }

    /// The byte offset of the first occurrence in `haystack`.
    pub fn find(&self, haystack: &str) -> Option<usize> {
        self.finder
            .get_or_init(|| memchr::memmem::Finder::new(self.needle.as_bytes()))
            .find(haystack.as_bytes())
    }

    /// Whether `haystack` holds the word.
    pub fn is_in(&self, haystack: &str) -> bool {
        self.find(haystack).is_some()
    }

    /// `haystack` split around the first occurrence, as `str::split_once`.
    pub fn split_once<'h>(&self, haystack: &'h str) -> Option<(&'h str, &'h str)> {
        let i = self.find(haystack)?;
        Some((&haystack[..i], &haystack[i + self.needle.len()..]))
    }
}

/// Whether `b` is an ASCII byte `str::trim` removes.
fn ascii_space(b: u8) -> bool {
    b < 0x80 && (b as char).is_whitespace()
}

/// `text` without leading whitespace, as `str::trim_start`, with the
/// ASCII start (nearly always) told apart without decoding.
pub fn trim_start(text: &str) -> &str {
    let skip = text.bytes().take_while(|&b| ascii_space(b)).count();
    let t = &text[skip..];
    match t.as_bytes().first() {
        Some(&b) if b >= 0x80 => t.trim_start(),
        _ => t,
    }
}

/// `text` without trailing whitespace, as `str::trim_end`.
pub fn trim_end(text: &str) -> &str {
    let skip = text.bytes().rev().take_while(|&b| ascii_space(b)).count();
    let t = &text[..text.len() - skip];
    match t.as_bytes().last() {
        Some(&b) if b >= 0x80 => t.trim_end(),
        _ => t,
    }
}

/// The words of `text`, as `str::split_whitespace`, split byte by byte
/// when the text is ASCII (an SPI line always is) instead of decoding
/// each character.
pub fn words(text: &str) -> Words<'_> {
    if text.is_ascii() {
        Words::Ascii(text)
    } else {
        Words::Unicode(text.split_whitespace())
    }
}

/// The iterator of [`words`].
pub enum Words<'a> {
    /// What is left of an ASCII text.
    Ascii(&'a str),
    /// Any other text, left to the standard library.
    Unicode(std::str::SplitWhitespace<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Unicode(words) => words.next(),
            Words::Ascii(rest) => {
                let text = trim_start(rest);
                if text.is_empty() {
                    *rest = text;
                    return None;
                }
                let end = text.bytes().position(ascii_space).unwrap_or(text.len());
                *rest = &text[end..];
                Some(&text[..end])
            }
        }
    }
}

/// The offsets of the bytes `x` and `y` in a slice, in order, found eight
/// bytes at a time: a line's separators in one pass, for less than a
/// `memchr` call per separator costs on short lines.
pub struct Positions2<'a> {
    bytes: &'a [u8],
    /// The bytes looked for, repeated in each byte of a word.
    x: u64,
    y: u64,
    /// Where the word in `mask` starts, and where the next one does.
    base: usize,
    next: usize,
    /// The high bit of each byte of the current word that matched.
    mask: u64,
}

impl<'a> Positions2<'a> {
    /// The positions of `x` and `y` (neither of them 0) in `bytes`.
    pub fn new(bytes: &'a [u8], x: u8, y: u8) -> Positions2<'a> {
        debug_assert!(x != 0 && y != 0, "0 pads the last word");
        Positions2 {
            bytes,
            x: u64::from_ne_bytes([x; 8]),
            y: u64::from_ne_bytes([y; 8]),
            base: 0,
            next: 0,
            mask: 0,
        }
    }
}

/// The high bit of each byte of `w` that is 0, and no other bit.
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7) + LOW7) | w | LOW7)
}

impl Iterator for Positions2<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let w = match self.bytes.get(self.next..self.next + 8) {
                Some(c) => u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                None if self.next < self.bytes.len() => {
                    let mut word = [0u8; 8];
                    for (w, &b) in word.iter_mut().zip(&self.bytes[self.next..]) {
                        *w = b;
                    }
                    u64::from_le_bytes(word)
                }
                None => return None,
            };
            self.mask = zero_bytes(w ^ self.x) | zero_bytes(w ^ self.y);
            self.base = self.next;
            self.next += 8;
        }
        let at = self.base + (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// The pieces of `text` between `;` separators, as `text.split(';')`.
pub fn semicolon_items(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b';', text.as_bytes())
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let end = end.unwrap_or(text.len());
            let item = &text[start..end];
            start = end + 1;
            item
        })
}

/// A decimal number that fits a `u64`.
pub fn number(input: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>)(input)
}

/// `#N: ` at the start of a state, SPI, pending or traffic line.
pub fn serial_colon(input: &str) -> IResult<&str, u64> {
    delimited(char('#'), number, tag(": "))(input)
}

/// `[N]` instance serials.
fn instance(input: &str) -> IResult<&str, u64> {
    delimited(char('['), number, char(']'))(input)
}

/// Scan `"NAME"[N]*` and return the name (borrowed from the line), the
/// instances and the rest.
///
/// The name ends at the first `"` that is followed by `[`, space, `,`, `:`
/// or the end of the line (names may themselves contain quotes).
pub fn conn_name_ref(input: &str) -> Option<(&str, Vec<u64>, &str)> {
    let body = input.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut end = None;
    for i in memchr::memchr_iter(b'"', bytes) {
        match bytes.get(i + 1) {
            None | Some(b'[' | b' ' | b',' | b':') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let name = &body[..end];
    let mut rest = &body[end + 1..];
    let mut instances = Vec::new();
    while rest.starts_with('[') {
        let Ok((r, n)) = instance(rest) else { break };
        instances.push(n);
        rest = r;
    }
    Some((name, instances, rest))
}

/// A connection reference whose suffix ends where `suffix_end` says.
///
/// `suffix_end` gets the text after the instances (starting with the space
/// before the suffix) and returns the byte length of the suffix part.
pub fn conn_ref(input: &str, suffix_end: impl Fn(&str) -> usize) -> Option<(ConnRef, &str)> {
    let (name, instances, peer, rest) = conn_ref_parts(input, suffix_end)?;
    Some((
        ConnRef {
            name: name.into(),
            instances,
            peer: peer.map(Into::into),
        },
        rest,
    ))
}

/// The text after a connection reference read as [`conn_ref`] reads it,
/// for a line that needs only what follows (the SPI line): nothing of the
/// reference is copied.
pub fn after_conn_ref(input: &str, suffix_end: impl Fn(&str) -> usize) -> Option<&str> {
    conn_ref_parts(input, suffix_end).map(|(_, _, _, rest)| rest)
}

/// [`conn_ref`] borrowing from the line: name, instances, suffix, rest
/// (for a reader that copies them into buffers it has).
pub fn conn_ref_parts(
    input: &str,
    suffix_end: impl Fn(&str) -> usize,
) -> Option<(&str, Vec<u64>, Option<&str>, &str)> {
    let (name, instances, rest) = conn_name_ref(input)?;
    let mut peer = None;
    let mut rest = rest;
    if !instances.is_empty() && rest.starts_with(' ') {
        let len = suffix_end(rest).min(rest.len());
        if !rest.is_char_boundary(len) {
            return None;
        }
        let suffix = rest[..len].trim();
        if !suffix.is_empty() {
            peer = Some(suffix);
        }
        rest = &rest[len..];
    }
    Some((name, instances, peer, rest))
}

/// Bytes given by a `jam_readable_humber` (`84B`, `5KB`, `12MB`) or a
/// `jam_humber` (`2^63B`, `1GiB`, `4194303B`). `None` for `2^63`
/// (unlimited) and for anything else.
pub fn humber(text: &str) -> Option<u64> {
    let text = trim_bangs(text);
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (digits, unit) = text.split_at(digits);
    if unit.starts_with('^') {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let unit = unit.strip_suffix('B')?;
    let mult: u64 = match unit {
        "" => 1,
        "K" | "Ki" => 1 << 10,
        "M" | "Mi" => 1 << 20,
        "G" | "Gi" => 1 << 30,
        "T" | "Ti" => 1 << 40,
        "P" | "Pi" => 1 << 50,
        "E" | "Ei" => 1 << 60,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `text` without the `!` pluto puts around a counter past its limit
/// (`!0B!`), as `trim_matches('!')` without a searcher per call.
pub fn trim_bangs(text: &str) -> &str {
    let b = text.as_bytes();
    let start = b.iter().take_while(|&&c| c == b'!').count();
    let end = b.len() - b[start..].iter().rev().take_while(|&&c| c == b'!').count();
    // `!` is ASCII: both ends are character boundaries.
    &text[start..end]
}

/// A timer item: `REKEY in 27944s`, `EVENT_SA_REPLACE in  XXs`, `none in -1s`.
///
/// Returns the printed name, its kind, and the due seconds when they are
/// a number (the corpus sanitises them to `XX`). `none` yields `None`.
pub fn timer_item(item: &str) -> Option<(&str, Option<i64>)> {
    let (name, rest) = split_at_in(item)?;
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let secs = rest.trim_start().strip_suffix('s')?;
    let due = match whole_signed(secs) {
        Some(n) => Some(n),
        None if !secs.is_empty() && secs.bytes().all(|c| c.is_ascii_alphanumeric()) => None,
        None => return None,
    };
    Some((name, due))
}

/// `text` when it is all of a signed decimal number (`-1`, `27944`; no
/// `+`), read without a parser combinator per timer.
fn whole_signed(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `item` split around its first `" in "`, found from its spaces: the
/// items of a state line are short and most have one space or none, where
/// a substring searcher costs more to start than to run.
fn split_at_in(item: &str) -> Option<(&str, &str)> {
    let b = item.as_bytes();
    memchr::memchr_iter(b' ', b)
        .find(|&i| b[i + 1..].starts_with(b"in "))
        .map(|i| (&item[..i], &item[i + 4..]))
}

/// Map a printed timer name onto what it will do (docs/libreswan-format.md §11).
pub fn timer_kind(name: &str) -> TimerKind {
    let short = ["EVENT_", "SA_", "v1_", "v2_", "SA_"]
        .iter()
        .fold(name, |s, prefix| strip_all(s, prefix));
    match short {
        s if s.starts_with("REKEY") => TimerKind::Rekey,
        s if s.starts_with("REPLACE") || s == "REAUTH" => TimerKind::Replace,
        "EXPIRE" => TimerKind::Expire,
        s if s.starts_with("RETRANSMIT")
            || s.starts_with("TIMEOUT_")
            || s == "RESPONDER_TIMEOUT"
            || s == "SEND_NEXT_IKE"
            || s == "INITIATE_CHILD" =>
        {
            TimerKind::Retransmit
        }
        "LIVENESS" | "DPD" | "DPD_TIMEOUT" => TimerKind::Liveness,
        "DISCARD" | "SO_DISCARD" => TimerKind::Discard,
        _ => TimerKind::Other,
    }
}

/// `text` without every leading repeat of `prefix`, as
/// `str::trim_start_matches` (which builds a substring searcher per call).
fn strip_all<'a>(mut text: &'a str, prefix: &str) -> &'a str {
    while let Some(rest) = text.strip_prefix(prefix) {
        text = rest;
    }
    text
}

/// Take the first `len` characters of `text` for a diagnostic, on a char boundary.
pub fn excerpt(text: &str, len: usize) -> String {
    match text.char_indices().nth(len) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_prefix_is_stripped_once_and_kept() {
        assert_eq!(strip_rc("000 #1: x"), (Some(0), "#1: x"));
        assert_eq!(strip_rc("006 #2: y"), (Some(6), "#2: y"));
        assert_eq!(strip_rc("000  "), (Some(0), " "));
        assert_eq!(strip_rc("000"), (Some(0), ""));
        assert_eq!(strip_rc("#1: z"), (None, "#1: z"));
        assert_eq!(strip_rc("2001:db8"), (None, "2001:db8"));
    }

    #[test]
    fn conn_name_allows_quotes_and_odd_characters() {
        let (n, i, r) =
            conn_name_ref("\"private-or-clear#192.1.2.0/24-(0--6--22)\"[3] ...1.2.3.4:500")
                .unwrap();
        assert_eq!(n, "private-or-clear#192.1.2.0/24-(0--6--22)");
        assert_eq!(i, vec![3]);
        assert_eq!(r, " ...1.2.3.4:500");
        let (n, i, _) = conn_name_ref("\"a\"b\"[1][2] x").unwrap();
        assert_eq!(n, "a\"b");
        assert_eq!(i, vec![1, 2]);
        assert!(conn_name_ref("\"unterminated").is_none());
    }

    #[test]
    fn trims_are_the_str_trims() {
        for s in [
            "",
            " ",
            "a",
            " a ",
            "\t a\x0b",
            "\u{a0}a\u{2003} ",
            " \u{a0} a b\u{3000}",
            "é ",
            " é",
        ] {
            assert_eq!(trim_start(s), s.trim_start(), "{s:?}");
            assert_eq!(trim_end(s), s.trim_end(), "{s:?}");
        }
    }

    #[test]
    fn words_are_split_whitespace() {
        for s in [
            "",
            "  ",
            "a",
            " a  b\tc\x0b d \r",
            "é a\u{a0}b  c",
            "esp.1@a Traffic: x=1 ",
        ] {
            assert_eq!(
                words(s).collect::<Vec<_>>(),
                s.split_whitespace().collect::<Vec<_>>(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn positions_of_two_bytes_in_any_length() {
        for len in 0..40 {
            let text: Vec<u8> = (0..len).map(|i| b"a;b:c d;;:e"[i % 11]).collect();
            let want: Vec<usize> = (0..len)
                .filter(|&i| matches!(text[i], b';' | b':'))
                .collect();
            let got: Vec<usize> = Positions2::new(&text, b';', b':').collect();
            assert_eq!(got, want, "{len}");
        }
        let high = [0xff, 0x80, 0xbb, b';', 0x7f, b':', 0xba, 0xbb, b';'];
        assert_eq!(
            Positions2::new(&high, b';', b':').collect::<Vec<_>>(),
            [3, 5, 8]
        );
    }

    #[test]
    fn humbers_of_every_printer() {
        assert_eq!(humber("84B"), Some(84));
        assert_eq!(humber("5KB"), Some(5 * 1024));
        assert_eq!(humber("2048MB"), Some(2048 << 20));
        assert_eq!(humber("1GiB"), Some(1 << 30));
        assert_eq!(humber("0B!"), Some(0));
        assert_eq!(humber("!!12KB!"), Some(12 * 1024));
        assert_eq!(humber("!"), None);
        assert_eq!(humber("2^63B"), None);
        assert_eq!(humber("ESPSPIi"), None);
    }

    #[test]
    fn timers_of_every_epoch() {
        assert_eq!(timer_item("REKEY in 27944s"), Some(("REKEY", Some(27944))));
        assert_eq!(
            timer_item("RETRANSMIT in -1s"),
            Some(("RETRANSMIT", Some(-1)))
        );
        assert_eq!(
            timer_item("EVENT_SA_REPLACE in  XXs"),
            Some(("EVENT_SA_REPLACE", None))
        );
        assert_eq!(timer_item("none in -1s"), Some(("none", Some(-1))));
        // A count too long for an i64 is a sanitised due time; a sign
        // other than one `-` is no timer at all.
        assert_eq!(
            timer_item("REKEY in 99999999999999999999s"),
            Some(("REKEY", None))
        );
        assert_eq!(timer_item("REKEY in -99999999999999999999s"), None);
        assert_eq!(timer_item("REKEY in +5s"), None);
        assert_eq!(timer_item("REKEY in --5s"), None);
        assert_eq!(timer_item("REKEY in s"), None);
        assert_eq!(timer_item("lastdpd=-1s(seq in:0 out:0)"), None);
        assert_eq!(timer_kind("EVENT_SA_REKEY"), TimerKind::Rekey);
        assert_eq!(
            timer_kind("EVENT_v2_SA_REPLACE_IF_USED_IKE"),
            TimerKind::Replace
        );
        assert_eq!(timer_kind("EVENT_SA_EXPIRE"), TimerKind::Expire);
        assert_eq!(timer_kind("EXPIRE"), TimerKind::Expire);
        assert_eq!(timer_kind("EVENT_v1_RETRANSMIT"), TimerKind::Retransmit);
        assert_eq!(timer_kind("TIMEOUT_INITIATOR"), TimerKind::Retransmit);
        assert_eq!(timer_kind("DISCARD"), TimerKind::Discard);
        assert_eq!(timer_kind("NAT_KEEPALIVE"), TimerKind::Other);
    }
}
