//! Matches as views into the shared buffer, and their owned form.

use std::sync::Arc;

use super::buffer::{EventRef, NodeRef, SharedBuffer};
use super::run::Run;
use crate::nfa::Nfa;
use crate::pattern::{Pattern, StageEvents};
use crate::primitives::StageId;
use crate::primitives::Timestamp;
use crate::value::Value;

/// A complete match or a timed-out partial match, borrowing the buffer its
/// events live in. Valid during the [`MatchSink`](super::MatchSink) call.
pub struct MatchView<'a, E> {
    nfa: &'a Nfa<E>,
    buf: &'a SharedBuffer<E>,
    node: NodeRef,
    /// The state the run waits in (the final state for a complete match).
    state: crate::nfa::StateId,
    start: Timestamp,
    end: Timestamp,
    lookup: &'a dyn crate::lookup::Lookup,
}

impl<'a, E> MatchView<'a, E> {
    /// The same view reading lists and indicators (in `select` and `then`)
    /// from `lookup`.
    #[inline]
    pub fn with_lookup(mut self, lookup: &'a dyn crate::lookup::Lookup) -> Self {
        self.lookup = lookup;
        self
    }

    /// [`with_lookup`](Self::with_lookup) with the lookup a matcher
    /// carries: unchanged with [`NoLookup`](crate::lookup::NoLookup)
    /// (which a view has already).
    #[inline(always)]
    pub fn reading<L: crate::lookup::LookupRef>(self, lookup: &'a L) -> Self {
        match lookup.given() {
            Some(lookup) => self.with_lookup(lookup),
            None => self,
        }
    }

    /// What the pattern's conditions read of lists and indicators, by
    /// their text, in the pattern's order: each evaluated for the last
    /// event its stage took (with what the match took before it), against
    /// the lists and indicators as they are now; null when that stage took
    /// nothing. Empty when the conditions read none.
    pub fn reads(&self) -> Vec<(Arc<str>, Value)>
    where
        E: crate::event::Event,
    {
        let Some(reads) = self.nfa.compiled_reads() else {
            return Vec::new();
        };
        let events = self.events();
        reads
            .items
            .iter()
            .map(|(stage, label, expr)| {
                let Some(last) = events.iter().rposition(|(s, _)| s == stage) else {
                    return (Arc::clone(label), Value::Null);
                };
                let mut acc = reads.layout.new_accumulators();
                for (s, e) in &events[..last] {
                    acc.on_take(&reads.layout, *s, self.buf.get(*e));
                }
                let event = self.buf.get(events[last].1);
                (Arc::clone(label), expr.eval_with(event, &acc, self.lookup))
            })
            .collect()
    }

    /// The values the pattern's `then` writes for this match, in order
    /// (empty without `then`).
    pub fn write_values(&self) -> Vec<Value>
    where
        E: crate::event::Event,
    {
        let writes = self.nfa.compiled_writes();
        if writes.is_empty() {
            return Vec::new();
        }
        let events = self.events();
        writes.values_with(
            events.iter().map(|(s, e)| (*s, self.buf.get(*e))),
            self.lookup,
        )
    }

    /// The match of `run` (whose first and last taken events give its start
    /// and end: runs take events in time order).
    pub fn new(nfa: &'a Nfa<E>, buf: &'a SharedBuffer<E>, run: &Run) -> Self {
        #[cfg(debug_assertions)]
        {
            let (mut first, mut last) = (Timestamp::MAX, Timestamp::MIN);
            buf.walk_back(run.node, |_, ev| {
                first = first.min(buf.timestamp(ev));
                last = last.max(buf.timestamp(ev));
            });
            debug_assert!(
                !run.node.is_some() || (first, last) == (run.start_ts, buf.node_time(run.node)),
                "a run's times disagree with its events"
            );
        }
        MatchView {
            nfa,
            buf,
            node: run.node,
            state: run.state,
            start: run.start_ts,
            end: buf.node_time(run.node),
            lookup: &crate::lookup::NO_LOOKUP,
        }
    }

    /// For a pattern with alternation, the branch (1-based) of each of its
    /// alternations, in the order of the text, that this match took: by
    /// the stages of the branch's own it took an event into, else (a
    /// timed-out or dropped partial match) by the branch it waits in;
    /// `None` for an alternation it did not reach. `None` for a pattern
    /// without alternation.
    pub fn branches(&self) -> Option<Vec<Option<u32>>> {
        let info = self.nfa.branch_info()?;
        let mut stages: smallvec::SmallVec<[StageId; 16]> = smallvec::SmallVec::new();
        self.buf.walk_back(self.node, |stage, _| stages.push(stage));
        Some(info.branches(&stages, self.state))
    }

    /// The pattern that matched.
    pub fn pattern(&self) -> &'a Pattern {
        self.nfa.pattern()
    }

    /// The buffer the events live in.
    pub fn buffer(&self) -> &'a SharedBuffer<E> {
        self.buf
    }

    /// An event of this match.
    pub fn get(&self, ev: EventRef) -> &'a E {
        self.buf.get(ev)
    }

    /// `(stage, event)` pairs in the order the events were taken.
    pub fn events(&self) -> Vec<(StageId, EventRef)> {
        self.buf.chain(self.node)
    }

    /// The same pairs into `out` (cleared first): no allocation for a match
    /// of at most `N` events (the output writer's path, once per match).
    pub fn events_into<const N: usize>(
        &self,
        out: &mut smallvec::SmallVec<[(StageId, EventRef); N]>,
    ) {
        out.clear();
        self.buf
            .walk_back(self.node, |stage, ev| out.push((stage, ev)));
        out.reverse();
    }

    /// Time of the earliest event.
    #[inline]
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Time of the latest event.
    #[inline]
    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Each stage that took events, in pattern order, with its events in
    /// the order they were taken.
    pub fn stage_events(&self) -> Vec<(StageId, Vec<EventRef>)> {
        let mut events = self.events();
        events.sort_by_key(|(stage, _)| *stage);
        let mut out: Vec<(StageId, Vec<EventRef>)> = Vec::new();
        for (stage, ev) in events {
            match out.last_mut() {
                Some((s, list)) if *s == stage => list.push(ev),
                _ => out.push((stage, vec![ev])),
            }
        }
        out
    }

    /// Like [`stage_events`](Self::stage_events), with stage names and
    /// event references resolved.
    pub fn stages(&self) -> Vec<(&'a str, Vec<&'a E>)> {
        let pattern = self.nfa.pattern();
        self.stage_events()
            .into_iter()
            .map(|(stage, evs)| {
                let name = pattern
                    .stages
                    .get(stage.index())
                    .map_or("", |s| s.name.as_str());
                (name, evs.into_iter().map(|e| self.buf.get(e)).collect())
            })
            .collect()
    }

    /// Does the pattern have a `select` section?
    pub fn has_select(&self) -> bool {
        !self.nfa.compiled_select().is_empty()
    }

    /// The `select` values of this match, in `select` order.
    pub fn select(&self) -> Vec<(Arc<str>, Value)>
    where
        E: crate::event::Event,
    {
        self.select_with(self.lookup)
    }

    /// [`select`](Self::select) reading reference lists and indicators
    /// from `lookup` (their state when the match is emitted).
    pub fn select_with(&self, lookup: &dyn crate::lookup::Lookup) -> Vec<(Arc<str>, Value)>
    where
        E: crate::event::Event,
    {
        let events = self.events();
        let select = self.nfa.compiled_select();
        select
            .names()
            .iter()
            .cloned()
            .zip(select.values_with(events.iter().map(|(s, e)| (*s, self.buf.get(*e))), lookup))
            .collect()
    }

    /// An owned copy of the match (events cloned), with no key: the
    /// matcher does not know keys; the engine's
    /// `MatchRef::to_owned` (`cepheid_engine`) fills it.
    pub fn to_owned(&self) -> Match<E>
    where
        E: Clone + crate::event::Event,
    {
        Match {
            pattern: self.nfa.pattern().name.clone(),
            key_fields: Vec::new(),
            key: Vec::new(),
            start: self.start(),
            end: self.end(),
            stages: self
                .stages()
                .into_iter()
                .map(|(n, evs)| (n.to_string(), evs.into_iter().cloned().collect()))
                .collect(),
            select: self
                .select()
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            version: 1,
            versioned: false,
            branch: self.branches(),
            attributes: self.nfa.pattern().attributes.clone(),
            reads: Vec::new(),
        }
    }
}

/// A complete match or a timed-out partial match that owns its events.
///
/// It serializes as part of an [`Output`]: the record `cepheid run`
/// writes (`cli.md`; see [`Output`]'s serde).
#[derive(Clone, Debug, PartialEq)]
pub struct Match<E> {
    /// The pattern's name.
    pub pattern: String,
    /// The pattern's `partition by` fields, as written (`user.id`), in
    /// order: the names of [`key`](Match::key)'s values.
    pub key_fields: Vec<String>,
    /// The values of the pattern's `partition by` fields (empty without).
    pub key: Vec<Value>,
    /// Time of the earliest event.
    pub start: Timestamp,
    /// Time of the latest event.
    pub end: Timestamp,
    /// Stages that took events, in pattern order, events in taken order.
    pub stages: Vec<(String, Vec<E>)>,
    /// `select` values (empty without a `select` section).
    pub select: Vec<(String, Value)>,
    /// The version of the pattern that made it ([`MatchRef::version`]):
    /// 1 unless the pattern was replaced.
    ///
    /// [`MatchRef::version`]: https://docs.rs/cepheid-engine/latest/cepheid_engine/struct.MatchRef.html#method.version
    pub version: u32,
    /// Was the pattern's name replaced during the run, so that its records
    /// say which version made them (`"version"` in the record,
    /// `docs/dynamic-rules.md`)?
    pub versioned: bool,
    /// For a pattern with alternation, the branch (1-based) each of its
    /// alternations took (`"branch"` in the record, `docs/semantics.md`);
    /// `None` for any other pattern.
    pub branch: Option<Vec<Option<u32>>>,
    /// The pattern's rule attributes (`score`, `level`, `action`, `tags`:
    /// `"rule"` in the record, with [`version`](Match::version), when any
    /// is set).
    pub attributes: crate::lookup::Attributes,
    /// What the pattern's conditions read of reference lists and rolling
    /// indicators when it fired, by canonical text (`"reads"` in the
    /// record); empty for a pattern that reads none.
    pub reads: Vec<(String, Value)>,
}

impl<E> Match<E> {
    /// The events of a stage (empty if it took none).
    pub fn stage(&self, name: &str) -> &[E] {
        self.stages
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, evs)| evs.as_slice())
    }

    /// The `select` value named `name`.
    pub fn selected(&self, name: &str) -> Option<&Value> {
        self.select.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// One output, owned: a match, a timeout, a late event, or a partial match
/// dropped by the limit on partial matches per key.
///
/// With `serde` it is the record `cepheid run` writes (`cli.md`), field for
/// field and in the same order: `serde_json::to_string(&output)` of a
/// match, timeout or late event over [`Record`](cepheid_core::record::Record)s
/// is byte for byte the line the command prints for it, and
/// `serde_json::from_str` reads such a line back. A dropped partial match
/// (which the command only counts) is written as a timeout is, with
/// `"kind":"dropped"` and its `end` in place of `expired_at`. A record
/// leaves out what a reader of the output does not need, so these are not
/// read back: a timeout's `end` and `select` (read back: `end` = `start`,
/// no `select`), a late event's `ts` (read back: [`Timestamp::MIN`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output<E> {
    /// A complete match.
    Match(Match<E>),
    /// A partial match whose window closed.
    Timeout {
        /// What the partial match had taken.
        partial: Match<E>,
        /// When its window closed.
        expired_at: Timestamp,
    },
    /// An event at or below the watermark when it arrived (engine only).
    Late {
        /// Its event time.
        ts: Timestamp,
        /// The event.
        event: E,
    },
    /// A partial match dropped because its key held more partial matches
    /// than the engine's limit (`Engine::max_runs_per_key` of `cepheid_engine`; engine only).
    Dropped {
        /// What the partial match had taken.
        partial: Match<E>,
    },
}

impl<E> Output<E> {
    /// The match or partial match, if this is one.
    pub fn as_match(&self) -> Option<&Match<E>> {
        match self {
            Output::Match(m)
            | Output::Timeout { partial: m, .. }
            | Output::Dropped { partial: m } => Some(m),
            Output::Late { .. } => None,
        }
    }
}

/// What a native iterative condition sees of its run: the events the run
/// took before the candidate.
pub struct RunEvents<'a, E> {
    nfa: &'a Nfa<E>,
    buf: &'a SharedBuffer<E>,
    node: NodeRef,
}

impl<'a, E> RunEvents<'a, E> {
    pub fn new(nfa: &'a Nfa<E>, buf: &'a SharedBuffer<E>, node: NodeRef) -> Self {
        RunEvents { nfa, buf, node }
    }
}

impl<E> StageEvents<E> for RunEvents<'_, E> {
    fn for_each(&self, stage: &str, f: &mut dyn FnMut(&E)) {
        let Some(id) = self.nfa.pattern().stage_id(stage) else {
            return;
        };
        let mut events: smallvec::SmallVec<[EventRef; 8]> = smallvec::SmallVec::new();
        self.buf.walk_back(self.node, |s, ev| {
            if s == id {
                events.push(ev);
            }
        });
        for ev in events.into_iter().rev() {
            f(self.buf.get(ev));
        }
    }
}
