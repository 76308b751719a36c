//! The decision service behind the HTTP front (issue 63): requests logged
//! (the write-ahead log, [`crate::wal`]), decided by one engine that a
//! `cepheid_runtime` run drives from the log as its source, answered when
//! the engine took them.
//!
//! A request's way: the front parses it; [`Service`] admits it (a bound
//! on the requests in flight: past it a 429, nothing logged; a deadline
//! it cannot meet: the scene's fallback, degraded, still logged and
//! applied), appends it to the log and waits; the log makes it durable
//! (group commit) and hands it to the run (`source::LogSource`); the
//! run's engine takes it at once ([`cepheid_engine::Engine::request`]:
//! into the scene it names, once per event id) and its answer comes back
//! on the run's thread (`answers::ServeAnswers`). The run checkpoints
//! as `cepheid run` does; a restart replays the log after the last
//! checkpoint, so the engine, its remembered requests and the outputs are
//! what they were (`docs/serve.md`).

mod answers;
mod body;
mod lists;
mod note;
mod source;
#[cfg(test)]
mod tests;
mod topic;

pub use topic::{EventsFeed, EventsTaken, ListRecord, RulesFeed, Taken};

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use cepheid_engine::engine::{Request, RequestMemory};
use cepheid_engine::{Decision, Rules};
use cepheid_runtime::{Config, Handle, Input, Report, Runtime, Summary, Time};
use tokio::sync::oneshot;

use crate::decider::{
    ApiError, BoxFuture, DecideCall, Decided, Decider, ErrorCode, EventCall, ListCall, ListChanged,
    Mode, Recorded, SceneView, ScenesView,
};
use crate::wal::{Entry, FsyncPolicy, Input as Logged, Wal, WalOptions};
use body::{decision_body, decision_id, seq_of, DecisionBody, SceneFacts};
use note::Note;
pub use source::logged_request;
use source::{Live, LogSource};

/// How the service runs (`cepheid serve`'s options).
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// The folder of its state: the log (`log/`) and the run's
    /// checkpoints (`checkpoints/`).
    pub state: PathBuf,
    /// When the log's writes are made durable.
    pub fsync: FsyncPolicy,
    /// How long a request is remembered (a retry within it gets the same
    /// answer; `GET /v1/decisions/{id}` finds it) and the log kept.
    pub retention: Duration,
    /// The size past which the log goes on in a new segment file (64 MiB):
    /// retention releases whole segments.
    pub segment_size: u64,
    /// The most requests remembered.
    pub remember: usize,
    /// The most requests in flight (admitted, not answered); past it a
    /// 429. `0`: every request is refused with a 503 (`unavailable`),
    /// nothing logged.
    pub queue: usize,
    /// How often the run checkpoints.
    pub checkpoint_every: Duration,
    /// How often the clock ticks (logged: timeouts fire at the same
    /// points on a replay) while nothing else moves time.
    pub tick_every: Duration,
    /// The alerts' file (`None`: `STATE/alerts.jsonl`).
    pub output: Option<PathBuf>,
    /// The decisions' file (`None`: `STATE/decisions.jsonl`).
    pub decisions: Option<PathBuf>,
    /// The records of `shadow` patterns (`None`: `STATE/shadow.jsonl`),
    /// never among the alerts (`docs/rule-lab.md`).
    pub shadow_output: Option<PathBuf>,
    /// The audit records of the changes of rules the service applies or
    /// refuses, each where the log holds it (`None`:
    /// `STATE/audit.jsonl`; `docs/rule-lab.md`, "Audit records").
    pub audit: Option<PathBuf>,
    /// Read the pattern paths again when they change, and log the new
    /// rules (`Entry::Rules`): the run applies them when it takes that
    /// entry, on a replay too.
    pub watch: bool,
    /// The list files (`--list NAME=PATH`): read at the start and, with
    /// [`watch`](ServiceOptions::watch), when they change; their changes
    /// go through the log (`docs/serve.md`, "Lists").
    pub lists: Vec<cepheid_runtime::lists::ListFile>,
    /// Do the rules change through a rules topic (`cepheid serve
    /// --rules-topic`, [`Service::rules_feed`])? Then the rules given to
    /// [`Service::start`] are logged at the first start only: a restart
    /// goes on with the rules in force at the end of the log (`false`:
    /// the given rules are logged as a change when they are not those).
    pub rules_topic: bool,
}

impl ServiceOptions {
    /// What its engine remembers of requests: each for
    /// [`retention`](ServiceOptions::retention) of the engine's time, at
    /// most [`remember`](ServiceOptions::remember) of them. A replay of a
    /// log remembers as the defaults say (the log does not say what its
    /// service was started with).
    pub fn request_memory(&self) -> RequestMemory {
        RequestMemory {
            retention_ms: i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX),
            max_entries: self.remember,
        }
    }

    /// The defaults, with its state in `state`.
    pub fn new(state: impl Into<PathBuf>) -> ServiceOptions {
        ServiceOptions {
            state: state.into(),
            fsync: FsyncPolicy::Always,
            retention: Duration::from_secs(24 * 3600),
            segment_size: WalOptions::default().segment_size,
            remember: 1_000_000,
            queue: 4096,
            checkpoint_every: Duration::from_secs(10),
            tick_every: Duration::from_secs(1),
            output: None,
            decisions: None,
            shadow_output: None,
            audit: None,
            watch: false,
            lists: Vec::new(),
            rules_topic: false,
        }
    }
}

/// Opens the run's sink from its config ([`Service::start_with_sink`]).
pub type OpenSink<'a> =
    &'a mut dyn FnMut(&mut Config) -> Result<Option<Box<dyn cepheid_runtime::Sink>>, StartError>;

/// Why the service did not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A counter.
#[derive(Default, Debug)]
pub(crate) struct Count(AtomicU64);

impl Count {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the service counts (`/metrics`).
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) decided: Count,
    pub(crate) dry_runs: Count,
    pub(crate) recorded: Count,
    pub(crate) repeated: Count,
    pub(crate) conflicts: Count,
    pub(crate) not_in_scene: Count,
    pub(crate) degraded_deadline: Count,
    pub(crate) degraded_late: Count,
    pub(crate) degraded_late_unlogged: Count,
    pub(crate) degraded_log: Count,
    pub(crate) shed: Count,
    pub(crate) refused_queue: Count,
    pub(crate) refused_log_queue: Count,
    pub(crate) unavailable: Count,
    pub(crate) late_answers: Count,
    /// Records of a rules topic logged as changes of rules, refused, and
    /// reads of the topic that failed (`topic.rs`).
    pub(crate) topic_logged: Count,
    pub(crate) topic_refused: Count,
    pub(crate) topic_read_errors: Count,
    /// Records of events topics logged as events, refused, and reads of
    /// them that failed (`topic.rs`, [`EventsFeed`]).
    pub(crate) events_topic_logged: Count,
    pub(crate) events_topic_refused: Count,
    pub(crate) events_topic_read_errors: Count,
    /// The run's checkpoints: how many, the time the run's thread stood
    /// still for them (the sink's prepare and the engine's snapshot:
    /// requests wait behind it), the longest, and the last one's size
    /// ([`Checkpoints`]).
    pub(crate) checkpoints: Count,
    pub(crate) checkpoint_stall_us: Count,
    pub(crate) checkpoint_stall_max_us: AtomicU64,
    pub(crate) checkpoint_bytes: AtomicU64,
}

/// The run's report, its checkpoints counted for `/metrics` on the way
/// ([`RunEvent::Checkpoint`](cepheid_runtime::RunEvent::Checkpoint)).
struct Checkpoints {
    inner: Box<dyn Report>,
    shared: Arc<Shared>,
}

impl Report for Checkpoints {
    fn notice(&mut self, notice: cepheid_runtime::Notice) {
        self.inner.notice(notice);
    }
    fn started(&mut self, size: Option<u64>, offset: u64) {
        self.inner.started(size, offset);
    }
    fn progress(&mut self, offset: u64) {
        self.inner.progress(offset);
    }
    fn observes(&self) -> bool {
        self.inner.observes()
    }
    fn records_wanted(&self) -> usize {
        self.inner.records_wanted()
    }
    fn tick(&mut self, view: &cepheid_runtime::RunView<'_>) {
        self.inner.tick(view);
    }
    fn event(&mut self, event: &cepheid_runtime::RunEvent<'_>) {
        if let cepheid_runtime::RunEvent::Checkpoint { stall, bytes, .. } = event {
            let c = &self.shared.counters;
            let us = u64::try_from(stall.as_micros()).unwrap_or(u64::MAX);
            c.checkpoints.inc();
            c.checkpoint_stall_us.add(us);
            c.checkpoint_stall_max_us.fetch_max(us, Ordering::Relaxed);
            c.checkpoint_bytes.store(*bytes, Ordering::Relaxed);
        }
        self.inner.event(event);
    }
}

/// What a request waiting for the engine gets.
pub(crate) enum Reply {
    Body(DecisionBody),
    Recorded { repeated: bool },
    Error(ApiError),
}

/// Who waits for the engine's answer to a logged request.
pub(crate) enum Waiter {
    /// A decision request: the answer goes to it.
    Decide {
        tx: oneshot::Sender<Reply>,
        explain: bool,
        /// The run took it ([`Shared::taking`]): past its deadline, its
        /// client waits for the answer (late) rather than the fallback.
        taken: bool,
    },
    /// A request answered at admission (degraded): its answer is kept.
    Answered,
    /// A request answered degraded at its deadline, before the run took
    /// it ([`Shared::degrade_late`]): the run takes it degraded, and its
    /// answer is kept.
    Degraded,
    /// An event of a batch.
    Events(Arc<EventsBatch>),
}

/// A batch of events waiting for the engine to take them all.
pub(crate) struct EventsBatch {
    state: Mutex<BatchState>,
}

struct BatchState {
    left: usize,
    recorded: u64,
    repeated: u64,
    error: Option<ApiError>,
    tx: Option<oneshot::Sender<Result<(u64, u64), ApiError>>>,
}

impl EventsBatch {
    pub(crate) fn took(&self, reply: Reply) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match reply {
            Reply::Recorded { repeated: false } => s.recorded += 1,
            Reply::Recorded { repeated: true } => s.repeated += 1,
            Reply::Error(e) => {
                s.error.get_or_insert(e);
            }
            Reply::Body(_) => s.recorded += 1,
        }
        s.left = s.left.saturating_sub(1);
        if s.left == 0 {
            if let Some(tx) = s.tx.take() {
                let result = match s.error.take() {
                    Some(e) => Err(e),
                    None => Ok((s.recorded, s.repeated)),
                };
                let _ = tx.send(result);
            }
        }
    }
}

/// The decisions kept for `GET /v1/decisions/{id}`, by seq, for the
/// retention.
#[derive(Default)]
struct Kept {
    by_seq: HashMap<u64, (i64, Arc<[u8]>)>,
    order: VecDeque<(i64, u64)>,
    /// Seqs below this were let go (their retention ended).
    forgotten_below: u64,
    /// The event ids of decision requests logged or in flight within the
    /// retention, with the time each was first seen: a request whose id
    /// is known is never degraded at admission (its answer is the first
    /// one's, which the engine gives), only a first one may be.
    ids: HashMap<Arc<str>, i64>,
    /// The ids in the order seen, to let them go.
    id_order: VecDeque<(i64, Arc<str>)>,
}

impl Kept {
    /// `id` seen at `at`: false when it was known already.
    fn see(&mut self, id: &Arc<str>, at: i64, retention_ms: i64) -> bool {
        let horizon = at.saturating_sub(retention_ms);
        while let Some((first, _)) = self.id_order.front() {
            if *first > horizon {
                break;
            }
            let (first, old) = self.id_order.pop_front().expect("a front");
            if self.ids.get(&old) == Some(&first) {
                self.ids.remove(&old);
            }
        }
        if self.ids.contains_key(id) {
            return false;
        }
        self.ids.insert(Arc::clone(id), at);
        self.id_order.push_back((at, Arc::clone(id)));
        true
    }
}

/// What the front's threads, the log's writer and the run share.
pub(crate) struct Shared {
    /// The scenes of the rules in force, and their version.
    book: std::sync::RwLock<Arc<Book>>,
    /// The version of the rules the log's reader is at (what a resumed
    /// run's checkpoint says, then 1 more per change of rules read).
    pub(crate) version: AtomicU64,
    retention_ms: i64,
    queue: usize,
    in_flight: AtomicUsize,
    /// Who waits for which logged request; `None` once the run ended
    /// (a request logged then is answered 503 at once, never left
    /// waiting).
    waiting: Mutex<Option<HashMap<u64, Waiter>>>,
    dry: Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>,
    dry_next: AtomicU64,
    kept: Mutex<Kept>,
    ready: AtomicBool,
    /// Has the run ended (stopped, or failed)?
    gone: AtomicBool,
    /// Did the last write of the log fail (said once, until one succeeds)?
    log_failing: AtomicBool,
    pub(crate) counters: Counters,
    /// The recent time from logging to answer, in microseconds (an
    /// average that follows the load).
    recent_us: AtomicU64,
    live: Mutex<Sender<Live>>,
    /// What appends to the log.
    log: OnceLock<crate::wal::Appender>,
    /// The log itself (its retention; closed when the service stops, its
    /// folder's lock then let go).
    wal: Mutex<Option<Wal>>,
    /// The last seq a checkpoint holds.
    checkpointed: AtomicU64,
    /// Where a test holds the run's thread (`tests.rs`).
    #[cfg(test)]
    pub(crate) holds: tests::Holds,
    /// The last time a request was logged (ms), for the ticks.
    last_logged: AtomicU64,
    /// Per rules topic, the offset after the last record logged, as the
    /// log's reader read it (`topic.rs`).
    topics: Mutex<topic::Offsets>,
}

impl Shared {
    /// A request took `took` from admission to its answer: into the
    /// recent time (an average that follows the load).
    fn recent(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let old = self.recent_us.load(Ordering::Relaxed);
        self.recent_us.store((old * 7 + us) / 8, Ordering::Relaxed);
    }

    /// The scenes in force.
    pub(crate) fn book(&self) -> Arc<Book> {
        Arc::clone(&self.book.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The scenes of `rules` (a change of rules read from the log, the
    /// `version`th) are in force from now on.
    pub(crate) fn rules_changed(&self, rules: &Rules, version: u64) {
        let mut probe: cepheid_engine::Engine = cepheid_engine::Engine::new();
        if probe.add(rules).is_ok() {
            let declared = probe.declarations();
            self.set_book(Book::of(
                probe.scenes(),
                declared,
                version,
                self.retention_ms,
            ));
        }
    }

    /// The scenes in force are `engine`'s, as the run starts (a resumed
    /// run's, or one started from a checkpoint, are the checkpoint's).
    pub(crate) fn scenes_of(&self, engine: &cepheid_engine::Engine<cepheid_engine::Record>) {
        let version = self.version.load(Ordering::Acquire);
        let declared = engine.declarations();
        let book = Book::of(engine.scenes(), declared, version, self.retention_ms);
        self.set_book(book);
    }

    /// The rules changed: `book` is in force.
    pub(crate) fn set_book(&self, book: Book) {
        *self.book.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(book);
    }

    pub(crate) fn body(
        &self,
        decision: &Decision,
        note: &Note,
        id: &Arc<str>,
        repeated: bool,
        explain: bool,
    ) -> DecisionBody {
        let book = self.book();
        let facts = book.scenes.get(&*decision.scene).map(|(f, _)| f);
        decision_body(decision, note, id, facts, repeated, explain)
    }

    pub(crate) fn take_waiter(&self, seq: u64) -> Option<Waiter> {
        (self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut())?
        .remove(&seq)
    }

    /// The run is about to take the request logged at `seq`: true when
    /// its client was answered degraded at its deadline before
    /// ([`Shared::degrade_late`]: the engine is to take it degraded);
    /// else from now on its client waits for the run's answer.
    pub(crate) fn taking(&self, seq: u64) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.as_mut().and_then(|w| w.get_mut(&seq)) {
            Some(Waiter::Decide { taken, .. }) => {
                *taken = true;
                false
            }
            Some(Waiter::Degraded) => true,
            _ => false,
        }
    }

    /// The deadline of the request logged at `seq` passed: true when the
    /// run has not taken it yet, and then it never will but degraded
    /// ([`Shared::taking`]): its client is answered the fallback now.
    fn degrade_late(&self, seq: u64) -> bool {
        #[cfg(test)]
        self.holds.late_tries.fetch_add(1, Ordering::AcqRel);
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.as_mut().and_then(|w| w.get_mut(&seq)) {
            Some(waiter @ Waiter::Decide { taken: false, .. }) => {
                *waiter = Waiter::Degraded;
                true
            }
            _ => false,
        }
    }

    /// `waiter` waits for the answer to the request logged at `seq`
    /// (dropped, its request answered 503, when the run has ended).
    fn wait_for(&self, seq: u64, waiter: Waiter) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = waiting.as_mut() {
            waiting.insert(seq, waiter);
        }
    }

    pub(crate) fn answer_dry(&self, number: u64, reply: Reply) {
        let tx = (self.dry.lock().unwrap_or_else(|p| p.into_inner()).as_mut())
            .and_then(|dry| dry.remove(&number));
        if let Some(tx) = tx {
            let _ = tx.send(reply);
        }
    }

    /// The run ended: nothing will be answered any more; whoever waits is
    /// answered 503 (their senders dropped), and readiness is false.
    fn run_ended(&self) {
        self.ready.store(false, Ordering::Release);
        self.gone.store(true, Ordering::Release);
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let dry = self.dry.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop((waiting, dry));
    }

    /// Keeps `body` (of the request logged at `seq`, at `stamp`) for
    /// `GET /v1/decisions/{id}`.
    pub(crate) fn store(&self, seq: u64, stamp: i64, body: &DecisionBody) {
        let Ok(bytes) = serde_json::to_vec(body) else {
            return;
        };
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.see(&body.event_id, stamp, self.retention_ms);
        kept.by_seq.insert(seq, (stamp, bytes.into()));
        kept.order.push_back((stamp, seq));
        let horizon = stamp.saturating_sub(self.retention_ms);
        while let Some(&(at, old)) = kept.order.front() {
            if at > horizon {
                break;
            }
            kept.order.pop_front();
            kept.by_seq.remove(&old);
            kept.forgotten_below = kept.forgotten_below.max(old + 1);
        }
    }

    /// Is the service loaded: more than half its queue bound of
    /// requests in flight? Its requests' shadow rules are then shed
    /// (`shadow_shed`).
    fn loaded(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) * 2 > self.queue
    }

    /// A decision request with `id` comes: true when it is the first
    /// (within the retention) the service sees, which alone may be
    /// answered degraded at admission.
    fn first_of(&self, id: &Arc<str>) -> bool {
        let now = crate::wal::wall_clock_ms();
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.see(id, now, self.retention_ms)
    }

    /// The request with `id` that [`Shared::first_of`] saw first was not
    /// logged: the id is free again.
    fn not_logged(&self, id: &Arc<str>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.ids.remove(id);
    }

    /// The log was read again up to `seq` (the end it had at the start).
    pub(crate) fn replayed(&self, _seq: u64) {
        self.ready.store(true, Ordering::Release);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Logs `text` as a change of rules from `origin`.
    pub(crate) fn log_rules(&self, text: String, origin: &str) {
        if let Some(log) = self.log.get() {
            let said = origin.to_string();
            let logged = log.append(
                Entry::Rules {
                    text,
                    origin: origin.to_string(),
                },
                Box::new(move |result| {
                    if let Err(e) = result {
                        eprintln!("cepheid serve: the rules of {said} could not be logged: {e}");
                    }
                }),
            );
            if let Err(e) = logged {
                eprintln!("cepheid serve: the rules of {origin} could not be logged: {e}");
            }
        }
    }

    /// A checkpoint holding the log up to `seq` was committed: the log
    /// before it may go (as its retention allows).
    pub(crate) fn checkpointed(&self, seq: u64) {
        self.checkpointed.store(seq, Ordering::Release);
        if let Some(wal) = self.wal.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = wal.release_before(seq + 1);
        }
    }

    /// The run could not decode the event of `request`: it was not taken.
    pub(crate) fn not_taken(&self, request: &Request) {
        let Some(note) = Note::decode(&request.note) else {
            return;
        };
        let error = ApiError {
            status: 400,
            code: ErrorCode::InvalidRequest,
            message: format!(
                "event `{}` could not be read as an event of the rules in force: it was not taken",
                answers::event_id(&request.id)
            ),
            field: Some("event".into()),
            retry_after: None,
        };
        if note.dry_run {
            return self.answer_dry(note.seq, Reply::Error(error));
        }
        match self.take_waiter(note.seq) {
            Some(Waiter::Decide { tx, .. }) => {
                let _ = tx.send(Reply::Error(error));
            }
            Some(Waiter::Events(batch)) => batch.took(Reply::Error(error)),
            _ => {}
        }
    }
}

/// The service: its log, its run and what the front asks of it.
pub struct Service {
    shared: Arc<Shared>,
    handle: Handle,
    run: Option<JoinHandle<Summary>>,
    ticker: Option<JoinHandle<()>>,
    stop_ticks: Arc<AtomicBool>,
}

impl Service {
    /// Starts the service of `rules` (the paths `patterns` they were read
    /// from) with `options`: opens the log (a torn tail cut and said to
    /// `report`), resumes the run from its last checkpoint and replays
    /// the log after it (readiness is false meanwhile), then takes
    /// requests.
    pub fn start(
        rules: &Rules,
        patterns: Vec<PathBuf>,
        options: &ServiceOptions,
        report: Box<dyn Report>,
    ) -> Result<Service, StartError> {
        Service::start_with_sink(rules, patterns, options, report, &mut |_| Ok(None))
    }

    /// [`Service::start`] with the run's sink opened by `open_sink` from
    /// the run's [`Config`] (its outputs as `options` name them) before
    /// any request is taken: the command's Kafka sink (`--output
    /// kafka://...`), which takes the outputs it writes out of the
    /// config, exactly once with the run's checkpoints as `cepheid run`'s
    /// (`docs/serve.md`, "Kafka outputs"). `Ok(None)`: the files.
    pub fn start_with_sink(
        rules: &Rules,
        patterns: Vec<PathBuf>,
        options: &ServiceOptions,
        report: Box<dyn Report>,
        open_sink: OpenSink<'_>,
    ) -> Result<Service, StartError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            StartError(format!("cepheid serve: {what}: {e}"))
        };
        std::fs::create_dir_all(&options.state).map_err(|e| {
            failed(
                &format!("cannot make the state folder {}", options.state.display()),
                &e,
            )
        })?;
        let log_dir = options.state.join("log");
        let (shared, live_tx, live_rx) = shared_of(rules, &patterns, options)?;
        let patterns_kept = patterns.clone();
        let to_run = live_tx;
        let consumer = Box::new(move |entries: &[Arc<crate::wal::LoggedEntry>]| {
            for entry in entries {
                let _ = to_run.send(Live::Logged(Arc::clone(entry)));
            }
        });
        let wal_options = WalOptions {
            fsync: options.fsync,
            retention: options.retention,
            segment_size: options.segment_size,
            consumer: Some(consumer),
            ..WalOptions::default()
        };
        let (wal, recovered) =
            Wal::open(&log_dir, wal_options).map_err(|e| failed("the log", &e))?;
        let mut report = report;
        if let Some(torn) = &recovered.torn {
            report.notice(cepheid_runtime::Notice::new(
                cepheid_runtime::Level::Warning,
                format!("cepheid serve: the log's last group was torn by a crash and cut away ({torn:?}): no answer was given for it"),
            ));
        }
        let end = recovered.next_seq.saturating_sub(1);
        let _ = shared.log.set(wal.appender());
        *shared.wal.lock().unwrap_or_else(|p| p.into_inner()) = Some(wal);
        // (the list files, checked now; their changes since they were
        // last logged are logged once the log is read again, after the
        // command's rules and before any request: `lists.rs`)
        let lists = {
            let mut probe = Config::new(Input::Stdin, patterns.clone()).engine();
            probe.add(rules).map_err(|e| failed("the rules", &e))?;
            lists::Lists::open(
                options.lists.clone(),
                probe.declarations().clone(),
                &options.state,
            )
            .map_err(|e| StartError(format!("cepheid serve: {e}")))?
        };

        let command = watched_text(&patterns).ok_or_else(|| {
            StartError("cepheid serve: the rules' files cannot be read again".into())
        })?;
        let source_lists = Arc::new(Mutex::new(lists));
        let source = LogSource::new(log_dir, end, live_rx, Arc::clone(&shared))
            .map_err(|e| failed("the log", &e))?
            .with_command(command, Arc::clone(&source_lists))
            .with_topic_rules(options.rules_topic);
        let mut config = log_config(patterns);
        config.checkpoint = Some(options.state.join("checkpoints"));
        config.checkpoint_every.time = Some(options.checkpoint_every);
        config.output = Some(
            options
                .output
                .clone()
                .unwrap_or_else(|| options.state.join("alerts.jsonl")),
        );
        config.decisions = Some(
            (options.decisions.clone()).unwrap_or_else(|| options.state.join("decisions.jsonl")),
        );
        config.shadow_output = Some(
            (options.shadow_output.clone()).unwrap_or_else(|| options.state.join("shadow.jsonl")),
        );
        config.audit =
            Some((options.audit.clone()).unwrap_or_else(|| options.state.join("audit.jsonl")));
        // (and of every change of a list: each goes through the log)
        config.audit_lists = true;
        let sink = open_sink(&mut config)?;
        let answers = Box::new(answers::ServeAnswers {
            shared: Arc::clone(&shared),
        });
        let runtime = log_run(
            config,
            rules,
            options,
            source,
            sink,
            Box::new(Checkpoints {
                inner: report,
                shared: Arc::clone(&shared),
            }),
            answers,
        )?;
        let handle = runtime.handle();
        let ended = Arc::clone(&shared);
        let run = std::thread::Builder::new()
            .name("cepheid-serve-run".into())
            .spawn(move || {
                let summary = runtime.run();
                ended.run_ended();
                summary
            })
            .map_err(|e| failed("cannot start the run's thread", &e))?;
        let stop_ticks = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (shared, stop, every) = (
                Arc::clone(&shared),
                Arc::clone(&stop_ticks),
                options.tick_every,
            );
            let watched = options.watch.then(|| Watched {
                rules: (watched_text(&patterns_kept), patterns_kept),
                lists: Arc::clone(&source_lists),
            });
            std::thread::Builder::new()
                .name("cepheid-serve-ticks".into())
                .spawn(move || tick(&shared, &stop, every, watched))
                .map_err(|e| failed("cannot start the clock's thread", &e))?
        };
        Ok(Service {
            shared,
            handle,
            run: Some(run),
            ticker: Some(ticker),
            stop_ticks,
        })
    }

    /// What a rules topic's reader hands its records to
    /// (`cepheid serve --rules-topic`): each logged as a change of rules.
    pub fn rules_feed(&self) -> RulesFeed {
        RulesFeed {
            shared: Arc::clone(&self.shared),
        }
    }

    /// What an events topic's reader hands its records to (`cepheid serve
    /// --events-topic`): each logged as an event of no scene.
    pub fn events_feed(&self) -> EventsFeed {
        EventsFeed {
            shared: Arc::clone(&self.shared),
        }
    }

    /// What the HTTP front asks.
    pub fn decider(&self) -> Arc<dyn Decider> {
        Arc::new(Front {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Stops taking requests, lets the run take what the log holds,
    /// checkpoint and end, and says how it went.
    pub fn stop(mut self, why: &str) -> Option<Summary> {
        self.stop_ticks.store(true, Ordering::Release);
        self.shared.ready.store(false, Ordering::Release);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        self.handle.stop(why);
        let summary = self.run.take().and_then(|run| run.join().ok());
        // (the log closed here, its lock let go: a service started next on
        // the same state opens it, whatever threads still hold a handle)
        let wal = self
            .shared
            .wal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(wal) = wal {
            if let Err(e) = wal.close() {
                eprintln!("cepheid serve: closing the log: {e}");
            }
        }
        summary
    }
}

/// The scenes of a rule set as the service answers for them: each one's
/// fallback, rules and default deadline, and what `GET /v1/scenes` says.
pub(crate) struct Book {
    pub(crate) scenes: HashMap<String, (SceneFacts, Duration)>,
    pub(crate) view: ScenesView,
    /// The lists the rules declare, in their order, each with its `for`
    /// (ms; `None`: until removed): what `POST /v1/lists/{list}` changes.
    pub(crate) lists: Vec<(String, Option<i64>)>,
}

impl Book {
    /// The book of `scenes`, the rule set's `version`.
    pub(crate) fn of<'a>(
        scenes: impl Iterator<Item = &'a cepheid_core::scene::Scene>,
        declarations: &cepheid_core::lookup::Declarations,
        version: u64,
        retention_ms: i64,
    ) -> Book {
        let mut book = HashMap::new();
        let mut view = Vec::new();
        for scene in scenes {
            let name = |o: cepheid_core::scene::OutcomeId| scene.outcomes[o.index()].to_string();
            let rules: Vec<String> = scene.rules.iter().map(|r| r.rule.clone()).collect();
            let facts = SceneFacts {
                fallback: scene.outcomes[scene.fallback.index()].clone(),
                rules: rules.clone(),
            };
            let deadline = Duration::from_millis(scene.deadline.max(0) as u64);
            book.insert(scene.name.clone(), (facts, deadline));
            view.push(SceneView {
                name: scene.name.clone(),
                outcomes: scene.outcomes.iter().map(|o| o.to_string()).collect(),
                default: name(scene.default),
                fallback: name(scene.fallback),
                late: name(scene.late),
                deadline_ms: scene.deadline.max(0) as u64,
                hit: match scene.hit {
                    cepheid_core::scene::HitPolicy::First => cepheid_api::Hit::First,
                    _ => cepheid_api::Hit::All,
                },
                rules,
            });
        }
        let lists = (declarations.lists.iter())
            .map(|l| (l.name.to_string(), l.expiry))
            .collect();
        Book {
            scenes: book,
            view: ScenesView {
                rules_version: version,
                retention_ms: retention_ms.max(0) as u64,
                scenes: view,
            },
            lists,
        }
    }
}

/// What the service's parts share, made from the rules' scenes; and the
/// channel of what the run reads besides the log's file.
#[allow(clippy::type_complexity)]
fn shared_of(
    rules: &Rules,
    patterns: &[PathBuf],
    options: &ServiceOptions,
) -> Result<(Arc<Shared>, Sender<Live>, std::sync::mpsc::Receiver<Live>), StartError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| StartError(format!("cepheid serve: {what}: {e}"));
    let mut probe = Config::new(Input::Stdin, patterns.to_vec()).engine();
    probe.add(rules).map_err(|e| failed("the rules", &e))?;
    let retention_ms = options.request_memory().retention_ms;
    let book = Book::of(probe.scenes(), probe.declarations(), 1, retention_ms);
    if book.scenes.is_empty() {
        return Err(StartError(
            "cepheid serve: the rules have no scene: a service decides the events of scenes (`scene NAME { ... }`, docs/language.md §11)".into(),
        ));
    }
    let (live_tx, live_rx) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared {
        book: std::sync::RwLock::new(Arc::new(book)),
        version: AtomicU64::new(0),
        retention_ms,
        queue: options.queue,
        in_flight: AtomicUsize::new(0),
        waiting: Mutex::new(Some(HashMap::new())),
        dry: Mutex::new(Some(HashMap::new())),
        dry_next: AtomicU64::new(1),
        kept: Mutex::new(Kept::default()),
        ready: AtomicBool::new(false),
        gone: AtomicBool::new(false),
        log_failing: AtomicBool::new(false),
        counters: Counters::default(),
        recent_us: AtomicU64::new(0),
        live: Mutex::new(live_tx.clone()),
        log: OnceLock::new(),
        wal: Mutex::new(None),
        checkpointed: AtomicU64::new(0),
        last_logged: AtomicU64::new(0),
        topics: Mutex::new(topic::Offsets::new()),
        #[cfg(test)]
        holds: Default::default(),
    });
    Ok((shared, live_tx, live_rx))
}

/// Reads the log in `log_dir` again, as a restarted service would, with
/// `rules`, and sends each decision request's answer as the service gave
/// it (a JSON line; an error as `{"event_id", "decision_id", "error"}`) to
/// `out`, in the log's order: what `cepheid backtest --events wal:DIR`
/// prints, so that what clients were answered can be checked against the
/// log. `output`: where the alerts go; `decisions`: where the decision
/// records go, if anywhere (`cepheid why --event ID --events wal:DIR`
/// reads them). From the log's first entry; or, with `from`, from that
/// checkpoint of the service's (a checkpoint folder's newest, or one
/// `cut-N` folder: `Config::start_from`, only read), the log after it:
/// the answers of the entries after the checkpoint.
pub fn replay(
    rules: &Rules,
    patterns: Vec<PathBuf>,
    (log_dir, from): (&std::path::Path, Option<&std::path::Path>),
    (output, decisions): (PathBuf, Option<PathBuf>),
    out: std::sync::mpsc::Sender<Vec<u8>>,
    report: Box<dyn Report>,
) -> Result<Summary, StartError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| StartError(format!("cepheid: {what}: {e}"));
    // (a log the service started holds its rules first: the replay starts
    // from them, as the service did, whatever `rules` are)
    let first = crate::wal::WalReader::open(log_dir, 0)
        .map_err(|e| failed("the log", &e))?
        .next()
        .transpose()
        .map_err(|e| failed("the log", &e))?;
    let logged = match first.map(|e| e.entry) {
        Some(Entry::Rules { text, .. }) => {
            Some(Rules::parse("the log", &text).map_err(|e| failed("the log's first rules", &e))?)
        }
        _ => None,
    };
    let rules = logged.as_ref().unwrap_or(rules);
    let options = ServiceOptions::new(log_dir);
    let (shared, live_tx, live_rx) = shared_of(rules, &patterns, &options)?;
    // (nothing live: the source ends with the log)
    drop(live_tx);
    *shared.live.lock().unwrap_or_else(|p| p.into_inner()) = std::sync::mpsc::channel().0;
    let end = crate::wal::WalReader::open(log_dir, 0)
        .map_err(|e| failed("the log", &e))?
        .try_fold(0u64, |end, entry| entry.map(|e| e.seq.max(end)))
        .map_err(|e| failed("the log", &e))?;
    let source = LogSource::new(log_dir.to_path_buf(), end, live_rx, Arc::clone(&shared))
        .map_err(|e| failed("the log", &e))?;
    let mut config = log_config(patterns);
    // (the shadow patterns' records beside the alerts: `ALERTS.shadow.jsonl`)
    config.shadow_output = Some(output.with_extension("shadow.jsonl"));
    config.output = Some(output);
    config.decisions = decisions;
    config.start_from = from.map(std::path::Path::to_path_buf);
    let answers = Box::new(answers::ReplayAnswers {
        shared: Arc::clone(&shared),
        out,
    });
    let runtime = log_run(config, rules, &options, source, None, report, answers)?;
    Ok(runtime.run())
}

/// The configuration of a run over a service's log (the service's, a
/// replay's, and what `cepheid why` over a log takes it as): event time
/// the log's stamps (each request at its own, at once: no delay), the
/// log's changes of rules and lists applied at their place (a source's
/// rules stream), the engine's limits the run's defaults; for the rules
/// at `patterns`. The caller adds its outputs and checkpoints.
pub fn log_config(patterns: Vec<PathBuf>) -> Config {
    let mut config = Config::new(Input::Stdin, patterns);
    config.time = Time::Record;
    // (changes of rules come from the log, `Entry::Rules`, as a
    // source's rules stream: each applied when the run takes it)
    config.source_rules = true;
    config.max_delay = Duration::ZERO;
    config
}

/// The run of `rules` with `config` over the log (`source`), its engine
/// remembering requests as `options` say, its answers to `answers`: the
/// service's and a replay's alike; `sink`: the service's Kafka sink, if
/// any.
#[allow(clippy::too_many_arguments)]
fn log_run(
    config: Config,
    rules: &Rules,
    options: &ServiceOptions,
    source: LogSource,
    sink: Option<Box<dyn cepheid_runtime::Sink>>,
    report: Box<dyn Report>,
    answers: Box<dyn cepheid_runtime::Answers>,
) -> Result<Runtime, StartError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| StartError(format!("cepheid serve: {what}: {e}"));
    let mut engine = config.engine();
    engine.add(rules).map_err(|e| failed("the rules", &e))?;
    engine.remember_requests(options.request_memory());
    Ok(
        Runtime::with_source(config, engine, Some(Box::new(source)), sink, report)
            .map_err(|e| failed("the run", &e))?
            .answering(answers),
    )
}

/// The text of the `.cep` files of `patterns` (a folder's in name order),
/// one after the other: what a change of rules logs.
fn watched_text(patterns: &[PathBuf]) -> Option<String> {
    let mut files = Vec::new();
    for path in patterns {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "cep"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut text = String::new();
    for file in files {
        text.push_str(&std::fs::read_to_string(file).ok()?);
        text.push('\n');
    }
    Some(text)
}

/// With `--watch`: the pattern files changed from `known`? Their new
/// rules are logged when they are valid (said, with their diagnostics,
/// and not logged, when they are not).
fn watch_rules(shared: &Shared, (known, patterns): &mut (Option<String>, Vec<PathBuf>)) {
    let now = watched_text(patterns);
    if now.is_none() || now == *known {
        return;
    }
    *known = now.clone();
    let text = now.expect("read");
    // (the files' diagnostics name the files)
    if let Err(e) = cepheid_engine::Rules::load_all(patterns) {
        eprintln!("cepheid serve: the changed rules are not applied:\n{e}");
        return;
    }
    if let Err(why) = checked_rules(&text, "the log") {
        eprintln!("cepheid serve: the changed rules are not applied: {why}");
        return;
    }
    let Some(log) = shared.log.get() else {
        return;
    };
    let names: Vec<String> = patterns.iter().map(|p| p.display().to_string()).collect();
    let origin = format!("--watch {}", names.join(" "));
    let said = |e: &dyn std::fmt::Display| {
        eprintln!("cepheid serve: the changed rules could not be logged: {e}");
    };
    let logged = log.append(
        Entry::Rules { text, origin },
        Box::new(move |result| {
            if let Err(e) = result {
                eprintln!("cepheid serve: the changed rules could not be logged: {e}");
            }
        }),
    );
    if let Err(e) = logged {
        said(&e);
    }
}

/// The rules of `text` (named `origin` in their diagnostics) when they
/// load and have a scene, or why not: a change of rules the service
/// logs. (A file emptied or cut while an editor saves it loads, and would
/// leave the service without a scene: every request a 404.)
fn checked_rules(text: &str, origin: &str) -> Result<Rules, String> {
    let rules = cepheid_engine::Rules::parse(origin, text).map_err(|e| format!("\n{e}"))?;
    let mut probe: cepheid_engine::Engine = cepheid_engine::Engine::new();
    if let Err(e) = probe.add(&rules) {
        return Err(format!("\n{e}"));
    }
    if probe.scenes().next().is_none() {
        return Err("they have no scene (an empty or cut file?); the service goes on with the rules in force".into());
    }
    Ok(rules)
}

/// What `--watch` looks at: the pattern paths (their text as last
/// logged), and the list files if any.
struct Watched {
    rules: (Option<String>, Vec<PathBuf>),
    /// The list files (the source logs their changes at the start, then
    /// `--watch` here).
    lists: Arc<Mutex<lists::Lists>>,
}

/// Logs a clock tick every `every` while no request moved time; with
/// `--watch`, reads the pattern paths again twice a second, and looks at
/// the list files.
fn tick(shared: &Shared, stop: &AtomicBool, every: Duration, mut watched: Option<Watched>) {
    let every = every.max(Duration::from_millis(1));
    let mut looked = std::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(every.min(Duration::from_millis(100)));
        if let Some(watched) = &mut watched {
            if looked.elapsed() >= Duration::from_millis(500)
                && shared.ready.load(Ordering::Acquire)
            {
                looked = std::time::Instant::now();
                watch_rules(shared, &mut watched.rules);
                let mut lists = watched.lists.lock().unwrap_or_else(|p| p.into_inner());
                if let (true, Some(log)) = (lists.any(), shared.log.get()) {
                    if lists.settled() {
                        let said = lists.log_changes(log, false, &mut |n| {
                            eprint!("{}", n.as_str());
                        });
                        if let Err(e) = said {
                            eprintln!("cepheid serve: the lists' change is not logged: {e}");
                        }
                    }
                }
            }
        }
        let now = cepheid_runtime_wall_ms();
        let last = shared.last_logged.load(Ordering::Relaxed) as i64;
        if now.saturating_sub(last) < every.as_millis() as i64
            || !shared.ready.load(Ordering::Acquire)
        {
            continue;
        }
        if let Some(log) = shared.log.get() {
            shared.last_logged.store(now as u64, Ordering::Relaxed);
            let _ = log.append(Entry::Tick { time: now }, Box::new(|_| {}));
        }
    }
}

fn cepheid_runtime_wall_ms() -> i64 {
    crate::wal::wall_clock_ms()
}

/// The service as the front sees it.
struct Front {
    shared: Arc<Shared>,
}

/// Decrements the requests in flight when the request is answered (or
/// dropped: a client gone).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 503,
        code: ErrorCode::Unavailable,
        message: message.into(),
        field: None,
        retry_after: Some(1),
    }
}

fn unknown_scene(book: &Book, name: &str) -> ApiError {
    let near = (book.scenes.keys())
        .min_by_key(|s| strsim_distance(s, name))
        .filter(|s| strsim_distance(s, name) <= 3);
    let hint = match near {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    ApiError {
        status: 404,
        code: ErrorCode::UnknownScene,
        message: format!(
            "no scene `{name}` in rule set version {}{hint}",
            book.view.rules_version
        ),
        field: Some("scene".into()),
        retry_after: None,
    }
}

/// Levenshtein distance (scene names are short).
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl Front {
    fn admit(&self) -> Result<InFlight<'_>, ApiError> {
        let shared = &self.shared;
        if shared.gone.load(Ordering::Acquire) {
            shared.counters.unavailable.inc();
            return Err(unavailable(
                "the service's run has ended: it takes no request (see its standard error)",
            ));
        }
        if !shared.ready.load(Ordering::Acquire) {
            shared.counters.unavailable.inc();
            return Err(unavailable(
                "the service is not ready: it is reading its log again after a restart, or stopping",
            ));
        }
        if shared.queue == 0 {
            // (`--queue 0`: an operator's way to take nothing, draining
            // traffic off the service while it goes on answering reads)
            shared.counters.unavailable.inc();
            return Err(unavailable(
                "this service takes no request (--queue 0): nothing was logged, retry later or elsewhere",
            ));
        }
        let n = shared.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = InFlight(&shared.in_flight);
        if n > shared.queue {
            shared.counters.refused_queue.inc();
            return Err(ApiError {
                status: 429,
                code: ErrorCode::Overloaded,
                message: format!(
                    "{} requests are in flight, the most this service queues: nothing was logged, retry later",
                    shared.queue
                ),
                field: None,
                retry_after: Some(1),
            });
        }
        Ok(guard)
    }

    fn append(&self, entry: Entry, done: crate::wal::Done) -> Result<(), ApiError> {
        let Some(log) = self.shared.log.get() else {
            return Err(unavailable("the service's log is not open"));
        };
        self.shared
            .last_logged
            .store(crate::wal::wall_clock_ms() as u64, Ordering::Relaxed);
        log.append(entry, done).map_err(|e| {
            self.shared.counters.refused_log_queue.inc();
            unavailable(format!(
                "the log cannot take the request now ({e}): nothing was logged"
            ))
        })
    }

    async fn decide_async(
        shared: Arc<Shared>,
        front: Front,
        call: DecideCall,
    ) -> Result<Decided, ApiError> {
        let book = shared.book();
        let Some((facts, default_deadline)) = book.scenes.get(&call.scene).cloned() else {
            return Err(unknown_scene(&book, &call.scene));
        };
        let rules_version = book.view.rules_version;
        if let Mode::DryRun = call.mode {
            return front.dry_run(call).await;
        }
        let _in_flight = front.admit()?;
        let deadline = call.deadline.unwrap_or(default_deadline);
        let recent = Duration::from_micros(shared.recent_us.load(Ordering::Relaxed));
        let event_id: Arc<str> = Arc::from(call.event_id.as_str());
        // (a retry, of an answered request or of one in flight, is never
        // degraded here: its answer is the first one's, the engine's)
        let first = shared.first_of(&event_id);
        let degraded = first && (deadline.is_zero() || recent > deadline);
        // Under load the shadow rules are shed first, before answers are
        // degraded: past half the queue bound in flight, or a recent time
        // to answer over half the deadline (and with every degraded one).
        let shed_shadow = first && (degraded || shared.loaded() || recent * 2 > deadline);
        let (tx, rx) = oneshot::channel::<Reply>();
        let (logged_tx, logged_rx) = oneshot::channel::<Result<crate::wal::Logged, String>>();
        let scene_name = call.scene.clone();
        let input = Logged {
            scene: Some(call.scene.clone()),
            event_id: call.event_id.clone(),
            fields: call.event.clone(),
            degraded,
            shed_shadow,
            origin: None,
        };
        let waiting = Arc::clone(&shared);
        let explain = call.explain;
        let done: crate::wal::Done = Box::new(move |result| match result {
            Ok(logged) => {
                let waiter = match degraded {
                    true => Waiter::Answered,
                    false => Waiter::Decide {
                        tx,
                        explain,
                        taken: false,
                    },
                };
                // (the waiter first: a deadline passed while the log
                // wrote finds it, to mark degraded; the answer cannot
                // come before this returns, as the log hands the entry
                // to the run after its group's completions)
                waiting.wait_for(logged.seq, waiter);
                let _ = logged_tx.send(Ok(logged));
            }
            Err(e) => {
                // (and `tx` dropped after it: the wait below ends)
                let _ = logged_tx.send(Err(e.to_string()));
            }
        });
        if let Err(e) = front.append(Entry::Decide(input), done) {
            if first {
                shared.not_logged(&event_id);
            }
            return Err(e);
        }
        // A request the run decides wakes its task once, with its answer:
        // it waits for the answer (until its deadline, counted from its
        // admission), and only then reads what was logged, sent before
        // the run could take it, without a wake of its own. (Waiting for
        // the log first woke every request twice.) A degraded one waits
        // for the log alone; a failed write ends the wait for the answer
        // (its sender dropped) and is read below.
        let mut rx = rx;
        let answer = match (degraded, first) {
            (true, _) => None,
            (false, true) => {
                let left = deadline.saturating_sub(call.accepted.elapsed());
                tokio::time::timeout(left, &mut rx).await.ok()
            }
            // (a retry is never degraded: its answer is the first one's,
            // which it waits for, as at admission)
            (false, false) => Some((&mut rx).await),
        };
        let logged = logged_rx
            .await
            .map_err(|_| unavailable("the log stopped before the request was written"))?;
        if logged.is_err() && first {
            shared.not_logged(&event_id);
        }
        if logged.is_ok() && shed_shadow {
            shared.counters.shed.inc();
        }
        if logged.is_ok() && shared.log_failing.swap(false, Ordering::AcqRel) {
            eprintln!("cepheid serve: the log is written again");
        }
        let body = match logged {
            Err(why) => {
                // (not logged: answered with the fallback, not applied)
                shared.counters.degraded_log.inc();
                if !shared.log_failing.swap(true, Ordering::AcqRel) {
                    eprintln!(
                        "cepheid serve: the log cannot be written ({why}): requests are answered with their scene's fallback and not applied until it can (counted: cepheid_serve_degraded_log_write_failed_total)"
                    );
                }
                let mut note = Note::of(0, Some(&scene_name), &call.event);
                note.degraded = true;
                note.rules_version = rules_version;
                let mut body = fallback_body(
                    &facts,
                    &note,
                    &event_id,
                    &scene_name,
                    crate::wal::wall_clock_ms(),
                );
                body.degraded_why = Some("log_write_failed");
                body.decision_id = "d-unlogged".into();
                body
            }
            Ok(logged) if degraded => {
                shared.counters.degraded_deadline.inc();
                let mut note = Note::of(logged.seq, Some(&scene_name), &call.event);
                note.degraded = true;
                note.shadow_shed = shed_shadow;
                note.rules_version = rules_version;
                let body = fallback_body(&facts, &note, &event_id, &scene_name, logged.stamp);
                shared.store(logged.seq, logged.stamp, &body);
                if !deadline.is_zero() {
                    // (degraded by the recent time: its own time, admission
                    // to logged, goes into it, so that the recent time
                    // falls again once the run has caught up; left to the
                    // decided requests alone it would stay above the
                    // deadline, and every request be degraded, for good)
                    shared.recent(call.accepted.elapsed());
                }
                body
            }
            Ok(logged) => {
                let reply = match answer {
                    Some(reply) => reply,
                    // (its deadline passed before the run took it: the
                    // fallback now, the run to take it degraded)
                    None if shared.degrade_late(logged.seq) => {
                        let body = front
                            .degraded_late(&facts, &call, &logged, shed_shadow, rules_version)
                            .await;
                        return front.answered(&call, body, &scene_name);
                    }
                    // (the run has it: its answer comes late)
                    None => rx.await,
                }
                .map_err(|_| unavailable("the run stopped before the request was decided"))?;
                shared.recent(call.accepted.elapsed());
                match reply {
                    Reply::Body(body) => {
                        if !body.repeated {
                            shared.store(logged.seq, logged.stamp, &body);
                        }
                        body
                    }
                    Reply::Error(e) => return Err(e),
                    Reply::Recorded { .. } => {
                        return Err(unavailable(
                            "the request was recorded as an event, not decided",
                        ))
                    }
                }
            }
        };
        if body.degraded_why.is_none() && call.accepted.elapsed() > deadline {
            shared.counters.late_answers.inc();
        }
        front.answered(&call, body, &scene_name)
    }

    /// The answer `body` to `call`, counted.
    fn answered(
        &self,
        call: &DecideCall,
        mut body: DecisionBody,
        scene_name: &str,
    ) -> Result<Decided, ApiError> {
        self.shared.counters.decided.inc();
        body.elapsed_us = call.accepted.elapsed().as_micros() as u64;
        let outcome = Arc::clone(&body.outcome);
        let degraded = body.degraded;
        let bytes = serde_json::to_vec(&body).map_err(|e| unavailable(e.to_string()))?;
        Ok(Decided {
            body: bytes,
            scene: Arc::from(scene_name),
            outcome,
            degraded,
        })
    }

    /// The request `call`, logged as `logged`, whose deadline passed
    /// before the run took it ([`Shared::degrade_late`] said so): its
    /// scene's fallback, degraded, once the log holds that it was so
    /// answered (an [`Entry::Degraded`], which a replay reads ahead for:
    /// the engine takes the request degraded, live and in a replay, so a
    /// retry gets this answer too).
    async fn degraded_late(
        &self,
        facts: &SceneFacts,
        call: &DecideCall,
        logged: &crate::wal::Logged,
        shed_shadow: bool,
        rules_version: u64,
    ) -> DecisionBody {
        let shared = &self.shared;
        let (tx, rx) = oneshot::channel::<Result<(), String>>();
        let done: crate::wal::Done = Box::new(move |result| {
            let _ = tx.send(result.map(|_| ()).map_err(|e| e.to_string()));
        });
        let entry = Entry::Degraded {
            request: logged.seq,
        };
        let written = match self.append(entry, done) {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err("the log stopped".to_string())),
            Err(e) => Err(e.message),
        };
        if let Err(why) = written {
            // (the run takes it degraded all the same: the answer is the
            // state's; a restart before a checkpoint holds it takes the
            // request again as logged, decided: docs/serve.md)
            shared.counters.degraded_late_unlogged.inc();
            eprintln!(
                "cepheid serve: request {} was answered degraded at its deadline, and the log could not say so ({why}): a restart before the next checkpoint decides it again (counted: cepheid_serve_degraded_late_unlogged_total)",
                logged.seq
            );
        }
        shared.counters.degraded_late.inc();
        let mut note = Note::of(logged.seq, Some(&call.scene), &call.event);
        note.degraded = true;
        note.shadow_shed = shed_shadow;
        note.rules_version = rules_version;
        let event_id: Arc<str> = Arc::from(call.event_id.as_str());
        let body = fallback_body(facts, &note, &event_id, &call.scene, logged.stamp);
        shared.store(logged.seq, logged.stamp, &body);
        shared.recent(call.accepted.elapsed());
        body
    }

    async fn dry_run(&self, call: DecideCall) -> Result<Decided, ApiError> {
        let shared = &self.shared;
        let _in_flight = self.admit()?;
        let number = shared.dry_next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match shared
            .dry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(dry) => dry.insert(number, tx),
            None => {
                return Err(unavailable(
                    "the run has ended: the service takes no request",
                ))
            }
        };
        let sent = (shared.live.lock().unwrap_or_else(|p| p.into_inner())).send(Live::Dry {
            number,
            scene: call.scene.clone(),
            event_id: call.event_id.clone(),
            fields: call.event.clone(),
            at: crate::wal::wall_clock_ms(),
        });
        if sent.is_err() {
            if let Some(dry) = shared
                .dry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                dry.remove(&number);
            }
            return Err(unavailable("the run is not taking requests"));
        }
        shared.counters.dry_runs.inc();
        match rx.await {
            Ok(Reply::Body(mut body)) => {
                body.elapsed_us = call.accepted.elapsed().as_micros() as u64;
                body.decision_id = format!("dry-{number}");
                let outcome = Arc::clone(&body.outcome);
                Ok(Decided {
                    body: serde_json::to_vec(&body).map_err(|e| unavailable(e.to_string()))?,
                    scene: Arc::from(call.scene.as_str()),
                    outcome,
                    degraded: false,
                })
            }
            Ok(Reply::Error(e)) => Err(e),
            Ok(Reply::Recorded { .. }) | Err(_) => {
                Err(unavailable("the run stopped before the dry run was made"))
            }
        }
    }
}

/// The scene's fallback, degraded, for the request of `note`.
fn fallback_body(
    facts: &SceneFacts,
    note: &Note,
    event_id: &Arc<str>,
    scene: &str,
    stamp: i64,
) -> DecisionBody {
    DecisionBody {
        decision_id: decision_id(note.seq),
        scene: Arc::from(scene),
        event_id: Arc::clone(event_id),
        outcome: Arc::clone(&facts.fallback),
        score: body::number(0.0),
        rules: Vec::new(),
        shadow: Vec::new(),
        list: None,
        missing: Vec::new(),
        degraded: true,
        degraded_why: Some("deadline"),
        shadow_shed: note.shadow_shed,
        repeated: false,
        rules_version: note.rules_version,
        mode: "decide",
        stamp,
        elapsed_us: 0,
        explanation: None,
    }
}

impl Decider for Front {
    fn decide(&self, call: DecideCall) -> BoxFuture<Result<Decided, ApiError>> {
        let shared = Arc::clone(&self.shared);
        let front = Front {
            shared: Arc::clone(&self.shared),
        };
        Box::pin(Front::decide_async(shared, front, call))
    }

    fn record(&self, calls: Vec<EventCall>) -> BoxFuture<Result<Recorded, ApiError>> {
        let shared = Arc::clone(&self.shared);
        let front = Front {
            shared: Arc::clone(&self.shared),
        };
        Box::pin(async move {
            let _in_flight = front.admit()?;
            let shed_shadow = shared.loaded();
            let (tx, rx) = oneshot::channel();
            let batch = Arc::new(EventsBatch {
                state: Mutex::new(BatchState {
                    left: calls.len(),
                    recorded: 0,
                    repeated: 0,
                    error: None,
                    tx: Some(tx),
                }),
            });
            for call in calls {
                let input = Logged {
                    scene: None,
                    event_id: call.event_id,
                    fields: call.event,
                    degraded: false,
                    shed_shadow,
                    origin: None,
                };
                let (waiting, batch2) = (Arc::clone(&shared), Arc::clone(&batch));
                let done: crate::wal::Done = Box::new(move |result| match result {
                    Ok(logged) => {
                        if shed_shadow {
                            waiting.counters.shed.inc();
                        }
                        waiting.wait_for(logged.seq, Waiter::Events(batch2))
                    }
                    Err(e) => batch2.took(Reply::Error(unavailable(format!(
                        "the event could not be logged ({e}): it was not recorded"
                    )))),
                });
                if let Err(e) = front.append(Entry::Event(input), done) {
                    batch.took(Reply::Error(e));
                }
            }
            let result = rx
                .await
                .map_err(|_| unavailable("the run stopped before the events were taken"))?;
            let (recorded, repeated) = result?;
            shared
                .counters
                .recorded
                .0
                .fetch_add(recorded, Ordering::Relaxed);
            Ok(Recorded {
                recorded,
                repeated,
                rules_version: shared.book().view.rules_version,
            })
        })
    }

    fn change_list(&self, call: ListCall) -> BoxFuture<Result<ListChanged, ApiError>> {
        let front = Front {
            shared: Arc::clone(&self.shared),
        };
        Box::pin(async move { lists::change(&front, call).await })
    }

    fn decision(&self, decision_id: &str) -> Result<Vec<u8>, ApiError> {
        let not_found = |code: ErrorCode, message: String| ApiError {
            status: 404,
            code,
            message,
            field: None,
            retry_after: None,
        };
        let Some(seq) = seq_of(decision_id) else {
            return Err(not_found(
                ErrorCode::NotFound,
                format!("`{decision_id}` is not a decision id of this service (they read `d-` and a number)"),
            ));
        };
        let kept = self.shared.kept.lock().unwrap_or_else(|p| p.into_inner());
        match kept.by_seq.get(&seq) {
            Some((_, bytes)) => Ok(bytes.to_vec()),
            None if seq < kept.forgotten_below => Err(not_found(
                ErrorCode::Expired,
                format!(
                    "decision {decision_id} is older than the retention ({} s): it is no longer kept",
                    self.shared.retention_ms / 1000
                ),
            )),
            None => Err(not_found(ErrorCode::NotFound, format!("no decision {decision_id}"))),
        }
    }

    fn scenes(&self) -> ScenesView {
        self.shared.book().view.clone()
    }

    fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.shared.ready.load(Ordering::Acquire) {
            reasons.push("reading the log again after a restart (or stopping)".to_string());
        }
        if let Some(log) = self.shared.log.get() {
            if let crate::wal::Health::Unhealthy { reason } = log.health() {
                reasons.push(format!("the log cannot be written: {reason}"));
            }
        }
        reasons
    }

    fn metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let shared = &self.shared;
        let c = &shared.counters;
        let mut counters: Vec<(&str, &str, u64)> = vec![
            ("decisions", "Decision requests answered.", c.decided.get()),
            ("dry_runs", "Dry runs answered.", c.dry_runs.get()),
            ("events_recorded", "Events recorded without a decision.", c.recorded.get()),
            ("repeated", "Retries answered with the first answer.", c.repeated.get()),
            ("conflicts", "Event ids reused with other fields (409).", c.conflicts.get()),
            ("not_in_scene", "Events their scene's condition refused (422).", c.not_in_scene.get()),
            ("degraded_deadline", "Requests answered with the scene's fallback at admission, their deadline not to be met (logged and applied).", c.degraded_deadline.get()),
            ("degraded_late", "Requests answered with the scene's fallback at their deadline, the run not having taken them yet (logged and applied, degraded).", c.degraded_late.get()),
            ("degraded_late_unlogged", "Requests answered degraded at their deadline whose mark the log could not take (a restart before the next checkpoint decides them again).", c.degraded_late_unlogged.get()),
            ("degraded_log_write_failed", "Requests answered with the scene's fallback, the log not written (not applied).", c.degraded_log.get()),
            ("shed", "Requests whose shadow rules were shed.", c.shed.get()),
            ("refused_queue", "Requests refused past the queue bound (429, nothing logged).", c.refused_queue.get()),
            ("refused_log_queue", "Requests refused, the log's queue full (503, nothing logged).", c.refused_log_queue.get()),
            ("unavailable", "Requests refused 503: not ready, or --queue 0.", c.unavailable.get()),
            ("late_answers", "Decisions answered after their deadline (admitted in time, decided late).", c.late_answers.get()),
            ("rules_topic_logged", "Records of the rules topic logged as changes of rules.", c.topic_logged.get()),
            ("rules_topic_refused", "Records of the rules topic refused (not rules, rules that do not load): said, not logged.", c.topic_refused.get()),
            ("rules_topic_read_errors", "Reads of the rules topic that failed (the broker asked again).", c.topic_read_errors.get()),
            ("events_topic_logged", "Records of the events topics logged as events.", c.events_topic_logged.get()),
            ("events_topic_refused", "Records of the events topics refused (not a JSON object, a control record): said, not logged.", c.events_topic_refused.get()),
            ("events_topic_read_errors", "Reads of the events topics that failed (the broker asked again).", c.events_topic_read_errors.get()),
            ("checkpoints", "Checkpoints of the run taken.", c.checkpoints.get()),
            ("checkpoint_stall_microseconds", "Time the run's thread stood still for its checkpoints (the engine's snapshot): requests wait behind it.", c.checkpoint_stall_us.get()),
        ];
        if let Some(log) = shared.log.get() {
            let s = log.stats();
            counters.extend([
                ("log_appended", "Entries the log made durable.", s.appended),
                (
                    "log_groups",
                    "Groups the log wrote (group commit).",
                    s.groups,
                ),
                ("log_syncs", "Syncs of the log's file.", s.syncs),
                (
                    "log_sync_microseconds",
                    "Time the log's syncs took.",
                    s.sync_micros,
                ),
                ("log_bytes", "Bytes the log wrote.", s.bytes),
                (
                    "log_failures",
                    "Writes or syncs of the log that failed.",
                    s.failures,
                ),
                (
                    "log_refused",
                    "Appends refused, the log's queue full.",
                    s.refused,
                ),
            ]);
        }
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP cepheid_serve_{name} {help}");
            let _ = writeln!(out, "# TYPE cepheid_serve_{name} counter");
            let _ = writeln!(out, "cepheid_serve_{name}_total {value}");
        }
        let gauges = [
            (
                "in_flight",
                "Requests admitted and not answered.",
                shared.in_flight.load(Ordering::Relaxed) as u64,
            ),
            (
                "rules_version",
                "The version of the rules in force.",
                shared.book().view.rules_version,
            ),
            (
                "checkpoint_stall_max_microseconds",
                "The longest time the run's thread stood still for a checkpoint.",
                c.checkpoint_stall_max_us.load(Ordering::Relaxed),
            ),
            (
                "checkpoint_bytes",
                "The last checkpoint's size.",
                c.checkpoint_bytes.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP cepheid_serve_{name} {help}");
            let _ = writeln!(out, "# TYPE cepheid_serve_{name} gauge");
            let _ = writeln!(out, "cepheid_serve_{name} {value}");
        }
    }
}
