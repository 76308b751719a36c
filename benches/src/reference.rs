//! Reference counts for every workload, to check the engine against: the
//! baselines for `ab`, `login`, `unpaid` and `many`, and for `loop` a
//! closed-form count derived from Flink's automaton.
//!
//! `a followed by any b+ followed by c` (relaxed inside `b+`), per start
//! event `a` at `s` and the events of its key in `(s, s + within)`, with
//! `b_1 .. b_m` the `b` events among them:
//! - The run waiting for its first `b` ignores everything (`followed by
//!   any`) and never dies: one timeout.
//! - Each `b_i` starts a loop that then takes *every* later `b` (relaxed:
//!   the next matching event is taken), so the sequences of `b`s a match can
//!   hold are exactly the ranges `b_i ..= b_j`. Each loop head stays alive
//!   to the end of the window: `m` timeouts.
//! - A range `b_i ..= b_j` matches once, with the first `c` after `b_j`
//!   (taken either straight from the loop or by the run that left the loop
//!   and skips non-`c` events). Without such a `c` in the window, the run
//!   waiting for it exists (and times out) only if some event of the key
//!   follows `b_j` in the window, since that event is what makes the loop
//!   fork into "wait for `c`".
//!
//! This reproduces the table's `loop` row (435,615 matches, 618,989
//! timeouts), which `tests/workload_baselines.rs` checks.

use hashbrown::HashMap;

use crate::baseline::{self, WITHIN_10S};
use crate::{BenchEvent, Counts, Workload, TYPE_A, TYPE_B, TYPE_C};

/// The counts `workload` must produce on `events` (end of stream flushed).
pub fn counts(workload: Workload, events: &[BenchEvent]) -> Counts {
    match baseline::run(workload, events) {
        Some(counts) => counts,
        None => loop_counts(events, WITHIN_10S),
    }
}

/// The counts of `a followed by any b+ followed by c` with window `within`.
pub fn loop_counts(events: &[BenchEvent], within: i64) -> Counts {
    let mut by_key: HashMap<i64, Vec<BenchEvent>> = HashMap::new();
    for event in events {
        by_key.entry(event.key).or_default().push(*event);
    }
    let mut total = Counts::default();
    for stream in by_key.values() {
        for (index, start) in stream.iter().enumerate() {
            if start.kind != TYPE_A {
                continue;
            }
            let end = start.ts.saturating_add(within);
            let after = &stream[index + 1..];
            let in_window = after.iter().take_while(|e| e.ts < end).count();
            let counts = counts_for_start(&after[..in_window]);
            total.matches += counts.matches;
            total.timeouts += counts.timeouts;
        }
    }
    total
}

/// Matches and timeouts of the runs started at one `a`, given the events
/// of its key inside its window.
fn counts_for_start(window: &[BenchEvent]) -> Counts {
    let total_b = window.iter().filter(|e| e.kind == TYPE_B).count() as u64;
    // The waiting run, and one loop head per `b`.
    let mut counts = Counts {
        matches: 0,
        timeouts: 1 + total_b,
    };
    let mut c_later = false;
    let mut b_after = 0;
    for (position, event) in window.iter().enumerate().rev() {
        if event.kind == TYPE_B {
            // Ranges ending here: one per `b` up to and including this one.
            let ranges = total_b - b_after;
            if c_later {
                counts.matches += ranges;
            } else if position + 1 < window.len() {
                counts.timeouts += ranges;
            }
            b_after += 1;
        }
        if event.kind == TYPE_C {
            c_later = true;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: i64, ts: i64) -> BenchEvent {
        BenchEvent { key: 1, kind, ts }
    }

    #[test]
    fn worked_example_of_the_semantics() {
        // a b1 d1 b2 d2 b3 c (d = another `a`, which `b+` skips): the
        // ranges b1, b1b2, b1b2b3, b2, b2b3, b3 all match with c. Timeouts:
        // the waiting run and the 3 loop heads of the first `a`, and the
        // waiting run and loop heads of the two later `a`s (2 and 1 heads).
        let events = [
            ev(TYPE_A, 0),
            ev(TYPE_B, 1),
            ev(TYPE_A, 2),
            ev(TYPE_B, 3),
            ev(TYPE_A, 4),
            ev(TYPE_B, 5),
            ev(TYPE_C, 6),
        ];
        let counts = loop_counts(&events, 100);
        assert_eq!(counts.matches, 6 + 3 + 1);
        assert_eq!(counts.timeouts, 4 + 3 + 2);
    }

    #[test]
    fn unfinished_ranges_time_out_only_after_a_fork() {
        // a b1 b2: b1's range forked at b2 (waiting for c), b2's did not.
        let events = [ev(TYPE_A, 0), ev(TYPE_B, 1), ev(TYPE_B, 2)];
        // Waiting run + 2 heads + the fork of range b1.
        assert_eq!(
            loop_counts(&events, 100),
            Counts {
                matches: 0,
                timeouts: 4
            }
        );
    }

    #[test]
    fn the_window_bounds_a_match() {
        let events = [ev(TYPE_A, 0), ev(TYPE_B, 1), ev(TYPE_C, 10)];
        assert_eq!(
            loop_counts(&events, 10),
            Counts {
                matches: 0,
                timeouts: 2
            }
        );
        assert_eq!(
            loop_counts(&events, 11),
            Counts {
                matches: 1,
                timeouts: 2
            }
        );
    }
}
