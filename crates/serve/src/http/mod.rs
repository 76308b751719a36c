//! The HTTP front of `cepheid serve`: one listener speaking HTTP/1.1 and
//! HTTP/2 (h2c prior knowledge on plain TCP; ALPN `h2` and `http/1.1`
//! with TLS), the routes of `docs/api/openapi.yaml` and only those, each
//! request's envelope validated, authenticated, limited and counted
//! before the [`Decider`] behind it is asked.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn run(decider: Arc<dyn cepheid_serve::decider::Decider>) -> Result<(), cepheid_serve::http::StartError> {
//! use cepheid_serve::http::{start, FrontOptions};
//! let front = start(FrontOptions::default(), decider)?;
//! println!("listening on {}", front.local_addr());
//! let stopper = front.stopper(); // to another thread: stopper.stop()
//! front.join(); // returns once stopped and drained
//! # Ok(()) }
//! ```

mod auth;
mod envelope;
mod metrics;
mod service;
mod tls;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use tls::TlsFiles;

use crate::decider::Decider;
use auth::Tokens;
use metrics::Metrics;

/// The API document, served as `GET /openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../../../docs/api/openapi.yaml");

/// Every route the front serves: method and the document's path.
pub const ROUTES: [(&str, &str); 9] = [
    ("POST", "/v1/decide"),
    ("POST", "/v1/events"),
    ("POST", "/v1/lists/{list}"),
    ("GET", "/v1/decisions/{decision_id}"),
    ("GET", "/v1/scenes"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.yaml"),
];

/// How the front listens and what it takes.
#[derive(Clone, Debug)]
pub struct FrontOptions {
    /// The address to listen on (`127.0.0.1:0` takes a free port:
    /// [`Front::local_addr`] says which). Anything but loopback needs
    /// `auth_tokens`.
    pub listen: SocketAddr,
    /// TLS with a certificate and its key; plain TCP (HTTP/1.1 and h2c)
    /// when `None`.
    pub tls: Option<TlsFiles>,
    /// `--auth-tokens FILE`: one bearer token a line (`#` comments).
    /// When given, every route but `/openapi.yaml` asks for one.
    pub auth_tokens: Option<PathBuf>,
    /// The largest request body (413 `too_large` past it). 1 MiB.
    pub max_body_bytes: usize,
    /// The most fields an event holds, counted at every depth (members of
    /// objects and items of arrays). 1,000.
    pub max_fields: usize,
    /// The most events of one `POST /v1/events`. 1,000.
    pub max_batch: usize,
    /// The front's worker threads (its tokio runtime's): by default 2, or
    /// 1 where the process may run on one core only
    /// ([`default_threads`]).
    pub threads: usize,
    /// Connections held at once; one more is closed at once (counted).
    /// 1,024.
    pub max_connections: usize,
    /// A connection with no request under way for this long is closed:
    /// a request's head must come within it (slow clients), and it bounds
    /// an idle keep-alive connection and a TLS handshake. 30 s.
    pub header_read_timeout: Duration,
    /// A request's body must come within this, once its head has: else
    /// the connection is closed. 30 s.
    pub body_read_timeout: Duration,
    /// On [`Front::shutdown`], how long answers under way may take before
    /// their connections are closed regardless. 10 s.
    pub shutdown_grace: Duration,
}

impl Default for FrontOptions {
    fn default() -> FrontOptions {
        FrontOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8870)),
            tls: None,
            auth_tokens: None,
            max_body_bytes: 1 << 20,
            max_fields: 1_000,
            max_batch: 1_000,
            threads: default_threads(),
            max_connections: 1_024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Why the front did not start.
#[derive(Debug)]
pub enum StartError {
    /// A non-loopback address without tokens.
    OpenWithoutTokens(SocketAddr),
    /// The tokens file cannot be used.
    Tokens {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A TLS file cannot be used.
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An option out of its range.
    Options(String),
    /// The address cannot be listened on.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The runtime's threads cannot be started.
    Runtime(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::OpenWithoutTokens(addr) => write!(
                f,
                "refusing to listen on {addr} without --auth-tokens: anyone who can reach it \
                 could ask for decisions and record events. Give --auth-tokens FILE (one bearer \
                 token a line), or listen on loopback (--listen 127.0.0.1:{})",
                addr.port()
            ),
            StartError::Tokens { path, reason } => {
                write!(f, "--auth-tokens {}: {reason}", path.display())
            }
            StartError::Tls { path, reason } => write!(f, "TLS: {}: {reason}", path.display()),
            StartError::Options(why) => f.write_str(why),
            StartError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartError::Runtime(e) => write!(f, "cannot start the HTTP threads: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. } | StartError::Runtime(source) => Some(source),
            _ => None,
        }
    }
}

/// Stops a [`Front`] from any thread (cloneable).
#[derive(Clone, Debug)]
pub struct Stopper(Arc<watch::Sender<bool>>);

impl Stopper {
    /// Stop accepting connections, let the answers under way finish
    /// (within [`FrontOptions::shutdown_grace`]), then close. Returns at
    /// once; [`Front::join`] waits.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A running front: its listener bound, its threads serving.
pub struct Front {
    local_addr: SocketAddr,
    stopper: Stopper,
    runtime: Option<Runtime>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Front")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Front {
    /// The address bound (the port chosen for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the front from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Begins a graceful shutdown ([`Stopper::stop`]); returns at once.
    pub fn shutdown(&self) {
        self.stopper.stop();
    }

    /// Waits until the front has stopped: after [`Front::shutdown`] (or
    /// a [`Stopper`]), its connections drained or the grace run out.
    /// Blocks the calling thread, which must not be one of a tokio
    /// runtime's.
    pub fn join(mut self) {
        if let (Some(runtime), Some(task)) = (self.runtime.take(), self.task.take()) {
            let _ = runtime.block_on(task);
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What every connection and request of a front shares.
pub(crate) struct Shared {
    pub options: FrontOptions,
    pub decider: Arc<dyn Decider>,
    pub tokens: Option<Tokens>,
    pub metrics: Metrics,
    builder: auto::Builder<TokioExecutor>,
}

/// The front's threads unless told: 2, or 1 where the process may run on
/// one core only (`std::thread::available_parallelism`, which follows
/// the process's CPU affinity and quota). Two runtime workers on one core
/// wake each other to steal work: measured, about 1 more switch of
/// threads and 5 µs more CPU an answer at 10,000 requests a second
/// (`BENCHMARKS.md`, "Session 72").
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// The most threads the front starts (`--threads`).
pub const MAX_THREADS: usize = 1_024;

/// Binds `options.listen`, starts the front's threads and returns at once.
pub fn start(options: FrontOptions, decider: Arc<dyn Decider>) -> Result<Front, StartError> {
    for (name, value) in [
        ("threads", options.threads),
        ("max_connections", options.max_connections),
        ("max_body_bytes", options.max_body_bytes),
        ("max_fields", options.max_fields),
        ("max_batch", options.max_batch),
    ] {
        if value == 0 {
            return Err(StartError::Options(format!("{name} must be at least 1")));
        }
    }
    // (each is a thread started now: a mistyped count would exhaust the
    // process's threads or memory instead of being said)
    if options.threads > MAX_THREADS {
        return Err(StartError::Options(format!(
            "threads must be at most {MAX_THREADS} (got {})",
            options.threads
        )));
    }
    let tokens = match &options.auth_tokens {
        Some(path) => Some(Tokens::read(path).map_err(|reason| StartError::Tokens {
            path: path.clone(),
            reason,
        })?),
        None => None,
    };
    if tokens.is_none() && !options.listen.ip().is_loopback() {
        return Err(StartError::OpenWithoutTokens(options.listen));
    }
    let tls = match &options.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(
            tls::config(files).map_err(|(path, reason)| StartError::Tls { path, reason })?,
        )),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .thread_name("cepheid-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(StartError::Runtime)?;
    let listener = {
        let _context = runtime.enter();
        bind(options.listen).map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?
    };
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: options.listen,
        source,
    })?;

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(options.header_read_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    let shared = Arc::new(Shared {
        metrics: Metrics::new(options.max_connections),
        options,
        decider,
        tokens,
        builder,
    });
    let (stop, stopped) = watch::channel(false);
    let task = runtime.spawn(accept(listener, shared, tls, stopped));
    Ok(Front {
        local_addr,
        stopper: Stopper(Arc::new(stop)),
        runtime: Some(runtime),
        task: Some(task),
    })
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The accept loop: until stopped, then drains the connections (bounded).
async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.options.max_connections));
    let (open, mut drained) = watch::channel(0usize);
    let open = Arc::new(open);
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_per_connection(&e) => continue,
            Err(_) => {
                // Out of descriptors or memory: wait a little rather than spin.
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.metrics.refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        shared.metrics.connections.inc();
        shared.metrics.open_connections.inc();
        open.send_modify(|n| *n += 1);
        let guard = Held {
            _permit: permit,
            open: open.clone(),
            shared: shared.clone(),
        };
        let shared = shared.clone();
        let tls = tls.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            connection(stream, &shared, tls, stopped).await;
            drop(guard);
        });
    }
    drop(listener);
    let grace = shared.options.shutdown_grace;
    let _ = tokio::time::timeout(grace, drained.wait_for(|n| *n == 0)).await;
}

/// Accept errors that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// A connection held: its slot under the limit, counted open.
struct Held {
    _permit: OwnedSemaphorePermit,
    open: Arc<watch::Sender<usize>>,
    shared: Arc<Shared>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.metrics.open_connections.dec();
        self.open.send_modify(|n| *n -= 1);
    }
}

async fn connection(
    stream: TcpStream,
    shared: &Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    match tls {
        None => serve(stream, shared, stopped).await,
        Some(acceptor) => {
            let timeout = shared.options.header_read_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve(stream, shared, stopped).await,
                Ok(Err(_)) => {
                    shared.metrics.tls_failures.inc();
                }
                Err(_) => {
                    shared.metrics.tls_failures.inc();
                    shared.metrics.timed_out.inc();
                }
            }
        }
    }
}

/// One connection's requests under way and when it last had one, for
/// closing it when no request comes.
pub(crate) struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    pub fn end(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// When the connection is idle too long if nothing happens (`None`
    /// while a request is under way).
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(self.start + last + idle)
    }
}

async fn serve<I>(io: I, shared: &Arc<Shared>, mut stopped: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = service::Service::new(shared.clone(), activity.clone());
    let conn = shared.builder.serve_connection(
        TokioIo::new(io),
        hyper::service::service_fn(move |req| service.call(req)),
    );
    tokio::pin!(conn);
    let idle = shared.options.header_read_timeout;
    let mut closing: Option<Instant> = None;
    loop {
        let wake = match closing {
            Some(deadline) => deadline,
            None => activity
                .idle_deadline(idle)
                .unwrap_or_else(|| Instant::now() + idle),
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                        shared.metrics.timed_out.inc();
                    }
                }
                return;
            }
            _ = stopped.wait_for(|s| *s), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + shared.options.shutdown_grace);
            }
            _ = tokio::time::sleep_until(wake) => {
                if closing.is_some() {
                    return;
                }
                if activity.idle_deadline(idle).is_some_and(|d| d <= Instant::now()) {
                    shared.metrics.timed_out.inc();
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + idle);
                }
            }
        }
    }
}
