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

/// A greedy element being left or skipped: its condition, its `until`, and
/// whether the restriction lasts for the whole wait (the next state's
/// transitions are restricted) or only for the event the run leaves on (a
/// restricted PROCEED of an optional greedy element with fixed counts).
pub type Greedy<'p> = (&'p Condition, Option<&'p Condition>, bool);

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
    /// Where each `not next` is written (the path of its sequence).
    pub not_next_at: Vec<Pos>,
    /// `until` of the element taken: an event satisfying it cannot be taken.
    pub until: Option<&'p Condition>,
    /// Does `until` also forbid skipping (between repetitions of a loop, but
    /// not before its first element)?
    pub until_skip: bool,
    /// Greedy elements being left: `(condition, until)`; an event the greedy
    /// element would take can be neither taken nor skipped here.
    pub greedy: Vec<Greedy<'p>>,
    /// Leaves a greedy counted element before its maximum: such a PROCEED
    /// is evaluated on the event just taken, so it never completes a match.
    pub greedy_early_exit: bool,
    /// Between the greedy element and the end lies another state (a group
    /// iteration that could repeat, a skipped optional element): the greedy
    /// restriction on that state's PROCEED applies to a completion too.
    pub greedy_via_state: bool,
    /// Element iterations (paths) this transition finishes and leaves.
    pub exits: Vec<Pos>,
    /// For the next iteration of a counted group whose head is a stage: the
    /// finished iteration. A run that skips while waiting for it may still
    /// leave the group (Flink's ignore loops on a state that keeps its
    /// PROCEED), by the transitions whose `exits` contain this path.
    pub sticky: Option<Pos>,
    /// The take is the head of an optional group entered from outside: a
    /// run that skips while waiting for it sits in an ignore state built
    /// inside the group, without the Stop edges of earlier negations.
    pub optional_group_head: bool,
}

/// Accumulated constraints while walking from a position to the next take.
#[derive(Clone, Default)]
struct Acc<'p> {
    nots: Vec<&'p Condition>,
    not_next: Vec<&'p Condition>,
    not_next_at: Vec<Pos>,
    until: Option<&'p Condition>,
    until_skip: bool,
    greedy: Vec<Greedy<'p>>,
    greedy_early_exit: bool,
    greedy_via_state: bool,
    exits: Vec<Pos>,
    sticky: Option<Pos>,
    optional_group_head: bool,
    /// `not followed by` conditions pushed since the last element or
    /// `not next` passed.
    recent_follow: usize,
    /// Groups entered on this walk with nothing taken yet.
    empty_groups: Vec<Pos>,
    /// The last thing passed over was a `not` element (and nothing after).
    trailing: Option<(Contiguity, Option<DurationMs>)>,
}

impl Acc<'_> {
    /// The walk goes on through a PROCEED of an intermediate state: greedy
    /// restrictions on that state bind only the event the run passes on, and
    /// a completion on the way is restricted too.
    fn pass_state(&mut self) {
        if !self.greedy.is_empty() {
            self.greedy_via_state = true;
        }
        for g in &mut self.greedy {
            g.2 = false;
        }
    }
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
        if acc.empty_groups.iter().any(|g| g.as_slice() == path) {
            // A group iteration that took nothing: no transition (this also
            // bounds the walk for groups made only of optional elements).
            return;
        }
        let el = self.element(path);
        let (index, k) = *path.last().expect("non-empty path");
        let parent = &path[..path.len() - 1];
        let (min, max) = bounds(el);
        if max.map_or(true, |m| k < m) {
            let mut rep = acc.clone();
            rep.trailing = None;
            // A `not followed by` right after a repeating element is also
            // enforced between its repetitions (from the first one on).
            if let Some(next) = self.following(path) {
                if next.contiguity == Contiguity::NotFollowedBy {
                    rep.nots.push(self.not_condition(next));
                }
            }
            rep.until = el.until.as_ref();
            rep.until_skip = true;
            if matches!(el.kind, ElementKind::Group(_)) && max.is_none() && k > min {
                // The next loop iteration is reached through the loop's
                // dummy state.
                rep.pass_state();
            }
            if let ElementKind::Group(inner) = &el.kind {
                let counted = el.quantifier != Quantifier::One;
                let head_is_stage = matches!(inner.elements[0].kind, ElementKind::Stage(_));
                if counted && !el.optional && k >= min && head_is_stage {
                    rep.sticky = Some(path.to_vec());
                }
            }
            let mut next_path = path.to_vec();
            next_path.last_mut().expect("non-empty").1 = k + 1;
            // A group's first stage repeats with the group's inner
            // contiguity, not its own (Flink's `getInnerIgnoreCondition`).
            let inner = if is_group_head_stage(el, path) {
                self.element(parent).inner
            } else {
                el.inner
            };
            self.enter(&next_path, inner_gap(inner), rep, out);
        }
        // Flink adds no PROCEED to the optional states of a group's first
        // stage: its optional occurrences cannot end the element early.
        let leaves = k >= min && !(is_group_head_stage(el, path) && max.is_some_and(|m| k < m));
        if leaves {
            let mut leave = acc;
            leave.exits.push(path.to_vec());
            if max.map_or(true, |m| k < m) {
                leave.pass_state();
            }
            if max.map_or(true, |m| k < m)
                && leave
                    .trailing
                    .is_some_and(|(c, _)| c == Contiguity::NotNext)
            {
                // The `not next` at the end of this group iteration leads to
                // the next iteration, not to the end: Flink checks it with a
                // PROCEED (on the event just taken, for a completion).
                leave.trailing = None;
            }
            if el.greedy && is_variable(el) {
                leave
                    .greedy
                    .push((self.element_condition(el), el.until.as_ref(), true));
                leave.greedy_early_exit |= max.is_some_and(|m| k < m);
            }
            self.next_in_seq(parent, index + 1, leave, out);
        }
    }

    /// Greedy restrictions on the first state of the stage at `path`: the
    /// greedy elements whose next state it is, whatever way a run arrives
    /// (Flink restricts the sink *state*, shared by every path into it).
    fn state_greedy(&self, path: &[(usize, u32)]) -> Vec<Greedy<'p>> {
        let (index, k) = *path.last().expect("position");
        if k > 1 {
            return Vec::new();
        }
        let parent = &path[..path.len() - 1];
        if index > 0 {
            let seq = self.seq_of(parent);
            let before = seq.elements[..index]
                .iter()
                .rev()
                .find(|e| e.contiguity != Contiguity::NotFollowedBy);
            return match before {
                Some(p) if p.contiguity != Contiguity::NotNext => self.last_greedy(p),
                _ => Vec::new(),
            };
        }
        let Some(&(_, group_iteration)) = parent.last() else {
            return Vec::new();
        };
        let group = self.element(parent);
        let (min, max) = bounds(group);
        if group_iteration == 1 {
            return self.state_greedy(parent);
        }
        match (&group.kind, max) {
            // A later iteration's head is the next state of the group's last
            // element (for a loop: from the last required iteration on).
            (ElementKind::Group(inner), Some(_)) => {
                self.last_greedy(inner.elements.last().expect("group"))
            }
            (ElementKind::Group(inner), None) if group_iteration > min => {
                self.last_greedy(inner.elements.last().expect("group"))
            }
            _ => Vec::new(),
        }
    }

    /// The greedy stage that ends `el` (through non-looping groups).
    fn last_greedy(&self, el: &'p Element) -> Vec<Greedy<'p>> {
        match (&el.kind, bounds(el).1) {
            (ElementKind::Stage(_), _) if el.greedy && is_variable(el) => {
                vec![(self.element_condition(el), el.until.as_ref(), true)]
            }
            (ElementKind::Group(inner), Some(_)) => {
                self.last_greedy(inner.elements.last().expect("group"))
            }
            _ => Vec::new(),
        }
    }

    /// The `not followed by` conditions right before the element at `path`
    /// (through optional elements and other negations, as Flink's
    /// `getCurrentNotCondition`): the Stop edges of the element's own
    /// separate ignore states.
    pub fn preceding_nots(&self, path: &[(usize, u32)]) -> Vec<&'p Condition> {
        let (index, _) = *path.last().expect("position");
        let seq = self.seq_of(&path[..path.len() - 1]);
        let mut out = Vec::new();
        for el in seq.elements[..index].iter().rev() {
            if el.contiguity == Contiguity::NotFollowedBy {
                out.push(self.not_condition(el));
            } else if !el.optional {
                break;
            }
        }
        out
    }

    /// The element after the one at `path`; for the last element of a group,
    /// the element after the group (Flink's `followingPattern` is not reset
    /// when the compiler enters a group).
    fn following(&self, path: &[(usize, u32)]) -> Option<&'p Element> {
        let mut depth = path.len();
        while depth > 0 {
            let parent = &path[..depth - 1];
            let index = path[depth - 1].0;
            if let Some(next) = self.seq_of(parent).elements.get(index + 1) {
                return Some(next);
            }
            depth -= 1;
        }
        None
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
                acc.recent_follow += 1;
                acc.trailing = Some((Contiguity::NotFollowedBy, el.within));
                self.next_in_seq(parent, j + 1, acc, out);
            }
            Contiguity::NotNext => {
                // Flink drops a `not followed by` right before a `not next`:
                // the next element's states only collect negations through
                // optional elements and other `not followed by`.
                let keep = acc.nots.len() - acc.recent_follow;
                acc.nots.truncate(keep);
                acc.recent_follow = 0;
                acc.pass_state();
                acc.not_next.push(self.not_condition(el));
                acc.not_next_at.push(parent.to_vec());
                acc.trailing = Some((Contiguity::NotNext, el.within));
                self.next_in_seq(parent, j + 1, acc, out);
            }
            c => {
                acc.trailing = None;
                acc.recent_follow = 0;
                let mut path = parent.to_vec();
                path.push((j, 1));
                // `until` also forbids taking the first element, but the
                // wait for it may still skip such an event.
                let mut first = acc.clone();
                first.until = el.until.as_ref();
                first.until_skip = false;
                self.enter(&path, outer_gap(c), first, out);
                if el.optional {
                    // Skipping passes this element's first state; its own
                    // greedy restriction binds the next state, where the run
                    // then waits.
                    acc.pass_state();
                    // Skipping a greedy element restricts what follows too (the
                    // PROCEED of an optional greedy state is ANDed with "not
                    // its condition", whatever its counts).
                    if el.greedy {
                        acc.greedy.push((
                            self.element_condition(el),
                            el.until.as_ref(),
                            is_variable(el),
                        ));
                        // That PROCEED also decides a completion, on the
                        // event just taken.
                        acc.greedy_via_state = true;
                    }
                    // A greedy stage ending a skipped non-looping group
                    // restricts the same next state (the group's sink is its
                    // sink; a loop body has its own dummy state).
                    let mut last = el;
                    while let (ElementKind::Group(inner), (_, Some(_))) = (&last.kind, bounds(last))
                    {
                        last = inner.elements.last().expect("non-empty group");
                        if last.greedy && is_variable(last) {
                            acc.greedy.push((
                                self.element_condition(last),
                                last.until.as_ref(),
                                true,
                            ));
                        }
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
                // (`acc.empty_groups` ends here: this take fills them.)
                target: Target::Take(path.to_vec()),
                gap,
                nots: acc.nots,
                not_next: acc.not_next,
                not_next_at: acc.not_next_at,
                until: acc.until,
                until_skip: acc.until_skip,
                greedy: {
                    let mut greedy = acc.greedy;
                    greedy.extend(self.state_greedy(path));
                    greedy
                },
                greedy_early_exit: acc.greedy_early_exit,
                greedy_via_state: acc.greedy_via_state,
                exits: acc.exits,
                sticky: acc.sticky,
                optional_group_head: acc.optional_group_head,
            }),
            ElementKind::Group(inner) => {
                let mut first = path.to_vec();
                first.push((0, 1));
                let mut acc = acc;
                acc.empty_groups.push(path.to_vec());
                let el = self.element(path);
                acc.optional_group_head = el.optional && path.last().is_some_and(|p| p.1 == 1);
                let mut inside = acc.clone();
                inside.until = inner.elements[0].until.as_ref();
                inside.until_skip = false;
                // A group that comes first in a group is entered strictly
                // (Flink's `begin(Pattern)` is STRICT and the head of the
                // inner group takes that group's own strategy).
                let head_gap = match inner.elements[0].kind {
                    ElementKind::Group(_) => Gap::Strict,
                    ElementKind::Stage(_) => gap,
                };
                self.enter(&first, head_gap, inside, out);
                // The first stage of a group cannot be skipped as optional
                // (no PROCEED on a group head's optional state); a first
                // element that is itself a group can.
                let head = &inner.elements[0];
                if head.optional && matches!(head.kind, ElementKind::Group(_)) {
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
            not_next_at: acc.not_next_at,
            until: None,
            until_skip: false,
            greedy: acc.greedy,
            greedy_early_exit: acc.greedy_early_exit,
            greedy_via_state: acc.greedy_via_state,
            exits: acc.exits,
            sticky: None,
            optional_group_head: false,
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

/// Is this a stage element that comes first in a group's sequence?
fn is_group_head_stage(el: &Element, path: &[(usize, u32)]) -> bool {
    matches!(el.kind, ElementKind::Stage(_)) && path.len() >= 2 && path[path.len() - 1].0 == 0
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
