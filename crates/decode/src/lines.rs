//! Reading lines: [`LineReader`] reads large chunks into a buffer of its
//! own, hands out lines in place in it (found with `memchr`), and never
//! holds more than [`MAX_LINE_BYTES`] of a line (a longer line is reported,
//! not kept), so memory does not grow with the input.

use std::io::{self, Read};

/// Longest line accepted (1 MiB); longer lines are malformed.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bytes asked of the input at a time (and the reader's initial buffer).
const READ_CHUNK: usize = 1 << 18;

/// Reads lines from any [`Read`] into one buffer of its own, counting them
/// (1-based), and hands each out in place in that buffer.
pub struct LineReader<R> {
    inner: R,
    /// Input bytes; `buf[start..end]` is what has not been handed out yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the next newline is, once found (an index into `buf`).
    newline: Option<usize>,
    /// `buf[start..searched]` holds no newline.
    searched: usize,
    /// Bytes asked of the input at a time.
    chunk: usize,
    eof: bool,
    line_no: u64,
    bytes_read: u64,
}

/// One line read by a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes, without the line ending.
    Text(&'a [u8]),
    /// The line was longer than [`MAX_LINE_BYTES`] (its length in bytes).
    TooLong(u64),
}

impl<R: Read> LineReader<R> {
    /// A reader over `inner` (no need to buffer it: the reader reads 256 KiB
    /// at a time).
    pub fn new(inner: R) -> LineReader<R> {
        LineReader::with_capacity(READ_CHUNK, inner)
    }

    /// A reader over `inner` asking it for `capacity` bytes at a time (at
    /// least 1).
    pub fn with_capacity(capacity: usize, inner: R) -> LineReader<R> {
        let chunk = capacity.max(1);
        LineReader {
            inner,
            buf: vec![0; chunk],
            start: 0,
            end: 0,
            newline: None,
            searched: 0,
            chunk,
            eof: false,
            line_no: 0,
            bytes_read: 0,
        }
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The input.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The input, back (what was read of it ahead and not handed out is
    /// dropped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Lines handed out so far (the number of the last one).
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Will the next [`next_line`](Self::next_line) return without reading
    /// from the input (so without waiting for it)?
    pub fn line_ready(&mut self) -> bool {
        self.eof || self.find_newline().is_some()
    }

    /// The next line and its number, `None` at the end of input.
    ///
    /// (Always inlined: its one caller, `Items::next_with`, is the loop of
    /// every reader, and with `#[inline]` alone whether it was depended on
    /// how the release build's codegen units fell: 8.6 M instructions on
    /// `ab` when it was not.)
    #[inline(always)]
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        loop {
            if let Some(newline) = self.find_newline() {
                return Ok(Some(self.take_line(newline, 1)));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                return Ok(Some(self.take_line(self.end, 0)));
            }
            if self.end - self.start > MAX_LINE_BYTES {
                return self.skip_long_line().map(Some);
            }
            self.refill()?;
        }
    }

    /// The index of the next newline in the buffered bytes, if any.
    fn find_newline(&mut self) -> Option<usize> {
        if self.newline.is_none() && self.searched < self.end {
            let found = memchr::memchr(b'\n', &self.buf[self.searched..self.end]);
            self.newline = found.map(|i| self.searched + i);
            self.searched = self.newline.unwrap_or(self.end);
        }
        self.newline
    }

    /// Hands out `buf[start..end]` as the next line, `ending` bytes of line
    /// ending after it.
    fn take_line(&mut self, end: usize, ending: usize) -> (u64, Line<'_>) {
        let start = self.start;
        self.start = end + ending;
        self.searched = self.start;
        self.newline = None;
        self.bytes_read += (end + ending - start) as u64;
        self.line_no += 1;
        let length = end - start;
        if length > MAX_LINE_BYTES {
            return (self.line_no, Line::TooLong(length as u64));
        }
        let line = &self.buf[start..end];
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        (self.line_no, Line::Text(text))
    }

    /// Moves the unread bytes to the front of the buffer (growing it when
    /// they fill it) and reads more after them; at the end of input sets
    /// `eof`.
    fn refill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.searched -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(MAX_LINE_BYTES + 1 + self.chunk);
            self.buf.resize(grown.max(self.end + 1), 0);
        }
        let room = (self.buf.len() - self.end).min(self.chunk);
        loop {
            match self.inner.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            return Ok(());
        }
    }

    /// Reads past the rest of a line longer than [`MAX_LINE_BYTES`] without
    /// keeping it, and reports it.
    fn skip_long_line(&mut self) -> io::Result<(u64, Line<'static>)> {
        let mut length = (self.end - self.start) as u64;
        let mut ending = 0;
        loop {
            self.start = 0;
            self.end = 0;
            self.searched = 0;
            self.refill()?;
            if self.eof {
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..self.end]) {
                length += i as u64;
                ending = 1;
                self.start = i + 1;
                self.searched = self.start;
                break;
            }
            length += self.end as u64;
        }
        self.bytes_read += length + ending;
        self.line_no += 1;
        Ok((self.line_no, Line::TooLong(length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str) -> Vec<(u64, String)> {
        let mut reader = LineReader::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some((n, line)) = reader.next_line().unwrap() {
            let text = match line {
                Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Line::TooLong(len) => format!("<{len}>"),
            };
            out.push((n, text));
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_endings_stripped() {
        assert_eq!(
            lines("a\r\n\nb\nc"),
            [
                (1, "a".into()),
                (2, "".into()),
                (3, "b".into()),
                (4, "c".into())
            ]
        );
        assert!(lines("").is_empty());
    }

    #[test]
    fn lines_across_buffer_fills_are_whole() {
        let input = "first\r\n\nsecond line\nx\n0123456789abcdef\r\nlast";
        for capacity in 1..20 {
            // The input hands out at most 3 bytes per read.
            let slow = std::io::BufReader::with_capacity(3, input.as_bytes());
            let mut reader = LineReader::with_capacity(capacity, slow);
            let mut got = Vec::new();
            while let Some((n, line)) = reader.next_line().unwrap() {
                let Line::Text(text) = line else {
                    panic!("{line:?}")
                };
                got.push((n, String::from_utf8(text.to_vec()).unwrap()));
            }
            assert_eq!(got, lines(input), "capacity {capacity}");
            assert_eq!(reader.bytes_read(), input.len() as u64);
        }
        assert_eq!(lines(input).last(), Some(&(6, "last".to_string())));
    }

    #[test]
    fn a_line_is_ready_when_it_is_buffered() {
        let mut reader = LineReader::with_capacity(64, &b"a\nb"[..]);
        assert!(!reader.line_ready());
        assert_eq!(reader.next_line().unwrap(), Some((1, Line::Text(b"a"))));
        assert!(!reader.line_ready());
        assert_eq!(reader.next_line().unwrap(), Some((2, Line::Text(b"b"))));
        assert!(reader.line_ready());
        assert_eq!(reader.next_line().unwrap(), None);
    }

    #[test]
    fn a_huge_line_is_reported_not_kept() {
        let input = format!("{}\nok\n", "x".repeat(MAX_LINE_BYTES + 5));
        for capacity in [1024, 1 << 20, 4 << 20] {
            let mut reader = LineReader::with_capacity(capacity, input.as_bytes());
            let (n, first) = reader.next_line().unwrap().unwrap();
            assert_eq!((n, first), (1, Line::TooLong(MAX_LINE_BYTES as u64 + 5)));
            assert!(reader.buf.len() <= MAX_LINE_BYTES + 1 + capacity);
            let (n, second) = reader.next_line().unwrap().unwrap();
            assert_eq!((n, second), (2, Line::Text(b"ok")));
            assert!(reader.next_line().unwrap().is_none());
            assert_eq!(reader.bytes_read(), input.len() as u64);
        }
        // At the end of input, without a line ending.
        let input = "y".repeat(MAX_LINE_BYTES + 1);
        let mut reader = LineReader::with_capacity(4096, input.as_bytes());
        let (n, line) = reader.next_line().unwrap().unwrap();
        assert_eq!((n, line), (1, Line::TooLong(MAX_LINE_BYTES as u64 + 1)));
        assert!(reader.next_line().unwrap().is_none());
        // Exactly the limit is fine.
        let input = format!("{}\n", "z".repeat(MAX_LINE_BYTES));
        let mut reader = LineReader::with_capacity(4096, input.as_bytes());
        let (_, line) = reader.next_line().unwrap().unwrap();
        assert!(matches!(line, Line::Text(t) if t.len() == MAX_LINE_BYTES));
    }
}
