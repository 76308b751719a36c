//! `cepheid run --processes 2 --checkpoint DIR`: two real processes of one
//! worker each on 127.0.0.1 (ports chosen free), both killed with SIGKILL
//! at random moments and restarted, end with the outputs of a run that was
//! never interrupted (equal once sorted) and the same summary; the same
//! when each resume is on another layout (one process and two, other
//! worker counts). A followed file (`--follow`, read by process 0) killed
//! the same way while it grows, then stopped by SIGTERM, ends as one
//! followed run.

use crate::common;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::crash::{self, setup, sorted, Moments};
use common::{cepheid, run_here};

/// Longest a run of both processes may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(60);

/// A port on 127.0.0.1 that was free a moment ago.
/// Writes `dir/hosts` for two processes on this machine, each on a free
/// port.
fn two_hosts(dir: &Path) {
    let ports = common::free_ports(2);
    let hosts = format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]);
    fs::write(dir.join("hosts"), hosts).unwrap();
}

/// [`run_here`] in `dir` as process `process` of two (hostfile `hosts`).
fn process_of_two(dir: &Path, process: &str) -> Command {
    let mut command = run_here(dir);
    command.args([
        "--processes",
        "2",
        "--process",
        process,
        "--hostfile",
        "hosts",
    ]);
    command
}

/// `cepheid run` over the folder's events (cut in chunks of 64 KiB),
/// writing `out_NAME.jsonl` and `late_NAME.jsonl` (process 0), with
/// `layout` (`--processes`, `--workers`...), `--max-delay` `delay` and
/// `extra` flags; standard error to `err_NAME.txt`.
fn command_with(dir: &Path, name: &str, layout: &[&str], delay: &str, extra: &[&str]) -> Command {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--no-progress",
        ])
        .args(["--chunk-bytes", "65536", "--max-delay", delay])
        .args(layout)
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join(format!("err_{name}.txt"))).unwrap());
    command
}

/// Both processes of a run; killed when dropped (a failed assertion kills
/// them too).
struct Pair(Vec<Child>);

impl Pair {
    /// Starts process 0 and 1 of `--processes 2` on fresh ports; process
    /// 1's files are named `NAME-1`. Process 1 starts a moment after
    /// process 0 (it connects to process 0, and waits a second before it
    /// tries again when nothing listens yet).
    fn start(dir: &Path, name: &str, extra: &[&str]) -> Pair {
        Pair::start_with(dir, name, "2s", extra)
    }

    /// [`Pair::start`] with another `--max-delay`.
    fn start_with(dir: &Path, name: &str, delay: &str, extra: &[&str]) -> Pair {
        two_hosts(dir);
        let children = (0..2)
            .map(|process| {
                let name = if process == 0 {
                    name.to_string()
                } else {
                    format!("{name}-1")
                };
                let process = process.to_string();
                let layout = ["--processes", "2", "--process", &process];
                if process != "0" {
                    std::thread::sleep(Duration::from_millis(50));
                }
                command_with(dir, &name, &layout, delay, extra)
                    .args(["--hostfile", "hosts"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        Pair(children)
    }

    /// Waits for both (at most [`LIMIT`]); their exit codes.
    fn wait(&mut self) -> [Option<i32>; 2] {
        let deadline = Instant::now() + LIMIT;
        let mut codes = [None; 2];
        let mut done = [false; 2];
        while done.iter().any(|d| !d) {
            assert!(Instant::now() < deadline, "a run took over {LIMIT:?}");
            for (i, child) in self.0.iter_mut().enumerate() {
                if !done[i] {
                    if let Some(status) = child.try_wait().unwrap() {
                        (codes[i], done[i]) = (status.code(), true);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        codes
    }

    /// Has process 0 ended?
    fn ended(&mut self) -> bool {
        self.0[0].try_wait().unwrap().is_some()
    }

    /// Kills both with SIGKILL, `first` first, the other `gap` later.
    fn kill(&mut self, first: usize, gap: Duration) {
        let _ = self.0[first].kill();
        std::thread::sleep(gap);
        let _ = self.0[1 - first].kill();
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// A child killed if the test fails before it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stderr(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(format!("err_{name}.txt"))).unwrap_or_default()
}

/// The summary's numbers: the last line of process 0's standard error
/// without the time it took.
fn summary(dir: &Path, name: &str) -> String {
    crash::summary(&stderr(dir, name))
}

/// The newest complete cut in `ckpt`, if any.
fn complete(dir: &Path) -> Option<String> {
    let newest = common::newest_checkpoint(&dir.join("ckpt"))?;
    Some(newest.file_name()?.to_string_lossy().into_owned())
}

/// The outputs of the killed and resumed chain equal the whole run's.
fn assert_same(dir: &Path, when: &str) {
    assert!(
        sorted(dir, "out_killed.jsonl") == sorted(dir, "out_whole.jsonl"),
        "the outputs differ {when}"
    );
    assert!(
        sorted(dir, "late_killed.jsonl") == sorted(dir, "late_whole.jsonl"),
        "the late outputs differ {when}"
    );
}

#[test]
fn two_processes_killed_at_random_moments_end_as_an_uninterrupted_run() {
    let dir = setup("processes_crash", 60_000);
    let started = Instant::now();
    let mut whole = Pair::start(&dir, "whole", &[]);
    assert_eq!(
        whole.wait(),
        [Some(0), Some(0)],
        "{}",
        stderr(&dir, "whole")
    );
    let took = started.elapsed();
    let expected = summary(&dir, "whole");
    assert!(expected.contains(" events read, "), "{expected}");
    let said = stderr(&dir, "whole");
    assert!(said.contains(" on 2 processes x 1 worker\n"), "{said}");
    assert!(!expected.contains(" 0 late"), "{expected}");
    assert!(!expected.contains(" 0 malformed"), "{expected}");
    let resumable = ["--checkpoint", "ckpt", "--checkpoint-every", "20ms"];
    let mut moments = Moments(0xC0FFEE);
    let (mut kills, mut runs) = (0, 0);
    // Each run is killed (both processes, one a few milliseconds after the
    // other) at a random moment within `window` after it has completed a
    // cut of its own, so every kill moves the chain on. How long a run
    // goes on after its first cut depends on the machine (connecting the
    // processes takes about a second, and a cut is taken where the process
    // that reads furthest ahead is): a run that ends by itself before
    // three kills restarts the chain with half the window, down to a few
    // milliseconds after a cut. Each run is logged (shown on a failure).
    let mut window = took / 4;
    while kills < 5 {
        runs += 1;
        assert!(runs < 60, "the runs keep ending before they are killed");
        let before = complete(&dir);
        let started = Instant::now();
        let mut pair = Pair::start(&dir, "killed", &resumable);
        let deadline = started + LIMIT;
        while !pair.ended() && complete(&dir) == before {
            assert!(Instant::now() < deadline, "no cut in {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let cut = started.elapsed();
        let pause = moments.between(Duration::ZERO, window);
        std::thread::sleep(pause);
        let ended = pair.ended();
        eprintln!(
            "run {runs}: a cut after {cut:?}, then {pause:?} of {window:?}: {}",
            if ended { "ended by itself" } else { "killed" }
        );
        if !ended {
            let first = (moments.next() % 2) as usize;
            let gap = Duration::from_millis(moments.next() % 20);
            pair.kill(first, gap);
            kills += 1;
            continue;
        }
        let codes = pair.wait();
        assert_eq!(codes, [Some(0), Some(0)], "{}", stderr(&dir, "killed"));
        if kills >= 3 {
            break;
        }
        // It ended before three kills: this chain of resumes must already
        // have written the whole output. Then start over, killing sooner.
        assert_same(&dir, &format!("after {kills} kills (ended by itself)"));
        fs::remove_dir_all(dir.join("ckpt")).unwrap();
        for file in ["out_killed.jsonl", "late_killed.jsonl"] {
            let _ = fs::remove_file(dir.join(file));
        }
        kills = 0;
        window = (window / 2).max(Duration::from_millis(4));
    }
    let mut last = Pair::start(&dir, "killed", &resumable);
    assert_eq!(
        last.wait(),
        [Some(0), Some(0)],
        "{}",
        stderr(&dir, "killed")
    );
    for name in ["killed", "killed-1"] {
        let said = stderr(&dir, name);
        assert!(
            said.contains("resuming from checkpoint") && said.contains("(2 processes x 1 worker)"),
            "{name}: {said}"
        );
    }
    assert_same(&dir, &format!("after {kills} kills"));
    assert_eq!(summary(&dir, "killed"), expected);
    // A cut holds one file per worker of every process and its marker;
    // older ones are gone.
    // (besides the lock files: `lock`, `lock.process-I`)
    let cuts: Vec<_> = fs::read_dir(dir.join("ckpt"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with("lock"))
        .collect();
    assert!(cuts.len() <= 2, "{cuts:?}");
    let stored = common::newest_stored(&dir.join("ckpt")).expect("a complete cut");
    assert_eq!(stored.marker().layout(), Some((2, 1)));
    assert_eq!(stored.pieces().len(), 2);
    assert!(stored.path().join("piece-1").exists());
}

/// Waits until `ckpt` holds a complete cut other than `before` (or the
/// run ended); then a random pause of up to `window`.
fn after_a_cut(dir: &Path, before: &Option<String>, ended: &mut dyn FnMut() -> bool) {
    let started = Instant::now();
    while !ended() && complete(dir) == *before {
        assert!(started.elapsed() < LIMIT, "no cut in {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_checkpoint_resumes_from_one_process_on_two_and_back() {
    let dir = setup("processes_rescale", 60_000);
    // A delay above the stream's disorder: no event is late on any
    // layout, whose outputs are then all the same.
    let one = |name: &str, workers: &str, extra: &[&str]| {
        command_with(&dir, name, &["--workers", workers], "3s", extra)
    };
    assert!(one("whole", "2", &[]).status().unwrap().success());
    let expected = summary(&dir, "whole");
    assert!(expected.contains(" 0 late"), "{expected}");
    let resumable = ["--checkpoint", "ckpt", "--checkpoint-every", "20ms"];
    let mut moments = Moments(0xBEEF);
    // 1 process x 3 workers, killed after a cut.
    let mut child = one("killed", "3", &resumable).spawn().unwrap();
    after_a_cut(&dir, &None, &mut || child.try_wait().unwrap().is_some());
    std::thread::sleep(moments.between(Duration::ZERO, Duration::from_millis(30)));
    let _ = child.kill();
    child.wait().unwrap();
    // 2 processes x 1 worker, killed after a cut of their own.
    let before = complete(&dir);
    assert!(before.is_some());
    let mut pair = Pair::start_with(&dir, "killed", "3s", &resumable);
    after_a_cut(&dir, &before, &mut || pair.ended());
    for name in ["killed", "killed-1"] {
        let said = stderr(&dir, name);
        assert!(
            said.contains("(2 processes x 1 worker; it was taken on 3 workers)"),
            "{name}: {said}"
        );
    }
    std::thread::sleep(moments.between(Duration::ZERO, Duration::from_millis(30)));
    pair.kill(0, Duration::from_millis(moments.next() % 10));
    // 1 process x 1 worker, killed after a cut.
    let before = complete(&dir);
    let mut child = one("killed", "1", &resumable).spawn().unwrap();
    after_a_cut(&dir, &before, &mut || child.try_wait().unwrap().is_some());
    let said = stderr(&dir, "killed");
    assert!(
        said.contains("it was taken on 2 processes x 1 worker)"),
        "{said}"
    );
    let _ = child.kill();
    child.wait().unwrap();
    // 2 processes x 1 worker, to the end.
    let mut last = Pair::start_with(&dir, "killed", "3s", &resumable);
    assert_eq!(
        last.wait(),
        [Some(0), Some(0)],
        "{}",
        stderr(&dir, "killed")
    );
    let said = stderr(&dir, "killed");
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(
        sorted(&dir, "out_killed.jsonl") == sorted(&dir, "out_whole.jsonl"),
        "the outputs differ"
    );
    assert_eq!(fs::read(dir.join("late_killed.jsonl")).unwrap(), b"");
    assert_eq!(summary(&dir, "killed"), expected);
}

/// Waits (at most [`LIMIT`]) until `file` in `dir` holds `needle`.
fn wait_for(dir: &Path, file: &str, needle: &str) {
    let deadline = Instant::now() + LIMIT;
    while !fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(Instant::now() < deadline, "no {needle:?} in {file}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM to process 0 of `pair`: it stops the followed input, both
/// processes end (process 0 with 143), the last cut taken.
fn terminate(dir: &Path, name: &str, mut pair: Pair) {
    let status = Command::new("kill")
        .args(["-s", "TERM", &pair.0[0].id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let codes = pair.wait();
    assert_eq!(codes, [Some(143), Some(0)], "{}", stderr(dir, name));
}

/// A process of two waiting for the other hears SIGTERM: process 0
/// waiting for process 1 to connect, process 1 for process 0 to listen.
/// Each ends at once with 143 and says it was stopped before the
/// processes were met, having read nothing and kept its checkpoint folder
/// as it was. Before, process 0 waited on `accept` and process 1 in its
/// retries, and neither heard the signal until the other came.
#[test]
fn a_process_waiting_for_the_other_ends_at_sigterm_saying_so() {
    let dir = setup("processes_waiting_stop", 100);
    two_hosts(&dir);
    for (process, waiting) in [
        ("0", "waiting on 127.0.0.1:"),
        ("1", "waiting for process 0"),
    ] {
        let err = format!("err_{process}.txt");
        let child = process_of_two(&dir, process)
            .args(["--output", "out.jsonl", "--checkpoint", "ckpt"])
            .stdout(Stdio::null())
            .stderr(File::create(dir.join(&err)).unwrap())
            .spawn()
            .expect("starts");
        let mut child = Guard(child);
        wait_for(&dir, &err, waiting);
        common::terminate_once_handled(&child.0);
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "process {process} did not end");
            std::thread::sleep(Duration::from_millis(10));
        };
        let said = fs::read_to_string(dir.join(&err)).unwrap();
        assert_eq!(status.code(), Some(143), "process {process}: {said}");
        assert!(
            said.contains("cepheid: stopped by SIGTERM before the other processes were met"),
            "process {process}: {said}"
        );
        assert!(!said.contains("events read"), "process {process}: {said}");
        assert_eq!(common::newest_checkpoint(&dir.join("ckpt")), None);
    }
}

/// With `--follow`, the file is read by process 0: killed (both
/// processes) at random moments while it grows, then stopped by SIGTERM
/// once all was read, the run ends as one never interrupted.
#[test]
fn a_followed_file_on_two_processes_killed_while_it_grows_ends_as_an_uninterrupted_run() {
    let dir = setup("processes_live", 0);
    let rules = format!(
        "{}\npattern sentinel {{\n    match s\n    where s: type == \"sentinel\"\n}}\n",
        crash::PATTERNS
    );
    fs::write(dir.join("rules.cep"), rules).unwrap();
    let mut text = crash::events(20_000);
    text.push_str("{\"ts\":203000,\"type\":\"sentinel\"}\n{\"ts\":206000,\"type\":\"tick\"}\n");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let events = dir.join("events.jsonl");
    let sentinel = "\"pattern\":\"sentinel\"";

    fs::write(&events, &text).unwrap();
    let whole = Pair::start(&dir, "whole", &["--follow"]);
    wait_for(&dir, "out_whole.jsonl", sentinel);
    terminate(&dir, "whole", whole);
    let expected = summary(&dir, "whole");
    assert!(
        expected.contains(" waiting for the watermark "),
        "{expected}"
    );
    assert!(!expected.contains(" 0 late"), "{expected}");

    let resumable = [
        "--follow",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "20ms",
    ];
    let mut moments = Moments(0xF0110);
    fs::write(&events, "").unwrap();
    let mut kills = 0;
    for part in lines.chunks(lines.len() / 4 + 1) {
        let resumed = complete(&dir).is_some();
        let mut pair = Pair::start(&dir, "killed", &resumable);
        if resumed {
            // It has truncated the outputs once it says so.
            wait_for(&dir, "err_killed.txt", "resuming from checkpoint in ckpt");
        }
        let (pace, slices) = (Duration::from_millis(10), part.chunks(200));
        let kill_at = moments.between(Duration::from_millis(200), Duration::from_millis(900));
        let started = Instant::now();
        for slice in slices {
            let mut file = fs::OpenOptions::new().append(true).open(&events).unwrap();
            std::io::Write::write_all(&mut file, slice.concat().as_bytes()).unwrap();
            std::thread::sleep(pace);
        }
        if part.last().is_some_and(|l| l.contains("tick")) {
            wait_for(&dir, "out_killed.jsonl", sentinel);
            terminate(&dir, "killed", pair);
            break;
        }
        std::thread::sleep(kill_at.saturating_sub(started.elapsed()));
        assert!(!pair.ended(), "{}", stderr(&dir, "killed"));
        let first = (moments.next() % 2) as usize;
        pair.kill(first, Duration::from_millis(moments.next() % 20));
        kills += 1;
    }
    assert_eq!(kills, 3);
    let said = stderr(&dir, "killed");
    assert!(
        said.contains("checkpoint taken in ckpt as the run stopped"),
        "{said}"
    );
    assert_eq!(summary(&dir, "killed"), expected, "{said}");
    assert_same(&dir, "after 3 kills of a followed run");
}

/// When a peer process dies, the survivor exited with status 101 (a panic
/// of timely's networking while joining it) and a backtrace per thread,
/// without a word on what to do. It stops with exit 4, one line per
/// stopped thread, and says how to go on (issue 26).
#[test]
fn when_a_peer_process_dies_the_survivor_stops_with_exit_4_and_a_hint() {
    let dir = setup("processes_peer_dies", 20_000);
    // A followed file: the run never ends by itself, however fast the
    // machine reads (200,000 events read to their end before the first
    // cut on a fast one, and the test failed).
    let args = [
        "--follow",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "20ms",
    ];
    let mut pair = Pair::start(&dir, "peer", &args);
    // Both connected and working: a cut is complete.
    let started = Instant::now();
    while complete(&dir).is_none() && !pair.ended() {
        assert!(started.elapsed() < LIMIT, "no cut in {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !pair.ended(),
        "the run ended before process 1 could be killed"
    );
    let _ = pair.0[1].kill();
    let _ = pair.0[1].wait();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = pair.0[0].try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the survivor did not stop");
        std::thread::sleep(Duration::from_millis(5));
    };
    let said = stderr(&dir, "peer");
    assert_eq!(status.code(), Some(4), "{said}");
    assert!(
        said.contains("error: the connection to another process was lost (it stopped, or its machine or the network went away); this process stops too: start every process again with the same --checkpoint, they go on from its last complete cut"),
        "{said}"
    );
    assert!(!said.contains("stack backtrace"), "{said}");
}

/// `--processes 2` as the README shows it, `--late` on process 0 only: the
/// late events that process 1 read never reached the late file, while the
/// summary counted them. Every process's late events reach it, and the
/// summary agrees (issue 26).
#[test]
fn the_late_events_of_every_process_reach_process_0s_late_file() {
    let dir = setup("processes_late", 50_000);
    two_hosts(&dir);
    let start = |process: &str, files: &[&str]| {
        process_of_two(&dir, process)
            .args(["--chunk-bytes", "65536", "--max-delay", "0ms"])
            .args(files)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let zero = start("0", &["--output", "out.jsonl", "--late", "late.jsonl"]);
    std::thread::sleep(Duration::from_millis(50));
    let one = start("1", &[]);
    let zero = zero.wait_with_output().unwrap();
    let one = one.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&zero.stderr).into_owned();
    assert!(zero.status.success(), "{said}");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let summary = crash::summary(&said);
    let late: u64 = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" late"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no late count: {summary}"));
    assert!(late > 100, "{summary}");
    let written = fs::read_to_string(dir.join("late.jsonl")).unwrap();
    assert_eq!(written.lines().count() as u64, late, "{summary}");
}

/// The processes of `--processes P` never checked that they ran the same
/// command: another `--max-delay`, other rules (a rolling deploy), another
/// events file gave silent wrong records with exit 0. They agree on what
/// must match before any record moves, and refuse clearly otherwise
/// (exit 2, naming what differs; issue 26).
#[test]
fn processes_running_other_commands_refuse_to_start_naming_what_differs() {
    let dir = setup("processes_differ", 5_000);
    fs::write(
        dir.join("other.cep"),
        "pattern other {\n    match a\n    where a: type == \"created\"\n}\n",
    )
    .unwrap();
    fs::copy(dir.join("events.jsonl"), dir.join("copy.jsonl")).unwrap();
    let mut text = fs::read(dir.join("events.jsonl")).unwrap();
    text.extend_from_slice(b"{\"ts\":1,\"type\":\"created\",\"order\":\"x\"}\n");
    fs::write(dir.join("longer.jsonl"), text).unwrap();
    let pair = |one: &[&str]| {
        two_hosts(&dir);
        let start = |process: &str, extra: &[&str]| {
            // (`extra` replaces the events file or the delay, or adds)
            let flag = |name: &str, default: &'static str| -> String {
                extra
                    .iter()
                    .position(|a| *a == name)
                    .map_or(default.to_string(), |i| extra[i + 1].to_string())
            };
            let (events, delay) = (flag("--events", "events.jsonl"), flag("--max-delay", "2s"));
            let mut args: Vec<String> = ["rules.cep", "--events", &events, "--max-delay", &delay]
                .iter()
                .map(|a| a.to_string())
                .collect();
            let mut rest = extra.iter();
            while let Some(a) = rest.next() {
                if *a == "--events" || *a == "--max-delay" {
                    rest.next();
                } else {
                    args.push(a.to_string());
                }
            }
            let mut command = cepheid();
            command
                .current_dir(&dir)
                .arg("run")
                .args(&args)
                .args(["--no-progress", "--processes", "2", "--process", process])
                .args(["--hostfile", "hosts"]);
            spawn_process(&mut command, process)
        };
        let zero = start("0", &[]);
        std::thread::sleep(Duration::from_millis(50));
        let one = start("1", one);
        (
            zero.wait_with_output().unwrap(),
            one.wait_with_output().unwrap(),
        )
    };
    let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // The same command (the events file by another name, the same bytes):
    // they run.
    let (zero, one) = pair(&["--events", "copy.jsonl"]);
    assert!(zero.status.success(), "{}", said(&zero));
    assert!(one.status.success(), "{}", said(&one));
    for (extra, differs) in [
        (
            &["--max-delay", "3s"][..],
            "its --max-delay is 3000 ms, this one's (process 0) 2000 ms",
        ),
        (&["--events", "longer.jsonl"][..], "its --events is "),
        (
            &["other.cep"][..],
            "its the rules (FNV-1a of their text) is ",
        ),
        (
            &["--workers", "2"][..],
            "its --workers is 2, this one's (process 0) 1",
        ),
    ] {
        let (zero, one) = pair(extra);
        assert_eq!(zero.status.code(), Some(2), "{extra:?}: {}", said(&zero));
        assert_eq!(one.status.code(), Some(2), "{extra:?}: {}", said(&one));
        let message = format!("error: process 1 runs another command: {differs}");
        assert!(said(&zero).contains(&message), "{extra:?}: {}", said(&zero));
        assert!(
            said(&one).contains("error: process 0 runs another command: "),
            "{}",
            said(&one)
        );
    }
}

/// Starts `command` as process `process` of two: process 0 writes
/// `out.jsonl`; standard error piped, the rest closed.
fn spawn_process(command: &mut Command, process: &str) -> Child {
    if process == "0" {
        command.args(["--output", "out.jsonl"]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Processes that would go on from different cuts (a folder copied, not
/// shared; a sink's choice one of them did not learn) refuse to start,
/// naming the cut each resumes: they would have given silent wrong
/// records.
#[test]
fn processes_resuming_different_cuts_refuse_to_start_naming_them() {
    let dir = setup("processes_other_cuts", 5_000);
    let run = |zero: &str, one: &str| {
        two_hosts(&dir);
        let start = |process: &str, folder: &str| {
            let mut command = process_of_two(&dir, process);
            command
                .args(["--chunk-bytes", "65536", "--max-delay", "2s"])
                .args(["--checkpoint", folder, "--checkpoint-every", "20ms"]);
            spawn_process(&mut command, process)
        };
        let (zero, one) = (start("0", zero), start("1", one));
        (
            zero.wait_with_output().unwrap(),
            one.wait_with_output().unwrap(),
        )
    };
    let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let (zero, one) = run("ckpt", "ckpt");
    assert!(zero.status.success(), "{}", said(&zero));
    assert!(one.status.success(), "{}", said(&one));
    let old = complete(&dir).expect("a cut");
    let copied = Command::new("cp")
        .current_dir(&dir)
        .args(["-r", "ckpt", "ckpt-old"])
        .status()
        .unwrap();
    assert!(copied.success());
    // The file grows, a run on the shared folder goes on: a newer cut.
    let more = crash::events(7_000);
    let tail: String = more.lines().skip(5_000).map(|l| format!("{l}\n")).collect();
    let mut events = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("events.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut events, tail.as_bytes()).unwrap();
    let (zero, one) = run("ckpt", "ckpt");
    assert!(zero.status.success(), "{}", said(&zero));
    assert!(one.status.success(), "{}", said(&one));
    let new = complete(&dir).expect("a cut");
    assert_ne!(old, new);
    let number = |cut: &str| cut.trim_start_matches("cut-").to_string();
    let (zero, one) = run("ckpt", "ckpt-old");
    assert_eq!(zero.status.code(), Some(2), "{}", said(&zero));
    assert_eq!(one.status.code(), Some(2), "{}", said(&one));
    let message = format!(
        "error: process 1 runs another command: its the checkpoint resumed is number {}, this one's (process 0) number {}",
        number(&old),
        number(&new)
    );
    assert!(said(&zero).contains(&message), "{}", said(&zero));
}

/// With a checkpoint folder per process (a mistake: they must share one),
/// no cut is ever complete; process 1's cuts piled up in its folder (29 MB
/// in 4 s at 100 ms). A process deletes its unfinished cuts below the one
/// it writes (issue 26).
#[test]
fn with_a_folder_per_process_abandoned_cuts_do_not_pile_up() {
    let dir = setup("processes_own_folders", 100_000);
    two_hosts(&dir);
    let start = |process: &str, extra: &[&str]| {
        process_of_two(&dir, process)
            .args(["--chunk-bytes", "65536", "--max-delay", "2s"])
            .args([
                "--checkpoint",
                &format!("ckpt{process}"),
                "--checkpoint-every",
                "20ms",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let zero = start("0", &["--output", "out.jsonl"]);
    std::thread::sleep(Duration::from_millis(50));
    let one = start("1", &[]);
    let zero = zero.wait_with_output().unwrap();
    let one = one.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&zero.stderr).into_owned();
    assert!(zero.status.success(), "{said}");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(said.contains("no checkpoint could be completed"), "{said}");
    let cuts = fs::read_dir(dir.join("ckpt1"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("part-")
        })
        .count();
    // (a worker deletes what is left below the cut before its newest
    // piece: that one may be being completed when the folder is shared)
    assert!(cuts <= 2, "{cuts} cuts left in process 1's folder");
}

/// The outputs of `--processes 2` (written by process 0) rotated while a
/// followed run goes on (logrotate's `create`: moved away) and while it
/// is stopped (`copytruncate`): each goes on in the new file, and the
/// resumed run starts the truncated one empty with the records after its
/// cut, as the single run does (issue 26).
#[test]
fn outputs_of_two_processes_rotated_while_running_and_stopped_go_on_in_the_new_files() {
    let dir = setup("processes_rotated", 0);
    let rules = format!(
        "{}\npattern sentinel {{\n    match s\n    where s: type == \"sentinel\"\n}}\n",
        crash::PATTERNS
    );
    fs::write(dir.join("rules.cep"), rules).unwrap();
    let mut text = crash::events(9_000);
    text.push_str("{\"ts\":93000,\"type\":\"sentinel\"}\n{\"ts\":96000,\"type\":\"tick\"}\n");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let parts: Vec<String> = lines
        .chunks(lines.len() / 3 + 1)
        .map(<[&str]>::concat)
        .collect();
    assert_eq!(parts.len(), 3);
    let events = dir.join("events.jsonl");
    let sentinel = "\"pattern\":\"sentinel\"";
    let append = |text: &str| {
        let mut file = fs::OpenOptions::new().append(true).open(&events).unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    };

    fs::write(&events, &text).unwrap();
    let whole = Pair::start(&dir, "whole", &["--follow"]);
    wait_for(&dir, "out_whole.jsonl", sentinel);
    terminate(&dir, "whole", whole);

    let resumable = [
        "--follow",
        "--checkpoint",
        "ckpt",
        "--checkpoint-every",
        "20ms",
    ];
    let outputs = ["out_rot.jsonl", "late_rot.jsonl"];
    fs::write(&events, &parts[0]).unwrap();
    let pair = Pair::start(&dir, "rot", &resumable);
    // Rotated (moved away) once records are out; the late file too.
    wait_for(&dir, "out_rot.jsonl", "{");
    for name in outputs {
        fs::rename(dir.join(name), dir.join(format!("{name}.1"))).unwrap();
    }
    append(&parts[1]);
    wait_for(&dir, "out_rot.jsonl", "{");
    terminate(&dir, "rot", pair);
    assert!(
        stderr(&dir, "rot").contains("checkpoint taken in ckpt as the run stopped"),
        "{}",
        stderr(&dir, "rot")
    );
    // Copied and truncated while stopped.
    for name in outputs {
        fs::copy(dir.join(name), dir.join(format!("{name}.2"))).unwrap();
        fs::write(dir.join(name), b"").unwrap();
    }
    append(&parts[2]);
    let pair = Pair::start(&dir, "rot", &resumable);
    wait_for(&dir, "err_rot.txt", "resuming from checkpoint in ckpt");
    wait_for(&dir, "out_rot.jsonl", sentinel);
    terminate(&dir, "rot", pair);
    let said = stderr(&dir, "rot");
    assert!(
        said.contains("warning: checkpoint in ckpt: out_rot.jsonl was rotated since"),
        "{said}"
    );
    for (name, whole) in outputs.iter().zip(["out_whole.jsonl", "late_whole.jsonl"]) {
        let pieces: Vec<Vec<u8>> = [format!("{name}.1"), format!("{name}.2"), name.to_string()]
            .iter()
            .map(|piece| fs::read(dir.join(piece)).unwrap())
            .collect();
        assert!(!pieces[2].contains(&0), "NUL bytes in the new {name}");
        let mut lines: Vec<Vec<u8>> = (pieces.concat().split(|&b| b == b'\n'))
            .map(<[u8]>::to_vec)
            .collect();
        lines.sort();
        assert!(
            lines == sorted(&dir, whole),
            "{name}.1, {name}.2 and {name} are not the records of one run"
        );
    }
    let moved = fs::read_to_string(dir.join("out_rot.jsonl.1")).unwrap();
    assert!(
        !moved.contains(sentinel),
        "records went on in the moved file"
    );
}

/// `--rules-from-stream` with `--checkpoint` on two processes (it was
/// refused): both killed after cuts taken around three changes of rules
/// (each resumed run goes on with the cut's rules and the changes pending
/// at it), the rest resumed on one process of three workers (the cut
/// rescaled): the outputs (sorted) and the summary of a run never
/// interrupted.
#[test]
fn rule_changes_on_two_processes_killed_and_rescaled_end_as_an_uninterrupted_run() {
    let dir = crate::cli_workers_rules::changing_stream("processes_rules", 60_000);
    // (a delay above the stream's disorder: no event is late on any layout)
    let rules = ["--rules-from-stream", "--rules-dir", "."];
    let mut whole = Pair::start_with(&dir, "whole", "3s", &rules);
    let said = stderr(&dir, "whole");
    assert_eq!(whole.wait(), [Some(0), Some(0)], "{said}");
    let expected = summary(&dir, "whole");
    assert!(expected.contains(", 3 rule reloads"), "{expected}");
    let every = ["--checkpoint", "ckpt", "--checkpoint-every", "20ms"];
    let resumable = [&rules[..], &every[..]].concat();
    let mut kills = 0;
    for _ in 0..4 {
        let before = complete(&dir);
        let mut pair = Pair::start_with(&dir, "killed", "3s", &resumable);
        after_a_cut(&dir, &before, &mut || pair.ended());
        if pair.ended() {
            assert_eq!(
                pair.wait(),
                [Some(0), Some(0)],
                "{}",
                stderr(&dir, "killed")
            );
            break;
        }
        pair.kill(kills % 2, Duration::from_millis(5));
        kills += 1;
    }
    let last = command_with(&dir, "killed", &["--workers", "3"], "3s", &resumable)
        .status()
        .unwrap();
    let said = stderr(&dir, "killed");
    assert!(last.success(), "{said}");
    assert!(
        kills > 0 && said.contains("resuming from checkpoint"),
        "{said}"
    );
    assert_same(&dir, &format!("after {kills} kills, resumed on 3 workers"));
    assert_eq!(summary(&dir, "killed"), expected, "after {kills} kills");
}
