//! The check [`PatternBuilder::build`](super::PatternBuilder::build) makes
//! against the event type: every field a pattern reads (in `where_expr`,
//! `until_expr`, `select` texts, `partition_by`) is one the type has, so a
//! misspelt name fails at `build`, not at `Engine::add`.

use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldPath, FieldResolver};
use crate::expr::Expr;
use crate::pattern::{self as ir, Condition, ElementKind};

/// One error per field of `pattern` that `E` does not have (each name once,
/// in the order the pattern reads them), saying where the pattern reads it
/// and the closest field `E` has. Nothing for an `E` that takes any name
/// ([`Record`](crate::Record)).
pub(super) fn unknown_fields<E: Event>(pattern: &ir::Pattern) -> Vec<Error> {
    let mut resolver = E::Fields::default();
    let known = resolver.known_names();
    let mut reads: Vec<(FieldPath, String)> = Vec::new();
    for path in &pattern.partition_by {
        reads.push((path.clone(), "partition by".to_string()));
    }
    for stage in &pattern.stages {
        if let Condition::Expr(e) = &stage.condition {
            paths(
                e,
                &format!("the condition of stage `{}`", stage.name),
                &mut reads,
            );
        }
    }
    let mut groups = vec![&pattern.sequence];
    while let Some(sequence) = groups.pop() {
        for element in &sequence.elements {
            match &element.kind {
                ElementKind::Stage(id) => {
                    if let Some(Condition::Expr(e)) = &element.until {
                        let stage = pattern.stages.get(usize::from(id.0));
                        let name = stage.map_or("?", |s| s.name.as_str());
                        paths(e, &format!("the `until` of stage `{name}`"), &mut reads);
                    }
                }
                ElementKind::Group(inner) => {
                    if let Some(Condition::Expr(e)) = &element.until {
                        paths(e, "the `until` of a group", &mut reads);
                    }
                    groups.push(inner);
                }
                ElementKind::Alternation(branches) => {
                    if let Some(Condition::Expr(e)) = &element.until {
                        paths(e, "the `until` of an alternation", &mut reads);
                    }
                    groups.extend(branches);
                }
            }
        }
    }
    for item in &pattern.select {
        paths(&item.expr, &format!("select `{}`", item.name), &mut reads);
    }

    let mut errors = Vec::new();
    let mut reported: Vec<FieldPath> = Vec::new();
    for (path, place) in reads {
        if reported.contains(&path) {
            continue;
        }
        let Err(why) = resolver.resolve(&path) else {
            continue;
        };
        reported.push(path.clone());
        let name = path.to_string();
        let hint = known
            .as_ref()
            .and_then(|names| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                crate::dsl::closest(&name, &names).map(str::to_string)
            })
            .map(|best| format!(" (did you mean `{best}`?)"))
            .unwrap_or_default();
        errors.push(Error::new(
            ErrorKind::Field,
            format!("pattern `{}`, {place}: {why}{hint}", pattern.name),
        ));
    }
    errors
}

/// The field paths `expr` reads, each with `place`.
fn paths(expr: &Expr, place: &str, out: &mut Vec<(FieldPath, String)>) {
    expr.walk(|e| {
        let path = match e {
            Expr::Field(path) | Expr::Exists(path) => Some(path),
            Expr::StageField { path, .. } => Some(path),
            Expr::Aggregate { path, .. } => path.as_ref(),
            _ => None,
        };
        if let Some(path) = path {
            out.push((path.clone(), place.to_string()));
        }
    });
}
