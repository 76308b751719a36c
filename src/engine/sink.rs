//! Where the engine's output goes: a [`Sink`] sees every match, timeout and
//! late event as it is produced (borrowing the event store, no copies), and
//! [`Collector`] is the sink that keeps owned [`Output`] records.

use crate::engine::automaton::{Automaton, MatchAccess};
use crate::event::{FieldPath, Timestamp};
use crate::value::{KeyValue, Value};

/// Which pattern and key produced an output.
#[derive(Clone, Copy, Debug)]
pub struct MatchContext<'a> {
    /// Index of the pattern in the engine (the order it was added).
    pub pattern: usize,
    /// The pattern's name.
    pub name: &'a str,
    /// The pattern's `partition by` fields.
    pub key_fields: &'a [FieldPath],
    /// The values of those fields for this partition (empty for a pattern
    /// without `partition by`).
    pub key: &'a KeyValue,
    /// Does the pattern have a `select` section?
    pub has_select: bool,
}

impl<'a> MatchContext<'a> {
    /// The context of pattern number `pattern`, for the partition `key`.
    pub fn new(
        pattern: usize,
        ir: &'a crate::pattern::Pattern,
        key_fields: &'a [FieldPath],
        key: &'a KeyValue,
    ) -> MatchContext<'a> {
        MatchContext {
            pattern,
            name: &ir.name,
            key_fields,
            key,
            has_select: !ir.select.is_empty(),
        }
    }
}

/// Receives the engine's output as it is produced.
pub trait Sink<E, A: Automaton<E>> {
    /// A complete match.
    fn on_match(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>);

    /// A partial match whose window closed at `expired_at`.
    fn on_timeout(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>, expired_at: Timestamp);

    /// An event that arrived at or below the watermark and was not matched.
    fn on_late(&mut self, ts: Timestamp, event: &E);
}

/// An owned match or timed-out partial match.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchRecord<E> {
    /// The pattern's name.
    pub pattern: String,
    /// The partition key values (see [`MatchContext::key`]).
    pub key: KeyValue,
    /// Time of the first event.
    pub start: Timestamp,
    /// Time of the last event.
    pub end: Timestamp,
    /// Each stage that took events, in pattern order, with its events.
    pub stages: Vec<(String, Vec<E>)>,
    /// The `select` values (empty without a `select` section).
    pub select: Vec<(String, Value)>,
}

impl<E: Clone> MatchRecord<E> {
    /// Copies a match out of the event store.
    pub fn from_view(ctx: &MatchContext<'_>, m: &dyn MatchAccess<E>) -> MatchRecord<E> {
        let mut stages = Vec::new();
        m.visit_stages(&mut |name, events| {
            stages.push((name.to_string(), events.cloned().collect()));
        });
        MatchRecord {
            pattern: ctx.name.to_string(),
            key: ctx.key.clone(),
            start: m.start(),
            end: m.end(),
            stages,
            select: if ctx.has_select {
                m.select()
            } else {
                Vec::new()
            },
        }
    }

    /// The events of one stage (empty if it took none).
    pub fn stage(&self, name: &str) -> &[E] {
        self.stages
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, events)| events.as_slice())
    }
}

/// One output of the engine, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<E> {
    /// A complete match.
    Match(MatchRecord<E>),
    /// A partial match that expired.
    Timeout {
        /// What the partial match had taken.
        partial: MatchRecord<E>,
        /// When its window closed.
        expired_at: Timestamp,
    },
    /// A late event.
    Late {
        /// Its event time.
        ts: Timestamp,
        /// The event.
        event: E,
    },
}

/// A sink that keeps every output, in the order produced (see the
/// [module example](crate::engine)).
#[derive(Clone, Debug)]
pub struct Collector<E> {
    outputs: Vec<Output<E>>,
}

impl<E> Default for Collector<E> {
    fn default() -> Self {
        Collector {
            outputs: Vec::new(),
        }
    }
}

impl<E> Collector<E> {
    /// Takes the outputs collected so far.
    pub fn take(&mut self) -> Vec<Output<E>> {
        std::mem::take(&mut self.outputs)
    }

    /// The outputs collected so far.
    pub fn outputs(&self) -> &[Output<E>] {
        &self.outputs
    }
}

impl<E: Clone, A: Automaton<E>> Sink<E, A> for Collector<E> {
    fn on_match(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>) {
        self.outputs
            .push(Output::Match(MatchRecord::from_view(ctx, m)));
    }

    fn on_timeout(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>, expired_at: Timestamp) {
        self.outputs.push(Output::Timeout {
            partial: MatchRecord::from_view(ctx, m),
            expired_at,
        });
    }

    fn on_late(&mut self, ts: Timestamp, event: &E) {
        self.outputs.push(Output::Late {
            ts,
            event: event.clone(),
        });
    }
}
