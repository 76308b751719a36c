//! Processing time: an [`Engine`] driven by the caller's clock instead of
//! the events' own times (Flink CEP's `ProcessingTime`).
//!
//! The rule: an event's time is the clock's reading when it arrives (never
//! behind the time an earlier event got, so no event is late); before it
//! is taken in, time moves to just before that reading, so what arrived in
//! earlier milliseconds is processed and every window that closed before
//! it expires; the event itself is processed once the clock has passed its
//! millisecond. On a quiet stream the caller ticks the clock, so windows
//! close and timeouts fire without new events. `cepheid run --time
//! processing` does this with the wall clock (`docs/semantics.md`,
//! "Processing time").

use crate::engine::core::Arrival;
use crate::engine::front::Engine;
use crate::engine::sink::Sink;
use crate::event::Event;
use crate::primitives::Timestamp;
use crate::value::Value;

impl<E: Event + 'static> Engine<E> {
    /// Processing time: takes `event` in as arriving at `now`, the caller's
    /// clock (milliseconds, e.g. since the Unix epoch). The event's time is
    /// `now`, or just past the current watermark when the clock reads no
    /// later than it (a clock set back): it is never late, and times never
    /// go backwards. Time first moves to just before the event's time
    /// (events of earlier milliseconds are processed, windows that closed
    /// before it expire); the event is processed once time passes its
    /// millisecond: at a later `push_now` or [`tick`](Engine::tick), or at
    /// [`finish`](Engine::finish). Don't mix with [`push`](Engine::push) in
    /// one engine; the engine's max delay plays no part.
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format, Item};
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let rules = Rules::parse("p.cep", r#"pattern unpaid {
    ///     partition by order_id
    ///     within 1s
    ///     timeouts
    ///     match created followed by paid
    ///     where
    ///         created: type == "created"
    ///         paid:    type == "paid"
    /// }"#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// // No time field: the clock gives each event its time.
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).without_time();
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// // The caller's clock (here made up; `cepheid run` reads the wall clock).
    /// let mut clock = 1_700_000_000_000;
    /// for line in [
    ///     r#"{"type": "created", "order_id": "o1"}"#,
    ///     r#"{"type": "created", "order_id": "o2"}"#,
    ///     r#"{"type": "paid", "order_id": "o2"}"#,
    /// ] {
    ///     if let Item::Event(_, record) = decoder.decode(line.as_bytes())? {
    ///         engine.push_now(clock, record, &mut out);
    ///     }
    ///     clock += 100;
    /// }
    /// // Still within the same millisecond: the last event waits for the clock.
    /// assert!(out.is_empty());
    /// engine.tick(clock, &mut out);
    /// assert!(matches!(&out[..], [Output::Match(m)] if m.start == 1_700_000_000_100));
    /// // Nothing arrives; a second later o1's window has closed.
    /// engine.tick(clock + 1_000, &mut out);
    /// assert!(matches!(&out[1], Output::Timeout { expired_at: 1_700_000_001_000, .. }));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn push_now<S: Sink<E> + ?Sized>(
        &mut self,
        now: Timestamp,
        event: E,
        sink: &mut S,
    ) -> Arrival {
        let ts = self.now_at(now, sink);
        self.push(ts, event, sink)
    }

    /// The time an event arriving at `now` (the caller's clock) takes, the
    /// engine's time moved to just before it ([`push_now`](Engine::push_now)).
    fn now_at<S: Sink<E> + ?Sized>(&mut self, now: Timestamp, sink: &mut S) -> Timestamp {
        let ts = match self.current_watermark() {
            Some(watermark) if now <= watermark => watermark.saturating_add(1),
            _ => now,
        };
        self.tick(ts, sink);
        ts
    }

    /// [`push_now`](Engine::push_now) with the event's input position,
    /// the id of its decisions when its scene has no `id` field (see
    /// [`push_positioned`](Engine::push_positioned)).
    pub fn push_now_positioned<S: Sink<E> + ?Sized>(
        &mut self,
        now: Timestamp,
        event: E,
        position: Value,
        sink: &mut S,
    ) -> Arrival {
        let ts = self.now_at(now, sink);
        self.push_positioned(ts, event, position, sink)
    }

    /// Processing time: the caller's clock reads `now`. Time moves to just
    /// before it (never backwards): every event that arrived in an earlier
    /// millisecond is processed, and every window that closed before `now`
    /// expires, even for keys that see no more events. Call it while the
    /// input is quiet (and after a burst of events, to process the last
    /// ones); see [`push_now`](Engine::push_now).
    pub fn tick<S: Sink<E> + ?Sized>(&mut self, now: Timestamp, sink: &mut S) {
        self.core.tick(now, sink);
    }
}
