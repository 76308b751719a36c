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

use crate::checkpoint::{self, Command, Meta};
use crate::source::{FilePosition, Tail};
use crate::{Config, Doing, Error, Level, Notice, Report, Unusable};

/// A checkpoint resumed from, and the one before it when it is still
/// kept (its metadata, already checked against the command, and the
/// bytes of its file), for a sink that committed only that one.
pub struct Resumed {
    /// The newest checkpoint, the engine restored from it.
    pub meta: Meta,
    /// The previous one, if kept.
    pub prev: Option<(Meta, Vec<u8>)>,
}

/// Where a resumed run goes on, for its message: a line of a file, or a
/// source's own position (a Kafka source's offsets: no line to give).
pub(crate) fn resumed_at(meta: &Meta, events: &Path) -> String {
    match &meta.source {
        Some(_) => format!("where it left {}", events.display()),
        None => format!("at line {} of {}", meta.input.lines + 1, events.display()),
    }
}

/// The checkpoint in `dir` for `command`, with `engine` restored from it;
/// `None` when there is none yet (the folder is created). What it does is
/// said to `report`.
pub fn load(
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
    // A cut of workers is newer than a checkpoint of one engine beside it
    // (the workers went on from it, and delete it on their next start).
    if cut_on_workers(dir) {
        return Err(Error::TakenOnWorkers {
            folder: dir.to_path_buf(),
        });
    }
    // (only the previous one when the run stopped between its renames)
    let found = match checkpoint::read(dir) {
        Ok(None) => checkpoint::read_file(dir, checkpoint::PREV)
            .map(|bytes| bytes.map(|bytes| (checkpoint::PREV, bytes))),
        found => found.map(|bytes| bytes.map(|bytes| (checkpoint::FILE, bytes))),
    };
    let path = dir.join(checkpoint::FILE);
    let shown = path.display();
    let (name, bytes) = match found {
        Ok(Some(found)) => found,
        Ok(None) if taken_on_workers(dir) => {
            return Err(Error::TakenOnWorkers {
                folder: dir.to_path_buf(),
            });
        }
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                doing: Doing::ReadCheckpoint,
                path: shown.to_string(),
                source: e,
            });
        }
    };
    let path = dir.join(name);
    let shown = path.display();
    let unusable = |why: Unusable| Error::Checkpoint {
        path: path.clone(),
        folder: dir.to_path_buf(),
        why,
    };
    let (mut meta, snapshot) = checkpoint::decode(&bytes).map_err(unusable)?;
    if let Some(difference) = meta.command.difference(command) {
        return Err(unusable(difference));
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
    let mut say = |level, text: String| report.notice(Notice::line(level, text));
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
            say(Level::Warning, format!(
                "warning: checkpoint {shown}: {why}: rotated since, so it is read from its beginning; lines of the old file after the checkpoint are not read"
            ));
            meta.input = FilePosition::default();
        }
    }
    say(
        Level::Info,
        format!(
            "cepheid: resuming from checkpoint {shown} {}",
            resumed_at(&meta, events)
        ),
    );
    if meta.reload_files {
        say(Level::Info,
            "cepheid: the pattern files are not the rules of the checkpoint (edited since): it goes on with the checkpoint's rules and reads the files at once (`Config::watch`)".to_string()
        );
    } else if meta.counters.rules_changed {
        say(Level::Info,
            "cepheid: the rules changed while it ran: it goes on with the rules of the checkpoint, not those of the command line".to_string()
        );
    }
    // The one before, for a sink that did not commit the newest.
    let prev = (name == checkpoint::FILE)
        .then(|| checkpoint::read_file(dir, checkpoint::PREV).ok().flatten())
        .flatten()
        .and_then(|bytes| {
            let (meta, _) = checkpoint::decode(&bytes).ok()?;
            meta.command
                .difference(command)
                .is_none()
                .then_some((meta, bytes))
        });
    Ok(Some(Resumed { meta, prev }))
}

/// Does `dir` hold the cuts of a run with `--workers` (`epoch-F` folders)?
fn taken_on_workers(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
    })
}

/// Does `dir` hold a complete cut of a run with `--workers`
/// (`epoch-F/complete`)?
fn cut_on_workers(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("epoch-")
                && e.path().join("complete").exists()
        })
    })
}
