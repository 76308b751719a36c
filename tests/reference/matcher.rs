//! The reference run loop: runs as partial assignments of events to
//! positions, advanced event by event with the rules of the specification.
//!
//! A run is the list of `(position, event)` it took plus its *commitment*:
//! right after a take the run is *fresh* and may go on by any transition of
//! [`Shape::follow`]; once it has skipped an event it is committed to the one
//! transition that allowed the skip (Flink: a run that ignored an event sits
//! in one state). This distinction is visible in Flink's output (the number
//! of timeouts, which runs a `not next` stops), so the reference keeps it.

use cepheid::pattern::{Condition, ElementKind, Pattern, SkipStrategy, StageId};

use super::cond::{holds, RefEvent};
use super::shape::{bounds, Gap, Pos, Shape, Target, Trans};

/// How a greedy restriction is seen: lifted by an `until` copy, and whether
/// the run reaches the transition through a PROCEED on this event.
#[derive(Clone, Copy)]
struct Seen {
    lifted: bool,
    via_proceed: bool,
}

/// Every greedy restriction applies (a run right after a take).
const ALL: Seen = Seen {
    lifted: false,
    via_proceed: true,
};

/// One emitted match or timeout.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Emitted {
    /// When it was emitted: `2 * i` = while advancing time before event `i`,
    /// `2 * i + 1` = while processing event `i`, `2 * n` = the final advance.
    pub step: usize,
    /// Events per stage (stage name, event ids), stages in pattern order,
    /// stages without events left out.
    pub stages: Vec<(String, Vec<u64>)>,
    /// For timeouts: the time the window closed.
    pub expired_at: Option<i64>,
}

/// Everything a pattern produced over an input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Complete matches, in emission order.
    pub matches: Vec<Emitted>,
    /// Timed-out partial matches, in emission order.
    pub timeouts: Vec<Emitted>,
    /// Flink's output depends on an unspecified order here (two held matches
    /// with the same start event under a pruning skip strategy).
    pub ambiguous: bool,
}

#[derive(Clone, Debug)]
struct Run {
    taken: Vec<(Pos, usize)>,
    start: usize,
    start_ts: i64,
    prev_ts: i64,
    /// `None`: fresh; `Some([i, ..])`: committed to transition `i` of
    /// `follow` (plus the ways out of a group iteration it may still take,
    /// see [`Trans::sticky`]).
    commit: Option<Vec<usize>>,
    /// The greedy restriction of the committed transition no longer applies
    /// (the run left a greedy loop on an `until` event).
    lifted: bool,
}

#[derive(Clone, Debug)]
struct Held {
    taken: Vec<(Pos, usize)>,
    start: usize,
}

/// Runs `pattern` over `events` (sorted by time) and, when `end` is given,
/// advances time to `end` afterwards.
pub fn run(pattern: &Pattern, events: &[RefEvent], end: Option<i64>) -> Output {
    let mut m = Reference {
        shape: Shape::new(pattern),
        events,
        runs: Vec::new(),
        held: Vec::new(),
        out: Output::default(),
    };
    for (i, e) in events.iter().enumerate() {
        m.advance(e.ts, 2 * i);
        m.process(i, 2 * i + 1);
    }
    if let Some(t) = end {
        m.advance(t, 2 * events.len());
    }
    m.out
}

struct Reference<'p> {
    shape: Shape<'p>,
    events: &'p [RefEvent],
    runs: Vec<Run>,
    held: Vec<Held>,
    out: Output,
}

impl<'p> Reference<'p> {
    fn pattern(&self) -> &'p Pattern {
        self.shape.pattern
    }

    fn context(&self, taken: &[(Pos, usize)]) -> Vec<(StageId, &'p RefEvent)> {
        taken
            .iter()
            .map(|(p, i)| (self.shape.stage(p), &self.events[*i]))
            .collect()
    }

    fn holds(&self, cond: &Condition, event: usize, taken: &[(Pos, usize)]) -> bool {
        holds(cond, &self.events[event], &self.context(taken))
    }

    /// Time moves to `t`: runs whose window closed leave (pending ones as
    /// matches, the others as timeouts when asked for).
    fn advance(&mut self, t: i64, step: usize) {
        let window = self.pattern().within.filter(|w| *w > 0);
        let mut completed = Vec::new();
        let runs = std::mem::take(&mut self.runs);
        for run in runs {
            let first = window
                .filter(|w| t - run.start_ts >= *w)
                .map(|w| run.start_ts + w);
            let elem = self
                .waiting_window(&run)
                .filter(|w| t - run.prev_ts >= *w)
                .map(|w| run.prev_ts + w);
            // When both windows closed, Flink reports the element window's
            // time (`NFA.advanceTime` tests it first).
            let Some(expired_at) = elem.or(first) else {
                self.runs.push(run);
                continue;
            };
            if self.is_pending(&run) {
                completed.push(Held {
                    taken: run.taken,
                    start: run.start,
                });
            } else if self.pattern().emit_timeouts {
                let stages = self.stages(&run.taken);
                self.out.timeouts.push(Emitted {
                    step,
                    stages,
                    expired_at: Some(expired_at),
                });
            }
        }
        self.complete(completed, step);
    }

    /// Offers event `i` to every run and to a fresh start.
    fn process(&mut self, i: usize, step: usize) {
        let mut next = Vec::new();
        let mut completed = Vec::new();
        let runs = std::mem::take(&mut self.runs);
        for run in &runs {
            self.step_run(run, i, &mut next, &mut completed);
        }
        self.start_runs(i, &mut next, &mut completed);
        self.runs = next;
        self.complete(completed, step);
    }

    fn start_runs(&self, i: usize, next: &mut Vec<Run>, completed: &mut Vec<Held>) {
        for t in self.shape.start() {
            let Target::Take(q) = &t.target else { continue };
            if self.blocked(&t, ALL, i, &[]) || !self.holds(self.shape.condition(q), i, &[]) {
                continue;
            }
            let run = Run {
                taken: vec![(q.clone(), i)],
                start: i,
                start_ts: self.events[i].ts,
                prev_ts: self.events[i].ts,
                commit: None,
                lifted: false,
            };
            self.after_take(run, next, completed);
        }
    }

    /// A run just took an event: it is complete if the pattern may end
    /// here, and it lives on if anything may follow.
    fn after_take(&self, run: Run, next: &mut Vec<Run>, completed: &mut Vec<Held>) {
        let follow = self.shape.follow(&run.taken.last().expect("taken").0);
        let (event, before) = run.taken.split_last().expect("taken");
        let completes = |t: &Trans<'_>| {
            let negated = t.not_next.iter().any(|c| self.holds(c, event.1, before));
            let greedy = t.greedy_via_state && self.greedy_blocks(t, ALL, event.1, before);
            t.target == Target::Final && !t.greedy_early_exit && !negated && !greedy
        };
        if follow.iter().any(completes) {
            completed.push(Held {
                taken: run.taken.clone(),
                start: run.start,
            });
        }
        if follow.iter().any(|t| t.target != Target::Final) {
            next.push(run);
        }
    }

    /// Is taking event `i` on `t` forbidden by `until` or a greedy element?
    fn blocked(&self, t: &Trans<'_>, seen: Seen, i: usize, taken: &[(Pos, usize)]) -> bool {
        t.until.is_some_and(|u| self.holds(u, i, taken)) || self.greedy_blocks(t, seen, i, taken)
    }

    /// Is skipping event `i` on `t` forbidden?
    fn skip_blocked(&self, t: &Trans<'_>, seen: Seen, i: usize, taken: &[(Pos, usize)]) -> bool {
        (t.until_skip && t.until.is_some_and(|u| self.holds(u, i, taken)))
            || self.greedy_blocks(t, seen, i, taken)
    }

    /// Would a greedy element left on `t` take event `i`?
    fn greedy_blocks(&self, t: &Trans<'_>, seen: Seen, i: usize, taken: &[(Pos, usize)]) -> bool {
        !seen.lifted
            && t.greedy.iter().any(|(c, u, lasting)| {
                (*lasting || seen.via_proceed)
                    && self.holds(c, i, taken)
                    && !u.is_some_and(|u| self.holds(u, i, taken))
            })
    }

    /// Leaving a greedy loop on an event that satisfies its `until` goes to
    /// an unrestricted copy of the next state (Flink's `originalStateMap`
    /// copy): the restriction is lifted for the rest of that wait.
    fn variants(&self, t: &Trans<'_>, run: &Run, fresh: bool, i: usize) -> Vec<bool> {
        if !fresh {
            // A run that skipped into a separate ignore state has left the
            // restricted state: its transitions carry no greedy condition.
            let in_ignore = matches!(&t.target, Target::Take(q) if self.in_ignore_state(q));
            return vec![run.lifted || in_ignore];
        }
        let until_now = t
            .greedy
            .iter()
            .any(|(_, u, _)| u.is_some_and(|u| self.holds(u, i, &run.taken)));
        vec![until_now]
    }

    fn step_run(&self, run: &Run, i: usize, next: &mut Vec<Run>, completed: &mut Vec<Held>) {
        let follow = self.shape.follow(&run.taken.last().expect("taken").0);
        let fresh = run.commit.is_none();
        let chosen: Vec<(usize, &Trans<'_>)> = match &run.commit {
            Some(set) => set.iter().map(|&c| (c, &follow[c])).collect(),
            None => follow
                .iter()
                .enumerate()
                .filter(|(_, t)| t.target != Target::Final)
                .collect(),
        };
        let mut mine = Vec::new();
        let mut done = Vec::new();
        let mut stop = false;
        for (index, t) in chosen {
            // Does the run reach this transition through a PROCEED on this
            // event (right after a take, or leaving a sticky group wait)?
            let via_proceed = run.commit.as_ref().map_or(true, |set| set[0] != index);
            // The greedy restriction also guards the edges to Stop.
            let lifted = *self.variants(t, run, fresh, i).first().expect("a variant");
            let guarded = self.greedy_blocks(
                t,
                Seen {
                    lifted,
                    via_proceed,
                },
                i,
                &run.taken,
            );
            // A sticky group wait leaves through the next iteration's head:
            // it passes the `not next`s after the group, not those inside.
            let sticky = run
                .commit
                .as_ref()
                .and_then(|set| follow[set[0]].sticky.as_ref());
            let met =
                |k: usize| via_proceed && sticky.map_or(true, |g| !t.not_next_at[k].starts_with(g));
            let negated =
                (0..t.not_next.len()).any(|k| met(k) && self.holds(t.not_next[k], i, &run.taken));
            if !guarded && negated {
                // The `not next` state leads to Stop instead of onwards.
                stop = true;
                continue;
            }
            // Which negations stop a run waiting here: a separate ignore
            // state carries only the Stop edges Flink gives it.
            let nots: Vec<&Condition> = match &t.target {
                Target::Take(q)
                    if !via_proceed
                        && (self.optional_occurrence(t) || self.head_of_optional_group(q)) =>
                {
                    self.shape.preceding_nots(q)
                }
                _ if !via_proceed && t.optional_group_head => Vec::new(),
                _ => t.nots.clone(),
            };
            if !guarded && nots.iter().any(|c| self.holds(c, i, &run.taken)) {
                // A `not followed by` Stop sits beside the take.
                stop = true;
            }
            for lifted in self.variants(t, run, fresh, i) {
                let seen = Seen {
                    lifted,
                    via_proceed,
                };
                match &t.target {
                    Target::Take(q) => {
                        let accepts = self.holds(self.shape.condition(q), i, &run.taken);
                        if accepts && !self.blocked(t, seen, i, &run.taken) {
                            let mut taken = run.taken.clone();
                            taken.push((q.clone(), i));
                            let ts = self.events[i].ts;
                            let moved = Run {
                                taken,
                                prev_ts: ts,
                                commit: None,
                                lifted: false,
                                ..run.clone()
                            };
                            self.after_take(moved, &mut mine, &mut done);
                        }
                        let skip = !self.skip_blocked(t, seen, i, &run.taken)
                            && match t.gap {
                                Gap::Strict => false,
                                Gap::Relaxed => !accepts,
                                Gap::Any => true,
                            };
                        if skip {
                            mine.push(Run {
                                commit: Some(commitment(&follow, index)),
                                lifted,
                                ..run.clone()
                            });
                        }
                    }
                    // The greedy restriction covers these ends' transitions too.
                    Target::Pending { .. } => {
                        if !self.greedy_blocks(t, seen, i, &run.taken) {
                            mine.push(Run {
                                commit: Some(vec![index]),
                                ..run.clone()
                            });
                        }
                    }
                    Target::NotNextEnd => {
                        if !t.not_next.iter().any(|c| self.holds(c, i, &run.taken))
                            && !self.greedy_blocks(t, seen, i, &run.taken)
                        {
                            done.push(Held {
                                taken: run.taken.clone(),
                                start: run.start,
                            });
                        }
                    }
                    Target::Final => unreachable!("final transitions are taken at once"),
                }
            }
        }
        // A Stop on any branch discards every partial branch of this run,
        // but not a match completed by the same event (Flink's `doProcess`
        // collects final states before it looks for a Stop).
        if !stop {
            next.extend(mine);
        }
        completed.extend(done);
    }

    /// Is the run waiting only for its window to close (a trailing
    /// `not followed by`)?
    fn is_pending(&self, run: &Run) -> bool {
        let follow = self.shape.follow(&run.taken.last().expect("taken").0);
        match &run.commit {
            Some(set) => set.len() == 1 && matches!(follow[set[0]].target, Target::Pending { .. }),
            None => {
                // (A run that must first pass a `not next` waits in that
                // negation's state, not in the pending one.)
                let mut rest = follow.iter().filter(|t| t.target != Target::Final);
                match (rest.next(), rest.next()) {
                    (Some(t), None) => {
                        matches!(t.target, Target::Pending { .. }) && t.not_next.is_empty()
                    }
                    _ => false,
                }
            }
        }
    }

    /// The element window of the state the run waits in (Flink keeps
    /// PREVIOUS_AND_CURRENT windows on take states only).
    fn waiting_window(&self, run: &Run) -> Option<i64> {
        let follow = self.shape.follow(&run.taken.last().expect("taken").0);
        let (t, committed) = match &run.commit {
            Some(set) => (&follow[set[0]], true),
            None => (follow.iter().find(|t| t.target != Target::Final)?, false),
        };
        match &t.target {
            Target::Take(q) => {
                if committed && self.in_ignore_state(q) || !committed && !t.not_next.is_empty() {
                    return None;
                }
                self.shape.element(q).within
            }
            Target::Pending { window } => *window,
            _ => None,
        }
    }

    /// Is `q` the head stage of an optional group? Every state of it skips
    /// in a separate ignore state (Flink's `isHeadOfOptionalGroupPattern`).
    fn head_of_optional_group(&self, q: &[(usize, u32)]) -> bool {
        q.len() >= 2 && q[q.len() - 1].0 == 0 && self.shape.element(&q[..q.len() - 1]).optional
    }

    /// Does `t` wait for an optional occurrence of a counted element? Its
    /// separate ignore state carries no Stop edge of the negation after the
    /// element (Flink adds those to the occurrence state only).
    fn optional_occurrence(&self, t: &Trans<'_>) -> bool {
        let Target::Take(q) = &t.target else {
            return false;
        };
        let el = self.shape.element(q);
        let (min, max) = bounds(el);
        max.is_some() && q.last().expect("position").1 > min
    }

    /// Does a run that skipped events while waiting for `q` sit in a
    /// separate ignore state (loop tail, optional occurrence)?
    fn in_ignore_state(&self, q: &[(usize, u32)]) -> bool {
        let el = self.shape.element(q);
        let (min, _) = bounds(el);
        let k = q.last().expect("position").1;
        debug_assert!(matches!(el.kind, ElementKind::Stage(_)));
        k > min || (k == 1 && el.optional) || self.head_of_optional_group(q)
    }

    /// New complete matches: emitted at once, or held and released by the
    /// skip strategy.
    fn complete(&mut self, mut completed: Vec<Held>, step: usize) {
        completed.sort_by_key(|h| h.start);
        if self.pattern().skip == SkipStrategy::NoSkip {
            for h in completed {
                let stages = self.stages(&h.taken);
                self.out.matches.push(Emitted {
                    step,
                    stages,
                    expired_at: None,
                });
            }
            return;
        }
        self.held.extend(completed);
        self.held.sort_by_key(|h| h.start);
        while let Some(first) = self.held.first() {
            if self.runs.iter().any(|r| r.start < first.start) {
                break;
            }
            let same: Vec<_> = self
                .held
                .iter()
                .filter(|h| h.start == first.start)
                .collect();
            if same.windows(2).any(|w| w[0].taken != w[1].taken) {
                self.out.ambiguous = true;
            }
            let m = self.held.remove(0);
            let stages = self.stages(&m.taken);
            self.out.matches.push(Emitted {
                step,
                stages,
                expired_at: None,
            });
            self.prune(&m);
        }
    }

    fn prune(&mut self, m: &Held) {
        let shape = &self.shape;
        let stage_events = |s: StageId| {
            m.taken
                .iter()
                .filter(move |(p, _)| shape.stage(p) == s)
                .map(|(_, i)| *i)
        };
        let (point, inclusive) = match self.pattern().skip {
            SkipStrategy::NoSkip => return,
            SkipStrategy::ToNext => (m.taken[0].1, true),
            SkipStrategy::PastLastEvent => (m.taken.last().expect("taken").1, true),
            SkipStrategy::ToFirst(s) => match stage_events(s).next() {
                Some(p) => (p, false),
                None => return,
            },
            SkipStrategy::ToLast(s) => match stage_events(s).next_back() {
                Some(p) => (p, false),
                None => return,
            },
        };
        let dropped = move |start: usize| start < point || (inclusive && start == point);
        self.runs.retain(|r| !dropped(r.start));
        self.held.retain(|h| !dropped(h.start));
    }

    fn stages(&self, taken: &[(Pos, usize)]) -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<(StageId, Vec<u64>)> = Vec::new();
        for (p, i) in taken {
            let s = self.shape.stage(p);
            match out.iter_mut().find(|(t, _)| *t == s) {
                Some((_, ids)) => ids.push(self.events[*i].id),
                None => out.push((s, vec![self.events[*i].id])),
            }
        }
        out.sort_by_key(|(s, _)| *s);
        out.into_iter()
            .map(|(s, ids)| (self.pattern().stage(s).name.clone(), ids))
            .collect()
    }
}

/// The transitions a run that skipped an event on `follow[index]` is
/// committed to: that one, plus the ways out of a sticky group iteration.
fn commitment(follow: &[Trans<'_>], index: usize) -> Vec<usize> {
    let mut set = vec![index];
    if let Some(iteration) = &follow[index].sticky {
        set.extend((0..follow.len()).filter(|&u| {
            u != index && follow[u].target != Target::Final && follow[u].exits.contains(iteration)
        }));
    }
    set
}
