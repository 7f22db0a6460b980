//! Test guest `json-output`: an output that encodes each batch as one JSON array (one object per
//! record, msgpack converted to JSON) POSTed to the `url` of its config, and classifies
//! responses: 2xx ok, 429 and 5xx retry (honouring `Retry-After` seconds), 413 split, other
//! 4xx permanent failure, transport errors retry.
//!
//! Config: `{"url": "http://…", "gzip": false, "api_key_header": "X-Api-Key",
//! "trap_on_status": 418}`; with `api_key_header` set, the request asks the host to inject the
//! secret `api_key` into it; with `trap_on_status`, `on-response` panics (a plugin fault) when
//! the response has that status.

// `generate!` and `export!` emit unsafe glue code with wide (flattened) signatures.
#![allow(unsafe_code, clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "output", path: "../../../wit" });

use std::sync::Mutex;
use wasm_router::plugin::http_types::{Compression, Method, SecretHeader};
use wasm_router::plugin::types::PluginKind;

/// The operator's config.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    gzip: bool,
    #[serde(default)]
    api_key_header: Option<String>,
    #[serde(default)]
    trap_on_status: Option<u16>,
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);

const CONFIG_SCHEMA: &str = r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"},"gzip":{"type":"boolean"},"api_key_header":{"type":"string"},"trap_on_status":{"type":"integer"}},"additionalProperties":false}"#;

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "json-output".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Output,
            description: "Posts each batch as one JSON array.".into(),
            config_schema: CONFIG_SCHEMA.into(),
            requested_hosts: vec!["http://127.0.0.1".into()],
            requested_secrets: vec!["api_key".into()],
        }
    }

    fn init(config: String) -> Result<(), Vec<ConfigError>> {
        let parsed: Config = serde_json::from_str(&config).map_err(|error| {
            vec![ConfigError {
                path: String::new(),
                message: format!("json-output config: {error}"),
            }]
        })?;
        if !parsed.url.starts_with("http://") && !parsed.url.starts_with("https://") {
            return Err(vec![ConfigError {
                path: "/url".into(),
                message: format!("url {:?} must start with http:// or https://", parsed.url),
            }]);
        }
        *CONFIG.lock().unwrap() = Some(parsed);
        Ok(())
    }

    fn encode(batch: Batch) -> Result<Vec<HttpRequest>, String> {
        let guard = CONFIG.lock().unwrap();
        let config = guard
            .as_ref()
            .ok_or("json-output: encode called before init")?;
        let mut records = Vec::with_capacity(batch.time_ns.len());
        let mut start = 0usize;
        for (index, &end) in batch.body_ends.iter().enumerate() {
            let mut body = &batch.bodies[start..end as usize];
            start = end as usize;
            let value = rmpv::decode::read_value(&mut body)
                .map_err(|error| format!("json-output: event {index} is not msgpack: {error}"))?;
            records.push(to_json(value));
        }
        let body = serde_json::to_vec(&records).map_err(|error| error.to_string())?;
        let secret_headers = config
            .api_key_header
            .iter()
            .map(|header| SecretHeader {
                header: header.clone(),
                secret: "api_key".into(),
                prefix: String::new(),
            })
            .collect();
        Ok(vec![HttpRequest {
            id: 0,
            method: Method::Post,
            url: config.url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            secret_headers,
            body,
            compression: if config.gzip {
                Compression::Gzip
            } else {
                Compression::None
            },
            events: (0..batch.time_ns.len() as u32).collect(),
        }])
    }

    fn on_response(response: HttpResponse) -> Delivery {
        let trap_on = CONFIG
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|c| c.trap_on_status);
        if trap_on == Some(response.status) {
            panic!("json-output: trap_on_status {}", response.status);
        }
        if response.transport_error.is_some() {
            return Delivery::Retry(None);
        }
        match response.status {
            200..=299 => Delivery::Ok,
            413 => Delivery::SplitAndRetry,
            429 | 500..=599 => Delivery::Retry(retry_after_ms(&response.headers)),
            status => Delivery::FailPermanent(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
            )),
        }
    }
}

/// `Retry-After` in seconds, as milliseconds.
fn retry_after_ms(headers: &[(String, String)]) -> Option<u32> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, value)| value.trim().parse::<u32>().ok())
        .map(|seconds| seconds.saturating_mul(1000))
}

fn to_json(value: rmpv::Value) -> serde_json::Value {
    use rmpv::Value as Mp;
    use serde_json::Value as Js;
    match value {
        Mp::Nil => Js::Null,
        Mp::Boolean(b) => Js::Bool(b),
        Mp::Integer(i) => i
            .as_i64()
            .map(Js::from)
            .or_else(|| i.as_u64().map(Js::from))
            .unwrap_or(Js::Null),
        Mp::F32(f) => serde_json::Number::from_f64(f64::from(f)).map_or(Js::Null, Js::Number),
        Mp::F64(f) => serde_json::Number::from_f64(f).map_or(Js::Null, Js::Number),
        Mp::String(s) => Js::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Mp::Binary(b) => Js::String(String::from_utf8_lossy(&b).into_owned()),
        Mp::Array(items) => Js::Array(items.into_iter().map(to_json).collect()),
        Mp::Map(entries) => Js::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = match key {
                        Mp::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(value))
                })
                .collect(),
        ),
        Mp::Ext(_, data) => Js::String(String::from_utf8_lossy(&data).into_owned()),
    }
}

export!(Plugin);
