//! `cepheid.why`: the rule lab's `why` (`cepheid why RULES KEY --events
//! FILE --json`, `cepheid_lab::why`) from Python, its report as one JSON
//! document; and the events of a list of dicts or of a table's columns as
//! JSON lines, the text the engine would read (for the lab, which reads
//! its events from a file).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_lab::{ErrorKind, Events};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::columns::Table;
use crate::convert;

/// The lab's `why` over the JSON-lines file `events` with the rules at
/// `rules` (a file or folder): its JSON document as text. What the lab
/// tells (the rules' diagnostics, lines left out) is in the error's
/// message when it fails.
#[pyfunction]
#[pyo3(signature = (rules, key, events, *, time_field="ts", max_delay_ms=0, no_events=false,
                    from_ms=None, to_ms=None, patterns=None))]
#[allow(clippy::too_many_arguments)]
pub fn why_json(
    py: Python<'_>,
    rules: PathBuf,
    key: &str,
    events: PathBuf,
    time_field: &str,
    max_delay_ms: u64,
    no_events: bool,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    patterns: Option<Vec<String>>,
) -> PyResult<String> {
    let told = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut source = Events::new(events);
    source.time_field = time_field.to_string();
    source.max_delay = Duration::from_millis(max_delay_ms);
    let sink = told.clone();
    source.tell = Arc::new(move |line: &str| {
        if let Ok(mut lines) = sink.lock() {
            lines.push(line.to_string());
        }
    });
    let mut options = cepheid_lab::why::Options::new(rules, key, source);
    options.no_events = no_events;
    options.from = from_ms;
    options.to = to_ms;
    options.patterns = patterns.unwrap_or_default();
    let result = py.detach(|| cepheid_lab::why::run(&options).map(|why| why.json()));
    result.map_err(|e| {
        let mut message = e.to_string();
        if let Ok(lines) = told.lock() {
            for line in lines.iter() {
                message.push('\n');
                message.push_str(line.trim_end());
            }
        }
        match e.kind() {
            ErrorKind::Io => PyOSError::new_err(message),
            _ => PyValueError::new_err(message),
        }
    })
}

/// The events of an iterable of dicts as JSON lines (each the text
/// `push_many` decodes), or with `rows`, of a table's columns as
/// `push_columns` takes them.
#[pyfunction]
#[pyo3(signature = (events, rows=None))]
pub fn events_jsonl<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    rows: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    let mut one = Vec::new();
    match rows {
        Some(rows) => {
            let table = Table::new(events, rows)?;
            for row in 0..table.rows() {
                table.row_json(row, &mut one)?;
                out.extend_from_slice(&one);
                out.push(b'\n');
            }
        }
        None => {
            let iter = events
                .try_iter()
                .map_err(|_| PyTypeError::new_err("events must be an iterable of dicts"))?;
            for (i, event) in iter.enumerate() {
                convert::event_json(&event?, &mut one).map_err(|e| {
                    let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
                    match e.is_instance_of::<PyTypeError>(py) {
                        true => PyTypeError::new_err(format!("event {i}: {message}")),
                        false => PyValueError::new_err(format!("event {i}: {message}")),
                    }
                })?;
                out.extend_from_slice(&one);
                out.push(b'\n');
            }
        }
    }
    Ok(PyBytes::new(py, &out))
}
