//! The check a body returned by a plugin must pass: exactly one complete msgpack map, nothing
//! after it (reference wasm-plugin-hosts.md §3.3: the host validates `replace`/`expand` bodies).

use msgpack_skip::SkipError;
use rmp::Marker;

/// Deepest nesting accepted in a returned body (the same bound as the JSON renderer).
pub const MAX_DEPTH: usize = crate::event::json::MAX_DEPTH;

/// Why a returned body is not one msgpack map.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body is empty.
    #[error("the body is empty")]
    Empty,
    /// The top-level value is not a map.
    #[error("the body is not a msgpack map (it starts with marker 0x{0:02x})")]
    NotAMap(u8),
    /// The msgpack ends inside a value.
    #[error("the body ends inside a msgpack value")]
    Truncated,
    /// Bytes follow the map.
    #[error("{0} bytes follow the msgpack map")]
    Trailing(usize),
    /// A reserved marker (0xc1).
    #[error("invalid msgpack marker 0xc1 at byte {0}")]
    Reserved(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("the body nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Check that `body` is exactly one complete msgpack map.
pub fn check_map(body: &[u8]) -> Result<(), BodyError> {
    let first = *body.first().ok_or(BodyError::Empty)?;
    if !matches!(
        Marker::from_u8(first),
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32
    ) {
        return Err(BodyError::NotAMap(first));
    }
    let end = msgpack_skip::skip_value(body, 0, MAX_DEPTH).map_err(|e| match e {
        SkipError::Truncated => BodyError::Truncated,
        SkipError::Invalid { offset } => BodyError::Reserved(offset),
        SkipError::TooDeep => BodyError::TooDeep,
    })?;
    if end != body.len() {
        return Err(BodyError::Trailing(body.len() - end));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    #[test]
    fn accepts_maps_of_every_shape() {
        check_map(&encode(&serde_json::json!({}))).unwrap();
        let v = serde_json::json!({"log": "x".repeat(300), "n": -5, "f": 1.5, "a": [1, {"b": null}], "big": u64::MAX});
        check_map(&encode(&v)).unwrap();
        // A map with an EventTime ext and a binary value.
        let mut b = Vec::new();
        rmp::encode::write_map_len(&mut b, 2).unwrap();
        rmp::encode::write_str(&mut b, "t").unwrap();
        rmp::encode::write_ext_meta(&mut b, 8, 0).unwrap();
        b.extend_from_slice(&[0; 8]);
        rmp::encode::write_str(&mut b, "bin").unwrap();
        rmp::encode::write_bin(&mut b, &[1, 2, 3]).unwrap();
        check_map(&b).unwrap();
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(check_map(&[]), Err(BodyError::Empty));
        assert_eq!(
            check_map(&encode(&serde_json::json!([1]))),
            Err(BodyError::NotAMap(0x91))
        );
        assert_eq!(check_map(b"{\"log\":1}"), Err(BodyError::NotAMap(b'{')));
        let mut two = encode(&serde_json::json!({"a": 1}));
        two.extend(encode(&serde_json::json!({"b": 2})));
        assert_eq!(check_map(&two), Err(BodyError::Trailing(4)));
        let whole = encode(&serde_json::json!({"log": "hello"}));
        assert_eq!(
            check_map(&whole[..whole.len() - 1]),
            Err(BodyError::Truncated)
        );
        assert_eq!(
            check_map(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(BodyError::Truncated)
        );
        assert_eq!(check_map(&[0x81, 0xc1, 0x01]), Err(BodyError::Reserved(1)));
        let mut deep = vec![0x81, 0xa1, b'k'];
        deep.extend([0x91; 200]);
        deep.push(0xc0);
        assert_eq!(check_map(&deep), Err(BodyError::TooDeep));
    }
}
