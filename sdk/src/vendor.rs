//! Helpers for outputs that POST a JSON array of log entries to a vendor's intake (Datadog,
//! New Relic, …):
//!
//! - [`Refusals::classify`]: what the intake's HTTP status means — 2xx ok; 408, 429 and 5xx
//!   retry (after `Retry-After`); 413 split; 400, 401/403, a 3xx and any other 4xx fail for
//!   good, worded in the vendor's terms; a transport error retries;
//! - [`EntryArrays`]: a batch's entries cut into array bodies under the vendor's byte and entry
//!   limits, an over-long entry written again with its message cut to fit;
//! - [`Shortfall`]: what no request carries (or carries cut), counted and logged once per
//!   batch;
//! - [`Compress`], [`millis`], [`civil_from_days`] and [`cut_at_char_boundary`]: the small
//!   pieces such outputs share.
//!
//! ```
//! use wasm_router_sdk::output::{Delivery, Request, Response};
//! use wasm_router_sdk::vendor::{EntryArrays, Refusals, Tally};
//! use wasm_router_sdk::{Batch, Error};
//!
//! const REFUSALS: Refusals<'static> = Refusals {
//!     bad_payload: "Acme refused the payload (HTTP 400)",
//!     bad_key: "Acme refused the key",
//!     key_fix: "check the secret `api_key`",
//!     redirect_fix: "set `url` to the intake itself",
//! };
//!
//! fn encode(batch: &Batch<'_>) -> Result<Vec<Request>, Error> {
//!     let mut arrays = EntryArrays::new(1_000_000, 1000, 999_998);
//!     for event in batch.events() {
//!         // The record as it is; a real plugin writes its own entry and cuts its message.
//!         arrays.push(
//!             event.index(),
//!             |_, out| {
//!                 out.clear();
//!                 wasm_router_sdk::json::write_record_json(out, event.body()).map(|()| false)
//!             },
//!             || None,
//!         )?;
//!     }
//!     let tally = Tally {
//!         malformed: "events_malformed",
//!         too_large: "entries_too_large",
//!         truncated: "entries_truncated",
//!         cut_to: "to fit a 1000000-byte payload",
//!         payload_bytes: 1_000_000,
//!     };
//!     Ok(arrays
//!         .finish(&tally)
//!         .into_iter()
//!         .map(|chunk| Request::post("https://intake.acme.example/logs").json_chunk(chunk))
//!         .collect())
//! }
//!
//! let answer = Response { id: 0, status: 403, headers: &[], body: b"no", transport_error: None };
//! assert_eq!(
//!     REFUSALS.classify(&answer),
//!     Delivery::FailPermanent(
//!         "Acme refused the key (HTTP 403): check the secret `api_key`: no".into()
//!     )
//! );
//! # let _ = encode;
//! ```

use crate::output::{Delivery, JsonArrayBuilder, JsonChunk, Response};
use crate::{log, metrics};
use std::fmt::Display;

/// The bytes of the response body quoted in a failure reason.
const QUOTED_BODY_BYTES: usize = 256;

/// How a vendor's intake words the refusals it documents; [`classify`](Self::classify) holds
/// the meaning of each status.
#[derive(Debug, Clone, Copy)]
pub struct Refusals<'a> {
    /// The reason of a 400, before the start of the body:
    /// `"Datadog refused the payload (HTTP 400 bad request)"`.
    pub bad_payload: &'a str,
    /// The reason of a 401 or 403, before ` (HTTP 403)`: `"Datadog refused the API key"`.
    pub bad_key: &'a str,
    /// What to check after a 401 or 403: `"check the secret `api_key`"`.
    pub key_fix: &'a str,
    /// What to set instead of a URL that redirects: `"set `url` to the intake itself"`.
    pub redirect_fix: &'a str,
}

impl Refusals<'_> {
    /// What `response` means for the request it answers.
    pub fn classify(&self, response: &Response<'_>) -> Delivery {
        if response.transport_error.is_some() || response.status == 0 {
            return Delivery::Retry(None);
        }
        let body = || response.body_text(QUOTED_BODY_BYTES);
        match response.status {
            200..=299 => Delivery::Ok,
            400 => Delivery::FailPermanent(format!("{}: {}", self.bad_payload, body())),
            status @ (401 | 403) => Delivery::FailPermanent(format!(
                "{} (HTTP {status}): {}: {}",
                self.bad_key,
                self.key_fix,
                body()
            )),
            408 | 429 | 500..=599 => Delivery::Retry(response.retry_after_ms()),
            413 => Delivery::SplitAndRetry,
            status @ 300..=399 => Delivery::FailPermanent(format!(
                "HTTP {status} redirect to {:?}: the router does not follow redirects; {}",
                response.header("location").unwrap_or(""),
                self.redirect_fix
            )),
            status => Delivery::FailPermanent(format!("HTTP {status}: {}", body())),
        }
    }
}

/// Events of one batch that no request carries, or carries cut.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Bodies that are not a record.
    pub malformed: u64,
    /// Entries too large for any request.
    pub too_large: u64,
    /// Entries sent with their message cut.
    pub truncated: u64,
    /// The first problem, for the log.
    pub first_problem: Option<String>,
}

/// How a [`Shortfall`] is counted and logged: the plugin's counter names and wording.
#[derive(Debug, Clone, Copy)]
pub struct Tally<'a> {
    /// Counter of bodies that are not a record (`events_malformed`).
    pub malformed: &'a str,
    /// Counter of entries too large for any request.
    pub too_large: &'a str,
    /// Counter of entries sent with their message cut.
    pub truncated: &'a str,
    /// What the messages were cut to, after `N message(s) cut `: `"to fit a 1000000-byte payload"`.
    pub cut_to: &'a str,
    /// The payload size named in the warning.
    pub payload_bytes: usize,
}

impl Shortfall {
    /// Adds the counters, warns once about what was left out and notes what was cut.
    pub fn report(&self, tally: &Tally<'_>) {
        for (name, value) in [
            (tally.malformed, self.malformed),
            (tally.too_large, self.too_large),
            (tally.truncated, self.truncated),
        ] {
            if value > 0 {
                metrics::counter_add(name, value);
            }
        }
        if self.malformed + self.too_large > 0 {
            log::warn!(
                "{} event(s) left out: {} not a record, {} too large for a {}-byte payload; first: {}",
                self.malformed + self.too_large,
                self.malformed,
                self.too_large,
                tally.payload_bytes,
                self.first_problem.as_deref().unwrap_or("")
            );
        }
        if self.truncated > 0 {
            log::info!("{} message(s) cut {}", self.truncated, tally.cut_to);
        }
    }
}

/// A batch's entries as JSON array bodies under the vendor's limits, with the tally of what
/// fell short.
#[derive(Debug)]
pub struct EntryArrays {
    arrays: JsonArrayBuilder,
    entry_limit: usize,
    entry: Vec<u8>,
    shortfall: Shortfall,
}

impl EntryArrays {
    /// Bodies of at most `max_body_bytes` bytes and `max_entries` entries; an entry longer than
    /// `entry_limit` bytes gets its message cut.
    pub fn new(max_body_bytes: usize, max_entries: usize, entry_limit: usize) -> EntryArrays {
        EntryArrays {
            arrays: JsonArrayBuilder::new(max_body_bytes, max_entries),
            entry_limit,
            entry: Vec::new(),
            shortfall: Shortfall::default(),
        }
    }

    /// Adds the entry of event `index`. `write(message_limit, out)` writes the entry into
    /// `out` (cleared first), with its message cut to `message_limit` bytes if given, and says
    /// whether it cut it; `message_len` is the message's length, if it is a string. An event
    /// `write` refuses at first is counted malformed; an entry over the limit is written again
    /// with its message shortened by the excess; one too large for any body is counted and
    /// left out. Only an error on the second write is returned.
    pub fn push<E: Display>(
        &mut self,
        index: u32,
        mut write: impl FnMut(Option<usize>, &mut Vec<u8>) -> Result<bool, E>,
        message_len: impl FnOnce() -> Option<usize>,
    ) -> Result<(), E> {
        if let Err(error) = write(None, &mut self.entry) {
            self.shortfall.malformed += 1;
            self.shortfall
                .first_problem
                .get_or_insert_with(|| format!("event {index}: {error}"));
            return Ok(());
        }
        if self.entry.len() > self.entry_limit
            && let Some(len) = message_len()
        {
            let excess = self.entry.len() - self.entry_limit;
            if excess < len && write(Some(len - excess), &mut self.entry)? {
                self.shortfall.truncated += 1;
            }
        }
        if let Err(too_large) = self.arrays.push_json(index, &self.entry) {
            self.shortfall.too_large += 1;
            self.shortfall
                .first_problem
                .get_or_insert_with(|| too_large.to_string());
        }
        Ok(())
    }

    /// What fell short so far.
    pub fn shortfall(&self) -> &Shortfall {
        &self.shortfall
    }

    /// The bodies, in order, after reporting the shortfall as `tally` says.
    pub fn finish(self, tally: &Tally<'_>) -> Vec<JsonChunk> {
        self.shortfall.report(tally);
        self.arrays.finish()
    }
}

/// `compress`: a switch, or Fluent Bit's value names.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Compress {
    /// `true` (gzip) or `false`.
    Switch(bool),
    /// `gzip`, `on`, `true`; `none`, `off`, `false`.
    Name(String),
}

impl Compress {
    /// Whether to gzip (absent = yes); `Err` with the name when it means neither.
    pub fn gzip(compress: Option<&Compress>) -> Result<bool, &str> {
        match compress {
            None | Some(Compress::Switch(true)) => Ok(true),
            Some(Compress::Switch(false)) => Ok(false),
            Some(Compress::Name(name)) => match name.to_ascii_lowercase().as_str() {
                "gzip" | "on" | "true" => Ok(true),
                "none" | "off" | "false" => Ok(false),
                _ => Err(name),
            },
        }
    }
}

/// An event time in milliseconds, rounded half up (as Fluent Bit's outputs write it).
pub fn millis(time_ns: u64) -> u64 {
    time_ns / 1_000_000 + u64::from(time_ns % 1_000_000 >= 500_000)
}

/// The first `limit` bytes of `text`, moved back to the start of a UTF-8 sequence so that no
/// character is cut in half.
pub fn cut_at_char_boundary(text: &[u8], limit: usize) -> &[u8] {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while end > 0 && text[end] & 0xc0 == 0x80 {
        end -= 1;
    }
    &text[..end]
}

/// Days since 1970-01-01 → (year, month, day), UTC: Howard Hinnant's `civil_from_days`, as the
/// router's `time::calendar` (a guest cannot link the host crate).
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

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: Refusals<'static> = Refusals {
        bad_payload: "V refused the payload (HTTP 400)",
        bad_key: "V refused the key",
        key_fix: "check the secret `k`",
        redirect_fix: "set `url`",
    };

    fn delivery(status: u16, headers: &[(String, String)]) -> Delivery {
        WORDS.classify(&Response {
            id: 1,
            status,
            headers,
            body: b"oops",
            transport_error: None,
        })
    }

    #[test]
    fn statuses_mean_what_the_vendors_document() {
        assert_eq!(delivery(202, &[]), Delivery::Ok);
        assert_eq!(delivery(413, &[]), Delivery::SplitAndRetry);
        for status in [408, 500, 502, 503, 504, 599] {
            assert_eq!(delivery(status, &[]), Delivery::Retry(None), "{status}");
        }
        assert_eq!(
            delivery(429, &[("Retry-After".into(), "2".into())]),
            Delivery::Retry(Some(2000))
        );
        let fails = |status, reason: &str| {
            assert_eq!(
                delivery(status, &[("Location".into(), "https://b".into())]),
                Delivery::FailPermanent(reason.into())
            )
        };
        fails(400, "V refused the payload (HTTP 400): oops");
        fails(
            401,
            "V refused the key (HTTP 401): check the secret `k`: oops",
        );
        fails(
            302,
            "HTTP 302 redirect to \"https://b\": the router does not follow redirects; set `url`",
        );
        fails(404, "HTTP 404: oops");
        let refused = Response {
            id: 1,
            status: 0,
            headers: &[],
            body: b"",
            transport_error: Some("timed out"),
        };
        assert_eq!(WORDS.classify(&refused), Delivery::Retry(None));
    }

    /// `write` for a test entry: `{"m":"<message>"}`, the message cut to the limit.
    fn entry(message: &str) -> impl FnMut(Option<usize>, &mut Vec<u8>) -> Result<bool, String> {
        move |limit, out| {
            out.clear();
            let kept = cut_at_char_boundary(message.as_bytes(), limit.unwrap_or(usize::MAX));
            out.extend_from_slice(b"{\"m\":\"");
            out.extend_from_slice(kept);
            out.extend_from_slice(b"\"}");
            Ok(kept.len() < message.len())
        }
    }

    #[test]
    fn entries_are_cut_to_fit_and_what_falls_short_is_tallied() {
        let mut arrays = EntryArrays::new(40, 2, 16);
        arrays.push(0, entry("short"), || Some(5)).unwrap();
        arrays
            .push(1, entry("a message too long"), || Some(18))
            .unwrap();
        arrays
            .push(2, |_, _: &mut Vec<u8>| Err("not a map"), || None)
            .unwrap();
        arrays
            .push(3, entry("x".repeat(60).as_str()), || None)
            .unwrap();
        arrays.push(4, entry("last"), || Some(4)).unwrap();
        assert_eq!(
            arrays.shortfall(),
            &Shortfall {
                malformed: 1,
                too_large: 1,
                truncated: 1,
                first_problem: Some("event 2: not a map".into()),
            }
        );
        let tally = Tally {
            malformed: "m",
            too_large: "t",
            truncated: "c",
            cut_to: "to fit",
            payload_bytes: 40,
        };
        let chunks = arrays.finish(&tally);
        let bodies: Vec<_> = chunks
            .iter()
            .map(|c| String::from_utf8(c.body.clone()).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [r#"[{"m":"short"},{"m":"a messag"}]"#, r#"[{"m":"last"}]"#]
        );
        assert_eq!(chunks[1].events, [4]);
        assert_eq!(crate::testing::counter("t"), 1);
    }

    #[test]
    fn compress_and_time_helpers() {
        assert_eq!(Compress::gzip(None), Ok(true));
        assert_eq!(
            Compress::gzip(Some(&Compress::Name("Off".into()))),
            Ok(false)
        );
        assert_eq!(
            Compress::gzip(Some(&Compress::Name("zstd".into()))),
            Err("zstd")
        );
        assert_eq!(millis(1_700_000_000_123_500_000), 1_700_000_000_124);
        assert_eq!(millis(1_499_999), 1);
        let text = "aé€".as_bytes();
        assert_eq!(cut_at_char_boundary(text, 2), b"a");
        assert_eq!(cut_at_char_boundary(text, 5), "aé".as_bytes());
        assert_eq!(cut_at_char_boundary(text, 6), text);
    }
}
