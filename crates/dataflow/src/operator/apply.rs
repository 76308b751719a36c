//! A change made on a worker: a change of rules (each group's patterns
//! its engines' rule set, a group the change adds given engines of its
//! own, a change refused and said), or a watched reference file's change
//! in every engine, at the change's time.

use std::collections::HashMap;

use cepheid_runtime::audit::{PatternChange, RuleChange};

use super::{scope, spans, started_empty, AuditPart, Collect, Renumber, Worker};
use crate::engine::Engine;
use crate::event::Event;
use crate::route::{worker_groups, Layout};
use crate::{Change, FileChange, ListEdit, ListOrigin, Piece};

impl<E: Event + Clone + 'static> Worker<E> {
    /// Makes `change`'s rules the worker's: each group's patterns its
    /// engines' rule set (a group that the change adds gets engines of its
    /// own; one out of force, none). Worker 0 says what it did, once for
    /// the run.
    pub(super) fn apply<S: Collect<E>>(&mut self, change: &Change, sink: &mut S) {
        if let Some(lists) = crate::FileChange::made_by(change) {
            self.apply_lists(change, lists, sink);
            return;
        }
        let Some(policy) = self.changes.policy else {
            return;
        };
        let tell = self.index == 0;
        if let Some(reason) = change.refused() {
            // (refused by its reader, said and counted there: its audit
            // record only)
            let record = RuleChange::refused(Some(change.at), change.origin(), policy, &reason);
            sink.rules_audit(change, AuditPart::of(record, Vec::new(), Vec::new()));
            return;
        }
        let rules = match change.compiled() {
            Ok(rules) => rules,
            Err(e) => {
                // (its reader checked it: not met)
                return self.refuse(change, format!("have errors: {e}"), sink);
            }
        };
        // The new fields numbered as one engine numbers them, in the
        // plan's table, before the layout is checked: every router and
        // engine of every process numbers the fields of the same changes
        // in the same order ([`Hold::settle`]), so that they agree. Then
        // in every engine's.
        if let Err(e) = crate::number_fields::<E>(&rules, &self.changes.fields, self.changes.limits)
        {
            return self.refuse(change, format!("do not compile: {e}"), sink);
        }
        let next = match self
            .changes
            .layout
            .next(rules.patterns(), self.changes.writes)
        {
            Ok(next) => next,
            Err(why) => return self.refuse(change, format!("are refused: {why}"), sink),
        };
        // (another worker of the process may have numbered them already)
        self.changes.refresh |= self.changes.fields_len() > self.changes.fields_at_start;
        for piece in &self.pieces {
            crate::align_fields::<E>(piece.engine.0.fields(), &self.changes.fields);
        }
        // Every engine takes the rules' whole table of lists and
        // indicators (`Plan::engines`), before its patterns: every piece
        // numbers the fields alike, so all take it or none does.
        let declared_before = (self.pieces.first())
            .map(|p| p.engine.0.declarations().clone())
            .unwrap_or_default();
        let declared = &rules.loaded().declarations;
        if !declared.is_empty() {
            for piece in &mut self.pieces {
                if let Err(e) = piece.engine.0.set_declarations(declared) {
                    return self.refuse(change, format!("do not compile: {e}"), sink);
                }
            }
        }
        let number: HashMap<String, usize> = (rules.patterns().iter().enumerate())
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        let (from, to) = worker_groups(self.index as u32, self.changes.peers as u32);
        // (every engine is a part of the new rule set, with all its scenes:
        // `Plan::engines`)
        let all: Vec<&crate::pattern::Pattern> = rules.patterns().iter().collect();
        let mut lines: Vec<(usize, String)> = Vec::new();
        let mut scenes_removed: Vec<String> = Vec::new();
        // (this worker's part of the audit record: each name with what
        // its engines did, their partial matches before and after)
        let stats_before = self.pattern_stats();
        let mut named: Vec<(usize, String, cepheid_engine::engine::Change)> = Vec::new();
        for (group, (_, names)) in next.groups.iter().enumerate() {
            if group >= self.spans.len() {
                // A new group: one engine over the worker's key groups.
                let engine = self.new_group_engine(&next, group, declared);
                self.pieces.push(Piece {
                    group: group as u32,
                    from,
                    to,
                    engine: (engine, Vec::new()),
                });
                self.spans = spans(&self.pieces, group + 1);
            }
            let patterns: Vec<crate::pattern::Pattern> = names
                .iter()
                .filter_map(|name| rules.get(name).cloned())
                .collect();
            let (start, end) = self.spans[group];
            for (k, piece) in self.pieces[start..end].iter_mut().enumerate() {
                let (engine, numbers) = &mut piece.engine;
                let names = self.changes.names.as_ref();
                let done = engine.set_rules(
                    &patterns[..],
                    policy,
                    &mut Renumber {
                        sink,
                        numbers,
                        names,
                    },
                );
                let done = (done.and_then(|changes| {
                    // (with the rules' texts: a cut's snapshot keeps the
                    // scenes, which an engine restored after the change
                    // has again, `restored_engine`)
                    Ok((changes, engine.set_rules_scenes_in_part(&rules, &all)?))
                }))
                .map(|(changes, removed)| {
                    // (said after the patterns, as one engine words them)
                    scenes_removed = removed;
                    changes
                });
                let any = done.as_ref().is_ok_and(|changes| changes.any());
                self.changes.changed |= any;
                if let (Ok(changes), 0) = (done, k) {
                    for (name, what) in changes.iter() {
                        // (the new set's order, then the removed ones')
                        let order = match number.get(name) {
                            Some(&n) => n,
                            None => (self.changes.in_force.iter())
                                .position(|old| old == name)
                                .map_or(usize::MAX, |n| number.len() + n),
                        };
                        if tell {
                            lines.push((order, format!("  {name}: {what}\n")));
                        }
                        named.push((order, name.to_string(), what));
                    }
                }
            }
        }
        let stats_after = self.pattern_stats();
        let emptied = started_empty(&declared_before, self.pieces.first());
        let mut entries = Vec::new();
        let mut unchanged = Vec::new();
        for (order, name, what) in named {
            let stats = (&stats_before[..], &stats_after[..]);
            match PatternChange::of(&name, what, policy, stats) {
                Some(entry) => entries.push((order, entry)),
                None => unchanged.push(name),
            }
        }
        let record = RuleChange::applied(
            Some(change.at),
            change.origin(),
            policy,
            [],
            (&[], &[]),
            emptied,
        );
        sink.rules_audit(change, AuditPart::of(record, entries, unchanged));
        self.changes.layout = next;
        self.changes.made[0] += 1;
        self.changes.names = Some(number);
        self.changes.in_force = rules.patterns().iter().map(|p| p.name.clone()).collect();
        if tell {
            sink.scenes_changed(change.at, &rules);
            sink.decided_in_parts(change.at, self.changes.layout.in_force());
            lines.sort_by_key(|(order, _)| *order);
            let scenes =
                (scenes_removed.iter()).map(|name| (0, format!("  scene {name}: removed\n")));
            let lines: String = lines
                .into_iter()
                .chain(scenes)
                .map(|(_, line)| line)
                .collect();
            sink.rules_changed(&change.place, Ok(lines));
        }
    }

    /// The engine of a group a change of rules adds (`group` of `next`),
    /// over the worker's key groups, with the rules' lists and indicators
    /// (`declared`).
    fn new_group_engine(
        &self,
        next: &Layout,
        group: usize,
        declared: &cepheid_core::lookup::Declarations,
    ) -> Engine<E> {
        let mut engine = self.changes.make_engine();
        // (a change of rules takes no pattern that shares indicators:
        // `route::not_on_workers`)
        scope(&mut engine, next, group, false);
        if self.changes.writes {
            engine.hand_out_list_writes();
        }
        // (its lists as the worker's other engines hold them: no event
        // changes a list on workers, and every engine makes the same edits
        // at the same times)
        if let Some(first) = self.pieces.first() {
            if !declared.is_empty() && engine.set_declarations(declared).is_ok() {
                engine.copy_lists_from(&first.engine.0);
            }
        }
        engine
    }

    /// Refuses `change` for `why` (the rules before it go on): counted,
    /// said by worker 0, its audit record's part made on every worker.
    fn refuse<S: Collect<E>>(&mut self, change: &Change, why: String, sink: &mut S) {
        self.changes.made[1] += 1;
        let reason = format!("{}: the new rules {why}; the old rules go on", change.place);
        if self.index == 0 {
            sink.rules_changed(&change.place, Err(why));
        }
        if let Some(policy) = self.changes.policy {
            let record = RuleChange::refused(Some(change.at), change.origin(), policy, &reason);
            sink.rules_audit(change, AuditPart::of(record, Vec::new(), Vec::new()));
        }
    }

    /// Each pattern's numbers over the worker's engines, added up by name.
    fn pattern_stats(&self) -> Vec<crate::engine::PatternStats> {
        let mut all = Vec::new();
        for piece in &self.pieces {
            cepheid_runtime::add_patterns(&mut all, &piece.engine.0.pattern_stats());
        }
        all
    }

    /// Makes a watched reference file's change in every engine, at the
    /// change's time (the engines' watermark is just below it), and keeps
    /// the entries the file gives now for the cuts. Worker 0 says it, as
    /// one engine says it, when its engines' rules declare the list.
    fn apply_lists<S: Collect<E>>(&mut self, change: &Change, lists: FileChange, sink: &mut S) {
        let origin = lists.entry_origin();
        for piece in &mut self.pieces {
            for edit in &lists.edits {
                let _ = edit.make(&mut piece.engine.0, change.at, &origin);
            }
        }
        let list = (lists.edits.first()).map_or("", ListEdit::list);
        let declared =
            (self.pieces.first()).is_some_and(|p| p.engine.0.declarations().list(list).is_some());
        // (said as one engine says them: worker 0, once; a `$list` record
        // is not said when made)
        if self.index == 0 && !lists.edits.is_empty() {
            let why = format!("there is no list `{list}` in the rule set");
            match (lists.origin, declared) {
                (ListOrigin::File | ListOrigin::Handle, true) => {
                    sink.lists_changed(&change.place, change.at);
                }
                (ListOrigin::Record, false) => sink.list_refused(&change.place, &why, true),
                (ListOrigin::Handle, false) => {
                    let place = cepheid_runtime::lists::handle_place(list);
                    sink.list_refused(&place, &why, false);
                }
                _ => {}
            }
        }
        let Some(made) = lists.file else {
            return;
        };
        cepheid_runtime::lists::keep(&mut self.changes.files, made);
    }
}
