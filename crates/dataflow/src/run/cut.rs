//! The cuts of a run on workers: the checkpoint they go to
//! ([`Checkpoint`]), the cut a run resumes made of the one the runtime
//! chose ([`checkpoints`]: the runtime decides with which rules and lists
//! it goes on, asking the run's plan, [`RunPlan`]), and the lines of the
//! input file read at a cut, over every worker ([`Read`]): kept in each
//! worker's piece of a checkpoint ([`Part::Read`]), so that a resumed run
//! on any number of workers reads every line once.

use super::*;
use cepheid_runtime::checkpoint::{self, reload_at_the_cut, resumed_rules, CutPlan, RulesResumed};
pub(super) use cepheid_runtime::checkpoint::{keys, put_keys, Keys, Read};
use cepheid_runtime::checkpoint::{Marker, Piece, Stored};
use cepheid_runtime::lists::{Changed, Edit, FileEntries, ListFile};
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
    pub(super) read: Arc<Read>,
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
    pub(super) lists: Vec<FileEntries>,
    /// The field warnings (`Config::field_warnings`), kept in each cut's
    /// counters as one engine keeps them: what was seen and said when
    /// the cut completed (a resumed run goes on from it, `Fields::resuming`).
    pub(super) fields: Option<Arc<Fields>>,
}

impl Checkpoint {
    /// The marker of cut `number` of this run (its outputs not set).
    pub(super) fn marker(&self, number: u64) -> Marker {
        Marker::new(number)
            .on_workers(self.layout, self.chunk_bytes, self.output_per_worker)
            .command(self.command.clone())
            .counters({
                let counters = checkpoint::Counters::default().with_lists(self.lists.clone());
                match &self.fields {
                    Some(fields) => counters.with_fields(fields),
                    None => counters,
                }
            })
    }
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
    let mut read = Read::default();
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
    let RulesResumed {
        changed: rules,
        edited: reload_files,
    } = match &mut resume {
        Some((_, pieces)) => resumed_rules(pieces, config.watch, &mut RunPlan { plan, config })
            .map_err(|source| unusable(dir, Unusable::Cut(source)))?,
        None => RulesResumed::default(),
    };
    // A file read in parts, or sources (readers apart): the files edited
    // since the cut are read now, and go in force at the cut's epoch on
    // every worker (a change the cut holds as pending), where the engines
    // are; live input's one reader reads them before any line instead.
    let apart = !live(config);
    let reload_files = match &mut resume {
        Some((_, pieces)) if reload_files && apart => {
            let plan = RunPlan { plan, config };
            reload_at_the_cut(pieces, config, &plan, &mut **say.report())
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
                let before = Read::of(first).map_err(|e| {
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
        fields: None,
    };
    Ok((checkpoint, resume, shares, (rules, reload_files)))
}

/// The plan of a run on workers as the runtime asks about it while it
/// decides what a resumed cut goes on with ([`CutPlan`]).
pub(super) struct RunPlan<'a> {
    pub(super) plan: &'a mut Plan<Record>,
    pub(super) config: &'a Config,
}

impl CutPlan for RunPlan<'_> {
    fn make_changing(&mut self) {
        *self.plan = single::changing(std::mem::take(self.plan), self.config);
    }

    fn fits(&self, piece: &Piece) -> bool {
        let cut = crate::WorkerCut::new(crate::Cuts::new(), |_, _| {});
        cut.restore(self.plan, piece).is_ok()
    }

    fn resume_fields(&mut self, fields: &[cepheid_engine::FieldPath]) {
        *self.plan = self.plan.resumed(fields);
    }

    fn refuses(&self, pattern: &crate::pattern::Pattern) -> Option<String> {
        not_on_workers(pattern).map(|r| r.to_string())
    }

    fn has_patterns(&self) -> bool {
        !self.plan.patterns().is_empty()
    }

    fn declarations(&self) -> cepheid_core::lookup::Declarations {
        self.plan.declarations()
    }

    fn edit_lists(&mut self, file: &ListFile, edits: Vec<Edit>) -> Result<(), String> {
        let edits = crate::ListEdit::of(&file.list, edits);
        (self.plan.edit_lists(&file.origin(), edits)).map_err(|e| e.to_string())
    }

    fn list_change(&self, changed: Changed, offset: u64, place: String) -> crate::Change {
        crate::FileChange::of(changed).change(offset, place)
    }

    fn list_file(&self, change: &crate::Change) -> Option<FileEntries> {
        crate::FileChange::made_by(change).and_then(|made| made.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_runtime::checkpoint::{Counters, CutRules};
    use cepheid_runtime::lists;

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
        let read = {
            let mut plan = RunPlan {
                plan: &mut plan,
                config: &config,
            };
            let mut say = |n| notices.report().notice(n);
            lists::read_lists(&config, &mut plan, Some(&mut resumed), true, &mut say).unwrap()
        };
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
