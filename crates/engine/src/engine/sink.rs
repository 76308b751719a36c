//! Where the engine's output goes: a [`Sink`] sees every match, timeout and
//! late event as it is produced, as a [`MatchRef`] borrowing the engine's
//! event store (no copies); [`MatchRef::to_owned`] makes a [`Match`], and a
//! `Vec<Output<E>>` is the sink that keeps everything.

use std::fmt;

use crate::engine::decide::Decision;
use crate::event::FieldPath;

use crate::matcher::{Match, Output};
use crate::primitives::Timestamp;
use crate::value::{KeyValue, Value};

/// Which pattern and key produced an output (crate-internal: users see it
/// through [`MatchRef`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatchContext<'a> {
    /// Index of the pattern in the engine (the order it was added).
    pub pattern: usize,
    /// The pattern's name.
    pub name: &'a str,
    /// The pattern's `partition by` fields.
    pub key_fields: &'a [FieldPath],
    /// The values of those fields for this partition (empty for a pattern
    /// without `partition by`).
    pub key: &'a KeyValue,
    /// Does the pattern have a `select` section?
    pub has_select: bool,
    /// The pattern's version (`docs/dynamic-rules.md`).
    pub version: u32,
    /// Has the pattern's name been replaced at least once (so that the
    /// JSON-lines writer shows the version)?
    pub versioned: bool,
    /// For a dropped partial match: was it dropped by the engine's limit
    /// over all keys (`Engine::max_live_runs`), not the per-key one?
    pub capped: bool,
    /// The pattern's rule attributes.
    pub attributes: &'a crate::lookup::Attributes,
    /// Is the pattern a `shadow` one (its records go to the shadow
    /// output)?
    pub shadow: bool,
    /// Do its conditions read lists or indicators (so that its records
    /// say what they read)?
    pub has_reads: bool,
    /// Does its `match` hold an alternation (so that its records say
    /// their branches)? Without, [`MatchRef::branches`] is `None` without
    /// asking the match.
    pub has_branches: bool,
}

impl<'a> MatchContext<'a> {
    /// The context of pattern number `pattern`, for the partition `key`.
    pub fn new(
        pattern: usize,
        ir: &'a crate::pattern::Pattern,
        key_fields: &'a [FieldPath],
        key: &'a KeyValue,
    ) -> MatchContext<'a> {
        MatchContext {
            pattern,
            name: &ir.name,
            key_fields,
            key,
            has_select: !ir.select.is_empty(),
            version: 1,
            versioned: false,
            capped: false,
            attributes: &ir.attributes,
            shadow: ir.shadow,
            has_reads: !ir.reads.is_empty(),
            has_branches: false,
        }
    }

    /// The same context for a pattern with alternation when `has` is
    /// true (the engine knows it once per pattern: `Pattern::has_alternation`
    /// walks the sequence).
    #[inline]
    pub fn with_branches(self, has: bool) -> MatchContext<'a> {
        MatchContext {
            has_branches: has,
            ..self
        }
    }

    /// The same context for version `version` of the pattern (`versioned`:
    /// its name has been replaced at least once).
    #[inline]
    pub fn with_version(self, version: u32, versioned: bool) -> MatchContext<'a> {
        MatchContext {
            version,
            versioned,
            ..self
        }
    }
}

/// What the engine needs to read from an automaton's match (implemented by
/// the matcher's `MatchView` and by the engine's test double).
pub(crate) trait MatchAccess<E> {
    /// Time of the first event.
    fn start(&self) -> Timestamp;

    /// Time of the last event.
    fn end(&self) -> Timestamp;

    /// Calls `visit` once per stage that took events, in pattern order, with
    /// the stage name and its events in the order they were taken.
    fn visit_stages<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &mut dyn Iterator<Item = &'s E>));

    /// The values of the pattern's `select` section (empty without one).
    fn select(&self) -> Vec<(String, Value)>;

    /// What the pattern's conditions read of lists and indicators, by
    /// their text (empty when they read none).
    fn reads(&self) -> Vec<(String, Value)> {
        Vec::new()
    }

    /// The values of the pattern's `then` writes, in order (empty without
    /// any).
    fn write_values(&self) -> Vec<Value> {
        Vec::new()
    }

    /// For a pattern with alternation, the branch of each alternation the
    /// match took (`None` without alternation).
    fn branches(&self) -> Option<Vec<Option<u32>>> {
        None
    }
}

/// A complete or timed-out partial match, borrowing the engine's event
/// store: valid during the [`Sink`] call that receives it.
///
/// It knows which pattern produced it and for which key; its events are
/// grouped by stage. [`MatchRef::to_owned`] copies it out.
pub struct MatchRef<'a, E> {
    ctx: &'a MatchContext<'a>,
    m: &'a dyn MatchAccess<E>,
    /// The match's first and last times, read from it when it is made
    /// (every record says them: no dynamic call for them).
    start: Timestamp,
    end: Timestamp,
}

impl<'a, E> MatchRef<'a, E> {
    #[inline(always)]
    pub(crate) fn new<M: MatchAccess<E>>(ctx: &'a MatchContext<'a>, m: &'a M) -> MatchRef<'a, E> {
        MatchRef {
            ctx,
            start: m.start(),
            end: m.end(),
            m,
        }
    }

    /// The pattern's name.
    pub fn pattern(&self) -> &'a str {
        self.ctx.name
    }

    /// The pattern's position in the engine: 0 for the first one added, and
    /// so on (stable while the rule set does not change: removing or
    /// replacing patterns renumbers them, `docs/dynamic-rules.md`).
    pub fn pattern_index(&self) -> usize {
        self.ctx.pattern
    }

    /// The version of the pattern that made this output: 1 for a pattern
    /// as first added, +1 each time its name was replaced by a pattern
    /// with another canonical text (`docs/dynamic-rules.md`). While an old
    /// version drains, both versions' outputs come, each with its own.
    pub fn version(&self) -> u32 {
        self.ctx.version
    }

    /// Has the pattern's name been replaced at least once in this engine?
    /// (The JSON-lines writer then writes the version.)
    #[inline]
    pub fn versioned(&self) -> bool {
        self.ctx.versioned
    }

    /// For a partial match given to [`Sink::on_dropped`]: true when the
    /// engine dropped it because it held its limit of partial matches over
    /// all keys ([`Engine::max_live_runs`]), false when the key held more
    /// than the per-key limit ([`Engine::max_runs_per_key`]). False for
    /// every other output.
    ///
    /// [`Engine::max_live_runs`]: crate::Engine::max_live_runs
    /// [`Engine::max_runs_per_key`]: crate::Engine::max_runs_per_key
    pub fn capped(&self) -> bool {
        self.ctx.capped
    }

    /// The pattern's `partition by` fields (empty without).
    pub fn key_fields(&self) -> &'a [FieldPath] {
        self.ctx.key_fields
    }

    /// The values of the `partition by` fields for this match's partition,
    /// in the same order (empty without `partition by`).
    pub fn key(&self) -> &'a [Value] {
        self.ctx.key
    }

    /// Time of the first event.
    #[inline]
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Time of the last event.
    #[inline]
    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Calls `visit` once per stage that took events, in pattern order, with
    /// the stage's name and its events in the order they were taken (no
    /// allocation per event).
    pub fn for_each_stage(&self, mut visit: impl FnMut(&'a str, &mut dyn Iterator<Item = &'a E>)) {
        self.m.visit_stages(&mut visit);
    }

    /// Each stage that took events, in pattern order, with its events.
    pub fn stages(&self) -> Vec<(&'a str, Vec<&'a E>)> {
        let mut out = Vec::new();
        self.m.visit_stages(&mut |name, events| {
            out.push((name, events.collect()));
        });
        out
    }

    /// The events of one stage, in the order taken (empty if it took none).
    pub fn stage(&self, name: &str) -> Vec<&'a E> {
        let mut out = Vec::new();
        self.m.visit_stages(&mut |stage, events| {
            if stage == name {
                out.extend(events);
            }
        });
        out
    }

    /// Does the pattern have a `select` section?
    pub fn has_select(&self) -> bool {
        self.ctx.has_select
    }

    /// The values of the pattern's `select` section, in its order (empty
    /// without one). For a timeout they are computed over the partial match.
    pub fn select(&self) -> Vec<(String, Value)> {
        if self.ctx.has_select {
            self.m.select()
        } else {
            Vec::new()
        }
    }

    /// The pattern's rule attributes (`score`, `level`, `action`, `tags`;
    /// all empty when it has none).
    pub fn attributes(&self) -> &'a crate::lookup::Attributes {
        self.ctx.attributes
    }

    /// Is the pattern marked `shadow`: its records are for the run's
    /// shadow output, never its output (`docs/rule-lab.md`, "Shadow
    /// rules")?
    pub fn shadow(&self) -> bool {
        self.ctx.shadow
    }

    /// Do the pattern's conditions read lists or indicators (so that
    /// [`MatchRef::reads`] can be other than empty)? Asking costs
    /// nothing; [`reads`](MatchRef::reads) evaluates them.
    #[inline]
    pub fn has_reads(&self) -> bool {
        self.ctx.has_reads
    }

    /// What the pattern's conditions read of reference lists and
    /// indicators, by the text of each membership or call, evaluated when
    /// the record is made: for the last event each stage took (with what
    /// the match took before it), against the lists and indicators as they
    /// are then (`docs/semantics.md`, "Lists and indicators"). Empty when
    /// the conditions read none.
    pub fn reads(&self) -> Vec<(String, Value)> {
        if self.ctx.has_reads {
            self.m.reads()
        } else {
            Vec::new()
        }
    }

    /// For a pattern with alternation (`or` in `match`), the branch of each
    /// of its alternations, in the order of the text, that this match
    /// took: 1 for the first branch, and so on; `None` in the list for an
    /// alternation the match did not reach (inside an optional group it
    /// skipped). A timed-out partial match that has taken no event of a
    /// branch of its own names the branch it was waiting in. `None` for a
    /// pattern without alternation (`docs/semantics.md`, "Alternation").
    pub fn branches(&self) -> Option<Vec<Option<u32>>> {
        if self.ctx.has_branches {
            self.m.branches()
        } else {
            None
        }
    }

    /// An owned copy (events cloned).
    pub fn to_owned(&self) -> Match<E>
    where
        E: Clone,
    {
        let mut stages = Vec::new();
        self.m.visit_stages(&mut |name, events| {
            stages.push((name.to_string(), events.cloned().collect()));
        });
        Match {
            pattern: self.ctx.name.to_string(),
            key_fields: self.ctx.key_fields.iter().map(|f| f.to_string()).collect(),
            key: self.ctx.key.to_vec(),
            start: self.start,
            end: self.end,
            stages,
            select: self.select(),
            version: self.ctx.version,
            versioned: self.ctx.versioned,
            branch: self.branches(),
            attributes: self.ctx.attributes.clone(),
            reads: self.reads(),
        }
    }
}

impl<E> MatchRef<'_, E> {
    /// Calls `f` with this match reported as pattern number `pattern`
    /// ([`MatchRef::pattern_index`]), everything else unchanged: for a host
    /// that runs one set of patterns in several engines (each engine
    /// numbers its own patterns from 0) and reports them under one
    /// numbering, as `cepheid_dataflow` does.
    pub fn renumbered<R>(&self, pattern: usize, f: impl FnOnce(&MatchRef<'_, E>) -> R) -> R {
        let ctx = MatchContext {
            pattern,
            ..*self.ctx
        };
        f(&MatchRef {
            ctx: &ctx,
            m: self.m,
            start: self.start,
            end: self.end,
        })
    }
}

impl<E> MatchRef<'_, E> {
    /// Calls `f` with the match `m` ([`MatchRef::to_owned`]'s copy, or one
    /// built by hand) as the engine gives it, reported as pattern number
    /// `pattern`: the same pattern, key, times, stages, `select` values,
    /// version, branches, attributes and reads, neither
    /// [`capped`](MatchRef::capped) nor [`shadow`](MatchRef::shadow). For a
    /// sink given owned outputs again: a `Vec<Output>` written as records,
    /// or a sink's tests.
    ///
    /// ```
    /// use cepheid_engine::{MatchRef, Output, Record, Rules};
    /// let mut engine: cepheid_engine::Engine<Record> = cepheid_engine::Engine::new();
    /// engine.add(&Rules::parse("r.cep", r#"pattern p { partition by user
    ///     match a where a: type == "a" }"#)?)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// engine.push_json(r#"{"ts": 1, "user": "u", "type": "a"}"#, "ts", &mut out)?;
    /// engine.finish(&mut out);
    /// let Output::Match(m) = &out[0] else { panic!("a match") };
    /// let (pattern, key) = MatchRef::of_owned(m, 0, |r| (r.pattern().to_string(), r.key().to_vec()));
    /// assert_eq!((pattern.as_str(), key), ("p", vec!["u".into()]));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn of_owned<R>(m: &Match<E>, pattern: usize, f: impl FnOnce(&MatchRef<'_, E>) -> R) -> R {
        let key_fields: Vec<FieldPath> = m.key_fields.iter().map(|f| FieldPath::parse(f)).collect();
        let key: KeyValue = m.key.iter().cloned().collect();
        let ctx = MatchContext {
            pattern,
            name: &m.pattern,
            key_fields: &key_fields,
            key: &key,
            has_select: !m.select.is_empty(),
            version: m.version,
            versioned: m.versioned,
            capped: false,
            attributes: &m.attributes,
            shadow: false,
            has_reads: !m.reads.is_empty(),
            has_branches: m.branch.is_some(),
        };
        f(&MatchRef::new(&ctx, m))
    }
}

/// An owned match read as the engine's matches are
/// ([`MatchRef::of_owned`]).
impl<E> MatchAccess<E> for Match<E> {
    fn start(&self) -> Timestamp {
        self.start
    }

    fn end(&self) -> Timestamp {
        self.end
    }

    fn visit_stages<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &mut dyn Iterator<Item = &'s E>)) {
        for (name, events) in &self.stages {
            visit(name, &mut events.iter());
        }
    }

    fn select(&self) -> Vec<(String, Value)> {
        self.select.clone()
    }

    fn reads(&self) -> Vec<(String, Value)> {
        self.reads.clone()
    }

    fn branches(&self) -> Option<Vec<Option<u32>>> {
        self.branch.clone()
    }
}

impl<E> fmt::Debug for MatchRef<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchRef")
            .field("pattern", &self.ctx.name)
            .field("key", &self.ctx.key)
            .field("start", &self.start())
            .field("end", &self.end())
            .finish_non_exhaustive()
    }
}

/// Receives the engine's output as it is produced.
///
/// Only [`on_match`](Sink::on_match) must be written; timeouts (of patterns
/// with `timeouts`) and late events are ignored unless their methods are
/// overridden (the engine's [`Stats`](crate::engine::Stats) count them
/// either way). A closure `FnMut(&MatchRef<E>)` is a sink of matches, and a
/// `Vec<Output<E>>` keeps everything:
///
/// ```
/// use cepheid_engine::{Engine, MatchRef, Output, Record, Sink, Timestamp};
///
/// struct Alerts(Vec<String>);
/// impl Sink<Record> for Alerts {
///     fn on_match(&mut self, m: &MatchRef<'_, Record>) {
///         self.0.push(format!("{} for {:?}", m.pattern(), m.key()));
///     }
///     fn on_late(&mut self, ts: Timestamp, _event: &Record) {
///         self.0.push(format!("late event at {ts}"));
///     }
/// }
/// # let _ = Alerts(Vec::new());
/// let mut count = 0;
/// let mut matches_only = |_: &MatchRef<'_, Record>| count += 1;
/// let mut everything: Vec<Output<Record>> = Vec::new();
/// # let _ = (&mut matches_only, &mut everything);
/// ```
pub trait Sink<E> {
    /// A complete match.
    fn on_match(&mut self, m: &MatchRef<'_, E>);

    /// A partial match whose window closed at `expired_at` (only for
    /// patterns with `timeouts`). Ignored unless overridden.
    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        let _ = (m, expired_at);
    }

    /// An event that arrived at or below the watermark: it was not matched.
    /// Ignored unless overridden.
    fn on_late(&mut self, ts: Timestamp, event: &E) {
        let _ = (ts, event);
    }

    /// A partial match dropped because its key held more partial matches
    /// than the engine's limit ([`Engine::max_runs_per_key`]), or because
    /// the engine held its limit over all keys ([`Engine::max_live_runs`]:
    /// then [`MatchRef::capped`] is true); counted in
    /// [`Stats::dropped_runs`](crate::engine::Stats::dropped_runs) either
    /// way. Ignored unless overridden.
    ///
    /// [`Engine::max_runs_per_key`]: crate::Engine::max_runs_per_key
    /// [`Engine::max_live_runs`]: crate::Engine::max_live_runs
    fn on_dropped(&mut self, partial: &MatchRef<'_, E>) {
        let _ = partial;
    }

    /// An event's decision in a scene it entered (`docs/semantics.md`,
    /// "Decisions"): given right after the engine processed the event
    /// (a late event's when it arrives), after the event's own matches.
    /// Only an engine with scenes makes them. Ignored unless overridden.
    fn on_decision(&mut self, decision: &Decision) {
        let _ = decision;
    }

    /// Is the match not made at all: not given, not counted, its `then`
    /// writes not made? The engine's own sink says so of a rule's
    /// instance matching on an event outside its scene
    /// (`docs/semantics.md`, "Decisions"); every other sink makes every
    /// match. Not for implementors: the engine asks it before
    /// [`on_match`](Sink::on_match).
    #[doc(hidden)]
    #[inline(always)]
    fn holds_back(&mut self, m: &MatchRef<'_, E>) -> bool {
        let _ = m;
        false
    }
}

impl<E, F: FnMut(&MatchRef<'_, E>)> Sink<E> for F {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        self(m)
    }
}

/// Keeps every output, owned, in the order produced.
impl<E: Clone> Sink<E> for Vec<Output<E>> {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        self.push(Output::Match(m.to_owned()));
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        self.push(Output::Timeout {
            partial: m.to_owned(),
            expired_at,
        });
    }

    fn on_late(&mut self, ts: Timestamp, event: &E) {
        self.push(Output::Late {
            ts,
            event: event.clone(),
        });
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, E>) {
        self.push(Output::Dropped {
            partial: partial.to_owned(),
        });
    }
}
