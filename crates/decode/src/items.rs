//! The read → decode loop, once: [`Items`] reads an input's lines and
//! decodes each, yielding its number and its [`Item`] or why it is
//! malformed.

use std::io::Read;
use std::sync::Arc;

use crate::decode::{Decoder, Item};
use crate::lines::{Line, LineReader, MAX_LINE_BYTES};
use cepheid_core::error::{Error, ErrorKind, Location};

/// An input's lines, decoded: `(line number, item or error)` for each line,
/// numbered from 1.
///
/// A malformed line is an [`ErrorKind::Input`] error at
/// `(input name, line, 1)`; the iteration goes on after it. A read error is
/// an [`ErrorKind::Io`] error and ends the iteration.
///
/// ```
/// use cepheid_decode::{Decoder, Format, Item, Items};
/// use cepheid_core::record::FieldTable;
///
/// let input = "{\"ts\": 1}\nnot json\n{\"$watermark\": 5}\n";
/// let decoder = Decoder::new(Format::JsonLines, "ts", FieldTable::new());
/// let mut items = Items::new("events.jsonl", input.as_bytes(), decoder);
/// assert!(matches!(items.next(), Some((1, Ok(Item::Event(1, _))))));
/// let (line, error) = items.next().unwrap();
/// let error = error.unwrap_err();
/// assert_eq!((line, error.kind()), (2, cepheid_core::ErrorKind::Input));
/// assert!(error.to_string().starts_with("events.jsonl:2:1: invalid JSON"));
/// assert!(matches!(items.next(), Some((3, Ok(Item::Watermark(5))))));
/// assert!(items.next().is_none());
/// ```
pub struct Items<R> {
    origin: Arc<str>,
    reader: LineReader<R>,
    decoder: Decoder,
    done: bool,
}

impl<R: Read> Items<R> {
    /// The lines of `input` (named `origin` in errors), decoded by
    /// `decoder`.
    pub fn new(origin: impl Into<Arc<str>>, input: R, decoder: Decoder) -> Items<R> {
        Items {
            origin: origin.into(),
            reader: LineReader::new(input),
            decoder,
            done: false,
        }
    }

    /// Input bytes consumed so far (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.reader.bytes_read()
    }

    /// Will the next item come without reading from the input (so without
    /// waiting for it)?
    pub fn item_ready(&mut self) -> bool {
        self.done || self.reader.line_ready()
    }

    /// The decoder (its field table, for instance).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The input.
    pub fn get_ref(&self) -> &R {
        self.reader.get_ref()
    }

    /// The input, back (what was read of it ahead and not handed out is
    /// dropped): a followed file going on in its next file, say.
    pub fn into_inner(self) -> R {
        self.reader.into_inner()
    }

    /// The next line's number and what `read` makes of its bytes (given the
    /// decoder), or why it is malformed (too long; errors are placed at
    /// the line); `None` at the end (a read error is the last line). What
    /// [`Iterator::next`] does with `read` = [`Decoder::decode`]; a caller
    /// that recognizes lines of its own (control records, say) before
    /// decoding passes its own `read`.
    ///
    /// ```
    /// use cepheid_decode::{Decoder, Format, Item, Items};
    /// use cepheid_core::record::FieldTable;
    /// let text = "# note\n{\"ts\": 1}\n";
    /// let decoder = Decoder::new(Format::JsonLines, "ts", FieldTable::new());
    /// let mut items = Items::new("in.jsonl", text.as_bytes(), decoder);
    /// let mut read = |d: &mut Decoder, text: &[u8]| match text.strip_prefix(b"# ") {
    ///     Some(note) => Ok(Err(String::from_utf8_lossy(note).into_owned())),
    ///     None => d.decode(text).map(Ok),
    /// };
    /// assert!(matches!(items.next_with(&mut read), Some((1, Ok(Err(note)))) if note == "note"));
    /// assert!(matches!(items.next_with(&mut read), Some((2, Ok(Ok(Item::Event(1, _)))))));
    /// assert!(items.next_with(&mut read).is_none());
    /// ```
    #[inline(always)]
    pub fn next_with<T>(
        &mut self,
        read: impl FnOnce(&mut Decoder, &[u8]) -> Result<T, Error>,
    ) -> Option<(u64, Result<T, Error>)> {
        if self.done {
            return None;
        }
        let (line_no, item) = match self.reader.next_line() {
            Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some((line_no, Line::Text(text)))) => (line_no, read(&mut self.decoder, text)),
            Ok(Some((line_no, Line::TooLong(len)))) => (
                line_no,
                Err(Error::new(
                    ErrorKind::Input,
                    format!(
                        "line too long ({len} bytes, at most {} MiB)",
                        MAX_LINE_BYTES >> 20
                    ),
                )),
            ),
            Err(e) => {
                self.done = true;
                let line_no = self.reader.lines_read() + 1;
                return Some((line_no, Err(Error::from(e).at(self.at(line_no)))));
            }
        };
        Some((line_no, item.map_err(|e| e.at(self.at(line_no)))))
    }

    fn at(&self, line: u64) -> Location {
        Location::new(self.origin.clone(), line as usize, 1)
    }
}

impl<R: Read> Iterator for Items<R> {
    type Item = (u64, Result<Item, Error>);

    fn next(&mut self) -> Option<(u64, Result<Item, Error>)> {
        self.next_with(|decoder, text| decoder.decode(text))
    }
}
