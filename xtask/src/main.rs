//! `cargo xtask`: the chores of the project that cargo alone cannot do.
//!
//! `cargo xtask test` is the one command that runs every test on a fresh
//! Debian machine: the tests start real receivers (rsyslog, syslog-ng,
//! nginx, headless chromium), so it first makes sure their Debian packages
//! are there — installing them when it runs as root, or printing the one
//! `apt-get install` line to run when it does not — unpacks syslog-ng
//! (whose package conflicts with rsyslog's) where the tests look for it,
//! installs the Kafka-protocol broker `tansu` that the Kafka sink's tests
//! start (`cargo install`, once, into a cache outside the clone), and then runs
//! `cargo test`. `.ci/run` calls the same command, so the list of what the
//! tests need lives here and nowhere else.
//!
//! It must never install anything without saying so on one line first,
//! and never run the tests when something they need is missing: a test
//! run that fails for want of a package says nothing about the code.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The Debian packages the tests need, each with the reason.
const PACKAGES: &[(&str, &str)] = &[
    ("build-essential", "cc and the linker for build scripts"),
    ("pkg-config", "build scripts that look for C libraries"),
    ("rsyslog", "the syslog sink's tests start a real rsyslogd"),
    (
        "rsyslog-gnutls",
        "rsyslog's TLS driver, for syslog over TLS",
    ),
    // syslog-ng itself is unpacked (it conflicts with rsyslog as a
    // package); these are the libraries its daemon and modules load.
    ("libivykis0", "syslog-ng's event loop"),
    ("libnet1", "syslog-ng's network drivers"),
    ("libpcre3", "syslog-ng's filters"),
    ("libwrap0", "syslog-ng's TCP wrappers"),
    (
        "nginx",
        "TLS, auth and proxying in front of the HTTP receivers",
    ),
    (
        "chromium",
        "the HTML report rendered in a real headless browser",
    ),
    (
        "kcat",
        "the Kafka sink's records read back by librdkafka's own consumer",
    ),
    (
        "systemd-journal-remote",
        "a real journal directory of pluto's lines for the pluto-log source's journal test",
    ),
];

/// The Kafka-protocol broker the Kafka sink's tests start (Apache Kafka
/// itself is no Debian package): tansu from crates.io, its version pinned
/// so that a cached install is reused and a new one is a decision.
const TANSU: &str = "tansu";
/// The tansu version the tests were written against.
const TANSU_VERSION: &str = "0.6.0";
/// Its memory storage (`memory://`), which the tests use, is the
/// `dynostore` feature; the default build has no storage engine at all.
const TANSU_FEATURES: &str = "dynostore";
/// Where tansu is installed (`cargo install --root`), under the home
/// directory's cache rather than `target/`: CI builds a fresh clone every
/// run, and the install takes minutes; tests/integration/support/kafka.rs
/// looks for it there.
const TANSU_ROOT: &str = ".cache/swantrail/tools";

/// Where the tests look for the unpacked syslog-ng (tests/integration/support/syslog.rs).
const SYSLOG_NG_ROOT: &str = "target/debian/syslog-ng";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    let outcome = match task.as_ref().and_then(|t| t.to_str()) {
        Some("test") => test(&rest),
        Some("deps") => deps().map(|()| ExitCode::SUCCESS),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cargo xtask: {message}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "\
usage: cargo xtask TASK

  test [ARGS...]  install what the tests need (as root), then run
                  `cargo test --no-fail-fast ARGS...`
  deps            only install (or name) what the tests need, and
                  the tansu broker (cargo install, into ~/.cache/swantrail/tools)
";

/// Install what the tests need, then run them; every test binary runs,
/// even after one fails, so one run shows every failure.
fn test(args: &[OsString]) -> Result<ExitCode, String> {
    deps()?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("==> cargo test --no-fail-fast");
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["test", "--no-fail-fast"])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The workspace root: the parent of this crate's directory.
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Make sure every package is installed and syslog-ng is unpacked.
fn deps() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !installed(name))
        .collect();
    let mut updated = false;
    if !missing.is_empty() {
        let line = format!(
            "apt-get install -y --no-install-recommends {}",
            missing.join(" ")
        );
        if !is_root() {
            return Err(format!(
                "the tests need Debian packages that are not installed; run as root:\n    \
                 apt-get update && {line}\nthen `cargo xtask test` again (or run it as root, \
                 and it installs them itself)"
            ));
        }
        eprintln!("==> {line}");
        apt(&["update", "-qq"])?;
        updated = true;
        let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
        install.extend(&missing);
        apt(&install)?;
    }
    unpack_syslog_ng(updated)?;
    install_tansu()
}

/// `cargo install tansu` into [`TANSU_ROOT`] unless that version is there.
/// It builds about 400 crates (18 CPU-minutes: 10 minutes on two idle
/// cores, 30 on busy ones), so it is done once per machine.
fn install_tansu() -> Result<(), String> {
    let home = env::var_os("HOME").ok_or("HOME is not set: it says where tansu is installed")?;
    let root = Path::new(&home).join(TANSU_ROOT);
    let binary = root.join("bin").join(TANSU);
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(TANSU_VERSION));
    if installed {
        return Ok(());
    }
    eprintln!(
        "==> cargo install {TANSU} --version {TANSU_VERSION} --features {TANSU_FEATURES} --locked --root ~/{TANSU_ROOT}"
    );
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "install",
            TANSU,
            "--version",
            TANSU_VERSION,
            "--features",
            TANSU_FEATURES,
            "--locked",
            "--root",
        ])
        .arg(&root)
        // A release build without debug info: the broker is a test tool.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .status()
        .map_err(|e| format!("cannot run cargo install {TANSU}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo install {TANSU} failed ({status}); the Kafka sink's tests need it as their broker"
        ))
    }
}

/// Whether dpkg says `package` is installed.
fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Run apt-get non-interactively, waiting for another apt to finish.
fn apt(args: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=600"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}

/// Unpack syslog-ng-core under `target/debian/syslog-ng` unless it is there,
/// then check that every library its daemon loads is installed.
fn unpack_syslog_ng(updated: bool) -> Result<(), String> {
    let root = root().join(SYSLOG_NG_ROOT);
    let daemon = root.join("usr/sbin/syslog-ng");
    if !daemon.exists() {
        eprintln!("==> unpack syslog-ng-core into {SYSLOG_NG_ROOT}");
        let debs = root.with_file_name("syslog-ng-download");
        std::fs::create_dir_all(&debs)
            .map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
        let download = || {
            Command::new("apt-get")
                .args(["download", "-qq", "syslog-ng-core"])
                .current_dir(&debs)
                .status()
                .is_ok_and(|s| s.success())
        };
        // An old package index may name a version the mirror no longer has.
        let fetched =
            download() || (is_root() && !updated && apt(&["update", "-qq"]).is_ok() && download());
        if !fetched {
            return Err(
                "cannot download syslog-ng-core (`apt-get download syslog-ng-core`); \
                 run `apt-get update` as root and try again"
                    .to_string(),
            );
        }
        let deb = std::fs::read_dir(&debs)
            .map_err(|e| format!("cannot read {}: {e}", debs.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download left no syslog-ng-core .deb")?;
        let status = Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .status()
            .map_err(|e| format!("cannot run dpkg -x: {e}"))?;
        let _ = std::fs::remove_dir_all(&debs);
        if !status.success() {
            return Err(format!("dpkg -x {} failed ({status})", deb.display()));
        }
    }
    // The daemon and the socket module the tests load, with syslog-ng's
    // own libraries found as the tests find them (LD_LIBRARY_PATH).
    let lib = root.join("usr/lib/syslog-ng");
    let mut objects = vec![daemon];
    if let Ok(dirs) = std::fs::read_dir(&lib) {
        objects.extend(
            dirs.filter_map(Result::ok)
                .map(|e| e.path().join("libafsocket.so"))
                .filter(|p| p.exists()),
        );
    }
    let ldd = Command::new("ldd")
        .args(&objects)
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let mut missing: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter(|l| l.contains("not found"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Err(format!(
            "the unpacked syslog-ng needs libraries that are not installed: {}; \
             install the Debian packages that hold them (`apt-file search LIB`)",
            missing.join(", ")
        ));
    }
    Ok(())
}
