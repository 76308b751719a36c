//! `cepheid.Engine`: one [`Engine<Record>`] behind a mutex, with the
//! decoders that turn events into records and the sink that keeps what it
//! gives until Python drains it.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cepheid_core::{ErrorKind, Value};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::{Engine, Record, Rules};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::columns::Table;
use crate::convert;
use crate::output::Collected;
use crate::PatternError;

/// Events converted under the GIL, then pushed without it, this many at a
/// time ([`PyEngine::push_many`]).
const BATCH: usize = 4096;

/// The engine and what goes with it.
struct State {
    engine: Engine<Record>,
    /// Events with their time in the time field.
    timed: Decoder,
    /// Events given their time by the caller (`ts=`, `now=`).
    untimed: Decoder,
    out: Collected,
    /// The last event's JSON text (reused).
    text: Vec<u8>,
}

impl State {
    fn new(engine: Engine<Record>, time_field: &str, late: bool) -> State {
        let fields = engine.fields().clone();
        State {
            timed: Decoder::new(Format::JsonLines, time_field, fields.clone()),
            untimed: Decoder::new(Format::JsonLines, time_field, fields).without_time(),
            engine,
            out: Collected::new(late),
            text: Vec::new(),
        }
    }

    /// The last converted event ([`State::text`]) decoded: its time (the
    /// time field's, or `ts` when given) and record, or a watermark.
    fn decode(&mut self, ts: Option<i64>) -> PyResult<Item> {
        let decoder = match ts {
            Some(_) => &mut self.untimed,
            None => &mut self.timed,
        };
        let item = decoder
            .decode(&self.text)
            .map_err(|e| PyValueError::new_err(format!("event: {}", e.message())))?;
        Ok(match (item, ts) {
            (Item::Event(_, record), Some(ts)) => Item::Event(ts, record),
            (item, _) => item,
        })
    }

    /// Pushes the decoded item.
    fn push_item(&mut self, item: Item, position: Option<Value>) {
        match item {
            Item::Event(ts, record) => {
                match position {
                    Some(p) => self.engine.push_positioned(ts, record, p, &mut self.out),
                    None => self.engine.push(ts, record, &mut self.out),
                };
            }
            Item::Watermark(t) => self.engine.watermark(t, &mut self.out),
            Item::Skip => {}
        }
    }
}

/// The engine embedded: rules from `.cep` text or files, events as dicts,
/// alerts and decisions as the JSON records of `cepheid run`.
///
/// See the package's documentation (`help(cepheid)`) for the whole API.
#[pyclass(name = "Engine", module = "cepheid", frozen)]
pub struct PyEngine {
    state: Mutex<State>,
    time_field: String,
}

/// The rules given as text (`rules`) or files (`paths`), one of them.
pub(crate) fn load_rules(
    rules: Option<&str>,
    paths: Option<&Bound<'_, PyAny>>,
    origin: &str,
) -> PyResult<Option<Rules>> {
    let paths = match paths {
        None => None,
        Some(p) if p.is_none() => None,
        Some(p) => Some(path_list(p)?),
    };
    let loaded = match (rules, paths) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "give the rules as text (`rules`) or as files (`paths`), not both",
            ))
        }
        (Some(text), None) => Rules::parse(origin, text),
        (None, Some(paths)) => Rules::load_all(&paths),
        (None, None) => return Ok(None),
    };
    loaded.map(Some).map_err(pattern_error)
}

/// `paths=`: one path or a list of them (`str` or `os.PathLike`).
fn path_list(paths: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if paths.is_instance_of::<PyString>() || paths.hasattr("__fspath__")? {
        return Ok(vec![paths.extract::<PathBuf>()?]);
    }
    let mut list = Vec::new();
    for p in paths
        .try_iter()
        .map_err(|_| PyTypeError::new_err("paths must be a path or a list of paths"))?
    {
        let p = p?;
        list.push(
            p.extract::<PathBuf>()
                .map_err(|_| PyTypeError::new_err("paths must be a path or a list of paths"))?,
        );
    }
    Ok(list)
}

/// An error of the rules as `cepheid.PatternError`: its message every
/// problem drawn with its text underlined (`path:line:column`), and
/// `diagnostics`, one dict per problem.
pub(crate) fn pattern_error(error: cepheid_core::Error) -> PyErr {
    Python::attach(|py| {
        let err = PatternError::new_err(error.render());
        let diagnostics = PyList::empty(py);
        for e in error.errors() {
            let d = PyDict::new(py);
            let located = e
                .location()
                .map(|at| (at.origin().to_string(), at.line(), at.column()));
            let result = (|| -> PyResult<()> {
                match located {
                    Some((path, line, column)) => {
                        d.set_item("path", path)?;
                        d.set_item("line", line)?;
                        d.set_item("column", column)?;
                    }
                    None => {
                        d.set_item("path", py.None())?;
                        d.set_item("line", py.None())?;
                        d.set_item("column", py.None())?;
                    }
                }
                d.set_item("message", e.message())?;
                diagnostics.append(d)
            })();
            if let Err(e) = result {
                return e;
            }
        }
        if let Err(e) = err.value(py).setattr("diagnostics", diagnostics) {
            return e;
        }
        err
    })
}

/// An engine error that is no rule's: a snapshot refused is a
/// `ValueError` (bad bytes), anything else a `RuntimeError`.
fn engine_error(error: cepheid_core::Error) -> PyErr {
    match error.kind() {
        ErrorKind::Snapshot => PyValueError::new_err(error.to_string()),
        ErrorKind::Pattern
        | ErrorKind::Syntax
        | ErrorKind::Field
        | ErrorKind::Limit
        | ErrorKind::Multiple => pattern_error(error),
        _ => PyRuntimeError::new_err(error.to_string()),
    }
}

/// A non-negative count or limit.
fn limit(value: Option<i64>, what: &str) -> PyResult<Option<usize>> {
    match value {
        None => Ok(None),
        Some(n) => usize::try_from(n)
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("{what} must be 0 or more, not {n}"))),
    }
}

impl PyEngine {
    fn lock<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, State>> {
        self.state.lock_py_attached(py).map_err(|_| {
            PyRuntimeError::new_err(
                "this engine failed inside (a panic) and its state is unknown: make a new one",
            )
        })
    }

    fn wrap(engine: Engine<Record>, time_field: &str, late: bool) -> PyEngine {
        PyEngine {
            state: Mutex::new(State::new(engine, time_field, late)),
            time_field: time_field.to_string(),
        }
    }

    /// `event` converted and decoded, with `ts` (or the time field).
    fn record(
        state: &mut State,
        event: &Bound<'_, PyAny>,
        ts: Option<i64>,
        what: &str,
    ) -> PyResult<(i64, Record)> {
        convert::event_json(event, &mut state.text)?;
        match state.decode(ts)? {
            Item::Event(ts, record) => Ok((ts, record)),
            _ => Err(PyValueError::new_err(format!(
                "{what} takes an event, not a `$watermark` (use watermark())"
            ))),
        }
    }

    /// `decide` and `dry_run`: the event converted, `take` asked for its
    /// decisions (with the engine, the event's time and record, its
    /// position and the collected output), each returned as a dict.
    fn decided<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
        position: Option<&Bound<'py, PyAny>>,
        what: &str,
        take: impl FnOnce(
            &mut Engine<Record>,
            i64,
            Record,
            Option<cepheid_engine::Value>,
            &mut Collected,
        ) -> PyResult<Vec<cepheid_engine::Decision>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now.map(|t| convert::millis(t, "now")).transpose()?;
        let position = convert::position(position)?;
        let mut state = self.lock(py)?;
        let state = &mut *state;
        let (ts, record) = PyEngine::record(state, event, now, what)?;
        let decisions = take(&mut state.engine, ts, record, position, &mut state.out)?;
        state.out.decisions(&decisions).to_dicts(py)
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (
        rules=None, *, paths=None, origin="<rules>", max_delay_ms=0, time_field="ts",
        late=true, max_runs_per_key=None, max_live_runs=None, max_waiting_events=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        rules: Option<&str>,
        paths: Option<&Bound<'_, PyAny>>,
        origin: &str,
        max_delay_ms: i64,
        time_field: &str,
        late: bool,
        max_runs_per_key: Option<i64>,
        max_live_runs: Option<i64>,
        max_waiting_events: Option<i64>,
    ) -> PyResult<PyEngine> {
        let delay = u64::try_from(max_delay_ms).map_err(|_| {
            PyValueError::new_err(format!(
                "max_delay_ms must be 0 or more, not {max_delay_ms}"
            ))
        })?;
        if time_field.is_empty() || time_field == "$watermark" {
            return Err(PyValueError::new_err(format!(
                "time_field cannot be {time_field:?}"
            )));
        }
        let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_millis(delay));
        if let Some(n) = limit(max_runs_per_key, "max_runs_per_key")? {
            engine = engine.max_runs_per_key(n);
        }
        if let Some(n) = limit(max_live_runs, "max_live_runs")? {
            engine = engine.max_live_runs(n);
        }
        if let Some(n) = limit(max_waiting_events, "max_waiting_events")? {
            engine = engine.max_waiting_events(n);
        }
        if let Some(rules) = load_rules(rules, paths, origin)? {
            engine.add(&rules).map_err(pattern_error)?;
        }
        Ok(PyEngine::wrap(engine, time_field, late))
    }

    /// Pushes one event (a dict). Its time is `ts` when given, else its
    /// time field's (integer milliseconds or an RFC 3339 string). A dict
    /// `{"$watermark": T}` is a watermark, as the line is to `cepheid
    /// run`. `position` names its decisions when its scene has no `id`
    /// field (else the engine numbers its pushes from 1).
    #[pyo3(signature = (event, ts=None, position=None))]
    fn push(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyAny>,
        ts: Option<&Bound<'_, PyAny>>,
        position: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ts = ts.map(|t| convert::millis(t, "ts")).transpose()?;
        let position = convert::position(position)?;
        let mut state = self.lock(py)?;
        convert::event_json(event, &mut state.text)?;
        let item = state.decode(ts)?;
        state.push_item(item, position);
        Ok(())
    }

    /// Pushes one line of JSON lines (`str` or `bytes`), exactly as
    /// `cepheid run` reads it: its text is kept as it is.
    #[pyo3(signature = (line, position=None))]
    fn push_line(
        &self,
        py: Python<'_>,
        line: &Bound<'_, PyAny>,
        position: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let position = convert::position(position)?;
        let mut state = self.lock(py)?;
        state.text.clear();
        if let Ok(s) = line.cast::<PyString>() {
            state.text.extend_from_slice(s.to_str()?.as_bytes());
        } else if let Ok(b) = line.cast::<PyBytes>() {
            state.text.extend_from_slice(b.as_bytes());
        } else {
            return Err(PyTypeError::new_err("a line must be str or bytes"));
        }
        while matches!(state.text.last(), Some(b'\n' | b'\r')) {
            state.text.pop();
        }
        let item = state.decode(None)?;
        state.push_item(item, position);
        Ok(())
    }

    /// Pushes every event of an iterable of dicts, in order, each at its
    /// time field's time: converted in batches under the GIL, each batch
    /// pushed with the GIL released. Returns how many were pushed. An
    /// event that fails stops the push there with its error (the events
    /// before it are pushed), naming its index.
    fn push_many(&self, py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut iter = events.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "events must be an iterable of dicts, not {}",
                events
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let mut state = self.lock(py)?;
        let state = &mut *state;
        let mut texts: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::with_capacity(BATCH);
        let mut one = Vec::new();
        let mut pushed = 0usize;
        loop {
            texts.clear();
            ends.clear();
            let mut failed = None;
            for event in iter.by_ref() {
                let converted = event.and_then(|e| convert::event_json(&e, &mut one));
                if let Err(e) = converted {
                    failed = Some(e);
                    break;
                }
                texts.extend_from_slice(&one);
                ends.push(texts.len());
                if ends.len() == BATCH {
                    break;
                }
            }
            let batch = ends.len();
            let result: Result<usize, (usize, String)> = py.detach(|| {
                let mut start = 0;
                for (i, &end) in ends.iter().enumerate() {
                    let item = state
                        .timed
                        .decode(&texts[start..end])
                        .map_err(|e| (i, e.message().to_string()))?;
                    state.push_item(item, None);
                    start = end;
                }
                Ok(ends.len())
            });
            match result {
                Ok(n) => pushed += n,
                Err((i, message)) => {
                    return Err(PyValueError::new_err(format!(
                        "event {}: {message}",
                        pushed + i
                    )))
                }
            }
            if let Some(e) = failed {
                let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
                let prefixed = format!("event {pushed}: {message}");
                return Err(match e.is_instance_of::<PyTypeError>(py) {
                    true => PyTypeError::new_err(prefixed),
                    false => match e.is_instance_of::<PyValueError>(py) {
                        true => PyValueError::new_err(prefixed),
                        false => e,
                    },
                });
            }
            if batch < BATCH {
                return Ok(pushed);
            }
        }
    }

    /// Pushes the rows of a table given by columns (`cepheid._columns`
    /// makes them from a pandas DataFrame or an Arrow table), in order,
    /// each at its time field's time: each row the event of its present
    /// cells, the text the row path writes for their dict (`columns`).
    /// Rendered a batch at a time under the GIL, each batch decoded and
    /// pushed with the GIL released. Returns how many rows were pushed; a
    /// bad cell stops the push there (the rows before it are pushed) with
    /// an error naming its column and row.
    fn push_columns(
        &self,
        py: Python<'_>,
        columns: &Bound<'_, PyAny>,
        rows: usize,
    ) -> PyResult<usize> {
        let table = Table::new(columns, rows)?;
        let mut state = self.lock(py)?;
        let state = &mut *state;
        let mut texts: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::with_capacity(BATCH);
        let mut one = Vec::new();
        let mut row = 0usize;
        while row < table.rows() {
            texts.clear();
            ends.clear();
            let mut failed = None;
            let first = row;
            while row < table.rows() && ends.len() < BATCH {
                if let Err(e) = table.row_json(row, &mut one) {
                    failed = Some(e);
                    break;
                }
                texts.extend_from_slice(&one);
                ends.push(texts.len());
                row += 1;
            }
            let result: Result<(), (usize, String)> = py.detach(|| {
                let mut start = 0;
                for (i, &end) in ends.iter().enumerate() {
                    let item = state
                        .timed
                        .decode(&texts[start..end])
                        .map_err(|e| (i, e.message().to_string()))?;
                    state.push_item(item, None);
                    start = end;
                }
                Ok(())
            });
            if let Err((i, message)) = result {
                return Err(PyValueError::new_err(format!(
                    "row {}: {message}",
                    first + i
                )));
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(row)
    }

    /// Moves the watermark to `t` (never backwards): events and timeouts
    /// up to `t` are processed.
    fn watermark(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = convert::millis(t, "t")?;
        let mut state = self.lock(py)?;
        let state = &mut *state;
        py.detach(|| state.engine.watermark(t, &mut state.out));
        Ok(())
    }

    /// Processing time: the clock reads `now`; time moves to just before
    /// it (every window that closed expires).
    fn tick(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = convert::millis(now, "now")?;
        let mut state = self.lock(py)?;
        let state = &mut *state;
        py.detach(|| state.engine.tick(now, &mut state.out));
        Ok(())
    }

    /// The end of the input (as `cepheid run` ends): every waiting event is
    /// processed and time goes to the largest event time seen; windows
    /// that end later stay open (`watermark(2**63 - 1)` closes them all).
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        let mut state = self.lock(py)?;
        let state = &mut *state;
        py.detach(|| state.engine.finish(&mut state.out));
        Ok(())
    }

    /// Decides one event at once (`Engine::decide_now`): taken in as
    /// arriving at `now` (default: its time field's time), processed now,
    /// its decisions returned, one dict per scene it enters. Its alerts
    /// and other events' output go to `drain()`.
    #[pyo3(signature = (event, now=None, position=None))]
    fn decide<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
        position: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.decided(
            py,
            event,
            now,
            position,
            "decide",
            |engine, ts, record, position, out| Ok(engine.decide_now(ts, record, position, out)),
        )
    }

    /// The decisions `decide` would return, changing nothing (the engine
    /// runs a copy of itself).
    #[pyo3(signature = (event, now=None, position=None))]
    fn dry_run<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
        position: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.decided(
            py,
            event,
            now,
            position,
            "dry_run",
            |engine, ts, record, position, _| {
                engine.dry_run(ts, record, position).map_err(engine_error)
            },
        )
    }

    /// The records produced since the last drain, alerts and decisions in
    /// the order the engine gave them, each the dict of its JSON record
    /// (`docs/decisions.md`, `cli.md`); a shadow pattern's apart
    /// (`drain_shadow`).
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut state = self.lock(py)?;
        let lines = std::mem::take(&mut state.out.main);
        drop(state);
        lines.to_dicts(py)
    }

    /// `drain()` as the columns of three tables, alerts (matches and
    /// timeouts), decisions and late events: for each `(names, columns)`,
    /// each column a list of cells, each row a record flattened as
    /// `cepheid.flatten` does (`None` where a record has no such field).
    /// What `cepheid.backtest` makes its DataFrames of.
    fn drain_columns<'py>(&self, py: Python<'py>) -> PyResult<Vec<crate::output::Table<'py>>> {
        let mut state = self.lock(py)?;
        let lines = std::mem::take(&mut state.out.main);
        drop(state);
        lines.to_frames(py)
    }

    /// `drain()` as the JSON lines `cepheid run` writes (each `str`
    /// without its newline).
    fn drain_lines<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut state = self.lock(py)?;
        let lines = std::mem::take(&mut state.out.main);
        drop(state);
        lines.to_strings(py)
    }

    /// The records of `shadow` patterns since the last call (what `cepheid
    /// run --shadow-output` writes).
    fn drain_shadow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut state = self.lock(py)?;
        let lines = std::mem::take(&mut state.out.shadow);
        drop(state);
        lines.to_dicts(py)
    }

    /// How many records `drain()` would return now.
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.lock(py)?.out.main.len())
    }

    /// The scenes in force, each as `GET /v1/scenes` shows one: `name`,
    /// `outcomes` (mildest first), `default`, `fallback`, `late`,
    /// `deadline_ms`, `hit` and `rules` (the patterns it holds).
    fn scenes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let state = self.lock(py)?;
        let list = PyList::empty(py);
        for scene in state.engine.scenes() {
            let outcome = |id: cepheid_core::scene::OutcomeId| {
                scene
                    .outcomes
                    .get(id.index())
                    .map(|o| o.to_string())
                    .unwrap_or_default()
            };
            let d = PyDict::new(py);
            d.set_item("name", &scene.name)?;
            let outcomes: Vec<&str> = scene.outcomes.iter().map(|o| &**o).collect();
            d.set_item("outcomes", outcomes)?;
            d.set_item("default", outcome(scene.default))?;
            d.set_item("fallback", outcome(scene.fallback))?;
            d.set_item("late", outcome(scene.late))?;
            d.set_item("deadline_ms", scene.deadline)?;
            d.set_item(
                "hit",
                match scene.hit {
                    cepheid_core::scene::HitPolicy::All => "all",
                    cepheid_core::scene::HitPolicy::First => "first",
                },
            )?;
            let rules: Vec<&str> = scene.rules.iter().map(|r| r.pattern.as_str()).collect();
            d.set_item("rules", rules)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// The names of the patterns in force, in the engine's order.
    fn patterns(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self
            .lock(py)?
            .engine
            .patterns()
            .map(|p| p.name.clone())
            .collect())
    }

    /// The watermark (milliseconds), or `None` before any.
    #[getter]
    fn current_watermark(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        Ok(self.lock(py)?.engine.current_watermark())
    }

    /// The time field events carry their time in.
    #[getter]
    fn time_field(&self) -> &str {
        &self.time_field
    }

    /// The engine's counts: events, late, matches, timeouts, ... (its
    /// `Stats`), `decisions` (its `DecisionStats`), and what it holds
    /// now: `live_keys`, `live_runs`, `waiting_events`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.lock(py)?;
        let e = &state.engine;
        let mut stats = serde_json::to_value(e.stats()).unwrap_or_default();
        if let Some(map) = stats.as_object_mut() {
            map.insert(
                "decisions".into(),
                serde_json::to_value(e.decision_stats()).unwrap_or_default(),
            );
            map.insert("live_keys".into(), e.live_keys().into());
            map.insert("live_runs".into(), e.live_runs().into());
            map.insert("waiting_events".into(), e.waiting_events().into());
        }
        drop(state);
        let loads = py.import("json")?.getattr("loads")?;
        loads.call1((stats.to_string(),))
    }

    /// Adds `value` to the list `name` (declared by the rules) at event
    /// time `at`, for `lifetime_ms` (default: the list's own `for`).
    #[pyo3(signature = (name, value, at, lifetime_ms=None))]
    fn add_to_list(
        &self,
        py: Python<'_>,
        name: &str,
        value: &Bound<'_, PyAny>,
        at: &Bound<'_, PyAny>,
        lifetime_ms: Option<u64>,
    ) -> PyResult<()> {
        let value = convert::value(value, "value")?;
        let at = convert::millis(at, "at")?;
        let mut state = self.lock(py)?;
        state
            .engine
            .add_to_list(name, value, at, lifetime_ms.map(Duration::from_millis))
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Removes `value` from the list `name` at event time `at`.
    fn remove_from_list(
        &self,
        py: Python<'_>,
        name: &str,
        value: &Bound<'_, PyAny>,
        at: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let value = convert::value(value, "value")?;
        let at = convert::millis(at, "at")?;
        let mut state = self.lock(py)?;
        state
            .engine
            .remove_from_list(name, value, at)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The engine's whole state as bytes (`docs/snapshot.md`): give them
    /// to `Engine.restore` with the same rules to go on. Records not yet
    /// drained are not in it.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let state = self.lock(py)?;
        let mut bytes = Vec::new();
        state
            .engine
            .snapshot_into(&mut bytes)
            .map_err(engine_error)?;
        drop(state);
        Ok(PyBytes::new(py, &bytes))
    }

    /// A new engine in the state of `snapshot`, running `rules` (text) or
    /// `paths` (files): the rules in force when it was taken, which hold
    /// its scenes. Without rules, the snapshot's own patterns (no scenes:
    /// a snapshot keeps none). Its delay and limits are the snapshot's.
    #[staticmethod]
    #[pyo3(signature = (snapshot, rules=None, *, paths=None, origin="<rules>", time_field="ts", late=true))]
    fn restore(
        snapshot: &[u8],
        rules: Option<&str>,
        paths: Option<&Bound<'_, PyAny>>,
        origin: &str,
        time_field: &str,
        late: bool,
    ) -> PyResult<PyEngine> {
        let engine = match load_rules(rules, paths, origin)? {
            Some(rules) => Engine::<Record>::from_snapshot(snapshot, &rules),
            None => Engine::<Record>::from_snapshot_rules(snapshot),
        }
        .map_err(engine_error)?;
        Ok(PyEngine::wrap(engine, time_field, late))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = self.lock(py)?;
        let names: Vec<&str> = state.engine.patterns().map(|p| p.name.as_str()).collect();
        Ok(format!(
            "<cepheid.Engine: {} pattern{}, {} scene{}, watermark {}>",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            state.engine.scenes().count(),
            if state.engine.scenes().count() == 1 {
                ""
            } else {
                "s"
            },
            state
                .engine
                .current_watermark()
                .map_or("none".to_string(), |w| w.to_string()),
        ))
    }
}
