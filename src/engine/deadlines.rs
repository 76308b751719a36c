//! The engine-wide index of the times at which some key needs time advanced
//! even if it sees no event (window expiry, pending `not followed by`
//! endings).
//!
//! The [`DeadlineIndex`] is a single priority queue of `(deadline, pattern,
//! slot)` for all patterns with lazy invalidation: an entry is acted on only
//! if the slot is live and still scheduled at that deadline (see
//! [`Partitions`]); stale entries are skipped when popped, and the queue is
//! compacted when stale entries dominate it. One queue for all patterns
//! (rather than one per pattern) means finding the next deadline is one
//! peek, not one per pattern; the order is the same: by time, then pattern,
//! then slot.
//!
//! Entries do not carry the slot's generation (16 bytes instead of 24): an
//! entry left by a key whose slot was since reused can pass the check only
//! if the new key is scheduled at the same time, and then it equals the new
//! key's own entry, so whichever of the two comes out first fires the slot
//! at its deadline, and the other is stale after that.
//!
//! Deadlines are mostly scheduled in increasing order (a window closes a
//! fixed time after the event that opened it), so the queue is a
//! [`FifoHeap`]: pushing in order costs O(1) instead of a heap's sift, and
//! the order is exactly a heap's. It grows by an eighth, as the slots do.

use super::queue::FifoHeap;
use crate::engine::partitions::{Partitions, SlotRef};
use crate::primitives::Timestamp;

/// One index entry: deadline, pattern, slot index (ordered in that
/// priority).
type Entry = (Timestamp, u32, u32);

/// The deadlines of every pattern's partitions in one priority queue (a
/// FIFO of in-order entries plus a heap), with lazy invalidation against
/// the slots (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct DeadlineIndex {
    /// Every entry, smallest first; growing by an eighth.
    queue: FifoHeap<Entry, true>,
    /// The size at which to check for stale entries next.
    check_at: usize,
}

impl DeadlineIndex {
    /// Adds a deadline of `pattern`'s `slot` (as returned by
    /// [`Partitions::settle`]). Returns true when the caller should call
    /// [`DeadlineIndex::compact_if_stale`] next.
    #[must_use]
    #[inline]
    pub fn push(&mut self, t: Timestamp, pattern: usize, slot: SlotRef) -> bool {
        self.queue.push((t, pattern as u32, slot.index));
        self.len() > self.check_at
    }

    /// The earliest valid deadline at or before `until`, with its pattern
    /// and slot, dropping the stale entries before it; `current(pattern, t,
    /// index)` gives the slot when an entry is still valid (see
    /// [`Partitions::scheduled_at`]). Entries after `until` are not looked
    /// at (a stale one among them is dropped later).
    #[inline]
    pub fn peek_due(
        &mut self,
        until: Timestamp,
        mut current: impl FnMut(usize, Timestamp, u32) -> Option<SlotRef>,
    ) -> Option<(Timestamp, usize, SlotRef)> {
        // Drop the stale entries before the first valid one.
        let mut due = None;
        while self
            .queue
            .pop_if(|&(t, p, index)| {
                if t > until {
                    return false;
                }
                due = current(p as usize, t, index).map(|slot| (t, p as usize, slot));
                due.is_none()
            })
            .is_some()
        {}
        due
    }

    /// Removes the earliest entry (after [`DeadlineIndex::peek_due`]
    /// returned it).
    #[inline]
    pub fn pop(&mut self) {
        self.queue.pop();
    }

    /// Number of entries, stale ones included.
    fn len(&self) -> usize {
        self.queue.len()
    }

    /// Drops the stale entries when they dominate, so the index stays
    /// proportional to the live keys: after a check it holds at most twice
    /// the live keys plus 1024, and the next check comes once it grew by the
    /// live keys plus 1024. Filtering keeps the FIFO sorted and re-heapifies
    /// the rest, both in linear time; only if duplicated valid entries (a
    /// slot rescheduled back to an earlier time) still leave it too large is
    /// it rebuilt from the slots and sorted.
    /// `parts` are every pattern's partitions, in pattern order.
    pub fn compact_if_stale<'p, P: 'p>(
        &mut self,
        parts: impl Iterator<Item = &'p Partitions<P>> + Clone,
    ) {
        let parts: Vec<&Partitions<P>> = parts.collect();
        let live: usize = parts.iter().map(|p| p.len()).sum();
        let limit = 2 * live + 1024;
        if self.len() > limit {
            let current =
                |&(t, p, index): &Entry| parts[p as usize].scheduled_at(t, index).is_some();
            self.queue.retain(current);
        }
        if self.len() > limit {
            let mut entries: Vec<Entry> = parts
                .iter()
                .enumerate()
                .flat_map(|(p, part)| {
                    part.scheduled()
                        .map(move |(t, slot)| (t, p as u32, slot.index))
                })
                .collect();
            entries.sort_unstable();
            self.queue = FifoHeap::from_sorted(entries);
        }
        self.check_at = self.len() + live + 1024;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{KeyValue, Value};
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    fn key(i: i64) -> KeyValue {
        KeyValue::from_elem(Value::Int(i), 1)
    }

    /// A test hash: a constant one, so every key collides and equality
    /// alone tells keys apart.
    const H: u64 = 7;

    /// Schedules what `settle` asks for in `index` (compacting when due).
    fn settle(
        parts: &mut Partitions<u8>,
        index: &mut DeadlineIndex,
        slot: SlotRef,
        empty: bool,
        deadline: Option<Timestamp>,
    ) {
        if let Some((t, s)) = parts.settle(slot, empty, deadline) {
            if index.push(t, 0, s) {
                index.compact_if_stale(std::iter::once(&*parts));
            }
        }
    }

    /// The next valid deadline, taken out of the index.
    fn pop(parts: &mut Partitions<u8>, index: &mut DeadlineIndex) -> Option<(Timestamp, SlotRef)> {
        let (t, _, slot) = index.peek_due(Timestamp::MAX, |_, t, i| parts.scheduled_at(t, i))?;
        index.pop();
        parts.unschedule(slot);
        Some((t, slot))
    }

    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn deadlines_come_out_in_time_order_and_stale_ones_are_skipped() {
        let mut parts: Partitions<u8> = Partitions::default();
        let mut index = DeadlineIndex::default();
        let a = parts.insert(H, key(1), 0);
        let b = parts.insert(H, key(2), 0);
        settle(&mut parts, &mut index, a, false, Some(30));
        settle(&mut parts, &mut index, b, false, Some(20));
        settle(&mut parts, &mut index, a, false, Some(10)); // replaces 30
        assert_eq!(pop(&mut parts, &mut index), Some((10, a)));
        assert_eq!(pop(&mut parts, &mut index), Some((20, b)));
        assert_eq!(pop(&mut parts, &mut index), None);
    }

    #[test]
    fn equal_times_come_out_by_pattern_then_slot() {
        let mut index = DeadlineIndex::default();
        let slot = |index| SlotRef {
            index,
            generation: 0,
        };
        let _ = index.push(5, 1, slot(0));
        let _ = index.push(5, 0, slot(1));
        let _ = index.push(5, 0, slot(0));
        let _ = index.push(4, 2, slot(3));
        let mut order = Vec::new();
        while let Some((t, p, s)) = index.peek_due(Timestamp::MAX, |_, _, index| {
            Some(SlotRef {
                index,
                generation: 0,
            })
        }) {
            index.pop();
            order.push((t, p, s.index));
        }
        assert_eq!(order, vec![(4, 2, 3), (5, 0, 0), (5, 0, 1), (5, 1, 0)]);
    }

    #[test]
    fn peek_due_looks_no_further_than_until() {
        let mut parts: Partitions<u8> = Partitions::default();
        let mut index = DeadlineIndex::default();
        let a = parts.insert(H, key(1), 0);
        let b = parts.insert(H, key(2), 0);
        settle(&mut parts, &mut index, a, false, Some(10));
        settle(&mut parts, &mut index, b, false, Some(20));
        settle(&mut parts, &mut index, a, false, Some(30)); // (10, a) is stale
        let current = |_: usize, t: Timestamp, i: u32| parts.scheduled_at(t, i);
        assert_eq!(index.peek_due(15, current), None);
        assert_eq!(index.peek_due(19, current), None);
        assert_eq!(index.peek_due(20, current), Some((20, 0, b)));
        assert_eq!(index.peek_due(Timestamp::MAX, current), Some((20, 0, b)));
    }

    #[test]
    fn empty_partitions_are_forgotten_and_slots_reused() {
        let mut parts: Partitions<u8> = Partitions::default();
        let mut index = DeadlineIndex::default();
        let a = parts.insert(H, key(1), 0);
        settle(&mut parts, &mut index, a, false, Some(5));
        assert_eq!(parts.len(), 1);
        settle(&mut parts, &mut index, a, true, None);
        assert_eq!(parts.len(), 0);
        assert_eq!(pop(&mut parts, &mut index), None);
        assert!(parts.get_mut(a).is_none());
        let b = parts.insert(H, key(2), 0);
        assert_eq!(b.index, a.index);
        assert_ne!(b.generation, a.generation);
        assert_eq!(parts.find(H, &key(2)), Some(b));
        assert_eq!(parts.find(H, &key(1)), None);
    }

    #[test]
    fn the_index_stays_small_when_deadlines_keep_moving() {
        let mut parts: Partitions<u8> = Partitions::default();
        let mut index = DeadlineIndex::default();
        let a = parts.insert(H, key(1), 0);
        for t in 0..10_000 {
            settle(&mut parts, &mut index, a, false, Some(t));
        }
        assert!(index.len() <= 2 * 1026);
        assert_eq!(pop(&mut parts, &mut index), Some((9_999, a)));
        assert_eq!(pop(&mut parts, &mut index), None);
    }

    #[test]
    fn the_index_stays_small_when_a_deadline_keeps_coming_back() {
        // Every other push re-adds an entry equal to a still-valid one:
        // filtering cannot drop those, the rebuild from the slots does.
        let mut parts: Partitions<u8> = Partitions::default();
        let mut index = DeadlineIndex::default();
        let a = parts.insert(H, key(1), 0);
        for round in 0..10_000 {
            settle(&mut parts, &mut index, a, false, Some(5 + 2 * (round % 2)));
        }
        assert!(index.len() <= 2 * 1026);
        assert_eq!(pop(&mut parts, &mut index), Some((7, a)));
        assert_eq!(pop(&mut parts, &mut index), None);
    }

    /// The index as it was before the FIFO: one heap, lazily invalidated
    /// the same way (the reference order for the property test).
    #[derive(Default)]
    struct HeapIndex(BinaryHeap<Reverse<OldEntry>>);

    /// An entry of the old index: deadline, pattern, slot and generation.
    type OldEntry = (Timestamp, u32, SlotRef);

    impl HeapIndex {
        fn pop(&mut self, parts: &[Partitions<u8>]) -> Option<OldEntry> {
            while let Some(Reverse((t, p, slot))) = self.0.pop() {
                if parts[p as usize].is_current(t, slot) {
                    return Some((t, p, slot));
                }
            }
            None
        }
    }

    /// One operation on the partitions of the property test.
    #[derive(Clone, Debug)]
    enum Op {
        /// Schedule key `key` of pattern `pattern` at a time `delta` after
        /// the last fired deadline (inserting the key if needed).
        Schedule {
            pattern: usize,
            key: i64,
            delta: i64,
        },
        /// Forget the key.
        Empty { pattern: usize, key: i64 },
        /// Fire the earliest deadline.
        Fire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0usize..3, 0i64..12, -3i64..40)
                .prop_map(|(pattern, key, delta)| Op::Schedule { pattern, key, delta }),
            1 => (0usize..3, 0i64..12).prop_map(|(pattern, key)| Op::Empty { pattern, key }),
            3 => Just(Op::Fire),
        ]
    }

    /// Two copies of the partitions of three patterns, one indexed by a
    /// [`DeadlineIndex`], one by a [`HeapIndex`].
    struct Twin {
        parts: [Vec<Partitions<u8>>; 2],
        index: DeadlineIndex,
        model: HeapIndex,
    }

    impl Twin {
        fn new() -> Twin {
            let three = || (0..3).map(|_| Partitions::default()).collect();
            Twin {
                parts: [three(), three()],
                index: DeadlineIndex::default(),
                model: HeapIndex::default(),
            }
        }

        /// Settles key `k` of `pattern` on both sides (inserting it first
        /// when it has no slot and is not to be emptied).
        fn settle(&mut self, pattern: usize, k: i64, empty: bool, deadline: Option<Timestamp>) {
            for side in 0..2 {
                let parts = &mut self.parts[side][pattern];
                let slot = match parts.find(H, &key(k)) {
                    Some(slot) => slot,
                    None if empty => continue,
                    None => parts.insert(H, key(k), 0),
                };
                let Some((t, s)) = parts.settle(slot, empty, deadline) else {
                    continue;
                };
                if side == 1 {
                    self.model.0.push(Reverse((t, pattern as u32, s)));
                } else if self.index.push(t, pattern, s) {
                    self.index.compact_if_stale(self.parts[0].iter());
                }
            }
        }

        /// Takes the earliest valid deadline out of both sides.
        fn fire(&mut self) -> (Option<OldEntry>, Option<OldEntry>) {
            let parts = &self.parts[0];
            let got = self
                .index
                .peek_due(Timestamp::MAX, |p, t, i| parts[p].scheduled_at(t, i));
            if let Some((_, p, slot)) = got {
                self.index.pop();
                self.parts[0][p].unschedule(slot);
            }
            let want = self.model.pop(&self.parts[1]);
            if let Some((_, p, slot)) = want {
                self.parts[1][p as usize].unschedule(slot);
            }
            (got.map(|(t, p, slot)| (t, p as u32, slot)), want)
        }
    }

    proptest! {
        /// The FIFO plus heap fires exactly what the plain heap fires, in
        /// the same (time, pattern, slot) order, through reschedules,
        /// emptied keys, reused slots and compactions.
        #[test]
        fn same_order_as_a_single_heap(ops in proptest::collection::vec(op(), 0..300)) {
            let mut twin = Twin::new();
            let mut now: Timestamp = 0;
            for op in ops {
                match op {
                    Op::Schedule { pattern, key, delta } => {
                        twin.settle(pattern, key, false, Some(now + delta));
                    }
                    Op::Empty { pattern, key } => twin.settle(pattern, key, true, None),
                    Op::Fire => {
                        let (got, want) = twin.fire();
                        prop_assert_eq!(got, want);
                        if let Some((t, _, _)) = got {
                            now = t;
                        }
                    }
                }
            }
            loop {
                let (got, want) = twin.fire();
                prop_assert_eq!(got, want);
                if got.is_none() {
                    break;
                }
            }
        }
    }

    #[test]
    fn compaction_keeps_the_order() {
        let mut twin = Twin::new();
        // Many reschedules of few keys, out of order, force compactions.
        for round in 0..3_000i64 {
            let k = round % 7;
            twin.settle((round % 3) as usize, k, false, Some((round * 37) % 101));
        }
        assert!(twin.index.len() < 3_000);
        loop {
            let (got, want) = twin.fire();
            assert_eq!(got, want);
            if got.is_none() {
                break;
            }
        }
    }
}
