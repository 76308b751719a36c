//! The hand-written baselines reproduce the expected counts of
//! `bench-workloads.md` on the full-size streams.

use cepheid_bench::{baseline, reference, Counts, Params, Workload};

/// Generates the stream and runs the workload's baseline over it.
fn baseline_counts(workload: Workload, params: &Params) -> Counts {
    let events: Vec<_> = workload.events(params).collect();
    baseline::run(workload, &events).expect("this workload has a baseline")
}

/// Asserts the baseline gives the table's row for these parameters.
fn assert_row(workload: Workload, params: Params) {
    let expected = workload.expected(&params).expect("a row of the table");
    assert_eq!(
        baseline_counts(workload, &params),
        expected,
        "{workload:?} {params:?}"
    );
}

#[test]
fn ab_matches_the_table() {
    assert_row(Workload::Ab, Workload::Ab.default_params());
}

#[test]
fn ab_with_100_000_keys_matches_the_table() {
    let params = Params {
        keys: 100_000,
        ..Workload::Ab.default_params()
    };
    assert_row(Workload::Ab, params);
}

#[test]
fn login_matches_the_table() {
    assert_row(Workload::Login, Workload::Login.default_params());
}

#[test]
fn unpaid_matches_the_table() {
    assert_row(Workload::Unpaid, Workload::Unpaid.default_params());
}

#[test]
fn loop_has_no_baseline_but_a_reference() {
    assert_eq!(baseline::run(Workload::Loop, &[]), None);
}

#[test]
fn loop_reference_matches_the_table() {
    let params = Workload::Loop.default_params();
    let events: Vec<_> = Workload::Loop.events(&params).collect();
    let expected = Workload::Loop
        .expected(&params)
        .expect("a row of the table");
    assert_eq!(
        reference::loop_counts(&events, baseline::WITHIN_10S),
        expected
    );
    assert_eq!(reference::counts(Workload::Loop, &events), expected);
}
