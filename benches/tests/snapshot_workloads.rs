//! Engine snapshots over the five benchmark workloads (`docs/snapshot.md`):
//! an engine cut at random points of a workload's stream, snapshotted and
//! restored into a fresh engine, produces exactly the outputs and stats of
//! the uninterrupted engine, and a restored engine snapshots to the same
//! bytes. Small streams, so the default test run stays fast.

use cepheid_bench::drive::engine_for;
use cepheid_bench::{mix, BenchEvent, Params, Workload};
use cepheid_engine::engine::Output;
use cepheid_engine::{Engine, Timestamp};

fn run(engine: &mut Engine<BenchEvent>, events: &[BenchEvent], out: &mut Vec<Output<BenchEvent>>) {
    for e in events {
        engine.push(e.ts, *e, out);
    }
}

fn snapshot(engine: &Engine<BenchEvent>) -> Vec<u8> {
    let mut bytes = Vec::new();
    engine.snapshot(&mut bytes).unwrap();
    bytes
}

fn check(workload: Workload, params: Params, seed: u64) {
    let events: Vec<BenchEvent> = workload.events(&params).collect();
    let mut whole = engine_for::<BenchEvent>(workload).unwrap();
    let mut expected = Vec::new();
    run(&mut whole, &events, &mut expected);
    whole.watermark(Timestamp::MAX, &mut expected);
    assert!(!expected.is_empty());

    let mut cuts: Vec<usize> = (0..3)
        .map(|i| (mix(seed * 7 + i) % (events.len() as u64 + 1)) as usize)
        .collect();
    cuts.sort_unstable();
    let mut engine = engine_for::<BenchEvent>(workload).unwrap();
    let mut got = Vec::new();
    let mut at = 0;
    for cut in cuts {
        run(&mut engine, &events[at..cut], &mut got);
        at = cut;
        let bytes = snapshot(&engine);
        let mut next = engine_for::<BenchEvent>(workload).unwrap();
        next.restore(&bytes[..]).unwrap();
        assert_eq!(
            snapshot(&next),
            bytes,
            "{workload:?}: snapshot again at {cut}"
        );
        engine = next;
    }
    run(&mut engine, &events[at..], &mut got);
    engine.watermark(Timestamp::MAX, &mut got);
    assert_eq!(got.len(), expected.len(), "{workload:?}");
    assert!(got == expected, "{workload:?}: outputs differ");
    assert_eq!(engine.stats(), whole.stats());
}

fn small(workload: Workload, events: u64, keys: u64) -> Params {
    Params {
        events,
        keys,
        ..workload.default_params()
    }
}

#[test]
fn every_workload_resumes_exactly_from_a_snapshot() {
    for seed in 0..3 {
        check(Workload::Ab, small(Workload::Ab, 6_000, 300), seed);
        check(Workload::Login, small(Workload::Login, 6_000, 300), seed);
        let unpaid = Params {
            step_ms: 100,
            ..small(Workload::Unpaid, 6_000, 100)
        };
        check(Workload::Unpaid, unpaid, seed);
        check(Workload::Loop, small(Workload::Loop, 3_000, 100), seed);
        let many = Workload::many(cepheid_bench::MANY_RULES);
        check(many, small(many, 3_000, 300), seed);
    }
}
