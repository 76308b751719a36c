//! `examples/embed.rs`, the library embedded as a program of its own would
//! (issue 38: a Kafka-fed, checkpointed, reloading run with the monitor in
//! at most 40 lines), run against the test broker: its alerts committed on
//! the output topic are the file run's, its checkpoint folder holds the
//! checkpoint that committed them, and the monitor it fed saw the run.

use std::fs;
use std::path::Path;

use crate::common::kafka::{produce_lines_to, topics_with};
use crate::common::{cepheid, scratch};
use crate::embed;
use crate::kafka_support::Broker;

#[test]
fn the_embedding_example_runs_kafka_to_kafka_with_checkpoints_and_the_monitor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = fs::read_to_string(root.join("examples/embed.rs")).unwrap();
    assert!(
        example.lines().count() <= 40,
        "the example grew past 40 lines"
    );
    let broker = Broker::start();
    let dir = scratch("embed");
    let sample = root.join("examples/data/sample.jsonl");
    let lines: Vec<String> = fs::read_to_string(&sample)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let t = topics_with(&broker, "embed", 1, 1);
    produce_lines_to(&broker.bootstrap(), &t.input, 0, &lines);
    // What the command writes for the same events into a file.
    let file = cepheid()
        .current_dir(root)
        .args(["run", "patterns", "--events"])
        .arg(&sample)
        .arg("--output")
        .arg(dir.join("file.jsonl"))
        .arg("--no-progress")
        .output()
        .unwrap();
    assert!(file.status.success());
    let mut expected: Vec<String> = fs::read_to_string(dir.join("file.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 16);

    let args: Vec<String> = [
        broker.bootstrap(),
        t.input.clone(),
        t.output.clone(),
        root.join("patterns").display().to_string(),
        dir.join("checkpoints").display().to_string(),
        "127.0.0.1:0".to_string(),
    ]
    .into();
    let (summary, status) = embed::run(&args).expect("the example runs");
    assert!(summary.error().is_none(), "{:?}", summary.error());
    assert_eq!(
        (summary.events, summary.matches, summary.timeouts),
        (102, 14, 2)
    );
    // The alerts, committed (the broker's own records have no aborted
    // transaction here: nothing failed).
    let mut committed: Vec<String> = broker
        .read_topic(&t.output, "read_committed")
        .into_iter()
        .map(|seen| seen.payload)
        .collect();
    committed.sort();
    assert_eq!(committed, expected);
    assert!(crate::common::newest_checkpoint(&dir.join("checkpoints")).is_some());
    // The monitor was fed: the run's counts, each rule's, its latest
    // records.
    assert_eq!(status.run.events_read, 102);
    let unpaid = status.pattern("unpaid_order").expect("a rule on the page");
    assert_eq!(unpaid.matches, 5);
    assert!(!unpaid.recent.is_empty());
    let _ = fs::remove_dir_all(&dir);
}
