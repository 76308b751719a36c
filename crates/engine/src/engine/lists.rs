//! The engine's front door to its reference lists and rolling indicators
//! (`docs/semantics.md`, "Lists and indicators"): changes of a list
//! applied at a point of event time, and reads of the state.

use std::time::Duration;

use crate::engine::automaton::Automaton;
use crate::engine::core::Core;
use crate::engine::front::Engine;
use crate::engine::memory::{Change, EntryOrigin, LeftOut, MemoryStats};
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::lookup::ListId;
use crate::lookup::{Declarations, Lookup, WriteOp};
use crate::primitives::Timestamp;
use crate::value::{Value, ValueRef};

impl<E: Event + 'static> Engine<E> {
    /// Takes the lists and indicators of a rule set being added
    /// ([`Core::adopt_declarations`]).
    pub(super) fn adopt_declarations<'p>(
        &mut self,
        set: Option<&Declarations>,
        patterns: impl IntoIterator<Item = &'p crate::pattern::Pattern>,
        fields: &mut E::Fields,
    ) -> Result<(), Error> {
        self.core.adopt_declarations(set, patterns, fields)
    }

    /// Declares `table`, a rule set's lists and indicators, whatever the
    /// engine's patterns read of them: for an engine that runs a part of
    /// a rule set (a dataflow worker's engine of one group of patterns)
    /// and must keep its indicators over its events from the start, as
    /// one engine running the whole set does, so that a pattern the
    /// rules add later reads them as it would there. What the engine has
    /// of the same name and definition keeps its state; a table the
    /// engine's extends already changes nothing.
    pub fn set_declarations(&mut self, table: &Declarations) -> Result<(), Error> {
        let mut fields = self.fields.clone();
        self.adopt_declarations(Some(table), std::iter::empty(), &mut fields)?;
        self.fields = fields;
        self.read_new_fields();
        Ok(())
    }

    /// The lists and indicators of the rule set in force (declared by the
    /// [`Rules`](crate::Rules) added).
    pub fn declarations(&self) -> &Declarations {
        self.core.memory.declarations()
    }

    /// Adds `value` to list `list` at event time `at`, for `lifetime` (or
    /// the list's own `for`, or for ever): events at or after `at` see it,
    /// and events from `at + lifetime` on no longer do. The library's hold
    /// of the value ([`EntryOrigin::Library`]): another origin's remove
    /// leaves it in the list ([`add_to_list_by`](Engine::add_to_list_by)). Applied when event
    /// time reaches `at`, before the deadlines and events of that time;
    /// changes of one time in the order they were made. A change at or
    /// below the watermark applies at once (from the next event on, and is
    /// counted in [`MemoryStats::late_changes`]). So a replay of the same
    /// input and the same changes gives the same output.
    ///
    /// ```
    /// use cepheid_engine::{Engine, Record, Rules, Output};
    /// let rules = Rules::parse("r.cep", r#"
    ///     list blocked
    ///     pattern hit { match a where a: ip in blocked }
    /// "#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// engine.add_to_list("blocked", "10.0.0.1".into(), 2, None)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// engine.push_json(r#"{"ts": 1, "ip": "10.0.0.1"}"#, "ts", &mut out)?;
    /// engine.push_json(r#"{"ts": 2, "ip": "10.0.0.1"}"#, "ts", &mut out)?;
    /// engine.finish(&mut out);
    /// assert_eq!(out.len(), 1); // the event at 2 only
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn add_to_list(
        &mut self,
        list: &str,
        value: Value,
        at: Timestamp,
        lifetime: Option<Duration>,
    ) -> Result<(), Error> {
        let lifetime = lifetime.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let origin = EntryOrigin::Library;
        self.core
            .change_list(list, (WriteOp::Add, origin), value, at, (lifetime, None))
    }

    /// Adds `value` to list `list` at event time `at`, until event time
    /// `until` (`None`: the list's own `for`, or for ever): as
    /// [`add_to_list`](Engine::add_to_list), with the expiry a time rather
    /// than a lifetime (an entry of a reference file says when it
    /// expires). An entry whose `until` has passed when it applies is
    /// not there: the change ends the library's hold of the value.
    pub fn add_to_list_until(
        &mut self,
        list: &str,
        value: Value,
        at: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<(), Error> {
        self.add_to_list_by(&EntryOrigin::Library, list, value, at, until)
    }

    /// Removes `value` from list `list` at event time `at` (as
    /// [`add_to_list`](Engine::add_to_list) orders it): ends the
    /// library's hold of it, and the value leaves the list unless another
    /// origin holds it ([`remove_from_list_by`](Engine::remove_from_list_by)).
    pub fn remove_from_list(
        &mut self,
        list: &str,
        value: Value,
        at: Timestamp,
    ) -> Result<(), Error> {
        self.remove_from_list_by(&EntryOrigin::Library, list, value, at)
    }

    /// `origin` holds `value` in list `list` from event time `at` until
    /// event time `until` (`None`: for the list's own `for`, or for ever),
    /// as [`add_to_list_until`](Engine::add_to_list_until) adds: each
    /// origin holds a value apart, with an expiry of its own, and the value
    /// is in the list while one of its holds is alive (`docs/lists.md`,
    /// "Origins"). A reference file's entries are held by the file.
    ///
    /// ```
    /// use cepheid_engine::engine::EntryOrigin;
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let rules = Rules::parse("r.cep", "list blocked\npattern p { match a where a: ip in blocked }")?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// let (a, b) = (EntryOrigin::File("a.csv".into()), EntryOrigin::File("b.csv".into()));
    /// engine.add_to_list_by(&a, "blocked", "c-1".into(), 1, None)?;
    /// engine.add_to_list_by(&b, "blocked", "c-1".into(), 1, None)?;
    /// // a.csv drops it: b.csv still holds it.
    /// engine.remove_from_list_by(&a, "blocked", "c-1".into(), 2)?;
    /// engine.remove_from_list_by(&b, "blocked", "c-1".into(), 3)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// for ts in 1..=3 {
    ///     engine.push_json(&format!(r#"{{"ts": {ts}, "ip": "c-1"}}"#), "ts", &mut out)?;
    /// }
    /// engine.finish(&mut out);
    /// // The events at 1 and 2 see it (b.csv holds it), the one at 3 not.
    /// assert_eq!(out.len(), 2);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn add_to_list_by(
        &mut self,
        origin: &EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<(), Error> {
        let op = (WriteOp::Add, origin.clone());
        self.core.change_list(list, op, value, at, (None, until))
    }

    /// `origin` lets `value` of list `list` go at event time `at`: its
    /// hold ends, and the value leaves the list unless another origin
    /// holds it ([`add_to_list_by`](Engine::add_to_list_by)).
    pub fn remove_from_list_by(
        &mut self,
        origin: &EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
    ) -> Result<(), Error> {
        let op = (WriteOp::Remove, origin.clone());
        self.core.change_list(list, op, value, at, (None, None))
    }

    /// From now on the `then` writes of the engine's rules are not made
    /// here but kept for [`take_list_writes`](Engine::take_list_writes):
    /// for an engine that runs a part of a rule set (a dataflow worker's)
    /// and hands its writes to every engine of the set, itself included,
    /// which each make them with
    /// [`make_list_writes`](Engine::make_list_writes). One engine makes
    /// its own (the default).
    pub fn hand_out_list_writes(&mut self) {
        self.core.handed.get_or_insert_with(Vec::new);
    }

    /// Moves the writes the engine's rules made since the last call to
    /// `out` (after [`hand_out_list_writes`](Engine::hand_out_list_writes);
    /// none before it), each with the event time it applies at (its
    /// step's time + 1) and its entry's expiry as a time.
    pub fn take_list_writes(&mut self, out: &mut Vec<ListWrite>) {
        let Some(handed) = self.core.handed.as_mut() else {
            return;
        };
        let memory = &self.core.memory;
        out.extend(handed.drain(..).filter_map(|(at, change)| {
            let decl = memory.declarations().lists.get(change.list.0 as usize)?;
            let expires = match change.op {
                WriteOp::Add => memory.expiry_of(&change),
                WriteOp::Remove => None,
            };
            Some(ListWrite {
                at,
                list: decl.name.to_string(),
                add: change.op == WriteOp::Add,
                value: change.value,
                expires,
                shadow: change.shadow,
            })
        }));
    }

    /// Makes `writes` (another engine's, or this one's, taken with
    /// [`take_list_writes`](Engine::take_list_writes)) at their times, as
    /// this engine makes its own: before the deadlines and events of
    /// their time, before the changes made through
    /// [`add_to_list`](Engine::add_to_list) for that time, writes of one
    /// time in one order whatever order they come in
    /// (`docs/semantics.md`, "Writes by rules"). A write for a time the
    /// engine has passed is made at once and counted
    /// ([`MemoryStats::late_changes`]); one of a list the rules do not
    /// declare is left out.
    pub fn make_list_writes(&mut self, writes: &[ListWrite]) {
        for w in writes {
            let Some(id) = self.core.memory.list_id(&w.list) else {
                continue;
            };
            self.make_list_write(id, w);
        }
    }

    fn make_list_write(&mut self, list: ListId, w: &ListWrite) {
        let change = Change {
            list,
            op: if w.add { WriteOp::Add } else { WriteOp::Remove },
            value: w.value.clone(),
            lifetime: None,
            // (an entry for ever is one for ever: not the list's `for`)
            until: if w.add {
                Some(w.expires.unwrap_or(Timestamp::MAX))
            } else {
                None
            },
            from: Some(w.at.saturating_sub(1)),
            shadow: w.shadow,
            origin: EntryOrigin::Rules,
        };
        self.core.memory.write_at(w.at, change);
    }

    /// Makes each list that `other` declares alike (the same name and
    /// kind) hold what it holds there now: its entries, and its changes
    /// scheduled for later event times. For an engine made while others
    /// of the same rules run, which must see the lists as they do (a
    /// dataflow worker's engine of a group of patterns that a change of
    /// rules adds, whose lists no event could have changed yet). Lists
    /// `other` does not declare, or declares of another kind, are left as
    /// they are.
    pub fn copy_lists_from(&mut self, other: &Engine<E>) {
        self.core.memory.copy_lists(&other.core.memory);
    }

    /// The event time of the last change of a list made for a time the
    /// engine has not reached yet (`None`: none waits). A change made
    /// after those, for whatever came later (a reference file changed
    /// while a run was stopped), is made at this time, not before it, so
    /// that they do not undo it.
    pub fn last_list_change_waiting(&self) -> Option<Timestamp> {
        self.core.memory.last_scheduled()
    }

    /// Visits each value `origin` holds in list `list`, with its hold's
    /// expiry (`None`: it does not expire), as the list will hold them
    /// once the changes scheduled so far are made (an add or remove of
    /// [`add_to_list_by`](Engine::add_to_list_by) for a later event
    /// time counts as made): what a reference file gave, by the file
    /// (`docs/lists.md`, "Origins"), which a new read of the file is
    /// compared with. A hold may have expired at the engine's time
    /// ([`lists_time`](Engine::lists_time)) and its entry not be swept
    /// yet. A value is given as the list holds it: numbers normalized
    /// (`3.0` is `3`), a prefix as its text, a network in
    /// [`network_text`](crate::engine::network_text)'s spelling. An error
    /// for a list the rules do not declare.
    pub fn list_held_by(
        &self,
        list: &str,
        origin: &EntryOrigin,
        visit: &mut dyn FnMut(ValueRef<'_>, Option<Timestamp>),
    ) -> Result<(), Error> {
        let id = self.core.list_named(list)?;
        (self.core.memory).each_held_by(id, origin, &mut |value, expires| {
            visit(value, Some(expires).filter(|&e| e != Timestamp::MAX));
        });
        Ok(())
    }

    /// Until when `origin` holds `value` in list `list`, as
    /// [`list_held_by`](Engine::list_held_by) gives it: `None` when it
    /// holds it not (or the list cannot hold such a value), `Some(None)`
    /// when its hold does not expire. An error for a list the rules do
    /// not declare.
    pub fn list_hold_by(
        &self,
        list: &str,
        origin: &EntryOrigin,
        value: ValueRef<'_>,
    ) -> Result<Option<Option<Timestamp>>, Error> {
        let id = self.core.list_named(list)?;
        let hold = self.core.memory.hold_by(id, origin, value);
        Ok(hold.map(|expires| Some(expires).filter(|&e| e != Timestamp::MAX)))
    }

    /// The event time the engine's lists have reached: their changes and
    /// their entries' expiries up to it are made.
    pub fn lists_time(&self) -> Timestamp {
        self.core.memory.lists_time()
    }

    /// Does list `list` hold `value` now (at the engine's event time)?
    /// `None` for a list that does not exist or a value no entry matches
    /// (null). The list the live rules read: not its shadow copy, which
    /// holds the shadow rules' writes (`docs/semantics.md`, "Shadow
    /// rules").
    pub fn list_contains(&self, list: &str, value: ValueRef<'_>) -> Option<bool> {
        let id = self.core.memory.list_id(list)?;
        self.core.memory.contains(id, value)
    }

    /// The value of indicator `indicator` for the group `key` now (at the
    /// engine's event time); `None` for an indicator that does not exist.
    pub fn indicator_value(&self, indicator: &str, key: &[ValueRef<'_>]) -> Option<Value> {
        let id = self.core.memory.indicator_id(indicator)?;
        Some(self.core.memory.indicator(id, key))
    }

    /// Each list of the rule set in force, by name, with the entries it
    /// holds now (expired ones leave as event time passes them); the
    /// entries shadow rules' writes added to its shadow copy are not
    /// counted ([`MemoryStats::shadow_entries`] counts them).
    pub fn list_sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.core.memory.list_sizes()
    }

    /// Keeps only the rolling indicators whose `group by` has every field
    /// of `key` (`None`: all, the default), and spends nothing on the
    /// others, whose values stay those of an empty window. For an engine
    /// that gets the events of some values of `key` only (a dataflow
    /// worker's engine of the patterns partitioned by `key`): the other
    /// indicators cannot be read there as one engine reads them, unless
    /// the engine gets every other event for them too
    /// ([`share_indicators`](Engine::share_indicators)). It holds across
    /// changes of rules and restores.
    pub fn keep_indicators_grouped_by(&mut self, key: Option<Vec<crate::event::FieldPath>>) {
        self.core.memory.set_scope(key);
    }

    /// With `shared`, keeps every rolling indicator over every event of
    /// the stream: the engine's own and those given with
    /// [`push_for_indicators`](Engine::push_for_indicators) (the events of
    /// other keys, which other engines get), those out of the scope of
    /// [`keep_indicators_grouped_by`](Engine::keep_indicators_grouped_by)
    /// too. An engine of a dataflow worker whose patterns read indicators
    /// their `partition by` does not fix gets every event of the stream
    /// so: whatever group a call reads (another key's, a constant's), its
    /// value is one engine's. It holds across changes of rules and
    /// restores.
    pub fn share_indicators(&mut self, shared: bool) {
        self.core.memory.set_shared(shared);
    }

    /// Takes in an event that only the indicators shared over the stream
    /// take ([`share_indicators`](Engine::share_indicators)), at its place
    /// in (time, arrival) order among the events pushed: before the events
    /// pushed after it, after those pushed before it, of the same time
    /// too. No pattern sees it, nothing counts it (the engine whose own it
    /// is counts it), and one at or below the watermark is dropped with
    /// nothing said. A snapshot is refused while such an event waits for
    /// the watermark.
    pub fn push_for_indicators<S: crate::engine::Sink<E> + ?Sized>(
        &mut self,
        ts: crate::primitives::Timestamp,
        event: E,
        sink: &mut S,
    ) {
        self.core.push_for_indicators(ts, event, sink);
        self.core.reap();
    }

    /// Counters and sizes of the lists and indicators.
    pub fn memory_stats(&self) -> MemoryStats {
        self.core.memory.stats
    }

    /// What the limits and the values left out of each list and
    /// indicator, by name, since the engine started or since the start of
    /// the run whose snapshot it was restored from
    /// ([`max_list_entries`](Engine::max_list_entries),
    /// [`max_indicator_entries`](Engine::max_indicator_entries), values
    /// that are not numbers or no list entry): what a run says and counts
    /// in its summary (`docs/semantics.md`, "Lists and indicators").
    /// Reading it costs nothing (it is kept as it happens).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cepheid_engine::{Engine, Record, Rules};
    /// let rules = Rules::parse("r.cep", r#"
    ///     indicator spent = sum(amount) group by card within 1h
    ///     pattern big { match e where e: spent(card) > 100 }"#)?;
    /// let mut engine: Engine<Record> =
    ///     Engine::with_max_delay(Duration::ZERO).max_indicator_entries(1);
    /// engine.add(&rules)?;
    /// let mut out = Vec::new();
    /// for line in [
    ///     r#"{"ts": 1, "card": "c1", "amount": "ten"}"#,
    ///     r#"{"ts": 2, "card": "c1", "amount": 10}"#,
    ///     r#"{"ts": 3, "card": "c1", "amount": 20}"#,
    ///     r#"{"$watermark": 3}"#,
    /// ] {
    ///     engine.push_json(line, "ts", &mut out)?;
    /// }
    /// let spent = &engine.left_out().indicators["spent"];
    /// assert_eq!((spent.value, spent.limit), (1, 1)); // "ten"; 20 past the limit
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn left_out(&self) -> &LeftOut {
        &self.core.memory.left_out
    }

    /// Sets what the limits and values left out
    /// ([`left_out`](Engine::left_out)), their sums in
    /// [`memory_stats`](Engine::memory_stats) with it: for an engine that
    /// goes on for engines of parts of one stream
    /// ([`absorb`](Engine::absorb) leaves it as it was), which gather
    /// theirs with [`LeftOutParts`](crate::engine::LeftOutParts).
    pub fn set_left_out(&mut self, left_out: LeftOut) {
        self.core.memory.restore_left_out(left_out);
    }

    /// At most `limit` entries per list (default
    /// [`DEFAULT_MAX_LIST_ENTRIES`](crate::engine::DEFAULT_MAX_LIST_ENTRIES)):
    /// an add beyond it is refused and counted
    /// ([`MemoryStats::refused_entries`]).
    pub fn max_list_entries(mut self, limit: usize) -> Self {
        self.core.memory.max_list_entries = limit;
        self
    }

    /// At most `limit` window entries over all indicators (default
    /// [`DEFAULT_MAX_INDICATOR_ENTRIES`](crate::engine::DEFAULT_MAX_INDICATOR_ENTRIES)):
    /// an event beyond it is left out of the indicators and counted
    /// ([`MemoryStats::refused_events`]); patterns still see it.
    pub fn max_indicator_entries(mut self, limit: usize) -> Self {
        self.core.memory.max_indicator_entries = limit;
        self
    }
}

/// A `then` write of a rule, handed out by an engine
/// ([`Engine::take_list_writes`]) to be made by others
/// ([`Engine::make_list_writes`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListWrite {
    at: Timestamp,
    list: String,
    add: bool,
    #[serde(with = "cepheid_core::persist::via")]
    value: Value,
    expires: Option<Timestamp>,
    /// A shadow rule's write, made to the list's shadow copy
    /// (`docs/semantics.md`, "Shadow rules").
    shadow: bool,
}

impl ListWrite {
    /// The event time it applies at: the millisecond after the step
    /// that made it.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The list it writes to.
    pub fn list(&self) -> &str {
        &self.list
    }

    /// An add (else a remove)?
    pub fn is_add(&self) -> bool {
        self.add
    }

    /// The value added or removed.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// An add's expiry (`None`: for ever, or a remove).
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires
    }

    /// A shadow rule's write (made to the list's shadow copy, never to
    /// the list the live rules read)?
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// Takes the lists and indicators of a rule set being added: `set`'s
    /// own table (a [`Rules`](crate::Rules)' declarations), else the
    /// largest table its patterns carry
    /// ([`Pattern::declarations`](crate::pattern::Pattern::declarations):
    /// a pattern added alone, or shared from another engine). A table
    /// that extends the engine's (the same names first, more after)
    /// replaces it, keeping the state of what it keeps; so does one that
    /// does not agree with it; one the engine's extends changes nothing.
    pub(super) fn adopt_declarations<'p>(
        &mut self,
        set: Option<&Declarations>,
        patterns: impl IntoIterator<Item = &'p crate::pattern::Pattern>,
        fields: &mut E::Fields,
    ) -> Result<(), Error> {
        let carried = patterns
            .into_iter()
            .filter_map(|p| p.declarations.as_deref())
            .max_by_key(|d| d.len());
        let Some(table) = set.filter(|d| !d.is_empty()).or(carried) else {
            return Ok(());
        };
        let current = self.memory.declarations();
        if current.extends(table) && (set.is_none() || table.extends(current)) {
            return Ok(());
        }
        self.memory
            .declare(table, fields)
            .map_err(|e| Error::new(ErrorKind::Field, e))
    }
}

impl<E: Event, A: Automaton<E>> Core<E, A> {
    /// Schedules `op` of `origin`'s hold of `value` in list `list` at
    /// event time `at` (for `lifetime`, or until `until`): the changes of
    /// lists a caller makes, on a plain engine and on one that traces a
    /// key alike (`Why::add_to_list_by`).
    pub(super) fn change_list(
        &mut self,
        list: &str,
        (op, origin): (WriteOp, EntryOrigin),
        value: Value,
        at: Timestamp,
        (lifetime, until): (Option<i64>, Option<Timestamp>),
    ) -> Result<(), Error> {
        let id = self.list_named(list)?;
        let watermark = self.current_watermark();
        self.memory.schedule(
            at,
            Change {
                list: id,
                op,
                value,
                lifetime,
                until,
                from: None,
                shadow: false,
                origin,
            },
            watermark,
        );
        Ok(())
    }

    /// The list named `list`, or an error that names it.
    pub(super) fn list_named(&self, list: &str) -> Result<ListId, Error> {
        self.memory.list_id(list).ok_or_else(|| {
            Error::new(
                ErrorKind::Pattern,
                format!("there is no list `{list}` in the rule set"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::memory::EntryOrigin;
    use crate::primitives::Timestamp;
    use crate::value::{Value, ValueRef};
    use crate::{Engine, Output, Record, Rules};

    fn held(engine: &Engine<Record>, origin: &EntryOrigin) -> Vec<(String, Option<Timestamp>)> {
        let mut held = Vec::new();
        let mut visit = |v: ValueRef<'_>, e| held.push((v.to_owned().to_string(), e));
        engine.list_held_by("blocked", origin, &mut visit).unwrap();
        held.sort();
        held
    }

    /// What an origin holds, as a new read of its file is compared with:
    /// its changes made and those scheduled for later event times, each
    /// origin apart, values as the list holds them.
    #[test]
    fn an_origins_holds_count_its_changes_scheduled_for_later() {
        let rules = Rules::parse(
            "r.cep",
            "list blocked for 1h\npattern p { match a where a: ip in blocked }",
        )
        .unwrap();
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        let (a, b) = (
            EntryOrigin::File("a.csv".into()),
            EntryOrigin::File("b.csv".into()),
        );
        engine
            .add_to_list_by(
                &a,
                "blocked",
                Value::Float(3.0),
                Timestamp::MIN,
                Some(Timestamp::MAX),
            )
            .unwrap();
        engine
            .add_to_list_by(&a, "blocked", "c-1".into(), Timestamp::MIN, Some(500))
            .unwrap();
        engine
            .add_to_list_by(
                &b,
                "blocked",
                "c-1".into(),
                Timestamp::MIN,
                Some(Timestamp::MAX),
            )
            .unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        engine
            .push_json(r#"{"ts": 100, "ip": "x"}"#, "ts", &mut out)
            .unwrap();
        assert_eq!(
            held(&engine, &a),
            [("\"c-1\"".to_string(), Some(500)), ("3".to_string(), None)]
        );
        // Changes for later times count as made: a.csv drops `3`, holds
        // `c-1` longer and `c-2` anew; b.csv's hold stays its own.
        engine
            .remove_from_list_by(&a, "blocked", Value::Int(3), 1000)
            .unwrap();
        engine
            .add_to_list_by(&a, "blocked", "c-1".into(), 1000, Some(9000))
            .unwrap();
        engine
            .add_to_list_by(&a, "blocked", "c-2".into(), 2000, Some(Timestamp::MAX))
            .unwrap();
        assert_eq!(
            held(&engine, &a),
            [
                ("\"c-1\"".to_string(), Some(9000)),
                ("\"c-2\"".to_string(), None)
            ]
        );
        assert_eq!(held(&engine, &b), [("\"c-1\"".to_string(), None)]);
        let hold = |v: ValueRef<'_>| engine.list_hold_by("blocked", &a, v).unwrap();
        assert_eq!(hold(ValueRef::Float(3.0)), None);
        assert_eq!(hold(ValueRef::Str("c-1")), Some(Some(9000)));
        assert_eq!(hold(ValueRef::Str("c-2")), Some(None));
        assert_eq!(hold(ValueRef::Str("c-3")), None);
        // (the event at 100 waits for the watermark: the lists are before
        // it until the watermark passes it)
        assert_eq!(engine.lists_time(), Timestamp::MIN);
        engine.watermark(150, &mut out);
        assert_eq!(engine.lists_time(), 100);
        assert_eq!(held(&engine, &a).len(), 2);
        assert!(engine.list_held_by("nope", &a, &mut |_, _| {}).is_err());
    }
}
