//! The runtime of Flink's `NFA.java`: `process` (`doProcess`,
//! `computeNextStates`, `createDecisionGraph`, `findFinalStateAfterProceed`)
//! and `advance_time` (`advanceTime`), driving an immutable [`Nfa`] over one
//! [`Partition`].

use super::buffer::{EventRef, NodeRef, SharedBuffer};
use super::heap::JavaHeap;
use super::run::{Partition, Run};
use super::skip::process_matches_by_skip;
use super::view::{MatchView, RunEvents};
use super::MatchSink;
use crate::event::{Event, Timestamp};
use crate::nfa::cond::EvalCtx;
use crate::nfa::{Action, Nfa, StateId, StateKind};
use crate::pattern::SkipStrategy;

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
    branches: Vec<Run>,
    pub spare: Vec<Vec<Run>>,
    pub removed: Vec<Run>,
    timeouts: Vec<(Run, Timestamp)>,
}

/// How many emptied run vectors the scratch space keeps for reuse.
const SPARE_VECS: usize = 64;

impl Scratch {
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
        scratch.cache.clear();
        scratch.cache.resize(self.conds.slots.len(), 0);
        if part.runs.is_empty() && part.completed.is_empty() {
            // An idle partition has only the start run. When the start run
            // finds no TAKE or IGNORE edge for this event, its only branch is
            // itself: nothing is emitted and the partition stays idle, so
            // the general path below would change nothing.
            let start = Run::start(self.start, self.fresh.clone());
            self.create_decision_graph(&start, event, buf, &mut scratch);
            if scratch.edges.is_empty() {
                buf.scratch = Some(scratch);
                return;
            }
        }
        let mut next = JavaHeap::from_vec(scratch.take_vec());
        let mut potential = JavaHeap::from_vec(scratch.take_vec());
        let old = part.take_runs(self, || scratch.take_vec());
        for run in &old {
            self.compute_next_states(run, event, buf, &mut scratch);
            let discard = scratch
                .branches
                .iter()
                .any(|b| self.state(b.state).kind == StateKind::Stop);
            for branch in scratch.branches.drain(..) {
                match self.state(branch.state).kind {
                    StateKind::Final => potential.offer(branch),
                    _ if discard => buf.release(branch.node),
                    StateKind::Stop => buf.release(branch.node),
                    _ => next.offer(branch),
                }
            }
        }
        scratch.give_vec(old);
        if self.pattern.skip == SkipStrategy::NoSkip {
            for m in potential.iter() {
                out.on_match(&MatchView::new(self, buf, m.node));
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
            let by_previous = state
                .window
                .filter(|w| t.saturating_sub(run.prev_ts) >= *w)
                .map(|w| run.prev_ts.saturating_add(w));
            let by_first = self
                .window
                .filter(|w| t.saturating_sub(run.start_ts) >= *w)
                .map(|w| run.start_ts.saturating_add(w));
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
            out.on_timeout(&MatchView::new(self, buf, run.node), *expired_at);
        }
        for (run, _) in scratch.timeouts.drain(..) {
            buf.release(run.node);
        }
        self.settle(part, buf, scratch, potential, next);
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

    /// Flink's `computeNextStates`: the branches of one run for one event,
    /// left in `scratch.branches` (each branch holds a reference to its
    /// node); the run's own reference is released.
    fn compute_next_states(
        &self,
        run: &Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        scratch: &mut Scratch,
    ) {
        self.create_decision_graph(run, ev, buf, scratch);
        let is_start = run.is_start();
        let ts = buf.timestamp(ev);
        let seq = buf.sequence(ev);
        for edge in &scratch.edges {
            match edge.action {
                Action::Ignore if !is_start => {
                    buf.retain(run.node);
                    scratch.branches.push(Run {
                        state: edge.target,
                        ..run.clone()
                    });
                }
                Action::Take => {
                    let Some(stage) = self.state(edge.source).stage else {
                        continue;
                    };
                    let mut accumulators = run.accumulators.clone();
                    accumulators.on_take(&self.layout, stage, buf.get(ev));
                    let node = buf.put(stage, ev, run.node);
                    let (start_ts, start_seq) = if is_start {
                        (ts, seq)
                    } else {
                        (run.start_ts, run.start_seq)
                    };
                    let taken = Run {
                        state: edge.target,
                        node,
                        start_ts,
                        prev_ts: ts,
                        start_seq,
                        accumulators,
                    };
                    let completed = edge.final_after.map(|f| Run {
                        state: f,
                        ..taken.clone()
                    });
                    buf.retain(node);
                    scratch.branches.push(taken);
                    if let Some(completed) = completed {
                        buf.retain(node);
                        scratch.branches.push(completed);
                    }
                }
                Action::Ignore | Action::Proceed => {}
            }
        }
        if is_start {
            scratch.branches.push(Run {
                state: run.state,
                node: NodeRef::NONE,
                ..run.clone()
            });
        }
        buf.release(run.node);
    }

    /// Flink's `createDecisionGraph`: a depth-first walk over the PROCEED
    /// edges that hold for this event, collecting the TAKE and IGNORE edges
    /// that hold (in Flink's stack order).
    fn create_decision_graph(
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
        let mut budget = self.states.len() * 4 + 16;
        scratch.stack.push(run.state);
        while let Some(state) = scratch.stack.pop() {
            if budget == 0 {
                break;
            }
            budget -= 1;
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
        let mut stack: smallvec::SmallVec<[StateId; 8]> = smallvec::smallvec![from];
        let mut budget = self.states.len() * 4 + 16;
        while let Some(state) = stack.pop() {
            if budget == 0 {
                return None;
            }
            budget -= 1;
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
