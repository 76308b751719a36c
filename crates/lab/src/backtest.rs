//! `cepheid backtest RULES --events FILE [--labels FILE]`: what a rule set
//! would have raised over past events, per pattern (issue 42,
//! `docs/rule-lab.md`).
//!
//! The rules run over the file as `cepheid run` runs them (the same
//! records: [`Events::run`](crate::Events::run)). Per pattern: its alerts (matches; a
//! timeout is a sequence that did not complete, counted apart, not an
//! alert), alerts per day of the events' time span, distinct keys, and
//! the delay from an alert's first event to its last (the event that
//! raised it), in event time. With labels (the cases known to be real: a
//! key and a time), an alert is a true positive when its key is the
//! label's and its span, widened by `--tolerance` both ways, holds the
//! label's time; precision and recall per pattern, and the labels no
//! pattern caught. With `--html FILE`, the same as one self-contained
//! page with a plot of each pattern's alerts over event time (`html`).
//! A rule set whose patterns have attributes (`level`, `action`, `score`,
//! `tags`) has them as the table's last columns and as each pattern's
//! `"attributes"` in the JSON; one without has neither.

mod html;
mod labels;
mod outcomes;

use labels::Label;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::{Error, Events};

/// What `backtest` is asked: the rule set, the events, the labels.
#[non_exhaustive]
pub struct Options {
    /// The rule set: a `.cep` file or a folder.
    pub rules: PathBuf,
    /// The events it runs over.
    pub events: Events,
    /// The cases known to be real: JSON lines `{"key": K, "ts": T}` (K a
    /// key's value, or an object of the key's fields; T milliseconds or an
    /// RFC 3339 time) or CSV `key,ts` (a header allowed).
    pub labels: Option<PathBuf>,
    /// How far outside an alert's span a label's time may be and still be
    /// caught by it, in milliseconds.
    pub tolerance: i64,
    /// Keep what the page shows beside the figures (each pattern's first
    /// alerts, [`Backtest::page`]).
    pub page: bool,
    /// Leave the matched events' values (`events`, `select`, `reads`) out
    /// of everything the report shows (the page's first alerts of each
    /// pattern): for a report others read.
    pub no_events: bool,
}

impl Options {
    /// A backtest of the rules at `rules` over `events`: no labels, no
    /// tolerance, no page, the events' values shown.
    pub fn new(rules: impl Into<PathBuf>, events: Events) -> Options {
        Options {
            rules: rules.into(),
            events,
            labels: None,
            tolerance: 0,
            page: false,
            no_events: false,
        }
    }
}

/// A backtest's result: its report as the terminal's table
/// ([`Backtest::text`]), one JSON document ([`Backtest::json`]) or one
/// self-contained HTML page ([`Backtest::page`]).
pub struct Backtest {
    report: Report,
    /// The alerts and timeouts, for the page's plots.
    raised: Vec<Raised>,
    first: html::FirstAlerts,
    head: Header,
}

/// What a report names besides its figures.
struct Header {
    rules: PathBuf,
    events: PathBuf,
    no_events: bool,
}

impl Backtest {
    /// The report as the terminal's table.
    pub fn text(&self) -> String {
        self.report.text(&self.head)
    }

    /// The report as one JSON document (one line, without its newline).
    pub fn json(&self) -> String {
        self.report.json(&self.head)
    }

    /// The report as one self-contained HTML page (no network: its script,
    /// style and plots inline), with a plot of each pattern's alerts over
    /// event time and, when [`Options::page`] was asked, its first alerts.
    pub fn page(&self) -> String {
        html::page(&self.report, &self.head, &self.raised, &self.first)
    }
}

/// An alert or a timeout, as its record says it.
struct Raised {
    /// Its pattern: first the place of its name among those the records
    /// gave, then among the rule set's patterns (`usize::MAX`: none).
    pattern: usize,
    timeout: bool,
    /// Its key: the place of the record's JSON text of it among those
    /// [`Seen`] (a pattern's records write a key's fields in one order:
    /// the same key, the same text).
    key: u32,
    start: i64,
    end: i64,
}

/// Runs the backtest: the labels read (a line that is not one told and
/// left out), the rules run over the events.
pub fn run(options: &Options) -> Result<Backtest, Error> {
    let events = &options.events;
    events.check("backtest reads the events from a file")?;
    let (labels, event_labels) = match &options.labels {
        Some(path) => {
            let (cases, by_event) = labels::read(path, &events.tell)?;
            // (a file of labels by event only has no case for the
            // patterns' precision and recall)
            let cases = (!cases.is_empty() || by_event.is_empty()).then_some(cases);
            (cases, Some(by_event))
        }
        None => (None, None),
    };
    // Each record read as the run makes it as an alert or a timeout, the
    // first alerts of each pattern kept whole for the page; the events'
    // time span is the run's.
    let taken = Taken {
        raised: Vec::new(),
        seen: Seen::default(),
        first: html::FirstAlerts::default(),
        page: options.page,
        no_events: options.no_events,
        decisions: outcomes::Taking::new(event_labels.as_deref().unwrap_or_default()),
    };
    let crate::Ran {
        rules,
        records:
            Taken {
                mut raised,
                seen,
                first,
                decisions,
                ..
            },
        span,
        left_out,
    } = events.run_into(&options.rules, "rules", taken)?;
    let names: Vec<String> = rules.patterns().iter().map(|p| p.name.clone()).collect();
    let place: Vec<usize> = (seen.patterns.iter())
        .map(|n| names.iter().position(|m| m == n).unwrap_or(usize::MAX))
        .collect();
    for r in &mut raised {
        r.pattern = place[r.pattern];
    }
    let keys = seen.key_texts();
    let shadows: Vec<bool> = rules.patterns().iter().map(|p| p.shadow).collect();
    let report = Report::of(
        (&names, &shadows),
        (&raised, &keys),
        labels.as_deref(),
        options.tolerance,
        span,
    );
    let mut report = report;
    report.left_out = left_out;
    let scenes = &rules.loaded().scenes;
    if !scenes.is_empty() {
        let declared: Vec<(String, Vec<String>)> = (scenes.iter())
            .map(|s| {
                (
                    s.name.clone(),
                    s.outcomes.iter().map(|o| o.to_string()).collect(),
                )
            })
            .collect();
        report.outcomes = Some(decisions.figures(&declared, event_labels.is_some()));
    }
    if crate::attributes::used(&rules) {
        report.attributes = Some(
            (rules.patterns().iter())
                .map(|p| p.attributes.clone())
                .collect(),
        );
    }
    Ok(Backtest {
        report,
        raised,
        first,
        head: Header {
            rules: options.rules.clone(),
            events: events.path.clone(),
            no_events: options.no_events,
        },
    })
}

/// What a backtest takes of the run's records, as the run makes them.
struct Taken {
    raised: Vec<Raised>,
    seen: Seen,
    /// The first alerts of each pattern, for the page.
    first: html::FirstAlerts,
    /// Is there a page (`--html`)?
    page: bool,
    no_events: bool,
    /// The scenes' decisions.
    decisions: outcomes::Taking,
}

impl crate::Records for Taken {
    fn record(&mut self, line: &[u8]) {
        if outcomes::Taking::is_decision(line) {
            self.decisions.take(line);
            return;
        }
        let Some(r) = parse_raised(line, &mut self.seen) else {
            return;
        };
        // (a pattern's first alerts: its record's text, until it has them)
        if self.page && !r.timeout && !self.seen.full[r.pattern] {
            if let Ok(text) = std::str::from_utf8(line) {
                let name = &self.seen.patterns[r.pattern];
                self.seen.full[r.pattern] = self.first.offer(name, text, self.no_events);
            }
        }
        self.raised.push(r);
    }

    fn takes_decisions(&self) -> bool {
        true
    }
}

/// The patterns' names and the keys the records gave, each once, in
/// order.
#[derive(Default)]
struct Seen {
    patterns: Vec<String>,
    /// Per pattern: has the page all the first alerts it shows of it?
    full: Vec<bool>,
    /// The pattern found last (a pattern's records often follow each
    /// other).
    last: usize,
    keys: hashbrown::HashMap<Box<str>, u32>,
}

impl Seen {
    /// The place of pattern `name`.
    fn pattern(&mut self, name: String) -> usize {
        match self.patterns.iter().position(|n| *n == name) {
            Some(at) => at,
            None => {
                self.patterns.push(name);
                self.full.push(false);
                self.patterns.len() - 1
            }
        }
    }

    /// The place of pattern `name`, without a copy when it is known.
    fn pattern_of(&mut self, name: &str) -> usize {
        if self.patterns.get(self.last).is_some_and(|n| n == name) {
            return self.last;
        }
        self.last = match self.patterns.iter().position(|n| n == name) {
            Some(at) => at,
            None => self.pattern(name.to_string()),
        };
        self.last
    }

    /// The place of the key of JSON text `text`.
    fn key(&mut self, text: &str) -> u32 {
        if let Some(&at) = self.keys.get(text) {
            return at;
        }
        let at = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.insert(text.into(), at);
        at
    }

    /// The keys' texts, by place.
    fn key_texts(&self) -> Vec<&str> {
        let mut texts = vec![""; self.keys.len()];
        for (text, &at) in &self.keys {
            texts[at as usize] = text;
        }
        texts
    }
}

/// A record as an alert or a timeout (`None`: not a record of a match),
/// its pattern and key placed in `seen`. Only its head is read: the
/// reading stops at the first field after `kind`, `pattern`, `key`,
/// `start` and `end` (or `expired_at`) were read (the runtime writes
/// them first), its events neither built nor scanned.
fn parse_raised(line: &[u8], seen: &mut Seen) -> Option<Raised> {
    if let Some((timeout, pattern, key, start, end)) = written_head(line) {
        return Some(Raised {
            pattern: seen.pattern_of(pattern),
            timeout,
            key: seen.key(key),
            start,
            end,
        });
    }
    let line = std::str::from_utf8(line).ok()?;
    let mut head = Head {
        timeout: None,
        pattern: None,
        key: None,
        start: None,
        end: None,
        seen,
    };
    let mut decoder = serde_json::Deserializer::from_str(line);
    // (an error here is the stop once the head is read, or a line that
    // is no record: what was read says which)
    let _ = serde::de::DeserializeSeed::deserialize(&mut head, &mut decoder);
    let (timeout, pattern, start, end) = (head.timeout?, head.pattern?, head.start?, head.end?);
    let key = match head.key {
        Some(key) => key,
        None => head.seen.key("null"),
    };
    Some(Raised {
        pattern: head.seen.pattern(pattern),
        timeout,
        key,
        start,
        end,
    })
}

/// A record's head as the runtime writes it, `{"kind":K,"pattern":P,
/// "key":{...},"start":S,"end":E` (or `"expired_at":E`) and more: whether
/// it is a timeout, its pattern, its key's JSON text, start and end, read
/// by hand from the line's bytes, the rest of it not looked at (`None`:
/// another shape, which serde reads).
fn written_head(line: &[u8]) -> Option<(bool, &str, &str, i64, i64)> {
    /// A JSON integer and what follows it (`None`: none, or of more than
    /// 18 digits, which serde reads).
    fn int(text: &[u8]) -> Option<(i64, &[u8])> {
        let (negative, text) = match text.strip_prefix(b"-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        // (one pass: 18 digits cannot overflow; more are serde's)
        let (mut n, mut digits) = (0_i64, 0);
        for &b in text.iter().take(18) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n * 10 + i64::from(b - b'0');
            digits += 1;
        }
        if digits == 0 || text.get(digits).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        Some((if negative { -n } else { n }, &text[digits..]))
    }
    /// The text up to the next `"` (without an escape) and what follows
    /// the quote.
    fn word(text: &[u8]) -> Option<(&str, &[u8])> {
        let end = text.iter().position(|&b| b == b'"')?;
        let word = &text[..end];
        if word.contains(&b'\\') {
            return None;
        }
        Some((std::str::from_utf8(word).ok()?, &text[end + 1..]))
    }
    let (kind, rest) = word(line.strip_prefix(b"{\"kind\":\"")?)?;
    let (pattern, rest) = word(rest.strip_prefix(b",\"pattern\":\"")?)?;
    let rest = rest.strip_prefix(b",\"key\":")?;
    let (key, rest) = rest.split_at(object_end(rest)?);
    let key = std::str::from_utf8(key).ok()?;
    let (start, rest) = int(rest.strip_prefix(b",\"start\":")?)?;
    let rest =
        (rest.strip_prefix(b",\"end\":")).or_else(|| rest.strip_prefix(b",\"expired_at\":"))?;
    let (end, rest) = int(rest)?;
    matches!(rest.first(), Some(b',' | b'}')).then_some((
        kind == "timeout",
        pattern,
        key,
        start,
        end,
    ))
}

/// The length of the JSON object (or `null`) `text` begins with.
fn object_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"null") {
        return Some(4);
    }
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'{' | b'[') => depth += 1,
            (false, b'}' | b']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            (false, _) => {}
        }
    }
    None
}

/// What [`parse_raised`] reads of a record.
struct Head<'s> {
    timeout: Option<bool>,
    pattern: Option<String>,
    key: Option<u32>,
    start: Option<i64>,
    /// Its end, or a timeout's `expired_at` (the time its window closed).
    end: Option<i64>,
    seen: &'s mut Seen,
}

impl Head<'_> {
    fn whole(&self) -> bool {
        self.timeout.is_some()
            && self.pattern.is_some()
            && self.key.is_some()
            && self.start.is_some()
            && self.end.is_some()
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut Head<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut Head<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        use serde::de::Error;
        while let Some(Word(field)) = map.next_key::<Word>()? {
            match field {
                "kind" => {
                    let Word(kind) = map.next_value()?;
                    self.timeout = Some(kind == "timeout");
                }
                "pattern" => self.pattern = Some(map.next_value()?),
                "key" => {
                    let key: &serde_json::value::RawValue = map.next_value()?;
                    self.key = Some(self.seen.key(key.get()));
                }
                "start" => self.start = Some(map.next_value()?),
                "end" | "expired_at" => self.end = Some(map.next_value()?),
                _ if self.whole() => return Err(M::Error::custom("the head is read")),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A field's name or a string read as one of the words a record's head
/// has (`""`: another), without building it.
struct Word(&'static str);

impl<'de> serde::Deserialize<'de> for Word {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Word, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Word;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, text: &str) -> Result<Word, E> {
                const WORDS: [&str; 7] = [
                    "kind",
                    "pattern",
                    "key",
                    "start",
                    "end",
                    "expired_at",
                    "timeout",
                ];
                Ok(Word(WORDS.into_iter().find(|w| *w == text).unwrap_or("")))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// What the report says of the shadow patterns, apart from the live ones.
const SHADOWS: &str = "shadow patterns (their matches go to the shadow output: not alerts)";

/// One pattern's figures.
struct Figures {
    pattern: String,
    alerts: u64,
    timeouts: u64,
    keys: usize,
    /// Delays (end − start) of its alerts, sorted.
    delays: Vec<i64>,
    /// Its alerts that caught a label.
    true_positives: u64,
    /// The labels it caught.
    caught: HashSet<usize>,
    /// Is it a shadow pattern (its records go to the shadow output: they
    /// are no alerts, `docs/rule-lab.md`)?
    shadow: bool,
}

/// What the labels came to over the whole rule set: those the live
/// patterns' alerts caught, those only shadow patterns' records caught
/// (no alert raised them), and those none caught.
struct Labels {
    total: usize,
    /// Caught by shadow patterns only, in the order of the file.
    shadow_only: Vec<Label>,
    /// Caught by no pattern, in the order of the file.
    missed: Vec<Label>,
}

impl Labels {
    /// Labels a live pattern's alert caught.
    fn caught(&self) -> usize {
        self.total - self.shadow_only.len() - self.missed.len()
    }

    /// `labels: 3, caught by a pattern: 1, caught by none: 2`; with shadow
    /// patterns, `labels: 3, caught by a live pattern: 1, by shadow
    /// patterns only: 1, caught by none: 1`.
    fn said(&self, shadows: bool) -> String {
        let (total, caught, none) = (self.total, self.caught(), self.missed.len());
        match shadows {
            false => format!("labels: {total}, caught by a pattern: {caught}, caught by none: {none}"),
            true => format!(
                "labels: {total}, caught by a live pattern: {caught}, by shadow patterns only: {}, caught by none: {none}",
                self.shadow_only.len()
            ),
        }
    }
}

/// The backtest's report.
struct Report {
    patterns: Vec<Figures>,
    /// The events' time span, if they had times.
    span: Option<(i64, i64)>,
    /// The labels, if given, and what the rule set caught of them.
    labels: Option<Labels>,
    /// Each pattern's attributes (`level`, `action`, `score`, `tags`),
    /// when a pattern of the rule set has some: columns of the table,
    /// fields of the JSON.
    attributes: Option<Vec<cepheid_core::lookup::Attributes>>,
    /// What the lists and indicators left out at their limits or for
    /// their values (issue 60, item 3): the figures count only what they
    /// took in.
    left_out: crate::LeftOut,
    /// The scenes' outcome mix, when the rule set has scenes.
    outcomes: Option<outcomes::Outcomes>,
}

impl Report {
    /// The report of the alerts and timeouts `raised` (and the texts of
    /// their keys) of the patterns `names` (each a shadow pattern or not,
    /// `shadows`).
    fn of(
        (names, shadows): (&[String], &[bool]),
        (raised, keys_text): (&[Raised], &[&str]),
        labels: Option<&[Label]>,
        tolerance: i64,
        span: Option<(i64, i64)>,
    ) -> Report {
        let mut patterns: Vec<Figures> = (names.iter().enumerate())
            .map(|(i, name)| Figures {
                pattern: name.clone(),
                alerts: 0,
                timeouts: 0,
                keys: 0,
                delays: Vec::new(),
                true_positives: 0,
                caught: HashSet::new(),
                shadow: shadows.get(i).copied().unwrap_or(false),
            })
            .collect();
        let mut keys: Vec<hashbrown::HashSet<u32>> =
            vec![hashbrown::HashSet::new(); patterns.len()];
        // (the labels placed by key and time: an alert looks only at its
        // key's labels near its span)
        let mut index = labels.map(|labels| labels::Index::new(labels, keys_text.len()));
        let mut caught: Vec<labels::Caught> = vec![Vec::new(); patterns.len()];
        for r in raised {
            let Some(figures) = patterns.get_mut(r.pattern) else {
                continue;
            };
            if r.timeout {
                figures.timeouts += 1;
                continue;
            }
            figures.alerts += 1;
            figures.delays.push(r.end.saturating_sub(r.start));
            keys[r.pattern].insert(r.key);
            if let Some(index) = &mut index {
                let text = keys_text.get(r.key as usize).copied().unwrap_or("null");
                let span = (
                    r.start.saturating_sub(tolerance),
                    r.end.saturating_add(tolerance),
                );
                let hit = index.catch((r.key, text), span, &mut caught[r.pattern]);
                figures.true_positives += u64::from(hit);
            }
        }
        if let Some(index) = &mut index {
            for (figures, caught) in patterns.iter_mut().zip(caught) {
                figures.caught = index.caught(caught);
            }
        }
        for (figures, keys) in patterns.iter_mut().zip(&keys) {
            figures.delays.sort_unstable();
            figures.keys = keys.len();
        }
        // (a shadow pattern's records are no alerts: what only they
        // caught is said apart, not as caught)
        let labels = labels.map(|labels| {
            let caught_by = |shadow: bool| -> HashSet<usize> {
                (patterns.iter().filter(|f| f.shadow == shadow))
                    .flat_map(|f| f.caught.iter().copied())
                    .collect()
            };
            let (live, shadow) = (caught_by(false), caught_by(true));
            let of = |keep: &dyn Fn(usize) -> bool| -> Vec<Label> {
                (labels.iter().enumerate())
                    .filter(|&(i, _)| keep(i))
                    .map(|(_, l)| l.clone())
                    .collect()
            };
            Labels {
                total: labels.len(),
                shadow_only: of(&|i| !live.contains(&i) && shadow.contains(&i)),
                missed: of(&|i| !live.contains(&i) && !shadow.contains(&i)),
            }
        });
        Report {
            patterns,
            span,
            labels,
            attributes: None,
            left_out: crate::LeftOut::default(),
            outcomes: None,
        }
    }

    /// Has the rule set a shadow pattern?
    fn has_shadows(&self) -> bool {
        self.patterns.iter().any(|f| f.shadow)
    }

    /// Days of event time the events span (at least a millisecond's).
    fn days(&self) -> Option<f64> {
        self.span
            .map(|(from, to)| (to.saturating_sub(from).max(1)) as f64 / 86_400_000.0)
    }

    /// The table's columns: the terminal's and the page's.
    fn header(&self) -> Vec<&'static str> {
        let mut columns = vec![
            "pattern",
            "alerts",
            "per day",
            "keys",
            "timeouts",
            "delay ms min/median/p95/max",
        ];
        if self.labels.is_some() {
            columns.extend(["tp", "fp", "precision", "recall"]);
        }
        if self.attributes.is_some() {
            columns.extend(crate::attributes::COLUMNS);
        }
        columns
    }

    /// The cells of pattern `f`'s attributes (none when the rule set has
    /// none).
    fn attribute_cells(&self, f: &Figures) -> Vec<String> {
        let Some(attributes) = &self.attributes else {
            return Vec::new();
        };
        let i = (self.patterns.iter()).position(|g| std::ptr::eq(g, f));
        let a = i
            .and_then(|i| attributes.get(i))
            .cloned()
            .unwrap_or_default();
        crate::attributes::cells(&a).to_vec()
    }

    /// A pattern's row of the table, its cells as the terminal shows them.
    fn row(&self, f: &Figures) -> Vec<String> {
        let per_day = self
            .days()
            .map_or("-".to_string(), |d| format!("{:.1}", f.alerts as f64 / d));
        let delays = match f.delays.as_slice() {
            [] => "-".to_string(),
            d => format!(
                "{}/{}/{}/{}",
                d[0],
                d[d.len() / 2],
                d[(d.len() * 95).div_ceil(100) - 1],
                d[d.len() - 1]
            ),
        };
        let mut cells = vec![
            f.pattern.clone(),
            f.alerts.to_string(),
            per_day,
            f.keys.to_string(),
            f.timeouts.to_string(),
            delays,
        ];
        if let Some(Labels { total, .. }) = &self.labels {
            let precision = (f.alerts > 0).then(|| f.true_positives as f64 / f.alerts as f64);
            let recall = (*total > 0).then(|| f.caught.len() as f64 / *total as f64);
            let shown = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
            cells.extend([
                f.true_positives.to_string(),
                (f.alerts - f.true_positives).to_string(),
                shown(precision),
                shown(recall),
            ]);
        }
        cells.extend(self.attribute_cells(f));
        cells
    }

    fn text(&self, args: &Header) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = write!(
            out,
            "rules: {} over {}",
            args.rules.display(),
            args.events.display()
        );
        match (self.span, self.days()) {
            (Some((from, to)), Some(days)) => {
                let _ = writeln!(out, ": event time {from} to {to} ({days:.3} days)");
            }
            _ => {
                let _ = writeln!(out, ": no event time");
            }
        }
        let width = (self.patterns.iter())
            .map(|f| f.pattern.len())
            .max()
            .unwrap_or(7)
            .max(7);
        // (each column's width after the pattern's)
        let widths = [7, 9, 6, 8, 31, 6, 6, 9, 6];
        let line = |out: &mut String, cells: &[String]| {
            let _ = write!(out, "{:width$}", cells[0]);
            for (cell, width) in cells[1..].iter().zip(widths) {
                let _ = write!(out, "  {cell:>width$}");
            }
            out.push('\n');
        };
        let header: Vec<String> = self.header().iter().map(|h| h.to_string()).collect();
        let rows: Vec<Vec<String>> = self.patterns.iter().map(|f| self.row(f)).collect();
        // The attributes' columns, after the figures: left-aligned, each
        // as wide as its widest cell (the last one not padded).
        let figures = header.len() - self.attributes.as_ref().map_or(0, |_| 4);
        let attribute_widths: Vec<usize> = (figures..header.len())
            .map(|c| {
                (rows.iter().chain([&header]))
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |out: &mut String, cells: &[String]| {
            let mut text = String::new();
            line(&mut text, &cells[..figures]);
            text.pop();
            let last = cells.len().saturating_sub(1);
            for (c, cell) in cells.iter().enumerate().skip(figures) {
                let width = if c == last {
                    0
                } else {
                    attribute_widths[c - figures]
                };
                let _ = write!(text, "  {cell:width$}");
            }
            out.push_str(&text);
            out.push('\n');
        };
        line(&mut out, &header);
        // (the live patterns, then the shadow ones apart: their records
        // are no alerts)
        for (row, _) in (rows.iter().zip(&self.patterns)).filter(|(_, f)| !f.shadow) {
            line(&mut out, row);
        }
        if self.has_shadows() {
            let _ = writeln!(out, "{SHADOWS}:");
            for (row, _) in (rows.iter().zip(&self.patterns)).filter(|(_, f)| f.shadow) {
                line(&mut out, row);
            }
        }
        for line in self.left_out.lines() {
            let _ = writeln!(out, "left out: {line}");
        }
        if let Some(outcomes) = &self.outcomes {
            outcomes.text(&mut out);
        }
        if let Some(labels) = &self.labels {
            let _ = writeln!(out, "{}", labels.said(self.has_shadows()));
            let mut listed = |heading: Option<&str>, list: &[Label]| {
                if let (Some(heading), false) = (heading, list.is_empty()) {
                    let _ = writeln!(out, "{heading}:");
                }
                for label in list {
                    let _ = writeln!(
                        out,
                        "  line {}: key {} at {}",
                        label.line, label.key, label.ts
                    );
                }
            };
            match self.has_shadows() {
                false => listed(None, &labels.missed),
                true => {
                    listed(Some("caught by none"), &labels.missed);
                    listed(
                        Some("caught by shadow patterns only (no alert)"),
                        &labels.shadow_only,
                    );
                }
            }
        }
        out
    }

    fn json(&self, args: &Header) -> String {
        let patterns: Vec<serde_json::Value> = (self.patterns.iter())
            .map(|f| {
                let d = &f.delays;
                let delay = (!d.is_empty()).then(|| {
                    serde_json::json!({
                        "min": d[0],
                        "median": d[d.len() / 2],
                        "p95": d[(d.len() * 95).div_ceil(100) - 1],
                        "max": d[d.len() - 1],
                    })
                });
                let mut figures = serde_json::json!({
                    "pattern": f.pattern,
                    "alerts": f.alerts,
                    "per_day": self.days().map(|days| f.alerts as f64 / days),
                    "keys": f.keys,
                    "timeouts": f.timeouts,
                    "delay_ms": delay,
                });
                if self.has_shadows() {
                    figures["shadow"] = f.shadow.into();
                }
                if let Some(attributes) = &self.attributes {
                    let i = self.patterns.iter().position(|g| std::ptr::eq(g, f));
                    let a = i
                        .and_then(|i| attributes.get(i))
                        .cloned()
                        .unwrap_or_default();
                    figures["attributes"] = crate::attributes::json(&a);
                }
                if let Some(Labels { total, .. }) = &self.labels {
                    figures["true_positives"] = f.true_positives.into();
                    figures["false_positives"] = (f.alerts - f.true_positives).into();
                    figures["precision"] = serde_json::json!(
                        (f.alerts > 0).then(|| f.true_positives as f64 / f.alerts as f64)
                    );
                    figures["recall"] = serde_json::json!(
                        (*total > 0).then(|| f.caught.len() as f64 / *total as f64)
                    );
                }
                figures
            })
            .collect();
        let mut report = serde_json::json!({
            "rules": args.rules.display().to_string(),
            "events": args.events.display().to_string(),
            "event_time": self.span.map(|(from, to)| serde_json::json!({"from": from, "to": to})),
            "patterns": patterns,
        });
        self.left_out.json_into(&mut report);
        if let Some(outcomes) = &self.outcomes {
            outcomes.json_into(&mut report);
        }
        if let Some(labels) = &self.labels {
            let listed = |list: &[Label]| -> Vec<serde_json::Value> {
                (list.iter())
                    .map(|l| serde_json::json!({"line": l.line, "key": l.key, "ts": l.ts}))
                    .collect()
            };
            report["labels"] = serde_json::json!({
                "count": labels.total,
                "caught": labels.caught(),
                "caught_by_none": listed(&labels.missed),
            });
            if self.has_shadows() {
                report["labels"]["caught_by_shadow_only"] = listed(&labels.shadow_only).into();
            }
        }
        report.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head read by hand and by serde agree, on the shapes the
    /// runtime writes and on one it does not (serde's alone).
    #[test]
    fn a_records_head_by_hand_is_serdes() {
        let lines = [
            r#"{"kind":"match","pattern":"p","key":{"user":"a}\"{b"},"start":1,"end":5,"events":{"a":[{"x":"}"}]}}"#,
            r#"{"kind":"timeout","pattern":"q","key":{"n":[1,{"m":2}]},"start":-7,"expired_at":9,"events":{}}"#,
            r#"{"kind":"match","pattern":"r","key":null,"start":3,"end":4}"#,
            r#"{"pattern":"s","kind":"match","start":3,"end":4,"key":{"k":1}}"#,
        ];
        let shown = |r: &Raised, seen: &Seen| {
            let texts = seen.key_texts();
            (
                seen.patterns[r.pattern].clone(),
                r.timeout,
                texts[r.key as usize].to_string(),
                r.start,
                r.end,
            )
        };
        for (i, line) in lines.iter().enumerate() {
            let mut by_hand = Seen::default();
            let fast = parse_raised(line.as_bytes(), &mut by_hand).expect("a record");
            assert_eq!(written_head(line.as_bytes()).is_some(), i < 3, "{line}");
            // serde's reading alone: the line with a space after `{`.
            let spaced = line.replacen('{', "{ ", 1);
            assert!(written_head(spaced.as_bytes()).is_none());
            let mut by_serde = Seen::default();
            let slow = parse_raised(spaced.as_bytes(), &mut by_serde).expect("a record");
            assert_eq!(shown(&fast, &by_hand), shown(&slow, &by_serde), "{line}");
        }
        // (19 digits: serde's reading)
        let long = br#"{"kind":"match","pattern":"p","key":null,"start":-1234567890123456789,"end":999999999999999999}"#;
        assert!(written_head(long).is_none());
        let r = parse_raised(long, &mut Seen::default()).expect("a record");
        assert_eq!(
            (r.start, r.end),
            (-1_234_567_890_123_456_789, 999_999_999_999_999_999)
        );
        let short =
            br#"{"kind":"match","pattern":"p","key":null,"start":-123456789012345678,"end":0}"#;
        assert_eq!(
            written_head(short).map(|h| (h.3, h.4)),
            Some((-123_456_789_012_345_678, 0))
        );
        assert_eq!(object_end(br#"{"a":"}"},"b""#), Some(9));
        assert_eq!(object_end(br#"{"a":1"#), None);
        assert!(parse_raised(b"not a record", &mut Seen::default()).is_none());
    }
}
