//! The condition side of Flink's `NFAFactoryCompiler`: `getTakeCondition`,
//! `getIgnoreCondition`, `getInnerIgnoreCondition`, `getTrueFunction`,
//! `extendWithUntilCondition` (all aware of the enclosing group's `until`)
//! and `updateWithGreedyCondition`, building Flink's condition objects as
//! nodes of the graph's condition arena.

use cepheid_core::pattern::Condition;

use super::super::graph::{is_iterative, CondId, CondNode, StateIdx};
use super::super::pattern::{Consuming, Pat};
use super::Compiler;

impl<'p> Compiler<'p> {
    pub(super) fn cond(&mut self, node: CondNode<'p>) -> CondId {
        self.conds.push(node);
        self.conds.len() - 1
    }

    pub(super) fn leaf(&mut self, cond: &'p Condition) -> CondId {
        let iterative = is_iterative(cond);
        self.cond(CondNode::Leaf { cond, iterative })
    }

    pub(super) fn and(&mut self, a: CondId, b: CondId) -> CondId {
        self.cond(CondNode::And(a, b))
    }

    pub(super) fn not(&mut self, a: CondId) -> CondId {
        self.cond(CondNode::Not(a))
    }

    /// `pattern.getCondition()` (true for a group or a stage without one).
    pub(super) fn pattern_condition(&mut self, p: Pat<'p>) -> CondId {
        match p.condition(self.pattern) {
            Some(c) => self.leaf(c),
            None => self.cond(CondNode::True),
        }
    }

    pub(super) fn group_until(&mut self) -> Option<CondId> {
        let until = self.current_group.and_then(|g| g.until())?;
        Some(self.leaf(until))
    }

    pub(super) fn extend_with_until_condition(
        &mut self,
        cond: Option<CondId>,
        until: Option<CondId>,
        is_take: bool,
    ) -> Option<CondId> {
        match (until, cond) {
            (Some(u), Some(c)) => {
                let not_until = self.not(u);
                Some(self.and(not_until, c))
            }
            (Some(u), None) if is_take => Some(self.not(u)),
            _ => cond,
        }
    }

    pub(super) fn strategy_condition(&mut self, strategy: Consuming, p: Pat<'p>) -> Option<CondId> {
        match strategy {
            Consuming::SkipTillNext => {
                let c = self.pattern_condition(p);
                Some(self.not(c))
            }
            Consuming::SkipTillAny => Some(self.cond(CondNode::True)),
            Consuming::Strict | Consuming::NotFollow | Consuming::NotNext => None,
        }
    }

    /// Is the current group the one that stands for an alternation's
    /// branch in a branch pattern ([`crate::reference::BRANCH_GROUP`])?
    fn in_branch_group(&self) -> bool {
        self.current_group
            .is_some_and(|g| g.el().span == crate::reference::BRANCH_GROUP)
    }

    pub(super) fn get_inner_ignore_condition(&mut self, p: Pat<'p>) -> Option<CondId> {
        let mut strategy = p.inner_consuming();
        // (not the head of a branch's group, which keeps its own: an
        // alternation does not repeat, `docs/semantics.md`, difference 5)
        if self.head_of_group(p) && !self.in_branch_group() {
            strategy = self
                .current_group
                .expect("head of a group")
                .inner_consuming();
        }
        let c = self.strategy_condition(strategy, p);
        match self.group_until() {
            Some(u) => self.extend_with_until_condition(c, Some(u), false),
            None => c,
        }
    }

    pub(super) fn get_ignore_condition(&mut self, p: Pat<'p>) -> Option<CondId> {
        let mut strategy = p.consuming();
        if self.head_of_group(p) {
            let group = self.current_group.expect("head of a group");
            strategy = if self.is_current_group_pattern_first_of_loop() {
                group.consuming()
            } else {
                group.inner_consuming()
            };
        }
        let c = self.strategy_condition(strategy, p);
        match self.group_until() {
            Some(u) => self.extend_with_until_condition(c, Some(u), false),
            None => c,
        }
    }

    pub(super) fn get_take_condition(&mut self, p: Pat<'p>) -> CondId {
        let c = self.pattern_condition(p);
        match self.group_until() {
            Some(u) => self
                .extend_with_until_condition(Some(c), Some(u), true)
                .expect("a take condition"),
            None => c,
        }
    }

    pub(super) fn get_true_function(&mut self) -> CondId {
        let t = self.cond(CondNode::True);
        match self.group_until() {
            Some(u) => self
                .extend_with_until_condition(Some(t), Some(u), true)
                .expect("a condition"),
            None => t,
        }
    }

    /// `updateWithGreedyCondition`. D1: the restriction of a copy that
    /// enforces a group's trailing negation binds its original too (in
    /// Flink that original is the sink the restriction is put on).
    pub(super) fn update_with_greedy_condition(&mut self, state: StateIdx, take: CondId) {
        if let Some(&original) = self.trailing_not_copies.get(&state) {
            self.update_with_greedy_condition(original, take);
        }
        for i in 0..self.states[state].transitions.len() {
            let old = self.states[state].transitions[i].cond;
            let not_take = self.not(take);
            let new = self.and(old, not_take);
            self.states[state].transitions[i].cond = new;
        }
    }
}
