//! What a parser does to the values it found: `Types key:type …` casts, and `Decode_Field` /
//! `Decode_Field_As` decoders (Fluent Bit `flb_parser.c` `flb_parser_typecast`,
//! `flb_parser_decoder.c`, `flb_unescape.c`).
//!
//! Casts: `integer` and `hex` read the leading number (`0` when there is none, as `atoll` /
//! `strtoull` do), `float` the leading decimal, `bool` `true`/`false` (case-insensitive; other
//! text stays a string), `string` leaves the text.
//!
//! Decoders run on string values of the named key, in the order written; each rule is
//! `DECODER KEY [ACTION]` with `DECODER` one of `json` (the text is a JSON object), `escaped`
//! (`\n`, `\t`, … and `\x` → `x`), `escaped_utf8` (also `\uXXXX`, `\xHH`, octal), `mysql_quoted`.
//! `Decode_Field_As` replaces the value with the decoded one; `Decode_Field` keeps it and, when
//! the result is an object, appends the object's keys to the record. After a rule that
//! succeeds, the next rule of the key runs only with the action `do_next`; after one that fails,
//! only with `try_next` or `do_next`. Once a value was decoded into an object, no more rules
//! run on it.

use crate::config::classic::{Entry, Section};
use crate::event::json_msgpack::json_to_msgpack;
use crate::event::record::{RawRecord, encode_str, str_only};
use std::borrow::Cow;

/// A `Types` cast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cast {
    Integer,
    Float,
    Bool,
    String,
    Hex,
}

/// The `Types` of a parser: key → cast.
#[derive(Clone, Debug, Default)]
pub struct Types(Vec<(Vec<u8>, Cast)>);

impl Types {
    /// Read `Types a:integer b:float …`.
    pub fn from_entry(e: &Entry) -> Result<Types, String> {
        let mut out = Vec::new();
        for item in e.value.split_whitespace() {
            let Some((key, kind)) = item.split_once(':') else {
                return Err(format!(
                    "Types item `{item}` is not `key:type`, e.g. `Types code:integer size:integer`"
                ));
            };
            let cast = match kind.to_ascii_lowercase().as_str() {
                "integer" => Cast::Integer,
                "float" => Cast::Float,
                "bool" => Cast::Bool,
                "string" => Cast::String,
                "hex" => Cast::Hex,
                _ => {
                    return Err(format!(
                        "Types item `{item}`: `{kind}` is not a type; use integer, float, bool, string or hex"
                    ));
                }
            };
            out.push((key.as_bytes().to_vec(), cast));
        }
        Ok(Types(out))
    }

    /// The msgpack value of `text` under `key`: cast when `key` has a type, else a string.
    pub fn value(&self, key: &[u8], text: &[u8]) -> Vec<u8> {
        let Some((_, cast)) = self.0.iter().find(|(k, _)| k == key) else {
            return encode_str(text);
        };
        let mut out = Vec::with_capacity(9);
        match cast {
            Cast::Integer => {
                let _ = rmp::encode::write_sint(&mut out, leading_integer(text));
            }
            Cast::Hex => {
                let _ = rmp::encode::write_uint(&mut out, leading_hex(text));
            }
            Cast::Float => {
                let _ = rmp::encode::write_f64(&mut out, leading_float(text));
            }
            Cast::Bool if starts_with_ignore_case(text, b"true") => {
                let _ = rmp::encode::write_bool(&mut out, true);
            }
            Cast::Bool if starts_with_ignore_case(text, b"false") => {
                let _ = rmp::encode::write_bool(&mut out, false);
            }
            Cast::Bool | Cast::String => return encode_str(text),
        }
        out
    }
}

fn starts_with_ignore_case(text: &[u8], word: &[u8]) -> bool {
    text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word)
}

/// `text` without leading blanks, the sign, and whether it was negative.
fn sign(text: &[u8]) -> (&[u8], bool) {
    let text = text.trim_ascii_start();
    match text.first() {
        Some(b'-') => (&text[1..], true),
        Some(b'+') => (&text[1..], false),
        _ => (text, false),
    }
}

/// `atoll`: the leading decimal integer, saturating; `0` when there is none.
fn leading_integer(text: &[u8]) -> i64 {
    let (digits, negative) = sign(text);
    let mut n: i64 = 0;
    for b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        let d = i64::from(b - b'0');
        n = if negative {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
    }
    n
}

/// `strtoull(…, 16)`: the leading hex number (an optional `0x`), saturating; `0` when none.
fn leading_hex(text: &[u8]) -> u64 {
    let (mut digits, negative) = sign(text);
    if digits.len() > 2 && digits[0] == b'0' && matches!(digits[1], b'x' | b'X') {
        digits = &digits[2..];
    }
    let mut n: u64 = 0;
    for b in digits.iter().take_while(|b| b.is_ascii_hexdigit()) {
        let d = (*b as char).to_digit(16).unwrap_or(0);
        n = n.saturating_mul(16).saturating_add(u64::from(d));
    }
    if negative { n.wrapping_neg() } else { n }
}

/// `atof`: the longest leading decimal number; `0.0` when there is none.
fn leading_float(text: &[u8]) -> f64 {
    let text = text.trim_ascii_start();
    let candidate = text
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    let text = std::str::from_utf8(&text[..candidate]).unwrap_or("");
    (1..=text.len())
        .rev()
        .find_map(|n| text.get(..n)?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Json,
    Escaped,
    EscapedUtf8,
    MysqlQuoted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Stop,
    TryNext,
    DoNext,
}

#[derive(Clone, Debug)]
struct Rule {
    /// `Decode_Field_As` (replace the value) rather than `Decode_Field` (add the keys).
    replace: bool,
    backend: Backend,
    action: Action,
}

/// The `Decode_Field` / `Decode_Field_As` rules of a parser, grouped by key.
#[derive(Clone, Debug, Default)]
pub struct Decoders(Vec<(Vec<u8>, Vec<Rule>)>);

enum Decoded {
    Text(Vec<u8>),
    /// A msgpack map.
    Object(Vec<u8>),
}

impl Decoders {
    /// The rules of section `s`; a rule that cannot be read is an error naming its line.
    pub fn from_section(s: &Section) -> Result<Decoders, (Entry, String)> {
        let mut keys: Vec<(Vec<u8>, Vec<Rule>)> = Vec::new();
        for e in &s.entries {
            let replace = match e.key.as_str() {
                "decode_field" => false,
                "decode_field_as" => true,
                _ => continue,
            };
            let words: Vec<&str> = e.value.split_whitespace().collect();
            let (Some(decoder), Some(key)) = (words.first(), words.get(1)) else {
                return Err((
                    e.clone(),
                    format!(
                        "`{}` needs a decoder and a key, e.g. `Decode_Field_As escaped log`",
                        e.key
                    ),
                ));
            };
            let backend = match decoder.to_ascii_lowercase().as_str() {
                "json" => Backend::Json,
                "escaped" => Backend::Escaped,
                "escaped_utf8" => Backend::EscapedUtf8,
                "mysql_quoted" => Backend::MysqlQuoted,
                other => {
                    return Err((
                        e.clone(),
                        format!(
                            "decoder `{other}` is not one of json, escaped, escaped_utf8, mysql_quoted"
                        ),
                    ));
                }
            };
            let action = match words.get(2).map(|a| a.to_ascii_lowercase()).as_deref() {
                Some("try_next") => Action::TryNext,
                Some("do_next") => Action::DoNext,
                _ => Action::Stop,
            };
            let rule = Rule {
                replace,
                backend,
                action,
            };
            match keys.iter_mut().find(|(k, _)| k == key.as_bytes()) {
                Some((_, rules)) => rules.push(rule),
                None => keys.push((key.as_bytes().to_vec(), vec![rule])),
            }
        }
        Ok(Decoders(keys))
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The msgpack map `body` with its decoders applied.
    pub fn apply(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(record) = RawRecord::parse(&body) else {
            return body;
        };
        let mut out = RawRecord::default();
        let mut extra = RawRecord::default();
        let mut changed = false;
        for (k, v) in &record.entries {
            let rules = str_only(k).and_then(|key| self.0.iter().find(|(r, _)| r == key));
            let (Some((_, rules)), Some(text)) = (rules, str_only(v)) else {
                out.entries.push((Cow::Borrowed(k), Cow::Borrowed(v)));
                continue;
            };
            changed = true;
            let (value, added) = run(rules, text);
            out.entries.push((
                Cow::Borrowed(k),
                match value {
                    None => Cow::Borrowed(&v[..]),
                    Some(Decoded::Text(t)) => Cow::Owned(encode_str(&t)),
                    Some(Decoded::Object(map)) => Cow::Owned(map),
                },
            ));
            if let Some(map) = added
                && let Some(entries) = RawRecord::parse(&map)
            {
                extra.entries.extend(
                    entries
                        .entries
                        .into_iter()
                        .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned()))),
                );
            }
        }
        if !changed {
            return body;
        }
        out.entries.extend(extra.entries);
        out.encode()
    }
}

/// The rules of one key on `text`: the replacement value, and the object whose keys to add.
fn run(rules: &[Rule], text: &[u8]) -> (Option<Decoded>, Option<Vec<u8>>) {
    let mut data = text.to_vec();
    let mut replaced: Option<Decoded> = None;
    let mut added: Option<Vec<u8>> = None;
    let mut decoded_field = false;
    for rule in rules {
        if !rule.replace && rule.action == Action::DoNext && decoded_field {
            continue;
        }
        if matches!(replaced, Some(Decoded::Object(_))) {
            continue;
        }
        let Some(result) = decode(rule.backend, &data) else {
            if rule.action == Action::Stop {
                break;
            }
            continue;
        };
        if rule.replace {
            if let Decoded::Text(t) = &result {
                data.clone_from(t);
            }
            replaced = Some(result);
        } else {
            decoded_field = true;
            // A text result has no keys to add (Fluent Bit logs "string type is not allowed").
            added = match result {
                Decoded::Object(map) => Some(map),
                Decoded::Text(_) => None,
            };
        }
        if rule.action != Action::DoNext {
            break;
        }
    }
    (replaced, added)
}

fn decode(backend: Backend, text: &[u8]) -> Option<Decoded> {
    match backend {
        Backend::Json => {
            let start = text.iter().take_while(|b| **b == b' ').count();
            let text = &text[start..];
            if !matches!(text.first(), Some(b'{' | b'[')) {
                return None;
            }
            let map = json_to_msgpack(text).ok()?;
            matches!(map.first(), Some(0x80..=0x8f | 0xde | 0xdf)).then_some(Decoded::Object(map))
        }
        Backend::Escaped => Some(Decoded::Text(unescape(text))),
        Backend::EscapedUtf8 => Some(Decoded::Text(unescape_utf8(text))),
        Backend::MysqlQuoted => Some(Decoded::Text(mysql_unquote(text))),
    }
}

/// `escaped`: `\n \a \b \t \v \f \r \\` become their characters; a backslash before any other
/// byte is dropped.
pub fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' {
            let Some(&n) = text.get(i + 1) else { break };
            out.push(match n {
                b'n' => b'\n',
                b'a' => 0x07,
                b'b' => 0x08,
                b't' => b'\t',
                b'v' => 0x0b,
                b'f' => 0x0c,
                b'r' => b'\r',
                other => other,
            });
            i += 2;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// `escaped_utf8`: JSON-style escapes plus `\v \a`, octal `\NNN`, `\xHH`, `\uXXXX` (with
/// surrogate pairs; a broken one becomes U+FFFD) and `\UXXXXXXXX`, written as UTF-8; any other
/// escaped character stands for itself. Decoding stops at a NUL byte, as in Fluent Bit.
pub fn unescape_utf8(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let push = |out: &mut Vec<u8>, ch: u32| {
        let c = char::from_u32(ch).unwrap_or('\u{fffd}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while i < text.len() && text[i] != 0 {
        if text[i] != b'\\' || i + 1 == text.len() {
            out.push(text[i]);
            i += 1;
            continue;
        }
        let rest = &text[i + 1..];
        let simple = match rest[0] {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'a' => Some(0x07),
            b'"' | b'\'' | b'\\' | b'/' => Some(rest[0]),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        let hex_run = |from: usize, max: usize| {
            rest[from..]
                .iter()
                .take(max)
                .take_while(|b| b.is_ascii_hexdigit())
                .count()
        };
        let number = |digits: &[u8], radix: u32| {
            u32::from_str_radix(std::str::from_utf8(digits).unwrap_or("0"), radix).unwrap_or(0)
        };
        let (ch, used) = match rest[0] {
            b'0'..=b'7' => {
                let n = rest
                    .iter()
                    .take(3)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count();
                (number(&rest[..n], 8), n)
            }
            b'x' => match hex_run(1, 2) {
                0 => (u32::from(b'x'), 1),
                n => (number(&rest[1..1 + n], 16), 1 + n),
            },
            b'U' => match hex_run(1, 8) {
                0 => (u32::from(b'U'), 1),
                n => (number(&rest[1..1 + n], 16), 1 + n),
            },
            b'u' => {
                let n = hex_run(1, 4);
                let high = number(&rest[1..1 + n], 16);
                if n == 0 {
                    (0, 1)
                } else if n < 4 || (0xdc00..=0xdfff).contains(&high) {
                    (0xfffd, 1 + n)
                } else if (0xd800..=0xdbff).contains(&high) {
                    let tail = &rest[5..];
                    if tail.len() > 2 && tail[0] == b'\\' && tail[1] == b'u' {
                        let m = tail[2..]
                            .iter()
                            .take(4)
                            .take_while(|b| b.is_ascii_hexdigit())
                            .count();
                        let low = number(&tail[2..2 + m], 16);
                        if m == 4 && (0xdc00..=0xdfff).contains(&low) {
                            (0x10000 + ((high - 0xd800) << 10 | (low - 0xdc00)), 11)
                        } else {
                            (0xfffd, 7 + m)
                        }
                    } else {
                        (0xfffd, 5)
                    }
                } else {
                    (high, 5)
                }
            }
            other => (u32::from(other), 1),
        };
        if ch < 0x80 {
            out.push(ch as u8);
        } else {
            push(&mut out, ch);
        }
        i += 1 + used;
    }
    out
}

/// `mysql_quoted`: a value in `'…'` or `"…"` loses its quotes and MySQL escapes; other values
/// are kept.
fn mysql_unquote(text: &[u8]) -> Vec<u8> {
    let quoted =
        text.len() >= 2 && matches!(text[0], b'\'' | b'"') && text[text.len() - 1] == text[0];
    if !quoted {
        return text.to_vec();
    }
    let inner = &text[1..text.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' || i == inner.len() {
            out.push(b);
            continue;
        }
        let n = inner[i];
        i += 1;
        match n {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' | b'\'' | b'"' => out.push(n),
            b'0' => out.push(0),
            b'Z' => out.push(0x1a),
            _ => out.extend_from_slice(&[b'\\', n]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::classic::Parser as ClassicParser;
    use crate::event::record::tests::{body, json};
    use std::path::Path;

    fn section(text: &str) -> Section {
        let env = |_: &str| None;
        ClassicParser::new(&env)
            .parse_text(text, Path::new("p.conf"))
            .unwrap()
            .remove(0)
    }

    fn decoders(rules: &str) -> Decoders {
        Decoders::from_section(&section(&format!("[PARSER]\n    Name x\n{rules}"))).unwrap()
    }

    #[test]
    fn casts_read_leading_numbers_as_c_does() {
        let e = section("[PARSER]\n    Types a:integer b:float c:bool d:hex e:string f:Integer\n");
        let types = Types::from_entry(e.get("types").unwrap()).unwrap();
        let v = |k: &str, t: &str| {
            json(&{
                let mut m = Vec::new();
                crate::event::record::write_map_len(&mut m, 1);
                crate::event::record::write_str(&mut m, b"v");
                m.extend(types.value(k.as_bytes(), t.as_bytes()));
                m
            })
        };
        assert_eq!(v("a", " -42abc"), r#"{"v":-42}"#);
        assert_eq!(v("a", "x"), r#"{"v":0}"#);
        assert_eq!(
            v("a", "99999999999999999999"),
            r#"{"v":9223372036854775807}"#
        );
        assert_eq!(v("f", "7"), r#"{"v":7}"#);
        assert_eq!(v("b", "1.5ms"), r#"{"v":1.5}"#);
        assert_eq!(v("b", "1e3"), r#"{"v":1000.0}"#);
        assert_eq!(v("b", "n/a"), r#"{"v":0.0}"#);
        assert_eq!(v("c", "TRUE"), r#"{"v":true}"#);
        assert_eq!(v("c", "false"), r#"{"v":false}"#);
        assert_eq!(v("c", "yes"), r#"{"v":"yes"}"#, "not a bool: kept as text");
        assert_eq!(v("d", "0xff"), r#"{"v":255}"#);
        assert_eq!(v("d", "1F zz"), r#"{"v":31}"#);
        assert_eq!(v("e", "12"), r#"{"v":"12"}"#);
        assert_eq!(v("other", "12"), r#"{"v":"12"}"#);
        let bad = section("[PARSER]\n    Types a:int\n");
        let e = Types::from_entry(bad.get("types").unwrap()).unwrap_err();
        assert!(e.contains("`int` is not a type"), "{e}");
        let bad = section("[PARSER]\n    Types a\n");
        assert!(Types::from_entry(bad.get("types").unwrap()).is_err());
    }

    #[test]
    fn unescaping_as_fluent_bit() {
        assert_eq!(unescape(br#"a\nb\tc\\d\"e\q"#), b"a\nb\tc\\d\"eq");
        assert_eq!(
            unescape_utf8(br#"\u00e9\x41\101\"\/\u263a\ud83d\ude00\ud800x\q"#),
            "éAA\"/☺😀\u{fffd}xq".as_bytes()
        );
        assert_eq!(unescape_utf8("raw é\\".as_bytes()), "raw é\\".as_bytes());
        assert_eq!(mysql_unquote(br#"'it\'s\n'"#), b"it's\n");
        assert_eq!(mysql_unquote(b"plain"), b"plain");
    }

    #[test]
    fn decode_field_as_replaces_and_decode_field_adds_keys() {
        let record = body(serde_json::json!({
            "log": "{\"a\":1,\"b\":\"x\"}",
            "esc": "line\\none",
            "n": 5
        }));
        let d = decoders("    Decode_Field_As json log\n    Decode_Field_As escaped esc\n");
        assert_eq!(
            json(&d.apply(record.clone())),
            r#"{"esc":"line\none","log":{"a":1,"b":"x"},"n":5}"#
        );
        let d = decoders("    Decode_Field json log\n");
        assert_eq!(
            json(&d.apply(record.clone())),
            r#"{"esc":"line\\none","log":"{\"a\":1,\"b\":\"x\"}","n":5,"a":1,"b":"x"}"#
        );
        // Not JSON: the value stays; no keys are added.
        let plain = body(serde_json::json!({"log": "plain text"}));
        assert_eq!(json(&d.apply(plain.clone())), r#"{"log":"plain text"}"#);
        // try_next goes on after a failure, the default stops.
        let d =
            decoders("    Decode_Field_As json log try_next\n    Decode_Field_As escaped log\n");
        let text = body(serde_json::json!({"log": "a\\tb"}));
        assert_eq!(json(&d.apply(text.clone())), r#"{"log":"a\tb"}"#);
        let d = decoders("    Decode_Field_As json log\n    Decode_Field_As escaped log\n");
        assert_eq!(json(&d.apply(text.clone())), r#"{"log":"a\\tb"}"#);
        // do_next chains successes (the docker parser's rules).
        let d = decoders(
            "    Decode_Field_As escaped_utf8 log do_next\n    Decode_Field_As json log\n",
        );
        let nested = body(serde_json::json!({"log": "{\\\"k\\\":\\\"\\u00e9\\\"}"}));
        assert_eq!(json(&d.apply(nested)), r#"{"log":{"k":"é"}}"#);
        let e = Decoders::from_section(&section("[PARSER]\n    Decode_Field_As base64 log\n"))
            .unwrap_err();
        assert!(e.1.contains("`base64` is not one of"), "{}", e.1);
        assert_eq!(e.0.origin.line, 2);
        assert!(Decoders::from_section(&section("[PARSER]\n    Decode_Field json\n")).is_err());
    }
}
