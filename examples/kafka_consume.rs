//! Prints the records of a Kafka topic as a `read_committed` consumer
//! sees them, one value a line, until none came for 2 seconds (the
//! README's Kafka quick start):
//!
//! ```text
//! cargo run --release --example kafka_consume -- 127.0.0.1:9092 alerts
//! ```
//!
//! Every partition from its first record, partition by partition in
//! offset order. (tansu 0.6 also hands out the records of aborted
//! transactions to `read_committed` consumers: docs/kafka.md.)

use std::io::Write;
use std::time::{Duration, Instant};

use cepheid_kafka::{KafkaSource, SourceConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args, &mut std::io::stdout().lock())
}

/// The program, given its arguments and where it prints
/// (`tests/readme_kafka.rs` runs it so).
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let [brokers, topic] = args else {
        eprintln!("usage: kafka_consume HOST:PORT TOPIC");
        std::process::exit(2);
    };
    let mut source = KafkaSource::new(SourceConfig::new(brokers.clone(), &[topic]))?;
    let mut records = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(2) {
        let before = records.len();
        source.read(&mut records, Duration::from_millis(200))?;
        if records.len() > before {
            last = Instant::now();
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    for r in &records {
        out.write_all(r.payload.as_deref().unwrap_or_default())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
