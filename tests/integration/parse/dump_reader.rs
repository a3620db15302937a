//! `parse`, `diff` and `replay` read dumps with one reader: the same
//! `--max-bytes` flag and the same one-line messages.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
/// A real 4.10 dump of the bundled lab series (examples/lab-4.10).
const DUMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/lab-4.10/series/status-1795857662.txt"
);

fn stderr_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} must fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn parse_diff_and_replay_refuse_an_oversized_dump_with_the_same_message() {
    let expected =
        format!("{DUMP}: larger than the limit of 1024 bytes (raise it with --max-bytes)");
    for args in [
        vec!["parse", "--max-bytes", "1K", DUMP],
        vec!["diff", "--max-bytes", "1K", DUMP, DUMP],
        vec!["replay", "--max-bytes", "1K", DUMP],
    ] {
        let stderr = stderr_of(&args);
        assert_eq!(
            stderr.trim_end(),
            format!("swantrail: {expected}"),
            "{args:?}"
        );
    }
}

#[test]
fn a_binary_dump_gets_the_same_message_from_parse_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("status-1795857662.txt");
    std::fs::write(&bin, b"000 #1: \x00\xff").unwrap();
    let path = bin.to_str().unwrap();
    let from_parse = stderr_of(&["parse", path]);
    let from_replay = stderr_of(&["replay", path]);
    assert_eq!(from_parse, from_replay);
    assert!(
        from_parse.contains("binary data (NUL byte at offset 8)"),
        "{from_parse}"
    );
}
