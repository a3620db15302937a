//! The HTTP sink through a real nginx (Debian's package, started by the
//! test on loopback): TLS with a CA made for the test, `auth_basic` in front
//! of a receiver, a wrong CA, a wrong name, `server_name`, a wrong password
//! fixed by SIGHUP, a CA file gone at SIGHUP.
//!
//! nginx must be installed (`.ci/run` installs it); without it these tests
//! fail and say so, since passing would claim TLS was checked.

use crate::support::http_receiver;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::config::DaemonConfig;
use crate::support::daemon::lab_series;
use http_receiver::{Protocol, Receiver};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use swantrail::config::{FullPolicy, RetrySettings, SpoolSettings};
use swantrail::sink::http::client::{Auth, ClientSettings, SecretSource, TlsSettings};
use swantrail::sink::http::{Compression, HttpSink, HttpSinkConfig, Mode};
use swantrail::sink::{Delivery, Encoding};

const BIN: &str = env!("CARGO_BIN_EXE_swantrail");
const PASSWORD: &str = "n0t-in-any-log-7f3a";

fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "nginx is not installed: these tests need Debian's nginx package (.ci/run installs it: apt-get install nginx)"
    );
}

/// A CA and a server certificate for `localhost` only, written as PEM files.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert.pem())
}

fn pki(dir: &Path) -> Pki {
    let (ca_params, ca_key, ca_pem) = make_ca("swantrail test CA");
    let (_, _, other_pem) = make_ca("some other CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&server_key, &issuer).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    fs::write(&pki.ca, ca_pem).unwrap();
    fs::write(&pki.other_ca, other_pem).unwrap();
    fs::write(&pki.cert, cert.pem()).unwrap();
    fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    pki
}

/// nginx in the foreground on a free loopback port: TLS, auth_basic, proxy to `upstream`.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, pki: &Pki, upstream: std::net::SocketAddr) -> Nginx {
        let binary = nginx_binary();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        fs::write(
            dir.join("htpasswd"),
            format!("swantrail:{{PLAIN}}{PASSWORD}\n"),
        )
        .unwrap();
        let d = dir.display();
        let root_user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let config = format!(
            r#"{root_user}
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            auth_basic "swantrail test";
            auth_basic_user_file {d}/htpasswd;
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
        }}
    }}
}}
"#,
            cert = pki.cert.display(),
            key = pki.key.display(),
        );
        fs::write(dir.join("nginx.conf"), config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let nginx = Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "nginx did not start: {}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn log(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(n: u32) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-28T09:25:42Z","event":{{"id":"{n:032x}","action":"tunnel-up","sequence":{n}}},"observer":{{"hostname":"west"}}}}"#
    )
}

fn sink_config(url: &str, ca: &Path, password_file: &Path) -> HttpSinkConfig {
    HttpSinkConfig {
        name: "siem".into(),
        url: url.parse().unwrap(),
        mode: Mode::Ndjson,
        compression: Compression::Gzip,
        auth: Auth::Basic {
            user: "swantrail".into(),
            password: SecretSource::File(password_file.to_path_buf()),
        },
        client: ClientSettings {
            tls: TlsSettings {
                ca_file: Some(ca.to_path_buf()),
                verify: true,
                ..TlsSettings::default()
            },
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            headers: Vec::new(),
        },
        spool: SpoolSettings {
            max_bytes: 1 << 20,
            full_policy: FullPolicy::Block,
            segment_bytes: 1 << 16,
            batch_max_events: 100,
            batch_max_bytes: 1 << 20,
            batch_max_wait: Duration::from_millis(10),
        },
        retry: RetrySettings {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
        },
        encoding: Encoding::Ecs,
    }
}

async fn delivered(delivery: &Delivery, n: u64, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if delivery.stats()[0].delivered_events >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_through_nginx_works_with_the_given_ca_and_refuses_a_wrong_ca_or_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let nginx = Nginx::start(dir.path(), &pki, receiver.addr);
    let password = dir.path().join("password");
    fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let good = format!("https://localhost:{}/ingest", nginx.port);

    // A CA that did not sign the server's certificate: refused, events stay spooled.
    let state = tempfile::tempdir().unwrap();
    let delivery = Delivery::builder(state.path())
        .add_sink(
            "siem",
            &sink_config(&good, &pki.other_ca, &password).spool,
            &sink_config(&good, &pki.other_ca, &password).retry,
            HttpSink::new(sink_config(&good, &pki.other_ca, &password)),
        )
        .unwrap()
        .start();
    delivery.enqueue(&[event(1), event(2)]).await.unwrap();
    assert!(!delivered(&delivery, 1, Duration::from_secs(2)).await);
    let stats = delivery.stats()[0].clone();
    assert!(stats.failing && stats.pending_events == 2, "{stats:?}");
    delivery.shutdown(Duration::ZERO).await.unwrap();

    // The right CA but the wrong name (the certificate names only localhost).
    let wrong_name = format!("https://127.0.0.1:{}/ingest", nginx.port);
    let mut sink = HttpSink::new(sink_config(&wrong_name, &pki.ca, &password));
    let batch = swantrail::sink::Batch::from_ndjson(format!("{}\n", event(3)));
    match sink.deliver(&batch).await {
        swantrail::sink::http::answer::Verdict::Retry { reason, .. } => {
            assert!(
                reason.contains("cannot connect to https://127.0.0.1"),
                "{reason}"
            );
            assert!(reason.contains("certificate"), "{reason}");
            assert!(!reason.contains('\n'));
        }
        other => panic!("a wrong name must be refused: {other:?}"),
    }
    let mut sink = HttpSink::new(sink_config(&good, &pki.other_ca, &password));
    match sink.deliver(&batch).await {
        swantrail::sink::http::answer::Verdict::Retry { reason, .. } => {
            assert!(
                reason.contains("UnknownIssuer") || reason.contains("unknown issuer"),
                "{reason}"
            )
        }
        other => panic!("a wrong CA must be refused: {other:?}"),
    }

    // The same spool with the right CA: the waiting events are delivered.
    let cfg = sink_config(&good, &pki.ca, &password);
    let delivery = Delivery::builder(state.path())
        .add_sink(
            "siem",
            &cfg.spool.clone(),
            &cfg.retry.clone(),
            HttpSink::new(cfg),
        )
        .unwrap()
        .start();
    assert!(
        delivered(&delivery, 2, Duration::from_secs(10)).await,
        "{}",
        nginx.log()
    );
    let got: Vec<u64> = receiver
        .events()
        .iter()
        .map(|e| e["event"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![1, 2]);
    assert!(receiver.requests()[0].gzip, "nginx passes the gzip body on");
    delivery.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_names_the_receiver_its_address_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let nginx = Nginx::start(dir.path(), &pki, receiver.addr);
    let password = dir.path().join("password");
    fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    // The certificate names only localhost; the url is an address.
    let by_address = format!("https://127.0.0.1:{}/ingest", nginx.port);
    let mut config = sink_config(&by_address, &pki.ca, &password);
    config.client.tls.server_name = Some("localhost".into());
    let mut sink = HttpSink::new(config);
    let batch = swantrail::sink::Batch::from_ndjson(format!("{}\n", event(5)));
    match sink.deliver(&batch).await {
        swantrail::sink::http::answer::Verdict::Delivered => {}
        other => panic!(
            "server_name = localhost must pass: {other:?}\n{}",
            nginx.log()
        ),
    }
    let got: Vec<u64> = receiver
        .events()
        .iter()
        .map(|e| e["event"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_gone_at_sighup_keeps_the_client_that_works() {
    use swantrail::sink::Sink as _;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let nginx = Nginx::start(dir.path(), &pki, receiver.addr);
    let password = dir.path().join("password");
    fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let ca = dir.path().join("ca-copy.pem");
    fs::copy(&pki.ca, &ca).unwrap();
    let good = format!("https://localhost:{}/ingest", nginx.port);
    let mut sink = HttpSink::new(sink_config(&good, &ca, &password));
    let delivered = |verdict: &swantrail::sink::http::answer::Verdict| {
        matches!(verdict, swantrail::sink::http::answer::Verdict::Delivered)
    };
    let first = swantrail::sink::Batch::from_ndjson(format!("{}\n", event(1)));
    let verdict = sink.deliver(&first).await;
    assert!(delivered(&verdict), "{verdict:?}");

    fs::remove_file(&ca).unwrap();
    let e = sink.reopen().unwrap_err().to_string();
    assert!(
        e.contains("tls.ca_file") && e.contains("still using the TLS files read before"),
        "{e}"
    );
    let second = swantrail::sink::Batch::from_ndjson(format!("{}\n", event(2)));
    let verdict = sink.deliver(&second).await;
    assert!(delivered(&verdict), "{verdict:?}");
    let got: Vec<u64> = receiver
        .events()
        .iter()
        .map(|e| e["event"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_retried_and_the_events_arrive_after_the_file_is_fixed_and_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let receiver = Receiver::start(Protocol::Ndjson).await;
    let nginx = Nginx::start(dir.path(), &pki, receiver.addr);
    let password = dir.path().join("password");
    fs::write(&password, "wrong-password-1234\n").unwrap();
    let watch = dir.path().join("watch");
    fs::create_dir_all(&watch).unwrap();
    let (_, dump) = lab_series().remove(0);
    fs::copy(&dump, watch.join("status.txt")).unwrap();
    let config = DaemonConfig::new(dir.path())
        .table("log", "level", "trace")
        .file_source("", &watch.join("status.txt"))
        .with("settle", "50ms")
        .http_sink(
            "siem",
            &format!("https://localhost:{}/ingest", nginx.port),
            "ndjson",
        )
        .with("auth", "basic")
        .with("user", "swantrail")
        .with_path("password_file", &password)
        .tls("ca_file", pki.ca.to_str().unwrap())
        .spool("batch_max_wait", "20ms")
        .retry("initial_backoff", "100ms")
        .retry("max_backoff", "500ms")
        .write();
    let stderr = dir.path().join("daemon.log");
    let mut daemon = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.path().join("daemon.out")).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(&stderr).unwrap_or_default();
    let until = Instant::now() + Duration::from_secs(20);
    while !log().contains("HTTP 401") {
        assert!(Instant::now() < until, "no 401 line: {}", log());
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.events().is_empty());
    fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    unsafe { libc::kill(daemon.id() as i32, libc::SIGHUP) };
    let until = Instant::now() + Duration::from_secs(20);
    while receiver.events().is_empty() || !log().contains("delivery recovered") {
        assert!(
            Instant::now() < until,
            "not delivered after SIGHUP: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let log = log();
    let lines_401 = log
        .lines()
        .filter(|l| l.contains("delivery failed") && l.contains("HTTP 401"))
        .count();
    assert_eq!(lines_401, 1, "one error line for the outage:\n{log}");
    let mut ids: Vec<String> = receiver
        .events()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event twice");
    // No secret in any output at trace level, in the dead letters or in check-config.
    let out = fs::read_to_string(dir.path().join("daemon.out")).unwrap_or_default();
    for text in [&log, &out] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-password-1234"),
            "a secret was logged"
        );
        assert!(
            !text.contains("c3dhbnRyYWls"),
            "the base64 credentials were logged"
        );
    }
    let check = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let check_out = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{check_out}");
    assert!(!check_out.contains(PASSWORD));
}
