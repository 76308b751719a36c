//! A scene's rules: the rules it holds (by name, by tag, written inside
//! it), the values it gives them, each rule checked for the scene and, for
//! a rule with parameters, made for it.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Held, Lines, Lowerer};
use crate::ast::{Binding, Literal, RuleRef, SceneDecl};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::lower_expr::closest;
use crate::param::{accepts, constant_value, literal_phrase, type_help, type_phrase};
use crate::pattern::Pattern;
use crate::primitives::Span;
use crate::scene::{OutcomeId, Parameter, SceneRule};
use crate::template::{instantiate, RuleInfo};

/// What the scenes of one text may hold in all, rules with parameters or
/// not ([`MAX_SCENE_RULES`](super::MAX_SCENE_RULES)).
pub(super) const ENTRIES: &str = "the scenes of this file hold more than 100000 rules in all";

/// How many instances the scenes of one text may make
/// ([`MAX_INSTANCES`](super::MAX_INSTANCES)).
const INSTANCES: &str =
    "the scenes of this file make more than 10000 rules with parameters (one per scene that holds one)";

impl Lowerer<'_, '_> {
    /// The rules the scene holds, in its order: its `rules` items as
    /// written (a tag's rules in load order), then its own rules; each
    /// once.
    pub(super) fn held(&mut self, s: &SceneDecl, refs: &[&RuleRef]) -> Vec<Held> {
        let mut held: Vec<Held> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |rule: usize, at: Span| {
            if seen.insert(rule) {
                held.push(Held { rule, at });
            }
        };
        let mut named = false;
        for r in refs {
            named = true;
            match r {
                RuleRef::Name(n) => match self.cx.rule_names.get(&n.name) {
                    Some(&i) => add(i, n.span),
                    None => {
                        let names: Vec<&str> =
                            self.cx.rules.iter().map(|r| r.name.as_str()).collect();
                        let mut d = Diagnostic::error(
                            DiagnosticKind::UnknownName,
                            n.span,
                            format!("there is no rule `{}`", n.name),
                        );
                        d = match closest(&n.name, &names) {
                            Some(best) => d.with_help(format!("did you mean `{best}`?")),
                            None => d.with_help(
                                "a scene names the rules of its own file and of the files loaded before it",
                            ),
                        };
                        self.push(d);
                    }
                },
                RuleRef::Tagged(t) => {
                    let mut any = false;
                    for (i, rule) in self.cx.rules.iter().enumerate() {
                        if rule.tags.contains(&t.value) {
                            add(i, t.span);
                            any = true;
                        }
                    }
                    if !any {
                        let mut tags: Vec<&str> = self
                            .cx
                            .rules
                            .iter()
                            .flat_map(|r| r.tags.iter().map(String::as_str))
                            .collect();
                        tags.sort_unstable();
                        tags.dedup();
                        let mut d = Diagnostic::error(
                            DiagnosticKind::UnknownName,
                            t.span,
                            format!("no rule is tagged `{}`", t.value),
                        );
                        if let Some(best) = closest(&t.value, &tags) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        }
                        self.push(d);
                    }
                }
            }
        }
        for p in &s.patterns {
            named = true;
            if let Some(&i) = self.cx.rule_names.get(&p.name.name) {
                add(i, p.name.span);
            }
        }
        if !named {
            self.error(
                s.name.span,
                format!("scene `{}` holds no rule", s.name.name),
                "name its rules (`rules a, b` or `rules tagged \"t\"`), or write them inside it",
            );
        }
        held
    }

    /// `with name = value`: each name given once and taken by a rule of
    /// the scene, each value of the type of every parameter it is given
    /// to.
    pub(super) fn bindings(&mut self, bindings: &[&Binding], held: &[Held]) -> Vec<Parameter> {
        let mut out: Vec<Parameter> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for b in bindings {
            if let Some(&first) = seen.get(b.name.name.as_str()) {
                let d = Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    b.name.span,
                    format!("the parameter `{}` is given twice", b.name.name),
                )
                .with_label(first, "first given here");
                self.push(d);
                continue;
            }
            seen.insert(&b.name.name, b.name.span);
            let mut taken = false;
            for h in held {
                let rule = &self.cx.rules[h.rule];
                let Some(p) = rule.params.iter().find(|p| p.name == b.name.name) else {
                    continue;
                };
                taken = true;
                let Some(ty) = p.ty else {
                    continue;
                };
                if !accepts(ty, &b.value.literal) {
                    let d = Diagnostic::error(
                        DiagnosticKind::BadArguments,
                        b.value.span,
                        format!(
                            "the parameter `{}` of rule `{}` is {}, and this is {}",
                            b.name.name,
                            rule.name,
                            type_phrase(ty),
                            literal_phrase(&b.value.literal)
                        ),
                    )
                    .with_help(type_help(ty));
                    let (span, source) = (p.span, rule.source);
                    self.push_with(d, span, "the parameter", source);
                }
            }
            if !taken {
                let mut names: Vec<&str> = held
                    .iter()
                    .flat_map(|h| self.cx.rules[h.rule].params.iter().map(|p| p.name.as_str()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let mut d = Diagnostic::error(
                    DiagnosticKind::UnknownName,
                    b.name.span,
                    format!(
                        "no rule of scene `{}` takes a parameter `{}`",
                        self.scene, b.name.name
                    ),
                );
                d = match closest(&b.name.name, &names) {
                    Some(best) => d.with_help(format!("did you mean `{best}`?")),
                    None if names.is_empty() => {
                        d.with_help("none of the scene's rules has parameters")
                    }
                    None => d.with_help(format!("their parameters: {}", names.join(", "))),
                };
                self.push(d);
            }
            out.push(Parameter {
                name: Arc::from(b.name.name.as_str()),
                value: constant_value(&b.value.literal),
                written: Arc::from(crate::print::literal_text(&b.value.literal).as_str()),
            });
        }
        out
    }

    /// The scene's rules: checked (no skip strategy, every action given an
    /// outcome, every parameter a value) and made (a rule with parameters
    /// once for this scene). `complete` is false when a rule it holds has
    /// an error of its own.
    pub(super) fn rules(
        &mut self,
        held: &[Held],
        bindings: &[&Binding],
        lines: &Lines,
        known: bool,
    ) -> (Vec<SceneRule>, Vec<(Pattern, usize)>, bool) {
        let mut rules = Vec::new();
        let mut instances = Vec::new();
        let mut complete = true;
        let values: HashMap<&str, &Literal> = bindings
            .iter()
            .map(|b| (b.name.name.as_str(), &b.value.literal))
            .collect();
        for h in held {
            let rule = &self.cx.rules[h.rule];
            if !rule.valid {
                complete = false;
                continue;
            }
            if !self.take(self.cx.entries_left, h.at, ENTRIES) {
                complete = false;
                break;
            }
            if let Some(skip) = rule.skip {
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    h.at,
                    format!(
                        "rule `{}` has a skip strategy, which a rule of a scene cannot have: a match it holds back may be dropped later, after the event's decision",
                        rule.name
                    ),
                )
                .with_help("leave the `skip` clause out (`skip no skip`)");
                self.push_with(d, skip, "its skip strategy", rule.source);
            }
            let outcome = self.action_outcome(rule, h.at, lines, known);
            let (pattern, parameters) = if rule.decl.is_some() {
                if !self.take(self.cx.instances_left, h.at, INSTANCES) {
                    complete = false;
                    continue;
                }
                let Some((instance, parameters)) = self.instance(rule, h.at, &values) else {
                    continue;
                };
                let name = instance.name.clone();
                instances.push((instance, rule.source));
                (name, parameters)
            } else {
                (rule.name.clone(), Vec::new())
            };
            rules.push(SceneRule {
                pattern,
                rule: rule.name.clone(),
                instance: rule.decl.is_some(),
                action: rule.action.as_ref().map(|(a, _)| Arc::from(a.as_str())),
                outcome,
                score: rule.score,
                shadow: rule.shadow,
                parameters,
            });
        }
        (rules, instances, complete)
    }

    /// Takes one from a text's budget (`left`), or says (once per text,
    /// with `message`) that it is spent.
    fn take(&mut self, left: &std::cell::Cell<usize>, at: Span, message: &str) -> bool {
        match left.get() {
            0 => {
                if !self.cx.spent.replace(true) {
                    self.push(Diagnostic::error(DiagnosticKind::Limit, at, message));
                }
                false
            }
            n => {
                left.set(n - 1);
                true
            }
        }
    }

    /// The outcome `rule`'s action gives in this scene (an error when it
    /// has an action the scene gives none; said only when the outcomes
    /// are `known`: without them every outcome line was dropped).
    fn action_outcome(
        &mut self,
        rule: &RuleInfo,
        at: Span,
        lines: &Lines,
        known: bool,
    ) -> Option<OutcomeId> {
        let (a, clause) = rule.action.as_ref()?;
        let found = lines.actions.iter().find(|(x, _)| *x.action == **a);
        if found.is_none() && known {
            let d = Diagnostic::error(
                DiagnosticKind::Scene,
                at,
                format!(
                    "rule `{}` has the action `{a}`, which scene `{}` gives no outcome",
                    rule.name, self.scene
                ),
            )
            .with_help(format!("add a line `OUTCOME if action {a}`"));
            self.push_with(d, *clause, "its action", rule.source);
        }
        found.map(|(x, _)| x.outcome)
    }

    /// The instance of `rule` (a rule with parameters) for this scene, and
    /// the values it was made with; `None` when a value is missing or of
    /// the wrong type, or the values make an error (each said).
    fn instance(
        &mut self,
        rule: &RuleInfo,
        at: Span,
        values: &HashMap<&str, &Literal>,
    ) -> Option<(Pattern, Vec<Parameter>)> {
        let mut missing = false;
        for p in &rule.params {
            if !values.contains_key(p.name.as_str()) && p.default.is_none() {
                missing = true;
                let d = Diagnostic::error(
                    DiagnosticKind::Scene,
                    at,
                    format!(
                        "rule `{}` needs a value for its parameter `{}`, and scene `{}` gives none",
                        rule.name, p.name, self.scene
                    ),
                )
                .with_help(format!("add `with {} = ...` to the scene", p.name));
                self.push_with(d, p.span, "the parameter", rule.source);
            }
        }
        if missing || !bindings_fit(rule, values) {
            return None;
        }
        let parameters = rule
            .params
            .iter()
            .filter_map(|p| {
                let l = values
                    .get(p.name.as_str())
                    .copied()
                    .or(p.default.as_ref().map(|d| &d.literal))?;
                Some(Parameter {
                    name: Arc::from(p.name.as_str()),
                    value: constant_value(l),
                    written: Arc::from(crate::print::literal_text(l).as_str()),
                })
            })
            .collect();
        match instantiate(rule, values, self.scene, self.cx.decls, self.cx.factors) {
            Ok(p) => Some((p, parameters)),
            Err(errors) => {
                self.instance_errors(rule, at, errors);
                None
            }
        }
    }

    /// Errors a rule gives with the scene's values only, said at the
    /// scene with a label at the rule.
    fn instance_errors(&mut self, rule: &RuleInfo, at: Span, errors: Vec<Diagnostic>) {
        if errors.is_empty() {
            self.error(
                at,
                format!(
                    "rule `{}` cannot be made for scene `{}`",
                    rule.name, self.scene
                ),
                "",
            );
        }
        for e in errors {
            let mut d = Diagnostic::error(
                e.kind,
                at,
                format!(
                    "with the values of scene `{}`, rule `{}` has an error: {}",
                    self.scene, rule.name, e.message
                ),
            );
            d.help = e.help;
            self.push_with(d, e.span, "here", rule.source);
        }
    }

    /// A warning for each `if action a` line no rule of the scene has,
    /// and for score thresholds when no rule has a score (of the rules
    /// held, with an error or not).
    pub(super) fn check_actions(&mut self, lines: &Lines, held: &[Held]) {
        let rules: Vec<&RuleInfo> = held.iter().map(|h| &self.cx.rules[h.rule]).collect();
        for (a, span) in &lines.actions {
            if !rules
                .iter()
                .any(|r| r.action.as_ref().is_some_and(|(x, _)| *x == *a.action))
            {
                self.push(Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    *span,
                    format!(
                        "no rule of scene `{}` has the action `{}`",
                        self.scene, a.action
                    ),
                ));
            }
        }
        if let Some(first) = lines.thresholds.first() {
            if !rules.is_empty() && rules.iter().all(|r| r.score.is_none()) {
                self.push(Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    first.span,
                    format!(
                        "no rule of scene `{}` has a `score`, so its score is always 0",
                        self.scene
                    ),
                ));
            }
        }
    }
}

/// Does each value the scene gives `rule` fit its parameter's type (an
/// error was said of each that does not)?
fn bindings_fit(rule: &RuleInfo, values: &HashMap<&str, &Literal>) -> bool {
    rule.params
        .iter()
        .all(|p| match (p.ty, values.get(p.name.as_str())) {
            (Some(ty), Some(l)) => accepts(ty, l),
            _ => true,
        })
}
