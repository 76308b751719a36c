//! The cost of alternation (issue 41, BENCHMARKS.md "Alternation"): one
//! pattern with two branches against the two branch patterns as separate
//! patterns of one engine, over the same stream. Prints the matches and
//! the peak of the engine's state bytes (sampled every 1,000 events); run
//! it under `valgrind --tool=callgrind` for instruction counts.
//!
//! ```text
//! cargo run --release -p cepheid-engine --example alternation_cost -- alt top 200000
//! cargo run --release -p cepheid-engine --example alternation_cost -- two top 200000
//! ```
//!
//! `top`: `(a followed by b) or (c followed by d)`; `mid`: `x followed by
//! ((a followed by b) or (c followed by d))`, where the separate patterns
//! each keep their own partial matches of `x`; `rich`: quantifiers, `until`
//! and a window inside the branches, and an element after them
//! ([`SHAPES`]).

use cepheid_engine::io::{Decoder, Format, Item};
use cepheid_engine::{Engine, MatchRef, Record, Rules};

const WHERE: &[(&str, &str)] = &[
    ("x", "type == \"x\""),
    ("a", "type == \"a\""),
    ("b", "type == \"b\""),
    ("c", "type == \"c\""),
    ("d", "type == \"d\""),
    ("stop", "type == \"e\""),
];

/// Per shape: the `match` of the pattern with alternation, and those of its
/// branch patterns.
const SHAPES: &[(&str, &str, &[&str])] = &[
    (
        "top",
        "(a followed by b) or (c followed by d)",
        &["a followed by b", "c followed by d"],
    ),
    (
        "mid",
        "x followed by ((a followed by b) or (c followed by d))",
        &[
            "x followed by a followed by b",
            "x followed by c followed by d",
        ],
    ),
    // A counted element, a loop with `until` and a window inside the
    // branches, an element after the alternation.
    (
        "rich",
        "x followed by ((a{2,3} consecutive) or ((c+ until stop) followed by d) within 10s) followed by b",
        &[
            "x followed by a{2,3} consecutive followed by b",
            "x followed by ((c+ until stop) followed by d) within 10s followed by b",
        ],
    ),
];

/// A pattern `name` of this `match`, with the `where` entries it uses.
fn pattern(name: &str, body: &str) -> String {
    let words: Vec<&str> = body.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let entries: String = WHERE
        .iter()
        .filter(|(n, _)| words.contains(n))
        .map(|(n, cond)| format!("        {n}: {cond}\n"))
        .collect();
    format!(
        "pattern {name} {{\n    partition by user\n    within 1m\n    match {body}\n    where\n{entries}}}\n"
    )
}

fn rules(variant: &str, shape: &str) -> String {
    let (_, alt, branches) = SHAPES
        .iter()
        .find(|(name, ..)| *name == shape)
        .unwrap_or_else(|| panic!("shapes: top, mid, rich (not {shape})"));
    match variant {
        "alt" => pattern("p", alt),
        _ => {
            let mut text = String::new();
            for (i, body) in branches.iter().enumerate() {
                text += &pattern(&format!("p{}", i + 1), body);
            }
            text
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("alt", String::as_str);
    let shape = args.get(2).map_or("top", String::as_str);
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let text = rules(variant, shape);
    let mut engine: Engine<Record> = Engine::new();
    engine
        .add(&Rules::parse("cost.cep", &text).unwrap())
        .unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut matches = 0u64;
    let mut sink = |_: &MatchRef<'_, Record>| matches += 1;
    let types = [
        "x", "a", "c", "b", "d", "e", "x", "a", "e", "b", "c", "e", "d",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut peak = 0u64;
    for i in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let ty = types[(seed % types.len() as u64) as usize];
        let user = (seed >> 32) % 500;
        let line = format!(r#"{{"ts": {}, "user": "u{user}", "type": "{ty}"}}"#, i * 20);
        if let Item::Event(ts, record) = decoder.decode(line.as_bytes()).unwrap() {
            engine.push(ts, record, &mut sink);
        }
        if i % 1000 == 0 {
            peak = peak.max(engine.state_bytes());
        }
    }
    engine.watermark(i64::MAX, &mut sink);
    println!("{variant} {shape}: {n} events, {matches} matches, peak state bytes {peak}");
}
