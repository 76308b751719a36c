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

use crate::engine::decide::Decision;
use crate::primitives::Timestamp;
use crate::value::Value;

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
/// order of their times) to forget the oldest.
#[derive(Clone, Debug, Default)]
pub(super) struct Requests {
    pub(super) memory: RequestMemory,
    by_id: HashMap<Value, Remembered>,
    order: VecDeque<(Timestamp, Value)>,
    pub(super) stats: RequestStats,
}

/// What a snapshot keeps of [`Requests`]: the memory's bounds, each
/// request in the order taken, and the counts.
#[derive(Serialize, Deserialize)]
pub(super) struct SavedRequests {
    memory: RequestMemory,
    entries: Vec<SavedEntry>,
    stats: RequestStats,
}

#[derive(Serialize, Deserialize)]
struct SavedEntry(
    #[serde(with = "cepheid_core::persist::via")] Value,
    Remembered,
);

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
        while let Some((at, _)) = self.order.front() {
            if *at > horizon {
                break;
            }
            let (_, id) = self.order.pop_front().expect("a front");
            self.by_id.remove(&id);
            self.stats.expired += 1;
        }
        self.stats.remembered = self.by_id.len() as u64;
    }

    pub(super) fn get(&self, id: &Value) -> Option<&Remembered> {
        self.by_id.get(id)
    }

    /// Remembers `id` (a new one).
    pub(super) fn remember(&mut self, id: Value, remembered: Remembered) {
        while self.by_id.len() >= self.memory.max_entries.max(1) {
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&old);
            self.stats.forgotten_early += 1;
        }
        self.order.push_back((remembered.at, id.clone()));
        self.by_id.insert(id, remembered);
        self.stats.taken += 1;
        self.stats.remembered = self.by_id.len() as u64;
    }

    /// The requests remembered, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Value, &Remembered)> {
        (self.order.iter()).filter_map(|(_, id)| Some((id, self.by_id.get(id)?)))
    }

    /// The bytes it holds, about: each entry's id, note and decisions
    /// with their heap parts, the table's slot and the order's.
    pub(super) fn bytes(&self) -> usize {
        let per = std::mem::size_of::<(Value, Remembered)>()
            + 1
            + std::mem::size_of::<(Timestamp, Value)>();
        let heap: usize = (self.by_id.iter())
            .map(|(id, r)| 2 * value_heap(id) + r.note.len() + decisions_heap(&r.decisions))
            .sum();
        self.by_id.capacity() * per + heap
    }

    pub(super) fn save(&self) -> SavedRequests {
        SavedRequests {
            memory: self.memory,
            entries: (self.iter())
                .map(|(id, r)| SavedEntry(id.clone(), r.clone()))
                .collect(),
            stats: self.stats,
        }
    }

    pub(super) fn restore(saved: SavedRequests) -> Requests {
        let mut requests = Requests::new(saved.memory);
        for SavedEntry(id, r) in saved.entries {
            requests.order.push_back((r.at, id.clone()));
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
            if let Some((_, old)) = requests.order.pop_front() {
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
    ///   [`Answer::UnknownScene`].
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
        let ts = match self.current_watermark() {
            Some(watermark) if now <= watermark => watermark.saturating_add(1),
            _ => now,
        };
        self.tick(ts, sink);
        let requests = self.requests.get_or_insert_with(Box::default);
        requests.expire(ts);
        if let Some(remembered) = requests.get(&request.id) {
            let remembered = remembered.clone();
            requests.stats.repeated += 1;
            return Answer::Repeated(remembered);
        }
        let scene = match &request.scene {
            None => None,
            Some(name) => match (self.core.decide.as_ref()).and_then(|d| d.scene_named(name)) {
                Some(i) => Some(i),
                None => return Answer::UnknownScene,
            },
        };
        let seq = self.core.clock.next_arrival();
        if let Some(decide) = &mut self.core.decide {
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
        self.core
            .push_positioned(ts, event, request.position, &mut catch);
        self.core.run_through(ts, &mut catch);
        self.core.reap();
        let mut decisions = catch.caught;
        for d in &mut decisions {
            // (the arrival number only picked them out: a snapshot keeps
            // none, so a restored engine's are alike)
            d.arrival = 0;
        }
        let only = (self.core.decide.as_mut()).and_then(|d| d.only.take());
        let refused = match (only, scene) {
            (Some(only), Some(i)) if only.refused => {
                (self.core.decide.as_ref()).map(|d| d.condition(i))
            }
            _ => None,
        };
        let requests = self.requests.get_or_insert_with(Box::default);
        requests.remember(
            request.id,
            Remembered {
                at: ts,
                note: request.note,
                decisions: decisions.clone(),
                refused: refused.clone(),
            },
        );
        match refused {
            Some(condition) => Answer::NotInScene { at: ts, condition },
            None => Answer::Taken { at: ts, decisions },
        }
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
        let mut scratch = self.duplicate()?;
        Ok(scratch.request(now, request, event, &mut super::decide::Nothing))
    }
}
