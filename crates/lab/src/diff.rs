//! `cepheid diff OLD NEW --events FILE`: the alerts that only one of two
//! rule sets raises over the same events (issue 42, `docs/rule-lab.md`).
//!
//! Each rule set runs over the file as `cepheid run` runs it (the same
//! library run, `cepheid_runtime::Runtime`, with the same decoding, event
//! time and lists), into a file of its own; the two outputs are compared
//! record by record, per pattern (by name), as multisets. A record's
//! identity is the record without what a rule's version adds to it
//! (`"rule"`, `"version"`) and without the values it read (`"reads"`,
//! which a changed indicator moves without changing the alert): its kind,
//! pattern, key, times and events. A pattern whose text did not change is
//! listed only when its alerts differ, with the cause that leaves (state
//! or input it shares with the rules that changed: a list another rule
//! writes, the rules' field numbering does not matter). A pattern whose
//! attributes (`score`, `level`, `action`, `tags`) changed and nothing
//! else of its text is listed as such (what it matches is the same); the
//! attributes are columns and fields of the report when a set has some.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use cepheid_core::lookup::Attributes;

use crate::{Error, Events};

mod moves;

/// What `diff` is asked: the two rule sets and the events.
#[non_exhaustive]
pub struct Options {
    /// The rule set in force: a `.cep` file or a folder.
    pub old: PathBuf,
    /// The rule set to compare with it: a `.cep` file or a folder.
    pub new: PathBuf,
    /// The events both run over.
    pub events: Events,
    /// Leave the matched events' values out of the records shown
    /// (`events`, `select`, `reads`; their kind, pattern, key and times
    /// stay): for a report others read. The comparison still sees them.
    pub no_events: bool,
}

impl Options {
    /// The rule sets at `old` and `new` compared over `events`, the
    /// events' values shown.
    pub fn new(old: impl Into<PathBuf>, new: impl Into<PathBuf>, events: Events) -> Options {
        Options {
            old: old.into(),
            new: new.into(),
            events,
            no_events: false,
        }
    }
}

/// Runs both rule sets over the events (the old one first) and compares
/// their records. That the sets differ is the result's to say, not an
/// error.
pub fn run(options: &Options) -> Result<Compared, Error> {
    options.events.check("diff reads the events twice")?;
    let old = side(&options.events, &options.old, "old")?;
    let new = side(&options.events, &options.new, "new")?;
    let diff = Diff::of(&old, &new);
    let scenes = old.scenes || new.scenes;
    let moves = scenes.then(|| moves::moves(&old.decided, &new.decided));
    Ok(Compared {
        old,
        new,
        diff,
        moves,
        no_events: options.no_events,
    })
}

/// Two rule sets' runs compared: the table and the records only one
/// raised ([`Compared::text`]), or one JSON document
/// ([`Compared::json`]).
pub struct Compared {
    old: Side,
    new: Side,
    diff: Diff,
    /// The events whose outcome moved, when a set has scenes.
    moves: Option<Vec<moves::Move>>,
    no_events: bool,
}

impl Compared {
    /// A record as the report shows it (`None`: a line `no_events`
    /// leaves out whole).
    fn shown(&self, line: &str) -> Option<String> {
        match self.no_events {
            true => crate::without_events(line),
            false => Some(line.to_string()),
        }
    }

    /// The table of the patterns that differ, then their records; with
    /// scenes, the events whose outcome moved, and why.
    pub fn text(&self) -> String {
        let mut text = (self.diff).text(&self.old, &self.new, &|line| self.shown(line));
        if let Some(moves) = &self.moves {
            moves::text(&mut text, moves, self.decided());
        }
        text
    }

    /// One JSON document (one line, without its newline); with scenes,
    /// its `"outcomes"`.
    pub fn json(&self) -> String {
        let json = (self.diff).json(&self.old, &self.new, &|line| self.shown(line));
        let Some(moves) = &self.moves else {
            return json;
        };
        let mut report: serde_json::Value =
            serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
        report["outcomes"] = moves::json(moves, self.decided());
        report.to_string()
    }

    /// How many decisions each set made.
    fn decided(&self) -> (usize, usize) {
        (self.old.decided.len(), self.new.decided.len())
    }
}

/// One rule set's run: its patterns' canonical texts by name, in order, and
/// its records.
struct Side {
    path: PathBuf,
    texts: Vec<(String, String)>,
    /// Each pattern's canonical text without its attributes and its
    /// shadow mark, and its attributes (`score`, `level`, `action`,
    /// `tags`), by name.
    matching: Vec<(String, String, Attributes)>,
    /// Has a pattern of the set attributes?
    attributes: bool,
    /// The set's shadow patterns, by name: their records go to the
    /// shadow output, they are no alerts (`docs/rule-lab.md`).
    shadows: HashSet<String>,
    /// Each pattern's reads: the lists and the indicators its conditions
    /// read (and the lists those indicators' conditions read), by name.
    reads: HashMap<String, Reads>,
    /// The lists each pattern writes (`then add`, `then remove`), in the
    /// set's order.
    writes: Vec<(String, Vec<String>)>,
    /// Each list's and indicator's declaration as canonical text, by kind
    /// and name (`("list", "watched")`).
    declarations: HashMap<(&'static str, String), String>,
    records: Vec<String>,
    /// Has the set scenes?
    scenes: bool,
    /// Its decisions.
    decided: moves::Decided,
}

/// One side's records: its matches and timeouts kept whole, its
/// decisions read.
#[derive(Default)]
struct SideRecords {
    records: Vec<String>,
    decided: moves::Decided,
}

impl crate::Records for SideRecords {
    fn record(&mut self, line: &[u8]) {
        if line.starts_with(b"{\"kind\":\"decision\"") {
            self.decided.take(line);
        } else {
            self.records.record(line);
        }
    }

    fn takes_decisions(&self) -> bool {
        true
    }
}

/// The rules at `path` run over the events (`which`: `old` or `new`).
fn side(events: &Events, path: &Path, which: &str) -> Result<Side, Error> {
    let ran = events.run_into(path, which, SideRecords::default())?;
    let (rules, SideRecords { records, decided }) = (ran.rules, ran.records);
    let texts = (rules.patterns().iter())
        .map(|p| (p.name.clone(), cepheid_syntax::explain(p)))
        .collect();
    let matching = (rules.patterns().iter())
        .map(|p| {
            let mut bare = p.clone();
            bare.attributes = Attributes::default();
            bare.shadow = false;
            let text = cepheid_syntax::explain(&bare);
            (p.name.clone(), text, p.attributes.clone())
        })
        .collect();
    Ok(Side {
        path: path.to_path_buf(),
        texts,
        matching,
        attributes: crate::attributes::used(&rules),
        shadows: (rules.patterns().iter())
            .filter(|p| p.shadow)
            .map(|p| p.name.clone())
            .collect(),
        reads: (rules.patterns().iter())
            .map(|p| (p.name.clone(), reads_of(p)))
            .collect(),
        writes: (rules.patterns().iter())
            .map(|p| {
                let lists = p.writes.iter().map(|w| w.list.name.to_string());
                (p.name.clone(), lists.collect())
            })
            .collect(),
        declarations: declarations_of(&rules),
        records,
        scenes: !rules.loaded().scenes.is_empty(),
        decided,
    })
}

/// The lists and indicators a pattern reads, by name, in order.
#[derive(Default)]
struct Reads {
    lists: Vec<String>,
    indicators: Vec<String>,
}

/// What pattern `p`'s conditions read: lists and indicators; and the
/// lists the conditions of those indicators read.
fn reads_of(p: &cepheid_core::pattern::Pattern) -> Reads {
    use cepheid_core::expr::Expr;
    fn add(reads: &mut Reads, e: &Expr) {
        match e {
            Expr::InList(_, list) if !reads.lists.iter().any(|l| **l == *list.name) => {
                reads.lists.push(list.name.to_string());
            }
            Expr::Indicator(i, _) if !reads.indicators.iter().any(|n| **n == *i.name) => {
                reads.indicators.push(i.name.to_string());
            }
            _ => {}
        }
    }
    let mut reads = Reads::default();
    for read in &p.reads {
        read.expr.walk(|e| add(&mut reads, e));
    }
    // (an indicator's condition may read a list)
    if let Some(declared) = &p.declarations {
        for i in &declared.indicators {
            if !reads.indicators.iter().any(|n| **n == *i.name) {
                continue;
            }
            if let Some(condition) = &i.condition {
                condition.walk(|e| add(&mut reads, e));
            }
        }
    }
    reads
}

/// The rule set's lists and indicators as canonical text, one
/// declaration each (`declarations_source`'s lines), by kind and name.
fn declarations_of(rules: &cepheid_engine::Rules) -> HashMap<(&'static str, String), String> {
    let declared = &rules.loaded().declarations;
    let text = cepheid_syntax::declarations_source(declared);
    let names = (declared.lists.iter().map(|l| ("list", l.name.to_string()))).chain(
        declared
            .indicators
            .iter()
            .map(|i| ("indicator", i.name.to_string())),
    );
    names.zip(text.lines().map(str::to_string)).collect()
}

/// A record's identity: the record without `"rule"`, `"version"` and
/// `"reads"` (what a rule's version and the values it read add), as
/// compact JSON with sorted fields. A line that is not JSON is its own.
fn identity(line: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for extra in ["rule", "version", "reads"] {
                fields.remove(extra);
            }
            let sorted: BTreeMap<String, serde_json::Value> = fields.into_iter().collect();
            serde_json::to_string(&sorted).unwrap_or_else(|_| line.to_string())
        }
        _ => line.to_string(),
    }
}

/// The pattern a record is of.
fn pattern_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|r| r["pattern"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What changed of a pattern between the two sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Added,
    Removed,
    Changed,
    /// Its attributes changed, and nothing else of its text: what it
    /// matches is the same (its records differ in their `"rule"`).
    Attributes,
    /// Put in shadow, and nothing else of what it matches changed: its
    /// alerts are shadow records now (`docs/rule-lab.md`).
    Shadowed,
    /// Out of shadow, and nothing else of what it matches changed: its
    /// shadow records are alerts now.
    Promoted,
    Same,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Attributes => "attributes changed",
            Change::Shadowed => "shadowed",
            Change::Promoted => "promoted",
            Change::Same => "same text",
        }
    }
}

/// One pattern's alerts, both ways.
struct PatternDiff {
    name: String,
    change: Change,
    /// Its attributes in the old set and in the new one (`None`: not in
    /// that set).
    attributes: (Option<Attributes>, Option<Attributes>),
    /// Is it a shadow pattern in the old set, in the new one (`None`: not
    /// in that set)? A shadow pattern's records are no alerts: they are
    /// compared only with the other set's shadow records of it.
    shadow: (Option<bool>, Option<bool>),
    both: u64,
    /// The records only the old set raised (one line per record: a record
    /// raised twice by it and once by the other is here once).
    old_only: Vec<String>,
    new_only: Vec<String>,
    /// Why its alerts differ when what it matches did not change: what it
    /// reads that changed (`indicator `x` (its declaration)`, `list `l`
    /// (`p`, which writes it, changed)`), or that nothing it reads did.
    cause: Option<String>,
}

impl PatternDiff {
    /// Its shadow mark's cell: `shadow` for a shadow pattern (in each set
    /// that has it), `-` for a live one, `live->shadow` and
    /// `shadow->live` for a mark that changed.
    fn shadow_cell(&self) -> &'static str {
        match self.shadow {
            (Some(false), Some(true)) => "live->shadow",
            (Some(true), Some(false)) => "shadow->live",
            (Some(true), _) | (_, Some(true)) => "shadow",
            _ => "-",
        }
    }

    /// Its attributes' cells (`level`, `action`, `score`, `tags`): the
    /// set's that has it, and `OLD->NEW` for one that changed.
    fn attribute_cells(&self) -> [String; 4] {
        use crate::attributes::cells;
        match &self.attributes {
            (Some(a), Some(b)) => {
                let (a, b) = (cells(a), cells(b));
                std::array::from_fn(|c| match a[c] == b[c] {
                    true => a[c].clone(),
                    false => format!("{}->{}", a[c], b[c]),
                })
            }
            (Some(a), None) | (None, Some(a)) => cells(a),
            (None, None) => cells(&Attributes::default()),
        }
    }
}

/// The two runs compared, pattern by pattern (the old set's order, then
/// the patterns the new one adds).
struct Diff {
    patterns: Vec<PatternDiff>,
}

impl Diff {
    fn of(old: &Side, new: &Side) -> Diff {
        let mut order: Vec<String> = old.texts.iter().map(|(n, _)| n.clone()).collect();
        for (name, _) in &new.texts {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
        // Per pattern, each identity's records on each side, in order; a
        // shadow pattern's records (no alerts) apart from a live one's.
        type Sides = (Vec<String>, Vec<String>);
        let mut by: HashMap<String, BTreeMap<(bool, String), Sides>> = HashMap::new();
        for (side, old_side) in [(old, true), (new, false)] {
            for line in &side.records {
                let pattern = pattern_of(line);
                let shadow = side.shadows.contains(&pattern);
                let entry = by.entry(pattern).or_default();
                let (olds, news) = entry.entry((shadow, identity(line))).or_default();
                match old_side {
                    true => olds.push(line.clone()),
                    false => news.push(line.clone()),
                }
            }
        }
        for pattern in by.keys() {
            if !order.contains(pattern) {
                order.push(pattern.clone());
            }
        }
        let text = |side: &Side, name: &str| {
            (side.texts.iter())
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
        };
        let patterns = (order.into_iter())
            .map(|name| {
                let matching = |side: &Side| {
                    (side.matching.iter())
                        .find(|(n, _, _)| *n == name)
                        .map(|(_, text, a)| (text.clone(), a.clone()))
                };
                let (was, is) = (matching(old), matching(new));
                let shadow = |side: &Side| text(side, &name).map(|_| side.shadows.contains(&name));
                let marks = (shadow(old), shadow(new));
                let change = match (text(old, &name), text(new, &name)) {
                    (None, Some(_)) => Change::Added,
                    (Some(_), None) => Change::Removed,
                    (Some(a), Some(b)) if a != b => match (&was, &is) {
                        (Some((x, _)), Some((y, _))) if x == y => match marks {
                            (Some(false), Some(true)) => Change::Shadowed,
                            (Some(true), Some(false)) => Change::Promoted,
                            _ => Change::Attributes,
                        },
                        _ => Change::Changed,
                    },
                    _ => Change::Same,
                };
                let mut diff = PatternDiff {
                    name: name.clone(),
                    change,
                    attributes: (was.map(|(_, a)| a), is.map(|(_, a)| a)),
                    shadow: marks,
                    both: 0,
                    old_only: Vec::new(),
                    new_only: Vec::new(),
                    cause: None,
                };
                if let Some(identities) = by.remove(&name) {
                    for (_, (olds, news)) in identities {
                        let both = olds.len().min(news.len());
                        diff.both += both as u64;
                        diff.old_only.extend(olds.into_iter().skip(both));
                        diff.new_only.extend(news.into_iter().skip(both));
                    }
                }
                diff
            })
            .collect();
        let mut diff = Diff { patterns };
        diff.find_causes(old, new);
        diff
    }

    /// Finds the cause of each pattern's differing alerts whose matching
    /// did not change (its text the same, or its attributes alone
    /// changed): the indicators it reads whose declarations changed, the
    /// lists it reads whose declarations changed or a pattern that
    /// writes them changed (added, removed, changed, put in shadow or out
    /// of it: a shadow pattern writes to the list's shadow copy).
    fn find_causes(&mut self, old: &Side, new: &Side) {
        let changed: HashMap<String, Change> = (self.patterns.iter())
            .map(|p| (p.name.clone(), p.change))
            .collect();
        for p in &mut self.patterns {
            let same = matches!(p.change, Change::Same | Change::Attributes);
            if !same || (p.old_only.is_empty() && p.new_only.is_empty()) {
                continue;
            }
            let declared = |kind: &'static str, name: &str| {
                let key = (kind, name.to_string());
                old.declarations.get(&key) != new.declarations.get(&key)
            };
            let mut causes = Vec::new();
            let reads = (old.reads.get(&p.name).into_iter()).chain(new.reads.get(&p.name));
            let (mut lists, mut indicators): (Vec<&String>, Vec<&String>) =
                (Vec::new(), Vec::new());
            for r in reads {
                lists.extend(
                    r.lists
                        .iter()
                        .filter(|l| !lists.contains(l))
                        .collect::<Vec<_>>(),
                );
                indicators.extend(
                    (r.indicators.iter())
                        .filter(|i| !indicators.contains(i))
                        .collect::<Vec<_>>(),
                );
            }
            for indicator in indicators {
                if declared("indicator", indicator) {
                    causes.push(format!("indicator `{indicator}` (its declaration)"));
                }
            }
            for list in lists {
                let mut why = Vec::new();
                if declared("list", list) {
                    why.push("its declaration".to_string());
                }
                let mut writers: Vec<&String> = Vec::new();
                for side in [old, new] {
                    for (writer, written) in &side.writes {
                        if written.contains(list) && !writers.contains(&writer) {
                            writers.push(writer);
                        }
                    }
                }
                for writer in writers {
                    match changed.get(writer.as_str()) {
                        Some(Change::Same | Change::Attributes) | None => {}
                        Some(change) => {
                            why.push(format!("`{writer}`, which writes it, {}", change.word()))
                        }
                    }
                }
                if !why.is_empty() {
                    causes.push(format!("list `{list}` ({})", why.join("; ")));
                }
            }
            p.cause = Some(match causes.is_empty() {
                true => "no list or indicator it reads changed: through what the rules share otherwise (the limit on partial matches over all keys)".to_string(),
                false => format!("through what it reads that changed: {}", causes.join(", ")),
            });
        }
    }

    /// The patterns to report: those changed, added or removed, and those
    /// whose alerts differ.
    fn listed(&self) -> impl Iterator<Item = &PatternDiff> {
        (self.patterns.iter()).filter(|p| {
            p.change != Change::Same || !p.old_only.is_empty() || !p.new_only.is_empty()
        })
    }

    /// The table and the records, each as `shown` shows it (`None`: a
    /// line `--no-events` leaves out whole).
    fn text(&self, old: &Side, new: &Side, shown: &dyn Fn(&String) -> Option<String>) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "old: {} ({} records); new: {} ({} records)",
            old.path.display(),
            old.records.len(),
            new.path.display(),
            new.records.len()
        );
        let listed: Vec<&PatternDiff> = self.listed().collect();
        if listed.is_empty() {
            let _ = writeln!(out, "no difference: every alert is raised by both");
            return out;
        }
        let width = listed
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(7)
            .max(7);
        // The attributes' columns (when a set has attributes), before the
        // rule's change: each as wide as its widest cell.
        let attributes = old.attributes || new.attributes;
        let cells: Vec<[String; 4]> = listed.iter().map(|p| p.attribute_cells()).collect();
        let widths: Vec<usize> = (0..4)
            .map(|c| {
                (cells.iter().map(|r| r[c].chars().count()))
                    .chain([crate::attributes::COLUMNS[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let columns = |out: &mut String, cells: &[String]| {
            if attributes {
                for (cell, width) in cells.iter().zip(&widths) {
                    let _ = write!(out, "{cell:width$}  ");
                }
            }
        };
        // The shadow mark's column (when a set has a shadow pattern),
        // before the rule's change.
        let shadows = !old.shadows.is_empty() || !new.shadows.is_empty();
        let marks: Vec<&str> = listed.iter().map(|p| p.shadow_cell()).collect();
        let mark_width = (marks.iter().map(|m| m.len()))
            .chain(["shadow".len()])
            .max()
            .unwrap_or(0);
        let mark = |out: &mut String, cell: &str| {
            if shadows {
                let _ = write!(out, "{cell:mark_width$}  ");
            }
        };
        let _ = write!(
            out,
            "{:width$}  {:>8}  {:>8}  {:>8}  ",
            "pattern", "old only", "new only", "both"
        );
        columns(&mut out, &crate::attributes::COLUMNS.map(str::to_string));
        mark(&mut out, "shadow");
        let _ = writeln!(out, "rule");
        for ((p, cells), shadow) in listed.iter().zip(&cells).zip(&marks) {
            let differ = p.cause.as_deref().unwrap_or("");
            let cause = match p.change {
                Change::Same => &format!(": its text did not change; its alerts differ {differ}"),
                Change::Attributes if p.old_only.is_empty() && p.new_only.is_empty() => {
                    ": what it matches did not change; its records differ only in their `rule`"
                }
                Change::Attributes => &format!(
                    ": what it matches did not change; its alerts differ {differ}"
                ),
                Change::Shadowed => ": only its `shadow` mark changed: its alerts with old are shadow records with new, no alerts",
                Change::Promoted => ": only its `shadow` mark changed: its shadow records with old are alerts with new",
                _ => "",
            };
            let _ = write!(
                out,
                "{:width$}  {:>8}  {:>8}  {:>8}  ",
                p.name,
                p.old_only.len(),
                p.new_only.len(),
                p.both,
            );
            columns(&mut out, cells);
            mark(&mut out, shadow);
            let _ = writeln!(out, "{}{cause}", p.change.word());
        }
        for p in &listed {
            let sides = [
                ("-", &p.old_only, "old", p.shadow.0),
                ("+", &p.new_only, "new", p.shadow.1),
            ];
            for (sign, records, which, shadow) in sides {
                if records.is_empty() {
                    continue;
                }
                let what = match shadow {
                    Some(true) => " (shadow records, not alerts)",
                    _ => "",
                };
                let _ = writeln!(
                    out,
                    "\n{}: {} only with {which}{what}:",
                    p.name,
                    records.len()
                );
                for record in records {
                    match shown(record) {
                        Some(record) => {
                            let _ = writeln!(out, "{sign} {record}");
                        }
                        None => {
                            let _ = writeln!(out, "{sign} (not a JSON record: left out)");
                        }
                    }
                }
            }
        }
        out
    }

    fn json(&self, old: &Side, new: &Side, shown: &dyn Fn(&String) -> Option<String>) -> String {
        let record = |line: &String| match shown(line) {
            Some(line) => serde_json::from_str::<serde_json::Value>(&line)
                .unwrap_or(serde_json::Value::String(line)),
            None => serde_json::Value::Null,
        };
        let patterns: Vec<serde_json::Value> = (self.listed())
            .map(|p| {
                let mut j = serde_json::json!({
                    "pattern": p.name,
                    "rule": p.change.word(),
                    "old_only": p.old_only.len(),
                    "new_only": p.new_only.len(),
                    "both": p.both,
                    "cause": p.cause,
                    "old_only_records": p.old_only.iter().map(record).collect::<Vec<_>>(),
                    "new_only_records": p.new_only.iter().map(record).collect::<Vec<_>>(),
                });
                if old.attributes || new.attributes {
                    let side = |a: &Option<Attributes>| {
                        a.as_ref()
                            .map_or(serde_json::Value::Null, crate::attributes::json)
                    };
                    j["attributes"] = serde_json::json!({
                        "old": side(&p.attributes.0),
                        "new": side(&p.attributes.1),
                    });
                }
                if !old.shadows.is_empty() || !new.shadows.is_empty() {
                    j["shadow"] = serde_json::json!({"old": p.shadow.0, "new": p.shadow.1});
                }
                j
            })
            .collect();
        serde_json::json!({
            "old": { "rules": old.path.display().to_string(), "records": old.records.len() },
            "new": { "rules": new.path.display().to_string(), "records": new.records.len() },
            "patterns": patterns,
        })
        .to_string()
    }
}
