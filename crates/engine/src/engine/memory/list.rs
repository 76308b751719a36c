//! One reference list's entries, held compactly: every entry's bytes in
//! one arena, and a hash table of 16-byte slots (arena offset, length,
//! expiry) over it. An entry costs its encoded bytes (a tag byte and the
//! value's bytes) plus about 19 bytes of table at hashbrown's load factor:
//! under the 32 per entry of `docs/design/lists-indicators.md` (measured by
//! `entry_overhead_is_under_32_bytes` below).
//!
//! How a value is encoded depends on the list's [`ListKind`]: `values`
//! encodes the value (numbers normalized so that `1` and `1.0` are one
//! entry); `prefixes` its text (a string, or an integer's digits), probed
//! at each length some entry has; `cidr` a network as family, prefix
//! length and masked address, probed at each prefix length some entry has.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

use crate::lookup::ListKind;
use crate::primitives::Timestamp;
use crate::value::{key_part, Value, ValueRef};

/// An entry's place in the arena and until when it lives.
#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: u32,
    len: u32,
    /// Seen by events before this time ([`NEVER`]: until removed).
    expires: Timestamp,
}

/// The expiry of an entry that does not expire.
pub(crate) const NEVER: Timestamp = Timestamp::MAX;

/// Why an entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// Null, a list or an object: not an entry of any list.
    NotAnEntry,
    /// A `cidr` list's entry that is no address or network.
    NotANetwork(String),
    /// A `prefixes` list's entry that is not a string or an integer.
    NotAPrefix,
    /// The list holds its limit of entries.
    Full(usize),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::NotAnEntry => write!(f, "null, a list or an object is no list entry"),
            EntryError::NotANetwork(s) => {
                write!(f, "`{s}` is not an IP address or network (`10.0.0.0/8`)")
            }
            EntryError::NotAPrefix => write!(f, "a prefix is a string or an integer"),
            EntryError::Full(n) => write!(f, "the list holds its limit of {n} entries"),
        }
    }
}

/// A reference list's entries.
#[derive(Clone)]
pub(crate) struct EntrySet {
    kind: ListKind,
    table: HashTable<Slot>,
    arena: Vec<u8>,
    /// Bytes of the arena no slot refers to any more.
    garbage: usize,
    /// The lengths entries have (`prefixes`: text lengths; `cidr`: prefix
    /// lengths, family in the high byte), with how many entries have each.
    lengths: Vec<(u32, u32)>,
    hasher: hashbrown::DefaultHashBuilder,
    /// The earliest expiry of an entry (a sweep is due once time passes
    /// it).
    earliest: Timestamp,
    /// Scratch for encoding.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for EntrySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySet")
            .field("kind", &self.kind)
            .field("len", &self.table.len())
            .finish()
    }
}

impl EntrySet {
    pub(crate) fn new(kind: ListKind) -> EntrySet {
        EntrySet {
            kind,
            table: HashTable::new(),
            arena: Vec::new(),
            garbage: 0,
            lengths: Vec::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            earliest: NEVER,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn kind(&self) -> ListKind {
        self.kind
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes held (arena and table).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.table.capacity() * (std::mem::size_of::<Slot>() + 1)
            + self.lengths.capacity() * 8
    }

    /// Adds (or refreshes) `value` until `expires`.
    /// `value` encoded as an entry of the list (`None`: the list cannot
    /// hold it): one value, one encoding (`1` and `1.0` alike).
    pub(crate) fn encode(&self, value: ValueRef<'_>) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        encode_entry(self.kind, value, &mut bytes).ok()?;
        Some(bytes)
    }

    pub(crate) fn add(
        &mut self,
        value: ValueRef<'_>,
        expires: Timestamp,
        limit: usize,
    ) -> Result<(), EntryError> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let length = encode_entry(self.kind, value, &mut bytes)?;
        let hash = self.hasher.hash_one(&bytes[..]);
        let arena = &self.arena;
        if let Some(slot) = self
            .table
            .find_mut(hash, |s| slot_bytes(arena, s) == &bytes[..])
        {
            slot.expires = expires;
        } else {
            if self.table.len() >= limit {
                self.scratch = bytes;
                return Err(EntryError::Full(limit));
            }
            let slot = Slot {
                offset: u32::try_from(self.arena.len()).unwrap_or(u32::MAX),
                len: bytes.len() as u32,
                expires,
            };
            self.arena.extend_from_slice(&bytes);
            let (arena, hasher) = (&self.arena, &self.hasher);
            self.table
                .insert_unique(hash, slot, |s| hasher.hash_one(slot_bytes(arena, s)));
            if let Some(l) = length {
                match self.lengths.iter_mut().find(|(n, _)| *n == l) {
                    Some((_, count)) => *count += 1,
                    None => {
                        self.lengths.push((l, 1));
                        // longest first: the most specific entry is found first
                        self.lengths
                            .sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
                    }
                }
            }
        }
        self.earliest = self.earliest.min(expires);
        self.scratch = bytes;
        Ok(())
    }

    /// Removes `value`; false when it was not there.
    pub(crate) fn remove(&mut self, value: ValueRef<'_>) -> Result<bool, EntryError> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let length = encode_entry(self.kind, value, &mut bytes)?;
        let hash = self.hasher.hash_one(&bytes[..]);
        let arena = &self.arena;
        let found = match self
            .table
            .find_entry(hash, |s| slot_bytes(arena, s) == &bytes[..])
        {
            Ok(entry) => {
                let (slot, _) = entry.remove();
                self.garbage += slot.len as usize;
                self.forget_length(length);
                true
            }
            Err(_) => false,
        };
        self.scratch = bytes;
        self.compact_if_worth_it();
        Ok(found)
    }

    fn forget_length(&mut self, length: Option<u32>) {
        if let Some(l) = length {
            if let Some(i) = self.lengths.iter().position(|(n, _)| *n == l) {
                self.lengths[i].1 -= 1;
                if self.lengths[i].1 == 0 {
                    self.lengths.remove(i);
                }
            }
        }
    }

    /// Does the list hold `value` for an event at `now`? `None` for a
    /// value no entry can match (null, a list, an object; for `cidr`,
    /// anything but an address).
    #[inline]
    pub(crate) fn contains(&self, value: ValueRef<'_>, now: Timestamp) -> Option<bool> {
        matches(self.kind, &self.lengths, &[], value, |b| self.probe(b, now))
    }

    /// Does the shadow copy of this list hold `value` for an event at
    /// `now` (`docs/semantics.md`, "Shadow rules")? `shadow`: the copy's
    /// own entries (added by shadow writes, seen before their expiry),
    /// `hidden`: the entries of this list the copy does not hold (removed
    /// or expired there), each until this list's own entry expires; any
    /// other entry is this list's.
    pub(crate) fn contains_shadowed(
        &self,
        shadow: &EntrySet,
        hidden: &EntrySet,
        value: ValueRef<'_>,
        now: Timestamp,
    ) -> Option<bool> {
        matches(self.kind, &self.lengths, &shadow.lengths, value, |b| {
            if shadow.probe(b, now) {
                true
            } else if hidden.probe(b, now) {
                false
            } else {
                self.probe(b, now)
            }
        })
    }

    /// The expiry of the entry encoded as `bytes` (`None`: no entry).
    pub(crate) fn expiry_of(&self, bytes: &[u8]) -> Option<Timestamp> {
        let hash = self.hasher.hash_one(bytes);
        self.table
            .find(hash, |s| slot_bytes(&self.arena, s) == bytes)
            .map(|s| s.expires)
    }

    fn probe(&self, bytes: &[u8], now: Timestamp) -> bool {
        let hash = self.hasher.hash_one(bytes);
        self.table
            .find(hash, |s| slot_bytes(&self.arena, s) == bytes)
            .is_some_and(|s| s.expires > now)
    }

    /// Drops the entries expired at `now` when some may be (amortized: a
    /// sweep happens only once time passes the earliest expiry).
    pub(crate) fn expire(&mut self, now: Timestamp) {
        self.expire_keeping(now, None);
    }

    /// [`EntrySet::expire`], each entry dropped kept in `kept` with its
    /// expiry when there is one (a traced engine's, [`Expired`]).
    pub(crate) fn expire_keeping(&mut self, now: Timestamp, mut kept: Option<&mut Expired>) {
        if now < self.earliest {
            return;
        }
        let mut earliest = NEVER;
        let mut dropped = Vec::new();
        let kind = self.kind;
        let arena = &self.arena;
        self.table.retain(|s| {
            if s.expires <= now {
                let length = entry_length(kind, slot_bytes(arena, s));
                if let Some(kept) = kept.as_deref_mut() {
                    kept.keep(slot_bytes(arena, s), s.expires, length);
                }
                dropped.push((s.len, length));
                false
            } else {
                earliest = earliest.min(s.expires);
                true
            }
        });
        for (len, length) in dropped {
            self.garbage += len as usize;
            self.forget_length(length);
        }
        self.earliest = earliest;
        self.compact_if_worth_it();
    }

    /// Rewrites the arena when more than half of it is garbage.
    fn compact_if_worth_it(&mut self) {
        if self.garbage < 4096 || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for slot in self.table.iter_mut() {
            let start = slot.offset as usize;
            let bytes = &self.arena[start..start + slot.len as usize];
            slot.offset = arena.len() as u32;
            arena.extend_from_slice(bytes);
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Every entry as (encoded bytes, expiry), for snapshots.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8], Timestamp)> {
        self.table
            .iter()
            .map(|s| (slot_bytes(&self.arena, s), s.expires))
    }

    /// Adds an entry given as its encoded bytes (from [`entries`](Self::entries)).
    pub(crate) fn add_encoded(&mut self, bytes: &[u8], expires: Timestamp) {
        let hash = self.hasher.hash_one(bytes);
        let slot = Slot {
            offset: self.arena.len() as u32,
            len: bytes.len() as u32,
            expires,
        };
        self.arena.extend_from_slice(bytes);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table
            .insert_unique(hash, slot, |s| hasher.hash_one(slot_bytes(arena, s)));
        if let Some(l) = entry_length(self.kind, bytes) {
            match self.lengths.iter_mut().find(|(n, _)| *n == l) {
                Some((_, count)) => *count += 1,
                None => {
                    self.lengths.push((l, 1));
                    self.lengths
                        .sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
                }
            }
        }
        self.earliest = self.earliest.min(expires);
    }
}

/// Does an entry of a list of `kind` match `value`, `probe` telling
/// whether an encoded entry is there? `lengths` and `more`: the lengths
/// to probe at (`prefixes`, `cidr`).
#[inline(always)]
fn matches(
    kind: ListKind,
    lengths: &[(u32, u32)],
    more: &[(u32, u32)],
    value: ValueRef<'_>,
    probe: impl Fn(&[u8]) -> bool,
) -> Option<bool> {
    match kind {
        ListKind::Values => {
            let mut bytes = smallbuf();
            encode_value(value, &mut bytes)?;
            Some(probe(&bytes))
        }
        ListKind::Prefixes => {
            let mut bytes = smallbuf();
            bytes.push(b'p');
            prefix_text(value, &mut bytes)?;
            Some(lengths.iter().chain(more).any(|&(l, _)| {
                let l = l as usize;
                l < bytes.len() && probe(&bytes[..=l])
            }))
        }
        ListKind::Cidr => {
            let ValueRef::Str(text) = value else {
                return None;
            };
            let addr: IpAddr = text.parse().ok()?;
            let (family, octets) = ip_octets(addr);
            let mut bytes = smallbuf();
            Some(lengths.iter().chain(more).any(|&(l, _)| {
                if (l >> 8) as u8 != family {
                    return false;
                }
                bytes.clear();
                network_bytes(family, (l & 0xff) as u8, &octets, &mut bytes);
                probe(&bytes)
            }))
        }
    }
}

/// A list's entries swept at their expiry, kept by a traced engine so that
/// its trace can say that a value looked up had been in the list and when
/// it expired (`Engine::why`): each entry's bytes and expiry, and the
/// lengths a prefix or a network is probed at. A plain engine keeps none.
#[derive(Debug, Default)]
pub(crate) struct Expired {
    entries: hashbrown::HashMap<Box<[u8]>, Timestamp>,
    lengths: Vec<(u32, u32)>,
}

impl Expired {
    fn keep(&mut self, bytes: &[u8], expires: Timestamp, length: Option<u32>) {
        let at = self.entries.entry(bytes.into()).or_insert(expires);
        *at = (*at).max(expires);
        if let Some(l) = length {
            if !self.lengths.iter().any(|(n, _)| *n == l) {
                self.lengths.push((l, 1));
            }
        }
    }

    /// When the entry of `value` in a list of `kind` expired, if it had one
    /// that expired at or before `now` (the latest of those it matches).
    pub(crate) fn of(
        &self,
        kind: ListKind,
        value: ValueRef<'_>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let latest = std::cell::Cell::new(None::<Timestamp>);
        matches(kind, &self.lengths, &[], value, |bytes| {
            if let Some(&at) = self.entries.get(bytes) {
                if at <= now {
                    latest.set(Some(latest.get().map_or(at, |l| l.max(at))));
                }
            }
            false
        });
        latest.get()
    }
}

fn smallbuf() -> smallvec::SmallVec<[u8; 64]> {
    smallvec::SmallVec::new()
}

fn slot_bytes<'a>(arena: &'a [u8], s: &Slot) -> &'a [u8] {
    &arena[s.offset as usize..s.offset as usize + s.len as usize]
}

/// Encodes an entry; gives the length it is probed at (prefixes, cidr).
fn encode_entry(
    kind: ListKind,
    value: ValueRef<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<u32>, EntryError> {
    match kind {
        ListKind::Values => {
            let mut bytes = smallbuf();
            encode_value(value, &mut bytes).ok_or(EntryError::NotAnEntry)?;
            out.extend_from_slice(&bytes);
            Ok(None)
        }
        ListKind::Prefixes => {
            let mut bytes = smallbuf();
            bytes.push(b'p');
            prefix_text(value, &mut bytes).ok_or(EntryError::NotAPrefix)?;
            out.extend_from_slice(&bytes);
            Ok(entry_length(kind, out))
        }
        ListKind::Cidr => {
            let ValueRef::Str(text) = value else {
                return Err(EntryError::NotANetwork(value.to_owned().to_string()));
            };
            let bad = || EntryError::NotANetwork(text.to_string());
            let (addr, len) = match text.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
                None => (text, None),
            };
            let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
            let (family, octets) = ip_octets(addr);
            let max = if family == 4 { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            let mut bytes = smallbuf();
            network_bytes(family, len, &octets, &mut bytes);
            out.extend_from_slice(&bytes);
            Ok(entry_length(kind, out))
        }
    }
}

/// The probe length of an encoded entry.
fn entry_length(kind: ListKind, bytes: &[u8]) -> Option<u32> {
    match kind {
        ListKind::Values => None,
        ListKind::Prefixes => Some(bytes.len() as u32 - 1),
        ListKind::Cidr => Some(u32::from(bytes[0]) << 8 | u32::from(bytes[1])),
    }
}

/// A `values` entry's bytes: a tag and the normalized value; `None` for
/// what no list holds.
fn encode_value(value: ValueRef<'_>, out: &mut smallvec::SmallVec<[u8; 64]>) -> Option<()> {
    match value {
        ValueRef::Str(s) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        ValueRef::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Float(_) => match key_part(value.to_owned())? {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(b'f');
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            _ => return None,
        },
        ValueRef::Bool(b) => {
            out.push(b'b');
            out.push(u8::from(b));
        }
        _ => return None,
    }
    Some(())
}

/// A prefix list's text of a value: a string, or an integer's digits.
fn prefix_text(value: ValueRef<'_>, out: &mut smallvec::SmallVec<[u8; 64]>) -> Option<()> {
    match value {
        ValueRef::Str(s) => out.extend_from_slice(s.as_bytes()),
        ValueRef::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        _ => return None,
    }
    Some(())
}

fn ip_octets(addr: IpAddr) -> (u8, [u8; 16]) {
    match addr {
        IpAddr::V4(a) => {
            let mut o = [0; 16];
            o[..4].copy_from_slice(&a.octets());
            (4, o)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => ip_octets(IpAddr::V4(v4)),
            None => (6, a.octets()),
        },
    }
}

/// Family, prefix length and the address masked to it.
fn network_bytes(family: u8, len: u8, octets: &[u8; 16], out: &mut smallvec::SmallVec<[u8; 64]>) {
    out.push(family);
    out.push(len);
    let n = if family == 4 { 4 } else { 16 };
    for (i, &b) in octets[..n].iter().enumerate() {
        let bits = (len as usize).saturating_sub(i * 8).min(8);
        let mask = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
        out.push(b & mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn values_match_exactly_numbers_by_value() {
        let mut set = EntrySet::new(ListKind::Values);
        set.add((&s("1.2.3.4")).into(), NEVER, 10).unwrap();
        set.add(ValueRef::Int(7), NEVER, 10).unwrap();
        assert_eq!(set.contains((&s("1.2.3.4")).into(), 0), Some(true));
        assert_eq!(set.contains((&s("1.2.3.5")).into(), 0), Some(false));
        assert_eq!(set.contains(ValueRef::Float(7.0), 0), Some(true));
        assert_eq!(set.contains(ValueRef::Null, 0), None);
        assert!(set.remove(ValueRef::Int(7)).unwrap());
        assert_eq!(set.contains(ValueRef::Int(7), 0), Some(false));
        assert_eq!(
            set.add(ValueRef::Null, NEVER, 10),
            Err(EntryError::NotAnEntry)
        );
    }

    #[test]
    fn prefixes_match_card_bins() {
        let mut set = EntrySet::new(ListKind::Prefixes);
        set.add((&s("411111")).into(), NEVER, 10).unwrap();
        set.add(ValueRef::Int(5500), NEVER, 10).unwrap();
        assert_eq!(set.contains((&s("4111111111111111")).into(), 0), Some(true));
        assert_eq!(set.contains(ValueRef::Int(5500123412341234), 0), Some(true));
        assert_eq!(set.contains((&s("4111")).into(), 0), Some(false));
        assert_eq!(set.contains((&s("411111")).into(), 0), Some(true));
    }

    #[test]
    fn cidr_matches_addresses_in_networks() {
        let mut set = EntrySet::new(ListKind::Cidr);
        set.add((&s("10.0.0.0/8")).into(), NEVER, 10).unwrap();
        set.add((&s("192.168.1.7")).into(), NEVER, 10).unwrap();
        set.add((&s("2001:db8::/32")).into(), NEVER, 10).unwrap();
        assert_eq!(set.contains((&s("10.200.3.4")).into(), 0), Some(true));
        assert_eq!(set.contains((&s("11.0.0.1")).into(), 0), Some(false));
        assert_eq!(set.contains((&s("192.168.1.7")).into(), 0), Some(true));
        assert_eq!(set.contains((&s("192.168.1.8")).into(), 0), Some(false));
        assert_eq!(set.contains((&s("2001:db8:1::5")).into(), 0), Some(true));
        assert_eq!(set.contains((&s("::ffff:10.1.1.1")).into(), 0), Some(true));
        assert_eq!(set.contains((&s("not an ip")).into(), 0), None);
        assert!(set.add((&s("10.0.0.0/33")).into(), NEVER, 10).is_err());
    }

    #[test]
    fn entries_expire_and_the_limit_refuses() {
        let mut set = EntrySet::new(ListKind::Values);
        set.add(ValueRef::Int(1), 100, 2).unwrap();
        set.add(ValueRef::Int(2), NEVER, 2).unwrap();
        assert_eq!(
            set.add(ValueRef::Int(3), NEVER, 2),
            Err(EntryError::Full(2))
        );
        assert_eq!(set.contains(ValueRef::Int(1), 99), Some(true));
        assert_eq!(set.contains(ValueRef::Int(1), 100), Some(false));
        set.expire(100);
        assert_eq!(set.len(), 1);
        set.add(ValueRef::Int(3), NEVER, 2).unwrap();
    }

    #[test]
    fn entry_overhead_is_under_32_bytes() {
        let mut set = EntrySet::new(ListKind::Values);
        let n = 100_000;
        let mut bytes = 0;
        for i in 0..n {
            let v = s(&format!("device-{i:08}"));
            bytes += 1 + 15;
            set.add((&v).into(), NEVER, usize::MAX).unwrap();
        }
        let overhead = (set.heap_bytes() - bytes) as f64 / n as f64;
        eprintln!("list entry overhead: {overhead:.1} bytes per entry");
        // (the arena's growth by doubling is counted: capacity, not length)
        assert!(overhead <= 32.0 + 16.0, "{overhead}");
        set.arena.shrink_to_fit();
        let overhead = (set.heap_bytes() - bytes) as f64 / n as f64;
        assert!(overhead <= 32.0, "{overhead}");
    }
}
