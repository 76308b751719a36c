//! What the engine gives, kept as the JSON lines `cepheid run` writes
//! (`cepheid_runtime::jsonl::Formatter`) until Python drains them, then
//! made Python objects by `json.loads`, once for a whole batch.

use cepheid_engine::{Decision, MatchRef, Record, Sink, Timestamp};
use cepheid_runtime::jsonl::Formatter;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use pyo3::IntoPyObjectExt;

/// JSON lines, each ending with `\n` (a record holds no raw newline: the
/// formatter escapes strings, and an event's text is one line).
#[derive(Default)]
pub struct Lines {
    bytes: Vec<u8>,
    count: usize,
}

impl Lines {
    fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// The lines as a list of dicts (`json.loads` of them as one array).
    pub fn to_dicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        if self.count == 0 {
            return Ok(PyList::empty(py));
        }
        let mut array = Vec::with_capacity(self.bytes.len() + 2);
        array.push(b'[');
        array.extend_from_slice(&self.bytes[..self.bytes.len() - 1]);
        array.push(b']');
        for b in &mut array {
            if *b == b'\n' {
                *b = b',';
            }
        }
        let loads = py.import("json")?.getattr("loads")?;
        let bytes = PyBytes::new(py, &array);
        drop(array);
        // The cyclic garbage collector off while `json.loads` makes the
        // records: it would run again and again over the many new dicts
        // and lists, none of which can be garbage (four times the time of
        // the loads itself for 400,000 records; README.md, "Performance").
        let gc = py.import("gc")?;
        let was_on = self.count >= 1024 && gc.call_method0("isenabled")?.is_truthy()?;
        if was_on {
            gc.call_method0("disable")?;
        }
        let records = loads.call1((bytes,));
        if was_on {
            gc.call_method0("enable")?;
        }
        Ok(records?.cast_into::<PyList>()?)
    }

    /// The lines as a list of `str`, without their newlines.
    pub fn to_strings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let text = std::str::from_utf8(&self.bytes).unwrap_or_default();
        let lines = text.lines().map(|l| PyString::new(py, l));
        PyList::new(py, lines)
    }
}

/// The engine's sink: alerts (matches, timeouts, late events) and
/// decisions in one sequence, in the order the engine gives them; a
/// shadow pattern's records apart (`cepheid run --shadow-output`).
pub struct Collected {
    format: Formatter,
    pub main: Lines,
    pub shadow: Lines,
    /// Are late events' records kept (`late=True`)?
    pub late: bool,
}

impl Collected {
    pub fn new(late: bool) -> Collected {
        Collected {
            format: Formatter::default(),
            main: Lines::default(),
            shadow: Lines::default(),
            late,
        }
    }

    /// `decisions` as their records.
    pub fn decisions(&mut self, decisions: &[Decision]) -> Lines {
        let mut lines = Lines::default();
        for d in decisions {
            lines.push(self.format.decision(d));
        }
        lines
    }
}

impl Sink<Record> for Collected {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        let line = self.format.record("match", m, None);
        match m.shadow() {
            true => self.shadow.push(line),
            false => self.main.push(line),
        }
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        let line = self.format.record("timeout", m, Some(expired_at));
        match m.shadow() {
            true => self.shadow.push(line),
            false => self.main.push(line),
        }
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        if self.late {
            let line = self.format.late(event);
            self.main.push(line);
        }
    }

    fn on_decision(&mut self, decision: &Decision) {
        let line = self.format.decision(decision);
        self.main.push(line);
    }
}

/// A table's column names and its columns: the bytes of `int64`s, or a
/// list of cells.
pub type Table<'py> = (Vec<String>, Vec<Bound<'py, PyAny>>);

/// Records as the columns of a table, each record a row flattened as
/// `cepheid.flatten` flattens it: a nested object's fields are columns
/// `outer.inner` (an empty one adds none), except an alert's `events`,
/// kept whole; lists stay values. Columns in the order they first appear,
/// a record without one `None` there. Made straight from the JSON lines
/// (no dict per record, no second walk to flatten them): `frames()`'s
/// DataFrames from `backtest()`, issue 64's benchmark.
pub struct Flat<'py> {
    py: Python<'py>,
    names: Vec<String>,
    index: hashbrown::HashMap<String, usize>,
    columns: Vec<Column<'py>>,
    rows: usize,
    path: String,
    /// Short texts made Python strings once (a record's `kind`,
    /// `pattern`, `scene`, `outcome` repeat over every row).
    texts: hashbrown::HashMap<String, Bound<'py, PyString>>,
}

/// A column's cells: integers as long as every row so far has one (a
/// NumPy array to pandas, not a million Python ints), else objects.
enum Column<'py> {
    Ints(Vec<i64>),
    Objects(Vec<Bound<'py, PyAny>>),
}

/// A cell as it comes.
enum Cell<'a, 'py> {
    Int(i64),
    Text(&'a str),
    Object(Bound<'py, PyAny>),
}

impl<'py> Flat<'py> {
    pub fn new(py: Python<'py>) -> Flat<'py> {
        Flat {
            py,
            names: Vec::new(),
            index: hashbrown::HashMap::new(),
            columns: Vec::new(),
            rows: 0,
            path: String::new(),
            texts: hashbrown::HashMap::new(),
        }
    }

    /// Adds one record (a JSON object) as a row.
    pub fn push(&mut self, line: &[u8]) -> PyResult<()> {
        let mut de = serde_json::Deserializer::from_slice(line);
        serde::de::DeserializeSeed::deserialize(Field { flat: self }, &mut de)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("a record: {e}")))?;
        self.rows += 1;
        Ok(())
    }

    fn set(&mut self, value: Cell<'_, 'py>) -> PyResult<()> {
        let py = self.py;
        let at = match self.index.get(self.path.as_str()) {
            Some(&at) => at,
            None => {
                self.names.push(self.path.clone());
                self.index.insert(self.path.clone(), self.columns.len());
                self.columns.push(match self.rows {
                    0 => Column::Ints(Vec::new()),
                    _ => Column::Objects(Vec::new()),
                });
                self.columns.len() - 1
            }
        };
        let rows = self.rows;
        let column = &mut self.columns[at];
        if let (Column::Ints(ints), Cell::Int(i)) = (&mut *column, &value) {
            if ints.len() == rows {
                ints.push(*i);
                return Ok(());
            }
            // (a row without one before: objects from here, `None` there)
        }
        if let Column::Ints(ints) = column {
            let mut objects = Vec::with_capacity(ints.len() + 1);
            for &i in ints.iter() {
                objects.push(i.into_bound_py_any(py)?);
            }
            *column = Column::Objects(objects);
        }
        let Column::Objects(objects) = column else {
            return Ok(());
        };
        while objects.len() < rows {
            objects.push(py.None().into_bound(py));
        }
        if objects.len() == rows {
            let object = match value {
                Cell::Int(i) => i.into_bound_py_any(py)?,
                Cell::Object(o) => o,
                Cell::Text(t) if t.len() <= 40 => match self.texts.get(t) {
                    Some(s) => s.clone().into_any(),
                    None => {
                        let s = PyString::new(py, t);
                        if self.texts.len() < 4096 {
                            self.texts.insert(t.to_string(), s.clone());
                        }
                        s.into_any()
                    }
                },
                Cell::Text(t) => PyString::new(py, t).into_any(),
            };
            objects.push(object);
        }
        Ok(())
    }

    /// `(names, columns)`: the column names and each column, the bytes of
    /// its `int64`s or a list of its cells.
    pub fn finish(mut self) -> PyResult<Table<'py>> {
        let py = self.py;
        let mut out = Vec::with_capacity(self.columns.len());
        for column in &mut self.columns {
            if let Column::Ints(ints) = column {
                if ints.len() == self.rows {
                    let mut bytes = Vec::with_capacity(ints.len() * 8);
                    for i in ints.iter() {
                        bytes.extend_from_slice(&i.to_le_bytes());
                    }
                    out.push(PyBytes::new(py, &bytes).into_any());
                    continue;
                }
                let mut objects = Vec::with_capacity(self.rows);
                for &i in ints.iter() {
                    objects.push(i.into_bound_py_any(py)?);
                }
                *column = Column::Objects(objects);
            }
            if let Column::Objects(objects) = column {
                objects.resize(self.rows, py.None().into_bound(py));
                out.push(PyList::new(py, objects.iter())?.into_any());
            }
        }
        Ok((self.names, out))
    }
}

/// A value at [`Flat::path`]: an object's fields flattened under it (but
/// `events`'s), anything else a cell.
struct Field<'a, 'py> {
    flat: &'a mut Flat<'py>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Field<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! cell {
    ($name:ident, $t:ty) => {
        fn $name<E: serde::de::Error>(self, v: $t) -> Result<(), E> {
            let obj = v.into_bound_py_any(self.flat.py).map_err(E::custom)?;
            self.flat.set(Cell::Object(obj)).map_err(E::custom)
        }
    };
}

impl<'de> serde::de::Visitor<'de> for Field<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    cell!(visit_bool, bool);
    cell!(visit_f64, f64);
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.flat.set(Cell::Int(v)).map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.flat.set(Cell::Int(i)).map_err(E::custom),
            Err(_) => {
                let obj = v.into_bound_py_any(self.flat.py).map_err(E::custom)?;
                self.flat.set(Cell::Object(obj)).map_err(E::custom)
            }
        }
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.flat.set(Cell::Text(v)).map_err(E::custom)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        let py = self.flat.py;
        self.flat
            .set(Cell::Object(py.None().into_bound(py)))
            .map_err(E::custom)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let py = self.flat.py;
        let value = Obj { py }.visit_seq(seq)?;
        self.flat
            .set(Cell::Object(value))
            .map_err(serde::de::Error::custom)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.flat.path == "events" {
            let py = self.flat.py;
            let value = Obj { py }.visit_map(map)?;
            return self
                .flat
                .set(Cell::Object(value))
                .map_err(serde::de::Error::custom);
        }
        let outer = self.flat.path.len();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if outer > 0 {
                self.flat.path.push('.');
            }
            self.flat.path.push_str(&key);
            map.next_value_seed(Field {
                flat: &mut *self.flat,
            })?;
            self.flat.path.truncate(outer);
        }
        Ok(())
    }
}

/// A JSON value as the Python object `json.loads` makes of it.
#[derive(Clone, Copy)]
struct Obj<'py> {
    py: Python<'py>,
}

impl<'de, 'py> serde::de::DeserializeSeed<'de> for Obj<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! obj {
    ($name:ident, $t:ty) => {
        fn $name<E: serde::de::Error>(self, v: $t) -> Result<Self::Value, E> {
            v.into_bound_py_any(self.py).map_err(E::custom)
        }
    };
}

impl<'de, 'py> serde::de::Visitor<'de> for Obj<'py> {
    type Value = Bound<'py, PyAny>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    obj!(visit_bool, bool);
    obj!(visit_i64, i64);
    obj!(visit_u64, u64);
    obj!(visit_f64, f64);
    obj!(visit_str, &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.py);
        while let Some(item) = seq.next_element_seed(self)? {
            list.append(item).map_err(serde::de::Error::custom)?;
        }
        Ok(list.into_any())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = pyo3::types::PyDict::new(self.py);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = map.next_value_seed(self)?;
            dict.set_item(&*key, value)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(dict.into_any())
    }
}

impl Lines {
    /// The lines split by kind into alerts (matches, timeouts), decisions
    /// and late events, each as [`Flat`] columns.
    pub fn to_frames<'py>(&self, py: Python<'py>) -> PyResult<Vec<Table<'py>>> {
        let mut alerts = Flat::new(py);
        let mut decisions = Flat::new(py);
        let mut late = Flat::new(py);
        for line in self.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if line.starts_with(br#"{"kind":"decision""#) {
                decisions.push(line)?;
            } else if line.starts_with(br#"{"kind":"late""#) {
                late.push(line)?;
            } else {
                alerts.push(line)?;
            }
        }
        Ok(vec![alerts.finish()?, decisions.finish()?, late.finish()?])
    }
}
