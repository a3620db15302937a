//! `docs/events.md` shows a real example of every action, produced by the
//! code from the bundled lab runs; this test keeps those examples true.
//! When it fails, it writes the current examples to
//! `target/events-examples.md` so the document can be updated.

use crate::support;

use std::collections::BTreeMap;

use support::*;
use swantrail::event::{Action, Event};
use swantrail::track::{Tracker, TrackerConfig};

/// The last event of each action from the lab (west, with traffic metrics);
/// for actions the lab run on west does not show, east's restart and an
/// outage of west's pluto.
fn examples() -> BTreeMap<Action, Event> {
    let mut config = west();
    config.observer_version = Some("4.10".to_string());
    config.traffic_interval_s = Some(60);
    let mut map = BTreeMap::new();
    for e in replay(&lab_inputs(true), config) {
        map.insert(e.event.action, e);
    }
    let mut all = Vec::new();
    let mut east = TrackerConfig::new("east");
    east.observer_version = Some("4.10".to_string());
    all.extend(replay(
        &[root().join("tests/fixtures/lab-east-restart")],
        east,
    ));
    let mut config = west();
    config.observer_version = Some("4.10".to_string());
    let mut tracker = Tracker::new(config);
    let dir = root().join("examples/lab-4.10/series");
    tracker.observe(&snapshot(&dir.join("status-1795857662.txt"), 1795857662));
    all.extend(tracker.observe_unreachable(
        1795857667,
        "connect(\"/run/pluto/pluto.ctl\"): No such file or directory",
    ));
    all.extend(tracker.observe(&snapshot(&dir.join("status-1795857672.txt"), 1795857672)));
    for e in all {
        map.entry(e.event.action).or_insert(e);
    }
    map
}

fn block(e: &Event) -> String {
    format!(
        "```json\n{}\n```",
        serde_json::to_string_pretty(e).expect("event encodes")
    )
}

#[test]
fn events_md_shows_a_real_example_of_every_action() {
    let examples = examples();
    let doc = std::fs::read_to_string(root().join("docs/events.md")).expect("docs/events.md");
    let mut missing = Vec::new();
    let mut all = String::new();
    for action in Action::ALL {
        let e = examples
            .get(&action)
            .unwrap_or_else(|| panic!("no example of {action}"));
        let b = block(e);
        all.push_str(&format!("### `{action}`\n\n{b}\n\n"));
        if !doc.contains(&format!("### `{action}`")) || !doc.contains(&b) {
            missing.push(action.as_str());
        }
    }
    if !missing.is_empty() {
        let out = root().join("target/events-examples.md");
        std::fs::write(&out, &all).expect("write examples");
        panic!(
            "docs/events.md lacks the current example of {missing:?}; see {}",
            out.display()
        );
    }
    let events: Vec<Event> = examples.into_values().collect();
    assert_schema_valid(&events);
}

#[test]
fn events_md_documents_every_field_the_schema_knows() {
    let doc = std::fs::read_to_string(root().join("docs/events.md")).expect("docs/events.md");
    let text = std::fs::read_to_string(root().join("docs/event.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    fn fields(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, sub) in props {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if sub.get("properties").is_some() {
                    fields(&name, sub, out);
                } else {
                    out.push(name);
                }
            }
        }
    }
    let mut names = Vec::new();
    fields("", &schema, &mut names);
    names.push("source.ip".to_string());
    names.push("destination.port".to_string());
    for name in names {
        if name == "source" || name == "destination" {
            continue;
        }
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/events.md does not document `{name}`"
        );
    }
}
