//! Advisory locks of `cepheid run --checkpoint` (issue 26, item 2): two
//! runs on one checkpoint folder at once (a supervisor that starts a
//! second instance, an operator re-running a job still alive) both wrote
//! the same outputs, losing, duplicating or breaking records. A run with
//! `--checkpoint DIR` holds, for its whole life, an exclusive `flock` on
//! `DIR/lock` (which holds its process id) and on each of its outputs
//! that is a regular file; a second run is refused (exit 5) before it
//! reads or changes anything, naming the holder. The kernel releases the
//! locks when the process ends, however it ends (SIGKILL included): a
//! lock file left behind holds no lock. Advisory: other programs writing
//! the files are not stopped.
//!
//! With `--processes`, each process locks its own file in the shared
//! folder (`lock` for process 0, `lock.process-I` for the others). An
//! output opened again after a rotation (`rotate.rs`) is locked too.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{EXIT_CHECKPOINT, EXIT_IO};

/// The lock file of process `process` in a checkpoint folder.
pub fn file_name(process: usize) -> String {
    if process == 0 {
        "lock".to_string()
    } else {
        format!("lock.process-{process}")
    }
}

/// Locks `dir/name` (the folder is created) and writes this process's id
/// into it. The lock lasts as long as the returned file. Exit 5 when
/// another process holds it (named), 4 when the folder or file cannot be
/// made.
pub fn folder(dir: &Path, name: &str) -> Result<File, u8> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        say!(
            "error: cannot create checkpoint folder {}: {e}",
            dir.display()
        );
        return Err(EXIT_IO);
    }
    let path = dir.join(name);
    let mut file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) => {
            say!("error: cannot create lock file {}: {e}", path.display());
            return Err(EXIT_IO);
        }
    };
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            let holder = holder(&mut file).map_or_else(
                || "another process".to_string(),
                |pid| format!("process {pid}"),
            );
            say!(
                "error: checkpoint folder {} is in use by another run ({holder} holds {}); nothing was changed",
                dir.display(),
                path.display()
            );
            return Err(EXIT_CHECKPOINT);
        }
        Err(e) => {
            say!("error: cannot lock {}: {e}", path.display());
            return Err(EXIT_IO);
        }
    }
    // Ours now: say who holds it (a stale id of a dead holder replaced).
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    if let Err(e) = written {
        say!("error: cannot write lock file {}: {e}", path.display());
        return Err(EXIT_IO);
    }
    Ok(file)
}

/// Locks the output `path` (`flag` names it in messages) when it is a
/// regular file or does not exist yet (then it is created empty; a
/// device, a FIFO or a standard stream is not locked). The lock lasts as
/// long as the returned file. Exit 5 when another run holds it.
pub fn output(path: &Path, flag: &str) -> Result<Option<File>, u8> {
    if path == Path::new("-") {
        return Ok(None);
    }
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Ok(None),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => return Ok(None),
    }
    let file = match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(file) => file,
        Err(e) => {
            say!("error: cannot create {}: {e}", path.display());
            return Err(EXIT_IO);
        }
    };
    match try_lock(&file) {
        Ok(true) => Ok(Some(file)),
        Ok(false) => {
            say!(
                "error: {flag} {} is being written by another cepheid run (it holds the file's lock); nothing was changed",
                path.display()
            );
            Err(EXIT_CHECKPOINT)
        }
        Err(e) => {
            say!("error: cannot lock {}: {e}", path.display());
            Err(EXIT_IO)
        }
    }
}

/// The process id written in a lock file (digits only: nothing else of
/// the file is shown).
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// An exclusive `flock` without waiting: `Ok(false)` when another open
/// file holds one.
#[cfg(unix)]
pub fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere, no lock (documented in `docs/checkpoints.md`).
#[cfg(not(unix))]
pub fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}
