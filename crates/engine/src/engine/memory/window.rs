//! The state of the rolling indicators that share one `group by` and one
//! window width ([`Windows`]): per group, the events of the window
//! `(now - W, now]` that count, with each indicator's running aggregates,
//! so that adding an event, evicting one and reading a value are O(1)
//! amortized.
//!
//! - `count`: the number of entries;
//! - `sum`, `avg`: a running integer sum (`i128`, exact) and float sum
//!   (reset to exactly 0 when no float is left in the window);
//! - `min`, `max`: a monotonic deque (each entry enters and leaves once);
//! - `count_distinct`: a count per distinct value.
//!
//! The indicators (the *members*) share one index of groups and one FIFO:
//! an event is hashed, looked up and queued once, whichever members take
//! it (each has its own `where` and argument); the FIFO entry says which
//! did, and the values they took follow it in a second FIFO. Events reach
//! [`Windows::push`] in time order (the engine's), so the FIFO, in time
//! order over all groups, says which group's oldest entry leaves next:
//! [`Windows::advance`] pops it until the front is inside the window.
//!
//! Nothing is allocated per group: a group holds its key and its members'
//! aggregates (in one array, a row per group); the monotonic deques of
//! every group are lists in one slab of nodes, and the counts per
//! distinct value one table per member keyed by (group, value). A group
//! whose window empties stays in the index, idle, so that the next event
//! of its key finds it (a short window would otherwise remove and insert
//! a group at almost every event); at most [`IDLE_GROUPS`] are kept idle,
//! the longest idle leaving first, its slot, its key's room included,
//! reused by the next new group. So adding an event to a new group costs
//! about what adding one to a live group costs, whatever the window and
//! the number of groups.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use crate::lookup::IndicatorFunc;
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};
use cepheid_core::expr::{equals, order};

/// The most members of one [`Windows`] (the bits of [`Entry::taken`]).
pub(crate) const MAX_MEMBERS: usize = 32;

/// The most idle groups one [`Windows`] keeps (groups whose window is
/// empty, still in the index): the slack of memory above the groups that
/// hold entries.
pub(crate) const IDLE_GROUPS: usize = 4096;

/// An entry as a snapshot keeps it: (key, time, value).
pub(crate) type Item = (Vec<Value>, Timestamp, Value);

/// One entry of the FIFO, oldest first in [`Windows::fifo`]: an event
/// that at least one member took. Its number in push order (which
/// `min`/`max` candidate it is) is its place in the FIFO plus the number
/// evicted before it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    ts: Timestamp,
    group: u32,
    /// Bit `j`: member `j` took the event (its value, unless it is a
    /// `count`, is in [`Windows::values`], members in order).
    taken: u32,
}

/// No node ([`Aggregate::head`], [`Node::next`]...).
const NIL: u32 = u32::MAX;

/// One group: its key and entries (its aggregates are a row of
/// [`Windows::aggregates`]).
#[derive(Clone, Debug, Default)]
struct Group {
    /// (a `Vec`: a slot reused by another group keeps its room)
    key: Vec<Value>,
    /// The key's hash (as the index holds it).
    hash: u64,
    /// FIFO entries of this group (0: idle, or free).
    n: u64,
    /// In [`Windows::idle`] (idle, or revived since it was queued).
    queued: bool,
}

/// One member's aggregates over one group's window.
#[derive(Clone, Debug)]
struct Aggregate {
    /// Entries the member took.
    n: u64,
    int_sum: i128,
    float_sum: f64,
    floats: u64,
    /// `min`/`max`: the candidates, a list of [`Windows::nodes`] from the
    /// current extreme (`head`) to the newest (`tail`).
    head: u32,
    tail: u32,
    /// `count_distinct`: distinct values in the window.
    distinct: u64,
}

impl Default for Aggregate {
    fn default() -> Aggregate {
        Aggregate {
            n: 0,
            int_sum: 0,
            float_sum: 0.0,
            floats: 0,
            head: NIL,
            tail: NIL,
            distinct: 0,
        }
    }
}

/// A `min`/`max` candidate: an entry's number and value, in its group's
/// list (a free node is chained by `next`).
#[derive(Clone, Debug)]
struct Node {
    seq: u64,
    value: Value,
    prev: u32,
    next: u32,
}

/// Hashes a key part so that values equal by `==` hash alike; false when
/// it cannot be a key (NaN, a list, an object, null).
fn hash_part<H: Hasher>(state: &mut H, v: ValueRef<'_>) -> bool {
    match v {
        ValueRef::Int(i) => {
            state.write_u8(1);
            state.write_i64(i);
        }
        ValueRef::Float(f) if f.is_nan() => return false,
        ValueRef::Float(f) => {
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                state.write_u8(1);
                state.write_i64(f as i64);
            } else {
                state.write_u8(2);
                state.write_u64(f.to_bits());
            }
        }
        ValueRef::Str(s) => {
            state.write_u8(3);
            state.write(s.as_bytes());
            state.write_u8(0xff);
        }
        ValueRef::Bool(b) => {
            state.write_u8(4);
            state.write_u8(u8::from(b));
        }
        _ => return false,
    }
    true
}

/// The hash of a group's key as every [`Windows`] made with `hasher` (a
/// clone of one engine's: the same seed) hashes it; `None` when a part
/// cannot be a key (NaN, a list, an object).
pub(crate) fn key_hash(
    hasher: &hashbrown::DefaultHashBuilder,
    key: &[ValueRef<'_>],
) -> Option<u64> {
    let mut state = hasher.build_hasher();
    for &part in key {
        if !hash_part(&mut state, part) {
            return None;
        }
    }
    Some(state.finish())
}

/// Why an event did not enter a window although it met the condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its value is not a number (`sum`, `avg`, `min`, `max`).
    NotNumeric,
    /// Its value cannot be told apart from others (`count_distinct` of
    /// NaN, a list or an object).
    Unusable,
}

/// The state of the indicators (members `0..`) of one `group by` and one
/// window width.
#[derive(Clone, Debug)]
pub(crate) struct Windows {
    funcs: Vec<IndicatorFunc>,
    width: i64,
    hasher: hashbrown::DefaultHashBuilder,
    index: HashTable<u32>,
    groups: Vec<Group>,
    /// Member `j`'s aggregates of group `g` at `g * funcs.len() + j`.
    aggregates: Vec<Aggregate>,
    /// Slots of no group.
    free: Vec<u32>,
    /// Groups queued as idle, longest first (one revived since is skipped).
    idle: VecDeque<u32>,
    /// Idle groups (in the index, no entry).
    idle_groups: usize,
    /// Every entry, oldest first.
    fifo: VecDeque<Entry>,
    /// The values the entries' members took, in the FIFO's order.
    values: VecDeque<Value>,
    /// Entries evicted so far (the number of the FIFO's front).
    evicted: u64,
    /// `min`/`max`: every group's candidates.
    nodes: Vec<Node>,
    /// The first free node (the others chained by `next`).
    free_node: u32,
    /// `count_distinct`: member `j`'s entries per (group, value).
    counts: Vec<HashTable<(u32, Value, u32)>>,
    /// Entries over all members (an event two members took: two).
    entries: usize,
    /// Groups over all members (a group two members hold entries of: two).
    member_groups: usize,
}

impl Windows {
    /// Empty windows of `funcs` (at most [`MAX_MEMBERS`]) over `width` ms,
    /// hashing keys with `hasher` ([`key_hash`]).
    pub(crate) fn new(
        funcs: Vec<IndicatorFunc>,
        width: i64,
        hasher: hashbrown::DefaultHashBuilder,
    ) -> Windows {
        assert!(funcs.len() <= MAX_MEMBERS, "too many members");
        Windows {
            counts: funcs.iter().map(|_| HashTable::new()).collect(),
            funcs,
            width,
            hasher,
            index: HashTable::new(),
            groups: Vec::new(),
            aggregates: Vec::new(),
            free: Vec::new(),
            idle: VecDeque::new(),
            idle_groups: 0,
            fifo: VecDeque::new(),
            values: VecDeque::new(),
            evicted: 0,
            nodes: Vec::new(),
            free_node: NIL,
            entries: 0,
            member_groups: 0,
        }
    }

    /// Entries in all windows, over all members.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Groups holding entries, over all members.
    pub(crate) fn groups(&self) -> usize {
        self.member_groups
    }

    /// Heap bytes, roughly (entries and their values, groups and their
    /// keys, aggregates, candidates, distinct counts, tables).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.fifo.capacity() * size_of::<Entry>()
            + self.values.capacity() * size_of::<Value>()
            + self.groups.capacity() * size_of::<Group>()
            + (self.groups.iter())
                .map(|g| g.key.capacity() * size_of::<Value>())
                .sum::<usize>()
            + self.aggregates.capacity() * size_of::<Aggregate>()
            + self.nodes.capacity() * size_of::<Node>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + (self.counts.iter())
                .map(|c| c.capacity() * (size_of::<(u32, Value, u32)>() + 1))
                .sum::<usize>()
    }

    fn find(&self, hash: u64, key: &[ValueRef<'_>]) -> Option<u32> {
        self.index
            .find(hash, |&g| {
                let stored = &self.groups[g as usize].key;
                stored.len() == key.len()
                    && stored
                        .iter()
                        .zip(key)
                        .all(|(a, b)| equals(a.into(), *b) == Some(true))
            })
            .copied()
    }

    fn aggregate(&mut self, g: u32, j: usize) -> &mut Aggregate {
        &mut self.aggregates[g as usize * self.funcs.len() + j]
    }

    /// Does member `j` keep its entries' values?
    fn keeps_values(&self, j: usize) -> bool {
        self.funcs[j] != IndicatorFunc::Count
    }

    /// Evicts every entry at or before `now - W`.
    pub(crate) fn advance(&mut self, now: Timestamp) {
        let edge = now.saturating_sub(self.width);
        while self.fifo.front().is_some_and(|e| e.ts <= edge) {
            if let Some(entry) = self.fifo.pop_front() {
                self.evict(entry);
                self.evicted += 1;
            }
        }
    }

    /// Takes `entry`, the oldest, out of its members' aggregates.
    fn evict(&mut self, entry: Entry) {
        let g = entry.group;
        let mut taken = entry.taken;
        while taken != 0 {
            let j = taken.trailing_zeros() as usize;
            taken &= taken - 1;
            let value = if self.keeps_values(j) {
                self.values.pop_front().unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            self.evict_member(g, j, value);
        }
        let group = &mut self.groups[g as usize];
        group.n -= 1;
        if group.n == 0 {
            self.idle_groups += 1;
            if !group.queued {
                group.queued = true;
                self.idle.push_back(g);
            }
            if self.idle_groups > IDLE_GROUPS {
                self.release_idle();
            }
        }
    }

    /// Takes an entry of member `j` with `value` out of group `g`'s
    /// aggregate.
    fn evict_member(&mut self, g: u32, j: usize, value: Value) {
        let seq = self.evicted;
        let func = self.funcs[j];
        let aggregate = self.aggregate(g, j);
        aggregate.n -= 1;
        if aggregate.n == 0 {
            self.member_groups -= 1;
        }
        self.entries -= 1;
        let aggregate = &mut self.aggregates[g as usize * self.funcs.len() + j];
        match func {
            IndicatorFunc::Count => {}
            IndicatorFunc::Sum | IndicatorFunc::Avg => match value {
                Value::Int(i) => aggregate.int_sum -= i128::from(i),
                Value::Float(f) => {
                    aggregate.floats -= 1;
                    aggregate.float_sum = if aggregate.floats == 0 {
                        0.0
                    } else {
                        aggregate.float_sum - f
                    };
                }
                _ => {}
            },
            IndicatorFunc::Min | IndicatorFunc::Max => {
                let head = aggregate.head;
                if head != NIL && self.nodes[head as usize].seq == seq {
                    let next = self.nodes[head as usize].next;
                    aggregate.head = next;
                    if next == NIL {
                        aggregate.tail = NIL;
                    } else {
                        self.nodes[next as usize].prev = NIL;
                    }
                    self.free_node(head);
                }
            }
            IndicatorFunc::CountDistinct => {
                let hash = self.count_hash(g, (&value).into());
                let found = self.counts[j].find_entry(hash, |(cg, v, _)| {
                    *cg == g && equals(v.into(), (&value).into()) == Some(true)
                });
                if let Ok(mut found) = found {
                    found.get_mut().2 -= 1;
                    if found.get().2 == 0 {
                        found.remove();
                        self.aggregate(g, j).distinct -= 1;
                    }
                }
            }
        }
        // (an emptied aggregate is as new: its last entry was its newest
        // candidate, gone with it; no float, no distinct value is left)
        debug_assert!({
            let a = self.aggregate(g, j);
            a.n > 0 || (a.head == NIL && a.int_sum == 0 && a.float_sum == 0.0 && a.distinct == 0)
        });
    }

    /// Takes the longest idle group out of the index (skipping groups
    /// revived since they were queued): its slot is free.
    fn release_idle(&mut self) {
        while let Some(g) = self.idle.pop_front() {
            let group = &mut self.groups[g as usize];
            group.queued = false;
            if group.n > 0 {
                continue;
            }
            group.key.clear();
            if let Ok(entry) = self.index.find_entry(group.hash, |&x| x == g) {
                entry.remove();
            }
            self.free.push(g);
            self.idle_groups -= 1;
            return;
        }
    }

    /// The hash of (group `g`, `value`) in [`Windows::counts`].
    fn count_hash(&self, g: u32, value: ValueRef<'_>) -> u64 {
        let mut state = self.hasher.build_hasher();
        state.write_u32(g);
        hash_part(&mut state, value);
        state.finish()
    }

    /// A node for a candidate, from the free ones if any.
    fn new_node(&mut self, seq: u64, value: Value, prev: u32) -> u32 {
        let node = Node {
            seq,
            value,
            prev,
            next: NIL,
        };
        if self.free_node == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let n = self.free_node;
            self.free_node = self.nodes[n as usize].next;
            self.nodes[n as usize] = node;
            n
        }
    }

    /// Node `n` is free again (its value dropped).
    fn free_node(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.value = Value::Null;
        node.prev = NIL;
        node.next = self.free_node;
        self.free_node = n;
    }

    /// The value member `j` takes of an event whose argument is `value`
    /// (ignored by `count`), or why it takes none.
    pub(crate) fn admit(&self, j: usize, value: Value) -> Result<Value, Refused> {
        match self.funcs[j] {
            IndicatorFunc::Count => Ok(Value::Null),
            IndicatorFunc::Sum | IndicatorFunc::Avg | IndicatorFunc::Min | IndicatorFunc::Max => {
                match value {
                    Value::Int(_) => Ok(value),
                    Value::Float(f) if !f.is_nan() => Ok(value),
                    _ => Err(Refused::NotNumeric),
                }
            }
            IndicatorFunc::CountDistinct => {
                let mut probe = self.hasher.build_hasher();
                if !hash_part(&mut probe, (&value).into()) {
                    return Err(Refused::Unusable);
                }
                Ok(value)
            }
        }
    }

    /// The slot of group `key` (whose [`key_hash`] is `hash`, made by this
    /// hasher or a clone of it): the live or idle one, else a new one.
    /// An event the slot is asked for must be taken by a member
    /// ([`take`](Self::take)) and pushed ([`push`](Self::push)).
    pub(crate) fn group(&mut self, hash: u64, key: &[ValueRef<'_>]) -> u32 {
        if let Some(g) = self.find(hash, key) {
            if self.groups[g as usize].n == 0 {
                // (idle, revived: it stays queued, and is skipped there)
                self.idle_groups -= 1;
            }
            return g;
        }
        let owned = key.iter().map(|&v| ValueRef::to_owned(v));
        let g = match self.free.pop() {
            Some(g) => {
                let group = &mut self.groups[g as usize];
                group.key.extend(owned);
                group.hash = hash;
                g
            }
            None => {
                self.groups.push(Group {
                    key: owned.collect(),
                    hash,
                    ..Group::default()
                });
                let members = self.funcs.len();
                self.aggregates
                    .resize_with(self.groups.len() * members, Aggregate::default);
                (self.groups.len() - 1) as u32
            }
        };
        let groups = &self.groups;
        self.index
            .insert_unique(hash, g, |&x| groups[x as usize].hash);
        g
    }

    /// Member `j` takes the event about to be pushed, of group `g`, with
    /// `value` (what [`admit`](Self::admit) gave).
    pub(crate) fn take(&mut self, j: usize, g: u32, value: Value) {
        let seq = self.evicted + self.fifo.len() as u64;
        let func = self.funcs[j];
        let aggregate = &mut self.aggregates[g as usize * self.funcs.len() + j];
        aggregate.n += 1;
        if aggregate.n == 1 {
            self.member_groups += 1;
        }
        self.entries += 1;
        match func {
            IndicatorFunc::Count => return,
            IndicatorFunc::Sum | IndicatorFunc::Avg => match value {
                Value::Int(i) => aggregate.int_sum += i128::from(i),
                Value::Float(f) => {
                    aggregate.floats += 1;
                    aggregate.float_sum += f;
                }
                _ => {}
            },
            IndicatorFunc::Min | IndicatorFunc::Max => {
                self.push_candidate(j, g, seq, &value);
            }
            IndicatorFunc::CountDistinct => self.count_value(j, g, &value),
        }
        self.values.push_back(value);
    }

    /// `min`/`max`: entry `seq`'s `value` is member `j`'s newest candidate
    /// in group `g`; the candidates it dominates leave, from the newest.
    fn push_candidate(&mut self, j: usize, g: u32, seq: u64, value: &Value) {
        let max = self.funcs[j] == IndicatorFunc::Max;
        let at = g as usize * self.funcs.len() + j;
        loop {
            let tail = self.aggregates[at].tail;
            if tail == NIL {
                break;
            }
            let back = &self.nodes[tail as usize].value;
            let dominated = match order(back.into(), value.into()) {
                Some(std::cmp::Ordering::Less) => max,
                Some(std::cmp::Ordering::Greater) => !max,
                _ => true,
            };
            if !dominated {
                break;
            }
            let prev = self.nodes[tail as usize].prev;
            let aggregate = &mut self.aggregates[at];
            aggregate.tail = prev;
            if prev == NIL {
                aggregate.head = NIL;
            } else {
                self.nodes[prev as usize].next = NIL;
            }
            self.free_node(tail);
        }
        let tail = self.aggregates[at].tail;
        let n = self.new_node(seq, value.clone(), tail);
        let aggregate = &mut self.aggregates[at];
        if tail == NIL {
            aggregate.head = n;
        } else {
            self.nodes[tail as usize].next = n;
        }
        aggregate.tail = n;
    }

    /// `count_distinct`: one more entry of `value` for member `j` in
    /// group `g`.
    fn count_value(&mut self, j: usize, g: u32, value: &Value) {
        let hash = self.count_hash(g, value.into());
        let found = self.counts[j].find_mut(hash, |(cg, v, _)| {
            *cg == g && equals(v.into(), value.into()) == Some(true)
        });
        match found {
            Some(found) => found.2 += 1,
            None => {
                let hasher = &self.hasher;
                self.counts[j].insert_unique(hash, (g, value.clone(), 1), |(cg, v, _)| {
                    let mut state = hasher.build_hasher();
                    state.write_u32(*cg);
                    hash_part(&mut state, v.into());
                    state.finish()
                });
                self.aggregate(g, j).distinct += 1;
            }
        }
    }

    /// Pushes the event at `ts` (the engine's current time: events come
    /// in time order) of group `g`, which the members of `taken` (bit `j`:
    /// member `j`, at least one) took, in the order of their numbers.
    pub(crate) fn push(&mut self, ts: Timestamp, g: u32, taken: u32) {
        debug_assert!(taken != 0);
        self.groups[g as usize].n += 1;
        self.fifo.push_back(Entry {
            ts,
            group: g,
            taken,
        });
    }

    /// Member `j` takes an event at `ts` of group `key` with `value` (an
    /// event of its own: a restore pushes back each member's entries).
    pub(crate) fn push_one(
        &mut self,
        j: usize,
        ts: Timestamp,
        key: &[ValueRef<'_>],
        value: Value,
    ) -> Result<(), Refused> {
        let value = self.admit(j, value)?;
        let hash = key_hash(&self.hasher, key).ok_or(Refused::Unusable)?;
        let g = self.group(hash, key);
        self.take(j, g, value);
        self.push(ts, g, 1 << j);
        Ok(())
    }

    /// Member `j`'s value for group `key`.
    pub(crate) fn value(&self, j: usize, key: &[ValueRef<'_>]) -> Value {
        let func = self.funcs[j];
        let aggregate = key_hash(&self.hasher, key)
            .and_then(|hash| self.find(hash, key))
            .map(|g| &self.aggregates[g as usize * self.funcs.len() + j])
            .filter(|a| a.n > 0);
        let Some(aggregate) = aggregate else {
            if key.iter().any(|v| v.is_null()) {
                return Value::Null;
            }
            return match func {
                IndicatorFunc::Count | IndicatorFunc::Sum | IndicatorFunc::CountDistinct => {
                    Value::Int(0)
                }
                _ => Value::Null,
            };
        };
        let n = aggregate.n;
        match func {
            IndicatorFunc::Count => Value::Int(n as i64),
            IndicatorFunc::Sum => {
                if aggregate.floats == 0 {
                    i64::try_from(aggregate.int_sum).map_or(Value::Null, Value::Int)
                } else {
                    Value::Float(aggregate.int_sum as f64 + aggregate.float_sum)
                }
            }
            IndicatorFunc::Avg => {
                Value::Float((aggregate.int_sum as f64 + aggregate.float_sum) / n as f64)
            }
            IndicatorFunc::Min | IndicatorFunc::Max => match aggregate.head {
                NIL => Value::Null,
                head => self.nodes[head as usize].value.clone(),
            },
            IndicatorFunc::CountDistinct => Value::Int(aggregate.distinct as i64),
        }
    }

    /// Member `j`'s entries as (key, time, value), oldest first: what a
    /// restore pushes back.
    pub(crate) fn items(&self, j: usize) -> Vec<Item> {
        let mut items = Vec::new();
        let mut values = self.values.iter();
        for e in &self.fifo {
            let mut taken = e.taken;
            while taken != 0 {
                let m = taken.trailing_zeros() as usize;
                taken &= taken - 1;
                let value = if self.keeps_values(m) {
                    values.next().cloned().unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                if m == j {
                    let key = self.groups[e.group as usize].key.clone();
                    items.push((key, e.ts, value));
                }
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        let funcs = vec![IndicatorFunc::Count, IndicatorFunc::Max];
        Windows::new(funcs, 10, hashbrown::DefaultHashBuilder::default())
    }

    /// Pushes an event at `ts` of group `k` that both members take (the
    /// second with `v`).
    fn both(w: &mut Windows, ts: Timestamp, k: i64, v: i64) {
        w.advance(ts);
        let key = [ValueRef::Int(k)];
        let hash = key_hash(&w.hasher, &key).unwrap();
        let g = w.group(hash, &key);
        w.take(0, g, Value::Null);
        w.take(1, g, Value::Int(v));
        w.push(ts, g, 0b11);
    }

    #[test]
    fn members_share_one_entry_and_one_group_per_event() {
        let mut w = windows();
        both(&mut w, 1, 7, 5);
        both(&mut w, 2, 7, 3);
        w.push_one(0, 3, &[ValueRef::Int(7)], Value::Null).unwrap();
        assert_eq!(w.fifo.len(), 3);
        assert_eq!(w.values.len(), 2);
        assert_eq!((w.entries(), w.groups()), (5, 2));
        assert_eq!(w.value(0, &[ValueRef::Int(7)]), Value::Int(3));
        assert_eq!(w.value(1, &[ValueRef::Int(7)]), Value::Int(5));
        w.advance(11);
        assert_eq!(w.value(1, &[ValueRef::Int(7)]), Value::Int(3));
        assert_eq!(w.items(1), vec![(vec![Value::Int(7)], 2, Value::Int(3))]);
        assert_eq!(
            w.items(0),
            vec![
                (vec![Value::Int(7)], 2, Value::Null),
                (vec![Value::Int(7)], 3, Value::Null)
            ]
        );
        w.advance(12);
        assert_eq!(w.value(1, &[ValueRef::Int(7)]), Value::Null);
        assert_eq!(w.value(0, &[ValueRef::Int(7)]), Value::Int(1));
        assert_eq!((w.entries(), w.groups()), (1, 1));
    }

    #[test]
    fn an_emptied_group_stays_idle_up_to_the_bound_then_its_slot_is_reused() {
        let mut w = windows();
        both(&mut w, 0, 1, 1);
        w.advance(100);
        // (idle: still in the index, counted nowhere)
        assert_eq!((w.entries(), w.groups(), w.idle_groups), (0, 0, 1));
        assert_eq!(w.value(0, &[ValueRef::Int(1)]), Value::Int(0));
        assert_eq!(w.value(1, &[ValueRef::Int(1)]), Value::Null);
        both(&mut w, 100, 1, 2);
        assert_eq!((w.groups.len(), w.idle_groups), (1, 0));
        let mut ts = 200;
        for k in 0..(IDLE_GROUPS as i64 + 10) {
            both(&mut w, ts, k, k);
            ts += 100;
        }
        w.advance(ts);
        assert_eq!(w.idle_groups, IDLE_GROUPS);
        assert_eq!(w.index.len(), IDLE_GROUPS);
        assert!(w.groups.len() <= IDLE_GROUPS + 2, "{}", w.groups.len());
        assert_eq!(w.idle.len(), IDLE_GROUPS);
    }
}
