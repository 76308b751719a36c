//! Rules as scenes see them ([`RuleInfo`]: the attributes a scene checks,
//! and, for a rule with parameters, its text), and rules with parameters:
//! checked once alone ([`template`], each parameter standing for a value
//! of its type), then lowered once per scene that holds them with the
//! scene's values written in place of the parameters ([`instantiate`]).
//!
//! The values are written into the syntax tree, not the IR: the instance
//! is lowered as if its text held them, so it is checked, explained,
//! printed back (`source.rs`) and compared by a change of rules as any
//! pattern is, and a change of a scene's values is a change of the
//! instance's canonical text.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{self, ClauseKind, ExprKind, Literal, PatternDecl, Skip};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::factor::Factors;
use crate::lookup::Declarations;
use crate::lower::lower_pattern;
use crate::param::{infer, param_defs, param_use, placeholder, ParamDef};
use crate::pattern::Pattern;
use crate::primitives::Span;

/// A rule of the rule set, valid or not, as a scene holds it.
#[derive(Clone, Debug)]
pub(crate) struct RuleInfo {
    /// Its name.
    pub name: String,
    /// The source it is written in.
    pub source: usize,
    /// Where its name is written.
    pub span: Span,
    /// Its `tags`.
    pub tags: Vec<String>,
    /// Its `action`, with where the clause is written.
    pub action: Option<(String, Span)>,
    /// Its `score`.
    pub score: Option<f64>,
    /// `shadow`.
    pub shadow: bool,
    /// Where a `skip` clause other than `skip no skip` is written.
    pub skip: Option<Span>,
    /// Its parameters (none: one pattern, whichever scenes hold it).
    pub params: Vec<ParamDef>,
    /// A rule with parameters: its text, lowered once per scene.
    pub decl: Option<Arc<PatternDecl>>,
    /// The errors it gave lowered alone (message, span): said once, at
    /// the rule, not again for each scene.
    pub said: Vec<(String, Span)>,
    /// Loaded without error (a scene that holds an invalid rule says
    /// nothing more of it).
    pub valid: bool,
}

impl RuleInfo {
    /// The rule `decl` of source `source`, its parameters as resolved.
    pub(crate) fn new(
        decl: &PatternDecl,
        source: usize,
        params: Vec<ParamDef>,
        valid: bool,
    ) -> Self {
        let mut info = RuleInfo {
            name: decl.name.name.clone(),
            source,
            span: decl.name.span,
            tags: Vec::new(),
            action: None,
            score: None,
            shadow: false,
            skip: None,
            params,
            decl: None,
            said: Vec::new(),
            valid,
        };
        for c in &decl.clauses {
            match &c.kind {
                ClauseKind::Tags(tags) if info.tags.is_empty() => {
                    info.tags = tags.iter().map(|t| t.value.clone()).collect();
                }
                ClauseKind::Action(a) if info.action.is_none() => {
                    info.action = Some((a.name.clone(), c.span));
                }
                ClauseKind::Score(l) if info.score.is_none() => {
                    info.score = match l {
                        Literal::Int(i) => Some(*i as f64),
                        Literal::Float(f) => Some(*f),
                        _ => None,
                    };
                }
                ClauseKind::Shadow => info.shadow = true,
                ClauseKind::Skip(s) if *s != Skip::NoSkip && info.skip.is_none() => {
                    info.skip = Some(c.span);
                }
                _ => {}
            }
        }
        info
    }
}

/// A rule with parameters, checked alone: its parameters' types
/// (declared, or inferred from its conditions), and its text lowered with
/// each parameter standing for a value of its type. The diagnostics are
/// the rule's; no pattern is made (scenes make its instances).
pub(crate) fn template(
    decl: &PatternDecl,
    source: usize,
    had_syntax_errors: bool,
    decls: &Declarations,
    factors: &Factors,
) -> (RuleInfo, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    if decl.name.name.contains('@') {
        diagnostics.push(Diagnostic::error(
            DiagnosticKind::InvalidDeclaration,
            decl.name.span,
            format!(
                "`{}` is the name of a rule's instance in a scene, which has no parameters",
                decl.name.name
            ),
        ));
    }
    let mut params = param_defs(&decl.params, &mut diagnostics);
    let exprs = expressions(decl);
    let used = infer(&mut params, &exprs, factors, &mut diagnostics);
    for (p, used) in params.iter().zip(used) {
        if !used {
            diagnostics.push(
                Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    p.span,
                    format!("the parameter `{}` is not used by the rule", p.name),
                )
                .with_help(format!(
                    "a parameter is read by its name alone in `where`, `select` or `then` (`{}`)",
                    p.name
                )),
            );
        }
    }
    let values: Vec<Literal> = params.iter().map(|p| placeholder(p.ty, p.span)).collect();
    let generic = substitute(decl, &params, &values);
    let (pattern, mut more) = lower_pattern(&generic, decls, factors);
    diagnostics.append(&mut more);
    let said: Vec<(String, Span)> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.message.clone(), d.span))
        .collect();
    let valid = pattern.is_some() && said.is_empty() && !had_syntax_errors;
    let mut info = RuleInfo::new(decl, source, params, valid);
    info.decl = Some(Arc::new(decl.clone()));
    info.said = said;
    (info, diagnostics)
}

/// The rule `rule` (a [`template`]) for the scene `scene`, each parameter
/// given its value in `values` (by name; the default for those it lacks,
/// which the caller checked): the instance `rule@scene`, or the errors
/// its values make that the rule alone did not give.
pub(crate) fn instantiate(
    rule: &RuleInfo,
    values: &HashMap<&str, &Literal>,
    scene: &str,
    decls: &Declarations,
    factors: &Factors,
) -> Result<Pattern, Vec<Diagnostic>> {
    let Some(decl) = &rule.decl else {
        return Err(Vec::new());
    };
    let written: Vec<Literal> = rule
        .params
        .iter()
        .map(|p| {
            values
                .get(p.name.as_str())
                .map(|l| (*l).clone())
                .or_else(|| p.default.as_ref().map(|d| d.literal.clone()))
                .unwrap_or(Literal::Null)
        })
        .collect();
    let text = substitute(decl, &rule.params, &written);
    let (pattern, diagnostics) = lower_pattern(&text, decls, factors);
    let new: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| d.is_error() && !rule.said.contains(&(d.message.clone(), d.span)))
        .collect();
    match pattern {
        Some(mut p) if new.is_empty() => {
            p.name = format!("{}@{scene}", rule.name);
            Ok(p)
        }
        _ => Err(new),
    }
}

/// Every expression of a rule where a parameter may be read: its `where`
/// and `select` entries, the values its `then` writes.
fn expressions(decl: &PatternDecl) -> Vec<&ast::Expr> {
    decl.where_entries
        .iter()
        .chain(&decl.select_entries)
        .map(|e| &e.expr)
        .chain(decl.effects.iter().map(|e| &e.value))
        .collect()
}

/// `decl` with each parameter of `params` written alone replaced by its
/// value in `values` (same order), at the place of the parameter.
pub(crate) fn substitute(
    decl: &PatternDecl,
    params: &[ParamDef],
    values: &[Literal],
) -> PatternDecl {
    let mut out = decl.clone();
    out.params = Vec::new();
    let exprs = out
        .where_entries
        .iter_mut()
        .chain(&mut out.select_entries)
        .map(|e| &mut e.expr)
        .chain(out.effects.iter_mut().map(|e| &mut e.value));
    // (an explicit stack: expressions may nest deeply)
    let mut todo: Vec<&mut ast::Expr> = exprs.collect();
    while let Some(e) = todo.pop() {
        if let Some(i) = param_use(e, params) {
            let mut value = values.get(i).cloned().unwrap_or(Literal::Null);
            if let Literal::Duration(d) = &mut value {
                d.span = e.span;
            }
            e.kind = ExprKind::Literal(value);
            continue;
        }
        match &mut e.kind {
            ExprKind::Literal(_) | ExprKind::Path(_) => {}
            ExprKind::Unary(_, x) | ExprKind::InList(x, _) => todo.push(x),
            ExprKind::Binary(_, x, y) => {
                todo.push(x);
                todo.push(y);
            }
            ExprKind::Chain(x, rest) => {
                todo.push(x);
                todo.extend(rest.iter_mut().map(|(_, y)| y));
            }
            ExprKind::In(x, items) => {
                todo.push(x);
                todo.extend(items.iter_mut());
            }
            ExprKind::Call(_, args) => todo.extend(args.iter_mut()),
        }
    }
    out
}
