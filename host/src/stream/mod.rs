//! The stream processor: Fluent Bit's `[STREAM_TASK]`s (`Streams_File`), `[[stream_tasks]]`
//! here. Each task is one SQL statement ([`sql`]) that selects records from a tag pattern or
//! another task's stream and, with `CREATE STREAM name [WITH (tag='…')]`, puts its results back
//! into routing under their own tag.
//!
//! Where it runs, as in Fluent Bit: after the filter chain, on every batch that leaves it (the
//! batch itself goes on to its outputs unchanged). Results re-enter the pipeline at the first
//! filter under their tag, so they are filtered, routed and read by later tasks like any other
//! records — a task `FROM STREAM:name` reads only the results of the task that creates `name`.
//! A result that would start a sixth round of tasks is dropped and counted (`stream_loop`); the
//! results are part of the same dispatch, so the sender's ack covers them too.
//!
//! A bare `SELECT` (no `CREATE STREAM`) is Fluent Bit's way to print results on its console:
//! here its results are written to the router's standard output as JSON lines, and routed
//! nowhere.
//!
//! Values compare as Fluent Bit compares them (`src/stream_processor/flb_sp.c`): a key that is
//! missing makes every comparison false (so `key IS NULL` is true only for an explicit null,
//! and `key IS NOT NULL` is true for a missing key); a string compared with a number is read as
//! a number; integers and floats compare as floats; strings compare byte-wise; a key alone is
//! true when it is `true`, a positive number or a string.

pub mod sql;

use crate::config::TagMatcher;
use crate::event::record::{RawEntry, RawRecord, encode_str, map_get, str_only};
use crate::event::{Batch, Event};
use serde::Deserialize;
use sql::{Comparison, Expr, Function, Literal, Query, SelectKey, Source};
use std::borrow::Cow;
use std::collections::HashMap;

/// Most rounds of tasks one record may go through (a task reading another's stream is a round).
pub const MAX_ROUNDS: u8 = 5;

/// One `[[stream_tasks]]` entry (Fluent Bit `[STREAM_TASK]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTaskConfig {
    /// The task's name (for logs and errors).
    pub name: String,
    /// The SQL statement, e.g. `CREATE STREAM debug WITH (tag='logs.debug') AS SELECT * FROM
    /// TAG:'app*' WHERE level = 'debug';`.
    pub exec: String,
}

/// A compiled task.
#[derive(Debug)]
struct Task {
    name: String,
    query: Query,
    /// For `FROM TAG:'…'`.
    matcher: Option<TagMatcher>,
    /// For `FROM STREAM:name`: the index of the task that creates `name`.
    source_task: Option<usize>,
    /// The tag of the results.
    tag: String,
}

/// The tasks of a config, compiled.
#[derive(Debug, Default)]
pub struct StreamProcessor {
    tasks: Vec<Task>,
}

/// Results of one task: the batch and the index of the task that made it.
pub type Derived = (Batch, usize);

impl StreamProcessor {
    /// Compile `tasks`. Each problem starts with `key` and the task's index
    /// (`stream_tasks[0].exec: …`).
    pub fn new(key: &str, configs: &[StreamTaskConfig]) -> Result<StreamProcessor, Vec<String>> {
        let mut problems = Vec::new();
        let mut tasks = Vec::new();
        let mut streams: HashMap<String, usize> = HashMap::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, config) in configs.iter().enumerate() {
            if config.name.trim().is_empty() {
                problems.push(format!(
                    "{key}[{i}].name is empty; name the task, e.g. name = \"debug_logs\""
                ));
            } else if let Some(first) = names.insert(&config.name, i) {
                problems.push(format!(
                    "{key}[{i}].name `{}` is also the name of {key}[{first}]; give each task its own name",
                    config.name
                ));
            }
            let query = match sql::parse(&config.exec) {
                Ok(q) => q,
                Err(e) => {
                    problems.push(format!("{key}[{i}].exec: {e}"));
                    continue;
                }
            };
            if let Some(stream) = &query.stream
                && let Some(first) = streams.insert(stream.to_ascii_lowercase(), tasks.len())
            {
                problems.push(format!(
                    "{key}[{i}].exec: stream `{stream}` is also created by task `{}`; give each stream its own name",
                    tasks.get(first).map_or("?", |t: &Task| t.name.as_str())
                ));
            }
            let matcher = match &query.source {
                Source::Tag(pattern) => Some(TagMatcher::wildcard(pattern)),
                Source::Stream(_) => None,
            };
            let tag = query.tag.clone().unwrap_or_else(|| {
                query.stream.as_ref().map_or(String::new(), |_| {
                    format!("stream_processor.{}", tasks.len())
                })
            });
            tasks.push(Task {
                name: config.name.clone(),
                query,
                matcher,
                source_task: None,
                tag,
            });
        }
        for (i, task) in tasks.iter_mut().enumerate() {
            if let Source::Stream(name) = &task.query.source {
                match streams.get(&name.to_ascii_lowercase()) {
                    Some(&source) => task.source_task = Some(source),
                    None => problems.push(format!(
                        "{key}[{i}].exec: FROM STREAM:{name}: no task creates stream `{name}`; to read an input's records use FROM TAG:'<the input's tag>', or create the stream with CREATE STREAM {name} AS SELECT …"
                    )),
                }
            }
        }
        if problems.is_empty() {
            Ok(StreamProcessor { tasks })
        } else {
            Err(problems)
        }
    }

    /// No tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Warnings about tasks that run but may not mean what they say.
    pub fn warnings(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.query.mixed_logic)
            .map(|t| format!(
                "stream task `{}`: its WHERE mixes AND, OR and NOT without parentheses; like Fluent Bit it reads each as taking everything to its right (`a AND b OR c` is `a AND (b OR c)`); add parentheses to say what you mean",
                t.name
            ))
            .collect()
    }

    /// Run every task that reads `batch` — by tag, or by stream when `from_task` made it — and
    /// return the results that go back into routing, each with the task that made them.
    /// Results of a bare `SELECT` are printed to standard output.
    pub fn process(&self, batch: &Batch, from_task: Option<usize>) -> Vec<Derived> {
        let mut out = Vec::new();
        for (index, task) in self.tasks.iter().enumerate() {
            let reads = match (&task.matcher, task.source_task) {
                (Some(matcher), _) => matcher.matches(&batch.tag),
                (None, Some(source)) => from_task == Some(source),
                (None, None) => false,
            };
            if !reads {
                continue;
            }
            let events: Vec<Event> = batch
                .events
                .iter()
                .filter_map(|e| task.select(&batch.tag, e))
                .collect();
            if events.is_empty() {
                continue;
            }
            if task.query.stream.is_none() {
                task.print(&events);
                continue;
            }
            out.push((Batch::new(task.tag.clone().into_bytes(), events), index));
        }
        out
    }
}

impl Task {
    /// The result of this task for one event, if it passes the condition and selects a key.
    fn select(&self, tag: &[u8], event: &Event) -> Option<Event> {
        let record = RawRecord::parse(&event.body)?;
        if let Some(condition) = &self.query.condition
            && !truthy(&eval(condition, &record, event.time_ns))
        {
            return None;
        }
        if self.query.keys == [SelectKey::All] {
            return Some(event.clone());
        }
        let mut entries: Vec<RawEntry<'_>> = Vec::new();
        for key in &self.query.keys {
            match key {
                SelectKey::All => entries.extend(record.entries.iter().cloned()),
                SelectKey::Key {
                    name,
                    subkeys,
                    alias,
                } => {
                    for (i, (k, v)) in record.entries.iter().enumerate() {
                        if record.key(i) != Some(name.as_bytes()) {
                            continue;
                        }
                        let Some(value) = subkey_value(v, subkeys) else {
                            continue;
                        };
                        let k = match alias {
                            Some(a) => Cow::Owned(encode_str(a.as_bytes())),
                            None => k.clone(),
                        };
                        entries.push((k, Cow::Owned(value.to_vec())));
                    }
                }
                SelectKey::Function { function, alias } => {
                    let k = alias.as_deref().unwrap_or(function.default_key());
                    entries.push((
                        Cow::Owned(encode_str(k.as_bytes())),
                        Cow::Owned(function_value(*function, tag, event.time_ns)),
                    ));
                }
            }
        }
        if entries.is_empty() {
            return None;
        }
        let body = RawRecord { entries }.encode();
        Some(Event {
            time_ns: event.time_ns,
            body: body.into(),
        })
    }

    /// A bare `SELECT`'s results, on standard output as Fluent Bit prints them (one JSON line
    /// each, `[time, record]`).
    fn print(&self, events: &[Event]) {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for e in events {
            let record = crate::event::json::to_json(&e.body).unwrap_or_default();
            let secs = e.time_ns as f64 / 1e9;
            let _ = writeln!(out, "[{secs:.9}, {record}]");
        }
    }
}

fn function_value(function: Function, tag: &[u8], time_ns: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match function {
        Function::Now => {
            // The router keeps time in UTC (a container's local time, normally).
            let t = crate::time::calendar::Utc::from_ns(crate::event::now_ns());
            let now = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            );
            out = encode_str(now.as_bytes());
        }
        Function::UnixTimestamp => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _ = rmp::encode::write_uint(&mut out, secs);
        }
        Function::RecordTag => out = encode_str(tag),
        Function::RecordTime => {
            let _ = rmp::encode::write_f64(&mut out, time_ns as f64 / 1e9);
        }
    }
    out
}

/// The value at `subkeys` inside `value` (itself when there are none).
fn subkey_value<'v>(value: &'v [u8], subkeys: &[String]) -> Option<&'v [u8]> {
    let mut at = value;
    for sub in subkeys {
        at = map_get(at, sub.as_bytes())?;
    }
    Some(at)
}

/// A value of a condition; `None` (in [`eval`]'s result) is a missing key.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    /// A map, array or other value no comparison applies to.
    Other,
}

fn value_of(raw: &[u8]) -> Value {
    if let Some(s) = str_only(raw) {
        return Value::Str(s.to_vec());
    }
    match rmpv::decode::read_value(&mut &raw[..]) {
        Ok(rmpv::Value::Nil) => Value::Null,
        Ok(rmpv::Value::Boolean(b)) => Value::Bool(b),
        Ok(rmpv::Value::Integer(i)) => i
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(i.as_f64().unwrap_or(f64::MAX))),
        Ok(rmpv::Value::F32(x)) => Value::Float(x.into()),
        Ok(rmpv::Value::F64(x)) => Value::Float(x),
        _ => Value::Other,
    }
}

fn literal_value(literal: &Literal) -> Value {
    match literal {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::Int(*i),
        Literal::Float(x) => Value::Float(*x),
        Literal::Str(s) => Value::Str(s.as_bytes().to_vec()),
    }
}

fn eval(expr: &Expr, record: &RawRecord<'_>, time_ns: u64) -> Option<Value> {
    match expr {
        Expr::Key { name, subkeys } => {
            let at = record.position(name.as_bytes())?;
            subkey_value(&record.entries[at].1, subkeys).map(value_of)
        }
        Expr::Literal(l) => Some(literal_value(l)),
        Expr::Contains { name, subkeys } => Some(Value::Bool(
            record
                .position(name.as_bytes())
                .and_then(|at| subkey_value(&record.entries[at].1, subkeys))
                .is_some(),
        )),
        Expr::RecordTime => Some(Value::Float(time_ns as f64 / 1e9)),
        Expr::Compare(left, op, right) => Some(Value::Bool(compare(
            eval(left, record, time_ns),
            *op,
            eval(right, record, time_ns),
        ))),
        Expr::Not(e) => Some(Value::Bool(!truthy(&eval(e, record, time_ns)))),
        Expr::And(a, b) => Some(Value::Bool(
            truthy(&eval(a, record, time_ns)) & truthy(&eval(b, record, time_ns)),
        )),
        Expr::Or(a, b) => Some(Value::Bool(
            truthy(&eval(a, record, time_ns)) | truthy(&eval(b, record, time_ns)),
        )),
        Expr::Truthy(e) => Some(Value::Bool(truthy(&eval(e, record, time_ns)))),
    }
}

/// Fluent Bit's `value_to_bool`: a missing key and null are false.
fn truthy(value: &Option<Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i > 0,
        Some(Value::Float(x)) => *x > 0.0,
        Some(Value::Str(_)) => true,
        _ => false,
    }
}

/// A number at the start of `s`, as C's `strtoll`/`strtod` read it (one `.` makes a float).
fn string_to_number(s: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(s).ok()?.trim_start();
    let dots = text.bytes().filter(|&b| b == b'.').count();
    let numeric_prefix = |allow_dot: bool| {
        let mut end = 0;
        for (i, c) in text.char_indices() {
            let ok =
                c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')) || (allow_dot && c == '.');
            if !ok {
                break;
            }
            end = i + 1;
        }
        &text[..end]
    };
    match dots {
        0 => numeric_prefix(false).parse().ok().map(Value::Int),
        1 => numeric_prefix(true).parse().ok().map(Value::Float),
        _ => None,
    }
}

/// Fluent Bit's `numerical_comp`.
fn compare(left: Option<Value>, op: Comparison, right: Option<Value>) -> bool {
    let (Some(mut left), Some(mut right)) = (left, right) else {
        return false;
    };
    if let (Value::Str(s), false) = (&left, matches!(right, Value::Str(_)))
        && let Some(number) = string_to_number(s)
    {
        left = number;
    }
    match (&left, &right) {
        (Value::Int(i), Value::Float(_)) => left = Value::Float(*i as f64),
        (Value::Float(_), Value::Int(i)) => right = Value::Float(*i as f64),
        _ => {}
    }
    use std::cmp::Ordering;
    let ordering = match (&left, &right) {
        (Value::Null, Value::Null) => return op == Comparison::Eq,
        (Value::Bool(a), Value::Bool(b)) => return op == Comparison::Eq && a == b,
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Float(a), Value::Float(b)) => match a.partial_cmp(b) {
            Some(o) => o,
            None => return false,
        },
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        _ => return false,
    };
    match op {
        Comparison::Eq => ordering == Ordering::Equal,
        Comparison::Lt => ordering == Ordering::Less,
        Comparison::Lte => ordering != Ordering::Greater,
        Comparison::Gt => ordering == Ordering::Greater,
        Comparison::Gte => ordering != Ordering::Less,
    }
}

/// A record's map from JSON pairs, in their order.
#[cfg(test)]
fn map_of(pairs: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::event::record::write_map_len(&mut out, pairs.len());
    for (k, v) in pairs {
        out.extend(encode_str(k.as_bytes()));
        out.extend(crate::event::json_msgpack::json_to_msgpack(v.to_string().as_bytes()).unwrap());
    }
    out
}

#[cfg(test)]
mod tests;
