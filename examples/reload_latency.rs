//! Reload latency and memory of dynamic rules (issue 14,
//! `docs/dynamic-rules.md`): the `patterns/` library in an engine holding
//! 100,000 live partial matches, then one `Engine::set_rules` call, timed,
//! with the engine's heap bytes before and after it.
//!
//! ```sh
//! CARGO_INCREMENTAL=0 cargo run --release --example reload_latency [-- KEYS REPEATS]
//! ```
//!
//! The events: per key `k` (10,000 keys by default), nine events, each of
//! which starts a partial match of one pattern and completes none:
//! a login from a new IP (`account_takeover`), a filled trade
//! (`active_trader`), a failed login (`brute_force_login` and
//! `brute_force_success`: two runs), a charge under 5.00 (`card_testing`),
//! a coupon claim (`coupon_abuse`), a declined payment
//! (`payment_retry_storm`), a price tick (`price_v_shape`), a sensor
//! reading (`sensor_overheating`) and an order created (`unpaid_order`):
//! ten runs per key, each pattern on its own keys, all within 30 seconds
//! of event time (inside every window), then a watermark at 30 s. The calls measured, each on a
//! freshly built engine, `REPEATS` times (7 by default):
//!
//! - `unchanged`: the same library again;
//! - `drain`, `restart`: `unpaid_order` with another window (16m), the
//!   other patterns unchanged, under each policy;
//! - `removed`: the library without `unpaid_order`;
//! - `all removed`: an empty rule set.
//!
//! Heap bytes are counted by a global allocator that wraps the system's
//! (live bytes: allocated minus freed); RSS is read from
//! `/proc/self/status` where there is one (report only: the allocator
//! keeps freed pages).

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Engine, MatchRef, Record, Rules, Sink, Timestamp};

/// The system allocator, counting the bytes it holds live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only the counter is
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The process's resident set size in kB, where `/proc` has it.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts what the engine reports.
#[derive(Default)]
struct Count(u64);

impl Sink<Record> for Count {
    fn on_match(&mut self, _: &MatchRef<'_, Record>) {
        self.0 += 1;
    }
    fn on_timeout(&mut self, _: &MatchRef<'_, Record>, _: Timestamp) {
        self.0 += 1;
    }
}

/// The nine events of key `k`, as JSON lines (see the module comment).
fn key_events(k: usize) -> [String; 9] {
    [
        format!(r#"{{"type":"login","success":true,"account_id":"a{k}","ip":"10.0.0.1"}}"#),
        format!(
            r#"{{"type":"trade","status":"filled","quantity":1,"notional":10.5,"symbol":"X","user_id":"t{k}"}}"#
        ),
        format!(r#"{{"type":"login","success":false,"user_id":"u{k}","ip":"10.0.0.2"}}"#),
        format!(r#"{{"type":"charge","amount":1.25,"merchant_id":"m1","card_id":"c{k}"}}"#),
        format!(r#"{{"type":"coupon_claim","user_id":"x","coupon_id":"c1","device_id":"d{k}"}}"#),
        format!(r#"{{"type":"payment","status":"declined","reason":"funds","order_id":"p{k}"}}"#),
        format!(r#"{{"type":"price","price":100.0,"symbol":"s{k}"}}"#),
        format!(r#"{{"type":"sensor","temperature":20.0,"sensor_id":"z{k}"}}"#),
        format!(r#"{{"type":"order_created","user_id":"x","amount":5,"order_id":"o{k}"}}"#),
    ]
}

/// Every key's events, with their times: ascending, within 30 seconds.
fn lines(keys: usize) -> Vec<(Timestamp, String)> {
    let all: Vec<String> = (0..keys).flat_map(key_events).collect();
    let n = all.len() as i64;
    all.into_iter()
        .enumerate()
        .map(|(i, line)| (i as i64 * 30_000 / n, line))
        .collect()
}

/// An engine with `rules` that has taken `lines`.
fn build(rules: &Rules, lines: &[(Timestamp, String)]) -> Result<Engine<Record>, Box<dyn Error>> {
    let mut engine: Engine<Record> = Engine::new();
    engine.add(rules)?;
    let mut decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).without_time();
    let mut sink = Count::default();
    for (ts, line) in lines {
        if let Item::Event(_, record) = decoder.decode(line.as_bytes())? {
            engine.push(*ts, record, &mut sink);
        }
    }
    // (the events of the last time wait for the watermark to pass it)
    engine.watermark(30_000, &mut sink);
    Ok(engine)
}

/// The `.cep` files of `dir`, sorted by name, as (file name, text).
fn library(dir: &Path) -> Result<Vec<(String, String)>, Box<dyn Error>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cep") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            files.push((name, std::fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

struct Case {
    name: &'static str,
    rules: Rules,
    policy: ReloadPolicy,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let keys: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let repeats: usize = args.next().map_or(Ok(7), |a| a.parse())?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
    let files = library(&dir)?;
    let joined = |f: &dyn Fn(&str, &str) -> Option<String>| -> String {
        files
            .iter()
            .filter_map(|(name, text)| f(name, text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let changed = joined(&|name, text| {
        Some(if name == "unpaid_orders.cep" {
            text.replace("within 15m", "within 16m")
        } else {
            text.to_string()
        })
    });
    let without = joined(&|name, text| (name != "unpaid_orders.cep").then(|| text.to_string()));
    let cases = [
        Case {
            name: "unchanged",
            rules: Rules::load(&dir)?,
            policy: ReloadPolicy::Drain,
        },
        Case {
            name: "drain",
            rules: Rules::parse("patterns", &changed)?,
            policy: ReloadPolicy::Drain,
        },
        Case {
            name: "restart",
            rules: Rules::parse("patterns", &changed)?,
            policy: ReloadPolicy::Restart,
        },
        Case {
            name: "removed",
            rules: Rules::parse("patterns", &without)?,
            policy: ReloadPolicy::Drain,
        },
        Case {
            name: "all removed",
            rules: Rules::default(),
            policy: ReloadPolicy::Drain,
        },
    ];
    let library = Rules::load(&dir)?;
    let lines = lines(keys);

    let base = heap();
    let empty = build(&Rules::default(), &[])?;
    let empty_bytes = heap() - base;
    drop(empty);
    let probe = build(&library, &lines)?;
    println!(
        "{} patterns, {} keys, {} events: {} live partial matches, {} stored events, {} live (key, pattern) partitions",
        library.len(),
        keys,
        lines.len(),
        probe.live_runs(),
        probe.stored_events(),
        probe.live_keys(),
    );
    drop(probe);
    println!("an engine without patterns: {empty_bytes} heap bytes; {repeats} repeats per case\n");
    println!(
        "{:<12} {:>10} {:>10} {:>14} {:>14} {:>12} {:>12} {:>10} {:>10}",
        "case",
        "median",
        "max",
        "heap before",
        "heap after",
        "runs after",
        "stored after",
        "RSS before",
        "RSS after"
    );
    for case in &cases {
        let mut times = Vec::with_capacity(repeats);
        let mut last = (0, 0, 0, 0, None, None);
        for _ in 0..repeats {
            let base = heap();
            let mut engine = build(&library, &lines)?;
            let before = heap() - base;
            let rss_before = rss_kb();
            let mut sink = Count::default();
            let start = Instant::now();
            let changes = engine.set_rules(&case.rules, case.policy, &mut sink)?;
            let took = start.elapsed();
            let after = heap() - base;
            let rss_after = rss_kb();
            times.push(took);
            last = (
                before,
                after,
                engine.live_runs(),
                engine.stored_events(),
                rss_before,
                rss_after,
            );
            drop(changes);
            drop(engine);
        }
        times.sort();
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
        let kb = |r: Option<u64>| r.map_or("-".into(), |r| format!("{} MB", r / 1024));
        println!(
            "{:<12} {:>10} {:>10} {:>14} {:>14} {:>12} {:>12} {:>10} {:>10}",
            case.name,
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            last.0,
            last.1,
            last.2,
            last.3,
            kb(last.4),
            kb(last.5),
        );
    }
    Ok(())
}
