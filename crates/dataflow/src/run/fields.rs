//! Fields a pattern reads that no event carried, on workers (issue 25):
//! the single run's warning (`cepheid_runtime::Config::field_warnings`)
//! over every reader of the run. Each reader's decoders watch the fields
//! ([`Decoder::watch_fields`](cepheid_engine::io::Decoder::watch_fields));
//! what a reader saw ([`FieldsSeen`]) comes here now and then, never per
//! event: a worker's chunks of a file at the end of each chunk (all its
//! chunks so far merged), a reader thread (live input, a library user's
//! source) once it decoded N events and at the end of its input
//! (`Message::Seen`). Once the readers of the process have decoded N
//! events together, what none of them carried is said, once per pattern
//! and field, with the single run's message; at the end of the input,
//! process 0 says what none of the readers of any process carried (their
//! views come to it with the workers' counts).

use std::collections::HashSet;
use std::sync::Mutex;

use cepheid_engine::io::FieldsSeen;
use cepheid_engine::FieldWatch;
use cepheid_runtime::Level;

use super::Say;

/// The warnings of one process's readers.
pub(super) struct Fields {
    /// Said once the readers decoded this many events (`--field-warnings-after`).
    after: u64,
    /// Where the patterns read each field.
    watch: FieldWatch,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What each worker's reader saw so far, by the worker's index in the
    /// process (`None` before it said anything).
    seen: Vec<Option<FieldsSeen>>,
    /// The (pattern, field) pairs said already.
    told: HashSet<(String, String)>,
    /// Were the first `after` events looked at?
    looked: bool,
}

impl Fields {
    /// The warnings after `after` events of the patterns `watch` describes,
    /// over the readers of `workers` workers.
    pub(super) fn new(after: u64, watch: FieldWatch, workers: usize) -> Fields {
        Fields {
            after,
            watch,
            state: Mutex::new(State {
                seen: vec![None; workers],
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The events after which what is missing is said.
    pub(super) fn after(&self) -> u64 {
        self.after
    }

    /// Events the readers of the process decoded, as they last said.
    pub(super) fn events(&self) -> u64 {
        self.lock()
            .seen
            .iter()
            .flatten()
            .map(FieldsSeen::events)
            .sum()
    }

    /// Warnings said so far (one per pattern and field).
    pub(super) fn told(&self) -> u64 {
        self.lock().told.len() as u64
    }

    /// The reader of worker `local` (its index in the process) saw `seen`
    /// so far (all its decoders'). Once the process's readers together
    /// decoded [`Fields::after`] events, says what none of them carried.
    pub(super) fn report(&self, local: usize, seen: FieldsSeen, say: &Say) {
        let mut state = self.lock();
        if let Some(slot) = state.seen.get_mut(local) {
            *slot = Some(seen);
        }
        if state.looked {
            return;
        }
        let mut merged = FieldsSeen::default();
        for seen in state.seen.iter().flatten() {
            merged.merge(seen);
        }
        if merged.events() >= self.after {
            state.looked = true;
            self.say(&mut state, &merged, say);
        }
    }

    /// What the reader of worker `local` saw (for the workers' counts at
    /// the end, which bring it to process 0).
    pub(super) fn of_worker(&self, local: usize) -> Option<FieldsSeen> {
        self.lock().seen.get(local).cloned().flatten()
    }

    /// The input ended: `seen` is what every reader of every process saw
    /// (nothing when none read anything: every field is missing, as in
    /// the single run); says what none carried and was not said.
    pub(super) fn at_end(&self, seen: Option<&FieldsSeen>, say: &Say) {
        let none = FieldsSeen::default();
        let mut state = self.lock();
        self.say(&mut state, seen.unwrap_or(&none), say);
    }

    /// Says, as warnings, what `seen` shows missing and was not said yet
    /// (the single run's `FieldWarnings::say`).
    fn say(&self, state: &mut State, seen: &FieldsSeen, say: &Say) {
        for mut missing in self.watch.missing(seen) {
            let field = missing.field.to_string();
            missing
                .reads
                .retain(|read| state.told.insert((read.pattern.clone(), field.clone())));
            if !missing.reads.is_empty() {
                say!(say, Warning, "warning: {missing}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use cepheid_engine::io::{Decoder, Format};
    use cepheid_engine::{Engine, Record, Rules};
    use cepheid_runtime::{Notice, Report};

    use super::*;

    /// The notices said.
    #[derive(Clone, Default)]
    struct Said(Arc<Mutex<Vec<String>>>);

    impl Report for Said {
        fn notice(&mut self, notice: Notice) {
            self.0.lock().unwrap().push(notice.to_string());
        }
    }

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
        let said = Said::default();
        let say = Say::new(Box::new(said.clone()));
        let fields = Fields::new(4, FieldWatch::from_rules(&rules), 2);
        // Worker 0: 3 events (not N yet), with `success`.
        let a = seen(&rules, &[r#"{"ts":1,"success":true}"#; 3]);
        fields.report(0, a.clone(), &say);
        assert!(said.0.lock().unwrap().is_empty());
        assert_eq!(fields.events(), 3);
        // Worker 1: 2 events, one with `note`: 5 together, `sucess` in none.
        let b = seen(&rules, &[r#"{"ts":2}"#, r#"{"ts":3,"note":"x"}"#]);
        fields.report(1, b.clone(), &say);
        assert_eq!(
            *said.0.lock().unwrap(),
            ["warning: r.cep:4:12: pattern `p`, the condition of stage `a`: field `sucess` never occurs in 5 events; did you mean `success`?"]
        );
        assert_eq!(fields.told(), 1);
        // Not again, at a later report or at the end.
        fields.report(0, a.clone(), &say);
        let mut all = a;
        all.merge(&b);
        fields.at_end(Some(&all), &say);
        assert_eq!(said.0.lock().unwrap().len(), 1);
        assert_eq!(fields.of_worker(1), Some(b));
    }

    #[test]
    fn at_the_end_what_no_reader_saw_is_said() {
        let rules = Rules::parse(
            "r.cep",
            "pattern p {\n    match a\n    where a: note == 1\n}\n",
        )
        .unwrap();
        let said = Said::default();
        let say = Say::new(Box::new(said.clone()));
        let fields = Fields::new(1_000, FieldWatch::from_rules(&rules), 1);
        fields.report(0, seen(&rules, &[r#"{"ts":1,"nota":1}"#]), &say);
        assert!(said.0.lock().unwrap().is_empty());
        // Nothing read at all: every field, in 0 events (the single run's).
        fields.at_end(None, &say);
        assert_eq!(
            *said.0.lock().unwrap(),
            ["warning: r.cep:3:14: pattern `p`, the condition of stage `a`: field `note` never occurs in 0 events"]
        );
    }
}
