//! One line of pluto's own log, decoded into what happened to which SA.
//!
//! pluto says in words what its audit records and listings only imply:
//! that a Child SA was rekeyed by another (`initiator rekeyed Child SA #27
//! using #25`), that the peer deleted it (`received Delete SA payload`),
//! that its peer stopped answering (`liveness action - ...`), that a
//! negotiation timed out or was refused (`IKE_SA_INIT_I: 60 second timeout
//! exceeded`, `AUTHENTICATION_FAILED`), that pluto is shutting down. The
//! wording of libreswan 3.x, 4.x and 5.x is read, with or without
//! `logtime=yes` stamps (`Dec  2 04:53:14.070137: `) and with a syslog
//! prefix (`Dec  2 04:53:14 gw pluto[887]: `):
//!
//! ```text
//! "v2-short" #27: initiator rekeyed Child SA #25 using #24; IPsec tunnel [...]
//! "v1-tun" #6: received Delete SA payload: self-deleting ISAKMP State #6
//! "v2-tun" #3: deleting IKE SA (ESTABLISHED_IKE_SA) aged 12.1s and sending notification
//! ```
//!
//! A line says one thing about one SA (or one connection, or pluto
//! itself); which SA ended why is decided by the tracker from the lines
//! together (`track/pluto_log.rs`). This module never allocates more than
//! a bounded copy of one line, and a line it does not know is `None`,
//! never an error: pluto's log is prose, and most of it is not about SAs.

use crate::snapshot::SaKind;

/// The longest part of a line kept in a record (the cause line an event
/// carries); a longer one is cut at a character boundary.
pub const MAX_KEPT_LINE: usize = 256;

/// pluto's role in the exchange that made an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This end started the exchange.
    Initiator,
    /// The peer started it.
    Responder,
}

/// What one line says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// `Starting Pluto (Libreswan Version ...) pid:887`: a new pluto run;
    /// serials count from #1 again.
    PlutoStarted {
        /// The pid it logged, when it did.
        pid: Option<u32>,
    },
    /// `Pluto is shutting down`: every SA still up ends with this run.
    PlutoShuttingDown,
    /// `not rekey stale Child SA #548; as already got a newer #604` (4.x):
    /// at the SA's rekey time its connection had a newer one up, so pluto
    /// deletes it instead of rekeying it.
    StaleNotRekeyed,
    /// An SA came up: as initiator or responder, fresh or by a rekey.
    Established {
        /// IKE (ISAKMP) SA or Child (IPsec) SA.
        kind: SaKind,
        /// 1 for `ISAKMP SA established` / `IPsec SA established`, else 2.
        ike_version: u8,
        /// Who started the exchange, when the line says.
        role: Option<Role>,
        /// The SA it rekeyed (`rekeyed Child SA #25`), when it says.
        replaces: Option<u64>,
        /// A Child SA's IKE SA (`using #24`, IKEv1 `using isakmp#24`).
        parent: Option<u64>,
    },
    /// A negotiation started on this serial (`initiating Quick Mode ...`,
    /// `sent IKE_SA_INIT request`): what kind of SA it is meant to be,
    /// and the SA it is meant to replace when the line says (IKEv1 `to
    /// replace #5`, IKEv2 `initiating rekey to replace Child SA #5`).
    Negotiating {
        /// The kind the negotiation makes.
        kind: SaKind,
        /// The SA it replaces, if it comes up while that one is still up.
        replaces: Option<u64>,
    },
    /// The peer deleted it (`received Delete SA payload`, IKEv1
    /// `received Delete SA(0x...) payload`, IKEv2 `received Delete`).
    PeerDeleted,
    /// The peer stopped answering the liveness (DPD) checks.
    LivenessFailure,
    /// Retransmissions ran out (`... second timeout exceeded after N
    /// retransmits`): a negotiation timeout, or on an established IKE SA a
    /// liveness probe that was never answered.
    Timeout,
    /// The peer refused to authenticate us, or we it.
    AuthenticationFailed,
    /// Its lifetime ran out without a rekey (`IKE SA expired`, `CHILD SA
    /// expired (--dontrekey)`, EVENT_SA_EXPIRE).
    Expired,
    /// pluto will bring its connection up again (`connection is supposed
    /// to remain up; revival attempt 1 ...`, 4.x `schedule EVENT_REVIVE_CONNS`).
    Revival,
    /// An administrator took the connection down (`"c": terminating SAs
    /// using this connection`, after `whack --down`/`--delete`) or deleted
    /// one of its SAs (`"c" #5: received whack to delete ...`, after
    /// `whack --deletestate`).
    Terminating,
    /// pluto deleted it: the last line of the SA (`deleting state (...)`,
    /// `deleting IKE SA ...`, `deleting established Child SA ...`, and a
    /// Child SA's `ESP traffic information` as it goes with its IKE SA).
    Deleting {
        /// `and sending notification` (`Some(true)`), `and NOT sending
        /// notification` (`Some(false)`), or not said.
        notified: Option<bool>,
        /// The same line says pluto will revive the connection.
        revival: bool,
        /// What the line says the SA was when it says it was up: a
        /// traffic summary (`ESP traffic information`, logged only for a
        /// Child SA pluto had installed), `deleting established Child SA`,
        /// or an established state's name (`(STATE_V2_ESTABLISHED_IKE_SA)`,
        /// `(MAIN_I4)`, `(QUICK_R2)`, 5.4's `(established IKE SA)`). A
        /// reader that joined while the SA was up learns it here.
        was_up: Option<WasUp>,
    },
    /// Any other line about the SA: it was still there. A negotiation
    /// pluto drops without a `deleting` line (the larval Child SA of a
    /// refused IKE_AUTH) ended at its last line.
    Mentioned,
}

/// An SA a `deleting` line shows was up: its kind, and its IKE version
/// when the line tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasUp {
    /// An IKE (ISAKMP) SA or a Child (IPsec) SA.
    pub kind: SaKind,
    /// 1 or 2, when the line tells it (a traffic summary does not).
    pub ike_version: Option<u8>,
}

/// What a `deleting` line (the text after `deleting `) says the SA was,
/// when it says it was up.
fn deleting_was_up(rest: &str) -> Option<WasUp> {
    let up = |kind, v| {
        Some(WasUp {
            kind,
            ike_version: Some(v),
        })
    };
    if rest.starts_with("established Child SA") {
        return up(SaKind::Child, 2);
    }
    let state = rest.split_once('(')?.1.split_once(')')?.0;
    let state = state.strip_prefix("STATE_").unwrap_or(state);
    let state = state.strip_prefix("V2_").unwrap_or(state);
    match state {
        "ESTABLISHED_IKE_SA" | "established IKE SA" => up(SaKind::Ike, 2),
        "ESTABLISHED_CHILD_SA" | "established Child SA" => up(SaKind::Child, 2),
        "MAIN_I4" | "MAIN_R3" | "AGGR_I2" | "AGGR_R2" => up(SaKind::Ike, 1),
        "QUICK_I2" | "QUICK_R2" => up(SaKind::Child, 1),
        _ => None,
    }
}

/// One decoded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlutoLogRecord {
    /// When pluto logged it, in microseconds since the Unix epoch: its
    /// `logtime` stamp (year and time zone as the reader says), else the
    /// time the reader gave (the journal's, syslog's).
    pub at_us: i64,
    /// The pid a syslog prefix names (`pluto[887]:`), or `Starting Pluto`'s.
    pub pid: Option<u32>,
    /// The connection the line is about (`"v2-tun"`), without instance.
    pub connection: Option<String>,
    /// Its instance number (`"rw"[3]`), when it is one.
    pub instance: Option<String>,
    /// The SA serial (`#27`), when the line is about one.
    pub serial: Option<u64>,
    /// What the line says.
    pub what: Happening,
    /// The line as pluto wrote it, without stamp and prefix, cut to
    /// [`MAX_KEPT_LINE`] bytes: the words an event cites as its cause.
    pub text: String,
}

/// A `logtime=yes` or syslog stamp: month, day and time of day, no year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// Microseconds since the stamp's midnight.
    pub micros_of_day: i64,
}

impl Stamp {
    /// The stamp as microseconds since the Unix epoch: the year that puts
    /// it nearest to `reference_s` (the reader's clock, or a replayed
    /// series' time: a log read on 1 January still has last December's
    /// lines), read in a zone `utc_offset_s` east of UTC.
    pub fn unix_us(&self, reference_s: i64, utc_offset_s: i64) -> i64 {
        let year = year_of(reference_s);
        [year - 1, year, year + 1]
            .into_iter()
            .map(|y| {
                let days = days_from_civil(y, i64::from(self.month), i64::from(self.day));
                days * 86_400_000_000 + self.micros_of_day - utc_offset_s * 1_000_000
            })
            .min_by_key(|us| (us.div_euclid(1_000_000) - reference_s).abs())
            .unwrap_or(0)
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of a Unix time.
fn year_of(unix_s: i64) -> i64 {
    let z = unix_s.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A leading `Mmm dd HH:MM:SS[.ffffff]` and the rest after it.
pub fn split_stamp(line: &str) -> Option<(Stamp, &str)> {
    let month = MONTHS.iter().position(|m| line.get(..3) == Some(*m))? as u8 + 1;
    let day: u8 = line.get(4..6)?.trim_start().parse().ok()?;
    if line.get(3..4) != Some(" ") || line.get(6..7) != Some(" ") {
        return None;
    }
    let hms = line.get(7..15)?;
    let b = hms.as_bytes();
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
    };
    let (h, m, s) = (num(&hms[..2])?, num(&hms[3..5])?, num(&hms[6..8])?);
    let mut rest = &line[15..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count().min(9);
        let text = &frac[..digits];
        let padded: String = text.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    if h > 23 || m > 59 || s > 60 || day == 0 || day > 31 {
        return None;
    }
    Some((
        Stamp {
            month,
            day,
            micros_of_day: ((h * 60 + m) * 60 + s) * 1_000_000 + micros,
        },
        rest,
    ))
}

/// How a reader knows when a line was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTime {
    /// The journal's (or syslog's) own time of the line, in Unix µs; a
    /// `logtime` stamp in the text is then only skipped.
    Known(i64),
    /// The line's own stamp decides, its year the one nearest this Unix
    /// time (seconds), in a zone this many seconds east of UTC; a line
    /// without a stamp is taken at the reference time.
    Stamped {
        /// The reader's clock (a replay: the series' time).
        reference_s: i64,
        /// The zone pluto's `logtime` stamps are written in.
        utc_offset_s: i64,
    },
}

/// Decode one line of pluto's log. `None` for a line that says nothing
/// about an SA's life or pluto's (most of them).
pub fn decode(line: &str, time: LineTime) -> Option<PlutoLogRecord> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (stamp, rest) = match split_stamp(line) {
        Some((stamp, rest)) => (Some(stamp), rest),
        None => (None, line),
    };
    let (pid, body) = after_prefix(rest);
    let at_us = match (time, stamp) {
        (LineTime::Known(us), _) => us,
        (
            LineTime::Stamped {
                reference_s,
                utc_offset_s,
            },
            Some(stamp),
        ) => stamp.unix_us(reference_s, utc_offset_s),
        (LineTime::Stamped { reference_s, .. }, None) => reference_s.saturating_mul(1_000_000),
    };
    let (connection, instance, serial, text) = subject(body);
    let what = if connection.is_none() {
        pluto_itself(text)?
    } else if serial.is_none() {
        text.starts_with("terminating SAs using this connection")
            .then_some(Happening::Terminating)?
    } else {
        about_sa(text)?
    };
    let pid = match &what {
        Happening::PlutoStarted { pid: Some(p) } => Some(*p),
        _ => pid,
    };
    Some(PlutoLogRecord {
        at_us,
        pid,
        connection: connection.map(str::to_string),
        instance: instance.map(str::to_string),
        serial,
        what,
        text: cut(body, MAX_KEPT_LINE).to_string(),
    })
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What follows a `logtime` stamp: `: ` and the body, or a syslog prefix
/// (` host pluto[887]: `) and the body, or the body itself.
fn after_prefix(rest: &str) -> (Option<u32>, &str) {
    if let Some(body) = rest.strip_prefix(": ") {
        return (None, body);
    }
    let trimmed = rest.trim_start();
    // ` host pluto[887]: body` (syslog), or `pluto[887]: body` (journal text).
    let mut words = trimmed.splitn(3, ' ');
    for _ in 0..2 {
        let Some(word) = words.next() else { break };
        if let Some(tag) = word.strip_suffix(':') {
            let (name, pid) = match tag.split_once('[') {
                Some((name, pid)) => (name, pid.strip_suffix(']').and_then(|p| p.parse().ok())),
                None => (tag, None),
            };
            if name == "pluto" || name == "ipsec" || name.ends_with("/pluto") {
                let body = trimmed
                    .split_once(&format!("{word} "))
                    .map_or("", |(_, b)| b);
                return (pid, body);
            }
        }
    }
    (None, trimmed)
}

/// `"conn"[1] 192.0.2.9 #27: text` → its parts; a line not about a
/// connection gives `(None, None, None, line)`.
fn subject(body: &str) -> (Option<&str>, Option<&str>, Option<u64>, &str) {
    let Some(quoted) = body.strip_prefix('"') else {
        return (None, None, None, body);
    };
    let Some(end) = quoted.find('"') else {
        return (None, None, None, body);
    };
    let name = &quoted[..end];
    let mut rest = &quoted[end + 1..];
    let mut instance = None;
    // Instances are `"c"[1]`, nested ones `"c"[1][2]`: the innermost counts.
    while let Some(open) = rest.strip_prefix('[') {
        let Some(close) = open.find(']') else { break };
        instance = Some(&open[..close]);
        rest = &open[close + 1..];
    }
    // An instance may name its peer before the serial: `"c"[1] 192.0.2.9 #3:`.
    let head_end = rest.find(": ").unwrap_or(rest.len());
    let head = &rest[..head_end];
    let text = rest.get(head_end + 2..).unwrap_or("");
    let serial = head
        .split(' ')
        .filter_map(|w| w.strip_prefix('#'))
        .find_map(|n| n.parse().ok());
    if head_end == rest.len() || head.contains('"') {
        return (None, None, None, body);
    }
    (Some(name), instance, serial, text)
}

/// A line about pluto itself.
fn pluto_itself(text: &str) -> Option<Happening> {
    if text.starts_with("Starting Pluto") {
        let pid = text
            .rsplit_once("pid:")
            .and_then(|(_, p)| leading_number(p))
            .and_then(|p| u32::try_from(p).ok());
        return Some(Happening::PlutoStarted { pid });
    }
    if text.starts_with("Pluto is shutting down") || text.starts_with("shutting down pluto") {
        return Some(Happening::PlutoShuttingDown);
    }
    None
}

/// The number at the start of `text`.
fn leading_number(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count().min(19);
    text[..digits].parse().ok()
}

/// The serial after the first `marker` in `text`.
fn serial_after(text: &str, marker: &str) -> Option<u64> {
    leading_number(text.split_once(marker)?.1)
}

/// A line about one SA.
fn about_sa(text: &str) -> Option<Happening> {
    if let Some(established) = established(text) {
        return Some(established);
    }
    if text.starts_with("received Delete")
        || text.contains("received Delete SA payload")
        || text.starts_with("received and processed Delete")
    {
        return Some(Happening::PeerDeleted);
    }
    if text.contains("AUTHENTICATION_FAILED")
        || text.contains("authentication failed")
        || text.contains("AUTHENTICATION_FAILED")
    {
        return Some(Happening::AuthenticationFailed);
    }
    if text.starts_with("liveness action")
        || text.starts_with("liveness_check")
        || text.starts_with("DPD action")
        || text.starts_with("DPD: No response from peer")
        || text.contains("declaring peer dead")
        || text.starts_with("IKEv2 liveness:")
    {
        return Some(Happening::LivenessFailure);
    }
    if text.contains("second timeout exceeded") {
        return Some(Happening::Timeout);
    }
    // `whack --deletestate`: an administrator deleted this SA.
    if text.starts_with("received whack to delete") {
        return Some(Happening::Terminating);
    }
    if text.starts_with("not rekey stale") {
        return Some(Happening::StaleNotRekeyed);
    }
    if text.starts_with("IKE SA expired")
        || text.starts_with("CHILD SA expired")
        || text.starts_with("ISAKMP SA expired")
        || text.starts_with("IPsec SA expired")
    {
        return Some(Happening::Expired);
    }
    let revival = text.contains("connection is supposed to remain up");
    if text.starts_with("deleting") {
        let notified = if text.contains("NOT sending notification") {
            Some(false)
        } else if text.contains("sending notification") {
            Some(true)
        } else {
            None
        };
        let was_up = text.strip_prefix("deleting ").and_then(deleting_was_up);
        return Some(Happening::Deleting {
            notified,
            revival,
            was_up,
        });
    }
    if revival {
        return Some(Happening::Revival);
    }
    if text.starts_with("ESP traffic information")
        || text.starts_with("AH traffic information")
        || text.starts_with("IPCOMP traffic information")
    {
        return Some(Happening::Deleting {
            notified: None,
            revival: false,
            was_up: Some(WasUp {
                kind: SaKind::Child,
                ike_version: None,
            }),
        });
    }
    Some(negotiating(text).unwrap_or(Happening::Mentioned))
}

/// An `established` (or `rekeyed`) line.
fn established(text: &str) -> Option<Happening> {
    let role = if text.starts_with("initiator") {
        Some(Role::Initiator)
    } else if text.starts_with("responder") {
        Some(Role::Responder)
    } else {
        None
    };
    let after_role = text.split_once(' ').map_or("", |(_, r)| r);
    // 4.x/5.x IKEv2: `initiator established IKE SA`, `responder rekeyed Child SA #5 using #3`.
    if role.is_some() {
        let kind = if after_role.starts_with("established IKE SA")
            || after_role.starts_with("rekeyed IKE SA")
        {
            SaKind::Ike
        } else if after_role.starts_with("established Child SA")
            || after_role.starts_with("rekeyed Child SA")
        {
            SaKind::Child
        } else {
            return None;
        };
        let replaces = after_role
            .strip_prefix("rekeyed ")
            .and_then(|r| serial_after(r, " SA #"));
        let parent = match kind {
            SaKind::Child => serial_after(after_role, " using #"),
            SaKind::Ike => None,
        };
        return Some(Happening::Established {
            kind,
            ike_version: 2,
            role,
            replaces,
            parent,
        });
    }
    // IKEv1 (and 3.x): `ISAKMP SA established`, `IPsec SA established`,
    // with or without a `STATE_MAIN_I4: ` prefix; 4.x IKEv1 says `IKE SA
    // established` for its ISAKMP SA; 3.x IKEv2 `PARENT SA established`.
    let words = match text.split_once(": ") {
        Some((state, rest)) if state.starts_with("STATE_") => rest,
        _ => text,
    };
    let says = |what: &str| words.starts_with(what) || words.contains(&format!(", {what}"));
    let (kind, ike_version) = if says("ISAKMP SA established") || says("IKE SA established") {
        (SaKind::Ike, 1)
    } else if says("IPsec SA established") {
        let v = if text.starts_with("STATE_V2") || text.starts_with("STATE_PARENT") {
            2
        } else {
            1
        };
        (SaKind::Child, v)
    } else if says("PARENT SA established") {
        (SaKind::Ike, 2)
    } else {
        return None;
    };
    let parent = serial_after(text, "using isakmp#");
    Some(Happening::Established {
        kind,
        ike_version,
        role: None,
        replaces: None,
        parent,
    })
}

/// A line that starts a negotiation.
fn negotiating(text: &str) -> Option<Happening> {
    let replaces = serial_after(text, "to replace Child SA #")
        .or_else(|| serial_after(text, "to replace IKE SA #"))
        .or_else(|| {
            if text.contains("establishing") {
                None
            } else {
                serial_after(text, "to replace #")
            }
        });
    let kind = if text.starts_with("initiating Quick Mode")
        || text.starts_with("responding to Quick Mode")
        || text.starts_with("initiating rekey to replace Child SA")
        || text.starts_with("sent CREATE_CHILD_SA request to rekey IPsec SA")
        || text.starts_with("sent CREATE_CHILD_SA request to rekey Child SA")
    {
        SaKind::Child
    } else if text.starts_with("initiating IKEv1 Main Mode")
        || text.starts_with("initiating IKEv1 Aggressive Mode")
        || text.starts_with("initiating IKEv2 connection")
        || text.starts_with("initiating v2 parent SA")
        || text.starts_with("initiating rekey to replace IKE SA")
        || text.starts_with("responding to Main Mode")
        || text.starts_with("responding to Aggressive Mode")
        || text.starts_with("sent IKE_SA_INIT")
        || text.starts_with("sent Main Mode request")
    {
        SaKind::Ike
    } else {
        return None;
    };
    Some(Happening::Negotiating { kind, replaces })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: LineTime = LineTime::Stamped {
        reference_s: 1_796_000_000,
        utc_offset_s: 0,
    };

    fn what(line: &str) -> Option<Happening> {
        decode(line, AT).map(|r| r.what)
    }

    // Lines from the bundled lab logs (examples/lab-4.10*/west-pluto.log,
    // examples/lab-5.2/west-pluto.log).
    #[test]
    fn a_rekey_names_the_sa_it_replaces_and_its_ike_sa() {
        let r = decode("Dec  2 04:55:41.523112: \"v2-short\" #27: initiator rekeyed Child SA #25 using #24; IPsec tunnel [192.0.2.1-192.0.2.1:0-65535 0] -> [192.0.2.2-192.0.2.2:0-65535 0] {ESP/ESN=>0xc5f4e0b0 <0x8d9d0e87 xfrm=AES_GCM_16_256-NONE DPD=passive}", AT).unwrap();
        assert_eq!(r.serial, Some(27));
        assert_eq!(r.connection.as_deref(), Some("v2-short"));
        assert_eq!(
            r.what,
            Happening::Established {
                kind: SaKind::Child,
                ike_version: 2,
                role: Some(Role::Initiator),
                replaces: Some(25),
                parent: Some(24),
            }
        );
        // 2026-12-02 04:55:41.523112 UTC.
        assert_eq!(r.at_us, 1_796_187_341_523_112);
        assert!(r.text.starts_with("\"v2-short\" #27: initiator rekeyed"));
    }

    #[test]
    fn ikev1_established_and_replace_lines() {
        assert_eq!(
            what(
                "Dec  2 04:53:20.113522: \"v1-tun\" #2: IPsec SA established tunnel mode {ESP=>0xa0d3 <0x1 xfrm=AES_CBC_128-HMAC_SHA1_96 DPD=passive}"
            ),
            Some(Happening::Established {
                kind: SaKind::Child,
                ike_version: 1,
                role: None,
                replaces: None,
                parent: None
            })
        );
        assert!(matches!(
            what("Dec  2 04:53:20.1: \"v1-tun\" #1: IKE SA established {auth=PRESHARED_KEY}"),
            Some(Happening::Established {
                kind: SaKind::Ike,
                ike_version: 1,
                ..
            })
        ));
        assert_eq!(
            what(
                "Dec  2 04:54:10.0: \"v1-tun\" #7: initiating Quick Mode IKEv1+PSK+ENCRYPT+TUNNEL+PFS+UP to replace #2 {using isakmp#1 msgid:1}"
            ),
            Some(Happening::Negotiating {
                kind: SaKind::Child,
                replaces: Some(2)
            })
        );
        // 3.x: the state name before the words.
        assert!(matches!(
            what(
                "\"v1\" #4: STATE_QUICK_I2: sent QI2, IPsec SA established tunnel mode {ESP=>0x1}"
            ),
            Some(Happening::Established {
                kind: SaKind::Child,
                ike_version: 1,
                ..
            })
        ));
        assert!(matches!(
            what("\"v1\" #3: STATE_MAIN_I4: ISAKMP SA established {auth=PRESHARED_KEY}"),
            Some(Happening::Established {
                kind: SaKind::Ike,
                ..
            })
        ));
    }

    #[test]
    fn ends_say_why() {
        assert_eq!(
            what(
                "Dec  2 04:58:00.1: \"v1-tun\" #5: received Delete SA payload: self-deleting ISAKMP State #5"
            ),
            Some(Happening::PeerDeleted)
        );
        assert_eq!(
            what(
                "\"v2-tun\" #3: liveness action - restarting all connections that share this peer"
            ),
            Some(Happening::LivenessFailure)
        );
        assert_eq!(
            what(
                "\"v2-refused\" #9: IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED"
            ),
            Some(Happening::AuthenticationFailed)
        );
        assert_eq!(
            what(
                "\"v2-deadpeer\" #4: IKE_SA_INIT_I: 60 second timeout exceeded after 7 retransmits.  No response (or no acceptable response) to our first IKEv2 message"
            ),
            Some(Happening::Timeout)
        );
        assert_eq!(
            what(
                "\"v1-tun\" #4: deleting state (STATE_QUICK_I1) aged 0.5s and NOT sending notification"
            ),
            Some(Happening::Deleting {
                notified: Some(false),
                revival: false,
                was_up: None
            })
        );
        assert_eq!(
            what(
                "\"v1-deadpeer\" #3: deleting ISAKMP SA but connection is supposed to remain up; schedule EVENT_REVIVE_CONNS"
            ),
            Some(Happening::Deleting {
                notified: None,
                revival: true,
                was_up: None
            })
        );
        assert_eq!(
            what("\"v2-short\" #13: ESP traffic information: in=5KiB out=5KiB"),
            Some(Happening::Deleting {
                notified: None,
                revival: false,
                was_up: Some(WasUp {
                    kind: SaKind::Child,
                    ike_version: None
                })
            })
        );
        assert_eq!(
            what("\"v2-short\": terminating SAs using this connection"),
            Some(Happening::Terminating)
        );
        assert_eq!(
            what(
                "\"lchild\" #67: received whack to delete IKEv2 state #67 STATE_V2_ESTABLISHED_CHILD_SA"
            ),
            Some(Happening::Terminating)
        );
        assert_eq!(
            what("\"v1-norekey\" #8: CHILD SA expired (--dontrekey)"),
            Some(Happening::Expired)
        );
    }

    #[test]
    fn pluto_runs_and_syslog_prefixes() {
        let r = decode("Dec  2 04:53:14.070137: Starting Pluto (Libreswan Version 4.10 IKEv2 IKEv1 XFRM) pid:887", AT).unwrap();
        assert_eq!(
            (r.what, r.pid),
            (Happening::PlutoStarted { pid: Some(887) }, Some(887))
        );
        let r = decode(
            "Dec  2 04:53:14 gw pluto[887]: \"v2-tun\" #3: received Delete SA payload",
            AT,
        )
        .unwrap();
        assert_eq!(
            (r.pid, r.serial, r.what),
            (Some(887), Some(3), Happening::PeerDeleted)
        );
        let r = decode("Pluto is shutting down", LineTime::Known(42)).unwrap();
        assert_eq!((r.at_us, r.what), (42, Happening::PlutoShuttingDown));
    }

    #[test]
    fn instances_with_their_peer() {
        let r = decode(
            "\"rw\"[3] 198.51.100.7 #12: responder established Child SA using #11; IPsec tunnel",
            AT,
        )
        .unwrap();
        assert_eq!(r.connection.as_deref(), Some("rw"));
        assert_eq!(r.instance.as_deref(), Some("3"));
        assert_eq!(r.serial, Some(12));
    }

    #[test]
    fn the_year_is_the_one_nearest_the_reference() {
        let stamp = split_stamp("Dec 31 23:59:59.5: x").unwrap().0;
        // Read on 1 January 2027: last year's line.
        let us = stamp.unix_us(1_798_761_600 + 10, 0);
        assert_eq!(us, 1_798_761_599_500_000);
        // An hour east of UTC.
        assert_eq!(stamp.unix_us(1_798_761_600, 3600), us - 3_600_000_000);
    }

    #[test]
    fn unknown_huge_and_binary_lines_are_nothing() {
        assert_eq!(what("adding UDP interface lo 127.0.0.1:500"), None);
        // A line about an SA that says nothing decoded still says the SA
        // was there at that time (a negotiation dropped without a word
        // ends at its last line).
        assert_eq!(
            what("\"v2-tun\" #3: sent IKE_AUTH request {cipher=AES}"),
            Some(Happening::Mentioned)
        );
        assert_eq!(what(""), None);
        let huge = format!(
            "\"c\" #1: received Delete SA payload {}",
            "x".repeat(1 << 20)
        );
        let r = decode(&huge, AT).unwrap();
        assert!(r.text.len() <= MAX_KEPT_LINE);
        let binary = "\u{0}\u{ff}\"\u{1}#\u{fffd}: é".repeat(100);
        for cut in 0..binary.len() {
            if binary.is_char_boundary(cut) {
                let _ = decode(&binary[..cut], AT);
            }
        }
        let line = "Dec  2 04:53:14.070137: \"c\"[1] #2: x";
        for cut in 0..=line.len() {
            let _ = decode(&line[..cut], AT);
        }
    }
}
