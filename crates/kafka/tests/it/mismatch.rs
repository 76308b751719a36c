//! Kept offsets that no longer fit their topic (issue 39, item 2): a
//! topic deleted and written again with fewer records than the kept
//! offset, or with more (other records at those offsets), refused by
//! default and started again where `OnMismatch` says; a position of
//! before the marks still resumes.

use std::time::{Duration, Instant};

use crate::source::{assert_quiet, numbered, read_n};
use crate::support::{topic, Broker};
use cepheid_kafka::{
    encode_position, KafkaError, KafkaPosition, KafkaRecord, KafkaSource, Mismatch, OnMismatch,
    SourceConfig, StartAt,
};
use cepheid_runtime::source::{Position, Source};
use cepheid_runtime::{Level, Notices, Notify, Report};

fn values(records: &[KafkaRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// The values of the next `n` records, and then nothing more for 1 s.
fn next(source: &mut KafkaSource, n: usize) -> Vec<String> {
    let records = read_n(source, n);
    assert_quiet(source);
    values(&records)
}

fn produce(broker: &Broker, t: &str, prefix: &str, n: usize) {
    crate::source::produce(broker, t, 0, &numbered(prefix, n));
}

/// A topic of one partition with `n` records `a0...`, read up to `kept`:
/// the position there.
fn read_up_to(broker: &Broker, t: &str, n: usize, kept: usize) -> KafkaPosition {
    broker.create_topic(t, 1);
    produce(broker, t, "a", n);
    let mut config = SourceConfig::new(broker.bootstrap(), &[t]);
    config.max_batch = kept;
    let mut source = KafkaSource::new(config).expect("a source");
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while batch.len() < kept && Instant::now() < deadline {
        source
            .read(&mut batch, Duration::from_millis(200))
            .expect("reads");
    }
    assert_eq!(batch.len(), kept);
    let position = source.position();
    assert_eq!(position.get(t, 0), Some(kept as i64));
    assert!(position.mark(t, 0).is_some(), "{position:?}");
    position
}

/// The topic deleted and written again with `n` records `b0...`, each in
/// a batch of its own (tansu 0.6 gives the end of a partition as its last
/// batch's first offset + 1: docs/kafka.md).
fn written_again(broker: &Broker, t: &str, n: usize) {
    broker.delete_topic(t);
    broker.create_topic(t, 1);
    for i in 0..n {
        broker.produce(t, 0, &[(&format!("k{i}"), &format!("b{i}"))]);
    }
}

fn start_at(broker: &Broker, t: &str, at: &KafkaPosition, on: OnMismatch) -> SourceConfig {
    let mut config = SourceConfig::new(broker.bootstrap(), &[t]);
    config.start = StartAt::Position(at.clone());
    config.on_mismatch = on;
    config
}

/// What a source said through its report.
fn said(source: &mut KafkaSource) -> std::sync::Arc<std::sync::Mutex<Notices>> {
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Notices::default()));
    let report: Box<dyn Report> = Box::new(Shared(notices.clone()));
    let (_, notify) = Notify::share(report);
    source.notify_to(notify);
    notices
}

struct Shared(std::sync::Arc<std::sync::Mutex<Notices>>);

impl Report for Shared {
    fn notice(&mut self, notice: cepheid_runtime::Notice) {
        self.0.lock().unwrap().0.push(notice);
    }
}

#[test]
fn an_offset_beyond_the_end_of_a_topic_written_again_is_refused_or_started_again_as_asked() {
    let broker = Broker::start();
    let t = topic("fewer");
    let kept = read_up_to(&broker, &t, 10, 8);
    written_again(&broker, &t, 3);

    // Refused by default, saying the topic, partition, offset and end.
    let error = KafkaSource::new(start_at(&broker, &t, &kept, OnMismatch::Refuse)).unwrap_err();
    assert!(error.is_checkpoint(), "{error}");
    match &error {
        KafkaError::OffsetMismatch {
            topic,
            partition: 0,
            offset: 8,
            mismatch,
            others: 0,
        } if *topic == t && **mismatch == Mismatch::BeyondEnd { end: 3 } => {}
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains(&format!("the kept offset 8 of topic {t:?} partition 0"))
            && text.contains("ends at offset 3 now")
            && text.contains("nothing was read"),
        "{text}"
    );

    // earliest: the topic's three records, said and counted.
    let mut source =
        KafkaSource::new(start_at(&broker, &t, &kept, OnMismatch::Earliest)).expect("a source");
    let notices = said(&mut source);
    assert_eq!(next(&mut source, 3), ["b0", "b1", "b2"]);
    assert_eq!(source.restarted(), 1);
    let notices = &notices.lock().unwrap().0;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].level(), Level::Warning);
    let text = notices[0].to_string();
    assert!(
        text.contains("the kept offset 8 of topic")
            && text.contains("starts again at its first record, offset 0")
            && text.contains("`KafkaOptions::offset_mismatch` earliest"),
        "{text}"
    );

    // latest: only what comes next.
    let mut source =
        KafkaSource::new(start_at(&broker, &t, &kept, OnMismatch::Latest)).expect("a source");
    assert_eq!(source.position().get(&t, 0), Some(3));
    produce(&broker, &t, "c", 1);
    assert_eq!(next(&mut source, 1), ["c0"]);
    assert_eq!(source.restarted(), 1);
}

#[test]
fn a_topic_written_again_with_more_records_than_the_kept_offset_is_told_by_its_record_before() {
    let broker = Broker::start();
    let t = topic("more");
    let kept = read_up_to(&broker, &t, 10, 4);
    written_again(&broker, &t, 12);

    let error = KafkaSource::new(start_at(&broker, &t, &kept, OnMismatch::Refuse)).unwrap_err();
    let KafkaError::OffsetMismatch {
        offset: 4,
        mismatch,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    match **mismatch {
        Mismatch::OtherRecord {
            kept: mark,
            found: Some(found),
        } if mark.offset == 3 && found.offset == 3 && found != mark => {}
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("is not the one the offset was taken on"),
        "{error}"
    );

    // The same through seek (a resume on a source opened at the start).
    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
    assert!(matches!(
        source.seek(&kept),
        Err(KafkaError::OffsetMismatch { .. })
    ));

    let mut source =
        KafkaSource::new(start_at(&broker, &t, &kept, OnMismatch::Earliest)).expect("a source");
    let got = next(&mut source, 12);
    assert_eq!(got.len(), 12, "{got:?}");
    assert_eq!(got[0], "b0");

    // The topic as it was: the kept offset fits, and reading goes on
    // from it (through seek too).
    let u = topic("same");
    let kept = read_up_to(&broker, &u, 10, 4);
    let mut source =
        KafkaSource::new(start_at(&broker, &u, &kept, OnMismatch::Refuse)).expect("fits");
    assert_eq!(next(&mut source, 6)[0], "a4");
    source.seek(&kept).expect("fits");
    assert_eq!(next(&mut source, 6)[0], "a4");
    assert_eq!(source.restarted(), 0);
}

#[test]
fn a_position_of_before_the_marks_still_resumes_said_once_and_its_range_is_checked() {
    let broker = Broker::start();
    let t = topic("unmarked");
    let kept = read_up_to(&broker, &t, 10, 4);
    // The bytes of a checkpoint of a build before the marks: offsets
    // alone (postcard of a struct of one map).
    #[derive(serde::Serialize)]
    struct Old<'a> {
        offsets: &'a std::collections::BTreeMap<String, std::collections::BTreeMap<i32, i64>>,
    }
    let old = Position::Bytes(
        postcard::to_allocvec(&Old {
            offsets: &kept.offsets,
        })
        .unwrap(),
    );
    assert_ne!(old, encode_position(&kept));

    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
    let notices = said(&mut source);
    Source::seek(&mut source, &old).expect("resumes");
    assert_eq!(next(&mut source, 6)[0], "a4");
    {
        let notices = &notices.lock().unwrap().0;
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].level(), Level::Info);
        assert!(
            notices[0].to_string().contains("older cepheid"),
            "{notices:?}"
        );
    }

    // Written again with fewer records: without a mark the range still
    // tells.
    written_again(&broker, &t, 2);
    let mut source =
        KafkaSource::new(SourceConfig::new(broker.bootstrap(), &[&t])).expect("a source");
    let error = Source::seek(&mut source, &old).unwrap_err();
    assert!(
        error.to_string().contains("ends at offset 2 now"),
        "{error}"
    );
}

#[test]
fn a_rules_topic_written_again_with_fewer_records_than_its_kept_offset_is_refused_or_read_again() {
    let broker = Broker::start();
    let events = topic("rules-events");
    let rules = topic("rules-rules");
    broker.create_topic(&events, 1);
    broker.create_topic(&rules, 1);
    let rule = |i: usize| {
        (
            format!("r{i}"),
            format!(r#"{{"$rules": "pattern p{i} {{}}"}}"#),
        )
    };
    for i in 0..5 {
        let (k, v) = rule(i);
        broker.produce(&rules, 0, &[(&k, &v)]);
    }
    let mut config = SourceConfig::new(broker.bootstrap(), &[&events]);
    config.rules_topic = Some(rules.clone());
    let mut source = KafkaSource::new(config.clone()).expect("a source");
    let mut read = Vec::new();
    source.read_rules(&mut read).expect("reads the rules topic");
    assert_eq!(read.len(), 5);
    let kept = source.position();
    assert_eq!(kept.get(&rules, 0), Some(5));
    drop(source);

    broker.delete_topic(&rules);
    broker.create_topic(&rules, 1);
    for i in 10..12 {
        let (k, v) = rule(i);
        broker.produce(&rules, 0, &[(&k, &v)]);
    }
    config.start = StartAt::Position(kept.clone());
    match KafkaSource::new(config.clone()) {
        Err(KafkaError::OffsetMismatch {
            topic,
            offset: 5,
            mismatch,
            ..
        }) if topic == rules && *mismatch == Mismatch::BeyondEnd { end: 2 } => {}
        other => panic!("{other:?}"),
    }
    // earliest: the rules topic read again from its first record.
    config.on_mismatch = OnMismatch::Earliest;
    let mut source = KafkaSource::new(config).expect("a source");
    let mut read = Vec::new();
    source.read_rules(&mut read).expect("reads the rules topic");
    assert_eq!(values(&read), [rule(10).1, rule(11).1]);
    assert_eq!(source.restarted(), 1);
}
