//! Shared helpers of the matcher tests: a tiny event type, pattern IR built
//! with native conditions, and a runner that reports matches by event name.
#![allow(dead_code)]

use std::sync::Arc;

use cepheid_automata::matcher::{Matcher, Output};
use cepheid_automata::nfa::Nfa;
use cepheid_core::event::{Event, FieldId, NoFields};
use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, NativeCondition, NativeFn,
    Pattern, Quantifier, Sequence, Stage, StageEvents,
};
use cepheid_core::primitives::StageId;
use cepheid_core::ValueRef;

/// A test event: a name such as `b2` (conditions look at its first letter).
#[derive(Clone, Debug, PartialEq)]
pub struct Ev {
    pub name: String,
    pub value: i64,
}

impl Event for Ev {
    type Fields = NoFields;

    fn field(&self, _id: FieldId) -> ValueRef<'_> {
        ValueRef::Null
    }
}

/// A native condition from a closure.
pub fn cond(f: impl Fn(&Ev) -> bool + Send + Sync + 'static) -> Condition {
    let f: NativeFn<Ev> = Arc::new(move |e: &Ev, _: &dyn StageEvents<Ev>| f(e));
    Condition::Native(NativeCondition::new(f, false))
}

/// Events whose name starts with one of these letters.
pub fn letters(set: &'static str) -> Condition {
    cond(move |e| e.name.chars().next().is_some_and(|c| set.contains(c)))
}

/// Builds a pattern: `stages` are `(name, condition)`, `elements` refer to
/// them by index.
pub fn pattern(stages: Vec<(&str, Condition)>, elements: Vec<Element>) -> Pattern {
    let stages = stages
        .into_iter()
        .map(|(name, condition)| Stage::new(name, condition))
        .collect();
    Pattern::new("p", stages, Sequence::new(elements))
}

/// Element modifiers, chained: `el(1).next().plus().greedy()`.
pub fn el(stage: u16) -> Element {
    Element::stage(StageId(stage))
}

/// A group of elements.
pub fn group(elements: Vec<Element>) -> Element {
    Element::group(Sequence::new(elements))
}

pub trait ElementExt {
    fn next(self) -> Self;
    fn any(self) -> Self;
    fn not_next(self) -> Self;
    fn not_followed(self) -> Self;
    fn plus(self) -> Self;
    fn at_least(self, n: u32) -> Self;
    fn times(self, min: u32, max: u32) -> Self;
    fn opt(self) -> Self;
    fn greedy(self) -> Self;
    fn consecutive(self) -> Self;
    fn combinations(self) -> Self;
    fn until(self, c: Condition) -> Self;
    fn within(self, ms: i64) -> Self;
}

impl ElementExt for Element {
    fn next(mut self) -> Self {
        self.contiguity = Contiguity::Strict;
        self
    }
    fn any(mut self) -> Self {
        self.contiguity = Contiguity::NonDeterministic;
        self
    }
    fn not_next(mut self) -> Self {
        self.contiguity = Contiguity::NotNext;
        self
    }
    fn not_followed(mut self) -> Self {
        self.contiguity = Contiguity::NotFollowedBy;
        self
    }
    fn plus(mut self) -> Self {
        self.quantifier = Quantifier::AtLeast(1);
        self
    }
    fn at_least(mut self, n: u32) -> Self {
        self.quantifier = Quantifier::AtLeast(n);
        self
    }
    fn times(mut self, min: u32, max: u32) -> Self {
        self.quantifier = Quantifier::Times { min, max };
        self
    }
    fn opt(mut self) -> Self {
        self.optional = true;
        self
    }
    fn greedy(mut self) -> Self {
        self.greedy = true;
        self
    }
    fn consecutive(mut self) -> Self {
        self.inner = InnerContiguity::Consecutive;
        self
    }
    fn combinations(mut self) -> Self {
        self.inner = InnerContiguity::Combinations;
        self
    }
    fn until(mut self, c: Condition) -> Self {
        self.until = Some(c);
        self
    }
    fn within(mut self, ms: i64) -> Self {
        self.within = Some(ms);
        self
    }
}

/// Is this element a group? (for tests that inspect IR)
pub fn is_group(e: &Element) -> bool {
    matches!(e.kind, ElementKind::Group(_))
}

/// A match as `"stage:e1 e2|stage:e3"` in pattern order.
pub fn render(m: &cepheid_automata::matcher::Match<Ev>) -> String {
    m.stages
        .iter()
        .map(|(stage, evs)| {
            let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
            format!("{stage}:{}", names.join(" "))
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Runs the pattern over events named by `input` (space separated), event
/// `i` at time `i`, then advances time to `end` if given. Returns the
/// rendered outputs in emission order; timeouts are prefixed `timeout@T `.
pub fn run_at(p: &Pattern, input: &[(i64, &str)], end: Option<i64>) -> Vec<String> {
    let nfa = Nfa::<Ev>::compile(p, &mut NoFields).expect("compiles");
    let mut m = Matcher::new(nfa);
    let mut out = Vec::new();
    let mut push = |outputs: Vec<Output<Ev>>| {
        for o in outputs {
            out.push(match o {
                Output::Match(x) => render(&x),
                Output::Timeout {
                    partial: x,
                    expired_at: t,
                } => format!("timeout@{t} {}", render(&x)),
                // (a `Matcher` has no late events and no limit)
                _ => unreachable!("a matcher gives only matches and timeouts"),
            });
        }
    };
    for (ts, name) in input {
        push(m.process(
            *ts,
            Ev {
                name: name.to_string(),
                value: 0,
            },
        ));
    }
    if let Some(t) = end {
        push(m.advance_time(t));
    }
    out
}

/// Runs over `input` (space separated names, times 1, 2, ...).
pub fn run(p: &Pattern, input: &str) -> Vec<String> {
    let events: Vec<(i64, &str)> = input
        .split_whitespace()
        .enumerate()
        .map(|(i, n)| (i as i64 + 1, n))
        .collect();
    run_at(p, &events, None)
}

/// Sorted, for multiset comparison.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Expected matches, sorted.
pub fn expect(list: &[&str]) -> Vec<String> {
    sorted(list.iter().map(|s| s.to_string()).collect())
}

/// Runs over `(name, value)` events at times 1, 2, ...; rendered outputs.
pub fn run_valued(p: &Pattern, input: &[(&str, i64)]) -> Vec<String> {
    let nfa = Nfa::<Ev>::compile(p, &mut NoFields).expect("compiles");
    let mut m = Matcher::new(nfa);
    let mut out = Vec::new();
    for (i, (name, value)) in input.iter().enumerate() {
        let ev = Ev {
            name: name.to_string(),
            value: *value,
        };
        for o in m.process(i as i64 + 1, ev) {
            if let Output::Match(x) = o {
                out.push(render(&x));
            }
        }
    }
    out
}
