//! The workspace's layering, as Cargo sees it: each crate depends only on
//! the crates below it (`ARCHITECTURE.md`, "Crates"), so the graph goes
//! straight down with no cycle; and a program that uses the library builds
//! none of the crates only the command needs. Runs `cargo metadata` and
//! `cargo tree` offline on the lock file (no network).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate and the workspace crates it may use (normal
/// dependencies), bottom first: the table of `ARCHITECTURE.md`.
const LAYERS: &[(&str, &[&str])] = &[
    ("cepheid-core", &[]),
    ("cepheid-derive", &[]),
    ("cepheid-syntax", &["cepheid-core"]),
    ("cepheid-automata", &["cepheid-core"]),
    (
        "cepheid-engine",
        &[
            "cepheid-automata",
            "cepheid-core",
            "cepheid-derive",
            "cepheid-syntax",
        ],
    ),
    (
        "cepheid-runtime",
        &["cepheid-core", "cepheid-engine", "cepheid-syntax"],
    ),
    // The run on workers (`cepheid_dataflow::run`) is driven by the
    // runtime's public API.
    (
        "cepheid-dataflow",
        &[
            "cepheid-core",
            "cepheid-engine",
            "cepheid-runtime",
            "cepheid-syntax",
        ],
    ),
    // Kafka in and out (issue 24): the runtime's `Source` and `Sink`
    // implemented; the command's (default) feature `kafka`.
    (
        "cepheid-kafka",
        &["cepheid-core", "cepheid-engine", "cepheid-runtime"],
    ),
    // The status, Prometheus text and live page of `cepheid run --metrics`
    // (issue 25): the command's (default) feature `metrics`, filled from
    // the runtime's observer hook (its `Observer`; the runtime does not
    // use it), each pattern's automaton drawn.
    (
        "cepheid-monitor",
        &[
            "cepheid-automata",
            "cepheid-core",
            "cepheid-engine",
            "cepheid-runtime",
        ],
    ),
    (
        "cepheid-cli",
        &[
            "cepheid-automata",
            "cepheid-core",
            "cepheid-dataflow",
            "cepheid-engine",
            "cepheid-kafka",
            "cepheid-monitor",
            "cepheid-runtime",
            "cepheid-syntax",
        ],
    ),
    (
        "cepheid-bench",
        &[
            "cepheid-automata",
            "cepheid-core",
            "cepheid-engine",
            "cepheid-syntax",
        ],
    ),
];

/// What only the command needs: none of it may reach a library user.
const CLI_CRATES: [&str; 9] = [
    "cepheid-cli",
    "cepheid-dataflow",
    "clap",
    "indicatif",
    "annotate-snippets",
    "notify",
    "signal-hook",
    "mimalloc",
    "timely",
];

/// The monitor and what only it needs: an optional integration, never in
/// the library's tree either.
const MONITOR_CRATES: [&str; 3] = ["cepheid-monitor", "prometheus-client", "tiny_http"];

/// Kafka and its client (librdkafka, built from source): the command's
/// feature `kafka`, never in the library's or the runtime's tree.
const KAFKA_CRATES: [&str; 3] = ["cepheid-kafka", "rdkafka", "rdkafka-sys"];

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args(args)
        .args(["--offline", "--locked", "--manifest-path", manifest])
        .output()
        .expect("runs cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn each_crate_uses_exactly_the_layers_below_it() {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata prints JSON");
    let members: BTreeSet<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut found: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name");
        let uses = found.entry(name).or_default();
        for dep in package["dependencies"].as_array().expect("dependencies") {
            let dep_name = dep["name"].as_str().expect("name");
            // Normal dependencies only: a dev-dependency may look up (the
            // derive's documentation uses the engine).
            if members.contains(dep_name) && dep["kind"].is_null() {
                uses.insert(dep_name);
            }
        }
    }
    let expected: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(name, uses)| (*name, uses.iter().copied().collect()))
        .collect();
    assert_eq!(found, expected, "the crate graph is not the documented one");
    // Bottom first: every crate uses only crates listed before it, so the
    // graph has no cycle.
    for (i, (name, uses)) in LAYERS.iter().enumerate() {
        for used in *uses {
            assert!(
                LAYERS[..i].iter().any(|(n, _)| n == used),
                "{name} uses {used}, which is not below it"
            );
        }
    }
}

/// The packages of `cargo tree -e normal -p PACKAGE` with `extra` flags.
fn tree(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["tree", "-e", "normal", "-p", package, "--prefix", "none"];
    args.extend_from_slice(extra);
    cargo(&args)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_library_builds_no_crate_of_the_command() {
    let command = tree("cepheid-cli", &[]);
    for cli in CLI_CRATES {
        assert!(
            command.contains(cli),
            "{cli} is not in the command's tree: {command:?}"
        );
    }
    for flags in [&[][..], &["--no-default-features"][..]] {
        let library = tree("cepheid-engine", flags);
        assert!(library.contains("cepheid-engine") && library.contains("nom"));
        for cli in CLI_CRATES
            .iter()
            .chain(&MONITOR_CRATES)
            .chain(&KAFKA_CRATES)
        {
            assert!(
                !library.contains(*cli),
                "{cli} is in the library's tree ({flags:?})"
            );
        }
        // The runtime: the library and the stream driver, nothing of the
        // command but `notify` with its default feature `watch`.
        let runtime = tree("cepheid-runtime", flags);
        assert!(runtime.contains("cepheid-runtime") && runtime.contains("cepheid-engine"));
        for cli in CLI_CRATES {
            let allowed = cli == "notify" && flags.is_empty();
            assert_eq!(
                runtime.contains(cli),
                allowed,
                "{cli} in the runtime's tree ({flags:?})"
            );
        }
        // Its observer hook is generic: the monitor is the command's; so is
        // Kafka (its crate implements the runtime's traits).
        for name in MONITOR_CRATES.iter().chain(&KAFKA_CRATES) {
            assert!(
                !runtime.contains(*name),
                "{name} is in the runtime's tree ({flags:?})"
            );
        }
        // The run on workers: timely and the runtime (without `notify`:
        // the command turns `watch` on), nothing else of the command.
        let dataflow = tree("cepheid-dataflow", flags);
        assert!(dataflow.contains("cepheid-runtime") && dataflow.contains("timely"));
        for cli in CLI_CRATES.iter().chain(&MONITOR_CRATES) {
            let allowed = ["cepheid-dataflow", "timely"].contains(cli);
            assert_eq!(
                dataflow.contains(*cli),
                allowed,
                "{cli} in the dataflow crate's tree ({flags:?})"
            );
        }
    }
    let monitor = tree("cepheid-monitor", &[]);
    for name in MONITOR_CRATES {
        assert!(
            monitor.contains(name),
            "{name} is not in the monitor's tree: {monitor:?}"
        );
    }
}
