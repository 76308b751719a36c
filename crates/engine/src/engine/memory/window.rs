//! The state of the rolling indicators that share one `group by` and one
//! window width ([`Windows`]): per group, the events of the window
//! `(now - W, now]` that count, with each indicator's running aggregates,
//! so that adding an event, evicting one and reading a value are O(1)
//! amortized.
//!
//! - `count`: the number of entries;
//! - `sum`, `avg`: an exact sum ([`ExactSum`]: an `i128` for the integers,
//!   a fixed-point number on the heap while a float is in the window),
//!   read rounded once;
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
//! Nothing is allocated per group (but the wide part of a `sum` or `avg`
//! while a float is in the group's window, 288 bytes, taken from and
//! given back to a store of at most 4,096 zeroed ones): a group's key and
//! its members' aggregates are rows of two arrays; the monotonic deques of
//! every group are lists in one slab of nodes, and the counts per
//! distinct value records in one slab ([`DistinctCounts`]), a FIFO entry
//! naming its record (so an eviction needs no lookup). A
//! group whose window empties stays in the index, idle, so that the next
//! event of its key finds it (a short window would otherwise remove and
//! insert a group at almost every event); at most [`IDLE_GROUPS`] are
//! kept idle, the longest idle leaving first, its slot, its key's room
//! included, reused by the next new group. A distinct value's record
//! whose count falls to 0 is kept idle the same way, within the same
//! bound. So adding an event to a new group costs about what adding one
//! to a live group costs, whatever the window and the number of groups;
//! memory is the entries inside the windows, plus at most
//! [`IDLE_GROUPS`] idle groups and as many idle records.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use super::distinct::DistinctCounts;
use super::exact::{ExactSum, Number, Spare};
use crate::lookup::IndicatorFunc;
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};
use cepheid_core::expr::equals;

/// The most members of one [`Windows`] (the bits of [`Entry::taken`]).
pub(crate) const MAX_MEMBERS: usize = 32;

/// The most idle groups one [`Windows`] keeps (groups whose window is
/// empty, still in the index), and the most idle `count_distinct` records
/// (values no longer in their group's window): the slack of memory above
/// what the entries inside the windows hold.
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
    /// Bit `j`: member `j` took the event (its value is in
    /// [`Windows::values`] for `sum`, `avg`, `min`, `max`, its record in
    /// [`Windows::records`] for `count_distinct`, members in order).
    taken: u32,
}

/// No node ([`Aggregate::head`], [`Node::next`]...).
const NIL: u32 = u32::MAX;

/// One group: its entries (its key is a row of [`Windows::keys`], its
/// aggregates a row of [`Windows::aggregates`]).
#[derive(Clone, Debug, Default)]
struct Group {
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
    /// `sum`, `avg`: the numbers' exact sum.
    sum: ExactSum,
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
            sum: ExactSum::default(),
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
/// it cannot be a key (NaN, a list, an object, null). A number or a
/// boolean is one 128-bit word, its kind above its bits (an integral float
/// as its integer): the engine's hasher folds such a word in one
/// multiplication, where a byte and a word took its buffer's shifts.
#[inline(always)]
pub(super) fn hash_part<H: Hasher>(state: &mut H, v: ValueRef<'_>) -> bool {
    let word = |kind: u128, bits: u64| kind << 64 | u128::from(bits);
    match v {
        ValueRef::Int(i) => state.write_u128(word(1, i as u64)),
        ValueRef::Float(f) if f.is_nan() => return false,
        ValueRef::Float(f) => {
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                state.write_u128(word(1, f as i64 as u64));
            } else {
                state.write_u128(word(2, f.to_bits()));
            }
        }
        ValueRef::Str(s) => {
            state.write_u8(3);
            state.write(s.as_bytes());
            state.write_u8(0xff);
        }
        ValueRef::Bool(b) => state.write_u128(word(4, u64::from(b))),
        _ => return false,
    }
    true
}

/// A member's value over a group with no entry in its window: null when
/// a key part is null, else 0 for `count`, `sum` and `count_distinct`,
/// null for the others.
#[cold]
fn empty_value(func: IndicatorFunc, key: &[ValueRef<'_>]) -> Value {
    if key.iter().any(|v| v.is_null()) {
        return Value::Null;
    }
    match func {
        IndicatorFunc::Count | IndicatorFunc::Sum | IndicatorFunc::CountDistinct => Value::Int(0),
        _ => Value::Null,
    }
}

/// Is the key part `a` (a group's) the part `b` as [`hash_part`] tells
/// them apart: the same number (an integral float is its integer), the
/// same text, the same boolean? Then they hash alike and are equal by
/// `==`: the index holds one group for both. False for what cannot be a
/// key (null, NaN, a list, an object).
#[inline(always)]
fn same_part(a: &Value, b: ValueRef<'_>) -> bool {
    /// A number as `hash_part` writes it: an integer, or a float's bits.
    fn number(v: ValueRef<'_>) -> Option<(u8, i64)> {
        match v {
            ValueRef::Int(i) => Some((1, i)),
            ValueRef::Float(f) if f.is_nan() => None,
            ValueRef::Float(f) => Some(
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    (1, f as i64)
                } else {
                    (2, f.to_bits() as i64)
                },
            ),
            _ => None,
        }
    }
    match (a, b) {
        (Value::Int(x), ValueRef::Int(y)) => *x == y,
        (Value::Str(x), ValueRef::Str(y)) => x.as_bytes() == y.as_bytes(),
        (Value::Bool(x), ValueRef::Bool(y)) => *x == y,
        (Value::Int(_) | Value::Float(_), ValueRef::Int(_) | ValueRef::Float(_)) => {
            number(a.into()).is_some_and(|n| number(b) == Some(n))
        }
        _ => false,
    }
}

/// Is the key part `a` equal to `b` by `==` ([`equals`])? Integers
/// compared inline, the rest by a call.
#[inline(always)]
pub(super) fn equal_part(a: &Value, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (Value::Int(x), ValueRef::Int(y)) => *x == y,
        _ => equals(a.into(), b) == Some(true),
    }
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
    /// The parts of a key.
    key_len: usize,
    /// Group `g`'s key at `g * key_len..` (nulls in a free slot).
    keys: Vec<Value>,
    /// Member `j`'s aggregates of group `g` at `g * funcs.len() + j`.
    aggregates: Vec<Aggregate>,
    /// Slots of no group.
    free: Vec<u32>,
    /// Groups queued as idle, longest first (one revived since is skipped).
    idle: VecDeque<u32>,
    /// Idle groups (in the index, no entry).
    idle_groups: usize,
    /// The most idle groups ([`IDLE_GROUPS`]; less in tests).
    idle_limit: usize,
    /// Every entry, oldest first.
    fifo: VecDeque<Entry>,
    /// The values the entries' `sum`, `avg`, `min` and `max` members took,
    /// in the FIFO's order.
    values: VecDeque<Value>,
    /// The records of the values the entries' `count_distinct` members
    /// took, in the FIFO's order.
    records: VecDeque<u32>,
    /// Entries evicted so far (the number of the FIFO's front).
    evicted: u64,
    /// `min`/`max`: every group's candidates.
    nodes: Vec<Node>,
    /// The first free node (the others chained by `next`).
    free_node: u32,
    /// `count_distinct`: the count of each value in each member's window
    /// of each group.
    distinct: DistinctCounts,
    /// Entries over all members (an event two members took: two).
    entries: usize,
    /// Groups over all members (a group two members hold entries of: two).
    member_groups: usize,
    /// `sum`, `avg`: the aggregates with a float in their window, so a
    /// wide sum on the heap ([`ExactSum`]).
    wides: usize,
    /// Wide parts kept for reuse (at most 4,096).
    spare: Spare,
    /// The group [`group`](Self::group) gave last (`NIL`: none yet): the
    /// event being processed's, which the rules then read, so that
    /// [`value`](Self::value) finds it without hashing its key again.
    recent: u32,
}

impl Windows {
    /// Empty windows of `funcs` (at most [`MAX_MEMBERS`]) over `width` ms,
    /// grouped by keys of `key_len` parts, hashing them with `hasher`
    /// ([`key_hash`]).
    pub(crate) fn new(
        funcs: Vec<IndicatorFunc>,
        key_len: usize,
        width: i64,
        hasher: hashbrown::DefaultHashBuilder,
    ) -> Windows {
        assert!(funcs.len() <= MAX_MEMBERS, "too many members");
        let members = funcs.len();
        Windows {
            funcs,
            width,
            hasher,
            index: HashTable::new(),
            groups: Vec::new(),
            key_len,
            keys: Vec::new(),
            aggregates: Vec::new(),
            free: Vec::new(),
            idle: VecDeque::new(),
            idle_groups: 0,
            idle_limit: IDLE_GROUPS,
            fifo: VecDeque::new(),
            values: VecDeque::new(),
            records: VecDeque::new(),
            evicted: 0,
            nodes: Vec::new(),
            free_node: NIL,
            distinct: DistinctCounts::new(IDLE_GROUPS, members),
            entries: 0,
            member_groups: 0,
            wides: 0,
            spare: Spare::default(),
            recent: NIL,
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
    /// keys, aggregates and their exact sums' wide parts, candidates,
    /// distinct counts, tables).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.fifo.capacity() * size_of::<Entry>()
            + self.values.capacity() * size_of::<Value>()
            + self.records.capacity() * size_of::<u32>()
            + self.groups.capacity() * size_of::<Group>()
            + self.keys.capacity() * size_of::<Value>()
            + self.aggregates.capacity() * size_of::<Aggregate>()
            + self.nodes.capacity() * size_of::<Node>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.distinct.heap_bytes()
            + (self.wides + self.spare.len()) * ExactSum::WIDE_BYTES
    }

    /// Group `g`'s key.
    fn key(&self, g: u32) -> &[Value] {
        let at = g as usize * self.key_len;
        &self.keys[at..at + self.key_len]
    }

    /// The group [`group`](Self::group) gave last, if its key is `key`
    /// as the index tells keys apart ([`same_part`]: what [`find`](Self::find)
    /// would find for `key`, without hashing it).
    #[inline]
    fn recent(&self, key: &[ValueRef<'_>]) -> Option<u32> {
        let g = self.recent;
        if g == NIL || key.len() != self.key_len {
            return None;
        }
        if let [part] = key {
            // (one part, the most common key)
            return same_part(self.keys.get(g as usize)?, *part).then_some(g);
        }
        let at = g as usize * self.key_len;
        let stored = self.keys.get(at..at + self.key_len)?;
        stored
            .iter()
            .zip(key)
            .all(|(a, &b)| same_part(a, b))
            .then_some(g)
    }

    fn find(&self, hash: u64, key: &[ValueRef<'_>]) -> Option<u32> {
        if key.len() != self.key_len {
            return None;
        }
        if let &[part] = key {
            // (one part, the most common key: a comparison small enough
            // to be inlined in the probe)
            return (self.index)
                .find(hash, |&g| equal_part(&self.keys[g as usize], part))
                .copied();
        }
        self.index
            .find(hash, |&g| {
                (self.key(g).iter())
                    .zip(key)
                    .all(|(a, &b)| equal_part(a, b))
            })
            .copied()
    }

    fn aggregate(&mut self, g: u32, j: usize) -> &mut Aggregate {
        &mut self.aggregates[g as usize * self.funcs.len() + j]
    }

    /// Does member `j` keep its entries' values in [`Windows::values`]?
    fn keeps_values(&self, j: usize) -> bool {
        matches!(
            self.funcs[j],
            IndicatorFunc::Sum | IndicatorFunc::Avg | IndicatorFunc::Min | IndicatorFunc::Max
        )
    }

    /// Evicts every entry at or before `now - W`.
    #[inline]
    pub(crate) fn advance(&mut self, now: Timestamp) {
        let edge = now.saturating_sub(self.width);
        // (most calls evict nothing: tested here, the loop out of line)
        if self.fifo.front().is_some_and(|e| e.ts <= edge) {
            self.evict_to(edge);
        }
    }

    /// Evicts every entry at or before `edge`.
    #[inline(never)]
    fn evict_to(&mut self, edge: Timestamp) {
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
        let row = g as usize * self.funcs.len();
        let mut taken = entry.taken;
        self.entries -= taken.count_ones() as usize;
        while taken != 0 {
            let j = taken.trailing_zeros() as usize;
            taken &= taken - 1;
            let aggregate = &mut self.aggregates[row + j];
            aggregate.n -= 1;
            if aggregate.n == 0 {
                self.member_groups -= 1;
            }
            match self.funcs[j] {
                IndicatorFunc::Count => {}
                IndicatorFunc::Sum | IndicatorFunc::Avg => {
                    match self.values.pop_front() {
                        // (an integer: no wide part comes or goes)
                        Some(Value::Int(i)) => {
                            aggregate
                                .sum
                                .remove(Number::Int(i128::from(i)), &mut self.spare);
                        }
                        Some(value) => {
                            if let Some(x) = Number::of(&value) {
                                let wide = aggregate.sum.is_wide();
                                aggregate.sum.remove(x, &mut self.spare);
                                self.wides -= usize::from(wide && !aggregate.sum.is_wide());
                            }
                        }
                        None => {}
                    }
                }
                IndicatorFunc::Min | IndicatorFunc::Max => {
                    self.values.pop_front();
                    let head = aggregate.head;
                    if head != NIL && self.nodes[head as usize].seq == self.evicted {
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
                    let r = self.records.pop_front().unwrap_or(NIL);
                    if self.distinct.remove(r) {
                        aggregate.distinct -= 1;
                    }
                }
            }
            // (an emptied aggregate is as new: its last entry was its
            // newest candidate, gone with it; no number, no distinct value
            // is left)
            debug_assert!({
                let a = &self.aggregates[row + j];
                a.n > 0 || (a.head == NIL && a.sum.is_empty() && a.distinct == 0)
            });
        }
        let group = &mut self.groups[g as usize];
        group.n -= 1;
        if group.n == 0 {
            self.idle_groups += 1;
            if !group.queued {
                group.queued = true;
                self.idle.push_back(g);
            }
            if self.idle_groups > self.idle_limit {
                self.release_idle();
            }
        }
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
            let at = g as usize * self.key_len;
            for part in &mut self.keys[at..at + self.key_len] {
                *part = Value::Null;
            }
            if let Ok(entry) = self.index.find_entry(group.hash, |&x| x == g) {
                entry.remove();
            }
            self.free.push(g);
            self.idle_groups -= 1;
            return;
        }
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

    /// Does member `j` take an event whose argument is `value` (ignored
    /// by `count`, whose [`take`](Self::take) ignores it too)? Else why
    /// it takes none.
    #[inline]
    pub(crate) fn admit(&self, j: usize, value: &Value) -> Result<(), Refused> {
        match self.funcs[j] {
            IndicatorFunc::Count => Ok(()),
            // (an integer from 2^63 to 2^64 - 1 is its digits: a number)
            IndicatorFunc::Sum | IndicatorFunc::Avg | IndicatorFunc::Min | IndicatorFunc::Max => {
                match value {
                    Value::Int(_) => Ok(()),
                    _ if Number::of(value).is_some() => Ok(()),
                    _ => Err(Refused::NotNumeric),
                }
            }
            // (what `hash_part` refuses)
            IndicatorFunc::CountDistinct => match value {
                Value::Null | Value::List(_) => Err(Refused::Unusable),
                Value::Float(f) if f.is_nan() => Err(Refused::Unusable),
                _ => Ok(()),
            },
        }
    }

    /// The slot of group `key` (of [`Windows::key_len`] parts, whose
    /// [`key_hash`] is `hash`, made by this hasher or a clone of it): the
    /// live or idle one, else a new one. An event the slot is asked for
    /// must be taken by a member ([`take`](Self::take)) and pushed
    /// ([`push`](Self::push)).
    pub(crate) fn group(&mut self, hash: u64, key: &[ValueRef<'_>]) -> u32 {
        debug_assert_eq!(key.len(), self.key_len);
        if let Some(g) = self.find(hash, key) {
            if self.groups[g as usize].n == 0 {
                // (idle, revived: it stays queued, and is skipped there)
                self.idle_groups -= 1;
            }
            self.recent = g;
            return g;
        }
        let g = match self.free.pop() {
            Some(g) => {
                let at = g as usize * self.key_len;
                for (part, &v) in self.keys[at..at + self.key_len].iter_mut().zip(key) {
                    *part = v.to_owned();
                }
                self.groups[g as usize].hash = hash;
                g
            }
            None => {
                self.keys.extend(key.iter().map(|&v| v.to_owned()));
                self.groups.push(Group {
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
        self.recent = g;
        g
    }

    /// Member `j` takes the event about to be pushed, of group `g`, with
    /// `value` (what [`admit`](Self::admit) gave).
    #[inline]
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
                // (an integer: no wide part comes or goes)
                Value::Int(i) => aggregate
                    .sum
                    .add(Number::Int(i128::from(i)), &mut self.spare),
                _ => {
                    if let Some(x) = Number::of(&value) {
                        let wide = aggregate.sum.is_wide();
                        aggregate.sum.add(x, &mut self.spare);
                        self.wides += usize::from(!wide && aggregate.sum.is_wide());
                    }
                }
            },
            IndicatorFunc::Min | IndicatorFunc::Max => {
                self.push_candidate(j, g, seq, &value);
            }
            IndicatorFunc::CountDistinct => return self.count_value(j, g, value),
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
            let dominated = match Number::of(back).zip(Number::of(value)) {
                Some((back, value)) => match back.cmp(value) {
                    std::cmp::Ordering::Less => max,
                    std::cmp::Ordering::Greater => !max,
                    std::cmp::Ordering::Equal => true,
                },
                None => true,
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
    fn count_value(&mut self, j: usize, g: u32, value: Value) {
        let (r, new) = self.distinct.add(&self.hasher, g, j, value);
        if new {
            self.aggregate(g, j).distinct += 1;
        }
        self.records.push_back(r);
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
        self.admit(j, &value)?;
        if key.len() != self.key_len {
            return Err(Refused::Unusable);
        }
        let hash = key_hash(&self.hasher, key).ok_or(Refused::Unusable)?;
        let g = self.group(hash, key);
        self.take(j, g, value);
        self.push(ts, g, 1 << j);
        Ok(())
    }

    /// Member `j`'s value for group `key`: the group the event being
    /// processed took ([`recent`](Self::recent)) when `key` is its key,
    /// else the one the index finds.
    #[inline]
    pub(crate) fn value(&self, j: usize, key: &[ValueRef<'_>]) -> Value {
        let func = self.funcs[j];
        let g = match self.recent(key) {
            Some(g) => Some(g),
            None => self.find_key(key),
        };
        let aggregate = g
            .map(|g| &self.aggregates[g as usize * self.funcs.len() + j])
            .filter(|a| a.n > 0);
        let Some(aggregate) = aggregate else {
            return empty_value(func, key);
        };
        let n = aggregate.n;
        match func {
            IndicatorFunc::Count => Value::Int(n as i64),
            IndicatorFunc::Sum => aggregate.sum.sum(),
            IndicatorFunc::Avg => aggregate.sum.mean(n),
            IndicatorFunc::Min | IndicatorFunc::Max => self.extreme(aggregate),
            IndicatorFunc::CountDistinct => Value::Int(aggregate.distinct as i64),
        }
    }

    /// The group of `key`, hashed and looked up in the index (out of
    /// line: a rule mostly reads the event's group, [`recent`](Self::recent)).
    #[inline(never)]
    fn find_key(&self, key: &[ValueRef<'_>]) -> Option<u32> {
        key_hash(&self.hasher, key).and_then(|hash| self.find(hash, key))
    }

    /// `min`/`max`: the window's extreme, a number as a value (one beyond
    /// `i64`, the nearest float).
    #[inline(never)]
    fn extreme(&self, aggregate: &Aggregate) -> Value {
        match aggregate.head {
            NIL => Value::Null,
            head => {
                let value = &self.nodes[head as usize].value;
                match value {
                    Value::Str(_) => Number::of(value).map_or(Value::Null, Number::value),
                    _ => value.clone(),
                }
            }
        }
    }

    /// Member `j`'s entries as (key, time, value), oldest first: what a
    /// restore pushes back.
    pub(crate) fn items(&self, j: usize) -> Vec<Item> {
        let mut items = Vec::new();
        self.each_item(j, |key, ts, value| {
            items.push((key.to_vec(), ts, value.clone()));
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        items
    }

    /// Member `j`'s entries as [`Windows::items`] lists them, each given
    /// to `f` by reference (a snapshot encodes them so, with no copy),
    /// until `f` fails.
    pub(crate) fn each_item<F, Err>(&self, j: usize, mut f: F) -> Result<(), Err>
    where
        F: FnMut(&[Value], Timestamp, &Value) -> Result<(), Err>,
    {
        const NULL: Value = Value::Null;
        let mut values = self.values.iter();
        let mut records = self.records.iter();
        for e in &self.fifo {
            let mut taken = e.taken;
            while taken != 0 {
                let m = taken.trailing_zeros() as usize;
                taken &= taken - 1;
                let value = if self.keeps_values(m) {
                    values.next().unwrap_or(&NULL)
                } else if self.funcs[m] == IndicatorFunc::CountDistinct {
                    let r = records.next().copied().unwrap_or(NIL);
                    self.distinct.value(r)
                } else {
                    &NULL
                };
                if m == j {
                    f(self.key(e.group), e.ts, value)?;
                }
            }
        }
        Ok(())
    }

    /// How many entries member `j` has ([`Windows::each_item`] gives).
    pub(crate) fn count_items(&self, j: usize) -> usize {
        (self.fifo.iter())
            .filter(|e| e.taken & (1 << j) != 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        let funcs = vec![IndicatorFunc::Count, IndicatorFunc::Max];
        Windows::new(funcs, 1, 10, hashbrown::DefaultHashBuilder::default())
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

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every member's value for every key, after each event, equals
        /// its definition, while groups and records go idle, are revived
        /// and are released (few kept idle: slots are reused at once).
        #[test]
        fn members_equal_their_definition_as_slots_are_reused(
            events in prop::collection::vec((0i64..3, 0i64..6, 0i64..4, 0u32..16), 1..120),
            width in 1i64..6,
            idle_limit in 0usize..3,
        ) {
            let funcs = vec![
                IndicatorFunc::CountDistinct,
                IndicatorFunc::Count,
                IndicatorFunc::Max,
                IndicatorFunc::Sum,
                IndicatorFunc::CountDistinct,
            ];
            let mut w = Windows::new(funcs, 1, width, hashbrown::DefaultHashBuilder::default());
            w.idle_limit = idle_limit;
            w.distinct.idle_limit = idle_limit;
            let mut ts = 0;
            // (time, key, value, members that took it)
            let mut seen: Vec<(i64, i64, i64, u32)> = Vec::new();
            for (step, k, v, taken) in events {
                ts += step;
                w.advance(ts);
                let key = [ValueRef::Int(k)];
                if taken != 0 {
                    let hash = key_hash(&w.hasher, &key).unwrap();
                    let g = w.group(hash, &key);
                    // (members 0 to 3 as drawn; member 4 takes what 0 does)
                    let taken = taken | ((taken & 1) << 4);
                    for j in 0..5 {
                        if taken & (1 << j) != 0 {
                            w.admit(j, &Value::Int(v)).unwrap();
                            w.take(j, g, Value::Int(v));
                        }
                    }
                    w.push(ts, g, taken);
                    seen.push((ts, k, v, taken));
                }
                for k in 0..6 {
                    for j in 0..5 {
                        let values: Vec<i64> = (seen.iter())
                            .filter(|e| e.0 > ts - width && e.1 == k && e.3 & (1 << j) != 0)
                            .map(|e| e.2)
                            .collect();
                        let mut distinct = values.clone();
                        distinct.sort_unstable();
                        distinct.dedup();
                        let expected = match j {
                            0 | 4 => Value::Int(distinct.len() as i64),
                            1 => Value::Int(values.len() as i64),
                            2 => values.iter().max().map_or(Value::Null, |&m| Value::Int(m)),
                            _ => Value::Int(values.iter().sum()),
                        };
                        prop_assert_eq!(w.value(j, &[ValueRef::Int(k)]), expected, "member {} key {}", j, k);
                    }
                }
                prop_assert!(w.idle_groups <= idle_limit && w.distinct.idle_records() <= idle_limit);
                let live = w.groups.len() - w.free.len() - w.idle_groups;
                prop_assert_eq!(w.index.len(), live + w.idle_groups);
            }
        }

        /// `count_distinct` equals its definition while sets grow beyond
        /// their chain (`CHAIN` values) into the index, shrink, are
        /// released and made again, with few or many records kept idle.
        #[test]
        fn distinct_counts_equal_their_definition_as_sets_outgrow_their_chains(
            events in prop::collection::vec((0i64..3, 0i64..3, 0i64..24, 1u32..4), 1..200),
            width in 1i64..40,
            idle_limit in prop::sample::select(vec![0usize, 1, 2, 5, 1000]),
        ) {
            let funcs = vec![IndicatorFunc::CountDistinct, IndicatorFunc::CountDistinct];
            let mut w = Windows::new(funcs, 1, width, hashbrown::DefaultHashBuilder::default());
            w.idle_limit = idle_limit;
            w.distinct.idle_limit = idle_limit;
            let mut ts = 0;
            // (time, key, value, members that took it)
            let mut seen: Vec<(i64, i64, i64, u32)> = Vec::new();
            for (step, k, v, taken) in events {
                ts += step;
                w.advance(ts);
                let key = [ValueRef::Int(k)];
                let hash = key_hash(&w.hasher, &key).unwrap();
                let g = w.group(hash, &key);
                // (member 1 takes the value's square: other values)
                for j in 0..2 {
                    if taken & (1 << j) != 0 {
                        let v = if j == 0 { v } else { v * v };
                        w.admit(j, &Value::Int(v)).unwrap();
                        w.take(j, g, Value::Int(v));
                    }
                }
                w.push(ts, g, taken);
                seen.push((ts, k, v, taken));
                for k in 0..3 {
                    for j in 0..2 {
                        let mut distinct: Vec<i64> = (seen.iter())
                            .filter(|e| e.0 > ts - width && e.1 == k && e.3 & (1 << j) != 0)
                            .map(|e| if j == 0 { e.2 } else { e.2 * e.2 })
                            .collect();
                        distinct.sort_unstable();
                        distinct.dedup();
                        prop_assert_eq!(
                            w.value(j, &[ValueRef::Int(k)]),
                            Value::Int(distinct.len() as i64),
                            "member {} key {}", j, k
                        );
                    }
                }
                prop_assert!(w.distinct.idle_records() <= idle_limit);
            }
        }
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
