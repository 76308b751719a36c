//! `SplitWatermarks`: per-split watermarks combined by minimum, idle
//! splits released, as Flink's Kafka source does (the one implementation:
//! the reader thread of a source with splits, a Kafka source's
//! partitions, uses it). The watermarks given are the splits' own (the
//! reader computes each as its largest event time less the delay less
//! 1 ms).

use std::time::{Duration, Instant};

use cepheid_runtime::SplitWatermarks;
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn the_least_of_the_splits_and_a_split_without_a_record_holds_it_back() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(2, None);
    w.update(0, 89, t0);
    assert_eq!(w.advance(t0), None, "split 1 has no record: held back");
    w.update(1, 39, t0);
    assert_eq!(w.advance(t0), Some(39));
    assert_eq!(w.emitted(), Some(39));
    w.update(1, 489, t0);
    assert_eq!(w.advance(t0), Some(89));
    // A split's watermark does not go back (a record out of order).
    w.update(0, 29, t0);
    assert_eq!(w.state(), vec![Some(89), Some(489)]);
    assert_eq!(w.advance(t0), None, "unchanged: nothing new to say");
    // Without an idle timeout a quiet split holds it back for good.
    let mut never = SplitWatermarks::new(2, None);
    never.update(0, 100, t0);
    assert_eq!(never.advance(t0 + 3_600_000 * MS), None);
}

#[test]
fn a_split_that_never_delivered_is_released_once_quiet_for_the_idle_timeout() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(2, Some(1000 * MS));
    // (the first instant given: split 1 is quiet from then on)
    assert_eq!(w.advance(t0), None);
    w.update(0, 99, t0 + 500 * MS);
    // Not yet: split 1 may still deliver something older.
    assert!(!w.is_idle(1, t0 + 999 * MS));
    assert_eq!(w.advance(t0 + 999 * MS), None);
    // Quiet for 1 s: left out.
    assert!(w.is_idle(1, t0 + 1000 * MS));
    assert_eq!(w.advance(t0 + 1000 * MS), Some(99));
}

#[test]
fn an_idle_split_is_released_and_does_not_pull_back_when_it_returns() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(2, Some(1000 * MS));
    w.update(0, 99, t0 + 500 * MS);
    w.update(1, 50, t0 + 500 * MS);
    assert_eq!(w.advance(t0 + 500 * MS), Some(50));
    w.update(0, 4999, t0 + 1400 * MS);
    // Split 1 quiet for 1 s: left out.
    assert_eq!(w.advance(t0 + 1499 * MS), None);
    assert_eq!(w.advance(t0 + 1500 * MS), Some(4999));
    // It comes back behind: the watermark stays, then follows the least
    // again.
    w.update(1, 199, t0 + 1600 * MS);
    assert!(!w.is_idle(1, t0 + 1600 * MS));
    assert_eq!(w.advance(t0 + 1600 * MS), None);
    assert_eq!(w.emitted(), Some(4999));
    w.update(1, 5999, t0 + 1700 * MS);
    assert_eq!(w.advance(t0 + 1700 * MS), None, "split 0 is the least");
    w.update(0, 6999, t0 + 1700 * MS);
    assert_eq!(w.advance(t0 + 1700 * MS), Some(5999));
    // Both idle: unchanged.
    assert_eq!(w.advance(t0 + 9000 * MS), None);
    assert_eq!(w.emitted(), Some(5999));
}

#[test]
fn after_a_pause_of_the_whole_input_the_splits_are_quiet_from_when_it_delivers_again() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(2, Some(1000 * MS));
    w.update(0, 99, t0);
    w.update(1, 109, t0);
    assert_eq!(w.advance(t0), Some(99));
    // The whole input quiet for 3 s: both idle, nothing moves.
    let t3 = t0 + 3000 * MS;
    assert!(w.is_idle(0, t3) && w.is_idle(1, t3));
    assert_eq!(w.advance(t3), None);
    // Split 0 delivers first after the pause: split 1 is quiet from now,
    // as at the start, and holds event time back at its own watermark.
    w.update(0, 2999, t3);
    assert!(!w.is_idle(1, t3));
    assert_eq!(w.advance(t3), Some(109));
    assert!(!w.is_idle(1, t3 + 999 * MS));
    // Quiet for the idle timeout since, while split 0 delivers: left out.
    w.update(0, 3499, t3 + 600 * MS);
    assert!(w.is_idle(1, t3 + 1000 * MS));
    assert_eq!(w.advance(t3 + 1000 * MS), Some(3499));
    // A pause of one split only starts nothing again.
    w.update(0, 3999, t3 + 1500 * MS);
    assert!(w.is_idle(1, t3 + 1500 * MS));
}

#[test]
fn a_quiet_split_with_records_waiting_is_not_idle_and_its_lag_is_asked_when_it_matters() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(2, Some(1000 * MS));
    w.update(0, 99, t0);
    w.update(1, 109, t0);
    assert_eq!(w.advance(t0), Some(99));
    // Split 1 quiet for the idle timeout while split 0 delivers: it would
    // be left out of a watermark that moves, and its lag was never told.
    // (A source that tells no lag: left out on its quiet alone.)
    let t1 = t0 + 1000 * MS;
    w.update(0, 499, t0 + 500 * MS);
    w.update(0, 999, t1);
    assert_eq!(w.lag_wanted(t1), vec![1]);
    assert!(w.clone().is_idle(1, t1));
    // It has records waiting: not idle, the watermark goes no further
    // than split 1's until they come.
    w.set_lag(1, 20, t1);
    assert_eq!(w.lag_wanted(t1), Vec::<usize>::new(), "told since");
    assert!(!w.is_idle(1, t1));
    assert_eq!(w.advance(t1), Some(109));
    // They come: the least of the two.
    w.update(1, 909, t1 + 10 * MS);
    assert_eq!(w.advance(t1 + 10 * MS), Some(909));
    // Quiet again past the timeout, and split 0 delivers: the lag told
    // before that says nothing now, it holds event time back until told
    // again.
    let t2 = t1 + 1500 * MS;
    w.update(0, 1999, t1 + 800 * MS);
    w.update(0, 2999, t2);
    assert!(!w.is_idle(1, t2));
    assert_eq!(w.lag_wanted(t2), vec![1]);
    assert_eq!(w.advance(t2), None);
    // Nothing waiting: left out.
    w.set_lag(1, 0, t2);
    assert_eq!(w.lag_wanted(t2), Vec::<usize>::new());
    assert!(w.is_idle(1, t2));
    assert_eq!(w.advance(t2), Some(2999));
    // Split 0 delivers again: asked again, held meanwhile.
    w.update(0, 3999, t2 + 50 * MS);
    assert_eq!(w.lag_wanted(t2 + 50 * MS), vec![1]);
    assert_eq!(w.advance(t2 + 50 * MS), None);
    // A source that cannot tell now: left out on its quiet alone.
    w.lag_untold();
    assert_eq!(w.advance(t2 + 50 * MS), Some(3999));
    // A quiet split ahead of the others is never asked: it holds nothing
    // back.
    let mut ahead = SplitWatermarks::new(2, Some(1000 * MS));
    ahead.update(1, 9999, t0);
    ahead.update(0, 99, t0 + 500 * MS);
    ahead.update(0, 199, t1);
    assert_eq!(ahead.lag_wanted(t1), Vec::<usize>::new());
    // Without an idle timeout nothing is idle, nothing asked.
    let mut never = SplitWatermarks::new(2, None);
    never.update(0, 99, t0);
    never.update(1, 9, t0);
    never.update(0, 199, t1);
    assert_eq!(never.lag_wanted(t1), Vec::<usize>::new());
}

#[test]
fn restored_watermarks_go_on_from_the_checkpoint() {
    let t0 = Instant::now();
    let mut w = SplitWatermarks::new(3, Some(1000 * MS));
    w.restore(&[Some(100), None, Some(300)], Some(100), t0);
    assert_eq!(w.emitted(), Some(100));
    // Split 1 never delivered: it holds back until quiet for the timeout.
    w.update(0, 400, t0 + 10 * MS);
    assert_eq!(w.advance(t0 + 10 * MS), None);
    // Quiet for 1 s since the resume: splits 1 and 2 are left out.
    assert_eq!(w.advance(t0 + 1000 * MS), Some(400));
    w.update(2, 500, t0 + 1100 * MS);
    w.update(0, 450, t0 + 1100 * MS);
    // (every split was quiet for 1 s before: a pause of the whole input,
    // after which split 1 is quiet from now, as at the start)
    assert_eq!(w.advance(t0 + 1100 * MS), None);
    w.update(0, 460, t0 + 1600 * MS);
    w.update(2, 600, t0 + 1600 * MS);
    assert_eq!(w.advance(t0 + 2100 * MS), Some(460));
    assert_eq!(w.state(), vec![Some(460), None, Some(600)]);
}

#[derive(Debug, Clone)]
enum Op {
    Record { split: usize, t: i64, after_ms: u64 },
    Tick { after_ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, -50i64..2000, 0u64..400)
            .prop_map(|(split, t, after_ms)| Op::Record { split, t, after_ms }),
        1 => (0u64..1500).prop_map(|after_ms| Op::Tick { after_ms }),
    ]
}

proptest! {
    /// The combined watermark never goes back; when it moves, it moves to
    /// the least watermark of the splits that are not idle (so it never
    /// passes one of them, and never moves while one of them has none);
    /// with no idle timeout it never passes any split's.
    #[test]
    fn combined_is_monotone_and_the_least_of_the_active_splits(
        ops in proptest::collection::vec(op(), 1..80),
        idle in proptest::option::of(100u64..1000),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut w = SplitWatermarks::new(4, idle.map(Duration::from_millis));
        let mut last = w.advance(now);
        prop_assert_eq!(last, None);
        for op in ops {
            match op {
                Op::Record { split, t, after_ms } => {
                    now += Duration::from_millis(after_ms);
                    w.update(split, t, now);
                }
                Op::Tick { after_ms } => now += Duration::from_millis(after_ms),
            }
            let moved = w.advance(now);
            let combined = w.emitted();
            prop_assert!(combined >= last, "went back: {:?} -> {:?}", last, combined);
            let state = w.state();
            let active: Vec<Option<i64>> = (0..4)
                .filter(|s| !w.is_idle(*s, now))
                .map(|s| state[s])
                .collect();
            if let Some(t) = moved {
                prop_assert!(last.map_or(true, |l| t > l));
                prop_assert!(active.iter().all(Option::is_some), "moved while an active split had none");
                prop_assert_eq!(Some(t), active.iter().flatten().min().copied());
            } else {
                prop_assert_eq!(combined, last);
            }
            if idle.is_none() {
                for s in &state {
                    prop_assert!(combined.is_none() || combined <= *s);
                }
            }
            last = combined;
        }
    }
}
