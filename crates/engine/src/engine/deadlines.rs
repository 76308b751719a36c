//! The engine-wide index of the times at which some key needs time advanced
//! even if it sees no event (window expiry, pending `not followed by`
//! endings).
//!
//! The [`DeadlineIndex`] is a single priority queue of `(deadline, group,
//! slot)`: one entry per key of every group of patterns partitioned alike
//! (see [`Keys`]), at the earliest deadline of the key's partitions, with
//! lazy invalidation: an entry is acted on only if the slot is live and
//! still scheduled at that deadline; stale entries are skipped when popped,
//! and the queue is compacted when they are more than half the live keys
//! (plus a few) and it is full. One queue for
//! all groups means finding the next deadline is one peek. The entries of
//! one time come out together (the engine then fires the partitions due in
//! pattern order), so their order among themselves does not matter.
//!
//! Entries do not carry a generation of the slot (16 bytes instead of 24):
//! an entry left by a key whose slot was since reused can pass the check
//! only if the new key is scheduled at the same time, and then it equals
//! the new key's own entry, so whichever of the two comes out first fires
//! the key at its deadline, and the other is stale after that.
//!
//! Deadlines are mostly scheduled in increasing order (a window closes a
//! fixed time after the event that opened it), so the queue is a
//! [`FifoHeap`]: pushing in order costs O(1) instead of a heap's sift, and
//! the order is exactly a heap's. It grows by an eighth, as the slots do.

use super::queue::FifoHeap;
#[cfg(doc)]
use crate::engine::partitions::Keys;
use crate::primitives::Timestamp;

/// One index entry: deadline, group, slot index (ordered in that
/// priority).
pub(crate) type Entry = (Timestamp, u32, u32);

/// What the index may hold beyond the live keys and half of them
/// before it drops its stale entries (a few: a small index is not
/// compacted at every push).
pub(crate) const SLACK: usize = 64;

/// How many stale entries the index may hold, with `live` live keys,
/// before it drops them rather than grow: half the live keys plus
/// [`SLACK`]. Its vector then holds at most about 1.7 entries of 16 bytes
/// per live key (1.5, and an eighth more for growth), where it held up to
/// 3 when it grew until the stale entries were as many as the live keys.
/// A compaction is a pass over the entries; one that is due because the
/// vector is full comes at most once per [`stale_allowance`] pushes. (A
/// quarter of the live keys saved another 2-4 bytes per live run on the
/// benchmarks for 2% more instructions on `ab`, whose index is full
/// often.)
fn stale_allowance(live: usize) -> usize {
    live / 2 + SLACK
}

/// The deadlines of every group's keys in one priority queue (a FIFO of
/// in-order entries plus a heap), with lazy invalidation against the slots
/// (see the module docs). A snapshot holds it as it is, stale entries
/// included.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct DeadlineIndex {
    /// Every entry, smallest first; growing by an eighth.
    queue: FifoHeap<Entry, true>,
    /// The size at which to check for stale entries next.
    check_at: usize,
}

impl DeadlineIndex {
    /// Bytes the index takes (its room, stale entries included).
    pub fn state_bytes(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Entry>()
    }

    /// Should [`compact_if_stale`](Self::compact_if_stale) run before a
    /// deadline of `group`'s `slot` at `t` is pushed? When a check is due
    /// (about once per as many pushes as there are live keys), and when
    /// the index has no room left for the entry: it then grows only if
    /// dropping its stale entries would not leave it small enough, so
    /// that its size follows the live keys, not the stale entries.
    #[inline]
    pub fn wants_check(&self, t: Timestamp, group: usize, slot: u32) -> bool {
        self.len() >= self.check_at || !self.queue.has_room_for(&(t, group as u32, slot))
    }

    /// Adds a deadline of `group`'s `slot` (as returned by
    /// [`Keys::settle`]; ask [`wants_check`](Self::wants_check) first).
    #[inline]
    pub fn push(&mut self, t: Timestamp, group: usize, slot: u32) {
        self.queue.push((t, group as u32, slot));
    }

    /// The earliest valid entry at or before `until`, dropping the stale
    /// entries before it; `current(entry)` tells whether an entry is still
    /// valid (see [`Keys::scheduled_at`]). Entries after `until` are not
    /// looked at (a stale one among them is dropped later).
    #[inline(always)]
    pub fn peek_due(
        &mut self,
        until: Timestamp,
        current: impl FnMut(Entry) -> bool,
    ) -> Option<Entry> {
        // (most calls: nothing is due yet)
        if self.queue.peek().map_or(true, |first| first.0 > until) {
            return None;
        }
        self.first_due(until, current)
    }

    /// [`peek_due`](Self::peek_due) once its first entry is due.
    #[inline(never)]
    fn first_due(
        &mut self,
        until: Timestamp,
        mut current: impl FnMut(Entry) -> bool,
    ) -> Option<Entry> {
        // Drop the stale entries before the first valid one.
        let mut due = None;
        while self
            .queue
            .pop_if(|&entry| {
                if entry.0 > until {
                    return false;
                }
                due = current(entry).then_some(entry);
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

    /// Does every entry name a group below `groups`? (For an index read
    /// back from a snapshot: the engine indexes its groups by it.)
    pub fn check(&self, groups: usize) -> Result<(), cepheid_core::Inconsistent> {
        if !self.queue.is_well_formed() {
            return Err("deadlines out of order".into());
        }
        match self.queue.iter().find(|(_, g, _)| *g as usize >= groups) {
            Some((_, g, _)) => Err(format!("a deadline of group {g} of {groups}").into()),
            None => Ok(()),
        }
    }

    /// Replaces every entry with `entries`, every scheduled key's (after
    /// the engine's groups were renumbered by a change of its rules).
    pub fn rebuild(&mut self, mut entries: Vec<Entry>, live: usize) {
        entries.sort_unstable();
        self.queue = FifoHeap::from_sorted(entries);
        self.check_at = self.len() + live + SLACK;
    }

    /// Drops the stale entries when there are too many, so the index stays
    /// proportional to the live keys (`live` of them, the groups'
    /// together): after a check it holds at most the live keys plus
    /// [`stale_allowance`]; the next check comes when it has grown by the
    /// live keys plus [`SLACK`] or when it is full, whichever is first,
    /// so it grows only while it holds at most that many stale entries.
    /// Filtering (`current` tells the valid entries) keeps the FIFO
    /// sorted and re-heapifies the rest, both in linear time; only if
    /// duplicated valid entries (a key rescheduled back to an earlier time)
    /// still leave it too large is it rebuilt from `scheduled`, every
    /// scheduled key's entry. Returns whether it was rebuilt so: the
    /// entry the caller was about to push is then in it.
    #[must_use]
    pub fn compact_if_stale(
        &mut self,
        live: usize,
        current: impl Fn(Entry) -> bool,
        scheduled: impl FnOnce() -> Vec<Entry>,
    ) -> bool {
        let limit = live + stale_allowance(live);
        if self.len() > limit {
            self.queue.retain(|&entry| current(entry));
        }
        let rebuilt = self.len() > limit;
        if rebuilt {
            let mut entries = scheduled();
            entries.sort_unstable();
            self.queue = FifoHeap::from_sorted(entries);
        }
        self.check_at = self.len() + live + SLACK;
        rebuilt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::partitions::{Keys, Part};
    use crate::value::{KeyValue, Value};
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};

    fn key(i: i64) -> KeyValue {
        KeyValue::from_elem(Value::Int(i), 1)
    }

    /// A test hash: a constant one, so every key collides and equality
    /// alone tells keys apart.
    const H: u64 = 7;

    /// Keys whose one partition is its deadline (`None`: empty).
    type TestKeys = Keys<Option<Timestamp>>;

    fn part(deadline: Option<Timestamp>) -> Part<Option<Timestamp>> {
        Part {
            part: deadline,
            pattern: 0,
            ordinal: 0,
        }
    }

    /// Gives key `k` of `keys` (group `group`) the deadline `deadline`
    /// (`None`: it empties) and indexes what `settle` schedules,
    /// compacting when due. Returns the key's slot.
    fn settle(
        keys: &mut TestKeys,
        index: &mut DeadlineIndex,
        k: i64,
        deadline: Option<Timestamp>,
    ) -> Option<u32> {
        let slot = match keys.find(H, &key(k)) {
            Some(slot) => slot,
            None if deadline.is_none() => return None,
            None => keys.insert(H, key(k), deadline, 0, 0),
        };
        let (_, parts) = keys.get_mut(slot).unwrap();
        parts.clear();
        if deadline.is_some() {
            parts.push(part(deadline));
        }
        if let Some(t) = keys.settle(slot, None, |p| *p) {
            let keys = &*keys;
            let rebuilt = index.wants_check(t, 0, slot)
                && index.compact_if_stale(
                    keys.len(),
                    |(t, _, s)| keys.scheduled_at(t, s),
                    || keys.scheduled().map(|(t, s)| (t, 0, s)).collect(),
                );
            if !rebuilt {
                index.push(t, 0, slot);
            }
        }
        Some(slot)
    }

    /// The next valid deadline, taken out of the index.
    fn pop(keys: &mut TestKeys, index: &mut DeadlineIndex) -> Option<(Timestamp, u32)> {
        let (t, _, slot) = index.peek_due(Timestamp::MAX, |(t, _, s)| keys.scheduled_at(t, s))?;
        index.pop();
        keys.unschedule(slot);
        Some((t, slot))
    }

    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn deadlines_come_out_in_time_order_and_stale_ones_are_skipped() {
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        let a = settle(&mut keys, &mut index, 1, Some(30)).unwrap();
        let b = settle(&mut keys, &mut index, 2, Some(20)).unwrap();
        settle(&mut keys, &mut index, 1, Some(10)); // replaces 30
        assert_eq!(pop(&mut keys, &mut index), Some((10, a)));
        assert_eq!(pop(&mut keys, &mut index), Some((20, b)));
        assert_eq!(pop(&mut keys, &mut index), None);
    }

    #[test]
    fn equal_times_come_out_by_group_then_slot() {
        let mut index = DeadlineIndex::default();
        index.push(5, 1, 0);
        index.push(5, 0, 1);
        index.push(5, 0, 0);
        index.push(4, 2, 3);
        let mut order = Vec::new();
        while let Some(entry) = index.peek_due(Timestamp::MAX, |_| true) {
            index.pop();
            order.push(entry);
        }
        assert_eq!(order, vec![(4, 2, 3), (5, 0, 0), (5, 0, 1), (5, 1, 0)]);
    }

    #[test]
    fn peek_due_looks_no_further_than_until() {
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        settle(&mut keys, &mut index, 1, Some(10));
        let b = settle(&mut keys, &mut index, 2, Some(20)).unwrap();
        settle(&mut keys, &mut index, 1, Some(30)); // (10, a) is stale
        let current = |(t, _, s): Entry| keys.scheduled_at(t, s);
        assert_eq!(index.peek_due(15, current), None);
        assert_eq!(index.peek_due(19, current), None);
        assert_eq!(index.peek_due(20, current), Some((20, 0, b)));
        assert_eq!(index.peek_due(Timestamp::MAX, current), Some((20, 0, b)));
    }

    #[test]
    fn empty_keys_are_forgotten_and_slots_reused() {
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        let a = settle(&mut keys, &mut index, 1, Some(5)).unwrap();
        assert_eq!(keys.len(), 1);
        settle(&mut keys, &mut index, 1, None);
        assert_eq!(keys.len(), 0);
        assert_eq!(pop(&mut keys, &mut index), None);
        assert!(keys.get_mut(a).is_none());
        let b = settle(&mut keys, &mut index, 2, Some(6)).unwrap();
        assert_eq!(b, a);
        assert_eq!(keys.find(H, &key(2)), Some(b));
        assert_eq!(keys.find(H, &key(1)), None);
        assert_eq!(pop(&mut keys, &mut index), Some((6, b)));
    }

    #[test]
    fn the_index_stays_small_when_deadlines_keep_moving() {
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        let mut a = 0;
        for t in 0..10_000 {
            a = settle(&mut keys, &mut index, 1, Some(t)).unwrap();
        }
        assert!(index.len() <= 2 * (SLACK + 2));
        assert_eq!(pop(&mut keys, &mut index), Some((9_999, a)));
        assert_eq!(pop(&mut keys, &mut index), None);
    }

    #[test]
    fn stale_entries_stay_within_half_the_live_keys() {
        // 4,000 live keys; each round one goes (its entry goes stale) and
        // a new one comes: the index grows (by an eighth) only while it
        // holds at most 4,000 + 2,000 + SLACK entries.
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        for k in 0..4_000 {
            settle(&mut keys, &mut index, k, Some(1_000_000 + k));
        }
        for k in 4_000..40_000 {
            settle(&mut keys, &mut index, k - 4_000, None);
            settle(&mut keys, &mut index, k, Some(1_000_000 + k));
            assert_eq!(keys.len(), 4_000);
            assert!(index.len() <= (4_000 + stale_allowance(4_000) + 1) * 9 / 8 + 16);
        }
        let mut fired = 0;
        while let Some((t, _)) = pop(&mut keys, &mut index) {
            assert_eq!(t, 1_000_000 + 36_000 + fired);
            fired += 1;
        }
        assert_eq!(fired, 4_000);
    }

    #[test]
    fn the_index_stays_small_when_a_deadline_keeps_coming_back() {
        // Every other push re-adds an entry equal to a still-valid one:
        // filtering cannot drop those, the rebuild from the slots does.
        let mut keys = TestKeys::default();
        let mut index = DeadlineIndex::default();
        let mut a = 0;
        for round in 0..10_000 {
            a = settle(&mut keys, &mut index, 1, Some(5 + 2 * (round % 2))).unwrap();
        }
        assert!(index.len() <= 2 * (SLACK + 2));
        assert_eq!(pop(&mut keys, &mut index), Some((7, a)));
        assert_eq!(pop(&mut keys, &mut index), None);
    }

    /// One operation on the keys of the property test.
    #[derive(Clone, Debug)]
    enum Op {
        /// Schedule key `key` of group `group` at a time `delta` after the
        /// last fired deadline (inserting the key if needed).
        Schedule { group: usize, key: i64, delta: i64 },
        /// Forget the key.
        Empty { group: usize, key: i64 },
        /// Fire the earliest deadline.
        Fire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0usize..3, 0i64..12, -3i64..40)
                .prop_map(|(group, key, delta)| Op::Schedule { group, key, delta }),
            1 => (0usize..3, 0i64..12).prop_map(|(group, key)| Op::Empty { group, key }),
            3 => Just(Op::Fire),
        ]
    }

    /// A fired deadline: time, group, key.
    type Fired = (Timestamp, usize, i64);

    /// The keys of three groups indexed by a [`DeadlineIndex`], and a model:
    /// each (group, key)'s schedule in a map, entries in a plain heap
    /// ordered by time, group and the key's slot.
    struct Twin {
        keys: Vec<TestKeys>,
        index: DeadlineIndex,
        schedule: BTreeMap<(usize, i64), (Timestamp, u32)>,
        model: BinaryHeap<Reverse<(Timestamp, usize, u32, i64)>>,
    }

    impl Twin {
        fn new() -> Twin {
            Twin {
                keys: (0..3).map(|_| Keys::default()).collect(),
                index: DeadlineIndex::default(),
                schedule: BTreeMap::new(),
                model: BinaryHeap::new(),
            }
        }

        fn settle(&mut self, group: usize, k: i64, deadline: Option<Timestamp>) {
            let keys = &mut self.keys[group];
            if let Some(slot) = keys
                .find(H, &key(k))
                .or_else(|| deadline.map(|_| keys.insert(H, key(k), deadline, 0, 0)))
            {
                let (_, parts) = keys.get_mut(slot).unwrap();
                parts.clear();
                if deadline.is_some() {
                    parts.push(part(deadline));
                }
                if let Some(t) = keys.settle(slot, None, |p| *p) {
                    let all = &self.keys;
                    let live = all.iter().map(Keys::len).sum();
                    let rebuilt = self.index.wants_check(t, group, slot)
                        && self.index.compact_if_stale(
                            live,
                            |(t, g, s)| all[g as usize].scheduled_at(t, s),
                            || {
                                all.iter()
                                    .enumerate()
                                    .flat_map(|(g, keys)| {
                                        keys.scheduled().map(move |(t, s)| (t, g as u32, s))
                                    })
                                    .collect()
                            },
                        );
                    if !rebuilt {
                        self.index.push(t, group, slot);
                    }
                }
            }
            match deadline {
                Some(t) => {
                    let slot = self.keys[group].find(H, &key(k)).unwrap();
                    if self.schedule.insert((group, k), (t, slot)) != Some((t, slot)) {
                        self.model.push(Reverse((t, group, slot, k)));
                    }
                }
                None => {
                    self.schedule.remove(&(group, k));
                }
            }
        }

        /// Takes the earliest valid deadline out of both, as (time, group,
        /// key).
        fn fire(&mut self) -> (Option<Fired>, Option<Fired>) {
            let all = &self.keys;
            let got = self.index.peek_due(Timestamp::MAX, |(t, g, s)| {
                all[g as usize].scheduled_at(t, s)
            });
            let got = got.map(|(t, g, s)| {
                self.index.pop();
                let keys = &mut self.keys[g as usize];
                keys.unschedule(s);
                let Value::Int(k) = keys.get_mut(s).unwrap().0[0] else {
                    unreachable!()
                };
                (t, g as usize, k)
            });
            let mut want = None;
            while let Some(Reverse((t, g, slot, k))) = self.model.pop() {
                if self.schedule.get(&(g, k)) == Some(&(t, slot)) {
                    self.schedule.remove(&(g, k));
                    want = Some((t, g, k));
                    break;
                }
            }
            (got, want)
        }
    }

    proptest! {
        /// The index fires exactly what a plain heap over the schedule
        /// fires, in the same (time, group, slot) order, through
        /// reschedules, emptied keys, reused slots and compactions.
        #[test]
        fn same_order_as_a_single_heap(ops in proptest::collection::vec(op(), 0..300)) {
            let mut twin = Twin::new();
            let mut now: Timestamp = 0;
            for op in ops {
                match op {
                    Op::Schedule { group, key, delta } => {
                        twin.settle(group, key, Some(now + delta));
                    }
                    Op::Empty { group, key } => twin.settle(group, key, None),
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
}
