//! Where a Kafka source stands: per topic and partition, the offset of
//! the next record it hands out. It goes into cepheid's checkpoints (its
//! serde), and a transactional sink commits it with the records.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Per topic and partition, the offset of the next record to read (the
/// offset after the last one handed out): Kafka's meaning of a committed
/// offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KafkaPosition {
    /// topic → partition → next offset.
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
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

    /// Sets the next offset of `topic`'s `partition`.
    pub fn set(&mut self, topic: &str, partition: i32, next: i64) {
        match self.offsets.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, next);
            }
            None => {
                self.offsets
                    .insert(topic.to_string(), BTreeMap::from([(partition, next)]));
            }
        }
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
                    _ => at.set(topic, *partition, offset),
                }
            }
        }
        Ok(at)
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
            r#"{"offsets":{"logins":{"3":0},"orders":{"0":7,"1":42}}}"#
        );
        assert_eq!(serde_json::from_str::<KafkaPosition>(&text).unwrap(), p);
        assert_eq!(p.to_string(), "{logins/3: 0, orders/0: 7, orders/1: 42}");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("orders", 1), Some(42));
        assert_eq!(p.get("orders", 2), None);
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
}
