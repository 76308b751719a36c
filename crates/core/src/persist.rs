//! How the state an engine snapshot holds is written (`cepheid_engine`'s
//! `Engine::snapshot`, `docs/snapshot.md`): the [`Save`] and [`Load`]
//! traits that the state's types of every layer implement.
//!
//! The state lives in types of several layers, some of them public
//! (`Partition` and `SharedBuffer` of `cepheid_automata`,
//! [`crate::expr::Accumulators`]). Their layout is not a public format, so
//! they do not implement `serde`'s traits; they implement [`Save`] and
//! [`Load`] instead, which only the snapshot reaches (a field of a derived
//! type goes through them with `#[serde(with = "crate::persist::via")]`).
//!
//! [`Value`] is here too: its public `Serialize` writes the plain JSON-like
//! value (a number, a string, ...), which a binary format that is not
//! self-describing (postcard) cannot read back, so the snapshot writes it
//! tagged with its kind ([`Save`] for `Value`), and reads it back with a
//! bound on the nesting of lists (a crafted file must not overflow the
//! stack).

use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, EnumAccess, Error as _, SeqAccess, VariantAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::Value;

/// Writes a value of the snapshot's state.
pub trait Save {
    /// Serializes `self`.
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}

/// Reads a value of the snapshot's state back.
pub trait Load: Sized {
    /// Deserializes a value.
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// `#[serde(with = "crate::persist::via")]`: a field through [`Save`] and
/// [`Load`].
pub mod via {
    use super::{Load, Save};

    /// Serializes through [`Save`].
    pub fn serialize<T: Save + ?Sized, S: serde::Serializer>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value.save(s)
    }

    /// Deserializes through [`Load`].
    pub fn deserialize<'de, T: Load, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::load(d)
    }
}

/// A reference to a [`Save`] value as a `Serialize` one.
pub struct Saved<'a, T: ?Sized>(pub &'a T);

impl<T: Save + ?Sized> Serialize for Saved<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.save(s)
    }
}

/// A [`Load`] value as a `Deserialize` one.
pub struct Loaded<T>(pub T);

impl<'de, T: Load> Deserialize<'de> for Loaded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::load(d).map(Loaded)
    }
}

impl<T: Save + ?Sized> Save for &T {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).save(s)
    }
}

impl<T: Save> Save for [T] {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for item in self {
            seq.serialize_element(&Saved(item))?;
        }
        seq.end()
    }
}

impl<T: Save> Save for Vec<T> {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self[..].save(s)
    }
}

impl<T: Load> Load for Vec<T> {
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items: Vec<Loaded<T>> = Deserialize::deserialize(d)?;
        Ok(items.into_iter().map(|Loaded(item)| item).collect())
    }
}

impl<A: smallvec::Array> Save for smallvec::SmallVec<A>
where
    A::Item: Save,
{
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self[..].save(s)
    }
}

impl<A: smallvec::Array> Load for smallvec::SmallVec<A>
where
    A::Item: Load,
{
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<A::Item>::load(d)?.into_iter().collect())
    }
}

impl Save for crate::value::KeyValue {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self[..].save(s)
    }
}

impl Load for crate::value::KeyValue {
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<crate::value::Value>::load(d)?.into())
    }
}

impl<T: Save> Save for Option<T> {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            None => s.serialize_none(),
            Some(value) => s.serialize_some(&Saved(value)),
        }
    }
}

impl<T: Load> Load for Option<T> {
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value: Option<Loaded<T>> = Deserialize::deserialize(d)?;
        Ok(value.map(|Loaded(v)| v))
    }
}

/// How deeply lists may nest in a value read back (values from JSON nest
/// at most 128 deep: `serde_json`'s limit).
pub const MAX_VALUE_DEPTH: usize = 200;

/// The kinds of [`Value`], in the order of its variants (the tag written).
const KINDS: &[&str] = &["Null", "Bool", "Int", "Float", "Str", "List"];

#[derive(Deserialize)]
#[serde(variant_identifier)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    List,
}

/// A value tagged with its kind: an enum of six variants.
impl Save for Value {
    fn save<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit_variant("Value", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant("Value", 2, "Int", i),
            Value::Float(f) => s.serialize_newtype_variant("Value", 3, "Float", f),
            Value::Str(text) => s.serialize_newtype_variant("Value", 4, "Str", &**text),
            Value::List(items) => s.serialize_newtype_variant("Value", 5, "List", &Saved(&**items)),
        }
    }
}

impl Load for Value {
    fn load<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValueSeed { depth: 0 }.deserialize(d)
    }
}

/// Reads one tagged value at a nesting depth.
struct ValueSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_enum("Value", KINDS, self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (kind, variant) = data.variant::<Kind>()?;
        match kind {
            Kind::Null => variant.unit_variant().map(|()| Value::Null),
            Kind::Bool => variant.newtype_variant().map(Value::Bool),
            Kind::Int => variant.newtype_variant().map(Value::Int),
            Kind::Float => variant.newtype_variant().map(Value::Float),
            Kind::Str => variant
                .newtype_variant::<String>()
                .map(|s| Value::Str(Arc::from(s))),
            Kind::List => {
                if self.depth >= MAX_VALUE_DEPTH {
                    return Err(A::Error::custom(format!(
                        "lists nested more than {MAX_VALUE_DEPTH} deep"
                    )));
                }
                variant.newtype_variant_seed(ListSeed {
                    depth: self.depth + 1,
                })
            }
        }
    }
}

/// Reads the items of a tagged list.
struct ListSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tagged values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // (The length read is not trusted for the allocation.)
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(ValueSeed { depth: self.depth })? {
            items.push(item);
        }
        Ok(Value::List(items.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &Value) -> Value {
        let bytes = postcard::to_allocvec(&Saved(value)).unwrap();
        postcard::from_bytes::<Loaded<Value>>(&bytes).unwrap().0
    }

    #[test]
    fn values_round_trip_with_their_kind() {
        let list: Value = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(1.0),
            Value::Float(f64::NAN),
            Value::from("é\"x"),
            Value::List(vec![Value::Int(1), Value::List(Arc::from([]))].into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(round_trip(&list), list);
        assert_eq!(round_trip(&Value::Float(1.0)), Value::Float(1.0));
        assert_ne!(round_trip(&Value::Float(1.0)), Value::Int(1));
    }

    #[test]
    fn deeply_nested_lists_are_an_error_not_a_stack_overflow() {
        // 100,000 levels of `List([...])`: tag 5, length 1.
        let mut bytes = [5u8, 1].repeat(100_000);
        bytes.push(0);
        let err = postcard::from_bytes::<Loaded<Value>>(&bytes).err();
        assert!(err.is_some());
        let mut value = Value::Null;
        for _ in 0..MAX_VALUE_DEPTH {
            value = Value::List(vec![value].into());
        }
        assert_eq!(round_trip(&value), value);
    }
}
