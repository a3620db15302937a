//! Writes synthetic libreswan output for the scale measurements
//! (`scripts/scale.sh`): one dump, a churning series, or the issue's
//! "N copies of a real capture" dump. Dev-only: it needs the `synth`
//! feature, which `cargo run --example synth` turns on through the crate's
//! dev-dependency on itself.
//!
//! ```text
//! synth dump TUNNELS DIALECT OUTPUT            # to stdout
//! synth series TUNNELS STEPS CHURN DIALECT DIR  # DIR/<step>-{status,showstates,trafficstatus}.txt
//! synth step TUNNELS STEP CHURN DIALECT OUTPUT  # snapshot STEP of that series, to stdout
//! synth copies N CAPTURE                        # CAPTURE's tunnels N times, to stdout
//! ```
//!
//! DIALECT is 4.10, 5.0, 5.3 or 5.4; OUTPUT is status, showstates or
//! trafficstatus; CHURN is the share of the up tunnels changed per step
//! (0.01 = 1 %, split evenly between rekeys, additions, deletions and
//! half-open negotiations).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use swantrail::synth::{Churn, Dialect, Output, Series};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth: {e}");
            eprintln!(
                "usage: synth dump TUNNELS DIALECT OUTPUT | synth series TUNNELS STEPS CHURN DIALECT DIR | synth step TUNNELS STEP CHURN DIALECT OUTPUT | synth copies N CAPTURE"
            );
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    let number = |i: usize| -> Result<usize, String> {
        arg(i)?.parse().map_err(|e| format!("{:?}: {e}", args[i]))
    };
    let dialect = |i: usize| -> Result<Dialect, String> {
        let label = arg(i)?;
        Dialect::from_label(label).ok_or(format!("unknown dialect {label:?}"))
    };
    let output = |i: usize| -> Result<Output, String> {
        match arg(i)? {
            "status" => Ok(Output::Status),
            "showstates" => Ok(Output::ShowStates),
            "trafficstatus" => Ok(Output::TrafficStatus),
            other => Err(format!("unknown output {other:?}")),
        }
    };
    let churn = |i: usize| -> Result<f64, String> {
        arg(i)?
            .parse()
            .map_err(|e| format!("churn {:?}: {e}", args[i]))
    };
    match arg(0)? {
        "dump" => {
            let gateway = swantrail::synth::Gateway::new(number(1)?);
            write_stdout(&gateway.dump(dialect(2)?, output(3)?).text)
        }
        "step" => {
            // Regenerated from the start: the series needs no files, so a
            // poll command can print snapshot N of a 50,000-tunnel series.
            let mut series = Series::new(number(1)?, Churn::even(churn(3)?));
            for _ in 0..number(2)? {
                series.advance();
            }
            write_stdout(&series.gateway().dump(dialect(4)?, output(5)?).text)
        }
        "series" => {
            let churn = churn(3)?;
            let (dialect, dir) = (dialect(4)?, Path::new(arg(5)?));
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut series = Series::new(number(1)?, Churn::even(churn));
            for step in 0..number(2)? {
                if step > 0 {
                    series.advance();
                }
                for (word, output) in [
                    ("status", Output::Status),
                    ("showstates", Output::ShowStates),
                    ("trafficstatus", Output::TrafficStatus),
                ] {
                    let path = dir.join(format!("{step:04}-{word}.txt"));
                    std::fs::write(&path, series.gateway().dump(dialect, output).text)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            Ok(())
        }
        "copies" => {
            let capture = std::fs::read_to_string(arg(2)?)
                .map_err(|e| format!("{}: {e}", arg(2).unwrap_or_default()))?;
            write_stdout(&copies(&capture, number(1)?)?)
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// The issue's method: the connection list and the states of a real
/// `status` capture repeated `n` times, each copy with its own names
/// (`"v2-tun-7"`), serials (`#N + 40·k`, so they never collide when the
/// capture's serials stay below 40), connection serials and SPIs; the
/// preamble, totals and shunts once.
fn copies(capture: &str, n: usize) -> Result<String, String> {
    let lines: Vec<&str> = capture.lines().collect();
    let find = |what: &str| {
        lines
            .iter()
            .position(|l| l.ends_with(what))
            .ok_or(format!("the capture has no {what:?} line"))
    };
    let list = find("Connection list:")? + 2;
    let totals = lines
        .iter()
        .position(|l| l.contains("Total IPsec connections:"))
        .ok_or("the capture has no totals line")?;
    let states = lines
        .iter()
        .position(|l| l.starts_with("000 #") || l.starts_with('#'))
        .ok_or("the capture lists no states")?;
    let shunts = lines
        .iter()
        .position(|l| l.ends_with("Bare Shunt list:"))
        .ok_or("the capture has no shunt list")?;
    let conns = &lines[list..totals - 1];
    let middle = &lines[totals - 1..states];
    let sas = &lines[states..shunts - 1];
    let mut out = String::with_capacity(capture.len() * n);
    let mut push = |l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    lines[..list].iter().for_each(|l| push(l));
    for k in 0..n {
        conns.iter().for_each(|l| push(&renamed(l, k)));
    }
    middle.iter().for_each(|l| push(l));
    for k in 0..n {
        sas.iter().for_each(|l| push(&renamed(l, k)));
    }
    lines[shunts - 1..].iter().for_each(|l| push(l));
    Ok(out)
}

/// Line `l` of copy `k`: `"name"` → `"name-k"`, `#N` → `#N+40k` (not `#0`),
/// `$N` → `$N+5k`, `esp.SPI@` → a SPI of its own.
fn renamed(l: &str, k: usize) -> String {
    let mut out = String::with_capacity(l.len() + 16);
    let mut rest = l;
    while let Some(c) = rest.chars().next() {
        match c {
            '"' => {
                let end = rest[1..].find('"').map_or(rest.len(), |e| e + 1);
                out.push_str(&rest[..end]);
                if end < rest.len() {
                    out.push_str(&format!("-{k}\""));
                    rest = &rest[end + 1..];
                } else {
                    rest = "";
                }
            }
            '#' | '$' => {
                let digits = rest[1..].chars().take_while(char::is_ascii_digit).count();
                match rest[1..1 + digits].parse::<u64>() {
                    Ok(0) | Err(_) => out.push_str(&rest[..1 + digits]),
                    Ok(v) => {
                        let step = if c == '#' { 40 } else { 5 };
                        out.push_str(&format!("{c}{}", v + step * k as u64));
                    }
                }
                rest = &rest[1 + digits..];
            }
            _ if rest.starts_with("esp.") => {
                let hex = rest[4..]
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .count();
                match u64::from_str_radix(&rest[4..4 + hex], 16) {
                    Ok(spi) if rest[4 + hex..].starts_with('@') => out.push_str(&format!(
                        "esp.{:x}",
                        (spi + k as u64 * 0x10001) & 0xffff_ffff
                    )),
                    _ => out.push_str(&rest[..4 + hex]),
                }
                rest = &rest[4 + hex..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}
