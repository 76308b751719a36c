//! `cepheid why RULES KEY --events FILE`: for one key, what each pattern
//! did with its events (issue 42, `docs/rule-lab.md`): the events that
//! reached it, the partial matches the matcher held and what ended each
//! (a condition that did not hold and the values it read, a window that
//! closed, a negation that held, a limit, the skip strategy, a match),
//! the events that started nothing, the key's late events and the
//! watermark.
//!
//! The rules run over the whole file on one engine as `cepheid run` runs
//! them (every key: lists, indicators and limits depend on them); the
//! engine traces the key (`cepheid_engine::engine::why`): what it says
//! ended a partial match is what the matcher did.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use cepheid_core::expr::{AggregateFunc, Expr};
use cepheid_core::pattern::{Condition, Pattern};
use cepheid_decode::{Decoder, Item, Items};
use cepheid_engine::engine::why::{End, PatternTrace, Reached, Read, RunTrace, Trace};
use cepheid_engine::{FieldPath, Record, Rules, Timestamp, Value};
use serde_json::{json, Value as Json};

use crate::{Error, ErrorKind, Events};

pub mod event;
pub mod service;

/// What `why` is asked: the rule set, the key, the events.
#[non_exhaustive]
pub struct Options {
    /// The rule set: a `.cep` file or a folder.
    pub rules: PathBuf,
    /// The key: its value (`u-7`, `42`), `field=value,...`, or a JSON
    /// object of the key's fields (`{"user_id": "u-7"}`).
    pub key: String,
    /// The events the rules run over (on one engine: not on workers).
    pub events: Events,
    /// Keep the events' values out of the output: times, stages and
    /// conditions only.
    pub no_events: bool,
    /// As `run --max-runs-per-key` (`None`: the run's default).
    pub max_runs_per_key: Option<usize>,
    /// As `run --max-live-runs` (`None`: the run's default).
    pub max_live_runs: Option<usize>,
    /// Show only what happened from this time on (milliseconds, at or
    /// after): the key's events, late events and partial matches of the
    /// range. The rules still run over every event (lists, indicators
    /// and windows depend on them); the events keep their numbers.
    pub from: Option<i64>,
    /// Show only what happened up to this time (milliseconds, at or
    /// before).
    pub to: Option<i64>,
    /// Show only these patterns (by name; empty: every pattern).
    pub patterns: Vec<String>,
}

impl Options {
    /// The key `key` of the rules at `rules` over `events`, with the
    /// events' values and the run's limits.
    pub fn new(rules: impl Into<PathBuf>, key: impl Into<String>, events: Events) -> Options {
        Options {
            rules: rules.into(),
            key: key.into(),
            events,
            no_events: false,
            max_runs_per_key: None,
            max_live_runs: None,
            from: None,
            to: None,
            patterns: Vec::new(),
        }
    }
}

/// A time as text: integer milliseconds since the epoch, or RFC 3339
/// (`2024-05-01T10:00:00Z`), as the command's other times
/// (`--kafka-start`, the labels' times).
pub fn parse_time(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => cepheid_decode::parse_rfc3339(text).map_err(|e| {
            format!(
                "{e} (a time is milliseconds since the epoch, or RFC 3339: 2024-05-01T10:00:00Z)"
            )
        }),
    }
}

/// `ms` as `why` shows a time: the milliseconds, and beside them the time
/// in RFC 3339, UTC (`1714557600000 (2024-05-01T10:00:00Z)`; the
/// milliseconds shown when not whole seconds).
fn when(ms: Timestamp) -> String {
    format!("{ms} ({})", rfc3339(ms))
}

/// `ms` in RFC 3339, UTC, without `.000` for a whole second.
fn rfc3339(ms: Timestamp) -> String {
    let text = cepheid_decode::format_rfc3339(ms);
    match text.strip_suffix(".000Z") {
        Some(seconds) => format!("{seconds}Z"),
        None => text,
    }
}

/// What a report names besides the trace.
struct Header {
    rules: PathBuf,
    events: PathBuf,
    no_events: bool,
    /// The times shown, both ends within (`None`: no bound).
    from: Option<i64>,
    to: Option<i64>,
    /// The patterns shown (empty: every one).
    patterns: Vec<String>,
}

impl Header {
    /// Is the time `ts` shown?
    fn shows(&self, ts: Timestamp) -> bool {
        self.from.map_or(true, |from| from <= ts) && self.to.map_or(true, |to| ts <= to)
    }

    /// Is the trace narrowed to a time range?
    fn narrowed(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }

    /// Is pattern `name` shown?
    fn shows_pattern(&self, name: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p == name)
    }
}

/// One key's trace, explained: as text ([`Why::text`]) or one JSON
/// document ([`Why::json`]).
pub struct Why {
    head: Header,
    key: Key,
    trace: Trace<Record>,
    /// What is said of how the trace came, after its header (a service's
    /// log: the rules it ran, each change of them).
    notes: Vec<String>,
}

impl Why {
    fn report(&self) -> Report<'_> {
        Report {
            args: &self.head,
            key: &self.key,
            trace: &self.trace,
            notes: &self.notes,
            numbers: (self.trace.events.keys())
                .enumerate()
                .map(|(i, &seq)| (seq, i + 1))
                .collect(),
            conditions: std::cell::RefCell::new(HashMap::new()),
        }
    }

    /// The trace as text: a header, then each pattern's events and
    /// partial matches.
    pub fn text(&self) -> String {
        self.report().text()
    }

    /// The trace as one JSON document (one line, without its newline).
    pub fn json(&self) -> String {
        self.report().json().to_string()
    }
}

/// The key asked for.
enum Key {
    /// A value: the key of a pattern partitioned by one field.
    Value(Json),
    /// Fields and values: the key of a pattern partitioned by exactly
    /// these fields.
    Fields(Vec<(String, Json)>),
}

impl Key {
    fn parse(text: &str) -> Result<Key, String> {
        let scalar = |v: &str| match serde_json::from_str::<Json>(v) {
            Ok(j) if !j.is_object() && !j.is_array() => j,
            _ => Json::String(v.to_string()),
        };
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let Ok(Json::Object(map)) = serde_json::from_str::<Json>(trimmed) else {
                return Err(format!("`{text}` is not a JSON object of the key's fields"));
            };
            if map.is_empty() {
                return Err("the key's object has no field".to_string());
            }
            return Ok(Key::Fields(map.into_iter().collect()));
        }
        if trimmed.contains('=') {
            let mut fields = Vec::new();
            for part in trimmed.split(',') {
                let Some((field, value)) = part.split_once('=') else {
                    return Err(format!("`{part}` is not `field=value`"));
                };
                if field.trim().is_empty() {
                    return Err(format!("`{part}` names no field"));
                }
                fields.push((field.trim().to_string(), scalar(value.trim())));
            }
            return Ok(Key::Fields(fields));
        }
        Ok(Key::Value(scalar(trimmed)))
    }

    /// Does it apply to a pattern partitioned by `paths`?
    fn applies(&self, paths: &[FieldPath]) -> bool {
        match self {
            Key::Value(_) => paths.len() == 1,
            Key::Fields(fields) => {
                paths.len() == fields.len()
                    && (paths.iter()).all(|p| fields.iter().any(|(f, _)| *f == p.to_string()))
            }
        }
    }

    /// Is `values` (a partition's key, by `paths`) this key?
    fn is(&self, paths: &[FieldPath], values: &[Value]) -> bool {
        if !self.applies(paths) || values.len() != paths.len() {
            return false;
        }
        match self {
            Key::Value(want) => same(&values[0], want),
            Key::Fields(fields) => paths.iter().zip(values).all(|(p, v)| {
                let name = p.to_string();
                (fields.iter()).any(|(f, want)| *f == name && same(v, want))
            }),
        }
    }

    fn json(&self) -> Json {
        match self {
            Key::Value(v) => v.clone(),
            Key::Fields(fields) => Json::Object(fields.iter().cloned().collect()),
        }
    }
}

/// Is the key part `value` the value `want` (or, `want` a text, the
/// value that text reads as)?
fn same(value: &Value, want: &Json) -> bool {
    let have = serde_json::to_value(value).unwrap_or(Json::Null);
    let equal = |a: &Json, b: &Json| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    };
    equal(&have, want)
        || want
            .as_str()
            .and_then(|s| serde_json::from_str::<Json>(s).ok())
            .is_some_and(|read| equal(&have, &read))
}

/// Runs the rules over the events on one engine that traces the key.
pub fn run(options: &Options) -> Result<Why, Error> {
    let events = &options.events;
    events.check("why reads the events from a file or a Kafka range")?;
    if events.workers.is_some() {
        return Err(Error::new(
            ErrorKind::Usage,
            "why runs one engine: --workers is not taken",
        ));
    }
    let (key, head) = asked(options)?;
    let rules = crate::load_rules(&options.rules, &events.tell)?;
    if let Some(unknown) = (options.patterns.iter()).find(|p| rules.get(p).is_none()) {
        let names: Vec<&str> = rules.names().collect();
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--pattern {unknown}: the rule set has no such pattern (its patterns: {})",
                names.join(", ")
            ),
        ));
    }
    let trace = traced(options, &rules, key_filter(&options.key))?;
    Ok(Why {
        head,
        key,
        trace,
        notes: Vec::new(),
    })
}

/// The key asked for, and what the report names besides the trace; a key
/// that is none, or `--from` after `--to`, refused.
fn asked(options: &Options) -> Result<(Key, Header), Error> {
    let key =
        Key::parse(&options.key).map_err(|e| Error::new(ErrorKind::Usage, format!("KEY: {e}")))?;
    if let (Some(from), Some(to)) = (options.from, options.to) {
        if from > to {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--from {} is after --to {}: nothing to show",
                    when(from),
                    when(to)
                ),
            ));
        }
    }
    let head = Header {
        rules: options.rules.clone(),
        events: options.events.path.clone(),
        no_events: options.no_events,
        from: options.from,
        to: options.to,
        patterns: options.patterns.clone(),
    };
    Ok((key, head))
}

/// The filter of the engine's trace for the key `text` (parsed again:
/// the filter is the engine's to keep).
fn key_filter(text: &str) -> cepheid_engine::engine::why::KeyFilter {
    let key = Key::parse(text).unwrap_or(Key::Fields(Vec::new()));
    Box::new(move |paths, values| key.is(paths, values))
}

/// Runs the rules over the events on one engine that traces the key, as
/// `cepheid run` runs them: its limits, lists and delay.
fn traced(
    args: &Options,
    rules: &Rules,
    filter: cepheid_engine::engine::why::KeyFilter,
) -> Result<Trace<Record>, Error> {
    let tell = &args.events.tell;
    let mut config = args.events.config(&args.rules);
    if let Some(n) = args.max_runs_per_key {
        config.max_runs_per_key = n;
    }
    if let Some(n) = args.max_live_runs {
        config.max_live_runs = n;
    }
    // A Kafka range: opened now (fixed as offsets by `check`), event time
    // per partition as `cepheid run` reads a topic.
    #[cfg(feature = "kafka")]
    let kafka = args.events.open_range()?;
    #[cfg(feature = "kafka")]
    if kafka.is_some() {
        config.split_watermarks = true;
    }
    let mut engine = config.engine();
    if let Err(e) = engine.add(rules) {
        return Err(Error::new(ErrorKind::Rules, e.to_string()));
    }
    let mut said = |n: cepheid_runtime::Notice| tell!(tell, "{}", n.as_str());
    if let Err(e) = cepheid_runtime::lists::refresh(
        &config.lists,
        &mut engine,
        &mut Vec::new(),
        Timestamp::MIN,
        cepheid_runtime::lists::When::Start,
        &mut said,
    ) {
        return Err(Error::run_as(ErrorKind::Io, "", e));
    }
    let decoder = Decoder::new(
        args.events.format,
        &args.events.time_field,
        engine.fields().clone(),
    );
    let mut why = engine.why(filter);
    let mut out = Discard;
    #[cfg(feature = "kafka")]
    if let Some(source) = kafka {
        read_range(source, &config, decoder, &mut why, tell)?;
        why.finish(&mut out);
        return Ok(why.trace());
    }
    let path = &args.events.path;
    let file = std::fs::File::open(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let origin = path.display().to_string();
    let mut items = Items::new(origin.as_str(), std::io::BufReader::new(file), decoder);
    while let Some((line, item)) = items.next_with(read_line) {
        match item {
            Ok(Some(Item::Event(ts, record))) => {
                why.push(ts, record, &mut out);
            }
            Ok(Some(Item::Watermark(t))) => why.watermark(t, &mut out),
            Ok(Some(Item::Skip)) => {}
            Ok(None) => tell!(
                tell,
                "cepheid: {origin}:{line}: a control record (`$rules`, `$list`): why does not apply it; the line is left out"
            ),
            Err(e) if e.kind() == cepheid_engine::ErrorKind::Io => {
                return Err(Error::new(ErrorKind::Io, e.to_string()));
            }
            Err(e) => tell!(tell, "cepheid: {e}; the line is left out"),
        }
    }
    why.finish(&mut out);
    Ok(why.trace())
}

/// The records of a Kafka range to `why`, as `cepheid run` reads a topic
/// on one engine: each decoded by the engine's decoder; event time per
/// partition, the least of the partitions' watermarks (each its largest
/// time less `--max-delay` and 1 ms), moved as the run's reader moves it
/// (`SplitWatermarks`); control records (`$rules`, `$list`), empty
/// records and records that are not events said and left out, as lines of
/// a file are.
#[cfg(feature = "kafka")]
fn read_range(
    mut source: cepheid_kafka::KafkaSource,
    config: &cepheid_runtime::Config,
    mut decoder: Decoder,
    why: &mut cepheid_engine::engine::why::Why<Record>,
    tell: &crate::Tell,
) -> Result<(), Error> {
    use std::time::Instant;
    let max_delay = i64::try_from(config.max_delay.as_millis()).unwrap_or(i64::MAX);
    let mut splits =
        cepheid_runtime::SplitWatermarks::new(source.splits().len(), config.idle_timeout);
    let mut out = Discard;
    let mut batch = Vec::new();
    while !source.at_end() {
        batch.clear();
        let read = source.read(&mut batch, std::time::Duration::from_millis(100));
        if let Err(e) = read {
            return Err(Error::kafka(e));
        }
        for record in &batch {
            let place = || {
                let (topic, partition) = (&record.topic, record.partition);
                format!(
                    "kafka:{topic} partition {partition} offset {}",
                    record.offset
                )
            };
            let Some(payload) = record.payload.as_deref().filter(|p| !p.is_empty()) else {
                tell!(
                    tell,
                    "cepheid: {}: an empty record (a tombstone, or an empty value); the record is left out",
                    place()
                );
                continue;
            };
            match read_line(&mut decoder, payload) {
                Ok(Some(Item::Event(ts, event))) => {
                    why.push(ts, event, &mut out);
                    let t = ts.checked_sub(max_delay).and_then(|t| t.checked_sub(1));
                    if let Some(t) = t {
                        splits.update(record.split, t, Instant::now());
                    }
                    if let Some(t) = splits.advance(Instant::now()) {
                        why.watermark(t, &mut out);
                    }
                }
                Ok(Some(Item::Watermark(t))) => why.watermark(t, &mut out),
                Ok(Some(Item::Skip)) => {}
                Ok(None) => tell!(
                    tell,
                    "cepheid: {}: a control record (`$rules`, `$list`): why does not apply it; the record is left out",
                    place()
                ),
                Err(e) => tell!(tell, "cepheid: {}: {e}; the record is left out", place()),
            }
        }
    }
    Ok(())
}

/// A line as an item (`None`: a control record that changes rules or
/// lists).
fn read_line(d: &mut Decoder, text: &[u8]) -> Result<Option<Item>, cepheid_engine::Error> {
    if is_control(text) {
        return Ok(None);
    }
    d.decode(text).map(Some)
}

/// Is `text` a control record that changes rules or lists (`$rules`,
/// `$rules_file`, `$allow_empty`, `$list`: its first key)?
fn is_control(text: &[u8]) -> bool {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let Some(rest) = text.trim_ascii_start().strip_prefix(b"{") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    [
        &b"\"$rules\""[..],
        b"\"$rules_file\"",
        b"\"$allow_empty\"",
        b"\"$list\"",
    ]
    .iter()
    .any(|key| rest.starts_with(key))
}

/// The engine's records are not `why`'s output (the trace is).
struct Discard;

impl cepheid_engine::Sink<Record> for Discard {
    fn on_match(&mut self, _: &cepheid_engine::MatchRef<'_, Record>) {}
    fn on_timeout(&mut self, _: &cepheid_engine::MatchRef<'_, Record>, _: Timestamp) {}
}

/// What `why` says, of a trace.
struct Report<'a> {
    args: &'a Header,
    key: &'a Key,
    trace: &'a Trace<Record>,
    notes: &'a [String],
    /// The key's events numbered 1, 2, ... in arrival order, by their
    /// arrival number in the whole input.
    numbers: BTreeMap<u64, usize>,
    /// Each stage's condition as text, by pattern, version and stage,
    /// once made (made from the pattern's printed source: not once per
    /// event).
    conditions: std::cell::RefCell<HashMap<(String, u32, String), String>>,
}

/// A condition of a stage as `why` shows it: its text and the values it
/// read.
struct Shown {
    stage: String,
    condition: String,
    values: Vec<(String, Json)>,
    /// What it read of lists and indicators at the event (the matcher's
    /// lookups), in the order it read them.
    reads: Vec<Read>,
}

/// A value of the engine as JSON.
fn json_of(value: &Value) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// A lookup as `why` writes it among a condition's values: `"1.2.3.4" in
/// blocked_ips = false` (`(its shadow copy)` after a shadow pattern's
/// list), `logins_1h("u-9") = 6`.
fn read_text(read: &Read) -> String {
    match read {
        Read::List {
            list,
            value,
            found,
            shadow,
            expired,
        } => format!(
            "{} in {list}{} = {}{}",
            json_of(value),
            if *shadow { " (its shadow copy)" } else { "" },
            found.map_or_else(|| "null".to_string(), |f| f.to_string()),
            expired.map_or_else(String::new, |at| format!(
                " (its entry expired at {at}, {})",
                rfc3339(at)
            ))
        ),
        Read::Indicator {
            indicator,
            key,
            value,
        } => {
            let key: Vec<String> = key.iter().map(|k| json_of(k).to_string()).collect();
            format!("{indicator}({}) = {}", key.join(", "), json_of(value))
        }
        _ => format!("{read:?}"),
    }
}

/// A lookup in `why --json`: `{"list", "value", "in", "shadow_copy"}` or
/// `{"indicator", "key", "value"}`.
fn read_json(read: &Read) -> Json {
    match read {
        Read::List {
            list,
            value,
            found,
            shadow,
            expired,
        } => {
            let mut j =
                json!({"list": list, "value": json_of(value), "in": found, "shadow_copy": shadow});
            if let Some(at) = expired {
                j["expired_at"] = json!(at);
                j["expired_at_time"] = json!(rfc3339(*at));
            }
            j
        }
        Read::Indicator {
            indicator,
            key,
            value,
        } => json!({
            "indicator": indicator,
            "key": key.iter().map(json_of).collect::<Vec<_>>(),
            "value": json_of(value),
        }),
        _ => json!({"read": format!("{read:?}")}),
    }
}

impl Report<'_> {
    /// Is pattern `p` one of several versions of its name (a change of
    /// rules replaced it, or it replaced one), so that `why` says which?
    fn versioned(&self, p: &PatternTrace) -> bool {
        p.version > 1
            || (self.trace.patterns.iter()).any(|o| o.name == p.name && o.version != p.version)
    }

    /// `pattern NAME`, with its version when it has several.
    fn label(&self, p: &PatternTrace) -> String {
        match self.versioned(p) {
            true => format!("pattern {} version {}", p.name, p.version),
            false => format!("pattern {}", p.name),
        }
    }

    fn number(&self, seq: u64) -> usize {
        self.numbers.get(&seq).copied().unwrap_or(0)
    }

    fn ts(&self, seq: u64) -> Timestamp {
        self.trace.events.get(&seq).map_or(0, |(ts, _)| *ts)
    }

    fn event_json(&self, seq: u64) -> Json {
        (self.trace.events.get(&seq))
            .and_then(|(_, e)| serde_json::from_str(e.raw()).ok())
            .unwrap_or(Json::Null)
    }

    /// Stage `stage`'s condition in pattern `traced` (as its version ran),
    /// with the values it read of event `seq` (its fields) and of the
    /// partial match `run` (the last event each stage it names took).
    fn shown(&self, traced: &PatternTrace, stage: &str, seq: u64, run: Option<&RunTrace>) -> Shown {
        let mut shown = Shown {
            stage: stage.to_string(),
            condition: String::new(),
            values: Vec::new(),
            reads: Vec::new(),
        };
        let Some(p) = traced.pattern.as_deref() else {
            return shown;
        };
        let key = (traced.name.clone(), traced.version, stage.to_string());
        shown.condition = (self.conditions.borrow_mut())
            .entry(key)
            .or_insert_with(|| condition_text(p, stage))
            .clone();
        let Some(Condition::Expr(expr)) = p
            .stages
            .iter()
            .find(|s| s.name == stage)
            .map(|s| &s.condition)
        else {
            return shown;
        };
        let event = self.event_json(seq);
        shown.reads = self.lookups(traced, expr, seq, &event, run);
        let mut add = |name: String, value: Json| {
            if !shown.values.iter().any(|(n, _)| *n == name) {
                shown.values.push((name, value));
            }
        };
        expr.walk(|e| match e {
            Expr::Field(path) | Expr::Exists(path) => add(path.to_string(), at(&event, path)),
            Expr::StageField { stage, path } => {
                let name = p.stages.get(stage.index()).map_or("", |s| s.name.as_str());
                let taken = run
                    .and_then(|r| r.events.iter().rev().find(|(_, s)| s == name))
                    .map_or(Json::Null, |(seq, _)| at(&self.event_json(*seq), path));
                add(format!("{name}.{path}"), taken);
            }
            Expr::Aggregate { func, stage, path } => {
                let name = p.stages.get(stage.index()).map_or("", |s| s.name.as_str());
                let events: Vec<Json> = (run.into_iter())
                    .flat_map(|r| r.events.iter())
                    .filter(|(_, s)| s == name)
                    .map(|(seq, _)| self.event_json(*seq))
                    .collect();
                let label = match path {
                    Some(path) => format!("{}({name}.{path})", func.name()),
                    None => format!("{}({name})", func.name()),
                };
                let values: Vec<Json> = match path {
                    Some(path) => (events.iter()).map(|e| at(e, path)).collect(),
                    None => Vec::new(),
                };
                add(label, aggregate(*func, events.len(), &values));
            }
            _ => {}
        });
        shown
    }
}

/// Is a lookup one a condition made (of the list or indicator it names,
/// with the value it passes)?
type Wanted<'a> = Box<dyn Fn(&Read) -> bool + 'a>;

impl Report<'_> {
    /// The lookups of lists and indicators pattern `traced`'s matcher made
    /// at event `seq` (of `event`) that the condition `expr` names: a
    /// list's or an indicator's whose argument is a field or a stage's
    /// field, only those of the value the condition passes (`run`'s stage
    /// for a stage field); of any other argument, every lookup of it
    /// there.
    fn lookups(
        &self,
        traced: &PatternTrace,
        expr: &Expr,
        seq: u64,
        event: &Json,
        run: Option<&RunTrace>,
    ) -> Vec<Read> {
        let (Some(p), Some(made)) = (traced.pattern.as_deref(), traced.reads.get(&seq)) else {
            return Vec::new();
        };
        // The value an argument passes, when `why` can tell it.
        let argument = |arg: &Expr| -> Option<Json> {
            match arg {
                Expr::Field(path) => Some(at(event, path)),
                Expr::StageField { stage, path } => {
                    let name = p.stages.get(stage.index()).map_or("", |s| s.name.as_str());
                    let (seq, _) = run?.events.iter().rev().find(|(_, s)| s == name)?;
                    Some(at(&self.event_json(*seq), path))
                }
                _ => None,
            }
        };
        let same = |a: &Json, b: &Json| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        };
        let mut wanted: Vec<Wanted<'_>> = Vec::new();
        expr.walk(|e| match e {
            Expr::InList(arg, list) => {
                let (list, value) = (list.name.to_string(), argument(arg));
                wanted.push(Box::new(move |r| match r {
                    Read::List {
                        list: l, value: v, ..
                    } => *l == list && value.as_ref().map_or(true, |want| same(&json_of(v), want)),
                    _ => false,
                }));
            }
            Expr::Indicator(indicator, args) => {
                let name = indicator.name.to_string();
                let key: Vec<Option<Json>> = args.iter().map(argument).collect();
                wanted.push(Box::new(move |r| match r {
                    Read::Indicator {
                        indicator: i,
                        key: k,
                        ..
                    } => {
                        *i == name
                            && k.len() == key.len()
                            && (k.iter().zip(&key)).all(|(have, want)| {
                                want.as_ref()
                                    .map_or(true, |want| same(&json_of(have), want))
                            })
                    }
                    _ => false,
                }));
            }
            _ => {}
        });
        (made.iter())
            .filter(|r| wanted.iter().any(|w| w(r)))
            .cloned()
            .collect()
    }
}

/// An aggregate of the language over a stage's `count` events and their
/// `values` of its field, as `docs/semantics.md` defines it (nulls left
/// out): what a condition compared, shown as `why` computes it from the
/// events the partial match took.
fn aggregate(func: AggregateFunc, count: usize, values: &[Json]) -> Json {
    let present: Vec<&Json> = values.iter().filter(|v| !v.is_null()).collect();
    let numbers: Vec<f64> = present.iter().filter_map(|v| v.as_f64()).collect();
    let integers = present.iter().all(|v| v.is_i64());
    let number = |x: f64| {
        if integers && x.fract() == 0.0 && x.abs() < 9.0e15 {
            json!(x as i64)
        } else {
            json!(x)
        }
    };
    match func {
        AggregateFunc::Count => json!(count),
        AggregateFunc::Sum => number(numbers.iter().sum()),
        AggregateFunc::Avg if numbers.is_empty() => Json::Null,
        AggregateFunc::Avg => json!(numbers.iter().sum::<f64>() / numbers.len() as f64),
        AggregateFunc::Min => numbers
            .iter()
            .copied()
            .reduce(f64::min)
            .map_or(Json::Null, number),
        AggregateFunc::Max => numbers
            .iter()
            .copied()
            .reduce(f64::max)
            .map_or(Json::Null, number),
        AggregateFunc::First => values.first().cloned().unwrap_or(Json::Null),
        AggregateFunc::Last => values.last().cloned().unwrap_or(Json::Null),
        AggregateFunc::Distinct => {
            let mut seen: Vec<Json> = Vec::new();
            for v in present {
                if !seen.contains(v) {
                    seen.push(v.clone());
                }
            }
            Json::Array(seen)
        }
    }
}

/// For each event of pattern `p`'s trace: the partial matches that took
/// it after their first event, as `N (`stage`)`, in the order they
/// started; a fork only for the events its parent had not taken. (Made
/// once per pattern: looking through every partial match for each event
/// made `why` quadratic in the key's events.)
fn taken_by(p: &PatternTrace) -> HashMap<u64, Vec<String>> {
    let held: HashSet<(usize, u64)> = (p.runs.iter().enumerate())
        .flat_map(|(at, run)| run.events.iter().map(move |(seq, _)| (at, *seq)))
        .collect();
    let mut taken: HashMap<u64, Vec<String>> = HashMap::new();
    for run in &p.runs {
        let mut seen = HashSet::new();
        for (seq, stage) in &run.events {
            // (the first time the run took it, as a search finds it)
            if !seen.insert(*seq) {
                continue;
            }
            let first = run.events.first().is_some_and(|(s, _)| s == seq);
            let parent_has = run.from.is_some_and(|from| held.contains(&(from, *seq)));
            if !first && !parent_has {
                let by = format!("{} (`{stage}`)", run.id + 1);
                taken.entry(*seq).or_default().push(by);
            }
        }
    }
    taken
}

/// `n` things, as `1 event`, `2 events`, `2 partial matches`.
fn counted(n: usize, thing: &str) -> String {
    match (n, thing.ends_with("ch")) {
        (1, _) => format!("1 {thing}"),
        (_, true) => format!("{n} {thing}es"),
        _ => format!("{n} {thing}s"),
    }
}

/// The value at `path` of an event (null when it has none).
fn at(event: &Json, path: &FieldPath) -> Json {
    let mut v = event;
    for segment in path.segments() {
        match v.get(&**segment) {
            Some(next) => v = next,
            None => return Json::Null,
        }
    }
    v.clone()
}

/// Stage `stage`'s `where` entry of `p` as canonical text (`true` for a
/// stage without one).
fn condition_text(p: &Pattern, stage: &str) -> String {
    let Ok(source) = cepheid_syntax::pattern_source(p) else {
        return String::new();
    };
    let Ok(file) = cepheid_syntax::parse(&source) else {
        return String::new();
    };
    (file.patterns.iter())
        .flat_map(|d| d.where_entries.iter())
        .find(|e| e.name.name == stage)
        .map_or_else(
            || "true".to_string(),
            |e| cepheid_syntax::print_expr(&e.expr),
        )
}

impl Report<'_> {
    /// The header line: the key, the rules, the events, the watermark.
    fn head(&self) -> String {
        let watermark = (self.trace.watermark).map_or_else(|| "none".to_string(), when);
        let mut head = format!(
            "why {}: rules {} over {}; {} of the key, {} late; the watermark at the end: {watermark}",
            self.key.json(),
            self.args.rules.display(),
            self.args.events.display(),
            counted(self.trace.events.len(), "event"),
            self.trace.late.len(),
        );
        if self.args.narrowed() {
            let bound = |t: Option<i64>, none: &str| t.map_or_else(|| none.to_string(), when);
            head.push_str(&format!(
                "; shown: from {} to {}",
                bound(self.args.from, "the start"),
                bound(self.args.to, "the end")
            ));
        }
        if !self.args.patterns.is_empty() {
            head.push_str(&format!(
                "; patterns shown: {}",
                self.args.patterns.join(", ")
            ));
        }
        head.push('\n');
        for note in self.notes {
            head.push_str(&format!("  {note}\n"));
        }
        // (over the run, every key's: a value read may lack what they left
        // out)
        let left_out = crate::LeftOut {
            by_name: self.trace.left_out.clone(),
            ..crate::LeftOut::default()
        };
        for line in left_out.lines() {
            head.push_str(&format!("left out over the run: {line}\n"));
        }
        head
    }

    /// Is partial match `run` shown: did it live within the times shown
    /// (from its first event to what ended it, or to the end of the
    /// input)?
    fn shows_run(&self, run: &RunTrace) -> bool {
        if !self.args.narrowed() {
            return true;
        }
        let Some(&(first, _)) = run.events.first() else {
            return (self.end_time(run)).map_or(true, |t| self.args.shows(t));
        };
        let start = self.ts(first);
        let end = (self.end_time(run)).unwrap_or(Timestamp::MAX);
        self.args.from.map_or(true, |from| from <= end)
            && self.args.to.map_or(true, |to| start <= to)
    }

    /// When `run` ended (`None`: still under way at the end of the input,
    /// or ended at no time the trace says).
    fn end_time(&self, run: &RunTrace) -> Option<Timestamp> {
        match run.end.as_ref()? {
            End::Matched { at, .. } | End::WindowClosed { at, .. } | End::Discarded { at } => {
                Some(*at)
            }
            End::Held { seq }
            | End::Negation { seq, .. }
            | End::ConditionFailed { seq, .. }
            | End::NotMade { seq } => Some(self.ts(*seq)),
            End::Dropped { seq, .. } | End::Pruned { seq } => seq.map(|s| self.ts(s)),
            _ => (run.events.last()).map(|(seq, _)| self.ts(*seq)),
        }
    }

    /// A condition as a line: `stage`: text (values).
    fn condition_line(&self, c: &Shown) -> String {
        let mut line = format!("`{}`: {}", c.stage, c.condition);
        let read = !c.values.is_empty() || !c.reads.is_empty();
        if !self.args.no_events && read {
            let values: Vec<String> = (c.values.iter())
                .map(|(name, value)| format!("{name} = {value}"))
                .chain(c.reads.iter().map(read_text))
                .collect();
            line.push_str(&format!(" ({})", values.join(", ")));
        }
        line
    }

    fn at_event(&self, seq: u64) -> String {
        let ts = self.ts(seq);
        format!("#{} (ts {ts}, {})", self.number(seq), rfc3339(ts))
    }

    /// What ended a partial match, as text lines.
    fn end_text(&self, pattern: &PatternTrace, run: &RunTrace) -> Vec<String> {
        let Some(end) = &run.end else {
            return vec!["still under way at the end of the input".to_string()];
        };
        match end {
            End::Matched { seq: Some(seq), .. } => {
                vec![format!("matched at {}", self.at_event(*seq))]
            }
            End::Matched { seq: None, at } => {
                vec![format!("matched when time reached {}", when(*at))]
            }
            End::Held { seq } => vec![format!(
                "complete at {}, held back by the skip strategy to the end",
                self.at_event(*seq)
            )],
            End::WindowClosed { at, reported } => vec![format!(
                "its window closed at {}, {}",
                when(*at),
                if *reported {
                    "reported as a timeout"
                } else {
                    "no timeout record: the pattern does not ask for `timeouts`"
                }
            )],
            End::Negation { seq, stage } => vec![
                format!("ended at {}: the negated stage held", self.at_event(*seq)),
                self.condition_line(&self.shown(pattern, stage, *seq, Some(run))),
            ],
            End::ConditionFailed { seq, waiting } => {
                let mut lines = vec![format!(
                    "ended at {}: no condition it waited on held, and it could not skip the event",
                    self.at_event(*seq)
                )];
                for stage in waiting {
                    lines.push(self.condition_line(&self.shown(pattern, stage, *seq, Some(run))));
                }
                lines
            }
            End::Dropped { seq, capped } => vec![format!(
                "dropped{} by the limit on partial matches {}",
                seq.map_or_else(String::new, |s| format!(" at {}", self.at_event(s))),
                if *capped {
                    "over all keys (max_live_runs)"
                } else {
                    "per key (max_runs_per_key)"
                }
            )],
            End::Pruned { seq } => vec![format!(
                "pruned by the skip strategy{}",
                seq.map_or_else(String::new, |s| format!(" at {}", self.at_event(s)))
            )],
            End::Discarded { at } => vec![format!(
                "dropped by the change of rules at {}: its pattern was removed, or replaced and restarted",
                when(*at)
            )],
            End::NotMade { seq } => vec![format!(
                "complete at {}, not made: the event does not enter scene `{}`, and this instance of the rule fires only on its scene's events",
                self.at_event(*seq),
                (pattern.name.rsplit_once('@')).map_or(pattern.name.as_str(), |(_, scene)| scene)
            )],
            _ => vec![format!("{end:?}")],
        }
    }

    fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = self.head();
        for late in (self.trace.late.iter()).filter(|l| self.args.shows(l.ts)) {
            let w = late.watermark.map_or_else(|| "none".to_string(), when);
            let _ = write!(
                out,
                "late: ts {}, at or below the watermark {w}",
                when(late.ts)
            );
            if !self.args.no_events {
                let _ = write!(out, ": {}", late.event.raw());
            }
            out.push('\n');
        }
        for p in (self.trace.patterns.iter()).filter(|p| self.args.shows_pattern(&p.name)) {
            out.push('\n');
            let Some(paths) = self.traced_paths(p) else {
                let _ = writeln!(out, "{}: {}", self.label(p), self.untraced(p));
                continue;
            };
            let reached: Vec<&Reached> = (p.reached.iter())
                .filter(|r| self.args.shows(r.ts))
                .collect();
            let runs: Vec<&RunTrace> = p.runs.iter().filter(|r| self.shows_run(r)).collect();
            let _ = write!(
                out,
                "{} (partition by {paths}): {} of the key reached it, {}",
                self.label(p),
                counted(reached.len(), "event"),
                counted(runs.len(), "partial match"),
            );
            if self.args.narrowed() {
                let _ = write!(
                    out,
                    " in the times shown (in all: {}, {})",
                    counted(p.reached.len(), "event"),
                    counted(p.runs.len(), "partial match"),
                );
            }
            out.push('\n');
            let taken_by = taken_by(p);
            for r in reached {
                let _ = write!(out, "  #{} ts {}: ", self.number(r.seq), when(r.ts));
                if let Some(taken) = taken_by.get(&r.seq) {
                    let _ = write!(out, "taken by partial match {}; ", taken.join(", "));
                }
                if r.started {
                    out.push_str("started a partial match");
                } else if r.not_taken.is_empty() {
                    out.push_str("started nothing");
                } else {
                    out.push_str("started nothing: no condition of a first stage held");
                }
                if !self.args.no_events {
                    let raw = self.trace.events.get(&r.seq).map_or("", |(_, e)| e.raw());
                    let _ = write!(out, "  {raw}");
                }
                out.push('\n');
                let mut said: Vec<Read> = Vec::new();
                for stage in &r.not_taken {
                    let shown = self.shown(p, stage, r.seq, None);
                    let _ = writeln!(out, "      {}", self.condition_line(&shown));
                    said.extend(shown.reads);
                }
                // (what the other conditions read at the event: those that
                // held, and those of partial matches that went on without it)
                let rest: Vec<String> = (p.reads.get(&r.seq).into_iter().flatten())
                    .filter(|read| !said.contains(read))
                    .map(read_text)
                    .collect();
                if !self.args.no_events && !rest.is_empty() {
                    let _ = writeln!(out, "      read: {}", rest.join(", "));
                }
            }
            for run in runs {
                let events: Vec<String> = (run.events.iter())
                    .map(|(seq, stage)| format!("{stage} {}", self.at_event(*seq)))
                    .collect();
                let from = run
                    .from
                    .map_or_else(String::new, |f| format!(" (from {})", f + 1));
                let _ = writeln!(
                    out,
                    "  partial match {}{from}: {}",
                    run.id + 1,
                    events.join(", ")
                );
                for line in self.end_text(p, run) {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        out
    }

    /// The pattern's `partition by` fields when the key is one of its keys.
    fn traced_paths(&self, traced: &PatternTrace) -> Option<String> {
        let p = traced.pattern.as_deref()?;
        (traced.keyed && self.key.applies(&p.partition_by)).then(|| {
            (p.partition_by.iter())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// Why a pattern is not traced.
    fn untraced(&self, traced: &PatternTrace) -> String {
        if !traced.keyed {
            return "not partitioned (one partition for every event): not traced".to_string();
        }
        let fields = (traced.pattern.iter().flat_map(|p| &p.partition_by))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        format!("partitioned by {fields}: the key is not one of its keys")
    }

    fn condition_json(&self, c: &Shown) -> Json {
        let mut j = json!({"stage": c.stage, "condition": c.condition});
        if !self.args.no_events {
            j["values"] = Json::Object(c.values.iter().cloned().collect());
            if !c.reads.is_empty() {
                j["reads"] = c.reads.iter().map(read_json).collect();
            }
        }
        j
    }

    fn end_json(&self, pattern: &PatternTrace, run: &RunTrace) -> Json {
        let n = |seq: &u64| json!(self.number(*seq));
        let n_opt = |seq: &Option<u64>| seq.as_ref().map_or(Json::Null, n);
        let Some(end) = &run.end else {
            return Json::Null;
        };
        match end {
            End::Matched { seq, at } => json!({
                "kind": "matched", "event": n_opt(seq), "at": at, "at_time": rfc3339(*at),
            }),
            End::Held { seq } => json!({"kind": "held", "event": n(seq)}),
            End::WindowClosed { at, reported } => {
                json!({"kind": "window_closed", "at": at, "at_time": rfc3339(*at),
                    "timeout_record": reported})
            }
            End::Negation { seq, stage } => json!({
                "kind": "negation", "event": n(seq), "ts": self.ts(*seq),
                "time": rfc3339(self.ts(*seq)),
                "negated": self.condition_json(&self.shown(pattern, stage, *seq, Some(run))),
            }),
            End::ConditionFailed { seq, waiting } => json!({
                "kind": "condition_failed", "event": n(seq), "ts": self.ts(*seq),
                "time": rfc3339(self.ts(*seq)),
                "conditions": (waiting.iter())
                    .map(|s| self.condition_json(&self.shown(pattern, s, *seq, Some(run))))
                    .collect::<Vec<_>>(),
            }),
            End::Dropped { seq, capped } => json!({
                "kind": "dropped", "event": n_opt(seq),
                "limit": if *capped { "max_live_runs" } else { "max_runs_per_key" },
            }),
            End::Pruned { seq } => json!({"kind": "pruned", "event": n_opt(seq)}),
            End::Discarded { at } => {
                json!({"kind": "discarded", "at": at, "at_time": rfc3339(*at)})
            }
            End::NotMade { seq } => json!({"kind": "not_made", "event": n(seq),
                "ts": self.ts(*seq), "time": rfc3339(self.ts(*seq))}),
            _ => json!({"kind": format!("{end:?}")}),
        }
    }

    fn json(&self) -> Json {
        let events: Vec<Json> = (self.trace.events.iter())
            .filter(|(_, (ts, _))| self.args.shows(*ts))
            .map(|(seq, (ts, _))| {
                let mut e = json!({"n": self.number(*seq), "ts": ts, "time": rfc3339(*ts)});
                if !self.args.no_events {
                    e["event"] = self.event_json(*seq);
                }
                e
            })
            .collect();
        let late: Vec<Json> = (self.trace.late.iter())
            .filter(|l| self.args.shows(l.ts))
            .map(|l| {
                let mut e = json!({"ts": l.ts, "time": rfc3339(l.ts), "watermark": l.watermark});
                if !self.args.no_events {
                    e["event"] = serde_json::from_str(l.event.raw()).unwrap_or(Json::Null);
                }
                e
            })
            .collect();
        let patterns: Vec<Json> = (self.trace.patterns.iter())
            .filter(|p| self.args.shows_pattern(&p.name))
            .map(|p| {
                let Some(_) = self.traced_paths(p) else {
                    let mut j = json!({"pattern": p.name, "traced": false,
                        "why": self.untraced(p)});
                    if self.versioned(p) {
                        j["version"] = json!(p.version);
                    }
                    return j;
                };
                let reached: Vec<Json> = (p.reached.iter())
                    .filter(|r| self.args.shows(r.ts))
                    .map(|r| {
                        let mut j = json!({
                            "event": self.number(r.seq), "ts": r.ts, "time": rfc3339(r.ts),
                            "started": r.started,
                            "not_taken": (r.not_taken.iter())
                                .map(|s| self.condition_json(&self.shown(p, s, r.seq, None)))
                                .collect::<Vec<_>>(),
                        });
                        let reads = p.reads.get(&r.seq).filter(|reads| !reads.is_empty());
                        if let (false, Some(reads)) = (self.args.no_events, reads) {
                            j["reads"] = reads.iter().map(read_json).collect();
                        }
                        j
                    })
                    .collect();
                let runs: Vec<Json> = (p.runs.iter())
                    .filter(|run| self.shows_run(run))
                    .map(|run| json!({
                        "id": run.id + 1,
                        "from": run.from.map(|f| f + 1),
                        "events": (run.events.iter())
                            .map(|(seq, stage)| json!({"event": self.number(*seq), "ts": self.ts(*seq),
                                "time": rfc3339(self.ts(*seq)), "stage": stage}))
                            .collect::<Vec<_>>(),
                        "end": self.end_json(p, run),
                    }))
                    .collect();
                let mut j = json!({"pattern": p.name, "traced": true, "reached": reached,
                    "partial_matches": runs});
                if self.versioned(p) {
                    j["version"] = json!(p.version);
                }
                if self.args.narrowed() {
                    j["in_all"] = json!({"reached": p.reached.len(), "partial_matches": p.runs.len()});
                }
                j
            })
            .collect();
        let mut j = json!({
            "key": self.key.json(),
            "rules": self.args.rules.display().to_string(),
            "events": self.args.events.display().to_string(),
            "watermark": self.trace.watermark,
            "watermark_time": self.trace.watermark.map(rfc3339),
            "key_events": events,
            "late": late,
            "patterns": patterns,
        });
        if self.args.narrowed() {
            j["shown"] = json!({"from": self.args.from, "to": self.args.to});
        }
        if !self.args.patterns.is_empty() {
            j["patterns_shown"] = json!(self.args.patterns);
        }
        if !self.notes.is_empty() {
            j["notes"] = json!(self.notes);
        }
        let left_out = &self.trace.left_out;
        if !left_out.is_empty() {
            // (over the run, every key's; only when something was)
            let named = |map: &std::collections::BTreeMap<
                String,
                cepheid_engine::engine::LeftOutCounts,
            >,
                         words: [&str; 2]| {
                (map.iter())
                    .map(|(name, c)| {
                        (
                            name.clone(),
                            json!({ words[0]: c.limit, words[1]: c.value }),
                        )
                    })
                    .collect::<serde_json::Map<String, Json>>()
            };
            j["left_out"] = json!({
                "lists": named(&left_out.lists, ["adds_refused", "values_refused"]),
                "indicators": named(&left_out.indicators, ["entries_refused", "not_numeric"]),
            });
        }
        j
    }
}
