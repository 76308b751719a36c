//! Events of the reference and a small, independent evaluator for the
//! subset of [`Expr`] that the differential test and the worked examples use.
//!
//! The reference does not use `cepheid_core::expr`: conditions are evaluated here
//! directly over the run's taken events, so a bug in the real expression
//! engine shows up as a disagreement instead of being shared.

use std::collections::BTreeMap;

use cepheid_core::expr::{AggregateFunc, BinaryOp, Expr, Function, UnaryOp};
use cepheid_core::pattern::Condition;
use cepheid_core::primitives::StageId;
use cepheid_engine::{FieldPath, Value};

/// One input event: an id (reported in matches), a timestamp, and named fields.
#[derive(Clone, Debug, PartialEq)]
pub struct RefEvent {
    /// Identity reported in matches.
    pub id: u64,
    /// Event time in milliseconds.
    pub ts: i64,
    /// Field values by name (one segment names only).
    pub fields: BTreeMap<String, Value>,
}

impl RefEvent {
    /// An event of the differential test: `{id, ts, kind, value}`.
    pub fn kv(id: u64, ts: i64, kind: char, value: i64) -> RefEvent {
        let mut fields = BTreeMap::new();
        fields.insert("kind".to_string(), Value::from(kind.to_string()));
        fields.insert("value".to_string(), Value::Int(value));
        fields.insert("id".to_string(), Value::Int(id as i64));
        fields.insert("ts".to_string(), Value::Int(ts));
        RefEvent { id, ts, fields }
    }

    /// The value of a (single segment) field, null when absent.
    pub fn field(&self, path: &FieldPath) -> Value {
        let name = path.to_string();
        self.fields.get(&name).cloned().unwrap_or(Value::Null)
    }
}

/// The events a run accepted before the candidate, as `(stage, event)`.
pub type Taken<'a> = [(StageId, &'a RefEvent)];

/// Does `cond` accept `event`, given what the run took before it?
pub fn holds(cond: &Condition, event: &RefEvent, taken: &Taken<'_>) -> bool {
    match cond {
        Condition::True => true,
        Condition::Expr(e) => matches!(eval(e, event, taken), Value::Bool(true)),
        Condition::Native(n) => panic!(
            "the reference cannot evaluate native condition {}",
            n.description
        ),
    }
}

/// Evaluates the supported subset of expressions (depth is bounded by the
/// generator and the hand-written examples, so recursion is fine here).
pub fn eval(expr: &Expr, event: &RefEvent, taken: &Taken<'_>) -> Value {
    match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Field(path) => event.field(path),
        Expr::StageField { stage, path } => taken
            .iter()
            .rev()
            .find(|(s, _)| s == stage)
            .map_or(Value::Null, |(_, e)| e.field(path)),
        Expr::Aggregate { func, stage, path } => aggregate(*func, *stage, path.as_ref(), taken),
        Expr::Unary(UnaryOp::Not, x) => match eval(x, event, taken) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Expr::Unary(UnaryOp::Neg, x) => match eval(x, event, taken) {
            Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
            Value::Float(f) => Value::Float(-f),
            _ => Value::Null,
        },
        Expr::Binary(op, x, y) => binary(*op, eval(x, event, taken), || eval(y, event, taken)),
        Expr::Chain(first, rest) => rest.iter().fold(eval(first, event, taken), |acc, (op, y)| {
            binary(*op, acc, || eval(y, event, taken))
        }),
        Expr::In(x, items) => {
            let v = eval(x, event, taken);
            if v.is_null() {
                return Value::Null;
            }
            let found = items
                .iter()
                .any(|i| equal(&v, &eval(i, event, taken)) == Some(true));
            Value::Bool(found)
        }
        Expr::Call(func, args) => call(
            *func,
            &args
                .iter()
                .map(|a| eval(a, event, taken))
                .collect::<Vec<_>>(),
        ),
        Expr::Matches(x, re) => match eval(x, event, taken) {
            Value::Str(s) => Value::Bool(re.is_match(&s)),
            _ => Value::Null,
        },
        Expr::Exists(path) => Value::Bool(!event.field(path).is_null()),
        // (the reference has no lists or indicators: without a lookup,
        // the engine's evaluation gives null too)
        Expr::InList(..) | Expr::Indicator(..) => Value::Null,
    }
}

fn aggregate(
    func: AggregateFunc,
    stage: StageId,
    path: Option<&FieldPath>,
    taken: &Taken<'_>,
) -> Value {
    let events: Vec<&RefEvent> = taken
        .iter()
        .filter(|(s, _)| *s == stage)
        .map(|(_, e)| *e)
        .collect();
    let values: Vec<Value> = match path {
        Some(p) => events
            .iter()
            .map(|e| e.field(p))
            .filter(|v| !v.is_null())
            .collect(),
        None => Vec::new(),
    };
    match func {
        AggregateFunc::Count => Value::Int(events.len() as i64),
        AggregateFunc::Sum => values
            .into_iter()
            .fold(Value::Int(0), |acc, v| arith(BinaryOp::Add, &acc, &v)),
        AggregateFunc::Avg => {
            if values.is_empty() {
                return Value::Null;
            }
            let n = values.len() as f64;
            let sum = values.iter().filter_map(Value::as_f64).sum::<f64>();
            Value::Float(sum / n)
        }
        AggregateFunc::Min | AggregateFunc::Max => values
            .into_iter()
            .reduce(|a, b| {
                let less = compare(&b, &a) == Some(std::cmp::Ordering::Less);
                if less == (func == AggregateFunc::Min) {
                    b
                } else {
                    a
                }
            })
            .unwrap_or(Value::Null),
        AggregateFunc::First => path
            .and_then(|p| events.first().map(|e| e.field(p)))
            .unwrap_or(Value::Null),
        AggregateFunc::Last => path
            .and_then(|p| events.last().map(|e| e.field(p)))
            .unwrap_or(Value::Null),
        AggregateFunc::Distinct => {
            let mut out: Vec<Value> = Vec::new();
            for v in values {
                if !out.iter().any(|o| equal(o, &v) == Some(true)) {
                    out.push(v);
                }
            }
            Value::List(out.into())
        }
    }
}

fn binary(op: BinaryOp, x: Value, y: impl FnOnce() -> Value) -> Value {
    match op {
        BinaryOp::And => match x {
            Value::Bool(false) => Value::Bool(false),
            Value::Bool(true) => match y() {
                Value::Bool(b) => Value::Bool(b),
                _ => Value::Null,
            },
            _ => match y() {
                Value::Bool(false) => Value::Bool(false),
                _ => Value::Null,
            },
        },
        BinaryOp::Or => match x {
            Value::Bool(true) => Value::Bool(true),
            Value::Bool(false) => match y() {
                Value::Bool(b) => Value::Bool(b),
                _ => Value::Null,
            },
            _ => match y() {
                Value::Bool(true) => Value::Bool(true),
                _ => Value::Null,
            },
        },
        BinaryOp::Eq => {
            let y = y();
            if x.is_null() || y.is_null() {
                return Value::Bool(x.is_null() && y.is_null());
            }
            equal(&x, &y).map_or(Value::Null, Value::Bool)
        }
        BinaryOp::Ne => {
            let y = y();
            if x.is_null() || y.is_null() {
                return Value::Bool(x.is_null() != y.is_null());
            }
            equal(&x, &y).map_or(Value::Null, |b| Value::Bool(!b))
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            use std::cmp::Ordering::*;
            let Some(ord) = compare(&x, &y()) else {
                return Value::Null;
            };
            Value::Bool(match op {
                BinaryOp::Lt => ord == Less,
                BinaryOp::Le => ord != Greater,
                BinaryOp::Gt => ord == Greater,
                _ => ord != Less,
            })
        }
        _ => arith(op, &x, &y()),
    }
}

fn arith(op: BinaryOp, x: &Value, y: &Value) -> Value {
    match (x, y) {
        (Value::Int(a), Value::Int(b)) => {
            let r = match op {
                BinaryOp::Add => a.checked_add(*b),
                BinaryOp::Sub => a.checked_sub(*b),
                BinaryOp::Mul => a.checked_mul(*b),
                BinaryOp::Div => a.checked_div(*b),
                _ => a.checked_rem(*b),
            };
            r.map_or(Value::Null, Value::Int)
        }
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(a), Some(b)) => match op {
                BinaryOp::Add => Value::Float(a + b),
                BinaryOp::Sub => Value::Float(a - b),
                BinaryOp::Mul => Value::Float(a * b),
                BinaryOp::Div if b != 0.0 => Value::Float(a / b),
                BinaryOp::Rem if b != 0.0 => Value::Float(a % b),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
    }
}

fn equal(x: &Value, y: &Value) -> Option<bool> {
    match (x, y) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            Some(compare(x, y)? == std::cmp::Ordering::Equal)
        }
        (Value::Str(a), Value::Str(b)) => Some(a == b),
        (Value::Bool(a), Value::Bool(b)) => Some(a == b),
        (Value::List(a), Value::List(b)) => Some(a == b),
        _ => None,
    }
}

fn compare(x: &Value, y: &Value) -> Option<std::cmp::Ordering> {
    match (x, y) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

fn call(func: Function, args: &[Value]) -> Value {
    let s = |i: usize| args.get(i).and_then(Value::as_str);
    match func {
        Function::Contains => match (args.first(), args.get(1)) {
            (Some(Value::List(items)), Some(v)) => {
                Value::Bool(items.iter().any(|i| equal(i, v) == Some(true)))
            }
            _ => match (s(0), s(1)) {
                (Some(a), Some(b)) => Value::Bool(a.contains(b)),
                _ => Value::Null,
            },
        },
        Function::StartsWith => match (s(0), s(1)) {
            (Some(a), Some(b)) => Value::Bool(a.starts_with(b)),
            _ => Value::Null,
        },
        Function::EndsWith => match (s(0), s(1)) {
            (Some(a), Some(b)) => Value::Bool(a.ends_with(b)),
            _ => Value::Null,
        },
        Function::Lower => s(0).map_or(Value::Null, |a| Value::from(a.to_lowercase())),
        Function::Upper => s(0).map_or(Value::Null, |a| Value::from(a.to_uppercase())),
        Function::Len => match args.first() {
            Some(Value::Str(a)) => Value::Int(a.chars().count() as i64),
            Some(Value::List(a)) => Value::Int(a.len() as i64),
            _ => Value::Null,
        },
        Function::Abs => match args.first() {
            Some(Value::Int(i)) => i.checked_abs().map_or(Value::Null, Value::Int),
            Some(Value::Float(f)) => Value::Float(f.abs()),
            _ => Value::Null,
        },
    }
}
