//! Tests of compiled expressions: operators, functions, aggregates and the
//! stage-reference rule, through the public API.

use std::sync::Arc;

use super::*;
use crate::event::{FieldError, FieldId, FieldPath, FieldResolver};
use crate::expr::compile::{ExprError, MAX_DEPTH};
use crate::expr::SelectItem;
use crate::primitives::{Span, StageId};
use crate::record::{FieldTable, Record};
use crate::value::Value;

fn field(name: &str) -> Expr {
    Expr::Field(FieldPath::parse(name))
}

fn lit(v: impl Into<Value>) -> Expr {
    Expr::Literal(v.into())
}

fn null() -> Expr {
    Expr::Literal(Value::Null)
}

fn bin(op: BinaryOp, x: Expr, y: Expr) -> Expr {
    Expr::Binary(op, Box::new(x), Box::new(y))
}

fn not(x: Expr) -> Expr {
    Expr::Unary(UnaryOp::Not, Box::new(x))
}

fn call(f: Function, args: Vec<Expr>) -> Expr {
    Expr::Call(f, args)
}

fn stage_field(stage: u16, name: &str) -> Expr {
    Expr::StageField {
        stage: StageId(stage),
        path: FieldPath::parse(name),
    }
}

fn agg(func: AggregateFunc, stage: u16, name: Option<&str>) -> Expr {
    Expr::Aggregate {
        func,
        stage: StageId(stage),
        path: name.map(FieldPath::parse),
    }
}

fn record(table: &FieldTable, json: &str) -> Record {
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    crate::json::record_from_json(table, parsed.as_object().unwrap(), Arc::from(json))
}

/// Compiles `expr` and evaluates it on the event `json` with no accepted
/// events.
fn eval(expr: &Expr, json: &str) -> Value {
    let mut table = FieldTable::new();
    let mut layout = AccumulatorLayoutBuilder::new();
    let compiled = CompiledExpr::compile(expr, &mut table, &mut layout).unwrap();
    let acc = layout.finish().new_accumulators();
    let event = record(&table, json);
    let value = compiled.eval(&event, &acc);
    assert_eq!(compiled.matches(&event, &acc), value == Value::Bool(true));
    value
}

const EVENT: &str = r#"{"type": 0, "name": "abc", "price": 2.5, "n": 7, "tags": ["x", "y"],
    "flag": true, "none": null, "user": {"id": 42}}"#;

#[test]
fn field_literal_comparisons() {
    use BinaryOp::*;
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    assert_eq!(eval(&bin(Eq, field("type"), lit(0)), EVENT), t);
    assert_eq!(eval(&bin(Eq, field("type"), lit(0.0)), EVENT), t);
    assert_eq!(eval(&bin(Ne, field("type"), lit(0)), EVENT), f);
    assert_eq!(eval(&bin(Eq, field("name"), lit("abc")), EVENT), t);
    assert_eq!(eval(&bin(Eq, field("name"), lit("abd")), EVENT), f);
    assert_eq!(eval(&bin(Lt, field("name"), lit("abd")), EVENT), t);
    assert_eq!(eval(&bin(Gt, field("price"), lit(2)), EVENT), t);
    assert_eq!(eval(&bin(Ge, field("n"), lit(7)), EVENT), t);
    assert_eq!(eval(&bin(Le, field("n"), lit(6)), EVENT), f);
    assert_eq!(eval(&bin(Eq, field("user.id"), lit(42)), EVENT), t);
    // Literal on the left is flipped correctly.
    assert_eq!(eval(&bin(Lt, lit(3), field("n")), EVENT), t);
    assert_eq!(eval(&bin(Ge, lit(3), field("n")), EVENT), f);
    // Mismatch and null.
    assert_eq!(eval(&bin(Lt, field("name"), lit(3)), EVENT), Value::Null);
    assert_eq!(eval(&bin(Eq, field("name"), lit(3)), EVENT), Value::Null);
    assert_eq!(eval(&bin(Gt, field("missing"), lit(3)), EVENT), Value::Null);
    assert_eq!(eval(&bin(Eq, field("missing"), null()), EVENT), t);
    assert_eq!(eval(&bin(Eq, field("none"), null()), EVENT), t);
    assert_eq!(eval(&bin(Ne, field("n"), null()), EVENT), t);
    assert_eq!(eval(&bin(Eq, null(), field("n")), EVENT), f);
}

#[test]
fn field_field_comparisons_and_arithmetic() {
    use BinaryOp::*;
    let t = Value::Bool(true);
    assert_eq!(eval(&bin(Gt, field("n"), field("price")), EVENT), t);
    assert_eq!(
        eval(&bin(Add, field("n"), field("type")), EVENT),
        Value::Int(7)
    );
    assert_eq!(
        eval(&bin(Add, field("n"), field("price")), EVENT),
        Value::Float(9.5)
    );
    assert_eq!(eval(&bin(Mul, field("n"), lit(2)), EVENT), Value::Int(14));
    assert_eq!(eval(&bin(Sub, field("n"), lit(10)), EVENT), Value::Int(-3));
    assert_eq!(eval(&bin(Div, field("n"), lit(2)), EVENT), Value::Int(3));
    assert_eq!(eval(&bin(Rem, field("n"), lit(4)), EVENT), Value::Int(3));
    assert_eq!(
        eval(&bin(Div, field("n"), field("type")), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&bin(Rem, field("n"), field("type")), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&bin(Div, field("price"), field("type")), EVENT),
        Value::Null
    );
    let big = bin(Mul, lit(i64::MAX), field("n"));
    assert_eq!(eval(&big, EVENT), Value::Null);
    assert_eq!(
        eval(&bin(Add, field("n"), field("none")), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&bin(Add, field("name"), lit("d")), EVENT),
        Value::from("abcd")
    );
    assert_eq!(eval(&bin(Add, field("name"), lit(1)), EVENT), Value::Null);
    let neg = Expr::Unary(UnaryOp::Neg, Box::new(field("n")));
    assert_eq!(eval(&neg, EVENT), Value::Int(-7));
    // Precedence is the parser's; here the tree is explicit: (n + 1) * 2 > 15.
    let nested = bin(Gt, bin(Mul, bin(Add, field("n"), lit(1)), lit(2)), lit(15));
    assert_eq!(eval(&nested, EVENT), t);
}

#[test]
fn three_valued_logic() {
    use BinaryOp::*;
    let null_cond = bin(Gt, field("missing"), lit(1));
    let true_cond = bin(Eq, field("type"), lit(0));
    let false_cond = bin(Eq, field("type"), lit(1));
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    assert_eq!(
        eval(&bin(And, false_cond.clone(), null_cond.clone()), EVENT),
        f
    );
    assert_eq!(
        eval(&bin(And, null_cond.clone(), false_cond.clone()), EVENT),
        f
    );
    assert_eq!(
        eval(&bin(And, true_cond.clone(), null_cond.clone()), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&bin(And, true_cond.clone(), true_cond.clone()), EVENT),
        t
    );
    assert_eq!(
        eval(&bin(Or, true_cond.clone(), null_cond.clone()), EVENT),
        t
    );
    assert_eq!(
        eval(&bin(Or, null_cond.clone(), true_cond.clone()), EVENT),
        t
    );
    assert_eq!(
        eval(&bin(Or, false_cond.clone(), null_cond.clone()), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&bin(Or, false_cond.clone(), false_cond.clone()), EVENT),
        f
    );
    assert_eq!(eval(&not(null_cond.clone()), EVENT), Value::Null);
    assert_eq!(eval(&not(false_cond.clone()), EVENT), t);
    assert_eq!(eval(&not(field("flag")), EVENT), f);
    assert_eq!(eval(&not(field("n")), EVENT), Value::Null);
    // A non-boolean operand of `and` is unknown.
    assert_eq!(
        eval(&bin(And, field("n"), true_cond.clone()), EVENT),
        Value::Null
    );
    assert_eq!(eval(&bin(And, field("n"), false_cond), EVENT), f);
    // A bare boolean field is a condition; anything else does not match.
    assert_eq!(eval(&field("flag"), EVENT), t);
    assert_eq!(eval(&field("n"), EVENT), Value::Int(7));
}

#[test]
fn in_list() {
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    let in_ = |x: Expr, items: Vec<Expr>| Expr::In(Box::new(x), items);
    assert_eq!(eval(&in_(field("n"), vec![lit(1), lit(7)]), EVENT), t);
    assert_eq!(eval(&in_(field("n"), vec![lit(1), lit(7.0)]), EVENT), t);
    assert_eq!(eval(&in_(field("n"), vec![lit(1), lit(2)]), EVENT), f);
    assert_eq!(eval(&in_(field("n"), vec![]), EVENT), f);
    assert_eq!(
        eval(&in_(field("name"), vec![lit("x"), lit("abc")]), EVENT),
        t
    );
    // `in` is a disjunction of `==`: a mismatch is unknown unless another
    // item is equal.
    assert_eq!(eval(&in_(field("n"), vec![lit("a")]), EVENT), Value::Null);
    assert_eq!(eval(&in_(field("n"), vec![lit("a"), lit(7)]), EVENT), t);
    assert_eq!(eval(&in_(field("missing"), vec![lit(1)]), EVENT), f);
    assert_eq!(eval(&in_(field("missing"), vec![lit(1), null()]), EVENT), t);
}

#[test]
fn functions() {
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    assert_eq!(
        eval(&call(Function::Len, vec![field("name")]), EVENT),
        Value::Int(3)
    );
    assert_eq!(
        eval(&call(Function::Len, vec![field("tags")]), EVENT),
        Value::Int(2)
    );
    assert_eq!(
        eval(&call(Function::Len, vec![field("n")]), EVENT),
        Value::Null
    );
    assert_eq!(
        eval(&call(Function::Upper, vec![field("name")]), EVENT),
        Value::from("ABC")
    );
    assert_eq!(
        eval(&call(Function::Lower, vec![lit("ABC")]), EVENT),
        Value::from("abc")
    );
    assert_eq!(
        eval(&call(Function::Abs, vec![lit(-3)]), EVENT),
        Value::Int(3)
    );
    let contains = |x, y| call(Function::Contains, vec![x, y]);
    assert_eq!(eval(&contains(field("name"), lit("b")), EVENT), t);
    assert_eq!(eval(&contains(field("name"), lit("z")), EVENT), f);
    assert_eq!(eval(&contains(field("tags"), lit("y")), EVENT), t);
    assert_eq!(eval(&contains(field("tags"), lit("z")), EVENT), f);
    assert_eq!(
        eval(&contains(field("missing"), lit("z")), EVENT),
        Value::Null
    );
    let starts = call(Function::StartsWith, vec![field("name"), lit("ab")]);
    assert_eq!(eval(&starts, EVENT), t);
    let ends = call(Function::EndsWith, vec![field("name"), lit("ab")]);
    assert_eq!(eval(&ends, EVENT), f);
    let re = Arc::new(regex::Regex::new("^a.c$").unwrap());
    let matches = |x| Expr::Matches(Box::new(x), Arc::clone(&re));
    assert_eq!(eval(&matches(field("name")), EVENT), t);
    assert_eq!(eval(&matches(lit("abd")), EVENT), f);
    assert_eq!(eval(&matches(field("n")), EVENT), Value::Null);
    let exists = |name: &str| Expr::Exists(FieldPath::parse(name));
    assert_eq!(eval(&exists("name"), EVENT), t);
    assert_eq!(eval(&exists("user.id"), EVENT), t);
    assert_eq!(eval(&exists("none"), EVENT), f);
    assert_eq!(eval(&exists("missing"), EVENT), f);
}

/// The pattern `a+` with condition `price > max(a.price)` etc.: stage
/// references see only the events accepted before the candidate.
#[test]
fn stage_references_see_only_earlier_events() {
    use BinaryOp::*;
    let mut table = FieldTable::new();
    let mut layout = AccumulatorLayoutBuilder::new();
    // a: price > a.price (strictly rising), or no previous a.
    let rising = bin(
        Or,
        bin(Eq, agg(AggregateFunc::Count, 0, None), lit(0)),
        bin(Gt, field("price"), stage_field(0, "price")),
    );
    let rising = CompiledExpr::compile(&rising, &mut table, &mut layout).unwrap();
    // b: price == sum(a.price) (reads the same field of stage a).
    let total = bin(
        Eq,
        field("price"),
        agg(AggregateFunc::Sum, 0, Some("price")),
    );
    let total = CompiledExpr::compile(&total, &mut table, &mut layout).unwrap();
    // The last-price slot is shared by `a.price` and `last(a.price)`.
    let last = CompiledExpr::compile(
        &agg(AggregateFunc::Last, 0, Some("price")),
        &mut table,
        &mut layout,
    )
    .unwrap();
    assert!(rising.reads_stages() && total.reads_stages());
    let layout = layout.finish();
    assert_eq!(layout.slots().len(), 3);

    let mut acc = layout.new_accumulators();
    let e = |price: i64| record(&table, &format!(r#"{{"price": {price}}}"#));
    for price in [1, 2, 5] {
        let event = e(price);
        assert!(rising.matches(&event, &acc), "price {price}");
        acc.on_take(&layout, StageId(0), &event);
        assert_eq!(last.eval(&e(0), &acc), Value::Int(price));
    }
    assert!(!rising.matches(&e(5), &acc));
    assert!(total.matches(&e(8), &acc));
    assert!(!total.matches(&e(5), &acc));
    // Taking into another stage does not touch stage a's slots.
    acc.on_take(&layout, StageId(1), &e(100));
    assert!(total.matches(&e(8), &acc));
}

#[test]
fn stage_free_conditions_allocate_no_state() {
    let mut table = FieldTable::new();
    let mut layout = AccumulatorLayoutBuilder::new();
    let cond = bin(BinaryOp::Eq, field("type"), lit(0));
    let cond = CompiledExpr::compile(&cond, &mut table, &mut layout).unwrap();
    assert!(!cond.reads_stages());
    let layout = layout.finish();
    assert!(layout.is_empty());
    assert!(layout.new_accumulators().is_empty());
}

/// A resolver that knows one field, `price`.
struct PriceOnly;

impl FieldResolver for PriceOnly {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        match path.to_string().as_str() {
            "price" => Ok(FieldId::from_index(0)),
            _ => Err(FieldError::new(path)),
        }
    }
}

#[test]
fn compile_errors() {
    let mut fields = PriceOnly;
    let mut layout = AccumulatorLayoutBuilder::new();
    let unknown = CompiledExpr::compile(&field("nope"), &mut fields, &mut layout).unwrap_err();
    assert!(matches!(unknown, ExprError::UnknownField(_)));
    assert_eq!(unknown.to_string(), "the event type has no field `nope`");
    let unknown_stage_field = stage_field(0, "nope");
    assert!(CompiledExpr::compile(&unknown_stage_field, &mut fields, &mut layout).is_err());
    let arity = call(Function::Len, vec![]);
    assert_eq!(
        CompiledExpr::compile(&arity, &mut fields, &mut layout).unwrap_err(),
        ExprError::Arity {
            function: Function::Len,
            given: 0
        }
    );
    let no_field = agg(AggregateFunc::Sum, 0, None);
    assert_eq!(
        CompiledExpr::compile(&no_field, &mut fields, &mut layout).unwrap_err(),
        ExprError::MissingField(AggregateFunc::Sum)
    );
    let mut deep = field("price");
    for _ in 0..=MAX_DEPTH {
        deep = not(deep);
    }
    assert_eq!(
        CompiledExpr::compile(&deep, &mut fields, &mut layout).unwrap_err(),
        ExprError::TooDeep
    );
    let in_select = CompiledExpr::compile_select(&field("price"), &mut fields, &mut layout);
    assert!(matches!(in_select, Err(ExprError::FieldInSelect(_))));
}

#[test]
fn select_folds_the_match() {
    let item = |name: &str, expr: Expr| SelectItem {
        name: name.to_string(),
        expr,
        span: Span::default(),
    };
    let items = vec![
        item("n", agg(AggregateFunc::Count, 1, None)),
        item("last_b", stage_field(1, "price")),
        item("first_b", agg(AggregateFunc::First, 1, Some("price"))),
        item("total", agg(AggregateFunc::Sum, 1, Some("price"))),
        item("a_user", stage_field(0, "user")),
        item("users", agg(AggregateFunc::Distinct, 1, Some("user"))),
        item(
            "gain",
            bin(
                BinaryOp::Sub,
                stage_field(1, "price"),
                stage_field(0, "price"),
            ),
        ),
    ];
    let mut table = FieldTable::new();
    let select = CompiledSelect::compile(&items, &mut table).unwrap();
    let a = record(&table, r#"{"price": 1, "user": "u"}"#);
    let b1 = record(&table, r#"{"price": 2, "user": "v"}"#);
    let b2 = record(&table, r#"{"price": 4.5, "user": "v"}"#);
    let got = select.eval([(StageId(0), &a), (StageId(1), &b1), (StageId(1), &b2)]);
    let names: Vec<&str> = got.iter().map(|(n, _)| &**n).collect();
    assert_eq!(
        names,
        ["n", "last_b", "first_b", "total", "a_user", "users", "gain"]
    );
    let values: Vec<Value> = got.into_iter().map(|(_, v)| v).collect();
    let users = Value::List(Arc::from(vec![Value::from("v")]));
    assert_eq!(
        values,
        [
            Value::Int(2),
            Value::Float(4.5),
            Value::Int(2),
            Value::Float(6.5),
            Value::from("u"),
            users,
            Value::Float(3.5),
        ]
    );
    let bad = vec![item("x", field("price"))];
    let err = CompiledSelect::compile(&bad, &mut table).unwrap_err();
    assert_eq!(err.index, 0);
}

#[test]
fn long_chains_compile_and_evaluate_without_recursion() {
    let terms =
        |op: BinaryOp, n: usize, x: Expr| Expr::Chain(Box::new(x.clone()), vec![(op, x); n - 1]);
    let one = bin(BinaryOp::Eq, field("price"), lit(1));
    assert_eq!(
        eval(
            &terms(BinaryOp::And, 10_000, one.clone()),
            r#"{"price": 1}"#
        ),
        Value::Bool(true)
    );
    assert_eq!(
        eval(
            &terms(BinaryOp::And, 10_000, one.clone()),
            r#"{"price": 2}"#
        ),
        Value::Bool(false)
    );
    assert_eq!(
        eval(&terms(BinaryOp::Or, 10_000, one.clone()), r#"{"price": 2}"#),
        Value::Bool(false)
    );
    assert_eq!(
        eval(
            &terms(BinaryOp::Add, 10_000, field("price")),
            r#"{"price": 2}"#
        ),
        Value::Int(20_000)
    );
    assert_eq!(
        eval(
            &terms(BinaryOp::Add, 10_000, field("price")),
            r#"{"price": true}"#
        ),
        Value::Null
    );
    // `false` wins over unknown, unknown over `true`, wherever they are.
    let chain = |xs: Vec<Expr>| {
        Expr::Chain(
            Box::new(xs[0].clone()),
            xs[1..].iter().map(|x| (BinaryOp::And, x.clone())).collect(),
        )
    };
    assert_eq!(
        eval(&chain(vec![lit(true), null(), lit(false)]), "{}"),
        Value::Bool(false)
    );
    assert_eq!(
        eval(&chain(vec![null(), lit(true), lit(true)]), "{}"),
        Value::Null
    );
    // A chain built by hand that switches operators nests once per switch,
    // which is bounded like any nesting.
    let mixed = Expr::Chain(
        Box::new(lit(true)),
        (0..=MAX_DEPTH)
            .map(|i| {
                (
                    if i % 2 == 0 {
                        BinaryOp::And
                    } else {
                        BinaryOp::Or
                    },
                    lit(true),
                )
            })
            .collect(),
    );
    let mut fields = PriceOnly;
    let mut layout = AccumulatorLayoutBuilder::new();
    assert_eq!(
        CompiledExpr::compile(&mixed, &mut fields, &mut layout).unwrap_err(),
        ExprError::TooDeep
    );
}
