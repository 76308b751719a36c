//! Static checks of the pattern IR, shared by the language and the builder.
//!
//! [`validate`] applies every rule that Apache Flink CEP enforces by throwing
//! an exception while a pattern is built or compiled (`MalformedPatternException`,
//! `UnsupportedOperationException`), plus cepheid's own limits, and returns
//! *all* violations at once as [`PatternError`]s with the source spans the IR
//! carries (empty spans for the builder API).
//!
//! Rules that only exist in the language (name resolution, `optional` written
//! twice, `until` written twice, unknown functions, unused `where` entries)
//! live in [`crate::dsl`]; everything that can be seen on a [`Pattern`] lives
//! here, so the builder API gets the same answers.
//!
//! Decisions where Flink is order-dependent or silent:
//! - `greedy` is rejected only on a singleton (as Flink's `Quantifier.greedy`),
//!   so `a{2,3} greedy` is accepted.
//! - `greedy` together with `combinations` is rejected whatever the order
//!   (Flink rejects only `allowCombinations().greedy()`).
//! - A pattern "ends with `not followed by`" (and needs a window) when the
//!   last element of the top-level sequence is one, as in Flink; its own
//!   element window is enough.
//! - A negation that a match can reach before taking any event is an error
//!   (Flink fails on it at run time), unless it ends a group (Flink drops
//!   it, and D1 binds it only after a take); a counted group of optional elements
//!   is accepted (only a looping one would repeat forever); the window of a
//!   `not followed by` that does not end the pattern is not checked (it
//!   makes no state, as in Flink).

use std::collections::HashMap;
use std::fmt;

use crate::expr::{AggregateFunc, Expr};
use crate::pattern::ir::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence,
    SkipStrategy,
};
use crate::primitives::{Span, StageId};

/// Most stages one pattern may have.
pub const MAX_STAGES: usize = 256;
/// Largest bound a quantifier may give (`{n}`, `{n,m}`, `{n,}`).
pub const MAX_QUANTIFIER_BOUND: u32 = 10_000;
/// Deepest nesting of groups (and, in the language, of expressions).
pub const MAX_NESTING: usize = 64;

/// What kind of rule a [`PatternError`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternErrorKind {
    /// The pattern or a group has no elements.
    EmptySequence,
    /// Two stages have the same name.
    DuplicateStage,
    /// A stage id does not index `Pattern::stages`, or is used twice.
    InvalidStage,
    /// A stage in `Pattern::stages` appears nowhere in the sequence.
    UnusedStage,
    /// A sequence starts with `not next` / `not followed by`.
    StartsWithNot,
    /// The pattern ends with `not followed by` but has no `within`.
    EndsWithNotFollowedBy,
    /// A `not` element is a group.
    NotOnGroup,
    /// A `not` element has a quantifier, `optional`, `greedy`, `until` or an
    /// inner contiguity.
    ModifierOnNot,
    /// A `not` element comes right after an optional element.
    NotAfterOptional,
    /// `until` on an element that does not loop.
    UntilOnNonLooping,
    /// `greedy` on a group.
    GreedyOnGroup,
    /// `greedy` on an element that does not repeat.
    GreedyOnSingle,
    /// `greedy` together with `combinations`.
    GreedyWithCombinations,
    /// `consecutive` / `combinations` on an element that does not repeat.
    InnerContiguityOnSingle,
    /// An optional element right after a greedy one.
    OptionalAfterGreedy,
    /// A quantifier with a zero count or `min > max`.
    InvalidQuantifier,
    /// A negative window (and, in a `.cep` file, a zero one).
    InvalidWindow,
    /// An element window larger than the pattern window.
    ElementWindowTooLarge,
    /// A skip target that is not a top-level stage.
    InvalidSkipTarget,
    /// A `select` expression reads a field of "the current event".
    FieldInSelect,
    /// An expression refers to a stage that does not exist, or an aggregate
    /// lacks its field.
    InvalidExpression,
    /// A name is empty.
    EmptyName,
    /// A limit of the language is exceeded.
    LimitExceeded,
    /// The builder API was used in a way no pattern can express (a
    /// quantifier applied twice, a pattern-level option on a group, ...).
    BuilderMisuse,
    /// A pattern partitioned both by fields and by a closure.
    MixedPartition,
    /// A repeating group whose elements are all optional: an iteration
    /// could take no event, so the same events would be matched by any
    /// number of empty iterations (Flink SQL rejects such patterns too).
    EmptyIteration,
    /// A pattern Flink accepts but cannot run, rejected by the automaton
    /// compiler (`docs/semantics.md`, D5), or IR no front end makes.
    Unsupported,
}

/// One broken rule: what, where, and (for duplicates) where else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// Which rule.
    pub kind: PatternErrorKind,
    /// A plain-words message.
    pub message: String,
    /// The offending text (empty for the builder API).
    pub span: Span,
    /// Secondary places, e.g. the first definition of a duplicated name.
    pub labels: Vec<(Span, String)>,
}

impl PatternError {
    fn new(kind: PatternErrorKind, span: Span, message: impl Into<String>) -> PatternError {
        PatternError {
            kind,
            message: message.into(),
            span,
            labels: Vec::new(),
        }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatternError {}

/// Checks every static rule on `p` and returns all violations (empty when
/// the pattern is valid), in a stable order.
pub fn validate(p: &Pattern) -> Vec<PatternError> {
    let mut v = Validator {
        pattern: p,
        errors: Vec::new(),
        uses: vec![Vec::new(); p.stages.len()],
        top_level: Vec::new(),
    };
    v.check_pattern_level();
    v.check_sequences();
    v.check_negations_at_start(&p.sequence, true, false);
    v.check_stage_names();
    v.check_skip();
    v.check_expressions();
    v.errors
}

/// The branches of alternations an element sits in, outermost first: the
/// alternation (its address) and the branch's index. Two occurrences of a
/// stage are allowed when their paths take different branches of one
/// alternation: a match takes only one of the two.
type BranchPath = Vec<(usize, usize)>;

/// Can no match take both occurrences (different branches of one
/// alternation)?
fn exclusive(a: &BranchPath, b: &BranchPath) -> bool {
    a.iter()
        .any(|(alt, i)| b.iter().any(|(alt2, j)| alt == alt2 && i != j))
}

/// The stages every match of `seq` takes an event into: its stages that
/// are neither optional nor negations, and those of its groups that are
/// not optional (not those of an alternation inside it: each is taken by
/// some matches only). Depth is bounded by the nesting limit.
pub fn required_stages(seq: &Sequence) -> Vec<StageId> {
    let mut out = Vec::new();
    for e in &seq.elements {
        if e.is_negation() || e.is_optional() {
            continue;
        }
        match &e.kind {
            ElementKind::Stage(s) => out.push(*s),
            ElementKind::Group(inner) => out.extend(required_stages(inner)),
            ElementKind::Alternation(_) => {}
        }
    }
    out
}

/// What tells the branch a match took, per alternation of `p` in the
/// order of the text (an alternation before the ones inside its
/// branches): per branch, its stages of its own that each of its matches
/// takes (validation makes sure every branch has one). A match took branch
/// `b` of an alternation when it took an event into one of `b`'s stages;
/// it passed the alternation not at all (inside a skipped optional group)
/// when into none.
pub fn branch_keys(p: &Pattern) -> Vec<Vec<Vec<StageId>>> {
    fn walk(seq: &Sequence, out: &mut Vec<Vec<Vec<StageId>>>, depth: usize) {
        if depth > MAX_NESTING {
            return;
        }
        for e in &seq.elements {
            match &e.kind {
                ElementKind::Stage(_) => {}
                ElementKind::Group(inner) => walk(inner, out, depth + 1),
                ElementKind::Alternation(branches) => {
                    let keys = branches
                        .iter()
                        .enumerate()
                        .map(|(i, b)| {
                            let others: Vec<StageId> = branches
                                .iter()
                                .enumerate()
                                .filter(|(j, _)| *j != i)
                                .flat_map(|(_, o)| all_stages(o))
                                .collect();
                            required_stages(b)
                                .into_iter()
                                .filter(|s| !others.contains(s))
                                .collect()
                        })
                        .collect();
                    out.push(keys);
                    for b in branches {
                        walk(b, out, depth + 1);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&p.sequence, &mut out, 0);
    out
}

/// Every stage written in `seq`, at any depth (explicit stack).
fn all_stages(seq: &Sequence) -> Vec<StageId> {
    let mut out = Vec::new();
    let mut stack = vec![seq];
    while let Some(s) = stack.pop() {
        for e in &s.elements {
            match &e.kind {
                ElementKind::Stage(id) => out.push(*id),
                ElementKind::Group(inner) => stack.push(inner),
                ElementKind::Alternation(bs) => stack.extend(bs),
            }
        }
    }
    out
}

/// State of one validation run.
struct Validator<'p> {
    pattern: &'p Pattern,
    errors: Vec<PatternError>,
    /// Where each stage occurs in the sequence: per occurrence, the
    /// branches of alternations it sits in (alternation, branch index).
    uses: Vec<Vec<BranchPath>>,
    /// Stages that are elements of the top-level sequence.
    top_level: Vec<StageId>,
}

impl Validator<'_> {
    fn error(&mut self, kind: PatternErrorKind, span: Span, message: impl Into<String>) {
        self.errors.push(PatternError::new(kind, span, message));
    }

    fn check_pattern_level(&mut self) {
        let p = self.pattern;
        if p.name.is_empty() {
            self.error(
                PatternErrorKind::EmptyName,
                p.span,
                "the pattern has no name",
            );
        }
        if p.stages.len() > MAX_STAGES {
            self.error(
                PatternErrorKind::LimitExceeded,
                p.span,
                format!(
                    "pattern `{}` has {} stages; at most {MAX_STAGES} are allowed",
                    p.name,
                    p.stages.len()
                ),
            );
        }
        if !p.partition_by.is_empty() && p.partition_by_fn.is_some() {
            self.error(
                PatternErrorKind::MixedPartition,
                p.span,
                "the pattern is partitioned by fields and by a closure; use one (the closure \
                 can return the fields' values)",
            );
        }
        if let Some(w) = p.within {
            if w < 0 {
                self.error(
                    PatternErrorKind::InvalidWindow,
                    p.span,
                    "the pattern window must not be negative",
                );
            }
        }
        // As Flink: only a top-level last `not followed by` needs a window,
        // its own element window will do (its pending state closes with
        // it). One that ends a final group without any window is checked
        // between the group's repetitions only, as in Flink.
        let last = p.sequence.elements.last();
        let own_window = last.is_some_and(|e| e.within.is_some_and(|w| w > 0));
        let ends_with_not = last.is_some_and(|e| e.contiguity == Contiguity::NotFollowedBy);
        if ends_with_not && p.within.is_none() && !own_window {
            let span = last.map_or(p.span, |e| e.span);
            self.error(
                PatternErrorKind::EndsWithNotFollowedBy,
                span,
                "a pattern can end with `not followed by` only when it has a `within` window \
                 (add e.g. `within 10m`)",
            );
        }
    }

    /// Walks every sequence (groups included) with an explicit stack.
    fn check_sequences(&mut self) {
        let p = self.pattern;
        let mut stack: Vec<(&Sequence, usize, Span, BranchPath)> =
            vec![(&p.sequence, 0, p.span, Vec::new())];
        while let Some((seq, depth, span, path)) = stack.pop() {
            if seq.elements.is_empty() {
                let what = if depth == 0 {
                    "the pattern"
                } else if !path.is_empty() {
                    "this group or branch"
                } else {
                    "this group"
                };
                self.error(
                    PatternErrorKind::EmptySequence,
                    span,
                    format!("{what} matches no stage"),
                );
                continue;
            }
            if let Some(first) = seq.elements.first() {
                if first.is_negation() {
                    self.error(
                        PatternErrorKind::StartsWithNot,
                        first.span,
                        format!(
                            "a sequence cannot start with `{}`",
                            first.contiguity.keyword()
                        ),
                    );
                }
            }
            for (i, element) in seq.elements.iter().enumerate() {
                let previous = i.checked_sub(1).map(|j| &seq.elements[j]);
                self.check_element(element, previous);
                match &element.kind {
                    ElementKind::Stage(id) => {
                        self.note_stage_use(*id, element.span, &path);
                        if depth == 0 {
                            self.top_level.push(*id);
                        }
                    }
                    ElementKind::Group(_) | ElementKind::Alternation(_)
                        if depth + 1 >= MAX_NESTING =>
                    {
                        self.error(
                            PatternErrorKind::LimitExceeded,
                            element.span,
                            format!("groups are nested more than {MAX_NESTING} deep"),
                        );
                    }
                    ElementKind::Group(inner) => {
                        stack.push((inner, depth + 1, element.span, path.clone()))
                    }
                    ElementKind::Alternation(branches) => {
                        self.check_branches(element, branches);
                        let id = element as *const Element as usize;
                        for (b, branch) in branches.iter().enumerate().rev() {
                            let mut inner = path.clone();
                            inner.push((id, b));
                            stack.push((branch, depth + 1, element.span, inner));
                        }
                    }
                }
            }
        }
    }

    /// A negation that a match can reach before it has taken any event
    /// (everything before it can be skipped, e.g. `(a*) not followed by b
    /// followed by c`): Flink rejects the direct form (`a? not followed by
    /// b`) and fails with a NullPointerException at run time on the others,
    /// so both are errors. A negation that ends a group is not (issue 27):
    /// Flink drops it (FLINK-15980) and runs the pattern. `at_start`: can
    /// `seq` be entered before any event was taken? `in_group`: is `seq` a
    /// group's? Recursion is bounded by the nesting limit.
    fn check_negations_at_start(&mut self, seq: &Sequence, at_start: bool, in_group: bool) {
        let mut reach = at_start;
        for (i, e) in seq.elements.iter().enumerate() {
            if e.is_negation() {
                let direct = i > 0 && seq.elements[i - 1].is_optional();
                // A `not followed by` that ends a group (it and everything
                // after it in the group are negations): Flink drops it
                // (FLINK-15980) and runs the pattern; cepheid's D1 binds it
                // only after an event was taken, so a match that starts
                // after the group bypasses it (`docs/semantics.md`, D1). A
                // `not next` there is not dropped: Flink fails on it as
                // anywhere else (oracle seed 5121, case 5121-169).
                let ends_group = in_group
                    && e.contiguity == Contiguity::NotFollowedBy
                    && seq.elements[i..].iter().all(Element::is_negation);
                if reach && i > 0 && !direct && !ends_group {
                    let name = match e.kind {
                        ElementKind::Stage(id) => self
                            .pattern
                            .stages
                            .get(id.index())
                            .map_or("?", |s| s.name.as_str()),
                        ElementKind::Group(_) | ElementKind::Alternation(_) => "?",
                    };
                    self.error(
                        PatternErrorKind::NotAfterOptional,
                        e.span,
                        format!(
                            "`{}` can be reached before the pattern takes any event (everything \
                             before it can be skipped); Flink 2.3 accepts the pattern but throws \
                             a NullPointerException as soon as an event satisfies `{name}`'s \
                             condition (evaluated for the run that has taken nothing, whatever \
                             other matches are under way: that run reaches the negation's stop \
                             state); events that never satisfy it run fine: make an element \
                             before it required",
                            e.contiguity.keyword()
                        ),
                    );
                }
                continue;
            }
            match &e.kind {
                ElementKind::Group(inner) => self.check_negations_at_start(inner, reach, true),
                ElementKind::Alternation(branches) => {
                    for b in branches {
                        self.check_negations_at_start(b, reach, true);
                    }
                }
                ElementKind::Stage(_) => {}
            }
            reach = reach && e.can_take_nothing();
        }
    }

    /// An alternation's own rules: two or more branches, each of which
    /// takes an event (a branch that can take nothing would make the
    /// alternation optional in a way that reports one match per such
    /// branch, and leave the match's branch undecided).
    fn check_branches(&mut self, e: &Element, branches: &[Sequence]) {
        if branches.len() < 2 {
            self.error(
                PatternErrorKind::EmptySequence,
                e.span,
                "an alternation needs two or more branches",
            );
        }
        for (i, b) in branches.iter().enumerate() {
            if !b.elements.is_empty() && b.can_take_nothing() {
                let span = b
                    .elements
                    .iter()
                    .map(|x| x.span)
                    .reduce(|a, x| a.to(x))
                    .unwrap_or(e.span);
                let span = if span == Span::default() {
                    e.span
                } else {
                    span
                };
                self.error(
                    PatternErrorKind::EmptyIteration,
                    span,
                    format!(
                        "branch {} of the alternation can take no event; every branch must \
                         take at least one (a match names the branch it took by its events)",
                        i + 1
                    ),
                );
            } else if !b.elements.is_empty() {
                let others: Vec<StageId> = branches
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, o)| all_stages(o))
                    .collect();
                if required_stages(b).iter().all(|s| others.contains(s)) {
                    let span = b
                        .elements
                        .iter()
                        .map(|x| x.span)
                        .reduce(|a, x| a.to(x))
                        .filter(|s| *s != Span::default())
                        .unwrap_or(e.span);
                    self.error(
                        PatternErrorKind::InvalidStage,
                        span,
                        format!(
                            "branch {} of the alternation has no stage of its own that each of \
                             its matches takes (one not written in another branch, not optional), \
                             so a match could not tell that it took this branch: rename a stage \
                             of this branch",
                            i + 1
                        ),
                    );
                }
            }
        }
    }

    fn note_stage_use(&mut self, id: StageId, span: Span, path: &BranchPath) {
        match self.uses.get_mut(id.index()) {
            Some(paths) => {
                let clash = paths.iter().any(|p| !exclusive(p, path));
                paths.push(path.clone());
                if clash {
                    let name = self.pattern.stages[id.index()].name.clone();
                    self.error(
                        PatternErrorKind::InvalidStage,
                        span,
                        format!(
                            "stage `{name}` is used more than once in the sequence (a stage \
                             may appear again only in another branch of an `or`)"
                        ),
                    );
                }
            }
            None => self.error(
                PatternErrorKind::InvalidStage,
                span,
                format!("stage id {} does not exist", id.0),
            ),
        }
    }

    fn check_element(&mut self, e: &Element, previous: Option<&Element>) {
        if e.is_negation() {
            self.check_negation(e, previous);
        } else {
            self.check_quantified(e, previous);
        }
        self.check_quantifier(e);
        // A `not followed by` that does not end the pattern makes no state
        // of its own, so its window is never registered (Flink checks the
        // registered windows only) and has no effect.
        let stateless = e.contiguity == Contiguity::NotFollowedBy
            && !ends_the_pattern(&self.pattern.sequence, e);
        if let Some(w) = e.within.filter(|_| !stateless) {
            if w < 0 {
                self.error(
                    PatternErrorKind::InvalidWindow,
                    e.span,
                    "an element window must not be negative",
                );
            } else if let Some(pw) = self.pattern.within.filter(|pw| w > *pw) {
                self.error(
                    PatternErrorKind::ElementWindowTooLarge,
                    e.span,
                    format!(
                        "this element's window ({}) is larger than the pattern's `within` ({}); \
                         it can never take effect",
                        show_ms(w),
                        show_ms(pw)
                    ),
                );
            }
        }
    }

    fn check_negation(&mut self, e: &Element, previous: Option<&Element>) {
        let kw = e.contiguity.keyword();
        if matches!(e.kind, ElementKind::Group(_) | ElementKind::Alternation(_)) {
            self.error(
                PatternErrorKind::NotOnGroup,
                e.span,
                format!("`{kw}` must be followed by a single stage, not a group"),
            );
        }
        let mut bad = Vec::new();
        if e.quantifier != Quantifier::One {
            bad.push("a quantifier");
        }
        if e.optional {
            bad.push("`optional`");
        }
        if e.greedy {
            bad.push("`greedy`");
        }
        if e.until.is_some() {
            bad.push("`until`");
        }
        match e.inner {
            InnerContiguity::Relaxed => {}
            InnerContiguity::Consecutive => bad.push("`consecutive`"),
            InnerContiguity::Combinations => bad.push("`combinations`"),
        }
        if !bad.is_empty() {
            self.error(
                PatternErrorKind::ModifierOnNot,
                e.span,
                format!(
                    "a `{kw}` element cannot have {}; it only says which event must not occur",
                    bad.join(" or ")
                ),
            );
        }
        if previous.is_some_and(|p| p.is_optional()) {
            self.error(
                PatternErrorKind::NotAfterOptional,
                e.span,
                format!(
                    "`{kw}` cannot follow an optional element (as in Flink); write two patterns, \
                     one with and one without the optional part"
                ),
            );
        }
    }

    fn check_quantified(&mut self, e: &Element, previous: Option<&Element>) {
        if e.until.is_some() && !e.is_looping() {
            self.error(
                PatternErrorKind::UntilOnNonLooping,
                e.span,
                "`until` needs an element that loops (`+`, `*` or `{n,}`)",
            );
        }
        if e.greedy {
            if matches!(e.kind, ElementKind::Group(_) | ElementKind::Alternation(_)) {
                self.error(
                    PatternErrorKind::GreedyOnGroup,
                    e.span,
                    "`greedy` cannot be applied to a group",
                );
            } else if !e.is_repeating() {
                self.error(
                    PatternErrorKind::GreedyOnSingle,
                    e.span,
                    "`greedy` needs an element that repeats (a quantifier other than `?`)",
                );
            }
            if e.inner == InnerContiguity::Combinations {
                self.error(
                    PatternErrorKind::GreedyWithCombinations,
                    e.span,
                    "`greedy` and `combinations` cannot be used together",
                );
            }
        }
        if e.inner != InnerContiguity::Relaxed && !e.is_repeating() {
            let word = if e.inner == InnerContiguity::Consecutive {
                "consecutive"
            } else {
                "combinations"
            };
            self.error(
                PatternErrorKind::InnerContiguityOnSingle,
                e.span,
                format!("`{word}` needs an element that repeats (a quantifier other than `?`)"),
            );
        }
        if let ElementKind::Group(inner) = &e.kind {
            // Only a looping group: Flink walks its empty iteration forever.
            // A counted group of optional elements is accepted, as in Flink.
            if e.is_looping() && inner.can_take_nothing() {
                self.error(
                    PatternErrorKind::EmptyIteration,
                    e.span,
                    "a looping group needs an element that is not optional: \
                     an iteration that takes no event would repeat forever (Flink 2.3 \
                     accepts the pattern but never finishes the event on which a run \
                     reaches this group: the first event if the group can start a match, \
                     else the event taken just before the group)",
                );
            }
        }
        if e.optional && previous.is_some_and(|p| p.greedy) {
            self.error(
                PatternErrorKind::OptionalAfterGreedy,
                e.span,
                "an optional element cannot come right after a greedy one (as in Flink)",
            );
        }
    }

    fn check_quantifier(&mut self, e: &Element) {
        let (min, max) = match e.quantifier {
            Quantifier::One => return,
            Quantifier::Times { min, max } => (min, Some(max)),
            Quantifier::AtLeast(n) => (n, None),
        };
        // `{0,m}` (m >= 1) is Flink's `times(0, m)`; other zero counts are
        // errors.
        let from_zero_range = matches!(e.quantifier, Quantifier::Times { min: 0, max } if max > 0);
        if min == 0 && !from_zero_range {
            self.error(
                PatternErrorKind::InvalidQuantifier,
                e.span,
                "a repetition count must be at least 1 (use `optional` for zero)",
            );
        }
        if from_zero_range && e.optional {
            // Flink: `times(0, m)` then `optional()` throws "Optional
            // already applied!". (The language and the builder report it
            // where it is written; this catches hand-built IR.)
            self.error(
                PatternErrorKind::InvalidQuantifier,
                e.span,
                "`{0,m}` already makes the element optional, so `optional` is given twice",
            );
        }

        if let Some(max) = max.filter(|m| *m < min) {
            self.error(
                PatternErrorKind::InvalidQuantifier,
                e.span,
                format!("the quantifier's lower bound {min} is larger than its upper bound {max}"),
            );
        }
        if min.max(max.unwrap_or(0)) > MAX_QUANTIFIER_BOUND {
            self.error(
                PatternErrorKind::LimitExceeded,
                e.span,
                format!("quantifier bounds are limited to {MAX_QUANTIFIER_BOUND}"),
            );
        }
    }

    fn check_stage_names(&mut self) {
        let p = self.pattern;
        let mut first_seen: HashMap<&str, Span> = HashMap::new();
        for (i, stage) in p.stages.iter().enumerate() {
            if stage.name.is_empty() {
                self.error(
                    PatternErrorKind::EmptyName,
                    stage.span,
                    "a stage has no name",
                );
            }
            match first_seen.get(stage.name.as_str()) {
                Some(first) => {
                    let mut err = PatternError::new(
                        PatternErrorKind::DuplicateStage,
                        stage.span,
                        format!(
                            "stage `{}` appears twice; stage names must be unique in a pattern",
                            stage.name
                        ),
                    );
                    err.labels.push((*first, "first used here".to_string()));
                    self.errors.push(err);
                }
                None => {
                    first_seen.insert(&stage.name, stage.span);
                }
            }
            if self.uses[i].is_empty() {
                self.error(
                    PatternErrorKind::UnusedStage,
                    stage.span,
                    format!("stage `{}` is not part of the sequence", stage.name),
                );
            }
        }
    }

    fn check_skip(&mut self) {
        let p = self.pattern;
        let (id, how) = match p.skip {
            SkipStrategy::ToFirst(id) => (id, "first"),
            SkipStrategy::ToLast(id) => (id, "last"),
            _ => return,
        };
        if id.index() >= p.stages.len() {
            self.error(
                PatternErrorKind::InvalidSkipTarget,
                p.span,
                format!(
                    "`skip to {how}` names stage id {}, which does not exist",
                    id.0
                ),
            );
        } else if !self.top_level.contains(&id) {
            self.error(
                PatternErrorKind::InvalidSkipTarget,
                p.span,
                format!(
                    "`skip to {how} {}`: the target must be a stage of the top-level sequence, \
                     not one inside a group",
                    p.stage(id).name
                ),
            );
        }
    }

    fn check_expressions(&mut self) {
        let p = self.pattern;
        for stage in &p.stages {
            if let Condition::Expr(e) = &stage.condition {
                self.check_expr(e, stage.span, false);
            }
        }
        let mut stack: Vec<&Sequence> = vec![&p.sequence];
        while let Some(seq) = stack.pop() {
            for e in &seq.elements {
                if let Some(Condition::Expr(x)) = &e.until {
                    self.check_expr(x, e.span, false);
                }
                match &e.kind {
                    ElementKind::Group(inner) => stack.push(inner),
                    ElementKind::Alternation(branches) => stack.extend(branches),
                    ElementKind::Stage(_) => {}
                }
            }
        }
        for item in &p.select {
            if item.name.is_empty() {
                self.error(
                    PatternErrorKind::EmptyName,
                    item.span,
                    "a `select` entry has no name",
                );
            }
            self.check_expr(&item.expr, item.span, true);
        }
    }

    fn check_expr(&mut self, expr: &Expr, span: Span, in_select: bool) {
        let n = self.pattern.stages.len();
        let mut found = Vec::new();
        expr.walk(|e| match e {
            Expr::StageField { stage, .. } if stage.index() >= n => {
                found.push((PatternErrorKind::InvalidExpression, invalid_stage(*stage)));
            }
            Expr::Aggregate { stage, .. } if stage.index() >= n => {
                found.push((PatternErrorKind::InvalidExpression, invalid_stage(*stage)));
            }
            Expr::Aggregate {
                func, path: None, ..
            } if *func != AggregateFunc::Count => found.push((
                PatternErrorKind::InvalidExpression,
                format!(
                    "`{}` needs a field: write `{}(stage.field)`",
                    func.name(),
                    func.name()
                ),
            )),
            Expr::Field(path) | Expr::Exists(path) if in_select => found.push((
                PatternErrorKind::FieldInSelect,
                format!(
                    "`select` is evaluated once per match, so there is no current event: \
                     `{path}` must name a stage (e.g. `stage.{path}`)"
                ),
            )),
            _ => {}
        });
        for (kind, message) in found {
            self.error(kind, span, message);
        }
    }
}

fn invalid_stage(id: StageId) -> String {
    format!(
        "an expression refers to stage id {}, which does not exist",
        id.0
    )
}

/// Is `e` the last element of the pattern, through groups and through any
/// branch of an alternation (where it ends that branch's pattern)?
fn ends_the_pattern(seq: &Sequence, e: &Element) -> bool {
    let mut ends: Vec<&Sequence> = vec![seq];
    let mut depth = 0;
    while let Some(seq) = ends.pop() {
        let Some(last) = seq.elements.last() else {
            continue;
        };
        if std::ptr::eq(last, e) {
            return true;
        }
        depth += 1;
        if depth > MAX_NESTING * 64 {
            return false;
        }
        match &last.kind {
            ElementKind::Group(inner) => ends.push(inner),
            ElementKind::Alternation(branches) => ends.extend(branches),
            ElementKind::Stage(_) => {}
        }
    }
    false
}

/// Milliseconds in the largest unit that divides them exactly (`15m`).
pub use crate::time::format_duration as show_ms;

#[cfg(test)]
mod tests;
