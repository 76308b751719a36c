//! Builds the guard around librdkafka's metadata cache lookup
//! (`csrc/metadata_guard.c`; docs/upstream/librdkafka-topic-recreate.md)
//! and links it whole into every program that links this crate.
//!
//! The guard is in force in a program linked with
//! `-Wl,--wrap=rd_kafka_metadata_cache_find`: this crate's tests are
//! (below), the `cepheid` command is (its own build script),
//! and a library user's program is when its build script prints
//! `cargo:rustc-link-arg-bins=-Wl,--wrap=rd_kafka_metadata_cache_find`
//! (`cepheid_kafka::metadata_guard_active` tells whether it is).

fn main() {
    println!("cargo:rerun-if-changed=csrc/metadata_guard.c");
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    cc::Build::new()
        .file("csrc/metadata_guard.c")
        .warnings(true)
        .cargo_metadata(false)
        .compile("cepheid_kafka_metadata_guard");
    println!("cargo:rustc-link-search=native={out}");
    // Whole: the wrapper is what librdkafka's objects call, which no
    // archive search would find after them.
    println!("cargo:rustc-link-lib=static:+whole-archive=cepheid_kafka_metadata_guard");
    if wraps() {
        println!("cargo:rustc-link-arg-tests={WRAP}");
    }
}

/// The link option that puts the guard in force.
const WRAP: &str = "-Wl,--wrap=rd_kafka_metadata_cache_find";

/// Does the target's linker take `--wrap` (GNU ld, gold, lld on ELF)?
fn wraps() -> bool {
    std::env::var("CARGO_CFG_TARGET_OBJECT_FORMAT").map_or_else(
        |_| std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux"),
        |format| format == "elf",
    )
}
