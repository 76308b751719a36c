//! Watching a cepheid run: its [`Status`] as one serde value, the same
//! numbers as Prometheus text (OpenMetrics, [`metrics`]), and a live page,
//! all served over HTTP by a [`Server`] on a fixed number of threads of its
//! own, within [`HttpLimits`] (connections held at once, the size of a
//! request, the time to send it) whatever its clients do.
//!
//! The run owns a [`Monitor`] (a cheap, cloneable handle to one status
//! behind a mutex) and updates it once per batch of events or once per
//! second, never per event: `monitor.update(|s| ...)` copies the engine's
//! counts in ([`Observer`] does it from what the runtime's observer hook
//! shows, `cepheid_runtime::Report::tick`). [`Monitor::serve`] answers:
//!
//! | path | what |
//! |---|---|
//! | `/` | the live page: rules with counts and rates, plots, the latest matches, checkpoints and reloads, the chosen rule's automaton |
//! | `/metrics` | Prometheus text (`docs/metrics.md` lists every metric) |
//! | `/status.json` | the [`Status`] as JSON |
//! | `/graph/NAME.json` | one pattern's automaton ([`Graph`]) |
//!
//! ```
//! use cepheid_monitor::Monitor;
//! let monitor = Monitor::new();
//! let server = monitor.serve("127.0.0.1:0")?;
//! // Once per batch: what the engine and the reader saw.
//! monitor.update(|s| {
//!     s.run.events_read += 100;
//!     s.pattern_mut("unpaid_order").matches += 2;
//! });
//! assert!(monitor.prometheus()?.contains("cepheid_matches_total{pattern=\"unpaid_order\"} 2"));
//! println!("watch http://{}/", server.addr());
//! server.stop()?;
//! # Ok::<(), cepheid_monitor::MonitorError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod http;
pub mod metrics;
mod observe;
mod server;
mod status;

use std::fmt::Display;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use error::MonitorError;
pub use observe::{Observer, RECORDS};
pub use server::{HttpLimits, Server, PAGE};
pub use status::{
    CheckpointStatus, Edge, EdgeKind, Graph, HttpStatus, Limits, Node, NodeKind, PatternStatus,
    ReloadStatus, RunStatus, Series, Status, WaitingStatus, WorkerStatus,
};

use server::HttpCounters;

/// A shared handle to one [`Status`]: the run updates it, the server reads
/// it. Cloning is cheap (one `Arc`); every method takes the lock briefly.
/// A thread that panicked while holding it does not make it unusable.
#[derive(Clone, Debug)]
pub struct Monitor {
    status: Arc<Mutex<Status>>,
    /// What its servers count, outside the status's lock.
    http: Arc<HttpCounters>,
}

impl Default for Monitor {
    fn default() -> Monitor {
        Monitor::new()
    }
}

impl Monitor {
    /// A monitor with the default [`Limits`] (20 recent records per
    /// pattern, 600 samples), the run's start time now.
    pub fn new() -> Monitor {
        Monitor::with_limits(Limits::default())
    }

    /// A monitor keeping this much history.
    pub fn with_limits(limits: Limits) -> Monitor {
        let mut status = Status::new(limits);
        status.run.started_ms = Some(status::wall_clock_ms());
        Monitor {
            status: Arc::new(Mutex::new(status)),
            http: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the status under the lock (call it once per batch or per
    /// second, not per event) and notes the time of the update.
    pub fn update<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        let mut status = self.lock();
        let result = f(&mut status);
        status.updated_ms = Some(status::wall_clock_ms());
        result
    }

    /// Reads the status under the lock, its derived fields (lags, ages)
    /// computed now and its servers' counts ([`Status::http`]) read.
    pub fn read<R>(&self, f: impl FnOnce(&Status) -> R) -> R {
        let mut status = self.lock();
        status.refresh(status::wall_clock_ms());
        status.http = self.http.status();
        f(&status)
    }

    /// What its servers have counted (connections, refusals at the
    /// limit, requests too large or too slow), without taking the
    /// status's lock; `None` before the first [`serve`](Monitor::serve).
    pub fn http_status(&self) -> Option<HttpStatus> {
        self.http.status()
    }

    /// A copy of the status, its derived fields computed now.
    pub fn snapshot(&self) -> Status {
        self.read(Status::clone)
    }

    /// Takes one sample of the time series now ([`Status::sample`]); a
    /// running [`Server`] does it every second.
    pub fn sample(&self) {
        self.lock().sample(status::wall_clock_ms());
    }

    /// The status as Prometheus text ([`metrics::encode`]).
    pub fn prometheus(&self) -> Result<String, MonitorError> {
        self.read(metrics::encode).map_err(MonitorError::Encode)
    }

    /// The status as JSON (what `/status.json` answers).
    pub fn status_json(&self) -> Result<String, MonitorError> {
        self.read(serde_json::to_string).map_err(MonitorError::Json)
    }

    /// The automaton of the pattern `name` as JSON, `None` when there is
    /// no such pattern or it has no graph.
    pub fn graph_json(&self, name: &str) -> Option<String> {
        self.read(|s| {
            let graph = s.pattern(name)?.graph.as_ref()?;
            serde_json::to_string(graph).ok()
        })
    }

    /// Serves the page, `/metrics`, `/status.json` and `/graph/NAME.json`
    /// on `addr` (`127.0.0.1:0`: a free port, see [`Server::addr`]) from
    /// threads of its own, until the [`Server`] is stopped or dropped,
    /// with the default [`HttpLimits`]. A malformed request gets an error
    /// answer; it never stops the server, nor the run. `addr` is what
    /// [`ToSocketAddrs`] takes and prints itself in errors:
    /// `"127.0.0.1:9464"`, `"localhost:9464"`, a `SocketAddr`.
    pub fn serve<A: ToSocketAddrs + Display>(&self, addr: A) -> Result<Server, MonitorError> {
        self.serve_with(addr, HttpLimits::default())
    }

    /// [`serve`](Monitor::serve) within these limits: connections held at
    /// once (those beyond refused with `503` and counted), the size of a
    /// request's head (beyond: `431`), the time to send it.
    pub fn serve_with<A: ToSocketAddrs + Display>(
        &self,
        addr: A,
        limits: HttpLimits,
    ) -> Result<Server, MonitorError> {
        Server::start(self.clone(), addr, limits)
    }

    /// An [`Observer`] filling this monitor: the run's [`Report`] (with
    /// another one, [`cepheid_runtime::Both`]).
    ///
    /// [`Report`]: cepheid_runtime::Report
    pub fn observer(&self) -> Observer {
        Observer::new(self.clone())
    }
}
