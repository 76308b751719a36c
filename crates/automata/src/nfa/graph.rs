//! Decision graphs: Flink's `createDecisionGraph` and
//! `findFinalStateAfterProceed`, written once over a caller's way of
//! deciding conditions.
//!
//! The matcher walks a run's graph per event with the run's context
//! ([`decision_graph`] with [`Nfa::eval`](super::Nfa::eval)); the compiler
//! walks the same function once per combination of the few condition
//! slots a state's graph depends on, when none of them reads the run, and
//! keeps the results ([`StaticGraph`]): the matcher then reads the slots'
//! values for the event and picks a graph, without a walk. One walk for
//! both, so a static graph is exactly the graph the walk would collect.

use super::cond::{CondId, CondNode, Conditions};
use super::{Action, State, StateId, StateKind};
use crate::primitives::StageId;

/// A TAKE or IGNORE edge of a decision graph (Flink's
/// `createDecisionGraph`), with (for a TAKE) the final state reachable by
/// proceeding from its target. The matcher collects them per run and
/// event; states whose graph depends on a few condition slots have every
/// possible graph ready ([`Nfa::static_graph`](super::Nfa::static_graph)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Take or ignore.
    pub action: Action,
    /// The kind of the target state.
    pub kind: StateKind,
    /// The stage of the source state (what a TAKE records).
    pub stage: Option<StageId>,
    /// Where the run goes.
    pub target: StateId,
    /// For a TAKE: the final state reached by proceeding from `target`.
    pub final_after: Option<StateId>,
}

/// The most condition slots a [`StaticGraph`] depends on: its graphs are
/// two to this power (8).
pub const MAX_STATIC_SLOTS: usize = 3;

/// The decision graph of a state, ready for every value of the condition
/// slots it depends on: every condition the walk from the state can read
/// (its transitions, those of the states its PROCEED edges reach, and the
/// PROCEED edges after each TAKE's target) is a combination of at most
/// `MAX_STATIC_SLOTS` slots that do not read the run.
#[derive(Clone, Debug)]
pub struct StaticGraph {
    /// The slots (the first `len`); bit `i` of a graph's index is the
    /// value of `slots[i]`. Inline, as the graphs' table: no indirection
    /// on the matcher's path.
    pub slots: [u32; MAX_STATIC_SLOTS],
    /// How many slots: 0 to `MAX_STATIC_SLOTS`.
    pub len: u8,
    /// The graph for each index below `2^len`: the edges the walk
    /// collects, in its order (empty above).
    pub edges: [Box<[Edge]>; 1 << MAX_STATIC_SLOTS],
    /// Is the graph, for that index, exactly the one IGNORE edge into the
    /// state itself (a run there stays as it is)?
    pub stays: [bool; 1 << MAX_STATIC_SLOTS],
}

impl StaticGraph {
    /// The slots the graphs depend on.
    pub fn slots(&self) -> &[u32] {
        &self.slots[..usize::from(self.len)]
    }
}

/// Flink's `createDecisionGraph` from `state`: a depth-first walk over
/// the PROCEED edges whose condition holds, collecting the TAKE and IGNORE
/// edges whose condition holds (in Flink's stack order) into `out`;
/// `holds` decides a condition. No visited set and no budget, as in
/// Flink: the compiler rejects PROCEED cycles and bounds the number of
/// PROCEED paths (`MAX_PROCEED_PATHS`), so the walk ends and is exact.
#[inline(always)]
pub fn decision_graph(
    states: &[State],
    proceeds: &[bool],
    state: StateId,
    holds: &mut impl FnMut(CondId) -> bool,
    stack: &mut Vec<StateId>,
    out: &mut Vec<Edge>,
) {
    if !proceeds[state.index()] {
        // (the common case: the state's own edges, no stack)
        let source = &states[state.index()];
        for t in &source.transitions {
            if holds(t.cond) {
                out.push(edge(
                    states,
                    proceeds,
                    source.stage,
                    t.action,
                    t.target,
                    holds,
                ));
            }
        }
        return;
    }
    stack.clear();
    stack.push(state);
    while let Some(at) = stack.pop() {
        let source = &states[at.index()];
        for t in &source.transitions {
            if !holds(t.cond) {
                continue;
            }
            match t.action {
                Action::Proceed => stack.push(t.target),
                Action::Take | Action::Ignore => {
                    out.push(edge(
                        states,
                        proceeds,
                        source.stage,
                        t.action,
                        t.target,
                        holds,
                    ));
                }
            }
        }
    }
}

/// The edge of a TAKE or IGNORE transition that holds (for a TAKE, with
/// the final state after proceeding from its target).
#[inline(always)]
fn edge(
    states: &[State],
    proceeds: &[bool],
    stage: Option<StageId>,
    action: Action,
    target: StateId,
    holds: &mut impl FnMut(CondId) -> bool,
) -> Edge {
    let final_after = if action == Action::Take && proceeds[target.index()] {
        final_state_after_proceed(states, target, holds)
    } else {
        None
    };
    Edge {
        action,
        kind: states[target.index()].kind,
        stage,
        target,
        final_after,
    }
}

/// Flink's `findFinalStateAfterProceed` from `from`, whose conditions are
/// decided by `holds` (the run's context from before the event was taken,
/// as in Flink). Out of line: few takes lead to a state that proceeds.
#[inline(never)]
fn final_state_after_proceed(
    states: &[State],
    from: StateId,
    holds: &mut impl FnMut(CondId) -> bool,
) -> Option<StateId> {
    let mut stack: smallvec::SmallVec<[StateId; 8]> = smallvec::smallvec![from];
    while let Some(state) = stack.pop() {
        for t in &states[state.index()].transitions {
            if t.action == Action::Proceed && holds(t.cond) {
                if states[t.target.index()].kind == StateKind::Final {
                    return Some(t.target);
                }
                stack.push(t.target);
            }
        }
    }
    None
}

/// See [`StaticGraph`]: `state`'s graphs by the values of the slots they
/// depend on, when those are few and none reads the run.
pub fn static_graph<E>(
    states: &[State],
    state: StateId,
    conds: &Conditions<E>,
    proceeds: &[bool],
) -> Option<StaticGraph> {
    let slots = slots_read(states, state, conds, proceeds)?;
    let mut stack = Vec::new();
    let edges: [Box<[Edge]>; 1 << MAX_STATIC_SLOTS] = std::array::from_fn(|index| {
        if index >> slots.len() != 0 {
            return Box::default();
        }
        let value = |s: u32| {
            let bit = slots.iter().position(|&x| x == s);
            bit.is_some_and(|bit| index >> bit & 1 == 1)
        };
        let mut holds = |c: CondId| conds.eval_by(c, &value);
        let mut out = Vec::new();
        decision_graph(states, proceeds, state, &mut holds, &mut stack, &mut out);
        out.into_boxed_slice()
    });
    let stays = std::array::from_fn(|index| {
        index >> slots.len() == 0
            && matches!(&edges[index][..], [e] if e.action == Action::Ignore && e.target == state)
    });
    let mut inline = [0; MAX_STATIC_SLOTS];
    inline[..slots.len()].copy_from_slice(&slots);
    Some(StaticGraph {
        slots: inline,
        // (at most `MAX_STATIC_SLOTS`)
        len: slots.len() as u8,
        edges,
        stays,
    })
}

/// The slots every condition the walk from `state` may read depends on
/// (see [`StaticGraph`]), in the order first met; `None` when one reads
/// the run or there are more than [`MAX_STATIC_SLOTS`].
fn slots_read<E>(
    states: &[State],
    state: StateId,
    conds: &Conditions<E>,
    proceeds: &[bool],
) -> Option<Vec<u32>> {
    let mut slots = Vec::new();
    let mut seen = vec![false; states.len()];
    // (state, is it reached only to find a final state after a TAKE, so
    // that only its PROCEED edges count?)
    let mut stack = vec![(state, false)];
    let mut seen_after_take = vec![false; states.len()];
    while let Some((at, after_take)) = stack.pop() {
        let visited = if after_take {
            &mut seen_after_take
        } else {
            &mut seen
        };
        if std::mem::replace(&mut visited[at.index()], true) {
            continue;
        }
        for t in &states[at.index()].transitions {
            let counts = !after_take || t.action == Action::Proceed;
            if counts && !conds.slots_of(t.cond, &mut slots) {
                return None;
            }
            match t.action {
                Action::Proceed => stack.push((t.target, after_take)),
                Action::Take if !after_take && proceeds[t.target.index()] => {
                    stack.push((t.target, true));
                }
                Action::Take | Action::Ignore => {}
            }
        }
        if slots.len() > MAX_STATIC_SLOTS {
            return None;
        }
    }
    Some(slots)
}

impl<E> Conditions<E> {
    /// Adds to `slots` the slots condition `id` reads (each once); false
    /// when one of them reads the run.
    fn slots_of(&self, id: CondId, slots: &mut Vec<u32>) -> bool {
        // (nesting is bounded by `MAX_COND_DEPTH`: an explicit stack anyway)
        let mut stack = vec![id];
        while let Some(c) = stack.pop() {
            match self.nodes[c.0 as usize] {
                CondNode::True | CondNode::False => {}
                CondNode::Slot(s) => {
                    if self.slots[s as usize].per_run {
                        return false;
                    }
                    if !slots.contains(&s) {
                        slots.push(s);
                    }
                }
                CondNode::Not(a) => stack.push(a),
                CondNode::And(a, b) => stack.extend([b, a]),
            }
        }
        true
    }

    /// Condition `id` with each slot's value given by `value`.
    fn eval_by(&self, id: CondId, value: &impl Fn(u32) -> bool) -> bool {
        match self.nodes[id.0 as usize] {
            CondNode::True => true,
            CondNode::False => false,
            CondNode::Slot(s) => value(s),
            // (at most `MAX_COND_DEPTH` deep)
            CondNode::Not(a) => !self.eval_by(a, value),
            CondNode::And(a, b) => self.eval_by(a, value) && self.eval_by(b, value),
        }
    }
}
