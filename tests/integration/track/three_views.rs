//! `swantrail show`, the tracker's events and the systemd STATUS line must
//! count the same tunnels on the same dump: every dump of the bundled lab
//! series and of the corpus (`../shared/corpus`, skipped when absent) goes
//! to all three. `show`'s byte counters must be the snapshot's rule
//! (`Seen::bytes`, which the tracker's ledger records) for the row's Child SA.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::root;
use swantrail::show::{ByteCount, tunnel_table};
use swantrail::snapshot::TunnelKey as TunnelId;
use swantrail::track::{Tracker, TrackerConfig};

fn dumps_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            dumps_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "txt") {
            out.push(path);
        }
    }
}

#[test]
fn show_the_tracker_and_the_status_line_count_the_same_tunnels_on_every_dump() {
    let mut dumps = Vec::new();
    dumps_under(&root().join("examples/lab-4.10"), &mut dumps);
    let corpus = root().join("../shared/corpus");
    if corpus.is_dir() {
        dumps_under(&corpus, &mut dumps);
    } else {
        eprintln!(
            "note: {} is absent; only the lab series is checked",
            corpus.display()
        );
    }
    assert!(dumps.len() > 60, "{} dumps", dumps.len());
    let mut disagreements = Vec::new();
    let mut up = 0;
    for path in &dumps {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut snapshot = swantrail::parse(&text);
        if snapshot.incomplete.is_some() {
            continue;
        }
        snapshot.taken_at = Some(1_800_000_000);
        // The systemd STATUS line counts `Snapshot::tunnels_up`.
        let status: BTreeSet<TunnelId> = snapshot.tunnels_up();
        let table = tunnel_table(&snapshot);
        let shown: BTreeSet<TunnelId> = table.tunnels.iter().map(|row| row.conn.tunnel()).collect();
        let seen = snapshot.seen_by_serial();
        for row in &table.tunnels {
            let rule = seen.get(&row.child_serial).map(|s| s.bytes());
            let count = |c: Option<ByteCount>| c.map(|c| c.bytes);
            let exact = row.bytes_in.or(row.bytes_out).map(|c| c.exact);
            let shown_bytes = (count(row.bytes_in), count(row.bytes_out));
            let agrees = match rule {
                Some((i, o, e)) => shown_bytes == (i, o) && exact.is_none_or(|x| x == e),
                None => shown_bytes == (None, None),
            };
            if !agrees {
                disagreements.push(format!(
                    "{}: #{} shows bytes {shown_bytes:?}, the rule says {rule:?}",
                    path.display(),
                    row.child_serial
                ));
            }
        }
        let mut tracker = Tracker::new(TrackerConfig::new("gw"));
        tracker.observe(&snapshot);
        let tracked = tracker.tunnels_up();
        up += status.len();
        if status != shown || status != tracked {
            disagreements.push(format!(
                "{}: status {status:?}, show {shown:?}, tracker {tracked:?}",
                path.display()
            ));
        }
    }
    assert!(up > 0);
    assert!(
        disagreements.is_empty(),
        "{} of {} dumps disagree, e.g.\n{}",
        disagreements.len(),
        dumps.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
