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
//! folder (`lock` for process 0, `lock.process-I` for the others:
//! [`lock_folder`], which the run takes as it opens, on either executor;
//! a cluster says its process, `Cluster::process`). The outputs
//! are locked by [`Files`](crate::Files) as it opens them; one opened again
//! after a rotation (`rotate.rs`) is locked too.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{Doing, Error};

/// Locks the checkpoint folder `dir` for process `process` of a run (the
/// folder is created; its file `lock`, or `lock.process-I`, holds this
/// process's id) for as long as the returned file lives:
/// [`Error::FolderInUse`] when another process holds it (named), and
/// nothing read or changed yet.
pub fn lock_folder(dir: &Path, process: usize) -> Result<File, Error> {
    folder(dir, &file_name(process))
}

/// The lock file of process `process` in a checkpoint folder.
fn file_name(process: usize) -> String {
    if process == 0 {
        "lock".to_string()
    } else {
        format!("lock.process-{process}")
    }
}

/// An I/O error on `path`.
fn io(doing: Doing, path: &Path, source: io::Error) -> Error {
    Error::Io {
        doing,
        path: path.display().to_string(),
        source,
    }
}

/// Locks `dir/name` (the folder is created) and writes this process's id
/// into it. The lock lasts as long as the returned file.
/// [`Error::FolderInUse`] when another process holds it (named).
fn folder(dir: &Path, name: &str) -> Result<File, Error> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(io(Doing::CreateFolder, dir, e));
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
        Err(e) => return Err(io(Doing::CreateLock, &path, e)),
    };
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::FolderInUse {
                folder: dir.to_path_buf(),
                holder: holder(&mut file),
                lock: path,
            });
        }
        Err(e) => return Err(io(Doing::Lock, &path, e)),
    }
    // Ours now: say who holds it (a stale id of a dead holder replaced).
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    if let Err(e) = written {
        return Err(io(Doing::WriteLock, &path, e));
    }
    Ok(file)
}

/// Locks the output `path` (`flag` names it in messages) when it is a
/// regular file or does not exist yet (then it is created empty; a
/// device, a FIFO or a standard stream is not locked). The lock lasts as
/// long as the returned file. [`Error::OutputInUse`] when another run
/// holds it.
pub(crate) fn output(path: &Path, flag: &'static str) -> Result<Option<File>, Error> {
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
        Err(e) => return Err(io(Doing::Create, path, e)),
    };
    match try_lock(&file) {
        Ok(true) => Ok(Some(file)),
        Ok(false) => Err(Error::OutputInUse {
            flag,
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io(Doing::Lock, path, e)),
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
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere, no lock (documented in `docs/checkpoints.md`).
#[cfg(not(unix))]
pub(crate) fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}
