//! The source's watch over the topics it reads (and the sink's over those
//! it writes to): each one's topic id and
//! partitions as the broker gave them when the source started, asked
//! again every [`WATCH_EVERY`]. A topic deleted, or deleted and created
//! again under its name (another topic id; or, with a broker that gives
//! no ids, fewer partitions), ends the source's reads with
//! [`KafkaError::TopicChanged`]: librdkafka tells an assigned consumer
//! neither (it waits on a deleted topic for ever, and reads a topic
//! created again from the old offsets, skipping its first records).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};

use crate::error::{KafkaError, TopicChange};
use crate::identity::{describe, Described};

/// How often the topics are described (one Metadata request for all).
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long one description is waited for: no answer concludes nothing
/// (a broker that does not answer is the source's reads' to tell).
const ASK_FOR: Duration = Duration::from_secs(1);

/// One watched topic.
#[derive(Debug)]
struct Watched {
    name: String,
    /// Its topic id when first described (`None`: not described yet, or
    /// the broker gives no ids).
    id: Option<u128>,
    /// Described at least once.
    known: bool,
    /// The partitions the source reads: the highest number + 1.
    partitions: usize,
}

/// The topics of one source, described now and then.
#[derive(Debug)]
pub(crate) struct TopicWatch {
    topics: Vec<Watched>,
    /// A sink's topics (written), not a source's.
    written: bool,
    asked: Option<Instant>,
}

impl TopicWatch {
    /// Watches `topics`, each with the highest partition number the
    /// source reads of it; describes them once now (what is not answered
    /// now is learnt at the first answer).
    pub(crate) fn new<C: ClientContext>(
        client: &Client<C>,
        topics: &[(String, i32)],
        written: bool,
    ) -> TopicWatch {
        let mut highest: Vec<(String, i32)> = Vec::new();
        for (topic, partition) in topics {
            match highest.iter_mut().find(|(t, _)| t == topic) {
                Some((_, p)) => *p = (*p).max(*partition),
                None => highest.push((topic.clone(), *partition)),
            }
        }
        let mut watch = TopicWatch {
            topics: highest
                .into_iter()
                .map(|(name, p)| Watched {
                    name,
                    id: None,
                    known: false,
                    partitions: usize::try_from(p).map_or(0, |p| p + 1),
                })
                .collect(),
            written,
            asked: None,
        };
        // (nothing can have changed yet: only learnt)
        let _ = watch.ask(client);
        watch
    }

    /// Describes the topics when [`WATCH_EVERY`] has passed since the
    /// last time: the first one deleted or created again is the error.
    pub(crate) fn tick<C: ClientContext>(&mut self, client: &Client<C>) -> Result<(), KafkaError> {
        if self.asked.is_some_and(|at| at.elapsed() < WATCH_EVERY) {
            return Ok(());
        }
        self.ask(client)
    }

    /// Describes the topics now.
    pub(crate) fn ask<C: ClientContext>(&mut self, client: &Client<C>) -> Result<(), KafkaError> {
        self.asked = Some(Instant::now());
        let names: Vec<String> = self.topics.iter().map(|t| t.name.clone()).collect();
        let Some(said) = describe(client, &names, ASK_FOR) else {
            return Ok(());
        };
        let said: HashMap<String, Described> = said.into_iter().collect();
        for watched in &mut self.topics {
            let Some(described) = said.get(&watched.name) else {
                continue;
            };
            if let Some(change) = watched.compare(*described) {
                return Err(KafkaError::TopicChanged {
                    topic: watched.name.clone(),
                    written: self.written,
                    change,
                });
            }
        }
        Ok(())
    }
}

impl Watched {
    /// What changed since it was first described, learning it the first
    /// time.
    fn compare(&mut self, described: Described) -> Option<TopicChange> {
        match described {
            Described::Missing => Some(TopicChange::Deleted),
            Described::Exists { id, partitions } => {
                if !self.known {
                    self.known = true;
                    self.id = id;
                }
                if self.id.is_some() && id.is_some() && self.id != id {
                    Some(TopicChange::CreatedAgain)
                } else if partitions < self.partitions {
                    Some(TopicChange::FewerPartitions {
                        had: self.partitions,
                        has: partitions,
                    })
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(partitions: usize) -> Watched {
        Watched {
            name: "orders".to_string(),
            id: None,
            known: false,
            partitions,
        }
    }

    #[test]
    fn the_first_description_is_learnt_and_a_later_one_compared() {
        let mut w = watched(2);
        let first = Described::Exists {
            id: Some(7),
            partitions: 2,
        };
        assert_eq!(w.compare(first), None);
        assert_eq!(w.compare(first), None);
        // More partitions: added, the same topic.
        let more = Described::Exists {
            id: Some(7),
            partitions: 3,
        };
        assert_eq!(w.compare(more), None);
        let other = Described::Exists {
            id: Some(8),
            partitions: 2,
        };
        assert_eq!(w.compare(other), Some(TopicChange::CreatedAgain));
        assert_eq!(w.compare(Described::Missing), Some(TopicChange::Deleted));
    }

    #[test]
    fn without_ids_fewer_partitions_tell_a_topic_created_again() {
        let mut w = watched(3);
        let described = |partitions| Described::Exists {
            id: None,
            partitions,
        };
        assert_eq!(w.compare(described(3)), None);
        assert_eq!(w.compare(described(4)), None);
        assert_eq!(
            w.compare(described(1)),
            Some(TopicChange::FewerPartitions { had: 3, has: 1 })
        );
        // A missing topic first: deleted before it was described.
        assert_eq!(
            watched(1).compare(Described::Missing),
            Some(TopicChange::Deleted)
        );
    }
}
