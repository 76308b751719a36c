//! What `#[derive(Event)]` builds on: [`EventValue`] (a type that reads as
//! one value) and the hidden [`EventField`] (a field that occupies a range of
//! ids: one for a value, several for a nested struct).

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use crate::event::{FieldError, FieldId, FieldPath};
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};

/// A type that reads as one value: what a field of a
/// `#[derive(cepheid_core::Event)]` struct can be (besides a nested struct and
/// `Option`).
///
/// Implemented for `bool`, every integer type (beyond `i64`, a `u64`,
/// `usize` or 128-bit value reads as a rounded float, as a JSON number that
/// large does), `f32`, `f64`, `str`, `String`, `Box<str>`, `Arc<str>`,
/// `Rc<str>`, `Cow<str>`, [`Value`], [`ValueRef`], lists of values (`[Value]`,
/// `Vec<Value>`, `Arc<[Value]>`), and references and boxes of these. Derive
/// it for a unit-only enum (reads as the variant's name) or a newtype
/// struct (reads as the wrapped value) with `#[derive(cepheid_engine::EventValue)]`,
/// or implement it by hand:
///
/// ```
/// use cepheid_core::{EventValue, ValueRef};
///
/// struct Celsius(f64);
/// impl EventValue for Celsius {
///     fn value_ref(&self) -> ValueRef<'_> {
///         ValueRef::Float(self.0)
///     }
/// }
/// assert_eq!(Celsius(21.5).value_ref(), ValueRef::Float(21.5));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read as an event value",
    label = "not a value type",
    note = "values are bool, integers, f32, f64, String, &str, Box<str>, Arc<str>, Cow<str>, cepheid_engine::Value and Vec<cepheid_engine::Value>; derive `cepheid_engine::EventValue` for a unit-only enum or a newtype, or implement it"
)]
pub trait EventValue {
    /// The value, borrowed.
    fn value_ref(&self) -> ValueRef<'_>;

    /// The value, owned. The default copies [`value_ref`](Self::value_ref);
    /// types that hold shared strings or lists override it to share them.
    fn to_value(&self) -> Value {
        self.value_ref().to_owned()
    }
}

impl EventValue for bool {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Bool(*self)
    }
}

/// Integers (and floats) read through [`ValueRef`]'s conversions.
macro_rules! number_values {
    ($($t:ty),*) => {$(
        impl EventValue for $t {
            #[inline]
            fn value_ref(&self) -> ValueRef<'_> {
                ValueRef::from(*self)
            }
        }
    )*};
}
number_values!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);

impl EventValue for str {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Str(self)
    }
}

impl EventValue for String {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Str(self)
    }
}

impl EventValue for Arc<str> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::Str(self)
    }

    fn to_value(&self) -> Value {
        Value::Str(Arc::clone(self))
    }
}

impl EventValue for [Value] {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::List(self)
    }
}

impl EventValue for Vec<Value> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::List(self)
    }
}

impl EventValue for Arc<[Value]> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        ValueRef::List(self)
    }

    fn to_value(&self) -> Value {
        Value::List(Arc::clone(self))
    }
}

impl EventValue for Value {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        self.into()
    }

    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl EventValue for ValueRef<'_> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        *self
    }
}

impl<T: EventValue + ?Sized> EventValue for &T {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }

    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: EventValue + ?Sized> EventValue for &mut T {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }

    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: EventValue + ?Sized> EventValue for Box<T> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }

    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: EventValue + ?Sized> EventValue for Rc<T> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }

    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: EventValue + ToOwned + ?Sized> EventValue for Cow<'_, T> {
    #[inline]
    fn value_ref(&self) -> ValueRef<'_> {
        (**self).value_ref()
    }

    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// The type of a field marked `#[cepheid(time)]` in a `#[derive(Event)]`
/// struct: an integer number of milliseconds (`i8` to `i64`, `u8` to
/// `u64`, `isize`, `usize`; `Timestamp` is `i64`), or an `Option` of one.
/// `None`, and an unsigned value beyond `i64::MAX`, is an event without a
/// time. Not meant to be implemented by hand.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the time of a `#[derive(Event)]` struct",
    label = "not an integer number of milliseconds",
    note = "`#[cepheid(time)]` takes an integer field of milliseconds (i8 to i64, u8 to u64, isize, usize; `cepheid_engine::Timestamp` is i64) or an `Option` of one; for another type, implement `Event::timestamp` by hand"
)]
pub trait EventTime {
    /// The time, in milliseconds.
    fn event_time(&self) -> Option<Timestamp>;
}

macro_rules! event_time_lossless {
    ($($t:ty),*) => {$(
        impl EventTime for $t {
            #[inline]
            fn event_time(&self) -> Option<Timestamp> {
                Some(Timestamp::from(*self))
            }
        }
    )*};
}

event_time_lossless!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! event_time_checked {
    ($($t:ty),*) => {$(
        impl EventTime for $t {
            #[inline]
            fn event_time(&self) -> Option<Timestamp> {
                Timestamp::try_from(*self).ok()
            }
        }
    )*};
}

event_time_checked!(u64, isize, usize);

impl<T: EventTime> EventTime for Option<T> {
    #[inline]
    fn event_time(&self) -> Option<Timestamp> {
        self.as_ref().and_then(EventTime::event_time)
    }
}

/// A field of a `#[derive(Event)]` struct: a range of `WIDTH` ids, one for
/// a value, one per leaf for a nested struct. Implemented by the derive and
/// for every [`EventValue`] and `Option` of a field; not meant to be
/// implemented by hand (its items may change).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a `#[derive(Event)]` struct",
    label = "unsupported field type",
    note = "a field is a value (bool, integers, f32, f64, String, &str, Box<str>, Arc<str>, Cow<str>, cepheid_engine::Value, Vec<cepheid_engine::Value>), a struct that derives `cepheid_engine::Event` (nested: `outer.inner` in patterns), an `Option` of these, or a type that implements `cepheid_engine::EventValue` (derive it for a unit-only enum or a newtype)",
    note = "a list of anything but `cepheid_engine::Value` cannot be borrowed as one: use `Vec<cepheid_engine::Value>`, or leave the field out with `#[cepheid(skip)]`"
)]
pub trait EventField {
    /// How many ids the field occupies.
    const WIDTH: u32;

    /// The id, relative to the field's first, of the rest of a path below
    /// this field (empty for a value).
    fn resolve(rest: &[Arc<str>]) -> Option<u32>;

    /// The value at a relative id.
    fn read(&self, id: u32) -> ValueRef<'_>;

    /// The value at a relative id, owned.
    fn read_owned(&self, id: u32) -> Value;

    /// Appends the dotted names of the field's leaves, under `prefix`.
    fn names(prefix: &str, out: &mut Vec<String>);
}

impl<T: EventValue + ?Sized> EventField for T {
    const WIDTH: u32 = 1;

    fn resolve(rest: &[Arc<str>]) -> Option<u32> {
        rest.is_empty().then_some(0)
    }

    #[inline]
    fn read(&self, _: u32) -> ValueRef<'_> {
        self.value_ref()
    }

    #[inline]
    fn read_owned(&self, _: u32) -> Value {
        self.to_value()
    }

    fn names(prefix: &str, out: &mut Vec<String>) {
        out.push(prefix.to_string());
    }
}

/// `None` reads as null in every field below it.
impl<T: EventField> EventField for Option<T> {
    const WIDTH: u32 = T::WIDTH;

    fn resolve(rest: &[Arc<str>]) -> Option<u32> {
        T::resolve(rest)
    }

    #[inline]
    fn read(&self, id: u32) -> ValueRef<'_> {
        match self {
            Some(inner) => inner.read(id),
            None => ValueRef::Null,
        }
    }

    #[inline]
    fn read_owned(&self, id: u32) -> Value {
        match self {
            Some(inner) => inner.read_owned(id),
            None => Value::Null,
        }
    }

    fn names(prefix: &str, out: &mut Vec<String>) {
        T::names(prefix, out);
    }
}

/// `prefix.name`, or `name` at the top.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The resolver of a derived struct: the id of `path`, or an error that
/// names the path and the struct's fields.
pub fn resolve<T: EventField + ?Sized>(
    type_name: &str,
    path: &FieldPath,
) -> Result<FieldId, FieldError> {
    if let Some(id) = T::resolve(path.segments()) {
        return Ok(FieldId::from_index(id));
    }
    let mut names = Vec::new();
    T::names("", &mut names);
    Err(FieldError::new(path).of_type(type_name).known(names))
}
