//! Windows whose end would pass the largest time (issue: time near the end
//! of the range made `cepheid run` spin forever). A window closes at its
//! start (or previous event) plus its length, saturated at `i64::MAX`: the
//! partition's deadline and the expiry test use that same value, so a due
//! deadline always expires something. A window that would end past the
//! largest time therefore closes when time reaches it (an event or
//! watermark at `i64::MAX`, or `--flush-at-end`), never earlier.
//!
//! Each run has a watchdog: a regression fails the test instead of hanging
//! the suite.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cepheid run PATTERNS --no-progress EXTRA` on `stdin`; panics when
/// it takes more than 20 s. Returns the exit code and standard output.
fn run(patterns: &str, stdin: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("run")
        .arg(patterns)
        .arg("--no-progress")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cepheid starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            child
                .stdout
                .take()
                .expect("stdout")
                .read_to_string(&mut out)
                .expect("stdout read");
            return (status.code(), out);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("cepheid run {patterns} {extra:?} hangs on {stdin}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pattern_file(name: &str, text: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("time_extremes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.cep"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const MAX: i64 = i64::MAX;

#[test]
fn an_event_at_the_largest_time_does_not_hang_the_shipped_patterns() {
    let patterns = concat!(env!("CARGO_MANIFEST_DIR"), "/patterns");
    let line = format!(r#"{{"ts":{MAX},"type":"order_created","order_id":"o1"}}"#);
    let (code, out) = run(patterns, &format!("{line}\n"), &[]);
    assert_eq!(code, Some(0));
    // `created not followed by paid within 15m`: the window would end past
    // the largest time, so it closes right there and the order is unpaid.
    assert!(out.contains(r#""pattern":"unpaid_order""#), "{out}");
}

#[test]
fn a_pattern_window_ending_past_the_largest_time_closes_at_flush() {
    let p = pattern_file(
        "day",
        "pattern p {\n within 1d\n timeouts\n match a followed by b\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}\n",
    );
    let start = MAX - 86_400_000 + 1;
    let input = format!("{{\"ts\":{start},\"k\":\"a\"}}\n");
    // Without flush the window is still open at the end of input.
    let (code, out) = run(&p, &input, &[]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    let (code, out) = run(&p, &input, &["--flush-at-end"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!(r#""expired_at":{MAX}"#)), "{out}");
}

#[test]
fn the_largest_window_closes_at_flush() {
    let p = pattern_file(
        "largest",
        &format!("pattern p {{\n within {MAX}ms\n timeouts\n match a followed by b\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}}\n"),
    );
    let (code, out) = run(&p, "{\"ts\":5,\"k\":\"a\"}\n", &["--flush-at-end"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!(r#""expired_at":{MAX}"#)), "{out}");
}

#[test]
fn an_element_window_near_the_largest_time_does_not_hang() {
    let p = pattern_file(
        "element",
        "pattern p {\n timeouts\n match a followed by b within 1s\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}\n",
    );
    let a = MAX - 10;
    for extra in [&[][..], &["--flush-at-end"][..]] {
        let input = format!("{{\"ts\":{a},\"k\":\"a\"}}\n{{\"ts\":{MAX},\"k\":\"b\"}}\n");
        let (code, out) = run(&p, &input, extra);
        assert_eq!(code, Some(0));
        // b at the largest time is outside a's window (it closes there).
        assert!(!out.contains(r#""kind":"match""#), "{out}");
        assert!(out.contains(r#""kind":"timeout""#), "{out}");
    }
}

#[test]
fn an_event_at_the_smallest_time_is_not_late() {
    // The watermark started at i64::MIN, so an event there (and a tie with
    // it) was always late.
    let p = pattern_file(
        "smallest",
        "pattern p {\n match a followed by b\n where\n  a: k == \"a\"\n  b: k == \"b\"\n}\n",
    );
    let min = i64::MIN;
    let input = format!("{{\"ts\":{min},\"k\":\"a\"}}\n{{\"ts\":{min},\"k\":\"b\"}}\n");
    let (code, out) = run(&p, &input, &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains(r#""kind":"match""#), "{out}");
}
