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

/// The lists of `config`'s files read into `plan` (resumed from
/// `resumed`: what changed since its cut), said to `say` when `tell`
/// (process 0): the entries each file gave now, for the cuts to come,
/// and their digest, which the processes of a run compare.
pub(super) fn read(
    config: &Config,
    plan: &mut Plan<Record>,
    resumed: Option<&(Marker, Vec<Piece>)>,
    tell: bool,
    say: &Say,
) -> Result<(Vec<FileEntries>, String), Error> {
    let mut state: Vec<FileEntries> = resumed.map_or_else(Vec::new, |(marker, _)| {
        marker.the_counters().lists().to_vec()
    });
    if config.lists.is_empty() {
        return Ok((state, String::new()));
    }
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
    let edits = made.into_iter().flat_map(|(list, edits)| {
        edits.into_iter().map(move |edit| match edit {
            Edit::Add(value, until) => crate::ListEdit::Add {
                list: list.clone(),
                value,
                until,
            },
            Edit::Remove(value) => crate::ListEdit::Remove {
                list: list.clone(),
                value,
            },
        })
    });
    plan.edit_lists(edits).map_err(|e| {
        Error::Runtime(cepheid_runtime::Error::List {
            list: config.lists[0].list.clone(),
            path: config.lists[0].path.clone(),
            why: e.to_string(),
        })
    })?;
    Ok((state.clone(), digest(&state)))
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
