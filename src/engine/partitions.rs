//! Per-key state of one pattern: keys map to slots of a
//! [`Slab`](crate::slab::Slab), each holding the key's matcher partition.
//!
//! A slot is freed when its partition becomes empty, so memory follows live
//! work; a slot's next occupant gets another generation. Each slot remembers the one deadline
//! it is scheduled at, for the lazily invalidated
//! [`DeadlineIndex`](super::deadlines::DeadlineIndex). [`KeyHasher`] is the
//! one hash function of keys.

use std::hash::{BuildHasher, Hasher};

use crate::primitives::Timestamp;
use crate::slab::Slab;
use crate::value::{KeyValue, Value};

/// Hashes partition keys for [`Partitions`]: the engine hashes each event's
/// key with it once, and the slots keep that hash.
///
/// A key of one integer or one string (the common case) is hashed directly
/// with foldhash (hashbrown's default hasher, randomly seeded per engine),
/// without the derived `Hash`'s length and discriminant writes; a key of
/// several fields combines its fields' hashes. Keys that are equal (by
/// [`Value`]'s structural equality: `Int(1)` and `Float(1.0)` differ, floats
/// compare by bits) hash equal, since each variant hashes exactly what its
/// equality compares.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyHasher(hashbrown::DefaultHashBuilder);

impl KeyHasher {
    /// The hash of a whole key.
    #[inline]
    pub fn key(&self, key: &[Value]) -> u64 {
        match key {
            [one] => self.value(one),
            fields => {
                let mut state = self.0.build_hasher();
                for field in fields {
                    state.write_u64(self.value(field));
                }
                state.finish()
            }
        }
    }

    /// The hash of one field's value.
    #[inline]
    fn value(&self, value: &Value) -> u64 {
        match value {
            Value::Int(i) => self.0.hash_one(*i),
            Value::Str(s) => self.0.hash_one(&**s),
            other => self.0.hash_one(other),
        }
    }
}

/// How much to add to a full buffer of `len` items whose size follows the
/// live keys (the slab, the deadline index): an eighth (at least 16), not
/// the double. Such a buffer only grows to the peak of live keys, and a
/// doubled capacity would leave up to half of it unused for good; growing
/// by an eighth wastes at most an eighth, for eight moves of each item
/// amortized.
pub(super) fn grow_by(len: usize) -> usize {
    (len / 8).max(16)
}

/// A slot index with the generation it had when referenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SlotRef {
    /// Index into the slab.
    pub index: u32,
    /// Generation of the slot at that time.
    pub generation: u32,
}

/// One key's state. `Option<Timestamp>` would take 16 bytes; the deadline
/// and its flag take 9 (the flag sits in `generation`'s padding, and its
/// spare values mark a vacant slab entry), so a slot of an NFA partition is
/// 120 bytes, not 128.
#[derive(Debug)]
struct Slot<P> {
    key: KeyValue,
    /// The key's hash (by the engine's hasher), kept so that removing the
    /// key and growing the table never hash it again.
    hash: u64,
    part: P,
    /// The deadline the slot is scheduled at, when `scheduled`.
    deadline: Timestamp,
    /// Tells this key's [`SlotRef`]s from those of earlier occupants of
    /// the slot.
    generation: u32,
    scheduled: bool,
}

impl<P> Slot<P> {
    /// The deadline the slot is scheduled at in the index.
    fn scheduled(&self) -> Option<Timestamp> {
        self.scheduled.then_some(self.deadline)
    }

    /// Records the deadline the slot is scheduled at (`None`: none).
    fn set_scheduled(&mut self, deadline: Option<Timestamp>) {
        self.scheduled = deadline.is_some();
        self.deadline = deadline.unwrap_or_default();
    }
}

/// The partitions of one pattern, by key. The table holds slot indexes
/// only: the key lives once, in its slot, and callers pass its hash (the
/// engine hashes an event's key once for every pattern keyed alike).
#[derive(Debug)]
pub(crate) struct Partitions<P> {
    by_key: hashbrown::HashTable<u32>,
    slots: Slab<Slot<P>>,
    /// The generation the next inserted slot gets.
    next_generation: u32,
}

impl<P> Default for Partitions<P> {
    fn default() -> Self {
        Partitions {
            by_key: hashbrown::HashTable::new(),
            slots: Slab::default(),
            next_generation: 0,
        }
    }
}

impl<P> Partitions<P> {
    /// The slot of `key` (whose hash is `hash`), if it has live state.
    #[inline]
    pub fn find(&self, hash: u64, key: &KeyValue) -> Option<SlotRef> {
        let slots = &self.slots;
        let &index = self
            .by_key
            .find(hash, |&i| slots.get(i).is_some_and(|s| s.key == *key))?;
        let generation = slots.get(index)?.generation;
        Some(SlotRef { index, generation })
    }

    /// Gives a key (hashed to `hash`) that has no slot yet one holding
    /// `part` (call [`Partitions::settle`] next to schedule its deadline).
    pub fn insert(&mut self, hash: u64, key: KeyValue, part: P) -> SlotRef {
        if self.slots.is_full() {
            self.slots.reserve_exact(grow_by(self.slots.entries()));
        }
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let index = self.slots.insert(Slot {
            key,
            hash,
            part,
            deadline: 0,
            generation,
            scheduled: false,
        });
        let slots = &self.slots;
        self.by_key
            .insert_unique(hash, index, |&i| slots.get(i).map_or(0, |s| s.hash));
        SlotRef { index, generation }
    }

    /// Updates the slot after its partition changed: forgets the key when
    /// `empty`, else (re)schedules its next deadline. Returns the new
    /// `(deadline, slot)` to put in the deadline index when the schedule
    /// changed to a time.
    #[must_use]
    pub fn settle(
        &mut self,
        slot: SlotRef,
        empty: bool,
        deadline: Option<Timestamp>,
    ) -> Option<(Timestamp, SlotRef)> {
        let entry = self.slots.get_mut(slot.index)?;
        if entry.generation != slot.generation {
            return None;
        }
        if empty {
            let hash = entry.hash;
            self.slots.delete(slot.index);
            if let Ok(found) = self.by_key.find_entry(hash, |&i| i == slot.index) {
                found.remove();
            }
            return None;
        }
        if entry.scheduled() == deadline {
            return None;
        }
        entry.set_scheduled(deadline);
        let t = deadline?;
        let current = SlotRef {
            index: slot.index,
            generation: entry.generation,
        };
        Some((t, current))
    }

    /// The partition and key of a live slot.
    #[inline]
    pub fn get_mut(&mut self, slot: SlotRef) -> Option<(&KeyValue, &mut P)> {
        let entry = self.slots.get_mut(slot.index)?;
        (entry.generation == slot.generation).then_some((&entry.key, &mut entry.part))
    }

    /// Marks the slot unscheduled: its deadline came out of the index (call
    /// [`Partitions::settle`] again to schedule the next one).
    pub fn unschedule(&mut self, slot: SlotRef) {
        if let Some(entry) = self.slots.get_mut(slot.index) {
            entry.set_scheduled(None);
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Is `slot` live, of that generation, and scheduled at `t`?
    #[cfg(test)]
    pub fn is_current(&self, t: Timestamp, slot: SlotRef) -> bool {
        self.slots.get(slot.index).is_some_and(|entry| {
            entry.generation == slot.generation && entry.scheduled() == Some(t)
        })
    }

    /// The slot at `index` if it is live and scheduled at `t`.
    #[inline]
    pub fn scheduled_at(&self, t: Timestamp, index: u32) -> Option<SlotRef> {
        let entry = self.slots.get(index)?;
        (entry.scheduled && entry.deadline == t).then_some(SlotRef {
            index,
            generation: entry.generation,
        })
    }

    /// The `(deadline, slot)` of every scheduled live slot.
    pub(super) fn scheduled(&self) -> impl Iterator<Item = (Timestamp, SlotRef)> + '_ {
        self.slots.iter().filter_map(|(index, s)| {
            let slot = SlotRef {
                index,
                generation: s.generation,
            };
            s.scheduled().map(|t| (t, slot))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: i64) -> KeyValue {
        KeyValue::from_elem(Value::Int(i), 1)
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            prop_oneof![Just(f64::NAN), Just(-0.0), Just(0.0), Just(1.0)].prop_map(Value::Float),
            "[ab]{0,2}".prop_map(Value::from),
            proptest::collection::vec((-1i64..2).prop_map(Value::Int), 0..2)
                .prop_map(|items| Value::List(items.into())),
        ]
    }

    proptest! {
        /// Equal keys hash equal (and the hash is a function of the key).
        #[test]
        fn equal_keys_hash_equal(
            a in proptest::collection::vec(value(), 0..3),
            b in proptest::collection::vec(value(), 0..3),
        ) {
            let hasher = KeyHasher::default();
            let (a, b): (KeyValue, KeyValue) = (a.into(), b.into());
            if a == b {
                prop_assert_eq!(hasher.key(&a), hasher.key(&b));
            }
            prop_assert_eq!(hasher.key(&a), hasher.key(&a.clone()));
        }
    }

    #[test]
    fn the_deadline_flag_fits_in_padding() {
        // Key 32 + hash 8 + partition 64 + deadline 8 + generation 4 + flags.
        assert_eq!(std::mem::size_of::<Slot<[u64; 8]>>(), 120);
        assert_eq!(Slab::<Slot<[u64; 8]>>::entry_size(), 120);
    }

    #[test]
    fn key_hashes_spread_over_the_low_bits() {
        // hashbrown picks buckets with the low bits and tags with the top 7:
        // consecutive integers, strings and pairs must not pile up in either.
        let hasher = KeyHasher::default();
        let keys: Vec<KeyValue> = (0..4096i64)
            .flat_map(|i| {
                [
                    key(i),
                    KeyValue::from_elem(Value::from(format!("user-{i}")), 1),
                    [Value::Int(i % 64), Value::Int(i / 64)]
                        .into_iter()
                        .collect(),
                ]
            })
            .collect();
        for shift in [0, 57] {
            let mut buckets = vec![0u32; 128];
            for k in &keys {
                buckets[((hasher.key(k) >> shift) & 127) as usize] += 1;
            }
            let mean = keys.len() as u32 / 128;
            assert!(
                buckets.iter().all(|&n| n < 2 * mean),
                "shift {shift}: {buckets:?}"
            );
        }
        let distinct: std::collections::HashSet<u64> = keys.iter().map(|k| hasher.key(k)).collect();
        assert_eq!(distinct.len(), keys.len());
    }
}
