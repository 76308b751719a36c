//! Per-key state of a group of patterns partitioned alike: keys map to
//! slots of a [`Slab`](crate::slab::Slab), each holding the key's matcher
//! partition of every pattern of the group that has live state for it.
//!
//! Patterns with the same `partition by` fields share one [`Keys`]: an
//! event's key is looked up once for all of them, a key's partitions lie
//! side by side in its slot, and the key has one deadline (the earliest of
//! its partitions') in the
//! [`DeadlineIndex`](super::deadlines::DeadlineIndex). A partition is
//! dropped when it becomes empty and the slot when it holds none, so memory
//! follows live work. [`KeyHasher`] is the one hash function of keys.
//!
//! Each partition keeps the number its pattern gave it ([`Ordinals`]):
//! deadlines of equal time fire in (pattern, number) order, the order in
//! which they fired when every pattern had a map of its own (the number is
//! the index that partition had in its pattern's own slab).

use std::hash::{BuildHasher, Hasher};

use crate::primitives::Timestamp;
use crate::slab::Slab;
use crate::value::{KeyValue, Value};

/// Hashes partition keys for [`Keys`]: the engine hashes each event's key
/// with it once, and the slots keep that hash.
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
    /// The hash of a whole key (always inlined: once per event, and a call
    /// costs as much as the hash of an integer).
    #[inline(always)]
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

    /// The hash of one field's value (always inlined, as
    /// [`KeyHasher::key`] is).
    #[inline(always)]
    fn value(&self, value: &Value) -> u64 {
        match value {
            Value::Int(i) => self.0.hash_one(*i),
            Value::Str(s) => self.0.hash_one(&**s),
            other => self.0.hash_one(other),
        }
    }
}

/// Numbers for one pattern's partitions, handed out as a slab hands out
/// indexes: the last freed number first, else the next unused one.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Ordinals {
    free: Vec<u32>,
    next: u32,
}

impl Ordinals {
    /// A number for a new partition.
    #[inline]
    pub fn take(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            let n = self.next;
            self.next += 1;
            n
        })
    }

    /// Gives back the number of a dropped partition.
    #[inline]
    pub fn give(&mut self, n: u32) {
        self.free.push(n);
    }

    /// How many numbers are out: the pattern's live partitions.
    pub fn live(&self) -> usize {
        self.next as usize - self.free.len()
    }

    /// Checks numbers read back from a snapshot against the numbers of the
    /// pattern's live partitions: together with the free ones they are
    /// every number below the next, each once.
    pub fn check(&self, live: impl Iterator<Item = u32>) -> Result<(), cepheid_core::Inconsistent> {
        let mut seen = vec![false; self.next as usize];
        for n in live.chain(self.free.iter().copied()) {
            match seen.get_mut(n as usize) {
                Some(seen @ false) => *seen = true,
                _ => return Err(format!("partition number {n} given twice or never").into()),
            }
        }
        match seen.iter().position(|s| !s) {
            Some(n) => Err(format!("partition number {n} is lost").into()),
            None => Ok(()),
        }
    }
}

/// One pattern's partition of a key.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "P: crate::persist::Save",
    deserialize = "P: crate::persist::Load"
))]
pub(crate) struct Part<P> {
    /// The matcher partition.
    #[serde(with = "crate::persist::via")]
    pub part: P,
    /// The pattern's index in the engine.
    pub pattern: u32,
    /// The partition's number among its pattern's ([`Ordinals`]), or
    /// [`HOLE`].
    pub ordinal: u32,
}

/// The number of a *hole*: a partition that emptied and stays where it is
/// (empty, its number given back) until the key's slot goes or is
/// compacted, so that the partitions of a key stay in pattern order
/// without moving, and a pattern whose partition of a key empties and
/// starts again (a `consecutive` rule broken, then restarted) reuses its
/// place.
pub(crate) const HOLE: u32 = u32::MAX;

impl<P: Default> Part<P> {
    /// A fresh idle partition of pattern `pattern` (a hole until it is
    /// numbered).
    #[inline]
    pub fn idle(pattern: u32) -> Part<P> {
        Part {
            part: P::default(),
            pattern,
            ordinal: HOLE,
        }
    }
}

impl<P> Part<P> {
    /// Is this a hole (see [`HOLE`])?
    #[inline]
    pub fn is_hole(&self) -> bool {
        self.ordinal == HOLE
    }
}

/// The partitions of one key, holes included, in pattern order (so that a
/// key's partitions due at one time fire in one pass, and the engine finds
/// each pattern's partition with a cursor as it offers an event to the
/// patterns in order). The common key of a single pattern needs no
/// allocation of its own.
pub(crate) type Parts<P> = smallvec::SmallVec<[Part<P>; 1]>;

/// Adds `fresh` (partitions of patterns that had none, in pattern order)
/// to `parts`, keeping pattern order: appended when they all come after
/// the last one (the common case), else merged.
pub(crate) fn merge_fresh<P>(parts: &mut Parts<P>, fresh: &mut Vec<Part<P>>) {
    let Some(first) = fresh.first() else {
        return;
    };
    if parts
        .last()
        .map_or(true, |last| last.pattern < first.pattern)
    {
        // (exactly: a key's partitions often all start at once)
        parts.reserve_exact(fresh.len());
        parts.extend(fresh.drain(..));
        return;
    }
    let old = std::mem::take(parts);
    let mut merged = Parts::with_capacity(old.len() + fresh.len());
    let mut old = old.into_iter().peekable();
    let mut new = fresh.drain(..).peekable();
    loop {
        let from_old = match (old.peek(), new.peek()) {
            (Some(a), Some(b)) => a.pattern < b.pattern,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if from_old { old.next() } else { new.next() });
    }
    *parts = merged;
}

/// One key's state. `Option<Timestamp>` would take 16 bytes; the deadline
/// and its flag take 9. A snapshot holds all of it but the hash (the
/// engine's hasher is seeded at random: the engine that reads the
/// snapshot hashes the key again).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "P: crate::persist::Save",
    deserialize = "P: crate::persist::Load"
))]
struct Slot<P> {
    #[serde(with = "crate::persist::via")]
    key: KeyValue,
    /// The key's hash (by the engine's hasher), kept so that removing the
    /// key and growing the table never hash it again.
    #[serde(skip)]
    hash: u64,
    parts: Parts<P>,
    /// The deadline the key is scheduled at, when `scheduled`.
    deadline: Timestamp,
    scheduled: bool,
    /// While the deadlines of one time fire: how many of the key's
    /// partitions due then have not fired yet.
    pending: u32,
}

/// The keys of one group of patterns. The table holds slot indexes only:
/// the key lives once, in its slot, and callers pass its hash (the engine
/// hashes an event's key once per group). A snapshot holds the slots as
/// they are (free list included: it decides the slots of keys to come,
/// which order deadlines of equal time); the table of hashes is made again
/// by [`Keys::rebuild`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "P: crate::persist::Save",
    deserialize = "P: crate::persist::Load"
))]
pub(crate) struct Keys<P> {
    #[serde(skip)]
    by_key: hashbrown::HashTable<u32>,
    slots: Slab<Slot<P>>,
    /// Emptied partition vectors of keys that went (a key of a group whose
    /// patterns all start at once often goes and comes back): a new key
    /// with several partitions takes the group's vector of fresh ones as
    /// it is, and one of these takes its place.
    #[serde(skip)]
    spare: Vec<Vec<Part<P>>>,
}

/// How many emptied partition vectors [`Keys`] keeps.
const SPARE_PARTS: usize = 16;

impl<P> Default for Keys<P> {
    fn default() -> Self {
        Keys {
            by_key: hashbrown::HashTable::new(),
            slots: Slab::default(),
            spare: Vec::new(),
        }
    }
}

impl<P> Keys<P> {
    /// The slot of `key` (whose hash is `hash`), if it has live state.
    #[inline]
    pub fn find(&self, hash: u64, key: &KeyValue) -> Option<u32> {
        let slots = &self.slots;
        self.by_key
            .find(hash, |&i| slots.get(i).is_some_and(|s| s.key == *key))
            .copied()
    }

    /// Gives a key (hashed to `hash`) that has no slot yet one, holding
    /// its first partition, `part` of pattern `pattern` numbered `ordinal`
    /// (call [`Keys::settle`] next to schedule it).
    #[cfg(test)]
    pub fn insert(&mut self, hash: u64, key: KeyValue, part: P, pattern: u32, ordinal: u32) -> u32 {
        let part = Part {
            part,
            pattern,
            ordinal,
        };
        self.insert_parts(hash, key, Parts::from_buf([part]))
    }

    /// Gives a key (hashed to `hash`) that has no slot yet one, holding the
    /// partitions `parts` (at least one, in pattern order; call
    /// [`Keys::settle`] next to schedule it).
    #[inline]
    pub fn insert_parts(&mut self, hash: u64, key: KeyValue, parts: Parts<P>) -> u32 {
        let index = self.slots.insert(Slot {
            key,
            hash,
            parts,
            deadline: 0,
            scheduled: false,
            pending: 0,
        });
        let slots = &self.slots;
        self.by_key
            .insert_unique(hash, index, |&i| slots.get(i).map_or(0, |s| s.hash));
        index
    }

    /// [`insert_parts`](Self::insert_parts) of the partitions in `fresh`
    /// (emptied). Several partitions stay in `fresh`'s vector, which the
    /// key takes as it is (no partition moved), and `fresh` gets a vector a
    /// key that went left, when there is one.
    #[inline]
    pub fn insert_fresh(&mut self, hash: u64, key: KeyValue, fresh: &mut Vec<Part<P>>) -> u32 {
        let n = fresh.len();
        let parts = if n > 1 {
            // (room for as many as this key started: the next new key's
            // fresh partitions do not grow it one by one)
            let spare = match self.spare.pop() {
                Some(spare) if spare.capacity() >= n => spare,
                _ => Vec::with_capacity(n),
            };
            // (a spilled vector: `from_vec` keeps its buffer)
            Parts::from_vec(std::mem::replace(fresh, spare))
        } else {
            fresh.drain(..).collect()
        };
        self.insert_parts(hash, key, parts)
    }

    /// The key and partitions of a live slot.
    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<(&KeyValue, &mut Parts<P>)> {
        let entry = self.slots.get_mut(slot)?;
        Some((&entry.key, &mut entry.parts))
    }

    /// Updates the slot after its partitions changed: forgets the key when
    /// it has none left but holes, else schedules it at the earliest of
    /// their deadlines (`deadline` gives a partition's), drops its holes
    /// when they are more than half of its partitions, and gives back the
    /// space of partitions gone when they held more than half of it.
    /// Returns the time to put in the deadline index when the schedule
    /// changed to one. While the deadlines of `firing` fire, a key with more
    /// partitions due then is left as it is (unscheduled).
    #[must_use]
    #[inline(always)]
    pub fn settle(
        &mut self,
        slot: u32,
        firing: Option<Timestamp>,
        deadline: impl Fn(&P) -> Option<Timestamp>,
    ) -> Option<Timestamp> {
        let entry = self.slots.get_mut(slot)?;
        let (earliest, live) = match &entry.parts[..] {
            [one] if !one.is_hole() => (deadline(&one.part), 1),
            parts => {
                parts
                    .iter()
                    .filter(|p| !p.is_hole())
                    .fold((None, 0), |(earliest, live), p| {
                        let t = deadline(&p.part);
                        let earliest = match (earliest, t) {
                            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                            (a, b) => a.or(b),
                        };
                        (earliest, live + 1)
                    })
            }
        };
        if live == 0 {
            self.remove(slot);
            return None;
        }
        if firing.is_some_and(|now| earliest.is_some_and(|t| t <= now)) {
            // More of its partitions are due now: the last one settles it.
            return None;
        }
        let parts = &mut entry.parts;
        if (parts.len() - live) * 2 > parts.len() {
            parts.retain(|p| !p.is_hole());
        }
        if parts.spilled() && parts.len() * 2 <= parts.capacity() {
            parts.shrink_to_fit();
        }
        if entry.scheduled() == earliest {
            return None;
        }
        entry.set_scheduled(earliest);
        earliest
    }

    /// Forgets the key of a live slot, with its partitions.
    pub fn remove(&mut self, slot: u32) {
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        let hash = entry.hash;
        if entry.parts.spilled() && self.spare.len() < SPARE_PARTS {
            // (taken where it lies, the slot not moved out)
            let mut parts = std::mem::take(&mut entry.parts).into_vec();
            parts.clear();
            self.spare.push(parts);
        }
        self.slots.delete(slot);
        if let Ok(found) = self.by_key.find_entry(hash, |&i| i == slot) {
            found.remove();
        }
    }

    /// Notes that `n` of the slot's partitions are due now (see
    /// [`Keys::done_pending`]).
    pub fn set_pending(&mut self, slot: u32, n: u32) {
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.pending = n;
        }
    }

    /// One of the slot's partitions due now has fired: is it the last one?
    pub fn done_pending(&mut self, slot: u32) -> bool {
        let Some(entry) = self.slots.get_mut(slot) else {
            return false;
        };
        entry.pending = entry.pending.saturating_sub(1);
        entry.pending == 0
    }

    /// Marks the slot unscheduled: its deadline came out of the index.
    pub fn unschedule(&mut self, slot: u32) {
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.set_scheduled(None);
        }
    }

    /// After the slots were read back from a snapshot: hashes each key
    /// with `hasher` and indexes it, checking that the slots are well
    /// formed (the slab's free list, no key twice, no slot without
    /// partitions, none left mid-firing) and that each key has `arity`
    /// values.
    pub fn rebuild(
        &mut self,
        hasher: &KeyHasher,
        arity: usize,
    ) -> Result<(), cepheid_core::Inconsistent> {
        self.slots.check()?;
        self.by_key = hashbrown::HashTable::with_capacity(self.slots.len());
        for index in 0..self.slots.entries() as u32 {
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            if slot.parts.is_empty() || slot.pending != 0 {
                return Err(format!("key slot {index} is not settled").into());
            }
            if slot.key.len() != arity {
                return Err(
                    format!("key slot {index} has a key of {} values", slot.key.len()).into(),
                );
            }
            slot.hash = hasher.key(&slot.key);
            let hash = slot.hash;
            let slots = &self.slots;
            let key = slots.get(index).map(|s| &s.key);
            if self
                .by_key
                .find(hash, |&i| slots.get(i).map(|s| &s.key) == key)
                .is_some()
            {
                return Err(format!("key slot {index} holds a key held by another").into());
            }
            self.by_key
                .insert_unique(hash, index, |&i| slots.get(i).map_or(0, |s| s.hash));
        }
        Ok(())
    }

    /// Calls `f` with the partitions of every live slot.
    pub fn for_each_slot(&mut self, mut f: impl FnMut(&mut Parts<P>)) {
        for index in 0..self.slots.entries() as u32 {
            if let Some(slot) = self.slots.get_mut(index) {
                f(&mut slot.parts);
            }
        }
    }

    /// The live slots whose key `keep` refuses, in index order.
    pub fn slots_refused(&self, mut keep: impl FnMut(&[Value]) -> bool) -> Vec<u32> {
        self.slots
            .iter()
            .filter(|(_, slot)| !keep(&slot.key))
            .map(|(index, _)| index)
            .collect()
    }

    /// Every live key with its partitions, the keys consumed.
    pub fn into_keys(self) -> impl Iterator<Item = (KeyValue, Parts<P>)> {
        self.slots
            .into_values()
            .map(|(_, slot)| (slot.key, slot.parts))
    }

    /// Every live slot's index and partitions, in index order.
    pub fn iter_parts(&self) -> impl Iterator<Item = (u32, &Parts<P>)> + '_ {
        self.slots.iter().map(|(index, slot)| (index, &slot.parts))
    }

    /// Gives back the hash table's space when it holds far fewer keys than
    /// it has room for (it grew for a peak of live keys, or for the
    /// tombstones of keys that went: an engine's memory follows its live
    /// keys).
    pub fn shrink_table(&mut self) {
        let len = self.by_key.len();
        if self.by_key.capacity() > 4 * len + 64 {
            let slots = &self.slots;
            self.by_key
                .shrink_to(len + len / 2, |&i| slots.get(i).map_or(0, |s| s.hash));
        }
    }

    /// Moves the live slots to the front, keeping their order, and gives
    /// back the space of the vacant ones and of the hash table's spare
    /// room (after a change of rules dropped a pattern's partitions, whose
    /// keys' slots can be anywhere). Slot indexes change: the table
    /// follows, and the caller rebuilds what else holds them (the deadline
    /// index; no output order depends on a slot's index).
    pub fn compact(&mut self) {
        if let Some(moves) = self.slots.compact() {
            for index in self.by_key.iter_mut() {
                *index = moves.get(*index);
            }
        }
        self.shrink_table();
    }

    /// Bytes the keys hold: their slots (vacant ones too), the hash
    /// table's room, each key's values and its partitions that no longer
    /// fit inline, and what each partition holds (`part_bytes`).
    pub fn state_bytes(&self, part_bytes: impl Fn(&P) -> usize) -> usize {
        let slots = self.slots.entries() * Slab::<Slot<P>>::entry_size()
            + self.by_key.capacity() * (std::mem::size_of::<u32>() + 1);
        let held: usize = self
            .slots
            .iter()
            .map(|(_, slot)| {
                let key = match &slot.key {
                    KeyValue::One(v) => v.heap_bytes(),
                    KeyValue::Many(values) => {
                        std::mem::size_of_val::<[Value]>(values)
                            + values.iter().map(Value::heap_bytes).sum::<usize>()
                    }
                };
                let spilled = if slot.parts.spilled() {
                    slot.parts.capacity() * std::mem::size_of::<Part<P>>()
                } else {
                    0
                };
                key + spilled
                    + slot
                        .parts
                        .iter()
                        .map(|p| part_bytes(&p.part))
                        .sum::<usize>()
            })
            .sum();
        slots + held
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Is the slot live and scheduled at `t`?
    #[inline]
    pub fn scheduled_at(&self, t: Timestamp, slot: u32) -> bool {
        self.slots
            .get(slot)
            .is_some_and(|entry| entry.scheduled && entry.deadline == t)
    }

    /// The `(deadline, slot)` of every scheduled live slot.
    pub(super) fn scheduled(&self) -> impl Iterator<Item = (Timestamp, u32)> + '_ {
        self.slots
            .iter()
            .filter_map(|(index, s)| s.scheduled().map(|t| (t, index)))
    }
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
    fn a_key_of_one_pattern_is_one_slot() {
        // Key 24 + hash 8 + one inline partition (64 + pattern and number
        // 8) and the vector's length 8 + deadline 8 + pending 4 + flag.
        assert_eq!(std::mem::size_of::<KeyValue>(), 24);
        assert_eq!(std::mem::size_of::<Slot<[u64; 8]>>(), 128);
        assert_eq!(Slab::<Slot<[u64; 8]>>::entry_size(), 128);
        // The engine's: with the matcher's 120-byte partition.
        assert_eq!(std::mem::size_of::<Slot<crate::matcher::Partition>>(), 184);
    }

    #[test]
    fn ordinals_are_reused_last_freed_first() {
        let mut ordinals = Ordinals::default();
        let (a, b, c) = (ordinals.take(), ordinals.take(), ordinals.take());
        assert_eq!((a, b, c), (0, 1, 2));
        ordinals.give(a);
        ordinals.give(c);
        assert_eq!(
            (ordinals.take(), ordinals.take(), ordinals.take()),
            (2, 0, 3)
        );
    }

    #[test]
    fn keys_are_scheduled_at_their_earliest_deadline_and_freed_when_empty() {
        let mut keys: Keys<Option<Timestamp>> = Keys::default();
        let s = keys.insert(7, key(1), Some(30), 0, 0);
        assert_eq!(keys.find(7, &key(1)), Some(s));
        let (_, parts) = keys.get_mut(s).unwrap();
        for (pattern, t) in [(2, Some(20)), (3, None)] {
            parts.push(Part {
                part: t,
                pattern,
                ordinal: 0,
            });
        }
        assert_eq!(keys.settle(s, None, |p| *p), Some(20));
        assert!(keys.scheduled_at(20, s));
        // Unchanged: nothing new to index.
        assert_eq!(keys.settle(s, None, |p| *p), None);
        // While the deadlines of 20 fire, the key waits for the last one.
        keys.unschedule(s);
        assert_eq!(keys.settle(s, Some(20), |p| *p), None);
        keys.get_mut(s).unwrap().1.remove(1);
        assert_eq!(keys.settle(s, Some(20), |p| *p), Some(30));
        keys.get_mut(s).unwrap().1.clear();
        assert_eq!(keys.settle(s, None, |p| *p), None);
        assert_eq!(keys.len(), 0);
        assert_eq!(keys.find(7, &key(1)), None);
        assert!(!keys.scheduled_at(30, s));
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
