//! [`Why`]: an engine that traces one key (`cepheid why`, issue 42): for
//! each pattern, the key's events that reached it, each partial match the
//! matcher held for the key with what ended it, and the key's late
//! events.
//!
//! It is the engine itself, over the whole stream (other keys, lists and
//! indicators, the limits all matter), made from a configured [`Engine`]
//! by [`Engine::why`]: each pattern's automaton is wrapped in one that,
//! when the partition it steps is the traced key's, looks at the
//! partition before and after the matcher's step and asks the matcher
//! what it decided for each partial match
//! ([`Executor::decide`](crate::matcher::Executor::decide)). What a trace
//! says ended a partial match is what the matcher did, not a derivation of
//! its own. A plain [`Engine`] has none of this: its automata are the
//! matcher's, and its code is not changed by the trace's (another
//! instance of the engine's generic core).
//!
//! A change of rules is followed ([`Why::set_rules`]: the engine's own
//! change, each new automaton wrapped as the others): a new pattern, or
//! a new version of a changed one, is traced apart from the old version
//! it drains beside; a pattern discarded has its partial matches ended
//! by the change ([`End::Discarded`]).
//!
//! A partial match is known by the events it took (their arrival
//! numbers): runs of the matcher with the same events (in different
//! states) are one partial match here, which ends when its last run does
//! (a limit that drops one of two such runs ends nothing yet). When a
//! partial match takes an event and also stays without it (a fork), the
//! one that took it is a new partial match, `from` the other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::automaton::{Automaton, Reporter};
use crate::engine::core::Core;
use crate::engine::front::{Engine, PatternSet};
use crate::engine::reload::{Changes, ReloadPolicy};
use crate::engine::sink::Sink;
use crate::event::{Event, FieldPath};
use crate::expr::Expr;
use crate::lookup::{IndicatorId, ListId, Lookup, LookupRef};
use crate::matcher::{Cache, EventRef, Executor, MatchSink, MatchView, Partition, SharedBuffer};
use crate::nfa::{Action, Edge, Nfa, StateId, StateKind};
use crate::pattern::Pattern;
use crate::primitives::{StageId, Timestamp};
use crate::value::{Value, ValueRef};

/// Which keys a trace follows: given a pattern's `partition by` fields
/// and a partition's key (its values, in that order), is it the key?
pub type KeyFilter = Box<dyn Fn(&[FieldPath], &[Value]) -> bool + Send>;

/// An engine that traces one key: made by [`Engine::why`], fed as an
/// engine is ([`push`](Why::push), [`watermark`](Why::watermark),
/// [`finish`](Why::finish); a service's run feeds it
/// [`request`](Why::request)s, changes of lists
/// ([`add_to_list_by`](Why::add_to_list_by)) and of rules
/// ([`set_rules`](Why::set_rules)), each by the plain engine's own code),
/// with the same output to its sink; its [`trace`](Why::trace) says what
/// happened to the key.
pub struct Why<E: Event + Clone + 'static> {
    core: Core<E, Traced<E>>,
    fields: E::Fields,
    watch: Arc<Mutex<Watch<E>>>,
    /// The requests the engine took and remembers ([`Why::request`]),
    /// the engine's own when it was made into this one.
    requests: Option<Box<super::requests::Requests>>,
}

/// The events of the traced key, by arrival number.
pub type Events<E> = BTreeMap<u64, (Timestamp, E)>;

/// What a trace found ([`Why::trace`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Trace<E> {
    /// The key's events that reached some pattern, by their arrival
    /// number (`seq` elsewhere in the trace): time and event.
    pub events: Events<E>,
    /// Per pattern, what happened to the key: in the engine's order when
    /// the trace began, then each pattern a change of rules added (a new
    /// name, or a new version of one: [`Why::set_rules`]).
    pub patterns: Vec<PatternTrace>,
    /// The key's late events: at or below the watermark when they came.
    pub late: Vec<LateEvent<E>>,
    /// The watermark at the end.
    pub watermark: Option<Timestamp>,
    /// What the lists and indicators left out at their limits or for
    /// their values over the whole run, every key's
    /// ([`Engine::left_out`]): an indicator a condition read may lack
    /// events the key had.
    pub left_out: crate::engine::LeftOut,
}

/// A late event of the traced key.
#[derive(Debug)]
#[non_exhaustive]
pub struct LateEvent<E> {
    /// Its time.
    pub ts: Timestamp,
    /// The event.
    pub event: E,
    /// The watermark it was at or below.
    pub watermark: Option<Timestamp>,
}

/// What happened to the traced key in one pattern.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PatternTrace {
    /// The pattern's name.
    pub name: String,
    /// Its version: 1 when its name was first added, +1 per change of
    /// rules that replaced its text (`docs/dynamic-rules.md`). Each
    /// version is traced apart, the old one's partial matches draining
    /// (or discarded) beside the new one's.
    pub version: u32,
    /// The pattern as this version ran (its stages, conditions and
    /// `partition by`).
    pub pattern: Option<Arc<Pattern>>,
    /// Does the pattern have a key the filter could take (a pattern
    /// without `partition by` has one partition for all events, not
    /// traced)?
    pub keyed: bool,
    /// The key's events that reached the pattern, in the order they did.
    pub reached: Vec<Reached>,
    /// The key's partial matches, in the order they started.
    pub runs: Vec<RunTrace>,
    /// What the pattern's conditions read of lists and indicators at each
    /// event of the key, by the event's arrival number (the lookups its
    /// matcher made when it decided on the event: a condition whose
    /// evaluation stopped before a list or an indicator read none). Empty
    /// for a pattern that reads no list and no indicator.
    pub reads: BTreeMap<u64, Vec<Read>>,
}

/// A lookup a condition made: a list's membership, or an indicator's
/// value, as the matcher read it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Read {
    /// `x in list`.
    List {
        /// The list's name.
        list: String,
        /// The value looked up.
        value: Value,
        /// Was it in the list (`None`: the value was null)?
        found: Option<bool>,
        /// Was it the list's shadow copy (a shadow pattern reads it,
        /// `docs/semantics.md`, "Shadow rules")?
        shadow: bool,
        /// When `found` is false and the value had an entry in the list
        /// that expired: when it did (its expiry; the latest, for a
        /// prefix or a network list).
        expired: Option<Timestamp>,
    },
    /// `name(k, ...)`.
    Indicator {
        /// The indicator's name.
        indicator: String,
        /// The group: one value per `group by` field.
        key: Vec<Value>,
        /// Its value at the event.
        value: Value,
    },
}

/// An event of the key offered to a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reached {
    /// Its arrival number.
    pub seq: u64,
    /// Its time.
    pub ts: Timestamp,
    /// Did it start a partial match (or a match at once)?
    pub started: bool,
    /// When it started nothing: the stages the start could have taken it
    /// into, whose conditions did not hold for it.
    pub not_taken: Vec<String>,
}

/// One partial match of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunTrace {
    /// Its number in the pattern's [`PatternTrace::runs`].
    pub id: usize,
    /// The partial match it forked from (it took an event the other
    /// stayed without).
    pub from: Option<usize>,
    /// The events it took: arrival number and stage, in order.
    pub events: Vec<(u64, String)>,
    /// What ended it (`None`: still under way at the end of the input).
    pub end: Option<End>,
}

/// What ended a partial match.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// It completed: a match (its last event is the one that completed
    /// it; at a time with `seq` `None`: a `not followed by` ending whose
    /// window closed, or a match a skip strategy held back until then).
    Matched {
        /// The event that completed it, if one did.
        seq: Option<u64>,
        /// When.
        at: Timestamp,
    },
    /// The complete match is held back by the skip strategy (emitted
    /// later or pruned; said when it is).
    Held {
        /// The event that completed it.
        seq: u64,
    },
    /// Its window (`within`) closed at `at`; `reported`: as a timeout
    /// record (the pattern asks for `timeouts`).
    WindowClosed {
        /// When the window closed.
        at: Timestamp,
        /// Was it reported as a timeout?
        reported: bool,
    },
    /// Event `seq` held for the negated stage `stage` (`not next`, `not
    /// followed by`): the partial match is discarded.
    Negation {
        /// The event.
        seq: u64,
        /// The negated stage.
        stage: String,
    },
    /// No edge of its state held for event `seq`: the conditions of the
    /// stages it could take the event into (`waiting`) did not hold, and
    /// it could not skip the event (strict contiguity, `next`).
    ConditionFailed {
        /// The event.
        seq: u64,
        /// The stages it waited for.
        waiting: Vec<String>,
    },
    /// Dropped by a limit on partial matches, at event `seq` (the
    /// per-key `max_runs_per_key`, or with `capped` the engine's
    /// `max_live_runs`).
    Dropped {
        /// The event whose step dropped it.
        seq: Option<u64>,
        /// Was it the limit over all keys?
        capped: bool,
    },
    /// Pruned by the pattern's skip strategy after a match (at event
    /// `seq`, or at a time).
    Pruned {
        /// The event whose step pruned it, if any.
        seq: Option<u64>,
    },
    /// Dropped by a change of rules made at time `at`
    /// ([`Why::set_rules`]): its pattern was removed, or replaced under
    /// [`ReloadPolicy::Restart`]
    /// (`docs/dynamic-rules.md`).
    Discarded {
        /// When the change was made (the watermark then + 1).
        at: Timestamp,
    },
    /// It completed at event `seq`, but the match is not made: the
    /// pattern is a rule's instance (`RULE@SCENE`), which fires only on
    /// the events of its scene, and the event does not enter that scene
    /// (`docs/semantics.md`, "Decisions"): no record, no firing, no
    /// `then` write. (A request enters the scene it names and no other.)
    NotMade {
        /// The event that completed it.
        seq: u64,
    },
}

/// The trace's state, shared by the traced automata.
struct Watch<E> {
    filter: KeyFilter,
    events: Events<E>,
    late: Vec<LateEvent<E>>,
    patterns: Vec<PatternTrace>,
    /// Per pattern: the partial matches under way (and held matches) by
    /// their events' arrival numbers.
    open: Vec<HashMap<Vec<u64>, usize>>,
    /// The time of the change of rules under way ([`Why::set_rules`]):
    /// when the partial matches it discards end.
    switch: Timestamp,
}

/// A pattern's automaton in a [`Why`]: the matcher's, with a look at the
/// traced key's partitions.
pub(super) struct Traced<E> {
    nfa: Arc<Nfa<E>>,
    index: usize,
    watch: Arc<Mutex<Watch<E>>>,
    /// The names of the lists and indicators its conditions read (none:
    /// its steps read nothing of the lookup, and record nothing).
    names: Option<Arc<Names>>,
}

/// The names of the lists and indicators a pattern reads, by number.
#[derive(Default)]
struct Names {
    lists: BTreeMap<ListId, Arc<str>>,
    indicators: BTreeMap<IndicatorId, Arc<str>>,
    shadow: bool,
}

impl Names {
    /// Those `pattern`'s conditions (stages' and `until`s') read; `None`
    /// when it reads none.
    fn of(pattern: &Pattern) -> Option<Arc<Names>> {
        let mut names = Names {
            shadow: pattern.shadow,
            ..Names::default()
        };
        let mut see = |e: &Expr| {
            e.walk(|e| match e {
                Expr::InList(_, list) => {
                    names.lists.insert(list.id, Arc::clone(&list.name));
                }
                Expr::Indicator(indicator, _) => {
                    names
                        .indicators
                        .insert(indicator.id, Arc::clone(&indicator.name));
                }
                _ => {}
            });
        };
        for stage in &pattern.stages {
            if let crate::pattern::Condition::Expr(e) = &stage.condition {
                see(e);
            }
        }
        let mut groups = vec![&pattern.sequence];
        while let Some(sequence) = groups.pop() {
            for element in &sequence.elements {
                match &element.kind {
                    crate::pattern::ElementKind::Group(inner) => groups.push(inner),
                    crate::pattern::ElementKind::Alternation(branches) => groups.extend(branches),
                    crate::pattern::ElementKind::Stage(_) => {}
                }
                if let Some(crate::pattern::Condition::Expr(e)) = &element.until {
                    see(e);
                }
            }
        }
        (!names.lists.is_empty() || !names.indicators.is_empty()).then(|| Arc::new(names))
    }
}

/// The engine's lookup, keeping what a traced step read of it.
struct Recorder<'l> {
    lookup: &'l dyn Lookup,
    names: &'l Names,
    read: std::cell::RefCell<Vec<Read>>,
}

impl Recorder<'_> {
    fn keep(&self, read: Read) {
        let mut kept = self.read.borrow_mut();
        if !kept.contains(&read) {
            kept.push(read);
        }
    }
}

impl Lookup for Recorder<'_> {
    fn contains(&self, list: ListId, value: ValueRef<'_>) -> Option<bool> {
        let found = self.lookup.contains(list, value);
        if let Some(name) = self.names.lists.get(&list) {
            let expired = match found {
                Some(false) => self.lookup.expired(list, value),
                _ => None,
            };
            self.keep(Read::List {
                list: name.to_string(),
                value: Value::from(value),
                found,
                shadow: self.names.shadow,
                expired,
            });
        }
        found
    }

    fn indicator(&self, id: IndicatorId, key: &[ValueRef<'_>]) -> Value {
        let value = self.lookup.indicator(id, key);
        if let Some(name) = self.names.indicators.get(&id) {
            self.keep(Read::Indicator {
                indicator: name.to_string(),
                key: key.iter().map(|&k| Value::from(k)).collect(),
                value: value.clone(),
            });
        }
        value
    }
}

impl<E: Event + Clone + 'static> Engine<E> {
    /// This engine (its patterns, lists, limits and configuration), as one
    /// that traces the key `filter` takes ([`Why`]). Meant for an engine
    /// that has seen no event yet (`cepheid why` runs the whole input
    /// through it).
    ///
    /// ```
    /// use cepheid_engine::{Engine, Record, Rules, Value};
    /// use cepheid_engine::engine::why::End;
    /// use cepheid_decode::{Decoder, Format, Item};
    /// let rules = Rules::parse("r.cep", r#"pattern p {
    ///     partition by user within 1m
    ///     match a next b where a: kind == "a" b: kind == "b" }"#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    /// let mut why = engine.why(Box::new(|_, key| key == [Value::from("u1")]));
    /// let mut out: Vec<cepheid_engine::Output<Record>> = Vec::new();
    /// for line in [
    ///     r#"{"ts": 1, "kind": "a", "user": "u1"}"#,
    ///     r#"{"ts": 2, "kind": "c", "user": "u1"}"#,
    /// ] {
    ///     if let Item::Event(ts, record) = decoder.decode(line.as_bytes())? {
    ///         why.push(ts, record, &mut out);
    ///     }
    /// }
    /// why.finish(&mut out);
    /// let trace = why.trace();
    /// let run = &trace.patterns[0].runs[0];
    /// assert!(matches!(&run.end, Some(End::ConditionFailed { waiting, .. }) if waiting == &["b"]));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn why(mut self, filter: KeyFilter) -> Why<E> {
        // (what the lists sweep at its expiry kept: a `false` lookup says
        // that the value's entry had expired, and when)
        self.core.memory.keep_expired();
        let mut watch = Watch {
            filter,
            events: BTreeMap::new(),
            late: Vec::new(),
            open: Vec::new(),
            patterns: Vec::new(),
            switch: Timestamp::MIN,
        };
        for run in &self.core.patterns {
            let p = watch.add_pattern(run.automaton.pattern());
            watch.patterns[p].version = run.meta.version;
        }
        let watch = Arc::new(Mutex::new(watch));
        let mut index = 0;
        let core = self.core.map_automata(|nfa| {
            index += 1;
            Traced {
                names: Names::of(nfa.pattern()),
                nfa,
                index: index - 1,
                watch: Arc::clone(&watch),
            }
        });
        Why {
            core,
            fields: self.fields,
            watch,
            requests: self.requests,
        }
    }
}

impl<E: Event + Clone + 'static> Why<E> {
    /// The engine's fields (a decoder of [`Record`](crate::Record)s shares
    /// them: `Decoder::new(.., why.fields().clone())`).
    pub fn fields(&self) -> &E::Fields {
        &self.fields
    }

    /// [`Engine::push`]; a late event of the traced key is kept with the
    /// watermark.
    pub fn push<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        sink: &mut S,
    ) -> crate::engine::Arrival {
        let watermark = self.core.current_watermark();
        let traced = {
            let watch = lock(&self.watch);
            (self.core.keys_of(&event).iter()).any(|(paths, key)| {
                !paths.is_empty() && key.as_ref().is_some_and(|key| (watch.filter)(paths, key))
            })
        };
        // (kept in case the engine finds it late)
        let copy = traced.then(|| event.clone());
        let arrival = self.core.push(ts, event, sink);
        self.core.reap();
        if let (Some(event), crate::engine::Arrival::Late) = (copy, arrival) {
            lock(&self.watch).late.push(LateEvent {
                ts,
                event,
                watermark,
            });
        }
        arrival
    }

    /// [`Engine::request`]: `event` taken at once as the request
    /// `request` at `now` (into the scene it names and no other, or into
    /// none; a remembered id answered from memory and not taken again),
    /// by the same code as a plain engine's. A request's event is never
    /// late (it takes the time just past the watermark when `now` is not
    /// past it).
    pub fn request<S: Sink<E> + ?Sized>(
        &mut self,
        now: Timestamp,
        request: super::requests::Request,
        event: E,
        sink: &mut S,
    ) -> super::requests::Answer {
        super::requests::take(
            &mut self.core,
            &mut self.requests,
            now,
            (request, event),
            sink,
        )
    }

    /// [`Engine::add_to_list_by`]: `origin` holds `value` in list `list`
    /// from event time `at` until `until`, as a plain engine takes the
    /// change (a service's log changes its lists at their place).
    pub fn add_to_list_by(
        &mut self,
        origin: &crate::engine::EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<(), crate::Error> {
        let op = (crate::lookup::WriteOp::Add, origin.clone());
        self.core.change_list(list, op, value, at, (None, until))
    }

    /// [`Engine::remove_from_list_by`]: `origin`'s hold of `value` in list
    /// `list` ends at event time `at`, as a plain engine takes the change.
    pub fn remove_from_list_by(
        &mut self,
        origin: &crate::engine::EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
    ) -> Result<(), crate::Error> {
        let op = (crate::lookup::WriteOp::Remove, origin.clone());
        self.core.change_list(list, op, value, at, (None, None))
    }

    /// [`Engine::set_rules`]: the rules become `patterns` at the
    /// watermark, by the same code as a plain engine's change (a
    /// service's log changes its rules at their place). A pattern whose
    /// text the change keeps goes on as it was traced; a new one, or a
    /// new version of a changed one, is traced as a pattern of its own
    /// ([`PatternTrace::version`]) after the others, beside the old
    /// version, which drains; a pattern removed, or replaced under
    /// [`ReloadPolicy::Restart`], is discarded: its partial matches of the
    /// key end as [`End::Discarded`] (the matches a skip strategy held
    /// back behind them are made, as [`End::Matched`] at that time).
    pub fn set_rules<P: PatternSet<E> + ?Sized, S: Sink<E> + ?Sized>(
        &mut self,
        patterns: &P,
        policy: ReloadPolicy,
        sink: &mut S,
    ) -> Result<Changes, crate::Error> {
        let switch =
            (self.core.current_watermark()).map_or(Timestamp::MIN, |w| w.saturating_add(1));
        lock(&self.watch).switch = switch;
        let watch = Arc::clone(&self.watch);
        let mut make = |nfa: Arc<Nfa<E>>, replaces: Option<&Traced<E>>| {
            let mut w = lock(&watch);
            let index = match replaces {
                // (the same states, a `shadow` mark given or taken: its
                // partial matches go on in it, traced as they were)
                Some(old) => old.index,
                None => w.add_pattern(nfa.pattern()),
            };
            w.patterns[index].pattern = Some(Arc::new(nfa.pattern().clone()));
            drop(w);
            Traced {
                names: Names::of(nfa.pattern()),
                nfa,
                index,
                watch: Arc::clone(&watch),
            }
        };
        let fields = &mut self.fields;
        let changes = (self.core).set_rules(fields, patterns, policy, &mut make, sink)?;
        let mut w = lock(&self.watch);
        for run in &self.core.patterns {
            w.patterns[run.automaton.index].version = run.meta.version;
        }
        Ok(changes)
    }

    /// [`Engine::watermark`].
    pub fn watermark<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, sink: &mut S) {
        self.core.watermark(t, sink);
        self.core.reap();
    }

    /// [`Engine::finish`].
    pub fn finish<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        self.core.finish(sink);
        self.core.reap();
    }

    /// The current watermark.
    pub fn current_watermark(&self) -> Option<Timestamp> {
        self.core.current_watermark()
    }

    /// What the trace found so far.
    pub fn trace(&self) -> Trace<E> {
        let watch = lock(&self.watch);
        Trace {
            events: watch.events.clone(),
            patterns: watch.patterns.clone_traces(),
            late: (watch.late.iter())
                .map(|l| LateEvent {
                    ts: l.ts,
                    event: l.event.clone(),
                    watermark: l.watermark,
                })
                .collect(),
            watermark: self.core.current_watermark(),
            left_out: self.core.memory.left_out.clone(),
        }
    }
}

/// Clones of pattern traces (a trait for the slice: `PatternTrace` has no
/// `Clone` of its own to keep it open to fields that may not clone).
trait CloneTraces {
    fn clone_traces(&self) -> Vec<PatternTrace>;
}

impl CloneTraces for Vec<PatternTrace> {
    fn clone_traces(&self) -> Vec<PatternTrace> {
        (self.iter())
            .map(|p| PatternTrace {
                name: p.name.clone(),
                version: p.version,
                pattern: p.pattern.clone(),
                keyed: p.keyed,
                reached: p.reached.clone(),
                runs: p.runs.clone(),
                reads: p.reads.clone(),
            })
            .collect()
    }
}

fn lock<E>(watch: &Mutex<Watch<E>>) -> MutexGuard<'_, Watch<E>> {
    watch
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A partial match as the trace knows it: its events' arrival numbers,
/// and their stages.
type Chain = (Vec<u64>, Vec<StageId>);

/// The events (arrival numbers and stages) of the run ending at `node`.
fn chain_of<E>(buf: &SharedBuffer<E>, node: crate::matcher::NodeRef) -> Chain {
    let pairs = buf.chain(node);
    let seqs = pairs.iter().map(|&(_, ev)| buf.sequence(ev)).collect();
    let stages = pairs.iter().map(|&(stage, _)| stage).collect();
    (seqs, stages)
}

/// What the matcher emitted during a traced step.
#[derive(Default)]
struct Emitted {
    matches: Vec<Chain>,
    /// Complete matches the engine does not make (an instance's, on an
    /// event outside its scene: [`End::NotMade`]).
    not_made: Vec<Chain>,
    timeouts: Vec<(Chain, Timestamp)>,
    dropped: Vec<(Chain, bool)>,
}

/// Passes the matcher's output on to the engine's reporter, keeping what
/// a traced step emitted.
struct Tap<'r, R: ?Sized> {
    out: &'r mut R,
    seen: Option<&'r mut Emitted>,
}

impl<E: Event + Clone + 'static, R: Reporter<E, Traced<E>> + ?Sized> MatchSink<E> for Tap<'_, R> {
    fn on_match(&mut self, m: &MatchView<'_, E>) {
        if let Some(seen) = &mut self.seen {
            match self.out.holds_back(m) {
                true => seen.not_made.push(view_chain(m)),
                false => seen.matches.push(view_chain(m)),
            }
        }
        self.out.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchView<'_, E>, expired_at: Timestamp) {
        if let Some(seen) = &mut self.seen {
            seen.timeouts.push((view_chain(m), expired_at));
        }
        self.out.on_timeout(m, expired_at);
    }

    fn on_dropped(&mut self, m: &MatchView<'_, E>) {
        if let Some(seen) = &mut self.seen {
            seen.dropped.push((view_chain(m), self.out.capped()));
        }
        self.out.on_dropped(m);
    }
}

fn view_chain<E>(m: &MatchView<'_, E>) -> Chain {
    let buf = m.buffer();
    let pairs = m.events();
    let seqs = pairs.iter().map(|&(_, ev)| buf.sequence(ev)).collect();
    let stages = pairs.iter().map(|&(stage, _)| stage).collect();
    (seqs, stages)
}

/// A partition's partial matches and held matches, as chains.
struct Snapshot {
    live: Vec<Chain>,
    held: Vec<Chain>,
}

fn snapshot<E>(part: &Partition, buf: &SharedBuffer<E>) -> Snapshot {
    let mut live: Vec<Chain> = part.partial_runs().map(|r| chain_of(buf, r.node)).collect();
    live.sort();
    live.dedup();
    let mut held: Vec<Chain> = part.held_runs().map(|r| chain_of(buf, r.node)).collect();
    held.sort();
    held.dedup();
    Snapshot { live, held }
}

impl Snapshot {
    fn has(&self, seqs: &[u64]) -> bool {
        self.live.iter().any(|(s, _)| s == seqs)
    }

    fn holds(&self, seqs: &[u64]) -> bool {
        self.held.iter().any(|(s, _)| s == seqs)
    }
}

/// What the matcher decided for one partial match before a step.
#[derive(Default)]
struct Decided {
    /// No edge at all, for any of its runs.
    none: bool,
    /// A negation's stop state was reached: the negated stage.
    negation: Option<StageId>,
    /// The stages its runs' states could take the event into.
    waiting: Vec<StageId>,
}

impl<E: Event + Clone + 'static> Traced<E> {
    /// Is `out`'s partition the traced key's?
    fn traced<R: Reporter<E, Self> + ?Sized>(&self, out: &R) -> bool {
        let paths = &self.nfa.pattern().partition_by;
        !paths.is_empty()
            && out
                .key()
                .is_some_and(|key| (lock(&self.watch).filter)(paths, key))
    }

    fn name(&self, stage: StageId) -> String {
        (self.nfa.pattern().stages.get(stage.index())).map_or_else(String::new, |s| s.name.clone())
    }

    /// The stages a run in `state` may take an event into: its own (by a
    /// TAKE), and those of the states its PROCEED edges reach.
    fn waiting(&self, state: StateId) -> Vec<StageId> {
        let mut stages = Vec::new();
        let mut seen = vec![state];
        let mut stack = vec![state];
        while let Some(s) = stack.pop() {
            let st = self.nfa.state(s);
            for t in &st.transitions {
                match t.action {
                    Action::Take => stages.extend(st.stage),
                    Action::Proceed if !seen.contains(&t.target) => {
                        seen.push(t.target);
                        stack.push(t.target);
                    }
                    _ => {}
                }
            }
        }
        stages.sort();
        stages.dedup();
        stages
    }

    /// What the matcher decides for each partial match of `part` and the
    /// event, by chain.
    fn decide(
        &self,
        exec: &mut Executor<'_, E>,
        part: &Partition,
        buf: &SharedBuffer<E>,
        event: EventRef,
    ) -> Vec<(Vec<u64>, Decided)> {
        let mut decided: Vec<(Vec<u64>, Decided)> = Vec::new();
        for run in part.partial_runs() {
            let edges = exec.decide(run, buf, event);
            let (seqs, _) = chain_of(buf, run.node);
            let i = match decided.iter().position(|(s, _)| *s == seqs) {
                Some(i) => i,
                None => {
                    decided.push((
                        seqs,
                        Decided {
                            none: true,
                            ..Decided::default()
                        },
                    ));
                    decided.len() - 1
                }
            };
            let d = &mut decided[i].1;
            d.none &= edges.is_empty();
            if let Some(stop) = edges.iter().find(|e| stops(e)) {
                d.negation = d.negation.or(self.nfa.state(stop.target).stage);
            }
            for stage in self.waiting(run.state) {
                if !d.waiting.contains(&stage) {
                    d.waiting.push(stage);
                }
            }
        }
        decided
    }
}

/// Does `edge` discard its run (into a negation's stop state)?
fn stops(edge: &Edge) -> bool {
    edge.kind == StateKind::Stop
        && match edge.action {
            Action::Ignore => true,
            Action::Take => edge.stage.is_some(),
            Action::Proceed => false,
        }
}

impl<E> Watch<E> {
    /// Traces `pattern` (of version 1 until said otherwise): its number
    /// among the traced patterns.
    fn add_pattern(&mut self, pattern: &Pattern) -> usize {
        self.patterns.push(PatternTrace {
            name: pattern.name.clone(),
            version: 1,
            pattern: Some(Arc::new(pattern.clone())),
            keyed: !pattern.partition_by.is_empty(),
            ..PatternTrace::default()
        });
        self.open.push(HashMap::new());
        self.patterns.len() - 1
    }
}

impl<E: Event + Clone + 'static> Watch<E> {
    /// The open partial match of pattern `p` with events `seqs`, or a new
    /// one (forked from `from`).
    fn entry(&mut self, p: usize, seqs: &[u64], from: Option<usize>) -> usize {
        if let Some(&id) = self.open[p].get(seqs) {
            return id;
        }
        let runs = &mut self.patterns[p].runs;
        let id = runs.len();
        runs.push(RunTrace {
            id,
            from,
            events: Vec::new(),
            end: None,
        });
        self.open[p].insert(seqs.to_vec(), id);
        id
    }

    /// Ends partial match `id` of pattern `p` (its chain `seqs` no longer
    /// open).
    fn end(&mut self, p: usize, seqs: &[u64], end: End) {
        if let Some(id) = self.open[p].remove(seqs) {
            self.patterns[p].runs[id].end = Some(end);
        }
    }
}

impl<E: Event + Clone + 'static> Traced<E> {
    /// Sets the events of partial match `id` of the trace to `chain`'s.
    fn set_events(&self, w: &mut Watch<E>, id: usize, chain: &Chain) {
        w.patterns[self.index].runs[id].events = (chain.0.iter().zip(&chain.1))
            .map(|(&s, &st)| (s, self.name(st)))
            .collect();
    }

    /// The partial matches of the trace for the chains new after a step of
    /// event `seq`: a chain that took the event continues its parent's
    /// partial match when the parent is gone (no run of it left, nor ended
    /// by the step's own output), or forks it; any other is new.
    fn take_new(&self, w: &mut Watch<E>, seq: u64, after: &Snapshot, emitted: &Emitted) {
        let p = self.index;
        let ends_itself = |c: &[u64]| {
            (emitted.matches.iter().chain(&emitted.not_made)).any(|m| m.0 == c)
                || emitted.dropped.iter().any(|(d, _)| d.0 == c)
        };
        let mut new: Vec<&Chain> = Vec::new();
        let dropped = emitted.dropped.iter().map(|(c, _)| c);
        for c in (after.live.iter().chain(&after.held))
            .chain(&emitted.matches)
            .chain(&emitted.not_made)
            .chain(dropped)
        {
            if !w.open[p].contains_key(&c.0) && !new.iter().any(|n| n.0 == c.0) {
                new.push(c);
            }
        }
        let mut moved: HashMap<&[u64], usize> = HashMap::new();
        for c in new {
            let parent = &c.0[..c.0.len().saturating_sub(1)];
            let took = c.0.last() == Some(&seq) && !parent.is_empty();
            let id = match (took, moved.get(parent), w.open[p].get(parent).copied()) {
                (true, Some(&id), _) => w.entry(p, &c.0, Some(id)),
                (true, None, Some(id)) => {
                    if after.has(parent) || after.holds(parent) || ends_itself(parent) {
                        w.entry(p, &c.0, Some(id))
                    } else {
                        w.open[p].remove(parent);
                        w.open[p].insert(c.0.clone(), id);
                        moved.insert(parent, id);
                        id
                    }
                }
                _ => w.entry(p, &c.0, None),
            };
            self.set_events(w, id, c);
        }
    }

    /// Records a traced step of the event `seq` (at `ts`): the partition
    /// `before` and `after`, what the matcher decided for each partial
    /// match, what it emitted, and what it decided for the start.
    #[allow(clippy::too_many_arguments)]
    fn record_step(
        &self,
        seq: u64,
        ts: Timestamp,
        before: &Snapshot,
        after: &Snapshot,
        decided: &[(Vec<u64>, Decided)],
        emitted: &Emitted,
        start: &[Edge],
    ) {
        let p = self.index;
        let mut w = lock(&self.watch);
        let w = &mut *w;
        self.take_new(w, seq, after, emitted);
        let stays = |c: &[u64]| after.has(c) || after.holds(c);
        let made = (emitted.matches.iter()).map(|m| {
            (
                m,
                End::Matched {
                    seq: Some(seq),
                    at: ts,
                },
            )
        });
        let not_made = (emitted.not_made.iter()).map(|m| (m, End::NotMade { seq }));
        for (m, end) in made.chain(not_made) {
            if stays(&m.0) {
                // (its runs go on, a looping stage: the match is a fork)
                let from = w.open[p].get(&m.0).copied();
                let runs = &mut w.patterns[p].runs;
                let id = runs.len();
                runs.push(RunTrace {
                    id,
                    from,
                    events: Vec::new(),
                    end: Some(end),
                });
                self.set_events(w, id, m);
            } else {
                w.end(p, &m.0, end);
            }
        }
        for (chain, capped) in &emitted.dropped {
            // (another run with the same events may stay: the partial
            // match goes on)
            if !stays(&chain.0) {
                let end = End::Dropped {
                    seq: Some(seq),
                    capped: *capped,
                };
                w.end(p, &chain.0, end);
            }
        }
        // Complete matches held back by the skip strategy (open: emitted
        // or pruned later).
        for chain in &after.held {
            if !before.holds(&chain.0) {
                if let Some(&id) = w.open[p].get(&chain.0) {
                    w.patterns[p].runs[id].end = Some(End::Held { seq });
                }
            }
        }
        // Partial matches the step ended.
        for (seqs, _) in &before.live {
            if stays(seqs) || !w.open[p].contains_key(seqs) {
                continue;
            }
            let d = decided.iter().find(|(s, _)| s == seqs).map(|(_, d)| d);
            let end = match d {
                Some(d) if d.negation.is_some() => End::Negation {
                    seq,
                    stage: d.negation.map(|s| self.name(s)).unwrap_or_default(),
                },
                Some(d) if d.none => End::ConditionFailed {
                    seq,
                    waiting: d.waiting.iter().map(|&s| self.name(s)).collect(),
                },
                _ => End::Pruned { seq: Some(seq) },
            };
            w.end(p, seqs, end);
        }
        self.held_released(w, before, after, Some(seq));
        self.reached(w, seq, ts, after, emitted, start);
    }

    /// Records that event `seq` reached the pattern: whether it started a
    /// partial match, and if not the stages the start waited for.
    fn reached(
        &self,
        w: &mut Watch<E>,
        seq: u64,
        ts: Timestamp,
        after: &Snapshot,
        emitted: &Emitted,
        start: &[Edge],
    ) {
        let p = self.index;
        let mut started = after.live.iter().chain(&after.held).any(|c| c.0 == [seq])
            || (emitted.matches.iter().chain(&emitted.not_made)).any(|m| m.0.first() == Some(&seq))
            || emitted.dropped.iter().any(|(c, _)| c.0 == [seq]);
        // The start took the event, and its partial match is gone within
        // the step: the skip strategy pruned it (a drop is said above).
        let took = start.iter().find(|e| e.action == Action::Take && !stops(e));
        if let (false, Some(stage)) = (started, took.and_then(|e| e.stage)) {
            let id = w.entry(p, &[seq], None);
            w.open[p].remove(&[seq][..]);
            let run = &mut w.patterns[p].runs[id];
            run.events = vec![(seq, self.name(stage))];
            run.end = Some(End::Pruned { seq: Some(seq) });
            started = true;
        }
        let not_taken = if started || !start.is_empty() {
            Vec::new()
        } else {
            let state = self.nfa.start();
            (self.waiting(state).into_iter())
                .map(|s| self.name(s))
                .collect()
        };
        w.patterns[p].reached.push(Reached {
            seq,
            ts,
            started,
            not_taken,
        });
    }

    /// Held matches gone from the partition without a match: pruned by
    /// the skip strategy. (Those emitted were ended as matches already.)
    fn held_released(
        &self,
        w: &mut Watch<E>,
        before: &Snapshot,
        after: &Snapshot,
        seq: Option<u64>,
    ) {
        let p = self.index;
        for (seqs, _) in &before.held {
            if !after.holds(seqs) && w.open[p].contains_key(seqs) {
                w.end(p, seqs, End::Pruned { seq });
            }
        }
    }

    /// Records the matches emitted at time `t`, not at an event (a
    /// deadline's, or those a change of rules released).
    fn matched_at(&self, w: &mut Watch<E>, emitted: &Emitted, t: Timestamp) {
        let p = self.index;
        for m in &emitted.matches {
            let id = w.entry(p, &m.0, None);
            self.set_events(w, id, m);
            w.patterns[p].runs[id].end = Some(End::Matched { seq: None, at: t });
            w.open[p].remove(&m.0);
        }
        // (a match made at a time holds no event under way: the engine
        // makes it whatever scene, and none is held back here; one would
        // end as not made at its last event)
        for m in &emitted.not_made {
            let id = w.entry(p, &m.0, None);
            self.set_events(w, id, m);
            let seq = m.0.last().copied().unwrap_or_default();
            w.patterns[p].runs[id].end = Some(End::NotMade { seq });
            w.open[p].remove(&m.0);
        }
    }

    /// Records a traced discard of the partition by a change of rules
    /// (its partition `before`, what the discard emitted): the matches
    /// held back behind its partial matches made, the partial matches
    /// dropped.
    fn record_discard(&self, before: &Snapshot, emitted: &Emitted) {
        let p = self.index;
        let mut w = lock(&self.watch);
        let w = &mut *w;
        let at = w.switch;
        self.matched_at(w, emitted, at);
        let empty = Snapshot {
            live: Vec::new(),
            held: Vec::new(),
        };
        self.held_released(w, before, &empty, None);
        for (seqs, _) in &before.live {
            w.end(p, seqs, End::Discarded { at });
        }
    }

    /// Records a traced advance of time to `t` (the partition's earliest
    /// deadline before it was `deadline`).
    fn record_time(
        &self,
        t: Timestamp,
        deadline: Option<Timestamp>,
        before: &Snapshot,
        after: &Snapshot,
        emitted: &Emitted,
    ) {
        let p = self.index;
        let mut w = lock(&self.watch);
        let w = &mut *w;
        self.matched_at(w, emitted, t);
        for (chain, at) in &emitted.timeouts {
            w.end(
                p,
                &chain.0,
                End::WindowClosed {
                    at: *at,
                    reported: true,
                },
            );
        }
        for (seqs, _) in &before.live {
            if !after.has(seqs) && w.open[p].contains_key(seqs) {
                let at = deadline.unwrap_or(t);
                w.end(
                    p,
                    seqs,
                    End::WindowClosed {
                        at,
                        reported: false,
                    },
                );
            }
        }
        self.held_released(w, before, after, None);
    }
}

impl<E: Event + Clone + 'static> Traced<E> {
    /// The matcher's step of `event` in the traced key's `part` (reading
    /// `lookup`), and what it did to the key's partial matches.
    #[allow(clippy::too_many_arguments)]
    fn step<R: Reporter<E, Self> + ?Sized>(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        cache: &mut Cache,
        lookup: &dyn Lookup,
        limit: usize,
        starts: bool,
        event: EventRef,
        out: &mut R,
    ) -> isize {
        let mut exec = Executor::new(&self.nfa, cache)
            .with_lookup(lookup)
            .with_exact_run_limit(limit);
        if !starts {
            exec = exec.without_start();
        }
        let before = snapshot(part, store);
        let decided = self.decide(&mut exec, part, store, event);
        let start = if starts {
            exec.decide_start(store, event)
        } else {
            Vec::new()
        };
        let mut emitted = Emitted::default();
        let mut tap = Tap {
            out,
            seen: Some(&mut emitted),
        };
        let mut change = exec.process_in_event(part, store, event, &mut tap);
        if limit == 0 {
            // (the engine's cap left the key no room)
            let held = part.partial_matches();
            exec.enforce_limit(part, store, &mut tap);
            change += part.partial_matches() as isize - held as isize;
        }
        let (seq, ts) = (store.sequence(event), store.timestamp(event));
        lock(&self.watch)
            .events
            .entry(seq)
            .or_insert_with(|| (ts, store.get(event).clone()));
        let after = snapshot(part, store);
        self.record_step(seq, ts, &before, &after, &decided, &emitted, &start);
        change
    }

    /// Keeps what the traced step of event `seq` read of lists and
    /// indicators.
    fn keep_reads(&self, seq: u64, read: Vec<Read>) {
        if read.is_empty() {
            return;
        }
        let mut w = lock(&self.watch);
        let reads = w.patterns[self.index].reads.entry(seq).or_default();
        for r in read {
            if !reads.contains(&r) {
                reads.push(r);
            }
        }
    }
}

impl<E: Event + Clone + 'static> Automaton<E> for Traced<E> {
    type Partition = Partition;
    type Store = SharedBuffer<E>;
    type Cache = Cache;
    type View<'s>
        = MatchView<'s, E>
    where
        E: 's;

    fn pattern(&self) -> &Pattern {
        self.nfa.pattern()
    }

    fn share(&mut self, cache: &mut Cache) -> bool {
        <Arc<Nfa<E>> as Automaton<E>>::share(&mut self.nfa, cache)
    }

    fn is_shared(&mut self) -> bool {
        <Arc<Nfa<E>> as Automaton<E>>::is_shared(&mut self.nfa)
    }

    fn begin_event(cache: &mut Cache) {
        cache.next_event();
    }

    fn advance_time<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        t: Timestamp,
        out: &mut R,
    ) -> isize {
        let traced = part.due(t) && self.traced(out);
        if !traced {
            let mut tap = Tap { out, seen: None };
            return Executor::new(&self.nfa, cache)
                .with_lookup(lookup.lookup())
                .advance_time_counted(part, store, t, &mut tap);
        }
        let deadline = part.next_deadline();
        let before = snapshot(part, store);
        let mut emitted = Emitted::default();
        let mut tap = Tap {
            out,
            seen: Some(&mut emitted),
        };
        let change = Executor::new(&self.nfa, cache)
            .with_lookup(lookup.lookup())
            .advance_time_counted(part, store, t, &mut tap);
        let after = snapshot(part, store);
        self.record_time(t, deadline, &before, &after, &emitted);
        change
    }

    fn compact_store(
        store: &mut SharedBuffer<E>,
        partitions: impl FnOnce(&mut dyn FnMut(&mut Partition)),
    ) {
        <Arc<Nfa<E>> as Automaton<E>>::compact_store(store, partitions);
    }

    // (no start guard, and every event may start: each event of the key
    // reaches the traced partition's step, where what the matcher decides
    // for it is seen; the same matches as with the guard, which only
    // spares steps that change nothing)

    fn process<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        limit: usize,
        starts: bool,
        event: EventRef,
        out: &mut R,
    ) -> isize {
        if !self.traced(out) {
            // (another key's step: the matcher's, as a plain engine's)
            let mut exec = Executor::new(&self.nfa, cache)
                .with_lookup(lookup.lookup())
                .with_exact_run_limit(limit);
            if !starts {
                exec = exec.without_start();
            }
            let mut tap = Tap { out, seen: None };
            let mut change = exec.process_in_event(part, store, event, &mut tap);
            if limit == 0 {
                // (the engine's cap left the key no room)
                let held = part.partial_matches();
                exec.enforce_limit(part, store, &mut tap);
                change += part.partial_matches() as isize - held as isize;
            }
            return change;
        }
        // (a traced step of a pattern that reads lists or indicators reads
        // them through a recorder: what its conditions read is kept)
        let Some(names) = self.names.as_deref() else {
            return self.step(
                part,
                store,
                cache,
                lookup.lookup(),
                limit,
                starts,
                event,
                out,
            );
        };
        let recorder = Recorder {
            lookup: lookup.lookup(),
            names,
            read: std::cell::RefCell::new(Vec::new()),
        };
        let change = self.step(part, store, cache, &recorder, limit, starts, event, out);
        self.keep_reads(store.sequence(event), recorder.read.into_inner());
        change
    }

    fn discard<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        out: &mut R,
    ) -> usize {
        let mut exec = Executor::new(&self.nfa, cache).with_lookup(lookup.lookup());
        if !self.traced(out) {
            return exec.discard(part, store, &mut Tap { out, seen: None });
        }
        let before = snapshot(part, store);
        let mut emitted = Emitted::default();
        let tap = &mut Tap {
            out,
            seen: Some(&mut emitted),
        };
        let discarded = exec.discard(part, store, tap);
        self.record_discard(&before, &emitted);
        discarded
    }

    fn partial_matches(part: &Partition) -> usize {
        part.partial_matches()
    }

    fn partition_heap_bytes(part: &Partition) -> usize {
        part.heap_bytes()
    }

    fn is_empty(part: &Partition) -> bool {
        part.is_empty()
    }

    fn next_deadline(part: &Partition) -> Option<Timestamp> {
        part.next_deadline()
    }
}
