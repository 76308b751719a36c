//! The JSON-lines output of `cepheid run` (see `cli.md`): one record per
//! match, timeout or late event, with every event reproduced exactly as it
//! was read.
//!
//! ```text
//! {"kind":"match","pattern":"p","key":{"user_id":"u1"},"start":1,"end":3,"events":{"fail":[{..},{..}]},"select":{..}}
//! {"kind":"timeout","pattern":"p","key":{..},"start":5,"expired_at":905,"events":{"created":[{..}]}}
//! {"kind":"late","event":{..}}
//! ```

use std::io::{self, Write};

use cepheid_core::value::json::{push_int, push_json_string, push_json_value};
use cepheid_core::{FieldPath, Record, Timestamp};
use cepheid_engine::{Decision, Fired, MatchRef, Sink};

/// Which output of a [`JsonLines`] could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Matches and timeouts.
    Main,
    /// Late events.
    Late,
}

/// A write error of a [`JsonLines`]: which output, and the error.
#[derive(Debug)]
pub struct WriteError {
    /// The output written to.
    pub target: Target,
    /// The error.
    pub source: io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let which = match self.target {
            Target::Main => "the output",
            Target::Late => "the late output",
        };
        write!(f, "cannot write {which}: {}", self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A [`Sink`] writing JSON lines: matches and timeouts to `out`, late events
/// to `late` when given (else they are only counted by the engine).
///
/// Writing cannot fail inside a sink call; the first error is kept (and
/// later output dropped) until [`JsonLines::take_error`] reports it.
pub struct JsonLines<W: Write, L: Write> {
    out: W,
    late: Option<L>,
    format: Formatter,
    error: Option<WriteError>,
}

impl<W: Write, L: Write> JsonLines<W, L> {
    /// A sink over these writers (buffer them: one `write_all` per record).
    pub fn new(out: W, late: Option<L>) -> JsonLines<W, L> {
        JsonLines {
            out,
            late,
            format: Formatter::default(),
            error: None,
        }
    }

    /// The first write error, if any.
    pub fn take_error(&mut self) -> Option<WriteError> {
        self.error.take()
    }

    /// Flushes both outputs (the first write error first).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let failed = |target| move |source| WriteError { target, source };
        self.out.flush().map_err(failed(Target::Main))?;
        if let Some(late) = &mut self.late {
            late.flush().map_err(failed(Target::Late))?;
        }
        Ok(())
    }

    fn emit(&mut self, to_late: bool) {
        if self.error.is_some() {
            return;
        }
        let line = &self.format.line;
        let result = match (to_late, &mut self.late) {
            (false, _) => self.out.write_all(line),
            (true, Some(late)) => late.write_all(line),
            (true, None) => Ok(()),
        };
        if let Err(source) = result {
            let target = if to_late { Target::Late } else { Target::Main };
            self.error = Some(WriteError { target, source });
        }
    }
}

impl<W: Write, L: Write> Sink<Record> for JsonLines<W, L> {
    fn on_match(&mut self, m: &MatchRef<'_, Record>) {
        self.format.record("match", m, None);
        self.emit(false);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, Record>, expired_at: Timestamp) {
        self.format.record("timeout", m, Some(expired_at));
        self.emit(false);
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        if self.late.is_none() {
            return;
        }
        self.format.late(event);
        self.emit(true);
    }
}

/// The records of [`JsonLines`] (`cli.md`), made one at a time into a
/// buffer it reuses, for a sink of one's own: each method returns the
/// record's line, its newline included.
#[derive(Default)]
pub struct Formatter {
    line: Vec<u8>,
    names: NameCache,
    /// Where the `key` object is in `line`.
    key: std::ops::Range<usize>,
}

impl Formatter {
    /// The record of a match (`kind` `"match"`) or of a timeout (`kind`
    /// `"timeout"`, with the time it expired at).
    pub fn record(
        &mut self,
        kind: &str,
        m: &MatchRef<'_, Record>,
        expired_at: Option<Timestamp>,
    ) -> &[u8] {
        let names = self.names.get(m);
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"kind\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"pattern\":");
        line.extend_from_slice(&names.pattern);
        if let Some(scene) = &names.scene {
            // (only for a rule's instance, `rule@scene`: issue 62)
            line.extend_from_slice(b",\"scene\":");
            line.extend_from_slice(scene);
        }
        if m.versioned() {
            // (only for a name replaced in this run: `docs/dynamic-rules.md`)
            line.extend_from_slice(b",\"version\":");
            push_int(line, i64::from(m.version()));
        }
        if let Some(branches) = m.branches() {
            // (only for a pattern with alternation: `docs/semantics.md`)
            line.extend_from_slice(b",\"branch\":[");
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                match b {
                    Some(b) => push_int(line, i64::from(*b)),
                    None => line.extend_from_slice(b"null"),
                }
            }
            line.push(b']');
        }
        line.extend_from_slice(b",\"key\":");
        let key_start = line.len();
        line.push(b'{');
        for (i, (field, value)) in names.key_fields.iter().zip(m.key()).enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(field);
            push_json_value(line, value);
        }
        line.push(b'}');
        self.key = key_start..line.len();
        line.extend_from_slice(b",\"start\":");
        push_int(line, m.start());
        match expired_at {
            Some(t) => {
                line.extend_from_slice(b",\"expired_at\":");
                push_int(line, t);
            }
            None => {
                line.extend_from_slice(b",\"end\":");
                push_int(line, m.end());
            }
        }
        line.extend_from_slice(b",\"events\":{");
        let mut first_stage = true;
        m.for_each_stage(|name, events| {
            if !first_stage {
                line.push(b',');
            }
            first_stage = false;
            push_json_string(line, name);
            line.extend_from_slice(b":[");
            for (i, event) in events.enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(event.raw().as_bytes());
            }
            line.push(b']');
        });
        line.push(b'}');
        if m.has_select() && expired_at.is_none() {
            push_object(
                line,
                b",\"select\":{",
                m.select().iter().map(|(n, v)| (&n[..], v)),
            );
        }
        push_rule(line, m);
        line.extend_from_slice(b"}\n");
        &self.line
    }

    /// The record of a late event.
    pub fn late(&mut self, event: &Record) -> &[u8] {
        self.line.clear();
        self.line
            .extend_from_slice(b"{\"kind\":\"late\",\"event\":");
        self.line.extend_from_slice(event.raw().as_bytes());
        self.line.extend_from_slice(b"}\n");
        self.key = 0..0;
        &self.line
    }

    /// The record of a decision (`docs/decisions.md`): `{"kind":
    /// "decision", "scene", "event" (or "position"), "ts", "outcome",
    /// "score", "rules", ...}`; its [`key`](Formatter::key) is the
    /// event's id (its JSON).
    pub fn decision(&mut self, d: &Decision) -> &[u8] {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"kind\":\"decision\",\"scene\":");
        push_json_string(line, &d.scene);
        line.extend_from_slice(if d.by_position {
            b",\"position\":"
        } else {
            b",\"event\":"
        });
        let id = line.len();
        push_json_value(line, &d.event);
        let id = id..line.len();
        line.extend_from_slice(b",\"ts\":");
        push_int(line, d.ts);
        line.extend_from_slice(b",\"outcome\":");
        push_json_string(line, &d.outcome);
        line.extend_from_slice(b",\"score\":");
        push_score(line, d.score);
        push_fired(line, b",\"rules\":[", &d.rules);
        if !d.shadow.is_empty() {
            push_fired(line, b",\"shadow\":[", &d.shadow);
        }
        if let Some(list) = &d.list {
            line.extend_from_slice(b",\"list\":");
            push_json_string(line, list);
        }
        if d.late {
            line.extend_from_slice(b",\"late\":true");
        }
        if !d.missing.is_empty() {
            line.extend_from_slice(b",\"missing\":[");
            for (i, field) in d.missing.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_json_string(line, field);
            }
            line.push(b']');
        }
        line.extend_from_slice(b"}\n");
        // (its key is the event's id: a sink keyed by it, a Kafka topic,
        // puts an event's decisions in one partition, in order)
        self.key = id;
        &self.line
    }

    /// The last record made, its newline included.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The last record's `key` object (`{"user":"bob"}`; empty for a late
    /// event).
    pub fn key(&self) -> &[u8] {
        &self.line[self.key.clone()]
    }

    /// Where [`Formatter::key`] is in [`Formatter::line`].
    pub fn key_range(&self) -> std::ops::Range<usize> {
        self.key.clone()
    }
}

/// A score: an integer when it is one (`70`, not `70.0`), else the
/// float's JSON.
fn push_score(line: &mut Vec<u8>, score: f64) {
    if score.fract() == 0.0 && score.abs() < 9.0e15 {
        push_int(line, score as i64);
    } else {
        push_json_value(line, &cepheid_core::Value::Float(score));
    }
}

/// `opening` (`,"rules":[`), then each fired rule's object, then `]`.
fn push_fired(line: &mut Vec<u8>, opening: &[u8], rules: &[Fired]) {
    line.extend_from_slice(opening);
    for (i, f) in rules.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(b"{\"rule\":");
        push_json_string(line, &f.rule);
        line.extend_from_slice(b",\"version\":");
        push_int(line, i64::from(f.version));
        if let Some(action) = &f.action {
            line.extend_from_slice(b",\"action\":");
            push_json_string(line, action);
        }
        if let Some(score) = f.score {
            line.extend_from_slice(b",\"score\":");
            push_score(line, score);
        }
        if !f.counted {
            line.extend_from_slice(b",\"counted\":false");
        }
        if !f.reads.is_empty() {
            push_object(
                line,
                b",\"reads\":{",
                f.reads.iter().map(|(n, v)| (&n[..], v)),
            );
        }
        line.push(b'}');
    }
    line.push(b']');
}

/// `opening` (`,"select":{`), then each `name: value`, then `}`.
fn push_object<'a>(
    line: &mut Vec<u8>,
    opening: &[u8],
    entries: impl Iterator<Item = (&'a str, &'a cepheid_core::Value)>,
) {
    line.extend_from_slice(opening);
    for (i, (name, value)) in entries.enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_json_string(line, name);
        line.push(b':');
        push_json_value(line, value);
    }
    line.push(b'}');
}

/// A record's `"rule"` (the pattern's attributes and version, when it has
/// attributes) and `"reads"` (what its conditions read of lists and
/// indicators, when they read any): nothing for any other pattern, whose
/// records keep their format byte for byte.
fn push_rule(line: &mut Vec<u8>, m: &MatchRef<'_, Record>) {
    let a = m.attributes();
    if !a.is_empty() {
        line.extend_from_slice(b",\"rule\":{");
        let mut first = true;
        let mut field = |line: &mut Vec<u8>, name: &str| {
            if !first {
                line.push(b',');
            }
            first = false;
            push_json_string(line, name);
            line.push(b':');
        };
        if let Some(score) = &a.score {
            field(line, "score");
            push_json_value(line, score);
        }
        if let Some(level) = &a.level {
            field(line, "level");
            push_json_string(line, level);
        }
        if let Some(action) = &a.action {
            field(line, "action");
            push_json_string(line, action);
        }
        if !a.tags.is_empty() {
            field(line, "tags");
            line.push(b'[');
            for (i, t) in a.tags.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_json_string(line, t);
            }
            line.push(b']');
        }
        field(line, "version");
        push_int(line, i64::from(m.version()));
        line.push(b'}');
    }
    // (asked only of a pattern that reads: no vector to drop per record)
    if m.has_reads() {
        let reads = m.reads();
        if !reads.is_empty() {
            push_object(
                line,
                b",\"reads\":{",
                reads.iter().map(|(n, v)| (&n[..], v)),
            );
        }
    }
}

/// The JSON text of each pattern's name and `partition by` field names,
/// made once per pattern instead of once per record.
#[derive(Default)]
struct NameCache {
    /// Indexed by pattern number.
    patterns: Vec<Option<PatternNames>>,
}

/// One pattern's names as JSON.
struct PatternNames {
    /// The name as given (to notice a different engine's pattern).
    name: Box<str>,
    /// The key fields as given (same reason).
    fields: Vec<FieldPath>,
    /// The name as a JSON string.
    pattern: Vec<u8>,
    /// For an instance of a rule with parameters (`rule@scene`), its
    /// scene's name as a JSON string.
    scene: Option<Vec<u8>>,
    /// Each key field as a JSON string followed by `:`.
    key_fields: Vec<Vec<u8>>,
}

impl NameCache {
    /// The names of the pattern of `m`, made on first use.
    fn get<E>(&mut self, m: &MatchRef<'_, E>) -> &PatternNames {
        let index = m.pattern_index();
        if self.patterns.len() <= index {
            self.patterns.resize_with(index + 1, || None);
        }
        let slot = &mut self.patterns[index];
        let fresh =
            matches!(slot, Some(n) if *n.name == *m.pattern() && n.fields == m.key_fields());
        if !fresh {
            *slot = Some(PatternNames::new(m.pattern(), m.key_fields()));
        }
        slot.as_ref().expect("filled just above")
    }
}

impl PatternNames {
    fn new(name: &str, fields: &[FieldPath]) -> PatternNames {
        let mut pattern = Vec::new();
        push_json_string(&mut pattern, name);
        let key_fields = fields
            .iter()
            .map(|path| {
                let mut field = Vec::new();
                push_json_string(&mut field, &path.to_string());
                field.push(b':');
                field
            })
            .collect();
        let scene = name.split_once('@').map(|(_, scene)| {
            let mut text = Vec::new();
            push_json_string(&mut text, scene);
            text
        });
        PatternNames {
            name: name.into(),
            fields: fields.to_vec(),
            pattern,
            scene,
            key_fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use cepheid_core::value::Value;
    use cepheid_engine::Match;

    /// A match of pattern `name` from 1 to 3, keyed by `key_fields` =
    /// `key`: its stage `a` took the two events, its stage `b"` none
    /// (version 1, no `select` values, no attributes).
    fn two(name: &str, key_fields: &[&str], key: Vec<Value>, events: [Record; 2]) -> Match<Record> {
        Match {
            pattern: name.to_string(),
            key_fields: key_fields.iter().map(|f| f.to_string()).collect(),
            key,
            start: 1,
            end: 3,
            stages: vec![("a".into(), events.to_vec()), ("b\"".into(), Vec::new())],
            select: Vec::new(),
            version: 1,
            versioned: false,
            branch: None,
            attributes: Default::default(),
            reads: Vec::new(),
        }
    }

    #[test]
    fn records_are_written_as_cli_md_says() {
        let rec = |raw: &str| Record::new(Vec::new(), Arc::from(raw));
        let events = [rec(r#"{"ts":1}"#), rec(r#"{"ts":3,"x":"é"}"#)];
        let mut m = two("p", &["user.id"], vec![Value::from("u1")], events);
        m.select = vec![("n".into(), Value::Int(2))];
        let mut sink: JsonLines<Vec<u8>, Vec<u8>> = JsonLines::new(Vec::new(), Some(Vec::new()));
        MatchRef::of_owned(&m, 0, |m| sink.on_match(m));
        MatchRef::of_owned(&m, 0, |m| sink.on_timeout(m, 9));
        sink.on_late(0, &rec("{}"));
        let out = String::from_utf8(sink.out.clone()).unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"kind":"match","pattern":"p","key":{"user.id":"u1"},"start":1,"end":3,"events":{"a":[{"ts":1},{"ts":3,"x":"é"}],"b\"":[]},"select":{"n":2}}"#,
                "\n",
                r#"{"kind":"timeout","pattern":"p","key":{"user.id":"u1"},"start":1,"expired_at":9,"events":{"a":[{"ts":1},{"ts":3,"x":"é"}],"b\"":[]}}"#,
                "\n"
            )
        );
        assert_eq!(
            String::from_utf8(sink.late.clone().unwrap()).unwrap(),
            "{\"kind\":\"late\",\"event\":{}}\n"
        );
        // The formatter alone: the same line, and where its key is.
        let mut format = Formatter::default();
        let line = MatchRef::of_owned(&m, 0, |m| format.record("match", m, None).to_vec());
        assert_eq!(
            line,
            out.lines()
                .next()
                .unwrap()
                .as_bytes()
                .iter()
                .chain(b"\n")
                .copied()
                .collect::<Vec<u8>>()
        );
        assert_eq!(format.key(), br#"{"user.id":"u1"}"#);
        format.late(&rec("{}"));
        assert_eq!(format.key(), b"");
    }

    /// The key's place in a record's text is its `key` object whatever
    /// its pattern's name and its values hold (quotes, braces, `"key":{`
    /// itself, escapes), with or without a version; a late record has
    /// none.
    #[test]
    fn a_records_key_range_is_its_key_object_whatever_the_names_hold() {
        let rec = |raw: &str| Record::new(Vec::new(), Arc::from(raw));
        let events = [rec(r#"{"ts":1,"key":{"a":1}}"#), rec("{}")];
        let names = ["p", r#"x","key":{"y":"#, "}{\\\"", "é\n"];
        let values = [
            Value::from("u1"),
            Value::from(r#"}{"key":{"#),
            Value::from("\\"),
            Value::Int(-42),
            Value::Bool(true),
            Value::Null,
        ];
        let fields = ["user.id", "b\"}"];
        let mut format = Formatter::default();
        for name in names {
            for (i, value) in values.iter().enumerate() {
                for versioned in [false, true] {
                    let key = vec![value.clone(), values[(i + 1) % values.len()].clone()];
                    let mut m = two(name, &fields, key, events.clone());
                    (m.version, m.versioned) = (12, versioned);
                    for expired in [None, Some(9)] {
                        let kind = if expired.is_some() {
                            "timeout"
                        } else {
                            "match"
                        };
                        let line =
                            MatchRef::of_owned(&m, 0, |m| format.record(kind, m, expired).to_vec());
                        let range = format.key_range();
                        assert_eq!(&line[range.clone()], format.key());
                        let whole: serde_json::Value = serde_json::from_slice(&line).unwrap();
                        let key: serde_json::Value = serde_json::from_slice(&line[range])
                            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)));
                        assert_eq!(key, whole["key"], "{}", String::from_utf8_lossy(&line));
                    }
                }
            }
        }
        format.late(&rec(r#"{"kind":"match","pattern":"p","key":{}}"#));
        assert!(format.key_range().is_empty());
    }

    #[test]
    fn names_are_cached_per_pattern_and_refreshed_when_they_change() {
        let m = |name| two(name, &["a\"b"], Vec::new(), Default::default());
        let mut cache = NameCache::default();
        let (c2, c0, c2b) = (m("p"), m("q\n"), m("other"));
        // The cached names of `m` as pattern number `pattern`: its name
        // and its key fields, as JSON.
        let mut at = |m, pattern| {
            MatchRef::of_owned(m, pattern, |m| {
                let names = cache.get(m);
                (names.pattern.clone(), names.key_fields.clone())
            })
        };
        assert_eq!(at(&c2, 2).0, b"\"p\"");
        assert_eq!(at(&c2, 2).1, [b"\"a\\\"b\":".to_vec()]);
        assert_eq!(at(&c0, 0).0, b"\"q\\n\"");
        assert_eq!(at(&c2b, 2).0, b"\"other\"");
    }

    /// Writes fail after `budget` bytes.
    struct Full(usize);

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.0 {
                return Err(io::Error::other("No space left on device"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_says_which_output_and_keeps_the_first() {
        let rec = |raw: &str| Record::new(Vec::new(), Arc::from(raw));
        fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
        let mut sink: JsonLines<Vec<u8>, Full> = JsonLines::new(Vec::new(), Some(Full(3)));
        sink.on_late(0, &rec(r#"{"ts":1}"#));
        sink.on_late(0, &rec(r#"{"ts":2}"#));
        let e = sink.flush().unwrap_err();
        is_error(&e);
        assert_eq!(e.target, Target::Late);
        assert_eq!(
            e.to_string(),
            "cannot write the late output: No space left on device"
        );
        assert!(sink.flush().is_ok(), "the error was taken");

        let mut sink: JsonLines<Full, Vec<u8>> = JsonLines::new(Full(0), None);
        sink.on_late(0, &rec("{}"));
        assert!(
            sink.take_error().is_none(),
            "no late output: nothing written"
        );
        let m = two(
            "p",
            &[],
            Vec::new(),
            [rec(r#"{"ts":1}"#), rec(r#"{"ts":3}"#)],
        );
        MatchRef::of_owned(&m, 0, |m| sink.on_match(m));
        let e = sink.take_error().unwrap();
        assert_eq!(e.target, Target::Main);
        assert!(std::error::Error::source(&e).is_some());
    }
}
