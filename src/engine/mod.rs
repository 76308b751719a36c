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
//!   produced; [`Collector`] keeps owned [`Output`]s, [`JsonLines`] writes
//!   the records of `cepheid run`;
//! - **input**: JSON lines and CSV into [`crate::Record`]s ([`LineReader`],
//!   [`Decoder`]), times as integer milliseconds or RFC 3339.
//!
//! The matcher side is the [`Automaton`] trait, implemented by
//! [`crate::nfa::Nfa`].

mod automaton;
mod clock;
mod core;
mod csv;
mod input;
mod output;
mod partitions;
mod sink;
#[cfg(test)]
mod testing;
mod time;

pub use automaton::{Automaton, EventStore, MatchAccess, Reporter};
pub use core::{Arrival, Engine, EngineConfig, Stats};
pub use input::{Decoder, Format, Item, Line, LineReader, Malformed, MAX_LINE_BYTES};
pub use output::JsonLines;
pub use sink::{Collector, MatchContext, MatchRecord, Output, Sink};
pub use time::{parse_duration, parse_rfc3339};
