//! [`Engine::push_json`]: one JSON line into an `Engine<Record>`, decoded
//! with the engine's own field table by a [`cepheid_decode::Decoder`]
//! the engine keeps.

use crate::engine::core::Arrival;
use crate::engine::front::Engine;
use crate::engine::sink::Sink;
use crate::error::Error;
use crate::primitives::Timestamp;
use crate::record::Record;
use cepheid_decode::{Decoder, Format, Item};

/// What [`Engine::push_json`] did with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// An event at this time, pushed ([`Arrival::Late`] when it was late).
    Event(Timestamp, Arrival),
    /// A `{"$watermark": T}` line: the watermark moved to `T` (never
    /// backwards).
    Watermark(Timestamp),
    /// A blank line: nothing done.
    Blank,
}

/// The decoder an engine keeps for [`Engine::push_json`], and the time
/// field it reads.
pub(super) struct JsonInput {
    time_field: String,
    decoder: Decoder,
}

impl Engine<Record> {
    /// Decodes one line of JSON lines and feeds it to the engine: an
    /// event (its time read from `time_field`, a dotted path, in integer
    /// milliseconds or an RFC 3339 string) is [`push`](Engine::push)ed, a
    /// `{"$watermark": T}` line is a [`watermark`](Engine::watermark), a
    /// blank line does nothing. The record keeps the fields the engine's
    /// patterns read (patterns added later included) and the line's text,
    /// exactly as `cepheid run` decodes it: this is
    /// [`cepheid_decode::Decoder`] over the engine's
    /// [`fields`](Engine::fields), made at the first call and kept (made
    /// again when `time_field` changes).
    ///
    /// A malformed line is an [`ErrorKind::Input`](crate::ErrorKind::Input)
    /// error saying what is wrong (not JSON, not an object, no time field,
    /// a bad time, a `$watermark` line with other fields, invalid UTF-8),
    /// and the engine is unchanged. The line may end with `\n` or `\r\n`.
    ///
    /// ```
    /// use cepheid_engine::engine::Pushed;
    /// use cepheid_engine::{Arrival, Engine, Output, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&Rules::parse("r.cep", r#"pattern ab { partition by user
    ///     match a followed by b where a: type == "a" b: type == "b" }"#)?)?;
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// let a = engine.push_json(r#"{"ts": 1, "user": "u", "type": "a"}"#, "ts", &mut out)?;
    /// assert_eq!(a, Pushed::Event(1, Arrival::Accepted));
    /// engine.push_json(r#"{"ts": 2, "user": "u", "type": "b"}"#, "ts", &mut out)?;
    /// engine.push_json(r#"{"$watermark": 10}"#, "ts", &mut out)?;
    /// assert!(matches!(&out[..], [Output::Match(m)] if (m.start, m.end) == (1, 2)));
    ///
    /// let err = engine.push_json(r#"{"user": "u", "type": "a"}"#, "ts", &mut out).unwrap_err();
    /// assert!(err.to_string().contains("no time field `ts`"), "{err}");
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn push_json<S: Sink<Record> + ?Sized>(
        &mut self,
        line: &str,
        time_field: &str,
        sink: &mut S,
    ) -> Result<Pushed, Error> {
        let stale = match &self.json {
            Some(input) => {
                input.time_field != time_field || !input.decoder.fields().same_table(&self.fields)
            }
            None => true,
        };
        if stale {
            self.json = Some(Box::new(JsonInput {
                time_field: time_field.to_string(),
                decoder: Decoder::new(Format::JsonLines, time_field, self.fields.clone()),
            }));
        }
        let input = self.json.as_mut().expect("made above");
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        match input.decoder.decode(line.as_bytes())? {
            Item::Event(ts, record) => Ok(Pushed::Event(ts, self.push(ts, record, sink))),
            Item::Watermark(t) => {
                self.watermark(t, sink);
                Ok(Pushed::Watermark(t))
            }
            Item::Skip => Ok(Pushed::Blank),
        }
    }
}
