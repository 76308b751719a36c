//! The random streams and patterns of the dataflow equivalence tests
//! (`dataflow_threads.rs`, `cli_workers.rs`).

#![allow(dead_code)]

use std::path::PathBuf;

use proptest::prelude::*;

/// Two patterns beside the library's: one without a key, one with two
/// key fields.
pub const EXTRA: &str = r#"
pattern global_login_then_withdrawal {
    within 10m
    timeouts
    match login followed by withdrawal
    where
        login:      type == "login"
        withdrawal: type == "withdrawal"
}
pattern user_ip_fails {
    partition by user_id, ip
    within 5m
    timeouts
    match fail{2} consecutive
    where fail: type == "login" and not success
}
"#;

pub fn patterns() -> Vec<cepheid_core::pattern::Pattern> {
    let mut loaded = cepheid_engine::rules::load_paths(&pattern_files());
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let extra = cepheid_engine::rules::load_str("extra.cep", EXTRA);
    assert!(!extra.has_errors(), "{}", extra.render());
    loaded.patterns.extend(extra.patterns);
    loaded.patterns
}

pub const TYPES: [&str; 12] = [
    "login",
    "password_change",
    "withdrawal",
    "trade",
    "charge",
    "coupon_claim",
    "payment",
    "order_paid",
    "order_cancelled",
    "order_created",
    "price",
    "sensor",
];

/// One event of the generator, as a JSON line.
#[derive(Clone, Debug)]
pub struct Ev {
    pub ts: i64,
    pub kind: usize,
    pub key: u8,
    pub flags: u8,
    pub amount: u16,
}

impl Ev {
    pub fn json(&self) -> String {
        let k = self.key % 6;
        let missing = self.key >= 60; // no key fields at all
        let keys = if missing {
            String::new()
        } else {
            format!(
                r#","account_id":"a{k}","user_id":{k},"card_id":"c{k}","device_id":"d{k}","order_id":"o{k}","symbol":"S{k}","sensor_id":{k}.0"#
            )
        };
        let f = self.flags;
        format!(
            r#"{{"ts":{},"type":"{}"{keys},"success":{},"is_new_ip":{},"ip":"10.0.0.{}","amount":{},"status":"{}","quantity":{},"price":{},"temperature":{},"reason":"r{}"}}"#,
            self.ts,
            TYPES[self.kind],
            f & 1 == 0,
            f & 2 == 0,
            (f >> 2) % 3,
            self.amount as f64 / 4.0,
            ["filled", "declined", "open"][(f as usize >> 4) % 3],
            i64::from(f % 5) - 1,
            self.amount % 50,
            self.amount % 40,
            f % 3,
        )
    }
}

pub fn event() -> impl Strategy<Value = (u32, u16, Ev)> {
    (
        0u32..40_000,
        any::<u16>(),
        (0usize..TYPES.len(), 0u8..64, any::<u8>(), 0u16..4_000),
    )
        .prop_map(|(gap, jitter, (kind, key, flags, amount))| {
            (
                gap,
                jitter,
                Ev {
                    ts: 0,
                    kind,
                    key,
                    flags,
                    amount,
                },
            )
        })
}

/// The stream's lines: times grow by random gaps and each event is moved
/// back by a jitter, at most `delay` (`within_delay`) or up to four times
/// it with a `$watermark` line now and then (so that some are late).
pub fn lines(events: &[(u32, u16, Ev)], delay: i64, within_delay: bool) -> Vec<String> {
    let mut base = 1_700_000_000_000i64;
    let mut out = Vec::new();
    for (i, (gap, jitter, ev)) in events.iter().enumerate() {
        base += i64::from(*gap);
        let span = if within_delay {
            delay + 1
        } else {
            4 * delay + 1
        };
        let mut ev = ev.clone();
        ev.ts = base - i64::from(*jitter) % span;
        out.push(ev.json());
        if !within_delay && i % 37 == 36 {
            out.push(format!(r#"{{"$watermark": {}}}"#, base - delay));
        }
    }
    out
}

/// The pattern files of `patterns/`, sorted.
pub fn pattern_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cepheid_testkit::path("patterns"))
        .expect("patterns folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    files
}
