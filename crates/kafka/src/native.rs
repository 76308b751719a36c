//! librdkafka's queues and calls that rust-rdkafka does not expose,
//! through the `rdkafka-sys` bindings it re-exports: the consumer's batch
//! reads ([`crate::batch`]) and the producer's flush that sleeps
//! (`sink::flush_promptly`).
#![allow(unsafe_code)] // (librdkafka's queue calls, below)

use std::ptr::NonNull;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// A queue of librdkafka's, destroyed with its handle.
pub(crate) struct Queue(NonNull<rd::rd_kafka_queue_t>);

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: a handle librdkafka gave, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

// SAFETY: librdkafka's queues are shared between its threads (each call
// takes the queue's lock); the handles are not tied to the thread that
// made them.
unsafe impl Send for Queue {}

impl Queue {
    /// Takes a handle librdkafka returned (`None` for a null one).
    pub(crate) fn from_raw(q: *mut rd::rd_kafka_queue_t) -> Option<Queue> {
        NonNull::new(q).map(Queue)
    }

    /// The client's main queue: a producer's delivery reports and errors,
    /// which its `poll` serves.
    pub(crate) fn main<C: ClientContext>(client: &Client<C>) -> Option<Queue> {
        // SAFETY: the live client's handle.
        Queue::from_raw(unsafe { rd::rd_kafka_queue_get_main(client.native_ptr()) })
    }

    pub(crate) fn as_ptr(&self) -> *mut rd::rd_kafka_queue_t {
        self.0.as_ptr()
    }

    /// How many events wait in the queue.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: a live queue handle.
        unsafe { rd::rd_kafka_queue_length(self.0.as_ptr()) }
    }
}

/// `rd_kafka_flush(client, ms)`: a producer's records lingering in its
/// queues are sent at once for `ms` milliseconds, while the call waits
/// that long at most for every record's delivery report to be served.
/// With reports as events (rust-rdkafka's mode) only the application
/// serves them, so a call from the thread that serves them sleeps `ms`,
/// or returns at once when nothing is in flight.
pub(crate) fn flush_for<C: ClientContext>(client: &Client<C>, ms: i32) {
    // SAFETY: the live client's handle; a consumer's answer (not
    // implemented) is ignored.
    let _ = unsafe { rd::rd_kafka_flush(client.native_ptr(), ms) };
}
