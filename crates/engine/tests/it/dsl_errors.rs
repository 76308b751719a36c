//! The data-driven error suite: every file in `tests/errors/` ends with
//! `// expect: SEVERITY LINE:COLUMN: MESSAGE FRAGMENT` lines, and loading
//! the file must give exactly those diagnostics, in that order, each
//! rendered with `path:line:column: message` on its first line.

use std::path::PathBuf;

/// One expected diagnostic.
#[derive(Debug)]
struct Expect {
    severity: String,
    position: String,
    fragment: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("// expect: "))
        .map(|rest| {
            let (severity, rest) = rest.split_once(' ').expect("severity");
            let (position, fragment) = rest.split_once(": ").expect("position");
            Expect {
                severity: severity.to_string(),
                position: position.to_string(),
                fragment: fragment.to_string(),
            }
        })
        .collect()
}

#[test]
fn every_error_file_gives_its_expected_diagnostics() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cepheid_testkit::path("tests/errors"))
        .expect("tests/errors")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cep"))
        .collect();
    files.sort();
    let mut distinct = std::collections::HashSet::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        let expected = expectations(&String::from_utf8_lossy(&bytes));
        assert!(
            !expected.is_empty(),
            "{}: no `// expect:` line",
            path.display()
        );
        let name = path.display().to_string();
        let loaded = cepheid_engine::rules::load_bytes(&name, &bytes);
        let rendered: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| d.render(&loaded.sources))
            .collect();
        assert_eq!(
            rendered.len(),
            expected.len(),
            "{name}: expected {expected:#?}\ngot:\n{}",
            rendered.join("\n")
        );
        for (got, want) in rendered.iter().zip(&expected) {
            let first = got.lines().next().unwrap_or_default();
            let prefix = format!("{}: {name}:{}: ", want.severity, want.position);
            assert!(
                first.starts_with(&prefix) && first.contains(&want.fragment),
                "{name}: expected `{prefix}...{}`, got:\n{got}",
                want.fragment
            );
            assert!(
                got.contains('^') || got.contains('-'),
                "no underline:\n{got}"
            );
            distinct.insert(want.fragment.clone());
        }
    }
    assert!(files.len() >= 30, "only {} error files", files.len());
    assert!(
        distinct.len() >= 30,
        "only {} distinct errors",
        distinct.len()
    );
}
