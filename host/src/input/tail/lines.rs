//! Cutting a file's bytes into lines, sans-io, as Fluent Bit's `in_tail` does: a line ends at
//! `\n`; a `\r` before it is dropped; with `skip_empty_lines` an empty line is no record. A line
//! longer than the longest allowed is either skipped to its end (`skip_long_lines`) or stops
//! the file. An unterminated last line stays for the next read: the writer may not be done.

use std::ops::Range;

/// What [`LineCutter::cut`] took from the front of a buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// Each line's text (without `\n` or `\r\n`), as a range of the buffer, with the offset
    /// in the buffer just past its `\n`.
    pub lines: Vec<(Range<usize>, usize)>,
    /// Bytes of the buffer done with: every line taken, and skipped bytes.
    pub consumed: usize,
    /// Lines longer than allowed that were skipped.
    pub too_long: u64,
    /// A line longer than allowed starts at `consumed`, and `skip_long_lines` is off: the file
    /// must stop being read.
    pub stopped: bool,
}

/// Cuts one file's bytes into lines; remembers when it is inside a long line being skipped.
#[derive(Debug)]
pub struct LineCutter {
    max: usize,
    skip_long: bool,
    skip_empty: bool,
    /// Inside a line too long: drop bytes up to the next `\n`.
    skipping: bool,
}

impl LineCutter {
    /// A cutter of lines at most `max` bytes long.
    pub fn new(max: usize, skip_long: bool, skip_empty: bool) -> Self {
        LineCutter {
            max,
            skip_long,
            skip_empty,
            skipping: false,
        }
    }

    /// Set whether the next byte is inside a long line being skipped: `false` for a file read
    /// again from 0, the value before a cut whose lines the pipeline refused.
    pub fn restore(&mut self, skipping: bool) {
        self.skipping = skipping;
    }

    /// Whether the last cut ended inside a long line being skipped.
    pub fn skipping(&self) -> bool {
        self.skipping
    }

    /// Take every complete line from the front of `buf` (read from the file where the last
    /// cut's `consumed` ended). An incomplete last line is left unless it is already too long.
    pub fn cut(&mut self, buf: &[u8]) -> Cut {
        let mut cut = Cut::default();
        let mut at = 0;
        if self.skipping {
            match memchr(buf) {
                Some(i) => {
                    at = i + 1;
                    self.skipping = false;
                }
                None => {
                    cut.consumed = buf.len();
                    return cut;
                }
            }
        }
        while let Some(i) = memchr(&buf[at..]) {
            let end = at + i + 1;
            let mut text = at..at + i;
            if text.len() > self.max {
                if !self.skip_long {
                    cut.stopped = true;
                    cut.consumed = at;
                    return cut;
                }
                cut.too_long += 1;
            } else {
                // Fluent Bit drops the `\r` of `\r\n` from lines of two bytes or more.
                if text.len() >= 2 && buf[text.end - 1] == b'\r' {
                    text.end -= 1;
                }
                let empty = text.is_empty() || &buf[text.clone()] == b"\r";
                if !(empty && self.skip_empty) {
                    cut.lines.push((text, end));
                }
            }
            at = end;
        }
        cut.consumed = at;
        if buf.len() - at > self.max {
            // An unterminated line already longer than allowed.
            if !self.skip_long {
                cut.stopped = true;
                return cut;
            }
            cut.too_long += 1;
            self.skipping = true;
            cut.consumed = buf.len();
        }
        cut
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(buf: &'a [u8], cut: &Cut) -> Vec<&'a str> {
        cut.lines
            .iter()
            .map(|(r, _)| std::str::from_utf8(&buf[r.clone()]).unwrap())
            .collect()
    }

    #[test]
    fn lines_end_at_newlines_and_an_unterminated_one_waits() {
        let mut c = LineCutter::new(100, false, false);
        let buf = b"one\ntwo\r\n\nthree";
        let cut = c.cut(buf);
        assert_eq!(texts(buf, &cut), ["one", "two", ""]);
        assert_eq!(cut.consumed, 10);
        assert_eq!(cut.lines[1].1, 9, "the offset after each line");
        let mut c = LineCutter::new(100, false, true);
        let cut = c.cut(b"a\n\n\r\nb\n");
        assert_eq!(texts(b"a\n\n\r\nb\n", &cut), ["a", "b"]);
        assert_eq!(cut.consumed, 7);
    }

    #[test]
    fn a_long_line_is_skipped_to_its_end_or_stops_the_file() {
        let mut c = LineCutter::new(4, true, false);
        let buf = b"ok\nlongline";
        let cut = c.cut(buf);
        assert_eq!(texts(buf, &cut), ["ok"]);
        assert_eq!((cut.consumed, cut.too_long), (buf.len(), 1));
        assert!(c.skipping());
        let buf = b"more of it\nnext\n";
        let cut = c.cut(buf);
        assert_eq!(texts(buf, &cut), ["next"]);
        assert_eq!((cut.consumed, cut.too_long), (buf.len(), 0));
        // A complete long line inside a buffer.
        let buf = b"toolong\nfine\n";
        let cut = LineCutter::new(4, true, false).cut(buf);
        assert_eq!((texts(buf, &cut), cut.too_long), (vec!["fine"], 1));

        let mut c = LineCutter::new(4, false, false);
        let buf = b"ok\nlongline";
        let cut = c.cut(buf);
        assert_eq!(texts(buf, &cut), ["ok"]);
        assert!(cut.stopped);
        assert_eq!(cut.consumed, 3, "up to the long line");
    }
}
