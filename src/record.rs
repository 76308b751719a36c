//! [`Record`]: the dynamic event that `cepheid run` decodes from JSON or CSV,
//! and the [`FieldTable`] that numbers the fields patterns read from it.

use std::borrow::Cow;
use std::sync::Arc;

use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::value::Value;

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
