//! Fluent Bit's value syntax shared by filters and parsers: regular expressions written
//! `/pattern/` or `/pattern/i` ([`compile_regex`]) and blank-separated lists with `"quoted"`
//! parts ([`split_quoted`]).

/// Compile a Fluent Bit regular expression: `/pattern/` and `/pattern/i` (case-insensitive) are
/// accepted as Fluent Bit does; the syntax is Rust's `regex` (Onigmo's look-around and
/// back-references are not available). The error names the pattern and the fix.
pub fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, String> {
    let (body, case_insensitive) = match pattern.strip_prefix('/') {
        Some(rest) if rest.ends_with("/i") && rest.len() >= 2 => (&rest[..rest.len() - 2], true),
        Some(rest) if rest.ends_with('/') => (&rest[..rest.len() - 1], false),
        _ => (pattern, false),
    };
    regex::bytes::RegexBuilder::new(body)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            format!(
                "{pattern:?} is not a valid regular expression: {e}\n(Rust `regex` syntax: no look-around or back-references; rewrite the pattern, or use a WASM filter)"
            )
        })
}

/// Split a Fluent Bit value at runs of blanks, keeping `"double quoted"` parts (with `\"`
/// escapes) together and unquoted, as Fluent Bit's `flb_utils_split_quoted` does.
pub fn split_quoted(value: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut part = String::new();
        if first == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => part.push(chars.next().unwrap()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => part.push(c),
                }
            }
            if !closed {
                return Err(format!("{value:?} has an unclosed `\"`"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                part.push(c);
            }
        }
        parts.push(part);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluent_bit_regex_forms() {
        assert!(compile_regex("/^ab/i").unwrap().is_match(b"ABc"));
        assert!(compile_regex("/^ab/").unwrap().is_match(b"abc"));
        assert!(!compile_regex("/^ab/").unwrap().is_match(b"ABc"));
        assert!(compile_regex("^/x/$").unwrap().is_match(b"/x/"));
        let e = compile_regex("(?<=a)b").unwrap_err();
        assert!(
            e.contains("look-around") && e.contains("WASM filter"),
            "{e}"
        );
    }

    #[test]
    fn quoted_splitting() {
        assert_eq!(split_quoted("a  b").unwrap(), vec!["a", "b"]);
        assert_eq!(
            split_quoted("key \"a value\" x").unwrap(),
            vec!["key", "a value", "x"]
        );
        assert_eq!(
            split_quoted(r#"k "say \"hi\"""#).unwrap(),
            vec!["k", "say \"hi\""]
        );
        assert!(split_quoted("k \"open").is_err());
    }
}
