//! How a matched span is replaced: a fixed label, all but the last four characters starred,
//! or a salted hash.

use sha2::{Digest, Sha256};
use std::io::Write as _;

/// The mask style, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// `[REDACTED:<name>]`.
    Fixed,
    /// Letters, digits and other non-ASCII characters become `*` (one per character, one per
    /// invalid byte), except the last four ASCII letters or digits; ASCII punctuation and
    /// spaces stay.
    KeepLast4,
    /// `[REDACTED:<name>:<first hex characters of sha256(salt + span)>]`.
    Hash {
        /// The salt.
        salt: Vec<u8>,
        /// Hex characters kept.
        length: usize,
    },
}

impl Mask {
    /// Appends the replacement of `span` (found by detector `name`) to `out`.
    pub fn write(&self, name: &str, span: &[u8], out: &mut Vec<u8>) {
        match self {
            Mask::Fixed => {
                let _ = write!(out, "[REDACTED:{name}]");
            }
            Mask::KeepLast4 => {
                let keep_from = span
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .count()
                    .saturating_sub(4);
                let mut seen = 0;
                for chunk in span.utf8_chunks() {
                    for character in chunk.valid().chars() {
                        if character.is_ascii_alphanumeric() {
                            out.push(if seen >= keep_from {
                                character as u8
                            } else {
                                b'*'
                            });
                            seen += 1;
                        } else if character.is_ascii_punctuation()
                            || character.is_ascii_whitespace()
                        {
                            out.push(character as u8);
                        } else {
                            out.push(b'*');
                        }
                    }
                    out.extend(chunk.invalid().iter().map(|_| b'*'));
                }
            }
            Mask::Hash { salt, length } => {
                let digest = Sha256::new()
                    .chain_update(salt)
                    .chain_update(span)
                    .finalize();
                let _ = write!(out, "[REDACTED:{name}:");
                for byte in digest.iter() {
                    let _ = write!(out, "{byte:02x}");
                }
                out.truncate(out.len() - (64 - length));
                out.push(b']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(mask: &Mask, span: &str) -> String {
        let mut out = Vec::new();
        mask.write("credit_card", span.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_names_the_detector() {
        assert_eq!(
            masked(&Mask::Fixed, "4111 1111 1111 1111"),
            "[REDACTED:credit_card]"
        );
    }

    #[test]
    fn keep_last4_keeps_separators_and_the_last_four() {
        assert_eq!(
            masked(&Mask::KeepLast4, "4111 1111 1111 1234"),
            "**** **** **** 1234"
        );
        assert_eq!(masked(&Mask::KeepLast4, "123-45-6789"), "***-**-6789");
        assert_eq!(masked(&Mask::KeepLast4, "abc"), "abc");
        assert_eq!(masked(&Mask::KeepLast4, "h\u{e9}llo1234"), "*****1234");
    }

    #[test]
    fn hash_is_salted_stable_and_cut() {
        let mask = Mask::Hash {
            salt: b"pepper".to_vec(),
            length: 16,
        };
        let one = masked(&mask, "john@example.com");
        assert_eq!(one, masked(&mask, "john@example.com"));
        assert_ne!(one, masked(&mask, "jane@example.com"));
        assert_ne!(
            one,
            masked(
                &Mask::Hash {
                    salt: b"other".to_vec(),
                    length: 16
                },
                "john@example.com"
            )
        );
        assert!(one.starts_with("[REDACTED:credit_card:") && one.ends_with(']'));
        assert_eq!(one.len(), "[REDACTED:credit_card:]".len() + 16);
        // sha256("pepper" + "john@example.com"), computed independently with Python's hashlib.
        let full = Mask::Hash {
            salt: b"pepper".to_vec(),
            length: 64,
        };
        assert_eq!(
            masked(&full, "john@example.com"),
            "[REDACTED:credit_card:309fbb5ee672993f074eac80a8c68f778f12b8bb0363226b1eff8629a5667910]"
        );
    }
}
