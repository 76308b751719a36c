//! Fields that never occur: [`FieldWatch`] knows where each pattern reads
//! each field; given what a decoder saw ([`FieldsSeen`]), it says which
//! fields no event carried, where they are read, and the closest name
//! that did occur. The trap it catches: a misspelt field in a condition
//! (`sucess == true`) is valid, and gives no match, ever.
//!
//! `cepheid check --sample FILE` shows its findings as warnings in the
//! pattern source; a long run asks it after its first events and at the
//! end.

use std::collections::HashMap;
use std::fmt;

use cepheid_core::error::Location;
use cepheid_core::event::FieldPath;
use cepheid_core::expr::Expr;
use cepheid_core::pattern::{Condition, ElementKind, Pattern};
use cepheid_core::primitives::Span;
use cepheid_decode::FieldsSeen;
use cepheid_engine::Rules;
use cepheid_syntax::ReadClause;
use cepheid_syntax::{self as dsl, Loaded};

/// What reads a field ([`WatchedRead::owner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Owner {
    /// A pattern (a rule), [`WatchedRead::pattern`] its name.
    Pattern,
    /// An indicator (`indicator NAME = ...`), by its name.
    Indicator,
    /// A scene (`scene NAME { ... }`), by its name.
    Scene,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Owner::Pattern => "pattern",
            Owner::Indicator => "indicator",
            Owner::Scene => "scene",
        })
    }
}

/// One place where a pattern (or an indicator or scene: [`owner`](
/// WatchedRead::owner)) reads a field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchedRead {
    /// The field read.
    pub field: FieldPath,
    /// The pattern's name (the indicator's or scene's, by [`owner`](
    /// WatchedRead::owner)).
    pub pattern: String,
    /// What reads it: a pattern, or, in `cepheid check --sample` alone, an
    /// indicator or a scene.
    pub owner: Owner,
    /// The clause that reads it (for a pattern of the builder, the
    /// `until` of a stage is [`ReadClause::Until`] with the stage's name).
    pub clause: ReadClause,
    /// Where it is read, `path:line:column` of the pattern file (`None`
    /// for a pattern without source text: one of the builder).
    pub location: Option<Location>,
    /// The source it is read in (an index of [`Loaded::sources`]) and its
    /// span there, for a diagnostic that quotes the line.
    pub source: Option<(usize, Span)>,
    /// The factor whose body writes the read, when the pattern reads the
    /// field through a factor call (`location` and `source` are then in
    /// the factor's body).
    pub factor: Option<String>,
}

impl fmt::Display for WatchedRead {
    /// `path:line:column: pattern `p`, the condition of stage `a``
    /// (without the location when there is none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.location {
            write!(f, "{at}: ")?;
        }
        write!(f, "{} `{}`, {}", self.owner, self.pattern, self.clause)?;
        if let Some(factor) = &self.factor {
            write!(f, ", through factor `{factor}`")?;
        }
        Ok(())
    }
}

/// A field some pattern reads that no event carried.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingField {
    /// The field.
    pub field: FieldPath,
    /// Every place a pattern reads it, in the patterns' order.
    pub reads: Vec<WatchedRead>,
    /// The closest name of a key that did occur in the sample's events
    /// ([`FieldsSeen::names`]; by `closest`, the language's "did you
    /// mean").
    pub did_you_mean: Option<String>,
    /// The events decoded ([`FieldsSeen::events`]).
    pub events: u64,
}

impl MissingField {
    /// `field `sucess` never occurs in 102 events; did you mean
    /// `success`?`, with `events` naming the events (`"events"`, `"sample
    /// events"`).
    pub fn message(&self, events: &str) -> String {
        let events = match (self.events, events.strip_suffix('s')) {
            (1, Some(one)) => format!("1 {one}"),
            (n, _) => format!("{n} {events}"),
        };
        let mut text = format!("field `{}` never occurs in {events}", self.field);
        if let Some(best) = &self.did_you_mean {
            text.push_str(&format!("; did you mean `{best}`?"));
        }
        text
    }
}

impl fmt::Display for MissingField {
    /// One line per read: `path:line:column: pattern `p`, the condition of
    /// stage `a`: field `sucess` never occurs in 102 events; did you mean
    /// `success`?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message("events");
        for (i, read) in self.reads.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{read}: {message}")?;
        }
        Ok(())
    }
}

/// Where the patterns of a rule set read each field: asked with what a
/// decoder saw ([`FieldsSeen`], from
/// [`Decoder::watch_fields`](cepheid_decode::Decoder::watch_fields)), it gives
/// the fields no event carried ([`missing`](FieldWatch::missing)).
///
/// ```
/// use cepheid_decode::{Decoder, Format, Item};
/// use cepheid_engine::{Engine, Output, Record, Rules};
/// use cepheid_runtime::FieldWatch;
/// let rules = Rules::parse("r.cep", r#"pattern p {
///     partition by user.id
///     match a where a: sucess == true }"#)?;
/// let mut engine: Engine<Record> = Engine::new();
/// engine.add(&rules)?;
/// let watch = FieldWatch::from_rules(&rules);
/// let mut decoder =
///     Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).watch_fields(1_000);
/// let mut out: Vec<Output<Record>> = Vec::new();
/// for line in [r#"{"ts": 1, "user": {"id": 7}, "success": true}"#] {
///     if let Item::Event(ts, record) = decoder.decode(line.as_bytes())? {
///         engine.push(ts, record, &mut out);
///     }
/// }
/// let missing = watch.missing(decoder.fields_seen().expect("watched"));
/// assert_eq!(missing.len(), 1);
/// assert_eq!(
///     missing[0].to_string(),
///     "r.cep:3:22: pattern `p`, the condition of stage `a`: \
///      field `sucess` never occurs in 1 event; did you mean `success`?"
/// );
/// # Ok::<(), cepheid_engine::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct FieldWatch {
    reads: Vec<WatchedRead>,
}

impl FieldWatch {
    /// The reads of every pattern of `rules`, located in their files.
    pub fn from_rules(rules: &Rules) -> FieldWatch {
        FieldWatch::from_loaded(rules.loaded())
    }

    /// The reads of every pattern of `loaded` (the patterns without
    /// errors), located in their files (a diagnostic can quote them:
    /// [`WatchedRead::source`] indexes `loaded.sources`): a rule written
    /// inside a scene, and a rule's instance (`rule@scene`) as the rule is
    /// written; a field read through a factor call where the factor's body
    /// reads it ([`WatchedRead::factor`]), a rule's or factor's parameter
    /// no field. Then those of its indicators (argument, `where`, `group
    /// by`) and scenes (`when`, `id`, list checks), [`Owner::Indicator`]
    /// and [`Owner::Scene`]: a misspelt field in a scene's `when` lets no
    /// event in, and one in a `group by` counts every event in one group.
    pub fn from_loaded(loaded: &Loaded) -> FieldWatch {
        FieldWatch {
            reads: reads_of(loaded, true),
        }
    }

    /// Keeps the reads `keep` says (a run keeps those of the patterns,
    /// indicators and scenes in force).
    pub fn retain(&mut self, keep: impl FnMut(&WatchedRead) -> bool) {
        self.reads.retain(keep);
    }

    /// The reads of `patterns` (IR patterns, or an engine's
    /// [`patterns`](cepheid_engine::Engine::patterns)), without locations: a
    /// pattern is named with the clause that reads.
    pub fn for_patterns<'a>(patterns: impl IntoIterator<Item = &'a Pattern>) -> FieldWatch {
        FieldWatch {
            reads: patterns.into_iter().flat_map(ir_reads).collect(),
        }
    }

    /// Every place a pattern reads a field, in the patterns' order.
    pub fn reads(&self) -> &[WatchedRead] {
        &self.reads
    }

    /// `cepheid check --sample`: the sample's lines (`bytes`, in
    /// `format`, event time in `time_field`) decoded as a run decodes them
    /// with `loaded`'s patterns' fields, and a warning in the pattern's
    /// source at each place a pattern reads a field no sample event
    /// carried (with the closest name that did occur). Each malformed
    /// line (skipped) goes to `malformed` with its number from 1.
    pub fn sample_warnings(
        loaded: &Loaded,
        bytes: &[u8],
        format: cepheid_decode::Format,
        time_field: &str,
        mut malformed: impl FnMut(usize, &cepheid_engine::Error),
    ) -> Vec<dsl::Diagnostic> {
        let mut engine: cepheid_engine::Engine<cepheid_engine::Record> =
            cepheid_engine::Engine::new();
        // (the valid patterns were compiled once already: this cannot fail)
        if engine.add(&loaded.patterns[..]).is_err() {
            return Vec::new();
        }
        // (the fields only indicators and scenes read are decoded too)
        let watch = FieldWatch {
            reads: reads_of(loaded, true),
        };
        for read in &watch.reads {
            engine.fields().intern(&read.field);
        }
        let mut decoder = cepheid_decode::Decoder::new(format, time_field, engine.fields().clone())
            .watch_fields(u64::MAX);
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Err(e) = decoder.decode(line) {
                malformed(n + 1, &e);
            }
        }
        let seen = decoder
            .fields_seen()
            .cloned()
            .unwrap_or_else(|| FieldsSeen::new(0));
        let mut out = Vec::new();
        for missing in watch.missing(&seen) {
            let message = missing.message("sample events");
            for read in &missing.reads {
                let Some((source, span)) = read.source else {
                    continue;
                };
                let d = dsl::Diagnostic::warning(
                    dsl::DiagnosticKind::FieldNeverOccurs,
                    span,
                    message.clone(),
                )
                .with_help(match &read.factor {
                    Some(factor) => format!(
                        "read by {} `{}`, {}, through factor `{factor}`",
                        read.owner, read.pattern, read.clause
                    ),
                    None => format!("read by {} `{}`, {}", read.owner, read.pattern, read.clause),
                })
                .in_source(source);
                out.push(d);
            }
        }
        out
    }

    /// The fields read that no event carried, in the order first read,
    /// each with every place it is read and the closest name that did
    /// occur. Meant after the first events and at the end of a stream (or
    /// of a sample): with no event yet, every field is missing.
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format};
    /// use cepheid_engine::{Engine, FieldPath, Rules};
    /// use cepheid_runtime::FieldWatch;
    /// let rules = Rules::parse("r.cep", "pattern p { match a where a: sucess == true }")?;
    /// let mut engine: Engine = Engine::new();
    /// engine.add(&rules)?;
    /// let mut decoder =
    ///     Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).watch_fields(1000);
    /// decoder.decode(br#"{"ts": 1, "success": true}"#)?;
    /// let seen = decoder.fields_seen().expect("watched");
    /// assert!(!seen.occurred(&FieldPath::parse("sucess")));
    /// let missing = FieldWatch::from_rules(&rules).missing(seen);
    /// assert_eq!(missing[0].did_you_mean.as_deref(), Some("success"));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn missing(&self, seen: &FieldsSeen) -> Vec<MissingField> {
        let names: Vec<&str> = seen.names().collect();
        let mut out: Vec<MissingField> = Vec::new();
        for read in &self.reads {
            if seen.occurred(&read.field) {
                continue;
            }
            if let Some(m) = out.iter_mut().find(|m| m.field == read.field) {
                m.reads.push(read.clone());
                continue;
            }
            let shown = read.field.to_string();
            out.push(MissingField {
                field: read.field.clone(),
                reads: vec![read.clone()],
                did_you_mean: dsl::closest(&shown, &names).map(str::to_string),
                events: seen.events(),
            });
        }
        out
    }
}

/// The reads of every pattern of `loaded` ([`FieldWatch::from_loaded`]),
/// and with `declarations` those of its indicators (argument, `where`,
/// `group by`) and scenes (`when`, `id`, list checks), which `cepheid
/// check --sample` watches (a run's decoder knows the fields its engine
/// reads, and says what its patterns miss).
fn reads_of(loaded: &Loaded, declarations: bool) -> Vec<WatchedRead> {
    let mut reads = Vec::new();
    // Each file parsed once; its rules (its own and its scenes') by
    // name (a search per pattern would be quadratic in a file's
    // patterns); the factors of every file by name, the first
    // declared.
    let files: Vec<Option<dsl::ast::File>> = (loaded.sources.iter())
        .map(|source| dsl::parse(&source.text).ok())
        .collect();
    let mut rules: Vec<HashMap<&str, &dsl::ast::PatternDecl>> = Vec::new();
    let mut factors: HashMap<&str, (&dsl::ast::FactorDecl, usize)> = HashMap::new();
    for (s, file) in files.iter().enumerate() {
        let mut by_name = HashMap::new();
        if let Some(file) = file {
            let own = file.patterns.iter();
            let in_scenes = file.scenes.iter().flat_map(|scene| &scene.patterns);
            for decl in own.chain(in_scenes) {
                by_name.entry(decl.name.name.as_str()).or_insert(decl);
            }
            for d in &file.declarations {
                if let dsl::ast::DeclarationKind::Factor(f) = &d.kind {
                    factors.entry(d.name.name.as_str()).or_insert((f, s));
                }
            }
        }
        rules.push(by_name);
    }
    let factor = |name: &str| factors.get(name).copied();
    for (pattern, &s) in loaded.patterns.iter().zip(&loaded.pattern_sources) {
        // (an instance is its rule's text with the scene's values)
        let name = pattern
            .name
            .split_once('@')
            .map_or(pattern.name.as_str(), |(r, _)| r);
        let decl = rules.get(s).and_then(|by_name| by_name.get(name));
        let Some(decl) = decl else {
            reads.extend(ir_reads(pattern));
            continue;
        };
        for read in dsl::field_reads_with(decl, &factor) {
            let (at, factor) = match &read.factor {
                Some((f, source)) => (*source, Some(f.clone())),
                None => (s, None),
            };
            let Some(source) = loaded.sources.get(at) else {
                continue;
            };
            let (line, column) = source.line_col(read.span.start as usize);
            reads.push(WatchedRead {
                field: FieldPath(read.path.iter().map(|s| s.as_str().into()).collect()),
                pattern: pattern.name.clone(),
                owner: Owner::Pattern,
                clause: read.clause,
                location: Some(Location::new(source.name.as_str(), line, column)),
                source: Some((at, read.span)),
                factor,
            });
        }
    }
    if declarations {
        declaration_reads(loaded, &files, &factor, &mut reads);
    }
    reads
}

/// The reads of `loaded`'s indicators and scenes, as written in `files`
/// (each source parsed), factor calls followed by `factor`.
fn declaration_reads<'a>(
    loaded: &Loaded,
    files: &'a [Option<dsl::ast::File>],
    factor: &dyn Fn(&str) -> Option<(&'a dsl::ast::FactorDecl, usize)>,
    reads: &mut Vec<WatchedRead>,
) {
    use dsl::ast::{Check, DeclarationKind, IndicatorClauseKind, SceneClauseKind};
    let mut push = |s: usize, owner: Owner, name: &str, read: dsl::FieldRead| {
        let (at, via) = match &read.factor {
            Some((f, source)) => (*source, Some(f.clone())),
            None => (s, None),
        };
        let Some(source) = loaded.sources.get(at) else {
            return;
        };
        let (line, column) = source.line_col(read.span.start as usize);
        reads.push(WatchedRead {
            field: FieldPath(read.path.iter().map(|s| s.as_str().into()).collect()),
            pattern: name.to_string(),
            owner,
            clause: read.clause,
            location: Some(Location::new(source.name.as_str(), line, column)),
            source: Some((at, read.span)),
            factor: via,
        });
    };
    let path_read = |p: &dsl::ast::Path, clause: ReadClause| {
        dsl::FieldRead::new(
            p.segments.iter().map(|s| s.name.clone()).collect(),
            clause,
            p.span,
        )
    };
    for (s, file) in files.iter().enumerate() {
        let Some(file) = file else { continue };
        for d in &file.declarations {
            let DeclarationKind::Indicator(ind) = &d.kind else {
                continue;
            };
            let name = d.name.name.as_str();
            for arg in &ind.args {
                for read in dsl::expr_field_reads(arg, &ReadClause::Argument, factor) {
                    push(s, Owner::Indicator, name, read);
                }
            }
            for clause in &ind.clauses {
                match &clause.kind {
                    IndicatorClauseKind::Where(c) => {
                        for read in dsl::expr_field_reads(c, &ReadClause::Where, factor) {
                            push(s, Owner::Indicator, name, read);
                        }
                    }
                    IndicatorClauseKind::GroupBy(paths) => {
                        for p in paths {
                            push(s, Owner::Indicator, name, path_read(p, ReadClause::GroupBy));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for (scene, &s) in loaded.scenes.iter().zip(&loaded.scene_sources) {
        let decl = (files.get(s).and_then(Option::as_ref))
            .and_then(|file| file.scenes.iter().find(|d| d.name.name == scene.name));
        let (Some(decl), Some(source)) = (decl, loaded.sources.get(s)) else {
            continue;
        };
        let name = scene.name.as_str();
        for clause in &decl.clauses {
            match &clause.kind {
                SceneClauseKind::When(c) => {
                    for read in dsl::expr_field_reads(c, &ReadClause::When, factor) {
                        push(s, Owner::Scene, name, read);
                    }
                }
                SceneClauseKind::Id(p) => push(s, Owner::Scene, name, path_read(p, ReadClause::Id)),
                SceneClauseKind::Outcome {
                    check: Check::List(x),
                    ..
                } => {
                    let text = (source.text)
                        .get(x.span.start as usize..x.span.end as usize)
                        .unwrap_or("?");
                    let clause = ReadClause::ListCheck(text.to_string());
                    for read in dsl::expr_field_reads(x, &clause, factor) {
                        push(s, Owner::Scene, name, read);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The reads of an IR pattern, without locations.
fn ir_reads(pattern: &Pattern) -> Vec<WatchedRead> {
    let mut out = Vec::new();
    let mut push = |field: &FieldPath, clause: ReadClause| {
        out.push(WatchedRead {
            field: field.clone(),
            pattern: pattern.name.clone(),
            owner: Owner::Pattern,
            clause,
            location: None,
            source: None,
            factor: None,
        });
    };
    for path in &pattern.partition_by {
        push(path, ReadClause::PartitionBy);
    }
    for stage in &pattern.stages {
        if let Condition::Expr(e) = &stage.condition {
            expr_paths(e, &mut |p| {
                push(p, ReadClause::Condition(stage.name.clone()))
            });
        }
    }
    let mut groups = vec![&pattern.sequence];
    while let Some(sequence) = groups.pop() {
        for element in &sequence.elements {
            let name = match &element.kind {
                ElementKind::Stage(id) => pattern
                    .stages
                    .get(usize::from(id.0))
                    .map_or("?".to_string(), |s| s.name.clone()),
                ElementKind::Group(inner) => {
                    groups.push(inner);
                    "(group)".to_string()
                }
                ElementKind::Alternation(branches) => {
                    groups.extend(branches);
                    "(alternation)".to_string()
                }
            };
            if let Some(Condition::Expr(e)) = &element.until {
                expr_paths(e, &mut |p| push(p, ReadClause::Until(name.clone())));
            }
        }
    }
    for item in &pattern.select {
        expr_paths(&item.expr, &mut |p| {
            push(p, ReadClause::Select(item.name.clone()))
        });
    }
    out
}

/// The field paths `expr` reads.
fn expr_paths(expr: &Expr, out: &mut dyn FnMut(&FieldPath)) {
    expr.walk(|e| {
        let path = match e {
            Expr::Field(path) | Expr::Exists(path) => Some(path),
            Expr::StageField { path, .. } => Some(path),
            Expr::Aggregate { path, .. } => path.as_ref(),
            _ => None,
        };
        if let Some(path) = path {
            out(path);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_decode::{Decoder, Format, Item};
    use cepheid_engine::{Engine, Record};

    /// What `watch` finds in `lines` decoded as `format` with the fields
    /// of `rules`: each missing field's message and where it is read.
    fn missing(text: &str, format: Format, lines: &[&str]) -> Vec<(String, Vec<String>)> {
        let rules = Rules::parse("r.cep", text).unwrap();
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        let mut decoder = Decoder::new(format, "ts", engine.fields().clone()).watch_fields(100);
        for line in lines {
            decoder.decode(line.as_bytes()).unwrap();
        }
        FieldWatch::from_rules(&rules)
            .missing(decoder.fields_seen().unwrap())
            .into_iter()
            .map(|m| {
                let at = m.reads.iter().map(|r| r.to_string()).collect();
                (m.message("events"), at)
            })
            .collect()
    }

    #[test]
    fn a_misspelt_field_is_found_where_it_is_read_with_the_closest_name() {
        let text = "pattern p {\n  match a followed by b\n  where a: sucess == true\n        b: a.sucess and kind == \"x\"\n}";
        let found = missing(
            text,
            Format::JsonLines,
            &[
                r#"{"ts": 1, "success": true, "kind": "x"}"#,
                r#"{"ts": 2, "success": false, "kind": "y"}"#,
            ],
        );
        assert_eq!(
            found,
            [(
                "field `sucess` never occurs in 2 events; did you mean `success`?".to_string(),
                vec![
                    "r.cep:3:12: pattern `p`, the condition of stage `a`".to_string(),
                    "r.cep:4:12: pattern `p`, the condition of stage `b`".to_string(),
                ]
            )]
        );
    }

    #[test]
    fn nested_paths_occur_when_the_whole_path_resolves() {
        let text = "pattern p { partition by user.id match a where a: user.name == \"x\" select n = a.user.idd }";
        let found = missing(
            text,
            Format::JsonLines,
            &[
                r#"{"ts": 1, "user": {"id": 1}}"#,
                r#"{"ts": 2, "user": 3, "name": "x"}"#,
            ],
        );
        let messages: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "field `user.name` never occurs in 2 events",
                "field `user.idd` never occurs in 2 events; did you mean `user.id`?",
            ]
        );
        assert_eq!(found[1].1, ["r.cep:1:79: pattern `p`, `select` entry `n`"]);
    }

    #[test]
    fn csv_fields_occur_in_a_cell_that_is_not_empty() {
        let text = "pattern p { match a where a: amout > 1 and user != \"\" and note == \"\" }";
        let found = missing(
            text,
            Format::Csv,
            &["ts,amount,user,note", "1,5,u,", "2,6,,"],
        );
        let messages: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "field `amout` never occurs in 2 events; did you mean `amount`?",
                "field `note` never occurs in 2 events",
            ]
        );
    }

    #[test]
    fn a_field_seen_after_the_first_event_or_null_occurs_and_all_present_is_quiet() {
        let text = "pattern p { match a where a: late == 1 and gone == null }";
        let lines = [
            r#"{"ts": 1}"#,
            r#"{"ts": 2, "gone": null}"#,
            r#"{"ts": 3, "late": 1}"#,
        ];
        assert!(missing(text, Format::JsonLines, &lines).is_empty());
        // Before the third event, `late` had not occurred.
        assert_eq!(missing(text, Format::JsonLines, &lines[..2]).len(), 1);
    }

    #[test]
    fn patterns_without_source_are_named_with_their_clause() {
        let rules = Rules::parse(
            "r.cep",
            "pattern p { partition by usr match a where a: x > 1 select s = sum(a.y) }",
        )
        .unwrap();
        let watch = FieldWatch::for_patterns(rules.patterns());
        let mut seen = FieldsSeen::new(10);
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        let mut decoder =
            Decoder::new(Format::JsonLines, "ts", engine.fields().clone()).watch_fields(10);
        let Ok(Item::Event(..)) = decoder.decode(br#"{"ts": 1, "user": 1, "x": 2}"#) else {
            panic!("an event");
        };
        seen.merge(decoder.fields_seen().unwrap());
        let found: Vec<String> = watch.missing(&seen).iter().map(|m| m.to_string()).collect();
        assert_eq!(
            found,
            [
                "pattern `p`, `partition by`: field `usr` never occurs in 1 event; did you mean `user`?",
                "pattern `p`, `select` entry `s`: field `y` never occurs in 1 event; did you mean `x`?",
            ]
        );
    }
}
