//! Byte spans into pattern source text.

use std::ops::Range;

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
