//! Human-readable views of a lowered [`Pattern`]: [`explain`] (text, shown
//! by `cepheid explain`) and [`sequence_dot`] (a Graphviz graph of the
//! element sequence). The NFA's own views are appended by the caller once
//! the pattern is compiled.

use std::fmt::Write;

use crate::expr::{Expr, UnaryOp};
use crate::pattern::{
    show_ms, Condition, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence,
    SkipStrategy, Stage,
};
use crate::print::{
    binary_precedence, print_name, write_float, write_negation, write_run, write_string,
    COMPARISON, NEG, NOT, PRIMARY,
};
use crate::value::Value;

/// The pattern as text: doc, clauses, stages with their conditions (as
/// source), the element tree, and `select`.
pub fn explain(p: &Pattern) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pattern {}", p.name);
    if let Some(doc) = &p.doc {
        for line in doc.lines() {
            let _ = writeln!(out, "  /// {line}");
        }
    }
    let mut keys: Vec<String> = p.partition_by.iter().map(ToString::to_string).collect();
    keys.extend(
        p.partition_by_fn
            .iter()
            .map(|k| format!("<{}>", k.description)),
    );
    let partition = if keys.is_empty() {
        "(one global partition)".to_string()
    } else {
        keys.join(", ")
    };
    let _ = writeln!(out, "  partition by: {partition}");
    let within = p.within.map_or("(none)".to_string(), show_ms);
    let _ = writeln!(out, "  within:       {within}");
    let _ = writeln!(out, "  skip:         {}", skip_text(p));
    let timeouts = if p.emit_timeouts {
        "emitted"
    } else {
        "not emitted"
    };
    let _ = writeln!(out, "  timeouts:     {timeouts}");
    if p.shadow {
        // (left out of the canonical text: `cepheid_engine`'s
        // `canonical_text` explains the pattern without the mark)
        out.push_str("  shadow:       its records go to the shadow output\n");
        if !p.writes.is_empty() {
            // (`docs/semantics.md`, "Shadow rules")
            out.push_str(
                "                its writes go to the lists' shadow copies, read by shadow rules only\n",
            );
        }
    }
    out.push_str("  stages:\n");
    for (i, s) in p.stages.iter().enumerate() {
        let _ = writeln!(
            out,
            "    #{i} {}: {}",
            s.name,
            condition_text(&s.condition, &p.stages)
        );
    }
    out.push_str("  sequence:\n");
    write_sequence(&mut out, &p.sequence, &p.stages, 2);
    if !p.select.is_empty() {
        out.push_str("  select:\n");
        for item in &p.select {
            let _ = writeln!(
                out,
                "    {} = {}",
                item.name,
                expr_text(&item.expr, &p.stages)
            );
        }
    }
    let a = &p.attributes;
    if !a.is_empty() {
        out.push_str("  attributes:\n");
        if let Some(score) = &a.score {
            let _ = writeln!(out, "    score = {score}");
        }
        if let Some(level) = &a.level {
            let _ = writeln!(out, "    level = {level}");
        }
        if let Some(action) = &a.action {
            let _ = writeln!(out, "    action = {action}");
        }
        if !a.tags.is_empty() {
            let tags: Vec<&str> = a.tags.iter().map(|t| &**t).collect();
            let _ = writeln!(out, "    tags = {}", tags.join(", "));
        }
    }
    if !p.writes.is_empty() {
        out.push_str("  then:\n");
        for w in &p.writes {
            let value = expr_text(&w.value, &p.stages);
            let _ = match w.op {
                crate::lookup::WriteOp::Add => write!(out, "    add {value} to {}", w.list.name),
                crate::lookup::WriteOp::Remove => {
                    write!(out, "    remove {value} from {}", w.list.name)
                }
            };
            if let Some(ms) = w.expiry {
                let _ = write!(out, " for {}", show_ms(ms));
            }
            out.push('\n');
        }
    }
    out
}

fn skip_text(p: &Pattern) -> String {
    match p.skip {
        SkipStrategy::NoSkip => "no skip".to_string(),
        SkipStrategy::ToNext => "to next".to_string(),
        SkipStrategy::PastLastEvent => "past last event".to_string(),
        SkipStrategy::ToFirst(s) => format!("to first {}", stage_name(&p.stages, s.index())),
        SkipStrategy::ToLast(s) => format!("to last {}", stage_name(&p.stages, s.index())),
    }
}

fn stage_name(stages: &[Stage], i: usize) -> &str {
    stages.get(i).map_or("?", |s| s.name.as_str())
}

pub(crate) fn condition_text(c: &Condition, stages: &[Stage]) -> String {
    match c {
        Condition::True => "(every event)".to_string(),
        Condition::Expr(e) => expr_text(e, stages),
        Condition::Native(n) => format!("<{}>", n.description),
    }
}

/// One element per line, groups indented (with an explicit stack).
fn write_sequence(out: &mut String, root: &Sequence, stages: &[Stage], indent: usize) {
    let mut stack: Vec<(std::slice::Iter<'_, Element>, usize, bool)> =
        vec![(root.elements.iter(), indent, true)];
    while let Some((iter, depth, first)) = stack.last_mut() {
        let Some(e) = iter.next() else {
            stack.pop();
            continue;
        };
        let depth = *depth;
        let pad = "  ".repeat(depth);
        let connector = if *first { "" } else { e.contiguity.keyword() };
        *first = false;
        let head = match &e.kind {
            ElementKind::Stage(s) => stage_name(stages, s.index()).to_string(),
            ElementKind::Group(_) => "group".to_string(),
            ElementKind::Alternation(b) => format!("one of {} branches", b.len()),
        };
        let sep = if connector.is_empty() { "" } else { " " };
        let _ = writeln!(
            out,
            "{pad}{connector}{sep}{head}{}",
            element_details(e, stages)
        );
        match &e.kind {
            ElementKind::Group(inner) => stack.push((inner.elements.iter(), depth + 1, true)),
            ElementKind::Alternation(branches) => {
                // Recursion: alternations nest no deeper than groups do.
                for (i, b) in branches.iter().enumerate() {
                    let _ = writeln!(out, "{pad}  branch {}:", i + 1);
                    write_sequence(out, b, stages, depth + 2);
                }
            }
            ElementKind::Stage(_) => {}
        }
    }
}

fn element_details(e: &Element, stages: &[Stage]) -> String {
    let mut parts = Vec::new();
    match e.quantifier {
        Quantifier::One => {}
        Quantifier::Times { min, max } if min == max => parts.push(format!("exactly {min}")),
        Quantifier::Times { min, max } => parts.push(format!("{min} to {max}")),
        Quantifier::AtLeast(n) => parts.push(format!("{n} or more (looping)")),
    }
    if e.optional {
        parts.push("optional".to_string());
    }
    if e.greedy {
        parts.push("greedy".to_string());
    }
    match e.inner {
        InnerContiguity::Relaxed if e.is_repeating() => parts.push("relaxed inside".to_string()),
        InnerContiguity::Relaxed => {}
        InnerContiguity::Consecutive => parts.push("consecutive".to_string()),
        InnerContiguity::Combinations => parts.push("combinations".to_string()),
    }
    if let Some(u) = &e.until {
        parts.push(format!("until {}", condition_text(u, stages)));
    }
    if let Some(w) = e.within {
        parts.push(format!("within {} of the previous event", show_ms(w)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  [{}]", parts.join(", "))
    }
}

fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary(op, ..) => binary_precedence(*op),
        // The last operator is applied last.
        Expr::Chain(first, rest) => rest
            .last()
            .map_or_else(|| precedence(first), |(op, _)| binary_precedence(*op)),
        Expr::In(..) | Expr::InList(..) => COMPARISON,
        Expr::Unary(UnaryOp::Not, _) => NOT,
        Expr::Unary(UnaryOp::Neg, _) => NEG,
        _ => PRIMARY,
    }
}

/// An IR expression as source text (stage ids shown by name).
pub fn expr_text(e: &Expr, stages: &[Stage]) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, stages);
    out
}

fn wrapped(out: &mut String, e: &Expr, stages: &[Stage], parens: bool) {
    if parens {
        out.push('(');
    }
    write_expr(out, e, stages);
    if parens {
        out.push(')');
    }
}

fn write_path(out: &mut String, path: &crate::event::FieldPath) {
    for (i, s) in path.segments().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        print_name(out, s);
    }
}

fn write_expr(out: &mut String, e: &Expr, stages: &[Stage]) {
    match e {
        Expr::Literal(v) => write_value(out, v),
        Expr::Field(p) => write_path(out, p),
        Expr::StageField { stage, path } => {
            out.push_str(stage_name(stages, stage.index()));
            out.push('.');
            write_path(out, path);
        }
        Expr::Aggregate { func, stage, path } => {
            let _ = write!(out, "{}({}", func.name(), stage_name(stages, stage.index()));
            if let Some(p) = path {
                out.push('.');
                write_path(out, p);
            }
            out.push(')');
        }
        Expr::Unary(UnaryOp::Not, x) => {
            out.push_str("not ");
            wrapped(out, x, stages, precedence(x) < NOT);
        }
        Expr::Unary(UnaryOp::Neg, x) => {
            let (starts_with_minus, starts_with_digit) = match &**x {
                Expr::Literal(Value::Int(i)) => (*i < 0, *i >= 0),
                Expr::Literal(Value::Float(f)) => (f.is_sign_negative(), f.is_sign_positive()),
                Expr::Unary(UnaryOp::Neg, _) => (true, false),
                _ => (false, false),
            };
            write_negation(out, starts_with_minus);
            wrapped(out, x, stages, starts_with_digit || precedence(x) < NEG);
        }
        Expr::Binary(op, l, r) => write_run(
            out,
            &**l,
            std::iter::once((*op, &**r)),
            precedence,
            |out, e| write_expr(out, e, stages),
        ),
        Expr::Chain(first, rest) => write_run(
            out,
            &**first,
            rest.iter().map(|(op, x)| (*op, x)),
            precedence,
            |out, e| write_expr(out, e, stages),
        ),
        Expr::In(x, items) => {
            wrapped(out, x, stages, precedence(x) <= COMPARISON);
            out.push_str(" in [");
            write_items(out, items, stages);
            out.push(']');
        }
        Expr::Call(f, args) => {
            let _ = write!(out, "{}(", f.name());
            write_items(out, args, stages);
            out.push(')');
        }
        Expr::Matches(x, re) => {
            out.push_str("matches(");
            write_expr(out, x, stages);
            out.push_str(", ");
            write_string(out, re.as_str());
            out.push(')');
        }
        Expr::Exists(p) => {
            out.push_str("exists(");
            write_path(out, p);
            out.push(')');
        }
        Expr::InList(x, list) => {
            wrapped(out, x, stages, precedence(x) <= COMPARISON);
            let _ = write!(out, " in {}", list.name);
        }
        Expr::Indicator(indicator, args) => {
            let _ = write!(out, "{}(", indicator.name);
            write_items(out, args, stages);
            out.push(')');
        }
    }
}

fn write_items(out: &mut String, items: &[Expr], stages: &[Stage]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, item, stages);
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_string(out, s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
    }
}

/// A Graphviz `dot` graph of the element sequence: one node per element,
/// edges labelled with the connectors, groups as clusters.
pub fn sequence_dot(p: &Pattern) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {:?} {{", p.name);
    out.push_str("  rankdir=LR;\n  node [shape=box];\n  start [shape=point];\n");
    let mut counter = 0usize;
    let mut previous = "start".to_string();
    dot_sequence(
        &mut out,
        &p.sequence,
        &p.stages,
        &mut counter,
        &mut previous,
        0,
    );
    out.push_str("  end [shape=doublecircle, label=\"\"];\n");
    let _ = writeln!(out, "  {previous} -> end;");
    out.push_str("}\n");
    out
}

fn dot_sequence(
    out: &mut String,
    seq: &Sequence,
    stages: &[Stage],
    counter: &mut usize,
    previous: &mut String,
    depth: usize,
) {
    for (i, e) in seq.elements.iter().enumerate() {
        let label = if i == 0 && depth == 0 {
            String::new()
        } else {
            e.contiguity.keyword().to_string()
        };
        match &e.kind {
            ElementKind::Stage(s) => {
                let id = format!("n{counter}");
                *counter += 1;
                let text = format!(
                    "{}{}",
                    stage_name(stages, s.index()),
                    element_details(e, stages)
                );
                let _ = writeln!(out, "  {id} [label={text:?}];");
                let _ = writeln!(out, "  {previous} -> {id} [label={label:?}];");
                *previous = id;
            }
            ElementKind::Group(inner) if depth < crate::pattern::MAX_NESTING => {
                let _ = writeln!(out, "  subgraph cluster_{counter} {{");
                let _ = writeln!(
                    out,
                    "  label={:?};",
                    format!("group{}", element_details(e, stages))
                );
                *counter += 1;
                let entry = format!("g{counter}");
                *counter += 1;
                let _ = writeln!(out, "  {entry} [shape=point];");
                let _ = writeln!(out, "  {previous} -> {entry} [label={label:?}];");
                *previous = entry;
                dot_sequence(out, inner, stages, counter, previous, depth + 1);
                out.push_str("  }\n");
            }
            ElementKind::Alternation(branches) if depth < crate::pattern::MAX_NESTING => {
                let entry = format!("g{counter}");
                *counter += 1;
                let join = format!("g{counter}");
                *counter += 1;
                let _ = writeln!(out, "  {entry} [shape=point];");
                let _ = writeln!(out, "  {previous} -> {entry} [label={label:?}];");
                for (i, b) in branches.iter().enumerate() {
                    let _ = writeln!(out, "  subgraph cluster_{counter} {{");
                    let _ = writeln!(
                        out,
                        "  label={:?};",
                        format!("branch {}{}", i + 1, element_details(e, stages))
                    );
                    *counter += 1;
                    let mut last = entry.clone();
                    dot_sequence(out, b, stages, counter, &mut last, depth + 1);
                    out.push_str("  }\n");
                    let _ = writeln!(out, "  {last} -> {join} [label=\"\"];");
                }
                let _ = writeln!(out, "  {join} [shape=point];");
                *previous = join;
            }
            ElementKind::Group(_) | ElementKind::Alternation(_) => {}
        }
    }
}
