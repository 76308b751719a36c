//! Pattern-language inputs that used to break cepheid (issue 11): long flat
//! chains of one operator, printed text that did not parse back, regexes
//! that cost a minute per event.
//!
//! The tests run in debug builds on 2 MiB test threads, so a chain of
//! 10,000 terms would overflow the stack of any code that recursed once per
//! term.

use std::sync::Arc;

use cepheid_core::record::FieldTable;
use cepheid_engine::engine::{Engine, Output};
use cepheid_engine::rules::load_str;
use cepheid_engine::{Record, Timestamp};
use cepheid_syntax::{explain, parse, print_file};

/// `x == 0 and x == 0 and ...` (`terms` comparisons), or a sum of `terms`
/// ones compared with `terms`.
fn chain(op: &str, terms: usize) -> String {
    if op == "+" {
        let sum = vec!["one"; terms].join(" + ");
        format!("{sum} == {terms}")
    } else {
        vec!["x == 0"; terms].join(&format!(" {op} "))
    }
}

fn pattern(condition: &str) -> String {
    format!("pattern p {{\n    match a\n    where\n        a: {condition}\n}}\n")
}

fn record(table: &FieldTable, x: i64) -> Record {
    let text = format!(r#"{{"ts":{x},"x":{x},"one":1}}"#);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    cepheid_decode::record_from_json(table, json.as_object().unwrap(), Arc::from(text))
}

/// Loads, prints, re-parses, explains and runs a pattern whose condition is
/// one long chain; returns the timestamps of the events that matched.
fn run_chain(op: &str, terms: usize) -> Vec<Timestamp> {
    let src = pattern(&chain(op, terms));
    let loaded = load_str("chain.cep", &src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let file = parse(&src).expect("parses");
    let printed = print_file(&file);
    let again = parse(&printed).expect("printed text parses");
    assert_eq!(again.without_spans(), file.without_spans());
    let text = explain(&loaded.patterns[0]);
    assert!(text.contains(&chain(op, terms)), "explain shows the chain");
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&loaded.patterns[0]).expect("compiles");
    let table = engine.fields().clone();
    let mut out: Vec<Output<Record>> = Vec::new();
    for x in 0..3 {
        engine.push(x, record(&table, x), &mut out);
    }
    engine.finish(&mut out);
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some(m.start),
            _ => None,
        })
        .collect()
}

#[test]
fn a_thousand_flat_and_terms_load_print_and_run() {
    assert_eq!(run_chain("and", 1_000), [0]);
    assert_eq!(run_chain("or", 1_000), [0]);
    assert_eq!(run_chain("+", 1_000), [0, 1, 2]);
}

#[test]
fn ten_thousand_flat_terms_load_print_and_run() {
    assert_eq!(run_chain("and", 10_000), [0]);
    assert_eq!(run_chain("+", 10_000), [0, 1, 2]);
}

#[test]
fn real_nesting_keeps_its_limit() {
    let deep = format!("{}x{} == 1", "(".repeat(70), ")".repeat(70));
    let loaded = load_str("deep.cep", &pattern(&deep));
    assert!(
        loaded.render().contains("nested more than 64 levels"),
        "{}",
        loaded.render()
    );
    let minus = format!("{}x == 1", "- ".repeat(70));
    assert!(load_str("minus.cep", &pattern(&minus))
        .render()
        .contains("nested more than 64 levels"));
}
