//! Reading events: JSON lines and CSV into [`Record`]s, one line at a time.
//!
//! [`LineReader`] reads large chunks into a buffer of its own, hands out
//! lines in place in it (found with `memchr`), and never holds more
//! than [`MAX_LINE_BYTES`] of a line (a longer line is reported, not kept),
//! so memory does not grow with the input. [`Decoder`] turns a line into an
//! [`Item`]: an event with its time, a punctuated watermark
//! (`{"$watermark": T}`), nothing (blank line, CSV header), or a
//! [`Malformed`] reason. Event time comes from the time field: integer
//! milliseconds or an RFC 3339 string.

use std::io::{self, Read};
use std::sync::Arc;

use crate::engine::csv;
use crate::engine::json::{Found, JsonPlan, Scanned};
use crate::engine::time::parse_rfc3339;
use crate::event::{FieldPath, Timestamp};
use crate::record::{lookup_json, FieldTable, Record};

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

    /// Will the next [`next_line`](Self::next_line) return without reading
    /// from the input (so without waiting for it)?
    pub fn line_ready(&mut self) -> bool {
        self.eof || self.find_newline().is_some()
    }

    /// The next line and its number, `None` at the end of input.
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

/// Input formats of `cepheid run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A header line, then one row per line.
    Csv,
}

/// Why a line is not an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

/// What one input line holds.
#[derive(Debug)]
pub enum Item {
    /// An event and its event time.
    Event(Timestamp, Record),
    /// A punctuated watermark.
    Watermark(Timestamp),
    /// Nothing to do (blank line, CSV header).
    Skip,
}

/// Turns lines into [`Item`]s for one format, time field and field table.
pub struct Decoder {
    format: Format,
    time_field: FieldPath,
    table: FieldTable,
    header: Option<Vec<String>>,
    started: bool,
    plan: JsonPlan,
    scanned: Scanned,
}

impl Decoder {
    /// A decoder reading event time from `time_field` and extracting every
    /// field of `table` into records.
    pub fn new(format: Format, time_field: &str, table: FieldTable) -> Decoder {
        let time_field = FieldPath::parse(time_field);
        let plan = JsonPlan::new(&table, &time_field);
        Decoder {
            format,
            time_field,
            table,
            header: None,
            started: false,
            plan,
            scanned: Scanned::default(),
        }
    }

    /// Decodes one line (without its line ending). A UTF-8 byte order mark
    /// at the start of the first line is ignored.
    pub fn decode(&mut self, mut line: &[u8]) -> Result<Item, Malformed> {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Item::Skip);
        }
        match self.format {
            Format::JsonLines => self.decode_json(line),
            Format::Csv => self.decode_csv(line),
        }
    }

    /// One JSON object: only the fields some pattern reads (and the time)
    /// are kept; the line's text is the record's output form.
    fn decode_json(&mut self, line: &[u8]) -> Result<Item, Malformed> {
        let text = std::str::from_utf8(line)
            .map_err(|e| Malformed(format!("invalid UTF-8: {e}")))?
            .trim_ascii();
        if !text.starts_with('{') {
            // Say whether it is JSON at all or just not an object.
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => Malformed("not a JSON object".into()),
                Err(e) => Malformed(format!("invalid JSON: {e}")),
            });
        }
        self.plan
            .scan(text, &mut self.scanned)
            .map_err(|e| Malformed(format!("invalid JSON: {e}")))?;
        if let Some(t) = self.plan.watermark(&self.scanned, text) {
            // A watermark line is exactly `{"$watermark": T}`; one with
            // other fields is neither a watermark nor an event (it used to
            // become a watermark and drop the event silently). Rare lines:
            // counting their keys with serde costs nothing that matters.
            let fields = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .map_or(0, |m| m.len());
            if fields != 1 {
                return Err(Malformed(format!(
                    "a `$watermark` line must have no other field (this one has {fields})"
                )));
            }
            return found_time(t)
                .map(Item::Watermark)
                .map_err(|why| Malformed(format!("bad `$watermark`: {why}")));
        }
        let field = &self.time_field;
        let time = self
            .plan
            .time(&self.scanned, text)
            .ok_or_else(|| Malformed(format!("no time field `{field}`")))?;
        let ts = found_time(time)
            .map_err(|why| Malformed(format!("bad time field `{field}`: {why}")))?;
        let values = self.plan.values(&self.scanned, text);
        Ok(Item::Event(ts, Record::new(values, Arc::from(text))))
    }

    fn decode_csv(&mut self, line: &[u8]) -> Result<Item, Malformed> {
        let text =
            std::str::from_utf8(line).map_err(|e| Malformed(format!("invalid UTF-8: {e}")))?;
        let cells = csv::split_row(text).map_err(Malformed)?;
        let Some(header) = &self.header else {
            self.header = Some(cells);
            return Ok(Item::Skip);
        };
        if cells.len() != header.len() {
            return Err(Malformed(format!(
                "the row has {} fields, the header has {}",
                cells.len(),
                header.len()
            )));
        }
        let (object, raw) = csv::row_to_json(header, &cells);
        let ts = self.event_time(&object)?;
        Ok(Item::Event(
            ts,
            Record::from_json_object(&self.table, &object, Arc::from(raw)),
        ))
    }

    fn event_time(
        &self,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Timestamp, Malformed> {
        let field = &self.time_field;
        let value = lookup_json(object, field)
            .ok_or_else(|| Malformed(format!("no time field `{field}`")))?;
        json_time(value).map_err(|why| Malformed(format!("bad time field `{field}`: {why}")))
    }
}

/// A time as the JSON scan found it (see [`json_time`]).
fn found_time(found: Found<'_>) -> Result<Timestamp, String> {
    match found {
        Found::Json(value) => json_time(value),
        Found::Int(ms) => Ok(ms),
        Found::Float(f) => json_time(&serde_json::Value::from(f)),
        Found::Str(s) => parse_rfc3339(s),
        Found::Null => json_time(&serde_json::Value::Null),
        Found::Bool(b) => json_time(&serde_json::Value::Bool(b)),
    }
}

/// A time as JSON: integer milliseconds or an RFC 3339 string.
fn json_time(value: &serde_json::Value) -> Result<Timestamp, String> {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(ms) = n.as_i64() {
                return Ok(ms);
            }
            if let Some(big) = n.as_u64() {
                return Err(format!("{big} is beyond the largest time, {}", i64::MAX));
            }
            // A number with a fraction or an exponent (`-0` too, for
            // serde): whole values that are exact in a double are times
            // (`-0` is 0, `5.0` is 5); the others say what is wrong
            // without printing the double (`1e+20`, `-0.0`).
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() <= EXACT {
                Ok(f as i64)
            } else if f.fract() == 0.0 {
                Err(format!(
                    "the number is too large to be a time (times are integer milliseconds \
                     between {} and {})",
                    i64::MIN,
                    i64::MAX
                ))
            } else {
                Err(format!("{n} is not a whole number of milliseconds"))
            }
        }
        serde_json::Value::String(s) => parse_rfc3339(s),
        other => Err(format!(
            "{other} is neither integer milliseconds nor an RFC 3339 string"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::value::Value;

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

    fn decoder(format: Format) -> (Decoder, crate::FieldId) {
        let mut table = FieldTable::new();
        let id = table.intern(&FieldPath::single("user"));
        (Decoder::new(format, "ts", table), id)
    }

    #[test]
    fn times_out_of_range_or_odd_say_so() {
        let (mut d, _) = decoder(Format::JsonLines);
        fn err(d: &mut Decoder, line: &str) -> String {
            match d.decode(line.as_bytes()) {
                Err(Malformed(m)) => m,
                other => panic!("{line}: {other:?}"),
            }
        }
        // Not `1e+20 is not an integer...`.
        let big = err(&mut d, r#"{"ts": 99999999999999999999}"#);
        assert!(big.contains("too large to be a time"), "{big}");
        assert!(!big.contains("e+"), "{big}");
        assert!(err(&mut d, r#"{"ts": 9223372036854775808}"#).contains("beyond the largest time"));
        assert!(err(&mut d, r#"{"ts": 5.5}"#).contains("not a whole number"));
        // `-0` and `5.0` are whole numbers of milliseconds.
        assert!(matches!(d.decode(br#"{"ts": -0}"#), Ok(Item::Event(0, _))));
        assert!(matches!(d.decode(br#"{"ts": 5.0}"#), Ok(Item::Event(5, _))));
        // Second 60 only as a leap second (23:59:60 UTC).
        let leap = err(&mut d, r#"{"ts": "2020-01-01T10:00:60Z"}"#);
        assert!(leap.contains("leap second"), "{leap}");
        assert!(d.decode(br#"{"ts": "2016-12-31T23:59:60Z"}"#).is_ok());
        assert!(d.decode(br#"{"ts": "2016-12-31T15:59:60-08:00"}"#).is_ok());
    }

    #[test]
    fn json_events_watermarks_and_blank_lines() {
        let (mut d, user) = decoder(Format::JsonLines);
        match d.decode(br#" {"ts": 5, "user": "u1"} "#).unwrap() {
            Item::Event(ts, record) => {
                assert_eq!(ts, 5);
                assert_eq!(*record.field(user), Value::from("u1"));
                assert_eq!(record.raw(), r#"{"ts": 5, "user": "u1"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.decode(br#"{"$watermark": 9}"#),
            Ok(Item::Watermark(9))
        ));
        assert!(matches!(d.decode(b"  "), Ok(Item::Skip)));
        // A watermark line has that one field; with others it is
        // malformed, not a watermark that silently drops an event.
        let both = d.decode(br#"{"$watermark": 100, "ts": 5, "user": "x"}"#);
        assert!(
            matches!(&both, Err(Malformed(m)) if m.contains("no other field")),
            "{both:?}"
        );
        let rfc = d.decode(br#"{"ts": "1970-01-01T00:00:02Z"}"#).unwrap();
        assert!(matches!(rfc, Item::Event(2000, _)));
    }

    #[test]
    fn malformed_json_lines_say_why() {
        let (mut d, _) = decoder(Format::JsonLines);
        let mut why = |line: &str| d.decode(line.as_bytes()).unwrap_err().0;
        assert!(why("{").starts_with("invalid JSON"));
        assert_eq!(why("[1]"), "not a JSON object");
        assert_eq!(why(r#"{"user": 1}"#), "no time field `ts`");
        assert!(why(r#"{"ts": 1.5}"#).contains("not a whole number"));
        assert!(why(r#"{"ts": "yesterday"}"#).contains("RFC 3339"));
        assert!(why(r#"{"ts": true}"#).contains("neither"));
        assert!(why(r#"{"$watermark": "x"}"#).starts_with("bad `$watermark`"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(why(&deep), "not a JSON object");
        let deep = format!("{{\"ts\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(why(&deep).starts_with("invalid JSON"), "{}", why(&deep));
        assert!(why("\u{FFFD}").starts_with("invalid JSON"));
        assert!(d.decode(b"{\"ts\": 1, \"s\": \"\xff\"}").is_err());
    }

    #[test]
    fn csv_rows_become_typed_records() {
        let (mut d, user) = decoder(Format::Csv);
        assert!(matches!(
            d.decode(b"ts,user,amount,ok,note"),
            Ok(Item::Skip)
        ));
        match d.decode(b"7,u1,12.5,true,").unwrap() {
            Item::Event(ts, record) => {
                assert_eq!(ts, 7);
                assert_eq!(*record.field(user), Value::from("u1"));
                assert_eq!(
                    record.raw(),
                    r#"{"ts":7,"user":"u1","amount":12.5,"ok":true}"#
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(d.decode(b"1,2").unwrap_err().0.contains("header has 5"));
        assert!(d
            .decode(b",u1,1,true,x")
            .unwrap_err()
            .0
            .contains("no time field"));
    }
}
