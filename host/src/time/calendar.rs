//! Proleptic Gregorian calendar arithmetic in UTC: days since the Unix epoch to a date and
//! back (Howard Hinnant's `civil_from_days` / `days_from_civil`), leap years, month lengths,
//! and an instant broken down into its fields.

/// Whether `year` has a 29 February.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The (month, day) of day `yday` (1-based) of `year`; `None` past the year's end or for 0.
pub fn month_day_of(year: i64, yday: u32) -> Option<(u32, u32)> {
    let mut left = yday;
    for month in 1..=12 {
        let n = days_in_month(year, month);
        if (1..=n).contains(&left) {
            return Some((month, left));
        }
        left = left.checked_sub(n)?;
    }
    None
}

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC instant broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u64,
    /// The year.
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// 0 (Sunday) – 6.
    pub weekday: u32,
    /// Days since 1 January: 0–365.
    pub yday: u32,
}

impl Utc {
    /// `time_ns` (nanoseconds since the epoch) broken down.
    pub fn from_ns(time_ns: u64) -> Utc {
        let secs = (time_ns / 1_000_000_000) as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            secs,
            nanos: time_ns % 1_000_000_000,
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday: (days - days_from_civil(year, 1, 1)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn leap_years_and_days_of_the_year() {
        assert!(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2023));
        assert_eq!(month_day_of(2024, 60), Some((2, 29)));
        assert_eq!(month_day_of(2023, 60), Some((3, 1)));
        assert_eq!(month_day_of(2023, 365), Some((12, 31)));
        assert_eq!(month_day_of(2023, 366), None);
        assert_eq!(month_day_of(2023, 0), None);
    }

    #[test]
    fn instants_break_down() {
        // 2023-11-14T22:13:20.123456789Z, a Tuesday, day 318 of the year.
        let t = Utc::from_ns(1_700_000_000_123_456_789);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!((t.nanos, t.weekday, t.yday + 1), (123_456_789, 2, 318));
    }
}
