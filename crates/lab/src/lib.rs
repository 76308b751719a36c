//! The rule lab (`docs/rule-lab.md`): a rule set run over past events as
//! `cepheid run` runs it, and what it would have done, before it is put in
//! force.
//!
//! - [`diff`]: the alerts that only one of two rule sets raises over the
//!   same events, pattern by pattern.
//! - [`backtest`]: per pattern, its alerts, their rate, keys and delays,
//!   and against labels (the cases known to be real) precision and
//!   recall; the same as one self-contained HTML page.
//! - [`why`]: for one key, what each pattern did with its events and why
//!   it did not fire; over a service's inputs too, taken as its run took
//!   them ([`why::service`]: `cepheid why KEY --events wal:DIR`, whose
//!   reader of the log is the command's).
//!
//! Each takes plain options ([`Events`]: the events and how they are read,
//! as `cepheid run`'s options say it) and gives a value whose `text` and
//! `json` are what the `cepheid` command prints. The runs are
//! `cepheid_runtime`'s: on one engine, or on the workers of a
//! [`Cluster`](cepheid_runtime::Cluster) the caller makes
//! ([`Events::workers`]; the command's `--workers` is
//! `cepheid-dataflow`'s); with the feature `kafka`, the events may be a
//! range of a Kafka topic (`Events::kafka`). What is not a result (the
//! rule set's diagnostics, a run's warnings, lines left out) is told
//! through [`Events::tell`], standard error by default; what stops a
//! command is an [`Error`].
//!
//! ```no_run
//! use cepheid_lab::{backtest, Events};
//!
//! let events = Events::new("events.jsonl");
//! let options = backtest::Options::new("rules/", events);
//! let report = backtest::run(&options)?;
//! print!("{}", report.text());
//! # Ok::<(), cepheid_lab::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Tells one message (`format!` arguments) through a [`Tell`], with its
/// newline.
macro_rules! tell {
    ($tell:expr, $($arg:tt)*) => {
        ($tell)(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod backtest;
pub mod diff;
mod error;
mod events;
mod left_out;
pub mod why;

pub use error::{Error, ErrorKind};
#[cfg(feature = "kafka")]
pub use events::KafkaRange;
pub use events::{
    attributes, stderr, without_events, Events, Ran, Records, Tell, Workers, EVENT_FIELDS,
};
pub use left_out::LeftOut;

/// Loads the rule set at `paths` as `cepheid run` does, telling its
/// diagnostics; the loaded patterns and the automata checking them
/// compiled (a run keeps them: `cepheid_engine::Rules::from_checked`).
fn load_checked(
    paths: &[std::path::PathBuf],
    tell: &Tell,
) -> Result<(cepheid_syntax::Loaded, cepheid_engine::rules::Checked), Error> {
    let mut loaded = cepheid_syntax::load_paths(paths);
    let checked = cepheid_engine::rules::check(&mut loaded);
    if !loaded.diagnostics.is_empty() {
        tell(&loaded.render());
    }
    if loaded.has_io_errors() {
        Err(Error::told(ErrorKind::Io))
    } else if loaded.has_errors() {
        Err(Error::told(ErrorKind::Rules))
    } else {
        Ok((loaded, checked))
    }
}

/// The rule set at `path`, loaded and checked (its diagnostics told).
fn load_rules(path: &std::path::Path, tell: &Tell) -> Result<cepheid_engine::Rules, Error> {
    let (loaded, checked) = load_checked(&[path.to_path_buf()], tell)?;
    cepheid_engine::Rules::from_checked(loaded, checked).map_err(|_| Error::told(ErrorKind::Rules))
}
