//! `java.util.PriorityQueue` as in JDK 17, element for element: an array
//! heap with the JDK's `siftUp` / `siftDown`, `offer`, `poll`, `peek`,
//! iteration in array order, and `removeIf` / `removeAll` as `bulkRemove`
//! (survivors keep their array order, then `heapify`).
//!
//! Flink keeps partial and completed matches in such queues; the order in
//! which it visits them (array order) and which of two equal-priority
//! matches it releases first are visible in its output, so the reference
//! reproduces the array exactly rather than using any heap with the same
//! ordering.

use std::cmp::Ordering;

/// A priority queue with a fixed comparator.
pub struct JavaPriorityQueue<T> {
    es: Vec<T>,
    cmp: fn(&T, &T) -> Ordering,
}

impl<T> JavaPriorityQueue<T> {
    /// `new PriorityQueue<>(comparator)`.
    pub fn new(cmp: fn(&T, &T) -> Ordering) -> Self {
        JavaPriorityQueue {
            es: Vec::new(),
            cmp,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.es.len()
    }

    /// No element?
    pub fn is_empty(&self) -> bool {
        self.es.is_empty()
    }

    /// The elements in array order (the JDK iterator's order).
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.es.iter()
    }

    /// Takes every element out, in array order.
    pub fn drain(&mut self) -> Vec<T> {
        std::mem::take(&mut self.es)
    }

    /// `offer` (also `add`): append, then sift up.
    pub fn offer(&mut self, x: T) {
        self.es.push(x);
        self.sift_up(self.es.len() - 1);
    }

    /// `peek`.
    pub fn peek(&self) -> Option<&T> {
        self.es.first()
    }

    /// `poll`: the head; the last element moves to the root and sifts down.
    pub fn poll(&mut self) -> Option<T> {
        let last = self.es.pop()?;
        if self.es.is_empty() {
            return Some(last);
        }
        let head = std::mem::replace(&mut self.es[0], last);
        let n = self.es.len();
        self.sift_down(0, n);
        Some(head)
    }

    /// `removeIf(filter)` (and `removeAll(c)` as `removeIf(c::contains)`):
    /// nothing changes unless some element matches; otherwise the
    /// survivors are compacted in array order and the array re-heapified.
    pub fn remove_if(&mut self, mut filter: impl FnMut(&T) -> bool) -> bool {
        let flags: Vec<bool> = self.es.iter().map(&mut filter).collect();
        if !flags.iter().any(|f| *f) {
            return false;
        }
        let mut i = 0;
        self.es.retain(|_| {
            let keep = !flags[i];
            i += 1;
            keep
        });
        self.heapify();
        true
    }

    /// `remove(o)` of the element at array index `i` (JDK's `removeAt`):
    /// the last element moves to `i` and sifts down, else up.
    pub fn remove_at(&mut self, i: usize) -> T {
        let last = self.es.len() - 1;
        if i == last {
            return self.es.pop().expect("in range");
        }
        let removed = self.es.swap_remove(i);
        let n = self.es.len();
        if self.sift_down(i, n) == i {
            self.sift_up(i);
        }
        removed
    }

    fn sift_up(&mut self, mut k: usize) {
        while k > 0 {
            let parent = (k - 1) >> 1;
            if (self.cmp)(&self.es[k], &self.es[parent]) != Ordering::Less {
                break;
            }
            self.es.swap(k, parent);
            k = parent;
        }
    }

    /// Sifts the element at `k` down; returns where it stopped.
    fn sift_down(&mut self, mut k: usize, n: usize) -> usize {
        let half = n >> 1;
        while k < half {
            let mut child = (k << 1) + 1;
            let right = child + 1;
            if right < n && (self.cmp)(&self.es[child], &self.es[right]) == Ordering::Greater {
                child = right;
            }
            if (self.cmp)(&self.es[k], &self.es[child]) != Ordering::Greater {
                break;
            }
            self.es.swap(k, child);
            k = child;
        }
        k
    }

    fn heapify(&mut self) {
        let n = self.es.len();
        for i in (0..n >> 1).rev() {
            self.sift_down(i, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elements `(key, tag)` ordered by key only, so ties show the layout.
    fn queue() -> JavaPriorityQueue<(u8, char)> {
        JavaPriorityQueue::new(|a, b| a.0.cmp(&b.0))
    }

    #[test]
    fn ties_keep_the_jdk_layout() {
        let mut q = queue();
        for x in [(1, 'a'), (1, 'b'), (0, 'c'), (1, 'd'), (0, 'e')] {
            q.offer(x);
        }
        // Printed by JDK 17's PriorityQueue on the same input.
        let layout: String = q.iter().map(|x| x.1).collect();
        assert_eq!(layout, "ceadb");
        let order: String = std::iter::from_fn(|| q.poll()).map(|x| x.1).collect();
        assert_eq!(order, "cedab");
    }

    #[test]
    fn remove_at_moves_the_last_element_as_the_jdk_does() {
        let mut q = queue();
        for x in [(1, 'a'), (1, 'b'), (0, 'c'), (1, 'd'), (0, 'e')] {
            q.offer(x);
        }
        // `ceadb`: removing `e` (index 1) moves `b` there; it sifts
        // neither down (`d` is not smaller) nor up (`c` is smaller).
        assert_eq!(q.remove_at(1), (0, 'e'));
        assert_eq!(q.iter().map(|x| x.1).collect::<String>(), "cbad");
        // Removing the root is `poll`.
        assert_eq!(q.remove_at(0), (0, 'c'));
        assert_eq!(q.iter().map(|x| x.1).collect::<String>(), "dba");
        // The last element goes as it is.
        assert_eq!(q.remove_at(2), (1, 'a'));
        assert_eq!(q.iter().map(|x| x.1).collect::<String>(), "db");
    }

    #[test]
    fn bulk_remove_compacts_then_heapifies() {
        let mut q = queue();
        for x in [
            (1, 'a'),
            (1, 'b'),
            (0, 'c'),
            (1, 'd'),
            (0, 'e'),
            (2, 'f'),
            (1, 'g'),
        ] {
            q.offer(x);
        }
        q.remove_if(|x| x.1 == 'c');
        assert_eq!(q.iter().map(|x| x.1).collect::<String>(), "eadbfg");
        q.remove_if(|x| x.1 == 'e');
        assert_eq!(q.iter().map(|x| x.1).collect::<String>(), "adbfg");
    }
}
