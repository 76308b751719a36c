//! Which topic a name stands for now: its topic id (KIP-516), asked with
//! librdkafka's `DescribeTopics` (one Metadata request). A topic deleted
//! and created again under its name is another topic with another id and
//! offsets that start again; librdkafka does not tell an assigned
//! consumer (it goes on at its offsets in the new topic: its own source
//! says an offset reset "must be triggered", and none is), so the source
//! asks itself ([`crate::source`], `TopicWatch`).
//!
//! The rest of the crate uses rdkafka's safe API; `rdkafka` has no call
//! for topic ids, so this module calls librdkafka's C API, through
//! `rdkafka::bindings`, each resource destroyed by a guard.
#![allow(unsafe_code)] // (librdkafka's admin API, below)

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// What the broker says of one topic name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Described {
    /// It exists: its id (`None` when the broker gives none: the zero id)
    /// and its number of partitions.
    Exists { id: Option<u128>, partitions: usize },
    /// It does not exist (the broker's `UNKNOWN_TOPIC_OR_PARTITION`).
    Missing,
}

/// Owns a librdkafka pointer and destroys it with `destroy`.
struct Owned<T> {
    ptr: NonNull<T>,
    destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    fn new(ptr: *mut T, destroy: unsafe extern "C" fn(*mut T)) -> Option<Owned<T>> {
        NonNull::new(ptr).map(|ptr| Owned { ptr, destroy })
    }

    fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from the librdkafka constructor that pairs
        // with `destroy`, and is destroyed once, here.
        unsafe { (self.destroy)(self.ptr.as_ptr()) }
    }
}

/// The high watermark of `topic`'s `partition` as the client last learnt
/// it (`rd_kafka_get_watermark_offsets`: from the last fetch response
/// for the partition, which a consumer that fetches it gets at least
/// every `fetch.wait.max.ms`; no request). `None` when the client knows
/// none yet (or the name cannot be sent: a NUL in it).
pub(crate) fn known_high_watermark<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let name = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: `client.native_ptr()` is the live client `client` owns
    // (borrowed for this call); the name outlives the call, which only
    // reads it; `low` and `high` are valid for writes.
    let error = unsafe {
        rd::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            name.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Describes `topics` (one request, waiting at most `timeout`): each
/// name with what the broker says of it, in the order given. `None` when
/// no answer came (a broker down, a timeout) or a name cannot be sent
/// (a NUL in it): the caller asks again later.
pub(crate) fn describe<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> Option<Vec<(String, Described)>> {
    let names: Vec<CString> = topics
        .iter()
        .map(|t| CString::new(t.as_str()).ok())
        .collect::<Option<_>>()?;
    let mut pointers: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let rk = client.native_ptr();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `rk` is the live client `client` owns (borrowed for this
    // call); every pointer below is checked for null, owned by a guard
    // (destroyed in reverse order of creation, after its last use) or
    // borrowed from the event, which outlives its uses; the names outlive
    // the collection, which copies them.
    unsafe {
        let collection = Owned::new(
            rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len()),
            rd::rd_kafka_TopicCollection_destroy,
        )?;
        let options = Owned::new(
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            ),
            rd::rd_kafka_AdminOptions_destroy,
        )?;
        let mut errstr = [0 as std::ffi::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.as_ptr(),
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let queue = Owned::new(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy)?;
        rd::rd_kafka_DescribeTopics(rk, collection.as_ptr(), options.as_ptr(), queue.as_ptr());
        // (the request's own timeout ends it; a little more for the event)
        let event = Owned::new(
            rd::rd_kafka_queue_poll(queue.as_ptr(), timeout_ms.saturating_add(1000)),
            rd::rd_kafka_event_destroy,
        )?;
        if rd::rd_kafka_event_type(event.as_ptr()) != rd::RD_KAFKA_EVENT_DESCRIBETOPICS_RESULT
            || rd::rd_kafka_event_error(event.as_ptr())
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return None;
        }
        let result = rd::rd_kafka_event_DescribeTopics_result(event.as_ptr());
        if result.is_null() {
            return None;
        }
        let mut count = 0usize;
        let descriptions = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        if descriptions.is_null() && count > 0 {
            return None;
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let description = *descriptions.add(i);
            if description.is_null() {
                return None;
            }
            let name = rd::rd_kafka_TopicDescription_name(description);
            if name.is_null() {
                return None;
            }
            let name = CStr::from_ptr(name).to_string_lossy().into_owned();
            let error = rd::rd_kafka_TopicDescription_error(description);
            let code = if error.is_null() {
                rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            } else {
                rd::rd_kafka_error_code(error)
            };
            use rd::rd_kafka_resp_err_t as E;
            let described = match code {
                E::RD_KAFKA_RESP_ERR_NO_ERROR => {
                    let mut partitions = 0usize;
                    rd::rd_kafka_TopicDescription_partitions(description, &mut partitions);
                    let id = rd::rd_kafka_TopicDescription_topic_id(description);
                    let id = if id.is_null() {
                        0
                    } else {
                        let high = rd::rd_kafka_Uuid_most_significant_bits(id) as u64;
                        let low = rd::rd_kafka_Uuid_least_significant_bits(id) as u64;
                        (u128::from(high) << 64) | u128::from(low)
                    };
                    Described::Exists {
                        id: (id != 0).then_some(id),
                        partitions,
                    }
                }
                E::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                | E::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_ID => Described::Missing,
                // (not authorized, a leader moving: nothing to conclude)
                _ => return None,
            };
            out.push((name, described));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_broker::{topic, Broker};
    use rdkafka::consumer::{BaseConsumer, Consumer};

    #[test]
    fn a_topic_created_again_has_another_id_and_a_deleted_one_is_missing() {
        let broker = Broker::start();
        let name = topic("identity");
        broker.create_topic(&name, 2);
        let client: BaseConsumer = broker.config().create().expect("a client");
        let ask = || {
            let said = describe(
                client.client(),
                std::slice::from_ref(&name),
                Duration::from_secs(10),
            )
            .expect("an answer");
            assert_eq!(said.len(), 1);
            assert_eq!(said[0].0, name);
            said[0].1
        };
        let Described::Exists {
            id: first,
            partitions,
        } = ask()
        else {
            panic!("{name} exists");
        };
        assert_eq!(partitions, 2);
        broker.delete_topic(&name);
        assert_eq!(ask(), Described::Missing);
        broker.create_topic(&name, 2);
        let Described::Exists { id: second, .. } = ask() else {
            panic!("{name} exists again");
        };
        assert!(first.is_some() && second.is_some() && first != second);
    }
}
