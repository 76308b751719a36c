//! How time moves in a run: event time from the events (with
//! `--idle-timeout`, the engine's idle clock on a quiet input), or
//! processing time from the wall clock (`--time processing`).
//!
//! Processing time follows [`Engine::push_now`] and [`Engine::tick`]: an
//! event's time is the wall-clock millisecond (since the Unix epoch) when
//! the run takes it from the reader, never behind an earlier one, so no
//! event is late; it is processed once the clock has passed that
//! millisecond. Between events the run ticks the clock: one millisecond
//! after the last one while events wait for it, every [`TICK`] while
//! partial matches are open (so a window closes at most that long after
//! its time), and not at all while nothing is open. Clocks are passed in,
//! so the rules are tested without waiting.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cepheid_engine::engine::{Arrival, Engine, Sink};
use cepheid_engine::{Record, Timestamp, Value};

/// `Config::idle_timeout`: event time that follows the wall clock while
/// the input is quiet (the engine's rule, `cepheid_engine::engine::Idle`,
/// shared with the dataflow sources).
pub use cepheid_engine::engine::Idle;

/// How often processing time is ticked while partial matches are open.
pub const TICK: Duration = Duration::from_millis(10);
/// The wait for the next millisecond while events wait for it.
const NEXT_MS: Duration = Duration::from_millis(1);

/// The run's time.
#[derive(Debug)]
pub enum Timing {
    /// Event time: the events' time field and `$watermark` lines; with
    /// `--idle-timeout`, also the wall clock on a quiet input.
    Event(Option<Idle>),
    /// Processing time: the wall clock.
    Processing,
}

/// The wall clock in milliseconds since the Unix epoch (negative before
/// it).
pub fn wall_ms() -> Timestamp {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => ms(after),
        Err(before) => ms(before.duration()).saturating_neg(),
    }
}

impl Timing {
    /// How long to wait for input before [`tick`](Self::tick); `None`: no
    /// tick is needed, wait for input.
    pub fn wait(&self, now: Instant, engine: &Engine<Record>) -> Option<Duration> {
        match self {
            Timing::Event(idle) => idle.as_ref().map(|idle| idle.wait(now)),
            Timing::Processing if engine.waiting_events() > 0 => Some(NEXT_MS),
            Timing::Processing if engine.live_keys() > 0 => Some(TICK),
            Timing::Processing => None,
        }
    }

    /// Input arrived at `now`.
    pub fn arrived(&mut self, now: Instant) {
        if let Timing::Event(Some(idle)) = self {
            idle.arrived(now);
        }
    }

    /// No input came within the wait: moves time with the clocks (`now`
    /// for the idle clock, `wall` in milliseconds for processing time).
    pub fn tick<S: Sink<Record> + ?Sized>(
        &mut self,
        now: Instant,
        wall: Timestamp,
        engine: &mut Engine<Record>,
        sink: &mut S,
    ) {
        match self {
            Timing::Event(None) => {}
            Timing::Event(Some(idle)) => {
                if let Some(t) = idle.advance(now, engine.current_watermark()) {
                    engine.watermark(t, sink);
                }
            }
            Timing::Processing => engine.tick(wall, sink),
        }
    }

    /// Takes one event in: at its event time `ts`, or at `wall` in
    /// processing time.
    // (the run's per-event call: inlined, as LLVM stops doing on its own
    // when the session's other functions grow)
    #[inline(always)]
    pub fn push<S: Sink<Record> + ?Sized>(
        &self,
        ts: Timestamp,
        wall: impl FnOnce() -> Timestamp,
        event: Record,
        engine: &mut Engine<Record>,
        sink: &mut S,
    ) -> Arrival {
        match self {
            Timing::Event(_) => engine.push(ts, event, sink),
            Timing::Processing => engine.push_now(wall(), event, sink),
        }
    }

    /// [`Timing::push`] with the event's input position, the id of its
    /// decisions when its scene has no `id` field
    /// ([`Engine::push_positioned`], [`Engine::push_now_positioned`]).
    pub fn push_positioned<S: Sink<Record> + ?Sized>(
        &self,
        ts: Timestamp,
        wall: impl FnOnce() -> Timestamp,
        event: Record,
        position: Value,
        engine: &mut Engine<Record>,
        sink: &mut S,
    ) -> Arrival {
        match self {
            Timing::Event(_) => engine.push_positioned(ts, event, position, sink),
            Timing::Processing => engine.push_now_positioned(wall(), event, position, sink),
        }
    }

    /// Is this processing time?
    pub fn is_processing(&self) -> bool {
        matches!(self, Timing::Processing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_decode::{Decoder, Format, Item};
    use cepheid_engine::engine::Output;
    use cepheid_engine::Rules;

    fn engine() -> (Engine<Record>, Decoder) {
        let rules = Rules::parse(
            "p.cep",
            r#"pattern p {
                partition by k
                within 1s
                timeouts
                match a followed by b
                where
                    a: type == "a"
                    b: type == "b"
            }"#,
        )
        .unwrap();
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        let decoder = Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).without_time();
        (engine, decoder)
    }

    fn record(decoder: &mut Decoder, line: &str) -> Record {
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(_, r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn processing_time_ticks_only_while_something_can_happen() {
        let (mut engine, mut decoder) = engine();
        let mut timing = Timing::Processing;
        let mut out: Vec<Output<Record>> = Vec::new();
        let now = Instant::now();
        // Nothing open: no tick needed.
        assert_eq!(timing.wait(now, &engine), None);
        let a = record(&mut decoder, r#"{"type":"a","k":1}"#);
        // The event's own time field plays no part.
        timing.push(-5, || 10_000, a, &mut engine, &mut out);
        // It waits for the next millisecond.
        assert_eq!(timing.wait(now, &engine), Some(NEXT_MS));
        timing.tick(now, 10_001, &mut engine, &mut out);
        assert!(out.is_empty());
        // A partial match is open: ticks until its window closes.
        assert_eq!(timing.wait(now, &engine), Some(TICK));
        timing.tick(now, 11_000, &mut engine, &mut out);
        assert!(out.is_empty());
        timing.tick(now, 11_001, &mut engine, &mut out);
        assert!(
            matches!(
                &out[..],
                [Output::Timeout {
                    expired_at: 11_000,
                    ..
                }]
            ),
            "{out:?}"
        );
        assert_eq!(timing.wait(now, &engine), None);
    }

    #[test]
    fn event_time_ticks_only_with_an_idle_timeout() {
        let (engine, _) = engine();
        let now = Instant::now();
        assert_eq!(Timing::Event(None).wait(now, &engine), None);
        let idle = Idle::new(Duration::from_secs(2), now);
        assert_eq!(
            Timing::Event(Some(idle)).wait(now, &engine),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn the_wall_clock_is_milliseconds_since_the_epoch() {
        // 2020-01-01 .. 2200-01-01
        assert!((1_577_836_800_000..7_258_118_400_000).contains(&wall_ms()));
    }
}
