//! The lines of the input file read at a cut of workers, over every
//! worker ([`Read`]: [`Part::Read`], [`Part::Again`]), and the keys said
//! over `Config::max_runs_per_key` ([`Keys`]: [`Part::Keys`]): sections
//! of a worker's piece the executor writes and the runtime reads (a cut
//! of workers made one engine's, `one_engine.rs`), so that a resumed run
//! on any executor reads every line once.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Part, Piece};

/// Lines of the input file read, over every worker: every chunk below
/// `below`, and of the chunks at or above it, each one's lines up to a
/// number (`u64::MAX`: all of them; lines are numbered from 1 in their
/// chunk, as `FileChunk::offset` has them), but the lines at the places
/// `again` (`FileChunk::offset`: a cut of one engine that read the file
/// in ranges had not read them yet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    /// Every chunk below this one was read whole.
    pub below: u64,
    /// Of the chunks at or above `below`, each one's lines read up to a
    /// number.
    pub chunks: BTreeMap<u64, u64>,
    /// (kept apart: [`Part::Again`])
    #[serde(skip)]
    pub again: BTreeSet<u64>,
}

impl Read {
    /// The lines of chunk `chunk` read: those up to this number.
    pub fn upto(&self, chunk: u64) -> u64 {
        if chunk < self.below {
            return u64::MAX;
        }
        self.chunks.get(&chunk).copied().unwrap_or(0)
    }

    /// The lines of chunk `chunk` at or below [`Read::upto`] not read, in
    /// order.
    pub fn again_in(&self, chunk: u64) -> Vec<u64> {
        let lines = self.again.range(chunk << 32..(chunk + 1) << 32);
        lines.map(|place| place & 0xffff_ffff).collect()
    }

    /// The lines read at a cut of a run of `places.len()` workers (over
    /// every process) that started with `self` read: worker `w` reads its
    /// chunks (those whose number is `w` modulo the worker count) in
    /// order, skipping the lines read before, and its source's place at
    /// the cut is `places[w]` (`FileChunk::offset` of the last line it
    /// read; 0 when it read none).
    pub fn after(&self, places: &[u64]) -> Read {
        let workers = places.len().max(1) as u64;
        let upto = |chunk: u64| {
            let before = self.upto(chunk);
            let place = places.get((chunk % workers) as usize).copied().unwrap_or(0);
            let (at, line) = (place >> 32, place & 0xffff_ffff);
            if place == 0 || chunk > at {
                before
            } else if chunk < at {
                u64::MAX
            } else {
                before.max(line)
            }
        };
        let mut below = self.below;
        while upto(below) == u64::MAX {
            below += 1;
        }
        let top = (places.iter().map(|p| p >> 32))
            .chain(self.chunks.keys().copied())
            .max()
            .unwrap_or(0);
        let chunks = (below..=top)
            .map(|chunk| (chunk, upto(chunk)))
            .filter(|&(_, lines)| lines > 0)
            .collect();
        // (a worker reads a chunk's lines not read before first)
        let again = (self.again.iter().copied())
            .filter(|&line| {
                let place = places.get(((line >> 32) % workers) as usize).copied();
                place.map_or(true, |place| place == 0 || place < line)
            })
            .collect();
        Read {
            below,
            chunks,
            again,
        }
    }
}

impl Read {
    /// The lines read kept in `piece` (none in one engine's).
    pub fn of(piece: &Piece) -> Result<Read, postcard::Error> {
        let mut read: Read = piece
            .get(Part::Read)
            .map_or(Ok(Read::default()), postcard::from_bytes)?;
        if let Some(again) = piece.get(Part::Again) {
            read.again = postcard::from_bytes(again)?;
        }
        Ok(read)
    }

    /// Keeps them in `piece` (postcard of `below` and `chunks`, as a cut of
    /// before kept them).
    pub fn put(&self, piece: &mut Piece) {
        piece.set(Part::Read, postcard::to_allocvec(self).unwrap_or_default());
        if !self.again.is_empty() {
            piece.set(
                Part::Again,
                postcard::to_allocvec(&self.again).unwrap_or_default(),
            );
        }
    }
}

/// The keys said over `Config::max_runs_per_key` (pattern, key as JSON,
/// key group), and whether more went over.
pub type Keys = (Vec<(usize, String, u32)>, bool);

/// The keys said kept in `piece` ([`Part::Keys`]; none in one engine's).
pub fn keys(piece: &Piece) -> Keys {
    piece
        .get(Part::Keys)
        .and_then(|bytes| postcard::from_bytes(bytes).ok())
        .unwrap_or_default()
}

/// Keeps `keys` in `piece` (postcard, as a cut of before kept them).
pub fn put_keys(piece: &mut Piece, keys: &Keys) {
    piece.set(Part::Keys, postcard::to_allocvec(keys).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_read_add_up_over_the_workers_and_the_runs() {
        let at = |chunk: u64, line: u64| chunk << 32 | line;
        // Two workers: 0 read chunks 0 and 2 and chunk 4 to line 3; 1
        // read chunk 1 and chunk 3 to line 9.
        let first = Read::default().after(&[at(4, 3), at(3, 9)]);
        assert_eq!(first.below, 3);
        assert_eq!(first.chunks, BTreeMap::from([(3, 9), (4, 3)]));
        assert_eq!(
            (first.upto(2), first.upto(3), first.upto(5)),
            (u64::MAX, 9, 0)
        );
        // Then three workers: 0 read nothing (chunk 3 was read to line
        // 9: it went on to line 12), 1 read chunk 4 on to line 5 and
        // nothing else, 2 read nothing.
        let second = first.after(&[at(3, 12), at(4, 5), 0]);
        assert_eq!(second.below, 3);
        assert_eq!(second.chunks, BTreeMap::from([(3, 12), (4, 5)]));
        // Worker 0 moved on to chunk 6: chunk 3 is whole.
        let third = second.after(&[at(6, 1), 0, 0]);
        assert_eq!(third.below, 4);
        assert_eq!(third.chunks, BTreeMap::from([(4, 5), (6, 1)]));
        // Nothing read: the same.
        assert_eq!(Read::default().after(&[0, 0]), Read::default());
        // Lines below those read that were not (one engine's ranges):
        // read by the worker of their chunk, in order, before the rest.
        let again = Read {
            again: BTreeSet::from([at(4, 2), at(4, 4), at(5, 1)]),
            ..third.clone()
        };
        let fourth = again.after(&[at(4, 2), at(5, 1)]);
        assert_eq!(fourth.again, BTreeSet::from([at(4, 4)]));
        assert_eq!(fourth.chunks, BTreeMap::from([(4, 5), (5, 1), (6, 1)]));
    }
}
