//! The file source: watches one status dump that something else writes.
//!
//! Some gateways already dump `ipsec whack --status` to a file from cron or
//! a monitoring agent; this source follows that file. It watches the parent
//! directory with inotify (so that an atomic rename into place is seen as
//! well as a rewrite in place), and falls back to polling the file's inode,
//! size and mtime where inotify is unavailable. A dump renamed into place
//! is complete and read at once; one rewritten in place is read once it has
//! stopped changing for `settle`. A dump replaced before it could be read is
//! counted and logged, an unreadable or oversized one is warned about once,
//! and so is a dump that stopped changing for `stale_after_intervals` times
//! its usual interval (its writer probably died). It must never send an
//! incomplete dump (it would look like every tunnel went down) and never
//! sends the same content twice.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::registry::{ReadSource, SourceHeader, SourceKind};
use super::{Observation, Report, SourceConfig, hex, unix_now, unrecognised_summary};
use crate::input::{CHUNK_BYTES, DEFAULT_MAX_BYTES, DumpFeed, DumpOrigin};
use crate::listing::{Listing, ListingBuilder, ListingMeta, ListingSizes};
use crate::snapshot::Snapshot;
use crate::toml_config::{ByteSize, ConfigError, DurationValue, Validator, read_table};

/// Watches one status-dump file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    /// Unique source name (default: `file`).
    pub name: String,
    /// The dump to watch.
    pub path: PathBuf,
    /// The file must be unchanged this long before it is read (rewrite-in-place).
    pub settle: Duration,
    /// How often to look when inotify is unavailable (or `force_poll`).
    pub poll_interval: Duration,
    /// Poll even when inotify works (network filesystems).
    pub force_poll: bool,
    /// A dump larger than this is not read (it is not a status dump).
    pub max_bytes: u64,
    /// Warn when the dump has not changed for this many times its usual
    /// interval (its writer probably died); 0 turns the warning off.
    pub stale_after_intervals: u32,
}

impl FileSourceConfig {
    /// A file source on `path` with every other setting at its default.
    pub fn new(path: PathBuf) -> FileSourceConfig {
        FileSourceConfig {
            name: "file".to_string(),
            path,
            settle: Duration::from_millis(500),
            poll_interval: Duration::from_secs(2),
            force_poll: false,
            max_bytes: DEFAULT_MAX_BYTES,
            stale_after_intervals: 5,
        }
    }
}

/// `type = "file"` in a `[[source]]` table.
pub(crate) const KIND: SourceKind = SourceKind {
    type_name: "file",
    what: "a `file` [[source]]",
    old_type_name: None,
    makes_snapshots: true,
    config_keys: &[
        "path",
        "settle",
        "poll_interval",
        "force_poll",
        "max_bytes",
        "stale_after_intervals",
    ],
    read: |reader, header, own| {
        read_config(reader, header, own).map(|f| ReadSource::Snapshot(SourceConfig::File(f)))
    },
};

/// The file source's own keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSource {
    path: Option<Spanned<PathBuf>>,
    settle: Option<Spanned<DurationValue>>,
    poll_interval: Option<Spanned<DurationValue>>,
    force_poll: Option<Spanned<bool>>,
    max_bytes: Option<Spanned<ByteSize>>,
    stale_after_intervals: Option<Spanned<u32>>,
}

/// A file [[source]] from its common header and its own keys.
fn read_config(
    reader: &Validator<'_>,
    header: SourceHeader,
    own: Spanned<DeTable<'_>>,
) -> Result<FileSourceConfig, ConfigError> {
    let raw: RawFileSource = read_table(reader, own)?;
    let Some(path) = raw.path else {
        return reader.error(
            header.span,
            "a `file` [[source]] needs `path`, the status dump to watch".into(),
        );
    };
    let d = FileSourceConfig::new(path.into_inner());
    Ok(FileSourceConfig {
        name: header.name,
        settle: raw.settle.map_or(d.settle, |v| v.into_inner().0),
        poll_interval: match raw.poll_interval {
            Some(v) => reader.positive(v, "poll_interval")?,
            None => d.poll_interval,
        },
        force_poll: raw.force_poll.map_or(d.force_poll, Spanned::into_inner),
        max_bytes: raw.max_bytes.map_or(d.max_bytes, |v| v.into_inner().0),
        stale_after_intervals: raw
            .stale_after_intervals
            .map_or(d.stale_after_intervals, Spanned::into_inner),
        path: d.path,
    })
}

/// How many `settle` periods a file may keep changing before it is read
/// anyway (the completeness check still guards what is read).
const MAX_SETTLE_ROUNDS: u32 = 20;

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    dev: u64,
    inode: u64,
    size: u64,
    mtime_s: i64,
    mtime_ns: i64,
}

impl Signature {
    fn of(meta: &std::fs::Metadata) -> Signature {
        Signature {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime_s: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
        }
    }
}

/// Watch the file forever, sending a report for every new complete dump,
/// until the daemon drops the receiving end (or aborts the task).
///
/// `last_sha256` is the digest of the content the checkpoint already holds,
/// so that a restart does not feed the same dump again.
pub async fn run(config: FileSourceConfig, last_sha256: Option<String>, tx: mpsc::Sender<Report>) {
    let wake = Arc::new(Notify::new());
    let renamed = Arc::new(AtomicU64::new(0));
    // The watcher must live as long as the loop: dropping it stops inotify.
    let _watcher = if config.force_poll {
        info!(source = %config.name, path = %config.path.display(),
            "polling every {:?} (force_poll)", config.poll_interval);
        None
    } else {
        match watch_directory_of(&config.path, Arc::clone(&wake), Arc::clone(&renamed)) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                warn!(source = %config.name, path = %config.path.display(),
                    "cannot watch with inotify ({e}); polling every {:?} instead",
                    config.poll_interval);
                None
            }
        }
    };
    let mut follower = Follower {
        name: config.name.clone(),
        path: config.path.clone(),
        settle: config.settle,
        last_seen: None,
        last_sha256,
        sizes: ListingSizes::default(),
        last_skipped_sha256: None,
        absent_logged: false,
        max_bytes: config.max_bytes,
        wake: Arc::clone(&wake),
        renamed,
        unreadable: None,
        replaced_unread: 0,
        replaced_unread_logged: 0,
        stale_after_intervals: config.stale_after_intervals,
        poll_interval: config.poll_interval,
        last_new: None,
        usual_interval: None,
        stale_logged: false,
    };
    let mut first = true;
    let mut woken = true;
    loop {
        let observation = follower.look(woken).await;
        follower.check_stale();
        let observation = match observation {
            Some(o) => Some(o),
            None if first => Some(Observation::Waiting),
            None => None,
        };
        first = false;
        if let Some(observation) = observation {
            let report = Report {
                source: config.name.clone(),
                observation,
            };
            if tx.send(report).await.is_err() {
                return;
            }
        }
        // Under inotify the timer is only a safety net against lost events
        // (queue overflow, the directory replaced); polling relies on it.
        woken = tokio::select! {
            () = wake.notified() => true,
            () = tokio::time::sleep(config.poll_interval) => false,
        };
    }
}

/// Start inotify on the file's directory; events about the file wake `wake`.
///
/// `renamed` counts renames into place: such a dump is complete and needs
/// no settle wait.
fn watch_directory_of(
    path: &Path,
    wake: Arc<Notify>,
    renamed: Arc<AtomicU64>,
) -> notify::Result<notify::RecommendedWatcher> {
    let directory = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                // Our own reads open the file too; only writes, creations,
                // renames and removals say that the dump may have changed.
                let is_write = match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Access(_) => false,
                    _ => true,
                };
                let about_the_file = event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
                let renamed_here = matches!(
                    event.kind,
                    EventKind::Modify(ModifyKind::Name(RenameMode::To))
                ) && event
                    .paths
                    .last()
                    .is_some_and(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
                if renamed_here {
                    renamed.fetch_add(1, Ordering::Relaxed);
                }
                if is_write && about_the_file {
                    wake.notify_one();
                }
            }
            // An error (e.g. queue overflow) may hide a change: look again.
            Err(_) => wake.notify_one(),
        }
    })?;
    watcher.watch(&directory, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// The state of one followed file between looks.
struct Follower {
    name: String,
    path: PathBuf,
    settle: Duration,
    /// The signature of the version last read (observed or skipped).
    last_seen: Option<Signature>,
    /// The digest of the content last sent to the daemon.
    last_sha256: Option<String>,
    /// The digest of the incomplete content last skipped, so that it is
    /// logged once, not at every look.
    last_skipped_sha256: Option<String>,
    absent_logged: bool,
    /// Larger dumps are not read.
    max_bytes: u64,
    /// The last listing's sizes, to size the next one by.
    sizes: ListingSizes,
    /// Woken by the watcher; a settle wait listens too, for renames.
    wake: Arc<Notify>,
    /// Renames into place the watcher saw and no look has taken yet.
    renamed: Arc<AtomicU64>,
    /// Why the file could not be read, while it cannot (logged once).
    unreadable: Option<String>,
    /// Versions replaced before they could be read, since start.
    replaced_unread: u64,
    /// `replaced_unread` when it was last logged.
    replaced_unread_logged: u64,
    /// 0 = no stale warning; else the multiple of the usual interval.
    stale_after_intervals: u32,
    /// The timer between looks, the shortest interval a stale check trusts.
    poll_interval: Duration,
    /// When the last new content was read.
    last_new: Option<Instant>,
    /// The usual time between two new dumps (a moving average).
    usual_interval: Option<Duration>,
    /// Whether the stale warning was given for the current silence.
    stale_logged: bool,
}

impl Follower {
    /// Look at the file once; `woken` says an inotify event asked for it.
    /// Returns a snapshot to send when the file holds a new complete dump.
    async fn look(&mut self, woken: bool) -> Option<Observation> {
        let signature = match self.stat().await {
            Some(s) => s,
            None => return None,
        };
        // A poll tick with nothing changed costs one stat, no read. After an
        // inotify event the content is read anyway: mtime granularity can
        // hide a rewrite of the same size.
        if !woken && self.last_seen == Some(signature) {
            return None;
        }
        // A dump renamed into place is complete: no settle wait.
        let signature = if self.take_renames() {
            signature
        } else {
            self.wait_until_stable(signature).await?
        };
        // The signature of what was read, not of what was stat'ed before:
        // another rename may have come in between.
        let (signature, sha256, snapshot, mut listing) = match self.read().await {
            Ok(read) => read,
            Err(why) => {
                if self.unreadable.as_ref() != Some(&why) {
                    warn!(source = %self.name, path = %self.path.display(),
                        "cannot read the dump: {why}; waiting for a readable one");
                    self.unreadable = Some(why);
                }
                self.last_seen = Some(signature);
                return None;
            }
        };
        if self.unreadable.take().is_some() {
            info!(source = %self.name, path = %self.path.display(), "the dump is readable again");
        }
        if self.replaced_unread > self.replaced_unread_logged {
            let burst = self.replaced_unread - self.replaced_unread_logged;
            warn!(source = %self.name, path = %self.path.display(), skipped = burst,
                skipped_total = self.replaced_unread,
                "{burst} {} replaced before {} could be read ({} since start); the writer rewrites in place faster than settle = {:?}",
                if burst == 1 { "dump was" } else { "dumps were" },
                if burst == 1 { "it" } else { "they" },
                self.replaced_unread, self.settle);
            self.replaced_unread_logged = self.replaced_unread;
        }
        self.last_seen = Some(signature);
        if self.last_sha256.as_ref() == Some(&sha256) {
            return None;
        }
        if let Some(reason) = &snapshot.incomplete {
            if self.last_skipped_sha256.as_ref() != Some(&sha256) {
                warn!(source = %self.name, path = %self.path.display(),
                    "skipping incomplete dump: {reason}");
                self.last_skipped_sha256 = Some(sha256);
            }
            return None;
        }
        let taken_at = if signature.mtime_s > 0 {
            signature.mtime_s
        } else {
            unix_now()
        };
        listing.taken_at = Some(taken_at);
        self.sizes = listing.sizes();
        if let Some(line) = unrecognised_summary(&snapshot) {
            warn!(source = %self.name, path = %self.path.display(), "{line}");
        }
        self.last_sha256 = Some(sha256.clone());
        self.note_new_dump();
        Some(Observation::Snapshot {
            listing: Box::new(listing),
            content_sha256: Some(sha256),
        })
    }

    /// Whether the file was renamed into place since the last look; all but
    /// the last of several renames were replaced before they could be read.
    fn take_renames(&mut self) -> bool {
        let renames = self.renamed.swap(0, Ordering::Relaxed);
        self.replaced_unread += renames.saturating_sub(1);
        renames > 0
    }

    /// The file's signature, the digest of its bytes and their snapshot,
    /// all from one open file, or why not.
    ///
    /// The file is parsed as it is read (on a blocking thread: a big dump
    /// is a few hundred milliseconds of CPU), so its text is never held
    /// whole. Bytes that are not a dump (binary, not UTF-8) give a snapshot
    /// whose `incomplete` says why, so they are skipped like a cut dump.
    async fn read(&self) -> Result<ReadDump, String> {
        let path = self.path.clone();
        let max_bytes = self.max_bytes;
        let sizes = self.sizes;
        tokio::task::spawn_blocking(move || read_and_parse(&path, max_bytes, sizes))
            .await
            .map_err(|e| format!("the reading task failed: {e}"))?
    }

    /// Learn the usual interval between dumps, and end a stale warning.
    fn note_new_dump(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last_new {
            let interval = now - last;
            self.usual_interval = Some(match self.usual_interval {
                Some(usual) => (usual * 3 + interval) / 4,
                None => interval,
            });
            if self.stale_logged {
                info!(source = %self.name, path = %self.path.display(),
                    "the dump changes again, after {}s", interval.as_secs());
                self.stale_logged = false;
            }
        }
        self.last_new = Some(now);
    }

    /// Warn once when the dump has not changed for `stale_after_intervals`
    /// times its usual interval: a stale dump means its writer stopped.
    fn check_stale(&mut self) {
        let (Some(last), Some(usual)) = (self.last_new, self.usual_interval) else {
            return;
        };
        if self.stale_after_intervals == 0 || self.stale_logged || usual.is_zero() {
            return;
        }
        let silent = last.elapsed();
        // Never sooner than that many polls: a burst of dumps a few
        // milliseconds apart says nothing about the writer's pace.
        if silent > usual.max(self.poll_interval) * self.stale_after_intervals {
            warn!(source = %self.name, path = %self.path.display(),
                silent_s = silent.as_secs(), usual_s = usual.as_secs_f64(),
                "the dump has not changed for {}s, more than {} times its usual interval of {:.1}s; is its writer still running?",
                silent.as_secs(), self.stale_after_intervals, usual.as_secs_f64());
            self.stale_logged = true;
        }
    }

    /// The file's signature, or `None` (logged once) while it is absent.
    async fn stat(&mut self) -> Option<Signature> {
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) => {
                if self.absent_logged {
                    info!(source = %self.name, path = %self.path.display(), "the dump appeared");
                    self.absent_logged = false;
                }
                Some(Signature::of(&meta))
            }
            Err(e) => {
                if !self.absent_logged {
                    info!(source = %self.name, path = %self.path.display(),
                        "waiting for the dump to appear ({e})");
                    self.absent_logged = true;
                }
                None
            }
        }
    }

    /// Wait until the file has kept the same signature for `settle`, so
    /// that a writer rewriting it in place has finished.
    async fn wait_until_stable(&mut self, mut signature: Signature) -> Option<Signature> {
        for _ in 0..MAX_SETTLE_ROUNDS {
            // A rename into place ends the wait at once: that dump is complete.
            let until = tokio::time::Instant::now() + self.settle;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    () = self.wake.notified() => {
                        if self.renamed.load(Ordering::Relaxed) > 0 {
                            break;
                        }
                    }
                }
            }
            let now = self.stat().await?;
            if now == signature {
                return Some(now);
            }
            let replaced = (now.dev, now.inode) != (signature.dev, signature.inode);
            if replaced && self.last_seen != Some(signature) {
                // Another file took the place of a version never read.
                self.replaced_unread += 1;
            }
            if self.take_renames() {
                return Some(now); // renamed into place: complete
            }
            signature = now;
        }
        warn!(source = %self.name, path = %self.path.display(),
            "still changing after {:?}; reading it anyway", self.settle * MAX_SETTLE_ROUNDS);
        Some(signature)
    }
}

/// Open `path`, stat it and parse it chunk by chunk while hashing it
/// (see [`Follower::read`]).
fn read_and_parse(path: &Path, max_bytes: u64, sizes: ListingSizes) -> Result<ReadDump, String> {
    use sha2::Digest;
    use std::io::Read;
    let too_large = || {
        format!(
            "larger than max_bytes = {max_bytes} bytes, so not a status dump (raise `max_bytes` if it is one)"
        )
    };
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let signature = Signature::of(&file.metadata().map_err(|e| e.to_string())?);
    if signature.size > max_bytes {
        return Err(too_large());
    }
    let mut feed = DumpFeed::streaming(
        DumpOrigin::File(path.to_path_buf()),
        max_bytes,
        ListingBuilder::with_sizes(sizes),
    );
    let mut digest = sha2::Sha256::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        digest.update(&chunk[..n]);
        if feed.push(&chunk[..n]).is_err() {
            return Err(too_large());
        }
    }
    let kind = super::replay::kind_from_name(path);
    let (finished, builder) = feed.finish_streamed(kind);
    let snapshot = finished.unwrap_or_else(|e| Snapshot {
        incomplete: Some(e.to_string()),
        ..Snapshot::default()
    });
    let listing = builder
        .unwrap_or_default()
        .finish(ListingMeta::of(&snapshot));
    Ok((signature, hex(&digest.finalize()), snapshot, listing))
}

/// A dump read: its signature, its digest, its snapshot without its
/// records (whether it is whole, its unrecognised lines) and its listing
/// (the records, as they were read).
type ReadDump = (Signature, String, Snapshot, Listing);
