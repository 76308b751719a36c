//! Reference lists fed by files (`Config::lists`, `cepheid run --list
//! NAME=PATH`; `docs/lists.md`): each file read whole into the entries it
//! gives, and the changes that make a list's file entries those of the
//! file as it is now (what it gave before removed, what it gives added).
//!
//! A file is CSV when its name ends in `.csv`, JSON lines otherwise. One
//! entry per line; blank lines and lines starting with `#` are skipped.
//! - JSON lines: a value (`"10.0.0.1"`, `42`), or an object
//!   `{"value": V, "expires": T}` (`expires` may be left out).
//! - CSV: `value[,expires]`, with a header `value[,expires]` allowed on
//!   the first line; a cell is typed as the JSON value its text would be,
//!   as an event's CSV cell is (`42` a number, `10.0.0.1` a string).
//!
//! An expiry is an event time: integer milliseconds or an RFC 3339 string,
//! as the time field takes. A malformed line is said with its
//! `path:line` and left out; the rest of the file loads.
//!
//! One engine keeps nothing of what a file gave beside its list: the
//! list's entries say which file holds them (`docs/lists.md`,
//! "Origins"), and a new read is compared with those. The workers of a
//! run, which make a change on each engine, keep what each file gave
//! ([`Watched`]; in their cuts, [`Counters`](crate::checkpoint::Counters)),
//! so that a resumed run knows what to remove when a file changed while
//! it was stopped.

mod entries;
mod resumed;
pub use entries::Entries;
use entries::Gathering;
pub use resumed::{lists_of, put_lists, read_lists, ListsRead};
use std::path::PathBuf;

use cepheid_core::lookup::{Declarations, ListKind};
use cepheid_decode::{parse_rfc3339, value_from_json, value_to_json};
use cepheid_engine::engine::{list_entry_value, EntryOrigin};
use cepheid_engine::{Engine, Record, Timestamp, Value, ValueRef};
use serde::{Deserialize, Serialize};

use crate::{Level, Notice};

/// A reference list fed by a file: `cepheid run --list NAME=PATH`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFile {
    /// The list, as the rules declare it (`list NAME`).
    pub list: String,
    /// The file: CSV when its name ends in `.csv`, JSON lines otherwise.
    pub path: PathBuf,
}

impl ListFile {
    /// The origin that holds its entries in its list (`docs/lists.md`,
    /// "Origins"): the file, by its path.
    pub fn origin(&self) -> EntryOrigin {
        EntryOrigin::file(&self.path)
    }

    /// `NAME=PATH`, as the command line gives it.
    pub fn parse(arg: &str) -> Result<ListFile, String> {
        match arg.split_once('=') {
            Some((list, path)) if !list.is_empty() && !path.is_empty() => Ok(ListFile {
                list: list.to_string(),
                path: PathBuf::from(path),
            }),
            _ => Err(format!(
                "`{arg}` is not NAME=PATH (`blocked_ips=lists/blocked.csv`)"
            )),
        }
    }
}

/// The entries one file gave when it was last read: each value by its
/// JSON text, with its expiry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntries {
    /// The list.
    pub list: String,
    /// The file.
    pub path: PathBuf,
    /// Each entry's value as JSON text, and its expiry (`None`: the
    /// list's own `for`, or none).
    pub entries: Entries,
}

/// A change of a list that a file's new content asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Add the value, until the time (`None`: the list's own `for`, as a
    /// `$list` record's; a file's entry is never `None`: [`diff`]).
    Add(Value, Option<Timestamp>),
    /// Remove the value.
    Remove(Value),
}

/// Most malformed lines of one file said one by one (the rest counted).
const SAID_LINES: u64 = 10;

/// Reads `file` whole, as entries of a list of `kind`: its entries, and
/// each malformed line said to `say` (`path:line: why; the line is left
/// out`, the first ten, then how many more). Why not, when it cannot be
/// read at all.
///
/// A value is one entry however it is written, as the list holds it
/// (`3` and `3.0` in a list of values, `55` and `"55"` in a list of
/// prefixes): its last line wins, and a value given on two lines is said
/// with both line numbers (the first ten, then how many more).
pub fn read(
    file: &ListFile,
    kind: ListKind,
    say: &mut dyn FnMut(Notice),
) -> Result<FileEntries, String> {
    read_looked(file, kind, say).map(|(entries, _)| entries)
}

/// What a read saw of a file beside its entries: what tells a file being
/// written, or one that is no list file, from a list emptied on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Looked {
    /// Its size.
    bytes: usize,
    /// The line of its first NUL byte (no text file has one: a binary
    /// file, or UTF-16).
    nul_at: Option<usize>,
    /// Its lines left out (not entries).
    left_out: u64,
}

impl Looked {
    /// Why a read that gives no entry is not the file's new content
    /// (`None`: it is, a list emptied on purpose, by a file of comments
    /// or blank lines only): it is empty, binary, or has no line that is
    /// an entry. A binary file is never taken, whatever it gives.
    fn unusable(&self, entries: usize) -> Option<String> {
        if let Some(line) = self.nul_at {
            return Some(format!(
                "is no list file (a NUL byte on line {line}: binary?)"
            ));
        }
        if entries > 0 {
            return None;
        }
        if self.bytes == 0 {
            return Some("is empty (being written?)".to_string());
        }
        (self.left_out > 0).then(|| {
            format!(
                "gives no entry ({} lines left out, none taken)",
                self.left_out
            )
        })
    }
}

/// [`read`], with what it saw of the file.
fn read_looked(
    file: &ListFile,
    kind: ListKind,
    say: &mut dyn FnMut(Notice),
) -> Result<(FileEntries, Looked), String> {
    let bytes = std::fs::read(&file.path)
        .map_err(|e| format!("cannot read {}: {e}", file.path.display()))?;
    let nul_at = (bytes.iter().position(|&b| b == 0))
        .map(|at| 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count());
    let csv = file.path.extension().is_some_and(|x| x == "csv");
    let said = |line: usize, text: String| {
        let (path, list) = (file.path.display(), &file.list);
        Notice::new(
            Level::Warning,
            format!("cepheid: {path}:{line}: list `{list}`: {text}"),
        )
    };
    // (a line is at most an entry, whose text is at most the line's)
    let lines = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
    let mut gathering = Gathering::with_room(lines, bytes.len());
    let mut bad = 0u64;
    each_line(&bytes, csv, &mut |line, entry| match entry {
        Ok((text, until)) => gathering.push(&canonical(kind, text), until),
        Err(why) => {
            bad += 1;
            if bad <= SAID_LINES {
                say(said(line, format!("{why}; the line is left out")));
            }
        }
    });
    if bad > SAID_LINES {
        say(Notice::new(
            Level::Warning,
            format!(
                "cepheid: {}: list `{}`: {} more malformed lines left out",
                file.path.display(),
                file.list,
                bad - SAID_LINES
            ),
        ));
    }
    let (entries, again, twice) = gathering.done(SAID_LINES as usize);
    let lines: Lines<'_> = &mut |visit| each_line(&bytes, csv, visit);
    say_twice(file, (kind, lines), again, twice, say);
    let looked = Looked {
        bytes: bytes.len(),
        nul_at,
        left_out: bad,
    };
    let entries = FileEntries {
        list: file.list.clone(),
        path: file.path.clone(),
        entries,
    };
    Ok((entries, looked))
}

/// An entry of a list file: its value's JSON text and expiry.
type Entry = (String, Option<Timestamp>);

/// Lines of a list file given one by one to a visitor ([`each_line`]).
type Lines<'a> = &'a mut dyn FnMut(&mut dyn FnMut(usize, Result<Entry, String>));

/// Says the values of `file` given on two lines (`again`: the first
/// ten, whose lines are found again in its `lines`, a list of `kind`;
/// `twice`: how many in all), in the order of the file. One whose first
/// line is not in the file (an earlier file of the list gave it) is not
/// said.
fn say_twice(
    file: &ListFile,
    (kind, lines_of): (ListKind, Lines<'_>),
    again: Vec<String>,
    twice: u64,
    say: &mut dyn FnMut(Notice),
) {
    if again.is_empty() {
        return;
    }
    // (the lines of each value said, found again: nothing is kept per
    // entry for the few said)
    let mut lines: Vec<(Option<usize>, usize)> = vec![(None, 0); again.len()];
    lines_of(&mut |line, entry| {
        if let Ok((text, _)) = entry {
            let text = canonical(kind, text);
            if let Some(i) = again.iter().position(|value| *value == text) {
                lines[i].0.get_or_insert(line);
                lines[i].1 = line;
            }
        }
    });
    let mut again: Vec<_> = again.iter().zip(lines).collect();
    // (in the order of the file)
    again.sort_by_key(|(_, (_, last))| *last);
    for (value, (first, last)) in again {
        let Some(first) = first.filter(|&first| first < last) else {
            continue;
        };
        say(Notice::new(
            Level::Warning,
            format!(
                "cepheid: {}:{last}: list `{}`: {value} is given on line {first} too: one entry, this line's",
                file.path.display(),
                file.list
            ),
        ));
    }
    if twice > SAID_LINES {
        say(Notice::new(
            Level::Warning,
            format!(
                "cepheid: {}: list `{}`: {} more values given twice (each its last line's)",
                file.path.display(),
                file.list,
                twice - SAID_LINES
            ),
        ));
    }
}

/// Each line of a list file that is not blank, a comment or a CSV header,
/// with its number: its entry (its value's JSON text and expiry), or why
/// it is none.
fn each_line(bytes: &[u8], csv: bool, visit: &mut dyn FnMut(usize, Result<Entry, String>)) {
    if !csv {
        // (in memory: no read error)
        let _ = each_json_line(&mut &bytes[..], visit);
        return;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    // (lines counted here from each record's byte offset: the reader's
    // own numbers leave blank and comment lines out)
    let (mut counted_to, mut lines) = (0usize, 1usize);
    let mut line_at = |byte: u64| {
        // (a record's offset may be that of blank lines before it)
        let mut byte = (byte as usize).min(bytes.len());
        while bytes.get(byte).is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            byte += 1;
        }
        if byte > counted_to {
            lines += bytes[counted_to..byte]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = byte;
        }
        lines
    };
    for (i, row) in reader.records().enumerate() {
        let (line, row) = match row {
            Ok(row) => (row.position().map_or(i + 1, |p| line_at(p.byte())), row),
            Err(e) => {
                let line = e.position().map_or(i + 1, |p| line_at(p.byte()));
                visit(line, Err(format!("not CSV ({e})")));
                continue;
            }
        };
        // (comments by hand: the reader's own leave them out of its line
        // numbers)
        if row.iter().all(str::is_empty) || row.get(0).is_some_and(|c| c.starts_with('#')) {
            continue;
        }
        if i == 0 && row.get(0) == Some("value") {
            continue;
        }
        visit(line, csv_entry(&row));
    }
}

/// Each line of a JSON-lines list file read from `reader` that is not
/// blank or a comment, with its number: its entry, or why it is none.
fn each_json_line(
    reader: &mut dyn std::io::BufRead,
    visit: &mut dyn FnMut(usize, Result<Entry, String>),
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim(),
            Err(_) => {
                visit(line_no, Err("not UTF-8".to_string()));
                continue;
            }
        };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        visit(line_no, json_entry(text));
    }
}

/// A value's JSON text as one entry of a list of `kind` whatever way it
/// is written: the text of the value the engine holds it as
/// ([`list_entry_value`]: in a list of values a number normalized, `3.0`
/// is `3`; in a list of prefixes a value's text, `55` is `"55"`; in a
/// list of networks a network masked to its length, `"10.1.2.3/8"` is
/// `"10.0.0.0/8"`), so that two texts are one entry exactly when they
/// are the same, and what a list holds reads as the same text
/// ([`held_text`]). A text no list of the kind holds stays as it is.
fn canonical(kind: ListKind, text: String) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return text;
    };
    match list_entry_value(kind, (&value_from_json(&json)).into()) {
        Some(value) => held_text(&value),
        None => text,
    }
}

/// The JSON text of a value as a list holds it ([`canonical`]).
fn held_text(value: &Value) -> String {
    value_to_json(value).to_string()
}

/// [`held_text`] of a lent value, written over `text`.
fn held_text_into(value: ValueRef<'_>, text: &mut String) {
    text.clear();
    let mut bytes = std::mem::take(text).into_bytes();
    let written = match value {
        ValueRef::Str(s) => serde_json::to_writer(&mut bytes, s),
        ValueRef::Int(i) => serde_json::to_writer(&mut bytes, &i),
        ValueRef::Bool(b) => serde_json::to_writer(&mut bytes, &b),
        other => serde_json::to_writer(&mut bytes, &value_to_json(&other.to_owned())),
    };
    debug_assert!(written.is_ok());
    // (serde_json writes UTF-8)
    *text = String::from_utf8(bytes).unwrap_or_default();
}

/// A CSV row's entry: its value's JSON text and expiry.
fn csv_entry(row: &csv::StringRecord) -> Result<Entry, String> {
    if row.len() > 2 {
        return Err(format!(
            "{} cells, where an entry is `value[,expires]`",
            row.len()
        ));
    }
    let cell = row.get(0).unwrap_or_default();
    if cell.is_empty() {
        return Err("the value is empty".to_string());
    }
    // (typed as the JSON value its text would be, as an event's cell)
    let json = match serde_json::from_str::<serde_json::Value>(cell) {
        Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)))
            if !cell.starts_with(['+', '.']) =>
        {
            v
        }
        _ => serde_json::Value::String(cell.to_string()),
    };
    let until = match row.get(1).filter(|c| !c.is_empty()) {
        None => None,
        Some(cell) => Some(time_of_text(cell)?),
    };
    Ok((json.to_string(), until))
}

/// A JSON line's entry: its value's JSON text and expiry.
fn json_entry(text: &str) -> Result<Entry, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let (value, until) = match json {
        serde_json::Value::Object(mut object) => {
            let value = object
                .remove("value")
                .ok_or("an object entry has a `value`")?;
            let until = expiry(object.remove("expires"))?;
            if let Some(key) = object.keys().next() {
                return Err(format!(
                    "an object entry has `value` and `expires` only (not `{key}`)"
                ));
            }
            (value, until)
        }
        value => (value, None),
    };
    match value {
        serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Err("null, a list or an object is no list entry".to_string())
        }
        value => Ok((value.to_string(), until)),
    }
}

/// A change of a list in a control record of the input
/// (`{"$list": "blocked_ips", "add": "10.0.0.1"}`, [`Config::lists_from_stream`](crate::Config::lists_from_stream)):
/// `add` (a value, or a JSON array of values) with an optional `expires`
/// (integer milliseconds or an RFC 3339 time), or `remove` (a value or
/// an array). Each value is held as its JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRecord {
    /// The list.
    pub list: String,
    /// The values added, with their expiry.
    pub add: Vec<(String, Option<Timestamp>)>,
    /// The values removed.
    pub remove: Vec<String>,
}

impl ListRecord {
    /// The record of `fields` (a JSON object whose first key is `$list`),
    /// or why it is not one.
    pub(crate) fn of(
        mut fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ListRecord, String> {
        let list = match fields.remove("$list") {
            Some(serde_json::Value::String(list)) if !list.is_empty() => list,
            _ => return Err("`$list` must be the name of a list (a string)".to_string()),
        };
        let until = expiry(fields.remove("expires"))?;
        let values = |value: serde_json::Value| -> Result<Vec<String>, String> {
            let values = match value {
                serde_json::Value::Array(values) => values,
                value => vec![value],
            };
            (values.into_iter())
                .map(|value| match value {
                    serde_json::Value::Null
                    | serde_json::Value::Array(_)
                    | serde_json::Value::Object(_) => {
                        Err("null, a list or an object is no list entry".to_string())
                    }
                    value => Ok(value.to_string()),
                })
                .collect()
        };
        let record = match (fields.remove("add"), fields.remove("remove")) {
            (Some(add), None) => ListRecord {
                list,
                add: values(add)?.into_iter().map(|v| (v, until)).collect(),
                remove: Vec::new(),
            },
            (None, Some(remove)) if until.is_none() => ListRecord {
                list,
                add: Vec::new(),
                remove: values(remove)?,
            },
            (None, Some(_)) => return Err("`expires` goes with `add`, not `remove`".to_string()),
            _ => {
                return Err(
                    "a `$list` record has `add` (with `expires` if it expires) or `remove`"
                        .to_string(),
                )
            }
        };
        if let Some(key) = fields.keys().next() {
            return Err(format!(
                "a `$list` record has `$list`, `add` or `remove`, and `expires` only (not `{key}`)"
            ));
        }
        Ok(record)
    }

    /// What it changes, asked through the run's handle, for messages:
    /// `` list `blocked`: 1 added, 0 removed through the run's handle ``.
    pub fn describe_handle(&self) -> String {
        format!(
            "list `{}`: {} added, {} removed through the run's handle",
            self.list,
            self.add.len(),
            self.remove.len()
        )
    }

    /// Its changes, in order (removals, then additions).
    pub fn edits(&self) -> Vec<Edit> {
        let value = |text: &str| {
            let json: serde_json::Value =
                serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
            value_from_json(&json)
        };
        let removed = self.remove.iter().map(|text| Edit::Remove(value(text)));
        let added = (self.add.iter()).map(|(text, until)| Edit::Add(value(text), *until));
        removed.chain(added).collect()
    }
}

/// An `expires` field: none (or null), integer milliseconds or an RFC
/// 3339 time.
fn expiry(field: Option<serde_json::Value>) -> Result<Option<Timestamp>, String> {
    let wrong = || "`expires` is integer milliseconds or an RFC 3339 time".to_string();
    match field {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_i64().map(Some).ok_or_else(wrong),
        Some(serde_json::Value::String(s)) => time_of_text(&s).map(Some),
        Some(_) => Err(wrong()),
    }
}

/// An expiry's text: integer milliseconds or an RFC 3339 time.
fn time_of_text(text: &str) -> Result<Timestamp, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    parse_rfc3339(text).map_err(|e| {
        format!("`{text}` is not an expiry (integer milliseconds or an RFC 3339 time: {e})")
    })
}

/// The changes that make `before`'s entries `now`'s: removals first (of
/// what `now` no longer gives), then additions (of what it gives anew or
/// with another expiry). An entry without an expiry is added for ever
/// (until the file drops it): a file's entry takes no `for` of its list,
/// which counts from when a rule writes an entry (issue 60).
pub fn diff(before: &Entries, now: &FileEntries) -> Vec<Edit> {
    let mut edits = Vec::new();
    diff_each(before, now, &mut |edit| edits.push(edit));
    edits
}

/// [`diff`], each change given to `edit` as it is found (none held).
fn diff_each(before: &Entries, now: &FileEntries, edit: &mut dyn FnMut(Edit)) {
    let removed = (before.keys())
        .filter(|text| !now.entries.contains_key(text))
        .map(|text| Edit::Remove(value_of(text)));
    let added = (now.entries.iter())
        .filter(|(text, until)| before.get(text) != Some(*until))
        .map(|(text, until)| Edit::Add(value_of(text), Some(until.unwrap_or(Timestamp::MAX))));
    removed.chain(added).for_each(edit);
}

/// The value of an entry's JSON text.
fn value_of(text: &str) -> Value {
    let json: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    value_from_json(&json)
}

/// [`diff_each`] against what `file` holds in `engine`'s list now (its
/// origin's holds, its changes scheduled for later times counted:
/// `docs/lists.md`, "Origins"), not against a copy of what it gave, which
/// one engine does not keep (a list of ten million entries is not held
/// twice: issue 60, item 15). Each change is given to `edit` with the
/// engine to make it in: what `file` holds and `now` no longer gives
/// removed, then what `now` gives and `file` does not hold so added. An
/// entry `file` no longer holds whose expiry is at or before the change's
/// time `at` or the lists' time expired, and is not added again.
fn diff_held(
    engine: &mut Engine<Record>,
    file: &ListFile,
    now: &FileEntries,
    at: Timestamp,
    edit: &mut dyn FnMut(&mut Engine<Record>, Edit),
) -> Result<(), cepheid_engine::Error> {
    let origin = file.origin();
    let (mut removed, mut text) = (Vec::new(), String::new());
    let index = now.entries.index();
    engine.list_held_by(&file.list, &origin, &mut |value, _| {
        held_text_into(value, &mut text);
        if !index.contains(&text) {
            removed.push(value.to_owned());
        }
    })?;
    drop(index);
    for value in removed {
        edit(engine, Edit::Remove(value));
    }
    let expired = at.max(engine.lists_time());
    for (text, until) in now.entries.iter() {
        let value = value_of(text);
        let held = engine.list_hold_by(&file.list, &origin, (&value).into())?;
        let gone = held.is_none() && until.is_some_and(|u| u <= expired);
        if held != Some(until) && !gone {
            let until = Some(until.unwrap_or(Timestamp::MAX));
            edit(engine, Edit::Add(value, until));
        }
    }
    Ok(())
}

/// How many entries `file` holds in `engine`'s list alive at the lists'
/// time, as [`diff_held`] reads them.
fn held_count(engine: &Engine<Record>, file: &ListFile) -> usize {
    let time = engine.lists_time();
    let mut count = 0;
    let _ = engine.list_held_by(&file.list, &file.origin(), &mut |_, until| {
        count += usize::from(until.map_or(true, |u| u > time));
    });
    count
}

/// What takes an origin's changes of a list at an event time
/// ([`apply`]): an engine, and an engine that traces a key (`cepheid why`
/// over a service's log makes the log's changes of lists at their place,
/// as the service's run made them).
pub trait TakesLists {
    /// `origin` holds `value` in list `list` from event time `at` until
    /// `until` ([`Engine::add_to_list_by`]).
    fn add_by(
        &mut self,
        origin: &EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<(), cepheid_engine::Error>;

    /// `origin`'s hold of `value` in list `list` ends at event time `at`
    /// ([`Engine::remove_from_list_by`]).
    fn remove_by(
        &mut self,
        origin: &EntryOrigin,
        list: &str,
        value: Value,
        at: Timestamp,
    ) -> Result<(), cepheid_engine::Error>;
}

// (the two engines' own methods, by the same names: one body for both)
macro_rules! takes_lists {
    ($engine:ty) => {
        impl TakesLists for $engine {
            fn add_by(
                &mut self,
                origin: &EntryOrigin,
                list: &str,
                value: Value,
                at: Timestamp,
                until: Option<Timestamp>,
            ) -> Result<(), cepheid_engine::Error> {
                self.add_to_list_by(origin, list, value, at, until)
            }

            fn remove_by(
                &mut self,
                origin: &EntryOrigin,
                list: &str,
                value: Value,
                at: Timestamp,
            ) -> Result<(), cepheid_engine::Error> {
                self.remove_from_list_by(origin, list, value, at)
            }
        }
    };
}

takes_lists!(Engine<Record>);
takes_lists!(cepheid_engine::engine::why::Why<Record>);

/// Makes `edits` of list `list` in `engine` as `origin`'s (each origin
/// holds a value apart: a remove ends its own hold only, `docs/lists.md`,
/// "Origins"), at event time `at` (`Timestamp::MIN`: at once, before any
/// event).
pub fn apply(
    engine: &mut impl TakesLists,
    (list, origin): (&str, &EntryOrigin),
    edits: &[Edit],
    at: Timestamp,
) -> Result<(), cepheid_engine::Error> {
    for edit in edits {
        match edit {
            Edit::Add(value, until) => engine.add_by(origin, list, value.clone(), at, *until)?,
            Edit::Remove(value) => engine.remove_by(origin, list, value.clone(), at)?,
        }
    }
    Ok(())
}

/// When the files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// At the start of a run: every file must be read, and its list
    /// declared.
    Start,
    /// At a resume: what changed since the checkpoint is made (a file
    /// that cannot be read stops the run, as at the start).
    Resumed,
    /// A file changed while the run goes on (`Config::watch`), or the
    /// rules changed and declare a list again: one that cannot be read is
    /// said, and its list goes on as it was.
    Changed,
}

/// Reads each file of `files` whole into `engine`'s lists before any
/// event, as [`refresh`] at the start does (the same messages and
/// refusals): the entries of a list fed by one file are made as its lines
/// are read, the last line of a value winning as the list holds it, and
/// nothing but the list holds them (a file of ten million entries is not
/// held twice: issue 60, item 15). A later read of a file (watched, or at
/// a resume) is compared with what the file holds in the list.
pub fn load(
    files: &[ListFile],
    engine: &mut Engine<Record>,
    say: &mut dyn FnMut(Notice),
) -> Result<(), crate::Error> {
    for (i, file) in files.iter().enumerate() {
        let alone = (files.iter().enumerate()).all(|(j, f)| j == i || f.list != file.list);
        let declared = engine.list_sizes().any(|(name, _)| name == file.list);
        if !alone || !declared {
            let mut state = Vec::new();
            let at = (Timestamp::MIN, When::Start);
            refresh_made(
                std::slice::from_ref(file),
                engine,
                (&mut state, at.0, at.1),
                false,
                say,
            )?;
            continue;
        }
        load_one(file, engine, say).map_err(|why| crate::Error::List {
            list: file.list.clone(),
            path: file.path.clone(),
            why,
        })?;
    }
    Ok(())
}

/// [`load`] of one file, its list's only one.
fn load_one(
    file: &ListFile,
    engine: &mut Engine<Record>,
    say: &mut dyn FnMut(Notice),
) -> Result<(), String> {
    let kind = kind_of(engine.declarations(), &file.list);
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.path.display());
    let csv = file.path.extension().is_some_and(|x| x == "csv");
    // (JSON lines read as they come, CSV whole: its lines are counted
    // from byte offsets)
    let whole = if csv {
        std::fs::read(&file.path).map_err(cannot)?
    } else {
        Vec::new()
    };
    let size = |engine: &Engine<Record>| {
        (engine.list_sizes())
            .find(|(name, _)| *name == file.list)
            .map_or(0, |(_, size)| size)
    };
    let start = engine.memory_stats();
    let origin = file.origin();
    let (mut bad, mut twice, mut failed) = (0u64, 0u64, None);
    let (mut entries, mut again) = (0usize, Vec::new());
    let mut visit = |line, entry: Result<Entry, String>| match entry {
        Ok((text, until)) if failed.is_none() => {
            let text = canonical(kind, text);
            let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            let (before, stats) = (size(engine), engine.memory_stats());
            let until = Some(until.unwrap_or(Timestamp::MAX));
            let value = value_from_json(&json);
            let added = engine.add_to_list_by(&origin, &file.list, value, Timestamp::MIN, until);
            if let Err(e) = added {
                failed = Some(e.to_string());
                return;
            }
            let after = engine.memory_stats();
            let refused = after.refused_entries + after.bad_entries
                > stats.refused_entries + stats.bad_entries;
            if refused || size(engine) > before {
                entries += 1;
            } else {
                // (there already: a value given on an earlier line)
                twice += 1;
                if again.len() < SAID_LINES as usize && !again.contains(&text) {
                    again.push(text);
                }
            }
        }
        Ok(_) => {}
        Err(why) => {
            bad += 1;
            if bad <= SAID_LINES {
                say(Notice::new(
                    Level::Warning,
                    format!(
                        "cepheid: {}:{line}: list `{}`: {why}; the line is left out",
                        file.path.display(),
                        file.list
                    ),
                ));
            }
        }
    };
    if csv {
        each_line(&whole, true, &mut visit);
    } else {
        let opened = std::fs::File::open(&file.path).map_err(cannot)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, opened);
        each_json_line(&mut reader, &mut visit).map_err(cannot)?;
    }
    if let Some(why) = failed {
        return Err(why);
    }
    if bad > SAID_LINES {
        say(Notice::new(
            Level::Warning,
            format!(
                "cepheid: {}: list `{}`: {} more malformed lines left out",
                file.path.display(),
                file.list,
                bad - SAID_LINES
            ),
        ));
    }
    // (JSON lines read again for the lines of the values said)
    let lines: Lines<'_> = &mut |visit| match csv {
        true => each_line(&whole, true, visit),
        false => {
            if let Ok(opened) = std::fs::File::open(&file.path) {
                let _ = each_json_line(&mut std::io::BufReader::new(opened), visit);
            }
        }
    };
    say_twice(file, (kind, lines), again, twice, say);
    let path = file.path.display();
    let list = &file.list;
    say(Notice::new(
        Level::Info,
        format!("cepheid: list `{list}`: {entries} entries from {path}"),
    ));
    say_refused(file, start, engine.memory_stats(), say);
    Ok(())
}

/// Reads each file of `files` and makes its list in `engine` what the
/// file gives now, at event time `at` (`Timestamp::MIN`: at once, before
/// any event): what it gave before removed, what it gives anew added.
/// What it gave before is what it holds in the list (`docs/lists.md`,
/// "Origins"), or, once, what `state` kept of it (by list and path: a
/// checkpoint of workers or of an older build), which is then dropped. Each change is said to `say`
/// with what made it. A list the rules do not declare is an error at
/// the start; later (the rules changed) its file is passed over until
/// they declare it again. A file read again that had entries and is now
/// empty, binary, or gives no entry is not applied, and said: its list
/// keeps what it gave (a file being written, or the wrong file).
pub fn refresh(
    files: &[ListFile],
    engine: &mut Engine<Record>,
    state: &mut Vec<FileEntries>,
    at: Timestamp,
    when: When,
    say: &mut dyn FnMut(Notice),
) -> Result<Refreshed, crate::Error> {
    refresh_made(files, engine, (state, at, when), false, say)
}

/// [`refresh`], whose changes are kept in [`Refreshed::made`] when
/// `made` (else each is made as the diff gives it, and dropped: a list of
/// millions of entries is not held twice).
fn refresh_made(
    files: &[ListFile],
    engine: &mut Engine<Record>,
    (state, at, when): (&mut Vec<FileEntries>, Timestamp, When),
    made: bool,
    say: &mut dyn FnMut(Notice),
) -> Result<Refreshed, crate::Error> {
    let mut refreshed = Refreshed::default();
    let fail = |file: &ListFile, why: String| crate::Error::List {
        list: file.list.clone(),
        path: file.path.clone(),
        why,
    };
    for file in files {
        let declared = engine.list_sizes().any(|(name, _)| name == file.list);
        if !declared {
            if when == When::Start {
                return Err(fail(
                    file,
                    format!("the rules declare no list `{}` (`list {0}`)", file.list),
                ));
            }
            continue;
        }
        let kind = kind_of(engine.declarations(), &file.list);
        // (what the file gave: kept in `state` for executors that make the
        // changes themselves, else its holds in the engine; one kept from
        // a checkpoint that held it is read once, then dropped)
        let kept = made || kept_of(state, file).is_some();
        let had = match kept {
            true => before(state, file).len(),
            false => held_count(engine, file),
        };
        let now = match read_again(file, kind, had, say) {
            Ok(Again::Read(now)) => now,
            Ok(Again::NotApplied) => {
                refreshed.not_applied += 1;
                continue;
            }
            Err(why) if when == When::Changed => {
                say(unread(file, &why));
                continue;
            }
            Err(why) => return Err(fail(file, why)),
        };
        let stats = engine.memory_stats();
        let (mut edits, mut counted, mut failed) = (Vec::new(), Counted::default(), None);
        let origin = file.origin();
        let mut make = |engine: &mut Engine<Record>, edit: Edit| {
            counted.count(&edit);
            if failed.is_none() {
                let edit = std::slice::from_ref(&edit);
                failed = apply(engine, (&file.list, &origin), edit, at).err();
            }
            if made {
                edits.push(edit);
            }
        };
        if kept {
            diff_each(before(state, file), &now, &mut |edit| make(engine, edit));
        } else {
            diff_held(engine, file, &now, at, &mut make).map_err(|e| fail(file, e.to_string()))?;
        }
        if let Some(e) = failed {
            return Err(fail(file, e.to_string()));
        }
        let after = engine.memory_stats();
        let path = file.path.display();
        let list = &file.list;
        let said = match when {
            When::Start => Some(format!(
                "cepheid: list `{list}`: {} entries from {path}",
                now.entries.len()
            )),
            _ if counted.is_empty() => None,
            When::Resumed => Some(format!(
                "cepheid: {}, at the checkpoint's event time",
                changed_place(file, counted, true)
            )),
            When::Changed => Some(said_at(&changed_place(file, counted, false), at)),
        };
        if let Some(text) = said {
            say(Notice::new(Level::Info, text));
        }
        say_refused(file, stats, after, say);
        match made {
            true => keep(state, now),
            false => state.retain(|s| !(s.list == file.list && s.path == file.path)),
        }
        if !edits.is_empty() {
            refreshed.made.push((file.clone(), edits));
        }
    }
    Ok(refreshed)
}

/// Says what `file`'s list refused of its entries between `before` and
/// `after`: over its limit, or of no value of its kind.
fn say_refused(
    file: &ListFile,
    before: cepheid_engine::engine::MemoryStats,
    after: cepheid_engine::engine::MemoryStats,
    say: &mut dyn FnMut(Notice),
) {
    let (list, path) = (&file.list, file.path.display());
    let refused = after.refused_entries - before.refused_entries;
    let bad = after.bad_entries - before.bad_entries;
    if refused > 0 {
        say(Notice::new(
            Level::Warning,
            format!("cepheid: list `{list}`: {refused} entries of {path} refused: the list holds its limit of entries (`Config::max_list_entries`; raise it to keep them)"),
        ));
    }
    if bad > 0 {
        say(Notice::new(
            Level::Warning,
            format!("cepheid: list `{list}`: {bad} entries of {path} refused: a list of its kind cannot hold them"),
        ));
    }
}

/// What [`refresh`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refreshed {
    /// The changes made, by file (their list's, and their origin,
    /// [`ListFile::origin`]), in the order made (for engines that must
    /// make them too: a run's workers).
    pub made: Vec<(ListFile, Vec<Edit>)>,
    /// Files not applied: they had entries and were empty, binary, or
    /// gave no entry (said; counted in [`Summary::lists_not_applied`](crate::Summary::lists_not_applied)).
    pub not_applied: u64,
}

/// Reads `file` again: the entries it gives now (what it gave before,
/// `state`, tells whether they are its new content); why not, when it
/// cannot be read.
fn read_again(
    file: &ListFile,
    kind: ListKind,
    had: usize,
    say: &mut dyn FnMut(Notice),
) -> Result<Again, String> {
    let (now, looked) = read_looked(file, kind, say)?;
    if had > 0 {
        if let Some(why) = looked.unusable(now.entries.len()) {
            say(Notice::new(
                Level::Warning,
                format!(
                    "cepheid: list `{}`: {} {why}: not applied, the list keeps the {had} entries it gave",
                    file.list,
                    file.path.display(),
                ),
            ));
            return Ok(Again::NotApplied);
        }
    }
    Ok(Again::Read(now))
}

/// What a file read again gives ([`read_again`]).
enum Again {
    /// Its entries now.
    Read(FileEntries),
    /// Nothing to apply: it had entries and is now empty, binary, or
    /// gives no entry (said; its list keeps what it gave, as a pattern
    /// file being written does not remove its rules).
    NotApplied,
}

/// A watched file that cannot be read again, said: its list goes on as it
/// was.
fn unread(file: &ListFile, why: &str) -> Notice {
    Notice::new(
        Level::Warning,
        format!(
            "cepheid: list `{}`: {why}; the list goes on as it was",
            file.list
        ),
    )
}

/// Where a file's change comes from, for messages: `` list `blocked`:
/// b.csv changed: 3 added, 1 removed `` (`stopped`: `changed while the
/// run was stopped`).
fn changed_place(file: &ListFile, counted: Counted, stopped: bool) -> String {
    let when = if stopped {
        " while the run was stopped"
    } else {
        ""
    };
    format!(
        "list `{}`: {} changed{when}: {}",
        file.list,
        file.path.display(),
        counted.said()
    )
}

/// Changes of a list counted, for messages ([`describe`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counted {
    added: usize,
    removed: usize,
}

impl Counted {
    fn count(&mut self, edit: &Edit) {
        match edit {
            Edit::Add(..) => self.added += 1,
            Edit::Remove(..) => self.removed += 1,
        }
    }

    fn is_empty(&self) -> bool {
        self.added + self.removed == 0
    }

    /// `3 added, 1 removed`.
    fn said(&self) -> String {
        format!("{} added, {} removed", self.added, self.removed)
    }
}

/// A change of a list made from event time `at`, said: `cepheid: {place},
/// from event time 1700000000123` (`place`: what made it, a
/// [`Changed::place`] or [`ListRecord::describe_handle`]).
pub fn said_at(place: &str, at: Timestamp) -> String {
    format!("cepheid: {place}, from event time {}", event_time(at))
}

/// A change of a list refused (`place`: what asked for it; `why`: there
/// is no such list), said: a `$list` record (`record`) is left out.
pub fn refused(place: &str, why: &str, record: bool) -> Notice {
    let text = if record {
        format!("cepheid: {place}: refused: {why}; the record is left out")
    } else {
        format!("cepheid: {place}: refused: {why}")
    };
    Notice::new(Level::Warning, text)
}

/// The place of a change of `list` asked through the run's handle, in
/// messages: `` list `blocked` (the run's handle) ``.
pub fn handle_place(list: &str) -> String {
    format!("list `{list}` (the run's handle)")
}

/// A watched file's change, as an executor that makes changes itself (a
/// run's workers) is handed it ([`Watched::changed`]): every engine makes
/// [`edits`](Changed::edits) of [`list`](Changed::list) at one point of
/// event time, and says it as [`said_at`] words it.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    /// The list.
    pub list: String,
    /// What to remove, then what to add.
    pub edits: Vec<Edit>,
    /// The entries the file gives now (kept in cuts).
    pub file: FileEntries,
    /// What made it, for messages: `` list `blocked`: b.csv changed: 3
    /// added, 1 removed ``.
    pub place: String,
}

/// The reference files of a run watched (`Config::watch`) for an
/// executor that makes their changes itself (a run's workers: the reader
/// that hears that a file changed reads them again here): the entries
/// each gave when last read.
#[derive(Debug)]
pub struct Watched {
    files: Vec<ListFile>,
    state: Vec<FileEntries>,
    not_applied: u64,
    /// The rules' lists (how each tells its values apart).
    declared: Declarations,
}

impl Watched {
    /// `files` of the `declared` lists, which gave `state` when last
    /// read.
    pub fn new(files: Vec<ListFile>, state: Vec<FileEntries>, declared: Declarations) -> Watched {
        Watched {
            files,
            state,
            not_applied: 0,
            declared,
        }
    }

    /// The files read again and not applied so far (as
    /// [`Refreshed::not_applied`]).
    pub fn not_applied(&self) -> u64 {
        self.not_applied
    }

    /// The entries each file gave when last read.
    pub fn state(&self) -> &[FileEntries] {
        &self.state
    }

    /// Reads the files again: a change for each one that changed. A file
    /// that cannot be read is said to `say`, and its list goes on as it
    /// was. `stopped`: the files changed while the run was stopped (said
    /// so).
    pub fn changed(&mut self, stopped: bool, say: &mut dyn FnMut(Notice)) -> Vec<Changed> {
        let mut changed = Vec::new();
        for file in &self.files {
            let kind = kind_of(&self.declared, &file.list);
            let had = before(&self.state, file).len();
            let now = match read_again(file, kind, had, say) {
                Ok(Again::Read(now)) => now,
                Ok(Again::NotApplied) => {
                    self.not_applied += 1;
                    continue;
                }
                Err(why) => {
                    say(unread(file, &why));
                    continue;
                }
            };
            let edits = diff(before(&self.state, file), &now);
            if edits.is_empty() {
                continue;
            }
            let mut counted = Counted::default();
            edits.iter().for_each(|edit| counted.count(edit));
            changed.push(Changed {
                list: file.list.clone(),
                place: changed_place(file, counted, stopped),
                edits,
                file: now.clone(),
            });
            keep(&mut self.state, now);
        }
        changed
    }
}

/// Reads `files` whole for an executor whose engines make the changes
/// themselves (a run's workers), before any of them starts, as
/// [`refresh`] reads them for one engine (the same messages and refusals,
/// to `say`): into an engine of the rules' `declared` lists, then
/// dropped. What they gave before (`state`) is updated.
pub fn read_for_executor(
    files: &[ListFile],
    declared: &Declarations,
    state: &mut Vec<FileEntries>,
    when: When,
    say: &mut dyn FnMut(Notice),
) -> Result<Refreshed, crate::Error> {
    let Some(first) = files.first() else {
        return Ok(Refreshed::default());
    };
    let mut engine = Engine::<Record>::new();
    if !declared.is_empty() {
        engine
            .set_declarations(declared)
            .map_err(|e| crate::Error::List {
                list: first.list.clone(),
                path: first.path.clone(),
                why: e.to_string(),
            })?;
    }
    refresh_made(files, &mut engine, (state, Timestamp::MIN, when), true, say)
}

/// What each of `files` holds in `engine`'s lists (`docs/lists.md`,
/// "Origins"), as a read of the file gives its entries: for an executor
/// that keeps what each file gave ([`Watched`]: a run's workers)
/// resuming a checkpoint of one engine, which keeps none. A file whose
/// list `engine` does not declare gives nothing.
pub fn held(engine: &Engine<Record>, files: &[ListFile]) -> Vec<FileEntries> {
    let mut state = Vec::new();
    for file in files {
        let mut gathering = Gathering::default();
        let mut text = String::new();
        let read = engine.list_held_by(&file.list, &file.origin(), &mut |value, until| {
            held_text_into(value, &mut text);
            gathering.push(&text, until);
        });
        if read.is_ok() {
            let (entries, _, _) = gathering.done(0);
            keep(
                &mut state,
                FileEntries {
                    list: file.list.clone(),
                    path: file.path.clone(),
                    entries,
                },
            );
        }
    }
    state
}

/// What the processes of a run compare of the lists their files gave: a
/// hash (FNV-1a) of every file's entries (the files of each process must
/// give the same), as a line of their agreement.
pub fn digest(state: &[FileEntries]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut write = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in state {
        write(file.list.as_bytes());
        write(&[0]);
        for (value, until) in file.entries.iter() {
            write(value.as_bytes());
            write(&until.unwrap_or(Timestamp::MIN).to_le_bytes());
        }
        write(&[1]);
    }
    format!("--list (FNV-1a of the entries): {hash:016x}\n")
}

/// How list `list` of `declared` tells its values apart (a list not
/// declared: as values).
fn kind_of(declared: &Declarations, list: &str) -> ListKind {
    (declared.lists.iter())
        .find(|l| &*l.name == list)
        .map_or(ListKind::Values, |l| l.kind)
}

/// What `file` gave when last read, as `state` keeps it (nothing when it
/// was never read).
pub fn before<'a>(state: &'a [FileEntries], file: &ListFile) -> &'a Entries {
    static NOTHING: Entries = Entries::new();
    kept_of(state, file).map_or(&NOTHING, |s| &s.entries)
}

/// What `state` keeps of `file`, if anything.
fn kept_of<'a>(state: &'a [FileEntries], file: &ListFile) -> Option<&'a FileEntries> {
    (state.iter()).find(|s| s.list == file.list && s.path == file.path)
}

/// Keeps `now` in `state`, in place of what the same list and file gave.
pub fn keep(state: &mut Vec<FileEntries>, now: FileEntries) {
    match (state.iter_mut()).find(|s| s.list == now.list && s.path == now.path) {
        Some(kept) => *kept = now,
        None => state.push(now),
    }
}

/// The event time a change is made from, in messages (`Timestamp::MIN`:
/// `the start`).
pub fn event_time(at: Timestamp) -> String {
    match at {
        Timestamp::MIN => "the start".to_string(),
        at => at.to_string(),
    }
}

/// What a load or a change of the files did, for messages:
/// `3 added, 1 removed`.
pub fn describe(edits: &[Edit]) -> String {
    let mut counted = Counted::default();
    edits.iter().for_each(|edit| counted.count(edit));
    counted.said()
}

#[cfg(test)]
mod tests;
