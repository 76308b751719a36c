//! Flink 2.3's `NFACompiler.NFAFactoryCompiler`, method by method (same
//! names, same order of state creation, so state names and the order of
//! edges come out as Flink's), over the IR seen as Flink `Pattern`s
//! ([`super::pattern`]), plus cepheid's deviations D1-D3 and D5 (see
//! `crates/engine/tests/it/reference/mod.rs`). The state side is here; the condition side
//! (take / ignore / proceed conditions, greedy restrictions) in
//! [`conditions`].

use std::collections::{HashMap, HashSet};

use cepheid_core::pattern::{Element, Pattern, SkipStrategy};

mod conditions;

use super::graph::{Action, CondId, CondNode, Graph, State, StateIdx, StateType, Transition};
use super::pattern::{Consuming, Pat};
use super::Deviations;

/// Compiles `pattern` as Flink would (with the deviations `dev` asks for),
/// or says why it is rejected (a Flink `MalformedPatternException`, a Java
/// exception Flink's compiler would throw, or D5).
pub fn compile(pattern: &Pattern, dev: Deviations) -> Result<Graph<'_>, String> {
    let last = Pat::last_of(&pattern.sequence.elements);
    let mut c = Compiler {
        pattern,
        dev,
        used_names: HashSet::new(),
        stop_states: HashMap::new(),
        states: Vec::new(),
        conds: Vec::new(),
        pages: Vec::new(),
        window_time: None,
        current_group: None,
        first_of_loop: HashMap::new(),
        current: last,
        following: None,
        original_state_map: HashMap::new(),
        group_windows: Vec::new(),
        trailing_not_copies: HashMap::new(),
        depth: 0,
    };
    c.compile_factory()?;
    let graph = Graph {
        states: c.states,
        conds: c.conds,
        window_time: c.window_time.unwrap_or(0),
        pages: c.pages,
    };
    if dev.compile_errors {
        graph.check_null_targets()?;
    }
    graph.check_proceed_paths(dev.compile_errors)?;
    Ok(graph)
}

/// Deepest recursion of `copyWithoutTransitiveNots` before the PROCEED
/// edges are taken to form a cycle (Flink overflows its stack there).
const MAX_COPY_DEPTH: usize = 10_000;

struct Compiler<'p> {
    pattern: &'p Pattern,
    dev: Deviations,
    used_names: HashSet<String>,
    stop_states: HashMap<String, StateIdx>,
    states: Vec<State>,
    conds: Vec<CondNode<'p>>,
    pages: Vec<String>,
    window_time: Option<i64>,
    current_group: Option<Pat<'p>>,
    first_of_loop: HashMap<*const Element, bool>,
    current: Pat<'p>,
    following: Option<Pat<'p>>,
    original_state_map: HashMap<String, StateIdx>,
    /// D2: the `within` of every group being compiled, outermost first.
    group_windows: Vec<Option<i64>>,
    /// D1: the copies that enforce a group's trailing negations, to the
    /// states they stand in for.
    trailing_not_copies: HashMap<StateIdx, StateIdx>,
    depth: usize,
}

type Res<T> = Result<T, String>;

impl<'p> Compiler<'p> {
    fn compile_factory(&mut self) -> Res<()> {
        let last = self.current;
        self.check_pattern_name_uniqueness()?;
        self.check_pattern_skip_strategy()?;
        let sink = self.create_ending_state();
        let sink = self.create_middle_states(sink)?;
        self.create_start_state(sink)?;
        self.check_pattern_window_times()?;
        if last.consuming() == Consuming::NotFollow
            && self
                .states
                .iter()
                .find(|s| s.name == last.name(self.pattern))
                .and_then(|s| s.window)
                .map_or(true, |w| w <= 0)
            && self.window_time() == 0
        {
            return Err(
                "MalformedPatternException: NotFollowedBy is not supported without \
                        windowTime as a last part of a Pattern!"
                    .into(),
            );
        }
        Ok(())
    }

    fn window_time(&self) -> i64 {
        self.window_time.unwrap_or(0)
    }

    fn check_pattern_window_times(&self) -> Res<()> {
        if let Some(w) = self.window_time {
            if self.states.iter().any(|s| s.window.is_some_and(|t| t > w)) {
                return Err("MalformedPatternException: The window length between the \
                            previous and current event cannot be larger than the window \
                            length between the first and last event for a Pattern."
                    .into());
            }
        }
        Ok(())
    }

    fn check_pattern_skip_strategy(&self) -> Res<()> {
        let target = match self.pattern.skip {
            SkipStrategy::ToFirst(s) | SkipStrategy::ToLast(s) => &self.pattern.stage(s).name,
            _ => return Ok(()),
        };
        let mut p = self.current;
        while let Some(prev) = p.previous() {
            if p.name(self.pattern) == target {
                break;
            }
            p = prev;
        }
        if p.name(self.pattern) != target {
            return Err("MalformedPatternException: The pattern name specified in \
                        AfterMatchSkipStrategy can not be found in the given Pattern"
                .into());
        }
        Ok(())
    }

    fn check_pattern_name_uniqueness(&mut self) -> Res<()> {
        let mut seen: HashSet<&str> = HashSet::from(["$endState$"]);
        let mut stack: Vec<&[Element]> = vec![&self.pattern.sequence.elements];
        while let Some(seq) = stack.pop() {
            for i in (0..seq.len()).rev() {
                let p = Pat::last_of(&seq[..=i]);
                match p.group() {
                    Some(inner) => stack.push(inner),
                    None => {
                        if !seen.insert(p.name(self.pattern)) {
                            return Err(format!(
                                "MalformedPatternException: Duplicate pattern name: {}",
                                p.name(self.pattern)
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------- states

    fn create_state_named(&mut self, name: &str, kind: StateType) -> StateIdx {
        let mut candidate = name.to_string();
        let mut counter = 0;
        while self.used_names.contains(&candidate) {
            candidate = format!("{name}:{counter}");
            counter += 1;
        }
        self.used_names.insert(candidate.clone());
        let original = candidate.split(':').next().unwrap_or("").to_string();
        let page = match self.pages.iter().position(|p| *p == original) {
            Some(i) => i,
            None => {
                self.pages.push(original);
                self.pages.len() - 1
            }
        };
        self.states.push(State {
            name: candidate,
            page,
            kind,
            transitions: Vec::new(),
            window: None,
        });
        self.states.len() - 1
    }

    /// `createState(stateType, isTake)`. Flink registers the element's
    /// window for a take state of an element without quantifier (the
    /// `times` window of `times(n, window)` does not exist in the IR). D2/D3:
    /// a take state registers the smallest of its element's window and the
    /// windows of the groups around it, whatever the quantifier.
    fn create_state(&mut self, kind: StateType, is_take: bool) -> StateIdx {
        let name = self.current.name(self.pattern);
        let state = self.create_state_named(name, kind);
        if is_take && self.dev.element_windows {
            let windows = self.group_windows.iter().copied();
            let own = std::iter::once(self.current.window());
            self.states[state].window = own.chain(windows).flatten().min();
        } else if is_take && self.current.times().is_none() {
            self.states[state].window = self.current.window();
        }
        state
    }

    fn add(&mut self, from: StateIdx, action: Action, to: Option<StateIdx>, cond: CondId) {
        self.states[from].transitions.push(Transition {
            action,
            source: from,
            target: to,
            cond,
        });
        // D1: a copy stands in for its sink, also for the edges the sink
        // gets after the copy was made (a looping group's dummy gets its
        // PROCEED to the group's head once the inner states are built).
        let copies: Vec<StateIdx> = self
            .trailing_not_copies
            .iter()
            .filter(|&(_, &original)| original == from)
            .map(|(&copy, _)| copy)
            .collect();
        for copy in copies {
            let to = if to == Some(from) { Some(copy) } else { to };
            self.add(copy, action, to, cond);
        }
    }

    fn add_take(&mut self, from: StateIdx, to: StateIdx, cond: CondId) {
        self.add(from, Action::Take, Some(to), cond);
    }

    fn add_ignore(&mut self, from: StateIdx, to: StateIdx, cond: CondId) {
        self.add(from, Action::Ignore, Some(to), cond);
    }

    fn add_proceed(&mut self, from: StateIdx, to: StateIdx, cond: CondId) {
        self.add(from, Action::Proceed, Some(to), cond);
    }

    fn is_final(&self, s: StateIdx) -> bool {
        self.states[s].kind == StateType::Final
    }

    fn create_ending_state(&mut self) -> StateIdx {
        let end = self.create_state_named("$endState$", StateType::Final);
        self.window_time = self.pattern.within;
        end
    }

    fn create_stop_state(&mut self, cond: CondId, name: &str) -> StateIdx {
        if let Some(s) = self.stop_states.get(name) {
            return *s;
        }
        let stop = self.create_state_named(name, StateType::Stop);
        self.add_take(stop, stop, cond);
        self.stop_states.insert(name.to_string(), stop);
        stop
    }

    fn create_middle_states(&mut self, sink: StateIdx) -> Res<StateIdx> {
        let mut last_sink = sink;
        while let Some(previous) = self.current.previous() {
            let current = self.current;
            match current.consuming() {
                Consuming::NotFollow => {
                    if (current.window().is_some() || self.window_time() > 0)
                        && self.is_final(last_sink)
                    {
                        let not_follow = self.create_state(StateType::Pending, true);
                        let not_cond = self.get_take_condition(current);
                        let stop = self.create_stop_state(not_cond, current.name(self.pattern));
                        self.add_proceed(not_follow, stop, not_cond);
                        let ignore = self.not(not_cond);
                        self.add_ignore(not_follow, not_follow, ignore);
                        last_sink = not_follow;
                    }
                }
                Consuming::NotNext => {
                    let not_next = self.create_state(StateType::Normal, true);
                    let not_cond = self.get_take_condition(current);
                    let stop = self.create_stop_state(not_cond, current.name(self.pattern));
                    let pass = self.not(not_cond);
                    if self.is_final(last_sink) {
                        self.add_ignore(not_next, last_sink, pass);
                    } else {
                        self.add_proceed(not_next, last_sink, pass);
                    }
                    self.add_proceed(not_next, stop, not_cond);
                    last_sink = not_next;
                }
                _ => last_sink = self.convert_pattern(last_sink)?,
            }
            self.following = Some(current);
            self.current = previous;
        }
        Ok(last_sink)
    }

    fn create_start_state(&mut self, sink: StateIdx) -> Res<()> {
        let start = self.convert_pattern(sink)?;
        self.states[start].kind = StateType::Start;
        Ok(())
    }

    fn convert_pattern(&mut self, sink: StateIdx) -> Res<StateIdx> {
        let times = self.current.times();
        let last_sink = if self.current.is_looping() {
            self.set_current_group_pattern_first_of_loop(false);
            let sink_copy = self.copy_without_transitive_nots(sink)?;
            let looping = self.create_looping(sink_copy)?;
            self.set_current_group_pattern_first_of_loop(true);
            self.create_times_state(looping, sink, times.expect("looping has times"))?
        } else if self.current.is_times() {
            self.create_times_state(sink, sink, times.expect("times"))?
        } else {
            self.create_singleton_state_of(sink)?
        };
        self.add_stop_states(last_sink);
        Ok(last_sink)
    }

    /// `getCurrentNotCondition`: the `not followed by`s before the current
    /// element, looking back through optional elements and other ones.
    fn get_current_not_condition(&mut self) -> Vec<(CondId, &'p str)> {
        let mut nots = Vec::new();
        let mut p = self.current;
        while let Some(prev) = p
            .previous()
            .filter(|q| q.is_optional() || q.consuming() == Consuming::NotFollow)
        {
            p = prev;
            if p.consuming() == Consuming::NotFollow {
                let cond = self.get_take_condition(p);
                nots.push((cond, p.name(self.pattern)));
            }
        }
        nots
    }

    fn copy_without_transitive_nots(&mut self, sink: StateIdx) -> Res<StateIdx> {
        let nots = self.get_current_not_condition();
        if nots.is_empty() || !self.current.is_optional() {
            return Ok(sink);
        }
        self.depth += 1;
        if self.depth > MAX_COPY_DEPTH {
            return Err(
                "StackOverflowError: copyWithoutTransitiveNots (a cycle of proceed \
                        edges)"
                    .into(),
            );
        }
        let name = self.states[sink].name.clone();
        let copy = self.create_state_named(&name, self.states[sink].kind);
        for t in self.states[sink].transitions.clone() {
            if t.action == Action::Proceed {
                let Some(mut target) = t.target else {
                    return Err("NullPointerException: copyWithoutTransitiveNots".into());
                };
                if self.states[target].kind == StateType::Stop {
                    if nots.iter().any(|(_, n)| self.states[target].name == *n) {
                        continue;
                    }
                } else {
                    target = self.copy_without_transitive_nots(target)?;
                }
                self.add(copy, t.action, Some(target), t.cond);
            } else {
                let target = if t.target == Some(t.source) {
                    Some(copy)
                } else {
                    t.target
                };
                self.add(copy, t.action, target, t.cond);
            }
        }
        self.depth -= 1;
        Ok(copy)
    }

    fn copy(&mut self, state: StateIdx) -> StateIdx {
        let original = self.states[state]
            .name
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        let copy = self.create_state_named(&original, self.states[state].kind);
        for t in self.states[state].transitions.clone() {
            let target = if t.target == Some(t.source) {
                Some(copy)
            } else {
                t.target
            };
            self.add(copy, t.action, target, t.cond);
        }
        copy
    }

    fn add_stop_states(&mut self, state: StateIdx) {
        for (cond, name) in self.get_current_not_condition() {
            let stop = self.create_stop_state(cond, name);
            self.add_proceed(state, stop, cond);
        }
    }

    fn add_stop_state_to_looping(&mut self, state: StateIdx) {
        if let Some(following) = self
            .following
            .filter(|f| f.consuming() == Consuming::NotFollow)
        {
            let cond = self.get_take_condition(following);
            let stop = self.create_stop_state(cond, following.name(self.pattern));
            self.add_proceed(state, stop, cond);
        }
    }

    fn create_times_state(
        &mut self,
        sink: StateIdx,
        proceed: StateIdx,
        (from, to): (u32, u32),
    ) -> Res<StateIdx> {
        let current = self.current;
        let mut last_sink = sink;
        self.set_current_group_pattern_first_of_loop(false);
        let until = current.until().map(|u| self.leaf(u));
        let inner = self.get_inner_ignore_condition(current);
        let inner_ignore = self.extend_with_until_condition(inner, until, false);
        let take = self.get_take_condition(current);
        let take = self
            .extend_with_until_condition(Some(take), until, true)
            .expect("a take condition");
        if current.is_greedy() && from != to {
            if until.is_some() {
                let copy = self.copy(sink);
                let name = self.states[sink].name.clone();
                self.original_state_map.insert(name, copy);
            }
            self.update_with_greedy_condition(sink, take);
        }
        for _ in from..to {
            last_sink =
                self.create_singleton_state(last_sink, Some(proceed), take, inner_ignore, true)?;
            self.add_stop_state_to_looping(last_sink);
        }
        for _ in 1..from {
            last_sink = self.create_singleton_state(last_sink, None, take, inner_ignore, false)?;
            self.add_stop_state_to_looping(last_sink);
        }
        self.set_current_group_pattern_first_of_loop(true);
        let ignore = self.get_ignore_condition(current);
        let optional = current.is_optional();
        self.create_singleton_state(last_sink, Some(proceed), take, ignore, optional)
    }

    fn set_current_group_pattern_first_of_loop(&mut self, first: bool) {
        if self.current.group().is_some() {
            self.first_of_loop.insert(self.current.key(), first);
        }
    }

    fn is_current_group_pattern_first_of_loop(&self) -> bool {
        match self.current_group {
            None => true,
            Some(g) => self.first_of_loop.get(&g.key()).copied().unwrap_or(true),
        }
    }

    fn head_of_group(&self, p: Pat<'p>) -> bool {
        self.current_group.is_some() && p.previous().is_none()
    }

    fn is_head_of_optional_group_pattern(&self, p: Pat<'p>) -> bool {
        self.head_of_group(p)
            && self.is_current_group_pattern_first_of_loop()
            && self.current_group.is_some_and(|g| g.is_optional())
    }

    /// `createSingletonState(sinkState)`.
    fn create_singleton_state_of(&mut self, sink: StateIdx) -> Res<StateIdx> {
        let current = self.current;
        let take = self.get_take_condition(current);
        let ignore = self.get_ignore_condition(current);
        let optional = current.is_optional();
        self.create_singleton_state(sink, Some(sink), take, ignore, optional)
    }

    fn create_singleton_state(
        &mut self,
        sink: StateIdx,
        proceed: Option<StateIdx>,
        take: CondId,
        ignore: Option<CondId>,
        optional: bool,
    ) -> Res<StateIdx> {
        let current = self.current;
        if let Some(group) = current.group() {
            return self.create_group_pattern_state(current, group, sink, proceed, optional);
        }
        let singleton = self.create_state(StateType::Normal, true);
        let sink = self.copy_without_transitive_nots(sink)?;
        self.add_take(singleton, sink, take);
        let proceed_cond = self.get_true_function();
        if optional {
            let proceed = proceed.expect("an optional state has a proceed target");
            match current.until().filter(|_| current.is_greedy()) {
                Some(until) if current.is_greedy() => {
                    let until = self.leaf(until);
                    let name = &self.states[proceed].name;
                    let original = self.original_state_map.get(name).copied();
                    let when = self.and(proceed_cond, until);
                    self.add(singleton, Action::Proceed, original, when);
                    let not_until = self.not(until);
                    let otherwise = self.and(proceed_cond, not_until);
                    self.add_proceed(singleton, proceed, otherwise);
                }
                _ => self.add_proceed(singleton, proceed, proceed_cond),
            }
        }
        if let Some(ignore) = ignore {
            let ignore_state = if optional || self.is_head_of_optional_group_pattern(current) {
                let state = self.create_state(StateType::Normal, false);
                self.add_take(state, sink, take);
                self.add_ignore(state, state, ignore);
                self.add_stop_states(state);
                state
            } else {
                singleton
            };
            self.add_ignore(singleton, ignore_state, ignore);
        }
        Ok(singleton)
    }

    /// D1: the `not followed by` elements that literally end a group of at
    /// least two elements, last first.
    fn trailing_nots(&self, group: &'p [Element]) -> Vec<Pat<'p>> {
        let mut nots = Vec::new();
        if group.len() < 2 || !self.dev.group_negations {
            return nots;
        }
        for i in (0..group.len()).rev() {
            let p = Pat::last_of(&group[..=i]);
            if p.consuming() != Consuming::NotFollow {
                break;
            }
            nots.push(p);
        }
        nots
    }

    /// D1: PROCEED edges from `state` to the stop states of the group's
    /// trailing `not followed by`s (conditions as seen inside the group).
    fn add_trailing_stops(&mut self, state: StateIdx, nots: &[Pat<'p>]) {
        for not in nots {
            let cond = self.get_take_condition(*not);
            let stop = self.create_stop_state(cond, not.name(self.pattern));
            self.add_proceed(state, stop, cond);
        }
    }

    /// D1: where the group's last take (or a looping group's exit) leads:
    /// `sink`, or, when the group ends with negations and `sink` is not
    /// final, a copy of it with their stop edges. The copy stands in for
    /// `sink`: it keeps its element window.
    fn sink_with_trailing_stops(&mut self, group: &'p [Element], sink: StateIdx) -> StateIdx {
        let nots = self.trailing_nots(group);
        if nots.is_empty() || self.is_final(sink) {
            return sink;
        }
        let copy = self.copy(sink);
        self.states[copy].window = self.states[sink].window;
        self.trailing_not_copies.insert(copy, sink);
        self.add_trailing_stops(copy, &nots);
        copy
    }

    fn enter_group(&mut self, group_pattern: Pat<'p>, group: &'p [Element]) {
        self.current_group = Some(group_pattern);
        self.current = Pat::last_of(group);
        self.group_windows.push(group_pattern.window());
    }

    fn create_group_pattern_state(
        &mut self,
        group_pattern: Pat<'p>,
        group: &'p [Element],
        sink: StateIdx,
        proceed: Option<StateIdx>,
        optional: bool,
    ) -> Res<StateIdx> {
        let proceed_cond = self.get_true_function();
        // cepheid's alternation: a branch's group with a greedy element
        // leaves to a copy of its own of the state after it.
        let sink = if group_pattern.el().span == crate::reference::BRANCH_GROUP && has_greedy(group)
        {
            let copy = self.copy(sink);
            self.states[copy].window = self.states[sink].window;
            copy
        } else {
            sink
        };
        let saved = (self.current, self.following, self.current_group);
        self.enter_group(group_pattern, group);
        let last_sink = self.sink_with_trailing_stops(group, sink);
        let mut last_sink = self.create_middle_states(last_sink)?;
        last_sink = self.convert_pattern(last_sink)?;
        if optional {
            let proceed = proceed.expect("an optional group has a proceed target");
            self.add_proceed(last_sink, proceed, proceed_cond);
        }
        (self.current, self.following, self.current_group) = saved;
        self.group_windows.pop();
        Ok(last_sink)
    }

    fn create_looping_group_pattern_state(
        &mut self,
        group_pattern: Pat<'p>,
        group: &'p [Element],
        sink: StateIdx,
    ) -> Res<StateIdx> {
        let proceed_cond = self.get_true_function();
        let saved = (self.current, self.following, self.current_group);
        let dummy = self.create_state(StateType::Normal, true);
        self.enter_group(group_pattern, group);
        self.add_trailing_stops(dummy, &self.trailing_nots(group));
        // D1: leaving the loop goes through the negations too.
        let exit = self.sink_with_trailing_stops(group, sink);
        let mut last_sink = self.create_middle_states(dummy)?;
        last_sink = self.convert_pattern(last_sink)?;
        self.add_proceed(last_sink, exit, proceed_cond);
        self.add_proceed(dummy, last_sink, proceed_cond);
        (self.current, self.following, self.current_group) = saved;
        self.group_windows.pop();
        Ok(last_sink)
    }

    fn create_looping(&mut self, sink: StateIdx) -> Res<StateIdx> {
        let current = self.current;
        if let Some(group) = current.group() {
            return self.create_looping_group_pattern_state(current, group, sink);
        }
        let until = current.until().map(|u| self.leaf(u));
        let inner = self.get_inner_ignore_condition(current);
        let ignore = self.extend_with_until_condition(inner, until, false);
        let take = self.get_take_condition(current);
        let take = self
            .extend_with_until_condition(Some(take), until, true)
            .expect("a take condition");
        let proceed_cond = self.get_true_function();
        let looping = self.create_state(StateType::Normal, true);
        if current.is_greedy() {
            if let Some(until) = until {
                let copy = self.copy(sink);
                let when = self.and(proceed_cond, until);
                self.add_proceed(looping, copy, when);
                let name = self.states[sink].name.clone();
                self.original_state_map.insert(name, copy);
            }
            let cond = match until {
                Some(until) => {
                    let not_until = self.not(until);
                    self.and(proceed_cond, not_until)
                }
                None => proceed_cond,
            };
            self.add_proceed(looping, sink, cond);
            let plain_take = self.get_take_condition(current);
            self.update_with_greedy_condition(sink, plain_take);
        } else {
            self.add_proceed(looping, sink, proceed_cond);
        }
        self.add_take(looping, looping, take);
        self.add_stop_state_to_looping(looping);
        if let Some(ignore) = ignore {
            let ignore_state = self.create_state(StateType::Normal, false);
            self.add_take(ignore_state, looping, take);
            self.add_ignore(ignore_state, ignore_state, ignore);
            self.add_ignore(looping, ignore_state, ignore);
            self.add_stop_state_to_looping(ignore_state);
        }
        Ok(looping)
    }
}

/// Does any element of `elements` (at any depth) have `greedy`?
fn has_greedy(elements: &[Element]) -> bool {
    elements.iter().any(|e| {
        e.greedy
            || match &e.kind {
                cepheid_core::pattern::ElementKind::Group(inner) => has_greedy(&inner.elements),
                _ => false,
            }
    })
}
