//! Watermarks per split (a Kafka partition), combined by minimum, idle
//! splits released: what Flink's Kafka source does (a bounded
//! out-of-orderness watermark per split, the minimum across splits, a
//! split with no record for the idle timeout left out until it delivers
//! again). A pure type: the caller passes the processing time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Split {
    /// The largest event time seen, if any.
    max: Option<i64>,
    /// When it last delivered (or was added).
    active_at: Instant,
}

/// The combined watermark of several splits.
///
/// A split's own watermark is its largest event time less the
/// out-of-orderness bound less 1 ms (Flink's
/// `BoundedOutOfOrdernessWatermarks`); the combined one is the minimum
/// over the active splits, and never goes back: a split that comes back
/// from idleness behind it does not pull it back (its records behind it
/// are late). A split that has delivered nothing holds it back (as
/// Flink's `Long.MIN_VALUE`) until it is idle.
#[derive(Clone, Debug)]
pub struct SplitWatermarks {
    bound: i64,
    idle_timeout: Option<Duration>,
    splits: BTreeMap<usize, Split>,
    combined: Option<i64>,
}

impl SplitWatermarks {
    /// Watermarks `out_of_orderness` behind each split's largest event
    /// time (milliseconds); a split is idle after `idle_timeout` without
    /// a record (`None`: never).
    pub fn new(out_of_orderness: Duration, idle_timeout: Option<Duration>) -> SplitWatermarks {
        SplitWatermarks {
            bound: i64::try_from(out_of_orderness.as_millis()).unwrap_or(i64::MAX),
            idle_timeout,
            splits: BTreeMap::new(),
            combined: None,
        }
    }

    /// Adds `split` (no record yet, active from `now`); no effect if it
    /// is there.
    pub fn add_split(&mut self, split: usize, now: Instant) {
        self.splits.entry(split).or_insert(Split {
            max: None,
            active_at: now,
        });
    }

    /// Removes `split` (unassigned).
    pub fn remove_split(&mut self, split: usize) {
        self.splits.remove(&split);
    }

    /// A record of `split` with event time `timestamp` (milliseconds)
    /// arrived at `now`; adds the split if it is new.
    pub fn observe(&mut self, split: usize, timestamp: i64, now: Instant) {
        let s = self.splits.entry(split).or_insert(Split {
            max: None,
            active_at: now,
        });
        s.max = Some(s.max.map_or(timestamp, |m| m.max(timestamp)));
        s.active_at = s.active_at.max(now);
    }

    /// The split's own watermark, if it delivered a record.
    pub fn split_watermark(&self, split: usize) -> Option<i64> {
        let max = self.splits.get(&split)?.max?;
        Some(max.saturating_sub(self.bound).saturating_sub(1))
    }

    /// True when `split` has delivered nothing for the idle timeout.
    pub fn is_idle(&self, split: usize, now: Instant) -> bool {
        match (self.splits.get(&split), self.idle_timeout) {
            (Some(s), Some(timeout)) => now.saturating_duration_since(s.active_at) >= timeout,
            _ => false,
        }
    }

    /// Recomputes the combined watermark at `now` and returns it: the
    /// minimum of the active splits' own, if that is ahead of the last one
    /// (all splits idle: unchanged).
    pub fn advance(&mut self, now: Instant) -> Option<i64> {
        let mut active = self
            .splits
            .keys()
            .filter(|s| !self.is_idle(**s, now))
            .peekable();
        if active.peek().is_none() {
            return self.combined;
        }
        let mut min: Option<i64> = None;
        for split in active {
            match self.split_watermark(*split) {
                // A split without a record holds the watermark back.
                None => return self.combined,
                Some(w) => min = Some(min.map_or(w, |m| m.min(w))),
            }
        }
        if min > self.combined {
            self.combined = min;
        }
        self.combined
    }

    /// The combined watermark as last computed.
    pub fn current(&self) -> Option<i64> {
        self.combined
    }

    /// The splits, in order.
    pub fn splits(&self) -> impl Iterator<Item = usize> + '_ {
        self.splits.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_minimum_of_the_splits_less_the_bound() {
        let t0 = Instant::now();
        let mut w = SplitWatermarks::new(10 * MS, None);
        w.add_split(0, t0);
        w.add_split(1, t0);
        w.observe(0, 100, t0);
        assert_eq!(w.advance(t0), None, "split 1 has no record: held back");
        w.observe(1, 50, t0);
        assert_eq!(w.advance(t0), Some(39));
        w.observe(1, 500, t0);
        assert_eq!(w.advance(t0), Some(89));
        w.observe(0, 40, t0); // out of order: no effect
        assert_eq!(w.advance(t0), Some(89));
    }

    #[test]
    fn an_idle_split_is_released_and_does_not_pull_back_when_it_returns() {
        let t0 = Instant::now();
        let mut w = SplitWatermarks::new(Duration::ZERO, Some(1000 * MS));
        w.add_split(0, t0);
        w.add_split(1, t0);
        w.observe(0, 100, t0 + 500 * MS);
        assert_eq!(w.advance(t0 + 999 * MS), None);
        // Split 1 never delivered: idle after 1 s, released.
        assert_eq!(w.advance(t0 + 1000 * MS), Some(99));
        w.observe(0, 5000, t0 + 1500 * MS);
        assert_eq!(w.advance(t0 + 1500 * MS), Some(4999));
        // Split 1 comes back behind: the watermark stays, then follows
        // the minimum again.
        w.observe(1, 200, t0 + 1600 * MS);
        assert!(!w.is_idle(1, t0 + 1600 * MS));
        assert_eq!(w.advance(t0 + 1600 * MS), Some(4999));
        w.observe(1, 6000, t0 + 1700 * MS);
        assert_eq!(w.advance(t0 + 1700 * MS), Some(4999));
        w.observe(0, 7000, t0 + 1700 * MS);
        assert_eq!(w.advance(t0 + 1700 * MS), Some(5999));
        // Both idle: unchanged.
        assert_eq!(w.advance(t0 + 9000 * MS), Some(5999));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Record {
            split: usize,
            ts: i64,
            after_ms: u64,
        },
        Tick {
            after_ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4usize, -50i64..2000, 0u64..400)
                .prop_map(|(split, ts, after_ms)| Op::Record { split, ts, after_ms }),
            1 => (0u64..1500).prop_map(|after_ms| Op::Tick { after_ms }),
        ]
    }

    proptest! {
        /// The combined watermark never goes back; when it moves, it moves
        /// to the smallest active split's own watermark (so it never passes
        /// an active split's); with no idleness it never passes any split's.
        #[test]
        fn combined_is_monotone_and_bounded_by_the_active_splits(
            ops in proptest::collection::vec(op(), 1..80),
            bound in 0u64..100,
            idle in proptest::option::of(100u64..1000),
        ) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut w = SplitWatermarks::new(Duration::from_millis(bound), idle.map(Duration::from_millis));
            for s in 0..4 {
                w.add_split(s, t0);
            }
            let mut last = None;
            for op in ops {
                match op {
                    Op::Record { split, ts, after_ms } => {
                        now += Duration::from_millis(after_ms);
                        w.observe(split, ts, now);
                    }
                    Op::Tick { after_ms } => now += Duration::from_millis(after_ms),
                }
                let combined = w.advance(now);
                prop_assert!(combined >= last, "went back: {last:?} -> {combined:?}");
                let active: Vec<usize> = w.splits().filter(|s| !w.is_idle(*s, now)).collect();
                if combined != last {
                    let min = active.iter().map(|s| w.split_watermark(*s)).min().flatten();
                    prop_assert_eq!(combined, min);
                }
                if idle.is_none() {
                    for s in w.splits() {
                        prop_assert!(combined <= w.split_watermark(s));
                    }
                }
                last = combined;
            }
        }
    }
}
