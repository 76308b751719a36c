//! Loading: folders (sorted `*.cep` files), names unique across files, I/O
//! errors, size and diagnostic limits, bytes that are not text.

use std::path::PathBuf;

use cepheid_engine::rules::{load_bytes, load_paths, load_str};
use cepheid_syntax::{DiagnosticKind, MAX_FILE_SIZE};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cepheid-dsl-load-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn folders_load_cep_files_in_name_order() {
    let dir = temp_dir("order");
    std::fs::write(dir.join("b.cep"), "pattern second { match x }").unwrap();
    std::fs::write(dir.join("a.cep"), "pattern first { match x }").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a pattern").unwrap();
    let loaded = load_paths(std::slice::from_ref(&dir));
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(loaded.pattern_sources, [0, 1]);
    assert!(loaded.sources[0].name.ends_with("a.cep"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pattern_names_are_unique_across_files() {
    let dir = temp_dir("dup");
    std::fs::write(dir.join("a.cep"), "pattern p { match x }").unwrap();
    std::fs::write(dir.join("b.cep"), "pattern p { match y }").unwrap();
    let loaded = load_paths(std::slice::from_ref(&dir));
    assert_eq!(loaded.patterns.len(), 1);
    assert_eq!(loaded.error_count(), 1);
    let text = loaded.render();
    assert!(
        text.contains("b.cep:1:9: a pattern named `p` is already defined"),
        "{text}"
    );
    assert!(text.contains("a.cep:1:9"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn io_errors_name_the_path() {
    let loaded = load_paths(&[PathBuf::from("no/such/dir/x.cep")]);
    assert!(loaded.has_io_errors() && loaded.has_errors());
    assert!(loaded.render().contains("cannot read `no/such/dir/x.cep`"));
    let empty = temp_dir("empty");
    // A folder without patterns is an error (nothing to check or run).
    let loaded = load_paths(std::slice::from_ref(&empty));
    assert!(loaded.has_errors() && loaded.has_io_errors());
    assert!(loaded.render().contains("error: no `.cep` files"));
    std::fs::remove_dir_all(empty).unwrap();
}

#[test]
fn files_over_the_size_limit_are_rejected() {
    let big = format!("pattern p {{ match a }}\n{}", " ".repeat(MAX_FILE_SIZE));
    let loaded = load_str("big.cep", &big);
    assert_eq!(loaded.diagnostics[0].kind, DiagnosticKind::Limit);
    assert!(loaded.render().contains("limited to 1 MiB"));
    let dir = temp_dir("big");
    std::fs::write(dir.join("big.cep"), &big).unwrap();
    let loaded = load_paths(&[dir.join("big.cep")]);
    assert_eq!(loaded.diagnostics[0].kind, DiagnosticKind::Limit);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bytes_that_are_not_text_are_reported_with_their_position() {
    let loaded = load_bytes("bin.cep", b"pattern p {\n  match \xff\xfe }");
    let d = &loaded.diagnostics[0];
    assert_eq!(d.kind, DiagnosticKind::InvalidUtf8);
    assert!(loaded
        .render()
        .starts_with("error: bin.cep:2:9: invalid UTF-8"));
    let loaded = load_bytes("nul.cep", b"pattern p {\0 match a }\0");
    assert_eq!(loaded.error_count(), 2);
    assert!(loaded.render().starts_with("error: nul.cep:1:12: NUL byte"));
}

#[test]
fn diagnostics_per_file_are_capped() {
    let src = "pattern p { match a b }\n".repeat(500);
    let loaded = load_str("many.cep", &src);
    assert_eq!(
        loaded.diagnostics.len(),
        cepheid_syntax::MAX_DIAGNOSTICS_PER_FILE + 1
    );
    assert!(loaded.render().contains("too many problems"));
}

#[test]
fn long_lines_and_deep_input_stay_fast_and_bounded() {
    let list = format!(
        "pattern p {{ match a where a: x in [{}] }}",
        vec!["y"; 100_000].join(", ")
    );
    assert!(!load_str("list.cep", &list).has_errors());
    let groups = format!(
        "pattern p {{ match {}a{} }}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(load_str("deep.cep", &groups)
        .render()
        .contains("nested more than 64"));
    let parens = format!("pattern p {{ match a where a: {}x }}", "(".repeat(200_000));
    assert!(load_str("parens.cep", &parens).has_errors());
}

#[test]
fn a_byte_order_mark_is_skipped_and_hidden_files_are_not_loaded() {
    // A BOM at the start of a `.cep` file was a syntax error (event input
    // already accepted one); a folder also loaded hidden files (editor
    // backups, `._x.cep`).
    let dir = temp_dir("bom_hidden");
    std::fs::write(
        dir.join("p.cep"),
        "\u{feff}pattern p {\n    match a\n    where\n        a: k == \"a\"\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join(".p.cep.swp.cep"), "not a pattern {").unwrap();
    let loaded = load_paths(std::slice::from_ref(&dir));
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert_eq!(loaded.patterns.len(), 1);
    assert_eq!(loaded.sources.len(), 1);
    // Positions are counted after the mark.
    let bad = load_str("x.cep", "\u{feff}pattern p {\n    match ?\n}\n");
    assert!(bad.render().contains("x.cep:2:11"), "{}", bad.render());
    std::fs::remove_dir_all(dir).unwrap();
}
