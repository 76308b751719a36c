//! Evaluating a [`CompiledExpr`].
//!
//! Values are passed as [`ValueRef`]s: fields, literals and accumulated
//! values are borrowed, so reading a string field and comparing it with a
//! literal copies nothing and allocates nothing (only functions that make a
//! new string, such as `lower`, own their result). Boolean operators and comparisons are evaluated
//! as three-valued truths without building a [`Value`]. The shapes of most
//! conditions (a field against a literal, `contains(field, "..")`, `and`,
//! `or`) are handled by a small inlined function; the rest out of line.

use super::accumulate::Accumulators;
use super::compile::{CompiledExpr, Node, NodeId};
use super::ir::{BinaryOp, Function};
use super::ops::{self, Truth};
use crate::event::{Event, FieldId, NoFields};
use crate::lookup::{IndicatorId, Lookup, NO_LOOKUP};
use crate::value::{Value, ValueRef};

impl CompiledExpr {
    /// The value of the expression for the candidate `event`, given what the
    /// run accepted before it.
    pub fn eval<E: Event + ?Sized>(&self, event: &E, accumulators: &Accumulators) -> Value {
        self.eval_with(event, accumulators, &NO_LOOKUP)
    }

    /// [`eval`](Self::eval) reading lists and indicators from `lookup`.
    #[inline]
    pub fn eval_with<E: Event + ?Sized>(
        &self,
        event: &E,
        accumulators: &Accumulators,
        lookup: &dyn Lookup,
    ) -> Value {
        // (a field alone, an indicator's argument most often: its value)
        if let [Node::Field(f)] = &*self.nodes {
            return event.field(*f).to_owned();
        }
        self.evaluator(event, accumulators, lookup)
            .value(self.root())
            .into_owned()
    }

    /// Does `event` satisfy the condition (is its value exactly `true`)?
    #[inline]
    pub fn matches<E: Event + ?Sized>(&self, event: &E, accumulators: &Accumulators) -> bool {
        self.matches_with(event, accumulators, &NO_LOOKUP)
    }

    /// [`matches`](Self::matches) reading lists and indicators from
    /// `lookup`. Always inlined: the commonest whole conditions are
    /// decided here, and only the others pass `lookup` on (out of line,
    /// `matches_general`), so that a condition
    /// that reads no list or indicator costs what it did before there
    /// was a lookup to pass.
    #[inline(always)]
    pub fn matches_with<E: Event + ?Sized>(
        &self,
        event: &E,
        accumulators: &Accumulators,
        lookup: &dyn Lookup,
    ) -> bool {
        // The commonest whole conditions, without entering the evaluator.
        match self.nodes.last() {
            Some(Node::CompareFieldLiteral(op, f, literal)) => {
                ops::compare_literal(*op, event.field(*f), literal) == Some(true)
            }
            Some(Node::ContainsFieldLiteral(f, needle)) => match event.field(*f) {
                ValueRef::Str(s) => needle.1.find(s.as_bytes()).is_some(),
                other => ops::call2(Function::Contains, other, (&needle.0).into()) == Some(true),
            },
            _ => self.matches_general(event, accumulators, lookup),
        }
    }

    /// [`matches_with`](Self::matches_with) for any other condition: the
    /// evaluator's truth.
    #[inline(never)]
    fn matches_general<E: Event + ?Sized>(
        &self,
        event: &E,
        accumulators: &Accumulators,
        lookup: &dyn Lookup,
    ) -> bool {
        // (a threshold rule's whole condition, without the evaluator)
        if let Some(Node::CompareIndicatorLiteral(op, indicator, f, literal)) = self.nodes.last() {
            let value = lookup.indicator(*indicator, &[event.field(*f)]);
            return ops::compare_literal(*op, (&value).into(), literal) == Some(true);
        }
        self.evaluator(event, accumulators, lookup)
            .truth(self.root())
            == Some(true)
    }

    /// The value of a `select` expression (no current event).
    pub fn eval_without_event(&self, accumulators: &Accumulators) -> Value {
        self.eval_without_event_with(accumulators, &NO_LOOKUP)
    }

    /// [`eval_without_event`](Self::eval_without_event) reading lists and
    /// indicators from `lookup`.
    pub fn eval_without_event_with(
        &self,
        accumulators: &Accumulators,
        lookup: &dyn Lookup,
    ) -> Value {
        self.evaluator(&NoEvent, accumulators, lookup)
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
        lookup: &'a dyn Lookup,
    ) -> Evaluator<'a, E> {
        Evaluator {
            nodes: &self.nodes,
            event,
            accumulators,
            lookup,
        }
    }
}

/// The event of `select` evaluation, which has no current event.
struct NoEvent;

impl Event for NoEvent {
    type Fields = NoFields;

    fn field(&self, _: FieldId) -> ValueRef<'_> {
        ValueRef::Null
    }
}

/// An operand: borrowed (fields, literals, accumulated values, and every
/// null, boolean or number) or owned (a string or list made by an operator).
enum Operand<'a> {
    Ref(ValueRef<'a>),
    Owned(Value),
}

impl Operand<'_> {
    #[inline]
    fn get(&self) -> ValueRef<'_> {
        match self {
            Operand::Ref(v) => *v,
            Operand::Owned(v) => v.into(),
        }
    }

    fn into_owned(self) -> Value {
        match self {
            Operand::Ref(v) => v.to_owned(),
            Operand::Owned(v) => v,
        }
    }

    /// An operator's result, borrowed when it holds nothing to own.
    fn of(v: Value) -> Operand<'static> {
        match v {
            Value::Null => Operand::Ref(ValueRef::Null),
            Value::Bool(b) => Operand::Ref(ValueRef::Bool(b)),
            Value::Int(i) => Operand::Ref(ValueRef::Int(i)),
            Value::Float(f) => Operand::Ref(ValueRef::Float(f)),
            owned => Operand::Owned(owned),
        }
    }

    fn num(n: ops::Num) -> Operand<'static> {
        Operand::Ref(n.value_ref())
    }

    fn truth(t: ops::Truth) -> Operand<'static> {
        Operand::Ref(t.map_or(ValueRef::Null, ValueRef::Bool))
    }
}

struct Evaluator<'a, E: ?Sized> {
    nodes: &'a [Node],
    event: &'a E,
    accumulators: &'a Accumulators,
    lookup: &'a dyn Lookup,
}

impl<'a, E: Event + ?Sized> Evaluator<'a, E> {
    /// An indicator's value: its arguments evaluated, the group looked up.
    #[inline(never)]
    fn indicator(&self, id: IndicatorId, args: &[NodeId]) -> Value {
        match args {
            [] => self.lookup.indicator(id, &[]),
            [a] => self.lookup.indicator(id, &[self.value(*a).get()]),
            [a, b] => {
                let (a, b) = (self.value(*a), self.value(*b));
                self.lookup.indicator(id, &[a.get(), b.get()])
            }
            _ => {
                let values: Vec<Operand<'_>> = args.iter().map(|&a| self.value(a)).collect();
                let refs: Vec<ValueRef<'_>> = values.iter().map(Operand::get).collect();
                self.lookup.indicator(id, &refs)
            }
        }
    }

    /// The value of node `id`. Recursion depth is bounded by the compiler's
    /// nesting limit.
    fn value(&self, id: NodeId) -> Operand<'a> {
        let Some(node) = self.nodes.get(id as usize) else {
            return Operand::Ref(ValueRef::Null);
        };
        match node {
            Node::Literal(v) => Operand::Ref(v.into()),
            Node::Field(f) => Operand::Ref(self.event.field(*f)),
            Node::Slot(slot) => Operand::Ref(self.accumulators.get(*slot)),
            Node::Neg(x) => match self.number(*x) {
                Some(n) => Operand::num(ops::negate_number(n)),
                None => Operand::of(ops::negate(self.value(*x).get())),
            },
            Node::Arithmetic(op, x, y) => match (self.number(*x), self.number(*y)) {
                (Some(a), Some(b)) => Operand::num(ops::numeric(*op, a, b)),
                _ => Operand::of(ops::arithmetic(
                    *op,
                    self.value(*x).get(),
                    self.value(*y).get(),
                )),
            },
            Node::Call1(func, x) => Operand::of(ops::call1(*func, self.value(*x).get())),
            Node::Fold(first, rest) => self.fold(*first, rest),
            Node::Indicator(id, args) => Operand::of(self.indicator(*id, args)),
            Node::Exists(_)
            | Node::InList(..)
            | Node::Not(_)
            | Node::And(..)
            | Node::Or(..)
            | Node::All(_)
            | Node::Any(_)
            | Node::Compare(..)
            | Node::CompareFieldLiteral(..)
            | Node::CompareIndicatorLiteral(..)
            | Node::In(..)
            | Node::Call2(..)
            | Node::ContainsFieldLiteral(..)
            | Node::Matches(..) => Operand::truth(self.truth(id)),
        }
    }

    /// The value of node `id` when it is a number or null, computed without
    /// building values; `None` when it is something else (or not known to
    /// be a number without evaluating it as a value).
    fn number(&self, id: NodeId) -> Option<ops::Num> {
        match self.nodes.get(id as usize)? {
            Node::Literal(v) => ops::Num::of(v.into()),
            Node::Field(f) => ops::Num::of(self.event.field(*f)),
            Node::Slot(slot) => ops::Num::of(self.accumulators.get(*slot)),
            Node::Neg(x) => self.number(*x).map(ops::negate_number),
            Node::Arithmetic(op, x, y) => {
                Some(ops::numeric(*op, self.number(*x)?, self.number(*y)?))
            }
            Node::Fold(first, rest) => {
                let mut acc = self.number(*first)?;
                for &(op, y) in rest.iter() {
                    acc = ops::numeric(op, acc, self.number(y)?);
                }
                Some(acc)
            }
            _ => None,
        }
    }

    /// The value of `first op1 y1 op2 y2 ...`, step by step exactly as the
    /// nested [`Node::Arithmetic`]s it stands for: numbers while every
    /// operand so far is one, values from the first operand that is not.
    fn fold(&self, first: NodeId, rest: &[(BinaryOp, NodeId)]) -> Operand<'a> {
        let mut number = self.number(first);
        let mut acc = match number {
            Some(n) => Operand::num(n),
            None => self.value(first),
        };
        for &(op, y) in rest {
            match (number, self.number(y)) {
                (Some(a), Some(b)) => {
                    let n = ops::numeric(op, a, b);
                    number = Some(n);
                    acc = Operand::num(n);
                }
                _ => {
                    number = None;
                    acc = Operand::of(ops::arithmetic(op, acc.get(), self.value(y).get()));
                }
            }
        }
        acc
    }

    /// The three-valued truth of node `id` (a non-boolean value is unknown).
    #[inline]
    fn truth(&self, id: NodeId) -> Truth {
        let node = self.nodes.get(id as usize)?;
        match node {
            Node::CompareFieldLiteral(op, f, literal) => {
                ops::compare_literal(*op, self.event.field(*f), literal)
            }
            Node::ContainsFieldLiteral(f, needle) => match self.event.field(*f) {
                ValueRef::Str(s) => Some(needle.1.find(s.as_bytes()).is_some()),
                other => ops::call2(Function::Contains, other, (&needle.0).into()),
            },
            Node::CompareIndicatorLiteral(op, indicator, f, literal) => {
                let value = self.lookup.indicator(*indicator, &[self.event.field(*f)]);
                ops::compare_literal(*op, (&value).into(), literal)
            }
            Node::And(x, y) => match self.truth(*x) {
                Some(false) => Some(false),
                left => ops::and(left, self.truth(*y)),
            },
            Node::Or(x, y) => match self.truth(*x) {
                Some(true) => Some(true),
                left => ops::or(left, self.truth(*y)),
            },
            Node::All(terms) => {
                // `false` wins and ends the chain; else unknown wins.
                let mut all = Some(true);
                for &t in terms.iter() {
                    match self.truth(t) {
                        Some(false) => return Some(false),
                        None => all = None,
                        Some(true) => {}
                    }
                }
                all
            }
            Node::Any(terms) => {
                let mut any = Some(false);
                for &t in terms.iter() {
                    match self.truth(t) {
                        Some(true) => return Some(true),
                        None => any = None,
                        Some(false) => {}
                    }
                }
                any
            }
            _ => self.truth_general(node, id),
        }
    }

    /// [`Self::truth`] for the less common nodes.
    #[inline(never)]
    fn truth_general(&self, node: &Node, id: NodeId) -> Truth {
        match node {
            Node::Compare(op, x, y) => match (self.number(*x), self.number(*y)) {
                (Some(a), Some(b)) => ops::compare(*op, a.value_ref(), b.value_ref()),
                _ => ops::compare(*op, self.value(*x).get(), self.value(*y).get()),
            },
            Node::Not(x) => self.truth(*x).map(|b| !b),
            Node::Exists(f) => Some(!self.event.field(*f).is_null()),
            Node::Call2(func, x, y) => {
                ops::call2(*func, self.value(*x).get(), self.value(*y).get())
            }
            Node::Matches(x, re) => match self.value(*x).get() {
                ValueRef::Str(s) => Some(re.is_match(s)),
                _ => None,
            },
            Node::InList(x, list) => self.lookup.contains(*list, self.value(*x).get()),
            Node::In(x, items) => {
                let x = self.value(*x);
                let mut result = Some(false);
                for &item in items.iter() {
                    result = ops::or(result, ops::equals(x.get(), self.value(item).get()));
                    if result == Some(true) {
                        break;
                    }
                }
                result
            }
            // Handled by `truth`; repeated so this match stays exhaustive.
            Node::CompareFieldLiteral(op, f, literal) => {
                ops::compare(*op, self.event.field(*f), literal.into())
            }
            Node::CompareIndicatorLiteral(op, indicator, f, literal) => {
                let value = self.lookup.indicator(*indicator, &[self.event.field(*f)]);
                ops::compare(*op, (&value).into(), literal.into())
            }
            Node::ContainsFieldLiteral(f, needle) => {
                ops::call2(Function::Contains, self.event.field(*f), (&needle.0).into())
            }
            Node::And(x, y) => ops::and(self.truth(*x), self.truth(*y)),
            Node::Or(x, y) => ops::or(self.truth(*x), self.truth(*y)),
            Node::All(_) | Node::Any(_) => self.truth(id),
            Node::Literal(_)
            | Node::Fold(..)
            | Node::Field(_)
            | Node::Slot(_)
            | Node::Neg(_)
            | Node::Arithmetic(..)
            | Node::Indicator(..)
            | Node::Call1(..) => ops::truth_of(self.value(id).get()),
        }
    }
}
