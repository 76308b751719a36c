//! Unpaid orders with the pattern language over JSON events: orders that
//! are created but not paid within 15 minutes, per order.
//!
//! Run with `cargo run --example unpaid_orders`. This is what
//! `cepheid run` does, in a few lines of library code: load patterns,
//! compile them against one field table, decode JSON lines into records,
//! push them through the engine, write the output records.

use std::error::Error;
use std::io::{self, Write};

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::engine::Engine;
use cepheid_engine::Record;
use cepheid_runtime::jsonl::JsonLines;

const PATTERN: &str = r#"
/// Orders that are created but not paid within 15 minutes.
pattern unpaid_order {
    partition by order_id
    within 15m
    timeouts
    match created followed by paid
    where
        created: type == "order_created"
        paid:    type == "order_paid" and amount >= created.amount
    select
        order = created.order_id
        paid  = paid.amount
}
"#;

const EVENTS: &str = r#"
{"ts": 0,       "type": "order_created", "order_id": "o1", "amount": 40}
{"ts": 60000,   "type": "order_created", "order_id": "o2", "amount": 15}
{"ts": 120000,  "type": "order_paid",    "order_id": "o1", "amount": 40}
{"ts": 90000,   "type": "order_paid",    "order_id": "o2", "amount": 10}
{"ts": 1200000, "type": "order_created", "order_id": "o3", "amount": 99}
{"$watermark": 2400000}
"#;

fn main() -> Result<(), Box<dyn Error>> {
    let loaded = cepheid_engine::rules::load_str("unpaid_order.cep", PATTERN);
    if loaded.has_errors() {
        return Err(loaded.render().into());
    }
    let mut engine: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_secs(60));
    for pattern in &loaded.patterns {
        engine.add(pattern)?;
    }
    // The decoder shares the engine's field table.
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    let stdout = io::stdout();
    let mut out: JsonLines<_, io::Sink> = JsonLines::new(stdout.lock(), None);
    for (_, item) in Items::new("events", EVENTS.as_bytes(), decoder) {
        match item {
            Ok(Item::Event(ts, record)) => {
                engine.push(ts, record, &mut out);
            }
            Ok(Item::Watermark(t)) => engine.watermark(t, &mut out),
            Ok(Item::Skip) => {}
            Err(e) => eprintln!("{e}"),
        }
    }
    engine.finish(&mut out);
    out.flush()?;
    let stats = engine.stats();
    writeln!(
        io::stderr(),
        "{} matches, {} timeouts",
        stats.matches,
        stats.timeouts
    )?;
    Ok(())
}
