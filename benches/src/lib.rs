//! The benchmark workloads of `bench-workloads.md`: a generator that any CEP
//! engine can reproduce exactly, the pattern text of each workload, and
//! hand-written baselines ([`baseline`]) to compare the engine against.
//!
//! Event number `g` gets its key and type from two rounds of the splitmix64
//! finalizer [`mix`]: `h1 = mix(seed * 31 + g)`, `h2 = mix(h1)`,
//! `u = (h2 >> 11) * 2^-53`. Events are the compact typed [`BenchEvent`]
//! (`key`, `type`, `ts`), read by conditions through [`fields`]; the same
//! stream can be written as JSON lines for `cepheid run` with [`write_jsonl`].
//!
//! ```
//! use cepheid_bench::{Params, Workload};
//! let params = Params { events: 3, ..Workload::Ab.default_params() };
//! let events: Vec<_> = Workload::Ab.events(&params).collect();
//! assert_eq!(events.len(), 3);
//! assert_eq!(events[2].ts, 2);
//! assert!(Workload::Ab.pattern_text().contains("match a followed by b"));
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod baseline;
pub mod drive;
pub mod reference;
pub mod risk;

use std::fmt::Write as _;
use std::io::{self, Write};

use cepheid_core::event::Event;
use cepheid_engine::Timestamp;

/// The splitmix64 finalizer (64-bit wrapping arithmetic, logical shifts).
pub fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Type code of the first event kind of every workload (A, FAIL, CREATE).
pub const TYPE_A: i64 = 0;
/// Type code of the second event kind (B, OK, PAY).
pub const TYPE_B: i64 = 1;
/// Type code of the third event kind (`loop`'s C, `unpaid`'s OTHER).
pub const TYPE_C: i64 = 2;

/// One generated event: compact and `Copy`; conditions read its fields
/// `key`, `type` and `ts` through the derived [`Event`] (resolver: [`fields`]).
/// It serializes with serde (engine snapshots hold events).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    cepheid_engine::Event,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct BenchEvent {
    /// The partition key.
    pub key: i64,
    /// The type code (the `type` field of the patterns).
    #[cepheid(rename = "type")]
    pub kind: i64,
    /// Event time in milliseconds.
    pub ts: Timestamp,
}

/// The resolver for [`BenchEvent`]'s fields `key`, `type` and `ts`.
pub fn fields() -> <BenchEvent as Event>::Fields {
    Default::default()
}

/// Size and shape of a generated stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Number of events `N`.
    pub events: u64,
    /// Number of keys `K` (for `unpaid`: the number of open orders).
    pub keys: u64,
    /// Event time between consecutive events, in milliseconds.
    pub step_ms: i64,
    /// The generator seed.
    pub seed: u64,
}

/// The five workloads; `Many` runs the `login` stream against 20 patterns
/// (or more: [`Workload::many`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// `a followed by b` within 10s.
    Ab,
    /// `fail{3} consecutive` within 10s.
    Login,
    /// `create followed by pay` within 15m, one key per order.
    Unpaid,
    /// `a followed by any b+ followed by c` within 10s.
    Loop,
    /// The `login` stream against `rules` patterns of the shapes `fail{n}
    /// consecutive` and `fail{n}`: the first 20 are `bench-workloads.md`'s
    /// (n = 2..11, `within 10s`), the rest variants of them ([`many_rule`]).
    Many {
        /// How many patterns ([`MANY_RULES`] in `bench-workloads.md`).
        rules: u32,
    },
}

/// The number of patterns of `many` in `bench-workloads.md`.
pub const MANY_RULES: u32 = 20;

/// One pattern of `many`: `fail{times}` (`consecutive` or relaxed),
/// `within` `within_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManyRule {
    /// The pattern's name.
    pub name: String,
    /// The `n` of `fail{n}`.
    pub times: u32,
    /// `consecutive` or relaxed.
    pub consecutive: bool,
    /// The window, in milliseconds.
    pub within_ms: i64,
}

/// Pattern number `i` (0-based) of `many`. Rules 0..20 are the 20 of
/// `bench-workloads.md`: `fail{n} consecutive` then `fail{n}`, n = 2..11,
/// `within 10s`. Rule `i` beyond is rule `i % 20` with a window `i / 20`
/// milliseconds longer: the same shape and conditions, a different rule
/// (so nothing can merge identical patterns), and nearly the same work per
/// rule, so a run with more rules shows how cost grows with their number.
///
/// ```
/// use cepheid_bench::many_rule;
/// let r = many_rule(0);
/// assert_eq!((r.name.as_str(), r.times, r.consecutive, r.within_ms), ("consecutive_2", 2, true, 10_000));
/// let r = many_rule(59);
/// assert_eq!((r.name.as_str(), r.times, r.consecutive, r.within_ms), ("relaxed_11_2", 11, false, 10_002));
/// ```
pub fn many_rule(i: u32) -> ManyRule {
    let copy = i / 20;
    let within_20 = i % 20;
    let consecutive = within_20 < 10;
    let times = 2 + within_20 % 10;
    let kind = if consecutive {
        "consecutive"
    } else {
        "relaxed"
    };
    let name = if copy == 0 {
        format!("{kind}_{times}")
    } else {
        format!("{kind}_{times}_{copy}")
    };
    ManyRule {
        name,
        times,
        consecutive,
        within_ms: 10_000 + i64::from(copy),
    }
}

/// Match and timeout counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Complete matches emitted.
    pub matches: u64,
    /// Timed-out partial matches emitted.
    pub timeouts: u64,
}

/// The expected counts of `bench-workloads.md`: workload, N, K, step, counts.
const EXPECTED: [(Workload, u64, u64, i64, Counts); 5] = [
    (Workload::Ab, 1_000_000, 1_000, 1, counts(496_184, 4_184)),
    (Workload::Ab, 1_000_000, 100_000, 1, counts(24_725, 475_643)),
    (Workload::Login, 1_000_000, 1_000, 1, counts(124_764, 852)),
    (
        Workload::Unpaid,
        1_000_000,
        1_000,
        10,
        counts(399_322, 100_678),
    ),
    (Workload::Loop, 200_000, 1_000, 1, counts(435_615, 618_989)),
];

/// A `Counts` in a const context.
const fn counts(matches: u64, timeouts: u64) -> Counts {
    Counts { matches, timeouts }
}

impl Workload {
    /// Every workload, in the order of `bench-workloads.md`.
    pub const ALL: [Workload; 5] = [
        Workload::Ab,
        Workload::Login,
        Workload::Unpaid,
        Workload::Loop,
        Workload::Many { rules: MANY_RULES },
    ];

    /// The workload's name as written in `bench-workloads.md`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Ab => "ab",
            Workload::Login => "login",
            Workload::Unpaid => "unpaid",
            Workload::Loop => "loop",
            Workload::Many { .. } => "many",
        }
    }

    /// The workload called `name`, if any (`many` with its 20 patterns).
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// `many` with `rules` patterns (at least one).
    pub fn many(rules: u32) -> Workload {
        Workload::Many {
            rules: rules.max(1),
        }
    }

    /// The name, with the number of patterns of a `many` that does not
    /// have the table's 20 (`many, 100 rules`).
    pub fn label(self) -> String {
        match self {
            Workload::Many { rules } if rules != MANY_RULES => format!("many, {rules} rules"),
            _ => self.name().to_string(),
        }
    }

    /// The default parameters (`seed = 42`, `step_ms = 1` or 10 for
    /// `unpaid`, `K = 1000` or 10,000 for `many`, N as in the table).
    pub fn default_params(self) -> Params {
        let (events, keys, step_ms) = match self {
            Workload::Ab | Workload::Login => (1_000_000, 1_000, 1),
            Workload::Unpaid => (1_000_000, 1_000, 10),
            Workload::Loop => (200_000, 1_000, 1),
            Workload::Many { .. } => (1_000_000, 10_000, 1),
        };
        Params {
            events,
            keys,
            step_ms,
            seed: 42,
        }
    }

    /// The counts `bench-workloads.md` expects for these parameters, when
    /// its table has a row for them.
    pub fn expected(self, params: &Params) -> Option<Counts> {
        if params.seed != 42 {
            return None;
        }
        EXPECTED
            .iter()
            .find(|(w, n, k, step, _)| {
                (*w, *n, *k, *step) == (self, params.events, params.keys, params.step_ms)
            })
            .map(|row| row.4)
    }

    /// The generated stream, in time order.
    pub fn events(self, params: &Params) -> Events {
        Events {
            workload: self,
            params: *params,
            next: 0,
        }
    }

    /// Event number `g` of the stream.
    pub fn event(self, params: &Params, g: u64) -> BenchEvent {
        let h1 = mix(params.seed.wrapping_mul(31).wrapping_add(g));
        let u = ((mix(h1) >> 11) as f64) * (1.0 / (1u64 << 53) as f64);
        let ts = (g as i64).wrapping_mul(params.step_ms);
        // `keys` is at least 1 so that `mod K` is defined.
        let hashed_key = (h1 % params.keys.max(1)) as i64;
        let (key, kind) = match self {
            Workload::Ab | Workload::Login | Workload::Many { .. } => {
                (hashed_key, if u < 0.5 { TYPE_A } else { TYPE_B })
            }
            Workload::Loop => {
                let kind = if u < 0.2 {
                    TYPE_A
                } else if u < 0.8 {
                    TYPE_B
                } else {
                    TYPE_C
                };
                (hashed_key, kind)
            }
            Workload::Unpaid => unpaid_key_and_type(g, params.keys, u),
        };
        BenchEvent { key, kind, ts }
    }

    /// The pattern file of the workload, in the pattern language.
    pub fn pattern_text(self) -> String {
        match self {
            Workload::Ab => relaxed_pair("ab", "10s", "a", "b"),
            Workload::Unpaid => relaxed_pair("unpaid", "15m", "create", "pay"),
            Workload::Login => fails_within("login", 3, "consecutive", "10s"),
            Workload::Loop => LOOP_PATTERN.to_string(),
            Workload::Many { rules } => (0..rules.max(1))
                .map(|i| {
                    let rule = many_rule(i);
                    let modifier = if rule.consecutive { "consecutive" } else { "" };
                    let within = if rule.within_ms == 10_000 {
                        "10s".to_string()
                    } else {
                        format!("{}ms", rule.within_ms)
                    };
                    fails_within(&rule.name, rule.times, modifier, &within)
                })
                .collect(),
        }
    }
}

/// The `unpaid` rule: creates on even `g`, the follow-up of order
/// `(g - 1) / 2 - K` (or noise) on odd `g`.
fn unpaid_key_and_type(g: u64, keys: u64, u: f64) -> (i64, i64) {
    if g % 2 == 0 {
        return ((g / 2) as i64, TYPE_A);
    }
    let order = ((g - 1) / 2) as i64 - keys as i64;
    if order < 0 {
        (-1 - g as i64, TYPE_C)
    } else if u < 0.8 {
        (order, TYPE_B)
    } else {
        (order, TYPE_C)
    }
}

/// `first followed by second` with the type codes 0 and 1.
fn relaxed_pair(name: &str, within: &str, first: &str, second: &str) -> String {
    format!(
        "pattern {name} {{\n    partition by key\n    within {within}\n    timeouts\n    \
         match {first} followed by {second}\n    where\n        {first}: type == 0\n        \
         {second}: type == 1\n}}\n"
    )
}

/// `fail{n}` with an optional inner contiguity modifier.
fn fails_within(name: &str, n: u32, modifier: &str, within: &str) -> String {
    let mut element = format!("fail{{{n}}}");
    if !modifier.is_empty() {
        let _ = write!(element, " {modifier}");
    }
    format!(
        "pattern {name} {{\n    partition by key\n    within {within}\n    timeouts\n    \
         match {element}\n    where\n        fail: type == 0\n}}\n"
    )
}

/// The `loop` workload's pattern.
const LOOP_PATTERN: &str = "pattern loop {
    partition by key
    within 10s
    timeouts
    match a followed by any b+ followed by c
    where
        a: type == 0
        b: type == 1
        c: type == 2
}
";

/// The events of a workload, generated on the fly.
#[derive(Clone, Debug)]
pub struct Events {
    workload: Workload,
    params: Params,
    next: u64,
}

impl Iterator for Events {
    type Item = BenchEvent;

    fn next(&mut self) -> Option<BenchEvent> {
        if self.next >= self.params.events {
            return None;
        }
        let event = self.workload.event(&self.params, self.next);
        self.next += 1;
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.params.events - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Events {}

/// Writes events as JSON lines `{"key":..,"type":..,"ts":..}`, the input of
/// `cepheid run`.
pub fn write_jsonl<W: Write>(
    events: impl IntoIterator<Item = BenchEvent>,
    out: W,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for e in events {
        writeln!(
            out,
            r#"{{"key":{},"type":{},"ts":{}}}"#,
            e.key, e.kind, e.ts
        )?;
    }
    out.flush()
}

/// Writes events as payment-sized JSON lines (issue 43): each event's
/// `key`, `type` and `ts` as [`write_jsonl`] writes them, then the fields a
/// payment carries, about 240 bytes a line in all. The patterns read only
/// `key`, `type` and `ts`, so a workload's counts are the table's; the
/// other fields are there to be decoded (or skipped) as a deployment's
/// would be. Exact: for the `n`-th event (from 0) with key `k`, with
/// `h = mix(n * 31 + 7)` and `u = mix(k * 131 + 3)` ([`mix`]):
///
/// - `user`: `"u-"` and `k` in six digits; `device`: `"d-"` and the low 32
///   bits of `u` in eight hex digits (one device a user);
/// - `ip`: `10.A.B.C` from `u`'s bytes 4 to 6 (one address a user), except
///   when `h % 16 == 0`: `203.0.113.` and `h >> 8 & 0xff` (a new address);
/// - `amount`: `(h >> 16) % 500_000` cents, written with two decimals;
/// - `currency`, `channel`, `country`: [`CURRENCIES`]`[h >> 40 & 3]`,
///   [`CHANNELS`]`[h >> 42 & 3]`, [`COUNTRIES`]`[h >> 44 & 7]`;
/// - `merchant`: `"m-"` and `(h >> 48) % 5_000` in five digits;
/// - `user_agent`: [`USER_AGENTS`]`[u >> 56 & 3]`.
pub fn write_payments_jsonl<W: Write>(
    events: impl IntoIterator<Item = BenchEvent>,
    out: W,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for (n, e) in events.into_iter().enumerate() {
        let h = mix((n as u64).wrapping_mul(31).wrapping_add(7));
        let u = mix((e.key as u64).wrapping_mul(131).wrapping_add(3));
        let ip = match h % 16 {
            0 => format!("203.0.113.{}", h >> 8 & 0xff),
            _ => format!(
                "10.{}.{}.{}",
                u >> 32 & 0xff,
                u >> 40 & 0xff,
                u >> 48 & 0xff
            ),
        };
        let cents = (h >> 16) % 500_000;
        writeln!(
            out,
            r#"{{"key":{},"type":{},"ts":{},"user":"u-{:06}","ip":"{ip}","device":"d-{:08x}","amount":{}.{:02},"currency":"{}","merchant":"m-{:05}","channel":"{}","country":"{}","user_agent":"{}"}}"#,
            e.key,
            e.kind,
            e.ts,
            e.key,
            u & 0xffff_ffff,
            cents / 100,
            cents % 100,
            CURRENCIES[(h >> 40 & 3) as usize],
            (h >> 48) % 5_000,
            CHANNELS[(h >> 42 & 3) as usize],
            COUNTRIES[(h >> 44 & 7) as usize],
            USER_AGENTS[(u >> 56 & 3) as usize],
        )?;
    }
    out.flush()
}

/// The currencies of [`write_payments_jsonl`].
pub const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
/// The channels of [`write_payments_jsonl`].
pub const CHANNELS: [&str; 4] = ["web", "ios", "android", "pos"];
/// The countries of [`write_payments_jsonl`].
pub const COUNTRIES: [&str; 8] = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"];
/// The user agents of [`write_payments_jsonl`] (as browsers and apps send
/// them; most of a payment line's bytes).
pub const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0",
    "PayApp/5.12.0 (Android 13; SM-S911B) okhttp/4.12.0",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Events as (key, type, ts) triples.
    fn triples(workload: Workload, params: &Params, n: u64) -> Vec<(i64, i64, i64)> {
        let params = Params {
            events: n,
            ..*params
        };
        workload
            .events(&params)
            .map(|e| (e.key, e.kind, e.ts))
            .collect()
    }

    /// The first `events` events of `ab` as `write` writes them.
    fn ab_written(
        events: u64,
        write: impl FnOnce(Events, &mut Vec<u8>) -> io::Result<()>,
    ) -> String {
        let params = Params {
            events,
            ..Workload::Ab.default_params()
        };
        let mut out = Vec::new();
        write(Workload::Ab.events(&params), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn payment_lines_are_the_events_with_about_240_bytes_of_payment() {
        let text = ab_written(2_000, |e, out| write_payments_jsonl(e, out));
        let plain = ab_written(2_000, |e, out| write_jsonl(e, out));
        let mut new_ips = 0;
        for (line, small) in text.lines().zip(plain.lines()) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let small: serde_json::Value = serde_json::from_str(small).unwrap();
            for field in ["key", "type", "ts"] {
                assert_eq!(value[field], small[field], "{line}");
            }
            assert_eq!(value.as_object().unwrap().len(), 12, "{line}");
            assert!(value["amount"].as_f64().unwrap() < 5_000.0, "{line}");
            new_ips += usize::from(value["ip"].as_str().unwrap().starts_with("203."));
        }
        assert_eq!(text.lines().count(), 2_000);
        let mean = text.len() / 2_000;
        assert!((220..=260).contains(&mean), "{mean} bytes a line");
        // (one in 16 from a new address)
        assert!((60..=200).contains(&new_ips), "{new_ips}");
        // The first line, exactly (the generator is the contract).
        assert_eq!(text.lines().next().unwrap(), PAYMENT_0);
    }

    /// The first payment line of `ab`'s default stream (computed
    /// independently: Python, the doc's formulas).
    const PAYMENT_0: &str = r#"{"key":180,"type":0,"ts":0,"user":"u-000180","ip":"10.228.154.254","device":"d-b7699940","amount":3495.54,"currency":"USD","merchant":"m-00547","channel":"web","country":"IN","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148"}"#;

    #[test]
    fn mix_is_splitmix64() {
        // The first outputs of splitmix64 seeded with 0 and 1.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(1), 0x910A_2DEC_8902_5CC1);
        assert_eq!(mix(42 * 31), 0x215F_DB01_5BBF_AAB4);
    }

    #[test]
    fn first_events_match_the_formula() {
        // Computed independently (Python, arbitrary-precision integers):
        // g: h1 mod 1000, u = 0.0662 0.1872 0.1259 0.3531 0.9734 0.9350 0.3561 0.2193
        let keys = [180, 105, 288, 236, 168, 323, 782, 29];
        let ab_types = [0, 0, 0, 0, 1, 1, 0, 0];
        let loop_types = [0, 0, 0, 1, 2, 2, 1, 1];
        for (workload, types) in [
            (Workload::Ab, ab_types),
            (Workload::Login, ab_types),
            (Workload::many(MANY_RULES), ab_types),
            (Workload::Loop, loop_types),
        ] {
            let params = Params {
                keys: 1_000,
                ..workload.default_params()
            };
            let expected: Vec<_> = (0..8).map(|g| (keys[g], types[g], g as i64)).collect();
            assert_eq!(triples(workload, &params, 8), expected, "{workload:?}");
        }
    }

    #[test]
    fn unpaid_follows_its_rule() {
        let params = Params {
            keys: 2,
            ..Workload::Unpaid.default_params()
        };
        // Odd g: noise while (g - 1) / 2 < K, then order (g - 1) / 2 - K,
        // PAY if u < 0.8 (u of g = 5 and 7 is 0.935 and 0.2193).
        let expected = vec![
            (0, 0, 0),
            (-2, 2, 10),
            (1, 0, 20),
            (-4, 2, 30),
            (2, 0, 40),
            (0, 2, 50),
            (3, 0, 60),
            (1, 1, 70),
            (4, 0, 80),
            (2, 2, 90),
        ];
        assert_eq!(triples(Workload::Unpaid, &params, 10), expected);
    }

    #[test]
    fn defaults_and_expected_rows() {
        let ab = Workload::Ab.default_params();
        assert_eq!(
            (ab.events, ab.keys, ab.step_ms, ab.seed),
            (1_000_000, 1_000, 1, 42)
        );
        assert_eq!(Workload::Unpaid.default_params().step_ms, 10);
        assert_eq!(
            Workload::Login.expected(&Workload::Login.default_params()),
            Some(counts(124_764, 852))
        );
        let wide = Params {
            keys: 100_000,
            ..ab
        };
        assert_eq!(Workload::Ab.expected(&wide), Some(counts(24_725, 475_643)));
        assert_eq!(Workload::Ab.expected(&Params { events: 5, ..ab }), None);
        assert_eq!(
            Workload::many(MANY_RULES).expected(&Workload::many(MANY_RULES).default_params()),
            None
        );
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
    }

    #[test]
    fn events_read_through_the_resolver() {
        use cepheid_core::event::{FieldId, FieldPath, FieldResolver};

        let mut fields = fields();
        let event = BenchEvent {
            key: 7,
            kind: 1,
            ts: 99,
        };
        for (name, value) in [("key", 7), ("type", 1), ("ts", 99)] {
            let id = fields.resolve(&FieldPath::single(name)).unwrap();
            assert_eq!(event.field(id).as_int(), Some(value));
        }
        assert!(event.field(FieldId::from_index(3)).is_null());
        assert!(fields.resolve(&FieldPath::single("nope")).is_err());
    }

    #[test]
    fn jsonl_lines() {
        let text = ab_written(2, |e, out| write_jsonl(e, out));
        assert_eq!(
            text,
            "{\"key\":180,\"type\":0,\"ts\":0}\n{\"key\":105,\"type\":0,\"ts\":1}\n"
        );
    }

    #[test]
    fn many_has_twenty_patterns() {
        let text = Workload::many(MANY_RULES).pattern_text();
        assert_eq!(text.matches("pattern ").count(), 20);
        assert_eq!(text.matches("within 10s\n").count(), 20);
        assert!(text.contains("match fail{11} consecutive\n"));
        assert!(text.contains("pattern relaxed_2 {\n"));
        assert!(text.contains("match fail{2}\n"));
    }

    #[test]
    fn many_with_more_rules_extends_the_twenty() {
        let twenty = Workload::many(MANY_RULES).pattern_text();
        let hundred = Workload::many(100).pattern_text();
        assert!(hundred.starts_with(&twenty));
        assert_eq!(hundred.matches("pattern ").count(), 100);
        assert!(hundred.contains("pattern relaxed_11_4 {\n"));
        assert!(hundred.contains("within 10004ms\n"));
        assert_eq!(Workload::many(100).name(), "many");
        assert_eq!(Workload::many(100).label(), "many, 100 rules");
        assert_eq!(Workload::many(MANY_RULES).label(), "many");
        let names: std::collections::HashSet<String> =
            (0..1_000).map(|i| many_rule(i).name).collect();
        assert_eq!(names.len(), 1_000);
    }
}
