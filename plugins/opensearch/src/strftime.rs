//! strftime in UTC for `time_key_format`, `logstash_dateformat` and `index`, with the
//! conversions Fluent Bit's configs use in those options (glibc's meaning): `%Y %C %y %m %d %e
//! %j %H %I %M %S %p %a %A %b %h %B %F %T %D %R %s %u %w %z %Z %n %t %%`. Any other conversion is
//! refused when the config is read, rather than written out as is.

use std::fmt::Write as _;
use wasm_router_sdk::vendor::civil_from_days;

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
const KNOWN: &str = "YCymdejHIMSpaAbhBFTDRsuwzZnt%";

/// A checked format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    text: String,
}

impl TimeFormat {
    /// Checks `text`: every `%` is followed by a known conversion.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some(spec) if KNOWN.contains(spec) => {}
                    Some(spec) => {
                        return Err(format!(
                            "{text:?}: %{spec} is not a conversion this output knows; use %Y, %m, %d, %H, %M, %S, %j, %b, %a and the like"
                        ));
                    }
                    None => return Err(format!("{text:?} ends with a lone %; write %% for a %")),
                }
            }
        }
        Ok(TimeFormat {
            text: text.to_string(),
        })
    }

    /// Appends the time `seconds` since the epoch (UTC) to `out`.
    pub fn write(&self, seconds: i64, out: &mut String) {
        let days = seconds.div_euclid(86_400);
        let rest = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (rest / 3600, rest / 60 % 60, rest % 60);
        let weekday = (days + 4).rem_euclid(7) as usize;
        let yday = days - days_before_year(year) + 1;
        let mut chars = self.text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let _ = match chars.next().unwrap_or('%') {
                'Y' => write!(out, "{year}"),
                'C' => write!(out, "{:02}", year.div_euclid(100)),
                'y' => write!(out, "{:02}", year.rem_euclid(100)),
                'm' => write!(out, "{month:02}"),
                'd' => write!(out, "{day:02}"),
                'e' => write!(out, "{day:2}"),
                'j' => write!(out, "{yday:03}"),
                'H' => write!(out, "{hour:02}"),
                'I' => write!(out, "{:02}", (hour + 11) % 12 + 1),
                'M' => write!(out, "{minute:02}"),
                'S' => write!(out, "{second:02}"),
                'p' => out.write_str(if hour < 12 { "AM" } else { "PM" }),
                'a' => out.write_str(&WEEKDAYS[weekday][..3]),
                'A' => out.write_str(WEEKDAYS[weekday]),
                'b' | 'h' => out.write_str(&MONTHS[month as usize - 1][..3]),
                'B' => out.write_str(MONTHS[month as usize - 1]),
                'F' => write!(out, "{year}-{month:02}-{day:02}"),
                'T' => write!(out, "{hour:02}:{minute:02}:{second:02}"),
                'D' => write!(out, "{month:02}/{day:02}/{:02}", year.rem_euclid(100)),
                'R' => write!(out, "{hour:02}:{minute:02}"),
                's' => write!(out, "{seconds}"),
                'u' => write!(out, "{}", if weekday == 0 { 7 } else { weekday }),
                'w' => write!(out, "{weekday}"),
                'z' => out.write_str("+0000"),
                'Z' => out.write_str("UTC"),
                'n' => out.write_str("\n"),
                't' => out.write_str("\t"),
                _ => out.write_str("%"),
            };
        }
    }

    /// The time `seconds` since the epoch (UTC), formatted.
    pub fn format(&self, seconds: i64) -> String {
        let mut out = String::new();
        self.write(seconds, &mut out);
        out
    }
}

/// Days from 1970-01-01 to January 1st of `year`.
fn days_before_year(year: i64) -> i64 {
    let y = year - 1;
    365 * (year - 1970) + (y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400))
        - (1969 / 4 - 1969 / 100 + 1969 / 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluent_bit_defaults_and_conversions() {
        let t = 1_700_000_000; // 2023-11-14 22:13:20 UTC, a Tuesday, day 318
        let f = |text: &str| TimeFormat::parse(text).unwrap().format(t);
        assert_eq!(f("%Y-%m-%dT%H:%M:%S"), "2023-11-14T22:13:20");
        assert_eq!(f("%Y.%m.%d"), "2023.11.14");
        assert_eq!(
            f("%j %a %A %b %B %I%p %u %w %y %C %e"),
            "318 Tue Tuesday Nov November 10PM 2 2 23 20 14"
        );
        assert_eq!(
            f("%F %T %D %R %s %z %Z 100%%"),
            "2023-11-14 22:13:20 11/14/23 22:13 1700000000 +0000 UTC 100%"
        );
        assert_eq!(TimeFormat::parse("%Y").unwrap().format(951_782_400), "2000");
        assert_eq!(TimeFormat::parse("%j").unwrap().format(951_782_400), "060");
        assert_eq!(TimeFormat::parse("%j").unwrap().format(0), "001");
    }

    #[test]
    fn unknown_conversions_are_refused() {
        assert!(TimeFormat::parse("%Q").unwrap_err().contains("%Q"));
        assert!(TimeFormat::parse("50%").unwrap_err().contains("lone %"));
    }
}
