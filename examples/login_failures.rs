//! Brute-force logins with the builder API over a typed Rust struct: three
//! failed logins in a row for one user within 10 seconds.
//!
//! Run with `cargo run --example login_failures`.

use std::error::Error;
use std::time::Duration;

use cepheid::engine::{Engine, Output};
use cepheid::event::{Event, FieldId, FieldPath, FieldResolver};
use cepheid::pattern::SkipStrategy;
use cepheid::{Pattern, Timestamp, ValueRef};

/// A login attempt, as an application would already have it in memory.
#[derive(Clone, Debug)]
struct Login {
    ts: Timestamp,
    user: &'static str,
    success: bool,
    ip: &'static str,
}

/// The field names conditions in the pattern language may use, by position
/// (this example's closures read the struct directly).
const FIELDS: [&str; 3] = ["user", "success", "ip"];

/// Resolves a field name to its position in `FIELDS`.
#[derive(Clone, Default)]
struct LoginFields;

impl FieldResolver for LoginFields {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, String> {
        let name = path.to_string();
        let index = FIELDS.iter().position(|f| *f == name);
        index
            .map(|i| FieldId::from_index(i as u32))
            .ok_or_else(|| format!("a login has no field `{name}`"))
    }
}

impl Event for Login {
    type Fields = LoginFields;

    fn field(&self, id: FieldId) -> ValueRef<'_> {
        match id.index() {
            0 => ValueRef::Str(self.user),
            1 => ValueRef::Bool(self.success),
            2 => ValueRef::Str(self.ip),
            _ => ValueRef::Null,
        }
    }
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
    // Typed by `Login`: the closures take `&Login` (a closure over another
    // type would not compile), and `build` returns a `cepheid::Error`.
    let pattern = Pattern::<Login>::begin("fail")
        .where_fn(|e| !e.success)
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
    engine.watermark(cepheid::Timestamp::MAX, &mut out);

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
        }
    }
    let stats = engine.stats();
    println!(
        "{} events, {} matches, {} late",
        stats.events, stats.matches, stats.late
    );
    Ok(())
}
