//! The pattern IR: what the NFA compiler compiles.
//!
//! Both the language (`.cep` files, via [`crate::dsl`]) and the Rust builder
//! API produce a [`Pattern`]: the builder wraps it in the typed
//! [`crate::Pattern`]`<E>`, which is what programs hand to the engine. Names
//! are resolved: stages are [`StageId`]s that
//! index [`Pattern::stages`], conditions are [`Condition`]s (an expression or
//! a native closure), durations are milliseconds. Elements keep the source
//! [`Span`] they came from (empty for the builder) so that static checks can
//! point at the text.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::event::FieldPath;
use crate::expr::{Expr, SelectItem};
use crate::lookup::{Attributes, Declarations, ListWrite, LookupRead};
use crate::primitives::{DurationMs, Span, StageId};
use crate::value::Value;

/// A compile-ready pattern, not tied to an event type: the lower layer
/// shared by the language and the builder.
///
/// Programs usually build a typed `cepheid_engine::Pattern<E>` with
/// `Pattern::begin` instead; it holds one of these
/// (`Pattern::ir`) and guarantees at compile time that its closures
/// are over `E`. A `Pattern` made by hand may hold closures over any type;
/// the NFA compiler checks them against the event type it compiles for.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The pattern's name (unique in a set of patterns).
    pub name: String,
    /// `///` documentation lines, joined with newlines.
    pub doc: Option<String>,
    /// `partition by` fields; empty (and no [`partition_by_fn`]) means one
    /// global partition.
    ///
    /// [`partition_by_fn`]: Pattern::partition_by_fn
    pub partition_by: Vec<FieldPath>,
    /// A key computed by a Rust closure (the builder's `partition_by_fn`),
    /// instead of `partition_by` fields: at most one of the two is set
    /// ([`crate::pattern::validate`] rejects both). Patterns from the
    /// language never set it.
    pub partition_by_fn: Option<NativeKey>,
    /// Pattern-level window (`within`, Flink's FIRST_AND_LAST).
    pub within: Option<DurationMs>,
    /// After-match skip strategy.
    pub skip: SkipStrategy,
    /// Emit partial matches that expire by a window as timeouts.
    pub emit_timeouts: bool,
    /// Every stage, indexed by [`StageId`].
    pub stages: Vec<Stage>,
    /// The `match` sequence.
    pub sequence: Sequence,
    /// `select` entries, evaluated once per complete match.
    pub select: Vec<SelectItem>,
    /// Rule attributes (`score`, `level`, `action`, `tags`), carried by its
    /// records.
    pub attributes: Attributes,
    /// `shadow`: the pattern runs on the live input but its records go to
    /// the run's shadow output, never to its output (`docs/rule-lab.md`,
    /// "Shadow rules"). Not part of the pattern's identity: the same
    /// pattern without the mark (its promotion) keeps its state.
    pub shadow: bool,
    /// `then add`/`then remove`: what a match writes to reference lists.
    pub writes: Vec<ListWrite>,
    /// The list memberships and indicator calls of the stages' conditions,
    /// reported with each record (set by the language; empty for the
    /// builder).
    pub reads: Vec<LookupRead>,
    /// The rule set's lists and indicators its expressions number (the
    /// table as it was when the pattern was lowered: a prefix of the
    /// final one), when it reads or writes any: so that an engine given
    /// the pattern alone knows them.
    pub declarations: Option<Arc<Declarations>>,
    /// Where the pattern's name was written (empty for the builder).
    pub span: Span,
}

/// One stage: a named step whose accepted events are reported under its name.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The stage name, as reported in output.
    pub name: String,
    /// Which events the stage accepts.
    pub condition: Condition,
    /// Where the stage name is written in `match` (empty for the builder).
    pub span: Span,
}

impl Stage {
    /// A stage named `name` accepting what `condition` accepts.
    pub fn new(name: impl Into<String>, condition: Condition) -> Stage {
        Stage {
            name: name.into(),
            condition,
            span: Span::default(),
        }
    }
}

/// A sequence of elements joined by connectors.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    /// The elements in order; the first one's `contiguity` is ignored.
    pub elements: Vec<Element>,
}

impl Sequence {
    /// A sequence of these elements.
    pub fn new(elements: Vec<Element>) -> Sequence {
        Sequence { elements }
    }

    /// Can one pass over the sequence take no event at all (every element
    /// that is not a negation is optional, or a group that can itself take
    /// nothing)? Nesting is bounded by the language's limits and the NFA
    /// compiler's depth check.
    pub fn can_take_nothing(&self) -> bool {
        self.elements
            .iter()
            .filter(|e| !e.is_negation())
            .all(Element::can_take_nothing)
    }
}

/// One element of a sequence: a stage or a group, with its quantifier and
/// modifiers, and how it connects to the element before it.
#[derive(Clone, Debug)]
pub struct Element {
    /// A stage or a nested group.
    pub kind: ElementKind,
    /// The connector before this element (to the previous element).
    pub contiguity: Contiguity,
    /// How many times the element repeats.
    pub quantifier: Quantifier,
    /// `optional` / `?` / `*`: the element may be skipped entirely.
    pub optional: bool,
    /// `greedy`: a looping element takes as much as it can.
    pub greedy: bool,
    /// Contiguity between the repetitions of a looping or counted element.
    pub inner: InnerContiguity,
    /// `until c`: a looping element stops when an event satisfies `c`.
    pub until: Option<Condition>,
    /// Element-level window (Flink's PREVIOUS_AND_CURRENT): every event taken
    /// by this element comes less than this long after the previous taken
    /// event of the match.
    pub within: Option<DurationMs>,
    /// Where the element is written (empty for the builder).
    pub span: Span,
}

impl Element {
    /// Can the element be passed without taking an event (optional, or a
    /// group that can take nothing)?
    pub fn can_take_nothing(&self) -> bool {
        self.is_optional()
            || match &self.kind {
                ElementKind::Group(inner) => inner.can_take_nothing(),
                ElementKind::Alternation(branches) => {
                    branches.iter().any(Sequence::can_take_nothing)
                }
                ElementKind::Stage(_) => false,
            }
    }

    /// A single stage, relaxed (`followed by`) to its predecessor.
    pub fn stage(stage: StageId) -> Element {
        Element {
            kind: ElementKind::Stage(stage),
            contiguity: Contiguity::Relaxed,
            quantifier: Quantifier::One,
            optional: false,
            greedy: false,
            inner: InnerContiguity::Relaxed,
            until: None,
            within: None,
            span: Span::default(),
        }
    }

    /// A group, relaxed to its predecessor.
    pub fn group(sequence: Sequence) -> Element {
        Element {
            kind: ElementKind::Group(sequence),
            ..Element::stage(StageId(0))
        }
    }

    /// Does this element repeat without an upper bound (Flink's LOOPING)?
    pub fn is_looping(&self) -> bool {
        matches!(self.quantifier, Quantifier::AtLeast(_))
    }

    /// Flink's `OPTIONAL` property: `optional` (`?`, `*`) or a count range
    /// starting at 0 (`{0,m}`, which Flink's `times(0, m)` turns into
    /// `{1,m}` plus optional without checking for a greedy element before).
    pub fn is_optional(&self) -> bool {
        self.optional || matches!(self.quantifier, Quantifier::Times { min: 0, .. })
    }

    /// Can this element take more than one event per iteration of its
    /// sequence (LOOPING or TIMES)?
    pub fn is_repeating(&self) -> bool {
        !matches!(self.quantifier, Quantifier::One)
    }

    /// Is this a `not next` / `not followed by` element?
    pub fn is_negation(&self) -> bool {
        matches!(
            self.contiguity,
            Contiguity::NotNext | Contiguity::NotFollowedBy
        )
    }
}

/// What an element matches.
#[derive(Clone, Debug)]
pub enum ElementKind {
    /// One stage.
    Stage(StageId),
    /// A parenthesised sub-sequence.
    Group(Sequence),
    /// Alternatives (`a or (b followed by c)`): a match takes exactly one
    /// of the branches, in place of this element. Two or more branches,
    /// each a non-empty sequence; the element's quantifier and modifiers
    /// apply to the alternation as a whole, as on a group.
    /// `docs/semantics.md` ("Alternation") says how branches are matched.
    Alternation(Vec<Sequence>),
}

/// The connector between an element and the one before it (Flink's
/// consuming strategy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contiguity {
    /// `next`: the very next event must match (Flink STRICT).
    Strict,
    /// `followed by`: skip events that do not match (Flink SKIP_TILL_NEXT).
    Relaxed,
    /// `followed by any`: any event may be skipped (Flink SKIP_TILL_ANY).
    NonDeterministic,
    /// `not next` (Flink NOT_NEXT).
    NotNext,
    /// `not followed by` (Flink NOT_FOLLOW).
    NotFollowedBy,
}

impl Contiguity {
    /// The connector as written in the language.
    pub fn keyword(self) -> &'static str {
        match self {
            Contiguity::Strict => "next",
            Contiguity::Relaxed => "followed by",
            Contiguity::NonDeterministic => "followed by any",
            Contiguity::NotNext => "not next",
            Contiguity::NotFollowedBy => "not followed by",
        }
    }
}

/// Contiguity between the repetitions of a repeating element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum InnerContiguity {
    /// Default: skip events that do not match.
    #[default]
    Relaxed,
    /// `consecutive`: repetitions are strictly contiguous.
    Consecutive,
    /// `combinations`: any event may be skipped between repetitions.
    Combinations,
}

/// How many times an element repeats (after normalisation: `{0,m}` is
/// `Times { min: 1, max: m }` plus `optional`, `*` is `AtLeast(1)` plus
/// `optional`, as in Flink).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantifier {
    /// Exactly once (no quantifier).
    One,
    /// `{n}` / `{n,m}`: Flink `times(min, max)`, `1 <= min <= max`.
    Times {
        /// Least number of repetitions.
        min: u32,
        /// Most number of repetitions.
        max: u32,
    },
    /// `+` / `{n,}`: Flink `oneOrMore` / `timesOrMore(n)`, `n >= 1`.
    AtLeast(u32),
}

/// After-match skip strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SkipStrategy {
    /// `no skip`: every match is emitted.
    #[default]
    NoSkip,
    /// `skip to next`.
    ToNext,
    /// `skip past last event`.
    PastLastEvent,
    /// `skip to first s`.
    ToFirst(StageId),
    /// `skip to last s`.
    ToLast(StageId),
}

/// Which events a stage (or an `until`) accepts.
#[derive(Clone)]
pub enum Condition {
    /// Every event.
    True,
    /// An expression of the language; an event matches when it is `true`.
    Expr(Expr),
    /// A Rust closure from the builder API, for one event type. The NFA
    /// compiler checks that the event type is the one it is compiled for.
    Native(NativeCondition),
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::True => f.write_str("True"),
            Condition::Expr(e) => f.debug_tuple("Expr").field(e).finish(),
            Condition::Native(n) => write!(f, "Native({})", n.description),
        }
    }
}

/// A closure condition, type-erased so that the IR is not generic over the
/// event type. `closure` holds a [`NativeFn`]`<E>` for the event type `E` the
/// closure was written for.
#[derive(Clone)]
pub struct NativeCondition {
    /// The boxed [`NativeFn<E>`].
    pub closure: Arc<dyn Any + Send + Sync>,
    /// Does the closure look at the partial match (iterative condition)?
    pub iterative: bool,
    /// Shown by `explain` (e.g. `closure`).
    pub description: String,
}

/// The shape of a native condition: the candidate event and a view of the
/// events this partial match accepted before it.
pub type NativeFn<E> = Arc<dyn Fn(&E, &dyn StageEvents<E>) -> bool + Send + Sync>;

impl NativeCondition {
    /// A closure condition over events of type `E`; `iterative` when it
    /// looks at the partial match.
    pub fn new<E: 'static>(closure: NativeFn<E>, iterative: bool) -> NativeCondition {
        NativeCondition {
            closure: Arc::new(closure),
            iterative,
            description: "closure".to_string(),
        }
    }

    /// The closure, when it was written for the event type `E`.
    pub fn downcast<E: 'static>(&self) -> Option<&NativeFn<E>> {
        self.closure.downcast_ref::<NativeFn<E>>()
    }
}

/// A partition key computed by a closure, type-erased like
/// [`NativeCondition`]: `closure` holds a [`NativeKeyFn`]`<E>` for the event
/// type `E` it was written for; [`NativeKey::downcast`] gets it back.
///
/// The key of an event is the one [`Value`] the closure returns (a
/// [`Value::List`] for a key of several parts); [`Value::Null`] means the
/// event has no key, like an event without a `partition by` field: it is
/// not offered to the pattern.
///
/// ```
/// use std::sync::Arc;
/// use cepheid_core::pattern::{NativeKey, NativeKeyFn};
/// use cepheid_core::Value;
///
/// struct Login { user: &'static str }
/// let key = NativeKey::new(Arc::new(|e: &Login| Value::from(e.user)) as NativeKeyFn<Login>);
/// let f = key.downcast::<Login>().unwrap();
/// assert_eq!(f(&Login { user: "ann" }), Value::from("ann"));
/// assert!(key.downcast::<String>().is_none());
/// ```
#[derive(Clone)]
pub struct NativeKey {
    /// The boxed [`NativeKeyFn<E>`].
    pub closure: Arc<dyn Any + Send + Sync>,
    /// Shown by `explain` (`closure`).
    pub description: String,
}

impl NativeKey {
    /// Type-erases `f`, described as `closure`.
    pub fn new<E: 'static>(f: NativeKeyFn<E>) -> NativeKey {
        NativeKey {
            closure: Arc::new(f),
            description: "closure".to_string(),
        }
    }

    /// The closure, when it was written for the event type `E`.
    pub fn downcast<E: 'static>(&self) -> Option<&NativeKeyFn<E>> {
        self.closure.downcast_ref::<NativeKeyFn<E>>()
    }
}

impl fmt::Debug for NativeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeKey({})", self.description)
    }
}

/// The shape of a native partition key: the event's key, `Value::Null` for
/// none.
pub type NativeKeyFn<E> = Arc<dyn Fn(&E) -> Value + Send + Sync>;

/// What a native iterative condition can see of its partial match: Flink's
/// `ctx.getEventsForPattern(name)`.
pub trait StageEvents<E> {
    /// Calls `f` on each event already accepted into the named stage, in the
    /// order they were taken. Unknown names see no events.
    fn for_each(&self, stage: &str, f: &mut dyn FnMut(&E));
}

impl Sequence {
    /// Does the sequence hold an alternation, at any depth?
    pub fn has_alternation(&self) -> bool {
        let mut stack = vec![self];
        while let Some(seq) = stack.pop() {
            for e in &seq.elements {
                match &e.kind {
                    ElementKind::Stage(_) => {}
                    ElementKind::Group(inner) => stack.push(inner),
                    ElementKind::Alternation(_) => return true,
                }
            }
        }
        false
    }
}

impl Pattern {
    /// Does the pattern's `match` hold an alternation (`or`)? Only such
    /// patterns' records say which branch a match took.
    pub fn has_alternation(&self) -> bool {
        self.sequence.has_alternation()
    }

    /// A pattern named `name` with these stages and this sequence, and
    /// every option at its default: no key, no window, no skip, no
    /// timeouts, no `select`. Set the others as fields.
    pub fn new(name: impl Into<String>, stages: Vec<Stage>, sequence: Sequence) -> Pattern {
        Pattern {
            name: name.into(),
            doc: None,
            partition_by: Vec::new(),
            partition_by_fn: None,
            within: None,
            skip: SkipStrategy::NoSkip,
            emit_timeouts: false,
            stages,
            sequence,
            select: Vec::new(),
            attributes: Attributes::default(),
            shadow: false,
            writes: Vec::new(),
            reads: Vec::new(),
            declarations: None,
            span: Span::default(),
        }
    }

    /// Does the pattern read or write a reference list or an indicator?
    pub fn uses_lookup(&self) -> bool {
        !self.writes.is_empty()
            || self.stages.iter().any(|s| match &s.condition {
                Condition::Expr(e) => e.reads_lookup(),
                _ => false,
            })
            || self.select.iter().any(|s| s.expr.reads_lookup())
    }

    /// Looks a stage up by name.
    pub fn stage_id(&self, name: &str) -> Option<StageId> {
        self.stages
            .iter()
            .position(|s| s.name == name)
            .map(|i| StageId(i as u16))
    }

    /// The stage with this id.
    pub fn stage(&self, id: StageId) -> &Stage {
        &self.stages[id.index()]
    }
}
