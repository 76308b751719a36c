//! CSV rows, one per line, straight into [`Record`]s: cells are split by
//! `csv-core` (the parser of the `csv` crate, without its reader: lines come
//! from our own line reader, which numbers them and bounds their length),
//! typed, stored by field id, and written once as the record's JSON text.
//!
//! Typing: cells that parse as integers or finite floats are numbers,
//! `true`/`false` are booleans, empty cells are absent, the rest are
//! strings. A record's text (what output shows) is the JSON object of the
//! row: the header's names in order, empty cells left out.
//!
//! Quoting is RFC 4180's, and strict: `csv-core` reads any text somehow
//! (`a"b`, `"a"b`, an unclosed quote), so a line with a `"` is checked
//! first and refused with a reason, as it always was.

use std::sync::Arc;

use csv_core::{ReadRecordResult, Terminator};

use cepheid_core::event::{FieldId, FieldPath};

use crate::decode::found_time;
use cepheid_core::json::Found;
use cepheid_core::primitives::Timestamp;
use cepheid_core::record::Record;
use cepheid_core::value::json::push_json_string;
use cepheid_core::value::Value;

/// The CSV side of a decoder: the header and what each column fills.
pub(crate) struct CsvRows {
    parser: csv_core::Reader,
    /// The header's names, once read.
    header: Option<Vec<Box<str>>>,
    /// Each column's name as JSON text followed by `:`.
    keys: Vec<Vec<u8>>,
    /// The field each column fills (the last non-empty cell of a name wins).
    columns: Vec<Option<FieldId>>,
    /// The columns named like the time field.
    time: Vec<bool>,
    /// Unquoted cells of the current line, and where each ends.
    cells: Vec<u8>,
    ends: Vec<usize>,
    /// The current record's text.
    text: Vec<u8>,
}

/// What one line of CSV holds.
pub(crate) enum Row {
    /// The header (no event).
    Header,
    /// An event: its time (`None` when the time cell is absent or empty,
    /// else the time or why it is not one) and its record.
    Event(Option<Result<Timestamp, String>>, Record),
}

impl CsvRows {
    pub(crate) fn new() -> CsvRows {
        let mut parser = csv_core::ReaderBuilder::new()
            .terminator(Terminator::Any(b'\n'))
            .build();
        // csv-core drops a byte order mark at the start of its first input;
        // the decoder already drops one at the start of the input, and a
        // cell keeps any other. A blank line first (which it skips) makes
        // it keep them.
        let _ = parser.read_record(b"\n", &mut [0], &mut [0]);
        CsvRows {
            parser,
            header: None,
            keys: Vec::new(),
            columns: Vec::new(),
            time: Vec::new(),
            cells: Vec::new(),
            ends: Vec::new(),
            text: Vec::new(),
        }
    }

    /// Maps the header's columns to the fields of `paths` (indexed by id)
    /// and to the time field; again whenever the fields change.
    pub(crate) fn map_columns(&mut self, paths: &[FieldPath], time: &FieldPath) {
        let Some(header) = &self.header else {
            return;
        };
        // A column is a top-level name: only a path of one segment reads it.
        let named =
            |path: &FieldPath, name: &str| matches!(path.segments(), [one] if **one == *name);
        self.columns = header
            .iter()
            .map(|name| paths.iter().position(|p| named(p, name)).map(FieldId::new))
            .collect();
        self.time = header.iter().map(|name| named(time, name)).collect();
    }

    /// The header's names (none before the header).
    pub(crate) fn header_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.header.iter().flatten().map(|n| &**n)
    }

    /// Reads one line (not blank, valid UTF-8): the header first, then rows.
    /// A row's record has a value for each of `width` fields.
    pub(crate) fn row(
        &mut self,
        line: &str,
        width: usize,
        paths: &[FieldPath],
        time: &FieldPath,
    ) -> Result<Row, String> {
        let count = self.split(line)?;
        let Some(header) = &self.header else {
            let names = (0..count)
                .map(|i| self.cell(i).into())
                .collect::<Vec<Box<str>>>();
            self.keys = names
                .iter()
                .map(|name| {
                    let mut key = Vec::new();
                    push_json_string(&mut key, name);
                    key.push(b':');
                    key
                })
                .collect();
            self.header = Some(names);
            self.map_columns(paths, time);
            return Ok(Row::Header);
        };
        if count != header.len() {
            return Err(format!(
                "the row has {count} fields, the header has {}",
                header.len()
            ));
        }
        let mut values = vec![Value::Null; width];
        let mut time_column = None;
        self.text.clear();
        self.text.push(b'{');
        for column in 0..count {
            let cell = cell(&self.cells, &self.ends, column);
            if cell.is_empty() {
                continue;
            }
            let typed = typed(cell);
            if self.text.len() > 1 {
                self.text.push(b',');
            }
            self.text.extend_from_slice(&self.keys[column]);
            push_typed(&mut self.text, cell, typed);
            if let Some(id) = self.columns[column] {
                if let Some(slot) = values.get_mut(id.index()) {
                    *slot = to_value(typed);
                }
            }
            if self.time[column] {
                time_column = Some(column);
            }
        }
        self.text.push(b'}');
        let time = time_column.map(|column| found_time(typed(self.cell(column)).found()));
        let text = String::from_utf8_lossy(&self.text);
        Ok(Row::Event(time, Record::new(values, Arc::from(text))))
    }

    /// Splits `line` into `self.cells` / `self.ends`; the number of cells.
    fn split(&mut self, line: &str) -> Result<usize, String> {
        let bytes = line.as_bytes();
        if memchr::memchr(b'"', bytes).is_some() {
            check_quotes(bytes)?;
        }
        self.cells.clear();
        self.ends.clear();
        if bytes.is_empty() {
            // csv-core skips empty lines; here it is one empty cell.
            self.ends.push(0);
            return Ok(1);
        }
        self.cells.resize(bytes.len() + 1, 0);
        self.ends
            .resize(memchr::memchr_iter(b',', bytes).count() + 1, 0);
        let (mut input, mut cells, mut ends) = (bytes, 0, 0);
        let mut terminated = false;
        loop {
            let (result, read, wrote, ended) =
                self.parser
                    .read_record(input, &mut self.cells[cells..], &mut self.ends[ends..]);
            input = &input[read..];
            cells += wrote;
            ends += ended;
            match result {
                // The line is whole: end the record with the terminator.
                ReadRecordResult::InputEmpty if !terminated => {
                    input = b"\n";
                    terminated = true;
                }
                ReadRecordResult::OutputFull => self.cells.resize(self.cells.len() * 2 + 1, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2 + 1, 0),
                _ => break,
            }
        }
        self.ends.truncate(ends);
        Ok(ends)
    }

    /// Cell number `i` of the current line.
    fn cell(&self, i: usize) -> &str {
        cell(&self.cells, &self.ends, i)
    }
}

/// Cell number `i` of a split line (valid UTF-8: cut from a `str` at ASCII
/// bytes, `""` turned into `"`).
fn cell<'a>(cells: &'a [u8], ends: &[usize], i: usize) -> &'a str {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    std::str::from_utf8(&cells[start..ends[i]]).unwrap_or_default()
}

/// Refuses what RFC 4180 does not allow in one line: a `"` inside an
/// unquoted cell, text after a closing `"`, a quoted cell not closed.
fn check_quotes(line: &[u8]) -> Result<(), String> {
    let mut quoted = false;
    let mut at_cell_start = true;
    let mut bytes = line.iter().peekable();
    while let Some(&c) = bytes.next() {
        match (quoted, c) {
            (false, b',') => {
                at_cell_start = true;
                continue;
            }
            (false, b'"') if at_cell_start => quoted = true,
            (false, b'"') => return Err("a `\"` inside an unquoted CSV cell".into()),
            (true, b'"') if bytes.peek() == Some(&&b'"') => {
                bytes.next();
            }
            (true, b'"') => {
                quoted = false;
                if !matches!(bytes.peek(), None | Some(b',')) {
                    return Err("text after a closing `\"` in a CSV cell".into());
                }
            }
            _ => {}
        }
        at_cell_start = false;
    }
    if quoted {
        return Err("a quoted CSV cell is not closed on this line".into());
    }
    Ok(())
}

/// A non-empty cell, typed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Typed<'a> {
    Int(i64),
    /// An integer above `i64::MAX`, at most `u64::MAX` (snowflake ids):
    /// kept exact, as its decimal text (the value a JSON line gives it).
    Exact(&'a str),
    Float(f64),
    Bool(bool),
    Str(&'a str),
}

/// A cell is typed as the JSON value its text would be: a number only
/// when it is written as a JSON number (`00042`, `+7`, `.5`, `1.` are
/// text, so `00042` and `42` are two keys, and each event's text shows
/// its own cell), an integer beyond the `i64` range exact as its digits
/// up to `u64::MAX` (a float beyond), `true`/`false`, else a string
/// (`docs/semantics.md`, "Exact keys").
fn typed(cell: &str) -> Typed<'_> {
    if json_number(cell) {
        match cell.parse::<i64>() {
            // `-0` is the float -0.0 in JSON (serde_json).
            Ok(0) if cell.starts_with('-') => return Typed::Float(-0.0),
            Ok(i) => return Typed::Int(i),
            Err(_) => {}
        }
        let integer = !cell.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
        if integer && cell.parse::<u64>().is_ok() {
            return Typed::Exact(cell);
        }
        if let Some(f) = cell.parse::<f64>().ok().filter(|f| f.is_finite()) {
            return Typed::Float(f);
        }
    }
    match cell {
        "true" => Typed::Bool(true),
        "false" => Typed::Bool(false),
        _ => Typed::Str(cell),
    }
}

/// Is `s` a number as JSON writes one (RFC 8259: an optional `-`, no
/// leading zero, an optional fraction and exponent)?
fn json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    i = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i).unwrap_or(i),
        _ => return false,
    };
    if b.get(i) == Some(&b'.') {
        let Some(end) = digits(i + 1) else {
            return false;
        };
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let Some(end) = digits(i) else {
            return false;
        };
        i = end;
    }
    i == b.len()
}

impl<'a> Typed<'a> {
    /// The cell as the JSON decoder would have found it (for the time).
    fn found(self) -> Found<'a> {
        match self {
            Typed::Int(i) => Found::Int(i),
            // (no time: beyond any the engine reads)
            Typed::Exact(digits) => Found::Float(digits.parse().unwrap_or(f64::INFINITY)),
            Typed::Float(f) => Found::Float(f),
            Typed::Bool(b) => Found::Bool(b),
            Typed::Str(s) => Found::Str(s),
        }
    }
}

fn to_value(typed: Typed<'_>) -> Value {
    match typed {
        Typed::Int(i) => Value::Int(i),
        Typed::Exact(digits) => Value::Str(Arc::from(digits)),
        Typed::Float(f) => Value::Float(f),
        Typed::Bool(b) => Value::Bool(b),
        Typed::Str(s) => Value::Str(Arc::from(s)),
    }
}

/// Appends a typed cell as JSON text: a number as the cell writes it (it
/// is JSON number syntax), a string quoted and escaped.
fn push_typed(text: &mut Vec<u8>, cell: &str, typed: Typed<'_>) {
    match typed {
        Typed::Int(_) | Typed::Exact(_) | Typed::Float(_) => {
            text.extend_from_slice(cell.as_bytes())
        }
        Typed::Bool(true) => text.extend_from_slice(b"true"),
        Typed::Bool(false) => text.extend_from_slice(b"false"),
        Typed::Str(s) => push_json_string(text, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_core::event::Event;

    fn split(line: &str) -> Result<Vec<String>, String> {
        let mut rows = CsvRows::new();
        let n = rows.split(line)?;
        Ok((0..n).map(|i| rows.cell(i).to_string()).collect())
    }

    #[test]
    fn quoting() {
        assert_eq!(split("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            split(r#""a,b","say ""hi""",x"#).unwrap(),
            ["a,b", r#"say "hi""#, "x"]
        );
        assert_eq!(split("").unwrap(), [""]);
        assert_eq!(split("a,").unwrap(), ["a", ""]);
        assert_eq!(split("\u{FEFF}a\rb,\"\"").unwrap(), ["\u{FEFF}a\rb", ""]);
        assert_eq!(split(" x , y").unwrap(), [" x ", " y"]);
        assert!(split(r#""open"#).is_err());
        assert!(split(r#"a"b"#).is_err());
        assert!(split(r#""a"b"#).is_err());
        assert!(split(r#" "a""#).is_err());
    }

    #[test]
    fn typing() {
        assert_eq!(typed("12"), Typed::Int(12));
        assert_eq!(typed("-12"), Typed::Int(-12));
        assert_eq!(typed("0"), Typed::Int(0));
        // Not JSON numbers: text, keys apart from `12` and `42` (issue 26).
        assert_eq!(typed("+12"), Typed::Str("+12"));
        assert_eq!(typed("00042"), Typed::Str("00042"));
        assert_eq!(typed(".5"), Typed::Str(".5"));
        assert_eq!(typed("1."), Typed::Str("1."));
        assert_eq!(typed("1e"), Typed::Str("1e"));
        assert_eq!(typed("-"), Typed::Str("-"));
        assert_eq!(typed("-1.5e3"), Typed::Float(-1500.0));
        assert_eq!(typed("0.25E+2"), Typed::Float(25.0));
        assert_eq!(typed("true"), Typed::Bool(true));
        assert_eq!(typed("inf"), Typed::Str("inf"));
        assert_eq!(typed("NaN"), Typed::Str("NaN"));
        assert_eq!(typed("u1"), Typed::Str("u1"));
        // Beyond i64, up to u64: exact; beyond u64: a float, as in JSON.
        assert_eq!(
            typed("12345678901234567890"),
            Typed::Exact("12345678901234567890")
        );
        assert_eq!(typed("99999999999999999999"), Typed::Float(1e20));
        let text = |cell| {
            let mut text = Vec::new();
            push_typed(&mut text, cell, typed(cell));
            String::from_utf8(text).unwrap()
        };
        assert_eq!(text("-1.5e3"), "-1.5e3");
        assert_eq!(text("99999999999999999999"), "99999999999999999999");
        assert_eq!(text("12345678901234567891"), "12345678901234567891");
        assert_eq!(text("00042"), r#""00042""#);
        assert_eq!(text("+7"), r#""+7""#);
        assert_eq!(text("x\"y"), r#""x\"y""#);
    }

    #[test]
    fn rows_keep_header_order_and_the_last_value_of_a_name() {
        let paths = [FieldPath::single("a"), FieldPath::single("z")];
        let ts = FieldPath::single("ts");
        let mut rows = CsvRows::new();
        assert!(matches!(
            rows.row("z,a,m,a", 2, &paths, &ts),
            Ok(Row::Header)
        ));
        let Ok(Row::Event(time, record)) = rows.row("1,,\"x\"\"y\",2", 2, &paths, &ts) else {
            panic!("not an event");
        };
        assert_eq!(time, None);
        assert_eq!(record.raw(), r#"{"z":1,"m":"x\"y","a":2}"#);
        assert_eq!(record.field(FieldId::new(0)), Value::Int(2));
        assert_eq!(record.field(FieldId::new(1)), Value::Int(1));
        let Ok(Row::Event(_, record)) = rows.row("1,3,,", 2, &paths, &ts) else {
            panic!("not an event");
        };
        assert_eq!(record.field(FieldId::new(0)), Value::Int(3));
    }
}
