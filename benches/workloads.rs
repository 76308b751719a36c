//! Criterion benches of the workloads of `bench-workloads.md`, events
//! already in memory: per workload the engine and, where one exists, the
//! hand-written baseline, in the same run. At the end the engine / baseline
//! time ratios are printed from criterion's estimates.
//!
//! `cargo bench --bench workloads` (or `-- ab` for one workload).

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};

use cepheid::workload::drive::engine_counts;
use cepheid::workload::{baseline, BenchEvent, Workload};

/// The benchmark group of one workload at its default size.
fn bench_workload(c: &mut Criterion, workload: Workload) {
    let params = workload.default_params();
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

/// Few, flat samples: one iteration processes a whole stream.
fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, events: u64) {
    group.throughput(Throughput::Elements(events));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
}

/// Mean time of one criterion benchmark, in nanoseconds, from its estimates.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = Path::new(&target)
        .join("criterion")
        .join(group)
        .join(function)
        .join("new/estimates.json");
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
    c.final_summary();
    print_ratios();
}
