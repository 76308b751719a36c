//! Where the time of one exactly-once checkpoint goes on a broker
//! (BENCHMARKS.md, "Kafka", `--checkpoint-every 100ms`): the calls
//! `cepheid run`'s transactional sink makes per checkpoint, with nothing
//! of cepheid around them: RECORDS records written to OUT, `prepare`
//! (flush: every record on the broker), then `commit` (the source offsets
//! and the checkpoint's number sent to the transaction, with a record on
//! the marker topic MARKER, and `commit_transaction`), TRANSACTIONS times.
//! Prints each step's time per block of 50 transactions (mean and
//! largest), so that a growth with the number of transactions shows.
//!
//! ```text
//! cargo run --release --example kafka_txn_timing -- 127.0.0.1:9092 OUT MARKER IN RECORDS TRANSACTIONS
//! ```
//! (IN: a topic whose partition 0 the offsets name, as `cepheid run`'s
//! input; it is not read.)

use std::time::{Duration, Instant};

use cepheid_kafka::{KafkaPosition, KafkaSink, Kind, OutputTopics, SinkConfig, Transactional};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, output, marker, input, records, transactions] = args.as_slice() else {
        eprintln!("usage: kafka_txn_timing HOST:PORT OUT MARKER IN RECORDS TRANSACTIONS");
        std::process::exit(2);
    };
    let records: usize = records.parse()?;
    let transactions: u64 = transactions.parse()?;
    let mut config = SinkConfig::new(brokers.clone(), OutputTopics::One(output.clone()));
    let id = format!("txn-timing-{}", std::process::id());
    let mut t = Transactional::new(id.clone(), id);
    t.marker = Some((marker.clone(), 0));
    config.transactional = Some(t);
    let mut sink = KafkaSink::new(config)?;
    let record = br#"{"kind":"match","pattern":"ab","key":{"k":"k1"},"start":1,"end":2}"#;
    // (per block: the sums and largest of write, prepare, commit)
    let mut block = [(Duration::ZERO, Duration::ZERO); 3];
    let started = Instant::now();
    println!("transactions  write mean/max  prepare mean/max  commit mean/max (ms)");
    for n in 1..=transactions {
        let mut step = |i: usize, f: &mut dyn FnMut() -> Result<(), cepheid_kafka::KafkaError>| {
            let at = Instant::now();
            let done = f();
            let took = at.elapsed();
            block[i].0 += took;
            block[i].1 = block[i].1.max(took);
            done
        };
        step(0, &mut || {
            for i in 0..records {
                sink.write(Kind::Match, format!("k{i}").as_bytes(), record)?;
            }
            Ok(())
        })?;
        step(1, &mut || sink.prepare(n))?;
        let mut at = KafkaPosition::new();
        at.set(input, 0, i64::try_from(n).unwrap_or(i64::MAX) * 100);
        step(2, &mut || sink.commit(n, &at))?;
        if n % 50 == 0 {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let mean = |d: Duration| ms(d) / 50.0;
            println!(
                "{:>5}-{:<5}  {:>6.1} / {:>6.1}  {:>7.1} / {:>7.1}  {:>7.1} / {:>7.1}",
                n - 49,
                n,
                mean(block[0].0),
                ms(block[0].1),
                mean(block[1].0),
                ms(block[1].1),
                mean(block[2].0),
                ms(block[2].1)
            );
            block = [(Duration::ZERO, Duration::ZERO); 3];
        }
    }
    println!(
        "{transactions} transactions of {records} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
