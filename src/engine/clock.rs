//! Event time: the global watermark and the events waiting for it.
//!
//! The watermark is the larger of the bounded-out-of-orderness rule
//! (largest event time seen − max delay − 1, so with a delay of 0 equal
//! times are not late) and the punctuated watermarks given; it never moves
//! backwards. An event is late when its time is at or below the watermark
//! (Flink's rule). Other events wait in a min-heap ordered by (time,
//! arrival) until the watermark passes their time.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::event::Timestamp;

/// An event waiting for the watermark.
#[derive(Debug)]
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

/// The watermark and the out-of-order buffer.
#[derive(Debug)]
pub(crate) struct Clock<E> {
    max_delay: i64,
    watermark: Timestamp,
    max_seen: Option<Timestamp>,
    arrivals: u64,
    waiting: BinaryHeap<Reverse<Waiting<E>>>,
}

impl<E> Clock<E> {
    /// A clock with this bounded out-of-orderness (negative counts as 0).
    pub fn new(max_delay: i64) -> Clock<E> {
        Clock {
            max_delay: max_delay.max(0),
            watermark: Timestamp::MIN,
            max_seen: None,
            arrivals: 0,
            waiting: BinaryHeap::new(),
        }
    }

    /// The current watermark (`Timestamp::MIN` before any).
    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The largest event time seen so far.
    pub fn max_seen(&self) -> Option<Timestamp> {
        self.max_seen
    }

    /// Number of events waiting for the watermark.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Takes an event in: `Err(event)` when it is late, else it waits and
    /// the watermark moves by the out-of-orderness rule.
    pub fn arrive(&mut self, ts: Timestamp, event: E) -> Result<(), E> {
        if ts <= self.watermark {
            return Err(event);
        }
        let seq = self.arrivals;
        self.arrivals += 1;
        self.waiting.push(Reverse(Waiting { ts, seq, event }));
        let max_seen = self.max_seen.map_or(ts, |m| m.max(ts));
        self.max_seen = Some(max_seen);
        self.raise(max_seen.saturating_sub(self.max_delay).saturating_sub(1));
        Ok(())
    }

    /// Moves the watermark up to `t` (never backwards).
    pub fn raise(&mut self, t: Timestamp) {
        self.watermark = self.watermark.max(t);
    }

    /// Time of the earliest waiting event the watermark has passed.
    pub fn next_ready(&self) -> Option<Timestamp> {
        let Reverse(first) = self.waiting.peek()?;
        (first.ts <= self.watermark).then_some(first.ts)
    }

    /// Removes the earliest waiting event if the watermark has passed it.
    pub fn pop_ready(&mut self) -> Option<(Timestamp, E)> {
        self.next_ready()?;
        let Reverse(first) = self.waiting.pop()?;
        Some((first.ts, first.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
