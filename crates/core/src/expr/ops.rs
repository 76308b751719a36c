//! Value semantics of the expression language: equality, ordering,
//! arithmetic and the built-in functions over values, borrowed as
//! [`ValueRef`]s (results that are new strings are owned [`Value`]s).
//!
//! The rules (`language.md`, "Expressions"), and the decisions taken where
//! the spec is silent:
//! - Integers and floats mix as floats; two integers stay integers.
//! - Integer overflow, and division or remainder by zero (integer or float),
//!   give null. Integer division truncates toward zero and the remainder
//!   takes the sign of the dividend (as in Java, hence Flink). Other float
//!   results follow IEEE 754 (a float overflow gives an infinity).
//! - `==` / `!=` with a null operand test for null: `null == null` is true,
//!   `1 == null` is false. Every other operator with a null operand gives
//!   null.
//! - A type mismatch (`"a" < 3`, `"a" == 1`, `true + 1`) gives null.
//!   Numbers are ordered numerically (NaN is unordered: null), strings
//!   lexicographically by code point; nothing else is ordered.
//! - Lists are equal when they have the same length and equal items (a
//!   mismatched pair of items is unequal).
//! - `+` on two strings concatenates them.
//! - `x in [a, b]` is `x == a or x == b` under three-valued logic.

use std::cmp::Ordering;
use std::sync::Arc;

use super::ir::{BinaryOp, Function};
use crate::value::{Value, ValueRef};

/// Three-valued truth: `None` is SQL's unknown (null).
pub type Truth = Option<bool>;

/// The language's `==`: `None` on a type mismatch.
pub fn equals(a: ValueRef<'_>, b: ValueRef<'_>) -> Truth {
    match (a, b) {
        (ValueRef::Null, _) | (_, ValueRef::Null) => Some(a.is_null() && b.is_null()),
        (ValueRef::Bool(x), ValueRef::Bool(y)) => Some(x == y),
        (ValueRef::Int(x), ValueRef::Int(y)) => Some(x == y),
        (ValueRef::Int(_) | ValueRef::Float(_), ValueRef::Int(_) | ValueRef::Float(_)) => {
            Some(a.as_f64()? == b.as_f64()?)
        }
        (ValueRef::Str(x), ValueRef::Str(y)) => Some(x == y),
        (ValueRef::List(x), ValueRef::List(y)) => Some(
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| equals(p.into(), q.into()) == Some(true)),
        ),
        _ => None,
    }
}

/// The language's ordering: numbers numerically, strings by code point;
/// `None` for anything else (including null and NaN).
pub fn order(a: ValueRef<'_>, b: ValueRef<'_>) -> Option<Ordering> {
    match (a, b) {
        (ValueRef::Int(x), ValueRef::Int(y)) => Some(x.cmp(&y)),
        (ValueRef::Int(_) | ValueRef::Float(_), ValueRef::Int(_) | ValueRef::Float(_)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        // UTF-8 byte order is code point order.
        (ValueRef::Str(x), ValueRef::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// `compare` with a fast path for the common operand pairs of a field
/// compared with a literal (integers, strings).
#[inline]
pub fn compare_literal(op: BinaryOp, value: ValueRef<'_>, literal: &Value) -> Truth {
    match (value, literal) {
        (ValueRef::Int(x), Value::Int(y)) => Some(holds(op, x.cmp(y))),
        (ValueRef::Str(x), Value::Str(y)) => Some(match op {
            BinaryOp::Eq => x.as_bytes() == y.as_bytes(),
            BinaryOp::Ne => x.as_bytes() != y.as_bytes(),
            _ => holds(op, x.as_bytes().cmp(y.as_bytes())),
        }),
        _ => compare_other(op, value, literal),
    }
}

/// [`compare_literal`] for the other operand pairs, out of line so that the
/// fast path needs no stack frame.
#[cold]
#[inline(never)]
fn compare_other(op: BinaryOp, value: ValueRef<'_>, literal: &Value) -> Truth {
    compare(op, value, literal.into())
}

/// Does `ordering` satisfy the comparison `op`?
#[inline]
fn holds(op: BinaryOp, ordering: Ordering) -> bool {
    match op {
        BinaryOp::Eq => ordering == Ordering::Equal,
        BinaryOp::Ne => ordering != Ordering::Equal,
        BinaryOp::Lt => ordering == Ordering::Less,
        BinaryOp::Le => ordering != Ordering::Greater,
        BinaryOp::Gt => ordering == Ordering::Greater,
        BinaryOp::Ge => ordering != Ordering::Less,
        _ => false,
    }
}

/// Evaluates a comparison operator (`== != < <= > >=`).
pub fn compare(op: BinaryOp, a: ValueRef<'_>, b: ValueRef<'_>) -> Truth {
    match op {
        BinaryOp::Eq => equals(a, b),
        BinaryOp::Ne => equals(a, b).map(|eq| !eq),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => Some(holds(op, order(a, b)?)),
        _ => None,
    }
}

/// Is `op` one of `== != < <= > >=`?
pub fn is_comparison(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
    )
}

/// The comparison with its operands swapped: `a < b` is `b > a`.
pub fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}

/// A value of arithmetic: null or a number. Numeric subexpressions are
/// evaluated as `Num`s, without building [`Value`]s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Null,
    Int(i64),
    Float(f64),
}

impl Num {
    /// The number (or null) a value is; `None` for strings, lists, booleans.
    #[inline]
    pub fn of(value: ValueRef<'_>) -> Option<Num> {
        match value {
            ValueRef::Null => Some(Num::Null),
            ValueRef::Int(i) => Some(Num::Int(i)),
            ValueRef::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// Back to a value, borrowed form.
    #[inline]
    pub fn value_ref(self) -> ValueRef<'static> {
        match self {
            Num::Null => ValueRef::Null,
            Num::Int(i) => ValueRef::Int(i),
            Num::Float(f) => ValueRef::Float(f),
        }
    }

    /// Back to a value.
    pub fn value(self) -> Value {
        match self {
            Num::Null => Value::Null,
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        }
    }

    fn float(self) -> Option<f64> {
        match self {
            Num::Null => None,
            Num::Int(i) => Some(i as f64),
            Num::Float(f) => Some(f),
        }
    }
}

/// An arithmetic operator over numbers (or null).
#[inline]
pub fn numeric(op: BinaryOp, a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => integer_arithmetic(op, x, y).map_or(Num::Null, Num::Int),
        _ => match (a.float(), b.float()) {
            (Some(x), Some(y)) => float_arithmetic(op, x, y).map_or(Num::Null, Num::Float),
            _ => Num::Null,
        },
    }
}

/// `-x` over a number (or null).
#[inline]
pub fn negate_number(x: Num) -> Num {
    match x {
        Num::Int(i) => i.checked_neg().map_or(Num::Null, Num::Int),
        Num::Float(f) => Num::Float(-f),
        Num::Null => Num::Null,
    }
}

/// Evaluates an arithmetic operator (`+ - * / %`).
pub fn arithmetic(op: BinaryOp, a: ValueRef<'_>, b: ValueRef<'_>) -> Value {
    match (a, b) {
        (ValueRef::Str(x), ValueRef::Str(y)) if op == BinaryOp::Add => {
            let mut joined = String::with_capacity(x.len() + y.len());
            joined.push_str(x);
            joined.push_str(y);
            Value::from(joined)
        }
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => numeric(op, x, y).value(),
            _ => Value::Null,
        },
    }
}

fn integer_arithmetic(op: BinaryOp, x: i64, y: i64) -> Option<i64> {
    match op {
        BinaryOp::Add => x.checked_add(y),
        BinaryOp::Sub => x.checked_sub(y),
        BinaryOp::Mul => x.checked_mul(y),
        BinaryOp::Div => x.checked_div(y),
        BinaryOp::Rem => x.checked_rem(y),
        _ => None,
    }
}

fn float_arithmetic(op: BinaryOp, x: f64, y: f64) -> Option<f64> {
    match op {
        BinaryOp::Add => Some(x + y),
        BinaryOp::Sub => Some(x - y),
        BinaryOp::Mul => Some(x * y),
        BinaryOp::Div | BinaryOp::Rem if y == 0.0 => None,
        BinaryOp::Div => Some(x / y),
        BinaryOp::Rem => Some(x % y),
        _ => None,
    }
}

/// `-x`.
pub fn negate(x: ValueRef<'_>) -> Value {
    Num::of(x).map_or(Value::Null, |n| negate_number(n).value())
}

/// Calls a one-argument function.
pub fn call1(func: Function, x: ValueRef<'_>) -> Value {
    match (func, x) {
        (Function::Len, ValueRef::Str(s)) => count(s.chars().count()),
        (Function::Len, ValueRef::List(items)) => count(items.len()),
        (Function::Lower, ValueRef::Str(s)) => Value::from(s.to_lowercase()),
        (Function::Upper, ValueRef::Str(s)) => Value::from(s.to_uppercase()),
        (Function::Abs, ValueRef::Int(i)) => Value::from(i.checked_abs()),
        (Function::Abs, ValueRef::Float(f)) => Value::Float(f.abs()),
        _ => Value::Null,
    }
}

fn count(n: usize) -> Value {
    Value::from(i64::try_from(n).ok())
}

/// Calls a two-argument function; `None` is null.
pub fn call2(func: Function, x: ValueRef<'_>, y: ValueRef<'_>) -> Truth {
    match (func, x, y) {
        (Function::Contains, ValueRef::List(items), item) => {
            Some(items.iter().any(|i| equals(i.into(), item) == Some(true)))
        }
        (Function::Contains, ValueRef::Str(s), ValueRef::Str(sub)) => Some(s.contains(sub)),
        (Function::StartsWith, ValueRef::Str(s), ValueRef::Str(p)) => Some(s.starts_with(p)),
        (Function::EndsWith, ValueRef::Str(s), ValueRef::Str(p)) => Some(s.ends_with(p)),
        _ => None,
    }
}

/// Three-valued `and`.
pub fn and(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// Three-valued `or`.
pub fn or(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// A boolean value as a truth (anything else is unknown).
pub fn truth_of(value: ValueRef<'_>) -> Truth {
    value.as_bool()
}

/// A truth as a value.
#[cfg(test)]
pub fn value_of(truth: Truth) -> Value {
    truth.map_or(Value::Null, Value::Bool)
}

/// A string value (for tests and literals).
#[cfg(test)]
pub fn string(s: &str) -> Value {
    Value::Str(Arc::from(s))
}

/// An empty list value.
pub fn empty_list() -> Value {
    Value::List(Arc::from(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use BinaryOp::*;

    // The functions under test over owned operands, for brevity.
    fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Value {
        super::arithmetic(op, a.into(), b.into())
    }
    fn compare(op: BinaryOp, a: &Value, b: &Value) -> Truth {
        super::compare(op, a.into(), b.into())
    }
    fn equals(a: &Value, b: &Value) -> Truth {
        super::equals(a.into(), b.into())
    }
    fn negate(x: &Value) -> Value {
        super::negate(x.into())
    }
    fn call1(func: Function, x: &Value) -> Value {
        super::call1(func, x.into())
    }
    fn call2(func: Function, x: &Value, y: &Value) -> Truth {
        super::call2(func, x.into(), y.into())
    }

    fn int(i: i64) -> Value {
        Value::Int(i)
    }

    fn float(f: f64) -> Value {
        Value::Float(f)
    }

    #[test]
    fn integers_and_floats_mix_as_floats() {
        assert_eq!(arithmetic(Add, &int(1), &float(0.5)), float(1.5));
        assert_eq!(arithmetic(Mul, &int(2), &int(3)), int(6));
        assert_eq!(arithmetic(Div, &int(7), &int(2)), int(3));
        assert_eq!(arithmetic(Div, &int(-7), &int(2)), int(-3));
        assert_eq!(arithmetic(Rem, &int(-7), &int(2)), int(-1));
        assert_eq!(arithmetic(Div, &float(7.0), &int(2)), float(3.5));
        assert_eq!(arithmetic(Sub, &float(1.0), &int(3)), float(-2.0));
        assert_eq!(arithmetic(Rem, &float(7.5), &int(2)), float(1.5));
    }

    #[test]
    fn overflow_and_division_by_zero_are_null() {
        assert_eq!(arithmetic(Add, &int(i64::MAX), &int(1)), Value::Null);
        assert_eq!(arithmetic(Sub, &int(i64::MIN), &int(1)), Value::Null);
        assert_eq!(arithmetic(Mul, &int(i64::MAX), &int(2)), Value::Null);
        assert_eq!(arithmetic(Div, &int(i64::MIN), &int(-1)), Value::Null);
        assert_eq!(arithmetic(Div, &int(1), &int(0)), Value::Null);
        assert_eq!(arithmetic(Rem, &int(1), &int(0)), Value::Null);
        assert_eq!(arithmetic(Div, &float(1.0), &float(0.0)), Value::Null);
        assert_eq!(arithmetic(Div, &float(1.0), &int(0)), Value::Null);
        assert_eq!(arithmetic(Rem, &float(1.0), &float(-0.0)), Value::Null);
        assert_eq!(negate(&int(i64::MIN)), Value::Null);
        assert_eq!(negate(&int(3)), int(-3));
        assert_eq!(negate(&float(2.5)), float(-2.5));
    }

    #[test]
    fn null_and_mismatch_propagate() {
        for op in [Add, Sub, Mul, Div, Rem] {
            assert_eq!(arithmetic(op, &Value::Null, &int(1)), Value::Null);
            assert_eq!(arithmetic(op, &int(1), &Value::Null), Value::Null);
            assert_eq!(arithmetic(op, &string("a"), &int(1)), Value::Null);
            assert_eq!(arithmetic(op, &Value::Bool(true), &int(1)), Value::Null);
        }
        for op in [Lt, Le, Gt, Ge] {
            assert_eq!(compare(op, &Value::Null, &int(1)), None);
            assert_eq!(compare(op, &Value::Null, &Value::Null), None);
            assert_eq!(compare(op, &string("a"), &int(3)), None);
            assert_eq!(compare(op, &Value::Bool(true), &Value::Bool(false)), None);
        }
        assert_eq!(negate(&string("a")), Value::Null);
        assert_eq!(compare(Eq, &string("a"), &int(1)), None);
        assert_eq!(compare(Ne, &string("a"), &int(1)), None);
    }

    #[test]
    fn equality_with_null_tests_for_null() {
        assert_eq!(compare(Eq, &Value::Null, &Value::Null), Some(true));
        assert_eq!(compare(Eq, &int(1), &Value::Null), Some(false));
        assert_eq!(compare(Ne, &Value::Null, &int(1)), Some(true));
        assert_eq!(compare(Ne, &Value::Null, &Value::Null), Some(false));
    }

    #[test]
    fn comparisons() {
        assert_eq!(compare(Eq, &int(1), &float(1.0)), Some(true));
        assert_eq!(compare(Lt, &int(1), &float(1.5)), Some(true));
        assert_eq!(compare(Le, &int(2), &int(2)), Some(true));
        assert_eq!(compare(Gt, &int(2), &int(2)), Some(false));
        assert_eq!(compare(Ge, &float(2.0), &int(2)), Some(true));
        assert_eq!(compare(Lt, &float(f64::NAN), &int(2)), None);
        assert_eq!(compare(Lt, &string("B"), &string("a")), Some(true));
        assert_eq!(compare(Lt, &string("z"), &string("é")), Some(true));
        assert_eq!(compare(Lt, &string("ab"), &string("abc")), Some(true));
        assert_eq!(
            compare(Eq, &Value::Bool(true), &Value::Bool(true)),
            Some(true)
        );
        assert_eq!(compare(Ne, &string("a"), &string("b")), Some(true));
        // The largest i64 values are compared exactly, not through floats.
        assert_eq!(compare(Lt, &int(i64::MAX - 1), &int(i64::MAX)), Some(true));
    }

    #[test]
    fn list_equality() {
        let a = Value::List(Arc::from(vec![int(1), string("x")]));
        let b = Value::List(Arc::from(vec![float(1.0), string("x")]));
        let c = Value::List(Arc::from(vec![int(1)]));
        assert_eq!(equals(&a, &b), Some(true));
        assert_eq!(equals(&a, &c), Some(false));
        assert_eq!(equals(&a, &int(1)), None);
    }

    #[test]
    fn strings_concatenate() {
        assert_eq!(arithmetic(Add, &string("ab"), &string("c")), string("abc"));
        assert_eq!(arithmetic(Sub, &string("ab"), &string("c")), Value::Null);
    }

    #[test]
    fn functions() {
        assert_eq!(call1(Function::Len, &string("héllo")), int(5));
        let list = Value::List(Arc::from(vec![int(1), int(2)]));
        assert_eq!(call1(Function::Len, &list), int(2));
        assert_eq!(call1(Function::Len, &int(2)), Value::Null);
        assert_eq!(call1(Function::Lower, &string("AbÉ")), string("abé"));
        assert_eq!(call1(Function::Upper, &string("abé")), string("ABÉ"));
        assert_eq!(call1(Function::Upper, &Value::Null), Value::Null);
        assert_eq!(call1(Function::Abs, &int(-3)), int(3));
        assert_eq!(call1(Function::Abs, &int(i64::MIN)), Value::Null);
        assert_eq!(call1(Function::Abs, &float(-1.5)), float(1.5));
        assert_eq!(call1(Function::Abs, &string("a")), Value::Null);
        let s = string("abc");
        assert_eq!(call2(Function::Contains, &s, &string("bc")), Some(true));
        assert_eq!(call2(Function::Contains, &s, &string("x")), Some(false));
        assert_eq!(call2(Function::Contains, &list, &float(2.0)), Some(true));
        assert_eq!(call2(Function::Contains, &list, &int(3)), Some(false));
        assert_eq!(call2(Function::Contains, &Value::Null, &s), None);
        assert_eq!(call2(Function::Contains, &s, &int(1)), None);
        assert_eq!(call2(Function::StartsWith, &s, &string("ab")), Some(true));
        assert_eq!(call2(Function::StartsWith, &s, &string("b")), Some(false));
        assert_eq!(call2(Function::EndsWith, &s, &string("bc")), Some(true));
        assert_eq!(call2(Function::EndsWith, &s, &Value::Null), None);
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(and(Some(false), None), Some(false));
        assert_eq!(and(None, Some(false)), Some(false));
        assert_eq!(and(Some(true), None), None);
        assert_eq!(and(Some(true), Some(true)), Some(true));
        assert_eq!(or(Some(true), None), Some(true));
        assert_eq!(or(None, Some(true)), Some(true));
        assert_eq!(or(Some(false), None), None);
        assert_eq!(or(Some(false), Some(false)), Some(false));
    }
}
