//! The tunnels of a libreswan status dump, by another program than swantrail
//! using the core alone: `tunnels [DUMP]` reads `ipsec status` output from
//! the file DUMP, or from standard input without one, and prints one line
//! per tunnel up: its connection name and its peer (`-` if none is printed).
//!
//! It is the README's example with the I/O a program of its own needs; it
//! exits 1 with one line on standard error when the dump cannot be read, is
//! larger than [`MAX_BYTES`] or is not a complete status dump.

use std::io::Read;
use std::process::ExitCode;

/// The largest dump read, as swantrail's default `--max-bytes`: far above
/// any gateway's, and what keeps a runaway input from taking all memory.
const MAX_BYTES: u64 = 1024 * 1024 * 1024;

fn main() -> ExitCode {
    let (name, input): (String, Box<dyn Read>) = match std::env::args_os().nth(1) {
        Some(path) => {
            let name = path.to_string_lossy().into_owned();
            match std::fs::File::open(&path) {
                Ok(file) => (name, Box::new(file)),
                Err(e) => {
                    eprintln!("tunnels: cannot read {name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => ("standard input".to_string(), Box::new(std::io::stdin())),
    };
    let mut dump = String::new();
    if let Err(e) = input.take(MAX_BYTES + 1).read_to_string(&mut dump) {
        eprintln!("tunnels: cannot read {name}: {e}");
        return ExitCode::FAILURE;
    }
    if dump.len() as u64 > MAX_BYTES {
        eprintln!("tunnels: {name} is larger than {MAX_BYTES} bytes, more than any status dump");
        return ExitCode::FAILURE;
    }
    let snapshot = swantrail_core::parse(&dump);
    if let Some(why) = &snapshot.incomplete {
        eprintln!("tunnels: {name} is not a complete status dump: {why}");
        return ExitCode::FAILURE;
    }
    for tunnel in snapshot.tunnels_up() {
        println!("{} {}", tunnel.name, tunnel.peer.as_deref().unwrap_or("-"));
    }
    ExitCode::SUCCESS
}
