//! # cepheid: complex event processing with Flink CEP semantics
//!
//! cepheid finds patterns in streams of events: "an order created and not
//! paid within 15 minutes", "three failed logins for one user within 10
//! seconds". It matches exactly what Apache Flink CEP matches, as a library
//! and as the `cepheid` command.
//!
//! ## Quick start
//!
//! A rule on a typed struct, written in Rust, and a rule loaded from
//! pattern-language text over JSON lines, with timeouts and late events:
//!
//! ```
//! use std::time::Duration;
//! use cepheid::io::{Decoder, Format, Item, Items};
//! use cepheid::{Engine, Event, MatchRef, Pattern, Record, Rules, Sink, Timestamp};
//!
//! #[derive(Clone, Debug, Event)]
//! struct Login { user: String, ok: bool }
//!
//! // Three failed logins then a success, per user, within 10 seconds.
//! let brute_force = Pattern::<Login>::begin("fail").where_fn(|l| !l.ok).times(3)
//!     .followed_by("success").where_fn(|l| l.ok)
//!     .within(Duration::from_secs(10))
//!     .partition_by("user")
//!     .name("brute_force")
//!     .build()?;
//! let mut logins = Engine::<Login>::new();
//! logins.add(&brute_force)?;
//! let mut alerts = Vec::new();
//! let mut alert = |m: &MatchRef<'_, Login>| alerts.push(format!("{} {}", m.pattern(), m.key()[0]));
//! for (ts, ok) in [(1_000, false), (2_000, false), (3_000, false), (4_000, true)] {
//!     logins.push(ts, Login { user: "ada".into(), ok }, &mut alert);
//! }
//! logins.finish(&mut alert); // end of input: what waits for the watermark runs
//! assert_eq!(alerts, ["brute_force \"ada\""]);
//!
//! // A rule from a `.cep` file (here inline), over JSON lines.
//! let rules = Rules::parse("orders.cep", r#"
//!     pattern unpaid {
//!         partition by order
//!         within 15m
//!         timeouts
//!         match created followed by paid
//!         where created: type == "created"
//!               paid: type == "paid"
//!     }"#)?;
//! let mut orders: Engine<Record> = Engine::with_max_delay(Duration::from_secs(5));
//! orders.add(&rules)?;
//! struct Report(Vec<String>);
//! impl Sink<Record> for Report {
//!     fn on_match(&mut self, m: &MatchRef<'_, Record>) { self.0.push(format!("paid {}", m.key()[0])) }
//!     fn on_timeout(&mut self, m: &MatchRef<'_, Record>, at: Timestamp) { self.0.push(format!("unpaid {} at {at}", m.key()[0])) }
//!     fn on_late(&mut self, ts: Timestamp, _: &Record) { self.0.push(format!("late {ts}")) }
//! }
//! let input = r#"{"ts": 0, "type": "created", "order": "o1"}
//! {"ts": 60000, "type": "created", "order": "o2"}
//! {"ts": 1000, "type": "paid", "order": "o1"}
//! {"ts": 120000, "type": "paid", "order": "o2"}
//! {"$watermark": 2000000}
//! "#;
//! let decoder = Decoder::new(Format::JsonLines, "ts", orders.fields().clone());
//! let mut report = Report(Vec::new());
//! for (_line, item) in Items::new("orders.jsonl", input.as_bytes(), decoder) {
//!     match item? {
//!         Item::Event(ts, record) => { orders.push(ts, record, &mut report); }
//!         Item::Watermark(t) => orders.watermark(t, &mut report),
//!         Item::Skip => {}
//!     }
//! }
//! assert_eq!(report.0, ["late 1000", "paid \"o2\"", "unpaid \"o1\" at 900000"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Without the `derive` feature (on by default), implement [`Event`] by
//! hand (see its documentation). An `Engine` is `Send` when its events are:
//! to use several cores, give each thread its own engine and send each
//! event to the thread of its key (`examples/sharded.rs`).
//!
//! The pipeline, one module per stage:
//!
//! | module | in → out |
//! |---|---|
//! | [`dsl`] | `.cep` source → AST with spans, diagnostics |
//! | [`pattern`] | the [`pattern::Pattern`] IR the language and the builder make, static checks |
//! | [`builder`] | Rust code → a typed [`Pattern`] (`Pattern::<E>::begin(..)`, [`builder::PatternBuilder`]) |
//! | [`expr`] | expression IR → compiled conditions, evaluated without allocation |
//! | [`nfa`] | IR → immutable automaton with take / ignore / proceed edges |
//! | [`matcher`] | one partition: partial matches, shared buffer, skip, windows |
//! | [`engine`] | keyed partitions, event time, watermarks, late events, sinks |
//! | [`io`] | input and output formats: lines, JSON lines and CSV → [`Record`]s, the JSON-lines output |
//!
//! Underneath them all, [`primitives`] is the shared vocabulary ([`Span`],
//! [`StageId`](primitives::StageId), [`Timestamp`],
//! [`DurationMs`](primitives::DurationMs)), [`time`] the one duration
//! grammar (`500ms`, `15m`, `1d`), [`value`] and [`event`] what conditions
//! read. Modules depend only on modules below them (`tests/module_graph.rs`
//! checks the layering of `ARCHITECTURE.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
#[cfg(feature = "timely")]
pub mod dataflow;
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
mod persist;
pub mod primitives;
pub mod record;
mod rules;
mod slab;
pub mod time;
pub mod value;

pub use builder::typed::Pattern;
pub use engine::{Arrival, Engine, Match, MatchRef, Output, Sink, Stats};
pub use error::{Error, ErrorKind, Location};
pub use event::{Event, FieldId, FieldPath};
pub use event_value::EventValue;
pub use primitives::{Span, Timestamp};
pub use record::Record;
pub use rules::Rules;
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

/// The Rust code of `README.md`, compiled and run as a doc test so that it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The Rust code of `docs/flink.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/flink.md")]
pub struct FlinkGuideDoctests;
