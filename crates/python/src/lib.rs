//! # cepheid-python: the engine embedded in Python
//!
//! The extension module of the Python package `cepheid`
//! (`cepheid._cepheid`, built by maturin from `pyproject.toml`; the
//! package's Python part, stubs and docs are in `python/cepheid/`). It
//! wraps one [`cepheid_engine::Engine`]`<Record>` per `cepheid.Engine`:
//!
//! - **in**: rules from `.cep` text or files ([`cepheid_engine::Rules`]);
//!   events as dicts, written as the JSON text `cepheid run` would read
//!   (`convert`) and decoded by the same decoder
//!   ([`cepheid_decode::Decoder`]), so a field means what it means in a
//!   file; a line of JSON lines as it is (`push_line`);
//! - **out**: matches, timeouts, late events and decisions formatted by
//!   [`cepheid_runtime::jsonl::Formatter`], the records `cepheid run`
//!   writes (`docs/decisions.md`, `cli.md`), kept until Python drains
//!   them and made dicts by `json.loads`, once per drain (`output`);
//! - `decide` / `dry_run` are [`Engine::decide_now`] and
//!   [`Engine::dry_run`]; `snapshot` / `Engine.restore` the engine's
//!   snapshot; `push_many` converts events under the GIL and pushes them
//!   with it released, a batch at a time.
//!
//! Errors are Python exceptions: a rule's is `cepheid.PatternError` (a
//! `ValueError`) whose message is the engine's `path:line:column`
//! diagnostic with the text underlined; a value that is not JSON, or an
//! integer past 64 bits, a `TypeError` or `ValueError` naming the
//! field. Nothing a caller passes makes the engine panic (the tests
//! throw extremes at it); were it to, pyo3 raises `PanicException` and
//! the engine refuses further calls (`RuntimeError`) rather than going on
//! in an unknown state.
//!
//! Tests: `crates/python/tests/*.py` (`unittest`), run by
//! `.ci/test-python`, which `tests/python.rs` runs under `cargo test`.
//!
//! [`Engine::decide_now`]: cepheid_engine::Engine::decide_now
//! [`Engine::dry_run`]: cepheid_engine::Engine::dry_run

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use pyo3::prelude::*;

/// The engine's allocations with mimalloc, as in `cepheid` itself.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod columns;
mod convert;
mod engine;
mod output;
mod why;

pyo3::create_exception!(
    cepheid,
    PatternError,
    pyo3::exceptions::PyValueError,
    "Rules that do not load: the message is every problem, each `path:line:column: message` \
     with the offending text underlined; `diagnostics` is a list of dicts (`path`, `line`, \
     `column`, `message`)."
);

/// Checks rules without running them: `None` when they load, else
/// raises `PatternError`. Returns the warnings (rendered), `""` when none.
#[pyfunction]
#[pyo3(signature = (rules=None, *, paths=None, origin="<rules>"))]
fn check(rules: Option<&str>, paths: Option<&Bound<'_, PyAny>>, origin: &str) -> PyResult<String> {
    match engine::load_rules(rules, paths, origin)? {
        Some(rules) => Ok(rules.warnings()),
        None => Err(pyo3::exceptions::PyValueError::new_err(
            "give the rules as text (`rules`) or as files (`paths`)",
        )),
    }
}

/// The module `cepheid._cepheid`.
#[pymodule]
fn _cepheid(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add("PatternError", m.py().get_type::<PatternError>())?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(why::why_json, m)?)?;
    m.add_function(wrap_pyfunction!(why::events_jsonl, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
