//! Formatted records in blocks: what the matching stage hands to the one
//! writer of a run, each record's kind and the place of its partition key
//! kept beside its text, so that no stage after the one that formatted a
//! record reads its kind or key back out of its JSON; and the [`Tap`] that
//! keeps the latest records for an observing report.

use std::collections::VecDeque;
use std::ops::Range;

use crate::jsonl::Formatter;
use serde::{Deserialize, Serialize};

use crate::sink::Kind;

/// Records as the run writes them (`cli.md`: each a JSON line with its
/// newline), gathered into one buffer, each with its [`Kind`] and where
/// its partition key's JSON object is in it. A [`Sink`](crate::Sink)
/// takes a block at once ([`Sink::write_block`](crate::Sink::write_block):
/// a file its bytes with one write, a Kafka sink its records one at a
/// time). Blocks travel between the workers of a run (serde), and the
/// page's latest records are read from them ([`Tap::block`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    bytes: Vec<u8>,
    records: Vec<Entry>,
    /// How many of them are late.
    late: u32,
    /// How many of them are a shadow pattern's ([`Kind::Shadow`]).
    #[serde(default)]
    shadow: u32,
    /// How many of them are audit records ([`Kind::Audit`]).
    #[serde(default)]
    audit: u32,
    /// How many of them are decisions ([`Kind::Decision`]).
    #[serde(default)]
    decisions: u32,
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
    /// The bytes at which a block is full and handed on: small enough to
    /// stay in the cache of the core that formatted it, large enough that
    /// a write costs little per record. [`Files`](crate::Files) writes a
    /// block this large straight to the file (`BENCHMARKS.md`, "Writing
    /// where the records are made").
    pub const FULL: usize = 128 << 10;

    /// An empty block with room for `bytes` bytes of records.
    pub fn with_capacity(bytes: usize) -> Block {
        Block {
            bytes: Vec::with_capacity(bytes),
            records: Vec::with_capacity(bytes / 256),
            late: 0,
            shadow: 0,
            audit: 0,
            decisions: 0,
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
        match kind {
            Kind::Late => self.late += 1,
            Kind::Shadow => self.shadow += 1,
            Kind::Audit => self.audit += 1,
            Kind::Decision => self.decisions += 1,
            Kind::Match | Kind::Timeout => {}
        }
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
        self.late = 0;
        self.shadow = 0;
        self.audit = 0;
        self.decisions = 0;
    }

    /// How many of its records are late ([`Kind::Late`]).
    pub fn late(&self) -> usize {
        self.late as usize
    }

    /// How many of its records are a shadow pattern's ([`Kind::Shadow`]).
    pub fn shadow(&self) -> usize {
        self.shadow as usize
    }

    /// How many of its records are audit records ([`Kind::Audit`]).
    pub fn audit(&self) -> usize {
        self.audit as usize
    }

    /// How many of its records are decisions ([`Kind::Decision`]).
    pub fn decisions(&self) -> usize {
        self.decisions as usize
    }

    /// How many of its records go to an output beside the records' one
    /// (late, shadow, audit records and decisions).
    pub fn beside(&self) -> usize {
        (self.late + self.shadow + self.audit + self.decisions) as usize
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
}

/// The latest output records of a run, copied for an observing report
/// ([`RunView::records`](crate::RunView::records)): at most `wanted`
/// matches and timeouts (late records are not shown), the oldest dropped.
/// Records come one at a time ([`Tap::push`]: one engine) or by block
/// ([`Tap::block`]: the workers, per block and never per record, only its
/// last `wanted` records copied). A ring whose buffers are reused, once
/// dropped or shown, for the next records: no allocation per record in
/// the steady state, one copy of its bytes; only the records still kept
/// when they are shown are read as UTF-8 (the formatted line is; one that
/// were not would be shown with U+FFFD).
#[derive(Debug)]
pub struct Tap {
    wanted: usize,
    ring: VecDeque<(Kind, Vec<u8>)>,
    /// The records as text, while an observer looks at them.
    shown: Vec<(Kind, String)>,
    /// Buffers shown already, their room kept for the next records.
    spare: Vec<Vec<u8>>,
    /// The latest records shown (at most `wanted`), kept in checkpoints.
    latest: VecDeque<(Kind, String)>,
}

impl Tap {
    /// Keeps at most `wanted` records.
    pub fn new(wanted: usize) -> Tap {
        Tap {
            wanted,
            ring: VecDeque::with_capacity(wanted),
            shown: Vec::with_capacity(wanted),
            spare: Vec::new(),
            latest: VecDeque::with_capacity(wanted),
        }
    }

    /// The latest records made (at most `wanted`), oldest first: those
    /// shown and those not shown yet (for a checkpoint).
    pub fn latest(&self) -> Vec<(Kind, String)> {
        let waiting = (self.ring.iter())
            .map(|(kind, bytes)| (*kind, String::from_utf8_lossy(bytes).into_owned()));
        let all: Vec<_> = self.latest.iter().cloned().chain(waiting).collect();
        all[all.len().saturating_sub(self.wanted)..].to_vec()
    }

    /// Keeps a copy of `line`, of `kind` (one [shown](Kind::shown): not
    /// a late one, an audit record nor a decision), the oldest dropped
    /// when `wanted` are kept.
    pub fn push(&mut self, kind: Kind, line: &[u8]) {
        if !kind.shown() || self.wanted == 0 {
            return;
        }
        let mut bytes = if self.ring.len() == self.wanted {
            self.ring.pop_front().map(|(_, bytes)| bytes)
        } else {
            self.spare.pop()
        }
        .unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(line);
        self.ring.push_back((kind, bytes));
    }

    /// Keeps the last records of `block` (the others would be dropped at
    /// once).
    pub fn block(&mut self, block: &Block) {
        let mut kept = 0;
        let mut from = block.len();
        for r in block.records().rev() {
            if kept == self.wanted {
                break;
            }
            kept += usize::from(r.kind.shown());
            from -= 1;
        }
        for r in block.records().skip(from) {
            self.push(r.kind, r.line);
        }
    }

    /// The records kept since the last look, oldest first, as text (the
    /// ring emptied into them: [`Tap::shown`] gives their buffers back).
    pub fn records(&mut self) -> &[(Kind, String)] {
        self.shown.extend(self.ring.drain(..).map(|(kind, bytes)| {
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (kind, text)
        }));
        &self.shown
    }

    /// The records were shown: their room is kept for the next ones (the
    /// latest `wanted` of them are kept, for checkpoints).
    pub fn shown(&mut self) {
        self.latest.extend(self.shown.iter().cloned());
        while self.latest.len() > self.wanted {
            self.latest.pop_front();
        }
        self.spare
            .extend(self.shown.drain(..).map(|(_, text)| text.into_bytes()));
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
        assert_eq!((whole.len(), whole.late()), (3, 1));
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
        // Serde keeps it whole.
        let sent = postcard::to_allocvec(&whole).unwrap();
        assert_eq!(postcard::from_bytes::<Block>(&sent).unwrap(), whole);
    }
}
