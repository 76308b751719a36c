//! `cepheid run` over inputs larger than the batches its reader thread
//! hands over (1024 lines) and its read buffer (256 KiB): line numbers,
//! `--strict` and the output stay those of a line-by-line reading.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const PAIRS: &str = r#"
pattern pair {
    partition by k
    within 1s
    match a followed by b
    where
        a: t == "a"
        b: t == "b"
}
"#;

/// `n` lines: for each key an `a` then a `b` one millisecond later, and a
/// malformed line wherever `bad(line number)` says, plus a long padding
/// field so that the input spans several read buffers.
fn events(n: usize, bad: impl Fn(usize) -> bool) -> String {
    let pad = "x".repeat(200);
    let mut text = String::new();
    for i in 0..n {
        let line_no = i + 1;
        if bad(line_no) {
            text.push_str("{\"ts\": oops}\n");
            continue;
        }
        let (key, t) = (i / 2, if i % 2 == 0 { "a" } else { "b" });
        text.push_str(&format!(
            "{{\"ts\":{i},\"k\":{key},\"t\":\"{t}\",\"pad\":\"{pad}\"}}\n"
        ));
    }
    text
}

fn dir(name: &str) -> crate::common::Scratch {
    let dir = crate::common::scratch(&format!("run_large_{name}"));
    std::fs::write(dir.join("p.cep"), PAIRS).unwrap();
    dir
}

fn run(dir: &Path, input: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cepheid"));
    command
        .arg("run")
        .arg(dir.join("p.cep"))
        .args(["--no-progress", "--flush-at-end"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Some(input) = input else {
        return command
            .arg("--events")
            .arg(dir.join("events"))
            .output()
            .unwrap();
    };
    let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = input.to_string();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, text.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

#[test]
fn malformed_lines_far_into_a_large_input_keep_their_numbers() {
    let dir = dir("numbers");
    let bad = |n: usize| n == 1500 || n == 4099;
    let text = events(6000, bad);
    std::fs::write(dir.join("events"), &text).unwrap();
    for input in [None, Some(text.as_str())] {
        let out = run(&dir, input, &[]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(":1500: malformed line: invalid JSON"), "{err}");
        assert!(err.contains(":4099: malformed line: invalid JSON"), "{err}");
        assert!(err.contains("5998 events read, 2 malformed"), "{err}");
        // 3000 pairs, two of which lost one event.
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2998);
    }
}

#[test]
fn strict_stops_far_into_a_large_input() {
    let dir = dir("strict");
    let text = events(6000, |n| n == 3001);
    std::fs::write(dir.join("events"), &text).unwrap();
    let out = run(&dir, None, &["--strict"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":3001: malformed line"), "{err}");
    assert!(err.contains("3000 events read, 1 malformed"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1500);
}
