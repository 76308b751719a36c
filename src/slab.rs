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
//! the vacant entries), exactly as the `Vec` free lists this replaces did:
//! the engine's slot order (which orders deadlines of equal time) is the
//! same.

/// A vacant entry's link to the next vacant entry: none.
const NONE: u32 = u32::MAX;

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
pub(crate) struct Slab<T> {
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
    /// Stores `value`, in the last freed entry if there is one; returns its
    /// index.
    ///
    /// Panics when the slab would hold `u32::MAX` entries (2^32 values in
    /// memory at once).
    #[inline]
    pub fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if self.next_free != NONE {
            let index = self.next_free;
            let entry = &mut self.entries[index as usize];
            if let Entry::Vacant(next) = *entry {
                self.next_free = next;
            }
            *entry = Entry::Occupied(value);
            return index;
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NONE)
            .expect("a slab holds fewer than 2^32 - 1 values");
        self.entries.push(Entry::Occupied(value));
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

    /// Does the next [`insert`](Self::insert) allocate (no freed entry to
    /// reuse, and the storage is at capacity)? Lets a caller grow the slab
    /// its own way first ([`reserve_exact`](Self::reserve_exact)).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.next_free == NONE && self.entries.len() == self.entries.capacity()
    }

    /// Number of entries, occupied or vacant (the highest index + 1).
    #[inline]
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Makes room for `additional` more entries beyond the current ones.
    pub fn reserve_exact(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
    }

    /// Gives back the space of the vacant entries at the end (the free
    /// list keeps its order over the others) and of the storage's spare
    /// room. For changes of rules, which can leave a slab mostly empty:
    /// the removed pattern's memory is freed (`docs/dynamic-rules.md`).
    pub fn trim(&mut self) {
        let mut end = self.entries.len();
        while end > 0 && matches!(self.entries[end - 1], Entry::Vacant(_)) {
            end -= 1;
        }
        if end < self.entries.len() {
            // Unlink the entries at `end` and beyond from the free list.
            let mut prev = NONE;
            let mut at = self.next_free;
            while let Some(Entry::Vacant(next)) = self.entries.get(at as usize) {
                let next = *next;
                if at as usize >= end {
                    match self.entries.get_mut(prev as usize) {
                        Some(Entry::Vacant(link)) => *link = next,
                        _ => self.next_free = next,
                    }
                } else {
                    prev = at;
                }
                at = next;
            }
            self.entries.truncate(end);
        }
        self.entries.shrink_to_fit();
    }

    /// Bytes per entry (a value's size when the value has a niche).
    #[cfg(test)]
    pub fn entry_size() -> usize {
        std::mem::size_of::<Entry<T>>()
    }

    /// Checks a slab read back from outside (a snapshot): the free list
    /// threads every vacant entry exactly once, `len` counts the values,
    /// and there are fewer than 2^32 - 1 entries.
    pub fn check(&self) -> Result<(), String> {
        if self.entries.len() >= NONE as usize {
            return Err("a slab with 2^32 entries or more".into());
        }
        let occupied = self.iter().count();
        if occupied != self.len as usize {
            return Err(format!(
                "a slab counts {} values but holds {occupied}",
                self.len
            ));
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
                    return Err(format!("a slab's free list holds the occupied entry {i}"))
                }
                None => return Err(format!("a slab's free list leads out of it ({i})")),
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
    fn trim_frees_the_vacant_end_and_keeps_the_free_list_order() {
        let mut slab = Slab::default();
        for v in 0..8u64 {
            slab.insert(v);
        }
        // Vacant: 1, 6, 3, 7, 5 (freed in that order).
        for i in [1, 6, 3, 7, 5] {
            slab.delete(i);
        }
        slab.trim();
        assert_eq!(slab.entries(), 5);
        assert_eq!(slab.entries.capacity(), 5);
        slab.check().unwrap();
        // The free list keeps its order over 1 and 3: 3 first (last freed).
        assert_eq!(slab.insert(10), 3);
        assert_eq!(slab.insert(11), 1);
        assert_eq!(slab.insert(12), 5);
        for i in 0..6 {
            slab.delete(i);
        }
        slab.trim();
        assert_eq!(
            (slab.entries(), slab.len(), slab.entries.capacity()),
            (0, 0, 0)
        );
        slab.check().unwrap();
        assert_eq!(slab.insert(1), 0);
    }

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
    fn growth_is_the_callers_choice() {
        let mut slab: Slab<u64> = Slab::default();
        assert!(slab.is_full());
        slab.reserve_exact(2);
        assert!(!slab.is_full());
        slab.insert(1);
        slab.insert(2);
        assert!(slab.is_full());
        slab.delete(0);
        assert!(!slab.is_full());
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
