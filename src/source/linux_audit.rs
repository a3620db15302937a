//! The Linux audit source: pluto's Linux audit records, read as they are written
//! and sent to the daemon for the tracker of the snapshot source watching
//! the same pluto.
//!
//! Two tasks with one job each. The reader takes records off the netlink
//! socket, auditd's log or journalctl as fast as they come and puts them
//! in a bounded in-memory queue, never waiting for the daemon: a socket
//! that is not read fills and the kernel drops records, so a full queue
//! drops (and counts) here instead, where it is visible. The forwarder
//! takes the queue in batches to the daemon's channel and may wait there.
//!
//! The kernel hands every reader the records of every pluto on the host
//! (one per network namespace, a test peer), all from the same program, so
//! the forwarder keeps only those of the pid in this pluto's pid file and
//! counts the others.
//!
//! It must never stop the daemon: a socket that cannot be opened, a log
//! that does not exist, a journalctl that is not installed, each is one log
//! line and a retry with backoff, while the snapshots go on alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tracing::{info, warn};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::registry::{OldTypeName, PendingLinuxAudit, ReadSource, SourceHeader, SourceKind};
use super::{Observation, Report};
use crate::linux_audit::record::{self, PlutoRecord};
use crate::linux_audit::{logfile, netlink};
use crate::toml_config::{ConfigError, Validator, read_table};

/// Where a Linux audit source reads pluto's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinuxAuditFrom {
    /// The kernel's audit netlink multicast group (needs `CAP_AUDIT_READ`).
    Netlink,
    /// auditd's log file, followed across rotation.
    AuditdLog(PathBuf),
    /// journald's copy (`journalctl -f -o json _TRANSPORT=audit`).
    Journal,
}

/// pluto's own Linux audit records for one snapshot source (`[[source]]
/// type = "linux-audit"`, or `type = "audit"` as first written).
#[derive(Debug, Clone, PartialEq)]
pub struct LinuxAuditSourceConfig {
    /// Unique source name (default: `audit`), for logs and metrics.
    pub name: String,
    /// The snapshot source (command or file) watching the same pluto, whose
    /// tracker the records are fused into.
    pub pluto: String,
    /// Where the records are read.
    pub from: LinuxAuditFrom,
    /// The file where this pluto writes its pid. The kernel hands every
    /// reader the records of every pluto on the host (one per network
    /// namespace, or a test peer), all from the same program; only the pid
    /// tells this one's apart. Read again when a record comes from a pid
    /// not seen before, so a restarted pluto is followed.
    pub pid_file: PathBuf,
}

/// The old name of [`LinuxAuditSourceConfig`], kept for code written before
/// "audit" meant only the audit trail swantrail writes.
#[doc(hidden)]
pub type AuditSourceConfig = LinuxAuditSourceConfig;

/// The old name of [`LinuxAuditFrom`], kept for code written against it.
#[doc(hidden)]
pub type AuditFrom = LinuxAuditFrom;

/// The old name of [`LinuxAuditStats`], kept for code written against it.
#[doc(hidden)]
pub type AuditStats = LinuxAuditStats;

/// auditd's log where a distribution puts it.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/audit/audit.log";

/// Where pluto writes its pid (`--rundir`, default `/run/pluto`).
pub const DEFAULT_PLUTO_PID_FILE: &str = "/run/pluto/pluto.pid";

/// `type = "linux-audit"` in a `[[source]]` table, or its first name
/// `type = "audit"` that operators' configurations still use: it makes no
/// snapshots, so the registry ties it to the snapshot source of its pluto
/// once all are read. Its default name stays `audit` under either type (see
/// [`SourceKind::old_type_name`]).
pub(crate) const KIND: SourceKind = SourceKind {
    type_name: "linux-audit",
    what: "a `linux-audit` [[source]]",
    old_type_name: Some(OLD_TYPE),
    makes_snapshots: false,
    config_keys: &["from", "path", "pluto", "pid_file"],
    read: |reader, header, own| read_config(reader, header, own).map(ReadSource::LinuxAudit),
};

/// The first `type` of a Linux audit source and the kind in its words, so
/// that an error about a table written `type = "audit"` names what the
/// operator wrote.
const OLD_TYPE: OldTypeName = OldTypeName {
    type_name: "audit",
    what: "an `audit` [[source]]",
};

/// The Linux audit source's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinuxAuditSource {
    from: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    pluto: Option<Spanned<String>>,
    pid_file: Option<Spanned<PathBuf>>,
}

/// A Linux audit [[source]]: where its records come from; which snapshot
/// source it belongs to is settled once every source is read.
fn read_config(
    reader: &Validator<'_>,
    header: SourceHeader,
    own: Spanned<DeTable<'_>>,
) -> Result<PendingLinuxAudit, ConfigError> {
    let raw: RawLinuxAuditSource = read_table(reader, own)?;
    let from = match raw.from.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
        None | Some(("netlink", _)) => {
            reader.not_for("path", &raw.path, "an audit source reading netlink")?;
            LinuxAuditFrom::Netlink
        }
        Some(("journal", _)) => {
            reader.not_for("path", &raw.path, "an audit source reading the journal")?;
            LinuxAuditFrom::Journal
        }
        Some(("auditd-log", _)) => LinuxAuditFrom::AuditdLog(
            raw.path
                .map_or_else(|| PathBuf::from(DEFAULT_AUDIT_LOG), Spanned::into_inner),
        ),
        Some((other, span)) => {
            return reader.error(
                span,
                format!(
                    "unknown `from` {other:?}: an audit source reads \"netlink\", \"auditd-log\" or \"journal\""
                ),
            );
        }
    };
    Ok(PendingLinuxAudit {
        name: header.name,
        pluto: raw.pluto,
        from,
        pid_file: raw.pid_file.map_or_else(
            || PathBuf::from(DEFAULT_PLUTO_PID_FILE),
            Spanned::into_inner,
        ),
        span: header.span,
        what: header.what,
    })
}

/// Records held between the reader and the daemon: a burst of 50,000
/// tunnels rekeying at once, twice over.
const QUEUE: usize = 100_000;
/// Records per report to the daemon.
const BATCH: usize = 4096;
/// The longest wait between two attempts to open the source.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often auditd's log is looked at.
const LOG_POLL: Duration = Duration::from_millis(250);
/// How often the kernel's audit status is asked (is auditing still on?).
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// How long a pid found not to be this pluto's is dropped without reading
/// the pid file again: another pluto's burst costs one read a second.
const RECHECK_OTHER: Duration = Duration::from_secs(1);
/// Other pids remembered; beyond this the memory starts again.
const MAX_OTHERS: usize = 1024;

/// What a Linux audit source has done, for `/metrics` (whose names keep
/// their `swantrail_audit_` prefix: dashboards rely on them).
#[derive(Debug, Default)]
pub struct LinuxAuditStats {
    /// pluto records read.
    pub records: AtomicU64,
    /// Socket reads that failed with `ENOBUFS`: the kernel dropped records
    /// because the socket buffer was full.
    pub overruns: AtomicU64,
    /// Records dropped because the in-memory queue was full.
    pub queue_dropped: AtomicU64,
    /// The kernel's own lost counter (`auditctl -s`), when netlink is read.
    pub kernel_lost: AtomicU64,
    /// 1 while the source is open and reading, 0 while it is retrying.
    pub reading: AtomicU64,
    /// Lines that claimed to be pluto records but could not be read.
    pub unreadable: AtomicU64,
    /// Records of another pluto (a pid other than the pid file's), dropped.
    pub other_pluto: AtomicU64,
}

/// Which pid is this source's pluto: the one in its pid file, read again
/// whenever a record comes from a pid it does not know (pluto restarted),
/// and at most once a second for a pid already found to be another's.
#[derive(Debug)]
pub struct OwnPluto {
    pid_file: PathBuf,
    ours: Option<u32>,
    others: HashMap<u32, Instant>,
    /// The pid file could not be read at the last look (said once).
    unreadable: bool,
}

impl OwnPluto {
    /// Follow the pluto whose pid `pid_file` holds.
    pub fn new(pid_file: PathBuf) -> Self {
        Self {
            pid_file,
            ours: None,
            others: HashMap::new(),
            unreadable: false,
        }
    }

    /// Whether a record sent by `pid` is this pluto's.
    pub fn owns(&mut self, pid: Option<u32>, now: Instant) -> bool {
        let Some(pid) = pid else { return false };
        if self.ours == Some(pid) {
            return true;
        }
        if self
            .others
            .get(&pid)
            .is_some_and(|at| now.duration_since(*at) < RECHECK_OTHER)
        {
            return false;
        }
        match read_pid(&self.pid_file) {
            Ok(current) => {
                if self.ours != Some(current) {
                    info!(pid_file = %self.pid_file.display(), "pluto's audit records are those of pid {current}");
                    self.ours = Some(current);
                    self.others.clear();
                }
                self.unreadable = false;
            }
            Err(why) => {
                if !std::mem::replace(&mut self.unreadable, true) {
                    warn!(pid_file = %self.pid_file.display(), "cannot tell which pluto is ours: {why}; audit records are dropped until the pid file can be read (set `pid_file` to pluto's `--rundir`/pluto.pid)");
                }
            }
        }
        if self.ours == Some(pid) {
            return true;
        }
        if self.others.len() >= MAX_OTHERS {
            self.others.clear();
        }
        self.others.insert(pid, now);
        false
    }
}

/// The pid in a pid file (`1234\n`).
fn read_pid(path: &std::path::Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} holds no pid: {:?}", path.display(), text.trim()))
}

/// Run the Linux audit source until the daemon's channel closes.
pub async fn run(
    config: LinuxAuditSourceConfig,
    stats: Arc<LinuxAuditStats>,
    tx: mpsc::Sender<Report>,
) {
    let (queue, mut rx) = mpsc::channel::<PlutoRecord>(QUEUE);
    let reader = tokio::spawn(read(config.clone(), Arc::clone(&stats), queue));
    let mut own = OwnPluto::new(config.pid_file.clone());
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let now = Instant::now();
        let before = batch.len();
        batch.retain(|r| own.owns(r.pid, now));
        let dropped = (before - batch.len()) as u64;
        stats.other_pluto.fetch_add(dropped, Ordering::Relaxed);
        if batch.is_empty() {
            continue;
        }
        let report = Report {
            source: config.pluto.clone(),
            observation: Observation::LinuxAudit(std::mem::take(&mut batch)),
        };
        if tx.send(report).await.is_err() {
            break;
        }
    }
    reader.abort();
}

/// Put one record in the queue, or count it dropped.
fn offer(queue: &mpsc::Sender<PlutoRecord>, stats: &LinuxAuditStats, record: PlutoRecord) {
    stats.records.fetch_add(1, Ordering::Relaxed);
    if queue.try_send(record).is_err() {
        stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn note_unreadable(
    config: &LinuxAuditSourceConfig,
    stats: &LinuxAuditStats,
    e: &record::RecordError,
) {
    if stats.unreadable.fetch_add(1, Ordering::Relaxed) == 0 {
        warn!(source = %config.name, "a pluto audit record could not be read and was skipped: {e} (further ones are only counted)");
    }
}

/// Open, read, and on failure retry with a doubling wait; one log line
/// when reading stops and one when it starts again.
async fn read(
    config: LinuxAuditSourceConfig,
    stats: Arc<LinuxAuditStats>,
    queue: mpsc::Sender<PlutoRecord>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let result = match &config.from {
            LinuxAuditFrom::Netlink => read_netlink(&config, &stats, &queue, &mut failing).await,
            LinuxAuditFrom::AuditdLog(path) => {
                read_log(&config, path, &stats, &queue, &mut failing).await
            }
            LinuxAuditFrom::Journal => read_journal(&config, &stats, &queue, &mut failing).await,
        };
        stats.reading.store(0, Ordering::Relaxed);
        if queue.is_closed() {
            return;
        }
        if let Err(why) = result {
            if !failing {
                warn!(source = %config.name, pluto = %config.pluto,
                    "audit records unavailable: {why}; going on with snapshots alone and retrying");
                failing = true;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
    }
}

fn now_reading(
    config: &LinuxAuditSourceConfig,
    stats: &LinuxAuditStats,
    failing: &mut bool,
    what: &str,
) {
    stats.reading.store(1, Ordering::Relaxed);
    if std::mem::take(failing) {
        info!(source = %config.name, "audit records are read again from {what}");
    } else {
        info!(source = %config.name, pluto = %config.pluto, "reading pluto's audit records from {what}");
    }
}

async fn read_netlink(
    config: &LinuxAuditSourceConfig,
    stats: &LinuxAuditStats,
    queue: &mpsc::Sender<PlutoRecord>,
    failing: &mut bool,
) -> Result<(), String> {
    let mut reader = netlink::Reader::open().map_err(|e| {
        format!("cannot open the audit netlink socket ({e}; it needs CAP_AUDIT_READ and a kernel with audit)")
    })?;
    now_reading(config, stats, failing, "the kernel's audit netlink group");
    let mut disabled = false;
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = status_tick.tick() => {
                if let Ok(status) = tokio::task::spawn_blocking(netlink::status).await.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
                    stats.kernel_lost.store(u64::from(status.lost), Ordering::Relaxed);
                    let off = status.enabled == 0;
                    if off && !disabled {
                        warn!(source = %config.name, "auditing is disabled in the kernel (enabled=0): pluto's records are dropped before anyone can read them; start auditd or run `auditctl -e 1`");
                    } else if !off && disabled {
                        info!(source = %config.name, "auditing is enabled in the kernel again");
                    }
                    disabled = off;
                }
            }
            batch = reader.next() => {
                let batch = batch.map_err(|e| format!("the audit netlink socket failed ({e})"))?;
                stats.overruns.store(reader.overruns, Ordering::Relaxed);
                for raw in batch {
                    match record::from_netlink(raw.record_type, &raw.text) {
                        Ok(Some(r)) => offer(queue, stats, r),
                        Ok(None) => {}
                        Err(e) => note_unreadable(config, stats, &e),
                    }
                }
                if queue.is_closed() {
                    return Ok(());
                }
            }
        }
    }
}

async fn read_log(
    config: &LinuxAuditSourceConfig,
    path: &std::path::Path,
    stats: &LinuxAuditStats,
    queue: &mpsc::Sender<PlutoRecord>,
    failing: &mut bool,
) -> Result<(), String> {
    if !path.exists() {
        return Err(format!("auditd's log {} does not exist", path.display()));
    }
    let mut follower = logfile::Follower::open(path, false)
        .map_err(|e| format!("cannot open auditd's log {}: {e}", path.display()))?;
    now_reading(config, stats, failing, &path.display().to_string());
    let mut tick = tokio::time::interval(LOG_POLL);
    loop {
        tick.tick().await;
        let lines = follower
            .read_lines()
            .map_err(|e| format!("cannot read auditd's log {}: {e}", path.display()))?;
        for line in lines {
            match record::from_auditd_line(&line) {
                Ok(Some(r)) => offer(queue, stats, r),
                Ok(None) => {}
                Err(e) => note_unreadable(config, stats, &e),
            }
        }
        if queue.is_closed() {
            return Ok(());
        }
    }
}

/// Why a line of `journalctl -o json` is not a pluto audit record (it is
/// skipped and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Not a JSON object at all.
    #[error("journalctl printed a line that is not JSON: {0}")]
    NotJson(String),
    /// An audit entry missing what makes the record's header.
    #[error("a journal audit entry without MESSAGE, _AUDIT_ID or _SOURCE_REALTIME_TIMESTAMP")]
    Incomplete,
    /// The record text is not one pluto writes.
    #[error("{0}")]
    Record(String),
}

/// One journal entry of `journalctl -o json _TRANSPORT=audit` as the record
/// text netlink would have carried: journald keeps the type, the kernel's
/// time and serial in fields and the rest in `MESSAGE`.
pub fn journal_record(line: &str) -> Result<Option<PlutoRecord>, JournalError> {
    let entry: serde_json::Value =
        serde_json::from_str(line).map_err(|e| JournalError::NotJson(e.to_string()))?;
    let field = |k: &str| entry.get(k).and_then(serde_json::Value::as_str);
    let Some(record_type) = field("_AUDIT_TYPE").and_then(|t| t.parse::<u16>().ok()) else {
        return Ok(None);
    };
    if record_type != record::CRYPTO_IKE_SA && record_type != record::CRYPTO_IPSEC_SA {
        return Ok(None);
    }
    let (Some(message), Some(id), Some(micros)) = (
        field("MESSAGE"),
        field("_AUDIT_ID"),
        field("_SOURCE_REALTIME_TIMESTAMP").and_then(|t| t.parse::<i64>().ok()),
    ) else {
        return Err(JournalError::Incomplete);
    };
    // MESSAGE starts with the type's name (`CRYPTO_IKE_SA pid=…`).
    let body = match field("_AUDIT_TYPE_NAME") {
        Some(name) => message.strip_prefix(name).map_or(message, str::trim_start),
        None => message,
    };
    let ms = micros / 1000;
    let text = format!("audit({}.{:03}:{id}): {body}", ms / 1000, ms % 1000);
    record::from_netlink(record_type, &text).map_err(|e| JournalError::Record(e.to_string()))
}

async fn read_journal(
    config: &LinuxAuditSourceConfig,
    stats: &LinuxAuditStats,
    queue: &mpsc::Sender<PlutoRecord>,
    failing: &mut bool,
) -> Result<(), String> {
    let mut child = tokio::process::Command::new("journalctl")
        .args(["-f", "-n", "0", "-o", "json", "_TRANSPORT=audit"])
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run journalctl ({e})"))?;
    let Some(stdout) = child.stdout.take() else {
        return Err("journalctl has no output pipe".into());
    };
    now_reading(config, stats, failing, "journalctl");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match journal_record(&line) {
                Ok(Some(r)) => offer(queue, stats, r),
                Ok(None) => {}
                Err(e) => {
                    if stats.unreadable.fetch_add(1, Ordering::Relaxed) == 0 {
                        warn!(source = %config.name, "a journal entry was skipped: {e} (further ones are only counted)");
                    }
                }
            },
            Ok(None) => return Err("journalctl stopped".into()),
            Err(e) => return Err(format!("cannot read journalctl's output ({e})")),
        }
        if queue.is_closed() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pid_file_s_pluto_is_kept_and_a_restart_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pluto.pid");
        let mut own = OwnPluto::new(file.clone());
        let t0 = Instant::now();
        assert!(!own.owns(Some(836), t0), "no pid file yet");
        std::fs::write(&file, "836\n").unwrap();
        assert!(!own.owns(Some(836), t0), "another's for a second");
        let t1 = t0 + RECHECK_OTHER;
        assert!(own.owns(Some(836), t1));
        assert!(!own.owns(Some(840), t1), "the peer's pluto");
        assert!(!own.owns(None, t1));
        std::fs::write(&file, "9001\n").unwrap();
        assert!(own.owns(Some(9001), t1), "a new pid reads the file again");
        assert!(!own.owns(Some(836), t1), "the old run is no longer ours");
    }

    #[test]
    fn a_journal_entry_is_read_as_the_record_netlink_carries() {
        let line = r#"{"_TRANSPORT":"audit","_AUDIT_TYPE":"2408","_AUDIT_TYPE_NAME":"CRYPTO_IKE_SA","_AUDIT_ID":"27","_SOURCE_REALTIME_TIMESTAMP":"1796177538840123","MESSAGE":"CRYPTO_IKE_SA pid=1234 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=start direction=initiator conn-name=\"v2-tun\" connstate=3 ike-version=2.0 auth=RSA_SIG cipher=aes_gcm_16 ksize=256 integ=none prf=sha512 pfs=DH19  raddr=192.0.2.2 exe=\"/usr/libexec/ipsec/pluto\" hostname=? addr=192.0.2.1 terminal=? res=success'"}"#;
        let r = journal_record(line).unwrap().unwrap();
        assert_eq!((r.unix_ms, r.seq, r.serial), (1_796_177_538_840, 27, 3));
        assert_eq!(r.connection, "v2-tun");
        let login = r#"{"_AUDIT_TYPE":"1112","MESSAGE":"USER_LOGIN pid=1"}"#;
        assert_eq!(journal_record(login), Ok(None));
        let e = journal_record("not json").unwrap_err().to_string();
        assert!(e.contains("not JSON"));
        let bare = r#"{"_AUDIT_TYPE":"2409","MESSAGE":"x"}"#;
        let e = journal_record(bare).unwrap_err().to_string();
        assert!(e.contains("_AUDIT_ID"));
    }
}
