//! `Engine::state_bytes`: an estimate of the state held that follows what
//! the engine really holds: events waiting for the watermark and events
//! taken by partial matches, with their text, and the keys' slots; it
//! falls back when they go.

use cepheid_engine::{Engine, Output, Record, Rules};

const RULES: &str = r#"
pattern pair {
    partition by k
    within 1h
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

/// An `a` event of key `k` at `ts` whose text is padded to about `pad`
/// bytes.
fn a(ts: i64, k: u32, pad: usize) -> String {
    format!(
        r#"{{"ts":{ts},"type":"a","k":{k},"pad":"{}"}}"#,
        "x".repeat(pad)
    )
}

#[test]
fn state_bytes_follow_the_events_held_and_their_text() {
    let rules = Rules::parse("pair.cep", RULES).unwrap();
    let mut engine: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_secs(1_000));
    engine.add(&rules).unwrap();
    let mut out: Vec<Output<Record>> = Vec::new();
    let empty = engine.state_bytes();

    // 1,000 events of 1,000 keys, each about 1 KiB of text, all waiting
    // for the watermark (the delay is larger than their spread).
    const N: usize = 1_000;
    const PAD: usize = 1_000;
    for i in 0..N {
        engine
            .push_json(&a(i as i64, i as u32, PAD), "ts", &mut out)
            .unwrap();
    }
    assert_eq!(engine.waiting_events(), N);
    let waiting = engine.state_bytes();
    // Their text is held: at least N * PAD more; and not wildly more than
    // the text plus a few hundred bytes per event for the record and the
    // queue.
    assert!(waiting >= empty + (N * PAD) as u64, "{waiting} vs {empty}");
    assert!(waiting <= empty + (N * (PAD + 600)) as u64, "{waiting}");

    // The watermark passes them: each starts a partial match of its key,
    // which holds its event, and each key has a slot.
    engine
        .push_json(&a(2_000_000, 0, 0), "ts", &mut out)
        .unwrap();
    assert_eq!(engine.waiting_events(), 1);
    assert_eq!(engine.live_runs(), N);
    assert_eq!(engine.stored_events(), N);
    let held = engine.state_bytes();
    assert!(held >= empty + (N * PAD) as u64, "{held}");
    // (a key's slot, its partition, a run, a node, the stored event:
    // more than the waiting event alone, below 2 KiB per key beyond
    // the text)
    assert!(held > waiting, "{held} vs {waiting}");
    assert!(held <= empty + (N * (PAD + 2_048)) as u64, "{held}");

    // Every window closes: the partial matches and their events go, and
    // the estimate falls back below the text they held.
    engine.watermark(i64::MAX, &mut out);
    assert_eq!(engine.live_runs(), 0);
    assert_eq!(engine.stored_events(), 0);
    let after = engine.state_bytes();
    assert!(after < held - (N * PAD) as u64, "{after} vs {held}");
}
