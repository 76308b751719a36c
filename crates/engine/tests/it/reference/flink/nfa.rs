//! Flink's `NFA` runtime over one partition: `process` (`doProcess`,
//! `computeNextStates` with its Dewey versions, `createDecisionGraph`,
//! `findFinalStateAfterProceed`), `advanceTime`, and
//! `processMatchesAccordingToSkipStrategy`, with partial and completed
//! matches in JDK priority queues ([`super::queue`]) and events, nodes and
//! edges in the shared buffer ([`super::buffer`]).
//!
//! Conditions are evaluated with `cond::holds` over the computation state's
//! materialized match (Flink's `ConditionContext.getEventsForPattern`: the
//! events taken before the one under evaluation, per original stage name),
//! materialized lazily once per computation state and event, as Flink does.
//!
//! # Several graphs
//! [`Nfa::with_graphs`] runs several compiled graphs (the branch patterns
//! of a pattern with alternation, `tests/alternation_differential.rs`) as
//! *one* NFA: one queue of computation states, each knowing its graph, in
//! Flink's order (by start event, whatever the graph); one shared buffer,
//! whose events (so event ids, which pruning compares) are shared and whose
//! nodes are per graph; the complete matches of every graph held and
//! emitted by one `processMatchesAccordingToSkipStrategy`, so that a match
//! of one graph prunes, and a partial match of one graph holds back, those
//! of every graph. Its [`Hooks`] decide what Flink's single pattern leaves
//! to the layout of its queue: which of several held matches with the same
//! start event goes first. With one graph and no hooks it is Flink's NFA,
//! step for step.

use std::cmp::Ordering;

use cepheid_core::pattern::Pattern;

use cepheid_core::primitives::StageId;

use super::super::cond::{holds, RefEvent};
use super::buffer::{Dewey, EventId, Fail, NodeId, PathMap, SharedBuffer};
use super::graph::{Action, CondId, CondNode, Graph, StateIdx, StateType, Transition};
use super::queue::JavaPriorityQueue;
use super::skip::AfterMatch;

/// Flink's `ComputationState` (a partial match, or a run in the start state).
#[derive(Clone, Debug, PartialEq)]
pub struct ComputationState {
    /// The graph the state is of (0 for an NFA of one graph).
    pub graph: usize,
    /// `currentStateName` (names are unique, so the index stands for it).
    pub state: StateIdx,
    /// The Dewey version.
    pub version: Dewey,
    /// Time of the first event (-1 in the start state).
    pub start_ts: i64,
    /// Time of the last taken event (-1 in the start state).
    pub prev_ts: i64,
    /// The last node taken (`previousBufferEntry`).
    pub prev: Option<NodeId>,
    /// The first event (`startEventID`).
    pub start_id: Option<EventId>,
}

/// `NFAState.COMPUTATION_STATE_COMPARATOR`: by start event, runs in the
/// start state last.
pub fn comparator(a: &ComputationState, b: &ComputationState) -> Ordering {
    let key = |c: &ComputationState| c.start_id.map_or((i64::MAX, i32::MAX), |e| (e.ts, e.id));
    key(a).cmp(&key(b))
}

/// A materialized match: pages with their events (input indices).
pub type Materialized = Vec<(usize, Vec<usize>)>;

/// What one `advanceTime` produced.
/// What one `advanceTime` produced: matches, and timeouts with the time
/// they expired at and the page (stage name) of the state they waited in.
/// Each with its graph.
pub type Advanced = (
    Vec<(usize, Materialized)>,
    Vec<(usize, Materialized, i64, usize)>,
);

/// A materialized match by stage: (stage name, event ids), stages in
/// pattern order.
pub type Stages = Vec<(String, Vec<u64>)>;

/// What an NFA of several graphs asks of its caller (see the module
/// documentation); an NFA of one graph, Flink's, has none.
pub trait Hooks {
    /// Which of these held complete matches, of one start event, goes
    /// first (their graphs and stages, the head of the queue first:
    /// Flink's choice is 0).
    fn choose(&mut self, candidates: &[(usize, Stages)]) -> usize;
}

type Queue = JavaPriorityQueue<ComputationState>;

/// The NFA and its `NFAState` and `SharedBuffer` for one partition.
pub struct Nfa<'g, 'p, 'e> {
    graphs: Vec<&'g Graph<'p>>,
    events: &'e [RefEvent],
    /// Per graph, per page.
    page_stage: Vec<Vec<Option<StageId>>>,
    /// Per graph (its target page).
    skip: Vec<AfterMatch>,
    buffer: SharedBuffer,
    partial: Queue,
    completed: Queue,
    /// Computation states visited so far (see `WORK_BUDGET`).
    work: usize,
    hooks: Option<Box<dyn Hooks + 'e>>,
}

/// Flink's `EventWrapper`: the event id is registered on the first take.
struct EventWrapper {
    index: usize,
    ts: i64,
    id: Option<EventId>,
}

/// Flink's `ConditionContext` for one computation state.
struct Context<'e> {
    state: ComputationState,
    taken: Option<Vec<(StageId, &'e RefEvent)>>,
}

/// `OutgoingEdges`.
struct Outgoing {
    edges: Vec<Transition>,
    total_take: i32,
    total_ignore: i32,
}

impl<'g, 'p, 'e> Nfa<'g, 'p, 'e> {
    /// `createInitialNFAState` over a compiled graph.
    pub fn new(graph: &'g Graph<'p>, pattern: &Pattern, events: &'e [RefEvent]) -> Self {
        Nfa::with_graphs(vec![graph], pattern, events, None)
    }

    /// One NFA over several graphs compiled from patterns with `pattern`'s
    /// stages, window and skip strategy: a start state per graph (in the
    /// order given), then as [`Nfa::new`].
    pub fn with_graphs(
        graphs: Vec<&'g Graph<'p>>,
        pattern: &Pattern,
        events: &'e [RefEvent],
        hooks: Option<Box<dyn Hooks + 'e>>,
    ) -> Self {
        let page_stage = graphs
            .iter()
            .map(|g| g.pages.iter().map(|p| pattern.stage_id(p)).collect())
            .collect();
        let mut partial = Queue::new(comparator);
        for (i, graph) in graphs.iter().enumerate() {
            partial.offer(ComputationState {
                graph: i,
                state: graph.start(),
                version: Dewey::new(1),
                start_ts: -1,
                prev_ts: -1,
                prev: None,
                start_id: None,
            });
        }
        let skip = graphs
            .iter()
            .map(|g| AfterMatch::new(pattern, &g.pages))
            .collect();
        Nfa {
            graphs,
            events,
            page_stage,
            skip,
            buffer: SharedBuffer::default(),
            partial,
            completed: Queue::new(comparator),
            work: 0,
            hooks,
        }
    }

    /// The page table of graph `graph`.
    pub fn graph_pages(&self, graph: usize) -> &'g [String] {
        &self.graphs[graph].pages
    }

    /// The graph of a computation state.
    pub fn graph(&self, cs: &ComputationState) -> &'g Graph<'p> {
        self.graphs[cs.graph]
    }

    fn kind(&self, cs: &ComputationState) -> StateType {
        self.graph(cs).states[cs.state].kind
    }

    fn is_start(&self, cs: &ComputationState) -> bool {
        self.kind(cs) == StateType::Start
    }

    /// A materialized match of `graph` by stage (pages in pattern order,
    /// event indices as event ids).
    pub fn stages(&self, graph: usize, m: &Materialized) -> Stages {
        let pages = &self.graphs[graph].pages;
        let mut stages: Vec<(Option<StageId>, String, Vec<u64>)> = m
            .iter()
            .map(|(page, indices)| {
                let ids = indices.iter().map(|i| self.events[*i].id).collect();
                (self.page_stage[graph][*page], pages[*page].clone(), ids)
            })
            .collect();
        stages.sort_by_key(|a| a.0);
        stages.into_iter().map(|(_, n, ids)| (n, ids)).collect()
    }

    /// D4: the earliest time at which `advanceTime` would expire a partial
    /// match (element window of its state, or the pattern window).
    pub fn next_deadline(&self) -> Option<i64> {
        self.partial
            .iter()
            .filter(|cs| !self.is_start(cs))
            .flat_map(|cs| {
                let window = self.graph(cs).window_time;
                let element = self.graph(cs).states[cs.state]
                    .window
                    .filter(|w| *w > 0)
                    .map(|w| cs.prev_ts + w);
                let first = (window > 0).then_some(cs.start_ts + window);
                element.into_iter().chain(first)
            })
            .min()
    }

    /// Work done so far: computation states visited, shared-buffer edges
    /// and paths walked.
    pub fn work(&self) -> usize {
        self.work + self.buffer.work
    }

    fn spend(&mut self) -> Result<(), Fail> {
        self.work += self.partial.len() + self.completed.len();
        if self.work() > super::WORK_BUDGET {
            return Err("the work budget is spent".into());
        }
        Ok(())
    }

    /// `NFA.process`.
    pub fn process(&mut self, index: usize) -> Result<Vec<(usize, Materialized)>, Fail> {
        self.spend()?;
        let mut event = EventWrapper {
            index,
            ts: self.events[index].ts,
            id: None,
        };
        let mut new_partial = Queue::new(comparator);
        let mut potential = Queue::new(comparator);
        for cs in self.partial.drain() {
            let start = self.is_start(&cs);
            let next = self.compute_next_states(&cs, &mut event)?;
            let mut retain = Vec::new();
            let mut discard = false;
            for ns in next {
                match self.kind(&ns) {
                    StateType::Final => potential.offer(ns),
                    StateType::Stop => {
                        discard = true;
                        release_non_null(&mut self.buffer, &ns)?;
                    }
                    _ => retain.push(ns),
                }
            }
            // D1: the start run (it took nothing) reaching the stop state
            // of a negation that ends a group (`((a?) not followed by b)
            // followed by c` on `b`) loses that branch only: it holds no
            // partial match to discard. Flink, which drops such a negation,
            // never gets here; for the other negations reached before any
            // take it throws (releaseNode(null)), and `pattern::validate`
            // rejects those patterns (D5).
            if discard && !start {
                for s in retain {
                    release_non_null(&mut self.buffer, &s)?;
                }
            } else {
                for s in retain {
                    new_partial.offer(s);
                }
            }
        }
        let result = self.process_matches(&potential, &mut new_partial)?;
        self.partial = new_partial;
        if let Some(id) = event.id {
            self.buffer.release_event(id);
        }
        Ok(result)
    }

    /// `NFA.advanceTime`.
    pub fn advance_time(&mut self, t: i64) -> Result<Advanced, Fail> {
        self.spend()?;
        let mut timeouts = Vec::new();
        let mut new_partial = Queue::new(comparator);
        let mut potential = Queue::new(comparator);
        for cs in self.partial.drain() {
            let start = self.is_start(&cs);
            let timed_out = |from: i64, w: i64| !start && w > 0 && t - from >= w;
            let window = self.graph(&cs).window_time;
            let element = self.graph(&cs).states[cs.state].window;
            let by_previous = element.is_some_and(|w| timed_out(cs.prev_ts, w));
            let by_first = timed_out(cs.start_ts, window);
            if !(by_previous || by_first) {
                new_partial.offer(cs);
            } else if self.kind(&cs) == StateType::Pending {
                potential.offer(cs);
            } else {
                let path = self.extract_current_matches(&cs)?;
                let events = self.buffer.materialize(&path)?;
                let at = match element.filter(|_| by_previous) {
                    Some(w) => cs.prev_ts + w,
                    None => cs.start_ts + window,
                };
                let page = self.graph(&cs).states[cs.state].page;
                timeouts.push((cs.graph, events, at, page));
                self.buffer.release_node(cs.prev, &cs.version);
            }
        }
        let matches = self.process_matches(&potential, &mut new_partial)?;
        self.partial = new_partial;
        self.buffer.advance_time(t);
        Ok((matches, timeouts))
    }

    /// `processMatchesAccordingToSkipStrategy`.
    fn process_matches(
        &mut self,
        potential: &Queue,
        partial: &mut Queue,
    ) -> Result<Vec<(usize, Materialized)>, Fail> {
        for cs in potential.iter() {
            self.completed.offer(cs.clone());
        }
        let mut result = Vec::new();
        while let Some(earliest) = self.completed.peek() {
            if self.skip[earliest.graph].is_skip_strategy() {
                if let Some(first_partial) = partial.peek() {
                    if comparator(earliest, first_partial) == Ordering::Greater {
                        break;
                    }
                }
            }
            let earliest = self.poll_completed()?;
            let prev = earliest
                .prev
                .ok_or("NullPointerException: a match without events")?;
            let matched = self.buffer.extract_patterns(prev, &earliest.version)?;
            let skip = &self.skip[earliest.graph];
            skip.prune(partial, &matched, &mut self.buffer);
            skip.prune(&mut self.completed, &matched, &mut self.buffer);
            let first = matched
                .first()
                .ok_or("IndexOutOfBoundsException: a match extracted no path")?;
            let m = self.buffer.materialize(first)?;
            result.push((earliest.graph, m));
            self.buffer.release_node(earliest.prev, &earliest.version);
        }
        Ok(result)
    }

    /// The materialized first path of a held or complete state.
    fn first_path(&mut self, cs: &ComputationState) -> Result<Stages, Fail> {
        let prev = cs
            .prev
            .ok_or("NullPointerException: a match without events")?;
        let matched = self.buffer.extract_patterns(prev, &cs.version)?;
        let Some(first) = matched.first() else {
            return Ok(Vec::new());
        };
        let m = self.buffer.materialize(first)?;
        Ok(self.stages(cs.graph, &m))
    }

    /// `completedMatches.poll()`; with hooks and a skip strategy, when
    /// several held matches share the head's start event, the one the
    /// hooks choose (`PriorityQueue.remove(Object)`, the JDK's `removeAt`).
    fn poll_completed(&mut self) -> Result<ComputationState, Fail> {
        let head = self.completed.peek().expect("peeked").clone();
        if self.hooks.is_none() || !self.skip[head.graph].is_skip_strategy() {
            return Ok(self.completed.poll().expect("peeked"));
        }
        let ties: Vec<(usize, ComputationState)> = self
            .completed
            .iter()
            .enumerate()
            .filter(|(_, cs)| comparator(cs, &head) == Ordering::Equal)
            .map(|(i, cs)| (i, cs.clone()))
            .collect();
        if ties.len() == 1 {
            return Ok(self.completed.poll().expect("peeked"));
        }
        let mut candidates = Vec::new();
        for (_, cs) in &ties {
            candidates.push((cs.graph, self.first_path(cs)?));
        }
        let k = self
            .hooks
            .as_mut()
            .expect("hooks")
            .choose(&candidates)
            .min(ties.len() - 1);
        Ok(self.completed.remove_at(ties[k].0))
    }

    /// `extractCurrentMatches`.
    fn extract_current_matches(&mut self, cs: &ComputationState) -> Result<PathMap, Fail> {
        let Some(prev) = cs.prev else {
            return Ok(Vec::new());
        };
        let mut paths = self.buffer.extract_patterns(prev, &cs.version)?;
        match paths.len() {
            0 => Ok(Vec::new()),
            1 => Ok(paths.pop().expect("one path")),
            n => Err(format!(
                "IllegalStateException: a partial match extracted {n} paths"
            )),
        }
    }

    /// `ConditionContext.getEventsForPattern`, materialized once.
    fn materialize_context(&mut self, ctx: &mut Context<'e>) -> Result<(), Fail> {
        if ctx.taken.is_some() {
            return Ok(());
        }
        let path = self.extract_current_matches(&ctx.state)?;
        let mut taken = Vec::new();
        for (page, indices) in self.buffer.materialize(&path)? {
            if let Some(stage) = self.page_stage[ctx.state.graph][page] {
                taken.extend(indices.into_iter().map(|i| (stage, &self.events[i])));
            }
        }
        ctx.taken = Some(taken);
        Ok(())
    }

    /// `checkFilterCondition`.
    fn check(&mut self, ctx: &mut Context<'e>, cond: CondId, event: usize) -> Result<bool, Fail> {
        let graph = self.graph(&ctx.state);
        Ok(match &graph.conds[cond] {
            CondNode::True => true,
            CondNode::Leaf { cond, iterative } => {
                if *iterative {
                    self.materialize_context(ctx)?;
                }
                let taken = ctx.taken.as_deref().unwrap_or(&[]);
                holds(cond, &self.events[event], taken)
            }
            CondNode::And(a, b) => self.check(ctx, *a, event)? && self.check(ctx, *b, event)?,
            CondNode::Not(a) => !self.check(ctx, *a, event)?,
        })
    }

    /// `createDecisionGraph`: a DFS over PROCEED edges (Java `Stack`, no
    /// visited set) collecting the TAKE and IGNORE edges whose condition
    /// holds; self-ignores (by state name) are not counted as branches.
    fn create_decision_graph(
        &mut self,
        ctx: &mut Context<'e>,
        event: usize,
    ) -> Result<Outgoing, Fail> {
        let own = ctx.state.state;
        let mut out = Outgoing {
            edges: Vec::new(),
            total_take: 0,
            total_ignore: 0,
        };
        let graph = self.graph(&ctx.state);
        let mut stack = vec![own];
        while let Some(current) = stack.pop() {
            for t in &graph.states[current].transitions {
                if !self.check(ctx, t.cond, event)? {
                    continue;
                }
                match t.action {
                    Action::Proceed => stack.push(t.target.ok_or(NULL_TARGET)?),
                    Action::Ignore if t.target == Some(own) => out.edges.push(t.clone()),
                    Action::Ignore => {
                        out.total_ignore += 1;
                        out.edges.push(t.clone());
                    }
                    Action::Take => {
                        out.total_take += 1;
                        out.edges.push(t.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `findFinalStateAfterProceed`.
    fn find_final_state_after_proceed(
        &mut self,
        ctx: &mut Context<'e>,
        state: StateIdx,
        event: usize,
    ) -> Result<Option<StateIdx>, Fail> {
        let graph = self.graph(&ctx.state);
        let mut stack = vec![state];
        while let Some(current) = stack.pop() {
            for t in &graph.states[current].transitions {
                if t.action == Action::Proceed && self.check(ctx, t.cond, event)? {
                    let target = t.target.ok_or(NULL_TARGET)?;
                    if graph.states[target].kind == StateType::Final {
                        return Ok(Some(target));
                    }
                    stack.push(target);
                }
            }
        }
        Ok(None)
    }

    /// `addComputationState`: the new state locks its node.
    #[allow(clippy::too_many_arguments)]
    fn add_computation_state(
        &mut self,
        out: &mut Vec<ComputationState>,
        graph: usize,
        state: StateIdx,
        prev: Option<NodeId>,
        version: Dewey,
        start_ts: i64,
        prev_ts: i64,
        start_id: Option<EventId>,
    ) {
        if let Some(node) = prev {
            self.buffer.lock_node(node, &version);
        }
        out.push(ComputationState {
            graph,
            state,
            version,
            start_ts,
            prev_ts,
            prev,
            start_id,
        });
    }

    /// `computeNextStates`.
    fn compute_next_states(
        &mut self,
        cs: &ComputationState,
        event: &mut EventWrapper,
    ) -> Result<Vec<ComputationState>, Fail> {
        let mut ctx = Context {
            state: cs.clone(),
            taken: None,
        };
        let outgoing = self.create_decision_graph(&mut ctx, event.index)?;
        let (total_take, total_ignore) = (outgoing.total_take, outgoing.total_ignore);
        let mut take_branches_to_visit = (total_take - 1).max(0);
        let mut ignore_branches_to_visit = total_ignore;
        let total_take_to_skip = (total_take - 1).max(0);
        let start = self.is_start(cs);
        let mut result = Vec::new();
        for edge in &outgoing.edges {
            let target = edge.target.ok_or(NULL_TARGET)?;
            match edge.action {
                Action::Ignore if start => {}
                Action::Ignore => {
                    let version = if target == cs.state {
                        let n = increasing_self_state(total_ignore, total_take);
                        cs.version.increase(n)
                    } else {
                        let v = cs
                            .version
                            .increase(total_take_to_skip + ignore_branches_to_visit)
                            .add_stage();
                        ignore_branches_to_visit -= 1;
                        v
                    };
                    self.add_computation_state(
                        &mut result,
                        cs.graph,
                        target,
                        cs.prev,
                        version,
                        cs.start_ts,
                        cs.prev_ts,
                        cs.start_id,
                    );
                }
                Action::Take => {
                    let current_version = cs.version.increase(take_branches_to_visit);
                    let next_version = current_version.add_stage();
                    take_branches_to_visit -= 1;
                    let id = self.event_id(event);
                    let page = self.graph(cs).states[edge.source].page;
                    let node = self
                        .buffer
                        .put(cs.graph, page, id, cs.prev, &current_version)?;
                    let (start_ts, start_id) = if start {
                        (event.ts, Some(id))
                    } else {
                        (cs.start_ts, cs.start_id)
                    };
                    self.add_computation_state(
                        &mut result,
                        cs.graph,
                        target,
                        Some(node),
                        next_version.clone(),
                        start_ts,
                        event.ts,
                        start_id,
                    );
                    if let Some(last) =
                        self.find_final_state_after_proceed(&mut ctx, target, event.index)?
                    {
                        self.add_computation_state(
                            &mut result,
                            cs.graph,
                            last,
                            Some(node),
                            next_version,
                            start_ts,
                            event.ts,
                            start_id,
                        );
                    }
                }
                Action::Proceed => unreachable!("the decision graph holds no PROCEED edge"),
            }
        }
        if start {
            let n = increasing_self_state(total_ignore, total_take);
            result.push(ComputationState {
                graph: cs.graph,
                state: cs.state,
                version: cs.version.increase(n),
                start_ts: -1,
                prev_ts: -1,
                prev: None,
                start_id: None,
            });
        }
        if cs.prev.is_some() {
            self.buffer.release_node(cs.prev, &cs.version);
        }
        Ok(result)
    }

    fn event_id(&mut self, event: &mut EventWrapper) -> EventId {
        *event
            .id
            .get_or_insert_with(|| self.buffer.register_event(event.index, event.ts))
    }
}

const NULL_TARGET: &str = "NullPointerException: a transition to a null state";

/// `releaseNode` where Flink passes the state's node unchecked: a run that
/// never took an event has none, and Flink throws.
fn release_non_null(buffer: &mut SharedBuffer, cs: &ComputationState) -> Result<(), Fail> {
    if cs.prev.is_none() {
        return Err("NullPointerException: releaseNode(null) for a run without events".into());
    }
    buffer.release_node(cs.prev, &cs.version);
    Ok(())
}

/// `calculateIncreasingSelfState`.
fn increasing_self_state(ignore: i32, take: i32) -> i32 {
    if take == 0 && ignore == 0 {
        0
    } else {
        ignore + take.max(1)
    }
}
