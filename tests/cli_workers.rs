//! `cepheid run --workers N` and `--processes 2` (feature `timely`) write
//! the lines plain `cepheid run` writes: the same matches, timeouts and late
//! events, in another order (equal once sorted), for random keyed streams
//! over every pattern of `patterns/` (plus one pattern without `partition
//! by` and one keyed by two fields). Layouts: 1, 2 and 4 worker threads
//! over a file cut in chunks (disorder within `--max-delay`), the same from
//! standard input (worker 0 reads, with disorder beyond the delay and
//! `$watermark` lines, so late events too), and two real processes of one
//! worker each on 127.0.0.1 (free ports, killed after 60 s).

use crate::common;
use crate::dataflow_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

use dataflow_support::{event, lines, pattern_files, EXTRA};

const BIN: &str = env!("CARGO_BIN_EXE_cepheid");
/// Longest a run may take before it counts as a hang and is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// A folder under `target/tmp` removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli_workers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creates the folder");
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Children killed when dropped (a failed assertion kills them too).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Children {
    /// Waits for every child (at most [`LIMIT`] in all); their exit codes.
    fn wait(&mut self) -> Vec<Option<i32>> {
        let deadline = Instant::now() + LIMIT;
        let mut codes = vec![None; self.0.len()];
        let mut done = vec![false; self.0.len()];
        while done.iter().any(|d| !d) {
            assert!(Instant::now() < deadline, "a run took over {LIMIT:?}");
            for (i, child) in self.0.iter_mut().enumerate() {
                if !done[i] {
                    if let Some(status) = child.try_wait().expect("waits") {
                        codes[i] = status.code();
                        done[i] = true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        codes
    }
}

/// The run's arguments but the output files.
fn base(dir: &Path, delay: i64) -> Vec<String> {
    let mut args = vec!["run".to_string()];
    args.extend(pattern_files().iter().map(|p| p.display().to_string()));
    args.push(dir.join("extra.cep").display().to_string());
    args.extend(["--max-delay".into(), format!("{delay}ms")]);
    args
}

/// Runs `cepheid` with `args` (writing `out` and `late` in `dir`), the
/// input file or `stdin`; returns the sorted output and late lines.
fn run(dir: &Path, args: &[String], input: &Path, stdin: bool, name: &str) -> Outputs {
    let (out, late, shadow) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.late")),
        dir.join(format!("{name}.shadow")),
    );
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--output")
        .arg(&out)
        .arg("--late")
        .arg(&late)
        .arg("--shadow-output")
        .arg(&shadow)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if stdin {
        command.stdin(std::fs::File::open(input).expect("input"));
    } else {
        command.arg("--events").arg(input).stdin(Stdio::null());
    }
    let mut children = Children(vec![command.spawn().expect("runs cepheid")]);
    let codes = children.wait();
    let stderr = read_stderr(&mut children.0[0]);
    assert_eq!(codes, [Some(0)], "{name}: {stderr}");
    (sorted(&out), sorted(&late), sorted(&shadow))
}

/// A run's sorted output, late and shadow lines (`EXTRA` has shadow
/// patterns, which write lists' shadow copies).
type Outputs = (Vec<String>, Vec<String>, Vec<String>);

/// `run` without `--shadow-output` (for `--output-per-worker`).
fn run_without_shadow(dir: &Path, args: &[String], input: &Path, name: &str) -> Outputs {
    let (out, late) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.late")),
    );
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--output")
        .arg(&out)
        .arg("--late")
        .arg(&late)
        .arg("--events")
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs cepheid");
    let status = child.wait().expect("cepheid ends");
    let stderr = read_stderr(&mut child);
    assert!(status.success(), "{name}: {stderr}");
    (sorted(&out), sorted(&late), Vec::new())
}

/// `rules` without its `shadow` patterns (each `pattern ... {` block up
/// to its closing `}` at the start of a line).
fn without_shadow(rules: &str) -> String {
    let mut kept = String::new();
    let mut block: Option<String> = None;
    for line in rules.lines() {
        match &mut block {
            Some(text) => {
                text.push_str(line);
                text.push('\n');
                if line == "}" {
                    let text = block.take().unwrap_or_default();
                    if !text.lines().any(|l| l.trim() == "shadow") {
                        kept.push_str(&text);
                    }
                }
            }
            None if line.starts_with("pattern ") => block = Some(format!("{line}\n")),
            None => {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    assert!(block.is_none(), "a pattern block without its closing brace");
    kept
}

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

fn sorted(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Two processes of one worker each over `input`; process 0's sorted
/// output, late and shadow lines.
fn two_processes(dir: &Path, args: &[String], input: &Path) -> Outputs {
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, {
        let ports = common::free_ports(2);
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1])
    })
    .expect("writes the hostfile");
    let mut children = Children(Vec::new());
    for process in 0..2 {
        let (out, late, shadow) = (
            dir.join(format!("proc{process}.out")),
            dir.join(format!("proc{process}.late")),
            dir.join(format!("proc{process}.shadow")),
        );
        let child = Command::new(BIN)
            .args(args)
            .arg("--events")
            .arg(input)
            .args(["--processes", "2", "--process", &process.to_string()])
            .args(["--chunk-bytes", "3000"])
            .arg("--hostfile")
            .arg(&hostfile)
            .arg("--output")
            .arg(&out)
            .arg("--late")
            .arg(&late)
            .arg("--shadow-output")
            .arg(&shadow)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs cepheid");
        children.0.push(child);
    }
    let codes = children.wait();
    let stderr = read_stderr(&mut children.0[0]);
    assert_eq!(codes, [Some(0), Some(0)], "two processes: {stderr}");
    // Only process 0 writes.
    assert_eq!(sorted(&dir.join("proc1.out")), Vec::<String>::new());
    (
        sorted(&dir.join("proc0.out")),
        sorted(&dir.join("proc0.late")),
        sorted(&dir.join("proc0.shadow")),
    )
}

fn case_rng(index: u64) -> TestRunner {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}

#[test]
fn every_layout_writes_what_one_engine_writes() {
    let dir = Dir::new("layouts");
    std::fs::write(dir.0.join("extra.cep"), EXTRA).expect("writes extra.cep");
    let mut any = [false; 3];
    for case in 0..4u64 {
        let mut runner = case_rng(case);
        let events = prop::collection::vec(event(), 200..600)
            .new_tree(&mut runner)
            .expect("a stream")
            .current();
        let delay = [0, 3_000, 10_000, 25_000][case as usize];
        let args = base(&dir.0, delay);

        // A file cut in parts: disorder within the delay.
        let input = dir.0.join("within.jsonl");
        std::fs::write(&input, lines(&events, delay, true).join("\n") + "\n").expect("input");
        let expected = run(&dir.0, &args, &input, false, "plain");
        any[0] |= expected.0.iter().any(|l| l.contains("\"kind\":\"match\""));
        any[1] |= expected
            .0
            .iter()
            .any(|l| l.contains("\"kind\":\"timeout\""));
        for workers in ["1", "2", "4"] {
            let mut scaled = args.clone();
            // Chunks of 2,000 bytes: many per worker.
            scaled.extend(["--workers", workers, "--chunk-bytes", "2000"].map(String::from));
            let got = run(&dir.0, &scaled, &input, false, &format!("w{workers}"));
            assert_eq!(got, expected, "case {case}: --workers {workers}");
        }
        let got = two_processes(&dir.0, &args, &input);
        assert_eq!(got, expected, "case {case}: 2 processes");
        // One output file per worker: together, the same lines.
        let mut scaled = args.clone();
        scaled.extend(
            [
                "--workers",
                "2",
                "--chunk-bytes",
                "2000",
                "--output-per-worker",
            ]
            .map(String::from),
        );
        // (`--output-per-worker` takes no shadow output: the rules
        // without their shadow patterns, which change no live record)
        let live = dir.0.join("extra_live.cep");
        std::fs::write(&live, without_shadow(EXTRA)).expect("writes extra_live.cep");
        for arg in &mut scaled {
            if arg.ends_with("extra.cep") {
                *arg = live.display().to_string();
            }
        }
        let (empty, late, shadow) = run_without_shadow(&dir.0, &scaled, &input, "own");
        assert!(empty.is_empty(), "nothing at the plain --output path");
        let mut together = sorted(&dir.0.join("own.out.0"));
        together.extend(sorted(&dir.0.join("own.out.1")));
        together.sort();
        assert!(shadow.is_empty());
        assert_eq!(
            (&together, &late),
            (&expected.0, &expected.1),
            "case {case}: --output-per-worker"
        );

        // Standard input, read by worker 0: late events too.
        let input = dir.0.join("beyond.jsonl");
        std::fs::write(
            &input,
            lines(&events, delay.max(1), false).join("\n") + "\n",
        )
        .expect("input");
        let mut args = base(&dir.0, delay.max(1));
        args.push("--flush-at-end".into());
        let expected = run(&dir.0, &args, &input, true, "plain-stdin");
        any[2] |= !expected.1.is_empty();
        for workers in ["2", "4"] {
            let mut scaled = args.clone();
            scaled.extend(["--workers".into(), workers.into()]);
            let got = run(&dir.0, &scaled, &input, true, &format!("stdin-w{workers}"));
            assert_eq!(got, expected, "case {case}: stdin, --workers {workers}");
        }
    }
    assert_eq!(
        any, [true; 3],
        "matches, timeouts and late events were all seen"
    );
}

#[test]
fn csv_parts_read_the_header_and_malformed_lines_keep_their_numbers() {
    let dir = Dir::new("csv");
    let pattern = dir.0.join("p.cep");
    std::fs::write(
        &pattern,
        "pattern p { partition by k  match a followed by b  where a: t == 0  b: t == 1 }",
    )
    .expect("pattern");
    let mut csv = String::from("ts,k,t\n");
    for i in 0..400 {
        if i == 300 {
            csv.push_str("oops,\"\n");
        }
        csv.push_str(&format!("{},{},{}\n", i, i % 7, (i / 7) % 2));
    }
    let input = dir.0.join("in.csv");
    std::fs::write(&input, &csv).expect("input");
    let args: Vec<String> = vec![
        "run".into(),
        pattern.display().to_string(),
        "--format".into(),
        "csv".into(),
    ];
    let plain = Command::new(BIN)
        .args(&args)
        .arg("--events")
        .arg(&input)
        .output()
        .expect("runs");
    let scaled = Command::new(BIN)
        .args(&args)
        .arg("--events")
        .arg(&input)
        .args(["--workers", "3", "--chunk-bytes", "500"])
        .output()
        .expect("runs");
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(scaled.status.code(), Some(0));
    let lines = |out: &[u8]| {
        let mut l: Vec<String> = String::from_utf8_lossy(out)
            .lines()
            .map(String::from)
            .collect();
        l.sort();
        l
    };
    assert!(!lines(&plain.stdout).is_empty());
    assert_eq!(lines(&scaled.stdout), lines(&plain.stdout));
    // Line 302 of the file (the header is line 1).
    let stderr = String::from_utf8_lossy(&scaled.stderr);
    assert!(stderr.contains("in.csv:302: malformed line"), "{stderr}");
    assert!(stderr.contains("1 malformed"), "{stderr}");
}

#[test]
fn options_the_workers_do_not_take_are_refused() {
    for extra in [
        &["--workers", "2", "--time", "processing"][..],
        &["--workers", "2", "--checkpoint", "ckpt"],
        &["--processes", "2", "--process", "0", "--hostfile", "none"],
        &[
            "--processes",
            "2",
            "--process",
            "2",
            "--hostfile",
            "none",
            "--output",
            "x",
        ],
    ] {
        let out = Command::new(BIN)
            .args(["run", "patterns/brute_force.cep", "--events", "-"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// More workers than the machine runs threads at once: said as a warning
/// at the start, and the run writes what one engine writes.
#[test]
fn more_workers_than_cores_is_said() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let run = |extra: &[String]| {
        let out = Command::new(BIN)
            .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
            .args(["--no-progress", "--chunk-bytes", "1000"])
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs");
        assert!(out.status.success(), "{out:?}");
        let mut lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        (lines, String::from_utf8(out.stderr).unwrap())
    };
    let (plain, _) = run(&[]);
    let over = (cores + 1).to_string();
    let (lines, stderr) = run(&["--workers".into(), over.clone()]);
    assert_eq!(lines, plain);
    let warning = format!(
        "warning: --workers {over} on a machine that runs {cores} threads at once: the workers share its cores, which only adds their coordination; give at most --workers {cores} here"
    );
    assert_eq!(stderr.lines().next(), Some(warning.as_str()), "{stderr}");
    let (_, stderr) = run(&["--workers".into(), cores.to_string()]);
    assert!(!stderr.contains("warning: --workers"), "{stderr}");
}

/// `a followed by b` per key `k` within 300 ms, with timeouts.
const QUICK: &str = r#"
pattern quick {
    partition by k
    within 300ms
    timeouts
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

fn ev(ts: i64, kind: &str, k: u32) -> String {
    format!("{{\"ts\":{ts},\"type\":\"{kind}\",\"k\":{k}}}\n")
}

#[test]
fn a_slow_pipe_is_read_live_and_idle_time_fires_timeouts_on_two_workers() {
    // Standard input stays open between writes: each record is read as it
    // comes (never after a sleep; each with a generous deadline).
    let dir = common::scratch("workers_live");
    std::fs::write(dir.join("p.cep"), QUICK).unwrap();
    let mut live = common::Live::run(
        &dir.join("p.cep"),
        &["--workers", "2", "--idle-timeout", "100ms"],
    );
    // Keys 1 and 2 go to different workers or not: either way the match is
    // released when the event at 30 moves the watermark to 29.
    live.write(&[ev(10, "a", 1), ev(20, "b", 1), ev(30, "x", 2)].concat());
    let matched = live.record("a match while standard input is open");
    assert_eq!(
        (matched["kind"].as_str(), matched["end"].as_i64()),
        (Some("match"), Some(20))
    );
    // A quiet stream: event time follows the clock, the window of key 3
    // closes without another event.
    live.write(&ev(1_000, "a", 3));
    let timeout = live.record("a timeout on a quiet pipe");
    assert_eq!(timeout["kind"], "timeout");
    assert_eq!(timeout["expired_at"], 1_300);
    // An event behind the clock's time is late.
    live.write(&ev(1_001, "b", 3));
    live.close();
    let (status, rest, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        stderr.contains("5 events read, 0 malformed, 1 late, 1 match, 1 timeout"),
        "{stderr}"
    );
}

#[test]
fn follow_on_two_workers_stops_cleanly_on_sigterm() {
    let dir = common::scratch("workers_follow");
    std::fs::write(dir.join("p.cep"), QUICK).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        [ev(10, "a", 1), ev(20, "b", 1), ev(30, "a", 2)].concat(),
    )
    .unwrap();
    let live = common::Live::run(
        &dir.join("p.cep"),
        &[
            "--workers",
            "2",
            "--follow",
            "--events",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(live.record("a match from the followed file")["end"], 20);
    // Appended while it runs.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        [ev(40, "b", 2), ev(50, "x", 9)].concat().as_bytes(),
    )
    .unwrap();
    assert_eq!(live.record("a match from appended lines")["end"], 40);
    live.signal("TERM");
    let (status, rest, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains("cepheid: stopped by SIGTERM"), "{stderr}");
    // The event at 50 waits for the watermark: counted, not forced out.
    assert!(
        stderr.contains(", 1 waiting for the watermark (not processed: stopped by SIGTERM)"),
        "{stderr}"
    );
}

#[test]
fn max_waiting_forces_the_watermark_as_one_engine_does() {
    // A burst at one time: with at most 3 waiting, the watermark moves up
    // and later events at that time are late; one reader (standard input
    // or one worker's file) decides exactly as the single engine.
    let dir = Dir::new("max_waiting");
    let pattern = dir.0.join("p.cep");
    std::fs::write(&pattern, QUICK).unwrap();
    let mut input = String::new();
    for i in 0..12 {
        input.push_str(&ev(100, if i % 2 == 0 { "a" } else { "b" }, i % 3));
    }
    input.push_str(&ev(99, "b", 1));
    input.push_str(&ev(500, "x", 1));
    let file = dir.0.join("in.jsonl");
    std::fs::write(&file, &input).unwrap();
    let go = |extra: &[&str], stdin: bool| {
        let mut command = Command::new(BIN);
        command
            .args(["run", pattern.to_str().unwrap(), "--max-waiting", "3"])
            .args(extra);
        if stdin {
            command.stdin(std::fs::File::open(&file).unwrap());
        } else {
            command
                .args(["--events", file.to_str().unwrap()])
                .stdin(Stdio::null());
        }
        let out = command.output().expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // (the summary's first line: one engine's lines per pattern follow)
        let summary = crate::common::crash::summary(&stderr);
        (lines, summary)
    };
    let (plain, summary) = go(&[], false);
    assert!(summary.contains("over --max-waiting"), "{summary}");
    assert!(!summary.contains(" 0 late"), "{summary}");
    for (extra, stdin) in [
        (&["--workers", "1"][..], false),
        (&["--workers", "2"], true),
        (&["--workers", "3"], true),
    ] {
        let (lines, got) = go(extra, stdin);
        assert_eq!(lines, plain, "{extra:?}");
        assert_eq!(got, summary, "{extra:?}");
    }
}

/// Process `process` of two over `dir/events.jsonl` with QUICK, standard
/// error to `err{process}.txt`, output to `out{process}.jsonl`.
fn process(dir: &Path, process: usize) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .args(["run", "quick.cep", "--events", "events.jsonl"])
        .args(["--processes", "2", "--process", &process.to_string()])
        .args(["--hostfile", "hosts", "--chunk-bytes", "3000"])
        .args(["--output", &format!("out{process}.jsonl")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("err{process}.txt"))).unwrap())
        .spawn()
        .expect("runs cepheid")
}

/// Waits (at most [`LIMIT`]) until `dir/name` holds `text` `times` times.
fn wait_for(dir: &Path, name: &str, text: &str, times: usize) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let said = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if said.matches(text).count() >= times {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never said {text:?}: {said}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The processes may start in either order, and a connection to a
/// process's port that is not one of the run's processes (a port scanner,
/// a stray client) is dropped with a warning: the run goes on and writes
/// what one process writes.
#[test]
fn processes_start_in_any_order_and_strangers_are_dropped() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = Dir::new("connect");
    std::fs::write(dir.0.join("quick.cep"), QUICK).unwrap();
    let events: String = (0..3_000)
        .map(|i| ev(i * 10, ["a", "b", "x"][i as usize % 3], (i % 17) as u32))
        .collect();
    std::fs::write(dir.0.join("events.jsonl"), events).unwrap();
    let args: Vec<String> = ["run", "quick.cep"].map(String::from).to_vec();
    let input = dir.0.join("events.jsonl");
    let expected = {
        let mut args = args.clone();
        args[1] = dir.0.join("quick.cep").display().to_string();
        run(&dir.0, &args, &input, false, "one").0
    };
    assert!(expected.len() > 900, "{}", expected.len());
    for first in [1, 0] {
        let ports = common::free_ports(2);
        let port0 = ports[0];
        let hosts = format!("127.0.0.1:{port0}\n127.0.0.1:{}\n", ports[1]);
        std::fs::write(dir.0.join("hosts"), hosts).unwrap();
        let mut children = Children(vec![process(&dir.0, first)]);
        if first == 1 {
            // Process 1 waits for process 0 and says so.
            wait_for(&dir.0, "err1.txt", "waiting for process 0 at 127.0.0.1:", 1);
            children.0.push(process(&dir.0, 0));
        } else {
            // Two strangers reach process 0 before process 1 does.
            wait_for(&dir.0, "err0.txt", "waiting on 127.0.0.1:", 1);
            let mut garbage = TcpStream::connect(("127.0.0.1", port0)).unwrap();
            garbage.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut unknown = TcpStream::connect(("127.0.0.1", port0)).unwrap();
            unknown.write_all(&7u64.to_be_bytes()).unwrap();
            wait_for(&dir.0, "err0.txt", "is dropped: it says it is process ", 2);
            children.0.push(process(&dir.0, 1));
        }
        let codes = children.wait();
        let said = std::fs::read_to_string(dir.0.join("err0.txt")).unwrap();
        assert_eq!(codes, [Some(0), Some(0)], "{said}");
        assert!(said.contains("3000 events read, 0 malformed"), "{said}");
        assert_eq!(sorted(&dir.0.join("out0.jsonl")), expected);
        assert_eq!(sorted(&dir.0.join("out1.jsonl")), Vec::<String>::new());
    }
}

/// Every key that went over `--max-runs-per-key` was remembered by its
/// worker for the whole run (and written into every cut): each worker
/// remembers 10,000, and the summary says "more than" beyond (issue 26).
#[test]
fn keys_over_the_limit_are_remembered_up_to_a_bound_on_workers() {
    let dir = common::scratch("workers_drop_keys");
    std::fs::write(
        dir.join("pair.cep"),
        "pattern pair {\n    partition by k\n    match a followed by b\n    where\n        a: type == \"a\"\n        b: type == \"b\"\n}\n",
    )
    .unwrap();
    let mut events = String::new();
    for k in 0..30_000 {
        for ts in [2 * k, 2 * k + 1] {
            events += &format!("{{\"ts\":{ts},\"type\":\"a\",\"k\":{k}}}\n");
        }
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let out = common::cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "pair.cep",
            "--events",
            "events.jsonl",
            "--no-progress",
        ])
        .args([
            "--workers",
            "2",
            "--max-runs-per-key",
            "1",
            "--output",
            "out.jsonl",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            ", 30000 partial matches dropped in more than 20000 keys over --max-runs-per-key"
        ),
        "{stderr}"
    );
}

/// Rules that read indicators for groups their key does not fix run on
/// workers (their engines share the indicator over the whole stream:
/// `cli_workers_indicators.rs`), and give one engine's records; under
/// `--watch` (rules that can change) they are refused before the run,
/// exit 2, not run to a silently different output. Indicators read under
/// the key that fixes their groups run (`patterns/account_takeover.cep`,
/// the golden `w2_sample_*` runs); rules that write lists run
/// (`cli_workers_writes.rs`).
#[test]
fn rules_reading_other_keys_indicators_run_on_workers_and_are_refused_under_watch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Dir::new("refused_memory");
    let other_key = dir.0.join("other_key.cep");
    std::fs::write(
        &other_key,
        "indicator accounts_per_device = count_distinct(account) group by device within 1d\n\
         pattern p { partition by account match x where x: accounts_per_device(device) > 1 }\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        common::cepheid()
            .current_dir(root)
            .arg("run")
            .arg(&other_key)
            .args(["--events", "patterns/risk/events.jsonl"])
            .args(["--no-progress"])
            .args(extra)
            .output()
            .unwrap()
    };
    let one = run(&[]);
    assert!(one.status.success(), "{one:?}");
    assert!(!one.stdout.is_empty());
    let lines = |out: &std::process::Output| {
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let two = run(&["--workers", "2"]);
    assert!(two.status.success(), "{two:?}");
    assert_eq!(lines(&two), lines(&one));
    let out = run(&["--workers", "2", "--watch"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "pattern `p` reads indicator `accounts_per_device` for groups its `partition by account` does not fix",
        "in a run whose rules can change (--watch",
        "--workers and --processes do not run it as one engine does yet; run it on one engine",
    ] {
        assert!(stderr.contains(said), "{stderr}");
    }
    assert!(out.stdout.is_empty());
}

/// An output that cannot be written ends a run on workers as it ends one
/// engine's (one writer, issue 38): `/dev/full` (every write fails with
/// ENOSPC), with and without `--checkpoint` (before, a cut whose flush
/// failed said `cannot write the checkpoint in ckpt` and the end said the
/// output's error again), its error said once in the same words, no
/// summary, the same exit status; and a FIFO whose reader went away
/// (`| head`) ends it quietly, exit 0, as one engine's closed output
/// (before, the workers said it as an error but on standard output).
#[cfg(target_os = "linux")]
#[test]
fn an_output_that_cannot_be_written_ends_a_run_on_workers_as_on_one_engine() {
    let dir = common::scratch("workers_output_error");
    std::fs::write(
        dir.join("a.cep"),
        "pattern a {\n    partition by k\n    match a\n    where\n        a: type == \"a\"\n}\n",
    )
    .unwrap();
    // About 2 MB of matches: many blocks of every worker.
    let events: String = (0..20_000)
        .map(|i| format!("{{\"ts\":{i},\"type\":\"a\",\"k\":{}}}\n", i % 97))
        .collect();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let run = |output: &str, extra: &[&str]| {
        let out = common::cepheid()
            .current_dir(&dir)
            .args(["run", "a.cep", "--events", "events.jsonl", "--no-progress"])
            .args(["--output", output])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let said = "error: cannot write /dev/full: No space left on device (os error 28)";
    for checkpoint in [false, true] {
        // (a folder of each run's own)
        let folder = |name: &str| match checkpoint {
            true => vec!["--checkpoint".to_string(), format!("ckpt-{name}")],
            false => Vec::new(),
        };
        let args = |name: &str, workers: &[&str]| {
            let mut args = folder(name);
            args.extend(workers.iter().map(|w| w.to_string()));
            args
        };
        let with = |args: &[String]| {
            run(
                "/dev/full",
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        };
        let one = with(&args("one", &[]));
        let lines: Vec<&str> = one.1.lines().collect();
        assert_eq!(lines.last(), Some(&said), "{}", one.1);
        assert_eq!(lines.len(), 1 + usize::from(checkpoint), "{}", one.1);
        assert_ne!(one.0, Some(0));
        for workers in ["1", "2"] {
            let got = with(&args(workers, &["--workers", workers]));
            assert_eq!(got, one, "--workers {workers}, checkpoints {checkpoint}");
        }
    }
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for workers in [&[][..], &["--workers", "2"]] {
        // The reader takes a few bytes and goes.
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                let mut few = [0; 10];
                std::io::Read::read_exact(&mut std::fs::File::open(fifo).unwrap(), &mut few)
            }
        });
        let closed = run("fifo", workers);
        reader.join().unwrap().unwrap();
        assert_eq!(closed, (Some(0), String::new()), "{workers:?}");
    }
}

/// A change of rules (a `$rules` record, applied at its event time) adds
/// a pattern reading an indicator the rules declared from the start, to
/// a group of patterns already in force that read none: on workers it reads the
/// indicator's windows with the events before the change, as one engine
/// does (every group's engine keeps the rules' indicators from the start,
/// `Engine::set_declarations`). The records of `--workers 1`, `2` and `3`
/// are one engine's, and the added pattern matches on a count that holds
/// events from before the change.
#[test]
fn a_pattern_added_by_a_change_reads_the_indicators_history_on_workers() {
    let dir = Dir::new("indicator_change");
    let rules = |extra: &str| {
        format!(
            "indicator logins = count() where type == \"login\" group by user within 1h\n\
             pattern seen {{ partition by user match x where x: type == \"login\" }}\n{extra}"
        )
    };
    std::fs::write(dir.0.join("rules.cep"), rules("")).unwrap();
    let added = rules(
        "pattern third { partition by user match x where x: type == \"login\" and logins(user) >= 3 select n = logins(x.user) }\n",
    );
    let mut lines = Vec::new();
    for i in 0..40i64 {
        if i == 20 {
            lines.push(serde_json::json!({ "$rules": added }).to_string());
        }
        lines.push(format!(
            r#"{{"ts": {}, "type": "login", "user": "u{}"}}"#,
            i * 1000,
            i % 4
        ));
    }
    std::fs::write(dir.0.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let args: Vec<String> = vec![
        "run".into(),
        dir.0.join("rules.cep").display().to_string(),
        "--rules-from-stream".into(),
    ];
    let input = dir.0.join("events.jsonl");
    let expected = run(&dir.0, &args, &input, false, "one");
    // (the added pattern's first match is at the change: u0's 6th login)
    assert!(
        expected
            .0
            .iter()
            .any(|l| l.contains("\"pattern\":\"third\"") && l.contains("\"n\":6")),
        "{:?}",
        expected.0
    );
    for workers in ["1", "2", "3"] {
        let mut scaled = args.clone();
        scaled.extend(["--workers", workers].map(String::from));
        let got = run(&dir.0, &scaled, &input, false, &format!("w{workers}"));
        assert_eq!(got, expected, "--workers {workers}");
    }
}
