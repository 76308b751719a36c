//! Parameters of factors and rules, and their types: declared
//! (`name: type`), given by a default, or inferred from how the text uses
//! them ([`infer`]); whether a value fits a type ([`accepts`]), and the
//! words messages say them with.

use std::sync::Arc;

use crate::ast::{self, Constant, ExprKind, Literal, Param, ParamType};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::expr::{BinaryOp, UnaryOp};
use crate::factor::Factors;
use crate::primitives::Span;
use crate::value::Value;

/// A parameter of a factor or a rule, its type resolved.
#[derive(Clone, Debug)]
pub(crate) struct ParamDef {
    /// Its name.
    pub name: String,
    /// Its type: declared, or inferred from its uses (`None`: any value).
    pub ty: Option<ParamType>,
    /// Was the type declared (`name: type`)?
    pub declared: bool,
    /// Its default value (a rule's).
    pub default: Option<Constant>,
    /// Where its name is written.
    pub span: Span,
}

/// What a type's values are called in messages.
pub(crate) fn type_phrase(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Int => "an integer",
        ParamType::Number => "a number",
        ParamType::Duration => "a duration",
        ParamType::String => "a string",
        ParamType::Bool => "a boolean",
    }
}

/// What a literal is, in messages.
pub(crate) fn literal_phrase(l: &Literal) -> &'static str {
    match l {
        Literal::Null => "null",
        Literal::Bool(_) => "a boolean",
        Literal::Int(_) => "an integer",
        Literal::Float(_) => "a float",
        Literal::Str(_) => "a string",
        Literal::Duration(_) => "a duration",
    }
}

/// Does a parameter of type `ty` take the value `l`?
pub(crate) fn accepts(ty: ParamType, l: &Literal) -> bool {
    matches!(
        (ty, l),
        (ParamType::Int, Literal::Int(_))
            | (ParamType::Number, Literal::Int(_) | Literal::Float(_))
            | (ParamType::Duration, Literal::Duration(_))
            | (ParamType::String, Literal::Str(_))
            | (ParamType::Bool, Literal::Bool(_))
    )
}

/// How to write a value of `ty`, for a message's help.
pub(crate) fn type_help(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Int => "write an integer, like `5`",
        ParamType::Number => "write a number, like `5` or `2.5`",
        ParamType::Duration => "write a duration with its unit, like `3h` or `500ms`",
        ParamType::String => "write a string, like `\"170\"`",
        ParamType::Bool => "write `true` or `false`",
    }
}

/// The type both `a` and `b` allow (an integer is a number), if any.
fn unify(a: ParamType, b: ParamType) -> Option<ParamType> {
    match (a, b) {
        _ if a == b => Some(a),
        (ParamType::Int, ParamType::Number) | (ParamType::Number, ParamType::Int) => {
            Some(ParamType::Int)
        }
        _ => None,
    }
}

/// The type a literal beside a parameter says it has (`p > 5`: a number;
/// `p < 1h`: a duration).
fn hint(l: &Literal) -> Option<ParamType> {
    match l {
        Literal::Int(_) | Literal::Float(_) => Some(ParamType::Number),
        Literal::Duration(_) => Some(ParamType::Duration),
        Literal::Str(_) => Some(ParamType::String),
        Literal::Bool(_) => Some(ParamType::Bool),
        Literal::Null => None,
    }
}

/// The value standing for a parameter of type `ty` when a text with
/// parameters is lowered alone, to check it.
pub(crate) fn placeholder(ty: Option<ParamType>, span: Span) -> Literal {
    match ty {
        Some(ParamType::Int | ParamType::Number) => Literal::Int(0),
        Some(ParamType::Duration) => Literal::Duration(ast::Duration {
            value: 0,
            unit: crate::time::TimeUnit::Millis,
            span,
        }),
        Some(ParamType::String) => Literal::Str(String::new()),
        Some(ParamType::Bool) => Literal::Bool(false),
        None => Literal::Null,
    }
}

/// The IR value of a constant (a duration is its milliseconds).
pub(crate) fn constant_value(l: &Literal) -> Value {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::Int(*i),
        Literal::Float(f) => Value::Float(*f),
        Literal::Str(s) => Value::Str(Arc::from(s.as_str())),
        Literal::Duration(d) => d.millis().map_or(Value::Null, Value::Int),
    }
}

/// Is `e` the parameter `name` of `params` written alone (not
/// backquoted: `` `max` `` is the field)?
pub(crate) fn param_use(e: &ast::Expr, params: &[ParamDef]) -> Option<usize> {
    let ExprKind::Path(p) = &e.kind else {
        return None;
    };
    let [segment] = p.segments.as_slice() else {
        return None;
    };
    let written = (segment.span.end - segment.span.start) as usize;
    if written != segment.name.len() {
        return None;
    }
    params.iter().position(|d| d.name == segment.name)
}

/// Checks a parameter list as written (names unique) and resolves the
/// declared types.
pub(crate) fn param_defs(params: &[Param], diagnostics: &mut Vec<Diagnostic>) -> Vec<ParamDef> {
    let mut out: Vec<ParamDef> = Vec::new();
    for p in params {
        if let Some(first) = out.iter().find(|d| d.name == p.name.name) {
            diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    p.name.span,
                    format!("the parameter `{}` is given twice", p.name.name),
                )
                .with_label(first.span, "first given here"),
            );
            continue;
        }
        let declared = p.ty.map(|(t, _)| t);
        if let (Some(ty), Some(default)) = (declared, &p.default) {
            if !accepts(ty, &default.literal) {
                diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::BadArguments,
                        default.span,
                        format!(
                            "the parameter `{}` is {}, and its default is {}",
                            p.name.name,
                            type_phrase(ty),
                            literal_phrase(&default.literal)
                        ),
                    )
                    .with_help(type_help(ty)),
                );
            }
        }
        let ty = declared.or_else(|| {
            p.default.as_ref().and_then(|d| match d.literal {
                // (a default `5` says an integer, not a float)
                Literal::Int(_) => Some(ParamType::Int),
                ref l => hint(l),
            })
        });
        out.push(ParamDef {
            name: p.name.name.clone(),
            ty,
            declared: declared.is_some(),
            default: p.default.clone(),
            span: p.name.span,
        });
    }
    out
}

/// What each parameter's uses in `exprs` say of its type: the types of
/// the factor parameters it is passed to, the literals it is compared or
/// combined with, `and`/`or`/`not` (a boolean), the string functions. A
/// use that contradicts the declared type or an earlier use is an error;
/// every use is checked against the type found so far. Returns which
/// parameters are used.
pub(crate) fn infer(
    params: &mut [ParamDef],
    exprs: &[&ast::Expr],
    factors: &Factors,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let mut used = vec![false; params.len()];
    // where each inferred type was first seen
    let mut first: Vec<Option<Span>> = vec![None; params.len()];
    let mut found: Vec<(usize, ParamType, Span)> = Vec::new();
    let mut todo: Vec<&ast::Expr> = exprs.to_vec();
    while let Some(e) = todo.pop() {
        if let Some(i) = param_use(e, params) {
            used[i] = true;
        }
        let mut say = |operand: &ast::Expr, ty: Option<ParamType>| {
            if let (Some(i), Some(ty)) = (param_use(operand, params), ty) {
                found.push((i, ty, operand.span));
            }
        };
        match &e.kind {
            ExprKind::Literal(_) | ExprKind::Path(_) => {}
            ExprKind::Unary(op, x) => {
                if *op == UnaryOp::Not {
                    say(x, Some(ParamType::Bool));
                }
                todo.push(x);
            }
            ExprKind::Binary(op, l, r) => {
                operands(*op, &[&**l, &**r], &mut say);
                todo.push(r);
                todo.push(l);
            }
            ExprKind::Chain(x, rest) => {
                let mut all: Vec<&ast::Expr> = vec![&**x];
                all.extend(rest.iter().map(|(_, y)| y));
                if let Some((op, _)) = rest.first() {
                    operands(*op, &all, &mut say);
                }
                todo.extend(all.into_iter().rev());
            }
            ExprKind::In(x, items) => {
                let ty = items.iter().find_map(|i| match &i.kind {
                    ExprKind::Literal(l) => hint(l),
                    _ => None,
                });
                say(x, ty);
                todo.extend(items.iter().rev());
                todo.push(x);
            }
            ExprKind::InList(x, _) => todo.push(x),
            ExprKind::Call(f, args) => {
                if let Some(factor) = factors.get(&f.name) {
                    for (arg, p) in args.iter().zip(&factor.params) {
                        say(arg, p.ty);
                    }
                } else {
                    let string = Some(ParamType::String);
                    match (f.name.as_str(), args.as_slice()) {
                        ("lower" | "upper", [x]) => say(x, string),
                        ("starts_with" | "ends_with" | "matches", [x, y]) => {
                            say(x, string);
                            say(y, string);
                        }
                        ("abs", [x]) => say(x, Some(ParamType::Number)),
                        _ => {}
                    }
                }
                todo.extend(args.iter().rev());
            }
        }
    }
    // In the order of the text.
    found.sort_by_key(|(_, _, span)| span.start);
    for (i, ty, span) in found {
        let p = &mut params[i];
        let Some(known) = p.ty else {
            p.ty = Some(ty);
            first[i] = Some(span);
            continue;
        };
        match unify(known, ty) {
            Some(t) => p.ty = Some(t),
            None if p.declared => diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::BadArguments,
                    span,
                    format!(
                        "the parameter `{}` is {}, but is used as {} here",
                        p.name,
                        type_phrase(known),
                        type_phrase(ty)
                    ),
                )
                .with_label(p.span, "declared here"),
            ),
            None => {
                let mut d = Diagnostic::error(
                    DiagnosticKind::BadArguments,
                    span,
                    format!(
                        "the parameter `{}` is used as {} here, but as {} before",
                        p.name,
                        type_phrase(ty),
                        type_phrase(known)
                    ),
                )
                .with_help(format!(
                    "declare its type (`{}: {}`) to say which",
                    p.name,
                    known.word()
                ));
                d = match first[i] {
                    Some(at) => d.with_label(at, "used so here"),
                    None => d.with_label(p.span, "its default says so"),
                };
                diagnostics.push(d);
            }
        }
    }
    used
}

/// The types the operands of `op` say their parameters have: `and`,
/// `or` a boolean; a comparison or arithmetic the type of a literal
/// among the operands.
fn operands(op: BinaryOp, all: &[&ast::Expr], say: &mut impl FnMut(&ast::Expr, Option<ParamType>)) {
    let ty = match op {
        BinaryOp::And | BinaryOp::Or => Some(ParamType::Bool),
        _ => all.iter().find_map(|e| match &e.kind {
            ExprKind::Literal(l) => hint(l),
            ExprKind::Unary(UnaryOp::Neg, x) => match &x.kind {
                ExprKind::Literal(l) => hint(l),
                _ => None,
            },
            _ => None,
        }),
    };
    for e in all {
        say(e, ty);
    }
}
