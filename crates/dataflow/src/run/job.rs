//! What every worker of a process shares ([`Job`]) and the work of one
//! worker: its dataflows, its inputs, and its part of a cut.

use super::*;
use cepheid_runtime::checkpoint::{self, CutFailed};

/// What worker 0 of process 0 ends with: each worker's counts (which the
/// runtime adds up), and the signal that stopped the input, if one did.
pub(super) type Ended = (Vec<Counts>, Option<String>);

/// What every worker of the process shares.
pub(super) struct Job {
    pub(super) plan: Plan<Record>,
    /// The input's name in messages (`standard input`, its path).
    pub(super) origin: String,
    /// Standard input or `--follow`: read on a thread of its own by
    /// worker 0 (of process 0), output flushed when the input waits.
    pub(super) live: bool,
    /// Live input (read by worker 0): what its reader reads, and the
    /// stops and reloads of the run's handle.
    pub(super) messages: Mutex<Option<LiveInput>>,
    /// The run's settings (what the readers read as one engine does).
    pub(super) config: Config,
    /// Sources of the library's user, each taken by its worker (by its
    /// index in the process), instead of `events`.
    pub(super) sources: Option<Mutex<Vec<Option<OwnSource>>>>,
    /// The index of this process's first worker.
    pub(super) first_worker: usize,
    pub(super) keep_late: bool,
    /// What the process's workers said of the limits on partial matches.
    pub(super) notices: Arc<LimitNotices>,
    /// Was the stop of the live input said (by one of its readers)?
    pub(super) stop_said: Arc<AtomicBool>,
    /// What a handle asks of a file read in parts.
    pub(super) parts: Option<Arc<PartsInput>>,
    /// Sources of the library's user: the one (by its worker's index in
    /// the process) whose reader takes the reloads (process 0's first that
    /// reads anything), once for every worker.
    pub(super) reload_reader: Option<usize>,
    /// Did a worker of the process panic? Then the others stop too.
    pub(super) failing: Arc<Failing>,
    pub(super) chunk_bytes: u64,
    /// The output of process 0: worker 0 writes the late events and the
    /// records sent to it, each worker its own records (`write.rs`).
    pub(super) out: Option<write::Shared>,
    /// With `--output-per-worker`, each worker's own `FILE.W` (by its
    /// index in the process; worker 0's is `out`).
    pub(super) own: Vec<Option<write::Shared>>,
    /// Did a worker fail to write its own output file?
    pub(super) write_failed: Failed,
    /// Could a worker's source not go on from its place in the cut (its
    /// error, which ends the run as one engine's refusal does)?
    pub(super) source_failed: Failed,
    /// A reader's read error: the end of a process that does not count
    /// the run (process 0's counts have it).
    pub(super) read_failed: Arc<Failed>,
    /// The handle of every reader of the process (set once the job is
    /// made): a reader that cannot read on stops the others with it.
    pub(super) stop_all: std::sync::OnceLock<cepheid_runtime::Handle>,
    /// The process's workers (numbered over every process), and whether
    /// another process's stop was taken up ([`PeerStop`]).
    pub(super) peer_stop: (std::ops::Range<usize>, Arc<AtomicBool>),
    /// Set by a part that met a malformed line with `--strict`.
    pub(super) stop: Arc<AtomicBool>,
    /// Several processes (`--processes`).
    pub(super) cluster: bool,
    /// With `--checkpoint`: where and how often.
    pub(super) checkpoint: Option<Arc<Checkpoint>>,
    /// Resumed: each worker's piece of the checkpoint.
    pub(super) resume: Mutex<Option<Vec<Piece>>>,
    /// Resumed on another number of workers, with sources of the
    /// library's user: where each worker's source of this process goes
    /// on (by its index in the process; taken by the workers).
    pub(super) shares: Mutex<Vec<Option<Share>>>,
    /// Could a checkpoint not be written? (Exit 4.)
    pub(super) checkpoint_failed: Arc<Failed>,
    /// What the run says.
    pub(super) say: Say,
    /// Where each worker publishes its numbers (an observing report).
    pub(super) board: Option<Arc<Board>>,
    /// The warnings about fields no event carried
    /// ([`Config::field_warnings`]), which the readers tell what they saw.
    pub(super) fields: Option<Arc<Fields>>,
    /// Control records (JSON lines), read as one engine reads them.
    pub(super) controls: Option<Arc<Config>>,
    /// Reloads of the pattern paths (`--watch`, [`Handle::reload`]), read
    /// by the live input's reader.
    pub(super) reloads: Option<Arc<Config>>,
    /// The watched reference files (`--watch` with `--list`), read again
    /// by the reader that reads the reloads (process 0's).
    pub(super) lists: Option<Arc<Mutex<cepheid_runtime::lists::Watched>>>,
    /// The reference files read and not applied at the open (resumed).
    pub(super) lists_not_applied: u64,
    /// The audit records of changes of rules, made by the workers.
    pub(super) audit: Arc<emit::AuditJoin>,
    /// With decisions gathered (`Plan::gathering_decisions`): the rules
    /// the run starts with, whose scenes worker 0 resolves the parts by.
    pub(super) rules: Option<Rules>,
}

/// A change of rules read by a worker's reader (`where_` in messages,
/// and the rules or why not: `Control::read`, `Reload::read`) as the
/// source's [`SourceItem::Rules`] at `offset`, made by the runtime
/// ([`executor::for_executor`](cepheid_runtime::executor::for_executor):
/// compiled and checked once, a refusal said there), to apply at its
/// source's watermark + 1 on every worker ([`Plan::changing`]), with
/// `origin`, what asked for it (its audit record's); `None` when not now.
/// One refused (counted here) travels too, changing nothing, to make its
/// audit record at its point.
pub(super) fn rules_item(
    read: (String, RulesRead),
    at: (u64, Origin),
    counts: &ReadCounts,
    say: &Say,
) -> Option<SourceItem<Record>> {
    let refuses = |p: &crate::pattern::Pattern| not_on_workers(p).map(|r| r.to_string());
    let change = cepheid_runtime::executor::for_executor(read, at, &refuses, &mut **say.report())?;
    if change.refused().is_some() {
        counts.reloads_refused.fetch_add(1, Ordering::Relaxed);
    }
    Some(SourceItem::Rules(change))
}

impl Job {
    /// The engines' sink of worker `index`: its records to `records_to`,
    /// its numbers published with `publish`.
    fn emit(
        &self,
        index: usize,
        records_to: Option<write::Shared>,
        counts: &Arc<ReadCounts>,
        drops: &Rc<RefCell<Drops>>,
        publish: Option<Publish>,
    ) -> Emit {
        let tap = self.board.as_ref().and_then(|board| board.tap().cloned());
        let records = Records::new(records_to, tap, Arc::clone(&self.stop));
        let notices = Arc::clone(&self.notices);
        let mut sink = Emit::new(
            notices,
            Arc::clone(counts),
            Rc::clone(drops),
            records,
            self.say.clone(),
        );
        sink.publish = publish;
        let several = self.cluster.then_some(()).and(self.stop_all.get());
        sink.peer = several.map(|handle| PeerStop {
            own: self.peer_stop.0.clone(),
            taken: Arc::clone(&self.peer_stop.1),
            said: Arc::clone(&self.stop_said),
            handle: handle.clone(),
        });
        sink.fields = (self.fields.clone()).zip(index.checked_sub(self.first_worker));
        sink.audit = Some(Arc::clone(&self.audit));
        sink.lists_not_applied = (index == 0).then(|| (self.lists_not_applied, self.lists.clone()));
        sink.keep_late = self.keep_late;
        sink.parts = self.plan.gathers_decisions().then(Vec::new);
        sink
    }

    /// Worker 0's cutter, with `requests`: the cuts of a run with
    /// checkpoints.
    fn cutter(&self, index: usize, requests: Option<Requests>) -> Option<Cutter> {
        let checkpoint = self.checkpoint.as_ref().filter(|_| index == 0)?;
        Some(Cutter {
            say: self.say.clone(),
            checkpoint: Arc::clone(checkpoint),
            requests,
            ask: self.cluster,
            asking: false,
            misses: 0,
            last: Instant::now(),
            last_lines: 0,
            pending: None,
            asked_at: None,
            observes: self.board.is_some(),
            ended: false,
            failed: Arc::clone(&self.checkpoint_failed),
            stop: Arc::clone(&self.stop),
            tap: self.board.as_ref().and_then(|board| board.tap().cloned()),
            woken: None,
            audit: Arc::clone(&self.audit),
        })
    }

    /// The lateness of a worker's source: a source of the library's user
    /// (`own`) has no delay of its own (that of each split).
    fn lateness(&self, own: bool) -> Lateness {
        let delay = if own {
            i64::MAX
        } else {
            millis(self.config.max_delay)
        };
        let lateness = Lateness::new(delay)
            .flush_at_end(self.config.flush_at_end)
            .max_waiting(self.config.max_waiting);
        match self.config.idle_timeout {
            Some(timeout) => lateness.idle_timeout(timeout),
            None => lateness,
        }
    }

    /// The live input of worker `index`, not read yet, going on from the
    /// `restored` state of its source.
    fn live(
        &self,
        index: usize,
        counts: &Arc<ReadCounts>,
        waiting_for_input: Arc<AtomicBool>,
        restored: Option<&SourceState>,
    ) -> Live {
        let reader =
            self.sources.is_none() || Some(index - self.first_worker) == self.reload_reader;
        Live {
            input: None,
            local: index - self.first_worker,
            fields: self.fields.clone(),
            board: self.board.clone(),
            stop_said: Arc::clone(&self.stop_said),
            source: self.sources.is_some(),
            names: Vec::new(),
            counts: Arc::clone(counts),
            waiting_for_input,
            say: self.say.clone(),
            places: self.checkpoint.is_some(),
            lines: restored.map_or(0, |state| state.position),
            controls: self.controls.clone(),
            reloads: self.reloads.clone().filter(|_| reader),
            lists: self.lists.clone().filter(|_| reader),
            handle_lists: super::items::HandleLists::of(reader, self.plan.changes().is_some()),
            read_lines: self.read_lines(),
            stop_all: self.stop_all.get().cloned(),
            read_failed: Arc::clone(&self.read_failed),
            why: Rc::default(),
            current: Vec::new().into_iter(),
            current_names: Vec::new(),
            part_read: None,
            taken: (0, None),
            current_place: None,
            place: restored.map_or_else(Place::default, |state| Place {
                position: state.position,
                unread: state.unread,
                place: state.place.clone(),
            }),
            arrived: false,
            then: None,
        }
    }

    /// Where this process's readers count the lines they read, for cuts
    /// every `Config::checkpoint_every` lines.
    fn read_lines(&self) -> Option<Arc<AtomicU64>> {
        let checkpoint = self.checkpoint.as_ref()?;
        checkpoint.every_lines?;
        Some(Arc::clone(&checkpoint.lines))
    }

    /// [`Job::work`], or what made it panic (a library user's sink, a
    /// bug): the worker's dataflows are dropped and every other worker of
    /// the process told to stop ([`Failing`]).
    pub(super) fn work_or_fail(
        &self,
        worker: &mut timely::worker::Worker,
    ) -> Result<Option<Ended>, String> {
        self.failing.enter();
        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work(worker)));
        worked.map_err(|payload| {
            self.failing.fail();
            for dataflow in worker.installed_dataflows() {
                worker.drop_dataflow(dataflow);
            }
            panic_message(payload.as_ref())
        })
    }

    /// One worker's run: its part of the input, its engines; worker 0
    /// writes what every worker found and returns the outputs and counts.
    fn work(&self, worker: &mut timely::worker::Worker) -> Option<Ended> {
        let index = worker.index();
        let peers = worker.peers();
        // Worker 0 (of process 0) writes the late events and what is sent
        // to it.
        let out = (index == 0).then(|| self.out.clone()).flatten();
        let records_to = self.records_to(index);
        // The cut requests of worker 0 to every worker of every process: a
        // dataflow of their own, built by every worker with or without
        // `--checkpoint` (every process must build the same dataflows).
        let process_cuts = self.checkpoint.as_ref().map(|c| Arc::clone(&c.cuts));
        let requests = cut_requests(worker, &process_cuts.unwrap_or_else(Cuts::new));
        let mut requests = requests.filter(|_| self.checkpoint.is_some());
        let gathered = Rc::new(RefCell::new(Gathered::new(out, Arc::clone(&self.stop))));
        let counts = Arc::new(ReadCounts::default());
        let drops = Rc::new(RefCell::new(HashMap::new()));
        let worker_cut = self
            .checkpoint
            .as_ref()
            .map(|checkpoint| self.worker_cut(checkpoint, index, &counts, &drops, peers));
        let read = self.checkpoint.as_ref().map(|c| Arc::clone(&c.read));
        let items = self.items(index, peers, &counts, read.unwrap_or_default());
        // (counted on this thread; published with the engines' numbers)
        let (events_read, late_count) = (Rc::clone(&items.events), Rc::new(Cell::new(0)));
        // Resumed: the numbers shown go on from the cut's (as the
        // summary's do).
        let (events_before, late_before) =
            (worker_cut.as_ref()).map_or((0, 0), WorkerCut::restored_counts);
        late_count.set(late_before);
        // A source of the library's user: the worker's own, its watermark
        // its splits' (no delay of its own: that of each split).
        let own = self.take_source(index);
        let lateness = self.lateness(own.is_some());
        let keep_late = self.keep_late;
        // With decisions gathered: late events go to worker 0 to be
        // decided, and worker 0 keeps the scenes of each change of rules.
        let gathering = self.plan.gathers_decisions();
        let book = (index == 0)
            .then_some(self.rules.as_ref())
            .flatten()
            .map(|rules| Rc::new(RefCell::new(decisions::SceneBook::new(rules.clone()))));
        let to_write = Rc::clone(&gathered);
        // Live input: worker 0 reads it (each worker its own source) on
        // the runtime's reader thread, and its source pulls it on this
        // one; the output is flushed while the reader waits for input.
        let reads_live = match &self.sources {
            Some(_) => own.as_ref().is_some_and(|(source, _, _)| source.is_some()),
            None => self.live && index == 0,
        };
        let waiting_for_input = Arc::new(AtomicBool::new(false));
        let flush_when_waiting = reads_live.then(|| Arc::clone(&waiting_for_input));
        // Resumed: where the live input goes on (a source that had ended
        // reads nothing).
        let restored = worker_cut.as_ref().and_then(|cut| cut.source_state(0));
        let live = reads_live.then(|| {
            let live = self.live(index, &counts, waiting_for_input, restored.as_ref());
            if restored.as_ref().is_some_and(|state| state.ended) {
                return live;
            }
            match own {
                Some((Some(source), _, input)) => {
                    self.read_source(live, source, input, restored.as_ref())
                }
                _ => self.read_live(live, restored.as_ref()),
            }
        });
        // (why the live input stopped, if it did: a signal, a read error)
        let stopped = live.as_ref().map(|live| Rc::clone(&live.why));
        worker.dataflow::<Timestamp, _, _>(|scope| {
            // One input: the chunks of the file share one source number.
            let cut = worker_cut.as_ref();
            let (events, late) = match live {
                Some(live) => {
                    let clock: Box<dyn FnMut() -> Instant> = Box::new(Instant::now);
                    pull_source(scope, 0, live, lateness, Some(clock), cut)
                }
                None => pull_source(scope, 0, items, lateness, None, cut),
            };
            let publish = self.board.clone().map(|board| Publish {
                board,
                index,
                events_before,
                events: events_read,
                late: Rc::clone(&late_count),
                last: None,
                measured: None,
            });
            let mut sink = self.emit(index, records_to.clone(), &counts, &drops, publish);
            sink.book.clone_from(&book);
            let make_sink = move |_| sink;
            let found = match &worker_cut {
                Some(cut) => cep_cut(&self.plan, events, make_sink, cut),
                None => cep(&self.plan, events, make_sink),
            };
            let late = late_chunks(late, (keep_late, gathering), late_count);
            // What a worker does not write itself goes to worker 0.
            let mut cutter = self.cutter(index, requests.take());
            // (worker 0 gathers the decisions' parts)
            let mut gather = (book.clone()).map(|book| {
                decisions::Gather::new(book, self.naming(), &self.plan).saying(self.say.clone())
            });
            // (an operator, not a sink, for its activator: worker 0's
            // cutter asks for cuts on schedule while nothing comes)
            found
                .concat(late)
                .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|_: &Chunk| 0),
                    "CepWrite",
                    move |_, info| {
                        let activator = scope.activator_for(info.address);
                        move |(input, frontier), _| {
                            let mut gathered = to_write.borrow_mut();
                            let (holding, before_end) = Cutter::holding(cutter.as_mut());
                            input.for_each_stamp(|cap, data| {
                                let at = cap.least().copied().unwrap_or(Timestamp::MIN);
                                for chunk in data.flat_map(|batch| batch.drain(..)) {
                                    let chunk =
                                        decisions::Gather::intercept(gather.as_mut(), chunk, at);
                                    let Some(chunk) = chunk else {
                                        continue;
                                    };
                                    match holding {
                                        _ if before_end && at == Timestamp::MAX => {
                                            gathered.after_end.push(chunk);
                                        }
                                        Some(e) if at >= e => gathered.held.push(chunk),
                                        _ => gathered.take(chunk),
                                    }
                                }
                            });
                            let waiting = flush_when_waiting
                                .as_ref()
                                .is_some_and(|w| w.load(Ordering::Relaxed));
                            let frontier = frontier.frontier().first().copied();
                            if let Some(gather) = &mut gather {
                                gather.ready(frontier, (holding, before_end), &mut gathered);
                            }
                            written(&mut gathered, cutter.as_mut(), frontier, waiting);
                            if let Some(cutter) = &mut cutter {
                                cutter.wake(&activator);
                            }
                        }
                    },
                );
        });
        let mut spin = 16;
        while worker.has_dataflows() {
            if self.failing.failed() {
                // A peer will make no progress: the dataflows go (timely
                // steps them until they are gone, after this returns);
                // the reader thread, if any, ends when it finds its
                // input gone with them.
                for dataflow in worker.installed_dataflows() {
                    worker.drop_dataflow(dataflow);
                }
                return None;
            }
            step_or_spin(worker, &mut spin);
        }
        // (the reader thread may still wait on its input after a signal:
        // it ends with the process)
        let signal = stopped.and_then(|why| why.borrow_mut().take());
        let signal = signal.or_else(|| self.parts.as_ref()?.why());
        let mut gathered = gathered.borrow_mut();
        let counts = std::mem::take(&mut gathered.counts);
        if gathered.out.take().is_some() {
            return Some((counts, signal));
        }
        // Another worker's own `FILE.W` (its error said when it happened).
        if let Some(own) = self.own(index) {
            if let Err(e) = lock(&own).flush() {
                self.write_failed.set(cepheid_runtime::Error::Sink(e));
            }
        }
        None
    }

    /// How worker 0 names an event without an id in its decisions: its
    /// line in the input, as one engine does (`decisions.rs`).
    fn naming(&self) -> decisions::Naming {
        if self.live {
            return decisions::Naming::Lines(self.origin.clone());
        }
        let csv = matches!(self.config.format, Format::Csv);
        let path = self.config.input.path();
        let lines = FileChunks::new(path, 0, 1, self.chunk_bytes)
            .ok()
            .map(|chunks| {
                let chunks = chunks.with_header(csv);
                match &self.controls {
                    Some(_) => chunks.past_lines(|line| Control::parse(line).is_some()),
                    None => chunks,
                }
                .lines()
            });
        decisions::Naming::Chunks {
            origin: self.origin.clone(),
            lines,
            say: self.say.clone(),
            said: false,
        }
    }

    /// Worker `index`'s own `FILE.W` with `--output-per-worker` (worker 0's
    /// is process 0's output).
    fn own(&self, index: usize) -> Option<write::Shared> {
        self.own.get(index.checked_sub(self.first_worker)?)?.clone()
    }

    /// Where worker `index` writes its records itself: with
    /// `--output-per-worker` its own `FILE.W`; else, on process 0 of a run
    /// without cuts, the process's output. `None`: they are sent to worker
    /// 0 (other processes; with cuts, records reach worker 0 in the order
    /// of the frontier).
    fn records_to(&self, index: usize) -> Option<write::Shared> {
        self.own(index).or_else(|| {
            self.checkpoint
                .is_none()
                .then(|| self.out.clone())
                .flatten()
        })
    }

    /// The worker's part of the input, decoded; malformed lines are said
    /// on standard error and counted.
    fn items(
        &self,
        index: usize,
        peers: usize,
        counts: &Arc<ReadCounts>,
        read: Arc<cut::Read>,
    ) -> PartItems {
        let csv = matches!(self.config.format, Format::Csv);
        // (live input: read by worker 0's reader thread, `read_live`)
        let chunks = match FileChunks::new(self.config.input.path(), index, peers, self.chunk_bytes)
        {
            _ if self.live => None,
            Ok(chunks) => Some(chunks.with_header(csv)),
            Err(e) => {
                let (notice, error) = Policy::new(&self.origin, false).failed(e);
                self.say.report().notice(notice);
                counts.ended(error);
                None
            }
        };
        let chunks = match (chunks, &self.controls) {
            (Some(chunks), Some(_)) => {
                Some(chunks.past_lines(|line| Control::parse(line).is_some()))
            }
            (chunks, _) => chunks,
        };
        let (format, time_field) = (
            self.config.format,
            self.config.time_field().unwrap_or("ts").to_string(),
        );
        let (table, fields) = (self.plan.fields().clone(), self.fields.clone());
        let decoder = move || {
            let decoder = Decoder::new(format, &time_field, table.clone());
            match &fields {
                // The names of keys ("did you mean") of the first N events
                // of the process's readers only, as the single run keeps
                // those of its first N.
                Some(fields) => {
                    decoder.watch_fields(fields.after().saturating_sub(fields.events()))
                }
                None => decoder,
            }
        };
        let reader = match chunks {
            Some(chunks) => {
                let again = Arc::clone(&read);
                ShareReader::chunks(
                    self.config.input.path(),
                    &self.origin,
                    chunks,
                    move |chunk| read.upto(chunk),
                    decoder,
                )
                .read_again(move |chunk| again.again_in(chunk))
            }
            None => ShareReader::ranges(
                self.config.input.path(),
                &self.origin,
                Vec::new(),
                false,
                decoder,
            ),
        };
        let mut reader = reader
            .controls(self.controls.is_some())
            .policy(Policy::new(&self.origin, self.config.strict));
        if let (Some(fields), Some(local)) = (&self.fields, index.checked_sub(self.first_worker)) {
            let (fields, say) = (Arc::clone(fields), self.say.clone());
            reader = reader.tell_seen(move |seen| {
                fields.report(local, seen.clone(), &mut |n| say.report().notice(n))
            });
        }
        PartItems {
            reader,
            say: self.say.clone(),
            counts: Arc::clone(counts),
            stop: Arc::clone(&self.stop),
            asked: self.parts.clone(),
            read_lines: self.read_lines(),
            // (process 0's parts read the reloads: the one that looks
            // first)
            reloads: self.reloads.clone().filter(|_| self.first_worker == 0),
            lists: self.lists.clone().filter(|_| self.first_worker == 0),
            queued: std::collections::VecDeque::new(),
            handle_lists: super::items::HandleLists::of(
                self.first_worker == 0,
                self.plan.changes().is_some(),
            ),
            pulls: 0,
            done: false,
            events: Rc::default(),
            controls: self.controls.clone(),
        }
    }

    /// Worker `index`'s part of the cuts: its state restored when the run
    /// resumes, its file written at each cut.
    fn worker_cut(
        &self,
        checkpoint: &Checkpoint,
        index: usize,
        counts: &Arc<ReadCounts>,
        drops: &Rc<RefCell<Drops>>,
        peers: usize,
    ) -> WorkerCut {
        let dir = checkpoint.dir.clone();
        let drops_saved = Rc::clone(drops);
        let cut_counts = Arc::clone(counts);
        let stop = Arc::clone(&self.stop);
        let failed = Arc::clone(&self.checkpoint_failed);
        // With `--output-per-worker`: the worker's own `FILE.W`, which
        // holds every record it made below the cut when its CEP operator
        // saves (the records are written on this thread as they are made).
        let own = self.own(index);
        let read = checkpoint.read.clone();
        let say = self.say.clone();
        // (a file that cannot be written is said to an observing report)
        let observes = self.board.is_some();
        let failed_event = move |say: &Say, error: &cepheid_runtime::Error| {
            if observes {
                say.report().event(&RunEvent::CheckpointFailed { error });
            }
        };
        let read_counts = Arc::clone(counts);
        // (the cut this worker wrote its piece of before)
        let mut previous: Option<i64> = None;
        let cut = WorkerCut::new(Arc::clone(&checkpoint.cuts), move |epoch, mut piece| {
            let drops = (drops_saved.borrow().iter())
                .map(|((pattern, key), kg)| (*pattern, key.clone(), *kg))
                .collect();
            let overflow = cut_counts.drops_overflow.load(Ordering::Relaxed);
            cut::put_keys(&mut piece, &(drops, overflow));
            read.put(&mut piece);
            // (written by the runtime, with the worker's own file synced
            // and measured first; then the cuts before the one before this
            // go, `checkpoint::write_piece`: in a folder no process
            // completes, one per process, this is all that prunes)
            let before = previous;
            let written =
                checkpoint::write_piece(&dir, epoch, index, piece, own.as_deref(), before);
            let error = match written {
                Ok(()) => {
                    previous = Some(epoch);
                    return;
                }
                // (said by the output, the run's error)
                Err(CutFailed::Sink { error, .. }) => cepheid_runtime::Error::Sink(error),
                Err(CutFailed::File { path, source }) => {
                    say!(
                        say,
                        Error,
                        "error: cannot write the checkpoint {}: {source}",
                        path.display()
                    );
                    cut_failed(&path, source)
                }
            };
            failed_event(&say, &error);
            // The input stops; exit 4 at the end.
            failed.set(error);
            stop.store(true, Ordering::Relaxed);
        })
        // (the rules records its readers refused and read late, kept with
        // their places)
        .counting(move || {
            let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
            [
                count(&read_counts.reloads_refused),
                count(&read_counts.reloads_late),
            ]
        });
        let resume = self.resume.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(files) = resume.as_ref() {
            // Checked before the workers started.
            let mut mine = Vec::new();
            let keys: Vec<cut::Keys> = files.iter().map(cut::keys).collect();
            if keys.iter().any(|(_, overflow)| *overflow) {
                counts.drops_overflow.store(true, Ordering::Relaxed);
            }
            if files.len() == peers {
                let _ = cut.restore(&self.plan, &files[index]);
                mine.extend(keys[index].0.iter().cloned());
            } else {
                // Another worker count: the keys go to their new workers.
                let states: Vec<&Piece> = files.iter().collect();
                let _ = cut.rescale(&self.plan, &states, index, peers);
                // A source of the library's user goes on from its share of
                // the old sources' places.
                let local = index.checked_sub(self.first_worker);
                let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
                let share = local.and_then(|i| shares.get_mut(i)?.take());
                if let Some(Share {
                    place,
                    lines,
                    start,
                }) = share
                {
                    let bytes = postcard::to_allocvec(&place).unwrap_or_default();
                    cut.go_on(0, bytes, lines, start);
                }
                let all = keys.iter().flat_map(|(keys, _)| keys.iter().cloned());
                mine.extend(all.filter(|(_, _, kg)| group_worker(*kg, peers) == index));
            }
            if checkpoint.cuts.cuts_before_end() {
                // A file, which may have grown since: a worker whose
                // chunks were read to their end reads on, past what it read
                // (`cut::Read`), the chunks that are new or longer.
                cut.read_on();
            }
            if let Some(state) = cut.source_state(0) {
                counts.malformed.store(state.unread, Ordering::Relaxed);
            }
            let [refused, late] = cut.restored_count();
            counts.reloads_refused.store(refused, Ordering::Relaxed);
            counts.reloads_late.store(late, Ordering::Relaxed);
            let mut drops = drops.borrow_mut();
            drops.extend(
                mine.into_iter()
                    .map(|(pattern, key, kg)| ((pattern, key), kg)),
            );
        }
        drop(resume);
        cut
    }

    /// Worker `index`'s own source ([`Workers::with_sources`]), if the
    /// run reads sources: `None` on other runs, `Some((None, ..))` for a
    /// worker that reads nothing.
    fn take_source(&self, index: usize) -> Option<OwnSource> {
        let sources = self.sources.as_ref()?;
        let mut sources = sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .get_mut(index.checked_sub(self.first_worker)?)?
            .take()
    }

    /// Reads the worker's own `source` on a thread of the runtime's (its
    /// decoding, its per-split watermarks: each split's largest time less
    /// `--max-delay` less 1 ms, the least of them sent as the source's
    /// watermark, idle splits left out after `--idle-timeout`), whose
    /// batches the worker's source pulls through `live`. Resumed
    /// (`restored`), the source is sought to the place of the cut, and
    /// its splits' watermarks are those of the cut.
    fn read_source(
        &self,
        mut live: Live,
        mut source: Box<dyn Source>,
        mut input: LiveInput,
        restored: Option<&SourceState>,
    ) -> Live {
        live.names = source.split_names().unwrap_or_default();
        let (mut resumed, mut emitted) = (Vec::new(), None);
        if let Some(state) = restored.filter(|state| !state.place.is_empty()) {
            let origin = &self.origin;
            let sought = match SourcePlace::decode(&state.place) {
                // (each split's own, by name: the same source's, or on
                // another number of workers the `Share` made of the old
                // sources')
                Ok(place) => {
                    resumed = place.watermarks_of(&live.names);
                    let sought = source.seek(&place.position);
                    sought.map_err(|e| {
                        let said = format!("error: cannot read {origin}: {e}");
                        (said, e.to_string(), Some(e))
                    })
                }
                Err(e) => Err((
                    format!(
                        "error: checkpoint: the place of {origin} in the cut cannot be read: {e}"
                    ),
                    e.to_string(),
                    None,
                )),
            };
            if let Err((said, why, error)) = sought {
                say!(self.say, Error, "{said}");
                live.counts.read_error(origin, why);
                if let Some(e) = error {
                    // (the run's end, as one engine's refusal to seek is)
                    self.source_failed.set(cepheid_runtime::Error::Source(e));
                }
                // The input stops where the cut left it, as at a read
                // error (a last cut keeps the cut's place, from which a
                // resume reads on). Before, the feed was dropped: the
                // source ended, and a last cut "at the end" kept nothing
                // to read on from (fault hour seed 47, case 9).
                live.stop_failed(None);
                return live;
            }
            emitted = state.lateness.watermark();
        }
        let config = &self.config;
        // (its events named by their places when decisions are gathered:
        // their position, `docs/decisions.md`)
        let places = self.plan.gathers_decisions();
        input.read_source(
            source,
            config,
            self.plan.fields(),
            (resumed, emitted),
            places,
        );
        live.input = Some(input);
        live
    }

    /// Reads live input (standard input, a followed file) on the
    /// runtime's reader thread, whose batches the worker's source pulls
    /// through `live`, and SIGINT/SIGTERM as the single-engine run does:
    /// the input stops, event time stays where it is (with
    /// `--checkpoint`, the workers then take a last cut). Resumed
    /// (`restored`), a followed file is read from the place of the cut,
    /// or from its beginning when the file there is another one (rotated
    /// while the run was stopped), as the single run does.
    fn read_live(&self, mut live: Live, restored: Option<&SourceState>) -> Live {
        let taken = self.messages.lock().ok().and_then(|mut m| m.take());
        let policy = || Policy::new(&self.origin, self.config.strict);
        let mut input = taken.unwrap_or_else(|| LiveInput::new(policy()));
        let start = restored.map_or_else(Position::default, |state| self.live_start(state));
        let config = &self.config;
        let mut warn = |w: String| say!(self.say, Warning, "{w}");
        if let Err(e) = input.read(config, self.plan.fields(), start, live.places, &mut warn) {
            say!(self.say, Error, "error: cannot read {}: {e}", self.origin);
            live.counts.read_error(&self.origin, e);
            // (nothing to read: the source ends)
            return live;
        }
        if let Some(board) = &live.board {
            board.read_to(start.offset);
        }
        live.input = Some(input);
        live
    }

    /// Where a followed file goes on after a cut: the place its source
    /// recorded, if the file named `--events` holds, before that offset,
    /// the bytes it held then; else (rotated while the run was stopped)
    /// its beginning, with a warning, as the single run does
    /// (`resume.rs`).
    fn live_start(&self, state: &SourceState) -> Position {
        let Ok(at) = postcard::from_bytes::<Position>(&state.place) else {
            // Nothing was read before the cut.
            return Position::default();
        };
        let file = File::open(self.config.input.path());
        let same = at.tail.is_some_and(|tail| {
            file.as_ref()
                .is_ok_and(|file| Tail::of(file, at.offset) == Some(tail))
        });
        if at.offset == 0 || same {
            say!(
                self.say,
                Info,
                "cepheid: the input goes on at line {} of {}",
                at.lines + 1,
                self.config.input.path().display()
            );
            return at;
        }
        let why = Unusable::NotTheFile {
            path: self.config.input.path().to_path_buf(),
            offset: at.offset,
        };
        let notice = rotated_since(None, &why);
        self.say.report().notice(notice);
        Position::default()
    }
}

/// One step of the worker's dataflows, parked until there is work; but a
/// worker waiting for another's promise of writes (rules that write lists
/// on workers: `operator::held_by_peer`) steps on without parking for a
/// moment first (`spin`, in microseconds): with a core of its own the
/// other answers within its step, and a thread parked and woken for each
/// step of event time cost more than the step. The moment adapts: halved
/// (down to 2 µs) each time no answer came in it, as on a loaded machine
/// where the other waits for a core, doubled (up to 64 µs) when one did.
/// (Yielding the core while spinning was tried: under load each yield
/// gave a busy thread its whole slice, a run took 16-62 s.)
fn step_or_spin(worker: &mut timely::worker::Worker, spin: &mut u64) {
    if crate::operator::held_by_peer() {
        let until = Instant::now() + Duration::from_micros(*spin);
        loop {
            worker.step_or_park(Some(Duration::ZERO));
            if !crate::operator::held_by_peer() {
                *spin = (*spin * 2).min(64);
                return;
            }
            if Instant::now() >= until {
                *spin = (*spin / 2).max(2);
                break;
            }
            std::hint::spin_loop();
        }
    }
    worker.step_or_park(None);
}

/// After the writer took what came (`gathered`): flushed while the live
/// input waits (`waiting`), worker 0's cutter told the `frontier`, and what
/// waited for a cut (or for the last one) taken once it is made.
fn written(
    gathered: &mut Gathered,
    cutter: Option<&mut Cutter>,
    frontier: Option<Timestamp>,
    waiting: bool,
) {
    if waiting {
        // Also what the other workers wrote, before their
        // frontier moved.
        gathered.flush_now();
    }
    if let Some(cutter) = cutter {
        cutter.tick(frontier, gathered);
        if cutter.pending.is_none() {
            for chunk in std::mem::take(&mut gathered.held) {
                gathered.take(chunk);
            }
        }
        if cutter.ended {
            // After the last cut.
            for chunk in std::mem::take(&mut gathered.after_end) {
                gathered.take(chunk);
            }
        }
        if waiting {
            // And what was held during a cut it completed.
            gathered.flush_now();
        }
    }
}

/// The records of a worker's late events (`--late`), and, with decisions
/// gathered, the events, for worker 0 to decide (`decisions.rs`).
fn late_chunks<'scope>(
    late: crate::LateEvents<'scope, Record>,
    (keep_late, gathering): (bool, bool),
    late_count: Rc<Cell<u64>>,
) -> timely::dataflow::Stream<'scope, Timestamp, Vec<Chunk>> {
    let mut format = Formatter::default();
    late.unary::<CapacityContainerBuilder<Vec<Chunk>>, _, _, _>(Pipeline, "CepLate", move |_, _| {
        move |input, output| {
            input.for_each_stamp(|cap, data| {
                let mut lines = Block::default();
                let mut to_decide = Vec::new();
                for batch in data {
                    late_count.set(late_count.get() + batch.len() as u64);
                    for stamped in batch.drain(..) {
                        if keep_late {
                            format.late(&stamped.event);
                            lines.push(Kind::Late, &format);
                        }
                        if gathering {
                            to_decide.push(stamped);
                        }
                    }
                }
                if !lines.is_empty() {
                    output.session(&cap).give(Chunk::Records(lines));
                }
                if !to_decide.is_empty() {
                    output.session(&cap).give(Chunk::Late(to_decide));
                }
            });
        }
    })
}
