//! Flink's `SharedBuffer` and `SharedBufferAccessor`, with the value types
//! they use (`EventId`, `NodeId`, `DeweyNumber`, `Lockable` reference counts).
//!
//! Nodes are keyed by (event, *original* state name), so every run that takes
//! one event into one stage shares one node; edges point back to the previous
//! node and carry the Dewey version of the run that added them. Reference
//! counts decide when an edge or a node disappears, and a vanished edge
//! changes what later extractions find, so the counts are kept exactly as
//! Flink keeps them (including `Lockable.release` on a count already at zero
//! and `releaseNode` stopping at the first missing node).
//!
//! Where Flink would throw (a `NullPointerException` on a missing node, a
//! failed `checkState`), the functions here return `Err` with the Java
//! exception's name.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use smallvec::SmallVec;

/// What Flink throws, as text (`NullPointerException: ...`).
pub type Fail = String;

/// Flink's `EventId`: the event's timestamp and its rank among the events
/// registered with that timestamp. Ordered by time, then rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventId {
    /// Rank among registered events of the same timestamp.
    pub id: i32,
    /// Event time.
    pub ts: i64,
}

impl Ord for EventId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.id).cmp(&(other.ts, other.id))
    }
}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Flink's `NodeId`: an event and the original name of the state (the
/// "page") it was taken into, as an index into the graph's page table.
/// When one NFA runs several graphs (the expansions of a pattern with
/// alternation, [`super::nfa`]), the graph too: each graph's nodes are its
/// own (their Dewey versions are numbered per graph), the events shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId {
    /// The taken event.
    pub event: EventId,
    /// Index of the original state name in its graph's page table.
    pub page: usize,
    /// The graph (0 for an NFA of one graph, as Flink's).
    pub graph: usize,
}

/// Flink's `DeweyNumber`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dewey(SmallVec<[i32; 6]>);

impl Dewey {
    /// `new DeweyNumber(start)`.
    pub fn new(start: i32) -> Dewey {
        Dewey(smallvec::smallvec![start])
    }

    /// `increase(times)`: adds to the last digit.
    pub fn increase(&self, times: i32) -> Dewey {
        let mut d = self.0.clone();
        let last = d.len() - 1;
        d[last] += times;
        Dewey(d)
    }

    /// `addStage()`: appends a zero digit.
    pub fn add_stage(&self) -> Dewey {
        let mut d = self.0.clone();
        d.push(0);
        Dewey(d)
    }

    /// `isCompatibleWith(other)`: `other` is a prefix of `self`, or both
    /// have the same length, equal digits but the last, and `self`'s last
    /// digit is at least `other`'s.
    pub fn is_compatible_with(&self, other: &Dewey) -> bool {
        let (a, b) = (&self.0, &other.0);
        let same = |n: usize| (0..n).all(|i| a[i] == b[i]);
        match a.len().cmp(&b.len()) {
            Ordering::Greater => same(b.len()),
            Ordering::Equal => {
                let last = a.len() - 1;
                same(last) && a[last] >= b[last]
            }
            Ordering::Less => false,
        }
    }
}

impl std::fmt::Display for Dewey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(i32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// `Lockable.release()`: true when the count is (or already was) zero.
fn release(refs: &mut i32) -> bool {
    if *refs <= 0 {
        return true;
    }
    *refs -= 1;
    *refs == 0
}

struct Edge {
    target: Option<NodeId>,
    version: Dewey,
    refs: i32,
}

struct Node {
    refs: i32,
    edges: Vec<Edge>,
}

struct StoredEvent {
    /// Index of the event in the input.
    index: usize,
    refs: i32,
}

/// One extracted path: pages in order of their first event, each with its
/// events in order (Flink's `LinkedHashMap<String, List<EventId>>`).
pub type PathMap = Vec<(usize, Vec<EventId>)>;

/// The buffer of one partition.
#[derive(Default)]
pub struct SharedBuffer {
    entries: HashMap<NodeId, Node>,
    events: HashMap<EventId, StoredEvent>,
    counts: BTreeMap<i64, i32>,
    /// Edges visited so far (the reference's work budget).
    pub work: usize,
}

impl SharedBuffer {
    /// `registerEvent`: the next rank for this timestamp, reference count 1.
    pub fn register_event(&mut self, index: usize, ts: i64) -> EventId {
        let count = self.counts.entry(ts).or_insert(0);
        let id = EventId { id: *count, ts };
        *count += 1;
        self.events.insert(id, StoredEvent { index, refs: 1 });
        id
    }

    /// `SharedBuffer.advanceTime`: forgets the ranks of earlier timestamps.
    pub fn advance_time(&mut self, ts: i64) {
        self.counts.retain(|t, _| *t >= ts);
    }

    /// `put`: adds an edge from the node (event, page) of `graph` back to
    /// `previous`.
    pub fn put(
        &mut self,
        graph: usize,
        page: usize,
        event: EventId,
        previous: Option<NodeId>,
        version: &Dewey,
    ) -> Result<NodeId, Fail> {
        if let Some(prev) = previous {
            self.lock_node(prev, version);
        }
        let id = NodeId { event, page, graph };
        if !self.entries.contains_key(&id) {
            self.lock_event(event)?;
            let node = Node {
                refs: 0,
                edges: Vec::new(),
            };
            self.entries.insert(id, node);
        }
        let node = self.entries.get_mut(&id).expect("just inserted");
        node.edges.push(Edge {
            target: previous,
            version: version.clone(),
            refs: 0,
        });
        Ok(id)
    }

    /// `lockNode`: the node and its edges compatible with `version`.
    pub fn lock_node(&mut self, id: NodeId, version: &Dewey) {
        if let Some(node) = self.entries.get_mut(&id) {
            self.work += node.edges.len();
            node.refs += 1;
            for edge in &mut node.edges {
                if version.is_compatible_with(&edge.version) {
                    edge.refs += 1;
                }
            }
        }
    }

    fn lock_event(&mut self, id: EventId) -> Result<(), Fail> {
        match self.events.get_mut(&id) {
            Some(e) => {
                e.refs += 1;
                Ok(())
            }
            None => Err(format!(
                "IllegalStateException: Referring to non existent event with id {id:?}"
            )),
        }
    }

    /// `releaseEvent`.
    pub fn release_event(&mut self, id: EventId) {
        if let Some(e) = self.events.get_mut(&id) {
            if release(&mut e.refs) {
                self.events.remove(&id);
            }
        }
    }

    /// `releaseNode`: walks back from `id`, releasing compatible edges and
    /// the nodes whose count drops to zero.
    pub fn release_node(&mut self, id: Option<NodeId>, version: &Dewey) {
        let Some(id) = id else {
            return;
        };
        let mut nodes = vec![id];
        let mut versions = vec![version.clone()];
        while let Some(current) = nodes.pop() {
            let Some(node) = self.entries.get_mut(&current) else {
                break;
            };
            let version = versions.pop().expect("one version per node");
            self.work += node.edges.len();
            let mut kept = Vec::with_capacity(node.edges.len());
            for mut edge in node.edges.drain(..) {
                if version.is_compatible_with(&edge.version) && release(&mut edge.refs) {
                    if let Some(target) = edge.target {
                        nodes.push(target);
                        versions.push(edge.version);
                    }
                } else {
                    kept.push(edge);
                }
            }
            node.edges = kept;
            if release(&mut node.refs) {
                self.entries.remove(&current);
                self.release_event(current.event);
            }
        }
    }

    /// `extractPatterns`: every path back from `id` whose edges are
    /// compatible with the version reached so far, in Flink's stack order.
    pub fn extract_patterns(&mut self, id: NodeId, version: &Dewey) -> Result<Vec<PathMap>, Fail> {
        let mut result = Vec::new();
        if !self.entries.contains_key(&id) {
            return Ok(result);
        }
        let mut stack: Vec<(Option<NodeId>, Dewey, Vec<NodeId>)> =
            vec![(Some(id), version.clone(), Vec::new())];
        while let Some((entry, version, mut path)) = stack.pop() {
            let Some(current) = entry else {
                let mut complete: PathMap = Vec::new();
                while let Some(node) = path.pop() {
                    match complete.iter_mut().find(|(p, _)| *p == node.page) {
                        Some((_, ids)) => ids.push(node.event),
                        None => complete.push((node.page, vec![node.event])),
                    }
                }
                result.push(complete);
                continue;
            };
            path.push(current);
            let node = &self.entries[&current];
            self.work += node.edges.len() + path.len();
            for edge in &node.edges {
                if version.is_compatible_with(&edge.version) {
                    if let Some(target) = edge.target {
                        if !self.entries.contains_key(&target) {
                            return Err("NullPointerException: extractPatterns reached a \
                                        released node"
                                .into());
                        }
                    }
                    stack.push((edge.target, edge.version.clone(), path.clone()));
                }
            }
        }
        Ok(result)
    }

    /// `materializeMatch`: event ids to input indices.
    pub fn materialize(&self, path: &PathMap) -> Result<Vec<(usize, Vec<usize>)>, Fail> {
        path.iter()
            .map(|(page, ids)| {
                let events = ids
                    .iter()
                    .map(|id| {
                        self.events.get(id).map(|e| e.index).ok_or_else(|| {
                            format!("NullPointerException: event {id:?} was released")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((*page, events))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dewey_compatibility() {
        let d = |v: &[i32]| Dewey(v.iter().copied().collect());
        assert!(d(&[1, 0, 0]).is_compatible_with(&d(&[1, 0])));
        assert!(d(&[1, 2]).is_compatible_with(&d(&[1, 1])));
        assert!(!d(&[1, 1]).is_compatible_with(&d(&[1, 2])));
        assert!(!d(&[1]).is_compatible_with(&d(&[1, 0])));
        assert!(!d(&[2, 0]).is_compatible_with(&d(&[1])));
    }
}
