//! Reference lists fed by files (`Config::lists`, `cepheid run --list`)
//! on workers: each process reads the files once, before its workers
//! start, as one engine reads them (`cepheid_runtime::lists`: the same
//! messages, the same refusals), and every engine of every worker makes
//! the entries they give before any event ([`Plan::edit_lists`]).
//! Resumed, only what the files changed since the cut is made, after the
//! engines are restored with the lists they held. The entries each file
//! gave go into each cut's counters, as one engine's checkpoint keeps
//! them, so that a checkpoint resumes on either executor.

use super::*;
use cepheid_runtime::checkpoint::Marker;
use cepheid_runtime::lists::{self, Edit, FileEntries, When};

/// What [`read`] gives.
pub(super) struct Read {
    /// The entries each file gave as the engines hold them at the start
    /// (the cuts' counters: what a resume diffs against, with the changes
    /// of lists made since, `cut::lists`).
    pub(super) at_start: Vec<FileEntries>,
    /// The entries each file gives now (what a watched file's change
    /// diffs against).
    pub(super) now: Vec<FileEntries>,
    /// Their hash, which the processes of a run compare.
    pub(super) digest: String,
}

/// The lists of `config`'s files read into `plan` (resumed from
/// `resumed`: what changed since its cut), said to `say` when `tell`
/// (process 0).
///
/// Changes of lists pending at the cut (read before it, for a time after
/// it) are made at their times as they would have been; what the files
/// changed while the run was stopped is then made at the time of the
/// last of them, a change the cut holds as pending too. Otherwise it is
/// made before any event, at the checkpoint's event time, as one engine
/// makes it.
pub(super) fn read(
    config: &Config,
    plan: &mut Plan<Record>,
    resumed: Option<&mut (Marker, Vec<Piece>)>,
    tell: bool,
    say: &Say,
) -> Result<Read, Error> {
    let (mut state, pending) = match &resumed {
        Some((marker, pieces)) => at_the_cut(marker, pieces).map_err(|e| unfit(config, e))?,
        None => (Vec::new(), None),
    };
    if config.lists.is_empty() {
        return Ok(Read {
            at_start: state.clone(),
            now: state,
            digest: String::new(),
        });
    }
    let mut resumed = resumed;
    if let (Some((after, last)), Some((_, pieces))) = (pending, resumed.as_deref_mut()) {
        let mut watched = Watched {
            files: config.lists.clone(),
            state: after,
        };
        let quiet = Say::new(Box::new(cepheid_runtime::Notices::default()));
        let items = watched.changed(last.offset, if tell { say } else { &quiet });
        let changes: Vec<crate::Change> = (items.into_iter())
            .filter_map(|item| match item {
                SourceItem::Rules { place, texts, .. } => Some(crate::Change {
                    place: place.replacen(" changed: ", " changed while the run was stopped: ", 1),
                    texts,
                    ..last.clone()
                }),
                _ => None,
            })
            .collect();
        if !changes.is_empty() {
            for piece in pieces.iter_mut() {
                if let Some(mut rules) = crate::cut::rules(piece).map_err(|e| unfit(config, e))? {
                    rules.pending.extend(changes.iter().cloned());
                    crate::cut::put_rules(piece, &rules).map_err(|e| unfit(config, e))?;
                }
            }
        }
        let digest = digest(&watched.state);
        return Ok(Read {
            at_start: state,
            now: watched.state,
            digest,
        });
    }
    let resumed = resumed.as_deref();
    // An engine of the rules' declarations, whose lists the edits are
    // made in once here (its counts say what a list refused), then
    // dropped: the workers' engines make them.
    let mut engine = config.engine();
    let declared = match resumed {
        // (a run that resumes the rules a change put in force: those of
        // the cut's engines, which the plan does not have)
        Some((_, pieces)) if plan.patterns().is_empty() => pieces
            .first()
            .and_then(|piece| piece.engines().first())
            .and_then(|saved| {
                cepheid_engine::Engine::<Record>::from_snapshot_rules(saved.snapshot()).ok()
            })
            .map(|engine| engine.declarations().clone())
            .unwrap_or_default(),
        _ => plan.declarations(),
    };
    if !declared.is_empty() {
        engine.set_declarations(&declared).map_err(|e| {
            Error::Runtime(cepheid_runtime::Error::List {
                list: config.lists[0].list.clone(),
                path: config.lists[0].path.clone(),
                why: e.to_string(),
            })
        })?;
    }
    let when = match resumed {
        Some(_) => When::Resumed,
        None => When::Start,
    };
    let mut notices = Vec::new();
    let made = lists::refresh(
        &config.lists,
        &mut engine,
        &mut state,
        Timestamp::MIN,
        when,
        &mut |n| notices.push(n),
    )
    .map_err(Error::Runtime)?;
    if tell {
        let mut report = say.report();
        for notice in notices {
            report.notice(notice);
        }
    }
    let edits: Vec<crate::ListEdit> = (made.iter())
        .flat_map(|(list, edits)| list_edits(list, edits.clone()))
        .collect();
    plan.edit_lists(edits).map_err(|e| {
        Error::Runtime(cepheid_runtime::Error::List {
            list: config.lists[0].list.clone(),
            path: config.lists[0].path.clone(),
            why: e.to_string(),
        })
    })?;
    Ok(Read {
        at_start: state.clone(),
        digest: digest(&state),
        now: state,
    })
}

/// A cut that does not read as one (exit 5).
fn unfit(config: &Config, source: cepheid_engine::Error) -> Error {
    Error::Resume {
        folder: config.checkpoint.clone().unwrap_or_default(),
        why: super::Mismatch::Cut(source),
    }
}

/// The entries each file gave as a cut's engines hold them: the marker's
/// (the start of the run that took it), then those of the changes of
/// lists it made since (the same on every worker: the first piece's);
/// and, when changes of lists were pending at the cut, the entries after
/// them and the last one.
#[allow(clippy::type_complexity)]
fn at_the_cut(
    marker: &Marker,
    pieces: &[Piece],
) -> Result<(Vec<FileEntries>, Option<(Vec<FileEntries>, crate::Change)>), cepheid_engine::Error> {
    let mut state = marker.the_counters().lists().to_vec();
    let Some(first) = pieces.first() else {
        return Ok((state, None));
    };
    for file in crate::cut::lists(first) {
        lists::keep(&mut state, file);
    }
    let pending: Vec<crate::Change> = (crate::cut::rules(first)?)
        .map(|rules| {
            rules
                .pending
                .into_iter()
                .filter(crate::Change::is_lists)
                .collect()
        })
        .unwrap_or_default();
    let Some(last) = pending.last().cloned() else {
        return Ok((state, None));
    };
    let mut after = state.clone();
    for change in &pending {
        if let Some(file) = change.file_change().and_then(|made| made.file) {
            lists::keep(&mut after, file);
        }
    }
    Ok((state, Some((after, last))))
}

/// What the processes of a run compare of the lists: a hash of every
/// file's entries (the files of each process must give the same).
fn digest(state: &[FileEntries]) -> String {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    for file in state {
        hasher.write(file.list.as_bytes());
        hasher.write(&[0]);
        for (value, until) in &file.entries {
            hasher.write(value.as_bytes());
            hasher.write(&until.unwrap_or(Timestamp::MIN).to_le_bytes());
        }
        hasher.write(&[1]);
    }
    format!("--list (FNV-1a of the entries): {:016x}\n", hasher.finish())
}

/// The reference files a run on workers watches (`Config::watch`), read
/// again by the reader of process 0 that hears they changed: the entries
/// each gave when last read.
pub(super) struct Watched {
    files: Vec<lists::ListFile>,
    state: Vec<FileEntries>,
}

impl Watched {
    /// `config`'s files, which gave `state` (read at the start).
    pub(super) fn new(config: &Config, state: Vec<FileEntries>) -> Watched {
        Watched {
            files: config.lists.clone(),
            state,
        }
    }

    /// Reads the files again: a change for each one that changed (its
    /// list's edits and its entries now, `Change::is_lists`), read at
    /// `offset`, which every worker makes from its source's watermark
    /// then on (one past it), as a change of rules. A file that cannot be
    /// read is said, and its list goes on as it was.
    pub(super) fn changed(&mut self, offset: u64, say: &Say) -> Vec<SourceItem<Record>> {
        let mut items = Vec::new();
        for file in &self.files {
            let now = match lists::read(file, &mut |n| say.report().notice(n)) {
                Ok(now) => now,
                Err(why) => {
                    say!(
                        say,
                        Warning,
                        "cepheid: list `{}`: {why}; the list goes on as it was",
                        file.list
                    );
                    continue;
                }
            };
            let edits = lists::diff(lists::before(&self.state, file), &now);
            if edits.is_empty() {
                continue;
            }
            let place = format!(
                "list `{}`: {} changed: {}",
                file.list,
                file.path.display(),
                lists::describe(&edits)
            );
            let edits = list_edits(&file.list, edits).collect();
            let texts = crate::Change::lists_texts(&crate::FileChange {
                file: Some(now.clone()),
                edits,
                origin: crate::ListOrigin::File,
            });
            items.push(SourceItem::Rules {
                offset,
                place,
                texts,
            });
            lists::keep(&mut self.state, now);
        }
        items
    }
}

/// `edits` of `list`, as every engine makes them.
fn list_edits(list: &str, edits: Vec<Edit>) -> impl Iterator<Item = crate::ListEdit> + '_ {
    edits.into_iter().map(move |edit| match edit {
        Edit::Add(value, until) => crate::ListEdit::Add {
            list: list.to_string(),
            value,
            until,
        },
        Edit::Remove(value) => crate::ListEdit::Remove {
            list: list.to_string(),
            value,
        },
    })
}

/// A `$list` record of the input (at `offset`, `place` naming it) as the
/// workers make it: a change of lists at the reader's watermark then + 1,
/// as one engine makes it; `Err` with why the run does not take it (said
/// and counted with the malformed lines by the caller).
pub(super) fn record_item(
    control: &cepheid_runtime::source::Control,
    config: &Config,
    own: bool,
    (offset, place): (u64, &str),
) -> Result<SourceItem<Record>, String> {
    let record = control.read_list(config, own)?;
    let edits = list_edits(&record.list, record.edits()).collect();
    Ok(SourceItem::Rules {
        offset,
        place: format!("{place} ({})", control.describe()),
        texts: crate::Change::lists_texts(&crate::FileChange {
            file: None,
            edits,
            origin: crate::ListOrigin::Record,
        }),
    })
}

/// A change of a list asked through the run's handle (read at `offset`)
/// as the workers make it: at the reader's watermark then + 1, said by
/// worker 0 as one engine says it.
pub(super) fn handle_item(record: &lists::ListRecord, offset: u64) -> SourceItem<Record> {
    let edits = list_edits(&record.list, record.edits()).collect();
    SourceItem::Rules {
        offset,
        place: record.describe_handle(),
        texts: crate::Change::lists_texts(&crate::FileChange {
            file: None,
            edits,
            origin: crate::ListOrigin::Handle,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::checkpoint::Counters;

    fn entries(file: &Path, values: &[&str]) -> FileEntries {
        FileEntries {
            list: "blocked".to_string(),
            path: file.to_path_buf(),
            entries: values.iter().map(|v| (format!("\"{v}\""), None)).collect(),
        }
    }

    /// A cut whose engines hold `a` (the marker's), with a change of the
    /// list to `b` pending at 24; the file gives `a` and `b` now.
    #[test]
    fn what_changed_while_stopped_is_made_after_the_changes_pending_at_the_cut() {
        let dir = std::env::temp_dir().join(format!("cepheid-run-lists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.jsonl");
        std::fs::write(&file, "\"a\"\n\"b\"\n").unwrap();
        let input = cepheid_runtime::Input::file(dir.join("e.jsonl"));
        let mut config = Config::new(input, Vec::new());
        config.lists = vec![lists::ListFile {
            list: "blocked".to_string(),
            path: file.clone(),
        }];
        let rules = Rules::parse(
            "r.cep",
            "list blocked\npattern p { match a where a: x in blocked }",
        )
        .unwrap();
        let mut plan = Plan::<Record>::new();
        plan.add(&rules).unwrap();
        let marker =
            Marker::new(1).counters(Counters::default().with_lists(vec![entries(&file, &["a"])]));
        let pending = crate::Change {
            at: 24,
            source: 0,
            offset: 7,
            place: "list `blocked`: b.jsonl changed: 1 added, 1 removed".to_string(),
            texts: crate::Change::lists_texts(&crate::FileChange {
                origin: crate::ListOrigin::File,
                file: Some(entries(&file, &["b"])),
                edits: vec![
                    crate::ListEdit::Remove {
                        list: "blocked".into(),
                        value: "a".into(),
                    },
                    crate::ListEdit::Add {
                        list: "blocked".into(),
                        value: "b".into(),
                        until: None,
                    },
                ],
            }),
        };
        let mut piece = Piece::default();
        let rules_cut = crate::cut::Rules {
            pending: vec![pending.clone()],
            ..Default::default()
        };
        crate::cut::put_rules(&mut piece, &rules_cut).unwrap();
        let mut resumed = (marker, vec![piece]);
        let notices = Say::new(Box::new(cepheid_runtime::Notices::default()));
        let read = read(&config, &mut plan, Some(&mut resumed), true, &notices).unwrap();
        assert_eq!(read.at_start, vec![entries(&file, &["a"])]);
        assert_eq!(read.now, vec![entries(&file, &["a", "b"])]);
        // Nothing at the start: the pending change, then what the file
        // changed since it, at its time.
        assert!(plan.lists.is_empty());
        let after = crate::cut::rules(&resumed.1[0]).unwrap().unwrap().pending;
        assert_eq!(after.len(), 2);
        assert_eq!(after[0], pending);
        assert_eq!((after[1].at, after[1].source, after[1].offset), (24, 0, 7));
        let made = after[1].file_change().unwrap();
        assert_eq!(made.file, Some(entries(&file, &["a", "b"])));
        assert_eq!(
            made.edits,
            vec![crate::ListEdit::Add {
                list: "blocked".into(),
                value: "a".into(),
                until: None,
            }]
        );
        assert!(after[1]
            .place
            .contains("changed while the run was stopped: 1 added, 0 removed"));
    }
}
