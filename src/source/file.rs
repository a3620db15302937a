//! The file source: watches one status dump that something else writes.
//!
//! Some gateways already dump `ipsec whack --status` to a file from cron or
//! a monitoring agent; this source follows that file. It watches the parent
//! directory with inotify (so that an atomic rename into place is seen as
//! well as a rewrite in place), and falls back to polling the file's inode,
//! size and mtime where inotify is unavailable. Before reading, it waits
//! until the file has stopped changing for `settle`. It must never send an
//! incomplete dump (it would look like every tunnel went down) and never
//! sends the same content twice.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use super::{Observation, Report, content_sha256, snapshot_of, unix_now, unrecognised_summary};
use crate::config::FileSourceConfig;
use crate::input::Source;

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
    // The watcher must live as long as the loop: dropping it stops inotify.
    let _watcher = if config.force_poll {
        info!(source = %config.name, path = %config.path.display(),
            "polling every {:?} (force_poll)", config.poll_interval);
        None
    } else {
        match watch_directory_of(&config.path, Arc::clone(&wake)) {
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
        last_skipped_sha256: None,
        absent_logged: false,
    };
    let mut first = true;
    let mut woken = true;
    loop {
        let observation = follower.look(woken).await;
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
fn watch_directory_of(
    path: &Path,
    wake: Arc<Notify>,
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
        let signature = self.wait_until_stable(signature).await?;
        let text = match tokio::fs::read(&self.path).await {
            Ok(text) => text,
            Err(e) => {
                debug!(source = %self.name, path = %self.path.display(), "read failed: {e}");
                return None;
            }
        };
        self.last_seen = Some(signature);
        let sha256 = content_sha256(&text);
        if self.last_sha256.as_ref() == Some(&sha256) {
            return None;
        }
        let kind = super::replay::kind_from_name(&self.path);
        let mut snapshot = snapshot_of(text, Source::File(self.path.clone()), kind);
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
        snapshot.taken_at = Some(taken_at);
        if let Some(line) = unrecognised_summary(&snapshot) {
            warn!(source = %self.name, path = %self.path.display(), "{line}");
        }
        self.last_sha256 = Some(sha256.clone());
        Some(Observation::Snapshot {
            snapshot: Box::new(snapshot),
            content_sha256: sha256,
        })
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
            tokio::time::sleep(self.settle).await;
            let now = self.stat().await?;
            if now == signature {
                return Some(now);
            }
            signature = now;
        }
        warn!(source = %self.name, path = %self.path.display(),
            "still changing after {:?}; reading it anyway", self.settle * MAX_SETTLE_ROUNDS);
        Some(signature)
    }
}
