//! The synthetic dumps parse the way the generator says they should, in
//! every dialect and for every command, and a synthetic series makes the
//! tracker report exactly the changes the generator made.

use std::collections::BTreeMap;

use swantrail::event::Action;
use swantrail::snapshot::{OutputKind, SaKind, Snapshot};
use swantrail::synth::{Churn, Dialect, Output, Series, status_dump};
use swantrail::track::{Tracker, TrackerConfig};

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

#[test]
fn synthetic_status_of_every_epoch_parses_without_diagnostics() {
    for dialect in Dialect::ALL {
        check(dialect);
    }
}

#[test]
fn synthetic_dialects_are_told_apart_by_the_parser() {
    use swantrail::snapshot::FormatEpoch;
    let epochs: Vec<Option<FormatEpoch>> = Dialect::ALL
        .into_iter()
        .map(|d| swantrail::parse(&status_dump(40, d).text).epoch)
        .collect();
    assert_eq!(
        epochs,
        vec![
            Some(FormatEpoch::E5),
            Some(FormatEpoch::E6),
            Some(FormatEpoch::E7),
            Some(FormatEpoch::E8)
        ]
    );
}

#[test]
fn synthetic_showstates_and_trafficstatus_of_every_epoch_parse() {
    let gateway = swantrail::synth::Gateway::new(200);
    for dialect in Dialect::ALL {
        let states = gateway.dump(dialect, Output::ShowStates);
        let snap = swantrail::status::parse_as(&states.text, OutputKind::ShowStates);
        assert_eq!(snap.diagnostics, vec![], "{dialect:?}");
        assert_eq!(snap.states.len(), states.states, "{dialect:?}");
        assert_eq!(snap.tunnels_up().len(), states.tunnels, "{dialect:?}");

        let traffic = gateway.dump(dialect, Output::TrafficStatus);
        let snap = swantrail::status::parse_as(&traffic.text, OutputKind::TrafficStatus);
        assert_eq!(snap.diagnostics, vec![], "{dialect:?}");
        assert_eq!(snap.tunnels_up().len(), traffic.tunnels, "{dialect:?}");
        assert!(
            snap.traffic
                .iter()
                .all(|t| t.in_bytes.is_some() && t.id.is_some())
        );
    }
}

fn count(events: &[swantrail::event::Event]) -> BTreeMap<Action, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts.entry(e.event.action).or_insert(0) += 1;
    }
    counts
}

/// Run a series of `steps` through a tracker, each snapshot merged from
/// `outputs`, and check every step's events against what the generator did.
fn series_matches(dialect: Dialect, outputs: &[Output], with_connections: bool) {
    let mut series = Series::new(400, Churn::even(0.04));
    let mut tracker = Tracker::new(TrackerConfig::new("gw"));
    let snapshot = |series: &Series, at: i64| {
        let mut snap = Snapshot::default();
        for &output in outputs {
            let dump = series.gateway().dump(dialect, output);
            let kind = match output {
                Output::Status => OutputKind::Status,
                Output::ShowStates => OutputKind::ShowStates,
                Output::TrafficStatus => OutputKind::TrafficStatus,
            };
            let part = swantrail::status::parse_as(&dump.text, kind);
            assert_eq!(part.diagnostics, vec![], "{dialect:?} {output:?}");
            if snap.kinds.is_empty() {
                snap = part;
            } else {
                snap.merge(part);
            }
        }
        snap.taken_at = Some(at);
        snap
    };
    let start = 1_795_100_000;
    tracker.observe(&snapshot(&series, start));
    for n in 1..=5 {
        let step = series.advance();
        assert!(step.rekeyed > 0 && step.added > 0 && step.deleted > 0 && step.half_open > 0);
        let events = tracker.observe(&snapshot(&series, start + 10 * n));
        let got = count(&events);
        let of = |a: Action| got.get(&a).copied().unwrap_or(0);
        let label = format!("{dialect:?} {outputs:?} step {n}: {got:?}");
        assert_eq!(of(Action::ChildSaRekeyed), step.rekeyed, "{label}");
        assert_eq!(of(Action::TunnelUp), step.added, "{label}");
        assert_eq!(of(Action::TunnelDown), step.deleted, "{label}");
        assert_eq!(of(Action::NegotiationStarted), step.half_open, "{label}");
        if with_connections {
            assert_eq!(
                of(Action::ConnectionAdded),
                step.added + step.half_open,
                "{label}"
            );
            assert_eq!(of(Action::ConnectionRemoved), step.deleted, "{label}");
        }
        assert_eq!(
            tracker.tunnels_up().len(),
            series.gateway().tunnels_up(),
            "{label}"
        );
    }
}

#[test]
fn a_synthetic_status_series_gives_the_tracker_exactly_its_rekeys_additions_and_deletions() {
    for dialect in Dialect::ALL {
        series_matches(dialect, &[Output::Status], true);
    }
}

#[test]
fn a_synthetic_showstates_and_trafficstatus_series_gives_the_same_counts() {
    for dialect in [Dialect::V4_10, Dialect::V5_4] {
        series_matches(dialect, &[Output::ShowStates, Output::TrafficStatus], false);
    }
}

#[test]
fn the_same_series_arguments_give_the_same_snapshots() {
    let run = || {
        let mut series = Series::new(100, Churn::even(0.04));
        let steps: Vec<_> = (0..3).map(|_| series.advance()).collect();
        (
            steps,
            series.gateway().dump(Dialect::V5_4, Output::Status).text,
        )
    };
    assert_eq!(run(), run());
}
