//! Scenes: one decision per event from the rules that fired on it
//! (issue 62; the language's `scene` blocks, `docs/language.md` §11).
//!
//! A [`Scene`] says which events enter it (its `when` condition), which
//! patterns of the rule set it holds ([`SceneRule`], in the scene's order),
//! and how one [`OutcomeId`] comes out for an event: list checks first
//! ([`ListCheck`], the first that holds decides at once), then the
//! outcomes of the fired rules' actions and the score thresholds
//! ([`Threshold`]) on the sum of their scores, under a [`HitPolicy`];
//! [`Scene::resolve`] is that policy, on the rules that fired and the list
//! check that held, as plain data. A rule with parameters is held as one
//! pattern made for this scene (its *instance*, named `rule@scene`, with
//! the scene's values in its conditions); a rule without parameters is the
//! rule set's one pattern, whichever scenes hold it.
//!
//! The language makes scenes (`cepheid_syntax`'s `Loaded::scenes`);
//! nothing in this module reads an event: the engine decides which rules
//! fired on an event and which list holds its value, and asks the scene
//! for the outcome.

use std::sync::Arc;

use crate::event::FieldPath;
use crate::expr::Expr;
use crate::lookup::ListRef;
use crate::primitives::{DurationMs, Span};
use crate::value::Value;

/// The number of an outcome in its scene's [`Scene::outcomes`]: the
/// larger, the more severe (`approve < review < decline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutcomeId(pub u16);

impl OutcomeId {
    /// As an index of [`Scene::outcomes`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Which of the fired rules count towards an event's outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HitPolicy {
    /// `hit all` (the default): every rule that fired counts; the most
    /// severe outcome any of them gives wins, and the score is the sum of
    /// theirs.
    #[default]
    All,
    /// `hit first`: only the first rule, in the scene's order, that fired
    /// and gives an outcome (by its action, or by its own score against
    /// the thresholds) counts, as if it alone had fired.
    First,
}

impl HitPolicy {
    /// The word after `hit`.
    pub fn word(self) -> &'static str {
        match self {
            HitPolicy::All => "all",
            HitPolicy::First => "first",
        }
    }

    /// The policy named by a word after `hit`.
    pub fn from_word(word: &str) -> Option<HitPolicy> {
        match word {
            "all" => Some(HitPolicy::All),
            "first" => Some(HitPolicy::First),
            _ => None,
        }
    }
}

/// A decision policy over a rule set's patterns (see the module docs).
#[derive(Clone, Debug)]
pub struct Scene {
    /// The scene's name (unique among the rule set's scenes).
    pub name: String,
    /// `///` documentation lines, joined with newlines.
    pub doc: Option<String>,
    /// `when c`: which events enter the scene, a condition over the event
    /// alone (`None`: every event).
    pub entry: Option<Expr>,
    /// The text of `when` as written (`type == "payment"`), for messages
    /// that name it (a request refused because its event does not enter
    /// the scene).
    pub entry_text: Option<Arc<str>>,
    /// `id f`: the event's id field (`None`: the event's input position
    /// stands for its id).
    pub id: Option<FieldPath>,
    /// `outcomes a < b < c`: the names, mildest first
    /// ([`OutcomeId`] indexes them).
    pub outcomes: Vec<Arc<str>>,
    /// `default o`: the outcome when no rule that counts gives one (the
    /// mildest outcome when not written).
    pub default: OutcomeId,
    /// `fallback o`: the outcome the decision service answers when no
    /// decision comes within the deadline.
    pub fallback: OutcomeId,
    /// `late o`: the outcome of an event that comes late (the fallback
    /// when not written).
    pub late: OutcomeId,
    /// `deadline d`: the default deadline of a decision, published to the
    /// decision service's clients.
    pub deadline: DurationMs,
    /// `hit first` / `hit all`.
    pub hit: HitPolicy,
    /// `o if x in list` lines, in the order they are checked: the most
    /// severe outcome first (the block list before the allow list).
    pub list_checks: Vec<ListCheck>,
    /// `o if action a` lines: the outcome each action gives.
    pub actions: Vec<ActionOutcome>,
    /// `o if score >= n` lines, thresholds rising, outcomes never milder.
    pub thresholds: Vec<Threshold>,
    /// The rules it holds, in the scene's order (`rules` items as written,
    /// then the rules written inside the scene).
    pub rules: Vec<SceneRule>,
    /// `with name = value`: the values the scene gives its rules'
    /// parameters, as written.
    pub parameters: Vec<Parameter>,
    /// Where the scene's name is written.
    pub span: Span,
}

/// One rule of a scene: a pattern of the rule set and what it gives.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneRule {
    /// The pattern that runs: the rule's own name, or `rule@scene` for the
    /// instance of a rule with parameters.
    pub pattern: String,
    /// The rule as written (its name before `@`).
    pub rule: String,
    /// Made for this scene (a rule with parameters)?
    pub instance: bool,
    /// Its `action`, if any.
    pub action: Option<Arc<str>>,
    /// The outcome its action gives (`None` when it has no action).
    pub outcome: Option<OutcomeId>,
    /// Its `score` (none counts 0).
    pub score: Option<f64>,
    /// A `shadow` rule: listed when it fires, never counted.
    pub shadow: bool,
    /// An instance's values, one per parameter of the rule in its order
    /// (the scene's, or the rule's default); empty for a rule without
    /// parameters.
    pub parameters: Vec<Parameter>,
}

/// `o if x in list`: a list check that decides the outcome at once.
#[derive(Clone, Debug)]
pub struct ListCheck {
    /// The value looked up, an expression over the event alone.
    pub value: Expr,
    /// The list.
    pub list: ListRef,
    /// The outcome when the list holds the value.
    pub outcome: OutcomeId,
    /// Its canonical text (`device in blocked_devices`).
    pub label: Arc<str>,
    /// Where the line is written.
    pub span: Span,
}

/// `o if action a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The action's name.
    pub action: Arc<str>,
    /// The outcome it gives.
    pub outcome: OutcomeId,
}

/// `o if score >= n` (or `> n`): reached by a sum of scores at or over
/// (over) `score`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The threshold.
    pub score: f64,
    /// `>=` (true) or `>` (false).
    pub inclusive: bool,
    /// The outcome when it is reached.
    pub outcome: OutcomeId,
    /// Where the line is written.
    pub span: Span,
}

impl Threshold {
    /// Does `sum` reach it?
    pub fn reached(&self, sum: f64) -> bool {
        if self.inclusive {
            sum >= self.score
        } else {
            sum > self.score
        }
    }
}

/// `with name = value`: a value a scene gives its rules' parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// The parameter's name.
    pub name: Arc<str>,
    /// Its value (a duration is its milliseconds, as in expressions).
    pub value: Value,
    /// The value as written (`3h`).
    pub written: Arc<str>,
}

/// The outcome of one event in a scene ([`Scene::resolve`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// The outcome.
    pub outcome: OutcomeId,
    /// The sum of the scores of the rules that count.
    pub score: f64,
    /// The list check that decided it, if one did (an index of
    /// [`Scene::list_checks`]).
    pub by_list: Option<usize>,
    /// The rules that count (indexes of [`Scene::rules`], in the scene's
    /// order): under [`HitPolicy::First`] at most one.
    pub counted: Vec<usize>,
}

impl Scene {
    /// The outcome named `name`.
    pub fn outcome(&self, name: &str) -> Option<OutcomeId> {
        let i = self.outcomes.iter().position(|o| &**o == name)?;
        Some(OutcomeId(u16::try_from(i).ok()?))
    }

    /// The name of outcome `id` (`?` when it is none of the scene's).
    pub fn outcome_name(&self, id: OutcomeId) -> &str {
        self.outcomes.get(id.index()).map_or("?", |o| o)
    }

    /// The outcome of an event on which the rules `fired` (indexes of
    /// [`Scene::rules`], any order) fired, and the first list check that
    /// held (`listed`, an index of [`Scene::list_checks`]):
    ///
    /// 1. a list check that held decides (the rules that fired still
    ///    count in the score);
    /// 2. shadow rules never count; under [`HitPolicy::All`] every other
    ///    fired rule counts, under [`HitPolicy::First`] only the first, in
    ///    the scene's order, that gives an outcome;
    /// 3. the outcome is the most severe of the outcomes of the counted
    ///    rules' actions and of the highest threshold their summed score
    ///    reaches; the default when they give none.
    ///
    /// ```
    /// use cepheid_core::scene::{HitPolicy, OutcomeId, Scene, SceneRule, Threshold};
    /// # use cepheid_core::primitives::Span;
    /// let rule = |name: &str, score| SceneRule {
    ///     pattern: name.into(), rule: name.into(), instance: false,
    ///     action: None, outcome: None, score: Some(score), shadow: false,
    ///     parameters: vec![],
    /// };
    /// let scene = Scene {
    ///     name: "payment".into(), doc: None, entry: None, entry_text: None, id: None,
    ///     outcomes: vec!["approve".into(), "review".into(), "decline".into()],
    ///     default: OutcomeId(0), fallback: OutcomeId(1), late: OutcomeId(1),
    ///     deadline: 200, hit: HitPolicy::All, list_checks: vec![], actions: vec![],
    ///     thresholds: vec![Threshold { score: 50.0, inclusive: true, outcome: OutcomeId(1), span: Span::default() }],
    ///     rules: vec![rule("a", 30.0), rule("b", 30.0)],
    ///     parameters: vec![], span: Span::default(),
    /// };
    /// assert_eq!(scene.resolve(&[0], None).outcome, OutcomeId(0));
    /// assert_eq!(scene.resolve(&[0, 1], None).outcome, OutcomeId(1));
    /// ```
    pub fn resolve(&self, fired: &[usize], listed: Option<usize>) -> Resolution {
        let mut fired: Vec<usize> = fired
            .iter()
            .copied()
            .filter(|&i| self.rules.get(i).is_some_and(|r| !r.shadow))
            .collect();
        fired.sort_unstable();
        fired.dedup();
        let counted = match self.hit {
            HitPolicy::All => fired,
            HitPolicy::First => fired
                .into_iter()
                .find(|&i| self.given(&[i]).is_some())
                .into_iter()
                .collect(),
        };
        let score = self.score_of(&counted);
        let outcome = match listed.and_then(|i| self.list_checks.get(i)) {
            Some(check) => check.outcome,
            None => self.given(&counted).unwrap_or(self.default),
        };
        Resolution {
            outcome,
            score,
            by_list: listed.filter(|&i| i < self.list_checks.len()),
            counted,
        }
    }

    /// The sum of the scores of `rules`.
    fn score_of(&self, rules: &[usize]) -> f64 {
        rules.iter().filter_map(|&i| self.rules.get(i)?.score).sum()
    }

    /// The most severe outcome `rules` give by their actions and their
    /// summed score, if any.
    fn given(&self, rules: &[usize]) -> Option<OutcomeId> {
        let by_action = rules.iter().filter_map(|&i| self.rules.get(i)?.outcome);
        let sum = self.score_of(rules);
        let by_score = self
            .thresholds
            .iter()
            .filter(|t| t.reached(sum))
            .map(|t| t.outcome);
        if rules.is_empty() {
            return None;
        }
        by_action.chain(by_score).max()
    }
}

/// The value of a [`Value`] a score or threshold holds, as a float.
pub fn score_value(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, action: Option<u16>, score: Option<f64>, shadow: bool) -> SceneRule {
        SceneRule {
            pattern: name.into(),
            rule: name.into(),
            instance: false,
            action: action.map(|_| Arc::from("a")),
            outcome: action.map(OutcomeId),
            score,
            shadow,
            parameters: Vec::new(),
        }
    }

    fn scene(hit: HitPolicy, rules: Vec<SceneRule>) -> Scene {
        let threshold = |score, outcome| Threshold {
            score,
            inclusive: true,
            outcome: OutcomeId(outcome),
            span: Span::default(),
        };
        Scene {
            name: "s".into(),
            doc: None,
            entry: None,
            entry_text: None,
            id: None,
            outcomes: vec!["approve".into(), "review".into(), "decline".into()],
            default: OutcomeId(0),
            fallback: OutcomeId(1),
            late: OutcomeId(1),
            deadline: 100,
            hit,
            list_checks: Vec::new(),
            actions: Vec::new(),
            thresholds: vec![threshold(50.0, 1), threshold(100.0, 2)],
            rules,
            parameters: Vec::new(),
            span: Span::default(),
        }
    }

    #[test]
    fn all_takes_the_most_severe_of_actions_and_summed_scores() {
        let s = scene(
            HitPolicy::All,
            vec![
                rule("a", None, Some(40.0), false),
                rule("b", Some(1), Some(30.0), false),
                rule("c", Some(2), None, true),
                rule("d", None, Some(40.0), false),
            ],
        );
        let r = s.resolve(&[], None);
        assert_eq!(
            (r.outcome, r.score, r.counted.len()),
            (OutcomeId(0), 0.0, 0)
        );
        assert_eq!(s.resolve(&[0], None).outcome, OutcomeId(0));
        // 40 + 30: review, by the score and by `b`'s action.
        assert_eq!(s.resolve(&[1, 0], None).outcome, OutcomeId(1));
        // 40 + 30 + 40 = 110: decline by the score.
        let r = s.resolve(&[0, 1, 3], None);
        assert_eq!((r.outcome, r.score), (OutcomeId(2), 110.0));
        // A shadow rule never counts.
        let r = s.resolve(&[2], None);
        assert_eq!((r.outcome, r.counted.len()), (OutcomeId(0), 0));
    }

    #[test]
    fn first_counts_only_the_first_rule_that_gives_an_outcome() {
        let s = scene(
            HitPolicy::First,
            vec![
                rule("quiet", None, Some(10.0), false),
                rule("review", Some(1), Some(60.0), false),
                rule("decline", Some(2), Some(100.0), false),
            ],
        );
        let r = s.resolve(&[2, 1, 0], None);
        assert_eq!(
            (r.outcome, r.score, r.counted),
            (OutcomeId(1), 60.0, vec![1])
        );
        // A rule that gives nothing alone: the default.
        let r = s.resolve(&[0], None);
        assert_eq!((r.outcome, r.counted.len()), (OutcomeId(0), 0));
    }

    #[test]
    fn the_default_is_the_outcome_when_nothing_is_given() {
        let mut s = scene(HitPolicy::All, vec![rule("a", Some(0), None, false)]);
        s.default = OutcomeId(1);
        // No rule fired: the default.
        assert_eq!(s.resolve(&[], None).outcome, OutcomeId(1));
        // A rule whose action gives `approve`: approve, though milder.
        assert_eq!(s.resolve(&[0], None).outcome, OutcomeId(0));
    }

    #[test]
    fn a_list_check_decides_and_the_rules_still_count() {
        let mut s = scene(HitPolicy::All, vec![rule("a", Some(2), Some(70.0), false)]);
        s.list_checks.push(ListCheck {
            value: Expr::Literal(Value::Null),
            list: ListRef {
                id: crate::lookup::ListId(0),
                name: "allowed".into(),
            },
            outcome: OutcomeId(0),
            label: "x in allowed".into(),
            span: Span::default(),
        });
        let r = s.resolve(&[0], Some(0));
        assert_eq!(
            (r.outcome, r.score, r.by_list, r.counted),
            (OutcomeId(0), 70.0, Some(0), vec![0])
        );
    }
}
