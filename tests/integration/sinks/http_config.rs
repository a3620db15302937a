//! The HTTP sink's configuration: the shipped examples load, every key is
//! documented with its default, and secrets can only come from a file or
//! the environment and never show in `check-config`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use swantrail::config::{self, SinkConfig};
use swantrail::sink::http::client::{Auth, SecretSource};
use swantrail::sink::http::{Compression, Mode};

fn example_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/swantrail.toml"))
        .unwrap()
}

/// The commented `[[sink]] type = "http"` examples, uncommented one level.
fn http_examples() -> Vec<String> {
    let text = example_text();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix("# ")
            .or(if line == "#" { Some("") } else { None })
        else {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            continue;
        };
        if rest == "[[sink]]" {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            current = Some(String::new());
        }
        if let Some(b) = current.as_mut()
            && !rest.starts_with('#')
        {
            b.push_str(rest);
            b.push('\n');
        }
    }
    blocks.extend(current);
    blocks.retain(|b| b.contains("type = \"http\""));
    blocks
}

#[test]
fn every_http_example_loads_and_one_is_given_per_mode() {
    let examples = http_examples();
    let mut modes = Vec::new();
    for example in &examples {
        let loaded = config::from_toml_str(example, Path::new("example.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{example}"));
        let [SinkConfig::Http(h)] = &loaded.sinks[..] else {
            panic!("expected one http sink: {example}");
        };
        modes.push(h.mode.name());
    }
    for mode in ["ndjson", "elasticsearch", "splunk-hec", "otlp"] {
        assert!(
            modes.contains(&mode),
            "no example for mode {mode}: {modes:?}"
        );
    }
}

#[test]
fn the_first_http_example_shows_the_defaults() {
    let example = &http_examples()[0];
    let loaded = config::from_toml_str(example, Path::new("example.toml")).unwrap();
    let SinkConfig::Http(h) = &loaded.sinks[0] else {
        panic!()
    };
    assert_eq!(h.mode, Mode::Ndjson);
    assert_eq!(h.compression, Compression::Gzip);
    assert_eq!(h.auth, Auth::None);
    assert_eq!(h.client.connect_timeout, Duration::from_secs(10));
    assert_eq!(h.client.request_timeout, Duration::from_secs(30));
    assert!(h.client.tls.verify);
    let defaults = config::from_toml_str(
        "[[sink]]\ntype = \"http\"\nurl = \"https://logstash.example.net:8080/\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        defaults.sinks[0], loaded.sinks[0],
        "the example is the defaults"
    );
    for key in [
        "url",
        "mode",
        "compression",
        "auth",
        "user",
        "password_file",
        "password_env",
        "token_file",
        "token_env",
        "headers",
        "index",
        "source",
        "sourcetype",
        "connect_timeout",
        "request_timeout",
        "ca_file",
        "client_cert",
        "client_key",
        "verify",
    ] {
        assert!(
            example_text().lines().any(|l| l
                .trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} = "))),
            "config/swantrail.toml does not show `{key}`"
        );
    }
}

fn error(text: &str) -> String {
    config::from_toml_str(text, Path::new("t.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn secrets_in_the_config_file_are_refused_with_what_to_do() {
    let e = error("[[sink]]\ntype = \"http\"\nurl = \"https://u:hunter2@es:9200\"\n");
    assert!(
        e.starts_with("t.toml:3:7: `url` must not carry credentials"),
        "{e}"
    );
    assert!(!e.contains("hunter2"));
    let e = error(
        "[[sink]]\ntype = \"http\"\nurl = \"https://es:9200\"\nheaders = { Authorization = \"Basic eA==\" }\n",
    );
    assert!(e.contains("`headers` must not set Authorization"), "{e}");
    assert!(!e.contains("eA=="));
    let e = error(
        "[[sink]]\ntype = \"http\"\nurl = \"https://es:9200\"\nauth = \"basic\"\nuser = \"a\"\n",
    );
    assert!(e.contains("needs `password_file` or `password_env`"), "{e}");
    let e =
        error("[[sink]]\ntype = \"http\"\nurl = \"https://splunk:8088\"\nmode = \"splunk-hec\"\n");
    assert!(
        e.contains("mode \"splunk-hec\" needs `token_file` or `token_env`"),
        "{e}"
    );
}

#[test]
fn mistakes_name_the_key_and_the_fix() {
    let e = error("[[sink]]\ntype = \"http\"\nurl = \"https://es:9200\"\nmode = \"elastic\"\n");
    assert!(
        e.starts_with(
            "t.toml:4:8: unknown `mode` \"elastic\": write \"ndjson\", \"elasticsearch\""
        ),
        "{e}"
    );
    let e = error(
        "[[sink]]\ntype = \"http\"\nurl = \"https://es:9200\"\nmode = \"elasticsearch\"\nindex = \"Swan\"\n",
    );
    assert!(e.contains("not a valid index name"), "{e}");
    let e = error("[[sink]]\ntype = \"file\"\npath = \"/x\"\nurl = \"https://es:9200\"\n");
    assert!(
        e.starts_with("t.toml:4:1: key `url` does not apply to a `file` [[sink]]"),
        "{e}"
    );
    let e = error("[[sink]]\ntype = \"http\"\nurl = \"ftp://es\"\n");
    assert!(e.contains("is not an http:// or https:// URL"), "{e}");
}

#[test]
fn secret_sources_are_taken_from_file_or_environment() {
    let loaded = config::from_toml_str(
        "[[sink]]\ntype = \"http\"\nurl = \"https://es:9200\"\nmode = \"elasticsearch\"\nauth = \"apikey\"\ntoken_env = \"ES_KEY\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let SinkConfig::Http(h) = &loaded.sinks[0] else {
        panic!()
    };
    assert_eq!(
        h.auth,
        Auth::Bearer {
            scheme: "ApiKey".into(),
            token: SecretSource::Env("ES_KEY".into())
        }
    );
    assert_eq!(h.endpoint().path(), "/_bulk");
}

#[test]
fn check_config_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-9d8e7f-never-shown\n").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[[sink]]\ntype = \"http\"\nurl = \"https://splunk:8088\"\nmode = \"splunk-hec\"\ntoken_file = \"{}\"\n",
            dir.path().display(),
            token.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("tok-9d8e7f"), "{text}");
}
