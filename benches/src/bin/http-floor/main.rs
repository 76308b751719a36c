//! `http-floor`: the cost of the HTTP front alone, for `cepheid serve`'s
//! CPU goal (issue 63: 50,000 decisions a second per core;
//! BENCHMARKS.md, "Session 71").
//!
//! ```text
//! http-floor [--threads 2] [--parse]    # prints `listening on http://…`
//! serve-load --url http://127.0.0.1:PORT --rate 10000 ...
//! ```
//!
//! A server on the stack `cepheid serve` is built on (tokio's
//! multi-threaded runtime, hyper's automatic HTTP/1.1 and HTTP/2
//! connections, as `crates/serve/src/http/mod.rs` sets them up), which
//! does nothing a decision needs: it reads each request's whole body
//! and answers every `POST` with the same JSON (a decision's shape, with
//! `degraded` and `elapsed_us` for `serve-load`). With `--parse` it also
//! parses the body as JSON (`serde_json::Value`), as the service does.
//! Its CPU time per request, measured as the service's is
//! (`benches/http_floor.sh`), is the least any decision can cost over
//! this transport on this machine: the kernel's TCP on loopback, the
//! runtime's wakes, hyper's parsing and framing.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[derive(Parser, Debug)]
#[command(
    name = "http-floor",
    about = "The HTTP front alone, answering one fixed decision"
)]
struct Args {
    /// The address to listen on (port 0: any free one, printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The runtime's worker threads (`cepheid serve --threads`, default 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Parse each body as JSON too.
    #[arg(long)]
    parse: bool,
}

/// The answer to every request: the size and shape of a decision of
/// `patterns/risk` that fired no rule.
const ANSWER: &str = r#"{"decision_id":"d-0000000000000001","event_id":"floor","scene":"payment","outcome":"approve","score":0,"rules":[],"shadow":[],"rules_version":1,"degraded":false,"repeated":false,"elapsed_us":0}"#;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .thread_name("floor-http")
        .enable_io()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let parse = args.parse;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", args.listen));
        let addr = listener.local_addr().expect("the bound address");
        println!("listening on http://{addr}");
        let builder = std::sync::Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, parse));
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    parse: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if parse {
        let parsed = serde_json::from_slice::<serde_json::Value>(&body);
        std::hint::black_box(&parsed);
    }
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
        .expect("a response"))
}
