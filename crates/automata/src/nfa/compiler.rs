//! The port of Flink's `NFACompiler`: pattern IR → states and transitions.
//!
//! States are built from the last element backwards, exactly as Flink does
//! (`createEndingState`, `createMiddleStates`, `convertPattern`, ...); each
//! Flink method has a namesake here, so the two can be read side by side.
//! Flink's `Pattern` is a linked list with `getPrevious()`; here a
//! [`Cursor`] (a sequence slice and an index) plays that role, and a group's
//! "raw pattern" is the last element of its sequence.
//!
//! The port follows Flink 2.3 line by line, state names included (Flink's
//! `NFAStateNameHandler`), with these deliberate differences (recorded in
//! `docs/semantics.md`):
//!
//! - FLINK-15980: a `not followed by` that ends a group is enforced. Flink
//!   drops it; here the group's last take leads to a copy of the next
//!   element's first state carrying the negation's stop edges (see
//!   `sink_with_trailing_nots`), and a looping group's iteration-closing
//!   dummy state carries them too, so the negation also holds between
//!   iterations.
//! - Element windows: every state Flink creates "for a take" registers the
//!   element's window (and the windows of the groups around it), whatever
//!   the quantifier; Flink 2.3 registers it only for elements without one,
//!   and never for groups.
//! - A cycle of PROCEED edges (Flink would loop forever) and an automaton
//!   whose PROCEED walk from one state has more than [`MAX_PROCEED_PATHS`]
//!   paths (Flink's walk is exponential there) are compile errors.

use hashbrown::{HashMap, HashSet};

use super::cond::{CondId, CondNode, Conditions};
use super::{Action, CompileError, State, StateId, StateKind, Transition};
use crate::pattern::{Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier};
use crate::primitives::{DurationMs, Span, StageId};

/// Deepest nesting of groups the compiler accepts (it recurses per group).
pub const MAX_GROUP_DEPTH: usize = 32;

/// Most states one pattern may compile to: quantified groups copy their
/// inner states per repetition, so nesting multiplies (`((a{100}){100}){100}`
/// would be a million states); such a pattern is an error, not a hang.
pub const MAX_STATES: usize = 100_000;

/// Most PROCEED paths the decision-graph walk may follow from one state.
/// Flink walks every path (it keeps no visited set, and the same TAKE edge
/// reached twice is two branches), so nested optional groups make the walk
/// exponential: `a (((((b?)?)?)?)?) z` stays small, but each level of
/// optional groups with several elements multiplies the paths. Past this
/// bound the pattern is a compile error rather than a slow or cut-short walk.
pub const MAX_PROCEED_PATHS: u64 = 10_000;

/// The name of an alternation's entry state (and of its copies, with a
/// suffix).
const ENTRY: &str = "$or$";

/// Flink's consuming strategies (contiguity as "may this event be skipped").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Consuming {
    Strict,
    SkipTillNext,
    SkipTillAny,
    /// `not next` / `not followed by`: no ignore edge.
    Not,
}

/// Flink's `Pattern` node: an element and its position in its sequence.
#[derive(Clone, Copy)]
pub struct Cursor<'p> {
    seq: &'p [Element],
    idx: usize,
}

impl<'p> Cursor<'p> {
    fn elem(self) -> &'p Element {
        &self.seq[self.idx]
    }

    fn previous(self) -> Option<Cursor<'p>> {
        (self.idx > 0).then(|| Cursor {
            seq: self.seq,
            idx: self.idx - 1,
        })
    }

    /// An identity for maps keyed by pattern node.
    fn key(self) -> usize {
        self.elem() as *const Element as usize
    }

    fn group(self) -> Option<&'p [Element]> {
        match &self.elem().kind {
            ElementKind::Group(seq) if !seq.elements.is_empty() => Some(&seq.elements),
            _ => None,
        }
    }

    fn stage(self) -> Option<StageId> {
        match self.elem().kind {
            ElementKind::Stage(s) => Some(s),
            ElementKind::Group(_) | ElementKind::Alternation(_) => None,
        }
    }

    fn alternation(self) -> Option<&'p [crate::pattern::Sequence]> {
        match &self.elem().kind {
            ElementKind::Alternation(branches) => Some(branches),
            _ => None,
        }
    }

    fn is_not_follow(self) -> bool {
        self.elem().contiguity == Contiguity::NotFollowedBy
    }

    fn consuming(self) -> Consuming {
        if self.idx == 0 {
            return Consuming::Strict;
        }
        match self.elem().contiguity {
            Contiguity::Strict => Consuming::Strict,
            Contiguity::Relaxed => Consuming::SkipTillNext,
            Contiguity::NonDeterministic => Consuming::SkipTillAny,
            Contiguity::NotNext | Contiguity::NotFollowedBy => Consuming::Not,
        }
    }

    /// Flink's `OPTIONAL` property: `optional`, `?`, `*`, or `{0,m}`.
    fn optional(self) -> bool {
        self.elem().is_optional()
    }

    fn inner_consuming(self) -> Consuming {
        match self.elem().inner {
            InnerContiguity::Consecutive => Consuming::Strict,
            InnerContiguity::Relaxed => Consuming::SkipTillNext,
            InnerContiguity::Combinations => Consuming::SkipTillAny,
        }
    }
}

/// The compiler's output, before it is wrapped into an `Nfa`.
pub struct Compiled {
    pub states: Vec<State>,
    pub start: StateId,
    /// Per state, the branches of alternations it is in (alternation in
    /// the order of the text, branch index); empty without alternation.
    pub state_branch: Vec<Vec<(u32, u32)>>,
}

/// Compiler state (Flink's `NFAFactoryCompiler`).
pub struct Compiler<'p, 'c, E> {
    pattern: &'p Pattern,
    pub conds: &'c mut Conditions<E>,
    /// Condition of each stage, by stage index.
    stage_conds: &'c [CondId],
    /// Condition of each `until`, by element address.
    until_conds: &'c HashMap<usize, CondId>,
    states: Vec<State>,
    /// Per `not` stage, its stop states and the branches of alternations
    /// each was made in ([`Self::create_stop_state`]).
    stop_states: HashMap<StageId, Vec<(BranchPath, StateId)>>,
    used_names: HashSet<String>,
    /// Per base name, the first `:N` suffix not yet known to be taken (so
    /// naming stays linear; every smaller suffix is taken, names are never
    /// freed).
    next_suffix: HashMap<String, u32>,
    window: Option<DurationMs>,
    current: Cursor<'p>,
    following: Option<Cursor<'p>>,
    current_group: Option<Cursor<'p>>,
    first_of_loop: HashMap<usize, bool>,
    original_state: HashMap<StateId, StateId>,
    /// Copies made by [`Self::sink_with_trailing_nots`], to their originals.
    trailing_not_copies: HashMap<StateId, StateId>,
    /// The entry state of each alternation (only PROCEED edges, one per
    /// branch), removed by [`Self::bypass_alternations`].
    alternation_entries: Vec<(StateId, Span)>,
    /// The branches of alternations the states being built are in.
    branch_path: BranchPath,
    /// Per state, its `branch_path` when built (a copy: its original's).
    state_branch: Vec<Vec<(u32, u32)>>,
    /// Each alternation's number in the order of the text, by address.
    alternation_numbers: HashMap<usize, u32>,
    group_depth: usize,
    /// Element windows of the enclosing groups (innermost last).
    group_windows: Vec<Option<DurationMs>>,
    /// Does each enclosing group repeat (innermost last)?
    group_repeats: Vec<bool>,
}

type Res<T> = Result<T, CompileError>;

/// The branches of alternations a state is in, outermost first:
/// (alternation in the order of the text, branch index).
type BranchPath = Vec<(u32, u32)>;

impl<'p, 'c, E> Compiler<'p, 'c, E> {
    /// A compiler over `pattern` with the conditions already compiled.
    pub fn new(
        pattern: &'p Pattern,
        conds: &'c mut Conditions<E>,
        stage_conds: &'c [CondId],
        until_conds: &'c HashMap<usize, CondId>,
    ) -> Res<Self> {
        let seq = &pattern.sequence.elements;
        if seq.is_empty() {
            return Err(CompileError::new("the pattern has no elements"));
        }
        Ok(Compiler {
            pattern,
            conds,
            stage_conds,
            until_conds,
            states: Vec::new(),
            stop_states: HashMap::new(),
            used_names: HashSet::new(),
            next_suffix: HashMap::new(),
            window: pattern.within.filter(|w| *w > 0),
            current: Cursor {
                seq,
                idx: seq.len() - 1,
            },
            following: None,
            current_group: None,
            first_of_loop: HashMap::new(),
            original_state: HashMap::new(),
            trailing_not_copies: HashMap::new(),
            alternation_entries: Vec::new(),
            branch_path: Vec::new(),
            state_branch: Vec::new(),
            alternation_numbers: number_alternations(&pattern.sequence),
            group_depth: 0,
            group_windows: Vec::new(),
            group_repeats: Vec::new(),
        })
    }

    /// Flink's `compileFactory`.
    pub fn compile(mut self) -> Res<Compiled> {
        let last = self.current;
        let end = self.create_named_state("$endState$", None, StateKind::Final, None);
        let sink = self.create_middle_states(end)?;
        let start = self.convert_pattern(sink)?;
        self.states[start.0 as usize].kind = StateKind::Start;
        let element_window = matches!(last.elem().within, Some(w) if w > 0);
        if last.is_not_follow() && !element_window && self.window.is_none() {
            return Err(CompileError::new(
                "`not followed by` can end a pattern only when the pattern has `within`",
            ));
        }
        let start = self.bypass_alternations(start)?;
        check_proceed_paths(&self.states)?;
        Ok(Compiled {
            states: self.states,
            start,
            state_branch: self.state_branch,
        })
    }

    // ----- conditions -------------------------------------------------------

    fn cond(&mut self, node: CondNode) -> Res<CondId> {
        self.conds
            .add(node)
            .ok_or_else(|| CompileError::limit("the pattern nests too deeply to compile"))
    }

    fn not(&mut self, c: CondId) -> Res<CondId> {
        self.cond(CondNode::Not(c))
    }

    fn and(&mut self, a: CondId, b: CondId) -> Res<CondId> {
        self.cond(CondNode::And(a, b))
    }

    fn truth(&mut self) -> Res<CondId> {
        self.cond(CondNode::True)
    }

    /// Flink's `getTrueFunction`: true, or "not the enclosing group's
    /// `until`" inside a group that has one.
    fn true_function(&mut self) -> Res<CondId> {
        match self.group_until() {
            Some(gu) => self.not(gu),
            None => self.truth(),
        }
    }

    /// The raw condition of an element (`true` for groups).
    fn raw_cond(&mut self, at: Cursor<'p>) -> Res<CondId> {
        match at.stage() {
            Some(s) => Ok(self.stage_conds[s.index()]),
            None => self.truth(),
        }
    }

    fn until_of(&self, at: Cursor<'p>) -> Option<CondId> {
        self.until_conds.get(&at.key()).copied()
    }

    fn group_until(&self) -> Option<CondId> {
        self.current_group.and_then(|g| self.until_of(g))
    }

    /// Flink's `extendWithUntilCondition`.
    fn extend_with_until(
        &mut self,
        cond: Option<CondId>,
        until: Option<CondId>,
        is_take: bool,
    ) -> Res<Option<CondId>> {
        match (cond, until) {
            (Some(c), Some(u)) => {
                let nu = self.not(u)?;
                Ok(Some(self.and(nu, c)?))
            }
            (None, Some(u)) if is_take => Ok(Some(self.not(u)?)),
            _ => Ok(cond),
        }
    }

    /// Flink's `getTakeCondition`.
    fn take_cond(&mut self, at: Cursor<'p>) -> Res<CondId> {
        let raw = self.raw_cond(at)?;
        let gu = self.group_until();
        Ok(self.extend_with_until(Some(raw), gu, true)?.unwrap_or(raw))
    }

    fn ignore_for(&mut self, strategy: Consuming, at: Cursor<'p>) -> Res<Option<CondId>> {
        let cond = match strategy {
            Consuming::Strict | Consuming::Not => None,
            Consuming::SkipTillNext => {
                let raw = self.raw_cond(at)?;
                Some(self.not(raw)?)
            }
            Consuming::SkipTillAny => Some(self.truth()?),
        };
        let gu = self.group_until();
        self.extend_with_until(cond, gu, false)
    }

    /// Flink's `getIgnoreCondition` (with the head-of-group rule).
    fn ignore_cond(&mut self, at: Cursor<'p>) -> Res<Option<CondId>> {
        let mut strategy = at.consuming();
        if let Some(group) = self.head_of_group(at) {
            strategy = if self.is_group_first_of_loop(group) {
                group.consuming()
            } else {
                group.inner_consuming()
            };
        }
        self.ignore_for(strategy, at)
    }

    /// Flink's `getInnerIgnoreCondition`.
    fn inner_ignore_cond(&mut self, at: Cursor<'p>) -> Res<Option<CondId>> {
        let strategy = match self.head_of_group(at) {
            Some(group) => group.inner_consuming(),
            None => at.inner_consuming(),
        };
        self.ignore_for(strategy, at)
    }

    /// The enclosing group when `at` is the first element of it.
    fn head_of_group(&self, at: Cursor<'p>) -> Option<Cursor<'p>> {
        self.current_group.filter(|_| at.idx == 0)
    }

    /// Flink's `isHeadOfOptionalGroupPattern`: the head of every iteration
    /// of an optional group skips in a separate ignore state (without the
    /// group's proceed edge), like an optional stage.
    fn is_head_of_optional_group(&self, at: Cursor<'p>) -> bool {
        self.head_of_group(at)
            .is_some_and(|g| self.is_group_first_of_loop(g) && g.optional())
    }

    fn is_group_first_of_loop(&self, group: Cursor<'p>) -> bool {
        self.first_of_loop
            .get(&group.key())
            .copied()
            .unwrap_or(true)
    }

    fn set_first_of_loop(&mut self, value: bool) {
        if self.current.group().is_some() {
            self.first_of_loop.insert(self.current.key(), value);
        }
    }

    // ----- states -----------------------------------------------------------

    /// Flink's `createState(name, type)` with `getUniqueInternalName`: the
    /// base name if unused, else `base:0`, `base:1`, ...
    fn create_named_state(
        &mut self,
        base: &str,
        stage: Option<StageId>,
        kind: StateKind,
        window: Option<DurationMs>,
    ) -> StateId {
        let mut name = base.to_string();
        if self.used_names.contains(&name) {
            let counter = self.next_suffix.entry(base.to_string()).or_insert(0);
            loop {
                name = format!("{base}:{counter}");
                *counter += 1;
                if !self.used_names.contains(&name) {
                    break;
                }
            }
        }
        self.used_names.insert(name.clone());
        self.state_branch.push(self.branch_path.clone());
        self.states.push(State {
            name,
            stage,
            kind,
            transitions: Vec::new(),
            window,
        });
        StateId((self.states.len() - 1) as u32)
    }

    /// Flink's `createState(type, isTake)`: take states carry the element's
    /// PREVIOUS_AND_CURRENT window. Flink registers it only when the element
    /// has no quantifier; here every take state of the element and of the
    /// groups around it carries it (the smallest wins): `docs/semantics.md`.
    fn create_state(&mut self, kind: StateKind, is_take: bool) -> StateId {
        let at = self.current;
        let name = match at.stage() {
            Some(s) => self.pattern.stage(s).name.clone(),
            None => "GroupPattern".to_string(),
        };
        let window = if is_take {
            let inherited = self.group_windows.iter().flatten().copied();
            at.elem()
                .within
                .into_iter()
                .chain(inherited)
                .filter(|w| *w > 0)
                .min()
        } else {
            None
        };
        self.create_named_state(&name, at.stage(), kind, window)
    }

    fn check_size(&self) -> Res<()> {
        if self.states.len() > MAX_STATES {
            return Err(CompileError::limit(format!(
                "the pattern compiles to more than {MAX_STATES} states (quantified groups repeat their contents)"
            )));
        }
        Ok(())
    }

    fn state(&self, id: StateId) -> &State {
        &self.states[id.0 as usize]
    }

    fn add(&mut self, from: StateId, action: Action, target: StateId, cond: CondId) {
        self.states[from.0 as usize].transitions.push(Transition {
            action,
            target,
            cond,
        });
        // A copy that enforces a group's trailing negation stands in for
        // its original, which may get edges after the copy was made: a
        // looping group's iteration-closing dummy gets its edge to the
        // group's head only once the inner states (and so an inner group
        // ending in `not followed by`, whose sink it is) are built. The
        // copy gets each such edge too, else a run in it could never close
        // the iteration (oracle seed 84, case 84-1775).
        if self.trailing_not_copies.is_empty() {
            return;
        }
        let copies: Vec<StateId> = self
            .trailing_not_copies
            .iter()
            .filter(|&(_, &original)| original == from)
            .map(|(&copy, _)| copy)
            .collect();
        for copy in copies {
            let target = if target == from { copy } else { target };
            self.add(copy, action, target, cond);
        }
    }

    /// Flink's `createStopState`: one stop state per `not` stage, with the
    /// condition it was first made with. Inside a branch of an
    /// alternation, the stop states made in other branches are not seen:
    /// each branch pattern makes its own, with the condition its own
    /// context gives (a `not followed by` after the alternation is
    /// checked inside each branch, under that branch's group's `until`;
    /// property test, seed 250).
    fn create_stop_state(&mut self, cond: CondId, stage: StageId) -> StateId {
        let path = &self.branch_path;
        let seen = self.stop_states.get(&stage).and_then(|made| {
            made.iter()
                .find(|(at, _)| path.starts_with(at))
                .map(|(_, s)| *s)
        });
        if let Some(s) = seen {
            return s;
        }
        let name = self.pattern.stage(stage).name.clone();
        let stop = self.create_named_state(&name, Some(stage), StateKind::Stop, None);
        self.add(stop, Action::Take, stop, cond);
        let path = self.branch_path.clone();
        self.stop_states
            .entry(stage)
            .or_default()
            .push((path, stop));
        stop
    }

    /// Flink's `copy`: same transitions, self loops redirected to the copy.
    /// The copy has a name of its own, so (as in Flink, which keys windows
    /// by state name) no element window. An alternation's entry stands for
    /// the first states of its branches (each branch pattern's state
    /// there): its copy leads to copies of them.
    fn copy(&mut self, state: StateId) -> StateId {
        if !self.is_alternation_entry(state) {
            return self.plain_copy(state);
        }
        let copy = self.copy_entry(state);
        for i in 0..self.state(copy).transitions.len() {
            let head = self.states[copy.index()].transitions[i].target;
            let target = self.copy(head);
            self.states[copy.index()].transitions[i].target = target;
        }
        copy
    }

    /// A copy that stands in for `state` where a run would wait in it:
    /// [`Self::plain_copy`] with its element window; of an alternation's
    /// entry, a copy leading to the same branches.
    fn stand_in(&mut self, state: StateId) -> StateId {
        if self.is_alternation_entry(state) {
            return self.copy_entry(state);
        }
        let copy = self.plain_copy(state);
        self.states[copy.index()].window = self.state(state).window;
        copy
    }

    /// [`Self::copy`] of a state that is not an alternation's entry.
    fn plain_copy(&mut self, state: StateId) -> StateId {
        let (base, stage, kind) = {
            let s = self.state(state);
            (base_name(&s.name).to_string(), s.stage, s.kind)
        };
        let copy = self.create_named_state(&base, stage, kind, None);
        self.state_branch[copy.index()] = self.state_branch[state.index()].clone();
        let transitions = self.state(state).transitions.clone();
        for t in transitions {
            let target = if t.target == state { copy } else { t.target };
            self.add(copy, t.action, target, t.cond);
        }
        copy
    }

    // ----- the Flink methods ------------------------------------------------

    /// Flink's `createMiddleStates`: every element but the first of the
    /// current sequence, back to front.
    fn create_middle_states(&mut self, sink: StateId) -> Res<StateId> {
        let mut last_sink = sink;
        while let Some(previous) = self.current.previous() {
            let at = self.current;
            match at.elem().contiguity {
                Contiguity::NotFollowedBy => {
                    let windowed = at.elem().within.is_some_and(|w| w > 0) || self.window.is_some();
                    if windowed && self.state(last_sink).kind == StateKind::Final {
                        let pending = self.create_state(StateKind::Pending, true);
                        let nc = self.take_cond(at)?;
                        let stage = at.stage().ok_or_else(not_on_group)?;
                        let stop = self.create_stop_state(nc, stage);
                        self.add(pending, Action::Proceed, stop, nc);
                        let not_nc = self.not(nc)?;
                        self.add(pending, Action::Ignore, pending, not_nc);
                        last_sink = pending;
                    }
                }
                Contiguity::NotNext => {
                    let not_next = self.create_state(StateKind::Normal, true);
                    let nc = self.take_cond(at)?;
                    let stage = at.stage().ok_or_else(not_on_group)?;
                    let stop = self.create_stop_state(nc, stage);
                    let not_nc = self.not(nc)?;
                    if self.state(last_sink).kind == StateKind::Final {
                        self.add(not_next, Action::Ignore, last_sink, not_nc);
                    } else {
                        self.add(not_next, Action::Proceed, last_sink, not_nc);
                    }
                    self.add(not_next, Action::Proceed, stop, nc);
                    last_sink = not_next;
                }
                _ => last_sink = self.convert_pattern(last_sink)?,
            }
            self.following = Some(at);
            self.current = previous;
        }
        Ok(last_sink)
    }

    /// Flink's `convertPattern`.
    fn convert_pattern(&mut self, sink: StateId) -> Res<StateId> {
        let elem = self.current.elem();
        if let Some(branches) = self.current.alternation() {
            return self.create_alternation_state(branches, sink);
        }
        let last_sink = match elem.quantifier {
            Quantifier::AtLeast(n) => {
                self.set_first_of_loop(false);
                let s = self.copy_without_transitive_nots(sink)?;
                let looping = self.create_looping(s)?;
                self.set_first_of_loop(true);
                self.create_times_state(looping, sink, n, n)?
            }
            // `{0,m}` is Flink's `times(0, m)`: `{1,m}` and optional.
            Quantifier::Times { min, max } => {
                self.create_times_state(sink, sink, min.max(1), max)?
            }
            Quantifier::One => {
                let at = self.current;
                let take = self.take_cond(at)?;
                let ignore = self.ignore_cond(at)?;
                let optional = elem.is_optional();
                self.create_singleton_state(sink, Some(sink), take, ignore, optional)?
            }
        };
        self.add_stop_states(last_sink)?;
        Ok(last_sink)
    }

    /// Flink's `createTimesState`: `from` required copies then `to - from`
    /// optional ones, built back to front.
    fn create_times_state(
        &mut self,
        sink: StateId,
        proceed: StateId,
        from: u32,
        to: u32,
    ) -> Res<StateId> {
        let at = self.current;
        let mut last_sink = sink;
        self.set_first_of_loop(false);
        let until = self.until_of(at);
        let inner = self.inner_ignore_cond(at)?;
        let inner_ignore = self.extend_with_until(inner, until, false)?;
        let raw_take = self.take_cond(at)?;
        let take = self
            .extend_with_until(Some(raw_take), until, true)?
            .unwrap_or(raw_take);
        if at.elem().greedy && from != to {
            if until.is_some() {
                let copy = self.copy(sink);
                self.original_state.insert(sink, copy);
            }
            self.update_with_greedy_condition(sink, take)?;
        }
        for _ in from..to {
            last_sink =
                self.create_singleton_state(last_sink, Some(proceed), take, inner_ignore, true)?;
            self.add_stop_state_to_looping(last_sink)?;
        }
        for _ in 1..from {
            last_sink = self.create_singleton_state(last_sink, None, take, inner_ignore, false)?;
            self.add_stop_state_to_looping(last_sink)?;
        }
        self.set_first_of_loop(true);
        let ignore = self.ignore_cond(at)?;
        let optional = at.optional();
        self.create_singleton_state(last_sink, Some(proceed), take, ignore, optional)
    }

    /// Flink's `createSingletonState`.
    fn create_singleton_state(
        &mut self,
        sink: StateId,
        proceed: Option<StateId>,
        take: CondId,
        ignore: Option<CondId>,
        optional: bool,
    ) -> Res<StateId> {
        let at = self.current;
        self.check_size()?;
        if let Some(group) = at.group() {
            return self.create_group_pattern_state(group, sink, proceed, optional);
        }
        let single = self.create_state(StateKind::Normal, true);
        let sink = self.copy_without_transitive_nots(sink)?;
        self.add(single, Action::Take, sink, take);
        if optional {
            let proceed_cond = self.true_function()?;
            let proceed = proceed.ok_or_else(|| {
                CompileError::new("internal: an optional state without a proceed target")
            })?;
            match self.until_of(at).filter(|_| at.elem().greedy) {
                Some(until) => {
                    // Flink's `originalStateMap`: the unrestricted copy of
                    // the state after a greedy loop, reached on `until`.
                    let original = self.original_state.get(&proceed).copied().ok_or_else(|| {
                        CompileError::new(
                            "`greedy` with `until` here has no state to leave the loop to \
                             (Flink 2.3 adds a move to no state and throws a NullPointerException \
                             when a run that may skip this element meets an event satisfying \
                             `until`; other events run fine)",
                        )
                    })?;
                    let on_until = self.and(proceed_cond, until)?;
                    self.add(single, Action::Proceed, original, on_until);
                    let not_until = self.not(until)?;
                    let otherwise = self.and(proceed_cond, not_until)?;
                    self.add(single, Action::Proceed, proceed, otherwise);
                }
                None => self.add(single, Action::Proceed, proceed, proceed_cond),
            }
        }
        if let Some(ignore) = ignore {
            let ignore_state = if optional || self.is_head_of_optional_group(at) {
                let state = self.create_state(StateKind::Normal, false);
                self.add(state, Action::Take, sink, take);
                self.add(state, Action::Ignore, state, ignore);
                self.add_stop_states(state)?;
                state
            } else {
                single
            };
            self.add(single, Action::Ignore, ignore_state, ignore);
        }
        Ok(single)
    }

    /// Flink's `createLooping`.
    fn create_looping(&mut self, sink: StateId) -> Res<StateId> {
        let at = self.current;
        if let Some(group) = at.group() {
            return self.create_looping_group_pattern_state(group, sink);
        }
        let until = self.until_of(at);
        let inner = self.inner_ignore_cond(at)?;
        let ignore = self.extend_with_until(inner, until, false)?;
        let raw_take = self.take_cond(at)?;
        let take = self
            .extend_with_until(Some(raw_take), until, true)?
            .unwrap_or(raw_take);
        let proceed_cond = self.true_function()?;
        let looping = self.create_state(StateKind::Normal, true);
        if at.elem().greedy {
            if let Some(until) = until {
                let copy = self.copy(sink);
                let on_until = self.and(proceed_cond, until)?;
                self.add(looping, Action::Proceed, copy, on_until);
                self.original_state.insert(sink, copy);
                let not_until = self.not(until)?;
                let otherwise = self.and(proceed_cond, not_until)?;
                self.add(looping, Action::Proceed, sink, otherwise);
            } else {
                self.add(looping, Action::Proceed, sink, proceed_cond);
            }
            // Flink restricts the next state with the loop's own condition
            // *without* `until`.
            self.update_with_greedy_condition(sink, raw_take)?;
        } else {
            self.add(looping, Action::Proceed, sink, proceed_cond);
        }
        self.add(looping, Action::Take, looping, take);
        self.add_stop_state_to_looping(looping)?;
        if let Some(ignore) = ignore {
            let ignore_state = self.create_state(StateKind::Normal, false);
            self.add(ignore_state, Action::Take, looping, take);
            self.add(ignore_state, Action::Ignore, ignore_state, ignore);
            self.add(looping, Action::Ignore, ignore_state, ignore);
            self.add_stop_state_to_looping(ignore_state)?;
        }
        Ok(looping)
    }

    fn enter_group(
        &mut self,
        elements: &'p [Element],
    ) -> Res<(Cursor<'p>, Option<Cursor<'p>>, Option<Cursor<'p>>)> {
        if self.group_depth >= MAX_GROUP_DEPTH {
            return Err(CompileError::limit(format!(
                "groups nest deeper than {MAX_GROUP_DEPTH} levels"
            )));
        }
        self.group_depth += 1;
        self.group_windows.push(self.current.elem().within);
        self.group_repeats.push(self.current.elem().is_repeating());
        let saved = (self.current, self.following, self.current_group);
        self.current_group = Some(self.current);
        self.current = Cursor {
            seq: elements,
            idx: elements.len() - 1,
        };
        Ok(saved)
    }

    fn leave_group(&mut self, saved: (Cursor<'p>, Option<Cursor<'p>>, Option<Cursor<'p>>)) {
        self.group_depth -= 1;
        self.group_windows.pop();
        self.group_repeats.pop();
        (self.current, self.following, self.current_group) = saved;
    }

    /// Flink's `createGroupPatternState`.
    fn create_group_pattern_state(
        &mut self,
        elements: &'p [Element],
        sink: StateId,
        proceed: Option<StateId>,
        optional: bool,
    ) -> Res<StateId> {
        // Computed before entering: the enclosing group's `until`.
        let proceed_cond = self.true_function()?;
        let saved = self.enter_group(elements)?;
        let nots = self.group_trailing_nots(elements)?;
        let inner_sink = self.sink_with_trailing_nots(&nots, sink);
        let last = self.create_middle_states(inner_sink)?;
        let last = self.convert_pattern(last)?;
        if optional {
            let proceed = proceed.ok_or_else(|| {
                CompileError::new("internal: an optional group without a proceed target")
            })?;
            self.add(last, Action::Proceed, proceed, proceed_cond);
        }
        self.leave_group(saved);
        Ok(last)
    }

    /// An alternation (no Flink namesake: Flink has none). Each branch is
    /// compiled exactly as a group of that sequence in the alternation's
    /// place would be (`create_group_pattern_state`, the same sink, the
    /// `not followed by`s before it on each branch's entry); an entry state
    /// then PROCEEDs to every branch's entry, in branch order. So the
    /// states of branch `i` are those of the pattern with the alternation
    /// replaced by a group of branch `i` (the reference of the tests relies
    /// on it). [`Self::bypass_alternations`] then removes the entry state.
    fn create_alternation_state(
        &mut self,
        branches: &'p [crate::pattern::Sequence],
        sink: StateId,
    ) -> Res<StateId> {
        let at = self.current;
        let span = at.elem().span;
        let e = at.elem();
        if e.quantifier != Quantifier::One {
            return Err(CompileError::new(
                "a quantifier on an alternation is not supported (a match would pass it \
                 several times, choosing a branch each time); quantify the elements inside \
                 its branches",
            )
            .at(span));
        }
        let optional = e.optional;
        if self.group_repeats.iter().any(|r| *r) {
            return Err(CompileError::new(
                "an alternation inside a repeated group is not supported (a match would \
                 pass it several times, choosing a branch each time)",
            )
            .at(span));
        }
        if branches.iter().any(|b| b.elements.is_empty()) {
            return Err(CompileError::new("a branch of the alternation has no elements").at(span));
        }
        // (no run waits in the entry: its moves are not Flink's PROCEEDs,
        // which a group's `until` would guard, but the edges into it
        // passed on to every branch)
        let proceed_cond = self.truth()?;
        let number = self
            .alternation_numbers
            .get(&at.key())
            .copied()
            .unwrap_or(u32::MAX);
        let mut entries = Vec::with_capacity(branches.len());
        for (i, branch) in branches.iter().enumerate() {
            self.check_size()?;
            // A greedy element restricts the state after it
            // (`update_with_greedy_condition`): when that is the sink, the
            // branch leaves to a copy of its own, so that the restriction
            // binds the partial matches that leave this branch only, not
            // those of other branches, nor those that skip the
            // alternation or come back to the sink through a loop
            // (`docs/semantics.md`, "Alternation").
            let branch_sink = if has_greedy(&branch.elements) {
                self.stand_in(sink)
            } else {
                sink
            };
            self.branch_path.push((number, i as u32));
            let entry = self.create_group_pattern_state(
                &branch.elements,
                branch_sink,
                optional.then_some(sink),
                optional,
            );
            self.branch_path.pop();
            let entry = entry?;
            // What `convert_pattern` does to a group's entry.
            self.add_stop_states(entry)?;
            entries.push(entry);
        }
        if optional {
            self.skip_once(&entries, sink)?;
        }
        let entry = self.create_named_state(ENTRY, None, StateKind::Normal, None);
        for branch_entry in entries {
            self.add(entry, Action::Proceed, branch_entry, proceed_cond);
        }
        self.alternation_entries.push((entry, span));
        Ok(entry)
    }

    /// An optional alternation compiles each branch as an optional group
    /// (as in its branch pattern), whose first state may skip the group:
    /// the same PROCEED to `sink` in every branch. A partial match enters
    /// every branch at once, so that each of them would skip alike, and
    /// the pattern would report each match that skips the alternation
    /// once per branch; only one branch keeps the way (the one whose first
    /// state has the largest element window, so that it is there as long
    /// as any branch's). The others keep of it only the ways to a `not`
    /// element's stop state ([`Self::stop_shadow`]): as in its branch
    /// pattern, a partial match waiting in a branch's first state ends
    /// when an event would stop it past the skipped alternation (Flink
    /// discards a partial match with all its moves when one of them
    /// reaches a stop state; property test, seed 560).
    fn skip_once(&mut self, heads: &[StateId], sink: StateId) -> Res<()> {
        let keep = heads
            .iter()
            .enumerate()
            .max_by_key(|(i, h)| {
                let w = self.state(**h).window;
                (w.is_none(), w, std::cmp::Reverse(*i))
            })
            .map(|(i, _)| i);
        let shadow = self.stop_shadow(sink, &mut HashMap::new())?;
        for (i, &head) in heads.iter().enumerate() {
            if Some(i) == keep {
                continue;
            }
            // (the last PROCEED to `sink`: the group's, added after the
            // branch's own edges, before its stop edges)
            let transitions = &mut self.states[head.index()].transitions;
            let skip = transitions
                .iter()
                .rposition(|t| t.action == Action::Proceed && t.target == sink)
                .ok_or_else(|| {
                    CompileError::new("internal: an optional branch's first state without its skip")
                })?;
            match shadow {
                Some(shadow) => transitions[skip].target = shadow,
                None => {
                    transitions.remove(skip);
                }
            }
        }
        Ok(())
    }

    /// The PROCEED edges of `state` and the states after it that lead to
    /// a stop state, and no other edge, as states of their own (named
    /// `$skip$`); `None` when no stop state is reached so. Reached in a
    /// decision graph, they take and skip nothing, but an event that
    /// satisfies the `not` element discards the partial match, as the
    /// states they shadow do.
    fn stop_shadow(
        &mut self,
        state: StateId,
        done: &mut HashMap<StateId, Option<StateId>>,
    ) -> Res<Option<StateId>> {
        if let Some(&shadow) = done.get(&state) {
            return Ok(shadow);
        }
        if done.len() > self.states.len() {
            return Err(CompileError::new(
                "the pattern's proceed edges form a cycle",
            ));
        }
        // (a cycle of PROCEEDs is rejected later: none is shadowed)
        done.insert(state, None);
        let mut ways = Vec::new();
        for t in self.state(state).transitions.clone() {
            if t.action != Action::Proceed {
                continue;
            }
            if self.state(t.target).kind == StateKind::Stop {
                ways.push((t.target, t.cond));
            } else if let Some(shadow) = self.stop_shadow(t.target, done)? {
                ways.push((shadow, t.cond));
            }
        }
        if ways.is_empty() {
            return Ok(None);
        }
        let shadow = self.create_named_state("$skip$", None, StateKind::Normal, None);
        self.state_branch[shadow.index()] = self.state_branch[state.index()].clone();
        for (target, cond) in ways {
            self.add(shadow, Action::Proceed, target, cond);
        }
        done.insert(state, Some(shadow));
        Ok(Some(shadow))
    }

    /// Is `state` an alternation's entry (or a copy of one)?
    fn is_alternation_entry(&self, state: StateId) -> bool {
        base_name(&self.state(state).name) == ENTRY
    }

    /// A copy of an alternation's entry: the same PROCEED edges to the
    /// branches, the same place in the text (for errors).
    fn copy_entry(&mut self, entry: StateId) -> StateId {
        let copy = self.plain_copy(entry);
        if let Some(&(_, span)) = self.alternation_entries.iter().find(|(e, _)| *e == entry) {
            self.alternation_entries.push((copy, span));
        }
        copy
    }

    /// No run waits in an alternation's entry state: every edge into it
    /// goes to the branches' entries instead (a TAKE into it becomes one
    /// TAKE per branch, so the run forks as it takes the event before the
    /// alternation). A partial match is then always in one branch, as in
    /// the pattern of that branch alone: it times out once per branch it
    /// waits in. An entry that is the start state stays (the start run
    /// times out never). Only entries whose PROCEED edges always hold can
    /// be bypassed so (a TAKE into the entry is followed by its PROCEED on
    /// the next event); the others are compile errors.
    fn bypass_alternations(&mut self, start: StateId) -> Res<StateId> {
        let mut entries = std::mem::take(&mut self.alternation_entries);
        let mut bypassed = Vec::new();
        // Copies of an entry (`copy_without_transitive_nots` copies the
        // state after an optional element) are entries too.
        for (i, s) in self.states.iter().enumerate() {
            let id = StateId(i as u32);
            if base_name(&s.name) == ENTRY && !entries.iter().any(|(e, _)| *e == id) {
                entries.push((id, Span::default()));
            }
        }
        // Inner alternations were built first: bypass them first, so that
        // an outer entry's targets are already branch states.
        for &(entry, span) in &entries {
            let targets: Vec<Transition> = self.state(entry).transitions.clone();
            self.check_branch_negations(entry, &targets, span)?;
            let all_true = targets.iter().all(|t| {
                t.action == Action::Proceed
                    && matches!(self.conds.nodes[t.cond.0 as usize], CondNode::True)
            });
            let incoming = self
                .states
                .iter()
                .any(|s| s.transitions.iter().any(|t| t.target == entry));
            if !incoming {
                // The start state stays; another is unreachable.
                if entry != start {
                    self.states[entry.index()].transitions.clear();
                    bypassed.push(entry);
                }
                continue;
            }
            if entry == start || !all_true {
                // (no edge leads back to the start without a repeated
                // group, and a greedy element restricts the branches'
                // first states, not the entry)
                return Err(CompileError::new(
                    "internal: an alternation's entry state that cannot be bypassed",
                )
                .at(span));
            }
            for i in 0..self.states.len() {
                if !self.states[i].transitions.iter().any(|t| t.target == entry) {
                    continue;
                }
                let old = std::mem::take(&mut self.states[i].transitions);
                let mut new = Vec::with_capacity(old.len() + targets.len());
                for t in old {
                    if t.target == entry {
                        new.extend(targets.iter().map(|b| Transition {
                            action: t.action,
                            target: b.target,
                            cond: t.cond,
                        }));
                    } else {
                        new.push(t);
                    }
                }
                self.states[i].transitions = new;
            }
            // Unreachable now: no edge of its own either.
            self.states[entry.index()].transitions.clear();
            bypassed.push(entry);
        }
        Ok(self.remove_states(&bypassed, start))
    }

    /// A negation of a branch that the branch can reach before it takes an
    /// event (`a or (b? not next c)`) would, in Flink's NFA, discard the
    /// partial match in *every* branch when it fires: the branches are
    /// entered on the same event, in one decision. Not supported: an
    /// error, rather than matches of the other branches lost
    /// (`docs/semantics.md`, "Alternation").
    fn check_branch_negations(
        &self,
        entry: StateId,
        targets: &[Transition],
        span: Span,
    ) -> Res<()> {
        let depth = self.state_branch[entry.index()].len();
        for head in targets.iter().map(|t| t.target) {
            let Some(&(alt, branch)) = self.state_branch[head.index()].get(depth) else {
                continue;
            };
            let mut seen = vec![false; self.states.len()];
            let mut todo = vec![head];
            while let Some(s) = todo.pop() {
                if std::mem::replace(&mut seen[s.index()], true) {
                    continue;
                }
                let state = self.state(s);
                if state.kind == StateKind::Stop
                    && self.state_branch[s.index()].contains(&(alt, branch))
                {
                    return Err(CompileError::new(format!(
                        "branch {} of this alternation can reach its `not` element before \
                         it takes an event, which is not supported (the negation would end \
                         the partial match in every branch, not in this one only): make an \
                         element before the negation required",
                        branch + 1
                    ))
                    .at(span));
                }
                todo.extend(
                    state
                        .transitions
                        .iter()
                        .filter(|t| t.action == Action::Proceed)
                        .map(|t| t.target),
                );
            }
        }
        Ok(())
    }

    /// Removes `dead` states (no edge leads to them), renumbering the
    /// others in order; returns the start state's new id.
    fn remove_states(&mut self, dead: &[StateId], start: StateId) -> StateId {
        if dead.is_empty() {
            return start;
        }
        let mut new_id = vec![u32::MAX; self.states.len()];
        let mut next = 0u32;
        for (i, id) in new_id.iter_mut().enumerate() {
            if !dead.contains(&StateId(i as u32)) {
                *id = next;
                next += 1;
            }
        }
        let states = std::mem::take(&mut self.states);
        let branches = std::mem::take(&mut self.state_branch);
        for (i, (mut state, branch)) in states.into_iter().zip(branches).enumerate() {
            if new_id[i] == u32::MAX {
                continue;
            }
            for t in &mut state.transitions {
                t.target = StateId(new_id[t.target.index()]);
            }
            self.states.push(state);
            self.state_branch.push(branch);
        }
        StateId(new_id[start.index()])
    }

    /// Flink's `createLoopingGroupPatternState`: a dummy state closes each
    /// iteration and proceeds to the group's head, which may exit.
    fn create_looping_group_pattern_state(
        &mut self,
        elements: &'p [Element],
        sink: StateId,
    ) -> Res<StateId> {
        let proceed_cond = self.true_function()?;
        let dummy = self.create_state(StateKind::Normal, true);
        let saved = self.enter_group(elements)?;
        let nots = self.group_trailing_nots(elements)?;
        self.add_stops(dummy, &nots);
        // Leaving the loop goes through the negations too (a run that
        // waits for the next element after the last iteration).
        let exit = self.sink_with_trailing_nots(&nots, sink);
        let last = self.create_middle_states(dummy)?;
        let last = self.convert_pattern(last)?;
        self.add(last, Action::Proceed, exit, proceed_cond);
        self.add(dummy, Action::Proceed, last, proceed_cond);
        self.leave_group(saved);
        Ok(last)
    }

    /// Flink's `updateWithGreedyCondition`: the state can neither take nor
    /// skip nor proceed on an event the loop would take.
    ///
    /// When `state` is the copy that enforces a group's trailing negation,
    /// the original is restricted too: in Flink that original is the
    /// group's sink itself, and the restriction also binds every other way
    /// into it (e.g. a looping group's next iteration).
    ///
    /// An alternation's entry (after a greedy element) is not restricted
    /// itself (no run waits there): the first state of each branch is,
    /// as in each branch pattern, where the greedy element's sink is the
    /// branch's group. A first state that another entry (a copy made
    /// before, e.g. for `until`) also leads to is copied first, so that
    /// the other entry's way stays unrestricted, as Flink's copy does.
    fn update_with_greedy_condition(&mut self, state: StateId, take: CondId) -> Res<()> {
        if let Some(&original) = self.trailing_not_copies.get(&state) {
            self.update_with_greedy_condition(original, take)?;
        }
        if self.is_alternation_entry(state) {
            let n = self.state(state).transitions.len();
            for i in 0..n {
                let head = self.states[state.index()].transitions[i].target;
                let shared = self.states.iter().enumerate().any(|(j, s)| {
                    j != state.index()
                        && base_name(&s.name) == ENTRY
                        && s.transitions.iter().any(|t| t.target == head)
                });
                let head = if shared {
                    let copy = self.stand_in(head);
                    // A copy of a group's trailing-negation copy stands
                    // for it: restricted, it restricts the original too,
                    // as Flink restricts that sink.
                    if let Some(&original) = self.trailing_not_copies.get(&head) {
                        self.trailing_not_copies.insert(copy, original);
                    }
                    self.states[state.index()].transitions[i].target = copy;
                    copy
                } else {
                    head
                };
                self.update_with_greedy_condition(head, take)?;
            }
            return Ok(());
        }
        let not_take = self.not(take)?;
        let n = self.state(state).transitions.len();
        for i in 0..n {
            let c = self.states[state.0 as usize].transitions[i].cond;
            let updated = self.and(c, not_take)?;
            self.states[state.0 as usize].transitions[i].cond = updated;
        }
        Ok(())
    }

    /// Flink's `getCurrentNotCondition`: the `not followed by` elements
    /// before the current one, looking through optional elements.
    fn current_not_conditions(&mut self) -> Res<Vec<(CondId, StageId)>> {
        let mut nots = Vec::new();
        let mut at = self.current;
        while let Some(previous) = at.previous() {
            at = previous;
            if at.is_not_follow() {
                if let Some(stage) = at.stage() {
                    let c = self.take_cond(at)?;
                    nots.push((c, stage));
                }
                continue;
            }
            if !at.optional() {
                break;
            }
        }
        Ok(nots)
    }

    /// The `not followed by` elements that end a group (the last element
    /// and the negations right before it; optional elements after a
    /// negation are not looked through: there Flink's own stop edges
    /// apply), with their conditions as seen inside the group. Called
    /// inside the group.
    fn group_trailing_nots(&mut self, elements: &'p [Element]) -> Res<Vec<(CondId, StageId)>> {
        let mut nots = Vec::new();
        if elements.len() < 2 {
            return Ok(nots);
        }
        for idx in (1..elements.len()).rev() {
            let at = Cursor { seq: elements, idx };
            if !at.is_not_follow() {
                break;
            }
            if let Some(stage) = at.stage() {
                let cond = self.take_cond(at)?;
                nots.push((cond, stage));
            }
        }
        Ok(nots)
    }

    /// Our fix of FLINK-15980: a group ending with `not followed by` gets,
    /// as the target of its last take, a copy of `sink` with the stop edges
    /// of those negations (the edges Flink adds to the element after a
    /// `not followed by`). Skipping an optional group goes to `sink` itself,
    /// so the negation binds only when the group matched. Before the final
    /// state the negations become a pending state instead, as in Flink.
    ///
    /// When `sink` is an alternation's entry, the negations bind on each
    /// branch's first state, as in each branch pattern (where the group's
    /// sink is the branch's group): a copy of the entry leads to copies of
    /// them, with the stop edges.
    fn sink_with_trailing_nots(&mut self, nots: &[(CondId, StageId)], sink: StateId) -> StateId {
        if nots.is_empty() || self.state(sink).kind == StateKind::Final {
            return sink;
        }
        if self.is_alternation_entry(sink) {
            let copy = self.copy_entry(sink);
            let n = self.state(copy).transitions.len();
            for i in 0..n {
                let head = self.states[copy.index()].transitions[i].target;
                let target = self.sink_with_trailing_nots(nots, head);
                self.states[copy.index()].transitions[i].target = target;
            }
            return copy;
        }
        // The copy stands in for `sink` (Flink's run would wait there), so
        // it keeps `sink`'s element window, unlike Flink's own copies.
        let copy = self.stand_in(sink);
        self.trailing_not_copies.insert(copy, sink);
        self.add_stops(copy, nots);
        copy
    }

    /// PROCEED edges from `state` to the stop states of `nots`.
    fn add_stops(&mut self, state: StateId, nots: &[(CondId, StageId)]) {
        for &(cond, stage) in nots {
            let stop = self.create_stop_state(cond, stage);
            self.add(state, Action::Proceed, stop, cond);
        }
    }

    /// Flink's `addStopStates`.
    fn add_stop_states(&mut self, state: StateId) -> Res<()> {
        let nots = self.current_not_conditions()?;
        self.add_stops(state, &nots);
        Ok(())
    }

    /// Flink's `addStopStateToLooping`: a `not followed by` right after a
    /// repeating element is also checked between its events.
    fn add_stop_state_to_looping(&mut self, state: StateId) -> Res<()> {
        if let Some(following) = self.following.filter(|f| f.is_not_follow()) {
            if let Some(stage) = following.stage() {
                let cond = self.take_cond(following)?;
                let stop = self.create_stop_state(cond, stage);
                self.add(state, Action::Proceed, stop, cond);
            }
        }
        Ok(())
    }

    /// Flink's `copyWithoutTransitiveNots`: taking an event of an optional
    /// element discards the `not followed by`s before it.
    fn copy_without_transitive_nots(&mut self, sink: StateId) -> Res<StateId> {
        let nots = self.current_not_conditions()?;
        if nots.is_empty() || !self.current.optional() {
            return Ok(sink);
        }
        self.copy_without(sink, &nots, 0)
    }

    fn copy_without(
        &mut self,
        sink: StateId,
        nots: &[(CondId, StageId)],
        depth: usize,
    ) -> Res<StateId> {
        if depth > self.states.len() {
            return Err(CompileError::new(
                "the pattern's proceed edges form a cycle",
            ));
        }
        // A name of its own (Flink passes the full internal name as the
        // base), so no element window.
        let (base, stage, kind) = {
            let s = self.state(sink);
            (s.name.clone(), s.stage, s.kind)
        };
        let copy = self.create_named_state(&base, stage, kind, None);
        self.state_branch[copy.index()] = self.state_branch[sink.index()].clone();
        let transitions = self.state(sink).transitions.clone();
        for t in transitions {
            if t.action == Action::Proceed {
                let target = self.state(t.target);
                if target.kind == StateKind::Stop {
                    if nots.iter().any(|(_, s)| Some(*s) == target.stage) {
                        continue;
                    }
                    self.add(copy, t.action, t.target, t.cond);
                } else {
                    let target = self.copy_without(t.target, nots, depth + 1)?;
                    self.add(copy, t.action, target, t.cond);
                }
            } else {
                let target = if t.target == sink { copy } else { t.target };
                self.add(copy, t.action, target, t.cond);
            }
        }
        Ok(copy)
    }
}

/// Does any element of `elements` (at any depth) have `greedy`?
fn has_greedy(elements: &[Element]) -> bool {
    let mut stack: Vec<&[Element]> = vec![elements];
    while let Some(els) = stack.pop() {
        for e in els {
            if e.greedy {
                return true;
            }
            match &e.kind {
                ElementKind::Stage(_) => {}
                ElementKind::Group(inner) => stack.push(&inner.elements),
                ElementKind::Alternation(bs) => stack.extend(bs.iter().map(|b| &b.elements[..])),
            }
        }
    }
    false
}

/// Numbers the alternations of `seq` in the order of the text (an
/// alternation before the ones inside its branches), by address, as
/// `cepheid_core::pattern::branch_keys` orders them.
fn number_alternations(seq: &crate::pattern::Sequence) -> HashMap<usize, u32> {
    fn walk(seq: &crate::pattern::Sequence, out: &mut HashMap<usize, u32>, depth: usize) {
        if depth > MAX_GROUP_DEPTH * 2 {
            return;
        }
        for e in &seq.elements {
            match &e.kind {
                ElementKind::Stage(_) => {}
                ElementKind::Group(inner) => walk(inner, out, depth + 1),
                ElementKind::Alternation(branches) => {
                    let n = out.len() as u32;
                    out.insert(e as *const Element as usize, n);
                    for b in branches {
                        walk(b, out, depth + 1);
                    }
                }
            }
        }
    }
    let mut out = HashMap::new();
    walk(seq, &mut out, 0);
    out
}

/// Rejects automata whose PROCEED edges form a cycle (Flink's decision
/// graph walk would never end) or give some state more than
/// [`MAX_PROCEED_PATHS`] paths (counted as `1 + the paths of each PROCEED
/// target`, conditions ignored).
fn check_proceed_paths(states: &[State]) -> Res<()> {
    const UNSEEN: u64 = u64::MAX;
    const ON_STACK: u64 = u64::MAX - 1;
    let mut paths = vec![UNSEEN; states.len()];
    // Iterative post-order DFS: (state, next transition index).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..states.len() {
        if paths[root] != UNSEEN {
            continue;
        }
        paths[root] = ON_STACK;
        stack.push((root, 0));
        while let Some(&mut (state, ref mut next)) = stack.last_mut() {
            let transitions = &states[state].transitions;
            let edge = transitions[*next..]
                .iter()
                .position(|t| t.action == Action::Proceed)
                .map(|i| *next + i);
            match edge {
                Some(i) => {
                    *next = i + 1;
                    let target = transitions[i].target.index();
                    match paths[target] {
                        ON_STACK => {
                            return Err(CompileError::new(format!(
                                "the pattern's automaton has a cycle of moves that take no event \
                                 (through state `{}`): an element that can be skipped repeats \
                                 without taking anything (Flink 2.3 never finishes the first event \
                                 a run processes there)",
                                states[target].name
                            )))
                        }
                        UNSEEN => {
                            paths[target] = ON_STACK;
                            stack.push((target, 0));
                        }
                        _ => {}
                    }
                }
                None => {
                    stack.pop();
                    let mut n: u64 = 1;
                    for t in transitions.iter().filter(|t| t.action == Action::Proceed) {
                        n = n.saturating_add(paths[t.target.index()]);
                    }
                    if n > MAX_PROCEED_PATHS {
                        return Err(CompileError::limit(format!(
                            "the pattern is too ambiguous to match efficiently: from state `{}` \
                             an event can be routed {} ways or more through elements that take \
                             nothing (at most {MAX_PROCEED_PATHS}); use fewer optional groups in a row or nested",
                            states[state].name,
                            MAX_PROCEED_PATHS + 1
                        )));
                    }
                    paths[state] = n;
                }
            }
        }
    }
    Ok(())
}

fn not_on_group() -> CompileError {
    CompileError::new("a `not` element must be a single stage, not a group")
}

/// A state name without its `:N` suffix.
pub fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}
