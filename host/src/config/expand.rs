//! `${VAR}` expansion in config text, as Fluent Bit does it: before parsing, so a variable can
//! stand anywhere. An undefined variable is an error naming the line, not an empty string.

/// Replace every `${NAME}` in `text` using `lookup`. `$${` escapes a literal `${`.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            format!("line {line}: `${{` without a closing `}}`; write `$${{` for a literal `${{`")
        })?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "line {line}: `${{{name}}}` is not a variable name (letters, digits and `_`)"
            ));
        }
        let value = lookup(name).ok_or_else(|| {
            format!("line {line}: environment variable `{name}` is not set; set it, or remove `${{{name}}}`")
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Register the value `${name}` expanded to as a secret, so the log and config errors show
/// `${name}` instead, unless it came from the ECS task metadata endpoint
/// ([`crate::ecs::from_task_metadata`]): those values are not secret and the log keeps them.
pub fn register_if_secret(name: &str, value: &str) {
    if !crate::ecs::from_task_metadata(name) {
        crate::ops::logging::register_secret(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("eu-west-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_defined_variables() {
        assert_eq!(
            expand_env("region = \"${REGION}\"", env).unwrap(),
            "region = \"eu-west-1\""
        );
        assert_eq!(expand_env("a${EMPTY}b", env).unwrap(), "ab");
        assert_eq!(
            expand_env("cost $5 and $${REGION}", env).unwrap(),
            "cost $5 and ${REGION}"
        );
    }

    #[test]
    fn undefined_or_malformed_variables_name_the_line() {
        let e = expand_env("a = 1\nb = \"${NOPE}\"\n", env).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("NOPE"), "{e}");
        assert!(
            expand_env("x = \"${REGION\"", env)
                .unwrap_err()
                .contains("closing")
        );
        assert!(
            expand_env("x = \"${A B}\"", env)
                .unwrap_err()
                .contains("not a variable name")
        );
    }
}
