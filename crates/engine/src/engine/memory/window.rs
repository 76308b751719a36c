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
//! over all groups, in time order, says which group's oldest entry leaves
//! next: [`Window::advance`] pops it until the front is inside the window.
//! Memory is the entries inside the windows, and a group is dropped when
//! its window empties.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use crate::lookup::IndicatorFunc;
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};
use cepheid_core::expr::{equals, order};

/// One event in a group's window.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    seq: u64,
    /// The aggregated value (null for `count`).
    value: Value,
}

#[derive(Clone, Debug, Default)]
struct Group {
    /// (a `Vec`: a slot reused by another group keeps its room)
    key: Vec<Value>,
    /// The key's hash (as the index holds it).
    hash: u64,
    items: VecDeque<Item>,
    int_sum: i128,
    float_sum: f64,
    floats: u64,
    /// `min`/`max`: candidates, front the current extreme.
    extremes: VecDeque<(u64, Value)>,
    /// `count_distinct`: how many entries hold each value.
    distinct: Option<Box<hashbrown::HashMap<ValueKey, u32>>>,
}

/// A value as a hash key with `==`'s equality (`1` and `1.0` alike).
#[derive(Clone, Debug)]
struct ValueKey(Value);

impl PartialEq for ValueKey {
    fn eq(&self, other: &Self) -> bool {
        equals((&self.0).into(), (&other.0).into()) == Some(true)
    }
}
impl Eq for ValueKey {}
impl std::hash::Hash for ValueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_part(state, (&self.0).into());
    }
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
    /// Every entry's (time, group), oldest first.
    fifo: VecDeque<(Timestamp, u32)>,
    seq: u64,
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

    /// Heap bytes, roughly (entries and groups).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fifo.capacity() * 16
            + self.groups.capacity() * std::mem::size_of::<Group>()
            + self
                .groups
                .iter()
                .map(|g| {
                    g.items.capacity() * std::mem::size_of::<Item>() + g.extremes.capacity() * 32
                })
                .sum::<usize>()
            + self.index.capacity() * 5
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
        while let Some(&(ts, g)) = self.fifo.front() {
            if ts > edge {
                break;
            }
            self.fifo.pop_front();
            self.evict(g);
        }
    }

    fn evict(&mut self, g: u32) {
        let func = self.func;
        let group = &mut self.groups[g as usize];
        let Some(item) = group.items.pop_front() else {
            return;
        };
        match func {
            IndicatorFunc::Count => {}
            IndicatorFunc::Sum | IndicatorFunc::Avg => match item.value {
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
                if group.extremes.front().is_some_and(|(s, _)| *s == item.seq) {
                    group.extremes.pop_front();
                }
            }
            IndicatorFunc::CountDistinct => {
                if let Some(map) = &mut group.distinct {
                    let key = ValueKey(item.value);
                    if let Some(n) = map.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            map.remove(&key);
                        }
                    }
                }
            }
        }
        if group.items.is_empty() {
            // (the group's deques and map keep their room for the next
            // group that takes this slot)
            group.key.clear();
            group.int_sum = 0;
            group.float_sum = 0.0;
            group.floats = 0;
            group.extremes.clear();
            if let Some(map) = &mut group.distinct {
                map.clear();
            }
            if let Ok(entry) = self.index.find_entry(group.hash, |&x| x == g) {
                entry.remove();
            }
            self.free.push(g);
        }
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
        let func = self.func;
        let group = &mut self.groups[g as usize];
        match func {
            IndicatorFunc::Count => {}
            IndicatorFunc::Sum | IndicatorFunc::Avg => match value {
                Value::Int(i) => group.int_sum += i128::from(i),
                Value::Float(f) => {
                    group.floats += 1;
                    group.float_sum += f;
                }
                _ => {}
            },
            IndicatorFunc::Min | IndicatorFunc::Max => {
                let max = func == IndicatorFunc::Max;
                while let Some((_, back)) = group.extremes.back() {
                    let o = order(back.into(), (&value).into());
                    let dominated = match o {
                        Some(std::cmp::Ordering::Less) => max,
                        Some(std::cmp::Ordering::Greater) => !max,
                        _ => true,
                    };
                    if dominated {
                        group.extremes.pop_back();
                    } else {
                        break;
                    }
                }
                group.extremes.push_back((seq, value.clone()));
            }
            IndicatorFunc::CountDistinct => {
                *group
                    .distinct
                    .get_or_insert_with(Default::default)
                    .entry(ValueKey(value.clone()))
                    .or_insert(0) += 1;
            }
        }
        group.items.push_back(Item { seq, value });
        self.fifo.push_back((ts, g));
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
        let n = group.items.len();
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
            IndicatorFunc::Min | IndicatorFunc::Max => group
                .extremes
                .front()
                .map_or(Value::Null, |(_, v)| v.clone()),
            IndicatorFunc::CountDistinct => {
                Value::Int(group.distinct.as_ref().map_or(0, |m| m.len()) as i64)
            }
        }
    }

    /// Every entry as (key, time, value), oldest first: what a restore
    /// pushes back.
    pub(crate) fn items(&self) -> Vec<(Vec<Value>, Timestamp, Value)> {
        let mut cursor = vec![0usize; self.groups.len()];
        let mut out = Vec::with_capacity(self.fifo.len());
        for &(ts, g) in &self.fifo {
            let group = &self.groups[g as usize];
            let item = &group.items[cursor[g as usize]];
            cursor[g as usize] += 1;
            out.push((group.key.to_vec(), ts, item.value.clone()));
        }
        out
    }
}
