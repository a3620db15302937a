//! One of pluto's Linux audit records, read from any of the three places a
//! record can be found.
//!
//! pluto (built with `USE_LINUX_AUDIT`, as Debian's and Fedora's packages
//! are) sends a user message through libaudit for every IKE SA and Child SA
//! that starts, fails to start or is destroyed (`linux_audit_conn` in
//! libreswan's `programs/pluto/linux_audit.c`). The kernel stamps it and
//! hands it to the audit netlink multicast group, to auditd and to journald.
//! The text is the same in each:
//!
//! ```text
//! audit(1796177538.840:27): pid=1234 uid=0 auid=4294967295 ses=4294967295 subj=unconfined
//!   msg='op=start direction=initiator conn-name="v2-tun" connstate=3 ike-version=2.0
//!   auth=RSA_SIG cipher=aes_gcm_16 ksize=256 integ=none prf=sha512 pfs=DH19
//!   raddr=192.0.2.2 exe="/usr/libexec/ipsec/pluto" hostname=? addr=192.0.2.1
//!   terminal=? res=success'
//! ```
//!
//! Child SA records have `satype=`, `samode=` and SPIs instead of the IKE
//! algorithms, and a comma after the serial (`connstate=4,`). A failed start
//! is `op=start ... res=failed`. auditd's log prefixes `type=CRYPTO_IKE_SA
//! msg=` (and `node=NAME ` when configured) and, in its enriched format,
//! appends the translated ids after a `0x1d` byte. Values that hold a space,
//! a quote or a byte outside printable ASCII are written as bare hex by
//! `audit_encode_nv_string` (`conn-name=7765737420656173` instead of
//! `conn-name="west east"`).
//!
//! The parser is strict about what it uses and lenient about the rest: a
//! record of another type or another program is `Ok(None)`, a pluto record
//! without its serial or time is an error that says which field is missing.

use std::fmt;
use std::net::IpAddr;

/// `AUDIT_CRYPTO_IKE_SA` (linux/audit.h): an IKE SA (ISAKMP SA in IKEv1).
pub const CRYPTO_IKE_SA: u16 = 2408;
/// `AUDIT_CRYPTO_IPSEC_SA` (linux/audit.h): a Child SA (IPsec SA).
pub const CRYPTO_IPSEC_SA: u16 = 2409;

/// Which kind of SA a record is about: the snapshot's own kind, since a
/// `CRYPTO_IKE_SA` record is about an IKE (ISAKMP) SA and a
/// `CRYPTO_IPSEC_SA` record about a Child (IPsec) SA, the same two things
/// the status output lists. Re-exported here so that the record's users
/// need not know where it lives.
pub use crate::snapshot::SaKind;

/// What happened to the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `op=start res=success`: the SA was established.
    Established,
    /// `op=start res=failed`: a negotiation failed (pluto logs failures under `op=start`).
    Failed,
    /// `op=destroy`: the SA is gone (deleted, expired, replaced or pluto stopping).
    Destroyed,
}

/// pluto's role in the exchange that made the SA (IKE SA records only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This end started the exchange.
    Initiator,
    /// The peer started it.
    Responder,
}

/// A pluto audit record, with what the tracker and the events use of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlutoRecord {
    /// The kernel's time stamp, in milliseconds since the Unix epoch: the
    /// exact moment, where a poll only knows "between two snapshots".
    pub unix_ms: i64,
    /// The kernel's record serial number (`audit(…:SEQ)`); with the time it
    /// identifies a record, so one read twice (log and netlink) is seen once.
    pub seq: u64,
    /// The process that sent it, as the kernel saw it (`pid=`).
    pub pid: Option<u32>,
    /// IKE SA or Child SA.
    pub kind: SaKind,
    /// Started, failed or destroyed.
    pub op: Op,
    /// The connection's base name (`conn-name`), decoded if hex-encoded.
    pub connection: String,
    /// pluto's state serial number (`connstate`), the `#N` of the status output.
    pub serial: u64,
    /// `1` or `2` (`ike-version=1` / `2.0`; IKE SA records only).
    pub ike_version: Option<u8>,
    /// Initiator or responder (IKE SA records only).
    pub role: Option<Role>,
    /// The remote end's address (`raddr`).
    pub remote: Option<IpAddr>,
    /// The local end's address (`addr`).
    pub local: Option<IpAddr>,
    /// `ipsec-esp`, `ipsec-ah` or `ipsec-policy` (Child SA records only).
    pub satype: Option<String>,
    /// `tunnel` or `transport` (Child SA records only).
    pub samode: Option<String>,
    /// The negotiated cipher as pluto names it for audit.
    pub cipher: Option<String>,
    /// The SPIs as the record prints them (`in-spi`, `out-spi`): pluto
    /// prints the outbound SA's SPI under `in-spi`, so these are kept as
    /// written and only compared with each other, never with the status.
    pub spis: Option<(u32, u32)>,
}

/// Why a line that claims to be a pluto record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(String);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecordError {}

fn error(text: impl Into<String>) -> RecordError {
    RecordError(text.into())
}

/// Reads a record as netlink (and journald) carry it: its type number and
/// its text, `audit(SECS.MS:SEQ): fields…`. `Ok(None)` when it is not a
/// pluto SA record: another type, or another program.
pub fn from_netlink(record_type: u16, text: &str) -> Result<Option<PlutoRecord>, RecordError> {
    let kind = match record_type {
        CRYPTO_IKE_SA => SaKind::Ike,
        CRYPTO_IPSEC_SA => SaKind::Child,
        _ => return Ok(None),
    };
    let text = text.trim_end_matches(['\0', '\n']);
    let rest = text
        .strip_prefix("audit(")
        .ok_or_else(|| error("the record does not start with `audit(`"))?;
    let (stamp, fields) = rest
        .split_once("): ")
        .ok_or_else(|| error("the record's `audit(…)` stamp is not closed"))?;
    let (unix_ms, seq) = stamp_of(stamp)?;
    body(kind, unix_ms, seq, fields)
}

/// Reads one line of auditd's log (`/var/log/audit/audit.log`), raw or
/// enriched. `Ok(None)` for lines of other types or programs.
pub fn from_auditd_line(line: &str) -> Result<Option<PlutoRecord>, RecordError> {
    // The enriched format appends the translated ids after a GS byte.
    let line = line.split('\u{1d}').next().unwrap_or("");
    let line = line.trim_end_matches(['\r', '\n']);
    let line = match line.strip_prefix("node=") {
        Some(rest) => rest.split_once(' ').map_or("", |(_, r)| r),
        None => line,
    };
    let Some(rest) = line.strip_prefix("type=") else {
        return Ok(None);
    };
    let Some((name, rest)) = rest.split_once(' ') else {
        return Ok(None);
    };
    let record_type = match name {
        "CRYPTO_IKE_SA" => CRYPTO_IKE_SA,
        "CRYPTO_IPSEC_SA" => CRYPTO_IPSEC_SA,
        // auditd writes types it has no name for as UNKNOWN[N].
        "UNKNOWN[2408]" => CRYPTO_IKE_SA,
        "UNKNOWN[2409]" => CRYPTO_IPSEC_SA,
        _ => return Ok(None),
    };
    let text = rest
        .strip_prefix("msg=")
        .ok_or_else(|| error("the audit line has no `msg=` after its type"))?;
    from_netlink(record_type, text)
}

/// `SECS.MS:SEQ` as milliseconds and serial.
fn stamp_of(stamp: &str) -> Result<(i64, u64), RecordError> {
    let bad = || {
        error(format!(
            "the record's time stamp `{stamp}` is not SECS.MS:SEQ"
        ))
    };
    let (time, seq) = stamp.split_once(':').ok_or_else(bad)?;
    let (secs, millis) = time.split_once('.').ok_or_else(bad)?;
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if millis.len() != 3 {
        return Err(bad());
    }
    let millis: i64 = millis.parse().map_err(|_| bad())?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    Ok((secs * 1000 + millis, seq))
}

/// The fields after the stamp: the kernel's (`pid=… msg='…'`) and, inside
/// `msg='…'`, pluto's.
fn body(
    kind: SaKind,
    unix_ms: i64,
    seq: u64,
    fields: &str,
) -> Result<Option<PlutoRecord>, RecordError> {
    let (outer, inner) = match fields.split_once("msg='") {
        Some((outer, inner)) => (outer, inner.strip_suffix('\'').unwrap_or(inner)),
        None => return Err(error("the record has no `msg='…'` part")),
    };
    let outer = pairs(outer);
    let inner = pairs(inner);
    let get = |key: &str| {
        inner
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    };
    let program = get("exe").or_else(|| {
        outer
            .iter()
            .find(|(k, _)| *k == "comm")
            .map(|(_, v)| v.as_str())
    });
    if program.is_none_or(|p| p.rsplit('/').next() != Some("pluto")) {
        return Ok(None);
    }
    let op = match (get("op"), get("res")) {
        (Some("destroy"), _) => Op::Destroyed,
        (Some("start"), Some("success" | "1")) => Op::Established,
        (Some("start"), Some("failed" | "0")) => Op::Failed,
        (op, res) => {
            return Err(error(format!(
                "pluto record #{seq}: unknown op/res `{}`/`{}`",
                op.unwrap_or("?"),
                res.unwrap_or("?")
            )));
        }
    };
    let serial = get("connstate")
        .and_then(|s| s.trim_end_matches(',').parse().ok())
        .ok_or_else(|| error(format!("pluto record #{seq} has no serial (`connstate`)")))?;
    let connection = get("conn-name")
        .ok_or_else(|| error(format!("pluto record #{seq} has no `conn-name`")))?
        .to_string();
    let ike_version = get("ike-version").and_then(|v| match v {
        "1" => Some(1),
        "2" | "2.0" => Some(2),
        _ => None,
    });
    let role = get("direction").and_then(|d| match d {
        "initiator" => Some(Role::Initiator),
        "responder" => Some(Role::Responder),
        _ => None,
    });
    let address = |key: &str| get(key).and_then(|a| a.parse().ok());
    let spi = |key: &str| get(key).and_then(|v| v.split('(').next()?.parse().ok());
    let spis = spi("in-spi").zip(spi("out-spi"));
    let pid = outer
        .iter()
        .find(|(k, _)| *k == "pid")
        .and_then(|(_, v)| v.parse().ok());
    Ok(Some(PlutoRecord {
        unix_ms,
        seq,
        pid,
        kind,
        op,
        connection,
        serial,
        ike_version,
        role,
        remote: address("raddr"),
        local: address("addr"),
        satype: get("satype").map(str::to_string),
        samode: get("samode").map(str::to_string),
        cipher: get("cipher").map(str::to_string),
        spis,
    }))
}

/// `key=value` pairs, values quoted (`"…"`, taken as is) or bare (hex-decoded
/// when they are an even run of hex digits and the key is one
/// `audit_encode_nv_string` encodes). The first occurrence of a key wins.
fn pairs(text: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = &rest[..eq];
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let bare = &after[..end];
            let value = if key == "conn-name" || key == "exe" {
                hex_decoded(bare).unwrap_or_else(|| bare.to_string())
            } else {
                bare.to_string()
            };
            (value, &after[end..])
        };
        // A key is one word; anything else (a stray space) is skipped.
        if !key.contains(' ') && !out.iter().any(|(k, _)| *k == key) {
            out.push((key, value));
        }
        rest = next.trim_start();
    }
    out
}

/// The text an `audit_encode_nv_string` hex value stands for.
fn hex_decoded(text: &str) -> Option<String> {
    if text.is_empty() || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IKE: &str = "audit(1796177538.840:27): pid=1234 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=start direction=initiator conn-name=\"v2-tun\" connstate=3 ike-version=2.0 auth=RSA_SIG cipher=aes_gcm_16 ksize=256 integ=none prf=sha512 pfs=DH19  raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'";

    #[test]
    fn an_ike_sa_start_gives_time_serial_and_ends() {
        let r = from_netlink(CRYPTO_IKE_SA, IKE).unwrap().unwrap();
        assert_eq!(r.unix_ms, 1_796_177_538_840);
        assert_eq!(r.seq, 27);
        assert_eq!(r.pid, Some(1234));
        assert_eq!((r.kind, r.op), (SaKind::Ike, Op::Established));
        assert_eq!((r.connection.as_str(), r.serial), ("v2-tun", 3));
        assert_eq!((r.ike_version, r.role), (Some(2), Some(Role::Initiator)));
        assert_eq!(r.remote, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(r.local, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(r.cipher.as_deref(), Some("aes_gcm_16"));
    }

    #[test]
    fn a_child_sa_destroy_from_an_enriched_auditd_line() {
        let line = "type=CRYPTO_IPSEC_SA msg=audit(1796177600.005:31): pid=1234 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=destroy conn-name=\"v2-tun\" connstate=4, satype=ipsec-esp samode=tunnel cipher=AES_GCM_16 ksize=256 integ=NONE in-spi=3960567223(0xec12f7b7) out-spi=3221286401(0xc0008001) in-ipcomp=0(0x00000000) out-ipcomp=0(0x00000000) raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'\u{1d}UID=\"root\" AUID=\"unset\"\n";
        let r = from_auditd_line(line).unwrap().unwrap();
        assert_eq!((r.kind, r.op, r.serial), (SaKind::Child, Op::Destroyed, 4));
        assert_eq!(r.unix_ms, 1_796_177_600_005);
        assert_eq!(r.satype.as_deref(), Some("ipsec-esp"));
        assert_eq!(r.samode.as_deref(), Some("tunnel"));
        assert_eq!(r.spis, Some((3_960_567_223, 3_221_286_401)));
        assert_eq!(r.ike_version, None);
    }

    #[test]
    fn a_failed_start_is_a_failure_and_node_prefixes_are_read() {
        let line = "node=gw1 type=CRYPTO_IKE_SA msg=audit(1796177538.001:9): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=start direction=responder conn-name=\"rw\" connstate=12 ike-version=1 auth=RSA_SIG cipher=none ksize=0 integ=none prf=none pfs=none  raddr=198.51.100.7 exe=\"/usr/sbin/pluto\" hostname=? addr=192.0.2.1 terminal=? res=failed'";
        let r = from_auditd_line(line).unwrap().unwrap();
        assert_eq!((r.op, r.serial, r.ike_version), (Op::Failed, 12, Some(1)));
        assert_eq!(r.role, Some(Role::Responder));
    }

    #[test]
    fn a_hex_encoded_name_is_decoded() {
        let text = IKE.replace("conn-name=\"v2-tun\"", "conn-name=7765737420276561737422");
        let r = from_netlink(CRYPTO_IKE_SA, &text).unwrap().unwrap();
        assert_eq!(r.connection, "west 'east\"");
    }

    #[test]
    fn other_programs_and_types_are_not_pluto_records() {
        let other = IKE.replace("/usr/libexec/ipsec/pluto", "/usr/sbin/charon");
        assert_eq!(from_netlink(CRYPTO_IKE_SA, &other), Ok(None));
        assert_eq!(from_netlink(1112, IKE), Ok(None));
        let login =
            "type=USER_LOGIN msg=audit(1796177538.840:2): pid=1 uid=0 msg='op=login res=success'";
        assert_eq!(from_auditd_line(login), Ok(None));
        assert_eq!(from_auditd_line(""), Ok(None));
    }

    #[test]
    fn a_pluto_record_without_a_serial_or_stamp_says_what_is_missing() {
        let no_serial = IKE.replace("connstate=3 ", "");
        let e = from_netlink(CRYPTO_IKE_SA, &no_serial).unwrap_err();
        assert!(e.to_string().contains("connstate"), "{e}");
        let e = from_netlink(CRYPTO_IKE_SA, "audit(17961775:27): msg='x'").unwrap_err();
        assert!(e.to_string().contains("time stamp"), "{e}");
        let e = from_netlink(CRYPTO_IKE_SA, "garbage").unwrap_err();
        assert!(e.to_string().contains("audit("), "{e}");
    }

    #[test]
    fn truncated_and_binary_text_never_panics() {
        for cut in 0..IKE.len() {
            if IKE.is_char_boundary(cut) {
                let _ = from_netlink(CRYPTO_IKE_SA, &IKE[..cut]);
                let _ = from_auditd_line(&format!("type=CRYPTO_IKE_SA msg={}", &IKE[..cut]));
            }
        }
        let _ = from_netlink(CRYPTO_IKE_SA, "audit(\u{0}\u{ff}): msg='\u{1d}=\"");
    }
}
