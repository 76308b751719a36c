//! The shipped rule library in `patterns/` passes `cepheid check` cleanly
//! (no errors, no warnings), and every rule says what it catches.

use std::path::PathBuf;
use std::process::Command;

fn pattern_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("patterns")
        .expect("patterns folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    files
}

/// The rules of the sample folders (`patterns/alternation/`,
/// `patterns/risk/`: rules with their events and expected records).
fn folder_rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("patterns")
        .expect("patterns folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).expect("sample folder"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_passes_check_without_warnings() {
    let files = pattern_files();
    assert!(files.len() >= 8, "only {} pattern files", files.len());
    let folders = folder_rule_files();
    assert!(
        folders.len() >= 2,
        "only {} sample folders' rules",
        folders.len()
    );
    for f in files.into_iter().chain(folders) {
        let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .arg("check")
            .arg(&f)
            .output()
            .expect("run cepheid");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}:\n{stderr}", f.display());
        assert!(!stderr.contains("warning"), "{}:\n{stderr}", f.display());
    }
}

#[test]
fn the_folder_loads_with_documented_unique_patterns() {
    let loaded = cepheid_engine::rules::load_paths(&[PathBuf::from("patterns")]);
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    assert!(loaded.patterns.len() >= 8);
    for p in &loaded.patterns {
        let doc = p.doc.as_deref().unwrap_or("");
        assert!(doc.len() > 40, "pattern {} needs a doc comment", p.name);
        assert!(
            !p.partition_by.is_empty(),
            "pattern {} is not keyed",
            p.name
        );
        assert!(p.within.is_some(), "pattern {} has no window", p.name);
    }
}

#[test]
fn explain_prints_every_pattern() {
    let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .args(["explain", "patterns", "--pattern", "price_v_shape"])
        .output()
        .expect("run cepheid");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("pattern price_v_shape\n"), "{text}");
    assert!(
        text.contains("next falling  [2 or more (looping), consecutive]"),
        "{text}"
    );
    assert!(
        text.contains("rebound = last(rising.price) - last(falling.price)"),
        "{text}"
    );
    assert!(text.contains("  automaton:\n"), "{text}");
    assert!(
        text.contains("(start)") && text.contains("(final)"),
        "{text}"
    );
    let dot = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .args(["explain", "patterns/unpaid_orders.cep", "--dot"])
        .output()
        .expect("run cepheid");
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.starts_with("digraph \"unpaid_order\" {"), "{dot}");
    // The compiled NFA: `not followed by paid` at the end with a window is a
    // pending state whose `paid` edge leads to a stop state.
    assert!(dot.contains("shape=diamond"), "{dot}");
    assert!(
        dot.contains("[label=\"proceed paid\", style=dotted]"),
        "{dot}"
    );
}

#[test]
fn command_line_exit_statuses() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .args(args)
            .output()
            .expect("run cepheid")
            .status
            .code()
    };
    assert_eq!(run(&["check"]), Some(2));
    assert_eq!(run(&["check", "no/such/file.cep"]), Some(4));
    assert_eq!(run(&["explain", "patterns", "--pattern", "nope"]), Some(2));
    assert_eq!(run(&["check", "tests/errors/duplicate_stage.cep"]), Some(1));
}

/// `cepheid explain … | head`: a reader that closes the pipe before the
/// text is written is no error (exit 0, as for `run`), not a panic. Before,
/// `print!` panicked ("failed printing to stdout: Broken pipe", exit 101).
#[test]
fn explain_into_a_closed_pipe_is_no_panic() {
    use std::process::Stdio;
    for extra in [&[][..], &["--dot"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .arg("explain")
            .arg("patterns")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs cepheid");
        // Close the reading end before the command has loaded its patterns.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("waits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{extra:?}: {stderr}");
    }
}
