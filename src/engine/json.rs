//! Reading one JSON-lines event without building the whole object.
//!
//! A pattern set reads a handful of fields; an input line may carry many
//! more. [`JsonPlan`] lists the top-level keys that matter (the first
//! segment of every field path of the [`FieldTable`], of the time field, and
//! `$watermark`); [`JsonPlan::scan`] walks the object once with serde,
//! keeping the values of those keys and skipping every other value without
//! allocating (serde_json still checks that it is valid JSON, with its
//! nesting limit). Keys are compared without allocating, escaped or not.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::event::{FieldPath, FieldTable};
use crate::value::Value;

/// Where a path's value is found: which kept top-level key, then which
/// nested keys below it.
#[derive(Clone, Debug)]
struct Lookup {
    top: usize,
    rest: Vec<Arc<str>>,
}

/// What to keep from each object, for one field table and time field.
#[derive(Clone, Debug)]
pub(crate) struct JsonPlan {
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
pub(crate) struct Scanned {
    found: Vec<Option<serde_json::Value>>,
}

impl JsonPlan {
    /// The plan for extracting every path of `table` and `time_field`.
    pub fn new(table: &FieldTable, time_field: &FieldPath) -> JsonPlan {
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
        let fields = table.paths().iter().map(&mut lookup).collect();
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

    /// The `$watermark` value, when the object had one.
    pub fn watermark<'a>(&self, scanned: &'a Scanned) -> Option<&'a serde_json::Value> {
        scanned.found[self.watermark].as_ref()
    }

    /// The time field's value, when present.
    pub fn time<'a>(&self, scanned: &'a Scanned) -> Option<&'a serde_json::Value> {
        follow(scanned, &self.time)
    }

    /// The values of the table's fields, indexed by field id (null where
    /// absent).
    pub fn values(&self, scanned: &Scanned) -> Vec<Value> {
        self.fields
            .iter()
            .map(|l| follow(scanned, l).map_or(Value::Null, Value::from_json))
            .collect()
    }
}

fn follow<'a>(scanned: &'a Scanned, lookup: &Lookup) -> Option<&'a serde_json::Value> {
    let mut current = scanned.found.get(lookup.top)?.as_ref()?;
    for key in &lookup.rest {
        current = current.as_object()?.get(&**key)?;
    }
    Some(current)
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
    use crate::event::lookup_json;

    fn plan(paths: &[&str]) -> (JsonPlan, FieldTable) {
        let mut table = FieldTable::new();
        for p in paths {
            table.intern(&FieldPath::parse(p));
        }
        (JsonPlan::new(&table, &FieldPath::single("ts")), table)
    }

    #[test]
    fn keeps_wanted_fields_and_skips_the_rest() {
        let (plan, _) = plan(&["user.id", "type", "missing", "user.name"]);
        let mut s = Scanned::default();
        let text = r#"{"big": {"a": [1, 2, {"x": "y"}]}, "user": {"id": 7, "name": "n"},
                       "type": "login", "ts": 5, "type": "again"}"#;
        plan.scan(text, &mut s).unwrap();
        assert_eq!(
            plan.values(&s),
            vec![
                Value::Int(7),
                Value::from("again"),
                Value::Null,
                Value::from("n")
            ]
        );
        assert_eq!(plan.time(&s), Some(&serde_json::json!(5)));
        assert!(plan.watermark(&s).is_none());
    }

    #[test]
    fn escaped_keys_match() {
        let (plan, _) = plan(&["user-agent"]);
        let mut s = Scanned::default();
        plan.scan(r#"{"user\u002dagent": "curl", "ts": 1}"#, &mut s)
            .unwrap();
        assert_eq!(plan.values(&s), vec![Value::from("curl")]);
    }

    #[test]
    fn watermarks_and_errors() {
        let (plan, _) = plan(&["a"]);
        let mut s = Scanned::default();
        plan.scan(r#"{"$watermark": 9}"#, &mut s).unwrap();
        assert_eq!(plan.watermark(&s), Some(&serde_json::json!(9)));
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
        ] {
            plan.scan(text, &mut s).unwrap();
            let full: serde_json::Value = serde_json::from_str(text).unwrap();
            let object = full.as_object().unwrap();
            let expected: Vec<Value> = table
                .paths()
                .iter()
                .map(|p| lookup_json(object, p).map_or(Value::Null, Value::from_json))
                .collect();
            assert_eq!(plan.values(&s), expected, "{text}");
            assert_eq!(plan.time(&s), object.get("ts"), "{text}");
        }
    }
}
