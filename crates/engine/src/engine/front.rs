//! [`Engine`]: the front door of the event-time engine.

use std::collections::HashSet;
use std::time::Duration;

use crate::engine::automaton::Automaton;
use crate::engine::core::{
    Arrival, Core, PatternStats, Stats, DEFAULT_MAX_LIVE_RUNS, DEFAULT_MAX_RUNS_PER_KEY,
    DEFAULT_MAX_WAITING_EVENTS,
};
use crate::engine::json_line::JsonInput;
use crate::engine::sink::Sink;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldResolver};
use crate::matcher::Cache;
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::primitives::Timestamp;
use crate::record::Record;
use std::sync::Arc;

/// Runs any number of patterns over one stream of events in event time.
///
/// Per pattern and key (`partition by`) it keeps the partial matches; one
/// event store serves all patterns; one watermark (bounded
/// out-of-orderness plus punctuated watermarks) orders time; late events go
/// to [`Sink::on_late`]; timeouts fire on the watermark even for keys that
/// see no more events.
///
/// Events wait until the watermark passes their time, then reach the
/// matchers in (time, arrival) order, time advanced first, as in Flink's CEP
/// operator. Deadlines of quiet keys fire in the same global time order:
/// before the events of time `t`, every deadline at or before `t`.
///
/// An `Engine<E>` is `Send` when `E` is: it can be moved to a worker
/// thread; to use several cores, give each thread its own engine and route
/// each key to one of them (see `examples/sharded.rs`).
pub struct Engine<E: Event + 'static = Record> {
    pub(super) core: Core<E, Arc<Nfa<E>>>,
    /// How `E`'s field names become ids: for [`Record`] the table its
    /// decoders share.
    pub(super) fields: E::Fields,
    /// The decoder of [`Engine::push_json`] (an `Engine<Record>`), made at
    /// its first call.
    pub(super) json: Option<Box<JsonInput>>,
    /// The requests taken and remembered ([`Engine::request`]), once one
    /// was.
    pub(super) requests: Option<Box<super::requests::Requests>>,
}

/// Patterns compiled for an engine ([`Engine::compile`]): their automata
/// and the fields they were compiled with.
pub(super) type Compiled<E> = (Vec<Arc<Nfa<E>>>, <E as Event>::Fields);

/// What [`Engine::add`] takes: [`Rules`](crate::Rules) from the pattern
/// language, a typed [`Pattern`](crate::Pattern) from the builder or a
/// slice of them, or a pattern of the IR ([`crate::pattern::Pattern`]) or
/// a slice of them.
/// Sealed.
pub trait PatternSet<E>: sealed::Sealed<E> {}

pub(crate) mod sealed {
    use crate::error::Error;
    use crate::pattern::Pattern;

    /// The patterns of a set, and where their errors are.
    pub trait Sealed<E> {
        /// The patterns, in order.
        fn ir_patterns(&self) -> Vec<&Pattern>;

        /// Is pattern number `index` unnamed (built without
        /// [`name`](crate::builder::PatternBuilder::name)), so that the
        /// engine numbers it when its name is taken?
        fn unnamed(&self, index: usize) -> bool {
            let _ = index;
            false
        }

        /// Gives an error about pattern number `index` its place in the
        /// text the pattern came from, if any.
        fn locate(&self, index: usize, error: Error) -> Error {
            let _ = index;
            error
        }

        /// The lists and indicators the set declares (its patterns name
        /// them by their numbers there), if it is a rule set.
        fn declarations(&self) -> Option<&crate::lookup::Declarations> {
            None
        }

        /// Pattern number `index` compiled already for `E` (by the loader
        /// of [`Rules`](crate::Rules)), to be shared rather than compiled
        /// again when the engine's fields and conditions number it alike.
        fn compiled(&self, index: usize) -> Option<&std::sync::Arc<crate::nfa::Nfa<E>>> {
            let _ = index;
            None
        }

        /// The scenes the set declares (`docs/language.md` §11.3): empty
        /// but for a rule set.
        fn scenes(&self) -> &[crate::scene::Scene] {
            &[]
        }

        /// The texts the set was loaded from (name and text, in load
        /// order), which a snapshot keeps for its scenes: `None` but for
        /// a rule set.
        fn texts(&self) -> Option<std::sync::Arc<[(String, String)]>> {
            None
        }
    }
}

impl<E> sealed::Sealed<E> for Pattern {
    fn ir_patterns(&self) -> Vec<&Pattern> {
        vec![self]
    }
}

impl<E> PatternSet<E> for Pattern {}

impl<E> sealed::Sealed<E> for [Pattern] {
    fn ir_patterns(&self) -> Vec<&Pattern> {
        self.iter().collect()
    }
}

/// Patterns of the IR as one set (for [`Engine::set_rules`], patterns
/// built or edited in code).
impl<E> PatternSet<E> for [Pattern] {}

impl<E> sealed::Sealed<E> for crate::Pattern<E> {
    fn ir_patterns(&self) -> Vec<&Pattern> {
        vec![self.ir()]
    }

    fn unnamed(&self, _: usize) -> bool {
        !self.is_named()
    }
}

impl<E> PatternSet<E> for crate::Pattern<E> {}

impl<E> sealed::Sealed<E> for [crate::Pattern<E>] {
    fn ir_patterns(&self) -> Vec<&Pattern> {
        self.iter().map(crate::Pattern::ir).collect()
    }

    fn unnamed(&self, index: usize) -> bool {
        self.get(index).is_some_and(|p| !p.is_named())
    }
}

/// Patterns of the builder as one set (for [`Engine::set_rules`], or
/// [`Engine::from_snapshot`] of an engine that runs several).
impl<E> PatternSet<E> for [crate::Pattern<E>] {}

/// A summary, not the state: the patterns in force by name, the live keys
/// and partial matches, the waiting events, the watermark and the
/// settings (`max_delay_ms`, the three limits).
///
/// ```
/// use cepheid_engine::{Engine, Record, Rules};
/// let mut engine: Engine<Record> = Engine::new().max_runs_per_key(50);
/// engine.add(&Rules::parse("r.cep", "pattern p { match a where a: n > 1 }")?)?;
/// let shown = format!("{engine:?}");
/// assert!(shown.starts_with(r#"Engine { patterns: ["p"], live_keys: 0,"#), "{shown}");
/// assert!(shown.contains("max_runs_per_key: 50"), "{shown}");
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
impl<E: Event + 'static> std::fmt::Debug for Engine<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.patterns().map(|p| p.name.as_str()).collect();
        let draining = self.core.patterns.iter().filter(|r| r.draining).count();
        let mut s = f.debug_struct("Engine");
        s.field("patterns", &names);
        if draining > 0 {
            s.field("draining_versions", &draining);
        }
        s.field("live_keys", &self.live_keys())
            .field("live_runs", &self.live_runs())
            .field("waiting_events", &self.waiting_events())
            .field("stored_events", &self.stored_events())
            .field("watermark", &self.current_watermark())
            .field("max_delay_ms", &self.core.clock.max_delay())
            .field("max_runs_per_key", &self.core.run_limit)
            .field("max_live_runs", &self.core.live_limit)
            .field("max_waiting_events", &self.core.waiting_limit)
            .finish()
    }
}

impl<E: Event + 'static> Default for Engine<E> {
    fn default() -> Self {
        Engine::new()
    }
}

impl<E: Event + 'static, A: Automaton<E, Cache = Cache>> Core<E, A> {
    /// Compiles patterns for `E` with a copy of `fields` (the engine's):
    /// all of them, or every problem as one error (a name twice in the
    /// set; with `fresh`, a name the engine has). A plain engine's and a
    /// traced one's alike (`Why::set_rules`).
    pub(super) fn compile<P: PatternSet<E> + ?Sized>(
        &self,
        fields: &E::Fields,
        patterns: &P,
        fresh: bool,
    ) -> Result<Compiled<E>, Error> {
        let mut fields = fields.clone();
        let mut errors = Vec::new();
        let mut compiled = Vec::new();
        // (sets: a set of N patterns is checked in time linear in N)
        let mut names: HashSet<String> = if fresh {
            self.in_force().map(|p| p.name.clone()).collect()
        } else {
            HashSet::new()
        };
        let set = patterns.ir_patterns();
        // Automata the set compiled already and that read the fields as
        // this engine numbers them (a set of `Rules` added first): shared,
        // if their conditions' numbers agree too (checked below).
        let mut reused = Vec::new();
        // The names given in the set, which a numbered name must not take.
        let given: HashSet<&str> = (0..set.len())
            .filter(|&i| !patterns.unnamed(i))
            .map(|i| set[i].name.as_str())
            .collect();
        for (index, pattern) in set.iter().copied().enumerate() {
            let numbered;
            let pattern = if patterns.unnamed(index) && names.contains(&pattern.name) {
                // An unnamed pattern of the builder: the first free
                // `unnamed_N`.
                let name = (2..)
                    .map(|n| format!("{}_{n}", pattern.name))
                    .find(|name| !names.contains(name) && !given.contains(name.as_str()))
                    .expect("a free name");
                numbered = Pattern {
                    name,
                    ..pattern.clone()
                };
                &numbered
            } else {
                pattern
            };
            if names.contains(&pattern.name) {
                let message = if fresh {
                    format!(
                        "a pattern named `{}` is already in the engine",
                        pattern.name
                    )
                } else {
                    format!("the rules name two patterns `{}`", pattern.name)
                };
                errors.push(patterns.locate(
                    index,
                    Error::new(ErrorKind::Pattern, message).with_span(pattern.span),
                ));
                continue;
            }
            names.insert(pattern.name.clone());
            let key = pattern
                .partition_by
                .iter()
                .map(|path| fields.resolve(path))
                .collect::<Result<Vec<_>, _>>();
            let result = key
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Field,
                        format!("pattern `{}`: partition by: {e}", pattern.name),
                    )
                    .with_span(pattern.span)
                })
                .and_then(|_| {
                    let given = patterns.compiled(index).filter(|nfa| {
                        fresh && nfa.pattern().name == pattern.name && nfa.reads_alike(&mut fields)
                    });
                    if let Some(nfa) = given {
                        reused.push(compiled.len());
                        return Ok(Arc::clone(nfa));
                    }
                    Nfa::<E>::compile(pattern, &mut fields)
                        .map(Arc::new)
                        .map_err(Error::from)
                });
            match result {
                Ok(nfa) => compiled.push(nfa),
                Err(e) => errors.push(patterns.locate(index, e)),
            }
        }
        if !errors.is_empty() {
            return Err(Error::many(errors));
        }
        // All of the set or none: an automaton compiled here numbers its
        // conditions as it is added, which could take numbers a shared one
        // holds.
        let shared: Vec<&Nfa<E>> = reused.iter().map(|&i| &*compiled[i]).collect();
        let whole = shared.len() == compiled.len() && self.cache.adopts_all(&shared);
        if !shared.is_empty() && !whole {
            // Compiled here instead (the fields have every name they read
            // already).
            for i in reused {
                let nfa = Nfa::<E>::compile(compiled[i].pattern(), &mut fields)?;
                compiled[i] = Arc::new(nfa);
            }
        }
        Ok((compiled, fields))
    }

    /// The patterns in force (not the draining old versions), in order.
    pub(super) fn in_force(&self) -> impl Iterator<Item = &Pattern> {
        (self.patterns.iter())
            .filter(|run| !run.draining)
            .map(|run| run.automaton.pattern())
    }
}

impl<E: Event + 'static> Engine<E> {
    /// An engine without patterns that accepts events in any order down to
    /// the watermark: with no allowed delay, an event is late as soon as an
    /// event with a larger time has been pushed before it.
    pub fn new() -> Self {
        Engine::with_max_delay(Duration::ZERO)
    }

    /// An engine whose watermark trails the largest event time seen by
    /// `max_delay` (bounded out-of-orderness): an event is late when its time
    /// is more than `max_delay` behind the largest time pushed before it.
    /// Event time counts whole milliseconds: a delay with a fraction of a
    /// millisecond is rounded up, a delay beyond `i64::MAX` milliseconds is
    /// that.
    pub fn with_max_delay(max_delay: Duration) -> Self {
        let ms = max_delay.as_millis() + u128::from(max_delay.subsec_nanos() % 1_000_000 != 0);
        Engine {
            core: Core::new(i64::try_from(ms).unwrap_or(i64::MAX)),
            fields: E::Fields::default(),
            json: None,
            requests: None,
        }
    }

    /// The default of [`max_runs_per_key`](Engine::max_runs_per_key):
    /// 10,000.
    pub const DEFAULT_MAX_RUNS_PER_KEY: usize = DEFAULT_MAX_RUNS_PER_KEY;

    /// Bounds the state of each key: after an event, a pattern's
    /// partition for one key holds at most `limit` partial matches
    /// (default [`DEFAULT_MAX_RUNS_PER_KEY`](Engine::DEFAULT_MAX_RUNS_PER_KEY)).
    /// Beyond it the oldest ones (earliest first event) are dropped, each
    /// reported to [`Sink::on_dropped`] and counted in
    /// [`Stats::dropped_runs`]; matches that a skip strategy held back
    /// behind a dropped one are then emitted. Flink has no such limit; it
    /// keeps a pattern like `a+ combinations followed by b`, whose partial
    /// matches double with every event, from taking the machine. Pass
    /// `usize::MAX` for no limit; 0 counts as 1. See `docs/semantics.md`,
    /// "The limit on partial matches per key".
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format, Item, Items};
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let rules = Rules::parse("p.cep", r#"pattern p {
    ///     match a{1,} combinations followed by b where b: type == "b" }"#)?;
    /// let mut engine: Engine<Record> = Engine::new().max_runs_per_key(100);
    /// engine.add(&rules)?;
    /// // 20 `a`s: 2^20 - 1 partial matches without the limit
    /// let input: String = (1..=20).map(|t| format!("{{\"ts\":{t},\"type\":\"a\"}}\n")).collect();
    /// let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// for (_line, item) in Items::new("in.jsonl", input.as_bytes(), decoder) {
    ///     if let Item::Event(ts, record) = item? {
    ///         engine.push(ts, record, &mut out);
    ///     }
    /// }
    /// engine.finish(&mut out);
    /// let dropped = out.iter().filter(|o| matches!(o, Output::Dropped { .. })).count();
    /// assert!(dropped > 0);
    /// assert_eq!(engine.stats().dropped_runs, dropped as u64);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn max_runs_per_key(mut self, limit: usize) -> Self {
        self.core.set_run_limit(limit);
        self
    }

    /// The default of [`max_live_runs`](Engine::max_live_runs): 4,000,000.
    /// A live partial match costs about 650 bytes in `cepheid run` plus the
    /// text of the events it holds: 2.7 GiB at this default for the
    /// simplest pattern over 37-byte events, 3.2 GiB with checkpoints
    /// (`BENCHMARKS.md`, "Bounded state"); lower it to fit the memory you
    /// have.
    pub const DEFAULT_MAX_LIVE_RUNS: usize = DEFAULT_MAX_LIVE_RUNS;

    /// Bounds the state of the whole engine: after each step of a key, the
    /// partial matches of all patterns and keys (runs that took an event,
    /// plus matches a skip strategy holds back) are at most `limit`
    /// (default [`DEFAULT_MAX_LIVE_RUNS`](Engine::DEFAULT_MAX_LIVE_RUNS)).
    /// The per-key limit ([`max_runs_per_key`](Engine::max_runs_per_key))
    /// does not bound the number of keys; this does. When an event's step
    /// of a key would go beyond it, that key keeps only as many partial
    /// matches as fit beside those of all other keys and patterns, its
    /// oldest dropped exactly as the per-key limit drops them: each to
    /// [`Sink::on_dropped`] (with [`MatchRef::capped`] true), counted in
    /// [`Stats::dropped_runs`] and [`Stats::capped_runs`]. Pass
    /// `usize::MAX` for no limit; 0 counts as 1. [`live_runs`](Engine::live_runs)
    /// says how many there are. See `docs/semantics.md`, "The limit on live
    /// partial matches".
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format, Item, Items};
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new().max_live_runs(3);
    /// engine.add(&Rules::parse("p.cep", r#"pattern p { partition by user
    ///     match a followed by b where a: type == "a" b: type == "b" }"#)?)?;
    /// // five users each start a partial match: the engine keeps three
    /// let input: String = (1..=5)
    ///     .map(|t| format!("{{\"ts\":{t},\"type\":\"a\",\"user\":\"u{t}\"}}\n"))
    ///     .collect();
    /// let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// for (_line, item) in Items::new("in.jsonl", input.as_bytes(), decoder) {
    ///     if let Item::Event(ts, record) = item? {
    ///         engine.push(ts, record, &mut out);
    ///     }
    /// }
    /// engine.finish(&mut out);
    /// assert_eq!(engine.live_runs(), 3);
    /// assert_eq!(engine.stats().capped_runs, 2);
    /// assert_eq!(out.iter().filter(|o| matches!(o, Output::Dropped { .. })).count(), 2);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    ///
    /// [`Sink::on_dropped`]: crate::engine::Sink::on_dropped
    /// [`MatchRef::capped`]: crate::engine::MatchRef::capped
    pub fn max_live_runs(mut self, limit: usize) -> Self {
        self.core.set_live_limit(limit);
        self
    }

    /// The default of [`max_waiting_events`](Engine::max_waiting_events):
    /// 1,000,000.
    pub const DEFAULT_MAX_WAITING_EVENTS: usize = DEFAULT_MAX_WAITING_EVENTS;

    /// Bounds the events that wait for the watermark (default
    /// [`DEFAULT_MAX_WAITING_EVENTS`](Engine::DEFAULT_MAX_WAITING_EVENTS)).
    /// The watermark holds back events newer than the largest time seen
    /// minus the delay, and events after the last punctuated watermark; a
    /// stream whose times stand still (a burst at one time, a source that
    /// stopped sending watermarks) could make them any number. When a
    /// pushed event makes more than `limit` wait, the watermark moves up
    /// to the earliest waiting event's time, as if a watermark had
    /// arrived: the events at that time are processed, and events that
    /// arrive later at or before it are late. Each time is counted in
    /// [`Stats::forced_watermarks`]. Pass `usize::MAX` for no limit; 0
    /// counts as 1. See `docs/semantics.md`, "The limit on waiting events".
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format, Item, Items};
    /// use cepheid_engine::{Arrival, Engine, Output, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new().max_waiting_events(2);
    /// engine.add(&Rules::parse("p.cep", "pattern p { match a where a: n > 0 }")?)?;
    /// // four events at one time: the third makes three wait
    /// let input = "{\"ts\":10,\"n\":1}\n{\"ts\":10,\"n\":2}\n{\"ts\":10,\"n\":3}\n{\"ts\":10,\"n\":4}\n";
    /// let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// let mut arrivals = Vec::new();
    /// for (_line, item) in Items::new("in.jsonl", input.as_bytes(), decoder) {
    ///     if let Item::Event(ts, record) = item? {
    ///         arrivals.push(engine.push(ts, record, &mut out));
    ///     }
    /// }
    /// assert_eq!(engine.stats().forced_watermarks, 1);
    /// assert_eq!(out.len(), 4); // three matches at once, then the late event
    /// assert_eq!(arrivals[3], Arrival::Late);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn max_waiting_events(mut self, limit: usize) -> Self {
        self.core.set_waiting_limit(limit);
        self
    }

    /// Compiles patterns for `E` and adds them: all of them, or none when
    /// one fails (a field `E` does not have, a pattern name already in the
    /// engine, ...; every problem is in the error). Patterns can be added at
    /// any time; a pattern added later sees the events pushed after it.
    ///
    /// A pattern of the builder without a [`name`](crate::builder::PatternBuilder::name)
    /// is `unnamed`; when the engine (or the set) has that name already it
    /// runs as `unnamed_2`, `unnamed_3`, ... (the first free), so that
    /// several can be added. A name that was given is never changed.
    ///
    /// ```
    /// use cepheid_engine::{Engine, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }")?)?;
    /// let again = engine.add(&Rules::parse("b.cep", "pattern a { match y where y: n > 2 }")?);
    /// assert!(again.unwrap_err().to_string().contains("already"));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn add<P: PatternSet<E> + ?Sized>(&mut self, patterns: &P) -> Result<(), Error> {
        let (compiled, mut fields) = self.compile(patterns, true)?;
        self.adopt_declarations(
            patterns.declarations(),
            compiled.iter().map(|nfa| nfa.pattern()),
            &mut fields,
        )?;
        let scenes = match patterns.scenes() {
            [] => Vec::new(),
            scenes => {
                let new: Vec<&Pattern> = compiled.iter().map(|nfa| nfa.pattern()).collect();
                self.compile_scenes(scenes, &new, &mut fields, true, patterns.texts())?
            }
        };
        for nfa in compiled {
            self.core
                .add(nfa, &mut fields)
                .expect("key fields resolved above");
        }
        self.fields = fields;
        if !scenes.is_empty() {
            self.add_scenes(scenes);
        }
        self.read_new_fields();
        Ok(())
    }

    /// Adds a pattern another engine compiled ([`automata`](Engine::automata)),
    /// sharing its automaton rather than compiling it again: the automaton
    /// is immutable, so engines on many threads can run one copy (a
    /// `cepheid_dataflow::Plan` compiles each pattern once for all its
    /// workers). It is shared when this engine's fields number what it
    /// reads as they did where it was compiled
    /// ([`Nfa::reads_alike`]) and the numbers of its conditions agree with
    /// this engine's ([`Cache::adopt_conditions`](crate::matcher::Cache::adopt_conditions));
    /// otherwise its pattern is compiled again for this engine, as
    /// [`add`](Engine::add) does (the same matches either way). Its name
    /// must be new in the engine.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cepheid_engine::{Engine, Record, Rules};
    /// let mut first: Engine<Record> = Engine::new();
    /// first.add(&Rules::parse("a.cep", "pattern a { match x where x: n > 1 }")?)?;
    /// let mut second: Engine<Record> = Engine::new();
    /// for nfa in first.automata() {
    ///     second.add_shared(nfa)?;
    /// }
    /// let (one, two) = (first.automata().next().unwrap(), second.automata().next().unwrap());
    /// assert!(Arc::ptr_eq(one, two));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn add_shared(&mut self, nfa: &Arc<Nfa<E>>) -> Result<(), Error> {
        let mut fields = self.fields.clone();
        // The key first, as `compile` resolves it (for a `FieldTable`, the
        // order in which new names are numbered).
        let key = nfa
            .pattern()
            .partition_by
            .iter()
            .try_for_each(|path| fields.resolve(path).map(drop));
        let alike = key.is_ok() && nfa.reads_alike(&mut fields);
        if !(alike && self.core.cache.adopts_conditions(nfa)) {
            return self.add(nfa.pattern());
        }
        let pattern = nfa.pattern();
        if self.patterns().any(|p| p.name == pattern.name) {
            let message = format!(
                "a pattern named `{}` is already in the engine",
                pattern.name
            );
            return Err(Error::new(ErrorKind::Pattern, message).with_span(pattern.span));
        }
        self.adopt_declarations(None, [pattern], &mut fields)?;
        self.core
            .add(Arc::clone(nfa), &mut fields)
            .map_err(|e| Error::new(ErrorKind::Field, e).with_span(pattern.span))?;
        self.fields = fields;
        self.read_new_fields();
        Ok(())
    }

    /// The automata of the patterns in force, in the order of
    /// [`patterns`](Engine::patterns): each compiled once, immutable, and
    /// shareable with other engines ([`add_shared`](Engine::add_shared)).
    pub fn automata(&self) -> impl Iterator<Item = &Arc<Nfa<E>>> {
        self.core
            .patterns
            .iter()
            .filter(|run| !run.draining)
            .map(|run| &run.automaton)
    }

    /// Compiles patterns for `E` with a copy of the engine's fields
    /// ([`Core::compile`]).
    pub(super) fn compile<P: PatternSet<E> + ?Sized>(
        &self,
        patterns: &P,
        fresh: bool,
    ) -> Result<Compiled<E>, Error> {
        self.core.compile(&self.fields, patterns, fresh)
    }

    /// How `E`'s field names become ids. For [`Record`] this is the
    /// [`FieldTable`](crate::record::FieldTable) decoders must share (make
    /// them from a clone of it, so that they read the fields the engine's
    /// patterns read, including patterns added later).
    pub fn fields(&self) -> &E::Fields {
        &self.fields
    }

    /// Takes one event in. It is late (and goes to [`Sink::on_late`]) when
    /// its time is at or below the watermark; otherwise it waits, and
    /// whatever the watermark has now passed is processed.
    pub fn push<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) -> Arrival {
        let arrival = self.core.push(ts, event, sink);
        self.core.reap();
        arrival
    }

    /// Takes one event in at its own time ([`Event::timestamp`]: for a
    /// `#[derive(Event)]` struct, the field marked `#[cepheid(time)]`), as
    /// [`push`](Engine::push)`(time, event, sink)` does.
    ///
    /// Fails with [`ErrorKind::Input`], the event dropped and the engine
    /// unchanged, when the event has no time: its type has no time field
    /// (a [`Record`] keeps none: use [`push`](Engine::push) or
    /// [`push_json`](Engine::push_json)), or the field is an `Option` that is `None`, or an
    /// unsigned value beyond `i64::MAX`.
    ///
    /// ```
    /// use cepheid_engine::{Arrival, Engine, Event, Output, Pattern, Timestamp};
    /// #[derive(Clone, Debug, Event)]
    /// struct Payment {
    ///     #[cepheid(time)]
    ///     at: Option<Timestamp>,
    ///     amount: i64,
    /// }
    /// let big = Pattern::<Payment>::begin("big").where_expr("amount > 100").build()?;
    /// let mut engine = Engine::<Payment>::new();
    /// engine.add(&big)?;
    /// let mut out: Vec<Output<Payment>> = Vec::new();
    /// assert_eq!(engine.push_event(Payment { at: Some(5), amount: 500 }, &mut out)?, Arrival::Accepted);
    /// let err = engine.push_event(Payment { at: None, amount: 500 }, &mut out).unwrap_err();
    /// assert!(err.to_string().contains("has no time"), "{err}");
    /// engine.finish(&mut out);
    /// assert_eq!(out.len(), 1);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn push_event<S: Sink<E> + ?Sized>(
        &mut self,
        event: E,
        sink: &mut S,
    ) -> Result<Arrival, Error> {
        match event.timestamp() {
            Some(ts) => Ok(self.push(ts, event, sink)),
            None => Err(Error::new(
                ErrorKind::Input,
                format!(
                    "the event has no time: `{}` gives none (mark an integer field \
                     `#[cepheid(time)]` and give it a value, or pass the time with \
                     `push(ts, event, sink)`)",
                    std::any::type_name::<E>()
                ),
            )),
        }
    }

    /// A punctuated watermark: every event at or below `t` has arrived.
    /// Moves event time to `t` (never backwards), processing waiting events
    /// and firing deadlines up to it. `watermark(Timestamp::MAX)` lets every
    /// window close.
    pub fn watermark<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, sink: &mut S) {
        self.core.watermark(t, sink);
        self.core.reap();
    }

    /// End of input: processes every waiting event and advances time to the
    /// largest event time seen, so windows that closed by then expire and
    /// later ones stay open (to close them all, call
    /// [`watermark`](Engine::watermark)`(Timestamp::MAX)` instead).
    pub fn finish<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        self.core.finish(sink);
        self.core.reap();
    }

    /// The time of the engine's earliest deadline (a window that ends, a
    /// `not followed by` that completes), `None` for none: the engine
    /// steps at no time before it but at an event's. (A dataflow worker
    /// promises no `then` write before its next step.)
    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        self.core.next_deadline()
    }

    /// The current watermark, `None` before the first event or watermark.
    pub fn current_watermark(&self) -> Option<Timestamp> {
        self.core.current_watermark()
    }

    /// The largest event time the engine has taken in, `None` before any.
    pub fn max_seen(&self) -> Option<Timestamp> {
        self.core.clock.max_seen()
    }

    /// What the engine has seen and produced so far.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Per pattern in force, in order ([`patterns`](Engine::patterns)):
    /// its name and version, the events that reached it (had its key),
    /// its matches, timeouts, live partial matches, and the partial
    /// matches the limits cut ([`PatternStats`], which says from when
    /// each counts). The counts are kept where things happen (a match, a
    /// timeout, an event without the key), nothing per event; this call
    /// counts the live partial matches, in time linear in the live
    /// partitions: meant for reports and metrics, not per event.
    ///
    /// ```
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let rules = Rules::parse("r.cep", r#"pattern ab {
    ///     partition by user
    ///     match a followed by b
    ///     where a: type == "a"
    ///           b: type == "b" }"#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// for line in [
    ///     r#"{"ts": 1, "user": "u", "type": "a"}"#,
    ///     r#"{"ts": 2, "type": "a"}"#,
    ///     r#"{"ts": 3, "user": "u", "type": "b"}"#,
    /// ] {
    ///     engine.push_json(line, "ts", &mut out)?;
    /// }
    /// engine.finish(&mut out);
    /// let stats = engine.pattern_stats();
    /// assert_eq!((stats[0].name.as_str(), stats[0].version), ("ab", 1));
    /// assert_eq!((stats[0].events, stats[0].unkeyed, stats[0].matches), (2, 1, 1));
    /// assert_eq!(
    ///     serde_json::to_value(&stats[0])?["matches"],
    ///     serde_json::json!(1)
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pattern_stats(&self) -> Vec<PatternStats> {
        self.core.pattern_stats()
    }

    /// The patterns in force, in order: in the order added, unless
    /// [`set_rules`](Engine::set_rules) gave another. (Old versions of
    /// replaced patterns that still drain are not among them.)
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.core.in_force()
    }

    /// Keys with partial matches, summed over all patterns.
    pub fn live_keys(&self) -> usize {
        self.core.live_partitions()
    }

    /// Partial matches held over all patterns and keys: runs that took an
    /// event, plus matches a skip strategy holds back (what
    /// [`max_live_runs`](Engine::max_live_runs) bounds).
    pub fn live_runs(&self) -> usize {
        self.core.live_runs()
    }

    /// Events waiting for the watermark.
    pub fn waiting_events(&self) -> usize {
        self.core.waiting_events()
    }

    /// Events held by partial matches.
    pub fn stored_events(&self) -> usize {
        self.core.stored_events()
    }

    /// An estimate of the bytes of state the engine holds: the stored
    /// events (those partial matches took) and the events waiting for the
    /// watermark, with what each holds on the heap
    /// ([`Event::heap_bytes`](crate::Event::heap_bytes): a [`Record`]'s
    /// text and values), the partial matches' nodes, each key's slot,
    /// value and partitions' runs, the deadlines. Storage kept for reuse
    /// (vacant slab entries, a queue's room) counts; the allocator's own
    /// overhead, the compiled patterns and a run's accumulators beyond
    /// their inline size do not. A walk over the held events and keys
    /// (nothing is counted per event processed): call it now and then
    /// (`cepheid run` does at most once a second), not per event.
    pub fn state_bytes(&self) -> u64 {
        self.core.state_bytes() as u64
    }
}
