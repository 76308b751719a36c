//! Keeping part of an engine's keys: how a dataflow worker that resumes a
//! checkpoint on another number of workers takes, from a restored engine,
//! the keys that are now its own (`crate::dataflow`, "rescaling").

use std::sync::Arc;

use crate::engine::automaton::Automaton;
use crate::engine::core::{PatternCounts, Stats};
use crate::engine::front::Engine;
use crate::engine::partitions::HOLE;
use crate::event::Event;
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::primitives::Timestamp;
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

    /// Keeps the patterns `keep` accepts (each with its index in the
    /// engine's order) with their state, and forgets the others' partial
    /// matches, held matches and pending endings, with no output and
    /// nothing counted (another engine goes on with them): how one
    /// engine's state becomes that of a dataflow worker's engine of one
    /// group of patterns (`cepheid run --workers` resuming a checkpoint of
    /// one engine). The patterns kept stay in their order; the shared
    /// buffer is compacted to what they hold (as a change of rules that
    /// removes patterns does). Each kept pattern keeps its counts; the
    /// engine's [`Stats`] of what patterns made (matches, timeouts, runs
    /// dropped or discarded, events without a key) become the kept
    /// patterns' sums (from a snapshot of version 6, which held no counts
    /// per pattern, those since it was restored), and what it took in
    /// (events, late ones, forced watermarks) stays.
    pub fn retain_patterns(&mut self, mut keep: impl FnMut(usize, &Pattern) -> bool) {
        let core = &mut self.core;
        let kept: Vec<bool> = (core.patterns.iter().enumerate())
            .map(|(p, run)| keep(p, run.automaton.pattern()))
            .collect();
        if kept.iter().all(|&k| k) {
            return;
        }
        for (p, _) in kept.iter().enumerate().filter(|(_, &k)| !k) {
            let run = &mut core.patterns[p];
            let keys = &mut core.groups[run.group].keys;
            let mine =
                |x: &crate::engine::partitions::Part<_>| x.pattern as usize == p && !x.is_hole();
            let slots: Vec<u32> = (keys.iter_parts())
                .filter(|(_, parts)| parts.iter().any(mine))
                .map(|(slot, _)| slot)
                .collect();
            for slot in slots {
                let Some((_, parts)) = keys.get_mut(slot) else {
                    continue;
                };
                for x in parts.iter_mut().filter(|x| mine(x)) {
                    core.live_runs = core.live_runs.saturating_sub(x.part.partial_matches());
                    x.part.clear(&mut core.store);
                    run.ordinals.give(std::mem::replace(&mut x.ordinal, HOLE));
                    core.live_parts = core.live_parts.saturating_sub(1);
                }
                // (forgets the key when nothing is left of it; the deadline
                // index is rebuilt below)
                let _ = keys.settle(slot, None, <Arc<Nfa<E>> as Automaton<E>>::next_deadline);
            }
        }
        let order: Vec<usize> = (0..kept.len()).filter(|&p| kept[p]).collect();
        core.rearrange(&order);
        // What the patterns made is the kept ones' (what the engine took
        // in stays: every group takes every event).
        let stats = &mut core.stats;
        (
            stats.matches,
            stats.timeouts,
            stats.dropped_runs,
            stats.capped_runs,
        ) = (0, 0, 0, 0);
        (stats.discarded_runs, stats.unkeyed, stats.unusable_keys) = (0, 0, 0);
        for run in &core.patterns {
            let c = &run.counts;
            stats.matches += c.matches;
            stats.timeouts += c.timeouts;
            stats.dropped_runs += c.dropped_runs;
            stats.capped_runs += c.capped_runs;
            stats.discarded_runs += c.discarded_runs;
            stats.unkeyed += c.unkeyed;
            stats.unusable_keys += c.unusable_keys;
        }
    }

    /// Takes out the events waiting for the watermark, in the order the
    /// engine would have processed them (time, then arrival), and makes
    /// the engine one that decides no lateness: its max delay unbounded
    /// and no limit on waiting events, its watermark and largest time seen
    /// kept. So an engine of `cepheid run` becomes one as a dataflow
    /// worker runs, whose events come sorted and released by their
    /// sources' clocks (the events taken go to those: they are the ones
    /// still to process).
    ///
    /// The events taken are no longer counted as taken in
    /// ([`Stats::events`]): the engine that gets them counts them.
    pub fn take_waiting(&mut self) -> Vec<(Timestamp, E)> {
        self.core.set_waiting_limit(usize::MAX);
        let taken = self.core.clock.take_waiting(i64::MAX);
        let stats = &mut self.core.stats;
        stats.events = stats.events.saturating_sub(taken.len() as u64);
        taken
    }
}
