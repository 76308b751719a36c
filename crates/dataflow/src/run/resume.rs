//! `--checkpoint DIR` on workers: the checkpoint a run resumes (from the
//! runtime's folder, `cepheid_runtime::checkpoint::store`), its checks, and
//! the shares of the input each new worker takes ([`items::dealt`]).

use super::*;
use cepheid_runtime::checkpoint::{self, CutRules, Marker, Piece, Stored};
use cepheid_runtime::lists::{self, FileEntries};
use cepheid_runtime::Every;

/// `--checkpoint DIR` with `--workers`: the cuts of the run.
pub(super) struct Checkpoint {
    pub(super) dir: PathBuf,
    pub(super) every: Duration,
    /// With `Config::checkpoint_every` lines: a cut when this process's
    /// readers read that many lines since the last was asked for.
    pub(super) every_lines: Option<u64>,
    /// Lines this process's readers read (a file's parts count theirs by
    /// [`PartsInput`]'s looks, live input by batches).
    pub(super) lines: Arc<AtomicU64>,
    pub(super) cuts: Arc<Cuts>,
    /// Processes, and workers per process.
    pub(super) layout: (usize, usize),
    pub(super) chunk_bytes: u64,
    pub(super) output_per_worker: bool,
    /// The command the cuts belong to.
    pub(super) command: Option<checkpoint::Command>,
    /// The lines of the input read at the cut resumed from (none when
    /// starting), over every worker: no worker reads them again.
    pub(super) read: Arc<cut::Read>,
    /// Its records go to a sink of the library's user
    /// ([`Workers::with_sink`]), which commits each cut.
    pub(super) to_sink: bool,
    /// The number of the last cut completed (that resumed from, 0 when
    /// starting): each cut's is the next.
    pub(super) number: AtomicU64,
    /// With `Config::watch`, the pattern files are not the rules of the
    /// cut resumed from (edited since): the live input reads them at once.
    pub(super) reload_files: bool,
    /// The entries each reference file gave (`Config::lists`), kept in
    /// each cut's counters as one engine keeps them.
    pub(super) lists: Vec<cepheid_runtime::lists::FileEntries>,
}

impl Checkpoint {
    /// The marker of cut `number` of this run (its outputs not set).
    pub(super) fn marker(&self, number: u64) -> checkpoint::Marker {
        checkpoint::Marker::new(number)
            .on_workers(self.layout, self.chunk_bytes, self.output_per_worker)
            .command(self.command.clone())
            .counters(checkpoint::Counters::default().with_lists(self.lists.clone()))
    }
}

/// The reference files' entries at the open of a run
/// ([`read_lists`]).
pub(super) struct ListsRead {
    /// The entries each file gave as the engines hold them at the start
    /// (the cuts' counters: what a resume diffs against, with the changes
    /// of lists made since, `cut::lists`).
    pub(super) at_start: Vec<FileEntries>,
    /// With `Config::watch`, the files watched, which gave what each
    /// gives now (what a watched file's change diffs against).
    pub(super) watched: Option<Arc<Mutex<lists::Watched>>>,
    /// Their hash, which the processes of a run compare.
    pub(super) digest: String,
    /// Files not applied (resumed: they had entries and are now empty,
    /// binary, or give none).
    pub(super) not_applied: u64,
}

/// The lists of `config`'s files (read by the runtime, `lists`) made in
/// `plan` (resumed from `resumed`: what changed since its cut), said to
/// `say` when `tell` (process 0): each process reads the files once,
/// before its workers start, and every engine of every worker makes the
/// entries they give before any event ([`Plan::edit_lists`]).
///
/// Changes of lists pending at the cut (read before it, for a time after
/// it) are made at their times as they would have been; what the files
/// changed while the run was stopped is then made at the time of the
/// last of them, a change the cut holds as pending too. Otherwise it is
/// made before any event, at the checkpoint's event time, as one engine
/// makes it.
pub(super) fn read_lists(
    config: &Config,
    plan: &mut Plan<Record>,
    resumed: Option<&mut (Marker, Vec<Piece>)>,
    tell: bool,
    say: &Say,
) -> Result<ListsRead, Error> {
    let (mut state, pending) = match &resumed {
        Some((marker, pieces)) => at_the_cut(marker, pieces).map_err(|e| unfit(config, e))?,
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
    let declared = declared_at_open(plan, resumed.as_deref());
    let mut resumed = resumed;
    if let (Some((after, last)), Some((_, pieces))) = (pending, resumed.as_deref_mut()) {
        let mut watched = lists::Watched::new(config.lists.clone(), after, declared.clone());
        let changed = watched.changed(true, &mut |n| {
            if tell {
                say.report().notice(n);
            }
        });
        let changes: Vec<crate::Change> = (changed.into_iter())
            .map(|changed| {
                let place = changed.place.clone();
                let mut change = crate::FileChange::of(changed).change(last.offset, place);
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
            digest: lists::digest(&now),
            not_applied: watched.not_applied(),
            watched: watching(config, now, declared),
        });
    }
    let resumed = resumed.as_deref();
    let when = match resumed {
        Some(_) => lists::When::Resumed,
        None => lists::When::Start,
    };
    let mut notices = Vec::new();
    let refreshed =
        lists::read_for_executor(&config.lists, &declared, &mut state, when, &mut |n| {
            notices.push(n)
        })
        .map_err(Error::Runtime)?;
    if tell {
        let mut report = say.report();
        for notice in notices {
            report.notice(notice);
        }
    }
    let not_applied = refreshed.not_applied;
    for (file, made) in refreshed.made {
        let edits = crate::ListEdit::of(&file.list, made);
        plan.edit_lists(&file.origin(), edits).map_err(|e| {
            Error::Runtime(cepheid_runtime::Error::List {
                list: file.list.clone(),
                path: file.path.clone(),
                why: e.to_string(),
            })
        })?;
    }
    Ok(ListsRead {
        at_start: state.clone(),
        digest: lists::digest(&state),
        watched: watching(config, state, declared),
        not_applied,
    })
}

/// The files of `config` watched (`Config::watch`), which gave `now`.
fn watching(
    config: &Config,
    now: Vec<FileEntries>,
    declared: cepheid_core::lookup::Declarations,
) -> Option<Arc<Mutex<lists::Watched>>> {
    let watched = config.watch && !config.lists.is_empty();
    watched.then(|| {
        Arc::new(Mutex::new(lists::Watched::new(
            config.lists.clone(),
            now,
            declared,
        )))
    })
}

/// The lists the rules of a run declare at its open: the plan's, or,
/// resuming the rules a change put in force, those of the cut's engines
/// (which the plan does not have).
fn declared_at_open(
    plan: &Plan<Record>,
    resumed: Option<&(Marker, Vec<Piece>)>,
) -> cepheid_core::lookup::Declarations {
    match resumed {
        Some((_, pieces)) if plan.patterns().is_empty() => pieces
            .first()
            .and_then(|piece| piece.engines().first())
            .and_then(|saved| {
                cepheid_engine::Engine::<Record>::from_snapshot_rules(saved.snapshot()).ok()
            })
            .map(|engine| engine.declarations().clone())
            .unwrap_or_default(),
        _ => plan.declarations(),
    }
}

/// A cut that does not read as one (exit 5).
fn unfit(config: &Config, source: cepheid_engine::Error) -> Error {
    unusable(
        config.checkpoint.as_deref().unwrap_or(Path::new("")),
        Unusable::Cut(source),
    )
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
    let pending: Vec<crate::Change> = (CutRules::of(first)?)
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
        if let Some(file) = crate::FileChange::made_by(change).and_then(|made| made.file) {
            lists::keep(&mut after, file);
        }
    }
    Ok((state, Some((after, last))))
}

/// What [`checkpoints`] gives: the cuts of the run, the pieces of the
/// checkpoint it resumes from (one per old worker), where this process's
/// sources go on from it on another number of workers, and with which
/// rules it goes on (changed while it ran, the pattern files edited
/// since: the runtime says it).
pub(super) type Checkpoints = (
    Checkpoint,
    Option<(Marker, Vec<Piece>)>,
    Vec<Option<Share>>,
    (bool, bool),
);

/// Makes of the checkpoint `stored` a run on `layout` (processes, workers
/// per process) resumes from (the runtime read it from the folder `dir`
/// and chose it, with a sink: [`Runtime::on_cluster`](cepheid_runtime::Runtime::on_cluster))
/// the cut it goes on from, checked whole and against this command and
/// plan (one engine's read as the cut of one worker), and the cuts to
/// come. Exit 5 when it cannot be used. (The runtime deletes the cuts
/// left half-written once the run is open.)
///
/// With `sources` (the library's user's, [`Workers::with_sources`]) and
/// another number of workers than the cut's, also where each of them goes
/// on ([`Share`], by its worker's index in this process): a cut of sources
/// without [`Source::split_names`] is refused then.
///
/// With a sink (`to_sink`, [`Workers::with_sink`]), `stored` is the one it
/// says it committed last.
#[allow(clippy::too_many_arguments)]
pub(super) fn checkpoints(
    config: &Config,
    scale: &Scale,
    sources: Option<&[OwnSource]>,
    to_sink: bool,
    stored: Option<Stored>,
    dir: &Path,
    plan: &mut Plan<Record>,
    layout: (usize, usize),
    say: &Say,
) -> Result<Checkpoints, Error> {
    let command = cepheid_runtime::checkpoint::command(config);
    let mut read = cut::Read::default();
    let mut shares = Vec::new();
    // One engine's checkpoint is read as the cut of one worker.
    let single = stored.as_ref().is_some_and(Stored::is_one_engine);
    let mut resume = match stored {
        Some(stored) if single => {
            let resumed = single::resume(stored, config, scale.chunk_bytes, plan);
            Some(resumed.map_err(|why| unusable(dir, why))?)
        }
        stored => stored.map(Stored::into_parts),
    };
    // The rules in force at the cut: after a change, the cut's go on.
    let (rules, reload_files) = match &mut resume {
        Some((_, pieces)) => resumed_rules(pieces, config, plan)
            .map_err(|source| unusable(dir, Unusable::Cut(source)))?,
        None => (false, false),
    };
    // A file read in parts, or sources (readers apart): the files edited
    // since the cut are read now, and go in force at the cut's epoch on
    // every worker (a change the cut holds as pending), where the engines
    // are; live input's one reader reads them before any line instead.
    let apart = !live(config);
    let reload_files = match &mut resume {
        Some((_, pieces)) if reload_files && apart => {
            reload_at_the_cut(pieces, config, say)
                .map_err(|source| unusable(dir, Unusable::Cut(source)))?;
            false
        }
        _ => reload_files,
    };
    if let Some((marker, pieces)) = &resume {
        // (checked against this command and these workers' layout by the
        // runtime: `Runtime::on_cluster`)
        let (then, now) = (marker.pieces(), layout.0 * layout.1);
        // Every worker's state is checked before any output is touched.
        let places = crate::cut::checked(plan, pieces).map_err(|why| unusable(dir, why))?;
        match pieces.first() {
            // (a followed file's places are its own: `input::Position`)
            Some(first) if !config.follow => {
                let before = cut::Read::of(first).map_err(|e| {
                    unusable(
                        dir,
                        Unusable::Worker {
                            index: 0,
                            source: cepheid_engine::Error::new(
                                ErrorKind::Snapshot,
                                format!("its lines read do not decode: {e}"),
                            ),
                        },
                    )
                })?;
                read = before.after(&places);
            }
            _ => {}
        }
        if let (Some(sources), true) = (sources, then != now) {
            shares = items::dealt(pieces, sources, places.iter().max().copied())
                .map_err(|why| unusable(dir, why))?;
        }
        // (the runtime says the resume, then truncates each output to its
        // length then, once the workers' states are all checked)
    }
    let Every { time, lines } = config.checkpoint_every;
    let every = match (time, lines) {
        (Some(time), _) => time,
        (None, Some(_)) => Duration::MAX,
        (None, None) => Duration::from_secs(10),
    };
    let checkpoint = Checkpoint {
        dir: dir.to_path_buf(),
        every,
        every_lines: lines,
        lines: Arc::default(),
        cuts: Cuts::new(),
        layout,
        chunk_bytes: scale.chunk_bytes,
        output_per_worker: scale.output_per_worker,
        command,
        read: Arc::new(read),
        to_sink,
        number: AtomicU64::new(resume.as_ref().map_or(0, |(m, _)| m.number())),
        reload_files,
        lists: Vec::new(),
    };
    Ok((checkpoint, resume, shares, (rules, reload_files)))
}

/// Makes `plan` the one a run resuming `pieces` goes on with: after a
/// change of rules a plan of the cut's field table (every field the
/// processes had numbered; its workers' engines are restored with the
/// rules their snapshots hold), and one whose rules can change when they
/// could at the cut. Returns whether a change altered the rules (said),
/// and whether the pattern files are to be read at once: with
/// `Config::watch`, files edited after the cut (a reload made, then
/// killed before the next cut) are not another command, as on one engine
/// (issue 26): the cut's rules go on (the pieces say so) and the files
/// are read again.
fn resumed_rules(
    pieces: &mut [Piece],
    config: &Config,
    plan: &mut Plan<Record>,
) -> Result<(bool, bool), cepheid_engine::Error> {
    let Some(first) = pieces.first().map(CutRules::of).transpose()?.flatten() else {
        return Ok((false, false));
    };
    if first.changing {
        *plan = single::changing(std::mem::take(plan), config);
    }
    let unfit = || {
        let cut = crate::WorkerCut::new(crate::Cuts::new(), |_, _| {});
        cut.restore(plan, &pieces[0]).is_err()
    };
    let edited = config.watch && !first.changed_plan() && unfit();
    let mut all = Vec::with_capacity(pieces.len());
    for piece in pieces.iter_mut() {
        let Some(mut rules) = CutRules::of(piece)? else {
            continue;
        };
        if edited {
            let names = rules.groups.iter().flat_map(|(_, names)| names);
            rules.in_force = Some(names.cloned().collect());
            rules.put(piece)?;
        }
        all.push(rules);
    }
    if all.iter().any(CutRules::changed_plan) {
        let fields = all.iter().map(|r| &r.fields).max_by_key(|f| f.len());
        *plan = plan.resumed(fields.map_or(&[][..], |f| &f[..]));
    }
    Ok((first.changed, edited))
}

/// The pattern files edited since the cut of `pieces`, read as a reload
/// reads them (said, and counted when refused), go in force at the cut's
/// epoch on every worker: a change each piece holds as pending, applied
/// before anything after the cut is released.
fn reload_at_the_cut(
    pieces: &mut [Piece],
    config: &Config,
    say: &Say,
) -> Result<(), cepheid_engine::Error> {
    let why = cepheid_runtime::source::Reload::Asked(
        "the pattern files changed since the checkpoint".to_string(),
    );
    let (place, read) = why.read(config, &mut |n| say.report().notice(n));
    let origin = Origin::files(&config.patterns, None);
    let refuses = |p: &crate::pattern::Pattern| not_on_workers(p).map(|r| r.to_string());
    let at_zero = (0, origin);
    let read = cepheid_runtime::executor::for_executor((place, read), at_zero, &refuses, {
        &mut **say.report()
    });
    let Some(change) = read else {
        return Ok(());
    };
    {
        // Refused (said): counted as a reader's refusal, once (and made
        // pending all the same: its audit record, at the cut's epoch).
        let refused = u64::from(change.refused().is_some());
        if let Some(piece) = pieces.first_mut().filter(|_| refused > 0) {
            if let Some(mut rules) = CutRules::of(piece)? {
                rules.read[0] += refused;
                rules.put(piece)?;
            }
        }
    }
    for piece in pieces.iter_mut() {
        let Some(mut rules) = CutRules::of(piece)? else {
            continue;
        };
        let mut change = change.clone();
        change.at = crate::cut::WorkerState::of(piece)?.epoch;
        let before = (rules.pending).partition_point(|c| c.order() <= change.order());
        rules.pending.insert(before, change);
        rules.put(piece)?;
    }
    Ok(())
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
        config.watch = true;
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
        let place = "list `blocked`: b.jsonl changed: 1 added, 1 removed".to_string();
        let mut pending = crate::FileChange {
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
        }
        .change(7, place);
        pending.at = 24;
        let mut piece = Piece::default();
        let rules_cut = CutRules {
            pending: vec![pending.clone()],
            ..Default::default()
        };
        rules_cut.put(&mut piece).unwrap();
        let mut resumed = (marker, vec![piece]);
        let notices = Say::new(Box::new(cepheid_runtime::Notices::default()));
        let read = read_lists(&config, &mut plan, Some(&mut resumed), true, &notices).unwrap();
        assert_eq!(read.at_start, vec![entries(&file, &["a"])]);
        let watched = read.watched.expect("watched");
        assert_eq!(lock(&watched).state(), &[entries(&file, &["a", "b"])]);
        // Nothing at the start: the pending change, then what the file
        // changed since it, at its time.
        assert!(plan.lists.is_empty());
        let after = CutRules::of(&resumed.1[0]).unwrap().unwrap().pending;
        assert_eq!(after.len(), 2);
        assert_eq!(after[0], pending);
        assert_eq!((after[1].at, after[1].source, after[1].offset), (24, 0, 7));
        let made = crate::FileChange::made_by(&after[1]).unwrap();
        assert_eq!(made.file, Some(entries(&file, &["a", "b"])));
        assert_eq!(
            made.edits,
            vec![crate::ListEdit::Add {
                list: "blocked".into(),
                value: "a".into(),
                until: Some(Timestamp::MAX),
            }]
        );
        assert!(after[1]
            .place
            .contains("changed while the run was stopped: 1 added, 0 removed"));
    }
}
