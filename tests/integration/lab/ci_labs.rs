//! `.ci/run`'s end-to-end step (`e2e/ci-labs.sh`): a lab that is beside the
//! project but cannot run fails CI, with a last line that says which run
//! and why. Nothing was checked then, and a green CI would hide it; only a
//! machine without User-Mode-Linux skips the lab (e2e/lab.sh's exit 77).
//!
//! The lab is kept from running the way it is on a real machine: as a user
//! other than root, which `e2e/lab.sh` refuses (exit 3) before it builds or
//! starts anything, so the test takes well under a second. As root, a new
//! user namespace gives the scripts that user while they keep reading the
//! project's files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lab beside the project, where CI has it. Elsewhere (a checkout
/// without it) a directory holding only the lab's entry point stands in:
/// both scripts look for `realswan.sh` to tell whether the lab is here, and
/// `e2e/lab.sh` refuses a user other than root before it reads anything
/// else of the lab.
fn lab(scratch: &Path) -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/lab");
    if beside.join("realswan.sh").is_file() {
        return beside;
    }
    std::fs::write(scratch.join("realswan.sh"), "").unwrap();
    scratch.to_path_buf()
}

#[test]
fn a_lab_that_is_here_but_cannot_run_fails_ci_and_says_so_last() {
    let scratch = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/ci-labs.sh");
    // SAFETY: geteuid has no preconditions.
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("unshare");
        c.arg("--user").arg(&script);
        c
    } else {
        Command::new(&script)
    };
    let output = command
        .env("SWANTRAIL_LAB", lab(scratch.path()))
        .output()
        .expect("run e2e/ci-labs.sh (as root through unshare, from util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    // e2e/ci-labs.sh shows each run's output, both streams, on its stdout.
    assert!(
        stdout.contains("e2e/lab.sh: needs root"),
        "the 4.10 run should have been refused for want of root:\n{shown}"
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "a lab that could not run must fail CI with e2e/lab.sh's exit 3:\n{shown}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some(
            "==> e2e/lab.sh --libreswan 4.10 failed with exit 3 \
             (1: a check failed; 3: the lab could not run here, see above)"
        ),
        "the last line should name the run that could not run:\n{shown}"
    );
    assert!(
        !stdout.contains("--libreswan 5.2"),
        "CI should stop at the first run that failed:\n{shown}"
    );
}
