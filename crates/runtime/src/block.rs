//! Formatted records in blocks: what the matching stage hands to the one
//! writer of a run, each record's kind and the place of its partition key
//! kept beside its text, so that no stage after the one that formatted a
//! record reads its kind or key back out of its JSON.

use std::ops::Range;

use cepheid_engine::io::Formatter;
use serde::{Deserialize, Serialize};

use crate::sink::{Kind, Sink, SinkError};

/// Records as the run writes them (`cli.md`: each a JSON line with its
/// newline), gathered into one buffer, each with its [`Kind`] and where
/// its partition key's JSON object is in it. A file takes a block's bytes
/// with one write ([`Block::bytes`]); a [`Sink`] that wants records one at
/// a time takes them from [`Block::write_to`]. Blocks travel between the
/// workers of a run (serde), and the page's latest records are read from
/// them ([`Block::records`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    bytes: Vec<u8>,
    records: Vec<Entry>,
}

/// One record of a [`Block`]: where it ends in the block's bytes, its
/// kind, and where its key is (from the record's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    end: u32,
    kind: Kind,
    key: (u32, u32),
}

/// One record of a [`Block`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRecord<'a> {
    /// What it is.
    pub kind: Kind,
    /// The partition key's JSON object (`{"user":"bob"}`; empty for a late
    /// event and a pattern without `partition by`).
    pub key: &'a [u8],
    /// The record's text, its newline included.
    pub line: &'a [u8],
}

impl Block {
    /// An empty block with room for `bytes` bytes of records.
    pub fn with_capacity(bytes: usize) -> Block {
        Block {
            bytes: Vec::with_capacity(bytes),
            records: Vec::with_capacity(bytes / 256),
        }
    }

    /// Adds the record `formatter` made last, of `kind`.
    ///
    /// # Panics
    /// If the block would pass 4 GiB (a run hands blocks on long before).
    #[inline]
    pub fn push(&mut self, kind: Kind, formatter: &Formatter) {
        self.push_line(kind, formatter.line(), formatter.key_range());
    }

    /// Adds the record `line` (its newline included) of `kind`, its key
    /// at `key` in it.
    ///
    /// # Panics
    /// If `key` is not within `line`, or the block would pass 4 GiB.
    pub fn push_line(&mut self, kind: Kind, line: &[u8], key: Range<usize>) {
        assert!(key.start <= key.end && key.end <= line.len());
        self.bytes.extend_from_slice(line);
        let end = u32::try_from(self.bytes.len()).expect("a block of records under 4 GiB");
        let key = (key.start as u32, key.end as u32);
        self.records.push(Entry { end, kind, key });
    }

    /// The records' text, one after the other.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Does it hold none?
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Empties it, keeping its room.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    /// Its records, in order.
    pub fn records(&self) -> impl DoubleEndedIterator<Item = BlockRecord<'_>> + ExactSizeIterator {
        (0..self.records.len()).map(move |i| {
            let start = i.checked_sub(1).map_or(0, |j| self.records[j].end as usize);
            let e = &self.records[i];
            let line = &self.bytes[start..e.end as usize];
            BlockRecord {
                kind: e.kind,
                key: &line[e.key.0 as usize..e.key.1 as usize],
                line,
            }
        })
    }

    /// The block of its last `n` records (all of them when it holds fewer).
    pub fn tail(&self, n: usize) -> Block {
        let skip = self.records.len().saturating_sub(n);
        let from = match skip {
            0 => 0,
            k => self.records[k - 1].end,
        };
        Block {
            bytes: self.bytes[from as usize..].to_vec(),
            records: (self.records[skip..].iter())
                .map(|e| Entry {
                    end: e.end - from,
                    ..*e
                })
                .collect(),
        }
    }

    /// Hands its records to `sink`, one at a time, in order (those of
    /// kind [`Kind::Late`] only when the sink takes late records); stops at
    /// the first error.
    pub fn write_to(&self, sink: &mut dyn Sink) -> Result<(), SinkError> {
        let late = sink.takes_late();
        for r in self.records() {
            if r.kind == Kind::Late && !late {
                continue;
            }
            sink.write(r.kind, r.key, r.line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[(Kind, &str, &str)]) -> Block {
        let mut b = Block::default();
        for (kind, line, key) in lines {
            let at = line.find(key).unwrap_or(0);
            b.push_line(*kind, line.as_bytes(), at..at + key.len());
        }
        b
    }

    #[test]
    fn a_block_keeps_each_records_kind_and_key_beside_its_text() {
        let a = r#"{"kind":"match","pattern":"p","key":{"u":"a"}}"#.to_string() + "\n";
        let b = r#"{"kind":"timeout","pattern":"p","key":{"u":"b"}}"#.to_string() + "\n";
        let c = r#"{"kind":"late","event":{"u":"c"}}"#.to_string() + "\n";
        let whole = block(&[
            (Kind::Match, &a, r#"{"u":"a"}"#),
            (Kind::Timeout, &b, r#"{"u":"b"}"#),
            (Kind::Late, &c, ""),
        ]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole.bytes(), format!("{a}{b}{c}").as_bytes());
        let got: Vec<(Kind, &[u8], &[u8])> =
            whole.records().map(|r| (r.kind, r.key, r.line)).collect();
        assert_eq!(
            got,
            [
                (Kind::Match, &br#"{"u":"a"}"#[..], a.as_bytes()),
                (Kind::Timeout, &br#"{"u":"b"}"#[..], b.as_bytes()),
                (Kind::Late, &b""[..], c.as_bytes()),
            ]
        );
        // The last two, as a block of their own; serde keeps it whole.
        let tail = whole.tail(2);
        let kinds: Vec<Kind> = tail.records().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Timeout, Kind::Late]);
        assert_eq!(tail.records().next().unwrap().key, br#"{"u":"b"}"#);
        assert_eq!(whole.tail(9), whole);
        assert!(whole.tail(0).is_empty() && whole.tail(0).bytes().is_empty());
        let sent = postcard::to_allocvec(&whole).unwrap();
        assert_eq!(postcard::from_bytes::<Block>(&sent).unwrap(), whole);
    }
}
