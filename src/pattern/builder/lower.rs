//! Turning builder drafts into IR: stages numbered in pattern order,
//! expression texts parsed and lowered once every stage name is known,
//! closures type-erased (with a way to `and` two of one event type).

use std::sync::Arc;

use super::{CondDraft, Draft, DraftKind};
use crate::dsl;
use crate::expr::{BinaryOp, Expr};
use crate::pattern::ir::{
    Condition, Element, ElementKind, NativeCondition, NativeFn, Quantifier, Sequence, Stage,
    StageEvents, StageId,
};
use crate::pattern::validate::{PatternError, PatternErrorKind, MAX_NESTING};
use crate::span::Span;
use crate::value::Value;

/// Type-erases a closure, remembering how to `and` it with another closure
/// of the same event type.
pub(super) fn native_draft<E: 'static>(f: NativeFn<E>, iterative: bool) -> CondDraft {
    CondDraft::Native(native_condition(f, iterative), and_natives::<E>)
}

/// Type-erases a closure.
fn native_condition<E: 'static>(f: NativeFn<E>, iterative: bool) -> NativeCondition {
    NativeCondition {
        closure: Arc::new(f),
        iterative,
        description: if iterative {
            "iterative closure".to_string()
        } else {
            "closure".to_string()
        },
    }
}

/// `a and b` for two closures over `E`; `None` when either is over another
/// event type.
fn and_natives<E: 'static>(a: &NativeCondition, b: &NativeCondition) -> Option<NativeCondition> {
    let first = a.closure.downcast_ref::<NativeFn<E>>()?.clone();
    let second = b.closure.downcast_ref::<NativeFn<E>>()?.clone();
    let joined: NativeFn<E> =
        Arc::new(move |e: &E, ctx: &dyn StageEvents<E>| first(e, ctx) && second(e, ctx));
    let mut out = native_condition(joined, a.iterative || b.iterative);
    out.description = format!("{} and {}", a.description, b.description);
    Some(out)
}

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
pub(super) fn collect_names(drafts: &[Draft], depth: usize, names: &mut Vec<String>) {
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
    pub(super) fn sequence(&mut self, drafts: &[Draft], depth: usize) -> Sequence {
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
                within: draft.within,
                span: Span::default(),
            });
        }
        Sequence { elements }
    }
}

impl Flattener {
    fn lower(&mut self, owner: &str, condition: Option<&CondDraft>) -> Condition {
        match condition {
            None => Condition::True,
            Some(CondDraft::Native(n, _)) => Condition::Native(n.clone()),
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
