//! The real matcher behind the engine: [`Nfa`] as an [`Automaton`], the
//! [`SharedBuffer`] as its event store, [`MatchView`] as its matches, and
//! [`Engine::add_pattern`] to compile and add a pattern in one step.

use std::fmt;

use crate::engine::automaton::{Automaton, EventStore, MatchAccess, Reporter};
use crate::engine::core::Engine;
use crate::event::{Event, FieldResolver, Timestamp};
use crate::matcher::{EventRef, MatchSink, MatchView, Partition, SharedBuffer};
use crate::nfa::{CompileError, Nfa};
use crate::pattern::Pattern;
use crate::value::Value;

impl<E> EventStore<E> for SharedBuffer<E> {
    type Ref = EventRef;

    fn insert(&mut self, ts: Timestamp, event: E) -> EventRef {
        SharedBuffer::insert(self, ts, event)
    }

    fn release_if_unused(&mut self, event: EventRef) {
        SharedBuffer::release_if_unused(self, event)
    }

    fn get(&self, event: EventRef) -> &E {
        SharedBuffer::get(self, event)
    }

    fn live_events(&self) -> usize {
        SharedBuffer::live_events(self)
    }
}

impl<E: Event> MatchAccess<E> for MatchView<'_, E> {
    fn start(&self) -> Timestamp {
        MatchView::start(self)
    }

    fn end(&self) -> Timestamp {
        MatchView::end(self)
    }

    fn visit_stages(&self, visit: &mut dyn FnMut(&str, &mut dyn Iterator<Item = &E>)) {
        // One vector of (stage, event) in the order taken, sorted stably by
        // stage: each stage's events stay in the order taken. (Not
        // `stages()`, which allocates a vector per stage.)
        let mut events = self.events();
        events.sort_by_key(|&(stage, _)| stage);
        let stages = &MatchView::pattern(self).stages;
        for group in events.chunk_by(|a, b| a.0 == b.0) {
            let name = stages
                .get(group[0].0.index())
                .map_or("", |s| s.name.as_str());
            visit(
                name,
                &mut group.iter().map(|&(_, ev)| MatchView::get(self, ev)),
            );
        }
    }

    fn select(&self) -> Vec<(String, Value)> {
        MatchView::select(self)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }
}

/// Passes the matcher's output on to the engine's reporter.
struct Relay<'r, E>(&'r mut dyn Reporter<E, Nfa<E>>);

impl<E: Event> MatchSink<E> for Relay<'_, E> {
    fn on_match(&mut self, m: &MatchView<'_, E>) {
        self.0.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchView<'_, E>, expired_at: Timestamp) {
        self.0.on_timeout(m, expired_at);
    }
}

impl<E: Event> Automaton<E> for Nfa<E> {
    type Partition = Partition;
    type Store = SharedBuffer<E>;
    type View<'s>
        = MatchView<'s, E>
    where
        E: 's;

    fn pattern(&self) -> &Pattern {
        Nfa::pattern(self)
    }

    fn advance_time(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        t: Timestamp,
        out: &mut dyn Reporter<E, Self>,
    ) {
        Nfa::advance_time(self, part, store, t, &mut Relay(out));
    }

    fn process(
        &self,
        part: &mut Partition,
        store: &mut SharedBuffer<E>,
        event: EventRef,
        out: &mut dyn Reporter<E, Self>,
    ) {
        Nfa::process(self, part, store, event, &mut Relay(out));
    }

    fn clear(&self, part: &mut Partition, store: &mut SharedBuffer<E>) {
        Nfa::clear(self, part, store);
    }

    fn is_empty(part: &Partition) -> bool {
        part.is_empty()
    }

    fn next_deadline(part: &Partition) -> Option<Timestamp> {
        part.next_deadline()
    }
}

/// Why [`Engine::add_pattern`] refused a pattern.
#[derive(Debug)]
pub enum AddPatternError {
    /// The pattern does not compile for this event type.
    Compile(CompileError),
    /// A `partition by` field does not exist for this event type.
    Key(String),
}

impl fmt::Display for AddPatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddPatternError::Compile(e) => write!(f, "{e}"),
            AddPatternError::Key(e) => write!(f, "partition by: {e}"),
        }
    }
}

impl std::error::Error for AddPatternError {}

impl<E: Event + 'static> Engine<E, Nfa<E>> {
    /// Compiles `pattern` for `E` (fields resolved with `fields`) and adds
    /// it; returns its index.
    pub fn add_pattern(
        &mut self,
        pattern: &Pattern,
        fields: &mut dyn FieldResolver,
    ) -> Result<usize, AddPatternError> {
        let nfa = Nfa::<E>::compile(pattern, fields).map_err(AddPatternError::Compile)?;
        self.add(nfa, fields).map_err(AddPatternError::Key)
    }
}
