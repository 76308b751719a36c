//! Requests: events decided at once, each under an id it is taken by once
//! (issue 63, `docs/semantics.md`, "Requests").
//!
//! A decision service answers a client who may retry: the same request
//! sent again (a timeout, a crash of either side) must get the answer it
//! got, and count once in every indicator and sequence. So the engine
//! keeps, for a retention, each request's id with the decisions it got
//! and a note of the caller's ([`Remembered`]): engine state, kept in its
//! snapshots, so that a service that replays its log after a checkpoint
//! rebuilds the same table. [`Engine::request`](crate::Engine::request)
//! takes an event under an id: a new id is taken at once (as
//! [`Engine::decide_now`](crate::Engine::decide_now) takes an event) into
//! the one scene named, or into none; an id taken before is not taken
//! again and gets what it got.

use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::engine::automaton::Automaton;
use crate::engine::core::Core;
use crate::engine::decide::Decision;
use crate::primitives::Timestamp;
use crate::value::Value;
use cepheid_core::persist::Saved;

/// How long and how many requests an engine remembers
/// ([`Engine::remember_requests`](crate::Engine::remember_requests)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMemory {
    /// A request is remembered while the engine's time is less than this
    /// many milliseconds past its own (then its id is free again).
    pub retention_ms: i64,
    /// The most requests remembered. A request past it makes the engine
    /// forget the oldest one before its retention ends, counted
    /// ([`RequestStats::forgotten_early`]): the caller says so.
    pub max_entries: usize,
}

impl Default for RequestMemory {
    /// A day, and a million requests.
    fn default() -> RequestMemory {
        RequestMemory {
            retention_ms: 24 * 3_600_000,
            max_entries: 1_000_000,
        }
    }
}

/// One request as the engine takes it ([`Engine::request`](crate::Engine::request)).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Its id: a request with an id taken before (and still remembered)
    /// is not taken again.
    pub id: Value,
    /// The scene its event enters, the only one (`None`: none; the event
    /// is taken by every rule and gets no decision).
    pub scene: Option<Arc<str>>,
    /// The caller's note, kept with the request and given back to a
    /// repeat (a service keeps there what it answered beyond the
    /// decisions: its log's sequence number, an answer degraded to the
    /// scene's fallback, a fingerprint of the event's fields).
    pub note: Arc<[u8]>,
    /// The event's input position ([`Decision::place`]); its decisions are
    /// named by it when the scene has no `id` field.
    pub position: Option<Value>,
    /// Evaluate it and change nothing ([`Engine::request_dry`](crate::Engine::request_dry)):
    /// [`Engine::request`](crate::Engine::request) does not read it; a
    /// caller that hands requests on (the runtime) calls the one it
    /// names.
    pub dry_run: bool,
    /// The shadow patterns do not take its event (a service under load
    /// sheds them first, before it answers with fallbacks): they see the
    /// stream without it, and its decision lists no shadow rule. The
    /// other patterns, its decision and the indicators and lists take it
    /// as ever. A log that says so replays it so.
    pub shed_shadow: bool,
}

/// What a request got, and what a repeat of it is given back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    /// The time the engine took it at.
    pub at: Timestamp,
    /// The caller's note ([`Request::note`]).
    pub note: Arc<[u8]>,
    /// Its decisions (one, in its scene; none for an event of no scene).
    pub decisions: Vec<Decision>,
    /// The scene it named, when its event did not enter it (its `when`,
    /// as written, did not hold): the event was taken as one of no scene.
    pub refused: Option<Arc<str>>,
}

/// What [`Engine::request`](crate::Engine::request) did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// Taken now, at the time given: its decisions.
    Taken {
        /// The time it was taken at.
        at: Timestamp,
        /// Its decisions (none for an event of no scene).
        decisions: Vec<Decision>,
    },
    /// Its id was taken before, and is remembered: nothing was taken now;
    /// what it got then.
    Repeated(Remembered),
    /// Taken now, as an event of no scene: the scene it named does not
    /// admit it (its `when` did not hold).
    NotInScene {
        /// The time it was taken at.
        at: Timestamp,
        /// The scene's condition, as written (`type == "payment"`).
        condition: Arc<str>,
    },
    /// No scene in force has that name: nothing was taken.
    UnknownScene,
    /// A dry run that could not be made ([`Engine::request_dry`](crate::Engine::request_dry)
    /// failed: the engine's state could not be copied): why.
    NotEvaluated(String),
}

/// Counts of the requests an engine took ([`Engine::request_stats`](crate::Engine::request_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Requests remembered now.
    pub remembered: u64,
    /// Requests taken (new ids).
    pub taken: u64,
    /// Repeats answered from memory.
    pub repeated: u64,
    /// Requests forgotten when their retention ended.
    pub expired: u64,
    /// Requests forgotten before their retention ended, the memory full
    /// ([`RequestMemory::max_entries`]): a repeat of one is taken again.
    pub forgotten_early: u64,
}

/// The remembered requests: by id, and in the order taken (which is the
/// order of their times) to forget the oldest. Each is shared by the two
/// (an `Arc`, never changed once taken), so that a snapshot takes them
/// all by a pass over the order, with no copy of what they hold, and
/// encodes them later, maybe on another thread ([`Captured`]).
#[derive(Clone, Debug, Default)]
pub(super) struct Requests {
    pub(super) memory: RequestMemory,
    by_id: HashMap<Value, Arc<Remembered>>,
    order: VecDeque<(Value, Arc<Remembered>)>,
    pub(super) stats: RequestStats,
}

/// What a snapshot keeps of [`Requests`]: the memory's bounds, each
/// request in the order taken, and the counts (read back so; written by
/// [`Captured`], the same bytes).
#[derive(Deserialize)]
pub(super) struct SavedRequests {
    memory: RequestMemory,
    entries: Vec<SavedEntry>,
    stats: RequestStats,
}

#[derive(Deserialize)]
struct SavedEntry(
    #[serde(with = "cepheid_core::persist::via")] Value,
    Remembered,
);

/// The remembered requests as a snapshot takes them
/// ([`Requests::capture`]): the same entries, shared, not copied, so that
/// taking them costs a pass over the order and their encoding can wait
/// (`Send`: another thread may encode them). It serializes as
/// [`SavedRequests`] reads.
#[derive(Debug)]
pub(crate) struct Captured {
    memory: RequestMemory,
    entries: Vec<(Value, Arc<Remembered>)>,
    stats: RequestStats,
}

impl Serialize for Captured {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            memory: RequestMemory,
            entries: Entries<'a>,
            stats: RequestStats,
        }
        struct Entries<'a>(&'a [(Value, Arc<Remembered>)]);
        #[derive(Serialize)]
        struct Entry<'a>(Saved<'a, Value>, &'a Remembered);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq((self.0.iter()).map(|(id, r)| Entry(Saved(id), r)))
            }
        }
        Out {
            memory: self.memory,
            entries: Entries(&self.entries),
            stats: self.stats,
        }
        .serialize(s)
    }
}

impl Requests {
    pub(super) fn new(memory: RequestMemory) -> Requests {
        Requests {
            memory,
            ..Requests::default()
        }
    }

    /// Forgets the requests whose retention ended by `now`.
    pub(super) fn expire(&mut self, now: Timestamp) {
        let horizon = now.saturating_sub(self.memory.retention_ms);
        while let Some((_, front)) = self.order.front() {
            if front.at > horizon {
                break;
            }
            let (id, _) = self.order.pop_front().expect("a front");
            self.by_id.remove(&id);
            self.stats.expired += 1;
        }
        self.stats.remembered = self.by_id.len() as u64;
    }

    pub(super) fn get(&self, id: &Value) -> Option<&Remembered> {
        self.by_id.get(id).map(|r| &**r)
    }

    /// Remembers `id` (a new one).
    pub(super) fn remember(&mut self, id: Value, remembered: Remembered) {
        while self.by_id.len() >= self.memory.max_entries.max(1) {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&old);
            self.stats.forgotten_early += 1;
        }
        let remembered = Arc::new(remembered);
        self.order.push_back((id.clone(), Arc::clone(&remembered)));
        self.by_id.insert(id, remembered);
        self.stats.taken += 1;
        self.stats.remembered = self.by_id.len() as u64;
    }

    /// The requests remembered, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Value, &Remembered)> {
        (self.order.iter()).map(|(id, r)| (id, &**r))
    }

    /// The bytes it holds, about: each entry's id, note and decisions
    /// with their heap parts, its shared allocation (two counts and the
    /// entry), the table's slot and the order's.
    pub(super) fn bytes(&self) -> usize {
        let per = std::mem::size_of::<(Value, Arc<Remembered>)>()
            + 1
            + 16
            + std::mem::size_of::<Remembered>()
            + std::mem::size_of::<(Value, Arc<Remembered>)>();
        let heap: usize = (self.by_id.iter())
            .map(|(id, r)| 2 * value_heap(id) + r.note.len() + decisions_heap(&r.decisions))
            .sum();
        self.by_id.capacity() * per + heap
    }

    /// Every request remembered, in the order taken, shared with the
    /// table: a pass over the order, one count taken per entry and per
    /// string id, nothing the entries hold copied.
    pub(crate) fn capture(&self) -> Captured {
        Captured {
            memory: self.memory,
            entries: self.order.iter().cloned().collect(),
            stats: self.stats,
        }
    }

    pub(super) fn restore(saved: SavedRequests) -> Requests {
        let mut requests = Requests::new(saved.memory);
        for SavedEntry(id, r) in saved.entries {
            let r = Arc::new(r);
            requests.order.push_back((id.clone(), Arc::clone(&r)));
            requests.by_id.insert(id, r);
        }
        requests.stats = saved.stats;
        requests.stats.remembered = requests.by_id.len() as u64;
        requests
    }
}

fn value_heap(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        _ => 0,
    }
}

fn decisions_heap(decisions: &[Decision]) -> usize {
    (decisions.iter())
        .map(|d| {
            std::mem::size_of::<Decision>()
                + value_heap(&d.event)
                + (d.rules.iter().chain(&d.shadow))
                    .map(|f| {
                        std::mem::size_of_val(f)
                            + f.rule.len()
                            + (f.reads.iter())
                                .map(|(name, v)| {
                                    std::mem::size_of::<(String, Value)>()
                                        + name.len()
                                        + value_heap(v)
                                })
                                .sum::<usize>()
                    })
                    .sum::<usize>()
                + d.missing.len() * 16
        })
        .sum()
}

impl<E: crate::event::Event + 'static> crate::Engine<E> {
    /// Remembers each request ([`Engine::request`](crate::Engine::request))
    /// as `memory` says: its retention and the most kept. Without a call,
    /// [`RequestMemory::default`]. Requests remembered already stay (the
    /// oldest forgotten now if they are more than the new bound allows).
    pub fn remember_requests(&mut self, memory: RequestMemory) {
        let requests = self.requests.get_or_insert_with(Box::default);
        requests.memory = memory;
        let extra = requests
            .by_id
            .len()
            .saturating_sub(memory.max_entries.max(1));
        for _ in 0..extra {
            if let Some((old, _)) = requests.order.pop_front() {
                requests.by_id.remove(&old);
                requests.stats.forgotten_early += 1;
            }
        }
        requests.stats.remembered = requests.by_id.len() as u64;
    }

    /// Takes `event` as the request `request`, at once, arriving at `now`
    /// (as [`decide_now`](crate::Engine::decide_now) takes an event: its
    /// time is `now`, or just past the watermark when `now` is not past
    /// it; events of one millisecond all take it), unless its id was taken
    /// before and is remembered:
    ///
    /// - a new id: the event enters the scene the request names and no
    ///   other (or none), and is taken by every rule as any event is;
    ///   [`Answer::Taken`] with its decisions, remembered with the
    ///   request's note. When the scene's `when` does not hold for it, it
    ///   is taken as an event of no scene: [`Answer::NotInScene`] (also
    ///   remembered: a repeat gets it again and is not taken again);
    /// - an id remembered: nothing is taken, [`Answer::Repeated`] with
    ///   what it got;
    /// - a scene that is not in force: nothing is taken,
    ///   [`Answer::UnknownScene`];
    /// - an id that is [`Value::Null`](crate::Value::Null): taken as a new
    ///   id is, and neither remembered nor looked for (an event whose place
    ///   makes it once, a service's record of a Kafka topic: it holds no
    ///   room in the memory of requests).
    ///
    /// In every case time moves to the request's, as
    /// [`tick`](crate::Engine::tick) would, before: what is due then fires
    /// into `sink`, with the event's matches. A request is remembered for
    /// [`RequestMemory::retention_ms`] of the engine's time; the memory is
    /// kept in [`snapshot`](crate::Engine::snapshot)s.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cepheid_engine::engine::{Answer, Request};
    /// use cepheid_engine::{Engine, Record, Rules, Value};
    /// let rules = Rules::parse("r.cep", r#"
    ///     indicator payments = count() where type == "payment" group by card within 1h
    ///     pattern busy { action review match p where p: payments(card) >= 2 }
    ///     scene payment {
    ///         when type == "payment"
    ///         rules busy
    ///         outcomes approve < review
    ///         review if action review
    ///         fallback approve
    ///         deadline 100ms
    ///     }"#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// let mut decoder = cepheid_decode::Decoder::new(
    ///     cepheid_decode::Format::JsonLines, "ts", engine.fields().clone()).without_time();
    /// let mut event = |text: &str| match decoder.decode(text.as_bytes()) {
    ///     Ok(cepheid_decode::Item::Event(_, record)) => record,
    ///     _ => unreachable!(),
    /// };
    /// let request = |id: &str| Request {
    ///     id: Value::Str(id.into()), scene: Some("payment".into()),
    ///     note: Arc::from(&b""[..]), position: None, dry_run: false, shed_shadow: false,
    /// };
    /// let mut out = Vec::new();
    /// let payment = r#"{"type": "payment", "card": "c1"}"#;
    /// let first = engine.request(1_000, request("p1"), event(payment), &mut out);
    /// assert!(matches!(first, Answer::Taken { .. }));
    /// // The same request again: what it got, and it counts once.
    /// let again = engine.request(1_001, request("p1"), event(payment), &mut out);
    /// assert!(matches!(again, Answer::Repeated(_)));
    /// let Answer::Taken { decisions, .. } = engine.request(1_002, request("p2"), event(payment), &mut out)
    /// else { unreachable!() };
    /// assert_eq!(&*decisions[0].outcome, "review"); // two payments, not three
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn request<S: crate::engine::sink::Sink<E> + ?Sized>(
        &mut self,
        now: Timestamp,
        request: Request,
        event: E,
        sink: &mut S,
    ) -> Answer {
        take(
            &mut self.core,
            &mut self.requests,
            now,
            (request, event),
            sink,
        )
    }

    /// What a remembered request got ([`Engine::request`](crate::Engine::request)), by its id.
    pub fn remembered(&self, id: &Value) -> Option<&Remembered> {
        self.requests.as_ref()?.get(id)
    }

    /// The remembered requests, oldest first.
    pub fn remembered_requests(&self) -> impl Iterator<Item = (&Value, &Remembered)> {
        self.requests.iter().flat_map(|r| r.iter())
    }

    /// The counts of the requests taken ([`RequestStats`]).
    pub fn request_stats(&self) -> RequestStats {
        self.requests.as_ref().map(|r| r.stats).unwrap_or_default()
    }

    /// About how many bytes the remembered requests hold.
    pub fn requests_bytes(&self) -> usize {
        self.requests.as_ref().map_or(0, |r| r.bytes())
    }
}

impl<E: crate::event::Event + serde::Serialize + serde::de::DeserializeOwned + 'static>
    crate::Engine<E>
{
    /// The answer [`request`](crate::Engine::request) would give,
    /// changing nothing (as [`dry_run`](crate::Engine::dry_run) does for
    /// [`decide_now`](crate::Engine::decide_now)): a remembered id is
    /// [`Answer::Repeated`], a new one is taken into a scratch copy of the
    /// engine, whose cost is the engine's state's.
    ///
    /// Fails as [`snapshot`](crate::Engine::snapshot) does.
    pub fn request_dry(
        &self,
        now: Timestamp,
        request: Request,
        event: E,
    ) -> Result<Answer, crate::Error> {
        if let Some(remembered) = self.remembered(&request.id) {
            let ts = match self.current_watermark() {
                Some(watermark) if now <= watermark => watermark.saturating_add(1),
                _ => now,
            };
            let horizon =
                ts.saturating_sub(self.requests.as_ref().map_or(0, |r| r.memory.retention_ms));
            if remembered.at > horizon {
                return Ok(Answer::Repeated(remembered.clone()));
            }
        }
        let mut scratch = self.scratch()?;
        Ok(scratch.request(now, request, event, &mut super::decide::Nothing))
    }
}

/// Takes `event` as the request `request` at `now` into `core`, its ids
/// remembered in `requests`: the whole of [`Engine::request`](crate::Engine::request),
/// shared by a plain engine and one that traces a key
/// ([`Why::request`](crate::engine::why::Why::request)), so that both take
/// a request alike: time moved to it, a remembered id answered from
/// memory, a new one taken at once into the scene it names and no other.
#[inline]
pub(super) fn take<E, A, S>(
    core: &mut Core<E, A>,
    requests: &mut Option<Box<Requests>>,
    now: Timestamp,
    (request, event): (Request, E),
    sink: &mut S,
) -> Answer
where
    E: crate::event::Event + 'static,
    A: Automaton<E>,
    S: crate::engine::sink::Sink<E> + ?Sized,
{
    let ts = match core.current_watermark() {
        Some(watermark) if now <= watermark => watermark.saturating_add(1),
        _ => now,
    };
    core.tick(ts, sink);
    let memory = requests.get_or_insert_with(Box::default);
    memory.expire(ts);
    let remember = request.id != Value::Null;
    if let Some(remembered) = memory.get(&request.id).filter(|_| remember) {
        let remembered = remembered.clone();
        memory.stats.repeated += 1;
        return Answer::Repeated(remembered);
    }
    let scene = match &request.scene {
        None => None,
        Some(name) => match (core.decide.as_ref()).and_then(|d| d.scene_named(name)) {
            Some(i) => Some(i),
            None => return Answer::UnknownScene,
        },
    };
    let seq = core.clock.next_arrival();
    if let Some(decide) = &mut core.decide {
        decide.only = Some(super::decide::Only {
            seq,
            scene,
            refused: false,
            shed: request.shed_shadow,
        });
    }
    let mut catch = super::decide::Catch {
        inner: sink,
        arrival: seq,
        caught: Vec::new(),
    };
    core.push_positioned(ts, event, request.position, &mut catch);
    core.run_through(ts, &mut catch);
    core.reap();
    let mut decisions = catch.caught;
    for d in &mut decisions {
        // (the arrival number only picked them out: a snapshot keeps
        // none, so a restored engine's are alike)
        d.arrival = 0;
    }
    let only = (core.decide.as_mut()).and_then(|d| d.only.take());
    let refused = match (only, scene) {
        (Some(only), Some(i)) if only.refused => (core.decide.as_ref()).map(|d| d.condition(i)),
        _ => None,
    };
    if remember {
        let memory = requests.get_or_insert_with(Box::default);
        memory.remember(
            request.id,
            Remembered {
                at: ts,
                note: request.note,
                decisions: decisions.clone(),
                refused: refused.clone(),
            },
        );
    }
    match refused {
        Some(condition) => Answer::NotInScene { at: ts, condition },
        None => Answer::Taken { at: ts, decisions },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Answer, Request};
    use crate::event::FieldPath;
    use crate::record::Record;
    use crate::value::Value;
    use crate::{Engine, Rules};

    const RULES: &str = r#"
        indicator payments = count() where type == "payment" group by card within 1h
        pattern busy { action review match p where p: payments(card) >= 2 }
        scene payment {
            when type == "payment"
            rules busy
            outcomes approve < review
            review if action review
            fallback approve
            deadline 100ms
        }"#;

    fn engine() -> Engine<Record> {
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&Rules::parse("r.cep", RULES).unwrap()).unwrap();
        engine
    }

    fn payment(engine: &Engine<Record>, card: &str) -> Record {
        let at = |name: &str| {
            (engine.fields().get(&FieldPath::single(name)))
                .unwrap()
                .index()
        };
        let mut values = vec![Value::Null; engine.fields().len()];
        values[at("type")] = Value::from("payment");
        values[at("card")] = Value::from(card);
        Record::new(values, Arc::from("{}"))
    }

    fn take(engine: &mut Engine<Record>, now: i64, id: &str, card: &str) -> Answer {
        let request = Request {
            id: Value::from(id),
            scene: Some("payment".into()),
            note: Arc::from(id.as_bytes()),
            position: None,
            dry_run: false,
            shed_shadow: false,
        };
        let event = payment(engine, card);
        engine.request(now, request, event, &mut Vec::new())
    }

    /// A snapshot begun, then finished after the engine took more
    /// requests, is the snapshot of the engine when it began: the
    /// requests it holds are those remembered then, shared, not those
    /// taken since.
    #[test]
    fn a_snapshot_finished_later_is_the_one_of_when_it_began() {
        let mut engine = engine();
        for (i, card) in ["c1", "c2", "c1"].iter().enumerate() {
            take(&mut engine, 1_000 + i as i64, &format!("p{i}"), card);
        }
        let mut whole = Vec::new();
        engine.snapshot_into(&mut whole).unwrap();
        let mut begun = b"before".to_vec();
        let rest = engine.snapshot_begin(&mut begun).unwrap();
        // The engine goes on: a new request, a repeat, and all but the
        // last forgotten.
        take(&mut engine, 2_000, "p3", "c2");
        assert!(matches!(
            take(&mut engine, 2_001, "p0", "c1"),
            Answer::Repeated(_)
        ));
        engine.remember_requests(super::RequestMemory {
            retention_ms: 3_600_000,
            max_entries: 1,
        });
        let finisher = std::thread::spawn(move || {
            rest.finish(&mut begun).unwrap();
            begun
        });
        let begun = finisher.join().unwrap();
        assert_eq!(&begun[..6], b"before");
        assert_eq!(&begun[6..], &whole[..]);
        // Read back: the three requests of then, and only they.
        let mut restored = engine_restored(&whole);
        assert_eq!(restored.request_stats().remembered, 3);
        assert!(
            matches!(take(&mut restored, 3_000, "p2", "c1"), Answer::Repeated(r) if &*r.note == b"p2")
        );
        assert!(matches!(
            take(&mut restored, 3_001, "p3", "c2"),
            Answer::Taken { .. }
        ));
    }

    /// A request whose id is null is taken every time and remembered
    /// never: it holds no room in the memory, and a second one like it
    /// counts again (a service's Kafka record, made once by its place).
    #[test]
    fn a_request_of_no_id_is_taken_each_time_and_never_remembered() {
        let mut engine = engine();
        let unnamed = |engine: &mut Engine<Record>, now: i64| {
            let request = Request {
                id: Value::Null,
                scene: None,
                note: Arc::from(&b""[..]),
                position: None,
                dry_run: false,
                shed_shadow: false,
            };
            let event = payment(engine, "c1");
            engine.request(now, request, event, &mut Vec::new())
        };
        for now in [1_000, 1_001] {
            assert!(matches!(unnamed(&mut engine, now), Answer::Taken { .. }));
        }
        assert_eq!(engine.request_stats().remembered, 0);
        assert_eq!(engine.remembered_requests().count(), 0);
        // (both counted: a payment of the same card now reviews)
        let Answer::Taken { decisions, .. } = take(&mut engine, 1_002, "p1", "c1") else {
            panic!("not taken")
        };
        assert_eq!(&*decisions[0].outcome, "review");
        assert_eq!(engine.request_stats().remembered, 1);
    }

    fn engine_restored(bytes: &[u8]) -> Engine<Record> {
        let mut restored = engine();
        restored.restore(bytes).unwrap();
        restored
    }

    /// A rest is finished in the buffer its snapshot began in, or refused.
    #[test]
    fn a_snapshot_is_not_finished_in_another_buffer() {
        let mut engine = engine();
        take(&mut engine, 1_000, "p0", "c1");
        let mut begun = Vec::new();
        let rest = engine.snapshot_begin(&mut begun).unwrap();
        let mut other = b"something else entirely, and long enough".to_vec();
        let error = rest.finish(&mut other).unwrap_err();
        assert!(error.message().contains("another buffer"), "{error}");
        assert_eq!(&other[..], b"something else entirely, and long enough");
    }

    /// Version 13 kept the remembered requests before the scenes; version
    /// 14 keeps them last (encoded after the rest). A snapshot of version
    /// 13 with requests and scenes is still read whole.
    #[test]
    fn a_snapshot_of_version_13_with_requests_is_still_read() {
        let mut engine = engine();
        take(&mut engine, 1_000, "p0", "c1");
        take(&mut engine, 1_001, "p1", "c1");
        let mut bytes = Vec::new();
        engine.snapshot_into(&mut bytes).unwrap();
        let scenes = engine.core.decide.as_ref().and_then(|d| d.save_scenes());
        let scenes = postcard::to_allocvec(&scenes).unwrap();
        let requests = engine.requests.as_ref().map(|r| r.capture());
        let requests = postcard::to_allocvec(&requests).unwrap();
        assert!(scenes.len() > 1 && requests.len() > 1);
        let end = bytes.len() - 4;
        let head = end - scenes.len() - requests.len();
        assert_eq!(&bytes[head..head + scenes.len()], &scenes[..]);
        let mut old = bytes[..head].to_vec();
        old.extend_from_slice(&requests);
        old.extend_from_slice(&scenes);
        old[8..12].copy_from_slice(&13u32.to_le_bytes());
        let len = (old.len() + 4) as u64;
        old[12..20].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        let mut restored = engine_restored(&old);
        let mut again = Vec::new();
        restored.snapshot_into(&mut again).unwrap();
        assert_eq!(again, bytes);
        assert!(matches!(
            take(&mut restored, 2_000, "p1", "c1"),
            Answer::Repeated(_)
        ));
    }

    /// A dry run answers from a copy that remembers no request, as the
    /// engine itself would: a remembered id gets what it got, a new one
    /// what a request would get, and the engine is unchanged.
    #[test]
    fn a_dry_run_answers_as_the_engine_would_and_changes_nothing() {
        let mut engine = engine();
        take(&mut engine, 1_000, "p0", "c1");
        let dry = |engine: &Engine<Record>, id: &str| {
            let request = Request {
                id: Value::from(id),
                scene: Some("payment".into()),
                note: Arc::from(&b""[..]),
                position: None,
                dry_run: true,
                shed_shadow: false,
            };
            engine
                .request_dry(1_500, request, payment(engine, "c1"))
                .unwrap()
        };
        let mut before = Vec::new();
        engine.snapshot_into(&mut before).unwrap();
        assert!(matches!(dry(&engine, "p0"), Answer::Repeated(r) if &*r.note == b"p0"));
        let Answer::Taken { decisions, .. } = dry(&engine, "p9") else {
            panic!("a new id is taken")
        };
        assert_eq!(&*decisions[0].outcome, "review");
        let mut after = Vec::new();
        engine.snapshot_into(&mut after).unwrap();
        assert_eq!(before, after);
        let Answer::Taken {
            decisions: real, ..
        } = take(&mut engine, 1_500, "p9", "c1")
        else {
            panic!("a new id is taken")
        };
        assert_eq!(real[0].outcome, decisions[0].outcome);
        assert_eq!(real[0].rules, decisions[0].rules);
    }
}
