//! A seeded generator of realistic event streams for `cepheid run` demos:
//! orders and payments, logins, trades, card charges, password changes and
//! withdrawals, prices, sensor readings and coupon claims, in the shape the
//! rules in `patterns/` expect, as JSON lines on standard output.
//!
//! ```text
//! cargo run --release --example generate -- --seed 1 --events 100000 > big.jsonl
//! cargo run --release -- run patterns/ --events big.jsonl --max-delay 5s
//! ```
//!
//! Flags: `--seed N` (default 1), `--events N` (default 10000), `--keys N`
//! (users, cards, sensors... per kind; default 1000), `--disorder MS` (how
//! far an event may arrive behind the latest one; default 2000). The same
//! flags give the same stream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::error::Error;
use std::io::{self, BufWriter, Write};

/// 2024-05-01T00:00:00Z in milliseconds.
const EPOCH: i64 = 1_714_521_600_000;

/// splitmix64: small, fast, good enough for demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `true` with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A time span in `lo..hi` milliseconds.
    fn span(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }
}

struct Options {
    seed: u64,
    events: u64,
    keys: u64,
    disorder: i64,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        seed: 1,
        events: 10_000,
        keys: 1_000,
        disorder: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: `{value}` is not a whole number"))?;
        match flag.as_str() {
            "--seed" => options.seed = number,
            "--events" => options.events = number,
            "--keys" => options.keys = number.max(1),
            "--disorder" => options.disorder = number as i64,
            _ => {
                return Err(format!(
                    "unknown flag {flag} (use --seed, --events, --keys, --disorder)"
                ))
            }
        }
    }
    Ok(options)
}

/// Events scheduled for the future, in time order: (time, sequence, line).
type Schedule = BinaryHeap<Reverse<(i64, u64, String)>>;

struct Generator {
    rng: Rng,
    keys: u64,
    schedule: Schedule,
    sequence: u64,
    next_order: u64,
}

impl Generator {
    fn at(&mut self, ts: i64, body: String) {
        self.sequence += 1;
        let line = format!("{{\"ts\":{ts},{body}}}");
        self.schedule.push(Reverse((ts, self.sequence, line)));
    }

    fn key(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", self.rng.below(self.keys) + 1)
    }

    /// Starts one story at `now`; its events are scheduled from `now` on.
    fn story(&mut self, now: i64) {
        match self.rng.below(100) {
            0..=24 => self.order(now),
            25..=44 => self.logins(now),
            45..=54 => self.trades(now),
            55..=64 => self.charges(now),
            65..=69 => self.takeover(now),
            70..=79 => self.prices(now),
            80..=91 => self.sensor(now),
            _ => self.coupons(now),
        }
    }

    fn order(&mut self, now: i64) {
        self.next_order += 1;
        let (order, user) = (format!("o{}", self.next_order), self.key("u"));
        let amount = self.rng.span(5, 500);
        self.at(now, format!(r#""type":"order_created","order_id":"{order}","user_id":"{user}","amount":{amount}"#));
        let mut t = now + self.rng.span(10_000, 60_000);
        let declines = if self.rng.chance(0.1) {
            3 + self.rng.below(3)
        } else {
            self.rng.below(2)
        };
        for _ in 0..declines {
            let reason =
                ["insufficient_funds", "card_expired", "do_not_honor"][self.rng.below(3) as usize];
            self.at(t, format!(r#""type":"payment","order_id":"{order}","status":"declined","reason":"{reason}""#));
            t += self.rng.span(20_000, 120_000);
        }
        if declines >= 3 && self.rng.chance(0.7) {
            self.at(
                t,
                format!(r#""type":"order_cancelled","order_id":"{order}","user_id":"{user}""#),
            );
        } else if self.rng.chance(0.85) {
            let paid = t + self.rng.span(0, 20 * 60_000);
            self.at(paid, format!(r#""type":"order_paid","order_id":"{order}","user_id":"{user}","amount":{amount}"#));
        }
    }

    fn logins(&mut self, now: i64) {
        let (user, ip) = (
            self.key("u"),
            format!("203.0.113.{}", self.rng.below(254) + 1),
        );
        let failures = if self.rng.chance(0.15) {
            3 + self.rng.below(4)
        } else {
            self.rng.below(2)
        };
        let mut t = now;
        for _ in 0..failures {
            self.at(
                t,
                format!(r#""type":"login","user_id":"{user}","success":false,"ip":"{ip}""#),
            );
            t += self.rng.span(200, 3_000);
        }
        self.at(
            t,
            format!(r#""type":"login","user_id":"{user}","success":true,"ip":"{ip}""#),
        );
    }

    fn trades(&mut self, now: i64) {
        let user = self.key("u");
        let symbols = ["ACME", "GLOBX", "INITECH", "UMBR"];
        let mut t = now;
        for _ in 0..1 + self.rng.below(7) {
            let symbol = symbols[self.rng.below(4) as usize];
            let quantity = self.rng.span(1, 200);
            let price = self.rng.span(10, 400);
            let notional = quantity * price;
            let status = if self.rng.chance(0.9) {
                "filled"
            } else {
                "rejected"
            };
            self.at(t, format!(r#""type":"trade","user_id":"{user}","symbol":"{symbol}","quantity":{quantity},"price":{price},"notional":{notional},"status":"{status}""#));
            t += self.rng.span(60_000, 3 * 3_600_000);
        }
    }

    fn charges(&mut self, now: i64) {
        let card = self.key("c");
        let testing = self.rng.chance(0.2);
        let mut t = now;
        for _ in 0..if testing { 3 + self.rng.below(3) } else { 1 } {
            let amount = if testing {
                self.rng.span(1, 3)
            } else {
                self.rng.span(10, 300)
            };
            let merchant = self.rng.below(50);
            self.at(t, format!(r#""type":"charge","card_id":"{card}","amount":{amount},"merchant_id":"m{merchant}""#));
            t += self.rng.span(1_000, 60_000);
        }
        if testing {
            let amount = self.rng.span(900, 5_000);
            let merchant = self.rng.below(50);
            self.at(t, format!(r#""type":"charge","card_id":"{card}","amount":{amount},"merchant_id":"m{merchant}""#));
        }
    }

    fn takeover(&mut self, now: i64) {
        let account = self.key("a");
        let ip = format!("198.51.100.{}", self.rng.below(254) + 1);
        self.at(
            now,
            format!(r#""type":"login","account_id":"{account}","success":true,"ip":"{ip}""#),
        );
        let t = now + self.rng.span(60_000, 10 * 60_000);
        self.at(
            t,
            format!(r#""type":"password_change","account_id":"{account}","ip":"{ip}""#),
        );
        let amount = if self.rng.chance(0.6) {
            self.rng.span(2_000, 20_000)
        } else {
            self.rng.span(20, 500)
        };
        let w = t + self.rng.span(60_000, 30 * 60_000);
        self.at(
            w,
            format!(r#""type":"withdrawal","account_id":"{account}","amount":{amount}"#),
        );
    }

    fn prices(&mut self, now: i64) {
        let symbols = ["ACME", "GLOBX", "INITECH", "UMBR"];
        let symbol = symbols[self.rng.below(4) as usize];
        let mut price = 100 + self.rng.below(50) as i64;
        let v_shape = self.rng.chance(0.5);
        let mut t = now;
        for step in 0..6 {
            let delta = self.rng.span(1, 4);
            price += if v_shape && step < 3 {
                -delta
            } else if v_shape {
                delta
            } else {
                delta - 2
            };
            self.at(
                t,
                format!(r#""type":"price","symbol":"{symbol}","price":{price}"#),
            );
            t += self.rng.span(1_000, 10_000);
        }
    }

    fn sensor(&mut self, now: i64) {
        let sensor = self.key("s");
        let rising = self.rng.chance(0.3);
        let mut temperature = 60 + self.rng.below(20) as i64;
        let mut t = now;
        for _ in 0..4 {
            temperature += if rising {
                self.rng.span(2, 6)
            } else {
                self.rng.span(-3, 3)
            };
            self.at(
                t,
                format!(r#""type":"sensor","sensor_id":"{sensor}","temperature":{temperature}"#),
            );
            t += self.rng.span(2_000, 20_000);
        }
    }

    fn coupons(&mut self, now: i64) {
        let device = self.key("d");
        let abuse = self.rng.chance(0.25);
        let mut t = now;
        for _ in 0..if abuse { 5 + self.rng.below(4) } else { 1 } {
            let coupon = format!("WELCOME{}", self.rng.below(20));
            let user = self.key("u");
            self.at(t, format!(r#""type":"coupon_claim","device_id":"{device}","user_id":"{user}","coupon_id":"{coupon}""#));
            t += self.rng.span(10_000, 10 * 60_000);
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = parse_args()?;
    let mut generator = Generator {
        rng: Rng(options.seed),
        keys: options.keys,
        schedule: Schedule::new(),
        sequence: 0,
        next_order: 0,
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let mut now = EPOCH;
    let mut written = 0;
    // Events late by up to `disorder` wait here, keyed by release time.
    let mut delayed: Schedule = Schedule::new();
    while written < options.events {
        generator.story(now);
        now += generator.rng.span(50, 2_000);
        while let Some(Reverse((ts, seq, line))) = generator.schedule.peek().cloned() {
            if ts > now {
                break;
            }
            generator.schedule.pop();
            let delay = if generator.rng.chance(0.05) {
                generator.rng.span(0, options.disorder.max(1))
            } else {
                0
            };
            delayed.push(Reverse((ts + delay, seq, line)));
        }
        while let Some(Reverse((release, _, line))) = delayed.peek().cloned() {
            if release > now || written >= options.events {
                break;
            }
            delayed.pop();
            writeln!(out, "{line}")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(())
}
