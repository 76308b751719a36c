//! A group engine's outputs numbered by the plan. Moved out of
//! `operator.rs` as it was (issue 61, "no file over 1,500 lines").

use super::*;

/// A sink that reports a group engine's patterns by their plan numbers.
pub(super) struct Renumber<'a, S: ?Sized> {
    pub(super) sink: &'a mut S,
    pub(super) numbers: &'a [usize],
    /// After a change of rules: each pattern's number in the rules in
    /// force, by name (an engine's own numbering then counts the old
    /// versions that drain).
    pub(super) names: Option<&'a HashMap<String, usize>>,
}

impl<S: ?Sized> Renumber<'_, S> {
    #[inline]
    pub(super) fn number<E>(&self, m: &MatchRef<'_, E>) -> usize {
        match self.names {
            // (a removed pattern's last outputs: after the others)
            Some(names) => names.get(m.pattern()).copied().unwrap_or(usize::MAX),
            None => self.numbers[m.pattern_index()],
        }
    }
}

impl<E, S: Sink<E> + ?Sized> Sink<E> for Renumber<'_, S> {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        let number = self.number(m);
        if number == m.pattern_index() {
            // (the engine numbers it as the plan does: as it is)
            self.sink.on_match(m);
        } else {
            m.renumbered(number, |m| self.sink.on_match(m));
        }
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        let number = self.number(m);
        if number == m.pattern_index() {
            self.sink.on_timeout(m, expired_at);
        } else {
            m.renumbered(number, |m| self.sink.on_timeout(m, expired_at));
        }
    }

    fn on_late(&mut self, ts: Timestamp, event: &E) {
        self.sink.on_late(ts, event);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, E>) {
        let number = self.number(partial);
        partial.renumbered(number, |m| self.sink.on_dropped(m));
    }

    fn on_decision(&mut self, decision: &crate::engine::Decision) {
        self.sink.on_decision(decision);
    }
}
