//! A literal Rust transliteration of Apache Flink 2.3's CEP NFA (compiler,
//! runtime, shared buffer, skip strategies), with cepheid's deliberate
//! deviations D1-D5 (listed in `../mod.rs`), and the driver that runs it
//! over an input the way the oracle's harness does.
//!
//! - [`pattern`]: the IR as Flink `Pattern` objects.
//! - [`compiler`]: `NFACompiler` → [`graph`] (states, edges, conditions).
//! - [`nfa`]: `NFA.process` / `advanceTime` over a [`buffer`] and JDK
//!   priority queues ([`queue`]), pruning by [`skip`].
//! - [`run`] / [`run_with`]: the driver (events in arrival order, time
//!   advanced before each, a final advance), with a work budget
//!   ([`WORK_BUDGET`]) for the rare patterns whose partial matches explode.
//! - [`run_patterns`]: several patterns (the branch patterns of a pattern
//!   with alternation) driven alike as one NFA ([`nfa::Nfa::with_graphs`]).

pub mod buffer;
pub mod compiler;
pub mod graph;
pub mod nfa;
pub mod pattern;
pub mod queue;
pub mod skip;

use cepheid_core::pattern::Pattern;

use super::cond::RefEvent;
use graph::Graph;
use nfa::{Hooks, Materialized, Nfa};

/// One emitted match or timeout.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Emitted {
    /// When it was emitted: `2 * i` = while advancing time before event `i`,
    /// `2 * i + 1` = while processing event `i`, `2 * n` = the final advance.
    pub step: usize,
    /// Events per stage (stage name, event ids), stages in pattern order,
    /// stages without events left out.
    pub stages: Vec<(String, Vec<u64>)>,
    /// For timeouts: the time Flink reports (`previous + element window`
    /// or `start + within`).
    pub expired_at: Option<i64>,
    /// For timeouts: the stage name of the state the partial match waited
    /// in (the alternation reference tells branches by it).
    pub waiting: Option<String>,
    /// The graph (the pattern of [`run_patterns`]) it is of; 0 for [`run`].
    pub graph: usize,
}

/// Why the reference produced no (complete) output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The pattern is rejected: by Flink's compiler, or by D5.
    Rejected(String),
    /// Flink would throw while processing (the outputs before it are kept).
    Runtime(String),
    /// The run exceeded [`WORK_BUDGET`] (nested optional repetitions can
    /// make the number of partial matches explode; Flink is as slow there).
    TooExpensive,
}

/// Most work (partial matches visited, shared-buffer edges and paths
/// walked) a run may do before the reference gives up.
pub const WORK_BUDGET: usize = 2_000_000;

/// Everything a pattern produced over an input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Complete matches, in emission order.
    pub matches: Vec<Emitted>,
    /// Timed-out partial matches (only when the pattern asks for them), in
    /// emission order.
    pub timeouts: Vec<Emitted>,
    /// Set when the pattern was rejected or Flink would have thrown.
    pub failure: Option<Failure>,
}

/// Which of cepheid's deviations (`../mod.rs`) the reference applies. A
/// cycle of PROCEED edges is always rejected (Flink loops forever there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deviations {
    /// D1: a group's trailing `not followed by` is enforced.
    pub group_negations: bool,
    /// D2, D3: element windows on groups and quantified elements.
    pub element_windows: bool,
    /// D4: time advances deadline by deadline.
    pub ordered_advance: bool,
    /// D5: transitions to `null` and too many PROCEED paths are rejected.
    pub compile_errors: bool,
}

impl Deviations {
    /// cepheid's semantics.
    pub const CEPHEID: Deviations = Deviations {
        group_negations: true,
        element_windows: true,
        ordered_advance: true,
        compile_errors: true,
    };
    /// Plain Flink 2.3 (for checking the reference against the oracle).
    pub const NONE: Deviations = Deviations {
        group_negations: false,
        element_windows: false,
        ordered_advance: false,
        compile_errors: false,
    };
}

/// Compiles the pattern as the reference does (for explaining a case).
pub fn compile(pattern: &Pattern, dev: Deviations) -> Result<Graph<'_>, String> {
    compiler::compile(pattern, dev)
}

/// Runs `pattern` over `events` (in arrival order) with cepheid's
/// semantics: for each event, time advances to its timestamp (D4: deadline
/// by deadline), then the event is processed; when `end` is given, time
/// finally advances to `end`.
pub fn run(pattern: &Pattern, events: &[RefEvent], end: Option<i64>) -> Output {
    run_with(pattern, events, end, Deviations::CEPHEID)
}

/// [`run`] with a choice of deviations.
pub fn run_with(
    pattern: &Pattern,
    events: &[RefEvent],
    end: Option<i64>,
    dev: Deviations,
) -> Output {
    let mut out = Output::default();
    let graph = match compiler::compile(pattern, dev) {
        Ok(g) => g,
        Err(why) => {
            out.failure = Some(Failure::Rejected(why));
            return out;
        }
    };
    let driver = Driver {
        pattern,
        events,
        nfa: Nfa::new(&graph, pattern, events),
        ordered_advance: dev.ordered_advance,
        out,
    };
    driver.run(end)
}

/// [`run`] of several patterns as one NFA ([`Nfa::with_graphs`]: one
/// queue of partial matches, one shared buffer, pruning and holding back
/// across them): the branch patterns of `pattern`, a pattern with
/// alternation, whose stages, window, skip strategy and timeouts they
/// share. Each output names its pattern ([`Emitted::graph`]).
pub fn run_patterns<'e>(
    pattern: &Pattern,
    patterns: &[Pattern],
    events: &'e [RefEvent],
    end: Option<i64>,
    hooks: Box<dyn Hooks + 'e>,
) -> Output {
    let mut out = Output::default();
    let mut graphs = Vec::new();
    for p in patterns {
        match compiler::compile(p, Deviations::CEPHEID) {
            Ok(g) => graphs.push(g),
            Err(why) => {
                out.failure = Some(Failure::Rejected(why));
                return out;
            }
        }
    }
    let driver = Driver {
        pattern,
        events,
        nfa: Nfa::with_graphs(graphs.iter().collect(), pattern, events, Some(hooks)),
        ordered_advance: Deviations::CEPHEID.ordered_advance,
        out,
    };
    driver.run(end)
}

struct Driver<'g, 'p, 'e> {
    pattern: &'p Pattern,
    events: &'e [RefEvent],
    nfa: Nfa<'g, 'p, 'e>,
    ordered_advance: bool,
    out: Output,
}

impl Driver<'_, '_, '_> {
    fn run(mut self, end: Option<i64>) -> Output {
        if let Err(why) = self.run_all(end) {
            self.out.failure = Some(if self.nfa.work() > WORK_BUDGET {
                Failure::TooExpensive
            } else {
                Failure::Runtime(why)
            });
        }
        self.out
    }

    fn run_all(&mut self, end: Option<i64>) -> Result<(), String> {
        for (i, e) in self.events.iter().enumerate() {
            self.advance(e.ts, 2 * i)?;
            let matches = self.nfa.process(i)?;
            self.record(2 * i + 1, matches, Vec::new());
        }
        if let Some(t) = end {
            self.advance(t, 2 * self.events.len())?;
        }
        Ok(())
    }

    /// D4: one `advanceTime` per deadline up to `t`, then `advanceTime(t)`.
    fn advance(&mut self, t: i64, step: usize) -> Result<(), String> {
        while let Some(d) = self
            .nfa
            .next_deadline()
            .filter(|d| self.ordered_advance && *d <= t)
        {
            let (matches, timeouts) = self.nfa.advance_time(d)?;
            self.record(step, matches, timeouts);
        }
        let (matches, timeouts) = self.nfa.advance_time(t)?;
        self.record(step, matches, timeouts);
        Ok(())
    }

    fn record(
        &mut self,
        step: usize,
        matches: Vec<(usize, Materialized)>,
        timeouts: Vec<(usize, Materialized, i64, usize)>,
    ) {
        for (graph, m) in matches {
            let stages = self.nfa.stages(graph, &m);
            self.out.matches.push(Emitted {
                step,
                stages,
                expired_at: None,
                waiting: None,
                graph,
            });
        }
        if !self.pattern.emit_timeouts {
            return;
        }
        for (graph, m, at, page) in timeouts {
            let stages = self.nfa.stages(graph, &m);
            self.out.timeouts.push(Emitted {
                step,
                stages,
                expired_at: Some(at),
                waiting: Some(self.nfa.graph_pages(graph)[page].clone()),
                graph,
            });
        }
    }
}
