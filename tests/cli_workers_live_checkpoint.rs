//! `cepheid run --workers 2 --follow --checkpoint DIR`: a followed file
//! that grows while the run is killed with SIGKILL at random moments and
//! restarted, stopped by SIGTERM (a last cut), rotated while stopped, and
//! grown again, ends with the outputs (sorted, as those of any worker
//! layout) and the summary of one followed run that was never
//! interrupted, over the same lines.

use crate::common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::crash::{self, sorted, Moments};
use common::{cepheid, Live, PATIENCE};

/// The kill-and-resume rules, and one that says a phase was read: a
/// `sentinel` event comes out once the watermark passes it.
fn rules() -> String {
    format!(
        "{}\npattern sentinel {{\n    match s\n    where s: type == \"sentinel\"\n    select phase = s.phase\n}}\n",
        crash::PATTERNS
    )
}

/// `n` lines of orders, payments and failures from time `from` on, about
/// 10 ms apart and up to 3 s out of order (late ones with `--max-delay
/// 2s`), now and then a malformed line; then a sentinel of `phase` above
/// them all, and an event far enough above it to release it. The next
/// phase starts above that.
fn phase(seed: u64, from: u64, n: usize, phase: u32) -> (String, u64) {
    let mut next = crash::below_from(seed);
    let mut text = String::new();
    for i in 0..n {
        let ts = from + i as u64 * 10 + next(3000);
        let line = match next(100) {
            0 if i % 7 == 0 => "{\"ts\": \"soon\"}".to_string(),
            0..=39 => format!(
                r#"{{"ts":{ts},"type":"created","order":"o{}"}}"#,
                next(2000)
            ),
            40..=69 => format!(
                r#"{{"ts":{ts},"type":"paid","order":"o{}","amount":{}}}"#,
                next(2000),
                next(500)
            ),
            _ => format!(
                r#"{{"ts":{ts},"type":"fail","user":"u{}","amount":{}}}"#,
                next(100),
                next(50)
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let sentinel = from + n as u64 * 10 + 3000;
    text.push_str(&format!(
        "{{\"ts\":{sentinel},\"type\":\"sentinel\",\"phase\":{phase}}}\n{{\"ts\":{},\"type\":\"tick\"}}\n",
        sentinel + 2001
    ));
    (text, sentinel + 2001 + 3001)
}

/// The run over `events.jsonl` in `dir`, writing `out_NAME.jsonl` and
/// `late_NAME.jsonl`, with `extra` flags.
fn start(dir: &Path, name: &str, extra: &[&str]) -> Live {
    let mut command = cepheid();
    command
        .current_dir(dir)
        .args(["run", "rules.cep", "--events", "events.jsonl", "--follow"])
        .args(["--workers", "2", "--max-delay", "2s", "--no-progress"])
        .args(["--output", &format!("out_{name}.jsonl")])
        .args(["--late", &format!("late_{name}.jsonl")])
        .args(extra);
    Live::spawn(&mut command)
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Waits (at most [`PATIENCE`]) until the sentinel of `phase` is in the
/// output `out` (every line before it was read).
fn wait_for_sentinel(dir: &Path, out: &str, phase: u32) {
    let needle = format!("\"select\":{{\"phase\":{phase}}}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = fs::read_to_string(dir.join(out)).unwrap_or_default();
        if text.contains(&needle) {
            return;
        }
        assert!(Instant::now() < deadline, "no sentinel {phase} in {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM: exit 143, a last cut; the standard error.
fn stop(live: Live) -> String {
    stop_by(live, "TERM", 143)
}

/// `signal`: exit `status`, a last cut; the standard error.
fn stop_by(live: Live, signal: &str, status: i32) -> String {
    live.signal(signal);
    let (code, _, stderr) = live.finish();
    assert_eq!(code.code(), Some(status), "{stderr}");
    assert!(
        stderr.contains("checkpoint taken in ckpt as the run stopped"),
        "{stderr}"
    );
    stderr
}

/// The interrupted run, with checkpoints every 40 ms; once a cut is
/// complete, it must say it resumes (then it has truncated the outputs).
fn resume(dir: &Path) -> Live {
    let complete = common::newest_checkpoint(&dir.join("ckpt")).is_some();
    let live = start(
        dir,
        "cut",
        &["--checkpoint", "ckpt", "--checkpoint-every", "40ms"],
    );
    if complete {
        live.stderr_line("resuming from checkpoint in ckpt (2 workers)");
    }
    live
}

/// Appends `text` to the followed file in slices of 400 lines, 20 ms
/// apart, killing the run (SIGKILL) at random moments and starting it
/// again; returns the run still going.
fn grow_with_kills(
    dir: &Path,
    text: &str,
    mut live: Live,
    moments: &mut Moments,
    kills: &mut u32,
) -> Live {
    let events = dir.join("events.jsonl");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut started = Instant::now();
    let mut kill_at = moments.between(Duration::from_millis(80), Duration::from_millis(500));
    for slice in lines.chunks(400) {
        append(&events, &slice.concat());
        std::thread::sleep(Duration::from_millis(20));
        if started.elapsed() >= kill_at {
            live.child.kill().unwrap();
            let (status, _, stderr) = live.finish();
            assert_eq!(status.code(), None, "killed: {stderr}");
            *kills += 1;
            live = resume(dir);
            started = Instant::now();
            kill_at = moments.between(Duration::from_millis(80), Duration::from_millis(500));
        }
    }
    live
}

#[test]
fn a_followed_file_on_two_workers_killed_rotated_and_stopped_ends_as_an_uninterrupted_run() {
    let dir = common::scratch("workers_live_crash");
    fs::write(dir.join("rules.cep"), rules()).unwrap();
    let (first, from) = phase(0x5EED, 0, 12_000, 1);
    let (second, _) = phase(0xBEEF, from, 12_000, 2);
    let events = dir.join("events.jsonl");

    // Uninterrupted: the first file, rotated while it runs, the second.
    fs::write(&events, &first).unwrap();
    let whole = start(&dir, "whole", &[]);
    wait_for_sentinel(&dir, "out_whole.jsonl", 1);
    fs::rename(&events, dir.join("events.jsonl.whole")).unwrap();
    fs::write(&events, &second).unwrap();
    wait_for_sentinel(&dir, "out_whole.jsonl", 2);
    whole.signal("TERM");
    let (status, _, stderr) = whole.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let expected = crash::summary(&stderr);
    assert!(expected.contains(" events read, "), "{expected}");
    for none in [" 0 late", " 0 malformed", " 0 matches", " 0 timeouts"] {
        assert!(!expected.contains(none), "{expected}");
    }
    assert!(
        expected.contains(" waiting for the watermark "),
        "{expected}"
    );
    fs::remove_file(&events).unwrap();

    // Interrupted: the first file grows while the run is killed at random
    // moments; SIGTERM stops it (a last cut) with lines perhaps not read.
    let mut moments = Moments(0xC0FFEE);
    let mut kills = 0;
    let lines: Vec<&str> = first.split_inclusive('\n').collect();
    let (grown, rest) = lines.split_at(lines.len() - 1_002);
    fs::write(&events, "").unwrap();
    let live = resume(&dir);
    let live = grow_with_kills(&dir, &grown.concat(), live, &mut moments, &mut kills);
    let stopped = stop(live);

    // Grown while stopped: read on resuming, from the place of the last
    // cut; stopped again (SIGINT) once all was read. (On a loaded machine
    // every kill can come before a cut, and the last run can be stopped
    // before its reader read a line: its cut then holds no place, and the
    // file is read from its beginning, as the first time.)
    append(&events, &rest.concat());
    let live = resume(&dir);
    if !crash::summary(&stopped).starts_with("cepheid: 0 events read") {
        let said = live.stderr_line("the input goes on at line ");
        assert!(said.ends_with(" of events.jsonl"), "{said}");
    }
    wait_for_sentinel(&dir, "out_cut.jsonl", 1);
    stop_by(live, "INT", 130);

    // Rotated while stopped: the new file from its beginning (the old one
    // was read to its end), growing while the run is killed again.
    let lines: Vec<&str> = second.split_inclusive('\n').collect();
    let (now, later) = lines.split_at(1_000);
    fs::rename(&events, dir.join("events.jsonl.1")).unwrap();
    fs::write(&events, now.concat()).unwrap();
    let live = resume(&dir);
    live.stderr_line("rotated since, so it is read from its beginning");
    let live = grow_with_kills(&dir, &later.concat(), live, &mut moments, &mut kills);
    wait_for_sentinel(&dir, "out_cut.jsonl", 2);
    let stderr = stop(live);
    assert!(kills >= 3, "{kills} kills");
    assert_eq!(crash::summary(&stderr), expected, "{stderr}");
    // A run stopped by its last cut replays nothing.
    let again = resume(&dir);
    let stderr = stop(again);
    assert_eq!(crash::summary(&stderr), expected, "{stderr}");
    for (cut, whole) in [
        ("out_cut.jsonl", "out_whole.jsonl"),
        ("late_cut.jsonl", "late_whole.jsonl"),
    ] {
        assert!(
            sorted(&dir, cut) == sorted(&dir, whole),
            "{cut} and {whole} differ once sorted ({kills} kills)"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_followed_files_checkpoint_is_refused_on_another_worker_count() {
    let dir = common::scratch("workers_live_rescale");
    fs::write(dir.join("rules.cep"), rules()).unwrap();
    let (first, _) = phase(0x5EED, 0, 2_000, 1);
    fs::write(dir.join("events.jsonl"), &first).unwrap();
    let live = start(
        &dir,
        "cut",
        &["--checkpoint", "ckpt", "--checkpoint-every", "40ms"],
    );
    wait_for_sentinel(&dir, "out_cut.jsonl", 1);
    stop(live);
    let before = fs::read(dir.join("out_cut.jsonl")).unwrap();
    // One reader, on worker 0: its place and clock do not rescale.
    let other = cepheid()
        .current_dir(&dir)
        .args(["run", "rules.cep", "--events", "events.jsonl", "--follow"])
        .args(["--workers", "3", "--max-delay", "2s", "--no-progress"])
        .args(["--output", "out_cut.jsonl", "--late", "late_cut.jsonl"])
        .args(["--checkpoint", "ckpt"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(5), "{said}");
    assert!(
        said.contains("taken on 2 workers in all, not 3 (a checkpoint of a followed file resumes on the same number of workers)"),
        "{said}"
    );
    assert_eq!(fs::read(dir.join("out_cut.jsonl")).unwrap(), before);
    let _ = fs::remove_dir_all(&dir);
}

/// Waits until the files `names` in `dir` exist and keep their lengths
/// over 300 ms (what the run wrote is out).
fn settled(dir: &Path, names: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    let lengths = || -> Vec<Option<u64>> {
        (names.iter())
            .map(|name| fs::metadata(dir.join(name)).map(|m| m.len()).ok())
            .collect()
    };
    let mut last = lengths();
    loop {
        assert!(Instant::now() < deadline, "{names:?} never settled");
        std::thread::sleep(Duration::from_millis(300));
        let now = lengths();
        if now.iter().all(Option::is_some) && now == last {
            return;
        }
        last = now;
    }
}

/// The lines of `bytes`, sorted (as [`sorted`] gives a file's).
fn sorted_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    lines.sort();
    lines
}

/// The run over both phases, followed and never interrupted: its outputs
/// (`out_whole.jsonl`, `late_whole.jsonl`) are what any run over them
/// writes, once sorted.
fn whole_run(dir: &Path, first: &str, second: &str) {
    let events = dir.join("events.jsonl");
    fs::write(&events, first).unwrap();
    let whole = start(dir, "whole", &[]);
    wait_for_sentinel(dir, "out_whole.jsonl", 1);
    append(&events, second);
    wait_for_sentinel(dir, "out_whole.jsonl", 2);
    whole.signal("TERM");
    let (status, _, stderr) = whole.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

/// The rotated file `NAME.1` to `at` bytes (all of it: `None`), then the
/// new `NAME`, hold the records of the run over both phases; the new one
/// no NUL bytes.
fn assert_rotated_whole(dir: &Path, name: &str, whole: &str, at: Option<usize>, case: &str) {
    let old = fs::read(dir.join(format!("{name}.1"))).unwrap();
    let new = fs::read(dir.join(name)).unwrap();
    assert!(!new.contains(&0), "{case}: NUL bytes in the new {name}");
    let at = at.unwrap_or(old.len());
    assert!(old.len() >= at, "{case}: {name}.1 shorter than the cut");
    assert!(
        sorted_lines(&[&old[..at], &new[..]].concat()) == sorted(dir, whole),
        "{case}: {name}.1 then {name} are not the records of one run"
    );
}

/// The outputs of a run on two workers rotated while it follows its
/// input (logrotate's `create`: moved away; `copytruncate`: copied and
/// truncated in place), with and without `--checkpoint`: the records
/// kept going to the moved file, or landed at the old offset after NUL
/// bytes. Each output is opened again under its name, written by
/// appending, and (with `--checkpoint`) locked again (issue 26; the twin
/// of `cli_checkpoint.rs`'s
/// `an_output_rotated_while_it_runs_goes_on_in_the_new_file`).
#[cfg(unix)]
#[test]
fn outputs_rotated_while_two_workers_run_go_on_in_the_new_files() {
    let dir = common::scratch("workers_rotated_live");
    fs::write(dir.join("rules.cep"), rules()).unwrap();
    let (first, from) = phase(0x5EED, 0, 3_000, 1);
    let (second, _) = phase(0xBEEF, from, 3_000, 2);
    whole_run(&dir, &first, &second);
    let outputs = ["out_rot.jsonl", "late_rot.jsonl"];
    for checkpoint in [false, true] {
        for how in ["create", "copytruncate"] {
            let case = format!("{how}, checkpoint {checkpoint}");
            for name in outputs {
                let _ = fs::remove_file(dir.join(name));
                let _ = fs::remove_file(dir.join(format!("{name}.1")));
            }
            let _ = fs::remove_dir_all(dir.join("ckpt"));
            fs::write(dir.join("events.jsonl"), &first).unwrap();
            let extra: &[&str] = if checkpoint {
                &["--checkpoint", "ckpt", "--checkpoint-every", "40ms"]
            } else {
                &[]
            };
            let live = start(&dir, "rot", extra);
            wait_for_sentinel(&dir, "out_rot.jsonl", 1);
            settled(&dir, &outputs);
            for name in outputs {
                let (path, moved) = (dir.join(name), dir.join(format!("{name}.1")));
                assert!(fs::metadata(&path).unwrap().len() > 0, "{case}: {name}");
                if how == "create" {
                    fs::rename(&path, &moved).unwrap();
                } else {
                    fs::copy(&path, &moved).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
            }
            append(&dir.join("events.jsonl"), &second);
            wait_for_sentinel(&dir, "out_rot.jsonl", 2);
            settled(&dir, &outputs);
            if checkpoint {
                // The new file is locked as the first was: another run on
                // it (with another folder) is refused.
                let other = cepheid()
                    .current_dir(&dir)
                    .args(["run", "rules.cep", "--events", "events.jsonl", "--follow"])
                    .args(["--workers", "2", "--no-progress"])
                    .args(["--output", "out_rot.jsonl", "--checkpoint", "ckpt_other"])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                let said = String::from_utf8_lossy(&other.stderr);
                assert_eq!(other.status.code(), Some(5), "{case}: {said}");
                assert!(
                    said.contains("--output out_rot.jsonl is being written by another cepheid run"),
                    "{case}: {said}"
                );
                stop(live);
            } else {
                live.signal("TERM");
                let (status, _, stderr) = live.finish();
                assert_eq!(status.code(), Some(143), "{case}: {stderr}");
            }
            let moved = fs::read_to_string(dir.join("out_rot.jsonl.1")).unwrap();
            assert!(
                !moved.contains("\"select\":{\"phase\":2}"),
                "{case}: records went on in the moved file"
            );
            for (name, whole) in outputs.iter().zip(["out_whole.jsonl", "late_whole.jsonl"]) {
                assert_rotated_whole(&dir, name, whole, None, &case);
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The length of `--output` (`field` "output") or `--late` ("late")
/// recorded in the complete cut of `ckpt`.
fn cut_len(dir: &Path, field: &str) -> usize {
    let stored = common::newest_stored(&dir.join("ckpt")).expect("a complete cut");
    let state = stored.marker().sink_state();
    let len = if field == "output" {
        state.output_len
    } else {
        state.late_len
    };
    len.unwrap() as usize
}

/// The outputs of a run on two workers rotated while it was stopped:
/// every restart was refused for ever (exit 5, "shorter than at the
/// checkpoint"). Resumed, each goes on in the new file with the records
/// after the cut, as the single run does: stopped by SIGTERM (a last cut:
/// nothing after it), or killed (SIGKILL: what it wrote after the last
/// cut into the rotated file is written again; issue 26; the twin of
/// `cli_checkpoint.rs`'s
/// `an_output_rotated_since_the_checkpoint_goes_on_in_the_new_file`).
#[test]
fn outputs_rotated_while_two_workers_were_stopped_go_on_in_the_new_files() {
    let dir = common::scratch("workers_rotated_since");
    fs::write(dir.join("rules.cep"), rules()).unwrap();
    let (first, from) = phase(0x5EED, 0, 3_000, 1);
    let (second, _) = phase(0xBEEF, from, 3_000, 2);
    whole_run(&dir, &first, &second);
    let outputs = ["out_cut.jsonl", "late_cut.jsonl"];
    for (how, killed) in [("create", false), ("copytruncate", false), ("create", true)] {
        let case = format!("{how}, killed {killed}");
        for name in outputs {
            let _ = fs::remove_file(dir.join(name));
            let _ = fs::remove_file(dir.join(format!("{name}.1")));
        }
        let _ = fs::remove_dir_all(dir.join("ckpt"));
        // Grown in slices: cuts are taken as the input comes (a cut
        // completes once the sources read past it).
        fs::write(dir.join("events.jsonl"), "").unwrap();
        let mut live = resume(&dir);
        for slice in first.split_inclusive('\n').collect::<Vec<_>>().chunks(300) {
            append(&dir.join("events.jsonl"), &slice.concat());
            std::thread::sleep(Duration::from_millis(30));
        }
        wait_for_sentinel(&dir, "out_cut.jsonl", 1);
        settled(&dir, &outputs);
        if killed {
            live.child.kill().unwrap();
            let (status, _, stderr) = live.finish();
            assert_eq!(status.code(), None, "{case}: {stderr}");
        } else {
            stop(live);
        }
        let at = [cut_len(&dir, "output"), cut_len(&dir, "late")];
        assert!(at[0] > 0 && at[1] > 0, "{case}: {at:?}");
        for name in outputs {
            let (path, moved) = (dir.join(name), dir.join(format!("{name}.1")));
            if how == "create" {
                fs::rename(&path, &moved).unwrap();
            } else {
                fs::copy(&path, &moved).unwrap();
            }
            fs::write(&path, b"").unwrap();
        }
        append(&dir.join("events.jsonl"), &second);
        let live = resume(&dir);
        wait_for_sentinel(&dir, "out_cut.jsonl", 2);
        let said = stop(live);
        for name in outputs {
            assert!(
                said.contains(&format!(
                    "warning: checkpoint in ckpt: {name} was rotated since"
                )),
                "{case}: {said}"
            );
        }
        let wholes = ["out_whole.jsonl", "late_whole.jsonl"];
        for ((name, whole), at) in outputs.iter().zip(wholes).zip(at) {
            assert_rotated_whole(&dir, name, whole, Some(at), &case);
        }
    }
    let _ = fs::remove_dir_all(&dir);
}
