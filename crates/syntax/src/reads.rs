//! The fields a pattern reads, where it reads them: for the check that
//! warns about fields no event carries (`cepheid check --sample`, the
//! runtime's `FieldWatch`), which points at the place in the source.

use std::collections::HashSet;

use crate::ast::{ClauseKind, ElementKind, Expr, ExprKind, FactorDecl, PatternDecl, Sequence};
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
    /// An indicator's argument (`sum(amount)`).
    Argument,
    /// An indicator's `where`.
    Where,
    /// An indicator's `group by`.
    GroupBy,
    /// A scene's `when`.
    When,
    /// A scene's `id`.
    Id,
    /// A scene's list check, by its text (`device in blocked_devices`).
    ListCheck(String),
}

impl std::fmt::Display for ReadClause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadClause::PartitionBy => f.write_str("`partition by`"),
            ReadClause::Condition(stage) => write!(f, "the condition of stage `{stage}`"),
            ReadClause::Until(name) => write!(f, "the `until` condition `{name}`"),
            ReadClause::Select(name) => write!(f, "`select` entry `{name}`"),
            ReadClause::Argument => f.write_str("its argument"),
            ReadClause::Where => f.write_str("`where`"),
            ReadClause::GroupBy => f.write_str("`group by`"),
            ReadClause::When => f.write_str("`when`"),
            ReadClause::Id => f.write_str("`id`"),
            ReadClause::ListCheck(text) => write!(f, "the list check `{text}`"),
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
    /// included): in the pattern's text, or in the body of
    /// [`factor`](FieldRead::factor).
    pub span: Span,
    /// The factor whose body writes the read (its name, and the source
    /// its caller's lookup gave it), when the pattern reads the field
    /// through a factor call ([`field_reads_with`]); `None`: the
    /// pattern's own text.
    pub factor: Option<(String, usize)>,
}

impl FieldRead {
    /// A read of `path` by `clause`, written at `span` of the reader's own
    /// text (a `group by` or `id` path, which names the field itself).
    pub fn new(path: Vec<String>, clause: ReadClause, span: Span) -> FieldRead {
        FieldRead {
            path,
            clause,
            span,
            factor: None,
        }
    }
}

/// Every event field `decl` reads, in source order (`partition by`, then
/// `where` entries, then `select`), each read once per place it is
/// written. A path whose first segment is a stage name (and which has more
/// segments) is a stage reference: it reads the rest of the path; any
/// other path reads itself, but a bare name of one of the rule's
/// parameters reads no field. A factor call reads its arguments here and
/// no field of the factor's body ([`field_reads_with`] follows calls).
pub fn field_reads(decl: &PatternDecl) -> Vec<FieldRead> {
    field_reads_with(decl, &|_| None)
}

/// [`field_reads`], following factor calls: `factor` gives the factor of
/// a called name (`None`: no factor; a function, list or indicator), with
/// the number of the source its body is written in. The fields its body
/// reads (its parameters aside) are read by the pattern where the body
/// writes them ([`FieldRead::factor`]), once per call, through the
/// factors it calls in turn; a factor already being followed (a cycle,
/// which the language refuses) or more than [`MAX_FACTOR_DEPTH`] calls
/// deep is not followed again.
pub fn field_reads_with<'a>(
    decl: &PatternDecl,
    factor: &dyn Fn(&str) -> Option<(&'a FactorDecl, usize)>,
) -> Vec<FieldRead> {
    let mut stages = HashSet::new();
    stage_names(&decl.sequence, &mut stages);
    let params: HashSet<&str> = decl.params.iter().map(|p| p.name.name.as_str()).collect();
    let mut reader = Reader {
        factor,
        out: Vec::new(),
        following: Vec::new(),
    };
    for clause in &decl.clauses {
        if let ClauseKind::PartitionBy(paths) = &clause.kind {
            for p in paths {
                reader.out.push(FieldRead {
                    path: p.segments.iter().map(|s| s.name.clone()).collect(),
                    clause: ReadClause::PartitionBy,
                    span: p.span,
                    factor: None,
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
        reader.expr(&entry.expr, &clause, (&stages, &params), None);
    }
    for entry in &decl.select_entries {
        let clause = ReadClause::Select(entry.name.name.clone());
        reader.expr(&entry.expr, &clause, (&stages, &params), None);
    }
    reader.out
}

/// Every event field `expr` reads, as [`field_reads_with`] reads a
/// pattern's (factor calls followed), for an expression that names no
/// stage and no parameter: an indicator's argument and `where`, a scene's
/// `when` and list checks.
pub fn expr_field_reads<'a>(
    expr: &Expr,
    clause: &ReadClause,
    factor: &dyn Fn(&str) -> Option<(&'a FactorDecl, usize)>,
) -> Vec<FieldRead> {
    let mut reader = Reader {
        factor,
        out: Vec::new(),
        following: Vec::new(),
    };
    let none = HashSet::new();
    reader.expr(expr, clause, (&none, &none), None);
    reader.out
}

/// How many factor calls deep [`field_reads_with`] follows (the language
/// refuses recursion; this bounds the walk whatever it is given).
pub const MAX_FACTOR_DEPTH: usize = 64;

/// The walk of [`field_reads_with`].
struct Reader<'r, 'a> {
    factor: &'r dyn Fn(&str) -> Option<(&'a FactorDecl, usize)>,
    out: Vec<FieldRead>,
    /// The factors being followed, outermost first.
    following: Vec<String>,
}

impl<'a> Reader<'_, 'a> {
    /// The reads of `expr`, written in `written` (the factor and its
    /// source; `None`: the pattern), where `stages` are the stages' names
    /// and the bare names `params` are parameters.
    fn expr(
        &mut self,
        expr: &Expr,
        clause: &ReadClause,
        (stages, params): (&HashSet<&str>, &HashSet<&str>),
        written: Option<&(String, usize)>,
    ) {
        // (an explicit stack: expressions may nest deeply)
        let mut todo = vec![expr];
        while let Some(e) = todo.pop() {
            match &e.kind {
                ExprKind::Literal(_) => {}
                ExprKind::Path(p) => {
                    let names: Vec<String> = p.segments.iter().map(|s| s.name.clone()).collect();
                    let path = match names.split_first() {
                        Some((first, rest))
                            if !rest.is_empty() && stages.contains(first.as_str()) =>
                        {
                            rest.to_vec()
                        }
                        // (a bare stage name, as in `count(a)`, reads no
                        // field; nor does a parameter)
                        Some((first, rest))
                            if rest.is_empty()
                                && (stages.contains(first.as_str())
                                    || params.contains(first.as_str())) =>
                        {
                            continue
                        }
                        _ => names,
                    };
                    self.out.push(FieldRead {
                        path,
                        clause: clause.clone(),
                        span: p.span,
                        factor: written.cloned(),
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
                ExprKind::Call(name, args) => {
                    // (a factor's body, then the arguments, in the
                    // caller's text: on the stack, as expressions may
                    // nest deeply; a body at most `MAX_FACTOR_DEPTH`
                    // calls deep)
                    self.follow(&name.name, clause);
                    for y in args.iter().rev() {
                        todo.push(y);
                    }
                }
            }
        }
    }

    /// The reads of the body of factor `name`, if it is one and is not
    /// being followed already.
    fn follow(&mut self, name: &str, clause: &ReadClause) {
        let Some((decl, source)) = (self.factor)(name) else {
            return;
        };
        if self.following.len() >= MAX_FACTOR_DEPTH || self.following.iter().any(|f| f == name) {
            return;
        }
        self.following.push(name.to_string());
        let params: HashSet<&str> = decl.params.iter().map(|p| p.name.name.as_str()).collect();
        let written = (name.to_string(), source);
        // (a factor's body names no stage)
        let stages = HashSet::new();
        self.expr(&decl.body, clause, (&stages, &params), Some(&written));
        self.following.pop();
    }
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

    #[test]
    fn factor_calls_read_their_bodies_and_parameters_read_no_field() {
        let text = r#"
            factor old(min: duration) = ts - signed_up_at > min
            factor busy(n: int) = events_1h(account) > n and old(1h)
            factor loop_a() = loop_b() and a_field
            factor loop_b() = loop_a()
            pattern p(min_age: duration, n: int = 5) {
                partition by account
                match c
                where c: type == "claim" and old(min_age) and busy(n) and loop_a()
                select age = ts - c.signed_up_at
            }"#;
        let file = crate::parse(text).unwrap();
        let factors: std::collections::HashMap<&str, &FactorDecl> = (file.declarations.iter())
            .filter_map(|d| match &d.kind {
                crate::ast::DeclarationKind::Factor(f) => Some((d.name.name.as_str(), f)),
                _ => None,
            })
            .collect();
        let lookup = |name: &str| factors.get(name).map(|&f| (f, 7));
        let reads = field_reads_with(&file.patterns[0], &lookup);
        let shown: Vec<(String, Option<&str>, &str)> = reads
            .iter()
            .map(|r| {
                let span = &text[r.span.start as usize..r.span.end as usize];
                let via = r.factor.as_ref().map(|(f, source)| {
                    assert_eq!(*source, 7);
                    f.as_str()
                });
                (r.path.join("."), via, span)
            })
            .collect();
        let row = |p: &str, via: Option<&'static str>, s: &'static str| (p.to_string(), via, s);
        assert_eq!(
            shown,
            [
                row("account", None, "account"),
                row("type", None, "type"),
                // `old(min_age)`: its body, `min_age` a parameter
                row("ts", Some("old"), "ts"),
                row("signed_up_at", Some("old"), "signed_up_at"),
                // `busy(n)`: its body, and `old`'s through it
                row("account", Some("busy"), "account"),
                row("ts", Some("old"), "ts"),
                row("signed_up_at", Some("old"), "signed_up_at"),
                // a cycle is followed once
                row("a_field", Some("loop_a"), "a_field"),
                row("ts", None, "ts"),
                row("signed_up_at", None, "c.signed_up_at"),
            ]
        );
        // Without a lookup, a call reads its arguments alone.
        let plain: Vec<String> = field_reads(&file.patterns[0])
            .iter()
            .map(|r| r.path.join("."))
            .collect();
        assert_eq!(plain, ["account", "type", "ts", "signed_up_at"]);
    }
}
