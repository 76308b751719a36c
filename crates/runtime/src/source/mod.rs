//! Sources: standard input, a file (from a byte offset, when resuming from
//! a checkpoint), or a followed file (`follow.rs`), read and decoded on a
//! thread of its own, a few batches of lines ahead of the engine, so that
//! parsing overlaps matching and output (the engine and everything
//! observable stay on the calling thread, in input order).
//!
//! Each batch says where the input is after its last line: the byte
//! offset and the number of lines in the file being read (a followed
//! file's rotations start both anew), and, when asked for, a checksum of the bytes just
//! before that offset, with which a checkpoint later recognizes the file.
//!
//! Control records (`{"$rules": ...}`, JSON lines only) are recognized
//! here, by their first key, before the line is decoded. The thread sends
//! the batch that ends with one at once and waits until the main thread
//! has applied it: the lines after it are decoded only then, with the
//! field table of the new rules (the decoder shares the engine's table).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SendError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cepheid_core::record::FieldTable;
use cepheid_decode::{Decoder, FieldsSeen, Item, Items, LineReader};
use cepheid_engine::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::follow::Follow;

mod chunks;
mod fields;
mod file;
mod live;
mod pump;
mod raw;
mod share;

pub use chunks::{ChunkLines, FileChunk, FileChunks};
pub use fields::{FieldWarnings, FieldsTold};
pub(crate) use file::{prime, spawn_reader, Opened, Reading};
pub(crate) use live::{new_decoder, reading};
pub use live::{Heard, Lines, LiveInput};

use pump::read_source;
pub use raw::{
    FileSource, Judged, Origin, RawBatch, RawEntry, RawRecord, ReadOutcome, Source, SourceError,
    SplitLag, SplitWatermarks, Unapplied,
};
pub(crate) use raw::{SourceTiming, SplitTiming};
use share::Input;
pub use share::{count_lines, Got, Policy, Range, ShareReader};

/// Most lines in a batch.
const BATCH_LINES: usize = 1024;
/// Most input bytes in a batch (the events hold their text).
const BATCH_BYTES: u64 = 1 << 20;
/// Batches decoded ahead of the engine, at most.
pub(crate) const BATCHES_AHEAD: usize = 2;
/// Bytes before an offset that its [`Tail`] checksum covers, at most.
const TAIL_BYTES: u64 = 4096;

/// Where a source is, after the records handed out so far: kept in
/// checkpoints, sought back to on resuming.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// No position: the source cannot be read again (standard input).
    #[default]
    None,
    /// A place in a file.
    File(FilePosition),
    /// A source's own position, encoded by it (e.g. with `postcard`: a
    /// Kafka source's offset per partition).
    Bytes(Vec<u8>),
}

/// Where a file is: after the lines given to the engine so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Bytes of the file before the next line.
    pub offset: u64,
    /// Lines of the file before the next line.
    pub lines: u64,
    /// The bytes just before `offset`, when asked for.
    pub tail: Option<Tail>,
}

/// A CRC-32 of the (at most 4 KiB) bytes just before an offset:
/// the file is the one it was, or a copy of it, when they are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// How many bytes (fewer at the start of the file).
    pub len: u64,
    /// Their CRC-32.
    pub crc: u32,
}

impl Tail {
    /// The tail of `file` before `offset`, or `None` when it cannot be
    /// read (the file got shorter).
    pub fn of(file: &File, offset: u64) -> Option<Tail> {
        let len = offset.min(TAIL_BYTES);
        let mut bytes = vec![0; usize::try_from(len).ok()?];
        read_at(file, &mut bytes, offset - len).ok()?;
        Some(Tail {
            len,
            crc: crc32fast::hash(&bytes),
        })
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

/// What one input line holds.
#[derive(Debug)]
pub(crate) enum Entry {
    /// What the library's decoder made of it.
    Item(Item),
    /// A control record: the whole rule set changes at this line.
    Rules(Control),
    /// The watermark of a [`Source`]'s splits moved here
    /// ([`Config::split_watermarks`](crate::Config::split_watermarks)):
    /// event time got there. Not a punctuation (`$watermark`): the end of
    /// the input still ends event time.
    SplitWatermark(cepheid_engine::Timestamp),
    /// A record of a [`Source`]'s rules stream (a Kafka rules topic,
    /// [`RawEntry::Rules`]): the whole rule set changes here, at its event
    /// time. Allowed without `rules_from_stream` (the operator named the
    /// stream); `$rules_file` is confined to `rules_dir` as in a stream.
    SourceRules(SourceRules),
}

/// A rules record of a [`Source`]'s rules stream, at the point of the
/// input where it applies (`docs/dynamic-rules.md`, "A rules stream of its
/// own").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRules {
    /// The new rule set.
    pub control: Control,
    /// Its time (a Kafka record's timestamp): it applies to the events at
    /// or after it, the switch at the watermark just before it. `None`:
    /// when read (the state of the stream when the source started, or
    /// processing time).
    pub time: Option<cepheid_engine::Timestamp>,
    /// `Some(watermark)` when event time had already passed its time when
    /// it was read (the watermark then): it applies at once, late.
    pub late: Option<cepheid_engine::Timestamp>,
    /// `Some(watermark)` when its time was further ahead of event time
    /// than [`Config::rules_max_ahead`](crate::Config::rules_max_ahead)
    /// when it was read (the watermark then; a record read before any
    /// watermark, the first one): it applies then, after the records
    /// before it, not at its time.
    pub ahead: Option<cepheid_engine::Timestamp>,
}

/// The records of a [`Source`]'s rules stream waiting for event time to
/// reach them ([`RunView::rules_waiting`](crate::RunView::rules_waiting)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesWaiting {
    /// How many.
    pub records: u64,
    /// The event time at which the first applies.
    pub at: cepheid_engine::Timestamp,
}

/// Does the reader wait after `entry` until the run has applied it (the
/// run then says go on)? After a change of the rules it does: what follows
/// is decoded with the new rules' fields. After a change of a list it does
/// not: that changes no field, and a list's bulk load (a list topic's
/// backlog) then costs no round trip between the threads per record. The
/// readers and the run decide it here, alike.
pub(crate) fn waits_after<E>(entry: &Result<Entry, E>) -> bool {
    match entry {
        Ok(Entry::Rules(control)) => !control.is_list(),
        Ok(Entry::SourceRules(rules)) => !rules.control.is_list(),
        _ => false,
    }
}

/// A control record's new rule set: `{"$rules": "<pattern source>"}`, or
/// `{"$rules_file": "<path>"}` (a `.cep` file or a folder), and whether
/// it says it may leave no pattern (`"$allow_empty": true`: without it, a
/// set of no patterns is refused, `docs/dynamic-rules.md`, "Who can change
/// the rules").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub(crate) rules: ControlRules,
    pub(crate) allow_empty: bool,
}

/// Where a [`Control`]'s rule set is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ControlRules {
    /// The pattern source, in the record.
    Source(String),
    /// A `.cep` file or a folder of them.
    File(PathBuf),
    /// Not a rule set: a change of a list (`$list`).
    List(crate::lists::ListRecord),
}

impl Control {
    /// Is `line` (one line of JSON lines) a control record? `None` when
    /// its first key is neither `$rules` nor `$rules_file` (an event, for
    /// the decoder); otherwise the record, or why it is malformed. For a
    /// reader of the caller's that hands control records to a run as the
    /// built-in one does.
    #[inline]
    pub fn parse(line: &[u8]) -> Option<Result<Control, String>> {
        control(line)
    }

    /// What it is, in messages: `` `$rules` `` or `` `$rules_file` PATH ``.
    pub fn describe(&self) -> String {
        crate::reload::describe(self)
    }

    /// The `$rules_file` path it names, if it names one (for its audit
    /// record).
    pub fn rules_file(&self) -> Option<String> {
        match &self.rules {
            ControlRules::File(path) => Some(path.display().to_string()),
            ControlRules::Source(_) | ControlRules::List(_) => None,
        }
    }

    /// A change of a list rather than of the rules (`{"$list": ...}`)?
    pub fn is_list(&self) -> bool {
        matches!(self.rules, ControlRules::List(_))
    }

    /// The change of a list it makes, as `config` allows: with
    /// [`Config::lists_from_stream`](crate::Config::lists_from_stream), or
    /// `own` (a record of the source's rules stream, which the operator
    /// named). Why not otherwise (a record of rules: not a list's).
    pub fn read_list(
        &self,
        config: &crate::Config,
        own: bool,
    ) -> Result<&crate::lists::ListRecord, String> {
        match &self.rules {
            ControlRules::List(_) if !(config.lists_from_stream || own) => Err(
                "changes of lists from the event stream are off (`Config::lists_from_stream` turns them on)"
                    .to_string(),
            ),
            ControlRules::List(record) => Ok(record),
            _ => Err("a record of rules changes no list".to_string()),
        }
    }

    /// The rule set it names (`place` names the record in messages and
    /// diagnostics: `events.jsonl:12`), read as `config` allows: with
    /// [`Config::rules_from_stream`](crate::Config::rules_from_stream) (or
    /// `own`, a record of the source's rules stream, which the operator
    /// named), a `$rules_file` confined to
    /// [`Config::rules_dir`](crate::Config::rules_dir); loaded and checked
    /// (its diagnostics said to `say`). Where it applies in messages
    /// (`events.jsonl:12 (`$rules`)`), and the rules or why not.
    pub fn read(
        &self,
        config: &crate::Config,
        own: bool,
        place: &str,
        say: &mut dyn FnMut(crate::Notice),
    ) -> (String, RulesRead) {
        let where_ = format!("{place} ({})", self.describe());
        let allowed = crate::reload::StreamRules {
            enabled: config.rules_from_stream || own,
            dir: config.rules_dir.clone(),
        };
        let read = match crate::reload::load_control(self, &allowed, place) {
            Ok(loaded) => crate::reload::check(loaded, &where_, config, say),
            Err(why) => RulesRead::Refused(format!(
                "cepheid: {where_}: refused: {why}; the old rules go on"
            )),
        };
        let read = match read {
            RulesRead::Checked { rules, .. } if rules.is_empty() && !self.allow_empty => {
                RulesRead::Refused(format!(
                    "cepheid: {where_}: refused: the new rule set has no patterns, which would stop every alert; a record that means it says `\"$allow_empty\": true` (docs/dynamic-rules.md, \"Who can change the rules\"); the old rules go on"
                ))
            }
            read => read,
        };
        (where_, read)
    }
}

impl Reload {
    /// What asked for this reload of `config`'s pattern paths, in its
    /// audit record: the files, and a reload asked through the run's
    /// handle labelled with its `why` (one engine's and the workers').
    pub fn origin(&self, config: &crate::Config) -> crate::audit::Origin {
        let label = match self {
            Reload::Asked(why) => Some(why.clone()),
            Reload::Changed | Reload::Resumed => None,
        };
        crate::audit::Origin::files(&config.patterns, label)
    }

    /// The pattern paths of `config` read again for this reload, loaded
    /// and checked (their diagnostics said to `say`): what asked for it in
    /// messages (`the pattern files changed`), and the rules or why not
    /// (one of their files empty, an editor writing it: not now, its next
    /// change reloads).
    pub fn read(
        &self,
        config: &crate::Config,
        say: &mut dyn FnMut(crate::Notice),
    ) -> (String, RulesRead) {
        let why = match self {
            Reload::Changed => "the pattern files changed",
            Reload::Asked(why) => why.as_str(),
            Reload::Resumed => "the pattern files changed since the checkpoint",
        };
        let read = match crate::reload::empty_file(&config.patterns) {
            Some(empty) => RulesRead::Later(format!(
                "cepheid: {why}: {} is empty (being written?): not applied, the rules go on until it is written",
                empty.display()
            )),
            None => crate::reload::check(
                cepheid_syntax::load_paths(&config.patterns),
                why,
                config,
                say,
            ),
        };
        (why.to_string(), read)
    }
}

impl SourceRules {
    /// What it is, in messages: `a rules record`, `` a `$list` record ``.
    fn what(&self) -> &'static str {
        match self.control.is_list() {
            true => "a `$list` record",
            false => "a rules record",
        }
    }

    /// Read when its time was further ahead of event time than allowed
    /// (applied then): the warning that says so, naming it at `place`.
    pub fn ahead_notice(&self, place: &str) -> Option<crate::Notice> {
        let (Some(time), Some(watermark)) = (self.time, self.ahead) else {
            return None;
        };
        Some(crate::Notice::line(crate::Level::Warning, format!(
            "cepheid: {place}: {} of time {} read when event time was at {}, further ahead than `Config::rules_max_ahead`: applied now, not at its time (docs/dynamic-rules.md, \"Records far ahead\")",
            self.what(),
            cepheid_decode::format_rfc3339(time),
            cepheid_decode::format_rfc3339(watermark),
        )))
    }

    /// Read after event time had passed its time (applied at once): the
    /// warning that says so, naming it at `place`.
    pub fn late_notice(&self, place: &str) -> Option<crate::Notice> {
        let (Some(time), Some(watermark)) = (self.time, self.late) else {
            return None;
        };
        Some(crate::Notice::line(crate::Level::Warning, format!(
            "cepheid: {place}: {} of time {} read when event time was already at {}: applied now, late (docs/dynamic-rules.md)",
            self.what(),
            cepheid_decode::format_rfc3339(time),
            cepheid_decode::format_rfc3339(watermark),
        )))
    }
}

/// A change of rules as a run reads it ([`Control::read`],
/// [`Reload::read`]).
// (one per change of rules, made and taken at once: not worth a box)
#[allow(clippy::large_enum_variant)]
pub enum RulesRead {
    /// Loaded and checked.
    Checked {
        /// The rules.
        rules: cepheid_engine::Rules,
        /// The texts they were read from: each source's name and text.
        texts: Vec<(String, String)>,
        /// Where their patterns read each field.
        watch: crate::FieldWatch,
    },
    /// Refused (it does not load, or has errors): the line that says why.
    Refused(String),
    /// Not now (a pattern file being written): the line that says why.
    Later(String),
}

/// A watch of the pattern paths ([`LiveInput::watch`]): it lasts as long as
/// this value.
pub struct PatternWatch {
    #[cfg(feature = "watch")]
    _watcher: notify::RecommendedWatcher,
}

#[cfg(feature = "watch")]
impl PatternWatch {
    fn of(watcher: notify::RecommendedWatcher) -> PatternWatch {
        PatternWatch { _watcher: watcher }
    }
}

/// Watches the pattern files and folders `paths` as a run with
/// [`Config::watch`](crate::Config::watch) does (through their folders,
/// debounced), sending [`Message::Reload`] on `tx` after each change
/// ([`LiveInput::watch`]). `Err`: why it cannot, in the words one engine
/// says it.
pub(crate) fn watch_patterns(paths: &[PathBuf], tx: Tx) -> Result<PatternWatch, String> {
    #[cfg(feature = "watch")]
    {
        crate::reload::watch(paths, tx)
            .map(|watcher| PatternWatch { _watcher: watcher })
            .map_err(|e| format!("warning: cannot watch the pattern files ({e}); a reload through the run's handle still reads them"))
    }
    #[cfg(not(feature = "watch"))]
    {
        let _ = (paths, tx);
        Err("warning: cannot watch the pattern files (built without the feature `watch`); a reload through the run's handle still reads them".to_string())
    }
}

/// Is `line` a control record? `None` when its first key is neither
/// `$rules` nor `$rules_file` (the decoder reads it); otherwise the
/// record, or why it is malformed. A control record has exactly one
/// field, so its first key is the one: looking at the first bytes is
/// enough, and costs nothing on other lines.
#[inline]
pub(crate) fn control(line: &[u8]) -> Option<Result<Control, String>> {
    // (one look at the first bytes of an event: its first key is not `"$`)
    match line {
        [b'{', b'"', b'$', ..] => control_record(line),
        [b'{', b'"', ..] => None,
        [first, ..] if *first != b'{' && *first != 0xEF && !first.is_ascii_whitespace() => None,
        // (a byte-order mark, spaces: the careful look)
        _ => control_record(line),
    }
}

/// [`control`] past its first look.
#[inline(never)]
fn control_record(line: &[u8]) -> Option<Result<Control, String>> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let rest = line
        .trim_ascii_start()
        .strip_prefix(b"{")?
        .trim_ascii_start();
    let keys: [&[u8]; 4] = [
        b"\"$rules\"",
        b"\"$rules_file\"",
        b"\"$allow_empty\"",
        b"\"$list\"",
    ];
    if !keys.iter().any(|key| rest.starts_with(key)) {
        return None;
    }
    let fields = match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line) {
        Ok(fields) => fields,
        Err(e) => return Some(Err(format!("invalid JSON: {e}"))),
    };
    if rest.starts_with(b"\"$list\"") {
        return Some(crate::lists::ListRecord::of(fields).map(|record| Control {
            rules: ControlRules::List(record),
            allow_empty: false,
        }));
    }
    let count = fields.len();
    let mut fields = fields;
    let allow_empty = match fields.remove("$allow_empty") {
        None => false,
        Some(serde_json::Value::Bool(allow)) => allow,
        Some(_) => return Some(Err("`$allow_empty` must be true or false".to_string())),
    };
    if fields.len() != 1 {
        return Some(Err(format!(
            "a `$rules` or `$rules_file` record must have no other field but `$allow_empty` (this one has {count})"
        )));
    }
    let rules = match fields.into_iter().next() {
        Some((key, serde_json::Value::String(text))) if key == "$rules" => {
            ControlRules::Source(text)
        }
        Some((key, serde_json::Value::String(path)))
            if key == "$rules_file" && !path.is_empty() =>
        {
            ControlRules::File(PathBuf::from(path))
        }
        Some((key, _)) if key == "$rules_file" => {
            return Some(Err(
                "`$rules_file` must be a path (a non-empty string)".to_string()
            ))
        }
        _ => {
            return Some(Err(
                "`$rules` must be the pattern source, as a string".to_string()
            ))
        }
    };
    Some(Ok(Control { rules, allow_empty }))
}

/// Lines the reader thread has decoded, handed over in one go.
#[derive(Default)]
pub(crate) struct Batch {
    /// Each line's number and its entry, or why it is malformed (an
    /// [`cepheid_engine::ErrorKind::Input`] error), in input order; a read error
    /// ([`cepheid_engine::ErrorKind::Io`]) ends the input. A control record is
    /// the last line of its batch.
    pub lines: Vec<(u64, Result<Entry, Error>)>,
    /// Where the input is after the last line.
    pub at: FilePosition,
    /// A [`Source`]'s position after the last line (`None` for the
    /// built-in file reader, whose position is `at`).
    pub place: Option<Position>,
    /// Was the batch sent because no further line was ready (a pipe or a
    /// terminal waiting for its writer, the end of a followed file)? Then
    /// what it releases is flushed to the outputs at once, instead of
    /// waiting in their buffers.
    pub stalled: bool,
    /// Is the batch's one line the last of a file read to its end (not
    /// followed) and without its newline, the end of a file still being
    /// written? Then it is sent alone, after a batch that ends just before
    /// it: a checkpoint is taken before it and none after it, so that a
    /// resumed run reads it again whole (issue 26).
    pub open_end: bool,
    /// Is it the first part of what a [`Source`] handed out in one read,
    /// cut after a control record (the rest comes next, decoded with the
    /// new rules' fields)? Then `place` is `None` and no checkpoint is
    /// taken after it: the source's position is after the whole read.
    pub partial: bool,
    /// For lines whose place is not `origin:line` (a [`Source`]'s
    /// malformed and control records, and its events when the run writes
    /// decisions, [`Reading::places`]): their index in `lines` and their
    /// place, as the source describes it ([`Source::describe_origin`]:
    /// `kafka:orders partition 2 offset 17`).
    pub places: Vec<(usize, String)>,
    /// For events that are a service's requests ([`Source::request`]):
    /// their index in `lines` and the request (boxed: most batches have
    /// none, and a batch travels in a channel's message).
    pub requests: Option<Box<[(usize, cepheid_engine::engine::Request)]>>,
    /// With split watermarks: each split's watermark after the batch's
    /// last line (kept in checkpoints).
    pub splits: Option<Vec<Option<cepheid_engine::Timestamp>>>,
    /// A [`Source`]'s read error as it gave it (its text is the batch's
    /// last line): the run's end is this one (a Kafka source's, with its
    /// exit status), not its text.
    pub source_error: Option<Box<SourceError>>,
    /// What the decoder saw of the patterns' fields after the batch's
    /// last line, while the first [`Config::field_warnings`] events are
    /// read by a run that checkpoints ([`SeenTold::attach`]): what a
    /// checkpoint after the batch keeps, so that a run resumed from it
    /// counts on from there (issue 60, item 17).
    ///
    /// [`Config::field_warnings`]: crate::Config::field_warnings
    pub seen: Option<FieldsSeen>,
}

impl Batch {
    /// `got` with a read error the source's own ([`Batch::source_error`]),
    /// said in its words (it names the source; the reader's name for
    /// the input is the command's, standard input for a source).
    pub(crate) fn typed(
        source_error: &mut Option<Box<SourceError>>,
        got: Option<Got>,
    ) -> Option<Got> {
        match (got, source_error.take()) {
            (Some(Got::Failed(..)), Some(e)) => {
                let error = crate::Error::Source(*e);
                let notice = crate::Notice::line(crate::Level::Error, format!("error: {error}"));
                Some(Got::Failed(notice, Box::new(error)))
            }
            (got, e) => {
                *source_error = e;
                got
            }
        }
    }
}

/// What the main thread receives.
pub(crate) enum Message {
    /// Lines from the reader thread.
    Batch(Batch),
    /// The reader thread is done (end of input, a read error, or a panic
    /// the join passes on).
    End,
    /// Stop (`Handle::stop`, with its reason).
    Stop(String),
    /// Read the pattern paths again: they changed, or `Handle::reload`.
    Reload(Reload),
    /// A reference file of `Config::lists` changed: read them again
    /// (sent by the watcher of the `watch` feature alone).
    #[cfg_attr(not(feature = "watch"), allow(dead_code))]
    ListsChanged,
    /// What the decoder saw of the patterns' fields (`Config::field_warnings`):
    /// sent once after that many events and once more at the end of the
    /// input, after its last batch.
    Seen(FieldsSeen),
    /// The checkpoint thread wrote a checkpoint's file: the sink commits
    /// it now (not at the next batch, which a quiet input may not send
    /// for a long time).
    Checkpointed,
    /// A [`Source`]'s [`Source::lag`], per split, after the batch before
    /// it (at most every [`LAG_EVERY`]).
    Lag(Vec<SplitLag>),
    /// The records of a [`Source`]'s rules stream waiting for event time,
    /// when that changed.
    RulesWaiting(Option<RulesWaiting>),
    /// A change of a list asked through the run's handle
    /// (`Handle::add_to_list`, `Handle::remove_from_list`).
    List(crate::lists::ListRecord),
}

/// The sending end of the [`Message`]s a run takes: a channel's of
/// [`BATCHES_AHEAD`], which, once told how ([`Tx::wake_with`]), wakes the
/// taker after each message it sends. A taker that waits on the channel
/// (one engine's session) needs none; one that looks at it when it is
/// woken, between other work on its thread (a worker's source, pulled
/// by timely: [`LiveInput::wake_with`]), is woken so, and looks at
/// nothing while its input is quiet.
#[derive(Clone)]
pub(crate) struct Tx {
    tx: SyncSender<Message>,
    wake: Arc<std::sync::OnceLock<Wake>>,
}

/// How a [`Tx`] wakes the taker of its messages.
type Wake = Box<dyn Fn() + Send + Sync>;

impl Tx {
    /// A channel of [`BATCHES_AHEAD`] messages.
    pub(crate) fn channel() -> (Tx, Receiver<Message>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
        let wake = Arc::default();
        (Tx { tx, wake }, rx)
    }

    /// Sends `message`, waiting while the channel is full; then wakes the
    /// taker. `Err`: the taker is gone.
    pub(crate) fn send(&self, message: Message) -> Result<(), Box<SendError<Message>>> {
        self.tx.send(message)?;
        self.woken();
        Ok(())
    }

    /// Sends `message` if the channel has room; then wakes the taker.
    /// `Err`: full (with the message) or gone.
    pub(crate) fn try_send(&self, message: Message) -> Result<(), Box<TrySendError<Message>>> {
        self.tx.try_send(message)?;
        self.woken();
        Ok(())
    }

    /// From now on every sender of this channel (this one and its clones,
    /// made before or after) calls `wake` after each message. Once: a
    /// second call changes nothing.
    pub(crate) fn wake_with(&self, wake: Wake) {
        let _ = self.wake.set(wake);
    }

    fn woken(&self) {
        if let Some(wake) = self.wake.get() {
            wake();
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

/// How often the reader thread of a [`Source`] asks it for its
/// [`Source::lag`], at most.
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(1);

/// How often the reader thread of a [`Source`] with splits asks it for
/// the lag of the splits that idleness would leave out of event time
/// ([`Source::lag_now`], [`SplitWatermarks::lag_wanted`]), at most.
pub(crate) const LAG_NOW_EVERY: Duration = Duration::from_millis(10);

/// When the reader thread sends what its decoder saw of the fields
/// ([`Message::Seen`]): once its decoder has watched `after` events, and
/// at the end of the input.
/// With [`SeenTold::batches`], also with each batch until then
/// ([`Batch::seen`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SeenTold {
    pub(crate) after: Option<u64>,
    told: bool,
    batches: bool,
}

impl SeenTold {
    /// After `after` events (`None`: never).
    pub(crate) fn new(after: Option<u64>) -> SeenTold {
        SeenTold {
            after,
            told: false,
            batches: false,
        }
    }

    /// Also with each batch, until the decoder has watched `after`
    /// events (a run that checkpoints: [`Batch::seen`]).
    pub(crate) fn with_batches(mut self, batches: bool) -> SeenTold {
        self.batches = batches;
        self
    }

    /// What a batch carries of what the decoder saw: with
    /// [`SeenTold::with_batches`], until `after` events were told
    /// (a clone of a few paths and, over the sample, names: over the
    /// first `after` events only).
    pub(crate) fn attach(&self, decoder: Option<&Decoder>) -> Option<FieldsSeen> {
        if !self.batches || self.told || self.after.is_none() {
            return None;
        }
        decoder?.fields_seen().cloned()
    }

    /// What to send now, if anything: at the end, or the first time the
    /// decoder has watched `after` events.
    fn due(&mut self, decoder: Option<&Decoder>, end: bool) -> Option<FieldsSeen> {
        let after = self.after?;
        let seen = decoder?.fields_seen()?;
        if end || (!self.told && seen.events() >= after) {
            self.told = true;
            return Some(seen.clone());
        }
        None
    }

    /// Sends what is due; false when the receiver is gone.
    fn send(&mut self, decoder: Option<&Decoder>, end: bool, tx: &Tx) -> bool {
        match self.due(decoder, end) {
            Some(seen) => tx.send(Message::Seen(seen)).is_ok(),
            None => true,
        }
    }
}

/// Why the rules are read again from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// A pattern file or folder changed.
    Changed,
    /// Asked for through the run's handle (`Handle::reload`), for the
    /// reason the caller names (the command: `SIGHUP`).
    Asked(String),
    /// Resumed from a checkpoint whose rules the files no longer are.
    Resumed,
}

/// Sends [`Message::End`] when the reader thread ends, however it ends
/// (the channel has other senders, so its closing says nothing).
struct EndGuard(Tx);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Message::End);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_record_is_known_by_its_first_bytes_whatever_its_spacing() {
        let control = |line: &str| control(line.as_bytes());
        for line in [
            r#"{"$rules": "pattern p { match a }"}"#,
            r#"   {"$rules": "x"}"#,
            "\u{feff}{\"$rules\": \"x\"}",
            r#"{ "$rules_file": "v2/"}"#,
            "\t{\n\"$rules\":\"x\"}",
        ] {
            assert!(matches!(control(line), Some(Ok(_))), "{line:?}");
        }
        for line in [
            r#"{"ts": 1, "$rules": "x"}"#,
            r#"{"$watermark": 5}"#,
            r#"{ "ts": 1}"#,
            "ts,type",
            "",
            "   ",
        ] {
            assert!(control(line).is_none(), "{line:?}");
        }
        assert!(matches!(control(r#"{"$rules": 5}"#), Some(Err(_))));
    }

    /// `$allow_empty` is the one field a control record may have beside
    /// its rules, first or last (serializers sort keys), a boolean.
    #[test]
    fn allow_empty_is_the_one_other_field_of_a_control_record() {
        let allows = |line: &str| match control(line.as_bytes()) {
            Some(Ok(control)) => Ok(control.allow_empty),
            Some(Err(why)) => Err(why),
            None => Err("not a control record".to_string()),
        };
        assert_eq!(allows(r#"{"$rules": ""}"#), Ok(false));
        assert_eq!(allows(r#"{"$rules": "", "$allow_empty": true}"#), Ok(true));
        assert_eq!(allows(r#"{"$allow_empty": true, "$rules": ""}"#), Ok(true));
        assert_eq!(
            allows(r#"{"$allow_empty": false, "$rules_file": "a.cep"}"#),
            Ok(false)
        );
        for (line, why) in [
            (
                r#"{"$rules": "", "$allow_empty": "yes"}"#,
                "`$allow_empty` must be true or false",
            ),
            (
                r#"{"$allow_empty": true}"#,
                "must have no other field but `$allow_empty` (this one has 1)",
            ),
            (
                r#"{"$rules": "", "$allow_empty": true, "ts": 1}"#,
                "(this one has 3)",
            ),
            (
                r#"{"$rules": "", "$rules_file": "a.cep"}"#,
                "(this one has 2)",
            ),
        ] {
            let got = allows(line).expect_err(line);
            assert!(got.contains(why), "{line}: {got}");
        }
    }
}
