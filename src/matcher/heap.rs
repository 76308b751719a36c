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
pub(crate) trait Keyed {
    /// The ordering key (start time, start sequence).
    fn key(&self) -> (i64, u64);
}

/// A min-heap with `java.util.PriorityQueue` semantics.
#[derive(Clone, Debug)]
pub(crate) struct JavaHeap<T> {
    items: Vec<T>,
}

impl<T> Default for JavaHeap<T> {
    fn default() -> Self {
        JavaHeap { items: Vec::new() }
    }
}

impl<T: Keyed> JavaHeap<T> {
    /// A heap reusing `items`' allocation (its contents are cleared).
    pub fn from_vec(mut items: Vec<T>) -> Self {
        items.clear();
        JavaHeap { items }
    }

    /// The backing vector (for reuse), in array order.
    pub fn into_vec(self) -> Vec<T> {
        self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Is the heap empty?
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items in array order (Java's iteration order).
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The smallest item.
    pub fn peek(&self) -> Option<&T> {
        self.items.first()
    }

    /// Java's `offer`.
    pub fn offer(&mut self, item: T) {
        self.items.push(item);
        self.sift_up(self.items.len() - 1);
    }

    /// Java's `poll`.
    pub fn poll(&mut self) -> Option<T> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let first = std::mem::replace(&mut self.items[0], last);
        self.sift_down(0);
        Some(first)
    }

    /// Java's `removeIf`/`removeAll`: removes the matching items (moving them
    /// to `removed`), keeps the others in order, then re-heapifies.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&T) -> bool, removed: &mut Vec<T>) {
        let Some(first) = self.items.iter().position(&mut pred) else {
            return;
        };
        let tail: Vec<T> = self.items.drain(first..).collect();
        for item in tail {
            if pred(&item) {
                removed.push(item);
            } else {
                self.items.push(item);
            }
        }
        self.heapify();
    }

    /// Removes every item, in array order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, T> {
        self.items.drain(..)
    }

    fn heapify(&mut self) {
        let n = self.items.len();
        let mut i = n / 2;
        while i > 0 {
            i -= 1;
            self.sift_down(i);
        }
    }

    fn sift_up(&mut self, mut k: usize) {
        while k > 0 {
            let parent = (k - 1) / 2;
            if self.items[k].key() >= self.items[parent].key() {
                break;
            }
            self.items.swap(k, parent);
            k = parent;
        }
    }

    fn sift_down(&mut self, mut k: usize) {
        let n = self.items.len();
        let half = n / 2;
        while k < half {
            let mut child = 2 * k + 1;
            let right = child + 1;
            if right < n && self.items[child].key() > self.items[right].key() {
                child = right;
            }
            if self.items[k].key() <= self.items[child].key() {
                break;
            }
            self.items.swap(k, child);
            k = child;
        }
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
        let mut h = JavaHeap::default();
        h.offer(K(1, 0, "a"));
        h.offer(K(1, 0, "b"));
        h.offer(K(0, 0, "c"));
        assert_eq!(names(&h), vec!["c", "b", "a"]);
        assert_eq!(h.poll().map(|k| k.2), Some("c"));
        assert_eq!(names(&h), vec!["a", "b"]);
    }

    #[test]
    fn remove_compacts_then_heapifies() {
        let mut h = JavaHeap::default();
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
