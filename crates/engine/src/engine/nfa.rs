//! The real matcher behind the engine: [`Nfa`] as an `Automaton` (driven by
//! an [`Executor`] with the engine's [`Cache`]), the [`SharedBuffer`] as its
//! event store, [`MatchView`] as its matches.

use crate::engine::automaton::{Automaton, EventStore, Reporter};
use crate::engine::sink::MatchAccess;
use crate::event::Event;
use crate::lookup::LookupRef;
use crate::matcher::{Cache, EventRef, Executor, MatchSink, MatchView, Partition, SharedBuffer};
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::primitives::Timestamp;
use crate::value::Value;
use std::sync::Arc;

impl<E> EventStore<E> for SharedBuffer<E> {
    type Ref = EventRef;

    #[inline]
    fn insert(&mut self, ts: Timestamp, event: E) -> EventRef {
        SharedBuffer::insert(self, ts, event)
    }

    #[inline]
    fn release_if_unused(&mut self, event: EventRef) {
        SharedBuffer::release_if_unused(self, event)
    }

    #[inline]
    fn get(&self, event: EventRef) -> &E {
        SharedBuffer::get(self, event)
    }

    fn live_events(&self) -> usize {
        SharedBuffer::live_events(self)
    }

    fn state_bytes(&self, event_bytes: &dyn Fn(&E) -> usize) -> usize {
        SharedBuffer::state_bytes(self, event_bytes)
    }
}

impl<E: Event> MatchAccess<E> for MatchView<'_, E> {
    fn write_values(&self) -> Vec<Value> {
        MatchView::write_values(self)
    }

    fn reads(&self) -> Vec<(String, Value)> {
        MatchView::reads(self)
            .into_iter()
            .map(|(label, value)| (String::from(&*label), value))
            .collect()
    }

    #[inline(always)]
    fn start(&self) -> Timestamp {
        MatchView::start(self)
    }

    #[inline(always)]
    fn end(&self) -> Timestamp {
        MatchView::end(self)
    }

    fn visit_stages<'s>(&'s self, visit: &mut dyn FnMut(&'s str, &mut dyn Iterator<Item = &'s E>)) {
        // One list of (stage, event) in the order taken, sorted stably by
        // stage: each stage's events stay in the order taken. (Not
        // `stages()`, which allocates a vector per stage; on the stack up
        // to 16 events.) Runs mostly take their stages in pattern order:
        // then the list is sorted already.
        let mut events = smallvec::SmallVec::<[_; 16]>::new();
        self.events_into(&mut events);
        if events.windows(2).any(|pair| pair[0].0 > pair[1].0) {
            events.sort_by_key(|&(stage, _)| stage);
        }
        let stages = &MatchView::pattern(self).stages;
        for group in events.chunk_by(|a, b| a.0 == b.0) {
            let name = stages
                .get(group[0].0.index())
                .map_or("", |s| s.name.as_str());
            visit(
                name,
                &mut group.iter().map(|&(_, ev)| MatchView::get(self, ev)),
            );
        }
    }

    fn select(&self) -> Vec<(String, Value)> {
        MatchView::select(self)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }

    fn branches(&self) -> Option<Vec<Option<u32>>> {
        MatchView::branches(self)
    }
}

/// Passes the matcher's output on to the engine's reporter (called
/// directly: the matcher's call to the relay is the one dynamic call).
struct Relay<'r, R: ?Sized>(&'r mut R);

impl<E: Event, R: Reporter<E, Arc<Nfa<E>>> + ?Sized> MatchSink<E> for Relay<'_, R> {
    fn on_match(&mut self, m: &MatchView<'_, E>) {
        self.0.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchView<'_, E>, expired_at: Timestamp) {
        self.0.on_timeout(m, expired_at);
    }

    fn on_dropped(&mut self, m: &MatchView<'_, E>) {
        self.0.on_dropped(m);
    }
}

/// The partition's partial matches before a call, in builds with debug
/// assertions (for [`check_change`]).
#[inline(always)]
fn counted_before(part: &Partition) -> Option<usize> {
    cfg!(debug_assertions).then(|| part.partial_matches())
}

/// Checks, in builds with debug assertions, that `change` is what a call
/// did to the partition's partial matches (the executor knows it without
/// counting on its common paths; the engine's count of live partial
/// matches adds it up).
#[inline(always)]
fn check_change(before: Option<usize>, part: &Partition, change: isize) {
    if let Some(before) = before {
        debug_assert_eq!(
            part.partial_matches() as isize - before as isize,
            change,
            "the change in partial matches of a step"
        );
    }
}

impl<E: Event> Automaton<E> for Arc<Nfa<E>> {
    type Partition = Partition;
    type Store = SharedBuffer<E>;
    type Cache = Cache;
    type View<'s>
        = MatchView<'s, E>
    where
        E: 's;

    fn pattern(&self) -> &Pattern {
        Nfa::pattern(self)
    }

    /// Numbers the conditions of an automaton the engine compiled (its
    /// own: not shared yet); takes those of a shared one when they agree
    /// with the engine's (numbered once for the engines that share it).
    fn share(&mut self, cache: &mut Cache) -> bool {
        match Arc::get_mut(self) {
            Some(nfa) => {
                cache.share_conditions(nfa);
                true
            }
            None => cache.adopt_conditions(self),
        }
    }

    fn is_shared(&mut self) -> bool {
        Arc::get_mut(self).is_none()
    }

    #[inline]
    fn begin_event(cache: &mut Cache) {
        cache.next_event();
    }

    #[inline]
    fn advance_time<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        t: Timestamp,
        out: &mut R,
    ) -> isize {
        let before = counted_before(part);
        let change = Executor::new(self, cache)
            .with_lookup(lookup)
            .advance_time_counted(part, store, t, &mut Relay(out));
        check_change(before, part, change);
        change
    }

    fn compact_store(
        store: &mut SharedBuffer<E>,
        partitions: impl FnOnce(&mut dyn FnMut(&mut Partition)),
    ) {
        if let Some(moves) = store.compact() {
            partitions(&mut |part| part.renumber(&moves));
        }
    }

    #[inline]
    fn may_start<L: LookupRef>(
        &self,
        store: &SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        event: EventRef,
    ) -> bool {
        Executor::new(self, cache)
            .with_lookup(lookup)
            .may_start(store, event)
    }

    fn start_guard(&self) -> Option<Vec<(u32, u32)>> {
        let slots = Nfa::start_guard(self)?;
        Some(slots.iter().map(|&s| (self.shared_slot(s), s)).collect())
    }

    #[inline]
    fn condition_holds<L: LookupRef>(
        &self,
        store: &SharedBuffer<E>,
        cache: &mut Cache,
        lookup: L,
        event: EventRef,
        slot: u32,
    ) -> bool {
        Executor::new(self, cache)
            .with_lookup(lookup)
            .condition_holds(slot, store, event)
    }

    /// (Out of line: inlined into the engine's step with the executor's
    /// `process_in_event`, it cost `ab` 1.4% more instructions.)
    #[inline(never)]
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
        let before = counted_before(part);
        let mut exec = Executor::new(self, cache)
            .with_lookup(lookup)
            .with_exact_run_limit(limit);
        if !starts {
            exec = exec.without_start();
        }
        let mut change = exec.process_in_event(part, store, event, &mut Relay(out));
        if limit == 0 {
            // (the engine's cap left the key no room)
            let held = part.partial_matches();
            exec.enforce_limit(part, store, &mut Relay(out));
            change += part.partial_matches() as isize - held as isize;
        }
        check_change(before, part, change);
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
        Executor::new(self, cache)
            .with_lookup(lookup)
            .discard(part, store, &mut Relay(out))
    }

    #[inline]
    fn is_empty(part: &Partition) -> bool {
        part.is_empty()
    }

    #[inline]
    fn partial_matches(part: &Partition) -> usize {
        part.partial_matches()
    }

    fn partition_heap_bytes(part: &Partition) -> usize {
        part.heap_bytes()
    }

    #[inline]
    fn next_deadline(part: &Partition) -> Option<Timestamp> {
        part.next_deadline()
    }
}
