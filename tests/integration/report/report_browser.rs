//! `swantrail report --format html` in a real headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs): the rendered DOM has every
//! tunnel's row and timeline with JavaScript on and off, the page logs no
//! console message and makes no network request, and a screenshot of it is
//! kept under `target/`. Without Chromium the test fails: the page is then
//! unchecked, which must not look like a pass.

use crate::support::{root, swantrail_fed};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The HTML report of the west lab run and east's restart together.
fn html_report() -> String {
    let mut ndjson = String::new();
    for (host, dir) in [
        ("west", "examples/lab-4.10/series"),
        ("east", "tests/fixtures/lab-east-restart"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_swantrail"))
            .args(["replay", "--hostname", host])
            .arg(root().join(dir))
            .stderr(Stdio::null())
            .output()
            .expect("run swantrail replay");
        assert!(out.status.success());
        ndjson.push_str(&String::from_utf8(out.stdout).expect("utf-8"));
    }
    let out = swantrail_fed(&["report", "--format", "html"], &ndjson);
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8 html")
}

/// One request the browser sent, and whether it names a page that asked
/// for it (`Referer`/`Origin`), as a page's subresources and fetches do.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    from_page: bool,
}

/// Hosts Chromium itself talks to even with background networking
/// disabled (component updater, network time, sign-in); no page asks for
/// these, and a page's own requests would carry a `Referer`. (Sockets it
/// opens ahead and never uses arrive as empty requests.)
const BROWSER_OWN: [&str; 6] = [
    "content-autofill.googleapis.com",
    "update.googleapis.com",
    "redirector.gvt1.com",
    "clients2.google.com",
    "accounts.google.com",
    "edgedl.me.gvt1.com",
];

/// A one-page HTTP server that is also Chromium's proxy: every request the
/// browser makes, to this page or anywhere else, arrives here and is kept.
fn serve(page: String) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // One thread a connection: Chromium opens sockets it may never use.
            let log = Arc::clone(&log);
            let page = page.clone();
            std::thread::spawn(move || answer(stream, &page, port, &log));
        }
    });
    (port, seen)
}

/// Reads one request, records it, and answers with the page or a 404.
fn answer(mut stream: std::net::TcpStream, page: &str, port: u16, log: &Mutex<Vec<Request>>) {
    {
        {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                return;
            }
            let mut from_page = false;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                    break;
                }
                let name = header.to_ascii_lowercase();
                from_page |= name.starts_with("referer:") || name.starts_with("origin:");
            }
            log.lock().expect("log").push(Request {
                line: request.trim().to_string(),
                from_page,
            });
            let page_url = format!("GET http://127.0.0.1:{port}/report.html");
            let ok = request.starts_with(&format!("{page_url} "));
            let scripts_off = request.starts_with(&format!("{page_url}?scripts=off "));
            let ok = ok || scripts_off;
            // What a browser with JavaScript off does to the page: run none of
            // its scripts (Chromium's own switches for it either do not stop
            // inline scripts in headless mode or stop --dump-dom too).
            let policy = if scripts_off {
                "Content-Security-Policy: script-src 'none'\r\n"
            } else {
                ""
            };
            let body = if ok { page } else { "" };
            let status = if ok { "200 OK" } else { "404 Not Found" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{policy}Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

/// Runs Chromium headless on the page; returns (stdout, stderr).
fn chromium(port: u16, page: &str, extra: &[&str]) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium; \
         .ci/run does) to check the HTML report in a real browser"
    );
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,900",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}/{page}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    out.read_to_string(&mut stdout).expect("chromium stdout");
    let status = child.wait().expect("chromium exit");
    stderr.push_str(&t.join().expect("stderr reader"));
    assert!(status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// The `data-tunnel` values of the elements with this opening text.
fn tunnels_in(dom: &str, opening: &str) -> Vec<String> {
    dom.match_indices(opening)
        .filter_map(|(i, _)| {
            let rest = &dom[i..];
            let start = rest.find("data-tunnel=\"")? + "data-tunnel=\"".len();
            let end = rest[start..].find('"')?;
            let host = rest.find("data-host=\"").map(|h| {
                let h = h + "data-host=\"".len();
                rest[h..h + rest[h..].find('"').unwrap_or(0)].to_string()
            });
            Some(format!(
                "{}@{}",
                &rest[start..start + end],
                host.unwrap_or_default()
            ))
        })
        .collect()
}

/// The timeline's rows top to bottom: `gateway HOST` for a gateway's band,
/// `TUNNEL@HOST` for a tunnel.
fn timeline_order(dom: &str) -> Vec<String> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..start + tag[start..].find('"')?].to_string())
    };
    dom.match_indices("<tr class=\"")
        .filter_map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>')?];
            let host = attribute(tag, "data-host")?;
            Some(match attribute(tag, "data-tunnel") {
                Some(tunnel) => format!("{tunnel}@{host}"),
                None => format!("gateway {host}"),
            })
        })
        .collect()
}

/// Each timeline row's text, from its opening tag to its end.
fn timeline_rows(dom: &str) -> Vec<&str> {
    dom.match_indices("<tr class=\"tl\"")
        .map(|(i, _)| {
            let rest = &dom[i..];
            &rest[..rest.find("</tr>").unwrap_or(rest.len())]
        })
        .collect()
}

fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .collect()
}

#[test]
fn html_report_renders_every_tunnel_in_chromium_with_and_without_javascript() {
    let page = html_report();
    let expected = [
        "v1-deadpeer@west",
        "v1-tun@west",
        "v2-deadpeer@west",
        "v2-short@west",
        "v2-tun@west",
        "v1-tun@east",
        "v2-short@east",
        "v2-tun@east",
    ];
    let (port, requests) = serve(page);
    let mut doms = Vec::new();
    for js in [true, false] {
        let page = if js {
            "report.html"
        } else {
            "report.html?scripts=off"
        };
        let (dom, stderr) = chromium(port, page, &["--dump-dom", "--virtual-time-budget=2000"]);
        let mut console = console_lines(&stderr);
        if !js {
            // The one message allowed, and expected: the browser saying it
            // blocked the page's script (the filter box below shows it).
            let before = console.len();
            console.retain(|l| !l.contains("Executing inline script violates"));
            assert_eq!(
                before - console.len(),
                1,
                "the script was blocked: {stderr}"
            );
        }
        assert!(
            console.is_empty(),
            "console messages (js {js}): {console:?}"
        );
        let mut figures = tunnels_in(&dom, "<tr data-tunnel=");
        let mut timeline = tunnels_in(&dom, "<tr class=\"tl\"");
        figures.sort();
        timeline.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(figures, want, "figure rows (js {js})");
        assert_eq!(timeline, want, "timeline rows (js {js})");
        // Each gateway's band (restarts, unreachable) right above its tunnels.
        assert_eq!(
            timeline_order(&dom),
            [
                "gateway east",
                "v1-tun@east",
                "v2-short@east",
                "v2-tun@east",
                "gateway west",
                "v1-deadpeer@west",
                "v1-tun@west",
                "v2-deadpeer@west",
                "v2-short@west",
                "v2-tun@west",
            ],
            "timeline order (js {js})"
        );
        for row in timeline_rows(&dom) {
            let up = row.matches("class=\"up\"").count();
            if row.contains("deadpeer") {
                assert_eq!(up, 0, "a dead peer is never up: {row}");
                assert!(row.contains("class=\"not-up\""));
            } else {
                // Every real tunnel here went down once and came back.
                assert_eq!(up, 2, "two up periods: {row}");
                assert!(row.contains("class=\"gap-"), "a coloured gap: {row}");
            }
        }
        assert!(
            dom.contains("class=\"restart\""),
            "east's pluto restart in the band"
        );
        assert!(dom.contains("(all times UTC)"));
        // The script unhides the filter box; without it the box stays hidden.
        let filter_hidden = dom.contains("<p id=\"filter-box\" hidden");
        assert_eq!(filter_hidden, !js, "filter box hidden iff js off");
        doms.push(dom);
    }
    let target = root().join("target");
    let shot: PathBuf = target.join("report-timeline.png");
    let _ = std::fs::remove_file(&shot);
    let (_, stderr) = chromium(
        port,
        "report.html",
        &[&format!("--screenshot={}", shot.display())],
    );
    assert!(console_lines(&stderr).is_empty(), "{stderr}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    std::thread::sleep(Duration::from_millis(200));
    let requests = requests.lock().expect("requests").clone();
    let page_load = format!("GET http://127.0.0.1:{port}/report.html");
    let by_page: Vec<&Request> = requests
        .iter()
        .filter(|r| {
            let browser_own = BROWSER_OWN.iter().any(|h| {
                r.line.contains(&format!(" http://{h}/")) || r.line.contains(&format!(" {h}:443 "))
            });
            let unused = r.line.is_empty();
            r.from_page || !(r.line.starts_with(&page_load) || browser_own || unused)
        })
        .collect();
    assert!(
        by_page.is_empty(),
        "the page made network requests: {by_page:?}"
    );
    let loads = requests
        .iter()
        .filter(|r| r.line.starts_with(&page_load))
        .count();
    assert_eq!(loads, 3, "one page load per run: {requests:?}");
}
