//! The hand-written event encoder against `serde_json`: for every kind and
//! action, every optional field present or absent, and hostile strings
//! (quotes, backslashes, every control character, DEL, U+2028/U+2029,
//! non-ASCII, empty, very long), `Event::to_json_line` must give exactly
//! the bytes `serde_json::to_string` makes of the serde derive, and
//! `write_json_line` the same bytes appended to whatever the buffer held.
//! Receivers and the spool's readers only ever see that one encoding.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use swantrail::event::{
    Action, ConnectionFields, Ecs, Endpoint, Event, EventKind, EventMeta, Libreswan,
    NegotiationFields, Observer, PlutoFields, SaFields, TunnelFields, User,
};

/// Characters that each take a different path through a JSON escaper.
const HOSTILE: &[char] = &[
    '"', '\\', '/', '\u{0}', '\u{1}', '\u{7}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r',
    '\u{1b}', '\u{1f}', ' ', '\u{7f}', '\u{80}', '\u{a0}', 'é', 'ß', '\u{2028}', '\u{2029}',
    '\u{fffd}', '\u{feff}', '日', '😀', 'a', 'Z', '0', '{', '}', '[', ']', ':', ',',
];

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::sample::select(HOSTILE),
        1 => any::<char>(),
    ]
}

/// Empty, short hostile, arbitrary, or long (past any small-buffer size).
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just(String::new()),
        4 => vec(hostile_char(), 1..24).prop_map(|c| c.into_iter().collect()),
        1 => any::<String>(),
        // A hostile run repeated to thousands of bytes: cheap to generate.
        1 => (vec(hostile_char(), 1..16), 200..500usize)
            .prop_map(|(c, n)| c.into_iter().collect::<String>().repeat(n)),
    ]
    .boxed()
}

fn kind() -> impl Strategy<Value = EventKind> {
    proptest::sample::select(vec![EventKind::Event, EventKind::Metric, EventKind::State])
}

fn endpoint() -> BoxedStrategy<Endpoint> {
    (option::of(text()), option::of(any::<u16>()))
        .prop_map(|(ip, port)| Endpoint { ip, port })
        .boxed()
}

fn sa() -> BoxedStrategy<SaFields> {
    (
        (
            any::<u64>(),
            text(),
            option::of(any::<u8>()),
            option::of(text()),
        ),
        (
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
        ),
        (option::of(text()), option::of(text())),
        (
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(any::<i64>()),
        ),
    )
        .prop_map(
            |(
                (serial, kind, ike_version, state),
                (parent_serial, replaces, replaced_by),
                (spi_in, spi_out),
                (bytes_in, bytes_out, duration_s),
            )| SaFields {
                serial,
                kind,
                ike_version,
                state,
                parent_serial,
                replaces,
                replaced_by,
                spi_in,
                spi_out,
                bytes_in,
                bytes_out,
                duration_s,
            },
        )
        .boxed()
}

fn libreswan() -> BoxedStrategy<Libreswan> {
    let connection =
        (text(), option::of(text()), option::of(text())).prop_map(|(name, instance, peer)| {
            ConnectionFields {
                name,
                instance,
                peer,
            }
        });
    let tunnel = (
        text(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(up_since, duration_s, rekeys, bytes_in, bytes_out)| TunnelFields {
                up_since,
                duration_s,
                rekeys,
                bytes_in,
                bytes_out,
            },
        );
    let negotiation =
        (text(), any::<i64>(), any::<u64>()).prop_map(|(since, duration_s, attempts)| {
            NegotiationFields {
                since,
                duration_s,
                attempts,
            }
        });
    (
        option::of(connection),
        option::of(sa()),
        option::of(tunnel),
        option::of(negotiation),
        any::<u64>(),
    )
        .prop_map(
            |(connection, sa, tunnel, negotiation, generation)| Libreswan {
                connection,
                sa,
                tunnel,
                negotiation,
                pluto: PlutoFields { generation },
                end: None,
            },
        )
        .boxed()
}

fn meta() -> BoxedStrategy<EventMeta> {
    (
        (text(), kind(), vec(text(), 0..3), vec(text(), 0..3)),
        (
            proptest::sample::select(Action::ALL.to_vec()),
            option::of(text()),
            any::<u64>(),
        ),
        (text(), text()),
    )
        .prop_map(
            |((id, kind, category, types), (action, reason, sequence), (module, dataset))| {
                EventMeta {
                    id,
                    kind,
                    category,
                    types,
                    action,
                    reason,
                    sequence,
                    module,
                    dataset,
                }
            },
        )
        .boxed()
}

fn observer() -> BoxedStrategy<Observer> {
    (text(), text(), text(), text(), option::of(text()))
        .prop_map(|(hostname, vendor, product, kind, version)| Observer {
            hostname,
            vendor,
            product,
            kind,
            version,
        })
        .boxed()
}

fn event() -> BoxedStrategy<Event> {
    (
        (text(), text(), meta(), observer()),
        (
            option::of(endpoint()),
            option::of(endpoint()),
            option::of(text().prop_map(|name| User { name })),
        ),
        libreswan(),
    )
        .prop_map(
            |((timestamp, ecs, event, observer), (source, destination, user), libreswan)| Event {
                timestamp,
                ecs: Ecs { version: ecs },
                event,
                observer,
                source,
                destination,
                user,
                libreswan,
            },
        )
        .boxed()
}

fn serde_line(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|e| panic!("serde_json: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn hand_written_encoding_is_byte_identical_to_serde_json(event in event()) {
        let line = event.to_json_line();
        prop_assert_eq!(&line, &serde_line(&event));
        let back: Event = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not readable back: {e}: {line}"));
        prop_assert_eq!(back, event);
    }

    #[test]
    fn write_json_line_appends_the_same_bytes_to_a_reused_buffer(
        first in event(),
        second in event(),
    ) {
        let mut buffer = String::from("kept\n");
        first.write_json_line(&mut buffer);
        buffer.push('\n');
        second.write_json_line(&mut buffer);
        prop_assert_eq!(
            buffer,
            format!("kept\n{}\n{}", serde_line(&first), serde_line(&second))
        );
    }
}

/// Every single character below U+0080, and the two line separators that
/// JavaScript (but not JSON) treats as newlines, alone and between text.
#[test]
fn every_ascii_character_and_the_line_separators_encode_as_serde_does() {
    let mut event = real_event();
    for c in (0u8..0x80).map(char::from).chain(['\u{2028}', '\u{2029}']) {
        for name in [c.to_string(), format!("a{c}b{c}")] {
            event.libreswan.connection = Some(ConnectionFields {
                name: name.clone(),
                instance: None,
                peer: Some(name.clone()),
            });
            assert_eq!(
                event.to_json_line(),
                serde_line(&event),
                "character U+{:04X}",
                u32::from(c)
            );
        }
    }
}

/// The events the tracker makes for a real capture encode as serde does.
#[test]
fn tracker_events_of_a_real_capture_encode_as_serde_does() {
    for event in tracker_events() {
        assert_eq!(event.to_json_line(), serde_line(&event));
    }
}

/// The events the tracker emits for the lab's real 4.10 capture
/// (`tests/fixtures/lab-4.10/status.txt`).
fn tracker_events() -> Vec<Event> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab-4.10/status.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut snapshot = swantrail::parse(&text);
    snapshot.taken_at = Some(1_795_857_662);
    let mut tracker = swantrail::track::Tracker::new(swantrail::track::TrackerConfig::new("west"));
    let events = tracker.observe(&snapshot);
    assert!(!events.is_empty(), "the lab capture gives events");
    events
}

fn real_event() -> Event {
    tracker_events().swap_remove(0)
}
