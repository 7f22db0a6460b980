//! A request of the http input turned into records, sans-io: which tag the path gives, what the
//! `Content-Type` and `Content-Encoding` say, and the body's records as msgpack maps. Every
//! refusal carries the status to answer and the reason it is counted under.

use crate::event::accessor::RecordAccessor;
use crate::event::json_msgpack::json_to_msgpack;
use crate::event::record::{str_only, write_map_len, write_str};
use axum::http::StatusCode;
use std::io::Read;

/// Why a request is refused: the status, the metric reason, the message for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status answered.
    pub status: StatusCode,
    /// `component_errors_total{reason=…}`.
    pub reason: &'static str,
    /// The response body.
    pub message: String,
}

impl Refusal {
    /// A 400 counted under `reason`.
    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            reason,
            message: message.into(),
        }
    }

    /// A 413: the body, as sent or decompressed, is over `max` bytes.
    pub fn too_large(max: usize) -> Self {
        Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "request_too_large",
            message: format!("error: the body is over buffer_max_size ({max} bytes)"),
        }
    }
}

/// How the body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`: one object, or an array of objects.
    Json,
    /// `application/x-www-form-urlencoded`: one record of `key=value` pairs.
    Form,
}

/// The kind a `Content-Type` names (its parameters, such as `charset`, ignored).
pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, Refusal> {
    let Some(value) = content_type else {
        return Err(Refusal::bad_request(
            "invalid_content_type",
            "error: header 'Content-Type' is not set; use application/json or application/x-www-form-urlencoded",
        ));
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(BodyKind::Json)
    } else if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else {
        Err(Refusal::bad_request(
            "invalid_content_type",
            format!(
                "error: Content-Type {value:?} is not application/json or application/x-www-form-urlencoded"
            ),
        ))
    }
}

/// Whether the body is gzip (`Content-Encoding: gzip`); other encodings are refused.
pub fn is_gzip(content_encoding: Option<&str>) -> Result<bool, Refusal> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => Ok(true),
        Some(e) => Err(Refusal::bad_request(
            "invalid_content_encoding",
            format!("error: Content-Encoding {e:?} is not supported; send gzip or no encoding"),
        )),
    }
}

/// A gzip body undone a step at a time, so that the caller can charge memory before each step;
/// refused once the output is over `max` bytes: a small bomb cannot grow into the router's
/// memory.
pub struct Gunzip<'a> {
    decoder: flate2::read::MultiGzDecoder<&'a [u8]>,
    out: Vec<u8>,
    max: usize,
}

impl<'a> Gunzip<'a> {
    /// Start undoing `body`.
    pub fn new(body: &'a [u8], max: usize) -> Self {
        Gunzip {
            decoder: flate2::read::MultiGzDecoder::new(body),
            out: Vec::new(),
            max,
        }
    }

    /// The bytes made so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing was made yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Make up to `step` more bytes; `Ok(true)` once the body is done.
    pub fn step(&mut self, step: usize) -> Result<bool, Refusal> {
        let before = self.out.len();
        (&mut self.decoder)
            .take(step.max(1) as u64)
            .read_to_end(&mut self.out)
            .map_err(|e| {
                Refusal::bad_request("invalid_gzip", format!("error: bad gzip body: {e}"))
            })?;
        if self.out.len() > self.max {
            return Err(Refusal::too_large(self.max));
        }
        Ok(self.out.len() == before)
    }

    /// The whole body, undone.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// `body` gunzipped in one go, within `max` bytes.
#[cfg(test)]
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    let mut g = Gunzip::new(body, max);
    while !g.step(4096)? {}
    Ok(g.finish())
}

/// The tag a request path gives: `None` for `/`, else the path without its leading slash, each
/// character other than a letter, digit, `_` or `.` made `_` (as Fluent Bit does).
pub fn path_tag(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return None;
    }
    Some(sanitize(rest.as_bytes()))
}

fn sanitize(text: &[u8]) -> String {
    text.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

/// The tag a record gives itself under `tag_key` (a string value), sanitized as a path's.
pub fn record_tag(tag_key: &RecordAccessor, record: &[u8]) -> Option<String> {
    let value = tag_key.lookup_in(record)?;
    Some(sanitize(str_only(value)?))
}

/// The records of a body: msgpack maps, in order.
pub fn records(kind: BodyKind, body: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::bad_request(
            "empty_body",
            "error: no payload found",
        ));
    }
    match kind {
        BodyKind::Json => json_records(body),
        BodyKind::Form => form_record(body).map(|r| vec![r]),
    }
}

fn json_records(body: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    let packed = json_to_msgpack(body)
        .map_err(|e| Refusal::bad_request("invalid_json", format!("error: invalid JSON: {e}")))?;
    let not_objects = || {
        Refusal::bad_request(
            "invalid_json",
            "error: the body must be a JSON object or an array of objects",
        )
    };
    match msgpack_skip::token(&packed, 0) {
        Ok(msgpack_skip::Token::Container { .. }) if is_map(packed[0]) => Ok(vec![packed]),
        Ok(msgpack_skip::Token::Container { header_end, items }) => {
            let mut out = Vec::with_capacity(items as usize);
            let mut at = header_end;
            for _ in 0..items {
                let end = msgpack_skip::skip_value(&packed, at, msgpack_skip::MAX_DEPTH)
                    .map_err(|_| not_objects())?;
                if !is_map(packed[at]) {
                    return Err(not_objects());
                }
                out.push(packed[at..end].to_vec());
                at = end;
            }
            Ok(out)
        }
        _ => Err(not_objects()),
    }
}

fn is_map(marker: u8) -> bool {
    matches!(marker, 0x80..=0x8f | 0xde | 0xdf)
}

/// One record of the `key=value` pairs (keys and values percent-decoded and trimmed); a piece
/// without `=` or with an empty key is skipped, as Fluent Bit does.
fn form_record(body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let pairs: Vec<(String, String)> = body
        .split(|&b| b == b'&')
        .filter(|piece| {
            let piece = piece.strip_prefix(b"\n").unwrap_or(piece);
            piece.contains(&b'=') && !piece.starts_with(b"=")
        })
        .filter_map(|piece| form_urlencoded::parse(piece).next())
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if pairs.is_empty() {
        return Err(Refusal::bad_request(
            "invalid_form",
            "error: no key=value pair in the form body",
        ));
    }
    let mut out = Vec::new();
    write_map_len(&mut out, pairs.len());
    for (k, v) in &pairs {
        write_str(&mut out, k.as_bytes());
        write_str(&mut out, v.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn json_of(records: &[Vec<u8>]) -> Vec<Value> {
        records
            .iter()
            .map(|r| rmp_serde::from_slice(r).unwrap())
            .collect()
    }

    #[test]
    fn an_object_or_an_array_of_objects_are_records_and_anything_else_is_refused() {
        let got = records(BodyKind::Json, br#"{"a":1,"b":"x"}"#).unwrap();
        assert_eq!(json_of(&got), [json!({"a": 1, "b": "x"})]);
        let got = records(BodyKind::Json, br#" [{"a":1},{"b":[1,2]}] "#).unwrap();
        assert_eq!(json_of(&got), [json!({"a": 1}), json!({"b": [1, 2]})]);
        assert_eq!(records(BodyKind::Json, b"[]").unwrap().len(), 0);
        for bad in [
            &b"{\"a\":"[..],
            b"[1,2]",
            b"\"text\"",
            b"{\"a\":1} {\"b\":2}",
        ] {
            let refusal = records(BodyKind::Json, bad).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
            assert_eq!(refusal.reason, "invalid_json", "{bad:?}");
        }
        assert_eq!(
            records(BodyKind::Json, b"  ").unwrap_err().reason,
            "empty_body"
        );
    }

    #[test]
    fn a_form_is_one_record_of_decoded_pairs() {
        let got = records(
            BodyKind::Form,
            b"msg=hello%20world&level=+info+&noval&=x&empty=",
        )
        .unwrap();
        assert_eq!(
            json_of(&got),
            [json!({"msg": "hello world", "level": "info", "empty": ""})]
        );
        assert_eq!(
            records(BodyKind::Form, b"novalue").unwrap_err().reason,
            "invalid_form"
        );
    }

    #[test]
    fn content_headers_choose_the_decoding() {
        assert_eq!(
            body_kind(Some("Application/JSON; charset=utf-8")),
            Ok(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("application/x-www-form-urlencoded")),
            Ok(BodyKind::Form)
        );
        assert_eq!(
            body_kind(Some("text/plain")).unwrap_err().reason,
            "invalid_content_type"
        );
        assert_eq!(body_kind(None).unwrap_err().reason, "invalid_content_type");
        assert_eq!(is_gzip(Some("gzip")), Ok(true));
        assert_eq!(is_gzip(None), Ok(false));
        assert_eq!(
            is_gzip(Some("br")).unwrap_err().reason,
            "invalid_content_encoding"
        );
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 10_000).unwrap().len(), 10_000);
        let refusal = gunzip(&gz, 9_999).unwrap_err();
        assert_eq!(refusal.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err().reason, "invalid_gzip");
    }

    #[test]
    fn tags_come_from_the_path_or_a_record_key() {
        assert_eq!(path_tag("/"), None);
        assert_eq!(path_tag("/app.log"), Some("app.log".into()));
        assert_eq!(path_tag("/a/b-c"), Some("a_b_c".into()));
        let key = RecordAccessor::parse("$meta['tag']").unwrap();
        let record = rmp_serde::to_vec(&json!({"meta": {"tag": "x y"}})).unwrap();
        assert_eq!(record_tag(&key, &record), Some("x_y".into()));
        let record = rmp_serde::to_vec(&json!({"meta": {"tag": 1}})).unwrap();
        assert_eq!(record_tag(&key, &record), None);
    }
}
