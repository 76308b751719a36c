//! The log as the run's source: what a restart replays from the
//! checkpoint on, then each durable entry as the log's writer hands it
//! over, and the dry runs, which are never logged. Each decision request
//! and event is a [`Request`] of the engine's (its id the event's,
//! its note the service's, [`Note`]); a clock tick is a watermark just
//! before its time.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use cepheid_engine::engine::Request;
use cepheid_engine::Value;
use cepheid_runtime::{Origin, Position, RawBatch, ReadOutcome, Source, SourceError};
use serde_json::value::RawValue;

use super::note::Note;
use super::Shared;
use crate::wal::{Entry, LoggedEntry, WalReader};

/// What the source hands the run besides the log's durable entries.
pub(crate) enum Live {
    /// An entry made durable ([`crate::wal::WalOptions::consumer`]).
    Logged(Arc<LoggedEntry>),
    /// A dry run (never logged): its number, scene, event id, fields and
    /// the time it was asked at.
    Dry {
        number: u64,
        scene: String,
        event_id: String,
        fields: Box<RawValue>,
        at: i64,
    },
}

/// The records handed out at most in one read.
const READ_AT_MOST: usize = 4096;

/// The split of dry runs (the log's entries are split 0).
const DRY: u32 = 1;

pub(crate) struct LogSource {
    dir: std::path::PathBuf,
    /// The log read from the checkpoint on, until its end when the
    /// service started (then [`LogSource::live`] goes on).
    replay: Option<WalReader>,
    /// The last seq the log held when the service started.
    recovered_end: u64,
    live: Receiver<Live>,
    /// The last seq handed out.
    position: u64,
    /// The version of the rule set there (the number of changes of rules
    /// read: the log's first entry is the rules the service started
    /// with, version 1): in each request's note, and in the position.
    version: u64,
    /// A hash of the text of the last change of rules read (0: none).
    rules_print: u64,
    /// The text of the rules the service was started with: logged as a
    /// change of rules once the log was read again, when they are not the
    /// rules in force there (`None`: a replay, which logs nothing).
    command: Option<String>,
    /// Do the rules change through a rules topic (`--rules-topic`)? Then
    /// a restart goes on with the log's rules, and the command's are
    /// logged at the first start only, as a resumed `cepheid run` goes on
    /// with its checkpoint's rules.
    topic_rules: bool,
    /// The service's list files, whose changes are logged once the log
    /// was read again (after the command's rules).
    lists: Option<Arc<std::sync::Mutex<super::lists::Lists>>>,
    /// The requests of the records handed out, not asked for yet.
    pending: VecDeque<(u32, i64, Request)>,
    /// The seqs of the requests answered degraded at their deadline
    /// ([`Entry::Degraded`]) among the entries replayed: read ahead, once,
    /// before the first of them is handed out (`None`: not read yet).
    late: Option<HashSet<u64>>,
    shared: Arc<Shared>,
}

impl LogSource {
    /// The log in `dir`, whose last entry was `recovered_end` when the
    /// service started, read whole (unless [`Source::seek`] says from
    /// where), then `live`.
    /// With `command`: the rules the service starts with ([`LogSource::command`]).
    pub(crate) fn with_command(
        mut self,
        command: String,
        lists: Arc<std::sync::Mutex<super::lists::Lists>>,
    ) -> LogSource {
        self.command = Some(command);
        self.lists = Some(lists);
        self
    }

    /// The rules change through a rules topic: a restart keeps the log's.
    pub(crate) fn with_topic_rules(mut self, topic_rules: bool) -> LogSource {
        self.topic_rules = topic_rules;
        self
    }

    pub(crate) fn new(
        dir: std::path::PathBuf,
        recovered_end: u64,
        live: Receiver<Live>,
        shared: Arc<Shared>,
    ) -> Result<LogSource, crate::wal::WalError> {
        let replay = match recovered_end {
            0 => None,
            _ => Some(WalReader::open(&dir, 0)?),
        };
        Ok(LogSource {
            dir,
            replay,
            recovered_end,
            live,
            position: 0,
            version: 0,
            rules_print: 0,
            command: None,
            topic_rules: false,
            lists: None,
            pending: VecDeque::new(),
            late: None,
            shared,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError {
            source_name: self.describe(),
            error: std::io::Error::other(e.to_string()),
        }
    }

    /// Hands out `entry` (a seq not handed out before).
    fn add(&mut self, batch: &mut RawBatch, entry: &LoggedEntry) -> Result<(), SourceError> {
        if entry.seq <= self.position {
            return Ok(());
        }
        if entry.seq != self.position + 1 && self.position == 0 {
            // (no checkpoint holds the state of the entries retention
            // released: a run from the first kept would start without
            // them, and answer otherwise than the service did)
            return Err(self.error(format!(
                "its first entry kept is entry {}: the entries before it were released by retention, and no checkpoint holds what they made (a run from here would start without them)",
                entry.seq
            )));
        }
        if entry.seq != self.position + 1 {
            return Err(self.error(format!(
                "the log skips from entry {} to entry {}",
                self.position, entry.seq
            )));
        }
        self.position = entry.seq;
        let origin = Origin::Offset {
            partition: 0,
            offset: entry.seq as i64,
        };
        match &entry.entry {
            Entry::Decide(input) | Entry::Event(input) => {
                let scene = match &entry.entry {
                    Entry::Decide(_) => input.scene.as_deref(),
                    _ => None,
                };
                let mut note = Note::of(entry.seq, scene, &input.fields);
                note.rules_version = self.version;
                // (answered degraded at admission, or at its deadline: a
                // later entry says so, read ahead in a replay, and live
                // the run's `Answers::taking`)
                note.degraded = input.degraded
                    || (self.late.as_ref()).is_some_and(|late| late.contains(&entry.seq));
                note.shadow_shed = input.shed_shadow;
                // (an event of a Kafka topic: where its reader goes on)
                let from_topic = input
                    .origin
                    .as_deref()
                    .and_then(super::topic::of_event_origin);
                if let Some((partition, offset)) = &from_topic {
                    let mut topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
                    topics.insert(partition.clone(), offset + 1);
                }
                batch.push(input.fields.get().as_bytes(), origin, Some(entry.stamp), 0);
                let (request, _) = logged_request(&entry.entry, note.encode()).expect("a request");
                self.pending.push_back((0, entry.seq as i64, request));
            }
            Entry::Tick { time } => batch.push_watermark(time.saturating_sub(1)),
            // (its request was taken degraded: read ahead, above)
            Entry::Degraded { .. } => {}
            Entry::Rules { text, origin: from } => {
                // (a rules topic's record: where its reader goes on)
                if let Some((topic, offset)) = super::topic::of_origin(from) {
                    let mut topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
                    topics.insert(topic.to_string(), offset + 1);
                }
                // (the run applies it when it takes it, in the log's
                // order: `Config::source_rules`)
                let record = serde_json::json!({ "$rules": text }).to_string();
                batch.push_rules(record.as_bytes(), origin, None, 0);
                self.version += 1;
                self.rules_print = super::note::fnv(text.as_bytes());
                self.shared.version.store(self.version, Ordering::Release);
                if let Ok(rules) = cepheid_engine::Rules::parse("the log", text) {
                    self.shared.rules_changed(&rules, self.version);
                }
            }
            Entry::List {
                change,
                origin: from,
            } => {
                // (a list topic's record: where its reader goes on)
                let from_topic = from.as_deref().and_then(super::topic::of_event_origin);
                if let Some((partition, offset)) = from_topic {
                    let mut topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
                    topics.insert(super::topic::list_key(&partition), offset + 1);
                }
                // (a `$list` record, applied at its place as a source's
                // rules stream's: `lists.rs`)
                batch.push_rules(change.get().as_bytes(), origin, None, 0);
            }
        }
        Ok(())
    }

    /// The requests answered degraded at their deadline among the
    /// entries to replay (after [`LogSource::position`], up to the end
    /// the log had at the start): a request's [`Entry::Degraded`] comes
    /// after it in the log, and the engine is to take the request
    /// degraded, as the service did once its client was so answered.
    fn read_ahead(&self) -> Result<HashSet<u64>, crate::wal::WalError> {
        let mut late = HashSet::new();
        // (from the first entry kept when no checkpoint says where: the
        // replay itself says what retention released)
        let from = match self.position {
            0 => 0,
            seq => seq + 1,
        };
        let mut reader = WalReader::open(&self.dir, from)?;
        while let Some(entry) = reader.next_entry()? {
            if let Entry::Degraded { request } = entry.entry {
                late.insert(request);
            }
            if entry.seq >= self.recovered_end {
                break;
            }
        }
        Ok(late)
    }

    fn add_live(&mut self, batch: &mut RawBatch, live: Live) -> Result<(), SourceError> {
        match live {
            Live::Logged(entry) => self.add(batch, &entry),
            Live::Dry {
                number,
                scene,
                event_id,
                fields,
                at,
            } => {
                let mut note = Note::of(number, Some(&scene), &fields);
                note.dry_run = true;
                note.rules_version = self.version;
                let origin = Origin::Offset {
                    partition: DRY,
                    offset: number as i64,
                };
                batch.push(fields.get().as_bytes(), origin, Some(at), DRY);
                let id: Arc<str> = Arc::from(event_id.as_str());
                self.pending.push_back((
                    DRY,
                    number as i64,
                    Request {
                        id: Value::Str(id.clone()),
                        scene: Some(Arc::from(scene.as_str())),
                        note: note.encode(),
                        position: Some(Value::Str(id)),
                        dry_run: true,
                        shed_shadow: false,
                    },
                ));
                Ok(())
            }
        }
    }
}

/// The engine's request for a logged decision request or event (`entry`,
/// an [`Entry::Decide`] or [`Entry::Event`]; `None` for another kind),
/// with its fields, as the service's run takes it (its log source) and
/// `cepheid why` over the log takes it again: into the scene a decision
/// request names and no other (an event recorded without a decision:
/// none), under its event id, or under no id for a record of an events
/// topic (its place makes it once: never remembered), its decisions
/// named by its event id, its shadow rules shed when the log says so.
/// `note` is the caller's, kept with the request.
pub fn logged_request(entry: &Entry, note: Arc<[u8]>) -> Option<(Request, &RawValue)> {
    let (input, scene) = match entry {
        Entry::Decide(input) => (input, input.scene.as_deref()),
        Entry::Event(input) => (input, None),
        _ => return None,
    };
    let id: Arc<str> = Arc::from(input.event_id.as_str());
    let from_topic = (input.origin.as_deref())
        .and_then(super::topic::of_event_origin)
        .is_some();
    let request = Request {
        id: match from_topic {
            true => Value::Null,
            false => Value::Str(id.clone()),
        },
        scene: scene.map(Arc::from),
        note,
        position: Some(Value::Str(id)),
        dry_run: false,
        shed_shadow: input.shed_shadow,
    };
    Some((request, &input.fields))
}

impl Source for LogSource {
    fn describe(&self) -> String {
        format!("the log {}", self.dir.display())
    }

    fn read(&mut self, batch: &mut RawBatch, wait: Duration) -> Result<ReadOutcome, SourceError> {
        let mut n = 0;
        if self.replay.is_some() && self.late.is_none() {
            self.late = Some(self.read_ahead().map_err(|e| self.error(e))?);
        }
        if let Some(reader) = &mut self.replay {
            let mut entries = Vec::new();
            let mut done = false;
            while entries.len() < READ_AT_MOST {
                match reader.next_entry() {
                    Ok(Some(entry)) => entries.push(entry),
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(e) => return Err(self.error(e)),
                }
            }
            for entry in &entries {
                self.add(batch, entry)?;
            }
            if done || self.position >= self.recovered_end {
                self.replay = None;
            }
            if !entries.is_empty() {
                return Ok(ReadOutcome::Delivered);
            }
        }
        if self.position >= self.recovered_end && !self.shared.is_ready() {
            // (the rules of the command: logged first when they are not
            // those in force, so that the log alone says what decided)
            if let Some(command) = self.command.take() {
                let in_force = super::note::fnv(command.as_bytes()) == self.rules_print;
                match (in_force, self.topic_rules && self.recovered_end > 0) {
                    (true, _) => {}
                    (false, false) => self.shared.log_rules(command, "the command line"),
                    (false, true) => eprintln!(
                        "cepheid serve: the rules in force are the log's (version {}), not the command line's: with --rules-topic, a restart goes on with the rules its topic last changed (docs/serve.md, \"A rules topic\")",
                        self.version
                    ),
                }
            }
            // (then what the list files changed since they were last
            // logged, before any request is taken)
            if let (Some(lists), Some(log)) = (self.lists.take(), self.shared.log.get()) {
                let mut lists = lists.lock().unwrap_or_else(|p| p.into_inner());
                if lists.any() {
                    let stopped = self.recovered_end > 0;
                    let said = lists.log_changes(log, stopped, &mut |n| eprint!("{}", n.as_str()));
                    if let Err(e) = said {
                        return Err(self.error(format!("the list files' changes: {e}")));
                    }
                }
            }
            self.shared.replayed(self.position);
        }
        let first = match self.live.recv_timeout(wait) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => return Ok(ReadOutcome::Idle),
            Err(RecvTimeoutError::Disconnected) => return Ok(ReadOutcome::Ended),
        };
        self.add_live(batch, first)?;
        n += 1;
        while n < READ_AT_MOST {
            match self.live.try_recv() {
                Ok(live) => self.add_live(batch, live)?,
                Err(_) => break,
            }
            n += 1;
        }
        Ok(ReadOutcome::CaughtUp)
    }

    /// An entry of the log by its seq (`the log STATE/log entry 12`: the
    /// place messages, and the audit records of changes of rules, name);
    /// a dry run by its number.
    fn describe_origin(&self, split: u32, origin: &Origin) -> String {
        match (split, origin) {
            (DRY, Origin::Offset { offset, .. }) => format!("dry run {offset}"),
            (_, Origin::Offset { offset, .. }) => format!("{} entry {offset}", self.describe()),
            (_, Origin::Line(n)) => format!("{}:{n}", self.describe()),
        }
    }

    fn position(&self) -> Position {
        let mut bytes = self.position.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.version.to_le_bytes());
        bytes.extend_from_slice(&self.rules_print.to_le_bytes());
        // (then where the rules topics' readers go on: none, for a log
        // without one, is the 24 bytes of older builds)
        let topics = self.shared.topics.lock().unwrap_or_else(|p| p.into_inner());
        super::topic::encode(&topics, &mut bytes);
        Position::Bytes(bytes)
    }

    fn seek(&mut self, position: &Position) -> Result<(), SourceError> {
        let word = |bytes: &[u8], i: usize| {
            u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        };
        let topics = match position {
            Position::None => Some(super::topic::Offsets::new()),
            Position::Bytes(bytes) if bytes.len() >= 24 => super::topic::decode(&bytes[24..]),
            _ => None,
        };
        let (seq, version, print, topics) = match (position, topics) {
            (Position::None, Some(topics)) => (0, 0, 0, topics),
            (Position::Bytes(bytes), Some(topics)) => {
                (word(bytes, 0), word(bytes, 1), word(bytes, 2), topics)
            }
            (other, _) => return Err(self.error(format!("not a position in the log: {other:?}"))),
        };
        *self.shared.topics.lock().unwrap_or_else(|p| p.into_inner()) = topics;
        self.position = seq;
        self.version = version;
        self.rules_print = print;
        self.shared.version.store(version, Ordering::Release);
        self.pending.clear();
        self.late = None;
        self.replay = match seq < self.recovered_end {
            true => Some(WalReader::open(&self.dir, seq + 1).map_err(|e| self.error(e))?),
            false => None,
        };
        Ok(())
    }

    fn checkpoint_committed(&mut self, position: &Position) {
        if let Position::Bytes(bytes) = position {
            if let Some(Ok(seq)) = bytes.get(..8).map(<[u8; 8]>::try_from) {
                self.shared.checkpointed(u64::from_le_bytes(seq));
            }
        }
    }

    fn gives_requests(&self) -> bool {
        true
    }

    fn request(&mut self, split: u32, origin: &Origin) -> Option<Request> {
        let Origin::Offset { offset, .. } = origin else {
            return None;
        };
        // (a record the run could not decode was never asked for: its
        // request is answered so, not left waiting)
        while let Some((s, o, _)) = self.pending.front() {
            if (*s, *o) == (split, *offset) {
                return self.pending.pop_front().map(|(_, _, r)| r);
            }
            let (_, _, skipped) = self.pending.pop_front().expect("a front");
            self.shared.not_taken(&skipped);
        }
        None
    }
}
