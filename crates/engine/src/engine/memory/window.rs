//! One rolling indicator's state: per group, the events of the window
//! `(now - W, now]` that count, with running aggregates, so that adding an
//! event, evicting one and reading the value are O(1) amortized.
//!
//! - `count`: the number of entries;
//! - `sum`, `avg`: a running integer sum (`i128`, exact) and float sum
//!   (reset to exactly 0 when no float is left in the window);
//! - `min`, `max`: a monotonic deque (each entry enters and leaves once);
//! - `count_distinct`: a count per distinct value.
//!
//! Events reach [`Window::push`] in time order (the engine's), so one FIFO
//! of entries over all groups, in time order, says which group's oldest
//! entry leaves next: [`Window::advance`] pops it until the front is
//! inside the window. Memory is the entries inside the windows, and a
//! group is dropped when its window empties.
//!
//! Nothing is allocated per group: the entries (with their values) are in
//! the one FIFO, a group holds only its aggregates; the monotonic deques
//! of every group are lists in one slab of nodes, and the counts per
//! distinct value one table keyed by (group, value). A group's slot, its
//! key's room included, is reused by the next new group. So adding an
//! event to a new group costs what adding one to a live group costs,
//! whatever the window and the number of groups.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use crate::lookup::IndicatorFunc;
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};
use cepheid_core::expr::{equals, order};

/// One entry of the window, oldest first in [`Window::fifo`].
#[derive(Clone, Debug)]
struct Entry {
    ts: Timestamp,
    group: u32,
    /// Its number in push order (`min`/`max`: which candidate it is).
    seq: u64,
    /// The aggregated value (null for `count`).
    value: Value,
}

/// No node ([`Group::head`], [`Node::next`]...).
const NIL: u32 = u32::MAX;

/// One group's aggregates (its entries are in the window's FIFO).
#[derive(Clone, Debug)]
struct Group {
    /// (a `Vec`: a slot reused by another group keeps its room)
    key: Vec<Value>,
    /// The key's hash (as the index holds it).
    hash: u64,
    /// Entries in the window.
    n: u64,
    int_sum: i128,
    float_sum: f64,
    floats: u64,
    /// `min`/`max`: the candidates, a list of [`Window::nodes`] from the
    /// current extreme (`head`) to the newest (`tail`).
    head: u32,
    tail: u32,
    /// `count_distinct`: distinct values in the window.
    distinct: u64,
}

impl Default for Group {
    fn default() -> Group {
        Group {
            key: Vec::new(),
            hash: 0,
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

/// The state of one indicator.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    func: IndicatorFunc,
    width: i64,
    hasher: hashbrown::DefaultHashBuilder,
    index: HashTable<u32>,
    groups: Vec<Group>,
    free: Vec<u32>,
    /// Every entry, oldest first.
    fifo: VecDeque<Entry>,
    seq: u64,
    /// `min`/`max`: every group's candidates.
    nodes: Vec<Node>,
    /// The first free node (the others chained by `next`).
    free_node: u32,
    /// `count_distinct`: entries per (group, value).
    counts: HashTable<(u32, Value, u32)>,
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

/// The hash of a group's key as every window made with `hasher` (a clone
/// of one engine's: the same seed) hashes it, so that indicators of one
/// `group by` hash an event's key once; `None` when a part cannot be a
/// key (NaN, a list, an object).
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

impl Window {
    /// An empty window of `func` over `width` ms, hashing keys with
    /// `hasher` ([`key_hash`]).
    pub(crate) fn new(
        func: IndicatorFunc,
        width: i64,
        hasher: hashbrown::DefaultHashBuilder,
    ) -> Window {
        Window {
            func,
            width,
            hasher,
            index: HashTable::new(),
            groups: Vec::new(),
            free: Vec::new(),
            fifo: VecDeque::new(),
            seq: 0,
            nodes: Vec::new(),
            free_node: NIL,
            counts: HashTable::new(),
        }
    }

    /// Entries in all windows.
    pub(crate) fn entries(&self) -> usize {
        self.fifo.len()
    }

    /// Live groups.
    pub(crate) fn groups(&self) -> usize {
        self.groups.len() - self.free.len()
    }

    /// Heap bytes, roughly (entries, groups and their keys, candidates,
    /// distinct counts, tables).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.fifo.capacity() * size_of::<Entry>()
            + self.groups.capacity() * size_of::<Group>()
            + (self.groups.iter())
                .map(|g| g.key.capacity() * size_of::<Value>())
                .sum::<usize>()
            + self.nodes.capacity() * size_of::<Node>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.counts.capacity() * (size_of::<(u32, Value, u32)>() + 1)
    }

    fn hash_key(&self, key: &[ValueRef<'_>]) -> Option<u64> {
        key_hash(&self.hasher, key)
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

    /// Evicts every entry at or before `now - W`.
    pub(crate) fn advance(&mut self, now: Timestamp) {
        let edge = now.saturating_sub(self.width);
        while self.fifo.front().is_some_and(|e| e.ts <= edge) {
            if let Some(entry) = self.fifo.pop_front() {
                self.evict(entry);
            }
        }
    }

    /// Takes `entry`, the oldest, out of its group's aggregates.
    fn evict(&mut self, entry: Entry) {
        let g = entry.group;
        let group = &mut self.groups[g as usize];
        group.n -= 1;
        match self.func {
            IndicatorFunc::Count => {}
            IndicatorFunc::Sum | IndicatorFunc::Avg => match entry.value {
                Value::Int(i) => group.int_sum -= i128::from(i),
                Value::Float(f) => {
                    group.floats -= 1;
                    group.float_sum = if group.floats == 0 {
                        0.0
                    } else {
                        group.float_sum - f
                    };
                }
                _ => {}
            },
            IndicatorFunc::Min | IndicatorFunc::Max => {
                let head = group.head;
                if head != NIL && self.nodes[head as usize].seq == entry.seq {
                    let next = self.nodes[head as usize].next;
                    group.head = next;
                    if next == NIL {
                        group.tail = NIL;
                    } else {
                        self.nodes[next as usize].prev = NIL;
                    }
                    self.free_node(head);
                }
            }
            IndicatorFunc::CountDistinct => {
                let hash = self.count_hash(g, (&entry.value).into());
                if let Ok(found) = self.counts.find_entry(hash, |(cg, v, _)| {
                    *cg == g && equals(v.into(), (&entry.value).into()) == Some(true)
                }) {
                    let mut found = found;
                    found.get_mut().2 -= 1;
                    if found.get().2 == 0 {
                        found.remove();
                        self.groups[g as usize].distinct -= 1;
                    }
                }
            }
        }
        let group = &mut self.groups[g as usize];
        if group.n == 0 {
            // (its last entry was its newest candidate, gone with it)
            debug_assert!(group.head == NIL && group.tail == NIL);
            // (the slot, its key's room included, goes to the next group)
            group.key.clear();
            group.int_sum = 0;
            group.float_sum = 0.0;
            group.floats = 0;
            group.head = NIL;
            group.tail = NIL;
            group.distinct = 0;
            if let Ok(entry) = self.index.find_entry(group.hash, |&x| x == g) {
                entry.remove();
            }
            self.free.push(g);
        }
    }

    /// The hash of (group `g`, `value`) in [`Window::counts`].
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

    /// Adds an event at `ts` (the engine's current time: events come in
    /// time order) of group `key` with `value` (ignored by `count`).
    pub(crate) fn push(
        &mut self,
        ts: Timestamp,
        key: &[ValueRef<'_>],
        value: Value,
    ) -> Result<(), Refused> {
        let hash = self.hash_key(key);
        self.push_hashed(ts, key, hash, value)
    }

    /// [`push`](Self::push) with the key's [`key_hash`] made already (by
    /// this window's hasher or a clone of it).
    pub(crate) fn push_hashed(
        &mut self,
        ts: Timestamp,
        key: &[ValueRef<'_>],
        hash: Option<u64>,
        value: Value,
    ) -> Result<(), Refused> {
        let value = match self.func {
            IndicatorFunc::Count => Value::Null,
            IndicatorFunc::Sum | IndicatorFunc::Avg | IndicatorFunc::Min | IndicatorFunc::Max => {
                match value {
                    Value::Int(_) => value,
                    Value::Float(f) if !f.is_nan() => value,
                    _ => return Err(Refused::NotNumeric),
                }
            }
            IndicatorFunc::CountDistinct => {
                let mut probe = self.hasher.build_hasher();
                if !hash_part(&mut probe, (&value).into()) {
                    return Err(Refused::Unusable);
                }
                value
            }
        };
        let Some(hash) = hash else {
            return Err(Refused::Unusable);
        };
        let g = match self.find(hash, key) {
            Some(g) => g,
            None => {
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
                        (self.groups.len() - 1) as u32
                    }
                };
                let groups = &self.groups;
                self.index
                    .insert_unique(hash, g, |&x| groups[x as usize].hash);
                g
            }
        };
        self.seq += 1;
        let seq = self.seq;
        match self.func {
            IndicatorFunc::Count => {}
            IndicatorFunc::Sum | IndicatorFunc::Avg => {
                let group = &mut self.groups[g as usize];
                match value {
                    Value::Int(i) => group.int_sum += i128::from(i),
                    Value::Float(f) => {
                        group.floats += 1;
                        group.float_sum += f;
                    }
                    _ => {}
                }
            }
            IndicatorFunc::Min | IndicatorFunc::Max => {
                let max = self.func == IndicatorFunc::Max;
                // (the candidates the new value dominates leave, from the
                // newest)
                loop {
                    let tail = self.groups[g as usize].tail;
                    if tail == NIL {
                        break;
                    }
                    let back = &self.nodes[tail as usize].value;
                    let dominated = match order(back.into(), (&value).into()) {
                        Some(std::cmp::Ordering::Less) => max,
                        Some(std::cmp::Ordering::Greater) => !max,
                        _ => true,
                    };
                    if !dominated {
                        break;
                    }
                    let prev = self.nodes[tail as usize].prev;
                    let group = &mut self.groups[g as usize];
                    group.tail = prev;
                    if prev == NIL {
                        group.head = NIL;
                    } else {
                        self.nodes[prev as usize].next = NIL;
                    }
                    self.free_node(tail);
                }
                let tail = self.groups[g as usize].tail;
                let n = self.new_node(seq, value.clone(), tail);
                let group = &mut self.groups[g as usize];
                if tail == NIL {
                    group.head = n;
                } else {
                    self.nodes[tail as usize].next = n;
                }
                group.tail = n;
            }
            IndicatorFunc::CountDistinct => {
                let hash = self.count_hash(g, (&value).into());
                let found = self.counts.find_mut(hash, |(cg, v, _)| {
                    *cg == g && equals(v.into(), (&value).into()) == Some(true)
                });
                match found {
                    Some(found) => found.2 += 1,
                    None => {
                        let hasher = &self.hasher;
                        self.counts
                            .insert_unique(hash, (g, value.clone(), 1), |(cg, v, _)| {
                                let mut state = hasher.build_hasher();
                                state.write_u32(*cg);
                                hash_part(&mut state, v.into());
                                state.finish()
                            });
                        self.groups[g as usize].distinct += 1;
                    }
                }
            }
        }
        self.groups[g as usize].n += 1;
        self.fifo.push_back(Entry {
            ts,
            group: g,
            seq,
            value,
        });
        Ok(())
    }

    /// The indicator's value for group `key`.
    pub(crate) fn value(&self, key: &[ValueRef<'_>]) -> Value {
        let group = self
            .hash_key(key)
            .and_then(|hash| self.find(hash, key))
            .map(|g| &self.groups[g as usize]);
        let Some(group) = group else {
            if key.iter().any(|v| v.is_null()) {
                return Value::Null;
            }
            return match self.func {
                IndicatorFunc::Count | IndicatorFunc::Sum | IndicatorFunc::CountDistinct => {
                    Value::Int(0)
                }
                _ => Value::Null,
            };
        };
        let n = group.n;
        match self.func {
            IndicatorFunc::Count => Value::Int(n as i64),
            IndicatorFunc::Sum => {
                if group.floats == 0 {
                    i64::try_from(group.int_sum).map_or(Value::Null, Value::Int)
                } else {
                    Value::Float(group.int_sum as f64 + group.float_sum)
                }
            }
            IndicatorFunc::Avg => Value::Float((group.int_sum as f64 + group.float_sum) / n as f64),
            IndicatorFunc::Min | IndicatorFunc::Max => match group.head {
                NIL => Value::Null,
                head => self.nodes[head as usize].value.clone(),
            },
            IndicatorFunc::CountDistinct => Value::Int(group.distinct as i64),
        }
    }

    /// Every entry as (key, time, value), oldest first: what a restore
    /// pushes back.
    pub(crate) fn items(&self) -> Vec<(Vec<Value>, Timestamp, Value)> {
        (self.fifo.iter())
            .map(|e| {
                let key = self.groups[e.group as usize].key.clone();
                (key, e.ts, e.value.clone())
            })
            .collect()
    }
}
