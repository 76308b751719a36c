//! `KafkaSink` against the real broker: the transactional cycle, the
//! crash between "snapshot N written" and "commit N", fencing, the
//! idempotent mode, and the errors.
//!
//! tansu shows the records of aborted transactions to `read_committed`
//! consumers (`broker.rs`, `tansu_shows_aborted_records_...`): where
//! a test aborts a transaction it tags that transaction's records, checks
//! that they are exactly the aborted ones, and checks the rest exactly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{topic, Broker, Seen};
use cepheid_kafka::{
    KafkaError, KafkaPosition, KafkaSink, KeptCheckpoint, Kind, OutputTopics, Recovery, Retry,
    SinkConfig, Transactional,
};

fn position(t: &str, offsets: &[i64]) -> KafkaPosition {
    let mut p = KafkaPosition::new();
    for (i, o) in offsets.iter().enumerate() {
        p.set(t, i as i32, *o);
    }
    p
}

fn kept(id: u64, position: &KafkaPosition) -> KeptCheckpoint {
    KeptCheckpoint {
        id,
        position: position.clone(),
    }
}

fn transactional_sink(broker: &Broker, topics: OutputTopics, id: &str, group: &str) -> KafkaSink {
    let mut config = SinkConfig::new(broker.bootstrap(), topics);
    config.transactional = Some(Transactional::new(id, group));
    KafkaSink::new(config).expect("a transactional sink")
}

/// Writes `records` (key, text) as matches.
fn write(sink: &mut KafkaSink, records: &[(&str, String)]) {
    for (key, text) in records {
        sink.write(Kind::Match, key.as_bytes(), text.as_bytes())
            .expect("writes");
    }
}

fn batch(tag: &str, n: usize) -> Vec<(&'static str, String)> {
    const KEYS: [&str; 3] = ["alice", "bob", "carol"];
    (0..n)
        .map(|i| (KEYS[i % 3], format!("{tag}-{i}")))
        .collect()
}

fn payloads(seen: &[Seen]) -> Vec<String> {
    let mut v: Vec<String> = seen.iter().map(|s| s.payload.clone()).collect();
    v.sort();
    v
}

fn expected(batches: &[&[(&str, String)]]) -> Vec<String> {
    let mut v: Vec<String> = batches
        .iter()
        .flat_map(|b| b.iter().map(|(_, t)| t.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn the_transactional_cycle_commits_records_offsets_and_the_checkpoint_number() {
    let broker = Broker::start();
    let (input, output) = (topic("in"), topic("alerts"));
    broker.create_topic(&input, 2);
    broker.create_topic(&output, 3);
    let mut sink = transactional_sink(
        &broker,
        OutputTopics::One(output.clone()),
        "cycle",
        "g-cycle",
    );
    assert!(sink.is_transactional());
    assert_eq!(sink.describe(), format!("kafka:{output}"));

    let one = batch("one", 6);
    write(&mut sink, &one);
    sink.prepare(1).expect("prepare");
    let p1 = position(&input, &[3, 4]);
    sink.commit(1, &p1).expect("commit 1");
    let seen = broker.read_topic(&output, "read_committed");
    assert_eq!(payloads(&seen), expected(&[&one]));
    assert_eq!(seen.len(), 6);
    // Keyed by the partition key: one partition per key, in order.
    let mut by_key: BTreeMap<String, Vec<&Seen>> = BTreeMap::new();
    for s in &seen {
        by_key
            .entry(s.key.clone().expect("keyed"))
            .or_default()
            .push(s);
    }
    for (key, records) in by_key {
        assert!(
            records.windows(2).all(|w| w[0].partition == w[1].partition),
            "{key} spread over partitions: {records:?}"
        );
        let texts: Vec<&str> = records.iter().map(|s| s.payload.as_str()).collect();
        let mut sorted = texts.clone();
        sorted.sort_by_key(|t| t.rsplit('-').next().unwrap().parse::<u32>().unwrap());
        assert_eq!(texts, sorted, "{key} out of order");
    }

    // Checkpoint 2 with one record. (A checkpoint without any record
    // commits only offsets, which tansu 0.6.0 drops after an earlier
    // transaction of the same producer: `broker.rs`,
    // `tansu_drops_the_offsets_of_a_transaction_without_records`.)
    let p2 = position(&input, &[5, 4]);
    write(&mut sink, &batch("two", 1));
    sink.prepare(2).expect("prepare");
    sink.commit(2, &p2).expect("commit 2 without records");

    // A new instance: after commit 2, before checkpoint 1 was deleted.
    drop(sink);
    let mut again = transactional_sink(
        &broker,
        OutputTopics::One(output.clone()),
        "cycle",
        "g-cycle",
    );
    assert_eq!(
        again
            .recover(&[kept(2, &p2), kept(1, &p1)])
            .expect("recovers"),
        Recovery::Checkpoint(0)
    );
    assert_eq!(
        again.recover(&[kept(2, &p2)]).expect("recovers"),
        Recovery::Checkpoint(0)
    );
    // Checkpoint 2 not kept, or kept with other offsets: a clear error.
    let error = again.recover(&[kept(1, &p1)]).expect_err("2 is not kept");
    assert!(
        matches!(
            &error,
            KafkaError::NoCheckpointMatches {
                committed_checkpoint: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    eprintln!("{error}");
    let error = again
        .recover(&[kept(2, &position(&input, &[5, 9]))])
        .expect_err("other offsets");
    assert!(
        matches!(error, KafkaError::NoCheckpointMatches { .. }),
        "{error:?}"
    );
}

/// A topic read deleted after a commit takes the group's offsets of it
/// along (`tests/kafka_faults.rs`, finding C): the checkpoint the marker
/// names is still the one committed, its offsets of that topic no longer
/// to compare (the source checks them against the topic as it is then).
/// Before, a resume refused with `source offsets {}, which matches none of
/// the kept checkpoints`, saying nothing of why. An offset the group holds
/// that differs from the kept one is still refused.
#[test]
fn the_offsets_of_a_topic_deleted_since_are_not_held_against_the_checkpoint() {
    let broker = Broker::start();
    let (input, other, output) = (topic("gone-in"), topic("kept-in"), topic("gone-out"));
    broker.create_topic(&input, 2);
    broker.create_topic(&other, 1);
    broker.create_topic(&output, 1);
    let mut sink = transactional_sink(&broker, OutputTopics::One(output.clone()), "gone", "g-gone");
    write(&mut sink, &batch("one", 3));
    sink.prepare(1).expect("prepare");
    let mut p1 = position(&input, &[3, 4]);
    p1.set(&other, 0, 7);
    sink.commit(1, &p1).expect("commit 1");
    drop(sink);
    broker.delete_topic(&input);

    let mut again =
        transactional_sink(&broker, OutputTopics::One(output.clone()), "gone", "g-gone");
    assert_eq!(
        again.recover(&[kept(1, &p1)]).expect("recovers"),
        Recovery::Checkpoint(0)
    );
    let mut differs = p1.clone();
    differs.set(&other, 0, 8);
    let error = again
        .recover(&[kept(1, &differs)])
        .expect_err("the offset of the topic left differs");
    assert!(
        matches!(error, KafkaError::NoCheckpointMatches { .. }),
        "{error:?}"
    );
}

/// The crash points of `docs/checkpoints.md` ("Kafka"), at the library's
/// level: the caller's snapshot is modelled by the kept checkpoints, the
/// crash by dropping the sink without committing.
#[test]
fn a_crash_between_snapshot_and_commit_resumes_from_the_checkpoint_before() {
    let broker = Broker::start();
    let (input, output) = (topic("in"), topic("alerts"));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 2);
    let topics = || OutputTopics::One(output.clone());
    let (id, group) = ("crash", "g-crash");

    // A fresh start: nothing committed.
    let mut sink = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        sink.recover(&[]).expect("recovers"),
        Recovery::NothingCommitted
    );

    // Checkpoint 1 committed.
    let one = batch("one", 4);
    let p1 = position(&input, &[10]);
    write(&mut sink, &one);
    sink.prepare(1).expect("prepare 1");
    sink.commit(1, &p1).expect("commit 1");

    // Checkpoint 2: records written and flushed, snapshot 2 durable
    // (kept = [2, 1]), then the crash before commit 2.
    let lost = batch("aborted-two", 3);
    let p2 = position(&input, &[20]);
    write(&mut sink, &lost);
    sink.prepare(2).expect("prepare 2");
    drop(sink);

    // Restart: the broker committed 1, so state 1 is the one that matches
    // the committed offsets; the open transaction of 2 is aborted.
    let mut sink = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        sink.recover(&[kept(2, &p2), kept(1, &p1)])
            .expect("recovers"),
        Recovery::Checkpoint(1)
    );
    // Replaying from checkpoint 1 writes interval 2 again, and commits it.
    let two = batch("two", 3);
    write(&mut sink, &two);
    sink.prepare(2).expect("prepare 2 again");
    sink.commit(2, &p2).expect("commit 2");

    // A crash before snapshot 3 was written (kept = [2]): records of 3 in
    // an open transaction, aborted at the restart, which resumes from 2.
    let lost3 = batch("aborted-three", 2);
    write(&mut sink, &lost3);
    drop(sink);
    let mut sink = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        sink.recover(&[kept(2, &p2)]).expect("recovers"),
        Recovery::Checkpoint(0)
    );
    let three = batch("three", 2);
    let p3 = position(&input, &[30]);
    write(&mut sink, &three);
    sink.commit(3, &p3).expect("commit 3");

    let seen = broker.read_topic(&output, "read_committed");
    // The aborted transactions' records, which tansu still shows, are
    // exactly the crashed ones; the rest is every committed record once.
    let (aborted, committed): (Vec<Seen>, Vec<Seen>) = seen
        .into_iter()
        .partition(|s| s.payload.starts_with("aborted-"));
    // Those of 2 were flushed before the crash; those of 3 were still
    // queued in the dropped producer, and may never have left it.
    let aborted = payloads(&aborted);
    let two_lost = expected(&[&lost]);
    assert!(
        two_lost.iter().all(|r| aborted.contains(r))
            && aborted
                .iter()
                .all(|r| expected(&[&lost, &lost3]).contains(r)),
        "{aborted:?}"
    );
    assert_eq!(payloads(&committed), expected(&[&one, &two, &three]));
}

/// On several processes only process 0's sink writes; the others ask
/// theirs which checkpoint it committed (`KafkaSink::committed`), before
/// or after process 0 recovers: the same answer as its `recover`, and the
/// writer is not fenced.
#[test]
fn another_process_asks_which_checkpoint_was_committed_without_fencing_the_writer() {
    let broker = Broker::start();
    let (input, output) = (topic("in"), topic("alerts"));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    let topics = || OutputTopics::One(output.clone());
    let (id, group) = ("asked", "g-asked");
    let mut crashed = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        crashed.recover(&[]).expect("recovers"),
        Recovery::NothingCommitted
    );
    let one = batch("one", 2);
    let p1 = position(&input, &[1]);
    write(&mut crashed, &one);
    crashed.prepare(1).expect("prepare 1");
    crashed.commit(1, &p1).expect("commit 1");
    // Checkpoint 2 durable, the crash before its commit.
    let p2 = position(&input, &[2]);
    write(&mut crashed, &batch("aborted-two", 2));
    crashed.prepare(2).expect("prepare 2");
    drop(crashed);

    let kept_ones = [kept(2, &p2), kept(1, &p1)];
    let other = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        other.committed(&kept_ones).expect("asks"),
        Recovery::Checkpoint(1),
        "asked before the writer recovers"
    );
    let mut writer = transactional_sink(&broker, topics(), id, group);
    assert_eq!(
        writer.recover(&kept_ones).expect("recovers"),
        Recovery::Checkpoint(1)
    );
    assert_eq!(
        other.committed(&kept_ones).expect("asks"),
        Recovery::Checkpoint(1),
        "asked after"
    );
    // The writer goes on, not fenced.
    let two = batch("two", 2);
    write(&mut writer, &two);
    writer.prepare(2).expect("prepare 2 again");
    writer.commit(2, &p2).expect("commit 2: not fenced");
    assert_eq!(
        other.committed(&kept_ones).expect("asks"),
        Recovery::Checkpoint(0)
    );
    let idempotent = KafkaSink::new(SinkConfig::new(broker.bootstrap(), topics())).expect("a sink");
    let error = idempotent
        .committed(&kept_ones)
        .expect_err("not transactional");
    assert!(error.to_string().contains("committed"), "{error}");
    let seen = broker.read_topic(&output, "read_committed");
    let committed: Vec<Seen> = (seen.into_iter())
        .filter(|s| !s.payload.starts_with("aborted-"))
        .collect();
    assert_eq!(payloads(&committed), expected(&[&one, &two]));
}

#[test]
fn a_second_instance_fences_the_first() {
    let broker = Broker::start();
    let (input, output) = (topic("in"), topic("alerts"));
    broker.create_topic(&input, 1);
    broker.create_topic(&output, 1);
    let topics = || OutputTopics::One(output.clone());
    let mut first = transactional_sink(&broker, topics(), "fenced", "g-fenced");
    let p1 = position(&input, &[1]);
    write(&mut first, &batch("one", 2));
    first.commit(1, &p1).expect("commit 1");

    let mut second = transactional_sink(&broker, topics(), "fenced", "g-fenced");
    assert_eq!(
        second.recover(&[kept(1, &p1)]).expect("recovers"),
        Recovery::Checkpoint(0)
    );

    // The first one's next checkpoint fails: fenced.
    let result = (|| {
        write(&mut first, &batch("aborted-first", 2));
        first.prepare(2)?;
        first.commit(2, &position(&input, &[2]))
    })();
    let error = result.expect_err("the first instance is fenced");
    assert!(error.is_fenced(), "not fenced: {error:?}");
    assert!(error.to_string().contains("took over"), "{error}");
    eprintln!("{error}");

    // The second one goes on.
    write(&mut second, &batch("two", 2));
    second.commit(2, &position(&input, &[3])).expect("commit 2");
}

#[test]
fn the_idempotent_sink_writes_each_kind_to_its_topic() {
    let broker = Broker::start();
    let (m, t, l) = (topic("matches"), topic("timeouts"), topic("late"));
    for name in [&m, &t, &l] {
        broker.create_topic(name, 2);
    }
    let topics = OutputTopics::PerKind {
        matches: m.clone(),
        timeouts: t.clone(),
        late: l.clone(),
    };
    let mut sink = KafkaSink::new(SinkConfig::new(broker.bootstrap(), topics)).expect("a sink");
    assert!(!sink.is_transactional());
    sink.write(Kind::Match, b"k1", b"m1").expect("writes");
    sink.write(Kind::Timeout, b"k1", b"t1").expect("writes");
    sink.write(Kind::Late, b"k2", b"l1").expect("writes");
    sink.write(Kind::Match, b"k1", b"m2").expect("writes");
    sink.prepare(1).expect("prepare");
    sink.commit(1, &KafkaPosition::new())
        .expect("commit = flush");
    assert_eq!(
        payloads(&broker.read_topic(&m, "read_committed")),
        ["m1", "m2"]
    );
    assert_eq!(payloads(&broker.read_topic(&t, "read_committed")), ["t1"]);
    assert_eq!(payloads(&broker.read_topic(&l, "read_committed")), ["l1"]);
    let error = sink.recover(&[]).expect_err("not transactional");
    assert!(
        matches!(error, KafkaError::NotTransactional { .. }),
        "{error:?}"
    );
}

#[test]
fn an_output_topic_that_does_not_exist_is_a_clear_error() {
    let broker = Broker::start();
    let error = KafkaSink::new(SinkConfig::new(
        broker.bootstrap(),
        OutputTopics::One("no-such-alerts".into()),
    ))
    .expect_err("no such topic");
    assert!(
        matches!(&error, KafkaError::UnknownTopic { topic } if topic == "no-such-alerts"),
        "{error:?}"
    );
}

#[test]
fn an_unreachable_broker_is_an_error_after_the_limit() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SinkConfig::new(
        format!("127.0.0.1:{port}"),
        OutputTopics::One("alerts".into()),
    );
    config.retry = Retry {
        limit: Duration::from_secs(3),
        ..Retry::default()
    };
    let start = Instant::now();
    let error = KafkaSink::new(config).expect_err("nothing answers");
    let waited = start.elapsed();
    assert!(matches!(error, KafkaError::Unreachable { .. }), "{error:?}");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(15),
        "waited {waited:?}"
    );
    eprintln!("{error}");
}

/// A record that waited its whole `message.timeout.ms` for a broker gone
/// away is that broker gone past the limit (`Unreachable`: exit 6 from
/// `cepheid run`), not a record some broker refused (`Delivery`).
#[test]
fn a_record_not_delivered_before_its_timeout_is_the_broker_unreachable() {
    let (broker, mut proxy) = Broker::start_behind_proxy();
    let t = topic("gone-alerts");
    broker.create_topic(&t, 1);
    let mut config = SinkConfig::new(proxy.bootstrap(), OutputTopics::One(t.clone()));
    // The record times out before the flush's own limit passes.
    config.retry = Retry {
        limit: Duration::from_secs(20),
        ..Retry::default()
    };
    config.properties = vec![("message.timeout.ms".to_string(), "2000".to_string())];
    let mut sink = KafkaSink::new(config).expect("the broker answers");
    sink.write(Kind::Match, b"k", b"m1").expect("queued");
    sink.flush().expect("delivered");
    proxy.stop();
    sink.write(Kind::Match, b"k", b"m2").expect("queued");
    let start = Instant::now();
    let error = sink.flush().expect_err("the broker is gone");
    let waited = start.elapsed();
    assert!(
        matches!(
            &error,
            KafkaError::Unreachable { waited, .. } if *waited == Duration::from_secs(2)
        ),
        "{error:?}"
    );
    assert!(waited < Duration::from_secs(15), "waited {waited:?}");
    assert!(
        error.to_string().starts_with(
            "Kafka: the broker did not answer a record's delivery for 2.0 s (retried with backoff): "
        ),
        "{error}"
    );
}

/// Through the runtime's `Sink` trait (what `cepheid run` calls): the
/// kept checkpoint the broker committed is chosen by its index; nothing
/// committed while only the first checkpoint is kept starts over
/// (`kept.len()`); nothing committed with a later checkpoint kept is an
/// error that names it.
#[test]
fn the_runtime_sink_maps_the_recovery_to_the_kept_checkpoint() {
    use cepheid_kafka::encode_position;
    use cepheid_runtime::sink::{Checkpoint, Sink, SinkState};

    let broker = Broker::start();
    let out = topic("runtime-out");
    let input = topic("runtime-in");
    broker.create_topic(&out, 1);
    broker.create_topic(&input, 1);
    let checkpoint = |number: u64, at: i64| Checkpoint {
        number,
        source: encode_position(&position(&input, &[at])),
        sink: SinkState::default(),
    };
    // Nothing committed yet: only checkpoint 1 kept, start over.
    let mut sink = transactional_sink(&broker, OutputTopics::One(out.clone()), "rt", "rt-group");
    let first = [checkpoint(1, 5)];
    assert_eq!(Sink::recover(&mut sink, &first).expect("recovers"), 1);
    // Checkpoint 2 kept with nothing committed: the offsets are gone.
    let mut sink = transactional_sink(&broker, OutputTopics::One(out.clone()), "rt", "rt-group");
    let error = Sink::recover(&mut sink, &[checkpoint(2, 9), checkpoint(1, 5)])
        .expect_err("nothing committed, checkpoint 2 kept");
    assert!(
        error.to_string().contains("checkpoint 2 is kept"),
        "{error}"
    );
    // Commit 1 and 2 (records, offsets, marker); a third prepared only.
    let mut sink = transactional_sink(&broker, OutputTopics::One(out.clone()), "rt", "rt-group");
    for (n, at) in [(1, 5), (2, 9)] {
        Sink::write(
            &mut sink,
            cepheid_runtime::Kind::Match,
            b"{\"k\":1}",
            b"{\"n\":1}\n",
        )
        .expect("writes");
        Sink::prepare(&mut sink, n).expect("prepares");
        Sink::commit(&mut sink, n, &checkpoint(n, at).source).expect("commits");
    }
    Sink::write(
        &mut sink,
        cepheid_runtime::Kind::Match,
        b"{\"k\":1}",
        b"{\"n\":3}\n",
    )
    .expect("writes");
    Sink::prepare(&mut sink, 3).expect("prepares");
    // A new instance: checkpoint 3 written but not committed, 2 kept
    // beside it: the broker says 2, index 1.
    let mut next = transactional_sink(&broker, OutputTopics::One(out.clone()), "rt", "rt-group");
    let kept = [checkpoint(3, 12), checkpoint(2, 9)];
    assert_eq!(Sink::recover(&mut next, &kept).expect("recovers"), 1);
    assert_eq!(next.interval(), 3, "the next interval is 3 again");
    // The old instance was fenced: it says so, and stays so.
    let error = Sink::commit(&mut sink, 3, &kept[0].source).expect_err("fenced");
    assert!(error.to_string().contains("took over"), "{error}");
    let again = Sink::flush(&mut sink).expect_err("still fenced");
    assert!(again.to_string().contains("took over"), "{again}");
}

/// The payloads of `seen`, in the order read (by partition and offset).
fn in_order(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| s.payload.clone()).collect()
}

/// Issue 63: a transactional sink as `cepheid run` and `cepheid serve`
/// open it (`CommitApart`) commits each checkpoint on a thread of its own
/// while the run goes on writing: the records written after checkpoint
/// N's prepare, before or while N commits, go into the next transaction
/// (a `read_committed` consumer sees them only once N+1 committed), never
/// N's; the run does not wait for the commit (a broker answering 300 ms
/// late: the commit takes several of its round trips, the calls of the
/// run none).
#[test]
fn records_written_while_a_checkpoint_commits_go_into_the_next_transaction() {
    use cepheid_kafka::{encode_position, CommitApart};
    use cepheid_runtime::sink::{Checkpoint, Sink, SinkState};
    use cepheid_runtime::Kind as RunKind;

    let (broker, proxy) = Broker::start_behind_slow_proxy(Duration::ZERO);
    let out = topic("apart-out");
    let input = topic("apart-in");
    broker.create_topic(&out, 1);
    broker.create_topic(&input, 1);
    let at = |offset: i64| encode_position(&position(&input, &[offset]));
    let mut config = SinkConfig::new(proxy.bootstrap(), OutputTopics::One(out.clone()));
    config.transactional = Some(Transactional::new("apart", "apart-group"));
    let mut sink = CommitApart::new(KafkaSink::new(config).expect("a transactional sink"));
    assert!(sink.writes_before_commit());
    assert_eq!(Sink::recover(&mut sink, &[]).expect("recovers"), 0);
    let write = |sink: &mut CommitApart, text: &str| {
        let line = format!("{text}\n");
        Sink::write(sink, RunKind::Match, b"{\"k\":1}", line.as_bytes()).expect("writes");
    };

    write(&mut sink, "one-a");
    write(&mut sink, "one-b");
    Sink::prepare_apart(&mut sink, 1).expect("prepares");
    // (the checkpoint's file is written meanwhile)
    write(&mut sink, "two-a");
    proxy.set_delay(Duration::from_millis(300));
    let (woken, wake) = std::sync::mpsc::channel();
    let started = Instant::now();
    let now = Sink::commit_apart(
        &mut sink,
        1,
        &at(4),
        Box::new(move || {
            let _ = woken.send(());
        }),
    )
    .expect("begins");
    assert!(!now, "the commit goes on apart");
    write(&mut sink, "two-b");
    Sink::flush(&mut sink).expect("nothing to flush while it commits");
    let run_waited = started.elapsed();
    assert!(
        Sink::commit_done(&mut sink, false).is_none(),
        "still committing"
    );
    wake.recv_timeout(Duration::from_secs(60))
        .expect("woken when the commit ended");
    let committed_in = started.elapsed();
    Sink::commit_done(&mut sink, false)
        .expect("ended")
        .expect("committed");
    assert!(Sink::commit_done(&mut sink, false).is_some_and(|r| r.is_ok()));
    eprintln!("the run's calls took {run_waited:?}, the commit {committed_in:?}");
    assert!(
        run_waited < Duration::from_millis(150),
        "the run waited {run_waited:?}"
    );
    assert!(
        committed_in >= Duration::from_millis(300),
        "{committed_in:?}"
    );
    proxy.set_delay(Duration::ZERO);
    assert_eq!(
        in_order(&broker.read_topic(&out, "read_committed")),
        ["one-a", "one-b"],
        "checkpoint 1 holds what was written before its prepare, no more"
    );

    // Written after the commit, while none goes on: straight to the next
    // transaction, after the ones held.
    write(&mut sink, "two-c");
    Sink::prepare_apart(&mut sink, 2).expect("prepares");
    write(&mut sink, "three-a");
    assert!(!Sink::commit_apart(&mut sink, 2, &at(7), Box::new(|| {})).expect("begins"));
    Sink::commit_done(&mut sink, true)
        .expect("ended")
        .expect("committed");
    assert_eq!(
        in_order(&broker.read_topic(&out, "read_committed")),
        ["one-a", "one-b", "two-a", "two-b", "two-c"],
        "in the order written"
    );

    // The broker holds checkpoint 2: a new instance resumes from it, and
    // fences this one, whose commit of checkpoint 3 then fails on its
    // thread with the error a commit of the run's thread gave, given by
    // `commit_done`; what is written after it is dropped.
    let checkpoint = |number: u64, offset: i64| Checkpoint {
        number,
        source: at(offset),
        sink: SinkState::default(),
    };
    let mut next = CommitApart::new(transactional_sink(
        &broker,
        OutputTopics::One(out.clone()),
        "apart",
        "apart-group",
    ));
    let kept = [checkpoint(2, 7), checkpoint(1, 4)];
    assert_eq!(Sink::recover(&mut next, &kept).expect("recovers"), 0);
    Sink::prepare_apart(&mut sink, 3).expect("prepares");
    write(&mut sink, "four-a");
    assert!(!Sink::commit_apart(&mut sink, 3, &at(9), Box::new(|| {})).expect("begins"));
    let error = Sink::commit_done(&mut sink, true)
        .expect("ended")
        .expect_err("fenced");
    assert!(error.to_string().contains("took over"), "{error}");
    assert!(cepheid_kafka::kafka_error(&error.source).is_some_and(KafkaError::is_fenced));
    write(&mut sink, "four-b");
    let again = Sink::commit(&mut sink, 3, &at(9)).expect_err("still fenced");
    assert!(again.to_string().contains("took over"), "{again}");
    write(&mut next, "three-b");
    Sink::prepare_apart(&mut next, 3).expect("prepares");
    assert!(!Sink::commit_apart(&mut next, 3, &at(9), Box::new(|| {})).expect("begins"));
    Sink::commit_done(&mut next, true)
        .expect("ended")
        .expect("committed");
    let seen = in_order(&broker.read_topic(&out, "read_committed"));
    // (tansu shows aborted records to read_committed consumers: the first
    // instance's `three-a` was aborted by the takeover)
    let seen: Vec<_> = seen.into_iter().filter(|s| s != "three-a").collect();
    assert_eq!(
        seen,
        ["one-a", "one-b", "two-a", "two-b", "two-c", "three-b"]
    );
}

/// The bound of what `CommitApart` holds while a commit goes on: a write
/// past it waits for the commit (the run waits, no record is lost or
/// moved), and what was held goes into the next transaction in order.
#[test]
fn a_write_past_the_bound_held_waits_for_the_commit() {
    use cepheid_kafka::{encode_position, CommitApart};
    use cepheid_runtime::sink::Sink;
    use cepheid_runtime::Kind as RunKind;

    let (broker, proxy) = Broker::start_behind_slow_proxy(Duration::ZERO);
    let out = topic("bound-out");
    let input = topic("bound-in");
    broker.create_topic(&out, 1);
    broker.create_topic(&input, 1);
    let mut config = SinkConfig::new(proxy.bootstrap(), OutputTopics::One(out.clone()));
    config.transactional = Some(Transactional::new("bound", "bound-group"));
    let sink = KafkaSink::new(config).expect("a transactional sink");
    // (each record below: a 7-byte key and a 6-byte line)
    let mut sink = CommitApart::new(sink).holding_at_most(30);
    assert_eq!(Sink::recover(&mut sink, &[]).expect("recovers"), 0);
    let write = |sink: &mut CommitApart, text: &str| {
        let line = format!("{text}\n");
        let started = Instant::now();
        Sink::write(sink, RunKind::Match, b"{\"k\":1}", line.as_bytes()).expect("writes");
        started.elapsed()
    };
    write(&mut sink, "one-a");
    Sink::prepare_apart(&mut sink, 1).expect("prepares");
    proxy.set_delay(Duration::from_millis(300));
    let at = encode_position(&position(&input, &[1]));
    assert!(!Sink::commit_apart(&mut sink, 1, &at, Box::new(|| {})).expect("begins"));
    // 13 and 26 bytes held: at once; 39, past 30: waits for the commit.
    assert!(write(&mut sink, "two-a") < Duration::from_millis(150));
    assert!(write(&mut sink, "two-b") < Duration::from_millis(150));
    let waited = write(&mut sink, "two-c");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    // (the commit ended: taken by the write, given once)
    Sink::commit_done(&mut sink, false)
        .expect("ended")
        .expect("committed");
    write(&mut sink, "two-d");
    proxy.set_delay(Duration::ZERO);
    Sink::prepare_apart(&mut sink, 2).expect("prepares");
    let at = encode_position(&position(&input, &[2]));
    assert!(!Sink::commit_apart(&mut sink, 2, &at, Box::new(|| {})).expect("begins"));
    Sink::commit_done(&mut sink, true)
        .expect("ended")
        .expect("committed");
    assert_eq!(
        in_order(&broker.read_topic(&out, "read_committed")),
        ["one-a", "two-a", "two-b", "two-c", "two-d"]
    );
}
