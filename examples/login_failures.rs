//! Brute-force logins with the builder API over a typed Rust struct: three
//! failed logins in a row for one user within 10 seconds.
//!
//! Run with `cargo run --example login_failures`.

use std::error::Error;
use std::time::Duration;

use cepheid_core::pattern::SkipStrategy;
use cepheid_engine::engine::{Engine, Output};
use cepheid_engine::{Event, Pattern, Timestamp};

/// A login attempt, as an application would already have it in memory.
/// `derive(Event)` lets conditions in the pattern language read its fields
/// by name (`success`, `ip`, `user`), borrowed, with no table kept by hand.
#[derive(Clone, Debug, Event)]
struct Login {
    ts: Timestamp,
    user: &'static str,
    success: bool,
    ip: &'static str,
}

fn logins() -> Vec<Login> {
    let login = |ts, user, success, ip| Login {
        ts,
        user,
        success,
        ip,
    };
    vec![
        login(1_000, "alice", false, "10.0.0.1"),
        login(1_500, "bob", false, "192.0.2.7"),
        login(2_000, "alice", false, "10.0.0.1"),
        login(2_400, "bob", true, "192.0.2.7"),
        login(2_900, "alice", false, "10.0.0.9"), // third failure: a match
        login(3_100, "carol", false, "198.51.100.3"),
        login(2_950, "carol", false, "198.51.100.3"), // out of order, within the delay
        login(30_000, "carol", false, "198.51.100.3"), // too late for carol's window
        login(30_500, "alice", true, "10.0.0.1"),
    ]
}

fn main() -> Result<(), Box<dyn Error>> {
    // Typed by `Login`: a condition in the pattern language reads the
    // derived fields, a closure takes `&Login` (a closure over another type
    // would not compile), and `build` returns a `cepheid_engine::Error`.
    let pattern = Pattern::<Login>::begin("fail")
        .where_expr("not success")
        .times(3)
        .consecutive()
        .within(Duration::from_secs(10))
        .partition_by_fn(|e| e.user)
        .skip(SkipStrategy::PastLastEvent)
        .name("brute_force")
        .build()?;

    let mut engine: Engine<Login> = Engine::with_max_delay(Duration::from_millis(500));
    engine.add(&pattern)?;

    let mut out = Vec::new();
    for login in logins() {
        engine.push(login.ts, login, &mut out);
    }
    engine.watermark(cepheid_engine::Timestamp::MAX, &mut out);

    for output in out {
        match output {
            Output::Match(m) => {
                let attempts: Vec<String> = m
                    .stage("fail")
                    .iter()
                    .map(|l| format!("{} from {}", l.ts, l.ip))
                    .collect();
                println!(
                    "{}: {} failed {} times: {}",
                    m.pattern,
                    m.key[0],
                    attempts.len(),
                    attempts.join(", ")
                );
            }
            Output::Timeout { partial, .. } => println!("timeout: {partial:?}"),
            Output::Late { event, .. } => println!("late: {event:?}"),
            Output::Dropped { partial } => println!("dropped at the limit: {partial:?}"),
            other => println!("{other:?}"),
        }
    }
    let stats = engine.stats();
    println!(
        "{} events, {} matches, {} late",
        stats.events, stats.matches, stats.late
    );
    Ok(())
}
