//! The synthetic dumps parse the way the generator says they should.

use swantrail::snapshot::{OutputKind, SaKind};
use swantrail::synth::{Dialect, status_dump};

fn check(dialect: Dialect) {
    let dump = status_dump(200, dialect);
    let snap = swantrail::parse(&dump.text);
    assert_eq!(snap.diagnostics, vec![], "{dialect:?}");
    assert_eq!(snap.incomplete, None, "{dialect:?}");
    assert_eq!(snap.kinds, vec![OutputKind::Status]);
    assert_eq!(snap.prefixed, dialect == Dialect::V4_10);
    assert_eq!(snap.connections.len(), dump.connections, "{dialect:?}");
    assert_eq!(snap.states.len(), dump.states, "{dialect:?}");
    let half_open = snap
        .states
        .iter()
        .filter(|s| !s.established && s.kind == Some(SaKind::Ike))
        .count();
    assert_eq!(half_open, dump.half_open, "{dialect:?}");
    let table = swantrail::show::tunnel_table(&snap);
    assert_eq!(table.tunnels.len(), dump.tunnels, "{dialect:?}");
    assert_eq!(table.summary.negotiating, dump.half_open, "{dialect:?}");
    assert!(
        snap.states
            .iter()
            .filter(|s| s.kind == Some(SaKind::Child))
            .all(|s| s.spi_line.is_some() && s.parent_serial.is_some()),
        "{dialect:?}"
    );
}

#[test]
fn synthetic_4_10_dump_parses_without_diagnostics() {
    check(Dialect::V4_10);
}

#[test]
fn synthetic_5_4_dump_parses_without_diagnostics() {
    check(Dialect::V5_4);
}
