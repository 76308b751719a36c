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
}
