//! Python values into the engine's: an event (a `dict`) into the JSON
//! text `cepheid run` would read, which the engine's own decoder then
//! decodes; a position into a [`Value`]; times into milliseconds. Every
//! refusal names what it refuses (`event field `a.b[2]``).
//!
//! Why text and the decoder rather than a record built here: the record
//! of an event is its fields *and* its text (an alert's `events` hold
//! each event as it was read), and the decoder is what gives the fields
//! their meaning in every other input (dotted paths into objects, RFC
//! 3339 times, `$watermark`): one decoder, one meaning. The text is
//! written here, in Rust, rather than by `json.dumps`, so that a value
//! JSON cannot hold (a set, NaN, an integer past 64 bits) is refused with
//! the field's name; measured, writing it here costs less than
//! `json.dumps` (`README.md`, "Performance").

use cepheid_core::value::json::{push_int, push_json_string, push_json_value};
use cepheid_core::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// How deep an event's objects and lists may nest: deeper is refused
/// before the recursion could exhaust the stack (a dict that holds
/// itself). The decoder reads no deeper than this either.
const MAX_DEPTH: usize = 64;

/// Why a value cannot be written, with the path to it (innermost first,
/// as the error comes back up).
struct Bad {
    type_error: bool,
    message: String,
    path: Vec<Segment>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Bad {
    fn kind(message: impl Into<String>) -> Bad {
        Bad {
            type_error: true,
            message: message.into(),
            path: Vec::new(),
        }
    }

    fn value(message: impl Into<String>) -> Bad {
        Bad {
            type_error: false,
            message: message.into(),
            path: Vec::new(),
        }
    }

    fn at(mut self, segment: Segment) -> Bad {
        self.path.push(segment);
        self
    }

    /// The Python exception: `what field `a.b[2]`: message`.
    fn into_err(self, what: &str) -> PyErr {
        self.into_err_with(what, " field ")
    }

    /// The Python exception: `what` then `between` and the path, if any.
    fn into_err_with(self, what: &str, between: &str) -> PyErr {
        let mut path = String::new();
        // (a path past 8 steps, a dict that holds itself, is cut)
        let cut = self.path.len() > 8;
        for segment in self.path.iter().rev().take(8) {
            match segment {
                Segment::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if cut {
            path.push_str("...");
        }
        let message = match path.is_empty() {
            true => format!("{what}: {}", self.message),
            false => format!("{what}{between}`{path}`: {}", self.message),
        };
        match self.type_error {
            true => PyTypeError::new_err(message),
            false => PyValueError::new_err(message),
        }
    }
}

/// The name of `value`'s type, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Writes `event`, which must be a `dict` with string keys, into `out` as
/// one JSON object in the form of `json.dumps(event, ensure_ascii=False)`
/// (`", "` and `": "` between items): a line `json.dumps` wrote, read with
/// `json.loads` and written again here, is the same text. Refuses (with
/// the field's name) what JSON cannot hold.
pub fn event_json(event: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    out.clear();
    let Ok(dict) = event.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "an event must be a dict, not {}",
            type_name(event)
        )));
    };
    write_dict(dict, out, 0).map_err(|bad| bad.into_err("event"))
}

/// Writes one cell of a table's column (`crate::columns`) as the row path
/// writes a dict's value; `Ok(false)`, writing nothing, for a missing one
/// (`None`, a float NaN): its field is left out of the event. A value JSON
/// cannot hold is an error naming the column and the row (0-based).
pub fn cell_json(
    cell: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
    column: &str,
    row: usize,
) -> PyResult<bool> {
    if cell.is_none() {
        return Ok(false);
    }
    if let Ok(f) = cell.cast::<PyFloat>() {
        if f.value().is_nan() {
            return Ok(false);
        }
    }
    write_value(cell, out, 0)
        .map(|()| true)
        .map_err(|bad| bad.into_err_with(&format!("column `{column}`, row {row}"), ", field "))
}

fn write_dict(dict: &Bound<'_, PyDict>, out: &mut Vec<u8>, depth: usize) -> Result<(), Bad> {
    if depth >= MAX_DEPTH {
        return Err(Bad::value(format!(
            "nested deeper than {MAX_DEPTH} levels (a dict or list that holds itself?)"
        )));
    }
    out.push(b'{');
    for (i, (key, value)) in dict.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let Ok(key) = key.cast::<PyString>() else {
            let shown = key.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(Bad::kind(format!(
                "its key {shown} ({}) is not a string: keys must be strings",
                type_name(&key)
            )));
        };
        let key = key
            .to_str()
            .map_err(|_| Bad::value("a key is not valid Unicode (a lone surrogate)"))?;
        push_json_string(out, key);
        out.extend_from_slice(b": ");
        write_value(&value, out, depth + 1).map_err(|bad| bad.at(Segment::Key(key.to_string())))?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> Result<(), Bad> {
    if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = value.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if value.is_instance_of::<PyInt>() {
        push_int(out, int(value)?);
    } else if let Ok(f) = value.cast::<PyFloat>() {
        push_json_value(out, &Value::Float(float(f.value())?));
    } else if let Ok(s) = value.cast::<PyString>() {
        let s = s
            .to_str()
            .map_err(|_| Bad::value("not valid Unicode (a lone surrogate)"))?;
        push_json_string(out, s);
    } else if let Ok(dict) = value.cast::<PyDict>() {
        write_dict(dict, out, depth)?;
    } else if let Ok(list) = value.cast::<PyList>() {
        write_items(list.iter(), out, depth)?;
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        write_items(tuple.iter(), out, depth)?;
    } else if let Some(plain) = numpy_scalar(value) {
        write_value(&plain, out, depth)?;
    } else {
        return Err(Bad::kind(format!(
            "a {} is not a JSON value (None, bool, int, float, str, list, tuple or dict)",
            type_name(value)
        )));
    }
    Ok(())
}

fn write_items<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Bad> {
    if depth >= MAX_DEPTH {
        return Err(Bad::value(format!(
            "nested deeper than {MAX_DEPTH} levels (a dict or list that holds itself?)"
        )));
    }
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_value(&item, out, depth + 1).map_err(|bad| bad.at(Segment::Index(i)))?;
    }
    out.push(b']');
    Ok(())
}

/// A Python `int` as the engine's 64-bit integer.
fn int(value: &Bound<'_, PyAny>) -> Result<i64, Bad> {
    value.extract::<i64>().map_err(|_| {
        let shown = value.str().map(|s| s.to_string()).unwrap_or_default();
        let shown = match shown.len() > 40 {
            true => format!(
                "an integer of {} digits",
                shown.trim_start_matches('-').len()
            ),
            false => shown,
        };
        Bad::value(format!(
            "{shown} does not fit in 64 bits (the engine's integers are from -2**63 to 2**63-1)"
        ))
    })
}

/// A float JSON can hold: finite.
fn float(f: f64) -> Result<f64, Bad> {
    match f.is_finite() {
        true => Ok(f),
        false => Err(Bad::value(format!(
            "{} is not a JSON number (a missing value is None)",
            if f.is_nan() {
                "nan".to_string()
            } else {
                format!("{f}")
            }
        ))),
    }
}

/// A NumPy scalar (`numpy.int64`, `numpy.bool_`, `numpy.str_`: what a
/// DataFrame's rows hold) as the plain Python value its `item()` gives.
fn numpy_scalar<'py>(value: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let module = value.get_type().module().ok()?;
    if module.to_str().ok()? != "numpy" {
        return None;
    }
    let plain = value.call_method0("item").ok()?;
    // (an `item()` that gives another NumPy value would loop)
    let again = plain.get_type().module().ok()?;
    (again.to_str().ok()? != "numpy").then_some(plain)
}

/// An event's input position (`position=`): a JSON scalar or a list of
/// them, as [`Value`]. `None` for Python's `None` (no position given).
pub fn position(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Value>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => plain_value(v, 0)
            .map(Some)
            .map_err(|bad| bad.into_err("position")),
    }
}

/// A value of the engine's (a list entry, a position): no objects.
pub fn value(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    plain_value(v, 0).map_err(|bad| bad.into_err(what))
}

fn plain_value(v: &Bound<'_, PyAny>, depth: usize) -> Result<Value, Bad> {
    if depth >= MAX_DEPTH {
        return Err(Bad::value(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if v.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = v.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if v.is_instance_of::<PyInt>() {
        Ok(Value::Int(int(v)?))
    } else if let Ok(f) = v.cast::<PyFloat>() {
        Ok(Value::Float(float(f.value())?))
    } else if let Ok(s) = v.cast::<PyString>() {
        let s = s
            .to_str()
            .map_err(|_| Bad::value("not valid Unicode (a lone surrogate)"))?;
        Ok(Value::from(s))
    } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in v
            .try_iter()
            .map_err(|_| Bad::kind("not iterable"))?
            .enumerate()
        {
            let item = item.map_err(|_| Bad::kind("not iterable"))?;
            items.push(plain_value(&item, depth + 1).map_err(|bad| bad.at(Segment::Index(i)))?);
        }
        Ok(Value::List(items.into()))
    } else if let Some(plain) = numpy_scalar(v) {
        plain_value(&plain, depth)
    } else {
        Err(Bad::kind(format!(
            "a {} is not a value of the engine (None, bool, int, float, str or a list of them)",
            type_name(v)
        )))
    }
}

/// A time in milliseconds (`ts=`, `now=`, `watermark(t)`): an `int` (not
/// a `bool`) within 64 bits.
pub fn millis(v: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() && numpy_scalar(v).is_none() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int (milliseconds), not {}",
            type_name(v)
        )));
    }
    let v = numpy_scalar(v).unwrap_or_else(|| v.clone());
    if !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int (milliseconds), not {}",
            type_name(&v)
        )));
    }
    int(&v).map_err(|bad| bad.into_err(what))
}
