//! The HTTP server: `/metrics`, `/status.json`, `/graph/NAME.json` and the
//! page at `/`, on a fixed number of threads of its own, whatever its
//! clients do.
//!
//! One thread accepts connections and hands them to a fixed pool of
//! handler threads ([`HttpLimits::handlers`]) through a queue; at most
//! [`HttpLimits::max_connections`] are held at once (being answered or
//! waiting for a handler), and one more is refused at once with `503`
//! and counted ([`HttpStatus::refused`]). A handler reads one request's
//! head, at most [`HttpLimits::max_request_head`] bytes (beyond: `431`)
//! within [`HttpLimits::request_timeout`], never a body, answers and
//! closes ([`crate::http`]). A last thread takes the status's samples
//! every second. So a scraper gone wrong (thousands of idle connections,
//! a head of hundreds of megabytes) costs the run neither threads nor
//! memory beyond these bounds, and the matching goes on.
//!
//! Why not a crate: `tiny_http`, used before, starts a thread per
//! connection and buffers whole requests; the servers with limits are
//! built on an async runtime (hyper on tokio), which the command does not
//! otherwise have. Six threads on `std` do what the monitor needs.

use std::fmt::Display;
use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::MonitorError;
use crate::http::{self, Outcome, Request, Response};
use crate::status::HttpStatus;
use crate::Monitor;

/// The live page (one file: HTML, inline CSS and JavaScript).
pub const PAGE: &str = include_str!("page.html");

/// What a [`Server`] takes at once: the bounds that keep its threads and
/// memory fixed whatever its clients do. [`Monitor::serve_with`] takes
/// them; [`Monitor::serve`] uses the defaults.
///
/// ```
/// use cepheid_monitor::{HttpLimits, Monitor};
/// let mut limits = HttpLimits::default();
/// limits.max_connections = 8;
/// let server = Monitor::new().serve_with("127.0.0.1:0", limits)?;
/// # server.stop()?;
/// # Ok::<(), cepheid_monitor::MonitorError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Connections held at once, being answered or waiting for a handler
    /// (at least 1; 64 by default: a few scrapers and pages, with room
    /// to spare). One more is answered `503 Service Unavailable` and
    /// closed at once, and counted.
    pub max_connections: usize,
    /// Threads answering requests (at least 1, at most `max_connections`;
    /// 4 by default): a slow client holds one, not the others.
    pub handlers: usize,
    /// The longest request head taken, request line and header fields
    /// (16 KiB by default); a longer one is answered `431 Request Header
    /// Fields Too Large` and closed. A body is never read.
    pub max_request_head: usize,
    /// How long a connection has to send its whole request head once a
    /// handler takes it (5 s by default); then it is closed (`408` when
    /// part of it came). Idle connections are closed so.
    pub request_timeout: Duration,
    /// How long writing an answer may wait on the client (10 s by
    /// default).
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: 64,
            handlers: 4,
            max_request_head: 16 * 1024,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpLimits {
    /// The limits made usable: at least one connection and one handler,
    /// no more handlers than connections, a head of at least 256 bytes.
    fn clamped(mut self) -> HttpLimits {
        self.max_connections = self.max_connections.max(1);
        self.handlers = self.handlers.clamp(1, self.max_connections);
        self.max_request_head = self.max_request_head.max(256);
        self
    }
}

/// The counts of a monitor's servers, kept without the status's lock (the
/// accept thread must never wait on the run): what [`HttpStatus`] shows.
#[derive(Debug, Default)]
pub(crate) struct HttpCounters {
    /// The limit of the last server started; 0 while none was.
    max_connections: AtomicUsize,
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    too_large: AtomicU64,
    timed_out: AtomicU64,
}

impl HttpCounters {
    /// The counts, `None` when no server was ever started.
    pub(crate) fn status(&self) -> Option<HttpStatus> {
        let max = self.max_connections.load(Ordering::Relaxed);
        (max > 0).then(|| HttpStatus {
            max_connections: max as u64,
            open_connections: self.open.load(Ordering::Relaxed) as u64,
            connections: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        })
    }
}

/// A running server (see [`Monitor::serve`]). Stops when dropped, or with
/// [`stop`](Server::stop).
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped to stop the sampler.
    sampler: Option<mpsc::Sender<()>>,
    /// The accept thread, the sampler and the handlers.
    threads: Vec<JoinHandle<()>>,
}

/// What the server's threads share.
struct Shared {
    monitor: Monitor,
    limits: HttpLimits,
    stop: AtomicBool,
    /// The connection each handler is answering (a clone of it), shut
    /// down on stop so that no handler waits out a slow client.
    answering: Vec<Mutex<Option<TcpStream>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` and starts the threads.
    pub(crate) fn start<A: ToSocketAddrs + Display>(
        monitor: Monitor,
        addr: A,
        limits: HttpLimits,
    ) -> Result<Server, MonitorError> {
        let limits = limits.clamped();
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| MonitorError::Resolve {
                addr: addr.to_string(),
                source,
            })?
            .collect();
        let bind_error = |source: std::io::Error| MonitorError::Bind {
            addr: addr.to_string(),
            source: Box::new(source),
        };
        let listener = TcpListener::bind(&addrs[..]).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        monitor
            .http
            .max_connections
            .store(limits.max_connections, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            monitor,
            limits,
            stop: AtomicBool::new(false),
            answering: (0..limits.handlers).map(|_| Mutex::new(None)).collect(),
        });
        let mut server = Server {
            addr: bound,
            shared: Arc::clone(&shared),
            sampler: None,
            threads: Vec::with_capacity(limits.handlers + 2),
        };
        let spawn_error = |source: std::io::Error| MonitorError::Bind {
            addr: bound.to_string(),
            source: Box::new(source),
        };
        // (a queue as long as the limit: `accept` admits no more, so
        // handing over never blocks)
        let (queue, taken) = mpsc::sync_channel(limits.max_connections);
        let taken = Arc::new(Mutex::new(taken));
        for i in 0..limits.handlers {
            let (shared, taken) = (Arc::clone(&shared), Arc::clone(&taken));
            let thread = std::thread::Builder::new()
                .name(format!("cepheid-monitor-{i}"))
                .spawn(move || handle(&shared, &taken, i))
                .map_err(spawn_error)?;
            server.threads.push(thread);
        }
        let (sampler, stopped) = mpsc::channel();
        let monitor = shared.monitor.clone();
        let thread = std::thread::Builder::new()
            .name("cepheid-monitor-samples".into())
            .spawn(move || sample(&monitor, &stopped))
            .map_err(spawn_error)?;
        server.threads.push(thread);
        server.sampler = Some(sampler);
        let accepting = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cepheid-monitor-accept".into())
            .spawn(move || accept(&listener, &accepting, queue))
            .map_err(spawn_error)?;
        server.threads.push(thread);
        Ok(server)
    }

    /// The address it listens on (the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The limits it keeps (as given, made usable: at least one
    /// connection and one handler).
    pub fn limits(&self) -> HttpLimits {
        self.shared.limits
    }

    /// Stops the server and waits for its threads; an error if one of them
    /// panicked.
    pub fn stop(mut self) -> Result<(), MonitorError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), MonitorError> {
        if self.threads.is_empty() {
            return Ok(());
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        self.sampler = None;
        for slot in &self.shared.answering {
            if let Some(stream) = &*slot.lock().unwrap_or_else(PoisonError::into_inner) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // The accept thread waits in `accept`: a connection of our own
        // wakes it. If none can be made, it is left to end with the
        // process (the handlers and the sampler are still joined).
        // The handlers end when the accept thread has (the queue's sender
        // dropped), so they too are left then; the sampler is joined.
        let woken = TcpStream::connect_timeout(&reachable(self.addr), Duration::from_secs(5));
        let mut threads = std::mem::take(&mut self.threads);
        if woken.is_err() {
            let sampler = self.shared.limits.handlers;
            threads = vec![threads.swap_remove(sampler)];
        }
        let mut result = Ok(());
        // (the accept thread first: it was started last)
        for thread in threads.into_iter().rev() {
            if thread.join().is_err() {
                result = Err(MonitorError::ServerPanicked);
            }
        }
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// An address a connection to `bound` can be made on: the loopback one for
/// an unspecified address (`0.0.0.0`, `::`).
fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// The accept thread: admits connections up to the limit into the queue
/// and refuses those beyond it, until stopped.
fn accept(listener: &TcpListener, shared: &Shared, queue: SyncSender<TcpStream>) {
    let counters = &shared.monitor.http;
    let max = shared.limits.max_connections;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            // (out of descriptors, a connection reset while queued: the
            // server goes on, without spinning)
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if counters.open.load(Ordering::SeqCst) >= max {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            refuse(stream, max);
            continue;
        }
        counters.open.fetch_add(1, Ordering::SeqCst);
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        if queue.try_send(stream).is_err() {
            // (no handler left: only when one panicked)
            counters.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Answers a connection beyond the limit with `503` without waiting on
/// it (a fresh connection's send buffer takes the few bytes), then closes
/// it, after reading what it sent already (a little, without waiting):
/// closing on unread bytes would reset the connection under the answer.
fn refuse(mut stream: TcpStream, max: usize) {
    let _ = stream.set_nonblocking(true);
    let body = format!(
        "the monitor holds its limit of {max} connections: try again later\n\
         (cepheid run --metrics-max-connections)\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n{body}",
        http::TEXT,
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    let mut sent = [0; 4096];
    for _ in 0..4 {
        if !matches!(stream.read(&mut sent), Ok(n) if n > 0) {
            break;
        }
    }
}

/// A handler thread: answers the queue's connections one at a time until
/// the server stops.
fn handle(shared: &Shared, taken: &Mutex<Receiver<TcpStream>>, index: usize) {
    let counters = &shared.monitor.http;
    let mut buffer = vec![0; shared.limits.max_request_head];
    let slot = &shared.answering[index];
    loop {
        let next = taken.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(mut stream) = next else {
            return;
        };
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = stream.try_clone().ok();
        if !shared.stop.load(Ordering::SeqCst) {
            let route = |request: &Request<'_>| route(request, &shared.monitor);
            let count = |outcome| {
                let counter = match outcome {
                    Outcome::TooLarge => &counters.too_large,
                    Outcome::TimedOut => &counters.timed_out,
                    Outcome::Answered | Outcome::Closed => return,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            };
            http::exchange(&mut stream, &mut buffer, &shared.limits, route, count);
        }
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        drop(stream);
        counters.open.fetch_sub(1, Ordering::SeqCst);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The sampler thread: a sample of the series each second until stopped
/// (its sender dropped).
fn sample(monitor: &Monitor, stopped: &Receiver<()>) {
    let second = Duration::from_secs(1);
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            monitor.sample();
            next += second;
            if next <= now {
                next = now + second;
            }
        }
        match stopped.recv_timeout(next.saturating_duration_since(now)) {
            Err(RecvTimeoutError::Timeout) | Ok(()) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The answer to `request`.
fn route(request: &Request<'_>, monitor: &Monitor) -> Response {
    const JSON: &str = "application/json";
    let ok = |content_type, body: Vec<u8>| Response {
        status: 200,
        content_type,
        body,
        extra: None,
    };
    let failed = |e: MonitorError| Response::text(500, format!("{e}\n"));
    match request.path {
        "/" | "/index.html" => ok("text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
        "/metrics" => match monitor.prometheus() {
            Ok(text) => ok(crate::metrics::CONTENT_TYPE, text.into_bytes()),
            Err(e) => failed(e),
        },
        "/status.json" => match monitor.status_json() {
            Ok(json) => ok(JSON, json.into_bytes()),
            Err(e) => failed(e),
        },
        path => {
            let graph = path
                .strip_prefix("/graph/")
                .and_then(|rest| rest.strip_suffix(".json"))
                .and_then(|name| monitor.graph_json(name));
            match graph {
                Some(json) => ok(JSON, json.into_bytes()),
                None => Response::text(404, "not found\n"),
            }
        }
    }
}
