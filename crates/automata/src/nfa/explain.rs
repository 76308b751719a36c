//! `explain`: the compiled automaton as text and as Graphviz `dot`.

use std::fmt::Write as _;

use super::{Action, Nfa, StateKind};

impl Action {
    /// `take`, `ignore` or `proceed`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Take => "take",
            Action::Ignore => "ignore",
            Action::Proceed => "proceed",
        }
    }
}

impl StateKind {
    /// `start`, `normal`, `final`, `stop` or `pending`.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Start => "start",
            StateKind::Normal => "normal",
            StateKind::Final => "final",
            StateKind::Stop => "stop",
            StateKind::Pending => "pending",
        }
    }
}

impl<E> Nfa<E> {
    /// The states and transitions as text, one transition per line:
    /// `source --take[condition]--> target`.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "pattern {}: {} states",
            self.pattern.name,
            self.states.len()
        );
        if let Some(w) = self.window {
            let _ = write!(out, ", within {w}ms");
        }
        let _ = writeln!(out, ", skip {:?}", self.pattern.skip);
        for (i, state) in self.states.iter().enumerate() {
            let _ = write!(out, "state {i} {} ({})", state.name, state.kind.name());
            if let Some(w) = state.window {
                let _ = write!(out, " within {w}ms");
            }
            out.push('\n');
            for t in &state.transitions {
                let _ = writeln!(
                    out,
                    "  {} --{}[{}]--> {}",
                    state.name,
                    t.action.name(),
                    self.conds.describe(t.cond),
                    self.state(t.target).name
                );
            }
        }
        out
    }

    /// The automaton as nodes and edges ([`NfaGraph`]): what
    /// [`to_dot`](Nfa::to_dot) draws, as data (with `serde`, JSON that a
    /// page can draw without Graphviz).
    pub fn graph(&self) -> NfaGraph {
        let nodes = self
            .states
            .iter()
            .enumerate()
            .map(|(id, state)| GraphNode {
                id,
                name: state.name.clone(),
                kind: state.kind.name(),
            })
            .collect();
        let mut edges = Vec::new();
        for (from, state) in self.states.iter().enumerate() {
            for t in &state.transitions {
                let kind = match t.action {
                    Action::Take => EdgeKind::Take,
                    Action::Ignore => EdgeKind::Ignore,
                    Action::Proceed => EdgeKind::Proceed,
                };
                edges.push(GraphEdge {
                    from,
                    to: t.target.0 as usize,
                    kind,
                    label: format!("{} {}", t.action.name(), self.conds.describe(t.cond)),
                });
            }
        }
        // A pending `not followed by` ending has no transition to the end:
        // its run completes when the window closes (the matcher's timer,
        // not an event). Drawn as an edge of its own kind.
        let end = self.states.iter().position(|s| s.kind == StateKind::Final);
        for (from, state) in self.states.iter().enumerate() {
            if let (StateKind::Pending, Some(to)) = (state.kind, end) {
                edges.push(GraphEdge {
                    from,
                    to,
                    kind: EdgeKind::WindowEnd,
                    label: "window ends".to_string(),
                });
            }
        }
        NfaGraph {
            pattern: self.pattern.name.clone(),
            start: self.start.0 as usize,
            nodes,
            edges,
        }
    }

    /// The automaton as a Graphviz `digraph` (node `sN` is state N).
    pub fn to_dot(&self) -> String {
        self.graph().to_dot()
    }
}

/// An automaton as a graph (see [`Nfa::graph`]): its states and
/// transitions, and an edge from each pending `not followed by` ending to
/// the end state (taken when the window closes). With `serde`:
/// `{"pattern": NAME, "start": ID, "nodes": [{"id", "name", "kind"}],
/// "edges": [{"from", "to", "kind", "label"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct NfaGraph {
    /// The pattern's name.
    pub pattern: String,
    /// The start state's id.
    pub start: usize,
    /// The states, by id.
    pub nodes: Vec<GraphNode>,
    /// The transitions, by source state, then the window-end edges.
    pub edges: Vec<GraphEdge>,
}

/// A state of a [`NfaGraph`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GraphNode {
    /// The state's number.
    pub id: usize,
    /// Its name (Flink's state names: the stage, `stage:N`, `$endState$`).
    pub name: String,
    /// `start`, `normal`, `final`, `stop` or `pending`
    /// ([`StateKind::name`]).
    pub kind: &'static str,
}

/// An edge of a [`NfaGraph`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GraphEdge {
    /// The source state's id.
    pub from: usize,
    /// The target state's id.
    pub to: usize,
    /// What it does.
    pub kind: EdgeKind,
    /// `take cond`, `ignore cond`, `proceed cond`, or `window ends`.
    pub label: String,
}

/// The kinds of edges of a [`NfaGraph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Takes the event into the run.
    Take,
    /// Skips the event, the run stays.
    Ignore,
    /// Moves on without consuming the event.
    Proceed,
    /// A pending `not followed by` ending completes when the window
    /// closes.
    WindowEnd,
}

impl EdgeKind {
    /// Its Graphviz style.
    fn style(self) -> &'static str {
        match self {
            EdgeKind::Take => "style=solid",
            EdgeKind::Ignore => "style=dashed",
            EdgeKind::Proceed => "style=dotted",
            EdgeKind::WindowEnd => "style=bold, color=gray40",
        }
    }

    /// `take`, `ignore`, `proceed` or `window ends`.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Take => "take",
            EdgeKind::Ignore => "ignore",
            EdgeKind::Proceed => "proceed",
            EdgeKind::WindowEnd => "window ends",
        }
    }
}

/// A state kind's Graphviz shape.
fn shape(kind: &str) -> &'static str {
    match kind {
        "final" => "doublecircle",
        "stop" => "octagon",
        "pending" => "diamond",
        "start" => "box",
        _ => "circle",
    }
}

impl NfaGraph {
    /// Graphviz nodes and edges, each line indented by `indent`, node N
    /// named `{prefix}sN`.
    fn dot_lines(&self, out: &mut String, prefix: &str, indent: &str) {
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "{indent}{prefix}s{} [label={}, shape={}];",
                node.id,
                quote(&node.name),
                shape(node.kind)
            );
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "{indent}{prefix}s{} -> {prefix}s{} [label={}, {}];",
                e.from,
                e.to,
                quote(&e.label),
                e.kind.style()
            );
        }
    }

    /// The pattern's name as the stem of a file name, for a folder of
    /// graphs (`cepheid explain --out DIR` writes `STEM.dot` or
    /// `STEM.json`): letters, digits, `_` and `-` kept, any other
    /// character `_` (no `/`, `.` or space reaches the file system).
    pub fn file_stem(&self) -> String {
        let keep = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        let stem = self.pattern.chars();
        stem.map(|c| if keep(c) { c } else { '_' }).collect()
    }

    /// The graph as a Graphviz `digraph` of its own (node `sN` is state
    /// N).
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quote(&self.pattern));
        let _ = writeln!(out, "  rankdir=LR;");
        self.dot_lines(&mut out, "", "  ");
        out.push_str("}\n");
        out
    }

    /// The graph as a cluster of a larger `digraph`:
    /// `subgraph "cluster_NAME"`, its nodes named `pK_sN` (`K` = `index`,
    /// so that names are unique across clusters), labelled with the
    /// pattern's name.
    pub fn to_dot_cluster(&self, index: usize) -> String {
        let mut out = String::new();
        let cluster = format!("cluster_{}", self.pattern);
        let _ = writeln!(out, "  subgraph {} {{", quote(&cluster));
        let _ = writeln!(out, "    label={};", quote(&self.pattern));
        self.dot_lines(&mut out, &format!("p{index}_"), "    ");
        out.push_str("  }\n");
        out
    }
}

/// Several automata as one Graphviz `digraph`: a legend (node shapes,
/// edge kinds) as a small cluster `cluster_legend` of nodes named `legend_*`,
/// then a cluster per graph ([`NfaGraph::to_dot_cluster`]).
pub fn dot_of_graphs(name: &str, graphs: &[NfaGraph]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(name));
    let _ = writeln!(out, "  rankdir=LR;");
    out.push_str(&dot_legend());
    for (k, g) in graphs.iter().enumerate() {
        out.push_str(&g.to_dot_cluster(k));
    }
    out.push_str("}\n");
    out
}

/// The legend: one node per kind of state, one edge per kind of edge.
pub fn dot_legend() -> String {
    let mut out = String::new();
    out.push_str("  subgraph \"cluster_legend\" {\n");
    out.push_str("    label=\"legend\";\n    style=dashed;\n");
    for (kind, label) in [
        ("start", "start"),
        ("normal", "state"),
        ("final", "end (match)"),
        ("stop", "stop (not)"),
        ("pending", "pending (not followed by)"),
    ] {
        let _ = writeln!(
            out,
            "    legend_{kind} [label={}, shape={}];",
            quote(label),
            shape(kind)
        );
    }
    let kinds = [
        EdgeKind::Take,
        EdgeKind::Ignore,
        EdgeKind::Proceed,
        EdgeKind::WindowEnd,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let _ = writeln!(
            out,
            "    legend_e{i}a [label=\"\", shape=point];\n    legend_e{i}b [label=\"\", shape=point];"
        );
        let _ = writeln!(
            out,
            "    legend_e{i}a -> legend_e{i}b [label={}, {}];",
            quote(kind.name()),
            kind.style()
        );
    }
    out.push_str("  }\n");
    out
}

/// A double-quoted dot string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
