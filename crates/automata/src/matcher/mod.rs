//! Matching one partition: runs, the shared buffer, skip strategies, time.
//!
//! This is the runtime half of Flink's `NFA.java`. A [`Partition`] holds the
//! runs of one key (Flink's computation states, ordered by start event as
//! Flink's `PriorityQueue` orders them) and the complete matches a skip
//! strategy holds back. The events live once in a [`SharedBuffer`], shared by
//! every partition and pattern; a run points at the buffer node of its last
//! taken event, so forked runs share their prefix. An [`Executor`] borrows
//! an immutable [`Nfa`] and the caller's [`Cache`] (its
//! per-call space) and drives a partition through two calls (as
//! regex-automata's `PikeVM` drives an NFA with a `Cache`):
//!
//! - [`Executor::advance_time`]`(t)`: runs whose window closed at `t` go
//!   (timeouts when the pattern asks), pending `not followed by` endings
//!   complete, held matches whose blockers died are emitted;
//! - [`Executor::process`]`(event)`: every run, and a fresh start run,
//!   takes / ignores / dies; complete matches are emitted.
//!
//! [`Partition::clear`] drops everything. The matcher reads the automaton
//! through its methods only; the `nfa` module knows nothing of the matcher.
//!
//! Output goes to a [`MatchSink`] as [`MatchView`]s that borrow the buffer.
//! [`Matcher`] bundles an automaton, a partition, a buffer and a cache for
//! tests and small programs.
//!
//! Ties: runs with the same start event keep the order Java's
//! `PriorityQueue` gives them (emulated exactly, see the `heap` module), so
//! output order and pruning under skip strategies match Flink.

mod buffer;
mod exec;
mod heap;
mod record;
mod run;
mod skip;
mod view;

pub use buffer::{EventRef, NodeRef, SharedBuffer};
pub use exec::{Cache, Executor};
pub use run::{Partition, Run};
pub use view::{Match, MatchView, Output};

use crate::event::Event;

use crate::nfa::Nfa;
use crate::primitives::Timestamp;

/// Receives what the matcher produces.
pub trait MatchSink<E> {
    /// A complete match.
    fn on_match(&mut self, m: &MatchView<'_, E>);
    /// A partial match whose window closed (only for patterns with
    /// `timeouts`); `expired_at` is start + `within`, or previous event time
    /// + the element window.
    fn on_timeout(&mut self, m: &MatchView<'_, E>, expired_at: Timestamp);
    /// A partial match dropped by the limit on partial matches of a
    /// partition ([`Executor::with_run_limit`]). Ignored unless overridden.
    fn on_dropped(&mut self, m: &MatchView<'_, E>) {
        let _ = m;
    }
}

/// Keeps every output, owned, in the order produced.
impl<E: Event + Clone> MatchSink<E> for Vec<Output<E>> {
    fn on_match(&mut self, m: &MatchView<'_, E>) {
        self.push(Output::Match(m.to_owned()));
    }

    fn on_timeout(&mut self, m: &MatchView<'_, E>, expired_at: Timestamp) {
        self.push(Output::Timeout {
            partial: m.to_owned(),
            expired_at,
        });
    }

    fn on_dropped(&mut self, m: &MatchView<'_, E>) {
        self.push(Output::Dropped {
            partial: m.to_owned(),
        });
    }
}

/// One pattern over one partition, owning its automaton, runs, buffer and
/// cache: feed events in time order, get owned outputs back.
///
/// ```
/// use std::sync::Arc;
/// use cepheid_automata::matcher::{Matcher, Output};
/// use cepheid_automata::nfa::Nfa;
/// use cepheid_core::event::{Event, FieldId, NoFields};
/// use cepheid_core::pattern::*;
/// use cepheid_core::primitives::StageId;
/// use cepheid_core::ValueRef;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct C(char);
/// impl Event for C {
///     type Fields = NoFields;
///     fn field(&self, _: FieldId) -> ValueRef<'_> { ValueRef::Null }
/// }
/// let is = |c: char| {
///     let f: NativeFn<C> = Arc::new(move |e: &C, _: &dyn StageEvents<C>| e.0 == c);
///     Condition::Native(NativeCondition::new(f, false))
/// };
/// let stages = vec![Stage::new("a", is('a')), Stage::new("b", is('b'))];
/// let sequence = Sequence::new(vec![Element::stage(StageId(0)), Element::stage(StageId(1))]);
/// let pattern = Pattern::new("ab", stages, sequence);
/// let nfa = Nfa::<C>::compile(&pattern, &mut NoFields).unwrap();
/// let mut m = Matcher::new(nfa);
/// assert!(m.process(1, C('a')).is_empty());
/// assert!(m.process(2, C('c')).is_empty());
/// let out = m.process(3, C('b'));
/// assert!(matches!(&out[..], [Output::Match(x)] if x.stage("a") == [C('a')] && x.stage("b") == [C('b')]));
/// ```
#[derive(Debug)]
pub struct Matcher<E> {
    nfa: Nfa<E>,
    partition: Partition,
    buffer: SharedBuffer<E>,
    cache: Cache,
}

impl<E: Event + Clone> Matcher<E> {
    /// A matcher for one compiled pattern.
    pub fn new(nfa: Nfa<E>) -> Matcher<E> {
        Matcher {
            nfa,
            partition: Partition::new(),
            buffer: SharedBuffer::new(),
            cache: Cache::new(),
        }
    }

    /// Advances time to `ts`, then offers the event (events must come in
    /// time order).
    pub fn process(&mut self, ts: Timestamp, event: E) -> Vec<Output<E>> {
        let mut sink = Vec::new();
        self.advance_in_order(ts, &mut sink);
        let ev = self.buffer.insert(ts, event);
        Executor::new(&self.nfa, &mut self.cache).process(
            &mut self.partition,
            &mut self.buffer,
            ev,
            &mut sink,
        );
        self.buffer.release_if_unused(ev);
        sink
    }

    /// Advances time to `t` (windows close, pending endings complete).
    pub fn advance_time(&mut self, t: Timestamp) -> Vec<Output<E>> {
        let mut sink = Vec::new();
        self.advance_in_order(t, &mut sink);
        sink
    }

    /// Advances to every deadline before `t` in time order, then to `t`,
    /// as the engine does (`docs/semantics.md`, D4: the result does not
    /// depend on how far one call moves time).
    fn advance_in_order(&mut self, t: Timestamp, sink: &mut Vec<Output<E>>) {
        let mut exec = Executor::new(&self.nfa, &mut self.cache);
        let mut last = None;
        while let Some(d) = self.partition.next_deadline().filter(|d| *d < t) {
            if last.is_some_and(|l| d <= l) {
                break;
            }
            last = Some(d);
            exec.advance_time(&mut self.partition, &mut self.buffer, d, sink);
        }
        exec.advance_time(&mut self.partition, &mut self.buffer, t, sink);
    }

    /// The automaton.
    pub fn nfa(&self) -> &Nfa<E> {
        &self.nfa
    }

    /// The partition (runs and held matches).
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The buffer (for memory accounting).
    pub fn buffer(&self) -> &SharedBuffer<E> {
        &self.buffer
    }

    /// Drops every run and held match.
    pub fn clear(&mut self) {
        self.partition.clear(&mut self.buffer);
    }
}

impl<E> std::fmt::Debug for SharedBuffer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("live_events", &self.live_events())
            .field("live_nodes", &self.live_nodes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matcher_state_is_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Partition>();
        send_sync::<super::SharedBuffer<crate::Record>>();
        send_sync::<super::Cache>();
    }
}
