//! Per-key state of one pattern, and the index of the times at which some
//! key needs time advanced even if it sees no event (window expiry,
//! pending `not followed by` endings).
//!
//! Keys map to slots of a slab; a slot is freed (and its generation bumped)
//! when its partition becomes empty, so memory follows live work. The
//! deadline index is a min-heap of `(deadline, slot, generation)` with lazy
//! invalidation: an entry is acted on only if the slot still has that
//! generation and that scheduled deadline; stale entries are skipped when
//! popped, and the heap is rebuilt when stale entries dominate it.

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
    part: P,
    generation: u32,
    scheduled: Option<Timestamp>,
    live: bool,
}

/// The partitions of one pattern, by key, plus their deadline index.
#[derive(Debug)]
pub(crate) struct Partitions<P> {
    by_key: hashbrown::HashMap<KeyValue, u32>,
    slots: Vec<Slot<P>>,
    free: Vec<u32>,
    deadlines: BinaryHeap<Reverse<(Timestamp, SlotRef)>>,
}

impl<P> Default for Partitions<P> {
    fn default() -> Self {
        Partitions {
            by_key: hashbrown::HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: BinaryHeap::new(),
        }
    }
}

impl<P: Default> Partitions<P> {
    /// The slot of `key`, if it has live state.
    pub fn find(&self, key: &KeyValue) -> Option<SlotRef> {
        self.by_key.get(key).map(|&index| self.slot_ref(index))
    }

    /// Gives a key that has no slot yet one holding `part` (call
    /// [`Partitions::settle`] next to schedule its deadline).
    pub fn insert(&mut self, key: KeyValue, part: P) -> SlotRef {
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.key = key.clone();
                slot.part = part;
                slot.live = true;
                index
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("more than 2^32 live keys");
                self.slots.push(Slot {
                    key: key.clone(),
                    part,
                    generation: 0,
                    scheduled: None,
                    live: true,
                });
                index
            }
        };
        self.by_key.insert(key, index);
        self.slot_ref(index)
    }

    /// Updates the slot after its partition changed: forgets the key when
    /// `empty`, else (re)schedules its next deadline.
    pub fn settle(&mut self, slot: SlotRef, empty: bool, deadline: Option<Timestamp>) {
        let Some(entry) = self.slots.get_mut(slot.index as usize) else {
            return;
        };
        if entry.generation != slot.generation || !entry.live {
            return;
        }
        if empty {
            let key = std::mem::take(&mut entry.key);
            entry.part = P::default();
            entry.generation = entry.generation.wrapping_add(1);
            entry.scheduled = None;
            entry.live = false;
            self.by_key.remove(&key);
            self.free.push(slot.index);
            return;
        }
        if entry.scheduled != deadline {
            entry.scheduled = deadline;
            if let Some(t) = deadline {
                let current = SlotRef {
                    index: slot.index,
                    generation: entry.generation,
                };
                self.deadlines.push(Reverse((t, current)));
                self.compact_if_stale();
            }
        }
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

    /// The earliest valid deadline, dropping stale index entries on the way.
    pub fn peek_deadline(&mut self) -> Option<Timestamp> {
        while let Some(&Reverse((t, slot))) = self.deadlines.peek() {
            if self.is_current(t, slot) {
                return Some(t);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Removes and returns the earliest valid deadline and its slot; the slot
    /// counts as unscheduled until [`Partitions::settle`] is called again.
    pub fn pop_deadline(&mut self) -> Option<(Timestamp, SlotRef)> {
        let t = self.peek_deadline()?;
        let Reverse((_, slot)) = self.deadlines.pop()?;
        self.slots[slot.index as usize].scheduled = None;
        Some((t, slot))
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    fn is_current(&self, t: Timestamp, slot: SlotRef) -> bool {
        let entry = &self.slots[slot.index as usize];
        entry.live && entry.generation == slot.generation && entry.scheduled == Some(t)
    }

    /// Rebuilds the heap from the slots when most entries are stale, so the
    /// index stays proportional to the live keys.
    fn compact_if_stale(&mut self) {
        if self.deadlines.len() <= 2 * self.by_key.len() + 1024 {
            return;
        }
        let entries: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .filter_map(|(i, s)| {
                let slot = SlotRef {
                    index: i as u32,
                    generation: s.generation,
                };
                s.scheduled.map(|t| Reverse((t, slot)))
            })
            .collect();
        self.deadlines = BinaryHeap::from(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn key(i: i64) -> KeyValue {
        KeyValue::from_elem(Value::Int(i), 1)
    }

    #[test]
    fn deadlines_come_out_in_time_order_and_stale_ones_are_skipped() {
        let mut parts: Partitions<u8> = Partitions::default();
        let a = parts.insert(key(1), 0);
        let b = parts.insert(key(2), 0);
        parts.settle(a, false, Some(30));
        parts.settle(b, false, Some(20));
        parts.settle(a, false, Some(10)); // replaces 30
        assert_eq!(parts.pop_deadline(), Some((10, a)));
        assert_eq!(parts.pop_deadline(), Some((20, b)));
        assert_eq!(parts.pop_deadline(), None);
    }

    #[test]
    fn empty_partitions_are_forgotten_and_slots_reused() {
        let mut parts: Partitions<u8> = Partitions::default();
        let a = parts.insert(key(1), 0);
        parts.settle(a, false, Some(5));
        assert_eq!(parts.len(), 1);
        parts.settle(a, true, None);
        assert_eq!(parts.len(), 0);
        assert_eq!(parts.peek_deadline(), None);
        assert!(parts.get_mut(a).is_none());
        let b = parts.insert(key(2), 0);
        assert_eq!(b.index, a.index);
        assert_ne!(b.generation, a.generation);
        assert_eq!(parts.find(&key(2)), Some(b));
        assert_eq!(parts.find(&key(1)), None);
    }

    #[test]
    fn the_index_stays_small_when_deadlines_keep_moving() {
        let mut parts: Partitions<u8> = Partitions::default();
        let a = parts.insert(key(1), 0);
        for t in 0..10_000 {
            parts.settle(a, false, Some(t));
        }
        assert!(parts.deadlines.len() <= 1026);
        assert_eq!(parts.pop_deadline(), Some((9_999, a)));
    }
}
