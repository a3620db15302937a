//! The listing the tracker reads ([`swantrail::listing`]) says what the
//! whole snapshot says of every serial and connection, whether it is built
//! from the snapshot or streamed as the parser reads each record, over
//! every dump among the fixtures.

use swantrail::listing::{Listing, ListingBuilder, ListingMeta, Seen};
use swantrail::snapshot::{Seen as Whole, Snapshot, TimerKind};

/// The lab's 4.10 `showstates` and `trafficstatus` of one moment, with a
/// second state line for a listed serial and a trafficstatus line no state
/// line shows.
fn lab_listing() -> Snapshot {
    let mut snap = swantrail::status::parse(include_str!(
        "../../fixtures/lab-4.10/02-established-showstates.txt"
    ));
    snap.merge(swantrail::status::parse(include_str!(
        "../../fixtures/lab-4.10/02-established-trafficstatus.txt"
    )));
    assert!(!snap.states.is_empty() && !snap.traffic.is_empty());
    let again = snap.states[0].clone();
    snap.states.push(again);
    let mut alone = snap.traffic[0].clone();
    alone.serial = 9_999;
    snap.traffic.push(alone);
    snap
}

/// Every accessor of `seen` against what the whole snapshot's view of
/// the same serial says.
fn assert_same(seen: Seen<'_>, want: Whole<'_>) {
    let serial = seen.serial();
    let st = want.state;
    let line = st.and_then(|s| s.spi_line.as_ref());
    assert_eq!(seen.has_state(), st.is_some(), "#{serial}");
    assert_eq!(seen.has_traffic(), want.traffic.is_some(), "#{serial}");
    assert_eq!(seen.kind(), want.kind(), "#{serial}");
    assert_eq!(seen.established(), want.established(), "#{serial}");
    assert_eq!(seen.conn(), want.conn(), "#{serial}");
    assert_eq!(seen.bytes(), want.bytes(), "#{serial}");
    assert_eq!(seen.state_name(), st.and_then(|s| s.name.as_deref()));
    let story = st.map(|s| s.story.as_str()).filter(|s| !s.is_empty());
    assert_eq!(seen.story(), story, "#{serial}");
    assert_eq!(seen.ike_version(), st.and_then(|s| s.ike_version));
    assert_eq!(seen.parent_serial(), st.and_then(|s| s.parent_serial));
    assert_eq!(seen.port(), st.and_then(|s| s.port));
    assert_eq!(
        seen.shows_expire(),
        st.is_some_and(|s| s.has_timer(TimerKind::Expire))
    );
    for kind in [TimerKind::Expire, TimerKind::Replace, TimerKind::Rekey] {
        assert_eq!(seen.due(kind), st.and_then(|s| s.due(kind)), "#{serial}");
    }
    assert_eq!(seen.has_spi_line(), line.is_some());
    assert_eq!(seen.spi_in(), line.and_then(|l| l.spi_in()));
    assert_eq!(seen.spi_out(), line.and_then(|l| l.spi_out()));
    assert_eq!(
        seen.spi_username(),
        line.and_then(|l| l.username.as_deref())
    );
    assert_eq!(seen.add_time(), want.traffic.and_then(|t| t.add_time));
    assert_eq!(
        seen.traffic_user(),
        want.traffic
            .and_then(|t| t.username.as_deref().or(t.id.as_deref()))
    );
}

fn assert_listing_of(snap: &Snapshot) {
    let listing = Listing::of(snap);
    let whole = snap.seen_by_serial();
    assert_eq!(
        listing.seen().map(|s| s.serial()).collect::<Vec<_>>(),
        whole.keys().copied().collect::<Vec<_>>()
    );
    for (seen, want) in listing.seen().zip(whole.values()) {
        assert_same(seen, *want);
        assert_eq!(
            listing.get(seen.serial()).map(|s| s.serial()),
            Some(seen.serial())
        );
    }
    assert_eq!(listing.tunnels_up(), snap.tunnels_up());
    assert_eq!(listing.count_tunnels_up(), snap.tunnels_up().len());
    assert_eq!(listing.connections().len(), snap.connections.len());
    for (c, want) in listing.connections().zip(&snap.connections) {
        assert_eq!(c.conn(), &want.conn);
        assert_eq!(c.conn_serial(), want.conn_serial);
        assert_eq!(c.local_host(), want.local_host.as_deref());
        assert_eq!(c.remote_host(), want.remote_host.as_deref());
    }
}

/// Two listings of the same dump say the same of every serial and
/// connection (their interned ids may differ).
fn assert_agree(a: &Listing, b: &Listing) {
    assert_eq!(a.kinds, b.kinds);
    assert_eq!(a.incomplete, b.incomplete);
    assert_eq!(a.diagnostics, b.diagnostics);
    assert_eq!(a.pluto_version, b.pluto_version);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.seen().zip(b.seen()) {
        let serial = x.serial();
        assert_eq!(serial, y.serial());
        assert_eq!(x.has_state(), y.has_state(), "#{serial}");
        assert_eq!(x.has_traffic(), y.has_traffic(), "#{serial}");
        assert_eq!(x.kind(), y.kind(), "#{serial}");
        assert_eq!(x.established(), y.established(), "#{serial}");
        assert_eq!(x.conn(), y.conn(), "#{serial}");
        assert_eq!(x.bytes(), y.bytes(), "#{serial}");
        assert_eq!(x.state_name(), y.state_name(), "#{serial}");
        assert_eq!(x.story(), y.story(), "#{serial}");
        assert_eq!(x.ike_version(), y.ike_version(), "#{serial}");
        assert_eq!(x.parent_serial(), y.parent_serial(), "#{serial}");
        assert_eq!(x.port(), y.port(), "#{serial}");
        assert_eq!(x.shows_expire(), y.shows_expire(), "#{serial}");
        assert_eq!(x.newest(), y.newest(), "#{serial}");
        for kind in [TimerKind::Expire, TimerKind::Replace, TimerKind::Rekey] {
            assert_eq!(x.due(kind), y.due(kind), "#{serial}");
        }
        assert_eq!(x.has_spi_line(), y.has_spi_line(), "#{serial}");
        assert_eq!(x.spi_in(), y.spi_in(), "#{serial}");
        assert_eq!(x.spi_out(), y.spi_out(), "#{serial}");
        assert_eq!(x.spi_username(), y.spi_username(), "#{serial}");
        assert_eq!(x.add_time(), y.add_time(), "#{serial}");
        assert_eq!(x.traffic_user(), y.traffic_user(), "#{serial}");
    }
    assert_eq!(a.connections().len(), b.connections().len());
    for (x, y) in a.connections().zip(b.connections()) {
        assert_eq!(x.conn(), y.conn());
        assert_eq!(x.conn_serial(), y.conn_serial());
        assert_eq!(x.newest_child(), y.newest_child());
        assert_eq!(x.local_host(), y.local_host());
        assert_eq!(x.remote_host(), y.remote_host());
    }
    assert_eq!(a.tunnels_up(), b.tunnels_up());
}

/// The listing of `texts` (one command's output each) read as a
/// daemon reads them: streamed into one builder, `chunk` bytes at a
/// time.
fn streamed(texts: &[&str], chunk: usize) -> Listing {
    let mut builder = ListingBuilder::new();
    let mut merged: Option<Snapshot> = None;
    for text in texts {
        let mut feed = swantrail::status::LineFeed::streaming(builder);
        let mut rest = *text;
        // Whole lines only, as `DumpFeed` hands them over.
        while !rest.is_empty() {
            let cut = rest.len().min(chunk);
            let end = rest[..cut].rfind('\n').map_or(rest.len(), |i| i + 1);
            let (piece, after) = rest.split_at(end.max(1).min(rest.len()));
            let mut start = 0;
            for i in memchr::memchr_iter(b'\n', piece.as_bytes()) {
                feed.line(&piece[start..i]);
                start = i + 1;
            }
            feed.cut_short(&piece[start..]);
            rest = after;
        }
        let (snap, b) = feed.finish_streamed(None);
        assert!(snap.states.is_empty() && snap.traffic.is_empty());
        assert!(snap.connections.is_empty());
        builder = b.expect("a streaming feed gives its builder back");
        match merged.as_mut() {
            Some(m) => m.merge(snap),
            None => merged = Some(snap),
        }
    }
    builder.finish(ListingMeta::of(&merged.unwrap_or_default()))
}

/// Every dump among the project's fixtures: real captures of every
/// dialect, the lab's series, the hostile ones.
fn fixtures() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs = vec![root];
    let mut texts = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures readable") {
            let path = entry.expect("fixture entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                texts.push(text);
            }
        }
    }
    texts
}

#[test]
fn a_listing_streamed_as_the_parser_reads_is_the_listing_of_the_whole_snapshot() {
    let mut listed = 0;
    for text in fixtures() {
        let whole = Listing::of(&swantrail::status::parse(&text));
        listed += usize::from(!whole.is_empty());
        assert_agree(&streamed(&[&text], usize::MAX), &whole);
    }
    assert!(listed > 50, "only {listed} fixtures list SAs");
    // Two commands of one poll into one builder, as `merge` joins them.
    let states = include_str!("../../fixtures/lab-4.10/02-established-showstates.txt");
    let traffic = include_str!("../../fixtures/lab-4.10/02-established-trafficstatus.txt");
    let mut merged = swantrail::status::parse(traffic);
    merged.merge(swantrail::status::parse(states));
    assert_agree(&streamed(&[traffic, states], 64), &Listing::of(&merged));
}

#[test]
fn a_listing_says_what_the_whole_snapshot_says_of_every_serial() {
    // Repeated state and trafficstatus lines, and a serial only
    // trafficstatus lists.
    assert_listing_of(&lab_listing());
    let mut dumps = 0;
    for text in fixtures() {
        let snap = swantrail::status::parse(&text);
        if !snap.states.is_empty() || !snap.traffic.is_empty() {
            dumps += 1;
        }
        assert_listing_of(&snap);
    }
    assert!(dumps > 50, "only {dumps} fixtures list SAs");
}
