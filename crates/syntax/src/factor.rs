//! Factors: the table of a rule set's factors ([`FactorDef`], what a
//! `where` may call) and the checks of `docs/language.md` §11 (a name
//! declared twice, recursion between factors); their parameters' types
//! are `param`'s.
//!
//! A factor is never in the IR: a call is lowered to the factor's
//! condition with the call's arguments in place of its parameters
//! (`lower_expr`), each time, so an instantiated rule's conditions hold its
//! scene's values and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::ast::{self, ExprKind};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::expr::Expr;
use crate::lookup::Declarations;
use crate::lower_expr::{ExprCx, FUNCTIONS};
use crate::param::{constant_value, infer, param_defs, placeholder, ParamDef};
use crate::primitives::{Span, StageId};

/// The most factor calls one expression may expand to (each call is its
/// factor's condition written out, and a factor may call others).
pub const MAX_FACTOR_EXPANSIONS: usize = 1_000;

/// The end of the error at a call of a factor with an error of its own.
/// A factor that calls one is invalid too, without a word of its own:
/// only the rules that call it say it.
pub(crate) const CANNOT_BE_CALLED: &str = "has an error, so it cannot be called";

/// A factor of the rule set: its parameters and its condition as written.
#[derive(Clone, Debug)]
pub(crate) struct FactorDef {
    /// Its parameters, in order.
    pub params: Vec<ParamDef>,
    /// Its condition.
    pub body: ast::Expr,
    /// How many nodes its condition has: what a call writes out.
    pub size: usize,
    /// The errors its condition gave, lowered alone (message, span):
    /// already said at the factor, not again at each call.
    pub said: Vec<(String, Span)>,
    /// No error in it (a call of a factor with errors is itself one).
    pub valid: bool,
}

/// The most expression nodes the factors called in one text may write out
/// in all (each call writes out its factor's condition): what a text's
/// lowering may cost is bounded as without factors, whatever calls what.
pub const MAX_FACTOR_NODES: usize = 1_000_000;

/// The factors a text may call, by name (a map, through `Deref`), and
/// what the text being lowered may still write out of them
/// ([`MAX_FACTOR_NODES`], reset for each text).
#[derive(Debug, Default)]
pub(crate) struct Factors {
    defs: HashMap<String, Arc<FactorDef>>,
    left: AtomicUsize,
}

impl Clone for Factors {
    fn clone(&self) -> Self {
        Factors {
            defs: self.defs.clone(),
            left: AtomicUsize::new(self.left.load(Ordering::Relaxed)),
        }
    }
}

impl std::ops::Deref for Factors {
    type Target = HashMap<String, Arc<FactorDef>>;

    fn deref(&self) -> &Self::Target {
        &self.defs
    }
}

impl std::ops::DerefMut for Factors {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.defs
    }
}

impl Factors {
    /// A new text is lowered: its budget is whole.
    pub(crate) fn reset(&self) {
        self.left.store(MAX_FACTOR_NODES, Ordering::Relaxed);
    }

    /// Takes `nodes` from the text's budget; `false` when it is spent.
    pub(crate) fn spend(&self, nodes: usize) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(nodes)
            })
            .is_ok()
    }
}

/// No factor (what a standalone expression may call).
pub(crate) fn no_factors() -> &'static Factors {
    static NONE: OnceLock<Factors> = OnceLock::new();
    NONE.get_or_init(Factors::default)
}

/// How many nodes `e` has (what writing it out costs).
fn size(e: &ast::Expr) -> usize {
    let mut n = 0;
    let mut todo = vec![e];
    while let Some(e) = todo.pop() {
        n += 1;
        match &e.kind {
            ExprKind::Literal(_) | ExprKind::Path(_) => {}
            ExprKind::Unary(_, x) | ExprKind::InList(x, _) => todo.push(x),
            ExprKind::Binary(_, x, y) => {
                todo.push(x);
                todo.push(y);
            }
            ExprKind::Chain(x, rest) => {
                todo.push(x);
                todo.extend(rest.iter().map(|(_, y)| y));
            }
            ExprKind::In(x, items) => {
                todo.push(x);
                todo.extend(items);
            }
            ExprKind::Call(_, args) => todo.extend(args),
        }
    }
    n
}

/// No stage (a factor's condition reads the event alone).
pub(crate) fn no_stages() -> &'static HashMap<String, StageId> {
    static NONE: OnceLock<HashMap<String, StageId>> = OnceLock::new();
    NONE.get_or_init(HashMap::new)
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
                size: size(&f.body),
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
