//! The IR seen as Flink's `Pattern` objects, exactly as the oracle's
//! `OracleHarness.buildSeq` / `applyModifiers` build them: a sequence is a
//! linked list (`getPrevious()`), a group is a `GroupPattern` named
//! `GroupPattern` whose raw pattern is its last element, the first element
//! of any sequence is `begin(...)` (STRICT), `{n}` / `{n,m}` are
//! `times(n)` / `times(n, m)`, `+` / `{n,}` are `oneOrMore()` /
//! `timesOrMore(n)` (so `times` is `(n, n)`), `optional` adds OPTIONAL,
//! `greedy` GREEDY, `consecutive` / `combinations` the inner strategy.
//! `{0,m}` is `times(0, m)`: `from` 1 plus OPTIONAL (`Element::is_optional`);
//! `*` arrives in the IR as `+` plus `optional`.

use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier,
};

/// Flink's `Quantifier.ConsumingStrategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consuming {
    /// `next`, `begin`, `consecutive`.
    Strict,
    /// `followedBy`, the default inner strategy.
    SkipTillNext,
    /// `followedByAny`, `allowCombinations`.
    SkipTillAny,
    /// `notFollowedBy`.
    NotFollow,
    /// `notNext`.
    NotNext,
}

/// One Flink `Pattern` node: an element at its place in its sequence.
#[derive(Clone, Copy)]
pub struct Pat<'p> {
    seq: &'p [Element],
    idx: usize,
}

impl<'p> Pat<'p> {
    /// The last element of a sequence (what Flink holds for a sequence).
    pub fn last_of(seq: &'p [Element]) -> Pat<'p> {
        Pat {
            seq,
            idx: seq.len() - 1,
        }
    }

    /// The IR element.
    pub fn el(&self) -> &'p Element {
        &self.seq[self.idx]
    }

    /// Identity of the node (for `firstOfLoopMap`).
    pub fn key(&self) -> *const Element {
        self.el()
    }

    /// `getPrevious()`.
    pub fn previous(&self) -> Option<Pat<'p>> {
        self.idx
            .checked_sub(1)
            .map(|idx| Pat { seq: self.seq, idx })
    }

    /// The elements of this node's sequence (its own and the ones before
    /// and after it).
    pub fn sequence(&self) -> &'p [Element] {
        self.seq
    }

    /// `instanceof GroupPattern`: the group's sequence.
    pub fn group(&self) -> Option<&'p [Element]> {
        match &self.el().kind {
            ElementKind::Group(inner) => Some(&inner.elements),
            ElementKind::Stage(_) => None,
            ElementKind::Alternation(_) => unreachable!(
                "Flink has no alternation: the reference runs each branch as a pattern of its own"
            ),
        }
    }

    /// `getName()`.
    pub fn name(&self, pattern: &'p Pattern) -> &'p str {
        match self.el().kind {
            ElementKind::Stage(id) => &pattern.stage(id).name,
            ElementKind::Group(_) | ElementKind::Alternation(_) => "GroupPattern",
        }
    }

    /// `getCondition()`: the stage's condition; a group has none (true).
    pub fn condition(&self, pattern: &'p Pattern) -> Option<&'p Condition> {
        match self.el().kind {
            ElementKind::Stage(id) => Some(&pattern.stage(id).condition),
            ElementKind::Group(_) | ElementKind::Alternation(_) => None,
        }
    }

    /// `getUntilCondition()`.
    pub fn until(&self) -> Option<&'p Condition> {
        self.el().until.as_ref()
    }

    /// `getQuantifier().getConsumingStrategy()`.
    pub fn consuming(&self) -> Consuming {
        if self.idx == 0 {
            return Consuming::Strict;
        }
        match self.el().contiguity {
            Contiguity::Strict => Consuming::Strict,
            Contiguity::Relaxed => Consuming::SkipTillNext,
            Contiguity::NonDeterministic => Consuming::SkipTillAny,
            Contiguity::NotNext => Consuming::NotNext,
            Contiguity::NotFollowedBy => Consuming::NotFollow,
        }
    }

    /// `getQuantifier().getInnerConsumingStrategy()`.
    pub fn inner_consuming(&self) -> Consuming {
        match self.el().inner {
            InnerContiguity::Relaxed => Consuming::SkipTillNext,
            InnerContiguity::Consecutive => Consuming::Strict,
            InnerContiguity::Combinations => Consuming::SkipTillAny,
        }
    }

    /// LOOPING.
    pub fn is_looping(&self) -> bool {
        matches!(self.el().quantifier, Quantifier::AtLeast(_))
    }

    /// TIMES.
    pub fn is_times(&self) -> bool {
        matches!(self.el().quantifier, Quantifier::Times { .. })
    }

    /// OPTIONAL (`optional`, or `{0,m}`: Flink's `times(0, m)`).
    pub fn is_optional(&self) -> bool {
        self.el().is_optional()
    }

    /// GREEDY.
    pub fn is_greedy(&self) -> bool {
        self.el().greedy
    }

    /// `getTimes()` as `(from, to)` (`times(0, m)` makes `from` 1).
    pub fn times(&self) -> Option<(u32, u32)> {
        match self.el().quantifier {
            Quantifier::One => None,
            Quantifier::Times { min, max } => Some((min.max(1), max)),
            Quantifier::AtLeast(n) => Some((n, n)),
        }
    }

    /// `getWindowSize(PREVIOUS_AND_CURRENT)`.
    pub fn window(&self) -> Option<i64> {
        self.el().within
    }
}
