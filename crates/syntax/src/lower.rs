//! Lowering a pattern: AST [`PatternDecl`] → IR [`Pattern`], with the
//! language-only checks (names, duplicate clauses and modifiers, quantifier
//! bounds, unused `where` entries), then [`crate::pattern::validate`] for
//! every rule of the IR. All problems are collected; a pattern with an
//! error is not returned.
//!
//! Quantifiers are normalised as Flink does: `{0,m}` is `{1,m}` plus
//! `optional`, `*` and `{0,}` are `+` plus `optional`, `?` is `optional`.

use std::collections::HashMap;

use crate::ast::{
    self, ClauseKind, ElementKind, Entry, ModifierKind, PatternDecl, QuantifierKind, Skip,
};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::event::FieldPath;
use crate::expr::SelectItem;
use crate::factor::Factors;
use crate::lookup::{Declarations, ListWrite, LookupRead};
use crate::lower_expr::{closest, ExprCx};
use crate::pattern::ElementKind as IrKind;
use crate::pattern::{
    validate, Condition, Element, InnerContiguity, Pattern, PatternErrorKind, Quantifier, Sequence,
    SkipStrategy, Stage, MAX_NESTING, MAX_QUANTIFIER_BOUND,
};
use crate::primitives::{DurationMs, Span, StageId};

/// Lowers one pattern without parameters (a rule with parameters is
/// lowered through [`substitute`] first); `None` when it has an error.
pub(crate) fn lower_pattern(
    p: &PatternDecl,
    decls: &Declarations,
    factors: &Factors,
) -> (Option<Pattern>, Vec<Diagnostic>) {
    let mut l = Lowerer {
        decls,
        factors,
        diagnostics: Vec::new(),
        stages: Vec::new(),
        stage_ids: HashMap::new(),
        untils: Vec::new(),
        in_branch: 0,
        branch_stages: HashMap::new(),
    };
    let mut pattern = l.clauses(p);
    pattern.sequence = l.sequence(&p.sequence, 0);
    for (i, s) in l.stages.iter().enumerate() {
        l.stage_ids
            .entry(s.name.clone())
            .or_insert(StageId(u16::try_from(i).unwrap_or(u16::MAX)));
    }
    let where_entries = l.unique_entries(&p.where_entries, "`where` entry");
    l.resolve_skip(p, &mut pattern);
    let conditions = l.conditions(&where_entries);
    l.attach_conditions(&mut pattern.sequence, &conditions);
    l.check_entries(&where_entries);
    pattern.stages = std::mem::take(&mut l.stages);
    for stage in &mut pattern.stages {
        if let Some(c) = conditions.get(stage.name.as_str()) {
            stage.condition = Condition::Expr(c.clone());
        }
    }
    let select_entries = l.unique_entries(&p.select_entries, "`select` entry");
    pattern.select = select_entries
        .iter()
        .map(|e| {
            let mut item = SelectItem::new(e.name.name.clone(), l.expr(&e.expr, true));
            item.span = e.span;
            item
        })
        .collect();
    pattern.writes = p.effects.iter().filter_map(|e| l.effect(e)).collect();
    // (a `shadow` pattern's writes go to the lists' shadow copies, which
    // only shadow patterns read: `docs/semantics.md`, "Shadow rules")
    pattern.reads = l.reads(&where_entries, &pattern);
    if !pattern.reads.is_empty()
        || !pattern.writes.is_empty()
        || pattern.select.iter().any(|s| s.expr.reads_lookup())
        || pattern.stages.iter().any(|s| match &s.condition {
            Condition::Expr(e) => e.reads_lookup(),
            _ => false,
        })
    {
        pattern.declarations = Some(std::sync::Arc::new(decls.clone()));
    }
    let skip_target = p.clauses.iter().find_map(|c| match &c.kind {
        ClauseKind::Skip(Skip::ToFirst(id) | Skip::ToLast(id)) => Some(id.span),
        _ => None,
    });
    for e in validate(&pattern) {
        let mut d = Diagnostic::from(e);
        if let (DiagnosticKind::Pattern(PatternErrorKind::InvalidSkipTarget), Some(span)) =
            (d.kind, skip_target)
        {
            // The IR only knows the pattern; the target's name is more precise.
            d.span = span;
        }
        l.diagnostics.push(d);
    }
    let ok = !l.diagnostics.iter().any(Diagnostic::is_error);
    if ok && pattern.within.is_none() {
        if let Some(element) = unbounded_loop(&pattern.sequence) {
            l.diagnostics
                .push(unbounded_state_warning(&pattern, element));
        }
    }
    if ok {
        group_heads(&pattern, &pattern.sequence, &mut l.diagnostics);
    }
    (ok.then_some(pattern), l.diagnostics)
}

/// Says where the quantified first stage of a group repeats otherwise than
/// written on it: as in Flink (`getInnerIgnoreCondition` of a group's
/// head), it takes the group's contiguity between its repetitions
/// (relaxed for a group that does not repeat), so its own `consecutive`
/// or `combinations`, or their absence, does not apply there
/// (`docs/semantics.md`, "The first element of a group"). A branch of an
/// alternation keeps its own (difference 5), so only groups are looked at.
fn group_heads(pattern: &Pattern, sequence: &Sequence, out: &mut Vec<Diagnostic>) {
    for element in &sequence.elements {
        match &element.kind {
            IrKind::Group(inner) => {
                let group = match element.quantifier {
                    Quantifier::One => InnerContiguity::Relaxed,
                    _ => element.inner,
                };
                if let Some(head) = inner.elements.first() {
                    if let IrKind::Stage(stage) = head.kind {
                        if head.quantifier != Quantifier::One && head.inner != group {
                            out.push(group_head_warning(pattern, stage, head, element, group));
                        }
                    }
                }
                group_heads(pattern, inner, out);
            }
            IrKind::Alternation(branches) => {
                for branch in branches {
                    group_heads(pattern, branch, out);
                }
            }
            IrKind::Stage(_) => {}
        }
    }
}

/// The warning of [`group_heads`] for `head`, the first element of
/// `group`, whose repetitions follow `contiguity`.
fn group_head_warning(
    pattern: &Pattern,
    stage: StageId,
    head: &Element,
    group: &Element,
    contiguity: InnerContiguity,
) -> Diagnostic {
    let name = pattern
        .stages
        .get(stage.index())
        .map_or("the element", |s| s.name.as_str());
    let short = |c: InnerContiguity| match c {
        InnerContiguity::Relaxed => "relaxed",
        InnerContiguity::Consecutive => "`consecutive`",
        InnerContiguity::Combinations => "`combinations`",
    };
    let long = match contiguity {
        InnerContiguity::Relaxed => "relaxed (other events may come between them)",
        InnerContiguity::Consecutive => "`consecutive` (no other event between them)",
        InnerContiguity::Combinations => "`combinations` (any of them may be left out)",
    };
    let what = match group.quantifier {
        Quantifier::One => "a group that does not repeat",
        _ => "a repeated group",
    };
    Diagnostic::warning(
        DiagnosticKind::GroupHeadContiguity,
        head.span,
        format!(
            "`{name}` is the first element of {what}, so its repetitions are {long}, not {} \
             as written (Flink's rule for the first element of a group)",
            short(head.inner)
        ),
    )
    .with_help(group_head_help(name, head, group, contiguity))
}

/// How to make the first element of `group` read as it runs, or run as
/// it reads.
fn group_head_help(
    name: &str,
    head: &Element,
    group: &Element,
    contiguity: InnerContiguity,
) -> String {
    let fix = match contiguity {
        InnerContiguity::Relaxed => format!(
            "leave `{}` off `{name}`",
            if head.inner == InnerContiguity::Consecutive {
                "consecutive"
            } else {
                "combinations"
            }
        ),
        InnerContiguity::Consecutive => format!("write `consecutive` on `{name}`"),
        InnerContiguity::Combinations => format!("write `combinations` on `{name}`"),
    };
    if group.quantifier == Quantifier::One && !group.is_optional() {
        let within = if group.within.is_some() {
            " (the group's `within` on each of them)"
        } else {
            ""
        };
        format!(
            "a group that does not repeat changes nothing else: write its elements without \
             the parentheses{within} to have `{name}` repeat as written, or {fix} to say what \
             it does"
        )
    } else {
        format!("{fix} to say what it does")
    }
}

/// The alternatives of a group whose only element is an alternation
/// (`(a or b)`).
fn sole_alternation(seq: &ast::Sequence) -> Option<&[ast::Element]> {
    match seq.elements.as_slice() {
        [ast::Element {
            kind: ElementKind::Alternation(alts),
            ..
        }] => Some(alts),
        _ => None,
    }
}

/// The first looping element (`+`, `*`, `{n,}`) that no window bounds: not
/// one with its own `within`, nor one inside a group with a `within`
/// (`docs/semantics.md`, D2). Without a pattern window, a run waiting in it
/// lives for ever: it keeps waiting for one more event.
fn unbounded_loop(sequence: &Sequence) -> Option<&Element> {
    sequence
        .elements
        .iter()
        .filter(|e| e.within.is_none() && !e.is_negation())
        .find_map(|e| match &e.kind {
            _ if e.is_looping() => Some(e),
            IrKind::Group(inner) => unbounded_loop(inner),
            IrKind::Alternation(branches) => branches.iter().find_map(unbounded_loop),
            IrKind::Stage(_) => None,
        })
}

/// Says that partial matches of `pattern` can live for ever, at `element`.
fn unbounded_state_warning(pattern: &Pattern, element: &Element) -> Diagnostic {
    let what = match element.kind {
        IrKind::Stage(s) => pattern
            .stages
            .get(s.index())
            .map_or("this element".to_string(), |s| format!("`{}`", s.name)),
        IrKind::Group(_) => "this group".to_string(),
        IrKind::Alternation(_) => "this alternation".to_string(),
    };
    Diagnostic::warning(
        DiagnosticKind::UnboundedState,
        element.span,
        format!(
            "the pattern has no `within`, so partial matches that reach {what} can wait for \
             more of it for ever: each key keeps up to 10,000 of them (`--max-runs-per-key`), \
             all keys together 4,000,000 (`--max-live-runs`)"
        ),
    )
    .with_help("add `within DURATION` to the pattern (or to this element) to bound how long a match may take")
}

/// State of lowering one pattern.
struct Lowerer<'d> {
    /// The lists and indicators the pattern may name.
    decls: &'d Declarations,
    /// The factors its conditions may call.
    factors: &'d Factors,
    diagnostics: Vec<Diagnostic>,
    /// Stages in pattern order (conditions attached at the end).
    stages: Vec<Stage>,
    /// First stage of each name.
    stage_ids: HashMap<String, StageId>,
    /// Every `until NAME` written.
    untils: Vec<ast::Ident>,
    /// How many alternations enclose the element being lowered.
    in_branch: usize,
    /// Stages first written inside a branch, by name: a later branch
    /// naming one again shares it.
    branch_stages: HashMap<String, StageId>,
}

impl Lowerer<'_> {
    fn error(&mut self, kind: DiagnosticKind, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(kind, span, message));
    }

    fn duplicate(&mut self, what: &str, span: Span, first: Span) {
        self.diagnostics.push(
            Diagnostic::error(
                DiagnosticKind::Duplicate,
                span,
                format!("{what} given twice"),
            )
            .with_label(first, "first given here"),
        );
    }

    fn millis(&mut self, d: &ast::Duration) -> DurationMs {
        d.millis().unwrap_or_else(|| {
            self.error(DiagnosticKind::Limit, d.span, "this duration is too long");
            0
        })
    }

    /// A pattern's or an element's window: positive. `within 0ms` would
    /// let no event join a match (`t < s + 0`), while in the builder (as
    /// in Flink) a zero window means no window at all: in a file it is an
    /// error, as an indicator's `0ms` is, rather than either meaning.
    fn window(&mut self, d: &ast::Duration) -> DurationMs {
        let ms = self.millis(d);
        if ms == 0 && d.millis().is_some() {
            self.error(
                DiagnosticKind::Pattern(PatternErrorKind::InvalidWindow),
                d.span,
                "a window of 0ms lets no event join a match (`t < s + 0`); give a positive \
                 window, or no `within` for none",
            );
        }
        ms
    }

    /// The pattern's clauses (every one at most once).
    fn clauses(&mut self, p: &PatternDecl) -> Pattern {
        let mut pattern = Pattern::new(p.name.name.clone(), Vec::new(), Sequence::default());
        pattern.doc = (!p.doc.is_empty()).then(|| p.doc.join("\n"));
        pattern.skip = SkipStrategy::NoSkip;
        pattern.span = p.name.span;
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for c in &p.clauses {
            let kw = c.kind.keyword();
            if let Some(first) = seen.get(kw) {
                self.duplicate(&format!("the clause `{kw}` is"), c.span, *first);
                continue;
            }
            seen.insert(kw, c.span);
            match &c.kind {
                ClauseKind::PartitionBy(paths) => {
                    pattern.partition_by = paths
                        .iter()
                        .map(|path| {
                            FieldPath(
                                path.segments
                                    .iter()
                                    .map(|s| std::sync::Arc::from(s.name.as_str()))
                                    .collect(),
                            )
                        })
                        .collect();
                }
                ClauseKind::Within(d) => pattern.within = Some(self.window(d)),
                ClauseKind::Skip(_) => {}
                ClauseKind::Timeouts => pattern.emit_timeouts = true,
                ClauseKind::Shadow => pattern.shadow = true,
                ClauseKind::Score(l) => {
                    pattern.attributes.score = Some(match l {
                        ast::Literal::Int(i) => crate::value::Value::Int(*i),
                        ast::Literal::Float(f) => crate::value::Value::Float(*f),
                        _ => crate::value::Value::Null,
                    })
                }
                ClauseKind::Level(i) => pattern.attributes.level = Some(i.name.as_str().into()),
                ClauseKind::Action(i) => pattern.attributes.action = Some(i.name.as_str().into()),
                ClauseKind::Tags(tags) => {
                    pattern.attributes.tags =
                        tags.iter().map(|t| t.value.as_str().into()).collect();
                }
            }
        }
        pattern
    }

    fn resolve_skip(&mut self, p: &PatternDecl, pattern: &mut Pattern) {
        let Some(skip) = p.clauses.iter().find_map(|c| match &c.kind {
            ClauseKind::Skip(s) => Some(s),
            _ => None,
        }) else {
            return;
        };
        pattern.skip = match skip {
            Skip::NoSkip => SkipStrategy::NoSkip,
            Skip::ToNext => SkipStrategy::ToNext,
            Skip::PastLastEvent => SkipStrategy::PastLastEvent,
            Skip::ToFirst(id) | Skip::ToLast(id) => {
                let Some(&stage) = self.stage_ids.get(&id.name) else {
                    self.unknown_stage(id, "`skip` needs a stage of this pattern");
                    return;
                };
                if matches!(skip, Skip::ToFirst(_)) {
                    SkipStrategy::ToFirst(stage)
                } else {
                    SkipStrategy::ToLast(stage)
                }
            }
        };
    }

    fn unknown_stage(&mut self, id: &ast::Ident, context: &str) {
        let names: Vec<&str> = self.stage_ids.keys().map(String::as_str).collect();
        let mut d = Diagnostic::error(
            DiagnosticKind::UnknownName,
            id.span,
            format!("there is no stage `{}` in `match`", id.name),
        )
        .with_help(context.to_string());
        if let Some(best) = closest(&id.name, &names) {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        self.diagnostics.push(d);
    }

    /// Lowers a sequence, registering its stages in pattern order. Depth is
    /// bounded by the parser; the cap here protects hand-made trees.
    fn sequence(&mut self, seq: &ast::Sequence, depth: usize) -> Sequence {
        let mut out = Sequence::default();
        if depth >= MAX_NESTING {
            self.error(
                DiagnosticKind::Limit,
                seq.span,
                format!("groups are nested more than {MAX_NESTING} deep"),
            );
            return out;
        }
        for e in &seq.elements {
            let mut element = match &e.kind {
                ElementKind::Stage(id) => Element::stage(self.stage(id)),
                ElementKind::Group(inner) => match sole_alternation(inner) {
                    // `(a or b)` with the group's quantifier and modifiers:
                    // the IR's alternation element carries them.
                    Some(alts) => self.alternation(alts, depth + 1),
                    None => Element::group(self.sequence(inner, depth + 1)),
                },
                ElementKind::Alternation(alts) => self.alternation(alts, depth),
            };
            element.span = e.span;
            if let Some(c) = &e.connector {
                element.contiguity = c.kind;
            }
            self.quantifier(e, &mut element);
            self.modifiers(e, &mut element);
            out.elements.push(element);
        }
        out
    }

    /// A stage occurrence: a new stage, or, inside a branch of an
    /// alternation, the stage of that name first written in another
    /// branch (a stage may appear once per branch; validation checks that
    /// the occurrences are in different branches of one alternation).
    fn stage(&mut self, id: &ast::Ident) -> StageId {
        if self.in_branch > 0 {
            if let Some(&s) = self.branch_stages.get(&id.name) {
                return s;
            }
        }
        let stage_id = StageId(u16::try_from(self.stages.len()).unwrap_or(u16::MAX));
        let mut stage = Stage::new(id.name.clone(), Condition::True);
        stage.span = id.span;
        self.stages.push(stage);
        if self.in_branch > 0 {
            self.branch_stages.insert(id.name.clone(), stage_id);
        }
        stage_id
    }

    /// `a or (b followed by c) or ...`: each alternative is a branch. A
    /// group without quantifier or modifiers is only the branch's
    /// parentheses: its sequence is the branch.
    fn alternation(&mut self, alts: &[ast::Element], depth: usize) -> Element {
        if depth >= MAX_NESTING {
            let span = alts.iter().map(|a| a.span).reduce(|a, b| a.to(b));
            self.error(
                DiagnosticKind::Limit,
                span.unwrap_or_default(),
                format!("groups are nested more than {MAX_NESTING} deep"),
            );
            return Element::group(Sequence::default());
        }
        self.in_branch += 1;
        let branches = alts
            .iter()
            .map(|a| match &a.kind {
                ElementKind::Group(inner)
                    if a.quantifier.is_none()
                        && a.modifiers.is_empty()
                        && sole_alternation(inner).is_none() =>
                {
                    self.sequence(inner, depth + 1)
                }
                _ => self.sequence(
                    &ast::Sequence {
                        elements: vec![a.clone()],
                        span: a.span,
                    },
                    depth + 1,
                ),
            })
            .collect();
        self.in_branch -= 1;
        Element {
            kind: IrKind::Alternation(branches),
            ..Element::stage(StageId(0))
        }
    }

    fn quantifier(&mut self, e: &ast::Element, out: &mut Element) {
        let Some(q) = &e.quantifier else {
            return;
        };
        let bound = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let (quantifier, optional) = match q.kind {
            QuantifierKind::Optional => (Quantifier::One, true),
            QuantifierKind::Star => (Quantifier::AtLeast(1), true),
            QuantifierKind::Plus => (Quantifier::AtLeast(1), false),
            QuantifierKind::Exactly(n) => (
                Quantifier::Times {
                    min: bound(n),
                    max: bound(n),
                },
                false,
            ),
            QuantifierKind::Range(0, None) => (Quantifier::AtLeast(1), true),
            QuantifierKind::Range(n, None) => (Quantifier::AtLeast(bound(n)), false),
            // Kept as written: the IR's `{0,m}` is `{1,m}` plus optional
            // (`Element::is_optional`), as Flink's `times(0, m)`.
            QuantifierKind::Range(0, Some(m)) => (
                Quantifier::Times {
                    min: 0,
                    max: bound(m),
                },
                false,
            ),
            QuantifierKind::Range(n, Some(m)) => (
                Quantifier::Times {
                    min: bound(n),
                    max: bound(m),
                },
                false,
            ),
        };
        let (min, max) = match quantifier {
            Quantifier::One => (1, 1),
            Quantifier::Times { min, max } => (min.max(1), max),
            Quantifier::AtLeast(n) => (n, n),
        };
        if matches!(
            q.kind,
            QuantifierKind::Exactly(0) | QuantifierKind::Range(0, Some(0))
        ) {
            self.error(
                DiagnosticKind::InvalidQuantifier,
                q.span,
                "this quantifier allows zero events only, which matches nothing; use `?` or `optional` to make the element optional",
            );
        } else if min > max {
            self.error(
                DiagnosticKind::InvalidQuantifier,
                q.span,
                format!("the lower bound {min} is larger than the upper bound {max}"),
            );
        } else if max > MAX_QUANTIFIER_BOUND {
            self.error(
                DiagnosticKind::Limit,
                q.span,
                format!("quantifier bounds are limited to {MAX_QUANTIFIER_BOUND}"),
            );
        } else {
            out.quantifier = quantifier;
            out.optional = optional;
        }
    }

    fn modifiers(&mut self, e: &ast::Element, out: &mut Element) {
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        if out.is_optional() {
            if let Some(q) = &e.quantifier {
                seen.insert("optional", q.span);
            }
        }
        for m in &e.modifiers {
            let kw = m.kind.keyword();
            if let Some(first) = seen.get(kw) {
                if kw == "optional" && e.quantifier.is_some_and(|q| q.span == *first) {
                    self.diagnostics.push(
                        Diagnostic::error(
                            DiagnosticKind::Duplicate,
                            m.span,
                            "the element is already optional because of its quantifier, \
                             so `optional` is given twice (Flink rejects this)",
                        )
                        .with_label(*first, "this quantifier makes it optional"),
                    );
                } else {
                    self.duplicate(&format!("`{kw}` is"), m.span, *first);
                }
                continue;
            }
            seen.insert(kw, m.span);
            match &m.kind {
                ModifierKind::Optional => out.optional = true,
                ModifierKind::Greedy => out.greedy = true,
                ModifierKind::Consecutive | ModifierKind::Combinations => {
                    if out.inner != InnerContiguity::Relaxed {
                        self.error(
                            DiagnosticKind::ConflictingModifiers,
                            m.span,
                            "`consecutive` and `combinations` cannot be used together",
                        );
                        continue;
                    }
                    out.inner = if kw == "consecutive" {
                        InnerContiguity::Consecutive
                    } else {
                        InnerContiguity::Combinations
                    };
                }
                ModifierKind::Until(name) => {
                    self.untils.push(name.clone());
                    // The condition is attached once `where` is lowered.
                    out.until = Some(Condition::True);
                }
                ModifierKind::Within(d) => out.within = Some(self.window(d)),
            }
        }
    }

    /// `where` or `select` entries with unique names (later duplicates are
    /// reported and dropped).
    fn unique_entries<'e>(&mut self, entries: &'e [Entry], what: &str) -> Vec<&'e Entry> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = Vec::new();
        for e in entries {
            if let Some(first) = seen.get(e.name.name.as_str()) {
                self.duplicate(
                    &format!("the {what} `{}` is", e.name.name),
                    e.name.span,
                    *first,
                );
            } else {
                seen.insert(&e.name.name, e.name.span);
                out.push(e);
            }
        }
        out
    }

    /// The list memberships and indicator calls of each stage's condition,
    /// each with its canonical text (once per stage and text), those of
    /// the factors it calls included (their text as the factor writes
    /// them; their value with the call's arguments).
    fn reads(&mut self, entries: &[&Entry], pattern: &Pattern) -> Vec<LookupRead> {
        if self.decls.is_empty() {
            return Vec::new();
        }
        type Params = std::rc::Rc<HashMap<String, crate::expr::Expr>>;
        let mut out: Vec<LookupRead> = Vec::new();
        for entry in entries {
            let Some(stage) = pattern.stage_id(&entry.name.name) else {
                continue;
            };
            // Each expression with the parameters of the factor it is in
            // (`None`: the pattern's own condition).
            let mut todo: Vec<(&ast::Expr, Option<Params>)> = vec![(&entry.expr, None)];
            let mut found = Vec::new();
            let mut budget = crate::factor::MAX_FACTOR_EXPANSIONS;
            while let Some((e, params)) = todo.pop() {
                let reads = match &e.kind {
                    ast::ExprKind::InList(..) => true,
                    ast::ExprKind::Call(f, _) => self.decls.indicator(&f.name).is_some(),
                    _ => false,
                };
                if reads {
                    found.push((e, params.clone()));
                }
                match &e.kind {
                    ast::ExprKind::Literal(_) | ast::ExprKind::Path(_) => {}
                    ast::ExprKind::Unary(_, x) | ast::ExprKind::InList(x, _) => {
                        todo.push((x, params));
                    }
                    ast::ExprKind::Binary(_, x, y) => {
                        todo.push((y, params.clone()));
                        todo.push((x, params));
                    }
                    ast::ExprKind::Chain(x, rest) => {
                        todo.extend(rest.iter().rev().map(|(_, y)| (y, params.clone())));
                        todo.push((x, params));
                    }
                    ast::ExprKind::In(x, items) => {
                        todo.extend(items.iter().rev().map(|y| (y, params.clone())));
                        todo.push((x, params));
                    }
                    ast::ExprKind::Call(f, args) => {
                        let factor = self.factors.get(&f.name).filter(|f| f.valid);
                        if let Some(factor) = factor.filter(|f| f.params.len() == args.len()) {
                            if budget > 0 && self.factors.spend(factor.size) {
                                budget -= 1;
                                let values = args
                                    .iter()
                                    .zip(&factor.params)
                                    .map(|(a, p)| {
                                        (p.name.clone(), self.quiet(a, params.as_deref()))
                                    })
                                    .collect();
                                todo.push((&factor.body, Some(std::rc::Rc::new(values))));
                            }
                        }
                        todo.extend(args.iter().rev().map(|y| (y, params.clone())));
                    }
                }
            }
            for (e, params) in found {
                let label: std::sync::Arc<str> = crate::print::print_expr(e).into();
                if out.iter().any(|r| r.stage == stage && r.label == label) {
                    continue;
                }
                let expr = self.quiet(e, params.as_deref());
                out.push(LookupRead { stage, label, expr });
            }
        }
        out
    }

    /// `e` lowered without a word said: in the pattern's `where`, or in a
    /// factor's condition with these parameters.
    fn quiet(
        &self,
        e: &ast::Expr,
        params: Option<&HashMap<String, crate::expr::Expr>>,
    ) -> crate::expr::Expr {
        let mut quiet = Vec::new();
        ExprCx {
            decls: self.decls,
            factors: self.factors,
            params,
            budget: crate::factor::MAX_FACTOR_EXPANSIONS,
            in_indicator: false,
            stages: if params.is_some() {
                crate::factor::no_stages()
            } else {
                &self.stage_ids
            },
            in_select: false,
            diagnostics: &mut quiet,
        }
        .lower(e)
    }

    /// `then add x to list [for d]`: the value is read from the match like
    /// `select`; the list must be declared.
    fn effect(&mut self, e: &ast::Effect) -> Option<ListWrite> {
        let value = self.expr(&e.value, true);
        let list = crate::lower_decl::resolve_list(self.decls, &e.list, &mut self.diagnostics)?;
        let expiry = e.expiry.as_ref().map(|d| self.millis(d));
        if expiry == Some(0) {
            self.error(
                DiagnosticKind::InvalidDeclaration,
                e.expiry.map_or(e.span, |d| d.span),
                "an entry that lives 0ms is never seen; give a positive lifetime",
            );
        }
        Some(ListWrite {
            op: e.op,
            value,
            list,
            expiry,
            span: e.span,
        })
    }

    fn expr(&mut self, e: &ast::Expr, in_select: bool) -> crate::expr::Expr {
        ExprCx {
            decls: self.decls,
            factors: self.factors,
            params: None,
            budget: crate::factor::MAX_FACTOR_EXPANSIONS,
            in_indicator: false,
            stages: &self.stage_ids,
            in_select,
            diagnostics: &mut self.diagnostics,
        }
        .lower(e)
    }

    /// Every `where` entry lowered, by name.
    fn conditions(&mut self, entries: &[&Entry]) -> HashMap<String, crate::expr::Expr> {
        entries
            .iter()
            .map(|e| (e.name.name.clone(), self.expr(&e.expr, false)))
            .collect()
    }

    /// Replaces each `until` placeholder with its `where` condition, walking
    /// elements in the order [`Lowerer::sequence`] collected the names.
    fn attach_conditions(
        &mut self,
        seq: &mut Sequence,
        conditions: &HashMap<String, crate::expr::Expr>,
    ) {
        let mut next = 0;
        self.attach(seq, conditions, &mut next, 0);
    }

    fn attach(
        &mut self,
        seq: &mut Sequence,
        conditions: &HashMap<String, crate::expr::Expr>,
        next: &mut usize,
        depth: usize,
    ) {
        for e in &mut seq.elements {
            match &mut e.kind {
                crate::pattern::ElementKind::Group(inner) if depth < MAX_NESTING => {
                    self.attach(inner, conditions, next, depth + 1);
                }
                crate::pattern::ElementKind::Alternation(branches) if depth < MAX_NESTING => {
                    for b in branches {
                        self.attach(b, conditions, next, depth + 1);
                    }
                }
                _ => {}
            }
            if e.until.is_none() {
                continue;
            }
            let Some(name) = self.untils.get(*next).cloned() else {
                return;
            };
            *next += 1;
            match conditions.get(&name.name) {
                Some(c) => e.until = Some(Condition::Expr(c.clone())),
                None if self.stage_ids.contains_key(&name.name) => {}
                None => {
                    let names: Vec<&str> = conditions.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::error(
                        DiagnosticKind::UnknownName,
                        name.span,
                        format!("`until {0}` needs a `where` entry `{0}: ...`", name.name),
                    );
                    if let Some(best) = closest(&name.name, &names) {
                        d = d.with_help(format!("did you mean `{best}`?"));
                    }
                    self.diagnostics.push(d);
                }
            }
        }
    }

    /// `until` names that are stages, and `where` entries nothing uses.
    fn check_entries(&mut self, entries: &[&Entry]) {
        let untils = std::mem::take(&mut self.untils);
        for u in &untils {
            if let Some(&stage) = self.stage_ids.get(&u.name) {
                let first = self.stages[stage.index()].span;
                self.diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::UntilUsesStage,
                        u.span,
                        format!(
                            "`{}` is a stage in `match`, so it cannot also be an `until` condition",
                            u.name
                        ),
                    )
                    .with_label(first, "used as a stage here")
                    .with_help("give the `until` condition its own `where` entry"),
                );
            }
        }
        for e in entries {
            let used = self.stage_ids.contains_key(&e.name.name)
                || untils.iter().any(|u| u.name == e.name.name);
            if !used {
                let names: Vec<&str> = self.stage_ids.keys().map(String::as_str).collect();
                let mut d = Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    e.name.span,
                    format!(
                        "the `where` entry `{}` is not used: no stage or `until` has this name",
                        e.name.name
                    ),
                );
                if let Some(best) = closest(&e.name.name, &names) {
                    d = d.with_help(format!("did you mean the stage `{best}`?"));
                }
                self.diagnostics.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests;
