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

    /// The automaton as a Graphviz `digraph`.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quote(&self.pattern.name));
        let _ = writeln!(out, "  rankdir=LR;");
        for (i, state) in self.states.iter().enumerate() {
            let shape = match state.kind {
                StateKind::Final => "doublecircle",
                StateKind::Stop => "octagon",
                StateKind::Pending => "diamond",
                StateKind::Start => "box",
                StateKind::Normal => "circle",
            };
            let _ = writeln!(out, "  s{i} [label={}, shape={shape}];", quote(&state.name));
        }
        for (i, state) in self.states.iter().enumerate() {
            for t in &state.transitions {
                let style = match t.action {
                    Action::Take => "solid",
                    Action::Ignore => "dashed",
                    Action::Proceed => "dotted",
                };
                let label = format!("{} {}", t.action.name(), self.conds.describe(t.cond));
                let _ = writeln!(
                    out,
                    "  s{i} -> s{} [label={}, style={style}];",
                    t.target.0,
                    quote(&label)
                );
            }
        }
        out.push_str("}\n");
        out
    }
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
