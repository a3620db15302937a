//! The configuration: the shipped example, defaults, and `check-config`'s
//! messages naming the exact key and line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swantrail::config::{
    self, AuditFrom, AuditSourceConfig, Config, FileSinkConfig, MetricsSettings, PlutoLogFrom,
    PlutoLogSourceConfig, SinkConfig, SourceConfig,
};

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
        "transport",
        "address",
        "framing",
        "facility",
        "app_name",
        "message",
        "max_message_bytes",
        "ca_file",
        "client_cert",
        "client_key",
        "server_name",
        "insecure_skip_verify",
        "listen",
        "allow_non_loopback",
        "max_tunnel_series",
        "from",
        "pluto",
        "journal_directory",
        "brokers",
        "topic",
        "acks",
        "idempotence",
        "message_timeout",
        "sasl_mechanism",
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
fn metrics_are_off_by_default_and_loopback_unless_allowed() {
    let off = config::from_toml_str("", Path::new("m.toml")).unwrap();
    assert_eq!(off.metrics, None);
    let bare = config::from_toml_str("[metrics]\n", Path::new("m.toml")).unwrap();
    assert_eq!(bare.metrics, Some(MetricsSettings::default()));
    assert_eq!(
        MetricsSettings::default().listen.to_string(),
        "127.0.0.1:9846"
    );
    let refused = config::from_toml_str(
        "[metrics]\nlisten = \"0.0.0.0:9846\"\n",
        Path::new("m.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        refused.starts_with("m.toml:2:")
            && refused.contains("not a loopback address")
            && refused.contains("allow_non_loopback = true"),
        "{refused}"
    );
    let allowed = config::from_toml_str(
        "[metrics]\nlisten = \"[::]:9100\"\nallow_non_loopback = true\nmax_tunnel_series = 5\n",
        Path::new("m.toml"),
    )
    .unwrap();
    let metrics = allowed.metrics.unwrap();
    assert_eq!(metrics.listen.to_string(), "[::]:9100");
    assert_eq!(metrics.max_tunnel_series, 5);
    let garbage = config::from_toml_str("[metrics]\nlisten = \"localhost\"\n", Path::new("m.toml"))
        .unwrap_err()
        .to_string();
    assert!(garbage.contains("is not an address and port"), "{garbage}");
    let typo = config::from_toml_str("[metrics]\nlsten = \"127.0.0.1:1\"\n", Path::new("m.toml"))
        .unwrap_err()
        .to_string();
    assert!(typo.contains("lsten"), "{typo}");
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

#[test]
fn an_audit_source_belongs_to_the_snapshot_source_it_names_or_the_only_one() {
    let only = config::from_toml_str(
        "[[source]]\ntype = \"file\"\npath = \"/run/s.txt\"\n\n[[source]]\ntype = \"audit\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        only.sources.len(),
        1,
        "the audit source is no snapshot source"
    );
    assert_eq!(
        only.audit,
        vec![AuditSourceConfig {
            name: "audit".into(),
            pluto: "file".into(),
            from: AuditFrom::Netlink,
            pid_file: "/run/pluto/pluto.pid".into(),
        }]
    );
    let own_pid = config::from_toml_str(
        "[[source]]\ntype = \"audit\"\npid_file = \"/run/west/pluto.pid\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        own_pid.audit[0].pid_file,
        Path::new("/run/west/pluto.pid"),
        "the pid that tells this pluto's records from another's"
    );
    let misplaced = config::from_toml_str(
        "[[source]]\ntype = \"command\"\npid_file = \"/x\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(misplaced.contains("pid_file"), "{misplaced}");

    let alone = config::from_toml_str(
        "[[source]]\ntype = \"audit\"\nfrom = \"auditd-log\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        alone.sources,
        Config::default().sources,
        "polls the local pluto"
    );
    assert_eq!(alone.audit[0].pluto, "command");
    assert_eq!(
        alone.audit[0].from,
        AuditFrom::AuditdLog("/var/log/audit/audit.log".into())
    );

    let named = config::from_toml_str(
        "[[source]]\ntype = \"command\"\n[[source]]\ntype = \"file\"\npath = \"/x\"\n\
         [[source]]\ntype = \"audit\"\nfrom = \"journal\"\npluto = \"file\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        (named.audit[0].pluto.as_str(), &named.audit[0].from),
        ("file", &AuditFrom::Journal)
    );
}

#[test]
fn audit_source_mistakes_name_the_key_and_line() {
    let cases = [
        (
            "[[source]]\ntype = \"audit\"\nfrom = \"socket\"\n",
            "swantrail.toml:3:8: unknown `from` \"socket\"",
        ),
        (
            "[[source]]\ntype = \"audit\"\npluto = \"gw\"\n",
            "swantrail.toml:3:9: `pluto` names no command or file [[source]]: \"gw\" is not one of command",
        ),
        (
            "[[source]]\ntype = \"command\"\n[[source]]\ntype = \"file\"\npath = \"/x\"\n[[source]]\ntype = \"audit\"\n",
            "swantrail.toml:7:8: an `audit` [[source]] next to several snapshot sources needs `pluto`",
        ),
        (
            "[[source]]\ntype = \"audit\"\n[[source]]\ntype = \"audit\"\nname = \"again\"\n",
            "swantrail.toml:4:8: two audit sources feed the source \"command\"",
        ),
        (
            "[[source]]\ntype = \"audit\"\npath = \"/var/log/audit/audit.log\"\n",
            "swantrail.toml:3:1: key `path` does not apply to an audit source reading netlink",
        ),
        (
            "[[source]]\ntype = \"command\"\nfrom = \"netlink\"\n",
            "swantrail.toml:3:1: key `from` does not apply to a snapshot [[source]]",
        ),
        (
            "[[source]]\ntype = \"audit\"\ninterval = \"1s\"\n",
            "swantrail.toml:3:1: key `interval` does not apply to an `audit` [[source]]",
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
fn a_pluto_log_source_reads_a_file_by_default_or_the_journal_and_belongs_to_one_pluto() {
    let file = config::from_toml_str(
        "[[source]]\ntype = \"file\"\npath = \"/run/s.txt\"\n\n[[source]]\ntype = \"pluto-log\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        file.sources.len(),
        1,
        "the log source is no snapshot source"
    );
    assert_eq!(
        file.pluto_log,
        vec![PlutoLogSourceConfig {
            name: "pluto-log".into(),
            pluto: "file".into(),
            from: PlutoLogFrom::File("/var/log/pluto.log".into()),
        }]
    );
    let journal = config::from_toml_str(
        "[[source]]\ntype = \"pluto-log\"\nfrom = \"journal\"\njournal_directory = \"/srv/j\"\n\n\
         [[source]]\ntype = \"linux-audit\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        journal.pluto_log[0].from,
        PlutoLogFrom::Journal {
            directory: Some("/srv/j".into())
        }
    );
    assert_eq!(
        journal.pluto_log[0].pluto, "command",
        "polls the local pluto"
    );
    assert_eq!(
        journal.audit.len(),
        1,
        "beside an audit source of the same pluto"
    );
    let cases = [
        (
            "[[source]]\ntype = \"pluto-log\"\nfrom = \"syslog\"\n",
            "swantrail.toml:3:8: unknown `from` \"syslog\": a pluto-log source reads \"file\" or \"journal\"",
        ),
        (
            "[[source]]\ntype = \"pluto-log\"\nfrom = \"journal\"\npath = \"/x\"\n",
            "swantrail.toml:4:1: key `path` does not apply to a pluto-log source reading the journal",
        ),
        (
            "[[source]]\ntype = \"pluto-log\"\njournal_directory = \"/x\"\n",
            "swantrail.toml:3:1: key `journal_directory` does not apply to a pluto-log source reading a file",
        ),
        (
            "[[source]]\ntype = \"pluto-log\"\n[[source]]\ntype = \"pluto-log\"\nname = \"again\"\n",
            "swantrail.toml:4:8: two pluto-log sources feed the source \"command\"",
        ),
        (
            "[[source]]\ntype = \"command\"\njournal_directory = \"/x\"\n",
            "swantrail.toml:3:1: key `journal_directory` does not apply to a snapshot [[source]]",
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
fn linux_audit_and_its_first_name_audit_load_to_the_same_source() {
    let tables = [
        "",
        "name = \"kernel\"\n",
        "from = \"auditd-log\"\npath = \"/srv/audit.log\"\npid_file = \"/run/west/pluto.pid\"\n",
        "from = \"journal\"\npluto = \"command\"\n",
    ];
    for own in tables {
        let load = |type_name: &str| {
            config::from_toml_str(
                &format!(
                    "[[source]]\ntype = \"command\"\n[[source]]\ntype = \"{type_name}\"\n{own}"
                ),
                Path::new("swantrail.toml"),
            )
            .unwrap()
        };
        let (new, old) = (load("linux-audit"), load("audit"));
        assert_eq!(new, old, "for\n{own}");
        assert_eq!(new.audit.len(), 1, "for\n{own}");
    }
    let unnamed = config::from_toml_str(
        "[[source]]\ntype = \"linux-audit\"\n",
        Path::new("swantrail.toml"),
    )
    .unwrap();
    assert_eq!(
        unnamed.audit[0].name, "audit",
        "the default name labels metrics and logs, whichever type is written"
    );
    assert_eq!(
        error_of("[[source]]\ntype = \"linux-audit\"\ninterval = \"1s\"\n"),
        "swantrail.toml:3:1: key `interval` does not apply to a `linux-audit` [[source]]",
        "an error names the type as written"
    );
}

#[test]
fn check_config_says_ok_to_an_audit_source_under_either_type() {
    let dir = tempfile::tempdir().unwrap();
    for type_name in ["audit", "linux-audit"] {
        let file = dir.path().join(format!("{type_name}.toml"));
        std::fs::write(
            &file,
            format!("[[source]]\ntype = \"command\"\n\n[[source]]\ntype = \"{type_name}\"\n"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{type_name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!(
                "{}: ok (1 source, 1 audit source, 1 sink)\n",
                file.display()
            )
        );
    }
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
fn check_config_reports_every_mistake_in_file_order_not_only_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swantrail.toml");
    let text = "[[source]]\ntype = \"command\"\npath = \"/tmp/x\"\n\n\
                [[sink]]\ntype = \"file\"\n\n\
                [log]\nlevel = \"loud\"\n\n\
                [tracker]\nstalled_after = \"0s\"\n";
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let at = |line: usize| format!("{}:{line}:", file.display());
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with(&at(3)) && lines[0].contains("`path` does not apply"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&at(6)) && lines[1].contains("needs `path`"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&at(9)) && lines[2].contains("log.level"),
        "{stderr}"
    );
    assert!(
        lines[3].starts_with(&at(12)) && lines[3].contains("stalled_after"),
        "{stderr}"
    );
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
fn syslog_sink_defaults_to_dev_log_rfc5424_authpriv_json() {
    let loaded =
        config::from_toml_str("[[sink]]\ntype = \"syslog\"\n", Path::new("t.toml")).unwrap();
    let SinkConfig::Syslog(s) = &loaded.sinks[0] else {
        panic!("not a syslog sink: {:?}", loaded.sinks);
    };
    use swantrail::sink::syslog::{Facility, Format, Framing, MessageFormat, Transport};
    assert_eq!(s.name, "syslog");
    assert_eq!(s.transport, Transport::Unix);
    assert_eq!(s.address, "/dev/log");
    assert_eq!(s.format, Format::Rfc5424);
    assert_eq!(s.facility, Facility::Authpriv);
    assert_eq!(s.message, MessageFormat::Json);
    assert_eq!(s.app_name, "swantrail");
    assert_eq!(s.hostname, None);
    assert_eq!(s.max_message_bytes, Some(8192));
    let text = "[[sink]]\ntype = \"syslog\"\ntransport = \"udp\"\naddress = \"192.0.2.9:514\"\nformat = \"rfc3164\"\n";
    let SinkConfig::Syslog(s) = &config::from_toml_str(text, Path::new("t.toml"))
        .unwrap()
        .sinks[0]
    else {
        panic!("not a syslog sink");
    };
    assert_eq!(s.max_message_bytes, Some(2048));
    let text = "[[sink]]\ntype = \"syslog\"\ntransport = \"tls\"\naddress = \"logs.example.net:6514\"\n[sink.tls]\nca_file = \"/etc/ca.pem\"\n";
    let SinkConfig::Syslog(s) = &config::from_toml_str(text, Path::new("t.toml"))
        .unwrap()
        .sinks[0]
    else {
        panic!("not a syslog sink");
    };
    assert_eq!(s.framing, Framing::OctetCounting);
    assert_eq!(s.max_message_bytes, None);
    assert_eq!(s.tls.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert!(s.tls.verify);
}

#[test]
fn check_config_refuses_a_wrong_syslog_transport_format_framing_mix_by_key_and_line() {
    let sink = |body: &str| format!("[[sink]]\ntype = \"syslog\"\n{body}");
    let cases = [
        (
            sink("transport = \"udp\"\naddress = \"h:514\"\nframing = \"newline\"\n"),
            "swantrail.toml:5:1: key `framing` does not apply to transport = \"udp\"",
        ),
        (
            sink("framing = \"octet-counting\"\n"),
            "swantrail.toml:3:1: key `framing` does not apply to transport = \"unix\"",
        ),
        (
            sink("transport = \"tls\"\naddress = \"h:6514\"\nformat = \"rfc3164\"\n"),
            "swantrail.toml:5:1: format = \"rfc3164\" does not go with transport = \"tls\"",
        ),
        (
            sink("transport = \"tcp\"\naddress = \"h:514\"\nmax_message_bytes = 4096\n"),
            "swantrail.toml:5:1: key `max_message_bytes` does not apply to transport = \"tcp\"",
        ),
        (
            sink("transport = \"tcp\"\naddress = \"h:514\"\n[sink.tls]\nca_file = \"/x\"\n"),
            "swantrail.toml:5:1: the [sink.tls] table does not apply to transport = \"tcp\"",
        ),
        (
            sink("transport = \"tcp\"\n"),
            "swantrail.toml:2:8: a `syslog` [[sink]] with transport = \"tcp\" needs `address`",
        ),
        (
            sink("transport = \"udp\"\naddress = \"logs.example.net\"\n"),
            "swantrail.toml:4:11: invalid `address` \"logs.example.net\" for transport = \"udp\"",
        ),
        (
            sink("transport = \"tcp\"\naddress = \"h:514\"\nformat = \"rfc5425\"\n"),
            "swantrail.toml:5:10: unknown variant `rfc5425`, expected `rfc5424` or `rfc3164`",
        ),
        (
            sink("transport = \"udp\"\naddress = \"h:514\"\nmax_message_bytes = 100\n"),
            "swantrail.toml:5:21: `max_message_bytes` must be between 480",
        ),
        (
            sink("app_name = \"swan trail\"\n"),
            "swantrail.toml:3:12: invalid `app_name` \"swan trail\"",
        ),
        (
            "[[sink]]\ntype = \"file\"\npath = \"/x\"\ntransport = \"tcp\"\n".to_string(),
            "swantrail.toml:4:1: key `transport` does not apply to a `file` [[sink]]",
        ),
        (
            sink(
                "transport = \"tls\"\naddress = \"h:6514\"\n[sink.tls]\nclient_cert = \"/c.pem\"\n",
            ),
            "swantrail.toml:6:1: `tls.client_cert` and `tls.client_key` go together",
        ),
    ];
    for (text, expected) in cases {
        let e = error_of(&text);
        assert!(
            e.starts_with(expected),
            "for\n{text}\ngot:      {e}\nexpected: {expected}"
        );
    }
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
            "swantrail.toml:4:1: unknown field `rotate_kept` in [[sink]], expected one of `type`, `name`, `spool`, `retry`, `encoding`, `path`, `rotate_bytes`, `rotate_keep`",
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

#[test]
fn config_sizes_follow_the_same_rule_as_max_bytes() {
    let text =
        "[[sink]]\ntype = \"stdout\"\n[sink.spool]\nmax_bytes = \"64M\"\nsegment_bytes = \"1M\"\n";
    let loaded = config::from_toml_str(text, Path::new("t.toml")).unwrap();
    assert_eq!(loaded.sinks[0].spool().max_bytes, 64 << 20);
    assert_eq!(
        config::parse_byte_size("64M"),
        swantrail::input::parse_byte_size("64M")
    );
    let refused = error_of("[[sink]]\ntype = \"stdout\"\n[sink.spool]\nmax_bytes = \"64MB\"\n");
    assert!(
        refused.starts_with("swantrail.toml:4:13: invalid size \"64MB\""),
        "{refused}"
    );
}

/// `swantrail check-config FILE`'s exit success, stdout and stderr.
fn check_config(file: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Whether this test runs as root (CI does): root may write anywhere, so
/// what the messages advise differs.
fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn check_config_refuses_a_state_dir_that_cannot_be_created_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    // Not even root can make a directory inside a regular file.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let file = dir.path().join("swantrail.toml");
    let state_dir = blocker.join("state");
    std::fs::write(
        &file,
        format!("# spools\n\nstate_dir = \"{}\"\n", state_dir.display()),
    )
    .unwrap();
    let (ok, stdout, stderr) = check_config(&file);
    assert!(!ok, "{stdout}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "{}:3:1: the state directory {} cannot be used: {} is not a directory; {}\n",
            file.display(),
            state_dir.display(),
            blocker.display(),
            if running_as_root() {
                "choose another with --state-dir DIR or `state_dir` in the config"
            } else {
                "run as root, or choose another with --state-dir DIR or `state_dir` in the config"
            }
        )
    );
}

#[test]
fn check_config_accepts_a_state_dir_it_could_create_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swantrail.toml");
    let state_dir = dir.path().join("new/state");
    std::fs::write(&file, format!("state_dir = \"{}\"\n", state_dir.display())).unwrap();
    let (ok, stdout, stderr) = check_config(&file);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}: ok (1 source, 1 sink)\n", file.display())
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["swantrail.toml"],
        "check-config left something behind"
    );
}

#[test]
fn check_config_refuses_a_metrics_address_in_use_at_its_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swantrail.toml");
    let state_dir = dir.path().join("state");
    std::fs::write(
        &file,
        format!(
            "state_dir = \"{}\"\n\n[metrics]\nlisten = \"{addr}\"\n",
            state_dir.display()
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = check_config(&file);
    assert!(!ok, "{stdout}");
    let expected = format!(
        "{}:4:1: `metrics.listen` {addr}: cannot listen there: Address already in use",
        file.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Free again, the same file is good: the refusal was about the port.
    drop(taken);
    let (ok, stdout, stderr) = check_config(&file);
    assert!(ok, "{stderr}");
    assert!(
        stdout.ends_with(&format!(", metrics on {addr})\n")),
        "{stdout}"
    );
}

#[test]
fn run_with_a_state_dir_it_cannot_create_says_run_as_root_only_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("run")
        .arg("--state-dir")
        .arg(blocker.join("state"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "cannot create the state directory {}: Not a directory (os error 20); ",
            blocker.join("state").display()
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.contains("run as root"),
        !running_as_root(),
        "{stderr}"
    );
    assert!(
        stderr.contains("choose another with --state-dir DIR"),
        "{stderr}"
    );
}

#[test]
fn run_with_a_missing_config_prints_the_os_error_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .args(["run", "--config", "/nonexistent/swantrail.toml"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "swantrail: /nonexistent/swantrail.toml: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn an_error_at_a_key_is_placed_at_the_key_or_else_at_its_table() {
    let text = "state_dir = \"/srv/x\"\n\n[metrics]\nallow_non_loopback = false\n";
    let at =
        |key: &str| config::error_at_key(text, Path::new("c.toml"), key, "m".into()).to_string();
    assert_eq!(at("state_dir"), "c.toml:1:1: m");
    assert_eq!(at("metrics.allow_non_loopback"), "c.toml:4:1: m");
    // `listen` is not written: its default is what [metrics] set up.
    assert_eq!(at("metrics.listen"), "c.toml:3:1: m");
    assert_eq!(at("hostname"), "c.toml: m");
}
