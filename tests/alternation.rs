//! Alternation (issue 41) in the automaton: golden cases of
//! `docs/semantics.md` ("Alternation"), built as pattern IR with native
//! conditions (a stage accepts events whose name starts with its letters).

use crate::matcher_support::*;

use cepheid_core::pattern::{Element, ElementKind, Pattern, Sequence, SkipStrategy};
use cepheid_core::primitives::StageId;

/// An alternation of these branches, relaxed to its predecessor.
pub fn alt(branches: Vec<Vec<Element>>) -> Element {
    Element {
        kind: ElementKind::Alternation(branches.into_iter().map(Sequence::new).collect()),
        ..Element::stage(StageId(0))
    }
}

fn abcd(elements: Vec<Element>) -> Pattern {
    pattern(
        vec![
            ("a", letters("a")),
            ("b", letters("b")),
            ("c", letters("c")),
            ("d", letters("d")),
            ("x", letters("x")),
            ("y", letters("y")),
        ],
        elements,
    )
}

#[test]
fn every_branch_reports_its_matches() {
    // (a followed by b) or (c followed by d)
    let p = abcd(vec![alt(vec![vec![el(0), el(1)], vec![el(2), el(3)]])]);
    assert_eq!(
        run(&p, "a1 c1 b1 d1 a2 b2"),
        ["a:a1|b:b1", "c:c1|d:d1", "a:a2|b:b2"]
    );
}

#[test]
fn an_alternation_in_the_middle_forks_the_partial_match() {
    // x followed by (a or c next d) followed by y
    let p = abcd(vec![
        el(4),
        alt(vec![vec![el(0)], vec![el(2), el(3).next()]]),
        el(5),
    ]);
    assert_eq!(
        sorted(run(&p, "x1 c1 d1 a1 y1")),
        ["a:a1|x:x1|y:y1", "c:c1|d:d1|x:x1|y:y1"]
    );
    // The `next` inside the second branch breaks on `b1`; the first
    // branch goes on.
    assert_eq!(run(&p, "x1 c1 b1 d1 a1 y1"), ["a:a1|x:x1|y:y1"]);
}

#[test]
fn skip_past_last_event_applies_across_branches() {
    // (a followed by b) or (a followed by c), skip past last event: the
    // first match (branch 2, ends at c1) prunes the branch-1 run that
    // started at a1 too.
    let mut p = abcd(vec![alt(vec![vec![el(0), el(1)], vec![el(0), el(2)]])]);
    assert_eq!(run(&p, "a1 c1 b1"), ["a:a1|c:c1", "a:a1|b:b1"]);
    p.skip = SkipStrategy::PastLastEvent;
    assert_eq!(run(&p, "a1 c1 b1"), ["a:a1|c:c1"]);
}

#[test]
fn a_partial_match_times_out_once_per_branch_it_waits_in() {
    // x followed by (a or c), within 10, timeouts: after x1 the partial
    // match waits in both branches, as the two patterns would.
    let mut p = abcd(vec![el(4), alt(vec![vec![el(0)], vec![el(2)]])]);
    p.within = Some(10);
    p.emit_timeouts = true;
    assert_eq!(
        run_at(&p, &[(1, "x1")], Some(100)),
        expect(&["timeout@11 x:x1", "timeout@11 x:x1"])
    );
}

/// `patterns/alternation/`: the engine's records for its sample stream are
/// `expected.jsonl` (`CEPHEID_BLESS=1` writes it again).
#[test]
fn the_sample_rules_give_their_expected_records() {
    use cepheid_engine::io::{Decoder, Format, Item, JsonLines};
    use cepheid_engine::{Engine, Record, Rules};

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/patterns/alternation");
    let rules = std::fs::read_to_string(format!("{dir}/rules.cep")).unwrap();
    let events = std::fs::read_to_string(format!("{dir}/events.jsonl")).unwrap();
    let mut engine: Engine<Record> = Engine::new();
    engine
        .add(&Rules::parse("rules.cep", &rules).unwrap())
        .unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut bytes = Vec::new();
    {
        let mut out: JsonLines<&mut Vec<u8>, Vec<u8>> = JsonLines::new(&mut bytes, None);
        for line in events.lines() {
            match decoder.decode(line.as_bytes()).unwrap() {
                Item::Event(ts, record) => {
                    engine.push(ts, record, &mut out);
                }
                Item::Watermark(t) => engine.watermark(t, &mut out),
                Item::Skip => {}
            }
        }
        engine.watermark(i64::MAX, &mut out);
    }
    let got = String::from_utf8(bytes).unwrap();
    let path = format!("{dir}/expected.jsonl");
    if std::env::var_os("CEPHEID_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(got, expected);
}

/// The examples of `docs/language.md` §4.6 load and compile (the CLI's
/// `language_doc` test checks them with `cepheid check` too).
#[test]
fn the_language_reference_examples_compile() {
    use cepheid_engine::{Engine, Record, Rules};

    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/language.md")).unwrap();
    let section = doc
        .split("### 4.6 Alternation")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("section 4.6");
    let blocks: Vec<&str> = section
        .split("```cep\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(!blocks.is_empty());
    for text in blocks {
        let rules = Rules::parse("doc.cep", text).unwrap();
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
    }
}
