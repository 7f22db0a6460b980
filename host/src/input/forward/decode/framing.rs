//! Finding where the next top-level msgpack object ends, across reads (reference §1: the stream
//! is a plain concatenation of msgpack objects, with no length prefix).
//!
//! When the whole object is already in the buffer (the common case: Docker's Message-mode
//! requests are a few hundred bytes), one skip over it finds its end. Otherwise the scan is
//! resumable: the position reached and the open containers are kept between calls, so a 5 MB
//! request arriving in 4 KiB reads is scanned once, not once per read. A length prefix is checked
//! against the request limit as soon as it is seen, so a hostile length fails at once instead of
//! after the bytes arrive.

use super::msgpack::{Head, MAX_DEPTH, ScanError, Step, read_head, skip_value, step};
use super::{DecodeError, SizeLimit};

/// The shape of a complete top-level object at the front of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FrameLayout {
    /// A top-level `nil` (1 byte).
    Nil,
    /// An array of at least 2 elements.
    Array(ArrayLayout),
}

/// How many top-level elements have their end offsets recorded: `[tag, x, y, option]`.
pub(super) const RECORDED_ELEMENTS: usize = 4;

/// A complete top-level array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ArrayLayout {
    /// Bytes of the whole object.
    pub len: usize,
    /// Number of elements (≥ 2).
    pub items: usize,
    /// Where element 0 starts.
    pub header_end: usize,
    /// Where each of the first [`RECORDED_ELEMENTS`] elements ends (0 past `items`).
    pub element_ends: [usize; RECORDED_ELEMENTS],
}

impl ArrayLayout {
    /// Byte range of element `i`, when it exists and was recorded.
    pub(super) fn element(&self, i: usize) -> Option<std::ops::Range<usize>> {
        if i >= self.items.min(RECORDED_ELEMENTS) {
            return None;
        }
        let start = if i == 0 {
            self.header_end
        } else {
            self.element_ends[i - 1]
        };
        Some(start..self.element_ends[i])
    }
}

/// Resumable scanner state for the object at the front of the buffer.
#[derive(Debug)]
pub(super) struct FrameScanner {
    /// Bytes of the current object already scanned.
    pos: usize,
    /// Values still expected by each open container, outermost first. Empty: not started.
    open: Vec<u64>,
    items: usize,
    header_end: usize,
    element_ends: [usize; RECORDED_ELEMENTS],
    elements_done: usize,
}

impl Default for FrameScanner {
    fn default() -> Self {
        FrameScanner {
            pos: 0,
            open: Vec::with_capacity(MAX_DEPTH),
            items: 0,
            header_end: 0,
            element_ends: [0; RECORDED_ELEMENTS],
            elements_done: 0,
        }
    }
}

impl FrameScanner {
    /// Forget the object being scanned (after it was taken off the buffer, or after an error).
    pub(super) fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
        self.element_ends = [0; RECORDED_ELEMENTS];
        self.elements_done = 0;
    }

    /// Scan on from where the last call stopped. `data` is the buffer, which must only have
    /// grown at its end since the last call. `Ok(None)`: the object is not complete yet.
    pub(super) fn scan(
        &mut self,
        data: &[u8],
        max_len: usize,
    ) -> Result<Option<FrameLayout>, DecodeError> {
        let result = self.scan_inner(data, max_len);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn scan_inner(
        &mut self,
        data: &[u8],
        max_len: usize,
    ) -> Result<Option<FrameLayout>, DecodeError> {
        let too_large = || DecodeError::TooLarge {
            limit: max_len,
            what: SizeLimit::Request,
        };
        if self.open.is_empty() {
            match self.start(data)? {
                Some(FrameLayout::Nil) => return Ok(Some(FrameLayout::Nil)),
                Some(FrameLayout::Array(_)) => {}
                None => return Ok(None),
            }
            // Fast path: the whole object is here and within the limit. Anything else (not all
            // here, too large, malformed) is left to the resumable scan, so the outcome is the
            // same however the bytes arrived.
            if let Ok(len) = self.skip_elements(&data[..data.len().min(max_len)]) {
                return Ok(Some(self.layout(len)));
            }
        }
        loop {
            // The object is not complete, so it needs a byte at `pos` or later.
            if self.pos >= max_len {
                return Err(too_large());
            }
            let (end, container_items) = match step(data, self.pos) {
                Ok(Step::Leaf { end }) => (end, None),
                Ok(Step::Container { header_end, items }) => (header_end, Some(items)),
                Err(ScanError::Truncated) => {
                    return if data.len() > max_len {
                        Err(too_large())
                    } else {
                        Ok(None)
                    };
                }
                Err(e) => return Err(DecodeError::Malformed(e.describe("request"))),
            };
            if end > max_len {
                return Err(too_large());
            }
            if end > data.len() {
                return Ok(None);
            }
            if container_items.is_some() && self.open.len() >= MAX_DEPTH {
                return Err(DecodeError::Malformed(
                    ScanError::TooDeep.describe("request"),
                ));
            }
            self.pos = end;
            match container_items {
                Some(items) if items > 0 => self.open.push(items),
                _ if self.complete_value() => return Ok(Some(self.layout(self.pos))),
                _ => {}
            }
        }
    }

    fn layout(&self, len: usize) -> FrameLayout {
        FrameLayout::Array(ArrayLayout {
            len,
            items: self.items,
            header_end: self.header_end,
            element_ends: self.element_ends,
        })
    }

    /// Skip every element of the top-level array, recording where the first ones end.
    fn skip_elements(&mut self, data: &[u8]) -> Result<usize, ScanError> {
        let mut pos = self.header_end;
        for i in 0..self.items {
            pos = skip_value(data, pos, 1)?;
            if i < RECORDED_ELEMENTS {
                self.element_ends[i] = pos;
            }
        }
        Ok(pos)
    }

    /// Read the top-level header. Rejects a non-array at once (reference §9.1: both reference
    /// servers close on it), without waiting for the rest of the object.
    fn start(&mut self, data: &[u8]) -> Result<Option<FrameLayout>, DecodeError> {
        let Some(&first) = data.first() else {
            return Ok(None);
        };
        let head = match read_head(data, 0) {
            Ok(head) => head,
            // A str/bin/ext whose payload is not here yet is still not an array.
            Err(ScanError::Truncated) if !matches!(first, 0x90..=0x9f | 0xdc | 0xdd) => {
                return Err(not_an_array(first, "a string, binary or extension value"));
            }
            Err(ScanError::Truncated) => return Ok(None),
            Err(e) => return Err(DecodeError::Malformed(e.describe("request"))),
        };
        match head {
            Head::Nil => Ok(Some(FrameLayout::Nil)),
            Head::Array { items, header_end } if items >= 2 => {
                self.items = items;
                self.header_end = header_end;
                self.pos = header_end;
                self.open.push(items as u64);
                Ok(Some(self.layout(0)))
            }
            Head::Array { items, .. } => Err(DecodeError::Malformed(format!(
                "request is an array of {items} element(s); expected [tag, time, record, option?] or [tag, entries, option?]"
            ))),
            other => Err(not_an_array(first, other.kind())),
        }
    }

    /// Count one finished value in its container, closing containers that are now complete.
    /// True when the top-level array itself is complete.
    #[inline]
    fn complete_value(&mut self) -> bool {
        loop {
            let depth = self.open.len();
            let Some(remaining) = self.open.last_mut() else {
                return true;
            };
            *remaining -= 1;
            if depth == 1 {
                if self.elements_done < RECORDED_ELEMENTS {
                    self.element_ends[self.elements_done] = self.pos;
                }
                self.elements_done += 1;
            }
            if *remaining > 0 {
                return false;
            }
            self.open.pop();
        }
    }
}

fn not_an_array(first: u8, kind: &str) -> DecodeError {
    let hint = match first {
        b'{' | b'[' => {
            " (it looks like JSON: the JSON variant of the protocol is not supported, send msgpack)"
        }
        b'G' | b'P' | b'H' => {
            " (it looks like HTTP: send the forward protocol, not HTTP, to this port)"
        }
        0x16 => " (it looks like a TLS handshake: this listener does not use TLS)",
        _ => "",
    };
    DecodeError::Malformed(format!(
        "request is {kind} (first byte 0x{first:02x}), expected a msgpack array [tag, ...]{hint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(data: &[u8], max: usize) -> Result<Option<FrameLayout>, DecodeError> {
        FrameScanner::default().scan(data, max)
    }

    #[test]
    fn finds_the_end_of_a_whole_object() {
        // ["t", 1, {"a": [1, 2]}, {}] then the start of the next one
        let data = [
            0x94, 0xa1, b't', 0x01, 0x81, 0xa1, b'a', 0x92, 0x01, 0x02, 0x80, 0x93,
        ];
        let layout = scan_all(&data, 100).unwrap();
        let Some(FrameLayout::Array(layout)) = layout else {
            panic!("{layout:?}")
        };
        assert_eq!(layout.len, 11);
        assert_eq!(layout.element(0), Some(1..3));
        assert_eq!(layout.element(1), Some(3..4));
        assert_eq!(layout.element(2), Some(4..10));
        assert_eq!(layout.element(3), Some(10..11));
        assert_eq!(layout.element(4), None);
        let mut resumed = FrameScanner::default();
        for cut in 1..11 {
            assert_eq!(resumed.scan(&data[..cut], 100).unwrap(), None);
        }
        assert_eq!(
            resumed.scan(&data, 100).unwrap(),
            Some(FrameLayout::Array(layout))
        );
    }

    #[test]
    fn nesting_limit_is_the_same_whole_and_resumed() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
            let mut data = vec![0x92, 0xa1, b't'];
            data.extend(std::iter::repeat_n(0x91, depth - 2));
            data.push(0x90);
            let whole = scan_all(&data, 1000).map_err(|e| e.to_string());
            let mut scanner = FrameScanner::default();
            let mut resumed = Ok(None);
            for cut in 1..=data.len() {
                resumed = scanner.scan(&data[..cut], 1000).map_err(|e| e.to_string());
                if !matches!(resumed, Ok(None)) {
                    break;
                }
            }
            assert_eq!(whole, resumed, "depth {depth}");
            assert_eq!(
                whole.is_ok(),
                depth <= MAX_DEPTH,
                "depth {depth}: {whole:?}"
            );
        }
    }

    #[test]
    fn resumes_byte_by_byte_to_the_same_result() {
        let data = [
            0x93, 0xa1, b't', 0x91, 0x92, 0xd7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x81, 0xa1, b'k', 0xc4,
            2, 9, 9, 0xc0, 0x01,
        ];
        let whole = scan_all(&data, 100).unwrap();
        let mut scanner = FrameScanner::default();
        for cut in 0..data.len() - 1 {
            assert_eq!(scanner.scan(&data[..cut], 100).unwrap(), None, "cut {cut}");
        }
        assert_eq!(scanner.scan(&data, 100).unwrap(), whole);
        let Some(FrameLayout::Array(layout)) = whole else {
            panic!()
        };
        assert_eq!(
            layout.len,
            data.len() - 1,
            "stops at the end of the first object"
        );
    }

    #[test]
    fn declared_length_over_the_limit_fails_before_the_bytes_arrive() {
        let data = [0x92, 0xa1, b't', 0xc6, 0x00, 0x10, 0x00, 0x00];
        assert!(matches!(
            scan_all(&data, 1000),
            Err(DecodeError::TooLarge { limit: 1000, .. })
        ));
        assert_eq!(scan_all(&data, 2_000_000).unwrap(), None);
    }

    #[test]
    fn rejects_non_arrays_and_short_arrays_at_once() {
        for data in [
            &[0x81][..],
            &[0x01],
            &[0xa5, b'h'],
            &[0x91],
            &[0x90],
            b"{\"",
            &[0xc1],
        ] {
            assert!(
                matches!(scan_all(data, 100), Err(DecodeError::Malformed(_))),
                "{data:x?}"
            );
        }
        assert_eq!(
            scan_all(&[0xc0, 0x92], 100).unwrap(),
            Some(FrameLayout::Nil)
        );
        assert_eq!(scan_all(&[0xdc, 0x00], 100).unwrap(), None);
    }
}
