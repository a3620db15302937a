//! Receivers for the HTTP sink's tests: real HTTP/1.1 servers on loopback
//! that speak each protocol as its documentation says, and can be scripted
//! to fail.
//!
//! * Elasticsearch `_bulk` (docs "Bulk API"): NDJSON action/document pairs
//!   ending in a newline; into a data stream (`logs-*-*`) only `create` is
//!   allowed; `create` of an existing `_id` is item status 409
//!   `version_conflict_engine_exception`; a document without `@timestamp`
//!   is refused by a data stream; the answer has `errors` and one item per
//!   action, in order. Documents are kept by `_id`.
//! * Splunk HEC (docs "Format events for HTTP Event Collector" and its
//!   status codes): `Authorization: Splunk <token>`; concatenated JSON
//!   objects each with an `event`; `{"text":"Success","code":0}`; 401 code 2
//!   no token, 403 code 4 bad token, 400 code 6 invalid data format and
//!   code 12 event field required with `invalid-event-number` (the events
//!   before it are indexed), 503 code 9 server busy.
//! * OTLP/HTTP logs (OTLP specification, "OTLP/HTTP"): POST `/v1/logs`,
//!   `application/json` (JSON Protobuf encoding) or
//!   `application/x-protobuf`, others 415; the answer is an
//!   ExportLogsServiceResponse, with `partialSuccess` when records are refused.
//! * NDJSON: any 2xx for lines of JSON.
//!
//! Every request is recorded (time, headers, decoded body, whether it was
//! gzip) so tests can measure Retry-After and check compression.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The protocol a receiver speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    Ndjson,
    Elasticsearch,
    SplunkHec { token: String },
    Otlp,
}

/// A scripted answer to the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Whatever the protocol answers.
    Normal,
    /// This status and body, with `Retry-After` if given; nothing is stored.
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// Drop the connection without an answer.
    Close,
    /// Wait this long, then answer normally.
    Stall(Duration),
    /// Elasticsearch: these item statuses for the first items (201 = store normally).
    Items(Vec<u16>),
    /// OTLP: take the records but say this many were refused.
    PartialSuccess(u64),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub gzip: bool,
    pub body: Vec<u8>,
    pub status: u16,
}

#[derive(Default)]
pub struct State {
    pub script: VecDeque<Reply>,
    pub requests: Vec<Seen>,
    /// Elasticsearch documents by `_id`: (index, document).
    pub docs: BTreeMap<String, (String, Value)>,
    /// Event lines taken (ndjson, HEC events, OTLP bodies), in arrival order.
    pub events: Vec<Value>,
    /// Expected `Authorization` value, if the receiver checks one.
    pub authorization: Option<String>,
    /// Answer this when nothing is scripted (e.g. 503 for a long outage).
    pub default_reply: Option<Reply>,
    /// Benchmark mode (NDJSON and `_bulk`): check that every line is JSON
    /// and count it, but keep neither documents nor bodies. A receiver that
    /// builds and stores 200,000 parsed documents in the sink's process
    /// measures itself, not the sink.
    pub counting: bool,
    /// Events taken in counting mode.
    pub counted: u64,
    /// Decoded body bytes of every request, in any mode.
    pub decoded_bytes: u64,
    /// Answer 413 to a request whose body, as sent, is longer than this, as
    /// nginx does past `client_max_body_size` (before any script or check).
    pub max_body_bytes: Option<usize>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    protocol: Protocol,
}

impl Receiver {
    /// Starts a receiver on a free loopback port (needs a tokio runtime).
    pub async fn start(protocol: Protocol) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, protocol, Arc::new(Mutex::new(State::default())))
    }

    /// Serves on `listener`; `state` may be shared with an earlier receiver on
    /// the same port (a server that comes back).
    pub fn serve(listener: TcpListener, protocol: Protocol, state: Arc<Mutex<State>>) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver {
            addr,
            state,
            protocol,
        };
        let server = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { server.handle(req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn docs(&self) -> BTreeMap<String, (String, Value)> {
        self.state.lock().unwrap().docs.clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    /// Waits until `done` holds for the state, at most `limit`.
    pub async fn wait(&self, limit: Duration, what: &str, done: impl Fn(&State) -> bool) {
        let until = Instant::now() + limit;
        loop {
            if done(&self.state.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let at = Instant::now();
        let path = req.uri().path().to_string();
        let headers: BTreeMap<String, String> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let raw = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let limit = self.state.lock().unwrap().max_body_bytes;
        if limit.is_some_and(|limit| raw.len() > limit) {
            self.record(at, &path, &headers, false, &raw, 413);
            let page = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
            return Ok(Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from(page)))
                .unwrap());
        }
        let gzip = headers.get("content-encoding").is_some_and(|e| e == "gzip");
        let body = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
            out
        } else {
            raw.to_vec()
        };
        let reply = {
            let mut state = self.state.lock().unwrap();
            state
                .script
                .pop_front()
                .or_else(|| state.default_reply.clone())
                .unwrap_or(Reply::Normal)
        };
        let reply = match reply {
            Reply::Close => {
                self.record(at, &path, &headers, gzip, &body, 0);
                return Err(std::io::Error::other("scripted close"));
            }
            Reply::Stall(d) => {
                tokio::time::sleep(d).await;
                Reply::Normal
            }
            other => other,
        };
        let (status, answer, retry_after) = match reply {
            Reply::Status {
                status,
                body,
                retry_after,
            } => (status, body, retry_after),
            reply => {
                let (s, b) = self.answer(&path, &headers, &body, reply);
                (s, b, None)
            }
        };
        self.record(at, &path, &headers, gzip, &body, status);
        let mut response = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json");
        if let Some(r) = retry_after {
            response = response.header("retry-after", r);
        }
        Ok(response.body(Full::new(Bytes::from(answer))).unwrap())
    }

    fn record(
        &self,
        at: Instant,
        path: &str,
        headers: &BTreeMap<String, String>,
        gzip: bool,
        body: &[u8],
        status: u16,
    ) {
        let mut state = self.state.lock().unwrap();
        state.decoded_bytes += body.len() as u64;
        let body = if state.counting {
            Vec::new()
        } else {
            body.to_vec()
        };
        state.requests.push(Seen {
            at,
            path: path.to_string(),
            headers: headers.clone(),
            gzip,
            body,
            status,
        });
    }

    fn answer(
        &self,
        path: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        reply: Reply,
    ) -> (u16, String) {
        let expected = self.state.lock().unwrap().authorization.clone();
        if let Some(expected) = expected
            && headers.get("authorization") != Some(&expected)
        {
            return (401, r#"{"error":"unauthorized"}"#.into());
        }
        match &self.protocol {
            Protocol::Ndjson => self.ndjson(body),
            Protocol::Elasticsearch => self.bulk(path, headers, body, reply),
            Protocol::SplunkHec { token } => self.hec(path, headers, body, token),
            Protocol::Otlp => self.otlp(path, headers, body, reply),
        }
    }

    fn ndjson(&self, body: &[u8]) -> (u16, String) {
        if self.state.lock().unwrap().counting {
            let mut n = 0;
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err() {
                    return (400, "not NDJSON".into());
                }
                n += 1;
            }
            self.state.lock().unwrap().counted += n;
            return (200, "ok".into());
        }
        let text = String::from_utf8_lossy(body);
        let mut values = Vec::new();
        for line in text.lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => values.push(v),
                Err(_) => return (400, "not NDJSON".into()),
            }
        }
        self.state.lock().unwrap().events.extend(values);
        (200, "ok".into())
    }

    fn bulk(
        &self,
        path: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        reply: Reply,
    ) -> (u16, String) {
        let error = |status: u16, kind: &str, reason: &str| {
            (status, json!({"error":{"root_cause":[{"type":kind,"reason":reason}],"type":kind,"reason":reason},"status":status}).to_string())
        };
        if !path.ends_with("/_bulk") {
            return error(404, "resource_not_found_exception", "no handler");
        }
        let content_type = headers
            .get("content-type")
            .map(String::as_str)
            .unwrap_or("");
        if !(content_type.starts_with("application/x-ndjson")
            || content_type.starts_with("application/json"))
        {
            return (406, json!({"error":format!("Content-Type header [{content_type}] is not supported"),"status":406}).to_string());
        }
        if !body.ends_with(b"\n") {
            return error(
                400,
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]",
            );
        }
        if self.state.lock().unwrap().counting {
            return self.bulk_counting(body);
        }
        let text = String::from_utf8_lossy(body);
        let mut lines = text.lines();
        let mut items = Vec::new();
        let mut statuses: VecDeque<u16> = match reply {
            Reply::Items(s) => s.into(),
            _ => VecDeque::new(),
        };
        let mut state = self.state.lock().unwrap();
        let mut errors = false;
        while let Some(action_line) = lines.next() {
            let Ok(action) = serde_json::from_str::<Value>(action_line) else {
                return error(
                    400,
                    "x_content_parse_exception",
                    "malformed action/metadata line",
                );
            };
            let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
                return error(
                    400,
                    "illegal_argument_exception",
                    "Malformed action/metadata line",
                );
            };
            let Some(doc_line) = lines.next() else {
                return error(
                    400,
                    "illegal_argument_exception",
                    "The bulk request must be terminated by a newline [\\n]",
                );
            };
            let index = meta["_index"].as_str().unwrap_or("").to_string();
            let id = meta["_id"].as_str().map(str::to_string);
            let data_stream = index.starts_with("logs-") && index.matches('-').count() >= 2;
            let (status, item_error) = match statuses.pop_front().filter(|s| *s != 201) {
                Some(429) => (
                    429,
                    Some(
                        json!({"type":"es_rejected_execution_exception","reason":"rejected execution: queue capacity reached"}),
                    ),
                ),
                Some(s) if s >= 500 => (
                    s,
                    Some(
                        json!({"type":"unavailable_shards_exception","reason":"primary shard is not active"}),
                    ),
                ),
                Some(s) => (
                    s,
                    Some(
                        json!({"type":"document_parsing_exception","reason":"[1:2] failed to parse field [libreswan] of type [keyword]"}),
                    ),
                ),
                None => {
                    let doc = serde_json::from_str::<Value>(doc_line)
                        .ok()
                        .filter(Value::is_object);
                    match doc {
                        None => (
                            400,
                            Some(
                                json!({"type":"document_parsing_exception","reason":"failed to parse"}),
                            ),
                        ),
                        Some(_) if data_stream && op != "create" => (
                            400,
                            Some(
                                json!({"type":"illegal_argument_exception","reason":format!("only write ops with an op_type of create are allowed in data streams")}),
                            ),
                        ),
                        Some(doc) if data_stream && doc.get("@timestamp").is_none() => (
                            400,
                            Some(
                                json!({"type":"illegal_argument_exception","reason":"data stream timestamp field [@timestamp] is missing"}),
                            ),
                        ),
                        Some(doc) => {
                            let id = id
                                .clone()
                                .unwrap_or_else(|| format!("auto-{}", state.docs.len()));
                            if op == "create" && state.docs.contains_key(&id) {
                                (
                                    409,
                                    Some(
                                        json!({"type":"version_conflict_engine_exception","reason":format!("[{id}]: version conflict, document already exists (current version [1])")}),
                                    ),
                                )
                            } else {
                                state.docs.insert(id, (index.clone(), doc));
                                (201, None)
                            }
                        }
                    }
                }
            };
            let mut item = json!({"_index": index, "_id": id, "status": status});
            if let Some(e) = item_error {
                errors = true;
                item["error"] = e;
            } else {
                item["result"] = json!("created");
                item["_version"] = json!(1);
            }
            items.push(json!({ op.clone(): item }));
        }
        (
            200,
            json!({"took": 1, "errors": errors, "items": items}).to_string(),
        )
    }

    /// `_bulk` in counting mode: every document created, nothing kept.
    fn bulk_counting(&self, body: &[u8]) -> (u16, String) {
        let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let mut items = Vec::new();
        while let Some(action_line) = lines.next() {
            let (Ok(action), Some(doc)) =
                (serde_json::from_slice::<Value>(action_line), lines.next())
            else {
                return (400, "malformed bulk body".into());
            };
            if serde_json::from_slice::<serde::de::IgnoredAny>(doc).is_err() {
                return (400, "malformed document".into());
            }
            let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
                return (400, "malformed action".into());
            };
            items.push(json!({ op.clone(): {"_index": meta["_index"], "_id": meta["_id"], "status": 201, "result": "created", "_version": 1} }));
        }
        self.state.lock().unwrap().counted += items.len() as u64;
        (
            200,
            json!({"took": 1, "errors": false, "items": items}).to_string(),
        )
    }

    fn hec(
        &self,
        path: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        token: &str,
    ) -> (u16, String) {
        let answer = |status: u16, text: &str, code: u32| {
            (status, json!({"text": text, "code": code}).to_string())
        };
        if !path.starts_with("/services/collector") {
            return (
                404,
                json!({"text":"The requested URL was not found on this server.","code":404})
                    .to_string(),
            );
        }
        match headers.get("authorization") {
            None => return answer(401, "Token is required", 2),
            Some(v) if !v.starts_with("Splunk ") => return answer(401, "Invalid authorization", 3),
            Some(v) if v["Splunk ".len()..] != *token => return answer(403, "Invalid token", 4),
            Some(_) => {}
        }
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return answer(400, "No data", 5);
        }
        let mut taken = Vec::new();
        let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
        let mut n = 0;
        let mut failure = None;
        loop {
            match stream.next() {
                None => break,
                Some(Err(_)) => {
                    failure = Some((6, "Invalid data format"));
                    break;
                }
                Some(Ok(v)) => match v.get("event") {
                    None => {
                        failure = Some((12, "Event field is required"));
                        break;
                    }
                    Some(e) if e.is_null() || e == "" => {
                        failure = Some((13, "Event field cannot be blank"));
                        break;
                    }
                    Some(_) => taken.push(v),
                },
            }
            n += 1;
        }
        self.state.lock().unwrap().events.extend(taken);
        match failure {
            None => answer(200, "Success", 0),
            Some((code, text)) => (
                400,
                json!({"text": text, "code": code, "invalid-event-number": n}).to_string(),
            ),
        }
    }

    fn otlp(
        &self,
        path: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
        reply: Reply,
    ) -> (u16, String) {
        if path != "/v1/logs" {
            return (404, r#"{"code":5,"message":"not found"}"#.into());
        }
        let content_type = headers
            .get("content-type")
            .map(String::as_str)
            .unwrap_or("");
        if content_type.starts_with("application/x-protobuf") {
            // Accepted as the spec requires; these tests only send JSON.
            return (200, String::new());
        }
        if !content_type.starts_with("application/json") {
            return (
                415,
                r#"{"code":3,"message":"unsupported media type"}"#.into(),
            );
        }
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return (
                400,
                r#"{"code":3,"message":"cannot unmarshal the request"}"#.into(),
            );
        };
        let mut records = Vec::new();
        for resource in request["resourceLogs"].as_array().into_iter().flatten() {
            for scope in resource["scopeLogs"].as_array().into_iter().flatten() {
                for record in scope["logRecords"].as_array().into_iter().flatten() {
                    let mut r = record.clone();
                    r["resource"] = resource["resource"].clone();
                    records.push(r);
                }
            }
        }
        let refused = match reply {
            Reply::PartialSuccess(n) => n as usize,
            _ => 0,
        };
        let keep = records.len().saturating_sub(refused);
        self.state
            .lock()
            .unwrap()
            .events
            .extend(records.into_iter().take(keep));
        if refused > 0 {
            (200, json!({"partialSuccess":{"rejectedLogRecords": refused.to_string(), "errorMessage":"records too old"}}).to_string())
        } else {
            (200, "{}".into())
        }
    }
}
