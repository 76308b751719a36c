//! `cepheid run --checkpoint`: killed with SIGKILL at random moments and
//! restarted, the run ends with outputs byte for byte those of a run that
//! was never interrupted, and the same summary. A corrupt checkpoint, one
//! taken by another command, and a checkpoint write that fails (a full
//! disk, simulated) each stop with a clear message and a defined status,
//! and lose nothing.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::crash::{self, setup, Moments, PATTERNS};
use common::{cepheid, run_here, scratch};

/// `cepheid run` over the folder's events, writing `out_NAME.jsonl` and
/// `late_NAME.jsonl`, with `extra` flags.
fn command(dir: &Path, name: &str, extra: &[&str]) -> Command {
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
        .args(["--max-delay", "2s"])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        // (the control records of the changes of rules)
        .args(["--rules-from-stream", "--rules-dir", "."])
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

fn read(dir: &Path, file: &str) -> Vec<u8> {
    fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn killed_at_random_moments_the_outputs_end_byte_for_byte_as_an_uninterrupted_run() {
    let dir = setup("crash", 200_000);
    // Each run (but the first of a chain) is killed a random moment after
    // its first new checkpoint is whole, between 1/1000 and 1/40 of an
    // uninterrupted run's time: each moves the chain on by a checkpoint
    // or two (one every 3,000 lines read, whatever the machine's speed),
    // so 24 kills land inside the 200,000 lines however fast it reads,
    // and each lands somewhere past its checkpoint.
    let kills = Kills {
        wanted: 24,
        share: (1000, 40),
        until_done: false,
        after_a_checkpoint: true,
    };
    killed_and_resumed(&dir, kills, "3000");
}

/// The rules of [`PATTERNS`] changed: `unpaid` waits longer for a
/// payment above 100, `never_paid` is gone, `burst` is as it was, `refund`
/// is new.
pub(crate) const CHANGED: &str = r#"
pattern unpaid {
    partition by order
    within 40s
    timeouts
    match created followed by paid
    where
        created: type == "created"
        paid:    type == "paid" and amount > 100
    select
        order  = created.order
        amount = paid.amount
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

pattern refund {
    partition by user
    within 5s
    match f1 followed by f2
    where
        f1: type == "fail" and amount > 40
        f2: type == "fail" and amount > 45
}
"#;

#[test]
fn killed_around_changes_of_rules_the_outputs_end_byte_for_byte_as_an_uninterrupted_run() {
    // Control records a quarter, half and three quarters of the way: the
    // changed rules (drain), the first ones again from a file, and the
    // changed ones again inline.
    let dir = setup("crash_rules", 100_000);
    fs::write(dir.join("changed.cep"), CHANGED).unwrap();
    let text = fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let inline = serde_json::json!({ "$rules": CHANGED }).to_string();
    lines.insert(75_000, inline);
    lines.insert(50_000, r#"{"$rules_file": "rules.cep"}"#.to_string());
    lines.insert(25_000, r#"{"$rules_file": "changed.cep"}"#.to_string());
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    // Longer runs (a sixth to a third of the work each), killed until one
    // ends by itself: the resumed runs cross every change, whatever the
    // machine's load.
    let kills = Kills {
        wanted: 150,
        share: (6, 3),
        until_done: true,
        after_a_checkpoint: false,
    };
    let (whole, last) = killed_and_resumed(&dir, kills, "1000");
    // (the kills took it past the first change: resumed with the
    // checkpoint's rules, a draining version among them)
    assert!(
        stderr(&last).contains(
            "the rules changed while it ran: it goes on with the rules of the checkpoint"
        ),
        "{}",
        stderr(&last)
    );
    assert!(
        summary(&whole).contains(", 3 rule reloads"),
        "{}",
        summary(&whole)
    );
    let out = String::from_utf8(read(&dir, "out_whole.jsonl")).unwrap();
    for version in [
        r#""pattern":"unpaid","version":2"#,
        r#""pattern":"unpaid","version":4"#,
        r#""pattern":"refund""#,
    ] {
        assert!(out.contains(version), "{version}");
    }
}

/// How [`killed_and_resumed`] kills: `wanted` times, each run after
/// between `1/share.0` and `1/share.1` of an uninterrupted run's time;
/// with `until_done`, fewer when a run ends by itself first. With
/// `after_a_checkpoint`, that time counts from the moment the run's first
/// new checkpoint is whole (but for the first run of a chain, which may
/// be killed before its first): paced on what the run has read, not on
/// the clock alone, so that the kills neither all land before the first
/// checkpoint (a machine slow to start a process) nor let the run end
/// first (a fast one).
struct Kills {
    wanted: usize,
    share: (u32, u32),
    until_done: bool,
    after_a_checkpoint: bool,
}

/// Runs the command of `dir` once uninterrupted, then with `--checkpoint`
/// killed (SIGKILL) `kills` times at random moments and run again until
/// it ends (a checkpoint every `every`): the outputs and the summary must
/// be those of the uninterrupted run. Returns the uninterrupted run and
/// the last resumed one.
fn killed_and_resumed(dir: &Path, kills: Kills, every: &str) -> (Output, Output) {
    let dir = dir.to_path_buf();
    let started = Instant::now();
    let whole = command(&dir, "whole", &[]).output().unwrap();
    let took = started.elapsed();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = summary(&whole);
    assert!(expected.contains(" events read, "), "{expected}");
    assert!(!expected.contains(" 0 late"), "{expected}");
    let Kills {
        wanted,
        share: (lo, hi),
        until_done,
        after_a_checkpoint,
    } = kills;
    let mut moments = Moments(0xC0FFEE);
    let mut kills = 0;
    let mut runs = 0;
    let resumable = ["--checkpoint", "ckpt", "--checkpoint-every", every];
    let (mut lo, mut hi) = (lo, hi);
    while kills < wanted {
        runs += 1;
        assert!(runs < 200, "the run keeps ending before it is killed");
        let ckpt = dir.join("ckpt");
        let before = common::newest_checkpoint(&ckpt);
        let mut child = command(&dir, "killed", &resumable)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if after_a_checkpoint && kills > 0 {
            // (until a checkpoint newer than the one it resumed from is
            // whole, or it ends; at most PATIENCE, on a loaded machine)
            let started = Instant::now();
            while child.try_wait().unwrap().is_none() {
                let now = common::newest_checkpoint(&ckpt);
                if now.is_some() && now != before {
                    break;
                }
                assert!(
                    started.elapsed() < common::PATIENCE,
                    "run {runs}: no checkpoint within {:?}",
                    common::PATIENCE
                );
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        std::thread::sleep(moments.between(took / lo, took / hi));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        } else if until_done {
            break;
        } else {
            // It ended before the kills wanted (the uninterrupted run was
            // slower, on a busy machine): this chain of resumes must already
            // have written the whole output. Then start over, killing sooner.
            assert!(child.wait().unwrap().success(), "run {runs} failed");
            assert!(
                read(&dir, "out_killed.jsonl") == read(&dir, "out_whole.jsonl"),
                "the outputs differ after {kills} kills (ended by itself)"
            );
            assert!(
                read(&dir, "late_killed.jsonl") == read(&dir, "late_whole.jsonl"),
                "the late outputs differ after {kills} kills (ended by itself)"
            );
            fs::remove_dir_all(dir.join("ckpt")).unwrap();
            for file in ["out_killed.jsonl", "late_killed.jsonl"] {
                let _ = fs::remove_file(dir.join(file));
            }
            (kills, lo, hi) = (0, lo * 2, hi * 2);
        }
        child.wait().unwrap();
    }
    let last = command(&dir, "killed", &resumable).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(
        stderr(&last).contains("resuming from checkpoint"),
        "{}",
        stderr(&last)
    );
    assert!(
        read(&dir, "out_killed.jsonl") == read(&dir, "out_whole.jsonl"),
        "the outputs differ after {kills} kills"
    );
    assert!(
        read(&dir, "late_killed.jsonl") == read(&dir, "late_whole.jsonl"),
        "the late outputs differ after {kills} kills"
    );
    assert_eq!(summary(&last), expected);
    // Run again, it ends the same way (resumed at the end of the input).
    let again = command(&dir, "killed", &resumable).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(read(&dir, "out_killed.jsonl") == read(&dir, "out_whole.jsonl"));
    assert_eq!(summary(&again), expected);
    (whole, last)
}

/// A run stopped part-way (by a failed checkpoint write) leaves a
/// checkpoint and partial outputs: the state the other tests start from.
/// It is the second write that fails (a full disk): the first (at line
/// 2,000 or after) is never deferred and the input's end takes one, so
/// there is a second whatever the machine's speed (a fourth was failed
/// here, and beside `stress-ng` the checkpoints that came due while one
/// was written merged, and no fourth came).
fn partial_run(dir: &Path) -> Output {
    let failed = command(
        dir,
        "part",
        &["--checkpoint", "ckpt", "--checkpoint-every", "2000"],
    )
    .env("CEPHEID_TEST_FAIL_CHECKPOINT", "2")
    .output()
    .unwrap();
    assert_eq!(failed.status.code(), Some(4), "{}", stderr(&failed));
    failed
}

#[test]
fn a_failed_checkpoint_write_stops_the_run_and_loses_nothing() {
    let dir = setup("disk_full", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    let failed = partial_run(&dir);
    let message = stderr(&failed);
    assert!(
        message.contains("error: cannot write checkpoint ckpt/cut-2: No space left on device"),
        "{message}"
    );
    assert!(
        message.contains("the previous checkpoint is kept"),
        "{message}"
    );
    // The half-written checkpoint is not left behind: the one before
    // alone.
    let mut left: Vec<String> = fs::read_dir(dir.join("ckpt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["cut-1", "lock"]);
    // The previous checkpoint is whole: the run goes on from it.
    let resumed = command(&dir, "part", &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming from checkpoint ckpt/cut-1 at line "),
        "{}",
        stderr(&resumed)
    );
    assert!(read(&dir, "out_part.jsonl") == read(&dir, "out_whole.jsonl"));
    assert!(read(&dir, "late_part.jsonl") == read(&dir, "late_whole.jsonl"));
    assert_eq!(summary(&resumed), summary(&whole));
}

/// Runs a command that must refuse the checkpoint: exit 5, a message
/// holding `says`, and no file changed.
fn refused(dir: &Path, run: &mut Command, says: &str) {
    let files = [
        "out_part.jsonl",
        "late_part.jsonl",
        "ckpt/cut-1/piece-0",
        "ckpt/cut-1/marker",
    ];
    let before: Vec<_> = files.iter().map(|f| read(dir, f)).collect();
    let out = run.output().unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{message}");
    assert!(message.contains(says), "{says} in {message}");
    assert!(
        message.contains("nothing was changed (remove ckpt to start over; a transactional output then needs another transactional id too"),
        "{message}"
    );
    let after: Vec<_> = files.iter().map(|f| read(dir, f)).collect();
    assert!(before == after, "a file changed");
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_nothing_is_changed() {
    let dir = setup("corrupt", 20_000);
    partial_run(&dir);
    let path = dir.join("ckpt/cut-1/piece-0");
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 1;
    fs::write(&path, &bad).unwrap();
    let resume = ["--checkpoint", "ckpt"];
    refused(
        &dir,
        &mut command(&dir, "part", &resume),
        "error: checkpoint ckpt/cut-1/piece-0 cannot be used: its checksum does not match",
    );
    fs::write(&path, &good[..100]).unwrap();
    refused(
        &dir,
        &mut command(&dir, "part", &resume),
        "its checksum does not match",
    );
    fs::write(&path, b"hello").unwrap();
    refused(
        &dir,
        &mut command(&dir, "part", &resume),
        "it is not a cepheid checkpoint",
    );
}

#[test]
fn a_checkpoint_of_another_command_is_refused_and_nothing_is_changed() {
    let dir = setup("other", 20_000);
    partial_run(&dir);
    let resume = ["--checkpoint", "ckpt"];
    // Other patterns.
    fs::write(
        dir.join("other.cep"),
        PATTERNS.replace("within 10s", "within 11s"),
    )
    .unwrap();
    let other = command(&dir, "part", &resume);
    let args: Vec<String> = other
        .get_args()
        .map(|a| a.to_string_lossy().replace("rules.cep", "other.cep"))
        .collect();
    let mut other_patterns = cepheid();
    other_patterns.current_dir(&dir).args(&args[..]);
    refused(
        &dir,
        &mut other_patterns,
        "it does not fit this command: the snapshot was taken with other patterns: pattern 3 (`burst`) is not the same",
    );
    // Another option of the engine, another input.
    fs::copy(dir.join("events.jsonl"), dir.join("copy.jsonl")).unwrap();
    for (events, delay, says) in [
        (
            "events.jsonl",
            "5s",
            "max delay of 2000 ms, this engine has 5000 ms",
        ),
        ("copy.jsonl", "2s", "(--events was "),
    ] {
        let mut run = cepheid();
        run.current_dir(&dir).args([
            "run",
            "rules.cep",
            "--events",
            events,
            "--no-progress",
            "--max-delay",
            delay,
            "--output",
            "out_part.jsonl",
            "--late",
            "late_part.jsonl",
            "--checkpoint",
            "ckpt",
        ]);
        refused(&dir, &mut run, says);
    }
    // (an output shorter since was rotated: it is not refused any more,
    // `an_output_rotated_since_the_checkpoint_goes_on_in_the_new_file`)
}

/// The output length the newest checkpoint records (its marker).
fn checkpoint_output_len(dir: &Path) -> usize {
    let stored = common::newest_stored(&dir.join("ckpt")).expect("a checkpoint");
    stored.marker().sink_state().output_len.unwrap() as usize
}

/// An output rotated (logrotate's `create`: moved away, a new file; or
/// `copytruncate`: copied, truncated in place) after the last checkpoint:
/// every restart was refused for ever (exit 5, "holds 0 bytes, fewer
/// than ..."). It goes on in the new file with the records after the
/// checkpoint (issue 26).
#[test]
fn an_output_rotated_since_the_checkpoint_goes_on_in_the_new_file() {
    let dir = setup("rotated_since", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = read(&dir, "out_whole.jsonl");
    for how in ["create", "copytruncate"] {
        let _ = fs::remove_dir_all(dir.join("ckpt"));
        partial_run(&dir);
        let at = checkpoint_output_len(&dir);
        assert!(at > 0);
        match how {
            "create" => {
                fs::rename(dir.join("out_part.jsonl"), dir.join("out_part.jsonl.1")).unwrap();
                fs::write(dir.join("out_part.jsonl"), b"").unwrap();
            }
            _ => {
                fs::copy(dir.join("out_part.jsonl"), dir.join("out_part.jsonl.1")).unwrap();
                fs::write(dir.join("out_part.jsonl"), b"").unwrap();
            }
        }
        let resumed = command(&dir, "part", &["--checkpoint", "ckpt"])
            .output()
            .unwrap();
        assert!(resumed.status.success(), "{how}: {}", stderr(&resumed));
        assert!(
            stderr(&resumed).contains("out_part.jsonl was rotated since"),
            "{how}: {}",
            stderr(&resumed)
        );
        let old = read(&dir, "out_part.jsonl.1");
        let new = read(&dir, "out_part.jsonl");
        assert!(!new.is_empty(), "{how}");
        assert!(old.len() >= at, "{how}");
        assert!(
            [&old[..at], &new[..]].concat() == expected,
            "{how}: the rotated file to the checkpoint, then the new one"
        );
        assert!(expected.starts_with(&old), "{how}");
    }
}

/// Rotated while it runs (`create`: moved away; `copytruncate`: copied and
/// truncated in place): records kept going to the moved file, or landed
/// at the old offset (a file starting with NUL bytes). The output is
/// opened again under its name, and written by appending (issue 26).
#[cfg(unix)]
#[test]
fn an_output_rotated_while_it_runs_goes_on_in_the_new_file() {
    let dir = setup("rotated_live", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = read(&dir, "out_whole.jsonl");
    let text = read(&dir, "events.jsonl");
    let half = text[..text.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    for how in ["create", "copytruncate"] {
        fs::write(dir.join("events.jsonl"), &text[..half]).unwrap();
        let _ = fs::remove_file(dir.join("out_live.jsonl"));
        let _ = fs::remove_dir_all(dir.join("ckpt_live"));
        let mut live = command(&dir, "live", &["--follow", "--checkpoint", "ckpt_live"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the first half's records are out and stay so.
        let settled = |name: &str| {
            let started = Instant::now();
            let mut last = None;
            loop {
                assert!(started.elapsed() < common::PATIENCE, "{how}: never settled");
                std::thread::sleep(Duration::from_millis(300));
                let len = fs::metadata(dir.join(name)).map(|m| m.len()).ok();
                if len.is_some_and(|l| l > 0) && len == last {
                    return;
                }
                last = len;
            }
        };
        settled("out_live.jsonl");
        match how {
            "create" => {
                fs::rename(dir.join("out_live.jsonl"), dir.join("out_live.jsonl.1")).unwrap()
            }
            _ => {
                fs::copy(dir.join("out_live.jsonl"), dir.join("out_live.jsonl.1")).unwrap();
                fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("out_live.jsonl"))
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
        // The second half.
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(dir.join("events.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut file, &text[half..]).unwrap();
        settled("out_live.jsonl");
        // The new file is locked as the first was: another run on it
        // (with another folder) is refused.
        let second = command(&dir, "live", &["--follow", "--checkpoint", "ckpt_other"])
            .output()
            .unwrap();
        assert_eq!(second.status.code(), Some(5), "{how}: {}", stderr(&second));
        assert!(
            stderr(&second)
                .contains("--output out_live.jsonl is being written by another cepheid run"),
            "{how}: {}",
            stderr(&second)
        );
        live.kill().unwrap();
        live.wait().unwrap();
        let old = read(&dir, "out_live.jsonl.1");
        let new = read(&dir, "out_live.jsonl");
        assert!(!new.contains(&0), "{how}: NUL bytes in the new file");
        let both = [&old[..], &new[..]].concat();
        assert!(
            expected.starts_with(&both),
            "{how}: the records go on in the new file"
        );
        assert!(both.len() > old.len() + 1000, "{how}");
    }
}

#[test]
fn standard_input_cannot_be_checkpointed() {
    let dir = setup("stdin", 10);
    let out = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--checkpoint needs --events FILE"));
    let out = cepheid()
        .current_dir(&dir)
        .args([
            "run",
            "rules.cep",
            "--events",
            "events.jsonl",
            "--checkpoint-every",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `a followed by b` per key `k`.
const PAIR_BY_K: &str = r#"
pattern pair {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
"#;

fn pair_events(from: i64, k: u32) -> String {
    format!(
        "{{\"ts\":{from},\"type\":\"a\",\"k\":{k}}}\n{{\"ts\":{},\"type\":\"b\",\"k\":{k}}}\n{{\"ts\":{},\"type\":\"x\",\"k\":0}}\n",
        from + 1,
        from + 2
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// With `--follow`, SIGTERM takes a last checkpoint; the next run goes on
/// from it, with lines appended meanwhile; after a rotation while stopped,
/// the new file is read from its beginning (with a warning).
#[test]
fn a_followed_file_resumes_where_it_stopped() {
    let dir = scratch("follow_resume");
    fs::write(dir.join("p.cep"), PAIR_BY_K).unwrap();
    let events = dir.join("events.jsonl");
    fs::write(&events, pair_events(10, 1)).unwrap();
    let args = [
        "--events",
        "events.jsonl",
        "--follow",
        "--output",
        "out.jsonl",
        "--checkpoint",
        "ckpt",
        "--no-progress",
    ];
    let start = || {
        let mut command = cepheid();
        command.current_dir(&dir).arg("run").arg("p.cep").args(args);
        common::Live::spawn(&mut command)
    };
    let lines = |n: usize| {
        let deadline = Instant::now() + common::PATIENCE;
        loop {
            let text = fs::read_to_string(dir.join("out.jsonl")).unwrap_or_default();
            if text.lines().count() >= n || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let stop = |live: common::Live| {
        live.signal("TERM");
        let (status, _, stderr) = live.finish();
        assert_eq!(status.code(), Some(143), "{stderr}");
        // (as workers say it)
        let said = "cepheid: checkpoint taken in ckpt as the run stopped";
        assert!(stderr.lines().any(|l| l == said), "{stderr}");
        stderr
    };
    let live = start();
    assert_eq!(lines(1).lines().count(), 1);
    stop(live);
    // Appended while stopped: read on resuming, nothing read twice.
    append(&events, &pair_events(20, 2));
    let live = start();
    let text = lines(2);
    let stderr = stop(live);
    let resumed = stderr
        .lines()
        .find(|l| l.starts_with("cepheid: resuming from checkpoint ckpt/cut-"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(resumed.ends_with(" at line 4 of events.jsonl"), "{stderr}");
    let keys: Vec<_> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"]["k"].clone())
        .collect();
    assert_eq!(keys, [1, 2]);
    // Rotated while stopped: the new file from its beginning.
    fs::rename(&events, dir.join("events.jsonl.1")).unwrap();
    fs::write(&events, pair_events(30, 3)).unwrap();
    let live = start();
    let text = lines(3);
    let stderr = stop(live);
    assert!(
        stderr.contains("rotated since, so it is read from its beginning"),
        "{stderr}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().last().unwrap().contains(r#""key":{"k":3}"#),
        "{text}"
    );
}

/// Two runs on one checkpoint folder at once (a supervisor that starts a
/// second instance), or on one output with two folders: the second is
/// refused with exit 5, naming the holder, and changes nothing; once the
/// first is gone (even by SIGKILL) the folder resumes as usual.
#[cfg(unix)]
#[test]
fn a_second_run_on_a_locked_folder_or_output_is_refused_naming_the_holder() {
    let dir = setup("locked", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let follow = [
        "--checkpoint",
        "ckpt",
        "--follow",
        "--checkpoint-every",
        "100",
    ];
    /// Killed when dropped: a failed assertion leaves no run behind.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut first = Killed(
        command(&dir, "run", &follow)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = first.0.id();
    // It holds the lock once its id is in the lock file, and has read the
    // whole file once its output stops growing.
    let started = Instant::now();
    let mut last = None;
    loop {
        assert!(
            started.elapsed() < common::PATIENCE,
            "the first run never settled"
        );
        std::thread::sleep(Duration::from_millis(200));
        let holder = fs::read_to_string(dir.join("ckpt/lock")).unwrap_or_default();
        let len = fs::metadata(dir.join("out_run.jsonl"))
            .map(|m| m.len())
            .ok();
        if holder.trim() == pid.to_string() && len.is_some() && len == last {
            break;
        }
        last = len;
    }
    let output_before = read(&dir, "out_run.jsonl");
    // The same folder.
    let second = command(&dir, "run", &follow).output().unwrap();
    assert_eq!(second.status.code(), Some(5), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!(
            "error: checkpoint folder ckpt is in use by another run (process {pid} holds ckpt/lock); nothing was changed"
        )),
        "{}",
        stderr(&second)
    );
    // Another folder, the same outputs.
    let other = ["--checkpoint", "ckpt2", "--follow"];
    let third = command(&dir, "run", &other).output().unwrap();
    assert_eq!(third.status.code(), Some(5), "{}", stderr(&third));
    assert!(
        stderr(&third).contains(
            "error: --output out_run.jsonl is being written by another cepheid run (it holds the file's lock); nothing was changed"
        ),
        "{}",
        stderr(&third)
    );
    // Neither truncated nor wrote the output (the first run may still
    // have been adding to it).
    assert!(read(&dir, "out_run.jsonl").starts_with(&output_before));
    // Gone by SIGKILL: the lock is gone with it; the resumed run ends as
    // one that never stopped.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let resumed = command(&dir, "run", &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(read(&dir, "out_run.jsonl"), read(&dir, "out_whole.jsonl"));
    assert_eq!(read(&dir, "late_run.jsonl"), read(&dir, "late_whole.jsonl"));
}

/// `--checkpoint` with `--output /dev/null` or a FIFO stopped at the first
/// checkpoint (exit 4, "cannot write /dev/null: Invalid argument": an
/// fsync of a device). Such an output is written as standard output is
/// (not synced nor measured, at least once), said before the run starts.
#[cfg(unix)]
#[test]
fn a_device_or_fifo_output_with_checkpoints_is_written_as_standard_output_said_at_the_start() {
    let dir = setup("special_outputs", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let run = |output: &str, ckpt: &str| {
        run_here(&dir)
            .args(["--max-delay", "2s", "--output", output])
            .args(["--late", &format!("late_{ckpt}.jsonl")])
            .args(["--checkpoint", ckpt, "--checkpoint-every", "1000"])
            .output()
            .unwrap()
    };
    crash::special_outputs(&dir, run, |a, b| a == b);
}

/// `--checkpoint` over a file still being written, without `--follow`:
/// the run ended in the middle of the last line, and the run after the
/// file had grown read the rest of that line as a line of its own (one
/// event lost as two malformed lines). The last line without its newline
/// is not in the checkpoint's position: the next run reads it whole.
#[test]
fn a_last_line_without_its_newline_is_read_again_whole_after_the_file_grew() {
    let dir = setup("open_end", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let text = fs::read(dir.join("events.jsonl")).unwrap();
    // The middle of line 15,001 (an event's line, not a malformed one).
    let newlines: Vec<usize> = (0..text.len()).filter(|&i| text[i] == b'\n').collect();
    let (line, cut) = (15_000..)
        .map(|n| (n, newlines[n - 1] + 1))
        .find(|&(_, at)| text[at..].starts_with(b"{\"ts\""))
        .unwrap();
    let cut = cut + 12;
    assert!(cut < newlines[line]);
    fs::write(dir.join("events.jsonl"), &text[..cut]).unwrap();
    let first = command(&dir, "run", &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // The file grows: the rest of the line and the lines after it.
    fs::write(dir.join("events.jsonl"), &text).unwrap();
    let resumed = command(&dir, "run", &["--checkpoint", "ckpt"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains(&format!("at line {} of", line + 1)),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(summary(&resumed), summary(&whole));
    assert_eq!(read(&dir, "out_run.jsonl"), read(&dir, "out_whole.jsonl"));
    assert_eq!(read(&dir, "late_run.jsonl"), read(&dir, "late_whole.jsonl"));
}

/// An empty `--late` file (no late event yet) deleted between two runs
/// (a cleanup of empty files): every resume failed ("cannot create"). It
/// is made again, empty: nothing of it was lost.
#[test]
fn an_empty_late_file_deleted_since_the_checkpoint_is_made_again() {
    let dir = setup("late_deleted", 2_000);
    let run = || {
        run_here(&dir)
            // (a delay above the stream's disorder: no late event)
            .args(["--max-delay", "1h", "--output", "out.jsonl"])
            .args(["--late", "late.jsonl", "--checkpoint", "ckpt"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(read(&dir, "late.jsonl"), b"");
    fs::remove_file(dir.join("late.jsonl")).unwrap();
    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(read(&dir, "late.jsonl"), b"");
}

/// A checkpoint that takes longer than `--checkpoint-every` (counted from
/// the start of the previous one) made the run take one batch per
/// checkpoint, without a word. The interval is counted from the end of
/// the last checkpoint, and a slow one is said, once (issue 26).
#[test]
fn a_checkpoint_longer_than_its_interval_is_said_once_and_the_run_goes_on() {
    let dir = setup("slow_checkpoints", 20_000);
    let whole = command(&dir, "whole", &[]).output().unwrap();
    assert!(whole.status.success(), "{}", stderr(&whole));
    // 1 ms: every checkpoint (a snapshot, a synced file) takes longer.
    let slow = command(
        &dir,
        "slow",
        &["--checkpoint", "ckpt", "--checkpoint-every", "1ms"],
    )
    .output()
    .unwrap();
    assert!(slow.status.success(), "{}", stderr(&slow));
    let said = stderr(&slow);
    assert_eq!(
        said.matches("longer than --checkpoint-every 1 ms: each next one is due that long after the end of the last").count(),
        1,
        "{said}"
    );
    assert_eq!(read(&dir, "out_slow.jsonl"), read(&dir, "out_whole.jsonl"));
    assert_eq!(summary(&slow), summary(&whole));
}

/// A run resumed from a checkpoint at the end of its input reads no event:
/// it said that the patterns' fields "never occur in 0 events" (the fields
/// seen before the checkpoint are not kept), which is nothing a reader can
/// act on. The first run says it over its events; the resumed one says
/// nothing of fields. The same on two workers (whose last cut, before the
/// end of the file, is given the end's warnings once they are said: the
/// run resumed from it said them again, session 67).
#[test]
fn a_resumed_run_that_reads_no_event_says_nothing_of_fields_never_seen() {
    reads_no_event(&[], "fields_resumed");
    #[cfg(feature = "workers")]
    reads_no_event(&["--workers", "2"], "fields_resumed_workers");
}

fn reads_no_event(scale: &[&str], name: &str) {
    let dir = scratch(name);
    fs::write(
        dir.join("rules.cep"),
        "pattern p {\n  partition by user\n  match a\n  where a: colour == \"red\"\n}\n",
    )
    .unwrap();
    let events: String = (0..100)
        .map(|i| format!("{{\"ts\":{i},\"user\":\"u{}\"}}\n", i % 7))
        .collect();
    fs::write(dir.join("events.jsonl"), events).unwrap();
    let run = || {
        run_here(&dir)
            .args(["--output", "out.jsonl", "--checkpoint", "ckpt"])
            .args(["--checkpoint-every", "40"])
            .args(scale)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("field `colour` never occurs in 100 events"),
        "{}",
        stderr(&first)
    );
    let again = run();
    let said = stderr(&again);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(!said.contains("never occurs"), "{said}");
}

/// A run stopped before its first events were looked at (its checkpoint
/// taken as it stopped), and resumed over a grown input: it looks at the
/// first events of the whole input (what its reader saw up to the
/// checkpoint is kept in it), not at its own first ones. A field seen
/// only before the checkpoint was said to "never occur" on one engine
/// (issue 60, item 17); a field in no event is said once, its events
/// counted from the start. The same on two workers (whose readers of
/// chunks say what they saw at the end of each: here the end of the
/// input, all 5,000 events counted).
#[test]
fn a_run_stopped_before_it_looked_at_its_fields_and_resumed_says_no_false_warning() {
    // (looked at once the events from the start reached 3,000: the 1,000
    // before the checkpoint counted)
    stopped_early_and_resumed(&[], "fields_stopped_early", 3_000..4_100);
    #[cfg(feature = "workers")]
    stopped_early_and_resumed(
        &["--workers", "2"],
        "fields_stopped_early_workers",
        5_000..5_001,
    );
}

/// A followed run of `scale` stopped after 1,000 events and resumed over
/// 5,000: no false warning, and the missing field said once, in a count
/// of events within `looked_at`.
fn stopped_early_and_resumed(scale: &[&str], name: &str, looked_at: std::ops::Range<u64>) {
    let dir = scratch(name);
    fs::write(
        dir.join("rules.cep"),
        "pattern p {\n  partition by user\n  match a\n  where a: rare == 1 and colour == \"red\"\n}\n\
         pattern done {\n  match a\n  where a: last == true\n}\n",
    )
    .unwrap();
    let line = |i: usize| {
        let rare = if i < 100 { ",\"rare\":2" } else { "" };
        let last = if i == 990 { ",\"last\":true" } else { "" };
        format!("{{\"ts\":{i},\"user\":\"u{}\"{rare}{last}}}\n", i % 7)
    };
    let events = |from: usize, to: usize| -> String { (from..to).map(line).collect() };
    fs::write(dir.join("events.jsonl"), events(0, 1_000)).unwrap();
    let run = |follow: bool| {
        let mut command = run_here(&dir);
        command
            .args(["--output", "out.jsonl", "--checkpoint", "ckpt"])
            .args(["--field-warnings-after", "3000"])
            .args(scale);
        if follow {
            command.arg("--follow");
        }
        command
    };
    // Followed, stopped once its 1,000 events are taken (the match of
    // `done` written): a checkpoint as it stops, nothing looked at.
    let live = common::Live::spawn(&mut run(true));
    let started = Instant::now();
    while !fs::read_to_string(dir.join("out.jsonl")).is_ok_and(|t| t.contains("\"done\"")) {
        assert!(started.elapsed() < common::PATIENCE, "never matched");
        std::thread::sleep(Duration::from_millis(50));
    }
    live.signal("TERM");
    let (_, _, said) = live.finish();
    assert!(said.contains("as the run stopped"), "{said}");
    assert!(!said.contains("never occurs"), "{said}");
    // Resumed over 5,000 events: 4,000 more, without `rare` nor `last`.
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("events.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, events(1_000, 5_000).as_bytes()).unwrap();
    let again = run(false).output().unwrap();
    let said = stderr(&again);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(
        !said.contains("`rare`") && !said.contains("`last`"),
        "a false warning: {said}"
    );
    assert_eq!(said.matches("never occurs").count(), 1, "{said}");
    let count: u64 = said
        .split("field `colour` never occurs in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(looked_at.contains(&count), "{said}");
}

/// A run resumed after its first events were looked at goes on from what
/// they showed (kept in the checkpoint's counters): a field seen only
/// before the checkpoint is not said to be missing from the events after
/// it (session 48 found it said "never occurs in 1000 events" there), and
/// a field said missing before is not said again. The same on two
/// workers, whose cuts keep the warnings too (they kept none: a resumed
/// run looked at its own first events again, and said again what was
/// said).
#[test]
fn a_resumed_run_goes_on_from_the_field_warnings_of_the_run_it_resumes() {
    // (one engine looks after the batch that reached 1,000 events; two
    // workers' readers of chunks say what they saw at the end of each:
    // here the end of the input)
    goes_on_from_the_warnings(&[], "fields_going_on", "in 1");
    #[cfg(feature = "workers")]
    goes_on_from_the_warnings(
        &["--workers", "2"],
        "fields_going_on_workers",
        "in 3000 events",
    );
}

fn goes_on_from_the_warnings(scale: &[&str], name: &str, looked_at: &str) {
    let dir = scratch(name);
    fs::write(
        dir.join("rules.cep"),
        "pattern p {\n  partition by user\n  match a\n  where a: rare == 1 and colour == \"red\"\n}\n",
    )
    .unwrap();
    let line = |i: usize| {
        let rare = if i < 100 { ",\"rare\":2" } else { "" };
        format!("{{\"ts\":{i},\"user\":\"u{}\"{rare}}}\n", i % 7)
    };
    let events = |n: usize| -> String { (0..n).map(line).collect() };
    fs::write(dir.join("events.jsonl"), events(3_000)).unwrap();
    let run = || {
        run_here(&dir)
            .args(["--output", "out.jsonl", "--checkpoint", "ckpt"])
            .args([
                "--checkpoint-every",
                "500",
                "--field-warnings-after",
                "1000",
            ])
            .args(scale)
            .output()
            .unwrap()
    };
    let first = run();
    let said = stderr(&first);
    assert!(first.status.success(), "{said}");
    let first_said = format!("field `colour` never occurs {looked_at}");
    assert!(said.contains(&first_said), "{said}");
    assert_eq!(said.matches("never occurs").count(), 1, "{said}");
    assert!(!said.contains("`rare`"), "{said}");
    fs::write(dir.join("events.jsonl"), events(4_000)).unwrap();
    let again = run();
    let said = stderr(&again);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(!said.contains("never occurs"), "{said}");
    // Looked at only at the end of the input (fewer events than the
    // default's): the same once resumed over the grown input.
    fs::remove_dir_all(dir.join("ckpt")).unwrap();
    fs::write(dir.join("events.jsonl"), events(3_000)).unwrap();
    let at_end = || {
        run_here(&dir)
            .args(["--output", "out.jsonl", "--checkpoint", "ckpt"])
            .args(scale)
            .output()
            .unwrap()
    };
    let first = at_end();
    let said = stderr(&first);
    assert!(
        said.contains("field `colour` never occurs in 3000 events"),
        "{said}"
    );
    fs::write(dir.join("events.jsonl"), events(4_000)).unwrap();
    let again = at_end();
    let said = stderr(&again);
    assert!(said.contains("resuming from checkpoint"), "{said}");
    assert!(!said.contains("never occurs"), "{said}");
}
