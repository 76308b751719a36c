//! Flink's `AfterMatchSkipStrategy` family: which event id a match prunes
//! up to (`getPruningId`, over *every* path the match extracted to), which
//! runs that prunes (`shouldPrune`), and `prune` itself (release, then
//! `removeAll` on the priority queue).

use cepheid_core::pattern::{Pattern, SkipStrategy};

use super::buffer::{EventId, PathMap, SharedBuffer};
use super::nfa::ComputationState;
use super::queue::JavaPriorityQueue;

/// A skip strategy with its target resolved to a shared-buffer page.
#[derive(Clone, Copy, Debug)]
pub enum AfterMatch {
    /// `noSkip()`.
    NoSkip,
    /// `skipToNext()`.
    ToNext,
    /// `skipPastLastEvent()`.
    PastLast,
    /// `skipToFirst(name)`: the page, if any state has it.
    ToFirst(Option<usize>),
    /// `skipToLast(name)`.
    ToLast(Option<usize>),
}

impl AfterMatch {
    /// The pattern's strategy over the graph's page table.
    pub fn new(pattern: &Pattern, pages: &[String]) -> AfterMatch {
        let page = |s: cepheid_core::primitives::StageId| {
            let name = &pattern.stage(s).name;
            pages.iter().position(|p| p == name)
        };
        match pattern.skip {
            SkipStrategy::NoSkip => AfterMatch::NoSkip,
            SkipStrategy::ToNext => AfterMatch::ToNext,
            SkipStrategy::PastLastEvent => AfterMatch::PastLast,
            SkipStrategy::ToFirst(s) => AfterMatch::ToFirst(page(s)),
            SkipStrategy::ToLast(s) => AfterMatch::ToLast(page(s)),
        }
    }

    /// `isSkipStrategy()`.
    pub fn is_skip_strategy(self) -> bool {
        !matches!(self, AfterMatch::NoSkip)
    }

    /// `getPruningId`.
    pub fn pruning_id(self, matched: &[PathMap]) -> Option<EventId> {
        let lists = || matched.iter().flat_map(|m| m.iter().map(|(_, ids)| ids));
        match self {
            AfterMatch::NoSkip => None,
            AfterMatch::PastLast => lists().filter_map(|ids| ids.last().copied()).max(),
            AfterMatch::ToNext => lists().filter_map(|ids| ids.first().copied()).min(),
            AfterMatch::ToFirst(page) | AfterMatch::ToLast(page) => {
                let page = page?;
                matched
                    .iter()
                    .filter_map(|m| m.iter().find(|(p, _)| *p == page))
                    .filter_map(|(_, ids)| match self {
                        AfterMatch::ToFirst(_) => ids.first().copied(),
                        _ => ids.last().copied(),
                    })
                    .max()
            }
        }
    }

    /// `shouldPrune`.
    pub fn should_prune(self, start: EventId, pruning: EventId) -> bool {
        match self {
            AfterMatch::ToFirst(_) | AfterMatch::ToLast(_) => start < pruning,
            _ => start <= pruning,
        }
    }

    /// `prune(matchesToPrune, matchedResult, accessor)`.
    pub fn prune(
        self,
        queue: &mut JavaPriorityQueue<ComputationState>,
        matched: &[PathMap],
        buffer: &mut SharedBuffer,
    ) {
        let Some(pruning) = self.pruning_id(matched) else {
            return;
        };
        let mut discard: Vec<ComputationState> = Vec::new();
        for cs in queue.iter() {
            if cs.start_id.is_some_and(|s| self.should_prune(s, pruning)) {
                buffer.release_node(cs.prev, &cs.version);
                discard.push(cs.clone());
            }
        }
        queue.remove_if(|cs| discard.contains(cs));
    }
}
