//! The event-time engine: many patterns over one stream of events, per key,
//! with watermarks, late events and timeouts.
//!
//! The engine owns what happens *between* the input and the matcher:
//! - **keys**: each pattern partitions events by its `partition by` fields
//!   (one global partition without); per key a matcher partition lives in a
//!   `hashbrown` map and is dropped as soon as it holds nothing, so memory
//!   follows live work, not history;
//! - **event time**: one global watermark (bounded out-of-orderness plus
//!   punctuated watermarks, never backwards); events wait until the
//!   watermark passes their time, then reach the matchers in (time,
//!   arrival) order with time advanced first; late events (time at or below
//!   the watermark) go to the late output;
//! - **deadlines**: an index of the times at which some key's partial
//!   matches expire, so quiet keys time out on the watermark without a scan
//!   of all keys;
//! - **output**: a [`Sink`] sees each match, timeout and late event as it is
//!   produced, as a [`MatchRef`]; a `Vec<`[`Output`]`>` keeps them owned
//!   (the JSON-lines writer of `cepheid run` is the runtime's,
//!   `cepheid_runtime::jsonl::JsonLines`, above this crate).
//!
//! Input formats (JSON lines, CSV, RFC 3339 times, the line reader) are
//! [`cepheid_decode`]'s, below this crate.
//!
//! The matcher side is a crate-internal `Automaton` trait, implemented by
//! [`crate::nfa::Nfa`] (and by a test double in the engine's own tests).
//!
//! ```
//! use std::time::Duration;
//! use cepheid_engine::engine::{Engine, Output};
//! use cepheid_decode::{Decoder, Format, Item};
//! use cepheid_core::record::FieldTable;
//! use cepheid_engine::Record;
//!
//! let loaded = cepheid_engine::rules::load_str("rules.cep", r#"
//!     pattern unpaid {
//!         partition by order_id
//!         within 15m
//!         timeouts
//!         match created followed by paid
//!         where
//!             created: type == "order_created"
//!             paid:    type == "order_paid"
//!     }"#);
//! assert!(!loaded.has_errors());
//!
//! // Every field a pattern uses gets an id in the engine's table; the
//! // decoder shares it (a clone is a handle to it).
//! let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(1));
//! let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
//! engine.add(&loaded.patterns[0]).unwrap();
//!
//! let mut out: Vec<Output<Record>> = Vec::new();
//! for line in [
//!     r#"{"ts": 0, "type": "order_created", "order_id": "o1"}"#,
//!     r#"{"ts": 60000, "type": "order_created", "order_id": "o2"}"#,
//!     r#"{"ts": 30000, "type": "order_paid", "order_id": "o2"}"#, // late: more than 1 s behind
//!     r#"{"ts": 120000, "type": "order_paid", "order_id": "o2"}"#,
//!     r#"{"$watermark": 1000000}"#,
//! ] {
//!     match decoder.decode(line.as_bytes()).unwrap() {
//!         Item::Event(ts, record) => {
//!             engine.push(ts, record, &mut out);
//!         }
//!         Item::Watermark(t) => engine.watermark(t, &mut out),
//!         Item::Skip => {}
//!     }
//! }
//! let outputs = out;
//! assert!(matches!(&outputs[0], Output::Late { ts: 30000, .. }));
//! assert!(matches!(&outputs[1], Output::Match(m) if m.start == 60000 && m.end == 120000));
//! // o1 was never paid: its window closed at 15 minutes, reported when the
//! // watermark passed it.
//! assert!(matches!(&outputs[2], Output::Timeout { expired_at: 900000, .. }));
//! assert_eq!(engine.live_keys(), 0);
//! ```

mod automaton;
pub mod clock;
mod core;
mod deadlines;
mod decide;
mod front;
mod json_line;
mod lists;
mod memory;
mod nfa;
mod partitions;
mod processing;
pub mod queue;
mod reload;
mod requests;
mod retain;
mod sink;
mod snapshot;
#[cfg(test)]
mod testing;
pub mod why;

pub use crate::matcher::{Match, Output};
pub use clock::Idle;
pub use core::{Arrival, PatternStats, Stats};
pub use decide::{Decision, DecisionStats, Fired};
pub(crate) use front::sealed;
pub use front::{Engine, PatternSet};
pub use json_line::Pushed;
pub use lists::ListWrite;
pub use memory::{
    list_entry_value, network_text, EntryError, EntryOrigin, LeftOut, LeftOutCounts, LeftOutParts,
    MemoryStats, DEFAULT_MAX_INDICATOR_ENTRIES, DEFAULT_MAX_LIST_ENTRIES,
};
pub use reload::{Change, Changes, ReloadPolicy};
pub use requests::{Answer, Remembered, Request, RequestMemory, RequestStats};
pub use sink::{MatchRef, Sink};
pub use snapshot::SnapshotRest;
