//! Reading one JSON-lines event without building the whole object.
//!
//! A pattern set reads a handful of fields; an input line may carry many
//! more. [`JsonPlan`] lists the top-level keys that matter (the first
//! segment of every field path of the field table, of the time field, and
//! `$watermark`); [`JsonPlan::scan`] walks the object once with serde,
//! keeping the values of those keys and skipping every other value without
//! allocating (serde_json still checks that it is valid JSON, with its
//! nesting limit). Keys are compared without allocating, escaped or not.
//!
//! Before that, [`JsonPlan::scan`] tries a fast path for the common flat
//! line: an object whose keys and string values hold no escapes and whose
//! values are strings, short integers, booleans or null, read in one pass
//! with no allocation. Whatever falls outside it (nesting, floats, escapes,
//! anything invalid) is handed to serde as before, so the values and the
//! error messages do not depend on which path read the line.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::event::{FieldId, FieldPath};
pub use crate::record::{holds_object, json_value, lookup_json};
use crate::record::{FieldTable, Record};
use crate::value::Value;

/// Converts a JSON value. An object is not a [`Value`], so a value that is
/// or holds one (`{"a":1}`, `[1,{"a":1}]`, at any depth) becomes null as a
/// whole: not `[1,null]`, which would compare equal to a real `[1,null]`
/// (see `docs/semantics.md`, "Fields holding JSON objects"). A record marks
/// such fields, see [`Record::with_objects`](crate::Record::with_objects).
///
/// ```
/// use cepheid_core::{json as io, Value};
/// let json = serde_json::json!([1, 1.5, "x", null]);
/// let value = io::value_from_json(&json);
/// assert_eq!(value.to_string(), r#"[1,1.5,"x",null]"#);
/// assert_eq!(io::value_to_json(&value), json);
/// assert_eq!(io::value_from_json(&serde_json::json!([{"a": 1}])), Value::Null);
/// ```
pub fn value_from_json(json: &serde_json::Value) -> Value {
    json_value(json).unwrap_or(Value::Null)
}

/// Converts a value to JSON (a non-finite float becomes null).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Str(s) => serde_json::Value::String(s.to_string()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_to_json).collect()),
    }
}

/// A record of a JSON object: every path of `table` looked up in it (null
/// where absent), `raw` the text it was read from (what output shows).
///
/// ```
/// use std::sync::Arc;
/// use cepheid_core::record::FieldTable;
/// use cepheid_core::{json as io, Event, FieldPath, Value};
/// let table = FieldTable::new();
/// let id = table.intern(&FieldPath::parse("user.id"));
/// let text = r#"{"user": {"id": 7}}"#;
/// let json: serde_json::Value = serde_json::from_str(text).unwrap();
/// let record = io::record_from_json(&table, json.as_object().unwrap(), Arc::from(text));
/// assert_eq!(record.field(id), Value::Int(7));
/// ```
pub fn record_from_json(
    table: &FieldTable,
    object: &serde_json::Map<String, serde_json::Value>,
    raw: Arc<str>,
) -> Record {
    let paths = table.paths();
    let values = paths
        .iter()
        .map(|path| lookup_json(object, path).map_or(Value::Null, value_from_json))
        .collect();
    let objects = paths
        .iter()
        .enumerate()
        .filter(|(_, path)| lookup_json(object, path).is_some_and(holds_object))
        .map(|(i, _)| FieldId::new(i))
        .collect();
    Record::new(values, raw).with_objects(objects)
}

/// Where a path's value is found: which kept top-level key, then which
/// nested keys below it.
#[derive(Clone, Debug)]
struct Lookup {
    top: usize,
    rest: Vec<Arc<str>>,
}

/// What to keep from each object, for one field table and time field.
#[derive(Clone, Debug)]
pub struct JsonPlan {
    /// The distinct top-level keys to keep.
    tops: Vec<Box<str>>,
    /// For each field id of the table, where its value is.
    fields: Vec<Lookup>,
    /// Where the event time is.
    time: Lookup,
    /// Index of `$watermark` in `tops`.
    watermark: usize,
}

/// The kept values of one object, indexed like [`JsonPlan`]'s top keys.
/// Reused from line to line.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Did the fast path read the line (values in `flat`, else `found`)?
    fast: bool,
    /// What the fast path kept.
    flat: Vec<Flat>,
    /// What serde kept.
    found: Vec<Option<serde_json::Value>>,
}

/// A value kept by the fast path.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flat {
    /// The key did not occur.
    Absent,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer of at most 18 digits.
    Int(i64),
    /// A number with a fraction and at most 15 digits in all.
    Float(f64),
    /// A string without escapes: its byte range in the line, quotes
    /// excluded.
    Str(u32, u32),
}

/// A kept top-level value, from either path.
#[derive(Clone, Copy, Debug)]
pub enum Found<'a> {
    /// Read by serde.
    Json(&'a serde_json::Value),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'a str),
}

impl Found<'_> {
    /// The value as the record holds it.
    fn to_value(self) -> Value {
        match self {
            Found::Json(json) => value_from_json(json),
            Found::Null => Value::Null,
            Found::Bool(b) => Value::Bool(b),
            Found::Int(i) => Value::Int(i),
            Found::Float(f) => Value::Float(f),
            Found::Str(s) => Value::Str(Arc::from(s)),
        }
    }
}

impl JsonPlan {
    /// The plan for extracting every path of `paths` (indexed by field id)
    /// and `time_field`.
    pub fn new(paths: &[FieldPath], time_field: &FieldPath) -> JsonPlan {
        let mut tops: Vec<Box<str>> = Vec::new();
        let mut lookup = |path: &FieldPath| {
            let (first, rest) = path
                .segments()
                .split_first()
                .map_or(("", &[][..]), |(f, r)| (&**f, r));
            let top = tops.iter().position(|t| &**t == first).unwrap_or_else(|| {
                tops.push(first.into());
                tops.len() - 1
            });
            Lookup {
                top,
                rest: rest.to_vec(),
            }
        };
        let fields = paths.iter().map(&mut lookup).collect();
        let time = lookup(time_field);
        let watermark = lookup(&FieldPath::single("$watermark")).top;
        JsonPlan {
            tops,
            fields,
            time,
            watermark,
        }
    }

    /// Scans one JSON object, keeping the values this plan needs.
    pub fn scan(&self, text: &str, into: &mut Scanned) -> Result<(), serde_json::Error> {
        into.flat.clear();
        into.flat.resize(self.tops.len(), Flat::Absent);
        if self.scan_flat(text.as_bytes(), &mut into.flat).is_some() {
            into.fast = true;
            return Ok(());
        }
        self.scan_serde(text, into)
    }

    /// The general path: serde walks the object.
    fn scan_serde(&self, text: &str, into: &mut Scanned) -> Result<(), serde_json::Error> {
        into.fast = false;
        into.found.clear();
        into.found.resize(self.tops.len(), None);
        let mut de = serde_json::Deserializer::from_str(text);
        ObjectSeed {
            tops: &self.tops,
            found: &mut into.found,
        }
        .deserialize(&mut de)?;
        de.end()
    }

    /// Which kept top-level key `key` is (length, first and last byte
    /// compared before the whole key: most keys differ in one of them).
    fn top_index(&self, key: &[u8]) -> Option<usize> {
        self.tops.iter().position(|t| {
            let t = t.as_bytes();
            t.len() == key.len() && t.first() == key.first() && t.last() == key.last() && t == key
        })
    }

    /// The fast path: `None` when the line is not a flat object of simple
    /// values (then serde reads it, and says what is wrong if anything is).
    fn scan_flat(&self, b: &[u8], flat: &mut [Flat]) -> Option<()> {
        let mut at = skip_space(b, expect(b, 0, b'{')?);
        if b.get(at) == Some(&b'}') {
            return (at + 1 == b.len()).then_some(());
        }
        loop {
            let (start, end) = plain_string(b, at)?;
            at = skip_space(b, expect(b, skip_space(b, end + 1), b':')?);
            let key = &b[start..end];
            let slot = self.top_index(key);
            let value;
            (value, at) = flat_value(b, at)?;
            if let Some(i) = slot {
                flat[i] = value;
            }
            at = skip_space(b, at);
            match b.get(at)? {
                b',' => at = skip_space(b, at + 1),
                b'}' => return (at + 1 == b.len()).then_some(()),
                _ => return None,
            }
        }
    }

    /// The `$watermark` value, when the object had one.
    pub fn watermark<'a>(&self, scanned: &'a Scanned, text: &'a str) -> Option<Found<'a>> {
        top(scanned, text, self.watermark)
    }

    /// The time field's value, when present.
    pub fn time<'a>(&self, scanned: &'a Scanned, text: &'a str) -> Option<Found<'a>> {
        follow(scanned, text, &self.time)
    }

    /// The fields whose values are JSON objects or lists holding one (null
    /// in [`values`](JsonPlan::values)); only serde keeps objects and
    /// lists, so a line the fast path read has none.
    pub fn objects(&self, scanned: &Scanned, text: &str) -> Vec<FieldId> {
        if scanned.fast {
            return Vec::new();
        }
        self.fields
            .iter()
            .enumerate()
            .filter(
                |(_, l)| matches!(follow(scanned, text, l), Some(Found::Json(j)) if holds_object(j)),
            )
            .map(|(i, _)| FieldId::new(i))
            .collect()
    }

    /// Did the scanned object carry the field `id` of the table (its whole
    /// path, a nested one included, with any value, `null` too)?
    pub fn carries(&self, scanned: &Scanned, text: &str, id: usize) -> bool {
        self.fields
            .get(id)
            .is_some_and(|l| follow(scanned, text, l).is_some())
    }

    /// The values of the table's fields, indexed by field id (null where
    /// absent).
    pub fn values(&self, scanned: &Scanned, text: &str) -> Vec<Value> {
        if !scanned.fast {
            return self
                .fields
                .iter()
                .map(|l| follow(scanned, text, l).map_or(Value::Null, Found::to_value))
                .collect();
        }
        // Fast path: every value is a scalar; a nested path finds nothing.
        // (A loop rather than `collect`, whose inner fold the compiler
        // does not always inline: once per event.)
        let mut values = Vec::with_capacity(self.fields.len());
        for l in &self.fields {
            values.push(match scanned.flat[l.top] {
                _ if !l.rest.is_empty() => Value::Null,
                Flat::Absent | Flat::Null => Value::Null,
                Flat::Bool(b) => Value::Bool(b),
                Flat::Int(n) => Value::Int(n),
                Flat::Float(f) => Value::Float(f),
                Flat::Str(start, end) => text
                    .get(start as usize..end as usize)
                    .map_or(Value::Null, |s| Value::Str(Arc::from(s))),
            });
        }
        values
    }
}

/// Calls `found` with the path of every key of the JSON object `text`
/// (`a`, and for an object under it `a.b`, down to `depth` levels), in
/// order; nothing when `text` is not an object. For suggestions ("did you
/// mean"), on a few lines only: it parses the whole line.
pub fn object_paths(text: &str, depth: usize, found: &mut dyn FnMut(&str)) {
    fn walk(
        map: &serde_json::Map<String, serde_json::Value>,
        prefix: &mut String,
        depth: usize,
        found: &mut dyn FnMut(&str),
    ) {
        for (key, value) in map {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(key);
            found(prefix);
            if let (Some(inner), true) = (value.as_object(), depth > 1) {
                walk(inner, prefix, depth - 1, found);
            }
            prefix.truncate(len);
        }
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
        walk(&map, &mut String::new(), depth, found);
    }
}

/// The kept value of top-level key number `i`.
fn top<'a>(scanned: &'a Scanned, text: &'a str, i: usize) -> Option<Found<'a>> {
    if !scanned.fast {
        return scanned.found.get(i)?.as_ref().map(Found::Json);
    }
    Some(match *scanned.flat.get(i)? {
        Flat::Absent => return None,
        Flat::Null => Found::Null,
        Flat::Bool(b) => Found::Bool(b),
        Flat::Int(n) => Found::Int(n),
        Flat::Float(f) => Found::Float(f),
        Flat::Str(start, end) => Found::Str(text.get(start as usize..end as usize)?),
    })
}

fn follow<'a>(scanned: &'a Scanned, text: &'a str, lookup: &Lookup) -> Option<Found<'a>> {
    let found = top(scanned, text, lookup.top)?;
    if lookup.rest.is_empty() {
        return Some(found);
    }
    // Only serde keeps objects (the fast path gives up on them).
    let Found::Json(mut current) = found else {
        return None;
    };
    for key in &lookup.rest {
        current = current.as_object()?.get(&**key)?;
    }
    Some(Found::Json(current))
}

/// `at + 1` if `b[at]` is `byte`.
fn expect(b: &[u8], at: usize, byte: u8) -> Option<usize> {
    (b.get(at) == Some(&byte)).then_some(at + 1)
}

/// The position of the first byte from `at` on that is not JSON whitespace.
fn skip_space(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The content range of the string starting at `at`, if it is one with no
/// escape and no control character (the closing quote is at `end`).
/// The bytes that end the plain part of a JSON string: `"`, `\\` and the
/// control characters (one table load per byte instead of three tests).
static STOPS_STRING: [bool; 256] = {
    let mut stops = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        stops[c] = true;
        c += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

fn plain_string(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let start = expect(b, at, b'"')?;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| STOPS_STRING[usize::from(c)])?;
    let end = start + len;
    (b[end] == b'"').then_some((start, end))
}

/// A simple value starting at `at`, and the position after it.
fn flat_value(b: &[u8], at: usize) -> Option<(Flat, usize)> {
    let literal = |word: &[u8], value: Flat| {
        b.get(at..at + word.len())
            .filter(|w| *w == word)
            .map(|_| (value, at + word.len()))
    };
    match *b.get(at)? {
        b'"' => {
            let (start, end) = plain_string(b, at)?;
            let range = (u32::try_from(start).ok()?, u32::try_from(end).ok()?);
            Some((Flat::Str(range.0, range.1), end + 1))
        }
        b't' => literal(b"true", Flat::Bool(true)),
        b'f' => literal(b"false", Flat::Bool(false)),
        b'n' => literal(b"null", Flat::Null),
        _ => flat_number(b, at),
    }
}

/// A number: an integer of 1 to 18 digits, or one with a fraction and at
/// most 15 digits in all, no leading zero, no exponent; anything else
/// (and `-0`, which serde reads as a float) makes it give up. A float is
/// computed as serde_json does (the digits as an exact integer divided by
/// an exact power of ten: one correctly rounded division), so it is the
/// same `f64` whichever path reads it.
fn flat_number(b: &[u8], at: usize) -> Option<(Flat, usize)> {
    let negative = b.get(at) == Some(&b'-');
    let first = at + usize::from(negative);
    let mut significand: i64 = 0;
    let (end, int_digits) = push_digits(b, first, &mut significand);
    if int_digits == 0 || int_digits > 18 || (b[first] == b'0' && int_digits > 1) {
        return None;
    }
    if b.get(end) != Some(&b'.') {
        if negative && significand == 0 {
            return None;
        }
        let n = if negative { -significand } else { significand };
        return Some((Flat::Int(n), end));
    }
    let (end, fraction_digits) = push_digits(b, end + 1, &mut significand);
    if fraction_digits == 0 || int_digits + fraction_digits > 15 {
        return None;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        return None;
    }
    let f = significand as f64 / POWERS_OF_TEN[fraction_digits];
    Some((Flat::Float(if negative { -f } else { f }), end))
}

/// 10^0 to 10^15, all exact in an `f64`.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Appends the decimal digits from `at` on to `value` and returns where
/// they end and how many there were (`value` is meaningless when there are
/// too many for it, which the caller checks).
fn push_digits(b: &[u8], at: usize, value: &mut i64) -> (usize, usize) {
    let mut end = at;
    while let Some(&c) = b.get(end) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        *value = value.wrapping_mul(10).wrapping_add(i64::from(digit));
        end += 1;
    }
    (end, end - at)
}

/// Visits an object, keeping the values of the wanted keys (the last one
/// wins when a key repeats, as with a full parse).
struct ObjectSeed<'a> {
    tops: &'a [Box<str>],
    found: &'a mut [Option<serde_json::Value>],
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(slot) = map.next_key_seed(KeySeed(self.tops))? {
            match slot {
                Some(i) => self.found[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Resolves a key to the index of a wanted key, without allocating.
struct KeySeed<'a>(&'a [Box<str>]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|t| &**t == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn plan(paths: &[&str]) -> (JsonPlan, FieldTable) {
        let table = FieldTable::new();
        for p in paths {
            table.intern(&FieldPath::parse(p));
        }
        (
            JsonPlan::new(&table.paths(), &FieldPath::single("ts")),
            table,
        )
    }

    #[test]
    fn record_reads_nested_fields() {
        let table = FieldTable::new();
        let id = table.intern(&FieldPath::parse("user.id"));
        let missing = table.intern(&FieldPath::parse("nope"));
        let text = r#"{"user":{"id":7},"ts":1}"#;
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let record = record_from_json(&table, json.as_object().unwrap(), Arc::from(text));
        assert_eq!(record.field(id), Value::Int(7));
        assert_eq!(record.field(missing), Value::Null);
        assert_eq!(record.raw(), text);
    }

    #[test]
    fn json_round_trip_keeps_types() {
        let json: serde_json::Value =
            serde_json::from_str(r#"[1, 1.5, "x", true, null, [2]]"#).unwrap();
        let value = value_from_json(&json);
        assert_eq!(value_to_json(&value), json);
    }

    #[test]
    fn objects_anywhere_make_the_field_null_and_marked() {
        for text in [r#"{"a":1}"#, r#"[{"a":1}]"#, r#"[1,[2,{}]]"#] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(value_from_json(&json), Value::Null, "{text}");
            assert!(holds_object(&json), "{text}");
        }
        for text in ["[null]", "[[1],[]]", "null", "3"] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(!holds_object(&json), "{text}");
        }
        let (plan, table) = plan(&["k", "u.v", "w"]);
        let mut s = Scanned::default();
        let text = r#"{"k":[{"a":1}],"u":{"v":[[{}]]},"w":[null],"ts":1}"#;
        plan.scan(text, &mut s).unwrap();
        let null_list = Value::List(vec![Value::Null].into());
        assert_eq!(
            plan.values(&s, text),
            vec![Value::Null, Value::Null, null_list]
        );
        let paths = table.paths();
        let marked: Vec<String> = plan
            .objects(&s, text)
            .iter()
            .map(|id| paths[id.index()].to_string())
            .collect();
        assert_eq!(marked, ["k", "u.v"]);
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let record = record_from_json(&table, json.as_object().unwrap(), Arc::from(text));
        assert_eq!(record.objects(), plan.objects(&s, text));
    }

    /// A found value as JSON, to compare with a full parse.
    fn json(found: Option<Found<'_>>) -> Option<serde_json::Value> {
        Some(match found? {
            Found::Json(v) => v.clone(),
            Found::Null => serde_json::Value::Null,
            Found::Bool(b) => b.into(),
            Found::Int(i) => i.into(),
            Found::Float(f) => f.into(),
            Found::Str(s) => s.into(),
        })
    }

    #[test]
    fn keeps_wanted_fields_and_skips_the_rest() {
        let (plan, _) = plan(&["user.id", "type", "missing", "user.name"]);
        let mut s = Scanned::default();
        let text = r#"{"big": {"a": [1, 2, {"x": "y"}]}, "user": {"id": 7, "name": "n"},
                       "type": "login", "ts": 5, "type": "again"}"#;
        plan.scan(text, &mut s).unwrap();
        assert_eq!(
            plan.values(&s, text),
            vec![
                Value::Int(7),
                Value::from("again"),
                Value::Null,
                Value::from("n")
            ]
        );
        assert_eq!(json(plan.time(&s, text)), Some(serde_json::json!(5)));
        assert!(plan.watermark(&s, text).is_none());
    }

    #[test]
    fn escaped_keys_match() {
        let (plan, _) = plan(&["user-agent"]);
        let mut s = Scanned::default();
        let text = r#"{"user\u002dagent": "curl", "ts": 1}"#;
        plan.scan(text, &mut s).unwrap();
        assert_eq!(plan.values(&s, text), vec![Value::from("curl")]);
    }

    #[test]
    fn watermarks_and_errors() {
        let (plan, _) = plan(&["a"]);
        let mut s = Scanned::default();
        let text = r#"{"$watermark": 9}"#;
        plan.scan(text, &mut s).unwrap();
        assert_eq!(json(plan.watermark(&s, text)), Some(serde_json::json!(9)));
        assert!(plan.scan(r#"{"a": 1"#, &mut s).is_err());
        assert!(plan.scan(r#"{"a": 1} x"#, &mut s).is_err());
        assert!(plan.scan(r#"{"skipped": [1, }"#, &mut s).is_err());
        // Deep nesting: skipped iteratively in a field no pattern reads (no
        // recursion, so no risk to the stack), refused by serde_json's
        // nesting limit in a field that is kept.
        let nested = |key: &str| {
            format!(
                "{{\"{key}\": {}{}, \"ts\": 1}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
        };
        assert!(plan.scan(&nested("x"), &mut s).is_ok());
        assert!(plan.scan(&nested("a"), &mut s).is_err());
    }

    #[test]
    fn agrees_with_a_full_parse() {
        let (plan, table) = plan(&["a", "b.c", "d"]);
        let mut s = Scanned::default();
        for text in [
            r#"{"a": 1, "b": {"c": [1, "x"]}, "d": null, "ts": 3}"#,
            r#"{"b": 2, "a": "\u00e9\n", "ts": "1970-01-01T00:00:00Z"}"#,
            r#"{}"#,
            r#"{ }"#,
            r#"{"a":-12,"d":true,"b":"x","ts":-5,"a":"é ✓"}"#,
            "{\t\"a\" :\r\n false , \"d\":\"\" ,\"zz\":null}",
            r#"{"a": 123456789012345678, "d": 1234567890123456789}"#,
            r#"{"a": 18446744073709551616, "d": -9223372036854775808}"#,
            r#"{"a": -0, "d": 0, "ts": 1.0}"#,
            r#"{"a": 1e3, "d": 2.5E-1, "b": 0.0}"#,
            r#"{"a": [], "d": {}, "b": {"c": 1}}"#,
            r#"{"a\n": 1, "a": "\"", "d": "\\"}"#,
        ] {
            plan.scan(text, &mut s).unwrap();
            let full: serde_json::Value = serde_json::from_str(text).unwrap();
            let object = full.as_object().unwrap();
            let expected: Vec<Value> = table
                .paths()
                .iter()
                .map(|p| lookup_json(object, p).map_or(Value::Null, value_from_json))
                .collect();
            assert_eq!(plan.values(&s, text), expected, "{text}");
            assert_eq!(
                json(plan.time(&s, text)).as_ref(),
                object.get("ts"),
                "{text}"
            );
        }
    }

    #[test]
    fn flat_lines_take_the_fast_path() {
        let (plan, _) = plan(&["a"]);
        let mut s = Scanned::default();
        for text in [r#"{"a":1,"ts":2}"#, r#"{ "x" : "y" , "a" : null }"#, "{}"] {
            plan.scan(text, &mut s).unwrap();
            assert!(s.fast, "{text}");
        }
        for text in [r#"{"a":1.5}"#, r#"{"a":-0.25,"b":123456789.123456}"#] {
            plan.scan(text, &mut s).unwrap();
            assert!(s.fast, "{text}");
        }
        for text in [
            r#"{"a":1e3}"#,
            r#"{"a":1.5E3}"#,
            r#"{"a":1234567890.1234567}"#,
            r#"{"a":"\n"}"#,
            r#"{"x":[1]}"#,
            r#"{"a":-0}"#,
        ] {
            plan.scan(text, &mut s).unwrap();
            assert!(!s.fast, "{text}");
        }
    }

    #[test]
    fn accepts_exactly_what_serde_accepts() {
        let (plan, _) = plan(&["a", "ts"]);
        let mut s = Scanned::default();
        for text in [
            "{",
            "{}}",
            "{,}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":falsey}"#,
            r#"{"a":truefalse}"#,
            r#"{"a":1 2}"#,
            r#"{a:1}"#,
            r#"{"a":'x'}"#,
            "{\"a\":\"x\ty\"}",
            "{\"a\":1}\u{c}",
            "{\u{c}\"a\":1}",
            r#"{"a":"x"  "b":2}"#,
            r#"{"a":1}{"#,
            r#"{"a":"\x"}"#,
            r#"{"a":[1,2],"b":{"c":[]}}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+5}"#,
            r#"{"a":-1.5e-5}"#,
            r#"{"a":00}"#,
            r#"{"a":-01}"#,
            r#"{"a":"\u12"}"#,
            r#"{"":""}"#,
        ] {
            let serde_ok =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_ok();
            assert_eq!(plan.scan(text, &mut s).is_ok(), serde_ok, "{text}");
        }
    }

    /// Checks that the scan accepts `text` exactly when serde accepts it as
    /// an object, and keeps the same values, whichever path reads it.
    fn check_against_serde(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let (plan, table) = plan(&["a", "b.c", "é"]);
        let mut s = Scanned::default();
        let mut by_serde = Scanned::default();
        let scanned = plan.scan(text, &mut s).map_err(|e| e.to_string());
        let expected = plan
            .scan_serde(text, &mut by_serde)
            .map_err(|e| e.to_string());
        proptest::prop_assert_eq!(&scanned, &expected, "{}", text);
        if scanned.is_ok() {
            proptest::prop_assert_eq!(plan.values(&s, text), plan.values(&by_serde, text));
            let (time, serde_time) = (json(plan.time(&s, text)), json(plan.time(&by_serde, text)));
            proptest::prop_assert_eq!(time, serde_time, "{}", text);
        }
        // Values agree with a full parse too (which refuses a few objects
        // that skipping accepts, like an out-of-range number in an unread
        // field: the line is still read, as before this fast path).
        let full = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text);
        if let (Ok(object), Ok(())) = (full, scanned) {
            let expected: Vec<Value> = table
                .paths()
                .iter()
                .map(|p| lookup_json(&object, p).map_or(Value::Null, value_from_json))
                .collect();
            proptest::prop_assert_eq!(plan.values(&s, text), expected, "{}", text);
            let time = json(plan.time(&s, text));
            proptest::prop_assert_eq!(time.as_ref(), object.get("ts"), "{}", text);
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_serde_on_token_soup(tokens in proptest::collection::vec(0..TOKENS.len(), 0..16)) {
            let text: String = std::iter::once("{")
                .chain(tokens.iter().map(|&i| TOKENS[i]))
                .collect();
            check_against_serde(&text)?;
        }

        /// Decimals of up to 15 digits: the fast path's float is serde's.
        #[test]
        fn floats_are_read_as_serde_reads_them(
            digits in 1u64..1_000_000_000_000_000,
            point in 1usize..15,
            negative: bool,
        ) {
            let digits = digits.to_string();
            let point = point.min(digits.len());
            let (int, fraction) = digits.split_at(digits.len() - point);
            let int = if int.is_empty() { "0" } else { int };
            let sign = if negative { "-" } else { "" };
            check_against_serde(&format!("{{\"a\":{sign}{int}.{fraction}}}"))?;
        }

        /// Mostly valid objects, some with one stray token inserted.
        #[test]
        fn agrees_with_serde_on_objects(
            pairs in proptest::collection::vec((0..KEYS.len(), 0..VALUES.len(), 0..3usize), 0..6),
            stray in proptest::option::of((0..TOKENS.len(), 0..64usize)),
        ) {
            let spaces = ["", " ", "\t\r\n "];
            let members: Vec<String> = pairs
                .iter()
                .map(|&(k, v, w)| format!("{}{}:{}{}", KEYS[k], spaces[w], spaces[w], VALUES[v]))
                .collect();
            let mut text = format!("{{{}}}", members.join(","));
            if let Some((token, at)) = stray {
                let at = (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                text.insert_str(at, TOKENS[token]);
            }
            check_against_serde(&text)?;
        }
    }

    const KEYS: &[&str] = &[
        "\"a\"",
        "\"b\"",
        "\"ts\"",
        "\"x\"",
        "\"é\"",
        "\"\\u0061\"",
        "\"a\\n\"",
    ];

    const VALUES: &[&str] = &[
        "42.5",
        "-0.0",
        "0.1",
        "-12.75",
        "123456789.123456",
        "1234567890.1234567",
        "0.30000000000000004",
        "9.999999999999999",
        "1.0",
        "0.000001",
        "00.5",
        "1.",
        "1.5.2",
        "0.1e1",
        "1.5E-3",
        "0",
        "1",
        "-7",
        "12",
        "123456789012345678",
        "1234567890123456789",
        "-0",
        "1.5",
        "1e3",
        "true",
        "false",
        "null",
        "\"x\"",
        "\"é ✓\"",
        "\"\\n\"",
        "\"\"",
        "[]",
        "{\"c\":1}",
        "[1,{\"c\":2}]",
        "\"1970-01-01T00:00:01Z\"",
        "-",
        "01",
    ];

    const TOKENS: &[&str] = &[
        "}", "{", "[", "]", ":", ",", " ", "\"a\"", "\"b\"", "\"c\"", "\"ts\"", "\"x\"", "\"\\n\"",
        "\"é\"", "0", "1", "-", "7", "12", ".5", "e3", "true", "false", "null", "\"", "\\",
    ];
}
