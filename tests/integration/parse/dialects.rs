//! One real line per dialect epoch (docs/libreswan-format.md §0, E1–E8) and the
//! parser gotchas of §16, pinned with values.
//!
//! Unless a comment says otherwise, every line is copied byte for byte
//! from the expected console transcripts of libreswan's own test suite
//! (the corpus, `<release>/<kind>/<test>__<host>__<n>.txt`); those
//! transcripts sanitise timers (`XXs`), SPIs and `add_time`.

use swantrail::parse;
use swantrail::snapshot::{FormatEpoch, IkeVersion, OutputKind, SaKind, State, TimerKind};

fn only_state(text: &str) -> State {
    let snap = parse(text);
    assert!(snap.diagnostics.is_empty(), "{:?}", snap.diagnostics);
    assert_eq!(snap.states.len(), 1, "{snap:?}");
    snap.states[0].clone()
}

// --- E1–E8: one state line each -------------------------------------------

#[test]
fn e1_v3_25_child_with_import_item_and_sanitizer_space() {
    // v3.25 status/ikev2 test transcripts (docs/libreswan-format.md §6.1 example).
    let text = "000 #2: \"westnet-eastnet-ipv4-psk-ikev2\":500 STATE_V2_IPSEC_I (IPsec SA established); EVENT_SA_REPLACE in  XXs; newest IPSEC; eroute owner; isakmp#1; idle; import:admin initiate\n";
    let st = only_state(text);
    assert_eq!(st.serial, 2);
    assert_eq!(st.conn.name, "westnet-eastnet-ipv4-psk-ikev2");
    assert_eq!(
        (st.kind, st.ike_version, st.established),
        (Some(SaKind::Child), Some(IkeVersion::V2), true)
    );
    assert_eq!(st.parent_serial, Some(1));
    assert!(st.newest && st.eroute_owner);
    assert_eq!(st.timers.len(), 1);
    assert_eq!(
        (st.timers[0].kind, st.timers[0].due_s),
        (TimerKind::Replace, None)
    );
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E1));
}

#[test]
fn e2_v3_32_ikev1_isakmp_sa() {
    let text = "000 #1: \"northnet-westnet-ipv4-psk\":500 STATE_MAIN_I4 (ISAKMP SA established); EVENT_SA_REPLACE in XXs; newest ISAKMP; lastdpd=-1s(seq in:0 out:0); idle;\n";
    let st = only_state(text);
    assert_eq!(
        (st.kind, st.ike_version, st.established),
        (Some(SaKind::Ike), Some(IkeVersion::V1), true)
    );
    assert_eq!(st.name.as_deref(), Some("STATE_MAIN_I4"));
    assert_eq!(st.parent_serial, None);
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E2));
}

#[test]
fn e3_v4_0_established_child_keeps_old_items() {
    let text = "000 #2: \"westnet-eastnet-ikev2\":500 STATE_V2_ESTABLISHED_CHILD_SA (IPsec SA established); EVENT_SA_EXPIRE in XXs; newest IPSEC; eroute owner; isakmp#1; idle;\n";
    let st = only_state(text);
    assert_eq!(
        (st.kind, st.established, st.parent_serial),
        (Some(SaKind::Child), true, Some(1))
    );
    assert!(st.has_timer(TimerKind::Expire));
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E3));
}

#[test]
fn e4_v4_5_short_timers_with_old_newest() {
    // libreswan 4.5 is not in the corpus: this line is the §6.1 example of
    // docs/libreswan-format.md, taken from the v4.5 transcripts.
    let text = "000 #8: \"private#192.1.2.23/32\"[1] ...192.1.2.23:500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); REKEY in XXs; newest IPSEC; eroute owner; isakmp#7; idle;\n";
    let st = only_state(text);
    assert_eq!(st.conn.name, "private#192.1.2.23/32");
    assert_eq!(st.conn.instances, vec![1]);
    assert_eq!(st.conn.peer.as_deref(), Some("...192.1.2.23"));
    assert_eq!(st.parent_serial, Some(7));
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E4));
}

#[test]
fn e5_v4_15_item_lists_and_spi_line() {
    let text = "000 #2: \"westnet-eastnet-ikev2\":500 STATE_V2_ESTABLISHED_CHILD_SA (established Child SA); EXPIRE in XXs; newest; eroute owner; IKE SA #1; idle;\n\
000 #2: \"westnet-eastnet-ikev2\" esp.ESPSPIi@192.1.2.23 esp.ESPSPIi@192.1.2.45 tun.0@192.1.2.23 tun.0@192.1.2.45 Traffic: ESPin=84B ESPout=84B ESPmax=2^63B \n";
    let st = only_state(text);
    assert_eq!(
        (st.ike_version, st.parent_serial),
        (Some(IkeVersion::V2), Some(1))
    );
    let spi = st.spi_line.as_ref().expect("SPI line attached");
    assert_eq!(spi.saids.len(), 4);
    assert_eq!(spi.counter("ESPin"), Some(84));
    assert_eq!(spi.counter("ESPmax"), None);
    assert_eq!(spi.spi_out(), Some("ESPSPIi"));
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E5));
}

#[test]
fn e6_v5_0_no_prefix_ikev1_wording() {
    let text = "#2: \"northnet-westnet-ipv4-psk\":500 STATE_QUICK_I2 (IPsec SA established); REPLACE in XXs; newest; eroute owner; ISAKMP SA #1; idle;\n";
    let st = only_state(text);
    assert_eq!(
        (st.kind, st.ike_version, st.parent_serial),
        (Some(SaKind::Child), Some(IkeVersion::V1), Some(1))
    );
    let snap = parse(text);
    assert!(!snap.prefixed);
    assert_eq!(snap.epoch, Some(FormatEpoch::E6));
}

#[test]
fn e7_v5_3_short_ikev2_names() {
    let text = "#2: \"westnet-eastnet-ikev2\":500 ESTABLISHED_CHILD_SA (established Child SA); EXPIRE in XXs; newest; eroute owner; IKE SA #1; idle;\n";
    let st = only_state(text);
    assert_eq!(st.name.as_deref(), Some("ESTABLISHED_CHILD_SA"));
    assert_eq!((st.kind, st.established), (Some(SaKind::Child), true));
    assert_eq!(parse(text).epoch, Some(FormatEpoch::E7));
}

#[test]
fn e8_v5_4_story_only() {
    let text = "#2: \"westnet-eastnet-ikev2\":500 established Child SA; EXPIRE in XXs; newest; eroute owner; IKE SA #1; idle;\n\
#1: \"westnet-eastnet-ikev2\":500 established IKE SA; REKEY in 10s; REPLACE in 25s; newest; idle;\n";
    let snap = parse(text);
    assert_eq!(snap.epoch, Some(FormatEpoch::E8));
    let child = snap.state(2).unwrap();
    assert_eq!(child.name, None);
    assert_eq!(child.story, "established Child SA");
    let ike = snap.state(1).unwrap();
    assert_eq!((ike.kind, ike.established), (Some(SaKind::Ike), true));
    assert_eq!(ike.due(TimerKind::Rekey), Some(10));
    assert_eq!(ike.due(TimerKind::Replace), Some(25));
}

// --- §16 gotchas ------------------------------------------------------------

#[test]
fn gotcha1_blank_lines_of_both_transports() {
    let snap = parse("000  \n000\n \n\n");
    assert!(snap.diagnostics.is_empty());
    assert!(snap.states.is_empty());
}

#[test]
fn gotcha2_story_with_parentheses_and_commas() {
    // v5.3.2 transcripts: an EAP responder's story.
    let st = only_state(
        "#1: \"c\":500 IKE_AUTH_EAP_R (sent IKE_AUTH(EAP) response, waiting for IKE_AUTH(EAP) request); RETRANSMIT in 5s; idle;\n",
    );
    assert_eq!(
        st.story,
        "sent IKE_AUTH(EAP) response, waiting for IKE_AUTH(EAP) request"
    );
    assert_eq!((st.kind, st.established), (Some(SaKind::Ike), false));
    assert_eq!(st.due(TimerKind::Retransmit), Some(5));
}

#[test]
fn gotcha3_conn_ref_suffixes_and_ipv6_port() {
    // v3.32 trafficstatus: OE with the local client and a space before `...`.
    let snap = parse(
        "006 #2: \"private-or-clear#192.1.2.0/24\"[1] 10.0.10.1/32=== ...192.1.2.23, type=ESP, add_time=1234567890, inBytes=336, outBytes=336, id='@east', lease=10.0.10.1/32\n",
    );
    let t = &snap.traffic[0];
    assert_eq!(t.conn.name, "private-or-clear#192.1.2.0/24");
    assert_eq!(
        t.conn.peer.as_deref(),
        Some("10.0.10.1/32=== ...192.1.2.23")
    );
    assert_eq!(t.leases, vec!["10.0.10.1/32"]);
    // Constructed from the grammar of §6.1 (no IPv6 instance in the corpus).
    let st =
        only_state("#3: \"rw\"[2] 2001:db8:1:2::45:4500(tcp) established IKE SA; newest; idle;\n");
    assert_eq!(st.conn.peer.as_deref(), Some("2001:db8:1:2::45"));
    assert_eq!((st.port, st.tcp), (Some(4500), true));
    // A connection without an instance never has a suffix.
    let st = only_state(
        "#1: \"road-eastnet-encapsulation=yes\":500 established IKE SA; newest; idle;\n",
    );
    assert_eq!(
        (st.conn.name.as_str(), st.conn.peer.clone()),
        ("road-eastnet-encapsulation=yes", None)
    );
}

#[test]
fn gotcha4_established_per_version_including_the_3x_parent_bug() {
    // v3.25 status/ikev2-09-rw-oe-rsa__road__2.txt: the Child SA #2 wears
    // STATE_PARENT_R2; the IKE SA #1 prints `isakmp#0` and an empty SPI line.
    let text = "000 #2: \"packetdefault\"[1] ...192.1.2.23:500 STATE_PARENT_R2 (received v2I2, PARENT SA established); EVENT_SA_EXPIRE in  XXs; newest ISAKMP; newest IPSEC; eroute owner; isakmp#1; idle; import:respond to stranger\n\
000 #2: \"packetdefault\"[1] ...192.1.2.23 esp.ESPSPIi@192.1.2.23 esp.ESPSPIi@192.1.3.209 tun.0@192.1.2.23 tun.0@192.1.3.209 ref=0 refhim=4294901761 Traffic: ESPin=0B ESPout=0B! ESPmax=0B \n\
000 #1: \"packetdefault\"[1] ...192.1.2.23:500 STATE_PARENT_R2 (received v2I2, PARENT SA established); EVENT_SA_EXPIRE in  XXs; isakmp#0; idle; import:respond to stranger\n\
000 #1: \"packetdefault\"[1] ...192.1.2.23 ref=0 refhim=0 Traffic: \n";
    let snap = parse(text);
    assert!(snap.diagnostics.is_empty(), "{:?}", snap.diagnostics);
    let child = snap.state(2).unwrap();
    assert_eq!(
        (child.kind, child.established, child.parent_serial),
        (Some(SaKind::Child), true, Some(1))
    );
    let ike = snap.state(1).unwrap();
    assert_eq!(
        (ike.kind, ike.established, ike.parent_serial),
        (Some(SaKind::Ike), true, None)
    );
    // STATE_QUICK_R1 is an installed inbound IPsec SA: pluto counts it established.
    let st = only_state(
        "000 #4: \"c\":500 STATE_QUICK_R1 (sent QR1, inbound IPsec SA installed, expecting QI2); EVENT_v1_RETRANSMIT in 10s; idle;\n",
    );
    assert_eq!((st.kind, st.established), (Some(SaKind::Child), true));
    // A zombie IKE SA is on its way out, not established.
    let st = only_state("#5: \"c\":500 ZOMBIE (deleted state); DISCARD in 1s; idle;\n");
    assert_eq!((st.kind, st.established), (Some(SaKind::Ike), false));
    let st = only_state("#5: \"c\":500 deleted state; DISCARD in 1s; idle;\n");
    assert_eq!((st.kind, st.established), (Some(SaKind::Ike), false));
}

#[test]
fn gotcha5_rekey_overlap_keeps_both_children_by_serial() {
    // The lab's real libreswan 4.10 run, 04-rekeyed/status.txt.
    let text = "000 #32: \"v1-tun\":500 STATE_QUICK_I2 (IPsec SA established); EXPIRE in 10s; ISAKMP SA #30; idle;\n\
000 #32: \"v1-tun\" esp.a952f6d3@192.0.2.2 esp.38cf4b33@192.0.2.1 tun.0@192.0.2.2 tun.0@192.0.2.1 Traffic: ESPin=5KB ESPout=5KB ESPmax=2^63B \n\
000 #34: \"v1-tun\":500 STATE_QUICK_I2 (IPsec SA established); REPLACE in 23s; newest; eroute owner; ISAKMP SA #30; idle;\n\
000 #34: \"v1-tun\" esp.53018a06@192.0.2.2 esp.bb791062@192.0.2.1 tun.0@192.0.2.2 tun.0@192.0.2.1 Traffic: ESPin=3KB ESPout=3KB ESPmax=2^63B \n";
    let snap = parse(text);
    let old = snap.state(32).unwrap();
    let new = snap.state(34).unwrap();
    assert!(!old.newest && new.newest);
    assert_eq!(old.due(TimerKind::Expire), Some(10));
    assert_eq!(
        old.spi_line.as_ref().unwrap().counter("ESPin"),
        Some(5 * 1024)
    );
    assert_eq!(new.spi_line.as_ref().unwrap().spi_in(), Some("bb791062"));
    assert_eq!(new.spi_line.as_ref().unwrap().spi_out(), Some("53018a06"));
}

#[test]
fn gotcha6_nested_instances_and_subnet_pairs() {
    // main showstates: labeled IPsec.
    let st = only_state(
        "#2: \"labeled\"[1][1] 192.1.2.23:500 established Child SA; REKEY in XXs; REPLACE in XXs; newest; eroute owner; IKE SA #1; idle;\n",
    );
    assert_eq!(st.conn.instances, vec![1, 1]);
    assert_eq!(st.conn.peer.as_deref(), Some("192.1.2.23"));
    // v4.15 trafficstatus: leftsubnets= expansion.
    let snap = parse(
        "006 #2: \"road/0x1\", type=ESP, add_time=1234567890, inBytes=0, outBytes=0, maxBytes=2^63B, id='C=CA, ST=Ontario, CN=east.testing.libreswan.org'\n",
    );
    assert_eq!(snap.traffic[0].conn.name, "road/0x1");
    assert_eq!(
        snap.traffic[0].id.as_deref(),
        Some("C=CA, ST=Ontario, CN=east.testing.libreswan.org")
    );
}

#[test]
fn gotcha7_trafficstatus_optional_fields() {
    // v5.4: XAUTH username and no id.
    let snap = parse(
        "#3: \"xauth-road-eastnet-psk\", username=nopw, type=ESP, add_time=1234567890, inBytes=84, outBytes=84\n",
    );
    let t = &snap.traffic[0];
    assert_eq!(
        (t.username.as_deref(), t.id.as_deref()),
        (Some("nopw"), None)
    );
    assert_eq!(
        (t.in_bytes, t.out_bytes, t.max_bytes.as_deref()),
        (Some(84), Some(84), None)
    );
    assert_eq!(t.add_time, None, "the sanitised add_time is no time");
    // v4.15: counters missing when the kernel query failed.
    let snap =
        parse("006 #2: \"eastnet-westnet-ikev2\", type=ESP, add_time=1234567890, id='@east'\n");
    assert_eq!(
        (snap.traffic[0].in_bytes, snap.traffic[0].id.as_deref()),
        (None, Some("@east"))
    );
    // Constructed from §7: nic-offload note, real add_time, quote in the id.
    let snap = parse(
        "#9: \"gw\", type=ESP(nic-offload=packet), add_time=1795857783, inBytes=21120, outBytes=4294967296, maxBytes=1GiB, id='CN=o'neil, O=x'\n",
    );
    let t = &snap.traffic[0];
    assert_eq!(t.sa_type, "ESP(nic-offload=packet)");
    assert_eq!(t.add_time, Some(1795857783));
    assert_eq!(t.out_bytes, Some(4294967296));
    assert_eq!(t.id.as_deref(), Some("CN=o'neil, O=x"));
    assert_eq!(snap.kinds, vec![OutputKind::TrafficStatus]);
}

#[test]
fn gotcha8_lossy_units_and_the_old_bang() {
    // v3.32 status: `ESPout=336B!` and a kilo-humber ESPmax.
    let text = "000 #2: \"westnet-eastnet-ikev2\":500 STATE_V2_IPSEC_I (IPsec SA established); EVENT_SA_EXPIRE in XXs; newest IPSEC; eroute owner; isakmp#1; idle;\n\
000 #2: \"westnet-eastnet-ikev2\" esp.ESPSPIi@192.1.2.23 esp.ESPSPIi@192.1.2.45 tun.0@192.1.2.23 tun.0@192.1.2.45 ref=0 refhim=0 Traffic: ESPin=336B ESPout=336B! ESPmax=0B \n";
    let spi = only_state(text).spi_line.unwrap();
    assert_eq!(spi.counter("ESPout"), Some(336));
    assert_eq!(spi.counter("ESPmax"), Some(0));
}

#[test]
fn gotcha9_no_timer_is_no_timer() {
    let st = only_state(
        "000 #1: \"c\":500 STATE_MAIN_R3 (sent MR3, ISAKMP SA established); none in -1s; newest ISAKMP; nodpd; idle; import:not set\n",
    );
    assert!(st.timers.is_empty());
    assert!(st.established);
}

#[test]
fn gotcha10_noise_and_edge_outputs() {
    let empty = parse("");
    assert!(empty.is_complete() && empty.states.is_empty() && empty.kinds.is_empty());
    let typed = swantrail::status::parse_as("", OutputKind::TrafficStatus);
    assert_eq!(typed.kinds, vec![OutputKind::TrafficStatus]);
    let debug = parse(
        "| liveness warning: dpdaction=hold on instance futile - will be deleted\n#1: \"c\":500 established IKE SA; newest; idle;\n",
    );
    assert!(debug.diagnostics.is_empty());
    assert_eq!(debug.states.len(), 1);
    for wording in [
        "whack: Pluto is not running (no \"/run/pluto/pluto.ctl\")\n",
        "ERROR: ipsec whack: Pluto is not running (no \"/run/pluto/pluto.ctl\"): No such file or directory (errno 2)\n",
        "ipsec whack: ERROR: Pluto is not running (no \"/run/pluto/pluto.ctl\"): No such file or directory (errno 2)\n",
    ] {
        let snap = parse(wording);
        assert!(
            snap.incomplete
                .as_deref()
                .unwrap()
                .starts_with("pluto is not running"),
            "{wording}"
        );
    }
    // logip=no hides addresses (constructed from §13).
    let st = only_state("#4: \"rw\"[3] <address>:500 established IKE SA; newest; idle;\n");
    assert_eq!(st.conn.peer.as_deref(), Some("<address>"));
}

#[test]
fn unrecognised_lines_are_reported_with_their_number_and_the_rest_still_parses() {
    let snap = parse(
        "#1: \"c\":500 established IKE SA; newest; idle;\nthis is not libreswan\n#2: \"c\":500 established Child SA; newest; IKE SA #1; idle;\n",
    );
    assert_eq!(snap.states.len(), 2);
    assert_eq!(snap.diagnostics.len(), 1);
    assert_eq!(snap.diagnostics[0].line, 2);
    assert_eq!(snap.diagnostics[0].text, "this is not libreswan");
}

#[test]
fn pending_lines_attach_to_their_ike_sa() {
    // The lab's real libreswan 4.10 run, 04-rekeyed/status.txt.
    let snap = parse(
        "000 #36: \"v1-deadpeer\":500 STATE_MAIN_I1 (sent Main Mode request); RETRANSMIT in 7s; nodpd; idle;\n000 #36: pending Phase 2 for \"v1-deadpeer\"\n000 #35: \"v2-deadpeer\":500 STATE_V2_PARENT_I1 (sent IKE_SA_INIT request); RETRANSMIT in 7s; idle;\n000 #35: pending CHILD SA for \"v2-deadpeer\" replacing #12\n",
    );
    assert!(snap.diagnostics.is_empty());
    let v1 = snap.state(36).unwrap();
    assert_eq!(
        (v1.kind, v1.ike_version, v1.established),
        (Some(SaKind::Ike), Some(IkeVersion::V1), false)
    );
    assert_eq!(v1.pending[0].conn.name, "v1-deadpeer");
    let v2 = snap.state(35).unwrap();
    assert_eq!(v2.pending[0].replacing, Some(12));
    assert_eq!(v2.ike_version, Some(IkeVersion::V2));
}
