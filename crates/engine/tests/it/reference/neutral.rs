//! Patterns and events in the neutral case format of the Flink oracle
//! (`../shared/flink-oracle/FORMAT.md`), so the reference can be checked
//! against the real Flink NFA (`reference_examples.rs`,
//! `reference_agrees_with_flink`).

use cepheid_core::expr::{AggregateFunc, BinaryOp, Expr, UnaryOp};
use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, SkipStrategy,
};
use cepheid_decode::value_to_json;
use cepheid_engine::Value;
use serde_json::{json, Value as Json};

use super::cond::RefEvent;

/// One case: the pattern, the events, the final advance.
pub fn case(id: &str, p: &Pattern, events: &[RefEvent], end: Option<i64>) -> Result<Json, String> {
    let name = |s| p.stage(s).name.clone();
    let skip = match p.skip {
        SkipStrategy::NoSkip => json!("no_skip"),
        SkipStrategy::ToNext => json!("skip_to_next"),
        SkipStrategy::PastLastEvent => json!("skip_past_last_event"),
        SkipStrategy::ToFirst(s) => json!({ "skip_to_first": name(s) }),
        SkipStrategy::ToLast(s) => json!({ "skip_to_last": name(s) }),
    };
    let events: Vec<Json> = events
        .iter()
        .map(|e| {
            let mut o = serde_json::Map::new();
            for (k, v) in &e.fields {
                o.insert(k.clone(), value_to_json(v));
            }
            o.insert("id".into(), json!(e.id));
            o.insert("ts".into(), json!(e.ts));
            Json::Object(o)
        })
        .collect();
    Ok(json!({
        "id": id,
        "pattern": {
            "within_ms": p.within,
            "skip": skip,
            "stages": sequence(p, &p.sequence.elements)?,
        },
        "events": events,
        "end_time": end,
    }))
}

fn sequence(p: &Pattern, elements: &[Element]) -> Result<Json, String> {
    let mut out = Vec::new();
    for (i, el) in elements.iter().enumerate() {
        out.push(stage(p, el, i == 0)?);
    }
    Ok(Json::Array(out))
}

fn stage(p: &Pattern, el: &Element, first: bool) -> Result<Json, String> {
    let contiguity = match el.contiguity {
        _ if first => Json::Null,
        Contiguity::Strict => json!("next"),
        Contiguity::Relaxed => json!("followed_by"),
        Contiguity::NonDeterministic => json!("followed_by_any"),
        Contiguity::NotNext => json!("not_next"),
        Contiguity::NotFollowedBy => json!("not_followed_by"),
    };
    let quantifier = match el.quantifier {
        Quantifier::One => Json::Null,
        Quantifier::Times { min, max } => json!({ "min": min, "max": max }),
        Quantifier::AtLeast(n) => json!({ "min": n, "max": null }),
    };
    let inner = match el.inner {
        InnerContiguity::Relaxed => "relaxed",
        InnerContiguity::Consecutive => "consecutive",
        InnerContiguity::Combinations => "allow_combinations",
    };
    let until = match &el.until {
        None => Json::Null,
        Some(c) => condition(p, c)?,
    };
    let (name, where_, group) = match &el.kind {
        ElementKind::Stage(s) => (
            json!(p.stage(*s).name),
            condition(p, &p.stage(*s).condition)?,
            Json::Null,
        ),
        ElementKind::Group(inner) => (Json::Null, Json::Null, sequence(p, &inner.elements)?),
        ElementKind::Alternation(_) => {
            return Err("Flink has no alternation: the oracle cannot run it".to_string())
        }
    };
    Ok(json!({
        "name": name,
        "contiguity": contiguity,
        "where": where_,
        "quantifier": quantifier,
        "optional": el.optional,
        "greedy": el.greedy,
        "inner": inner,
        "until": until,
        "group": group,
        "within_prev_ms": el.within,
    }))
}

fn condition(p: &Pattern, c: &Condition) -> Result<Json, String> {
    match c {
        Condition::True => Ok(json!({ "true": true })),
        Condition::Expr(e) => cond(p, e),
        Condition::Native(n) => Err(format!("native condition {}", n.description)),
    }
}

fn cmp_name(op: BinaryOp) -> Option<&'static str> {
    Some(match op {
        BinaryOp::Eq => "eq",
        BinaryOp::Ne => "ne",
        BinaryOp::Gt => "gt",
        BinaryOp::Ge => "ge",
        BinaryOp::Lt => "lt",
        BinaryOp::Le => "le",
        _ => return None,
    })
}

fn cond(p: &Pattern, e: &Expr) -> Result<Json, String> {
    Ok(match e {
        Expr::Literal(Value::Bool(true)) => json!({ "true": true }),
        Expr::Binary(BinaryOp::And, x, y) => json!({ "and": [cond(p, x)?, cond(p, y)?] }),
        Expr::Binary(BinaryOp::Or, x, y) => json!({ "or": [cond(p, x)?, cond(p, y)?] }),
        Expr::Unary(UnaryOp::Not, x) => json!({ "not": cond(p, x)? }),
        Expr::Binary(op, x, y) if cmp_name(*op).is_some() => {
            json!({ "cmp": [cmp_name(*op), value(p, x)?, value(p, y)?] })
        }
        Expr::In(x, items) => {
            let x = value(p, x)?;
            let parts = items
                .iter()
                .map(|i| Ok(json!({ "cmp": ["eq", x.clone(), value(p, i)?] })))
                .collect::<Result<Vec<_>, String>>()?;
            json!({ "or": parts })
        }
        other => return Err(format!("condition {other:?}")),
    })
}

fn value(p: &Pattern, e: &Expr) -> Result<Json, String> {
    let name = |s| p.stage(s).name.clone();
    Ok(match e {
        Expr::Literal(v) => json!({ "const": value_to_json(v) }),
        Expr::Field(f) => json!({ "field": f.to_string() }),
        Expr::StageField { stage, path } => {
            json!({ "last": [name(*stage), path.to_string()], "form": "dot" })
        }
        Expr::Aggregate {
            func,
            stage,
            path: Some(path),
        } => {
            let key = match func {
                AggregateFunc::Sum => "sum",
                AggregateFunc::First => "first",
                AggregateFunc::Last => "last",
                other => return Err(format!("aggregate {other:?}")),
            };
            json!({ key: [name(*stage), path.to_string()] })
        }
        Expr::Aggregate {
            func: AggregateFunc::Count,
            stage,
            path: None,
        } => json!({ "count": name(*stage) }),
        Expr::Binary(BinaryOp::Add, x, y) => json!({ "add": [value(p, x)?, value(p, y)?] }),
        other => return Err(format!("expression {other:?}")),
    })
}
