//! Resuming `cepheid run --checkpoint DIR` from the checkpoint in `DIR`:
//! everything is checked, and the engine restored, before any file is
//! touched, so a checkpoint that cannot be used costs nothing (exit 5, the
//! folder and the outputs left as they were).
//!
//! Checked: the file is a whole checkpoint of this format version (its
//! checksum); it was taken by this command (input, format, time, outputs;
//! `Engine::restore` checks the patterns, `--max-delay`, `--max-waiting`,
//! `--max-runs-per-key` and `--max-live-runs`; after a change of rules
//! `Engine::restore_rules` takes the patterns from the snapshot); the output files are at least as long as it
//! records; the events file holds, just before the recorded offset, the
//! bytes it held then. With `--follow` a file that does not (rotated since
//! the checkpoint) is read from its beginning, with a warning; without,
//! it is an error.

use std::fs::{self, File};
use std::path::Path;

use cepheid_engine::{Engine, ErrorKind, Record};

use crate::checkpoint::{self, Command, Meta};
use crate::input::{Position, Tail};
use crate::run::Args;
use crate::{EXIT_CHECKPOINT, EXIT_IO};

/// The checkpoint in `dir` for `command`, with `engine` restored from it;
/// `None` when there is none yet (the folder is created). Errors are said
/// on standard error; the exit status is returned.
pub fn load(
    args: &Args,
    dir: &Path,
    command: &Command,
    engine: &mut Engine<Record>,
) -> Result<Option<Meta>, u8> {
    if let Err(e) = fs::create_dir_all(dir) {
        say!(
            "error: cannot create checkpoint folder {}: {e}",
            dir.display()
        );
        return Err(EXIT_IO);
    }
    let path = dir.join(checkpoint::FILE);
    let shown = path.display();
    let bytes = match checkpoint::read(dir) {
        Ok(Some(bytes)) => bytes,
        Ok(None) if taken_on_workers(dir) => {
            say!(
                "error: checkpoint in {} cannot be used: it was taken with --workers (resume it with --workers, on any worker count); nothing was changed",
                dir.display()
            );
            return Err(EXIT_CHECKPOINT);
        }
        Ok(None) => return Ok(None),
        Err(e) => {
            say!("error: cannot read checkpoint {shown}: {e}");
            return Err(EXIT_IO);
        }
    };
    let unusable = |why: String| {
        say!(
            "error: checkpoint {shown} cannot be used: {why}; nothing was changed (remove {} to start over)",
            dir.display()
        );
        EXIT_CHECKPOINT
    };
    let (mut meta, snapshot) = checkpoint::decode(&bytes).map_err(unusable)?;
    if let Some(difference) = meta.command.difference(command) {
        return Err(unusable(format!(
            "it was taken by another command ({difference})"
        )));
    }
    // After a change of rules the snapshot's rules go on (an engine with
    // the command's configuration and no patterns of its own).
    let restored = if meta.counters.rules_changed {
        let mut fresh = crate::run::new_engine(args);
        fresh.restore_rules(snapshot).map(|()| *engine = fresh)
    } else {
        match engine.restore(snapshot) {
            // With --watch, pattern files edited after the checkpoint (a
            // reload the run made, then killed before its next checkpoint)
            // are not another command: it goes on with the checkpoint's
            // rules and reads the files at once, as --watch would have
            // (issue 26; it was refused for ever).
            Err(e) if args.watch && e.kind() != ErrorKind::Io => {
                let mut fresh = crate::run::new_engine(args);
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
            say!("error: cannot read checkpoint {shown}: {}", e.message());
            return Err(EXIT_IO);
        }
        return Err(unusable(format!(
            "it does not fit this command: {}",
            e.message()
        )));
    }
    // An output shorter than the checkpoint records, or with other first
    // bytes, was rotated since (logrotate's `create` or `copytruncate`):
    // it starts empty and the records after the checkpoint go into it
    // (`rotate.rs`; it was refused for ever: issue 26).
    let outputs = [
        (
            Some(args.output.as_path()),
            &mut meta.output_len,
            meta.output_head,
        ),
        (args.late.as_deref(), &mut meta.late_len, meta.late_head),
    ];
    for (file, len, head) in outputs {
        let (Some(file), Some(then)) = (file, *len) else {
            continue;
        };
        let now = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let same_head = || match head {
            None => true,
            Some(head) => {
                File::open(file)
                    .ok()
                    .and_then(|f| crate::rotate::head_crc(&f, then))
                    == Some(head)
            }
        };
        if now < then || !same_head() {
            say!(
                "warning: checkpoint {shown}: {} was rotated since (it holds {now} bytes, not the {then} it held then, or other ones): it is started empty and the records after the checkpoint are written into it (the rotated file may hold some of them too)",
                file.display()
            );
            *len = Some(0);
        }
    }
    if let Some(tail) = meta.input.tail {
        let events = &args.events;
        let file = File::open(events).map_err(|e| {
            say!("error: cannot open {}: {e}", events.display());
            EXIT_IO
        })?;
        if Tail::of(&file, meta.input.offset) != Some(tail) {
            let why = format!(
                "{} is not the file it was taken on (its bytes before offset {} differ)",
                events.display(),
                meta.input.offset
            );
            if !args.follow {
                return Err(unusable(why));
            }
            say!(
                "warning: checkpoint {shown}: {why}: rotated since, so it is read from its beginning; lines of the old file after the checkpoint are not read"
            );
            meta.input = Position::default();
        }
    }
    say!(
        "cepheid: resuming from checkpoint {shown} at line {} of {}",
        meta.input.lines + 1,
        args.events.display()
    );
    if meta.reload_files {
        say!(
            "cepheid: the pattern files are not the rules of the checkpoint (edited since): it goes on with the checkpoint's rules and reads the files at once (--watch)"
        );
    } else if meta.counters.rules_changed {
        say!(
            "cepheid: the rules changed while it ran: it goes on with the rules of the checkpoint, not those of the command line"
        );
    }
    Ok(Some(meta))
}

/// Does `dir` hold the cuts of a run with `--workers` (`epoch-F` folders)?
fn taken_on_workers(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
    })
}
