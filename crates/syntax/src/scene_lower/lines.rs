//! A scene's outcome lines (`OUTCOME if action A`, `if score >= N`, `if
//! VALUE in LIST`): each outcome known, an action given an outcome once,
//! thresholds rising with outcomes never milder, list checks the most
//! severe first.

use std::sync::Arc;

use super::Lowerer;
use crate::ast::{Check, Constant, ExprKind, Ident, Literal};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::primitives::Span;
use crate::scene::{ActionOutcome, ListCheck, OutcomeId, Threshold};

/// The outcome lines, checked and sorted by kind.
#[derive(Default)]
pub(super) struct Lines {
    /// `o if action a`, with where each is written.
    pub actions: Vec<(ActionOutcome, Span)>,
    /// `o if score >= n`.
    pub thresholds: Vec<Threshold>,
    /// `o if x in list`.
    pub lists: Vec<ListCheck>,
}

impl Lowerer<'_, '_> {
    /// The outcome lines, in the order written (`known`: the scene has
    /// outcomes, so an unknown one is said).
    pub(super) fn lines(&mut self, lines: &[(&Ident, &Check, Span)], known: bool) -> Lines {
        let mut out = Lines::default();
        for &(outcome, check, span) in lines {
            let id = self.outcome(outcome, known);
            match check {
                Check::Action(a) => self.action_line(&mut out, a, id, span),
                Check::Score { inclusive, value } => {
                    self.score_line(&mut out, outcome, *inclusive, value, id, span);
                }
                Check::List(e) => self.list_line(&mut out, outcome, e, id, span),
            }
        }
        out
    }

    /// `o if action a`: each action given an outcome once.
    fn action_line(&mut self, out: &mut Lines, a: &Ident, id: Option<OutcomeId>, span: Span) {
        if let Some((_, first)) = out.actions.iter().find(|(x, _)| *x.action == *a.name) {
            let d = Diagnostic::error(
                DiagnosticKind::Duplicate,
                a.span,
                format!("the action `{}` is given an outcome twice", a.name),
            )
            .with_label(*first, "first given here");
            self.push(d);
            return;
        }
        if let Some(id) = id {
            let action = Arc::from(a.name.as_str());
            out.actions.push((
                ActionOutcome {
                    action,
                    outcome: id,
                },
                span,
            ));
        }
    }

    /// `o if score >= n` (or `> n`): higher than the threshold before
    /// (`>= n` comes before `> n`: it is reached first), its outcome never
    /// milder.
    fn score_line(
        &mut self,
        out: &mut Lines,
        outcome: &Ident,
        inclusive: bool,
        value: &Constant,
        id: Option<OutcomeId>,
        span: Span,
    ) {
        let score = constant_number(value);
        let Some(id) = id else {
            return;
        };
        if let Some(before) = out.thresholds.last() {
            let key = |t: &Threshold| (t.score, !t.inclusive);
            let (now, was) = ((score, !inclusive), key(before));
            if now.0 < was.0 || (now.0 == was.0 && now.1 <= was.1) {
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    span,
                    "the score thresholds are out of order: each must be higher than the one before",
                )
                .with_label(before.span, "the threshold before")
                .with_help("write the thresholds from the lowest to the highest");
                self.push(d);
            } else if id < before.outcome {
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    span,
                    format!(
                        "the score thresholds are out of order: a higher score gives `{}`, milder than `{}` below it",
                        outcome.name,
                        self.outcomes[before.outcome.index()].name
                    ),
                )
                .with_label(before.span, "the lower threshold")
                .with_help("a higher score gives an outcome at least as severe");
                self.push(d);
            }
        }
        out.thresholds.push(Threshold {
            score,
            inclusive,
            outcome: id,
            span,
        });
    }

    /// `o if x in list`: a membership of a declared list, its value read
    /// from the event alone, its outcome never more severe than the check
    /// before (the block list is checked first).
    fn list_line(
        &mut self,
        out: &mut Lines,
        outcome: &Ident,
        e: &crate::ast::Expr,
        id: Option<OutcomeId>,
        span: Span,
    ) {
        let ExprKind::InList(value, list) = &e.kind else {
            self.error(
                e.span,
                "an outcome line gives its outcome `if action NAME`, `if score >= N` or on a list check `if VALUE in LIST`".to_string(),
                "",
            );
            return;
        };
        let lowered = self.event_expr(value);
        let mut found = Vec::new();
        let list = crate::lower_decl::resolve_list(self.cx.decls, list, &mut found);
        for d in found {
            self.push(d);
        }
        let (Some(list), Some(id)) = (list, id) else {
            return;
        };
        if let Some(before) = out.lists.last() {
            if id > before.outcome {
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    span,
                    format!(
                        "the list checks are out of order: this one gives `{}`, more severe than `{}` before it",
                        outcome.name,
                        self.outcomes[before.outcome.index()].name
                    ),
                )
                .with_label(before.span, "checked before")
                .with_help("the first list that holds the value decides: write the block lists first");
                self.push(d);
            }
        }
        out.lists.push(ListCheck {
            value: lowered,
            list,
            outcome: id,
            label: Arc::from(crate::print::print_expr(e).as_str()),
            span,
        });
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
