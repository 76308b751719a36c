//! A binary heap that behaves exactly like `java.util.PriorityQueue`.
//!
//! Flink keeps a partition's runs and held matches in `PriorityQueue`s
//! ordered by start event, iterates them in *array* order, and breaks ties
//! between equal start events by the heap's internal layout. Output order and
//! which held match is released first (which decides pruning under `skip to
//! first/last`) follow from that layout, so this heap reproduces Java's
//! `offer` (sift up), `poll` (sift down of the last element), `removeAll`
//! (stable compaction then `heapify`) and iteration order.

/// Something with a heap key: smaller keys come first.
pub trait Keyed {
    /// The ordering key (start time, start sequence).
    fn key(&self) -> (i64, u64);
}

/// The storage of a [`JavaHeap`]: a `Vec`, or a `SmallVec` (a partition's
/// runs, two of them inline).
pub trait Items<T>: Default + std::ops::DerefMut<Target = [T]> {
    /// Appends an item.
    fn push(&mut self, item: T);
    /// Removes the last item.
    fn pop(&mut self) -> Option<T>;
    /// Keeps the first `len` items.
    fn truncate(&mut self, len: usize);
    /// Removes every item, in order.
    fn drain_all(&mut self) -> impl Iterator<Item = T> + '_;
    /// Removes the items from `at` on, in order.
    fn drain_from(&mut self, at: usize) -> impl Iterator<Item = T> + '_;
}

impl<T> Items<T> for Vec<T> {
    #[inline]
    fn push(&mut self, item: T) {
        Vec::push(self, item)
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
    fn drain_all(&mut self) -> impl Iterator<Item = T> + '_ {
        self.drain(..)
    }
    fn drain_from(&mut self, at: usize) -> impl Iterator<Item = T> + '_ {
        self.drain(at..)
    }
}

impl<A: smallvec::Array> Items<A::Item> for smallvec::SmallVec<A> {
    #[inline]
    fn push(&mut self, item: A::Item) {
        smallvec::SmallVec::push(self, item)
    }
    #[inline]
    fn pop(&mut self) -> Option<A::Item> {
        smallvec::SmallVec::pop(self)
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        smallvec::SmallVec::truncate(self, len)
    }
    fn drain_all(&mut self) -> impl Iterator<Item = A::Item> + '_ {
        self.drain(..)
    }
    fn drain_from(&mut self, at: usize) -> impl Iterator<Item = A::Item> + '_ {
        self.drain(at..)
    }
}

/// A vector allocated (boxed) on first use: 8 bytes while it never held
/// anything (a `Vec` is 24), for a partition's held matches, which most
/// partitions never have. (`thin-vec`'s `ThinVec` is 8 bytes too; these
/// few lines spare a dependency.) A snapshot writes it as the sequence of
/// its items, as a `Vec`.
#[derive(Clone, Debug)]
#[allow(clippy::box_collection)] // the box is the point: 8 bytes, not 24
pub struct LazyVec<T>(Option<Box<Vec<T>>>);

impl<T> Default for LazyVec<T> {
    fn default() -> Self {
        LazyVec(None)
    }
}

impl<T> std::ops::Deref for LazyVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match &self.0 {
            Some(v) => v,
            None => &[],
        }
    }
}

impl<T> std::ops::DerefMut for LazyVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.0 {
            Some(v) => v,
            None => &mut [],
        }
    }
}

impl<T> Items<T> for LazyVec<T> {
    fn push(&mut self, item: T) {
        self.0.get_or_insert_with(Default::default).push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.as_mut()?.pop()
    }
    fn truncate(&mut self, len: usize) {
        if let Some(v) = &mut self.0 {
            v.truncate(len);
        }
    }
    fn drain_all(&mut self) -> impl Iterator<Item = T> + '_ {
        self.0.iter_mut().flat_map(|v| v.drain(..))
    }
    fn drain_from(&mut self, at: usize) -> impl Iterator<Item = T> + '_ {
        self.0.iter_mut().flat_map(move |v| v.drain(at..))
    }
}

impl<T: serde::Serialize> serde::Serialize for LazyVec<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for LazyVec<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        Ok(LazyVec((!items.is_empty()).then(|| Box::new(items))))
    }
}

/// A min-heap with `java.util.PriorityQueue` semantics, over a `Vec` or
/// another [`Items`] storage. A snapshot writes the array as it is.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JavaHeap<T, S = Vec<T>> {
    items: S,
    #[serde(skip)]
    _item: std::marker::PhantomData<T>,
}

impl<T, S: Default> Default for JavaHeap<T, S> {
    fn default() -> Self {
        JavaHeap {
            items: S::default(),
            _item: std::marker::PhantomData,
        }
    }
}

impl<T: Keyed, S: Items<T>> JavaHeap<T, S> {
    /// The storage, in array order.
    #[inline]
    pub fn storage(&self) -> &S {
        &self.items
    }

    /// The storage, to be changed so that the heap property holds again
    /// before another method is called (see [`sift_up`]).
    #[inline]
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.items
    }

    /// Replaces the storage.
    #[inline]
    pub fn set_storage(&mut self, items: S) -> S {
        std::mem::replace(&mut self.items, items)
    }

    /// Number of items.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Is the heap empty?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items in array order (Java's iteration order).
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The smallest item.
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        self.items.first()
    }

    /// Java's `offer`.
    #[inline]
    pub fn offer(&mut self, item: T) {
        self.items.push(item);
        let k = self.items.len() - 1;
        sift_up(&mut self.items, k);
    }

    /// Keeps the first `len` items (which must be a heap).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.items.truncate(len);
    }

    /// Java's `poll`.
    pub fn poll(&mut self) -> Option<T> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let first = std::mem::replace(&mut self.items[0], last);
        sift_down(&mut self.items, 0);
        Some(first)
    }

    /// Java's `removeAt(i)`: the last item takes the place of item `i` and
    /// sifts down, or up when it does not move down.
    pub fn remove_at(&mut self, i: usize) -> Option<T> {
        if i + 1 >= self.items.len() {
            return (i + 1 == self.items.len())
                .then(|| self.items.pop())
                .flatten();
        }
        let moved = self.items.pop()?;
        let removed = std::mem::replace(&mut self.items[i], moved);
        let key = self.items[i].key();
        sift_down(&mut self.items, i);
        if self.items[i].key() == key {
            sift_up(&mut self.items, i);
        }
        Some(removed)
    }

    /// Java's `removeIf`/`removeAll`: removes the matching items (moving them
    /// to `removed`), keeps the others in order, then re-heapifies.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&T) -> bool, removed: &mut Vec<T>) {
        let Some(first) = self.items.iter().position(&mut pred) else {
            return;
        };
        let tail: Vec<T> = self.items.drain_from(first).collect();
        for item in tail {
            if pred(&item) {
                removed.push(item);
            } else {
                self.items.push(item);
            }
        }
        let n = self.items.len();
        let mut i = n / 2;
        while i > 0 {
            i -= 1;
            sift_down(&mut self.items, i);
        }
    }

    /// Is the array a heap (every item at least its parent)? For a heap
    /// read back from a snapshot.
    pub fn is_heap(&self) -> bool {
        (1..self.items.len()).all(|k| self.items[k].key() >= self.items[(k - 1) / 2].key())
    }

    /// Removes every item, in array order.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain_all()
    }
}

/// Java's `siftUp` of the item at `k`: with the first `k` items a heap,
/// the first `k + 1` become one, exactly as Java's `offer` of that item
/// would have made them.
#[inline]
pub fn sift_up<T: Keyed>(items: &mut [T], mut k: usize) {
    let Some(key) = items.get(k).map(Keyed::key) else {
        return;
    };
    while k > 0 {
        let parent = (k - 1) / 2;
        if key >= items[parent].key() {
            break;
        }
        items.swap(k, parent);
        k = parent;
    }
}

/// Java's `siftDown` of the item at `k`.
fn sift_down<T: Keyed>(items: &mut [T], mut k: usize) {
    let n = items.len();
    let half = n / 2;
    while k < half {
        let mut child = 2 * k + 1;
        let right = child + 1;
        if right < n && items[child].key() > items[right].key() {
            child = right;
        }
        if items[k].key() <= items[child].key() {
            break;
        }
        items.swap(k, child);
        k = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct K(i64, u64, &'static str);
    impl Keyed for K {
        fn key(&self) -> (i64, u64) {
            (self.0, self.1)
        }
    }

    fn names(h: &JavaHeap<K>) -> Vec<&'static str> {
        h.iter().map(|k| k.2).collect()
    }

    #[test]
    fn ties_follow_java_layout() {
        // Java: offer a(1) b(1) c(0) -> [c, b, a]; poll -> c, then [a, b]?
        // siftDown of last (a) at 0 with child b: a <= b (equal) stays: [a, b].
        let mut h: JavaHeap<K> = JavaHeap::default();
        h.offer(K(1, 0, "a"));
        h.offer(K(1, 0, "b"));
        h.offer(K(0, 0, "c"));
        assert_eq!(names(&h), vec!["c", "b", "a"]);
        assert_eq!(h.poll().map(|k| k.2), Some("c"));
        assert_eq!(names(&h), vec!["a", "b"]);
    }

    #[test]
    fn remove_at_keeps_a_heap() {
        let mut h: JavaHeap<K> = JavaHeap::default();
        for (i, n) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
            h.offer(K(i as i64 % 3, 0, n));
        }
        // d(0) sifts up above b(1): [a(0), d(0), c(2), b(1), e(1), f(2)]
        assert_eq!(names(&h), vec!["a", "d", "c", "b", "e", "f"]);
        // The last, f, takes c's place: no child, not below its parent.
        assert_eq!(h.remove_at(2).map(|k| k.2), Some("c"));
        assert_eq!(names(&h), vec!["a", "d", "f", "b", "e"]);
        // The last item itself.
        assert_eq!(h.remove_at(4).map(|k| k.2), Some("e"));
        assert_eq!(h.remove_at(7), None);
        // The last, b, takes d's place.
        assert_eq!(h.remove_at(1).map(|k| k.2), Some("d"));
        assert_eq!(names(&h), vec!["a", "b", "f"]);
        assert!(h.is_heap());
    }

    #[test]
    fn remove_compacts_then_heapifies() {
        let mut h: JavaHeap<K> = JavaHeap::default();
        for (i, n) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            h.offer(K(5 - i as i64, 0, n));
        }
        // array: [e(1), d(2), b(4), a(5), c(3)]
        assert_eq!(names(&h), vec!["e", "d", "b", "a", "c"]);
        let mut removed = Vec::new();
        h.remove_where(|k| k.2 == "e", &mut removed);
        // compacted: [d, b, a, c]
        // the heapify of Java: index 1 (b=4) sifts below c=3
        assert_eq!(names(&h), vec!["d", "c", "a", "b"]);
        assert_eq!(removed.len(), 1);
        assert_eq!(h.poll().map(|k| k.2), Some("d"));
    }
}
