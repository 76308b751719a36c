//! [`Engine`]: many patterns over one stream, in event time, per key.

use crate::engine::automaton::{Automaton, EventStore, Reporter};
use crate::engine::clock::Clock;
use crate::engine::deadlines::{DeadlineIndex, Entry};
use crate::engine::partitions::{drop_empty, KeyHasher, Keys, Ordinals, Part};
use crate::engine::sink::{MatchContext, MatchRef, Sink};
use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::pattern::NativeKeyFn;
use crate::primitives::Timestamp;
use crate::value::{key_part, KeyValue, Value};

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
    /// Times the watermark was moved up to the earliest waiting event
    /// because more events waited than the engine's limit
    /// (`Engine::max_waiting_events`; see `docs/semantics.md`, "The limit
    /// on waiting events").
    pub forced_watermarks: u64,
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

/// One pattern of the engine.
pub(super) struct PatternRun<A> {
    pub(super) automaton: A,
    key_paths: Vec<FieldPath>,
    /// The group of patterns partitioned alike that it belongs to, and its
    /// position among the group's patterns.
    pub(super) group: usize,
    local: usize,
    /// Is it the group's last pattern (so far)?
    last: bool,
    /// Numbers for its partitions (they order its deadlines of equal
    /// time).
    pub(super) ordinals: Ordinals,
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
    size: usize,
    /// The key of the event being processed, its hash, or why it has none.
    key: KeyValue,
    hash: u64,
    no_key: Option<NoKey>,
    /// The event's key's slot, once it has one.
    slot: Option<u32>,
    /// Did the event empty one of the slot's partitions?
    emptied: bool,
    /// In a group of more than [`PLACE_FROM`] patterns, where each
    /// pattern's partition is in the slot (by position in the group;
    /// [`NO_PART`] for none) while an event is processed; smaller groups
    /// search the slot.
    place: Vec<u32>,
}

/// No partition, in [`Group::place`].
const NO_PART: u32 = u32::MAX;

/// The size from which a group keeps [`Group::place`].
const PLACE_FROM: usize = 8;

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
    pub(super) store: A::Store,
    cache: A::Cache,
    pub(super) clock: Clock<E>,
    pub(super) deadlines: DeadlineIndex,
    pub(super) hasher: KeyHasher,
    pub(super) stats: Stats,
    /// At most this many partial matches per pattern and key.
    pub(super) run_limit: usize,
    /// The most events that wait for the watermark.
    pub(super) waiting_limit: usize,
    /// Live partitions, over all patterns and keys.
    pub(super) live_parts: usize,
    /// The partitions due at `firing`, last first.
    due: Vec<Due>,
    /// The time whose deadlines `due` holds.
    firing: Timestamp,
    /// Space for [`Core::sort_due`].
    due_counts: Vec<u32>,
    due_sorted: Vec<Due>,
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// An engine without patterns; `max_delay` is the bounded
    /// out-of-orderness in milliseconds.
    pub fn new(max_delay: i64) -> Self {
        Core {
            patterns: Vec::new(),
            groups: Vec::new(),
            store: A::Store::default(),
            cache: A::Cache::default(),
            clock: Clock::new(max_delay),
            deadlines: DeadlineIndex::default(),
            hasher: KeyHasher::default(),
            stats: Stats::default(),
            run_limit: DEFAULT_MAX_RUNS_PER_KEY,
            waiting_limit: DEFAULT_MAX_WAITING_EVENTS,
            live_parts: 0,
            due: Vec::new(),
            firing: 0,
            due_counts: Vec::new(),
            due_sorted: Vec::new(),
        }
    }

    /// Sets the limit on partial matches per pattern and key (at least 1).
    pub fn set_run_limit(&mut self, limit: usize) {
        self.run_limit = limit.max(1);
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
        let shared = self
            .groups
            .iter()
            .position(|g| key_fn.is_none() && g.key_fn.is_none() && g.key_ids == key_ids);
        let group = shared.unwrap_or_else(|| {
            self.groups.push(Group {
                key_ids,
                key_fn,
                keys: Keys::default(),
                size: 0,
                key: KeyValue::new(),
                hash: 0,
                no_key: None,
                slot: None,
                emptied: false,
                place: Vec::new(),
            });
            self.groups.len() - 1
        });
        automaton.share(&mut self.cache);
        let local = self.groups[group].size;
        self.groups[group].size += 1;
        self.groups[group].place.push(NO_PART);
        for earlier in self.patterns.iter_mut().filter(|q| q.group == group) {
            earlier.last = false;
        }
        self.patterns.push(PatternRun {
            automaton,
            key_paths,
            group,
            local,
            last: true,
            ordinals: Ordinals::default(),
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
                if self.clock.waiting() > self.waiting_limit {
                    self.force_watermark();
                }
                self.run_to(self.clock.watermark(), sink);
                Arrival::Accepted
            }
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

    /// Live partitions summed over all patterns (keys with partial
    /// matches, counted once per pattern).
    pub fn live_partitions(&self) -> usize {
        self.live_parts
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
            if self.collect_due(until) {
                self.fire_due(sink);
            } else if let Some((ts, event)) = self.clock.pop_ready() {
                self.process_event(ts, event, sink);
            } else {
                break;
            }
        }
    }

    /// Is a partition's deadline at or before `until` due? When none is
    /// collected yet, collects every partition due at the earliest deadline
    /// in the index (if it is at or before `until`), in the order they fire:
    /// by pattern, then by number ([`Ordinals`]), which is the order in
    /// which they fired when each pattern indexed its own keys. (Firing a
    /// partition at `t` leaves it no deadline at or before `t`, and no
    /// event comes between deadlines of one time, so the set is complete.)
    fn collect_due(&mut self, until: Timestamp) -> bool {
        if !self.due.is_empty() {
            debug_assert!(self.firing <= until);
            return true;
        }
        loop {
            let Some((t, _, _)) = self.peek_key(until) else {
                return false;
            };
            while let Some((_, g, s)) = self.peek_key(t) {
                self.deadlines.pop();
                let before = self.due.len();
                let keys = &mut self.groups[g as usize].keys;
                keys.unschedule(s);
                if let Some((_, parts)) = keys.get_mut(s) {
                    for (index, part) in parts.iter().enumerate() {
                        if A::next_deadline(&part.part).is_some_and(|d| d <= t) {
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
            }
            if !self.due.is_empty() {
                self.firing = t;
                self.sort_due();
                return true;
            }
        }
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

    /// The earliest valid entry of the deadline index at or before `until`.
    #[inline]
    fn peek_key(&mut self, until: Timestamp) -> Option<Entry> {
        let groups = &self.groups;
        self.deadlines.peek_due(until, |(t, g, s)| {
            groups[g as usize].keys.scheduled_at(t, s)
        })
    }

    /// Advances the next partition collected by [`Core::collect_due`] to
    /// its deadline, then drops it if it is empty and reschedules its key.
    fn fire_due<S: Sink<E> + ?Sized>(&mut self, sink: &mut S) {
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
        let mine =
            |x: &Part<A::Partition>| x.pattern == due.pattern() && x.ordinal == due.ordinal();
        let i = due.index as usize;
        let mut emptied = false;
        if parts.get(i).is_some_and(mine) {
            let mut bridge = Bridge {
                ctx: MatchContext::new(p, run.automaton.pattern(), &run.key_paths, key),
                sink,
                stats: &mut self.stats,
            };
            let part = &mut parts[i].part;
            run.automaton
                .advance_time(part, &mut self.store, &mut self.cache, t, &mut bridge);
            if A::is_empty(part) {
                // Its number goes back now (in firing order, as when each
                // pattern had its own map); it leaves the slot after the
                // key's last partition due now.
                run.ordinals.give(due.ordinal());
                self.live_parts -= 1;
                emptied = true;
            }
        }
        if let Some(emptied) = keys.done_pending(due.slot, emptied) {
            // The key's last partition due now: drop the emptied ones,
            // reschedule the key.
            if emptied {
                if let Some((_, parts)) = keys.get_mut(due.slot) {
                    drop_empty(parts, A::is_empty, |_| {});
                }
            }
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
        if self.deadlines.push(t, g, slot) {
            let groups = &self.groups;
            let live = groups.iter().map(|g| g.keys.len()).sum();
            self.deadlines.compact_if_stale(
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
        }
    }

    /// Stores one event and offers it to every pattern's partition of its
    /// key, in pattern order, time advanced first. The key is read, hashed
    /// and looked up once per group of patterns partitioned alike, at its
    /// first pattern; after its last one, the key's emptied partitions are
    /// dropped and its schedule updated, once (a pattern's partition of the
    /// key is stepped once per event, so dropping it later hands its number
    /// back in the same order).
    fn process_event<S: Sink<E> + ?Sized>(&mut self, ts: Timestamp, event: E, sink: &mut S) {
        let ev = self.store.insert(ts, event);
        A::begin_event(&mut self.cache);
        if self.patterns.len() == 1 {
            self.process_single(ts, ev, sink);
            self.store.release_if_unused(ev);
            return;
        }
        for p in 0..self.patterns.len() {
            let (g, first, last) = {
                let run = &self.patterns[p];
                (run.group, run.local == 0, run.last)
            };
            if first {
                self.find_key(g, ev);
            }
            self.offer(p, ts, ev, sink);
            if last {
                self.settle_key(g);
            }
        }
        self.store.release_if_unused(ev);
    }

    /// [`Core::process_event`] for an engine of one pattern: the same steps
    /// without the bookkeeping that several patterns need (the key's one
    /// partition is stepped and the key settled at once).
    #[inline]
    fn process_single<S: Sink<E> + ?Sized>(
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
                return;
            }
            Err(NoKey::Unusable) => {
                self.stats.unusable_keys += 1;
                return;
            }
        }
        let hash = self.hasher.key(&group.key);
        let key = &group.key;
        let keys = &mut group.keys;
        let mut bridge = Bridge {
            ctx: MatchContext::new(0, run.automaton.pattern(), &run.key_paths, key),
            sink,
            stats: &mut self.stats,
        };
        let a = &run.automaton;
        let limit = self.run_limit;
        let slot = match keys.find(hash, key) {
            Some(slot) => {
                let Some(part) = keys.get_mut(slot).and_then(|(_, parts)| parts.first_mut()) else {
                    return;
                };
                let (ordinal, part) = (part.ordinal, &mut part.part);
                a.advance_time(part, &mut self.store, &mut self.cache, ts, &mut bridge);
                a.process(
                    part,
                    &mut self.store,
                    &mut self.cache,
                    limit,
                    ev,
                    &mut bridge,
                );
                if A::is_empty(part) {
                    run.ordinals.give(ordinal);
                    self.live_parts -= 1;
                    keys.remove(slot);
                    return;
                }
                slot
            }
            None => {
                let mut part = A::Partition::default();
                a.process(
                    &mut part,
                    &mut self.store,
                    &mut self.cache,
                    limit,
                    ev,
                    &mut bridge,
                );
                if A::is_empty(&part) {
                    return;
                }
                self.live_parts += 1;
                let ordinal = run.ordinals.take();
                keys.insert(hash, key.clone(), part, 0, ordinal)
            }
        };
        let scheduled = keys.settle(slot, None, A::next_deadline);
        self.schedule(0, slot, scheduled);
    }

    /// Reads, hashes and looks up group `g`'s key of the event, before its
    /// first pattern's turn.
    #[inline]
    fn find_key(&mut self, g: usize, ev: <A::Store as EventStore<E>>::Ref) {
        let event = self.store.get(ev);
        let group = &mut self.groups[g];
        group.no_key = read_key(event, &group.key_ids, &group.key_fn, &mut group.key).err();
        group.slot = None;
        if group.no_key.is_none() {
            group.hash = self.hasher.key(&group.key);
            group.slot = group.keys.find(group.hash, &group.key);
        }
        if group.size > PLACE_FROM {
            group.place.fill(NO_PART);
            if let Some((_, parts)) = group.slot.and_then(|s| group.keys.get_mut(s)) {
                for (i, part) in parts.iter().enumerate() {
                    group.place[self.patterns[part.pattern as usize].local] = i as u32;
                }
            }
        }
    }

    /// After group `g`'s last pattern's turn: drops the key's emptied
    /// partitions and updates its schedule.
    #[inline]
    fn settle_key(&mut self, g: usize) {
        let group = &mut self.groups[g];
        let Some(slot) = group.slot.take() else {
            return;
        };
        if std::mem::take(&mut group.emptied) {
            if let Some((_, parts)) = group.keys.get_mut(slot) {
                // (One partition: it is the one emptied.)
                if parts.len() == 1 || parts.iter().all(|x| A::is_empty(&x.part)) {
                    // The key is done: its slot goes, partitions and all.
                    for part in parts.iter() {
                        self.patterns[part.pattern as usize]
                            .ordinals
                            .give(part.ordinal);
                    }
                    self.live_parts -= parts.len();
                    group.keys.remove(slot);
                    return;
                }
                let (patterns, live_parts) = (&mut self.patterns, &mut self.live_parts);
                drop_empty(parts, A::is_empty, |part| {
                    patterns[part.pattern as usize].ordinals.give(part.ordinal);
                    *live_parts -= 1;
                });
            }
        }
        let scheduled = group.keys.settle(slot, None, A::next_deadline);
        self.schedule(g, slot, scheduled);
    }

    /// Offers the event to pattern `p`'s partition of the event's key
    /// (found by [`Core::process_event`]), time advanced first; or, when
    /// the key has none for `p`, to a fresh partition, kept only if the
    /// event left something in it (most events of a new key start nothing,
    /// so no slot is made for them).
    fn offer<S: Sink<E> + ?Sized>(
        &mut self,
        p: usize,
        ts: Timestamp,
        ev: <A::Store as EventStore<E>>::Ref,
        sink: &mut S,
    ) {
        let run = &mut self.patterns[p];
        let Group {
            keys,
            size,
            key,
            hash,
            no_key,
            slot,
            emptied,
            place,
            ..
        } = &mut self.groups[run.group];
        match no_key {
            None => {}
            Some(NoKey::Missing) => {
                self.stats.unkeyed += 1;
                return;
            }
            Some(NoKey::Unusable) => {
                self.stats.unusable_keys += 1;
                return;
            }
        }
        let (key, hash) = (&*key, *hash);
        let mut bridge = Bridge {
            ctx: MatchContext::new(p, run.automaton.pattern(), &run.key_paths, key),
            sink,
            stats: &mut self.stats,
        };
        let a = &run.automaton;
        let limit = self.run_limit;
        let parts = slot.and_then(|s| keys.get_mut(s)).map(|(_, parts)| parts);
        if let Some(parts) = parts {
            let found = if *size > PLACE_FROM {
                parts.get_mut(place[run.local] as usize)
            } else {
                parts.iter_mut().find(|x| x.pattern as usize == p)
            };
            if let Some(found) = found {
                let part = &mut found.part;
                a.advance_time(part, &mut self.store, &mut self.cache, ts, &mut bridge);
                a.process(
                    part,
                    &mut self.store,
                    &mut self.cache,
                    limit,
                    ev,
                    &mut bridge,
                );
                *emptied |= A::is_empty(part);
                return;
            }
            let mut part = A::Partition::default();
            a.process(
                &mut part,
                &mut self.store,
                &mut self.cache,
                limit,
                ev,
                &mut bridge,
            );
            if A::is_empty(&part) {
                return;
            }
            if parts.len() == parts.capacity() {
                // Room for every pattern of the group at once: an event
                // often starts several (one move, not one per doubling).
                parts.reserve_exact(*size - parts.len());
            }
            if *size > PLACE_FROM {
                place[run.local] = parts.len() as u32;
            }
            parts.push(Part {
                part,
                pattern: p as u32,
                ordinal: run.ordinals.take(),
            });
        } else {
            let mut part = A::Partition::default();
            a.process(
                &mut part,
                &mut self.store,
                &mut self.cache,
                limit,
                ev,
                &mut bridge,
            );
            if A::is_empty(&part) {
                return;
            }
            if *size > PLACE_FROM {
                place[run.local] = 0;
            }
            let ordinal = run.ordinals.take();
            *slot = Some(keys.insert(hash, key.clone(), part, p as u32, ordinal));
        }
        self.live_parts += 1;
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
        key.clear();
        key.resize(arity, Value::Null);
    }
    // Overwritten in place (one key buffer per group, no clear and push).
    let parts = key.as_mut_slice();
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

/// The default limit on events waiting for the watermark.
pub const DEFAULT_MAX_WAITING_EVENTS: usize = 1_000_000;
