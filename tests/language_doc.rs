//! `docs/language.md` says what it shows: every block marked `cep` is a
//! complete file that `cepheid check` accepts, and the block marked
//! `cep-rejected` is one it rejects with the message the text quotes; the
//! diagnostics it shows (`console`) are what `cepheid check` prints.

use std::fs;
use std::process::Command;

use crate::common::scratch;

/// The blocks of `docs/language.md` fenced as ```` ```INFO ````: the line
/// of each (from 1) and its text.
fn blocks(info: &str) -> Vec<(usize, String)> {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/language.md"))
        .expect("reads docs/language.md");
    let fence = format!("```{info}");
    let mut found = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            None if line == fence => open = Some((i + 2, String::new())),
            None => {}
            Some(_) if line == "```" => found.extend(open.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a ```{info} block is not closed");
    found
}

/// `cepheid check` of `text` written to a file: its exit status and
/// standard error.
fn check(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = scratch(name);
    let file = dir.join("example.cep");
    fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_cep_example_of_the_language_reference_is_accepted() {
    let examples = blocks("cep");
    assert!(examples.len() >= 20, "only {} examples", examples.len());
    for (line, text) in examples {
        let (status, stderr) = check(&format!("language_doc_{line}"), &text);
        assert_eq!(
            status,
            Some(0),
            "docs/language.md:{line}: `cepheid check` refuses the example:\n{stderr}"
        );
        assert!(
            !stderr.contains("error"),
            "docs/language.md:{line}: {stderr}"
        );
    }
}

#[test]
fn the_rejected_example_is_rejected_as_the_reference_says() {
    let rejected = blocks("cep-rejected");
    let expected = [
        "a looping group needs an element that is not optional",
        "`blocked_ip` is not a list",
        "the score thresholds are out of order: each must be higher than the one before",
    ];
    assert_eq!(rejected.len(), expected.len());
    for ((line, text), message) in rejected.iter().zip(expected) {
        let (status, stderr) = check(&format!("language_doc_rejected_{line}"), text);
        assert_eq!(status, Some(1), "docs/language.md:{line}: {stderr}");
        assert!(
            stderr.contains(message),
            "docs/language.md:{line}: {stderr}"
        );
    }
}

/// The diagnostics shown in section 8 are what `cepheid check` prints for
/// the file they quote, byte for byte.
#[test]
fn the_diagnostics_shown_are_what_check_prints() {
    let shown = blocks("console");
    assert_eq!(shown.len(), 1);
    let (line, text) = &shown[0];
    let dir = scratch("language_doc_console");
    fs::write(
        dir.join("rules.cep"),
        "pattern p {\n    match a followed by b followed by a\n    where\n        a: x == 1\n        c: y == 2\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .args(["check", "rules.cep"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        *text,
        "docs/language.md:{line} is not what `cepheid check` prints"
    );
}
