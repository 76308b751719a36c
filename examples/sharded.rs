//! Using several cores: one engine per thread, each key routed to one
//! thread. Run with `cargo run --release --example sharded`.
//!
//! An `Engine<E>` is `Send` when `E` is, so it can live on a worker thread;
//! it is not shared between threads (its methods take `&mut self`). Patterns
//! partitioned by a key only ever look at events of one key, so sending all
//! events of a key to the same engine gives exactly the matches one engine
//! would give (per key, in the same order). Each thread here gets its own
//! copy of the rule (`Pattern<E>` is `Clone + Send + Sync`).
//!
//! Event time: each engine keeps its own watermark from the events it sees.
//! With a bounded delay of zero and events in time order, as here, that is
//! the same as one global watermark; with out-of-order input, broadcast
//! watermarks (`Engine::watermark`) to every shard so that quiet shards
//! still time out their partial matches.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cepheid_engine::{Engine, Event, MatchRef, Pattern, Timestamp};

#[derive(Clone, Debug, Event)]
struct Login {
    user: String,
    ok: bool,
}

const SHARDS: usize = 4;

fn shard_of(user: &str) -> usize {
    let mut h = DefaultHasher::new();
    user.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brute_force = Pattern::<Login>::begin("fail")
        .where_fn(|l| !l.ok)
        .times(3)
        .consecutive()
        .followed_by("success")
        .where_fn(|l| l.ok)
        .within(Duration::from_secs(10))
        .partition_by("user")
        .name("brute_force")
        .build()?;

    // One channel and one engine per shard.
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..SHARDS {
        let (tx, rx) = mpsc::channel::<(Timestamp, Login)>();
        let mut engine = Engine::<Login>::new();
        engine.add(&brute_force)?;
        senders.push(tx);
        workers.push(thread::spawn(move || {
            let mut alerts = Vec::new();
            let mut sink = |m: &MatchRef<'_, Login>| {
                alerts.push(format!("{} at {}", m.key()[0], m.end()));
            };
            for (ts, login) in rx {
                engine.push(ts, login, &mut sink);
            }
            engine.finish(&mut sink);
            alerts
        }));
    }

    // 1,000 users, each failing three times and then succeeding once every
    // 7th user; the others succeed at once.
    for round in 0..4i64 {
        for u in 0..1_000 {
            let attacked = u % 7 == 0;
            let ok = if attacked { round == 3 } else { round == 0 };
            if !attacked && round > 0 {
                continue;
            }
            let user = format!("user{u}");
            let ts = round * 1_000 + u;
            senders[shard_of(&user)].send((ts, Login { user, ok }))?;
        }
    }
    drop(senders);

    let mut alerts = Vec::new();
    for worker in workers {
        alerts.extend(worker.join().expect("a shard panicked"));
    }
    alerts.sort();
    println!("{} alerts, e.g. {:?}", alerts.len(), &alerts[..3]);
    assert_eq!(alerts.len(), 143, "every 7th of 1,000 users");
    Ok(())
}
