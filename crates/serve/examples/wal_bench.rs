//! The log's costs on this machine's disk (opt-in, never in `cargo test`):
//!
//! ```text
//! cargo run --release -p cepheid-serve --example wal_bench [-- DIR [SECONDS]]
//! ```
//!
//! 1. The disk's own sync latency: `fdatasync` after a 100-byte write,
//!    1,000 times (p50, p99, p99.9, max).
//! 2. A payload's JSON cost: encoding and decoding a typical decision
//!    request, per entry.
//! 3. Appends by 1, 8 and 64 concurrent submitters under each fsync
//!    policy, each submitter waiting for its completion before its next
//!    append (as an HTTP client waits for its answer), for SECONDS (2)
//!    each: entries a second, the mean and largest group, and the
//!    append-to-completion latency (p50, p99, p99.9), and the CPU time
//!    per entry of the writer thread, which also calls the completions
//!    (Linux, from `/proc`).
//! 4. Opening the log written (every frame checked): entries a second.
//!
//! DIR (the system's temporary folder by default) must be on the disk to
//! measure; the bench writes `DIR/cepheid-wal-bench-PID` and removes it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cepheid_serve::wal::{Entry, FsyncPolicy, Input, Wal, WalOptions, WalReader};
use serde_json::value::RawValue;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

fn fsync_latency(dir: &Path) {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        file.write_all(&[b'x'; 100]).unwrap();
        let t = Instant::now();
        file.sync_data().unwrap();
        times.push(t.elapsed().as_nanos() as u64);
    }
    std::fs::remove_file(&path).unwrap();
    times.sort_unstable();
    println!(
        "disk: fdatasync after a 100-byte write, 1000 times: p50 {}, p99 {}, p99.9 {}, max {}",
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        us(percentile(&times, 0.999)),
        us(*times.last().unwrap())
    );
}

fn request(i: u64) -> Entry {
    let fields = format!(
        r#"{{"card":"c{:07}","amount":{}.{:02},"currency":"EUR","merchant":"m{}","country":"FR","ip":"10.1.{}.{}","device":"d-{:08x}"}}"#,
        i % 1_000_000,
        i % 5000,
        i % 100,
        i % 977,
        i % 256,
        (i / 256) % 256,
        i.wrapping_mul(2_654_435_761) as u32
    );
    Entry::Decide(Input {
        scene: Some("payment".into()),
        event_id: format!("evt-{i:012}"),
        fields: RawValue::from_string(fields).unwrap(),
        degraded: false,
        shed_shadow: false,
        origin: None,
    })
}

fn json_cost(dir: &Path) {
    // Through the log itself: encoding happens at append, decoding when read.
    let log = dir.join("json");
    let n = 200_000u64;
    let entries: Vec<Entry> = (0..n).map(request).collect();
    // Segments of 4 MiB: opening checks the earlier ones by CRC and seq,
    // and decodes the last one whole.
    let (wal, _) = Wal::open(
        &log,
        WalOptions {
            fsync: FsyncPolicy::Never,
            segment_size: 4 << 20,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let appender = wal.appender();
    let t = Instant::now();
    let (tx, rx) = mpsc::sync_channel(1024);
    let waiter = std::thread::spawn(move || rx.iter().take(n as usize).count());
    for entry in entries {
        let tx = tx.clone();
        loop {
            let tx = tx.clone();
            match appender.append(
                entry.clone(),
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
            ) {
                Ok(()) => break,
                Err(_) => std::thread::yield_now(),
            }
        }
    }
    waiter.join().unwrap();
    let write = t.elapsed();
    let stats = wal.close().unwrap();
    let t = Instant::now();
    let mut read = 0u64;
    for e in WalReader::open(&log, 0).unwrap() {
        std::hint::black_box(e.unwrap());
        read += 1;
    }
    let read_time = t.elapsed();
    assert_eq!(read, n);
    let t = Instant::now();
    let (wal, recovered) = Wal::open(&log, WalOptions::default()).unwrap();
    let open_time = t.elapsed();
    drop(wal);
    println!(
        "payload: {} bytes a frame on average ({} entries); appended (policy never, one submitter without waiting) at {:.0} entries/s; read back at {:.0} entries/s ({:.0} ns each); opened (every frame checked) at {:.0} entries/s ({} entries in {:.1} ms)",
        stats.bytes / n,
        n,
        n as f64 / write.as_secs_f64(),
        n as f64 / read_time.as_secs_f64(),
        read_time.as_nanos() as f64 / n as f64,
        recovered.entries as f64 / open_time.as_secs_f64(),
        recovered.entries,
        open_time.as_secs_f64() * 1000.0
    );
    std::fs::remove_dir_all(&log).unwrap();
}

/// The CPU time (user + system) of this process's thread `name` so far,
/// from `/proc` (Linux; none elsewhere).
fn thread_cpu(name: &str) -> Option<Duration> {
    let tick = 100.0; // USER_HZ
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        if std::fs::read_to_string(path.join("comm")).ok()?.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let (utime, stime): (f64, f64) = (fields[11].parse().ok()?, fields[12].parse().ok()?);
        return Some(Duration::from_secs_f64((utime + stime) / tick));
    }
    None
}

fn run(dir: &Path, policy: FsyncPolicy, submitters: usize, secs: f64) {
    let log = dir.join(format!("run-{submitters}"));
    let _ = std::fs::remove_dir_all(&log);
    let (wal, _) = Wal::open(
        &log,
        WalOptions {
            fsync: policy,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|s| {
            let appender = wal.appender();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut i = s as u64;
                let (tx, rx) = mpsc::channel();
                while !stop.load(Ordering::Relaxed) {
                    let tx = tx.clone();
                    let t = Instant::now();
                    appender
                        .append(
                            request(i),
                            Box::new(move |r| tx.send(r.map(|_| t.elapsed())).unwrap()),
                        )
                        .unwrap();
                    latencies.push(rx.recv().unwrap().unwrap().as_nanos() as u64);
                    i += submitters as u64;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let cpu = thread_cpu("cepheid-wal");
    let appended_then = wal.stats().appended.max(1) as f64;
    let per_entry = |cpu: Option<Duration>| {
        cpu.map_or("?".to_string(), |cpu| {
            format!("{:.2} µs", cpu.as_secs_f64() * 1e6 / appended_then)
        })
    };
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    let stats = wal.close().unwrap();
    latencies.sort_unstable();
    println!(
        "| {:<14} | {:>3} | {:>9.0} | {:>6.1} | {:>5} | {:>10} | {:>10} | {:>10} | {:>9} |",
        format!("{policy:?}"),
        submitters,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        stats.appended as f64 / stats.groups.max(1) as f64,
        stats.largest_group,
        us(percentile(&latencies, 0.5)),
        us(percentile(&latencies, 0.99)),
        us(percentile(&latencies, 0.999)),
        per_entry(cpu),
    );
    std::fs::remove_dir_all(&log).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let secs: f64 = args.next().map_or(2.0, |s| s.parse().expect("SECONDS"));
    let dir = base.join(format!("cepheid-wal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("folder: {}", dir.display());
    fsync_latency(&dir);
    json_cost(&dir);
    println!(
        "| policy | submitters | entries/s | group (mean) | group (max) | append-to-done p50 | p99 | p99.9 | writer CPU/entry |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(10)),
        FsyncPolicy::Never,
    ] {
        for submitters in [1, 8, 64] {
            run(&dir, policy, submitters, secs);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
