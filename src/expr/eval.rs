//! Evaluating a [`CompiledExpr`].
//!
//! Values are passed as `Cow`s: fields and accumulated values are borrowed,
//! so reading a string field and comparing it with a literal copies nothing
//! and allocates nothing. Boolean operators and comparisons are evaluated
//! as three-valued truths without building a [`Value`]. The shapes of most
//! conditions (a field against a literal, `contains(field, "..")`, `and`,
//! `or`) are handled by a small inlined function; the rest out of line.

use std::borrow::Cow;

use super::accumulate::Accumulators;
use super::compile::{CompiledExpr, Node, NodeId};
use super::ir::Function;
use super::ops::{self, Truth};
use crate::event::{Event, FieldId};
use crate::value::Value;

impl CompiledExpr {
    /// The value of the expression for the candidate `event`, given what the
    /// run accepted before it.
    pub fn eval<E: Event + ?Sized>(&self, event: &E, accumulators: &Accumulators) -> Value {
        self.evaluator(event, accumulators)
            .value(self.root())
            .into_owned()
    }

    /// Does `event` satisfy the condition (is its value exactly `true`)?
    #[inline]
    pub fn matches<E: Event + ?Sized>(&self, event: &E, accumulators: &Accumulators) -> bool {
        // The commonest whole conditions, without entering the evaluator.
        match self.nodes.last() {
            Some(Node::CompareFieldLiteral(op, f, literal)) => {
                ops::compare_literal(*op, &event.field(*f), literal) == Some(true)
            }
            Some(Node::ContainsFieldLiteral(f, needle)) => match &*event.field(*f) {
                Value::Str(s) => needle.1.find(s.as_bytes()).is_some(),
                other => ops::call2(Function::Contains, other, &needle.0) == Some(true),
            },
            _ => self.evaluator(event, accumulators).truth(self.root()) == Some(true),
        }
    }

    /// The value of a `select` expression (no current event).
    pub(crate) fn eval_without_event(&self, accumulators: &Accumulators) -> Value {
        self.evaluator(&NoEvent, accumulators)
            .value(self.root())
            .into_owned()
    }

    fn root(&self) -> NodeId {
        self.nodes.len().saturating_sub(1) as NodeId
    }

    fn evaluator<'a, E: Event + ?Sized>(
        &'a self,
        event: &'a E,
        accumulators: &'a Accumulators,
    ) -> Evaluator<'a, E> {
        Evaluator {
            nodes: &self.nodes,
            event,
            accumulators,
        }
    }
}

/// The event of `select` evaluation, which has no current event.
struct NoEvent;

impl Event for NoEvent {
    fn field(&self, _: FieldId) -> Cow<'_, Value> {
        Cow::Owned(Value::Null)
    }
}

struct Evaluator<'a, E: ?Sized> {
    nodes: &'a [Node],
    event: &'a E,
    accumulators: &'a Accumulators,
}

impl<'a, E: Event + ?Sized> Evaluator<'a, E> {
    /// The value of node `id`. Recursion depth is bounded by the compiler's
    /// nesting limit.
    fn value(&self, id: NodeId) -> Cow<'a, Value> {
        let Some(node) = self.nodes.get(id as usize) else {
            return Cow::Owned(Value::Null);
        };
        match node {
            Node::Literal(v) => Cow::Borrowed(v),
            Node::Field(f) => self.event.field(*f),
            Node::Slot(slot) => self.accumulators.get(*slot),
            Node::Neg(x) => match self.number(*x) {
                Some(n) => Cow::Owned(ops::negate_number(n).value()),
                None => Cow::Owned(ops::negate(&self.value(*x))),
            },
            Node::Arithmetic(op, x, y) => match (self.number(*x), self.number(*y)) {
                (Some(a), Some(b)) => Cow::Owned(ops::numeric(*op, a, b).value()),
                _ => Cow::Owned(ops::arithmetic(*op, &self.value(*x), &self.value(*y))),
            },
            Node::Call1(func, x) => Cow::Owned(ops::call1(*func, &self.value(*x))),
            Node::Exists(_)
            | Node::Not(_)
            | Node::And(..)
            | Node::Or(..)
            | Node::Compare(..)
            | Node::CompareFieldLiteral(..)
            | Node::In(..)
            | Node::Call2(..)
            | Node::ContainsFieldLiteral(..)
            | Node::Matches(..) => Cow::Owned(ops::value_of(self.truth(id))),
        }
    }

    /// The value of node `id` when it is a number or null, computed without
    /// building values; `None` when it is something else (or not known to
    /// be a number without evaluating it as a value).
    fn number(&self, id: NodeId) -> Option<ops::Num> {
        match self.nodes.get(id as usize)? {
            Node::Literal(v) => ops::Num::of(v),
            Node::Field(f) => ops::Num::of(&self.event.field(*f)),
            Node::Slot(slot) => ops::Num::of(&self.accumulators.get(*slot)),
            Node::Neg(x) => self.number(*x).map(ops::negate_number),
            Node::Arithmetic(op, x, y) => {
                Some(ops::numeric(*op, self.number(*x)?, self.number(*y)?))
            }
            _ => None,
        }
    }

    /// The three-valued truth of node `id` (a non-boolean value is unknown).
    #[inline]
    fn truth(&self, id: NodeId) -> Truth {
        let node = self.nodes.get(id as usize)?;
        match node {
            Node::CompareFieldLiteral(op, f, literal) => {
                ops::compare_literal(*op, &self.event.field(*f), literal)
            }
            Node::ContainsFieldLiteral(f, needle) => match &*self.event.field(*f) {
                Value::Str(s) => Some(needle.1.find(s.as_bytes()).is_some()),
                other => ops::call2(Function::Contains, other, &needle.0),
            },
            Node::And(x, y) => match self.truth(*x) {
                Some(false) => Some(false),
                left => ops::and(left, self.truth(*y)),
            },
            Node::Or(x, y) => match self.truth(*x) {
                Some(true) => Some(true),
                left => ops::or(left, self.truth(*y)),
            },
            _ => self.truth_general(node, id),
        }
    }

    /// [`Self::truth`] for the less common nodes.
    #[inline(never)]
    fn truth_general(&self, node: &Node, id: NodeId) -> Truth {
        match node {
            Node::Compare(op, x, y) => match (self.number(*x), self.number(*y)) {
                (Some(a), Some(b)) => ops::compare(*op, &a.value(), &b.value()),
                _ => ops::compare(*op, &self.value(*x), &self.value(*y)),
            },
            Node::Not(x) => self.truth(*x).map(|b| !b),
            Node::Exists(f) => Some(!self.event.field(*f).is_null()),
            Node::Call2(func, x, y) => ops::call2(*func, &self.value(*x), &self.value(*y)),
            Node::Matches(x, re) => match &*self.value(*x) {
                Value::Str(s) => Some(re.is_match(s)),
                _ => None,
            },
            Node::In(x, items) => {
                let x = self.value(*x);
                let mut result = Some(false);
                for &item in items.iter() {
                    result = ops::or(result, ops::equals(&x, &self.value(item)));
                    if result == Some(true) {
                        break;
                    }
                }
                result
            }
            // Handled by `truth`; repeated so this match stays exhaustive.
            Node::CompareFieldLiteral(op, f, literal) => {
                ops::compare(*op, &self.event.field(*f), literal)
            }
            Node::ContainsFieldLiteral(f, needle) => {
                ops::call2(Function::Contains, &self.event.field(*f), &needle.0)
            }
            Node::And(x, y) => ops::and(self.truth(*x), self.truth(*y)),
            Node::Or(x, y) => ops::or(self.truth(*x), self.truth(*y)),
            Node::Literal(_)
            | Node::Field(_)
            | Node::Slot(_)
            | Node::Neg(_)
            | Node::Arithmetic(..)
            | Node::Call1(..) => ops::truth_of(&self.value(id)),
        }
    }
}
