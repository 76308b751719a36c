//! `cepheid run --workers N --checkpoint DIR`, killed with SIGKILL at random
//! moments and resumed each time on another worker count, ends with the
//! outputs of a run that was never interrupted (equal once sorted) and the
//! same summary. (A test binary of its own: its runs of up to 5 workers
//! would load the machine under the kill tests of
//! `cli_workers_checkpoint.rs`.)

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cepheid;
use common::crash::{self, setup, sorted, Moments};

/// `cepheid run --workers N` over the folder's events (cut in chunks of
/// 256 KiB), with `--max-delay` `delay`, writing `out_NAME.jsonl` and
/// `late_NAME.jsonl`, with `extra` flags.
fn command_with(
    dir: &Path,
    name: &str,
    workers: &str,
    [chunk, delay]: [&str; 2],
    extra: &[&str],
) -> Command {
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
        .args(["--workers", workers, "--chunk-bytes", chunk])
        .args(["--max-delay", delay])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra);
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The summary's numbers: its last line without the time it took.
fn summary(output: &Output) -> String {
    crash::summary(&stderr(output))
}

/// The newest complete cut in `DIR/ckpt`, if any.
fn complete(dir: &Path) -> Option<String> {
    let newest = common::newest_checkpoint(&dir.join("ckpt"))?;
    Some(newest.file_name()?.to_string_lossy().into_owned())
}

#[test]
fn resumed_on_other_worker_counts_after_kills_it_ends_as_an_uninterrupted_run() {
    let dir = setup("workers_rescale", 100_000);
    // A delay above the stream's disorder (3 s): no event is late on any
    // layout, so every layout's outputs are the same (lateness is decided
    // by each source over its part: `docs/checkpoints.md`).
    let rescale = |name: &str, workers: &str, extra: &[&str]| {
        command_with(&dir, name, workers, ["262144", "3s"], extra)
    };
    let whole = rescale("whole", "2", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = summary(&whole);
    assert!(expected.contains(" 0 late"), "{expected}");
    assert!(!expected.contains(" 0 malformed"), "{expected}");
    let other = rescale("whole3", "3", &[]).output().unwrap();
    assert!(other.status.success(), "{}", stderr(&other));
    assert_eq!(summary(&other), expected);
    assert!(sorted(&dir, "out_whole3.jsonl") == sorted(&dir, "out_whole.jsonl"));
    let resumable = ["--checkpoint", "ckpt", "--checkpoint-every", "30ms"];
    let mut moments = Moments(0xFACADE);
    // Each run on the next worker count, killed at a random moment once it
    // has completed a cut of its own (so each resume starts from a cut of
    // the layout before), until one ends by itself.
    let counts = ["2", "3", "1", "4", "2", "5", "3", "1"];
    let (mut kills, mut runs, mut window) = (0, 0, Duration::from_millis(400));
    let mut resumed_from = Vec::new();
    loop {
        let workers = counts[runs % counts.len()];
        runs += 1;
        assert!(runs < 60, "the runs keep ending before they are killed");
        let before = complete(&dir);
        let started = Instant::now();
        let mut child = rescale("killed", workers, &resumable)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() && complete(&dir) == before {
            assert!(started.elapsed() < Duration::from_secs(60), "no cut");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(moments.between(Duration::ZERO, window));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            window = window.max(Duration::from_millis(40));
            if runs > 1 {
                resumed_from.push(workers);
            }
            continue;
        }
        let ended = child.wait_with_output().unwrap();
        assert!(ended.status.success(), "run {runs}: {}", stderr(&ended));
        if kills >= 4 {
            break;
        }
        // Ended before four kills: start over, killing sooner.
        fs::remove_dir_all(dir.join("ckpt")).unwrap();
        for file in ["out_killed.jsonl", "late_killed.jsonl"] {
            let _ = fs::remove_file(dir.join(file));
        }
        (kills, runs) = (0, 0);
        window /= 2;
        resumed_from.clear();
    }
    // Each kill left a cut of its own layout, resumed on the next one.
    assert!(resumed_from.len() >= 3, "{resumed_from:?}");
    let last = rescale("killed", "3", &resumable).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        stderr(&last).contains("resuming from checkpoint"),
        "{}",
        stderr(&last)
    );
    assert!(
        sorted(&dir, "out_killed.jsonl") == sorted(&dir, "out_whole.jsonl"),
        "the outputs differ after {kills} kills on {runs} layouts"
    );
    assert_eq!(fs::read(dir.join("late_killed.jsonl")).unwrap(), b"");
    assert_eq!(summary(&last), expected);
}
