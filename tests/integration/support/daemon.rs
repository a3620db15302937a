//! Helpers for tests that run the real `swantrail run` binary: start and
//! stop it with its stderr in a file, wait for conditions with generous
//! limits (the machine may be loaded), and read what the file sink wrote.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::config::DaemonConfig;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
/// The bundled lab series (examples/lab-4.10/README.md): real 4.10 dumps.
pub const SERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab-4.10/series");

/// A daemon under test, with its stderr captured in a file.
pub struct Daemon {
    child: RefCell<Child>,
    stderr: PathBuf,
    /// Where this daemon's lines start in a log shared across restarts.
    log_start: usize,
}

impl Daemon {
    /// Start `swantrail run --config CONFIG`, stderr appended to `stderr`.
    pub fn start(config: &Path, stderr: &Path) -> Daemon {
        Daemon::start_with(config, stderr, &[], &[])
    }

    /// `start` with extra environment variables and extra arguments after
    /// the config (the systemd variables, `--log-format json`).
    pub fn start_with(config: &Path, stderr: &Path, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        Daemon::start_under(&[], config, stderr, env, args)
    }

    /// `start_with`, run through `wrapper` (e.g. `setpriv` dropping a
    /// capability); an empty wrapper runs the binary itself.
    pub fn start_under(
        wrapper: &[&str],
        config: &Path,
        stderr: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Daemon {
        let log_start = fs::metadata(stderr).map_or(0, |m| m.len() as usize);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr)
            .unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        command
            .args(["run", "--config"])
            .arg(config)
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "swantrail=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        Daemon {
            child: RefCell::new(command.spawn().unwrap()),
            stderr: stderr.to_path_buf(),
            log_start,
        }
    }

    /// Send a signal to the daemon.
    pub fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    /// SIGKILL: the crash the durability promise is about.
    pub fn crash(mut self) {
        let child = self.child.get_mut();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit (at most 60 s).
    pub fn terminate(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.get_mut().try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.child.get_mut().kill().unwrap();
                panic!("no exit 60 s after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.borrow().id()
    }

    /// How the daemon exited, if it has.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.borrow_mut().try_wait().unwrap()
    }

    /// The whole stderr log, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The log lines of this process only.
    pub fn own_log(&self) -> String {
        self.log()
            .get(self.log_start..)
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait until `done` holds, failing with `what` (and the log) after `limit`.
pub fn wait_until(limit: Duration, what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Some(status) = daemon.exited() {
            panic!(
                "the daemon exited ({status}) while waiting for {what}; log:\n{}",
                daemon.log()
            );
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; log:\n{}", daemon.log());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A source's checkpoint as the daemon would read it back now: its
/// checkpoint file with its journal replayed, as JSON.
pub fn saved_checkpoint(state: &Path, source: &str) -> Option<Value> {
    let path = state.join("checkpoint").join(format!("{source}.json"));
    let (checkpoint, ..) = swantrail::daemon::checkpoint::Store::load(&path, source).ok()?;
    serde_json::to_value(checkpoint?).ok()
}

/// The `taken_at` of the last snapshot in a source's checkpoint: that of
/// the checkpoint file, or of the last whole journal line after it. Read
/// from the start of each (both put it there), not by reading the whole
/// state back: a 10,000-tunnel checkpoint is 15 MB, and tests ask this
/// every few milliseconds.
pub fn checkpoint_taken_at(state: &Path, source: &str) -> Option<i64> {
    let dir = state.join("checkpoint");
    let number_after = |text: &str, key: &str| -> Option<Option<i64>> {
        let rest = &text[text.find(key)? + key.len()..];
        let end = rest.find([',', '}'])?;
        let value = &rest[..end];
        Some(if value == "null" {
            None
        } else {
            Some(value.parse().ok()?)
        })
    };
    let mut head = vec![0u8; 4096];
    let n = {
        use std::io::Read;
        let mut file = fs::File::open(dir.join(format!("{source}.json"))).ok()?;
        file.read(&mut head).ok()?
    };
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    let mut save = number_after(&head, "\"save\":").flatten().unwrap_or(0);
    let mut taken_at = number_after(&head, "\"taken_at\":")?;
    if let Ok(journal) = fs::read(dir.join(format!("{source}.journal"))) {
        for line in journal.split_inclusive(|b| *b == b'\n') {
            if !line.ends_with(b"\n") {
                break;
            }
            let start = String::from_utf8_lossy(&line[..line.len().min(512)]).into_owned();
            let (Some(Some(n)), Some(at)) = (
                number_after(&start, "{\"save\":"),
                number_after(&start, "\"head\":{\"taken_at\":"),
            ) else {
                break;
            };
            if n == save + 1 {
                (save, taken_at) = (n, at);
            }
        }
    }
    taken_at
}

/// Every event line in every file of `dir` (the sink's file and its
/// rotations), oldest file first; a missing directory has none.
pub fn event_lines(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.reverse(); // events.ndjson.N (oldest) ... events.ndjson
    let mut lines = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        lines.extend(
            whole_lines(&text)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    lines
}

/// The lines of `text` that end in a newline: a file a daemon is still
/// appending to may end halfway through a line, which is not written yet.
pub fn whole_lines(text: &str) -> std::str::Lines<'_> {
    text.rfind('\n').map_or("", |end| &text[..end]).lines()
}

/// A field of an event, written nested (`{"event":{"id":..}}`) or dotted.
pub fn field<'a>(event: &'a Value, dotted: &str) -> Option<&'a Value> {
    if let Some(v) = event.get(dotted) {
        return Some(v);
    }
    dotted.split('.').try_fold(event, |v, key| v.get(key))
}

/// One event line as JSON, failing the test when it is not.
pub fn parse_event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The `event.id` of an event line.
pub fn event_id(line: &str) -> String {
    let event = parse_event(line);
    field(&event, "event.id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no event.id: {line}"))
        .to_string()
}

/// The `event.action` of an event line.
pub fn action(line: &str) -> String {
    let event = parse_event(line);
    field(&event, "event.action")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no event.action: {line}"))
        .to_string()
}

/// The lab series as (epoch, path), oldest first.
pub fn lab_series() -> Vec<(i64, PathBuf)> {
    series_in(Path::new(SERIES))
}

/// The `status-<epoch>.txt` dumps of a series directory as (epoch, path),
/// oldest first.
pub fn series_in(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut dumps: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            let epoch = name.strip_prefix("status-")?.strip_suffix(".txt")?;
            Some((epoch.parse().ok()?, path))
        })
        .collect();
    dumps.sort();
    dumps
}

/// The lab dump taken at `epoch`.
pub fn fixture(epoch: i64) -> String {
    fs::read_to_string(format!("{SERIES}/status-{epoch}.txt")).unwrap()
}

/// Put a dump in place the way cron jobs should: temporary file, then rename.
pub fn write_by_rename(target: &Path, text: &str, mtime: i64) {
    let temporary = target.with_extension("tmp");
    fs::write(&temporary, text).unwrap();
    set_mtime(&temporary, mtime);
    fs::rename(&temporary, target).unwrap();
}

/// Set a file's mtime to a Unix time.
pub fn set_mtime(path: &Path, epoch: i64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch as u64))
        .unwrap();
}

/// A path as a TOML string.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_str().unwrap())
}

/// An executable shell script at `path`.
pub fn script(path: &Path, body: &str) -> PathBuf {
    fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// A fake `ipsec whack --status` that prints whatever `answer.txt` in `dir`
/// holds and counts its calls in `calls`.
pub fn answering_whack(dir: &Path) -> PathBuf {
    let d = dir.to_str().unwrap();
    script(
        &dir.join("whack"),
        &format!(
            "n=$(cat \"{d}/calls\" 2>/dev/null || echo 0)\ncat \"{d}/answer.txt\"\necho $((n + 1)) > \"{d}/calls\"\n"
        ),
    )
}

/// How many times a fake command in `dir` was called.
pub fn calls(dir: &Path) -> u32 {
    fs::read_to_string(dir.join("calls"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// A config with one command source (`argv`, polled every 100 ms) and one
/// file sink under `root/out`; the test adds its own keys and writes it.
pub fn command_config(root: &Path, argv: &[&str]) -> DaemonConfig {
    DaemonConfig::new(root)
        .set("shutdown_grace", "10s")
        .command_source("pluto", argv)
        .with("interval", "100ms")
        .with("jitter", "0s")
        .with("timeout", "10s")
        .file_sink("", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
}

/// A config with one file source watching `root/watch/status.txt` and one
/// file sink under `root/out`; the test adds its own keys and writes it.
pub fn file_config(root: &Path) -> DaemonConfig {
    fs::create_dir_all(root.join("state")).unwrap();
    DaemonConfig::new(root)
        .set("shutdown_grace", "10s")
        .file_source("lab", &root.join("watch/status.txt"))
        .file_sink("", &root.join("out/events.ndjson"))
        .spool("batch_max_wait", "20ms")
}

/// How many lines of `log` contain `needle`.
pub fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A tmpfs mounted by the test, unmounted when dropped; `None` from
/// [`Tmpfs::mount`] where mounting is not allowed (not root, no mount(8)).
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    pub fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the filesystem holding `dir` until a write fails; the filler file
/// is returned for removal.
pub fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    while file
        .write_all(&chunk[..1])
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    path
}

/// The lines `swantrail replay --encoding ENCODING` prints for `dumps`, as
/// a daemon with the test configuration's host name (`gw-test`) makes them.
pub fn replayed(dumps: &[(i64, PathBuf)], encoding: &str) -> Vec<String> {
    let out = Command::new(BIN)
        .args(["replay", "--hostname", "gw-test", "--encoding", encoding])
        .args(dumps.iter().map(|(_, path)| path))
        .output()
        .expect("run swantrail replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 events");
    whole_lines(&text).map(str::to_string).collect()
}

/// Feed `dumps` to a daemon whose file source `lab` watches
/// `root/watch/status.txt`, one at a time, each waited for until it is
/// checkpointed (its events are then in every sink's spool).
pub fn feed(root: &Path, daemon: &Daemon, dumps: &[(i64, PathBuf)]) {
    let watched = root.join("watch/status.txt");
    fs::create_dir_all(root.join("watch")).unwrap();
    let state = root.join("state");
    for (epoch, dump) in dumps {
        let text = fs::read_to_string(dump).expect("a lab dump");
        write_by_rename(&watched, &text, *epoch);
        wait_until(
            Duration::from_secs(30),
            &format!("dump {epoch} checkpointed"),
            daemon,
            || checkpoint_taken_at(&state, "lab") == Some(*epoch),
        );
    }
}

/// The OCSF lines of `replayed(dumps, "ocsf")` by their `metadata.uid`
/// (the ECS `event.id`).
pub fn ocsf_by_id(dumps: &[(i64, PathBuf)]) -> std::collections::BTreeMap<String, Value> {
    replayed(dumps, "ocsf")
        .iter()
        .map(|line| {
            let v = parse_event(line);
            let id = v["metadata"]["uid"]
                .as_str()
                .expect("metadata.uid")
                .to_string();
            (id, v)
        })
        .collect()
}
