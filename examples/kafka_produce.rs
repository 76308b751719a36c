//! Produces the lines of a file to a Kafka topic, one record a line (the
//! README's Kafka quick start):
//!
//! ```text
//! cargo run --release --example kafka_produce -- 127.0.0.1:9092 events examples/data/sample.jsonl
//! ```
//!
//! An idempotent producer (cepheid's Kafka sink), each line a record
//! without a key; it waits until every record is on the broker. The last
//! line goes alone, after the others are delivered: tansu 0.6's memory
//! storage answers the latest offset of a partition as its last batch's
//! first offset + 1 (docs/kafka.md), which `cepheid run --kafka-until end`
//! reads as the end of the topic; a last batch of one record makes it
//! right.

use std::io::BufRead;
use std::time::Duration;

use cepheid_kafka::{KafkaSink, Kind, OutputTopics, Retry, SinkConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// The program, given its arguments (`tests/readme_kafka.rs` runs it so).
pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [brokers, topic, file] = args else {
        eprintln!("usage: kafka_produce HOST:PORT TOPIC FILE");
        std::process::exit(2);
    };
    let mut config = SinkConfig::new(brokers.clone(), OutputTopics::One(topic.clone()));
    config.retry = Retry {
        limit: Duration::from_secs(30),
        ..Retry::default()
    };
    let mut sink = KafkaSink::new(config)?;
    let mut n = 0u64;
    let mut last: Option<String> = None;
    for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(before) = last.replace(line) {
            sink.write(Kind::Match, b"", before.as_bytes())?;
            n += 1;
        }
    }
    sink.flush()?;
    if let Some(last) = last {
        sink.write(Kind::Match, b"", last.as_bytes())?;
        sink.flush()?;
        n += 1;
    }
    eprintln!("{n} records produced to {topic}");
    Ok(())
}
