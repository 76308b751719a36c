//! Helpers shared by the command-line tests: scratch folders and a running
//! `cepheid` whose output lines are read as they come, with a deadline
//! (live streams, `--follow`, `--idle-timeout`, processing time, signals).
#![allow(dead_code)]

pub mod crash;
#[cfg(feature = "kafka")]
pub mod kafka;

pub use cepheid_testkit::Scratch;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a test waits for a line it expects: a hang guard, long, so
/// that a loaded machine does not fail it (30 s was not: a followed file on
/// two workers killed and resumed waited longer for its resume line while
/// three builds ran on two cores); a line that never comes fails it then.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A fresh folder for one test, under Cargo's temporary folder for tests
/// (removed when the test ends well: [`Scratch`]).
pub fn scratch(name: &str) -> Scratch {
    static N: AtomicU32 = AtomicU32::new(0);
    Scratch::new(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )))
}

/// The `cepheid` binary.
pub fn cepheid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cepheid"))
}

/// A port on 127.0.0.1 that was free a moment ago.
#[allow(dead_code)] // (the tests of --processes)
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `n` distinct ports on 127.0.0.1 that were free a moment ago (held
/// together while chosen: two calls of [`free_port`] can give one port
/// twice, and a hostfile naming it twice left process 0 waiting for ever
/// for a process 1 that could not bind it).
#[allow(dead_code)] // (the tests of --processes)
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// Waits for every child of one run of several processes: when one ends
/// with a failure, the others are killed (SIGKILL), so that a process
/// whose peer is gone does not wait for it for ever. Their outputs, in
/// order.
#[allow(dead_code)] // (the tests of --processes)
pub fn wait_together(children: Vec<Child>) -> Vec<std::process::Output> {
    wait_together_within(children, Duration::ZERO)
}

/// [`wait_together`], the others killed only if they have not ended
/// `grace` after the first failure: for a run where each process must end
/// with its own error (killed at once, the one that ends a moment after
/// the first shows no status of its own).
#[allow(dead_code)] // (the tests of --processes)
pub fn wait_together_within(children: Vec<Child>, grace: Duration) -> Vec<std::process::Output> {
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, child) in children.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((i, child.wait_with_output().expect("ends")));
        });
    }
    drop(tx);
    let mut outputs: Vec<Option<std::process::Output>> = pids.iter().map(|_| None).collect();
    let kill_others = |outputs: &[Option<std::process::Output>]| {
        for (j, pid) in pids.iter().enumerate() {
            if outputs[j].is_none() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    };
    let mut failed: Option<std::time::Instant> = None;
    loop {
        let next = match failed {
            Some(at) => match rx.recv_timeout(grace.saturating_sub(at.elapsed())) {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    kill_others(&outputs);
                    rx.recv().ok()
                }
                next => next.ok(),
            },
            None => rx.recv().ok(),
        };
        let Some((i, output)) = next else { break };
        let success = output.status.success();
        outputs[i] = Some(output);
        if !success {
            failed.get_or_insert_with(std::time::Instant::now);
            if grace.is_zero() {
                kill_others(&outputs);
            }
        }
    }
    outputs.into_iter().map(|o| o.expect("waited")).collect()
}

/// `command(i)` as process `i` of `--processes 2` (`--process i
/// --hostfile hosts` added, `dir/hosts` written with two free ports),
/// both run to their end: their outputs (standard output discarded).
#[allow(dead_code)] // (the tests of --processes)
pub fn run_two_processes(
    dir: &Path,
    command: impl Fn(usize) -> Command,
) -> Vec<std::process::Output> {
    run_two_processes_within(dir, Duration::ZERO, command)
}

/// [`run_two_processes`], waited for as [`wait_together_within`].
#[allow(dead_code)] // (the tests of --processes)
pub fn run_two_processes_within(
    dir: &Path,
    grace: Duration,
    command: impl Fn(usize) -> Command,
) -> Vec<std::process::Output> {
    wait_together_within(spawn_two_processes(dir, command), grace)
}

/// Starts the two processes of `command(process)` (`--processes 2`,
/// `--process N`, a hostfile `dir/hosts` of two free ports); standard
/// error piped.
#[allow(dead_code)] // (the tests of --processes)
pub fn spawn_two_processes(dir: &Path, command: impl Fn(usize) -> Command) -> Vec<Child> {
    let ports = free_ports(2);
    let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]);
    std::fs::write(dir.join("hosts"), hosts).unwrap();
    (0..2)
        .map(|process| {
            command(process)
                .args(["--processes", "2", "--process", &process.to_string()])
                .args(["--hostfile", "hosts"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts")
        })
        .collect()
}

/// `cepheid run rules.cep --events events.jsonl --no-progress` in `dir`:
/// how most runs of these tests start (their own flags follow).
#[allow(dead_code)]
pub fn run_here(dir: &Path) -> Command {
    let mut command = cepheid();
    command.current_dir(dir).args([
        "run",
        "rules.cep",
        "--events",
        "events.jsonl",
        "--no-progress",
    ]);
    command
}

/// A running `cepheid`: its standard input open for writing, its standard
/// output read line by line on a thread, its standard error collected.
pub struct Live {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Standard error's lines as they come (also collected for `finish`).
    err_lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Live {
    /// Starts `command` with piped standard streams.
    pub fn spawn(command: &mut Command) -> Live {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (err_tx, err_lines) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                let _ = err_tx.send(line);
            }
            text
        });
        Live {
            child,
            stdin,
            lines,
            err_lines,
            stderr: Some(stderr),
        }
    }

    /// `cepheid run PATTERNS ARGS...`.
    pub fn run(patterns: &Path, args: &[&str]) -> Live {
        Live::spawn(cepheid().arg("run").arg(patterns).args(args))
    }

    /// Writes `text` to the standard input and flushes it.
    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("standard input is open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the standard input (the end of input).
    pub fn close(&mut self) {
        self.stdin = None;
    }

    /// The next output line, if one comes within `wait`.
    pub fn line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// The next output line as JSON; fails the test if none comes within
    /// [`PATIENCE`].
    pub fn record(&self, what: &str) -> serde_json::Value {
        let line = self
            .line(PATIENCE)
            .unwrap_or_else(|| panic!("no output line: {what}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
    }

    /// Waits (at most [`PATIENCE`]) for a line of standard error that
    /// contains `needle`; the lines before it are passed over. Fails the
    /// test if none comes.
    pub fn stderr_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut passed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.err_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => passed.push(line),
                Err(_) => panic!(
                    "no line of standard error with {needle:?} within {PATIENCE:?}; it said:\n{}",
                    passed.join("\n")
                ),
            }
        }
    }

    /// Sends the signal named `signal` (`TERM`, `INT`, `HUP`) to the
    /// process, once it handles it: a run just started (or resumed) has
    /// not installed its handlers yet, and the signal's default action
    /// would end it without its last checkpoint.
    pub fn signal(&self, signal: &str) {
        self.wait_until_it_handles(signal);
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal}");
    }

    /// Waits (at most [`PATIENCE`]) until the process catches `signal`
    /// (its bit in `SigCgt` of `/proc/PID/status`), or has ended. Where
    /// there is no `/proc`, it does not wait.
    fn wait_until_it_handles(&self, signal: &str) {
        let number: u32 = match signal {
            "HUP" => 1,
            "INT" => 2,
            "TERM" => 15,
            _ => return,
        };
        let status = format!("/proc/{}/status", self.child.id());
        let started = std::time::Instant::now();
        loop {
            let Ok(text) = std::fs::read_to_string(&status) else {
                return;
            };
            let caught = text
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok());
            match caught {
                Some(mask) if mask & (1 << (number - 1)) != 0 => return,
                None => return,
                Some(_) => {}
            }
            if text
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
            {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the run never handled SIG{signal}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits (at most [`PATIENCE`]) for the process to end, its standard
    /// input left as it is (call [`close`](Self::close) first for an end of
    /// input): its status, the output lines not read yet, and its standard
    /// error.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < PATIENCE, "the process did not end");
            std::thread::sleep(Duration::from_millis(10));
        };
        self.stdin = None;
        let rest = self.lines.iter().collect();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status, rest, stderr)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // A failed test leaves no process behind.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The folder of the newest whole checkpoint in `ckpt` (`ckpt/cut-N`, on
/// any executor), if there is one.
pub fn newest_checkpoint(ckpt: &Path) -> Option<PathBuf> {
    use cepheid_runtime::checkpoint::store;
    let newest = *store::complete(ckpt).ok()?.first()?;
    Some(store::cut_dir(ckpt, newest))
}

/// The newest whole checkpoint in `ckpt`, read whole (its marker and
/// pieces), if there is one.
pub fn newest_stored(ckpt: &Path) -> Option<cepheid_runtime::checkpoint::Stored> {
    cepheid_runtime::checkpoint::store::kept(ckpt)
        .ok()?
        .into_iter()
        .next()
}

/// Sends SIGTERM to `child` once it takes the signal (Linux: SIGTERM in
/// `/proc/PID/status`'s `SigCgt`), not before: a signal sent before the
/// process set up its handling ends it by the default action, whatever
/// the command does, and how soon that happens depends on the machine's
/// load. Waits [`PATIENCE`] at most.
#[allow(dead_code)] // (the tests of signals at start-up)
pub fn terminate_once_handled(child: &Child) {
    let status = format!("/proc/{}/status", child.id());
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let caught = std::fs::read_to_string(&status)
            .ok()
            .and_then(|text| {
                let mask = text.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0);
        if caught {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process never took SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}
