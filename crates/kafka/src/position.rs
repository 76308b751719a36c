//! Where a Kafka source stands: per topic and partition, the offset of
//! the next record it hands out, and a fingerprint of the record before
//! it ([`Mark`]), by which a resume tells that the topic is still the one
//! the offset was taken on. It goes into cepheid's checkpoints (its
//! serde), and a transactional sink commits its offsets with the records.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Per topic and partition, the offset of the next record to read (the
/// offset after the last one handed out): Kafka's meaning of a committed
/// offset; and for each partition that handed out a record, that
/// record's [`Mark`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaPosition {
    /// topic → partition → next offset.
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    /// topic → partition → the record before the next offset, when the
    /// source handed it out (or the position it started from had it).
    pub marks: BTreeMap<String, BTreeMap<i32, Mark>>,
    /// topic → partition of a topic of control records (the rules topic,
    /// a list's topic) whose records from its offset on were read and
    /// held for event time when the position was taken: how the reader
    /// judged them then ([`Held`]).
    #[serde(default)]
    pub held: BTreeMap<String, BTreeMap<i32, Held>>,
}

/// The records of a topic of control records that a position's offset
/// reads again, which the run had read and held for event time when it
/// took the position: those before `through` waited for their times,
/// but those at the offsets of `ahead`, which were read when event time
/// was at the watermark given there, further ahead of it than the bound
/// (`cepheid_runtime::Judged`). A resumed run judges them so again
/// instead of against the event time it resumed at (issue 59).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Held {
    /// The offset after the last record read.
    pub through: i64,
    /// The offsets of those judged far ahead, each with the watermark
    /// then.
    pub ahead: Vec<(i64, i64)>,
}

/// A fingerprint of one record: enough to tell, on resuming, that the
/// record before a kept offset is still the one that was read there (a
/// topic deleted and written again has other records at those offsets,
/// or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mark {
    /// Its offset (the kept offset less 1).
    pub offset: i64,
    /// Its Kafka timestamp, milliseconds.
    pub timestamp: Option<i64>,
    /// The CRC-32 of its key (`None`: no key).
    pub key: Option<u32>,
    /// The CRC-32 of its value (`None`: no value, a tombstone).
    pub value: Option<u32>,
}

impl Mark {
    /// The mark of a record at `offset`.
    pub fn of(
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Mark {
        Mark {
            offset,
            timestamp,
            key: key.map(crc32fast::hash),
            value: value.map(crc32fast::hash),
        }
    }
}

impl fmt::Display for Mark {
    /// `offset 453 (timestamp 1700000000000, key crc 1a2b3c4d, value crc
    /// 5e6f7081)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let crc = |c: Option<u32>| c.map_or_else(|| "none".to_string(), |c| format!("crc {c:08x}"));
        let time = self
            .timestamp
            .map_or_else(|| "none".to_string(), |t| t.to_string());
        write!(
            f,
            "offset {} (timestamp {time}, key {}, value {})",
            self.offset,
            crc(self.key),
            crc(self.value)
        )
    }
}

/// The position as cepheid before the marks wrote it (a checkpoint of an
/// older build): offsets alone.
#[derive(Deserialize)]
struct Unmarked {
    offsets: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// The position as cepheid wrote it with marks, before the records held
/// ([`Held`]): a resumed run judges the records it reads again as read
/// then.
#[derive(Deserialize)]
struct Marked {
    offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    marks: BTreeMap<String, BTreeMap<i32, Mark>>,
}

impl KafkaPosition {
    /// No partition.
    pub fn new() -> KafkaPosition {
        KafkaPosition::default()
    }

    /// The next offset of `topic`'s `partition`, if it has one.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(topic)?.get(&partition).copied()
    }

    /// Sets the next offset of `topic`'s `partition` (and forgets its
    /// mark, which was the record before another offset).
    pub fn set(&mut self, topic: &str, partition: i32, next: i64) {
        put(&mut self.offsets, topic, partition, next);
        if let Some(marks) = self.marks.get_mut(topic) {
            marks.remove(&partition);
        }
    }

    /// Sets the next offset of `topic`'s `partition` after the record
    /// `mark` (at `next - 1`), handed out.
    pub fn set_after(&mut self, topic: &str, partition: i32, mark: Mark) {
        put(&mut self.offsets, topic, partition, mark.offset + 1);
        put(&mut self.marks, topic, partition, mark);
    }

    /// The mark of `topic`'s `partition`: the record before its next
    /// offset, if known.
    pub fn mark(&self, topic: &str, partition: i32) -> Option<Mark> {
        self.marks.get(topic)?.get(&partition).copied()
    }

    /// The position in `bytes` (postcard), written by this build, by one
    /// before the records held ([`Held`], then none), or by one before the
    /// marks (then without marks either: the second value is true).
    /// (postcard reads a value's fields in order and leaves bytes after
    /// them unread: each form is tried from the newest.)
    pub(crate) fn from_postcard(bytes: &[u8]) -> Result<(KafkaPosition, bool), postcard::Error> {
        let e = match postcard::from_bytes::<KafkaPosition>(bytes) {
            Ok(position) => return Ok((position, false)),
            Err(e) => e,
        };
        if let Ok(old) = postcard::from_bytes::<Marked>(bytes) {
            let position = KafkaPosition {
                offsets: old.offsets,
                marks: old.marks,
                held: BTreeMap::new(),
            };
            return Ok((position, false));
        }
        match postcard::from_bytes::<Unmarked>(bytes) {
            Ok(old) => Ok((
                KafkaPosition {
                    offsets: old.offsets,
                    ..KafkaPosition::default()
                },
                true,
            )),
            Err(_) => Err(e),
        }
    }

    /// The records of `topic`'s `partition` (a topic of control records)
    /// held when the position was taken, if any ([`Held`]).
    pub fn held(&self, topic: &str, partition: i32) -> Option<&Held> {
        self.held.get(topic)?.get(&partition)
    }

    /// Sets the records of `topic`'s `partition` held ([`Held`]).
    pub fn set_held(&mut self, topic: &str, partition: i32, held: Held) {
        put(&mut self.held, topic, partition, held);
    }

    /// Each (topic, partition, next offset), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.offsets
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, o)| (t.as_str(), *p, *o)))
    }

    /// How many partitions it holds.
    pub fn len(&self) -> usize {
        self.offsets.values().map(BTreeMap::len).sum()
    }

    /// True when it holds no partition.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offsets of `partitions` in `shares`, the positions of sources
    /// that each read a share of the partitions (the workers of a run
    /// whose checkpoint resumes on another number of workers): each
    /// partition's from the share that names it; a partition no share
    /// names is left out. Two shares that name a partition at different
    /// offsets are an error (`(topic, partition)`, the two offsets): the
    /// shares of one checkpoint are disjoint.
    pub fn of_shares(
        shares: &[KafkaPosition],
        partitions: &[(String, i32)],
    ) -> Result<KafkaPosition, (String, i32, i64, i64)> {
        let mut at = KafkaPosition::new();
        for (topic, partition) in partitions {
            for share in shares {
                let Some(offset) = share.get(topic, *partition) else {
                    continue;
                };
                match at.get(topic, *partition) {
                    Some(other) if other != offset => {
                        return Err((topic.clone(), *partition, other, offset))
                    }
                    _ => {
                        match share.mark(topic, *partition) {
                            Some(mark) => at.set_after(topic, *partition, mark),
                            None => at.set(topic, *partition, offset),
                        }
                        if let Some(held) = share.held(topic, *partition) {
                            at.set_held(topic, *partition, held.clone());
                        }
                    }
                }
            }
        }
        Ok(at)
    }
}

/// Sets `map[topic][partition]` to `value`.
fn put<V>(map: &mut BTreeMap<String, BTreeMap<i32, V>>, topic: &str, partition: i32, value: V) {
    match map.get_mut(topic) {
        Some(partitions) => {
            partitions.insert(partition, value);
        }
        None => {
            map.insert(topic.to_string(), BTreeMap::from([(partition, value)]));
        }
    }
}

impl fmt::Display for KafkaPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (t, p, o)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{t}/{p}: {o}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_display() {
        let mut p = KafkaPosition::new();
        p.set("orders", 1, 42);
        p.set("orders", 0, 7);
        p.set("logins", 3, 0);
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"offsets":{"logins":{"3":0},"orders":{"0":7,"1":42}},"marks":{},"held":{}}"#
        );
        // (as written before the records held)
        let old = r#"{"offsets":{"logins":{"3":0},"orders":{"0":7,"1":42}},"marks":{}}"#;
        assert_eq!(serde_json::from_str::<KafkaPosition>(old).unwrap(), p);
        assert_eq!(serde_json::from_str::<KafkaPosition>(&text).unwrap(), p);
        assert_eq!(p.to_string(), "{logins/3: 0, orders/0: 7, orders/1: 42}");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("orders", 1), Some(42));
        assert_eq!(p.get("orders", 2), None);
    }

    #[test]
    fn a_mark_goes_with_its_offset_and_a_position_of_before_the_marks_still_reads() {
        let mut p = KafkaPosition::new();
        let mark = Mark::of(41, Some(1_700_000_000_000), Some(b"k"), Some(b"v"));
        p.set_after("orders", 1, mark);
        p.set("orders", 0, 7);
        assert_eq!(p.get("orders", 1), Some(42));
        assert_eq!(p.mark("orders", 1), Some(mark));
        assert_eq!(p.mark("orders", 0), None);
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(
            KafkaPosition::from_postcard(&bytes).unwrap(),
            (p.clone(), false)
        );
        // Another offset forgets the mark of the one before.
        p.set("orders", 1, 50);
        assert_eq!(p.mark("orders", 1), None);
        // The bytes a build before the marks wrote: offsets alone.
        #[derive(Serialize)]
        struct Old {
            offsets: BTreeMap<String, BTreeMap<i32, i64>>,
        }
        let old = Old {
            offsets: BTreeMap::from([("orders".to_string(), BTreeMap::from([(0, 7), (1, 42)]))]),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let (read, unmarked) = KafkaPosition::from_postcard(&bytes).unwrap();
        assert!(unmarked);
        assert_eq!(read.offsets, old.offsets);
        assert!(read.marks.is_empty());
        assert!(KafkaPosition::from_postcard(b"\xff\xff").is_err());
        assert_eq!(
            mark.to_string(),
            format!(
                "offset 41 (timestamp 1700000000000, key crc {:08x}, value crc {:08x})",
                crc32fast::hash(b"k"),
                crc32fast::hash(b"v")
            )
        );
    }

    #[test]
    fn the_shares_of_a_checkpoint_give_each_partition_its_offset() {
        let share = |pairs: &[(&str, i32, i64)]| {
            let mut p = KafkaPosition::new();
            for (t, partition, o) in pairs {
                p.set(t, *partition, *o);
            }
            p
        };
        // Two workers' shares: partitions 0 and 2, and 1 (and a topic of
        // another worker's only).
        let shares = [
            share(&[("orders", 0, 10), ("orders", 2, 30)]),
            share(&[("orders", 1, 20), ("logins", 0, 5)]),
        ];
        let mine = [("orders".to_string(), 2), ("orders".to_string(), 1)];
        let got = KafkaPosition::of_shares(&shares, &mine).unwrap();
        assert_eq!(got, share(&[("orders", 1, 20), ("orders", 2, 30)]));
        // A partition no share names is left out (the source keeps its
        // start there); the same offset twice is no conflict.
        let more = [("orders".to_string(), 3), ("orders".to_string(), 0)];
        let twice = [shares[0].clone(), shares[0].clone()];
        let got = KafkaPosition::of_shares(&twice, &more).unwrap();
        assert_eq!(got, share(&[("orders", 0, 10)]));
        // Two offsets for one partition: not the shares of one checkpoint.
        let clash = [shares[0].clone(), share(&[("orders", 0, 11)])];
        assert_eq!(
            KafkaPosition::of_shares(&clash, &more),
            Err(("orders".to_string(), 0, 10, 11))
        );
    }

    /// Issue 59: the records of a topic of control records held when a
    /// position was taken go with it (through postcard, and from the
    /// share that names the partition), and a position written with marks
    /// before them still reads, with none held.
    #[test]
    fn the_records_held_go_with_the_position_and_one_written_before_them_still_reads() {
        let mut p = KafkaPosition::new();
        let mark = Mark::of(2, Some(1_700_000_000_000), None, Some(b"{}"));
        p.set_after("rules", 0, mark);
        p.set("orders", 0, 7);
        let held = Held {
            through: 9,
            ahead: vec![(5, 1_000)],
        };
        p.set_held("rules", 0, held.clone());
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(
            KafkaPosition::from_postcard(&bytes).unwrap(),
            (p.clone(), false)
        );
        assert_eq!(p.held("rules", 0), Some(&held));
        assert_eq!(p.held("orders", 0), None);
        // Written with marks, before the records held.
        #[derive(Serialize)]
        struct Marked<'a> {
            offsets: &'a BTreeMap<String, BTreeMap<i32, i64>>,
            marks: &'a BTreeMap<String, BTreeMap<i32, Mark>>,
        }
        let old = postcard::to_allocvec(&Marked {
            offsets: &p.offsets,
            marks: &p.marks,
        })
        .unwrap();
        let (read, unmarked) = KafkaPosition::from_postcard(&old).unwrap();
        assert!(!unmarked);
        assert_eq!(
            (read.offsets, read.marks),
            (p.offsets.clone(), p.marks.clone())
        );
        assert!(read.held.is_empty());
        // Workers' shares: from the one that names the partition.
        let mut events = KafkaPosition::new();
        events.set("orders", 1, 3);
        let partitions = [
            ("orders".to_string(), 0),
            ("orders".to_string(), 1),
            ("rules".to_string(), 0),
        ];
        let joined = KafkaPosition::of_shares(&[events, p.clone()], &partitions).unwrap();
        assert_eq!(joined.held("rules", 0), Some(&held));
        assert_eq!(joined.get("rules", 0), Some(3));
    }
}
