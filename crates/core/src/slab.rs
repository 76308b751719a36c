//! One slab: values in a vector, addressed by a `u32` index, freed entries
//! reused (the shared buffer's events and nodes, the engine's partitions).
//!
//! Hand-written rather than the `slab` crate: its keys are `usize` and its
//! free entries hold a `usize`, so a 16-byte buffer node would take 24
//! bytes per entry, where here it takes 16 (the free-list link is a `u32`
//! and fits beside a niche of the value); runs and deadline entries store
//! `u32` indexes. Generations, where wanted, are the caller's (a field of
//! its value).
//!
//! Freed entries are reused last freed first (a free list threaded through
//! the vacant entries), exactly as the `Vec` free lists this replaces did.
//! A full slab grows by an eighth ([`grow_by`]), not the double: it only
//! grows to the peak of live work, and keeps at most an eighth spare. A
//! change of rules [compacts](Slab::compact) it: vacant entries can then
//! be anywhere, and the caller renumbers what it holds.

/// A vacant entry's link to the next vacant entry: none.
const NONE: u32 = u32::MAX;

/// How much to add to a full buffer of `len` items whose size follows the
/// live work (a slab, the deadline index, the event queue): an eighth (at
/// least 16), not the double. Such a buffer only grows to the peak of
/// live work, and a doubled capacity would leave up to half of it unused
/// for good; growing by an eighth wastes at most an eighth, for eight
/// moves of each item amortized.
pub fn grow_by(len: usize) -> usize {
    (len / 8).max(16)
}

/// Where [`Slab::compact`] moved each index.
#[derive(Debug)]
pub struct Moves(Vec<u32>);

impl Moves {
    /// The new index of the value that was at `index` (`index` must have
    /// held a value).
    #[inline]
    pub fn get(&self, index: u32) -> u32 {
        self.0[index as usize]
    }

    /// The number of entries the old slab had (vacant ones included).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Did the old slab have no entry?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An entry: a value, or a link in the free list.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Entry<T> {
    Occupied(T),
    Vacant(u32),
}

/// Values addressed by `u32` indexes; an index stays valid until its value
/// is removed, then the next insert may reuse it.
///
/// An engine snapshot writes a slab as it is (entries, free list and all:
/// the order of reuse decides future indexes); [`Slab::check`] validates
/// one read back.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// The last freed vacant entry, or [`NONE`].
    next_free: u32,
    len: u32,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            next_free: NONE,
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores every value of `other` here ([`insert`](Self::insert), in
    /// index order); returns where each went, by its index in `other` (a
    /// vacant entry's is `u32::MAX`).
    pub fn absorb(&mut self, other: Slab<T>) -> Moves {
        let mut moves = vec![u32::MAX; other.entries.len()];
        for (index, entry) in other.entries.into_iter().enumerate() {
            if let Entry::Occupied(value) = entry {
                moves[index] = self.insert(value);
            }
        }
        Moves(moves)
    }

    /// Every value with its index, the slab consumed.
    pub fn into_values(self) -> impl Iterator<Item = (u32, T)> {
        (self.entries.into_iter().enumerate()).filter_map(|(index, entry)| match entry {
            Entry::Occupied(value) => Some((index as u32, value)),
            Entry::Vacant(_) => None,
        })
    }

    /// Stores `value`, in the last freed entry if there is one; returns its
    /// index.
    ///
    /// Panics when the slab would hold `u32::MAX` entries (2^32 values in
    /// memory at once).
    #[inline]
    pub fn insert(&mut self, value: T) -> u32 {
        if self.next_free != NONE {
            self.len += 1;
            let index = self.next_free;
            let entry = &mut self.entries[index as usize];
            if let Entry::Vacant(next) = *entry {
                self.next_free = next;
            }
            *entry = Entry::Occupied(value);
            return index;
        }
        self.append(value)
    }

    /// [`insert`](Self::insert) with no freed entry: `value` goes at the
    /// end, the storage grown by an eighth ([`grow_by`]) when it is full.
    /// (Out of line: the reuse of a freed entry is the common path.)
    #[inline(never)]
    fn append(&mut self, value: T) -> u32 {
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NONE)
            .expect("a slab holds fewer than 2^32 - 1 values");
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact(grow_by(self.entries.len()));
        }
        self.entries.push(Entry::Occupied(value));
        self.len += 1;
        index
    }

    /// Drops the value at `index` where it lies; its entry is reused by
    /// the next insert. Returns whether there was a value.
    #[inline]
    pub fn delete(&mut self, index: u32) -> bool {
        match self.entries.get_mut(index as usize) {
            Some(entry @ Entry::Occupied(_)) => {
                *entry = Entry::Vacant(self.next_free);
                self.next_free = index;
                self.len -= 1;
                true
            }
            _ => false,
        }
    }

    /// Calls `f` with the value at `index` and drops the value where it
    /// lies when `f` returns true (as [`delete`](Self::delete) does): one
    /// lookup to count down a reference and free the entry on the last
    /// one. Returns whether the value went; false, without calling `f`,
    /// when there is no value there.
    #[inline]
    pub fn delete_if(&mut self, index: u32, f: impl FnOnce(&mut T) -> bool) -> bool {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return false;
        };
        let Entry::Occupied(value) = entry else {
            return false;
        };
        if !f(value) {
            return false;
        }
        *entry = Entry::Vacant(self.next_free);
        self.next_free = index;
        self.len -= 1;
        true
    }

    /// The value at `index`, if there is one.
    #[inline]
    pub fn get(&self, index: u32) -> Option<&T> {
        match self.entries.get(index as usize) {
            Some(Entry::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    /// The value at `index`, if there is one, mutably.
    #[inline]
    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        match self.entries.get_mut(index as usize) {
            Some(Entry::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Holds no value?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entries, occupied or vacant (the highest index + 1).
    #[inline]
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Moves the values to the front, keeping their order, and gives back
    /// the storage's spare room: no vacant entry is left. Returns where
    /// each old index went ([`Moves`]), for the caller to fix the indexes
    /// it holds; `None` when no value moved (no entry was vacant before
    /// the last value). For
    /// changes of rules, which can leave vacant entries anywhere
    /// (`docs/dynamic-rules.md`).
    pub fn compact(&mut self) -> Option<Moves> {
        if self.len as usize == self.entries.len() {
            self.entries.shrink_to_fit();
            return None;
        }
        let mut to = Vec::with_capacity(self.entries.len());
        let mut next = 0;
        for entry in &self.entries {
            to.push(match entry {
                Entry::Occupied(_) => {
                    let index = next;
                    next += 1;
                    index
                }
                Entry::Vacant(_) => NONE,
            });
        }
        self.entries
            .retain(|entry| matches!(entry, Entry::Occupied(_)));
        self.entries.shrink_to_fit();
        self.next_free = NONE;
        // (only a vacant end went: every value kept its index)
        let moved = (to.iter().enumerate()).any(|(i, &to)| to != NONE && to != i as u32);
        moved.then_some(Moves(to))
    }

    /// Every value with its index, mutably, in index order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> + '_ {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, entry)| match entry {
                Entry::Occupied(value) => Some((i as u32, value)),
                Entry::Vacant(_) => None,
            })
    }

    /// Bytes per entry (a value's size when the value has a niche).
    pub fn entry_size() -> usize {
        std::mem::size_of::<Entry<T>>()
    }

    /// Checks a slab read back from outside (a snapshot): the free list
    /// threads every vacant entry exactly once, `len` counts the values,
    /// and there are fewer than 2^32 - 1 entries.
    pub fn check(&self) -> Result<(), crate::error::Inconsistent> {
        if self.entries.len() >= NONE as usize {
            return Err("a slab with 2^32 entries or more".into());
        }
        let occupied = self.iter().count();
        if occupied != self.len as usize {
            return Err(format!("a slab counts {} values but holds {occupied}", self.len).into());
        }
        let mut seen = vec![false; self.entries.len()];
        let mut at = self.next_free;
        let mut vacant = 0;
        while at != NONE {
            let i = at as usize;
            match self.entries.get(i) {
                Some(Entry::Vacant(next)) if !seen[i] => {
                    seen[i] = true;
                    vacant += 1;
                    at = *next;
                }
                Some(Entry::Vacant(_)) => return Err("a slab's free list has a cycle".into()),
                Some(Entry::Occupied(_)) => {
                    return Err(format!("a slab's free list holds the occupied entry {i}").into())
                }
                None => return Err(format!("a slab's free list leads out of it ({i})").into()),
            }
        }
        if occupied + vacant != self.entries.len() {
            return Err("a slab has vacant entries outside its free list".into());
        }
        Ok(())
    }

    /// Every value with its index, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| match entry {
                Entry::Occupied(value) => Some((i as u32, value)),
                Entry::Vacant(_) => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_entries_are_reused_last_freed_first() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        let c = slab.insert("c");
        assert_eq!((a, b, c, slab.len()), (0, 1, 2, 3));
        assert!(slab.delete(a));
        assert!(slab.delete(c));
        assert!(!slab.delete(c));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.insert("d"), c);
        assert_eq!(slab.insert("e"), a);
        assert_eq!(slab.insert("f"), 3);
        *slab.get_mut(b).unwrap() = "B";
        let all: Vec<_> = slab.iter().collect();
        assert_eq!(all, vec![(0, &"e"), (1, &"B"), (2, &"d"), (3, &"f")]);
        assert_eq!((slab.len(), slab.entries()), (4, 4));
        assert_eq!(slab.get(99), None);
        assert!(!slab.delete(99));
        assert!(slab.delete(b));
        assert_eq!((slab.len(), slab.insert("g")), (3, b));
    }

    #[test]
    fn a_full_slab_grows_by_an_eighth() {
        let mut slab: Slab<u64> = Slab::default();
        slab.insert(0);
        assert_eq!(slab.entries.capacity(), 16);
        for v in 1..200 {
            slab.insert(v);
        }
        // 16 at a time up to 128, then an eighth: 144, 162, 182, 204
        assert_eq!(slab.entries.capacity(), 204);
        slab.delete(7);
        slab.insert(7);
        assert_eq!((slab.entries(), slab.entries.capacity()), (200, 204));
    }

    #[test]
    fn compaction_moves_the_values_to_the_front_in_order() {
        let mut slab = Slab::default();
        for v in 0..40u64 {
            slab.insert(v);
        }
        for i in [1, 6, 3, 39, 20] {
            slab.delete(i);
        }
        let moves = slab.compact().unwrap();
        slab.check().unwrap();
        assert_eq!((slab.len(), slab.entries()), (35, 35));
        assert_eq!(slab.entries.capacity(), 35);
        assert_eq!((moves.get(0), moves.get(2), moves.get(4)), (0, 1, 2));
        assert_eq!((moves.get(7), moves.get(21), moves.get(38)), (4, 17, 34));
        for (old, value) in [(0, 0), (2, 2), (7, 7), (21, 21), (38, 38)] {
            assert_eq!(slab.get(moves.get(old)), Some(&value));
        }
        assert_eq!(slab.insert(99), 35);
        // Nothing to move: only the spare room goes.
        slab.delete(35);
        assert!(slab.compact().is_none());
        assert_eq!((slab.entries(), slab.entries.capacity()), (35, 35));
        slab.check().unwrap();
    }

    #[test]
    fn a_checked_slab_has_one_free_list_over_its_vacant_entries() {
        let mut slab = Slab::default();
        for i in 0..5 {
            slab.insert(i);
        }
        slab.delete(1);
        slab.delete(3);
        assert_eq!(slab.check(), Ok(()));
        let mut bad = slab.clone();
        bad.len = 4;
        assert!(bad.check().is_err());
        let mut bad = slab.clone();
        bad.next_free = 1; // 3 is left out
        assert!(bad.check().is_err());
        let mut bad = slab.clone();
        bad.entries[1] = Entry::Vacant(3); // 3 -> 1 -> 3
        assert!(bad.check().is_err());
        let mut bad = slab.clone();
        bad.next_free = 0;
        assert!(bad.check().is_err());
        let mut bad = slab;
        bad.next_free = 9;
        assert!(bad.check().is_err());
    }

    #[test]
    fn a_value_with_a_niche_costs_no_tag() {
        // A bool's spare values mark vacant entries.
        #[allow(dead_code)]
        struct WithFlag(u64, u32, bool);
        assert_eq!(Slab::<WithFlag>::entry_size(), 16);
    }
}
