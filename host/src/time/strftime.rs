//! strftime in UTC for `time_key_format`, `s3_key_format` and `json_date_format`, with the
//! sub-second extensions users have in their Fluent Bit configs: `%L` milliseconds (Fluentd and
//! the Go `firehose` plugin), `%f` microseconds (Go plugin), `%3N` / `%6N` / `%9N` / `%N`
//! (the AWS C plugins). A specifier it does not know is kept as written, like glibc does.

use super::calendar::Utc;
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
        let t = Utc::from_ns(time_ns);
        for item in &self.items {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Fraction(3) => write!(out, "{:03}", t.nanos / 1_000_000).unwrap(),
                Item::Fraction(6) => write!(out, "{:06}", t.nanos / 1_000).unwrap(),
                Item::Fraction(_) => write!(out, "{:09}", t.nanos).unwrap(),
                Item::Spec(c) => spec(&t, *c, out),
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

/// Appends the conversion `c` (the character after `%`) of `t`.
fn spec(t: &Utc, c: char, out: &mut String) {
    let hour12 = if t.hour.is_multiple_of(12) {
        12
    } else {
        t.hour % 12
    };
    match c {
        'Y' => write!(out, "{}", t.year),
        'C' => write!(out, "{:02}", t.year.div_euclid(100)),
        'y' => write!(out, "{:02}", t.year.rem_euclid(100)),
        'm' => write!(out, "{:02}", t.month),
        'd' => write!(out, "{:02}", t.day),
        'e' => write!(out, "{:2}", t.day),
        'j' => write!(out, "{:03}", t.yday + 1),
        'H' => write!(out, "{:02}", t.hour),
        'k' => write!(out, "{:2}", t.hour),
        'I' => write!(out, "{hour12:02}"),
        'l' => write!(out, "{hour12:2}"),
        'M' => write!(out, "{:02}", t.minute),
        'S' => write!(out, "{:02}", t.second),
        'p' => write!(out, "{}", if t.hour < 12 { "AM" } else { "PM" }),
        'a' => write!(out, "{}", &WEEKDAYS[t.weekday as usize][..3]),
        'A' => write!(out, "{}", WEEKDAYS[t.weekday as usize]),
        'b' | 'h' => write!(out, "{}", &MONTHS[t.month as usize - 1][..3]),
        'B' => write!(out, "{}", MONTHS[t.month as usize - 1]),
        's' => write!(out, "{}", t.secs),
        'u' => write!(out, "{}", if t.weekday == 0 { 7 } else { t.weekday }),
        'w' => write!(out, "{}", t.weekday),
        'z' => write!(out, "+0000"),
        'Z' => write!(out, "UTC"),
        'F' => write!(out, "{}-{:02}-{:02}", t.year, t.month, t.day),
        'T' => write!(out, "{:02}:{:02}:{:02}", t.hour, t.minute, t.second),
        'R' => write!(out, "{:02}:{:02}", t.hour, t.minute),
        'r' => {
            write!(
                out,
                "{hour12:02}:{:02}:{:02} {}",
                t.minute,
                t.second,
                if t.hour < 12 { "AM" } else { "PM" }
            )
        }
        'D' => write!(
            out,
            "{:02}/{:02}/{:02}",
            t.month,
            t.day,
            t.year.rem_euclid(100)
        ),
        'c' => write!(
            out,
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            &WEEKDAYS[t.weekday as usize][..3],
            &MONTHS[t.month as usize - 1][..3],
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.year
        ),
        'n' => writeln!(out),
        't' => write!(out, "\t"),
        _ => write!(out, "%"),
    }
    .unwrap();
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
