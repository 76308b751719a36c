//! Tests of the engine's event-time logic with a test double: `Pairs`, a
//! tiny matcher whose behaviour is easy to state. Per key, an event opens a
//! partial match; the next event of that key completes it (a match of two
//! events); a partial match expires `window` after its start (a timeout).
//! It depends on the order of events per key and on time advancing before
//! each event, which is exactly what the engine must get right.

use proptest::prelude::*;

use super::automaton::{Automaton, EventStore, Reporter};
use super::core::Core;
use super::sink::MatchAccess;
use super::*;
use crate::event::{Event, FieldError, FieldId, FieldPath, FieldResolver};
use crate::pattern::{Pattern, Sequence, SkipStrategy};
use crate::primitives::{Span, Timestamp};
use crate::value::{Value, ValueRef};

#[derive(Clone, Debug, PartialEq)]
struct Ev {
    key: Option<i64>,
    id: u32,
}

/// One field, `key`, id 0.
#[derive(Clone, Default)]
struct KeyOnly;

impl FieldResolver for KeyOnly {
    fn resolve(&mut self, path: &FieldPath) -> Result<FieldId, FieldError> {
        match path.to_string().as_str() {
            "key" => Ok(FieldId::from_index(0)),
            _ => Err(FieldError::new(path)),
        }
    }
}

impl Event for Ev {
    type Fields = KeyOnly;

    fn field(&self, id: FieldId) -> ValueRef<'_> {
        match (id.index(), self.key) {
            (0, Some(k)) => ValueRef::Int(k),
            _ => ValueRef::Null,
        }
    }
}

#[derive(Default)]
struct Slab {
    slots: Vec<Option<(Timestamp, Ev, u32)>>,
    free: Vec<usize>,
}

impl Slab {
    fn entry(&self, r: usize) -> &(Timestamp, Ev, u32) {
        self.slots[r].as_ref().expect("live event")
    }

    fn release(&mut self, r: usize) {
        let entry = self.slots[r].as_mut().expect("live event");
        entry.2 -= 1;
        self.release_if_unused(r);
    }
}

impl EventStore<Ev> for Slab {
    type Ref = usize;

    fn insert(&mut self, ts: Timestamp, event: Ev) -> usize {
        match self.free.pop() {
            Some(r) => {
                self.slots[r] = Some((ts, event, 0));
                r
            }
            None => {
                self.slots.push(Some((ts, event, 0)));
                self.slots.len() - 1
            }
        }
    }

    fn release_if_unused(&mut self, r: usize) {
        if self.entry(r).2 == 0 {
            self.slots[r] = None;
            self.free.push(r);
        }
    }

    fn get(&self, r: usize) -> &Ev {
        &self.entry(r).1
    }

    fn live_events(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn state_bytes(&self, event_bytes: &dyn Fn(&Ev) -> usize) -> usize {
        self.slots.len() * std::mem::size_of::<Option<(Timestamp, Ev, u32)>>()
            + self
                .slots
                .iter()
                .flatten()
                .map(|(_, e, _)| event_bytes(e))
                .sum::<usize>()
    }
}

struct PairView<'s> {
    events: Vec<(Timestamp, &'s Ev)>,
}

impl MatchAccess<Ev> for PairView<'_> {
    fn start(&self) -> Timestamp {
        self.events[0].0
    }

    fn end(&self) -> Timestamp {
        self.events[self.events.len() - 1].0
    }

    fn visit_stages<'v>(
        &'v self,
        visit: &mut dyn FnMut(&'v str, &mut dyn Iterator<Item = &'v Ev>),
    ) {
        let names = ["first", "second"];
        for (name, (_, ev)) in names.iter().zip(&self.events) {
            visit(name, &mut std::iter::once(*ev));
        }
    }

    fn select(&self) -> Vec<(String, Value)> {
        Vec::new()
    }
}

struct Pairs {
    pattern: Pattern,
    window: Timestamp,
    /// Its start guard: one condition, by its shared number (`None`: no
    /// guard known).
    guard: Option<u32>,
}

thread_local! {
    /// Calls of [`Pairs`]' `start_guard` on this thread: the work of
    /// keeping the engine's guards.
    static GUARD_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Pairs {
    fn new(window: Timestamp) -> Pairs {
        let pattern = Pattern {
            name: "pairs".into(),
            doc: None,
            partition_by: vec![FieldPath::single("key")],
            partition_by_fn: None,
            within: Some(window),
            skip: SkipStrategy::NoSkip,
            emit_timeouts: true,
            stages: Vec::new(),
            sequence: Sequence::default(),
            select: Vec::new(),
            attributes: Default::default(),
            shadow: false,
            writes: Vec::new(),
            reads: Vec::new(),
            declarations: None,
            span: Span::default(),
        };
        Pairs {
            pattern,
            window,
            guard: None,
        }
    }
}

impl Automaton<Ev> for Pairs {
    /// The open partial match: start time, its event, its deadline.
    type Partition = Option<(Timestamp, usize, Timestamp)>;
    type Store = Slab;
    type Cache = ();
    type View<'s> = PairView<'s>;

    fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    fn start_guard(&self) -> Option<Vec<(u32, u32)>> {
        GUARD_CALLS.with(|calls| calls.set(calls.get() + 1));
        self.guard.map(|shared| vec![(shared, 0)])
    }

    fn advance_time<R: Reporter<Ev, Self> + ?Sized, L: crate::lookup::LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Slab,
        _: &mut (),
        _: L,
        t: Timestamp,
        out: &mut R,
    ) -> isize {
        if let Some((start, r, _)) = *part {
            if t - start >= self.window {
                let view = PairView {
                    events: vec![(start, store.get(r))],
                };
                out.on_timeout(&view, start + self.window);
                store.release(r);
                *part = None;
                return -1;
            }
        }
        0
    }

    fn process<R: Reporter<Ev, Self> + ?Sized, L: crate::lookup::LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Slab,
        _: &mut (),
        _: L,
        limit: usize,
        starts: bool,
        r: usize,
        out: &mut R,
    ) -> isize {
        let ts = store.entry(r).0;
        match part.take() {
            None if !starts => 0,
            Some((start, first, _)) => {
                let view = PairView {
                    events: vec![(start, store.get(first)), (ts, store.get(r))],
                };
                out.on_match(&view);
                store.release(first);
                -1
            }
            None if limit == 0 => {
                // (no room: the partial match it would start is dropped)
                let view = PairView {
                    events: vec![(ts, store.get(r))],
                };
                out.on_dropped(&view);
                0
            }
            None => {
                store.slots[r].as_mut().expect("live event").2 += 1;
                *part = Some((ts, r, ts + self.window));
                1
            }
        }
    }

    fn discard<R: Reporter<Ev, Self> + ?Sized, L: crate::lookup::LookupRef>(
        &self,
        part: &mut Self::Partition,
        store: &mut Slab,
        _: &mut (),
        _: L,
        _: &mut R,
    ) -> usize {
        match part.take() {
            Some((_, r, _)) => {
                store.release(r);
                1
            }
            None => 0,
        }
    }

    fn partial_matches(part: &Self::Partition) -> usize {
        usize::from(part.is_some())
    }

    fn partition_heap_bytes(_: &Self::Partition) -> usize {
        0
    }

    fn is_empty(part: &Self::Partition) -> bool {
        part.is_none()
    }

    fn next_deadline(part: &Self::Partition) -> Option<Timestamp> {
        part.map(|(_, _, deadline)| deadline)
    }
}

/// One input item for a test run.
#[derive(Clone, Copy, Debug)]
enum In {
    /// An event: time, key (`None`: no key field), id.
    Ev(Timestamp, Option<i64>, u32),
    /// A punctuated watermark.
    Wm(Timestamp),
}

fn engine(max_delay: i64, window: Timestamp) -> Core<Ev, Pairs> {
    let mut engine = Core::new(max_delay);
    let mut fields = KeyOnly;
    engine.add(Pairs::new(window), &mut fields).unwrap();
    engine
}

fn feed(engine: &mut Core<Ev, Pairs>, input: &[In], out: &mut Vec<Output<Ev>>) {
    for item in input {
        match *item {
            In::Ev(ts, key, id) => {
                engine.push(ts, Ev { key, id }, out);
            }
            In::Wm(t) => engine.watermark(t, out),
        }
    }
}

/// Outputs as short strings: `M key id,id`, `T key id @expired`, `L id`.
fn show(outputs: Vec<Output<Ev>>) -> Vec<String> {
    let ids = |m: &Match<Ev>| {
        let ids: Vec<String> = m
            .stages
            .iter()
            .flat_map(|(_, evs)| evs.iter().map(|e| e.id.to_string()))
            .collect();
        format!("{} {}", m.key[0], ids.join(","))
    };
    outputs
        .into_iter()
        .map(|o| match o {
            Output::Match(m) => format!("M {}", ids(&m)),
            Output::Timeout {
                partial,
                expired_at,
            } => format!("T {} @{expired_at}", ids(&partial)),
            Output::Late { event, .. } => format!("L {}", event.id),
            Output::Dropped { partial } => format!("D {}", ids(&partial)),
            other => panic!("an output these tests do not know: {other:?}"),
        })
        .collect()
}

fn run(max_delay: i64, window: Timestamp, input: &[In], flush: bool) -> Vec<String> {
    let mut engine = engine(max_delay, window);
    let mut out: Vec<Output<Ev>> = Vec::new();
    feed(&mut engine, input, &mut out);
    if flush {
        engine.watermark(Timestamp::MAX, &mut out);
    } else {
        engine.finish(&mut out);
    }
    show(std::mem::take(&mut out))
}

#[test]
fn events_within_the_delay_are_processed_in_time_order() {
    let input = [In::Ev(5, Some(1), 1), In::Ev(3, Some(1), 2)];
    assert_eq!(run(10, 100, &input, false), ["M 1 2,1"]);
}

#[test]
fn events_at_or_below_the_watermark_are_late() {
    let input = [
        In::Ev(10, Some(1), 1),
        In::Ev(10, Some(1), 2),
        In::Ev(9, Some(1), 3),
    ];
    assert_eq!(run(0, 100, &input, false), ["L 3", "M 1 1,2"]);
}

#[test]
fn a_quiet_key_times_out_when_another_key_moves_time() {
    let input = [
        In::Ev(0, Some(1), 1),
        In::Ev(100, Some(2), 2),
        In::Ev(120, Some(2), 3),
    ];
    assert_eq!(run(0, 50, &input, false), ["T 1 1 @50", "M 2 2,3"]);
}

#[test]
fn deadlines_fire_before_events_of_a_later_time() {
    // Key 1 expires at 50, before key 2's event at 50 completes a match.
    let input = [
        In::Ev(0, Some(1), 1),
        In::Ev(49, Some(2), 2),
        In::Ev(50, Some(2), 3),
        In::Ev(50, Some(1), 4),
    ];
    assert_eq!(
        run(0, 50, &input, true),
        ["T 1 1 @50", "M 2 2,3", "T 1 4 @100"]
    );
}

#[test]
fn punctuated_watermarks_release_events_and_fire_timeouts() {
    let mut engine = engine(1_000, 50);
    let mut out: Vec<Output<Ev>> = Vec::new();
    feed(&mut engine, &[In::Ev(0, Some(1), 1)], &mut out);
    assert!(std::mem::take(&mut out).is_empty());
    assert_eq!(engine.waiting_events(), 1);
    feed(&mut engine, &[In::Wm(60), In::Ev(60, Some(1), 2)], &mut out);
    assert_eq!(show(std::mem::take(&mut out)), ["T 1 1 @50", "L 2"]);
    // A lower watermark does not move time back.
    engine.watermark(10, &mut out);
    assert_eq!(engine.current_watermark(), Some(60));
}

#[test]
fn end_of_input_expires_only_windows_closed_by_the_last_time() {
    let input = [In::Ev(0, Some(1), 1), In::Ev(30, Some(2), 2)];
    assert!(run(0, 50, &input, false).is_empty());
    assert_eq!(run(0, 50, &input, true), ["T 1 1 @50", "T 2 2 @80"]);
    let input = [In::Ev(0, Some(1), 1), In::Ev(50, Some(2), 2)];
    assert_eq!(run(0, 50, &input, false), ["T 1 1 @50"]);
}

#[test]
fn keys_are_forgotten_when_their_state_is_empty() {
    let mut engine = engine(5, 50);
    let mut out: Vec<Output<Ev>> = Vec::new();
    let input: Vec<In> = (0..100)
        .map(|i| In::Ev(i, Some(i % 10), i as u32))
        .collect();
    feed(&mut engine, &input, &mut out);
    assert!(engine.live_partitions() > 0);
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(engine.live_partitions(), 0);
    assert_eq!(engine.stored_events(), 0);
    assert_eq!(engine.waiting_events(), 0);
    assert_eq!(engine.stats().matches, 50);
}

#[test]
fn events_without_the_key_field_are_counted_not_matched() {
    let input = [In::Ev(1, None, 1), In::Ev(2, None, 2)];
    let mut engine = engine(0, 50);
    let mut out: Vec<Output<Ev>> = Vec::new();
    feed(&mut engine, &input, &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    assert!(std::mem::take(&mut out).is_empty());
    assert_eq!(engine.stats().unkeyed, 2);
    assert_eq!(engine.stats().events, 2);
}

proptest! {
    /// Delivering events shuffled within the max delay gives the same
    /// output as delivering them sorted.
    #[test]
    fn shuffling_within_the_delay_does_not_change_the_output(
        events in proptest::collection::vec((1i64..20, 0i64..4, 0i64..=30), 0..60),
        window in 1i64..60,
        delay in 0i64..=30,
    ) {
        let mut ts = 0;
        let mut sorted = Vec::new();
        let mut shuffled = Vec::new();
        for (i, &(gap, key, jitter)) in events.iter().enumerate() {
            ts += gap;
            sorted.push(In::Ev(ts, Some(key), i as u32));
            shuffled.push((ts + jitter.min(delay), In::Ev(ts, Some(key), i as u32)));
        }
        shuffled.sort_by_key(|(arrival, _)| *arrival);
        let shuffled: Vec<In> = shuffled.into_iter().map(|(_, e)| e).collect();
        for flush in [false, true] {
            let expected = run(delay, window, &sorted, flush);
            prop_assert!(!expected.iter().any(|o| o.starts_with('L')));
            prop_assert_eq!(run(delay, window, &shuffled, flush), expected);
        }
    }
}

#[test]
fn deadlines_of_one_time_fire_by_pattern_then_in_each_patterns_slot_order() {
    // Two patterns on the same key field share one map of keys, but a
    // pattern's deadlines of equal time still fire in the order of the
    // slot each key would have in that pattern's own map, freed slots
    // reused last freed first. Pattern 0 (window 1) frees keys 1 and 2 at
    // 1 (its slots 0, then 1); keys 3 and 4 then take its slots 1 and 0,
    // so at 2 key 4 fires before key 3, though key 3 came first. Pattern 1
    // (window 20) gave them slots 2 and 3: key 3 first at 21.
    let mut engine: Core<Ev, Pairs> = Core::new(0);
    let mut fields = KeyOnly;
    engine.add(Pairs::new(1), &mut fields).unwrap();
    engine.add(Pairs::new(20), &mut fields).unwrap();
    let input = [
        In::Ev(0, Some(1), 1),
        In::Ev(0, Some(2), 2),
        In::Ev(1, Some(3), 3),
        In::Ev(1, Some(4), 4),
    ];
    let mut out = Vec::new();
    feed(&mut engine, &input, &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    assert_eq!(
        show(out),
        [
            "T 1 1 @1",
            "T 2 2 @1",
            "T 4 4 @2",
            "T 3 3 @2",
            "T 1 1 @20",
            "T 2 2 @20",
            "T 3 3 @21",
            "T 4 4 @21"
        ]
    );
    assert_eq!(engine.live_partitions(), 0);
}

#[test]
fn a_large_batch_of_equal_deadlines_fires_by_pattern_then_slot_order() {
    // 100 keys due at one time in each of two patterns: a batch large
    // enough to be sorted by buckets. Each pattern's keys fire in the order
    // they got their slots (their arrival order), the first pattern's
    // first.
    let mut engine: Core<Ev, Pairs> = Core::new(0);
    let mut fields = KeyOnly;
    engine.add(Pairs::new(10), &mut fields).unwrap();
    let mut second = Pairs::new(10);
    second.pattern.name = "second".into();
    engine.add(second, &mut fields).unwrap();
    let keys: Vec<i64> = (0..100).map(|i| (i * 37) % 100).collect();
    let input: Vec<In> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| In::Ev(0, Some(k), i as u32))
        .collect();
    let mut out = Vec::new();
    feed(&mut engine, &input, &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    let fired: Vec<(String, i64)> = out
        .iter()
        .map(|o| match o {
            Output::Timeout { partial, .. } => match partial.key[0] {
                Value::Int(k) => (partial.pattern.clone(), k),
                _ => unreachable!(),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<(String, i64)> = ["pairs", "second"]
        .iter()
        .flat_map(|p| keys.iter().map(move |&k| (p.to_string(), k)))
        .collect();
    assert_eq!(fired, expected);
}

/// The guards, `last` flags and skips of an engine's groups and patterns.
type Guards = (Vec<Option<Vec<(u32, u32)>>>, Vec<(bool, usize)>);

fn guards(engine: &Core<Ev, Pairs>) -> Guards {
    let groups = engine.groups.iter().map(|g| g.guard.clone()).collect();
    let patterns = engine
        .patterns
        .iter()
        .map(|r| (r.last, r.skip_to))
        .collect();
    (groups, patterns)
}

#[test]
fn adding_patterns_reads_each_start_guard_once() {
    // 300 patterns in three runs: keyed, unkeyed, keyed again (one group
    // in two runs), their guards of 7 shared conditions. Each addition
    // reads its own start guard only (recomputing every group's guard at
    // each addition read N²/2 of them), and leaves what a full
    // recomputation gives.
    let mut engine: Core<Ev, Pairs> = Core::new(0);
    let mut fields = KeyOnly;
    GUARD_CALLS.with(|calls| calls.set(0));
    for i in 0..300_u32 {
        let mut pairs = Pairs::new(10);
        pairs.pattern.name = format!("p{i}");
        pairs.guard = Some(i % 7);
        if (100..200).contains(&i) {
            pairs.pattern.partition_by.clear();
        }
        engine.add(pairs, &mut fields).unwrap();
    }
    assert_eq!(GUARD_CALLS.with(|calls| calls.get()), 300);
    let incremental = guards(&engine);
    let (groups, patterns) = &incremental;
    let shared: Vec<(u32, u32)> = (0..7).map(|i| (i, 0)).collect();
    assert_eq!(
        groups,
        &[
            Some(shared.clone()),
            Some(shared.iter().map(|&(p, s)| (p + 100, s)).collect())
        ]
    );
    for (p, &(last, skip_to)) in patterns.iter().enumerate() {
        assert_eq!(last, p == 199 || p == 299, "pattern {p}");
        let expected = match p {
            0..100 => 100,
            100..200 => 200,
            _ => super::core::PAST_ALL,
        };
        assert_eq!(skip_to, expected, "pattern {p}");
    }
    engine.refresh_guards();
    assert_eq!(guards(&engine), incremental);

    // A pattern whose guard is not known: its group has none.
    let mut unguarded = Pairs::new(10);
    unguarded.pattern.name = "unguarded".into();
    engine.add(unguarded, &mut fields).unwrap();
    let (groups, _) = guards(&engine);
    assert_eq!(groups[0], None);
    assert!(groups[1].is_some());
    let incremental = guards(&engine);
    engine.refresh_guards();
    assert_eq!(guards(&engine), incremental);
}

#[test]
fn patterns_of_two_groups_interleaved_match_as_each_alone() {
    // Events skip a run of a group whose guard no event meets (`skip_to`
    // past every pattern for the last run): the outputs are those of each
    // pattern alone.
    let mut engine: Core<Ev, Pairs> = Core::new(0);
    let mut fields = KeyOnly;
    for i in 0..6_u32 {
        let mut pairs = Pairs::new(5);
        pairs.pattern.name = format!("p{i}");
        if i % 3 == 1 {
            pairs.pattern.partition_by.clear();
        }
        engine.add(pairs, &mut fields).unwrap();
    }
    let input = [
        In::Ev(0, Some(1), 1),
        In::Ev(1, Some(1), 2),
        In::Ev(2, None, 3),
    ];
    let mut out = Vec::new();
    feed(&mut engine, &input, &mut out);
    engine.watermark(Timestamp::MAX, &mut out);
    let matches = out.iter().filter(|o| matches!(o, Output::Match(_))).count();
    // Keyed patterns (4) pair events 1 and 2; unkeyed ones (2) pair 1 and
    // 2, and time out with 3.
    assert_eq!(matches, 6, "{out:?}");
}
