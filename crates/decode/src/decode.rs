//! Decoding lines: [`Decoder`] turns one line of JSON lines or CSV into an
//! [`Item`]: an event with its time, a punctuated watermark
//! (`{"$watermark": T}`), nothing (blank line, CSV header), or an
//! [`ErrorKind::Input`] error saying why the line is malformed. Event time
//! comes from the time field: integer milliseconds or an RFC 3339 string.

use std::sync::Arc;

use crate::csv::{CsvRows, Row};
use crate::rfc3339::parse_rfc3339;
use crate::seen::FieldsSeen;
use cepheid_core::error::{Error, ErrorKind};
use cepheid_core::event::FieldPath;
use cepheid_core::json::{Found, JsonPlan, Scanned};
use cepheid_core::primitives::Timestamp;
use cepheid_core::record::{FieldTable, Record};

/// Input formats of `cepheid run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A header line, then one row per line.
    Csv,
}

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
///
/// The decoder reads the fields of its [`FieldTable`] handle, the one the
/// engine's patterns were compiled with: fields that patterns add later
/// are seen from the next line on.
pub struct Decoder {
    format: Format,
    time_field: FieldPath,
    /// Is the time field read (false for processing time)?
    timed: bool,
    table: FieldTable,
    /// The table's paths when last looked at (its length is the table's
    /// length then).
    paths: Vec<FieldPath>,
    started: bool,
    plan: JsonPlan,
    scanned: Scanned,
    /// The CSV parser (`None` for JSON lines: not built for nothing, once
    /// per chunk a worker reads).
    csv: Option<Box<CsvRows>>,
    /// What the events carried, when watched.
    seen: Option<Box<FieldsSeen>>,
}

/// A malformed-input error.
fn malformed(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, why)
}

impl Decoder {
    /// A decoder reading event time from `time_field` and extracting every
    /// field of `table` (a handle to the engine's table) into records.
    pub fn new(format: Format, time_field: &str, table: FieldTable) -> Decoder {
        let time_field = FieldPath::parse(time_field);
        let paths = table.paths();
        let plan = JsonPlan::new(&paths, &time_field);
        Decoder {
            format,
            time_field,
            timed: true,
            table,
            paths,
            started: false,
            plan,
            scanned: Scanned::default(),
            csv: matches!(format, Format::Csv).then(|| Box::new(CsvRows::new())),
            seen: None,
        }
    }

    /// Watches the fields: records which fields of the table the decoded
    /// events carry, and the names of every key of the first `sample`
    /// events ([`FieldsSeen`]; read it with
    /// [`fields_seen`](Decoder::fields_seen), and give it to a
    /// `cepheid_runtime::FieldWatch` to know which fields the patterns
    /// read that never occurred). Off by default; on, it costs each event
    /// one test per field that has not occurred yet (nothing more once
    /// every field has), and each event of the sample a parse of its keys.
    ///
    /// ```
    /// use cepheid_core::record::FieldTable;
    /// use cepheid_core::FieldPath;
    /// use cepheid_decode::{Decoder, Format};
    /// // The table of the fields the patterns read (an engine's `fields()`).
    /// let table = FieldTable::new();
    /// table.intern(&FieldPath::parse("sucess"));
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", table).watch_fields(1000);
    /// decoder.decode(br#"{"ts": 1, "success": true}"#)?;
    /// let seen = decoder.fields_seen().expect("watched");
    /// assert!(!seen.occurred(&FieldPath::parse("sucess")));
    /// assert!(seen.names().any(|name| name == "success"));
    /// assert_eq!(seen.events(), 1);
    /// # Ok::<(), cepheid_core::Error>(())
    /// ```
    pub fn watch_fields(mut self, sample: u64) -> Decoder {
        let mut seen = FieldsSeen::new(sample);
        seen.grow(&self.paths);
        self.seen = Some(Box::new(seen));
        self
    }

    /// What the events carried so far, if the decoder watches the fields
    /// ([`watch_fields`](Decoder::watch_fields)).
    pub fn fields_seen(&self) -> Option<&FieldsSeen> {
        self.seen.as_deref()
    }

    /// For processing time: events need no time field. Each event comes as
    /// `Item::Event(0, record)` and the caller gives it its time (see
    /// `cepheid_engine::Engine::push_now`); a time field, if
    /// present, is not checked. `$watermark` lines are still watermarks.
    pub fn without_time(mut self) -> Decoder {
        self.timed = false;
        self
    }

    /// The field table this decoder reads.
    pub fn fields(&self) -> &FieldTable {
        &self.table
    }

    /// Decodes one line (without its line ending). A UTF-8 byte order mark
    /// at the start of the first line is ignored. A malformed line is an
    /// [`ErrorKind::Input`] error whose message says why (without
    /// location: the caller knows the line).
    pub fn decode(&mut self, mut line: &[u8]) -> Result<Item, Error> {
        if self.table.len() != self.paths.len() {
            self.refresh();
        }
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

    /// Patterns added fields to the table: read them too.
    #[cold]
    fn refresh(&mut self) {
        self.paths = self.table.paths();
        if let Some(seen) = &mut self.seen {
            seen.grow(&self.paths);
        }
        self.plan = JsonPlan::new(&self.paths, &self.time_field);
        if let Some(csv) = &mut self.csv {
            csv.map_columns(&self.paths, &self.time_field);
        }
    }

    /// One JSON object: only the fields some pattern reads (and the time)
    /// are kept; the line's text is the record's output form.
    fn decode_json(&mut self, line: &[u8]) -> Result<Item, Error> {
        let text = std::str::from_utf8(line)
            .map_err(|e| malformed(format!("invalid UTF-8: {e}")))?
            .trim_ascii();
        if !text.starts_with('{') {
            // Say whether it is JSON at all or just not an object.
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => malformed("not a JSON object"),
                Err(e) => malformed(format!("invalid JSON: {e}")),
            });
        }
        self.plan
            .scan(text, &mut self.scanned)
            .map_err(|e| malformed(format!("invalid JSON: {e}")))?;
        if let Some(t) = self.plan.watermark(&self.scanned, text) {
            // A watermark line is exactly `{"$watermark": T}`; one with
            // other fields is neither a watermark nor an event (it used to
            // become a watermark and drop the event silently). Rare lines:
            // counting their keys with serde costs nothing that matters.
            let fields = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .map_or(0, |m| m.len());
            if fields != 1 {
                return Err(malformed(format!(
                    "a `$watermark` line must have no other field (this one has {fields})"
                )));
            }
            return found_time(t)
                .map(Item::Watermark)
                .map_err(|why| malformed(format!("bad `$watermark`: {why}")));
        }
        let time = self.plan.time(&self.scanned, text);
        let ts = self.event_time(time.map(found_time))?;
        let values = self.plan.values(&self.scanned, text);
        let objects = self.plan.objects(&self.scanned, text);
        let record = Record::new(values, Arc::from(text)).with_objects(objects);
        if let Some(seen) = &mut self.seen {
            seen.json(&self.plan, &self.scanned, text);
        }
        Ok(Item::Event(ts, record))
    }

    fn decode_csv(&mut self, line: &[u8]) -> Result<Item, Error> {
        let text =
            std::str::from_utf8(line).map_err(|e| malformed(format!("invalid UTF-8: {e}")))?;
        let csv = self.csv.get_or_insert_with(|| Box::new(CsvRows::new()));
        let row = csv
            .row(text, self.paths.len(), &self.paths, &self.time_field)
            .map_err(malformed)?;
        match row {
            Row::Header => Ok(Item::Skip),
            Row::Event(time, record) => {
                let ts = self.event_time(time)?;
                if let (Some(seen), Some(csv)) = (&mut self.seen, &self.csv) {
                    seen.csv(csv, &record);
                }
                Ok(Item::Event(ts, record))
            }
        }
    }

    /// The event time, or why there is none.
    fn event_time(&self, time: Option<Result<Timestamp, String>>) -> Result<Timestamp, Error> {
        let field = &self.time_field;
        if !self.timed {
            return Ok(0);
        }
        match time {
            None => Err(malformed(format!("no time field `{field}`"))),
            Some(Ok(ts)) => Ok(ts),
            Some(Err(why)) => Err(malformed(format!("bad time field `{field}`: {why}"))),
        }
    }
}

/// A time as the JSON scan found it (see [`json_time`]).
pub(crate) fn found_time(found: Found<'_>) -> Result<Timestamp, String> {
    match found {
        Found::Json(value) => json_time(value),
        Found::Int(ms) => Ok(ms),
        Found::Float(f) => json_time(&serde_json::Value::from(f)),
        Found::Str(s) => parse_rfc3339(s).map_err(|e| e.to_string()),
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
        serde_json::Value::String(s) => parse_rfc3339(s).map_err(|e| e.to_string()),
        other => Err(format!(
            "{other} is neither integer milliseconds nor an RFC 3339 string"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_core::event::Event;
    use cepheid_core::value::Value;

    fn decoder(format: Format) -> (Decoder, cepheid_core::FieldId) {
        let table = FieldTable::new();
        let id = table.intern(&FieldPath::single("user"));
        (Decoder::new(format, "ts", table), id)
    }

    #[test]
    fn times_out_of_range_or_odd_say_so() {
        let (mut d, _) = decoder(Format::JsonLines);
        fn err(d: &mut Decoder, line: &str) -> String {
            match d.decode(line.as_bytes()) {
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Input);
                    e.message().to_string()
                }
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
                assert_eq!(record.field(user), Value::from("u1"));
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
            matches!(&both, Err(e) if e.message().contains("no other field")),
            "{both:?}"
        );
        let rfc = d.decode(br#"{"ts": "1970-01-01T00:00:02Z"}"#).unwrap();
        assert!(matches!(rfc, Item::Event(2000, _)));
    }

    #[test]
    fn without_time_events_need_no_time_field() {
        for (format, lines) in [
            (
                Format::JsonLines,
                [
                    &br#"{"user": "u1"}"#[..],
                    br#"{"ts": "noon", "user": "u2"}"#,
                ],
            ),
            (Format::Csv, [&b"user,ts"[..], b"u1,"]),
        ] {
            let (d, user) = decoder(format);
            let mut d = d.without_time();
            let mut users = Vec::new();
            for line in lines {
                match d.decode(line).unwrap() {
                    Item::Event(ts, record) => {
                        assert_eq!(ts, 0);
                        users.push(record.field(user).to_owned());
                    }
                    Item::Skip => {}
                    other => panic!("{other:?}"),
                }
            }
            assert!(
                !users.is_empty() && users[0] == Value::from("u1"),
                "{format:?}"
            );
        }
        let (d, _) = decoder(Format::JsonLines);
        let mut d = d.without_time();
        assert!(matches!(
            d.decode(br#"{"$watermark": 9}"#),
            Ok(Item::Watermark(9))
        ));
    }

    #[test]
    fn malformed_json_lines_say_why() {
        let (mut d, _) = decoder(Format::JsonLines);
        let mut why = |line: &str| d.decode(line.as_bytes()).unwrap_err().message().to_string();
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
                assert_eq!(record.field(user), Value::from("u1"));
                assert_eq!(
                    record.raw(),
                    r#"{"ts":7,"user":"u1","amount":12.5,"ok":true}"#
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(d
            .decode(b"1,2")
            .unwrap_err()
            .message()
            .contains("header has 5"));
        assert!(d
            .decode(b",u1,1,true,x")
            .unwrap_err()
            .message()
            .contains("no time field"));
    }

    #[test]
    fn csv_quoting_errors_and_blank_lines() {
        let (mut d, user) = decoder(Format::Csv);
        let mut why = |line: &str| d.decode(line.as_bytes()).unwrap_err().message().to_string();
        assert_eq!(why("\"ts"), "a quoted CSV cell is not closed on this line");
        let (mut d, user2) = decoder(Format::Csv);
        assert_eq!(user, user2);
        assert!(matches!(
            d.decode(b"\xEF\xBB\xBF\"ts\",user"),
            Ok(Item::Skip)
        ));
        assert!(matches!(d.decode(b"  "), Ok(Item::Skip)));
        match d.decode(b"5,\"a,\"\"b\"").unwrap() {
            Item::Event(5, record) => {
                assert_eq!(record.field(user), Value::from("a,\"b"));
                assert_eq!(record.raw(), r#"{"ts":5,"user":"a,\"b"}"#);
            }
            other => panic!("{other:?}"),
        }
        let mut why = |line: &str| d.decode(line.as_bytes()).unwrap_err().message().to_string();
        assert_eq!(why("5,a\"b"), "a `\"` inside an unquoted CSV cell");
        assert_eq!(why("5,\"a\"b"), "text after a closing `\"` in a CSV cell");
        assert!(why("x,u").contains("RFC 3339"));
        assert!(why("1.5,u").contains("not a whole number"));
        assert!(why("true,u").contains("neither"));
        assert!(why("99999999999999999999,u").contains("too large"));
        assert!(d
            .decode(b"1,\xff")
            .unwrap_err()
            .message()
            .starts_with("invalid UTF-8"));
    }
}
