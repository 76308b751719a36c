//! `cepheid check --flink`: a warning at every place where a pattern's
//! results can differ from Apache Flink 2.3's (deviations D1-D4 of
//! `docs/semantics.md`, limits on partial matches), silence where the
//! pattern means the same in both. Checked on the shipped `patterns/` and
//! on the Flink oracle's golden cases (`tests/oracle/cases/`): a case that
//! records a deviation warns with its class, a case where cepheid agrees
//! with Flink gets no deviation warning, and a pattern Flink fails on at
//! run time (D5) is an error that says when Flink fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn check_flink(paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("check")
        .arg("--flink")
        .args(paths)
        .output()
        .expect("run cepheid")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The deviation classes warned about, in order (`D1`.. or `limit`).
fn classes(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("warning: "))
        .filter_map(|l| {
            if l.contains("differs from Flink 2.3 at a limit") {
                return Some("limit".to_string());
            }
            let at = l.find("differs from Flink 2.3 (")? + "differs from Flink 2.3 (".len();
            Some(l[at..at + 2].to_string())
        })
        .collect()
}

#[test]
fn the_shipped_patterns_mean_the_same_as_in_flink_but_one_d4() {
    let mut files: Vec<PathBuf> = std::fs::read_dir("patterns")
        .expect("patterns")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    for f in &files {
        let out = check_flink(&[f]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        // `account_takeover` has `timeouts`, a window and `skip past last
        // event`: a match let out when an earlier partial match expires
        // prunes others before their own deadlines (D4). It reads an
        // indicator too, which Flink has no construct for.
        let want: &[&str] = if f.ends_with("account_takeover.cep") {
            &["D4"]
        } else {
            &[]
        };
        assert_eq!(classes(&text), want, "{}:\n{text}", f.display());
        // Its new-IP indicator is a construct Flink has none of (said
        // once more).
        let constructs = if f.ends_with("account_takeover.cep") {
            assert!(
                text.contains("the condition of `login` reads a reference list or an indicator, which Flink CEP has no construct for"),
                "{text}"
            );
            1
        } else {
            0
        };
        assert_eq!(
            text.matches("\nwarning: ").count() + usize::from(text.starts_with("warning: ")),
            want.len() + constructs,
            "{text}"
        );
    }
}

/// Cases that agree with Flink on their events although the pattern has a
/// deviation: the events do not reach it (the warning is still right).
const NOT_HIT: &[(&str, &str, &str)] = &[
    (
        "group-ending-negation-before-any-take",
        "D1",
        "no match takes s1, so the negation never binds",
    ),
    (
        "group-ending-negation-start-keeps-its-take",
        "D1",
        "no event after s1's take satisfies s2",
    ),
    (
        "loop-group-greedy-end-restricts-head",
        "D1",
        "no s4 between two iterations",
    ),
    (
        "looping-group-trailing-negation-not-hit",
        "D1",
        "the events hold no c",
    ),
    (
        "looping-group-of-a-group-ending-in-negation-iterates",
        "D1",
        "Flink holds the negation between iterations too, and after the last one nothing follows",
    ),
    (
        "looping-group-nested-trailing-negation-closes-the-iteration",
        "D1",
        "no event satisfies s5",
    ),
];

#[test]
fn oracle_golden_cases_warn_exactly_where_they_deviate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/oracle/cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let record: Json = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
        )
        .expect("json");
        let deviation = record["deviation"].as_str().unwrap_or("");
        let out = check_flink(&[&dir.join("pattern.cep")]);
        let text = stderr(&out);
        let found = classes(&text);
        let rejected = record["expected"].get("error").is_some();
        let problem = if rejected && deviation.starts_with("D1") {
            // D1's consequence: an enforced group-ending negation's window
            // is checked as any element window is (semantics.md, D1).
            (out.status.code() != Some(1)
                || !text.contains("is larger than the pattern's `within`"))
            .then(|| format!("expected the element window error, got {:?}", out.status))
        } else if rejected {
            // D5: rejected, with a message that says when Flink fails.
            seen.insert("D5".to_string());
            (out.status.code() != Some(1) || !text.contains("Flink 2.3"))
                .then(|| format!("expected a D5 error naming Flink 2.3, got {:?}", out.status))
        } else if out.status.code() != Some(0) {
            Some(format!("exit {:?}", out.status.code()))
        } else if let Some(class) = ["D1", "D2", "D3", "D4"]
            .iter()
            .find(|c| deviation.starts_with(**c))
        {
            seen.insert(class.to_string());
            (!found.iter().any(|f| f == class)).then(|| format!("no {class} warning"))
        } else if let Some((_, class, _)) = NOT_HIT.iter().find(|(n, ..)| *n == name) {
            // (limit warnings aside, as below)
            let deviations: Vec<&String> = found.iter().filter(|f| *f != "limit").collect();
            (deviations != [*class]).then(|| format!("expected only a {class} warning"))
        } else {
            // Agrees with Flink: no deviation warning (a limit warning
            // says that many more events could differ).
            found
                .iter()
                .any(|f| f != "limit")
                .then(|| "a deviation warning on a case that agrees with Flink".to_string())
        };
        if let Some(p) = problem {
            failures.push(format!("{name}: {p}\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let classes: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        classes,
        ["D1", "D2", "D3", "D4", "D5"],
        "every class has a case"
    );
}

#[test]
fn a_warning_points_at_the_text_and_says_what_flink_does() {
    let dir = std::env::temp_dir().join(format!("cepheid-check-flink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.cep");
    std::fs::write(
        &file,
        "pattern p {\n    match a followed by (b not followed by c) followed by any d\n}\n",
    )
    .unwrap();
    let out = check_flink(&[&file]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(classes(&text), ["D1", "limit"], "{text}");
    let name = file.display().to_string();
    assert!(
        text.contains(&format!(
            "warning: {name}:2:44: pattern `p` differs from Flink 2.3 (D1): this `not followed by` ends a group"
        )),
        "{text}"
    );
    assert!(
        text.contains("Flink 2.3 ignores it (FLINK-15980)"),
        "{text}"
    );
    assert!(text.contains("--max-runs-per-key"), "{text}");
    assert!(
        text.contains("ok: 1 valid pattern in 1 file, 2 warnings"),
        "{text}"
    );
    // Without --flink, the same file is clean.
    let plain = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!stderr(&plain).contains("warning"), "{}", stderr(&plain));
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 41: `check --flink` on the alternation samples says, at each
/// alternation, that Flink has no equivalent (FLINK-4641, `MATCH_RECOGNIZE`
/// rejects `|`) and how a Flink user writes it today (one pattern per
/// branch, their outputs unioned, with what that loses); a warning, not a
/// refusal (exit 0), and no deviation class: no Flink pattern to deviate
/// from.
#[test]
fn an_alternation_says_flink_has_none_and_how_flink_users_write_it() {
    let out = check_flink(&[Path::new("patterns/alternation/rules.cep")]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(classes(&text).is_empty(), "{text}");
    let warnings: Vec<&str> = text
        .split("\nwarning: ")
        .filter(|w| w.contains("Flink 2.3 does not have"))
        .collect();
    assert_eq!(warnings.len(), 2, "one per alternation:\n{text}");
    let source = std::fs::read_to_string("patterns/alternation/rules.cep").unwrap();
    for (w, (pattern, alternation)) in warnings.iter().zip([
        (
            "risky_withdrawal",
            "(reset followed by withdrawal) or (new_device followed by withdrawal)",
        ),
        (
            "declines_then_order",
            "(declines{3} or (declined followed by card_change))",
        ),
    ]) {
        // The place: the line and column where the alternation starts.
        let (line, column) = source
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find(alternation).map(|c| (i + 1, c + 1)))
            .expect("the alternation in the file");
        assert!(w.contains(&format!("pattern `{pattern}`")), "{w}");
        assert!(w.contains(&format!("rules.cep:{line}:{column}:")), "{w}");
        assert!(w.contains(alternation), "{w}");
        assert!(
            w.contains("Flink CEP has no alternation (FLINK-4641)"),
            "{w}"
        );
        assert!(w.contains("MATCH_RECOGNIZE rejects `|`"), "{w}");
        assert!(
            w.contains("write one pattern per branch")
                && w.contains("union their outputs")
                && w.contains("an event both patterns use is reported twice"),
            "{w}"
        );
    }
    // The span underlines the whole alternation, not more.
    let first = warnings[0];
    let line = first
        .lines()
        .find(|l| l.contains("match (reset"))
        .expect("the source line");
    let marks = first
        .lines()
        .skip_while(|l| !l.contains("match (reset"))
        .nth(1)
        .expect("the underline");
    let start = line.find("(reset").unwrap();
    assert_eq!(marks.find('-'), Some(start), "{first}");
    assert_eq!(
        marks.trim_end().len() - start,
        "(reset followed by withdrawal) or (new_device followed by withdrawal)".len(),
        "{first}"
    );
}
