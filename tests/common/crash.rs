//! The stream, rules and comparisons of the kill-and-resume tests
//! (`cli_checkpoint.rs`, `cli_workers_checkpoint.rs`,
//! `cli_workers_rescale.rs`, `cli_workers_live_checkpoint.rs`,
//! `cli_processes_checkpoint.rs`): one run killed at random moments must end
//! as one never interrupted.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::scratch;

/// Three rules: windows with timeouts, a `not followed by` ending, and a
/// looping stage with a skip strategy and aggregates.
pub const PATTERNS: &str = r#"
pattern unpaid {
    partition by order
    within 30s
    timeouts
    match created followed by paid
    where
        created: type == "created"
        paid:    type == "paid"
    select
        order  = created.order
        amount = paid.amount
}

pattern never_paid {
    partition by order
    within 20s
    match created not followed by paid
    where
        created: type == "created"
        paid:    type == "paid"
}

pattern burst {
    partition by user
    within 10s
    skip past last event
    match fail{3,} consecutive
    where
        fail: type == "fail"
    select
        user     = fail.user
        attempts = count(fail)
        total    = sum(fail.amount)
}
"#;

/// Events: orders created and paid (or not), failures of users, about 10 ms
/// apart, up to 3 s out of order (so with `--max-delay 2s` some are late),
/// and now and then a malformed line.
pub fn events(n: usize) -> String {
    events_with(n, 0x5EED, 3000)
}

/// The same from generator state `seed`, each event up to `disorder_ms`
/// later than its place (0: in time order).
pub fn events_with(n: usize, seed: u64, disorder_ms: u64) -> String {
    let mut next = below_from(seed);
    let mut text = String::with_capacity(n * 60);
    for i in 0..n {
        let ts = i as u64 * 10
            + if disorder_ms > 0 {
                next(disorder_ms)
            } else {
                0
            };
        let line = match next(100) {
            0 if i % 7 == 0 => "{\"ts\": \"soon\"}\n".to_string(),
            0..=39 => format!(
                "{{\"ts\":{ts},\"type\":\"created\",\"order\":\"o{}\"}}\n",
                next(4000)
            ),
            40..=69 => format!(
                "{{\"ts\":{ts},\"type\":\"paid\",\"order\":\"o{}\",\"amount\":{}}}\n",
                next(4000),
                next(500)
            ),
            _ => format!(
                "{{\"ts\":{ts},\"type\":\"fail\",\"user\":\"u{}\",\"amount\":{}}}\n",
                next(200),
                next(50)
            ),
        };
        text.push_str(&line);
    }
    text
}

/// A folder with the patterns and `n` events.
pub fn setup(name: &str, n: usize) -> super::Scratch {
    let dir = scratch(name);
    fs::write(dir.join("rules.cep"), PATTERNS).unwrap();
    fs::write(dir.join("events.jsonl"), events(n)).unwrap();
    dir
}

/// The summary's numbers: its first line (`cepheid: N events read, ...`,
/// the last such line of a run's standard error; each pattern's line
/// follows it) without the time it took.
pub fn summary(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| is_summary(l))
        .unwrap_or_default();
    line.split(" in ").next().unwrap_or_default().to_string()
}

/// Is `line` the first line of a text summary (`cepheid: 102 events
/// read, ...`)?
pub fn is_summary(line: &str) -> bool {
    line.strip_prefix("cepheid: ").is_some_and(|rest| {
        let mut words = rest.split(' ');
        words.next().is_some_and(|n| n.parse::<u64>().is_ok())
            && matches!(words.next(), Some("event" | "events"))
            && words.next() == Some("read,")
    })
}

/// A file's lines, sorted bytewise (`LC_ALL=C sort`): the outputs of several
/// workers compared as multisets.
pub fn sorted(dir: &Path, file: &str) -> Vec<Vec<u8>> {
    let bytes = fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    lines.sort();
    lines
}

/// Numbers below a bound, each call's `below`, from `seed` (splitmix64):
/// the tests' deterministic event generators.
pub fn below_from(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |below: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % below
    }
}

/// A small deterministic generator of kill moments (a 64-bit LCG).
pub struct Moments(pub u64);

impl Moments {
    /// The next number, 31 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A moment in `lo..hi` (`lo` when the span is empty).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.next() % span.max(1))
    }
}

/// An output that is not a regular file with `--checkpoint`: `run(output,
/// folder)` (a run with checkpoints into `folder`, its late events to
/// `late_FOLDER.jsonl`) with `/dev/null` as its output twice (a first run
/// and one that resumes), then with a FIFO read to its end by another
/// thread. Each says first that the output is written as standard output
/// is; the late file is `late_whole.jsonl`'s, and the FIFO gets
/// `out_whole.jsonl`'s records, as `same` compares them (byte for byte on
/// one engine, as a multiset on workers).
#[cfg(unix)]
#[allow(dead_code)] // (not every harness runs it)
pub fn special_outputs(
    dir: &Path,
    run: impl Fn(&str, &str) -> std::process::Output,
    same: impl Fn(&[u8], &[u8]) -> bool,
) {
    let said = "cepheid: --output OUT is not a regular file: with --checkpoint it is written as standard output is (not synced nor measured; records written after the last checkpoint are written again on resuming)";
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let read = |file: &str| fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    for round in ["first", "resumed"] {
        let null = run("/dev/null", "ckpt");
        assert!(null.status.success(), "{round}: {}", stderr(&null));
        let err = stderr(&null);
        assert!(
            err.starts_with(&said.replace("OUT", "/dev/null")),
            "{round}: {err}"
        );
        assert!(
            same(&read("late_ckpt.jsonl"), &read("late_whole.jsonl")),
            "{round}"
        );
    }
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = std::thread::spawn(move || fs::read(fifo).unwrap());
    let piped = run("fifo", "ckpt_fifo");
    let records = reader.join().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(stderr(&piped).starts_with(&said.replace("OUT", "fifo")));
    assert!(same(&records, &read("out_whole.jsonl")));
}

/// How long [`killed_after_cuts`] waits for a run's next checkpoint: a
/// hang guard, longer than [`PATIENCE`](super::PATIENCE) because a cut
/// comes only once the engines reach its epoch, which the sources choose
/// where they read: a run whose engines lag its sources (rules that write
/// lists, on workers, step through event time together while the sources
/// read the whole file at once) takes its first cut near the end of the
/// file, after about the whole run (debug, `cli_workers_writes.rs`'s
/// 60,000 events on two workers: 64 s with three busy loops and a release
/// build on two cores; 120 s was not enough under a full test run before
/// session 61 made those steps cheaper).
pub const CUT_PATIENCE: Duration = Duration::from_secs(360);

/// Runs `command` (a run with `--checkpoint` into `ckpt`) and kills it
/// (SIGKILL) a moment after each new checkpoint is whole, `kills` times
/// (fewer when a run ends by itself first), then once more to its end:
/// each killed run goes on from the one before's last checkpoint. Returns
/// the kills and the last run's output.
pub fn killed_after_cuts(
    mut command: impl FnMut() -> std::process::Command,
    ckpt: &Path,
    kills: usize,
    seed: u64,
) -> (usize, std::process::Output) {
    killed_after_cuts_with(|_| command(), ckpt, kills, seed, |_| true, |_| {})
}

/// [`killed_after_cuts`], each run's command `command(last)` (`last`:
/// the run to the end, after the kills: a live input's is told where to
/// end), each kill `k` (from 0) held, after its moment, until `ready(k)`
/// says so (asked every 2 ms; a run that ends by itself meanwhile is not
/// killed), and `after(k)` called once the killed process is gone, before
/// the next one starts: what a test makes of what each killed run left
/// (a Kafka sink's transactions, told apart by the run that wrote them:
/// `common::kafka::Reader::take_committed`).
pub fn killed_after_cuts_with(
    mut command: impl FnMut(bool) -> std::process::Command,
    ckpt: &Path,
    kills: usize,
    seed: u64,
    mut ready: impl FnMut(usize) -> bool,
    mut after: impl FnMut(usize),
) -> (usize, std::process::Output) {
    use std::process::Stdio;
    use std::time::Instant;
    let mut moments = Moments(seed);
    let mut killed = 0;
    while killed < kills {
        let before = super::newest_checkpoint(ckpt);
        let mut child = command(false)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cepheid runs");
        let started = Instant::now();
        let ended = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            let now = super::newest_checkpoint(ckpt);
            if now.is_some() && now != before {
                break false;
            }
            assert!(started.elapsed() < CUT_PATIENCE, "no checkpoint came");
            std::thread::sleep(Duration::from_millis(2));
        };
        if ended {
            break;
        }
        let ms = Duration::from_millis;
        std::thread::sleep(moments.between(ms(0), ms(40)));
        // (ready at once: killed now, as it is, ended or not)
        let ended = loop {
            if ready(killed) {
                break false;
            }
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            assert!(
                started.elapsed() < super::PATIENCE,
                "kill {killed}: never ready"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        if ended {
            break;
        }
        let _ = child.kill();
        let _ = child.wait();
        after(killed);
        killed += 1;
    }
    (killed, command(true).output().expect("cepheid runs"))
}
