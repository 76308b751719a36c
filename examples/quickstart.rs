//! The library in one page: a rule on a typed struct built in Rust, and the
//! `.cep` rules of `patterns/` over the JSON lines of
//! `examples/data/sample.jsonl`, with timeouts and late events.
//! Run with `cargo run --example quickstart`.

use std::time::Duration;

use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Engine, Event, MatchRef, Pattern, Record, Rules, Sink, Timestamp};

#[derive(Clone, Debug, Event)]
struct Login {
    /// The event's time, in milliseconds.
    #[cepheid(time)]
    at: Timestamp,
    user: String,
    ok: bool,
}

/// Prints what the `.cep` rules find.
struct Report;

/// The values of a match's `partition by` fields, comma-separated.
fn key(m: &MatchRef<'_, Record>) -> String {
    let values: Vec<String> = m.key().iter().map(ToString::to_string).collect();
    values.join(",")
}

impl Sink<Record> for Report {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        println!(
            "{} {} from {} to {}",
            m.pattern(),
            key(m),
            m.start(),
            m.end()
        );
    }
    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, at: Timestamp) {
        println!("{} {} timed out at {at}", m.pattern(), key(m));
    }
    fn on_late(&mut self, ts: Timestamp, event: &Record) {
        println!("late at {ts}: {}", event.raw());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Three failed logins then a success, per user, within 10 seconds.
    let brute_force = Pattern::<Login>::begin("fail")
        .where_fn(|l| !l.ok)
        .times(3)
        .followed_by("success")
        .where_fn(|l| l.ok)
        .within(Duration::from_secs(10))
        .partition_by("user")
        .name("brute_force")
        .build()?;
    let mut logins = Engine::<Login>::new();
    logins.add(&brute_force)?;
    let mut alert = |m: &MatchRef<'_, Login>| println!("{} for {}", m.pattern(), m.key()[0]);
    let attempts = [
        (1_000, false),
        (2_000, false),
        (3_000, false),
        (4_000, true),
    ];
    for (at, ok) in attempts {
        let user = "ada".to_string();
        logins.push_event(Login { at, user, ok }, &mut alert)?;
    }
    logins.finish(&mut alert);

    // 2. Rules from `.cep` files over JSON lines, events up to 10 s late.
    let rules = Rules::load("patterns")?;
    let mut engine: Engine<Record> = Engine::with_max_delay(Duration::from_secs(10));
    engine.add(&rules)?;
    let input = std::fs::File::open("examples/data/sample.jsonl")?;
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone());
    for (_line, item) in Items::new("sample.jsonl", input, decoder) {
        match item {
            Ok(Item::Event(ts, record)) => _ = engine.push(ts, record, &mut Report),
            Ok(Item::Watermark(t)) => engine.watermark(t, &mut Report),
            Ok(Item::Skip) => {}
            Err(e) => eprintln!("{e}"), // a malformed line: say so, go on
        }
    }
    engine.finish(&mut Report);
    Ok(())
}
