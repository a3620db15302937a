//! The pluto-log source: pluto's own log, read as it is written and sent
//! to the daemon for the tracker of the snapshot source watching the same
//! pluto, where it decides what happened to an SA and why.
//!
//! It reads one of two places. A log file (`logfile=`, `from = "file"`)
//! is followed by [`crate::follow`], across logrotate's `create` and
//! `copytruncate`; its lines are timed by their `logtime` stamps (or a
//! syslog prefix), read in the machine's zone. The journal (`from =
//! "journal"`, where pluto logs through syslog by default) is read by
//! `journalctl --follow -o json SYSLOG_IDENTIFIER=pluto`, timed by each
//! entry's `__REALTIME_TIMESTAMP`: journalctl rather than libsystemd
//! bindings, because it links no C library into the daemon, the Linux
//! audit source already runs it, and every systemd host has it.
//!
//! After every batch it says where the next unread line is (the file's
//! device, inode and offset, or the journal's `__CURSOR`); the tracker
//! keeps that position with the state those lines made, in one atomic
//! checkpoint, and the daemon hands it back here at its next start. So a
//! restart, even after SIGKILL, reads on from the first line whose effect
//! is not in the checkpoint: none is missed, none fused twice. Without a
//! position (a source just added) it starts at the file's end or after
//! pluto's newest entry in the journal, and saves that starting point at
//! once: last month's log is not replayed, and a restart reads what came
//! after it.
//!
//! Two tasks, as in the Linux audit source, but nothing here is dropped:
//! the file and journalctl's pipe hold what is not read yet, so the reader
//! waits on a bounded queue and the forwarder waits on the daemon's channel.
//! Memory is bounded by the queue and by a cut at [`crate::follow::MAX_LINE`]
//! per line. It must never stop the daemon: a missing file, an absent
//! journalctl or an unreadable line is one log line (and a retry with
//! backoff), while the snapshots go on alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;
use toml::Spanned;
use toml::de::DeTable;
use tracing::{info, warn};

use super::registry::{PendingPlutoLog, ReadSource, SourceHeader, SourceKind};
use super::{Observation, Report};
use crate::follow::{self, Follower, Position, Resumed};
use crate::pluto_log::{LineTime, PlutoLogRecord, decode};
use crate::toml_config::{ConfigError, Validator, read_table};

/// Where a pluto-log source reads pluto's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlutoLogFrom {
    /// The file pluto writes with `logfile=` (followed across rotation).
    File(PathBuf),
    /// The systemd journal, entries with `SYSLOG_IDENTIFIER=pluto`.
    Journal {
        /// A journal kept in a directory (`journalctl --directory=`): a
        /// container's, or a copy; `None` reads the system's.
        directory: Option<PathBuf>,
    },
}

/// pluto's own log for one snapshot source (`[[source]] type =
/// "pluto-log"`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlutoLogSourceConfig {
    /// Unique source name (default: `pluto-log`), for logs.
    pub name: String,
    /// The snapshot source (command or file) watching the same pluto,
    /// whose tracker the log is fused into and whose checkpoint keeps
    /// where the log was read up to.
    pub pluto: String,
    /// Where the log is read.
    pub from: PlutoLogFrom,
}

/// Where a distribution's logrotate and pluto's `logfile=` examples put it.
pub const DEFAULT_PLUTO_LOG: &str = "/var/log/pluto.log";

/// `type = "pluto-log"` in a `[[source]]` table: it makes no snapshots, so
/// the registry ties it to the snapshot source of its pluto once all are
/// read.
pub(crate) const KIND: SourceKind = SourceKind {
    type_name: "pluto-log",
    what: "a `pluto-log` [[source]]",
    old_type_name: None,
    makes_snapshots: false,
    config_keys: &["from", "path", "pluto", "journal_directory"],
    read: |reader, header, own| read_config(reader, header, own).map(ReadSource::PlutoLog),
};

/// The pluto-log source's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlutoLogSource {
    from: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    pluto: Option<Spanned<String>>,
    journal_directory: Option<Spanned<PathBuf>>,
}

/// A pluto-log [[source]]: where its lines come from; which snapshot source
/// it belongs to is settled once every source is read.
fn read_config(
    reader: &Validator<'_>,
    header: SourceHeader,
    own: Spanned<DeTable<'_>>,
) -> Result<PendingPlutoLog, ConfigError> {
    let raw: RawPlutoLogSource = read_table(reader, own)?;
    let from = match raw.from.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
        None | Some(("file", _)) => {
            reader.not_for(
                "journal_directory",
                &raw.journal_directory,
                "a pluto-log source reading a file",
            )?;
            PlutoLogFrom::File(
                raw.path
                    .map_or_else(|| PathBuf::from(DEFAULT_PLUTO_LOG), Spanned::into_inner),
            )
        }
        Some(("journal", _)) => {
            reader.not_for("path", &raw.path, "a pluto-log source reading the journal")?;
            PlutoLogFrom::Journal {
                directory: raw.journal_directory.map(Spanned::into_inner),
            }
        }
        Some((other, span)) => {
            return reader.error(
                span,
                format!(
                    "unknown `from` {other:?}: a pluto-log source reads \"file\" or \"journal\""
                ),
            );
        }
    };
    Ok(PendingPlutoLog {
        name: header.name,
        pluto: raw.pluto,
        from,
        span: header.span,
        what: header.what,
    })
}

/// Lines per report to the daemon.
const BATCH: usize = 4096;
/// Batches held between the reader and the forwarder.
const QUEUE: usize = 16;
/// The longest wait between two attempts to open the log.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the log file is looked at.
const FILE_POLL: Duration = Duration::from_millis(250);
/// The longest `journalctl -o json` line read whole; a longer one is not a
/// pluto line (they stay under a few kilobytes) and is skipped.
const MAX_JOURNAL_LINE: usize = 64 * 1024;

/// What a pluto-log source has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct PlutoLogStats {
    /// Lines (file) or entries (journal) read.
    pub lines: AtomicU64,
    /// Lines cut at [`follow::MAX_LINE`], or journal entries skipped for
    /// their length.
    pub cut: AtomicU64,
    /// journalctl lines that were not a journal entry (not JSON, no
    /// cursor or time), skipped.
    pub unreadable: AtomicU64,
    /// 1 while the source is open and reading, 0 while it is retrying.
    pub reading: AtomicU64,
}

/// One batch from the reader: decoded lines and where the next unread one is.
struct Batch {
    records: Vec<PlutoLogRecord>,
    position: Option<String>,
}

/// Run the pluto-log source until the daemon's channel closes. `position`
/// is where the last run stopped (the tracker's checkpoint), `None` for a
/// source that never read.
pub async fn run(
    config: PlutoLogSourceConfig,
    position: Option<String>,
    stats: Arc<PlutoLogStats>,
    tx: mpsc::Sender<Report>,
) {
    let (queue, mut rx) = mpsc::channel::<Batch>(QUEUE);
    let reader = tokio::spawn(read(config.clone(), position, stats, queue));
    while let Some(batch) = rx.recv().await {
        let report = Report {
            source: config.pluto.clone(),
            observation: Observation::PlutoLog {
                records: batch.records,
                position: batch.position,
            },
        };
        if tx.send(report).await.is_err() {
            break;
        }
    }
    reader.abort();
}

/// Open, read, and on failure retry with a doubling wait from the last
/// position handed on; one log line when reading stops and one when it
/// starts again.
async fn read(
    config: PlutoLogSourceConfig,
    position: Option<String>,
    stats: Arc<PlutoLogStats>,
    queue: mpsc::Sender<Batch>,
) {
    let mut position = position;
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let result = match &config.from {
            PlutoLogFrom::File(path) => {
                read_file(&config, path, &mut position, &stats, &queue, &mut failing).await
            }
            PlutoLogFrom::Journal { directory } => {
                read_journal(
                    &config,
                    directory.as_deref(),
                    &mut position,
                    &stats,
                    &queue,
                    &mut failing,
                )
                .await
            }
        };
        stats.reading.store(0, Ordering::Relaxed);
        if queue.is_closed() {
            return;
        }
        match result {
            Err(why) => {
                if !failing {
                    warn!(source = %config.name, pluto = %config.pluto,
                        "pluto's log unavailable: {why}; going on with snapshots alone and retrying");
                    failing = true;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Ok(()) => backoff = Duration::from_secs(1),
        }
        tokio::time::sleep(backoff).await;
    }
}

fn now_reading(
    config: &PlutoLogSourceConfig,
    stats: &PlutoLogStats,
    failing: &mut bool,
    what: &str,
) {
    stats.reading.store(1, Ordering::Relaxed);
    if std::mem::take(failing) {
        info!(source = %config.name, "pluto's log is read again from {what}");
    } else {
        info!(source = %config.name, pluto = %config.pluto, "reading pluto's log from {what}");
    }
}

/// The machine's offset from UTC at `unix_s`, in seconds east: pluto's
/// `logtime` stamps are local time.
fn utc_offset_s(unix_s: i64) -> i64 {
    let t = unix_s as libc::time_t;
    // SAFETY: localtime_r only writes the `tm` it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let done = unsafe { libc::localtime_r(&t, &mut tm) };
    if done.is_null() { 0 } else { tm.tm_gmtoff }
}

async fn read_file(
    config: &PlutoLogSourceConfig,
    path: &Path,
    position: &mut Option<String>,
    stats: &PlutoLogStats,
    queue: &mpsc::Sender<Batch>,
    failing: &mut bool,
) -> Result<(), String> {
    let saved = position.as_deref().and_then(Position::decode);
    if position.is_some() && saved.is_none() {
        warn!(source = %config.name, "the checkpoint's position in pluto's log is not a file's ({:?}): reading {} from its end",
            position.as_deref().unwrap_or_default(), path.display());
    }
    let (mut follower, resumed) = Follower::open(path, saved)
        .map_err(|e| format!("cannot open pluto's log {}: {e}", path.display()))?;
    match resumed {
        Resumed::Rotated(old) => info!(source = %config.name,
            "pluto's log was rotated while swantrail was stopped: reading the rest of {} first", old.display()),
        Resumed::FromStart => warn!(source = %config.name,
            "pluto's log {} was truncated or replaced while swantrail was stopped, and the file read before is not beside it: reading it from its start", path.display()),
        Resumed::AtEnd | Resumed::Same => {}
    }
    let mut missing = false;
    let mut announced = false;
    let mut cut_said = 0;
    let mut lost_said = 0;
    // The follower counts from zero; the source's counter goes on.
    let cut_base = stats.cut.load(Ordering::Relaxed);
    let mut first = true;
    let mut tick = tokio::time::interval(FILE_POLL);
    loop {
        tick.tick().await;
        loop {
            let lines = follower
                .read_lines(BATCH)
                .map_err(|e| format!("cannot read pluto's log {}: {e}", path.display()))?;
            let here = follower.position();
            match (&here, announced) {
                (None, _) if !missing => {
                    warn!(source = %config.name, "pluto's log {} does not exist yet; waiting for it (is `logfile=` set in ipsec.conf?)", path.display());
                    missing = true;
                }
                (Some(_), false) => {
                    now_reading(config, stats, failing, &path.display().to_string());
                    announced = true;
                }
                _ => {}
            }
            stats.lines.fetch_add(lines.len() as u64, Ordering::Relaxed);
            stats
                .cut
                .store(cut_base + follower.cut_lines, Ordering::Relaxed);
            if follower.lost_partials > lost_said {
                warn!(source = %config.name, "pluto's log {} was rotated or truncated after an unfinished line; that line's start was dropped ({} so far)",
                    path.display(), follower.lost_partials);
                lost_said = follower.lost_partials;
            }
            if follower.cut_lines > cut_said {
                warn!(source = %config.name, "a line of pluto's log longer than {} bytes was cut ({} so far)",
                    follow::MAX_LINE, follower.cut_lines);
                cut_said = follower.cut_lines;
            }
            let full = lines.len() == BATCH;
            let now = super::unix_now();
            let time = LineTime::Stamped {
                reference_s: now,
                utc_offset_s: utc_offset_s(now),
            };
            let records = lines.iter().filter_map(|l| decode(l, time)).collect();
            let at = here.map(|p| p.encode());
            // Said once at the start too, even with nothing new: where a
            // restarted daemon resumed.
            if !lines.is_empty() || (at.is_some() && at != *position) || std::mem::take(&mut first)
            {
                *position = at.clone();
                if queue
                    .send(Batch {
                        records,
                        position: at,
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            if !full {
                break;
            }
        }
    }
}

/// Why a line of `journalctl -o json` was not taken (it is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Not a JSON object at all.
    #[error("journalctl printed a line that is not JSON: {0}")]
    NotJson(String),
    /// An entry without the fields every journal entry has.
    #[error("a journal entry without MESSAGE, __REALTIME_TIMESTAMP or __CURSOR")]
    Incomplete,
}

/// One journal entry of pluto: its line decoded at the entry's time (or
/// `None` when it says nothing about an SA) and the entry's cursor.
pub fn journal_line(line: &str) -> Result<(Option<PlutoLogRecord>, String), JournalError> {
    let entry: serde_json::Value =
        serde_json::from_str(line).map_err(|e| JournalError::NotJson(e.to_string()))?;
    let field = |k: &str| entry.get(k).and_then(serde_json::Value::as_str);
    let (Some(cursor), Some(micros)) = (
        field("__CURSOR"),
        field("__REALTIME_TIMESTAMP").and_then(|t| t.parse::<i64>().ok()),
    ) else {
        return Err(JournalError::Incomplete);
    };
    // A message that is not UTF-8 comes as an array of bytes.
    let message = match entry.get("MESSAGE") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(bytes)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return Err(JournalError::Incomplete),
    };
    let mut record = decode(&message, LineTime::Known(micros));
    if let Some(r) = &mut record
        && r.pid.is_none()
    {
        r.pid = field("_PID").and_then(|p| p.parse().ok());
    }
    Ok((record, cursor.to_string()))
}

/// `journalctl`'s arguments to follow pluto's entries after `cursor`, or
/// all of them when there is none (the journal had no entry of pluto when
/// the source started).
fn journal_args(directory: Option<&Path>, cursor: Option<&str>) -> Vec<String> {
    let mut args = journal_base(directory);
    args.push("--follow".into());
    match cursor {
        Some(c) => args.push(format!("--after-cursor={c}")),
        None => args.push("--lines=all".into()),
    }
    args.push("SYSLOG_IDENTIFIER=pluto".into());
    args
}

/// The arguments every `journalctl` run here starts with.
fn journal_base(directory: Option<&Path>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(dir) = directory {
        args.push(format!("--directory={}", dir.display()));
    }
    args.extend(["--output=json", "--no-pager", "--quiet"].map(String::from));
    args
}

/// The cursor of pluto's newest entry in the journal, where a source
/// without a saved position starts (`None`: pluto has none yet, and every
/// entry to come is new).
async fn newest_cursor(directory: Option<&Path>) -> Result<Option<String>, String> {
    let mut args = journal_base(directory);
    args.extend(["--lines=1".into(), "SYSLOG_IDENTIFIER=pluto".into()]);
    let out = tokio::process::Command::new("journalctl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run journalctl ({e})"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "journalctl failed: {}",
            said.lines().next().unwrap_or("no message")
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(last) = text.lines().next_back() else {
        return Ok(None);
    };
    journal_line(last)
        .map(|(_, cursor)| Some(cursor))
        .map_err(|e| e.to_string())
}

/// One line of at most `max` bytes into `buf` (without its `\n`); the
/// rest of a longer one is skipped. `None` at the end of the stream,
/// else whether the line was cut.
async fn bounded_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty() || cut).then_some(cut));
        }
        let (part, done) = match memchr::memchr(b'\n', available) {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(buf.len());
        cut |= part.len() > room;
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(cut));
        }
    }
}

async fn read_journal(
    config: &PlutoLogSourceConfig,
    directory: Option<&Path>,
    position: &mut Option<String>,
    stats: &PlutoLogStats,
    queue: &mpsc::Sender<Batch>,
    failing: &mut bool,
) -> Result<(), String> {
    let mut cursor = position
        .as_deref()
        .and_then(|p| p.strip_prefix("journal:"))
        .map(str::to_string);
    if cursor.is_none() {
        // A new source starts after pluto's newest entry, saved at once.
        cursor = newest_cursor(directory).await?;
        *position = cursor.as_ref().map(|c| format!("journal:{c}"));
    }
    let mut child = tokio::process::Command::new("journalctl")
        .args(journal_args(directory, cursor.as_deref()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run journalctl ({e})"))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("journalctl has no output pipe".into());
    };
    let from = match &cursor {
        Some(c) => format!("the journal, after cursor {c}"),
        None => "the journal, from its first entry of pluto".to_string(),
    };
    now_reading(config, stats, failing, &from);
    let mut out = tokio::io::BufReader::new(stdout);
    let mut line = Vec::new();
    let mut batch = Vec::new();
    let mut unreadable: u64 = 0;
    // Where this run starts, said once so that a new source's start is
    // saved before any entry comes.
    let start = Batch {
        records: Vec::new(),
        position: position.clone(),
    };
    if queue.send(start).await.is_err() {
        return Ok(());
    }
    let mut sent = position.clone();
    loop {
        let read = bounded_line(&mut out, &mut line, MAX_JOURNAL_LINE).await;
        let ended = match read {
            Ok(Some(false)) => {
                stats.lines.fetch_add(1, Ordering::Relaxed);
                match journal_line(&String::from_utf8_lossy(&line)) {
                    Ok((record, cursor)) => {
                        batch.extend(record);
                        *position = Some(format!("journal:{cursor}"));
                    }
                    Err(e) => {
                        stats.unreadable.fetch_add(1, Ordering::Relaxed);
                        unreadable += 1;
                        if unreadable == 1 {
                            warn!(source = %config.name, "a journal entry was skipped: {e} (further ones are only counted)");
                        }
                    }
                }
                false
            }
            Ok(Some(true)) => {
                stats.lines.fetch_add(1, Ordering::Relaxed);
                stats.cut.fetch_add(1, Ordering::Relaxed);
                unreadable += 1;
                if unreadable == 1 {
                    warn!(source = %config.name, "a journal entry longer than {MAX_JOURNAL_LINE} bytes was skipped (further ones are only counted)");
                }
                false
            }
            Ok(None) => true,
            Err(e) => return Err(format!("cannot read journalctl's output ({e})")),
        };
        // Hand on what journalctl has printed so far: a batch is full, or
        // nothing more is waiting in the pipe's buffer.
        let flush = ended || batch.len() >= BATCH || out.buffer().is_empty();
        if flush && (!batch.is_empty() || *position != sent) {
            sent = position.clone();
            let records = std::mem::take(&mut batch);
            let batch = Batch {
                records,
                position: position.clone(),
            };
            if queue.send(batch).await.is_err() {
                return Ok(());
            }
        }
        if ended {
            let mut said = Vec::new();
            let _ = (&mut stderr).take(4096).read_to_end(&mut said).await;
            let said = String::from_utf8_lossy(&said);
            let said = said.lines().next().unwrap_or("no message");
            let _ = child.wait().await;
            if said.contains("seek to cursor") && cursor.is_some() {
                // The saved cursor is not one this journal knows (damaged,
                // or another machine's): waiting will not bring it back.
                *position = None;
                return Err(format!(
                    "journalctl cannot find the saved cursor ({said}); reading on after pluto's newest entry"
                ));
            }
            return Err(format!("journalctl stopped: {said}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_entry_is_pluto_s_line_at_the_journal_s_time_with_its_cursor() {
        // The shape of `journalctl -o json` for a pluto line (systemd 252).
        let line = r#"{"__CURSOR":"s=7d1;i=4a2;b=9f;m=1f;t=5e6;x=2c","__REALTIME_TIMESTAMP":"1795857663250123","_PID":"2841","SYSLOG_IDENTIFIER":"pluto","MESSAGE":"\"v2-tun\" #46: initiator established Child SA using #1; IPsec tunnel [192.0.1.0-192.0.1.255:0-65535 0] -> [192.0.2.0-192.0.2.255:0-65535 0] {ESP/ESN=>0x5e000046 <0xc1a00001 xfrm=AES_GCM_16_256-NONE DPD=passive}"}"#;
        let (record, cursor) = journal_line(line).unwrap();
        let record = record.unwrap();
        assert_eq!(cursor, "s=7d1;i=4a2;b=9f;m=1f;t=5e6;x=2c");
        assert_eq!(record.at_us, 1_795_857_663_250_123);
        assert_eq!(record.serial, Some(46));
        assert_eq!(record.pid, Some(2841));
        let chatter =
            r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":"listening for IKE messages"}"#;
        assert_eq!(journal_line(chatter).unwrap(), (None, "c".to_string()));
        assert!(
            journal_line("garbage")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        assert_eq!(
            journal_line(r#"{"MESSAGE":"x"}"#),
            Err(JournalError::Incomplete)
        );
    }

    #[test]
    fn journalctl_resumes_after_the_cursor_or_reads_all_of_an_empty_journal() {
        let fresh = journal_args(None, None);
        assert!(fresh.contains(&"--lines=all".to_string()), "{fresh:?}");
        let resumed = journal_args(Some(Path::new("j")), Some("s=1;i=2"));
        assert_eq!(resumed[0], "--directory=j");
        assert!(resumed.contains(&"--after-cursor=s=1;i=2".to_string()));
        assert!(!resumed.iter().any(|a| a.starts_with("--lines")));
        assert_eq!(resumed.last().unwrap(), "SYSLOG_IDENTIFIER=pluto");
    }

    #[tokio::test]
    async fn a_huge_journal_line_is_cut_not_held() {
        let text = format!("{}\nok\n", "x".repeat(10_000));
        let mut reader = tokio::io::BufReader::with_capacity(64, text.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            bounded_line(&mut reader, &mut buf, 100).await.unwrap(),
            Some(true)
        );
        assert_eq!(buf.len(), 100);
        assert_eq!(
            bounded_line(&mut reader, &mut buf, 100).await.unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"ok");
        assert_eq!(
            bounded_line(&mut reader, &mut buf, 100).await.unwrap(),
            None
        );
    }
}
