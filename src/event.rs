//! Events: what patterns match, and how conditions read their fields.
//!
//! The matcher is generic over the event type `E: Event`. Field names are
//! resolved **once**, when a pattern is compiled, through a
//! [`FieldResolver`] that turns a [`FieldPath`] into a small integer
//! [`FieldId`]; at run time a condition reads `event.field(id)`, with no
//! string hashing per event.
//!
//! Two kinds of events are provided for:
//! - [`Record`], a dynamic record (what `cepheid run` builds from JSON or CSV):
//!   its fields live in a vector indexed by the ids of a shared
//!   [`FieldTable`], next to the original text of the event for output.
//! - A user's own struct: implement [`Event`] for it and give the pattern
//!   compiler a resolver for its field names, e.g. a [`StaticFields`] list.
//!
//! ```
//! use std::borrow::Cow;
//! use cepheid::event::{Event, FieldId, FieldPath, FieldResolver, StaticFields};
//! use cepheid::Value;
//!
//! struct Login { user: u64, ok: bool }
//! impl Event for Login {
//!     fn field(&self, id: FieldId) -> Cow<'_, Value> {
//!         Cow::Owned(match id.index() {
//!             0 => Value::from(self.user as i64),
//!             1 => Value::from(self.ok),
//!             _ => Value::Null,
//!         })
//!     }
//! }
//! let mut fields = StaticFields::new(&["user", "ok"]);
//! assert_eq!(fields.resolve(&FieldPath::parse("ok")).unwrap().index(), 1);
//! assert!(fields.resolve(&FieldPath::parse("nope")).is_err());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::value::Value;

/// Event time (or any integer clock), in milliseconds.
pub type Timestamp = i64;

/// A field resolved by a [`FieldResolver`]: an index, cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// Makes an id from an index.
    pub fn new(index: usize) -> FieldId {
        FieldId(u32::try_from(index).expect("more than 2^32 fields"))
    }

    /// The index this id stands for.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A field name as written in a pattern: one or more segments, `user.id` is
/// `["user", "id"]`. For a [`Record`] a path names a (possibly nested) field
/// of the input object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Something a condition can be evaluated against.
pub trait Event {
    /// The value of a field resolved earlier by the resolver this pattern was
    /// compiled with; `Value::Null` when the event does not have it.
    fn field(&self, id: FieldId) -> Cow<'_, Value>;
}

/// Turns field names into ids when a pattern is compiled.
pub trait FieldResolver {
    /// The id of `path`, or a message saying why the event type has no such
    /// field (reported as a pattern compile error).
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String>;
}

/// A fixed list of field names for a typed event: `resolve("x")` is the
/// position of `"x"` in the list; dotted names are matched as written.
#[derive(Clone, Debug)]
pub struct StaticFields {
    names: Vec<String>,
}

impl StaticFields {
    /// A resolver over these names, in this order.
    pub fn new(names: &[&str]) -> StaticFields {
        StaticFields {
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl FieldResolver for StaticFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String> {
        let dotted = path.to_string();
        self.names
            .iter()
            .position(|n| *n == dotted)
            .map(FieldId::new)
            .ok_or_else(|| format!("the event type has no field `{dotted}`"))
    }
}
