//! Inputs the fuzzer (`fuzz/`) found crashing, kept so they stay fixed:
//! each must load and render without panicking, and, like the fuzz target
//! checks, a file that parses must print to text that parses back to the
//! same tree.

#[test]
fn fuzz_regressions_load_and_render() {
    let mut files: Vec<_> = std::fs::read_dir(cepheid_testkit::path("tests/fuzz_regressions"))
        .expect("tests/fuzz_regressions")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        let loaded = cepheid_engine::rules::load_bytes(&f.display().to_string(), &bytes);
        let _ = loaded.render();
        for p in &loaded.patterns {
            let _ = cepheid_syntax::explain(p);
        }
        if let Ok(file) = cepheid_syntax::parse(&String::from_utf8_lossy(&bytes)) {
            let printed = cepheid_syntax::print_file(&file);
            let again = cepheid_syntax::parse(&printed).unwrap_or_else(|d| {
                panic!(
                    "{}: printed text does not parse: {}",
                    f.display(),
                    d[0].message
                )
            });
            assert_eq!(
                again.without_spans(),
                file.without_spans(),
                "{}",
                f.display()
            );
        }
    }
}

/// `explain` shows conditions as the printer writes them: text that loads
/// back to the same condition (it explains the same way again).
#[test]
fn explained_conditions_load_back() {
    let src = std::fs::read_to_string(cepheid_testkit::path(
        "tests/fuzz_regressions/printer_nested_minus.cep",
    ))
    .unwrap();
    let loaded = cepheid_engine::rules::load_str("minus.cep", &src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let explained = cepheid_syntax::explain(&loaded.patterns[0]);
    let condition = explained
        .lines()
        .find_map(|l| l.trim().strip_prefix("#0 a: "))
        .expect("the stage's line");
    let again = format!("pattern p {{\n    match a\n    where\n        a: {condition}\n}}\n");
    let reloaded = cepheid_engine::rules::load_str("again.cep", &again);
    assert!(!reloaded.has_errors(), "{condition}\n{}", reloaded.render());
    assert_eq!(cepheid_syntax::explain(&reloaded.patterns[0]), explained);
}
