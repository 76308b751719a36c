//! Every conformance case's `pattern.cep` parses, lowers and survives a
//! print → parse round trip; the cases that expect a compile-time error are
//! rejected by `cepheid check` with exit status 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shared_contract;

fn cases() -> Vec<PathBuf> {
    let root = shared_contract::path("conformance/flink");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("conformance cases folder")
        .map(|e| e.expect("folder entry").path())
        .filter(|p| p.join("pattern.cep").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no conformance cases in {}",
        root.display()
    );
    dirs
}

/// The case's `expected_error` when it is a compile-time error.
fn compile_error(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("case.json")).expect("case.json");
    let case: serde_json::Value = serde_json::from_str(&text).expect("case.json is JSON");
    case.get("expected_error")
        .and_then(|e| e.as_str())
        .filter(|e| !e.starts_with("runtime:"))
        .map(str::to_string)
}

#[test]
fn valid_cases_parse_lower_and_round_trip() {
    let mut checked = 0;
    for dir in cases().iter().filter(|d| compile_error(d).is_none()) {
        let path = dir.join("pattern.cep");
        let src = std::fs::read_to_string(&path).expect("pattern.cep");
        let loaded = cepheid_engine::rules::load_str(&path.display().to_string(), &src);
        assert!(!loaded.has_errors(), "{}", loaded.render());
        assert_eq!(loaded.patterns.len(), 1, "{}", path.display());
        let ast = cepheid_syntax::parse(&src).expect("parses");
        let printed = cepheid_syntax::print_file(&ast);
        let again = cepheid_syntax::parse(&printed).expect("printed text parses");
        assert_eq!(again.without_spans(), ast.without_spans(), "{printed}");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} valid cases");
}

#[test]
fn error_cases_are_rejected_by_check() {
    let mut checked = 0;
    for dir in cases() {
        let Some(expected) = compile_error(&dir) else {
            continue;
        };
        let out = Command::new(env!("CARGO_BIN_EXE_cepheid"))
            .arg("check")
            .arg(dir.join("pattern.cep"))
            .output()
            .expect("run cepheid");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: expected rejection ({expected}), got:\n{stderr}",
            dir.display()
        );
        assert!(stderr.contains("pattern.cep:"), "{stderr}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} error cases");
}
