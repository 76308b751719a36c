//! The Rust builder API: makes the same [`Pattern`] IR as the language,
//! from code, in Flink's style (`begin("a").where_fn(..).followed_by("b")`).
//!
//! Methods that describe an element (`times`, `optional`, `until_fn`,
//! `within_prev`, conditions, ...) apply to the element added last. Misuse
//! that the IR cannot express (a quantifier applied twice, `consecutive`
//! after `allow_combinations`, a pattern-level option on a group) is
//! recorded and reported by [`PatternBuilder::build`] together with every
//! rule [`validate`] checks; the builder never panics.
//!
//! Decisions (after Flink's `Pattern`/`Quantifier` where it has one):
//! - Several conditions on one stage are joined with `and`. Closures of one
//!   event type combine; a closure and a closure of another event type do
//!   not (reported at build).
//! - `times_range(0, m)` is `times_range(1, m)` plus `optional`, and
//!   `times_or_more(0)` is `one_or_more()` plus `optional`, as in Flink and
//!   the language (`{0,m}`, `*`); `optional` after them is then "applied
//!   twice", as in Flink.
//! - The pattern is named `unnamed` unless [`PatternBuilder::name`] says
//!   otherwise.
//!
//! See [`PatternBuilder`] for an example.

use std::sync::Arc;

mod lower;

use super::ir::{
    Contiguity, DurationMs, InnerContiguity, NativeCondition, NativeFn, Pattern, Quantifier,
    SelectItem, SkipStrategy, Stage, StageEvents, StageId,
};
use super::validate::{validate, PatternError, PatternErrorKind};
use crate::event::FieldPath;
use crate::span::Span;
use lower::{collect_names, native_draft, Flattener};

impl Pattern {
    /// Starts a pattern whose first element is the stage `name`.
    pub fn begin(name: impl Into<String>) -> PatternBuilder {
        PatternBuilder::new(Draft::new(DraftKind::stage(name.into())))
    }

    /// Starts a pattern whose first element is the group `group`.
    pub fn begin_group(group: PatternBuilder) -> PatternBuilder {
        PatternBuilder::new(Draft::new(DraftKind::Group(Box::new(group))))
    }
}

/// A pattern under construction: methods add elements, describe the
/// element added last, or set pattern-level options;
/// [`PatternBuilder::build`] checks every rule and makes the [`Pattern`].
///
/// ```
/// use cepheid::pattern::{Pattern, Quantifier};
///
/// struct Login { user: i64, ok: bool }
///
/// let pattern = Pattern::begin("fail")
///     .where_fn(|e: &Login| !e.ok)
///     .times(3)
///     .consecutive()
///     .followed_by("success")
///     .where_fn(|e: &Login| e.ok)
///     .within(10_000)
///     .partition_by("user")
///     .name("brute_force")
///     .build()
///     .unwrap();
/// assert_eq!(pattern.stages.len(), 2);
/// assert_eq!(pattern.sequence.elements[0].quantifier, Quantifier::Times { min: 3, max: 3 });
/// ```
///
/// Conditions and `select` entries can also be written in the pattern
/// language; they are parsed by `build`:
///
/// ```
/// use cepheid::pattern::Pattern;
///
/// let pattern = Pattern::begin("low")
///     .where_expr("type == \"quote\"")
///     .followed_by("high")
///     .where_expr("type == \"quote\" and price > low.price * 1.1")
///     .select("gain", "high.price - low.price")
///     .within(60_000)
///     .build()
///     .unwrap();
/// assert_eq!(pattern.select[0].name, "gain");
/// assert!(Pattern::begin("a").where_expr("type ==").build().is_err());
/// ```
#[derive(Clone)]
pub struct PatternBuilder {
    name: Option<String>,
    doc: Option<String>,
    partition_by: Vec<FieldPath>,
    within: Option<DurationMs>,
    skip: Option<SkipChoice>,
    emit_timeouts: bool,
    select: Vec<(String, String)>,
    elements: Vec<Draft>,
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
#[derive(Clone)]
struct Draft {
    kind: DraftKind,
    contiguity: Contiguity,
    quantifier: Option<Quantifier>,
    optional: bool,
    greedy: bool,
    inner: InnerContiguity,
    until: Option<CondDraft>,
    within: Option<DurationMs>,
}

#[derive(Clone)]
enum DraftKind {
    Stage {
        name: String,
        condition: Option<CondDraft>,
    },
    Group(Box<PatternBuilder>),
}

impl DraftKind {
    fn stage(name: String) -> DraftKind {
        DraftKind::Stage {
            name,
            condition: None,
        }
    }
}

/// A condition under construction.
#[derive(Clone)]
enum CondDraft {
    /// Expression texts, and-ed; parsed at build, when every stage name is
    /// known.
    Expr(Vec<String>),
    /// A closure, with the function that `and`s it with another closure of
    /// the same event type.
    Native(NativeCondition, AndFn),
}

/// Joins two type-erased closures of one event type.
type AndFn = fn(&NativeCondition, &NativeCondition) -> Option<NativeCondition>;

impl Draft {
    fn new(kind: DraftKind) -> Draft {
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

/// Joins `next` onto an existing condition with `and`.
fn combine(old: CondDraft, next: CondDraft) -> Result<CondDraft, String> {
    match (old, next) {
        (CondDraft::Expr(mut a), CondDraft::Expr(b)) => {
            a.extend(b);
            Ok(CondDraft::Expr(a))
        }
        (CondDraft::Native(a, and), CondDraft::Native(b, _)) => {
            let joined = and(&a, &b).ok_or_else(|| {
                "its conditions are closures over different event types, which cannot be \
                 combined"
                    .to_string()
            })?;
            Ok(CondDraft::Native(joined, and))
        }
        _ => {
            Err("it mixes expression and closure conditions, which cannot be combined".to_string())
        }
    }
}

impl PatternBuilder {
    fn new(first: Draft) -> PatternBuilder {
        PatternBuilder {
            name: None,
            doc: None,
            partition_by: Vec::new(),
            within: None,
            skip: None,
            emit_timeouts: false,
            select: Vec::new(),
            elements: vec![first],
            misuse: Vec::new(),
            pattern_options: Vec::new(),
        }
    }

    fn push(mut self, contiguity: Contiguity, kind: DraftKind) -> PatternBuilder {
        let mut draft = Draft::new(kind);
        draft.contiguity = contiguity;
        self.elements.push(draft);
        self
    }

    /// Applies `f` to the element added last.
    fn last(mut self, f: impl FnOnce(&mut Draft) -> Result<(), String>) -> PatternBuilder {
        if let Some(draft) = self.elements.last_mut() {
            if let Err(message) = f(draft) {
                let what = draft.describe();
                self.misuse.push(format!("{what}: {message}"));
            }
        }
        self
    }

    fn pattern_option(mut self, option: &'static str) -> PatternBuilder {
        if !self.pattern_options.contains(&option) {
            self.pattern_options.push(option);
        }
        self
    }

    /// Adds stage `name`, strictly after the previous element (`next`).
    pub fn next(self, name: impl Into<String>) -> PatternBuilder {
        self.push(Contiguity::Strict, DraftKind::stage(name.into()))
    }

    /// Adds stage `name`, relaxed after the previous element (`followed by`).
    pub fn followed_by(self, name: impl Into<String>) -> PatternBuilder {
        self.push(Contiguity::Relaxed, DraftKind::stage(name.into()))
    }

    /// Adds stage `name`, non-deterministically relaxed (`followed by any`).
    pub fn followed_by_any(self, name: impl Into<String>) -> PatternBuilder {
        self.push(Contiguity::NonDeterministic, DraftKind::stage(name.into()))
    }

    /// Adds stage `name` that the very next event must not match (`not next`).
    pub fn not_next(self, name: impl Into<String>) -> PatternBuilder {
        self.push(Contiguity::NotNext, DraftKind::stage(name.into()))
    }

    /// Adds stage `name` that no event may match before the next element
    /// (`not followed by`).
    pub fn not_followed_by(self, name: impl Into<String>) -> PatternBuilder {
        self.push(Contiguity::NotFollowedBy, DraftKind::stage(name.into()))
    }

    /// Adds a group, strictly after the previous element.
    pub fn next_group(self, group: PatternBuilder) -> PatternBuilder {
        self.push(Contiguity::Strict, DraftKind::Group(Box::new(group)))
    }

    /// Adds a group, relaxed after the previous element.
    pub fn followed_by_group(self, group: PatternBuilder) -> PatternBuilder {
        self.push(Contiguity::Relaxed, DraftKind::Group(Box::new(group)))
    }

    /// Adds a group, non-deterministically relaxed after the previous element.
    pub fn followed_by_any_group(self, group: PatternBuilder) -> PatternBuilder {
        self.push(
            Contiguity::NonDeterministic,
            DraftKind::Group(Box::new(group)),
        )
    }

    fn add_condition(self, condition: CondDraft) -> PatternBuilder {
        self.last(|draft| match &mut draft.kind {
            DraftKind::Group(_) => {
                Err("a group has no condition of its own; give it to its stages".to_string())
            }
            DraftKind::Stage {
                condition: slot, ..
            } => {
                let joined = match slot.take() {
                    None => condition,
                    Some(old) => combine(old, condition)?,
                };
                *slot = Some(joined);
                Ok(())
            }
        })
    }

    /// Adds a condition on the last stage in the pattern language
    /// (`"type == 0 and price > a.price"`); it is parsed by
    /// [`build`](PatternBuilder::build), where syntax errors are reported.
    pub fn where_expr(self, expr: impl Into<String>) -> PatternBuilder {
        self.add_condition(CondDraft::Expr(vec![expr.into()]))
    }

    /// Adds a condition on the last stage: a closure over the candidate
    /// event (Flink's `SimpleCondition`).
    pub fn where_fn<E, F>(self, f: F) -> PatternBuilder
    where
        E: 'static,
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(move |e: &E, _: &dyn StageEvents<E>| f(e));
        self.add_condition(native_draft(native, false))
    }

    /// Adds a condition on the last stage: a closure over the candidate
    /// event and the events the partial match accepted before it (Flink's
    /// `IterativeCondition`).
    pub fn where_iter<E, F>(self, f: F) -> PatternBuilder
    where
        E: 'static,
        F: Fn(&E, &dyn StageEvents<E>) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(f);
        self.add_condition(native_draft(native, true))
    }

    /// `until`: the last (looping) element stops accepting once an event
    /// satisfies the closure.
    pub fn until_fn<E, F>(self, f: F) -> PatternBuilder
    where
        E: 'static,
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        let native: NativeFn<E> = Arc::new(move |e: &E, _: &dyn StageEvents<E>| f(e));
        self.until(native_draft(native, false))
    }

    /// `until` in the pattern language: the last (looping) element stops
    /// accepting once an event satisfies `expr`.
    pub fn until_expr(self, expr: impl Into<String>) -> PatternBuilder {
        self.until(CondDraft::Expr(vec![expr.into()]))
    }

    fn until(self, condition: CondDraft) -> PatternBuilder {
        self.last(|draft| {
            if draft.until.is_some() {
                return Err("`until` is given twice".to_string());
            }
            draft.until = Some(condition);
            Ok(())
        })
    }

    fn quantify(self, quantifier: Quantifier, optional: bool, what: &str) -> PatternBuilder {
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
    pub fn times(self, n: u32) -> PatternBuilder {
        self.quantify(Quantifier::Times { min: n, max: n }, false, "times")
    }

    /// The last element matches `min` to `max` times (`{min,max}`; a `min`
    /// of 0 makes it optional).
    pub fn times_range(self, min: u32, max: u32) -> PatternBuilder {
        // `{0,m}` stays as written (`Element::is_optional`), as in the
        // language.
        self.quantify(Quantifier::Times { min, max }, false, "times_range")
    }

    /// The last element matches one or more times (`+`).
    pub fn one_or_more(self) -> PatternBuilder {
        self.quantify(Quantifier::AtLeast(1), false, "one_or_more")
    }

    /// The last element matches `n` or more times (`{n,}`; 0 makes it `*`).
    pub fn times_or_more(self, n: u32) -> PatternBuilder {
        self.quantify(Quantifier::AtLeast(n.max(1)), n == 0, "times_or_more")
    }

    /// The last element may be skipped entirely.
    pub fn optional(self) -> PatternBuilder {
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
    pub fn greedy(self) -> PatternBuilder {
        self.last(|draft| {
            draft.greedy = true;
            Ok(())
        })
    }

    fn inner(self, inner: InnerContiguity) -> PatternBuilder {
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
    pub fn consecutive(self) -> PatternBuilder {
        self.inner(InnerContiguity::Consecutive)
    }

    /// Repetitions of the last element are non-deterministically relaxed.
    pub fn allow_combinations(self) -> PatternBuilder {
        self.inner(InnerContiguity::Combinations)
    }

    /// Each event the last element takes comes less than `ms` after the
    /// previous event of the match (Flink's `PREVIOUS_AND_CURRENT`).
    pub fn within_prev(self, ms: DurationMs) -> PatternBuilder {
        self.last(|draft| {
            draft.within = Some(ms);
            Ok(())
        })
    }

    /// The last event of a match comes less than `ms` after its first.
    pub fn within(mut self, ms: DurationMs) -> PatternBuilder {
        self.within = Some(ms);
        self.pattern_option("within")
    }

    /// The after-match skip strategy.
    pub fn skip(mut self, strategy: SkipStrategy) -> PatternBuilder {
        self.skip = Some(SkipChoice::Strategy(strategy));
        self.pattern_option("skip")
    }

    /// `skip to first s`, naming the stage.
    pub fn skip_to_first(mut self, stage: impl Into<String>) -> PatternBuilder {
        self.skip = Some(SkipChoice::ToFirst(stage.into()));
        self.pattern_option("skip")
    }

    /// `skip to last s`, naming the stage.
    pub fn skip_to_last(mut self, stage: impl Into<String>) -> PatternBuilder {
        self.skip = Some(SkipChoice::ToLast(stage.into()));
        self.pattern_option("skip")
    }

    /// Adds a `partition by` field (`user.id` is a nested field).
    pub fn partition_by(mut self, path: &str) -> PatternBuilder {
        self.partition_by.push(FieldPath::parse(path));
        self.pattern_option("partition_by")
    }

    /// Emit partial matches that expire by the window as timeouts.
    pub fn emit_timeouts(mut self) -> PatternBuilder {
        self.emit_timeouts = true;
        self.pattern_option("emit_timeouts")
    }

    /// Adds a `select` entry: output field `name` computed by `expr` (in
    /// the pattern language, over stage references and aggregates) once
    /// per match.
    pub fn select(mut self, name: impl Into<String>, expr: impl Into<String>) -> PatternBuilder {
        self.select.push((name.into(), expr.into()));
        self.pattern_option("select")
    }

    /// The pattern's documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> PatternBuilder {
        self.doc = Some(doc.into());
        self.pattern_option("doc")
    }

    /// The pattern's name (default `unnamed`).
    pub fn name(mut self, name: impl Into<String>) -> PatternBuilder {
        self.name = Some(name.into());
        self.pattern_option("name")
    }

    /// Makes the pattern, checking every static rule; all problems are
    /// returned at once.
    pub fn build(self) -> Result<Pattern, Vec<PatternError>> {
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
        let pattern = Pattern {
            name: self.name.unwrap_or_else(|| "unnamed".to_string()),
            doc: self.doc,
            partition_by: self.partition_by,
            within: self.within,
            skip,
            emit_timeouts: self.emit_timeouts,
            stages: flat.stages,
            sequence,
            select,
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
