//! After-match skip strategies and Flink's hold-back rule
//! (`NFA.processMatchesAccordingToSkipStrategy`, `AfterMatchSkipStrategy`).
//!
//! Complete matches join the partition's held queue; under a skip strategy
//! other than `no skip` (Flink's `isSkipStrategy`) the earliest one is
//! emitted only while no live partial run started strictly before it
//! (Flink's `isEarlier` is `compare <= 0`: a run with the same start event,
//! such as the match's own loop branch, does not block; the start run sorts
//! last, so it never blocks). On emission a *pruning
//! event* is computed from the match and every partial run and held match
//! whose start event is at or before it (`to next`, `past last event`) or
//! strictly before it (`to first s`, `to last s`) is dropped. A skip target
//! stage without events in the match prunes nothing.

use super::buffer::SharedBuffer;
use super::heap::{JavaHeap, Keyed};
use super::run::{HeldHeap, Partition, Run};
use super::view::MatchView;
use super::MatchSink;
use crate::event::Event;
use crate::nfa::Nfa;
use crate::pattern::SkipStrategy;
use crate::primitives::StageId;

/// Moves `potential` matches into the held queue and emits (and prunes for)
/// every held match that no partial run (of `part.runs`) blocks.
pub fn process_matches_by_skip<E: Event>(
    nfa: &Nfa<E>,
    part: &mut Partition,
    potential: &mut JavaHeap<Run>,
    buf: &mut SharedBuffer<E>,
    removed: &mut Vec<Run>,
    out: &mut dyn MatchSink<E>,
    lookup: &dyn crate::lookup::Lookup,
) {
    for m in potential.drain() {
        part.completed.offer(m);
    }
    // Flink holds matches back only for a real skip strategy
    // (`isSkipStrategy()` is false for `no skip`).
    let hold_back = nfa.pattern().skip != SkipStrategy::NoSkip;
    while let Some(earliest) = part.completed.peek() {
        if hold_back && part.runs.peek().is_some_and(|p| earliest.key() > p.key()) {
            break;
        }
        let polled = if nfa.branch_info().is_some() {
            poll_preferred(nfa, buf, &mut part.completed)
        } else {
            part.completed.poll()
        };
        let Some(m) = polled else {
            break;
        };
        if let Some((pruning, inclusive)) = pruning_event(nfa, buf, &m) {
            let prune =
                |r: &Run| !r.is_start() && (r.key() < pruning || (inclusive && r.key() == pruning));
            part.runs.remove_where(prune, removed);
            part.completed.remove_where(prune, removed);
            for r in removed.drain(..) {
                buf.release(r.node);
            }
        }
        out.on_match(&MatchView::new(nfa, buf, &m).with_lookup(lookup));
        buf.release(m.node);
    }
}

/// The held match that goes first in a pattern with alternation: among
/// those with the smallest first event (Flink's queue orders those by its
/// layout, which the one automaton of the branches lays out unlike the
/// branch patterns), the first by [`preference`] (`docs/semantics.md`,
/// "Alternation").
#[inline(never)]
fn poll_preferred<E>(nfa: &Nfa<E>, buf: &SharedBuffer<E>, held: &mut HeldHeap) -> Option<Run> {
    let first = held.peek()?.key();
    let ties = held.iter().filter(|m| m.key() == first).count();
    if ties == 1 {
        return held.poll();
    }
    let best = held
        .iter()
        .enumerate()
        .filter(|(_, m)| m.key() == first)
        .map(|(i, m)| (preference(nfa, buf, m), i))
        .min()
        .map(|(_, i)| i)?;
    held.remove_at(best)
}

/// The order of complete matches with one first event in a pattern with
/// alternation, as a key (smallest first): the branches (per alternation
/// in the order of the text, null first), the last event, the events in
/// order of arrival, the stage of each (in the pattern's order of stages).
/// Rarely asked (two held matches with one first event), so not lean.
type Preference = (Vec<Option<u32>>, u64, Vec<u64>, Vec<StageId>);

fn preference<E>(nfa: &Nfa<E>, buf: &SharedBuffer<E>, m: &Run) -> Preference {
    let mut events = Vec::new();
    buf.walk_back(m.node, |stage, ev| events.push((buf.sequence(ev), stage)));
    events.reverse();
    let last = events.last().map_or(0, |e| e.0);
    let (seqs, stages): (Vec<u64>, Vec<StageId>) = events.into_iter().unzip();
    let branches = nfa
        .branch_info()
        .map(|info| info.branches(&stages, m.state))
        .unwrap_or_default();
    (branches, last, seqs, stages)
}

/// The pruning event `(time, sequence)` of a match and whether runs that
/// start exactly there are pruned too; `None` for no pruning. As in Flink,
/// `to next` takes the minimum of each stage's first event and `past last
/// event` the maximum of each stage's last event.
fn pruning_event<E>(nfa: &Nfa<E>, buf: &SharedBuffer<E>, m: &Run) -> Option<((i64, u64), bool)> {
    type Key = (i64, u64);
    // per stage: (stage, first taken, last taken); walked newest first
    let mut per_stage: smallvec::SmallVec<[(StageId, Key, Key); 8]> = smallvec::SmallVec::new();
    buf.walk_back(m.node, |stage, ev| {
        let key = (buf.timestamp(ev), buf.sequence(ev));
        match per_stage.iter_mut().find(|(s, _, _)| *s == stage) {
            Some(entry) => entry.1 = key,
            None => per_stage.push((stage, key, key)),
        }
    });
    let of_stage = |target: StageId| per_stage.iter().find(|(s, _, _)| *s == target);
    match nfa.pattern().skip {
        SkipStrategy::NoSkip => None,
        SkipStrategy::ToNext => per_stage.iter().map(|e| e.1).min().map(|p| (p, true)),
        SkipStrategy::PastLastEvent => per_stage.iter().map(|e| e.2).max().map(|p| (p, true)),
        SkipStrategy::ToFirst(s) => of_stage(s).map(|e| (e.1, false)),
        SkipStrategy::ToLast(s) => of_stage(s).map(|e| (e.2, false)),
    }
}
