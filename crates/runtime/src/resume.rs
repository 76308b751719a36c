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

use cepheid_engine::{Engine, ErrorKind, Record};

use crate::checkpoint::{store, Command, Counters, Stored};
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
    // A cut of workers: the command makes it one engine's first.
    let Some((mut meta, snapshot)) = Meta::of(newest) else {
        return Err(Error::TakenOnWorkers {
            folder: dir.to_path_buf(),
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
    // After a change of rules the snapshot's rules go on (an engine with
    // the command's configuration and no patterns of its own).
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
    if let Err(e) = restored {
        if e.kind() == ErrorKind::Io {
            return Err(Error::Io {
                doing: Doing::ReadCheckpoint,
                path: shown.to_string(),
                source: std::io::Error::other(e.message().to_string()),
            });
        }
        return Err(unusable(Unusable::DoesNotFit(e)));
    }
    // (an output rotated since is the sink's to see: `Files::recover`)
    let events = config.input.path();
    if let Some(tail) = meta.input.tail {
        let file = File::open(events).map_err(|e| Error::Io {
            doing: Doing::Open,
            path: events.display().to_string(),
            source: e,
        })?;
        if Tail::of(&file, meta.input.offset) != Some(tail) {
            let why = Unusable::NotTheFile {
                path: events.to_path_buf(),
                offset: meta.input.offset,
            };
            if !config.follow {
                return Err(unusable(why));
            }
            report.notice(rotated_since(Some(&shown.to_string()), &why));
            meta.input = FilePosition::default();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Marker, Piece};
    use crate::Input;

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
