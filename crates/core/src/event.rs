//! Events: what patterns match, and how conditions read their fields.
//!
//! The matcher is generic over the event type `E: Event`. Field names are
//! resolved **once**, when a pattern is compiled, through the event type's
//! [`FieldResolver`] ([`Event::Fields`]), which turns a [`FieldPath`] into a
//! small integer [`FieldId`]; at run time a condition reads
//! `event.field(id)`, a borrowed [`ValueRef`]: no string hashing and no
//! allocation per read.
//!
//! Two kinds of events are provided for:
//! - [`Record`](crate::Record), a dynamic record (what `cepheid run` builds
//!   from JSON or CSV): its fields live in a vector indexed by the ids of a
//!   shared [`FieldTable`](crate::record::FieldTable).
//! - A user's own struct: `#[derive(cepheid_core::Event)]` (feature `derive`, on
//!   by default) writes the resolver and `field` from the struct's fields
//!   (values, nested structs, `Option`, enums read as strings through
//!   [`EventValue`](crate::EventValue)); or implement [`Event`] by hand (see its example).

use std::fmt;
use std::sync::Arc;

use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};

/// A field resolved by a [`FieldResolver`]: an index, cheap to copy. What
/// the index means is up to the resolver that made it and the event type's
/// [`Event::field`].
///
/// ```
/// use cepheid_core::FieldId;
/// assert_eq!(FieldId::from_index(2).index(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// The id of index `index` (for a hand-written [`FieldResolver`]).
    pub const fn from_index(index: u32) -> FieldId {
        FieldId(index)
    }

    /// The id of a table position. A [`FieldTable`](crate::record::FieldTable)
    /// would need 2^32 distinct paths (hundreds of gigabytes) to overflow,
    /// so the panic cannot be reached from a pattern.
    pub fn new(index: usize) -> FieldId {
        FieldId(u32::try_from(index).expect("more than 2^32 fields"))
    }

    /// The index this id stands for, for indexing.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The index this id stands for, as made by [`FieldId::from_index`].
    pub const fn as_u32(self) -> u32 {
        self.0
    }
}

/// A field name as written in a pattern: one or more segments, `user.id` is
/// `["user", "id"]`. For a [`Record`](crate::Record) a path names a (possibly nested) field
/// of the input object. Serializes as its segments (what a run on several
/// processes sends of the fields its events carried).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FieldPath(pub Vec<Arc<str>>);

impl FieldPath {
    /// Splits `a.b.c` at dots (no backquote handling: this is for code, the
    /// pattern language has its own syntax for odd names).
    pub fn parse(dotted: &str) -> FieldPath {
        FieldPath(dotted.split('.').map(Arc::from).collect())
    }

    /// A path of one segment.
    pub fn single(name: &str) -> FieldPath {
        FieldPath(vec![Arc::from(name)])
    }

    /// The segments.
    pub fn segments(&self) -> &[Arc<str>] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(seg)?;
        }
        Ok(())
    }
}

/// Something a pattern matches: a type whose fields conditions can read.
///
/// Field names are resolved once per pattern compile by the type's
/// [`Fields`](Event::Fields) resolver; each read is then
/// `event.field(id)`, which borrows.
///
/// Most types derive it: `#[derive(cepheid_core::Event)]` on a struct with named
/// fields (feature `derive`, on by default; see the
/// derive's documentation (`cepheid_engine::Event`) for the field types it
/// reads, nesting, `Option`, enums and attributes):
///
/// ```
/// # #[cfg(feature = "derive")] {
/// use cepheid_core::{Event, FieldPath, ValueRef};
/// use cepheid_core::event::FieldResolver;
///
/// #[derive(Event)]
/// struct Login { user: String, ok: bool }
///
/// let mut fields = <Login as Event>::Fields::default();
/// let user = fields.resolve(&FieldPath::parse("user")).unwrap();
/// let login = Login { user: "ada".into(), ok: true };
/// assert_eq!(login.field(user), ValueRef::Str("ada"));
/// # }
/// ```
///
/// By hand, an implementation is a small resolver and a `match`:
///
/// ```
/// use cepheid_core::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
/// use cepheid_core::ValueRef;
///
/// struct Login { user: String, ok: bool }
///
/// /// `user` is id 0, `ok` is id 1.
/// #[derive(Clone, Default)]
/// struct LoginFields;
///
/// impl FieldResolver for LoginFields {
///     fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
///         match path.to_string().as_str() {
///             "user" => Ok(FieldId::from_index(0)),
///             "ok" => Ok(FieldId::from_index(1)),
///             _ => Err(FieldError::new(path).of_type("Login").known(self.known_names().unwrap())),
///         }
///     }
///
///     fn known_names(&self) -> Option<Vec<String>> {
///         Some(vec!["user".into(), "ok".into()])
///     }
/// }
///
/// impl Event for Login {
///     type Fields = LoginFields;
///     fn field(&self, id: FieldId) -> ValueRef<'_> {
///         match id.index() {
///             0 => ValueRef::Str(&self.user),
///             1 => ValueRef::Bool(self.ok),
///             _ => ValueRef::Null,
///         }
///     }
/// }
///
/// let mut fields = LoginFields;
/// let ok = fields.resolve(&FieldPath::parse("ok")).unwrap();
/// let login = Login { user: "ada".into(), ok: true };
/// assert_eq!(login.field(ok), ValueRef::Bool(true));
/// assert!(fields.resolve(&FieldPath::parse("nope")).is_err());
/// ```
pub trait Event {
    /// Resolves this type's field names to ids, once per pattern compile.
    type Fields: FieldResolver + Default + Clone + Send + Sync + 'static;

    /// The value of a field resolved by this type's [`Fields`](Event::Fields)
    /// (`ValueRef::Null` when the event does not have it), borrowed.
    fn field(&self, id: FieldId) -> ValueRef<'_>;

    /// The value of a field, owned: what a run keeps when it remembers a
    /// field (`s.f`, `first`, `last`, `min`, `max`, `distinct`, partition
    /// keys). The default copies [`field`](Event::field); override it when
    /// the event can share its value instead (as [`Record`](crate::Record)
    /// does, cloning an `Arc`).
    fn field_owned(&self, id: FieldId) -> Value {
        self.field(id).to_owned()
    }

    /// Is the field present but holding something that is not a [`Value`]
    /// (a JSON object, or a list with one in it: [`field`](Event::field)
    /// reads it as null)? Asked
    /// only for a null `partition by` field, so that such an event is
    /// counted in `Stats::unusable_keys` (`cepheid_engine`) rather
    /// than as unkeyed. The default says no.
    fn field_is_object(&self, id: FieldId) -> bool {
        let _ = id;
        false
    }

    /// The event's own time, in milliseconds, when it carries one: what
    /// `Engine::push_event` reads instead of a time passed beside the
    /// event. `#[derive(Event)]` returns the field marked
    /// `#[cepheid(time)]` (`None` when the struct has no such field, or
    /// when the field is an `Option` that is `None`, or a `u64` beyond
    /// `i64::MAX`). The default says `None`. A [`Record`](crate::Record)
    /// keeps no time (the decoder gives it beside the record, `Item::Event(ts, record)`),
    /// so it answers `None`: feed records with `Engine::push(ts, record, sink)`
    /// or `Engine::push_json(line, time_field, sink)`.
    fn timestamp(&self) -> Option<Timestamp> {
        None
    }

    /// Bytes the event holds on the heap beyond its own size (its text,
    /// strings, lists): what `Engine::state_bytes` adds per event the
    /// engine holds. Asked only when state is measured (once per tick of
    /// a watching run), never per event processed. The default says 0
    /// (an event of plain fields).
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Turns field names into ids when a pattern is compiled.
pub trait FieldResolver {
    /// The id of `path`, or why the event type has no such field
    /// (reported as a pattern compile error at the place it is read).
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError>;

    /// Every name this resolver knows, when they are a closed set (the
    /// fields of a `#[derive(Event)]` struct, nested ones dotted), so that
    /// an error about an unknown name can suggest the closest one. `None`
    /// (the default) for a resolver that takes any name, as a
    /// [`FieldTable`](crate::record::FieldTable) does.
    fn known_names(&self) -> Option<Vec<String>> {
        None
    }
}

/// The resolver of an event type without named fields (its conditions are
/// Rust closures): every name is an error.
///
/// ```
/// use cepheid_core::event::{FieldPath, FieldResolver, NoFields};
/// assert!(NoFields.resolve(&FieldPath::parse("x")).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoFields;

impl FieldResolver for NoFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        Err(FieldError::new(path).known(Vec::new()))
    }
}

/// A field an event type does not have: the path as written, the type's
/// name when the resolver gives it, and the type's fields when they are a
/// closed set (none at all for a type without named fields).
///
/// ```
/// use cepheid_core::event::{FieldError, FieldPath};
/// let path = FieldPath::parse("sucess");
/// let e = FieldError::new(&path).of_type("Login").known(vec!["user".into(), "success".into()]);
/// assert_eq!(e.to_string(), "`Login` has no field `sucess`; its fields are user, success");
/// assert_eq!(FieldError::new(&path).to_string(), "the event type has no field `sucess`");
/// assert_eq!(
///     FieldError::new(&path).known(Vec::new()).to_string(),
///     "the event type has no named fields, so `sucess` cannot be read"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    path: FieldPath,
    type_name: Option<String>,
    known: Option<Vec<String>>,
}

impl FieldError {
    /// The event type has no field `path`.
    pub fn new(path: &FieldPath) -> FieldError {
        FieldError {
            path: path.clone(),
            type_name: None,
            known: None,
        }
    }

    /// The same error, naming the event type.
    pub fn of_type(mut self, type_name: impl Into<String>) -> FieldError {
        self.type_name = Some(type_name.into());
        self
    }

    /// The same error, with every field the type has (none: a type
    /// without named fields).
    pub fn known(mut self, names: Vec<String>) -> FieldError {
        self.known = Some(names);
        self
    }

    /// The path as written.
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// The event type's name, when given.
    pub fn type_name(&self) -> Option<&str> {
        self.type_name.as_deref()
    }

    /// The fields the type has, when they are a closed set.
    pub fn known_names(&self) -> Option<&[String]> {
        self.known.as_deref()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        let of = match &self.type_name {
            Some(name) => format!("`{name}`"),
            None => "the event type".to_string(),
        };
        match &self.known {
            Some(names) if names.is_empty() => {
                write!(f, "{of} has no named fields, so `{path}` cannot be read")
            }
            Some(names) => write!(
                f,
                "{of} has no field `{path}`; its fields are {}",
                names.join(", ")
            ),
            None => write!(f, "{of} has no field `{path}`"),
        }
    }
}

impl std::error::Error for FieldError {}
