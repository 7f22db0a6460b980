//! Sizes (`"64MiB"`, `"6M"`, `1024`) and durations (`"30s"`, `"1m30s"`, `"250ms"`) in config.

use serde::{Deserialize, Deserializer, de};
use std::time::Duration;

/// A size in bytes: an integer, or a string with a unit (`K`, `KB`, `KiB`, `M`, `MB`, `MiB`,
/// `G`, …; the decimal and binary forms both mean powers of 1024, as in Fluent Bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parse `"64MiB"`-style text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size; e.g. \"64MiB\" or 1048576"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {s:?}; use K, M or G (e.g. \"64MiB\")"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// A duration written as `"30s"`, `"250ms"`, `"1m30s"`, `"2h"`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationStr(pub Duration);

impl DurationStr {
    /// `secs` seconds.
    pub fn from_secs(secs: u64) -> Self {
        DurationStr(Duration::from_secs(secs))
    }

    /// Parse `"1m30s"`-style text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration; e.g. \"30s\", \"250ms\" or \"1m30s\"");
        let mut total = Duration::ZERO;
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = rest.parse::<u64>() {
            return Ok(Self::from_secs(secs));
        }
        while !rest.is_empty() {
            let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..split].parse().map_err(|_| bad())?;
            rest = &rest[split..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            total += match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                _ => return Err(bad()),
            };
        }
        Ok(DurationStr(total))
    }
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(DurationStr::from_secs(n)),
            Raw::S(s) => DurationStr::parse(&s).map_err(de::Error::custom),
        }
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
    }

    #[test]
    fn durations() {
        assert_eq!(
            DurationStr::parse("30s").unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            DurationStr::parse("1m30s").unwrap().0,
            Duration::from_secs(90)
        );
        assert_eq!(
            DurationStr::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(DurationStr::parse("5").unwrap().0, Duration::from_secs(5));
        assert!(DurationStr::parse("soon").is_err());
        assert!(DurationStr::parse("10x").is_err());
        assert!(DurationStr::parse("").is_err());
    }
}
