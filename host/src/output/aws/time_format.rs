//! strftime in UTC for `time_key_format`, `s3_key_format` and `json_date_format`, with the
//! sub-second extensions users have in their Fluent Bit configs: `%L` milliseconds (Fluentd and
//! the Go `firehose` plugin), `%f` microseconds (Go plugin), `%3N` / `%6N` / `%9N` / `%N`
//! (the AWS C plugins). A specifier it does not know is kept as written, like glibc does.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Literal(String),
    /// A conversion character (after `%`).
    Spec(char),
    /// Sub-second digits: 3, 6 or 9.
    Fraction(u8),
}

/// A parsed format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeFormat {
    items: Vec<Item>,
}

const KNOWN: &str = "aAbBcCdDeFhHIjklmMnprRsStTuwyYzZ%";
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl TimeFormat {
    /// Parse `format` (never fails: unknown specifiers stay literal).
    pub fn new(format: &str) -> Self {
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let item = match chars.peek().copied() {
                Some('L') => Some(Item::Fraction(3)),
                Some('f') => Some(Item::Fraction(6)),
                Some('N') => Some(Item::Fraction(9)),
                Some(d @ ('3' | '6' | '9')) => {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead.peek() == Some(&'N') {
                        chars.next();
                        Some(Item::Fraction(d as u8 - b'0'))
                    } else {
                        None
                    }
                }
                Some(s) if KNOWN.contains(s) => Some(Item::Spec(s)),
                _ => None,
            };
            match item {
                Some(item) => {
                    chars.next();
                    if !literal.is_empty() {
                        items.push(Item::Literal(std::mem::take(&mut literal)));
                    }
                    items.push(item);
                }
                None => literal.push('%'),
            }
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        TimeFormat { items }
    }

    /// Whether the format has any conversion at all.
    pub fn has_conversions(&self) -> bool {
        self.items.iter().any(|i| !matches!(i, Item::Literal(_)))
    }

    /// Append `time_ns` (nanoseconds since the epoch) formatted, in UTC, to `out`.
    pub fn write(&self, time_ns: u64, out: &mut String) {
        let t = Civil::from_ns(time_ns);
        for item in &self.items {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Fraction(3) => write!(out, "{:03}", t.nanos / 1_000_000).unwrap(),
                Item::Fraction(6) => write!(out, "{:06}", t.nanos / 1_000).unwrap(),
                Item::Fraction(_) => write!(out, "{:09}", t.nanos).unwrap(),
                Item::Spec(c) => t.spec(*c, out),
            }
        }
    }

    /// `time_ns` formatted.
    pub fn format(&self, time_ns: u64) -> String {
        let mut s = String::new();
        self.write(time_ns, &mut s);
        s
    }
}

/// A UTC instant broken down.
struct Civil {
    secs: i64,
    nanos: u64,
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: u32,
    yday: u32,
}

impl Civil {
    fn from_ns(time_ns: u64) -> Civil {
        let secs = (time_ns / 1_000_000_000) as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32;
        Civil {
            secs,
            nanos: time_ns % 1_000_000_000,
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday,
        }
    }

    fn spec(&self, c: char, out: &mut String) {
        let hour12 = if self.hour.is_multiple_of(12) {
            12
        } else {
            self.hour % 12
        };
        match c {
            'Y' => write!(out, "{}", self.year),
            'C' => write!(out, "{:02}", self.year.div_euclid(100)),
            'y' => write!(out, "{:02}", self.year.rem_euclid(100)),
            'm' => write!(out, "{:02}", self.month),
            'd' => write!(out, "{:02}", self.day),
            'e' => write!(out, "{:2}", self.day),
            'j' => write!(out, "{:03}", self.yday + 1),
            'H' => write!(out, "{:02}", self.hour),
            'k' => write!(out, "{:2}", self.hour),
            'I' => write!(out, "{hour12:02}"),
            'l' => write!(out, "{hour12:2}"),
            'M' => write!(out, "{:02}", self.minute),
            'S' => write!(out, "{:02}", self.second),
            'p' => write!(out, "{}", if self.hour < 12 { "AM" } else { "PM" }),
            'a' => write!(out, "{}", &WEEKDAYS[self.weekday as usize][..3]),
            'A' => write!(out, "{}", WEEKDAYS[self.weekday as usize]),
            'b' | 'h' => write!(out, "{}", &MONTHS[self.month as usize - 1][..3]),
            'B' => write!(out, "{}", MONTHS[self.month as usize - 1]),
            's' => write!(out, "{}", self.secs),
            'u' => write!(out, "{}", if self.weekday == 0 { 7 } else { self.weekday }),
            'w' => write!(out, "{}", self.weekday),
            'z' => write!(out, "+0000"),
            'Z' => write!(out, "UTC"),
            'F' => write!(out, "{}-{:02}-{:02}", self.year, self.month, self.day),
            'T' => write!(
                out,
                "{:02}:{:02}:{:02}",
                self.hour, self.minute, self.second
            ),
            'R' => write!(out, "{:02}:{:02}", self.hour, self.minute),
            'r' => {
                write!(
                    out,
                    "{hour12:02}:{:02}:{:02} {}",
                    self.minute,
                    self.second,
                    if self.hour < 12 { "AM" } else { "PM" }
                )
            }
            'D' => write!(
                out,
                "{:02}/{:02}/{:02}",
                self.month,
                self.day,
                self.year.rem_euclid(100)
            ),
            'c' => write!(
                out,
                "{} {} {:2} {:02}:{:02}:{:02} {}",
                &WEEKDAYS[self.weekday as usize][..3],
                &MONTHS[self.month as usize - 1][..3],
                self.day,
                self.hour,
                self.minute,
                self.second,
                self.year
            ),
            'n' => writeln!(out),
            't' => write!(out, "\t"),
            _ => write!(out, "%"),
        }
        .unwrap();
    }
}

/// Days since 1970-01-01 → (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20.123456789Z, a Tuesday, day 318 of the year.
    const T: u64 = 1_700_000_000_123_456_789;

    #[test]
    fn fluent_bit_defaults() {
        assert_eq!(
            TimeFormat::new("%Y-%m-%dT%H:%M:%S").format(T),
            "2023-11-14T22:13:20"
        );
        assert_eq!(
            TimeFormat::new("/fluent-bit-logs/app/%Y/%m/%d/%H/%M/%S").format(T),
            "/fluent-bit-logs/app/2023/11/14/22/13/20"
        );
    }

    #[test]
    fn sub_second_extensions() {
        assert_eq!(TimeFormat::new("%S.%L").format(T), "20.123");
        assert_eq!(TimeFormat::new("%S.%f").format(T), "20.123456");
        assert_eq!(
            TimeFormat::new("%S.%3N|%6N|%9N|%N").format(T),
            "20.123|123456|123456789|123456789"
        );
        assert_eq!(TimeFormat::new("%3x %3").format(T), "%3x %3");
    }

    #[test]
    fn names_days_and_unknown_specifiers() {
        let f = TimeFormat::new("%a %A %b %B %j %u %w %p %I %y %C %e %s %z %Z %% %Q %");
        assert_eq!(
            f.format(T),
            "Tue Tuesday Nov November 318 2 2 PM 10 23 20 14 1700000000 +0000 UTC % %Q %"
        );
        assert_eq!(
            TimeFormat::new("%F %T %D %R").format(T),
            "2023-11-14 22:13:20 11/14/23 22:13"
        );
        assert_eq!(TimeFormat::new("%c").format(T), "Tue Nov 14 22:13:20 2023");
        assert_eq!(
            TimeFormat::new("%Y-%j").format(951_782_400_000_000_000),
            "2000-060"
        );
        assert_eq!(TimeFormat::new("%F %a").format(0), "1970-01-01 Thu");
    }

    #[test]
    fn literal_only_formats_have_no_conversions() {
        assert!(!TimeFormat::new("plain/key").has_conversions());
        assert!(TimeFormat::new("a/%H").has_conversions());
    }
}
