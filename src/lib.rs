//! # cepheid: complex event processing with Flink CEP semantics
//!
//! cepheid finds patterns in streams of events: "an order created and not
//! paid within 15 minutes", "three failed logins for one user within 10
//! seconds". It matches exactly what Apache Flink CEP matches, as a library
//! and as the `cepheid` command.
//!
//! The pipeline, one module per stage:
//!
//! | module | in → out |
//! |---|---|
//! | [`dsl`] | `.cep` source → AST with spans, diagnostics |
//! | [`pattern`] | AST (or the builder API, [`Pattern`]) → [`pattern::Pattern`] IR, static checks |
//! | [`expr`] | expression IR → compiled conditions, evaluated without allocation |
//! | [`nfa`] | IR → immutable automaton with take / ignore / proceed edges |
//! | [`matcher`] | one partition: partial matches, shared buffer, skip, windows |
//! | [`engine`] | keyed partitions, event time, watermarks, late events, sinks |
//! | [`io`] | input and output formats: lines, JSON lines and CSV → [`Record`]s, the JSON-lines output |
//!
//! [`time`] holds the one duration grammar (`500ms`, `15m`, `1d`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dsl;
pub mod engine;
mod error;
pub mod event;
mod event_value;
pub mod expr;
pub mod io;
pub mod matcher;
pub mod nfa;
pub mod pattern;
pub mod record;
mod rules;
pub mod span;
pub mod time;
pub mod value;

pub use engine::{Arrival, Engine, Match, MatchRef, Output, Sink, Stats};
pub use error::{Error, ErrorKind, Location};
pub use event::{Event, EventValue, FieldId, FieldPath, Timestamp};
pub use pattern::typed::Pattern;
pub use record::Record;
pub use rules::Rules;
pub use span::Span;
pub use value::{Value, ValueRef};

#[cfg(feature = "derive")]
pub use cepheid_derive::{Event, EventValue};

/// What the code `#[derive(Event)]` and `#[derive(EventValue)]` generate
/// refers to; not a public API.
#[doc(hidden)]
pub mod __derive {
    pub use crate::event::{Event, FieldId, FieldPath, FieldResolver};
    pub use crate::event_value::{join, resolve, EventField, EventValue};
    pub use crate::value::{Value, ValueRef};
    pub use std::sync::Arc;
}
