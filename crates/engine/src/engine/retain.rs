//! Keeping part of an engine's keys: how a dataflow worker that resumes a
//! checkpoint on another number of workers takes, from a restored engine,
//! the keys that are now its own (`crate::dataflow`, "rescaling").

use std::sync::Arc;

use crate::engine::automaton::Automaton;
use crate::engine::core::{PatternCounts, Stats};
use crate::engine::front::Engine;
use crate::engine::partitions::HOLE;
use crate::engine::snapshot::{counts_array, fingerprint};
use crate::error::{Error, ErrorKind};
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
    /// the counts start again from zero, those of what the lists' and
    /// indicators' limits left out too (another engine keeps them). The
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
            core.memory
                .restore_left_out(crate::engine::LeftOut::default());
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
    /// (events, late ones, forced watermarks) stays. With `rest`, what
    /// patterns the engine no longer has made (removed by a change of
    /// rules, or before a snapshot of version 6) stays too: give it to one
    /// of the engines an engine is split into, so that their counts add up
    /// to its.
    pub fn retain_patterns(&mut self, mut keep: impl FnMut(usize, &Pattern) -> bool, rest: bool) {
        let core = &mut self.core;
        // (what the patterns no longer had made: the engine's less theirs)
        let mut gone = [0; 7];
        if rest {
            gone = made(&mut core.stats).map(|n| *n);
            for run in &core.patterns {
                let c = counts_array(&run.counts);
                gone.iter_mut()
                    .zip(c)
                    .for_each(|(g, n)| *g = g.saturating_sub(n));
            }
        }
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
        // in stays: every group takes every event), and with `rest` what
        // those gone made.
        for run in &core.patterns {
            let c = counts_array(&run.counts);
            gone.iter_mut().zip(c).for_each(|(g, n)| *g += n);
        }
        for (n, sum) in made(&mut core.stats).into_iter().zip(gone) {
            *n = sum;
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
        (self.take_waiting_positioned().into_iter())
            .map(|(ts, event, _)| (ts, event))
            .collect()
    }

    /// Gives the events waiting the positions `rename` makes of theirs
    /// (`None`: it keeps its own): the engine of a workers' cut made one
    /// engine's names its waiting events as one engine names them
    /// (`PATH:LINE`) rather than by their places in the workers' chunks.
    pub fn rename_positions(&mut self, mut rename: impl FnMut(&Value) -> Option<Value>) {
        if let Some(decide) = self.core.decide.as_deref_mut() {
            for position in decide.positions.values_mut() {
                if let Some(renamed) = rename(position) {
                    *position = renamed;
                }
            }
        }
    }

    /// [`take_waiting`](Engine::take_waiting), each event with the
    /// position its caller gave it ([`Engine::push_positioned`]), which
    /// names its decisions when its scene has no `id` (`None`: none was
    /// given, or the engine decides nothing). An engine of `cepheid run
    /// --decisions` becoming a dataflow worker's keeps its waiting events'
    /// names so.
    pub fn take_waiting_positioned(&mut self) -> Vec<(Timestamp, E, Option<Value>)> {
        self.core.set_waiting_limit(usize::MAX);
        let taken = self.core.clock.take_waiting_numbered(i64::MAX);
        let stats = &mut self.core.stats;
        stats.events = stats.events.saturating_sub(taken.len() as u64);
        let decide = self.core.decide.as_deref_mut();
        let mut positions = decide.map(|d| &mut d.positions);
        (taken.into_iter())
            .map(|(ts, seq, event)| {
                let position = positions.as_mut().and_then(|p| p.remove(&seq));
                (ts, event, position)
            })
            .collect()
    }

    /// Takes the entries of the rolling indicators this engine keeps out
    /// of it, leaving their windows empty: each indicator's name and its
    /// entries (key, time, value), oldest first. With
    /// [`put_indicator_entries`](Engine::put_indicator_entries), how the
    /// windows of engines of parts of one stream become one engine's
    /// before [`absorb`](Engine::absorb) (which refuses indicator
    /// entries): the caller takes each indicator from the engines of one
    /// group of patterns alone (every engine of a group that keeps it has
    /// the entries of its keys) and gives them in time order.
    #[allow(clippy::type_complexity)]
    pub fn take_indicator_entries(&mut self) -> Vec<(String, Vec<(Vec<Value>, Timestamp, Value)>)> {
        self.core.memory.take_indicator_items()
    }

    /// Puts each indicator's `entries` (key, time, value, in time order)
    /// into its windows, as a restore does, into windows emptied by
    /// [`take_indicator_entries`](Engine::take_indicator_entries) or never
    /// filled. Returns the names of those the engine has no such
    /// indicator for, or does not keep
    /// ([`keep_indicators_grouped_by`](Engine::keep_indicators_grouped_by)):
    /// left out.
    #[allow(clippy::type_complexity)]
    pub fn put_indicator_entries(
        &mut self,
        entries: Vec<(String, Vec<(Vec<Value>, Timestamp, Value)>)>,
    ) -> Vec<String> {
        self.core.memory.put_indicator_items(entries)
    }

    /// Takes in the state of `other`, an engine of another part of the
    /// same stream at the same point (a dataflow worker's engine of one
    /// group of patterns and one range of keys, restored from a cut), so
    /// that this engine goes on for both: how a cut of `cepheid run
    /// --workers` resumes on one engine. `other`'s patterns must be
    /// patterns of this engine (by name and canonical text), its keys of
    /// them keys this engine has no state for, and it must wait for no
    /// event (as a worker's engine: its events wait in the worker's
    /// stash). Its events and partial-match nodes join the shared buffer
    /// (renumbered), its keys this engine's groups (numbered by this
    /// engine's patterns), each pattern's counts add to this engine's
    /// pattern's, and its [`Stats`] of what patterns made to this
    /// engine's; with `events`, its counts of events taken in too (give
    /// them from the engines of one group: every group takes every
    /// event). Nothing is emitted; the clock is this engine's
    /// ([`resume_clock`](Engine::resume_clock)).
    ///
    /// What the limits and values of lists and indicators left out stays
    /// this engine's (the engines of parts of a stream gather theirs apart:
    /// [`LeftOutParts`](crate::engine::LeftOutParts),
    /// [`set_left_out`](Engine::set_left_out)).
    ///
    /// Lists: this engine takes `other`'s when it holds no entry of its
    /// own (every engine of a stream whose rules write to no list holds
    /// the same: a dataflow worker's).
    ///
    /// Fails with [`ErrorKind::Snapshot`], this engine unchanged, when
    /// `other` has another pattern, events waiting, or entries of rolling
    /// indicators (not merged); and with this engine's state part taken
    /// in when a key of `other` has state here already (not parts of one
    /// stream).
    pub fn absorb(&mut self, mut other: Engine<E>, events: bool) -> Result<(), Error> {
        let refused = |why: &str| Err(Error::new(ErrorKind::Snapshot, why.to_string()));
        let mut map = Vec::with_capacity(other.core.patterns.len());
        for run in &other.core.patterns {
            let p = run.automaton.pattern();
            let found = (self.core.patterns.iter()).position(|mine| {
                let q = mine.automaton.pattern();
                q.name == p.name && fingerprint(q) == fingerprint(p)
            });
            match found {
                Some(q) => map.push(q),
                None => return refused(&format!("pattern `{}` is not this engine's", p.name)),
            }
        }
        if other.core.clock.waiting() > 0 {
            return refused("the engine taken in has events waiting");
        }
        if other.core.memory.has_indicator_entries() {
            return refused("the state of rolling indicators is not merged");
        }
        // Lists: every engine of a stream that no rule writes to holds
        // them whole, alike (a dataflow worker's: `copy_lists_from`), so
        // this engine takes them from the first that has any.
        if self.core.memory.holds_no_list_entry() {
            self.core.memory.copy_lists(&other.core.memory);
        }
        let processed = other.core.processed();
        let theirs = &mut other.core;
        let core = &mut self.core;
        let moves = core.store.absorb(std::mem::take(&mut theirs.store));
        let mut clash = false;
        for group in std::mem::take(&mut theirs.groups) {
            for (key, mut parts) in group.keys.into_keys() {
                parts.retain(|x| !x.is_hole());
                let Some(first) = parts.first() else {
                    continue;
                };
                let g = core.patterns[map[first.pattern as usize]].group;
                for x in parts.iter_mut() {
                    let q = map[x.pattern as usize];
                    x.pattern = q as u32;
                    x.ordinal = core.patterns[q].ordinals.take();
                    x.part.renumber(&moves);
                }
                let keys = &mut core.groups[g].keys;
                let hash = core.hasher.key(&key);
                if keys.find(hash, &key).is_some() {
                    clash = true;
                    continue;
                }
                let slot = keys.insert_parts(hash, key, parts);
                let _ = keys.settle(slot, None, <Arc<Nfa<E>> as Automaton<E>>::next_deadline);
            }
        }
        for (p, run) in theirs.patterns.iter().enumerate() {
            let (mine, c) = (&mut core.patterns[map[p]].counts, &run.counts);
            mine.absorb(c);
            mine.unkeyed += c.unkeyed;
            mine.unusable_keys += c.unusable_keys;
            // The events that reached it there (its engine's processed
            // less those before the name was added there) reach it here:
            // with the events every part of one group adds below, its
            // base is the events before it was added to the whole (a
            // group a change of rules added began at 0).
            mine.base = (mine.base.wrapping_add(c.base)).wrapping_sub(processed);
        }
        if events {
            for run in &mut core.patterns {
                run.counts.base = run.counts.base.wrapping_add(processed);
            }
        }
        let (mine, s) = (&mut core.stats, &theirs.stats);
        mine.matches += s.matches;
        mine.timeouts += s.timeouts;
        mine.unkeyed += s.unkeyed;
        mine.unusable_keys += s.unusable_keys;
        mine.dropped_runs += s.dropped_runs;
        mine.capped_runs += s.capped_runs;
        mine.discarded_runs += s.discarded_runs;
        if events {
            mine.events += s.events;
            mine.late += s.late;
            mine.forced_watermarks += s.forced_watermarks;
        }
        core.live_runs += theirs.live_runs;
        core.live_parts += theirs.live_parts;
        let entries = (core.groups.iter().enumerate())
            .flat_map(|(g, group)| group.keys.scheduled().map(move |(t, s)| (t, g as u32, s)))
            .collect();
        let live = core.groups.iter().map(|g| g.keys.len()).sum();
        core.deadlines.rebuild(entries, live);
        if clash {
            return refused("a key has state in both engines");
        }
        Ok(())
    }

    /// Adds the patterns of `other` that `keep` accepts and this engine
    /// does not have (by name and canonical text), in `other`'s order
    /// after this engine's own, each with its version and whether it
    /// drains, compiled for this engine's fields, with no state and
    /// nothing counted: how the engine that takes in the engines of
    /// several groups of patterns ([`absorb`](Engine::absorb)) gets their
    /// patterns first when they are not its own (their rules changed while
    /// they ran: a cut of `cepheid run --workers` resumed on one engine).
    /// Fails with [`ErrorKind::Pattern`] when one does not compile here.
    pub fn adopt(
        &mut self,
        other: &Engine<E>,
        mut keep: impl FnMut(&Pattern) -> bool,
    ) -> Result<(), Error> {
        let mut fields = self.fields.clone();
        for run in &other.core.patterns {
            let p = run.automaton.pattern();
            let mine = (self.core.patterns.iter()).any(|r| {
                let q = r.automaton.pattern();
                q.name == p.name && fingerprint(q) == fingerprint(p)
            });
            if mine || !keep(p) {
                continue;
            }
            let failed =
                |e: String| Error::new(ErrorKind::Pattern, format!("pattern `{}`: {e}", p.name));
            let nfa = Nfa::<E>::compile(p, &mut fields).map_err(|e| failed(e.to_string()))?;
            let q = self.core.add(Arc::new(nfa), &mut fields).map_err(failed)?;
            let added = &mut self.core.patterns[q];
            (added.meta.version, added.meta.versioned, added.draining) =
                (run.meta.version, run.meta.versioned, run.draining);
        }
        self.core.draining = self.core.patterns.iter().filter(|r| r.draining).count();
        self.core.refresh_guards();
        self.fields = fields;
        Ok(())
    }

    /// Counts `n` events as taken in and processed before, by the engines
    /// it [`absorb`](Engine::absorb)ed without their events (their count
    /// is the run's sources', not theirs: a group of patterns that a change
    /// of rules made anew counts from there), adding nothing to what
    /// reached each pattern (what its engines counted).
    pub fn count_taken_before(&mut self, n: u64) {
        self.core.stats.events += n;
        for run in &mut self.core.patterns {
            run.counts.base = run.counts.base.wrapping_add(n);
        }
    }

    /// Sets the clock of an engine that has seen nothing yet (one made by
    /// [`absorb`](Engine::absorb)ing others): its watermark, the largest
    /// time seen, and the events waiting for the watermark, in the order
    /// to process them (each above the watermark and at or below the
    /// largest time seen), which count as taken in, and `late` events
    /// found late before (by the others' clocks: counted as taken in and
    /// late). Nothing is processed until the next event or watermark.
    /// Fails with [`ErrorKind::Snapshot`] when the engine has a watermark
    /// or events already, or the events do not fit.
    pub fn resume_clock(
        &mut self,
        (watermark, max_seen): (Option<Timestamp>, Option<Timestamp>),
        waiting: Vec<(Timestamp, E)>,
        late: u64,
    ) -> Result<(), Error> {
        let n = waiting.len() as u64;
        self.core
            .clock
            .resume((watermark, max_seen), waiting)
            .map_err(|e| Error::new(ErrorKind::Snapshot, e.to_string()))?;
        self.core.stats.events += n + late;
        self.core.stats.late += late;
        Ok(())
    }

    /// [`resume_clock`](Engine::resume_clock), each waiting event with
    /// the position that names its decisions, as
    /// [`push_positioned`](Engine::push_positioned) gives one (`None`:
    /// none; kept only by an engine that decides).
    pub fn resume_clock_positioned(
        &mut self,
        bounds: (Option<Timestamp>, Option<Timestamp>),
        waiting: Vec<(Timestamp, E, Option<Value>)>,
        late: u64,
    ) -> Result<(), Error> {
        let first = self.core.clock.next_arrival_number();
        let mut positions = Vec::new();
        let waiting = (waiting.into_iter().enumerate())
            .map(|(i, (ts, event, position))| {
                if let Some(position) = position {
                    positions.push((first + i as u64, position));
                }
                (ts, event)
            })
            .collect();
        self.resume_clock(bounds, waiting, late)?;
        if let Some(decide) = self.core.decide.as_deref_mut() {
            decide.positions.extend(positions);
        }
        Ok(())
    }
}

/// What the patterns made, as [`Stats`] counts it, in the order of
/// [`counts_array`].
fn made(s: &mut Stats) -> [&mut u64; 7] {
    [
        &mut s.matches,
        &mut s.timeouts,
        &mut s.dropped_runs,
        &mut s.capped_runs,
        &mut s.discarded_runs,
        &mut s.unkeyed,
        &mut s.unusable_keys,
    ]
}
