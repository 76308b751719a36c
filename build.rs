//! With the feature `kafka`: links the command (and the Kafka examples)
//! with `-Wl,--wrap=rd_kafka_metadata_cache_find`, which puts
//! cepheid-kafka's guard around librdkafka's metadata cache lookup in
//! force: without it, a topic deleted (or a broker that lost its state)
//! under a run crashes librdkafka 2.12.1 (SIGSEGV;
//! docs/upstream/librdkafka-topic-recreate.md). Only the targets that
//! link cepheid-kafka, whose guard the option needs: not the test
//! harnesses, whose Kafka clients are rdkafka's alone.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let kafka = std::env::var_os("CARGO_FEATURE_KAFKA").is_some();
    let elf = std::env::var("CARGO_CFG_TARGET_OBJECT_FORMAT").map_or_else(
        |_| std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux"),
        |format| format == "elf",
    );
    if kafka && elf {
        for targets in ["bins", "examples"] {
            println!("cargo:rustc-link-arg-{targets}=-Wl,--wrap=rd_kafka_metadata_cache_find");
        }
    }
}
