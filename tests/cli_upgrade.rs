//! Checkpoints written before the one format (`docs/checkpoints.md`,
//! "Upgrading") still resume: a months-long run must not start over because
//! of an upgrade. The folders of `tests/fixtures/checkpoints-RELEASE/` were
//! written by `cepheid run` of that commit, with the outputs it left: of
//! `3c5a200` (the previous release: engine snapshots of format version 6;
//! the single run's checkpoint file, version 1, and the workers' cut
//! folder, version 7, as they were then; the cut taken partway through),
//! and of `c80fced` (main just before the one format: engine snapshots of
//! version 7; one engine's file and a two-worker cut, each at the end of
//! the first 30,000 events). The events are made again here, byte for
//! byte, by the generator that made them.
//!
//! A checkpoint names the input and outputs by their absolute paths, so
//! each fixture is resumed where it was taken:
//! `/tmp/cepheid-fixture-RELEASE/{single,workers}`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::cepheid;

/// The releases whose checkpoints are fixtures.
const RELEASES: [&str; 2] = ["3c5a200", "c80fced"];

/// Where the fixtures of `release` were taken (and are resumed).
fn taken_at(release: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/cepheid-fixture-{release}"))
}

/// The stream the fixtures were taken over: 40,000 events 10 ms apart,
/// 97 users in turn, every 101st a `b`.
fn events(n: usize) -> String {
    (0..n)
        .map(|i| {
            let t = if i % 101 == 0 { "b" } else { "a" };
            format!(
                "{{\"ts\":{},\"user\":\"u{}\",\"type\":\"{t}\"}}\n",
                1_700_000_000_000u64 + i as u64 * 10,
                i % 97
            )
        })
        .collect()
}

/// Holds the fixtures' place for one test: they are resumed where they
/// were taken, so one test there at a time, of this process and of any
/// other (two checkouts' suites run at once met there). An advisory lock
/// (`flock`) of `/tmp/cepheid-fixtures.lock`, given back when the file
/// closes, a killed test's too.
fn hold() -> fs::File {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/cepheid-fixtures.lock")
        .expect("the fixtures' lock file");
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).expect("locked");
    file
}

/// Copies the fixture `name` of `release` to where it was taken (emptied
/// first).
fn place(release: &str, name: &str) -> PathBuf {
    let from =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/checkpoints-{release}"));
    let to = taken_at(release).join(name);
    let _ = fs::remove_dir_all(&to);
    copy_dir(&from.join(name), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `cepheid run rare.cep` in `dir` with the fixture's options and `more`.
fn run(dir: &Path, more: &[&str]) -> std::process::Output {
    let mut command = cepheid();
    command.current_dir(dir).args([
        "run",
        "rare.cep",
        "--events",
        "events.jsonl",
        "--output",
        "out.jsonl",
        "--late",
        "late.jsonl",
        "--no-progress",
    ]);
    command.args(more).output().unwrap()
}

/// The records of an uninterrupted run of this build over the whole
/// stream.
fn uninterrupted(name: &str) -> String {
    let dir = crate::common::scratch(name);
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/checkpoints-3c5a200/single/rare.cep"),
        dir.join("rare.cep"),
    )
    .unwrap();
    fs::write(dir.join("events.jsonl"), events(40_000)).unwrap();
    let out = run(&dir, &[]);
    assert!(out.status.success(), "{out:?}");
    let records = fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 791);
    let _ = fs::remove_dir_all(&dir);
    records
}

#[cfg(feature = "workers")]
fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// The single run's checkpoint was taken at the end of the first 30,000
/// events; the stream then grew to 40,000. Resumed by this build, the run
/// reads from line 30,001 and its output is the uninterrupted run's, byte
/// for byte; it says the checkpoint is of the older format, writes its
/// next in this one and deletes the old file once that one is committed.
#[test]
fn a_single_runs_checkpoint_of_the_previous_release_resumes() {
    let whole = uninterrupted("upgrade_single");
    let _held = hold();
    for release in RELEASES {
        let dir = place(release, "single");
        fs::write(dir.join("events.jsonl"), events(40_000)).unwrap();
        let out = run(
            &dir,
            &["--checkpoint", "ckpt", "--checkpoint-every", "15000"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{release}: {stderr}");
        assert!(
            stderr
                .contains("resuming from checkpoint ckpt/checkpoint at line 30001 of events.jsonl"),
            "{release}: {stderr}"
        );
        assert!(
            stderr.contains("checkpoint ckpt/checkpoint is the single run's file of format version 1: its next checkpoint is written in format version 8"),
            "{release}: {stderr}"
        );
        let records = fs::read_to_string(dir.join("out.jsonl")).unwrap();
        assert_eq!(records, whole, "{release}");
        assert!(!dir.join("ckpt/checkpoint").exists(), "{release}");
        assert!(crate::common::newest_checkpoint(&dir.join("ckpt")).is_some());
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The cut of a run on two workers (taken at event time 1700000376911 of
/// the 40,000 events) resumes on two workers: the output is the
/// uninterrupted run's, as a multiset.
#[cfg(feature = "workers")]
#[test]
fn a_workers_cut_of_the_previous_release_resumes() {
    let whole = uninterrupted("upgrade_workers");
    let _held = hold();
    for release in RELEASES {
        let dir = place(release, "workers");
        fs::write(dir.join("events.jsonl"), events(40_000)).unwrap();
        let out = run(
            &dir,
            &[
                "--checkpoint",
                "ckpt",
                "--checkpoint-every",
                "5ms",
                "--workers",
                "2",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{release}: {stderr}");
        assert!(
            stderr.contains("resuming from checkpoint in ckpt (2 workers)"),
            "{release}: {stderr}"
        );
        assert!(
            stderr.contains("is a cut of workers of format version 7: its next checkpoint is written in format version 8"),
            "{release}: {stderr}"
        );
        let records = fs::read_to_string(dir.join("out.jsonl")).unwrap();
        assert_eq!(sorted(&records), sorted(&whole), "{release}");
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Each fixture resumed on the other executor (issue 38, `docs/checkpoints.md`,
/// "Across executors"): the single run's checkpoint on two workers, the
/// workers' cut on one engine (made a checkpoint of one engine once). The
/// output is the uninterrupted run's, as a multiset.
#[cfg(feature = "workers")]
#[test]
fn checkpoints_of_the_previous_release_resume_on_the_other_executor() {
    let whole = uninterrupted("upgrade_cross");
    let _held = hold();
    let cases = RELEASES.into_iter().flat_map(|release| {
        [
            (
                release,
                "single",
                &["--workers", "2"][..],
                "it was taken on one engine, without --workers",
            ),
            (
                release,
                "workers",
                &[][..],
                "was taken on 2 workers: it is a checkpoint of one engine now",
            ),
        ]
    });
    for (release, name, more, said) in cases {
        let dir = place(release, name);
        fs::write(dir.join("events.jsonl"), events(40_000)).unwrap();
        let mut args = vec!["--checkpoint", "ckpt"];
        args.extend_from_slice(more);
        let out = run(&dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{release} {name}: {stderr}");
        assert!(stderr.contains(said), "{release} {name}: {stderr}");
        let records = fs::read_to_string(dir.join("out.jsonl")).unwrap();
        assert_eq!(sorted(&records), sorted(&whole), "{release} {name}");
        let _ = fs::remove_dir_all(&dir);
    }
}
