//! The shared vocabulary: small types every stage of the pipeline names,
//! defined once at the bottom so that no two modules need each other for
//! them.
//!
//! - [`Span`]: a byte range of pattern source (the language, the IR's
//!   elements, diagnostics, errors);
//! - [`StageId`]: a stage of a pattern (the pattern IR, expressions that
//!   refer to stages, the automaton, matches);
//! - [`Timestamp`] and [`DurationMs`]: event time and lengths of it, in
//!   milliseconds (windows, the matcher, the engine, input formats).
//!
//! This module depends on nothing else in the crate. [`Span`] and
//! [`Timestamp`] are also at the crate root. Durations as people write them
//! (`15m`) are [`crate::time`]'s.
//!
//! ```
//! use cepheid_core::primitives::{Span, StageId, Timestamp};
//!
//! let at: Timestamp = 1_714_521_600_000;
//! assert_eq!(StageId(2).index(), 2);
//! assert_eq!(Span::new(3, 7).to(Span::new(1, 4)).range(), 1..7);
//! # let _ = at;
//! ```

use std::ops::Range;

/// Event time (or any integer clock), in milliseconds.
pub type Timestamp = i64;

/// Milliseconds of event time.
pub type DurationMs = i64;

/// Index of a stage in [`Pattern::stages`](crate::pattern::Pattern::stages)
/// (pattern order: the order the stages appear in the `match` sequence,
/// groups flattened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageId(pub u16);

impl StageId {
    /// The index this id stands for.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A half-open byte range `start..end` into the source a pattern was parsed
/// from. The builder API uses the empty span `0..0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets (saturating at `u32::MAX`; files are limited
    /// to 1 MiB long before that matters).
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// As a `Range<usize>`, for slicing and diagnostics.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Is this the empty span (no source position known)?
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}
