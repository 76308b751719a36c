//! `count_distinct`'s counts for one family of indicators
//! ([`Windows`](super::window::Windows)): per (group, member, value), the
//! entries of that value in the member's window of the group, as a record
//! in one slab. The family's FIFO names an entry's record, so an eviction
//! needs no hash and no lookup. A record whose count falls to 0 stays
//! findable, idle, so that the value's next entry finds it; at most
//! `idle_limit` are kept idle, the longest idle released first.
//!
//! A member's set in a group (its *records*, live or idle) is found
//! without hashing while it is small: a chain of at most [`CHAIN`]
//! records, scanned; a set that grows beyond it moves into the index (its
//! records hashed once, then each new value), until it has no record
//! again. Most sets of a short window, or of groups with few events in a
//! long one, hold one to a few values: no hash, no probe, no insertion
//! into a growing table per new value.
//!
//! A record is keyed by its group's slot, not its key: an idle record is
//! as good as none, so one that a group left when its slot went to
//! another group is that group's.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use super::window::{equal_part, hash_part};
use crate::value::Value;

/// No record (the end of a chain).
const NIL: u32 = u32::MAX;

/// [`Head::first`] of a set in the index.
const INDEXED: u32 = u32::MAX - 1;

/// The most records of a set kept in its chain (more: in the index).
pub(super) const CHAIN: u32 = 8;

/// The entries of one value in one member's window of one group's slot
/// (0: idle, or free).
#[derive(Clone, Debug)]
struct Record {
    /// (as [`DistinctCounts::index`] holds it; 0 in a chain)
    hash: u64,
    value: Value,
    group: u32,
    /// The next record of the chain ([`NIL`]: the last, or not chained).
    next: u32,
    count: u32,
    /// (a member's number: below 32)
    member: u8,
    /// In [`DistinctCounts::idle`] (idle, or revived since).
    queued: bool,
}

/// One member's set in one group's slot: its records.
#[derive(Clone, Copy, Debug)]
struct Head {
    /// The chain's first record ([`NIL`]: none), or [`INDEXED`].
    first: u32,
    /// Records of the set, live or idle.
    len: u32,
}

impl Head {
    const EMPTY: Head = Head { first: NIL, len: 0 };
}

/// The records of one family.
#[derive(Clone, Debug)]
pub(super) struct DistinctCounts {
    records: Vec<Record>,
    /// The records of the sets beyond [`CHAIN`] records.
    index: HashTable<u32>,
    /// Set of member `j` in slot `g` at `g * members + j` (grown as sets
    /// are made).
    heads: Vec<Head>,
    /// The family's members.
    members: usize,
    /// Records of no value.
    free: Vec<u32>,
    /// Records queued as idle, longest first (one revived since is
    /// skipped).
    idle: VecDeque<u32>,
    /// Idle records (findable, count 0).
    idle_records: usize,
    /// The most idle records.
    pub(super) idle_limit: usize,
}

/// The hash of member `j`'s `value` in slot `g`, as the index holds it.
fn hash_of(hasher: &hashbrown::DefaultHashBuilder, g: u32, j: u32, value: &Value) -> u64 {
    let mut state = hasher.build_hasher();
    // (the slot and the member in one word: one round of the hasher)
    state.write_u64(u64::from(g) << 32 | u64::from(j));
    hash_part(&mut state, value.into());
    state.finish()
}

impl DistinctCounts {
    /// No record, for a family of `members`, at most `idle_limit` kept
    /// idle.
    pub(super) fn new(idle_limit: usize, members: usize) -> DistinctCounts {
        DistinctCounts {
            records: Vec::new(),
            index: HashTable::new(),
            heads: Vec::new(),
            members,
            free: Vec::new(),
            idle: VecDeque::new(),
            idle_records: 0,
            idle_limit,
        }
    }

    /// Idle records.
    #[cfg(test)]
    pub(super) fn idle_records(&self) -> usize {
        self.idle_records
    }

    /// Heap bytes, roughly.
    pub(super) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.records.capacity() * size_of::<Record>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.heads.capacity() * size_of::<Head>()
    }

    /// Record `r`'s value.
    pub(super) fn value(&self, r: u32) -> &Value {
        &self.records[r as usize].value
    }

    /// The row of member `j`'s set in slot `g` in [`heads`](Self::heads).
    fn row(&self, g: u32, j: usize) -> usize {
        g as usize * self.members + j
    }

    /// One more entry of member `j`'s `value` (one `hash_part` takes) in
    /// group `g`, hashed with `hasher` if its set is in the index: its
    /// record (found, revived or made), and whether the value is new to
    /// the window.
    pub(super) fn add(
        &mut self,
        hasher: &hashbrown::DefaultHashBuilder,
        g: u32,
        j: usize,
        value: Value,
    ) -> (u32, bool) {
        let row = self.row(g, j);
        if row >= self.heads.len() {
            self.heads.resize(row + 1, Head::EMPTY);
        }
        let head = self.heads[row];
        let indexed = head.first == INDEXED;
        let mut hash = 0;
        let found = if indexed {
            hash = hash_of(hasher, g, j as u32, &value);
            self.index
                .find(hash, |&r| {
                    let d = &self.records[r as usize];
                    d.group == g && d.member as usize == j && equal_part(&d.value, (&value).into())
                })
                .copied()
        } else {
            let mut r = head.first;
            while r != NIL {
                let d = &self.records[r as usize];
                if equal_part(&d.value, (&value).into()) {
                    break;
                }
                r = d.next;
            }
            (r != NIL).then_some(r)
        };
        let r = match found {
            Some(r) => {
                if self.records[r as usize].count == 0 {
                    // (idle, revived: it stays queued, and is skipped there)
                    self.idle_records -= 1;
                }
                r
            }
            None => {
                let chained = !indexed && head.len < CHAIN;
                if !indexed && !chained {
                    // (the set outgrows its chain: into the index)
                    self.index_chain(hasher, g, j, row);
                }
                if !chained && !indexed {
                    hash = hash_of(hasher, g, j as u32, &value);
                }
                let record = Record {
                    hash,
                    value,
                    group: g,
                    next: if chained { head.first } else { NIL },
                    count: 0,
                    member: j as u8,
                    queued: false,
                };
                let r = match self.free.pop() {
                    Some(r) => {
                        self.records[r as usize] = record;
                        r
                    }
                    None => {
                        self.records.push(record);
                        (self.records.len() - 1) as u32
                    }
                };
                let head = &mut self.heads[row];
                head.len += 1;
                if chained {
                    head.first = r;
                } else {
                    let records = &self.records;
                    (self.index).insert_unique(hash, r, |&x| records[x as usize].hash);
                }
                r
            }
        };
        let record = &mut self.records[r as usize];
        record.count += 1;
        (r, record.count == 1)
    }

    /// Moves the chain of member `j`'s set in slot `g` (at `row`) into the
    /// index, each record hashed.
    #[cold]
    fn index_chain(
        &mut self,
        hasher: &hashbrown::DefaultHashBuilder,
        g: u32,
        j: usize,
        row: usize,
    ) {
        let mut r = self.heads[row].first;
        while r != NIL {
            let record = &mut self.records[r as usize];
            let next = record.next;
            record.next = NIL;
            record.hash = hash_of(hasher, g, j as u32, &record.value);
            let hash = record.hash;
            let records = &self.records;
            (self.index).insert_unique(hash, r, |&x| records[x as usize].hash);
            r = next;
        }
        self.heads[row].first = INDEXED;
    }

    /// One entry fewer in record `r`: whether its value left the window.
    pub(super) fn remove(&mut self, r: u32) -> bool {
        let record = &mut self.records[r as usize];
        record.count -= 1;
        if record.count > 0 {
            return false;
        }
        self.idle_records += 1;
        if !record.queued {
            record.queued = true;
            self.idle.push_back(r);
        }
        if self.idle_records > self.idle_limit {
            self.release_idle();
        }
        true
    }

    /// Takes the longest idle record out of the index (skipping records
    /// revived since they were queued): it is free.
    fn release_idle(&mut self) {
        while let Some(r) = self.idle.pop_front() {
            let record = &mut self.records[r as usize];
            record.queued = false;
            if record.count > 0 {
                continue;
            }
            record.value = Value::Null;
            let (hash, next, group, member) =
                (record.hash, record.next, record.group, record.member);
            record.next = NIL;
            let row = self.row(group, usize::from(member));
            let head = &mut self.heads[row];
            if head.first == INDEXED {
                if let Ok(entry) = self.index.find_entry(hash, |&x| x == r) {
                    entry.remove();
                }
            } else if head.first == r {
                head.first = next;
            } else {
                // (out of its chain: found from the first, at most `CHAIN`)
                let mut at = head.first;
                while at != NIL {
                    let record = &mut self.records[at as usize];
                    if record.next == r {
                        record.next = next;
                        break;
                    }
                    at = record.next;
                }
            }
            let head = &mut self.heads[row];
            head.len -= 1;
            if head.len == 0 {
                // (a set of no record: chained again)
                head.first = NIL;
            }
            self.free.push(r);
            self.idle_records -= 1;
            return;
        }
    }
}
