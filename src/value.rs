//! Values: what fields, literals and expressions evaluate to.
//!
//! A [`Value`] is null, a boolean, a 64-bit integer, a 64-bit float, a string
//! or a list. Strings and lists are reference counted, so cloning a value
//! never copies its contents. The operators and functions over values live in
//! [`crate::expr`]; this module only owns the type, its conversions, and the
//! hashable [`KeyValue`] used for partition keys.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A dynamically typed value.
///
/// ```
/// use cepheid::Value;
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
/// here (this is identity, used for keys and tests). The expression language's
/// `==`, which mixes integers and floats, lives in [`crate::expr`].
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
        crate::io::write::push_json_value(&mut text, self);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Value {
        Value::Str(s)
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

/// The values of a pattern's `partition by` fields for one event: the key of
/// one partition. One field (the common case) is stored inline.
pub type KeyValue = smallvec::SmallVec<[Value; 1]>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_and_float_are_distinct_keys() {
        assert_ne!(Value::Int(1), Value::Float(1.0));
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
    }

    #[test]
    fn displays_as_json() {
        let list = Value::List(vec![Value::Int(1), Value::from("x\""), Value::Null].into());
        assert_eq!(list.to_string(), r#"[1,"x\"",null]"#);
        assert_eq!(Value::Float(1e20).to_string(), "1e+20");
        assert_eq!(Value::Float(f64::NAN).to_string(), "null");
    }
}
