//! Positions of a pattern and what may follow each one, derived from the
//! rules of `semantics.md` / `flink-reference.md` (not from an automaton).
//!
//! A *position* is one event slot of a pattern: a stage reached through a
//! path of `(element index, iteration)` pairs, outermost first. After an
//! event is taken at a position, [`follow`] lists every way the match may
//! go on: the next position to take (with the contiguity of the gap before
//! it), the end of the pattern, a pending `not followed by` end, or a
//! `not next` end. Each [`Trans`] also carries the constraints the rules
//! put on the gap: negations that stop the run, `until`, and greedy.

use cepheid::pattern::{
    Condition, Contiguity, DurationMs, Element, ElementKind, InnerContiguity, Pattern, Quantifier,
    Sequence, StageId,
};

/// `(element index in its sequence, 1-based iteration of that element)`,
/// outermost first; the last pair names a stage element.
pub type Pos = Vec<(usize, u32)>;

/// Which events may be skipped in the gap before a take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// `next` / `consecutive`: none.
    Strict,
    /// `followed by` / default inner: events that fail the take condition
    /// for this run.
    Relaxed,
    /// `followed by any` / `combinations`: every event.
    Any,
}

/// Where a transition leads.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Take an event at this position.
    Take(Pos),
    /// The match is complete (right after the take that led here).
    Final,
    /// A trailing `not followed by`: complete when the window closes.
    Pending {
        /// The `within` of the trailing `not` element, if any.
        window: Option<DurationMs>,
    },
    /// A trailing `not next`: complete on the next event unless it matches.
    NotNextEnd,
}

/// One way a run may go on after taking an event at a position.
#[derive(Clone, Debug)]
pub struct Trans<'p> {
    /// Where it leads.
    pub target: Target,
    /// Contiguity of the gap before the take.
    pub gap: Gap,
    /// `not followed by` conditions: a gap event or the taken event that
    /// satisfies one stops the run (all its branches).
    pub nots: Vec<&'p Condition>,
    /// `not next` conditions: checked on the first event after the take only.
    pub not_next: Vec<&'p Condition>,
    /// `until` of the element taken: an event satisfying it cannot be taken.
    pub until: Option<&'p Condition>,
    /// Does `until` also forbid skipping (between repetitions of a loop, but
    /// not before its first element)?
    pub until_skip: bool,
    /// Greedy elements being left: `(condition, until)`; an event the greedy
    /// element would take can be neither taken nor skipped here.
    pub greedy: Vec<(&'p Condition, Option<&'p Condition>)>,
}

/// Accumulated constraints while walking from a position to the next take.
#[derive(Clone, Default)]
struct Acc<'p> {
    nots: Vec<&'p Condition>,
    not_next: Vec<&'p Condition>,
    until: Option<&'p Condition>,
    until_skip: bool,
    greedy: Vec<(&'p Condition, Option<&'p Condition>)>,
    /// The last thing passed over was a `not` element (and nothing after).
    trailing: Option<(Contiguity, Option<DurationMs>)>,
}

/// The pattern seen through positions.
pub struct Shape<'p> {
    /// The pattern.
    pub pattern: &'p Pattern,
}

impl<'p> Shape<'p> {
    /// Wraps a pattern.
    pub fn new(pattern: &'p Pattern) -> Shape<'p> {
        Shape { pattern }
    }

    /// The element a (prefix of a) position names.
    pub fn element(&self, path: &[(usize, u32)]) -> &'p Element {
        let mut seq: &'p Sequence = &self.pattern.sequence;
        let mut found = None;
        for &(index, _) in path {
            let el = &seq.elements[index];
            found = Some(el);
            if let ElementKind::Group(inner) = &el.kind {
                seq = inner;
            }
        }
        found.expect("empty position")
    }

    /// The stage taken at a position.
    pub fn stage(&self, pos: &[(usize, u32)]) -> StageId {
        match self.element(pos).kind {
            ElementKind::Stage(s) => s,
            ElementKind::Group(_) => unreachable!("positions end at stages"),
        }
    }

    /// The condition of the stage at a position.
    pub fn condition(&self, pos: &[(usize, u32)]) -> &'p Condition {
        &self.pattern.stage(self.stage(pos)).condition
    }

    /// Transitions from the start (before any event is taken): only takes
    /// matter there (a run never skips at the start, and no empty match).
    pub fn start(&self) -> Vec<Trans<'p>> {
        let mut out = Vec::new();
        self.next_in_seq(&[], 0, Acc::default(), &mut out);
        out
    }

    /// Every transition after an event was taken at `pos`, in preference
    /// order (repeat before leave, take an optional element before skip).
    pub fn follow(&self, pos: &[(usize, u32)]) -> Vec<Trans<'p>> {
        let mut out = Vec::new();
        self.after_iteration(pos, Acc::default(), &mut out);
        out
    }

    fn seq_of(&self, parent: &[(usize, u32)]) -> &'p Sequence {
        if parent.is_empty() {
            return &self.pattern.sequence;
        }
        match &self.element(parent).kind {
            ElementKind::Group(s) => s,
            ElementKind::Stage(_) => unreachable!("a stage has no sequence"),
        }
    }

    /// Iteration `k` of the element at `path` just finished.
    fn after_iteration(&self, path: &[(usize, u32)], acc: Acc<'p>, out: &mut Vec<Trans<'p>>) {
        let el = self.element(path);
        let (index, k) = *path.last().expect("non-empty path");
        let parent = &path[..path.len() - 1];
        let (min, max) = bounds(el);
        if max.map_or(true, |m| k < m) {
            let mut rep = acc.clone();
            rep.trailing = None;
            // A `not followed by` right after a repeating element is also
            // enforced between its repetitions (from the first one on).
            if let Some(next) = self.seq_of(parent).elements.get(index + 1) {
                if next.contiguity == Contiguity::NotFollowedBy {
                    rep.nots.push(self.not_condition(next));
                }
            }
            rep.until = el.until.as_ref();
            rep.until_skip = true;
            let mut next_path = path.to_vec();
            next_path.last_mut().expect("non-empty").1 = k + 1;
            self.enter(&next_path, inner_gap(el.inner), rep, out);
        }
        if k >= min {
            let mut leave = acc;
            if el.greedy && is_variable(el) {
                leave
                    .greedy
                    .push((self.element_condition(el), el.until.as_ref()));
            }
            self.next_in_seq(parent, index + 1, leave, out);
        }
    }

    /// Continue in the sequence of `parent` at element `j`.
    fn next_in_seq(
        &self,
        parent: &[(usize, u32)],
        j: usize,
        mut acc: Acc<'p>,
        out: &mut Vec<Trans<'p>>,
    ) {
        let seq = self.seq_of(parent);
        let Some(el) = seq.elements.get(j) else {
            if parent.is_empty() {
                out.push(self.end(acc));
            } else {
                self.after_iteration(parent, acc, out);
            }
            return;
        };
        match el.contiguity {
            Contiguity::NotFollowedBy => {
                acc.nots.push(self.not_condition(el));
                acc.trailing = Some((Contiguity::NotFollowedBy, el.within));
                self.next_in_seq(parent, j + 1, acc, out);
            }
            Contiguity::NotNext => {
                acc.not_next.push(self.not_condition(el));
                acc.trailing = Some((Contiguity::NotNext, el.within));
                self.next_in_seq(parent, j + 1, acc, out);
            }
            c => {
                acc.trailing = None;
                let mut path = parent.to_vec();
                path.push((j, 1));
                // `until` also forbids taking the first element, but the
                // wait for it may still skip such an event.
                let mut first = acc.clone();
                first.until = el.until.as_ref();
                first.until_skip = false;
                self.enter(&path, outer_gap(c), first, out);
                if el.optional {
                    // Skipping a greedy element restricts what follows too.
                    if el.greedy && is_variable(el) {
                        acc.greedy
                            .push((self.element_condition(el), el.until.as_ref()));
                    }
                    self.next_in_seq(parent, j + 1, acc, out);
                }
            }
        }
    }

    /// Enter the element at `path` (iteration given in its last pair).
    fn enter(&self, path: &[(usize, u32)], gap: Gap, acc: Acc<'p>, out: &mut Vec<Trans<'p>>) {
        match &self.element(path).kind {
            ElementKind::Stage(_) => out.push(Trans {
                target: Target::Take(path.to_vec()),
                gap,
                nots: acc.nots,
                not_next: acc.not_next,
                until: acc.until,
                until_skip: acc.until_skip,
                greedy: acc.greedy,
            }),
            ElementKind::Group(inner) => {
                let mut first = path.to_vec();
                first.push((0, 1));
                let mut inside = acc.clone();
                inside.until = None;
                self.enter(&first, gap, inside, out);
                if inner.elements[0].optional {
                    let mut skip = acc;
                    skip.until = None;
                    self.next_in_seq(path, 1, skip, out);
                }
            }
        }
    }

    fn end(&self, acc: Acc<'p>) -> Trans<'p> {
        let target = match acc.trailing {
            Some((Contiguity::NotFollowedBy, window)) => Target::Pending { window },
            Some(_) => Target::NotNextEnd,
            None => Target::Final,
        };
        Trans {
            target,
            gap: Gap::Any,
            nots: acc.nots,
            not_next: acc.not_next,
            until: None,
            until_skip: false,
            greedy: Vec::new(),
        }
    }

    fn not_condition(&self, el: &'p Element) -> &'p Condition {
        self.element_condition(el)
    }

    fn element_condition(&self, el: &'p Element) -> &'p Condition {
        match el.kind {
            ElementKind::Stage(s) => &self.pattern.stage(s).condition,
            ElementKind::Group(_) => unreachable!("negated or greedy groups are invalid"),
        }
    }
}

/// `(min, max)` iterations of an element (`max` `None` = unbounded).
pub fn bounds(el: &Element) -> (u32, Option<u32>) {
    match el.quantifier {
        Quantifier::One => (1, Some(1)),
        Quantifier::Times { min, max } => (min, Some(max)),
        Quantifier::AtLeast(n) => (n, None),
    }
}

/// Does the element take a variable number of events (where greedy matters)?
fn is_variable(el: &Element) -> bool {
    let (min, max) = bounds(el);
    max.map_or(true, |m| m > min)
}

fn outer_gap(c: Contiguity) -> Gap {
    match c {
        Contiguity::Strict => Gap::Strict,
        Contiguity::NonDeterministic => Gap::Any,
        _ => Gap::Relaxed,
    }
}

fn inner_gap(c: InnerContiguity) -> Gap {
    match c {
        InnerContiguity::Consecutive => Gap::Strict,
        InnerContiguity::Relaxed => Gap::Relaxed,
        InnerContiguity::Combinations => Gap::Any,
    }
}
