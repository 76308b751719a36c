//! The automaton: a [`Pattern`] compiled into states with take / ignore /
//! proceed transitions, exactly as Apache Flink CEP's `NFACompiler` builds
//! them.
//!
//! # The chain
//!
//! [`Nfa::compile`] first compiles every stage condition and every `until`
//! once into a *condition slot* (an [`expr`](crate::expr) expression, or a
//! native closure downcast to [`NativeFn<E>`](crate::pattern::NativeFn)), then
//! walks the pattern from its last element to its first, creating states the
//! way Flink does (see the `compiler` module: every Flink method has a
//! namesake there). Transition conditions are small combinations of slots
//! (`And`, `Not`, `True`), so evaluation never looks anything up by name.
//!
//! The runtime half (runs, the shared buffer, skip strategies, time) lives in
//! [`crate::matcher`], whose executor drives an `&Nfa<E>` per partition
//! through a few documented methods (this module does not depend on it): the
//! automaton itself is immutable and can be shared by every partition and
//! thread.
//!
//! # States and transitions
//!
//! - A **take** edge consumes the event into the stage of its *source* state
//!   and moves the run to the target.
//! - An **ignore** edge skips the event (staying, or moving to a separate
//!   ignore state); the start state never ignores.
//! - A **proceed** edge is an epsilon move evaluated on the *current* event.
//!
//! State kinds are Flink's: `Start`, `Normal`, `Final` (a run reaching it is a
//! match), `Stop` (a run reaching it is discarded with every branch of the
//! run it came from) and `Pending` (a `not followed by` at the end: the match
//! completes when the window closes).
//!
//! # Where the spec is silent (decisions)
//!
//! - A `not followed by` ending a group is enforced (FLINK-15980): the
//!   group's last take leads to a copy of the following state that carries
//!   the negation's stop edge (where Flink puts the stop edge of a `not
//!   followed by` written before an element); skipping an optional group
//!   bypasses it, and a looping group checks it between iterations too. At
//!   the very end of the pattern it becomes a pending state (needs
//!   `within`), as in Flink.
//! - An element window (`within` after an element) applies to the states
//!   that take for that element, as Flink's per-state `windowTimes`, also
//!   when the element has a quantifier (Flink 2.3 ignores it there). On a
//!   group it applies to every take state inside the group (the smallest
//!   window wins), which is what `language.md` says it means; Flink ignores
//!   it. Copies of states have no window, as in Flink.
//! - Flink would loop forever on a cycle of proceed edges (a looping group
//!   whose elements are all optional) and walks exponentially many paths
//!   through nested optional groups; here both are compile errors
//!   ([`MAX_PROCEED_PATHS`]), so the walk is exact.
//! - Patterns compiling to more than 100,000 states, or with groups nested
//!   deeper than 32, are compile errors.
//!
//! ```
//! use cepheid_automata::nfa::Nfa;
//! use cepheid_core::pattern::{Condition, Contiguity, Element, Pattern, Sequence, Stage};
//! use cepheid_core::primitives::StageId;
//! use cepheid_core::event::NoFields;
//! use cepheid_core::Record;
//!
//! let stages = vec![Stage::new("a", Condition::True), Stage::new("b", Condition::True)];
//! let mut b = Element::stage(StageId(1));
//! b.contiguity = Contiguity::Strict;
//! let pattern = Pattern::new("p", stages, Sequence::new(vec![Element::stage(StageId(0)), b]));
//! let nfa = Nfa::<Record>::compile(&pattern, &mut NoFields).unwrap();
//! assert!(nfa.explain().contains("b --take[true]--> $endState$"));
//! ```

mod compiler;
pub mod cond;
mod explain;
mod graph;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashMap;

use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use crate::expr::{
    AccumulatorLayout, AccumulatorLayoutBuilder, Accumulators, CompiledExpr, CompiledSelect,
};
use crate::lookup::LookupRef;
use crate::pattern::{Condition, Element, ElementKind, NativeFn, Pattern};
use crate::primitives::Span;
use crate::primitives::{DurationMs, StageId};
use cond::{CondId, CondNode, Conditions, Slot, SlotKind};

pub use cond::{ConditionTable, EvalCtx, SlotValues};
pub use explain::{dot_legend, dot_of_graphs, EdgeKind, GraphEdge, GraphNode, NfaGraph};
pub use graph::{Edge, StaticGraph};

pub use compiler::MAX_PROCEED_PATHS;

/// Index of a state in an [`Nfa`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct StateId(pub u32);

impl StateId {
    /// The index this id stands for.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Flink's state types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// Where every run starts (re-created after every event).
    Start,
    /// An ordinary state.
    Normal,
    /// Reaching it completes a match.
    Final,
    /// Reaching it discards the run and all its branches (`not` elements).
    Stop,
    /// A `not followed by` ending: completes when the window closes.
    Pending,
}

/// What a transition does with the current event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Consume the event into the source state's stage.
    Take,
    /// Skip the event.
    Ignore,
    /// Move without consuming, evaluated on the same event.
    Proceed,
}

/// A transition of a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Take, ignore or proceed.
    pub action: Action,
    /// Where the run goes.
    pub target: StateId,
    /// When the transition applies (an id into the automaton's conditions).
    pub cond: CondId,
}

/// A state of the automaton.
#[derive(Clone, Debug)]
pub struct State {
    /// Flink's internal name: the stage name, `name:N` for further states of
    /// the same stage, `$endState$` for the final state.
    pub name: String,
    /// The stage an event taken from this state is recorded under.
    pub stage: Option<StageId>,
    /// Start, normal, final, stop or pending.
    pub kind: StateKind,
    /// Outgoing transitions, in Flink's order.
    pub transitions: Vec<Transition>,
    /// PREVIOUS_AND_CURRENT window of a run waiting in this state.
    pub window: Option<DurationMs>,
}

/// Why a pattern could not be compiled to an automaton ([`Nfa::compile`]):
/// the automata layer's own error, data rather than text. It converts into
/// the engine's `Error` (with `?`) with its kind, message and span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, in plain words.
    pub message: String,
    /// Where in the pattern text, when known (empty otherwise: the caller
    /// uses the pattern's own span).
    pub span: Span,
}

impl CompileError {
    /// An error about the pattern's shape, with this message.
    pub fn new(message: impl Into<String>) -> CompileError {
        CompileError {
            kind: ErrorKind::Pattern,
            message: message.into(),
            span: Span::default(),
        }
    }

    /// A limit (size, nesting, ambiguity) exceeded.
    pub fn limit(message: impl Into<String>) -> CompileError {
        CompileError {
            kind: ErrorKind::Limit,
            ..CompileError::new(message)
        }
    }

    /// What kind of problem ([`ErrorKind::Limit`], [`ErrorKind::Field`],
    /// [`ErrorKind::Pattern`]).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What is wrong, in plain words.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the pattern text, when known.
    pub fn span(&self) -> Option<Span> {
        (!self.span.is_empty()).then_some(self.span)
    }

    /// The same error, at `span` (unless it has a place already).
    pub fn at(mut self, span: Span) -> CompileError {
        if self.span.is_empty() {
            self.span = span;
        }
        self
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

impl From<CompileError> for Error {
    fn from(e: CompileError) -> Error {
        Error::new(e.kind, e.message).with_span(e.span)
    }
}

/// A compiled pattern for events of type `E`: immutable, shareable.
pub struct Nfa<E> {
    /// Unique among the automata of the process (a [`ConditionTable`]
    /// tells their conditions apart by it).
    id: u64,
    /// Each field the conditions and `select` read, and its id in the
    /// resolver they were compiled with.
    fields_read: Vec<(FieldPath, FieldId)>,
    pattern: Pattern,
    states: Vec<State>,
    start: StateId,
    conds: Conditions<E>,
    window: Option<DurationMs>,
    layout: AccumulatorLayout,
    /// Accumulators of a run that took nothing (cloned, never mutated).
    fresh: Accumulators,
    select: CompiledSelect,
    /// The values `then add`/`then remove` write, evaluated over a match
    /// like `select` (one per [`Pattern::writes`](crate::pattern::Pattern::writes)).
    writes: CompiledSelect,
    /// The pattern's [`reads`](crate::pattern::Pattern::reads), compiled
    /// against one layout of its own.
    reads: Option<Box<CompiledReads>>,
    /// Per state: does it have a PROCEED transition? (A state without one
    /// needs no walk: its decision graph is its own TAKE and IGNORE edges.)
    proceeds: Vec<bool>,
    /// No condition reads the run (stage references, iterative closures):
    /// a decision graph then depends on the state and the event only.
    run_independent: bool,
    /// Does any state have an element window?
    element_windows: bool,
    /// Is any state a pending `not followed by` ending?
    pending_endings: bool,
    /// Are complete matches emitted as a step makes them (`no skip`, no
    /// alternation), without the held queue's order?
    direct_matches: bool,
    /// Is any state a stop state (a `not` element)?
    stop_states: bool,
    /// Slots (not reading the run) of which one must hold for the start
    /// run to take an event; `None` when no such set is known.
    start_guard: Option<Box<[u32]>>,
    /// Per state: does a run waiting there just stay when its one IGNORE
    /// edge, into the state itself, is the only edge that holds? (No
    /// PROCEED edge, exactly one IGNORE edge, a loop.)
    self_ignoring: Vec<bool>,
    /// When the start run's decision graph is one TAKE edge into a normal
    /// state (no PROCEED anywhere on the way) whenever the start guard
    /// holds: that edge's stage and target.
    simple_start: Option<(StageId, StateId)>,
    /// Per state: its decision graphs by the values of the few slots they
    /// depend on, when none reads the run (see [`StaticGraph`]).
    static_graphs: Vec<Option<StaticGraph>>,
    /// What tells the branches a match took, for a pattern with
    /// alternation (`None` without).
    branches: Option<Box<BranchInfo>>,
    _event: PhantomData<fn(&E)>,
}

/// How to tell which branch of each alternation a match took
/// (`docs/semantics.md`, "Alternation").
#[derive(Debug)]
pub struct BranchInfo {
    /// Per alternation in the order of the text, per branch, the stages of
    /// its own that each of its matches takes
    /// ([`branch_keys`](crate::pattern::branch_keys)).
    pub keys: Vec<Vec<Vec<StageId>>>,
    /// Per state, the branches it is in: (alternation, branch index).
    pub state_branch: Vec<Vec<(u32, u32)>>,
}

impl BranchInfo {
    /// The branch (1-based) of each alternation taken by a match whose
    /// events are in `stages` and that waits in `state` (a partial match;
    /// a complete one is in the final state, in no branch): by its events
    /// first, else by the state; `None` for an alternation it has not
    /// reached.
    pub fn branches(&self, stages: &[StageId], state: StateId) -> Vec<Option<u32>> {
        let mut out: Vec<Option<u32>> = self
            .keys
            .iter()
            .map(|branches| {
                branches
                    .iter()
                    .position(|own| own.iter().any(|s| stages.contains(s)))
                    .map(|b| b as u32 + 1)
            })
            .collect();
        if let Some(path) = self.state_branch.get(state.index()) {
            for &(alt, b) in path {
                if let Some(slot) = out.get_mut(alt as usize) {
                    slot.get_or_insert(b + 1);
                }
            }
        }
        out
    }
}

impl<E> fmt::Debug for Nfa<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nfa")
            .field("pattern", &self.pattern.name)
            .field("states", &self.states.len())
            .finish()
    }
}

impl<E: Event + 'static> Nfa<E> {
    /// Compiles a pattern: conditions against `fields`, then the states.
    ///
    /// Fails with [`ErrorKind::Field`] when a condition reads a field the
    /// event type does not have, [`ErrorKind::Limit`] when the automaton
    /// would be too large or too ambiguous, [`ErrorKind::Pattern`] for IR no
    /// front end makes (see `docs/semantics.md`, D5).
    pub fn compile(
        pattern: &Pattern,
        fields: &mut dyn FieldResolver,
    ) -> Result<Nfa<E>, CompileError> {
        Nfa::compile_inner(pattern, fields).map_err(|e| e.at(pattern.span))
    }

    fn compile_inner(
        pattern: &Pattern,
        fields: &mut dyn FieldResolver,
    ) -> Result<Nfa<E>, CompileError> {
        check_shape(pattern)?;
        let fields = &mut Recording {
            fields,
            read: Vec::new(),
        };
        if let Some(key) = &pattern.partition_by_fn {
            if key.downcast::<E>().is_none() {
                return Err(CompileError::new(format!(
                    "the partition key closure was written for another event type than `{}`",
                    std::any::type_name::<E>()
                )));
            }
        }
        let mut conds = Conditions::default();
        let mut layout = AccumulatorLayoutBuilder::new();
        let mut stage_conds = Vec::with_capacity(pattern.stages.len());
        for stage in &pattern.stages {
            let id = compile_condition(
                &stage.condition,
                (&stage.name, pattern.shadow),
                fields,
                &mut layout,
                &mut conds,
            )
            .map_err(|e| e.at(stage.span))?;
            stage_conds.push(id);
        }
        let mut until_conds = HashMap::new();
        for elem in all_elements(pattern) {
            if let Some(until) = &elem.until {
                let label = format!("until({})", element_label(pattern, elem));
                let id = compile_condition(
                    until,
                    (&label, pattern.shadow),
                    fields,
                    &mut layout,
                    &mut conds,
                )
                .map_err(|e| e.at(elem.span))?;
                until_conds.insert(elem as *const Element as usize, id);
            }
        }
        let compiled =
            compiler::Compiler::new(pattern, &mut conds, &stage_conds, &until_conds)?.compile()?;
        let select =
            CompiledSelect::compile(&pattern.select, fields).map_err(|e| CompileError {
                kind: ErrorKind::Field,
                ..CompileError::new(format!("select: {e}"))
            })?;
        let write_items: Vec<crate::expr::SelectItem> = pattern
            .writes
            .iter()
            .map(|w| crate::expr::SelectItem::new(w.list.name.to_string(), w.value.clone()))
            .collect();
        let writes = CompiledSelect::compile(&write_items, fields).map_err(|e| CompileError {
            kind: ErrorKind::Field,
            ..CompileError::new(format!("then: {e}"))
        })?;
        let reads = if pattern.reads.is_empty() {
            None
        } else {
            let mut layout = crate::expr::AccumulatorLayoutBuilder::new();
            let mut items = Vec::with_capacity(pattern.reads.len());
            for r in &pattern.reads {
                let e = CompiledExpr::compile(&r.expr, fields, &mut layout).map_err(|e| {
                    CompileError {
                        kind: ErrorKind::Field,
                        ..CompileError::new(format!("`{}`: {e}", r.label))
                    }
                })?;
                items.push((r.stage, std::sync::Arc::clone(&r.label), e));
            }
            Some(Box::new(CompiledReads {
                layout: layout.finish(),
                items,
            }))
        };
        let layout = layout.finish();
        let proceeds: Vec<bool> = compiled
            .states
            .iter()
            .map(|s| s.transitions.iter().any(|t| t.action == Action::Proceed))
            .collect();
        let run_independent = conds.slots.iter().all(|s| !s.per_run);
        let element_windows = compiled.states.iter().any(|s| s.window.is_some());
        let pending_endings = compiled.states.iter().any(|s| s.kind == StateKind::Pending);
        let stop_states = compiled.states.iter().any(|s| s.kind == StateKind::Stop);
        let start_guard = start_guard(&compiled.states, compiled.start, &conds);
        let self_ignoring = compiled
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut ignores = s.transitions.iter().filter(|t| t.action == Action::Ignore);
                s.transitions.iter().all(|t| t.action != Action::Proceed)
                    && ignores.next().is_some_and(|t| t.target.index() == i)
                    && ignores.next().is_none()
            })
            .collect();
        let simple_start = simple_start(&compiled.states, compiled.start, &conds, &proceeds);
        let static_graphs = (0..compiled.states.len())
            .map(|i| graph::static_graph(&compiled.states, StateId(i as u32), &conds, &proceeds))
            .collect();
        Ok(Nfa {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            fields_read: std::mem::take(&mut fields.read),
            proceeds,
            static_graphs,
            start_guard,
            simple_start,
            self_ignoring,
            element_windows,
            pending_endings,
            direct_matches: pattern.skip == crate::pattern::SkipStrategy::NoSkip
                && !pattern.has_alternation(),
            stop_states,
            run_independent,
            fresh: layout.new_accumulators(),
            layout,
            pattern: pattern.clone(),
            states: compiled.states,
            start: compiled.start,
            conds,
            window: pattern.within.filter(|w| *w > 0),
            select,
            writes,
            reads,
            branches: pattern.has_alternation().then(|| {
                Box::new(BranchInfo {
                    keys: crate::pattern::branch_keys(pattern),
                    state_branch: compiled.state_branch,
                })
            }),
            _event: PhantomData,
        })
    }
}

impl<E> Nfa<E> {
    /// The pattern this automaton was compiled from.
    #[inline]
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// All states, indexed by [`StateId`].
    #[inline]
    pub fn states(&self) -> &[State] {
        &self.states
    }

    /// The start state.
    #[inline]
    pub fn start(&self) -> StateId {
        self.start
    }

    /// The pattern-level window (`within`), if any.
    #[inline]
    pub fn window(&self) -> Option<DurationMs> {
        self.window
    }

    /// Numbers the values of the conditions by `table`, so that automata
    /// numbered by one table and evaluated with one [`SlotValues`] compute
    /// an equal condition once per event (the engine numbers a pattern's
    /// conditions when it compiles it, before it shares the automaton;
    /// another engine takes those numbers with [`ConditionTable::adopt`]).
    pub fn share_conditions(&mut self, table: &mut ConditionTable) {
        self.conds.share(self.id, table);
    }

    /// This automaton's number, unique among the automata compiled by the
    /// process.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Would `fields` give every field this automaton reads the id it was
    /// compiled with? Then the automaton reads events numbered by `fields`
    /// correctly (a [`FieldTable`](cepheid_core::record::FieldTable) given a name
    /// it does not know numbers it, as compiling would).
    pub fn reads_alike(&self, fields: &mut dyn FieldResolver) -> bool {
        self.fields_read
            .iter()
            .all(|(path, id)| fields.resolve(path).as_ref() == Ok(id))
    }
}

/// The numbers of automata ([`Nfa::id`]).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A resolver that keeps what it resolved (for [`Nfa::reads_alike`]).
struct Recording<'a> {
    fields: &'a mut dyn FieldResolver,
    read: Vec<(FieldPath, FieldId)>,
}

impl FieldResolver for Recording<'_> {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        let id = self.fields.resolve(path)?;
        if !self.read.iter().any(|(p, _)| p == path) {
            self.read.push((path.clone(), id));
        }
        Ok(id)
    }

    fn known_names(&self) -> Option<Vec<String>> {
        self.fields.known_names()
    }
}

/// What the matcher reads of an automaton: the runtime in
/// [`crate::matcher`] drives an `&Nfa<E>` through these calls only (and
/// the public ones above), never through its fields.
impl<E> Nfa<E> {
    /// The state `id` (of this automaton: panics on an id out of range).
    #[inline]
    pub fn state(&self, id: StateId) -> &State {
        &self.states[id.index()]
    }

    /// Does no condition read the run (stage references, iterative
    /// closures)? Then a decision graph depends on the state and the event
    /// only, and the matcher may share it between runs in the same state.
    #[inline]
    pub fn run_independent(&self) -> bool {
        self.run_independent
    }

    /// Does any state have an element window (`within` after an element)?
    /// Without one, a run's deadline is its pattern window only.
    #[inline]
    pub fn has_element_windows(&self) -> bool {
        self.element_windows
    }

    /// Is any state a pending `not followed by` ending? Without one, a run
    /// whose window closes never completes: it times out or is dropped.
    #[inline]
    pub fn has_pending_endings(&self) -> bool {
        self.pending_endings
    }

    /// Are a step's complete matches emitted as it makes them, in the
    /// order of its array (`no skip`: nothing is held back or pruned)?
    /// Not for a pattern with alternation, whose matches with one first
    /// event go in a defined order (`docs/semantics.md`, "Alternation").
    #[inline]
    pub fn direct_matches(&self) -> bool {
        self.direct_matches
    }

    /// Is any state a stop state (a `not` element)? Without one, no
    /// branch discards its run.
    #[inline]
    pub fn has_stop_states(&self) -> bool {
        self.stop_states
    }

    /// The slots of which one must hold for the start run to take an event:
    /// when every one is false for an event, no TAKE edge of the start
    /// run's decision graph holds (its IGNORE edges change nothing), so an
    /// idle partition stays idle and emits nothing. `None` when no such
    /// set is known.
    #[inline]
    pub fn start_guard(&self) -> Option<&[u32]> {
        self.start_guard.as_deref()
    }

    /// The number of slot `s`'s value among the values shared by the
    /// automata numbered with one table (equal conditions, one number).
    #[inline]
    pub fn shared_slot(&self, s: u32) -> u32 {
        self.conds.shared[s as usize]
    }

    /// The value of slot `s` (one that does not read the run) for this
    /// event, when `memo` knows it.
    #[inline(always)]
    pub fn cached_slot(&self, s: u32, memo: &SlotValues) -> Option<bool> {
        self.conds.cached(s, memo)
    }

    /// When the start run's decision graph, whenever a slot of the
    /// [`start_guard`](Self::start_guard) holds, is exactly one TAKE edge
    /// into a normal state from which nothing proceeds: its stage and
    /// target.
    #[inline]
    pub fn simple_start(&self) -> Option<(StageId, StateId)> {
        self.simple_start
    }

    /// The decision graphs of `state` by the values of the few slots they
    /// depend on, when none reads the run.
    #[inline]
    pub fn static_graph(&self, state: StateId) -> Option<&StaticGraph> {
        self.static_graphs[state.index()].as_ref()
    }

    /// Flink's `createDecisionGraph` for a run in `state`: appends to
    /// `out` the TAKE and IGNORE edges the walk over PROCEED edges finds,
    /// `holds` deciding each condition (with the run's context), `stack`
    /// its scratch space.
    #[inline(always)]
    pub fn decision_graph(
        &self,
        state: StateId,
        holds: &mut impl FnMut(CondId) -> bool,
        stack: &mut Vec<StateId>,
        out: &mut Vec<Edge>,
    ) {
        graph::decision_graph(&self.states, &self.proceeds, state, holds, stack, out);
    }

    /// The value of slot `s` (one that does not read the run) for this
    /// event.
    #[inline]
    pub fn slot_holds<L: LookupRef>(
        &self,
        s: u32,
        ctx: &EvalCtx<'_, E, L>,
        memo: &mut SlotValues,
    ) -> bool
    where
        E: Event,
    {
        self.conds.slot_holds(s, ctx, memo)
    }

    /// Does a run waiting in `state` stay exactly as it is on this event:
    /// the state is self-ignoring and its IGNORE edge is the only one that
    /// holds? (Evaluates the state's conditions in order, as the decision
    /// graph does, stopping at the first that decides.)
    #[inline]
    pub fn stays<L: LookupRef>(
        &self,
        state: StateId,
        ctx: &EvalCtx<'_, E, L>,
        memo: &mut SlotValues,
    ) -> bool
    where
        E: Event,
    {
        self.self_ignoring[state.index()]
            && self.states[state.index()]
                .transitions
                .iter()
                .all(|t| (t.action == Action::Ignore) == self.conds.eval(t.cond, ctx, memo))
    }

    /// The accumulators of a run that took nothing (clone them).
    #[inline]
    pub fn fresh_accumulators(&self) -> &Accumulators {
        &self.fresh
    }

    /// Where each stage reference of the conditions keeps its running value.
    #[inline]
    pub fn layout(&self) -> &AccumulatorLayout {
        &self.layout
    }

    /// The compiled `select` section.
    #[inline]
    pub fn compiled_select(&self) -> &CompiledSelect {
        &self.select
    }

    /// The compiled list memberships and indicator calls of the stages'
    /// conditions, when there are any.
    #[inline]
    pub fn compiled_reads(&self) -> Option<&CompiledReads> {
        self.reads.as_deref()
    }

    /// For a pattern with alternation, what tells the branches its
    /// matches took; `None` without alternation.
    #[inline]
    pub fn branch_info(&self) -> Option<&BranchInfo> {
        self.branches.as_deref()
    }

    /// The compiled values of the pattern's `then` writes.
    #[inline]
    pub fn compiled_writes(&self) -> &CompiledSelect {
        &self.writes
    }

    /// Does condition `cond` hold in `ctx`? `memo` holds the per-event
    /// values of conditions that do not read the run
    /// ([`SlotValues::next_event`] before each event).
    #[inline]
    pub fn eval<L: LookupRef>(
        &self,
        cond: CondId,
        ctx: &EvalCtx<'_, E, L>,
        memo: &mut SlotValues,
    ) -> bool
    where
        E: Event,
    {
        self.conds.eval(cond, ctx, memo)
    }
}

/// The slots of which one must hold for a run in `start` to take an event
/// ([`Nfa::may_start`]): for every TAKE edge reachable from `start` through
/// PROCEED edges (whatever their conditions), a slot its condition needs.
/// `None` when some TAKE edge needs no known slot. IGNORE edges are left
/// out: the start run never follows them.
fn start_guard<E>(states: &[State], start: StateId, conds: &Conditions<E>) -> Option<Box<[u32]>> {
    let mut slots = Vec::new();
    let mut seen = vec![false; states.len()];
    let mut stack = vec![start];
    while let Some(state) = stack.pop() {
        if std::mem::replace(&mut seen[state.index()], true) {
            continue;
        }
        for t in &states[state.index()].transitions {
            match t.action {
                Action::Proceed => stack.push(t.target),
                Action::Ignore => {}
                Action::Take => match conds.needs(t.cond) {
                    cond::Needs::Never => {}
                    cond::Needs::Slot(s) => {
                        if !slots.contains(&s) {
                            slots.push(s);
                        }
                    }
                    cond::Needs::Unknown => return None,
                },
            }
        }
    }
    Some(slots.into_boxed_slice())
}

/// See [`Nfa::simple_start`]: the start state has no PROCEED edge and one
/// transition, a TAKE whose condition is one slot that does not read the
/// run (so the start guard is that slot), into a normal state without
/// PROCEED edges (so no final state follows the take).
fn simple_start<E>(
    states: &[State],
    start: StateId,
    conds: &Conditions<E>,
    proceeds: &[bool],
) -> Option<(StageId, StateId)> {
    let state = &states[start.index()];
    let [t] = state.transitions[..] else {
        return None;
    };
    let one_slot = matches!(conds.nodes[t.cond.0 as usize], CondNode::Slot(_))
        && conds.needs(t.cond) != cond::Needs::Unknown;
    let target = &states[t.target.index()];
    (t.action == Action::Take
        && one_slot
        && target.kind == StateKind::Normal
        && !proceeds[t.target.index()])
    .then_some((state.stage?, t.target))
}

/// Compiles one stage or `until` condition into a slot (or `true`), of a
/// `shadow` pattern or not.
fn compile_condition<E: 'static>(
    condition: &Condition,
    (label, shadow): (&str, bool),
    fields: &mut dyn FieldResolver,
    layout: &mut AccumulatorLayoutBuilder,
    conds: &mut Conditions<E>,
) -> Result<CondId, CompileError> {
    let slot = match condition {
        Condition::True => {
            return conds
                .add(CondNode::True)
                .ok_or_else(|| CompileError::limit("condition arena overflow"));
        }
        Condition::Expr(expr) => {
            let compiled =
                CompiledExpr::compile(expr, fields, layout).map_err(|e| CompileError {
                    kind: ErrorKind::Field,
                    ..CompileError::new(format!("condition of `{label}`: {e}"))
                })?;
            let per_run = compiled.reads_stages();
            Slot {
                // The expression's whole structure (fields by path, resolved
                // alike by one engine's fields; literals; regexes by their
                // text): equal keys are equal conditions.
                // (a shadow pattern's condition that reads lists reads
                // their shadow copies: not the live patterns' value)
                share_key: (!per_run).then(|| match shadow && compiled.reads_lookup() {
                    true => format!("shadow {expr:?}"),
                    false => format!("{expr:?}"),
                }),
                per_run,
                kind: SlotKind::Expr(compiled),
                label: label.to_string(),
            }
        }
        Condition::Native(native) => {
            let closure = native
                .closure
                .downcast_ref::<NativeFn<E>>()
                .ok_or_else(|| {
                    CompileError::new(format!(
                        "the closure of `{label}` was written for another event type than `{}`",
                        std::any::type_name::<E>()
                    ))
                })?;
            Slot {
                kind: SlotKind::Native(closure.clone()),
                per_run: native.iterative,
                label: label.to_string(),
                share_key: None,
            }
        }
    };
    let index = conds.push_slot(slot);
    conds
        .add(CondNode::Slot(index))
        .ok_or_else(|| CompileError::limit("condition arena overflow"))
}

/// Rejects IR the compiler cannot give a meaning to (the front end and the
/// builder never produce it, but `compile` is public): stage ids out of
/// range, empty sequences or groups.
fn check_shape(pattern: &Pattern) -> Result<(), CompileError> {
    if pattern.stages.len() > usize::from(u16::MAX) {
        return Err(CompileError::limit("too many stages"));
    }
    if pattern.sequence.elements.is_empty() {
        return Err(CompileError::new("the pattern has no elements"));
    }
    for elem in all_elements(pattern) {
        match &elem.kind {
            ElementKind::Stage(s) if s.index() >= pattern.stages.len() => {
                return Err(CompileError::new(format!(
                    "element refers to stage #{} but the pattern has {} stages",
                    s.index(),
                    pattern.stages.len()
                )));
            }
            ElementKind::Group(seq) if seq.elements.is_empty() => {
                return Err(CompileError::new("a group has no elements"));
            }
            ElementKind::Alternation(branches)
                if branches.len() < 2 || branches.iter().any(|b| b.elements.is_empty()) =>
            {
                return Err(CompileError::new(
                    "an alternation needs two or more branches, none of them empty",
                )
                .at(elem.span));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every element of the pattern, groups included (explicit stack).
fn all_elements(pattern: &Pattern) -> Vec<&Element> {
    let mut out = Vec::new();
    let mut stack: Vec<&Element> = pattern.sequence.elements.iter().rev().collect();
    while let Some(elem) = stack.pop() {
        out.push(elem);
        match &elem.kind {
            ElementKind::Group(seq) => stack.extend(seq.elements.iter().rev()),
            ElementKind::Alternation(branches) => {
                for b in branches.iter().rev() {
                    stack.extend(b.elements.iter().rev());
                }
            }
            ElementKind::Stage(_) => {}
        }
    }
    out
}

/// A short name for an element: its stage, or its group's first stage.
fn element_label(pattern: &Pattern, elem: &Element) -> String {
    let mut at = elem;
    loop {
        match &at.kind {
            ElementKind::Stage(s) => return pattern.stage(*s).name.clone(),
            ElementKind::Group(seq) => match seq.elements.first() {
                Some(first) => at = first,
                None => return "()".to_string(),
            },
            ElementKind::Alternation(branches) => {
                match branches.first().and_then(|b| b.elements.first()) {
                    Some(first) => at = first,
                    None => return "()".to_string(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// The list memberships and indicator calls a pattern's conditions read,
/// compiled: what a record of the pattern reports (`"reads"`).
#[derive(Debug)]
pub struct CompiledReads {
    /// The accumulators the expressions' stage references read.
    pub layout: crate::expr::AccumulatorLayout,
    /// Per read: the stage whose condition holds it, its text, the
    /// expression.
    pub items: Vec<(
        crate::primitives::StageId,
        std::sync::Arc<str>,
        CompiledExpr,
    )>,
}
