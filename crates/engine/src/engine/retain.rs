//! Keeping part of an engine's keys: how a dataflow worker that resumes a
//! checkpoint on another number of workers takes, from a restored engine,
//! the keys that are now its own (`crate::dataflow`, "rescaling").

use crate::engine::core::{PatternCounts, Stats};
use crate::engine::front::Engine;
use crate::event::Event;
use crate::value::Value;

impl<E: Event + 'static> Engine<E> {
    /// Keeps the state of the keys `keep` accepts (each key as the engine
    /// normalizes its values, the key the dataflow routes by) and forgets
    /// the others' partial matches, held matches and pending endings, with
    /// no output (another engine goes on with them). Without `keep_stats`
    /// the counts start again from zero (another engine keeps them). The
    /// engine must wait for no event (as one restored at a dataflow cut,
    /// whose events below the frontier were all pushed).
    pub fn retain_keys(&mut self, mut keep: impl FnMut(&[Value]) -> bool, keep_stats: bool) {
        let core = &mut self.core;
        for group in &mut core.groups {
            for slot in group.keys.slots_refused(&mut keep) {
                let Some((_, parts)) = group.keys.get_mut(slot) else {
                    continue;
                };
                for part in parts.iter_mut() {
                    if part.is_hole() {
                        continue;
                    }
                    core.live_runs = core.live_runs.saturating_sub(part.part.partial_matches());
                    part.part.clear(&mut core.store);
                    core.patterns[part.pattern as usize]
                        .ordinals
                        .give(part.ordinal);
                    core.live_parts = core.live_parts.saturating_sub(1);
                }
                // Its entry in the deadline index is stale now: skipped.
                group.keys.remove(slot);
            }
            group.keys.shrink_table();
        }
        if !keep_stats {
            core.stats = Stats::default();
            let base = core.processed();
            for run in &mut core.patterns {
                run.counts = PatternCounts {
                    base,
                    ..PatternCounts::default()
                };
            }
        }
    }
}
