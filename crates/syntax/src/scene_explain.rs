//! A lowered [`Scene`] as readable text ([`explain_scene`], shown by
//! `cepheid explain`): what enters it, how its outcome is resolved, and
//! its rules after binding (each instance with its values and its
//! conditions as they run).

use std::fmt::Write;

use crate::explain::{condition_text, expr_text};
use crate::pattern::{show_ms, Pattern};
use crate::scene::{HitPolicy, Scene};

/// The scene as text; `patterns` are the rule set's (the scene's rules'
/// conditions are read from them).
///
/// ```
/// let loaded = cepheid_syntax::load_str("r.cep", r#"
///     pattern big { action review match p where p: amount > 100 }
///     scene payment {
///         rules big
///         outcomes approve < review
///         review if action review
///         fallback approve
///         deadline 100ms
///     }
/// "#);
/// let text = cepheid_syntax::explain_scene(&loaded.scenes[0], &loaded.patterns);
/// assert!(text.contains("    big: action review -> review\n      p: amount > 100\n"), "{text}");
/// ```
pub fn explain_scene(scene: &Scene, patterns: &[Pattern]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scene {}", scene.name);
    if let Some(doc) = &scene.doc {
        for line in doc.lines() {
            let _ = writeln!(out, "  /// {line}");
        }
    }
    let enters = scene
        .entry
        .as_ref()
        .map_or("(every event)".to_string(), |e| expr_text(e, &[]));
    let _ = writeln!(out, "  enters:      {enters}");
    let id = scene.id.as_ref().map_or(
        "(the event's input position)".to_string(),
        ToString::to_string,
    );
    let _ = writeln!(out, "  id:          {id}");
    let outcomes: Vec<&str> = scene.outcomes.iter().map(|o| &**o).collect();
    let _ = writeln!(out, "  outcomes:    {}", outcomes.join(" < "));
    let name = |id| scene.outcome_name(id);
    let _ = writeln!(out, "  default:     {}", name(scene.default));
    let _ = writeln!(out, "  fallback:    {}", name(scene.fallback));
    let _ = writeln!(out, "  late:        {}", name(scene.late));
    let _ = writeln!(out, "  deadline:    {}", show_ms(scene.deadline));
    let hit = match scene.hit {
        HitPolicy::All => "all (every rule that fired counts)",
        HitPolicy::First => "first (the first rule, in order, that fired and gives an outcome)",
    };
    let _ = writeln!(out, "  hit:         {hit}");
    if !scene.parameters.is_empty() {
        let values: Vec<String> = scene
            .parameters
            .iter()
            .map(|p| format!("{} = {}", p.name, p.written))
            .collect();
        let _ = writeln!(out, "  with:        {}", values.join(", "));
    }
    if !scene.list_checks.is_empty() {
        out.push_str("  lists (the first that holds the value decides):\n");
        for c in &scene.list_checks {
            let _ = writeln!(out, "    {} if {}", name(c.outcome), c.label);
        }
    }
    if !scene.actions.is_empty() {
        out.push_str("  actions:\n");
        for a in &scene.actions {
            let _ = writeln!(out, "    {} -> {}", a.action, name(a.outcome));
        }
    }
    if !scene.thresholds.is_empty() {
        out.push_str("  scores (the sum of the counted rules' scores):\n");
        for t in &scene.thresholds {
            let op = if t.inclusive { ">=" } else { ">" };
            let _ = writeln!(out, "    {} if score {op} {}", name(t.outcome), t.score);
        }
    }
    out.push_str("  rules:\n");
    for r in &scene.rules {
        let mut what = Vec::new();
        if let Some(action) = &r.action {
            let given = r.outcome.map_or("?", name);
            what.push(format!("action {action} -> {given}"));
        }
        if let Some(score) = r.score {
            what.push(format!("score {score}"));
        }
        if r.shadow {
            what.push("shadow (never counted)".to_string());
        }
        let mut head = r.pattern.clone();
        if !r.parameters.is_empty() {
            let values: Vec<String> = r
                .parameters
                .iter()
                .map(|p| format!("{} = {}", p.name, p.written))
                .collect();
            let _ = write!(head, " ({} with {})", r.rule, values.join(", "));
        }
        if what.is_empty() {
            let _ = writeln!(out, "    {head}");
        } else {
            let _ = writeln!(out, "    {head}: {}", what.join(", "));
        }
        if let Some(p) = patterns.iter().find(|p| p.name == r.pattern) {
            for s in &p.stages {
                let _ = writeln!(
                    out,
                    "      {}: {}",
                    s.name,
                    condition_text(&s.condition, &p.stages)
                );
            }
        }
    }
    out
}
