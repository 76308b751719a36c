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
//! use cepheid_decode::{Decoder, Format, Item, Items};
//! use cepheid_engine::{Engine, Event, MatchRef, Pattern, Record, Rules, Sink, Timestamp};
//!
//! #[derive(Clone, Debug, Event)]
//! struct Login { #[cepheid(time)] at: Timestamp, user: String, ok: bool }
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
//! for (at, ok) in [(1_000, false), (2_000, false), (3_000, false), (4_000, true)] {
//!     // the time is the event's own (`#[cepheid(time)]`); `push(ts, event, sink)` takes it beside
//!     logins.push_event(Login { at, user: "ada".into(), ok }, &mut alert)?;
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
//! The pipeline, one crate per stage, each depending only on those above
//! it in this table (Cargo enforces it):
//!
//! | crate | in → out |
//! |---|---|
//! | [`cepheid_core`] | the vocabulary: values, events, expressions, the pattern IR and its checks |
//! | [`cepheid_syntax`] | `.cep` source → AST with spans → pattern IR, diagnostics |
//! | [`cepheid_automata`] | pattern IR → immutable NFA; the matcher of one partition |
//! | [`cepheid_decode`] | bytes → events: JSON lines and CSV decoded into [`Record`]s, RFC 3339 times ([`Engine::push_json`] decodes with it) |
//! | `cepheid_engine` (this one) | keyed partitions, event time, watermarks, late events, sinks, snapshots, rule changes; the builder ([`builder`]: Rust code → a typed [`Pattern`]); [`Rules`] loaded from `.cep` text |
//! | `cepheid_dataflow` | the engine on timely-dataflow, over threads and processes |
//!
//! What a program needs is at this crate's root; the lower crates are
//! reachable by their own names.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod engine;
pub mod rules;

// The lower layers under the names this crate's modules use for them.
use cepheid_automata::{matcher, nfa};
use cepheid_core::{
    error, event, event_value, expr, lookup, pattern, persist, primitives, record, scene, slab,
    value,
};
use cepheid_syntax as dsl;

pub use builder::typed::Pattern;
pub use cepheid_core::{Error, ErrorKind, Location};
pub use cepheid_core::{Event, FieldId, FieldPath};
pub use cepheid_core::{EventValue, Record, Span, Timestamp, Value, ValueRef};
pub use engine::{
    Arrival, Decision, DecisionStats, Engine, Fired, ListWrite, Match, MatchRef, Output,
    PatternStats, Sink, Stats,
};
pub use rules::Rules;

#[cfg(feature = "derive")]
pub use cepheid_derive::{Event, EventValue};

/// What the code `#[derive(Event)]` and `#[derive(EventValue)]` generate
/// refers to; not a public API.
#[doc(hidden)]
pub mod __derive {
    pub use crate::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
    pub use crate::event_value::{join, resolve, EventField, EventTime, EventValue};
    pub use crate::primitives::Timestamp;
    pub use crate::value::{Value, ValueRef};
    pub use std::sync::Arc;
}

/// The Rust code of `docs/flink.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/flink.md")]
pub struct FlinkGuideDoctests;
