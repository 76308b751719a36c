//! The `cepheid` command's tests, one binary: a module per area (each file
//! beside this folder), the support code compiled once. They run the
//! binary Cargo built for this package (`CARGO_BIN_EXE_cepheid`); those of
//! `--workers` and `--processes` need the default feature `workers`.
//! Two look at the whole workspace instead: `layers` (the crate graph) and
//! `api_traits` (the public types over every crate, with the command's
//! features). The library crates' tests are each in its crate
//! (`crates/*/tests/it/`).

// Support code, compiled once for every module below.
#[path = "../../crates/monitor/tests/it/support/browser.rs"]
mod browser_support;
#[path = "../common/mod.rs"]
mod common;
#[cfg(feature = "workers")]
#[path = "../../crates/dataflow/tests/it/dataflow_support/mod.rs"]
mod dataflow_support;
use cepheid_testkit::shared_contract;

// The public types' promises over every crate (threads, errors), with the
// command's features: the one crate that has them all.
#[path = "../api_traits.rs"]
mod api_traits;
#[path = "../check_flink.rs"]
mod check_flink;
#[path = "../check_sample.rs"]
mod check_sample;
#[path = "../check_scenes.rs"]
mod check_scenes;
#[path = "../cli_audit.rs"]
mod cli_audit;
#[path = "../cli_backtest.rs"]
mod cli_backtest;
#[path = "../cli_backtest_html.rs"]
mod cli_backtest_html;
#[path = "../cli_checkpoint.rs"]
mod cli_checkpoint;
#[cfg(feature = "workers")]
#[path = "../cli_checkpoint_cross.rs"]
mod cli_checkpoint_cross;
#[path = "../cli_decisions.rs"]
mod cli_decisions;
#[path = "../cli_diff.rs"]
mod cli_diff;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka.rs"]
mod cli_kafka;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka_offsets.rs"]
mod cli_kafka_offsets;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka_readme.rs"]
mod cli_kafka_readme;
#[cfg(all(feature = "kafka", feature = "workers"))]
#[path = "../cli_kafka_rescale.rs"]
mod cli_kafka_rescale;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka_rules_time.rs"]
mod cli_kafka_rules_time;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka_time.rs"]
mod cli_kafka_time;
#[cfg(feature = "kafka")]
#[path = "../cli_kafka_topics.rs"]
mod cli_kafka_topics;
#[cfg(all(feature = "kafka", feature = "workers"))]
#[path = "../cli_kafka_workers.rs"]
mod cli_kafka_workers;
#[cfg(feature = "kafka")]
#[path = "../cli_lab_kafka.rs"]
mod cli_lab_kafka;
#[path = "../cli_left_out.rs"]
mod cli_left_out;
#[path = "../cli_list_origins.rs"]
mod cli_list_origins;
#[cfg(feature = "kafka")]
#[path = "../cli_list_topic.rs"]
mod cli_list_topic;
#[path = "../cli_lists.rs"]
mod cli_lists;
#[path = "../cli_live.rs"]
mod cli_live;
#[cfg(feature = "metrics")]
#[path = "../cli_metrics.rs"]
mod cli_metrics;
#[cfg(feature = "metrics")]
#[path = "../cli_page.rs"]
mod cli_page;
#[cfg(feature = "workers")]
#[path = "../cli_processes_checkpoint.rs"]
mod cli_processes_checkpoint;
#[path = "../cli_rules.rs"]
mod cli_rules;
#[path = "../cli_run.rs"]
mod cli_run;
#[path = "../cli_run_large.rs"]
mod cli_run_large;
#[cfg(feature = "serve")]
#[path = "../cli_serve.rs"]
mod cli_serve;
#[cfg(all(feature = "kafka", feature = "serve"))]
#[path = "../cli_serve_kafka.rs"]
mod cli_serve_kafka;
#[path = "../cli_shadow.rs"]
mod cli_shadow;
#[cfg(feature = "kafka")]
#[path = "../cli_shadow_kafka.rs"]
mod cli_shadow_kafka;
#[path = "../cli_shadow_lists.rs"]
mod cli_shadow_lists;
#[path = "../cli_shadow_switch.rs"]
mod cli_shadow_switch;
#[path = "../cli_stats.rs"]
mod cli_stats;
#[path = "../cli_upgrade.rs"]
mod cli_upgrade;
#[path = "../cli_why.rs"]
mod cli_why;
#[cfg(feature = "workers")]
#[path = "../cli_workers.rs"]
mod cli_workers;
#[cfg(feature = "workers")]
#[path = "../cli_workers_checkpoint.rs"]
mod cli_workers_checkpoint;
#[cfg(feature = "workers")]
#[path = "../cli_workers_checkpoint_grown.rs"]
mod cli_workers_checkpoint_grown;
#[cfg(feature = "workers")]
#[path = "../cli_workers_indicators.rs"]
mod cli_workers_indicators;
#[cfg(feature = "workers")]
#[path = "../cli_workers_live_checkpoint.rs"]
mod cli_workers_live_checkpoint;
#[cfg(feature = "workers")]
#[path = "../cli_workers_rescale.rs"]
mod cli_workers_rescale;
#[cfg(feature = "workers")]
#[path = "../cli_workers_rules.rs"]
mod cli_workers_rules;
#[cfg(feature = "workers")]
#[path = "../cli_workers_writes.rs"]
mod cli_workers_writes;
// The Rust client against the real server (`cepheid serve`).
#[cfg(feature = "serve")]
#[path = "../client_rust.rs"]
mod client_rust;
// The Python client against the real server, through `.ci/test-python`.
#[cfg(feature = "serve")]
#[path = "../client_python.rs"]
mod client_python;
// The TypeScript client against the real server, through `.ci/test-typescript`.
#[cfg(feature = "serve")]
#[path = "../client_typescript.rs"]
mod client_typescript;
#[path = "../conformance_cli.rs"]
mod conformance_cli;
#[path = "../conformance_patterns.rs"]
mod conformance_patterns;
#[path = "../explain_graph.rs"]
mod explain_graph;
#[path = "../golden.rs"]
mod golden;
// The README's quick start's examples, run by `cli_kafka_readme` as
// code (their `main` is not).
#[cfg(feature = "kafka")]
#[allow(dead_code)]
#[path = "../../examples/kafka_consume.rs"]
mod kafka_consume;
#[cfg(feature = "kafka")]
#[allow(dead_code)]
#[path = "../../examples/kafka_produce.rs"]
mod kafka_produce;
#[cfg(feature = "kafka")]
#[path = "../../crates/kafka/tests/it/support.rs"]
mod kafka_support;
// The library embedded (`examples/embed.rs`), run by `cli_embed`.
#[cfg(all(feature = "kafka", feature = "metrics"))]
#[path = "../cli_embed.rs"]
mod cli_embed;
#[cfg(all(feature = "kafka", feature = "metrics"))]
#[allow(dead_code)]
#[path = "../../examples/embed.rs"]
mod embed;
#[path = "../language_doc.rs"]
mod language_doc;
#[path = "../layers.rs"]
mod layers;
#[path = "../live_limit.rs"]
mod live_limit;
#[path = "../openapi.rs"]
mod openapi;
#[path = "../oracle_regressions.rs"]
mod oracle_regressions;
#[path = "../output_records.rs"]
mod output_records;
#[path = "../patterns_check.rs"]
mod patterns_check;
#[path = "../random_e2e.rs"]
mod random_e2e;
#[path = "../readme_e2e.rs"]
mod readme_e2e;
#[path = "../run_field_warnings.rs"]
mod run_field_warnings;
#[path = "../run_limit.rs"]
mod run_limit;
#[path = "../time_extremes.rs"]
mod time_extremes;
