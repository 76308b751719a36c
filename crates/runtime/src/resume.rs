//! Resuming a run (`Config::checkpoint`, `cepheid run --checkpoint DIR`) from the checkpoint in `DIR`:
//! everything is checked, and the engine restored, before any file is
//! touched, so a checkpoint that cannot be used costs nothing (exit 5, the
//! folder and the outputs left as they were).
//!
//! Checked: the file is a whole checkpoint of this format version (its
//! checksum); it was taken by this command (input, format, time, outputs;
//! `Engine::restore` checks the patterns, `--max-delay`, `--max-waiting`,
//! `--max-runs-per-key` and `--max-live-runs`; after a change of rules
//! `Engine::restore_rules` takes the patterns from the snapshot); the events file holds, just before the recorded offset, the
//! bytes it held then. With `--follow` a file that does not (rotated since
//! the checkpoint) is read from its beginning, with a warning; without,
//! it is an error.

use std::fs::{self, File};
use std::path::Path;

use cepheid_core::lookup::Declarations;
use cepheid_core::pattern::Pattern;
use cepheid_engine::{Engine, ErrorKind, FieldPath, Record};

use crate::checkpoint::{store, Command, Counters, CutRules, Piece, Stored};
use crate::executor::Change;
use crate::lists::{Changed, Edit, FileEntries, ListFile};
use crate::source::{FilePosition, Position, Tail};
use crate::{Cluster, Config, Doing, Error, Level, Notice, Report, Sink, SinkState, Sources};
use crate::{Unusable, WorkerLayout};

/// What a run on one engine goes on with from a checkpoint: its number,
/// the input's place, the sink's state, the run's counters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub(crate) number: u64,
    /// The file's place (after the lines given to the engine).
    pub(crate) input: FilePosition,
    /// A source's own position (`None`: the file reader's, `input`).
    pub(crate) source: Option<Position>,
    /// Each split's watermark (`Config::split_watermarks`).
    pub(crate) split_watermarks: Option<Vec<Option<i64>>>,
    /// The ranges of the file left to read (none: the file from `input`).
    pub(crate) ranges: Vec<crate::source::Range>,
    /// What the sink said at its prepare.
    pub(crate) sink: SinkState,
    pub(crate) counters: Counters,
    /// The latest records made before it, for an observer.
    pub(crate) records: Vec<(crate::Kind, String)>,
    /// The latest audit records of changes of rules before it.
    pub(crate) history: crate::audit::History,
    /// Not in the checkpoint: set on resuming with `--watch` when the
    /// pattern files on disk are no longer the checkpoint's rules (edited
    /// after it): the run goes on with the checkpoint's rules and reads
    /// the files at once, as a reload.
    pub(crate) reload_files: bool,
}

impl Meta {
    /// One engine's checkpoint's meta and the engine's snapshot; `None`
    /// when `stored` is not one engine's (a cut of workers).
    fn of(stored: &Stored) -> Option<(Meta, &[u8])> {
        let [piece] = stored.pieces() else {
            return None;
        };
        let [engine] = piece.engines() else {
            return None;
        };
        engine.patterns().is_none().then_some(())?;
        let position = piece.position().cloned().unwrap_or_default();
        let marker = stored.marker();
        let meta = Meta {
            number: marker.number(),
            input: position.input,
            source: position.source,
            split_watermarks: position.split_watermarks,
            ranges: position.ranges,
            sink: marker.sink_state(),
            counters: marker.the_counters().clone(),
            records: marker.latest_records().to_vec(),
            history: marker.the_history().clone(),
            reload_files: false,
        };
        Some((meta, engine.snapshot()))
    }
}

/// A checkpoint resumed from, and the one before it when it is still
/// kept (its metadata and its engine's snapshot, its command checked),
/// for a sink that committed only that one.
pub(crate) struct Resumed {
    /// The newest checkpoint, the engine restored from it.
    pub(crate) meta: Meta,
    /// The previous one, if kept.
    pub(crate) prev: Option<(Meta, Vec<u8>, std::path::PathBuf)>,
}

/// Where a resumed run goes on, for its message: a line of a file, or a
/// source's own position (a Kafka source's offsets: no line to give).
pub(crate) fn resumed_at(meta: &Meta, events: &Path) -> String {
    match &meta.source {
        Some(_) => format!("where it left {}", events.display()),
        None => format!("at line {} of {}", meta.input.lines + 1, events.display()),
    }
}

/// The newest checkpoint in `dir` for `command`, with `engine` restored
/// from it; `None` when there is none yet (the folder is created). What it
/// does is said to `report`.
pub(crate) fn load(
    config: &Config,
    dir: &Path,
    command: &Command,
    engine: &mut Engine<Record>,
    report: &mut dyn Report,
) -> Result<Option<Resumed>, Error> {
    if let Err(e) = fs::create_dir_all(dir) {
        return Err(Error::Io {
            doing: Doing::CreateFolder,
            path: dir.display().to_string(),
            source: e,
        });
    }
    let kept = store::kept(dir)?;
    // (what a run killed while it wrote or pruned checkpoints left)
    let clear = || {
        store::clear_parts(dir).map_err(|source| Error::Io {
            doing: Doing::WriteCheckpoint,
            path: dir.display().to_string(),
            source,
        })
    };
    let Some(newest) = kept.first() else {
        clear()?;
        return Ok(None);
    };
    // (a cut of workers was made one engine's first: `one_engine.rs`)
    let Some((mut meta, snapshot)) = Meta::of(newest) else {
        return Err(Error::Checkpoint {
            path: newest.path().to_path_buf(),
            folder: dir.to_path_buf(),
            why: Unusable::Malformed("it is not one engine's".into()),
        });
    };
    let path = newest.path().to_path_buf();
    let shown = path.display();
    let unusable = |why: Unusable| Error::Checkpoint {
        path: path.clone(),
        folder: dir.to_path_buf(),
        why,
    };
    let agrees = |stored: &Stored| match stored.marker().the_command() {
        Some(then) => then.difference(command),
        None => Some(Unusable::Malformed("it names no command".into())),
    };
    if let Some(difference) = agrees(newest) {
        return Err(unusable(difference));
    }
    if config.follow && !meta.ranges.is_empty() {
        // (the ranges a cut of workers left are read, not followed)
        return Err(unusable(Unusable::OtherCommand {
            flag: "--follow",
            was: "off (it has ranges of the file left to read, from a cut of workers)".into(),
            now: "on".into(),
        }));
    }
    restore(config, &mut meta, snapshot, engine, &shown.to_string()).map_err(|e| match e {
        Restore::Io(e) => e,
        Restore::Unusable(why) => unusable(why),
    })?;
    // (an output rotated since is the sink's to see: `Files::recover`)
    let events = config.input.path();
    if !at_the_place(config, &mut meta, &shown.to_string(), report).map_err(|e| match e {
        Restore::Io(e) => e,
        Restore::Unusable(why) => unusable(why),
    })? {
        meta.input = FilePosition::default();
    }
    let from = format!("{shown} {}", resumed_at(&meta, events));
    let rules = (meta.counters.rules_changed, meta.reload_files);
    for notice in resuming(&from, rules) {
        report.notice(notice);
    }
    if let Some(older) = newest.older_format() {
        report.notice(Notice::line(Level::Info, format!(
            "cepheid: checkpoint {shown} is {older}: its next checkpoint is written in format version {}, and the older files go once that one is committed (docs/checkpoints.md, \"Upgrading\")",
            crate::checkpoint::VERSION
        )));
    }
    // The one before, for a sink that did not commit the newest.
    let prev = kept.get(1).and_then(|stored| {
        let (meta, snapshot) = Meta::of(stored)?;
        agrees(stored)
            .is_none()
            .then(|| (meta, snapshot.to_vec(), stored.path().to_path_buf()))
    });
    clear()?;
    Ok(Some(Resumed { meta, prev }))
}

/// Why a checkpoint's state could not be taken: it could not be read, or
/// it cannot be used.
enum Restore {
    Io(Error),
    Unusable(Unusable),
}

/// Restores `engine` from `snapshot`, of the checkpoint `shown` whose run
/// went on with `meta`: after a change of rules, the snapshot's rules (an
/// engine with the command's configuration and no patterns of its own);
/// with [`Config::watch`], the checkpoint's rules too when the pattern
/// files were edited after it (then `meta` says to read them at once).
fn restore(
    config: &Config,
    meta: &mut Meta,
    snapshot: &[u8],
    engine: &mut Engine<Record>,
    shown: &str,
) -> Result<(), Restore> {
    let restored = if meta.counters.rules_changed {
        let mut fresh = config.engine();
        fresh.restore_rules(snapshot).map(|()| *engine = fresh)
    } else {
        match engine.restore(snapshot) {
            // With --watch, pattern files edited after the checkpoint (a
            // reload the run made, then killed before its next checkpoint)
            // are not another command: it goes on with the checkpoint's
            // rules and reads the files at once, as --watch would have
            // (issue 26; it was refused for ever).
            Err(e) if config.watch && e.kind() != ErrorKind::Io => {
                let mut fresh = config.engine();
                match fresh.restore_rules(snapshot) {
                    Ok(()) => {
                        *engine = fresh;
                        meta.counters.rules_changed = true;
                        meta.reload_files = true;
                        Ok(())
                    }
                    Err(_) => Err(e),
                }
            }
            restored => restored,
        }
    };
    match restored {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Io => Err(Restore::Io(Error::Io {
            doing: Doing::ReadCheckpoint,
            path: shown.to_string(),
            source: std::io::Error::other(e.message().to_string()),
        })),
        Err(e) => Err(Restore::Unusable(Unusable::DoesNotFit(e))),
    }
}

/// Does the input file hold, just before the place `meta` goes on from,
/// the bytes it held at the checkpoint `shown`? Not, and followed
/// ([`Config::follow`]): rotated since, said, and `false` (it is read
/// from its beginning); not, and not followed: the checkpoint cannot be
/// used.
fn at_the_place(
    config: &Config,
    meta: &mut Meta,
    shown: &str,
    report: &mut dyn Report,
) -> Result<bool, Restore> {
    let Some(tail) = meta.input.tail else {
        return Ok(true);
    };
    let events = config.input.path();
    let file = File::open(events).map_err(|e| {
        Restore::Io(Error::Io {
            doing: Doing::Open,
            path: events.display().to_string(),
            source: e,
        })
    })?;
    if Tail::of(&file, meta.input.offset) == Some(tail) {
        return Ok(true);
    }
    let why = Unusable::NotTheFile {
        path: events.to_path_buf(),
        offset: meta.input.offset,
    };
    if !config.follow {
        return Err(Restore::Unusable(why));
    }
    report.notice(rotated_since(Some(shown), &why));
    Ok(false)
}

/// The checkpoint at `path` a run starts from ([`Config::start_from`]):
/// a checkpoint folder's newest, or one checkpoint's own folder
/// (`DIR/cut-N`), read whole and only read (nothing in the folder is
/// written, renamed or deleted), with `engine` restored from it.
/// Checked: it is one engine's; it was taken with `command`'s format and
/// time (not its input's name nor its outputs: the run writes its own);
/// it was taken on a source when the run reads one (`reads_source`) and
/// on a file when it reads a file, and then the file holds the bytes it
/// held before the checkpoint's place.
pub(crate) fn start_from(
    config: &Config,
    path: &Path,
    command: &Command,
    reads_source: bool,
    engine: &mut Engine<Record>,
    report: &mut dyn Report,
) -> Result<Meta, Error> {
    let fail = |why: Unusable| Error::StartFrom {
        path: path.to_path_buf(),
        why,
    };
    let cut = (path.file_name().and_then(|n| n.to_str()))
        .and_then(|n| n.strip_prefix("cut-")?.parse::<u64>().ok())
        .filter(|_| path.join("marker").is_file());
    let (dir, number) = match (cut, path.parent()) {
        (Some(number), Some(parent)) => (parent.to_path_buf(), number),
        _ => {
            let numbers = store::complete(path).map_err(|source| Error::Io {
                doing: Doing::ReadCheckpoint,
                path: path.display().to_string(),
                source,
            })?;
            match numbers.first() {
                Some(&number) => (path.to_path_buf(), number),
                None => return Err(fail(Unusable::Empty)),
            }
        }
    };
    let stored = store::read(&dir, number).map_err(|e| match e {
        Error::Checkpoint { path, why, .. } => Error::StartFrom { path, why },
        e => e,
    })?;
    let shown = stored.path().display().to_string();
    let fail = |why: Unusable| Error::StartFrom {
        path: stored.path().to_path_buf(),
        why,
    };
    let Some((mut meta, snapshot)) = Meta::of(&stored) else {
        return Err(fail(Unusable::ToOneEngine(
            "a run starts from one engine's checkpoint only".to_string(),
        )));
    };
    let Some(then) = stored.marker().the_command() else {
        return Err(fail(Unusable::Malformed("it names no command".into())));
    };
    // (its input may be named otherwise, its outputs are this run's)
    let mut now = command.clone().with_outputs_of(then);
    now.events.clone_from(&then.events);
    if let Some(difference) = then.difference(&now) {
        return Err(fail(difference));
    }
    if meta.source.is_some() != reads_source {
        let kind = |source: bool| match source {
            true => "a source of its own".to_string(),
            false => "a file".to_string(),
        };
        return Err(fail(Unusable::OtherCommand {
            flag: "`Config::input`",
            was: format!("{} ({})", then.events, kind(meta.source.is_some())),
            now: format!("{} ({})", command.events, kind(reads_source)),
        }));
    }
    let taken = |e: Restore| match e {
        Restore::Io(e) => e,
        Restore::Unusable(why) => fail(why),
    };
    restore(config, &mut meta, snapshot, engine, &shown).map_err(taken)?;
    if !at_the_place(config, &mut meta, &shown, report).map_err(taken)? {
        meta.input = FilePosition::default();
    }
    report.notice(Notice::line(
        Level::Info,
        format!(
            "cepheid: starting from checkpoint {shown} {}: its state, and the outputs this run's own",
            // (a source named as the run names it)
            resumed_at(&meta, Path::new(&command.events))
        ),
    ));
    if meta.counters.rules_changed && !meta.reload_files {
        report.notice(Notice::line(Level::Info,
            "cepheid: the rules changed before that checkpoint: the run goes on with its rules, not those of the command line"
        ));
    }
    // (nothing of the run before it is this run's to go on with but its
    // state: its checkpoints are numbered from the start)
    meta.number = 0;
    Ok(meta)
}

/// The checkpoint in `dir` a run on `cluster` resumes from (the folder is
/// created): the newest kept, or with a `sink`, the one the sink says it
/// committed last ([`Sink::recover`](crate::Sink::recover), told each
/// kept one's number, its sources' positions put together
/// ([`Cluster::positions`], [`Sink::join_positions`](crate::Sink::join_positions))
/// and the sink's state; `None` when it committed none: the run starts
/// from its sources' beginning). Those after the one chosen are deleted:
/// never committed, they are not to be resumed from again. Another
/// process than the one that writes (process 0) asks the sink which one
/// it committed without taking it over
/// ([`Sink::committed`](crate::Sink::committed)) and leaves the folder to
/// it. With a sink and none kept, the sink is asked too
/// ([`first_start`](crate::sink::first_start)). The cluster checks the
/// cut against its workers and restores it ([`Cluster::open`]).
pub(crate) fn for_cluster(
    dir: &Path,
    sink: Option<&mut (dyn Sink + 'static)>,
    cluster: &dyn Cluster,
) -> Result<Option<Stored>, Error> {
    if let Err(source) = fs::create_dir_all(dir) {
        return Err(Error::Io {
            doing: Doing::CreateFolder,
            path: dir.display().to_string(),
            source,
        });
    }
    // (another run on this folder, this process's part of it, was
    // refused: the caller holds the folder's lock, `lock_checkpoint`)
    let Some(sink) = sink else {
        return Ok(store::kept(dir)?.into_iter().next());
    };
    let writes = cluster.process() == 0;
    let mut stored = store::kept(dir)?;
    let Some(newest) = stored.first() else {
        // (none kept: a first start, which the sink is asked about too)
        if writes {
            crate::sink::first_start(sink).map_err(Error::Sink)?;
        }
        return Ok(None);
    };
    let unusable = |why: Unusable| Error::Resume {
        folder: dir.to_path_buf(),
        why,
    };
    if newest.is_one_engine() {
        return Err(unusable(Unusable::OneEngine(
            "its output is a sink's (Kafka), which recovers on workers from cuts of workers: resume it without `Scale::workers`".to_string(),
        )));
    }
    let mut kept = Vec::with_capacity(stored.len());
    for one in &stored {
        let shares = cluster.positions(one.pieces()).map_err(unusable)?;
        let source = sink.join_positions(&shares).map_err(Error::Sink)?;
        kept.push(crate::sink::Checkpoint {
            number: one.marker().number(),
            source,
            sink: one.marker().sink_state(),
        });
    }
    let index = match writes {
        true => sink.recover(&kept),
        false => sink.committed(&kept),
    };
    let index = index.map_err(Error::Sink)?;
    if writes {
        let keep = kept.get(index).map(|k| k.number);
        store::discard_after(dir, keep).map_err(|source| Error::Io {
            doing: Doing::ClearCheckpoints,
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok((index < stored.len()).then(|| stored.swap_remove(index)))
}

/// Why the checkpoint `stored` cannot go on with this command (`config`)
/// on the workers of `layout`, if it cannot (`process`: this process's
/// number; `sources`: the library's user's, one per worker of this
/// process): taken with another chunk size, with outputs per worker or
/// without, on another number of workers where its places cannot be
/// dealt again (outputs per worker, sources that do not name their
/// splits, a followed file), by another command. One engine's checkpoint
/// is a cut of one worker in the run's chunks (the cluster refuses what of
/// it workers cannot go on with: a followed file, a source's, first). Checked
/// before the cluster restores it ([`Cluster::open`]).
pub(crate) fn on_workers(
    stored: &Stored,
    config: &Config,
    layout: WorkerLayout,
    process: usize,
    sources: Option<&Sources>,
) -> Option<Unusable> {
    let marker = stored.marker();
    let one_engine = stored.is_one_engine();
    let (then, now) = match one_engine {
        true => (1, layout.processes * layout.workers),
        false => (marker.pieces(), layout.processes * layout.workers),
    };
    let output_per_worker = marker.output_per_worker() && !one_engine;
    // (the sources of this run: each goes on from its own place unless
    // every one names its splits)
    let rescalable =
        || (sources.into_iter().flatten().flatten()).all(|source| source.split_names().is_some());
    if !one_engine && marker.chunk_bytes() != layout.chunk_bytes {
        return Some(Unusable::ChunkBytes);
    }
    if output_per_worker != layout.output_per_worker {
        return Some(Unusable::OutputPerWorker {
            then: output_per_worker,
        });
    }
    if !one_engine && layout.output_per_worker && then != now {
        // Each worker's own file: another count would leave old files
        // beside the new ones.
        return Some(Unusable::Workers {
            then,
            now,
            follow: false,
        });
    }
    if then != now && sources.is_some() && !rescalable() {
        // Each worker's source goes on from its own place: its splits
        // cannot be dealt again without their names.
        return Some(Unusable::SourcesWorkers { then, now });
    }
    if !one_engine && config.follow && then != now {
        // One reader on worker 0: its place and clock would go on whole,
        // which the workers do not do on another number (they retire
        // every source).
        return Some(Unusable::Workers {
            then,
            now,
            follow: true,
        });
    }
    let mut command = crate::checkpoint::command(config)?;
    let then = marker.the_command()?;
    if process > 0 {
        // The other processes write no output: theirs are not compared.
        command = command.with_outputs_of(then);
    }
    (then.difference(&command)).map(|d| Unusable::AnotherCommand(d.to_string()))
}

/// Deletes the cuts a run killed while it wrote one left in `dir`
/// (never read), before the run writes one.
pub(crate) fn clear_unfinished(dir: &Path) -> Result<(), Error> {
    store::clear_parts(dir).map_err(|source| Error::Io {
        doing: Doing::ClearCheckpoints,
        path: dir.display().to_string(),
        source,
    })
}

/// How a checkpoint resumed on workers was taken, for what the run says
/// ([`on_workers_said`]).
pub(crate) struct Taken {
    /// On one engine.
    one_engine: bool,
    /// On workers: processes, and workers per process.
    layout: Option<(usize, usize)>,
    /// In an older format (which one).
    older: Option<&'static str>,
}

impl Taken {
    /// How `stored` was taken.
    pub(crate) fn of(stored: &Stored) -> Taken {
        Taken {
            one_engine: stored.is_one_engine(),
            layout: stored.marker().layout(),
            older: stored.older_format(),
        }
    }
}

/// What a run on workers says as it resumes a checkpoint (`taken` so)
/// from the folder `dir` on `layout` (processes, workers per process): the
/// folder and the layout, the layout it was taken on when another (one
/// engine's, or another number of workers), with which rules (`rules`,
/// [`RestoredCluster::resumed_rules`](crate::RestoredCluster::resumed_rules)),
/// and an older format.
pub(crate) fn on_workers_said(
    dir: &Path,
    taken: Taken,
    layout: (usize, usize),
    rules: (bool, bool),
) -> Vec<Notice> {
    let said = |(p, w): (usize, usize)| {
        let workers = crate::count(w as u64, "worker", "workers");
        if p == 1 {
            workers
        } else {
            format!("{p} processes x {workers}")
        }
    };
    let mut on = said(layout);
    if taken.one_engine {
        on = format!("{on}; it was taken on one engine, without `Scale::workers`");
    } else if let Some(then) = taken.layout.filter(|&then| then != layout) {
        on = format!("{on}; it was taken on {}", said(then));
    }
    let from = format!("in {} ({on})", dir.display());
    let mut notices = resuming(&from, rules);
    if let Some(older) = taken.older {
        notices.push(Notice::line(Level::Info, format!(
            "cepheid: the checkpoint in {} is {older}: its next checkpoint is written in format version {}, and the older files go once that one is complete (docs/checkpoints.md, \"Upgrading\")",
            dir.display(),
            crate::checkpoint::VERSION
        )));
    }
    notices
}

/// What a run says as it resumes, on either executor: from where (`from`:
/// the checkpoint and the input's place on one engine, the folder and the
/// layout on workers), and with which rules (`rules_changed`: the
/// checkpoint's, changed while it ran; `reload_files`: the checkpoint's,
/// the pattern files, edited since, read at once).
pub(crate) fn resuming(from: &str, (rules_changed, reload_files): (bool, bool)) -> Vec<Notice> {
    let mut said = vec![Notice::line(
        Level::Info,
        format!("cepheid: resuming from checkpoint {from}"),
    )];
    if reload_files {
        said.push(Notice::line(Level::Info,
            "cepheid: the pattern files are not the rules of the checkpoint (edited since): it goes on with the checkpoint's rules and reads the files at once (`Config::watch`)"
        ));
    } else if rules_changed {
        said.push(Notice::line(Level::Info,
            "cepheid: the rules changed while it ran: it goes on with the rules of the checkpoint, not those of the command line"
        ));
    }
    said
}

/// The warning of a resume whose followed input file is not the one the
/// checkpoint (`shown`, when it is named) was taken on (`why`,
/// [`Unusable::NotTheFile`]): rotated since, it is read from its beginning,
/// on either executor.
pub fn rotated_since(shown: Option<&str>, why: &Unusable) -> Notice {
    let checkpoint = shown.map_or_else(|| "checkpoint".to_string(), |s| format!("checkpoint {s}"));
    Notice::line(Level::Warning, format!(
        "warning: {checkpoint}: {why}: rotated since, so it is read from its beginning; lines of the old file after the checkpoint are not read"
    ))
}

/// What the runtime asks of an executor's plan while it decides what a
/// run resuming a cut of its workers goes on with, from the cut's rules
/// ([`CutRules`](crate::checkpoint::CutRules)) and lists: the executor
/// restores its pieces, lays out its groups and keeps changes of lists in
/// its own words; the runtime reads the cut, reads the files and decides
/// ([`resumed_rules`], [`reload_at_the_cut`], [`read_lists`](crate::lists::read_lists)).
pub trait CutPlan {
    /// Makes the plan one whose rules can change (they could at the cut).
    fn make_changing(&mut self);
    /// Does `piece` restore with the plan as it is (its engines fit its
    /// patterns)?
    fn fits(&self, piece: &Piece) -> bool;
    /// Makes the plan one of the cut's field table `fields` (every field
    /// its processes had numbered), after a change of rules.
    fn resume_fields(&mut self, fields: &[FieldPath]);
    /// Why the executor cannot run `pattern` in a change of rules, if it
    /// cannot.
    fn refuses(&self, pattern: &Pattern) -> Option<String>;
    /// Does the plan have patterns (none: it resumes the rules a change
    /// put in force, which the cut's engines hold)?
    fn has_patterns(&self) -> bool;
    /// The lists the plan's rules declare.
    fn declarations(&self) -> Declarations;
    /// Makes `edits` of `file`'s list in every engine of the plan, before
    /// any event; `Err`: why not.
    fn edit_lists(&mut self, file: &ListFile, edits: Vec<Edit>) -> Result<(), String>;
    /// The change of lists a watched file made (`changed`), at `offset`
    /// of the input, read at `place`, as the executor makes it
    /// ([`Change::of_lists`]).
    fn list_change(&self, changed: Changed, offset: u64, place: String) -> Change;
    /// The entries the file of a change of lists gives after it (none: not
    /// a watched file's change).
    fn list_file(&self, change: &Change) -> Option<FileEntries>;
}

/// With which rules a run resuming a cut of workers goes on
/// ([`resumed_rules`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RulesResumed {
    /// A change altered the rules while the cut's run ran (said: it goes
    /// on with the checkpoint's).
    pub changed: bool,
    /// With `Config::watch`, the pattern files were edited since the cut:
    /// its rules go on, and the files are read again.
    pub edited: bool,
}

/// Makes `plan` the one a run resuming `pieces` goes on with: after a
/// change of rules a plan of the cut's field table (every field the
/// processes had numbered; its workers' engines are restored with the
/// rules their snapshots hold), and one whose rules can change when they
/// could at the cut. Says whether a change altered the rules, and whether
/// the pattern files are to be read at once: with `watch`
/// (`Config::watch`), files edited after the cut (a reload made, then
/// killed before the next cut) are not another command, as on one engine
/// (issue 26): the cut's rules go on (the pieces say so) and the files
/// are read again.
pub fn resumed_rules(
    pieces: &mut [Piece],
    watch: bool,
    plan: &mut dyn CutPlan,
) -> Result<RulesResumed, cepheid_engine::Error> {
    let Some(first) = pieces.first().map(CutRules::of).transpose()?.flatten() else {
        return Ok(RulesResumed::default());
    };
    if first.changing {
        plan.make_changing();
    }
    let edited = watch && !first.changed_plan() && !plan.fits(&pieces[0]);
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
        plan.resume_fields(fields.map_or(&[][..], |f| &f[..]));
    }
    Ok(RulesResumed {
        changed: first.changed,
        edited,
    })
}

/// The pattern files edited since the cut of `pieces`, read as a reload
/// reads them (said to `report`, and counted when refused), go in force at
/// the cut's epoch on every worker: a change each piece holds as pending,
/// applied before anything after the cut is released.
pub fn reload_at_the_cut(
    pieces: &mut [Piece],
    config: &Config,
    plan: &dyn CutPlan,
    report: &mut dyn Report,
) -> Result<(), cepheid_engine::Error> {
    let why =
        crate::source::Reload::Asked("the pattern files changed since the checkpoint".to_string());
    let (place, read) = why.read(config, &mut |n| report.notice(n));
    let origin = crate::audit::Origin::files(&config.patterns, None);
    let refuses = |p: &Pattern| plan.refuses(p);
    let at_zero = (0, origin);
    let read = crate::reload::for_executor((place, read), at_zero, &refuses, report);
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
        change.at = crate::checkpoint::one_engine::epoch_of(piece)?;
        let before = (rules.pending).partition_point(|c| c.order() <= change.order());
        rules.pending.insert(before, change);
        rules.put(piece)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Marker, Piece};
    use crate::Input;

    /// A plan that fits no cut and says what was asked of it.
    #[derive(Default)]
    struct Asked {
        changing: bool,
        fields: Option<Vec<FieldPath>>,
    }

    impl CutPlan for Asked {
        fn make_changing(&mut self) {
            self.changing = true;
        }
        fn fits(&self, _: &Piece) -> bool {
            false
        }
        fn resume_fields(&mut self, fields: &[FieldPath]) {
            self.fields = Some(fields.to_vec());
        }
        fn refuses(&self, _: &Pattern) -> Option<String> {
            None
        }
        fn has_patterns(&self) -> bool {
            true
        }
        fn declarations(&self) -> Declarations {
            Declarations::default()
        }
        fn edit_lists(&mut self, _: &ListFile, _: Vec<Edit>) -> Result<(), String> {
            Ok(())
        }
        fn list_change(&self, changed: Changed, offset: u64, place: String) -> Change {
            Change::of_lists(offset, place, changed.list)
        }
        fn list_file(&self, _: &Change) -> Option<FileEntries> {
            None
        }
    }

    fn pieces(rules: &[CutRules]) -> Vec<Piece> {
        (rules.iter())
            .map(|rules| {
                let mut piece = Piece::new();
                rules.put(&mut piece).unwrap();
                piece
            })
            .collect()
    }

    /// A plan whose cut is at an epoch, which refuses every pattern or
    /// none.
    struct AtEpoch(cepheid_engine::Timestamp, bool);

    impl CutPlan for AtEpoch {
        fn make_changing(&mut self) {}
        fn fits(&self, _: &Piece) -> bool {
            true
        }
        fn resume_fields(&mut self, _: &[FieldPath]) {}
        fn refuses(&self, _: &Pattern) -> Option<String> {
            self.1.then(|| "not here".to_string())
        }
        fn has_patterns(&self) -> bool {
            true
        }
        fn declarations(&self) -> Declarations {
            Declarations::default()
        }
        fn edit_lists(&mut self, _: &ListFile, _: Vec<Edit>) -> Result<(), String> {
            Ok(())
        }
        fn list_change(&self, changed: Changed, offset: u64, place: String) -> Change {
            Change::of_lists(offset, place, changed.list)
        }
        fn list_file(&self, _: &Change) -> Option<FileEntries> {
            None
        }
    }

    /// The pattern files edited since a cut go in force at its epoch on
    /// every worker, among the changes pending there in their order; one
    /// refused is said, counted once (worker 0's readers) and pending all
    /// the same (its audit record).
    #[test]
    fn the_files_edited_since_a_cut_are_a_change_pending_at_its_epoch() {
        let dir = std::env::temp_dir().join(format!("cepheid-reload-cut-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.cep");
        fs::write(&file, "pattern p { match a where a: n == 1 }").unwrap();
        let config = Config::new(Input::File(dir.join("e.jsonl")), vec![file]);
        let mut later = Change::of_lists(3, "later".to_string(), "{}".to_string());
        later.at = 50;
        let rules = CutRules {
            pending: vec![later.clone()],
            ..CutRules::default()
        };
        for (plan, refused) in [(AtEpoch(40, false), 0), (AtEpoch(44, true), 1)] {
            let mut cut = pieces(&[rules.clone(), rules.clone()]);
            for piece in &mut cut {
                // (a worker's sources at the cut, none, and its stash, empty)
                let none: Vec<()> = Vec::new();
                let sources = postcard::to_allocvec(&(plan.0, &none, &none)).unwrap();
                piece.set(crate::checkpoint::Part::Sources, sources);
                piece.set(
                    crate::checkpoint::Part::Stash,
                    postcard::to_allocvec(&none).unwrap(),
                );
            }
            let mut said = crate::Notices::default();
            reload_at_the_cut(&mut cut, &config, &plan, &mut said).unwrap();
            for (index, piece) in cut.iter().enumerate() {
                let now = CutRules::of(piece).unwrap().unwrap();
                assert_eq!(now.pending.len(), 2);
                assert_eq!(now.pending[1], later);
                let change = &now.pending[0];
                assert_eq!(change.at, plan.0);
                assert_eq!(change.refused().is_some(), refused == 1);
                let counted = if index == 0 { refused } else { 0 };
                assert_eq!(now.read, [counted, 0]);
            }
            let refusal = said.0.iter().any(|n| {
                n.to_string()
                    .contains("the new rules are refused: not here")
            });
            assert_eq!(refusal, refused == 1);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The rules of a cut say with which a resumed run goes on: pattern
    /// files edited since (watched, the plan not fitting) put the cut's
    /// groups in force on every piece; after a change, the plan takes the
    /// longest field table of the pieces'; routed as one that changes when
    /// the cut's could.
    #[test]
    fn the_rules_of_a_cut_decide_those_a_resumed_run_goes_on_with() {
        let groups = vec![
            (None, vec!["a".to_string()]),
            (Some(Vec::new()), vec!["b".to_string(), "c".to_string()]),
        ];
        let at_start = CutRules {
            groups: groups.clone(),
            changing: true,
            ..CutRules::default()
        };
        let mut cut = pieces(&[at_start.clone(), at_start.clone()]);
        let mut plan = Asked::default();
        let resumed = resumed_rules(&mut cut, true, &mut plan).unwrap();
        assert_eq!(
            resumed,
            RulesResumed {
                changed: false,
                edited: true
            }
        );
        assert!(plan.changing);
        assert_eq!(plan.fields, Some(Vec::new()));
        for piece in &cut {
            let names = CutRules::of(piece).unwrap().unwrap().in_force;
            assert_eq!(names, Some(vec!["a".into(), "b".into(), "c".into()]));
        }
        // Not watched: the files are not read again, the plan's rules go
        // on (none changed).
        let mut cut = pieces(std::slice::from_ref(&at_start));
        let mut plan = Asked::default();
        let resumed = resumed_rules(&mut cut, false, &mut plan).unwrap();
        assert_eq!(resumed, RulesResumed::default());
        assert_eq!(plan.fields, None);
        assert_eq!(CutRules::of(&cut[0]).unwrap().unwrap().in_force, None);
        // Changed while it ran: the fields of the piece that had most.
        let field = FieldPath::parse("user");
        let changed = |fields: Vec<FieldPath>| CutRules {
            groups: groups.clone(),
            in_force: Some(vec!["a".into()]),
            changed: true,
            fields,
            ..CutRules::default()
        };
        let mut cut = pieces(&[changed(Vec::new()), changed(vec![field.clone()])]);
        let mut plan = Asked::default();
        let resumed = resumed_rules(&mut cut, true, &mut plan).unwrap();
        assert_eq!(
            resumed,
            RulesResumed {
                changed: true,
                edited: false
            }
        );
        assert!(!plan.changing);
        assert_eq!(plan.fields, Some(vec![field]));
        // A cut of before the rules were kept: nothing to decide.
        let mut cut = vec![Piece::new()];
        let resumed = resumed_rules(&mut cut, true, &mut Asked::default()).unwrap();
        assert_eq!(resumed, RulesResumed::default());
    }

    /// A cut of workers (`pieces` of them), as the folder keeps it.
    fn cut(marker: Marker, pieces: usize) -> Stored {
        Stored::new("ck/cut-1".into(), marker, vec![Piece::new(); pieces])
    }

    /// A cut of workers is checked against their layout and the command
    /// before the cluster restores it, in the words (and the order) the
    /// cluster checked it in.
    #[test]
    fn a_cut_of_workers_is_checked_against_their_layout_then_the_command() {
        let dir = std::env::temp_dir().join(format!("cepheid-on-workers-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.jsonl");
        fs::write(&events, "").unwrap();
        let mut config = Config::new(Input::file(&events), Vec::new());
        config.checkpoint = Some(dir.join("ck"));
        let command = crate::checkpoint::command(&config);
        assert!(command.is_some());
        let mib = 1 << 20;
        let layout = WorkerLayout {
            processes: 1,
            workers: 2,
            chunk_bytes: mib,
            output_per_worker: false,
        };
        let taken = |workers, chunk_bytes, own| {
            Marker::new(1)
                .on_workers((1, workers), chunk_bytes, own)
                .command(command.clone())
        };
        let check = |stored: &Stored, config: &Config, layout| {
            on_workers(stored, config, layout, 0, None).map(|why| why.to_string())
        };
        assert_eq!(check(&cut(taken(2, mib, false), 2), &config, layout), None);
        // (on another number of workers: rescaled)
        assert_eq!(check(&cut(taken(3, mib, false), 3), &config, layout), None);
        assert_eq!(
            check(&cut(taken(2, 4096, false), 2), &config, layout).as_deref(),
            Some("it was taken with another `Scale::chunk_bytes`")
        );
        let own = WorkerLayout {
            output_per_worker: true,
            ..layout
        };
        assert_eq!(
            check(&cut(taken(2, mib, false), 2), &config, own).as_deref(),
            Some("it was taken without `Scale::output_per_worker`, this run is with")
        );
        assert_eq!(
            check(&cut(taken(3, mib, true), 3), &config, own).as_deref(),
            Some("it was taken on 3 workers in all, not 2 (a checkpoint with `Scale::output_per_worker` resumes on the same number of workers)")
        );
        let mut follow = config.clone();
        follow.follow = true;
        assert_eq!(
            check(&cut(taken(3, mib, false), 3), &follow, layout).as_deref(),
            Some("it was taken on 3 workers in all, not 2 (a checkpoint of a followed file resumes on the same number of workers)")
        );
        let mut other = config.clone();
        other.format = cepheid_decode::Format::Csv;
        let why = check(&cut(taken(2, mib, false), 2), &other, layout).unwrap_or_default();
        assert!(why.starts_with("it belongs to another command ("), "{why}");
        let _ = fs::remove_dir_all(&dir);
    }
}
