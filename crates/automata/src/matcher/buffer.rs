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
use crate::slab::{Moves, Slab};

/// An event stored in a [`SharedBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventRef(pub u32);

/// A node of the buffer (`u32::MAX` stands for "no node").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NodeRef(pub u32);

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

/// Where [`SharedBuffer::compact`] moved each node.
#[derive(Debug)]
pub struct NodeMoves(Moves);

impl NodeMoves {
    /// The node's new reference ([`NodeRef::NONE`] stays itself).
    #[inline]
    pub fn get(&self, node: NodeRef) -> NodeRef {
        if node == NodeRef::NONE {
            node
        } else {
            NodeRef(self.0.get(node.0))
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EventSlot<E> {
    value: E,
    ts: Timestamp,
    seq: u64,
    refs: u32,
    pinned: bool,
}

/// A TAKE: 16 bytes, and 16 as a slab entry too (the stage is stored plus
/// one, so that zero is spare and marks a vacant entry). A snapshot writes
/// it as `(event, prev, refs, stage + 1)`.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(into = "NodeRepr", try_from = "NodeRepr")]
struct Node {
    event: EventRef,
    prev: NodeRef,
    refs: u32,
    stage_plus_one: NonZeroU16,
}

/// A [`Node`] as a snapshot writes it.
#[derive(serde::Serialize, serde::Deserialize)]
struct NodeRepr(u32, u32, u32, u16);

impl From<Node> for NodeRepr {
    fn from(n: Node) -> NodeRepr {
        NodeRepr(n.event.0, n.prev.0, n.refs, n.stage_plus_one.get())
    }
}

impl TryFrom<NodeRepr> for Node {
    type Error = &'static str;

    fn try_from(NodeRepr(event, prev, refs, stage): NodeRepr) -> Result<Node, Self::Error> {
        Ok(Node {
            event: EventRef(event),
            prev: NodeRef(prev),
            refs,
            stage_plus_one: NonZeroU16::new(stage).ok_or("a buffer node of stage 0")?,
        })
    }
}

impl Node {
    #[inline]
    fn stage(&self) -> StageId {
        StageId(self.stage_plus_one.get() - 1)
    }
}

/// Events and partial-match nodes shared by the runs of any number of
/// partitions and patterns.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "SharedBuffer")]
struct SharedBufferState<E> {
    events: Slab<EventSlot<E>>,
    nodes: Slab<Node>,
    next_seq: u64,
}

/// Events and partial-match nodes shared by the runs of any number of
/// partitions and patterns.
pub struct SharedBuffer<E> {
    events: Slab<EventSlot<E>>,
    nodes: Slab<Node>,
    next_seq: u64,
}

/// The snapshot's form of a buffer: its two slabs as they are and the next
/// sequence number (validated by [`SharedBuffer::check`]).
impl<E: serde::Serialize> crate::persist::Save for SharedBuffer<E> {
    fn save<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SharedBufferState::serialize(self, s)
    }
}

impl<E: serde::de::DeserializeOwned> crate::persist::Load for SharedBuffer<E> {
    fn load<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SharedBufferState::deserialize(d)
    }
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

    /// The time of the event a node took (a run's last taken event, so its
    /// match's end); `Timestamp::MAX` for `NodeRef::NONE`, as for the
    /// start run, which took nothing.
    #[inline]
    pub fn node_time(&self, node: NodeRef) -> Timestamp {
        self.nodes
            .get(node.0)
            .and_then(|n| self.events.get(n.event.0))
            .map_or(Timestamp::MAX, |slot| slot.ts)
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

    /// Bytes the buffer holds: its two slabs' entries (vacant ones too:
    /// they stay allocated) and what each stored event holds on the heap
    /// (`event_bytes`). A walk over the stored events: for a measure now
    /// and then, not per event.
    pub fn state_bytes(&self, event_bytes: impl Fn(&E) -> usize) -> usize {
        let slabs = self.events.entries() * Slab::<EventSlot<E>>::entry_size()
            + self.nodes.entries() * Slab::<Node>::entry_size();
        slabs
            + self
                .events
                .iter()
                .map(|(_, slot)| event_bytes(&slot.value))
                .sum::<usize>()
    }

    /// Moves the stored events and nodes to the front of their storage,
    /// keeping their order, and gives back all spare room (after a change
    /// of rules dropped partial matches, whose entries can be anywhere):
    /// the nodes' events and predecessors are renumbered here, and the
    /// caller renumbers every run's and held match's node with what this
    /// returns ([`Partition::renumber`](super::Partition::renumber)).
    /// `None` when no node moved (then no run needs renumbering).
    ///
    /// Only between events: no event may be pinned (its `EventRef`, held
    /// by the engine, would go stale).
    pub fn compact(&mut self) -> Option<NodeMoves> {
        debug_assert!(self.events.iter().all(|(_, slot)| !slot.pinned));
        let events = self.events.compact();
        let nodes = self.nodes.compact();
        if events.is_none() && nodes.is_none() {
            return None;
        }
        for (_, node) in self.nodes.iter_mut() {
            if let Some(events) = &events {
                node.event = EventRef(events.get(node.event.0));
            }
            if let Some(nodes) = &nodes {
                if node.prev != NodeRef::NONE {
                    node.prev = NodeRef(nodes.get(node.prev.0));
                }
            }
        }
        nodes.map(NodeMoves)
    }

    /// Takes in every event and node of `other` (another engine's
    /// buffer, whose runs are of other keys or patterns than this one's):
    /// its events keep their sequence numbers (each run's chain is of one
    /// buffer's events, numbered in their order of arrival there), its
    /// nodes point at their events and predecessors where they went.
    /// Returns where each of its nodes went, for the runs that hold them
    /// (`Partition::renumber`).
    pub fn absorb(&mut self, other: SharedBuffer<E>) -> NodeMoves {
        self.next_seq = self.next_seq.max(other.next_seq);
        let events = self.events.absorb(other.events);
        let nodes = self.nodes.absorb(other.nodes);
        for old in 0..nodes.len() as u32 {
            let new = nodes.get(old);
            let Some(node) = (new != u32::MAX).then(|| self.nodes.get_mut(new)).flatten() else {
                continue;
            };
            node.event = EventRef(events.get(node.event.0));
            if node.prev != NodeRef::NONE {
                node.prev = NodeRef(nodes.get(node.prev.0));
            }
        }
        NodeMoves(nodes)
    }

    /// Records that a run took `ev` into `stage` after the run's node
    /// `prev`. The new node starts with `refs` references (one per run
    /// that will point at it) and takes over one reference to `prev` from
    /// the caller: a run that moves on to the new node hands its reference
    /// over, so `prev` is not touched at all.
    #[inline]
    pub fn put(&mut self, stage: StageId, ev: EventRef, prev: NodeRef, refs: u32) -> NodeRef {
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
    pub fn share(&mut self, node: NodeRef, holders: u32) {
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
    /// One lookup per node and per event: each is counted down and freed
    /// where it lies.
    pub fn release(&mut self, node: NodeRef) {
        let mut at = node;
        loop {
            let mut link = (EventRef(u32::MAX), NodeRef::NONE);
            let freed = self.nodes.delete_if(at.0, |n| {
                n.refs = n.refs.saturating_sub(1);
                link = (n.event, n.prev);
                n.refs == 0
            });
            if !freed {
                return;
            }
            let (event, prev) = link;
            self.events.delete_if(event.0, |slot| {
                slot.refs = slot.refs.saturating_sub(1);
                slot.refs == 0 && !slot.pinned
            });
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
    /// `NodeRef::NONE` (or a freed node).
    #[inline]
    pub fn node(&self, node: NodeRef) -> Option<(EventRef, StageId, NodeRef)> {
        let n = self.nodes.get(node.0)?;
        Some((n.event, n.stage(), n.prev))
    }

    /// Calls `f` for each `(stage, event)` of the chain ending at `node`,
    /// newest first.
    #[inline]
    pub fn walk_back(&self, node: NodeRef, mut f: impl FnMut(StageId, EventRef)) {
        let mut at = node;
        while let Some((ev, stage, prev)) = self.node(at) {
            f(stage, ev);
            at = prev;
        }
    }

    /// Checks a buffer read back from a snapshot against the runs that
    /// hold its nodes (`holders`: each run's node, its pattern, and how
    /// many stages the pattern has), so that what the engine does with it
    /// later cannot panic or loop: slabs well formed, no pinned event (a
    /// snapshot is taken between events), every node's event and
    /// predecessor live, its stage one of its pattern's, reference counts
    /// exactly the references held, no chain that loops, no node that no
    /// run reaches, sequence numbers below the next one.
    pub fn check(&self, holders: &[(NodeRef, u32, u16)]) -> Result<(), cepheid_core::Inconsistent> {
        self.events.check()?;
        self.nodes.check()?;
        let mut event_refs = vec![0u32; self.events.entries()];
        let mut node_refs = vec![0u32; self.nodes.entries()];
        for (i, slot) in self.events.iter() {
            if slot.pinned {
                return Err(format!("event {i} is pinned (taken mid-event)").into());
            }
            if slot.seq >= self.next_seq {
                return Err(format!("event {i} has a sequence number not yet given").into());
            }
        }
        for (i, node) in self.nodes.iter() {
            if self.events.get(node.event.0).is_none() {
                return Err(format!("node {i} holds an event that is not stored").into());
            }
            event_refs[node.event.0 as usize] += 1;
            if node.prev != NodeRef::NONE {
                let Some(count) = node_refs.get_mut(node.prev.0 as usize) else {
                    return Err(format!("node {i} follows a node that does not exist").into());
                };
                *count += 1;
            }
        }
        for &(node, _, _) in holders {
            if node != NodeRef::NONE {
                let Some(count) = node_refs.get_mut(node.0 as usize) else {
                    return Err(
                        format!("a run holds the node {} that does not exist", node.0).into(),
                    );
                };
                *count += 1;
            }
        }
        for (i, slot) in self.events.iter() {
            if slot.refs != event_refs[i as usize] || slot.refs == 0 {
                return Err(format!(
                    "event {i} counts {} references but {} nodes hold it",
                    slot.refs, event_refs[i as usize]
                )
                .into());
            }
        }
        for (i, node) in self.nodes.iter() {
            if node.refs != node_refs[i as usize] || node.refs == 0 {
                return Err(format!(
                    "node {i} counts {} references but {} are held",
                    node.refs, node_refs[i as usize]
                )
                .into());
            }
        }
        // Walk every run's chain once: `owner` is the pattern whose runs
        // reach a node (plus one; 0 for none yet), `u32::MAX` while the
        // current walk is on it.
        const WALKING: u32 = u32::MAX;
        let mut owner = vec![0u32; self.nodes.entries()];
        let mut path = Vec::new();
        for &(node, pattern, stages) in holders {
            let mut at = node;
            path.clear();
            while let Some(n) = self.nodes.get(at.0) {
                let mark = &mut owner[at.0 as usize];
                if *mark == WALKING {
                    return Err(format!("the chain of node {} loops", at.0).into());
                }
                if *mark != 0 {
                    if *mark != pattern + 1 {
                        return Err(
                            format!("node {} is shared by the runs of two patterns", at.0).into(),
                        );
                    }
                    break;
                }
                if n.stage().0 >= stages {
                    return Err(format!("node {} has a stage its pattern lacks", at.0).into());
                }
                *mark = WALKING;
                path.push(at.0);
                at = n.prev;
            }
            for &i in &path {
                owner[i as usize] = pattern + 1;
            }
        }
        if let Some((i, _)) = self.nodes.iter().find(|(i, _)| owner[*i as usize] == 0) {
            return Err(format!("node {i} is held by no run").into());
        }
        Ok(())
    }

    /// The `(stage, event)` pairs of the chain ending at `node`, in the order
    /// they were taken.
    pub fn chain(&self, node: NodeRef) -> Vec<(StageId, EventRef)> {
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
    fn compaction_renumbers_events_nodes_and_their_links() {
        let mut buf = SharedBuffer::new();
        let evs: Vec<_> = (0..6).map(|i| buf.insert(i, i)).collect();
        // Two chains: 0 <- 2 <- 4 and 1 <- 3 <- 5, one node per event.
        let mut tips = [NodeRef::NONE, NodeRef::NONE];
        for (i, &ev) in evs.iter().enumerate() {
            let tip = &mut tips[i % 2];
            *tip = buf.put(StageId(i as u16 / 2), ev, *tip, 1);
        }
        for &ev in &evs {
            buf.release_if_unused(ev);
        }
        // The second chain goes: every other event and node is vacant.
        buf.release(tips[1]);
        assert_eq!((buf.events.entries(), buf.nodes.entries()), (6, 6));
        let moves = buf.compact().unwrap();
        let tip = moves.get(tips[0]);
        assert_eq!(moves.get(NodeRef::NONE), NodeRef::NONE);
        assert_eq!((buf.events.entries(), buf.nodes.entries()), (3, 3));
        let chain: Vec<_> = buf
            .chain(tip)
            .into_iter()
            .map(|(stage, ev)| (stage.0, *buf.get(ev), buf.timestamp(ev)))
            .collect();
        assert_eq!(chain, vec![(0, 0, 0), (1, 2, 2), (2, 4, 4)]);
        buf.check(&[(tip, 0, 3)]).unwrap();
        buf.release(tip);
        assert_eq!((buf.live_events(), buf.live_nodes()), (0, 0));
    }

    #[test]
    fn a_node_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(Slab::<Node>::entry_size(), 16);
    }
}
