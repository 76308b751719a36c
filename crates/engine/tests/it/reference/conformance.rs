//! Loads the conformance cases of `../shared/conformance/flink/` straight
//! from their structured `case.json` (not from `pattern.cep`, so the
//! reference does not depend on the language front end).

use std::path::Path;

use cepheid_core::expr::{AggregateFunc, BinaryOp, Expr, Function, UnaryOp};
use cepheid_core::pattern::{
    Condition, Contiguity, Element, ElementKind, InnerContiguity, Pattern, Quantifier, Sequence,
    SkipStrategy, Stage,
};
use cepheid_core::primitives::StageId;
use cepheid_decode::value_from_json;
use cepheid_engine::{FieldPath, Value};
use serde_json::Value as Json;

use super::cond::RefEvent;

/// One case, ready for the reference.
pub struct Case {
    /// Folder name.
    pub id: String,
    /// The pattern (stage names as Flink reports them).
    pub pattern: Pattern,
    /// The input events, in arrival order.
    pub events: Vec<RefEvent>,
    /// The raw case.
    pub json: Json,
}

/// Loads a case, or says why the reference does not run it.
pub fn load(dir: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(dir.join("case.json")).map_err(|e| e.to_string())?;
    let json: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let id = dir.file_name().unwrap().to_string_lossy().to_string();
    parse(id, json)
}

/// Reads a case object of the neutral format (a conformance `case.json`,
/// or a case of the oracle's generator with structured conditions).
pub fn parse(id: String, json: Json) -> Result<Case, String> {
    if json.get("harness").is_some_and(|h| h != "nfa") {
        return Err("operator harness (watermarks, keys)".into());
    }
    if json.get("expected_error").is_some() {
        return Err("pattern error case".into());
    }
    let p = &json["pattern"];
    let mut reader = Reader {
        stages: Vec::new(),
        pending: Vec::new(),
    };
    reader.declare(p["stages"].as_array().ok_or("no stages")?);
    let sequence = reader.sequence(p["stages"].as_array().unwrap())?;
    let skip = skip(&p["skip"], &reader.stages)?;
    let mut stages = reader.stages;
    for (id, where_) in reader.pending {
        stages[id.index()].condition = condition(&where_, &stages)?;
    }
    let mut pattern = Pattern::new("p", stages, sequence);
    pattern.within = p["within_ms"].as_i64();
    pattern.skip = skip;
    pattern.emit_timeouts = !json["expected_timeouts"].is_null();
    let events = json["events"]
        .as_array()
        .ok_or("no events")?
        .iter()
        .map(|e| {
            let fields = e
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), value_from_json(v)))
                .collect();
            RefEvent {
                id: e["id"].as_u64().unwrap(),
                ts: e["ts"].as_i64().unwrap(),
                fields,
            }
        })
        .collect();
    Ok(Case {
        id,
        pattern,
        events,
        json,
    })
}

struct Reader {
    stages: Vec<Stage>,
    pending: Vec<(StageId, Json)>,
}

impl Reader {
    fn declare(&mut self, items: &[Json]) {
        for item in items {
            match item["group"].as_array() {
                Some(group) => self.declare(group),
                None => {
                    let id = StageId(self.stages.len() as u16);
                    let name = item["name"].as_str().unwrap().to_string();
                    self.stages.push(Stage::new(name, Condition::True));
                    self.pending.push((id, item["where"].clone()));
                }
            }
        }
    }

    fn sequence(&mut self, items: &[Json]) -> Result<Sequence, String> {
        let mut elements = Vec::new();
        for item in items {
            elements.push(self.element(item)?);
        }
        Ok(Sequence::new(elements))
    }

    fn element(&mut self, item: &Json) -> Result<Element, String> {
        let kind = match item["group"].as_array() {
            Some(group) => ElementKind::Group(self.sequence(group)?),
            None => {
                let name = item["name"].as_str().unwrap();
                ElementKind::Stage(StageId(
                    self.stages.iter().position(|s| s.name == name).unwrap() as u16,
                ))
            }
        };
        let contiguity = match item["contiguity"].as_str() {
            None | Some("next") => Contiguity::Strict,
            Some("followed_by") => Contiguity::Relaxed,
            Some("followed_by_any") => Contiguity::NonDeterministic,
            Some("not_next") => Contiguity::NotNext,
            Some("not_followed_by") => Contiguity::NotFollowedBy,
            Some(other) => return Err(format!("contiguity {other}")),
        };
        let mut optional = item["optional"].as_bool().unwrap_or(false);
        let quantifier = match &item["quantifier"] {
            Json::Null => Quantifier::One,
            q => {
                if q.get("window_ms").is_some() {
                    return Err("per-occurrence window (implementation-defined)".into());
                }
                let min = q["min"].as_u64().unwrap() as u32;
                optional |= min == 0;
                match q["max"].as_u64() {
                    None => Quantifier::AtLeast(min.max(1)),
                    Some(max) => Quantifier::Times {
                        min: min.max(1),
                        max: max as u32,
                    },
                }
            }
        };
        let inner = match item["inner"].as_str() {
            Some("consecutive") => InnerContiguity::Consecutive,
            Some("allow_combinations") => InnerContiguity::Combinations,
            _ => InnerContiguity::Relaxed,
        };
        let until = match &item["until"] {
            Json::Null => None,
            u => Some(condition(u, &self.stages)?),
        };
        let mut el = match kind {
            ElementKind::Stage(id) => Element::stage(id),
            ElementKind::Group(seq) => Element::group(seq),
            ElementKind::Alternation(_) => unreachable!("never built here"),
        };
        el.contiguity = contiguity;
        el.quantifier = quantifier;
        el.optional = optional;
        el.greedy = item["greedy"].as_bool().unwrap_or(false);
        el.inner = inner;
        el.until = until;
        el.within = item.get("within_prev_ms").and_then(Json::as_i64);
        Ok(el)
    }
}

fn skip(json: &Json, stages: &[Stage]) -> Result<SkipStrategy, String> {
    let find = |name: &Json| {
        let name = name.as_str().unwrap();
        stages
            .iter()
            .position(|s| s.name == name)
            .map(|i| StageId(i as u16))
            .ok_or("skip target")
    };
    Ok(match json {
        Json::String(s) if s == "no_skip" => SkipStrategy::NoSkip,
        Json::String(s) if s == "skip_to_next" => SkipStrategy::ToNext,
        Json::String(s) if s == "skip_past_last_event" => SkipStrategy::PastLastEvent,
        Json::Object(o) if o.contains_key("throw_on_miss") => return Err("throw on miss".into()),
        Json::Object(o) if o.contains_key("skip_to_first") => {
            SkipStrategy::ToFirst(find(&o["skip_to_first"])?)
        }
        Json::Object(o) if o.contains_key("skip_to_last") => {
            SkipStrategy::ToLast(find(&o["skip_to_last"])?)
        }
        other => return Err(format!("skip {other}")),
    })
}

fn field(name: &str) -> Expr {
    Expr::Field(FieldPath::single(name))
}

fn bin(op: BinaryOp, x: Expr, y: Expr) -> Expr {
    Expr::Binary(op, Box::new(x), Box::new(y))
}

fn condition(json: &Json, stages: &[Stage]) -> Result<Condition, String> {
    if json.is_null() {
        return Ok(Condition::True);
    }
    Ok(Condition::Expr(expr(json, stages)?))
}

fn expr(json: &Json, stages: &[Stage]) -> Result<Expr, String> {
    let (op, args) = json
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or("bad condition")?;
    let arg = |i: usize| &args[i];
    let lit = |j: &Json| Expr::Literal(value_from_json(j));
    let stage = |name: &str| StageId(stages.iter().position(|s| s.name == name).unwrap() as u16);
    let sum = |name: &str| Expr::Aggregate {
        func: AggregateFunc::Sum,
        stage: stage(name),
        path: Some(FieldPath::single("price")),
    };
    Ok(match op.as_str() {
        "true" => Expr::Literal(Value::Bool(true)),
        "not" => Expr::Unary(UnaryOp::Not, Box::new(expr(args, stages)?)),
        "cmp" => {
            let op = match args[0].as_str().unwrap() {
                "eq" => BinaryOp::Eq,
                "ne" => BinaryOp::Ne,
                "gt" => BinaryOp::Gt,
                "ge" => BinaryOp::Ge,
                "lt" => BinaryOp::Lt,
                _ => BinaryOp::Le,
            };
            bin(op, value(&args[1], stages)?, value(&args[2], stages)?)
        }
        "eq" => bin(BinaryOp::Eq, field(arg(0).as_str().unwrap()), lit(arg(1))),
        "gt" => bin(BinaryOp::Gt, field(arg(0).as_str().unwrap()), lit(arg(1))),
        "contains" => Expr::Call(Function::Contains, vec![field(arg(0).as_str().unwrap()), lit(arg(1))]),
        "and" | "or" => {
            let op = if op == "and" { BinaryOp::And } else { BinaryOp::Or };
            let parts = args.as_array().unwrap().iter().map(|a| expr(a, stages)).collect::<Result<Vec<_>, _>>()?;
            parts.into_iter().reduce(|a, b| bin(op, a, b)).ok_or("empty")?
        }
        "iterative" => match args.as_str().unwrap() {
            t if t.starts_with("name contains 'b' AND price == price of the first") => {
                let first = Expr::Aggregate {
                    func: AggregateFunc::First,
                    stage: stage("a"),
                    path: Some(FieldPath::single("price")),
                };
                bin(
                    BinaryOp::And,
                    Expr::Call(Function::Contains, vec![field("name"), lit(&Json::from("b"))]),
                    bin(BinaryOp::Eq, field("price"), first),
                )
            }
            t if t.starts_with("name starts with 'foo' AND (sum of price over events already matched to 'middle'") => bin(
                BinaryOp::And,
                Expr::Call(Function::StartsWith, vec![field("name"), lit(&Json::from("foo"))]),
                bin(BinaryOp::Lt, bin(BinaryOp::Add, sum("middle"), field("price")), lit(&Json::from(5.0))),
            ),
            t if t.starts_with("name == 'start' AND (sum of price over events already matched to 'start'") => bin(
                BinaryOp::And,
                bin(BinaryOp::Eq, field("name"), lit(&Json::from("start"))),
                bin(BinaryOp::Lt, bin(BinaryOp::Add, sum("start"), field("price")), lit(&Json::from(5.0))),
            ),
            t if t.starts_with("sum of price over events already matched to 'middle' (current event excluded) == 6.0") => {
                bin(BinaryOp::Eq, sum("middle"), lit(&Json::from(6.0)))
            }
            t if t.starts_with("sum of price over events matched to 'middle' == 4.0") => {
                bin(BinaryOp::Eq, sum("middle"), lit(&Json::from(4.0)))
            }
            other => return Err(format!("iterative condition `{other}`")),
        },
        other => return Err(format!("condition `{other}`")),
    })
}

/// A value of the structured conditions (`{"field"}`, `{"const"}`,
/// `{"last"}`, `{"first"}`, `{"sum"}`, `{"count"}`, `{"add"}`).
fn value(json: &Json, stages: &[Stage]) -> Result<Expr, String> {
    let stage = |name: &Json| {
        let name = name.as_str().unwrap_or_default();
        stages
            .iter()
            .position(|s| s.name == name)
            .map(|i| StageId(i as u16))
            .ok_or_else(|| format!("unknown stage {name}"))
    };
    let aggregate = |func, args: &Json| -> Result<Expr, String> {
        Ok(Expr::Aggregate {
            func,
            stage: stage(&args[0])?,
            path: Some(FieldPath::single(args[1].as_str().unwrap_or_default())),
        })
    };
    Ok(match json {
        j if j.get("field").is_some() => field(j["field"].as_str().unwrap_or_default()),
        j if j.get("const").is_some() => Expr::Literal(value_from_json(&j["const"])),
        j if j.get("last").is_some() && j["form"] == "dot" => Expr::StageField {
            stage: stage(&j["last"][0])?,
            path: FieldPath::single(j["last"][1].as_str().unwrap_or_default()),
        },
        j if j.get("last").is_some() => aggregate(AggregateFunc::Last, &j["last"])?,
        j if j.get("first").is_some() => aggregate(AggregateFunc::First, &j["first"])?,
        j if j.get("sum").is_some() => aggregate(AggregateFunc::Sum, &j["sum"])?,
        j if j.get("count").is_some() => Expr::Aggregate {
            func: AggregateFunc::Count,
            stage: stage(&j["count"])?,
            path: None,
        },
        j if j.get("add").is_some() => bin(
            BinaryOp::Add,
            value(&j["add"][0], stages)?,
            value(&j["add"][1], stages)?,
        ),
        other => return Err(format!("value {other}")),
    })
}
