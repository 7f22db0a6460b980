//! Object keys from `s3_key_format`, as Fluent Bit's `flb_get_s3_key` makes them: `$TAG`, `$TAG[0]`
//! … `$TAG[9]` (the tag split on any character of `s3_key_format_tag_delimiters`), `$INDEX` (a
//! counter kept in `store_dir`), `$UUID` (8 random alphanumerics), then strftime (UTC). The
//! leading `/` of the format is not part of the key. Substituted values are never read as
//! strftime (a `%` in a tag stays a `%`).
//!
//! Suffix rule: with PutObject, a format without `$UUID` or `$INDEX`, and `static_file_path`
//! off, the key ends with `-object` + 8 random characters so two objects never collide.

use crate::time::strftime::TimeFormat;

/// Longest S3 object key, in bytes.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html>
pub const MAX_KEY_BYTES: usize = 1024;
/// Fluent Bit's default `s3_key_format`.
pub const DEFAULT_KEY_FORMAT: &str = "/fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S";
/// `$TAG[n]` goes up to 9, as in Fluent Bit.
pub const MAX_TAG_PARTS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Text that strftime expands.
    Time(TimeFormat),
    Tag,
    TagPart(usize),
    Index,
    Uuid,
}

/// A parsed `s3_key_format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFormat {
    pieces: Vec<Piece>,
    delimiters: String,
    has_uuid_or_index: bool,
    uses_index: bool,
}

/// What a key is made from.
#[derive(Clone, Copy, Debug)]
pub struct KeyInputs<'a> {
    /// The tag.
    pub tag: &'a str,
    /// The time strftime uses (nanoseconds since the epoch).
    pub time_ns: u64,
    /// The `$INDEX` value.
    pub index: u64,
    /// PutObject is used (suffix rule).
    pub put_object: bool,
    /// `static_file_path` (suffix rule).
    pub static_file_path: bool,
}

impl KeyFormat {
    /// Parse `format` with the tag delimiters `delimiters`.
    pub fn new(format: &str, delimiters: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = format.strip_prefix('/').unwrap_or(format);
        let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
            if !text.is_empty() {
                pieces.push(Piece::Time(TimeFormat::new(&std::mem::take(text))));
            }
        };
        while !rest.is_empty() {
            let (piece, len) = if let Some(after) = rest.strip_prefix("$TAG[") {
                match after
                    .find(']')
                    .and_then(|c| after[..c].parse::<usize>().ok().map(|n| (n, c)))
                {
                    Some((n, close)) if n < MAX_TAG_PARTS => {
                        (Some(Piece::TagPart(n)), 5 + close + 1)
                    }
                    _ => (Some(Piece::Tag), 4),
                }
            } else if rest.starts_with("$TAG") {
                (Some(Piece::Tag), 4)
            } else if rest.starts_with("$INDEX") {
                (Some(Piece::Index), 6)
            } else if rest.starts_with("$UUID") {
                (Some(Piece::Uuid), 5)
            } else {
                (None, rest.chars().next().map_or(1, char::len_utf8))
            };
            match piece {
                Some(p) => {
                    flush(&mut text, &mut pieces);
                    pieces.push(p);
                }
                None => text.push_str(&rest[..len]),
            }
            rest = &rest[len..];
        }
        flush(&mut text, &mut pieces);
        let uses_index = pieces.contains(&Piece::Index);
        let has_uuid_or_index = uses_index || pieces.contains(&Piece::Uuid);
        KeyFormat {
            pieces,
            delimiters: delimiters.to_string(),
            has_uuid_or_index,
            uses_index,
        }
    }

    /// Whether `$INDEX` appears (the counter is then advanced per object).
    pub fn uses_index(&self) -> bool {
        self.uses_index
    }

    /// The object key.
    pub fn render(&self, inputs: &KeyInputs<'_>) -> String {
        let parts: Vec<&str> = inputs
            .tag
            .split(|c| self.delimiters.contains(c))
            .filter(|p| !p.is_empty())
            .collect();
        let mut key = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Time(f) => f.write(inputs.time_ns, &mut key),
                Piece::Tag => key.push_str(inputs.tag),
                Piece::TagPart(n) => match parts.get(*n) {
                    Some(p) => key.push_str(p),
                    // Fluent Bit leaves `$TAG[n]` in place, and `$TAG` then becomes the tag.
                    None => {
                        key.push_str(inputs.tag);
                        key.push_str(&format!("[{n}]"));
                    }
                },
                Piece::Index => key.push_str(&inputs.index.to_string()),
                Piece::Uuid => key.push_str(&random_alphanumeric(8)),
            }
        }
        if inputs.put_object && !self.has_uuid_or_index && !inputs.static_file_path {
            key.push_str("-object");
            key.push_str(&random_alphanumeric(8));
        }
        if key.len() > MAX_KEY_BYTES {
            let mut cut = MAX_KEY_BYTES;
            while !key.is_char_boundary(cut) {
                cut -= 1;
            }
            key.truncate(cut);
        }
        key
    }
}

/// `n` random characters from `[0-9A-Za-z]`.
pub fn random_alphanumeric(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000_123_456_789;

    fn inputs(tag: &str) -> KeyInputs<'_> {
        KeyInputs {
            tag,
            time_ns: T,
            index: 7,
            put_object: false,
            static_file_path: false,
        }
    }

    #[test]
    fn default_format() {
        let f = KeyFormat::new(DEFAULT_KEY_FORMAT, ".");
        assert_eq!(
            f.render(&inputs("app-firelens-1")),
            "fluent-bit-logs/app-firelens-1/2023/11/14/22/13/20"
        );
    }

    #[test]
    fn tag_parts_with_several_delimiters() {
        let f = KeyFormat::new("/$TAG[0]/$TAG[2]/$TAG[1]/x", ".-");
        assert_eq!(f.render(&inputs("app-firelens.web")), "app/web/firelens/x");
        let f = KeyFormat::new("/$TAG[4]/y", ".");
        assert_eq!(
            f.render(&inputs("a.b")),
            "a.b[4]/y",
            "an out-of-range part stays visible, as in Fluent Bit"
        );
    }

    #[test]
    fn index_uuid_and_percent_in_tags() {
        let f = KeyFormat::new("/logs/$INDEX-$UUID.gz", ".");
        assert!(f.uses_index());
        let key = f.render(&inputs("t"));
        assert!(
            key.starts_with("logs/7-")
                && key.ends_with(".gz")
                && key.len() == "logs/7-".len() + 8 + 3,
            "{key}"
        );
        let f = KeyFormat::new("/$TAG/%Y", ".");
        assert_eq!(
            f.render(&inputs("100%H")),
            "100%H/2023",
            "a tag is never read as strftime"
        );
    }

    #[test]
    fn put_object_suffix_rules() {
        let put = |fmt: &str, static_path: bool| {
            KeyFormat::new(fmt, ".").render(&KeyInputs {
                put_object: true,
                static_file_path: static_path,
                ..inputs("t")
            })
        };
        let k = put("/a/$TAG.json", false);
        assert!(
            k.starts_with("a/t.json-object") && k.len() == "a/t.json-object".len() + 8,
            "{k}"
        );
        assert_eq!(put("/a/$TAG.json", true), "a/t.json");
        assert!(put("/a/$UUID.json", false).ends_with(".json"));
        assert_eq!(put("/a/$INDEX.json", false), "a/7.json");
        assert_eq!(
            KeyFormat::new("/a/$TAG.json", ".").render(&inputs("t")),
            "a/t.json",
            "multipart adds no suffix"
        );
    }

    #[test]
    fn keys_are_capped_at_1024_bytes() {
        let f = KeyFormat::new(&format!("/{}", "é".repeat(600)), ".");
        let key = f.render(&inputs("t"));
        assert!(key.len() <= MAX_KEY_BYTES && key.len() >= MAX_KEY_BYTES - 1);
    }
}
