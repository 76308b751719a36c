//! The Rust builder API: makes a typed [`Pattern`]`<E>` (the same IR as the
//! language, underneath) from code, in Flink's style
//! (`Pattern::<Login>::begin("a").where_fn(..).followed_by("b")`).
//!
//! Methods that describe an element (`times`, `optional`, `until_fn`,
//! `within_prev`, conditions, ...) apply to the element added last. Misuse
//! that the IR cannot express (a quantifier applied twice, `consecutive`
//! after `allow_combinations`, a pattern-level option on a group, a
//! duration that is not whole milliseconds) is recorded and reported by
//! [`PatternBuilder::build`] together with every rule [`validate`] checks;
//! the builder never panics.
//!
//! Decisions (after Flink's `Pattern`/`Quantifier` where it has one):
//! - Several conditions on one stage are joined with `and`, closures with
//!   closures and expressions with expressions (a closure and an
//!   expression on one stage is reported at build).
//! - `times_range(0, m)` is `times_range(1, m)` plus `optional`, and
//!   `times_or_more(0)` is `one_or_more()` plus `optional`, as in Flink and
//!   the language (`{0,m}`, `*`); `optional` after them is then "applied
//!   twice", as in Flink.
//! - The pattern is named `unnamed` unless [`PatternBuilder::name`] says
//!   otherwise. An engine numbers unnamed patterns: when it (or the set
//!   being added) already has the name, an unnamed pattern runs as
//!   `unnamed_2`, `unnamed_3`, ... (the first free), so several can be
//!   added; a name given by `name`, or by `.cep` text, is never changed
//!   (twice the same is an error at `add`).
//! - `build` checks the field names the pattern reads (expressions,
//!   `select`, `partition_by`) against the event type's
//!   ([`Event::Fields`](crate::Event::Fields), the derive's resolver): a
//!   misspelt name fails there, with the closest field, not later at
//!   `Engine::add`. So `build` needs `E: Event`; the rest of the builder
//!   does not.
//! - A pattern is partitioned by fields ([`PatternBuilder::partition_by`])
//!   or by a closure ([`PatternBuilder::partition_by_fn`]), not both
//!   ([`validate`] reports it): the closure can return the fields' values
//!   itself.
//!
//! See [`PatternBuilder`] for an example.

use std::sync::Arc;
use std::time::Duration;

mod fields;
mod lower;
pub(crate) mod typed;

use crate::error::{Error, ErrorKind};
use crate::event::FieldPath;
use crate::expr::SelectItem;
use crate::pattern::{
    self as ir, validate, Contiguity, InnerContiguity, NativeFn, NativeKey, NativeKeyFn,
    PatternError, PatternErrorKind, Quantifier, SkipStrategy, Stage, StageEvents,
};
use crate::primitives::{DurationMs, Span, StageId};
use crate::record::Record;
use crate::value::Value;
use lower::{collect_names, Flattener};
use typed::Pattern;

/// A pattern under construction, for events of type `E`: methods add
/// elements, describe the element added last, or set pattern-level options;
/// [`PatternBuilder::build`] checks every rule and makes the
/// [`Pattern`]`<E>`. Start one with [`Pattern::begin`].
///
/// ```
/// use std::time::Duration;
/// use cepheid_core::pattern::Quantifier;
/// use cepheid_engine::{Event, Pattern};
///
/// #[derive(Event)]
/// struct Login { user: i64, ok: bool }
///
/// let pattern = Pattern::<Login>::begin("fail")
///     .where_fn(|e| !e.ok)
///     .times(3)
///     .consecutive()
///     .followed_by("success")
///     .where_fn(|e| e.ok)
///     .within(Duration::from_secs(10))
///     .partition_by("user")
///     .name("brute_force")
///     .build()?;
/// let ir = pattern.ir();
/// assert_eq!(ir.stages.len(), 2);
/// assert_eq!(ir.sequence.elements[0].quantifier, Quantifier::Times { min: 3, max: 3 });
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
///
/// Conditions and `select` entries can also be written in the pattern
/// language; `build` parses them and checks every field name they read
/// against the event type (for a [`Record`], any name goes):
///
/// ```
/// use std::time::Duration;
/// use cepheid_engine::{ErrorKind, Pattern, Record};
///
/// let pattern = Pattern::<Record>::begin("low")
///     .where_expr("type == \"quote\"")
///     .followed_by("high")
///     .where_expr("type == \"quote\" and price > low.price * 1.1")
///     .select("gain", "high.price - low.price")
///     .within(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(pattern.ir().select[0].name, "gain");
/// let err = Pattern::<Record>::begin("a").where_expr("type ==").build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Pattern);
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
///
/// Event time counts whole milliseconds; a duration with a smaller part is
/// an error, not rounded:
///
/// ```
/// use std::time::Duration;
/// use cepheid_engine::{Pattern, Record};
///
/// let err = Pattern::<Record>::begin("a")
///     .within(Duration::from_micros(1_500))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "`within` of 1.5ms: event time counts whole milliseconds");
/// ```
pub struct PatternBuilder<E = Record> {
    name: Option<String>,
    doc: Option<String>,
    partition_by: Vec<FieldPath>,
    partition_by_fn: Option<NativeKeyFn<E>>,
    within: Option<DurationMs>,
    skip: Option<SkipChoice>,
    emit_timeouts: bool,
    select: Vec<(String, String)>,
    elements: Vec<Draft<E>>,
    /// Misuse found while building, reported by `build`.
    misuse: Vec<String>,
    /// Pattern-level options used (an error when used as a group).
    pattern_options: Vec<&'static str>,
}

/// The skip strategy, possibly naming its target stage.
#[derive(Clone, Debug)]
enum SkipChoice {
    Strategy(SkipStrategy),
    ToFirst(String),
    ToLast(String),
}

/// An element under construction.
struct Draft<E> {
    kind: DraftKind<E>,
    contiguity: Contiguity,
    quantifier: Option<Quantifier>,
    optional: bool,
    greedy: bool,
    inner: InnerContiguity,
    until: Option<CondDraft<E>>,
    within: Option<DurationMs>,
}

enum DraftKind<E> {
    Stage {
        name: String,
        condition: Option<CondDraft<E>>,
    },
    Group(Box<PatternBuilder<E>>),
}

/// A condition under construction.
enum CondDraft<E> {
    /// Expression texts, and-ed; parsed at build, when every stage name is
    /// known.
    Expr(Vec<String>),
    /// A closure (several closures on one stage are joined into one).
    Native {
        f: NativeFn<E>,
        iterative: bool,
        description: String,
    },
}

// `Clone` by hand: derived impls would ask for `E: Clone`, and closures over
// `E` are shared (`Arc`), not cloned.
impl<E> Clone for PatternBuilder<E> {
    fn clone(&self) -> Self {
        PatternBuilder {
            name: self.name.clone(),
            doc: self.doc.clone(),
            partition_by: self.partition_by.clone(),
            partition_by_fn: self.partition_by_fn.clone(),
            within: self.within,
            skip: self.skip.clone(),
            emit_timeouts: self.emit_timeouts,
            select: self.select.clone(),
            elements: self.elements.clone(),
            misuse: self.misuse.clone(),
            pattern_options: self.pattern_options.clone(),
        }
    }
}

impl<E> Clone for Draft<E> {
    fn clone(&self) -> Self {
        Draft {
            kind: self.kind.clone(),
            contiguity: self.contiguity,
            quantifier: self.quantifier,
            optional: self.optional,
            greedy: self.greedy,
            inner: self.inner,
            until: self.until.clone(),
            within: self.within,
        }
    }
}

impl<E> Clone for DraftKind<E> {
    fn clone(&self) -> Self {
        match self {
            DraftKind::Stage { name, condition } => DraftKind::Stage {
                name: name.clone(),
                condition: condition.clone(),
            },
            DraftKind::Group(group) => DraftKind::Group(group.clone()),
        }
    }
}

impl<E> Clone for CondDraft<E> {
    fn clone(&self) -> Self {
        match self {
            CondDraft::Expr(texts) => CondDraft::Expr(texts.clone()),
            CondDraft::Native {
                f,
                iterative,
                description,
            } => CondDraft::Native {
                f: Arc::clone(f),
                iterative: *iterative,
                description: description.clone(),
            },
        }
    }
}

impl<E> DraftKind<E> {
    fn stage(name: String) -> DraftKind<E> {
        DraftKind::Stage {
            name,
            condition: None,
        }
    }
}

impl<E> Draft<E> {
    fn new(kind: DraftKind<E>) -> Draft<E> {
        Draft {
            kind,
            contiguity: Contiguity::Relaxed,
            quantifier: None,
            optional: false,
            greedy: false,
            inner: InnerContiguity::Relaxed,
            until: None,
            within: None,
        }
    }

    /// How messages name this element.
    fn describe(&self) -> String {
        match &self.kind {
            DraftKind::Stage { name, .. } => format!("stage `{name}`"),
            DraftKind::Group(_) => "a group".to_string(),
        }
    }
}

impl<E: 'static> CondDraft<E> {
    fn native(f: NativeFn<E>, iterative: bool) -> CondDraft<E> {
        let description = if iterative {
            "iterative closure"
        } else {
            "closure"
        };
        CondDraft::Native {
            f,
            iterative,
            description: description.to_string(),
        }
    }

    /// Joins `next` onto this condition with `and`.
    fn and(self, next: CondDraft<E>) -> Result<CondDraft<E>, String> {
        match (self, next) {
            (CondDraft::Expr(mut a), CondDraft::Expr(b)) => {
                a.extend(b);
                Ok(CondDraft::Expr(a))
            }
            (
                CondDraft::Native {
                    f: first,
                    iterative: a_iter,
                    description: a_text,
                },
                CondDraft::Native {
                    f: second,
                    iterative: b_iter,
                    description: b_text,
                },
            ) => Ok(CondDraft::Native {
                f: Arc::new(move |e: &E, ctx: &dyn StageEvents<E>| first(e, ctx) && second(e, ctx)),
                iterative: a_iter || b_iter,
                description: format!("{a_text} and {b_text}"),
            }),
            _ => Err(
                "it mixes expression and closure conditions, which cannot be combined".to_string(),
            ),
        }
    }
}

/// `d` in milliseconds of event time, for the option `what`; an error
/// message when `d` has a part smaller than a millisecond or more
/// milliseconds than an `i64` holds (the value is then the nearest one, so
/// that the other checks still run).
fn millis(what: &str, d: Duration) -> (DurationMs, Option<String>) {
    let whole = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        let up = DurationMs::try_from(whole + 1).unwrap_or(DurationMs::MAX);
        let message = format!("`{what}` of {d:?}: event time counts whole milliseconds");
        return (up, Some(message));
    }
    match DurationMs::try_from(whole) {
        Ok(ms) => (ms, None),
        Err(_) => {
            let message = format!(
                "`{what}` of {d:?}: event time counts whole milliseconds, at most {} of them",
                DurationMs::MAX
            );
            (DurationMs::MAX, Some(message))
        }
    }
}

impl<E: 'static> PatternBuilder<E> {
    /// Starts a builder whose first element is the stage `name` (see
    /// [`Pattern::begin`]).
    fn begin(name: String) -> PatternBuilder<E> {
        PatternBuilder::new(Draft::new(DraftKind::stage(name)))
    }

    /// Starts a builder whose first element is `group` (see
    /// [`Pattern::begin_group`]).
    fn begin_group(group: PatternBuilder<E>) -> PatternBuilder<E> {
        PatternBuilder::new(Draft::new(DraftKind::Group(Box::new(group))))
    }

    fn new(first: Draft<E>) -> PatternBuilder<E> {
        PatternBuilder {
            name: None,
            doc: None,
            partition_by: Vec::new(),
            partition_by_fn: None,
            within: None,
            skip: None,
            emit_timeouts: false,
            select: Vec::new(),
            elements: vec![first],
            misuse: Vec::new(),
            pattern_options: Vec::new(),
        }
    }

    fn push(mut self, contiguity: Contiguity, kind: DraftKind<E>) -> PatternBuilder<E> {
        let mut draft = Draft::new(kind);
        draft.contiguity = contiguity;
        self.elements.push(draft);
        self
    }

    /// Applies `f` to the element added last.
    fn last(mut self, f: impl FnOnce(&mut Draft<E>) -> Result<(), String>) -> PatternBuilder<E> {
        if let Some(draft) = self.elements.last_mut() {
            if let Err(message) = f(draft) {
                let what = draft.describe();
                self.misuse.push(format!("{what}: {message}"));
            }
        }
        self
    }

    fn pattern_option(mut self, option: &'static str) -> PatternBuilder<E> {
        if !self.pattern_options.contains(&option) {
            self.pattern_options.push(option);
        }
        self
    }

    /// Adds stage `name`, strictly after the previous element (`next`).
    pub fn next(self, name: impl Into<String>) -> PatternBuilder<E> {
        self.push(Contiguity::Strict, DraftKind::stage(name.into()))
    }

    /// Adds stage `name`, relaxed after the previous element (`followed by`).
    pub fn followed_by(self, name: impl Into<String>) -> PatternBuilder<E> {
        self.push(Contiguity::Relaxed, DraftKind::stage(name.into()))
    }

    /// Adds stage `name`, non-deterministically relaxed (`followed by any`).
    pub fn followed_by_any(self, name: impl Into<String>) -> PatternBuilder<E> {
        self.push(Contiguity::NonDeterministic, DraftKind::stage(name.into()))
    }

    /// Adds stage `name` that the very next event must not match (`not next`).
    pub fn not_next(self, name: impl Into<String>) -> PatternBuilder<E> {
        self.push(Contiguity::NotNext, DraftKind::stage(name.into()))
    }

    /// Adds stage `name` that no event may match before the next element
    /// (`not followed by`).
    pub fn not_followed_by(self, name: impl Into<String>) -> PatternBuilder<E> {
        self.push(Contiguity::NotFollowedBy, DraftKind::stage(name.into()))
    }

    /// Adds a group, strictly after the previous element.
    pub fn next_group(self, group: PatternBuilder<E>) -> PatternBuilder<E> {
        self.push(Contiguity::Strict, DraftKind::Group(Box::new(group)))
    }

    /// Adds a group, relaxed after the previous element.
    pub fn followed_by_group(self, group: PatternBuilder<E>) -> PatternBuilder<E> {
        self.push(Contiguity::Relaxed, DraftKind::Group(Box::new(group)))
    }

    /// Adds a group, non-deterministically relaxed after the previous element.
    pub fn followed_by_any_group(self, group: PatternBuilder<E>) -> PatternBuilder<E> {
        self.push(
            Contiguity::NonDeterministic,
            DraftKind::Group(Box::new(group)),
        )
    }

    fn add_condition(self, condition: CondDraft<E>) -> PatternBuilder<E> {
        self.last(|draft| match &mut draft.kind {
            DraftKind::Group(_) => {
                Err("a group has no condition of its own; give it to its stages".to_string())
            }
            DraftKind::Stage {
                condition: slot, ..
            } => {
                let joined = match slot.take() {
                    None => condition,
                    Some(old) => old.and(condition)?,
                };
                *slot = Some(joined);
                Ok(())
            }
        })
    }

    /// Adds a condition on the last stage in the pattern language
    /// (`"type == 0 and price > a.price"`); it is parsed by
    /// [`build`](PatternBuilder::build), where syntax errors are reported,
    /// and its fields are resolved against `E` when the pattern is compiled.
    pub fn where_expr(self, expr: impl Into<String>) -> PatternBuilder<E> {
        self.add_condition(CondDraft::Expr(vec![expr.into()]))
    }

    /// Adds a condition on the last stage: a closure over the candidate
    /// event (Flink's `SimpleCondition`).
    pub fn where_fn<F>(self, f: F) -> PatternBuilder<E>
    where
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(move |e: &E, _: &dyn StageEvents<E>| f(e));
        self.add_condition(CondDraft::native(native, false))
    }

    /// Adds a condition on the last stage: a closure over the candidate
    /// event and the events the partial match accepted before it (Flink's
    /// `IterativeCondition`).
    ///
    /// ```
    /// use cepheid_core::pattern::StageEvents;
    /// use cepheid_engine::{Event, Pattern};
    ///
    /// #[derive(Event)]
    /// struct Quote { price: i64 }
    ///
    /// // `b`'s price is above the sum of the prices `a` took.
    /// let pattern = Pattern::<Quote>::begin("a")
    ///     .one_or_more()
    ///     .followed_by("b")
    ///     .where_iter(|e, earlier: &dyn StageEvents<Quote>| {
    ///         let mut sum = 0;
    ///         earlier.for_each("a", &mut |a| sum += a.price);
    ///         e.price > sum
    ///     })
    ///     .build()?;
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn where_iter<F>(self, f: F) -> PatternBuilder<E>
    where
        F: Fn(&E, &dyn StageEvents<E>) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(f);
        self.add_condition(CondDraft::native(native, true))
    }

    /// `until`: the last (looping) element stops accepting once an event
    /// satisfies the closure.
    pub fn until_fn<F>(self, f: F) -> PatternBuilder<E>
    where
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(move |e: &E, _: &dyn StageEvents<E>| f(e));
        self.until(CondDraft::native(native, false))
    }

    /// `until` in the pattern language: the last (looping) element stops
    /// accepting once an event satisfies `expr`.
    pub fn until_expr(self, expr: impl Into<String>) -> PatternBuilder<E> {
        self.until(CondDraft::Expr(vec![expr.into()]))
    }

    fn until(self, condition: CondDraft<E>) -> PatternBuilder<E> {
        self.last(|draft| {
            if draft.until.is_some() {
                return Err("`until` is given twice".to_string());
            }
            draft.until = Some(condition);
            Ok(())
        })
    }

    fn quantify(self, quantifier: Quantifier, optional: bool, what: &str) -> PatternBuilder<E> {
        self.last(|draft| {
            if let Some(old) = draft.quantifier {
                return Err(format!(
                    "a quantifier is applied twice (`{what}` after {old:?})"
                ));
            }
            draft.quantifier = Some(quantifier);
            draft.optional |= optional;
            Ok(())
        })
    }

    /// The last element matches exactly `n` times (`{n}`).
    pub fn times(self, n: u32) -> PatternBuilder<E> {
        self.quantify(Quantifier::Times { min: n, max: n }, false, "times")
    }

    /// The last element matches `min` to `max` times (`{min,max}`; a `min`
    /// of 0 makes it optional).
    pub fn times_range(self, min: u32, max: u32) -> PatternBuilder<E> {
        // `{0,m}` stays as written (`Element::is_optional`), as in the
        // language.
        self.quantify(Quantifier::Times { min, max }, false, "times_range")
    }

    /// The last element matches one or more times (`+`).
    pub fn one_or_more(self) -> PatternBuilder<E> {
        self.quantify(Quantifier::AtLeast(1), false, "one_or_more")
    }

    /// The last element matches `n` or more times (`{n,}`; 0 makes it `*`).
    pub fn times_or_more(self, n: u32) -> PatternBuilder<E> {
        self.quantify(Quantifier::AtLeast(n.max(1)), n == 0, "times_or_more")
    }

    /// The last element may be skipped entirely.
    pub fn optional(self) -> PatternBuilder<E> {
        self.last(|draft| {
            let from_zero = matches!(draft.quantifier, Some(Quantifier::Times { min: 0, .. }));
            if draft.optional || from_zero {
                return Err("`optional` is applied twice".to_string());
            }
            draft.optional = true;
            Ok(())
        })
    }

    /// The last (looping) element takes as many events as it can.
    pub fn greedy(self) -> PatternBuilder<E> {
        self.last(|draft| {
            draft.greedy = true;
            Ok(())
        })
    }

    fn inner(self, inner: InnerContiguity) -> PatternBuilder<E> {
        self.last(|draft| {
            if draft.inner != InnerContiguity::Relaxed && draft.inner != inner {
                return Err(
                    "`consecutive` and `allow_combinations` cannot be used together".to_string(),
                );
            }
            draft.inner = inner;
            Ok(())
        })
    }

    /// Repetitions of the last element must be strictly contiguous.
    pub fn consecutive(self) -> PatternBuilder<E> {
        self.inner(InnerContiguity::Consecutive)
    }

    /// Repetitions of the last element are non-deterministically relaxed.
    pub fn allow_combinations(self) -> PatternBuilder<E> {
        self.inner(InnerContiguity::Combinations)
    }

    /// Each event the last element takes comes less than `window` after the
    /// previous event of the match (Flink's `PREVIOUS_AND_CURRENT`). Event
    /// time counts whole milliseconds: a smaller part is an error at build.
    /// A zero window is no window, as in Flink (in a `.cep` file,
    /// `within 0ms` is an error: `docs/flink.md`).
    pub fn within_prev(self, window: Duration) -> PatternBuilder<E> {
        self.last(|draft| {
            let (ms, error) = millis("within_prev", window);
            draft.within = Some(ms);
            error.map_or(Ok(()), Err)
        })
    }

    /// The last event of a match comes less than `window` after its first.
    /// Event time counts whole milliseconds: a smaller part is an error at
    /// build. A zero window disables windowing, as Flink's `within` does
    /// (partial matches never expire); in a `.cep` file `within 0ms` is an
    /// error instead (`docs/flink.md`, `docs/language.md` §7.2).
    pub fn within(mut self, window: Duration) -> PatternBuilder<E> {
        let (ms, error) = millis("within", window);
        self.within = Some(ms);
        self.misuse.extend(error);
        self.pattern_option("within")
    }

    /// The after-match skip strategy.
    pub fn skip(mut self, strategy: SkipStrategy) -> PatternBuilder<E> {
        self.skip = Some(SkipChoice::Strategy(strategy));
        self.pattern_option("skip")
    }

    /// `skip to first s`, naming the stage.
    pub fn skip_to_first(mut self, stage: impl Into<String>) -> PatternBuilder<E> {
        self.skip = Some(SkipChoice::ToFirst(stage.into()));
        self.pattern_option("skip")
    }

    /// `skip to last s`, naming the stage.
    pub fn skip_to_last(mut self, stage: impl Into<String>) -> PatternBuilder<E> {
        self.skip = Some(SkipChoice::ToLast(stage.into()));
        self.pattern_option("skip")
    }

    /// Adds a `partition by` field (`user.id` is a nested field), resolved
    /// against `E` when the pattern is compiled. Several calls make a key of
    /// several fields; an event without one of them is not offered to the
    /// pattern.
    pub fn partition_by(mut self, path: &str) -> PatternBuilder<E> {
        self.partition_by.push(FieldPath::parse(path));
        self.pattern_option("partition_by")
    }

    /// Partitions by a key that a closure computes from each event: matches
    /// are found among the events of one key, as with
    /// [`partition_by`](PatternBuilder::partition_by).
    ///
    /// The key is one [`Value`]: anything `Into<Value>` (`&str`, `String`,
    /// integers, `bool`, ...). An `Option` that is `None` (or
    /// [`Value::Null`]) means the event has no key, like an event without a
    /// `partition by` field: it is not offered to the pattern. For a key of
    /// several parts return a [`Value::List`]. A pattern is partitioned by
    /// fields or by a closure, not both, and `partition_by_fn` is given at
    /// most once; `build` reports either.
    ///
    /// ```
    /// use cepheid_engine::{Event, Pattern, Value};
    ///
    /// #[derive(Event)]
    /// struct Login { user: String, region: u32 }
    ///
    /// let by_user = Pattern::<Login>::begin("a")
    ///     .partition_by_fn(|e| e.user.clone())
    ///     .build()?;
    /// let by_user_and_region = Pattern::<Login>::begin("a")
    ///     .partition_by_fn(|e| Value::List([e.user.as_str().into(), e.region.into()].into()))
    ///     .build()?;
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    ///
    /// The key closure takes `&E` too:
    ///
    /// ```compile_fail,E0631
    /// use cepheid_engine::Pattern;
    ///
    /// struct Login { user: String }
    /// struct Order { customer: String }
    ///
    /// let pattern = Pattern::<Login>::begin("a").partition_by_fn(|o: &Order| o.customer.clone());
    /// ```
    pub fn partition_by_fn<K, F>(mut self, f: F) -> PatternBuilder<E>
    where
        K: Into<Value>,
        F: Fn(&E) -> K + Send + Sync + 'static,
    {
        if self.partition_by_fn.is_some() {
            self.misuse
                .push("`partition_by_fn` is given twice".to_string());
        }
        self.partition_by_fn = Some(Arc::new(move |e: &E| f(e).into()));
        self.pattern_option("partition_by_fn")
    }

    /// Emit partial matches that expire by the window as timeouts.
    pub fn emit_timeouts(mut self) -> PatternBuilder<E> {
        self.emit_timeouts = true;
        self.pattern_option("emit_timeouts")
    }

    /// Adds a `select` entry: output field `name` computed by `expr` (in
    /// the pattern language, over stage references and aggregates) once
    /// per match.
    pub fn select(mut self, name: impl Into<String>, expr: impl Into<String>) -> PatternBuilder<E> {
        self.select.push((name.into(), expr.into()));
        self.pattern_option("select")
    }

    /// The pattern's documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> PatternBuilder<E> {
        self.doc = Some(doc.into());
        self.pattern_option("doc")
    }

    /// The pattern's name (default `unnamed`, numbered by the engine when
    /// taken: `unnamed_2`, ...).
    pub fn name(mut self, name: impl Into<String>) -> PatternBuilder<E> {
        self.name = Some(name.into());
        self.pattern_option("name")
    }

    /// Makes the pattern, checking every static rule. All problems are
    /// returned at once, as one [`Error`] (see [`Error::errors`]) of kind
    /// [`ErrorKind::Pattern`] ([`ErrorKind::Limit`] for a limit of the
    /// language, such as the number of stages), each with its own message.
    ///
    /// Then the fields the pattern reads by name (in
    /// [`where_expr`](PatternBuilder::where_expr),
    /// [`until_expr`](PatternBuilder::until_expr),
    /// [`select`](PatternBuilder::select) and
    /// [`partition_by`](PatternBuilder::partition_by)) are checked against
    /// `E`: each one `E` does not have is an [`ErrorKind::Field`] error
    /// naming the pattern, where it reads the field, the field, and the
    /// closest field `E` has. For [`Record`] (any field) there is nothing to
    /// check.
    ///
    /// ```
    /// use cepheid_engine::{ErrorKind, Event, Pattern};
    /// #[derive(Event)]
    /// struct Payment { amount: i64, user: String }
    ///
    /// let err = Pattern::<Payment>::begin("big")
    ///     .where_expr("amout > 5")
    ///     .name("big_payment")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Field);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "pattern `big_payment`, the condition of stage `big`: `Payment` has no field `amout`; \
    ///      its fields are amount, user (did you mean `amount`?)"
    /// );
    /// ```
    pub fn build(self) -> Result<Pattern<E>, Error>
    where
        E: crate::Event,
    {
        let named = self.name.is_some();
        let ir = self
            .build_ir()
            .map_err(|errors| Error::many(errors.into_iter().map(to_error).collect()))?;
        let unknown = fields::unknown_fields::<E>(&ir);
        if !unknown.is_empty() {
            return Err(Error::many(unknown));
        }
        Ok(Pattern::from_checked_ir(ir, named))
    }

    /// [`build`](PatternBuilder::build), with each problem as a
    /// [`PatternError`] (which rule it breaks).
    fn build_ir(self) -> Result<ir::Pattern, Vec<PatternError>> {
        let mut flat = Flattener::default();
        collect_names(&self.elements, 0, &mut flat.names);
        let sequence = flat.sequence(&self.elements, 0);
        let select = self
            .select
            .iter()
            .map(|(name, text)| SelectItem {
                name: name.clone(),
                expr: flat.lower_text(&format!("select `{name}`"), text),
                span: Span::default(),
            })
            .collect();
        let mut errors: Vec<PatternError> = self
            .misuse
            .iter()
            .chain(flat.misuse.iter())
            .map(|m| misuse(m.clone()))
            .chain(flat.expr_errors)
            .collect();
        let skip = match self.skip {
            None => SkipStrategy::NoSkip,
            Some(SkipChoice::Strategy(s)) => s,
            Some(SkipChoice::ToFirst(name)) | Some(SkipChoice::ToLast(name))
                if stage_named(&flat.stages, &name).is_none() =>
            {
                errors.push(PatternError {
                    kind: PatternErrorKind::InvalidSkipTarget,
                    message: format!("the skip target `{name}` is not a stage of the pattern"),
                    span: Span::default(),
                    labels: Vec::new(),
                });
                SkipStrategy::NoSkip
            }
            Some(SkipChoice::ToFirst(name)) => {
                SkipStrategy::ToFirst(stage_named(&flat.stages, &name).unwrap_or(StageId(0)))
            }
            Some(SkipChoice::ToLast(name)) => {
                SkipStrategy::ToLast(stage_named(&flat.stages, &name).unwrap_or(StageId(0)))
            }
        };
        let pattern = ir::Pattern {
            name: self.name.unwrap_or_else(|| "unnamed".to_string()),
            doc: self.doc,
            partition_by: self.partition_by,
            partition_by_fn: self.partition_by_fn.map(NativeKey::new),
            // (a zero window is no window, as in Flink: the IR has none,
            // and its text no `within 0ms`)
            within: self.within.filter(|w| *w > 0),
            skip,
            emit_timeouts: self.emit_timeouts,
            stages: flat.stages,
            sequence,
            select,
            attributes: Default::default(),
            shadow: false,
            writes: Vec::new(),
            reads: Vec::new(),
            declarations: None,
            span: Span::default(),
        };
        errors.extend(validate(&pattern));
        if errors.is_empty() {
            Ok(pattern)
        } else {
            Err(errors)
        }
    }
}

/// The crate error for one broken rule (the builder has no locations).
fn to_error(e: PatternError) -> Error {
    let kind = match e.kind {
        PatternErrorKind::LimitExceeded => ErrorKind::Limit,
        _ => ErrorKind::Pattern,
    };
    Error::new(kind, e.message)
}

fn stage_named(stages: &[Stage], name: &str) -> Option<StageId> {
    stages
        .iter()
        .position(|s| s.name == name)
        .and_then(|i| u16::try_from(i).ok())
        .map(StageId)
}

fn misuse(message: String) -> PatternError {
    PatternError {
        kind: PatternErrorKind::BuilderMisuse,
        message,
        span: Span::default(),
        labels: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
