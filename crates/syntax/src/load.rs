//! Loading pattern files: bytes → checked text → AST → IR, for one text,
//! many files or folders, with every diagnostic collected in a [`Loaded`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, DiagnosticKind, Label, Source};
use crate::factor::Factors;
use crate::lookup::Declarations;
use crate::lower::lower_pattern;
use crate::lower_decl::lower_declarations;
use crate::parse::{parse_file, Parsed};
use crate::pattern::Pattern;
use crate::primitives::Span;
use crate::scene::Scene;
use crate::scene_lower::{lower_scene, SceneInput};
use crate::template::{template, RuleInfo};

/// Largest pattern file accepted, in bytes.
pub const MAX_FILE_SIZE: usize = 1 << 20;

/// Most diagnostics reported per file (the rest is summarised in one).
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// Most NUL bytes reported per file.
const MAX_NUL_REPORTS: usize = 5;

/// The result of loading pattern text: the valid patterns, every
/// diagnostic, and the sources they point into. `Clone`: a copy shares
/// nothing with the original.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Loaded {
    /// Patterns without errors, in load order.
    pub patterns: Vec<Pattern>,
    /// Errors and warnings, in load order.
    pub diagnostics: Vec<Diagnostic>,
    /// The loaded texts ([`Diagnostic::source`] indexes this).
    pub sources: Vec<Source>,
    /// For each pattern, the index of its source.
    pub pattern_sources: Vec<usize>,
    /// The lists and indicators declared by every text loaded, numbered
    /// in load order (patterns name them by these numbers). A pattern
    /// may name what its own text declares, anywhere in it, and what the
    /// texts loaded before it declared (files of a folder load sorted by
    /// name).
    pub declarations: Declarations,
    /// The scenes, in load order (`docs/language.md` §11): each holds
    /// patterns of [`Loaded::patterns`] by name, the instances of its rules
    /// with parameters (`rule@scene`) among them.
    pub scenes: Vec<Scene>,
    /// For each scene, the index of its source.
    pub scene_sources: Vec<usize>,
    /// Where each list, indicator or factor was declared (source, span).
    declared: HashMap<String, (usize, Span)>,
    /// The factors declared so far, by name.
    factors: Factors,
    /// Every rule written so far, valid or not, in load order: what a
    /// scene may hold (a rule with parameters is here, and not among the
    /// patterns).
    rules: Vec<RuleInfo>,
    /// Each rule's index in `rules`, by name (the first of a name).
    rule_names: HashMap<String, usize>,
    /// Where each scene name was first defined (source, span).
    scene_names: HashMap<String, (usize, Span)>,
    /// The rules some scene holds (a scene with an error too).
    held: std::collections::HashSet<String>,
    /// Where each pattern name was first defined (source, span).
    names: HashMap<String, (usize, Span)>,
    /// For each pattern, how many diagnostics there were when it was
    /// loaded: where [`Loaded::check_each`] places a diagnostic about it.
    placed: Vec<usize>,
}

impl Loaded {
    /// Runs `check` on each pattern, in load order, after the language's
    /// own checks: the layer that compiles patterns to automata
    /// (`cepheid-engine`'s `rules`) checks that each compiles, so that
    /// `cepheid check` and loading report what its compiler rejects as a
    /// diagnostic at the pattern (the language itself knows nothing of
    /// automata). A pattern that fails is left out, and its diagnostic is
    /// placed among the others where the pattern was loaded (in its
    /// source, before what was said of later patterns and files), as if
    /// the check had run as it was loaded. Returns what `check` gave for
    /// each pattern kept, in order: a compiled automaton, kept rather than
    /// compiled again.
    pub fn check_each<T>(
        &mut self,
        mut check: impl FnMut(&Pattern) -> Result<T, Diagnostic>,
    ) -> Vec<T> {
        // (a set whose public fields were changed by hand places its
        // diagnostics at the end)
        let mut placed = std::mem::take(&mut self.placed);
        if placed.len() != self.patterns.len() {
            placed = vec![usize::MAX; self.patterns.len()];
        }
        let patterns = std::mem::take(&mut self.patterns);
        let sources = std::mem::take(&mut self.pattern_sources);
        let mut kept = Vec::with_capacity(patterns.len());
        let mut inserted = 0;
        for ((pattern, source), at) in patterns.into_iter().zip(sources).zip(placed) {
            match check(&pattern) {
                Ok(value) => {
                    kept.push(value);
                    self.patterns.push(pattern);
                    self.pattern_sources.push(source);
                    self.placed.push(at.saturating_add(inserted));
                }
                Err(d) => {
                    let index = at.saturating_add(inserted).min(self.diagnostics.len());
                    self.diagnostics.insert(index, d.in_source(source));
                    inserted += 1;
                }
            }
        }
        kept
    }

    /// A warning at every place where a loaded pattern means something
    /// else than in Apache Flink 2.3, or where a limit can cut work Flink
    /// would do (`cepheid_core::pattern::flink_differences`), in the
    /// pattern's source: what `cepheid check --flink` adds to the load's
    /// own diagnostics.
    pub fn flink_warnings(&self) -> Vec<Diagnostic> {
        use cepheid_core::pattern::{flink_differences, FlinkDifference};
        let mut out = Vec::new();
        for (pattern, &source) in self.patterns.iter().zip(&self.pattern_sources) {
            for f in flink_differences(pattern) {
                let what = match f.difference {
                    FlinkDifference::Limit => "differs from Flink 2.3 at a limit".to_string(),
                    FlinkDifference::NoSuchConstruct => {
                        "uses a construct Flink 2.3 does not have".to_string()
                    }
                    d => format!("differs from Flink 2.3 ({})", d.label()),
                };
                let mut d = Diagnostic::warning(
                    DiagnosticKind::Flink(f.difference),
                    f.span,
                    format!("pattern `{}` {what}: {}", pattern.name, f.message),
                )
                .with_help(f.help);
                d.source = source;
                out.push(d);
            }
        }
        for (scene, &source) in self.scenes.iter().zip(&self.scene_sources) {
            let mut help = "in Flink, key the matches of the scene's patterns by the event's id \
                            in a `KeyedProcessFunction` and resolve the outcome there"
                .to_string();
            if scene.rules.iter().any(|r| r.instance) {
                help.push_str(
                    "; Flink has no rule with parameters: write one pattern per scene, as the \
                     instances `rule@scene` are",
                );
            }
            let mut d = Diagnostic::warning(
                DiagnosticKind::Flink(FlinkDifference::NoSuchConstruct),
                scene.span,
                format!(
                    "scene `{}` uses a construct Flink 2.3 does not have: one outcome per event, \
                     resolved from the matches of its rules, list checks and scores",
                    scene.name
                ),
            )
            .with_help(help);
            d.source = source;
            out.push(d);
        }
        out
    }

    /// Every text is in: says [`Loaded::unheld_rules`].
    fn finish(&mut self) {
        let unheld = self.unheld_rules();
        self.diagnostics.extend(unheld);
    }

    /// Is any diagnostic an error?
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Did a file or folder fail to be read?
    pub fn has_io_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.kind == DiagnosticKind::Io)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Every diagnostic, rendered, one after the other.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.sources))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes [`Loaded::render`] to `w`.
    pub fn write_diagnostics(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(self.render().as_bytes())
    }

    /// Adds a text named `origin` (checks, parses, lowers it).
    pub fn add_str(&mut self, origin: &str, src: &str) {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        let index = self.sources.len();
        self.sources.push(Source::new(origin, src));
        if src.len() > MAX_FILE_SIZE {
            self.push(
                index,
                Diagnostic::error(
                    DiagnosticKind::Limit,
                    Span::new(0, 0),
                    format!(
                        "this file is {} bytes long; pattern files are limited to 1 MiB ({MAX_FILE_SIZE} bytes)",
                        src.len()
                    ),
                ),
            );
            return;
        }
        let nuls: Vec<usize> = src.match_indices('\0').map(|(i, _)| i).collect();
        if !nuls.is_empty() {
            for &at in nuls.iter().take(MAX_NUL_REPORTS) {
                self.push(
                    index,
                    Diagnostic::error(
                        DiagnosticKind::NulByte,
                        Span::new(at, at + 1),
                        "NUL byte in a pattern file (is this a binary file?)",
                    ),
                );
            }
            return;
        }
        self.add_parsed(index, parse_file(src));
    }

    /// Lowers a parsed text, source `index`: its declarations, its rules
    /// (a rule with parameters is checked alone and kept for scenes), its
    /// scenes (and the instances they make); every diagnostic in reading
    /// order.
    pub(crate) fn add_parsed(&mut self, index: usize, parsed: Parsed) {
        self.factors.reset();
        let mut diagnostics = parsed.diagnostics;
        let mut patterns = Vec::new();
        let mut declared = Vec::new();
        lower_declarations(
            &parsed.declarations,
            &mut self.declarations,
            &mut self.declared,
            index,
            &mut declared,
            &mut self.factors,
        );
        // A duplicate's "first declared here" may be in another text: its
        // label names its source already, kept below.
        let foreign: Vec<Span> = declared
            .iter()
            .filter(|d| d.labels.iter().any(|l| l.source != index))
            .map(|d| d.span)
            .collect();
        diagnostics.append(&mut declared);
        // Diagnostics whose sources are set (they may point into another
        // text).
        let mut sourced = Vec::new();
        // The rules, those written inside scenes too, in the order of the
        // text.
        let mut rules: Vec<(&crate::ast::PatternDecl, bool)> =
            parsed.patterns.iter().map(|(p, e)| (p, *e)).collect();
        for (scene, had_errors) in &parsed.scenes {
            rules.extend(scene.patterns.iter().map(|p| (p, *had_errors)));
        }
        rules.sort_by_key(|(p, _)| p.span.start);
        for (decl, had_syntax_errors) in rules {
            if decl.params.is_empty() {
                // A pattern with a recovered syntax error is still lowered, so
                // that its other mistakes are reported too, but never loaded.
                let (pattern, mut more) = lower_pattern(decl, &self.declarations, &self.factors);
                diagnostics.append(&mut more);
                let valid = pattern.is_some() && !had_syntax_errors;
                self.register_rule(RuleInfo::new(decl, index, Vec::new(), valid));
                if let (Some(p), false) = (pattern, had_syntax_errors) {
                    patterns.push(p);
                }
            } else {
                let (info, mut more) = template(
                    decl,
                    index,
                    had_syntax_errors,
                    &self.declarations,
                    &self.factors,
                );
                diagnostics.append(&mut more);
                sourced.extend(self.add_template(index, info));
            }
        }
        let mut scenes = Vec::new();
        let entries_left = std::cell::Cell::new(crate::scene_lower::MAX_SCENE_RULES);
        let instances_left = std::cell::Cell::new(crate::scene_lower::MAX_INSTANCES);
        let spent = std::cell::Cell::new(false);
        for (scene, had_syntax_errors) in &parsed.scenes {
            let name = &scene.name;
            if let Some(&(first_source, first_span)) = self.scene_names.get(&name.name) {
                let mut d = Diagnostic::error(
                    DiagnosticKind::Duplicate,
                    name.span,
                    format!("a scene named `{}` is already defined", name.name),
                )
                .in_source(index);
                d.labels.push(Label {
                    span: first_span,
                    message: "first defined here".to_string(),
                    source: first_source,
                });
                sourced.push(d);
                continue;
            }
            self.scene_names
                .insert(name.name.clone(), (index, name.span));
            if *had_syntax_errors {
                // (not lowered: its rules are not said to be held by none)
                for c in &scene.clauses {
                    if let crate::ast::SceneClauseKind::Rules(refs) = &c.kind {
                        for r in refs {
                            if let crate::ast::RuleRef::Name(n) = r {
                                self.held.insert(n.name.clone());
                            }
                        }
                    }
                }
                self.held
                    .extend(scene.patterns.iter().map(|p| p.name.name.clone()));
                continue;
            }
            let lowered = lower_scene(
                &SceneInput {
                    decls: &self.declarations,
                    factors: &self.factors,
                    rules: &self.rules,
                    rule_names: &self.rule_names,
                    source: index,
                    entries_left: &entries_left,
                    instances_left: &instances_left,
                    spent: &spent,
                },
                scene,
            );
            sourced.extend(lowered.diagnostics);
            self.held.extend(lowered.held);
            scenes.push((lowered.scene, lowered.instances));
        }
        let nothing = parsed.patterns.is_empty()
            && parsed.declarations.is_empty()
            && parsed.scenes.is_empty();
        if nothing && diagnostics.is_empty() {
            diagnostics.push(Diagnostic::warning(
                DiagnosticKind::Syntax,
                Span::default(),
                "this file defines no pattern",
            ));
        }
        let mut diagnostics: Vec<Diagnostic> = diagnostics
            .into_iter()
            .map(|mut d| {
                if d.kind == DiagnosticKind::Duplicate && foreign.contains(&d.span) {
                    d.source = index;
                    d
                } else {
                    d.in_source(index)
                }
            })
            .chain(sourced)
            .collect();
        // In reading order (the sort is stable: same place keeps its order).
        diagnostics.sort_by_key(|d| d.span.start);
        if diagnostics.len() > MAX_DIAGNOSTICS_PER_FILE {
            let last = diagnostics[MAX_DIAGNOSTICS_PER_FILE - 1].span;
            diagnostics.truncate(MAX_DIAGNOSTICS_PER_FILE);
            diagnostics.push(
                Diagnostic::error(
                    DiagnosticKind::Limit,
                    Span::new(last.end as usize, last.end as usize),
                    format!(
                        "too many problems in this file; only the first {MAX_DIAGNOSTICS_PER_FILE} are shown"
                    ),
                )
                .in_source(index),
            );
        }
        self.diagnostics.extend(diagnostics);
        for p in patterns {
            self.add_pattern(index, p);
        }
        for (scene, instances) in scenes {
            for (p, source) in instances {
                self.add_pattern(source, p);
            }
            if let Some(scene) = scene {
                self.scenes.push(scene);
                self.scene_sources.push(index);
            }
        }
    }

    /// Keeps `rule` for the scenes to come, unless its name is taken.
    fn register_rule(&mut self, rule: RuleInfo) {
        if !self.rule_names.contains_key(&rule.name) {
            self.rule_names.insert(rule.name.clone(), self.rules.len());
            self.rules.push(rule);
        }
    }

    /// Keeps a rule with parameters for the scenes to come, or says its
    /// name is taken (as for a pattern; in `index`, with its label in the
    /// other's source).
    fn add_template(&mut self, index: usize, rule: RuleInfo) -> Option<Diagnostic> {
        let first = self.names.get(&rule.name).copied().or_else(|| {
            let &i = self.rule_names.get(&rule.name)?;
            Some((self.rules[i].source, self.rules[i].span))
        });
        if let Some((first_source, first_span)) = first {
            let mut d = Diagnostic::error(
                DiagnosticKind::Duplicate,
                rule.span,
                format!("a pattern named `{}` is already defined", rule.name),
            )
            .in_source(index);
            d.labels.push(Label {
                span: first_span,
                message: "first defined here".to_string(),
                source: first_source,
            });
            return Some(d);
        }
        if rule.valid {
            self.names.insert(rule.name.clone(), (index, rule.span));
        }
        self.register_rule(rule);
        None
    }

    /// A warning for each rule with parameters that no scene holds: it
    /// never runs. (Said by the loaders of whole rule sets,
    /// [`load_paths`], [`load_str`] and [`load_bytes`], once every text is
    /// in: a scene of a later file may hold it.)
    pub fn unheld_rules(&self) -> Vec<Diagnostic> {
        self.rules
            .iter()
            .filter(|r| r.decl.is_some() && r.valid && !self.held.contains(&r.name))
            .map(|r| {
                Diagnostic::warning(
                    DiagnosticKind::UnusedEntry,
                    r.span,
                    format!(
                        "rule `{}` has parameters and no scene holds it, so it does not run",
                        r.name
                    ),
                )
                .with_help(format!(
                    "hold it in a scene that gives its parameters values (`rules {}` and `with ...`)",
                    r.name
                ))
                .in_source(r.source)
            })
            .collect()
    }

    /// Adds raw bytes named `origin`: invalid UTF-8 is reported with its
    /// position.
    /// A UTF-8 byte order mark at the start is skipped, as in event input
    /// (editors on some systems write one).
    pub fn add_bytes(&mut self, origin: &str, bytes: &[u8]) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match std::str::from_utf8(bytes) {
            Ok(text) => self.add_str(origin, text),
            Err(e) => {
                let index = self.sources.len();
                let text = String::from_utf8_lossy(bytes).into_owned();
                self.sources.push(Source::new(origin, text));
                let at = e.valid_up_to();
                self.push(
                    index,
                    Diagnostic::error(
                        DiagnosticKind::InvalidUtf8,
                        Span::new(at, at + '\u{FFFD}'.len_utf8()),
                        "invalid UTF-8: pattern files must be UTF-8 text",
                    ),
                );
            }
        }
    }

    /// Adds a file, or every `*.cep` file of a folder (sorted by name).
    pub fn add_path(&mut self, path: &Path) {
        if path.is_dir() {
            let entries = match std::fs::read_dir(path) {
                Ok(entries) => entries,
                Err(e) => return self.io_error(path, &e),
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                // Hidden files (editor swap and backup files, `._x.cep`
                // resource forks) are not patterns.
                .filter(|p| {
                    let hidden = p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    !hidden && p.extension().is_some_and(|x| x == "cep") && p.is_file()
                })
                .collect();
            files.sort();
            if files.is_empty() {
                // An error (it said "ok" and exited 4): nothing to check
                // or run.
                let mut d = Diagnostic::error(
                    DiagnosticKind::Io,
                    Span::default(),
                    format!("no `.cep` files in `{}`", path.display()),
                );
                d.source = usize::MAX;
                self.diagnostics.push(d);
            }
            for f in files {
                self.add_file(&f);
            }
        } else {
            self.add_file(path);
        }
    }

    fn add_file(&mut self, path: &Path) {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return self.io_error(path, &e),
        };
        let mut bytes = Vec::new();
        let limit = MAX_FILE_SIZE as u64 + 1;
        if let Err(e) = file.take(limit).read_to_end(&mut bytes) {
            return self.io_error(path, &e);
        }
        let name = path.display().to_string();
        if bytes.len() > MAX_FILE_SIZE {
            let index = self.sources.len();
            self.sources.push(Source::new(name, ""));
            self.push(
                index,
                Diagnostic::error(
                    DiagnosticKind::Limit,
                    Span::default(),
                    format!("this file is larger than 1 MiB ({MAX_FILE_SIZE} bytes), the limit for pattern files"),
                ),
            );
            return;
        }
        self.add_bytes(&name, &bytes);
    }

    fn io_error(&mut self, path: &Path, e: &std::io::Error) {
        let mut d = Diagnostic::error(
            DiagnosticKind::Io,
            Span::default(),
            format!("cannot read `{}`: {e}", path.display()),
        );
        d.source = usize::MAX;
        self.diagnostics.push(d);
    }

    fn push(&mut self, source: usize, d: Diagnostic) {
        self.diagnostics.push(d.in_source(source));
    }

    /// Adds a lowered pattern unless its name is taken.
    fn add_pattern(&mut self, source: usize, p: Pattern) {
        if let Some(&(first_source, first_span)) = self.names.get(&p.name) {
            let mut d = Diagnostic::error(
                DiagnosticKind::Duplicate,
                p.span,
                format!("a pattern named `{}` is already defined", p.name),
            )
            .in_source(source);
            d.labels.push(Label {
                span: first_span,
                message: "first defined here".to_string(),
                source: first_source,
            });
            self.diagnostics.push(d);
            return;
        }
        self.names.insert(p.name.clone(), (source, p.span));
        self.placed.push(self.diagnostics.len());
        self.patterns.push(p);
        self.pattern_sources.push(source);
    }
}

/// Loads one text named `origin` (a path or `<input>`).
pub fn load_str(origin: &str, src: &str) -> Loaded {
    let mut loaded = Loaded::default();
    loaded.add_str(origin, src);
    loaded.finish();
    loaded
}

/// Loads raw bytes named `origin` (invalid UTF-8 is a diagnostic).
pub fn load_bytes(origin: &str, bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded::default();
    loaded.add_bytes(origin, bytes);
    loaded.finish();
    loaded
}

/// Loads files and folders (every `*.cep` in a folder, sorted by name);
/// pattern names must be unique across all of them.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    for p in paths {
        loaded.add_path(p);
    }
    loaded.finish();
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern that fails the check is left out, and its diagnostic is
    /// placed where the pattern was loaded: after what was said of the
    /// text before it, before what was said of later patterns and files.
    #[test]
    fn a_checked_patterns_diagnostic_is_placed_where_the_pattern_was_loaded() {
        let mut loaded = Loaded::default();
        loaded.add_str(
            "a.cep",
            "pattern bad { match x where x: n > 1 }\npattern good { match y where y: n > 2 }\npattern bad { match z where z: n > 3 }\n",
        );
        loaded.add_str(
            "b.cep",
            "pattern late_bad { match q where q: n > 4 }\npattern ok { match w }\n",
        );
        assert_eq!(loaded.patterns.len(), 4);
        // (the second `bad` was said at once: a name defined twice)
        assert_eq!(loaded.diagnostics.len(), 1);
        let kept = loaded.check_each(|p| {
            if p.name.ends_with("bad") {
                Err(Diagnostic::error(
                    DiagnosticKind::Limit,
                    p.span,
                    format!("`{}` refused", p.name),
                ))
            } else {
                Ok(p.name.clone())
            }
        });
        assert_eq!(kept, ["good", "ok"]);
        let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["good", "ok"]);
        assert_eq!(loaded.pattern_sources, [0, 1]);
        let said: Vec<(usize, &str)> = loaded
            .diagnostics
            .iter()
            .map(|d| (d.source, d.message.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (0, "`bad` refused"),
                (0, "a pattern named `bad` is already defined"),
                (1, "`late_bad` refused"),
            ]
        );
        // Checked again: nothing more to leave out, nothing moves.
        let again = loaded.check_each(|p| Ok::<_, Diagnostic>(p.name.len()));
        assert_eq!(again, [4, 2]);
        assert_eq!(loaded.diagnostics.len(), 3);
    }
}
