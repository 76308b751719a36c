//! `cepheid run --workers 2 --checkpoint DIR`: killed with SIGKILL at
//! random moments and restarted on the same worker count, the run ends
//! with the outputs of a run that was never interrupted (equal once sorted,
//! as the outputs of any worker layout are) and the same summary (on
//! other worker counts: `cli_workers_rescale.rs`). A checkpoint taken with
//! another `--chunk-bytes`, or of another format version, is refused (exit
//! 5) and nothing is changed.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::cepheid;
use common::crash::{self, setup, sorted, Moments};

/// `cepheid run --workers N` over the folder's events (cut in chunks of
/// 256 KiB), writing `out_NAME.jsonl` and `late_NAME.jsonl`, with `extra`
/// flags.
fn command(dir: &Path, name: &str, workers: &str, extra: &[&str]) -> Command {
    command_with(dir, name, workers, ["262144", "2s"], extra)
}

/// [`command`] with another chunk size and `--max-delay`.
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

/// The records of run `name`, sorted: `out_NAME.jsonl`, or with
/// `--output-per-worker` its two workers' files together.
fn sorted_out(dir: &Path, name: &str, per_worker: bool) -> Vec<Vec<u8>> {
    if !per_worker {
        return sorted(dir, &format!("out_{name}.jsonl"));
    }
    let mut lines: Vec<Vec<u8>> = (0..2)
        .flat_map(|w| sorted(dir, &format!("out_{name}.jsonl.{w}")))
        .filter(|line| !line.is_empty())
        .collect();
    // As one file's lines: the empty piece after the last newline.
    lines.push(Vec::new());
    lines.sort();
    lines
}

#[test]
fn two_workers_killed_at_random_moments_end_as_an_uninterrupted_run() {
    killed_at_random_moments("workers_crash", false);
}

/// With `--output-per-worker`, each worker's `FILE.W` is measured at each
/// cut and truncated to its length on resuming.
#[test]
fn two_workers_writing_their_own_files_killed_at_random_moments_end_as_an_uninterrupted_run() {
    killed_at_random_moments("workers_crash_own", true);
}

fn killed_at_random_moments(name: &str, per_worker: bool) {
    let dir = setup(name, 100_000);
    let started = Instant::now();
    let whole = command(&dir, "whole", "2", &[]).output().unwrap();
    let took = started.elapsed();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = summary(&whole);
    assert!(expected.contains(" events read, "), "{expected}");
    assert!(!expected.contains(" 0 late"), "{expected}");
    assert!(!expected.contains(" 0 malformed"), "{expected}");
    let resumable: &[&str] = if per_worker {
        &[
            "--checkpoint",
            "ckpt",
            "--checkpoint-every",
            "1ms",
            "--output-per-worker",
        ]
    } else {
        &["--checkpoint", "ckpt", "--checkpoint-every", "1ms"]
    };
    // A cut every millisecond: each cut is asked for as soon as the last
    // completes, while records made during the last are still held (they
    // were once kept past the next cut's measure of the outputs, and lost
    // on a resume).
    let mut moments = Moments(0xC0FFEE);
    let (mut kills, mut runs) = (0, 0);
    // Each run gets a quarter to a half of an uninterrupted run's time,
    // killed until one ends by itself (at least 3 kills).
    let (mut lo, mut hi) = (took / 4, took / 2);
    while kills < 8 {
        runs += 1;
        assert!(runs < 100, "the run keeps ending before it is killed");
        let mut child = command(&dir, "killed", "2", resumable)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(moments.between(lo, hi));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        } else if kills >= 3 {
            break;
        } else {
            // It ended before three kills (the uninterrupted run was slower,
            // on a busy machine): this chain of resumes must already have
            // written the whole output. Then start over, killing sooner.
            assert!(child.wait().unwrap().success(), "run {runs} failed");
            assert!(
                sorted_out(&dir, "killed", per_worker) == sorted(&dir, "out_whole.jsonl"),
                "the outputs differ after {kills} kills (ended by itself)"
            );
            assert!(
                sorted(&dir, "late_killed.jsonl") == sorted(&dir, "late_whole.jsonl"),
                "the late outputs differ after {kills} kills (ended by itself)"
            );
            fs::remove_dir_all(dir.join("ckpt")).unwrap();
            for file in [
                "out_killed.jsonl",
                "out_killed.jsonl.0",
                "out_killed.jsonl.1",
                "late_killed.jsonl",
            ] {
                let _ = fs::remove_file(dir.join(file));
            }
            (kills, lo, hi) = (0, lo / 2, hi / 2);
        }
        child.wait().unwrap();
    }
    let last = command(&dir, "killed", "2", resumable).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        stderr(&last).contains("resuming from checkpoint"),
        "{}",
        stderr(&last)
    );
    assert!(
        sorted_out(&dir, "killed", per_worker) == sorted(&dir, "out_whole.jsonl"),
        "the outputs differ after {kills} kills"
    );
    assert!(
        sorted(&dir, "late_killed.jsonl") == sorted(&dir, "late_whole.jsonl"),
        "the late outputs differ after {kills} kills"
    );
    assert_eq!(summary(&last), expected);
    // A cut holds one file per worker and its marker; older ones are gone.
    // (besides the lock files: `lock`, `lock.process-I`)
    let cuts: Vec<_> = fs::read_dir(dir.join("ckpt"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().starts_with("lock"))
        .collect();
    assert!(cuts.len() <= 2, "{cuts:?}");
    // Run again: it ends the same way.
    let again = command(&dir, "killed", "2", resumable).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(sorted_out(&dir, "killed", per_worker) == sorted(&dir, "out_whole.jsonl"));
    assert_eq!(summary(&again), expected);
}

#[test]
fn a_checkpoint_of_another_chunk_size_or_format_is_refused_and_nothing_is_changed() {
    let dir = setup("workers_count", 30_000);
    // (a delay above the stream's disorder: no layout has late events)
    let first = command_with(
        &dir,
        "a",
        "2",
        ["262144", "3s"],
        &["--checkpoint", "ckpt", "--checkpoint-every", "1ms"],
    )
    .output()
    .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        common::newest_checkpoint(&dir.join("ckpt")).is_some(),
        "no checkpoint was taken"
    );
    let before = fs::read(dir.join("out_a.jsonl")).unwrap();
    // Another worker count resumes (the run had ended: nothing to add).
    for workers in ["3", "1"] {
        let other = command_with(
            &dir,
            "a",
            workers,
            ["262144", "3s"],
            &["--checkpoint", "ckpt"],
        )
        .output()
        .unwrap();
        assert!(other.status.success(), "{}", stderr(&other));
        let said = stderr(&other);
        // (taken on 2 workers, or on 3 by the resumed run)
        assert!(said.contains("; it was taken on "), "{said}");
        assert!(
            sorted(&dir, "out_a.jsonl") == {
                let mut lines: Vec<Vec<u8>> =
                    before.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                lines.sort();
                lines
            }
        );
    }
    let before = fs::read(dir.join("out_a.jsonl")).unwrap();
    // Each worker's own file, or one output: not the one for the other.
    let other = command_with(&dir, "a", "2", ["262144", "3s"], &["--checkpoint", "ckpt"])
        .arg("--output-per-worker")
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(5), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("it was taken without --output-per-worker, this run is with"),
        "{}",
        stderr(&other)
    );
    assert_eq!(fs::read(dir.join("out_a.jsonl")).unwrap(), before);
    // A cut with --output-per-worker (each worker's own file): not on
    // another worker count.
    let own = ["--checkpoint", "ckpt_own", "--output-per-worker"];
    let own = [&own[..], &["--checkpoint-every", "1ms"]].concat();
    let first = command_with(&dir, "own", "2", ["262144", "3s"], &own)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let other = command_with(&dir, "own", "3", ["262144", "3s"], &own)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(5), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("taken on 2 workers in all, not 3 (a checkpoint with --output-per-worker resumes on the same number of workers)"),
        "{}",
        stderr(&other)
    );
    let before = fs::read(dir.join("out_a.jsonl")).unwrap();
    let chunks = command_with(&dir, "a", "2", ["131072", "3s"], &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert_eq!(chunks.status.code(), Some(5), "{}", stderr(&chunks));
    assert!(
        stderr(&chunks).contains("another --chunk-bytes"),
        "{}",
        stderr(&chunks)
    );
    assert_eq!(fs::read(dir.join("out_a.jsonl")).unwrap(), before);
    // A checkpoint of another format version is refused.
    let marker = common::newest_checkpoint(&dir.join("ckpt"))
        .expect("a complete cut")
        .join("marker");
    let mut bytes = fs::read(&marker).unwrap();
    assert_eq!(bytes[8..12], 8u32.to_le_bytes(), "format version 8");
    // (version 3, the checksum made right: only the version is wrong)
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&marker, bytes).unwrap();
    let old = command_with(&dir, "a", "2", ["262144", "3s"], &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert_eq!(old.status.code(), Some(5), "{}", stderr(&old));
    assert!(
        stderr(&old).contains("it is of format version 3; this cepheid reads version 8"),
        "{}",
        stderr(&old)
    );
    assert_eq!(fs::read(dir.join("out_a.jsonl")).unwrap(), before);
    // Standard input cannot be read again: refused (exit 2), as without
    // --workers (a followed file can: `cli_workers_live_checkpoint.rs`).
    let refused = common::cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--events", "-", "--workers", "2"])
        .args(["--output", "out_b.jsonl", "--checkpoint", "ckpt2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("standard input cannot be read again"),
        "{}",
        stderr(&refused)
    );
}

/// Two runs on one checkpoint folder at once on workers: the second is
/// refused (exit 5) naming the first, which holds `DIR/lock` (issue 26).
#[test]
fn a_second_run_on_a_locked_folder_is_refused_naming_the_holder() {
    let dir = setup("workers_locked", 20_000);
    let follow = ["--checkpoint", "ckpt", "--follow"];
    let mut first = command(&dir, "run", "2", &follow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let started = Instant::now();
    while fs::read_to_string(dir.join("ckpt/lock"))
        .unwrap_or_default()
        .trim()
        != pid
    {
        assert!(
            started.elapsed() < common::PATIENCE,
            "the first run never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let second = command(&dir, "run", "2", &follow).output().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(5), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!(
            "error: checkpoint folder ckpt is in use by another run (process {pid} holds ckpt/lock)"
        )),
        "{}",
        stderr(&second)
    );
}

/// One flipped bit in a cut's `complete` marker (its output length) or in
/// a worker's file gave a resume that exited 0 with truncated or
/// duplicated output: each file has a magic, a version and a checksum,
/// checked on resuming (exit 5, nothing changed; issue 26).
#[test]
fn a_flipped_bit_in_any_file_of_a_cut_is_refused_and_nothing_is_changed() {
    let dir = setup("workers_flipped", 30_000);
    let run = |every: &str| {
        command_with(
            &dir,
            "a",
            "2",
            ["262144", "3s"],
            &["--checkpoint", "ckpt", "--checkpoint-every", every],
        )
        .output()
        .unwrap()
    };
    let first = run("1ms");
    assert!(first.status.success(), "{}", stderr(&first));
    let folder = common::newest_checkpoint(&dir.join("ckpt")).expect("a complete cut");
    let before = fs::read(dir.join("out_a.jsonl")).unwrap();
    let marker = fs::read(folder.join("marker")).unwrap();
    let sorted_before = sorted(&dir, "out_a.jsonl");
    // The output length's last digit (in the marker's JSON section), one
    // bit flipped (`0` <-> `1`, ...).
    let output = (marker.windows(10))
        .position(|w| w == b"\"output\":[")
        .expect("an output length");
    let at = output + marker[output..].iter().position(|&b| b == b',').unwrap() - 1;
    assert!(marker[at].is_ascii_digit());
    let mut flipped = marker.clone();
    flipped[at] ^= 1;
    for (file, bytes) in [("marker", flipped)].into_iter().chain((0..2).map(|w| {
        let name = ["piece-0", "piece-1"][w];
        let mut bytes = fs::read(folder.join(name)).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        (name, bytes)
    })) {
        let whole = fs::read(folder.join(file)).unwrap();
        fs::write(folder.join(file), &bytes).unwrap();
        let resumed = run("10s");
        assert_eq!(
            resumed.status.code(),
            Some(5),
            "{file}: {}",
            stderr(&resumed)
        );
        assert!(
            stderr(&resumed).contains("corrupt"),
            "{file}: {}",
            stderr(&resumed)
        );
        assert_eq!(fs::read(dir.join("out_a.jsonl")).unwrap(), before, "{file}");
        fs::write(folder.join(file), whole).unwrap();
    }
    // Whole again: it resumes, to the same records.
    let again = run("10s");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(sorted(&dir, "out_a.jsonl") == sorted_before);
}

/// `--checkpoint` on workers with `--output /dev/null` or a FIFO: written
/// as standard output is, said before the run starts, as on one engine
/// (it was refused on workers, accepted on one engine: issue 38), and a
/// resumed run over such an output resumes (nothing truncated).
#[cfg(unix)]
#[test]
fn a_device_or_fifo_output_with_checkpoints_on_workers_is_written_as_on_one_engine() {
    let dir = setup("workers_dev_null", 20_000);
    let whole = command(&dir, "whole", "2", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let run = |output: &str, ckpt: &str| {
        common::run_here(&dir)
            .args([
                "--workers",
                "2",
                "--chunk-bytes",
                "262144",
                "--max-delay",
                "2s",
            ])
            .args(["--output", output, "--late", &format!("late_{ckpt}.jsonl")])
            .args(["--checkpoint", ckpt, "--checkpoint-every", "5ms"])
            .output()
            .unwrap()
    };
    let lines = |bytes: &[u8]| {
        let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        lines.sort();
        lines
    };
    crash::special_outputs(&dir, run, |a, b| lines(a) == lines(b));
}

/// SIGTERM stops a run on workers that reads a file in parts as it stops
/// one engine's: each worker's part stops without ending the input (no
/// end of event time), the workers take a last cut, the summary says so,
/// exit 143; the next run goes on from that cut and ends as a run that
/// was never stopped. (Before, a file's parts could not be stopped: the
/// signal's default action ended the process, with no summary and no
/// last cut.)
#[test]
fn two_workers_stopped_by_sigterm_take_a_last_cut_and_the_next_run_goes_on() {
    stopped_by_sigterm("workers_sigterm", "1ms");
}

/// The same with a cut every 5,000 lines read (`--checkpoint-every` as a
/// number of lines: refused on workers before), counted over the
/// workers' parts.
#[test]
fn two_workers_checkpointing_every_5000_lines_stopped_by_sigterm_go_on() {
    stopped_by_sigterm("workers_sigterm_lines", "5000");
}

fn stopped_by_sigterm(name: &str, every: &str) {
    let dir = setup(name, 200_000);
    let whole = command(&dir, "whole", "2", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let resumable = ["--checkpoint", "ckpt", "--checkpoint-every", every];
    let mut run = common::Live::spawn(&mut command(&dir, "stopped", "2", &resumable));
    // Once its first cut is complete (the file's middle, whatever the
    // machine's speed: a cut is asked for every millisecond).
    let limit = Instant::now() + std::time::Duration::from_secs(60);
    while !fs::read_dir(dir.join("ckpt")).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("cut-")))
    }) {
        assert!(Instant::now() < limit, "no cut came");
        assert!(run.child.try_wait().unwrap().is_none(), "it ended first");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    run.signal("TERM");
    let (status, _, said) = run.finish();
    assert_eq!(status.code(), Some(143), "{said}");
    assert!(said.contains("cepheid: stopped by SIGTERM"), "{said}");
    let stopped = crash::summary(&said);
    assert!(stopped.contains(" events read, "), "{said}");
    assert_ne!(stopped, summary(&whole), "stopped in the middle: {said}");
    let resumed = command(&dir, "stopped", "2", &resumable).output().unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("cepheid: resuming from checkpoint"),
        "{}",
        stderr(&resumed)
    );
    assert!(sorted(&dir, "out_stopped.jsonl") == sorted(&dir, "out_whole.jsonl"));
    assert!(sorted(&dir, "late_stopped.jsonl") == sorted(&dir, "late_whole.jsonl"));
    assert_eq!(summary(&resumed), summary(&whole));
}

/// `--checkpoint` with the records on standard output, refused on workers
/// before ("needs --output FILE"), is taken as one engine takes it:
/// standard output is written, not measured; a run resumed writes again
/// what was made after the last cut. The same lines as one engine, and a
/// resumed run over the same file writes the same few lines again.
#[test]
fn checkpoints_with_records_on_standard_output_are_taken_as_on_one_engine() {
    let dir = setup("workers_stdout_ckpt", 20_000);
    let run = |workers: &[&str], ckpt: &str| {
        let output = common::run_here(&dir)
            .args(["--max-delay", "4s", "--checkpoint", ckpt])
            .args(workers)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        (lines, summary(&output))
    };
    let workers = ["--workers", "2", "--chunk-bytes", "65536"];
    let (one, one_summary) = run(&[], "ckpt_one");
    let (two, two_summary) = run(&workers, "ckpt_two");
    assert!(!one.is_empty());
    assert!(two == one, "the records differ");
    assert_eq!(two_summary, one_summary);
    // Resumed from the cut before the end of the file: what its end made
    // is written again, on both.
    let (one_again, _) = run(&[], "ckpt_one");
    let (two_again, _) = run(&workers, "ckpt_two");
    assert!(two_again == one_again, "{two_again:?} {one_again:?}");
}
