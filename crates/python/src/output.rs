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

/// A table's column names and its columns, a list of cells each.
pub type Table<'py> = (Vec<String>, Vec<Bound<'py, PyList>>);

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
    columns: Vec<Vec<Bound<'py, PyAny>>>,
    rows: usize,
    path: String,
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

    fn set(&mut self, value: Bound<'py, PyAny>) {
        let at = match self.index.get(self.path.as_str()) {
            Some(&at) => at,
            None => {
                self.names.push(self.path.clone());
                self.index.insert(self.path.clone(), self.columns.len());
                self.columns.push(Vec::new());
                self.columns.len() - 1
            }
        };
        let column = &mut self.columns[at];
        while column.len() < self.rows {
            column.push(self.py.None().into_bound(self.py));
        }
        if column.len() == self.rows {
            column.push(value);
        }
    }

    /// `(names, columns)`: the column names and a list of cells each.
    pub fn finish(mut self) -> PyResult<Table<'py>> {
        let none = self.py.None().into_bound(self.py);
        let mut lists = Vec::with_capacity(self.columns.len());
        for column in &mut self.columns {
            column.resize(self.rows, none.clone());
            lists.push(PyList::new(self.py, column.iter())?);
        }
        Ok((self.names, lists))
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
            self.flat.set(obj);
            Ok(())
        }
    };
}

impl<'de> serde::de::Visitor<'de> for Field<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    cell!(visit_bool, bool);
    cell!(visit_i64, i64);
    cell!(visit_u64, u64);
    cell!(visit_f64, f64);
    cell!(visit_str, &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        let py = self.flat.py;
        self.flat.set(py.None().into_bound(py));
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let py = self.flat.py;
        let value = Obj { py }.visit_seq(seq)?;
        self.flat.set(value);
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.flat.path == "events" {
            let py = self.flat.py;
            let value = Obj { py }.visit_map(map)?;
            self.flat.set(value);
            return Ok(());
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
