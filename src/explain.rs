//! `cepheid explain PATTERNS... [--pattern NAME] [--dot | --graph dot|json]
//! [--out DIR]`: each pattern as readable text (doc, clauses, stages, the
//! element tree, then the compiled NFA's states and transitions), or with
//! `--dot` as a Graphviz graph of the compiled NFA: one pattern as its own
//! `digraph`, several as one `digraph` with a legend cluster and a
//! `cluster_NAME` per pattern (node names unique across clusters). With
//! `--graph json` the same graphs as JSON (an array of `{pattern, start,
//! nodes, edges}`, `cepheid_automata::nfa::NfaGraph`), for a page that
//! draws them without Graphviz. `--out DIR` writes one `NAME.dot` (or
//! `NAME.json`) per pattern into DIR instead of standard output. A rule
//! set's scenes follow its patterns as text (`--pattern` takes a scene's
//! name too); graphs have none.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cepheid_automata::nfa::{dot_of_graphs, Nfa, NfaGraph};
use cepheid_core::record::{FieldTable, Record};

use crate::{EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// Arguments of `explain`.
#[derive(clap::Args)]
pub struct Args {
    /// Pattern files or folders (every `*.cep` inside, sorted by name).
    #[arg(required = true, value_name = "PATTERNS")]
    paths: Vec<PathBuf>,
    /// Only the pattern (or the scene) with this name.
    #[arg(long, value_name = "NAME")]
    pattern: Option<String>,
    /// Print a Graphviz `dot` graph instead of text (as `--graph dot`).
    #[arg(long, conflicts_with = "graph")]
    dot: bool,
    /// Print the automata as a graph: `dot` (Graphviz) or `json` (nodes
    /// and edges).
    #[arg(long, value_enum, value_name = "FORMAT")]
    graph: Option<GraphFormat>,
    /// With `--dot` or `--graph`: write one file per pattern into DIR
    /// (`NAME.dot` or `NAME.json`; made if missing) instead of standard
    /// output.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The graph formats of `--graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GraphFormat {
    /// Graphviz `dot`.
    Dot,
    /// JSON: nodes and edges.
    Json,
}

/// Runs `explain` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let loaded = match crate::load(&args.paths) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let selected: Vec<_> = loaded
        .patterns
        .iter()
        .filter(|p| args.pattern.as_ref().is_none_or(|name| &p.name == name))
        .collect();
    let scenes: Vec<_> = loaded
        .scenes
        .iter()
        .filter(|s| args.pattern.as_ref().is_none_or(|name| &s.name == name))
        .collect();
    if let (Some(name), true) = (&args.pattern, selected.is_empty() && scenes.is_empty()) {
        let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
        let names = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        if loaded.scenes.is_empty() {
            say!("error: no pattern named `{name}` (patterns: {names})");
        } else {
            let scene_names: Vec<&str> = loaded.scenes.iter().map(|s| s.name.as_str()).collect();
            say!(
                "error: no pattern or scene named `{name}` (patterns: {names}; scenes: {})",
                scene_names.join(", ")
            );
        }
        return EXIT_USAGE;
    }
    let graph = if args.dot {
        Some(GraphFormat::Dot)
    } else {
        args.graph
    };
    if args.out.is_some() && graph.is_none() {
        say!("error: --out writes graphs: give --dot or --graph");
        return EXIT_USAGE;
    }
    let mut status = EXIT_OK;
    let mut out = String::new();
    let mut graphs = Vec::new();
    for (i, p) in selected.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let nfa = match Nfa::<Record>::compile(p, &mut FieldTable::new()) {
            Ok(nfa) => nfa,
            Err(e) => {
                say!("error: pattern `{}` does not compile: {e}", p.name);
                status = EXIT_PATTERN_ERROR;
                continue;
            }
        };
        if graph.is_some() {
            graphs.push(nfa.graph());
        } else {
            out.push_str(&cepheid_syntax::explain(p));
            out.push_str("  automaton:\n");
            for line in nfa.explain().lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if graph.is_none() {
        // Each scene after the patterns: its policy and its rules after
        // binding (the instances' automata are among the patterns above).
        for scene in &scenes {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&cepheid_syntax::explain_scene(scene, &loaded.patterns));
        }
    }
    match (graph, &args.out) {
        (None, _) => {}
        (Some(format), Some(dir)) => return write_files(dir, format, &graphs, status),
        (Some(GraphFormat::Dot), None) => match &graphs[..] {
            [one] => out = one.to_dot(),
            several => out = dot_of_graphs("patterns", several),
        },
        (Some(GraphFormat::Json), None) => {
            out = serde_json::to_string_pretty(&graphs).unwrap_or_default();
            out.push('\n');
        }
    }
    // A reader that stopped early (`| head`) is not an error, as for `run`;
    // `print!` would panic on it.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => status,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            say!("error: cannot write standard output: {e}");
            EXIT_IO
        }
    }
}

/// `--out DIR`: one file per graph, `NAME.dot` or `NAME.json`; the exit
/// status `status`, or `EXIT_IO` when a file cannot be written.
fn write_files(dir: &Path, format: GraphFormat, graphs: &[NfaGraph], status: u8) -> u8 {
    if let Err(e) = std::fs::create_dir_all(dir) {
        say!("error: cannot make {}: {e}", dir.display());
        return EXIT_IO;
    }
    for g in graphs {
        let (text, ext) = match format {
            GraphFormat::Dot => (g.to_dot(), "dot"),
            GraphFormat::Json => {
                let mut text = serde_json::to_string_pretty(g).unwrap_or_default();
                text.push('\n');
                (text, "json")
            }
        };
        let path = dir.join(format!("{}.{ext}", g.file_stem()));
        if let Err(e) = std::fs::write(&path, text) {
            say!("error: cannot write {}: {e}", path.display());
            return EXIT_IO;
        }
    }
    status
}
