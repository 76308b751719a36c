//! Whether kept offsets (a checkpoint's, or the ones a transactional
//! sink committed) still fit the topics as they are now: an offset beyond
//! a partition's end (the topic written again with fewer records), before
//! its start (retention deleted records that were not read), or after a
//! record that is not the one read there (the topic deleted and written
//! again: [`Mark`], the fingerprint kept beside each offset). Each misfit
//! is refused or the partition started again, as
//! [`OnMismatch`] says; never skipped silently.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{retriable, KafkaError};
use crate::position::{KafkaPosition, Mark};
use crate::retry::Retry;

/// What a Kafka source does with a kept offset that does not fit its
/// partition as it is now ([`Mismatch`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnMismatch {
    /// Refuses to start ([`KafkaError::OffsetMismatch`]): the default.
    #[default]
    Refuse,
    /// Starts that partition again at its first record.
    Earliest,
    /// Starts that partition again after its last record.
    Latest,
}

/// A text that is not `refuse`, `earliest` or `latest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnMismatchError {
    /// The text.
    pub text: String,
}

impl fmt::Display for OnMismatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not refuse, earliest or latest", self.text)
    }
}

impl std::error::Error for OnMismatchError {}

impl FromStr for OnMismatch {
    type Err = OnMismatchError;

    fn from_str(text: &str) -> Result<OnMismatch, OnMismatchError> {
        match text {
            "refuse" => Ok(OnMismatch::Refuse),
            "earliest" => Ok(OnMismatch::Earliest),
            "latest" => Ok(OnMismatch::Latest),
            _ => Err(OnMismatchError {
                text: text.to_string(),
            }),
        }
    }
}

impl fmt::Display for OnMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnMismatch::Refuse => "refuse",
            OnMismatch::Earliest => "earliest",
            OnMismatch::Latest => "latest",
        })
    }
}

/// How a kept offset does not fit its partition as the broker has it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The offset is beyond the partition's end: the topic holds fewer
    /// records than were read (deleted and written again, a broker that
    /// lost its data).
    BeyondEnd {
        /// The partition's end offset now.
        end: i64,
    },
    /// The offset is before the partition's first record: records that
    /// were not read were deleted (retention). They are lost.
    BeforeStart {
        /// The partition's first offset now.
        start: i64,
    },
    /// The record before the offset is not the one that was read there:
    /// another topic under the same name (deleted and written again).
    OtherRecord {
        /// The record read there.
        kept: Mark,
        /// What is there now (`None`: no record at that offset).
        found: Option<Mark>,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::BeyondEnd { end } => write!(
                f,
                "the partition ends at offset {end} now (the topic was deleted and written again \
                 with fewer records, or the broker lost its data)"
            ),
            Mismatch::BeforeStart { start } => write!(
                f,
                "the partition starts at offset {start} now: the records before it were deleted \
                 (retention) before they were read, and are lost"
            ),
            Mismatch::OtherRecord { kept, found } => {
                write!(f, "the record before it was {kept}, and ")?;
                match found {
                    Some(found) => write!(f, "the first one from there is {found} now")?,
                    None => write!(f, "the partition has none from there now")?,
                }
                write!(
                    f,
                    ": the topic is not the one the offset was taken on (deleted and written again)"
                )
            }
        }
    }
}

/// One partition whose kept offset does not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Misfit {
    pub topic: String,
    pub partition: i32,
    /// The kept offset.
    pub offset: i64,
    pub mismatch: Mismatch,
    /// The partition's first offset and its end now.
    pub low: i64,
    pub high: i64,
}

/// How long the record before a kept offset is waited for when the broker
/// says the partition ends at or before it (a broker whose end offset lags
/// the last batch, tansu 0.6, still hands it out).
const BEYOND_END_WAIT: Duration = Duration::from_secs(2);

/// The partitions of `kept` (among `splits`) whose offsets do not fit:
/// each partition's first and end offsets asked (one request each), and
/// the record before each offset that has a mark read once by a consumer
/// of `config` of its own (one fetch for all).
pub(crate) fn misfits(
    consumer: &BaseConsumer<impl rdkafka::consumer::ConsumerContext>,
    config: &ClientConfig,
    kept: &KafkaPosition,
    splits: &[(String, i32)],
    retry: Retry,
) -> Result<Vec<Misfit>, KafkaError> {
    let mut misfits = Vec::new();
    // (partition, offset, mark, low, high) of those whose mark is read
    let mut probe = Vec::new();
    for (topic, partition) in splits {
        let Some(offset) = kept.get(topic, *partition) else {
            continue;
        };
        let (low, high) = retry.run(
            "fetch watermarks",
            |left| consumer.fetch_watermarks(topic, *partition, left),
            |e| KafkaError::client("fetch watermarks", e),
        )?;
        let misfit = |mismatch| Misfit {
            topic: topic.clone(),
            partition: *partition,
            offset,
            mismatch,
            low,
            high,
        };
        if offset < low {
            misfits.push(misfit(Mismatch::BeforeStart { start: low }));
            continue;
        }
        // The record before the offset is read: to compare it with its
        // mark, or, without one, when the broker gives the end before the
        // offset (tansu 0.6 gives the last batch's first offset + 1 as the
        // end: the record may be there all the same). The record before
        // it deleted since, with none unread: nothing to compare, nothing
        // lost.
        let mark = kept.mark(topic, *partition);
        if offset > low && (mark.is_some() || offset > high) {
            probe.push((topic, *partition, offset, mark, low, high));
        }
    }
    if probe.is_empty() {
        return Ok(misfits);
    }
    let found = read_marks(config, &probe, retry)?;
    for ((topic, partition, offset, kept, low, high), found) in probe.into_iter().zip(found) {
        let mismatch = match (kept, found) {
            (Some(kept), found) if found == Some(kept) => continue,
            // (no mark: a record there is all that is asked)
            (None, Some(found)) if found.offset == offset - 1 => continue,
            (_, None) if offset > high => Mismatch::BeyondEnd { end: high },
            (None, _) => Mismatch::BeyondEnd { end: high },
            (Some(kept), found) => Mismatch::OtherRecord { kept, found },
        };
        misfits.push(Misfit {
            topic: topic.clone(),
            partition,
            offset,
            mismatch,
            low,
            high,
        });
    }
    Ok(misfits)
}

/// A partition whose record before its kept offset is read: topic,
/// partition, kept offset, its mark, first offset, end.
type Probe<'a> = (&'a String, i32, i64, Option<Mark>, i64, i64);

/// The mark of the first record each partition of `probe` hands out from
/// the offset before its kept one (`None`: none came, or the offset is
/// out of range). A record the broker said is there that does not come
/// within the limit, or one beyond its end while it did not answer, is
/// the broker's silence ([`KafkaError::Unreachable`]), never taken for a
/// topic that holds no such record: a resume during an outage refused
/// with exit 5, "the partition has none from there now" (the fault
/// hour's seed 46, case 1).
fn read_marks(
    config: &ClientConfig,
    probe: &[Probe<'_>],
    retry: Retry,
) -> Result<Vec<Option<Mark>>, KafkaError> {
    let mut config = config.clone();
    config.set("auto.offset.reset", "error");
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| KafkaError::client("create the consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset, ..) in probe {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(offset - 1))
            .map_err(|e| KafkaError::client("assign", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| KafkaError::client("assign", e))?;
    let mut found: Vec<Option<Option<Mark>>> = vec![None; probe.len()];
    let started = Instant::now();
    // (a record the broker says is there is waited for as a broker is;
    // one beyond its end a little)
    let limit = |i: usize| {
        let (_, _, offset, _, _, high) = probe[i];
        if offset - 1 < high {
            retry.limit.max(BEYOND_END_WAIT)
        } else {
            BEYOND_END_WAIT
        }
    };
    // (the last error that says the broker did not answer)
    let mut silent: Option<ClientError> = None;
    loop {
        let open: Vec<usize> = (0..probe.len())
            .filter(|&i| found[i].is_none() && started.elapsed() < limit(i))
            .collect();
        if open.is_empty() {
            break;
        }
        // (an offset out of range is an error that names no partition:
        // the others' records still come, and what does not is none)
        let polled = consumer.poll(Duration::from_millis(100));
        if let Some(Err(e)) = &polled {
            if retriable(e) {
                silent = Some(e.clone());
            }
        }
        if let Some(Ok(message)) = polled {
            let at = probe
                .iter()
                .position(|(t, p, ..)| t.as_str() == message.topic() && *p == message.partition());
            if let Some(i) = at.filter(|&i| found[i].is_none()) {
                found[i] = Some(Some(Mark::of(
                    message.offset(),
                    message.timestamp().to_millis(),
                    message.key(),
                    message.payload(),
                )));
            }
        }
    }
    let unanswered = (0..probe.len()).any(|i| {
        let (_, _, offset, _, _, high) = probe[i];
        found[i].is_none() && (offset - 1 < high || silent.is_some())
    });
    if unanswered {
        return Err(KafkaError::Unreachable {
            operation: "read the record before a kept offset",
            waited: started.elapsed(),
            source: silent.unwrap_or(ClientError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            )),
        });
    }
    Ok(found.into_iter().map(Option::flatten).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_broker::{topic, Broker};

    /// The record before a kept offset, which the broker said is there,
    /// read while the broker does not answer: the broker's silence (exit
    /// 6 for the command), not a topic without that record. Before, a
    /// resume during an outage was refused with exit 5 and "the partition
    /// has none from there now: the topic is not the one the offset was
    /// taken on" (the fault hour's seed 46, case 1).
    #[test]
    fn a_record_not_read_while_the_broker_is_silent_is_its_silence_not_another_topic() {
        let (broker, proxy) = Broker::start_behind_fault_proxy();
        let t = topic("fit-silent");
        broker.create_topic(&t, 1);
        let records: Vec<(String, String)> = (0..10)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let records: Vec<(&str, &str)> = records.iter().map(|(k, v)| (&**k, &**v)).collect();
        broker.produce(&t, 0, &records);
        let retry = Retry {
            limit: Duration::from_secs(2),
            ..Retry::default()
        };
        let mut config = broker.config();
        config.set("group.id", "fit-silent");
        // (a mark that is not the record's: only its coming matters)
        let mark = Mark::of(4, None, None, None);
        let probe: Vec<Probe<'_>> = vec![(&t, 0, 5, Some(mark), 0, 10)];
        // Answered: the record comes, and is compared.
        let found = read_marks(&config, &probe, retry).expect("read");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].map(|m| m.offset), Some(4));
        // Silent: the broker did not answer.
        proxy.cut();
        let silent = read_marks(&config, &probe, retry);
        proxy.mend();
        match silent {
            Err(e) => assert!(e.is_unreachable(), "{e}"),
            Ok(found) => panic!("taken as an answer: {found:?}"),
        }
    }
}
