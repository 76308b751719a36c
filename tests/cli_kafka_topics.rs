//! A run's topics changed under it on the real broker (tansu): a topic of
//! events deleted, or deleted and created again under its name (issue 39,
//! finding 1). Before, the run died of SIGSEGV in librdkafka (exit 139,
//! nothing said; docs/upstream/librdkafka-topic-recreate.md) with or
//! without `--checkpoint`, to a file or to Kafka; now it ends with exit 4
//! and says which topic became what (docs/kafka.md, "Exit status").

use crate::common::crash::{self, PATTERNS};
use crate::common::kafka::{
    assert_exact, late_event, produce_lines_to, produce_stamped, stderr, topics_with, Reader,
};
use crate::common::{cepheid, scratch};
use crate::kafka_support::Broker;

use std::fs;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// A hang guard, far above what a run needs to see a change (its source
/// looks at its topics every second): the run that does not end in it
/// failed to see the change.
const HANG: Duration = Duration::from_secs(120);

/// Waits until `ready` says so, the child ends (false) or [`HANG`] passes
/// (false).
fn wait_until(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < HANG {
        if ready() {
            return true;
        }
        if child.try_wait().expect("status").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Waits for the child's end ([`HANG`] at most, then kills it).
fn ended(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("status").is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the run did not end in {HANG:?} after its topic changed:\n{}",
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// Where a case's run writes.
#[derive(Clone, Copy, Debug)]
enum To {
    /// A file, no checkpoint.
    File,
    /// A Kafka topic, exactly once (`--checkpoint`).
    KafkaWithCheckpoint,
}

/// Has the run written its first output (a line of its file, or a
/// checkpoint of its own, which commits its records)?
fn has_written(dir: &Path, to: To) -> bool {
    match to {
        To::File => fs::read(dir.join("out.jsonl")).is_ok_and(|b| b.contains(&b'\n')),
        To::KafkaWithCheckpoint => crate::common::newest_checkpoint(&dir.join("ckpt")).is_some(),
    }
}

#[test]
fn a_topic_deleted_or_created_again_under_a_run_ends_it_with_exit_4_naming_the_topic() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let lines: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    for to in [To::File, To::KafkaWithCheckpoint] {
        for created_again in [false, true] {
            let dir = scratch(&format!("kafka_topic_gone_{to:?}_{created_again}"));
            fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
            let t = topics_with(&broker, "gone", 1, 1);
            produce_lines_to(&b, &t.input, 0, &lines);
            let mut command = cepheid();
            command
                .current_dir(&dir)
                .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
                .args(["--events", &format!("kafka://{b}/{}", t.input)]);
            match to {
                To::File => command.args(["--output", "out.jsonl"]),
                To::KafkaWithCheckpoint => command
                    .args(["--output", &format!("kafka://{b}/{}", t.output)])
                    .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
                    .args(["--kafka-marker-topic", &t.marker]),
            };
            let mut child = command
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts");
            // Deleted once the run reads it (its first output is there).
            let reading = wait_until(&mut child, || has_written(&dir, to));
            assert!(
                reading,
                "{to:?}: no output came:\n{}",
                stderr(&ended(child))
            );
            broker.delete_topic(&t.input);
            if created_again {
                // More records than the run read: its offsets are valid in
                // the new topic, whose first records it would skip.
                broker.create_topic(&t.input, 1);
                produce_lines_to(&b, &t.input, 0, &lines);
                produce_lines_to(&b, &t.input, 0, &lines);
            }
            let output = ended(child);
            let said = stderr(&output);
            let case = format!("{to:?}, created again: {created_again}");
            assert_eq!(output.status.code(), Some(4), "{case}: {said}");
            let deleted = format!(
                "Kafka: topic {:?} was deleted while the run read it",
                t.input
            );
            let created = format!(
                "Kafka: topic {:?} was deleted and created again while the run read it \
                 (another topic id): the offsets read are the old topic's",
                t.input
            );
            // (created again: the run may look between the delete and the
            // create, which are two steps here, and see it deleted; the
            // source's test sees "created again" for certain, reading
            // nothing in between)
            let said_it = said.contains(&deleted) || (created_again && said.contains(&created));
            assert!(said_it, "{case}: {said}");
            assert!(
                said.lines().any(|l| l.starts_with("error: ")),
                "{case}: {said}"
            );
        }
    }
}

/// A broker replaced under a run (tansu's memory storage, restarted: its
/// topics, groups and transactional ids lost) and its topics created
/// again: the run ends with exit 4 and says what it saw first, the
/// broker's unknown transactional id (or its empty group), or a topic of
/// events or of the output created again (at most `--kafka-timeout`
/// later: a commit the broker does not answer is waited for in steps). Before:
/// SIGSEGV (librdkafka's metadata cache), or, in a debug build, an
/// illegal instruction (rdkafka's conversion of the broker's error code
/// 105, `TRANSACTIONAL_ID_NOT_FOUND`, which librdkafka 2.12.1 has no name
/// for; undefined behaviour, which the issue saw as exit 7 and a false
/// "another instance ... took over").
#[test]
fn a_broker_replaced_under_a_run_ends_it_with_exit_4_and_says_it_lost_its_state() {
    let mut broker = Broker::start();
    let b = broker.bootstrap();
    let lines: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    let dir = scratch("kafka_broker_replaced");
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    let t = topics_with(&broker, "replaced", 1, 1);
    produce_lines_to(&b, &t.input, 0, &lines);
    let mut child = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
        .args(["--events", &format!("kafka://{b}/{}", t.input)])
        .args(["--output", &format!("kafka://{b}/{}", t.output)])
        .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
        .args(["--kafka-marker-topic", &t.marker])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let committing = wait_until(&mut child, || has_written(&dir, To::KafkaWithCheckpoint));
    assert!(committing, "no checkpoint came:\n{}", stderr(&ended(child)));
    broker.restart();
    for topic in [&t.input, &t.output, &t.late, &t.marker] {
        broker.create_topic(topic, 1);
    }
    produce_lines_to(&b, &t.input, 0, &lines);
    let output = ended(child);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(4), "{said}");
    // (the broker does not know the transactional id, or the group holds
    // no offsets any more: whichever call meets it first)
    let id = format!(
        "transactional id \"cepheid:{}\"",
        fs::canonicalize(dir.join("ckpt"))
            .expect("the folder")
            .display()
    );
    let lost = "it lost its state (a broker replaced, its storage lost)";
    let recreated = format!(
        "Kafka: topic {:?} was deleted and created again while the run read it",
        t.input
    );
    // (or the output topic, created again: what the sink's calls that
    // wait for the broker find when it answers nothing that says why)
    let output_changed = format!("Kafka: topic {:?} was deleted", t.output);
    assert!(
        (said.contains(&id) && said.contains(lost))
            || said.contains(&recreated)
            || said.contains(&output_changed),
        "neither {lost:?} nor {recreated:?} nor {output_changed:?}: {said}"
    );
    assert!(!said.contains("took over"), "{said}");
}

/// The output topic deleted under a run, exactly once and at least once:
/// exit 4, the topic named. Before: the run went on saying nothing (tansu
/// acknowledges records to a deleted topic, or holds them), until a
/// signal stopped it.
#[test]
fn an_output_topic_deleted_under_a_run_ends_it_with_exit_4_naming_the_topic() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let lines: Vec<String> = crash::events(3_000).lines().map(str::to_string).collect();
    for checkpoint in [false, true] {
        let dir = scratch(&format!("kafka_output_gone_{checkpoint}"));
        fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
        let t = topics_with(&broker, "out-gone", 1, 1);
        produce_lines_to(&b, &t.input, 0, &lines);
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{b}/{}", t.input)])
            .args(["--output", &format!("kafka://{b}/{}", t.output)]);
        if checkpoint {
            command
                .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
                .args(["--kafka-marker-topic", &t.marker]);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        // Deleted once records came out (read back from the topic, by a
        // client closed before the delete: the harness's clients have no
        // guard against librdkafka's crash).
        let mut reader = Reader::new(&b, &[(t.output.as_str(), 1)]);
        let writing = wait_until(&mut child, || {
            reader.poll(Duration::from_millis(10));
            !reader.seen.is_empty()
        });
        drop(reader);
        assert!(writing, "no output came:\n{}", stderr(&ended(child)));
        broker.delete_topic(&t.output);
        produce_lines_to(&b, &t.input, 0, &lines);
        let output = ended(child);
        let said = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(4),
            "checkpoint {checkpoint}: {said}"
        );
        let expected = format!(
            "Kafka: topic {:?} was deleted while the run wrote to it",
            t.output
        );
        assert!(said.contains(&expected), "checkpoint {checkpoint}: {said}");
    }
}

/// The input topic deleted under a run with a transactional output, and
/// created again with the same records (the same values and timestamps,
/// so the same offsets and fingerprints): the run ends with exit 4 and
/// commits nothing that the input did not make (no end of event time: its
/// open windows are not timed out), and a resume from its checkpoint reads
/// on, the records added since included, to the file run's committed
/// records. On one engine.
#[test]
fn an_input_topic_created_again_under_a_transactional_run_resumes_to_the_file_runs_records() {
    topic_created_again_then_resumed(None);
}

/// The same on 2 workers (found by `tests/kafka_faults.rs`: seed 1 case 0,
/// seed 39 cases 3, 6 and 13). A source's read error stops every reader of
/// the process as a signal does (session 44, `run/items.rs`), and the topic
/// deleted and created again is seen. This test was `#[ignore]`d as "the
/// workers' source does not see its topic deleted": it waited for a first
/// checkpoint, which a cut of workers over a quiet topic never takes
/// (`docs/checkpoints.md`, "Cuts and a quiet input"); it now waits for
/// every record to be read, and the resume starts again (no cut).
#[test]
fn on_workers_an_input_topic_created_again_under_a_transactional_run_resumes_to_the_file_runs_records(
) {
    topic_created_again_then_resumed(Some("2"));
}

/// The two tests above, on `workers` (`None`: one engine).
fn topic_created_again_then_resumed(workers: Option<&str>) {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let lines: Vec<String> = crash::events(2_000).lines().map(str::to_string).collect();
    let timed: Vec<(String, i64)> = (lines.iter().enumerate())
        .map(|(i, l)| (l.clone(), 1_700_000_000_000 + i as i64))
        .collect();
    let (first, rest) = timed.split_at(1_000);
    let dir = scratch(&format!("kafka_topic_again_{workers:?}"));
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let t = topics_with(&broker, "again", 1, 1);
    let id = format!("again-{workers:?}");
    produce_stamped(&b, &t.input, 0, first);
    let run = |until_end: bool| {
        let mut command = cepheid();
        command
            .current_dir(&dir)
            .args(["run", "rules.cep", "--no-progress", "--max-delay", "2s"])
            .args(["--events", &format!("kafka://{b}/{}", t.input)])
            .args(["--output", &format!("kafka://{b}/{}", t.output)])
            .args(["--late", &format!("kafka://{b}/{}", t.late)])
            .args(["--checkpoint", "ckpt", "--checkpoint-every", "200ms"])
            .args(["--kafka-marker-topic", &t.marker, "--transactional-id", &id]);
        if let Some(n) = workers {
            command.args(["--workers", n]);
        }
        if until_end {
            command.args(["--kafka-until", "end"]);
        }
        command
    };
    let mut reader = Reader::new(&b, &[(t.output.as_str(), 1), (t.late.as_str(), 1)]);
    let (mut committed, mut aborted) = (Vec::new(), 0);
    let live = crate::common::Live::spawn(&mut run(false));
    match workers {
        // (a checkpoint committed: the run goes on from it)
        None => {
            let deadline = Instant::now() + HANG;
            while !has_written(&dir, To::KafkaWithCheckpoint) {
                assert!(Instant::now() < deadline, "no checkpoint came");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // (every record read: a cut of workers waits for event time to
        // move on, which the quiet topic does not, so none is taken and
        // the resume starts again: `docs/checkpoints.md`, "Cuts and a
        // quiet input")
        Some(_) => {
            let last = (first.iter())
                .rposition(|(line, _)| line.contains("soon"))
                .expect("a malformed record");
            live.stderr_line(&format!("partition 0 offset {last}: malformed record"));
        }
    }
    broker.delete_topic(&t.input);
    broker.create_topic(&t.input, 1);
    produce_stamped(&b, &t.input, 0, first);
    let (status, _, said) = live.finish();
    assert_eq!(status.code(), Some(4), "{workers:?}: {said}");
    assert!(said.contains("was deleted"), "{workers:?}: {said}");
    reader.take_committed(&b, &id, &t.marker, &mut committed, &mut aborted);
    produce_stamped(&b, &t.input, 0, rest);
    let output = run(true).output().expect("runs");
    let said = stderr(&output);
    assert!(output.status.success(), "{workers:?}: {said}");
    if workers.is_none() {
        assert!(
            said.contains("cepheid: resuming from checkpoint"),
            "{workers:?}: {said}"
        );
    }
    reader.take_committed(&b, &id, &t.marker, &mut committed, &mut aborted);
    let records = |topic: &str| -> Vec<String> {
        let mut mine: Vec<&crate::common::kafka::Out> =
            committed.iter().filter(|o| o.topic == topic).collect();
        mine.sort_by_key(|o| o.offset);
        mine.iter().map(|o| o.payload.clone()).collect()
    };
    let late: Vec<String> = records(&t.late).iter().map(|r| late_event(r)).collect();
    assert_exact(&dir, &lines, &late, &records(&t.output), &said);
}
