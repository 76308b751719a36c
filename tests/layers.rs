//! The workspace's layering, as Cargo sees it: each crate depends only on
//! the crates below it, drawn from `cargo metadata` into `ARCHITECTURE.md`
//! ("Crates") and checked against it, so the graph goes straight down with
//! no cycle; and a program that uses the library builds
//! none of the crates only the command needs. Runs `cargo metadata` and
//! `cargo tree` offline on the lock file (no network).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

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
const MONITOR_CRATES: [&str; 2] = ["cepheid-monitor", "prometheus-client"];

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

/// The workspace's crates and the workspace crates each uses (normal
/// dependencies: a dev-dependency may look up, as the derive's
/// documentation uses the engine), from `cargo metadata`.
fn crate_graph() -> BTreeMap<String, BTreeSet<String>> {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in packages {
        let uses = graph
            .entry(package["name"].as_str().expect("name").to_string())
            .or_default();
        for dep in package["dependencies"].as_array().expect("dependencies") {
            let dep_name = dep["name"].as_str().expect("name");
            if members.contains(dep_name) && dep["kind"].is_null() {
                uses.insert(dep_name.to_string());
            }
        }
    }
    graph
}

/// `graph` bottom first: each crate after every crate it uses, by layer
/// (a crate's layer is one above the highest it uses), then by name;
/// `None` when the graph has a cycle.
fn layered(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<(usize, &str)>> {
    let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
    while layer.len() < graph.len() {
        let before = layer.len();
        for (name, uses) in graph {
            if layer.contains_key(name.as_str()) {
                continue;
            }
            let below: Option<Vec<usize>> = uses
                .iter()
                .map(|u| layer.get(u.as_str()).copied())
                .collect();
            if let Some(below) = below {
                layer.insert(name, below.iter().max().map_or(0, |l| l + 1));
            }
        }
        if layer.len() == before {
            return None; // every crate left uses one not placed: a cycle
        }
    }
    let mut order: Vec<(usize, &str)> = layer.into_iter().map(|(n, l)| (l, n)).collect();
    order.sort();
    Some(order)
}

/// The block of `ARCHITECTURE.md` that `graph` gives: a line per crate,
/// bottom first, with the crates it uses (without the `cepheid-` prefix),
/// then the same as a Mermaid diagram.
fn graph_block(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let short = |name: &str| name.trim_start_matches("cepheid-").to_string();
    let order = layered(graph).expect("the crate graph has a cycle");
    let mut text = String::from("```text\n");
    for (layer, name) in &order {
        let uses: Vec<String> = graph[*name].iter().map(|u| short(u)).collect();
        let line = format!("layer {layer}  {:<18}", short(name));
        if uses.is_empty() {
            text.push_str(line.trim_end());
        } else {
            text.push_str(&format!("{line}uses {}", uses.join(", ")));
        }
        text.push('\n');
    }
    text.push_str("```\n\n```mermaid\ngraph BT\n");
    for (_, name) in &order {
        for used in &graph[*name] {
            text.push_str(&format!("    {} --> {}\n", short(name), short(used)));
        }
    }
    text.push_str("```\n");
    text
}

const BEGIN: &str = "<!-- crate graph: begin -->\n";
const END: &str = "<!-- crate graph: end -->";

/// The crate graph in `ARCHITECTURE.md` ("Crates") is the one Cargo
/// builds, drawn from `cargo metadata`; it goes straight down, with no
/// cycle (Cargo refuses one among dependencies, and the layering puts
/// each crate above all it uses). `CEPHEID_BLESS=1` writes the block
/// again after a change of dependencies.
#[test]
fn the_documented_crate_graph_is_cargos() {
    let graph = crate_graph();
    let block = graph_block(&graph);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).expect("reads ARCHITECTURE.md");
    let start = doc
        .find(BEGIN)
        .expect("ARCHITECTURE.md has the crate graph's begin marker")
        + BEGIN.len();
    let end = start + doc[start..].find(END).expect("and its end marker");
    if std::env::var_os("CEPHEID_BLESS").is_some() {
        let written = format!("{}{block}{}", &doc[..start], &doc[end..]);
        std::fs::write(path, written).expect("writes ARCHITECTURE.md");
        return;
    }
    assert_eq!(
        &doc[start..end],
        block,
        "ARCHITECTURE.md's crate graph is not Cargo's (CEPHEID_BLESS=1 writes it)"
    );
    // The library's crates: the command and the benches are on top.
    let order = layered(&graph).expect("no cycle");
    let top = order.last().map(|(layer, _)| *layer);
    assert_eq!(
        order
            .iter()
            .find(|(_, n)| *n == "cepheid-cli")
            .map(|(l, _)| *l),
        top,
        "the command is the top layer"
    );
}

/// The layering itself: a graph with a cycle has no order, one without
/// has each crate above all it uses.
#[test]
fn a_cycle_has_no_layers() {
    let graph = |edges: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(n, uses)| (n.to_string(), uses.iter().map(|u| u.to_string()).collect()))
            .collect()
    };
    let fine = graph(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])]);
    assert_eq!(layered(&fine), Some(vec![(0, "a"), (1, "b"), (2, "c")]));
    let cycle = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
    assert_eq!(layered(&cycle), None);
}

/// The tests' shared support (`crates/testkit`) is never published and
/// never reaches a user: only ever a dev-dependency, and itself on no
/// crate of the workspace (so the lowest crates' tests use it without a
/// cycle).
#[test]
fn the_testkit_is_only_a_dev_dependency() {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let testkit = packages
        .iter()
        .find(|p| p["name"] == "cepheid-testkit")
        .expect("the workspace has cepheid-testkit");
    assert_eq!(
        testkit["publish"],
        serde_json::json!([]),
        "cepheid-testkit is `publish = false`"
    );
    for dep in testkit["dependencies"].as_array().expect("dependencies") {
        let name = dep["name"].as_str().expect("name");
        assert!(
            !members.contains(name),
            "cepheid-testkit depends on {name}, a crate of the workspace"
        );
    }
    let mut users = 0;
    for package in packages {
        for dep in package["dependencies"].as_array().expect("dependencies") {
            if dep["name"] == "cepheid-testkit" {
                assert_eq!(
                    dep["kind"], "dev",
                    "{} uses cepheid-testkit other than as a dev-dependency",
                    package["name"]
                );
                users += 1;
            }
        }
    }
    assert!(users > 0, "no crate's tests use cepheid-testkit");
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
        // The rule lab: the runtime's runs, its workers a `Cluster` the
        // caller makes (the command's is the dataflow's); Kafka only with
        // its feature `kafka`, off by default.
        let lab = tree("cepheid-lab", flags);
        assert!(lab.contains("cepheid-lab") && lab.contains("cepheid-runtime"));
        for cli in CLI_CRATES
            .iter()
            .chain(&MONITOR_CRATES)
            .chain(&KAFKA_CRATES)
        {
            assert!(!lab.contains(*cli), "{cli} in the lab's tree ({flags:?})");
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
    // The lab over a Kafka range: the Kafka client, still nothing of the
    // command.
    let lab = tree("cepheid-lab", &["--features", "kafka"]);
    assert!(lab.contains("cepheid-kafka"), "{lab:?}");
    for cli in CLI_CRATES.iter().chain(&MONITOR_CRATES) {
        assert!(!lab.contains(*cli), "{cli} in the lab's tree (kafka)");
    }
    let monitor = tree("cepheid-monitor", &[]);
    for name in MONITOR_CRATES {
        assert!(
            monitor.contains(name),
            "{name} is not in the monitor's tree: {monitor:?}"
        );
    }
}

/// The API's documents and the Rust client (issue 64): `cepheid-api` at
/// the bottom beside core, on no crate of the workspace; `cepheid-client`
/// on it alone. A business that calls the service builds none of the
/// engine, nor OpenSSL (rustls on `ring`).
#[test]
fn the_client_builds_no_engine_crate() {
    let graph = crate_graph();
    assert_eq!(
        graph["cepheid-api"],
        BTreeSet::new(),
        "cepheid-api uses no crate of the workspace"
    );
    assert_eq!(
        graph["cepheid-client"],
        BTreeSet::from(["cepheid-api".to_string()]),
        "cepheid-client uses cepheid-api only"
    );
    let api = tree("cepheid-api", &[]);
    for name in ["tokio", "hyper", "rustls"] {
        assert!(!api.contains(name), "{name} is in cepheid-api's tree");
    }
    let client = tree("cepheid-client", &[]);
    for name in [
        "cepheid-api",
        "hyper",
        "hyper-util",
        "tokio",
        "rustls",
        "ring",
    ] {
        assert!(client.contains(name), "{name} is not in the client's tree");
    }
    let members: Vec<&String> = graph.keys().collect();
    for member in members {
        let allowed = ["cepheid-client", "cepheid-api"].contains(&member.as_str());
        assert_eq!(
            client.contains(member.as_str()),
            allowed,
            "{member} in the client's tree"
        );
    }
    for name in CLI_CRATES
        .iter()
        .chain(&MONITOR_CRATES)
        .chain(&KAFKA_CRATES)
        .chain(&["openssl", "openssl-sys", "aws-lc-rs", "aws-lc-sys"])
    {
        assert!(!client.contains(*name), "{name} is in the client's tree");
    }
}
