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

use crate::ast::{self, Binding, Check, Ident, RuleRef, SceneClauseKind, SceneDecl};
use crate::diagnostic::{Diagnostic, DiagnosticKind, Label};
use crate::event::FieldPath;
use crate::factor::{no_stages, Factors, MAX_FACTOR_EXPANSIONS};
use crate::lookup::Declarations;
use crate::lower_expr::{closest, ExprCx};
use crate::pattern::Pattern;
use crate::primitives::{DurationMs, Span};
use crate::scene::{HitPolicy, OutcomeId, Scene};
use crate::template::RuleInfo;

mod lines;
mod rules;

use lines::Lines;

/// Most outcomes a scene may name.
pub const MAX_OUTCOMES: usize = 256;

/// Most rules the scenes of one text may hold in all (a rule held by two
/// scenes counts twice).
pub const MAX_SCENE_RULES: usize = 100_000;

/// Most instances of rules with parameters the scenes of one text may make
/// (each is a pattern: as many as a file may hold, `MAX_PATTERNS`).
pub const MAX_INSTANCES: usize = crate::MAX_PATTERNS;

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
    /// How many more rules the text's scenes may hold ([`MAX_SCENE_RULES`]
    /// for each text).
    pub entries_left: &'a std::cell::Cell<usize>,
    /// How many more instances they may make ([`MAX_INSTANCES`]).
    pub instances_left: &'a std::cell::Cell<usize>,
    /// Was a limit said for this text already?
    pub spent: &'a std::cell::Cell<bool>,
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
    if cx.entries_left.get() == 0 {
        // (over the limit of the text, said once: its other scenes are
        // left)
        let mut diagnostics = Vec::new();
        if !cx.spent.replace(true) {
            diagnostics.push(
                Diagnostic::error(DiagnosticKind::Limit, s.name.span, rules::ENTRIES)
                    .in_source(cx.source),
            );
        }
        return LoweredScene {
            scene: None,
            instances: Vec::new(),
            diagnostics,
            held: Vec::new(),
        };
    }
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
    let entry_text = (clauses.when).map(|e| Arc::from(crate::print::print_expr(e).as_str()));
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
            entry_text,
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
}
