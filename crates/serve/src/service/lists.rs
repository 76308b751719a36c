//! The service's list files (`cepheid serve --list NAME=PATH`,
//! `docs/serve.md`, "Lists"): read at the start and, with `--watch`, when
//! they change; what they change is **logged** as `$list` records
//! (`Entry::List`), which the run applies from the log at their place, so
//! that a restart and a replay (`backtest --events wal:DIR`) see the same
//! entries at the same requests, whatever the files say by then.
//!
//! What was logged is kept beside the log (`STATE/lists.json`: each file's
//! entries as last logged), written once the records are durable: a
//! restart logs only what the files changed meanwhile (a crash between
//! the two logs the same change again, which changes nothing: an add sets
//! the same expiry, a remove of what is gone is nothing). The changes are
//! made per list on the union of its files (the log's `$list` records are
//! one origin, `docs/lists.md`, "Origins"): a value two files give stays
//! when one of them drops it.
//!
//! The reading, the refusals (a file emptied or binary while it is being
//! written is not applied) and the words are the runtime's
//! ([`cepheid_runtime::lists::Watched`]), as `cepheid run --watch` has
//! them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cepheid_core::lookup::Declarations;
use cepheid_engine::Timestamp;
use cepheid_runtime::lists::{FileEntries, ListFile, Watched};
use cepheid_runtime::{Level, Notice};
use serde_json::value::RawValue;

use crate::wal::{Appender, Entry};

/// Most values in one logged `$list` record (a list of millions is logged
/// as many records, each well under the log's payload bound).
const VALUES_PER_RECORD: usize = 10_000;

/// Most bytes of values in one logged `$list` record (long values: a
/// record stays under the log's payload bound, 16 MiB; one value longer
/// than that is a record the log refuses, said as the change's error).
const BYTES_PER_RECORD: usize = 1 << 20;

/// `values` in runs of at most [`VALUES_PER_RECORD`] values and
/// [`BYTES_PER_RECORD`] bytes (at least one value each).
fn bounded<'a>(values: &'a [&'a str]) -> Vec<&'a [&'a str]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, value) in values.iter().enumerate() {
        if i > start && (i - start == VALUES_PER_RECORD || bytes + value.len() > BYTES_PER_RECORD) {
            runs.push(&values[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += value.len() + 1;
    }
    if start < values.len() {
        runs.push(&values[start..]);
    }
    runs
}

/// The list files of a service and what of them was logged.
pub(crate) struct Lists {
    files: Vec<ListFile>,
    declared: Declarations,
    /// `STATE/lists.json`.
    kept: PathBuf,
    /// What each file gave when last logged.
    logged: Vec<FileEntries>,
    /// Each file's size and time of change when last looked at, and
    /// whether it changed at that look (applied once it stays the same
    /// for one more look: an editor's writes are over).
    looked: Vec<Option<(u64, SystemTime)>>,
    moving: bool,
}

impl Lists {
    /// The `files` of the rules' `declared` lists, what was logged of
    /// them read from `state` (`lists.json`). A file whose list the rules
    /// do not declare, or that cannot be read, is an error (the service
    /// does not start), as for `cepheid run`.
    pub(crate) fn open(
        files: Vec<ListFile>,
        declared: Declarations,
        state: &Path,
    ) -> Result<Lists, String> {
        for file in &files {
            if !(declared.lists.iter()).any(|l| *l.name == file.list) {
                return Err(format!(
                    "list `{}` ({}): the rules declare no list `{}` (`list {}`)",
                    file.list,
                    file.path.display(),
                    file.list,
                    file.list
                ));
            }
            if let Err(e) = std::fs::File::open(&file.path) {
                return Err(format!(
                    "list `{}`: cannot read {}: {e}",
                    file.list,
                    file.path.display()
                ));
            }
        }
        let kept = state.join("lists.json");
        let logged = match std::fs::read(&kept) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not what the service keeps: {e}", kept.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", kept.display())),
        };
        let looked = vec![None; files.len()];
        Ok(Lists {
            files,
            declared,
            kept,
            logged,
            looked,
            moving: false,
        })
    }

    /// Are there list files, or lists logged from files before?
    pub(crate) fn any(&self) -> bool {
        !self.files.is_empty() || !self.logged.is_empty()
    }

    /// With `--watch`: has a file changed since the last look and stayed
    /// as it is since (its size and time of change)? The first look
    /// takes them as they are.
    pub(crate) fn settled(&mut self) -> bool {
        let now: Vec<Option<(u64, SystemTime)>> = (self.files.iter())
            .map(|f| {
                let meta = std::fs::metadata(&f.path).ok()?;
                Some((meta.len(), meta.modified().ok()?))
            })
            .collect();
        let changed = now != self.looked;
        self.looked = now;
        match (changed, self.moving) {
            (true, _) => {
                self.moving = true;
                false
            }
            (false, true) => {
                self.moving = false;
                true
            }
            (false, false) => false,
        }
    }

    /// Reads the files and logs what they change against what was logged
    /// (waiting until it is durable), then keeps what they give. What it
    /// does is said to `say`: `stopped`, the files changed while the
    /// service was stopped. An error when the log cannot be written or
    /// `lists.json` kept (the change is then made again next time).
    pub(crate) fn log_changes(
        &mut self,
        log: &Appender,
        stopped: bool,
        say: &mut dyn FnMut(Notice),
    ) -> Result<usize, String> {
        let mut watched = Watched::new(
            self.files.clone(),
            self.logged.clone(),
            self.declared.clone(),
        );
        let changed = watched.changed(stopped, say);
        let is_file = |f: &FileEntries| {
            (self.files.iter()).any(|file| file.list == f.list && file.path == f.path)
        };
        let now: Vec<FileEntries> = (watched.state().iter())
            .filter(|f| is_file(f))
            .cloned()
            .collect();
        let mut lists: Vec<&str> = (self.logged.iter().chain(&now))
            .map(|f| f.list.as_str())
            .collect();
        lists.sort_unstable();
        lists.dedup();
        let mut records = Vec::new();
        for list in lists {
            let before = union(&self.logged, list);
            let after = union(&now, list);
            records.extend(records_of(list, &before, &after));
        }
        let logged = records.len();
        for record in records {
            let change = RawValue::from_string(record).map_err(|e| e.to_string())?;
            append_wait(
                log,
                Entry::List {
                    change,
                    origin: None,
                },
            )?;
        }
        let text = serde_json::to_vec(&now).map_err(|e| e.to_string())?;
        let temp = self.kept.with_extension("json.new");
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, &self.kept))
            .map_err(|e| format!("cannot write {}: {e}", self.kept.display()))?;
        self.logged = now;
        for change in changed {
            say(Notice::new(
                Level::Info,
                format!("cepheid serve: {} (logged)\n", change.place),
            ));
        }
        Ok(logged)
    }
}

/// The entries list `list` holds of `files`: each value once, until the
/// latest of its expiries (`None`: the list's own `for`, which no file's
/// entry has, or never).
fn union(files: &[FileEntries], list: &str) -> BTreeMap<String, Option<Timestamp>> {
    let mut values: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.list == list) {
        for (value, until) in file.entries.iter() {
            let held = values.entry(value.to_string()).or_insert(until);
            *held = (*held).max(until);
        }
    }
    values
}

/// The `$list` records that make `before` into `after`: its removals,
/// then its additions grouped by expiry (none: for ever), in runs of
/// [`bounded`]. Each value is its JSON text as the file's read gave it.
fn records_of(
    list: &str,
    before: &BTreeMap<String, Option<Timestamp>>,
    after: &BTreeMap<String, Option<Timestamp>>,
) -> Vec<String> {
    let name = serde_json::to_string(list).expect("a string");
    let mut records = Vec::new();
    let gone: Vec<&str> = (before.keys())
        .filter(|v| !after.contains_key(*v))
        .map(String::as_str)
        .collect();
    for chunk in bounded(&gone) {
        records.push(format!(
            r#"{{"$list":{name},"remove":[{}]}}"#,
            chunk.join(",")
        ));
    }
    let mut added: BTreeMap<Option<Timestamp>, Vec<&str>> = BTreeMap::new();
    for (value, until) in after {
        if before.get(value) != Some(until) {
            added.entry(*until).or_default().push(value);
        }
    }
    for (until, values) in added {
        // (a file's entry without an expiry of its own is held for ever,
        // not for the list's `for`, which a `$list` record's add without
        // `expires` would take: `docs/lists.md`, "Origins")
        let until = until.unwrap_or(Timestamp::MAX);
        for chunk in bounded(&values) {
            records.push(format!(
                r#"{{"$list":{name},"add":[{}],"expires":{until}}}"#,
                chunk.join(",")
            ));
        }
    }
    records
}

/// Appends `entry` and waits until it is durable.
fn append_wait(log: &Appender, entry: Entry) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    log.append(
        entry,
        Box::new(move |result| {
            let _ = tx.send(result.map(|_| ()).map_err(|e| e.to_string()));
        }),
    )
    .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|_| "the log stopped before the change was written".to_string())?
}

/// `POST /v1/lists/{list}` (`docs/serve.md`, "Lists"): the change as
/// `$list` records, logged as the list files' are (the removals first,
/// then the additions, in bounded runs); answered once the last is
/// logged. A list the rules in force do not declare is refused (404). An
/// addition without `expires` to a list with a `for` is given its expiry
/// now (`for` from the wall clock): explicit in the log, so that a replay
/// gives it the same, and never counted from the start of event time.
pub(crate) async fn change(
    front: &super::Front,
    call: crate::decider::ListCall,
) -> Result<crate::decider::ListChanged, crate::decider::ApiError> {
    use crate::decider::{ApiError, ErrorCode};
    let _in_flight = front.admit()?;
    let book = front.shared.book();
    let Some((_, lasts)) = book.lists.iter().find(|(name, _)| *name == call.list) else {
        let names: Vec<&str> = book.lists.iter().map(|(n, _)| n.as_str()).collect();
        let theirs = match names.is_empty() {
            true => "they declare none".to_string(),
            false => format!("their lists: {}", names.join(", ")),
        };
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no list `{}` in the rules in force; {theirs}", call.list),
        ));
    };
    let now = crate::wal::wall_clock_ms();
    // (an expiry that is past adds nothing that lasts: a hurried
    // operator's seconds for milliseconds, said rather than taken)
    if let Some(at) = call.expires.filter(|&at| at <= now && !call.add.is_empty()) {
        let time = cepheid_decode::format_rfc3339;
        return Err(ApiError {
            status: 422,
            field: Some("expires".into()),
            ..ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "`expires` {at} ({}) is not after now ({}): the values would be expired as they are added; it is milliseconds since the epoch, not seconds",
                    time(at),
                    time(now)
                ),
            )
        });
    }
    let expires = match (call.expires, lasts) {
        (Some(at), _) => Some(at),
        (None, Some(lasts)) if !call.add.is_empty() => Some(now.saturating_add(*lasts)),
        (None, _) => None,
    };
    let name = serde_json::to_string(&call.list).unwrap_or_default();
    let mut records = Vec::new();
    let remove: Vec<&str> = call.remove.iter().map(String::as_str).collect();
    for run in bounded(&remove) {
        records.push(format!(
            r#"{{"$list":{name},"remove":[{}]}}"#,
            run.join(",")
        ));
    }
    let add: Vec<&str> = call.add.iter().map(String::as_str).collect();
    let until = expires.map_or(String::new(), |at| format!(r#","expires":{at}"#));
    for run in bounded(&add) {
        records.push(format!(
            r#"{{"$list":{name},"add":[{}]{until}}}"#,
            run.join(",")
        ));
    }
    // Each logged in order; the answer waits for the last (a failure of
    // any is the answer: what was logged before it stays logged, and
    // said so).
    let (tx, rx) = tokio::sync::oneshot::channel();
    let state = std::sync::Arc::new(std::sync::Mutex::new(Logging {
        left: records.len(),
        logged: 0,
        last: 0,
        error: None,
        tx: Some(tx),
    }));
    let count = records.len();
    for record in records {
        let change = RawValue::from_string(record).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the change is not JSON: {e}"),
            )
        })?;
        let state2 = std::sync::Arc::clone(&state);
        let done: crate::wal::Done = Box::new(move |result| {
            let mut s = state2.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(logged) => {
                    s.logged += 1;
                    s.last = s.last.max(logged.seq);
                }
                Err(e) => s.error = Some(e.to_string()),
            }
            s.left -= 1;
            if s.left == 0 {
                let answer = match s.error.take() {
                    None => Ok(s.last),
                    Some(e) => Err((s.logged, e)),
                };
                if let Some(tx) = s.tx.take() {
                    let _ = tx.send(answer);
                }
            }
        });
        if let Err(e) = front.append(
            Entry::List {
                change,
                origin: None,
            },
            done,
        ) {
            let logged = count - state.lock().unwrap_or_else(|p| p.into_inner()).left;
            return Err(match logged {
                0 => e,
                n => ApiError {
                    message: format!(
                        "{} ({n} of its {count} records were logged before)",
                        e.message
                    ),
                    ..e
                },
            });
        }
    }
    let unavailable = |message: String| ApiError {
        retry_after: Some(1),
        ..ApiError::new(ErrorCode::Unavailable, message)
    };
    match rx.await {
        Ok(Ok(entry)) => Ok(crate::decider::ListChanged {
            list: call.list,
            added: call.add.len() as u64,
            removed: call.remove.len() as u64,
            expires: expires.filter(|_| !call.add.is_empty()),
            entry,
        }),
        Ok(Err((0, e))) => Err(unavailable(format!(
            "the change could not be logged ({e}): nothing was changed"
        ))),
        Ok(Err((n, e))) => Err(unavailable(format!(
            "the change could not be logged whole ({e}): {n} of its {count} records were, and apply"
        ))),
        Err(_) => Err(unavailable(
            "the service stopped before the change was logged".to_string(),
        )),
    }
}

/// A list change's records being logged.
struct Logging {
    left: usize,
    logged: usize,
    last: u64,
    error: Option<String>,
    tx: Option<tokio::sync::oneshot::Sender<Result<u64, (usize, String)>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_records_remove_then_add_by_expiry_in_chunks() {
        let before: BTreeMap<String, Option<Timestamp>> = [
            ("\"a\"".to_string(), Some(10)),
            ("\"b\"".to_string(), None),
            ("\"c\"".to_string(), Some(10)),
        ]
        .into();
        let after: BTreeMap<String, Option<Timestamp>> = [
            ("\"a\"".to_string(), Some(10)),
            ("\"c\"".to_string(), Some(20)),
            ("\"d\"".to_string(), None),
        ]
        .into();
        assert_eq!(
            records_of("L", &before, &after),
            [
                r#"{"$list":"L","remove":["b"]}"#,
                r#"{"$list":"L","add":["d"],"expires":9223372036854775807}"#,
                r#"{"$list":"L","add":["c"],"expires":20}"#,
            ]
        );
        let many: BTreeMap<String, Option<Timestamp>> = (0..VALUES_PER_RECORD + 1)
            .map(|i| (i.to_string(), None))
            .collect();
        let records = records_of("L", &BTreeMap::new(), &many);
        assert_eq!(records.len(), 2);
        // (long values: a record under a mebibyte, each value in one)
        let long: BTreeMap<String, Option<Timestamp>> = (0..5)
            .map(|i| (format!("\"{i}{}\"", "x".repeat(400_000)), None))
            .collect();
        let records = records_of("L", &BTreeMap::new(), &long);
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.len() < (1 << 20) + 100));
        assert!(records
            .iter()
            .all(|r| serde_json::from_str::<serde_json::Value>(r).is_ok()));
    }
}
