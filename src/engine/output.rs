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

use crate::engine::automaton::{Automaton, MatchAccess};
use crate::engine::sink::{MatchContext, Sink};
use crate::event::{Record, Timestamp};

/// A [`Sink`] writing JSON lines: matches and timeouts to `out`, late events
/// to `late` when given (else they are only counted by the engine).
///
/// Writing cannot fail inside a sink call; the first error is kept (and
/// later output dropped) until [`JsonLines::take_error`] reports it.
pub struct JsonLines<W: Write, L: Write> {
    out: W,
    late: Option<L>,
    line: Vec<u8>,
    error: Option<(bool, io::Error)>,
}

impl<W: Write, L: Write> JsonLines<W, L> {
    /// A sink over these writers (buffer them: one `write_all` per record).
    pub fn new(out: W, late: Option<L>) -> JsonLines<W, L> {
        JsonLines {
            out,
            late,
            line: Vec::with_capacity(1024),
            error: None,
        }
    }

    /// The first write error, if any, and whether it was on the late
    /// output (`true`) or the main output (`false`).
    pub fn take_error(&mut self) -> Option<(bool, io::Error)> {
        self.error.take()
    }

    /// Flushes both outputs.
    pub fn flush(&mut self) -> Result<(), (bool, io::Error)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush().map_err(|e| (false, e))?;
        if let Some(late) = &mut self.late {
            late.flush().map_err(|e| (true, e))?;
        }
        Ok(())
    }

    fn emit(&mut self, to_late: bool) {
        self.line.push(b'\n');
        if self.error.is_some() {
            return;
        }
        let result = match (to_late, &mut self.late) {
            (false, _) => self.out.write_all(&self.line),
            (true, Some(late)) => late.write_all(&self.line),
            (true, None) => Ok(()),
        };
        if let Err(e) = result {
            self.error = Some((to_late, e));
        }
    }

    fn write_record(
        &mut self,
        kind: &str,
        ctx: &MatchContext<'_>,
        m: &dyn MatchAccess<Record>,
        expired_at: Option<Timestamp>,
    ) {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"kind\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"pattern\":");
        push_json_string(line, ctx.name);
        line.extend_from_slice(b",\"key\":{");
        for (i, (path, value)) in ctx.key_fields.iter().zip(ctx.key.iter()).enumerate() {
            if i > 0 {
                line.push(b',');
            }
            push_json_string(line, &path.to_string());
            line.push(b':');
            line.extend_from_slice(value.to_json().to_string().as_bytes());
        }
        line.extend_from_slice(format!("}},\"start\":{}", m.start()).as_bytes());
        match expired_at {
            Some(t) => line.extend_from_slice(format!(",\"expired_at\":{t}").as_bytes()),
            None => line.extend_from_slice(format!(",\"end\":{}", m.end()).as_bytes()),
        }
        line.extend_from_slice(b",\"events\":{");
        let mut first_stage = true;
        m.visit_stages(&mut |name, events| {
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
        if ctx.has_select && expired_at.is_none() {
            line.extend_from_slice(b",\"select\":{");
            for (i, (name, value)) in m.select().iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_json_string(line, name);
                line.push(b':');
                line.extend_from_slice(value.to_json().to_string().as_bytes());
            }
            line.push(b'}');
        }
        line.push(b'}');
        self.emit(false);
    }
}

impl<W: Write, L: Write, A: Automaton<Record>> Sink<Record, A> for JsonLines<W, L> {
    fn on_match(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>) {
        self.write_record("match", ctx, m, None);
    }

    fn on_timeout(&mut self, ctx: &MatchContext<'_>, m: &A::View<'_>, expired_at: Timestamp) {
        self.write_record("timeout", ctx, m, Some(expired_at));
    }

    fn on_late(&mut self, _ts: Timestamp, event: &Record) {
        self.write_late(event);
    }
}

impl<W: Write, L: Write> JsonLines<W, L> {
    fn write_late(&mut self, event: &Record) {
        if self.late.is_none() {
            return;
        }
        self.line.clear();
        self.line
            .extend_from_slice(b"{\"kind\":\"late\",\"event\":");
        self.line.extend_from_slice(event.raw().as_bytes());
        self.line.push(b'}');
        self.emit(true);
    }
}

/// Appends `text` as a JSON string.
fn push_json_string(line: &mut Vec<u8>, text: &str) {
    line.extend_from_slice(serde_json::Value::from(text).to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::FieldPath;
    use crate::value::{KeyValue, Value};

    struct Two(Record, Record);

    impl MatchAccess<Record> for Two {
        fn start(&self) -> Timestamp {
            1
        }
        fn end(&self) -> Timestamp {
            3
        }
        fn visit_stages(&self, visit: &mut dyn FnMut(&str, &mut dyn Iterator<Item = &Record>)) {
            visit("a", &mut [&self.0, &self.1].into_iter());
            visit("b\"", &mut std::iter::empty());
        }
        fn select(&self) -> Vec<(String, Value)> {
            vec![("n".into(), Value::Int(2))]
        }
    }

    #[test]
    fn records_are_written_as_cli_md_says() {
        let rec = |raw: &str| Record::new(Vec::new(), Arc::from(raw));
        let m = Two(rec(r#"{"ts":1}"#), rec(r#"{"ts":3,"x":"é"}"#));
        let key: KeyValue = [Value::from("u1")].into_iter().collect();
        let ctx = MatchContext {
            pattern: 0,
            name: "p",
            key_fields: &[FieldPath::parse("user.id")],
            key: &key,
            has_select: true,
        };
        let mut sink: JsonLines<Vec<u8>, Vec<u8>> = JsonLines::new(Vec::new(), Some(Vec::new()));
        sink.write_record("match", &ctx, &m, None);
        sink.write_record("timeout", &ctx, &m, Some(9));
        sink.write_late(&rec("{}"));
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
    }
}
