//! [`Record`]: an editable view of one event's msgpack map. Reads borrow from the original
//! bytes; edits (set, remove, nested or not) are kept aside and applied in one pass when the
//! record is encoded, so a replacement costs one copy of the one record it changes.

use crate::msgpack::{self, DecodeError, Head};
use crate::value::{Value, lazy_map_get};

/// A Fluent Bit record accessor without array indexes — `$key`, `$key['sub']["sub2"]` — as
/// its path of keys, outermost first; `None` for anything else.
pub fn parse_accessor(text: &str) -> Option<Vec<String>> {
    let rest = text.trim().strip_prefix('$')?;
    let end = rest.find('[').unwrap_or(rest.len());
    let (first, mut rest) = rest.split_at(end);
    if first.is_empty() {
        return None;
    }
    let mut path = vec![first.to_string()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &inner[1..];
        let close = inner.find(quote)?;
        path.push(inner[..close].to_string());
        rest = inner[close + 1..].strip_prefix(']')?;
    }
    Some(path)
}

/// Where a value sits in a record: a dotted path or a list of keys.
///
/// - `"log"`: the top-level key `log`.
/// - `"kubernetes.labels.app"`: nested maps, split on `.`.
/// - `["kubernetes", "labels", "app.kubernetes.io/name"]` (an array, slice or `Vec` of keys):
///   the same without splitting, for keys that contain a dot.
pub trait AsPath {
    /// The keys, outermost first.
    fn segments(&self) -> impl Iterator<Item = &str>;
}

impl AsPath for str {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.split('.')
    }
}

impl AsPath for String {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.split('.')
    }
}

impl<T: AsPath + ?Sized> AsPath for &T {
    fn segments(&self) -> impl Iterator<Item = &str> {
        (**self).segments()
    }
}

impl<S: AsRef<str>> AsPath for [S] {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.iter().map(AsRef::as_ref)
    }
}

impl<S: AsRef<str>, const N: usize> AsPath for [S; N] {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.iter().map(AsRef::as_ref)
    }
}

impl<S: AsRef<str>> AsPath for Vec<S> {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.iter().map(AsRef::as_ref)
    }
}

/// A path's keys, held inline for paths of up to [`Segments::INLINE`] keys (no allocation for
/// the usual `"log"` or `"a.b.c"`).
struct Segments<'p> {
    inline: [&'p str; Segments::INLINE],
    len: usize,
    spilled: Vec<&'p str>,
}

impl<'p> Segments<'p> {
    const INLINE: usize = 8;

    fn of(path: &'p (impl AsPath + ?Sized)) -> Self {
        let mut segments = Segments {
            inline: [""; Segments::INLINE],
            len: 0,
            spilled: Vec::new(),
        };
        for segment in path.segments() {
            if segments.len < Segments::INLINE {
                segments.inline[segments.len] = segment;
                segments.len += 1;
            } else {
                if segments.spilled.is_empty() {
                    segments.spilled.extend_from_slice(&segments.inline);
                }
                segments.spilled.push(segment);
            }
        }
        segments
    }

    fn as_slice(&self) -> &[&'p str] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

/// Looks a path up in the map encoded at the start of `raw`, lazily (see [`lazy_map_get`]).
pub(crate) fn lookup<'a>(raw: &'a [u8], path: &(impl AsPath + ?Sized)) -> Option<Value<'a>> {
    let mut segments = path.segments();
    let mut value = lazy_map_get(raw, segments.next()?.as_bytes())?;
    for segment in segments {
        value = value.as_map()?.get(segment)?;
    }
    Some(value)
}

/// Why a record edit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The event body (or a part of it) is not well-formed msgpack.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A path goes through a value that is not a map.
    #[error("cannot reach `{path}`: `{blocked_at}` holds a value that is not a map")]
    NotAMap {
        /// The path being edited.
        path: String,
        /// The key whose value is in the way.
        blocked_at: String,
    },
    /// An empty path (no keys).
    #[error("the path is empty: name at least one key")]
    EmptyPath,
    /// A value could not be encoded as msgpack.
    #[error("cannot encode the value for `{path}` as msgpack: {message}")]
    Encode {
        /// The path being set.
        path: String,
        /// What the encoder said.
        message: String,
    },
}

#[derive(Debug, Clone)]
enum Edit {
    /// A new value, msgpack-encoded.
    Set(Vec<u8>),
    Remove,
    /// Edits inside the map the original record holds under this key.
    Nested(Edits),
}

#[derive(Debug, Clone, Default)]
struct Edits {
    entries: Vec<(Box<str>, Edit)>,
}

impl Edits {
    fn find(&self, key: &str) -> Option<&Edit> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, edit)| edit)
    }

    fn find_mut(&mut self, key: &str) -> Option<&mut Edit> {
        self.entries
            .iter_mut()
            .find(|(k, _)| &**k == key)
            .map(|(_, edit)| edit)
    }

    fn put(&mut self, key: &str, edit: Edit) {
        match self.find_mut(key) {
            Some(slot) => *slot = edit,
            None => self.entries.push((key.into(), edit)),
        }
    }
}

static EMPTY_MAP: [u8; 1] = [0x80];

/// One event's record (its msgpack map), editable.
///
/// Reading never copies: values borrow from the event's bytes. Edits are kept aside until the
/// record is encoded ([`Record::to_msgpack`], or by returning it as an
/// [`Outcome`](crate::Outcome)), and an unedited record is never re-encoded.
///
/// ```
/// use wasm_router_sdk::Record;
///
/// let body = wasm_router_sdk::json::json_to_msgpack(&serde_json::json!({
///     "log": "GET /health 200",
///     "kubernetes": {"labels": {"app": "web"}},
/// }));
/// let mut record = Record::new(&body).unwrap();
/// assert_eq!(record.get_str("kubernetes.labels.app").as_deref(), Some("web"));
/// record.set("kubernetes.labels.team", "payments").unwrap();
/// record.remove("log");
/// assert_eq!(
///     record.to_json(),
///     r#"{"kubernetes":{"labels":{"app":"web","team":"payments"}}}"#
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Record<'a> {
    body: &'a [u8],
    edits: Edits,
}

impl<'a> Record<'a> {
    /// A record over `body`, which must start with a msgpack map header. The rest is checked
    /// lazily, as it is read.
    pub fn new(body: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        match body.first() {
            Some(0x80..=0x8f | 0xde | 0xdf) => Ok(Record {
                body,
                edits: Edits::default(),
            }),
            Some(&byte) => Err(DecodeError::NotAMap { byte }),
            None => Err(DecodeError::Truncated { offset: 0 }),
        }
    }

    /// An empty record (`{}`), to build new events from (for [`Outcome::Expand`](crate::Outcome)).
    pub fn empty() -> Record<'static> {
        Record {
            body: &EMPTY_MAP,
            edits: Edits::default(),
        }
    }

    /// The original bytes, before any edit.
    pub fn original(&self) -> &'a [u8] {
        self.body
    }

    /// Whether the record has been edited.
    pub fn is_modified(&self) -> bool {
        !self.edits.entries.is_empty()
    }

    /// The value at `path`, edits included; `None` if it is absent (or the body is malformed
    /// before it). A map with pending edits inside it is returned as it was before them (its
    /// edited form exists only once encoded): read its entries by path instead.
    pub fn get(&self, path: impl AsPath) -> Option<Value<'_>> {
        if self.edits.entries.is_empty() {
            return lookup(self.body, &path);
        }
        let segments = Segments::of(&path);
        get_in(Some(self.body), Some(&self.edits), segments.as_slice())
    }

    /// The string at `path` as text (invalid UTF-8 replaced by U+FFFD); `None` if it is absent
    /// or not a string or binary.
    pub fn get_str(&self, path: impl AsPath) -> Option<std::borrow::Cow<'_, str>> {
        self.get(path)?.to_str_lossy()
    }

    /// The raw bytes of the string or binary at `path`.
    pub fn get_bytes(&self, path: impl AsPath) -> Option<&[u8]> {
        self.get(path)?.as_bytes()
    }

    /// Sets the value at `path` to any serde-serializable value (structs become maps),
    /// creating missing parent maps. Fails if a parent exists and is not a map.
    pub fn set<T: serde::Serialize + ?Sized>(
        &mut self,
        path: impl AsPath,
        value: &T,
    ) -> Result<(), RecordError> {
        let segments = Segments::of(&path);
        let mut encoded = Vec::new();
        value
            .serialize(&mut rmp_serde::Serializer::new(&mut encoded).with_struct_map())
            .map_err(|error| RecordError::Encode {
                path: segments.as_slice().join("."),
                message: error.to_string(),
            })?;
        self.set_encoded(segments.as_slice(), encoded)
    }

    /// Sets the value at `path` to a msgpack string holding `bytes` unchanged (valid UTF-8 or
    /// not): the way to write back text that came from a non-UTF-8 string.
    pub fn set_str_bytes(&mut self, path: impl AsPath, bytes: &[u8]) -> Result<(), RecordError> {
        let segments = Segments::of(&path);
        let mut encoded = Vec::with_capacity(bytes.len() + 5);
        msgpack::write_str(&mut encoded, bytes);
        self.set_encoded(segments.as_slice(), encoded)
    }

    /// Sets the value at `path` to a copy of `value` (read from this or another record).
    pub fn set_value(&mut self, path: impl AsPath, value: Value<'_>) -> Result<(), RecordError> {
        let segments = Segments::of(&path);
        self.set_encoded(segments.as_slice(), value.to_msgpack())
    }

    /// Sets the value at `path` to already-encoded msgpack (checked to be one value).
    pub fn set_msgpack(&mut self, path: impl AsPath, encoded: Vec<u8>) -> Result<(), RecordError> {
        Value::from_msgpack(&encoded)?;
        let segments = Segments::of(&path);
        self.set_encoded(segments.as_slice(), encoded)
    }

    /// Removes the value at `path`; returns whether there was one.
    pub fn remove(&mut self, path: impl AsPath) -> bool {
        let segments = Segments::of(&path);
        if segments.as_slice().is_empty() || self.get(segments.as_slice()).is_none() {
            return false;
        }
        remove_in(&mut self.edits, Some(self.body), segments.as_slice())
    }

    fn set_encoded(&mut self, segments: &[&str], encoded: Vec<u8>) -> Result<(), RecordError> {
        if segments.is_empty() {
            return Err(RecordError::EmptyPath);
        }
        set_in(&mut self.edits, Some(self.body), segments, 0, encoded)
    }

    /// Appends the record's msgpack map, edits applied, to `out`.
    pub fn write_msgpack(&self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if self.edits.entries.is_empty() {
            out.extend_from_slice(self.body);
            return Ok(());
        }
        write_map(out, Some(self.body), &self.edits)
    }

    /// The record's msgpack map, edits applied.
    pub fn to_msgpack(&self) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(self.body.len() + 64);
        self.write_msgpack(&mut out)?;
        Ok(out)
    }

    /// The record as JSON text, edits applied (strings lossily decoded; `{}` if malformed).
    pub fn to_json(&self) -> String {
        let encoded = match self.to_msgpack() {
            Ok(encoded) => encoded,
            Err(_) => return "{}".into(),
        };
        Value::from_msgpack(&encoded)
            .map(|value| value.to_json())
            .unwrap_or_else(|_| "{}".into())
    }

    /// Deserializes the record, edits applied, into a serde type.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        Ok(rmp_serde::from_slice(&self.to_msgpack()?)?)
    }
}

/// The map header's entry count, if `raw` starts with a map.
fn map_len(raw: &[u8]) -> Option<u32> {
    match msgpack::read_head(raw, &mut 0).ok()? {
        Head::Map(len) => Some(len),
        _ => None,
    }
}

fn get_in<'r>(
    original: Option<&'r [u8]>,
    edits: Option<&'r Edits>,
    segments: &[&str],
) -> Option<Value<'r>> {
    let (first, rest) = segments.split_first()?;
    match edits.and_then(|edits| edits.find(first)) {
        Some(Edit::Remove) => None,
        Some(Edit::Set(encoded)) => {
            if rest.is_empty() {
                Value::from_msgpack(encoded).ok()
            } else {
                lookup(encoded, rest)
            }
        }
        Some(Edit::Nested(nested)) => {
            let inner = original
                .and_then(|raw| lazy_map_get(raw, first.as_bytes()))
                .and_then(|v| v.as_map());
            if rest.is_empty() {
                // The whole (edited) map was asked for: it only exists once encoded; callers
                // reading nested maps with pending edits get the original map.
                inner.map(Value::Map)
            } else {
                get_in(inner.map(|map| map.as_msgpack()), Some(nested), rest)
            }
        }
        None => {
            let value = original.and_then(|raw| lazy_map_get(raw, first.as_bytes()))?;
            if rest.is_empty() {
                Some(value)
            } else {
                lookup(value.as_map()?.as_msgpack(), rest)
            }
        }
    }
}

/// A map holding `encoded` under the nested keys `segments`: `{a: {b: value}}`.
fn nest(segments: &[&str], encoded: Vec<u8>) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(encoded.len() + segments.iter().map(|s| s.len() + 2).sum::<usize>());
    for segment in segments {
        msgpack::write_map_header(&mut out, 1);
        msgpack::write_str(&mut out, segment.as_bytes());
    }
    out.extend_from_slice(&encoded);
    out
}

fn set_in(
    edits: &mut Edits,
    original: Option<&[u8]>,
    segments: &[&str],
    depth: usize,
    encoded: Vec<u8>,
) -> Result<(), RecordError> {
    let first = segments[depth];
    let rest = &segments[depth + 1..];
    if rest.is_empty() {
        edits.put(first, Edit::Set(encoded));
        return Ok(());
    }
    let not_a_map = || RecordError::NotAMap {
        path: segments.join("."),
        blocked_at: segments[..=depth].join("."),
    };
    match edits.find_mut(first) {
        Some(Edit::Set(current)) => {
            map_len(current).ok_or_else(not_a_map)?;
            let mut nested = Edits::default();
            set_in(&mut nested, Some(current), segments, depth + 1, encoded)?;
            let mut rewritten = Vec::with_capacity(current.len() + 32);
            write_map(&mut rewritten, Some(current), &nested)?;
            *current = rewritten;
        }
        Some(slot @ Edit::Remove) => *slot = Edit::Set(nest(rest, encoded)),
        Some(Edit::Nested(nested)) => {
            let inner = original.and_then(|raw| lazy_map_get(raw, first.as_bytes()));
            set_in(
                nested,
                inner.and_then(|v| v.as_map()).map(|m| m.as_msgpack()),
                segments,
                depth + 1,
                encoded,
            )?;
        }
        None => match original.and_then(|raw| lazy_map_get(raw, first.as_bytes())) {
            Some(Value::Map(inner)) => {
                let mut nested = Edits::default();
                set_in(
                    &mut nested,
                    Some(inner.as_msgpack()),
                    segments,
                    depth + 1,
                    encoded,
                )?;
                edits.put(first, Edit::Nested(nested));
            }
            Some(_) => return Err(not_a_map()),
            None => edits.put(first, Edit::Set(nest(rest, encoded))),
        },
    }
    Ok(())
}

/// Removes `segments` (known to exist, edits included).
fn remove_in(edits: &mut Edits, original: Option<&[u8]>, segments: &[&str]) -> bool {
    let (first, rest) = match segments.split_first() {
        Some(split) => split,
        None => return false,
    };
    if rest.is_empty() {
        edits.put(first, Edit::Remove);
        return true;
    }
    match edits.find_mut(first) {
        Some(Edit::Set(current)) => {
            let mut nested = Edits::default();
            if !remove_in(&mut nested, Some(current), rest) {
                return false;
            }
            let mut rewritten = Vec::with_capacity(current.len());
            if write_map(&mut rewritten, Some(current), &nested).is_err() {
                return false;
            }
            *current = rewritten;
            true
        }
        Some(Edit::Remove) => false,
        Some(Edit::Nested(nested)) => {
            let inner = original
                .and_then(|raw| lazy_map_get(raw, first.as_bytes()))
                .and_then(|v| v.as_map());
            remove_in(nested, inner.map(|m| m.as_msgpack()), rest)
        }
        None => {
            let Some(Value::Map(inner)) =
                original.and_then(|raw| lazy_map_get(raw, first.as_bytes()))
            else {
                return false;
            };
            let mut nested = Edits::default();
            let removed = remove_in(&mut nested, Some(inner.as_msgpack()), rest);
            if removed {
                edits.put(first, Edit::Nested(nested));
            }
            removed
        }
    }
}

/// Which edits have been written, without allocating for the usual handful.
struct Written {
    first: u64,
    more: Vec<bool>,
}

impl Written {
    fn new(edits: usize) -> Self {
        Written {
            first: 0,
            more: vec![false; edits.saturating_sub(64)],
        }
    }

    fn get(&self, index: usize) -> bool {
        match index.checked_sub(64) {
            None => self.first & (1 << index) != 0,
            Some(i) => self.more[i],
        }
    }

    fn set(&mut self, index: usize) {
        match index.checked_sub(64) {
            None => self.first |= 1 << index,
            Some(i) => self.more[i] = true,
        }
    }
}

/// Writes the map `original` (or an empty one) with `edits` applied. Entries keep their
/// order; new keys go at the end; a repeated key that is edited keeps one entry.
fn write_map(out: &mut Vec<u8>, original: Option<&[u8]>, edits: &Edits) -> Result<(), DecodeError> {
    // A one-byte header (up to 15 entries) is written in place at the end; a longer one is
    // inserted then.
    let header_at = out.len();
    out.push(0x80);
    let mut count: u32 = 0;
    let mut written = Written::new(edits.entries.len());
    if let Some(raw) = original {
        let mut pos = 0;
        let Head::Map(len) = msgpack::read_head(raw, &mut pos)? else {
            return Err(DecodeError::NotAMap { byte: raw[0] });
        };
        for _ in 0..len {
            let entry_start = pos;
            let key = msgpack::read_key(raw, &mut pos)?;
            let key_end = pos;
            let value_start = pos;
            msgpack::skip_value(raw, &mut pos)?;
            let edit_index = key.and_then(|k| {
                edits
                    .entries
                    .iter()
                    .position(|(name, _)| name.as_bytes() == k)
            });
            match edit_index {
                None => {
                    out.extend_from_slice(&raw[entry_start..pos]);
                    count += 1;
                }
                Some(index) => {
                    if written.get(index) {
                        continue;
                    }
                    written.set(index);
                    match &edits.entries[index].1 {
                        Edit::Remove => {}
                        Edit::Set(encoded) => {
                            out.extend_from_slice(&raw[entry_start..key_end]);
                            out.extend_from_slice(encoded);
                            count += 1;
                        }
                        Edit::Nested(nested) => {
                            out.extend_from_slice(&raw[entry_start..key_end]);
                            let inner = &raw[value_start..pos];
                            if map_len(inner).is_some() {
                                write_map(out, Some(inner), nested)?;
                            } else {
                                write_map(out, None, nested)?;
                            }
                            count += 1;
                        }
                    }
                }
            }
        }
    }
    for (index, (name, edit)) in edits.entries.iter().enumerate() {
        if written.get(index) {
            continue;
        }
        match edit {
            Edit::Remove => {}
            Edit::Set(encoded) => {
                msgpack::write_str(out, name.as_bytes());
                out.extend_from_slice(encoded);
                count += 1;
            }
            Edit::Nested(nested) => {
                msgpack::write_str(out, name.as_bytes());
                write_map(out, None, nested)?;
                count += 1;
            }
        }
    }
    if count <= 15 {
        out[header_at] = 0x80 | count as u8;
    } else {
        let mut header = Vec::with_capacity(5);
        msgpack::write_map_header(&mut header, count);
        out.splice(header_at..=header_at, header);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json_to_msgpack;
    use serde_json::json;

    fn record_json(record: &Record<'_>) -> serde_json::Value {
        let encoded = record.to_msgpack().unwrap();
        crate::msgpack::validate_map(&encoded).unwrap();
        serde_json::from_str(&record.to_json()).unwrap()
    }

    #[test]
    fn unedited_records_are_returned_as_they_are() {
        let body = json_to_msgpack(&json!({"b": 1, "a": 2}));
        let record = Record::new(&body).unwrap();
        assert!(!record.is_modified());
        assert_eq!(record.to_msgpack().unwrap(), body);
    }

    #[test]
    fn top_level_set_replace_and_remove_keep_order() {
        let body = json_to_msgpack(&json!({"log": "x", "level": "info", "n": 1}));
        let mut record = Record::new(&body).unwrap();
        record.set("level", "warn").unwrap();
        record.set("new", &42).unwrap();
        assert!(record.remove("n"));
        assert!(!record.remove("absent"));
        assert_eq!(record.get_str("level").as_deref(), Some("warn"));
        assert_eq!(record.get("n"), None);
        let encoded = record.to_msgpack().unwrap();
        let keys: Vec<String> = crate::Map::from_msgpack(&encoded)
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect();
        // The original order (serde_json sorts keys: level, log, n) is kept; new keys go last.
        assert_eq!(keys, ["level", "log", "new"]);
        assert_eq!(
            record_json(&record),
            json!({"log": "x", "level": "warn", "new": 42})
        );
    }

    #[test]
    fn nested_paths_edit_inside_maps_and_create_parents() {
        let body =
            json_to_msgpack(&json!({"k": {"labels": {"app": "web", "tier": "1"}, "ns": "prod"}}));
        let mut record = Record::new(&body).unwrap();
        record.set("k.labels.app", "api").unwrap();
        record
            .set(["k", "labels", "app.kubernetes.io/name"], "api")
            .unwrap();
        assert!(record.remove("k.labels.tier"));
        record.set("meta.source.host", "ip-10-0-0-1").unwrap();
        assert_eq!(record.get_str("k.labels.app").as_deref(), Some("api"));
        assert_eq!(
            record.get_str("meta.source.host").as_deref(),
            Some("ip-10-0-0-1")
        );
        assert_eq!(record.get("k.labels.tier"), None);
        assert_eq!(
            record_json(&record),
            json!({
                "k": {"labels": {"app": "api", "app.kubernetes.io/name": "api"}, "ns": "prod"},
                "meta": {"source": {"host": "ip-10-0-0-1"}}
            })
        );
    }

    #[test]
    fn setting_inside_a_value_that_was_set_or_removed() {
        let body = json_to_msgpack(&json!({"a": {"x": 1}, "b": 2}));
        let mut record = Record::new(&body).unwrap();
        record.set("a", &json!({"y": 2})).unwrap();
        record.set("a.z", &3).unwrap();
        record.remove("b");
        record.set("b.c", &4).unwrap();
        assert!(record.remove("a.y"));
        assert_eq!(record_json(&record), json!({"a": {"z": 3}, "b": {"c": 4}}));
    }

    #[test]
    fn a_path_through_a_scalar_is_an_error() {
        let body = json_to_msgpack(&json!({"log": "text"}));
        let mut record = Record::new(&body).unwrap();
        let error = record.set("log.inner", &1).unwrap_err();
        assert_eq!(
            error,
            RecordError::NotAMap {
                path: "log.inner".into(),
                blocked_at: "log".into()
            }
        );
        assert!(
            error
                .to_string()
                .contains("`log` holds a value that is not a map")
        );
    }

    #[test]
    fn non_utf8_bytes_survive_an_edit_elsewhere() {
        let mut body = vec![0x82];
        msgpack::write_str(&mut body, b"log");
        msgpack::write_str(&mut body, b"\xff\xfe raw");
        msgpack::write_str(&mut body, b"n");
        body.push(1);
        let mut record = Record::new(&body).unwrap();
        record.set("n", &2).unwrap();
        let encoded = record.to_msgpack().unwrap();
        let record = Record::new(&encoded).unwrap();
        assert_eq!(record.get_bytes("log"), Some(&b"\xff\xfe raw"[..]));
        let mut record = record;
        record.set_str_bytes("log", b"\xff masked").unwrap();
        assert_eq!(record.to_msgpack().unwrap()[..3], [0x82, 0xa3, b'l']);
        assert_eq!(record.get_bytes("log"), Some(&b"\xff masked"[..]));
    }

    #[test]
    fn structs_are_written_as_maps() {
        #[derive(serde::Serialize)]
        struct Source {
            host: &'static str,
            port: u16,
        }
        let mut record = Record::empty();
        record
            .set(
                "source",
                &Source {
                    host: "h",
                    port: 80,
                },
            )
            .unwrap();
        assert_eq!(
            record_json(&record),
            json!({"source": {"host": "h", "port": 80}})
        );
    }

    #[test]
    fn large_maps_get_a_wider_header() {
        let mut record = Record::empty();
        for i in 0..20 {
            record.set([format!("k{i}")], &i).unwrap();
        }
        let encoded = record.to_msgpack().unwrap();
        assert_eq!(encoded[0], 0xde);
        assert_eq!(crate::Map::from_msgpack(&encoded).unwrap().len(), 20);
    }

    #[test]
    fn rejects_bodies_that_are_not_maps() {
        assert!(Record::new(&[0x92, 1, 2]).is_err());
        assert!(Record::new(&[]).is_err());
    }
}
