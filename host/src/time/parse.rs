//! `Time_Format`: the `strptime` subset Fluent Bit parsers use, compiled once and applied to a
//! record's time field.
//!
//! Directives: `%Y` `%y` `%m` `%d` `%e` `%H` `%I` `%p` `%M` `%S` `%L` (fractional seconds, Fluent
//! Bit's extension; `%f` is the same) `%z` (`Z`, `+hh`, `+hhmm`, `+hh:mm`) `%Z` (`UTC`/`GMT`/`Z`)
//! `%b` `%h` `%B` (month names) `%a` `%A` (weekday names, skipped) `%j` `%s` (epoch seconds) `%T`
//! `%F` `%D` `%R` `%n` `%t` `%%`. A blank in the format matches any run of blanks. Times with
//! no zone are UTC, shifted by `Time_Offset` when the parser sets one, or in the zone given with
//! [`TimeFormat::in_zone`] (the system's or a named one, through `jiff`). Other directives are
//! refused when the parser is loaded, naming the directive. The calendar arithmetic is
//! [`crate::time::calendar`]'s.

use super::calendar::{days_from_civil, days_in_month, month_day_of};

/// A compiled `Time_Format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeFormat {
    items: Vec<Item>,
    /// Seconds east of UTC applied when the text has no zone (`Time_Offset`).
    offset_seconds: i64,
    /// The zone of times written without one, when it is not a fixed offset
    /// (`Time_System_Timezone`, `Time_Zone`).
    local_zone: Option<jiff::tz::TimeZone>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Literal(char),
    Blank,
    Directive(char),
}

const DIRECTIVES: &str = "YymdeHIpMSLfzZbhBaAjsnt%";

impl TimeFormat {
    /// Compile `format`, with `offset` (`Time_Offset`, e.g. `+0900`) for zone-less times.
    pub fn new(format: &str, offset: Option<&str>) -> Result<TimeFormat, String> {
        let mut items = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                let d = chars
                    .next()
                    .ok_or_else(|| format!("Time_Format {format:?} ends with a lone `%`"))?;
                let expanded = match d {
                    'T' => "%H:%M:%S",
                    'F' => "%Y-%m-%d",
                    'D' => "%m/%d/%y",
                    'R' => "%H:%M",
                    _ => "",
                };
                if !expanded.is_empty() {
                    items.extend(TimeFormat::new(expanded, None)?.items);
                } else if DIRECTIVES.contains(d) {
                    items.push(Item::Directive(d));
                } else {
                    return Err(format!(
                        "Time_Format {format:?}: `%{d}` is not supported (supported: %Y %y %m %d %e %H %I %p %M %S %L %f %z %Z %b %h %B %a %A %j %s %T %F %D %R %%); change the format, or parse the time in a WASM filter"
                    ));
                }
            } else if c.is_whitespace() {
                if items.last() != Some(&Item::Blank) {
                    items.push(Item::Blank);
                }
            } else {
                items.push(Item::Literal(c));
            }
        }
        let offset_seconds = match offset {
            None => 0,
            Some(o) => parse_zone(o.trim().as_bytes())
                .filter(|(_, used)| *used == o.trim().len())
                .map(|(secs, _)| secs)
                .ok_or_else(|| format!("Time_Offset {o:?} is not `+hhmm` / `-hh:mm`"))?,
        };
        Ok(TimeFormat {
            items,
            offset_seconds,
            local_zone: None,
        })
    }

    /// Read times written without a zone in `zone` (instead of UTC or `Time_Offset`).
    pub fn in_zone(mut self, zone: jiff::tz::TimeZone) -> TimeFormat {
        self.local_zone = Some(zone);
        self
    }

    /// Nanoseconds since the Unix epoch of `text`, or `None` when it does not fit the format.
    pub fn parse(&self, text: &[u8]) -> Option<u64> {
        self.parse_with(text, Fit::Whole)
    }

    /// As [`TimeFormat::parse`], but text after the format's end is ignored, as `strptime`
    /// does (a parser's time with the default `Time_Strict On`).
    pub fn parse_prefix(&self, text: &[u8]) -> Option<u64> {
        self.parse_with(text, Fit::Prefix)
    }

    /// The time of as much of the format as `text` fits (a parser's `Time_Strict Off`); still
    /// `None` without a year and month.
    pub fn parse_partial(&self, text: &[u8]) -> Option<u64> {
        self.parse_with(text, Fit::Partial)
    }

    fn parse_with(&self, text: &[u8], fit: Fit) -> Option<u64> {
        let mut p = Parsed::default();
        let mut at = 0usize;
        for item in &self.items {
            let used = match item {
                Item::Blank => Some(
                    text[at..]
                        .iter()
                        .take_while(|b| b.is_ascii_whitespace())
                        .count(),
                ),
                Item::Literal(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    text[at..].starts_with(lit).then_some(lit.len())
                }
                Item::Directive(d) => p.directive(*d, &text[at..]),
            };
            match (used, fit) {
                (Some(n), _) => at += n,
                (None, Fit::Partial) => break,
                (None, _) => return None,
            }
        }
        if fit == Fit::Whole && !text[at..].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        p.to_nanos(self.offset_seconds, self.local_zone.as_ref())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    Whole,
    Prefix,
    Partial,
}

#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    yday: Option<u32>,
    hour: u32,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
    zone: Option<i64>,
    epoch: Option<i64>,
}

fn digits(text: &[u8], max: usize) -> Option<(i64, usize)> {
    let n = text
        .iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 {
        return None;
    }
    let value = std::str::from_utf8(&text[..n]).ok()?.parse().ok()?;
    Some((value, n))
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Index and length of the (full or three-letter) name in `names` that `text` starts with.
fn name(text: &[u8], names: &[&str]) -> Option<(usize, usize)> {
    let lower: Vec<u8> = text.iter().take(9).map(u8::to_ascii_lowercase).collect();
    names.iter().enumerate().find_map(|(i, n)| {
        if lower.starts_with(n.as_bytes()) {
            Some((i, n.len()))
        } else if lower.starts_with(&n.as_bytes()[..3]) {
            Some((i, 3))
        } else {
            None
        }
    })
}

/// Seconds east of UTC and bytes used, from `Z`, `+hh`, `+hhmm` or `+hh:mm`.
fn parse_zone(text: &[u8]) -> Option<(i64, usize)> {
    match text.first()? {
        b'Z' | b'z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let (h, n) = digits(&text[1..], 2).filter(|(_, n)| *n == 2)?;
            let mut used = 1 + n;
            let rest = &text[used..];
            let rest_digits = if rest.first() == Some(&b':') {
                used += 1;
                &rest[1..]
            } else {
                rest
            };
            let m = match digits(rest_digits, 2) {
                Some((m, 2)) => {
                    used += 2;
                    m
                }
                _ if rest.first() == Some(&b':') => return None,
                _ => 0,
            };
            let secs = h * 3600 + m * 60;
            Some((if *sign == b'-' { -secs } else { secs }, used))
        }
        _ => None,
    }
}

impl Parsed {
    /// Read directive `d` at the start of `text`; returns the bytes used.
    fn directive(&mut self, d: char, text: &[u8]) -> Option<usize> {
        let number = |max: usize| digits(text, max);
        match d {
            'Y' => {
                let (v, n) = number(4)?;
                self.year = Some(v);
                Some(n)
            }
            'y' => {
                let (v, n) = number(2)?;
                self.year = Some(if v < 69 { 2000 + v } else { 1900 + v });
                Some(n)
            }
            'm' => {
                let (v, n) = number(2)?;
                self.month = Some(v as u32);
                Some(n)
            }
            'd' | 'e' => {
                let skip = usize::from(d == 'e' && text.first() == Some(&b' '));
                let (v, n) = digits(&text[skip..], 2)?;
                self.day = Some(v as u32);
                Some(skip + n)
            }
            'j' => {
                let (v, n) = number(3)?;
                self.yday = Some(v as u32);
                Some(n)
            }
            'H' | 'I' => {
                let (v, n) = number(2)?;
                self.hour = v as u32;
                Some(n)
            }
            'p' => {
                let upper: Vec<u8> = text.iter().take(2).map(u8::to_ascii_uppercase).collect();
                self.pm = Some(match upper.as_slice() {
                    b"AM" => false,
                    b"PM" => true,
                    _ => return None,
                });
                Some(2)
            }
            'M' => {
                let (v, n) = number(2)?;
                self.minute = v as u32;
                Some(n)
            }
            'S' => {
                let (v, n) = number(2)?;
                self.second = v as u32;
                Some(n)
            }
            'L' | 'f' => {
                let n = text.iter().take_while(|b| b.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                let mut nanos = 0u32;
                for (i, b) in text[..n].iter().enumerate() {
                    if i < 9 {
                        nanos = nanos * 10 + u32::from(b - b'0');
                    }
                }
                for _ in n..9 {
                    nanos *= 10;
                }
                self.nanos = nanos;
                Some(n)
            }
            'z' => {
                let (secs, n) = parse_zone(text)?;
                self.zone = Some(secs);
                Some(n)
            }
            'Z' => {
                for zone in ["UTC", "GMT", "Z"] {
                    if text.starts_with(zone.as_bytes()) {
                        self.zone = Some(0);
                        return Some(zone.len());
                    }
                }
                None
            }
            'b' | 'h' | 'B' => {
                let (i, n) = name(text, &MONTHS)?;
                self.month = Some(i as u32 + 1);
                Some(n)
            }
            'a' | 'A' => name(text, &WEEKDAYS).map(|(_, n)| n),
            's' => {
                let negative = text.first() == Some(&b'-');
                let (v, n) = digits(&text[usize::from(negative)..], 19)?;
                self.epoch = Some(if negative { -v } else { v });
                Some(n + usize::from(negative))
            }
            'n' | 't' => Some(text.iter().take_while(|b| b.is_ascii_whitespace()).count()),
            '%' => (text.first() == Some(&b'%')).then_some(1),
            _ => None,
        }
    }

    fn to_nanos(
        &self,
        default_offset: i64,
        local_zone: Option<&jiff::tz::TimeZone>,
    ) -> Option<u64> {
        let seconds = match self.epoch {
            Some(epoch) => epoch,
            None => {
                let year = self.year?;
                let (month, day) = match (self.month, self.day, self.yday) {
                    (Some(m), Some(d), _) => (m, d),
                    (None, None, Some(yday)) => month_day_of(year, yday)?,
                    (Some(m), None, _) => (m, 1),
                    _ => return None,
                };
                if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
                    return None;
                }
                let hour = match self.pm {
                    Some(pm) if (1..=12).contains(&self.hour) => {
                        self.hour % 12 + if pm { 12 } else { 0 }
                    }
                    Some(_) => return None,
                    None => self.hour,
                };
                if hour > 23 || self.minute > 59 || self.second > 60 {
                    return None;
                }
                let days = days_from_civil(year, month, day);
                let local = days * 86_400
                    + i64::from(hour) * 3600
                    + i64::from(self.minute) * 60
                    + i64::from(self.second);
                match (self.zone, local_zone) {
                    (Some(zone), _) => local - zone,
                    (None, None) => local - default_offset,
                    (None, Some(tz)) => {
                        let dt = jiff::civil::DateTime::new(
                            i16::try_from(year).ok()?,
                            month as i8,
                            day as i8,
                            hour as i8,
                            self.minute as i8,
                            self.second.min(59) as i8,
                            0,
                        )
                        .ok()?;
                        // A leap second (`:60`) is the next second, as in the arithmetic above.
                        tz.to_ambiguous_timestamp(dt).compatible().ok()?.as_second()
                            + i64::from(self.second.saturating_sub(59))
                    }
                }
            }
        };
        let nanos = i128::from(seconds) * 1_000_000_000 + i128::from(self.nanos);
        u64::try_from(nanos).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(format: &str, text: &str) -> Option<u64> {
        TimeFormat::new(format, None)
            .unwrap()
            .parse(text.as_bytes())
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn the_formats_of_fluent_bits_parsers_conf() {
        // json: %d/%b/%Y:%H:%M:%S %z
        assert_eq!(
            at("%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336 * SEC)
        );
        // docker: %Y-%m-%dT%H:%M:%S.%L (UTC)
        assert_eq!(
            at("%Y-%m-%dT%H:%M:%S.%L", "2024-02-29T23:59:59.123456789"),
            Some(1_709_251_199 * SEC + 123_456_789)
        );
        assert_eq!(
            at("%Y-%m-%dT%H:%M:%S.%L%z", "2024-01-01T00:00:00.5+01:00"),
            Some(1_704_063_600 * SEC + 500_000_000)
        );
        assert_eq!(
            at("%Y-%m-%dT%H:%M:%S%z", "2024-01-01T00:00:00Z"),
            Some(1_704_067_200 * SEC)
        );
        assert_eq!(at("%s", "1700000000"), Some(1_700_000_000 * SEC));
        assert_eq!(
            at("%b %e %T", "Feb  3 04:05:06"),
            None,
            "no year: refused rather than guessed"
        );
        assert_eq!(
            at("%Y %b %e %T", "2023 Feb  3 04:05:06"),
            Some(1_675_397_106 * SEC)
        );
        assert_eq!(
            at("%F %I:%M %p", "2023-01-01 12:30 AM"),
            Some(1_672_533_000 * SEC)
        );
    }

    #[test]
    fn text_that_does_not_fit_is_refused() {
        let f = "%d/%b/%Y:%H:%M:%S %z";
        assert_eq!(at(f, "2024-01-01T00:00:00Z"), None);
        assert_eq!(at("%Y-%m-%d", "2023-02-29"), None);
        assert_eq!(at("%Y-%m-%d", "2023-02-28 trailing"), None);
        let f = TimeFormat::new("%Y-%m-%d %H:%M", None).unwrap();
        assert_eq!(
            f.parse_prefix(b"2023-02-28 01:02Z trailing"),
            Some((1_677_542_400 + 3720) * SEC)
        );
        assert_eq!(f.parse_prefix(b"2023-02-28"), None);
        assert_eq!(f.parse_partial(b"2023-02-28"), Some(1_677_542_400 * SEC));
        assert_eq!(f.parse_partial(b"2023"), None, "no month");
        assert_eq!(at("%H:%M", "25:00"), None);
        let e = TimeFormat::new("%Y %Q", None).unwrap_err();
        assert!(e.contains("%Q") && e.contains("WASM"), "{e}");
    }

    #[test]
    fn time_offset_applies_to_zone_less_times_only() {
        let f = TimeFormat::new("%Y-%m-%d %H:%M:%S", Some("+0900")).unwrap();
        assert_eq!(f.parse(b"2024-01-01 09:00:00"), Some(1_704_067_200 * SEC));
        let f = TimeFormat::new("%Y-%m-%d %H:%M:%S %z", Some("+0900")).unwrap();
        assert_eq!(
            f.parse(b"2024-01-01 00:00:00 +0000"),
            Some(1_704_067_200 * SEC)
        );
        assert!(TimeFormat::new("%s", Some("nine")).is_err());
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let f = TimeFormat::new("%Y-%m-%d %H:%M:%S", None)
            .unwrap()
            .in_zone(paris);
        assert_eq!(f.parse(b"2024-01-01 01:00:00"), Some(1_704_067_200 * SEC));
        assert_eq!(
            f.parse(b"2024-07-01 02:00:00"),
            Some(1_719_792_000 * SEC),
            "summer time"
        );
    }
}
