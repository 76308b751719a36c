//! The engine reproduces the reference counts (hand-written baselines, the
//! `loop` closed form) on every workload, on small streams so the default
//! test run stays fast; the bench command checks the full-size table.

use cepheid_bench::drive::{engine_counts, jsonl_counts};
use cepheid_bench::{reference, write_jsonl, Params, Workload};

/// Asserts engine and reference agree on the stream of `params`.
fn assert_agree(workload: Workload, params: Params) {
    let events: Vec<_> = workload.events(&params).collect();
    let expected = reference::counts(workload, &events);
    let engine = engine_counts(workload, &events).expect("the workload's patterns compile");
    assert_eq!(engine, expected, "{workload:?} {params:?}");
    assert!(
        expected.matches > 0 && expected.timeouts > 0,
        "a stream that exercises the rule"
    );
}

/// A small stream: `events` events over `keys` keys, default step and seed.
fn small(workload: Workload, events: u64, keys: u64, seed: u64) -> Params {
    Params {
        events,
        keys,
        seed,
        ..workload.default_params()
    }
}

#[test]
fn ab_agrees() {
    assert_agree(Workload::Ab, small(Workload::Ab, 30_000, 1_000, 42));
    assert_agree(Workload::Ab, small(Workload::Ab, 30_000, 20_000, 42));
}

#[test]
fn login_agrees() {
    assert_agree(Workload::Login, small(Workload::Login, 30_000, 1_000, 42));
}

#[test]
fn unpaid_agrees() {
    // 100 open orders, 100 ms apart: follow-ups 20 s after their create,
    // and the 15-minute windows of unpaid orders expire during the stream.
    let params = Params {
        step_ms: 100,
        ..small(Workload::Unpaid, 20_000, 100, 42)
    };
    assert_agree(Workload::Unpaid, params);
}

#[test]
fn loop_agrees() {
    assert_agree(Workload::Loop, small(Workload::Loop, 20_000, 1_000, 42));
}

#[test]
fn many_agrees() {
    let many = Workload::many(cepheid_bench::MANY_RULES);
    assert_agree(many, small(many, 5_000, 500, 42));
    // More rules: the variants agree with their baselines too.
    let more = Workload::many(45);
    assert_agree(more, small(more, 5_000, 500, 42));
}

#[test]
fn other_seeds_agree() {
    for seed in 1..=3 {
        for workload in [Workload::Ab, Workload::Login, Workload::Loop] {
            assert_agree(workload, small(workload, 3_000, 200, seed));
        }
    }
}

#[test]
fn json_lines_agree() {
    for workload in [Workload::Ab, Workload::Login] {
        let params = small(workload, 10_000, 500, 42);
        let events: Vec<_> = workload.events(&params).collect();
        let mut text = Vec::new();
        write_jsonl(events.iter().copied(), &mut text).unwrap();
        let counts = jsonl_counts(workload, &text).expect("the stream decodes");
        assert_eq!(counts, reference::counts(workload, &events), "{workload:?}");
    }
}
