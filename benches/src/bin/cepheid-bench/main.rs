//! `cepheid-bench`: runs the workloads of `bench-workloads.md` at their
//! default sizes and prints, per workload, events per second with the events
//! in memory (engine and hand-written baseline, same process), events per
//! second through `cepheid run` from a JSON-lines file, memory, and the
//! match and timeout counts checked against the expected table. It ends
//! with the scale run: `ab` with 1,000,000 keys (`--scale-keys`). `many`
//! runs its 20 patterns, or `--rules N` of the same shapes
//! ([`cepheid_bench::many_rule`]).
//!
//! Each in-memory measurement runs in a child process of its own, so that
//! the peak resident set it reports belongs to that workload alone. The
//! `cepheid` binary is looked up next to this one (`cargo build --release
//! --workspace` builds both). The exit status is 1 when any count differs from the
//! table (or, without a table row, when engine, baseline and `cepheid run`
//! disagree).

mod alloc;
mod cli_run;
mod in_memory;
mod report;
mod risk;
mod snapshot;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;

use cepheid_bench::{Params, Workload};

use crate::in_memory::InMemory;
use crate::report::Row;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Benchmarks cepheid on the workloads of bench-workloads.md.
#[derive(Parser, Debug)]
#[command(name = "cepheid-bench", version)]
struct Args {
    /// Workloads to run: ab, login, unpaid, loop, many (default: all);
    /// `risk` (issue 60) only with `--child` (in memory) or `--write`;
    /// `risk-scene` (issue 62: `risk`'s rules in one scene that every
    /// event enters) only with `--child` or `--write` (its rules to
    /// `risk-scene.cep`, the events to `risk.jsonl`).
    workloads: Vec<String>,
    /// Timed passes per in-memory measurement; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Number of events N (default: each workload's own).
    #[arg(long)]
    events: Option<u64>,
    /// Number of keys K (default: each workload's own).
    #[arg(long)]
    keys: Option<u64>,
    /// Number of patterns of `many`: the 20 of bench-workloads.md, then
    /// variants of them (each copy's windows 1 ms longer).
    #[arg(long, default_value_t = cepheid_bench::MANY_RULES, value_parser = clap::value_parser!(u32).range(1..))]
    rules: u32,
    /// Keys of the `ab` scale run; 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    scale_keys: u64,
    /// Skips the measurements through `cepheid run`.
    #[arg(long)]
    no_cli: bool,
    /// The `cepheid` binary (default: the one next to this program).
    #[arg(long)]
    cepheid: Option<PathBuf>,
    /// Writes each workload's pattern (`NAME.cep`) and stream
    /// (`NAME.jsonl`) into this folder and exits, measuring nothing: the
    /// input of `cepheid run` by hand, under a profiler or `perf stat`.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// With `--write`: payment-sized lines (about 240 bytes: the events'
    /// fields, then a payment's; `cepheid_bench::write_payments_jsonl`).
    #[arg(long, requires = "write")]
    payments: bool,
    /// Measures engine snapshots instead (`docs/snapshot.md`): size, time
    /// to write and to restore, with each selected workload (default:
    /// unpaid) in steady state after `4 K + 1` events, at `--keys` keys
    /// (default: 1,000 and 100,000), for typed events and records.
    #[arg(long)]
    snapshot: bool,
    /// Internal: measures one workload in memory and prints it as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (&args.child, &args.write) {
        _ if args.snapshot => snapshots(&args),
        (Some(name), _) => child(&args, name),
        (None, Some(dir)) => write(&args, dir),
        (None, None) => parent(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cepheid-bench: {message}");
            ExitCode::from(2)
        }
    }
}

/// The workload called `name` (`many` with `--rules` patterns), or an
/// error listing the names.
fn workload_named(args: &Args, name: &str) -> Result<Workload, String> {
    match Workload::from_name(name) {
        Some(Workload::Many { .. }) => Ok(Workload::many(args.rules)),
        Some(workload) => Ok(workload),
        None => Err(format!(
            "unknown workload `{name}` (ab, login, unpaid, loop, many)"
        )),
    }
}

/// The workload's default parameters with the command line's overrides.
fn params_for(args: &Args, workload: Workload) -> Params {
    let defaults = workload.default_params();
    Params {
        events: args.events.unwrap_or(defaults.events),
        keys: args.keys.unwrap_or(defaults.keys),
        ..defaults
    }
}

/// Child mode: one in-memory measurement, printed as one JSON line.
/// `risk` (payments, its own counts) exits 1 when its counts differ from
/// the table's or the hand-written windows'.
fn child(args: &Args, name: &str) -> Result<ExitCode, String> {
    if name == "risk" || name == "risk-scene" {
        let n = args.events.unwrap_or(1_000_000);
        let figures = risk::measure(n, args.passes, name == "risk-scene")?;
        let line = serde_json::to_string(&figures).map_err(|e| e.to_string())?;
        println!("{line}");
        let agree = figures.engine == figures.reference
            && figures.expected.map_or(true, |e| e == figures.engine);
        return Ok(if agree {
            ExitCode::SUCCESS
        } else {
            eprintln!("cepheid-bench: {name}: COUNT MISMATCH");
            ExitCode::FAILURE
        });
    }
    let workload = workload_named(args, name)?;
    let figures = in_memory::measure(workload, &params_for(args, workload), args.passes)?;
    let line = serde_json::to_string(&figures).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// Snapshot mode: see [`Args::snapshot`].
fn snapshots(args: &Args) -> Result<ExitCode, String> {
    let names: Vec<&str> = if args.workloads.is_empty() {
        vec!["unpaid"]
    } else {
        selected(args)
    };
    let keys = args.keys.map_or(vec![1_000, 100_000], |k| vec![k]);
    println!("{}", snapshot::header());
    for name in names {
        let workload = workload_named(args, name)?;
        for &k in &keys {
            let params = snapshot::params(workload, k, args.events);
            snapshot::measure(workload, &params, args.passes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Write mode: each workload's pattern and stream as files in `dir`.
fn write(args: &Args, dir: &std::path::Path) -> Result<ExitCode, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in selected(args) {
        if name == "risk" || name == "risk-scene" {
            let n = args.events.unwrap_or(1_000_000);
            let (pattern, events) = (dir.join(format!("{name}.cep")), dir.join("risk.jsonl"));
            let rules = match name {
                "risk" => cepheid_bench::risk::RULES.to_string(),
                _ => format!(
                    "{}{}",
                    cepheid_bench::risk::RULES,
                    cepheid_bench::risk::SCENE
                ),
            };
            std::fs::write(&pattern, rules).map_err(|e| format!("{}: {e}", pattern.display()))?;
            let file =
                std::fs::File::create(&events).map_err(|e| format!("{}: {e}", events.display()))?;
            let stream = cepheid_bench::risk::events(n, 42, cepheid_bench::risk::STEP_MS);
            cepheid_bench::risk::write_jsonl(stream, file)
                .map_err(|e| format!("{}: {e}", events.display()))?;
            eprintln!(
                "cepheid-bench: wrote {} and {} (N={n})",
                pattern.display(),
                events.display()
            );
            continue;
        }
        let workload = workload_named(args, name)?;
        let params = params_for(args, workload);
        let pattern = dir.join(format!("{name}.cep"));
        let events = dir.join(format!("{name}.jsonl"));
        std::fs::write(&pattern, workload.pattern_text())
            .map_err(|e| format!("{}: {e}", pattern.display()))?;
        let file =
            std::fs::File::create(&events).map_err(|e| format!("{}: {e}", events.display()))?;
        let written = match args.payments {
            true => cepheid_bench::write_payments_jsonl(workload.events(&params), file),
            false => cepheid_bench::write_jsonl(workload.events(&params), file),
        };
        written.map_err(|e| format!("{}: {e}", events.display()))?;
        eprintln!(
            "cepheid-bench: wrote {} and {} (N={}, K={})",
            pattern.display(),
            events.display(),
            params.events,
            params.keys
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The workloads named on the command line, or all of them.
fn selected(args: &Args) -> Vec<&str> {
    if args.workloads.is_empty() {
        Workload::ALL.iter().map(|w| w.name()).collect()
    } else {
        args.workloads.iter().map(String::as_str).collect()
    }
}

/// Parent mode: every workload in a child process, then `cepheid run`.
fn parent(args: &Args) -> Result<ExitCode, String> {
    let names = selected(args);
    let workloads: Vec<Workload> = names
        .iter()
        .map(|n| workload_named(args, n))
        .collect::<Result<_, _>>()?;
    let cepheid = cepheid_binary(args)?;
    let dir = cli_run::TempDir::new()?;
    let mut runs: Vec<(String, Workload, Params)> = workloads
        .iter()
        .map(|&w| (w.label(), w, params_for(args, w)))
        .collect();
    if args.scale_keys > 0 && workloads.contains(&Workload::Ab) {
        let params = Params {
            keys: args.scale_keys,
            ..params_for(args, Workload::Ab)
        };
        runs.push((
            format!("ab, K={}", report::thousands(args.scale_keys)),
            Workload::Ab,
            params,
        ));
    }
    let mut rows = Vec::new();
    for (label, workload, params) in runs {
        eprintln!(
            "cepheid-bench: {label} (N={}, K={})",
            params.events, params.keys
        );
        let in_memory = spawn_child(args, workload, &params)?;
        eprintln!("  {}", report::summary(&in_memory));
        let cli = cepheid
            .as_ref()
            .map(|path| cli_run::measure(path, workload, &params, dir.path()));
        match &cli {
            Some(Ok(run)) => eprintln!(
                "  cepheid run: {:.2} s, {} / {}",
                run.secs, run.counts.matches, run.counts.timeouts
            ),
            Some(Err(e)) => eprintln!("  cepheid run failed: {e}"),
            None => {}
        }
        rows.push(Row {
            label,
            in_memory,
            cli,
        });
    }
    print!("{}", report::render(&rows));
    let all_ok = rows.iter().all(Row::counts_agree);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("cepheid-bench: COUNT MISMATCH (see the counts table)");
        ExitCode::FAILURE
    })
}

/// The `cepheid` binary to time, or `None` with `--no-cli`.
fn cepheid_binary(args: &Args) -> Result<Option<PathBuf>, String> {
    if args.no_cli {
        return Ok(None);
    }
    let path = match &args.cepheid {
        Some(path) => path.clone(),
        None => {
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            me.with_file_name(format!("cepheid{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        return Err(format!(
            "no cepheid binary at {} (build it with `cargo build --release`, pass --cepheid, or use --no-cli)",
            path.display()
        ));
    }
    Ok(Some(path))
}

/// Runs this program in child mode for one workload and reads its figures.
fn spawn_child(args: &Args, workload: Workload, params: &Params) -> Result<InMemory, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(me)
        .args(["--child", workload.name()])
        .args(["--events", &params.events.to_string()])
        .args(["--keys", &params.keys.to_string()])
        .args(["--rules", &args.rules.to_string()])
        .args(["--passes", &args.passes.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "measuring {} failed: {}",
            workload.name(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("child output: {e}"))
}
