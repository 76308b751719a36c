//! The README's first command, end to end: every rule in `patterns/` over
//! the sample stream `examples/data/sample.jsonl`
//! (`cargo run --release -- run patterns/ --events examples/data/sample.jsonl`,
//! here with the binary this test run built).

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn every_pattern_finds_something_in_the_sample_stream() {
    let output = Command::new(env!("CARGO_BIN_EXE_cepheid"))
        .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("malformed line"), "{stderr}");
    // The summary: its first line, then one per pattern.
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("cepheid: ") && l.contains("events read"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let summary = lines[at];
    let pattern_lines = &lines[at + 1..];

    let mut per_pattern: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let counts = per_pattern
            .entry(record["pattern"].as_str().unwrap().to_string())
            .or_default();
        match record["kind"].as_str() {
            Some("match") => counts.0 += 1,
            Some("timeout") => counts.1 += 1,
            other => panic!("unexpected record kind {other:?}"),
        }
    }
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/patterns")).unwrap() {
        // (the `.cep` files `cepheid run patterns/` loads: not the folder
        // `patterns/risk/`)
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "cep") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pattern ") {
                names.push(rest.trim_end_matches(['{', ' ']).to_string());
            }
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    assert_eq!(pattern_lines.len(), names.len(), "{stderr}");
    for name in &names {
        assert!(
            per_pattern.get(name).is_some_and(|&(m, t)| m + t > 0),
            "pattern {name} finds nothing in the sample: {per_pattern:?}"
        );
        // Its line in the summary says what it wrote.
        let (m, t) = per_pattern[name];
        let line = pattern_lines
            .iter()
            .find(|l| l.starts_with(&format!("cepheid: pattern `{name}`: ")))
            .unwrap_or_else(|| panic!("no summary line for {name}: {stderr}"));
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        assert!(
            line.contains(&format!(
                ", {}, {},",
                plural(m, "match", "matches"),
                plural(t, "timeout", "timeouts")
            )),
            "{line}"
        );
    }
    // A few events arrive seconds out of order: late without --max-delay.
    assert!(summary.contains(" 3 late,"), "{summary}");
    // Two account takeovers start but do not finish within two hours.
    assert!(summary.contains(" 2 timeouts"), "{summary}");
}
