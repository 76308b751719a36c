//! The cost of alternation (issue 41, BENCHMARKS.md "Alternation"): one
//! pattern with two branches against the two branch patterns as separate
//! patterns of one engine, over the same stream. Prints the matches and
//! the peak of the engine's state bytes (sampled every 1,000 events); run
//! it under `valgrind --tool=callgrind` for instruction counts.
//!
//! ```text
//! cargo run --release -p cepheid-engine --example alternation_cost -- alt top 200000
//! cargo run --release -p cepheid-engine --example alternation_cost -- two top 200000
//! cargo run --release -p cepheid-engine --example alternation_cost -- write DIR 100000
//! ```
//!
//! `write DIR N` writes the stream and every shape's rules into `DIR`
//! instead, for `cepheid run` (BENCHMARKS.md).
//!
//! `top`: `(a followed by b) or (c followed by d)`; `mid`: `x followed by
//! ((a followed by b) or (c followed by d))`, where the separate patterns
//! each keep their own partial matches of `x`; `rich`: quantifiers, `until`
//! and a window inside the branches, and an element after them
//! ([`SHAPES`]).

use cepheid_decode::{Decoder, Format, Item};
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

/// The `i`-th event of the stream (`seed` carried from one to the next).
fn event(seed: &mut u64, i: u64) -> String {
    const TYPES: [&str; 13] = [
        "x", "a", "c", "b", "d", "e", "x", "a", "e", "b", "c", "e", "d",
    ];
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let ty = TYPES[(*seed % TYPES.len() as u64) as usize];
    let user = (*seed >> 32) % 500;
    format!(r#"{{"ts": {}, "user": "u{user}", "type": "{ty}"}}"#, i * 20)
}

const SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// `write DIR N`: the stream as `DIR/events.jsonl` and each shape's rules
/// as `DIR/alt-SHAPE.cep` and `DIR/two-SHAPE.cep`, for `cepheid run`.
fn write(dir: &str, n: u64) {
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut seed = SEED;
    let lines: String = (0..n).map(|i| event(&mut seed, i) + "\n").collect();
    std::fs::write(dir.join("events.jsonl"), lines).unwrap();
    for (shape, ..) in SHAPES {
        for variant in ["alt", "two"] {
            let path = dir.join(format!("{variant}-{shape}.cep"));
            std::fs::write(path, rules(variant, shape)).unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("alt", String::as_str);
    let shape = args.get(2).map_or("top", String::as_str);
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    if variant == "write" {
        return write(shape, n);
    }
    let text = rules(variant, shape);
    let mut engine: Engine<Record> = Engine::new();
    engine
        .add(&Rules::parse("cost.cep", &text).unwrap())
        .unwrap();
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let mut matches = 0u64;
    let mut sink = |_: &MatchRef<'_, Record>| matches += 1;
    let mut seed = SEED;
    let mut peak = 0u64;
    for i in 0..n {
        let line = event(&mut seed, i);
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
