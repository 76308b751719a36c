//! The stash of a CEP operator: the events it received, held until the
//! frontier passes their time, then taken out in the order the engines
//! get them (time, source, offset, group).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use crate::primitives::Timestamp;
use crate::route::SHARED;
use crate::Stamped;

/// A stashed event for one group, ordered by (time, source, offset,
/// group): the order in which the engines get them.
pub(super) struct Stashed<E> {
    pub(super) group: u32,
    /// The key group of its key ([`Routed::kg`]).
    pub(super) kg: u32,
    /// The timely time it was sent at (a cut at `f` keeps those sent
    /// below `f`: the sources read the others again).
    pub(super) sent: Timestamp,
    pub(super) stamped: Stamped<E>,
}

/// (time, source, offset, group): the order of release.
pub(super) type Key = (Timestamp, u32, u64, u32);

impl<E> Stashed<E> {
    pub(super) fn key(&self) -> Key {
        let s = &self.stamped;
        // (a copy for the shared indicators in its group's place: events
        // of one place, those of a checkpoint of one engine resumed on
        // workers, keep their order of arrival)
        (s.ts, s.source, s.offset, self.group & !SHARED)
    }
}

impl<E> PartialEq for Stashed<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Stashed<E> {}

impl<E> PartialOrd for Stashed<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Stashed<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The stashed events, taken out in (time, source, offset, group) order.
/// What one worker sends arrives in the order sent, mostly in time order:
/// such arrivals go to a FIFO per sender at O(1), the rest to a heap, and
/// the least of the FIFOs' fronts and the heap's top comes out first.
pub(super) struct Stash<E> {
    fifos: Vec<VecDeque<Stashed<E>>>,
    heap: BinaryHeap<Reverse<Stashed<E>>>,
}

impl<E> Default for Stash<E> {
    fn default() -> Self {
        Stash {
            fifos: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<E> Stash<E> {
    /// Stashes `item`, sent by worker `from`.
    pub(super) fn push(&mut self, from: usize, item: Stashed<E>) {
        if self.fifos.len() <= from {
            self.fifos.resize_with(from + 1, VecDeque::new);
        }
        let fifo = &mut self.fifos[from];
        if fifo.back().is_none_or(|last| last.key() <= item.key()) {
            fifo.push_back(item);
        } else {
            self.heap.push(Reverse(item));
        }
    }

    /// The events sent below `f`, with their group.
    pub(super) fn sent_below(&self, f: Timestamp) -> Vec<(u32, &Stamped<E>)> {
        let heap = self.heap.iter().map(|Reverse(item)| item);
        let mut events: Vec<&Stashed<E>> = self
            .fifos
            .iter()
            .flatten()
            .chain(heap)
            .filter(|item| item.sent < f)
            .collect();
        events.sort_by_key(|item| item.key());
        events
            .into_iter()
            .map(|item| (item.group, &item.stamped))
            .collect()
    }

    /// The time of the first event stashed.
    pub(super) fn first_time(&self) -> Option<Timestamp> {
        let heap = self.heap.peek().map(|Reverse(top)| top.stamped.ts);
        let fifos = self
            .fifos
            .iter()
            .filter_map(|f| f.front().map(|s| s.stamped.ts));
        heap.into_iter().chain(fifos).min()
    }

    /// Events stashed.
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.fifos.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Takes the least event out if `ready` says its time is.
    pub(super) fn pop_if(&mut self, ready: impl Fn(Timestamp) -> bool) -> Option<Stashed<E>> {
        // `None`: the heap's top; `Some(i)`: FIFO `i`'s front.
        let mut best: Option<(Option<usize>, Key)> =
            self.heap.peek().map(|Reverse(top)| (None, top.key()));
        for (i, fifo) in self.fifos.iter().enumerate() {
            if let Some(front) = fifo.front() {
                let key = front.key();
                if best.as_ref().is_none_or(|(_, b)| key < *b) {
                    best = Some((Some(i), key));
                }
            }
        }
        let (from, key) = best?;
        if !ready(key.0) {
            return None;
        }
        match from {
            None => self.heap.pop().map(|Reverse(item)| item),
            Some(i) => self.fifos[i].pop_front(),
        }
    }
}
