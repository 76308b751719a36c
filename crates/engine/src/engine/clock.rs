//! Event time: the global watermark and the events waiting for it.
//!
//! The watermark is the larger of the bounded-out-of-orderness rule
//! (largest event time seen − max delay − 1, so with a delay of 0 equal
//! times are not late) and the punctuated watermarks given; it never moves
//! backwards. An event is late when its time is at or below the watermark
//! (Flink's rule). Other events wait, ordered by (time, arrival), until the
//! watermark passes their time.
//!
//! Most events arrive in time order, so the waiting events are a
//! [`FifoHeap`]: an arrival whose time is at or after the last in-order one
//! goes to its FIFO (arrivals are numbered in order, so (time, arrival)
//! only grows there) at O(1), the out-of-order rest to its heap, and the
//! order is exactly the one a single heap gives.
//!
//! [`Idle`] is the rule of a quiet input (`--idle-timeout`): time that
//! follows the caller's wall clock once nothing has arrived for a while.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use super::queue::FifoHeap;
use crate::primitives::Timestamp;

/// An event waiting for the watermark.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Waiting<E> {
    ts: Timestamp,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Waiting<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}

impl<E> Eq for Waiting<E> {}

impl<E> PartialOrd for Waiting<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Waiting<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// The rule of event time, defined once: the watermark is the larger of
/// the largest time seen − `max_delay` − 1 and the punctuated watermarks
/// given, never backwards; an event at or below it is late. The engine's
/// clock and each dataflow source keep one.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    max_delay: i64,
    /// `None` before any: then no time is late, `i64::MIN` included.
    watermark: Option<Timestamp>,
    max_seen: Option<Timestamp>,
}

impl Watermark {
    /// No time seen yet; `max_delay` in milliseconds (negative counts as 0).
    pub fn new(max_delay: i64) -> Watermark {
        Watermark {
            max_delay: max_delay.max(0),
            watermark: None,
            max_seen: None,
        }
    }

    /// An event at `ts` arrives: `false` when it is late, else the largest
    /// time seen and the watermark follow it.
    #[inline]
    pub fn admit(&mut self, ts: Timestamp) -> bool {
        if self.watermark.is_some_and(|w| ts <= w) {
            return false;
        }
        let max_seen = self.max_seen.map_or(ts, |m| m.max(ts));
        self.max_seen = Some(max_seen);
        // Largest time seen minus the delay minus 1 ms; below the smallest
        // time there is no watermark yet (an event at `i64::MIN`, or a tie
        // with it, is not late).
        if let Some(t) = max_seen
            .checked_sub(self.max_delay)
            .and_then(|t| t.checked_sub(1))
        {
            self.raise(t);
        }
        true
    }

    /// Moves the watermark up to `t` (never backwards).
    #[inline]
    pub fn raise(&mut self, t: Timestamp) {
        self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
    }

    /// The watermark, `None` before any event or punctuation.
    #[inline]
    pub fn current(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// Sets the watermark back to `t` (at or below it), after the
    /// millisecond above `t` was processed at once and stays open to
    /// events of the same millisecond ([`Clock::reopen`]).
    pub fn reopen(&mut self, t: Option<Timestamp>) {
        debug_assert!(t <= self.watermark, "reopen moves the watermark back only");
        self.watermark = t;
    }

    /// The largest event time seen so far.
    pub fn max_seen(&self) -> Option<Timestamp> {
        self.max_seen
    }

    /// The bounded out-of-orderness, in milliseconds.
    pub fn max_delay(&self) -> i64 {
        self.max_delay
    }

    /// Another bounded out-of-orderness from now on (the watermark and the
    /// largest time seen kept).
    pub fn set_max_delay(&mut self, max_delay: i64) {
        self.max_delay = max_delay.max(0);
    }
}

/// The idle rule of event time (`cepheid run --idle-timeout`, a dataflow
/// source's idle timeout), defined once: when no input has arrived for
/// `timeout` of wall-clock time, the watermark becomes the watermark at
/// the last arrival plus the wall-clock time since that arrival, and keeps
/// following the clock until the next arrival, so timeouts and pending
/// `not followed by` endings fire on a quiet stream (as a Flink source
/// marked idle lets time pass). Events that then arrive behind it are
/// late, as any event behind the watermark.
///
/// The clock is the caller's: every method takes `now`, so the rule is
/// tested without waiting.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cepheid_engine::engine::Idle;
/// let s = Duration::from_secs(1);
/// let t0 = Instant::now();
/// let mut idle = Idle::new(5 * s, t0);
/// idle.arrived(t0 + s);
/// assert_eq!(idle.advance(t0 + 5 * s, Some(1_000)), None); // 4 s quiet
/// // 5 s after the last arrival: the watermark then (1,000) plus 5 s
/// assert_eq!(idle.advance(t0 + 6 * s, Some(1_000)), Some(6_000));
/// assert_eq!(idle.advance(t0 + 8 * s, Some(6_000)), Some(8_000));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Idle {
    timeout: Duration,
    /// When the last input arrived.
    last_arrival: Instant,
    /// The watermark when the input went quiet (set at the first idle
    /// advance, `None` while input keeps coming).
    anchor: Option<Timestamp>,
}

impl Idle {
    /// An idle clock with this timeout that starts counting at `now`.
    pub fn new(timeout: Duration, now: Instant) -> Idle {
        Idle {
            timeout,
            last_arrival: now,
            anchor: None,
        }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Input arrived at `now`: the input is not idle.
    pub fn arrived(&mut self, now: Instant) {
        self.last_arrival = now;
        self.anchor = None;
    }

    /// How long to wait for input before asking [`advance`](Self::advance)
    /// again: until the timeout while input is recent, then a tenth of it
    /// (at least 10 ms, at most 1 s) while the clock leads time.
    pub fn wait(&self, now: Instant) -> Duration {
        let quiet = now.saturating_duration_since(self.last_arrival);
        match self.timeout.checked_sub(quiet) {
            Some(left) if !left.is_zero() => left,
            _ => (self.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        }
    }

    /// The watermark event time should have at `now`, given the current
    /// one: `None` while the input is not idle, when time is already
    /// there, or before any watermark (a stream that has not started has
    /// no time to advance).
    pub fn advance(&mut self, now: Instant, current: Option<Timestamp>) -> Option<Timestamp> {
        let quiet = now.saturating_duration_since(self.last_arrival);
        if quiet < self.timeout {
            return None;
        }
        let anchor = *self.anchor.get_or_insert(current?);
        let elapsed = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let target = anchor.saturating_add(elapsed);
        (Some(target) > current).then_some(target)
    }
}

/// The watermark and the out-of-order buffer. A snapshot holds all of it
/// (postcard writes the fields of `time` in place: the same bytes as when
/// they were the clock's own).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Clock<E> {
    time: Watermark,
    arrivals: u64,
    /// The waiting events, by (time, arrival).
    waiting: FifoHeap<Waiting<E>>,
}

impl<E> Clock<E> {
    /// The lowest arrival number of the events waiting, if any (a walk
    /// over them: for a change of rules, not per event).
    pub fn first_waiting_arrival(&self) -> Option<u64> {
        self.waiting.iter().map(|w| w.seq).min()
    }

    /// Calls `f` on every waiting event (in no particular order; their
    /// order of processing stays as it was).
    pub fn for_each_waiting_mut(&mut self, mut f: impl FnMut(&mut E)) {
        self.waiting.for_each_mut(|w| f(&mut w.event));
    }

    /// A clock with this bounded out-of-orderness (negative counts as 0).
    pub fn new(max_delay: i64) -> Clock<E> {
        Clock {
            time: Watermark::new(max_delay),
            arrivals: 0,
            waiting: FifoHeap::default(),
        }
    }

    /// The bounded out-of-orderness, in milliseconds.
    pub fn max_delay(&self) -> i64 {
        self.time.max_delay()
    }

    /// Checks a clock read back from a snapshot: waiting events in order,
    /// numbered below the next arrival, and none at or below the watermark
    /// or above the largest time seen.
    pub fn check(&self) -> Result<(), cepheid_core::Inconsistent> {
        if !self.waiting.is_well_formed() {
            return Err("waiting events out of order".into());
        }
        for w in self.waiting.iter() {
            if w.seq >= self.arrivals || self.time.max_seen().map_or(true, |m| w.ts > m) {
                return Err("a waiting event that never arrived".into());
            }
        }
        Ok(())
    }

    /// The current watermark (`Timestamp::MIN` before any).
    pub fn watermark(&self) -> Timestamp {
        self.time.current().unwrap_or(Timestamp::MIN)
    }

    /// The current watermark, `None` before any.
    pub fn current(&self) -> Option<Timestamp> {
        self.time.current()
    }

    /// The largest event time seen so far.
    pub fn max_seen(&self) -> Option<Timestamp> {
        self.time.max_seen()
    }

    /// Bytes the waiting events take: the queue's room, and what each
    /// event holds on the heap (`event_bytes`).
    pub fn state_bytes(&self, event_bytes: impl Fn(&E) -> usize) -> usize {
        self.waiting.capacity() * std::mem::size_of::<Waiting<E>>()
            + self
                .waiting
                .iter()
                .map(|w| event_bytes(&w.event))
                .sum::<usize>()
    }

    /// Number of events waiting for the watermark.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Takes an event in: `Err(event)` when it is late, else it waits and
    /// the watermark moves by the out-of-orderness rule.
    #[inline(always)]
    pub fn arrive(&mut self, ts: Timestamp, event: E) -> Result<(), E> {
        if !self.time.admit(ts) {
            return Err(event);
        }
        let seq = self.arrivals;
        self.arrivals += 1;
        self.waiting.push(Waiting { ts, seq, event });
        Ok(())
    }

    /// Moves the watermark up to `t` (never backwards).
    #[inline]
    pub fn raise(&mut self, t: Timestamp) {
        self.time.raise(t);
    }

    /// Sets the watermark back to `t` after the millisecond above it was
    /// processed at once (`Engine::decide_now`): nothing waits at or
    /// below that millisecond and no deadline of it is left, so an event
    /// of the same millisecond arriving next is on time and is processed
    /// after the deadlines of its time and the events before it, as the
    /// held path would.
    pub fn reopen(&mut self, t: Option<Timestamp>) {
        if let (Some(first), Some(t)) = (self.waiting.peek(), t) {
            debug_assert!(first.ts > t, "reopen below a waiting event");
        }
        self.time.reopen(t);
    }

    /// Time of the earliest waiting event the watermark has passed.
    #[inline]
    pub fn next_ready(&self) -> Option<Timestamp> {
        let first = self.waiting.peek()?;
        let watermark = self.time.current()?;
        (first.ts <= watermark).then_some(first.ts)
    }

    /// Time of the earliest waiting event.
    #[inline]
    pub fn earliest_waiting(&self) -> Option<Timestamp> {
        self.waiting.peek().map(|first| first.ts)
    }

    /// Takes every waiting event out, in the order they would have been
    /// processed (time, then arrival), and sets another bounded
    /// out-of-orderness (the watermark and the largest time seen kept).
    pub fn take_waiting(&mut self, max_delay: i64) -> Vec<(Timestamp, E)> {
        (self.take_waiting_numbered(max_delay).into_iter())
            .map(|(ts, _, event)| (ts, event))
            .collect()
    }

    /// [`take_waiting`](Self::take_waiting), each event with its arrival
    /// number.
    pub fn take_waiting_numbered(&mut self, max_delay: i64) -> Vec<(Timestamp, u64, E)> {
        let mut taken = Vec::with_capacity(self.waiting.len());
        while let Some(w) = self.waiting.pop_if(|_| true) {
            taken.push((w.ts, w.seq, w.event));
        }
        self.time.set_max_delay(max_delay);
        taken
    }

    /// The arrival number the next event taken in gets.
    pub fn next_arrival_number(&self) -> u64 {
        self.arrivals
    }

    /// Goes on from another clock's state (a fresh clock: nothing seen,
    /// nothing waiting): its watermark and largest time seen, and the
    /// events `waiting` for it, in their order (each above the watermark
    /// and at or below the largest time seen).
    pub fn resume(
        &mut self,
        (watermark, max_seen): (Option<Timestamp>, Option<Timestamp>),
        waiting: Vec<(Timestamp, E)>,
    ) -> Result<(), cepheid_core::Inconsistent> {
        if self.time.current().is_some() || self.time.max_seen().is_some() || self.waiting() > 0 {
            return Err("the engine has seen events already".into());
        }
        if (waiting.iter()).any(|(ts, _)| {
            watermark.is_some_and(|w| *ts <= w) || !max_seen.is_some_and(|m| *ts <= m)
        }) {
            return Err(
                "a waiting event at or below the watermark, or above the largest time seen".into(),
            );
        }
        self.time.watermark = watermark;
        self.time.max_seen = max_seen;
        for (ts, event) in waiting {
            let seq = self.arrivals;
            self.arrivals += 1;
            self.waiting.push(Waiting { ts, seq, event });
        }
        self.check()
    }

    /// Removes the earliest waiting event if the watermark has passed it.
    #[inline(always)]
    pub fn pop_ready(&mut self) -> Option<(Timestamp, E)> {
        self.pop_ready_numbered().map(|(ts, _, event)| (ts, event))
    }

    /// [`pop_ready`](Clock::pop_ready), with the event's arrival number
    /// ([`next_arrival`](Clock::next_arrival) when it arrived).
    #[inline(always)]
    pub fn pop_ready_numbered(&mut self) -> Option<(Timestamp, u64, E)> {
        let watermark = self.time.current()?;
        let first = self.waiting.pop_if(|first| first.ts <= watermark)?;
        Some((first.ts, first.seq, first.event))
    }

    /// The arrival number the next event taken in gets.
    #[inline]
    pub fn next_arrival(&self) -> u64 {
        self.arrivals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// One step of a clock's life, for the property test.
    #[derive(Clone, Debug)]
    enum Step {
        Arrive(Timestamp),
        Raise(Timestamp),
        Pop,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0i64..60).prop_map(Step::Arrive),
            1 => (0i64..60).prop_map(Step::Raise),
            2 => Just(Step::Pop),
        ]
    }

    proptest! {
        /// The FIFO plus heap gives exactly the order of one plain heap of
        /// (time, arrival), whatever the arrival order and delay.
        #[test]
        fn same_order_as_a_single_heap(
            max_delay in 0i64..20,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let mut clock = Clock::new(max_delay);
            let mut model: BinaryHeap<Reverse<(Timestamp, u64)>> = BinaryHeap::new();
            let mut arrivals = 0u64;
            let steps = steps.into_iter().chain(std::iter::once(Step::Raise(Timestamp::MAX)));
            for step in steps {
                let pop_all = matches!(step, Step::Raise(Timestamp::MAX));
                match step {
                    Step::Arrive(ts) => {
                        let before = clock.watermark();
                        let accepted = clock.arrive(ts, arrivals).is_ok();
                        prop_assert_eq!(accepted, ts > before);
                        if accepted {
                            model.push(Reverse((ts, arrivals)));
                        }
                        arrivals += 1;
                    }
                    Step::Raise(t) => clock.raise(t),
                    Step::Pop => {}
                }
                loop {
                    let expected = model
                        .peek()
                        .filter(|Reverse((ts, _))| *ts <= clock.watermark())
                        .map(|Reverse(first)| *first);
                    prop_assert_eq!(clock.next_ready(), expected.map(|(ts, _)| ts));
                    prop_assert_eq!(clock.pop_ready(), expected);
                    prop_assert_eq!(clock.waiting(), model.len() - usize::from(expected.is_some()));
                    if expected.is_none() {
                        break;
                    }
                    model.pop();
                    if !pop_all {
                        break;
                    }
                }
            }
            prop_assert_eq!(clock.waiting(), 0);
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn idle_time_follows_the_clock_once_the_input_is_quiet() {
        let t0 = Instant::now();
        let mut idle = Idle::new(5 * S, t0);
        // input keeps coming: nothing
        idle.arrived(t0 + S);
        assert_eq!(idle.advance(t0 + 5 * S, Some(1_000)), None);
        // 5 s after the last arrival: the watermark then (1,000) plus 5 s
        assert_eq!(idle.advance(t0 + 6 * S, Some(1_000)), Some(6_000));
        // and on with the clock, from the same anchor
        assert_eq!(idle.advance(t0 + 8 * S, Some(6_000)), Some(8_000));
        // nothing new within the same millisecond
        assert_eq!(idle.advance(t0 + 8 * S, Some(8_000)), None);
        // an arrival: the anchor is dropped, the timeout counts again
        idle.arrived(t0 + 9 * S);
        assert_eq!(idle.advance(t0 + 10 * S, Some(20_000)), None);
        assert_eq!(idle.advance(t0 + 14 * S, Some(20_000)), Some(25_000));
    }

    #[test]
    fn an_idle_stream_without_time_stays_without_time() {
        let t0 = Instant::now();
        let mut idle = Idle::new(S, t0);
        assert_eq!(idle.advance(t0 + 10 * S, None), None);
    }

    #[test]
    fn idle_time_near_the_end_of_the_range_saturates() {
        let t0 = Instant::now();
        let mut idle = Idle::new(S, t0);
        let max = Timestamp::MAX;
        assert_eq!(idle.advance(t0 + 2 * S, Some(max - 10)), Some(max));
        assert_eq!(idle.advance(t0 + 3 * S, Some(max)), None);
    }

    #[test]
    fn idle_waits_until_the_timeout_then_ticks() {
        let t0 = Instant::now();
        let idle = Idle::new(5 * S, t0);
        assert_eq!(idle.wait(t0 + 2 * S), 3 * S);
        assert_eq!(idle.wait(t0 + 6 * S), S / 2);
        let short = Idle::new(Duration::from_millis(20), t0);
        assert_eq!(short.wait(t0 + S), Duration::from_millis(10));
    }

    #[test]
    fn zero_delay_allows_ties_but_not_earlier_times() {
        let mut clock = Clock::new(0);
        assert!(clock.arrive(10, 'a').is_ok());
        assert!(clock.arrive(10, 'b').is_ok());
        assert_eq!(clock.arrive(9, 'c'), Err('c'));
        assert_eq!(clock.watermark(), 9);
        assert_eq!(clock.next_ready(), None);
    }

    #[test]
    fn events_come_out_in_time_then_arrival_order() {
        let mut clock = Clock::new(100);
        for (ts, name) in [(5, 'a'), (3, 'b'), (5, 'c'), (4, 'd')] {
            clock.arrive(ts, name).unwrap();
        }
        clock.raise(5);
        let order: Vec<_> = std::iter::from_fn(|| clock.pop_ready()).collect();
        assert_eq!(order, vec![(3, 'b'), (4, 'd'), (5, 'a'), (5, 'c')]);
    }

    #[test]
    fn the_watermark_never_moves_backwards() {
        let mut clock: Clock<()> = Clock::new(0);
        clock.raise(50);
        clock.raise(20);
        assert_eq!(clock.watermark(), 50);
        assert_eq!(clock.arrive(50, ()), Err(()));
        assert!(clock.arrive(51, ()).is_ok());
        assert_eq!(clock.watermark(), 50);
    }
}
