//! Lowering `list` and `indicator` declarations (AST → [`ListDecl`] /
//! [`IndicatorDecl`] of a rule set's [`Declarations`]), and resolving the
//! names expressions give them.
//!
//! Checks: a name declared twice (as a list or an indicator, in any file
//! of the set) is an error pointing at both; an indicator's aggregate is
//! one of `count`, `sum`, `avg`, `min`, `max`, `count_distinct` with its
//! arity; `sum`/`avg`/`min`/`max` over a value that is never a number
//! (`sum(type == "a")`, `avg("x")`) is an error; `within` is required and
//! positive; an indicator's expressions read the event (no stage, no other
//! indicator).

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{self, Declaration, DeclarationKind, ExprKind, IndicatorClauseKind, Literal};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::event::FieldPath;
use crate::expr::{BinaryOp, UnaryOp};
use crate::lookup::{Declarations, IndicatorDecl, IndicatorFunc, IndicatorRef, ListDecl, ListRef};
use crate::lower_expr::{closest, ExprCx, FUNCTIONS};
use crate::primitives::{Span, StageId};

/// The names an indicator may not take: the language's functions and
/// aggregates, which a call would otherwise mean.
const BUILT_IN: &[&str] = FUNCTIONS;

/// Lowers the declarations of one file into `decls` (which holds those of
/// the texts loaded before); `first` records where each name was declared
/// (for the duplicate error's second span: `(source, span)`).
pub(crate) fn lower_declarations(
    file: &[Declaration],
    decls: &mut Declarations,
    first: &mut HashMap<String, (usize, Span)>,
    source: usize,
    diagnostics: &mut Vec<Diagnostic>,
    factors: &mut crate::factor::Factors,
) {
    // Factors first: a list or an indicator may be declared after a
    // factor that reads it, and an indicator's condition may call one.
    let made = crate::factor::declare_factors(file, factors, first, source, diagnostics);
    for d in file {
        if matches!(d.kind, DeclarationKind::Factor(_)) {
            continue;
        }
        if let Some(&(at_source, at)) = first.get(&d.name.name) {
            let what = match d.kind {
                DeclarationKind::List(_) => "list",
                DeclarationKind::Indicator(_) => "indicator",
                DeclarationKind::Factor(_) => "factor",
            };
            let mut diag = Diagnostic::error(
                DiagnosticKind::Duplicate,
                d.name.span,
                format!(
                    "`{}` is already declared; a {what} needs a name no other list or indicator has",
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
        let lowered = match &d.kind {
            DeclarationKind::List(l) => lower_list(d, l, diagnostics).map(|l| decls.lists.push(l)),
            DeclarationKind::Indicator(i) => {
                lower_indicator(d, i, decls, factors, diagnostics).map(|i| decls.indicators.push(i))
            }
            DeclarationKind::Factor(_) => None,
        };
        if lowered.is_some() {
            first.insert(d.name.name.clone(), (source, d.name.span));
        }
    }
    crate::factor::check_factors(&made, factors, decls, diagnostics);
}

fn lower_list(
    d: &Declaration,
    l: &ast::ListDecl,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ListDecl> {
    let expiry = match &l.expiry {
        Some(e) => match e.millis() {
            Some(ms) if ms > 0 => Some(ms),
            _ => {
                diagnostics.push(Diagnostic::error(
                    DiagnosticKind::InvalidDeclaration,
                    e.span,
                    "an entry's lifetime must be positive and fit in 64 bits of milliseconds",
                ));
                return None;
            }
        },
        None => None,
    };
    Some(ListDecl {
        name: Arc::from(d.name.name.as_str()),
        kind: l.kind.map(|(k, _)| k).unwrap_or_default(),
        expiry,
        span: d.name.span,
    })
}

fn lower_indicator(
    d: &Declaration,
    i: &ast::IndicatorDecl,
    decls: &Declarations,
    factors: &crate::factor::Factors,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<IndicatorDecl> {
    let before = diagnostics.iter().filter(|d| d.is_error()).count();
    if BUILT_IN.contains(&d.name.name.as_str()) {
        diagnostics.push(Diagnostic::error(
            DiagnosticKind::InvalidDeclaration,
            d.name.span,
            format!(
                "`{}` is a built-in function; an indicator needs another name",
                d.name.name
            ),
        ));
    }
    let Some(func) = IndicatorFunc::from_name(&i.func.name) else {
        let names = ["count", "sum", "avg", "min", "max", "count_distinct"];
        let mut diag = Diagnostic::error(
            DiagnosticKind::UnknownFunction,
            i.func.span,
            format!(
                "an indicator computes `count()`, `sum(x)`, `avg(x)`, `min(x)`, `max(x)` or `count_distinct(x)`, not `{}`",
                i.func.name
            ),
        );
        if let Some(best) = closest(&i.func.name, &names) {
            diag = diag.with_help(format!("did you mean `{best}`?"));
        }
        diagnostics.push(diag);
        return None;
    };
    let want = usize::from(func.takes_argument());
    if i.args.len() != want {
        let usage = if want == 0 {
            "`count()` takes no argument: it counts the events".to_string()
        } else {
            format!("`{}` takes one argument, the value aggregated", func.name())
        };
        diagnostics.push(Diagnostic::error(
            DiagnosticKind::BadArguments,
            i.func.span,
            usage,
        ));
        return None;
    }
    let no_stages = HashMap::<String, StageId>::new();
    let lower = |e: &ast::Expr, diagnostics: &mut Vec<Diagnostic>| {
        ExprCx {
            decls,
            factors,
            params: None,
            budget: crate::factor::MAX_FACTOR_EXPANSIONS,
            stages: &no_stages,
            in_select: false,
            in_indicator: true,
            diagnostics,
        }
        .lower(e)
    };
    let argument = i.args.first().map(|a| {
        if func.numeric() {
            if let Some(what) = never_numeric(a) {
                diagnostics.push(
                    Diagnostic::error(
                        DiagnosticKind::NotNumeric,
                        a.span,
                        format!(
                            "`{}` needs a number, and this is always {what}",
                            func.name()
                        ),
                    )
                    .with_help("aggregate a numeric field, like `sum(amount)`"),
                );
            }
        }
        lower(a, diagnostics)
    });
    let mut condition = None;
    let mut group_by = Vec::new();
    let mut window = None;
    let mut seen: HashMap<&'static str, Span> = HashMap::new();
    for c in &i.clauses {
        let kw = c.kind.keyword();
        if let Some(&first) = seen.get(kw) {
            diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    c.span,
                    format!("the clause `{kw}` is given twice"),
                )
                .with_label(first, "first given here"),
            );
            continue;
        }
        seen.insert(kw, c.span);
        match &c.kind {
            IndicatorClauseKind::Where(e) => condition = Some(lower(e, diagnostics)),
            IndicatorClauseKind::GroupBy(paths) => {
                group_by = paths
                    .iter()
                    .map(|p| {
                        FieldPath(
                            p.segments
                                .iter()
                                .map(|s| Arc::from(s.name.as_str()))
                                .collect(),
                        )
                    })
                    .collect();
            }
            IndicatorClauseKind::Within(w) => match w.millis() {
                Some(ms) if ms > 0 => window = Some(ms),
                _ => diagnostics.push(Diagnostic::error(
                    DiagnosticKind::InvalidDeclaration,
                    w.span,
                    "an indicator's window must be positive and fit in 64 bits of milliseconds",
                )),
            },
        }
    }
    let Some(window) = window else {
        if !seen.contains_key("within") {
            diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::InvalidDeclaration,
                    d.span,
                    format!("indicator `{}` has no window", d.name.name),
                )
                .with_help("say over how much event time it aggregates, e.g. `within 1h`"),
            );
        }
        return None;
    };
    let after = diagnostics.iter().filter(|d| d.is_error()).count();
    (after == before).then(|| IndicatorDecl {
        name: Arc::from(d.name.name.as_str()),
        func,
        argument,
        condition,
        group_by,
        window,
        span: d.name.span,
    })
}

/// What `e` always is when it can never be a number: "a string", "a
/// boolean" (its shape says so whatever the event), else `None`.
fn never_numeric(e: &ast::Expr) -> Option<&'static str> {
    match &e.kind {
        ExprKind::Literal(Literal::Str(_)) => Some("a string"),
        ExprKind::Literal(Literal::Bool(_)) => Some("a boolean"),
        ExprKind::Unary(UnaryOp::Not, _) | ExprKind::In(..) | ExprKind::InList(..) => {
            Some("a boolean")
        }
        ExprKind::Binary(op, ..) if !arithmetic(*op) => Some("a boolean"),
        ExprKind::Chain(_, rest) if rest.last().is_some_and(|(op, _)| !arithmetic(*op)) => {
            Some("a boolean")
        }
        ExprKind::Call(f, _) => match f.name.as_str() {
            "lower" | "upper" => Some("a string"),
            "contains" | "starts_with" | "ends_with" | "matches" | "exists" => Some("a boolean"),
            _ => None,
        },
        _ => None,
    }
}

fn arithmetic(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
    )
}

/// The list `name` names, or an error (with the closest list's name as a
/// suggestion).
pub(crate) fn resolve_list(
    decls: &Declarations,
    name: &ast::Ident,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ListRef> {
    if let Some(list) = decls.list(&name.name) {
        return Some(list);
    }
    let what = if decls.indicator(&name.name).is_some() {
        format!("`{}` is an indicator, not a list", name.name)
    } else {
        format!("`{}` is not a list", name.name)
    };
    let names: Vec<&str> = decls.lists.iter().map(|l| &*l.name).collect();
    let mut d = Diagnostic::error(DiagnosticKind::NotAList, name.span, what);
    d = match closest(&name.name, &names) {
        Some(best) => d.with_help(format!("did you mean the list `{best}`?")),
        None if names.is_empty() => d.with_help(format!(
            "declare it beside the patterns: `list {}`",
            name.name
        )),
        None => d.with_help(format!("the lists are: {}", names.join(", "))),
    };
    diagnostics.push(d);
    None
}

/// The indicator `name` names, if any.
pub(crate) fn indicator(decls: &Declarations, name: &str) -> Option<(IndicatorRef, usize)> {
    let r = decls.indicator(name)?;
    let arity = decls.indicators[r.id.0 as usize].arity();
    Some((r, arity))
}
