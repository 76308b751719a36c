//! `KafkaSource` against the real broker: where it starts, what it hands
//! out, its position and `seek`.

use std::time::{Duration, Instant};

use crate::support::{topic, Broker};
use cepheid_kafka::{
    KafkaError, KafkaPosition, KafkaRecord, KafkaSource, PartitionLag, Partitions, Read,
    SourceConfig, StartAt, TopicChange, Until,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Reads until `n` records came (10 s at most).
pub(crate) fn read_n(source: &mut KafkaSource, n: usize) -> Vec<KafkaRecord> {
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while batch.len() < n && Instant::now() < deadline {
        source
            .read(&mut batch, Duration::from_millis(200))
            .expect("reads");
    }
    batch
}

/// Nothing more comes for 1 s.
pub(crate) fn assert_quiet(source: &mut KafkaSource) {
    let mut batch = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        assert_eq!(
            source
                .read(&mut batch, Duration::from_millis(200))
                .expect("reads"),
            Read::Idle,
            "unexpected {batch:?}"
        );
    }
}

fn payloads(records: &[KafkaRecord]) -> Vec<(i32, i64, String)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.partition,
                r.offset,
                String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

pub(crate) fn numbered(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("k{i}"), format!("{prefix}{i}")))
        .collect()
}

pub(crate) fn produce(broker: &Broker, t: &str, partition: i32, records: &[(String, String)]) {
    let refs: Vec<(&str, &str)> = records
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    broker.produce(t, partition, &refs);
}

#[test]
fn positions_round_trip_through_a_checkpoint_and_seek_goes_back() {
    let broker = Broker::start();
    let t = topic("positions");
    broker.create_topic(&t, 2);
    produce(&broker, &t, 0, &numbered("a", 5));
    produce(&broker, &t, 1, &numbered("b", 3));

    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
    assert_eq!(source.describe(), format!("kafka:{t}"));
    assert_eq!(source.splits(), [(t.clone(), 0), (t.clone(), 1)]);
    let mut start = KafkaPosition::new();
    start.set(&t, 0, 0);
    start.set(&t, 1, 0);
    assert_eq!(source.position(), start, "the start is concrete offsets");

    let records = read_n(&mut source, 8);
    assert_eq!(records.len(), 8);
    let first = records.iter().find(|r| r.partition == 1).expect("one of 1");
    assert_eq!(first.split, 1);
    assert_eq!(first.topic, t);
    assert_eq!(first.key.as_deref(), Some(&b"k0"[..]));
    assert!(first.timestamp.is_some(), "the Kafka timestamp: {first:?}");
    assert_eq!(
        payloads(&records)[..2],
        [(0, 0, "a0".to_string()), (0, 1, "a1".to_string())]
    );
    let position = source.position();
    assert_eq!(position.get(&t, 0), Some(5));
    assert_eq!(position.get(&t, 1), Some(3));

    // Through a checkpoint (its serde) into a new source: only what came
    // after.
    let saved = serde_json::to_string(&position).expect("serializes");
    drop(source);
    produce(&broker, &t, 0, &numbered("c", 2));
    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.start = StartAt::Position(serde_json::from_str(&saved).expect("deserializes"));
    let mut source = KafkaSource::new(config).expect("a source");
    assert_eq!(
        payloads(&read_n(&mut source, 2)),
        [(0, 5, "c0".to_string()), (0, 6, "c1".to_string())]
    );
    assert_quiet(&mut source);

    // seek: partition 0 back to offset 3, partition 1 where it is.
    let mut back = KafkaPosition::new();
    back.set(&t, 0, 3);
    back.set("another-workers-topic", 0, 9);
    source.seek(&back).expect("seeks");
    assert_eq!(source.position().get(&t, 0), Some(3));
    assert_eq!(
        payloads(&read_n(&mut source, 4)),
        [
            (0, 3, "a3".to_string()),
            (0, 4, "a4".to_string()),
            (0, 5, "c0".to_string()),
            (0, 6, "c1".to_string())
        ]
    );
    assert_quiet(&mut source);
    assert_eq!(source.position().get(&t, 0), Some(7));
    assert_eq!(source.position().len(), 2);
}

#[test]
fn starts_at_latest_at_a_timestamp_and_on_given_partitions() {
    let broker = Broker::start();
    let t = topic("start");
    broker.create_topic(&t, 2);
    // Timestamps are the produce time here: tansu 0.6.0's memory storage
    // answers a ListOffsets by timestamp from the time each batch was
    // stored, not from the records' timestamps (tansu-storage
    // `src/dynostore.rs`, `list_offsets`: `ListOffset::Timestamp` compares
    // `meta.last_modified`), so records with timestamps of the past would
    // not be found as Kafka finds them.
    produce(&broker, &t, 0, &numbered("t", 1));
    std::thread::sleep(Duration::from_millis(100));
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    std::thread::sleep(Duration::from_millis(100));
    // One record per batch: tansu 0.6.0's memory storage answers a
    // ListOffsets for the latest offset (the high watermark) with the
    // base offset of the last batch + 1 (`src/dynostore.rs`: `offset + 1`
    // of the newest batch object), short of its end when that batch holds
    // more than one record.
    for record in numbered("u", 2) {
        produce(&broker, &t, 0, &[record]);
    }

    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.start = StartAt::Timestamp(at);
    let mut source = KafkaSource::new(config).expect("a source");
    let records = read_n(&mut source, 2);
    assert_eq!(
        payloads(&records),
        [(0, 1, "u0".to_string()), (0, 2, "u1".to_string())]
    );
    assert!(records[0].timestamp >= Some(at), "{records:?}");

    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.start = StartAt::Latest;
    let mut latest = KafkaSource::new(config).expect("a source");
    assert_eq!(latest.position().get(&t, 0), Some(3));
    assert_quiet(&mut latest);
    produce(&broker, &t, 0, &numbered("new", 1));
    assert_eq!(
        payloads(&read_n(&mut latest, 1)),
        [(0, 3, "new0".to_string())]
    );

    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.partitions = Partitions::Only(vec![(t.clone(), 1)]);
    let mut only = KafkaSource::new(config).expect("a source");
    assert_eq!(only.splits(), [(t.clone(), 1)]);
    assert_eq!(only.position().len(), 1);
    produce(&broker, &t, 1, &numbered("p1-", 1));
    assert_eq!(
        payloads(&read_n(&mut only, 1)),
        [(1, 0, "p1-0".to_string())]
    );
    assert_eq!(
        only.read(&mut Vec::new(), Duration::from_millis(500))
            .expect("reads"),
        Read::Idle
    );

    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.partitions = Partitions::Only(vec![(t.clone(), 7)]);
    let error = KafkaSource::new(config).expect_err("no partition 7");
    assert!(
        matches!(&error, KafkaError::UnknownPartition { partition: 7, .. }),
        "{error:?}"
    );
}

/// A read that fills its batch says `Delivered` (more may be ready); one
/// that emptied the consumer's queue says `CaughtUp` (all that was
/// written so far is read: `cepheid run` shows its output then), and one
/// that got nothing `Idle`.
#[test]
fn a_read_that_empties_the_queue_says_it_caught_up() {
    let broker = Broker::start();
    let t = topic("caught-up");
    broker.create_topic(&t, 1);
    produce(&broker, &t, 0, &numbered("r", 5));
    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.max_batch = 2;
    let mut source = KafkaSource::new(config).expect("a source");
    let (mut batch, mut reads) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while batch.len() < 5 && Instant::now() < deadline {
        let before = batch.len();
        let read = source
            .read(&mut batch, Duration::from_millis(200))
            .expect("reads");
        reads.push((batch.len() - before, read));
    }
    assert_eq!(batch.len(), 5, "{reads:?}");
    for (n, read) in &reads {
        let expected = match n {
            0 => Read::Idle,
            2 => Read::Delivered(2),
            n => Read::CaughtUp(*n),
        };
        assert_eq!(*read, expected, "{reads:?}");
    }
    // (5 in reads of at most 2: at least one read of 1)
    assert!(reads.iter().any(|(_, r)| matches!(r, Read::CaughtUp(_))));
    assert_eq!(
        source
            .read(&mut Vec::new(), Duration::from_millis(200))
            .expect("reads"),
        Read::Idle
    );
}

#[test]
fn a_tombstone_is_handed_out_not_dropped() {
    let broker = Broker::start();
    let t = topic("tombstone");
    broker.create_topic(&t, 1);
    let producer: BaseProducer = broker.config().create().expect("a producer");
    producer
        .send(BaseRecord::<str, str>::to(&t).partition(0).key("gone"))
        .map_err(|(e, _)| e)
        .expect("queues");
    producer.flush(Duration::from_secs(10)).expect("delivered");
    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
    let records = read_n(&mut source, 1);
    assert_eq!(records.len(), 1);
    assert!(records[0].is_tombstone(), "{records:?}");
    assert_eq!(records[0].key.as_deref(), Some(&b"gone"[..]));
    assert_eq!(source.position().get(&t, 0), Some(1));
}

#[test]
fn a_topic_that_does_not_exist_is_a_clear_error() {
    let broker = Broker::start();
    let error = KafkaSource::new(SourceConfig::new(broker.bootstrap(), &["no-such-topic"]))
        .expect_err("no such topic");
    assert!(
        matches!(&error, KafkaError::UnknownTopic { topic } if topic == "no-such-topic"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "Kafka: topic \"no-such-topic\" does not exist"
    );
}

#[test]
fn a_broker_down_past_the_retry_limit_is_a_clear_error() {
    let mut broker = Broker::start();
    let t = topic("down");
    broker.create_topic(&t, 1);
    produce(&broker, &t, 0, &numbered("a", 1));
    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.retry = cepheid_kafka::Retry {
        limit: Duration::from_secs(3),
        ..Default::default()
    };
    let mut source = KafkaSource::new(config).expect("a source");
    assert_eq!(read_n(&mut source, 1).len(), 1);
    broker.stop();
    let start = Instant::now();
    let mut batch = Vec::new();
    let error = loop {
        match source.read(&mut batch, Duration::from_millis(200)) {
            Ok(_) => assert!(
                start.elapsed() < Duration::from_secs(30),
                "no error 30 s after the broker stopped"
            ),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, KafkaError::Unreachable { .. }), "{error:?}");
    assert!(start.elapsed() >= Duration::from_secs(3));
    eprintln!("{error}");
}

#[test]
fn reads_several_topics_each_partition_a_split() {
    let broker = Broker::start();
    let (a, b) = (topic("orders"), topic("logins"));
    broker.create_topic(&a, 2);
    broker.create_topic(&b, 1);
    produce(&broker, &a, 1, &numbered("o", 2));
    produce(&broker, &b, 0, &numbered("l", 1));
    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&a, &b])).expect("a source");
    assert_eq!(source.describe(), format!("kafka:{a},{b}"));
    assert_eq!(
        source.splits(),
        [(a.clone(), 0), (a.clone(), 1), (b.clone(), 0)]
    );
    let records = read_n(&mut source, 3);
    let mut seen: Vec<(usize, String)> =
        records.iter().map(|r| (r.split, r.topic.clone())).collect();
    seen.sort();
    assert_eq!(seen, [(1, a.clone()), (1, a.clone()), (2, b.clone())]);
    let position = source.position();
    assert_eq!(
        (
            position.get(&a, 0),
            position.get(&a, 1),
            position.get(&b, 0)
        ),
        (Some(0), Some(2), Some(1))
    );
}

/// Reads (idle: the partitions are paused or read to their end) until
/// `done` holds of the lag, or 10 s passed; the last lag seen.
fn lag_until(
    source: &mut KafkaSource,
    done: impl Fn(&[PartitionLag]) -> bool,
) -> Option<Vec<PartitionLag>> {
    // (a hang guard, not a speed limit: the statistics come every
    // interval, later on a loaded machine, and the loop ends as soon as
    // they say it; 10 s was once too short beside a full test suite)
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut batch = Vec::new();
    loop {
        let lag = source.lag();
        if lag.as_deref().is_some_and(&done) || Instant::now() >= deadline {
            assert!(batch.is_empty(), "unexpected {batch:?}");
            return lag;
        }
        source
            .read(&mut batch, Duration::from_millis(100))
            .expect("reads");
    }
}

fn records_behind(lag: &[PartitionLag]) -> Vec<(i32, u64)> {
    lag.iter().map(|l| (l.partition, l.records)).collect()
}

#[test]
fn the_lag_is_what_waits_behind_each_partitions_end_and_0_once_all_is_read() {
    let broker = Broker::start();
    let t = topic("lag");
    broker.create_topic(&t, 2);
    produce(&broker, &t, 0, &numbered("a", 5));
    produce(&broker, &t, 1, &numbered("b", 3));
    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.max_batch = 1;
    let mut source = KafkaSource::new(config).expect("a source");
    // Nothing known before the client's statistics name every partition.
    assert_eq!(source.lag(), None);

    // One record read, then the partitions paused: the rest waits.
    let first = read_n(&mut source, 1);
    assert_eq!(first.len(), 1);
    source.pause().expect("pauses");
    let position = source.position();
    let behind = |p: i32, n: i64| (p, (n - position.get(&t, p).unwrap()) as u64);
    let expected = vec![behind(0, 5), behind(1, 3)];
    assert_eq!(expected.iter().map(|(_, n)| n).sum::<u64>(), 7);
    let lag = lag_until(&mut source, |lag| records_behind(lag) == expected);
    let lag = lag.expect("the statistics name both partitions");
    assert_eq!(records_behind(&lag), expected, "{lag:?}");
    assert!(lag.iter().all(|l| l.topic == t));

    // Resumed and read to the end: nothing behind.
    source.resume().expect("resumes");
    let rest = read_n(&mut source, 7);
    assert_eq!(payloads(&rest).len(), 7);
    let lag = lag_until(&mut source, |lag| lag.iter().all(|l| l.records == 0));
    assert_eq!(records_behind(&lag.expect("known")), [(0, 0), (1, 0)]);
}

/// Writes `payloads` to `partition` of `topic` in one committed
/// transaction (as `cepheid run`'s transactional sink writes).
fn produce_in_transaction(
    broker: &Broker,
    id: &str,
    topic: &str,
    partition: i32,
    payloads: &[String],
) {
    let producer: BaseProducer = broker
        .config()
        .set("transactional.id", id)
        .create()
        .expect("a transactional producer");
    let t = Duration::from_secs(10);
    producer.init_transactions(t).expect("init_transactions");
    producer.begin_transaction().expect("begin_transaction");
    for payload in payloads {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(payload),
            )
            .map_err(|(e, _)| e)
            .expect("queues a record");
    }
    producer.commit_transaction(t).expect("commit_transaction");
}

#[test]
fn a_bounded_source_ends_on_partitions_written_with_transactions() {
    let broker = Broker::start();
    let t = topic("transactional");
    broker.create_topic(&t, 2);
    let texts = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    produce_in_transaction(&broker, "tx-a", &t, 0, &texts("a", 4));
    produce_in_transaction(&broker, "tx-b", &t, 1, &texts("b", 2));
    produce_in_transaction(&broker, "tx-b", &t, 1, &texts("c", 3));
    let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
    config.until = Some(Until::End);
    let mut source = KafkaSource::new(config).expect("a source");
    // Each partition's end is after its last commit marker, which no
    // consumer reads.
    let end = source.end().expect("bounded").clone();
    assert!(end.get(&t, 0).unwrap() > 4, "{end:?}");
    assert!(end.get(&t, 1).unwrap() > 5, "{end:?}");

    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !source.at_end() {
        assert!(
            Instant::now() < deadline,
            "never at its end: {source:?}, {batch:?}"
        );
        source
            .read(&mut batch, Duration::from_millis(100))
            .expect("reads");
    }
    let mut got: Vec<String> = payloads(&batch).into_iter().map(|(_, _, p)| p).collect();
    got.sort();
    let mut want = [texts("a", 4), texts("b", 2), texts("c", 3)].concat();
    want.sort();
    assert_eq!(got, want);
    // Its lag, too, counts no marker.
    let lag = lag_until(&mut source, |lag| lag.iter().all(|l| l.records == 0));
    assert_eq!(records_behind(&lag.expect("known")), [(0, 0), (1, 0)]);
}

/// Reads until the source fails (whatever it hands out meanwhile), at
/// most `limit` (a hang guard, far above the source's 1 s between two
/// looks at its topics): the error.
fn read_until_error(source: &mut KafkaSource, limit: Duration) -> KafkaError {
    let mut batch = Vec::new();
    let start = Instant::now();
    loop {
        match source.read(&mut batch, Duration::from_millis(100)) {
            Ok(_) => assert!(
                start.elapsed() < limit,
                "no error in {limit:?}: the topic's change was not seen"
            ),
            Err(error) => return error,
        }
    }
}

/// A topic deleted under a source, and one deleted and created again
/// under its name (another topic, its offsets starting again): each read
/// ends with an error naming the topic and what became of it. Before the
/// guard, librdkafka crashed (SIGSEGV) on the fetch after the delete
/// (docs/upstream/librdkafka-topic-recreate.md); before the watch, the
/// reads went on saying nothing, for ever.
#[test]
fn a_topic_deleted_or_created_again_under_a_source_ends_its_reads_clearly() {
    assert!(
        cepheid_kafka::metadata_guard_active(),
        "the tests are linked with the guard (build.rs)"
    );
    let broker = Broker::start();
    for created_again in [false, true] {
        let t = topic("gone");
        broker.create_topic(&t, 2);
        produce(&broker, &t, 0, &numbered("a", 5));
        produce(&broker, &t, 1, &numbered("b", 5));
        let mut source =
            KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
        assert_eq!(read_n(&mut source, 10).len(), 10);
        broker.delete_topic(&t);
        let expected = if created_again {
            broker.create_topic(&t, 2);
            // More records than the source read: its offsets are valid in
            // the new topic, whose first records it would skip.
            produce(&broker, &t, 0, &numbered("c", 20));
            TopicChange::CreatedAgain
        } else {
            TopicChange::Deleted
        };
        let error = read_until_error(&mut source, Duration::from_secs(60));
        match &error {
            KafkaError::TopicChanged { topic, change, .. } => {
                assert_eq!((topic, *change), (&t, expected), "{error}");
            }
            other => panic!("not a changed topic: {other}"),
        }
        let said = error.to_string();
        assert!(said.contains(&format!("topic {t:?} was deleted")), "{said}");
    }
}

/// How many times [`a_source_sought_at_its_start_and_ended_at_once_never_aborts`]
/// goes through its sequences: before the fix its process died by SIGABRT
/// within the first 20 each time (at the 3rd, 12th, 16th and 3rd of a
/// loop of the first sequence alone; twice of two with this test).
const SOUGHT_CASES: usize = 40;

/// Issue 39, finding E: librdkafka 2.12.1 aborts the process
/// (`rd_kafka_assignment_partition_stopped: Assertion rktp->rktp_started
/// failed`) when a consumer's assignment is taken away twice before its
/// fetchers have stopped (librdkafka issue #5573). A source that starts at
/// a checkpoint's position and is sought there (a resume: the workers'
/// `Source::seek`), then ends at once (nothing left to read, `--kafka-until
/// end`), replaced its assignment and closed within that window: the last
/// run of a random case after a SIGTERM died so, 2 of 2. Each consumer is
/// now assigned once. Cases bounded, not time: the sequences a resume
/// makes, the rules topic's consumer's too, and a seek after reads.
#[test]
fn a_source_sought_at_its_start_and_ended_at_once_never_aborts() {
    let broker = Broker::start();
    let (t, rules) = (topic("sought"), topic("sought-rules"));
    broker.create_topic(&t, 3);
    broker.create_topic(&rules, 1);
    for p in 0..3 {
        produce(&broker, &t, p, &numbered("a", 5));
    }
    broker.produce(&rules, 0, &[("", r#"{"$rules": "pattern p: a"}"#)]);
    let mut at = KafkaPosition::new();
    for p in 0..3 {
        at.set(&t, p, 5);
    }
    let mut with_rules = at.clone();
    with_rules.set(&rules, 0, 1);
    for case in 0..SOUGHT_CASES {
        let mut config = SourceConfig::new(broker.bootstrap(), &[&t]);
        config.until = Some(Until::End);
        let at = match case % 2 {
            0 => &at,
            _ => {
                config.rules_topic = Some(rules.clone());
                &with_rules
            }
        };
        config.start = StartAt::Position(at.clone());
        let mut source = KafkaSource::new(config).expect("a source");
        source.seek(at).expect("seeks");
        let mut batch = Vec::new();
        source.read(&mut batch, Duration::ZERO).expect("reads");
        if case % 3 == 2 {
            // (sought again after a read, as at an offset out of range)
            source.seek(at).expect("seeks");
            source.read(&mut batch, Duration::ZERO).expect("reads");
        }
        assert!(batch.is_empty(), "case {case}: {batch:?}");
        assert!(source.at_end(), "case {case}");
    }
}

/// Issue 40: a source with a rules topic and a list's topic hands out
/// each topic's records with a split of its own (after the partitions of
/// events: the rules topic, then the lists in order), gives a list's
/// record as the `$list` record it means (or why it is no entry), and
/// keeps each topic's offset in its position: before the records not
/// applied yet, each topic apart.
#[test]
fn a_lists_topic_has_its_own_split_offset_and_records_as_list_changes() {
    use cepheid_runtime::source::{Judged, Origin, Source, Unapplied};
    let broker = Broker::start();
    let (events, rules, list) = (topic("ev"), topic("ev-rules"), topic("ev-list"));
    broker.create_topic(&events, 1);
    broker.create_topic(&rules, 1);
    broker.create_topic(&list, 1);
    broker.produce(&events, 0, &[("", r#"{"ts": 1}"#)]);
    broker.produce(&rules, 0, &[("", r#"{"$rules": "pattern p: a"}"#)]);
    // (one at a time: tansu's end offset)
    for (key, value) in [("u1", ""), ("", ""), ("u2", r#"{"expires": 5}"#)] {
        broker.produce(&list, 0, &[(key, value)]);
    }
    let mut config = SourceConfig::new(broker.bootstrap(), &[&events]);
    config.rules_topic = Some(rules.clone());
    config.list_topics = vec![("blocked".to_string(), list.clone())];
    let mut source = KafkaSource::new(config).expect("a source");
    assert_eq!(source.splits().len(), 1);
    assert_eq!(source.control_topic(0), None);
    assert_eq!(source.control_topic(1), Some((rules.as_str(), None)));
    assert_eq!(
        source.control_topic(2),
        Some((list.as_str(), Some("blocked")))
    );
    let mut read = Vec::new();
    let limit = Instant::now() + Duration::from_secs(10);
    while read.len() < 4 {
        assert!(Instant::now() < limit, "{read:?}");
        source.read_rules(&mut read).expect("reads");
    }
    let splits: Vec<(usize, i64)> = read.iter().map(|r| (r.split, r.offset)).collect();
    assert_eq!(splits, [(1, 0), (2, 0), (2, 1), (2, 2)]);
    assert_eq!(source.list_change(&read[0]), None);
    let change = |r: &KafkaRecord| {
        (source.list_change(r).expect("a list's record"))
            .map(|json| serde_json::from_slice::<serde_json::Value>(&json).unwrap())
    };
    assert_eq!(
        change(&read[1]),
        Ok(serde_json::json!({"$list": "blocked", "add": "u1"}))
    );
    let why = change(&read[2]).unwrap_err();
    assert!(
        why.contains("no entry of list `blocked`: its key is empty"),
        "{why}"
    );
    assert_eq!(
        change(&read[3]),
        Ok(serde_json::json!({"$list": "blocked", "add": "u2", "expires": 5}))
    );
    // Every record handed out: each topic after its last.
    let at = KafkaSource::position(&source);
    assert_eq!((at.get(&rules, 0), at.get(&list, 0)), (Some(1), Some(3)));
    // The list's records from offset 1 on not applied yet: the list's
    // topic there, the rules topic after its record.
    // (the first waits for its time, the second was read far ahead of
    // event time, at the watermark 4,000)
    let waiting = [
        Unapplied {
            split: 2,
            origin: Origin::Offset {
                partition: 0,
                offset: 1,
            },
            judged: Judged::Waits,
        },
        Unapplied {
            split: 2,
            origin: Origin::Offset {
                partition: 0,
                offset: 2,
            },
            judged: Judged::Ahead(4_000),
        },
    ];
    let before = cepheid_kafka::decode_position(&source.position_before(&waiting)).unwrap();
    assert_eq!(
        (before.get(&rules, 0), before.get(&list, 0)),
        (Some(1), Some(1))
    );
    assert_eq!(before.get(&events, 0), at.get(&events, 0));
    // Issue 59: with how the run judged the records it holds from there
    // on (none of the rules topic: it holds none).
    let held = cepheid_kafka::Held {
        through: 3,
        ahead: vec![(2, 4_000)],
    };
    assert_eq!(before.held(&list, 0), Some(&held));
    assert_eq!(before.held(&rules, 0), None);
    // Each topic's records are described with their topic.
    let place = source.describe_origin(2, &waiting[0].origin);
    assert_eq!(place, format!("kafka:{list} partition 0 offset 1"));
    // Sought back there, the list's topic is read again from offset 1.
    source.seek(&before).expect("seeks");
    let mut again = Vec::new();
    let limit = Instant::now() + Duration::from_secs(10);
    while again.len() < 2 {
        assert!(Instant::now() < limit, "{again:?}");
        source.read_rules(&mut again).expect("reads");
    }
    let splits: Vec<(usize, i64)> = again.iter().map(|r| (r.split, r.offset)).collect();
    assert_eq!(splits, [(2, 1), (2, 2)]);
    // Each read again as judged before the position: the run that resumes
    // holds them as the one that took it did.
    let judged: Vec<_> = again.iter().map(|r| source.held_before(r)).collect();
    assert_eq!(judged, [Some(None), Some(Some(4_000))]);
    // Sought to where it is, nothing is held: what it reads is new.
    source.seek(&KafkaSource::position(&source)).expect("seeks");
    broker.produce(&list, 0, &[("u3", "")]);
    let mut new = Vec::new();
    let limit = Instant::now() + Duration::from_secs(10);
    while new.is_empty() {
        assert!(Instant::now() < limit, "a record after the position");
        source.read_rules(&mut new).expect("reads");
    }
    assert_eq!(source.held_before(&new[0]), None);
}
