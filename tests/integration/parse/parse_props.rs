//! `parse` on hostile input: arbitrary text, arbitrary bytes, and real dumps
//! mangled line by line. It must never panic, and what it reports must
//! point at real lines: every diagnostic and every state names a line of
//! the input that holds what it says. A garbage line inserted into a real
//! dump must show up as a diagnostic with its line number while every real
//! line around it parses exactly as before.
//!
//! Case counts are modest so the whole file runs in seconds; set
//! `PROPTEST_CASES` (e.g. 20000, with `--release`) for a long local run, and
//! the `fuzz/` target for longer ones. Inputs that once failed are kept in
//! `parse_props.proptest-regressions` and tried first on every run.

use std::path::Path;

use proptest::prelude::*;
use swantrail::Snapshot;
use swantrail::input::{DEFAULT_MAX_BYTES, DumpFeed, DumpOrigin};

/// Real dumps (see tests/fixtures/README.md and tests/fixtures/parser/README.md).
const FIXTURES: &[&str] = &[
    "lab-4.10/status.txt",
    "lab-4.10/trafficstatus.txt",
    "corpus-5.4/status-ikev2-delete-01-west.txt",
    "parser/v3.25-klips-status.txt",
    "parser/v5.4-status.txt",
];

/// The fixtures that are whole `status` dumps with a connection list and a shunt list.
const STATUS_FIXTURES: &[&str] = &[
    "lab-4.10/status.txt",
    "corpus-5.4/status-ikev2-delete-01-west.txt",
];

fn read_fixture(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixtures() -> Vec<String> {
    FIXTURES.iter().map(|f| read_fixture(f)).collect()
}

/// The input's lines as the parser numbers them (1-based, `\r` dropped).
fn numbered_lines(input: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = input.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// What the parser reports must point at real lines of `input`.
fn assert_accounted(input: &str, snap: &Snapshot) -> Result<(), TestCaseError> {
    let lines = numbered_lines(input);
    for d in &snap.diagnostics {
        prop_assert!(
            (1..=lines.len()).contains(&d.line),
            "diagnostic line {} of {}",
            d.line,
            lines.len()
        );
        prop_assert!(!d.reason.is_empty(), "diagnostic without a reason: {d:?}");
        let line = lines[d.line - 1];
        let text = if line.contains(d.text.as_str()) {
            d.text.as_str()
        } else {
            d.text.strip_suffix('…').unwrap_or(&d.text)
        };
        prop_assert!(
            line.contains(text),
            "diagnostic {d:?} does not quote line {}: {line:?}",
            d.line
        );
    }
    for s in &snap.states {
        prop_assert!((1..=lines.len()).contains(&s.line), "state line {}", s.line);
        prop_assert!(
            lines[s.line - 1].contains('#'),
            "state #{} points at line {}: {:?}",
            s.serial,
            s.line,
            lines[s.line - 1]
        );
    }
    for t in &snap.traffic {
        prop_assert!(
            (1..=lines.len()).contains(&t.line),
            "traffic line {}",
            t.line
        );
        prop_assert!(lines[t.line - 1].contains('#'), "traffic line {}", t.line);
    }
    Ok(())
}

/// One edit of a real dump.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    /// Cut line `.0` after `.1` characters.
    Truncate(usize, usize),
    /// Put a line of another (or the same) fixture at `.2`.
    Splice(usize, usize, usize),
    /// Replace character `.1` of line `.0` with `.2`.
    Flip(usize, usize, char),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = 0..10_000usize;
    prop_oneof![
        i.clone().prop_map(Mutation::Delete),
        i.clone().prop_map(Mutation::Duplicate),
        (i.clone(), 0..200usize).prop_map(|(l, at)| Mutation::Truncate(l, at)),
        (0..FIXTURES.len(), i.clone(), i.clone()).prop_map(|(f, l, at)| Mutation::Splice(f, l, at)),
        (i.clone(), 0..200usize, prop::char::range(' ', '~'))
            .prop_map(|(l, at, c)| Mutation::Flip(l, at, c)),
        (i.clone(), i).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn apply(lines: &mut Vec<String>, m: &Mutation, all: &[String]) {
    if lines.is_empty() {
        return;
    }
    let n = lines.len();
    match *m {
        Mutation::Delete(l) => {
            lines.remove(l % n);
        }
        Mutation::Duplicate(l) => {
            let copy = lines[l % n].clone();
            lines.insert(l % n, copy);
        }
        Mutation::Truncate(l, at) => {
            let line = &mut lines[l % n];
            *line = line.chars().take(at).collect();
        }
        Mutation::Splice(f, l, at) => {
            let donor: Vec<&str> = all[f].lines().collect();
            if !donor.is_empty() {
                lines.insert(at % (n + 1), donor[l % donor.len()].to_string());
            }
        }
        Mutation::Flip(l, at, c) => {
            let line = &mut lines[l % n];
            let mut chars: Vec<char> = line.chars().collect();
            if !chars.is_empty() {
                let at = at % chars.len();
                chars[at] = c;
                *line = chars.into_iter().collect();
            }
        }
        Mutation::Swap(a, b) => lines.swap(a % n, b % n),
    }
}

/// Real lines of every fixture, for building line soups.
fn real_line() -> impl Strategy<Value = String> {
    let lines: Vec<String> = fixtures()
        .iter()
        .flat_map(|f| f.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    prop::sample::select(lines)
}

/// Text that looks like status output to a lexer: serials, quotes, items.
fn status_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        real_line(),
        "(000 |006 )?#[0-9]{1,3}: \"[a-z-]{1,8}\"(\\[[0-9]\\])?(:[0-9]{1,5})? [A-Za-z_ ();#0-9=.@-]{0,80}",
        "(000 )?\"[a-z\"-]{0,8}\"?(\\[[0-9]*\\]?)*:? {0,5}[a-z:;#$ 0-9=-]{0,60}",
        "[ -~]{0,100}",
    ]
}

/// 96 cases per property, unless `PROPTEST_CASES` asks for more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        let snap = swantrail::parse(&input);
        assert_accounted(&input, &snap)?;
    }

    #[test]
    fn arbitrary_bytes_decoded_lossily_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let input = String::from_utf8_lossy(&bytes);
        let snap = swantrail::parse(&input);
        assert_accounted(&input, &snap)?;
    }

    #[test]
    fn soups_of_real_and_status_like_lines_never_panic(
        lines in prop::collection::vec(status_like_line(), 0..80),
        crlf in any::<bool>(),
    ) {
        let input = lines.join(if crlf { "\r\n" } else { "\n" }) + "\n";
        let snap = swantrail::parse(&input);
        assert_accounted(&input, &snap)?;
    }

    #[test]
    fn mutated_real_dumps_never_panic_and_report_real_lines(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..8),
        keep_final_newline in any::<bool>(),
    ) {
        let all = fixtures();
        let mut lines: Vec<String> = all[which].lines().map(str::to_string).collect();
        for m in &mutations {
            apply(&mut lines, m, &all);
        }
        let mut input = lines.join("\n");
        if keep_final_newline {
            input.push('\n');
        }
        let snap = swantrail::parse(&input);
        assert_accounted(&input, &snap)?;
        // Cut or not is a fact of the text built, not of the flag: dropping the
        // final newline after a last line truncated to nothing still ends the
        // input in a newline, and that dump is whole.
        if !input.is_empty() && !input.ends_with('\n') {
            prop_assert!(snap.incomplete.is_some(), "a last line without its newline must make the dump incomplete");
        }
    }

    #[test]
    fn garbage_line_in_a_real_dump_is_diagnosed_and_the_rest_parses_unchanged(
        which in 0..STATUS_FIXTURES.len(),
        position in 0..10_000usize,
        garbage in "~[a-zA-Z0-9 .,;:#\"()\\[\\]/-]{0,60}",
    ) {
        let original = read_fixture(STATUS_FIXTURES[which]);
        let lines: Vec<&str> = original.lines().collect();
        // Between the connection-list header and the shunt-list header:
        // the part of a dump where every line means something.
        let first = lines.iter().position(|l| l.ends_with("Connection list:")).expect("header") + 1;
        let last = lines.iter().position(|l| l.ends_with("Bare Shunt list:")).expect("shunts");
        let at = first + position % (last - first + 1);
        let prefix = if lines[0].starts_with("000 ") { "000 " } else { "" };
        let bad = format!("{prefix}{garbage}");
        let mut mangled: Vec<&str> = lines.clone();
        mangled.insert(at, &bad);
        let input = mangled.join("\n") + "\n";

        let before = swantrail::parse(&original);
        let mut after = swantrail::parse(&input);
        let bad_line = at + 1;
        let found = after.diagnostics.iter().position(|d| d.line == bad_line);
        prop_assert!(found.is_some(), "line {bad_line} {bad:?} not in {:?}", after.diagnostics);
        let diag = after.diagnostics.remove(found.unwrap_or_default());
        prop_assert!(bad.contains(diag.text.trim_end_matches('…')), "{diag:?}");

        // Undo the shift of every later line; then nothing else may differ.
        let unshift = |line: &mut usize| if *line > bad_line { *line -= 1 };
        after.states.iter_mut().for_each(|s| unshift(&mut s.line));
        after.traffic.iter_mut().for_each(|t| unshift(&mut t.line));
        after.diagnostics.iter_mut().for_each(|d| unshift(&mut d.line));
        prop_assert_eq!(after, before);
    }
}

/// What `swantrail parse` prints for `bytes` fed in pieces of `piece`
/// bytes, encoded as they are read, or the error it gives.
fn encoded(bytes: &[u8], piece: usize) -> Result<Vec<u8>, String> {
    let mut feed = DumpFeed::encoding(DumpOrigin::Stdin, DEFAULT_MAX_BYTES);
    for chunk in bytes.chunks(piece.max(1)) {
        feed.push(chunk).map_err(|e| e.to_string())?;
    }
    let (snapshot, records) = feed.finish_json(None);
    let snapshot = snapshot.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    records
        .expect("an encoding feed encodes")
        .write(&snapshot, &mut out)
        .expect("writing to memory");
    Ok(out)
}

/// The same, the straightforward way: the whole snapshot, then serde_json.
fn reference(bytes: &[u8], piece: usize) -> Result<Vec<u8>, String> {
    let mut feed = DumpFeed::new(DumpOrigin::Stdin, DEFAULT_MAX_BYTES);
    for chunk in bytes.chunks(piece.max(1)) {
        feed.push(chunk).map_err(|e| e.to_string())?;
    }
    let snapshot = feed.finish(None).map_err(|e| e.to_string())?;
    Ok(serde_json::to_vec(&snapshot).expect("a snapshot encodes"))
}

/// A text in which most lines are real, in an order a real dump never has.
fn line_soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(status_like_line(), 0..80),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }) + "\n")
}

proptest! {
    #![proptest_config(config())]

    /// Records encoded as they are read make the bytes serde_json makes of
    /// the whole snapshot, whatever the lines and their order (SPI and
    /// pending lines under an older SA, the lines of a connection entry
    /// coming apart), and refuse what it refuses.
    #[test]
    fn records_encoded_as_read_are_the_json_of_the_whole_snapshot(
        text in prop_oneof![line_soup(), any::<String>()],
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 0..12),
        mangle_a_fixture in any::<bool>(),
        piece in prop_oneof![1..64usize, 64..100_000usize],
    ) {
        let text = if mangle_a_fixture {
            let all = fixtures();
            let mut lines: Vec<String> = all[which].lines().map(str::to_string).collect();
            for m in &mutations {
                apply(&mut lines, m, &all);
            }
            lines.join("\n") + "\n"
        } else {
            text
        };
        let got = encoded(text.as_bytes(), piece);
        let want = reference(text.as_bytes(), piece);
        prop_assert_eq!(&got, &want);
        let whole = serde_json::to_vec(&swantrail::parse(&text)).expect("a snapshot encodes");
        prop_assert_eq!(got, Ok(whole));
    }

    /// Bytes that are no dump (not UTF-8, binary, a line past the limit)
    /// give the same error or the same JSON either way.
    #[test]
    fn any_bytes_encoded_as_read_are_refused_or_printed_alike(
        bytes in prop::collection::vec(
            prop_oneof![
                8 => any::<u8>(),
                4 => Just(b'\n'),
                1 => Just(b'\r'),
                2 => Just(b'#'),
                2 => Just(b'"'),
            ],
            0..4096,
        ),
        piece in 1..5000usize,
    ) {
        prop_assert_eq!(encoded(&bytes, piece), reference(&bytes, piece));
    }
}

#[test]
fn records_changed_after_their_encoding_are_printed_as_changed() {
    // An SPI line and a pending line under an SA two state lines back,
    // a second SPI line replacing the first, and a connection entry whose
    // lines come apart: each changes a record already encoded.
    let text = concat!(
        "\"a\": 192.0.2.1...192.0.2.2; unrouted;\n",
        "\"b\": 192.0.2.1...192.0.2.3; unrouted;\n",
        "\"a\":   conn serial: $1;\n",
        "\"b\":   conn serial: $2;\n",
        "#1: \"a\":500 established IKE SA; REKEY in 900s; newest; idle;\n",
        "#2: \"a\":500 established Child SA; REKEY in 600s; newest; IKE SA #1; idle;\n",
        "#3: \"b\":500 established IKE SA; REKEY in 900s; newest; idle;\n",
        "#2: \"a\" esp.1@192.0.2.2 esp.2@192.0.2.1 Traffic: ESPin=0B ESPout=0B ESPmax=2^63B \n",
        "#2: \"a\" esp.3@192.0.2.2 esp.4@192.0.2.1 Traffic: ESPin=1KB ESPout=2KB ESPmax=2^63B \n",
        "#1: pending Child SA for \"a\" replacing #2\n",
        "#4: \"b\"[1] 192.0.2.9, type=ESP, add_time=1, inBytes=1, outBytes=2, id='@b'\n",
        "\"a\":   policy: IKEv2+PSK;\n",
    );
    let snapshot = swantrail::parse(text);
    assert_eq!(
        snapshot.states[1]
            .spi_line
            .as_ref()
            .map(|s| s.saids[0].spi.as_str()),
        Some("3")
    );
    assert_eq!(snapshot.states[0].pending.len(), 1);
    assert_eq!(snapshot.connections[0].conn_serial, Some(1));
    assert_eq!(snapshot.connections[1].conn_serial, Some(2));
    let whole = serde_json::to_vec(&snapshot).unwrap();
    for piece in [1, 7, text.len()] {
        assert_eq!(
            encoded(text.as_bytes(), piece),
            Ok(whole.clone()),
            "pieces of {piece}"
        );
    }
}

#[test]
fn garbage_between_a_state_line_and_its_spi_line_is_reported_with_its_number() {
    let original = read_fixture("lab-4.10/status.txt");
    let mut lines: Vec<&str> = original.lines().collect();
    let state = lines
        .iter()
        .position(|l| l.starts_with("000 #21: \"v2-tun\":500 "))
        .expect("v2-tun child state line");
    lines.insert(state + 1, "000 %%% not a status line %%%");
    let input = lines.join("\n") + "\n";
    let snap = swantrail::parse(&input);
    assert_eq!(snap.diagnostics.len(), 1, "{:?}", snap.diagnostics);
    assert_eq!(snap.diagnostics[0].line, state + 2);
    assert!(
        snap.diagnostics[0]
            .text
            .contains("%%% not a status line %%%")
    );
    let child = snap.state(21).expect("#21 still parsed");
    assert!(child.established);
    assert_eq!(
        child.spi_line.as_ref().and_then(|t| t.counter("ESPin")),
        Some(20 * 1024)
    );
}
