//! `count_distinct`'s counts for one family of indicators
//! ([`Windows`](super::window::Windows)): per (group, member, value), the
//! entries of that value in the member's window of the group, as a record
//! in one slab. The family's FIFO names an entry's record, so an eviction
//! needs no hash and no lookup. A record whose count falls to 0 stays in
//! the index, idle, so that the value's next entry finds it; at most
//! `idle_limit` are kept idle, the longest idle released first.
//!
//! A record is keyed by its group's slot, not its key: an idle record is
//! as good as none, so one that a group left when its slot went to
//! another group is that group's.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use super::window::hash_part;
use crate::value::Value;
use cepheid_core::expr::equals;

/// The entries of one value in one member's window of one group's slot
/// (0: idle, or free).
#[derive(Clone, Debug)]
struct Record {
    /// (as [`DistinctCounts::index`] holds it)
    hash: u64,
    value: Value,
    group: u32,
    member: u32,
    count: u32,
    /// In [`DistinctCounts::idle`] (idle, or revived since).
    queued: bool,
}

/// The records of one family.
#[derive(Clone, Debug)]
pub(super) struct DistinctCounts {
    records: Vec<Record>,
    index: HashTable<u32>,
    /// Records of no value.
    free: Vec<u32>,
    /// Records queued as idle, longest first (one revived since is
    /// skipped).
    idle: VecDeque<u32>,
    /// Idle records (in the index, count 0).
    idle_records: usize,
    /// The most idle records.
    pub(super) idle_limit: usize,
}

impl DistinctCounts {
    /// No record, at most `idle_limit` kept idle.
    pub(super) fn new(idle_limit: usize) -> DistinctCounts {
        DistinctCounts {
            records: Vec::new(),
            index: HashTable::new(),
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
    }

    /// Record `r`'s value.
    pub(super) fn value(&self, r: u32) -> &Value {
        &self.records[r as usize].value
    }

    /// One more entry of member `j`'s `value` (one `hash_part` takes) in
    /// group `g`, hashed with `hasher`: its record (found, revived or
    /// made), and whether the value is new to the window.
    pub(super) fn add(
        &mut self,
        hasher: &hashbrown::DefaultHashBuilder,
        g: u32,
        j: usize,
        value: Value,
    ) -> (u32, bool) {
        let mut state = hasher.build_hasher();
        state.write_u32(g);
        state.write_u32(j as u32);
        hash_part(&mut state, (&value).into());
        let hash = state.finish();
        let found = self.index.find(hash, |&r| {
            let d = &self.records[r as usize];
            d.group == g
                && d.member == j as u32
                && equals((&d.value).into(), (&value).into()) == Some(true)
        });
        let r = match found {
            Some(&r) => {
                if self.records[r as usize].count == 0 {
                    // (idle, revived: it stays queued, and is skipped there)
                    self.idle_records -= 1;
                }
                r
            }
            None => {
                let record = Record {
                    hash,
                    value,
                    group: g,
                    member: j as u32,
                    count: 0,
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
                let records = &self.records;
                (self.index).insert_unique(hash, r, |&x| records[x as usize].hash);
                r
            }
        };
        let record = &mut self.records[r as usize];
        record.count += 1;
        (r, record.count == 1)
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
            if let Ok(entry) = self.index.find_entry(record.hash, |&x| x == r) {
                entry.remove();
            }
            self.free.push(r);
            self.idle_records -= 1;
            return;
        }
    }
}
