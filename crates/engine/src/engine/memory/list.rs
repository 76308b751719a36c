//! One reference list's entries, held compactly: every entry's bytes in
//! one arena, and a hash table of 16-byte slots (arena offset, length and
//! holder, expiry) over it. An entry costs its encoded bytes (a tag byte
//! and the value's bytes) plus about 19 bytes of table at hashbrown's load
//! factor: under the 32 per entry of `docs/design/lists-indicators.md`
//! (measured by `entry_overhead_is_under_32_bytes` below).
//!
//! Each origin of a change ([`EntryOrigin`]: a reference file, the rules'
//! writes, `$list` records, the library) holds a value apart, until its
//! own expiry: the value is in the list while one of its holds is alive,
//! until the latest of them, and an origin's remove ends its own hold
//! only (`docs/lists.md`, "Origins"). A value held by one origin (the
//! common case) keeps its holder in its slot, in the top byte of its
//! length: it costs nothing more. Of a value held by several, the slot
//! names the one whose hold lasts longest (its expiry is the value's, so a
//! lookup reads the slot alone), and each other origin's hold is in a
//! table of that origin's ([`EntrySet::others`]): 16 bytes and hashbrown's
//! control byte.
//!
//! How a value is encoded depends on the list's [`ListKind`]: `values`
//! encodes the value (numbers normalized so that `1` and `1.0` are one
//! entry); `prefixes` its text (a string, or an integer's digits), probed
//! at each length some entry has; `cidr` a network as family, prefix
//! length and masked address, probed at each prefix length some entry has.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::lookup::ListKind;
use crate::primitives::Timestamp;
use crate::value::{key_part, Value, ValueRef};

/// An entry's place in the arena, its holder, and until when it lives.
#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: u32,
    /// Its length in bytes (the low 24 bits) and its holds (the high 8:
    /// the low 7 its primary holder's number in [`EntrySet::holders`] + 1,
    /// 0 for none; the top bit set when other origins hold it too, their
    /// holds in [`EntrySet::others`]).
    len_held: u32,
    /// Seen by events before this time ([`NEVER`]: until removed): the
    /// latest expiry of its holds, the primary holder's.
    expires: Timestamp,
}

/// The longest entry a list holds, encoded (a value of more is refused,
/// [`EntryError::TooLong`]; a line of input is at most 1 MiB).
pub(crate) const MAX_ENTRY_BYTES: usize = (1 << 24) - 1;

/// The holders a slot can name (their numbers below it; the holds of
/// others are in [`EntrySet::others`]).
const SLOT_HOLDERS: u32 = 127;

/// The bit of a slot's holds that says other origins hold it too.
const SHARED: u32 = 0x80;

impl Slot {
    fn new(offset: u32, len: usize, expires: Timestamp) -> Slot {
        Slot {
            offset,
            // (checked against MAX_ENTRY_BYTES before)
            len_held: (len as u32) & MAX_ENTRY_BYTES as u32,
            expires,
        }
    }

    fn len(&self) -> u32 {
        self.len_held & MAX_ENTRY_BYTES as u32
    }

    /// Its primary holder's number: the one whose hold's expiry is the
    /// slot's (`None`: none named here).
    fn holder(&self) -> Option<u32> {
        match (self.len_held >> 24) & (SHARED - 1) {
            0 => None,
            tag => Some(tag - 1),
        }
    }

    /// Do origins other than its primary holder hold it (their holds in
    /// [`EntrySet::others`])?
    #[inline]
    fn shared(&self) -> bool {
        (self.len_held >> 24) & SHARED != 0
    }

    fn set_holds(&mut self, holder: Option<u32>, shared: bool) {
        let tag = holder.map_or(0, |h| h + 1) | if shared { SHARED } else { 0 };
        self.len_held = (self.len_held & MAX_ENTRY_BYTES as u32) | (tag << 24);
    }
}

/// Another origin's hold of an entry held by several: the entry's place
/// in the arena, and the hold's expiry.
#[derive(Clone, Copy, Debug)]
struct Hold {
    offset: u32,
    len: u32,
    expires: Timestamp,
}

/// Who holds a list's entry (`docs/lists.md`, "Origins"): each origin
/// holds a value apart, with an expiry of its own; the value is in the
/// list while one of its holds is alive, and an origin's remove (a
/// reference file's edit that drops the value, say) ends its own hold
/// only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum EntryOrigin {
    /// The library: [`Engine::add_to_list`](crate::Engine::add_to_list)
    /// and its kin, a run's handle.
    Library,
    /// `$list` records: of the input, of a rules topic, of a list's
    /// topic.
    Records,
    /// The `then` writes of the rules.
    Rules,
    /// A reference file (`--list NAME=PATH`), by its path as given.
    File(Arc<str>),
    /// No origin recorded: an entry restored from a snapshot of a build
    /// that kept none (format version 8 and before). Any origin's change
    /// of the value ends this hold, as any change of a value did then.
    Unrecorded,
}

impl EntryOrigin {
    /// The reference file at `path`.
    pub fn file(path: &std::path::Path) -> EntryOrigin {
        EntryOrigin::File(path.to_string_lossy().into())
    }
}

impl std::fmt::Display for EntryOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryOrigin::Library => f.write_str("the library"),
            EntryOrigin::Records => f.write_str("`$list` records"),
            EntryOrigin::Rules => f.write_str("the rules' writes"),
            EntryOrigin::File(path) => write!(f, "{path}"),
            EntryOrigin::Unrecorded => f.write_str("no recorded origin"),
        }
    }
}

/// The holds of one value: each holder's number and its hold's expiry,
/// by holder.
pub(crate) type Holds = SmallVec<[(u32, Timestamp); 2]>;

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
    /// The entry is longer than a list holds (16 MiB).
    TooLong(usize),
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
            EntryError::TooLong(n) => {
                write!(
                    f,
                    "an entry of {n} bytes is longer than a list holds ({MAX_ENTRY_BYTES})"
                )
            }
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
    /// The origins that held an entry, numbered by their place (a few:
    /// never shrinks).
    holders: Vec<EntryOrigin>,
    /// By holder number, its holds of the entries held by several origins
    /// but for the one each slot names (none for most lists: a table per
    /// origin that shares an entry, by the entry's hash).
    others: Vec<HashTable<Hold>>,
}

impl std::fmt::Debug for EntrySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySet")
            .field("kind", &self.kind)
            .field("len", &self.table.len())
            .field("holders", &self.holders)
            .finish()
    }
}

/// A change of one origin's hold of a value: held until a time, or let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HoldChange {
    Until(Timestamp),
    Released,
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
            holders: Vec::new(),
            others: Vec::new(),
        }
    }

    pub(crate) fn kind(&self) -> ListKind {
        self.kind
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes held (arena and table; the other origins' holds of the
    /// values held by several).
    pub(crate) fn heap_bytes(&self) -> usize {
        let others: usize = (self.others.iter())
            .map(|t| t.capacity() * (std::mem::size_of::<Hold>() + 1))
            .sum();
        self.arena.capacity()
            + self.table.capacity() * (std::mem::size_of::<Slot>() + 1)
            + self.lengths.capacity() * 8
            + others
    }

    /// `value` encoded as an entry of the list (`None`: the list cannot
    /// hold it): one value, one encoding (`1` and `1.0` alike).
    pub(crate) fn encode(&self, value: ValueRef<'_>) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        encode_entry(self.kind, value, &mut bytes).ok()?;
        Some(bytes)
    }

    /// The number of `origin` among the holders (added when new).
    fn holder_id(&mut self, origin: &EntryOrigin) -> u32 {
        match self.holders.iter().position(|h| h == origin) {
            Some(at) => at as u32,
            None => {
                self.holders.push(origin.clone());
                (self.holders.len() - 1) as u32
            }
        }
    }

    /// Adds (or refreshes) `value` until `expires`, held by the rules
    /// alone: the sets of a shadow copy, which one origin changes.
    pub(crate) fn add(
        &mut self,
        value: ValueRef<'_>,
        expires: Timestamp,
        limit: usize,
    ) -> Result<(), EntryError> {
        self.hold(value, expires, limit, &EntryOrigin::Rules, Timestamp::MIN)
    }

    /// Removes `value`, held by the rules alone ([`EntrySet::add`]); false
    /// when it was not there.
    pub(crate) fn remove(&mut self, value: ValueRef<'_>) -> Result<bool, EntryError> {
        self.release(value, &EntryOrigin::Rules, Timestamp::MIN)
    }

    /// `origin` holds `value` until `expires` (its hold made or
    /// refreshed), at event time `now`: the value is in the list until
    /// the latest of its holds' expiries. An origin's hold of a value
    /// the list does not have yet is refused when the list holds
    /// `limit` entries.
    pub(crate) fn hold(
        &mut self,
        value: ValueRef<'_>,
        expires: Timestamp,
        limit: usize,
        origin: &EntryOrigin,
        now: Timestamp,
    ) -> Result<(), EntryError> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let length = encode_entry(self.kind, value, &mut bytes);
        let result = match length {
            Err(e) => Err(e),
            Ok(_) if bytes.len() > MAX_ENTRY_BYTES => Err(EntryError::TooLong(bytes.len())),
            Ok(length) => {
                let change = (HoldChange::Until(expires), origin, now);
                self.hold_encoded(&bytes, length, change, limit)
            }
        };
        self.scratch = bytes;
        result.map(drop)
    }

    /// `origin` lets `value` go, at event time `now`: its hold ends, and
    /// the value leaves the list when no other origin holds it (true).
    pub(crate) fn release(
        &mut self,
        value: ValueRef<'_>,
        origin: &EntryOrigin,
        now: Timestamp,
    ) -> Result<bool, EntryError> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let result = match encode_entry(self.kind, value, &mut bytes) {
            Err(e) => Err(e),
            Ok(length) => self.hold_encoded(&bytes, length, (HoldChange::Released, origin, now), 0),
        };
        self.scratch = bytes;
        let gone = result?;
        self.compact_if_worth_it();
        Ok(gone)
    }

    /// [`hold`](Self::hold) or [`release`](Self::release) of the entry
    /// encoded as `bytes` (probed at `length`): true when the entry left
    /// the list. A change ends the holds that expired by `now`, and the
    /// hold of no recorded origin; one of no recorded origin, every hold.
    fn hold_encoded(
        &mut self,
        bytes: &[u8],
        length: Option<u32>,
        (hold, origin, now): (HoldChange, &EntryOrigin, Timestamp),
        limit: usize,
    ) -> Result<bool, EntryError> {
        let id = self.holder_id(origin);
        let hash = self.hasher.hash_one(bytes);
        let arena = &self.arena;
        let found = self
            .table
            .find_entry(hash, |s| slot_bytes(arena, s) == bytes);
        let mut entry = match found {
            Ok(entry) => entry,
            Err(_) => {
                let HoldChange::Until(expires) = hold else {
                    return Ok(false);
                };
                if self.table.len() >= limit {
                    return Err(EntryError::Full(limit));
                }
                self.insert(bytes, (hash, length), smallvec::smallvec![(id, expires)]);
                return Ok(false);
            }
        };
        let slot = entry.get_mut();
        let mut held = holds_of(slot, hash, &self.others);
        let holders = &self.holders;
        let unrecorded = |h: u32| holders[h as usize] == EntryOrigin::Unrecorded;
        let all = *origin == EntryOrigin::Unrecorded;
        held.retain(|&mut (h, e)| e > now && h != id && !all && !unrecorded(h));
        if let HoldChange::Until(expires) = hold {
            let at = held.partition_point(|&(h, _)| h < id);
            held.insert(at, (id, expires));
        }
        if slot.shared() {
            forget_others(slot, hash, &mut self.others);
        }
        if held.is_empty() {
            let (slot, _) = entry.remove();
            self.garbage += slot.len() as usize;
            self.forget_length(length);
            return Ok(true);
        }
        let rehash = (&self.arena[..], &self.hasher);
        place(slot, hash, &held, (&mut self.others, rehash));
        self.earliest = self.earliest.min(slot.expires);
        Ok(false)
    }

    /// A new entry of `bytes` (its hash, and the length it is probed at)
    /// with its holds (at least one).
    fn insert(&mut self, bytes: &[u8], (hash, length): (u64, Option<u32>), held: Holds) {
        let offset = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        let mut slot = Slot::new(offset, bytes.len(), NEVER);
        self.arena.extend_from_slice(bytes);
        place(
            &mut slot,
            hash,
            &held,
            (&mut self.others, (&self.arena[..], &self.hasher)),
        );
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table
            .insert_unique(hash, slot, |s| hasher.hash_one(slot_bytes(arena, s)));
        self.count_length(length);
        self.earliest = self.earliest.min(slot.expires);
    }

    fn count_length(&mut self, length: Option<u32>) {
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
    /// `now` (`docs/semantics.md`, "Shadow rules")? The copy differs from
    /// this list in the rules' hold only: `shadow`: the copy's rules'
    /// holds (made by shadow writes, seen before their expiry); `hidden`:
    /// the values whose rules' hold here the copy does not have (removed
    /// or expired there), each until that hold here expires, read from the
    /// other origins' holds; any other value is this list's.
    pub(crate) fn contains_shadowed(
        &self,
        shadow: &EntrySet,
        hidden: &EntrySet,
        value: ValueRef<'_>,
        now: Timestamp,
    ) -> Option<bool> {
        let rules = self.holders.iter().position(|h| *h == EntryOrigin::Rules);
        matches(self.kind, &self.lengths, &shadow.lengths, value, |b| {
            if shadow.probe(b, now) {
                true
            } else if hidden.probe(b, now) {
                self.probe_held(b, now, |h| Some(h as usize) != rules)
            } else {
                self.probe(b, now)
            }
        })
    }

    /// The holds of the entry encoded as `bytes` (none: no entry).
    fn holds_of_bytes(&self, bytes: &[u8]) -> Holds {
        let hash = self.hasher.hash_one(bytes);
        match (self.table).find(hash, |s| slot_bytes(&self.arena, s) == bytes) {
            Some(slot) => holds_of(slot, hash, &self.others),
            None => Holds::new(),
        }
    }

    /// Until when `origin` holds the entry encoded as `bytes`, if it holds
    /// it (its hold may have expired at the engine's time, not swept yet).
    pub(crate) fn hold_of(&self, bytes: &[u8], origin: &EntryOrigin) -> Option<Timestamp> {
        let id = self.holders.iter().position(|h| h == origin)? as u32;
        let holds = self.holds_of_bytes(bytes);
        holds.iter().find(|&&(h, _)| h == id).map(|&(_, e)| e)
    }

    /// Does a holder that `counts` (by number) hold the entry encoded as
    /// `bytes` at `now`?
    fn probe_held(&self, bytes: &[u8], now: Timestamp, counts: impl Fn(u32) -> bool) -> bool {
        (self.holds_of_bytes(bytes).iter()).any(|&(h, e)| e > now && counts(h))
    }

    /// The expiry of the entry encoded as `bytes` (`None`: no entry): the
    /// latest of its holds'.
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
        let (arena, hasher, others) = (&self.arena, &self.hasher, &mut self.others);
        self.table.retain(|s| {
            if s.expires <= now {
                let length = entry_length(kind, slot_bytes(arena, s));
                if let Some(kept) = kept.as_deref_mut() {
                    kept.keep(slot_bytes(arena, s), s.expires, length);
                }
                if s.shared() {
                    forget_others(s, hasher.hash_one(slot_bytes(arena, s)), others);
                }
                dropped.push((s.len(), length));
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

    /// Rewrites the arena when more than half of it is garbage (the other
    /// origins' holds follow their entries).
    fn compact_if_worth_it(&mut self) {
        if self.garbage < 4096 || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        // (each entry held by several: its old place, its new one)
        let mut moved = hashbrown::HashMap::new();
        for slot in self.table.iter_mut() {
            let start = slot.offset as usize;
            let bytes = &self.arena[start..start + slot.len() as usize];
            let offset = arena.len() as u32;
            if slot.shared() {
                moved.insert(slot.offset, offset);
            }
            slot.offset = offset;
            arena.extend_from_slice(bytes);
        }
        // (in place: a hold's bucket is its entry's hash, which stays)
        for hold in self.others.iter_mut().flat_map(|t| t.iter_mut()) {
            if let Some(&offset) = moved.get(&hold.offset) {
                hold.offset = offset;
            }
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

    /// Each entry `origin` holds, as its bytes and the hold's expiry
    /// (which may have passed, the entry not swept yet), in no order.
    pub(crate) fn each_held_by(
        &self,
        origin: &EntryOrigin,
        visit: &mut dyn FnMut(&[u8], Timestamp),
    ) {
        let Some(id) = self.holders.iter().position(|h| h == origin) else {
            return;
        };
        let id = id as u32;
        for s in self.table.iter() {
            let bytes = slot_bytes(&self.arena, s);
            if !s.shared() {
                // (held by one origin: the one the slot names)
                if s.holder() == Some(id) {
                    visit(bytes, s.expires);
                }
                continue;
            }
            let holds = holds_of(s, self.hasher.hash_one(bytes), &self.others);
            if let Some(&(_, expires)) = holds.iter().find(|&&(h, _)| h == id) {
                visit(bytes, expires);
            }
        }
    }

    /// The value an entry's bytes encode, as the list holds it: the value
    /// itself (`values`), a prefix's text (`prefixes`), a network's text
    /// ([`network_text`]'s spelling, `cidr`). `None` for bytes no entry
    /// of the list has.
    #[cfg(test)]
    pub(crate) fn decode(&self, bytes: &[u8]) -> Option<Value> {
        decode_entry(self.kind, bytes)
    }

    /// [`decode`](Self::decode), the value lent to `visit` (a text of
    /// the arena's, not copied); false for bytes that encode none.
    pub(crate) fn decode_with(&self, bytes: &[u8], visit: &mut dyn FnMut(ValueRef<'_>)) -> bool {
        match (self.kind, bytes.split_first()) {
            (ListKind::Values, Some((b's', text))) | (ListKind::Prefixes, Some((b'p', text))) => {
                match std::str::from_utf8(text) {
                    Ok(text) => visit(ValueRef::Str(text)),
                    Err(_) => return false,
                }
            }
            _ => match decode_entry(self.kind, bytes) {
                Some(value) => visit((&value).into()),
                None => return false,
            },
        }
        true
    }

    /// The origins that held an entry, by number.
    pub(crate) fn holders(&self) -> &[EntryOrigin] {
        &self.holders
    }

    /// Each entry's holds (each holder's number and expiry), in the order
    /// of [`entries`](Self::entries).
    pub(crate) fn entry_holds(&self) -> impl Iterator<Item = Holds> + '_ {
        self.table.iter().map(|s| match s.shared() {
            false => holds_of(s, 0, &self.others),
            true => holds_of(
                s,
                self.hasher.hash_one(slot_bytes(&self.arena, s)),
                &self.others,
            ),
        })
    }

    /// Adds an entry given as its encoded bytes (from
    /// [`entries`](Self::entries)), held by `origin` alone.
    pub(crate) fn add_encoded(&mut self, bytes: &[u8], expires: Timestamp, origin: &EntryOrigin) {
        self.add_encoded_holds(bytes, [(origin.clone(), expires)]);
    }

    /// Adds an entry given as its encoded bytes (from
    /// [`entries`](Self::entries)) with its holds (each origin's expiry);
    /// none without a hold. An entry there already, or longer than a
    /// list holds, is left as it is.
    pub(crate) fn add_encoded_holds(
        &mut self,
        bytes: &[u8],
        holds: impl IntoIterator<Item = (EntryOrigin, Timestamp)>,
    ) {
        let mut held: Holds = SmallVec::new();
        for (origin, expires) in holds {
            let id = self.holder_id(&origin);
            held.retain(|&mut (h, _)| h != id);
            held.push((id, expires));
        }
        held.sort_unstable_by_key(|&(h, _)| h);
        if held.is_empty() || bytes.len() > MAX_ENTRY_BYTES || self.expiry_of(bytes).is_some() {
            return;
        }
        let hash = self.hasher.hash_one(bytes);
        self.insert(bytes, (hash, entry_length(self.kind, bytes)), held);
    }
}

/// The holds of the entry of `slot` (whose bytes hash to `hash`; unused
/// unless others hold it too), by holder.
fn holds_of(slot: &Slot, hash: u64, others: &[HashTable<Hold>]) -> Holds {
    let mut holds = Holds::new();
    if let Some(h) = slot.holder() {
        holds.push((h, slot.expires));
    }
    if slot.shared() {
        for (h, table) in others.iter().enumerate() {
            if let Some(hold) = table.find(hash, |o| o.offset == slot.offset) {
                holds.push((h as u32, hold.expires));
            }
        }
        holds.sort_unstable_by_key(|&(h, _)| h);
    }
    holds
}

/// Takes the other origins' holds of the entry of `slot` out of `others`.
fn forget_others(slot: &Slot, hash: u64, others: &mut [HashTable<Hold>]) {
    for table in others.iter_mut() {
        if let Ok(hold) = table.find_entry(hash, |o| o.offset == slot.offset) {
            hold.remove();
        }
    }
}

/// Puts `held` (one hold or more, by holder) as the holds of the entry of
/// `slot` (its bytes' hash `hash`, in `arena`): the slot's expiry the
/// latest, its primary holder one whose hold that is (named in the slot
/// when its number allows), the others' holds in their tables of
/// `others` (none had one for this entry).
fn place(
    slot: &mut Slot,
    hash: u64,
    held: &Holds,
    (others, (arena, hasher)): (
        &mut Vec<HashTable<Hold>>,
        (&[u8], &hashbrown::DefaultHashBuilder),
    ),
) {
    let expires = held.iter().map(|&(_, e)| e).max().unwrap_or(NEVER);
    let primary = (held.iter())
        .find(|&&(h, e)| e == expires && h < SLOT_HOLDERS)
        .map(|&(h, _)| h);
    slot.expires = expires;
    slot.set_holds(primary, held.len() > usize::from(primary.is_some()));
    for &(h, e) in held.iter().filter(|&&(h, _)| Some(h) != primary) {
        if others.len() <= h as usize {
            others.resize_with(h as usize + 1, HashTable::new);
        }
        let hold = Hold {
            offset: slot.offset,
            len: slot.len(),
            expires: e,
        };
        others[h as usize].insert_unique(hash, hold, |o| {
            let start = o.offset as usize;
            hasher.hash_one(&arena[start..start + o.len as usize])
        });
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
    &arena[s.offset as usize..s.offset as usize + s.len() as usize]
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

/// `value` as an entry of a list of `kind` holds it: two values are one
/// entry exactly when they give the same value here (`None`: no list of
/// the kind holds it). In a list of values a number is normalized (`3.0`
/// is `3`); in a list of prefixes a value is its text (`5500` is
/// `"5500"`); in a list of networks a network is in [`network_text`]'s
/// spelling. What a list holds is given in this form
/// ([`Engine::list_held_by`](crate::Engine::list_held_by)).
///
/// ```
/// use cepheid_core::lookup::ListKind;
/// use cepheid_engine::engine::list_entry_value;
/// use cepheid_engine::{Value, ValueRef};
/// assert_eq!(list_entry_value(ListKind::Values, ValueRef::Float(3.0)), Some(Value::Int(3)));
/// assert_eq!(list_entry_value(ListKind::Prefixes, ValueRef::Int(55)), Some(Value::Str("55".into())));
/// assert_eq!(list_entry_value(ListKind::Values, ValueRef::Null), None);
/// ```
pub fn list_entry_value(kind: ListKind, value: ValueRef<'_>) -> Option<Value> {
    let mut bytes = Vec::new();
    encode_entry(kind, value, &mut bytes).ok()?;
    decode_entry(kind, &bytes)
}

/// The network `text` names as an entry of a `cidr` list, as the list
/// holds it, in one spelling: the address masked to its prefix length,
/// then `/` and the length (`10.1.2.3/8` is `10.0.0.0/8`,
/// `2001:DB8:0::/32` is `2001:db8::/32`), an address alone (or with the
/// whole length, `/32`, `/128`) without it, an IPv4-mapped IPv6 address
/// as its IPv4 one. `None` for a text that is no network: two texts name
/// one entry exactly when they give the same text here.
///
/// ```
/// use cepheid_engine::engine::network_text;
/// assert_eq!(network_text("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
/// assert_eq!(network_text("10.0.0.1/32").as_deref(), Some("10.0.0.1"));
/// assert_eq!(network_text("::ffff:10.0.0.1").as_deref(), Some("10.0.0.1"));
/// assert_eq!(network_text("2001:DB8:0::/32").as_deref(), Some("2001:db8::/32"));
/// assert_eq!(network_text("10.0.0.0/33"), None);
/// ```
pub fn network_text(text: &str) -> Option<String> {
    let mut bytes = Vec::new();
    encode_entry(ListKind::Cidr, ValueRef::Str(text), &mut bytes).ok()?;
    network_of(&bytes)
}

/// The value of an entry encoded by [`encode_entry`] (`None`: bytes that
/// encode none).
fn decode_entry(kind: ListKind, bytes: &[u8]) -> Option<Value> {
    match kind {
        ListKind::Values => {
            let (&tag, rest) = bytes.split_first()?;
            match tag {
                b's' => Some(Value::Str(std::str::from_utf8(rest).ok()?.into())),
                b'i' => Some(Value::Int(i64::from_le_bytes(rest.try_into().ok()?))),
                b'f' => Some(Value::Float(f64::from_bits(u64::from_le_bytes(
                    rest.try_into().ok()?,
                )))),
                b'b' => Some(Value::Bool(*rest.first()? != 0)),
                _ => None,
            }
        }
        ListKind::Prefixes => {
            let text = bytes.strip_prefix(b"p")?;
            Some(Value::Str(std::str::from_utf8(text).ok()?.into()))
        }
        ListKind::Cidr => network_of(bytes).map(|text| Value::Str(text.into())),
    }
}

/// A `cidr` entry's network as text: its address, then `/` and its
/// length unless the address is whole (`None`: bytes of no network).
fn network_of(bytes: &[u8]) -> Option<String> {
    let (&family, rest) = bytes.split_first()?;
    let (&len, octets) = rest.split_first()?;
    let (address, whole) = match family {
        4 => {
            let octets: [u8; 4] = octets.try_into().ok()?;
            (std::net::Ipv4Addr::from(octets).to_string(), 32)
        }
        _ => {
            let octets: [u8; 16] = octets.try_into().ok()?;
            (std::net::Ipv6Addr::from(octets).to_string(), 128)
        }
    };
    Some(match len == whole {
        true => address,
        false => format!("{address}/{len}"),
    })
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
#[path = "holds_tests.rs"]
mod holds_tests;

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
        // (an entry's holder is in its slot: 16 bytes, as without origins)
        assert_eq!(std::mem::size_of::<Slot>(), 16);
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
