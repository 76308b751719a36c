//! One file of a checkpoint, a marker or a piece: a table of sections
//! framed by a magic, the format version and a CRC-32 (`docs/checkpoints.md`,
//! "The files").
//!
//! ```text
//! magic "CEPHCKPT" | version u32 | kind u32 | section bodies, one after
//! the other | table: per section id u32, flags u32, length u64 | sections
//! u32 | CRC-32 of every byte before it
//! ```
//!
//! All integers little endian. The table is at the end so that a body of
//! unknown length (an engine's snapshot) is written in place, with no copy.
//! A section a reader does not know is skipped when its flags say it may
//! be ([`OPTIONAL`]), and refuses the file otherwise: a newer build adds
//! sections without a new format version, and an older one reading them
//! either goes on without them or says it cannot.

use crate::Unusable;

/// The first bytes of every file of a checkpoint.
pub(crate) const MAGIC: &[u8; 8] = b"CEPHCKPT";
/// The format version written and read: after the single run's file
/// (version 1) and the workers' cuts (versions 2 to 7), one format for both.
pub const VERSION: u32 = 8;
/// A section flag: a reader that does not know the section may go on
/// without it (what it holds is shown, not needed to resume exactly).
pub const OPTIONAL: u32 = 1;

/// Magic, version, kind.
const HEAD: usize = 8 + 4 + 4;
/// A table entry: id, flags, length.
const ENTRY: usize = 4 + 4 + 8;
/// The section count and the CRC-32 at the end.
const TAIL: usize = 4 + 4;

/// What a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `marker`: the checkpoint whole (written last).
    Marker = 1,
    /// `piece-W`: what worker `W` saved.
    Piece = 2,
}

/// A file being written into a buffer: the head, then each section's body
/// ([`Writer::section`], or [`Writer::open`] and [`Writer::close`] around
/// bytes written in place), then [`Writer::finish`] (the table; the CRC-32
/// is added by [`seal`], maybe on another thread).
pub(crate) struct Writer<'a> {
    bytes: &'a mut Vec<u8>,
    table: Vec<(u32, u32, u64)>,
    open: Option<(u32, u32, usize)>,
}

impl<'a> Writer<'a> {
    /// A file of `kind` into `bytes` (cleared).
    pub(crate) fn new(kind: Kind, bytes: &'a mut Vec<u8>) -> Writer<'a> {
        bytes.clear();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(kind as u32).to_le_bytes());
        Writer {
            bytes,
            table: Vec::new(),
            open: None,
        }
    }

    /// A section whose body is `body`.
    pub(crate) fn section(&mut self, id: u32, flags: u32, body: &[u8]) {
        self.open(id, flags).extend_from_slice(body);
        self.close();
    }

    /// Opens a section: its body is what is appended to the buffer
    /// returned until [`Writer::close`].
    pub(crate) fn open(&mut self, id: u32, flags: u32) -> &mut Vec<u8> {
        self.close();
        self.open = Some((id, flags, self.bytes.len()));
        self.bytes
    }

    /// Closes the open section.
    pub(crate) fn close(&mut self) {
        if let Some((id, flags, start)) = self.open.take() {
            self.table
                .push((id, flags, (self.bytes.len() - start) as u64));
        }
    }

    /// Leaves off, a section maybe open: the buffer holds what was
    /// written, [`Writer::resume`] goes on with it (maybe on another
    /// thread, the buffer moved there).
    pub(crate) fn suspend(self) -> Suspended {
        Suspended {
            table: self.table,
            open: self.open,
        }
    }

    /// Goes on writing the file `suspended` left off in `bytes`, the
    /// buffer it was written into, with only its open section's body
    /// appended since.
    pub(crate) fn resume(bytes: &'a mut Vec<u8>, suspended: Suspended) -> Writer<'a> {
        Writer {
            bytes,
            table: suspended.table,
            open: suspended.open,
        }
    }

    /// Writes the table: the file but its CRC-32 ([`seal`]).
    pub(crate) fn finish(mut self) {
        self.close();
        for (id, flags, len) in &self.table {
            self.bytes.extend_from_slice(&id.to_le_bytes());
            self.bytes.extend_from_slice(&flags.to_le_bytes());
            self.bytes.extend_from_slice(&len.to_le_bytes());
        }
        let count = u32::try_from(self.table.len()).expect("sections fit a u32");
        self.bytes.extend_from_slice(&count.to_le_bytes());
    }
}

/// A [`Writer`] left off ([`Writer::suspend`]): its sections so far, and
/// the one open.
pub(crate) struct Suspended {
    table: Vec<(u32, u32, u64)>,
    open: Option<(u32, u32, usize)>,
}

/// Adds the CRC-32 of every byte of `bytes` at its end.
pub(crate) fn seal(bytes: &mut Vec<u8>) {
    let crc = crc32fast::hash(bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
}

/// A section read: its id and its body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Section<'a> {
    pub(crate) id: u32,
    pub(crate) body: &'a [u8],
}

/// The sections of a file of `kind`, every part checked: the magic, the
/// version, the CRC-32, the table. Sections whose id is not in `known`
/// are left out when [`OPTIONAL`], refuse the file otherwise.
pub(crate) fn read<'a>(
    bytes: &'a [u8],
    kind: Kind,
    known: &[u32],
) -> Result<Vec<Section<'a>>, Unusable> {
    if bytes.len() < HEAD + TAIL || &bytes[..8] != MAGIC {
        return Err(Unusable::NotACheckpoint);
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(Unusable::Version {
            found: version,
            reads: VERSION,
        });
    }
    let body = &bytes[..bytes.len() - 4];
    if crc32fast::hash(body) != u32_at(bytes.len() - 4) {
        return Err(Unusable::Checksum);
    }
    if u32_at(12) != kind as u32 {
        return Err(Unusable::Malformed(format!(
            "a {} where a {} was expected",
            kind_name(u32_at(12)),
            kind_name(kind as u32)
        )));
    }
    let count = u32_at(body.len() - 4) as usize;
    let table = (count.checked_mul(ENTRY))
        .and_then(|len| (body.len() - 4).checked_sub(len))
        .filter(|&at| at >= HEAD)
        .ok_or_else(|| Unusable::Malformed("its table of sections is cut short".into()))?;
    let mut sections = Vec::with_capacity(count);
    let mut at = HEAD;
    for entry in body[table..body.len() - 4].chunks_exact(ENTRY) {
        let id = u32::from_le_bytes(entry[..4].try_into().expect("4 bytes"));
        let flags = u32::from_le_bytes(entry[4..8].try_into().expect("4 bytes"));
        let len = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|&end| end <= table)
            .ok_or_else(|| Unusable::Malformed(format!("its section {id} is cut short")))?;
        let section = Section {
            id,
            body: &bytes[at..end],
        };
        at = end;
        if known.contains(&id) {
            sections.push(section);
        } else if flags & OPTIONAL == 0 {
            return Err(Unusable::Section { id });
        }
    }
    if at != table {
        return Err(Unusable::Malformed(
            "its sections do not fill it".to_string(),
        ));
    }
    Ok(sections)
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        1 => "marker",
        2 => "piece",
        _ => "file of another kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sections: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = Writer::new(Kind::Piece, &mut bytes);
        for (id, flags, body) in sections {
            writer.section(*id, *flags, body);
        }
        writer.finish();
        seal(&mut bytes);
        bytes
    }

    #[test]
    fn a_file_reads_back_and_every_flipped_bit_and_truncation_is_refused() {
        let bytes = file(&[(16, 0, b"engine"), (17, 0, b""), (18, OPTIONAL, b"shown")]);
        let read = read(&bytes, Kind::Piece, &[16, 17, 18]).unwrap();
        let got: Vec<(u32, &[u8])> = read.iter().map(|s| (s.id, s.body)).collect();
        assert_eq!(got, [(16, &b"engine"[..]), (17, b""), (18, b"shown")]);
        for at in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[at / 8] ^= 1 << (at % 8);
            assert!(
                super::read(&flipped, Kind::Piece, &[16, 17, 18]).is_err(),
                "bit {at}"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                super::read(&bytes[..len], Kind::Piece, &[16, 17, 18]).is_err(),
                "{len} bytes"
            );
        }
        // Another kind, another version: refused, saying so.
        assert!(matches!(
            super::read(&bytes, Kind::Marker, &[16, 17, 18]),
            Err(Unusable::Malformed(_))
        ));
        let mut other = bytes.clone();
        other[8] = 9;
        let crc = crc32fast::hash(&other[..other.len() - 4]);
        let at = other.len() - 4;
        other[at..].copy_from_slice(&crc.to_le_bytes());
        assert!(super::read(&other, Kind::Piece, &[16])
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }

    /// A section this build does not know: skipped when the writer said it
    /// may be, the file refused otherwise (naming the section).
    #[test]
    fn an_unknown_section_is_skipped_when_optional_and_refuses_the_file_otherwise() {
        let optional = file(&[(16, 0, b"engine"), (99, OPTIONAL, b"new")]);
        let read = read(&optional, Kind::Piece, &[16]).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].body, b"engine");
        let required = file(&[(16, 0, b"engine"), (99, 0, b"new")]);
        let refused = super::read(&required, Kind::Piece, &[16]).unwrap_err();
        assert!(matches!(refused, Unusable::Section { id: 99 }));
        assert!(refused.to_string().contains("section 99"), "{refused}");
    }
}
