//! Property test: the compiled evaluator (with its fast paths for
//! field-vs-literal comparisons, `contains`, numeric subtrees and whole
//! conditions) agrees with a plain recursive interpreter of the IR built
//! from the `ops` rules alone, on random expressions.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::ops;
use super::*;
use crate::event::FieldPath;
use crate::record::FieldTable;
use crate::value::Value;

const EVENT: &str = r#"{"i": 3, "z": 0, "big": 9223372036854775807, "f": 2.5, "s": "ab",
    "e": "", "n": null, "b": true, "l": [1, "a"]}"#;

const FIELDS: &[&str] = &["i", "z", "big", "f", "s", "e", "n", "b", "l", "missing"];

/// The plain interpreter: no fast paths, values all the way.
fn reference(expr: &Expr, event: &HashMap<String, Value>) -> Value {
    let truth = |e: &Expr| ops::truth_of((&reference(e, event)).into());
    match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Field(path) => event.get(&path.to_string()).cloned().unwrap_or(Value::Null),
        Expr::Exists(path) => Value::Bool(
            !event
                .get(&path.to_string())
                .unwrap_or(&Value::Null)
                .is_null(),
        ),
        Expr::Unary(UnaryOp::Neg, x) => ops::negate((&reference(x, event)).into()),
        Expr::Unary(UnaryOp::Not, x) => ops::value_of(truth(x).map(|b| !b)),
        Expr::Binary(BinaryOp::And, x, y) => ops::value_of(ops::and(truth(x), truth(y))),
        Expr::Binary(BinaryOp::Or, x, y) => ops::value_of(ops::or(truth(x), truth(y))),
        Expr::Binary(op, x, y) if ops::is_comparison(*op) => ops::value_of(ops::compare(
            *op,
            (&reference(x, event)).into(),
            (&reference(y, event)).into(),
        )),
        Expr::Binary(op, x, y) => ops::arithmetic(
            *op,
            (&reference(x, event)).into(),
            (&reference(y, event)).into(),
        ),
        Expr::In(x, items) => {
            let x = reference(x, event);
            let mut found = Some(false);
            for item in items {
                found = ops::or(
                    found,
                    ops::equals((&x).into(), (&reference(item, event)).into()),
                );
            }
            ops::value_of(found)
        }
        Expr::Call(f, args) => match args.as_slice() {
            [x] => ops::call1(*f, (&reference(x, event)).into()),
            [x, y] => ops::value_of(ops::call2(
                *f,
                (&reference(x, event)).into(),
                (&reference(y, event)).into(),
            )),
            _ => Value::Null,
        },
        Expr::Chain(first, rest) => {
            let nested = rest.iter().fold((**first).clone(), |acc, (op, y)| {
                binary(*op, acc, y.clone())
            });
            reference(&nested, event)
        }
        Expr::StageField { .. } | Expr::Aggregate { .. } | Expr::Matches(..) => Value::Null,
        // (without a lookup: `NoLookup`, null)
        Expr::InList(..) | Expr::Indicator(..) => Value::Null,
    }
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        4 => prop_oneof![Just(0i64), Just(1), Just(-1), Just(3), Just(i64::MAX), Just(i64::MIN)]
            .prop_map(Value::Int),
        2 => prop_oneof![Just(0.0f64), Just(2.5), Just(-1.5), Just(3.0)].prop_map(Value::Float),
        2 => prop_oneof![Just(""), Just("a"), Just("ab"), Just("b")].prop_map(Value::from),
    ]
}

fn field() -> impl Strategy<Value = Expr> {
    prop::sample::select(FIELDS).prop_map(|f| Expr::Field(FieldPath::single(f)))
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        3 => literal().prop_map(Expr::Literal),
        3 => field(),
        1 => prop::sample::select(FIELDS).prop_map(|f| Expr::Exists(FieldPath::single(f))),
    ]
}

fn binary(op: BinaryOp, x: Expr, y: Expr) -> Expr {
    Expr::Binary(op, Box::new(x), Box::new(y))
}

fn expr() -> impl Strategy<Value = Expr> {
    use BinaryOp::*;
    let ops = prop::sample::select(vec![
        Or, And, Eq, Ne, Lt, Le, Gt, Ge, Add, Sub, Mul, Div, Rem,
    ]);
    let comparisons = prop::sample::select(vec![Eq, Ne, Lt, Le, Gt, Ge]);
    // The operators of one level, as the language chains them.
    let level = prop::sample::select(vec![
        vec![And],
        vec![Or],
        vec![Add, Sub],
        vec![Mul, Div, Rem],
    ]);
    leaf().prop_recursive(4, 24, 3, move |inner| {
        prop_oneof![
            6 => (ops.clone(), inner.clone(), inner.clone())
                .prop_map(|(op, x, y)| binary(op, x, y)),
            2 => (
                level.clone(),
                inner.clone(),
                prop::collection::vec((any::<prop::sample::Index>(), inner.clone()), 2..6)
            )
                .prop_map(|(level, x, rest)| Expr::Chain(
                    Box::new(x),
                    rest.into_iter().map(|(i, y)| (*i.get(&level), y)).collect()
                )),
            // A chain built by hand may mix any operators.
            1 => (inner.clone(), prop::collection::vec((ops.clone(), inner.clone()), 1..6))
                .prop_map(|(x, rest)| Expr::Chain(Box::new(x), rest)),
            // The compiler's fast path, both ways round.
            3 => (comparisons.clone(), field(), literal(), any::<bool>()).prop_map(
                |(op, f, v, flip)| {
                    if flip {
                        binary(op, Expr::Literal(v), f)
                    } else {
                        binary(op, f, Expr::Literal(v))
                    }
                }
            ),
            1 => inner.clone().prop_map(|x| Expr::Unary(UnaryOp::Neg, Box::new(x))),
            1 => inner.clone().prop_map(|x| Expr::Unary(UnaryOp::Not, Box::new(x))),
            1 => (inner.clone(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(x, items)| Expr::In(Box::new(x), items)),
            1 => (
                prop::sample::select(vec![Function::Len, Function::Abs, Function::Upper]),
                inner.clone()
            )
                .prop_map(|(f, x)| Expr::Call(f, vec![x])),
            1 => (
                prop::sample::select(vec![
                    Function::Contains,
                    Function::StartsWith,
                    Function::EndsWith
                ]),
                inner.clone(),
                inner
            )
                .prop_map(|(f, x, y)| Expr::Call(f, vec![x, y])),
            1 => (field(), prop_oneof![Just(""), Just("a"), Just("b"), Just("x")])
                .prop_map(|(f, s)| Expr::Call(
                    Function::Contains,
                    vec![f, Expr::Literal(Value::from(s))]
                )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_evaluation_agrees_with_the_plain_interpreter(e in expr()) {
        let json: serde_json::Value = serde_json::from_str(EVENT).unwrap();
        let object = json.as_object().unwrap();
        let plain: HashMap<String, Value> = object
            .iter()
            .map(|(k, v)| (k.clone(), crate::json::value_from_json(v)))
            .collect();
        let mut table = FieldTable::new();
        let mut layout = AccumulatorLayoutBuilder::new();
        let compiled = CompiledExpr::compile(&e, &mut table, &mut layout).unwrap();
        let record = crate::json::record_from_json(&table, object, Arc::from(EVENT));
        let acc = layout.finish().new_accumulators();
        let want = reference(&e, &plain);
        prop_assert_eq!(compiled.eval(&record, &acc), want.clone(), "{:?}", e);
        prop_assert_eq!(compiled.matches(&record, &acc), want == Value::Bool(true), "{:?}", e);
    }
}
