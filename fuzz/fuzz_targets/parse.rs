//! Any bytes → load (UTF-8 check, parse, lower, validate; factors,
//! scenes and their instances too) → render the diagnostics, explain the
//! patterns and scenes; when the text parses, print → parse must give the
//! same tree.
//! Nothing may panic, overflow the stack or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = cepheid_engine::rules::load_bytes("fuzz.cep", data);
    let _ = loaded.render();
    for p in &loaded.patterns {
        let _ = cepheid_syntax::explain(p);
        let _ = cepheid_syntax::sequence_dot(p);
    }
    for s in &loaded.scenes {
        let _ = cepheid_syntax::explain_scene(s, &loaded.patterns);
    }
    let _ = loaded.flink_warnings();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = cepheid_syntax::parse(text) {
            let printed = cepheid_syntax::print_file(&file);
            let again = cepheid_syntax::parse(&printed).expect("printed text parses");
            assert_eq!(again.without_spans(), file.without_spans());
        }
    }
});
