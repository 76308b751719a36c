//! The shared buffer: events stored once, partial matches as shared chains.
//!
//! Every event the engine offers is inserted once ([`SharedBuffer::insert`])
//! into a slab; it stays unreferenced until some run takes
//! it. A TAKE creates a *node* `(event, stage, previous node)`; a run points
//! at its last node. Runs that fork after a common prefix point at different
//! nodes whose `previous` chains meet, so the prefix is stored once (the
//! SASE+ idea Flink's `SharedBuffer` implements).
//!
//! Flink shares nodes between *different* runs that take the same event into
//! the same state, so a node has several predecessors and Dewey version
//! numbers must tell which predecessor belongs to which run. Here a TAKE
//! always creates a fresh node with exactly one predecessor: walking back
//! from a run's node yields exactly that run's events, and no versions are
//! needed. The cost is one node (16 bytes) per take instead of one per
//! distinct `(event, state)` pair, which is what Flink's edges cost anyway.
//!
//! Nodes and events are reference counted: a run holds its node, a node
//! holds its predecessor and its event, and the engine *pins* an event from
//! `insert` until `release_if_unused`. When the last reference goes, the
//! entry is freed for reuse (events and nodes live in two
//! [`Slab`](crate::slab::Slab)s), so memory returns to zero when no run is
//! left.

use std::num::NonZeroU16;

use crate::primitives::{StageId, Timestamp};
use crate::slab::Slab;

/// An event stored in a [`SharedBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventRef(pub(crate) u32);

/// A node of the buffer (`u32::MAX` stands for "no node").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NodeRef(pub(crate) u32);

impl NodeRef {
    /// No node: the run took nothing yet.
    pub const NONE: NodeRef = NodeRef(u32::MAX);

    /// Is this a real node? (Only a debug check of `MatchView::new` asks.)
    #[cfg(debug_assertions)]
    #[inline]
    pub fn is_some(self) -> bool {
        self.0 != u32::MAX
    }
}

struct EventSlot<E> {
    value: E,
    ts: Timestamp,
    seq: u64,
    refs: u32,
    pinned: bool,
}

/// A TAKE: 16 bytes, and 16 as a slab entry too (the stage is stored plus
/// one, so that zero is spare and marks a vacant entry).
#[derive(Clone, Copy)]
struct Node {
    event: EventRef,
    prev: NodeRef,
    refs: u32,
    stage_plus_one: NonZeroU16,
}

impl Node {
    #[inline]
    fn stage(&self) -> StageId {
        StageId(self.stage_plus_one.get() - 1)
    }
}

/// Events and partial-match nodes shared by the runs of any number of
/// partitions and patterns.
pub struct SharedBuffer<E> {
    events: Slab<EventSlot<E>>,
    nodes: Slab<Node>,
    next_seq: u64,
}

impl<E> Default for SharedBuffer<E> {
    fn default() -> Self {
        SharedBuffer {
            events: Slab::default(),
            nodes: Slab::default(),
            next_seq: 0,
        }
    }
}

impl<E> SharedBuffer<E> {
    /// An empty buffer.
    pub fn new() -> SharedBuffer<E> {
        SharedBuffer::default()
    }

    /// Stores an event; it gets the next arrival sequence number and stays
    /// until [`release_if_unused`](Self::release_if_unused) is called and no
    /// run holds it.
    pub fn insert(&mut self, ts: Timestamp, event: E) -> EventRef {
        let seq = self.next_seq;
        self.next_seq += 1;
        EventRef(self.events.insert(EventSlot {
            value: event,
            ts,
            seq,
            refs: 0,
            pinned: true,
        }))
    }

    /// Unpins an event after every pattern saw it: it is dropped now unless a
    /// run took it (then it goes when the last such run does).
    pub fn release_if_unused(&mut self, ev: EventRef) {
        if let Some(slot) = self.events.get_mut(ev.0) {
            slot.pinned = false;
            self.drop_event_if_free(ev);
        }
    }

    /// The event's slot. Panics if `ev` was already released (a caller bug:
    /// the engine must not use a reference after `release_if_unused`).
    #[inline]
    fn slot(&self, ev: EventRef) -> &EventSlot<E> {
        self.events
            .get(ev.0)
            .expect("EventRef used after the event was released")
    }

    /// The event. Panics if `ev` was already released (a caller bug: the
    /// engine must not use a reference after `release_if_unused`).
    #[inline]
    pub fn get(&self, ev: EventRef) -> &E {
        &self.slot(ev).value
    }

    /// The event's time.
    #[inline]
    pub fn timestamp(&self, ev: EventRef) -> Timestamp {
        self.slot(ev).ts
    }

    /// The event's arrival sequence number (ties of equal times).
    #[inline]
    pub fn sequence(&self, ev: EventRef) -> u64 {
        self.slot(ev).seq
    }

    /// Number of stored events (pinned or taken by some run).
    pub fn live_events(&self) -> usize {
        self.events.len()
    }

    /// Number of partial-match nodes held by runs.
    pub fn live_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Records that a run took `ev` into `stage` after the run's node
    /// `prev`. The new node starts with `refs` references (one per run
    /// that will point at it) and takes over one reference to `prev` from
    /// the caller: a run that moves on to the new node hands its reference
    /// over, so `prev` is not touched at all.
    #[inline]
    pub(crate) fn put(
        &mut self,
        stage: StageId,
        ev: EventRef,
        prev: NodeRef,
        refs: u32,
    ) -> NodeRef {
        if let Some(slot) = self.events.get_mut(ev.0) {
            slot.refs += 1;
        }
        // Stage ids are below `u16::MAX` (the compiler rejects more stages).
        let stage_plus_one = NonZeroU16::MIN.saturating_add(stage.0);
        NodeRef(self.nodes.insert(Node {
            event: ev,
            prev,
            refs,
            stage_plus_one,
        }))
    }

    /// `holders` references to `node` replace one: the node is released
    /// for 0, untouched for 1, retained `holders - 1` more times above.
    #[inline]
    pub(crate) fn share(&mut self, node: NodeRef, holders: u32) {
        match holders {
            0 => self.release(node),
            1 => {}
            n => {
                if let Some(entry) = self.nodes.get_mut(node.0) {
                    entry.refs += n - 1;
                }
            }
        }
    }

    /// A run pointing at `node` is gone: frees the chain as far as nothing
    /// else holds it (a loop, not recursion).
    pub(crate) fn release(&mut self, node: NodeRef) {
        let mut at = node;
        while let Some(n) = self.nodes.get_mut(at.0) {
            n.refs = n.refs.saturating_sub(1);
            if n.refs > 0 {
                return;
            }
            let Some(Node { event, prev, .. }) = self.nodes.remove(at.0) else {
                return;
            };
            if let Some(slot) = self.events.get_mut(event.0) {
                slot.refs = slot.refs.saturating_sub(1);
                self.drop_event_if_free(event);
            }
            at = prev;
        }
    }

    fn drop_event_if_free(&mut self, ev: EventRef) {
        if self
            .events
            .get(ev.0)
            .is_some_and(|slot| slot.refs == 0 && !slot.pinned)
        {
            self.events.delete(ev.0);
        }
    }

    /// The node's event, stage and predecessor; `None` for
    /// [`NodeRef::NONE`] (or a freed node).
    #[inline]
    pub(crate) fn node(&self, node: NodeRef) -> Option<(EventRef, StageId, NodeRef)> {
        let n = self.nodes.get(node.0)?;
        Some((n.event, n.stage(), n.prev))
    }

    /// Calls `f` for each `(stage, event)` of the chain ending at `node`,
    /// newest first.
    #[inline]
    pub(crate) fn walk_back(&self, node: NodeRef, mut f: impl FnMut(StageId, EventRef)) {
        let mut at = node;
        while let Some((ev, stage, prev)) = self.node(at) {
            f(stage, ev);
            at = prev;
        }
    }

    /// The `(stage, event)` pairs of the chain ending at `node`, in the order
    /// they were taken.
    pub(crate) fn chain(&self, node: NodeRef) -> Vec<(StageId, EventRef)> {
        let mut out = Vec::new();
        self.walk_back(node, |s, e| out.push((s, e)));
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_nodes_return_to_zero() {
        let mut buf = SharedBuffer::new();
        let a = buf.insert(1, "a");
        let b = buf.insert(2, "b");
        let n1 = buf.put(StageId(0), a, NodeRef::NONE, 1);
        // n2 and n3 both follow n1: n1 is held by the first run, n2, n3
        buf.share(n1, 3);
        let n2 = buf.put(StageId(1), b, n1, 1);
        let n3 = buf.put(StageId(1), b, n1, 1);
        buf.release_if_unused(a);
        buf.release_if_unused(b);
        assert_eq!((buf.live_events(), buf.live_nodes()), (2, 3));
        assert_eq!(buf.chain(n2), vec![(StageId(0), a), (StageId(1), b)]);
        buf.release(n1);
        buf.release(n2);
        assert_eq!((buf.live_events(), buf.live_nodes()), (2, 2));
        buf.release(n3);
        assert_eq!((buf.live_events(), buf.live_nodes()), (0, 0));
        let c = buf.insert(3, "c");
        assert_eq!(*buf.get(c), "c");
        assert_eq!(buf.sequence(c), 2);
    }

    #[test]
    fn a_node_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(Slab::<Node>::entry_size(), 16);
    }
}
