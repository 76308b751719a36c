//! The `risk` workload of `bench-workloads.md` (issue 60): rolling
//! indicators, each read at every event by a one-stage threshold rule.
//! Its events are payments ([`RiskEvent`]: a card, a device, an amount),
//! not the other workloads' `key`/`type` events, so it has a generator,
//! rules and counts of its own: the three rules' flagged events
//! ([`RiskCounts`]), checked against the table of `bench-workloads.md`
//! ([`expected`]) and against a hand-written computation of the same
//! windows ([`reference_counts`]).
//!
//! ```
//! use cepheid_bench::risk;
//! let first = risk::events(1, 42, risk::STEP_MS).next().unwrap();
//! assert_eq!(risk::json_line(&first), r#"{"ts":0,"card":72180,"device":22180,"amount":188}"#);
//! ```

use std::collections::VecDeque;
use std::io::{self, Write};

use cepheid_core::event::Event;
use cepheid_engine::engine::{Engine, MatchRef, Sink};
use cepheid_engine::Timestamp;
use hashbrown::HashMap;

use crate::mix;

/// Event time between consecutive events (1M events span 2.8 h).
pub const STEP_MS: i64 = 10;
/// Cards of the stream.
pub const CARDS: u64 = 100_000;
/// Devices of the stream.
pub const DEVICES: u64 = 50_000;
/// The three rules' windows: 10 minutes (cards), a day (devices).
pub const CARD_WINDOW_MS: i64 = 600_000;
/// The window of `device_cards`.
pub const DEVICE_WINDOW_MS: i64 = 86_400_000;

/// One payment: its time, card, device and amount.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, cepheid_engine::Event, serde::Serialize, serde::Deserialize,
)]
pub struct RiskEvent {
    /// Event time in milliseconds.
    pub ts: Timestamp,
    /// The card (`h1 mod 100000`).
    pub card: i64,
    /// The device: the card's home device, or (5%) any device.
    pub device: i64,
    /// The amount, 1 to 500.
    pub amount: i64,
}

/// Event `g` of the stream of `seed`, `step_ms` apart.
pub fn event(seed: u64, step_ms: i64, g: u64) -> RiskEvent {
    event_of(seed, step_ms, g, CARDS, DEVICES)
}

/// Event `g` of the stream of `seed` with a population of `cards` cards
/// and `devices` devices (the formula of `bench-workloads.md` with other
/// moduli: `serve-load` draws from a million cards).
pub fn event_of(seed: u64, step_ms: i64, g: u64, cards: u64, devices: u64) -> RiskEvent {
    let (cards, devices) = (cards.max(1), devices.max(1));
    let h1 = mix(seed.wrapping_mul(31).wrapping_add(g));
    let h2 = mix(h1);
    let h3 = mix(h2);
    let u = ((h2 >> 11) as f64) * (1.0 / (1u64 << 53) as f64);
    let card = h1 % cards;
    let device = if u < 0.95 {
        card % devices
    } else {
        mix(h3) % devices
    };
    RiskEvent {
        ts: (g as i64).wrapping_mul(step_ms),
        card: card as i64,
        device: device as i64,
        amount: (1 + h3 % 500) as i64,
    }
}

/// The first `n` events of the stream, in time order.
pub fn events(n: u64, seed: u64, step_ms: i64) -> impl Iterator<Item = RiskEvent> {
    (0..n).map(move |g| event(seed, step_ms, g))
}

/// An event as a JSON line (`cepheid run`'s input).
pub fn json_line(e: &RiskEvent) -> String {
    format!(
        r#"{{"ts":{},"card":{},"device":{},"amount":{}}}"#,
        e.ts, e.card, e.device, e.amount
    )
}

/// Writes events as JSON lines.
pub fn write_jsonl<W: Write>(
    events: impl IntoIterator<Item = RiskEvent>,
    out: W,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for e in events {
        writeln!(out, "{}", json_line(&e))?;
    }
    out.flush()
}

/// The rules: three indicators, each read by a one-stage threshold rule.
pub const RULES: &str = "\
indicator cards_10m = count() group by card within 10m
indicator amount_10m = sum(amount) group by card within 10m
indicator device_cards_1d = count_distinct(card) group by device within 1d

pattern card_count {
    match e
    where e: cards_10m(card) > 4
}
pattern card_amount {
    match e
    where e: amount_10m(card) > 1000
}
pattern device_cards {
    match e
    where e: device_cards_1d(device) > 3
}
";

/// The `risk-scene` workload's scene (issue 62): the three rules of
/// [`RULES`] in one scene `payment` that every event enters, each event
/// decided by its position.
pub const SCENE: &str = "\
scene payment {
    rules card_count, card_amount, device_cards
    outcomes approve < review
    review if score >= 1
    fallback approve
    deadline 100ms
}
";

/// Events flagged by each rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RiskCounts {
    /// `count() group by card within 10m > 4`.
    pub card_count: u64,
    /// `sum(amount) group by card within 10m > 1000`.
    pub card_amount: u64,
    /// `count_distinct(card) group by device within 1d > 3`.
    pub device_cards: u64,
}

/// The counts `bench-workloads.md` expects for `n` events of seed 42, 10
/// ms apart, where its table has a row.
pub fn expected(n: u64, seed: u64, step_ms: i64) -> Option<RiskCounts> {
    if (seed, step_ms) != (42, STEP_MS) {
        return None;
    }
    match n {
        100_000 => Some(RiskCounts {
            card_count: 155,
            card_amount: 1_743,
            device_cards: 132,
        }),
        1_000_000 => Some(RiskCounts {
            card_count: 3_320,
            card_amount: 28_133,
            device_cards: 115_247,
        }),
        _ => None,
    }
}

/// An engine with the rules, for events of type `E` ([`RiskEvent`], or
/// `Record` from JSON lines).
pub fn engine_for<E: Event + 'static>() -> Result<Engine<E>, String> {
    let loaded = cepheid_engine::rules::load_str("risk.cep", RULES);
    if loaded.has_errors() {
        return Err(loaded.render());
    }
    let mut engine = Engine::new();
    for pattern in &loaded.patterns {
        engine.add(pattern).map_err(|e| e.to_string())?;
    }
    Ok(engine)
}

/// An engine with [`RULES`] and, for `risk-scene`, [`SCENE`]: the same
/// patterns, and one decision per event.
pub fn engine_with_scene_for<E: Event + 'static>() -> Result<Engine<E>, String> {
    let text = format!("{RULES}{SCENE}");
    let rules = cepheid_engine::Rules::parse("risk.cep", &text).map_err(|e| e.to_string())?;
    let mut engine = Engine::new();
    engine.add(&rules).map_err(|e| e.to_string())?;
    Ok(engine)
}

/// The rules' flagged events so far, from an engine's counts.
pub fn counts_of<E: Event + 'static>(engine: &Engine<E>) -> RiskCounts {
    let mut counts = RiskCounts::default();
    for p in engine.pattern_stats() {
        match p.name.as_str() {
            "card_count" => counts.card_count += p.matches,
            "card_amount" => counts.card_amount += p.matches,
            "device_cards" => counts.device_cards += p.matches,
            _ => {}
        }
    }
    counts
}

/// A sink that drops the matches, reading their times (so that their work
/// cannot be optimised away).
#[derive(Debug, Default)]
pub struct Discard {
    /// A sum over the matches' times.
    pub checksum: i64,
    /// The decisions seen, by outcome: approve, review.
    pub decisions: [u64; 2],
}

impl<E> Sink<E> for Discard {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        self.checksum = self.checksum.wrapping_add(m.end());
    }

    fn on_timeout(&mut self, _: &MatchRef<'_, E>, _: Timestamp) {}

    fn on_late(&mut self, _: Timestamp, _: &E) {}

    fn on_decision(&mut self, d: &cepheid_engine::Decision) {
        self.decisions[usize::from(&*d.outcome == "review")] += 1;
    }
}

/// The engine's counts over `events` (in time order).
pub fn engine_counts(events: &[RiskEvent]) -> Result<RiskCounts, String> {
    let mut engine: Engine<RiskEvent> = engine_for()?;
    let mut sink = Discard::default();
    for e in events {
        engine.push(e.ts, *e, &mut sink);
    }
    engine.watermark(Timestamp::MAX, &mut sink);
    Ok(counts_of(&engine))
}

/// The same counts computed by hand: per card a FIFO of (time, amount)
/// over `(t - 10m, t]`, per device a FIFO of (time, card) over
/// `(t - 1d, t]` with a count per card, each event counting itself.
pub fn reference_counts(events: &[RiskEvent]) -> RiskCounts {
    #[derive(Default)]
    struct Card {
        window: VecDeque<(i64, i64)>,
        amount: i64,
    }
    #[derive(Default)]
    struct Device {
        window: VecDeque<(i64, i64)>,
        per_card: HashMap<i64, u32>,
    }
    let mut cards: HashMap<i64, Card> = HashMap::new();
    let mut devices: HashMap<i64, Device> = HashMap::new();
    let mut counts = RiskCounts::default();
    for e in events {
        let c = cards.entry(e.card).or_default();
        while c
            .window
            .front()
            .is_some_and(|(t, _)| *t <= e.ts - CARD_WINDOW_MS)
        {
            let (_, amount) = c.window.pop_front().unwrap_or_default();
            c.amount -= amount;
        }
        c.window.push_back((e.ts, e.amount));
        c.amount += e.amount;
        counts.card_count += u64::from(c.window.len() > 4);
        counts.card_amount += u64::from(c.amount > 1000);
        let d = devices.entry(e.device).or_default();
        while d
            .window
            .front()
            .is_some_and(|(t, _)| *t <= e.ts - DEVICE_WINDOW_MS)
        {
            let (_, card) = d.window.pop_front().unwrap_or_default();
            if let Some(n) = d.per_card.get_mut(&card) {
                *n -= 1;
                if *n == 0 {
                    d.per_card.remove(&card);
                }
            }
        }
        d.window.push_back((e.ts, e.card));
        *d.per_card.entry(e.card).or_default() += 1;
        counts.device_cards += u64::from(d.per_card.len() > 3);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_the_documented_one() {
        let e = event(42, STEP_MS, 0);
        assert_eq!(
            json_line(&e),
            r#"{"ts":0,"card":72180,"device":22180,"amount":188}"#
        );
        assert_eq!(event(42, STEP_MS, 7).ts, 70);
    }

    #[test]
    fn devices_are_home_devices_but_for_one_in_twenty() {
        let away = events(20_000, 42, STEP_MS)
            .filter(|e| e.device != e.card % DEVICES as i64)
            .count();
        assert!((800..1_200).contains(&away), "{away}");
        assert!(events(20_000, 42, STEP_MS).all(|e| (1..=500).contains(&e.amount)));
    }
}
