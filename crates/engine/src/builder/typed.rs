//! [`Pattern`]`<E>`: a built pattern, typed by the event it matches.

use std::fmt;
use std::marker::PhantomData;

use super::PatternBuilder;
use crate::pattern as ir;
use crate::record::Record;

/// A pattern over events of type `E`, made by [`Pattern::begin`] and
/// [`PatternBuilder::build`]: what a program builds and hands to the engine.
///
/// Every closure in it (conditions, `until`, the partition key) takes `&E`;
/// a closure over another type does not compile. Underneath is the untyped
/// IR, [`pattern::Pattern`](crate::pattern::Pattern) ([`Pattern::ir`]), the
/// lower layer shared with the pattern language: patterns from `.cep` text
/// are only IR and compile against any [`Event`](crate::Event).
///
/// `Pattern<E>` is `Clone`, `Send` and `Sync` whatever `E` is.
///
/// ```
/// use std::time::Duration;
/// use cepheid_engine::{Event, Pattern};
///
/// #[derive(Event)]
/// struct Login { user: String, ok: bool }
///
/// let pattern = Pattern::<Login>::begin("fail")
///     .where_fn(|e| !e.ok)
///     .times(3)
///     .within(Duration::from_secs(10))
///     .partition_by_fn(|e| e.user.clone())
///     .name("brute_force")
///     .build()?;
/// assert_eq!(pattern.name(), "brute_force");
/// assert_eq!(pattern.ir().within, Some(10_000));
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
///
/// A closure over another event type is a compile error:
///
/// ```compile_fail,E0631
/// use cepheid_engine::Pattern;
///
/// struct Login { ok: bool }
/// struct Order { paid: bool }
///
/// let pattern = Pattern::<Login>::begin("a").where_fn(|e: &Order| e.paid);
/// ```
pub struct Pattern<E = Record> {
    ir: ir::Pattern,
    /// Did [`PatternBuilder::name`] name it? An unnamed pattern is
    /// numbered by the engine when `unnamed` is taken.
    named: bool,
    /// `fn(&E)`: the pattern consumes `E`s, it does not own one, so it is
    /// `Send + Sync` and needs no bound on `E`.
    event: PhantomData<fn(&E)>,
}

impl<E: 'static> Pattern<E> {
    /// Starts a pattern whose first element is the stage `name`.
    pub fn begin(name: impl Into<String>) -> PatternBuilder<E> {
        PatternBuilder::begin(name.into())
    }

    /// Starts a pattern whose first element is the group `group`.
    pub fn begin_group(group: PatternBuilder<E>) -> PatternBuilder<E> {
        PatternBuilder::begin_group(group)
    }
}

impl<E> Pattern<E> {
    /// Wraps IR that the builder made (and checked) for `E`; `named`
    /// when [`PatternBuilder::name`] gave its name.
    pub(super) fn from_checked_ir(ir: ir::Pattern, named: bool) -> Pattern<E> {
        Pattern {
            ir,
            named,
            event: PhantomData,
        }
    }

    /// The untyped IR: what the NFA compiler, `explain` and the engine read.
    pub fn ir(&self) -> &ir::Pattern {
        &self.ir
    }

    /// The untyped IR, taking it out.
    pub fn into_ir(self) -> ir::Pattern {
        self.ir
    }

    /// The pattern's name (`unnamed` unless [`PatternBuilder::name`] gave
    /// one). An engine that already has a pattern of this name runs an
    /// unnamed pattern as `unnamed_2` (or `unnamed_3`, ...: the first
    /// free), so that several unnamed patterns can be added; see
    /// [`Engine::add`](crate::Engine::add).
    pub fn name(&self) -> &str {
        &self.ir.name
    }

    /// Was it named by [`PatternBuilder::name`]?
    pub fn is_named(&self) -> bool {
        self.named
    }
}

impl<E> From<Pattern<E>> for ir::Pattern {
    fn from(p: Pattern<E>) -> ir::Pattern {
        p.ir
    }
}

impl<E> Clone for Pattern<E> {
    fn clone(&self) -> Self {
        Pattern::from_checked_ir(self.ir.clone(), self.named)
    }
}

impl<E> fmt::Debug for Pattern<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("event", &std::any::type_name::<E>())
            .field("ir", &self.ir)
            .finish()
    }
}
