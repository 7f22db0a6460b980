//! The event time under `json_date_key`, in the formats of Fluent Bit's
//! `json_date_format` (`src/flb_pack.c`, `flb_pack_msgpack_to_json_format`): `double`
//! (seconds with the fraction), `epoch` (whole seconds), `epoch_ms`, `iso8601`
//! (`%Y-%m-%dT%H:%M:%S.` + microseconds + `Z`) and `java_sql_timestamp`
//! (`%Y-%m-%d %H:%M:%S.` + microseconds), all in UTC.

use wasm_router_sdk::vendor::civil_from_days;

/// One of Fluent Bit's date formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `1700000000.123456`.
    Double,
    /// `1700000000`.
    Epoch,
    /// `1700000000123`.
    EpochMs,
    /// `"2023-11-14T22:13:20.123456Z"`.
    Iso8601,
    /// `"2023-11-14 22:13:20.123456"`.
    JavaSqlTimestamp,
}

impl DateFormat {
    /// The format Fluent Bit names `name` (case-insensitive), as `flb_pack_to_json_date_type`.
    pub fn parse(name: &str) -> Option<DateFormat> {
        Some(match name.to_ascii_lowercase().as_str() {
            "double" => DateFormat::Double,
            "epoch" => DateFormat::Epoch,
            "epoch_ms" | "epoch_millis" | "epoch_milliseconds" => DateFormat::EpochMs,
            "iso8601" => DateFormat::Iso8601,
            "java_sql_timestamp" => DateFormat::JavaSqlTimestamp,
            _ => return None,
        })
    }

    /// Writes `time_ns` (since the Unix epoch) as a JSON value.
    pub fn write(self, out: &mut Vec<u8>, time_ns: u64) {
        let seconds = time_ns / 1_000_000_000;
        let nanos = time_ns % 1_000_000_000;
        let text = match self {
            DateFormat::Double => format!("{seconds}.{:06}", nanos / 1000),
            DateFormat::Epoch => seconds.to_string(),
            DateFormat::EpochMs => (time_ns / 1_000_000).to_string(),
            DateFormat::Iso8601 => format!("\"{}.{:06}Z\"", civil(seconds, 'T'), nanos / 1000),
            DateFormat::JavaSqlTimestamp => {
                format!("\"{}.{:06}\"", civil(seconds, ' '), nanos / 1000)
            }
        };
        out.extend_from_slice(text.as_bytes());
    }
}

/// `YYYY-MM-DD{sep}HH:MM:SS` of `seconds` since the epoch, UTC.
fn civil(seconds: u64, sep: char) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}{sep}{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(format: DateFormat, time_ns: u64) -> String {
        let mut out = Vec::new();
        format.write(&mut out, time_ns);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fluent_bit_formats() {
        let t = 1_700_000_000_123_456_789;
        assert_eq!(shown(DateFormat::Double, t), "1700000000.123456");
        assert_eq!(shown(DateFormat::Epoch, t), "1700000000");
        assert_eq!(shown(DateFormat::EpochMs, t), "1700000000123");
        assert_eq!(
            shown(DateFormat::Iso8601, t),
            "\"2023-11-14T22:13:20.123456Z\""
        );
        assert_eq!(
            shown(DateFormat::JavaSqlTimestamp, t),
            "\"2023-11-14 22:13:20.123456\""
        );
        assert_eq!(
            shown(DateFormat::Iso8601, 951_782_400_000_000_000),
            "\"2000-02-29T00:00:00.000000Z\""
        );
        assert_eq!(DateFormat::parse("ISO8601"), Some(DateFormat::Iso8601));
        assert_eq!(DateFormat::parse("rfc3339"), None);
    }
}
