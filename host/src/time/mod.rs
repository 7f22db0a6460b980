//! Time as the router writes it, in UTC: the calendar arithmetic every time conversion uses
//! ([`calendar`]), strftime for the formats users configure ([`strftime`]), reading a time with
//! a parser's `Time_Format` ([`parse`], strptime's subset), and the RFC 3339 timestamps of
//! `stdout` and dead-letter files ([`rfc3339`]).

pub mod calendar;
pub mod parse;
pub mod strftime;

/// `time_ns` as an RFC 3339 UTC timestamp with nanoseconds.
pub fn rfc3339(time_ns: u64) -> String {
    let t = calendar::Utc::from_ns(time_ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.nanos
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
