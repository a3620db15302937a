//! What pluto's own log says happened, read by the patterns pluto 4.10
//! prints (`initiator rekeyed Child SA #M`, `initiating Quick Mode ... to
//! replace #M`, `IPsec SA established`, ...). Tests compare swantrail's
//! events against it: pluto's log is the truth.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the log says happened.
#[derive(Default)]
pub struct PlutoLog {
    /// (kind, new serial, replaced serial).
    pub rekeys: BTreeSet<(&'static str, u64, u64)>,
    /// Serials of SAs pluto logged as established, IKE and Child.
    pub established: BTreeSet<u64>,
    /// For every serial: seconds since midnight when pluto first logged it
    /// established, and when it first logged deleting it (or, for a Child
    /// SA, its traffic summary, which is all a deletion with its parent logs).
    pub lifetimes: BTreeMap<u64, (Option<i64>, Option<i64>)>,
}

/// Whether pluto's words say the SA is up (as initiator, responder or
/// by a rekey).
fn says_established(what: &str) -> bool {
    [
        "initiator established",
        "responder established",
        "IKE SA established",
        "IPsec SA established",
        "initiator rekeyed",
        "responder rekeyed",
    ]
    .iter()
    .any(|p| what.starts_with(p))
}

/// Seconds since midnight of a log line (`Nov 28 10:39:13.978532: ...`).
fn time_of_day(line: &str) -> Option<i64> {
    let hms = line.get(7..15)?;
    let p: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    (p.len() == 3).then(|| p[0] * 3600 + p[1] * 60 + p[2])
}

/// `"conn" #N: rest` → (N, rest).
fn serial_and_text(line: &str) -> Option<(u64, &str)> {
    let after_conn = line.split_once("\" #")?.1;
    let (n, rest) = after_conn.split_once(": ")?;
    Some((n.parse().ok()?, rest))
}

/// The number at the start of `text`.
fn leading_serial(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn read_log(path: &Path) -> PlutoLog {
    let text = std::fs::read_to_string(path).unwrap();
    let mut log = PlutoLog::default();
    let mut v1_replacing = Vec::new();
    for line in text.lines() {
        let Some((serial, what)) = serial_and_text(line) else {
            continue;
        };
        let life = log.lifetimes.entry(serial).or_default();
        if says_established(what) {
            log.established.insert(serial);
            if life.0.is_none() {
                life.0 = time_of_day(line);
            }
        }
        // A Child SA deleted with its IKE SA (at shutdown, say) gets no
        // "deleting" line of its own, only the traffic summary pluto logs
        // as it deletes it.
        let deleted = what.starts_with("deleting") || what.starts_with("ESP traffic information");
        if deleted && life.1.is_none() {
            life.1 = time_of_day(line);
        }
        if let Some(rest) = what.strip_prefix("initiator rekeyed Child SA #") {
            log.rekeys
                .insert(("child-sa-rekeyed", serial, leading_serial(rest).unwrap()));
        } else if let Some(rest) = what.strip_prefix("initiator rekeyed IKE SA #") {
            log.rekeys
                .insert(("ike-sa-rekeyed", serial, leading_serial(rest).unwrap()));
        } else if let Some((_, old)) = what
            .split_once(" to replace #")
            .filter(|_| what.starts_with("initiating Quick Mode"))
        {
            v1_replacing.push(("child-sa-rekeyed", serial, leading_serial(old).unwrap()));
        } else if let Some(old) =
            what.strip_prefix("initiating IKEv1 Main Mode connection to replace #")
        {
            v1_replacing.push(("ike-sa-rekeyed", serial, leading_serial(old).unwrap()));
        }
    }
    // An IKEv1 "replace" is a rekey only when both SAs were up: the dead
    // peers' retries also say "to replace #N".
    for (kind, new, old) in v1_replacing {
        if log.established.contains(&new) && log.established.contains(&old) {
            log.rekeys.insert((kind, new, old));
        }
    }
    log
}
