//! Real syslog receivers for the syslog sink's tests: rsyslog and syslog-ng,
//! each started by the test on loopback (or a socket in a temp dir) with a
//! config the test writes, writing what its own parser extracted as one JSON
//! object per message. A missing receiver binary fails the test with what to
//! install; it never lets a test pass without a receiver.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swantrail::config::{RetrySettings, SpoolSettings};
use swantrail::sink::Delivery;
use swantrail::sink::syslog::{SyslogSink, SyslogSinkConfig, Transport};

/// Which daemon receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rsyslog,
    SyslogNg,
}

/// How the receiver listens.
#[derive(Debug, Clone)]
pub enum Listen {
    Udp,
    /// TCP with octet counting (RFC 6587 §3.4.1).
    Tcp,
    /// TCP with newline framing: syslog-ng needs its `network()` driver for it.
    TcpNewline,
    /// TCP, newline framing, RFC 3164 messages (syslog-ng's `network()` default parser).
    TcpRfc3164,
    /// TLS with this certificate and key (PEM files).
    Tls {
        cert: PathBuf,
        key: PathBuf,
    },
    /// A datagram socket at this path.
    Unix(PathBuf),
}

/// What the receiver parsed out of one message.
#[derive(Debug, Clone)]
pub struct Received {
    pub app_name: String,
    pub msgid: String,
    pub hostname: String,
    pub severity: u8,
    pub facility: u8,
    /// The params of the `swantrail@32473` SD element, as the receiver read them.
    pub sd: BTreeMap<String, String>,
    pub msg: String,
}

/// A running receiver; killed on drop.
pub struct Receiver {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub listen: Listen,
    pub port: u16,
    child: Option<Child>,
}

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

fn rsyslogd() -> PathBuf {
    let path = std::env::var_os("SWANTRAIL_RSYSLOGD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/rsyslogd"));
    assert!(
        path.exists(),
        "rsyslogd not found at {}: run `cargo xtask test` (as root it installs the Debian packages rsyslog and rsyslog-gnutls), or set SWANTRAIL_RSYSLOGD",
        path.display()
    );
    path
}

/// The root syslog-ng runs from: `$SWANTRAIL_SYSLOG_NG_ROOT`, else
/// `target/debian/syslog-ng` (where `cargo xtask test` unpacks syslog-ng-core, since
/// the package conflicts with rsyslog), else an installed one.
fn syslog_ng_root() -> PathBuf {
    let candidates = [
        std::env::var_os("SWANTRAIL_SYSLOG_NG_ROOT").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian/syslog-ng")),
        Some(PathBuf::from("/")),
    ];
    for root in candidates.into_iter().flatten() {
        if root.join("usr/sbin/syslog-ng").exists() {
            return root;
        }
    }
    panic!(
        "syslog-ng not found: run `cargo xtask test`, which unpacks the Debian package syslog-ng-core into target/debian/syslog-ng, or set SWANTRAIL_SYSLOG_NG_ROOT"
    );
}

impl Receiver {
    /// Start a receiver and wait until it listens.
    pub fn start(kind: Kind, listen: Listen) -> Receiver {
        let port = free_port(matches!(listen, Listen::Udp));
        let mut receiver = Receiver {
            kind,
            dir: tempfile::tempdir().unwrap(),
            listen,
            port,
            child: None,
        };
        receiver.write_config();
        receiver.run();
        receiver
    }

    /// The address a sink sends to.
    pub fn address(&self) -> String {
        match &self.listen {
            Listen::Unix(path) => path.display().to_string(),
            _ => format!("127.0.0.1:{}", self.port),
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("received.ndjson")
    }

    fn write_config(&self) {
        let dir = self.dir.path().display().to_string();
        let out = self.out().display().to_string();
        let port = self.port;
        let text = match self.kind {
            Kind::Rsyslog => {
                let mut global = format!("global(workDirectory=\"{dir}\" maxMessageSize=\"64k\"");
                let input = match &self.listen {
                    Listen::Udp => format!(
                        "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")"
                    ),
                    Listen::Tcp | Listen::TcpNewline | Listen::TcpRfc3164 => format!(
                        "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")"
                    ),
                    Listen::Tls { cert, key } => {
                        global.push_str(&format!(
                            " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\" DefaultNetstreamDriverCAFile=\"{}\"",
                            cert.display(),
                            key.display(),
                            cert.display()
                        ));
                        format!(
                            "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")"
                        )
                    }
                    Listen::Unix(path) => format!(
                        "module(load=\"imuxsock\" SysSock.Use=\"off\")\ninput(type=\"imuxsock\" Socket=\"{}\" UseSpecialParser=\"off\" ParseHostname=\"on\" ruleset=\"r\")",
                        path.display()
                    ),
                };
                global.push(')');
                format!(
                    "{global}\nmodule(load=\"mmpstrucdata\")\n{input}\ntemplate(name=\"json\" type=\"string\" string=\"%jsonmesg%\\n\")\nruleset(name=\"r\") {{\n  action(type=\"mmpstrucdata\")\n  action(type=\"omfile\" file=\"{out}\" template=\"json\")\n}}\n"
                )
            }
            Kind::SyslogNg => {
                let source = match &self.listen {
                    Listen::Udp => {
                        format!("syslog(ip(127.0.0.1) port({port}) transport(\"udp\"))")
                    }
                    Listen::Tcp => format!(
                        "syslog(ip(127.0.0.1) port({port}) transport(\"tcp\") max-connections(100))"
                    ),
                    Listen::TcpNewline => format!(
                        "network(ip(127.0.0.1) port({port}) transport(\"tcp\") flags(syslog-protocol) max-connections(100))"
                    ),
                    Listen::TcpRfc3164 => format!(
                        "network(ip(127.0.0.1) port({port}) transport(\"tcp\") max-connections(100))"
                    ),
                    Listen::Tls { cert, key } => format!(
                        "syslog(ip(127.0.0.1) port({port}) transport(\"tls\") max-connections(100) tls(cert-file(\"{}\") key-file(\"{}\") peer-verify(optional-untrusted)))",
                        cert.display(),
                        key.display()
                    ),
                    Listen::Unix(path) => {
                        format!("unix-dgram(\"{}\" flags(syslog-protocol))", path.display())
                    }
                };
                format!(
                    "@version: 3.38\noptions {{ keep-hostname(yes); log-msg-size(65536); stats_freq(0); }};\nsource s {{ {source}; }};\ndestination d {{ file(\"{out}\" template(\"$(format-json --scope rfc5424 --scope sdata --key HOST --key LEVEL_NUM --key FACILITY_NUM)\\n\")); }};\nlog {{ source(s); destination(d); }};\n"
                )
            }
        };
        std::fs::write(self.dir.path().join("receiver.conf"), text).unwrap();
    }

    fn run(&mut self) {
        let dir = self.dir.path();
        let conf = dir.join("receiver.conf");
        let log =
            std::fs::File::create(dir.join(format!("receiver-{}.log", fastrand::u32(..)))).unwrap();
        let mut command = match self.kind {
            Kind::Rsyslog => {
                let mut c = Command::new(rsyslogd());
                c.arg("-n")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-i")
                    .arg(dir.join("rsyslogd.pid"));
                c
            }
            Kind::SyslogNg => {
                let root = syslog_ng_root();
                let lib = root.join("usr/lib/syslog-ng");
                let modules = std::fs::read_dir(&lib)
                    .unwrap()
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.is_dir() && p.join("libafsocket.so").exists())
                    .unwrap_or_else(|| {
                        panic!("no syslog-ng module directory under {}", lib.display())
                    });
                let mut c = Command::new(root.join("usr/sbin/syslog-ng"));
                c.env("LD_LIBRARY_PATH", &lib)
                    .arg("-F")
                    .arg("--no-caps")
                    .arg("-f")
                    .arg(&conf)
                    .arg(format!("--module-path={}", modules.display()))
                    .arg(format!("--persist-file={}", dir.join("persist").display()))
                    .arg(format!("--pidfile={}", dir.join("syslog-ng.pid").display()))
                    .arg(format!("--control={}", dir.join("ctl").display()));
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "{:?} exited at start ({status}); its log:\n{}",
                    self.kind,
                    self.logs()
                );
            }
            let ready = match &self.listen {
                Listen::Tcp | Listen::TcpNewline | Listen::TcpRfc3164 | Listen::Tls { .. } => {
                    std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                }
                Listen::Unix(path) => path.exists(),
                Listen::Udp => self
                    .dir
                    .path()
                    .read_dir()
                    .unwrap()
                    .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".pid")),
            };
            if ready {
                // UDP and unix give no sign of a bound socket: give the daemon a moment.
                std::thread::sleep(Duration::from_millis(500));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not start listening; its log:\n{}",
                self.kind,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The receiver's own log lines (for failure messages).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in self.dir.path().read_dir().unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("receiver-") {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    /// Stop it (SIGTERM, then wait).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).unwrap();
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            child.wait().unwrap();
        }
        if let Listen::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Start it again on the same port with the same config; output is appended.
    pub fn restart(&mut self) {
        self.run();
    }

    /// What it wrote so far, parsed.
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(self.out()).unwrap_or_default();
        // Only whole lines: the receiver may be halfway through writing one.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("receiver wrote a line that is not JSON ({e}): {line}")
                });
                self.normalize(&v)
            })
            .collect()
    }

    /// How many messages it wrote so far, without parsing them.
    pub fn count(&self) -> usize {
        std::fs::read(self.out())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    /// Wait until at least `count` messages arrived (or the timeout passed).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn normalize(&self, v: &Value) -> Received {
        let s = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |key: &str| s(key).parse::<u8>().unwrap_or(255);
        let map = |v: Option<&Value>| -> BTreeMap<String, String> {
            v.and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        match self.kind {
            Kind::Rsyslog => Received {
                // For RFC 3164, rsyslog's app-name is the TAG's program.
                app_name: match s("protocol-version").as_str() {
                    "1" => s("app-name"),
                    _ => s("programname"),
                },
                msgid: s("msgid"),
                hostname: s("hostname"),
                severity: n("syslogseverity"),
                facility: n("syslogfacility"),
                sd: map(v.pointer("/$!/rfc5424-sd/swantrail@32473")),
                msg: s("msg"),
            },
            Kind::SyslogNg => Received {
                app_name: s("PROGRAM"),
                msgid: s("MSGID"),
                hostname: s("HOST"),
                severity: n("LEVEL_NUM"),
                facility: n("FACILITY_NUM"),
                sd: map(v.pointer("/_SDATA/swantrail@32473")),
                msg: s("MESSAGE"),
            },
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A test CA and certificates it signed, as PEM files in a temp dir.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, issuer.pem()).unwrap();
        TestCa { dir, ca, issuer }
    }

    /// A server certificate for `names` (DNS names or IPs), written as
    /// `<file>.pem` (chain: leaf then CA) and `<file>.key`.
    pub fn server(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "syslog receiver");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_path = self.dir.path().join(format!("{file}.pem"));
        let key_path = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.issuer.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// A sink config aimed at `receiver`, everything else at its default.
pub fn sink_config(receiver: &Receiver, transport: Transport) -> SyslogSinkConfig {
    let mut config = SyslogSinkConfig::new();
    config.transport = transport;
    config.address = receiver.address();
    if !transport.is_datagram() {
        config.max_message_bytes = None;
    }
    config.spool = fast_spool();
    config.retry = RetrySettings {
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
    };
    config
}

pub fn fast_spool() -> SpoolSettings {
    SpoolSettings {
        batch_max_wait: Duration::from_millis(10),
        ..SpoolSettings::default()
    }
}

/// Delivery to one syslog sink on a spool in `state`.
pub fn delivery(config: SyslogSinkConfig, state: &Path) -> Delivery {
    let name = config.name.clone();
    let (spool, retry) = (config.spool.clone(), config.retry.clone());
    Delivery::builder(state)
        .add_sink(&name, &spool, &retry, SyslogSink::new(config).unwrap())
        .unwrap()
        .start()
}

/// A realistic event (shaped as the docs' `tunnel-down` example) with a given
/// number, connection name and user.
pub fn event(n: u64, connection: &str, user: &str) -> Value {
    let action = [
        "tunnel-up",
        "tunnel-down",
        "negotiation-failed",
        "child-sa-rekeyed",
    ][(n % 4) as usize];
    json!({
        "@timestamp": "2026-11-28T09:25:32Z",
        "ecs": {"version": "8.11.0"},
        "event": {
            "id": format!("{n:032x}"),
            "kind": "event",
            "category": ["network", "session"],
            "type": ["end"],
            "action": action,
            "reason": "deleted",
            "sequence": n,
            "module": "libreswan",
            "dataset": "libreswan.tunnel"
        },
        "observer": {"hostname": "west", "vendor": "libreswan", "product": "libreswan", "type": "vpn", "version": "4.10"},
        "source": {"ip": "192.0.2.1"},
        "destination": {"ip": "192.0.2.2", "port": 500},
        "user": {"name": user},
        "libreswan": {
            "connection": {"name": connection},
            "sa": {"serial": n + 1, "kind": "child"},
            "tunnel": {"bytes_in": 48064, "bytes_out": 48063},
            "pluto": {"generation": 0}
        }
    })
}

/// The severity the docs' table gives an action.
pub fn expected_severity(action: &str) -> u8 {
    match action {
        "negotiation-failed" | "negotiation-stalled" | "pluto-unreachable" | "pluto-restarted" => 4,
        "tunnel-down" | "ike-sa-deleted" | "child-sa-deleted" | "connection-removed" => 5,
        _ => 6,
    }
}

/// The CEF Name the docs give an action: "tunnel-down" is "Tunnel down".
pub fn cef_name(action: &str) -> String {
    let words = action.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// What an SD-PARAM value or a CEF field becomes: control characters are U+FFFD.
pub fn without_controls(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Enqueue `events` in batches of `chunk`.
pub async fn send_all(delivery: &Delivery, events: &[Value], chunk: usize) {
    for part in events.chunks(chunk) {
        let lines: Vec<String> = part.iter().map(Value::to_string).collect();
        delivery.enqueue(&lines).await.unwrap();
    }
}
