//! What the workers' dataflows give their records to: the run's output
//! ([`Emit`]) and what a worker sends worker 0 of it ([`Chunk`]: the
//! records, and at the end its counts, which worker 0 adds up for the
//! runtime's summary), and what a worker that panicked tells the others
//! ([`Failing`]).

use super::*;

/// What workers send to worker 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Chunk {
    /// Records (matches and timeouts, or late ones: each with its kind).
    Records(Block),
    /// A worker's counts, at the end (boxed: they are large, the blocks of
    /// records many).
    Summary(Box<Counts>),
    /// The decisions of the worker's engines' parts, to be gathered by
    /// worker 0 (`decisions.rs`).
    Parts(Vec<cepheid_engine::Decision>),
    /// Late events, decided by worker 0 (`decisions.rs`).
    Late(Vec<crate::Stamped<Record>>),
}

/// Keys over `--max-runs-per-key` already said: (pattern, key as JSON) and
/// the key's key group.
pub(super) type Drops = HashMap<(usize, String), u32>;

/// The worker threads of a process, and whether one of them panicked (a
/// library user's sink, a bug). A worker parks while it waits for its
/// peers' progress, which a panicked worker never makes: the failing
/// worker says so here and wakes every other, which then drop their
/// dataflows and stop (the run ends with the failed worker's
/// [`Error::Worker`]) instead of parking forever.
#[derive(Default)]
pub(super) struct Failing {
    failed: AtomicBool,
    threads: Mutex<Vec<std::thread::Thread>>,
}

impl Failing {
    /// The calling worker thread is one of the process's.
    pub(super) fn enter(&self) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.push(std::thread::current());
    }

    /// A worker failed: the others are woken to stop.
    pub(super) fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        for thread in threads.iter() {
            thread.unpark();
        }
    }

    /// Did a worker fail?
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What a panic said (its payload's text, if it is text).
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// How long a process whose readers were not stopped waits, once
/// another process's source stopped, before it stops its own: a signal
/// sent to every process (or a broker gone for all) stops each by itself,
/// in its own words, meanwhile.
const PEER_GRACE: Duration = Duration::from_secs(5);

/// Stops the process's readers when a source of another process stopped
/// (a signal to that process alone, its read error): event time waits for
/// a stopped source, so the run would hold for ever. Once per process.
pub(super) struct PeerStop {
    /// The process's workers.
    pub(super) own: std::ops::Range<usize>,
    /// Taken up already (by a worker of the process)?
    pub(super) taken: Arc<AtomicBool>,
    /// Was the process's stop said (it stopped by itself)?
    pub(super) said: Arc<AtomicBool>,
    pub(super) handle: cepheid_runtime::Handle,
}

impl PeerStop {
    fn stopped(&self, from: usize) {
        if self.own.contains(&from) || self.taken.swap(true, Ordering::Relaxed) {
            return;
        }
        let (said, handle) = (Arc::clone(&self.said), self.handle.clone());
        thread::spawn(move || {
            thread::sleep(PEER_GRACE);
            if !said.load(Ordering::Relaxed) {
                handle.stop("the stop of another process (said there)");
            }
        });
    }
}

/// A change, as its order names it: (time, source, offset).
type ChangeKey = (Timestamp, u32, u64);

/// The audit records of a process's changes of rules
/// (`docs/rule-lab.md`, "Audit records"), made of its workers' parts
/// ([`AuditPart`]): the last of the process's workers to make a change
/// completes its record, which process 0 writes to the audit file (with
/// the worker's records: in order, cut with them) and keeps in the
/// history. On several processes each only knows its own workers'
/// partial matches: the record gives none.
pub(super) struct AuditJoin {
    /// The parts of changes not complete yet, by (time, source, offset),
    /// with how many workers gave theirs.
    parts: Mutex<HashMap<ChangeKey, (AuditPart, usize)>>,
    /// The process's workers.
    workers: usize,
    /// Several processes: no counts.
    processes: bool,
    /// Process 0, with an audit file (`Config::audit`): writes them.
    pub(super) write: bool,
    /// Process 0: keeps the history.
    keep: bool,
    /// The latest records (in the cuts' markers, shown by an observer).
    pub(super) history: Arc<Mutex<cepheid_runtime::audit::History>>,
}

impl AuditJoin {
    pub(super) fn new(
        workers: usize,
        (processes, first): (bool, bool),
        write: bool,
        history: cepheid_runtime::audit::History,
    ) -> AuditJoin {
        AuditJoin {
            parts: Mutex::default(),
            workers,
            processes,
            write: write && first,
            keep: first,
            history: Arc::new(Mutex::new(history)),
        }
    }

    /// Keeps `record` (the rules at the start) in the history.
    pub(super) fn keep_first(&self, record: RuleChange) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push(record);
    }

    /// The history as a cut at `epoch` keeps it: the changes made before
    /// it (one at or after it is made again by a run resumed from it).
    pub(super) fn history_below(&self, epoch: Timestamp) -> cepheid_runtime::audit::History {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept = cepheid_runtime::audit::History::default();
        for record in history.iter() {
            if record.event_time.is_none_or(|t| t < epoch) {
                kept.push(record.clone());
            }
        }
        kept
    }

    /// Adds `part` of `change`: the record, once every worker of the
    /// process gave its part (process 0's).
    fn add(&self, change: &Change, part: AuditPart) -> Option<RuleChange> {
        let key = (change.at, change.source, change.offset);
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        let (whole, given) = parts.entry(key).or_insert_with(|| {
            let empty = AuditPart::of(part.record.clone(), Vec::new(), Vec::new());
            (empty, 0)
        });
        for (order, theirs) in part.patterns {
            match whole
                .patterns
                .iter_mut()
                .find(|(_, p)| p.pattern == theirs.pattern)
            {
                Some((_, mine)) => {
                    mine.partial_matches = (mine.partial_matches)
                        .zip(theirs.partial_matches)
                        .map(|(a, b)| a + b);
                }
                None => whole.patterns.push((order, theirs)),
            }
        }
        for name in part.unchanged {
            if !whole.unchanged.contains(&name) {
                whole.unchanged.push(name);
            }
        }
        *given += 1;
        if *given < self.workers {
            return None;
        }
        let (mut whole, _) = parts.remove(&key)?;
        if !self.keep {
            return None;
        }
        whole.patterns.sort_by_key(|(order, _)| *order);
        let mut record = whole.record;
        record.unchanged = (whole.unchanged.iter())
            .filter(|n| !whole.patterns.iter().any(|(_, p)| &p.pattern == *n))
            .count();
        record.patterns = whole.patterns.into_iter().map(|(_, p)| p).collect();
        if self.processes {
            for p in &mut record.patterns {
                p.partial_matches = None;
            }
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push(record.clone());
        Some(record)
    }
}

/// A worker's sink: records as `cepheid run` writes them, the limits'
/// notices said ([`LimitNotices`], shared by the process's workers),
/// counts at the end.
pub(super) struct Emit {
    say: Say,
    format: Formatter,
    records: Records,
    /// Keys over the limit (pattern, key as JSON), shared with the cuts.
    drops: Rc<RefCell<Drops>>,
    notices: Arc<LimitNotices>,
    counts: Arc<ReadCounts>,
    summary: Option<Counts>,
    /// The changes of rules made and refused over the run (worker 0).
    reloads: [u64; 2],
    /// Where the worker publishes its numbers, with an observing report.
    pub(super) publish: Option<Publish>,
    /// The fields' warnings and the worker's index in the process: what
    /// its reader saw goes into its counts at the end.
    pub(super) fields: Option<(Arc<Fields>, usize)>,
    /// With several processes: stops this one when another's stops.
    pub(super) peer: Option<PeerStop>,
    /// The audit records of changes of rules, shared by the process's
    /// workers.
    pub(super) audit: Option<Arc<AuditJoin>>,
    /// Worker 0's: the reference files read and not applied at the open
    /// of the run, and those watched (`cepheid_runtime::lists`), whose
    /// later ones are counted there ([`Counts::lists_not_applied`]).
    pub(super) lists_not_applied:
        Option<(u64, Option<Arc<Mutex<cepheid_runtime::lists::Watched>>>)>,
    /// Are late events written (`--late`)? Those the engines take for
    /// late are, as the sources' are.
    pub(super) keep_late: bool,
    /// With decisions gathered (`--decisions`): the decisions of the
    /// worker's engines' parts, sent to worker 0 (`decisions.rs`).
    pub(super) parts: Option<Vec<cepheid_engine::Decision>>,
    /// Worker 0's, with decisions gathered: the scenes of each change of
    /// rules, for the gathering.
    pub(super) book: Option<Rc<RefCell<super::decisions::SceneBook>>>,
}

/// A worker's part in the [`Board`].
pub(super) struct Publish {
    pub(super) board: Arc<Board>,
    /// The worker's index over all processes.
    pub(super) index: usize,
    /// Events its sources had read at the cut it was resumed from.
    pub(super) events_before: u64,
    /// Events its file's parts read ([`PartItems::events`]).
    pub(super) events: Rc<Cell<u64>>,
    /// Late events of its source.
    pub(super) late: Rc<Cell<u64>>,
    /// When it last published, and measured its state.
    pub(super) last: Option<Instant>,
    pub(super) measured: Option<Instant>,
}

impl Publish {
    /// Is it time to publish (at most every [`PUBLISH_EVERY`], the state
    /// measured at most every [`STATE_EVERY`])?
    fn due(&mut self, finished: bool) -> Due {
        let now = Instant::now();
        if let (false, Some(last)) = (finished, self.last) {
            let since = now.duration_since(last);
            if since < PUBLISH_EVERY {
                return Due::After(PUBLISH_EVERY - since);
            }
        }
        self.last = Some(now);
        let measure = finished
            || self
                .measured
                .is_none_or(|t| now.duration_since(t) >= STATE_EVERY);
        if measure {
            self.measured = Some(now);
        }
        Due::Now {
            state_bytes: measure,
        }
    }
}

impl Emit {
    pub(super) fn new(
        notices: Arc<LimitNotices>,
        counts: Arc<ReadCounts>,
        drops: Rc<RefCell<Drops>>,
        records: Records,
        say: Say,
    ) -> Emit {
        Emit {
            say,
            format: Formatter::default(),
            records,
            drops,
            notices,
            counts,
            summary: None,
            reloads: [0, 0],
            publish: None,
            fields: None,
            peer: None,
            audit: None,
            lists_not_applied: None,
            keep_late: false,
            parts: None,
            book: None,
        }
    }
}

impl Sink<Record> for Emit {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.format.record("match", m, None);
        let kind = if m.shadow() {
            Kind::Shadow
        } else {
            Kind::Match
        };
        self.records.push(kind, &self.format);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.format.record("timeout", m, Some(expired_at));
        let kind = if m.shadow() {
            Kind::Shadow
        } else {
            Kind::Timeout
        };
        self.records.push(kind, &self.format);
    }

    /// An event an engine took for late: its sources admit only events
    /// the engines can take, so none should come here (a clock of a quiet
    /// source that held them back, `Clocks`); one that does is written
    /// with the sources' late events, never dropped unsaid.
    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        if self.keep_late {
            self.format.late(event);
            self.records.push(Kind::Late, &self.format);
        }
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        let new_key = !partial.capped() && {
            let key = serde_json::to_string(partial.key()).unwrap_or_default();
            let mut drops = self.drops.borrow_mut();
            let told = (partial.pattern_index(), key);
            if drops.len() >= MAX_DROP_KEYS && !drops.contains_key(&told) {
                // Remembered up to a bound (issue 26): only that there
                // were more is kept.
                self.counts.drops_overflow.store(true, Ordering::Relaxed);
                return;
            }
            let kg = key_group(partial.key());
            // (a key is one worker's: the process's notices count it once)
            drops.insert(told, kg).is_none()
        };
        let say = &self.say;
        (self.notices).dropped(partial, new_key, |notice| say.report().notice(notice));
    }

    fn on_decision(&mut self, decision: &cepheid_engine::Decision) {
        if let Some(parts) = &mut self.parts {
            parts.push(decision.clone());
        }
    }
}

impl Collect<Record> for Emit {
    type Item = Chunk;

    fn drain(&mut self, out: &mut Vec<Chunk>) {
        out.extend(self.records.take().into_iter().map(Chunk::Records));
        if let Some(parts) = self.parts.as_mut().filter(|p| !p.is_empty()) {
            out.push(Chunk::Parts(std::mem::take(parts)));
        }
        if let Some(summary) = self.summary.take() {
            out.push(Chunk::Summary(Box::new(summary)));
        }
    }

    fn finish(&mut self, stats: &Stats, waiting: usize) {
        self.summary = Some(Counts {
            dropped_keys: self.drops.borrow().len() as u64,
            dropped_keys_overflow: self.counts.drops_overflow.load(Ordering::Relaxed),
            malformed: self.counts.malformed.load(Ordering::Relaxed),
            reloads: self.reloads[0],
            reloads_refused: self.reloads[1] + self.counts.reloads_refused.load(Ordering::Relaxed),
            reloads_late: self.counts.reloads_late.load(Ordering::Relaxed),
            lists_not_applied: (self.lists_not_applied.as_ref()).map_or(0, |(at_open, watched)| {
                at_open + watched.as_ref().map_or(0, |w| lock(w).not_applied())
            }),
            read_error: self.counts.read_error_now(),
            strict_stop: self.counts.strict_stop_now(),
            fields: (self.fields.as_ref()).and_then(|(fields, local)| fields.of_reader(*local)),
            event_time: self.counts.event_time(),
            ..Counts::of_engine(stats, waiting)
        });
    }

    fn numbers_due(&mut self, finished: bool) -> Due {
        match &mut self.publish {
            Some(publish) => publish.due(finished),
            // The summary's lines per pattern.
            None if finished => Due::Now { state_bytes: false },
            None => Due::Never,
        }
    }

    fn list_refused(&mut self, place: &str, why: &str, record: bool) {
        // (as one engine: said; a record counted with the malformed lines)
        if record {
            self.counts.malformed_line();
        }
        let notice = cepheid_runtime::lists::refused(place, why, record);
        self.say.report().notice(notice);
    }

    fn lists_changed(&mut self, place: &str, at: Timestamp) {
        // (the single run's words)
        let said = cepheid_runtime::lists::said_at(place, at);
        say!(self.say, Info, "{said}");
    }

    fn rules_changed(&mut self, place: &str, outcome: Result<String, String>) {
        // (the single run's words)
        match outcome {
            Ok(lines) => {
                let notice = reloaded(place, &lines);
                self.say.report().notice(notice);
                self.say.event(&RunEvent::Reloaded);
            }
            Err(why) => {
                let why = not_reloaded(place, &why);
                self.say.event(&RunEvent::ReloadRefused { why: &why });
                say!(self.say, Warning, "{why}");
            }
        }
    }

    fn rules_audit(&mut self, change: &Change, part: AuditPart) {
        let Some(join) = &self.audit else {
            return;
        };
        if let Some(record) = join.add(change, part) {
            if join.write {
                let line = record.line();
                self.records.push_line(Kind::Audit, line.as_bytes(), 0..0);
            }
        }
    }

    fn source_stopped(&mut self, from: usize) {
        if let Some(peer) = &self.peer {
            peer.stopped(from);
        }
    }

    fn scenes_changed(&mut self, at: Timestamp, rules: &Rules) {
        if let Some(book) = &self.book {
            book.borrow_mut().changed(at, rules);
        }
    }

    fn decided_in_parts(&mut self, from: Timestamp, parts: usize) {
        if let Some(book) = &self.book {
            book.borrow_mut().parts_from(from, parts);
        }
    }

    fn reloads(&mut self, made: u64, refused: u64) {
        self.reloads = [made, refused];
    }

    fn left_out(&mut self, left_out: &LeftOutParts, before: bool) {
        let whole = left_out.whole();
        if before {
            // (said by the run that counted it, before the cut)
            self.notices.told_left_out(&whole);
            return;
        }
        let say = &self.say;
        (self.notices).left_out(&whole, |notice| say.report().notice(notice));
    }

    fn numbers(&mut self, numbers: EngineNumbers, finished: bool) {
        if let (true, Some(summary)) = (finished, &mut self.summary) {
            summary.patterns.clone_from(&numbers.patterns);
            summary.memory_of(&numbers.memory);
        }
        if let Some(publish) = &self.publish {
            let published = Published::new(
                numbers,
                publish.events_before
                    + publish.events.get()
                    + self.counts.events.load(Ordering::Relaxed),
                publish.late.get(),
                self.counts.malformed.load(Ordering::Relaxed),
            );
            publish.board.publish(publish.index, published);
        }
    }
}
