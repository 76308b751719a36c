//! [`Engine`]: many patterns over one stream, in event time, per key.

use crate::engine::automaton::{Automaton, EventStore, Reporter};
use crate::engine::clock::Clock;
use crate::engine::deadlines::DeadlineIndex;
use crate::engine::partitions::{KeyHasher, Partitions, SlotRef};
use crate::engine::sink::{MatchContext, MatchRef, Sink};
use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::pattern::NativeKeyFn;
use crate::primitives::Timestamp;
use crate::value::{key_part, KeyValue};

/// Counters of what an engine has seen and produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// "The limit on partial matches per key").
    pub dropped_runs: u64,
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

/// One pattern of the engine with its per-key state.
struct PatternRun<E, A: Automaton<E>> {
    automaton: A,
    key_ids: Vec<FieldId>,
    key_paths: Vec<FieldPath>,
    /// The builder's `partition_by_fn` key, instead of `key_ids`.
    key_fn: Option<NativeKeyFn<E>>,
    /// Is the pattern partitioned by the same fields as the one before it
    /// (so an event's key for it is the same)?
    same_key_as_previous: bool,
    partitions: Partitions<A::Partition>,
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
/// before the events of time `t`, every deadline at or before `t`.
pub(crate) struct Core<E, A: Automaton<E>> {
    patterns: Vec<PatternRun<E, A>>,
    store: A::Store,
    cache: A::Cache,
    clock: Clock<E>,
    deadlines: DeadlineIndex,
    hasher: KeyHasher,
    stats: Stats,
    /// At most this many partial matches per pattern and key.
    run_limit: usize,
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// An engine without patterns; `max_delay` is the bounded
    /// out-of-orderness in milliseconds.
    pub fn new(max_delay: i64) -> Self {
        Core {
            patterns: Vec::new(),
            store: A::Store::default(),
            cache: A::Cache::default(),
            clock: Clock::new(max_delay),
            deadlines: DeadlineIndex::default(),
            hasher: KeyHasher::default(),
            stats: Stats::default(),
            run_limit: DEFAULT_MAX_RUNS_PER_KEY,
        }
    }

    /// Sets the limit on partial matches per pattern and key (at least 1).
    pub fn set_run_limit(&mut self, limit: usize) {
        self.run_limit = limit.max(1);
    }

    /// Adds a compiled pattern, resolving its `partition by` fields with
    /// `fields`; returns its index (as in [`MatchContext::pattern`]).
    pub fn add(&mut self, automaton: A, fields: &mut dyn FieldResolver) -> Result<usize, String>
    where
        E: 'static,
    {
        let key_paths = automaton.pattern().partition_by.clone();
        let key_ids = key_paths
            .iter()
            .map(|path| fields.resolve(path))
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
        let same_key_as_previous = key_fn.is_none()
            && self
                .patterns
                .last()
                .is_some_and(|q| q.key_fn.is_none() && q.key_ids == key_ids);
        self.patterns.push(PatternRun {
            automaton,
            same_key_as_previous,
            key_ids,
            key_paths,
            key_fn,
            partitions: Partitions::default(),
        });
        Ok(self.patterns.len() - 1)
    }

    /// The compiled patterns, in the order added.
    pub fn automata(&self) -> impl Iterator<Item = &A> {
        self.patterns.iter().map(|p| &p.automaton)
    }

    /// Takes one event in. It is late (and goes to `sink.on_late`) when its
    /// time is at or below the watermark; otherwise it waits, and whatever
    /// the watermark has now passed is processed.
    pub fn push<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) -> Arrival {
        self.stats.events += 1;
        match self.clock.arrive(ts, event) {
            Err(event) => {
                self.stats.late += 1;
                sink.on_late(ts, &event);
                Arrival::Late
            }
            Ok(()) => {
                self.run_to(self.clock.watermark(), sink);
                Arrival::Accepted
            }
        }
    }

    /// A punctuated watermark: every event at or below `t` has arrived.
    /// Moves event time to `t` (never backwards), firing what is due.
    pub fn watermark<S: Sink<E> + ?Sized>(&mut self, t: Timestamp, sink: &mut S) {
        self.clock.raise(t);
        self.run_to(self.clock.watermark(), sink);
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

    /// Live keys summed over all patterns (keys with partial matches).
    pub fn live_partitions(&self) -> usize {
        self.patterns.iter().map(|p| p.partitions.len()).sum()
    }

    /// Events waiting for the watermark.
    pub fn waiting_events(&self) -> usize {
        self.clock.waiting()
    }

    /// Events held in the store by partial matches.
    pub fn stored_events(&self) -> usize {
        self.store.live_events()
    }

    /// Processes, in global time order, the waiting events and the
    /// deadlines up to `bound` (events only up to the watermark). A deadline
    /// at the time of the next event fires first.
    fn run_to<S: Sink<E> + ?Sized>(&mut self, bound: Timestamp, sink: &mut S) {
        loop {
            let until = self.clock.next_ready().map_or(bound, |te| te.min(bound));
            if let Some((t, p, slot)) = self.due_deadline(until) {
                self.fire_deadline(t, p, slot, sink);
            } else if let Some((ts, event)) = self.clock.pop_ready() {
                self.process_event(ts, event, sink);
            } else {
                break;
            }
        }
    }

    /// The earliest deadline at or before `until` of any pattern, with its
    /// pattern and slot.
    fn due_deadline(&mut self, until: Timestamp) -> Option<(Timestamp, usize, SlotRef)> {
        let patterns = &self.patterns;
        self.deadlines
            .peek_due(until, |p, t, i| patterns[p].partitions.scheduled_at(t, i))
    }

    /// Advances pattern `p`'s partition `slot` to its deadline `t`, the
    /// earliest in the index (as [`Core::due_deadline`] found it).
    fn fire_deadline<S: Sink<E> + ?Sized>(
        &mut self,
        t: Timestamp,
        p: usize,
        slot: SlotRef,
        sink: &mut S,
    ) {
        self.deadlines.pop();
        self.patterns[p].partitions.unschedule(slot);
        self.drive(p, slot, sink, |a, part, store, cache, out| {
            a.advance_time(part, store, cache, t, out)
        });
    }

    /// Puts what [`Partitions::settle`] scheduled for pattern `p` into the
    /// deadline index.
    fn schedule(&mut self, p: usize, scheduled: Option<(Timestamp, SlotRef)>) {
        let Some((t, slot)) = scheduled else {
            return;
        };
        if self.deadlines.push(t, p, slot) {
            self.deadlines
                .compact_if_stale(self.patterns.iter().map(|r| &r.partitions));
        }
    }

    /// Stores one event and offers it to every pattern's partition of its
    /// key, time advanced first. The key is read and hashed once for a run
    /// of patterns partitioned by the same fields.
    fn process_event<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) {
        let ev = self.store.insert(ts, event);
        // The key and its hash, or why there is none.
        let mut keyed: Result<(KeyValue, u64), NoKey> = Err(NoKey::Missing);
        for p in 0..self.patterns.len() {
            if p == 0 || !self.patterns[p].same_key_as_previous {
                keyed = self.key_of(p, ev).map(|key| {
                    let hash = self.hasher.key(&key);
                    (key, hash)
                });
            }
            let (key, hash) = match &keyed {
                Ok(keyed) => keyed,
                Err(NoKey::Missing) => {
                    self.stats.unkeyed += 1;
                    continue;
                }
                Err(NoKey::Unusable) => {
                    self.stats.unusable_keys += 1;
                    continue;
                }
            };
            let limit = self.run_limit;
            match self.patterns[p].partitions.find(*hash, key) {
                Some(slot) => self.drive(p, slot, sink, |a, part, store, cache, out| {
                    a.advance_time(part, store, cache, ts, out);
                    a.process(part, store, cache, limit, ev, out);
                }),
                None => self.start_partition(p, key, *hash, ev, sink),
            }
        }
        self.store.release_if_unused(ev);
    }

    /// The values of pattern `p`'s key fields in the event (or its key
    /// closure's value), normalized by [`key_part`] so that keys equal
    /// under `==` are one key; or why there is no key: a field is missing
    /// (null), or its value cannot be a key (an object, NaN).
    fn key_of(&self, p: usize, ev: <A::Store as EventStore<E>>::Ref) -> Result<KeyValue, NoKey> {
        let event = self.store.get(ev);
        if let Some(key_fn) = &self.patterns[p].key_fn {
            let value = key_fn(event);
            if value.is_null() {
                return Err(NoKey::Missing);
            }
            let value = key_part(value).ok_or(NoKey::Unusable)?;
            return Ok(std::iter::once(value).collect());
        }
        let mut key = KeyValue::new();
        for &id in &self.patterns[p].key_ids {
            let value = event.field_owned(id);
            if value.is_null() {
                return Err(if event.field_is_object(id) {
                    NoKey::Unusable
                } else {
                    NoKey::Missing
                });
            }
            key.push(key_part(value).ok_or(NoKey::Unusable)?);
        }
        Ok(key)
    }

    /// Offers an event to a fresh partition for a key without state, and
    /// keeps the partition only if the event left something in it (most
    /// events of a new key start nothing, so no map entry is made for them).
    fn start_partition<S: Sink<E> + ?Sized>(
        &mut self,
        p: usize,
        key: &KeyValue,
        hash: u64,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        let run = &mut self.patterns[p];
        let mut part = A::Partition::default();
        let mut bridge = Bridge {
            ctx: MatchContext::new(p, run.automaton.pattern(), &run.key_paths, key),
            sink,
            stats: &mut self.stats,
        };
        run.automaton.process(
            &mut part,
            &mut self.store,
            &mut self.cache,
            self.run_limit,
            ev,
            &mut bridge,
        );
        if !A::is_empty(&part) {
            let deadline = A::next_deadline(&part);
            let slot = run.partitions.insert(hash, key.clone(), part);
            let scheduled = run.partitions.settle(slot, false, deadline);
            self.schedule(p, scheduled);
        }
    }

    /// Runs `step` on one partition with its output routed to `sink`, then
    /// reschedules or forgets the partition.
    fn drive<S, F>(&mut self, p: usize, slot: SlotRef, sink: &mut S, step: F)
    where
        S: Sink<E> + ?Sized,
        F: FnOnce(&A, &mut A::Partition, &mut A::Store, &mut A::Cache, &mut dyn Reporter<E, A>),
    {
        let run = &mut self.patterns[p];
        let Some((key, part)) = run.partitions.get_mut(slot) else {
            return;
        };
        let mut bridge = Bridge {
            ctx: MatchContext::new(p, run.automaton.pattern(), &run.key_paths, key),
            sink,
            stats: &mut self.stats,
        };
        step(
            &run.automaton,
            part,
            &mut self.store,
            &mut self.cache,
            &mut bridge,
        );
        let empty = A::is_empty(part);
        let deadline = A::next_deadline(part);
        let scheduled = run.partitions.settle(slot, empty, deadline);
        self.schedule(p, scheduled);
    }
}

/// Routes one partition's output to the engine's sink with its context.
struct Bridge<'a, S: ?Sized> {
    ctx: MatchContext<'a>,
    sink: &'a mut S,
    stats: &'a mut Stats,
}

impl<E, A: Automaton<E>, S: Sink<E> + ?Sized> Reporter<E, A> for Bridge<'_, S> {
    fn on_match(&mut self, m: &A::View<'_>) {
        self.stats.matches += 1;
        self.sink.on_match(&MatchRef::new(&self.ctx, m));
    }

    fn on_timeout(&mut self, m: &A::View<'_>, expired_at: Timestamp) {
        self.stats.timeouts += 1;
        self.sink
            .on_timeout(&MatchRef::new(&self.ctx, m), expired_at);
    }

    fn on_dropped(&mut self, m: &A::View<'_>) {
        self.stats.dropped_runs += 1;
        self.sink.on_dropped(&MatchRef::new(&self.ctx, m));
    }
}

/// The default limit on partial matches per pattern and key
/// ([`Engine::max_runs_per_key`](crate::Engine::max_runs_per_key)).
pub const DEFAULT_MAX_RUNS_PER_KEY: usize = 10_000;
