//! `Format logfmt`: `key=value key="quoted \"value\"" bare` pairs (Fluent Bit
//! `flb_parser_logfmt.c`, after <https://brandur.org/logfmt>).
//!
//! A key is a run of bytes above space other than `=` and `"`; anything else between pairs is
//! skipped. `key=value` takes the next run of key bytes (possibly none), `key="…"` the quoted
//! text with its `\` escapes decoded as `escaped_utf8` does. A bare `key` and a `key=` with
//! nothing after it are `true`; `key=""` is the empty string. Parsing stops at a line break that
//! directly follows a pair. With `Logfmt_No_Bare_Keys On` a bare key fails the whole line.

use super::Value;
use super::decode::unescape_utf8;
use std::borrow::Cow;

fn is_key_byte(b: u8) -> bool {
    b > b' ' && b != b'=' && b != b'"'
}

/// The pairs of `text`, in order; `None` when a bare key is refused.
pub fn fields(text: &[u8], no_bare_keys: bool) -> Option<Vec<(&[u8], Value<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    let end = text.len();
    while at < end {
        while at < end && !is_key_byte(text[at]) {
            at += 1;
        }
        if at == end {
            break;
        }
        let key_start = at;
        while at < end && is_key_byte(text[at]) {
            at += 1;
        }
        let key = &text[key_start..at];
        let mut value = Value::True;
        let mut value_set = false;
        if at < end && text[at] == b'=' {
            value_set = true;
            at += 1;
            if at < end && text[at] == b'"' {
                at += 1;
                let start = at;
                let mut escaped = false;
                while at < end && text[at] != b'"' {
                    if text[at] == b'\\' {
                        escaped = true;
                        at += 1;
                        if at == end {
                            break;
                        }
                    }
                    at += 1;
                }
                let raw = &text[start..at.min(end)];
                if at < end {
                    at += 1;
                }
                value = Value::Text(if escaped {
                    Cow::Owned(unescape_utf8(raw))
                } else {
                    Cow::Borrowed(raw)
                });
            } else {
                let start = at;
                while at < end && is_key_byte(text[at]) {
                    at += 1;
                }
                if at > start {
                    value = Value::Text(Cow::Borrowed(&text[start..at]));
                }
            }
        }
        if no_bare_keys && !value_set {
            return None;
        }
        out.push((key, value));
        match text.get(at) {
            None => break,
            Some(b'\r' | b'\n') => break,
            Some(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str, no_bare: bool) -> Option<Vec<(String, String)>> {
        fields(text.as_bytes(), no_bare).map(|f| {
            f.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::True => "<true>".to_string(),
                        Value::Text(t) => String::from_utf8(t.into_owned()).unwrap(),
                    };
                    (String::from_utf8(k.to_vec()).unwrap(), v)
                })
                .collect()
        })
    }

    fn pairs(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn pairs_quotes_escapes_and_bare_keys() {
        assert_eq!(
            show(
                r#"level=info msg="hello \"world\"\n" empty="" flag k= n=5"#,
                false
            ),
            pairs(&[
                ("level", "info"),
                ("msg", "hello \"world\"\n"),
                ("empty", ""),
                ("flag", "<true>"),
                ("k", "<true>"),
                ("n", "5"),
            ])
        );
        assert_eq!(show(" \t a=1 ", false), pairs(&[("a", "1")]));
        assert_eq!(show("", false), pairs(&[]));
        assert_eq!(
            show(r#"a="unterminated"#, false),
            pairs(&[("a", "unterminated")])
        );
    }

    #[test]
    fn a_line_break_after_a_pair_ends_the_record() {
        assert_eq!(show("a=1\nb=2", false), pairs(&[("a", "1")]));
        assert_eq!(show("a=1\r\nb=2", false), pairs(&[("a", "1")]));
        // Fluent Bit only stops when the break directly follows a pair.
        assert_eq!(show("a=1 \nb=2", false), pairs(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn no_bare_keys_refuses_the_line() {
        assert_eq!(show("a=1 bare", true), None);
        assert_eq!(show("a=1 b=", true), pairs(&[("a", "1"), ("b", "<true>")]));
    }
}
