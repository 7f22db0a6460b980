//! Fluent Bit `Match` / `Match_Regex` semantics for tags.
//!
//! `Match` is a pattern where `*` matches any run of bytes (dots included) and everything else
//! matches itself; `*` alone matches every tag. `Match_Regex` is a regular expression that must
//! match the whole tag. Tags are bytes; invalid UTF-8 never fails a match.

use regex::bytes::Regex;

/// A compiled tag matcher.
#[derive(Clone, Debug)]
pub enum TagMatcher {
    /// Matches every tag (`*`).
    Any,
    /// A `Match` pattern split at its `*` wildcards.
    Wildcard {
        /// The literal parts between the wildcards.
        parts: Vec<Vec<u8>>,
        /// The original pattern, for messages.
        pattern: String,
    },
    /// A `Match_Regex`, anchored at both ends.
    Regex(Regex),
}

impl TagMatcher {
    /// A matcher for a Fluent Bit `Match` pattern.
    pub fn wildcard(pattern: &str) -> Self {
        if pattern.bytes().all(|b| b == b'*') && !pattern.is_empty() {
            return TagMatcher::Any;
        }
        TagMatcher::Wildcard {
            parts: pattern.split('*').map(|p| p.as_bytes().to_vec()).collect(),
            pattern: pattern.to_string(),
        }
    }

    /// A matcher for a `Match_Regex` expression.
    pub fn regex(expr: &str) -> Result<Self, regex::Error> {
        // Without Unicode mode `.` matches any byte, so invalid UTF-8 in a tag still matches.
        let re = regex::bytes::RegexBuilder::new(&format!("^(?:{expr})$"))
            .unicode(false)
            .build()?;
        Ok(TagMatcher::Regex(re))
    }

    /// True when `tag` matches.
    pub fn matches(&self, tag: &[u8]) -> bool {
        match self {
            TagMatcher::Any => true,
            TagMatcher::Regex(re) => re.is_match(tag),
            TagMatcher::Wildcard { parts, .. } => wildcard_match(parts, tag),
        }
    }
}

/// `parts` are the literals between `*`s: the first must be a prefix, the last a suffix, and the
/// middle ones must appear in order without overlapping.
fn wildcard_match(parts: &[Vec<u8>], tag: &[u8]) -> bool {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return tag.is_empty(),
    };
    if rest.is_empty() {
        return tag == first.as_slice();
    }
    if !tag.starts_with(first) {
        return false;
    }
    let (last, middle) = rest.split_last().unwrap();
    let mut remaining = &tag[first.len()..];
    if remaining.len() < last.len() || !remaining.ends_with(last) {
        return false;
    }
    remaining = &remaining[..remaining.len() - last.len()];
    for part in middle {
        match find(remaining, part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, tag: &str) -> bool {
        TagMatcher::wildcard(p).matches(tag.as_bytes())
    }

    #[test]
    fn wildcard_semantics_follow_fluent_bit() {
        assert!(m("*", "anything.at.all"));
        assert!(m("app", "app"));
        assert!(!m("app", "app2"));
        assert!(m("app-firelens*", "app-firelens-0123abcd"));
        assert!(!m("app-firelens*", "web-firelens-0123"));
        assert!(m("*-firelens-*", "web-firelens-42"));
        assert!(m("kube.*.log", "kube.a.b.c.log"));
        assert!(!m("kube.*.log", "kube.a.b.c.txt"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*bc*c", "abc"), "literal parts must not overlap");
        assert!(m("*.log", ".log"));
        assert!(!m("*.log", "log"));
    }

    #[test]
    fn invalid_utf8_tags_are_matched_as_bytes() {
        let tag = b"app.\xff\xfe.log";
        assert!(TagMatcher::wildcard("app.*").matches(tag));
        assert!(TagMatcher::wildcard("*.log").matches(tag));
        assert!(TagMatcher::regex(r"app\..*").unwrap().matches(tag));
    }

    #[test]
    fn regex_is_anchored() {
        let r = TagMatcher::regex("web|api").unwrap();
        assert!(r.matches(b"web"));
        assert!(r.matches(b"api"));
        assert!(!r.matches(b"webapi"));
        assert!(!r.matches(b"xweb"));
    }
}
