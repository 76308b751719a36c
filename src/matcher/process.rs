//! The runtime of Flink's `NFA.java`: `process` (`doProcess`,
//! `computeNextStates`, `createDecisionGraph`, `findFinalStateAfterProceed`)
//! and `advance_time` (`advanceTime`), driving an immutable [`Nfa`] over one
//! [`Partition`].

use super::buffer::{EventRef, SharedBuffer};
use super::heap::JavaHeap;
use super::run::{Partition, Run};
use super::skip::process_matches_by_skip;
use super::view::{MatchView, RunEvents};
use super::MatchSink;
use crate::event::Event;
use crate::nfa::cond::EvalCtx;
use crate::nfa::{Action, Nfa, StateId, StateKind};
use crate::pattern::SkipStrategy;
use crate::primitives::StageId;
use crate::primitives::Timestamp;

/// A TAKE or IGNORE edge found by the decision graph, with (for a TAKE) the
/// final state reachable by proceeding from its target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    action: Action,
    source: StateId,
    target: StateId,
    final_after: Option<StateId>,
}

/// Reusable per-call space, kept in the [`SharedBuffer`] so that the steady
/// state allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Per-event values of conditions that do not read the run.
    cache: Vec<u8>,
    edges: Vec<Edge>,
    stack: Vec<StateId>,
    pub spare: Vec<Vec<Run>>,
    pub removed: Vec<Run>,
    timeouts: Vec<(Run, Timestamp)>,
    /// Decision graphs of this `process` call by state, for automata whose
    /// conditions do not read the run: `(stamp, start, len)` into
    /// `memo_edges`, valid when the stamp is the call's.
    memo: Vec<(u32, u32, u32)>,
    memo_edges: Vec<Edge>,
    stamp: u32,
}

/// How many emptied run vectors the scratch space keeps for reuse.
const SPARE_VECS: usize = 64;

impl Scratch {
    /// Resets the per-event caches for an automaton with `slots` condition
    /// slots and `states` states.
    #[inline]
    fn begin_event(&mut self, slots: usize, states: usize) {
        self.cache.clear();
        self.cache.resize(slots, 0);
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

    pub fn take_vec(&mut self) -> Vec<Run> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `v` for reuse. Up to [`SPARE_VECS`] are kept: when many
    /// partitions go idle at one deadline they hand back one vector each,
    /// and the partitions that start next take them instead of allocating.
    pub fn give_vec(&mut self, mut v: Vec<Run>) {
        v.clear();
        if self.spare.len() < SPARE_VECS {
            self.spare.push(v);
        }
    }
}

impl<E: Event> Nfa<E> {
    /// Offers one event to every run of the partition and to a fresh start,
    /// emitting complete matches. Time must already have been advanced to the
    /// event's time ([`advance_time`](Self::advance_time)).
    pub fn process(
        &self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        event: EventRef,
        out: &mut dyn MatchSink<E>,
    ) {
        let mut scratch = buf.scratch.take().unwrap_or_default();
        scratch.begin_event(self.conds.slots.len(), self.states.len());
        let mut next;
        let mut potential;
        if part.runs.is_empty() && part.completed.is_empty() {
            // An idle partition has only the start run. When the start run
            // finds no TAKE or IGNORE edge for this event, its only branch is
            // itself: nothing is emitted and the partition stays idle, so
            // nothing changes. Otherwise its edges are used as they are.
            let start = Run::start(self.start, self.fresh.clone());
            self.create_decision_graph(&start, event, buf, &mut scratch, false);
            if scratch.edges.is_empty() {
                buf.scratch = Some(scratch);
                return;
            }
            let start = match scratch.edges[..] {
                [edge] => match self.start_one_run(part, buf, event, start, edge) {
                    Ok(()) => {
                        buf.scratch = Some(scratch);
                        return;
                    }
                    Err(start) => start,
                },
                _ => start,
            };
            next = JavaHeap::from_vec(scratch.take_vec());
            potential = JavaHeap::from_vec(scratch.take_vec());
            self.route(start, event, buf, &mut scratch, &mut next, &mut potential);
        } else {
            next = JavaHeap::from_vec(scratch.take_vec());
            potential = JavaHeap::from_vec(scratch.take_vec());
            let mut old = part.take_own_runs(|| scratch.take_vec());
            // Worth it when several runs may share a state.
            let memo = self.run_independent && old.len() > 2;
            for run in old.drain(..) {
                self.create_decision_graph(&run, event, buf, &mut scratch, memo);
                self.route(run, event, buf, &mut scratch, &mut next, &mut potential);
            }
            scratch.give_vec(old);
        }
        if self.pattern.skip == SkipStrategy::NoSkip {
            for m in potential.iter() {
                out.on_match(&MatchView::new(self, buf, m));
            }
            for m in potential.drain() {
                buf.release(m.node);
            }
        } else {
            process_matches_by_skip(
                self,
                part,
                &mut potential,
                &mut next,
                buf,
                &mut scratch,
                out,
            );
        }
        self.settle(part, buf, scratch, potential, next);
    }

    /// Advances the partition's time to `t`: runs whose window closed are
    /// removed (reported as timeouts when the pattern asks), pending
    /// `not followed by` endings complete, held matches whose blockers died
    /// are released.
    pub fn advance_time(
        &self,
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
        let mut scratch = buf.scratch.take().unwrap_or_default();
        let mut next = JavaHeap::from_vec(scratch.take_vec());
        let mut potential = JavaHeap::from_vec(scratch.take_vec());
        let mut old = part.take_runs(self, || scratch.take_vec());
        for run in old.drain(..) {
            if run.is_start() {
                next.offer(run);
                continue;
            }
            let state = self.state(run.state);
            // A window closes at `base + w`, saturated at the largest
            // time: the same value the partition's deadline is, so a due
            // deadline always expires something (a window that would end
            // past `Timestamp::MAX` closes there, never earlier).
            let by_previous = state
                .window
                .map(|w| run.prev_ts.saturating_add(w))
                .filter(|end| t >= *end);
            let by_first = self
                .window
                .map(|w| run.start_ts.saturating_add(w))
                .filter(|end| t >= *end);
            match by_previous.or(by_first) {
                None => next.offer(run),
                Some(_) if state.kind == StateKind::Pending => potential.offer(run),
                Some(expired_at) if self.pattern.emit_timeouts => {
                    scratch.timeouts.push((run, expired_at))
                }
                Some(_) => buf.release(run.node),
            }
        }
        scratch.give_vec(old);
        process_matches_by_skip(
            self,
            part,
            &mut potential,
            &mut next,
            buf,
            &mut scratch,
            out,
        );
        for (run, expired_at) in &scratch.timeouts {
            out.on_timeout(&MatchView::new(self, buf, run), *expired_at);
        }
        for (run, _) in scratch.timeouts.drain(..) {
            buf.release(run.node);
        }
        self.settle(part, buf, scratch, potential, next);
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
        let stage = match (edge.action, edge.final_after, self.state(edge.source).stage) {
            (Action::Take, None, Some(stage))
                if self.state(edge.target).kind == StateKind::Normal =>
            {
                stage
            }
            _ => return Err(start),
        };
        let taken = self.take(&start, stage, edge.target, ev, buf);
        buf.retain(taken.node);
        part.runs = super::run::Runs::from_buf([taken, start]);
        part.refresh_deadline(self);
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
        let Some(window) = self.window else {
            return false;
        };
        let all_expire = part.completed.is_empty()
            && part.runs.iter().all(|run| {
                let state = self.state(run.state);
                run.is_start()
                    || (state.window.is_none()
                        && state.kind != StateKind::Pending
                        && t >= run.start_ts.saturating_add(window))
            });
        if !all_expire {
            return false;
        }
        if self.pattern.emit_timeouts {
            for run in part.runs.iter().filter(|r| !r.is_start()) {
                let expired_at = run.start_ts.saturating_add(window);
                out.on_timeout(&MatchView::new(self, buf, run), expired_at);
            }
        }
        for run in part.runs.drain(..) {
            buf.release(run.node);
        }
        // (drained, but a spilled vector would keep its allocation)
        part.runs = Default::default();
        part.refresh_deadline(self);
        true
    }

    /// Ends a step: the emptied heaps go back to the scratch space, `next`
    /// becomes the partition's runs, its deadline is recomputed, and the
    /// scratch space returns to the buffer. Always inlined: it ends every
    /// call on the hot path (callgrind: 647M vs 650M instructions on `ab`
    /// at N = 200,000 against the two copies it replaced).
    #[inline(always)]
    fn settle(
        &self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        mut scratch: Box<Scratch>,
        potential: JavaHeap<Run>,
        next: JavaHeap<Run>,
    ) {
        scratch.give_vec(potential.into_vec());
        if let Some(spare) = part.put_runs(next) {
            scratch.give_vec(spare);
        }
        part.refresh_deadline(self);
        buf.scratch = Some(scratch);
    }

    /// Drops every run and held match of the partition, releasing the buffer.
    pub fn clear(&self, part: &mut Partition, buf: &mut SharedBuffer<E>) {
        part.clear(buf);
    }

    /// Flink's `computeNextStates` for one run whose decision graph is in
    /// `scratch.edges`: its branches go to `next` (partial runs) or
    /// `potential` (complete matches); a run whose branches include a stop
    /// state is discarded with all of them. The run is consumed: its node
    /// reference passes to its branches or is released.
    ///
    /// Two common cases skip the general branch building: a run with no
    /// edge dies, and a run whose only edge IGNOREs the event back into its
    /// own state stays exactly as it is.
    #[inline]
    fn route(
        &self,
        run: Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        scratch: &mut Scratch,
        next: &mut JavaHeap<Run>,
        potential: &mut JavaHeap<Run>,
    ) {
        let is_start = run.is_start();
        match scratch.edges[..] {
            [] if is_start => return next.offer(run),
            [] => return buf.release(run.node),
            [Edge {
                action: Action::Ignore,
                target,
                ..
            }] if !is_start
                && target == run.state
                && matches!(
                    self.state(target).kind,
                    StateKind::Normal | StateKind::Start | StateKind::Pending
                ) =>
            {
                return next.offer(run);
            }
            _ => {}
        }
        // A branch into a stop state discards the run and its other partial
        // branches (complete matches still count, as in Flink).
        let is_stop = |s: StateId| self.state(s).kind == StateKind::Stop;
        let discard = scratch.edges.iter().any(|e| match e.action {
            Action::Ignore => !is_start && is_stop(e.target),
            Action::Take => self.state(e.source).stage.is_some() && is_stop(e.target),
            Action::Proceed => false,
        });
        // Where a branch into `state` goes: `Some(true)` complete, `Some(false)`
        // partial, `None` dropped.
        let dest = |state: StateId| match self.state(state).kind {
            StateKind::Final => Some(true),
            StateKind::Stop => None,
            _ if discard => None,
            _ => Some(false),
        };
        for i in 0..scratch.edges.len() {
            let edge = scratch.edges[i];
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
                    let Some(stage) = self.state(edge.source).stage else {
                        continue;
                    };
                    let taken_dest = dest(edge.target);
                    if taken_dest.is_none() && edge.final_after.is_none() {
                        continue;
                    }
                    let taken = self.take(&run, stage, edge.target, ev, buf);
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

    /// The run that results from `run` taking `ev` into `stage` and moving
    /// to `target`: a new buffer node after the run's (not yet retained by
    /// the new run), the stage's accumulators updated, the start time set
    /// if this is the run's first event. Always inlined: both callers are
    /// on the hot path.
    #[inline(always)]
    fn take(
        &self,
        run: &Run,
        stage: StageId,
        target: StateId,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
    ) -> Run {
        let mut accumulators = run.accumulators.clone();
        accumulators.on_take(&self.layout, stage, buf.get(ev));
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

    /// Flink's `createDecisionGraph`: a depth-first walk over the PROCEED
    /// edges that hold for this event, collecting the TAKE and IGNORE edges
    /// that hold (in Flink's stack order).
    ///
    /// With `memo` (allowed only when no condition reads the run, so that
    /// the graph depends on the run's state only), each state's graph is
    /// computed once per event (many runs of a partition often wait in the
    /// same state).
    fn create_decision_graph(
        &self,
        run: &Run,
        ev: EventRef,
        buf: &SharedBuffer<E>,
        scratch: &mut Scratch,
        memo: bool,
    ) {
        if !memo {
            return self.walk_decision_graph(run, ev, buf, scratch);
        }
        let i = run.state.index();
        let (stamp, start, len) = scratch.memo[i];
        if stamp == scratch.stamp {
            let (start, len) = (start as usize, len as usize);
            scratch.edges.clear();
            scratch
                .edges
                .extend_from_slice(&scratch.memo_edges[start..start + len]);
            return;
        }
        self.walk_decision_graph(run, ev, buf, scratch);
        let start = scratch.memo_edges.len();
        scratch.memo_edges.extend_from_slice(&scratch.edges);
        scratch.memo[i] = (scratch.stamp, start as u32, scratch.edges.len() as u32);
    }

    /// The walk behind [`create_decision_graph`](Self::create_decision_graph).
    fn walk_decision_graph(
        &self,
        run: &Run,
        ev: EventRef,
        buf: &SharedBuffer<E>,
        scratch: &mut Scratch,
    ) {
        scratch.edges.clear();
        scratch.stack.clear();
        let view = RunEvents::new(self, buf, run.node);
        let ctx = EvalCtx {
            event: buf.get(ev),
            accumulators: &run.accumulators,
            stages: &view,
        };
        if !self.proceeds[run.state.index()] {
            for t in &self.state(run.state).transitions {
                if self.conds.eval(t.cond, &ctx, &mut scratch.cache) {
                    let final_after = if t.action == Action::Take {
                        self.final_state_after_proceed(t.target, &ctx, &mut scratch.cache)
                    } else {
                        None
                    };
                    scratch.edges.push(Edge {
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
        scratch.stack.push(run.state);
        while let Some(state) = scratch.stack.pop() {
            for t in &self.state(state).transitions {
                if !self.conds.eval(t.cond, &ctx, &mut scratch.cache) {
                    continue;
                }
                match t.action {
                    Action::Proceed => scratch.stack.push(t.target),
                    Action::Take | Action::Ignore => {
                        let final_after = if t.action == Action::Take {
                            self.final_state_after_proceed(t.target, &ctx, &mut scratch.cache)
                        } else {
                            None
                        };
                        scratch.edges.push(Edge {
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
    fn final_state_after_proceed(
        &self,
        from: StateId,
        ctx: &EvalCtx<'_, E>,
        cache: &mut [u8],
    ) -> Option<StateId> {
        if !self.proceeds[from.index()] {
            return None;
        }
        let mut stack: smallvec::SmallVec<[StateId; 8]> = smallvec::smallvec![from];
        while let Some(state) = stack.pop() {
            for t in &self.state(state).transitions {
                if t.action == Action::Proceed && self.conds.eval(t.cond, ctx, cache) {
                    if self.state(t.target).kind == StateKind::Final {
                        return Some(t.target);
                    }
                    stack.push(t.target);
                }
            }
        }
        None
    }
}
