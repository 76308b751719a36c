//! Events: what patterns match, and how conditions read their fields.
//!
//! The matcher is generic over the event type `E: Event`. Field names are
//! resolved **once**, when a pattern is compiled, through a
//! [`FieldResolver`] that turns a [`FieldPath`] into a small integer
//! [`FieldId`]; at run time a condition reads `event.field(id)`, with no
//! string hashing per event.
//!
//! Two kinds of events are provided for:
//! - [`Record`], a dynamic record (what `cepheid run` builds from JSON or CSV):
//!   its fields live in a vector indexed by the ids of a shared
//!   [`FieldTable`], next to the original text of the event for output.
//! - A user's own struct: implement [`Event`] for it and give the pattern
//!   compiler a resolver for its field names, e.g. a [`StaticFields`] list.
//!
//! ```
//! use std::borrow::Cow;
//! use cepheid::event::{Event, FieldId, FieldPath, FieldResolver, StaticFields};
//! use cepheid::Value;
//!
//! struct Login { user: u64, ok: bool }
//! impl Event for Login {
//!     fn field(&self, id: FieldId) -> Cow<'_, Value> {
//!         Cow::Owned(match id.index() {
//!             0 => Value::from(self.user as i64),
//!             1 => Value::from(self.ok),
//!             _ => Value::Null,
//!         })
//!     }
//! }
//! let mut fields = StaticFields::new(&["user", "ok"]);
//! assert_eq!(fields.resolve(&FieldPath::parse("ok")).unwrap().index(), 1);
//! assert!(fields.resolve(&FieldPath::parse("nope")).is_err());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::value::Value;

/// Event time (or any integer clock), in milliseconds.
pub type Timestamp = i64;

/// A field resolved by a [`FieldResolver`]: an index, cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// Makes an id from an index.
    pub fn new(index: usize) -> FieldId {
        FieldId(u32::try_from(index).expect("more than 2^32 fields"))
    }

    /// The index this id stands for.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A field name as written in a pattern: one or more segments, `user.id` is
/// `["user", "id"]`. For a [`Record`] a path names a (possibly nested) field
/// of the input object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<Arc<str>>);

impl FieldPath {
    /// Splits `a.b.c` at dots (no backquote handling: this is for code, the
    /// pattern language has its own syntax for odd names).
    pub fn parse(dotted: &str) -> FieldPath {
        FieldPath(dotted.split('.').map(Arc::from).collect())
    }

    /// A path of one segment.
    pub fn single(name: &str) -> FieldPath {
        FieldPath(vec![Arc::from(name)])
    }

    /// The segments.
    pub fn segments(&self) -> &[Arc<str>] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(seg)?;
        }
        Ok(())
    }
}

/// Something a condition can be evaluated against.
pub trait Event {
    /// The value of a field resolved earlier by the resolver this pattern was
    /// compiled with; `Value::Null` when the event does not have it.
    fn field(&self, id: FieldId) -> Cow<'_, Value>;
}

/// Turns field names into ids when a pattern is compiled.
pub trait FieldResolver {
    /// The id of `path`, or a message saying why the event type has no such
    /// field (reported as a pattern compile error).
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String>;
}

/// A fixed list of field names for a typed event: `resolve("x")` is the
/// position of `"x"` in the list; dotted names are matched as written.
#[derive(Clone, Debug)]
pub struct StaticFields {
    names: Vec<String>,
}

impl StaticFields {
    /// A resolver over these names, in this order.
    pub fn new(names: &[&str]) -> StaticFields {
        StaticFields {
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl FieldResolver for StaticFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String> {
        let dotted = path.to_string();
        self.names
            .iter()
            .position(|n| *n == dotted)
            .map(FieldId::new)
            .ok_or_else(|| format!("the event type has no field `{dotted}`"))
    }
}

/// Interns the field paths that patterns use, for [`Record`]s: every path
/// gets the next id. Shared by all patterns of an engine, so that one record
/// serves them all.
#[derive(Clone, Debug, Default)]
pub struct FieldTable {
    paths: Vec<FieldPath>,
    ids: hashbrown::HashMap<FieldPath, FieldId>,
}

impl FieldTable {
    /// An empty table.
    pub fn new() -> FieldTable {
        FieldTable::default()
    }

    /// The id of `path`, added if new.
    pub fn intern(&mut self, path: &FieldPath) -> FieldId {
        if let Some(&id) = self.ids.get(path) {
            return id;
        }
        let id = FieldId::new(self.paths.len());
        self.paths.push(path.clone());
        self.ids.insert(path.clone(), id);
        id
    }

    /// The id of `path`, if interned.
    pub fn get(&self, path: &FieldPath) -> Option<FieldId> {
        self.ids.get(path).copied()
    }

    /// All interned paths, indexed by id.
    pub fn paths(&self) -> &[FieldPath] {
        &self.paths
    }

    /// Number of interned paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

impl FieldResolver for FieldTable {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String> {
        Ok(self.intern(path))
    }
}

/// A dynamic event: the values of the fields some pattern uses, indexed by
/// the [`FieldId`]s of a [`FieldTable`], plus the event's original text
/// (reproduced as-is in output).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    values: Vec<Value>,
    raw: Arc<str>,
}

impl Record {
    /// A record from values indexed by field id and the original text.
    pub fn new(values: Vec<Value>, raw: Arc<str>) -> Record {
        Record { values, raw }
    }

    /// Builds a record from a JSON object, extracting every path of `table`.
    /// `raw` is the text the object was read from.
    pub fn from_json_object(
        table: &FieldTable,
        object: &serde_json::Map<String, serde_json::Value>,
        raw: Arc<str>,
    ) -> Record {
        let values = table
            .paths()
            .iter()
            .map(|path| lookup_json(object, path).map_or(Value::Null, Value::from_json))
            .collect();
        Record { values, raw }
    }

    /// The original text of the event.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The extracted values, indexed by field id.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

impl Event for Record {
    fn field(&self, id: FieldId) -> Cow<'_, Value> {
        match self.values.get(id.index()) {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(Value::Null),
        }
    }
}

/// Follows `path` into nested JSON objects.
pub fn lookup_json<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    path: &FieldPath,
) -> Option<&'a serde_json::Value> {
    let (first, rest) = path.segments().split_first()?;
    let mut current = object.get(&**first)?;
    for seg in rest {
        current = current.as_object()?.get(&**seg)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_reads_nested_fields() {
        let mut table = FieldTable::new();
        let id = table.intern(&FieldPath::parse("user.id"));
        let missing = table.intern(&FieldPath::parse("nope"));
        let text = r#"{"user":{"id":7},"ts":1}"#;
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let record = Record::from_json_object(&table, json.as_object().unwrap(), Arc::from(text));
        assert_eq!(*record.field(id), Value::Int(7));
        assert_eq!(*record.field(missing), Value::Null);
        assert_eq!(record.raw(), text);
    }

    #[test]
    fn table_interns_once() {
        let mut table = FieldTable::new();
        let a = table.intern(&FieldPath::single("a"));
        let b = table.intern(&FieldPath::single("b"));
        assert_eq!(table.intern(&FieldPath::single("a")), a);
        assert_ne!(a, b);
        assert_eq!(table.len(), 2);
    }
}
