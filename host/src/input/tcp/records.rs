//! Cutting what a tcp connection sends into records, sans-io: `format = "json"` takes each
//! complete JSON object from the front of the buffer; `format = "none"` takes each piece between
//! separators as `{"log": "…"}`. A record longer than the largest allowed is skipped (to the
//! next newline or separator) and reported; so is text that is not a JSON object.

use super::config::TcpFormat;
use bytes::BytesMut;

/// One record taken from the stream.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// A record: its msgpack body.
    Record(Vec<u8>),
    /// A record longer than the largest allowed was skipped.
    TooLarge,
    /// Text that is not a JSON object was skipped (why).
    Invalid(String),
}

/// Cuts one connection's bytes into records.
pub struct Splitter {
    format: TcpFormat,
    separator: Vec<u8>,
    max: usize,
    /// `(key, value)` added to every record: the sender's address.
    source: Option<(String, String)>,
    /// Inside a record that was too large: drop bytes up to the next end of record.
    skipping: bool,
}

impl Splitter {
    /// A splitter of `format` records at most `max` bytes long.
    pub fn new(
        format: TcpFormat,
        separator: Vec<u8>,
        max: usize,
        source: Option<(String, String)>,
    ) -> Self {
        Splitter {
            format,
            separator,
            max,
            source,
            skipping: false,
        }
    }

    /// Take every complete record from the front of `buf` into `out`; an incomplete one stays.
    pub fn split(&mut self, buf: &mut BytesMut, out: &mut Vec<Taken>) {
        if self.skipping {
            match find(buf, self.end()) {
                Some(at) => {
                    let _ = buf.split_to(at + self.end().len());
                    self.skipping = false;
                }
                None => {
                    buf.clear();
                    return;
                }
            }
        }
        match self.format {
            TcpFormat::None => self.split_text(buf, out),
            TcpFormat::Json => self.split_json(buf, out),
        }
        if buf.len() > self.max {
            // An incomplete record already longer than allowed: drop it, and the rest of it.
            out.push(Taken::TooLarge);
            buf.clear();
            self.skipping = true;
        }
    }

    /// The connection closed: what is left is the last record (text), or incomplete (JSON).
    pub fn finish(&mut self, buf: &mut BytesMut, out: &mut Vec<Taken>) {
        if self.skipping || buf.iter().all(u8::is_ascii_whitespace) {
            buf.clear();
            return;
        }
        match self.format {
            TcpFormat::None => out.push(Taken::Record(self.text_record(buf))),
            TcpFormat::Json => out.push(Taken::Invalid(
                "the connection closed inside a JSON object".to_string(),
            )),
        }
        buf.clear();
    }

    /// What ends a record that cannot be parsed: the separator, or a newline for JSON.
    fn end(&self) -> &[u8] {
        match self.format {
            TcpFormat::None => &self.separator,
            TcpFormat::Json => b"\n",
        }
    }

    fn split_text(&self, buf: &mut BytesMut, out: &mut Vec<Taken>) {
        while let Some(at) = find(buf, &self.separator) {
            let piece = buf.split_to(at);
            let _ = buf.split_to(self.separator.len());
            if piece.len() > self.max {
                out.push(Taken::TooLarge);
            } else if !piece.is_empty() {
                out.push(Taken::Record(self.text_record(&piece)));
            }
        }
    }

    fn text_record(&self, piece: &[u8]) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert(
            "log".to_string(),
            String::from_utf8_lossy(piece).into_owned().into(),
        );
        self.record(map)
    }

    fn split_json(&self, buf: &mut BytesMut, out: &mut Vec<Taken>) {
        loop {
            let mut stream =
                serde_json::Deserializer::from_slice(buf).into_iter::<serde_json::Value>();
            let stop = loop {
                let start = stream.byte_offset();
                match stream.next() {
                    None => break Stop::Taken(buf.len()),
                    Some(Ok(serde_json::Value::Object(map))) => {
                        if stream.byte_offset() - start > self.max {
                            out.push(Taken::TooLarge);
                        } else {
                            out.push(Taken::Record(self.record(map)));
                        }
                    }
                    Some(Ok(other)) => out.push(Taken::Invalid(format!(
                        "a JSON {} is not a record; send one JSON object per record",
                        kind(&other)
                    ))),
                    Some(Err(e)) if e.is_eof() => break Stop::Taken(start),
                    Some(Err(e)) => break Stop::Invalid(start, e.to_string()),
                }
            };
            match stop {
                Stop::Taken(end) => {
                    let _ = buf.split_to(end);
                    return;
                }
                Stop::Invalid(start, why) => {
                    // Skip the bad text up to the next newline, where a record may start.
                    out.push(Taken::Invalid(format!("invalid JSON: {why}")));
                    let from = start
                        + buf[start..]
                            .iter()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    let end = find(&buf[from..], b"\n").map_or(buf.len(), |at| from + at + 1);
                    let _ = buf.split_to(end);
                }
            }
        }
    }

    /// The msgpack body of `map`, with the source address added when configured.
    fn record(&self, mut map: serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
        if let Some((key, addr)) = &self.source {
            map.insert(key.clone(), addr.clone().into());
        }
        rmp_serde::to_vec_named(&map).expect("a JSON map always encodes")
    }
}

/// Where taking JSON records from a buffer stopped.
enum Stop {
    /// Every record before this offset was taken; what follows is incomplete.
    Taken(usize),
    /// The text at this offset is not JSON (why).
    Invalid(usize, String),
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(
        splitter: &mut Splitter,
        chunks: &[&[u8]],
    ) -> Vec<Result<serde_json::Value, String>> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            splitter.split(&mut buf, &mut out);
        }
        splitter.finish(&mut buf, &mut out);
        out.into_iter()
            .map(|t| match t {
                Taken::Record(body) => Ok(rmp_serde::from_slice(&body).unwrap()),
                Taken::TooLarge => Err("too large".to_string()),
                Taken::Invalid(why) => Err(why),
            })
            .collect()
    }

    #[test]
    fn json_objects_are_records_however_the_stream_is_cut() {
        let mut s = Splitter::new(TcpFormat::Json, Vec::new(), 1024, None);
        let got = records(
            &mut s,
            &[b"{\"a\":1}\n{\"b\"", b":[1,2]}{\"c\":", b"\"x\"}  \n"],
        );
        assert_eq!(
            got,
            [
                Ok(json!({"a": 1})),
                Ok(json!({"b": [1, 2]})),
                Ok(json!({"c": "x"}))
            ]
        );
    }

    #[test]
    fn bad_json_and_non_objects_are_reported_and_skipped_to_the_next_line() {
        let mut s = Splitter::new(TcpFormat::Json, Vec::new(), 1024, None);
        let got = records(&mut s, &[b"{\"a\":1}\nnot json at all\n[1,2]\n{\"b\":2}\n"]);
        assert_eq!(got[0], Ok(json!({"a": 1})));
        assert!(
            got[1].as_ref().unwrap_err().starts_with("invalid JSON"),
            "{got:?}"
        );
        assert_eq!(
            got[2],
            Err("a JSON array is not a record; send one JSON object per record".to_string())
        );
        assert_eq!(got[3], Ok(json!({"b": 2})));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn text_is_cut_at_the_separator_and_the_last_line_kept_at_close() {
        let source = Some(("source".to_string(), "tcp://127.0.0.1:9".to_string()));
        let mut s = Splitter::new(TcpFormat::None, b"\r\n".to_vec(), 1024, source);
        let got = records(&mut s, &[b"one\r", b"\ntwo\r\n\r\nthree"]);
        assert_eq!(
            got,
            [
                Ok(json!({"log": "one", "source": "tcp://127.0.0.1:9"})),
                Ok(json!({"log": "two", "source": "tcp://127.0.0.1:9"})),
                Ok(json!({"log": "three", "source": "tcp://127.0.0.1:9"})),
            ]
        );
    }

    #[test]
    fn a_record_over_the_limit_is_skipped_whole_and_the_next_one_kept() {
        let mut s = Splitter::new(TcpFormat::None, b"\n".to_vec(), 8, None);
        let got = records(&mut s, &[b"short\nfar too long ", b"for the limit\nnext\n"]);
        assert_eq!(
            got,
            [
                Ok(json!({"log": "short"})),
                Err("too large".into()),
                Ok(json!({"log": "next"}))
            ]
        );
        let mut s = Splitter::new(TcpFormat::Json, Vec::new(), 16, None);
        let got = records(&mut s, &[b"{\"log\":\"0123456789abcdef\"}\n{\"a\":1}\n"]);
        assert_eq!(got, [Err("too large".into()), Ok(json!({"a": 1}))]);
    }
}
