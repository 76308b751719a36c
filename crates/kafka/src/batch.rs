//! Records taken from librdkafka a batch at a time
//! (`rd_kafka_consume_batch_queue`), not one poll each.
//!
//! rdkafka's `BaseConsumer::poll` hands out one message per call, and each
//! call takes the queue's lock, reads the clock two or three times and
//! wraps an event: about 2,000 instructions a record, more than decoding a
//! small one (`BENCHMARKS.md`, "Kafka: where the CPU goes"). The crate has
//! no batch call, so this module makes the one librdkafka has, through the
//! `rdkafka-sys` bindings rdkafka re-exports.
//!
//! Each partition of events forwards its fetched records (and its errors)
//! to a queue of the source's own ([`Batches`]), which is read in batches.
//! The consumer's own queue keeps what is not a partition's: statistics,
//! errors of the client as a whole; the source still polls it at every
//! read. A partition's queue is forwarded again at every read: librdkafka
//! clears the forwarding when it stops fetching the partition, and then
//! keeps its records in the partition's queue until it is forwarded
//! again (which moves them along, in order).
#![allow(unsafe_code)] // (librdkafka's queue and batch calls, below)

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::types::RDKafkaErrorCode;

use crate::native::Queue;

/// The queue to which each partition of events of one consumer forwards
/// its records. Dropped before that consumer (a field declared before it).
pub(crate) struct Batches {
    own: Queue,
    partitions: Vec<Queue>,
    /// The consumer's own queue (only its length is asked).
    consumer: Queue,
}

impl Batches {
    /// A queue for `consumer`'s partitions `splits` (topic, partition), or
    /// `None` when librdkafka does not know one of them yet (the source
    /// then polls the consumer one record at a time, as it would without
    /// this).
    pub(crate) fn new<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        splits: &[(String, i32)],
    ) -> Option<Batches> {
        let rk = consumer.client().native_ptr();
        // SAFETY: `rk` is the live consumer's handle.
        let own = Queue::from_raw(unsafe { rd::rd_kafka_queue_new(rk) })?;
        let mut partitions = Vec::with_capacity(splits.len());
        for (topic, partition) in splits {
            let topic = CString::new(topic.as_bytes()).ok()?;
            // SAFETY: as above; `topic` is a C string for the call.
            let q = unsafe { rd::rd_kafka_queue_get_partition(rk, topic.as_ptr(), *partition) };
            partitions.push(Queue::from_raw(q)?);
        }
        // SAFETY: as above.
        let consumer = Queue::from_raw(unsafe { rd::rd_kafka_queue_get_consumer(rk) })?;
        let batches = Batches {
            own,
            partitions,
            consumer,
        };
        batches.forward();
        Some(batches)
    }

    /// Forwards each partition's queue to the source's own (again).
    fn forward(&self) {
        for q in &self.partitions {
            // SAFETY: two live queue handles of one client.
            unsafe { rd::rd_kafka_queue_forward(q.as_ptr(), self.own.as_ptr()) }
        }
    }

    /// How many events wait in the consumer's own queue.
    pub(crate) fn pending(&self) -> usize {
        self.consumer.len()
    }

    /// Up to `max` records (and partitions' errors): those ready now, or
    /// else the first to come within `wait` with those ready after it.
    /// (librdkafka's batch call waits its whole timeout for a batch to
    /// fill: a live stream's records would wait that long.)
    pub(crate) fn take(&self, wait: Duration, max: usize) -> Messages {
        self.forward();
        let mut messages = Messages(Vec::with_capacity(max));
        self.consume(&mut messages, Duration::ZERO, max);
        if messages.len() == 0 && !wait.is_zero() && self.consume(&mut messages, wait, 1) {
            self.consume(&mut messages, Duration::ZERO, max);
        }
        messages
    }

    /// Appends to `messages` (up to `max` in all) what librdkafka gives
    /// within `wait`; true when it gave any.
    fn consume(&self, messages: &mut Messages, wait: Duration, max: usize) -> bool {
        let had = messages.0.len();
        let room = max.saturating_sub(had);
        if room == 0 {
            return false;
        }
        messages.0.reserve(room);
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: room for `room` pointers after the `had` there, which
        // librdkafka fills with messages the caller owns (destroyed with
        // `Messages`).
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.own.as_ptr(),
                ms,
                messages.0.as_mut_ptr().add(had),
                room,
            )
        };
        let n = usize::try_from(n).unwrap_or(0).min(room);
        // SAFETY: librdkafka wrote `n` (at most `room`) pointers there; an
        // error (-1) is none.
        unsafe { messages.0.set_len(had + n) };
        n > 0
    }
}

/// Messages taken from librdkafka, destroyed with this.
pub(crate) struct Messages(Vec<*mut rd::rd_kafka_message_t>);

impl Messages {
    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `i`th.
    pub(crate) fn get(&self, i: usize) -> Msg<'_> {
        // SAFETY: a message librdkafka gave, live until `self` is dropped.
        Msg(unsafe { &*self.0[i] })
    }
}

impl Drop for Messages {
    fn drop(&mut self) {
        for m in &self.0 {
            // SAFETY: each message destroyed once, as librdkafka asks.
            unsafe { rd::rd_kafka_message_destroy(*m) }
        }
    }
}

/// One message of [`Messages`].
#[derive(Clone, Copy)]
pub(crate) struct Msg<'a>(&'a rd::rd_kafka_message_t);

impl<'a> Msg<'a> {
    /// The error it carries instead of a record, as rdkafka's poll gives
    /// it.
    pub(crate) fn error(&self) -> Option<ClientError> {
        let err = self.0.err;
        if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        Some(match err {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                ClientError::PartitionEOF(self.0.partition)
            }
            e => ClientError::MessageConsumption(RDKafkaErrorCode::from(e)),
        })
    }

    /// Its topic's name (empty when it has none).
    pub(crate) fn topic(&self) -> &'a str {
        if self.0.rkt.is_null() {
            return "";
        }
        // SAFETY: the topic handle of a live message, whose name is a C
        // string as long as the handle.
        let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(self.0.rkt)) };
        name.to_str().unwrap_or("")
    }

    pub(crate) fn partition(&self) -> i32 {
        self.0.partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.0.offset
    }

    pub(crate) fn key(&self) -> Option<&'a [u8]> {
        bytes(self.0.key, self.0.key_len)
    }

    pub(crate) fn payload(&self) -> Option<&'a [u8]> {
        bytes(self.0.payload, self.0.len)
    }

    /// Its timestamp, milliseconds (`None`: not given).
    pub(crate) fn timestamp(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message; `kind` is written.
        let t = unsafe { rd::rd_kafka_message_timestamp(self.0, &mut kind) };
        // (as rdkafka's `Timestamp::to_millis`: -1 is none)
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && t != -1)
            .then_some(t)
    }
}

/// The bytes at `ptr` (none when null).
fn bytes<'a>(ptr: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: a live message's key or payload: `len` bytes at `ptr`.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}
