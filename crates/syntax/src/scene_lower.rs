//! Lowering a scene: AST [`SceneDecl`] → IR [`Scene`], with the rules it
//! holds made (a rule with parameters lowered once for this scene, with
//! its values: [`crate::template::instantiate`]) and every check of
//! `docs/language.md` §11: its outcomes (named once, `default`,
//! `fallback`, `late` among them, thresholds rising with outcomes never
//! milder, list checks the most severe first), its rules (each known,
//! tags that name some, no skip strategy, every action given an outcome),
//! its values (each taken by a rule, of the parameter's type, none
//! missing).
//!
//! Diagnostics are in the scene's source; a label may point into the
//! source of a rule it holds (a rule's action, skip clause, parameter).

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{
    self, Binding, Check, Constant, ExprKind, Ident, Literal, RuleRef, SceneClauseKind, SceneDecl,
};
use crate::diagnostic::{Diagnostic, DiagnosticKind, Label};
use crate::event::FieldPath;
use crate::factor::{
    accepts, constant_value, literal_phrase, no_stages, type_help, type_phrase, Factors,
    MAX_FACTOR_EXPANSIONS,
};
use crate::lookup::Declarations;
use crate::lower_expr::{closest, ExprCx};
use crate::pattern::Pattern;
use crate::primitives::{DurationMs, Span};
use crate::scene::{
    ActionOutcome, HitPolicy, ListCheck, OutcomeId, Parameter, Scene, SceneRule, Threshold,
};
use crate::template::{instantiate, RuleInfo};

/// Most outcomes a scene may name.
pub const MAX_OUTCOMES: usize = 256;

/// What a scene is lowered against: the rule set as loaded so far.
pub(crate) struct SceneInput<'a> {
    /// Lists and indicators.
    pub decls: &'a Declarations,
    /// Factors.
    pub factors: &'a Factors,
    /// Every rule, valid or not, in load order.
    pub rules: &'a [RuleInfo],
    /// Each rule's index in `rules`, by name.
    pub rule_names: &'a HashMap<String, usize>,
    /// The scene's source.
    pub source: usize,
}

/// A lowered scene: the scene (`None` when it has an error), the
/// instances made for it (each with the source of its rule), and what was
/// said.
pub(crate) struct LoweredScene {
    /// The scene.
    pub scene: Option<Scene>,
    /// The patterns made for it: its rules with parameters.
    pub instances: Vec<(Pattern, usize)>,
    /// Errors and warnings, in the scene's source.
    pub diagnostics: Vec<Diagnostic>,
    /// The names of the rules it holds (with an error or not).
    pub held: Vec<String>,
}

/// Lowers `s` (see the module docs).
pub(crate) fn lower_scene(cx: &SceneInput<'_>, s: &SceneDecl) -> LoweredScene {
    let mut l = Lowerer {
        cx,
        scene: &s.name.name,
        out: Vec::new(),
        outcomes: Vec::new(),
    };
    let clauses = l.clauses(s);
    l.outcomes(s, clauses.outcomes);
    let known = clauses.outcomes.is_some();
    let default = clauses
        .default
        .and_then(|o| l.outcome(o, known))
        .unwrap_or(OutcomeId(0));
    let fallback = match clauses.fallback {
        Some(o) => l.outcome(o, known),
        None => {
            l.error(
                s.name.span,
                format!("scene `{}` has no `fallback`", s.name.name),
                "say what a client gets when no decision comes within the deadline, e.g. `fallback review`",
            );
            None
        }
    };
    let late = clauses.late.and_then(|o| l.outcome(o, known)).or(fallback);
    let deadline = l.deadline(s, clauses.deadline);
    let entry = clauses.when.map(|e| l.event_expr(e));
    let id = clauses.id.map(|p| {
        FieldPath(
            p.segments
                .iter()
                .map(|s| Arc::from(s.name.as_str()))
                .collect(),
        )
    });
    let held = l.held(s, &clauses.refs);
    let parameters = l.bindings(&clauses.bindings, &held);
    let lines = l.lines(&clauses.lines, known);
    let (rules, instances, complete) = l.rules(&held, &clauses.bindings, &lines, known);
    l.check_actions(&lines, &held);
    let ok = complete && !l.out.iter().any(Diagnostic::is_error);
    let scene = match (ok, fallback, late) {
        (true, Some(fallback), Some(late)) => Some(Scene {
            name: s.name.name.clone(),
            doc: (!s.doc.is_empty()).then(|| s.doc.join("\n")),
            entry,
            id,
            outcomes: l
                .outcomes
                .iter()
                .map(|o| Arc::from(o.name.as_str()))
                .collect(),
            default,
            fallback,
            late,
            deadline,
            hit: clauses.hit.unwrap_or_default(),
            list_checks: lines.lists,
            actions: lines.actions.into_iter().map(|(a, _)| a).collect(),
            thresholds: lines.thresholds,
            rules,
            parameters,
            span: s.name.span,
        }),
        _ => None,
    };
    LoweredScene {
        scene,
        instances: if ok { instances } else { Vec::new() },
        diagnostics: l.out,
        held: held.iter().map(|h| cx.rules[h.rule].name.clone()).collect(),
    }
}

/// The clauses of a scene, sorted by kind.
#[derive(Default)]
struct Clauses<'s> {
    when: Option<&'s ast::Expr>,
    id: Option<&'s ast::Path>,
    refs: Vec<&'s RuleRef>,
    bindings: Vec<&'s Binding>,
    outcomes: Option<&'s [Ident]>,
    default: Option<&'s Ident>,
    fallback: Option<&'s Ident>,
    late: Option<&'s Ident>,
    deadline: Option<&'s ast::Duration>,
    hit: Option<HitPolicy>,
    /// Outcome lines: the outcome, what gives it, the line.
    lines: Vec<(&'s Ident, &'s Check, Span)>,
}

/// The outcome lines, checked and sorted by kind.
#[derive(Default)]
struct Lines {
    /// `o if action a`, with where each is written.
    actions: Vec<(ActionOutcome, Span)>,
    /// `o if score >= n`.
    thresholds: Vec<Threshold>,
    /// `o if x in list`.
    lists: Vec<ListCheck>,
}

/// A rule a scene holds: its index in the rule set, where the scene names
/// it.
struct Held {
    rule: usize,
    at: Span,
}

struct Lowerer<'c, 'a> {
    cx: &'c SceneInput<'a>,
    scene: &'c str,
    out: Vec<Diagnostic>,
    /// The scene's outcomes, mildest first.
    outcomes: Vec<Ident>,
}

impl<'s> Lowerer<'_, '_> {
    fn push(&mut self, d: Diagnostic) {
        self.out.push(d.in_source(self.cx.source));
    }

    fn error(&mut self, span: Span, message: String, help: &str) {
        let mut d = Diagnostic::error(DiagnosticKind::Scene, span, message);
        if !help.is_empty() {
            d = d.with_help(help);
        }
        self.push(d);
    }

    /// `d`, in the scene's source, with a label in the source of a rule.
    fn push_with(&mut self, d: Diagnostic, span: Span, message: &str, source: usize) {
        let mut d = d.in_source(self.cx.source);
        d.labels.push(Label {
            span,
            message: message.to_string(),
            source,
        });
        self.out.push(d);
    }

    fn clauses(&mut self, s: &'s SceneDecl) -> Clauses<'s> {
        let mut c = Clauses::default();
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for clause in &s.clauses {
            let kind = &clause.kind;
            match kind {
                SceneClauseKind::Rules(refs) => c.refs.extend(refs),
                SceneClauseKind::With(bindings) => c.bindings.extend(bindings),
                SceneClauseKind::Outcome { outcome, check } => {
                    c.lines.push((outcome, check, clause.span));
                }
                _ => {
                    let kw = kind.keyword();
                    if let Some(&first) = seen.get(kw) {
                        let d = Diagnostic::error(
                            DiagnosticKind::Duplicate,
                            clause.span,
                            format!("the clause `{kw}` is given twice"),
                        )
                        .with_label(first, "first given here");
                        self.push(d);
                        continue;
                    }
                    seen.insert(kw, clause.span);
                    match kind {
                        SceneClauseKind::When(e) => c.when = Some(e),
                        SceneClauseKind::Id(p) => c.id = Some(p),
                        SceneClauseKind::Outcomes(o) => c.outcomes = Some(o),
                        SceneClauseKind::Default(o) => c.default = Some(o),
                        SceneClauseKind::Fallback(o) => c.fallback = Some(o),
                        SceneClauseKind::Late(o) => c.late = Some(o),
                        SceneClauseKind::Deadline(d) => c.deadline = Some(d),
                        SceneClauseKind::Hit(h) => c.hit = Some(*h),
                        SceneClauseKind::Rules(_)
                        | SceneClauseKind::With(_)
                        | SceneClauseKind::Outcome { .. } => {}
                    }
                }
            }
        }
        c
    }

    /// `outcomes a < b < c`: each named once.
    fn outcomes(&mut self, s: &SceneDecl, outcomes: Option<&[Ident]>) {
        let Some(outcomes) = outcomes else {
            self.error(
                s.name.span,
                format!("scene `{}` has no `outcomes`", s.name.name),
                "name its outcomes mildest first, e.g. `outcomes approve < review < decline`",
            );
            return;
        };
        if outcomes.len() > MAX_OUTCOMES {
            self.push(Diagnostic::error(
                DiagnosticKind::Limit,
                outcomes[MAX_OUTCOMES].span,
                format!("a scene has at most {MAX_OUTCOMES} outcomes"),
            ));
            return;
        }
        for o in outcomes {
            if let Some(first) = self.outcomes.iter().find(|f| f.name == o.name) {
                let d = Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    o.span,
                    format!("the outcome `{}` is named twice", o.name),
                )
                .with_label(first.span, "first named here");
                self.push(d);
                continue;
            }
            self.outcomes.push(o.clone());
        }
    }

    /// The outcome `o` names (an error when none; said only when the
    /// outcomes are `known`).
    fn outcome(&mut self, o: &Ident, known: bool) -> Option<OutcomeId> {
        if let Some(i) = self.outcomes.iter().position(|x| x.name == o.name) {
            return u16::try_from(i).ok().map(OutcomeId);
        }
        if known {
            let names: Vec<&str> = self.outcomes.iter().map(|x| x.name.as_str()).collect();
            let help = match closest(&o.name, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("the scene's outcomes: {}", names.join(", ")),
            };
            let d = Diagnostic::error(
                DiagnosticKind::UnknownName,
                o.span,
                format!("`{}` is not an outcome of scene `{}`", o.name, self.scene),
            )
            .with_help(help);
            self.push(d);
        }
        None
    }

    fn deadline(&mut self, s: &SceneDecl, d: Option<&ast::Duration>) -> DurationMs {
        let Some(d) = d else {
            self.error(
                s.name.span,
                format!("scene `{}` has no `deadline`", s.name.name),
                "say how long a client waits for a decision by default, e.g. `deadline 200ms`",
            );
            return 0;
        };
        match d.millis() {
            Some(ms) if ms > 0 => ms,
            Some(_) => {
                self.error(
                    d.span,
                    "a deadline of 0ms leaves no time to decide".to_string(),
                    "",
                );
                0
            }
            None => {
                self.push(Diagnostic::error(
                    DiagnosticKind::Limit,
                    d.span,
                    "this duration is too long",
                ));
                0
            }
        }
    }

    /// An expression over the event alone (`when`, a list check's value).
    fn event_expr(&mut self, e: &ast::Expr) -> crate::expr::Expr {
        let mut found = Vec::new();
        let lowered = ExprCx {
            decls: self.cx.decls,
            factors: self.cx.factors,
            params: None,
            budget: MAX_FACTOR_EXPANSIONS,
            in_indicator: false,
            stages: no_stages(),
            in_select: false,
            diagnostics: &mut found,
        }
        .lower(e);
        for d in found {
            self.push(d);
        }
        lowered
    }

    /// The rules the scene holds, in its order: its `rules` items as
    /// written (a tag's rules in load order), then its own rules; each
    /// once.
    fn held(&mut self, s: &SceneDecl, refs: &[&RuleRef]) -> Vec<Held> {
        let mut held: Vec<Held> = Vec::new();
        let mut add = |rule: usize, at: Span| {
            if !held.iter().any(|h| h.rule == rule) {
                held.push(Held { rule, at });
            }
        };
        let mut named = false;
        for r in refs {
            named = true;
            match r {
                RuleRef::Name(n) => match self.cx.rule_names.get(&n.name) {
                    Some(&i) => add(i, n.span),
                    None => {
                        let names: Vec<&str> =
                            self.cx.rules.iter().map(|r| r.name.as_str()).collect();
                        let mut d = Diagnostic::error(
                            DiagnosticKind::UnknownName,
                            n.span,
                            format!("there is no rule `{}`", n.name),
                        );
                        d = match closest(&n.name, &names) {
                            Some(best) => d.with_help(format!("did you mean `{best}`?")),
                            None => d.with_help(
                                "a scene names the rules of its own file and of the files loaded before it",
                            ),
                        };
                        self.push(d);
                    }
                },
                RuleRef::Tagged(t) => {
                    let mut any = false;
                    for (i, rule) in self.cx.rules.iter().enumerate() {
                        if rule.tags.contains(&t.value) {
                            add(i, t.span);
                            any = true;
                        }
                    }
                    if !any {
                        let mut tags: Vec<&str> = self
                            .cx
                            .rules
                            .iter()
                            .flat_map(|r| r.tags.iter().map(String::as_str))
                            .collect();
                        tags.sort_unstable();
                        tags.dedup();
                        let mut d = Diagnostic::error(
                            DiagnosticKind::UnknownName,
                            t.span,
                            format!("no rule is tagged `{}`", t.value),
                        );
                        if let Some(best) = closest(&t.value, &tags) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        }
                        self.push(d);
                    }
                }
            }
        }
        for p in &s.patterns {
            named = true;
            if let Some(&i) = self.cx.rule_names.get(&p.name.name) {
                add(i, p.name.span);
            }
        }
        if !named {
            self.error(
                s.name.span,
                format!("scene `{}` holds no rule", s.name.name),
                "name its rules (`rules a, b` or `rules tagged \"t\"`), or write them inside it",
            );
        }
        held
    }

    /// `with name = value`: each name given once and taken by a rule of
    /// the scene, each value of the type of every parameter it is given
    /// to.
    fn bindings(&mut self, bindings: &[&Binding], held: &[Held]) -> Vec<Parameter> {
        let mut out: Vec<Parameter> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for b in bindings {
            if let Some(&first) = seen.get(b.name.name.as_str()) {
                let d = Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    b.name.span,
                    format!("the parameter `{}` is given twice", b.name.name),
                )
                .with_label(first, "first given here");
                self.push(d);
                continue;
            }
            seen.insert(&b.name.name, b.name.span);
            let mut taken = false;
            for h in held {
                let rule = &self.cx.rules[h.rule];
                let Some(p) = rule.params.iter().find(|p| p.name == b.name.name) else {
                    continue;
                };
                taken = true;
                let Some(ty) = p.ty else {
                    continue;
                };
                if !accepts(ty, &b.value.literal) {
                    let d = Diagnostic::error(
                        DiagnosticKind::BadArguments,
                        b.value.span,
                        format!(
                            "the parameter `{}` of rule `{}` is {}, and this is {}",
                            b.name.name,
                            rule.name,
                            type_phrase(ty),
                            literal_phrase(&b.value.literal)
                        ),
                    )
                    .with_help(type_help(ty));
                    let (span, source) = (p.span, rule.source);
                    self.push_with(d, span, "the parameter", source);
                }
            }
            if !taken {
                let mut names: Vec<&str> = held
                    .iter()
                    .flat_map(|h| self.cx.rules[h.rule].params.iter().map(|p| p.name.as_str()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let mut d = Diagnostic::error(
                    DiagnosticKind::UnknownName,
                    b.name.span,
                    format!(
                        "no rule of scene `{}` takes a parameter `{}`",
                        self.scene, b.name.name
                    ),
                );
                d = match closest(&b.name.name, &names) {
                    Some(best) => d.with_help(format!("did you mean `{best}`?")),
                    None if names.is_empty() => {
                        d.with_help("none of the scene's rules has parameters")
                    }
                    None => d.with_help(format!("their parameters: {}", names.join(", "))),
                };
                self.push(d);
            }
            out.push(Parameter {
                name: Arc::from(b.name.name.as_str()),
                value: constant_value(&b.value.literal),
                written: Arc::from(crate::print::literal_text(&b.value.literal).as_str()),
            });
        }
        out
    }

    /// The outcome lines: outcomes known, an action given an outcome once,
    /// thresholds rising with outcomes never milder, list checks the most
    /// severe first.
    fn lines(&mut self, lines: &[(&Ident, &Check, Span)], known: bool) -> Lines {
        let mut out = Lines::default();
        let mut last_threshold: Option<((f64, bool), OutcomeId, Span)> = None;
        let mut last_list: Option<(OutcomeId, Span)> = None;
        for &(outcome, check, span) in lines {
            let id = self.outcome(outcome, known);
            match check {
                Check::Action(a) => {
                    if let Some((_, first)) = out.actions.iter().find(|(x, _)| *x.action == *a.name)
                    {
                        let d = Diagnostic::error(
                            DiagnosticKind::Duplicate,
                            a.span,
                            format!("the action `{}` is given an outcome twice", a.name),
                        )
                        .with_label(*first, "first given here");
                        self.push(d);
                        continue;
                    }
                    if let Some(id) = id {
                        out.actions.push((
                            ActionOutcome {
                                action: Arc::from(a.name.as_str()),
                                outcome: id,
                            },
                            span,
                        ));
                    }
                }
                Check::Score { inclusive, value } => {
                    let score = constant_number(value);
                    // (`>= n` comes before `> n`: it is reached first)
                    let key = (score, !*inclusive);
                    if let (Some((before, was, at)), Some(id)) = (last_threshold, id) {
                        if key.0 < before.0 || (key.0 == before.0 && key.1 <= before.1) {
                            let d = Diagnostic::error(
                                DiagnosticKind::Scene,
                                span,
                                "the score thresholds are out of order: each must be higher than the one before",
                            )
                            .with_label(at, "the threshold before")
                            .with_help("write the thresholds from the lowest to the highest");
                            self.push(d);
                        } else if id < was {
                            let d = Diagnostic::error(
                                DiagnosticKind::Scene,
                                span,
                                format!(
                                    "the score thresholds are out of order: a higher score gives `{}`, milder than `{}` below it",
                                    outcome.name,
                                    self.outcomes[was.index()].name
                                ),
                            )
                            .with_label(at, "the lower threshold")
                            .with_help("a higher score gives an outcome at least as severe");
                            self.push(d);
                        }
                    }
                    if let Some(id) = id {
                        last_threshold = Some((key, id, span));
                        out.thresholds.push(Threshold {
                            score,
                            inclusive: *inclusive,
                            outcome: id,
                            span,
                        });
                    }
                }
                Check::List(e) => {
                    let ExprKind::InList(value, list) = &e.kind else {
                        self.error(
                            e.span,
                            "an outcome line gives its outcome `if action NAME`, `if score >= N` or on a list check `if VALUE in LIST`".to_string(),
                            "",
                        );
                        continue;
                    };
                    let lowered = self.event_expr(value);
                    let mut found = Vec::new();
                    let list = crate::lower_decl::resolve_list(self.cx.decls, list, &mut found);
                    for d in found {
                        self.push(d);
                    }
                    if let (Some((was, at)), Some(id)) = (last_list, id) {
                        if id > was {
                            let d = Diagnostic::error(
                                DiagnosticKind::Scene,
                                span,
                                format!(
                                    "the list checks are out of order: this one gives `{}`, more severe than `{}` before it",
                                    outcome.name,
                                    self.outcomes[was.index()].name
                                ),
                            )
                            .with_label(at, "checked before")
                            .with_help("the first list that holds the value decides: write the block lists first");
                            self.push(d);
                        }
                    }
                    if let (Some(list), Some(id)) = (list, id) {
                        last_list = Some((id, span));
                        out.lists.push(ListCheck {
                            value: lowered,
                            list,
                            outcome: id,
                            label: Arc::from(crate::print::print_expr(e).as_str()),
                            span,
                        });
                    }
                }
            }
        }
        out
    }

    /// The scene's rules: checked (no skip strategy, every action given an
    /// outcome, every parameter a value) and made (a rule with parameters
    /// once for this scene). `complete` is false when a rule it holds has
    /// an error of its own.
    fn rules(
        &mut self,
        held: &[Held],
        bindings: &[&Binding],
        lines: &Lines,
        known: bool,
    ) -> (Vec<SceneRule>, Vec<(Pattern, usize)>, bool) {
        let mut rules = Vec::new();
        let mut instances = Vec::new();
        let mut complete = true;
        let values: HashMap<&str, &Literal> = bindings
            .iter()
            .map(|b| (b.name.name.as_str(), &b.value.literal))
            .collect();
        for h in held {
            let rule = &self.cx.rules[h.rule];
            if !rule.valid {
                complete = false;
                continue;
            }
            if let Some(skip) = rule.skip {
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    h.at,
                    format!(
                        "rule `{}` has a skip strategy, which a rule of a scene cannot have: a match it holds back may be dropped later, after the event's decision",
                        rule.name
                    ),
                )
                .with_help("leave the `skip` clause out (`skip no skip`)");
                self.push_with(d, skip, "its skip strategy", rule.source);
            }
            let outcome = match &rule.action {
                Some((a, at)) => {
                    let found = lines.actions.iter().find(|(x, _)| *x.action == **a);
                    // (without outcomes, every outcome line was dropped)
                    if found.is_none() && known {
                        let d = Diagnostic::error(
                            DiagnosticKind::Scene,
                            h.at,
                            format!(
                                "rule `{}` has the action `{a}`, which scene `{}` gives no outcome",
                                rule.name, self.scene
                            ),
                        )
                        .with_help(format!("add a line `OUTCOME if action {a}`"));
                        self.push_with(d, *at, "its action", rule.source);
                    }
                    found.map(|(x, _)| x.outcome)
                }
                None => None,
            };
            let mut parameters = Vec::new();
            let pattern = if rule.decl.is_some() {
                let mut missing = false;
                for p in &rule.params {
                    if !values.contains_key(p.name.as_str()) && p.default.is_none() {
                        missing = true;
                        let d = Diagnostic::error(
                            DiagnosticKind::Scene,
                            h.at,
                            format!(
                                "rule `{}` needs a value for its parameter `{}`, and scene `{}` gives none",
                                rule.name, p.name, self.scene
                            ),
                        )
                        .with_help(format!("add `with {} = ...` to the scene", p.name));
                        self.push_with(d, p.span, "the parameter", rule.source);
                    }
                }
                if missing || !self.bindings_fit(rule, &values) {
                    continue;
                }
                for p in &rule.params {
                    let literal = values
                        .get(p.name.as_str())
                        .copied()
                        .or(p.default.as_ref().map(|d| &d.literal));
                    if let Some(l) = literal {
                        parameters.push(Parameter {
                            name: Arc::from(p.name.as_str()),
                            value: constant_value(l),
                            written: Arc::from(crate::print::literal_text(l).as_str()),
                        });
                    }
                }
                match instantiate(rule, &values, self.scene, self.cx.decls, self.cx.factors) {
                    Ok(p) => {
                        let name = p.name.clone();
                        instances.push((p, rule.source));
                        name
                    }
                    Err(errors) => {
                        self.instance_errors(rule, h.at, errors);
                        continue;
                    }
                }
            } else {
                rule.name.clone()
            };
            rules.push(SceneRule {
                pattern,
                rule: rule.name.clone(),
                instance: rule.decl.is_some(),
                action: rule.action.as_ref().map(|(a, _)| Arc::from(a.as_str())),
                outcome,
                score: rule.score,
                shadow: rule.shadow,
                parameters,
            });
        }
        (rules, instances, complete)
    }

    /// Does each value the scene gives `rule` fit its parameter's type
    /// (an error was said of each that does not)?
    fn bindings_fit(&self, rule: &RuleInfo, values: &HashMap<&str, &Literal>) -> bool {
        rule.params
            .iter()
            .all(|p| match (p.ty, values.get(p.name.as_str())) {
                (Some(ty), Some(l)) => accepts(ty, l),
                _ => true,
            })
    }

    /// Errors a rule gives with the scene's values only, said at the
    /// scene with a label at the rule.
    fn instance_errors(&mut self, rule: &RuleInfo, at: Span, errors: Vec<Diagnostic>) {
        if errors.is_empty() {
            self.error(
                at,
                format!(
                    "rule `{}` cannot be made for scene `{}`",
                    rule.name, self.scene
                ),
                "",
            );
        }
        for e in errors {
            let mut d = Diagnostic::error(
                e.kind,
                at,
                format!(
                    "with the values of scene `{}`, rule `{}` has an error: {}",
                    self.scene, rule.name, e.message
                ),
            );
            d.help = e.help;
            self.push_with(d, e.span, "here", rule.source);
        }
    }

    /// A warning for each `if action a` line no rule of the scene has,
    /// and for score thresholds when no rule has a score (of the rules
    /// held, with an error or not).
    fn check_actions(&mut self, lines: &Lines, held: &[Held]) {
        let rules: Vec<&RuleInfo> = held.iter().map(|h| &self.cx.rules[h.rule]).collect();
        for (a, span) in &lines.actions {
            if !rules
                .iter()
                .any(|r| r.action.as_ref().is_some_and(|(x, _)| *x == *a.action))
            {
                self.push(Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    *span,
                    format!(
                        "no rule of scene `{}` has the action `{}`",
                        self.scene, a.action
                    ),
                ));
            }
        }
        if let Some(first) = lines.thresholds.first() {
            if !rules.is_empty() && rules.iter().all(|r| r.score.is_none()) {
                self.push(Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    first.span,
                    format!(
                        "no rule of scene `{}` has a `score`, so its score is always 0",
                        self.scene
                    ),
                ));
            }
        }
    }
}

/// A threshold's number.
fn constant_number(c: &Constant) -> f64 {
    match c.literal {
        Literal::Int(i) => i as f64,
        Literal::Float(f) => f,
        _ => 0.0,
    }
}
