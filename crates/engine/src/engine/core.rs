//! [`Engine`]: many patterns over one stream, in event time, per key.

use hashbrown::{HashMap, HashSet};

use crate::engine::automaton::{Automaton, EventStore, Reporter};
use crate::engine::clock::Clock;
use crate::engine::deadlines::{DeadlineIndex, Entry};
use crate::engine::decide::{Collect, Decide};
use crate::engine::memory::{Change, Memory, ShadowView};
use crate::engine::partitions::{merge_fresh, KeyHasher, Keys, Ordinals, Part, Parts, HOLE};
use crate::engine::sink::{MatchAccess, MatchContext, MatchRef, Sink};
use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::lookup::{Lookup, LookupRef, NoLookup};
use crate::pattern::{NativeKeyFn, Pattern};
use crate::primitives::Timestamp;
use crate::value::{key_part, KeyValue, Value};

/// [`PatternRun::skip_to`] of the patterns' last run of one group: past
/// every pattern.
pub(super) const PAST_ALL: usize = usize::MAX;

/// Counters of what an engine has seen and produced. With `serde`: an
/// object of these counters by their field names (for reports and
/// metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Events pushed (late ones included).
    pub events: u64,
    /// Late events.
    pub late: u64,
    /// Complete matches.
    pub matches: u64,
    /// Timed-out partial matches.
    pub timeouts: u64,
    /// (event, pattern) pairs skipped because the event lacks a `partition
    /// by` field of the pattern.
    pub unkeyed: u64,
    /// (event, pattern) pairs skipped because a `partition by` field holds
    /// a value that cannot be a key: an object, or NaN (alone or in a
    /// list; `NaN == NaN` is not true). See `docs/semantics.md`, "Partition
    /// keys".
    pub unusable_keys: u64,
    /// Partial matches dropped because their key held more than the
    /// engine's limit (`Engine::max_runs_per_key`; see `docs/semantics.md`,
    /// "The limit on partial matches per key"), or because the engine held
    /// its limit over all keys (`Engine::max_live_runs`; these also count
    /// in [`capped_runs`](Stats::capped_runs)). One per
    /// [`Sink::on_dropped`](crate::engine::Sink::on_dropped).
    pub dropped_runs: u64,
    /// Of [`dropped_runs`](Stats::dropped_runs), those dropped because the
    /// engine held its limit of live partial matches over all keys and
    /// patterns (`Engine::max_live_runs`; see `docs/semantics.md`, "The
    /// limit on live partial matches").
    pub capped_runs: u64,
    /// Partial matches discarded because their pattern was removed, or
    /// replaced with [`ReloadPolicy::Restart`](crate::engine::ReloadPolicy)
    /// (`docs/dynamic-rules.md`). They are not reported to the sink.
    pub discarded_runs: u64,
    /// Times the watermark was moved up to the earliest waiting event
    /// because more events waited than the engine's limit
    /// (`Engine::max_waiting_events`; see `docs/semantics.md`, "The limit
    /// on waiting events").
    pub forced_watermarks: u64,
}

/// What one pattern has seen and produced: [`Engine::pattern_stats`]
/// gives one per pattern in force, by name, in the engine's order. With
/// `serde`: an object of these fields by their names.
///
/// The counts add up over the pattern's versions (a replaced pattern's old
/// version that drains counts into its name), from the time its name was
/// added to the engine, or from the engine's last
/// [`restore`](crate::Engine::restore): a snapshot keeps the engine's
/// [`Stats`] and each pattern's version, not these counts.
///
/// [`Engine::pattern_stats`]: crate::Engine::pattern_stats
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PatternStats {
    /// The pattern's name.
    pub name: String,
    /// Its version: 1 when its name was first added, +1 per replacement
    /// with another text (`docs/dynamic-rules.md`).
    pub version: u32,
    /// Is it a `shadow` pattern (its records go to the shadow output,
    /// `docs/rule-lab.md`)? Not serialized (counts sent between processes
    /// and `--summary json` are as before): the process that adds the
    /// counts up has the flag from its own engines.
    #[serde(skip)]
    pub shadow: bool,
    /// Events that reached it: processed (not late, no longer waiting for
    /// the watermark) and carrying a usable value of each of its
    /// `partition by` fields (every processed event, for a pattern without
    /// `partition by`).
    pub events: u64,
    /// Complete matches.
    pub matches: u64,
    /// Timed-out partial matches.
    pub timeouts: u64,
    /// Partial matches (runs and held matches) it holds now, over all keys.
    pub live_runs: u64,
    /// Partial matches dropped by the limit per key or over all keys (as
    /// [`Stats::dropped_runs`]).
    pub dropped_runs: u64,
    /// Of [`dropped_runs`](PatternStats::dropped_runs), those dropped by
    /// the limit over all keys (as [`Stats::capped_runs`]).
    pub capped_runs: u64,
    /// Partial matches discarded by a change of rules (as
    /// [`Stats::discarded_runs`]).
    pub discarded_runs: u64,
    /// Events that did not reach it because a `partition by` field was
    /// missing (as [`Stats::unkeyed`]).
    pub unkeyed: u64,
    /// Events that did not reach it because a `partition by` field's value
    /// cannot be a key (as [`Stats::unusable_keys`]).
    pub unusable_keys: u64,
}

/// The counts an engine keeps per pattern (in [`PatternRun`]), each where
/// its thing happens (a match, a timeout, an event without a key): nothing
/// is counted per event that reaches the pattern ([`PatternStats::events`]
/// is computed from the engine's count of processed events).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PatternCounts {
    pub(super) matches: u64,
    pub(super) timeouts: u64,
    pub(super) dropped_runs: u64,
    pub(super) capped_runs: u64,
    pub(super) discarded_runs: u64,
    pub(super) unkeyed: u64,
    pub(super) unusable_keys: u64,
    /// The engine's processed events when the name was added (or the
    /// engine restored).
    pub(super) base: u64,
}

impl PatternCounts {
    /// Adds the outcomes of `other` (an old version of the same name that
    /// went): its events are not the name's (the version in force counts
    /// them).
    pub(super) fn absorb(&mut self, other: &PatternCounts) {
        self.matches += other.matches;
        self.timeouts += other.timeouts;
        self.dropped_runs += other.dropped_runs;
        self.capped_runs += other.capped_runs;
        self.discarded_runs += other.discarded_runs;
    }
}

/// Why an event has no key for a pattern.
#[derive(Clone, Copy, Debug)]
enum NoKey {
    /// A key field is missing (null).
    Missing,
    /// A key field's value cannot be a key.
    Unusable,
}

/// What happened to a pushed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// It waits for the watermark (or was processed already).
    Accepted,
    /// Its time was at or below the watermark: it went to the late output.
    Late,
}

/// What a pattern's records say beside their match (its key fields, its
/// version, its branches), apart in one place: a step's [`Bridge`] takes
/// it by one reference.
pub(super) struct Meta {
    pub(super) key_paths: Vec<FieldPath>,
    /// Its version: 1 when its name was first added, +1 per replacement
    /// (`docs/dynamic-rules.md`).
    pub(super) version: u32,
    /// Has its name been replaced at least once (so output shows the
    /// version)?
    pub(super) versioned: bool,
    /// Does its `match` hold an alternation (so that its records say
    /// their branches)? Known once, so that a record of a pattern without
    /// alternation never asks its match.
    pub(super) branched: bool,
}

/// One pattern of the engine.
pub(super) struct PatternRun<A> {
    pub(super) automaton: A,
    /// Its key fields, version and branches ([`Meta`]).
    pub(super) meta: Meta,
    /// The group of patterns partitioned alike that it belongs to, and its
    /// position among the group's patterns.
    pub(super) group: usize,
    pub(super) local: usize,
    /// Is it the group's last pattern (so far)?
    pub(super) last: bool,
    /// The next pattern of another group: where an event goes on when its
    /// key starts nothing in this group ([`Group::guard`]). [`PAST_ALL`]
    /// when none follows (the patterns' last run of one group), so that a
    /// pattern added to that group changes no earlier one's.
    pub(super) skip_to: usize,
    /// Numbers for its partitions (they order its deadlines of equal
    /// time).
    pub(super) ordinals: Ordinals,
    /// Is it an old version that drains: it starts no new partial match,
    /// and goes when it holds none.
    pub(super) draining: bool,
    /// What it has seen and produced ([`PatternStats`]).
    pub(super) counts: PatternCounts,
}

/// Patterns partitioned alike: by the same fields (or none), or one
/// pattern by its own key closure. They share one map of keys, each key
/// holding the partitions of all of them, and an event's key is read,
/// hashed and looked up once for all of them.
pub(super) struct Group<E, P> {
    pub(super) key_ids: Vec<FieldId>,
    /// The builder's `partition_by_fn` key, instead of `key_ids`.
    pub(super) key_fn: Option<NativeKeyFn<E>>,
    pub(super) keys: Keys<P>,
    /// Number of patterns in the group.
    pub(super) size: usize,
    /// The union of its starting patterns' start guards
    /// ([`Automaton::start_guard`]), each condition once, as (pattern,
    /// slot): when none holds for an event whose key has no slot, the
    /// event changes nothing in the group. `None` when some pattern's guard
    /// is not known. (Draining versions start nothing: they are left out.)
    pub(super) guard: Option<Vec<(u32, u32)>>,
    /// The conditions (their shared numbers) in `guard`, to take each once.
    guarded: HashSet<u32>,
    /// Its last pattern (the one whose [`PatternRun::last`] is set).
    newest: usize,
    /// The event changes nothing in the group: its key has no slot and
    /// no start guard holds.
    skip: bool,
    /// The event starts nothing in the group (no start guard holds) and
    /// its key has a slot: only the key's live partitions can change.
    quiet: bool,
    /// The key of the event being processed, its hash, or why it has none.
    key: KeyValue,
    hash: u64,
    no_key: Option<NoKey>,
    /// The event's key's slot, once it has one.
    slot: Option<u32>,
    /// Where the next pattern's partition would be in the slot (the
    /// slot's partitions are in pattern order, and an event is offered to
    /// the group's patterns in that order).
    cursor: usize,
    /// The partitions the event started for patterns that had none for the
    /// key, in pattern order: they join the slot (or make it) after the
    /// group's last pattern.
    fresh: Vec<Part<P>>,
}

/// A partition whose deadline is due: its pattern and number (as one
/// `pattern << 32 | number`, the order they fire in), its key's group,
/// slot and place in the slot.
#[derive(Clone, Copy, Debug)]
struct Due {
    order: u64,
    group: u32,
    slot: u32,
    /// Where the partition is in its key's slot (a batch moves none: the
    /// partitions it empties leave the slot after its key's last one).
    index: u32,
}

impl Due {
    fn pattern(&self) -> u32 {
        (self.order >> 32) as u32
    }

    fn ordinal(&self) -> u32 {
        self.order as u32
    }
}

/// Runs any number of compiled patterns over one stream of events in event
/// time: per pattern and key a matcher partition, one event store for all,
/// one global watermark (bounded out-of-orderness plus punctuated
/// watermarks), late events, and timeouts that fire on the watermark even
/// for keys that see no more events.
///
/// Events wait until the watermark passes their time and then reach the
/// matchers in (time, arrival) order, time advanced first (Flink's
/// operator). Deadlines of quiet keys fire in the same global time order:
/// before the events of time `t`, every deadline at or before `t`; the
/// partitions due at one time fire by pattern, then by their number in the
/// pattern ([`Ordinals`]).
pub(crate) struct Core<E, A: Automaton<E>> {
    pub(super) patterns: Vec<PatternRun<A>>,
    pub(super) groups: Vec<Group<E, A::Partition>>,
    /// The groups partitioned by fields (not by a closure), by their
    /// fields: where a pattern added joins.
    pub(super) group_of_fields: HashMap<Vec<FieldId>, usize>,
    pub(super) store: A::Store,
    pub(super) cache: A::Cache,
    /// The rule set's lists and indicators.
    pub(super) memory: Memory,
    /// The `then` writes of the matches of the step under way.
    pub(super) writes: Vec<Change>,
    /// Writes handed out rather than made here (`Engine::hand_out_list_writes`):
    /// each with the time it applies at.
    pub(super) handed: Option<Vec<(Timestamp, Change)>>,
    pub(super) clock: Clock<E>,
    pub(super) deadlines: DeadlineIndex,
    pub(super) hasher: KeyHasher,
    pub(super) stats: Stats,
    /// At most this many partial matches per pattern and key.
    pub(super) run_limit: usize,
    /// At most this many partial matches over all patterns and keys.
    pub(super) live_limit: usize,
    /// Partial matches (runs and held matches) over all patterns and keys,
    /// kept up to date at each step of a partition.
    pub(super) live_runs: usize,
    /// The most events that wait for the watermark.
    pub(super) waiting_limit: usize,
    /// The arrival numbers of the events waiting that only the shared
    /// indicators take ([`Core::push_for_indicators`]).
    pub(super) for_indicators: std::collections::BTreeSet<u64>,
    /// Live partitions, over all patterns and keys.
    pub(super) live_parts: usize,
    /// Patterns that drain (old versions of replaced ones).
    pub(super) draining: usize,
    /// The partitions due at `firing`, last first.
    due: Vec<Due>,
    /// The time whose deadlines `due` holds.
    firing: Timestamp,
    /// Space for [`Core::sort_due`].
    due_counts: Vec<u32>,
    due_sorted: Vec<Due>,
    /// The scenes and what deciding needs (`None` for a rule set without
    /// scenes: its events take the loops they took before).
    pub(super) decide: Option<Box<Decide>>,
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// An engine without patterns; `max_delay` is the bounded
    /// out-of-orderness in milliseconds.
    pub fn new(max_delay: i64) -> Self {
        Core {
            patterns: Vec::new(),
            groups: Vec::new(),
            group_of_fields: HashMap::new(),
            store: A::Store::default(),
            cache: A::Cache::default(),
            memory: Memory::default(),
            writes: Vec::new(),
            handed: None,
            clock: Clock::new(max_delay),
            deadlines: DeadlineIndex::default(),
            hasher: KeyHasher::default(),
            stats: Stats::default(),
            run_limit: DEFAULT_MAX_RUNS_PER_KEY,
            live_limit: DEFAULT_MAX_LIVE_RUNS,
            live_runs: 0,
            waiting_limit: DEFAULT_MAX_WAITING_EVENTS,
            for_indicators: std::collections::BTreeSet::new(),
            live_parts: 0,
            draining: 0,
            due: Vec::new(),
            firing: 0,
            due_counts: Vec::new(),
            due_sorted: Vec::new(),
            decide: None,
        }
    }

    /// Sets the limit on partial matches per pattern and key (at least 1).
    pub fn set_run_limit(&mut self, limit: usize) {
        self.run_limit = limit.max(1);
    }

    /// Sets the limit on partial matches over all patterns and keys (at
    /// least 1).
    pub fn set_live_limit(&mut self, limit: usize) {
        self.live_limit = limit.max(1);
    }

    /// Sets the limit on events waiting for the watermark (at least 1).
    pub fn set_waiting_limit(&mut self, limit: usize) {
        self.waiting_limit = limit.max(1);
    }

    /// Adds a compiled pattern, resolving its `partition by` fields with
    /// `fields`; returns its index (as in [`MatchContext::pattern`]).
    pub fn add(&mut self, mut automaton: A, fields: &mut dyn FieldResolver) -> Result<usize, String>
    where
        E: 'static,
    {
        if !automaton.share(&mut self.cache) {
            return Err(format!(
                "pattern `{}`: its conditions were numbered for another engine's",
                automaton.pattern().name
            ));
        }
        let key_paths = automaton.pattern().partition_by.clone();
        let key_ids = key_paths
            .iter()
            .map(|path| fields.resolve(path).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let key_fn = match &automaton.pattern().partition_by_fn {
            None => None,
            Some(key) => Some(key.downcast::<E>().cloned().ok_or_else(|| {
                format!(
                    "the key closure was written for another event type than `{}`",
                    std::any::type_name::<E>()
                )
            })?),
        };
        // Two closures are never known to give the same key.
        let shared = match key_fn {
            None => self.group_of_fields.get(&key_ids).copied(),
            Some(_) => None,
        };
        let group = shared.unwrap_or_else(|| {
            if key_fn.is_none() {
                self.group_of_fields
                    .insert(key_ids.clone(), self.groups.len());
            }
            self.groups.push(Group {
                key_ids,
                key_fn,
                keys: Keys::default(),
                size: 0,
                guard: Some(Vec::new()),
                guarded: HashSet::new(),
                newest: self.patterns.len(),
                skip: false,
                quiet: false,
                key: KeyValue::new(),
                hash: 0,
                no_key: None,
                slot: None,
                cursor: 0,
                fresh: Vec::new(),
            });
            self.groups.len() - 1
        });
        let local = self.groups[group].size;
        self.groups[group].size += 1;
        if local > 0 {
            let newest = self.groups[group].newest;
            self.patterns[newest].last = false;
        }
        self.groups[group].newest = self.patterns.len();
        let branched = automaton.pattern().has_alternation();
        self.patterns.push(PatternRun {
            automaton,
            meta: Meta {
                key_paths,
                version: 1,
                versioned: false,
                branched,
            },
            group,
            local,
            last: true,
            skip_to: PAST_ALL,
            ordinals: Ordinals::default(),
            draining: false,
            counts: PatternCounts {
                base: self.processed(),
                ..PatternCounts::default()
            },
        });
        self.joined(self.patterns.len() - 1);
        Ok(self.patterns.len() - 1)
    }

    /// What adding pattern `p` (the last one, starting) changes beyond it,
    /// in time linear in its own start guard (not in the patterns): its
    /// group's guard takes its conditions the group lacks, and when it
    /// follows another group's pattern, that run of the other group now
    /// skips to it (each pattern's `skip_to` is so set once from
    /// [`PAST_ALL`], whatever the number of patterns added after it). The
    /// same as [`refresh_guards`](Core::refresh_guards) would compute.
    fn joined(&mut self, p: usize) {
        let run = &self.patterns[p];
        let group = &mut self.groups[run.group];
        match (run.automaton.start_guard(), &mut group.guard) {
            (Some(slots), Some(union)) => {
                for (shared, slot) in slots {
                    if group.guarded.insert(shared) {
                        union.push((p as u32, slot));
                    }
                }
            }
            _ => group.guard = None,
        }
        let g = run.group;
        let Some(before) = p.checked_sub(1) else {
            return;
        };
        let other = self.patterns[before].group;
        if other != g {
            for q in (0..p).rev() {
                let run = &mut self.patterns[q];
                if run.group != other {
                    break;
                }
                run.skip_to = p;
            }
        }
    }

    /// Computes each group's [`Group::guard`] and last pattern, the map
    /// from fields to groups, and each pattern's [`PatternRun::skip_to`],
    /// after patterns were rearranged or marked draining: in time linear in
    /// the patterns and their start guards.
    pub(super) fn refresh_guards(&mut self) {
        self.group_of_fields.clear();
        for (g, group) in self.groups.iter_mut().enumerate() {
            group.guard = Some(Vec::new());
            group.guarded.clear();
            if group.key_fn.is_none() {
                self.group_of_fields.insert(group.key_ids.clone(), g);
            }
        }
        for (p, run) in self.patterns.iter().enumerate() {
            let group = &mut self.groups[run.group];
            group.newest = p;
            if run.draining {
                continue;
            }
            let Some(union) = &mut group.guard else {
                continue;
            };
            match run.automaton.start_guard() {
                Some(slots) => {
                    for (shared, slot) in slots {
                        if group.guarded.insert(shared) {
                            union.push((p as u32, slot));
                        }
                    }
                }
                None => group.guard = None,
            }
        }
        let mut skip_to = PAST_ALL;
        for p in (0..self.patterns.len()).rev() {
            if let Some(next) = self.patterns.get(p + 1) {
                if next.group != self.patterns[p].group {
                    skip_to = p + 1;
                }
            }
            self.patterns[p].skip_to = skip_to;
        }
    }

    /// Takes one event in. It is late (and goes to `sink.on_late`) when its
    /// time is at or below the watermark; otherwise it waits, and whatever
    /// the watermark has now passed is processed. (Never inlined: a
    /// function of its own, as the engine gate of `BENCHMARKS.md`
    /// measures it.)
    #[inline(never)]
    pub fn push<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) -> Arrival {
        self.stats.events += 1;
        match self.clock.arrive(ts, event) {
            Err(event) => self.take_late(ts, event, None, sink),
            Ok(()) => self.accepted(sink),
        }
    }

    /// An event the clock took: the watermark forced past the events
    /// waiting over the limit, and whatever it passed processed.
    #[inline(always)]
    fn accepted<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) -> Arrival {
        if self.clock.waiting() > self.waiting_limit {
            self.force_watermark();
        }
        self.run_to(self.clock.watermark(), sink);
        Arrival::Accepted
    }

    /// [`Core::push`] with the event's input `position` for an engine with
    /// scenes (else its number among the pushes): kept until its
    /// decisions are made; a late event's are made at once. An engine
    /// without scenes drops it.
    #[inline(never)]
    pub fn push_positioned<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        position: Option<Value>,
        sink: &mut S,
    ) -> Arrival {
        let (Some(position), Some(_)) = (position, &self.decide) else {
            return self.push(ts, event, sink);
        };
        self.stats.events += 1;
        match self.clock.arrive(ts, event) {
            Err(event) => self.take_late(ts, event, Some(position), sink),
            Ok(()) => {
                if let Some(decide) = &mut self.decide {
                    // (the arrival number the event just took)
                    let seq = self.clock.next_arrival() - 1;
                    decide.positions.insert(seq, position);
                }
                self.accepted(sink)
            }
        }
    }

    /// A late event (at or below the watermark): to `sink.on_late`, and
    /// an engine with scenes decides it at once (at `position`, else its
    /// number among the pushes).
    #[cold]
    #[inline(never)]
    fn take_late<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        position: Option<Value>,
        sink: &mut S,
    ) -> Arrival {
        self.stats.late += 1;
        sink.on_late(ts, &event);
        if let Some(decide) = &mut self.decide {
            // (a late event takes no arrival number: the pushes after it
            // are numbered one further on)
            let seq = self.clock.next_arrival();
            let pushes = self.stats.events;
            let position = position.unwrap_or(Value::Int(pushes as i64));
            decide.number_from(seq, pushes);
            decide.late(ts, position, &event, sink);
        }
        Arrival::Late
    }

    /// Takes in an event of the stream that only the indicators shared
    /// over the whole stream take (`Engine::share_indicators`), at its
    /// place in (time, arrival) order, as [`Core::push`] takes one: no
    /// pattern sees it, it is not counted, and a late one is dropped
    /// quietly (its own engine says it).
    pub fn push_for_indicators<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        sink: &mut S,
    ) {
        let seq = self.clock.next_arrival();
        if self.clock.arrive(ts, event).is_ok() {
            self.for_indicators.insert(seq);
            if let Some(decide) = &mut self.decide {
                // (an arrival number without a push)
                decide.number_from(seq + 1, self.stats.events);
            }
            if self.clock.waiting() > self.waiting_limit {
                self.force_watermark();
            }
            self.run_to(self.clock.watermark(), sink);
        }
    }

    /// More events wait than the limit: the watermark moves up to the
    /// earliest waiting event's time, as if a watermark had arrived, so
    /// every event at that time is processed (and later arrivals at or
    /// before it are late).
    #[cold]
    fn force_watermark(&mut self) {
        if let Some(t) = self.clock.earliest_waiting() {
            self.clock.raise(t);
            self.stats.forced_watermarks += 1;
        }
    }

    /// A punctuated watermark: every event at or below `t` has arrived.
    /// Moves event time to `t` (never backwards), firing what is due.
    pub fn watermark<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, sink: &mut S) {
        self.clock.raise(t);
        self.run_to(self.clock.watermark(), sink);
    }

    /// Time moves to just before `now` (never backwards), as a watermark
    /// at `now - 1` moves it, and the draining versions left holding
    /// nothing go: [`Engine::tick`](crate::Engine::tick), and the start of
    /// a request ([`Engine::request`](crate::Engine::request)).
    pub(super) fn tick<S: Sink<E> + ?Sized>(&mut self, now: Timestamp, sink: &mut S) {
        if now > Timestamp::MIN {
            self.watermark(now - 1, sink);
            self.reap();
        }
    }

    /// Processes at once what is due at `ts`, a millisecond above the
    /// watermark: its deadlines and list changes, then the events waiting
    /// at it in their order, as a watermark at `ts` would; then sets the
    /// watermark back where it was, so that the millisecond stays open to
    /// events arriving after them (`Engine::decide_now`: requests of one
    /// millisecond all take it, none moves to a later one).
    pub(super) fn run_through<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, sink: &mut S) {
        let before = self.clock.current();
        self.clock.raise(ts);
        self.run_to(ts, sink);
        self.clock.reopen(before.filter(|&w| w < ts));
    }

    /// End of input: processes every waiting event and advances time to the
    /// largest event time seen, so windows that closed by then expire.
    pub fn finish<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        if let Some(max) = self.clock.max_seen() {
            self.clock.raise(max);
        }
        self.run_to(self.clock.watermark(), sink);
    }

    /// The current watermark (`None` before any).
    pub fn current_watermark(&self) -> Option<Timestamp> {
        self.clock.current()
    }

    /// What the engine has seen and produced so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Events processed so far: pushed, neither late nor waiting.
    pub(super) fn processed(&self) -> u64 {
        let s = &self.stats;
        s.events
            .saturating_sub(s.late)
            .saturating_sub(self.clock.waiting() as u64)
    }

    /// Each pattern in force's counts, in order (see [`PatternStats`]):
    /// the draining old versions of a name count into it. Linear in the
    /// live partitions (their partial matches are counted now).
    pub fn pattern_stats(&self) -> Vec<PatternStats> {
        let mut live = vec![0u64; self.patterns.len()];
        for group in &self.groups {
            for (_, parts) in group.keys.iter_parts() {
                for x in parts.iter().filter(|x| !x.is_hole()) {
                    if let Some(n) = live.get_mut(x.pattern as usize) {
                        *n += A::partial_matches(&x.part) as u64;
                    }
                }
            }
        }
        let processed = self.processed();
        let mut out: Vec<PatternStats> = Vec::new();
        let mut index: Vec<usize> = Vec::with_capacity(self.patterns.len());
        for run in self.patterns.iter().filter(|r| !r.draining) {
            let c = &run.counts;
            index.push(out.len());
            out.push(PatternStats {
                name: run.automaton.pattern().name.clone(),
                version: run.meta.version,
                shadow: run.automaton.pattern().shadow,
                events: processed
                    .saturating_sub(c.base)
                    .saturating_sub(c.unkeyed)
                    .saturating_sub(c.unusable_keys),
                unkeyed: c.unkeyed,
                unusable_keys: c.unusable_keys,
                ..PatternStats::default()
            });
        }
        // (by name in a map: a search of `out` per pattern would be
        // quadratic, and the monitor asks up to four times a second)
        let by_name: HashMap<&str, usize> = (out.iter().enumerate())
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut counts = vec![PatternCounts::default(); out.len()];
        let mut live_of = vec![0; out.len()];
        for (p, run) in self.patterns.iter().enumerate() {
            let Some(&i) = by_name.get(run.automaton.pattern().name.as_str()) else {
                continue;
            };
            counts[i].absorb(&run.counts);
            live_of[i] += live[p];
        }
        drop(by_name);
        for ((s, c), live) in out.iter_mut().zip(&counts).zip(live_of) {
            s.matches += c.matches;
            s.timeouts += c.timeouts;
            s.dropped_runs += c.dropped_runs;
            s.capped_runs += c.capped_runs;
            s.discarded_runs += c.discarded_runs;
            s.live_runs += live;
        }
        out
    }

    /// Live partitions summed over all patterns (keys with partial
    /// matches, counted once per pattern).
    pub fn live_partitions(&self) -> usize {
        self.live_parts
    }

    /// Partial matches (runs and held matches) over all patterns and keys.
    pub fn live_runs(&self) -> usize {
        self.live_runs
    }

    /// Events waiting for the watermark.
    pub fn waiting_events(&self) -> usize {
        self.clock.waiting()
    }

    /// Events held in the store by partial matches.
    pub fn stored_events(&self) -> usize {
        self.store.live_events()
    }

    /// Bytes of state held (`Engine::state_bytes`): a walk over the stored
    /// and waiting events and the keys, not kept up per event.
    pub fn state_bytes(&self) -> usize {
        let event_bytes = |e: &E| e.heap_bytes();
        let keys: usize = self
            .groups
            .iter()
            .map(|g| g.keys.state_bytes(A::partition_heap_bytes))
            .sum();
        self.store.state_bytes(&event_bytes)
            + self.clock.state_bytes(event_bytes)
            + self.deadlines.state_bytes()
            + keys
            + self.memory.heap_bytes()
    }

    /// Processes, in global time order, the waiting events and the
    /// deadlines up to `bound` (events only up to the watermark). A deadline
    /// at the time of the next event fires first. (Never inlined: the
    /// engine gate of `BENCHMARKS.md` measures it.)
    #[inline(never)]
    fn run_to<S: Sink<E> + ?Sized>(&mut self, bound: Timestamp, sink: &mut S) {
        if !(self.memory.is_empty() && self.for_indicators.is_empty() && self.decide.is_none()) {
            return self.run_to_reading(bound, sink);
        }
        // (a rule set without lists and indicators: none appears while
        // events are processed, and no event was pushed for indicators)
        loop {
            let until = self.clock.next_ready().map_or(bound, |te| te.min(bound));
            if self.fire_next(until, sink) {
                continue;
            }
            let Some((ts, event)) = self.clock.pop_ready() else {
                break;
            };
            self.process_event_as::<Plain, S>(ts, event, sink);
        }
    }

    /// [`Core::run_to`] for a rule set with lists or indicators, or with
    /// events pushed for the shared indicators only (out of line: the
    /// plain loop is the other).
    #[inline(never)]
    fn run_to_reading<S: Sink<E> + ?Sized>(&mut self, bound: Timestamp, sink: &mut S) {
        loop {
            let until = self.clock.next_ready().map_or(bound, |te| te.min(bound));
            if self.fire_next(until, sink) {
                continue;
            }
            if let Some((ts, seq, event)) = self.clock.pop_ready_numbered() {
                if !self.for_indicators.is_empty() && self.take_shared(ts, seq, &event) {
                    continue;
                }
                if self.decide.is_some() {
                    self.process_deciding(ts, seq, event, sink);
                } else if self.memory.is_empty() {
                    self.process_event_outlined(ts, event, sink);
                } else {
                    self.process_event_reading(ts, event, sink);
                }
            } else {
                break;
            }
        }
    }

    /// Deciding starts with `scenes`: the pushes from now on are numbered
    /// on from the engine's count.
    pub(super) fn deciding(&self, scenes: Vec<crate::engine::decide::SceneRun>) -> Box<Decide> {
        let mut decide = Decide::new(scenes);
        decide.number_from(self.clock.next_arrival(), self.stats.events);
        Box::new(decide)
    }

    /// [`Core::process_event_as`] for an engine with scenes: the scenes the
    /// event enters are read (with the lists as its rules read them), the
    /// patterns take it (through [`Collect`] when it enters one, so that
    /// the matches that hold it are noted), then its decisions go to the
    /// sink (`docs/semantics.md`, "Decisions").
    #[inline(never)]
    fn process_deciding<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        seq: u64,
        event: E,
        sink: &mut S,
    ) {
        let Some(mut decide) = self.decide.take() else {
            return self.process_event_outlined(ts, event, sink);
        };
        let reading = !self.memory.is_empty();
        if reading {
            self.memory.reach(ts);
            self.memory.on_event(&event);
        }
        let ev = self.store.insert(ts, event);
        let enters = {
            let view = self.memory.shadow_view();
            let lookup: &dyn Lookup = if reading {
                lookup_of(&self.memory, &view, false)
            } else {
                &crate::lookup::NO_LOOKUP
            };
            decide.enter(seq, self.store.get(ev), lookup)
        };
        let shed = decide.sheds(seq);
        if enters || decide.has_instances() {
            let pointer: *const E = self.store.get(ev);
            let mut collect = Collect {
                inner: &mut *sink,
                event: pointer,
                fired: &mut decide,
            };
            match (shed, reading) {
                (true, true) => self.offer_unshadowed::<Reads, _>(ts, ev, &mut collect),
                (true, false) => self.offer_unshadowed::<Plain, _>(ts, ev, &mut collect),
                (false, true) => self.offer_stored::<Reads, _>(ts, ev, &mut collect),
                (false, false) => self.offer_stored::<Plain, _>(ts, ev, &mut collect),
            }
        } else if shed {
            if reading {
                self.offer_unshadowed::<Reads, S>(ts, ev, sink);
            } else {
                self.offer_unshadowed::<Plain, S>(ts, ev, sink);
            }
        } else if reading {
            self.offer_stored::<Reads, S>(ts, ev, sink);
        } else {
            self.offer_stored::<Plain, S>(ts, ev, sink);
        }
        if enters {
            // (the event is still stored: it goes below)
            decide.decide(ts, seq, self.store.get(ev), sink);
        } else {
            decide.pass(seq);
        }
        self.store.release_if_unused(ev);
        self.apply_writes(ts);
        if decide.retiring() {
            decide.retire(self.clock.first_waiting_arrival());
        }
        self.decide = Some(decide);
    }

    /// [`Core::process_event_as`] for a rule set without lists and
    /// indicators, out of line (for [`Core::run_to_reading`], when events
    /// were pushed for shared indicators: the plain loop has it inlined).
    #[inline(never)]
    fn process_event_outlined<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        sink: &mut S,
    ) {
        self.process_event_as::<Plain, S>(ts, event, sink);
    }

    /// The event of arrival `seq` at `ts`, if it was pushed for the
    /// shared indicators only ([`Core::push_for_indicators`]): they take
    /// it, and true (no pattern sees it). Out of line: an engine that
    /// shares no indicator never comes here.
    #[cold]
    #[inline(never)]
    fn take_shared(&mut self, ts: Timestamp, seq: u64, event: &E) -> bool {
        if !self.for_indicators.remove(&seq) {
            return false;
        }
        self.memory.reach(ts);
        self.memory.on_shared_event(event);
        true
    }

    /// Fires what is due at the earliest deadline, if it is at or before
    /// `until`; false when nothing is. The partitions due at one time fire
    /// by pattern, then by number ([`Ordinals`]), which is the order in
    /// which they fired when each pattern indexed its own keys. When one
    /// key is due then (the common case), its partitions fire in one pass
    /// over its slot (they are in pattern order); a batch of several keys
    /// is collected and put in order first, then fired one partition per
    /// call. (Firing a partition at `t` leaves it no deadline at or before
    /// `t`, and no event comes between deadlines of one time, so the set
    /// is complete.)
    #[inline(always)]
    fn fire_next<S: Sink<E> + ?Sized>(&mut self, until: Timestamp, sink: &mut S) -> bool {
        if !self.due.is_empty() {
            debug_assert!(self.firing <= until);
            self.fire_due(sink);
            return true;
        }
        let Some((t, g, s)) = self.peek_key(until) else {
            return false;
        };
        self.deadlines.pop();
        self.groups[g as usize].keys.unschedule(s);
        if self.peek_key(t).is_none() {
            self.fire_key(t, g as usize, s, sink);
        } else {
            self.collect_due(t, g, s);
            self.fire_due(sink);
        }
        true
    }

    /// Fires every partition of group `g`'s key in `slot` that is due at
    /// `t` (the only key due then), in pattern order, then reschedules the
    /// key (the emptied ones become holes).
    #[inline(always)]
    fn fire_key<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, g: usize, slot: u32, sink: &mut S) {
        if self.memory.is_empty() {
            self.fire_key_parts::<Plain, S>(t, g, slot, sink);
            self.apply_writes(t);
        } else {
            self.fire_key_reading(t, g, slot, sink);
        }
    }

    /// [`Core::fire_key`] for a rule set with lists or indicators (out of
    /// line: the plain one is inlined where it fires).
    #[inline(never)]
    fn fire_key_reading<S: Sink<E> + ?Sized>(
        &mut self,
        t: Timestamp,
        g: usize,
        slot: u32,
        sink: &mut S,
    ) {
        self.memory.reach(t);
        self.fire_key_parts::<Reads, S>(t, g, slot, sink);
        self.apply_writes(t);
    }

    fn fire_key_parts<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        t: Timestamp,
        g: usize,
        slot: u32,
        sink: &mut S,
    ) {
        let keys = &mut self.groups[g].keys;
        let Some((key, parts)) = keys.get_mut(slot) else {
            return;
        };
        for x in parts.iter_mut() {
            if x.is_hole() || !A::next_deadline(&x.part).is_some_and(|d| d <= t) {
                continue;
            }
            let p = x.pattern as usize;
            let view = self.memory.shadow_view();
            let lookup = M::lookup(
                &self.memory,
                &view,
                self.patterns[p].automaton.pattern().shadow,
            );
            advance_part(
                &mut self.patterns[p],
                p,
                x,
                key,
                (&mut self.store, &mut self.cache),
                (lookup, &mut self.writes),
                t,
                &mut *sink,
                &mut self.stats,
                (&mut self.live_runs, &mut self.live_parts),
            );
        }
        let scheduled = keys.settle(slot, None, A::next_deadline);
        self.schedule(g, slot, scheduled);
    }

    /// Collects every partition due at `t` (the earliest deadline in the
    /// index; the key of group `g` in `slot` came out of it first, and more
    /// keys are due then) into [`Core::due`], in the order they fire.
    fn collect_due(&mut self, t: Timestamp, g: u32, s: u32) {
        let mut next = Some((t, g, s));
        while let Some((_, g, s)) = next {
            let before = self.due.len();
            let keys = &mut self.groups[g as usize].keys;
            if let Some((_, parts)) = keys.get_mut(s) {
                for (index, part) in parts.iter().enumerate() {
                    if !part.is_hole() && A::next_deadline(&part.part).is_some_and(|d| d <= t) {
                        self.due.push(Due {
                            order: u64::from(part.pattern) << 32 | u64::from(part.ordinal),
                            group: g,
                            slot: s,
                            index: index as u32,
                        });
                    }
                }
            }
            keys.set_pending(s, (self.due.len() - before) as u32);
            if self.due.len() == before {
                // (Cannot happen: a key is scheduled at its earliest
                // deadline.) Keep the key scheduled.
                let next = keys.settle(s, None, A::next_deadline);
                self.schedule(g as usize, s, next);
            }
            next = self.peek_key(t);
            if next.is_some() {
                self.deadlines.pop();
                if let Some((_, g, s)) = next {
                    self.groups[g as usize].keys.unschedule(s);
                }
            }
        }
        self.firing = t;
        self.sort_due();
    }

    /// Puts the collected partitions in firing order, last first. A large
    /// batch (many keys due at one time) is sorted by pattern with a
    /// counting sort, then by number within each pattern, in time linear in
    /// the batch and the number of patterns.
    fn sort_due(&mut self) {
        let due = &mut self.due;
        if due.windows(2).all(|w| w[0].order >= w[1].order) {
            return;
        }
        let patterns = self.patterns.len();
        if due.len() < 64 || due.len() * 4 < patterns {
            due.sort_unstable_by_key(|d| std::cmp::Reverse(d.order));
            return;
        }
        // Buckets by pattern, last pattern first.
        let counts = &mut self.due_counts;
        counts.clear();
        counts.resize(patterns + 1, 0);
        for d in due.iter() {
            counts[patterns - 1 - d.pattern() as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let sorted = &mut self.due_sorted;
        sorted.clear();
        sorted.extend_from_slice(due);
        for d in due.iter() {
            let bucket = &mut counts[patterns - 1 - d.pattern() as usize];
            sorted[*bucket as usize] = *d;
            *bucket += 1;
        }
        // (Each bucket now ends where the next one starts.)
        let mut start = 0;
        for &end in &counts[..patterns] {
            let end = end as usize;
            if end - start > 1 {
                sorted[start..end].sort_unstable_by_key(|d| std::cmp::Reverse(d.order));
            }
            start = end;
        }
        std::mem::swap(due, sorted);
    }

    /// The time of the earliest deadline, if any.
    pub(super) fn next_deadline(&mut self) -> Option<Timestamp> {
        if !self.due.is_empty() {
            return Some(self.firing);
        }
        self.peek_key(Timestamp::MAX).map(|(t, _, _)| t)
    }

    /// The earliest valid entry of the deadline index at or before `until`.
    #[inline(always)]
    fn peek_key(&mut self, until: Timestamp) -> Option<Entry> {
        let groups = &self.groups;
        self.deadlines.peek_due(until, |(t, g, s)| {
            groups[g as usize].keys.scheduled_at(t, s)
        })
    }

    /// Advances the next partition collected by [`Core::collect_due`] to
    /// its deadline, then drops it if it is empty and reschedules its key.
    fn fire_due<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        let t = self.firing;
        if self.memory.is_empty() {
            self.fire_due_part::<Plain, S>(sink);
            self.apply_writes(t);
        } else {
            self.fire_due_reading(sink);
        }
    }

    /// [`Core::fire_due`] for a rule set with lists or indicators (out of
    /// line, as [`Core::fire_key_reading`]).
    #[inline(never)]
    fn fire_due_reading<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        let t = self.firing;
        self.memory.reach(t);
        self.fire_due_part::<Reads, S>(sink);
        self.apply_writes(t);
    }

    fn fire_due_part<M: Reading, S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
        let Some(due) = self.due.pop() else {
            return;
        };
        let t = self.firing;
        let (p, g) = (due.pattern() as usize, due.group as usize);
        let run = &mut self.patterns[p];
        let keys = &mut self.groups[g].keys;
        let Some((key, parts)) = keys.get_mut(due.slot) else {
            return;
        };
        let i = due.index as usize;
        let mine =
            |x: &&mut Part<A::Partition>| x.pattern == due.pattern() && x.ordinal == due.ordinal();
        if let Some(x) = parts.get_mut(i).filter(mine) {
            // An emptied partition's number goes back now (in firing order,
            // as when each pattern had its own map).
            let view = self.memory.shadow_view();
            let lookup = M::lookup(&self.memory, &view, run.automaton.pattern().shadow);
            advance_part(
                run,
                p,
                x,
                key,
                (&mut self.store, &mut self.cache),
                (lookup, &mut self.writes),
                t,
                sink,
                &mut self.stats,
                (&mut self.live_runs, &mut self.live_parts),
            );
        }
        if keys.done_pending(due.slot) {
            // The key's last partition due now: reschedule it.
            let scheduled = keys.settle(due.slot, Some(t), A::next_deadline);
            self.schedule(g, due.slot, scheduled);
        }
    }

    /// Puts what [`Keys::settle`] scheduled for group `g`'s `slot` into the
    /// deadline index.
    fn schedule(&mut self, g: usize, slot: u32, scheduled: Option<Timestamp>) {
        let Some(t) = scheduled else {
            return;
        };
        if !self.deadlines.wants_check(t, g, slot) {
            self.deadlines.push(t, g, slot);
            return;
        }
        self.check_deadlines(t, g, slot);
    }

    /// [`schedule`](Self::schedule) when the deadline index wants a check
    /// first (about once per as many pushes as there are live keys, or
    /// when it is full): drops its stale entries if there are too many
    /// and the spare room of the key tables.
    #[inline(never)]
    fn check_deadlines(&mut self, t: Timestamp, g: usize, slot: u32) {
        for group in &mut self.groups {
            group.keys.shrink_table();
        }
        let groups = &self.groups;
        let live = groups.iter().map(|g| g.keys.len()).sum();
        let rebuilt = self.deadlines.compact_if_stale(
            live,
            |(t, g, s)| groups[g as usize].keys.scheduled_at(t, s),
            || {
                groups
                    .iter()
                    .enumerate()
                    .flat_map(|(g, group)| {
                        group.keys.scheduled().map(move |(t, s)| (t, g as u32, s))
                    })
                    .collect()
            },
        );
        if !rebuilt {
            self.deadlines.push(t, g, slot);
        }
    }

    /// [`Core::process_event_as`] for a rule set with lists or indicators:
    /// event time reaches `ts` for them, and the indicators take the
    /// event in before any pattern sees it. Out of line: the plain one
    /// is inlined where events are processed ([`Core::run_to`]).
    #[inline(never)]
    fn process_event_reading<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        sink: &mut S,
    ) {
        self.memory.reach(ts);
        self.memory.on_event(&event);
        self.process_event_as::<Reads, S>(ts, event, sink);
    }

    /// Stores one event and offers it to every pattern's partition of its
    /// key, in pattern order, time advanced first, the steps reading lists
    /// and indicators as `M` says. The key is read, hashed and looked up
    /// once per group of patterns partitioned alike, at its first pattern;
    /// after its last one, the partitions the event started join the key's
    /// slot and its schedule is updated, once. (A partition that empties
    /// gives its number back at once and stays as a hole: a pattern's
    /// partition of a key is stepped once per event, so the numbers go back
    /// in the order they did when each pattern had its own map.)
    #[inline(always)]
    fn process_event_as<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        sink: &mut S,
    ) {
        let ev = self.store.insert(ts, event);
        self.process_stored::<M, S>(ts, ev, sink);
    }

    /// [`Core::process_event_as`] of an event stored already.
    #[inline(always)]
    fn process_stored<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        self.offer_stored::<M, S>(ts, ev, sink);
        self.store.release_if_unused(ev);
        self.apply_writes(ts);
    }

    /// [`Core::process_stored`] before the event is let go: the patterns
    /// take it.
    #[inline(always)]
    fn offer_stored<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        A::begin_event(&mut self.cache);
        if self.patterns.len() == 1 {
            self.process_single::<M, S>(ts, ev, sink);
            return;
        }
        let mut p = 0;
        while p < self.patterns.len() {
            let (g, first, last, skip_to) = {
                let run = &self.patterns[p];
                (run.group, run.local == 0, run.last, run.skip_to)
            };
            if first {
                self.find_key::<M>(g, ev);
                let past = skip_to.min(self.patterns.len());
                if self.groups[g].quiet && past - p == self.groups[g].size {
                    // (the group's patterns are consecutive: walking the
                    // slot keeps pattern order among all patterns)
                    self.offer_live::<M, S>(g, ts, ev, sink);
                    self.settle_key(g);
                    p = skip_to;
                    continue;
                }
            }
            if self.groups[g].skip {
                // (nothing to settle either: no slot, nothing started)
                p = skip_to;
                continue;
            }
            self.offer::<M, S>(p, ts, ev, sink);
            if last {
                self.settle_key(g);
            }
            p += 1;
        }
    }

    /// [`Core::offer_stored`] to the patterns that are not `shadow` (a
    /// request whose shadow patterns are shed, [`Request::shed_shadow`]):
    /// each group's key found as ever, each of its patterns but the
    /// shadow ones offered the event, pattern by pattern (never the
    /// quiet group's walk, which offers a group's patterns all at once).
    ///
    /// [`Request::shed_shadow`]: crate::engine::Request::shed_shadow
    #[cold]
    #[inline(never)]
    fn offer_unshadowed<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        A::begin_event(&mut self.cache);
        for p in 0..self.patterns.len() {
            let (g, first, last, shadow) = {
                let run = &self.patterns[p];
                let shadow = run.automaton.pattern().shadow;
                (run.group, run.local == 0, run.last, shadow)
            };
            if first {
                self.find_key::<M>(g, ev);
            }
            if self.groups[g].skip {
                continue;
            }
            if !shadow {
                self.offer::<M, S>(p, ts, ev, sink);
            }
            if last {
                self.settle_key(g);
            }
        }
    }

    /// The `then` writes of the matches the step at `t` that ended
    /// emitted: applied at `t + 1`, before the deadlines and events of
    /// that time (an added entry's lifetime counts from `t`); or handed
    /// out, with that time.
    #[inline(always)]
    pub(super) fn apply_writes(&mut self, t: Timestamp) {
        if !self.writes.is_empty() {
            self.schedule_writes(t);
        }
    }

    fn schedule_writes(&mut self, t: Timestamp) {
        let at = t.saturating_add(1);
        for mut change in self.writes.drain(..) {
            change.from = Some(t);
            match &mut self.handed {
                Some(out) => out.push((at, change)),
                None => self.memory.write_at(at, change),
            }
        }
    }

    /// [`Core::process_event`] for an engine of one pattern: the same steps
    /// without the bookkeeping that several patterns need (the key's one
    /// partition is stepped and the key settled at once).
    #[inline(always)]
    fn process_single<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        let run = &mut self.patterns[0];
        let group = &mut self.groups[0];
        let event = self.store.get(ev);
        match read_key(event, &group.key_ids, &group.key_fn, &mut group.key) {
            Ok(()) => {}
            Err(NoKey::Missing) => {
                self.stats.unkeyed += 1;
                run.counts.unkeyed += 1;
                return;
            }
            Err(NoKey::Unusable) => {
                self.stats.unusable_keys += 1;
                run.counts.unusable_keys += 1;
                return;
            }
        }
        let hash = self.hasher.key(&group.key);
        let key = &group.key;
        let keys = &mut group.keys;
        let mut bridge = Bridge {
            pattern: 0,
            automaton: &run.automaton,
            meta: &run.meta,
            key,
            sink,
            stats: &mut self.stats,
            counts: &mut run.counts,
            capped: false,
            writes: &mut self.writes,
        };
        let view = self.memory.shadow_view();
        let mut step = Step {
            automaton: &run.automaton,
            store: &mut self.store,
            cache: &mut self.cache,
            lookup: M::lookup(&self.memory, &view, run.automaton.pattern().shadow),
            limit: self.run_limit,
            starts: !run.draining,
            ts,
            ev,
        };
        let slot = match keys.find(hash, key) {
            Some(slot) => {
                let Some(part) = keys.get_mut(slot).and_then(|(_, parts)| parts.first_mut()) else {
                    return;
                };
                // (A key of one pattern never keeps a hole: its slot goes.)
                debug_assert!(!part.is_hole());
                (step.limit, bridge.capped) =
                    limit_of(self.run_limit, self.live_limit, self.live_runs, || {
                        A::partial_matches(&part.part)
                    });
                let change = step.existing(&mut part.part, &mut bridge);
                self.live_runs = add_change(self.live_runs, change);
                if A::is_empty(&part.part) {
                    run.ordinals.give(part.ordinal);
                    self.live_parts -= 1;
                    keys.remove(slot);
                    return;
                }
                slot
            }
            None => {
                let mut part = Part::idle(0);
                if !step.may_start() {
                    // (an idle partition holds nothing to free: no call to
                    // its drop glue for the events that start nothing)
                    debug_assert_eq!(A::partition_heap_bytes(&part.part), 0);
                    std::mem::forget(part);
                    return;
                }
                (step.limit, bridge.capped) =
                    step_limit(self.run_limit, self.live_limit, self.live_runs);
                let Some(held) = step.start(&mut part, &mut run.ordinals, &mut bridge) else {
                    return;
                };
                self.live_runs += held;
                self.live_parts += 1;
                // (the group's key buffer moves into the slot: the next
                // event's `read_key` makes it again for less than a copy)
                let key = std::mem::take(&mut group.key);
                keys.insert_parts(hash, key, Parts::from_buf([part]))
            }
        };
        let scheduled = keys.settle(slot, None, A::next_deadline);
        self.schedule(0, slot, scheduled);
    }

    /// Reads, hashes and looks up group `g`'s key of the event, before its
    /// first pattern's turn; when the key has no slot, tests the group's
    /// start guard (the event skips the group when it holds for none).
    #[inline(always)]
    fn find_key<M: Reading>(&mut self, g: usize, ev: <A::Store as EventStore<E>>::Ref) {
        let event = self.store.get(ev);
        let group = &mut self.groups[g];
        group.no_key = read_key(event, &group.key_ids, &group.key_fn, &mut group.key).err();
        group.slot = None;
        group.cursor = 0;
        group.skip = false;
        group.quiet = false;
        if group.no_key.is_none() {
            group.hash = self.hasher.key(&group.key);
            group.slot = group.keys.find(group.hash, &group.key);
            if let Some(guard) = &group.guard {
                let (store, cache, patterns) = (&self.store, &mut self.cache, &self.patterns);
                let view = self.memory.shadow_view();
                // (the values are the event's, computed once for every
                // pattern that tests them later)
                let starts = guard.iter().any(|&(p, slot)| {
                    let run = &patterns[p as usize];
                    let lookup = M::lookup(&self.memory, &view, run.automaton.pattern().shadow);
                    run.automaton
                        .condition_holds(store, cache, lookup, ev, slot)
                });
                group.skip = !starts && group.slot.is_none();
                group.quiet = !starts && group.slot.is_some();
            }
        }
    }

    /// [`Core::offer`] to every pattern of group `g` when the event starts
    /// nothing in it ([`Group::quiet`]): a pattern without a live partition
    /// of the key would do nothing, so the key's slot is walked instead of
    /// the patterns, its live partitions stepped in pattern order and its
    /// holes passed over.
    #[inline(always)]
    fn offer_live<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        g: usize,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        let Group { keys, slot, .. } = &mut self.groups[g];
        let Some((key, parts)) = slot.and_then(|s| keys.get_mut(s)) else {
            return;
        };
        for x in parts.iter_mut() {
            if x.is_hole() {
                continue;
            }
            let p = x.pattern as usize;
            let run = &mut self.patterns[p];
            let mut bridge = Bridge {
                pattern: p,
                automaton: &run.automaton,
                meta: &run.meta,
                key,
                sink: &mut *sink,
                stats: &mut self.stats,
                counts: &mut run.counts,
                capped: false,
                writes: &mut self.writes,
            };
            let view = self.memory.shadow_view();
            let step = Step {
                automaton: &run.automaton,
                store: &mut self.store,
                cache: &mut self.cache,
                lookup: M::lookup(&self.memory, &view, run.automaton.pattern().shadow),
                limit: self.run_limit,
                starts: !run.draining,
                ts,
                ev,
            };
            let counts = (&mut self.live_runs, &mut self.live_parts);
            step_live(
                step,
                &mut bridge,
                x,
                &mut run.ordinals,
                counts,
                self.live_limit,
            );
        }
    }

    /// After group `g`'s last pattern's turn: adds the partitions the event
    /// started to the key's slot (making it if the key had none) and
    /// updates its schedule.
    #[inline]
    fn settle_key(&mut self, g: usize) {
        let group = &mut self.groups[g];
        let slot = match group.slot.take() {
            Some(slot) => {
                if !group.fresh.is_empty() {
                    if let Some((_, parts)) = group.keys.get_mut(slot) {
                        merge_fresh(parts, &mut group.fresh);
                    }
                }
                slot
            }
            None if group.fresh.is_empty() => return,
            // (the key buffer moves into the slot, as in `process_single`)
            None => group.keys.insert_fresh(
                group.hash,
                std::mem::take(&mut group.key),
                &mut group.fresh,
            ),
        };
        // (A slot left with holes only goes.)
        let scheduled = group.keys.settle(slot, None, A::next_deadline);
        self.schedule(g, slot, scheduled);
    }

    /// Offers the event to pattern `p`'s partition of the event's key
    /// (found by [`Core::find_key`]), time advanced first; or, when the key
    /// has none for `p`, to a fresh partition, kept only if the event left
    /// something in it (most events of a new key start nothing, so no slot
    /// is made for them).
    #[inline(always)]
    fn offer<M: Reading, S: Sink<E> + ?Sized>(
        &mut self,
        p: usize,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        let run = &mut self.patterns[p];
        let Group {
            keys,
            key,
            no_key,
            slot,
            cursor,
            fresh,
            ..
        } = &mut self.groups[run.group];
        match no_key {
            None => {}
            Some(NoKey::Missing) => {
                self.stats.unkeyed += 1;
                run.counts.unkeyed += 1;
                return;
            }
            Some(NoKey::Unusable) => {
                self.stats.unusable_keys += 1;
                run.counts.unusable_keys += 1;
                return;
            }
        }
        let mut bridge = Bridge {
            pattern: p,
            automaton: &run.automaton,
            meta: &run.meta,
            key,
            sink,
            stats: &mut self.stats,
            counts: &mut run.counts,
            capped: false,
            writes: &mut self.writes,
        };
        let view = self.memory.shadow_view();
        let mut step = Step {
            automaton: &run.automaton,
            store: &mut self.store,
            cache: &mut self.cache,
            lookup: M::lookup(&self.memory, &view, run.automaton.pattern().shadow),
            limit: self.run_limit,
            starts: !run.draining,
            ts,
            ev,
        };
        // The slot's partitions are in pattern order: `p`'s, if any, is at
        // the cursor.
        let found = slot
            .and_then(|s| keys.get_mut(s))
            .and_then(|(_, parts)| parts.get_mut(*cursor))
            .filter(|x| x.pattern as usize == p);
        if let Some(found) = found {
            *cursor += 1;
            if !found.is_hole() {
                let counts = (&mut self.live_runs, &mut self.live_parts);
                step_live(
                    step,
                    &mut bridge,
                    found,
                    &mut run.ordinals,
                    counts,
                    self.live_limit,
                );
            } else if step.may_start() {
                (step.limit, bridge.capped) =
                    step_limit(self.run_limit, self.live_limit, self.live_runs);
                if let Some(held) = step.start(found, &mut run.ordinals, &mut bridge) {
                    self.live_runs += held;
                    self.live_parts += 1;
                }
            }
        } else if step.may_start() {
            (step.limit, bridge.capped) =
                step_limit(self.run_limit, self.live_limit, self.live_runs);
            fresh.push(Part::idle(p as u32));
            let new = fresh.last_mut().expect("just pushed");
            if let Some(held) = step.start(new, &mut run.ordinals, &mut bridge) {
                self.live_runs += held;
                self.live_parts += 1;
            } else {
                fresh.pop();
            }
        }
    }
}

/// One event's step of one pattern's partition of the event's key.
struct Step<'a, E, A: Automaton<E>, L> {
    automaton: &'a A,
    store: &'a mut A::Store,
    cache: &'a mut A::Cache,
    /// The lists and indicators the pattern's conditions read
    /// ([`Reading`]).
    lookup: L,
    limit: usize,
    /// May the event start partial matches (not in a draining version)?
    starts: bool,
    ts: Timestamp,
    ev: <A::Store as EventStore<E>>::Ref,
}

impl<E, A: Automaton<E>, L: LookupRef> Step<'_, E, A, L> {
    /// The event at time `ts` offered to a live partition, time advanced
    /// first; returns how much its partial matches changed.
    #[inline(always)]
    fn existing<R: Reporter<E, A>>(self, part: &mut A::Partition, out: &mut R) -> isize {
        let a = self.automaton;
        let expired = a.advance_time(part, self.store, self.cache, self.lookup, self.ts, out);
        let (limit, starts) = (self.limit, self.starts);
        expired
            + a.process(
                part,
                self.store,
                self.cache,
                self.lookup,
                limit,
                starts,
                self.ev,
                out,
            )
    }

    /// Might the event start something in an idle partition
    /// ([`Automaton::may_start`]; never in a draining version)?
    #[inline(always)]
    fn may_start(&mut self) -> bool {
        self.starts
            && self
                .automaton
                .may_start(self.store, self.cache, self.lookup, self.ev)
    }

    /// The event offered to `part`, an idle partition of its pattern (a
    /// fresh one, or a hole): when the event left something in it, it is
    /// numbered by `ordinals` and the partial matches it holds are
    /// returned.
    #[inline(always)]
    fn start<R: Reporter<E, A>>(
        self,
        part: &mut Part<A::Partition>,
        ordinals: &mut Ordinals,
        out: &mut R,
    ) -> Option<usize> {
        let a = self.automaton;
        let held = a.process(
            &mut part.part,
            self.store,
            self.cache,
            self.lookup,
            self.limit,
            self.starts,
            self.ev,
            out,
        );
        if A::is_empty(&part.part) {
            return None;
        }
        part.ordinal = ordinals.take();
        // (it held none before)
        Some(held.max(0) as usize)
    }
}

/// Reads into `key` the values of the key fields `key_ids` of `event` (or
/// its `key_fn` closure's value), normalized by [`key_part`] so that keys
/// equal under `==` are one key; or says why there is no key: a field is
/// missing (null), or its value cannot be a key (an object, NaN). `key` is
/// the group's buffer, reused from event to event. Always inlined (once
/// per event; out of line it cost the single-pattern workloads 2%).
#[inline(always)]
fn read_key<E: Event>(
    event: &E,
    key_ids: &[FieldId],
    key_fn: &Option<NativeKeyFn<E>>,
    key: &mut KeyValue,
) -> Result<(), NoKey> {
    let arity = if key_fn.is_some() { 1 } else { key_ids.len() };
    if key.len() != arity {
        // (after a new key took the buffer)
        *key = KeyValue::from_elem(Value::Null, arity);
    }
    // Overwritten in place (one key buffer per group, no clear and push).
    let parts: &mut [Value] = key;
    if let Some(key_fn) = key_fn {
        let value = key_fn(event);
        if value.is_null() {
            return Err(NoKey::Missing);
        }
        parts[0] = key_part(value).ok_or(NoKey::Unusable)?;
        return Ok(());
    }
    for (part, &id) in parts.iter_mut().zip(key_ids) {
        let value = event.field_owned(id);
        if value.is_null() {
            return Err(if event.field_is_object(id) {
                NoKey::Unusable
            } else {
                NoKey::Missing
            });
        }
        *part = key_part(value).ok_or(NoKey::Unusable)?;
    }
    Ok(())
}

/// Routes one partition's output to the engine's sink with its context
/// (built only when there is output).
pub(super) struct Bridge<'a, A, S: ?Sized> {
    pub(super) pattern: usize,
    /// The pattern's automaton (its IR, [`Automaton::pattern`]).
    pub(super) automaton: &'a A,
    /// Its key fields, version and branches.
    pub(super) meta: &'a Meta,
    pub(super) key: &'a KeyValue,
    pub(super) sink: &'a mut S,
    pub(super) stats: &'a mut Stats,
    /// The pattern's own counts.
    pub(super) counts: &'a mut PatternCounts,
    /// Does the step's limit come from the engine's limit over all keys
    /// (so a dropped partial match counts in [`Stats::capped_runs`])?
    pub(super) capped: bool,
    /// Where a match's `then` writes go (applied after the step).
    pub(super) writes: &'a mut Vec<Change>,
}

impl<E, A: Automaton<E>, S: Sink<E> + ?Sized> Reporter<E, A> for Bridge<'_, A, S> {
    // (Out of line: inlined into the matcher's step with the relay, it
    // costs the step more than the call, match or not.)
    #[inline(never)]
    fn on_match(&mut self, m: &A::View<'_>) {
        let Bridge {
            pattern,
            automaton,
            meta,
            key,
            sink,
            stats,
            counts,
            writes,
            ..
        } = self;
        let ir = automaton.pattern();
        let ctx = MatchContext::new(*pattern, ir, &meta.key_paths, key)
            .with_version(meta.version, meta.versioned)
            .with_branches(meta.branched);
        let made = MatchRef::new(&ctx, m);
        if sink.holds_back(&made) {
            // (an instance's match on an event outside its scene: not
            // made, so neither counted nor writing)
            return;
        }
        stats.matches += 1;
        counts.matches += 1;
        sink.on_match(&made);
        if !ir.writes.is_empty() {
            push_writes::<E, A>(ir, m, writes);
        }
    }

    // (out of line and cold: a trace asks it, the engine's step never
    // does, and the step's code is as it was without it)
    #[cold]
    #[inline(never)]
    fn holds_back(&mut self, m: &A::View<'_>) -> bool {
        let Bridge {
            pattern,
            automaton,
            meta,
            key,
            sink,
            ..
        } = self;
        let ctx = MatchContext::new(*pattern, automaton.pattern(), &meta.key_paths, key)
            .with_version(meta.version, meta.versioned)
            .with_branches(meta.branched);
        sink.holds_back(&MatchRef::new(&ctx, m))
    }

    fn on_timeout(&mut self, m: &A::View<'_>, expired_at: Timestamp) {
        let Bridge {
            pattern,
            automaton,
            meta,
            key,
            sink,
            stats,
            counts,
            ..
        } = self;
        stats.timeouts += 1;
        counts.timeouts += 1;
        let ir = automaton.pattern();
        let ctx = MatchContext::new(*pattern, ir, &meta.key_paths, key)
            .with_version(meta.version, meta.versioned)
            .with_branches(meta.branched);
        sink.on_timeout(&MatchRef::new(&ctx, m), expired_at);
    }

    fn on_dropped(&mut self, m: &A::View<'_>) {
        let Bridge {
            pattern,
            automaton,
            meta,
            key,
            sink,
            stats,
            counts,
            capped,
            ..
        } = self;
        stats.dropped_runs += 1;
        stats.capped_runs += u64::from(*capped);
        counts.dropped_runs += 1;
        counts.capped_runs += u64::from(*capped);
        let mut ctx = MatchContext::new(*pattern, automaton.pattern(), &meta.key_paths, key)
            .with_version(meta.version, meta.versioned)
            .with_branches(meta.branched);
        ctx.capped = *capped;
        sink.on_dropped(&MatchRef::new(&ctx, m));
    }

    fn key(&self) -> Option<&[Value]> {
        Some(&self.key[..])
    }

    fn capped(&self) -> bool {
        self.capped
    }
}

/// The `then` writes of a match `m` of pattern `ir` (which has some),
/// into `writes`. Out of line: a match of a pattern without `then` (most)
/// pays one test for them.
#[inline(never)]
fn push_writes<E, A: Automaton<E>>(ir: &Pattern, m: &A::View<'_>, writes: &mut Vec<Change>) {
    for (w, value) in ir.writes.iter().zip(m.write_values()) {
        writes.push(Change {
            list: w.list.id,
            op: w.op,
            value,
            lifetime: w.expiry,
            until: None,
            from: None,
            shadow: ir.shadow,
            origin: crate::engine::memory::EntryOrigin::Rules,
        });
    }
}

/// Offers the event of `step` to `x`, a live partition of its pattern
/// (`ordinals` numbers the pattern's partitions), time advanced first;
/// keeps the engine's counts (live partial matches, live partitions) and,
/// when the partition empties, gives its number back: it stays where it
/// is, a hole. The step's limit is the per-key one, or less when the
/// engine's `live_limit` over all keys leaves less room.
#[inline(always)]
fn step_live<E, A: Automaton<E>, S: Sink<E> + ?Sized, L: LookupRef>(
    mut step: Step<'_, E, A, L>,
    bridge: &mut Bridge<'_, A, S>,
    x: &mut Part<A::Partition>,
    ordinals: &mut Ordinals,
    (live_runs, live_parts): (&mut usize, &mut usize),
    live_limit: usize,
) {
    (step.limit, bridge.capped) = limit_of(step.limit, live_limit, *live_runs, || {
        A::partial_matches(&x.part)
    });
    let change = step.existing(&mut x.part, bridge);
    *live_runs = add_change(*live_runs, change);
    if A::is_empty(&x.part) {
        ordinals.give(std::mem::replace(&mut x.ordinal, HOLE));
        *live_parts -= 1;
    }
}

/// How the steps of one event, or of one time's deadlines, read the lists
/// and indicators: [`Plain`] when the rule set declares none (the
/// matcher then carries nothing for them, [`NoLookup`]), else [`Reads`]
/// (each pattern's [`lookup_of`]). Chosen once per event, so that a
/// pattern of a rule set without lists and indicators pays one test per
/// event for them, not one per pattern and call.
pub(super) trait Reading {
    /// The lookup a step carries.
    type L<'a>: LookupRef;

    /// The lookup of a pattern (`shadow`: a shadow one).
    fn lookup<'a>(memory: &'a Memory, view: &'a ShadowView<'a>, shadow: bool) -> Self::L<'a>;
}

/// [`Reading`] for a rule set without lists and indicators.
pub(super) struct Plain;

impl Reading for Plain {
    type L<'a> = NoLookup;

    #[inline(always)]
    fn lookup<'a>(_: &'a Memory, _: &'a ShadowView<'a>, _: bool) -> NoLookup {
        NoLookup
    }
}

/// [`Reading`] for a rule set with lists or indicators.
pub(super) struct Reads;

impl Reading for Reads {
    type L<'a> = &'a dyn Lookup;

    #[inline(always)]
    fn lookup<'a>(memory: &'a Memory, view: &'a ShadowView<'a>, shadow: bool) -> &'a dyn Lookup {
        lookup_of(memory, view, shadow)
    }
}

/// The lists as a rule's conditions read them: a shadow rule reads their
/// shadow copies (`view`, `docs/semantics.md`, "Shadow rules"), any other
/// rule the lists themselves (`memory`).
#[inline(always)]
pub(super) fn lookup_of<'a>(
    memory: &'a Memory,
    view: &'a ShadowView<'a>,
    shadow: bool,
) -> &'a dyn Lookup {
    if shadow {
        view
    } else {
        memory
    }
}

/// Advances one partition of pattern `p` to `t` (its due timeouts and
/// pending endings go to `sink`), keeps the engine's counts (live partial
/// matches, live partitions) and, when the partition empties, gives its
/// number back: it stays where it is, a hole.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn advance_part<E: Event, A: Automaton<E>, S: Sink<E> + ?Sized, L: LookupRef>(
    run: &mut PatternRun<A>,
    p: usize,
    x: &mut Part<A::Partition>,
    key: &KeyValue,
    (store, cache): (&mut A::Store, &mut A::Cache),
    (lookup, writes): (L, &mut Vec<Change>),
    t: Timestamp,
    sink: &mut S,
    stats: &mut Stats,
    (live_runs, live_parts): (&mut usize, &mut usize),
) {
    let mut bridge = Bridge {
        pattern: p,
        automaton: &run.automaton,
        meta: &run.meta,
        key,
        sink,
        stats,
        counts: &mut run.counts,
        capped: false,
        writes,
    };
    let change = run
        .automaton
        .advance_time(&mut x.part, store, cache, lookup, t, &mut bridge);
    *live_runs = add_change(*live_runs, change);
    if A::is_empty(&x.part) {
        run.ordinals.give(std::mem::replace(&mut x.ordinal, HOLE));
        *live_parts -= 1;
    }
}

/// The default limit on partial matches per pattern and key
/// ([`Engine::max_runs_per_key`](crate::Engine::max_runs_per_key)).
pub const DEFAULT_MAX_RUNS_PER_KEY: usize = 10_000;

/// The default limit on partial matches over all patterns and keys
/// ([`Engine::max_live_runs`](crate::Engine::max_live_runs)).
pub const DEFAULT_MAX_LIVE_RUNS: usize = 4_000_000;

/// The limit of one partition's step: the per-key limit, or less when the
/// engine's limit over all keys leaves less room beside the `others`
/// partial matches of all other partitions (then true: a drop is the
/// engine's limit's).
#[inline(always)]
fn step_limit(run_limit: usize, live_limit: usize, others: usize) -> (usize, bool) {
    let room = live_limit.saturating_sub(others);
    if room < run_limit {
        (room, true)
    } else {
        (run_limit, false)
    }
}

/// [`step_limit`] for a partition that holds `mine()` partial matches,
/// counted only when the engine's limit over all keys may leave less room
/// than the per-key limit (the other partitions hold at most `live`, so
/// with `live_limit - live >= run_limit` it cannot).
#[inline(always)]
fn limit_of(
    run_limit: usize,
    live_limit: usize,
    live: usize,
    mine: impl FnOnce() -> usize,
) -> (usize, bool) {
    if live_limit.saturating_sub(live) >= run_limit {
        return (run_limit, false);
    }
    step_limit(run_limit, live_limit, live_beside(live, mine()))
}

/// The count of live partial matches after a step changed one
/// partition's by `change`.
#[inline(always)]
fn add_change(live: usize, change: isize) -> usize {
    debug_assert!(
        live.checked_add_signed(change).is_some(),
        "{change} partial matches of {live} live"
    );
    live.saturating_add_signed(change)
}

/// The live partial matches of all partitions but one that holds `mine`.
#[inline(always)]
pub(super) fn live_beside(live: usize, mine: usize) -> usize {
    debug_assert!(mine <= live, "{mine} partial matches of {live} live");
    live.saturating_sub(mine)
}

/// The default limit on events waiting for the watermark.
pub const DEFAULT_MAX_WAITING_EVENTS: usize = 1_000_000;

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// The same engine with each pattern's automaton made into another
    /// that keeps the same partitions, store and cache (a trace's,
    /// `engine::why`): everything else moves as it is. The groups' start
    /// guards are computed again from the new automata.
    pub(super) fn map_automata<B>(self, mut f: impl FnMut(A) -> B) -> Core<E, B>
    where
        B: Automaton<E, Partition = A::Partition, Store = A::Store, Cache = A::Cache>,
    {
        let patterns = (self.patterns.into_iter())
            .map(|run| PatternRun {
                automaton: f(run.automaton),
                meta: run.meta,
                group: run.group,
                local: run.local,
                last: run.last,
                skip_to: run.skip_to,
                ordinals: run.ordinals,
                draining: run.draining,
                counts: run.counts,
            })
            .collect();
        let mut core = Core {
            patterns,
            groups: self.groups,
            group_of_fields: self.group_of_fields,
            store: self.store,
            cache: self.cache,
            memory: self.memory,
            writes: self.writes,
            handed: self.handed,
            clock: self.clock,
            deadlines: self.deadlines,
            hasher: self.hasher,
            stats: self.stats,
            run_limit: self.run_limit,
            live_limit: self.live_limit,
            live_runs: self.live_runs,
            waiting_limit: self.waiting_limit,
            for_indicators: self.for_indicators,
            live_parts: self.live_parts,
            draining: self.draining,
            due: self.due,
            firing: self.firing,
            due_counts: self.due_counts,
            due_sorted: self.due_sorted,
            decide: self.decide,
        };
        core.refresh_guards();
        core
    }

    /// The key of `event` for each pattern (its `partition by` fields and
    /// their values; `None` when the event has no usable key for it), for
    /// a trace.
    pub(super) fn keys_of(&self, event: &E) -> Vec<(&[FieldPath], Option<KeyValue>)> {
        let mut keys: Vec<Option<Option<KeyValue>>> = vec![None; self.groups.len()];
        (self.patterns.iter())
            .map(|run| {
                let group = &self.groups[run.group];
                let key = keys[run.group].get_or_insert_with(|| {
                    let mut key = KeyValue::default();
                    read_key(event, &group.key_ids, &group.key_fn, &mut key)
                        .ok()
                        .map(|()| key)
                });
                (run.meta.key_paths.as_slice(), key.clone())
            })
            .collect()
    }
}
