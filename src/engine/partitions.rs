//! Per-key state of one pattern, and the engine-wide index of the times at
//! which some key needs time advanced even if it sees no event (window
//! expiry, pending `not followed by` endings).
//!
//! Keys map to slots of a slab; a slot is freed (and its generation bumped)
//! when its partition becomes empty, so memory follows live work. Each slot
//! remembers the one deadline it is scheduled at. The [`DeadlineIndex`] is a
//! single min-heap of `(deadline, pattern, slot, generation)` for all
//! patterns with lazy invalidation: an entry is acted on only if the slot
//! still has that generation and that scheduled deadline; stale entries are
//! skipped when popped, and the heap is rebuilt when stale entries dominate
//! it. One heap for all patterns (rather than one per pattern) means finding
//! the next deadline is one peek, not one per pattern; the order is the
//! same: by time, then pattern, then slot.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::event::Timestamp;
use crate::value::KeyValue;

/// A slot index with the generation it had when referenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SlotRef {
    /// Index into the slab.
    pub index: u32,
    /// Generation of the slot at that time.
    pub generation: u32,
}

#[derive(Debug)]
struct Slot<P> {
    key: KeyValue,
    /// The key's hash (by the engine's hasher), kept so that removing the
    /// key and growing the table never hash it again.
    hash: u64,
    part: P,
    generation: u32,
    scheduled: Option<Timestamp>,
    live: bool,
}

/// The partitions of one pattern, by key. The table holds slot indexes
/// only: the key lives once, in its slot, and callers pass its hash (the
/// engine hashes an event's key once for every pattern keyed alike).
#[derive(Debug)]
pub(crate) struct Partitions<P> {
    by_key: hashbrown::HashTable<u32>,
    slots: Vec<Slot<P>>,
    free: Vec<u32>,
}

impl<P> Default for Partitions<P> {
    fn default() -> Self {
        Partitions {
            by_key: hashbrown::HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<P: Default> Partitions<P> {
    /// The slot of `key` (whose hash is `hash`), if it has live state.
    pub fn find(&self, hash: u64, key: &KeyValue) -> Option<SlotRef> {
        let slots = &self.slots;
        self.by_key
            .find(hash, |&i| slots[i as usize].key == *key)
            .map(|&index| self.slot_ref(index))
    }

    /// Gives a key (hashed to `hash`) that has no slot yet one holding
    /// `part` (call [`Partitions::settle`] next to schedule its deadline).
    pub fn insert(&mut self, hash: u64, key: KeyValue, part: P) -> SlotRef {
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.key = key;
                slot.hash = hash;
                slot.part = part;
                slot.live = true;
                index
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("more than 2^32 live keys");
                self.slots.push(Slot {
                    key,
                    hash,
                    part,
                    generation: 0,
                    scheduled: None,
                    live: true,
                });
                index
            }
        };
        let slots = &self.slots;
        self.by_key
            .insert_unique(hash, index, |&i| slots[i as usize].hash);
        self.slot_ref(index)
    }

    /// Updates the slot after its partition changed: forgets the key when
    /// `empty`, else (re)schedules its next deadline. Returns the new
    /// `(deadline, slot)` to put in the [`DeadlineIndex`] when the schedule
    /// changed to a time.
    #[must_use]
    pub fn settle(
        &mut self,
        slot: SlotRef,
        empty: bool,
        deadline: Option<Timestamp>,
    ) -> Option<(Timestamp, SlotRef)> {
        let entry = self.slots.get_mut(slot.index as usize)?;
        if entry.generation != slot.generation || !entry.live {
            return None;
        }
        if empty {
            entry.key = KeyValue::new();
            entry.part = P::default();
            entry.generation = entry.generation.wrapping_add(1);
            entry.scheduled = None;
            entry.live = false;
            if let Ok(found) = self.by_key.find_entry(entry.hash, |&i| i == slot.index) {
                found.remove();
            }
            self.free.push(slot.index);
            return None;
        }
        if entry.scheduled == deadline {
            return None;
        }
        entry.scheduled = deadline;
        let t = deadline?;
        let current = SlotRef {
            index: slot.index,
            generation: entry.generation,
        };
        Some((t, current))
    }
}

impl<P> Partitions<P> {
    fn slot_ref(&self, index: u32) -> SlotRef {
        SlotRef {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// The partition and key of a live slot.
    pub fn get_mut(&mut self, slot: SlotRef) -> Option<(&KeyValue, &mut P)> {
        let entry = self.slots.get_mut(slot.index as usize)?;
        (entry.live && entry.generation == slot.generation).then_some((&entry.key, &mut entry.part))
    }

    /// Marks the slot unscheduled: its deadline came out of the index (call
    /// [`Partitions::settle`] again to schedule the next one).
    pub fn unschedule(&mut self, slot: SlotRef) {
        if let Some(entry) = self.slots.get_mut(slot.index as usize) {
            entry.scheduled = None;
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Is `slot` live, of that generation, and scheduled at `t`?
    pub fn is_current(&self, t: Timestamp, slot: SlotRef) -> bool {
        self.slots.get(slot.index as usize).is_some_and(|entry| {
            entry.live && entry.generation == slot.generation && entry.scheduled == Some(t)
        })
    }

    /// The `(deadline, slot)` of every scheduled live slot.
    fn scheduled(&self) -> impl Iterator<Item = (Timestamp, SlotRef)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .filter_map(|(i, s)| {
                let slot = SlotRef {
                    index: i as u32,
                    generation: s.generation,
                };
                s.scheduled.map(|t| (t, slot))
            })
    }
}

/// One index entry: deadline, pattern, slot (ordered in that priority).
type Entry = Reverse<(Timestamp, u32, SlotRef)>;

/// The deadlines of every pattern's partitions in one min-heap, with lazy
/// invalidation against the slots (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct DeadlineIndex {
    heap: BinaryHeap<Entry>,
    /// The heap size at which to check for stale entries next.
    check_at: usize,
}

impl DeadlineIndex {
    /// Adds a deadline of `pattern`'s `slot` (as returned by
    /// [`Partitions::settle`]). Returns true when the caller should call
    /// [`DeadlineIndex::compact_if_stale`] next.
    #[must_use]
    pub fn push(&mut self, t: Timestamp, pattern: usize, slot: SlotRef) -> bool {
        self.heap.push(Reverse((t, pattern as u32, slot)));
        self.heap.len() > self.check_at
    }

    /// The earliest valid deadline and its pattern, dropping stale entries
    /// on the way; `current(pattern, t, slot)` says whether an entry is
    /// still valid.
    pub fn peek(
        &mut self,
        mut current: impl FnMut(usize, Timestamp, SlotRef) -> bool,
    ) -> Option<(Timestamp, usize, SlotRef)> {
        while let Some(&Reverse((t, p, slot))) = self.heap.peek() {
            if current(p as usize, t, slot) {
                return Some((t, p as usize, slot));
            }
            self.heap.pop();
        }
        None
    }

    /// Removes the top entry (after [`DeadlineIndex::peek`] returned it).
    pub fn pop(&mut self) {
        self.heap.pop();
    }

    /// Number of entries, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }

    /// Rebuilds the heap from the slots when most entries are stale, so the
    /// index stays proportional to the live keys: after a check the heap
    /// holds at most twice the live keys plus 1024, and the next check comes
    /// once it grew by the live keys plus 1024.
    /// `parts` are every pattern's partitions, in pattern order.
    pub fn compact_if_stale<'p, P: 'p>(
        &mut self,
        parts: impl Iterator<Item = &'p Partitions<P>> + Clone,
    ) {
        let live: usize = parts.clone().map(|p| p.len()).sum();
        if self.heap.len() > 2 * live + 1024 {
            let entries: Vec<Entry> = parts
                .enumerate()
                .flat_map(|(p, part)| {
                    part.scheduled()
                        .map(move |(t, slot)| Reverse((t, p as u32, slot)))
                })
                .collect();
            self.heap = BinaryHeap::from(entries);
        }
        self.check_at = self.heap.len() + live + 1024;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

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
        let (t, _, slot) = index.peek(|_, t, slot| parts.is_current(t, slot))?;
        index.pop();
        parts.unschedule(slot);
        Some((t, slot))
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
        while let Some((t, p, s)) = index.peek(|_, _, _| true) {
            index.pop();
            order.push((t, p, s.index));
        }
        assert_eq!(order, vec![(4, 2, 3), (5, 0, 0), (5, 0, 1), (5, 1, 0)]);
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
}
