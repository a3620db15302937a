//! `swantrail replay --encoding ocsf` on every bundled lab replay (real
//! libreswan 4.10 and 5.2 runs): every event is valid OCSF 1.8 Tunnel
//! Activity by the schema `scripts/ocsf-schema.sh` made from the OCSF
//! schema itself, and each kind of change maps to the OCSF activity the
//! mapping table of `docs/events.md` gives it. The ECS replay of the same
//! lab is the other side of every comparison: the two runs are the same
//! tracker over the same dumps, so line N of one is line N of the other.
//! And `check-config` on the sinks that cannot send OCSF.

use crate::support;

use std::process::Command;

use serde_json::{Value, json};
use support::*;

/// One bundled lab: its series directories and any extra replay arguments.
struct Lab {
    name: &'static str,
    series: &'static [&'static str],
    extra: &'static [&'static str],
    observer_version: &'static str,
}

const LABS: [Lab; 4] = [
    Lab {
        name: "lab-4.10",
        series: &["series", "series-trafficstatus"],
        extra: &[],
        observer_version: "4.10",
    },
    Lab {
        name: "lab-4.10-audit",
        series: &["series", "series-trafficstatus"],
        // West's pluto's pid (the lab's README): the log holds east's too.
        extra: &["--audit-log", "audit.log", "--audit-pid", "836"],
        observer_version: "4.10",
    },
    Lab {
        name: "lab-4.10-run2",
        series: &["series", "series-trafficstatus"],
        extra: &[],
        observer_version: "4.10",
    },
    Lab {
        name: "lab-5.2",
        series: &["series", "series-trafficstatus"],
        extra: &[],
        observer_version: "5.2",
    },
];

/// The lines `swantrail replay --encoding ENCODING` prints for `lab`.
fn replay(lab: &Lab, encoding: &str) -> Vec<Value> {
    let dir = root().join("examples").join(lab.name);
    let mut command = Command::new(env!("CARGO_BIN_EXE_swantrail"));
    command.args([
        "replay",
        "--encoding",
        encoding,
        "--hostname",
        "west",
        "--observer-version",
        lab.observer_version,
        "--traffic-interval",
        "60",
    ]);
    for extra in lab.extra {
        // The audit log is a file of the lab; the rest are plain arguments.
        let path = dir.join(extra);
        if path.is_file() {
            command.arg(path);
        } else {
            command.arg(extra);
        }
    }
    for series in lab.series {
        command.arg(dir.join(series));
    }
    let out = command.output().expect("run swantrail replay");
    assert!(
        out.status.success(),
        "{}: {}",
        lab.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert!(
        text.ends_with('\n'),
        "{}: a last line without its newline",
        lab.name
    );
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Each lab's ECS and OCSF lines, paired (the same event, line by line).
fn paired(lab: &Lab) -> Vec<(Value, Value)> {
    let ecs = replay(lab, "ecs");
    let ocsf = replay(lab, "ocsf");
    assert_eq!(
        ecs.len(),
        ocsf.len(),
        "{}: an event lost or added",
        lab.name
    );
    assert!(ecs.len() > 50, "{}: only {} events", lab.name, ecs.len());
    ecs.into_iter().zip(ocsf).collect()
}

#[test]
fn every_event_of_every_lab_replay_is_valid_ocsf_tunnel_activity() {
    for lab in &LABS {
        let pairs = paired(lab);
        let ocsf: Vec<Value> = pairs.iter().map(|(_, o)| o.clone()).collect();
        assert_ocsf_valid(&ocsf);
        for (ecs, ocsf) in &pairs {
            assert_eq!(ocsf["metadata"]["uid"], ecs["event"]["id"], "{ocsf}");
            assert_eq!(ocsf["metadata"]["original_time"], ecs["@timestamp"]);
            assert_eq!(ocsf["metadata"]["version"], "1.8.0");
            assert_eq!(ocsf["metadata"]["product"]["name"], "swantrail");
            assert_eq!(
                ocsf["metadata"]["product"]["version"],
                env!("CARGO_PKG_VERSION")
            );
            assert_eq!(ocsf["class_uid"], 4014);
            assert_eq!(ocsf["category_uid"], 4);
            let activity = ocsf["activity_id"].as_u64().unwrap();
            assert_eq!(ocsf["type_uid"], 401400 + activity, "{ocsf}");
            assert_eq!(ocsf["unmapped"]["libreswan"], ecs["libreswan"]);
            assert_eq!(ocsf["src_endpoint"]["ip"], ecs["source"]["ip"]);
            assert_eq!(ocsf["dst_endpoint"]["ip"], ecs["destination"]["ip"]);
        }
    }
}

/// The OCSF events of `lab` whose ECS twin has `action`, with the twin.
fn of_action<'a>(pairs: &'a [(Value, Value)], action: &str) -> Vec<&'a (Value, Value)> {
    pairs
        .iter()
        .filter(|(ecs, _)| ecs["event"]["action"] == action)
        .collect()
}

#[test]
fn tunnels_open_and_close_and_a_tunnel_down_closes_the_session_its_tunnel_up_opened() {
    for lab in &LABS {
        let pairs = paired(lab);
        let ups = of_action(&pairs, "tunnel-up");
        let downs = of_action(&pairs, "tunnel-down");
        assert!(!ups.is_empty() && !downs.is_empty(), "{}", lab.name);
        for (_, up) in &ups {
            assert_eq!(
                (up["activity_id"].clone(), up["activity_name"].clone()),
                (json!(1), json!("Open"))
            );
            assert_eq!(up["type_uid"], 401401);
            assert_eq!(up["status_id"], 1);
            assert_eq!(up["tunnel_type"], "IPsec");
        }
        for (ecs, down) in &downs {
            assert_eq!(
                (down["activity_id"].clone(), down["activity_name"].clone()),
                (json!(2), json!("Close"))
            );
            assert_eq!(down["type_uid"], 401402);
            let tunnel = &ecs["libreswan"]["tunnel"];
            assert_eq!(down["traffic"]["bytes_in"], tunnel["bytes_in"]);
            assert_eq!(down["traffic"]["bytes_out"], tunnel["bytes_out"]);
            assert_eq!(
                down["duration"].as_i64().unwrap(),
                tunnel["duration_s"].as_i64().unwrap() * 1000
            );
            assert_eq!(down["session"]["expiration_time"], down["time"]);
            // The up period this tunnel-down ends was opened by a tunnel-up
            // with the same session uid and creation time.
            let opened = ups.iter().any(|(_, up)| {
                up["session"]["uid"] == down["session"]["uid"]
                    && up["session"]["created_time"] == down["session"]["created_time"]
            });
            assert!(
                opened,
                "{}: no tunnel-up opened {}",
                lab.name, down["session"]
            );
        }
    }
}

#[test]
fn a_rekey_renews_the_sa_that_replaces_the_old_one() {
    // lab-4.10: pluto logged `"v2-short" #10: initiator rekeyed Child SA #8`.
    let pairs = paired(&LABS[0]);
    let rekey = pairs
        .iter()
        .find(|(ecs, _)| {
            ecs["event"]["action"] == "child-sa-rekeyed" && ecs["libreswan"]["sa"]["serial"] == 10
        })
        .map(|(_, ocsf)| ocsf)
        .expect("child-sa-rekeyed #10");
    assert_eq!(rekey["activity_id"], 3);
    assert_eq!(rekey["activity_name"], "Renew");
    assert_eq!(rekey["type_uid"], 401403);
    assert_eq!(rekey["session"]["uid"], "0-10");
    assert_eq!(rekey["unmapped"]["libreswan"]["sa"]["replaces"], 8);
    assert_eq!(rekey["connection_info"]["protocol_name"], "esp");
    for lab in &LABS {
        let pairs = paired(lab);
        let rekeys: Vec<_> = ["ike-sa-rekeyed", "child-sa-rekeyed"]
            .iter()
            .flat_map(|a| of_action(&pairs, a))
            .collect();
        assert!(!rekeys.is_empty(), "{}", lab.name);
        for (_, ocsf) in rekeys {
            assert_eq!(ocsf["activity_id"], 3, "{}: {ocsf}", lab.name);
        }
    }
}

#[test]
fn a_failed_negotiation_is_an_open_that_failed() {
    let mut seen = 0;
    for lab in &LABS {
        let pairs = paired(lab);
        for (ecs, ocsf) in of_action(&pairs, "negotiation-failed") {
            assert_eq!(ocsf["activity_id"], 1, "{ocsf}");
            assert_eq!(ocsf["type_uid"], 401401);
            assert_eq!(ocsf["status_id"], 2);
            assert_eq!(ocsf["status"], "Failure");
            assert_eq!(ocsf["status_detail"], ecs["event"]["reason"]);
            seen += 1;
        }
    }
    // lab-4.10's dead peers alone never come up: pluto gives each attempt
    // up and starts another about every 64 s.
    assert!(seen >= 10, "{seen} failed negotiations");
}

#[test]
fn the_ocsf_schema_rejects_an_event_that_breaks_it() {
    let validator = ocsf_validator();
    let pairs = paired(&LABS[0]);
    let (_, good) = of_action(&pairs, "tunnel-down")[0];
    assert!(validator.is_valid(good), "{good}");
    /// What a breakage is, and how it breaks an event.
    type Breakage = (&'static str, fn(&mut Value));
    let broken: [Breakage; 5] = [
        ("an activity Tunnel Activity has not", |v| {
            v["activity_id"] = json!(7)
        }),
        ("no metadata.product", |v| {
            v["metadata"].as_object_mut().unwrap().remove("product");
        }),
        ("an attribute OCSF has not", |v| {
            v["event"] = json!({"action": "tunnel-down"})
        }),
        ("an address that is not one", |v| {
            v["dst_endpoint"]["ip"] = json!("%any")
        }),
        ("time as text", |v| {
            v["time"] = json!("2026-11-28T09:25:07Z")
        }),
    ];
    for (what, breaking) in broken {
        let mut bad = good.clone();
        breaking(&mut bad);
        assert!(!validator.is_valid(&bad), "the schema took {what}: {bad}");
    }
}

#[test]
fn diff_prints_ocsf_too() {
    let dir = root().join("examples/lab-4.10/series");
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(["diff", "--encoding", "ocsf", "--hostname", "west"])
        .arg(dir.join("status-1795857682.txt"))
        .arg(dir.join("status-1795857687.txt"))
        .output()
        .expect("run swantrail diff");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // pluto: `"v2-short" #10: initiator rekeyed Child SA #8` in that tick.
    assert!(
        events
            .iter()
            .any(|e| e["activity_id"] == 3 && e["session"]["uid"] == "0-10"),
        "{events:?}"
    );
    assert_ocsf_valid(&events);
}

/// `swantrail check-config` of a config with one `[[sink]]` of `keys`:
/// whether it passed, and what it printed.
fn check_config(keys: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swantrail.toml");
    let text = format!(
        "state_dir = {:?}\n[[source]]\ntype = \"command\"\n[[sink]]\n{keys}\n",
        dir.path().join("state")
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run swantrail check-config");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn check_config_takes_ocsf_where_the_payload_is_the_event_and_refuses_it_in_one_line_elsewhere() {
    for keys in [
        "type = \"file\"\npath = \"/var/log/swantrail/ocsf.ndjson\"\nencoding = \"ocsf\"",
        "type = \"stdout\"\nencoding = \"ocsf\"",
        "type = \"syslog\"\nencoding = \"ocsf\"",
        "type = \"http\"\nurl = \"https://siem.example.net/in\"\nencoding = \"ocsf\"",
        "type = \"kafka\"\nbrokers = [\"k:9092\"]\ntopic = \"t\"\nencoding = \"ocsf\"",
        "type = \"file\"\npath = \"/var/log/swantrail/ecs.ndjson\"\nencoding = \"ecs\"",
    ] {
        let (ok, printed) = check_config(keys);
        assert!(ok, "{keys}: {printed}");
    }
    let refused = [
        (
            "type = \"http\"\nurl = \"https://es.example.net\"\nmode = \"elasticsearch\"\nencoding = \"ocsf\"",
            "swantrail.toml:8:1: encoding = \"ocsf\" does not go with mode = \"elasticsearch\"",
        ),
        (
            "type = \"http\"\nurl = \"https://hec.example.net\"\nmode = \"splunk-hec\"\ntoken_env = \"T\"\nencoding = \"ocsf\"",
            "does not go with mode = \"splunk-hec\"",
        ),
        (
            "type = \"syslog\"\nmessage = \"cef\"\nencoding = \"ocsf\"",
            "swantrail.toml:7:1: encoding = \"ocsf\" does not go with message = \"cef\"",
        ),
        (
            "type = \"stdout\"\nencoding = \"ocfs\"",
            "swantrail.toml:6:",
        ),
    ];
    for (keys, expected) in refused {
        let (ok, printed) = check_config(keys);
        assert!(!ok, "{keys}: passed");
        assert!(printed.contains(expected), "{keys}: {printed}");
        assert_eq!(printed.trim_end().lines().count(), 1, "{printed}");
    }
}
