//! Sizes (`"64MiB"`, `"6M"`, `1024`) and durations (`"30s"`, `"1m30s"`, `"250ms"`, `"1.5s"`) in
//! config. Parsing is checked: a value that does not fit is an error, never a wrapped number,
//! and durations are bounded by [`DurationStr::MAX`] so that no deadline computed from one
//! (`Instant::now() + d`, `d * 2`) can overflow.

use serde::{Deserialize, Deserializer, de};
use std::fmt;
use std::time::Duration;

/// A size in bytes: an integer, or a string with a unit (`K`, `KB`, `KiB`, `M`, `MB`, `MiB`,
/// `G`, …; the decimal and binary forms both mean powers of 1024, as in Fluent Bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The largest size accepted: 1 PiB, far above any buffer or request the router can hold,
    /// and small enough that sums and `as usize` of sizes never overflow.
    pub const MAX: u64 = 1 << 50;

    /// Parse `"64MiB"`-style text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(if s.starts_with('-') {
                format!("{s:?}: a size cannot be negative; e.g. \"64MiB\"")
            } else {
                format!("{s:?} is not a size; e.g. \"64MiB\" or 1048576")
            });
        }
        if unit.starts_with('.') {
            return Err(format!(
                "{s:?}: a size is a whole number of its unit; e.g. \"1536KiB\" instead of \"1.5MiB\""
            ));
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {s:?}; use K, M or G (e.g. \"64MiB\")"
                ));
            }
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .filter(|&n| n <= Self::MAX)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large; a size is at most 1PiB (\"1048576GiB\")"))
    }

    /// `n` bytes, bounded by [`ByteSize::MAX`].
    pub fn from_bytes(n: u64) -> Result<Self, String> {
        if n > Self::MAX {
            return Err(format!(
                "{n} is too large; a size is at most 1PiB (\"1048576GiB\")"
            ));
        }
        Ok(ByteSize(n))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText {
            expecting: "a size: a number of bytes or text with a unit, e.g. \"64MiB\"",
            integer: |n| {
                u64::try_from(n)
                    .map_err(|_| format!("{n}: a size cannot be negative; e.g. \"64MiB\""))
                    .and_then(ByteSize::from_bytes)
            },
            float: |f| {
                Err(format!(
                    "{f}: a size is a whole number of bytes; e.g. 1048576 or \"1MiB\""
                ))
            },
            text: ByteSize::parse,
        })
    }
}

/// A duration written as `"30s"`, `"250ms"`, `"1m30s"`, `"1.5s"`, `"2h"`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationStr(pub Duration);

impl DurationStr {
    /// The longest duration accepted: 10 years (87600h). Longer values are refused, so
    /// `Instant::now() + d` and small multiples of `d` always fit.
    pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

    /// `secs` seconds.
    pub fn from_secs(secs: u64) -> Self {
        DurationStr(Duration::from_secs(secs))
    }

    /// Parse `"1m30s"`-style text: numbers (optionally with a fraction) each followed by `ms`,
    /// `s`, `m` or `h`; or one plain number of seconds.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration; e.g. \"30s\", \"250ms\" or \"1m30s\"");
        let too_long = || format!("{s:?} is too long; a duration is at most \"87600h\" (10 years)");
        let rest = s.trim();
        if rest.starts_with('-') {
            return Err(format!(
                "{s:?}: a duration cannot be negative; e.g. \"30s\""
            ));
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        let mut rest = rest;
        let mut plain_seconds = true;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (num, after) = rest.split_at(num_len);
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let nanos_per_unit: u128 = match unit {
                "" if plain_seconds && after.is_empty() => 1_000_000_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(bad()),
            };
            plain_seconds = false;
            let nanos = scaled(num, nanos_per_unit).ok_or_else(bad)?;
            total = total
                .checked_add(nanos.ok_or_else(too_long)?)
                .ok_or_else(too_long)?;
            rest = after;
        }
        let d = u64::try_from(total / 1_000_000_000)
            .ok()
            .map(|secs| Duration::new(secs, (total % 1_000_000_000) as u32))
            .filter(|d| *d <= Self::MAX)
            .ok_or_else(too_long)?;
        Ok(DurationStr(d))
    }

    /// `secs` seconds, bounded by [`DurationStr::MAX`].
    fn from_secs_checked(secs: u64) -> Result<Self, String> {
        let d = Duration::from_secs(secs);
        if d > Self::MAX {
            return Err(format!(
                "{secs} seconds is too long; a duration is at most \"87600h\" (10 years)"
            ));
        }
        Ok(DurationStr(d))
    }
}

/// `num` (digits, optionally with one `.` and a fraction) times `unit` nanoseconds: `None` when
/// `num` is not a number, `Some(None)` when the product does not fit.
fn scaled(num: &str, unit: u128) -> Option<Option<u128>> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        match int.parse::<u128>() {
            Ok(n) => n,
            Err(_) => return Some(None),
        }
    };
    // Digits beyond nanosecond precision of the largest unit cannot change the result.
    let frac = &frac[..frac.len().min(18)];
    let frac_nanos = if frac.is_empty() {
        0
    } else {
        let digits: u128 = frac.parse().ok()?;
        unit * digits / 10u128.pow(frac.len() as u32)
    };
    Some(
        int.checked_mul(unit)
            .and_then(|n| n.checked_add(frac_nanos)),
    )
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText {
            expecting: "a duration: a number of seconds or text with a unit, e.g. \"30s\"",
            integer: |n| {
                u64::try_from(n)
                    .map_err(|_| format!("{n}: a duration cannot be negative; e.g. \"30s\""))
                    .and_then(DurationStr::from_secs_checked)
            },
            float: |f| {
                if f.is_finite() && f >= 0.0 {
                    DurationStr::parse(&format!("{f}s"))
                } else {
                    Err(format!("{f} is not a duration; e.g. \"30s\" or 1.5"))
                }
            },
            text: DurationStr::parse,
        })
    }
}

/// A serde visitor for values written as a number or as text with a unit.
struct NumberOrText<T> {
    expecting: &'static str,
    integer: fn(i128) -> Result<T, String>,
    float: fn(f64) -> Result<T, String>,
    text: fn(&str) -> Result<T, String>,
}

impl<T> de::Visitor<'_> for NumberOrText<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.integer)(v.into()).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.integer)(v.into()).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        (self.float)(v).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.text)(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("6144000").unwrap().0, 6_144_000);
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("5M").unwrap().0, 5 << 20);
        assert_eq!(ByteSize::parse("32k").unwrap().0, 32 << 10);
        assert!(ByteSize::parse("12 parsecs").unwrap_err().contains("unit"));
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("").is_err());
    }

    #[test]
    fn sizes_that_do_not_fit_negative_or_fractional_are_refused() {
        for text in [
            "18446744073709551616",
            "17179869184G",
            "99999999999999999999999K",
        ] {
            let e = ByteSize::parse(text).unwrap_err();
            assert!(e.contains("too large"), "{text}: {e}");
        }
        assert_eq!(ByteSize::parse("1048576GiB").unwrap().0, ByteSize::MAX);
        assert!(ByteSize::parse("1048577GiB").is_err());
        assert!(ByteSize::parse("-1M").unwrap_err().contains("negative"));
        assert!(
            ByteSize::parse("1.5M")
                .unwrap_err()
                .contains("whole number")
        );
        let de = |toml: &str| {
            toml::from_str::<toml::Table>(toml)
                .unwrap()
                .remove("v")
                .unwrap()
                .try_into::<ByteSize>()
                .map_err(|e| e.to_string())
        };
        assert_eq!(de("v = 1024").unwrap().0, 1024);
        assert!(de("v = -1").unwrap_err().contains("negative"));
        assert!(de("v = 1.5").unwrap_err().contains("whole number"));
        assert!(de("v = true").is_err());
    }

    #[test]
    fn durations() {
        let d = |s: &str| DurationStr::parse(s).unwrap().0;
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("5"), Duration::from_secs(5));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("1.5"), Duration::from_millis(1500));
        assert_eq!(d("0.5m"), Duration::from_secs(30));
        assert_eq!(d("2h1ms"), Duration::from_millis(7_200_001));
        assert_eq!(d("87600h"), DurationStr::MAX);
        for bad in [
            "soon", "10x", "", "ms", ".", "1..5s", "1m5", "5 s", "1.5.5s",
        ] {
            assert!(DurationStr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_that_do_not_fit_are_refused_not_wrapped() {
        // 307445734561825861 minutes × 60 wraps u64 seconds to 44 s without checked arithmetic.
        for text in [
            "307445734561825861m",
            "18446744073709551615s",
            "18446744073709551616",
            "5124095576030432h",
            "87600h1ms",
            "99999999999999999999999999999999999999999h",
        ] {
            let e = DurationStr::parse(text).unwrap_err();
            assert!(
                e.contains("too long") && e.contains("87600h"),
                "{text}: {e}"
            );
        }
        assert!(DurationStr::parse("-1s").unwrap_err().contains("negative"));
        let de = |toml: &str| {
            toml::from_str::<toml::Table>(toml)
                .unwrap()
                .remove("v")
                .unwrap()
                .try_into::<DurationStr>()
                .map_err(|e| e.to_string())
        };
        assert_eq!(de("v = 2").unwrap().0, Duration::from_secs(2));
        assert_eq!(de("v = 0.25").unwrap().0, Duration::from_millis(250));
        assert!(de("v = -3").unwrap_err().contains("negative"));
        assert!(
            de("v = 9223372036854775807")
                .unwrap_err()
                .contains("too long")
        );
        assert!(de("v = nan").is_err());
        assert!(de("v = -inf").is_err());
        assert!(de("v = 1e300").unwrap_err().contains("too long"));
    }
}
