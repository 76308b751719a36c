//! Turning builder drafts into IR: stages numbered in pattern order,
//! expression texts parsed and lowered once every stage name is known,
//! closures type-erased.

use std::sync::Arc;

use super::{CondDraft, Draft, DraftKind};
use crate::dsl;
use crate::expr::{BinaryOp, Expr};
use crate::pattern::{
    Condition, Element, ElementKind, NativeCondition, PatternError, PatternErrorKind, Quantifier,
    Sequence, Stage, MAX_NESTING,
};
use crate::primitives::{Span, StageId};
use crate::value::Value;

/// Turns drafts into IR elements, numbering stages in pattern order.
#[derive(Default)]
pub(super) struct Flattener {
    /// Every stage name, in pattern order (known before any expression is
    /// lowered).
    pub names: Vec<String>,
    pub stages: Vec<Stage>,
    pub misuse: Vec<String>,
    pub expr_errors: Vec<PatternError>,
}

/// Collects stage names in pattern order (the order `Flattener` numbers
/// them), with the same depth cap.
pub(super) fn collect_names<E>(drafts: &[Draft<E>], depth: usize, names: &mut Vec<String>) {
    for draft in drafts {
        match &draft.kind {
            DraftKind::Stage { name, .. } => names.push(name.clone()),
            DraftKind::Group(_) if depth + 1 >= MAX_NESTING => {}
            DraftKind::Group(group) => collect_names(&group.elements, depth + 1, names),
        }
    }
}

impl Flattener {
    /// Depth-capped: builders nest groups only as deep as code makes them,
    /// and deeper than [`MAX_NESTING`] is an error anyway.
    pub(super) fn sequence<E: 'static>(&mut self, drafts: &[Draft<E>], depth: usize) -> Sequence {
        let mut elements = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let kind = match &draft.kind {
                DraftKind::Stage { name, condition } => {
                    let id = StageId(u16::try_from(self.stages.len()).unwrap_or(u16::MAX));
                    let condition = self.lower(&format!("stage `{name}`"), condition.as_ref());
                    self.stages.push(Stage {
                        name: name.clone(),
                        condition,
                        span: Span::default(),
                    });
                    ElementKind::Stage(id)
                }
                DraftKind::Group(_) if depth + 1 >= MAX_NESTING => {
                    self.misuse
                        .push(format!("groups are nested more than {MAX_NESTING} deep"));
                    continue;
                }
                DraftKind::Group(group) => {
                    self.misuse.extend(group.misuse.iter().cloned());
                    for option in &group.pattern_options {
                        self.misuse.push(format!(
                            "`{option}` applies to a whole pattern, not to a group"
                        ));
                    }
                    ElementKind::Group(self.sequence(&group.elements, depth + 1))
                }
            };
            elements.push(Element {
                kind,
                contiguity: draft.contiguity,
                quantifier: draft.quantifier.unwrap_or(Quantifier::One),
                optional: draft.optional,
                greedy: draft.greedy,
                inner: draft.inner,
                until: draft
                    .until
                    .as_ref()
                    .map(|c| self.lower(&format!("`until` of {}", draft.describe()), Some(c))),
                // (a zero window is no window, as in Flink)
                within: draft.within.filter(|w| *w > 0),
                span: Span::default(),
            });
        }
        Sequence { elements }
    }
}

impl Flattener {
    fn lower<E: 'static>(&mut self, owner: &str, condition: Option<&CondDraft<E>>) -> Condition {
        match condition {
            None => Condition::True,
            Some(CondDraft::Native {
                f,
                iterative,
                description,
            }) => Condition::Native(NativeCondition {
                closure: Arc::new(Arc::clone(f)),
                iterative: *iterative,
                description: description.clone(),
            }),
            Some(CondDraft::Expr(texts)) => {
                let mut parts = texts.iter().map(|text| self.lower_text(owner, text));
                let first = parts.next().unwrap_or(Expr::Literal(Value::Bool(true)));
                Condition::Expr(parts.fold(first, |all, next| {
                    Expr::Binary(BinaryOp::And, Box::new(all), Box::new(next))
                }))
            }
        }
    }

    /// Parses and lowers one expression text; errors are collected (the
    /// result is then `null`).
    pub(super) fn lower_text(&mut self, owner: &str, text: &str) -> Expr {
        let lowered =
            dsl::parse_expression(text).and_then(|ast| dsl::lower_expression(&ast, &self.names));
        match lowered {
            Ok(expr) => expr,
            Err(diagnostics) => {
                for d in diagnostics.iter().filter(|d| d.is_error()) {
                    self.expr_errors.push(PatternError {
                        kind: PatternErrorKind::InvalidExpression,
                        message: format!(
                            "{owner}: in `{text}` at byte {}: {}",
                            d.span.start, d.message
                        ),
                        span: Span::default(),
                        labels: Vec::new(),
                    });
                }
                Expr::Literal(Value::Null)
            }
        }
    }
}
