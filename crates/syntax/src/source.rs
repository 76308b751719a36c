//! A pattern of the IR back to `.cep` source: [`pattern_source`], the text
//! an engine snapshot keeps of each pattern so that a restore can rebuild
//! the rule set in force (`docs/snapshot.md`). Loading the text gives a
//! pattern with the same canonical text (`dsl::explain`), which the caller
//! checks; a pattern with a Rust closure has no source.

use std::fmt::Write;

use crate::explain::expr_text;
use crate::lookup::{Attributes, Declarations, ListKind, WriteOp};
use crate::pattern::{
    Condition, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence, SkipStrategy,
    Stage,
};
use crate::print::{print_name, print_pattern_name};

/// Why a pattern has no `.cep` source ([`pattern_source`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoSource {
    /// The pattern's name.
    pub pattern: String,
    /// What in it has no text.
    pub why: NoSourceWhy,
}

/// What in a pattern has no `.cep` text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoSourceWhy {
    /// A Rust closure: which one (`partition_by_fn`, `` `where_fn` of `a` ``,
    /// `` `until_fn` ``).
    Closure(String),
    /// An `until` of the IR's [`Condition::True`] (accepts every event,
    /// with no expression).
    UntilWithoutExpression,
}

impl std::fmt::Display for NoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.why {
            NoSourceWhy::Closure(what) => write!(
                f,
                "pattern `{}` has a Rust closure ({what}), which has no source text",
                self.pattern
            ),
            NoSourceWhy::UntilWithoutExpression => write!(
                f,
                "pattern `{}` has an `until` that accepts every event without an \
                 expression, which has no source text",
                self.pattern
            ),
        }
    }
}

impl std::error::Error for NoSource {}

/// The pattern as `.cep` source, or why it has none (a Rust closure: a
/// `where_fn`, `until_fn` or `partition_by_fn` cannot be written as text;
/// nor can an `until` of the IR's [`Condition::True`]).
///
/// Durations are written in milliseconds (a zero window, the builder's
/// "no window", not at all), quantifiers in their normalized
/// form (`{0,m}` as `{1,m} optional`), an `until` condition as a `where`
/// entry of a name no stage has.
pub fn pattern_source(p: &Pattern) -> Result<String, NoSource> {
    let closure = |what: String| NoSource {
        pattern: p.name.clone(),
        why: NoSourceWhy::Closure(what),
    };
    if p.partition_by_fn.is_some() {
        return Err(closure("partition_by_fn".to_string()));
    }
    let mut out = String::new();
    if let Some(doc) = &p.doc {
        for line in doc.lines() {
            if line.is_empty() {
                out.push_str("///\n");
            } else {
                let _ = writeln!(out, "/// {line}");
            }
        }
    }
    out.push_str("pattern ");
    print_pattern_name(&mut out, &p.name);
    out.push_str(" {\n");
    if !p.partition_by.is_empty() {
        out.push_str("    partition by ");
        for (i, path) in p.partition_by.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            for (j, segment) in path.segments().iter().enumerate() {
                if j > 0 {
                    out.push('.');
                }
                print_name(&mut out, segment);
            }
        }
        out.push('\n');
    }
    // (a zero window is the builder's "no window", as in Flink: the file
    // says none, `within 0ms` being an error there; the automaton is the
    // same)
    if let Some(w) = p.within.filter(|w| *w > 0) {
        let _ = writeln!(out, "    within {w}ms");
    }
    let stage = |id: crate::primitives::StageId| {
        let mut name = String::new();
        print_name(&mut name, p.stages.get(id.index()).map_or("?", |s| &s.name));
        name
    };
    match p.skip {
        SkipStrategy::NoSkip => {}
        SkipStrategy::ToNext => out.push_str("    skip to next\n"),
        SkipStrategy::PastLastEvent => out.push_str("    skip past last event\n"),
        SkipStrategy::ToFirst(s) => {
            let _ = writeln!(out, "    skip to first {}", stage(s));
        }
        SkipStrategy::ToLast(s) => {
            let _ = writeln!(out, "    skip to last {}", stage(s));
        }
    }
    if p.emit_timeouts {
        out.push_str("    timeouts\n");
    }
    write_attributes(&mut out, &p.attributes);
    if p.shadow {
        out.push_str("    shadow\n");
    }
    // `until` conditions become `where` entries of fresh names.
    let mut untils: Vec<(String, String)> = Vec::new();
    out.push_str("    match ");
    write_sequence(&mut out, &p.sequence, p, &mut untils)?;
    out.push('\n');
    let mut entries = Vec::new();
    for s in &p.stages {
        match &s.condition {
            Condition::True => {}
            Condition::Expr(e) => {
                let mut name = String::new();
                print_name(&mut name, &s.name);
                entries.push((name, expr_text(e, &p.stages)));
            }
            Condition::Native(_) => return Err(closure(format!("`where_fn` of `{}`", s.name))),
        }
    }
    entries.extend(untils);
    if !entries.is_empty() {
        out.push_str("    where\n");
        for (name, text) in entries {
            let _ = writeln!(out, "        {name}: {text}");
        }
    }
    if !p.select.is_empty() {
        out.push_str("    select\n");
        for item in &p.select {
            out.push_str("        ");
            print_name(&mut out, &item.name);
            let _ = writeln!(out, " = {}", expr_text(&item.expr, &p.stages));
        }
    }
    for w in &p.writes {
        let value = expr_text(&w.value, &p.stages);
        let _ = match w.op {
            WriteOp::Add => write!(out, "    then add {value} to {}", w.list.name),
            WriteOp::Remove => write!(out, "    then remove {value} from {}", w.list.name),
        };
        if let Some(ms) = w.expiry {
            let _ = write!(out, " for {ms}ms");
        }
        out.push('\n');
    }
    out.push_str("}\n");
    Ok(out)
}

/// The clauses of a pattern's rule attributes, one a line.
fn write_attributes(out: &mut String, a: &Attributes) {
    if let Some(score) = &a.score {
        let _ = writeln!(out, "    score {score}");
    }
    if let Some(level) = &a.level {
        let _ = writeln!(out, "    level {level}");
    }
    if let Some(action) = &a.action {
        let _ = writeln!(out, "    action {action}");
    }
    if !a.tags.is_empty() {
        out.push_str("    tags ");
        for (i, t) in a.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            crate::print::write_string(out, t);
        }
        out.push('\n');
    }
}

/// A rule set's lists and indicators as `.cep` source, one declaration a
/// line, in their numbering order: loading it (before the patterns that
/// name them) gives the same [`Declarations`], numbers included. What an
/// engine snapshot keeps beside its patterns' [`pattern_source`].
pub fn declarations_source(d: &Declarations) -> String {
    let mut out = String::new();
    for l in &d.lists {
        out.push_str("list ");
        print_name(&mut out, &l.name);
        if l.kind != ListKind::Values {
            let _ = write!(out, " of {}", l.kind.word());
        }
        if let Some(ms) = l.expiry {
            let _ = write!(out, " for {ms}ms");
        }
        out.push('\n');
    }
    for i in &d.indicators {
        out.push_str("indicator ");
        print_name(&mut out, &i.name);
        let _ = write!(out, " = {}(", i.func.name());
        if let Some(a) = &i.argument {
            out.push_str(&expr_text(a, &[]));
        }
        out.push(')');
        if let Some(c) = &i.condition {
            let _ = write!(out, " where {}", expr_text(c, &[]));
        }
        if !i.group_by.is_empty() {
            out.push_str(" group by ");
            for (n, path) in i.group_by.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                for (j, segment) in path.segments().iter().enumerate() {
                    if j > 0 {
                        out.push('.');
                    }
                    print_name(&mut out, segment);
                }
            }
        }
        let _ = writeln!(out, " within {}ms", i.window);
    }
    out
}

/// A sequence on one line, groups in parentheses (with an explicit stack:
/// nesting is bounded, but not by this function).
fn write_sequence(
    out: &mut String,
    root: &Sequence,
    p: &Pattern,
    untils: &mut Vec<(String, String)>,
) -> Result<(), NoSource> {
    // Each level: its elements, whether the next is its first, and the
    // group element that opened it (to close it with its modifiers).
    let mut stack: Vec<(std::slice::Iter<'_, Element>, bool, Option<&Element>)> =
        vec![(root.elements.iter(), true, None)];
    while let Some((iter, first, _)) = stack.last_mut() {
        let Some(e) = iter.next() else {
            if let Some((_, _, Some(group))) = stack.pop() {
                out.push(')');
                write_modifiers(out, group, p, untils)?;
            }
            continue;
        };
        if !*first {
            out.push(' ');
            out.push_str(e.contiguity.keyword());
            out.push(' ');
        }
        *first = false;
        match &e.kind {
            ElementKind::Stage(s) => {
                print_name(out, p.stages.get(s.index()).map_or("?", |s| &s.name));
                write_modifiers(out, e, p, untils)?;
            }
            ElementKind::Group(inner) => {
                out.push('(');
                stack.push((inner.elements.iter(), true, Some(e)));
            }
            ElementKind::Alternation(branches) => {
                // Recursion: alternations nest no deeper than groups do.
                let mut modifiers = String::new();
                write_modifiers(&mut modifiers, e, p, untils)?;
                let bare = modifiers.is_empty()
                    && std::ptr::eq(root, &p.sequence)
                    && root.elements.len() == 1;
                if !bare {
                    out.push('(');
                }
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" or ");
                    }
                    let wrap = b.elements.len() != 1;
                    if wrap {
                        out.push('(');
                    }
                    write_sequence(out, b, p, untils)?;
                    if wrap {
                        out.push(')');
                    }
                }
                if !bare {
                    out.push(')');
                }
                out.push_str(&modifiers);
            }
        }
    }
    Ok(())
}

/// An element's quantifier and modifiers.
fn write_modifiers(
    out: &mut String,
    e: &Element,
    p: &Pattern,
    untils: &mut Vec<(String, String)>,
) -> Result<(), NoSource> {
    match e.quantifier {
        Quantifier::One => {}
        Quantifier::Times { min, max } if min == max => {
            let _ = write!(out, "{{{min}}}");
        }
        Quantifier::Times { min, max } => {
            let _ = write!(out, "{{{min},{max}}}");
        }
        Quantifier::AtLeast(n) => {
            let _ = write!(out, "{{{n},}}");
        }
    }
    if e.optional {
        out.push_str(" optional");
    }
    if e.greedy {
        out.push_str(" greedy");
    }
    match e.inner {
        InnerContiguity::Relaxed => {}
        InnerContiguity::Consecutive => out.push_str(" consecutive"),
        InnerContiguity::Combinations => out.push_str(" combinations"),
    }
    match &e.until {
        None => {}
        Some(Condition::Expr(c)) => {
            let name = fresh_name(&p.stages, untils);
            let _ = write!(out, " until {name}");
            untils.push((name, expr_text(c, &p.stages)));
        }
        Some(Condition::True) => {
            // (`until u` with `u: true` is an expression, not this)
            return Err(NoSource {
                pattern: p.name.clone(),
                why: NoSourceWhy::UntilWithoutExpression,
            });
        }
        Some(Condition::Native(_)) => {
            return Err(NoSource {
                pattern: p.name.clone(),
                why: NoSourceWhy::Closure("`until_fn`".to_string()),
            })
        }
    }
    // (a zero window, the builder's "no window" as in Flink, is none)
    if let Some(w) = e.within.filter(|w| *w > 0) {
        let _ = write!(out, " within {w}ms");
    }
    Ok(())
}

/// A name for an `until` condition that no stage or other `until` has.
fn fresh_name(stages: &[Stage], untils: &[(String, String)]) -> String {
    (untils.len()..)
        .map(|i| format!("until_{i}"))
        .find(|n| !stages.iter().any(|s| s.name == *n) && !untils.iter().any(|(u, _)| u == n))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern of `patterns/` prints to source that loads back to
    /// the same canonical text, after the lists and indicators it names,
    /// printed as a snapshot keeps them (`declarations_source`; the round
    /// trip over random patterns is in `crates/engine/tests/it/snapshot.rs`).
    #[test]
    fn the_library_prints_to_source_that_loads_back() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../patterns");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cep"))
            .collect();
        files.sort();
        let loaded = crate::load_paths(&files);
        assert!(!loaded.has_errors());
        assert!(!loaded.patterns.is_empty());
        for p in &loaded.patterns {
            let declared =
                (p.declarations.as_deref()).map_or_else(String::new, declarations_source);
            let text = declared + &pattern_source(p).unwrap();
            let again = crate::load_str("again.cep", &text);
            assert!(!again.has_errors(), "{text}\n{}", again.render());
            assert_eq!(
                crate::explain(&again.patterns[0]),
                crate::explain(p),
                "{text}"
            );
        }
    }
}
