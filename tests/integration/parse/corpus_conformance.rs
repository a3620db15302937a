//! Conformance over the corpus of real libreswan outputs (nine releases).
//!
//! For every full output listed in `../shared/corpus/*/index.tsv`: the file
//! parses, the serials the snapshot holds are exactly the `#N:` serials on
//! its lines, and no line is left unrecognised except the transcript
//! artifacts listed, with a reason each, in `tests/corpus-allowlist.tsv`.
//! Skips (and says so) when the corpus is not beside the project.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.is_dir().then_some(dir)
}

/// `#N:` serials at the start of lines, after any RC prefix.
fn line_serials(text: &str) -> BTreeSet<u64> {
    text.lines()
        .filter_map(|l| {
            let l = if l.len() >= 4
                && l.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                && l.as_bytes()[3] == b' '
            {
                &l[4..]
            } else {
                l
            };
            let rest = l.strip_prefix('#')?;
            let (n, _) = rest.split_once(": ")?;
            n.parse().ok()
        })
        .collect()
}

/// `release \t path \t line \t reason` rows of expected unrecognised lines.
fn allowlist() -> BTreeSet<(String, String, usize)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus-allowlist.tsv"),
    )
    .expect("tests/corpus-allowlist.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(
                f.len() >= 4 && !f[3].trim().is_empty(),
                "allow-list row needs a reason: {l}"
            );
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().expect("line number"),
            )
        })
        .collect()
}

#[test]
fn every_full_output_of_every_release_parses() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: ../shared/corpus is absent; corpus conformance skipped");
        return;
    };
    let allowed = allowlist();
    let mut seen_allowed = BTreeSet::new();
    let mut failures = Vec::new();
    let mut releases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("index.tsv").is_file())
        .collect();
    releases.sort();
    assert_eq!(releases.len(), 9, "nine releases expected in the corpus");
    let mut summary: BTreeMap<String, (usize, usize, usize, usize, usize)> = BTreeMap::new();
    for rel in &releases {
        let label = rel.file_name().unwrap().to_string_lossy().to_string();
        let index = std::fs::read_to_string(rel.join("index.tsv")).unwrap();
        let entry = summary.entry(label.clone()).or_default();
        for row in index.lines().skip(1) {
            let cols: Vec<&str> = row.split('\t').collect();
            let (path, kind) = (cols[0], cols[5]);
            let text = std::fs::read_to_string(rel.join(path)).unwrap();
            let snap = swantrail::parse(&text);
            entry.0 += 1;
            entry.1 += text.lines().count();
            entry.2 += snap.states.len();
            entry.3 += snap.traffic.len();
            let expected = line_serials(&text);
            if snap.serials() != expected {
                failures.push(format!(
                    "{label}/{path}: serials {:?} != lines {:?}",
                    snap.serials(),
                    expected
                ));
            }
            // A full output is whole by definition: the only dumps that may
            // not be diffed are the ones where pluto was not running, and
            // transcript artifacts with no status line at all (a shell error).
            let only_artifacts = !snap.diagnostics.is_empty()
                && snap
                    .diagnostics
                    .iter()
                    .all(|d| allowed.contains(&(label.clone(), path.to_string(), d.line)));
            if let Some(why) = &snap.incomplete {
                let artifact =
                    only_artifacts && why.starts_with("nothing in it is libreswan status output");
                if !why.starts_with("pluto is not running") && !artifact {
                    failures.push(format!("{label}/{path}: marked incomplete: {why}"));
                }
            } else if !text.trim().is_empty() && snap.diagnostics.is_empty() {
                let kinds: Vec<String> = snap
                    .kinds
                    .iter()
                    .map(|k| format!("{k:?}").to_lowercase())
                    .collect();
                if !kinds.iter().any(|k| k == kind) {
                    failures.push(format!(
                        "{label}/{path}: index says {kind}, parser says {kinds:?}"
                    ));
                }
            }
            for problem in consistency(&snap) {
                failures.push(format!("{label}/{path}: {problem}"));
            }
            for d in &snap.diagnostics {
                let key = (label.clone(), path.to_string(), d.line);
                if allowed.contains(&key) {
                    seen_allowed.insert(key);
                } else {
                    entry.4 += 1;
                    failures.push(format!(
                        "{label}\t{path}\t{}\t{}: {}",
                        d.line, d.reason, d.text
                    ));
                }
            }
        }
    }
    eprintln!("release   files   lines  states traffic unrecognised(not allow-listed)");
    for (label, (files, lines, states, traffic, unknown)) in &summary {
        eprintln!("{label:8} {files:6} {lines:7} {states:7} {traffic:7} {unknown:5}");
    }
    eprintln!("allow-listed transcript artifacts: {}", seen_allowed.len());
    let stale: Vec<_> = allowed.difference(&seen_allowed).collect();
    assert!(
        stale.is_empty(),
        "allow-list rows that no longer match a diagnostic: {stale:?}"
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Cross-checks between what the snapshot decided and what pluto itself
/// counted: `IPsec SAs: total(N)` is the number of established Child SAs
/// and `IKE SAs: total(N)` the number of IKE SAs, half-open included.
fn consistency(snap: &swantrail::Snapshot) -> Vec<String> {
    use swantrail::snapshot::SaKind;
    let mut problems = Vec::new();
    for st in &snap.states {
        if st.kind.is_none() {
            problems.push(format!(
                "#{}: kind undecided ({:?} / {})",
                st.serial, st.name, st.story
            ));
        }
        if st.ike_version.is_none() {
            problems.push(format!(
                "#{}: IKE version undecided ({:?} / {})",
                st.serial, st.name, st.story
            ));
        }
    }
    for t in &snap.traffic {
        if let Some(st) = snap.state(t.serial) {
            if !(st.established && st.kind == Some(SaKind::Child)) {
                problems.push(format!(
                    "#{} in trafficstatus but not an established Child SA",
                    t.serial
                ));
            }
        }
    }
    let total = |v: &[(String, u64)]| v.iter().find(|(k, _)| k == "total").map(|(_, n)| *n);
    // The 3.x bug where a Child SA wears its parent's STATE_PARENT_* name
    // also made pluto count it as an IKE SA; its own totals are wrong there.
    let parent_bug = snap.states.iter().any(|s| {
        s.parent_serial.is_some()
            && s.name
                .as_deref()
                .is_some_and(|n| n.starts_with("STATE_PARENT_"))
    });
    if snap
        .kinds
        .contains(&swantrail::snapshot::OutputKind::Status)
        && snap.is_complete()
        && !parent_bug
    {
        let children = snap
            .states
            .iter()
            .filter(|s| s.established && s.kind == Some(SaKind::Child))
            .count() as u64;
        let ikes = snap
            .states
            .iter()
            .filter(|s| s.kind == Some(SaKind::Ike))
            .count() as u64;
        if let Some(n) = total(&snap.totals.ipsec_sas) {
            if n != children {
                problems.push(format!(
                    "IPsec SAs total({n}) but {children} established Child SAs parsed"
                ));
            }
        }
        if let Some(n) = total(&snap.totals.ike_sas) {
            if n != ikes {
                problems.push(format!("IKE SAs total({n}) but {ikes} IKE SAs parsed"));
            }
        }
    }
    problems
}
