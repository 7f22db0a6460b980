//! The ECS task metadata endpoint: `GET $ECS_CONTAINER_METADATA_URI_V4/task` (the v3
//! `ECS_CONTAINER_METADATA_URI` when only that is set), turned into the variables
//! aws-for-fluent-bit's init process exports (firelens-aws.md §1.6): `ECS_CLUSTER` (the name,
//! also when the endpoint gives an ARN), `ECS_TASK_ARN`, `ECS_TASK_ID` (last segment of the
//! ARN), `ECS_FAMILY`, `ECS_REVISION`, `ECS_TASK_DEFINITION` (`family:revision`), `AWS_REGION`
//! (from the task ARN), `AWS_AVAILABILITY_ZONE` and `ECS_LAUNCH_TYPE` when present.
//!
//! The endpoint is link-local and answers in milliseconds: each attempt has a short timeout and
//! a failed one is retried a bounded number of times. Unlike the init process, which stops
//! Fluent Bit from starting, a failure here is reported to the caller to log as a warning.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The variable ECS sets in every container (agent ≥ 1.39.0, Fargate ≥ 1.4.0).
pub const METADATA_URI_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// The v3 endpoint variable, used when v4 is absent (its `/task` has the fields read here).
pub const METADATA_URI_V3: &str = "ECS_CONTAINER_METADATA_URI";
/// How long one attempt (connect, request, whole response) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts before giving up.
pub const ATTEMPTS: u32 = 3;
/// Pause after the first failed attempt; doubled after each further one.
pub const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The largest response read (a task of ten containers is a few KiB).
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Why the task metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The endpoint variable is not a plain-HTTP URL.
    #[error(
        "{variable}={uri:?} is not an http:// URL (ECS sets it, e.g. http://169.254.170.2/v4/…); unset it when not on ECS"
    )]
    BadUri {
        /// Which variable.
        variable: &'static str,
        /// Its value.
        uri: String,
    },
    /// Connecting, writing or reading failed.
    #[error("GET {url}: {source}")]
    Io {
        /// What was requested.
        url: String,
        /// The failure.
        source: std::io::Error,
    },
    /// An attempt took longer than [`ATTEMPT_TIMEOUT`].
    #[error("GET {url}: no complete answer within {timeout:?}")]
    Timeout {
        /// What was requested.
        url: String,
        /// The per-attempt limit.
        timeout: Duration,
    },
    /// Not an HTTP 200 with a body.
    #[error("GET {url}: {detail}")]
    BadResponse {
        /// What was requested.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The body is not the task JSON.
    #[error("the task metadata from {url} is not the JSON ECS serves: {detail}")]
    BadJson {
        /// What was requested.
        url: String,
        /// The parse error.
        detail: String,
    },
    /// `TaskARN` is missing or not an ECS task ARN.
    #[error(
        "the task metadata from {url} has TaskARN {arn:?}, not an ECS task ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID)"
    )]
    BadTaskArn {
        /// What was requested.
        url: String,
        /// What it said.
        arn: String,
    },
}

impl MetadataError {
    /// Whether another attempt can give a different answer.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            MetadataError::Io { .. }
                | MetadataError::Timeout { .. }
                | MetadataError::BadResponse { .. }
        )
    }
}

/// The task, as the init process describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskMetadata {
    /// The cluster name (reduced from an ARN when the endpoint gives one).
    pub cluster: String,
    /// The task ARN.
    pub task_arn: String,
    /// The last segment of the task ARN.
    pub task_id: String,
    /// The task definition family.
    pub family: String,
    /// The task definition revision.
    pub revision: String,
    /// The region of the task ARN (else of the Availability Zone).
    pub region: String,
    /// `AvailabilityZone` (Fargate ≥ 1.4.0, recent EC2 agents).
    pub availability_zone: Option<String>,
    /// `LaunchType` (`EC2`, `FARGATE`, …; agent ≥ 1.45.0).
    pub launch_type: Option<String>,
}

/// The fields of the v4 `/task` response read here (it has many more).
#[derive(Deserialize)]
struct TaskResponse {
    #[serde(rename = "Cluster", default)]
    cluster: String,
    #[serde(rename = "TaskARN", default)]
    task_arn: String,
    #[serde(rename = "Family", default)]
    family: String,
    #[serde(rename = "Revision", default)]
    revision: String,
    #[serde(rename = "AvailabilityZone")]
    availability_zone: Option<String>,
    #[serde(rename = "LaunchType")]
    launch_type: Option<String>,
}

impl TaskMetadata {
    /// From the body of `/task`; `url` names the source in errors.
    pub fn from_task_json(body: &[u8], url: &str) -> Result<Self, MetadataError> {
        let task: TaskResponse =
            serde_json::from_slice(body).map_err(|e| MetadataError::BadJson {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        let bad_arn = || MetadataError::BadTaskArn {
            url: url.to_string(),
            arn: task.task_arn.clone(),
        };
        // arn:PARTITION:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID
        let fields: Vec<&str> = task.task_arn.splitn(6, ':').collect();
        let [arn, _partition, service, region, _account, resource] = fields[..] else {
            return Err(bad_arn());
        };
        if arn != "arn" || service != "ecs" || !resource.starts_with("task/") {
            return Err(bad_arn());
        }
        let task_id = resource.rsplit('/').next().unwrap_or_default();
        if task_id.is_empty() {
            return Err(bad_arn());
        }
        let availability_zone = task.availability_zone.filter(|z| !z.is_empty());
        let region = if region.is_empty() {
            availability_zone
                .as_deref()
                .map(|zone| zone.trim_end_matches(|c: char| c.is_ascii_lowercase()))
                .unwrap_or_default()
                .to_string()
        } else {
            region.to_string()
        };
        let cluster = match task.cluster.rsplit_once('/') {
            Some((_, name)) => name.to_string(),
            None => task.cluster.clone(),
        };
        Ok(TaskMetadata {
            cluster,
            task_id: task_id.to_string(),
            family: task.family,
            revision: task.revision,
            region,
            availability_zone,
            launch_type: task.launch_type.filter(|t| !t.is_empty()),
            task_arn: task.task_arn,
        })
    }

    /// The variables the init process exports, by name; empty values are left out, as there.
    pub fn variables(&self) -> BTreeMap<String, String> {
        let task_definition = if self.family.is_empty() {
            String::new()
        } else {
            format!("{}:{}", self.family, self.revision)
        };
        [
            ("AWS_REGION", self.region.clone()),
            (
                "AWS_AVAILABILITY_ZONE",
                self.availability_zone.clone().unwrap_or_default(),
            ),
            ("ECS_CLUSTER", self.cluster.clone()),
            ("ECS_TASK_ARN", self.task_arn.clone()),
            ("ECS_TASK_ID", self.task_id.clone()),
            ("ECS_FAMILY", self.family.clone()),
            (
                "ECS_LAUNCH_TYPE",
                self.launch_type.clone().unwrap_or_default(),
            ),
            ("ECS_REVISION", self.revision.clone()),
            ("ECS_TASK_DEFINITION", task_definition),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The endpoint named by the environment: `(variable, base URI)`, v4 first; `None` when not
/// on ECS.
pub fn endpoint_from_env(get: impl Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    [METADATA_URI_V4, METADATA_URI_V3]
        .into_iter()
        .find_map(|name| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        })
}

/// `GET {base}/task` with up to [`ATTEMPTS`] attempts of [`ATTEMPT_TIMEOUT`] each.
pub async fn fetch(variable: &'static str, base: &str) -> Result<TaskMetadata, MetadataError> {
    let base = base.trim().trim_end_matches('/');
    let target = HttpTarget::parse(variable, base)?;
    let url = format!("{base}/task");
    let mut pause = FIRST_RETRY_PAUSE;
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, target.get("/task", &url)).await {
            Ok(Ok(body)) => TaskMetadata::from_task_json(&body, &url),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(MetadataError::Timeout {
                url: url.clone(),
                timeout: ATTEMPT_TIMEOUT,
            }),
        };
        match result {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "task metadata: retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// `http://host[:port]/path`.
struct HttpTarget {
    authority: String,
    host: String,
    port: u16,
    path: String,
}

impl HttpTarget {
    fn parse(variable: &'static str, uri: &str) -> Result<Self, MetadataError> {
        let bad = || MetadataError::BadUri {
            variable,
            uri: uri.to_string(),
        };
        let rest = uri.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(HttpTarget {
            authority: authority.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The body of a 200 answer to `GET {path}{suffix}`.
    async fn get(&self, suffix: &str, url: &str) -> Result<Vec<u8>, MetadataError> {
        let io = |source| MetadataError::Io {
            url: url.to_string(),
            source,
        };
        let mut stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io)?;
        let request = format!(
            "GET {}{suffix} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.path, self.authority
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        if raw.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(MetadataError::BadResponse {
                url: url.to_string(),
                detail: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        http_body(&raw).map_err(|detail| MetadataError::BadResponse {
            url: url.to_string(),
            detail,
        })
    }
}

/// The body of a complete HTTP/1.x 200 response (read until the peer closed), de-chunked.
fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the connection closed before the response headers ended")?;
    let head = String::from_utf8_lossy(&raw[..header_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the endpoint answered {status:?}"));
    }
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let body = &raw[header_end + 4..];
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return dechunk(body);
    }
    match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(n)) if body.len() >= n => Ok(body[..n].to_vec()),
        Some(Ok(n)) => Err(format!("the body ended after {} of {n} bytes", body.len())),
        Some(Err(_)) => Err("a Content-Length that is not a number".into()),
        None => Ok(body.to_vec()),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a truncated chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("a bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("a truncated chunked body".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a real v4 `/task` answer on EC2 (docs: "Amazon ECS task metadata v4
    /// examples"), trimmed to one container.
    const TASK: &str = r#"{
        "Cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/prod",
        "TaskARN": "arn:aws:ecs:eu-west-1:111122223333:task/prod/5b1e5e4c0a8d4b6c9d3e2f1a0b9c8d7e",
        "Family": "web",
        "ServiceName": "web-svc",
        "Revision": "7",
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "PullStartedAt": "2026-11-21T07:00:01.123456789Z",
        "PullStoppedAt": "2026-11-21T07:00:03.987654321Z",
        "AvailabilityZone": "eu-west-1b",
        "VPCID": "vpc-0123456789abcdef0",
        "LaunchType": "EC2",
        "Containers": [{"DockerId": "ab12", "Name": "log_router", "Labels": {}, "Networks": []}]
    }"#;

    #[test]
    fn the_task_answer_gives_the_init_process_variables() {
        let task = TaskMetadata::from_task_json(TASK.as_bytes(), "u").unwrap();
        let vars = task.variables();
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(get("ECS_CLUSTER"), Some("prod"));
        assert_eq!(get("ECS_TASK_ID"), Some("5b1e5e4c0a8d4b6c9d3e2f1a0b9c8d7e"));
        assert_eq!(get("ECS_TASK_DEFINITION"), Some("web:7"));
        assert_eq!(get("ECS_FAMILY"), Some("web"));
        assert_eq!(get("ECS_REVISION"), Some("7"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_AVAILABILITY_ZONE"), Some("eu-west-1b"));
        assert_eq!(get("ECS_LAUNCH_TYPE"), Some("EC2"));
        assert_eq!(vars.len(), 9);
    }

    #[test]
    fn old_task_arns_and_missing_optional_fields() {
        let body = br#"{"Cluster":"default","TaskARN":"arn:aws:ecs:us-east-1:1:task/0123","Family":"f","Revision":"1"}"#;
        let task = TaskMetadata::from_task_json(body, "u").unwrap();
        assert_eq!(task.task_id, "0123");
        assert_eq!(task.cluster, "default");
        assert!(!task.variables().contains_key("ECS_LAUNCH_TYPE"));
    }

    #[test]
    fn a_bad_task_arn_or_body_names_the_source() {
        let e = TaskMetadata::from_task_json(br#"{"TaskARN":"task/1"}"#, "http://x/v4/1/task")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http://x/v4/1/task") && e.contains("task/1"),
            "{e}"
        );
        let e = TaskMetadata::from_task_json(b"<html>", "u").unwrap_err();
        assert!(matches!(e, MetadataError::BadJson { .. }), "{e}");
    }

    #[test]
    fn responses_plain_sized_and_chunked() {
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap(),
            b"{}"
        );
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")
                .unwrap(),
            b"{}"
        );
        assert_eq!(http_body(b"HTTP/1.0 200 OK\r\n\r\n{}").unwrap(), b"{}");
        assert!(
            http_body(b"HTTP/1.1 500 Internal\r\n\r\n")
                .unwrap_err()
                .contains("500")
        );
        assert!(http_body(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }

    #[test]
    fn endpoint_variables_v4_first_and_uri_checks() {
        let env = |k: &str| match k {
            METADATA_URI_V4 => Some("http://169.254.170.2/v4/abc".to_string()),
            METADATA_URI_V3 => Some("http://169.254.170.2/v3/abc".to_string()),
            _ => None,
        };
        assert_eq!(
            endpoint_from_env(env),
            Some((METADATA_URI_V4, "http://169.254.170.2/v4/abc".to_string()))
        );
        assert_eq!(endpoint_from_env(|_| None), None);
        let t = HttpTarget::parse(METADATA_URI_V4, "http://127.0.0.1:8080/v4/x").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/v4/x")
        );
        assert!(HttpTarget::parse(METADATA_URI_V4, "https://x/v4").is_err());
        assert!(HttpTarget::parse(METADATA_URI_V4, "http://:1/v4").is_err());
    }

    #[tokio::test]
    async fn a_closed_port_fails_after_the_bounded_attempts() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = fetch(METADATA_URI_V4, &format!("http://127.0.0.1:{port}/v4/x"))
            .await
            .unwrap_err();
        assert!(matches!(e, MetadataError::Io { .. }), "{e}");
        assert!(e.to_string().contains("/v4/x/task"), "{e}");
    }
}
