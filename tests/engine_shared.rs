//! `Engine::add_shared`: a pattern compiled by one engine runs in others
//! without being compiled again (the automaton shared by `Arc`), over the
//! pattern library and the sample data, with the same output as the engine
//! that compiled it; an engine whose field numbering or condition
//! numbering disagrees compiles its own copy instead, with the same
//! output too.

use std::sync::Arc;
use std::time::Duration;

use cepheid_engine::{Engine, FieldPath, Output, Record, Rules};

fn engine() -> Engine<Record> {
    Engine::with_max_delay(Duration::from_secs(10))
}

/// Every output record of `engine` over the sample data, as JSON.
fn outputs(mut engine: Engine<Record>) -> Vec<String> {
    let mut out: Vec<Output<Record>> = Vec::new();
    let sample = std::fs::read_to_string("examples/data/sample.jsonl").unwrap();
    for line in sample.lines() {
        engine.push_json(line, "ts", &mut out).unwrap();
    }
    engine.finish(&mut out);
    out.iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect()
}

fn compiled() -> Engine<Record> {
    let mut first = engine();
    first.add(&Rules::load("patterns").unwrap()).unwrap();
    first
}

#[test]
fn engines_that_share_automata_give_the_compiling_engines_output() {
    let first = compiled();
    let expected = outputs(compiled());
    assert!(!expected.is_empty());
    for _ in 0..2 {
        let mut other = engine();
        for nfa in first.automata() {
            other.add_shared(nfa).unwrap();
        }
        assert_eq!(other.automata().count(), first.automata().count());
        for (a, b) in first.automata().zip(other.automata()) {
            assert!(Arc::ptr_eq(a, b), "{} compiled again", a.pattern().name);
        }
        assert_eq!(outputs(other), expected);
    }
}

#[test]
fn an_engine_that_numbers_fields_otherwise_compiles_its_own_copy() {
    let first = compiled();
    let mut other = engine();
    // (a field numbered first: every id the patterns read moves by one)
    other.fields().intern(&FieldPath::single("unrelated"));
    for nfa in first.automata() {
        other.add_shared(nfa).unwrap();
    }
    for (a, b) in first.automata().zip(other.automata()) {
        assert!(!Arc::ptr_eq(a, b), "{} shared", a.pattern().name);
        assert_eq!(a.pattern().name, b.pattern().name);
    }
    assert_eq!(outputs(other), outputs(compiled()));
}

#[test]
fn an_engine_whose_conditions_are_numbered_otherwise_compiles_its_own_copy() {
    let first = compiled();
    let names: Vec<String> = first.patterns().map(|p| p.name.clone()).collect();
    // Its own pattern first, with a condition of its own (it reads the
    // run): the number the shared automata gave their first conditions
    // means another condition here.
    let mut other = engine();
    other
        .add(
            &Rules::parse(
                "own.cep",
                "pattern own_first { match a followed by b where a: n > 1  b: n > a.n }",
            )
            .unwrap(),
        )
        .unwrap();
    let mut shared = 0;
    for nfa in first.automata() {
        other.add_shared(nfa).unwrap();
        let added = other.automata().last().unwrap();
        shared += usize::from(Arc::ptr_eq(nfa, added));
    }
    assert!(shared < names.len(), "every automaton shared");
    let mine: Vec<String> = other.patterns().skip(1).map(|p| p.name.clone()).collect();
    assert_eq!(mine, names);
    // (the output of `own_first` aside)
    let expected = outputs(compiled());
    let got: Vec<String> = outputs(other)
        .into_iter()
        .filter(|o| !o.contains("\"own_first\""))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_shared_pattern_whose_name_the_engine_has_is_refused() {
    let first = compiled();
    let nfa = first.automata().next().unwrap();
    let mut other = engine();
    other.add_shared(nfa).unwrap();
    let again = other.add_shared(nfa).unwrap_err();
    assert!(
        again.to_string().contains("is already in the engine"),
        "{again}"
    );
    assert_eq!(other.automata().count(), 1);
}
