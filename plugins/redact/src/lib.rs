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
use wasm_router_sdk::msgpack::{self, Head};
use wasm_router_sdk::{Ctx, Event, Outcome, Patch, Value, filter};

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
    #[error(transparent)]
    Decode(#[from] wasm_router_sdk::DecodeError),
    #[error("the record nests maps or arrays deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// An open container during the walk: how many tokens it still holds.
#[derive(Debug, Clone, Copy)]
struct Frame {
    remaining: u64,
    is_map: bool,
}

impl Redactor {
    /// The spans of `text` to mask.
    pub fn find(&self, text: &[u8]) -> Vec<Match> {
        let mut matches = Vec::new();
        self.detectors.find(text, &mut matches);
        matches
    }

    /// Appends `text` with `matches` masked to `out`.
    fn mask_into(&self, text: &[u8], matches: &[Match], out: &mut Vec<u8>, counts: &mut Counts) {
        let mut copied = 0;
        for found in matches {
            out.extend_from_slice(&text[copied..found.start]);
            self.mask.write(
                self.detectors.name(found.kind),
                &text[found.start..found.end],
                out,
            );
            counts.add(found.kind);
            copied = found.end;
        }
        out.extend_from_slice(&text[copied..]);
    }

    /// `text` with its matches masked, or `None` when nothing matched.
    pub fn redact_text(&self, text: &[u8], counts: &mut Counts) -> Option<Vec<u8>> {
        let matches = self.find(text);
        if matches.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() + 16 * matches.len());
        self.mask_into(text, &matches, &mut out, counts);
        Some(out)
    }

    /// The mask of an integer long enough to be a card number.
    fn masked_card_integer(&self, value: u64, counts: &mut Counts) -> Option<Vec<u8>> {
        if value < 1_000_000_000_000 || !self.detectors.enabled(Kind::CreditCard) {
            return None;
        }
        let digits = value.to_string();
        if !detect::is_card_number(digits.as_bytes()) {
            return None;
        }
        counts.add(Kind::CreditCard);
        let mut masked = Vec::new();
        self.mask
            .write(Kind::CreditCard.name(), digits.as_bytes(), &mut masked);
        Some(masked)
    }

    /// Walks the one msgpack value in `encoded` token by token, masking matches in string
    /// values (not map keys) and card-number integers. Returns the rewritten value, or `None`
    /// when nothing matched: a clean value costs one pass and no allocation. Map and array
    /// headers never change, so untouched tokens are copied as they are, in runs.
    fn redact_msgpack(
        &self,
        encoded: &[u8],
        counts: &mut Counts,
    ) -> Result<Option<Vec<u8>>, ScanError> {
        let mut frames = [Frame {
            remaining: 0,
            is_map: false,
        }; MAX_DEPTH + 1];
        frames[0] = Frame {
            remaining: 1,
            is_map: false,
        };
        let mut depth = 1;
        let mut pos = 0;
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut matches = Vec::new();
        while depth > 0 {
            let frame = &mut frames[depth - 1];
            if frame.remaining == 0 {
                depth -= 1;
                continue;
            }
            let is_key = frame.is_map && frame.remaining.is_multiple_of(2);
            frame.remaining -= 1;
            let start = pos;
            let replacement = match msgpack::read_head(encoded, &mut pos)? {
                Head::Map(_) | Head::Array(_) if depth > MAX_DEPTH => {
                    return Err(ScanError::TooDeep);
                }
                Head::Map(len) => {
                    frames[depth] = Frame {
                        remaining: 2 * u64::from(len),
                        is_map: true,
                    };
                    depth += 1;
                    None
                }
                Head::Array(len) => {
                    frames[depth] = Frame {
                        remaining: u64::from(len),
                        is_map: false,
                    };
                    depth += 1;
                    None
                }
                Head::Str(text) if !is_key => {
                    matches.clear();
                    self.detectors.find(text, &mut matches);
                    (!matches.is_empty()).then(|| {
                        let mut masked = Vec::with_capacity(text.len() + 16 * matches.len());
                        self.mask_into(text, &matches, &mut masked, counts);
                        masked
                    })
                }
                Head::Int(value) if !is_key && value > 0 => {
                    self.masked_card_integer(value as u64, counts)
                }
                Head::UInt(value) if !is_key => self.masked_card_integer(value, counts),
                _ => None,
            };
            if let Some(masked) = replacement {
                let out = out.get_or_insert_with(|| Vec::with_capacity(encoded.len() + 64));
                out.extend_from_slice(&encoded[copied..start]);
                msgpack::write_str(out, &masked);
                copied = pos;
            }
        }
        if pos != encoded.len() {
            let extra = encoded.len() - pos;
            return Err(wasm_router_sdk::DecodeError::TrailingBytes { offset: pos, extra }.into());
        }
        Ok(out.map(|mut out| {
            out.extend_from_slice(&encoded[copied..]);
            out
        }))
    }
}

fn encode_str(text: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(text.len() + 5);
    msgpack::write_str(&mut encoded, text);
    encoded
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
    let scan_error = wasm_router_sdk::Error::msg;
    let mut counts = Counts::default();
    if redactor.fields.is_empty() {
        let record = event.record()?;
        let Some(body) = redactor
            .redact_msgpack(record.original(), &mut counts)
            .map_err(scan_error)?
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
        let redacted = match value {
            Value::Str(text) => redactor
                .redact_text(text, &mut counts)
                .map(|masked| encode_str(&masked)),
            Value::Map(map) => redactor
                .redact_msgpack(map.as_msgpack(), &mut counts)
                .map_err(scan_error)?,
            Value::Array(array) => redactor
                .redact_msgpack(array.as_msgpack(), &mut counts)
                .map_err(scan_error)?,
            Value::Int(_) | Value::UInt(_) => value
                .as_u64()
                .and_then(|n| redactor.masked_card_integer(n, &mut counts))
                .map(|masked| encode_str(&masked)),
            _ => None,
        };
        if let Some(encoded) = redacted {
            record.set_msgpack(keys.as_slice(), encoded)?;
        }
    }
    if counts.total() > 0 {
        counts.report(ctx);
    }
    Ok(Outcome::replace(&record))
}
