//! The bundled 4.10 run with pluto's Linux audit records
//! (`examples/lab-4.10-audit/`): its `audit.log` (auditd's, west's pluto's
//! records and auditd's own) and its `west-pluto.log` tell the same story,
//! to the half second, and the log shows the SAs shorter than one tick of
//! the series that the scenario made at its end. This is what lets the end-to-end
//! judge (support/pluto_log.rs) hold a daemon with the audit source
//! to every SA pluto logged, and to pluto's times.
//!
//! The records are read here by hand, from the fields pluto writes
//! (`op=start|destroy`, `conn-name`, `connstate`, `res`) and the kernel's
//! stamp (`audit(EPOCH.MS:SEQ)`), independently of swantrail's reader.

use crate::support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use support::pluto_log::{Kind, read_history};

fn run_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/lab-4.10-audit")
}

/// One of pluto's records.
#[derive(Debug)]
struct Record {
    ike: bool,
    op: String,
    conn: String,
    serial: u64,
    success: bool,
    /// The kernel's stamp, microseconds since midnight UTC.
    at_us: i64,
}

/// The value of `key=` in `fields` (quotes and a trailing comma removed).
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    fields.split(' ').find_map(|kv| {
        let v = kv.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim_end_matches(',').trim_matches('"'))
    })
}

fn records() -> Vec<Record> {
    let path = run_dir().join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        let ike = line.starts_with("type=CRYPTO_IKE_SA ");
        if !ike && !line.starts_with("type=CRYPTO_IPSEC_SA ") {
            continue;
        }
        // ENRICHED: the resolved fields follow a 0x1d.
        let raw = line.split('\u{1d}').next().unwrap();
        let stamp = raw
            .split_once("msg=audit(")
            .and_then(|(_, r)| r.split_once(':'))
            .map(|(s, _)| s)
            .unwrap_or_else(|| panic!("no stamp: {line}"));
        let (secs, ms) = stamp.split_once('.').unwrap();
        let secs: i64 = secs.parse().unwrap();
        let ms: i64 = ms.parse().unwrap();
        let inner = raw
            .split_once("msg='")
            .map(|(_, m)| m.trim_end_matches('\''))
            .unwrap_or_else(|| panic!("no msg='…': {line}"));
        out.push(Record {
            ike,
            op: field(inner, "op").unwrap().to_string(),
            conn: field(inner, "conn-name").unwrap().to_string(),
            serial: field(inner, "connstate").unwrap().parse().unwrap(),
            success: field(inner, "res") == Some("success"),
            at_us: secs.rem_euclid(86_400) * 1_000_000 + ms * 1000,
        });
    }
    out
}

/// Half a second: how close a daemon's `@timestamp` must be to pluto's line.
const TOLERANCE_US: i64 = 500_000;

#[test]
fn the_audit_log_holds_only_west_plutos_records_and_auditds_own() {
    let path = run_dir().join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut pids = BTreeSet::new();
    let mut types = BTreeSet::new();
    for line in text.lines() {
        let ty = line.split(' ').next().unwrap();
        types.insert(ty.to_string());
        if ty.starts_with("type=CRYPTO_") {
            assert!(
                line.contains("exe=\"/usr/libexec/ipsec/pluto\""),
                "a CRYPTO record not from pluto: {line}"
            );
            pids.insert(field(line, "pid").unwrap().to_string());
        }
    }
    assert_eq!(pids.len(), 1, "records of more than one pluto: {pids:?}");
    assert!(types.contains("type=CRYPTO_IKE_SA"), "{types:?}");
    assert!(types.contains("type=CRYPTO_IPSEC_SA"), "{types:?}");
    assert!(types.contains("type=DAEMON_START"), "{types:?}");
}

#[test]
fn the_log_shows_sas_shorter_than_one_tick_of_the_series() {
    let h = read_history(&run_dir().join("west-pluto.log"));
    assert_eq!(h.runs, 1, "west's pluto ran once in this run");
    // Shorter than one 5 s tick of the bundled series, from pluto's
    // established line to its deleting line: no snapshot of the series
    // shows them, only the audit records do.
    let short: Vec<_> = h
        .sas
        .values()
        .filter(|sa| match (sa.up_us, sa.down_us) {
            (Some(up), Some(down)) => down - up < 5_000_000,
            _ => false,
        })
        .collect();
    let has = |what: &str, f: &dyn Fn(&support::pluto_log::Sa) -> bool| {
        assert!(
            short.iter().any(|sa| f(sa)),
            "no {what} shorter than one tick among {short:#?}"
        );
    };
    has("rekeyed v2-tun Child SA", &|sa| {
        sa.conn == "v2-tun" && sa.kind == Some(Kind::Child) && sa.replaces.is_some()
    });
    has("rekeyed v2-tun IKE SA", &|sa| {
        sa.conn == "v2-tun" && sa.kind == Some(Kind::Ike) && sa.replaces.is_some()
    });
    has("new v2-tun Child SA", &|sa| {
        sa.conn == "v2-tun" && sa.kind == Some(Kind::Child) && sa.replaces.is_none()
    });
    has("v1-tun IPsec SA", &|sa| {
        sa.conn == "v1-tun" && sa.kind == Some(Kind::Child) && sa.ikev1
    });
}

#[test]
fn every_sa_pluto_logged_has_its_audit_records_within_half_a_second() {
    let h = read_history(&run_dir().join("west-pluto.log"));
    let records = records();
    assert!(records.len() > 50, "only {} records", records.len());
    let near =
        |want: Option<i64>, r: &Record| want.is_some_and(|t| (r.at_us - t).abs() <= TOLERANCE_US);
    let mut starts = 0;
    let mut ends = 0;
    for ((_, serial), sa) in &h.sas {
        let of_sa = |r: &&Record| r.serial == *serial && r.conn == sa.conn;
        let Some(kind) = sa.kind else { continue };
        let ike = kind == Kind::Ike;
        assert!(
            records
                .iter()
                .filter(of_sa)
                .any(|r| r.op == "start" && r.success && r.ike == ike && near(sa.up_us, r)),
            "#{serial} {:?}: no start record within 0.5 s of pluto's line (pluto: {sa:?})",
            sa.conn
        );
        starts += 1;
        if sa.down_us.is_some() {
            assert!(
                records
                    .iter()
                    .filter(of_sa)
                    .any(|r| r.op == "destroy" && r.ike == ike && near(sa.down_us, r)),
                "#{serial} {:?}: no destroy record within 0.5 s of pluto's line (pluto: {sa:?})",
                sa.conn
            );
            ends += 1;
        }
    }
    assert!(starts > 20 && ends > 20, "{starts} starts, {ends} ends");
}

#[test]
fn every_audit_record_is_an_sa_pluto_logged() {
    let h = read_history(&run_dir().join("west-pluto.log"));
    for r in records() {
        let sa = h.sas.get(&(0, r.serial)).unwrap_or_else(|| {
            panic!("a record of #{}, which pluto never logged: {r:?}", r.serial)
        });
        assert_eq!(sa.conn, r.conn, "{r:?}");
        match (r.op.as_str(), r.success) {
            ("start", true) => assert!(sa.up.is_some(), "started, never up in pluto's log: {r:?}"),
            // A negotiation that never got up (the peers that never
            // answer): pluto records a failed start as it gives it up.
            ("start", false) => assert!(sa.up.is_none(), "failed, yet up in pluto's log: {r:?}"),
            ("destroy", _) => assert!(
                sa.down.is_some(),
                "destroyed, never ended in pluto's log: {r:?}"
            ),
            (op, _) => panic!("unknown op {op:?}: {r:?}"),
        }
    }
}
