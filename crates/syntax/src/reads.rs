//! The fields a pattern reads, where it reads them: for the check that
//! warns about fields no event carries (`cepheid check --sample`, the
//! engine's `FieldWatch`), which points at the place in the source.

use std::collections::HashSet;

use crate::ast::{ClauseKind, ElementKind, Expr, ExprKind, PatternDecl, Sequence};
use crate::primitives::Span;

/// The clause of a pattern that reads a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadClause {
    /// `partition by`.
    PartitionBy,
    /// The condition of a stage (its `where` entry), by the stage's name.
    Condition(String),
    /// A `where` entry that is no stage's condition (an `until`
    /// condition), by its name.
    Until(String),
    /// A `select` entry, by its name.
    Select(String),
}

impl std::fmt::Display for ReadClause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadClause::PartitionBy => f.write_str("`partition by`"),
            ReadClause::Condition(stage) => write!(f, "the condition of stage `{stage}`"),
            ReadClause::Until(name) => write!(f, "the `until` condition `{name}`"),
            ReadClause::Select(name) => write!(f, "`select` entry `{name}`"),
        }
    }
}

/// One read of an event field by a pattern, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldRead {
    /// The field's path, as its segments (`user.id` is `["user", "id"]`;
    /// a stage reference `a.user.id` reads `["user", "id"]`).
    pub path: Vec<String>,
    /// The clause that reads it.
    pub clause: ReadClause,
    /// Where the path is written (the stage name of a stage reference
    /// included).
    pub span: Span,
}

/// Every event field `decl` reads, in source order (`partition by`, then
/// `where` entries, then `select`), each read once per place it is
/// written. A path whose first segment is a stage name (and which has more
/// segments) is a stage reference: it reads the rest of the path; any
/// other path reads itself.
pub fn field_reads(decl: &PatternDecl) -> Vec<FieldRead> {
    let mut stages = HashSet::new();
    stage_names(&decl.sequence, &mut stages);
    let mut out = Vec::new();
    for clause in &decl.clauses {
        if let ClauseKind::PartitionBy(paths) = &clause.kind {
            for p in paths {
                out.push(FieldRead {
                    path: p.segments.iter().map(|s| s.name.clone()).collect(),
                    clause: ReadClause::PartitionBy,
                    span: p.span,
                });
            }
        }
    }
    for entry in &decl.where_entries {
        let clause = if stages.contains(entry.name.name.as_str()) {
            ReadClause::Condition(entry.name.name.clone())
        } else {
            ReadClause::Until(entry.name.name.clone())
        };
        expr_reads(&entry.expr, &clause, &stages, &mut out);
    }
    for entry in &decl.select_entries {
        let clause = ReadClause::Select(entry.name.name.clone());
        expr_reads(&entry.expr, &clause, &stages, &mut out);
    }
    out
}

fn stage_names<'a>(sequence: &'a Sequence, out: &mut HashSet<&'a str>) {
    for element in &sequence.elements {
        match &element.kind {
            ElementKind::Stage(id) => {
                out.insert(id.name.as_str());
            }
            ElementKind::Group(inner) => stage_names(inner, out),
            ElementKind::Alternation(alts) => {
                for a in alts {
                    if let ElementKind::Stage(id) = &a.kind {
                        out.insert(id.name.as_str());
                    }
                    if let ElementKind::Group(inner) = &a.kind {
                        stage_names(inner, out);
                    }
                }
            }
        }
    }
}

fn expr_reads(expr: &Expr, clause: &ReadClause, stages: &HashSet<&str>, out: &mut Vec<FieldRead>) {
    // (an explicit stack: expressions may nest deeply)
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        match &e.kind {
            ExprKind::Literal(_) => {}
            ExprKind::Path(p) => {
                let names: Vec<String> = p.segments.iter().map(|s| s.name.clone()).collect();
                let path = match names.split_first() {
                    Some((first, rest)) if !rest.is_empty() && stages.contains(first.as_str()) => {
                        rest.to_vec()
                    }
                    // (a bare stage name, as in `count(a)`, reads no field)
                    Some((first, rest)) if rest.is_empty() && stages.contains(first.as_str()) => {
                        continue
                    }
                    _ => names,
                };
                out.push(FieldRead {
                    path,
                    clause: clause.clone(),
                    span: p.span,
                });
            }
            ExprKind::Unary(_, x) | ExprKind::InList(x, _) => todo.push(x),
            ExprKind::Binary(_, a, b) => {
                todo.push(b);
                todo.push(a);
            }
            ExprKind::Chain(first, rest) => {
                for (_, x) in rest.iter().rev() {
                    todo.push(x);
                }
                todo.push(first);
            }
            ExprKind::In(x, list) => {
                for y in list.iter().rev() {
                    todo.push(y);
                }
                todo.push(x);
            }
            ExprKind::Call(_, args) => {
                for y in args.iter().rev() {
                    todo.push(y);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_the_fields_of_stage_references() {
        let text = r#"pattern p {
            partition by user.id
            match a followed by b+ until stop
            where a: sucess == true and kind in ["x", y]
                  b: b.amount > a.amount
                  stop: halt
            select n = count(b) total = sum(b.amount) first = a.user.name
        }"#;
        let file = crate::parse(text).unwrap();
        let reads = field_reads(&file.patterns[0]);
        let shown: Vec<(String, String, &str)> = reads
            .iter()
            .map(|r| {
                let span = &text[r.span.start as usize..r.span.end as usize];
                (r.path.join("."), r.clause.to_string(), span)
            })
            .collect();
        let cond = |s: &str| format!("the condition of stage `{s}`");
        let sel = |s: &str| format!("`select` entry `{s}`");
        let row = |p: &str, c: String, s| (p.to_string(), c, s);
        assert_eq!(
            shown,
            [
                row("user.id", "`partition by`".to_string(), "user.id"),
                row("sucess", cond("a"), "sucess"),
                row("kind", cond("a"), "kind"),
                row("y", cond("a"), "y"),
                row("amount", cond("b"), "b.amount"),
                row("amount", cond("b"), "a.amount"),
                row("halt", "the `until` condition `stop`".to_string(), "halt"),
                row("amount", sel("total"), "b.amount"),
                row("user.name", sel("first"), "a.user.name"),
            ]
        );
    }
}
