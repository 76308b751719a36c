//! The runtime of Flink's `NFA.java`: `process` (`doProcess`,
//! `computeNextStates`, `createDecisionGraph`, `findFinalStateAfterProceed`)
//! and `advance_time` (`advanceTime`), an [`Executor`] driving an immutable
//! [`Nfa`] over one [`Partition`] with the caller's [`Cache`].

use super::buffer::{EventRef, NodeRef, SharedBuffer};
use super::heap::{sift_up, Items, JavaHeap, Keyed};
use super::run::{Partition, Run, Runs};
use super::skip::process_matches_by_skip;
use super::view::{MatchView, RunEvents};
use super::MatchSink;
use crate::event::Event;
use crate::lookup::{Lookup, LookupRef, NoLookup};
use crate::nfa::{
    Action, ConditionTable, Edge, EvalCtx, Nfa, SlotValues, StateId, StateKind, StaticGraph,
};
use crate::primitives::{StageId, Timestamp};

/// The matcher's reusable per-call space: decision-graph edges, the
/// per-event values of conditions, emptied run vectors. The caller owns it
/// (one per thread of work: the engine keeps one), so that the steady state
/// allocates nothing; it works with any automaton, sizing itself at each
/// call, and holds nothing from one call to the next that matters. See
/// [`Executor`] for an example.
#[derive(Debug, Default)]
pub struct Cache {
    /// Per-event values of conditions that do not read the run.
    slot_values: SlotValues,
    /// The numbering of conditions shared by the automata the engine
    /// added (see [`Cache::share_conditions`]).
    conditions: ConditionTable,
    /// The decision graphs of the current event, the current run's at
    /// `graph` (`start, end`).
    graphs: Vec<Edge>,
    graph: (usize, usize),
    stack: Vec<StateId>,
    /// Emptied run vectors, for partitions whose runs outgrow their
    /// inline space.
    spare: Vec<Vec<Run>>,
    /// The complete matches of one step (always empty between calls).
    potential: JavaHeap<Run>,
    removed: Vec<Run>,
    timeouts: Vec<(Run, Timestamp)>,
    /// Decision graphs of this `process` call by state, for automata whose
    /// conditions do not read the run: `(stamp, start, end)` into
    /// `graphs`, valid when the stamp is the call's.
    memo: Vec<(u32, u32, u32)>,
    stamp: u32,
}

/// A step uses the memo of decision graphs when the partition holds more
/// runs than this (with fewer, two runs in one state are rare, and a
/// static graph is read as fast as the memo).
const MEMO_RUNS: usize = 4;

/// How many emptied run vectors the cache keeps for reuse.
const SPARE_VECS: usize = 16;

impl Cache {
    /// An empty cache (it grows to what the automata it is used with need).
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Numbers `nfa`'s conditions in this cache's table: the automata
    /// numbered by one cache and driven through
    /// [`Executor::process_in_event`] with it evaluate an equal condition
    /// once per event.
    pub fn share_conditions<E>(&mut self, nfa: &mut Nfa<E>) {
        nfa.share_conditions(&mut self.conditions);
    }

    /// Takes the numbers of `nfa`'s conditions, numbered by another cache
    /// (or table), when they agree with this cache's
    /// ([`ConditionTable::adopt`]): then `nfa`, shared, is driven with this
    /// cache as if numbered by it. Returns whether they agreed.
    pub fn adopt_conditions<E>(&mut self, nfa: &Nfa<E>) -> bool {
        self.conditions.adopt(nfa)
    }

    /// Would [`adopt_conditions`](Self::adopt_conditions) take `nfa`'s
    /// numbers (without taking them)?
    pub fn adopts_conditions<E>(&self, nfa: &Nfa<E>) -> bool {
        self.conditions.admits(nfa)
    }

    /// Would [`adopt_conditions`](Self::adopt_conditions) take the numbers
    /// of each of `nfas`, adopted in turn (automata numbered by one table
    /// together, as a set of rules compiled once is)?
    pub fn adopts_all<E>(&self, nfas: &[&Nfa<E>]) -> bool {
        let mut table = self.conditions.clone();
        nfas.iter().all(|nfa| table.adopt(nfa))
    }

    /// A new event for [`Executor::process_in_event`]: forgets the values
    /// of conditions.
    #[inline]
    pub fn next_event(&mut self) {
        self.slot_values.next_event();
    }

    /// Resets the per-event caches of one automaton with `states` states
    /// (the decision graphs; condition values are reset by
    /// [`Cache::next_event`]).
    #[inline]
    fn begin_event(&mut self, states: usize) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.memo.fill((0, 0, 0));
            self.stamp = 1;
        }
        if self.memo.len() < states {
            self.memo.resize(states, (0, 0, 0));
        }
        self.graphs.clear();
        self.graph = (0, 0);
    }

    /// The current run's decision graph, when not static.
    #[inline]
    fn edges(&self) -> &[Edge] {
        &self.graphs[self.graph.0..self.graph.1]
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
/// use cepheid_automata::matcher::{Cache, Executor, Partition, SharedBuffer};
/// use cepheid_automata::matcher::{MatchSink, MatchView};
/// use cepheid_automata::nfa::Nfa;
/// use cepheid_core::pattern::*;
/// use cepheid_core::primitives::StageId;
/// use cepheid_core::{Record, Timestamp};
///
/// let stages = vec![Stage::new("a", Condition::True), Stage::new("b", Condition::True)];
/// let sequence = Sequence::new(vec![Element::stage(StageId(0)), Element::stage(StageId(1))]);
/// let pattern = Pattern::new("two", stages, sequence);
/// let nfa = Nfa::<Record>::compile(&pattern, &mut cepheid_core::event::NoFields).unwrap();
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
pub struct Executor<'a, E, L = &'a dyn Lookup> {
    nfa: &'a Nfa<E>,
    cache: &'a mut Cache,
    /// The current run's decision graph when its state's graph is static
    /// (else it is in the cache).
    static_edges: Option<&'a [Edge]>,
    /// At most this many partial matches (live runs plus held matches) per
    /// partition after an event; the oldest runs beyond it are dropped.
    limit: usize,
    /// Does the start run take events? Not for a draining pattern version
    /// ([`without_start`](Self::without_start)).
    starts: bool,
    /// The lists and indicators conditions read: `&dyn Lookup`, or
    /// [`NoLookup`] (no room, nothing carried) when there are none.
    lookup: L,
}

impl<E, L> std::fmt::Debug for Executor<'_, E, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("nfa", self.nfa)
            .field("cache", &self.cache)
            .field("limit", &self.limit)
            .field("starts", &self.starts)
            .finish()
    }
}

impl<'a, E: Event> Executor<'a, E, NoLookup> {
    /// Drives `nfa`, using `cache` for its per-call space (any cache: it
    /// sizes itself to the automaton).
    /// It applies no limit on partial matches: see
    /// [`with_run_limit`](Self::with_run_limit).
    #[inline]
    pub fn new(nfa: &'a Nfa<E>, cache: &'a mut Cache) -> Executor<'a, E, NoLookup> {
        Executor {
            nfa,
            cache,
            static_edges: None,
            limit: usize::MAX,
            starts: true,
            lookup: NoLookup,
        }
    }
}

impl<'a, E: Event, L: LookupRef> Executor<'a, E, L> {
    /// Conditions (and `select`) read reference lists and indicators from
    /// `lookup`: the engine's state at the event being processed
    /// (`&dyn Lookup`). Without it, or with [`NoLookup`], a membership or
    /// an indicator is null.
    #[inline]
    pub fn with_lookup<M: LookupRef>(self, lookup: M) -> Executor<'a, E, M> {
        Executor {
            nfa: self.nfa,
            cache: self.cache,
            static_edges: self.static_edges,
            limit: self.limit,
            starts: self.starts,
            lookup,
        }
    }

    /// The current run's decision graph
    /// ([`create_decision_graph`](Self::create_decision_graph)).
    #[inline]
    fn edges(&self) -> &'_ [Edge] {
        match self.static_edges {
            Some(edges) => edges,
            None => self.cache.edges(),
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
    pub fn with_run_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// [`with_run_limit`](Self::with_run_limit) where a `limit` of 0 is
    /// 0: the engine's step of a key when its cap on live partial matches
    /// over all keys leaves that key no room. See
    /// [`enforce_limit`](Self::enforce_limit).
    #[inline]
    pub fn with_exact_run_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Drops the partition's oldest runs beyond the limit, as
    /// [`process`](Self::process) does at its end. For a limit of 0 after
    /// `process`: an idle partition's first run is made without that check
    /// (one run is within any limit of at least 1).
    pub fn enforce_limit(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        out: &mut dyn MatchSink<E>,
    ) {
        if part.runs.len() + part.completed.len() > self.limit {
            self.drop_oldest(part, buf, out);
            self.settle(part, buf);
        }
    }

    /// Starts no new partial match: the start run takes and ignores
    /// nothing (its decision graph is empty), so only the partial matches
    /// the partition holds go on. This is how an old version of a replaced
    /// pattern drains (`docs/dynamic-rules.md`); an idle partition stays
    /// idle.
    #[inline]
    pub fn without_start(mut self) -> Self {
        self.starts = false;
        self
    }

    /// Drops every partial match of the partition (released, not
    /// reported) and returns how many; complete matches a skip strategy
    /// held back behind them are then emitted, as when the run limit drops
    /// runs ([`with_run_limit`](Self::with_run_limit)). The partition is
    /// empty afterwards. This is how a removed or restarted pattern's state
    /// goes (`docs/dynamic-rules.md`).
    pub fn discard(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        out: &mut dyn MatchSink<E>,
    ) -> usize {
        let nfa = self.nfa;
        let mut discarded = 0;
        // The start run sorts last: every run before it is a partial one.
        while part.runs.peek().is_some_and(|run| !run.is_start()) {
            let Some(run) = part.runs.poll() else {
                break;
            };
            buf.release(run.node);
            discarded += 1;
        }
        if !part.completed.is_empty() {
            let mut none = std::mem::take(&mut self.cache.potential);
            process_matches_by_skip(
                nfa,
                part,
                &mut none,
                buf,
                &mut self.cache.removed,
                out,
                self.lookup.lookup(),
            );
            self.cache.potential = none;
        }
        self.settle(part, buf);
        discarded
    }

    /// The automaton.
    pub fn nfa(&self) -> &'a Nfa<E> {
        self.nfa
    }

    /// The decision graph the matcher computes for `run` and `event` (the
    /// edges it would follow: take, ignore, into which kind of state), as
    /// [`process`](Self::process) computes it, for a trace of a
    /// partition (`cepheid why`): called before `process` with the
    /// partition's runs as they are, it says what each of them is about
    /// to do. `None` for `run` the start run: see
    /// [`decide_start`](Self::decide_start). Not on the matching path: it
    /// copies the edges.
    pub fn decide(&mut self, run: &Run, buf: &SharedBuffer<E>, event: EventRef) -> Vec<Edge> {
        self.cache.begin_event(self.nfa.states().len());
        self.create_decision_graph(run, event, buf, false);
        self.edges().to_vec()
    }

    /// [`decide`](Self::decide) for the start run of the partition: the
    /// edges by which `event` would start a partial match (none: it
    /// starts nothing).
    pub fn decide_start(&mut self, buf: &SharedBuffer<E>, event: EventRef) -> Vec<Edge> {
        let start = Run::start(self.nfa.start(), self.nfa.fresh_accumulators().clone());
        self.decide(&start, buf, event)
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
        self.cache.next_event();
        self.process_in_event(part, buf, event, out);
    }

    /// [`process`](Self::process) for an event whose condition values the
    /// cache may already hold: the caller calls [`Cache::next_event`] once
    /// per event, then offers it to the partitions of every automaton whose
    /// conditions it numbered ([`Cache::share_conditions`]). Returns how
    /// much [`Partition::partial_matches`] changed (known without counting
    /// on the common paths: nothing changed, an idle partition's first
    /// run), so that the engine keeps its count of live partial matches
    /// without counting each partition before and after.
    ///
    /// Always inlined into its two callers (this one and the engine's
    /// automaton): whether LLVM inlined it changed with unrelated code of
    /// the crate that instantiates it (the runtime's), `many` taking 1.3%
    /// more instructions when it did not (BENCHMARKS.md).
    #[inline(always)]
    pub fn process_in_event(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        event: EventRef,
        out: &mut dyn MatchSink<E>,
    ) -> isize {
        let nfa = self.nfa;
        let idle = part.runs.is_empty() && part.completed.is_empty();
        // (a draining version's start run takes nothing: `without_start`)
        let may_start = self.starts && self.may_start(buf, event);
        if !may_start && (idle || self.all_stay(part, buf, event)) {
            // Nothing would change: no output, the same runs in the same
            // order (so the same deadline), nothing to drop.
            return 0;
        }
        if idle {
            if let Some((stage, target)) = nfa.simple_start() {
                // (the start run's graph is its one TAKE, as
                // `start_one_run` stores it)
                let start = Run::start(nfa.start(), nfa.fresh_accumulators().clone());
                let taken = take(nfa, &start, stage, target, event, buf, 1);
                let runs = part.runs.storage_mut();
                runs.truncate(0);
                runs.push(taken);
                runs.push(start);
                part.refresh_deadline(nfa, buf);
                // (one partial run beside the start run)
                return 1;
            }
        }
        self.cache.begin_event(nfa.states().len());
        if idle {
            // An idle partition has only the start run. When the start run
            // finds no TAKE or IGNORE edge for this event, its only branch is
            // itself: nothing is emitted and the partition stays idle, so
            // nothing changes. Otherwise its edges are used as they are.
            let start = Run::start(nfa.start(), nfa.fresh_accumulators().clone());
            self.create_decision_graph(&start, event, buf, false);
            if self.edges().is_empty() {
                return 0;
            }
            let start = match *self.edges() {
                [edge] => match self.start_one_run(part, buf, event, start, edge) {
                    Ok(()) => return 1,
                    Err(start) => start,
                },
                _ => start,
            };
            part.runs.storage_mut().push(start);
        }
        // (an idle partition held none; the start run pushed is not one)
        let before = if idle { 0 } else { part.partial_matches() };
        let mut potential = std::mem::take(&mut self.cache.potential);
        // (an idle partition's start run has its decision graph already)
        self.step(part, buf, event, &mut potential, idle);
        if nfa.direct_matches() {
            for m in potential.iter() {
                out.on_match(&MatchView::new(nfa, buf, m).reading(&self.lookup));
            }
            for m in potential.drain() {
                buf.release(m.node);
            }
        } else {
            process_matches_by_skip(
                nfa,
                part,
                &mut potential,
                buf,
                &mut self.cache.removed,
                out,
                self.lookup.lookup(),
            );
        }
        self.cache.potential = potential;
        if part.runs.len() + part.completed.len() > self.limit {
            self.drop_oldest(part, buf, out);
        }
        self.settle(part, buf);
        part.partial_matches() as isize - before as isize
    }

    /// Might the event change an idle partition (the start run take it)?
    /// When not, offering it to an idle partition changes nothing and emits
    /// nothing ([`Nfa::start_guard`]; the values it computes are the
    /// event's, shared with every later evaluation).
    #[inline]
    pub fn may_start(&mut self, buf: &SharedBuffer<E>, event: EventRef) -> bool {
        match self.nfa.start_guard() {
            None => true,
            Some(slots) => slots.iter().any(|&s| self.slot_value(s, buf, event)),
        }
    }

    /// Does slot `s` of the automaton (one of its
    /// [`Nfa::start_guard`]) hold for the event? Computed once per event
    /// for every automaton that shares it.
    #[inline]
    pub fn condition_holds(&mut self, s: u32, buf: &SharedBuffer<E>, event: EventRef) -> bool {
        self.slot_value(s, buf, event)
    }

    /// The value of slot `s` (one that does not read the run) for this
    /// event: the event's value, computed once for every run and automaton.
    #[inline(always)]
    fn slot_value(&mut self, s: u32, buf: &SharedBuffer<E>, ev: EventRef) -> bool {
        match self.nfa.cached_slot(s, &self.cache.slot_values) {
            Some(value) => value,
            None => self.compute_slot(s, buf, ev),
        }
    }

    /// [`slot_value`](Self::slot_value) when not known yet.
    #[inline(never)]
    fn compute_slot(&mut self, s: u32, buf: &SharedBuffer<E>, ev: EventRef) -> bool {
        let nfa = self.nfa;
        let view = RunEvents::new(nfa, buf, NodeRef::NONE);
        let ctx = EvalCtx {
            event: buf.get(ev),
            accumulators: nfa.fresh_accumulators(),
            stages: &view,
            lookup: self.lookup,
        };
        nfa.slot_holds(s, &ctx, &mut self.cache.slot_values)
    }

    /// The index of a static graph's edges for this event: bit `i` is the
    /// value of its `i`-th slot. (At most one slot, the common case,
    /// inline.)
    #[inline(always)]
    fn static_index(&mut self, g: &StaticGraph, buf: &SharedBuffer<E>, ev: EventRef) -> usize {
        if g.len > 1 {
            return self.static_index_of_slots(g, buf, ev);
        }
        usize::from(g.len == 1 && self.slot_value(g.slots[0], buf, ev))
    }

    /// [`static_index`](Self::static_index) of a graph that depends on
    /// several slots.
    #[inline(never)]
    fn static_index_of_slots(
        &mut self,
        g: &StaticGraph,
        buf: &SharedBuffer<E>,
        ev: EventRef,
    ) -> usize {
        let mut index = 0;
        for (bit, &s) in g.slots().iter().enumerate() {
            index |= usize::from(self.slot_value(s, buf, ev)) << bit;
        }
        index
    }

    /// Does every partial run of a live partition (none held back) stay
    /// where it is, by its state's one IGNORE edge into itself
    /// ([`Nfa::stays`])? Only for automata whose conditions do not read
    /// the run, so that the values tested are the event's and no condition
    /// is evaluated twice.
    #[inline(always)]
    fn all_stay(&mut self, part: &Partition, buf: &SharedBuffer<E>, event: EventRef) -> bool {
        let nfa = self.nfa;
        if !nfa.run_independent() || !part.completed.is_empty() {
            return false;
        }
        for run in part.runs.iter() {
            if run.is_start() {
                continue;
            }
            let stays = match nfa.static_graph(run.state) {
                Some(g) => g.stays[self.static_index(g, buf, event)],
                None => {
                    let view = RunEvents::new(nfa, buf, NodeRef::NONE);
                    let ctx = EvalCtx {
                        event: buf.get(event),
                        accumulators: nfa.fresh_accumulators(),
                        stages: &view,
                        lookup: self.lookup,
                    };
                    nfa.stays(run.state, &ctx, &mut self.cache.slot_values)
                }
            };
            if !stays {
                return false;
            }
        }
        true
    }

    /// Flink's loop over the partial matches of `doProcess`: every run's
    /// branches are offered, in array order, to a new queue, and complete
    /// ones to `potential`.
    ///
    /// The new queue is built in the partition's own array. A run whose
    /// branches are at most one partial run (it stays, moves to another
    /// state, takes the event, or dies) is updated where it stands: its
    /// branch is written at the next free index and sifted up, which is
    /// exactly Java's `offer` into the queue built so far (for a run that
    /// keeps its place and start, one comparison). From the first run
    /// with two or more partial branches (a fork, or the start run taking
    /// the event) on, the remaining runs are moved out and routed through
    /// [`route`](Self::route), which offers into the array. With
    /// `first_known`, the decision graph of the first run is already in
    /// the cache.
    #[inline]
    fn step(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        event: EventRef,
        potential: &mut JavaHeap<Run>,
        first_known: bool,
    ) {
        let nfa = self.nfa;
        let n = part.runs.len();
        // Worth it when several runs may share a state: a graph kept for
        // the memo costs a copy, which the next run in its state repays.
        let memo = nfa.run_independent() && n > MEMO_RUNS;
        let mut w = 0;
        let mut r = 0;
        let mut known = first_known;
        let mut moved = false;
        let items: &mut [Run] = part.runs.storage_mut();
        while r < n {
            if !known {
                self.create_decision_graph(&items[r], event, buf, memo);
            }
            known = false;
            match self.step_in_place(&mut items[r], event, buf, potential) {
                // While every run so far stayed where it was with its
                // start, the array is the old heap as far as `w`: nothing
                // to sift.
                Step::Stays if !moved => w += 1,
                Step::Stays | Step::Replaced => {
                    moved = true;
                    items.swap(w, r);
                    sift_up(items, w);
                    w += 1;
                }
                Step::Gone => moved = true,
                Step::Forks => break,
            }
            r += 1;
        }
        if r == n {
            // (the runs between `w` and `n` are the dead ones)
            part.runs.truncate(w);
            return;
        }
        if r == n - 1 {
            // The last run forks (usually the start run, which sorts
            // last): its branches are offered to the queue built so far,
            // the first `w` runs, where they stand.
            let run = std::mem::replace(&mut items[r], Run::vacant());
            part.runs.truncate(w);
            let runs = part.runs.storage_mut();
            if !runs.spilled() && w + 2 > runs.inline_size() {
                // (at least two branches: into one of the cache's emptied
                // vectors, not a new one)
                if let Some(mut spare) = self.cache.spare.pop() {
                    spare.extend(runs.drain(..));
                    part.runs.set_storage(Runs::from_vec(spare));
                }
            }
            self.route(run, event, buf, &mut part.runs, potential);
            return;
        }
        // A fork at `r`: the queue built so far (the first `w` runs, a
        // heap as they stand) moves to a vector, where the branches of the
        // runs from `r` on are offered.
        let spare = self.cache.spare.pop().unwrap_or_default();
        let mut next = Concat::new(spare);
        let mut old = part.runs.set_storage(Runs::new());
        for (i, run) in old.drain(..).enumerate() {
            if i < w {
                next.keep(run);
            } else if i > r {
                self.create_decision_graph(&run, event, buf, memo);
                self.route(run, event, buf, &mut next, potential);
            } else if i == r {
                self.route(run, event, buf, &mut next, potential);
            }
        }
        if old.spilled() {
            self.cache.give_vec(old.into_vec());
        }
        part.runs.set_storage(Runs::from_vec(next.items));
    }

    /// One run's step where it stands, its decision graph in the cache:
    /// its complete branches go to `potential`; its one partial branch, if
    /// any, replaces it. [`Step::Forks`] (nothing done) when it has more
    /// than one partial branch.
    #[inline]
    fn step_in_place(
        &mut self,
        run: &mut Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        potential: &mut JavaHeap<Run>,
    ) -> Step {
        let nfa = self.nfa;
        let edges = self.edges();
        let is_start = run.is_start();
        match *edges {
            [] if is_start => return Step::Stays,
            [] => {
                buf.release(run.node);
                return Step::Gone;
            }
            // The commonest steps: a partial run ignores the event into an
            // ordinary state (often its own), or takes it into one.
            [Edge {
                action: Action::Ignore,
                target,
                kind,
                ..
            }] if !is_start && is_ordinary(kind) => {
                run.state = target;
                return Step::Stays;
            }
            [Edge {
                action: Action::Take,
                stage: Some(stage),
                target,
                kind,
                final_after: None,
                ..
            }] if !is_start => {
                // (into a normal state the run moves on; into the final
                // state it completes, handing its node reference over)
                match kind {
                    StateKind::Normal => {
                        take_in_place(nfa, run, stage, target, ev, buf);
                        return Step::Stays;
                    }
                    StateKind::Final => {
                        potential.offer(take(nfa, run, stage, target, ev, buf, 1));
                        return Step::Gone;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        let discard = nfa.has_stop_states() && discards(edges, is_start);
        let partial = edges
            .iter()
            .filter(|e| match e.action {
                Action::Ignore => !is_start && dest(e.kind, discard) == Some(false),
                Action::Take => e.stage.is_some() && dest(e.kind, discard) == Some(false),
                Action::Proceed => false,
            })
            .count()
            + usize::from(is_start && !discard);
        if partial > 1 {
            return Step::Forks;
        }
        let whole = std::mem::replace(run, Run::vacant());
        let mut slot = None;
        self.route_into(whole, ev, buf, &mut slot, potential);
        match slot {
            Some(branch) => {
                *run = branch;
                Step::Replaced
            }
            None => Step::Gone,
        }
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
        buf: &mut SharedBuffer<E>,
        out: &mut dyn MatchSink<E>,
    ) {
        let nfa = self.nfa;
        let mut partial = part.live_runs();
        let mut dropped = false;
        while partial > 0 && partial + part.completed.len() > self.limit {
            // The start run sorts last: the smallest run is a partial one.
            let Some(run) = part.runs.poll() else {
                break;
            };
            out.on_dropped(&MatchView::new(nfa, buf, &run).reading(&self.lookup));
            buf.release(run.node);
            partial -= 1;
            dropped = true;
        }
        if dropped && !part.completed.is_empty() {
            let mut none = std::mem::take(&mut self.cache.potential);
            process_matches_by_skip(
                nfa,
                part,
                &mut none,
                buf,
                &mut self.cache.removed,
                out,
                self.lookup.lookup(),
            );
            self.cache.potential = none;
        }
    }

    /// Advances the partition's time to `t`: runs whose window closed are
    /// removed (reported as timeouts when the pattern asks), pending
    /// `not followed by` endings complete, held matches whose blockers died
    /// are released.
    #[inline]
    pub fn advance_time(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) {
        self.advance_time_counted(part, buf, t, out);
    }

    /// [`advance_time`](Self::advance_time), returning how much
    /// [`Partition::partial_matches`] changed (as
    /// [`process_in_event`](Self::process_in_event) does).
    #[inline]
    pub fn advance_time_counted(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) -> isize {
        if part.due(t) {
            self.advance_time_due(part, buf, t, out)
        } else {
            0
        }
    }

    /// The body of [`advance_time`](Self::advance_time), once something is
    /// due (out of line: most calls have nothing to do); returns the change
    /// in partial matches.
    #[inline(never)]
    fn advance_time_due(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) -> isize {
        if let Some(expired) = self.expire_all(part, buf, t, out) {
            return -(expired as isize);
        }
        let nfa = self.nfa;
        let cache = &mut *self.cache;
        let mut potential = std::mem::take(&mut cache.potential);
        // Timeouts come after the matches this call completes (pending
        // endings, held matches released): when there can be none, each
        // is reported as its run is removed, without collecting them.
        let direct = part.completed.is_empty() && !nfa.has_pending_endings();
        if part.runs.is_empty() {
            // (an idle partition keeps no start run: it is implicit)
            let start = Run::start(nfa.start(), nfa.fresh_accumulators().clone());
            part.runs.storage_mut().push(start);
        }
        // The runs that stay are offered to a new queue in array order,
        // built in place as in `step`.
        let window = nfa.window();
        let element_windows = nfa.has_element_windows();
        let items: &mut [Run] = part.runs.storage_mut();
        let n = items.len();
        let mut w = 0;
        // (partial runs taken out: the start run never closes)
        let mut removed = 0;
        for r in 0..n {
            let run = &items[r];
            // A window closes at `base + w`, saturated at the largest
            // time: the same value the partition's deadline is, so a due
            // deadline always expires something (a window that would end
            // past `Timestamp::MAX` closes there, never earlier).
            let by_first = window
                .map(|w| run.start_ts.saturating_add(w))
                .filter(|end| t >= *end);
            let closed = if run.is_start() {
                None
            } else if element_windows {
                let by_previous = nfa
                    .state(run.state)
                    .window
                    .map(|w| buf.node_time(run.node).saturating_add(w))
                    .filter(|end| t >= *end);
                by_previous.or(by_first)
            } else {
                by_first
            };
            let Some(expired_at) = closed else {
                if w != r {
                    items.swap(w, r);
                    sift_up(items, w);
                }
                w += 1;
                continue;
            };
            let pending = nfa.state(run.state).kind == StateKind::Pending;
            let run = std::mem::replace(&mut items[r], Run::vacant());
            removed += 1;
            if pending {
                potential.offer(run);
            } else if !nfa.pattern().emit_timeouts {
                buf.release(run.node);
            } else if direct {
                out.on_timeout(
                    &MatchView::new(nfa, buf, &run).reading(&self.lookup),
                    expired_at,
                );
                buf.release(run.node);
            } else {
                cache.timeouts.push((run, expired_at));
            }
        }
        part.runs.truncate(w);
        // When nothing completes and nothing is held (the common case), the
        // skip strategy has nothing to do and the partition lost the runs
        // taken out; else it is counted before (the runs left and held,
        // and those taken out) and after.
        let before = (!potential.is_empty() || !part.completed.is_empty())
            .then(|| part.partial_matches() + removed);
        if before.is_some() {
            process_matches_by_skip(
                nfa,
                part,
                &mut potential,
                buf,
                &mut cache.removed,
                out,
                self.lookup.lookup(),
            );
        }
        cache.potential = potential;
        for (run, expired_at) in &cache.timeouts {
            out.on_timeout(
                &MatchView::new(nfa, buf, run).reading(&self.lookup),
                *expired_at,
            );
        }
        for (run, _) in cache.timeouts.drain(..) {
            buf.release(run.node);
        }
        self.settle(part, buf);
        match before {
            None => -(removed as isize),
            Some(before) => part.partial_matches() as isize - before as isize,
        }
    }

    /// The common case of an idle partition's event: the start run's only
    /// edge TAKEs the event into an ordinary state from which no final
    /// state is reached. The general path would offer the taken run, then
    /// the start run, to a new heap (in that order, which is already heap
    /// order: the start run sorts last) and emit nothing; this stores the
    /// two runs directly. Gives the start run back, having changed
    /// nothing, for any other edge.
    fn start_one_run(
        &self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        ev: EventRef,
        start: Run,
        edge: Edge,
    ) -> Result<(), Run> {
        let nfa = self.nfa;
        let stage = match (edge.action, edge.final_after, edge.stage) {
            (Action::Take, None, Some(stage)) if edge.kind == StateKind::Normal => stage,
            _ => return Err(start),
        };
        let taken = take(nfa, &start, stage, edge.target, ev, buf, 1);
        let runs = part.runs.storage_mut();
        runs.truncate(0);
        runs.push(taken);
        runs.push(start);
        part.refresh_deadline(nfa, buf);
        Ok(())
    }

    /// The common case of [`advance_time`](Self::advance_time), without its
    /// heaps: no held match, and every partial run's pattern window has
    /// closed at `t`, none waiting in a state with an element window or in a
    /// pending `not followed by` ending. Then every partial run times out
    /// (in array order, as the general path reports them) and the partition
    /// goes idle. Returns how many partial runs expired, or `None`,
    /// changing nothing, in any other case.
    fn expire_all(
        &mut self,
        part: &mut Partition,
        buf: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn MatchSink<E>,
    ) -> Option<usize> {
        let nfa = self.nfa;
        let window = nfa.window()?;
        let all_expire = part.completed.is_empty()
            && part.runs.iter().all(|run| {
                let state = nfa.state(run.state);
                run.is_start()
                    || (state.window.is_none()
                        && state.kind != StateKind::Pending
                        && t >= run.start_ts.saturating_add(window))
            });
        if !all_expire {
            return None;
        }
        // Each run reported and released in one pass (a run's view reads
        // only its own chain, which the runs before it do not free).
        let emit = nfa.pattern().emit_timeouts;
        let mut expired = 0;
        for run in part.runs.drain() {
            if !run.is_start() {
                expired += 1;
                if emit {
                    let expired_at = run.start_ts.saturating_add(window);
                    out.on_timeout(
                        &MatchView::new(nfa, buf, &run).reading(&self.lookup),
                        expired_at,
                    );
                }
            }
            buf.release(run.node);
        }
        self.settle(part, buf);
        Some(expired)
    }

    /// Ends a step: a partition left with only the start run goes idle
    /// (keeping no runs, so idle keys cost no memory), one whose runs fit
    /// inline again gives its vector back to the cache, and the deadline is
    /// recomputed. Always inlined: it ends every call on the hot path.
    #[inline(always)]
    fn settle(&mut self, part: &mut Partition, buf: &SharedBuffer<E>) {
        let inline = Runs::new().inline_size();
        if part.completed.is_empty() && part.only_start() {
            if part.runs.storage().spilled() {
                let runs = part.runs.set_storage(Runs::new());
                self.cache.give_vec(runs.into_vec());
            } else if !part.runs.is_empty() {
                part.runs.truncate(0);
            }
        } else if part.runs.storage().spilled() && part.runs.len() <= inline {
            let mut runs = part.runs.set_storage(Runs::new()).into_vec();
            part.runs.storage_mut().extend(runs.drain(..));
            self.cache.give_vec(runs);
        }
        part.refresh_deadline(self.nfa, buf);
    }

    /// Flink's `computeNextStates` for one run whose decision graph is in
    /// the cache: its branches are offered to `next` (partial runs) or
    /// `potential` (complete matches); a run whose branches include a stop
    /// state is discarded with all of them. The run is consumed: its node
    /// reference passes to its branches or is released.
    #[inline(always)]
    fn route(
        &mut self,
        run: Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        next: &mut impl Next,
        potential: &mut JavaHeap<Run>,
    ) {
        let nfa = self.nfa;
        let edges = self.edges();
        route_branches(nfa, edges, run, ev, buf, next, potential);
    }

    /// [`route`](Self::route) of a run with at most one partial branch,
    /// which goes to `slot`.
    fn route_into(
        &mut self,
        run: Run,
        ev: EventRef,
        buf: &mut SharedBuffer<E>,
        slot: &mut Option<Run>,
        potential: &mut JavaHeap<Run>,
    ) {
        let nfa = self.nfa;
        let edges = self.edges();
        route_branches(nfa, edges, run, ev, buf, slot, potential);
    }

    /// Flink's `createDecisionGraph`: a depth-first walk over the PROCEED
    /// edges that hold for this event, collecting the TAKE and IGNORE edges
    /// that hold (in Flink's stack order); read from the automaton's
    /// static graphs when the state has them.
    ///
    /// With `memo` (allowed only when no condition reads the run, so that
    /// the graph depends on the run's state only), each state's graph is
    /// made once per event and kept in the cache's graphs (many runs of a
    /// partition often wait in the same state): the next runs in that
    /// state find it here, inline.
    #[inline(always)]
    fn create_decision_graph(
        &mut self,
        run: &Run,
        ev: EventRef,
        buf: &SharedBuffer<E>,
        memo: bool,
    ) {
        if memo && (self.starts || !run.is_start()) {
            let (stamp, start, end) = self.cache.memo[run.state.index()];
            if stamp == self.cache.stamp {
                self.static_edges = None;
                self.cache.graph = (start as usize, end as usize);
                return;
            }
        }
        self.make_decision_graph(run, ev, buf, memo);
    }

    /// [`create_decision_graph`](Self::create_decision_graph) when the
    /// memo does not have it. (Lean: the static graph of a run without the
    /// memo is its most frequent use; the rest is out of line.)
    #[inline(never)]
    fn make_decision_graph(&mut self, run: &Run, ev: EventRef, buf: &SharedBuffer<E>, memo: bool) {
        let nfa = self.nfa;
        if !self.starts && run.is_start() {
            // A draining version's start run: no edge (it stays as it is).
            self.static_edges = None;
            self.cache.graph = (0, 0);
            return;
        }
        if let Some(g) = nfa.static_graph(run.state) {
            let index = self.static_index(g, buf, ev);
            let edges = &g.edges[index];
            if !memo {
                self.static_edges = Some(edges);
                return;
            }
            // (copied, so that the memo finds every state's graph alike)
            return self.memo_graph(run.state, edges);
        }
        self.walk_graph(run, ev, buf, memo);
    }

    /// Keeps `edges`, the graph of `state` for this event, in the cache
    /// for the memo, and makes it the current run's.
    #[inline(never)]
    fn memo_graph(&mut self, state: StateId, edges: &[Edge]) {
        self.static_edges = None;
        let cache = &mut *self.cache;
        let start = cache.graphs.len();
        cache.graphs.extend_from_slice(edges);
        cache.graph = (start, cache.graphs.len());
        cache.memo[state.index()] = (cache.stamp, start as u32, cache.graphs.len() as u32);
    }

    /// The run's graph by Flink's walk, kept for the memo with `memo`.
    #[inline(never)]
    fn walk_graph(&mut self, run: &Run, ev: EventRef, buf: &SharedBuffer<E>, memo: bool) {
        self.static_edges = None;
        let cache = &mut *self.cache;
        if !memo {
            // (only this run's graph is kept)
            cache.graphs.clear();
        }
        walk_decision_graph(self.nfa, run, ev, buf, cache, self.lookup);
        if memo {
            let (start, end) = cache.graph;
            cache.memo[run.state.index()] = (cache.stamp, start as u32, end as u32);
        }
    }
}

/// What became of a run stepped where it stands.
enum Step {
    /// It is where it was, with the same start (its one partial branch).
    Stays,
    /// Its one partial branch, perhaps with another start, is where it was.
    Replaced,
    /// It has no partial branch (its node is released).
    Gone,
    /// It has several partial branches; nothing was done.
    Forks,
}

/// A state a run can wait in: not final, not stop.
#[inline]
fn is_ordinary(kind: StateKind) -> bool {
    matches!(
        kind,
        StateKind::Normal | StateKind::Start | StateKind::Pending
    )
}

/// Does a branch into a stop state discard the run and its other partial
/// branches (complete matches still count, as in Flink)? Never for the
/// start run: it took nothing, so only its branch into the stop state ends.
/// (Only the stop state of a negation that ends a group can be reached
/// from the start, D1: `((a?) not followed by b) followed by c`; every
/// other negation reachable before a take is rejected, D5.)
#[inline]
fn discards(edges: &[Edge], is_start: bool) -> bool {
    !is_start
        && edges.iter().any(|e| {
            e.kind == StateKind::Stop
                && match e.action {
                    Action::Ignore => true,
                    Action::Take => e.stage.is_some(),
                    Action::Proceed => false,
                }
        })
}

/// Where a branch into a state of `kind` goes: `Some(true)` complete, `Some(false)`
/// partial, `None` dropped.
#[inline]
fn dest(kind: StateKind, discard: bool) -> Option<bool> {
    match kind {
        StateKind::Final => Some(true),
        StateKind::Stop => None,
        _ if discard => None,
        _ => Some(false),
    }
}

/// Where a run's partial branches go.
trait Next {
    fn offer(&mut self, run: Run);
}

/// The new queue of a step.
impl<S: Items<Run>> Next for JavaHeap<Run, S> {
    #[inline]
    fn offer(&mut self, run: Run) {
        JavaHeap::offer(self, run);
    }
}

/// The new queue of a step's general path, built by concatenation while
/// it stays sorted. Java's `offer` of a run whose key is at least the last
/// one's into a sorted array moves nothing (the parent's key is at most
/// the last one's), so it is a push; the first run that would break the
/// order is offered (sifted up) and every one after it too. In `loop`
/// the queue stays sorted: every branch keeps its run's start, and new
/// runs start last.
struct Concat {
    items: Vec<Run>,
    /// Are the items in increasing key order?
    sorted: bool,
}

impl Concat {
    /// An empty queue in `items`' allocation.
    #[inline]
    fn new(mut items: Vec<Run>) -> Concat {
        items.clear();
        Concat {
            items,
            sorted: true,
        }
    }

    /// Appends a run of the queue built so far (a heap as it stands).
    #[inline(always)]
    fn keep(&mut self, run: Run) {
        if self.sorted {
            self.sorted = self
                .items
                .last()
                .map_or(true, |last| last.key() <= run.key());
        }
        self.items.push(run);
    }
}

impl Next for Concat {
    #[inline(always)]
    fn offer(&mut self, run: Run) {
        if self.sorted {
            if self
                .items
                .last()
                .map_or(true, |last| last.key() <= run.key())
            {
                self.items.push(run);
                return;
            }
            self.sorted = false;
        }
        let k = self.items.len();
        self.items.push(run);
        sift_up(&mut self.items, k);
    }
}

/// The one partial branch of a run that has at most one.
impl Next for Option<Run> {
    #[inline]
    fn offer(&mut self, run: Run) {
        debug_assert!(self.is_none(), "a run stepped in place forked");
        *self = Some(run);
    }
}

/// The body of [`Executor::route`]: Flink's `computeNextStates` for one run
/// with decision graph `edges`.
///
/// A run's node is held by every branch that keeps it (an IGNORE) and by
/// every node a TAKE makes after it; the references are counted once at
/// the end (the run's own passing to the first holder), so a node that
/// one branch moves on from is not touched at all.
#[inline(always)]
fn route_branches<E: Event>(
    nfa: &Nfa<E>,
    edges: &[Edge],
    run: Run,
    ev: EventRef,
    buf: &mut SharedBuffer<E>,
    next: &mut impl Next,
    potential: &mut JavaHeap<Run>,
) {
    let is_start = run.is_start();
    match edges[..] {
        [] if is_start => return next.offer(run),
        [] => return buf.release(run.node),
        [Edge {
            action: Action::Ignore,
            target,
            kind,
            ..
        }] if !is_start && is_ordinary(kind) => {
            return next.offer(Run {
                state: target,
                ..run
            });
        }
        _ => {}
    }
    let discard = nfa.has_stop_states() && discards(edges, is_start);
    let mut holders = 0;
    for &edge in edges {
        match edge.action {
            Action::Ignore if !is_start => {
                let Some(complete) = dest(edge.kind, discard) else {
                    continue;
                };
                holders += 1;
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
                let Some(stage) = edge.stage else {
                    continue;
                };
                let taken_dest = dest(edge.kind, discard);
                if taken_dest.is_none() && edge.final_after.is_none() {
                    continue;
                }
                holders += 1;
                let refs = u32::from(taken_dest.is_some()) + u32::from(edge.final_after.is_some());
                let taken = take(nfa, &run, stage, edge.target, ev, buf, refs);
                let completed = edge.final_after.map(|f| Run {
                    state: f,
                    ..taken.clone()
                });
                match taken_dest {
                    Some(true) => potential.offer(taken),
                    Some(false) => next.offer(taken),
                    None => {}
                }
                if let Some(completed) = completed {
                    potential.offer(completed);
                }
            }
            Action::Ignore | Action::Proceed => {}
        }
    }
    let node = run.node;
    if is_start && !discard {
        // (the start run holds no node)
        next.offer(run);
    }
    buf.share(node, holders);
}

/// The run that results from `run` taking `ev` into `stage` and moving to
/// `target`: a new buffer node after the run's, with `refs` references
/// (and holding one to the run's node, which the caller counts), the
/// stage's accumulators updated, the start time set if this is the run's
/// first event. Always inlined: its callers are on the hot path.
#[inline(always)]
fn take<E: Event>(
    nfa: &Nfa<E>,
    run: &Run,
    stage: StageId,
    target: StateId,
    ev: EventRef,
    buf: &mut SharedBuffer<E>,
    refs: u32,
) -> Run {
    let mut accumulators = run.accumulators.clone();
    accumulators.on_take(nfa.layout(), stage, buf.get(ev));
    let node = buf.put(stage, ev, run.node, refs);
    let (start_ts, start_seq) = if run.is_start() {
        (buf.timestamp(ev), buf.sequence(ev))
    } else {
        (run.start_ts, run.start_seq)
    };
    Run {
        state: target,
        node,
        start_ts,
        start_seq,
        accumulators,
    }
}

/// A partial run takes `ev` into `stage` and moves to `target`, as the
/// run [`take`] makes, changed where it stands: its reference to its old
/// node passes to the new node, which it holds.
#[inline(always)]
fn take_in_place<E: Event>(
    nfa: &Nfa<E>,
    run: &mut Run,
    stage: StageId,
    target: StateId,
    ev: EventRef,
    buf: &mut SharedBuffer<E>,
) {
    debug_assert!(!run.is_start());
    run.accumulators.on_take(nfa.layout(), stage, buf.get(ev));
    run.node = buf.put(stage, ev, run.node, 1);
    run.state = target;
}

/// The walk behind [`Executor::create_decision_graph`]: the run's graph,
/// its conditions evaluated in its context, appended to the cache's graphs.
fn walk_decision_graph<E: Event, L: LookupRef>(
    nfa: &Nfa<E>,
    run: &Run,
    ev: EventRef,
    buf: &SharedBuffer<E>,
    cache: &mut Cache,
    lookup: L,
) {
    let start = cache.graphs.len();
    let view = RunEvents::new(nfa, buf, run.node);
    let ctx = EvalCtx {
        event: buf.get(ev),
        accumulators: &run.accumulators,
        stages: &view,
        lookup,
    };
    let slot_values = &mut cache.slot_values;
    let mut holds = |c| nfa.eval(c, &ctx, slot_values);
    nfa.decision_graph(run.state, &mut holds, &mut cache.stack, &mut cache.graphs);
    cache.graph = (start, cache.graphs.len());
}
