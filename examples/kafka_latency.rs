//! Produce → committed alert delay through `cepheid run` (BENCHMARKS.md,
//! "Kafka"): produces pairs `a`, `b` of a key at a steady rate to topic
//! IN, each with its wall-clock time as `ts`, while reading topic OUT as a
//! `read_committed` consumer; each alert's `end` is the time its `b` was
//! produced, so the delay is the time it is read less `end`. Prints the
//! count, p50, p99 and the largest delay, then the delay in two parts
//! split at the alert's Kafka timestamp (its create time, set when
//! `cepheid run` hands the record to its producer): produce → created
//! (the hop into cepheid, the watermark, matching) and created → read
//! (the producer's batching, the transaction's commit, the hop out).
//!
//! ```text
//! cargo run --release --example kafka_latency -- 127.0.0.1:9092 IN OUT PAIRS_PER_S SECONDS [FETCH_WAIT_MS]
//! ```
//! with `cepheid run` reading IN and writing OUT meanwhile (the pattern:
//! `partition by k`, `match a followed by b`). The reading consumer's
//! `fetch.wait.max.ms` is FETCH_WAIT_MS, 10 by default: a broker that
//! looks for records again only after a sleep (tansu) holds a record up
//! to about that long, which the measure would count (with librdkafka's
//! 500 ms, up to 250 ms of it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cepheid_kafka::{
    KafkaSink, KafkaSource, Kind, OutputTopics, SinkConfig, SourceConfig, StartAt,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (brokers, input, output, rate, seconds, fetch_wait) = match args.as_slice() {
        [b, i, o, r, s] => (b, i, o, r, s, "10"),
        [b, i, o, r, s, w] => (b, i, o, r, s, w.as_str()),
        _ => {
            eprintln!("usage: kafka_latency HOST:PORT IN OUT PAIRS_PER_S SECONDS [FETCH_WAIT_MS]");
            std::process::exit(2);
        }
    };
    let rate: u64 = rate.parse()?;
    let seconds: u64 = seconds.parse()?;
    let mut source_config = SourceConfig::new(brokers.clone(), &[output]);
    source_config.start = StartAt::Latest;
    source_config.properties = vec![("fetch.wait.max.ms".to_string(), fetch_wait.to_string())];
    let mut alerts = KafkaSource::new(source_config)?;
    let producer = {
        let brokers = brokers.clone();
        let input = input.clone();
        std::thread::spawn(move || -> Result<u64, cepheid_kafka::KafkaError> {
            let mut config = SinkConfig::new(brokers, OutputTopics::One(input));
            config.properties = vec![("linger.ms".to_string(), "0".to_string())];
            let mut sink = KafkaSink::new(config)?;
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < Duration::from_secs(seconds) {
                let due = start.elapsed().as_micros() as u64 * rate / 1_000_000;
                while sent < due {
                    let k = sent % 1000;
                    for kind in ["a", "b"] {
                        let line = format!(r#"{{"ts":{},"type":"{kind}","k":{k}}}"#, now_ms());
                        sink.write(Kind::Match, k.to_string().as_bytes(), line.as_bytes())?;
                    }
                    sent += 1;
                }
                sink.flush()?;
                std::thread::sleep(Duration::from_millis(1));
            }
            // One more pair later: the watermark passes the last ones.
            let line = format!(r#"{{"ts":{},"type":"x","k":-1}}"#, now_ms() + 60_000);
            sink.write(Kind::Match, b"-1", line.as_bytes())?;
            sink.flush()?;
            Ok(sent)
        })
    };
    let mut delays = Vec::new();
    // (produce → the alert created, the alert created → read)
    let mut created = Vec::new();
    let mut carried = Vec::new();
    let mut records = Vec::new();
    let mut last = Instant::now();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) || last.elapsed() < Duration::from_secs(15)
    {
        records.clear();
        alerts.read(&mut records, Duration::from_millis(50))?;
        let read_at = now_ms();
        for r in &records {
            let value: serde_json::Value =
                serde_json::from_slice(r.payload.as_deref().unwrap_or_default())?;
            if let Some(end) = value["end"].as_i64() {
                delays.push(read_at - end);
                if let Some(at) = r.timestamp {
                    created.push(at - end);
                    carried.push(read_at - at);
                }
                last = Instant::now();
            }
        }
    }
    let sent = producer.join().expect("the producer")?;
    if delays.is_empty() {
        return Err("no alert read".into());
    }
    println!(
        "{sent} pairs produced, {} alerts read: delay {}",
        delays.len(),
        quantiles(&mut delays)
    );
    if !created.is_empty() {
        println!(
            "  produce -> alert created: {}; created -> read: {}",
            quantiles(&mut created),
            quantiles(&mut carried)
        );
    }
    Ok(())
}

/// "p50 A ms, p99 B ms, max C ms" of `values` (not empty; sorted here).
fn quantiles(values: &mut [i64]) -> String {
    values.sort_unstable();
    let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        at(0.5),
        at(0.99),
        values[values.len() - 1]
    )
}
