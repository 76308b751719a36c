//! The random streams and patterns of the dataflow equivalence tests
//! (`dataflow_threads.rs`, `cli_workers.rs`).

#![allow(dead_code)]

use std::path::PathBuf;

use proptest::prelude::*;

/// Patterns beside the library's: one without a key, one with two key
/// fields, and readers of rolling indicators of every kind, grouped by
/// the reader's key (in another order too), by more fields than it, or
/// read by a pattern without a key (whose whole stream is on worker 0);
/// in conditions, with a stage's field and in `select`; and readers of
/// indicators grouped by another key than theirs (`ip` under `user_id`
/// and `account_id`: their engines share them over the whole stream),
/// with the current event's field, an earlier stage's, a constant, in
/// `select` and in timeouts' records; and one grouped by their key read
/// for another key's group (a constant, another field). Every indicator
/// has a condition, and sensors meet none: a sensor is not copied to the
/// workers that share the indicators.
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

indicator user_logins_10m = count() where type == "login" group by user_id within 10m
indicator card_amount_1h = sum(amount) where type == "charge" group by card_id within 1h
indicator device_avg_price = avg(price) where type == "price" group by device_id, symbol within 30m
indicator device_ips_1d = count_distinct(ip) where type != "sensor" group by device_id within 1d
indicator account_min_quantity = min(quantity) where type == "trade" group by account_id within 20m
indicator account_max_amount = max(amount) where type != "sensor" group by account_id within 15m
indicator ip_accounts_1h = count_distinct(account_id) where type == "login" group by ip within 1h
indicator ip_user_fails_5m = count() where type == "login" and not success group by ip, user_id within 5m

pattern user_login_burst {
    partition by user_id
    match l
    where l: type == "login" and user_logins_10m(user_id) >= 3
    select logins = user_logins_10m(l.user_id)
}
pattern card_spend_then_withdrawal {
    partition by card_id
    within 30m
    timeouts
    match c followed by w
    where
        c: type == "charge" and card_amount_1h(card_id) > 400
        w: type == "withdrawal" and card_amount_1h(c.card_id) > 600
    select spent = card_amount_1h(c.card_id)
}
pattern device_prices {
    partition by device_id
    match p
    where p: type == "price" and device_avg_price(device_id, symbol) > 20 and device_ips_1d(device_id) >= 2
    select ips = device_ips_1d(p.device_id)
}
pattern account_extremes {
    partition by account_id
    within 10m
    match t followed by w
    where
        t: type == "trade" and account_min_quantity(account_id) < 0
        w: account_max_amount(account_id) > account_max_amount(t.account_id) - 1
    select highest = account_max_amount(w.account_id)
}
pattern shared_ip {
    match l
    where l: type == "login" and ip_accounts_1h(ip) >= 3
    select accounts = ip_accounts_1h(l.ip)
}
pattern ip_shared_then_withdrawal {
    partition by user_id
    within 10m
    timeouts
    match l followed by w
    where
        l: type == "login" and ip_accounts_1h(ip) >= 2
        w: type == "withdrawal" and ip_accounts_1h(l.ip) >= 2 and card_amount_1h(card_id) >= 0
    select accounts = ip_accounts_1h(l.ip) ips = device_ips_1d("d1") u1 = user_logins_10m(1)
        others = user_logins_10m(w.quantity)
}
pattern login_from_shared_ip {
    partition by account_id
    match l
    where l: type == "login" and ip_accounts_1h(ip) >= 3
    select accounts = ip_accounts_1h(l.ip)
}
pattern user_ip_fails_counted {
    partition by user_id, ip
    match f
    where f: type == "login" and ip_user_fails_5m(ip, user_id) >= 2
}

list flagged_devices for 20m
list cleared_ips
list seen_ips
list quiet_devices for 1h

pattern big_charge_flags_device {
    partition by card_id
    match c
    where c: type == "charge" and amount > 700
    then add c.device_id to flagged_devices
}
pattern login_on_flagged_device {
    partition by user_id
    match l
    where l: type == "login" and device_id in flagged_devices
}
pattern trade_clears_ip {
    partition by account_id
    match t
    where t: type == "trade" and amount > 500
    then add t.ip to cleared_ips for 10m
}
pattern failed_login_unclears_ip {
    partition by user_id
    match l
    where l: type == "login" and not success
    then remove l.ip from cleared_ips
}
pattern withdrawal_from_cleared_ip {
    partition by card_id
    match w
    where w: type == "withdrawal" and ip in cleared_ips
    select cleared = w.ip in cleared_ips
}
pattern first_withdrawal_from_ip {
    partition by user_id
    match w
    where w: type == "withdrawal" and not (ip in seen_ips)
    then add w.ip to seen_ips for 30m
}
pattern quiet_device {
    partition by device_id
    within 2m
    match p not followed by q
    where
        p: type == "price"
        q: type == "price"
    then add p.device_id to quiet_devices
}
pattern sensor_on_quiet_device {
    match s
    where s: type == "sensor" and device_id in quiet_devices
}
pattern shadow_charge_flags_device {
    partition by card_id
    shadow
    match c
    where c: type == "charge" and amount > 300
    then add c.device_id to flagged_devices for 5m
}
pattern shadow_login_unflags_device {
    partition by user_id
    shadow
    match l
    where l: type == "login" and success
    then remove l.device_id from flagged_devices
}
pattern shadow_login_on_flagged_device {
    partition by user_id
    shadow
    match l
    where l: type == "login" and device_id in flagged_devices
}
pattern shadow_first_withdrawal_from_ip {
    partition by user_id
    shadow
    match w
    where w: type == "withdrawal" and not (ip in seen_ips)
    then add w.ip to seen_ips for 10m
}
"#;

/// The patterns of `patterns/` and [`EXTRA`], as one rule set (one table
/// of lists and indicators).
pub fn patterns() -> Vec<cepheid_core::pattern::Pattern> {
    let mut text = String::new();
    for file in pattern_files() {
        text += &std::fs::read_to_string(&file).expect("reads a pattern file");
        text.push('\n');
    }
    text += EXTRA;
    let loaded = cepheid_engine::rules::load_str("patterns+extra.cep", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
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
            r#"{{"ts":{},"type":"{}"{keys},"success":{},"ip":"10.0.0.{}","amount":{},"status":"{}","quantity":{},"price":{},"temperature":{},"reason":"r{}"}}"#,
            self.ts,
            TYPES[self.kind],
            f & 1 == 0,
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
        (0usize..TYPES.len(), 0u8..64, any::<u8>(), 0u16..6_000),
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

/// [`lines`] with times in whole seconds: many events share a time, so
/// that several writes of one time, and events of the time of a write,
/// are common. One source only (rounding moves an event back by up to a
/// second, past the delay).
pub fn coarse_lines(events: &[(u32, u16, Ev)], delay: i64) -> Vec<String> {
    let coarse: Vec<(u32, u16, Ev)> = (events.iter())
        .map(|(gap, jitter, ev)| {
            let mut ev = ev.clone();
            // (a key of fewer values: writes of one value meet)
            ev.key %= 8;
            (gap / 8, *jitter, ev)
        })
        .collect();
    lines(&coarse, delay, false)
        .into_iter()
        .map(|line| {
            let Some(rest) = line.strip_prefix(r#"{"ts":"#) else {
                return line;
            };
            let end = rest.find(',').unwrap_or(rest.len());
            let ts: i64 = rest[..end].parse().expect("a time");
            format!(r#"{{"ts":{}{}"#, ts.div_euclid(1000) * 1000, &rest[end..])
        })
        .collect()
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
