//! `${VAR}` expansion in config text, as Fluent Bit does it: before parsing, so a variable can
//! stand anywhere. An undefined variable is an error naming the line, not an empty string.
//!
//! Expansion also decides which values are secrets, the one place that does: a value is
//! handed to [`Variables::secret`] (the router registers it with its log redactor) when the
//! variable's name says it is one ([`is_secret_variable`]: `…KEY…`, `…TOKEN…`, `…SECRET…`,
//! `…PASSW…`, `…CREDENTIAL…`), when it stands in a credential option
//! ([`is_credential_option`]: `apikey`, `password`, `shared_key`, …), or when it is the
//! placeholder FireLens writes for a `secretOptions` entry: `role_arn ${role_arn_0}`, a variable
//! named after its option plus `_<container index>` (firelens-aws.md §1.1). Every other value
//! (regions, group names, `${OUTPUT_PLUGIN}` in a `Name`) stays readable in the log and in
//! config errors. Values that came from the ECS task metadata endpoint are never secret.

/// Option names whose values are credentials, in either config format. A key matches when its
/// last `.`-separated part, lower-cased, is one of these or ends with `_` and one of these
/// (`dd_api_key`, `tls.key_passwd`, `http_passwd`).
pub const CREDENTIAL_OPTIONS: &[&str] = &[
    "apikey",
    "api_key",
    "license_key",
    "shared_key",
    "password",
    "passwd",
    "token",
    "secret",
    "secret_key",
    "aws_secret_access_key",
    "secret_access_key",
    "session_token",
    "client_secret",
    "private_key",
    "authorization",
    "credentials",
];

/// Parts of a variable name that mark its value as a secret (compared upper-case).
pub const SECRET_NAME_PARTS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSW", "CREDENTIAL"];

/// Whether option `key` (as written, any case) holds a credential; see [`CREDENTIAL_OPTIONS`].
pub fn is_credential_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let last = key.rsplit('.').next().unwrap_or(&key);
    CREDENTIAL_OPTIONS.iter().any(|option| {
        last == *option
            || last
                .strip_suffix(option)
                .is_some_and(|head| head.ends_with('_'))
    })
}

/// Whether a variable's name says its value is a secret; see [`SECRET_NAME_PARTS`].
pub fn is_secret_variable(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// Where `${NAME}` values come from, and who is told of the values that are secrets.
/// A plain `Fn(&str) -> Option<String>` is a lookup that keeps no secrets.
pub trait Variables {
    /// The value of `name`, if it is set.
    fn lookup(&self, name: &str) -> Option<String>;
    /// `value`, the value of `name`, was expanded and is a secret (see the module docs).
    fn secret(&self, _name: &str, _value: &str) {}
}

impl<F: Fn(&str) -> Option<String>> Variables for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Replace every `${NAME}` in TOML `text` from `vars`. `$${` escapes a literal `${`.
/// Secret values are handed to [`Variables::secret`] (see the module docs); the option a
/// variable stands in is the key before the nearest `=` on its line.
pub fn expand_env(text: &str, vars: &dyn Variables) -> Result<String, String> {
    expand(text, toml_option_at, vars)
}

/// Replace every `${NAME}` in one line of a Fluent Bit classic config, as [`expand_env`] does;
/// the option a variable stands in is the line's first word (`apikey ${DD_API_KEY}`).
pub fn expand_classic_line(line: &str, vars: &dyn Variables) -> Result<String, String> {
    expand(line, classic_option_at, vars)
}

fn expand(
    text: &str,
    option_at: fn(&str, usize) -> Option<&str>,
    vars: &dyn Variables,
) -> Result<String, String> {
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
        let offset = text.len() - rest.len() + at;
        let line = text[..offset].matches('\n').count() + 1;
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
        let value = vars.lookup(name).ok_or_else(|| {
            format!("line {line}: environment variable `{name}` is not set; set it, or remove `${{{name}}}`")
        })?;
        let line_start = text[..offset].rfind('\n').map_or(0, |n| n + 1);
        let option = option_at(&text[line_start..], offset - line_start);
        if is_secret(name, option) {
            vars.secret(name, &value);
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether the value of variable `name`, standing in `option`, is a secret.
fn is_secret(name: &str, option: Option<&str>) -> bool {
    is_secret_variable(name)
        || option.is_some_and(|option| {
            is_credential_option(option) || is_firelens_secret_placeholder(name, option)
        })
}

/// Whether `name` is what FireLens calls the variable of a `secretOptions` entry for `option`:
/// `<option>_<container index>` (the ECS agent's `firelensConfigVarFmt = "%s_%d"`).
fn is_firelens_secret_placeholder(name: &str, option: &str) -> bool {
    name.rsplit_once('_').is_some_and(|(head, index)| {
        head.eq_ignore_ascii_case(option)
            && !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The key a TOML line assigns at byte `at`: the bare or quoted key before the last `=` before
/// `at` (`api_key = "${X}"`, `config = { dd_api_key = "${X}" }`, `"Authorization" = …`).
fn toml_option_at(line: &str, at: usize) -> Option<&str> {
    let before = line[..at].rfind('=').map(|eq| line[..eq].trim_end())?;
    let before = before.trim_end_matches(['"', '\'']);
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map_or(0, |i| i + 1);
    Some(&before[start..]).filter(|k| !k.is_empty())
}

/// The key of a classic config line (`Key value`), or of `@SET key=value`.
fn classic_option_at(line: &str, _at: usize) -> Option<&str> {
    let line = line.trim_start();
    let word = line.split_whitespace().next()?;
    if word.eq_ignore_ascii_case("@set") {
        return line[word.len()..].split('=').next().map(str::trim);
    }
    Some(word)
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
            expand_env("region = \"${REGION}\"", &env).unwrap(),
            "region = \"eu-west-1\""
        );
        assert_eq!(expand_env("a${EMPTY}b", &env).unwrap(), "ab");
        assert_eq!(
            expand_env("cost $5 and $${REGION}", &env).unwrap(),
            "cost $5 and ${REGION}"
        );
    }

    #[test]
    fn undefined_or_malformed_variables_name_the_line() {
        let e = expand_env("a = 1\nb = \"${NOPE}\"\n", &env).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("NOPE"), "{e}");
        assert!(
            expand_env("x = \"${REGION\"", &env)
                .unwrap_err()
                .contains("closing")
        );
        assert!(
            expand_env("x = \"${A B}\"", &env)
                .unwrap_err()
                .contains("not a variable name")
        );
    }

    #[test]
    fn credential_options_and_secret_names_are_recognised() {
        for key in [
            "apikey",
            "ApiKey",
            "api_key",
            "dd_api_key",
            "license_key",
            "Shared_Key",
            "security.shared_key",
            "http_passwd",
            "tls.key_passwd",
            "password",
            "token",
            "aws_secret_access_key",
            "Authorization",
        ] {
            assert!(is_credential_option(key), "{key}");
        }
        for key in [
            "region",
            "log_key",
            "s3_key_format",
            "http_user",
            "name",
            "log_group_name",
            "tokenizer",
            "keyword",
        ] {
            assert!(!is_credential_option(key), "{key}");
        }
        for name in [
            "DD_API_KEY",
            "github_token",
            "DB_PASSWORD",
            "AWS_CREDENTIALS",
        ] {
            assert!(is_secret_variable(name), "{name}");
        }
        for name in ["OUTPUT_PLUGIN", "AWS_REGION", "LOG_GROUP"] {
            assert!(!is_secret_variable(name), "{name}");
        }
        assert!(is_secret("role_arn_0", Some("role_arn")));
        assert!(is_secret("Region_12", Some("region")));
        assert!(!is_secret("role_arn", Some("role_arn")));
        assert!(!is_secret("role_arn_x", Some("role_arn")));
        assert!(!is_secret("OUTPUT_PLUGIN", Some("Name")));
    }

    #[test]
    fn options_are_found_in_both_formats() {
        let at = |line: &str| line.find("${").unwrap();
        for (line, key) in [
            ("api_key = \"${X}\"", Some("api_key")),
            (
                "config = { site = \"a\", dd_api_key = \"${X}\" }",
                Some("dd_api_key"),
            ),
            (
                "headers = { \"Authorization\" = \"Bearer ${X}\" }",
                Some("Authorization"),
            ),
            ("  \"${X}\",", None),
        ] {
            assert_eq!(toml_option_at(line, at(line)), key, "{line}");
        }
        for (line, key) in [
            ("    apikey  ${X}", Some("apikey")),
            ("Name ${X}_logs", Some("Name")),
            ("@SET api_key=${X}", Some("api_key")),
        ] {
            assert_eq!(classic_option_at(line, at(line)), key, "{line}");
        }
    }

    #[test]
    fn only_secret_values_are_handed_over_as_secrets() {
        struct Recording(std::cell::RefCell<Vec<(String, String)>>);
        impl Variables for Recording {
            fn lookup(&self, name: &str) -> Option<String> {
                let value = match name {
                    "WR_EXPAND_PLUGIN" => "cloudwatch_expand_test",
                    "WR_EXPAND_DD" => "dd-value-from-option-1",
                    "WR_EXPAND_HIDDEN_TOKEN" => "value-named-a-token-2",
                    "WR_EXPAND_CLASSIC" => "classic-apikey-value-3",
                    _ => return None,
                };
                Some(value.to_string())
            }
            fn secret(&self, name: &str, value: &str) {
                self.0
                    .borrow_mut()
                    .push((name.to_string(), value.to_string()));
            }
        }
        let vars = Recording(Default::default());
        expand_env(
            "name = \"${WR_EXPAND_PLUGIN}\"\nconfig = { dd_api_key = \"${WR_EXPAND_DD}\", x = \"${WR_EXPAND_HIDDEN_TOKEN}\" }\n",
            &vars,
        )
        .unwrap();
        expand_classic_line("    Name ${WR_EXPAND_PLUGIN}_logs", &vars).unwrap();
        expand_classic_line("    apikey ${WR_EXPAND_CLASSIC}", &vars).unwrap();
        let names: Vec<_> = vars.0.into_inner().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "WR_EXPAND_DD",
                "WR_EXPAND_HIDDEN_TOKEN",
                "WR_EXPAND_CLASSIC"
            ]
        );
    }
}
