//! Hand-written baselines: the simplest fast program for one rule, a hash
//! map of per-key state and no automaton, used to measure how close the
//! engine comes to the limit and to cross-check its counts.
//!
//! Each baseline follows the engine's semantics exactly for its rule:
//! time advances before an event is processed, a run started at `s` expires
//! at the first time `t` with `t - s >= within` (reported as a timeout, also
//! for keys that see no further event: a queue of deadlines in start order
//! plays the global watermark), and [`Baseline::finish`] lets time run to
//! infinity so every pending run expires. A key with no pending run holds no
//! memory.
//!
//! ```
//! use cepheid_bench::{baseline, Params, Workload};
//! let params = Params { events: 10_000, ..Workload::Ab.default_params() };
//! let events: Vec<_> = Workload::Ab.events(&params).collect();
//! let counts = baseline::run(Workload::Ab, &events).unwrap();
//! assert!(counts.matches > 0);
//! ```

use std::collections::VecDeque;

use hashbrown::HashMap;
use smallvec::SmallVec;

use crate::{many_rule, BenchEvent, Counts, Workload, MANY_RULES, TYPE_A, TYPE_B};
use cepheid_engine::Timestamp;

/// `within 10s` of `ab`, `login` and `loop`, in milliseconds.
pub const WITHIN_10S: Timestamp = 10_000;
/// `within 15m` of `unpaid`, in milliseconds.
pub const WITHIN_15M: Timestamp = 15 * 60 * 1_000;

/// A specialised matcher for one rule, fed events in time order.
pub trait Baseline {
    /// Advances time to the event's time, then processes the event.
    fn on_event(&mut self, event: &BenchEvent);
    /// Lets time run to infinity (every pending run expires) and returns the counts.
    fn finish(&mut self) -> Counts;
    /// Runs pending right now.
    fn live_runs(&self) -> usize;
    /// A sum over the events of every output, so that the work cannot be optimised away.
    fn checksum(&self) -> i64;
}

/// Runs the baseline of `workload` over `events`; `None` for `loop`, which
/// has none (see [`super::reference`] for its counts).
pub fn run(workload: Workload, events: &[BenchEvent]) -> Option<Counts> {
    match workload {
        Workload::Ab => Some(drive(FollowedBy::new(TYPE_A, TYPE_B, WITHIN_10S), events)),
        Workload::Unpaid => Some(drive(FollowedBy::new(TYPE_A, TYPE_B, WITHIN_15M), events)),
        Workload::Login => Some(drive(Times::consecutive(TYPE_A, 3, WITHIN_10S), events)),
        Workload::Many { rules } => Some(drive(Many::with_rules(rules), events)),
        Workload::Loop => None,
    }
}

/// The 20 rules of `many` in one pass: the baselines of `fail{n}
/// consecutive` and `fail{n}` (relaxed), n = 2..11, counts summed.
pub fn many(events: &[BenchEvent]) -> Counts {
    drive(Many::new(), events)
}

/// Several rules over one stream: every event goes to each in turn.
#[derive(Debug)]
pub struct Many {
    rules: Vec<Times>,
}

impl Many {
    /// The 20 rules of the `many` workload.
    pub fn new() -> Many {
        Many::with_rules(MANY_RULES)
    }

    /// The first `rules` rules of `many` ([`many_rule`]).
    pub fn with_rules(rules: u32) -> Many {
        let rules = (0..rules.max(1))
            .map(|i| {
                let rule = many_rule(i);
                let times = rule.times as usize;
                if rule.consecutive {
                    Times::consecutive(TYPE_A, times, rule.within_ms)
                } else {
                    Times::relaxed(TYPE_A, times, rule.within_ms)
                }
            })
            .collect();
        Many { rules }
    }
}

impl Default for Many {
    fn default() -> Self {
        Many::new()
    }
}

impl Baseline for Many {
    fn on_event(&mut self, event: &BenchEvent) {
        for rule in &mut self.rules {
            rule.on_event(event);
        }
    }

    fn finish(&mut self) -> Counts {
        let mut total = Counts::default();
        for rule in &mut self.rules {
            let counts = rule.finish();
            total.matches += counts.matches;
            total.timeouts += counts.timeouts;
        }
        total
    }

    fn live_runs(&self) -> usize {
        self.rules.iter().map(Times::live_runs).sum()
    }

    fn checksum(&self) -> i64 {
        self.rules
            .iter()
            .fold(0, |sum, rule| sum.wrapping_add(rule.checksum()))
    }
}

/// Feeds every event to `baseline`, then finishes it.
pub fn drive<B: Baseline>(mut baseline: B, events: &[BenchEvent]) -> Counts {
    for event in events {
        baseline.on_event(event);
    }
    baseline.finish()
}

/// Deadlines in start order, `(start + within, key)`: the global watermark's
/// view of which keys may hold an expired run.
#[derive(Debug, Default)]
struct Deadlines {
    queue: VecDeque<(Timestamp, i64)>,
}

impl Deadlines {
    /// The key of the oldest deadline at or before `now`, removed.
    fn pop_due(&mut self, now: Timestamp) -> Option<i64> {
        match self.queue.front() {
            Some(&(deadline, key)) if deadline <= now => {
                self.queue.pop_front();
                Some(key)
            }
            _ => None,
        }
    }
}

/// Pending runs of one key, oldest first: at most a few in these workloads.
type Runs = SmallVec<[BenchEvent; 2]>;

/// Removes the runs whose window (`within` after their start) closed at or
/// before `now`, for the keys whose deadline came; returns how many expired
/// and the wrapping sum of their start times (for the checksum).
fn expire_due(
    runs_by_key: &mut HashMap<i64, Runs>,
    deadlines: &mut Deadlines,
    within: Timestamp,
    now: Timestamp,
) -> (usize, i64) {
    let (mut expired, mut checksum) = (0, 0i64);
    while let Some(key) = deadlines.pop_due(now) {
        let Some(runs) = runs_by_key.get_mut(&key) else {
            continue;
        };
        let due = runs
            .iter()
            .take_while(|start| start.ts.saturating_add(within) <= now)
            .count();
        for start in runs.drain(..due) {
            checksum = checksum.wrapping_add(start.ts);
        }
        expired += due;
        if runs.is_empty() {
            runs_by_key.remove(&key);
        }
    }
    (expired, checksum)
}

/// `first followed by second within w` (`ab`, `unpaid`): every pending
/// `first` event matches the next `second` event of its key.
#[derive(Debug)]
pub struct FollowedBy {
    first: i64,
    second: i64,
    within: Timestamp,
    pending: HashMap<i64, Runs>,
    deadlines: Deadlines,
    live: usize,
    counts: Counts,
    checksum: i64,
}

impl FollowedBy {
    /// The rule `first followed by second` with window `within`.
    pub fn new(first: i64, second: i64, within: Timestamp) -> FollowedBy {
        FollowedBy {
            first,
            second,
            within,
            pending: HashMap::new(),
            deadlines: Deadlines::default(),
            live: 0,
            counts: Counts::default(),
            checksum: 0,
        }
    }

    /// Times out every run whose window closed at or before `now`.
    fn advance_time(&mut self, now: Timestamp) {
        let (expired, checksum) =
            expire_due(&mut self.pending, &mut self.deadlines, self.within, now);
        self.counts.timeouts += expired as u64;
        self.live -= expired;
        self.checksum = self.checksum.wrapping_add(checksum);
    }
}

impl Baseline for FollowedBy {
    fn on_event(&mut self, event: &BenchEvent) {
        self.advance_time(event.ts);
        if event.kind == self.second {
            if let Some(runs) = self.pending.remove(&event.key) {
                for start in &runs {
                    self.checksum = self.checksum.wrapping_add(start.ts ^ event.ts);
                }
                self.counts.matches += runs.len() as u64;
                self.live -= runs.len();
            }
        } else if event.kind == self.first {
            self.pending.entry(event.key).or_default().push(*event);
            let deadline = event.ts.saturating_add(self.within);
            self.deadlines.queue.push_back((deadline, event.key));
            self.live += 1;
        }
    }

    fn finish(&mut self) -> Counts {
        self.advance_time(Timestamp::MAX);
        self.counts
    }

    fn live_runs(&self) -> usize {
        self.live
    }

    fn checksum(&self) -> i64 {
        self.checksum
    }
}

/// `hit{n} consecutive within w` (`login`) or `hit{n} within w` (relaxed,
/// half of `many`): a run starts at every `hit` event and takes the next
/// `n - 1` `hit` events of its key; with `consecutive` any other event of the
/// key in between kills it, relaxed it is skipped. Every live run of a key
/// has taken every `hit` since its start, so the start events of the live
/// runs (at most `n - 1`) are the whole state.
#[derive(Debug)]
pub struct Times {
    hit: i64,
    times: usize,
    consecutive: bool,
    within: Timestamp,
    starts: HashMap<i64, Runs>,
    deadlines: Deadlines,
    live: usize,
    counts: Counts,
    checksum: i64,
}

impl Times {
    /// The rule `hit{times} consecutive` with window `within` (`times >= 1`).
    pub fn consecutive(hit: i64, times: usize, within: Timestamp) -> Times {
        Times::new(hit, times, true, within)
    }

    /// The rule `hit{times}` (relaxed) with window `within` (`times >= 1`).
    pub fn relaxed(hit: i64, times: usize, within: Timestamp) -> Times {
        Times::new(hit, times, false, within)
    }

    /// Either rule.
    fn new(hit: i64, times: usize, consecutive: bool, within: Timestamp) -> Times {
        Times {
            hit,
            times: times.max(1),
            consecutive,
            within,
            starts: HashMap::new(),
            deadlines: Deadlines::default(),
            live: 0,
            counts: Counts::default(),
            checksum: 0,
        }
    }

    /// Times out every run whose window closed at or before `now`.
    fn advance_time(&mut self, now: Timestamp) {
        let (expired, checksum) =
            expire_due(&mut self.starts, &mut self.deadlines, self.within, now);
        self.counts.timeouts += expired as u64;
        self.live -= expired;
        self.checksum = self.checksum.wrapping_add(checksum);
    }
}

impl Baseline for Times {
    fn on_event(&mut self, event: &BenchEvent) {
        self.advance_time(event.ts);
        if event.kind != self.hit {
            if self.consecutive {
                if let Some(starts) = self.starts.remove(&event.key) {
                    self.live -= starts.len();
                }
            }
            return;
        }
        let starts = self.starts.entry(event.key).or_default();
        starts.push(*event);
        self.live += 1;
        self.deadlines
            .queue
            .push_back((event.ts.saturating_add(self.within), event.key));
        if starts.len() == self.times {
            let first = starts.remove(0);
            self.checksum = self.checksum.wrapping_add(first.ts ^ event.ts);
            self.counts.matches += 1;
            self.live -= 1;
            if starts.is_empty() {
                self.starts.remove(&event.key);
            }
        }
    }

    fn finish(&mut self) -> Counts {
        self.advance_time(Timestamp::MAX);
        self.counts
    }

    fn live_runs(&self) -> usize {
        self.live
    }

    fn checksum(&self) -> i64 {
        self.checksum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event of key 1.
    fn ev(kind: i64, ts: Timestamp) -> BenchEvent {
        BenchEvent { key: 1, kind, ts }
    }

    fn counts(matches: u64, timeouts: u64) -> Counts {
        Counts { matches, timeouts }
    }

    #[test]
    fn followed_by_matches_every_pending_start() {
        let events = [ev(0, 0), ev(0, 5), ev(2, 6), ev(1, 7), ev(1, 8)];
        assert_eq!(drive(FollowedBy::new(0, 1, 10), &events), counts(2, 0));
    }

    #[test]
    fn followed_by_window_border_is_exclusive() {
        // The run started at 0 expires at 10, before the event at 10.
        let events = [ev(0, 0), ev(0, 1), ev(1, 10)];
        assert_eq!(drive(FollowedBy::new(0, 1, 10), &events), counts(1, 1));
    }

    #[test]
    fn quiet_keys_time_out_on_other_keys_time() {
        let mut rule = FollowedBy::new(0, 1, 10);
        rule.on_event(&ev(0, 0));
        assert_eq!(rule.live_runs(), 1);
        rule.on_event(&BenchEvent {
            key: 2,
            kind: 2,
            ts: 10,
        });
        assert_eq!(rule.live_runs(), 0);
        assert!(rule.pending.is_empty());
        assert_eq!(rule.finish(), counts(0, 1));
    }

    #[test]
    fn consecutive_dies_on_a_break() {
        // f f ok f f f: the first two runs die, the last streak matches once
        // and leaves two runs that expire at the end.
        let events = [ev(0, 0), ev(0, 1), ev(1, 2), ev(0, 3), ev(0, 4), ev(0, 5)];
        let mut rule = Times::consecutive(0, 3, 10);
        for e in &events {
            rule.on_event(e);
        }
        assert_eq!(rule.live_runs(), 2);
        assert_eq!(rule.finish(), counts(1, 2));
        assert!(rule.starts.is_empty());
    }

    #[test]
    fn consecutive_expiry_keeps_later_runs() {
        // The run started at 0 expires at 10; those at 5 and 10 go on.
        let events = [ev(0, 0), ev(0, 5), ev(0, 10), ev(0, 12)];
        assert_eq!(drive(Times::consecutive(0, 3, 10), &events), counts(1, 3));
    }

    #[test]
    fn relaxed_skips_other_events() {
        // f f ok f: the run from 0 completes at 3 despite the ok, the run
        // from 1 takes 3 and waits, the run from 3 waits.
        let events = [ev(0, 0), ev(0, 1), ev(1, 2), ev(0, 3)];
        assert_eq!(drive(Times::relaxed(0, 3, 10), &events), counts(1, 2));
        assert_eq!(drive(Times::consecutive(0, 3, 10), &events), counts(0, 1));
    }

    #[test]
    fn consecutive_other_keys_do_not_break_a_streak() {
        let other = BenchEvent {
            key: 2,
            kind: 1,
            ts: 1,
        };
        let events = [ev(0, 0), other, ev(0, 2), ev(0, 3)];
        assert_eq!(drive(Times::consecutive(0, 3, 10), &events), counts(1, 2));
    }
}
