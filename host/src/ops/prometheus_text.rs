//! A reader for the Prometheus text exposition format (version 0.0.4 and the OpenMetrics text
//! that prometheus-client writes): what `wasm-router top`, the JSON metrics endpoint and the
//! tests use to read `/metrics` back.
//!
//! Only samples are read; `# HELP`, `# TYPE`, `# UNIT`, `# EOF` and exemplars are skipped.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",…} 12.5`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name including any `_total` / `_bucket` / `_sum` / `_count` suffix.
    pub name: String,
    /// The labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or `""`.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A sample line that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("metrics text line {line}: {message}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
    /// The line.
    pub text: String,
}

/// Every sample of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message| ParseError {
            line: n + 1,
            message,
            text: line.to_string(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after_brace) = rest.strip_prefix('{') {
            rest = parse_labels(after_brace, &mut labels).ok_or_else(|| err("malformed labels"))?;
        }
        // An exemplar (` # {…} v`) and a timestamp may follow the value.
        let value_text = rest
            .split(" # ")
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .ok_or_else(|| err("no value"))?;
        let value = parse_value(value_text).ok_or_else(|| err("value is not a number"))?;
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Read `a="x",b="y"}` into `labels`; returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, labels: &mut BTreeMap<String, String>) -> Option<&'a str> {
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some(rest);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        let mut chars = s[eq + 1..].strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        s = &s[eq + 1..][1 + end + 1..];
    }
}

/// A sample value or `le` bound: a number, `+Inf`, `-Inf` or `NaN`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The sum of every sample named `name` whose labels include all of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && matching.iter().all(|(k, v)| s.label(k) == *v))
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_labels_and_special_values() {
        let text = "# HELP x help\n# TYPE x counter\nx_total{component_kind=\"output\",component_id=\"a \\\"b\\\",c\"} 12\n\
                    up 1 1700000000\nh_bucket{le=\"+Inf\"} 3 # {trace_id=\"x\"} 1.0\nnan NaN\n# EOF\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].name, "x_total");
        assert_eq!(s[0].label("component_id"), "a \"b\",c");
        assert_eq!(s[0].label("component_kind"), "output");
        assert_eq!(s[0].value, 12.0);
        assert_eq!(s[1].value, 1.0);
        assert_eq!(s[2].label("le"), "+Inf");
        assert!(s[3].value.is_nan());
        assert_eq!(sum(&s, "x_total", &[("component_kind", "output")]), 12.0);
        assert_eq!(sum(&s, "x_total", &[("component_kind", "input")]), 0.0);
    }

    #[test]
    fn malformed_lines_are_errors_with_the_line() {
        let e = parse("ok 1\nbad{a=\"x\" 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("novalue\n").is_err());
        assert!(parse("x abc\n").is_err());
    }
}
