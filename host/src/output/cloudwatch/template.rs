//! Log group and stream name templates, in both syntaxes FireLens users have:
//!
//! * the Go `cloudwatch` plugin's `$(…)`: `$(tag)`, `$(tag[n])`, `$(key)`,
//!   `$(key['sub']['sub2'])`, `$(uuid)`, `$(ecs_task_id)`, `$(ecs_cluster)`, `$(ecs_task_arn)`;
//! * Fluent Bit's record accessor (`log_group_template` / `log_stream_template` of the C
//!   `cloudwatch_logs`): `$TAG`, `$TAG[n]`, `$key`, `$key['sub']`. A key name runs until `.`,
//!   space, `,` or `"` (a `.` inside `['…']` belongs to the sub-key), as in
//!   `flb_record_accessor.c`.
//!
//! Rendering fails — and the caller falls back to the next name — when a key is missing or not
//! a scalar, when `$(tag[n])` has no part `n`, or when ECS metadata is unknown. C's `$TAG[n]`
//! out of range renders empty, as Fluent Bit does. The result is sanitised as the Go plugin
//! does (group: bytes outside `[A-Za-z0-9_./-]` → `.`; stream: `:` and `*` → `.`) and cut to
//! [`MAX_NAME_LEN`].

use crate::event::json;
use crate::output::aws::EcsMetadata;

/// Longest log group or stream name, in bytes.
/// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html>
pub const MAX_NAME_LEN: usize = 512;

/// Which name a template renders (they are sanitised differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A log group name.
    Group,
    /// A log stream name.
    Stream,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Tag,
    /// Part `index` of the tag split on `.`; `strict` (Go syntax) fails when it is missing.
    TagIndex {
        index: usize,
        strict: bool,
    },
    /// A record key and its sub-keys.
    Key(Vec<String>),
    Uuid,
    EcsTaskId,
    EcsCluster,
    EcsTaskArn,
}

/// A parsed name template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `$(` without `)`.
    #[error("`$(` without a closing `)` in {0:?}")]
    Unclosed(String),
    /// A `['sub']` that is not closed or not quoted.
    #[error("bad sub-key syntax in {0:?}; write $(key['sub']) or $key['sub']")]
    BadSubKey(String),
    /// `$()` or `$` followed by nothing usable.
    #[error("empty variable in {0:?}")]
    EmptyVariable(String),
    /// The record lacks the key, or its value is a map or an array.
    #[error("the record has no usable value at {0}")]
    MissingKey(String),
    /// `$(tag[n])` on a tag with fewer parts.
    #[error("the tag {tag:?} has no part {index}")]
    NoTagIndex {
        /// The tag.
        tag: String,
        /// The index asked for.
        index: usize,
    },
    /// ECS metadata that is not known (not running in ECS, or not fetched yet).
    #[error("{0} is unknown: not running in ECS, or ECS_CLUSTER / ECS_TASK_ARN are not set")]
    NoEcsMetadata(&'static str),
    /// Rendered to nothing.
    #[error("the name rendered empty")]
    Empty,
}

/// What a template renders from besides the record.
#[derive(Clone, Copy, Debug)]
pub struct TemplateContext<'a> {
    /// The event's tag.
    pub tag: &'a str,
    /// ECS task metadata.
    pub ecs: &'a EcsMetadata,
    /// The output instance's `$(uuid)`.
    pub uuid: &'a str,
}

impl NameTemplate {
    /// Parse `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < source.len() {
            let c = source[i..].chars().next().unwrap();
            if c != '$' || i + 1 >= source.len() {
                literal.push(c);
                i += c.len_utf8();
                continue;
            }
            let (part, next) = if bytes[i + 1] == b'(' {
                let close = source[i + 2..]
                    .find(')')
                    .ok_or_else(|| TemplateError::Unclosed(source.to_string()))?;
                (
                    go_variable(&source[i + 2..i + 2 + close], source)?,
                    i + 2 + close + 1,
                )
            } else {
                record_accessor_variable(source, i)?
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
            i = next;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(NameTemplate { parts })
    }

    /// Whether rendering needs the record (otherwise the name is the same for a whole batch).
    pub fn uses_record(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Key(_)))
    }

    /// Render, sanitise and cut to [`MAX_NAME_LEN`]. `record` is the msgpack map (needed only
    /// when [`Self::uses_record`]).
    pub fn render(
        &self,
        kind: NameKind,
        ctx: &TemplateContext<'_>,
        record: &[u8],
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Tag => out.push_str(ctx.tag),
                Part::TagIndex { index, strict } => match ctx.tag.split('.').nth(*index) {
                    Some(p) => out.push_str(p),
                    None if *strict => {
                        return Err(TemplateError::NoTagIndex {
                            tag: ctx.tag.to_string(),
                            index: *index,
                        });
                    }
                    None => {}
                },
                Part::Key(path) => out.push_str(&lookup(record, path)?),
                Part::Uuid => out.push_str(ctx.uuid),
                Part::EcsTaskId => out.push_str(
                    ctx.ecs
                        .task_id
                        .as_deref()
                        .ok_or(TemplateError::NoEcsMetadata("ecs_task_id"))?,
                ),
                Part::EcsCluster => out.push_str(
                    ctx.ecs
                        .cluster
                        .as_deref()
                        .ok_or(TemplateError::NoEcsMetadata("ecs_cluster"))?,
                ),
                Part::EcsTaskArn => out.push_str(
                    ctx.ecs
                        .task_arn
                        .as_deref()
                        .ok_or(TemplateError::NoEcsMetadata("ecs_task_arn"))?,
                ),
            }
        }
        let name = sanitize(kind, &out);
        if name.is_empty() {
            Err(TemplateError::Empty)
        } else {
            Ok(name)
        }
    }
}

/// The inside of `$( … )`.
fn go_variable(inner: &str, source: &str) -> Result<Part, TemplateError> {
    let inner = inner.trim();
    Ok(match inner {
        "" => return Err(TemplateError::EmptyVariable(source.to_string())),
        "tag" => Part::Tag,
        "uuid" => Part::Uuid,
        "ecs_task_id" => Part::EcsTaskId,
        "ecs_cluster" => Part::EcsCluster,
        "ecs_task_arn" => Part::EcsTaskArn,
        _ => {
            if let Some(index) = inner
                .strip_prefix("tag[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
            {
                Part::TagIndex {
                    index,
                    strict: true,
                }
            } else {
                Part::Key(key_path(inner, source)?)
            }
        }
    })
}

/// A record-accessor variable starting at `source[start] == '$'`; returns it and where the
/// literal text resumes.
fn record_accessor_variable(source: &str, start: usize) -> Result<(Part, usize), TemplateError> {
    let rest = &source[start + 1..];
    if let Some(after) = rest.strip_prefix("TAG") {
        if let Some(inner) = after.strip_prefix('[')
            && let Some(close) = inner.find(']')
            && let Ok(index) = inner[..close].trim().parse::<usize>()
        {
            return Ok((
                Part::TagIndex {
                    index,
                    strict: false,
                },
                start + 1 + 3 + 1 + close + 1,
            ));
        }
        return Ok((Part::Tag, start + 1 + 3));
    }
    let mut quotes = 0usize;
    let mut end = rest.len();
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'\'' => quotes += 1,
            b'.' if quotes % 2 == 1 => {}
            b'.' | b' ' | b',' | b'"' => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    if end == 0 {
        return Err(TemplateError::EmptyVariable(source.to_string()));
    }
    Ok((Part::Key(key_path(&rest[..end], source)?), start + 1 + end))
}

/// `key['a']['b']` → `["key", "a", "b"]`.
fn key_path(spec: &str, source: &str) -> Result<Vec<String>, TemplateError> {
    let bad = || TemplateError::BadSubKey(source.to_string());
    let (name, mut rest) = match spec.find('[') {
        Some(i) => (&spec[..i], &spec[i..]),
        None => (spec, ""),
    };
    if name.is_empty() {
        return Err(TemplateError::EmptyVariable(source.to_string()));
    }
    let mut path = vec![name.to_string()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix("['").ok_or_else(bad)?;
        let close = inner.find("']").ok_or_else(bad)?;
        path.push(inner[..close].to_string());
        rest = &inner[close + 2..];
    }
    Ok(path)
}

/// The text of the scalar at `path` in the msgpack map `record`.
fn lookup(record: &[u8], path: &[String]) -> Result<String, TemplateError> {
    let missing = || TemplateError::MissingKey(path.join("."));
    let mut current = record;
    for key in path {
        let entries = json::map_entries(current).map_err(|_| missing())?;
        current = entries
            .filter_map(Result::ok)
            .find(|(k, _)| json::str_payload(k) == Some(key.as_bytes()))
            .map(|(_, v)| v)
            .ok_or_else(missing)?;
    }
    if let Some(text) = json::str_payload(current) {
        return Ok(String::from_utf8_lossy(text).into_owned());
    }
    let text = json::to_json(current).map_err(|_| missing())?;
    match text.as_bytes().first() {
        Some(b'{' | b'[') | None => Err(missing()),
        _ if text == "null" => Err(missing()),
        _ => Ok(text),
    }
}

/// Sanitise a rendered name as the Go plugin does and cut it to [`MAX_NAME_LEN`] bytes.
pub fn sanitize(kind: NameKind, name: &str) -> String {
    let mut out: String = match kind {
        NameKind::Group => name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-') {
                    b as char
                } else {
                    '.'
                }
            })
            .collect(),
        NameKind::Stream => name
            .chars()
            .map(|c| if c == ':' || c == '*' { '.' } else { c })
            .collect(),
    };
    if out.len() > MAX_NAME_LEN {
        let mut cut = MAX_NAME_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value as V;

    fn record() -> Vec<u8> {
        let v = V::Map(vec![
            (V::from("app"), V::from("web")),
            (V::from("n"), V::from(42)),
            (V::from("ok"), V::from(true)),
            (
                V::from("kubernetes"),
                V::Map(vec![
                    (V::from("namespace_name"), V::from("prod")),
                    (
                        V::from("labels"),
                        V::Map(vec![(V::from("a.b"), V::from("deep"))]),
                    ),
                ]),
            ),
            (V::from("nil"), V::Nil),
        ]);
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &v).unwrap();
        b
    }

    fn ecs() -> EcsMetadata {
        EcsMetadata {
            cluster: Some("prod".into()),
            task_arn: Some("arn:aws:ecs:us-east-1:111122223333:task/prod/abc123".into()),
            task_id: Some("abc123".into()),
        }
    }

    fn render(template: &str, kind: NameKind) -> Result<String, TemplateError> {
        let ecs = ecs();
        let ctx = TemplateContext {
            tag: "app-firelens-abc123.web.v2",
            ecs: &ecs,
            uuid: "2Hx8qK7Yd3b1cR9uQe5tLm0vWzA",
        };
        NameTemplate::parse(template)?.render(kind, &ctx, &record())
    }

    #[test]
    fn go_syntax_every_variable() {
        assert_eq!(
            render("/ecs/$(tag)", NameKind::Group).unwrap(),
            "/ecs/app-firelens-abc123.web.v2"
        );
        assert_eq!(
            render("$(tag[0])/$(tag[2])", NameKind::Stream).unwrap(),
            "app-firelens-abc123/v2"
        );
        assert_eq!(
            render("$(app)-$(kubernetes['namespace_name'])", NameKind::Stream).unwrap(),
            "web-prod"
        );
        assert_eq!(
            render("$(kubernetes['labels']['a.b'])", NameKind::Stream).unwrap(),
            "deep"
        );
        assert_eq!(
            render("x-$(uuid)", NameKind::Stream).unwrap(),
            "x-2Hx8qK7Yd3b1cR9uQe5tLm0vWzA"
        );
        assert_eq!(
            render("$(ecs_cluster)/$(ecs_task_id)", NameKind::Group).unwrap(),
            "prod/abc123"
        );
        assert_eq!(
            render("$(ecs_task_arn)", NameKind::Stream).unwrap(),
            "arn.aws.ecs.us-east-1.111122223333.task/prod/abc123",
            "`:` is not allowed in stream names"
        );
        assert_eq!(render("$(n)-$(ok)", NameKind::Stream).unwrap(), "42-true");
    }

    #[test]
    fn record_accessor_syntax_every_variable() {
        assert_eq!(
            render("/ecs/$TAG", NameKind::Group).unwrap(),
            "/ecs/app-firelens-abc123.web.v2"
        );
        assert_eq!(
            render("$TAG[1]-$TAG[0]", NameKind::Stream).unwrap(),
            "web-app-firelens-abc123"
        );
        assert_eq!(
            render("$TAG[7]x", NameKind::Stream).unwrap(),
            "x",
            "C renders a missing tag part empty"
        );
        assert_eq!(
            render("$kubernetes['namespace_name'].$app", NameKind::Stream).unwrap(),
            "prod.web"
        );
        assert_eq!(
            render("$kubernetes['labels']['a.b'],$n", NameKind::Stream).unwrap(),
            "deep,42"
        );
        assert_eq!(render("$app", NameKind::Group).unwrap(), "web");
    }

    #[test]
    fn failures_fall_back() {
        assert_eq!(
            render("$(missing)", NameKind::Group),
            Err(TemplateError::MissingKey("missing".into()))
        );
        assert!(matches!(
            render("$(kubernetes['nope'])", NameKind::Group),
            Err(TemplateError::MissingKey(_))
        ));
        assert!(
            matches!(
                render("$(kubernetes)", NameKind::Group),
                Err(TemplateError::MissingKey(_))
            ),
            "maps are not names"
        );
        assert!(matches!(
            render("$(nil)", NameKind::Group),
            Err(TemplateError::MissingKey(_))
        ));
        assert!(matches!(
            render("$(tag[5])", NameKind::Group),
            Err(TemplateError::NoTagIndex { index: 5, .. })
        ));
        assert!(matches!(
            render("$missing", NameKind::Group),
            Err(TemplateError::MissingKey(_))
        ));
        let none = EcsMetadata::default();
        let ctx = TemplateContext {
            tag: "t",
            ecs: &none,
            uuid: "u",
        };
        let t = NameTemplate::parse("$(ecs_task_id)").unwrap();
        assert_eq!(
            t.render(NameKind::Stream, &ctx, &[0x80]),
            Err(TemplateError::NoEcsMetadata("ecs_task_id"))
        );
    }

    #[test]
    fn parse_errors_and_literals() {
        assert!(matches!(
            NameTemplate::parse("$(tag"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(
            NameTemplate::parse("$()"),
            Err(TemplateError::EmptyVariable(_))
        ));
        assert!(matches!(
            NameTemplate::parse("$(k['a')"),
            Err(TemplateError::BadSubKey(_))
        ));
        let plain = NameTemplate::parse("/ecs/web$").unwrap();
        assert!(!plain.uses_record());
        assert_eq!(render("/ecs/web$", NameKind::Stream).unwrap(), "/ecs/web$");
        assert!(NameTemplate::parse("$(app)").unwrap().uses_record());
        assert!(
            !NameTemplate::parse("$(tag)-$TAG[1]-$(ecs_task_id)")
                .unwrap()
                .uses_record()
        );
    }

    #[test]
    fn sanitising_and_length() {
        assert_eq!(
            sanitize(NameKind::Group, "/ecs/my app#1:é"),
            "/ecs/my.app.1..."
        );
        assert_eq!(sanitize(NameKind::Stream, "a:b*c d/é"), "a.b.c d/é");
        let long = "é".repeat(400);
        let cut = sanitize(NameKind::Stream, &long);
        assert!(cut.len() <= MAX_NAME_LEN && cut.len() > MAX_NAME_LEN - 2);
        assert_eq!(
            sanitize(NameKind::Group, &"a".repeat(600)).len(),
            MAX_NAME_LEN
        );
    }
}
