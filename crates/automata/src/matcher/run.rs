//! Runs (Flink's computation states) and the partition that holds them.

use super::buffer::{NodeMoves, NodeRef, SharedBuffer};
use super::heap::{JavaHeap, Keyed, LazyVec};
use crate::expr::Accumulators;
use crate::nfa::{Nfa, StateId};
use crate::primitives::Timestamp;

/// One partial match: where it is in the automaton, its last taken event
/// (a node of the shared buffer), and its times. Flink's `ComputationState`
/// without the Dewey version (see the buffer module).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Run {
    /// The state the run waits in.
    pub state: StateId,
    /// The run's last node; `NONE` for the start run.
    pub node: NodeRef,
    /// Time of the first taken event. (The last one's is its node's:
    /// [`SharedBuffer::node_time`].)
    pub start_ts: Timestamp,
    /// Arrival sequence of the first taken event; `u64::MAX` for the start
    /// run (which sorts last, as in Flink).
    pub start_seq: u64,
    /// Running values of the stage references of the pattern's conditions.
    #[serde(with = "crate::persist::via")]
    pub accumulators: Accumulators,
}

impl Run {
    /// The run waiting in the start state, having taken nothing.
    pub fn start(state: StateId, accumulators: Accumulators) -> Run {
        Run {
            state,
            node: NodeRef::NONE,
            start_ts: Timestamp::MAX,
            start_seq: u64::MAX,
            accumulators,
        }
    }

    /// A placeholder for a run moved out of a queue's array (it is never
    /// stepped: the array is cut before it).
    pub fn vacant() -> Run {
        Run::start(StateId(0), Accumulators::default())
    }

    /// Is this the start run (no start event)?
    pub fn is_start(&self) -> bool {
        self.start_seq == u64::MAX
    }
}

impl Keyed for Run {
    fn key(&self) -> (i64, u64) {
        (self.start_ts, self.start_seq)
    }
}

/// A live partition's runs in heap (array) order. The common live
/// partitions need no allocation of their own: three runs are stored
/// inline (the start run and one or two partial matches: `a followed by b`
/// on `a a`).
pub type Runs = smallvec::SmallVec<[Run; 3]>;

/// The runs of a partition: a heap ordered as Java's `PriorityQueue`
/// orders Flink's computation states.
pub type RunHeap = JavaHeap<Run, Runs>;

/// The complete matches a skip strategy holds back: rare, so boxed on
/// first use (8 bytes while there has been none).
pub type HeldHeap = JavaHeap<Run, LazyVec<Run>>;

/// [`Partition::next_deadline`] when there is none (no deadline is this
/// small: a window is at least 1 ms after a time).
const NO_DEADLINE: Timestamp = Timestamp::MIN;

/// The matching state of one partition (key) for one pattern: its live runs
/// and the complete matches held back by a skip strategy. Cheap when idle
/// (one start run); [`is_empty`](Self::is_empty) says when it can be dropped.
#[derive(Clone, Debug)]
pub struct Partition {
    pub(crate) runs: RunHeap,
    pub(crate) completed: HeldHeap,
    /// The next deadline, or [`NO_DEADLINE`].
    deadline: Timestamp,
}

impl Default for Partition {
    fn default() -> Self {
        Partition {
            runs: RunHeap::default(),
            completed: HeldHeap::default(),
            deadline: NO_DEADLINE,
        }
    }
}

/// What a snapshot holds of a partition: the runs and held matches in
/// their heaps' array order, and the cached deadline.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Partition")]
struct PartitionState {
    runs: RunHeap,
    completed: HeldHeap,
    deadline: Timestamp,
}

impl crate::persist::Save for Partition {
    fn save<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PartitionState::serialize(self, s)
    }
}

impl crate::persist::Load for Partition {
    fn load<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PartitionState::deserialize(d)
    }
}

impl Partition {
    /// A fresh partition.
    pub fn new() -> Partition {
        Partition::default()
    }

    /// Does the partition hold nothing but the (implicit) start run, so that
    /// dropping it loses nothing?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty() && self.only_start()
    }

    /// Are the runs at most the start run? (The start run sorts last, so
    /// when the smallest run is a start run every run is.)
    #[inline]
    pub fn only_start(&self) -> bool {
        self.runs.peek().map_or(true, Run::is_start)
    }

    /// Number of partial matches (runs that took at least one event).
    pub fn live_runs(&self) -> usize {
        self.runs.iter().filter(|r| !r.is_start()).count()
    }

    /// [`live_runs`](Self::live_runs) plus
    /// [`held_matches`](Self::held_matches): what the limits on partial
    /// matches count. Without a walk over the runs when the start run is
    /// the last one in the array (it sorts last, and usually stays there).
    #[inline]
    pub fn partial_matches(&self) -> usize {
        let runs: &[Run] = self.runs.storage();
        let starts = match runs.last() {
            None => 0,
            Some(last) if last.is_start() => 1,
            Some(_) => runs.iter().filter(|r| r.is_start()).count(),
        };
        runs.len() - starts + self.completed.len()
    }

    /// Bytes the partition holds on the heap: its runs' array once it no
    /// longer fits inline, and the held matches. (A run's accumulators
    /// beyond their inline size are not counted.)
    pub fn heap_bytes(&self) -> usize {
        let run = std::mem::size_of::<Run>();
        let runs = self.runs.storage();
        let spilled = if runs.spilled() {
            runs.capacity() * run
        } else {
            0
        };
        spilled + self.completed.len() * run
    }

    /// The partial matches (runs that took an event), in the heap's array
    /// order: for a trace of the partition (`cepheid why`), not for
    /// matching.
    pub fn partial_runs(&self) -> impl Iterator<Item = &Run> + '_ {
        self.runs.iter().filter(|r| !r.is_start())
    }

    /// The complete matches a skip strategy holds back, in the heap's
    /// array order (for a trace, as [`partial_runs`](Self::partial_runs)).
    pub fn held_runs(&self) -> impl Iterator<Item = &Run> + '_ {
        self.completed.iter()
    }

    /// Number of complete matches held back by the skip strategy.
    pub fn held_matches(&self) -> usize {
        self.completed.len()
    }

    /// The earliest time at which `advance_time` would expire or complete a
    /// run: the pattern window (`start + within`), an element window
    /// (`previous + within` for a run waiting in such a state), a pending
    /// `not followed by`. `None` when nothing waits for time.
    #[inline]
    pub fn next_deadline(&self) -> Option<Timestamp> {
        (self.deadline != NO_DEADLINE).then_some(self.deadline)
    }

    /// Does [`advance_time`](super::Executor::advance_time) to `t` have
    /// anything to do?
    #[inline]
    pub fn due(&self, t: Timestamp) -> bool {
        (self.deadline != NO_DEADLINE && self.deadline <= t) || !self.completed.is_empty()
    }

    /// Recomputes [`next_deadline`](Self::next_deadline) after the runs
    /// changed. Without element windows it is the pattern window of the
    /// earliest start, the heap's first run: no walk over the runs (and
    /// no call: it ends every step and timeout).
    #[inline(always)]
    pub fn refresh_deadline<E>(&mut self, nfa: &Nfa<E>, buf: &SharedBuffer<E>) {
        if !nfa.has_element_windows() {
            self.deadline = match (nfa.window(), self.runs.peek()) {
                (Some(w), Some(first)) if !first.is_start() => first.start_ts.saturating_add(w),
                _ => NO_DEADLINE,
            };
            return;
        }
        self.walk_deadline(nfa, buf);
    }

    /// [`refresh_deadline`](Self::refresh_deadline) with element windows:
    /// the earliest window of any run.
    #[inline(never)]
    fn walk_deadline<E>(&mut self, nfa: &Nfa<E>, buf: &SharedBuffer<E>) {
        let mut best: Option<Timestamp> = None;
        for run in self.runs.iter().filter(|r| !r.is_start()) {
            if let Some(w) = nfa.window() {
                let t = run.start_ts.saturating_add(w);
                best = Some(best.map_or(t, |b| b.min(t)));
            }
            if let Some(w) = nfa.state(run.state).window {
                let t = buf.node_time(run.node).saturating_add(w);
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        self.deadline = best.unwrap_or(NO_DEADLINE);
    }

    /// Checks a partition read back from a snapshot against its automaton
    /// (so that driving it cannot panic): both heaps in heap order, every
    /// run in a state of `nfa` with accumulators of its layout. Calls
    /// `holder` with each run's and held match's node.
    pub fn check<E>(
        &self,
        nfa: &Nfa<E>,
        mut holder: impl FnMut(NodeRef),
    ) -> Result<(), cepheid_core::Inconsistent> {
        if !self.runs.is_heap() || !self.completed.is_heap() {
            return Err("runs out of heap order".into());
        }
        for run in self.runs.iter().chain(self.completed.iter()) {
            if run.state.index() >= nfa.states().len() {
                return Err(
                    format!("a run in state {} of {}", run.state.0, nfa.states().len()).into(),
                );
            }
            if !nfa.layout().fits(&run.accumulators) {
                return Err("a run's accumulators do not fit its pattern".into());
            }
            holder(run.node);
        }
        Ok(())
    }

    /// Checks, after [`Partition::check`] and the buffer's own check, that
    /// each run's times and start sequence are those of the events its
    /// chain holds (the first taken event's time and arrival, the last
    /// one's time).
    pub fn check_times<E>(&self, buf: &SharedBuffer<E>) -> Result<(), cepheid_core::Inconsistent> {
        for run in self.runs.iter().chain(self.completed.iter()) {
            let (mut first, mut last, mut seq) = (Timestamp::MAX, Timestamp::MIN, None);
            let mut found = false;
            let mut at = run.node;
            while let Some((ev, _, prev)) = buf.node(at) {
                found = true;
                let ts = buf.timestamp(ev);
                first = first.min(ts);
                last = last.max(ts);
                seq = Some(buf.sequence(ev));
                at = prev;
            }
            let fits = if found {
                (first, last, seq) == (run.start_ts, buf.node_time(run.node), Some(run.start_seq))
            } else {
                run.is_start()
            };
            if !fits {
                return Err("a run's times are not those of its events".into());
            }
        }
        Ok(())
    }

    /// Points every run and held match at its node's new place after the
    /// buffer was [compacted](SharedBuffer::compact) (their order does not
    /// change: it is by start event).
    pub fn renumber(&mut self, moves: &NodeMoves) {
        let runs = self.runs.storage_mut().iter_mut();
        for run in runs.chain(self.completed.storage_mut().iter_mut()) {
            run.node = moves.get(run.node);
        }
    }

    /// Drops every run and held match, releasing their buffer nodes (the
    /// partition is then [empty](Self::is_empty)).
    pub fn clear<E>(&mut self, buf: &mut SharedBuffer<E>) {
        for run in self.runs.drain().chain(self.completed.drain()) {
            buf.release(run.node);
        }
        self.runs = RunHeap::default();
        self.completed = HeldHeap::default();
        self.deadline = NO_DEADLINE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_idle_partitions_are_small() {
        println!(
            "run {} bytes, partition {} bytes",
            std::mem::size_of::<Run>(),
            std::mem::size_of::<Partition>()
        );
        assert_eq!(std::mem::size_of::<Run>(), 32);
        // three inline runs and their vector's length, the held matches'
        // box, the deadline
        assert_eq!(std::mem::size_of::<Partition>(), 120);
        let idle = Partition::new();
        assert!(idle.is_empty() && idle.next_deadline().is_none());
        assert!(!idle.runs.storage().spilled());
    }
}
