//! Whether the guard around librdkafka's metadata cache lookup is in force
//! in this program (`csrc/metadata_guard.c`, built and linked by the
//! crate's build script; docs/upstream/librdkafka-topic-recreate.md).
#![allow(unsafe_code)] // (one call into the guard, which takes nothing)

extern "C" {
    fn cepheid_kafka_metadata_guard_active() -> std::ffi::c_int;
}

/// True when this program was linked with
/// `-Wl,--wrap=rd_kafka_metadata_cache_find`, which puts the guard in
/// force: a topic deleted under a running source or sink (or a broker that
/// lost its state) then does not crash librdkafka 2.12.1 (a SIGSEGV on its
/// main thread, `rd_kafka_metadata_cache_find` called without a topic
/// name). The `cepheid` command and this crate's tests are; a program of
/// a library user is when its build script prints
/// `cargo:rustc-link-arg-bins=-Wl,--wrap=rd_kafka_metadata_cache_find`.
///
/// ```
/// // (this crate's doc tests are not linked with it)
/// let _ = cepheid_kafka::metadata_guard_active();
/// ```
pub fn metadata_guard_active() -> bool {
    // SAFETY: a C function of no arguments that reads the address of a
    // (weak) symbol.
    unsafe { cepheid_kafka_metadata_guard_active() != 0 }
}
