//! JSON text → msgpack in one pass, keeping the order of object keys (the `json` parser format).
//!
//! serde_json drives a visitor that writes msgpack as values arrive; an object or array is
//! written to a scratch buffer first, since msgpack puts the entry count before the entries.
//! Integers stay integers (unsigned when not negative), other numbers become float64, as Fluent
//! Bit's JSON packer does. Nesting is bounded by serde_json's recursion limit (128).

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The msgpack encoding of the JSON value in `text` (surrounding blanks allowed, nothing else).
pub fn json_to_msgpack(text: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut out = Vec::with_capacity(text.len());
    Transcode(&mut out).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

struct Transcode<'o>(&'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

// Writing into a Vec cannot fail: the `rmp` results are ignored.
impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<(), E> {
        let _ = rmp::encode::write_bool(self.0, v);
        Ok(())
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        let _ = rmp::encode::write_sint(self.0, v);
        Ok(())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        let _ = rmp::encode::write_uint(self.0, v);
        Ok(())
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        let _ = rmp::encode::write_f64(self.0, v);
        Ok(())
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        let _ = rmp::encode::write_str_len(self.0, v.len() as u32);
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn visit_unit<E: Error>(self) -> Result<(), E> {
        let _ = rmp::encode::write_nil(self.0);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        let mut count = 0usize;
        while seq.next_element_seed(Transcode(&mut items))?.is_some() {
            count += 1;
        }
        let _ = rmp::encode::write_array_len(self.0, count as u32);
        self.0.extend_from_slice(&items);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut entries = Vec::new();
        let mut count = 0usize;
        while map.next_key_seed(Transcode(&mut entries))?.is_some() {
            map.next_value_seed(Transcode(&mut entries))?;
            count += 1;
        }
        let _ = rmp::encode::write_map_len(self.0, count as u32);
        self.0.extend_from_slice(&entries);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_numbers_their_kind() {
        let text =
            br#" {"z": 1, "a": [-2, 1.5, "s\u00e9\n", null, true], "m": {"y": {}, "b": []}} "#;
        let out = json_to_msgpack(text).unwrap();
        assert_eq!(
            crate::event::json::to_json(&out).unwrap(),
            r#"{"z":1,"a":[-2,1.5,"sé\n",null,true],"m":{"y":{},"b":[]}}"#
        );
        let value: rmpv::Value = rmpv::decode::read_value(&mut &out[..]).unwrap();
        assert!(value["z"].is_u64() && value["a"][0].is_i64() && value["a"][1].is_f64());
    }

    #[test]
    fn broken_or_trailing_text_is_an_error() {
        assert!(json_to_msgpack(b"{\"a\": 1").is_err());
        assert!(json_to_msgpack(b"{\"a\": 1} x").is_err());
        assert!(json_to_msgpack(b"plain text").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(json_to_msgpack(deep.as_bytes()).is_err());
    }
}
