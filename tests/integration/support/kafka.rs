//! A real Kafka-protocol broker and an independent consumer for the Kafka
//! sink's tests: `tansu` (an Apache-Kafka-API broker from crates.io, memory
//! storage) started by each test on a free loopback port, and Debian's
//! `kcat` (librdkafka's command-line client, not swantrail's code) to read
//! back what arrived. `cargo xtask test` installs both; without them these
//! tests fail and say how to get them, since passing would claim a broker
//! was checked.

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The tansu binary: the one `cargo xtask deps` installed (under the home
/// directory's cache, see xtask/src/main.rs), else one on PATH.
pub fn tansu_binary() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME") {
        let installed = Path::new(&home).join(".cache/swantrail/tools/bin/tansu");
        if installed.exists() {
            return installed;
        }
    }
    if let Some(found) = on_path("tansu") {
        return found;
    }
    panic!(
        "tansu is not installed: the Kafka sink's tests need it as their broker; run `cargo xtask deps` (it runs `cargo install tansu --locked` into ~/.cache/swantrail/tools)"
    );
}

/// kcat, the independent consumer.
pub fn kcat_binary() -> PathBuf {
    on_path("kcat").unwrap_or_else(|| {
        panic!("kcat is not installed: the Kafka sink's tests read records back with it; run `cargo xtask deps` as root (apt-get install kcat)")
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// How a broker is started.
#[derive(Clone, Default)]
pub struct BrokerOptions {
    /// `--cert` and `--key`: TLS on the listener.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--authentication`: SASL required.
    pub authentication: bool,
    /// The `host:port` the broker tells clients to connect to, when not
    /// its own (a [`TlsFront`] in front of it).
    pub advertised: Option<String>,
}

/// A tansu broker with memory storage on a loopback port; killed when dropped.
pub struct Broker {
    child: Option<Child>,
    /// The port it listens on, kept across a restart.
    pub port: u16,
    log: PathBuf,
    options: BrokerOptions,
}

impl Broker {
    /// Start a broker on a free port, its output in `dir/tansu.log`, and
    /// wait until it accepts connections.
    pub fn start(dir: &Path, options: BrokerOptions) -> Broker {
        let mut broker = Broker {
            child: None,
            port: free_port(),
            log: dir.join("tansu.log"),
            options,
        };
        broker.spawn();
        broker
    }

    /// `host:port` for `brokers` and kcat.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the broker's log file");
        let mut command = Command::new(tansu_binary());
        let advertised = match &self.options.advertised {
            Some(address) => format!("tcp://{address}"),
            None => self.url(),
        };
        command
            .arg("broker")
            .args(["--listener-url", &self.url()])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some((cert, key)) = &self.options.tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if self.options.authentication {
            command.arg("--authentication");
        }
        self.child = Some(command.spawn().expect("start tansu"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "tansu exited ({status}) before it listened; its log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 60 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's own output.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the broker: its records go with it (memory storage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Create `topic` with `partitions` partitions (tansu creates no topic
    /// by itself), retrying while the broker is still starting.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(tansu_binary())
                .args(["topic", "create", "--broker", &self.url()])
                .args(["--partitions", &partitions.to_string(), topic])
                .output()
                .expect("run tansu topic create");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tansu topic create {topic} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One record as kcat read it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The partition.
    pub partition: i64,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record key.
    pub key: Option<String>,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The value: the event's NDJSON line.
    pub value: String,
}

impl Record {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every record of `topic` from the beginning, read by kcat until the end
/// of every partition; `extra` are kcat options (`-X` for TLS or SASL).
pub fn read_topic(address: &str, topic: &str, extra: &[&str]) -> Vec<Record> {
    let out = Command::new(kcat_binary())
        .args([
            "-C",
            "-b",
            address,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-J",
            "-q",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run kcat");
    // kcat says so on stderr when the topic or broker is not there yet;
    // the caller waits for the records it expects.
    let text = String::from_utf8_lossy(&out.stdout);
    // Whole lines only: kcat ends each record with a newline.
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let json: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("kcat printed a line that is not JSON ({e}): {line}"));
            let text = |v: &Value| v.as_str().map(str::to_string);
            let headers = json["headers"]
                .as_array()
                .map(|h| {
                    h.chunks(2)
                        .map(|pair| {
                            (
                                text(&pair[0]).unwrap_or_default(),
                                pair.get(1).and_then(text).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Record {
                partition: json["partition"].as_i64().unwrap_or(-1),
                offset: json["offset"].as_i64().unwrap_or(-1),
                key: text(&json["key"]),
                headers,
                value: text(&json["payload"]).unwrap_or_default(),
            }
        })
        .collect()
}

/// Read `topic` until `done` holds for its records, at most `limit`.
pub fn wait_for_records(
    address: &str,
    topic: &str,
    extra: &[&str],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let deadline = Instant::now() + limit;
    loop {
        let records = read_topic(address, topic, extra);
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} records read",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// TLS in front of a broker: tansu 0.6.0 takes `--cert` and `--key` but
/// does not use them (its listener stays plaintext; see the Kafka tests),
/// so the TLS tests put a rustls server on its own loopback port that
/// terminates TLS and passes the Kafka bytes on to the broker, as a TLS
/// load balancer in front of brokers does. The handshake librdkafka makes
/// is real; only the broker behind it is plaintext.
pub struct TlsFront {
    /// The port clients connect to with TLS (advertise it as the broker's).
    pub port: u16,
    listener: Option<std::net::TcpListener>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Take a free port now, so the broker can advertise it before it starts.
    pub fn bind() -> TlsFront {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        TlsFront {
            port: listener.local_addr().expect("its address").port(),
            listener: Some(listener),
            stop: None,
            thread: None,
        }
    }

    /// Serve TLS with `cert` and `key` (PEM), passing every connection on
    /// to `127.0.0.1:upstream`.
    pub fn serve(&mut self, cert: &Path, key: &Path, upstream: u16) {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("the server key");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a TLS server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = self.listener.take().expect("serve once");
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.thread = Some(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the TLS front");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                // A refused handshake (the client's CA or
                                // name check) just ends the connection.
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut broker) =
                                    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)).await
                                else {
                                    return;
                                };
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                            });
                        }
                        _ = &mut stopped => break,
                    }
                }
            });
        }));
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
