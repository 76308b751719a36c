//! Prints a pattern in the language (for failure reports): the exact text a
//! person can paste into a `.cep` file to reproduce a disagreement.

use std::fmt::Write;

use cepheid_core::expr::{BinaryOp, Expr, UnaryOp};
use cepheid_core::pattern::{
    Condition, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence, SkipStrategy,
};
use cepheid_engine::Value;

use super::cond::RefEvent;

/// The pattern as `.cep` text.
pub fn pattern(p: &Pattern) -> String {
    let mut out = format!("pattern {} {{\n", p.name);
    if let Some(w) = p.within {
        let _ = writeln!(out, "    within {w}ms");
    }
    let name = |s: cepheid_core::primitives::StageId| p.stage(s).name.clone();
    match p.skip {
        SkipStrategy::NoSkip => {}
        SkipStrategy::ToNext => out.push_str("    skip to next\n"),
        SkipStrategy::PastLastEvent => out.push_str("    skip past last event\n"),
        SkipStrategy::ToFirst(s) => out += &format!("    skip to first {}\n", name(s)),
        SkipStrategy::ToLast(s) => out += &format!("    skip to last {}\n", name(s)),
    }
    if p.emit_timeouts {
        out.push_str("    timeouts\n");
    }
    let mut untils = Vec::new();
    let _ = writeln!(out, "    match {}", sequence(p, &p.sequence, &mut untils));
    out.push_str("    where\n");
    for stage in &p.stages {
        if let Condition::Expr(e) = &stage.condition {
            let _ = writeln!(out, "        {}: {}", stage.name, expr(p, e));
        }
    }
    for (n, c) in untils {
        let _ = writeln!(out, "        {n}: {c}");
    }
    out.push('}');
    out
}

/// Events as JSON lines.
pub fn events(events: &[RefEvent]) -> String {
    events
        .iter()
        .map(|e| {
            let kind = e.fields.get("kind").and_then(Value::as_str).unwrap_or("?");
            let value = e.fields.get("value").and_then(Value::as_int).unwrap_or(0);
            format!(
                r#"{{"id": {}, "ts": {}, "kind": "{kind}", "value": {value}}}"#,
                e.id, e.ts
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sequence(p: &Pattern, seq: &Sequence, untils: &mut Vec<(String, String)>) -> String {
    let mut out = String::new();
    for (i, el) in seq.elements.iter().enumerate() {
        if i > 0 {
            let _ = write!(out, " {} ", el.contiguity.keyword());
        }
        out += &element(p, el, untils);
    }
    out
}

fn element(p: &Pattern, el: &Element, untils: &mut Vec<(String, String)>) -> String {
    let mut out = match &el.kind {
        ElementKind::Stage(s) => p.stage(*s).name.clone(),
        ElementKind::Group(inner) => format!("({})", sequence(p, inner, untils)),
        ElementKind::Alternation(branches) => {
            let parts: Vec<String> = branches
                .iter()
                .map(|b| format!("({})", sequence(p, b, untils)))
                .collect();
            format!("({})", parts.join(" or "))
        }
    };
    match el.quantifier {
        Quantifier::One => {}
        Quantifier::Times { min, max } if min == max => out += &format!("{{{min}}}"),
        Quantifier::Times { min, max } => out += &format!("{{{min},{max}}}"),
        Quantifier::AtLeast(1) => out.push('+'),
        Quantifier::AtLeast(n) => out += &format!("{{{n},}}"),
    }
    if el.optional {
        out += " optional";
    }
    if el.greedy {
        out += " greedy";
    }
    match el.inner {
        InnerContiguity::Relaxed => {}
        InnerContiguity::Consecutive => out += " consecutive",
        InnerContiguity::Combinations => out += " combinations",
    }
    if let Some(u) = &el.until {
        let name = format!("u{}", untils.len());
        let text = match u {
            Condition::Expr(e) => expr(p, e),
            _ => "true".to_string(),
        };
        out += &format!(" until {name}");
        untils.push((name, text));
    }
    if let Some(w) = el.within {
        out += &format!(" within {w}ms");
    }
    out
}

fn expr(p: &Pattern, e: &Expr) -> String {
    match e {
        Expr::Literal(Value::Str(s)) => format!("{s:?}"),
        Expr::Literal(v) => v.to_string(),
        Expr::Field(f) => f.to_string(),
        Expr::StageField { stage, path } => format!("{}.{path}", p.stage(*stage).name),
        Expr::Aggregate { func, stage, path } => match path {
            Some(f) => format!("{}({}.{f})", func.name(), p.stage(*stage).name),
            None => format!("{}({})", func.name(), p.stage(*stage).name),
        },
        Expr::Unary(UnaryOp::Not, x) => format!("not {}", expr(p, x)),
        Expr::Unary(UnaryOp::Neg, x) => format!("-{}", expr(p, x)),
        Expr::Binary(op, x, y) => {
            let (l, r) = (expr(p, x), expr(p, y));
            match op {
                BinaryOp::And | BinaryOp::Or => format!("({l} {op} {r})"),
                _ => format!("{l} {op} {r}"),
            }
        }
        Expr::Chain(first, rest) => {
            let nested = rest.iter().fold((**first).clone(), |acc, (op, y)| {
                Expr::Binary(*op, Box::new(acc), Box::new(y.clone()))
            });
            expr(p, &nested)
        }
        Expr::In(x, items) => {
            let items: Vec<String> = items.iter().map(|i| expr(p, i)).collect();
            format!("{} in [{}]", expr(p, x), items.join(", "))
        }
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(|a| expr(p, a)).collect();
            format!("{}({})", f.name(), args.join(", "))
        }
        Expr::Matches(x, re) => format!("matches({}, {:?})", expr(p, x), re.as_str()),
        Expr::Exists(f) => format!("exists({f})"),
        Expr::InList(x, list) => format!("{} in {}", expr(p, x), list.name),
        Expr::Indicator(i, args) => format!(
            "{}({})",
            i.name,
            args.iter()
                .map(|a| expr(p, a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
