//! The lists of a run on an executor's workers at its open
//! ([`read_lists`]): the reference files read once by each process before
//! its workers start, and, resuming a cut, what they changed while the run
//! was stopped, made pending at the cut.

use std::sync::{Arc, Mutex};

use cepheid_core::lookup::Declarations;
use cepheid_engine::{Engine, Record};

use super::{digest, keep, read_for_executor, FileEntries, Watched, When};
use crate::checkpoint::{CutPlan, CutRules, Marker, Part, Piece};
use crate::executor::Change;
use crate::{Config, Error, Notice, Unusable};

/// The reference files' entries at the open of a run on workers
/// ([`read_lists`]).
pub struct ListsRead {
    /// The entries each file gave as the engines hold them at the start
    /// (the cuts' counters: what a resume diffs against, with the changes
    /// of lists made since, [`lists_of`]).
    pub at_start: Vec<FileEntries>,
    /// With `Config::watch`, the files watched, which gave what each
    /// gives now (what a watched file's change diffs against).
    pub watched: Option<Arc<Mutex<Watched>>>,
    /// Their hash, which the processes of a run compare.
    pub digest: String,
    /// Files not applied (resumed: they had entries and are now empty,
    /// binary, or give none).
    pub not_applied: u64,
}

/// The entries of the watched reference files that a worker's changes of
/// lists gave since its run started ([`Part::Lists`] of its piece).
pub fn lists_of(piece: &Piece) -> Vec<FileEntries> {
    (piece.get(Part::Lists))
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default()
}

/// Keeps `files` in `piece` ([`lists_of`]).
pub fn put_lists(piece: &mut Piece, files: &[FileEntries]) {
    piece.set(Part::Lists, serde_json::to_vec(files).unwrap_or_default());
}

/// The lists of `config`'s files (read by the runtime) made in `plan`
/// (resumed from `resumed`: what changed since its cut), said to `say`
/// when `tell` (process 0): each process reads the files once, before its
/// workers start, and every engine of every worker makes the entries they
/// give before any event ([`CutPlan::edit_lists`]).
///
/// Changes of lists pending at the cut (read before it, for a time after
/// it) are made at their times as they would have been; what the files
/// changed while the run was stopped is then made at the time of the
/// last of them, a change the cut holds as pending too. Otherwise it is
/// made before any event, at the checkpoint's event time, as one engine
/// makes it.
pub fn read_lists(
    config: &Config,
    plan: &mut dyn CutPlan,
    resumed: Option<&mut (Marker, Vec<Piece>)>,
    tell: bool,
    say: &mut dyn FnMut(Notice),
) -> Result<ListsRead, Error> {
    let (mut state, pending) = match &resumed {
        Some((marker, pieces)) => {
            at_the_cut(marker, pieces, &*plan).map_err(|e| unfit(config, e))?
        }
        None => (Vec::new(), None),
    };
    if config.lists.is_empty() {
        return Ok(ListsRead {
            at_start: state,
            watched: None,
            digest: String::new(),
            not_applied: 0,
        });
    }
    let declared = declared_at_open(&*plan, resumed.as_deref());
    let mut resumed = resumed;
    if let (Some((after, last)), Some((_, pieces))) = (pending, resumed.as_deref_mut()) {
        let mut watched = Watched::new(config.lists.clone(), after, declared.clone());
        let changed = watched.changed(true, &mut |n| {
            if tell {
                say(n);
            }
        });
        let changes: Vec<Change> = (changed.into_iter())
            .map(|changed| {
                let place = changed.place.clone();
                let mut change = plan.list_change(changed, last.offset, place);
                (change.at, change.source) = (last.at, last.source);
                change
            })
            .collect();
        if !changes.is_empty() {
            for piece in pieces.iter_mut() {
                if let Some(mut rules) = CutRules::of(piece).map_err(|e| unfit(config, e))? {
                    rules.pending.extend(changes.iter().cloned());
                    rules.put(piece).map_err(|e| unfit(config, e))?;
                }
            }
        }
        let now = watched.state().to_vec();
        return Ok(ListsRead {
            at_start: state,
            digest: digest(&now),
            not_applied: watched.not_applied(),
            watched: watching(config, now, declared),
        });
    }
    let when = match resumed {
        Some(_) => When::Resumed,
        None => When::Start,
    };
    let mut notices = Vec::new();
    let refreshed = read_for_executor(&config.lists, &declared, &mut state, when, &mut |n| {
        notices.push(n)
    })?;
    if tell {
        notices.into_iter().for_each(&mut *say);
    }
    let not_applied = refreshed.not_applied;
    for (file, made) in refreshed.made {
        plan.edit_lists(&file, made).map_err(|why| Error::List {
            list: file.list.clone(),
            path: file.path.clone(),
            why,
        })?;
    }
    Ok(ListsRead {
        at_start: state.clone(),
        digest: digest(&state),
        watched: watching(config, state, declared),
        not_applied,
    })
}

/// The files of `config` watched (`Config::watch`), which gave `now`.
fn watching(
    config: &Config,
    now: Vec<FileEntries>,
    declared: Declarations,
) -> Option<Arc<Mutex<Watched>>> {
    let watched = config.watch && !config.lists.is_empty();
    watched.then(|| {
        Arc::new(Mutex::new(Watched::new(
            config.lists.clone(),
            now,
            declared,
        )))
    })
}

/// The lists the rules of a run declare at its open: the plan's, or,
/// resuming the rules a change put in force, those of the cut's engines
/// (which the plan does not have).
fn declared_at_open(plan: &dyn CutPlan, resumed: Option<&(Marker, Vec<Piece>)>) -> Declarations {
    match resumed {
        Some((_, pieces)) if !plan.has_patterns() => pieces
            .first()
            .and_then(|piece| piece.engines().first())
            .and_then(|saved| Engine::<Record>::from_snapshot_rules(saved.snapshot()).ok())
            .map(|engine| engine.declarations().clone())
            .unwrap_or_default(),
        _ => plan.declarations(),
    }
}

/// A cut that does not read as one (exit 5).
fn unfit(config: &Config, source: cepheid_engine::Error) -> Error {
    Error::Resume {
        folder: config.checkpoint.clone().unwrap_or_default(),
        why: Unusable::Cut(source),
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
    plan: &dyn CutPlan,
) -> Result<(Vec<FileEntries>, Option<(Vec<FileEntries>, Change)>), cepheid_engine::Error> {
    let mut state = marker.the_counters().lists().to_vec();
    let Some(first) = pieces.first() else {
        return Ok((state, None));
    };
    for file in lists_of(first) {
        keep(&mut state, file);
    }
    let pending: Vec<Change> = (CutRules::of(first)?)
        .map(|rules| rules.pending.into_iter().filter(Change::is_lists).collect())
        .unwrap_or_default();
    let Some(last) = pending.last().cloned() else {
        return Ok((state, None));
    };
    let mut after = state.clone();
    for change in &pending {
        if let Some(file) = plan.list_file(change) {
            keep(&mut after, file);
        }
    }
    Ok((state, Some((after, last))))
}
