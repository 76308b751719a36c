//! The entries one list file gave ([`Entries`]), held compactly: a list of
//! ten million entries is held beside the list itself for as long as the
//! run may read the file again (`--watch`, a resume), so each entry costs
//! its value's JSON text and 24 bytes, not a tree node and an allocation
//! (issue 60, item 15).

use std::fmt;
use std::hash::BuildHasher;

use cepheid_engine::Timestamp;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One entry's place in the text, and its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    start: u64,
    until: Timestamp,
    len: u32,
    /// Has it an expiry (`until`)?
    expires: bool,
}

/// Each value's JSON text, with its expiry (`None`: none), in the order of
/// the texts: a map from text to expiry, as a `BTreeMap` of them would be
/// (and in the same serialized form: a map).
#[derive(Clone, Default)]
pub struct Entries {
    text: String,
    /// Sorted by their text, one per text.
    slots: Vec<Slot>,
}

impl Entries {
    /// No entry.
    pub const fn new() -> Entries {
        Entries {
            text: String::new(),
            slots: Vec::new(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No entry?
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn text_of(&self, slot: &Slot) -> &str {
        let start = slot.start as usize;
        &self.text[start..start + slot.len as usize]
    }

    fn find(&self, text: &str) -> Result<usize, usize> {
        self.slots.binary_search_by(|s| self.text_of(s).cmp(text))
    }

    /// The expiry of the entry of `text` (`Some(None)`: an entry without
    /// one; `None`: no entry).
    pub fn get(&self, text: &str) -> Option<Option<Timestamp>> {
        let slot = &self.slots[self.find(text).ok()?];
        Some(slot.expires.then_some(slot.until))
    }

    /// Is there an entry of `text`?
    pub fn contains_key(&self, text: &str) -> bool {
        self.find(text).is_ok()
    }

    /// Each entry, in the order of their texts.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<Timestamp>)> + '_ {
        (self.slots.iter()).map(|s| (self.text_of(s), s.expires.then_some(s.until)))
    }

    /// The texts, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.slots.iter().map(|s| self.text_of(s))
    }

    /// A hash index of the texts, for many lookups in no order: a binary
    /// search of ten million texts misses the cache at each of its steps
    /// (`contains_key`, 4 bytes an entry more while it lives).
    pub(super) fn index(&self) -> Index<'_> {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut table = hashbrown::HashTable::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            // (a file of more than 4 G entries is past any memory here)
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let hash = hasher.hash_one(self.text_of(slot));
            table.insert_unique(hash, i, |&j| {
                hasher.hash_one(self.text_of(&self.slots[j as usize]))
            });
        }
        Index {
            entries: self,
            table,
            hasher,
        }
    }
}

/// The texts of [`Entries`] by their hash ([`Entries::index`]).
pub(super) struct Index<'a> {
    entries: &'a Entries,
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Index<'_> {
    /// Is there an entry of `text`?
    pub(super) fn contains(&self, text: &str) -> bool {
        let hash = self.hasher.hash_one(text);
        let entries = self.entries;
        (self.table)
            .find(hash, |&i| {
                entries.text_of(&entries.slots[i as usize]) == text
            })
            .is_some()
    }
}

/// Entries gathered in the order they come, as a file gives them: each
/// value's last one wins ([`Gathering::done`]).
#[derive(Default)]
pub(super) struct Gathering {
    entries: Entries,
}

impl Gathering {
    /// Room for `entries` entries of `text` bytes of text in all, taken
    /// at once (the entries of a file are held whole: never twice their
    /// size, as growing by doubling would hold them).
    pub(super) fn with_room(entries: usize, text: usize) -> Gathering {
        Gathering {
            entries: Entries {
                text: String::with_capacity(text),
                slots: Vec::with_capacity(entries),
            },
        }
    }

    /// The entry of `text` until `until`.
    pub(super) fn push(&mut self, text: &str, until: Option<Timestamp>) {
        let entries = &mut self.entries;
        entries.slots.push(Slot {
            start: entries.text.len() as u64,
            until: until.unwrap_or_default(),
            // (a line is far below 4 GiB: a file's whole text is not)
            len: u32::try_from(text.len()).unwrap_or(u32::MAX),
            expires: until.is_some(),
        });
        entries.text.push_str(text);
    }

    /// The entries, one per text, each its last one (sorted in place:
    /// nothing more is held); and the texts given more than once, with
    /// how many there were.
    pub(super) fn done(self, said: usize) -> (Entries, Vec<String>, u64) {
        let mut entries = self.entries;
        let Entries { text, slots } = &mut entries;
        let text_of = |s: &Slot| &text[s.start as usize..s.start as usize + s.len as usize];
        // (of one text, in the order given: a later one starts later)
        slots.sort_unstable_by(|a, b| text_of(a).cmp(text_of(b)).then(a.start.cmp(&b.start)));
        let (mut kept, mut twice, mut said_twice) = (0usize, 0u64, Vec::new());
        for i in 0..slots.len() {
            let last_of_its_text =
                i + 1 == slots.len() || text_of(&slots[i + 1]) != text_of(&slots[i]);
            if !last_of_its_text {
                continue;
            }
            let first_of_its_text = i == 0 || text_of(&slots[i - 1]) != text_of(&slots[i]);
            if !first_of_its_text {
                twice += 1;
                if said_twice.len() < said {
                    said_twice.push(text_of(&slots[i]).to_string());
                }
            }
            slots[kept] = slots[i];
            kept += 1;
        }
        slots.truncate(kept);
        slots.shrink_to_fit();
        text.shrink_to_fit();
        (entries, said_twice, twice)
    }
}

impl FromIterator<(String, Option<Timestamp>)> for Entries {
    fn from_iter<I: IntoIterator<Item = (String, Option<Timestamp>)>>(iter: I) -> Entries {
        let mut gathering = Gathering::default();
        for (text, until) in iter {
            gathering.push(&text, until);
        }
        gathering.done(0).0
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Entries {}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of entries' texts to their expiries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut gathering = Gathering::default();
                while let Some((text, until)) = map.next_entry::<String, Option<Timestamp>>()? {
                    gathering.push(&text, until);
                }
                Ok(gathering.done(0).0)
            }
        }
        d.deserialize_map(Map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_a_text_wins_the_order_is_the_texts_and_the_form_a_maps() {
        let mut g = Gathering::default();
        g.push("\"b\"", None);
        g.push("3", Some(5));
        g.push("\"a\"", Some(1));
        g.push("3", None);
        g.push("3", Some(7));
        let (e, said, twice) = g.done(10);
        let all: Vec<_> = e.iter().collect();
        assert_eq!(
            all,
            vec![("\"a\"", Some(1)), ("\"b\"", None), ("3", Some(7))]
        );
        assert_eq!((said, twice), (vec!["3".to_string()], 1));
        assert_eq!(e.get("3"), Some(Some(7)));
        assert_eq!(e.get("\"b\""), Some(None));
        assert_eq!(e.get("4"), None);
        let json = serde_json::to_string(&e).unwrap();
        let map: std::collections::BTreeMap<String, Option<Timestamp>> =
            serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&map).unwrap(), json);
        let back: Entries = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let bytes = postcard::to_allocvec(&e).unwrap();
        assert_eq!(postcard::to_allocvec(&map).unwrap(), bytes);
        assert_eq!(postcard::from_bytes::<Entries>(&bytes).unwrap(), e);
    }
}
