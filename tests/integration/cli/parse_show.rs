//! `swantrail parse` and `swantrail show` as an operator runs them: the real
//! binary on real dumps (tests/fixtures/README.md says where each came from).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn swantrail(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swantrail");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bytes)
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for swantrail");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn lab_status() -> String {
    fixture("lab-4.10/status.txt").display().to_string()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("stdout is one JSON document")
}

/// The fields of the row that starts with `name` in the block under `header`.
fn row<'a>(output: &'a str, header: &str, name: &str) -> Option<Vec<&'a str>> {
    output
        .split("\n\n")
        .find(|block| block.starts_with(header))?
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
}

/// Assert a failed run: exit 1, nothing on stdout, one stderr line with `needle`.
fn assert_one_line_error(run: &Run, needle: &str) {
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {:?}", run.stderr);
    assert!(run.stderr.starts_with("swantrail: "), "{:?}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{:?} lacks {needle:?}",
        run.stderr
    );
}

#[test]
fn parse_prints_the_lab_status_as_json() {
    let run = swantrail(&["parse", &lab_status()], None);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let snap = json(&run.stdout);
    assert_eq!(snap["prefixed"], true);
    assert_eq!(snap["kinds"], serde_json::json!(["status"]));
    assert_eq!(snap["connections"].as_array().map(Vec::len), Some(5));
    let mut serials: Vec<u64> = snap["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter_map(|s| s["serial"].as_u64())
        .collect();
    serials.sort();
    assert_eq!(serials, vec![21, 24, 30, 32, 33, 34, 35, 36, 37]);
    assert_eq!(run.stdout.lines().count(), 1, "compact JSON is one line");
}

#[test]
fn parse_pretty_prints_the_same_snapshot_indented() {
    let compact = swantrail(&["parse", &lab_status()], None);
    let pretty = swantrail(&["parse", "--pretty", &lab_status()], None);
    assert_eq!(pretty.code, Some(0));
    assert!(pretty.stdout.lines().count() > 100);
    assert!(pretty.stdout.contains("\n  \"states\": ["));
    assert_eq!(json(&pretty.stdout), json(&compact.stdout));
}

#[test]
fn parse_reads_standard_input_for_dash_and_for_no_file() {
    let bytes = std::fs::read(fixture("lab-4.10/status.txt")).unwrap();
    let from_file = json(&swantrail(&["parse", &lab_status()], None).stdout);
    let dash = swantrail(&["parse", "-"], Some(&bytes));
    let none = swantrail(&["parse"], Some(&bytes));
    assert_eq!(dash.code, Some(0));
    assert_eq!(json(&dash.stdout), from_file);
    assert_eq!(json(&none.stdout), from_file);
}

#[test]
fn parse_of_empty_input_is_an_empty_snapshot() {
    let run = swantrail(&["parse"], Some(b""));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let snap = json(&run.stdout);
    assert_eq!(snap["states"], serde_json::json!([]));
    assert_eq!(snap["traffic"], serde_json::json!([]));
    assert_eq!(snap["diagnostics"], serde_json::json!([]));
}

#[test]
fn parse_of_a_missing_file_fails_naming_it() {
    let run = swantrail(&["parse", "no/such/status.txt"], None);
    assert_one_line_error(&run, "no/such/status.txt: no such file");
}

#[test]
fn parse_of_a_directory_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = swantrail(&["parse", &dir.path().display().to_string()], None);
    assert_one_line_error(&run, "is a directory, not a status dump");
}

#[test]
fn parse_of_binary_data_fails() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0")
        .unwrap();
    let path = f.path().display().to_string();
    let run = swantrail(&["parse", &path], None);
    assert_one_line_error(&run, "binary data (NUL byte at offset 7)");
    assert!(run.stderr.contains(&path));
}

#[test]
fn parse_of_latin1_text_fails_at_the_bad_byte() {
    let run = swantrail(
        &["parse", "-"],
        Some(b"000 Connection list:\n000 \"caf\xe9\": x\n"),
    );
    assert_one_line_error(
        &run,
        "standard input: not UTF-8: invalid byte at offset 29 (line 2)",
    );
}

#[test]
fn parse_refuses_input_over_max_bytes() {
    let run = swantrail(&["parse", "--max-bytes", "1KiB", &lab_status()], None);
    assert_one_line_error(&run, "larger than the limit of 1024 bytes");
    let stdin = swantrail(&["parse", "--max-bytes", "10"], Some(b"01234567890"));
    assert_one_line_error(&stdin, "standard input: larger than the limit of 10 bytes");
}

/// Run `swantrail ARGS` with stdout into `out` and give its stderr and its
/// own peak resident memory in KiB (`wait4`'s `ru_maxrss`, which counts
/// this child alone, not the other tests' children).
#[cfg(target_os = "linux")]
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also gives its peak memory"
)]
fn swantrail_peak_kib(args: &[&str], out: &Path) -> (i32, String, u64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swantrail");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose `Child` is not waited on again.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(libc::WIFEXITED(status), "swantrail did not exit: {status}");
    (libc::WEXITSTATUS(status), stderr, usage.ru_maxrss as u64)
}

/// Endless junk (a log file named as the dump, `yes` on a pipe) used to
/// cost a diagnostic of about a hundred bytes per line, in memory and in
/// the JSON: 923 MB of peak memory and 513 MB of JSON for 300 MB of it.
/// Now the first 20 are listed, the rest counted: what `parse` holds and
/// prints no longer grows with the junk.
#[cfg(target_os = "linux")]
#[test]
fn parse_of_megabytes_of_junk_lists_the_first_diagnostics_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.txt");
    let lines = 300_000;
    // Line 5 is 1 MiB long: no libreswan line is, and none is held whole.
    let mut text = String::with_capacity(8 << 20);
    for n in 1..=lines {
        if n == 5 {
            text.push_str(&"y".repeat(1 << 20));
        } else {
            text.push_str("not libreswan at all");
        }
        text.push('\n');
    }
    std::fs::write(&junk, &text).unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out = dir.path().join("out.json");
    // What the binary takes to parse nothing (a debug build maps a lot).
    let (_, _, base_kib) = swantrail_peak_kib(&["parse", empty.to_str().unwrap()], &out);
    let (code, stderr, peak_kib) = swantrail_peak_kib(&["parse", junk.to_str().unwrap()], &out);
    let stdout = std::fs::read_to_string(&out).unwrap();
    eprintln!(
        "{} MB of junk: {} bytes of JSON, peak RSS {peak_kib} KiB ({base_kib} KiB for nothing)",
        text.len() / 1_000_000,
        stdout.len()
    );
    assert_eq!(code, 0, "{stderr}");
    let snap = json(&stdout);
    let diagnostics = snap["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 20, "{} bytes of JSON", stdout.len());
    let numbers: Vec<u64> = diagnostics
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=20).collect::<Vec<u64>>());
    assert_eq!(diagnostics[0]["text"], "not libreswan at all");
    assert_eq!(
        diagnostics[4]["reason"],
        "a line of 1048576 bytes, longer than libreswan prints; skipped"
    );
    assert_eq!(snap["diagnostics_omitted"], lines - 20);
    assert_eq!(
        snap["incomplete"],
        format!(
            "nothing in it is libreswan status output ({lines} lines not recognised, the first at line 1)"
        )
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("300000 line(s) not recognised"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(stdout.len() < 16 * 1024, "{} bytes of JSON", stdout.len());
    // The 256 KiB read buffer and one 64 KiB line are all the junk costs
    // over parsing nothing; a diagnostic per line took about 40 MiB more.
    assert!(
        peak_kib < base_kib + 8 * 1024,
        "peak RSS {peak_kib} KiB, {base_kib} KiB for nothing"
    );
}

#[test]
fn show_lists_the_rekeyed_lab_tunnels_with_their_newest_serials() {
    let run = swantrail(&["show", &lab_status()], None);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let out = &run.stdout;
    for (name, peer, version, serials) in [
        ("v2-tun", "192.0.2.2", "v2", "#24/#21"),
        ("v1-tun", "192.0.2.2", "v1", "#30/#34"),
        ("v2-short", "192.0.2.2", "v2", "#37/#33"),
    ] {
        let fields = row(out, "TUNNEL", name).unwrap_or_else(|| panic!("no {name} in\n{out}"));
        assert_eq!(&fields[1..5], [peer, version, "up", serials], "{out}");
    }
    // The v2-tun Child SA rekeys in 27908 s; bytes come rounded from the SPI line.
    let v2 = row(out, "TUNNEL", "v2-tun").unwrap();
    assert_eq!(&v2[5..], ["7h45m", "~20.0", "KiB", "~20.0", "KiB"], "{out}");
    assert!(out.contains("    remote @east-v2, since -\n"), "{out}");
}

#[test]
fn show_lists_the_dead_peers_as_negotiating() {
    let run = swantrail(&["show", &lab_status()], None);
    let out = &run.stdout;
    assert_eq!(
        row(out, "NEGOTIATING", "v2-deadpeer"),
        Some(vec![
            "v2-deadpeer",
            "192.0.2.99",
            "v2",
            "#35",
            "negotiating",
            "retransmit",
            "in",
            "7s"
        ]),
        "{out}"
    );
    assert_eq!(
        row(out, "NEGOTIATING", "v1-deadpeer").map(|f| f[..5].to_vec()),
        Some(vec![
            "v1-deadpeer",
            "192.0.2.98",
            "v1",
            "#36",
            "negotiating"
        ]),
        "{out}"
    );
    assert!(out.contains("    sent IKE_SA_INIT request\n"), "{out}");
    assert!(row(out, "TUNNEL", "v2-deadpeer").is_none(), "{out}");
    assert!(
        out.contains(
            "total: 3 tunnels up, 2 negotiating, 0 ike only; connections: 5 loaded, 3 active;"
        ),
        "{out}"
    );
}

#[test]
fn show_fits_80_columns_without_colour_when_piped() {
    let run = swantrail(&["show", &lab_status()], None);
    assert_eq!(run.code, Some(0));
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    for line in run.stdout.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

#[test]
fn show_colours_when_asked_to() {
    let run = swantrail(&["show", "--color", "always", &lab_status()], None);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.starts_with("\x1b[1mTUNNEL"), "{:?}", run.stdout);
    assert!(run.stdout.contains("\x1b[32mup"), "{:?}", run.stdout);
}

#[test]
fn show_works_on_a_trafficstatus_only_dump() {
    let path = fixture("lab-4.10/trafficstatus.txt").display().to_string();
    let run = swantrail(&["show", &path], None);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert_eq!(
        row(out, "TUNNEL", "v1-tun").map(|f| f[3..].to_vec()),
        Some(vec!["up", "-/#34", "-", "3.1", "KiB", "3.1", "KiB"]),
        "{out}"
    );
    assert_eq!(row(out, "TUNNEL", "v2-tun").map(|f| f[4]), Some("-/#21"));
    assert_eq!(row(out, "TUNNEL", "v2-short").map(|f| f[4]), Some("-/#33"));
    assert!(
        out.contains("    remote @east-v2, since 2026-11-28 09:23:03 UTC\n"),
        "{out}"
    );
    assert!(out.contains("total: 3 tunnels up, 0 negotiating"), "{out}");
}

#[test]
fn show_of_status_and_trafficstatus_together_has_exact_bytes_and_times() {
    let mut both = std::fs::read(fixture("lab-4.10/status.txt")).unwrap();
    both.extend(std::fs::read(fixture("lab-4.10/trafficstatus.txt")).unwrap());
    let run = swantrail(&["show", "-"], Some(&both));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert_eq!(
        row(out, "TUNNEL", "v2-tun").map(|f| f[4..].to_vec()),
        Some(vec!["#24/#21", "7h45m", "20.6", "KiB", "20.6", "KiB"]),
        "{out}"
    );
    assert!(
        out.contains("    remote @east-v2, since 2026-11-28 09:23:03 UTC\n"),
        "{out}"
    );
}

#[test]
fn show_of_an_unreadable_file_fails_like_parse() {
    let run = swantrail(&["show", "no/such/status.txt"], None);
    assert_one_line_error(&run, "no/such/status.txt: no such file");
}

#[test]
fn show_reads_the_unprefixed_5x_dialect() {
    let path = fixture("corpus-5.4/status-ikev2-delete-01-west.txt")
        .display()
        .to_string();
    let run = swantrail(&["show", &path], None);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert_eq!(
        row(out, "TUNNEL", "westnet-eastnet-ipv4-psk-ikev2").map(|f| f[1..6].to_vec()),
        Some(vec!["192.1.2.23", "v2", "up", "#1/#2", "?"]),
        "{out}"
    );
}

/// A directory holding a fake `ipsec` that answers `whack --status` and
/// `whack --trafficstatus` with the lab's real 4.10 captures, or fails as
/// a stopped pluto does when `down` is set.
fn fake_ipsec(down: bool) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let status = fixture("lab-4.10/status.txt");
    let traffic = fixture("lab-4.10/trafficstatus.txt");
    let body = if down {
        "echo 'whack: Pluto is not running (no \"/run/pluto/pluto.ctl\")' >&2\nexit 1\n".to_string()
    } else {
        format!(
            "for a in \"$@\"; do case $a in --status) cat '{}';; --trafficstatus) cat '{}';; esac; done\n",
            status.display(),
            traffic.display()
        )
    };
    let script = dir.path().join("ipsec");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn swantrail_with_path(args: &[&str], dir: &Path) -> Run {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(args)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("run swantrail");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

#[test]
fn show_live_asks_pluto_for_status_and_exact_traffic() {
    let ipsec = fake_ipsec(false);
    let run = swantrail_with_path(&["show", "--live", "--color", "never"], ipsec.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let v2 = row(&run.stdout, "TUNNEL", "v2-tun").expect("a v2-tun row");
    assert_eq!(v2[3], "up");
    assert_eq!(v2[4], "#24/#21");
    // Exact bytes come from trafficstatus: no `~` of the rounded counters.
    assert!(
        run.stdout.contains("20.6 KiB") && !run.stdout.contains('~'),
        "{}",
        run.stdout
    );
}

#[test]
fn show_live_without_pluto_is_one_line_saying_so() {
    let ipsec = fake_ipsec(true);
    let run = swantrail_with_path(&["show", "--live"], ipsec.path());
    assert_one_line_error(&run, "Pluto is not running");
}

/// The lab status with the `v2-tun` connection renamed, as
/// `sed 's/"v2-tun"/"NAME"/'` would.
fn lab_status_renamed(name: &str) -> Vec<u8> {
    std::fs::read_to_string(fixture("lab-4.10/status.txt"))
        .unwrap()
        .replace("\"v2-tun\"", &format!("\"{name}\""))
        .into_bytes()
}

#[test]
fn show_shortens_long_names_ending_in_accented_cjk_or_emoji_characters() {
    use unicode_width::UnicodeWidthChar;
    for (name, shortened) in [
        // The column is 24 wide: 23 columns of the name, then `…`.
        (
            "v2-tunnel-with-a-long-long-namé",
            "v2-tunnel-with-a-long-l…",
        ),
        // 22 columns and `…`: the next 2-column character would not fit.
        (
            "v2-東京-大阪-名古屋-札幌-福岡-京都",
            "v2-東京-大阪-名古屋-札…",
        ),
        (
            "v2-rockets-🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀",
            "v2-rockets-🚀🚀🚀🚀🚀🚀…",
        ),
    ] {
        let run = swantrail(&["show", "-"], Some(&lab_status_renamed(name)));
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert_eq!(
            row(&run.stdout, "TUNNEL", shortened).map(|f| f[4]),
            Some("#24/#21"),
            "{name}: {}",
            run.stdout
        );
        for line in run.stdout.lines() {
            let columns: usize = line.chars().filter_map(|c| c.width()).sum();
            assert!(columns <= 80, "{columns} columns: {line:?}");
        }
        let wide = swantrail(&["show", "--wide", "-"], Some(&lab_status_renamed(name)));
        assert_eq!(wide.code, Some(0), "{name}: {}", wide.stderr);
        assert!(
            row(&wide.stdout, "TUNNEL", name).is_some(),
            "{}",
            wide.stdout
        );
    }
}

#[test]
fn show_writes_out_a_right_to_left_override_in_a_name() {
    let run = swantrail(&["show", "-"], Some(&lab_status_renamed("v2-\u{202e}nut")));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stdout.contains('\u{202e}'), "{}", run.stdout);
    assert!(
        row(&run.stdout, "TUNNEL", "v2-\\u{202e}nut").is_some(),
        "{}",
        run.stdout
    );
}

#[test]
fn show_of_empty_input_is_one_line_of_error_not_an_empty_table() {
    let run = swantrail(&["show", "-"], Some(b""));
    assert_one_line_error(&run, "standard input: empty");
    let empty = tempfile::NamedTempFile::new().unwrap();
    let path = empty.path().display().to_string();
    let run = swantrail(&["show", &path], None);
    assert_one_line_error(&run, &format!("{path}: empty"));
}

#[test]
fn show_of_garbage_is_one_line_of_error_naming_the_first_line() {
    let run = swantrail(
        &["show", "-"],
        Some(b"sh: ipsec: command not found\nsecond line\n"),
    );
    assert_one_line_error(
        &run,
        "standard input: nothing in it is libreswan status output (2 lines not recognised, the first at line 1); nothing to show",
    );
}
