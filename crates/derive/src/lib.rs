//! `#[derive(Event)]` and `#[derive(EventValue)]` for
//! [cepheid](https://docs.rs/cepheid). Use them through cepheid, which
//! re-exports both (feature `derive`, on by default): `#[derive(cepheid_engine::Event)]`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod attrs;
mod event;
mod value;

/// Makes a struct with named fields a cepheid `Event`: patterns in the
/// language and in the builder read its fields by name, without a field
/// table kept by hand and without allocating per read.
///
/// ```
/// use cepheid_engine::{Event, EventValue, FieldPath, Value};
/// use cepheid_core::event::FieldResolver;
///
/// #[derive(Event)]
/// struct Login {
///     user: User,                  // nested: `user.id`, `user.name`
///     ip: Option<String>,          // None reads as null
///     outcome: Outcome,            // reads as "ok" or "failed"
///     #[cepheid(rename = "type")]
///     kind: u8,
///     #[cepheid(skip)]
///     raw: Vec<u8>,
/// }
///
/// #[derive(Event)]
/// struct User {
///     id: u64,
///     name: String,
/// }
///
/// #[derive(EventValue)]
/// #[cepheid(rename_all = "lowercase")]
/// enum Outcome {
///     Ok,
///     Failed,
/// }
///
/// let login = Login {
///     user: User { id: 7, name: "ada".into() },
///     ip: None,
///     outcome: Outcome::Failed,
///     kind: 2,
///     raw: vec![],
/// };
/// let mut fields = <Login as Event>::Fields::default();
/// let mut read = |name: &str| {
///     let id = fields.resolve(&FieldPath::parse(name)).unwrap();
///     login.field(id).to_owned()
/// };
/// assert_eq!(read("user.name"), Value::from("ada"));
/// assert_eq!(read("user.id"), Value::Int(7));
/// assert_eq!(read("ip"), Value::Null);
/// assert_eq!(read("outcome"), Value::from("failed"));
/// assert_eq!(read("type"), Value::Int(2));
///
/// let err = fields.resolve(&FieldPath::parse("raw")).unwrap_err();
/// assert_eq!(err.to_string(), "`Login` has no field `raw`; its fields are \
///     user.id, user.name, ip, outcome, type");
/// ```
///
/// # Field types
///
/// - Values ([`EventValue`](https://docs.rs/cepheid/latest/cepheid/trait.EventValue.html)):
///   `bool`; every integer type (an `Int`; a `u64`, `usize` or 128-bit value
///   beyond `i64::MAX` reads as a rounded `Float`, as a JSON number that
///   large does); `f32` and `f64`; `String`, `&str`, `Box<str>`, `Arc<str>`,
///   `Rc<str>` and `Cow<str>` (read borrowed, never copied); `cepheid_engine::Value`;
///   lists as `Vec<cepheid_engine::Value>`, `[Value]` or `Arc<[Value]>`; a type that
///   derives or implements `EventValue`; references and boxes of these.
/// - A list of anything but `cepheid_engine::Value` (`Vec<i64>`, `Vec<String>`) is
///   a compile error: a field is read borrowed, and such a list cannot be
///   lent as values. Store `Vec<Value>`, or `#[cepheid(skip)]` the field.
/// - A struct that derives `Event`: nested, its fields are read as
///   `outer.inner` (any depth).
/// - `Option<T>` of any of these: `None` reads as null (in every field
///   below it, for a nested struct).
///
/// Any other type is a compile error pointing at the field, saying what is
/// supported.
///
/// # Attributes
///
/// - `#[cepheid(rename = "name")]` on a field: the name patterns use.
/// - `#[cepheid(skip)]`: the field cannot be read.
/// - `#[cepheid(flatten)]` on a nested struct: its fields are read without
///   the prefix (`id`, not `user.id`); a field of the outer struct with the
///   same name wins.
/// - `#[cepheid(rename_all = "...")]` on the struct: `lowercase`,
///   `UPPERCASE`, `camelCase`, `PascalCase`, `snake_case`,
///   `SCREAMING_SNAKE_CASE` or `kebab-case`, applied to every field not
///   renamed.
/// - `#[cepheid(time)]` on one field: the event's time in milliseconds,
///   what `Event::timestamp` returns and `Engine::push_event(event, sink)`
///   reads. Its type is an integer (`i8` to `i64`, `u8` to `u64`, `isize`,
///   `usize`; `cepheid_engine::Timestamp` is `i64`) or an `Option` of one
///   (`None`, or an unsigned value beyond `i64::MAX`, is an event without a
///   time: `push_event` refuses it with an error). Any other type is a
///   compile error at the field; so is the attribute on two fields, or on
///   a flattened one. The field stays readable by patterns under its name
///   (add `skip` to hide it, `rename` to rename it). Without the attribute
///   an event has no time of its own: pass it beside the event,
///   `Engine::push(ts, event, sink)`.
///
/// ```
/// use cepheid_engine::{Engine, Event, MatchRef, Pattern, Timestamp};
///
/// #[derive(Clone, Debug, Event)]
/// struct Reading {
///     #[cepheid(time)]
///     at: Timestamp,
///     celsius: f64,
/// }
///
/// let hot = Pattern::<Reading>::begin("hot").where_expr("celsius > 30").times(2).build()?;
/// let mut engine = Engine::<Reading>::new();
/// engine.add(&hot)?;
/// let mut matches = 0;
/// let mut sink = |_: &MatchRef<'_, Reading>| matches += 1;
/// for (at, celsius) in [(1_000, 31.0), (2_000, 32.5)] {
///     engine.push_event(Reading { at, celsius }, &mut sink)?;
/// }
/// engine.finish(&mut sink);
/// assert_eq!(matches, 1);
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
///
/// # What is generated
///
/// An `impl Event` whose `Fields` is a zero-sized resolver type generated
/// inside an anonymous `const _` block, so it adds no name to your module;
/// name it as `<T as cepheid_engine::Event>::Fields`. Resolving a name that is not
/// a field gives an error naming it and listing the struct's fields. The
/// ids are numbered at compile time and `field` is one `match`.
///
/// Structs may have lifetime parameters (`&'a str` fields); type
/// parameters, tuple structs, unit structs and enums are compile errors.
#[proc_macro_derive(Event, attributes(cepheid))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a type readable as one value of an event field.
///
/// - On an enum whose variants have no fields: reads as the variant's name,
///   a string (`#[cepheid(rename = "...")]` on a variant,
///   `#[cepheid(rename_all = "...")]` on the enum, as for
///   [`Event`](derive@Event)).
/// - On a struct with exactly one field (a newtype): reads as that field.
///
/// ```
/// use cepheid_engine::{EventValue, ValueRef};
///
/// #[derive(EventValue)]
/// #[cepheid(rename_all = "snake_case")]
/// enum State {
///     PaymentDue,
///     #[cepheid(rename = "done")]
///     Paid,
/// }
///
/// #[derive(EventValue)]
/// struct OrderId(u64);
///
/// assert_eq!(State::PaymentDue.value_ref(), ValueRef::Str("payment_due"));
/// assert_eq!(State::Paid.value_ref(), ValueRef::Str("done"));
/// assert_eq!(OrderId(9).value_ref(), ValueRef::Int(9));
/// ```
#[proc_macro_derive(EventValue, attributes(cepheid))]
pub fn derive_event_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    value::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
