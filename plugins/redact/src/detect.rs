//! The detectors: find sensitive spans in a string's bytes.
//!
//! One pass over the bytes ([`Triggers::scan`]) notes which detectors could possibly match
//! (an `@`, a long run of digits, `eyJ`, `AKIA`, …); only those run their regex, and every
//! regex match is checked further (boundaries, Luhn, SSN ranges, IPv6 parsing). Regexes run
//! on bytes with Unicode off, so strings that are not valid UTF-8 are scanned as they are
//! and only the matched ASCII spans are ever replaced.

use regex_ascii::bytes::{Regex, RegexBuilder};
use std::sync::OnceLock;

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An email address.
    Email,
    /// A payment card number.
    CreditCard,
    /// A US social security number.
    Ssn,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// An AWS access key id.
    AwsAccessKey,
    /// An AWS secret access key.
    AwsSecretKey,
    /// A bearer token.
    BearerToken,
    /// A JSON Web Token.
    Jwt,
    /// The user pattern with this index.
    Custom(usize),
}

impl Kind {
    /// The built-in kinds, in the order overlapping matches are preferred when equal.
    pub const BUILT_IN: [Kind; 9] = [
        Kind::Jwt,
        Kind::BearerToken,
        Kind::AwsAccessKey,
        Kind::AwsSecretKey,
        Kind::Email,
        Kind::CreditCard,
        Kind::Ssn,
        Kind::Ipv6,
        Kind::Ipv4,
    ];

    /// The name used in masks (`[REDACTED:email]`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::CreditCard => "credit_card",
            Kind::Ssn => "ssn",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::AwsAccessKey => "aws_access_key",
            Kind::AwsSecretKey => "aws_secret_key",
            Kind::BearerToken => "bearer_token",
            Kind::Jwt => "jwt",
            Kind::Custom(_) => "custom",
        }
    }

    /// Index into per-kind counters: built-ins 0..9, all custom patterns 9.
    pub fn slot(self) -> usize {
        match self {
            Kind::Email => 0,
            Kind::CreditCard => 1,
            Kind::Ssn => 2,
            Kind::Ipv4 => 3,
            Kind::Ipv6 => 4,
            Kind::AwsAccessKey => 5,
            Kind::AwsSecretKey => 6,
            Kind::BearerToken => 7,
            Kind::Jwt => 8,
            Kind::Custom(_) => 9,
        }
    }

    fn trigger(self) -> u16 {
        1 << self.slot()
    }
}

/// Trigger bits beyond one per kind: the two ways an AWS secret key is found.
const SECRET_AFTER_NAME: u16 = 1 << 10;
const SECRET_STANDALONE: u16 = 1 << 11;

/// A span of the scanned bytes to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Start offset.
    pub start: usize,
    /// End offset (exclusive).
    pub end: usize,
    /// What it is.
    pub kind: Kind,
}

const DIGIT: u8 = 1;
const HEX: u8 = 2;
const BASE64: u8 = 4;
const ALNUM: u8 = 8;
const CARD_SEPARATOR: u8 = 16;
/// Base64 characters the first pass only has to note (not digits, not the letters that start
/// or end a keyword it looks for): the fast path.
const PLAIN: u8 = 32;
const UPPER: u8 = 64;
const LOWER: u8 = 128;

/// Letters at which the first pass checks for a keyword: `eyJ` (J), `AKIA` / `ASIA` / `ABIA` /
/// `ACCA` (the second letter), `bearer` (b), `secret` (c).
const KEYWORD_LETTERS: &[u8] = b"JKSBCbc";

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut byte = 0usize;
    while byte < 256 {
        let b = byte as u8;
        let mut class = 0;
        if b.is_ascii_digit() {
            class |= DIGIT | HEX | BASE64 | ALNUM;
        }
        if b.is_ascii_alphabetic() {
            class |= BASE64 | ALNUM | PLAIN;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        if b.is_ascii_lowercase() {
            class |= LOWER;
        }
        if matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            class |= HEX;
        }
        if b == b'+' || b == b'/' {
            class |= BASE64 | PLAIN;
        }
        if b == b' ' || b == b'-' {
            class |= CARD_SEPARATOR;
        }
        let mut k = 0;
        while k < KEYWORD_LETTERS.len() {
            if KEYWORD_LETTERS[k] == b {
                class &= !PLAIN;
            }
            k += 1;
        }
        table[byte] = class;
        byte += 1;
    }
    table
}

static CLASS: [u8; 256] = classes();

fn class(byte: u8) -> u8 {
    CLASS[usize::from(byte)]
}

/// Which detectors could match a string: the cheap first pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Triggers(u16);

impl Triggers {
    /// Scans `text` once. Most bytes (letters, `+`, `/`) take a fast path that only notes
    /// their class; digits, a few keyword letters and delimiters do the rest: runs of digits
    /// (card numbers), 40-character base64 tokens (secret keys), `@`, `:`, `.` and `-` shapes.
    pub fn scan(text: &[u8]) -> Triggers {
        let len = text.len();
        let mut triggers = 0u16;
        // The current run of base64 characters (a token) and the classes seen in it.
        let mut token_start = 0usize;
        let mut token_classes = 0u8;
        // Digits in the current run of digits, spaces and dashes.
        let mut digit_run = 0u32;
        let mut dotted_digits = 0u32;
        let mut colons = 0u32;
        let mut index = 0;
        while index < len {
            let byte = text[index];
            let c = class(byte);
            if c & PLAIN != 0 {
                token_classes |= c;
                digit_run = 0;
                index += 1;
                continue;
            }
            if c & BASE64 != 0 {
                token_classes |= c;
                if c & DIGIT != 0 {
                    digit_run += 1;
                    if digit_run >= 13 {
                        triggers |= Kind::CreditCard.trigger();
                    }
                } else {
                    digit_run = 0;
                    triggers |= keyword_at(text, index, byte);
                }
                index += 1;
                continue;
            }
            // A delimiter: the token before it ends here.
            if index - token_start == 40
                && byte != b'='
                && token_classes & (UPPER | LOWER | DIGIT) == UPPER | LOWER | DIGIT
            {
                triggers |= SECRET_STANDALONE;
            }
            token_start = index + 1;
            token_classes = 0;
            if c & CARD_SEPARATOR == 0 {
                digit_run = 0;
            }
            match byte {
                b'@' => triggers |= Kind::Email.trigger(),
                b'%' if text[index..].starts_with(b"%40") => triggers |= Kind::Email.trigger(),
                b':' => {
                    colons += 1;
                    if text.get(index + 1) == Some(&b':') {
                        triggers |= Kind::Ipv6.trigger();
                    }
                }
                b'.' if index > 0
                    && text[index - 1].is_ascii_digit()
                    && text.get(index + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    dotted_digits += 1;
                }
                b'-' if looks_like_ssn_at(text, index) => triggers |= Kind::Ssn.trigger(),
                _ => {}
            }
            index += 1;
        }
        if len - token_start == 40
            && token_classes & (UPPER | LOWER | DIGIT) == UPPER | LOWER | DIGIT
        {
            triggers |= SECRET_STANDALONE;
        }
        if colons >= 7 {
            triggers |= Kind::Ipv6.trigger();
        }
        if dotted_digits >= 3 {
            triggers |= Kind::Ipv4.trigger();
        }
        Triggers(triggers)
    }

    /// Whether detector `kind` should run.
    pub fn has(self, kind: Kind) -> bool {
        let bits = match kind {
            Kind::AwsSecretKey => SECRET_AFTER_NAME | SECRET_STANDALONE,
            other => other.trigger(),
        };
        self.0 & bits != 0
    }

    /// Whether any detector should run.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// The compiled detectors of one config.
#[derive(Debug)]
pub struct Detectors {
    /// Enabled built-ins, each with its regex, compiled the first time a text triggers it
    /// (card numbers are found without one). Compiling them all in `init` was most of a
    /// redact instance's start (and of the router's start to accepting with it).
    built_in: Vec<(Kind, OnceLock<Regex>)>,
    custom: Vec<CustomDetector>,
}

#[derive(Debug)]
struct CustomDetector {
    name: String,
    regex: Regex,
    value_group: Option<usize>,
}

fn ascii_regex(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in patterns are valid")
}

fn pattern(kind: Kind) -> &'static str {
    match kind {
        Kind::Email => r"(?i)[a-z0-9._%+\-]+(?:@|%40)[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,24}",
        Kind::CreditCard => unreachable!("card numbers are found by find_card_numbers"),
        Kind::Ssn => r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        Kind::Ipv4 => {
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
        }
        Kind::Ipv6 => r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*",
        Kind::AwsAccessKey => r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        // Group 1: a secret after a key-ish name (standalone keys: find_standalone_secret_keys).
        Kind::AwsSecretKey => {
            r#"(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key|secret_?key|aws_?secret)[\\"' \t]*[:=][\\"' \t]*([A-Za-z0-9/+]{40})"#
        }
        Kind::BearerToken => r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)",
        Kind::Jwt => r"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
        Kind::Custom(_) => unreachable!("custom patterns come from the config"),
    }
}

impl Detectors {
    /// The built-in detectors `kinds` (compiled on first use) and the user patterns.
    pub fn new(kinds: &[Kind], custom: Vec<(String, Regex)>) -> Detectors {
        let built_in = Kind::BUILT_IN
            .into_iter()
            .filter(|kind| kinds.contains(kind))
            .map(|kind| (kind, OnceLock::new()))
            .collect();
        let custom = custom
            .into_iter()
            .map(|(name, regex)| {
                let value_group = regex
                    .capture_names()
                    .position(|group| group == Some("value"));
                CustomDetector {
                    name,
                    regex,
                    value_group,
                }
            })
            .collect();
        Detectors { built_in, custom }
    }

    /// Whether the built-in detector `kind` is on.
    pub fn enabled(&self, kind: Kind) -> bool {
        self.built_in.iter().any(|(on, _)| *on == kind)
    }

    /// The mask name of `kind` (a user pattern's own name).
    pub fn name(&self, kind: Kind) -> &str {
        match kind {
            Kind::Custom(index) => &self.custom[index].name,
            built_in => built_in.name(),
        }
    }

    /// Appends the spans of `text` to mask, sorted and not overlapping, to `matches`.
    pub fn find(&self, text: &[u8], matches: &mut Vec<Match>) {
        let first = matches.len();
        let triggers = Triggers::scan(text);
        if triggers.any() {
            for (kind, regex) in &self.built_in {
                if !triggers.has(*kind) {
                    continue;
                }
                let regex = || regex.get_or_init(|| ascii_regex(pattern(*kind)));
                match kind {
                    Kind::AwsSecretKey => {
                        if triggers.0 & SECRET_AFTER_NAME != 0 {
                            find_built_in(*kind, regex(), text, matches);
                        }
                        if triggers.0 & SECRET_STANDALONE != 0 {
                            find_standalone_secret_keys(text, matches);
                        }
                    }
                    Kind::CreditCard => find_card_numbers(text, matches),
                    _ => find_built_in(*kind, regex(), text, matches),
                }
            }
        }
        for (index, detector) in self.custom.iter().enumerate() {
            let kind = Kind::Custom(index);
            match detector.value_group {
                Some(group) => {
                    for captures in detector.regex.captures_iter(text) {
                        if let Some(value) = captures.get(group).filter(|m| !m.is_empty()) {
                            matches.push(Match {
                                start: value.start(),
                                end: value.end(),
                                kind,
                            });
                        }
                    }
                }
                None => {
                    for found in detector.regex.find_iter(text).filter(|m| !m.is_empty()) {
                        matches.push(Match {
                            start: found.start(),
                            end: found.end(),
                            kind,
                        });
                    }
                }
            }
        }
        resolve_overlaps(matches, first);
    }
}

/// Keeps, among `matches[first..]`, the earliest-starting (then longest) of overlapping spans.
fn resolve_overlaps(matches: &mut Vec<Match>, first: usize) {
    let found = &mut matches[first..];
    if found.len() < 2 {
        return;
    }
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept = first;
    for index in first..matches.len() {
        if kept > first && matches[index].start < matches[kept - 1].end {
            continue;
        }
        matches[kept] = matches[index];
        kept += 1;
    }
    matches.truncate(kept);
}

fn before(text: &[u8], start: usize) -> Option<u8> {
    start.checked_sub(1).map(|index| text[index])
}

fn after(text: &[u8], end: usize) -> Option<u8> {
    text.get(end).copied()
}

fn is(byte: Option<u8>, classes: u8) -> bool {
    byte.is_some_and(|b| class(b) & classes != 0)
}

fn find_built_in(kind: Kind, regex: &Regex, text: &[u8], matches: &mut Vec<Match>) {
    let mut push = |start: usize, end: usize| matches.push(Match { start, end, kind });
    match kind {
        Kind::AwsSecretKey | Kind::BearerToken => {
            for captures in regex.captures_iter(text) {
                let Some(value) = captures.get(1) else {
                    continue;
                };
                let (start, end) = (value.start(), value.end());
                let valid = match kind {
                    Kind::AwsSecretKey => {
                        !is(before(text, start), BASE64)
                            && !is(after(text, end), BASE64)
                            && after(text, end) != Some(b'=')
                    }
                    _ => !is(
                        before(text, captures.get(0).map_or(start, |m| m.start())),
                        ALNUM,
                    ),
                };
                if valid {
                    push(start, end);
                }
            }
        }
        _ => {
            for found in regex.find_iter(text) {
                let (start, end) = (found.start(), found.end());
                if let Some((start, end)) = validate(kind, text, start, end) {
                    push(start, end);
                }
            }
        }
    }
}

/// Checks one regex match of `kind` (boundaries and content); returns the span to mask.
fn validate(kind: Kind, text: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    let span = &text[start..end];
    let ok = match kind {
        Kind::Email => !is(after(text, end), ALNUM),
        Kind::Ssn => {
            !is(before(text, start), ALNUM)
                && before(text, start) != Some(b'-')
                && !is(after(text, end), ALNUM)
                && after(text, end) != Some(b'-')
                && is_ssn(span)
        }
        Kind::Ipv4 => {
            let before_ok = !is(before(text, start), ALNUM) && before(text, start) != Some(b'.');
            let after_dotted_number =
                after(text, end) == Some(b'.') && is(after(text, end + 1), DIGIT);
            before_ok && !is(after(text, end), ALNUM) && !after_dotted_number
        }
        Kind::Ipv6 => {
            let mut end = end;
            while end > start && text[end - 1] == b'.' {
                end -= 1;
            }
            if end - start >= 2 && text[end - 1] == b':' && text[end - 2] != b':' {
                end -= 1;
            }
            let bounded = !is(before(text, start), ALNUM)
                && before(text, start) != Some(b'_')
                && !is(after(text, end), ALNUM);
            return (bounded && is_ipv6(&text[start..end])).then_some((start, end));
        }
        Kind::AwsAccessKey => !is(before(text, start), ALNUM) && !is(after(text, end), ALNUM),
        Kind::Jwt => {
            !is(before(text, start), ALNUM) && !matches!(before(text, start), Some(b'_' | b'-'))
        }
        Kind::CreditCard | Kind::AwsSecretKey | Kind::BearerToken | Kind::Custom(_) => true,
    };
    ok.then_some((start, end))
}

/// The trigger of a keyword that the letter `byte` at `index` completes or starts.
fn keyword_at(text: &[u8], index: usize, byte: u8) -> u16 {
    let before = |n: usize| index.checked_sub(n).map(|start| &text[start..index]);
    let window = |start: usize, end: usize| text.get(start..end);
    let mut found = 0;
    match byte {
        b'J' if before(2) == Some(b"ey") => found |= Kind::Jwt.trigger(),
        b'K' | b'S' | b'B' | b'C' if index > 0 && text[index - 1] == b'A' => {
            if matches!(
                window(index - 1, index + 3),
                Some(b"AKIA" | b"ASIA" | b"ABIA" | b"ACCA")
            ) {
                found |= Kind::AwsAccessKey.trigger();
            }
        }
        _ => {}
    }
    if matches!(byte, b'b' | b'B')
        && window(index + 1, index + 6).is_some_and(|rest| rest.eq_ignore_ascii_case(b"earer"))
    {
        found |= Kind::BearerToken.trigger();
    }
    if matches!(byte, b'c' | b'C')
        && index >= 2
        && text[index - 2..index].eq_ignore_ascii_case(b"se")
        && window(index + 1, index + 4).is_some_and(|rest| rest.eq_ignore_ascii_case(b"ret"))
    {
        found |= SECRET_AFTER_NAME;
    }
    found
}

/// Whether the `-` at `index` is the first dash of `ddd-dd-dddd`.
fn looks_like_ssn_at(text: &[u8], index: usize) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        text.get(range)
            .is_some_and(|bytes| bytes.iter().all(u8::is_ascii_digit))
    };
    index >= 3
        && digits(index - 3..index)
        && digits(index + 1..index + 3)
        && text.get(index + 3) == Some(&b'-')
        && digits(index + 4..index + 8)
}

/// Finds card numbers: runs of digit groups joined by single spaces or dashes (not touching
/// letters or digits), in which a span of whole groups holds a valid card number. Trying
/// spans of groups finds `4111 1111 1111 1111` even right after a date (`2024-01-15 4111 …`).
fn find_card_numbers(text: &[u8], matches: &mut Vec<Match>) {
    let len = text.len();
    let mut index = 0;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    while index < len {
        if !text[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        groups.clear();
        let mut start = index;
        loop {
            let mut end = start;
            while end < len && text[end].is_ascii_digit() {
                end += 1;
            }
            groups.push((start, end));
            if end + 1 < len && matches!(text[end], b' ' | b'-') && text[end + 1].is_ascii_digit() {
                start = end + 1;
            } else {
                index = end;
                break;
            }
        }
        let run_start = groups[0].0;
        if is(before(text, run_start), ALNUM) || is(after(text, index), ALNUM) {
            continue;
        }
        let mut first = 0;
        while first < groups.len() {
            let mut digits = 0;
            let mut best = None;
            for last in first..groups.len() {
                digits += groups[last].1 - groups[last].0;
                if digits > 19 {
                    break;
                }
                if digits >= 13 && is_card_number(&text[groups[first].0..groups[last].1]) {
                    best = Some(last);
                }
            }
            match best {
                Some(last) => {
                    matches.push(Match {
                        start: groups[first].0,
                        end: groups[last].1,
                        kind: Kind::CreditCard,
                    });
                    first = last + 1;
                }
                None => first += 1,
            }
        }
    }
}

/// 13–19 digits, first digit 2–6 (card network ranges; rules out e.g. nanosecond timestamps),
/// Luhn-valid.
pub fn is_card_number(span: &[u8]) -> bool {
    let digits: Vec<u8> = span
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    luhn(&digits)
}

/// The Luhn checksum over decimal digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            let digit = u32::from(digit);
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `AAA-GG-SSSS` with area not 000, 666 or 9xx, group not 00, serial not 0000.
pub fn is_ssn(span: &[u8]) -> bool {
    let number = |range: std::ops::Range<usize>| {
        span[range]
            .iter()
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
    };
    let (area, group, serial) = (number(0..3), number(4..6), number(7..11));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn is_ipv6(span: &[u8]) -> bool {
    if span == b"::" || span.len() < 3 {
        return false;
    }
    std::str::from_utf8(span)
        .ok()
        .and_then(|text| text.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

/// Finds runs of exactly 40 base64 characters (not followed by `=`) that look like AWS
/// secret keys.
fn find_standalone_secret_keys(text: &[u8], matches: &mut Vec<Match>) {
    let mut start = 0;
    while start < text.len() {
        if class(text[start]) & BASE64 == 0 {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < text.len() && class(text[end]) & BASE64 != 0 {
            end += 1;
        }
        if end - start == 40
            && after(text, end) != Some(b'=')
            && looks_like_secret_key(&text[start..end])
        {
            matches.push(Match {
                start,
                end,
                kind: Kind::AwsSecretKey,
            });
        }
        start = end;
    }
}

/// A standalone 40-character token that looks like an AWS secret key: upper case, lower case
/// and digits, not a path (no leading or trailing `/`, no `//`).
fn looks_like_secret_key(token: &[u8]) -> bool {
    token.iter().any(u8::is_ascii_uppercase)
        && token.iter().any(u8::is_ascii_lowercase)
        && token.iter().any(u8::is_ascii_digit)
        && token.first() != Some(&b'/')
        && token.last() != Some(&b'/')
        && !token.windows(2).any(|pair| pair == b"//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_pattern_compiles_and_is_compiled_only_when_triggered() {
        for kind in Kind::BUILT_IN {
            if kind != Kind::CreditCard {
                ascii_regex(pattern(kind));
            }
        }
        let detectors = Detectors::new(&Kind::BUILT_IN, Vec::new());
        let compiled = |kind| {
            detectors
                .built_in
                .iter()
                .any(|(k, regex)| *k == kind && regex.get().is_some())
        };
        let mut matches = Vec::new();
        detectors.find(b"nothing to see here", &mut matches);
        assert!(matches.is_empty());
        assert!(
            !Kind::BUILT_IN.into_iter().any(compiled),
            "compiled without a trigger"
        );
        detectors.find(b"mail jane.doe@example.com now", &mut matches);
        assert_eq!(matches.len(), 1, "{matches:?}");
        assert!(compiled(Kind::Email) && !compiled(Kind::Jwt));
    }
}
