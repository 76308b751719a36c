//! Criterion benches of the workloads of `bench-workloads.md`, events
//! already in memory: per workload the engine and, where one exists, the
//! hand-written baseline, in the same run; and `jsonl/ab`, JSON-lines
//! decoding plus the engine (what `cepheid run` does, minus writing
//! output). At the end the engine / baseline time ratios are printed from
//! criterion's estimates.
//!
//! `cargo bench --bench workloads` (or `-- ab` for one workload).

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};

use cepheid_bench::drive::{engine_counts, jsonl_counts};
use cepheid_bench::{baseline, write_jsonl, BenchEvent, Params, Workload};

/// Events per criterion iteration: smaller than the defaults so that ten
/// samples of every workload fit in a few minutes (`cepheid-bench` runs the
/// default sizes); `many` is the slowest by far.
fn bench_params(workload: Workload) -> Params {
    let events = match workload {
        Workload::Many { .. } => 20_000,
        _ => 200_000,
    };
    Params {
        events,
        ..workload.default_params()
    }
}

/// The benchmark group of one workload.
fn bench_workload(c: &mut Criterion, workload: Workload) {
    let params = bench_params(workload);
    let events: Vec<BenchEvent> = workload.events(&params).collect();
    let mut group = c.benchmark_group(workload.name());
    configure(&mut group, params.events);
    group.bench_function("engine", |b| {
        b.iter(|| engine_counts(workload, &events).expect("the workload compiles"))
    });
    if baseline::run(workload, &[]).is_some() {
        group.bench_function("baseline", |b| b.iter(|| baseline::run(workload, &events)));
    }
    group.finish();
}

/// JSON-lines decoding plus the engine on the `ab` stream.
fn bench_jsonl(c: &mut Criterion) {
    let workload = Workload::Ab;
    let params = bench_params(workload);
    let mut text = Vec::new();
    write_jsonl(workload.events(&params), &mut text).expect("writing to memory");
    let mut group = c.benchmark_group("jsonl");
    configure(&mut group, params.events);
    group.bench_function("ab", |b| {
        b.iter(|| jsonl_counts(workload, &text).expect("the stream decodes"))
    });
    group.finish();
}

/// Few, flat samples: one iteration processes a whole stream.
fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, events: u64) {
    group.throughput(Throughput::Elements(events));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
}

/// Mean time of one criterion benchmark, in nanoseconds, from its estimates
/// (where criterion keeps them: `$CRITERION_HOME`, else `criterion/` in the
/// target folder, the workspace's unless `$CARGO_TARGET_DIR` says otherwise).
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let home = match (
        std::env::var_os("CRITERION_HOME"),
        std::env::var_os("CARGO_TARGET_DIR"),
    ) {
        (Some(home), _) => PathBuf::from(home),
        (None, Some(target)) => Path::new(&target).join("criterion"),
        (None, None) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"),
    };
    let path = home.join(group).join(function).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

/// Prints engine / baseline for every workload that has both estimates.
fn print_ratios() {
    println!("\nengine / baseline time (mean):");
    for workload in Workload::ALL {
        let name = workload.name();
        if let (Some(engine), Some(base)) = (mean_ns(name, "engine"), mean_ns(name, "baseline")) {
            println!("  {name:<8} {:.2}", engine / base);
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    for workload in Workload::ALL {
        bench_workload(&mut c, workload);
    }
    bench_jsonl(&mut c);
    c.final_summary();
    print_ratios();
}
