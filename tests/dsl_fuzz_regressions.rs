//! Inputs the fuzzer (`fuzz/`) found crashing, kept so they stay fixed:
//! each must load and render without panicking.

#[test]
fn fuzz_regressions_load_and_render() {
    let mut files: Vec<_> = std::fs::read_dir("tests/fuzz_regressions")
        .expect("tests/fuzz_regressions")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        let loaded = cepheid::dsl::load_bytes(&f.display().to_string(), &bytes);
        let _ = loaded.render();
    }
}
