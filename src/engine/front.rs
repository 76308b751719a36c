//! [`Engine`]: the front door of the event-time engine.

use std::time::Duration;

use crate::engine::core::{Arrival, Core, Stats};
use crate::engine::sink::Sink;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldResolver, Timestamp};
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::record::Record;

/// Runs any number of patterns over one stream of events in event time.
///
/// Per pattern and key (`partition by`) it keeps the partial matches; one
/// event store serves all patterns; one watermark (bounded
/// out-of-orderness plus punctuated watermarks) orders time; late events go
/// to [`Sink::on_late`]; timeouts fire on the watermark even for keys that
/// see no more events.
///
/// Events wait until the watermark passes their time, then reach the
/// matchers in (time, arrival) order, time advanced first, as in Flink's CEP
/// operator. Deadlines of quiet keys fire in the same global time order:
/// before the events of time `t`, every deadline at or before `t`.
///
/// An `Engine<E>` is `Send` when `E` is: it can be moved to a worker
/// thread; to use several cores, give each thread its own engine and route
/// each key to one of them (see `examples/sharded.rs`).
pub struct Engine<E: Event + 'static = Record> {
    core: Core<E, Nfa<E>>,
}

impl<E: Event + 'static> Default for Engine<E> {
    fn default() -> Self {
        Engine::new()
    }
}

impl<E: Event + 'static> Engine<E> {
    /// An engine without patterns that accepts events in any order down to
    /// the watermark: with no allowed delay, an event is late as soon as an
    /// event with a larger time has been pushed before it.
    pub fn new() -> Self {
        Engine { core: Core::new(0) }
    }

    /// An engine whose watermark trails the largest event time seen by
    /// `max_delay` (bounded out-of-orderness): an event is late when its time
    /// is more than `max_delay` behind the largest time pushed before it.
    /// Event time counts whole milliseconds: a delay with a fraction of a
    /// millisecond is rounded up, a delay beyond `i64::MAX` milliseconds is
    /// that.
    pub fn with_max_delay(max_delay: Duration) -> Self {
        let ms = max_delay.as_millis() + u128::from(max_delay.subsec_nanos() % 1_000_000 != 0);
        Engine {
            core: Core::new(i64::try_from(ms).unwrap_or(i64::MAX)),
        }
    }

    /// Compiles a pattern for `E` (its fields resolved by `fields`) and adds
    /// it; returns its index, as in
    /// [`MatchRef::pattern_index`](crate::engine::MatchRef::pattern_index).
    pub fn add_pattern(
        &mut self,
        pattern: &Pattern,
        fields: &mut dyn FieldResolver,
    ) -> Result<usize, Error> {
        let nfa = Nfa::<E>::compile(pattern, fields)?;
        self.core.add(nfa, fields).map_err(|e| {
            Error::new(
                ErrorKind::Field,
                format!("pattern `{}`: partition by: {e}", pattern.name),
            )
        })
    }

    /// Takes one event in. It is late (and goes to [`Sink::on_late`]) when
    /// its time is at or below the watermark; otherwise it waits, and
    /// whatever the watermark has now passed is processed.
    pub fn push<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) -> Arrival {
        self.core.push(ts, event, sink)
    }

    /// A punctuated watermark: every event at or below `t` has arrived.
    /// Moves event time to `t` (never backwards), processing waiting events
    /// and firing deadlines up to it. `watermark(Timestamp::MAX)` lets every
    /// window close.
    pub fn watermark<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, sink: &mut S) {
        self.core.watermark(t, sink)
    }

    /// End of input: processes every waiting event and advances time to the
    /// largest event time seen, so windows that closed by then expire and
    /// later ones stay open (to close them all, call
    /// [`watermark`](Engine::watermark)`(Timestamp::MAX)` instead).
    pub fn finish<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        self.core.finish(sink)
    }

    /// The current watermark, `None` before the first event or watermark.
    pub fn current_watermark(&self) -> Option<Timestamp> {
        self.core.current_watermark()
    }

    /// What the engine has seen and produced so far.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The compiled patterns, in the order added.
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.core.automata().map(Nfa::pattern)
    }

    /// Keys with partial matches, summed over all patterns.
    pub fn live_keys(&self) -> usize {
        self.core.live_partitions()
    }

    /// Events waiting for the watermark.
    pub fn waiting_events(&self) -> usize {
        self.core.waiting_events()
    }

    /// Events held by partial matches.
    pub fn stored_events(&self) -> usize {
        self.core.stored_events()
    }
}
