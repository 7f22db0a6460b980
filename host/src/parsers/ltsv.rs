//! `Format ltsv`: `label:value` fields separated by tabs (Fluent Bit `flb_parser_ltsv.c`, after
//! <http://ltsv.org>).
//!
//! A label is `[0-9A-Za-z_.-]+`; its value runs to the next tab, line break or NUL. Parsing stops
//! at the first label not followed by `:` and at the end of the first line. A field with an
//! empty label is skipped.

/// The fields of `text`, in order.
pub fn fields(text: &[u8]) -> Vec<(&[u8], &[u8])> {
    let is_label = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let is_value = |b: u8| !matches!(b, 0 | b'\t' | b'\n' | b'\r');
    let mut out = Vec::new();
    let mut at = 0;
    let end = text.len();
    while at < end {
        let label_start = at;
        while at < end && is_label(text[at]) {
            at += 1;
        }
        let label = &text[label_start..at];
        if at == end || text[at] != b':' {
            break;
        }
        at += 1;
        let value_start = at;
        while at < end && is_value(text[at]) {
            at += 1;
        }
        if !label.is_empty() {
            out.push((label, &text[value_start..at]));
        }
        if at < end && text[at] == b'\t' {
            at += 1;
        }
        if at < end && matches!(text[at], b'\r' | b'\n') {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> Vec<(&str, &str)> {
        fields(text.as_bytes())
            .into_iter()
            .map(|(k, v)| {
                (
                    std::str::from_utf8(k).unwrap(),
                    std::str::from_utf8(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn labels_values_and_where_parsing_stops() {
        assert_eq!(
            show("host:127.0.0.1\tident:-\treq:GET / HTTP/1.1\tstatus:200\tempty:"),
            vec![
                ("host", "127.0.0.1"),
                ("ident", "-"),
                ("req", "GET / HTTP/1.1"),
                ("status", "200"),
                ("empty", ""),
            ]
        );
        assert_eq!(show("a:1\tb:2\nc:3"), vec![("a", "1"), ("b", "2")]);
        assert_eq!(show("a:1\tbad label:2"), vec![("a", "1")]);
        assert_eq!(show(":x\tb:2"), vec![("b", "2")]);
        assert_eq!(show("no colon"), Vec::<(&str, &str)>::new());
    }
}
