//! Factors and parameters: the table of a rule set's factors
//! ([`FactorDef`], what a `where` may call), the types of parameters
//! (declared, or inferred from how the text uses them), and the checks of
//! `docs/language.md` §11 (a name declared twice, recursion between
//! factors, a parameter used as two types).
//!
//! A factor is never in the IR: a call is lowered to the factor's
//! condition with the call's arguments in place of its parameters
//! (`lower_expr`), each time, so an instantiated rule's conditions hold its
//! scene's values and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::ast::{self, Constant, ExprKind, Literal, Param, ParamType};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::expr::{BinaryOp, Expr, UnaryOp};
use crate::lookup::Declarations;
use crate::lower_expr::{ExprCx, FUNCTIONS};
use crate::primitives::{Span, StageId};
use crate::value::Value;

/// The most factor calls one expression may expand to (each call is its
/// factor's condition written out, and a factor may call others).
pub const MAX_FACTOR_EXPANSIONS: usize = 1_000;

/// The end of the error at a call of a factor with an error of its own.
/// A factor that calls one is invalid too, without a word of its own:
/// only the rules that call it say it.
pub(crate) const CANNOT_BE_CALLED: &str = "has an error, so it cannot be called";

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

/// A factor of the rule set: its parameters and its condition as written.
#[derive(Clone, Debug)]
pub(crate) struct FactorDef {
    /// Its parameters, in order.
    pub params: Vec<ParamDef>,
    /// Its condition.
    pub body: ast::Expr,
    /// The errors its condition gave, lowered alone (message, span):
    /// already said at the factor, not again at each call.
    pub said: Vec<(String, Span)>,
    /// No error in it (a call of a factor with errors is itself one).
    pub valid: bool,
}

/// The factors a text may call, by name.
pub(crate) type Factors = HashMap<String, Arc<FactorDef>>;

/// No factor (what a standalone expression may call).
pub(crate) fn no_factors() -> &'static Factors {
    static NONE: OnceLock<Factors> = OnceLock::new();
    NONE.get_or_init(Factors::new)
}

/// No stage (a factor's condition reads the event alone).
pub(crate) fn no_stages() -> &'static HashMap<String, StageId> {
    static NONE: OnceLock<HashMap<String, StageId>> = OnceLock::new();
    NONE.get_or_init(HashMap::new)
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

/// Factors declared by one text: the table entries, made before the
/// text's lists and indicators are lowered (an indicator's condition may
/// call a factor), in text order. Returns the names made, for
/// [`check_factors`].
pub(crate) fn declare_factors(
    file: &[ast::Declaration],
    factors: &mut Factors,
    first: &mut HashMap<String, (usize, Span)>,
    source: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut made = Vec::new();
    for (n, d) in file.iter().enumerate() {
        let ast::DeclarationKind::Factor(f) = &d.kind else {
            continue;
        };
        let earlier = file[..n]
            .iter()
            .find(|e| {
                e.name.name == d.name.name && !matches!(e.kind, ast::DeclarationKind::Factor(_))
            })
            .map(|e| (source, e.name.span));
        if let Some((at_source, at)) = first.get(&d.name.name).copied().or(earlier) {
            let mut diag = Diagnostic::error(
                DiagnosticKind::Duplicate,
                d.name.span,
                format!(
                    "`{}` is already declared; a factor needs a name no list, indicator or other factor has",
                    d.name.name
                ),
            );
            diag.labels.push(crate::diagnostic::Label {
                span: at,
                message: "first declared here".to_string(),
                source: at_source,
            });
            diagnostics.push(diag);
            continue;
        }
        if FUNCTIONS.contains(&d.name.name.as_str()) {
            diagnostics.push(Diagnostic::error(
                DiagnosticKind::InvalidDeclaration,
                d.name.span,
                format!(
                    "`{}` is a built-in function; a factor needs another name",
                    d.name.name
                ),
            ));
            continue;
        }
        let params = param_defs(&f.params, diagnostics);
        first.insert(d.name.name.clone(), (source, d.name.span));
        factors.insert(
            d.name.name.clone(),
            Arc::new(FactorDef {
                params,
                body: f.body.clone(),
                said: Vec::new(),
                valid: true,
            }),
        );
        made.push(d.name.name.clone());
    }
    made
}

/// The factors of `made` (one text's) that call each other in a cycle
/// are errors; the others get their parameters' types (callees first)
/// and are lowered alone once, their errors said here and kept in
/// [`FactorDef::said`].
pub(crate) fn check_factors(
    made: &[String],
    factors: &mut Factors,
    decls: &Declarations,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let order = callees_first(made, factors, diagnostics);
    for name in order {
        let Some(def) = factors.get(&name) else {
            continue;
        };
        let mut def = FactorDef::clone(def);
        if def.valid {
            let body = def.body.clone();
            let used = infer(&mut def.params, &[&body], factors, diagnostics);
            for (p, used) in def.params.iter().zip(used) {
                if !used {
                    diagnostics.push(Diagnostic::warning(
                        DiagnosticKind::UnusedEntry,
                        p.span,
                        format!(
                            "the parameter `{}` is not used by the factor's condition",
                            p.name
                        ),
                    ));
                }
            }
            let values: HashMap<String, Expr> = def
                .params
                .iter()
                .map(|p| {
                    let l = placeholder(p.ty, p.span);
                    (p.name.clone(), Expr::Literal(constant_value(&l)))
                })
                .collect();
            let mut found: Vec<Diagnostic> = Vec::new();
            ExprCx {
                decls,
                factors,
                in_indicator: false,
                stages: no_stages(),
                in_select: false,
                params: Some(&values),
                budget: MAX_FACTOR_EXPANSIONS,
                diagnostics: &mut found,
            }
            .lower(&def.body);
            def.said = found
                .iter()
                .filter(|d| d.is_error())
                .map(|d| (d.message.clone(), d.span))
                .collect();
            def.valid = def.said.is_empty();
            diagnostics.extend(
                found
                    .into_iter()
                    .filter(|d| !d.message.ends_with(CANNOT_BE_CALLED)),
            );
        }
        factors.insert(name, Arc::new(def));
    }
}

/// The names of `made` ordered callees first; a factor on a cycle of
/// calls is said once per cycle and made invalid (and left last).
fn callees_first(
    made: &[String],
    factors: &mut Factors,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<String> {
    // The calls in each factor's condition of factors of `made`, with
    // where they are written.
    let graph: HashMap<&str, Vec<(String, Span)>> = made
        .iter()
        .map(|n| {
            (
                n.as_str(),
                factors
                    .get(n)
                    .map_or_else(Vec::new, |def| calls_of(&def.body, made)),
            )
        })
        .collect();
    // 0: not seen, 1: on the path, 2: done
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut order = Vec::new();
    let mut cyclic: Vec<String> = Vec::new();
    for root in made {
        if state.get(root.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        // (an explicit stack: a chain of calls may be long)
        let mut path: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        state.insert(root, 1);
        while let Some((node, next)) = path.last_mut() {
            let edges = &graph[*node];
            let Some((callee, at)) = edges.get(*next) else {
                state.insert(node, 2);
                order.push(node.to_string());
                path.pop();
                continue;
            };
            *next += 1;
            let callee = callee.as_str();
            match state.get(callee).copied().unwrap_or(0) {
                0 => {
                    state.insert(callee, 1);
                    path.push((callee, 0));
                }
                1 => {
                    let from = path.iter().position(|(n, _)| *n == callee).unwrap_or(0);
                    let names: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                    let cycle = format!("{} -> {callee}", names.join(" -> "));
                    diagnostics.push(
                        Diagnostic::error(
                            DiagnosticKind::InvalidDeclaration,
                            *at,
                            format!(
                                "factor `{callee}` calls itself ({cycle}): factors cannot be recursive"
                            ),
                        )
                        .with_help("a factor's condition is written out at each call, so a cycle has no end"),
                    );
                    cyclic.extend(names.iter().map(|n| n.to_string()));
                }
                _ => {}
            }
        }
    }
    for name in &cyclic {
        if let Some(def) = factors.get_mut(name) {
            Arc::make_mut(def).valid = false;
        }
    }
    order
}

/// The calls of factors named in `made` in `body`, with where each is
/// written.
fn calls_of(body: &ast::Expr, made: &[String]) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    let mut todo = vec![body];
    while let Some(e) = todo.pop() {
        match &e.kind {
            ExprKind::Literal(_) | ExprKind::Path(_) => {}
            ExprKind::Unary(_, x) | ExprKind::InList(x, _) => todo.push(x),
            ExprKind::Binary(_, x, y) => {
                todo.push(y);
                todo.push(x);
            }
            ExprKind::Chain(x, rest) => {
                todo.extend(rest.iter().rev().map(|(_, y)| y));
                todo.push(x);
            }
            ExprKind::In(x, items) => {
                todo.extend(items.iter().rev());
                todo.push(x);
            }
            ExprKind::Call(f, args) => {
                if made.contains(&f.name) {
                    out.push((f.name.clone(), f.span));
                }
                todo.extend(args.iter().rev());
            }
        }
    }
    out
}
