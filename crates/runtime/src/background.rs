//! The main output of `cepheid run`, written on a thread of its own: the
//! main thread (matching and formatting) copies each record into a block
//! and hands a full block (256 KiB) to the `cepheid-write` thread, which
//! makes the `write` system calls (the kernel's copy into the page cache,
//! the file system's bookkeeping, a wait on a slow pipe). Blocks go back
//! for reuse, so the run allocates only the few in flight.
//!
//! It behaves as a [`std::io::BufWriter`] of the same size: the bytes and
//! their order are the same; a write error is returned by the next `write`
//! or `flush` after it happened (as a `BufWriter`'s comes with the flush
//! of the block it was in), and nothing more is written after one;
//! [`Write::flush`] returns when every byte before it is written and the
//! writer flushed (or failed), so that what follows it (a checkpoint's
//! `sync_data` and measured length, the flush of a live stream's records)
//! sees them all. Dropping it writes what is left, ignoring errors, as a
//! `BufWriter` does.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{self, JoinHandle};

/// Bytes in a block: handed to the writer thread when full.
const BLOCK: usize = 1 << 18;
/// Full blocks waiting for the writer thread, at most (then the main
/// thread waits: memory stays bounded when the output is slow).
const BLOCKS_AHEAD: usize = 2;

/// What the main thread asks of the writer thread.
enum Job {
    /// Write these bytes (then give the block back); with `true`, flush
    /// the writer after them, without answering (a file output looks at
    /// its path then, and follows a rotation: `rotate.rs`).
    Write(Vec<u8>, bool),
    /// Flush the writer, then answer (with the first error, if any).
    Flush(SyncSender<io::Result<()>>),
}

/// A [`Write`] that writes on a thread of its own (see the module).
pub struct Background {
    /// The block being filled.
    block: Vec<u8>,
    /// Written blocks back from the writer thread, emptied, for the next
    /// ones (at most as many as can be in flight, and one more): a run
    /// that hands a block over at each batch (a live input that waits,
    /// `Background::hand_over`) allocates none in its steady state.
    spare: Vec<Vec<u8>>,
    /// To the writer thread (`None` once it is gone).
    jobs: Option<SyncSender<Job>>,
    /// Written blocks, back for reuse; or the error that stopped the
    /// writer thread.
    back: Receiver<io::Result<Vec<u8>>>,
    /// The error that stopped the output: every later call returns it
    /// again (as a `BufWriter` over a failing writer does).
    failed: Option<(io::ErrorKind, String)>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Writes to `out` on a new thread named `cepheid-write`.
    pub fn new(out: Box<dyn Write + Send>) -> io::Result<Background> {
        let (jobs, inbox) = mpsc::sync_channel(BLOCKS_AHEAD);
        // (unbounded, so the writer thread never waits on it: it holds at
        // most the blocks in flight, as the main thread takes one back per
        // block it sends)
        let (give_back, back) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(WRITER_THREAD.to_owned())
            .spawn(move || write_blocks(out, &inbox, &give_back))?;
        Ok(Background {
            block: Vec::with_capacity(BLOCK),
            spare: Vec::new(),
            jobs: Some(jobs),
            back,
            failed: None,
            thread: Some(thread),
        })
    }

    /// The first error the writer thread met, if it stopped on one.
    fn check(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        loop {
            match self.back.try_recv() {
                Ok(Ok(block)) => self.recycle(block),
                Ok(Err(e)) => return Err(self.fail(e)),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Keeps `block` for reuse (at most one more than can be in flight).
    fn recycle(&mut self, mut block: Vec<u8>) {
        if self.spare.len() <= BLOCKS_AHEAD && block.capacity() >= BLOCK {
            block.clear();
            self.spare.push(block);
        }
    }

    /// Hands what was written to the writer thread, which writes it at
    /// once and flushes the writer after it, without waiting for it
    /// ([`Write::flush`] waits): what a live input's batch released goes
    /// out while the run goes on, and a rotated file output is followed
    /// after it as a flush follows it.
    pub(crate) fn hand_over(&mut self) -> io::Result<()> {
        self.send(true)
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some((e.kind(), e.to_string()));
        self.jobs = None;
        e
    }

    /// The error that stopped the output, again.
    fn failed(&self) -> Option<io::Error> {
        let (kind, message) = self.failed.as_ref()?;
        Some(io::Error::new(*kind, message.clone()))
    }

    /// The error that stopped the output, or one that says it stopped.
    fn stopped(&self) -> io::Error {
        self.failed()
            .unwrap_or_else(|| io::Error::other("the output's thread stopped"))
    }

    /// Hands the block to the writer thread, if anything is in it, and
    /// takes a written one back (or a new one while all are in flight).
    fn send_block(&mut self) -> io::Result<()> {
        self.send(false)
    }

    /// [`Background::send_block`], the writer flushed after it with
    /// `flush`.
    fn send(&mut self, flush: bool) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let Some(jobs) = &self.jobs else {
            return Err(self.stopped());
        };
        let full = std::mem::take(&mut self.block);
        if jobs.send(Job::Write(full, flush)).is_err() {
            // The thread stopped: on an error, which it sent back.
            return Err(self.stopped_error());
        }
        self.check()?;
        if self.block.capacity() < BLOCK {
            self.block = (self.spare.pop()).unwrap_or_else(|| Vec::with_capacity(BLOCK));
        }
        Ok(())
    }

    /// Why the writer thread stopped (the error it sent back).
    fn stopped_error(&mut self) -> io::Error {
        loop {
            match self.back.recv() {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return self.fail(e),
                Err(_) => {
                    let e = self.stopped();
                    return self.fail(e);
                }
            }
        }
    }
}

impl Write for Background {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.block.len() + bytes.len() > BLOCK && !self.block.is_empty() {
            self.send_block()?;
        }
        if self.failed.is_some() {
            return Err(self.stopped());
        }
        self.block.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_block()?;
        self.check()?;
        let Some(jobs) = &self.jobs else {
            return Err(self.stopped());
        };
        let (answer, answered) = mpsc::sync_channel(1);
        if jobs.send(Job::Flush(answer)).is_err() {
            return Err(self.stopped_error());
        }
        match answered.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Err(self.stopped_error()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // As a `BufWriter`: what is left is written, errors ignored.
        let _ = self.send_block();
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The name of the thread that writes the output.
const WRITER_THREAD: &str = "cepheid-write";

/// The writer thread: writes each block, gives it back; stops at the first
/// error, which it sends back (the main thread returns it).
fn write_blocks(
    mut out: Box<dyn Write + Send>,
    jobs: &Receiver<Job>,
    give_back: &Sender<io::Result<Vec<u8>>>,
) {
    for job in jobs {
        let result = match job {
            Job::Write(block, flush) => (out.write_all(&block))
                .and_then(|()| if flush { out.flush() } else { Ok(()) })
                .map(|()| block),
            Job::Flush(answer) => {
                let flushed = out.flush();
                let failed = flushed.is_err();
                let _ = answer.send(flushed);
                if failed {
                    return;
                }
                continue;
            }
        };
        let failed = result.is_err();
        let _ = give_back.send(result);
        if failed {
            return;
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared vector, failing after `fail_after` bytes.
    #[derive(Clone)]
    struct Shared {
        bytes: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<usize>>,
        fail_after: usize,
    }

    impl Shared {
        fn new(fail_after: usize) -> Shared {
            Shared {
                bytes: Arc::default(),
                flushes: Arc::default(),
                fail_after,
            }
        }

        fn bytes(&self) -> Vec<u8> {
            self.bytes.lock().unwrap().clone()
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap();
            if bytes.len() + buf.len() > self.fail_after {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            *self.flushes.lock().unwrap() += 1;
            Ok(())
        }
    }

    /// An output into a shared vector that never fails, and the vector.
    fn into_shared() -> (Shared, Background) {
        let inner = Shared::new(usize::MAX);
        let out = Background::new(Box::new(inner.clone())).unwrap();
        (inner, out)
    }

    /// Lines of 100 bytes, numbered.
    fn lines(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{i:099}\n").into_bytes()).collect()
    }

    #[test]
    fn flush_returns_with_every_byte_written_in_order() {
        let (inner, mut out) = into_shared();
        // 6 MB: many blocks, more than are ever in flight.
        let lines = lines(60_000);
        for line in &lines {
            out.write_all(line).unwrap();
        }
        out.flush().unwrap();
        assert_eq!(inner.bytes(), lines.concat());
        assert_eq!(*inner.flushes.lock().unwrap(), 1);
        out.write_all(b"tail\n").unwrap();
        out.flush().unwrap();
        assert!(inner.bytes().ends_with(b"\ntail\n"));
    }

    /// What is handed over is written by the thread in order, the writer
    /// flushed after each (a rotated file output is followed there), with
    /// no wait; the blocks come back and are used again (a thousand
    /// hand-overs keep at most the blocks in flight and one more).
    #[test]
    fn what_is_handed_over_is_written_and_flushed_without_a_wait_and_blocks_are_reused() {
        let (inner, mut out) = into_shared();
        let lines = lines(1_000);
        for line in &lines {
            out.write_all(line).unwrap();
            out.hand_over().unwrap();
            assert!(out.spare.len() <= BLOCKS_AHEAD + 1);
        }
        let started = std::time::Instant::now();
        while *inner.flushes.lock().unwrap() < lines.len() {
            assert!(started.elapsed() < std::time::Duration::from_secs(60));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(inner.bytes(), lines.concat());
        out.check().unwrap();
        assert!(!out.spare.is_empty(), "no block came back to be used again");
        out.flush().unwrap();
        assert_eq!(*inner.flushes.lock().unwrap(), lines.len() + 1);
    }

    #[test]
    fn dropping_writes_what_is_left() {
        let (inner, mut out) = into_shared();
        out.write_all(b"last\n").unwrap();
        drop(out);
        assert_eq!(inner.bytes(), b"last\n");
    }

    #[test]
    fn a_write_error_comes_back_and_stops_the_output() {
        let inner = Shared::new(BLOCK + BLOCK / 2);
        let mut out = Background::new(Box::new(inner.clone())).unwrap();
        let mut error = None;
        for line in lines(10_000) {
            if let Err(e) = out.write_all(&line) {
                error = Some(e);
                break;
            }
        }
        let error = match error {
            Some(e) => e,
            None => out.flush().unwrap_err(),
        };
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        // Every later call fails the same way.
        let again = out.write_all(b"more\n").unwrap_err();
        assert_eq!(
            (again.kind(), again.to_string()),
            (error.kind(), error.to_string())
        );
        assert_eq!(out.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        // The first block only: nothing after the failed one.
        assert!(inner.bytes().len() <= BLOCK);
    }

    #[test]
    fn a_flush_error_comes_back() {
        let inner = Shared::new(10);
        let mut out = Background::new(Box::new(inner.clone())).unwrap();
        out.write_all(b"more than ten bytes\n").unwrap();
        assert_eq!(out.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(inner.bytes().is_empty());
    }
}
