//! `--idle-timeout`: event time that follows the wall clock while the input
//! is quiet, so that timeouts and pending `not followed by` endings fire on
//! a stream that has stopped (as a Flink source marked idle lets time pass).
//!
//! The rule: when no line has arrived for the timeout, the watermark
//! becomes the watermark at the last arrival plus the wall-clock time since
//! that arrival, and keeps following the clock until the next line. Events
//! that then arrive behind it are late, as any event behind the watermark.
//! The clock is passed in, so the rule is tested without waiting.

use std::time::{Duration, Instant};

use cepheid::Timestamp;

/// The idle clock of one run.
#[derive(Debug)]
pub struct Idle {
    timeout: Duration,
    /// When the last line arrived.
    last_arrival: Instant,
    /// The watermark when the input went quiet (set at the first idle
    /// advance, `None` while lines keep coming).
    anchor: Option<Timestamp>,
}

impl Idle {
    /// An idle clock that starts counting at `now`.
    pub fn new(timeout: Duration, now: Instant) -> Idle {
        Idle {
            timeout,
            last_arrival: now,
            anchor: None,
        }
    }

    /// Lines arrived at `now`: the input is not idle.
    pub fn arrived(&mut self, now: Instant) {
        self.last_arrival = now;
        self.anchor = None;
    }

    /// How long to wait for input before asking [`advance`](Self::advance)
    /// again: until the timeout while lines are recent, then a tenth of it
    /// (at least 10 ms, at most 1 s) while the clock leads time.
    pub fn wait(&self, now: Instant) -> Duration {
        let quiet = now.saturating_duration_since(self.last_arrival);
        match self.timeout.checked_sub(quiet) {
            Some(left) if !left.is_zero() => left,
            _ => (self.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        }
    }

    /// The watermark event time should have at `now`, given the engine's
    /// current one: `None` while the input is not idle, or before any
    /// watermark (a stream that has not started has no time to advance).
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn time_follows_the_clock_once_the_input_is_quiet() {
        let t0 = Instant::now();
        let mut idle = Idle::new(5 * S, t0);
        // lines keep coming: nothing
        idle.arrived(t0 + S);
        assert_eq!(idle.advance(t0 + 5 * S, Some(1_000)), None);
        // 5 s after the last line: the watermark then (1,000) plus 5 s
        assert_eq!(idle.advance(t0 + 6 * S, Some(1_000)), Some(6_000));
        // and on with the clock, from the same anchor
        assert_eq!(idle.advance(t0 + 8 * S, Some(6_000)), Some(8_000));
        // nothing new within the same millisecond
        assert_eq!(idle.advance(t0 + 8 * S, Some(8_000)), None);
        // a line: the anchor is dropped, the timeout counts again
        idle.arrived(t0 + 9 * S);
        assert_eq!(idle.advance(t0 + 10 * S, Some(20_000)), None);
        assert_eq!(idle.advance(t0 + 14 * S, Some(20_000)), Some(25_000));
    }

    #[test]
    fn a_stream_without_time_stays_without_time() {
        let t0 = Instant::now();
        let mut idle = Idle::new(S, t0);
        assert_eq!(idle.advance(t0 + 10 * S, None), None);
    }

    #[test]
    fn time_near_the_end_of_the_range_saturates() {
        let t0 = Instant::now();
        let mut idle = Idle::new(S, t0);
        let max = Timestamp::MAX;
        assert_eq!(idle.advance(t0 + 2 * S, Some(max - 10)), Some(max));
        assert_eq!(idle.advance(t0 + 3 * S, Some(max)), None);
    }

    #[test]
    fn waits_until_the_timeout_then_ticks() {
        let t0 = Instant::now();
        let idle = Idle::new(5 * S, t0);
        assert_eq!(idle.wait(t0 + 2 * S), 3 * S);
        assert_eq!(idle.wait(t0 + 6 * S), S / 2);
        let short = Idle::new(Duration::from_millis(20), t0);
        assert_eq!(short.wait(t0 + S), Duration::from_millis(10));
    }
}
