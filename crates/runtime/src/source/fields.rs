//! Fields a pattern reads that no event carried (issue 25: a misspelt
//! field in a condition is valid, and matches nothing, ever), said once
//! per pattern and field ([`FieldWarnings`]). Each reader's decoders watch
//! the fields ([`Decoder::watch_fields`]); what a reader saw
//! ([`FieldsSeen`]) comes here now and then, never per event: one engine's
//! reader thread once it decoded [`Config::field_warnings`] events and at
//! the end of its input; a worker's reader of chunks at the end of each
//! chunk. Once the readers decoded that many events together, what none
//! of them carried is said; at the end of the input, what none carried
//! and was not said.
//!
//! [`Config::field_warnings`]: crate::Config::field_warnings

use std::collections::HashSet;
use std::sync::Mutex;

use crate::FieldWatch;

use super::*;
use crate::{Level, Notice};

/// The warnings about fields no event carried, over one reader or several
/// (the workers' readers of a process); shared between threads.
pub struct FieldWarnings {
    /// Said once the readers decoded this many events.
    after: u64,
    /// A resumed run (what it saw before the checkpoint is not kept):
    /// nothing is said of a reading of no event.
    resumed: bool,
    state: Mutex<State>,
}

struct State {
    /// Where the patterns in force read each field.
    watch: FieldWatch,
    /// What each reader saw so far (`None` before it said anything).
    seen: Vec<Option<FieldsSeen>>,
    /// The (pattern, field) pairs said already.
    told: HashSet<(String, String)>,
    /// The pairs decided before the checkpoint a run resumed from
    /// ([`FieldsTold::settled`]).
    settled: HashSet<(String, String)>,
    /// What the readers saw before the checkpoint a run resumed from,
    /// taken before its first `after` events were looked at
    /// ([`FieldsTold::seen`]): added to what they see since.
    before: Option<FieldsSeen>,
    /// Were the first `after` events looked at?
    looked: bool,
}

/// What a checkpoint keeps of the field warnings (the marker's counters):
/// were the first events looked at, and the (pattern, field) pairs said.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldsTold {
    looked: bool,
    told: Vec<(String, String)>,
    /// Once the first events were looked at, every (pattern, field) pair
    /// then read: each was seen in them or said, so that a resumed run,
    /// whose input since the checkpoint may lack a field seen before it,
    /// says nothing more of it.
    settled: Vec<(String, String)>,
    /// Before the first events were looked at, what the readers saw so
    /// far (the fields that occurred, the events, the names of the
    /// sample): a resumed run adds what it reads to it, so that it looks
    /// at the first events of the whole input, not at its own (a field
    /// seen only before the checkpoint was said to be missing: issue 60,
    /// item 17). None in checkpoints of before it (then a resumed run
    /// looks at its own first events), nor once looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<FieldsSeen>,
}

impl State {
    /// What the readers saw, with what was seen before the checkpoint a
    /// run resumed from.
    fn merged(&self) -> FieldsSeen {
        let mut merged = self.before.clone().unwrap_or_default();
        for seen in self.seen.iter().flatten() {
            merged.merge(seen);
        }
        merged
    }
}

impl FieldWarnings {
    /// The warnings after `after` events of the patterns `watch`
    /// describes, over `readers` readers.
    pub fn new(after: u64, watch: FieldWatch, readers: usize) -> FieldWarnings {
        FieldWarnings {
            after,
            resumed: false,
            state: Mutex::new(State {
                watch,
                seen: vec![None; readers],
                told: HashSet::new(),
                settled: HashSet::new(),
                before: None,
                looked: false,
            }),
        }
    }

    /// Of a resumed run: a reading of no event says nothing (where it
    /// said "never occurs in 0 events": the fields seen before the
    /// checkpoint are not kept).
    pub(crate) fn resumed(mut self, resumed: bool) -> FieldWarnings {
        self.resumed = resumed;
        self
    }

    /// Of a run resumed from a checkpoint whose warnings were `told`
    /// ([`FieldWarnings::told_state`]): if the first events were looked
    /// at before it, they are not looked at again (every field the
    /// patterns read then was seen in them or said), and what was said
    /// is not said again.
    pub(crate) fn going_on(self, told: &FieldsTold) -> FieldWarnings {
        {
            let mut state = self.lock();
            state.looked |= told.looked;
            state.told.extend(told.told.iter().cloned());
            state.settled.extend(told.settled.iter().cloned());
            if !state.looked {
                state.before.clone_from(&told.seen);
            }
        }
        self
    }

    /// Of a run resumed from a checkpoint whose marker's counters are
    /// `counters` ([`Counters::with_fields`](crate::checkpoint::Counters::with_fields)):
    /// a reading of no event says nothing, the first events looked at
    /// before it are not looked at again, and what was said is not said
    /// again (as one engine's resumed run goes on).
    pub fn resuming(self, counters: &crate::checkpoint::Counters) -> FieldWarnings {
        self.resumed(true).going_on(&counters.fields)
    }

    /// What a checkpoint keeps of the warnings.
    pub(crate) fn told_state(&self) -> FieldsTold {
        let state = self.lock();
        let mut told: Vec<(String, String)> = state.told.iter().cloned().collect();
        told.sort();
        let mut settled: Vec<(String, String)> = state.settled.iter().cloned().collect();
        if state.looked {
            // (every field is missing from nothing seen)
            for missing in state.watch.missing(&FieldsSeen::default()) {
                let field = missing.field.to_string();
                settled.extend((missing.reads.iter()).map(|r| (r.pattern.clone(), field.clone())));
            }
        }
        settled.sort();
        settled.dedup();
        let seen = (!state.looked)
            .then(|| state.merged())
            .filter(|seen| seen.events() > 0);
        FieldsTold {
            looked: state.looked,
            told,
            settled,
            seen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The events after which what is missing is said.
    pub fn after(&self) -> u64 {
        self.after
    }

    /// Events the readers decoded, as they last said.
    pub fn events(&self) -> u64 {
        let state = self.lock();
        state.seen.iter().flatten().map(FieldsSeen::events).sum()
    }

    /// Warnings said so far (one per pattern and field).
    pub fn told(&self) -> u64 {
        self.lock().told.len() as u64
    }

    /// The patterns in force changed: where they read each field.
    pub(crate) fn set_watch(&self, watch: FieldWatch) {
        self.lock().watch = watch;
    }

    /// Reader `reader` saw `seen` so far (all its decoders'). Once the
    /// readers together decoded [`FieldWarnings::after`] events, says (to
    /// `say`) what none of them carried.
    pub fn report(&self, reader: usize, seen: FieldsSeen, say: &mut dyn FnMut(Notice)) {
        let mut state = self.lock();
        if let Some(slot) = state.seen.get_mut(reader) {
            *slot = Some(seen);
        }
        if state.looked {
            return;
        }
        let merged = state.merged();
        if merged.events() >= self.after {
            state.looked = true;
            self.say(&mut state, &merged, say);
        }
    }

    /// What reader `reader` saw, as it last said.
    pub fn of_reader(&self, reader: usize) -> Option<FieldsSeen> {
        self.lock().seen.get(reader).cloned().flatten()
    }

    /// The input ended: `seen` is what every reader saw (`None`: none read
    /// anything, and every field is missing); says what none carried and
    /// was not said.
    pub fn at_end(&self, seen: Option<&FieldsSeen>, say: &mut dyn FnMut(Notice)) {
        let mut state = self.lock();
        // (with what was seen before the checkpoint a run resumed from, if
        // it was not looked at then)
        let mut all = state.before.clone().unwrap_or_default();
        if let Some(seen) = seen {
            all.merge(seen);
        }
        self.say(&mut state, &all, say);
        // (the whole input looked at: a run resumed over a grown input
        // says nothing more of these fields)
        state.looked = true;
    }

    /// Says, as warnings, what `seen` shows missing and was not said yet.
    fn say(&self, state: &mut State, seen: &FieldsSeen, say: &mut dyn FnMut(Notice)) {
        if self.resumed && seen.events() == 0 {
            return;
        }
        let State {
            watch,
            told,
            settled,
            ..
        } = state;
        for mut missing in watch.missing(seen) {
            let field = missing.field.to_string();
            missing.reads.retain(|read| {
                let pair = (read.pattern.clone(), field.clone());
                !settled.contains(&pair) && told.insert(pair)
            });
            if !missing.reads.is_empty() {
                say(Notice::line(Level::Warning, format!("warning: {missing}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cepheid_decode::Format;
    use cepheid_engine::{Engine, Record, Rules};

    use super::*;

    /// What a decoder of `rules`' fields saw of `lines`.
    fn seen(rules: &Rules, lines: &[&str]) -> FieldsSeen {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(rules).unwrap();
        let mut decoder =
            Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).watch_fields(100);
        for line in lines {
            decoder.decode(line.as_bytes()).unwrap();
        }
        decoder.fields_seen().unwrap().clone()
    }

    #[test]
    fn readers_are_merged_said_once_after_n_and_at_the_end() {
        let rules = Rules::parse(
            "r.cep",
            "pattern p {\n    match a\n    where\n        a: sucess == true and note == \"x\"\n}\n",
        )
        .unwrap();
        let mut said = Vec::new();
        let fields = FieldWarnings::new(4, FieldWatch::from_rules(&rules), 2);
        // Reader 0: 3 events (not N yet), with `success`.
        let a = seen(&rules, &[r#"{"ts":1,"success":true}"#; 3]);
        fields.report(0, a.clone(), &mut |n| said.push(n.to_string()));
        assert!(said.is_empty());
        assert_eq!(fields.events(), 3);
        // Reader 1: 2 events, one with `note`: 5 together, `sucess` in none.
        let b = seen(&rules, &[r#"{"ts":2}"#, r#"{"ts":3,"note":"x"}"#]);
        fields.report(1, b.clone(), &mut |n| said.push(n.to_string()));
        assert_eq!(
            said,
            ["warning: r.cep:4:12: pattern `p`, the condition of stage `a`: field `sucess` never occurs in 5 events; did you mean `success`?"]
        );
        assert_eq!(fields.told(), 1);
        // Not again, at a later report or at the end.
        fields.report(0, a.clone(), &mut |n| said.push(n.to_string()));
        let mut all = a;
        all.merge(&b);
        fields.at_end(Some(&all), &mut |n| said.push(n.to_string()));
        assert_eq!(said.len(), 1);
        assert_eq!(fields.of_reader(1), Some(b));
    }

    /// A checkpoint taken before the first events were looked at keeps
    /// what the readers saw; a run resumed from it counts on from there: a
    /// field seen only before the checkpoint is not said missing, and the
    /// events are counted from the start (issue 60, item 17).
    #[test]
    fn a_run_resumed_before_the_first_events_were_looked_at_counts_on_from_them() {
        let rules = Rules::parse(
            "r.cep",
            "pattern p {\n    match a\n    where\n        a: sucess == true and note == \"x\"\n}\n",
        )
        .unwrap();
        let mut said = Vec::new();
        let first = FieldWarnings::new(4, FieldWatch::from_rules(&rules), 1);
        let before = seen(&rules, &[r#"{"ts":1,"note":"x"}"#, r#"{"ts":2}"#]);
        first.report(0, before, &mut |n| said.push(n.to_string()));
        assert!(said.is_empty());
        let told = first.told_state();
        assert_eq!(told.seen.as_ref().map(FieldsSeen::events), Some(2));
        // (kept as JSON in the marker's counters, and read back)
        let told: FieldsTold =
            serde_json::from_str(&serde_json::to_string(&told).unwrap()).unwrap();
        let resumed = FieldWarnings::new(4, FieldWatch::from_rules(&rules), 1)
            .resumed(true)
            .going_on(&told);
        let after = seen(&rules, &[r#"{"ts":3}"#, r#"{"ts":4}"#, r#"{"ts":5}"#]);
        resumed.report(0, after, &mut |n| said.push(n.to_string()));
        assert_eq!(
            said,
            ["warning: r.cep:4:12: pattern `p`, the condition of stage `a`: field `sucess` never occurs in 5 events"]
        );
        // Once looked at, nothing more is kept of what was seen.
        assert_eq!(resumed.told_state().seen, None);
        // A checkpoint of before it (no `seen`) is read as none.
        let old: FieldsTold =
            serde_json::from_str(r#"{"looked":false,"told":[],"settled":[]}"#).unwrap();
        assert_eq!(old.seen, None);
    }

    #[test]
    fn at_the_end_what_no_reader_saw_is_said_but_not_after_a_resumed_run_read_nothing() {
        let rules = Rules::parse(
            "r.cep",
            "pattern p {\n    match a\n    where a: note == 1\n}\n",
        )
        .unwrap();
        let mut said = Vec::new();
        let fields = FieldWarnings::new(1_000, FieldWatch::from_rules(&rules), 1);
        fields.report(0, seen(&rules, &[r#"{"ts":1,"nota":1}"#]), &mut |n| {
            said.push(n.to_string())
        });
        assert!(said.is_empty());
        // Nothing read at all: every field, in 0 events (the single run's).
        fields.at_end(None, &mut |n| said.push(n.to_string()));
        assert_eq!(
            said,
            ["warning: r.cep:3:14: pattern `p`, the condition of stage `a`: field `note` never occurs in 0 events"]
        );
        let resumed = FieldWarnings::new(1_000, FieldWatch::from_rules(&rules), 1).resumed(true);
        resumed.at_end(None, &mut |n| said.push(n.to_string()));
        assert_eq!(said.len(), 1);
    }
}
