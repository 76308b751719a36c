//! The runtime of Flink's `NFA.java`: `process` (`doProcess`,
//! `computeNextStates`, `createDecisionGraph`, `findFinalStateAfterProceed`)
//! and `advance_time` (`advanceTime`), an [`Executor`] driving an immutable
//! [`Nfa`] over one [`Partition`] with the caller's [`Cache`].

use super::buffer::{EventRef, SharedBuffer};
use super::heap::JavaHeap;
use super::run::{Partition, Run, Runs};
use super::skip::process_matches_by_skip;
use super::view::{MatchView, RunEvents};
use super::MatchSink;
use crate::event::Event;
use crate::nfa::{Action, EvalCtx, Nfa, StateId, StateKind};
use crate::pattern::SkipStrategy;
use crate::primitives::{StageId, Timestamp};

/// A TAKE or IGNORE edge found by the decision graph, with (for a TAKE) the
/// final state reachable by proceeding from its target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    action: Action,
    source: StateId,
    target: StateId,
    final_after: Option<StateId>,
}

/// The matcher's reusable per-call space: decision-graph edges, the
/// per-event values of conditions, emptied run vectors. The caller owns it
/// (one per thread of work: the engine keeps one), so that the steady state
/// allocates nothing; it works with any automaton, sizing itself at each
/// call, and holds nothing from one call to the next that matters. See
/// [`Executor`] for an example.
#[derive(Debug, Default)]
pub struct Cache {
    /// Per-event values of conditions that do not read the run, one byte
    /// per condition slot.
    slot_values: Vec<u8>,
    edges: Vec<Edge>,
    stack: Vec<StateId>,
    spare: Vec<Vec<Run>>,
    removed: Vec<Run>,
    timeouts: Vec<(Run, Timestamp)>,
    /// Decision graphs of this `process` call by state, for automata whose
    /// conditions do not read the run: `(stamp, start, len)` into
    /// `memo_edges`, valid when the stamp is the call's.
    memo: Vec<(u32, u32, u32)>,
    memo_edges: Vec<Edge>,
    stamp: u32,
}

/// How many emptied run vectors the cache keeps for reuse.
const SPARE_VECS: usize = 64;

impl Cache {
    /// An empty cache (it grows to what the automata it is used with need).
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Resets the per-event caches for an automaton with `slots` condition
    /// slots and `states` states.
    #[inline]
    fn begin_event(&mut self, slots: usize, states: usize) {
        self.slot_values.clear();
        self.slot_values.resize(slots, 0);
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.memo.fill((0, 0, 0));
            self.stamp = 1;
        }
        if self.memo.len() < states {
            self.memo.resize(states, (0, 0, 0));
        }
        self.memo_edges.clear();
    }

    fn take_vec(&mut self) -> Vec<Run> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `v` for reuse. Up to [`SPARE_VECS`] are kept: when many
    /// partitions go idle at one deadline they hand back one vector each,
    /// and the partitions that start next take them instead of allocating.
    fn give_vec(&mut self, mut v: Vec<Run>) {
        v.clear();
        if self.spare.len() < SPARE_VECS {
            self.spare.push(v);
        }
    }
}

/// Drives one automaton over partitions, with a [`Cache`] for its per-call
/// space: the runtime half of Flink's `NFA`, as regex-automata's `PikeVM`
/// drives a Thompson NFA with its `Cache`. It borrows both for as long as
/// it is used, so making one per call costs nothing:
///
/// - [`advance_time`](Self::advance_time)`(t)`: runs whose window closed at
///   `t` go (timeouts when the pattern asks), pending `not followed by`
///   endings complete, held matches whose blockers died are emitted;
/// - [`process`](Self::process)`(event)`: every run, and a fresh start run,
///   takes / ignores / dies; complete matches are emitted.
///
/// ```
/// use cepheid::matcher::{Cache, Executor, Partition, SharedBuffer};
/// use cepheid::matcher::{MatchSink, MatchView};
/// use cepheid::nfa::Nfa;
/// use cepheid::pattern::*;
/// use cepheid::primitives::StageId;
/// use cepheid::{Record, Timestamp};
///
/// let stages = vec![Stage::new("a", Condition::True), Stage::new("b", Condition::True)];
/// let sequence = Sequence::new(vec![Element::stage(StageId(0)), Element::stage(StageId(1))]);
/// let pattern = Pattern::new("two", stages, sequence);
/// let nfa = Nfa::<Record>::compile(&pattern, &mut cepheid::event::NoFields).unwrap();
///
/// struct Ends(Vec<(Timestamp, Timestamp)>);
/// impl MatchSink<Record> for Ends {
///     fn on_match(&mut self, m: &MatchView<'_, Record>) { self.0.push((m.start(), m.end())); }
///     fn on_timeout(&mut self, _: &MatchView<'_, Record>, _: Timestamp) {}
/// }
/// let (mut cache, mut part, mut buf, mut ends) =
///     (Cache::new(), Partition::new(), SharedBuffer::new(), Ends(Vec::new()));
/// for ts in [1, 2] {
///     let ev = buf.insert(ts, Record::new(vec![], "{}".into()));
///     let mut exec = Executor::new(&nfa, &mut cache);
///     exec.advance_time(&mut part, &mut buf, ts, &mut ends);
///     exec.process(&mut part, &mut buf, ev, &mut ends);
///     buf.release_if_unused(ev);
/// }
/// assert_eq!(ends.0, vec![(1, 2)]);
/// ```
pub struct Executor<'a, E> {
    nfa: &'a Nfa<E>,
    cache: &'a mut Cache,
    /// At most this many partial matches (live runs plus held matches) per
    /// partition after an event; the oldest runs beyond it are dropped.
    limit: usize,
}

impl<E> std::fmt::Debug for Executor<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("nfa", self.nfa)
            .field("cache", &self.cache)
            .field("limit", &self.limit)
            .finish()
    }
}

impl<'a, E: Event> Executor<'a, E> {
    /// Drives `nfa`, using `cache` for its per-call space (any cache: it
    /// sizes itself to the automaton).
    /// It applies no limit on partial matches: see
    /// [`with_run_limit`](Self::with_run_limit).
    #[inline]
    pub fn new(nfa: &'a Nfa<E>, cache: &'a mut Cache) -> Executor<'a, E> {
        Executor {
            nfa,
            cache,
            limit: usize::MAX,
        }
    }

    /// Bounds a partition's state: after [`process`](Self::process), when
    /// the partition holds more than `limit` partial matches (runs that
    /// took an event, plus complete matches a skip strategy holds back),
    /// its oldest runs (earliest start event first, ties in heap order)
    /// are dropped until it holds `limit`, or no run is left to drop.
    /// Each dropped run goes to [`MatchSink::on_dropped`]; held matches
    /// that a dropped run was blocking are then emitted as the skip
    /// strategy says. A `limit` of 0 counts as 1.
    #[inline]
    pub fn with_run_limit(mut self, limit: usize) -> Executor<'a, E> {
        self.limit = limit.max(1);
        self
    }

    /// The automaton.
    pub fn nfa(&self) -> &'a Nfa<E> {
        self.nfa
    }

    /// Offers one event to every run of the partition and to a fresh start,
    /// emitting complete matches. Time must already have been advanced to the
    /// event's time ([`advance_time`](Self::advance_time)).
    pub fn process(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        event: EventRef,
        out: &mut dyn MatchSink<E>,
    ) {
        let nfa = self.nfa;
        self.cache.begin_event(nfa.slot_count(), nfa.states().len());
        let mut next;
        let mut potential;
        if part.runs.is_empty() && part.completed.is_empty() {
            // An idle partition has only the start run. When the start run
            // finds no TAKE or IGNORE edge for this event, its only branch is
            // itself: nothing is emitted and the partition stays idle, so
            // nothing changes. Otherwise its edges are used as they are.
            let start = Run::start(nfa.start(), nfa.fresh_accumulators().clone());
            self.create_decision_graph(&start, event, buf, false);
            if self.cache.edges.is_empty() {
                return;
            }
            let start = match self.cache.edges[..] {
                [edge] => match self.start_one_run(part, buf, event, start, edge) {
                    Ok(()) => return,
                    Err(start) => start,
                },
                _ => start,
            };
            next = JavaHeap::from_vec(self.cache.take_vec());
            potential = JavaHeap::from_vec(self.cache.take_vec());
            self.route(start, event, buf, &mut next, &mut potential);
        } else {
            next = JavaHeap::from_vec(self.cache.take_vec());
            potential = JavaHeap::from_vec(self.cache.take_vec());
            let mut old = part.take_own_runs(|| self.cache.take_vec());
            // Worth it when several runs may share a state.
            let memo = nfa.run_independent() && old.len() > 2;
            for run in old.drain(..) {
                self.create_decision_graph(&run, event, buf, memo);
                self.route(run, event, buf, &mut next, &mut potential);
            }
            self.cache.give_vec(old);
        }
        if nfa.pattern().skip == SkipStrategy::NoSkip {
            for m in potential.iter() {
                out.on_match(&MatchView::new(nfa, buf, m));
            }
            for m in potential.drain() {
                buf.release(m.node);
            }
        } else {
            process_matches_by_skip(
                nfa,
                part,
                &mut potential,
                &mut next,
                buf,
                &mut self.cache.removed,
                out,
            );
        }
        if next.len() + part.completed.len() > self.limit {
            self.drop_oldest(part, &mut next, buf, out);
        }
        self.settle(part, potential, next);
    }

    /// The partition holds more than the limit (counting the start run, so
    /// perhaps not): drops its oldest runs until it holds `limit` partial
    /// matches (or none is left), then releases the held matches they were
    /// blocking. See [`with_run_limit`](Self::with_run_limit).
    #[cold]
    #[inline(never)]
    fn drop_oldest(
        &mut self,
        part: &mut Partition,
        next: &mut JavaHeap<Run>,
        buf: &mut SharedBuffer<E>,
        out: &mut dyn MatchSink<E>,
    ) {
        let nfa = self.nfa;
        let mut partial = next.iter().filter(|r| !r.is_start()).count();
        let mut dropped = false;
        while partial > 0 && partial + part.completed.len() > self.limit {
            // The start run sorts last: the smallest run is a partial one.
            let Some(run) = next.poll() else {
                break;
            };
            out.on_dropped(&MatchView::new(nfa, buf, &run));
            buf.release(run.node);
            partial -= 1;
            dropped = true;
        }
        if dropped && !part.completed.is_empty() {
            let mut none = JavaHeap::from_vec(self.cache.take_vec());
            process_matches_by_skip(
                nfa,
                part,
                &mut none,
                next,
                buf,
                &mut self.cache.removed,
                out,
            );
            self.cache.give_vec(none.into_vec());
        }
    }

    /// Advances the partition's time to `t`: runs whose window closed are
    /// removed (reported as timeouts when the pattern asks), pending
    /// `not followed by` endings complete, held matches whose blockers died
    /// are released.
    pub fn advance_time(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) {
        if !part.next_deadline().is_some_and(|d| d <= t) && part.completed.is_empty() {
            return;
        }
        if self.expire_all(part, buf, t, out) {
            return;
        }
        let nfa = self.nfa;
        let cache = &mut *self.cache;
        let mut next = JavaHeap::from_vec(cache.take_vec());
        let mut potential = JavaHeap::from_vec(cache.take_vec());
        let mut old = part.take_runs(nfa, || cache.take_vec());
        for run in old.drain(..) {
            if run.is_start() {
                next.offer(run);
                continue;
            }
            let state = nfa.state(run.state);
            // A window closes at `base + w`, saturated at the largest
            // time: the same value the partition's deadline is, so a due
            // deadline always expires something (a window that would end
            // past `Timestamp::MAX` closes there, never earlier).
            let by_previous = state
                .window
                .map(|w| run.prev_ts.saturating_add(w))
                .filter(|end| t >= *end);
            let by_first = nfa
                .window()
                .map(|w| run.start_ts.saturating_add(w))
                .filter(|end| t >= *end);
            match by_previous.or(by_first) {
                None => next.offer(run),
                Some(_) if state.kind == StateKind::Pending => potential.offer(run),
                Some(expired_at) if nfa.pattern().emit_timeouts => {
                    cache.timeouts.push((run, expired_at))
                }
                Some(_) => buf.release(run.node),
            }
        }
        cache.give_vec(old);
        process_matches_by_skip(
            nfa,
            part,
            &mut potential,
            &mut next,
            buf,
            &mut cache.removed,
            out,
        );
        for (run, expired_at) in &cache.timeouts {
            out.on_timeout(&MatchView::new(nfa, buf, run), *expired_at);
        }
        for (run, _) in cache.timeouts.drain(..) {
            buf.release(run.node);
        }
        self.settle(part, potential, next);
    }

    /// The common case of an idle partition's event, without the heaps: the
    /// start run's only edge TAKEs the event into an ordinary state from
    /// which no final state is reached. The general path would offer the
    /// taken run, then the start run, to a new heap (in that order, which
    /// is already heap order: the start run sorts last) and emit nothing;
    /// this stores the two runs directly. Gives the start run back, having
    /// changed nothing, for any other edge.
    fn start_one_run(
        &self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        ev: EventRef,
        start: Run,
        edge: Edge,
    ) -> Result<(), Run> {
        let nfa = self.nfa;
        let stage = match (edge.action, edge.final_after, nfa.state(edge.source).stage) {
            (Action::Take, None, Some(stage))
                if nfa.state(edge.target).kind == StateKind::Normal =>
            {
                stage
            }
            _ => return Err(start),
        };
        let taken = take(nfa, &start, stage, edge.target, ev, buf);
        buf.retain(taken.node);
        part.runs = Runs::from_buf([taken, start]);
        part.refresh_deadline(nfa);
        Ok(())
    }

    /// The common case of [`advance_time`](Self::advance_time), without its
    /// heaps: no held match, and every partial run's pattern window has
    /// closed at `t`, none waiting in a state with an element window or in a
    /// pending `not followed by` ending. Then every partial run times out
    /// (in array order, as the general path reports them) and the partition
    /// goes idle. Returns false, changing nothing, in any other case.
    fn expire_all(
        &self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) -> bool {
        let nfa = self.nfa;
        let Some(window) = nfa.window() else {
            return false;
        };
        let all_expire = part.completed.is_empty()
            && part.runs.iter().all(|run| {
                let state = nfa.state(run.state);
                run.is_start()
                    || (state.window.is_none()
                        && state.kind != StateKind::Pending
                        && t >= run.start_ts.saturating_add(window))
            });
        if !all_expire {
            return false;
        }
        if nfa.pattern().emit_timeouts {
            for run in part.runs.iter().filter(|r| !r.is_start()) {
                let expired_at = run.start_ts.saturating_add(window);
                out.on_timeout(&MatchView::new(nfa, buf, run), expired_at);
            }
        }
        for run in part.runs.drain(..) {
            buf.release(run.node);
        }
        // (drained, but a spilled vector would keep its allocation)
        part.runs = Default::default();
        part.refresh_deadline(nfa);
        true
    }

    /// Ends a step: the emptied heaps go back to the cache, `next` becomes
    /// the partition's runs, and its deadline is recomputed. Always inlined:
    /// it ends every call on the hot path (callgrind: 647M vs 650M
    /// instructions on `ab` at N = 200,000 against the two copies it
    /// replaced).
    #[inline(always)]
    fn settle(&mut self, part: &mut Partition, potential: JavaHeap<Run>, next: JavaHeap<Run>) {
        self.cache.give_vec(potential.into_vec());
        if let Some(spare) = part.put_runs(next) {
            self.cache.give_vec(spare);
        }
        part.refresh_deadline(self.nfa);
    }

    /// Flink's `computeNextStates` for one run whose decision graph is in
    /// `cache.edges`: its branches go to `next` (partial runs) or
    /// `potential` (complete matches); a run whose branches include a stop
    /// state is discarded with all of them. The run is consumed: its node
    /// reference passes to its branches or is released.
    ///
    /// Two common cases skip the general branch building: a run with no
    /// edge dies, and a run whose only edge IGNOREs the event back into its
    /// own state stays exactly as it is.
    #[inline]
    fn route(
        &mut self,
        run: Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        next: &mut JavaHeap<Run>,
        potential: &mut JavaHeap<Run>,
    ) {
        let nfa = self.nfa;
        let edges = &self.cache.edges;
        let is_start = run.is_start();
        match edges[..] {
            [] if is_start => return next.offer(run),
            [] => return buf.release(run.node),
            [Edge {
                action: Action::Ignore,
                target,
                ..
            }] if !is_start
                && target == run.state
                && matches!(
                    nfa.state(target).kind,
                    StateKind::Normal | StateKind::Start | StateKind::Pending
                ) =>
            {
                return next.offer(run);
            }
            _ => {}
        }
        // A branch into a stop state discards the run and its other partial
        // branches (complete matches still count, as in Flink).
        let is_stop = |s: StateId| nfa.state(s).kind == StateKind::Stop;
        let discard = edges.iter().any(|e| match e.action {
            Action::Ignore => !is_start && is_stop(e.target),
            Action::Take => nfa.state(e.source).stage.is_some() && is_stop(e.target),
            Action::Proceed => false,
        });
        // Where a branch into `state` goes: `Some(true)` complete, `Some(false)`
        // partial, `None` dropped.
        let dest = |state: StateId| match nfa.state(state).kind {
            StateKind::Final => Some(true),
            StateKind::Stop => None,
            _ if discard => None,
            _ => Some(false),
        };
        for &edge in edges {
            match edge.action {
                Action::Ignore if !is_start => {
                    let Some(complete) = dest(edge.target) else {
                        continue;
                    };
                    buf.retain(run.node);
                    let branch = Run {
                        state: edge.target,
                        ..run.clone()
                    };
                    if complete {
                        potential.offer(branch);
                    } else {
                        next.offer(branch);
                    }
                }
                Action::Take => {
                    let Some(stage) = nfa.state(edge.source).stage else {
                        continue;
                    };
                    let taken_dest = dest(edge.target);
                    if taken_dest.is_none() && edge.final_after.is_none() {
                        continue;
                    }
                    let taken = take(nfa, &run, stage, edge.target, ev, buf);
                    let node = taken.node;
                    let completed = edge.final_after.map(|f| Run {
                        state: f,
                        ..taken.clone()
                    });
                    match taken_dest {
                        Some(true) => potential.offer(taken),
                        Some(false) => next.offer(taken),
                        None => {}
                    }
                    if taken_dest.is_some() {
                        buf.retain(node);
                    }
                    if let Some(completed) = completed {
                        buf.retain(node);
                        potential.offer(completed);
                    }
                }
                Action::Ignore | Action::Proceed => {}
            }
        }
        let node = run.node;
        if is_start && !discard {
            next.offer(run);
        }
        buf.release(node);
    }

    /// Flink's `createDecisionGraph`: a depth-first walk over the PROCEED
    /// edges that hold for this event, collecting the TAKE and IGNORE edges
    /// that hold (in Flink's stack order) into `cache.edges`.
    ///
    /// With `memo` (allowed only when no condition reads the run, so that
    /// the graph depends on the run's state only), each state's graph is
    /// computed once per event (many runs of a partition often wait in the
    /// same state).
    fn create_decision_graph(
        &mut self,
        run: &Run,
        ev: EventRef,
        buf: &SharedBuffer<E>,
        memo: bool,
    ) {
        let nfa = self.nfa;
        let cache = &mut *self.cache;
        if !memo {
            return walk_decision_graph(nfa, run, ev, buf, cache);
        }
        let i = run.state.index();
        let (stamp, start, len) = cache.memo[i];
        if stamp == cache.stamp {
            let (start, len) = (start as usize, len as usize);
            cache.edges.clear();
            cache
                .edges
                .extend_from_slice(&cache.memo_edges[start..start + len]);
            return;
        }
        walk_decision_graph(nfa, run, ev, buf, cache);
        let start = cache.memo_edges.len();
        cache.memo_edges.extend_from_slice(&cache.edges);
        cache.memo[i] = (cache.stamp, start as u32, cache.edges.len() as u32);
    }
}

/// The run that results from `run` taking `ev` into `stage` and moving to
/// `target`: a new buffer node after the run's (not yet retained by the new
/// run), the stage's accumulators updated, the start time set if this is
/// the run's first event. Always inlined: both callers are on the hot path.
#[inline(always)]
fn take<E: Event>(
    nfa: &Nfa<E>,
    run: &Run,
    stage: StageId,
    target: StateId,
    ev: EventRef,
    buf: &mut SharedBuffer<E>,
) -> Run {
    let mut accumulators = run.accumulators.clone();
    accumulators.on_take(nfa.layout(), stage, buf.get(ev));
    let node = buf.put(stage, ev, run.node);
    let ts = buf.timestamp(ev);
    let (start_ts, start_seq) = if run.is_start() {
        (ts, buf.sequence(ev))
    } else {
        (run.start_ts, run.start_seq)
    };
    Run {
        state: target,
        node,
        start_ts,
        prev_ts: ts,
        start_seq,
        accumulators,
    }
}

/// The walk behind [`Executor::create_decision_graph`].
fn walk_decision_graph<E: Event>(
    nfa: &Nfa<E>,
    run: &Run,
    ev: EventRef,
    buf: &SharedBuffer<E>,
    cache: &mut Cache,
) {
    cache.edges.clear();
    cache.stack.clear();
    let view = RunEvents::new(nfa, buf, run.node);
    let ctx = EvalCtx {
        event: buf.get(ev),
        accumulators: &run.accumulators,
        stages: &view,
    };
    if !nfa.proceeds(run.state) {
        for t in &nfa.state(run.state).transitions {
            if nfa.eval(t.cond, &ctx, &mut cache.slot_values) {
                let final_after = if t.action == Action::Take {
                    final_state_after_proceed(nfa, t.target, &ctx, &mut cache.slot_values)
                } else {
                    None
                };
                cache.edges.push(Edge {
                    action: t.action,
                    source: run.state,
                    target: t.target,
                    final_after,
                });
            }
        }
        return;
    }
    // No visited set and no budget, as in Flink: the compiler rejects
    // PROCEED cycles and bounds the number of PROCEED paths
    // (`nfa::MAX_PROCEED_PATHS`), so the walk ends and is exact.
    cache.stack.push(run.state);
    while let Some(state) = cache.stack.pop() {
        for t in &nfa.state(state).transitions {
            if !nfa.eval(t.cond, &ctx, &mut cache.slot_values) {
                continue;
            }
            match t.action {
                Action::Proceed => cache.stack.push(t.target),
                Action::Take | Action::Ignore => {
                    let final_after = if t.action == Action::Take {
                        final_state_after_proceed(nfa, t.target, &ctx, &mut cache.slot_values)
                    } else {
                        None
                    };
                    cache.edges.push(Edge {
                        action: t.action,
                        source: state,
                        target: t.target,
                        final_after,
                    });
                }
            }
        }
    }
}

/// Flink's `findFinalStateAfterProceed`, evaluated (as in Flink) with the
/// run's context from before the event was taken.
fn final_state_after_proceed<E: Event>(
    nfa: &Nfa<E>,
    from: StateId,
    ctx: &EvalCtx<'_, E>,
    slot_values: &mut [u8],
) -> Option<StateId> {
    if !nfa.proceeds(from) {
        return None;
    }
    let mut stack: smallvec::SmallVec<[StateId; 8]> = smallvec::smallvec![from];
    while let Some(state) = stack.pop() {
        for t in &nfa.state(state).transitions {
            if t.action == Action::Proceed && nfa.eval(t.cond, ctx, slot_values) {
                if nfa.state(t.target).kind == StateKind::Final {
                    return Some(t.target);
                }
                stack.push(t.target);
            }
        }
    }
    None
}
