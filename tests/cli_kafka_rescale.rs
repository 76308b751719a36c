//! A checkpoint of a Kafka source on workers resumes on another layout
//! (`docs/kafka.md`, "On workers", "Resuming on another layout"), against
//! the real broker: chains of runs over a 3-partition topic, each on
//! another number of workers or processes than the one before, each
//! stopped by SIGTERM or killed (SIGKILL) after a complete cut of its own
//! and resumed, the topic growing between them.
//!
//! The input is out of order by up to 3 s and read with `--max-delay 2s`,
//! so events are late, and which ones depends on how each worker's
//! partitions were fetched (an event is late behind the least watermark
//! of its worker's partitions). So the chain is checked against what it
//! says it did: its late output has exactly the late events its summary
//! counts, each an input event, none twice; and the file run of the input
//! without those events (none late there) gives each key exactly the
//! chain's records, in order, and the chain's matches and timeouts, with
//! as many events and malformed lines read. An event read twice, lost, or
//! dropped without reaching the late output breaks one of them.

use crate::common::crash::{self, PATTERNS};
use crate::common::kafka::{assert_exact, complete_cuts, lines, produce_by_key};
use crate::common::{cepheid, free_ports, scratch, Live};
use crate::kafka_support::{topic, Broker};

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest a run may take to show what a step waits for.
const T: Duration = Duration::from_secs(60);

/// How a run of the chain ends.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGTERM once it wrote records (its last cut).
    Term,
    /// SIGKILL once a cut of its own is complete.
    Kill,
    /// `--kafka-until end`: to the end of the topic.
    End,
}

/// One run of the chain: its layout (`--workers`, and `--processes 2`
/// when `processes` is 2) and how it ends.
#[derive(Clone, Copy, Debug)]
struct Step {
    workers: usize,
    processes: usize,
    stop: Stop,
}

const fn step(workers: usize, processes: usize, stop: Stop) -> Step {
    Step {
        workers,
        processes,
        stop,
    }
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// The late events of a late output (`{"kind":"late","event":RAW}`).
fn late_events(path: &Path) -> Vec<String> {
    lines(path)
        .iter()
        .map(|line| {
            let raw = line
                .strip_prefix("{\"kind\":\"late\",\"event\":")
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_else(|| panic!("not a late record: {line}"));
            raw.to_string()
        })
        .collect()
}

/// Runs `steps` over `events` (3 partitions, produced by key a part
/// before each step, the last part before the last step, which must end
/// with the topic), and checks the outcome (see the module's comment).
fn chain(name: &str, events: &[String], steps: &[Step]) {
    assert!(matches!(steps.last().map(|s| s.stop), Some(Stop::End)));
    let broker = Broker::start();
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let input = topic(name);
    broker.create_topic(&input, 3);
    let url = format!("kafka://{}/{input}", broker.bootstrap());
    let part = events.len().div_ceil(steps.len());
    let mut said = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let from = (i * part).min(events.len());
        let to = ((i + 1) * part).min(events.len());
        // A run to be killed after a cut of its own gets its part while
        // it runs, in slices: a cut waits for event time to move on, which
        // it would not once everything there was read.
        let mut slices: Vec<&[String]> = match step.stop {
            Stop::Kill => events[from..to].chunks(part.div_ceil(20).max(1)).collect(),
            _ => vec![&events[from..to]],
        };
        slices.retain(|slice| !slice.is_empty());
        slices.reverse();
        if !matches!(step.stop, Stop::Kill) {
            while let Some(slice) = slices.pop() {
                produce_by_key(&broker.bootstrap(), &input, slice);
            }
        }
        let run = |process: usize| {
            let mut command = cepheid();
            command
                .current_dir(&dir)
                .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
                .args(["--events", &url])
                .args(["--workers", &step.workers.to_string()])
                .args(["--checkpoint", "ckpt", "--checkpoint-every", "100ms"]);
            if process == 0 {
                command.args(["--output", "out.jsonl", "--late", "late.jsonl"]);
            } else {
                command.args(["--output", "out-1.jsonl", "--late", "late-1.jsonl"]);
            }
            if step.processes > 1 {
                command.args(["--processes", &step.processes.to_string()]);
                command.args(["--process", &process.to_string(), "--hostfile", "hosts"]);
            }
            if let Stop::End = step.stop {
                command.args(["--kafka-until", "end"]);
            }
            command
        };
        if step.processes > 1 {
            let ports = free_ports(2);
            let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]);
            fs::write(dir.join("hosts"), hosts).unwrap();
        }
        let before = complete_cuts(&dir);
        let out_before = len(&dir.join("out.jsonl"));
        let lives: Vec<Live> = (0..step.processes)
            .map(|process| {
                if process > 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Live::spawn(&mut run(process))
            })
            .collect();
        let limit = Instant::now() + T;
        match step.stop {
            Stop::Term => {
                // Records came out of this run: its sources read.
                while len(&dir.join("out.jsonl")) <= out_before {
                    assert!(Instant::now() < limit, "step {i} {step:?}: no output came");
                    std::thread::sleep(Duration::from_millis(20));
                }
                lives.iter().for_each(|live| live.signal("TERM"));
            }
            Stop::Kill => {
                // A cut of this run's own, complete, while its part comes.
                while complete_cuts(&dir).is_subset(&before) {
                    assert!(Instant::now() < limit, "step {i} {step:?}: no cut came");
                    if let Some(slice) = slices.pop() {
                        produce_by_key(&broker.bootstrap(), &input, slice);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // The rest of its part, read or not when it is killed.
                while let Some(slice) = slices.pop() {
                    produce_by_key(&broker.bootstrap(), &input, slice);
                }
                std::thread::sleep(Duration::from_millis(150));
                lives.iter().for_each(|live| live.signal("KILL"));
            }
            Stop::End => {}
        }
        for (process, live) in lives.into_iter().enumerate() {
            let (status, _, err) = live.finish();
            let want = match step.stop {
                // (the other processes end with 0: process 0 says how the
                // run ended)
                Stop::Term if process > 0 => Some(0),
                Stop::Term => Some(143),
                Stop::Kill => None,
                Stop::End => Some(0),
            };
            assert_eq!(
                status.code(),
                want,
                "step {i} {step:?} process {process}: {err}"
            );
            if i > 0 && process == 0 {
                assert!(
                    err.contains("cepheid: resuming from checkpoint"),
                    "step {i} {step:?}: {err}"
                );
            }
            if process == 0 {
                said.push(err);
            }
        }
    }
    let last = said.last().expect("a run");
    let late = late_events(&dir.join("late.jsonl"));
    let got = lines(&dir.join("out.jsonl"));
    assert!(!late.is_empty(), "the input has late events: {last}");
    assert_exact(&dir, events, &late, &got, last);
}

fn input(n: usize) -> Vec<String> {
    crash::events(n).lines().map(str::to_string).collect()
}

/// 2 workers, stopped by SIGTERM; 3, killed after a cut of their own; 1,
/// stopped by SIGTERM; 2 to the end of the topic: each resumed on
/// another number of workers than the last (2 → 3 → 1 → 2).
#[test]
fn a_kafka_source_resumes_on_3_then_1_then_2_workers_with_late_events() {
    let steps = [
        step(2, 1, Stop::Term),
        step(3, 1, Stop::Kill),
        step(1, 1, Stop::Term),
        step(2, 1, Stop::End),
    ];
    chain("kafka_rescale_workers", &input(24_000), &steps);
}

/// `--processes 2 --workers 1`, stopped by SIGTERM; 3 workers in one
/// process, killed after a cut of their own; `--processes 2 --workers 1`
/// again to the end.
#[test]
fn a_kafka_source_resumes_from_two_processes_on_three_workers_and_back() {
    let steps = [
        step(1, 2, Stop::Term),
        step(3, 1, Stop::Kill),
        step(1, 2, Stop::End),
    ];
    chain("kafka_rescale_processes", &input(18_000), &steps);
}
