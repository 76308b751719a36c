//! Processing time in the library (`Engine::push_now`, `Engine::tick`,
//! `Decoder::without_time`) with an injected clock: events of one
//! millisecond, a clock set back, windows closing on a quiet stream.

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::Output;
use cepheid_engine::{Arrival, Engine, Record, Rules, Timestamp};

const WITHIN: &str = r#"pattern p {
    partition by k
    within 50ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

fn engine() -> (Engine<Record>, Decoder) {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&Rules::parse("p.cep", WITHIN).unwrap()).unwrap();
    let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).without_time();
    (engine, decoder)
}

fn event(decoder: &mut Decoder, kind: &str, k: u32) -> Record {
    let line = format!(r#"{{"type":"{kind}","k":{k}}}"#);
    match decoder.decode(line.as_bytes()).unwrap() {
        Item::Event(_, record) => record,
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_of_one_millisecond_are_all_on_time_and_in_arrival_order() {
    let (mut engine, mut decoder) = engine();
    let mut out: Vec<Output<Record>> = Vec::new();
    for kind in ["a", "b", "b"] {
        let e = event(&mut decoder, kind, 1);
        assert_eq!(engine.push_now(10, e, &mut out), Arrival::Accepted);
    }
    assert!(out.is_empty());
    engine.tick(11, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(&out[0], Output::Match(m) if m.start == 10 && m.end == 10));
    assert_eq!(engine.stats().late, 0);
}

#[test]
fn a_clock_set_back_never_makes_an_event_late() {
    let (mut engine, mut decoder) = engine();
    let mut out: Vec<Output<Record>> = Vec::new();
    let a = event(&mut decoder, "a", 1);
    engine.push_now(1_000, a, &mut out);
    engine.tick(1_020, &mut out);
    // The clock jumps back 500 ms: the event gets the time just past
    // the watermark instead.
    let b = event(&mut decoder, "b", 1);
    assert_eq!(engine.push_now(500, b, &mut out), Arrival::Accepted);
    engine.tick(1_021, &mut out);
    assert!(
        matches!(&out[..], [Output::Match(m)] if m.end == 1_020),
        "{out:?}"
    );
    assert_eq!(engine.stats().late, 0);
}

#[test]
fn windows_close_with_the_clock_on_a_quiet_stream() {
    let (mut engine, mut decoder) = engine();
    let mut out: Vec<Output<Record>> = Vec::new();
    let a = event(&mut decoder, "a", 7);
    engine.push_now(100, a, &mut out);
    engine.tick(150, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // The window [100, 150) closed at 150: due once time passes it.
    engine.tick(151, &mut out);
    assert!(
        matches!(
            &out[..],
            [Output::Timeout {
                expired_at: 150,
                ..
            }]
        ),
        "{out:?}"
    );
    // A tick at the start of time does nothing.
    engine.tick(Timestamp::MIN, &mut out);
    assert_eq!(out.len(), 1);
}
