//! A min-priority queue for items that mostly arrive in order: the waiting
//! events of the [`Clock`](super::clock::Clock) (by time, then arrival) and
//! the `DeadlineIndex` (by deadline,
//! pattern, slot).
//!
//! An item greater than the last one pushed in order goes to the back of a
//! FIFO, which therefore stays sorted; any other item goes to a min-heap.
//! The first item is the smaller of the two fronts (the FIFO's on a tie).
//! Pushing in order costs O(1) instead of a heap's sift, and items come out
//! exactly in the order of one heap: smallest first (equal items are equal,
//! so which of them comes out first cannot be told apart).
//!
//! Hand-written because no crate has this shape; it is a `VecDeque` and a
//! `BinaryHeap` from `std` side by side.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::slab::grow_by;

/// A FIFO of in-order items plus a min-heap of the rest (see the module
/// docs). With `FRUGAL`, both grow by an eighth ([`grow_by`]) instead of
/// doubling: for a queue whose size follows the live keys. A snapshot
/// writes both parts as they are (the heap in its array order; read back,
/// each item is pushed in that order, which leaves a heap's array as it
/// was).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "T: serde::Serialize",
    deserialize = "T: serde::Deserialize<'de> + Ord"
))]
pub struct FifoHeap<T, const FRUGAL: bool = false> {
    /// Items pushed in increasing order: each greater than the one before.
    in_order: VecDeque<T>,
    /// The other items.
    heap: BinaryHeap<Reverse<T>>,
}

impl<T: Ord, const FRUGAL: bool> Default for FifoHeap<T, FRUGAL> {
    fn default() -> Self {
        FifoHeap {
            in_order: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord, const FRUGAL: bool> FifoHeap<T, FRUGAL> {
    /// A queue of these items, sorted (smallest first).
    pub fn from_sorted(items: Vec<T>) -> Self {
        debug_assert!(items.windows(2).all(|w| w[0] <= w[1]));
        FifoHeap {
            in_order: VecDeque::from(items),
            heap: BinaryHeap::new(),
        }
    }

    /// Items the queue has room for without growing.
    pub fn capacity(&self) -> usize {
        self.in_order.capacity() + self.heap.capacity()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.in_order.len() + self.heap.len()
    }

    /// Holds no item?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Can the item be pushed without growing the queue's storage?
    #[inline]
    pub fn has_room_for(&self, item: &T) -> bool {
        if self.in_order.back().map_or(true, |last| item > last) {
            self.in_order.len() < self.in_order.capacity()
        } else {
            self.heap.len() < self.heap.capacity()
        }
    }

    /// Adds an item.
    #[inline]
    pub fn push(&mut self, item: T) {
        if self.in_order.back().map_or(true, |last| item > *last) {
            if FRUGAL && self.in_order.len() == self.in_order.capacity() {
                self.in_order.reserve_exact(grow_by(self.in_order.len()));
            }
            self.in_order.push_back(item);
        } else {
            if FRUGAL && self.heap.len() == self.heap.capacity() {
                self.heap.reserve_exact(grow_by(self.heap.len()));
            }
            self.heap.push(Reverse(item));
        }
    }

    /// The smallest item, and whether it is the FIFO's front (else the
    /// heap's top).
    #[inline(always)]
    fn first(&self) -> Option<(&T, bool)> {
        match (self.in_order.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) if b < a => Some((b, false)),
            (Some(a), _) => Some((a, true)),
            (None, Some(Reverse(b))) => Some((b, false)),
            (None, None) => None,
        }
    }

    /// The smallest item.
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        self.first().map(|(item, _)| item)
    }

    /// Removes the smallest item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let (_, in_order) = self.first()?;
        self.remove_first(in_order)
    }

    /// Removes the smallest item if `take` says so (it is given the item).
    #[inline(always)]
    pub fn pop_if(&mut self, take: impl FnOnce(&T) -> bool) -> Option<T> {
        let (first, in_order) = self.first()?;
        if !take(first) {
            return None;
        }
        self.remove_first(in_order)
    }

    #[inline(always)]
    fn remove_first(&mut self, in_order: bool) -> Option<T> {
        if in_order {
            self.in_order.pop_front()
        } else {
            self.heap.pop().map(|Reverse(item)| item)
        }
    }

    /// Is the FIFO in increasing order, each item greater than the one
    /// before? (For a queue read back from a snapshot.)
    pub fn is_well_formed(&self) -> bool {
        self.in_order
            .iter()
            .zip(self.in_order.iter().skip(1))
            .all(|(a, b)| a < b)
    }

    /// Every item, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.in_order
            .iter()
            .chain(self.heap.iter().map(|Reverse(item)| item))
    }

    /// Calls `f` on every item, which must leave each item's order among
    /// the others as it was: the queue stays as it is, the heap's array
    /// order included (a snapshot writes it).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut T)) {
        self.in_order.iter_mut().for_each(&mut f);
        let mut items = std::mem::take(&mut self.heap).into_vec();
        for Reverse(item) in &mut items {
            f(item);
        }
        // (a heap already, with no two items equal: heapifying moves none)
        self.heap = BinaryHeap::from(items);
    }

    /// Keeps only the items `keep` says to, in linear time (the FIFO stays
    /// sorted, the rest is heapified again).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.in_order.retain(&mut keep);
        self.heap.retain(|Reverse(item)| keep(item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One operation on a queue, for the property test.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u8),
        Pop,
        /// Pop if the first item is at most this.
        PopIf(u8),
        /// Keep only the items not divisible by this.
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u8>().prop_map(|x| Op::Push(x % 40)),
            3 => Just(Op::Pop),
            2 => any::<u8>().prop_map(|x| Op::PopIf(x % 40)),
            1 => (2u8..6).prop_map(Op::Retain),
        ]
    }

    fn check<const FRUGAL: bool>(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut queue: FifoHeap<(u8, u32), FRUGAL> = FifoHeap::default();
        let mut model: BinaryHeap<Reverse<(u8, u32)>> = BinaryHeap::new();
        // Items tagged with a number that repeats, so that equal items occur.
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Push(x) => {
                    let item = (x, i as u32 % 3);
                    queue.push(item);
                    model.push(Reverse(item));
                }
                Op::Pop => prop_assert_eq!(queue.pop(), model.pop().map(|Reverse(x)| x)),
                Op::PopIf(limit) => {
                    let want = model.peek().filter(|Reverse(x)| x.0 <= limit).is_some();
                    let got = queue.pop_if(|x| x.0 <= limit);
                    let want = if want {
                        model.pop().map(|Reverse(x)| x)
                    } else {
                        None
                    };
                    prop_assert_eq!(got, want);
                }
                Op::Retain(d) => {
                    queue.retain(|x| x.0 % d != 0);
                    model.retain(|Reverse(x)| x.0 % d != 0);
                }
            }
            prop_assert_eq!(queue.len(), model.len());
            prop_assert_eq!(queue.peek(), model.peek().map(|Reverse(x)| x));
        }
        while let Some(Reverse(want)) = model.pop() {
            prop_assert_eq!(queue.pop(), Some(want));
        }
        prop_assert_eq!(queue.pop(), None);
        Ok(())
    }

    proptest! {
        /// Exactly the order of one plain heap, with equal items, `pop_if`
        /// and `retain` in between.
        #[test]
        fn same_order_as_a_single_heap(ops in proptest::collection::vec(op(), 0..300)) {
            check::<false>(&ops)?;
            check::<true>(&ops)?;
        }
    }

    #[test]
    fn in_order_pushes_stay_in_the_fifo() {
        let mut queue: FifoHeap<u32> = FifoHeap::default();
        for x in [1, 2, 2, 3, 0] {
            queue.push(x);
        }
        // 1, 2, 3 in the FIFO; the second 2 and the 0 in the heap.
        assert_eq!(queue.in_order, [1, 2, 3]);
        assert_eq!(queue.heap.len(), 2);
        let order: Vec<u32> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, [0, 1, 2, 2, 3]);
    }

    #[test]
    fn from_sorted_and_pop_if() {
        let mut queue: FifoHeap<u32, true> = FifoHeap::from_sorted(vec![1, 4, 9]);
        assert_eq!(queue.pop_if(|&x| x > 1), None);
        assert_eq!(queue.pop_if(|&x| x == 1), Some(1));
        queue.push(2);
        assert_eq!(queue.peek(), Some(&2));
        queue.push(3);
        assert_eq!(queue.pop(), Some(2));
        assert_eq!(queue.pop(), Some(3));
        assert_eq!(queue.len(), 2);
    }
}
