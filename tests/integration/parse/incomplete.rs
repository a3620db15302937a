//! A dump that is cut short must be marked incomplete, so the tracker never
//! diffs it (it would look as if every tunnel went down); a whole dump must
//! not be.

use swantrail::parse;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/parser/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Every cut at a line boundary before the shunt list is incomplete.
fn assert_every_early_cut_is_incomplete(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let shunt = lines
        .iter()
        .position(|l| l.ends_with("Bare Shunt list:"))
        .expect("a shunt list");
    for cut in 1..=shunt {
        let mut prefix = lines[..cut].join("\n");
        prefix.push('\n');
        let snap = parse(&prefix);
        assert!(
            snap.incomplete.is_some(),
            "cut after line {cut} was taken as whole"
        );
    }
}

#[test]
fn whole_dumps_are_complete() {
    for name in [
        "../lab-4.10/status.txt",
        "v5.4-status.txt",
        "v3.25-klips-status.txt",
    ] {
        let snap = parse(&fixture(name));
        assert_eq!(snap.incomplete, None, "{name}");
        assert!(
            snap.diagnostics.is_empty(),
            "{name}: {:?}",
            snap.diagnostics
        );
    }
}

#[test]
fn lab_status_is_read_in_full() {
    let snap = parse(&fixture("../lab-4.10/status.txt"));
    assert_eq!(snap.epoch, Some(swantrail::snapshot::FormatEpoch::E5));
    assert_eq!(snap.pluto_version.as_deref(), Some("4.10"));
    assert!(snap.prefixed);
    assert_eq!(snap.connections.len(), 5);
    assert_eq!((snap.totals.loaded, snap.totals.active), (Some(5), Some(3)));
    let serials: Vec<u64> = snap.states.iter().map(|s| s.serial).collect();
    assert_eq!(serials, vec![36, 30, 32, 34, 35, 33, 37, 21, 24]);
    let v2 = snap
        .connections
        .iter()
        .find(|c| c.conn.name == "v2-tun")
        .unwrap();
    assert_eq!((v2.newest_ike, v2.newest_child), (Some(24), Some(21)));
    assert_eq!(v2.routing.as_deref(), Some("erouted"));
    assert_eq!(v2.remote_host.as_deref(), Some("192.0.2.2"));
    let dead = snap
        .connections
        .iter()
        .find(|c| c.conn.name == "v1-deadpeer")
        .unwrap();
    assert_eq!((dead.newest_ike, dead.newest_child), (None, None));
    assert_eq!(dead.ike_version, Some(swantrail::snapshot::IkeVersion::V1));
    assert_eq!(snap.totals.ipsec_sas[0], ("total".to_string(), 4));
}

#[test]
fn status_cut_at_any_line_before_the_shunt_list_is_incomplete() {
    assert_every_early_cut_is_incomplete(&fixture("../lab-4.10/status.txt"));
    assert_every_early_cut_is_incomplete(&fixture("v5.4-status.txt"));
}

#[test]
fn a_last_line_cut_mid_way_is_incomplete() {
    let text = fixture("../lab-4.10/status.txt");
    let cut = text.trim_end_matches('\n');
    let snap = parse(&cut[..cut.len() - 3]);
    assert!(snap.incomplete.as_deref().unwrap().contains("cut short"));
    let traffic = "006 #21: \"v2-tun\", type=ESP, add_time=1795857783, inBytes=21120, outBytes=21120, maxBytes=2^63B, id='@east-v2'\n006 #33: \"v2-short\", type=ESP, add_time=1795857";
    assert!(parse(traffic).incomplete.is_some());
}

#[test]
fn an_odd_traffic_field_keeps_the_child_sa_and_says_what_was_skipped() {
    // A v5.0 filtered transcript rewrote the counters (`inBytes=XXX`).
    let snap = parse(
        "#2: \"west-east\", type=ESP, add_time=1234567890, inBytes=XXX, outBytes=84, id='@east'\n",
    );
    assert_eq!(snap.traffic.len(), 1);
    assert_eq!(
        (snap.traffic[0].in_bytes, snap.traffic[0].out_bytes),
        (None, Some(84))
    );
    assert_eq!(snap.diagnostics.len(), 1);
    assert!(
        snap.diagnostics[0]
            .reason
            .contains("`inBytes=XXX` is not a byte count")
    );
    assert!(snap.is_complete());
}

#[test]
fn an_sa_line_that_cannot_be_read_makes_the_snapshot_undiffable() {
    let snap = parse("#1: \"c\":500 established IKE SA; newest; idle;\n#2: \"c\"@@@ garbled\n");
    assert_eq!(snap.states.len(), 1);
    assert_eq!(snap.diagnostics[0].line, 2);
    assert!(snap.incomplete.as_deref().unwrap().contains("SA #2"));
    // An odd line for an SA that was read elsewhere does not.
    let snap = parse("#1: \"c\":500 established IKE SA; newest; idle;\n#1: \"c\" garbled line\n");
    assert!(snap.is_complete(), "{:?}", snap.incomplete);
    assert_eq!(snap.diagnostics.len(), 1);
}

#[test]
fn text_with_no_status_line_is_not_a_snapshot_even_for_a_known_command() {
    use swantrail::snapshot::OutputKind;
    // A shell error captured instead of pluto's answer (as in some of
    // libreswan's own test transcripts).
    let snap = swantrail::status::parse_as(
        "-bash: ipsec: command not found\n",
        OutputKind::TrafficStatus,
    );
    assert!(snap.kinds.is_empty());
    assert!(
        snap.incomplete
            .as_deref()
            .unwrap()
            .starts_with("nothing in it is libreswan status output")
    );
    // An empty answer is one: trafficstatus prints nothing without tunnels.
    let snap = swantrail::status::parse_as("", OutputKind::TrafficStatus);
    assert_eq!(
        (snap.kinds, snap.incomplete),
        (vec![OutputKind::TrafficStatus], None)
    );
    let argv: Vec<String> = [
        "ipsec",
        "whack",
        "--ctlsocket",
        "/run/pluto/pluto.ctl",
        "--showstates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(OutputKind::of_command(&argv), Some(OutputKind::ShowStates));
    assert_eq!(
        OutputKind::of_command(&["ipsec".to_string(), "status".to_string()]),
        Some(OutputKind::Status)
    );
}
