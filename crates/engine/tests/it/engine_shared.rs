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
    let sample =
        std::fs::read_to_string(cepheid_testkit::path("examples/data/sample.jsonl")).unwrap();
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
    first
        .add(&Rules::load(cepheid_testkit::path("patterns")).unwrap())
        .unwrap();
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

/// `Rules` compile each pattern once, as they are loaded: an engine they
/// are added to first runs those automata, not compiled again, and gives
/// the output of an engine that compiled its own from the same patterns.
#[test]
fn rules_added_first_run_the_automata_compiled_as_they_were_loaded() {
    let rules = Rules::load(cepheid_testkit::path("patterns")).unwrap();
    let mut one = engine();
    one.add(&rules).unwrap();
    let mut two = engine();
    two.add(&rules).unwrap();
    assert_eq!(one.automata().count(), rules.len());
    for (a, b) in one.automata().zip(two.automata()) {
        assert!(Arc::ptr_eq(a, b), "{} compiled again", a.pattern().name);
    }
    // The same patterns of the IR: compiled by the engine.
    let mut own = engine();
    own.add(rules.patterns()).unwrap();
    for (a, b) in one.automata().zip(own.automata()) {
        assert!(!Arc::ptr_eq(a, b), "{} shared", a.pattern().name);
    }
    assert_eq!(outputs(one), outputs(own));
}

/// Added to an engine that numbers fields or conditions otherwise (a
/// pattern of its own first), the rules are compiled for it: all of them,
/// with the same output.
#[test]
fn rules_added_after_other_patterns_are_compiled_for_the_engine() {
    let rules = Rules::load(cepheid_testkit::path("patterns")).unwrap();
    let mut first = engine();
    first.add(&rules).unwrap();
    let own = Rules::parse(
        "own.cep",
        "pattern own_first { match a followed by b where a: n > 1  b: n > a.n }",
    )
    .unwrap();
    for numbered in [false, true] {
        let mut other = engine();
        if numbered {
            other.fields().intern(&FieldPath::single("unrelated"));
        } else {
            other.add(&own).unwrap();
        }
        other.add(&rules).unwrap();
        let theirs: Vec<_> = other.automata().skip(usize::from(!numbered)).collect();
        assert_eq!(theirs.len(), rules.len());
        for (a, b) in first.automata().zip(theirs) {
            assert!(!Arc::ptr_eq(a, b), "{} shared", a.pattern().name);
        }
        let got: Vec<String> = outputs(other)
            .into_iter()
            .filter(|o| !o.contains("\"own_first\""))
            .collect();
        assert_eq!(got, outputs(compiled()));
    }
}

/// A change of rules numbers the engine's conditions again: the shared
/// automata (held by the `Rules` they were loaded with) keep their
/// numbers, and the engine's own come after them. Numbered in pattern
/// order, a new pattern's `type == "c"` took the number of the shared
/// `steady`'s `type == "y"`, and `steady` matched a `c` as its `y` (found
/// by `cli_rules`, where the command keeps its `Rules`).
#[test]
fn a_change_of_rules_leaves_shared_automata_reading_their_own_conditions() {
    const OLD: &str = "
        pattern pair { partition by k within 40ms match a followed by b
            where a: type == \"a\"  b: type == \"b\" }
        pattern steady { partition by k match x next y
            where x: type == \"x\"  y: type == \"y\" }
        pattern gone { partition by k within 20ms match a followed by c
            where a: type == \"a\"  c: type == \"c\" }";
    const NEW: &str = "
        pattern pair { partition by k within 40ms match a followed by b
            where a: type == \"a\"  b: type == \"b\" and v > 2 }
        pattern steady { partition by k match x next y
            where x: type == \"x\"  y: type == \"y\" }
        pattern fresh { partition by k match c followed by c2
            where c: type == \"c\" and w == 1  c2: type == \"c\" }";
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let lines: Vec<String> = (0..3_000)
        .map(|i| {
            let kind = ["a", "b", "c", "x", "y"][next(5) as usize];
            format!(
                r#"{{"ts":{},"type":"{kind}","k":{},"v":{},"w":{}}}"#,
                i * 3,
                next(4),
                next(5),
                next(2)
            )
        })
        .collect();
    let old = Rules::parse("old.cep", OLD).unwrap();
    let run = |mut engine: Engine<Record>| {
        let mut out: Vec<Output<Record>> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if i == 1_500 {
                let new = Rules::parse("new.cep", NEW).unwrap();
                engine
                    .set_rules(&new, cepheid_engine::engine::ReloadPolicy::Drain, &mut out)
                    .unwrap();
            }
            engine.push_json(line, "ts", &mut out).unwrap();
        }
        engine.finish(&mut out);
        out.iter()
            .map(|o| serde_json::to_string(o).unwrap())
            .collect::<Vec<_>>()
    };
    let mut shared = engine();
    shared.add(&old).unwrap();
    let mut own = engine();
    own.add(old.patterns()).unwrap();
    let expected = run(own);
    assert!(expected.iter().any(|o| o.contains("\"steady\"")));
    assert_eq!(run(shared), expected);
}
