//! The daemon with a pluto-log source, as an operator runs it: the real
//! binary, a file snapshot source fed the bundled libreswan 5.2 lab series
//! (examples/lab-5.2/series) and a `pluto-log` source following a log file
//! that the test writes, line by line, from west's real log of the same run
//! (examples/lab-5.2/west-pluto.log, which has a pluto restart in it).
//!
//! Every dump is written after the log lines logged before the end of its
//! second have been taken in (the daemon's debug line says where it read up
//! to), as a live gateway's log is ahead of its next poll; so a run's
//! events depend on nothing but what it was fed. The log's stamps carry no
//! year: the run is moved by whole days to the test's day, the dumps' times
//! with it, so that the daemon reads the stamps in the year they were meant.
//!
//! The journal test writes the same lines into a real journal directory
//! (systemd-journal-remote turns journal export format into a journal
//! file), as journald keeps pluto's syslog lines, and the source reads it
//! with `journal_directory`.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::daemon::*;
use support::pluto_log::{judge, read_history, timing};

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab-5.2");
const LIMIT: Duration = Duration::from_secs(60);
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The lab run moved to today: its log lines with their times (µs) and its
/// dumps with theirs (s).
struct Lab {
    lines: Vec<(i64, String)>,
    series: Vec<(i64, PathBuf)>,
    /// When the series starts, seconds since midnight (for the judge).
    starts_at: i64,
}

/// (year, month, day) of days since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A `logtime=yes` stamp for a Unix time in µs (UTC).
fn stamp(us: i64) -> String {
    let (_, m, d) = civil(us.div_euclid(86_400_000_000));
    let of_day = us.rem_euclid(86_400_000_000);
    let s = of_day / 1_000_000;
    format!(
        "{} {d:>2} {:02}:{:02}:{:02}.{:06}",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60,
        of_day % 1_000_000
    )
}

/// The events judged against west's pluto log from the lab's start, as
/// `replay --pluto-log` is: every transition reported, nothing else, every
/// end with pluto's reason.
fn full_marks(label: &str, lab: &Lab, events: &[serde_json::Value]) {
    let history = read_history(Path::new(&format!("{LAB}/west-pluto.log")));
    let score = judge(&history, events, 0, lab.starts_at);
    eprintln!("{label}: {score}");
    assert!(
        score.recall() == 1.0 && score.precision() == 1.0 && score.end_reasons() == 1.0,
        "missed {:#?}; false {:#?}; wrong {:#?}",
        score.missed,
        score.false_reports,
        score.wrong_reasons
    );
}

fn lab() -> Lab {
    let series = series_in(&Path::new(LAB).join("series"));
    let first = series[0].0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let shift = (now - first).div_euclid(86_400) * 86_400;
    let text = fs::read_to_string(format!("{LAB}/west-pluto.log")).unwrap();
    let mut at = 0;
    let lines = text
        .lines()
        .map(|line| match swantrail::pluto_log::split_stamp(line) {
            Some((s, rest)) => {
                at = s.unix_us(first, 0) + shift * 1_000_000;
                (at, format!("{}{rest}", stamp(at)))
            }
            None => (at, line.to_string()),
        })
        .collect();
    Lab {
        lines,
        series: series.into_iter().map(|(t, p)| (t + shift, p)).collect(),
        starts_at: first.rem_euclid(86_400),
    }
}

/// How the log is rotated before a dump's lines are written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rotation {
    /// logrotate's `create`: renamed away, a new file in its place.
    RenameAndCreate,
    /// logrotate's `copytruncate`: copied away, the file cut to nothing.
    CopyTruncate,
}

/// Where the daemon is killed around a dump.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kill {
    /// SIGKILL after the lines were written, before they were taken in
    /// (after a rotation: the rotated file is finished at the restart).
    BeforeTakenIn,
    /// SIGKILL after they were taken in, before the dump that fuses them.
    AfterTakenIn,
    /// SIGKILL as soon as the dump is checkpointed (the sink may not have
    /// its events yet).
    AfterCheckpoint,
}

/// One daemon run over the whole series, the log rotated and the daemon
/// killed where the plan says (by dump index); the event lines of the
/// sink at the end.
struct Run {
    root: PathBuf,
    config: PathBuf,
    log: PathBuf,
    next_line: usize,
    rotations: usize,
}

impl Run {
    /// A run whose log holds, when the daemon starts, the lines before
    /// `already` (µs): pluto ran before the source was added, and those
    /// are not the daemon's to read.
    fn new(root: &Path, lab: &Lab, already: i64) -> Run {
        let log = root.join("log/pluto.log");
        fs::create_dir_all(log.parent().unwrap()).unwrap();
        let config = file_config(root)
            .hostname("west")
            .source("pluto-log", "")
            .with("from", "file")
            .with_path("path", &log)
            .with("pluto", "lab")
            .write();
        let mut run = Run {
            root: root.to_path_buf(),
            config,
            log,
            next_line: 0,
            rotations: 0,
        };
        run.write_until(lab, already);
        run
    }

    fn start(&self) -> Daemon {
        let daemon = Daemon::start_with(
            &self.config,
            &self.root.join("stderr.log"),
            &[("TZ", "UTC")],
            &[],
        );
        wait_until(LIMIT, "the log opened", &daemon, || {
            daemon.own_log().contains("reading pluto's log from")
        });
        // Where a new source starts (the log's end) is what a restart reads
        // on from: a line appended before it is saved is not the source's.
        let state = self.root.join("state");
        wait_until(LIMIT, "the starting position saved", &daemon, || {
            saved_checkpoint(&state, "lab")
                .is_some_and(|c| c["tracker"]["pluto_log"]["position"].is_string())
        });
        daemon
    }

    /// Append the lines logged before `end_us`, as pluto writes them.
    fn write_until(&mut self, lab: &Lab, end_us: i64) {
        let mut text = String::new();
        while let Some((at, line)) = lab.lines.get(self.next_line) {
            if *at >= end_us {
                break;
            }
            text.push_str(line);
            text.push('\n');
            self.next_line += 1;
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Wait until the daemon says it read the log file to its end.
    fn wait_taken_in(&self, daemon: &Daemon) {
        wait_until(LIMIT, "the log taken in to its end", daemon, || {
            let Ok(meta) = fs::metadata(&self.log) else {
                return false;
            };
            let Some(position) = last_position(daemon) else {
                return false;
            };
            let fields: Vec<&str> = position.split(':').collect();
            fields.len() >= 4
                && fields[2] == meta.ino().to_string()
                && fields[3] == meta.len().to_string()
        });
    }

    fn rotate(&mut self, how: Rotation) {
        self.rotations += 1;
        let away = self.log.with_extension(format!("log.{}", self.rotations));
        match how {
            Rotation::RenameAndCreate => {
                fs::rename(&self.log, &away).unwrap();
                fs::write(&self.log, "").unwrap();
            }
            Rotation::CopyTruncate => {
                fs::copy(&self.log, &away).unwrap();
                fs::OpenOptions::new()
                    .write(true)
                    .open(&self.log)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
    }

    fn go(
        mut self,
        lab: &Lab,
        rotations: &BTreeMap<usize, Rotation>,
        kills: &BTreeMap<usize, Kill>,
    ) -> Vec<String> {
        let state = self.root.join("state");
        let watched = self.root.join("watch/status.txt");
        fs::create_dir_all(watched.parent().unwrap()).unwrap();
        let mut daemon = self.start();
        for (index, (epoch, dump)) in lab.series.iter().enumerate() {
            if let Some(how) = rotations.get(&index) {
                self.rotate(*how);
            }
            let kill = kills.get(&index).copied();
            self.write_until(lab, (epoch + 1) * 1_000_000);
            if kill == Some(Kill::BeforeTakenIn) {
                daemon.crash();
                daemon = self.start();
            }
            self.wait_taken_in(&daemon);
            if kill == Some(Kill::AfterTakenIn) {
                daemon.crash();
                daemon = self.start();
                self.wait_taken_in(&daemon);
            }
            // A dump the same as the one before (pluto was restarting) is
            // no snapshot to the file source: nothing to write or wait for.
            let text = fs::read_to_string(dump).unwrap();
            if fs::read_to_string(&watched).is_ok_and(|before| before == text) {
                continue;
            }
            write_by_rename(&watched, &text, *epoch);
            let epoch = *epoch;
            wait_until(
                LIMIT,
                &format!("dump {epoch} checkpointed"),
                &daemon,
                || checkpoint_taken_at(&state, "lab") == Some(epoch),
            );
            if kill == Some(Kill::AfterCheckpoint) {
                daemon.crash();
                daemon = self.start();
            }
        }
        assert!(daemon.terminate().success());
        event_lines(&self.root.join("out"))
    }
}

/// Rotations of both kinds at three places, the pluto restart of the log
/// in between.
fn rotations() -> BTreeMap<usize, Rotation> {
    BTreeMap::from([
        (8, Rotation::RenameAndCreate),
        (20, Rotation::CopyTruncate),
        (37, Rotation::RenameAndCreate),
    ])
}

#[test]
fn the_log_is_fused_across_rotations_and_a_pluto_restart_and_a_sigkill_misses_and_repeats_nothing()
{
    let lab = lab();
    assert!(
        lab.lines
            .iter()
            .filter(|(_, l)| l.contains("Starting Pluto"))
            .count()
            == 2,
        "the lab log has a pluto restart"
    );
    let reference_dir = tempfile::tempdir().unwrap();
    // pluto's log exists, empty, when the daemon starts: every line of the
    // run is read.
    let reference =
        Run::new(reference_dir.path(), &lab, i64::MIN).go(&lab, &rotations(), &BTreeMap::new());
    let events: Vec<serde_json::Value> = reference.iter().map(|l| parse_event(l)).collect();

    // Fused as `replay --pluto-log` fuses it: pluto's log is the truth.
    full_marks("daemon pluto-log", &lab, &events);
    let history = read_history(Path::new(&format!("{LAB}/west-pluto.log")));
    let time = timing(&history, &events, 1_000_000);
    eprintln!(
        "daemon pluto-log: within 1 s {}/{}",
        time.within, time.checked
    );
    // Not held to the second: a file source is not polled, so its events
    // are not held for a log line that comes after the dump (a command
    // source's are; the lab's `west-log` daemon holds that figure).
    assert!(time.checked > 0);
    let causes: BTreeMap<String, usize> = events
        .iter()
        .filter_map(|e| e["libreswan"]["end"]["cause"].as_str())
        .fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.to_string()).or_default() += 1;
            m
        });
    for cause in [
        "replaced",
        "pluto-shutdown",
        "expired",
        "authentication-failed",
    ] {
        assert!(causes.contains_key(cause), "no {cause} end: {causes:?}");
    }

    // The same run killed between every two dumps, at each place a line
    // can be in by turns, and while the log was being rotated (a rename,
    // then a copytruncate).
    let places = [
        Kill::BeforeTakenIn,
        Kill::AfterTakenIn,
        Kill::AfterCheckpoint,
    ];
    let mut kills: BTreeMap<usize, Kill> = (0..lab.series.len())
        .map(|i| (i, places[i % places.len()]))
        .collect();
    kills.insert(8, Kill::BeforeTakenIn);
    kills.insert(20, Kill::BeforeTakenIn);
    let crashed_dir = tempfile::tempdir().unwrap();
    let crashed = Run::new(crashed_dir.path(), &lab, i64::MIN).go(&lab, &rotations(), &kills);
    let by_id: BTreeMap<String, &String> = reference.iter().map(|l| (event_id(l), l)).collect();
    assert_eq!(by_id.len(), reference.len(), "the reference repeats an id");
    let crashed_ids: std::collections::BTreeSet<String> =
        crashed.iter().map(|l| event_id(l)).collect();
    let missing: Vec<&&String> = by_id
        .iter()
        .filter(|(id, _)| !crashed_ids.contains(*id))
        .map(|(_, l)| l)
        .collect();
    assert!(missing.is_empty(), "lost across SIGKILLs: {missing:#?}");
    for line in &crashed {
        let original = by_id
            .get(&event_id(line))
            .unwrap_or_else(|| panic!("an event the uninterrupted run never made: {line}"));
        assert_eq!(
            parse_event(line),
            parse_event(original),
            "a repeated event.id carries another event"
        );
    }
    let said = fs::read_to_string(crashed_dir.path().join("stderr.log")).unwrap();
    assert!(
        said.contains("was rotated while swantrail was stopped"),
        "the restart after the rename finishes the renamed file"
    );
    assert!(
        said.contains("was truncated or replaced while swantrail was stopped"),
        "the restart after the copytruncate reads the file from its start"
    );
    eprintln!(
        "{} events; {} lines after {} SIGKILLs",
        reference.len(),
        crashed.len(),
        kills.len()
    );
}

#[test]
fn a_source_added_to_a_running_pluto_starts_at_the_log_s_end_and_fuses_what_follows() {
    // Everything pluto logged before the series began (its start, the
    // first negotiations) is in the file when the daemon starts.
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let first = lab.series[0].0;
    let run = Run::new(dir.path(), &lab, first * 1_000_000);
    let before = run.next_line;
    assert!(before > 50, "the log has a beginning the daemon skips");
    let events: Vec<serde_json::Value> = run
        .go(&lab, &BTreeMap::new(), &BTreeMap::new())
        .iter()
        .map(|l| parse_event(l))
        .collect();
    full_marks("started at the end", &lab, &events);
    let cited: Vec<&str> = events
        .iter()
        .filter_map(|e| e["libreswan"]["end"]["log"].as_str())
        .collect();
    let skipped: Vec<&str> = lab.lines[..before]
        .iter()
        .map(|(_, l)| l.as_str())
        .collect();
    for line in cited {
        assert!(
            !line.is_empty() && !skipped.iter().any(|s| s.ends_with(line)),
            "an end cites a line written before the source started: {line}"
        );
    }
}

// ------------------------------------------------------------ the journal

/// Where systemd-journal-remote is (Debian's package of that name): it
/// writes journal export format into a journal file, a real journal
/// directory for `journalctl --directory`.
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// A journal directory the test writes pluto's lines into, as journald
/// would have kept them: `SYSLOG_IDENTIFIER=pluto`, the line without its
/// `logtime` stamp as `MESSAGE`, its time as `__REALTIME_TIMESTAMP`, the
/// pid of the pluto run that wrote it.
struct Journal {
    dir: PathBuf,
    next_line: usize,
    pid: u32,
    monotonic: u64,
}

impl Journal {
    fn new(root: &Path) -> Journal {
        let dir = root.join("journal");
        fs::create_dir_all(&dir).unwrap();
        Journal {
            dir,
            next_line: 0,
            pid: 0,
            monotonic: 1_000_000,
        }
    }

    /// Append the lines logged before `end_us`, and one entry of another
    /// program (the source must leave it out).
    fn write_until(&mut self, lab: &Lab, end_us: i64) {
        let mut export = String::new();
        let mut entry = |at: i64, identifier: &str, pid: u32, message: &str, mono: &mut u64| {
            *mono += 1;
            export.push_str(&format!(
                "__REALTIME_TIMESTAMP={at}\n__MONOTONIC_TIMESTAMP={mono}\n_BOOT_ID=5e1f7a11ba5e4c0ffee0123456789abc\n_HOSTNAME=west\nSYSLOG_IDENTIFIER={identifier}\n_PID={pid}\nMESSAGE={message}\n\n"
            ));
        };
        while let Some((at, line)) = lab.lines.get(self.next_line) {
            if *at >= end_us {
                break;
            }
            if let Some(pid) = line
                .split("pid:")
                .nth(1)
                .filter(|_| line.contains("Starting Pluto"))
            {
                self.pid = pid.trim().parse().unwrap();
            }
            let message = swantrail::pluto_log::split_stamp(line)
                .map_or(line.as_str(), |(_, rest)| rest.trim_start_matches(": "));
            entry(*at, "pluto", self.pid, message, &mut self.monotonic);
            self.next_line += 1;
        }
        let at = lab.lines[self.next_line.saturating_sub(1)].0;
        entry(
            at,
            "kernel",
            0,
            "\"v2-tun\" #1: not pluto's",
            &mut self.monotonic,
        );
        let file = self.dir.join(format!("export-{}.txt", self.next_line));
        fs::write(&file, export).unwrap();
        let out = std::process::Command::new(JOURNAL_REMOTE)
            .arg(format!(
                "--output={}",
                self.dir.join("remote.journal").display()
            ))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::remove_file(file).unwrap();
    }

    /// The cursor of pluto's newest entry.
    fn newest_cursor(&self) -> Option<String> {
        let out = std::process::Command::new("journalctl")
            .arg(format!("--directory={}", self.dir.display()))
            .args([
                "--output=json",
                "--lines=1",
                "--no-pager",
                "SYSLOG_IDENTIFIER=pluto",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let entry: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
        Some(entry["__CURSOR"].as_str()?.to_string())
    }
}

/// The last position a daemon's log says it read up to.
fn last_position(daemon: &Daemon) -> Option<String> {
    let own = daemon.own_log();
    let last = own
        .lines()
        .rfind(|l| l.contains("pluto log lines taken in"))?;
    let position = last.split("position=").nth(1)?;
    let position = position.strip_prefix('"').unwrap_or(position);
    Some(position.split('"').next()?.to_string())
}

/// The whole series with pluto's lines in a journal directory; the daemon
/// killed where `kills` says. Returns the sink's event lines and the
/// cursors each restart was saved at and said it resumed after.
fn journal_run(
    root: &Path,
    lab: &Lab,
    kills: &BTreeMap<usize, Kill>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut journal = Journal::new(root);
    // pluto ran before the daemon: its first lines are in the journal
    // already, and not the new source's to read.
    journal.write_until(lab, lab.series[0].0 * 1_000_000);
    let config = file_config(root)
        .hostname("west")
        .source("pluto-log", "")
        .with("from", "journal")
        .with_path("journal_directory", &journal.dir)
        .with("pluto", "lab")
        .write();
    let state = root.join("state");
    let stderr = root.join("stderr.log");
    let start = || {
        let daemon = Daemon::start(&config, &stderr);
        wait_until(LIMIT, "the starting cursor saved", &daemon, || {
            saved_checkpoint(&state, "lab")
                .is_some_and(|c| c["tracker"]["pluto_log"]["position"].is_string())
        });
        daemon
    };
    let resumed_after = |daemon: &Daemon, saved: &str| {
        let cursor = saved.strip_prefix("journal:").unwrap();
        wait_until(LIMIT, "the resumed cursor said", daemon, || {
            daemon
                .own_log()
                .contains("reading pluto's log from the journal")
        });
        let said = daemon.own_log();
        let after = said
            .split("after cursor ")
            .nth(1)
            .map(|rest| rest.split([' ', '\n']).next().unwrap_or("").to_string())
            .unwrap_or_default();
        (cursor.to_string(), after)
    };
    let saved_position = || {
        saved_checkpoint(&state, "lab").unwrap()["tracker"]["pluto_log"]["position"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut resumes = Vec::new();
    let watched = root.join("watch/status.txt");
    let mut daemon = start();
    let taken_in = |daemon: &Daemon, journal: &Journal| {
        let newest = journal.newest_cursor().unwrap();
        wait_until(LIMIT, "the journal taken in", daemon, || {
            last_position(daemon).as_deref() == Some(&format!("journal:{newest}"))
        });
    };
    for (index, (epoch, dump)) in lab.series.iter().enumerate() {
        journal.write_until(lab, (epoch + 1) * 1_000_000);
        let kill = kills.get(&index).copied();
        if kill == Some(Kill::BeforeTakenIn) {
            daemon.crash();
            let saved = saved_position();
            daemon = start();
            resumes.push(resumed_after(&daemon, &saved));
        }
        taken_in(&daemon, &journal);
        if kill == Some(Kill::AfterTakenIn) {
            daemon.crash();
            let saved = saved_position();
            daemon = start();
            resumes.push(resumed_after(&daemon, &saved));
            taken_in(&daemon, &journal);
        }
        let text = fs::read_to_string(dump).unwrap();
        if fs::read_to_string(&watched).is_ok_and(|before| before == text) {
            continue;
        }
        write_by_rename(&watched, &text, *epoch);
        let epoch = *epoch;
        wait_until(
            LIMIT,
            &format!("dump {epoch} checkpointed"),
            &daemon,
            || checkpoint_taken_at(&state, "lab") == Some(epoch),
        );
        if kill == Some(Kill::AfterCheckpoint) {
            daemon.crash();
            let saved = saved_position();
            daemon = start();
            resumes.push(resumed_after(&daemon, &saved));
        }
    }
    assert!(daemon.terminate().success());
    (event_lines(&root.join("out")), resumes)
}

#[test]
fn the_journal_is_fused_from_its_newest_entry_and_a_restart_resumes_after_the_saved_cursor() {
    if !Path::new(JOURNAL_REMOTE).exists() {
        panic!("{JOURNAL_REMOTE} is missing: apt-get install systemd-journal-remote");
    }
    let lab = lab();
    let reference_dir = tempfile::tempdir().unwrap();
    let (reference, _) = journal_run(reference_dir.path(), &lab, &BTreeMap::new());
    let events: Vec<serde_json::Value> = reference.iter().map(|l| parse_event(l)).collect();
    full_marks("journal", &lab, &events);
    assert!(
        events
            .iter()
            .any(|e| e["libreswan"]["end"]["cause"] == "pluto-shutdown"),
        "the restart of pluto in the journal ends its SAs"
    );

    let places = [
        Kill::BeforeTakenIn,
        Kill::AfterTakenIn,
        Kill::AfterCheckpoint,
    ];
    let kills: BTreeMap<usize, Kill> = (0..lab.series.len())
        .step_by(4)
        .enumerate()
        .map(|(n, i)| (i, places[n % places.len()]))
        .collect();
    let crashed_dir = tempfile::tempdir().unwrap();
    let (crashed, resumes) = journal_run(crashed_dir.path(), &lab, &kills);
    let by_id: BTreeMap<String, &String> = reference.iter().map(|l| (event_id(l), l)).collect();
    let crashed_ids: std::collections::BTreeSet<String> =
        crashed.iter().map(|l| event_id(l)).collect();
    let missing: Vec<&&String> = by_id
        .iter()
        .filter(|(id, _)| !crashed_ids.contains(*id))
        .map(|(_, l)| l)
        .collect();
    assert!(missing.is_empty(), "lost across SIGKILLs: {missing:#?}");
    for line in &crashed {
        let original = by_id
            .get(&event_id(line))
            .unwrap_or_else(|| panic!("an event the uninterrupted run never made: {line}"));
        assert_eq!(parse_event(line), parse_event(original));
    }
    assert_eq!(resumes.len(), kills.len());
    for (saved, said) in &resumes {
        assert_eq!(
            saved, said,
            "a restart resumes right after the saved cursor"
        );
    }
    eprintln!(
        "journal: {} events; {} lines after {} SIGKILLs",
        reference.len(),
        crashed.len(),
        kills.len()
    );
}

/// `/metrics` of the daemon's endpoint (its log says where: port 0).
fn scrape(daemon: &Daemon) -> String {
    use std::io::Read;
    let mut address = None;
    wait_until(LIMIT, "the metrics endpoint", daemon, || {
        address = daemon
            .own_log()
            .lines()
            .find_map(|l| l.split("metrics endpoint on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(String::from);
        address.is_some()
    });
    let address = address.unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The value of a sample line `name{source="pluto-log"} N`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{source=\"pluto-log\"}} ")))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_missing_log_is_one_line_then_read_from_its_start_with_a_huge_line_cut_and_counted() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log = root.join("log/pluto.log");
    let config = file_config(root)
        .source("pluto-log", "")
        .with_path("path", &log)
        .table("metrics", "listen", "127.0.0.1:0")
        .write();
    let daemon = Daemon::start_with(&config, &root.join("stderr.log"), &[("TZ", "UTC")], &[]);
    wait_until(LIMIT, "the missing log said", &daemon, || {
        daemon.own_log().contains("does not exist yet")
    });
    assert_eq!(
        sample(&scrape(&daemon), "swantrail_pluto_log_reading"),
        Some(0.0)
    );

    // pluto starts and writes its first lines, one of them far too long.
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut text: String = lab.lines[..20]
        .iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    text.push_str(&format!(
        "{}\n",
        "x".repeat(3 * swantrail::follow::MAX_LINE)
    ));
    fs::write(&log, &text).unwrap();
    let len = text.len() as u64;
    wait_until(LIMIT, "the log read to its end", &daemon, || {
        last_position(&daemon).is_some_and(|p| p.split(':').nth(3) == Some(&len.to_string()))
    });
    let metrics = scrape(&daemon);
    assert_eq!(
        sample(&metrics, "swantrail_pluto_log_reading"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "swantrail_pluto_log_lines_total"),
        Some(21.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "swantrail_pluto_log_cut_total"),
        Some(1.0),
        "{metrics}"
    );
    let said = daemon.own_log();
    assert_eq!(count_lines(&said, "does not exist yet"), 1, "{said}");
    assert_eq!(count_lines(&said, "was cut"), 1, "{said}");
    assert!(said.contains("reading pluto's log from"), "{said}");
    assert!(daemon.terminate().success());
}

#[test]
fn a_saved_cursor_the_journal_does_not_know_is_one_line_then_reading_goes_on_after_the_newest_entry()
 {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut journal = Journal::new(root);
    journal.write_until(&lab, lab.series[0].0 * 1_000_000);
    let config = file_config(root)
        .source("pluto-log", "")
        .with("from", "journal")
        .with_path("journal_directory", &journal.dir)
        .write();
    let stderr = root.join("stderr.log");
    let state = root.join("state");
    let daemon = Daemon::start(&config, &stderr);
    wait_until(LIMIT, "the starting cursor saved", &daemon, || {
        saved_checkpoint(&state, "lab")
            .is_some_and(|c| c["tracker"]["pluto_log"]["position"].is_string())
    });
    assert!(daemon.terminate().success());
    // A cursor of no journal here (a checkpoint moved between machines).
    let file = state.join("checkpoint/lab.json");
    let text = fs::read_to_string(&file).unwrap();
    let start = text.find("\"position\":\"journal:").unwrap() + "\"position\":\"".len();
    let end = start + text[start..].find('"').unwrap();
    fs::write(
        &file,
        format!("{}journal:garbage{}", &text[..start], &text[end..]),
    )
    .unwrap();

    let daemon = Daemon::start(&config, &stderr);
    wait_until(LIMIT, "the unknown cursor said", &daemon, || {
        daemon.own_log().contains("cannot find the saved cursor")
    });
    let newest = journal.newest_cursor().unwrap();
    wait_until(LIMIT, "reading from the newest entry", &daemon, || {
        daemon.own_log().contains(&format!("after cursor {newest}"))
    });
    journal.write_until(&lab, (lab.series[0].0 + 30) * 1_000_000);
    let newest = journal.newest_cursor().unwrap();
    wait_until(LIMIT, "the new entries taken in", &daemon, || {
        last_position(&daemon).as_deref() == Some(&format!("journal:{newest}"))
    });
    assert_eq!(count_lines(&daemon.own_log(), "pluto's log unavailable"), 1);
    assert!(daemon.terminate().success());
}
