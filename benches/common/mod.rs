//! Gateway-sized dumps made from real outputs, and the `wc -l` yardstick.
//!
//! The synthetic generator writes two dialects; the field runs more. This
//! helper takes a real capture (the project's lab or libreswan's own test
//! transcripts) and repeats its connection and SA lines until the dump is
//! gateway-sized, giving every copy its own connection names and serials so
//! that the parser sees as many distinct tunnels as a big gateway shows.
//! The preamble, the totals and the shunt list stay as printed, once. It is
//! for benchmarks only: the copies are well-formed, not realistic in their
//! mix.

// Each bench file uses only some of the helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where a corpus file or fixture lives, relative to the crate.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The shared corpus of libreswan test transcripts, next to the project.
pub fn corpus(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(relative)
}

/// The text after a `000 `-style prefix, as the parser sees it.
fn unprefixed(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
        &line[4..]
    } else {
        line
    }
}

/// Whether a line belongs to one connection or SA (it is repeated).
fn per_tunnel(line: &str) -> bool {
    let text = unprefixed(line);
    text.starts_with('"') || text.starts_with('#')
}

/// `line` as copy `k` prints it: names get `~k`, serials move up by `k * stride`.
fn copy_of(line: &str, k: usize, stride: u64) -> String {
    if k == 0 {
        return line.to_string();
    }
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 16);
    let mut in_name = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            let closes = in_name
                && matches!(
                    b.get(i + 1),
                    None | Some(b'[' | b' ' | b',' | b':' | b'\n' | b'\r')
                );
            if closes {
                out.push_str(&format!("~{k}"));
                in_name = false;
            } else if !in_name {
                in_name = true;
            }
            out.push('"');
            i += 1;
        } else if c == b'#' && !in_name && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let n: u64 = line[start..end].parse().unwrap_or(0);
            out.push_str(&format!("#{}", n + k as u64 * stride));
            i = end;
        } else {
            // Copy the whole UTF-8 character.
            let len = line[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&line[i..i + len]);
            i += len;
        }
    }
    out
}

/// The highest `#N` serial in a text, so copies never collide.
fn max_serial(text: &str) -> u64 {
    text.split('#')
        .skip(1)
        .filter_map(|s| {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// Repeat every run of per-tunnel lines of `text` until the dump holds
/// about `target_bytes`.
pub fn scale_to(text: &str, target_bytes: usize) -> String {
    let body: usize = text
        .split_inclusive('\n')
        .filter(|l| per_tunnel(l))
        .map(str::len)
        .sum();
    let copies = (target_bytes / body.max(1)).max(1);
    let stride = max_serial(text) + 1;
    let mut out = String::with_capacity(target_bytes + text.len());
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        if !per_tunnel(lines[i]) {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let mut end = i;
        while end < lines.len() && per_tunnel(lines[end]) {
            end += 1;
        }
        for k in 0..copies {
            for line in &lines[i..end] {
                out.push_str(&copy_of(line, k, stride));
            }
        }
        i = end;
    }
    out
}

/// Read a file that must exist for the benchmark to mean anything.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (the benchmark needs it)", path.display()))
}

/// CPU time (user + system) of `who`: `RUSAGE_SELF`, `RUSAGE_CHILDREN`
/// (waited-for children) or `RUSAGE_THREAD` (the calling thread).
pub fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time of this process and of its waited-for children.
pub fn cpu_times() -> (Duration, Duration) {
    (cpu(libc::RUSAGE_SELF), cpu(libc::RUSAGE_CHILDREN))
}

/// The least CPU time `wc -l` takes on `path` over `runs` runs (the file
/// is in the page cache after the first).
pub fn wc_l_cpu(path: &Path, runs: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let (_, before) = cpu_times();
        let status = Command::new("wc")
            .arg("-l")
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run wc: {e}"));
        assert!(status.success(), "wc -l failed");
        let (_, after) = cpu_times();
        best = best.min(after - before);
    }
    best
}

/// The least CPU time `f` takes over `runs` runs, in this process.
pub fn least_cpu(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let (before, _) = cpu_times();
        f();
        let (after, _) = cpu_times();
        best = best.min(after - before);
    }
    best
}

/// MB/s (10^6 bytes per second) of `bytes` in `time`.
pub fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64().max(1e-9) / 1e6
}
