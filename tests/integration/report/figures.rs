//! `swantrail report` on the events of the bundled real lab runs: every
//! figure is checked against the events themselves, recomputed here from
//! the `tunnel-down` audit records (`duration_s`, bytes, reason) rather
//! than from the pairing of up and down times the report does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::swantrail_fed;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swantrail"))
}

/// The events of a replayed real run, as NDJSON text.
fn replayed(host: &str, dirs: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin()
        .args(["replay", "--hostname", host])
        .args(dirs.iter().map(|d| root.join(d)))
        .stderr(Stdio::null())
        .output()
        .expect("run swantrail replay");
    assert!(out.status.success(), "replay failed");
    String::from_utf8(out.stdout).expect("utf-8 events")
}

/// `swantrail report --format json` of this NDJSON, given on stdin.
fn report(ndjson: &str, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--format", "json"];
    args.extend_from_slice(extra);
    let out = swantrail_fed(&args, ndjson);
    assert!(out.status.success(), "report failed");
    serde_json::from_slice(&out.stdout).expect("report is JSON")
}

fn secs(v: &Value) -> i64 {
    let s = v.as_str().expect("a time");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp()
}

/// What a tunnel's figures must be, from its events alone.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    up_s: i64,
    outages: u64,
    longest_outage_s: i64,
    ike_rekeys: u64,
    child_rekeys: u64,
    bytes_in: u64,
    bytes_out: u64,
    end_reasons: BTreeMap<String, u64>,
    state_at_end: String,
}

fn expected(ndjson: &str) -> BTreeMap<(String, String), Expected> {
    let events: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect();
    let end = events
        .iter()
        .map(|e| secs(&e["@timestamp"]))
        .max()
        .expect("events");
    let mut out: BTreeMap<(String, String), Expected> = BTreeMap::new();
    // Open period per tunnel: the latest tunnel figures seen since tunnel-up.
    let mut open: BTreeMap<(String, String), Option<Value>> = BTreeMap::new();
    let mut down_at: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in &events {
        let Some(name) = e["libreswan"]["connection"]["name"].as_str() else {
            continue;
        };
        let action = e["event"]["action"].as_str().expect("action");
        if action.starts_with("connection-") {
            continue;
        }
        let key = (
            e["observer"]["hostname"]
                .as_str()
                .expect("host")
                .to_string(),
            name.to_string(),
        );
        let x = out.entry(key.clone()).or_insert_with(|| Expected {
            state_at_end: "never-up".into(),
            ..Expected::default()
        });
        let at = secs(&e["@timestamp"]);
        let tunnel = &e["libreswan"]["tunnel"];
        match action {
            "tunnel-up" => {
                // Back when its first new Child SA was added (up_since).
                let back = tunnel.get("up_since").map_or(at, secs);
                if let Some(d) = down_at.remove(&key) {
                    x.longest_outage_s = x.longest_outage_s.max(back - d);
                }
                open.insert(key.clone(), Some(tunnel.clone()));
                x.state_at_end = "up".into();
            }
            "tunnel-down" => {
                x.up_s += tunnel["duration_s"].as_i64().expect("duration_s");
                x.bytes_in += tunnel["bytes_in"].as_u64().expect("bytes_in");
                x.bytes_out += tunnel["bytes_out"].as_u64().expect("bytes_out");
                *x.end_reasons
                    .entry(e["event"]["reason"].as_str().expect("reason").to_string())
                    .or_default() += 1;
                x.outages += 1;
                open.remove(&key);
                down_at.insert(key.clone(), at);
                x.state_at_end = "down".into();
            }
            "child-sa-rekeyed" => x.child_rekeys += 1,
            "ike-sa-rekeyed" => x.ike_rekeys += 1,
            _ => {}
        }
        if tunnel.is_object() && action != "tunnel-down" {
            if let Some(slot) = open.get_mut(&key) {
                *slot = Some(tunnel.clone());
            }
        }
    }
    for (key, last) in open {
        let (Some(x), Some(t)) = (out.get_mut(&key), last) else {
            continue;
        };
        x.up_s += end - secs(&t["up_since"]);
        x.bytes_in += t["bytes_in"].as_u64().expect("bytes_in");
        x.bytes_out += t["bytes_out"].as_u64().expect("bytes_out");
    }
    for (key, d) in down_at {
        if let Some(x) = out.get_mut(&key) {
            x.longest_outage_s = x.longest_outage_s.max(end - d);
        }
    }
    out
}

fn actual(report: &Value) -> BTreeMap<(String, String), Expected> {
    let rows = report["tunnels"].as_array().expect("tunnels");
    rows.iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k}"));
            let i = |k: &str| t[k].as_i64().unwrap_or_else(|| panic!("{k}"));
            let reasons = t["end_reasons"]
                .as_object()
                .expect("end_reasons")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                .collect();
            (
                (
                    t["host"].as_str().expect("host").to_string(),
                    t["connection"].as_str().expect("connection").to_string(),
                ),
                Expected {
                    up_s: i("up_s"),
                    outages: n("outages"),
                    longest_outage_s: i("longest_outage_s"),
                    ike_rekeys: n("ike_rekeys"),
                    child_rekeys: n("child_rekeys"),
                    bytes_in: n("bytes_in"),
                    bytes_out: n("bytes_out"),
                    end_reasons: reasons,
                    state_at_end: t["state_at_end"].as_str().expect("state").to_string(),
                },
            )
        })
        .collect()
}

fn row<'a>(report: &'a Value, host: &str, name: &str) -> &'a Value {
    report["tunnels"]
        .as_array()
        .expect("tunnels")
        .iter()
        .find(|t| t["host"] == host && t["connection"] == name)
        .unwrap_or_else(|| panic!("no row for {name} on {host}"))
}

#[test]
fn figures_of_both_lab_runs_match_their_tunnel_down_records() {
    for dirs in [
        &[
            "examples/lab-4.10/series",
            "examples/lab-4.10/series-trafficstatus",
        ][..],
        &[
            "examples/lab-4.10-run2/series",
            "examples/lab-4.10-run2/series-trafficstatus",
        ][..],
    ] {
        let events = replayed("west", dirs);
        let r = report(&events, &[]);
        assert_eq!(actual(&r), expected(&events), "{dirs:?}");
        // The run terminates v2-tun and brings it back: one outage, up at the end.
        let v2 = row(&r, "west", "v2-tun");
        assert_eq!(v2["state_at_end"], "up", "{dirs:?}");
        assert_eq!(v2["outages"], 1, "{dirs:?}");
        assert!(
            v2["child_rekeys"].as_u64().expect("rekeys") >= 1,
            "{dirs:?}"
        );
        assert!(v2["availability_pct"].as_f64().expect("pct") < 100.0);
        // The dead peers never came up.
        assert_eq!(row(&r, "west", "v2-deadpeer")["state_at_end"], "never-up");
        assert!(
            r["gateways"][0]["negotiations_stalled"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
    }
}

#[test]
fn a_pluto_restart_ends_the_tunnels_and_is_listed_for_the_gateway() {
    let events = replayed("east", &["tests/fixtures/lab-east-restart"]);
    let r = report(&events, &[]);
    assert_eq!(actual(&r), expected(&events));
    let restarts = r["gateways"][0]["pluto_restarts"]
        .as_array()
        .expect("restarts");
    assert_eq!(restarts.len(), 1);
    assert_eq!(restarts[0]["at"], "2026-11-28T09:25:37Z");
    let v1 = row(&r, "east", "v1-tun");
    assert_eq!(v1["end_reasons"]["pluto-restart"], 1);
    assert_eq!(v1["state_at_end"], "up");
}

#[test]
fn duplicates_and_a_torn_last_line_leave_the_figures_unchanged() {
    let events = replayed("west", &["examples/lab-4.10/series"]);
    let clean = report(&events, &[]);
    let lines: Vec<&str> = events.lines().collect();
    let torn = &lines[lines.len() - 1][..30];
    let messy = format!("{events}{}\n{torn}", lines[10..40].join("\n"));
    let r = report(&messy, &[]);
    assert_eq!(actual(&r), actual(&clean));
    assert_eq!(r["input"]["duplicates"], 30);
    assert_eq!(r["input"]["unreadable"], 1);
}

#[test]
fn since_and_tunnel_narrow_the_report() {
    let events = replayed("west", &["examples/lab-4.10/series"]);
    let r = report(
        &events,
        &["--tunnel", "v2-tun", "--since", "2026-11-28T09:25:00Z"],
    );
    let rows = r["tunnels"].as_array().expect("tunnels");
    assert_eq!(rows.len(), 1);
    assert_eq!(r["since"], "2026-11-28T09:25:00Z");
    // Down at 09:25:32, back at 09:25:42, the report ends at 09:25:42.
    assert_eq!(rows[0]["up_s"], 32);
    assert_eq!(rows[0]["longest_outage_s"], 10);
}

#[test]
fn table_and_csv_name_every_tunnel() {
    let events = replayed("west", &["examples/lab-4.10/series"]);
    for (format, header) in [("table", "TUNNEL"), ("csv", "host,connection")] {
        let mut child = bin()
            .args(["report", "--format", format])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run report");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(events.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("output");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(text.contains(header), "{format}");
        for name in ["v1-tun", "v2-tun", "v2-short", "v1-deadpeer", "v2-deadpeer"] {
            assert!(text.contains(name), "{format} lacks {name}");
        }
    }
}

/// `swantrail report --format html` of this NDJSON, given on stdin.
fn html(ndjson: &str) -> String {
    let out = swantrail_fed(&["report", "--format", "html"], ndjson);
    assert!(out.status.success(), "report failed");
    String::from_utf8(out.stdout).expect("utf-8 html")
}

/// The value of attribute `name` in the tag that starts `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

#[test]
fn html_timeline_puts_each_gateway_band_directly_above_its_own_tunnels() {
    let mut events = replayed("west", &["examples/lab-4.10/series"]);
    events.push_str(&replayed("east", &["tests/fixtures/lab-east-restart"]));
    let page = html(&events);
    let timeline = &page[page.find("<table id=\"timeline\">").expect("a timeline")..];
    let timeline = &timeline[..timeline.find("</table>").expect("its end")];
    let rows: Vec<String> = timeline
        .match_indices("<tr class=\"")
        .map(|(i, _)| {
            let tag = &timeline[i..i + timeline[i..].find('>').expect("tag end")];
            let host = attribute(tag, "data-host").expect("a host");
            match attribute(tag, "data-tunnel") {
                Some(tunnel) => format!("{tunnel}@{host}"),
                None => format!("gateway {host}"),
            }
        })
        .collect();
    assert_eq!(
        rows,
        [
            "gateway east",
            "v1-tun@east",
            "v2-short@east",
            "v2-tun@east",
            "gateway west",
            "v1-deadpeer@west",
            "v1-tun@west",
            "v2-deadpeer@west",
            "v2-short@west",
            "v2-tun@west",
        ]
    );
}

#[test]
fn html_title_says_utc_once_per_time() {
    let page = html(&replayed("west", &["examples/lab-4.10/series"]));
    let start = page.find("<title>").expect("a title") + "<title>".len();
    let title = &page[start..start + page[start..].find("</title>").expect("its end")];
    assert!(title.starts_with("swantrail report 2026-"), "{title}");
    assert_eq!(title.matches(" UTC").count(), 2, "{title}");
    assert!(title.ends_with(" UTC"), "{title}");
    assert!(title.contains(" UTC to 2026-"), "{title}");
}

/// With pluto's log fused (`replay --pluto-log`), each outage is counted
/// by the cause pluto's log gave for the SA whose end took the tunnel
/// down: on the 5.2 lab run, the peer's Delete of v1-norekey's Child SA
/// (the scenario's `ipsec down` on east) and pluto's shutdown for every
/// tunnel up when west's pluto restarted. Without the log, no causes.
#[test]
fn outages_by_cause_come_from_pluto_s_log() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = root.join("examples/lab-5.2");
    let out = bin()
        .args(["replay", "--hostname", "west", "--pluto-log"])
        .arg(run.join("west-pluto.log"))
        .arg(run.join("series"))
        .arg(run.join("series-trafficstatus"))
        .stderr(Stdio::null())
        .output()
        .expect("run swantrail replay");
    assert!(out.status.success(), "replay failed");
    let fused = String::from_utf8(out.stdout).expect("utf-8 events");
    let r = report(&fused, &[]);
    let causes = |name: &str| -> BTreeMap<String, u64> {
        let t = r["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["connection"] == name)
            .unwrap_or_else(|| panic!("no tunnel {name}"));
        let by_cause: BTreeMap<String, u64> =
            serde_json::from_value(t["outage_causes"].clone()).unwrap_or_default();
        let counted: u64 = by_cause.values().sum();
        assert!(
            counted <= t["outages"].as_u64().unwrap(),
            "{name}: more causes than outages: {t}"
        );
        by_cause
    };
    let expect = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    };
    assert_eq!(
        causes("v1-norekey"),
        expect(&[("peer-deleted", 1), ("pluto-shutdown", 1)])
    );
    for name in ["v2-delchild", "v2-short", "v2-tun"] {
        assert_eq!(causes(name), expect(&[("pluto-shutdown", 1)]), "{name}");
    }
    let csv = swantrail_fed(&["report", "--format", "csv"], &fused);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",outage_causes"));
    assert!(
        csv.lines().any(|l| l.starts_with("west,v1-norekey,")
            && l.ends_with(",peer-deleted=1;pluto-shutdown=1")),
        "{csv}"
    );
    // The same run without the log: reasons only, no causes.
    let plain = replayed(
        "west",
        &[
            "examples/lab-5.2/series",
            "examples/lab-5.2/series-trafficstatus",
        ],
    );
    let r = report(&plain, &[]);
    for t in r["tunnels"].as_array().unwrap() {
        assert!(t.get("outage_causes").is_none(), "{t}");
    }
}
