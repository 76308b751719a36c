//! The run itself: a [`Session`] feeds the reader thread's batches to the
//! engine, applies rule changes between them, takes checkpoints and ends
//! event time; the engine's sink ([`Reporting`]) hands records to the
//! output and tells dropped partial matches.

use super::*;
use crate::audit::{Origin, RuleChange};
use cepheid_engine::engine::EntryOrigin;

impl KeyFields {
    pub(super) fn new<'p>(
        patterns: impl IntoIterator<Item = &'p cepheid_core::pattern::Pattern>,
        table: &FieldTable,
    ) -> KeyFields {
        let patterns = patterns
            .into_iter()
            .map(|p| {
                let fields = p
                    .partition_by
                    .iter()
                    .map(|path| (table.intern(path), path.to_string()))
                    .collect();
                (p.name.clone(), fields, false)
            })
            .collect();
        KeyFields { patterns }
    }

    /// The rules changed: the new patterns' key fields; a name that stays
    /// is not told again.
    fn reload<'p>(
        &mut self,
        patterns: impl IntoIterator<Item = &'p cepheid_core::pattern::Pattern>,
        table: &FieldTable,
    ) {
        let mut fresh = KeyFields::new(patterns, table);
        for (name, _, told) in &mut fresh.patterns {
            *told = self.patterns.iter().any(|(n, _, t)| n == name && *t);
        }
        *self = fresh;
    }

    /// Which patterns were told about an object key (for checkpoints).
    fn told(&self) -> Vec<bool> {
        self.patterns.iter().map(|(_, _, told)| *told).collect()
    }

    /// Resumed from a checkpoint: which patterns were told already.
    pub(super) fn restore(&mut self, told: &[bool]) {
        if told.len() == self.patterns.len() {
            for ((_, _, t), &was) in self.patterns.iter_mut().zip(told) {
                *t = was;
            }
        }
    }

    /// Says (once per pattern) which key fields of `record` are objects (or
    /// lists holding one).
    fn check(&mut self, record: &Record, path: &str, line_no: u64, report: &mut dyn Report) {
        if record.objects().is_empty() {
            return;
        }
        for (name, fields, told) in &mut self.patterns {
            if *told {
                continue;
            }
            let Some((_, field)) = fields.iter().find(|(id, _)| record.objects().contains(id))
            else {
                continue;
            };
            *told = true;
            report.notice(Notice::line(Level::Warning, format!(
                "{path}:{line_no}: pattern `{name}`: partition key `{field}` is an object or a list holding one, which cannot be a key; such events are skipped for this pattern and counted"
            )));
        }
    }
}

impl Drops {
    /// The keys as JSON (for checkpoints: the pattern as its index among
    /// `names`, the engine's patterns), in a fixed order.
    fn to_json(&self, names: &[String]) -> Vec<(usize, Vec<serde_json::Value>)> {
        let mut keys: Vec<_> = self
            .keys
            .iter()
            .filter_map(|(name, key)| {
                let p = names.iter().position(|n| n == name)?;
                Some((p, key.iter().map(value_to_json).collect::<Vec<_>>()))
            })
            .collect();
        keys.sort_by(|a, b| (a.0, format!("{:?}", a.1)).cmp(&(b.0, format!("{:?}", b.1))));
        keys
    }

    /// Resumed from a checkpoint: the keys already told.
    pub(super) fn restore(&mut self, keys: &[(usize, Vec<serde_json::Value>)], names: &[String]) {
        self.keys = keys
            .iter()
            .filter_map(|(p, key)| {
                let name = names.get(*p)?.clone();
                Some((name, key.iter().map(value_from_json).collect()))
            })
            .collect();
    }
}

/// The engine's counts of what its lists and indicators left out: adds
/// and values refused, events and values left out.
pub(super) fn left_out_counts(engine: &Engine<Record>) -> [u64; 4] {
    let s = engine.memory_stats();
    [
        s.refused_entries,
        s.bad_entries,
        s.refused_events,
        s.non_numeric,
    ]
}

/// The input position `ORIGIN:LINE` of an event, the id of its decisions
/// when its scene has no `id` field (`docs/decisions.md`): written into
/// `text` (its room kept from event to event), then one allocation of the
/// value's own (BENCHMARKS.md, "`cepheid run --decisions`").
fn position(text: &mut String, origin: &str, line: u64) -> Value {
    text.clear();
    text.push_str(origin);
    text.push(':');
    let mut digits = [0_u8; 20];
    let (mut at, mut n) = (digits.len(), line);
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // (ASCII digits)
    text.extend(digits[at..].iter().map(|&d| char::from(d)));
    Value::Str(std::sync::Arc::from(text.as_str()))
}

impl Reporting<'_> {
    /// Says one line.
    fn say(&mut self, level: Level, text: impl std::fmt::Display) {
        self.report.notice(Notice::line(level, text));
    }

    /// Says what the engine's lists and indicators left out for the first
    /// time ([`LimitNotices::left_out`]): looked at between batches (the
    /// engine's counts compared, nothing per event).
    pub(super) fn tell_left_out(&mut self, engine: &Engine<Record>) {
        let now = left_out_counts(engine);
        if now == self.left_out_seen {
            return;
        }
        self.left_out_seen = now;
        let report = &mut *self.report;
        (self.notices).left_out(engine.left_out(), |notice| report.notice(notice));
    }
}

impl EngineSink<Record> for Reporting<'_> {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.out.format.record("match", m, None);
        self.out.emit(if m.shadow() {
            Kind::Shadow
        } else {
            Kind::Match
        });
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.out.format.record("timeout", m, Some(expired_at));
        self.out.emit(if m.shadow() {
            Kind::Shadow
        } else {
            Kind::Timeout
        });
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        if self.out.late {
            self.out.format.late(event);
            self.out.emit(Kind::Late);
        }
    }

    fn on_decision(&mut self, decision: &cepheid_engine::Decision) {
        if self.out.decisions {
            self.out.format.decision(decision);
            self.out.emit(Kind::Decision);
        }
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, Record>) {
        let keys = &mut self.drops.keys;
        let new_key = if partial.capped() {
            false
        } else if keys.len() >= MAX_DROP_KEYS {
            // (past the bound, nothing is said: only whether there were
            // more is kept)
            self.drops.overflow = true;
            return;
        } else {
            keys.insert((partial.pattern().to_string(), partial.key().to_vec()))
        };
        let report = &mut *self.report;
        self.notices
            .dropped(partial, new_key, |notice| report.notice(notice));
    }
}

impl Session<'_> {
    /// Says one line.
    fn say(&mut self, level: Level, text: impl std::fmt::Display) {
        self.out.say(level, text);
    }

    /// Shows the run to an observing report (after a batch, on an idle
    /// second, at the end): nothing per event.
    pub(super) fn observe(&mut self, finished: bool) {
        if !self.observes {
            return;
        }
        let source_lag = match (&self.config.input, &self.source) {
            (Input::File(path), None) => std::fs::metadata(path)
                .ok()
                .map(|m| m.len().saturating_sub(self.position.offset)),
            _ => None,
        };
        let stats = self.engine.stats();
        let records = match &mut self.out.out.tap {
            Some(tap) => tap.records(),
            None => &[],
        };
        let mut view = RunView::of_engine(&*self.engine);
        view.events_read = stats.events;
        view.malformed = self.counters.malformed;
        view.late = stats.late;
        view.records = records;
        view.source_lag = source_lag;
        if !self.lag.is_empty() {
            view.consumer_lag = Some(self.lag.iter().map(|l| l.records).sum());
            view.split_lag = &self.lag;
        }
        view.field_warnings = self.fields.told();
        view.rules_waiting = self.rules_waiting;
        view.rule_changes = self.history.as_slice();
        view.finished = finished;
        view.no_watermark_yet = self.no_split_watermark;
        self.out.report.tick(&view);
        if let Some(tap) = &mut self.out.out.tap {
            tap.shown();
        }
    }

    /// Says `event` to the report (observing or not: events are rare, a
    /// checkpoint or a change of rules, and a service counts them).
    fn event(&mut self, event: &RunEvent<'_>) {
        self.out.report.event(event);
    }

    /// Feeds every decoded line to the engine, then ends event time.
    /// Returns why the run was stopped, if it was.
    pub(super) fn stream(
        &mut self,
        input: Opened,
        decoder: Decoder,
        tx: Tx,
        messages: Receiver<Message>,
    ) -> Result<Option<String>, Stop> {
        let config = self.config;
        let policy = Policy::new(config.input.describe(), config.strict);
        // Kept for the whole run: the watch ends with it.
        let _watcher = self.watch(&tx);
        // Control records (JSON lines only): the reader thread waits after
        // each until it is applied.
        let (go_on, controls) = match config.format {
            Format::JsonLines => {
                let (go_on, controls) = mpsc::sync_channel::<()>(1);
                (Some(go_on), Some(controls))
            }
            Format::Csv => (None, None),
        };
        let mut reading = reading(
            config,
            self.engine.fields(),
            decoder,
            self.position,
            self.checkpoints.is_some(),
            controls,
        );
        // (a source's events named by their place, their decisions'
        // position: asked for every event of a run that writes decisions,
        // whose rules may get scenes by a change of them while the reader
        // thread decodes ahead)
        reading.places = self.out.out.decisions;
        reading.timing.splits =
            (config.split_watermarks && config.time != Time::Processing).then(|| {
                let resumed = self.splits.clone().unwrap_or_default();
                SplitTiming::of(config, resumed, self.engine.current_watermark())
            });
        if self.reload_first {
            // (first in the channel: before any line)
            let _ = tx.send(Message::Reload(Reload::Resumed));
        }
        let reader = spawn_reader(input, reading, tx);
        let mut timing = match config.time {
            Time::Processing => Timing::Processing,
            Time::Event { .. } | Time::Record => Timing::Event(
                config
                    .idle_timeout
                    .map(|timeout| Idle::new(timeout, Instant::now())),
            ),
        };
        let (stop, stopped) = loop {
            // (what the last message's lines or changes left out)
            self.out.tell_left_out(self.engine);
            let waiting = Instant::now();
            let own = timing.wait(waiting, self.engine);
            // A checkpoint due by time is taken when it is due, also while
            // no input comes (a followed file or a topic gone quiet: the
            // records of its interval would otherwise wait for the next
            // line to be committed, and the checkpoint with them).
            let checkpoint = self.checkpoint_due_in(waiting);
            // (an observer sees the run at least once per second)
            let observer = self.observes.then_some(OBSERVE_EVERY);
            let message = match [own, checkpoint, observer].into_iter().flatten().min() {
                None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => messages.recv_timeout(wait),
            };
            // (a checkpoint's file written meanwhile: committed now)
            self.settle(false)?;
            let batch = match message {
                Ok(Message::Checkpointed) => continue,
                Ok(Message::Batch(batch)) => {
                    timing.arrived(Instant::now());
                    batch
                }
                Err(RecvTimeoutError::Timeout)
                    if !own.is_some_and(|wait| waiting.elapsed() >= wait) =>
                {
                    // (a checkpoint come due or the observer's second, not
                    // the run's own wait)
                    self.checkpoint_if_due()?;
                    self.observe(false);
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {
                    timing.tick(Instant::now(), wall_ms(), self.engine, &mut self.out);
                    self.flush_now()?;
                    if let Some(checkpoints) = &mut self.checkpoints {
                        checkpoints.schedule.advanced(0);
                    }
                    self.checkpoint_if_due()?;
                    self.observe(false);
                    continue;
                }
                Ok(Message::Stop(why)) => break (None, Some(why)),
                Ok(Message::ListsChanged) => {
                    self.lists_changed(None);
                    continue;
                }
                Ok(Message::List(record)) => {
                    self.list_from_handle(&record);
                    continue;
                }
                Ok(Message::Reload(why)) => {
                    self.reload_from_disk(why)?;
                    self.flush_now()?;
                    continue;
                }
                Ok(Message::Seen(seen)) => {
                    let report = &mut *self.out.report;
                    self.fields
                        .report(0, seen, &mut |notice| report.notice(notice));
                    continue;
                }
                Ok(Message::Lag(lag)) => {
                    self.lag = lag;
                    continue;
                }
                Ok(Message::RulesWaiting(waiting)) => {
                    self.rules_waiting = waiting;
                    continue;
                }
                Ok(Message::End) | Err(RecvTimeoutError::Disconnected) => break (None, None),
            };
            if let Some(stop) = self.take(batch, &mut timing, &policy, go_on.as_ref())? {
                break (Some(stop), None);
            }
        };
        let ended = self.end(stop, stopped, reader);
        // (what the end of event time left out)
        self.out.tell_left_out(self.engine);
        ended
    }

    /// Watches the pattern files with [`Config::watch`] (the watch ends
    /// when what it returns is dropped).
    #[cfg(feature = "watch")]
    fn watch(&mut self, tx: &Tx) -> Vec<notify::RecommendedWatcher> {
        if !self.config.watch {
            return Vec::new();
        }
        let mut watchers = Vec::new();
        match crate::reload::watch(&self.config.patterns, tx.clone()) {
            Ok(watcher) => watchers.push(watcher),
            Err(e) => {
                self.say(
                    Level::Warning,
                    format!("warning: cannot watch the pattern files ({e}); a reload through the run's handle (Handle::reload) still reads them"),
                );
            }
        }
        if !self.config.lists.is_empty() {
            let paths: Vec<std::path::PathBuf> =
                self.config.lists.iter().map(|l| l.path.clone()).collect();
            match crate::reload::watch_for(&paths, tx.clone(), || Message::ListsChanged) {
                Ok(watcher) => watchers.push(watcher),
                Err(e) => self.say(
                    Level::Warning,
                    format!("warning: cannot watch the reference files of `Config::lists` ({e}); their lists stay as they were read"),
                ),
            }
        }
        watchers
    }

    /// Says that the pattern files cannot be watched without the feature
    /// `watch`.
    #[cfg(not(feature = "watch"))]
    fn watch(&mut self, _tx: &Tx) -> Option<()> {
        if self.config.watch {
            self.say(
                Level::Warning,
                "warning: cannot watch the pattern files (built without the feature `watch`); a reload through the run's handle (Handle::reload) still reads them",
            );
            if !self.config.lists.is_empty() {
                self.say(
                    Level::Warning,
                    "warning: cannot watch the reference files of `Config::lists` (built without the feature `watch`); their lists stay as they were read",
                );
            }
        }
        None
    }

    /// Reads the reference files again ([`Config::lists`]) and makes
    /// their lists what they give now, from the watermark then + 1 (the
    /// switch point of a rule change): every event processed after it
    /// sees the new entries. `only`: the lists of those names alone, read
    /// whole (the rules changed and declare them anew: empty).
    fn lists_changed(&mut self, only: Option<&[String]>) {
        if self.config.lists.is_empty() {
            return;
        }
        let at = (self.engine.current_watermark()).map_or(Timestamp::MIN, |w| w.saturating_add(1));
        let files: Vec<crate::lists::ListFile> = match only {
            None => self.config.lists.clone(),
            Some(names) => (self.config.lists.iter())
                .filter(|f| names.contains(&f.list))
                .cloned()
                .collect(),
        };
        let report = &mut *self.out.report;
        let result = crate::lists::refresh(
            &files,
            self.engine,
            // (what each file gave: its holds in the engine's list)
            &mut Vec::new(),
            at,
            crate::lists::When::Changed,
            &mut |n| report.notice(n),
        );
        match result {
            Ok(refreshed) => self.reloads.lists_not_applied += refreshed.not_applied,
            Err(e) => self.say(Level::Warning, format!("cepheid: {e}")),
        }
    }

    /// Gives the engine the event `record` at `ts`, read at line `line`
    /// of `origin` (a [`Source`]'s event: at `place`, as it describes it,
    /// when the run writes decisions): with its position when its
    /// decisions are written (their id when its scene has no `id` field,
    /// or it lacks it: `docs/decisions.md`; `text` keeps its room from
    /// event to event).
    #[inline]
    fn push(
        &mut self,
        timing: &Timing,
        ts: Timestamp,
        record: Record,
        (origin, line, place): (&str, u64, Option<String>),
        text: &mut String,
    ) {
        if self.out.out.decisions && self.engine.scenes().next().is_some() {
            let position = match place {
                Some(place) => Value::Str(std::sync::Arc::from(place)),
                None => position(text, origin, line),
            };
            let (engine, out) = (&mut *self.engine, &mut self.out);
            timing.push_positioned(ts, wall_ms, record, position, engine, out);
        } else {
            timing.push(ts, wall_ms, record, self.engine, &mut self.out);
        }
    }

    /// An event at `ts` is given to the engine ([`Summary::event_time`]).
    #[inline]
    fn saw(&mut self, ts: Timestamp) {
        self.event_time = Some(match self.event_time {
            Some((least, largest)) => (least.min(ts), largest.max(ts)),
            None => (ts, ts),
        });
    }

    /// Gives the engine the event `record`, the request `request` of the
    /// run's source ([`Source::request`](crate::Source::request)), at once
    /// at `ts` (the time its source gives it: a service's stamp), and its
    /// answer to the run's [`Answers`](crate::Answers); its decisions go
    /// to the run's decisions output as any event's.
    fn request(
        &mut self,
        ts: Timestamp,
        record: Record,
        mut request: cepheid_engine::engine::Request,
    ) {
        use cepheid_engine::engine::Answer;
        if let Some(answers) = self.answers.as_deref_mut() {
            answers.taking(&mut request);
        }
        let asked = self.answers.is_some().then(|| request.clone());
        let answer = match request.dry_run {
            // (a dry run changes nothing; one the engine cannot make, its
            // state not copied, is answered so)
            true => match self.engine.request_dry(ts, request, record) {
                Ok(answer) => answer,
                Err(e) => Answer::NotEvaluated(e.to_string()),
            },
            false => self.engine.request(ts, request, record, &mut self.out),
        };
        if let Answer::Taken { decisions, .. } = &answer {
            for decision in decisions {
                cepheid_engine::Sink::on_decision(&mut self.out, decision);
            }
        }
        if let (Some(answers), Some(asked)) = (self.answers.as_deref_mut(), asked) {
            answers.answer(&asked, &answer);
        }
    }

    /// Gives a batch of the reader thread's lines to the engine. Returns
    /// why the input ends there (a read error, a malformed line with
    /// [`Config::strict`]), if it does.
    fn take(
        &mut self,
        batch: Batch,
        timing: &mut Timing,
        policy: &Policy,
        go_on: Option<&SyncSender<()>>,
    ) -> Result<Option<Stop>, Stop> {
        let lines = batch.lines.len();
        if batch.open_end {
            // The last line, without its newline yet: a checkpoint
            // before it (the position is just before it), none after.
            self.checkpoint_if_dirty()?;
            self.open_end = true;
        }
        let mut places = batch.places.into_iter().peekable();
        let mut requests = (batch.requests.map_or_else(Vec::new, Vec::from).into_iter()).peekable();
        let mut source_error = batch.source_error;
        // (an event's position is written here, then copied once into
        // its value)
        let mut text = String::new();
        for (index, (line_no, item)) in batch.lines.into_iter().enumerate() {
            let place = places.next_if(|(i, _)| *i == index).map(|(_, p)| p);
            let got = match item {
                // (the one line of most: no detour)
                Ok(Entry::Item(Item::Event(ts, mut record))) => {
                    if record.values().len() < self.stale_below {
                        record = reread(record, self.engine.fields());
                    }
                    self.keys
                        .check(&record, policy.origin(), line_no, &mut *self.out.report);
                    self.saw(ts);
                    match requests.next_if(|(i, _)| *i == index) {
                        Some((_, request)) => self.request(ts, record, request),
                        // (a source's place: the event's position)
                        None => self.push(
                            timing,
                            ts,
                            record,
                            (policy.origin(), line_no, place),
                            &mut text,
                        ),
                    }
                    self.check_output()?;
                    continue;
                }
                // (the place kept: a control record's origin)
                item => Batch::typed(
                    &mut source_error,
                    policy.take(item, || line_no, place.clone()),
                ),
            };
            match got {
                // (taken above; a blank line)
                Some(Got::Event(..)) | None => {}
                Some(Got::Rules(control, name)) if control.is_list() => {
                    // (the reader thread did not wait: a list changes no
                    // field, `source::waits_after`)
                    self.list_from_stream(&control, &name, false);
                }
                Some(Got::Rules(control, name)) => {
                    let origin = match &place {
                        Some(place) => Origin::of_place(place, control.rules_file()),
                        None => Origin::Line {
                            input: policy.origin().to_string(),
                            line: line_no,
                            rules_file: control.rules_file(),
                        },
                    };
                    self.reload_from_stream(&control, &name, false, origin);
                    // The reader thread decodes the next lines now (with
                    // the new rules' fields).
                    if let Some(go_on) = go_on {
                        let _ = go_on.send(());
                    }
                }
                Some(Got::SourceRules(rules, place)) => {
                    // (a record of the source's rules stream: placed
                    // as the source says)
                    if let Some(late) = rules.late_notice(&place) {
                        self.reloads.late += 1;
                        self.out.report.notice(late);
                    }
                    if let Some(ahead) = rules.ahead_notice(&place) {
                        self.event(&RunEvent::RulesAhead {
                            what: ahead.as_str(),
                        });
                        self.out.report.notice(ahead);
                    }
                    let list = rules.control.is_list();
                    match list {
                        true => self.list_from_stream(&rules.control, &place, true),
                        false => {
                            let origin = Origin::of_place(&place, rules.control.rules_file());
                            self.reload_from_stream(&rules.control, &place, true, origin);
                        }
                    }
                    match go_on {
                        // (the reader thread waits after a change of the
                        // rules, not of a list: `source::waits_after`)
                        Some(go_on) if !list => {
                            let _ = go_on.send(());
                        }
                        // (no control records, CSV: the reader thread did
                        // not wait; what it decoded since is read again)
                        None if !list => self.stale_below = self.engine.fields().len(),
                        _ => {}
                    }
                }
                Some(Got::Watermark(_)) if timing.is_processing() => {
                    if !self.counters.watermarks_told {
                        self.counters.watermarks_told = true;
                        self.say(
                            Level::Warning,
                            format!(
                            "{}:{line_no}: `$watermark` lines are ignored with `Time::Processing`",
                            policy.origin()
                        ),
                        );
                    }
                }
                Some(Got::Watermark(t)) => {
                    self.counters.punctuated = true;
                    self.no_split_watermark = false;
                    self.engine.watermark(t, &mut self.out);
                }
                Some(Got::SplitWatermark(_)) if timing.is_processing() => {}
                Some(Got::SplitWatermark(t)) => {
                    self.no_split_watermark = false;
                    self.engine.watermark(t, &mut self.out);
                }
                Some(Got::Failed(notice, error)) => {
                    self.out.report.notice(notice);
                    return Ok(Some(Stop::Failed(*error)));
                }
                Some(Got::Malformed(notice, end)) => {
                    self.counters.malformed += 1;
                    self.out.report.notice(notice);
                    if let Some(error) = end {
                        return Ok(Some(Stop::Failed(*error)));
                    }
                }
            }
            self.check_output()?;
        }
        if !batch.open_end {
            self.position = batch.at;
            if batch.place.is_some() {
                self.place = batch.place;
            }
        }
        self.mid_batch = batch.partial;
        if batch.splits.is_some() {
            self.splits = batch.splits;
        }
        self.out.report.progress(batch.at.offset);
        if !self.counters.forced_told && self.engine.stats().forced_watermarks > 0 {
            self.counters.forced_told = true;
            let said = crate::counts::waited_for_watermark(self.config.max_waiting);
            self.say(Level::Warning, said);
        }
        if batch.stalled {
            // The input waits for its writer: whatever the watermark
            // released goes out now (a live stream's matches are not held
            // in a buffer until the next burst or the end), written by
            // the outputs' threads while the run goes on (a service's
            // every batch: waiting for each write cost its run's thread
            // two fifths of its time).
            (self.out.out.output.hand_over()).map_err(|_| Stop::Output)?;
        }
        if let Some(seen) = batch.seen {
            // (what the reader saw up to here: a checkpoint keeps it)
            let report = &mut *self.out.report;
            self.fields
                .report(0, seen, &mut |notice| report.notice(notice));
        }
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.schedule.advanced(lines);
        }
        self.checkpoint_if_due()?;
        self.observe(false);
        Ok(None)
    }

    /// The input ended (`stop`: on an error; `stopped`: by
    /// [`Handle::stop`], not at its end): event time ended as the run
    /// says, the last checkpoint. Returns why the run was stopped, if it
    /// was.
    fn end(
        &mut self,
        stop: Option<Stop>,
        stopped: Option<String>,
        reader: std::thread::JoinHandle<()>,
    ) -> Result<Option<String>, Stop> {
        let config = self.config;
        if let Some(why) = stopped {
            // Stopped, not at the end of the input: event time stays where
            // it is (the reader thread may be waiting for input; it ends
            // with the process). A last checkpoint lets the next run go on
            // from here.
            self.out.report.notice(Handle::stopped(&why));
            self.check_output()?;
            self.checkpoint_if_dirty()?;
            // (said as workers say it: the newest checkpoint is where
            // the run stopped, and the next run replays nothing)
            if let Some(c) = &self.checkpoints {
                if c.number > 0 && !c.schedule.dirty() {
                    let said = crate::checkpoint::said_at_stop(&c.dir, true);
                    self.out.report.notice(said);
                }
            }
            return Ok(Some(why));
        }
        if stop.is_none() && config.field_warnings.is_some() {
            // The input ended: what no event carried.
            let seen = self.fields.of_reader(0);
            let report = &mut *self.out.report;
            self.fields
                .at_end(seen.as_ref(), &mut |notice| report.notice(notice));
            // (kept by the end's checkpoint, for a run resumed over a
            // grown input)
            if let Some(c) = &mut self.checkpoints {
                if self.fields.told_state() != self.counters.fields {
                    c.schedule.advanced(0);
                }
            }
        }
        if stop.is_none() {
            // The input ended: the thread is done (a panic in it is passed
            // on rather than taken for the end of input).
            if let Err(panic) = reader.join() {
                std::panic::resume_unwind(panic);
            }
            // Checkpointed before the end of event time: run again, the
            // run ends the same way; the input grown, it goes on.
            self.checkpoint_if_dirty()?;
        }
        if config.flush_at_end {
            self.engine.watermark(Timestamp::MAX, &mut self.out);
            self.no_split_watermark = false;
        } else if !self.counters.punctuated {
            self.engine.finish(&mut self.out);
            self.no_split_watermark = false;
        }
        self.check_output()?;
        if stop.is_none() && self.out.out.output.sink().commits_at_end() {
            // What the end of event time released commits with a last
            // checkpoint (a transactional sink cannot take it back on
            // resuming, as a file is truncated).
            self.take_checkpoint(true)?;
        }
        stop.map_or(Ok(None), Err)
    }

    /// A control record (`name`: its place, `events.jsonl:12`): the rules
    /// it names replace the engine's here. A set that does not load is
    /// said and counted, and the old rules go on. `own`: a record of the
    /// source's rules stream, which the operator named (allowed without
    /// `rules_from_stream`).
    fn reload_from_stream(&mut self, control: &Control, name: &str, own: bool, origin: Origin) {
        let report = &mut *self.out.report;
        let (where_, read) = control.read(self.config, own, name, &mut |n| report.notice(n));
        self.apply(read, &where_, origin);
    }

    /// A change of a list in the input (`name`: its place): made from the
    /// watermark then + 1 on, as a change of rules. One the run does not
    /// take (changes of lists from the stream off, no such list) is said
    /// and counted with the malformed lines. `own`: a record of the
    /// source's rules stream.
    fn list_from_stream(&mut self, control: &Control, name: &str, own: bool) {
        let at = (self.engine.current_watermark()).map_or(Timestamp::MIN, |w| w.saturating_add(1));
        let read = control.read_list(self.config, own);
        let made = read.clone().and_then(|record| {
            let edits = record.edits();
            let origin = (&*record.list, &EntryOrigin::Records);
            crate::lists::apply(self.engine, origin, &edits, at).map_err(|e| e.to_string())
        });
        if self.config.audit_lists {
            let origin = match own {
                true => Origin::of_place(name, None),
                false => Origin::of_line(name, None),
            };
            let event_time = self.engine.current_watermark().map(|_| at);
            let record = crate::audit::ListChange::of(
                event_time,
                origin,
                read.as_deref().map_err(String::as_str),
                made.as_ref().err().map(String::as_str),
            );
            if self.out.out.output.sink().takes_audit() {
                (self.out.out.output).write(Kind::Audit, b"", record.line().as_bytes());
            }
        }
        if let Err(why) = made {
            self.counters.malformed += 1;
            let place = format!("{name} ({})", control.describe());
            let notice = crate::lists::refused(&place, &why, true);
            self.out.report.notice(notice);
        }
    }

    /// A change of a list asked through the run's handle: made from the
    /// watermark then + 1 on, and said, as a watched file's change.
    fn list_from_handle(&mut self, record: &crate::lists::ListRecord) {
        let at = (self.engine.current_watermark()).map_or(Timestamp::MIN, |w| w.saturating_add(1));
        let edits = record.edits();
        let list = &record.list;
        match crate::lists::apply(self.engine, (list, &EntryOrigin::Library), &edits, at) {
            Ok(()) => self.say(
                Level::Info,
                crate::lists::said_at(&record.describe_handle(), at),
            ),
            Err(e) => {
                let place = crate::lists::handle_place(list);
                let notice = crate::lists::refused(&place, &e.to_string(), false);
                self.out.report.notice(notice);
            }
        }
    }

    /// The pattern paths again, applied here, between two batches. Lines
    /// the reader thread decoded before the change are read again when
    /// they come (`stale_below`).
    fn reload_from_disk(&mut self, why: Reload) -> Result<(), Stop> {
        let report = &mut *self.out.report;
        let (where_, read) = why.read(self.config, &mut |n| report.notice(n));
        let origin = why.origin(self.config);
        if self.apply(read, &where_, origin) {
            self.stale_below = self.engine.fields().len();
        }
        self.check_output()
    }

    /// Makes the rules `read` (loaded and checked, its diagnostics said)
    /// the engine's rule set (`where_` names what asked for it in
    /// messages) and says what that did to each pattern; a set refused is
    /// said and counted, and changes nothing. True when the rules were put
    /// in force.
    fn apply(&mut self, read: RulesRead, where_: &str, origin: Origin) -> bool {
        let at = (self.engine.current_watermark()).map(|w| w.saturating_add(1));
        let policy = self.config.reload_policy;
        let refused = |this: &mut Self, why: String| {
            this.reloads.refused += 1;
            this.audit(RuleChange::refused(at, origin.clone(), policy, &why));
            crate::reload::say_refused(&mut *this.out.report, &why);
            false
        };
        let (rules, watch) = match read {
            RulesRead::Checked { rules, watch, .. } => (rules, watch),
            RulesRead::Refused(why) => return refused(self, why),
            RulesRead::Later(why) => {
                self.say(Level::Warning, why);
                return false;
            }
        };
        let declared_before = self.engine.declarations().clone();
        let lists_before = &declared_before.lists;
        let before = self.engine.pattern_stats();
        match self.engine.set_rules(&rules, policy, &mut self.out) {
            Ok(changes) => {
                // Lists declared anew (or of another kind) are empty: their
                // files' entries again.
                let anew: Vec<String> = (self.engine.declarations().lists.iter())
                    .filter(|l| {
                        !(lists_before.iter()).any(|b| b.name == l.name && b.kind == l.kind)
                    })
                    .map(|l| l.name.to_string())
                    .collect();
                let emptied =
                    crate::audit::started_empty(&declared_before, self.engine.declarations());
                let after = self.engine.pattern_stats();
                let stats = (&before[..], &after[..]);
                let record =
                    RuleChange::applied(at, origin, policy, changes.iter(), stats, emptied);
                self.audit(record);
                if !anew.is_empty() {
                    self.lists_changed(Some(&anew));
                }
                self.fields.set_watch(watch);
                self.reloads.applied += 1;
                self.counters.rules_changed |= changes.any();
                self.keys
                    .reload(self.engine.patterns(), self.engine.fields());
                let lines: String = changes
                    .to_string()
                    .lines()
                    .map(|line| format!("  {line}\n"))
                    .collect();
                self.out
                    .report
                    .notice(crate::reload::reloaded(where_, &lines));
                self.event(&RunEvent::Reloaded);
                true
            }
            Err(e) => {
                self.say(Level::Warning, e);
                let why = crate::reload::not_reloaded(where_, "do not compile");
                refused(self, why)
            }
        }
    }

    /// Keeps `change` in the history and writes it to the audit file (or
    /// the sink's audit topic), if the run has one.
    fn audit(&mut self, change: RuleChange) {
        if self.out.out.output.sink().takes_audit() {
            self.out
                .out
                .output
                .write(Kind::Audit, b"", change.line().as_bytes());
        }
        self.history.push(change);
    }

    /// The audit record of the rules a run starts with (not a resumed
    /// run's: it goes on with the rules of its checkpoint, whose record
    /// was written): every pattern added, from the start of event time.
    pub(super) fn first_record(&mut self) {
        let origin = Origin::files(&self.config.patterns, None);
        let none = cepheid_core::lookup::Declarations::default();
        let emptied = crate::audit::started_empty(&none, self.engine.declarations());
        let patterns = (self.engine.pattern_stats().into_iter()).map(|s| (s.name, s.version));
        let record = RuleChange::initial(origin, self.config.reload_policy, patterns, emptied);
        self.audit(record);
    }

    /// Flushes the outputs (a live stream's records go out now); stops the
    /// run when writing failed.
    fn flush_now(&mut self) -> Result<(), Stop> {
        self.out.out.output.flush().map_err(|_| Stop::Output)
    }

    /// Stops the run when writing output failed.
    fn check_output(&mut self) -> Result<(), Stop> {
        match self.out.out.output.failed() {
            false => Ok(()),
            true => Err(Stop::Output),
        }
    }

    /// Takes a checkpoint when one is due: its snapshot now, its file on
    /// the checkpoint thread while the run goes on. One due while the
    /// one before is still being written is taken once that one is
    /// durable (one file at a time; counted, and said once).
    fn checkpoint_if_due(&mut self) -> Result<(), Stop> {
        self.settle(false)?;
        let Some(c) = &mut self.checkpoints else {
            return Ok(());
        };
        if !c.schedule.due(Instant::now()) {
            return Ok(());
        }
        match &mut c.in_flight {
            None => self.take_checkpoint(false),
            Some(flight) => {
                if !std::mem::replace(&mut flight.deferred, true) {
                    c.deferred += 1;
                    if c.deferred == 1 {
                        let text = match flight.committing {
                            None => format!(
                                "cepheid: checkpoint {} came due while checkpoint {} was still being written: it is taken once that one is durable (one checkpoint file is written at a time; a longer `Config::checkpoint_every` leaves more time to each)",
                                flight.number + 1,
                                flight.number
                            ),
                            Some(_) => format!(
                                "cepheid: checkpoint {} came due while the output still committed checkpoint {}: it is taken once that one is committed (one commit at a time; a longer `Config::checkpoint_every` leaves more time to each)",
                                flight.number + 1,
                                flight.number
                            ),
                        };
                        self.say(Level::Warning, text);
                    }
                }
                Ok(())
            }
        }
    }

    /// How long until a checkpoint is due by time, when one can be taken
    /// then (see [`Schedule::due_in`]; none in the middle of a batch cut
    /// after a control record, nor after a last line without its
    /// newline).
    fn checkpoint_due_in(&self, now: Instant) -> Option<Duration> {
        if self.open_end || self.mid_batch {
            return None;
        }
        self.checkpoints.as_ref()?.schedule.due_in(now)
    }

    /// Takes a checkpoint when anything happened since the last one, and
    /// waits for its file (and for the one being written before it).
    fn checkpoint_if_dirty(&mut self) -> Result<(), Stop> {
        self.settle(true)?;
        match &self.checkpoints {
            Some(c) if c.schedule.dirty() => self.take_checkpoint(true),
            _ => Ok(()),
        }
    }

    /// Takes a checkpoint (after the one being written, waited for): its
    /// snapshot now, its file on the checkpoint thread, waited for with
    /// `wait` or when the sink takes no writes before its commit
    /// ([`Sink::writes_before_commit`]). A failure stops the run; the
    /// previous checkpoint is kept.
    fn take_checkpoint(&mut self, wait: bool) -> Result<(), Stop> {
        self.settle(true)?;
        match self.begin_checkpoint() {
            Err(Stop::Failed(error)) => {
                self.event(&RunEvent::CheckpointFailed { error: &error });
                return Err(Stop::Failed(error));
            }
            result => result?,
        }
        if wait || !self.out.out.output.sink().writes_before_commit() {
            self.settle(true)?;
        }
        Ok(())
    }

    /// Makes the sink's records durable (`Sink::prepare`), then encodes a
    /// checkpoint of the engine, the input position, what the sink said
    /// and the counters into memory, and hands it to the checkpoint
    /// thread ([`Session::settle`] takes its answer).
    fn begin_checkpoint(&mut self) -> Result<(), Stop> {
        if self.open_end || self.mid_batch {
            return Ok(());
        }
        let started = Instant::now();
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let number = checkpoints.number + 1;
        // (the outputs flushed and measured now, synced on the
        // checkpoint thread before its file)
        let (state, durable) = match self.out.out.output.prepare_apart(number) {
            Ok(prepared) => prepared,
            Err(e) => return Err(stop(e)),
        };
        self.counters.object_keys_told = self.keys.told();
        self.counters.dropped_keys = self.out.drops.to_json(&names(self.engine));
        self.counters.dropped_keys_overflow = self.out.drops.overflow;
        self.counters.reloads = self.reloads.applied;
        self.counters.reloads_refused = self.reloads.refused;
        self.counters.reloads_late = self.reloads.late;
        self.counters.fields = self.fields.told_state();
        let path = checkpoint::path(&checkpoints.dir, number);
        let report = &mut *self.out.report;
        let mut failed = |source: io::Error| {
            let error = Error::Io {
                doing: Doing::WriteCheckpoint,
                path: path.display().to_string(),
                source,
            };
            report.notice(Notice::line(Level::Error, format!("error: {error}")));
            Stop::Failed(error)
        };
        // One engine's piece: its place in the input, and its snapshot
        // (written in place: no copy), begun here and finished on the
        // checkpoint thread (what can wait: the requests remembered, a
        // service's largest part, `Engine::snapshot_begin`); and the
        // marker.
        let mut bytes = std::mem::take(&mut checkpoints.buffer);
        let mut piece = checkpoint::file::Writer::new(checkpoint::file::Kind::Piece, &mut bytes);
        let position = OnePosition {
            input: self.position,
            source: self.place.clone(),
            split_watermarks: self.splits.clone(),
            ranges: Range::left(&self.ranges, self.position),
        };
        store::position_section(&mut piece, &position);
        let (group, keys) = store::ONE_ENGINE;
        let rest =
            match (self.engine).snapshot_begin(store::engine_section(&mut piece, group, keys)) {
                Ok(rest) => rest,
                Err(e) => return Err(failed(io::Error::other(e.message().to_string()))),
            };
        let piece = piece.suspend();
        let finish: checkpoint::Finish = Box::new(move |bytes: &mut Vec<u8>| {
            if let Some(durable) = durable {
                durable().map_err(|e| e.to_string())?;
            }
            rest.finish(bytes).map_err(|e| e.message().to_string())?;
            checkpoint::file::Writer::resume(bytes, piece).finish();
            Ok(())
        });
        let mut marker = Vec::new();
        let latest = self.out.out.tap.as_ref().map(Tap::latest);
        Marker::new(number)
            .command(Some(checkpoints.command.clone()))
            .outputs(&state)
            .counters(self.counters.clone())
            .records(latest.unwrap_or_default())
            .history(self.history.clone())
            .encode_into(&mut marker);
        checkpoints.schedule.began();
        if checkpoints.writer.is_none() {
            let wake = checkpoints.wake.clone();
            let wake = Box::new(move || {
                // (a full channel wakes the matching thread anyway)
                let _ = wake.try_send(Message::Checkpointed);
            });
            let writer = Writer::new(&checkpoints.dir, wake, checkpoints.hook.take());
            checkpoints.writer = Some(writer.map_err(&mut failed)?);
        }
        let writer = checkpoints.writer.as_mut().expect("started");
        (writer.send_finishing(number, bytes, Some(finish), marker)).map_err(&mut failed)?;
        checkpoints.in_flight = Some(InFlight {
            number,
            started,
            stall: started.elapsed(),
            position: match &self.place {
                Some(place) => place.clone(),
                None => Position::File(self.position),
            },
            deferred: false,
            committing: None,
        });
        Ok(())
    }

    /// Takes the answer of the checkpoint whose file is being written, if
    /// any: waiting for it with `wait`, else only if it is there. Its
    /// file durable, the sink commits it (`Sink::commit`; begun and ended
    /// later, while the run goes on, by a sink that commits apart:
    /// `Sink::commit_apart`, whose end is taken here too), the source is
    /// told, and the checkpoint before it is deleted (on the checkpoint
    /// thread); a file that could not be written, or a commit that
    /// failed, stops the run (the previous checkpoint is kept).
    pub(super) fn settle(&mut self, wait: bool) -> Result<(), Stop> {
        match self.settle_flight(wait) {
            Err(Stop::Failed(error)) => {
                self.event(&RunEvent::CheckpointFailed { error: &error });
                Err(Stop::Failed(error))
            }
            result => result,
        }
    }

    /// [`Session::settle`].
    fn settle_flight(&mut self, wait: bool) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let writing = (checkpoints.in_flight.as_ref()).is_some_and(|f| f.committing.is_none());
        if writing {
            let Some(written) = checkpoints.writer.as_mut().and_then(|w| w.done(wait)) else {
                return Ok(());
            };
            let flight = checkpoints
                .in_flight
                .take()
                .expect("a checkpoint in flight");
            self.commit_checkpoint(flight, written)?;
        }
        self.commit_ended(wait)
    }

    /// [`Session::settle`] of `flight`, its file work `written`: its
    /// commit, begun (and ended, unless the sink commits apart).
    fn commit_checkpoint(&mut self, mut flight: InFlight, written: Written) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let report = &mut *self.out.report;
        if let Err(source) = written.result {
            let error = Error::Io {
                doing: Doing::WriteCheckpoint,
                path: checkpoint::path(&checkpoints.dir, flight.number)
                    .display()
                    .to_string(),
                source,
            };
            report.notice(Notice::line(Level::Error, format!("error: {error}")));
            return Err(Stop::Failed(error));
        }
        if let Some(said) = checkpoints.schedule.ended(flight.started, written.ended) {
            report.notice(Notice::line(Level::Warning, said));
        }
        checkpoints.number = flight.number;
        checkpoints.buffer = written.buffer;
        // (a commit that ends meanwhile wakes the matching thread, as a
        // file written does)
        let wake = checkpoints.wake.clone();
        let wake: crate::sink::Wake = Box::new(move || {
            let _ = wake.try_send(Message::Checkpointed);
        });
        let output = &mut self.out.out.output;
        match output.commit_apart(flight.number, &flight.position, wake) {
            Err(e) => Err(stop(e)),
            Ok(true) => self.committed(flight, written.ended, written.bytes),
            Ok(false) => {
                flight.committing = Some((written.ended, written.bytes));
                checkpoints.in_flight = Some(flight);
                Ok(())
            }
        }
    }

    /// The end of the commit the sink goes on with, if any
    /// ([`Sink::commit_done`](crate::Sink::commit_done)): waited for with
    /// `wait`.
    fn commit_ended(&mut self, wait: bool) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let Some((ended, bytes)) = checkpoints.in_flight.as_ref().and_then(|f| f.committing) else {
            return Ok(());
        };
        let Some(result) = self.out.out.output.commit_done(wait) else {
            return Ok(());
        };
        let flight = (checkpoints.in_flight.take()).expect("a checkpoint committing");
        result.map_err(stop)?;
        self.committed(flight, ended, bytes)
    }

    /// The sink committed `flight` (its file written at `ended`, `bytes`
    /// long): the source is told, the checkpoints before it go.
    fn committed(&mut self, flight: InFlight, ended: Instant, bytes: u64) -> Result<(), Stop> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        if let Some(source) = &self.source {
            lock_source(source).checkpoint_committed(&flight.position);
        }
        if let Some(writer) = &mut checkpoints.writer {
            writer.committed(flight.number);
        }
        let deferred = checkpoints.deferred;
        self.event(&RunEvent::Checkpoint {
            number: flight.number,
            duration: ended.saturating_duration_since(flight.started),
            bytes,
            stall: flight.stall,
            deferred,
        });
        Ok(())
    }

    /// The run failed: the checkpoint whose file is being written is
    /// waited for (its file whole or not there), not committed.
    pub(super) fn abandon(&mut self) {
        if let Some(checkpoints) = &mut self.checkpoints {
            if let Some(writer) = &mut checkpoints.writer {
                let _ = writer.done(true);
            }
            checkpoints.in_flight = None;
        }
    }
}

/// `record` (decoded before a reload from disk) read again from its text
/// for the fields of `table`, the new rules' (a record's text is JSON, CSV
/// rows included, whose columns are top-level fields).
fn reread(record: Record, table: &FieldTable) -> Record {
    let raw: std::sync::Arc<str> = std::sync::Arc::from(record.raw());
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&raw) {
        Ok(object) => cepheid_decode::record_from_json(table, &object, raw),
        Err(_) => record,
    }
}

/// How the run stops on the output's error `e` (said by the [`Output`]):
/// quietly when the output was closed.
fn stop(e: crate::SinkError) -> Stop {
    if e.closed() {
        return Stop::Output;
    }
    Stop::Failed(Error::Sink(e))
}
