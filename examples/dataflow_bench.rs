//! Events per second of `cepheid_dataflow` with the events already in
//! memory (decoded before the clock starts), on 1, 2, ... worker threads,
//! next to one `Engine` over the same records. Needs the feature `timely`:
//!
//! ```sh
//! target/release/cepheid-bench --write /tmp/w ab login many
//! cargo run --release --features timely --example dataflow_bench -- /tmp/w/many.cep /tmp/w/many.jsonl 1 2
//! ```
//!
//! Every run lets time run to infinity at the end (as `--flush-at-end`,
//! the benchmark's rule) and prints the matches and timeouts, which must
//! be the same for every worker count.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use cepheid_dataflow::{cep, source, Collect, FileChunks, Lateness, Plan, SourceItem};
use cepheid_decode::{Decoder, Format, Item, Items};
use cepheid_engine::{Engine, MatchRef, Record, Sink, Stats, Timestamp};
use timely::dataflow::operators::Inspect;

/// Counts matches and timeouts; hands the two counts on at the end.
#[derive(Default)]
struct Count {
    matches: u64,
    timeouts: u64,
    done: Option<(u64, u64)>,
}

impl Sink<Record> for Count {
    fn on_match(&mut self, _: &MatchRef<'_, Record>) {
        self.matches += 1;
    }

    fn on_timeout(&mut self, _: &MatchRef<'_, Record>, _: Timestamp) {
        self.timeouts += 1;
    }
}

impl Collect<Record> for Count {
    type Item = (u64, u64);

    fn drain(&mut self, out: &mut Vec<(u64, u64)>) {
        out.extend(self.done.take());
    }

    fn finish(&mut self, _: &Stats, _: usize) {
        self.done = Some((self.matches, self.timeouts));
    }
}

/// The records of the chunks of reader `index` of `readers`.
fn decode(
    path: &Path,
    index: usize,
    readers: usize,
    plan: &Plan<Record>,
) -> Vec<SourceItem<Record>> {
    let mut out = Vec::new();
    for chunk in FileChunks::new(path, index, readers, 1 << 20).expect("reads the events") {
        let mut chunk = chunk.expect("reads the events");
        let reader = std::mem::replace(&mut chunk.reader, Box::new(std::io::empty()));
        let decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
        for (line, item) in Items::new("events", reader, decoder) {
            match item.expect("a well-formed line") {
                Item::Event(ts, event) => out.push(SourceItem::Event {
                    ts,
                    offset: chunk.offset(line),
                    event,
                }),
                Item::Watermark(t) => out.push(SourceItem::Watermark(t)),
                Item::Skip => {}
            }
        }
    }
    out
}

/// The dataflow on `workers` threads: (seconds, events, matches, timeouts).
fn dataflow(plan: &Arc<Plan<Record>>, path: &Path, workers: usize) -> (Duration, u64, u64, u64) {
    let plan = Arc::clone(plan);
    let path = path.to_path_buf();
    let barrier = Arc::new(Barrier::new(workers));
    let result: Arc<Mutex<(Duration, u64, u64, u64)>> = Arc::default();
    let shared = Arc::clone(&result);
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let items = decode(&path, index, workers, &plan);
        let events = items.len() as u64;
        let counts: Arc<Mutex<(u64, u64)>> = Arc::default();
        let total = Arc::clone(&counts);
        barrier.wait();
        let started = Instant::now();
        worker.dataflow::<Timestamp, _, _>(|scope| {
            let lateness = Lateness::new(0).flush_at_end(true);
            // One input: the chunks of one file share a source number.
            let (events, _late) = source(scope, 0, items, lateness);
            cep(&plan, events, |_| Count::default()).inspect(move |(m, t)| {
                let mut total = total.lock().unwrap();
                total.0 += m;
                total.1 += t;
            });
        });
        while worker.has_dataflows() {
            worker.step_or_park(None);
        }
        barrier.wait();
        let elapsed = started.elapsed();
        let (m, t) = *counts.lock().unwrap();
        let mut result = shared.lock().unwrap();
        result.0 = result.0.max(elapsed);
        result.1 += events;
        result.2 += m;
        result.3 += t;
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("a worker failed"));
    let result = *result.lock().unwrap();
    result
}

/// One engine over the same records: (seconds, events, matches, timeouts).
fn single(plan: &Plan<Record>, path: &Path) -> (Duration, u64, u64, u64) {
    let mut engine: Engine<Record> = Engine::new();
    for p in plan.patterns() {
        engine.add(p).expect("adds");
    }
    let items = decode(path, 0, 1, plan);
    let events = items.len() as u64;
    let mut count = Count::default();
    let started = Instant::now();
    for item in items {
        match item {
            SourceItem::Event { ts, event, .. } => {
                engine.push(ts, event, &mut count);
            }
            SourceItem::Watermark(t) | SourceItem::SplitWatermark(t) => {
                engine.watermark(t, &mut count)
            }
            // (the benchmark's stream has no changes of rules)
            SourceItem::Rules { .. } => {}
        }
    }
    engine.watermark(Timestamp::MAX, &mut count);
    (started.elapsed(), events, count.matches, count.timeouts)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: dataflow_bench PATTERNS.cep EVENTS.jsonl [WORKERS...]");
        std::process::exit(2);
    }
    let loaded = cepheid_engine::rules::load_paths(&[PathBuf::from(&args[0])]);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut plan = Plan::<Record>::new();
    for p in &loaded.patterns {
        plan.add(p).expect("adds");
    }
    let plan = Arc::new(plan);
    let path = PathBuf::from(&args[1]);
    let workers: Vec<usize> = args[2..]
        .iter()
        .map(|w| w.parse().expect("a worker count"))
        .collect();
    let report = |what: &str, (time, events, matches, timeouts): (Duration, u64, u64, u64)| {
        let rate = events as f64 / time.as_secs_f64();
        println!(
            "{what:>12}: {events} events in {:.3} s = {rate:.0} ev/s; {matches} matches, {timeouts} timeouts",
            time.as_secs_f64()
        );
    };
    report("engine", single(&plan, &path));
    for w in if workers.is_empty() {
        vec![1, 2]
    } else {
        workers
    } {
        report(&format!("{w} workers"), dataflow(&plan, &path, w));
    }
}
