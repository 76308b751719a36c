//! Values: what fields, literals and expressions evaluate to.
//!
//! A [`Value`] is null, a boolean, a 64-bit integer, a 64-bit float, a string
//! or a list. Strings and lists are reference counted, so cloning a value
//! never copies its contents. A [`ValueRef`] is the same thing borrowed: what
//! an [`Event`](crate::Event) gives when a condition reads one of its fields,
//! so that reading a string field of a user's struct copies nothing. The
//! operators and functions over values live in [`crate::expr`]; this module
//! only owns the types, their conversions, and the hashable key of a
//! partition.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub mod json;

/// A dynamically typed value.
///
/// ```
/// use cepheid_core::Value;
/// assert_eq!(Value::from(3), Value::Int(3));
/// assert_eq!(Value::from("a").as_str(), Some("a"));
/// ```
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Missing or unknown.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(Arc<str>),
    /// A list of values (literal lists, `distinct(...)`).
    List(Arc<[Value]>),
}

impl Value {
    /// Bytes this value holds on the heap: a string's text or a list's
    /// items with their `Arc` counts (16 bytes); 0 for the others. A
    /// string shared by several values is counted for each.
    pub fn heap_bytes(&self) -> usize {
        const COUNTS: usize = 2 * std::mem::size_of::<usize>();
        match self {
            Value::Str(s) => COUNTS + s.len(),
            Value::List(items) => {
                COUNTS
                    + std::mem::size_of_val::<[Value]>(items)
                    + items.iter().map(Value::heap_bytes).sum::<usize>()
            }
            _ => 0,
        }
    }

    /// Is this `Value::Null`?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, when this is an integer or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
        }
    }
}

/// Structural equality: `Int(1)` and `Float(1.0)` are *different* values
/// here (this is identity, used for tests, and for partition keys once
/// normalized so that `1.0` is `Int(1)`). The expression language's `==`,
/// which mixes integers and floats, lives in [`crate::expr`].
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => i.hash(state),
            Value::Float(f) => f.to_bits().hash(state),
            Value::Str(s) => s.hash(state),
            Value::List(items) => items.hash(state),
        }
    }
}

/// The value as JSON text (`null`, `true`, `3`, `1.5`, `"a"`, `[1,"x"]`; a
/// non-finite float is `null`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        json::push_json_value(&mut text, self);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Integers that always fit in an `i64` become [`Value::Int`].
macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Int(i64::from(i))
            }
        }
    )*};
}
from_small_int!(i8, i16, i32, i64, u8, u16, u32);

/// Integers that may not fit in an `i64` become [`Value::Int`] when they fit
/// and a (rounded) [`Value::Float`] beyond, as a JSON number that large
/// does when `cepheid run` reads it.
macro_rules! from_large_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                match i64::try_from(i) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(i as f64),
                }
            }
        }
    )*};
}
from_large_int!(u64, usize, isize, i128, u128);

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::Float(f64::from(f))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(Arc::from(s.as_str()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<Box<str>> for Value {
    fn from(s: Box<str>) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<std::borrow::Cow<'_, str>> for Value {
    fn from(s: std::borrow::Cow<'_, str>) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Value {
        Value::Str(s)
    }
}

impl From<&Arc<str>> for Value {
    fn from(s: &Arc<str>) -> Value {
        Value::Str(Arc::clone(s))
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(Arc::from(items))
    }
}

impl From<Arc<[Value]>> for Value {
    fn from(items: Arc<[Value]>) -> Value {
        Value::List(items)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Serializes as the plain value: null, a boolean, a number, a string or a
/// sequence.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(text) => s.serialize_str(text),
            Value::List(items) => s.collect_seq(items.iter()),
        }
    }
}

/// Reads what [`Value`]'s `Serialize` writes, by the rules every JSON input
/// is decoded with ([`crate::json::value_from_json`]: an integer that fits
/// `i64` is `Int`, other numbers `Float`; an object, or a list holding
/// one, is null).
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        Ok(crate::json::value_from_json(&json))
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        v.to_owned()
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    /// A list of the items.
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

/// A [`Value`] borrowed: what [`Event::field`](crate::Event::field) returns.
/// `Copy`, two words and a tag; strings and lists point into the event.
///
/// ```
/// use cepheid_core::{Value, ValueRef};
/// let name = String::from("ada");
/// let v = ValueRef::Str(&name);
/// assert_eq!(v.as_str(), Some("ada"));
/// assert_eq!(v.to_owned(), Value::from("ada"));
/// assert_eq!(ValueRef::from(&Value::Int(3)), ValueRef::Int(3));
/// assert_eq!(ValueRef::from(7u8), ValueRef::Int(7));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub enum ValueRef<'a> {
    /// Missing or unknown.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A borrowed UTF-8 string.
    Str(&'a str),
    /// A borrowed list of values.
    List(&'a [Value]),
}

impl<'a> ValueRef<'a> {
    /// Is this `ValueRef::Null`?
    #[inline]
    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// The string, when this is a string.
    #[inline]
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer.
    #[inline]
    pub fn as_int(self) -> Option<i64> {
        match self {
            ValueRef::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number as a float, when this is an integer or a float.
    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    #[inline]
    pub fn as_bool(self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The items, when this is a list.
    #[inline]
    pub fn as_list(self) -> Option<&'a [Value]> {
        match self {
            ValueRef::List(items) => Some(items),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages (as [`Value::type_name`]).
    #[inline]
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Null => "null",
            ValueRef::Bool(_) => "bool",
            ValueRef::Int(_) => "integer",
            ValueRef::Float(_) => "float",
            ValueRef::Str(_) => "string",
            ValueRef::List(_) => "list",
        }
    }

    /// An owned copy (a string is copied into a new `Arc<str>`; a list's
    /// items are cloned, which shares their contents). Called on a
    /// `&ValueRef`, `to_owned` is `Clone`'s; write `(*v).to_owned()` or
    /// `Value::from(*v)` there.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    #[inline(always)]
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            // (Out of line: a scalar, the common key, copies in place.)
            other => other.to_owned_allocating(),
        }
    }

    /// [`to_owned`](Self::to_owned) of a string or a list.
    #[inline(never)]
    fn to_owned_allocating(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(Arc::from(s)),
            ValueRef::List(items) => Value::List(Arc::from(items)),
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
        }
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    #[inline]
    fn from(v: &'a Value) -> ValueRef<'a> {
        match v {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Str(s) => ValueRef::Str(s),
            Value::List(items) => ValueRef::List(items),
        }
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    #[inline]
    fn from(s: &'a str) -> ValueRef<'a> {
        ValueRef::Str(s)
    }
}

impl<'a> From<&'a [Value]> for ValueRef<'a> {
    fn from(items: &'a [Value]) -> ValueRef<'a> {
        ValueRef::List(items)
    }
}

impl From<bool> for ValueRef<'_> {
    fn from(b: bool) -> Self {
        ValueRef::Bool(b)
    }
}

impl From<f64> for ValueRef<'_> {
    fn from(f: f64) -> Self {
        ValueRef::Float(f)
    }
}

impl From<f32> for ValueRef<'_> {
    fn from(f: f32) -> Self {
        ValueRef::Float(f64::from(f))
    }
}

/// As for [`Value`]: integers that fit become `Int`.
macro_rules! ref_from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for ValueRef<'_> {
            fn from(i: $t) -> Self {
                ValueRef::Int(i64::from(i))
            }
        }
    )*};
}
ref_from_small_int!(i8, i16, i32, i64, u8, u16, u32);

/// As for [`Value`]: beyond `i64`, a rounded `Float`.
macro_rules! ref_from_large_int {
    ($($t:ty),*) => {$(
        impl From<$t> for ValueRef<'_> {
            fn from(i: $t) -> Self {
                match i64::try_from(i) {
                    Ok(i) => ValueRef::Int(i),
                    Err(_) => ValueRef::Float(i as f64),
                }
            }
        }
    )*};
}
ref_from_large_int!(u64, usize, isize, i128, u128);

impl<'a, T: Into<ValueRef<'a>>> From<Option<T>> for ValueRef<'a> {
    fn from(v: Option<T>) -> ValueRef<'a> {
        v.map_or(ValueRef::Null, Into::into)
    }
}

/// Structural equality, as for [`Value`]: `Int(1)` and `Float(1.0)` differ.
impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (*self, *other) {
            (ValueRef::Null, ValueRef::Null) => true,
            (ValueRef::Bool(a), ValueRef::Bool(b)) => a == b,
            (ValueRef::Int(a), ValueRef::Int(b)) => a == b,
            (ValueRef::Float(a), ValueRef::Float(b)) => a.to_bits() == b.to_bits(),
            (ValueRef::Str(a), ValueRef::Str(b)) => a == b,
            (ValueRef::List(a), ValueRef::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for ValueRef<'_> {}

impl PartialEq<Value> for ValueRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        *self == ValueRef::from(other)
    }
}

impl fmt::Display for ValueRef<'_> {
    /// As the owned value displays.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&ValueRef::to_owned(*self), f)
    }
}

/// The values of a pattern's `partition by` fields for one event: the key of
/// one partition, read as a slice of values. One field (the common case) is
/// stored inline in 24 bytes, a [`Value`]'s size (the variants share the
/// value's spare tags; a `SmallVec<[Value; 1]>` took 32: a key is stored in
/// every key slot); several are boxed.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    /// A key of one field.
    One(Value),
    /// A key of any other number of fields (none: a pattern without
    /// `partition by`; no allocation then).
    Many(Box<[Value]>),
}

impl Default for KeyValue {
    fn default() -> Self {
        KeyValue::Many(Box::default())
    }
}

impl std::ops::Deref for KeyValue {
    type Target = [Value];

    #[inline]
    fn deref(&self) -> &[Value] {
        match self {
            KeyValue::One(value) => std::slice::from_ref(value),
            KeyValue::Many(values) => values,
        }
    }
}

impl std::ops::DerefMut for KeyValue {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Value] {
        match self {
            KeyValue::One(value) => std::slice::from_mut(value),
            KeyValue::Many(values) => values,
        }
    }
}

impl From<Vec<Value>> for KeyValue {
    fn from(mut values: Vec<Value>) -> Self {
        match values.len() {
            1 => KeyValue::One(values.pop().unwrap_or_default()),
            _ => KeyValue::Many(values.into_boxed_slice()),
        }
    }
}

impl FromIterator<Value> for KeyValue {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl KeyValue {
    /// A key of no fields.
    pub fn new() -> KeyValue {
        KeyValue::default()
    }

    /// A key of `n` fields, each `value` (no allocation for one field).
    #[inline]
    pub fn from_elem(value: Value, n: usize) -> KeyValue {
        match n {
            1 => KeyValue::One(value),
            _ => vec![value; n].into(),
        }
    }
}

/// A value as a partition key (`docs/semantics.md`, "Partition keys"), or
/// `None` when it cannot be one (NaN, alone or in a list: `NaN == NaN` is
/// not true). Keys are the same when their values are equal by exact
/// value, as the language's `==` compares them: a float with an integer
/// value in the `i64` range becomes that [`Value::Int`] (so `1.0` and `1`,
/// `-0.0` and `0` are one key), and lists are normalized item by item.
/// After this, structural equality and hashing of keys are exact value
/// equality. Integers and strings (the common keys) pass through untouched.
#[inline(always)]
pub fn key_part(value: Value) -> Option<Value> {
    match value {
        Value::Float(f) => key_float(f),
        Value::List(items)
            if items
                .iter()
                .any(|v| matches!(v, Value::Float(_) | Value::List(_))) =>
        {
            items.iter().cloned().map(key_part).collect()
        }
        other => Some(other),
    }
}

/// [`key_part`] of a float: `None` for NaN; the integer when it is exact.
fn key_float(f: f64) -> Option<Value> {
    // 2^63: the first float above `i64::MAX` (`i64::MIN` is exactly -2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        None
    } else if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        // Exact: `f` is an integer inside the `i64` range.
        Some(Value::Int(f as i64))
    } else {
        Some(Value::Float(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ref_borrows_and_converts() {
        let v = Value::from("abc");
        let r = ValueRef::from(&v);
        assert_eq!(r, ValueRef::Str("abc"));
        assert_eq!(r, v);
        assert_eq!(r.to_owned(), v);
        assert_eq!(r.type_name(), v.type_name());
        let list: Value = [1, 2].into_iter().collect();
        assert_eq!(ValueRef::from(&list).as_list().map(<[Value]>::len), Some(2));
        assert_ne!(ValueRef::Int(1), ValueRef::Float(1.0));
        assert_eq!(ValueRef::from(None::<u8>), ValueRef::Null);
    }

    #[test]
    fn conversions_from_rust_types() {
        let s = String::from("x");
        assert_eq!(Value::from(&s), Value::from("x"));
        assert_eq!(Value::from(Some(3u8)), Value::Int(3));
        assert_eq!(Value::from(None::<String>), Value::Null);
        assert_eq!(Value::from(-2i16), Value::Int(-2));
        assert_eq!(Value::from(1.5f32), Value::Float(1.5));
        assert_eq!(Value::from(u64::MAX), Value::Float(u64::MAX as f64));
        assert_eq!(Value::from(7u64), Value::Int(7));
        assert_eq!(ValueRef::from(u64::MAX), ValueRef::Float(u64::MAX as f64));
    }

    #[test]
    fn int_and_float_are_distinct_values() {
        assert_ne!(Value::Int(1), Value::Float(1.0));
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
    }

    #[test]
    fn keys_are_equal_by_exact_value() {
        assert_eq!(key_part(Value::Float(1.0)), Some(Value::Int(1)));
        assert_eq!(key_part(Value::Float(-0.0)), Some(Value::Int(0)));
        assert_eq!(key_part(Value::Float(1.5)), Some(Value::Float(1.5)));
        assert_eq!(key_part(Value::Float(f64::NAN)), None);
        let inf = Value::Float(f64::INFINITY);
        assert_eq!(key_part(inf.clone()), Some(inf));
        // 2^63 does not fit: it stays a float; -2^63 is `i64::MIN`.
        let big = Value::Float(9_223_372_036_854_775_808.0);
        assert_eq!(key_part(big.clone()), Some(big));
        assert_eq!(
            key_part(Value::Float(-9_223_372_036_854_775_808.0)),
            Some(Value::Int(i64::MIN))
        );
        // Exact, not rounded: 2^53 + 1 is not the float 2^53.
        assert_ne!(
            key_part(Value::Int(9_007_199_254_740_993)),
            key_part(Value::Float(9_007_199_254_740_992.0))
        );
        let list = |items: Vec<Value>| Value::List(items.into());
        assert_eq!(
            key_part(list(vec![
                Value::Float(2.0),
                list(vec![Value::Float(-0.0)])
            ])),
            Some(list(vec![Value::Int(2), list(vec![Value::Int(0)])]))
        );
        assert_eq!(
            key_part(list(vec![Value::Int(1), Value::Float(f64::NAN)])),
            None
        );
        assert_eq!(key_part(Value::from("a")), Some(Value::from("a")));
    }

    #[test]
    fn displays_as_json() {
        let list = Value::List(vec![Value::Int(1), Value::from("x\""), Value::Null].into());
        assert_eq!(list.to_string(), r#"[1,"x\"",null]"#);
        assert_eq!(Value::Float(1e20).to_string(), "1e+20");
        assert_eq!(Value::Float(f64::NAN).to_string(), "null");
    }
}
