//! The cost of watching fields (`Decoder::watch_fields`, issue 25): decodes
//! a JSON-lines file with the fields of a pattern file, with or without the
//! watch, and prints what the watch found. For callgrind:
//!
//! ```sh
//! cargo build --release --example decode_watch
//! valgrind --tool=callgrind target/release/examples/decode_watch ab.cep ab.jsonl off
//! valgrind --tool=callgrind target/release/examples/decode_watch ab.cep ab.jsonl 1000
//! ```
//!
//! The third argument: `off`, or the number of events whose key names are
//! kept for suggestions.

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::FieldWatch;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, rules, events, mode] = &args[..] else {
        return Err("usage: decode_watch RULES EVENTS off|SAMPLE".into());
    };
    let rules = Rules::load(rules)?;
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules)?;
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    if mode != "off" {
        decoder = decoder.watch_fields(mode.parse()?);
    }
    let text = std::fs::read(events)?;
    let mut decoded = 0u64;
    for line in text.split(|&b| b == b'\n') {
        if let Ok(Item::Event(..)) = decoder.decode(line) {
            decoded += 1;
        }
    }
    println!("{decoded} events decoded");
    if let Some(seen) = decoder.fields_seen() {
        for missing in FieldWatch::from_rules(&rules).missing(seen) {
            println!("{missing}");
        }
    }
    Ok(())
}
