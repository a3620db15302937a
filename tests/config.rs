//! The configuration: the shipped example, defaults, and `check-config`'s
//! messages naming the exact key and line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swantrail::config::{self, Config, FileSinkConfig, SinkConfig, SourceConfig};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/swantrail.toml")
}

#[test]
fn shipped_example_is_the_defaults_with_a_file_sink() {
    let loaded = config::load(&example()).unwrap();
    let expected = Config {
        sinks: vec![SinkConfig::File(FileSinkConfig::new(
            "/var/log/swantrail/events.ndjson".into(),
        ))],
        ..Config::default()
    };
    assert_eq!(loaded, expected);
}

#[test]
fn every_key_of_the_example_is_written_out_with_its_default() {
    let text = std::fs::read_to_string(example()).unwrap();
    let keys = [
        "state_dir",
        "hostname",
        "shutdown_grace",
        "stalled_after",
        "traffic_interval",
        "format",
        "level",
        "argv",
        "extra_argv",
        "interval",
        "timeout",
        "jitter",
        "path",
        "settle",
        "poll_interval",
        "force_poll",
        "rotate_bytes",
        "rotate_keep",
        "max_bytes",
        "full_policy",
        "segment_bytes",
        "batch_max_events",
        "batch_max_bytes",
        "batch_max_wait",
        "initial_backoff",
        "max_backoff",
    ];
    for key in keys {
        let present = text
            .lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .any(|l| l.starts_with(&format!("{key} = ")));
        assert!(present, "config/swantrail.toml does not show `{key}`");
    }
}

#[test]
fn empty_file_gives_the_no_config_behaviour() {
    let loaded = config::from_toml_str("", Path::new("empty.toml")).unwrap();
    assert_eq!(loaded, Config::default());
    assert_eq!(loaded.state_dir, Path::new("/var/lib/swantrail"));
    match &loaded.sources[..] {
        [SourceConfig::Command(c)] => {
            assert_eq!(c.argv, ["ipsec", "whack", "--status"]);
            assert_eq!(c.interval, Duration::from_secs(10));
        }
        other => panic!("expected one command source, got {other:?}"),
    }
    assert!(matches!(&loaded.sinks[..], [SinkConfig::Stdout(_)]));
}

#[test]
fn durations_sizes_and_policies_are_read_in_operator_units() {
    let text = r#"
[tracker]
traffic_interval = "1m30s"

[[source]]
type = "file"
path = "/run/dump.txt"
settle = "250ms"

[[sink]]
type = "stdout"
[sink.spool]
max_bytes = "1GiB"
segment_bytes = 65536
full_policy = "drop-oldest"
"#;
    let loaded = config::from_toml_str(text, Path::new("t.toml")).unwrap();
    assert_eq!(
        loaded.tracker.traffic_interval,
        Some(Duration::from_secs(90))
    );
    match &loaded.sources[..] {
        [SourceConfig::File(f)] => {
            assert_eq!(f.name, "file");
            assert_eq!(f.settle, Duration::from_millis(250));
            assert_eq!(f.poll_interval, Duration::from_secs(2));
        }
        other => panic!("expected one file source, got {other:?}"),
    }
    let spool = loaded.sinks[0].spool();
    assert_eq!(spool.max_bytes, 1 << 30);
    assert_eq!(spool.segment_bytes, 65536);
    assert_eq!(spool.full_policy, config::FullPolicy::DropOldest);
}

#[test]
fn extra_argv_adds_commands_to_the_same_poll_and_is_refused_on_a_file_source() {
    let text = r#"
[[source]]
type = "command"
argv = ["ipsec", "whack", "--trafficstatus"]
extra_argv = [["ipsec", "whack", "--showstates"]]
"#;
    let loaded = config::from_toml_str(text, Path::new("swantrail.toml")).unwrap();
    let SourceConfig::Command(command) = &loaded.sources[0] else {
        panic!("not a command source: {:?}", loaded.sources);
    };
    assert_eq!(
        command.extra_argv,
        vec![vec!["ipsec", "whack", "--showstates"]]
    );

    let empty = error_of("[[source]]\ntype = \"command\"\nextra_argv = [[]]\n");
    assert!(empty.contains("swantrail.toml:3"), "{empty}");
    assert!(empty.contains("extra_argv"), "{empty}");
    let misplaced =
        error_of("[[source]]\ntype = \"file\"\npath = \"/x\"\nextra_argv = [[\"a\"]]\n");
    assert!(misplaced.contains("extra_argv"), "{misplaced}");
}

fn error_of(text: &str) -> String {
    config::from_toml_str(text, Path::new("swantrail.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn mistakes_are_reported_with_file_line_and_key() {
    let cases = [
        (
            "[[source]]\ntype = \"command\"\nintervall = \"10s\"\n",
            "swantrail.toml:3:1: unknown field `intervall` in [[source]], expected one of",
        ),
        (
            "[[sink]]\ntype = \"stdout\"\n[sink.spool]\nfull_policy = \"drop\"\n",
            "swantrail.toml:4:15: unknown variant `drop`, expected `block` or `drop-oldest`",
        ),
        (
            "[[source]]\ntype = \"command\"\ninterval = \"10 seconds\"\n",
            "swantrail.toml:3:12: invalid duration \"10 seconds\"",
        ),
        (
            "[[source]]\ntype = \"command\"\npath = \"/tmp/x\"\n",
            "swantrail.toml:3:1: key `path` does not apply to a `command` [[source]]",
        ),
        (
            "[[sink]]\ntype = \"file\"\n",
            "swantrail.toml:2:8: a `file` [[sink]] needs `path`",
        ),
        (
            "[[sink]]\ntype = \"stdout\"\n\n[[sink]]\ntype = \"stdout\"\n",
            "swantrail.toml:5:8: two [[sink]] entries are named \"stdout\"",
        ),
        (
            "[[sink]]\ntype = \"stdout\"\nname = \"../etc\"\n",
            "swantrail.toml:3:8: invalid [[sink]] name \"../etc\"",
        ),
        (
            "[log]\nlevel = \"loud\"\n",
            "swantrail.toml:2:9: invalid `log.level` \"loud\"",
        ),
        (
            "[[sink]]\ntype = \"stdout\"\n[sink.spool]\nmax_bytes = \"1MiB\"\nsegment_bytes = \"2MiB\"\n",
            "swantrail.toml:4:13: `spool.max_bytes` (1048576) is smaller than `spool.segment_bytes` (2097152)",
        ),
        (
            "shutdown_grace = 5\n",
            "swantrail.toml:1:18: invalid type: integer `5`, expected a string",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(text);
        assert!(
            message.starts_with(expected),
            "for\n{text}\nexpected a message starting with\n  {expected}\ngot\n  {message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn check_config_names_the_typoed_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swantrail.toml");
    let example = std::fs::read_to_string(example()).unwrap();
    let typo = example.replacen("interval = \"10s\"", "intervall = \"10s\"", 1);
    assert_ne!(typo, example);
    let line = typo
        .lines()
        .position(|l| l.starts_with("intervall"))
        .unwrap()
        + 1;
    std::fs::write(&file, typo).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let expected = format!(
        "{}:{line}:1: unknown field `intervall` in [[source]], expected one of",
        file.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("`interval`"), "{stderr}");
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(example())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!("{}: ok (1 source, 1 sink)\n", example().display())
    );
}

#[test]
fn check_config_on_a_missing_file_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(["check-config", "/nonexistent/swantrail.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("/nonexistent/swantrail.toml: cannot read: No such file"),
        "{stderr}"
    );
}

#[test]
fn a_sinks_own_keys_are_checked_by_its_type_with_file_line_and_key() {
    let cases = [
        (
            "[[sink]]\ntype = \"stdout\"\npath = \"/x\"\n",
            "swantrail.toml:3:1: key `path` does not apply to a `stdout` [[sink]]",
        ),
        (
            "[[sink]]\ntype = \"file\"\npath = \"/x\"\nrotate_kept = 3\n",
            "swantrail.toml:4:1: unknown field `rotate_kept` in [[sink]], expected one of `type`, `name`, `spool`, `retry`, `path`, `rotate_bytes`, `rotate_keep`",
        ),
        (
            "[[sink]]\ntype = \"file\"\npath = \"/x\"\nrotate_bytes = \"lots\"\n",
            "swantrail.toml:4:16: invalid size \"lots\"",
        ),
        (
            "[[sink]]\ntype = \"carrier-pigeon\"\n",
            "swantrail.toml:2:8: unknown variant `carrier-pigeon`, expected one of `file`, `stdout`",
        ),
        (
            "sink = 3\n",
            "swantrail.toml:1:8: `sink` must be a list of tables; write [[sink]]",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(text);
        assert!(
            message.starts_with(expected),
            "for\n{text}\nexpected a message starting with\n  {expected}\ngot\n  {message}"
        );
    }
}
