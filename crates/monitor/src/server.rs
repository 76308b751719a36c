//! The HTTP server: `/metrics`, `/status.json`, `/graph/NAME.json` and the
//! page at `/`, on threads of its own.

use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response};

use crate::error::MonitorError;
use crate::Monitor;

/// The live page (one file: HTML, inline CSS and JavaScript).
pub const PAGE: &str = include_str!("page.html");

/// Threads answering requests (the first also takes the samples): a slow
/// client holds one, not the page of another.
const THREADS: usize = 2;

/// A running server (see [`Monitor::serve`]). Stops when dropped, or with
/// [`stop`](Server::stop).
pub struct Server {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` and starts the threads.
    pub(crate) fn start<A: ToSocketAddrs + Display>(
        monitor: Monitor,
        addr: A,
    ) -> Result<Server, MonitorError> {
        let named = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| MonitorError::Resolve {
                addr: addr.to_string(),
                source,
            })?
            .collect();
        let http = tiny_http::Server::http(&addrs[..]).map_err(|source| MonitorError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let bound = http
            .server_addr()
            .to_ip()
            .or_else(|| addrs.first().copied())
            .ok_or_else(|| MonitorError::Resolve {
                addr: named(&addrs),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"),
            })?;
        let http = Arc::new(http);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(THREADS);
        for i in 0..THREADS {
            let (http, stop, monitor) = (http.clone(), stop.clone(), monitor.clone());
            let thread = std::thread::Builder::new()
                .name(format!("cepheid-monitor-{i}"))
                .spawn(move || serve(&http, &stop, &monitor, i == 0))
                .map_err(|source| MonitorError::Bind {
                    addr: bound.to_string(),
                    source: Box::new(source),
                })?;
            threads.push(thread);
        }
        Ok(Server {
            addr: bound,
            http,
            stop,
            threads,
        })
    }

    /// The address it listens on (the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its threads; an error if one of them
    /// panicked.
    pub fn stop(mut self) -> Result<(), MonitorError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), MonitorError> {
        self.stop.store(true, Ordering::SeqCst);
        self.http.unblock();
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
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

/// One thread: answers requests until stopped; `sampler` also takes a
/// sample of the series each second.
fn serve(http: &tiny_http::Server, stop: &AtomicBool, monitor: &Monitor, sampler: bool) {
    let second = Duration::from_secs(1);
    let mut next_sample = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if sampler && now >= next_sample {
            monitor.sample();
            next_sample += second;
            if next_sample <= now {
                next_sample = now + second;
            }
        }
        let wait = if sampler {
            next_sample.saturating_duration_since(now)
        } else {
            second
        };
        match http.recv_timeout(wait) {
            Ok(Some(request)) => answer(request, monitor),
            Ok(None) => {}
            // A connection that failed: the server goes on.
            Err(_) => {}
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

/// Answers one request. A write to a client that went away is ignored.
fn answer(request: Request, monitor: &Monitor) {
    let path = request
        .url()
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_string();
    if !matches!(request.method(), Method::Get | Method::Head) {
        let response = Response::from_string("only GET\n")
            .with_status_code(405)
            .with_header(header("Allow", "GET, HEAD"));
        let _ = request.respond(response);
        return;
    }
    let (status, content_type, body) = route(&path, monitor);
    let response = Response::from_data(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"));
    let _ = request.respond(response);
}

/// The status code, content type and body for `path`.
fn route(path: &str, monitor: &Monitor) -> (u16, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/" | "/index.html" => (200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
        "/metrics" => match monitor.prometheus() {
            Ok(text) => (200, crate::metrics::CONTENT_TYPE, text.into_bytes()),
            Err(e) => (500, TEXT, format!("{e}\n").into_bytes()),
        },
        "/status.json" => match monitor.status_json() {
            Ok(json) => (200, JSON, json.into_bytes()),
            Err(e) => (500, TEXT, format!("{e}\n").into_bytes()),
        },
        _ => {
            let graph = path
                .strip_prefix("/graph/")
                .and_then(|rest| rest.strip_suffix(".json"))
                .and_then(|name| monitor.graph_json(name));
            match graph {
                Some(json) => (200, JSON, json.into_bytes()),
                None => (404, TEXT, b"not found\n".to_vec()),
            }
        }
    }
}
