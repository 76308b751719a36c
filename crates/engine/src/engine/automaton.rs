//! The boundary between the engine and a matcher: what the engine needs from
//! one compiled pattern to drive it per key in event time.
//!
//! [`crate::nfa::Nfa`] implements [`Automaton`]; so can a test double (a
//! trivial matcher with known behaviour), which is how the engine's
//! event-time logic is tested apart from the pattern semantics.

use crate::engine::sink::MatchAccess;
use crate::lookup::LookupRef;
use crate::pattern::Pattern;
use crate::primitives::Timestamp;

/// Where events live while partial matches refer to them: inserted once,
/// shared by every pattern of an engine.
pub(crate) trait EventStore<E>: Default {
    /// A handle to a stored event.
    type Ref: Copy;

    /// Stores an event (unreferenced until a run takes it).
    fn insert(&mut self, ts: Timestamp, event: E) -> Self::Ref;

    /// Drops the event again unless a run took it.
    fn release_if_unused(&mut self, event: Self::Ref);

    /// The stored event.
    fn get(&self, event: Self::Ref) -> &E;

    /// Number of events currently stored.
    fn live_events(&self) -> usize;

    /// Bytes the store holds, each stored event's heap bytes measured by
    /// `event_bytes` (`Engine::state_bytes`).
    fn state_bytes(&self, event_bytes: &dyn Fn(&E) -> usize) -> usize;

    /// Gives back the space of freed storage where it can (a change of
    /// rules dropped partial matches).
    fn trim(&mut self) {}
}

/// Receives what an automaton produces while time advances or an event is
/// processed.
pub(crate) trait Reporter<E, A: Automaton<E> + ?Sized> {
    /// A complete match.
    fn on_match(&mut self, m: &A::View<'_>);

    /// A partial match whose window closed at `expired_at`.
    fn on_timeout(&mut self, m: &A::View<'_>, expired_at: Timestamp);

    /// A partial match dropped by the limit on partial matches per key.
    fn on_dropped(&mut self, m: &A::View<'_>);

    /// The key of the partition being stepped, for a trace (`cepheid
    /// why`: the engine's reporter knows it; matching never asks).
    fn key(&self) -> Option<&[crate::value::Value]> {
        None
    }

    /// Would a drop now be the engine's limit over all keys' (not the
    /// per-key one)? For a trace, as [`key`](Self::key).
    fn capped(&self) -> bool {
        false
    }

    /// Is the complete match `m` not made at all ([`on_match`](Self::on_match)
    /// will drop it: a rule's instance matching on an event outside its
    /// scene)? For a trace, which asks before it passes the match on; the
    /// engine's own step never asks.
    fn holds_back(&mut self, m: &A::View<'_>) -> bool {
        let _ = m;
        false
    }
}

/// One compiled pattern, driven per partition (key) by the engine.
///
/// The engine keeps one `Partition` per key, one `Store` for all patterns
/// and one `Cache` (the matcher's per-call space: the engine processes one
/// event at a time); before an event at `t` is processed it calls
/// `advance_time(t)` on the same partition.
pub(crate) trait Automaton<E> {
    /// Per-key matcher state.
    type Partition: Default;
    /// The event store shared by all partitions and patterns.
    type Store: EventStore<E>;
    /// Per-call space of the matcher, one for all patterns of the engine.
    type Cache: Default;
    /// What a match looks like to a [`Reporter`].
    type View<'s>: MatchAccess<E>
    where
        Self: 's,
        E: 's;

    /// The pattern this automaton was compiled from.
    fn pattern(&self) -> &Pattern;

    /// Prepares the automaton to be driven with `cache` alongside the
    /// others added before it (the NFA numbers its conditions so that equal
    /// ones are evaluated once per event). `false` when it cannot be: a
    /// shared automaton numbered for conditions that mean others here.
    fn share(&mut self, _cache: &mut Self::Cache) -> bool {
        true
    }

    /// Is it shared with other engines (numbered once for all of them, so
    /// that [`share`](Self::share) can only take its numbers, not give it
    /// new ones)?
    fn is_shared(&mut self) -> bool {
        false
    }

    /// A new event: called once before it is offered to the partitions.
    fn begin_event(_cache: &mut Self::Cache) {}

    /// Lets event time reach `t` in one partition: expire windows, complete
    /// pending endings. Returns how much
    /// [`partial_matches`](Self::partial_matches) of the partition changed
    /// (the engine adds it to its count of live partial matches instead of
    /// counting the partition before and after).
    ///
    /// (The reporter is a type parameter, not a trait object, here and
    /// below: the engine's reporter is then called directly, and an output
    /// costs the matcher's one dynamic call to its sink, not two.)
    fn advance_time<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Self::Store,
        cache: &mut Self::Cache,
        lookup: L,
        t: Timestamp,
        out: &mut R,
    ) -> isize;

    /// Gives back the store's freed space after a change of rules dropped
    /// partial matches (`docs/dynamic-rules.md`). `partitions` applies a
    /// function to every partition the engine holds: a store that moves
    /// what it holds (the shared buffer renumbers its events and nodes)
    /// updates the partitions' references to it through it.
    fn compact_store(
        store: &mut Self::Store,
        partitions: impl FnOnce(&mut dyn FnMut(&mut Self::Partition)),
    ) {
        let _ = partitions;
        store.trim();
    }

    /// Might `event` change an idle partition? When not, an idle partition
    /// offered it would stay idle with nothing emitted, so the engine makes
    /// none for it. (Called after [`begin_event`](Self::begin_event).)
    fn may_start<L: LookupRef>(
        &self,
        _store: &Self::Store,
        _cache: &mut Self::Cache,
        _lookup: L,
        _event: <Self::Store as EventStore<E>>::Ref,
    ) -> bool {
        true
    }

    /// The conditions one of which must hold for
    /// [`may_start`](Self::may_start) to: each as its number among the
    /// values the automata that [`share`](Self::share)d one cache compute
    /// once per event, and its own slot (for
    /// [`condition_holds`](Self::condition_holds)). `None` when no such set
    /// is known (`may_start` may then hold for any event). The engine
    /// unites its patterns' guards per group of patterns partitioned alike.
    fn start_guard(&self) -> Option<Vec<(u32, u32)>> {
        None
    }

    /// Does the automaton's condition `slot` (from its
    /// [`start_guard`](Self::start_guard)) hold for `event`? (Called after
    /// [`begin_event`](Self::begin_event).)
    fn condition_holds<L: LookupRef>(
        &self,
        _store: &Self::Store,
        _cache: &mut Self::Cache,
        _lookup: L,
        _event: <Self::Store as EventStore<E>>::Ref,
        _slot: u32,
    ) -> bool {
        true
    }

    /// Offers one event (already stored, time already advanced to its
    /// time); afterwards the partition holds at most `limit` partial
    /// matches (`limit` may be 0), its oldest ones dropped (to
    /// `out.on_dropped`). Without `starts` (a draining version) the event
    /// starts no new partial match: only those the partition holds go on.
    /// Returns how much [`partial_matches`](Self::partial_matches) of the
    /// partition changed, as [`advance_time`](Self::advance_time) does.
    #[allow(clippy::too_many_arguments)]
    fn process<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Self::Store,
        cache: &mut Self::Cache,
        lookup: L,
        limit: usize,
        starts: bool,
        event: <Self::Store as EventStore<E>>::Ref,
        out: &mut R,
    ) -> isize;

    /// Drops every partial match of the partition (not reported) and
    /// returns how many; matches held back behind them are emitted. The
    /// partition is empty afterwards.
    fn discard<R: Reporter<E, Self> + ?Sized, L: LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Self::Store,
        cache: &mut Self::Cache,
        lookup: L,
        out: &mut R,
    ) -> usize;

    /// How many partial matches the partition holds, as the `limit` of
    /// [`process`](Self::process) counts them (held matches included).
    fn partial_matches(part: &Self::Partition) -> usize;

    /// Bytes the partition holds on the heap beyond its own size (runs
    /// that no longer fit inline), for `Engine::state_bytes`.
    fn partition_heap_bytes(part: &Self::Partition) -> usize;

    /// Does the partition hold nothing (so its key can be forgotten)?
    fn is_empty(part: &Self::Partition) -> bool;

    /// The earliest time at which `advance_time` would do something.
    fn next_deadline(part: &Self::Partition) -> Option<Timestamp>;
}
