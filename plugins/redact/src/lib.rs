//! `redact`: masks personal data and credentials in log records before they leave the task.
//!
//! Detectors (each can be switched off): email addresses, payment card numbers (Luhn-checked),
//! US SSNs, IPv4 and IPv6 addresses, AWS access key ids and secret keys, bearer tokens, JWTs,
//! and the operator's own regexes. By default every string value of the record is scanned,
//! nested maps and arrays included (plus integers long enough to be card numbers); `fields`
//! narrows it to chosen paths. Matches are replaced by `[REDACTED:<detector>]`, by the last
//! four characters behind stars, or by a salted hash.
//!
//! The plugin asks to fail closed: an event it cannot process (malformed msgpack, nesting
//! deeper than 64 levels) is an error outcome, which the router drops or dead-letters rather
//! than passes on unredacted.
//!
//! Config (all optional):
//!
//! ```json
//! {
//!   "fields": ["log", "request.headers"],
//!   "detectors": {"ipv4": false},
//!   "mask": {"style": "hash", "salt": "a long random string", "hash_length": 16},
//!   "custom_patterns": [{"name": "password", "pattern": "password=(?P<value>[^&\\s]+)"}]
//! }
//! ```

pub mod config;
pub mod detect;
pub mod mask;

use detect::{Detectors, Kind, Match};
use mask::Mask;
use wasm_router_sdk::{Ctx, Event, Outcome, Patch, Value, filter, msgpack};

/// How deep the scan follows nested maps and arrays; deeper records are errors (fail closed).
const MAX_DEPTH: usize = 64;

/// The validated config: what to scan, the compiled detectors, the mask.
#[derive(Debug)]
pub struct Redactor {
    /// Paths to scan (each a list of keys); empty: the whole record.
    fields: Vec<Vec<String>>,
    detectors: Detectors,
    mask: Mask,
}

/// Redactions made in one event, per detector slot ([`Kind::slot`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts([u64; 10]);

impl Counts {
    fn add(&mut self, kind: Kind) {
        self.0[kind.slot()] += 1;
    }

    fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn report(&self, ctx: &mut Ctx) {
        const NAMES: [&str; 10] = [
            "redacted_email",
            "redacted_credit_card",
            "redacted_ssn",
            "redacted_ipv4",
            "redacted_ipv6",
            "redacted_aws_access_key",
            "redacted_aws_secret_key",
            "redacted_bearer_token",
            "redacted_jwt",
            "redacted_custom",
        ];
        for (name, &count) in NAMES.iter().zip(&self.0) {
            if count > 0 {
                ctx.count(name, count);
            }
        }
        ctx.count("events_redacted", 1);
    }
}

/// Why an event could not be scanned.
#[derive(Debug, thiserror::Error)]
enum ScanError {
    #[error("the record nests maps or arrays deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl Redactor {
    /// The spans of `text` to mask.
    pub fn find(&self, text: &[u8]) -> Vec<Match> {
        let mut matches = Vec::new();
        self.detectors.find(text, &mut matches);
        matches
    }

    /// `text` with its matches masked, or `None` when nothing matched.
    pub fn redact_text(&self, text: &[u8], counts: &mut Counts) -> Option<Vec<u8>> {
        let matches = self.find(text);
        if matches.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() + 16 * matches.len());
        let mut copied = 0;
        for found in &matches {
            out.extend_from_slice(&text[copied..found.start]);
            self.mask.write(
                self.detectors.name(found.kind),
                &text[found.start..found.end],
                &mut out,
            );
            counts.add(found.kind);
            copied = found.end;
        }
        out.extend_from_slice(&text[copied..]);
        Some(out)
    }

    /// An integer long enough to be a card number, as its decimal digits.
    fn card_integer(&self, value: Value<'_>) -> Option<String> {
        let number = value.as_u64()?;
        let digits = number.to_string();
        (self.detectors.enabled(Kind::CreditCard)
            && digits.len() >= 13
            && detect::is_card_number(digits.as_bytes()))
        .then_some(digits)
    }

    /// Whether any string (or card-number integer) under `value` has a match.
    fn has_match(&self, value: Value<'_>, depth: usize) -> Result<bool, ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError::TooDeep);
        }
        Ok(match value {
            Value::Str(text) => {
                let mut matches = Vec::new();
                self.detectors.find(text, &mut matches);
                !matches.is_empty()
            }
            Value::Int(_) | Value::UInt(_) => self.card_integer(value).is_some(),
            Value::Map(map) => {
                for (_, item) in map.iter() {
                    if self.has_match(item, depth + 1)? {
                        return Ok(true);
                    }
                }
                false
            }
            Value::Array(array) => {
                for item in array.iter() {
                    if self.has_match(item, depth + 1)? {
                        return Ok(true);
                    }
                }
                false
            }
            _ => false,
        })
    }

    /// Writes `value` as msgpack with every match under it masked (map keys are kept).
    fn write_redacted(
        &self,
        value: Value<'_>,
        out: &mut Vec<u8>,
        counts: &mut Counts,
        depth: usize,
    ) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError::TooDeep);
        }
        match value {
            Value::Str(text) => match self.redact_text(text, counts) {
                Some(redacted) => Value::Str(&redacted).write_msgpack(out),
                None => value.write_msgpack(out),
            },
            Value::Int(_) | Value::UInt(_) => match self.card_integer(value) {
                Some(digits) => {
                    counts.add(Kind::CreditCard);
                    let mut masked = Vec::new();
                    self.mask
                        .write(Kind::CreditCard.name(), digits.as_bytes(), &mut masked);
                    Value::Str(&masked).write_msgpack(out);
                }
                None => value.write_msgpack(out),
            },
            Value::Map(map) => {
                msgpack::write_map_header(out, map.len() as u32);
                for (key, item) in map.iter() {
                    key.write_msgpack(out);
                    self.write_redacted(item, out, counts, depth + 1)?;
                }
            }
            Value::Array(array) => {
                msgpack::write_array_header(out, array.len() as u32);
                for item in array.iter() {
                    self.write_redacted(item, out, counts, depth + 1)?;
                }
            }
            other => other.write_msgpack(out),
        }
        Ok(())
    }

    /// `value` redacted, or `None` if nothing under it matched.
    fn redact_value(
        &self,
        value: Value<'_>,
        counts: &mut Counts,
    ) -> Result<Option<Vec<u8>>, ScanError> {
        if !self.has_match(value, 0)? {
            return Ok(None);
        }
        let mut out = Vec::new();
        self.write_redacted(value, &mut out, counts, 0)?;
        Ok(Some(out))
    }
}

/// Masks what the detectors find in the event (see the crate docs).
#[filter(
    name = "redact",
    description = "Masks emails, card numbers, SSNs, IPs, AWS keys, tokens and custom patterns in log records.",
    fail_closed
)]
pub fn redact(
    redactor: &Redactor,
    event: &Event<'_>,
    ctx: &mut Ctx,
) -> wasm_router_sdk::Result<Outcome> {
    let mut counts = Counts::default();
    if redactor.fields.is_empty() {
        let map = event.map()?;
        let Some(body) = redactor
            .redact_value(Value::Map(map), &mut counts)
            .map_err(wasm_router_sdk::Error::msg)?
        else {
            return Ok(Outcome::Keep);
        };
        counts.report(ctx);
        return Ok(Outcome::Replace(Patch::default().with_body(body)));
    }
    let mut record = event.record()?;
    for keys in &redactor.fields {
        let Some(value) = event.get(keys.as_slice()) else {
            continue;
        };
        match value {
            Value::Str(text) => {
                if let Some(redacted) = redactor.redact_text(text, &mut counts) {
                    record.set_str_bytes(keys.as_slice(), &redacted)?;
                }
            }
            _ => {
                if let Some(redacted) = redactor
                    .redact_value(value, &mut counts)
                    .map_err(wasm_router_sdk::Error::msg)?
                {
                    record.set_msgpack(keys.as_slice(), redacted)?;
                }
            }
        }
    }
    if counts.total() > 0 {
        counts.report(ctx);
    }
    Ok(Outcome::replace(&record))
}
