//! What the engine gives, kept as the JSON lines `cepheid run` writes
//! (`cepheid_runtime::jsonl::Formatter`) until Python drains them, then
//! made Python objects by `json.loads`, once for a whole batch.

use cepheid_engine::{Decision, MatchRef, Record, Sink, Timestamp};
use cepheid_runtime::jsonl::Formatter;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

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
