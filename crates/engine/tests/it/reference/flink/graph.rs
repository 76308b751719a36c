//! The compiled automaton, as Flink's `State` / `StateTransition` objects
//! hold it: states with unique names (`NFAStateNameHandler`), transitions
//! TAKE / IGNORE / PROCEED with a condition, and Flink's condition objects
//! as a small tree over the IR's [`Condition`]s.
//!
//! Also D5 (cepheid's compile errors, see `../mod.rs`): a transition to
//! `null`, a cycle of PROCEED edges and more than [`MAX_PROCEED_PATHS`]
//! PROCEED paths from one state.

use cepheid_core::expr::Expr;
use cepheid_core::pattern::Condition;

/// Index of a state in [`Graph::states`].
pub type StateIdx = usize;
/// Index of a condition in [`Graph::conds`].
pub type CondId = usize;

/// Flink's `State.StateType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateType {
    /// The start state.
    Start,
    /// `$endState$`.
    Final,
    /// Everything else that runs wait in.
    Normal,
    /// A trailing `not followed by` waiting for its window to close.
    Pending,
    /// A negation was met: the run dies.
    Stop,
}

/// Flink's `StateTransitionAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Take the event, move to the target.
    Take,
    /// Skip the event, wait in the target.
    Ignore,
    /// Move to the target without consuming the event.
    Proceed,
}

/// Flink's `StateTransition`. The target is `None` where Flink's compiler
/// stores `null` (`originalStateMap.get` of a name it never put).
#[derive(Clone, Debug)]
pub struct Transition {
    /// What the edge does.
    pub action: Action,
    /// The state holding the edge.
    pub source: StateIdx,
    /// Where it leads.
    pub target: Option<StateIdx>,
    /// When it may be followed.
    pub cond: CondId,
}

/// Flink's `State`, plus its entry in `windowTimes` (keyed by the unique
/// state name in Flink, so one per state here).
#[derive(Clone, Debug)]
pub struct State {
    /// Unique internal name (`b`, `b:0`, ...).
    pub name: String,
    /// Index of the original name (`b`) in [`Graph::pages`].
    pub page: usize,
    /// Kind.
    pub kind: StateType,
    /// Edges in insertion order.
    pub transitions: Vec<Transition>,
    /// `windowTimes.get(name)`.
    pub window: Option<i64>,
}

/// A node of a Flink condition object.
#[derive(Clone, Debug)]
pub enum CondNode<'p> {
    /// `BooleanConditions.trueFunction()`.
    True,
    /// A stage or `until` condition of the IR; `iterative` when it reads
    /// the partial match (Flink materializes it only then).
    Leaf {
        /// The IR condition.
        cond: &'p Condition,
        /// Does it reference stages?
        iterative: bool,
    },
    /// `RichAndCondition` (short-circuit, left first).
    And(CondId, CondId),
    /// `RichNotCondition`.
    Not(CondId),
}

/// What the compiler produced.
pub struct Graph<'p> {
    /// Every state, in creation order.
    pub states: Vec<State>,
    /// The condition arena.
    pub conds: Vec<CondNode<'p>>,
    /// `getWindowTime()`: the pattern window, 0 for none.
    pub window_time: i64,
    /// Original state names (shared-buffer pages).
    pub pages: Vec<String>,
}

/// Most PROCEED paths from one state before the pattern is rejected (D5).
pub const MAX_PROCEED_PATHS: u64 = 10_000;

impl Graph<'_> {
    /// The start state.
    pub fn start(&self) -> StateIdx {
        self.states
            .iter()
            .position(|s| s.kind == StateType::Start)
            .expect("the compiler makes a start state")
    }

    /// D5: rejects a transition to `null` (Flink's `originalStateMap` has
    /// no copy for the state a greedy `until` loop leaves to).
    pub fn check_null_targets(&self) -> Result<(), String> {
        for s in &self.states {
            if s.transitions.iter().any(|t| t.target.is_none()) {
                return Err(format!(
                    "state `{}` has a transition to null (greedy with until)",
                    s.name
                ));
            }
        }
        Ok(())
    }

    /// D5: rejects a cycle of PROCEED edges and a state with more than
    /// [`MAX_PROCEED_PATHS`] PROCEED paths (`1 +` the paths of each PROCEED
    /// target, saturating).
    /// Without `limit_paths` only cycles are rejected (where Flink loops
    /// forever).
    pub fn check_proceed_paths(&self, limit_paths: bool) -> Result<(), String> {
        const UNSEEN: u64 = u64::MAX;
        const ON_STACK: u64 = u64::MAX - 1;
        let mut paths = vec![UNSEEN; self.states.len()];
        for root in 0..self.states.len() {
            if paths[root] != UNSEEN {
                continue;
            }
            paths[root] = ON_STACK;
            let mut stack: Vec<(StateIdx, usize)> = vec![(root, 0)];
            while let Some(top) = stack.last_mut() {
                let (state, next) = (top.0, top.1);
                let edges = &self.states[state].transitions;
                let found = edges[next..]
                    .iter()
                    .position(|t| t.action == Action::Proceed && t.target.is_some())
                    .map(|i| next + i);
                let Some(i) = found else {
                    stack.pop();
                    let mut n: u64 = 1;
                    for t in edges {
                        if let (Action::Proceed, Some(target)) = (t.action, t.target) {
                            n = n.saturating_add(paths[target]);
                        }
                    }
                    if limit_paths && n > MAX_PROCEED_PATHS {
                        return Err(format!(
                            "more than {MAX_PROCEED_PATHS} proceed paths from state `{}`",
                            self.states[state].name
                        ));
                    }
                    paths[state] = n;
                    continue;
                };
                top.1 = i + 1;
                let target = edges[i].target.expect("filtered");
                match paths[target] {
                    ON_STACK => {
                        return Err(format!(
                            "a cycle of proceed edges through state `{}`",
                            self.states[target].name
                        ))
                    }
                    UNSEEN => {
                        paths[target] = ON_STACK;
                        stack.push((target, 0));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The automaton as text (for failure reports and debugging).
    pub fn describe(&self) -> String {
        let mut out = format!("window {}\n", self.window_time);
        for s in &self.states {
            out += &format!("{:?} {} window={:?}\n", s.kind, s.name, s.window);
            for t in &s.transitions {
                let target = t.target.map_or("null", |x| &self.states[x].name);
                out += &format!(
                    "    {:?} -> {target} if {}\n",
                    t.action,
                    self.describe_cond(t.cond)
                );
            }
        }
        out
    }

    fn describe_cond(&self, c: CondId) -> String {
        match &self.conds[c] {
            CondNode::True => "true".into(),
            CondNode::Leaf { cond, .. } => match cond {
                Condition::True => "true".into(),
                Condition::Expr(e) => format!("{e:?}").chars().take(60).collect(),
                Condition::Native(n) => n.description.clone(),
            },
            CondNode::And(a, b) => {
                format!("({} & {})", self.describe_cond(*a), self.describe_cond(*b))
            }
            CondNode::Not(a) => format!("!{}", self.describe_cond(*a)),
        }
    }
}

/// Does the condition read the partial match (stage fields, aggregates)?
pub fn is_iterative(cond: &Condition) -> bool {
    match cond {
        Condition::True => false,
        Condition::Native(n) => n.iterative,
        Condition::Expr(e) => expr_is_iterative(e),
    }
}

fn expr_is_iterative(e: &Expr) -> bool {
    match e {
        Expr::StageField { .. } | Expr::Aggregate { .. } => true,
        Expr::Literal(_) | Expr::Field(_) | Expr::Exists(_) => false,
        Expr::Unary(_, x) | Expr::Matches(x, _) | Expr::InList(x, _) => expr_is_iterative(x),
        Expr::Binary(_, x, y) => expr_is_iterative(x) || expr_is_iterative(y),
        Expr::Chain(x, rest) => {
            expr_is_iterative(x) || rest.iter().any(|(_, y)| expr_is_iterative(y))
        }
        Expr::In(x, items) => expr_is_iterative(x) || items.iter().any(expr_is_iterative),
        Expr::Call(_, args) | Expr::Indicator(_, args) => args.iter().any(expr_is_iterative),
    }
}
