//! [`Record`]: the dynamic event that `cepheid run` decodes from JSON or CSV,
//! and the [`FieldTable`] that numbers the fields patterns read from it.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use crate::persist::{Loaded, Saved};
use crate::value::{Value, ValueRef};

/// Interns the field paths that patterns use, for [`Record`]s: every path
/// gets the next id, and ids never change.
///
/// A `FieldTable` is a handle: clones share one table. The engine owns one
/// and a decoder is made from a clone of it, so there is one numbering of
/// fields: a pattern added after the decoder was made interns its fields in
/// the same table, and the decoder sees them (its [`len`](Self::len) check
/// is one atomic load per line; the lock is taken only when fields were
/// added).
///
/// ```
/// use cepheid_core::record::FieldTable;
/// use cepheid_core::FieldPath;
/// let table = FieldTable::new();
/// let handle = table.clone();
/// let id = table.intern(&FieldPath::parse("user.id"));
/// assert_eq!(handle.get(&FieldPath::parse("user.id")), Some(id));
/// assert_eq!(handle.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct FieldTable {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// How many paths are interned, stored after each is added (so a
    /// reader that sees `n` finds at least `n` paths under the lock).
    len: AtomicUsize,
    names: Mutex<Names>,
}

#[derive(Default)]
struct Names {
    paths: Vec<FieldPath>,
    ids: hashbrown::HashMap<FieldPath, FieldId>,
}

impl FieldTable {
    /// An empty table.
    pub fn new() -> FieldTable {
        FieldTable::default()
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        // Nothing panics while the lock is held but an allocation failure;
        // the table is consistent after every statement anyway.
        self.shared
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of `path`, added if new (every handle sees it).
    pub fn intern(&self, path: &FieldPath) -> FieldId {
        let mut names = self.names();
        if let Some(&id) = names.ids.get(path) {
            return id;
        }
        let id = FieldId::new(names.paths.len());
        names.paths.push(path.clone());
        names.ids.insert(path.clone(), id);
        self.shared.len.store(names.paths.len(), Ordering::Release);
        id
    }

    /// The id of `path`, if interned.
    pub fn get(&self, path: &FieldPath) -> Option<FieldId> {
        self.names().ids.get(path).copied()
    }

    /// All interned paths, indexed by id (a copy: the table may grow).
    pub fn paths(&self) -> Vec<FieldPath> {
        self.names().paths.clone()
    }

    /// Number of interned paths: one atomic load, so a decoder can check
    /// on every line whether fields were added since it last looked.
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Acquire)
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Are `self` and `other` handles to the same table?
    pub fn same_table(&self, other: &FieldTable) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for FieldTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldTable")
            .field("paths", &self.names().paths)
            .finish()
    }
}

impl FieldResolver for FieldTable {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
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
    /// Fields present as JSON objects or lists holding one (null in
    /// `values`); usually empty.
    objects: Box<[FieldId]>,
}

impl Record {
    /// A record from values indexed by field id and the original text.
    pub fn new(values: Vec<Value>, raw: Arc<str>) -> Record {
        Record {
            values,
            raw,
            objects: Box::default(),
        }
    }

    /// The record with `objects` marked as fields that are present but hold
    /// an object, or a list with an object in it at any depth (their values
    /// stay null): a `partition by` on one of them is an unusable key, not
    /// a missing one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cepheid_core::{Event, FieldId, Record, Value};
    /// let k = FieldId::from_index(0);
    /// let record = Record::new(vec![Value::Null], Arc::from(r#"{"k":{}}"#)).with_objects(vec![k]);
    /// assert!(record.field(k).is_null());
    /// assert!(record.field_is_object(k));
    /// ```
    pub fn with_objects(mut self, objects: Vec<FieldId>) -> Record {
        self.objects = objects.into_boxed_slice();
        self
    }

    /// The fields marked by [`with_objects`](Record::with_objects).
    pub fn objects(&self) -> &[FieldId] {
        &self.objects
    }

    /// The original text of the event.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The extracted values, indexed by field id.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Reads the fields of `paths` (a [`FieldTable`]'s, by id) that the
    /// record has no value for, those from the number of its values on,
    /// from its text, a JSON object as a decoder keeps it (a CSV row's is
    /// the object of the row): the record then reads as if it had been
    /// decoded with all of `paths`. A text that is not a JSON object has
    /// none of them. For an engine whose patterns changed while the record
    /// waited (`docs/dynamic-rules.md`).
    pub fn read_missing(&mut self, paths: &[FieldPath]) {
        let have = self.values.len();
        if have >= paths.len() {
            return;
        }
        let object =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&self.raw).ok();
        let mut objects = self.objects.to_vec();
        for (i, path) in paths.iter().enumerate().skip(have) {
            let found = object.as_ref().and_then(|o| lookup_json(o, path));
            self.values
                .push(found.and_then(json_value).unwrap_or(Value::Null));
            if found.is_some_and(holds_object) {
                objects.push(FieldId::new(i));
            }
        }
        if objects.len() != self.objects.len() {
            self.objects = objects.into_boxed_slice();
        }
    }
}

/// The value of `json`, or `None` when it is or holds an object (such a
/// field reads as null, and a record marks it: see
/// [`Record::with_objects`]).
pub fn json_value(json: &serde_json::Value) -> Option<Value> {
    Some(match json {
        serde_json::Value::Object(_) => return None,
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            // Above `i64::MAX` (u64 snowflake ids): exact, as its decimal
            // text; a float would make neighbours one key
            // (`docs/semantics.md`, "Exact keys").
            (None, Some(u)) => Value::Str(Arc::from(u.to_string())),
            _ => n.as_f64().map_or(Value::Null, Value::Float),
        },
        serde_json::Value::String(s) => Value::Str(Arc::from(s.as_str())),
        serde_json::Value::Array(items) => {
            Value::List(items.iter().map(json_value).collect::<Option<_>>()?)
        }
    })
}

/// Is `json` an object, or a list holding one at any depth? Such a field
/// reads as null and is marked in [`Record::objects`].
pub fn holds_object(json: &serde_json::Value) -> bool {
    match json {
        serde_json::Value::Object(_) => true,
        serde_json::Value::Array(items) => items.iter().any(holds_object),
        _ => false,
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

impl Event for Record {
    type Fields = FieldTable;

    /// Its text (with the `Arc`'s counts), its values' vector and what
    /// they hold, its object fields.
    fn heap_bytes(&self) -> usize {
        const COUNTS: usize = 2 * std::mem::size_of::<usize>();
        COUNTS
            + self.raw.len()
            + self.values.capacity() * std::mem::size_of::<Value>()
            + self.values.iter().map(Value::heap_bytes).sum::<usize>()
            + std::mem::size_of_val::<[FieldId]>(&self.objects)
    }

    #[inline]
    fn field(&self, id: FieldId) -> ValueRef<'_> {
        self.values
            .get(id.index())
            .map_or(ValueRef::Null, ValueRef::from)
    }

    fn field_owned(&self, id: FieldId) -> Value {
        self.values.get(id.index()).cloned().unwrap_or_default()
    }

    fn field_is_object(&self, id: FieldId) -> bool {
        self.objects.contains(&id)
    }
}

/// A record's serde has two forms.
///
/// In a format that describes itself for people (`is_human_readable`:
/// JSON), a record is its event as it was read: `serde_json` writes its
/// text as is (so an [`Output`](https://docs.rs/cepheid-engine) of records
/// is the line `cepheid run` prints), and reads any JSON value back as a
/// record holding that text and no values (decode it again, with a
/// `Decoder` over the patterns' field table, to read its fields). Writing
/// fails if the text is not JSON (a record made by hand).
///
/// In a compact format (`bincode`, `postcard`), a record is data: its
/// values by field id, its raw text and its object flags, exactly (so that
/// a record sent to another process, or kept in a snapshot, is the record
/// that was read: a CSV line cannot be decoded again without its header).
/// Values are tagged by kind, so such formats read them back (lists nested
/// at most 200 deep: a crafted input cannot overflow the stack); the ids
/// mean something only with the same [`FieldTable`] numbering (the same
/// patterns added in the same order).
///
/// ```
/// use std::sync::Arc;
/// use cepheid_core::{FieldId, Record, Value};
/// let record = Record::new(vec![Value::Int(1), Value::from("a")], Arc::from(r#"{"n":1}"#))
///     .with_objects(vec![FieldId::from_index(1)]);
/// // As data: everything comes back.
/// let bytes = postcard::to_allocvec(&record)?;
/// assert_eq!(postcard::from_bytes::<Record>(&bytes)?, record);
/// // As JSON: the event's text.
/// let text = serde_json::to_string(&record).unwrap();
/// assert_eq!(text, r#"{"n":1}"#);
/// assert_eq!(serde_json::from_str::<Record>(&text).unwrap().raw(), r#"{"n":1}"#);
/// # Ok::<(), postcard::Error>(())
/// ```
impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeStruct};
        if s.is_human_readable() {
            // The event as it was read, as the command's output shows it.
            let raw = serde_json::value::RawValue::from_string(self.raw.to_string())
                .map_err(|e| S::Error::custom(format!("a record's text is not JSON: {e}")))?;
            return raw.serialize(s);
        }
        let mut out = s.serialize_struct("Record", 3)?;
        out.serialize_field("values", &Saved(&self.values))?;
        out.serialize_field("raw", &*self.raw)?;
        let objects: Vec<u32> = self.objects.iter().map(|id| id.as_u32()).collect();
        out.serialize_field("objects", &objects)?;
        out.end()
    }
}

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The fields, as [`Record`]'s `Serialize` writes them.
        #[derive(serde::Deserialize)]
        #[serde(rename = "Record")]
        struct Repr {
            values: Loaded<Vec<Value>>,
            raw: Arc<str>,
            objects: Vec<u32>,
        }
        if d.is_human_readable() {
            let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
            return Ok(Record::new(Vec::new(), Arc::from(raw.get())));
        }
        let repr = Repr::deserialize(d)?;
        Ok(Record {
            values: repr.values.0,
            raw: repr.raw,
            objects: repr.objects.into_iter().map(FieldId::from_index).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_interns_once() {
        let table = FieldTable::new();
        let a = table.intern(&FieldPath::single("a"));
        let b = table.intern(&FieldPath::single("b"));
        assert_eq!(table.intern(&FieldPath::single("a")), a);
        assert_ne!(a, b);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn clones_share_one_numbering() {
        let table = FieldTable::new();
        let mut other = table.clone();
        let a = table.intern(&FieldPath::single("a"));
        assert_eq!(other.len(), 1);
        let b = other.resolve(&FieldPath::single("b")).unwrap();
        assert_eq!(table.get(&FieldPath::single("b")), Some(b));
        assert_eq!(
            table.paths(),
            [FieldPath::single("a"), FieldPath::single("b")]
        );
        assert_ne!(a, b);
        assert!(table.same_table(&other));
        assert!(!table.same_table(&FieldTable::new()));
    }

    #[test]
    fn out_of_range_fields_read_null() {
        let record = Record::new(vec![Value::Int(1)], Arc::from("{}"));
        assert_eq!(record.field(FieldId::new(0)), Value::Int(1));
        assert_eq!(record.field(FieldId::new(5)), Value::Null);
    }
}
