//! What a classic `[OUTPUT]` of an AWS plugin means beyond its keys: the C plugins
//! (`cloudwatch_logs`, `kinesis_firehose`, `kinesis_streams`) and the Go ones (`cloudwatch`,
//! `firehose`, `kinesis`) map onto one output each, and where the two plugins behave
//! differently the plugin named gets its own behaviour (docs/aws-outputs.md has the table):
//!
//! - `time_key_format`: `%L` is nanoseconds in the C plugins (`flb_aws_strftime_precision`),
//!   milliseconds in the Go ones (lestrrat-go/strftime `WithMilliseconds('L')`);
//! - record keys: sorted by the Go plugins' JSON encoder, in record order in the C plugins;
//! - a record over the size limit: dropped by `kinesis_firehose` and `kinesis_streams`,
//!   truncated by `firehose` and `kinesis`;
//! - `kinesis` ends records with `\n` only with `append_newline`; `kinesis_streams` always does.

use toml::{Table, Value};

/// Add to the mapped output table `t` of the plugin `name` the options that give it that
/// plugin's behaviour, unless the config set them.
pub fn per_plugin_defaults(name: &str, t: &mut Table) {
    let mut default = |key: &str, value: Value| {
        t.entry(key.to_string()).or_insert(value);
    };
    match name {
        "cloudwatch" | "firehose" => default("sort_keys", Value::Boolean(true)),
        "kinesis" => {
            default("sort_keys", Value::Boolean(true));
            default("append_newline", Value::Boolean(false));
            default("oversize_records", Value::String("truncate".into()));
        }
        "kinesis_firehose" => default("oversize_records", Value::String("drop".into())),
        _ => {}
    }
    if matches!(name, "kinesis_firehose" | "kinesis_streams")
        && let Some(Value::String(format)) = t.get_mut("time_key_format")
    {
        *format = l_as_nanoseconds(format);
    }
}

/// The `upload_attempts` of an `s3` output for `Retry_Limit` as [`super::retry_limit`] read it
/// (`None`: no limit), as Fluent Bit 2+ counts them: an object is given up when its failures
/// pass the limit, so `Retry_Limit 3` is 4 attempts and `no_retries` one; no limit is capped at
/// 5 retries, with Fluent Bit's warning.
pub fn s3_upload_attempts(limit: Option<i64>) -> (i64, Option<&'static str>) {
    match limit {
        Some(n) => (n.max(0) + 1, None),
        None => (
            6,
            Some(
                "is unlimited; like Fluent Bit, the s3 output caps it at 5 retries (6 upload attempts)",
            ),
        ),
    }
}

/// `format` with `%L` written as `%9N` (nanoseconds), as the C plugins read it; `%%` stays a
/// literal percent sign.
pub fn l_as_nanoseconds(format: &str) -> String {
    let mut out = String::with_capacity(format.len() + 4);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('L') => out.push_str("%9N"),
            Some(next) => {
                out.push('%');
                out.push(next);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_l_is_nanoseconds_only_in_the_c_plugins() {
        assert_eq!(
            l_as_nanoseconds("%Y-%m-%dT%H:%M:%S.%L %%L %3N"),
            "%Y-%m-%dT%H:%M:%S.%9N %%L %3N"
        );
        let mapped = |name: &str| {
            let mut t = Table::new();
            t.insert("time_key_format".into(), "%s.%L".into());
            per_plugin_defaults(name, &mut t);
            t
        };
        assert_eq!(
            mapped("kinesis_firehose")["time_key_format"].as_str(),
            Some("%s.%9N")
        );
        assert_eq!(
            mapped("kinesis_streams")["time_key_format"].as_str(),
            Some("%s.%9N")
        );
        assert_eq!(
            mapped("firehose")["time_key_format"].as_str(),
            Some("%s.%L")
        );
        assert_eq!(mapped("kinesis")["time_key_format"].as_str(), Some("%s.%L"));
    }

    #[test]
    fn s3_reads_retry_limit_as_fluent_bit_does() {
        assert_eq!(
            s3_upload_attempts(Some(0)),
            (1, None),
            "no_retries: one attempt"
        );
        assert_eq!(s3_upload_attempts(Some(3)), (4, None));
        let (attempts, warning) = s3_upload_attempts(None);
        assert_eq!(attempts, 6, "False / no_limits / Off: capped at 5 retries");
        assert!(warning.unwrap().contains("caps it at 5 retries"));
    }

    #[test]
    fn each_plugin_name_gets_its_plugins_behaviour_unless_set() {
        let keys = |name: &str| {
            let mut t = Table::new();
            per_plugin_defaults(name, &mut t);
            let mut keys: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
            keys.sort();
            keys
        };
        assert_eq!(keys("cloudwatch"), ["sort_keys=true"]);
        assert_eq!(keys("cloudwatch_logs"), Vec::<String>::new());
        assert_eq!(keys("firehose"), ["sort_keys=true"]);
        assert_eq!(keys("kinesis_firehose"), ["oversize_records=\"drop\""]);
        assert_eq!(
            keys("kinesis"),
            [
                "append_newline=false",
                "oversize_records=\"truncate\"",
                "sort_keys=true"
            ]
        );
        assert_eq!(keys("kinesis_streams"), Vec::<String>::new());
        let mut t = Table::new();
        t.insert("oversize_records".into(), "truncate".into());
        per_plugin_defaults("kinesis_firehose", &mut t);
        assert_eq!(t["oversize_records"].as_str(), Some("truncate"));
    }
}
