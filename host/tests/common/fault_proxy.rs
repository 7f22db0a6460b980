//! A small HTTP/1.1 proxy between an AWS output and moto that records every request and injects
//! the faults AWS produces: throttling, 500s, slow responses, connection resets, Firehose
//! and Kinesis partial failures and CloudWatch `rejectedLogEventsInfo`. Outputs point their `endpoint` at
//! it; it forwards to moto (one connection per request) unless a fault answers first.
//!
//! Faults are queued per API operation (`PutLogEvents`, `PutRecordBatch`, `UploadPart`, …);
//! each matching request takes the next one. What reached moto is recorded, so tests can count
//! every record that was accepted — and prove none was sent twice.

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A fault for one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer "slow down" without forwarding (`ThrottlingException`, Firehose
    /// `ServiceUnavailableException`, S3 `SlowDown` 503).
    Throttle,
    /// Answer HTTP 500 (`InternalFailure` / `InternalError`) without forwarding.
    ServerError,
    /// Wait this long, then forward.
    Slow(Duration),
    /// Reset the connection (RST) without forwarding.
    Reset,
    /// Never answer and never forward (a request cut by the client's shutdown).
    Hang,
    /// Answer `AccessDeniedException` (S3: `AccessDenied`, 403) without forwarding.
    AccessDenied,
    /// PutRecordBatch: forward all but these record indexes; answer 200 with `FailedPutCount`
    /// and `ServiceUnavailableException` entries for them.
    FirehoseFail(Vec<usize>),
    /// PutRecords (Kinesis Data Streams): forward all but these record indexes; answer 200
    /// with `FailedRecordCount` and `ProvisionedThroughputExceededException` entries for them.
    KinesisFail(Vec<usize>),
    /// PutLogEvents: drop the first `too_old` and the last `too_new` events before forwarding
    /// and report them in `rejectedLogEventsInfo`, as CloudWatch does.
    CloudWatchReject {
        /// Events at the start reported as too old.
        too_old: usize,
        /// Events at the end reported as too new.
        too_new: usize,
    },
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The API operation.
    pub operation: String,
    /// The request target (path and query).
    pub target: String,
    /// The request headers.
    pub headers: Vec<(String, String)>,
    /// The body as sent by the client.
    pub body: Vec<u8>,
    /// The body as forwarded to moto (`None` when a fault answered instead).
    pub forwarded: Option<Vec<u8>>,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    faults: HashMap<String, VecDeque<Fault>>,
    always: HashMap<String, Fault>,
    /// CloudWatch log groups whose every request is answered `AccessDeniedException`.
    denied_groups: std::collections::HashSet<String>,
    seen: Vec<Seen>,
}

/// A running proxy (stops with the test process).
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://127.0.0.1:<port>`) on a random loopback port.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://ip:port");
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let _ = serve(conn, upstream, state).await;
                    });
                }
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fault proxy started");
        FaultProxy {
            endpoint: format!("http://{addr}"),
            state,
        }
    }

    /// Apply `faults`, in order, to the next requests of `operation`.
    pub fn inject(&self, operation: &str, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(operation.to_string())
            .or_default()
            .extend(faults);
    }

    /// Apply `fault` to every request of `operation` (after any queued ones), until cleared.
    pub fn always(&self, operation: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(operation.to_string(), fault);
    }

    /// Answer every CloudWatch Logs request for log group `group` with
    /// `AccessDeniedException` (as IAM does for a group the role may not write to), until
    /// [`allow_log_group`](Self::allow_log_group).
    pub fn deny_log_group(&self, group: &str) {
        self.state
            .lock()
            .unwrap()
            .denied_groups
            .insert(group.to_string());
    }

    /// Stop denying `group`.
    pub fn allow_log_group(&self, group: &str) {
        self.state.lock().unwrap().denied_groups.remove(group);
    }

    /// Stop applying faults to `operation`.
    pub fn clear(&self, operation: &str) {
        let mut s = self.state.lock().unwrap();
        s.always.remove(operation);
        s.faults.remove(operation);
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests of `operation` seen so far.
    pub fn seen_op(&self, operation: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.operation == operation)
            .collect()
    }

    /// Faults of `operation` still queued.
    pub fn pending_faults(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .faults
            .get(operation)
            .map_or(0, VecDeque::len)
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AWS operation: from `X-Amz-Target`, a query-protocol `Action`, or the S3 REST shape.
    fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        if let Some(action) = body.split('&').find_map(|p| p.strip_prefix("Action=")) {
            return action.to_string();
        }
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        let has = |k: &str| {
            query
                .split('&')
                .any(|p| p == k || p.starts_with(&format!("{k}=")))
        };
        match (
            self.method.as_str(),
            has("uploadId"),
            has("partNumber"),
            has("uploads"),
        ) {
            ("PUT", true, true, _) => "UploadPart",
            ("POST", _, _, true) => "CreateMultipartUpload",
            ("POST", true, _, _) => "CompleteMultipartUpload",
            ("DELETE", true, _, _) => "AbortMultipartUpload",
            ("PUT", false, false, _) => "PutObject",
            _ => "Other",
        }
        .to_string()
    }

    fn is_json_protocol(&self) -> bool {
        self.header("x-amz-target").is_some()
    }
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue;
            }
            break;
        }
        head.push_str(&line);
    }
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        req.body = vec![0; len];
        reader.read_exact(&mut req.body).await?;
    }
    Ok(Some(req))
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn forward(upstream: SocketAddr, req: &Request, body: &[u8]) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect(upstream).await?;
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        let skip = [
            "content-length",
            "transfer-encoding",
            "connection",
            "expect",
        ];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(out.as_bytes()).await?;
    conn.write_all(body).await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    if headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    }) {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

async fn write_response(conn: &mut TcpStream, resp: &Response) -> std::io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
    for (k, v) in &resp.headers {
        let skip = ["content-length", "transfer-encoding", "connection"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
    conn.write_all(out.as_bytes()).await?;
    conn.write_all(&resp.body).await?;
    conn.flush().await
}

fn error_response(
    req: &Request,
    status: u16,
    json_type: &str,
    s3_code: &str,
    message: &str,
) -> Response {
    if req.is_json_protocol() {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
            body: json!({"__type": json_type, "message": message})
                .to_string()
                .into_bytes(),
        }
    } else {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3_code}</Code><Message>{message}</Message><RequestId>proxy</RequestId></Error>"
        );
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: xml.into_bytes(),
        }
    }
}

async fn serve(
    conn: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader).await? {
        let operation = req.operation();
        let fault = {
            let mut s = state.lock().unwrap();
            let denied = !s.denied_groups.is_empty()
                && serde_json::from_slice::<Value>(&req.body).is_ok_and(|body| {
                    body["logGroupName"]
                        .as_str()
                        .is_some_and(|g| s.denied_groups.contains(g))
                });
            if denied {
                Some(Fault::AccessDenied)
            } else {
                let queued = s.faults.get_mut(&operation).and_then(VecDeque::pop_front);
                queued.or_else(|| s.always.get(&operation).cloned())
            }
        };
        let mut seen = Seen {
            operation: operation.clone(),
            target: req.target.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            forwarded: None,
            fault: fault.clone(),
        };
        let response = match &fault {
            Some(Fault::Reset) => {
                state.lock().unwrap().seen.push(seen);
                let conn = reader.into_inner();
                // Zero linger: the close sends RST at once (nothing blocks).
                #[allow(deprecated)]
                conn.set_linger(Some(Duration::ZERO))?;
                drop(conn);
                return Ok(());
            }
            Some(Fault::Throttle) => {
                let json_type = if operation == "PutRecordBatch" {
                    "ServiceUnavailableException"
                } else if operation == "PutRecords" {
                    "ProvisionedThroughputExceededException"
                } else {
                    "ThrottlingException"
                };
                let status = if req.is_json_protocol() { 400 } else { 503 };
                error_response(&req, status, json_type, "SlowDown", "Rate exceeded")
            }
            Some(Fault::Hang) => {
                state.lock().unwrap().seen.push(seen);
                std::future::pending::<()>().await;
                unreachable!()
            }
            Some(Fault::AccessDenied) => error_response(
                &req,
                if req.is_json_protocol() { 400 } else { 403 },
                "AccessDeniedException",
                "AccessDenied",
                "User is not authorized to perform this action on this resource",
            ),
            Some(Fault::ServerError) => error_response(
                &req,
                500,
                "InternalFailure",
                "InternalError",
                "injected server error",
            ),
            Some(Fault::Slow(d)) => {
                tokio::time::sleep(*d).await;
                seen.forwarded = Some(req.body.clone());
                forward(upstream, &req, &req.body).await?
            }
            Some(Fault::FirehoseFail(indexes)) => {
                let (body, failed) = firehose_subset(&req.body, indexes);
                seen.forwarded = Some(body.clone());
                let mut resp = forward(upstream, &req, &body).await?;
                resp.body = firehose_merge(&resp.body, &failed);
                resp
            }
            Some(Fault::KinesisFail(indexes)) => {
                let (body, failed) = firehose_subset(&req.body, indexes);
                seen.forwarded = Some(body.clone());
                let mut resp = forward(upstream, &req, &body).await?;
                resp.body = kinesis_merge(&resp.body, &failed);
                resp
            }
            Some(Fault::CloudWatchReject { too_old, too_new }) => {
                let (body, total) = cloudwatch_subset(&req.body, *too_old, *too_new);
                seen.forwarded = Some(body.clone());
                let mut resp = forward(upstream, &req, &body).await?;
                let mut v: Value = serde_json::from_slice(&resp.body).unwrap_or_else(|_| json!({}));
                let mut info = serde_json::Map::new();
                if *too_old > 0 {
                    info.insert("tooOldLogEventEndIndex".into(), json!(too_old));
                }
                if *too_new > 0 {
                    info.insert("tooNewLogEventStartIndex".into(), json!(total - too_new));
                }
                v["rejectedLogEventsInfo"] = Value::Object(info);
                resp.body = v.to_string().into_bytes();
                resp
            }
            None => {
                seen.forwarded = Some(req.body.clone());
                forward(upstream, &req, &req.body).await?
            }
        };
        state.lock().unwrap().seen.push(seen);
        write_response(reader.get_mut(), &response).await?;
    }
    Ok(())
}

/// The PutRecordBatch (or PutRecords: both list `Records`) body without the records at
/// `indexes`; and those indexes (in range).
fn firehose_subset(body: &[u8], indexes: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let mut v: Value = serde_json::from_slice(body).expect("PutRecordBatch body is JSON");
    let records = v["Records"].as_array().cloned().unwrap_or_default();
    let failed: Vec<usize> = indexes
        .iter()
        .copied()
        .filter(|&i| i < records.len())
        .collect();
    let kept: Vec<Value> = records
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !failed.contains(i))
        .map(|(_, r)| r)
        .collect();
    v["Records"] = Value::Array(kept);
    (v.to_string().into_bytes(), failed)
}

/// moto's answer for the kept records, with failure entries put back at the failed indexes.
fn firehose_merge(body: &[u8], failed: &[usize]) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(body).unwrap_or_else(|_| json!({"RequestResponses": []}));
    let mut accepted = v["RequestResponses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let total = accepted.len() + failed.len();
    let entries: Vec<Value> = (0..total)
        .map(|i| {
            if failed.contains(&i) {
                json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
            } else {
                accepted
                    .next()
                    .unwrap_or_else(|| json!({"RecordId": "missing"}))
            }
        })
        .collect();
    v["RequestResponses"] = Value::Array(entries);
    v["FailedPutCount"] = json!(failed.len());
    v.to_string().into_bytes()
}

/// moto's PutRecords answer for the kept records, with failure entries put back at the failed
/// indexes.
fn kinesis_merge(body: &[u8], failed: &[usize]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({"Records": []}));
    let mut accepted = v["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let total = accepted.len() + failed.len();
    let entries: Vec<Value> = (0..total)
        .map(|i| {
            if failed.contains(&i) {
                json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard shardId-000000000000."})
            } else {
                accepted
                    .next()
                    .unwrap_or_else(|| json!({"SequenceNumber": "0", "ShardId": "missing"}))
            }
        })
        .collect();
    v["Records"] = Value::Array(entries);
    v["FailedRecordCount"] = json!(failed.len());
    v.to_string().into_bytes()
}

/// The `(partition key, data)` records of a PutRecords body, data base64-decoded.
pub fn kinesis_records(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let v: Value = serde_json::from_slice(body).expect("PutRecords body is JSON");
    v["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(r["Data"].as_str().unwrap_or_default())
                        .unwrap();
                    (
                        r["PartitionKey"].as_str().unwrap_or_default().to_string(),
                        data,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The PutLogEvents body without the first `too_old` and last `too_new` events; and how many
/// events the client sent.
fn cloudwatch_subset(body: &[u8], too_old: usize, too_new: usize) -> (Vec<u8>, usize) {
    let mut v: Value = serde_json::from_slice(body).expect("PutLogEvents body is JSON");
    let events = v["logEvents"].as_array().cloned().unwrap_or_default();
    let total = events.len();
    let kept: Vec<Value> = events
        .into_iter()
        .skip(too_old)
        .take(total.saturating_sub(too_old + too_new))
        .collect();
    v["logEvents"] = Value::Array(kept);
    (v.to_string().into_bytes(), total)
}

/// The records of a PutRecordBatch body, base64-decoded.
pub fn firehose_records(body: &[u8]) -> Vec<Vec<u8>> {
    let v: Value = serde_json::from_slice(body).expect("PutRecordBatch body is JSON");
    v["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    base64::engine::general_purpose::STANDARD
                        .decode(r["Data"].as_str().unwrap_or_default())
                        .unwrap()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `(timestamp, message)` events of a PutLogEvents body.
pub fn cloudwatch_events(body: &[u8]) -> Vec<(i64, String)> {
    let v: Value = serde_json::from_slice(body).expect("PutLogEvents body is JSON");
    v["logEvents"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e["timestamp"].as_i64().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Seen {
    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
