//! `cepheid explain --dot` on several patterns (one graph, a legend and a
//! cluster per pattern), `--out DIR` (a file per pattern), `--graph json`:
//! read back with a small reader of the dot the command writes, each
//! cluster's nodes and edges well-formed, node names unique, and every
//! state reachable from the start state (the end of a `not followed by`
//! pattern included, through its "window ends" edge).

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{cepheid, scratch};

/// One graph or cluster: nodes (name → shape) and edges (from, to, label).
#[derive(Debug, Default)]
struct Cluster {
    nodes: BTreeMap<String, String>,
    edges: Vec<(String, String, String)>,
}

/// The value of `key=` in a dot attribute list (quoted or not).
fn attr(list: &str, key: &str) -> Option<String> {
    let at = list.find(&format!("{key}="))? + key.len() + 1;
    let rest = &list[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    } else {
        Some(rest.split([',', ']']).next()?.trim().to_string())
    }
}

/// Reads the dot `cepheid explain` writes: a `digraph` whose statements
/// are one per line, maybe in `subgraph "cluster_NAME" { ... }` blocks.
/// Returns the clusters by name (`""` for statements outside any), and
/// panics on a line it does not understand.
fn read_dot(text: &str) -> BTreeMap<String, Cluster> {
    let mut lines = text.lines();
    let first = lines.next().expect("a first line");
    assert!(
        first.starts_with("digraph \"") && first.ends_with(" {"),
        "{first}"
    );
    let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed = false;
    for line in lines {
        let line = line.trim();
        assert!(!closed, "text after the graph's end: {line}");
        if let Some(rest) = line.strip_prefix("subgraph \"") {
            assert!(current.is_none(), "nested subgraph: {line}");
            let name = rest.strip_suffix("\" {").expect("subgraph \"NAME\" {");
            assert!(name.starts_with("cluster_"), "{name}");
            assert!(!clusters.contains_key(name), "cluster {name} twice");
            clusters.insert(name.to_string(), Cluster::default());
            current = Some(name.to_string());
        } else if line == "}" {
            if current.take().is_none() {
                closed = true;
            }
        } else if line.starts_with("rankdir=")
            || line.starts_with("label=")
            || line.starts_with("style=")
        {
        } else if let Some((head, list)) = line.split_once(" [") {
            assert!(line.ends_with("];"), "{line}");
            let cluster = clusters
                .entry(current.clone().unwrap_or_default())
                .or_default();
            if let Some((from, to)) = head.split_once(" -> ") {
                let label = attr(list, "label").expect("an edge label");
                assert!(attr(list, "style").is_some(), "{line}");
                cluster
                    .edges
                    .push((from.to_string(), to.to_string(), label));
            } else {
                assert!(!head.contains(' '), "{line}");
                let shape = attr(list, "shape").expect("a node shape");
                assert!(attr(list, "label").is_some(), "{line}");
                assert!(
                    cluster.nodes.insert(head.to_string(), shape).is_none(),
                    "node {head} twice"
                );
            }
        } else {
            panic!("a line the reader does not know: {line}");
        }
    }
    assert!(closed && current.is_none(), "unbalanced braces");
    clusters
}

/// Every edge joins two nodes of its cluster; the cluster has one start
/// (a box) and one end (a double circle); every node is reachable from
/// the start.
fn check_cluster(name: &str, c: &Cluster) {
    for (from, to, _) in &c.edges {
        assert!(
            c.nodes.contains_key(from),
            "{name}: edge from unknown {from}"
        );
        assert!(c.nodes.contains_key(to), "{name}: edge to unknown {to}");
    }
    let with = |shape: &str| -> Vec<&String> {
        c.nodes
            .iter()
            .filter(|(_, s)| *s == shape)
            .map(|(n, _)| n)
            .collect()
    };
    let starts = with("box");
    assert_eq!(starts.len(), 1, "{name}: {c:?}");
    assert_eq!(with("doublecircle").len(), 1, "{name}: {c:?}");
    let mut reached: BTreeSet<&String> = BTreeSet::from([starts[0]]);
    let mut todo = vec![starts[0]];
    while let Some(n) = todo.pop() {
        for (from, to, _) in &c.edges {
            if from == n && reached.insert(to) {
                todo.push(to);
            }
        }
    }
    let unreached: Vec<_> = c.nodes.keys().filter(|n| !reached.contains(n)).collect();
    assert!(
        unreached.is_empty(),
        "{name}: not reachable: {unreached:?}\n{c:?}"
    );
}

fn explain(args: &[&str]) -> std::process::Output {
    cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("explain")
        .args(args)
        .output()
        .expect("run cepheid")
}

/// The shipped patterns' names.
fn shipped() -> BTreeSet<String> {
    let out = explain(&["patterns/"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("pattern ")?.split(' ').next())
        .map(|n| n.trim_end_matches(':').to_string())
        .collect()
}

#[test]
fn several_patterns_make_one_graph_with_a_cluster_each_and_a_legend() {
    let out = explain(&["patterns/", "--dot"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let clusters = read_dot(&text);
    assert!(!clusters.contains_key(""), "every statement in a cluster");
    let legend = &clusters["cluster_legend"];
    let shapes: BTreeSet<&str> = legend.nodes.values().map(String::as_str).collect();
    for shape in ["box", "circle", "doublecircle", "octagon", "diamond"] {
        assert!(shapes.contains(shape), "legend lacks {shape}: {legend:?}");
    }
    let kinds: Vec<&str> = legend.edges.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(kinds, ["take", "ignore", "proceed", "window ends"]);
    let names = shipped();
    assert!(names.len() >= 8, "{names:?}");
    let mut all_nodes = BTreeSet::new();
    for name in &names {
        let cluster = &clusters[&format!("cluster_{name}")];
        check_cluster(name, cluster);
        for node in cluster.nodes.keys() {
            assert!(
                all_nodes.insert(node.clone()),
                "node {node} in two clusters"
            );
        }
    }
    assert_eq!(clusters.len(), names.len() + 1);
}

#[test]
fn the_end_of_a_not_followed_by_pattern_is_connected() {
    let out = explain(&["patterns/unpaid_orders.cep", "--dot"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let graph = &read_dot(&text)[""];
    check_cluster("unpaid_order", graph);
    assert!(
        graph
            .edges
            .iter()
            .any(|(from, to, label)| label == "window ends"
                && graph.nodes[from] == "diamond"
                && graph.nodes[to] == "doublecircle"),
        "{text}"
    );
}

#[test]
fn out_writes_one_file_per_pattern() {
    let dir = scratch("explain_out");
    let out = explain(&["patterns/", "--dot", "--out", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let names = shipped();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let want: Vec<String> = names.iter().map(|n| format!("{n}.dot")).collect();
    assert_eq!(files, want);
    for name in &names {
        let text = std::fs::read_to_string(dir.join(format!("{name}.dot"))).unwrap();
        assert!(
            text.starts_with(&format!("digraph \"{name}\" {{")),
            "{text}"
        );
        check_cluster(name, &read_dot(&text)[""]);
    }
    // Without a graph format, `--out` is a usage error.
    let out = explain(&["patterns/", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn graph_json_has_the_same_nodes_and_edges() {
    let out = explain(&["patterns/", "--graph", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let graphs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dot = read_dot(&String::from_utf8_lossy(
        &explain(&["patterns/", "--dot"]).stdout,
    ));
    let graphs = graphs.as_array().unwrap();
    assert_eq!(graphs.len(), shipped().len());
    for g in graphs {
        let name = g["pattern"].as_str().unwrap();
        let cluster = &dot[&format!("cluster_{name}")];
        // The same graph as the dot cluster, read back into its shape.
        let shape = |kind: &str| {
            match kind {
                "final" => "doublecircle",
                "stop" => "octagon",
                "pending" => "diamond",
                "start" => "box",
                "normal" => "circle",
                other => panic!("kind {other}"),
            }
            .to_string()
        };
        let prefix = cluster
            .nodes
            .keys()
            .next()
            .unwrap()
            .split('_')
            .next()
            .unwrap();
        let mut from_json = Cluster::default();
        for n in g["nodes"].as_array().unwrap() {
            let id = format!("{prefix}_s{}", n["id"]);
            from_json
                .nodes
                .insert(id, shape(n["kind"].as_str().unwrap()));
        }
        for e in g["edges"].as_array().unwrap() {
            let kind = e["kind"].as_str().unwrap();
            assert!(
                ["take", "ignore", "proceed", "window_end"].contains(&kind),
                "{kind}"
            );
            from_json.edges.push((
                format!("{prefix}_s{}", e["from"]),
                format!("{prefix}_s{}", e["to"]),
                e["label"].as_str().unwrap().to_string(),
            ));
        }
        assert_eq!(from_json.nodes, cluster.nodes, "{name}");
        assert_eq!(from_json.edges, cluster.edges, "{name}");
        let start = format!("{prefix}_s{}", g["start"]);
        assert_eq!(from_json.nodes[&start], "box");
        check_cluster(name, &from_json);
    }
}
