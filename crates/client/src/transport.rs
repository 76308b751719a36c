//! What carries a request to the server and its answer back
//! ([`Transport`]), and the real one ([`HttpTransport`]: hyper 1,
//! hyper-util's pooled client, rustls); and the time the client reads
//! and waits on ([`Clock`]). Tests give their own of both.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Pooled;
use hyper_util::rt::TokioExecutor;

/// A boxed future, sent between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request as the client sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path and query (`/v1/decide`), percent-encoded.
    pub path: String,
    /// Headers beyond the transport's own (`authorization`,
    /// `content-type`), names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (JSON), if any.
    pub body: Option<Vec<u8>>,
}

/// An answer: its status, headers (names in lower case) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, whole.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An attempt that got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No connection (refused, no route, a TLS handshake that failed), or
    /// the connection lost before the answer: the message says which.
    Unreachable(String),
    /// No answer within the attempt's timeout.
    Timeout,
}

/// What carries a request to the server and its answer back, within a
/// timeout (the attempt's: the call's time left). The transport ends the
/// attempt at its timeout ([`Fault::Timeout`]).
pub trait Transport: Send + Sync + 'static {
    /// Sends `request`, waits for its whole answer at most `timeout`.
    fn send(&self, request: Request, timeout: Duration) -> BoxFuture<'_, Result<Response, Fault>>;
}

/// The client's time: a monotonic clock and a sleep on it. The real one
/// is tokio's ([`TokioClock`]); the cases' runner moves its own.
pub trait Clock: Send + Sync + 'static {
    /// The time since the clock's origin (monotonic).
    fn now(&self) -> Duration;
    /// Waits `duration` on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: [`tokio::time::Instant`] and [`tokio::time::sleep`].
#[derive(Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The real transport: hyper 1 over hyper-util's pooled client (HTTP/1.1,
/// connections kept open and reused), TLS by rustls on `ring`, each
/// attempt bounded by tokio's timer. Calls must run within a tokio
/// runtime.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    base: http::Uri,
    client: Pooled<Connector, Full<Bytes>>,
}

impl HttpTransport {
    /// A transport to `url` (`http://` or `https://`, host, port), trusting
    /// the certificates of the PEM file `ca` for `https://`, else the
    /// system's roots.
    pub fn new(url: &str, ca: Option<&Path>) -> Result<HttpTransport, String> {
        let base: http::Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match base.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
        }
        if base.host().is_none() {
            return Err(format!("`{url}` has no host"));
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let tls = match ca {
            Some(path) => {
                use rustls_pki_types::pem::PemObject;
                use rustls_pki_types::CertificateDer;
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("the CA file {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("the CA file {}: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "the CA file {} holds no certificate",
                        path.display()
                    ));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                let mut roots = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system certificate rustls cannot read is left out.
                    let _ = roots.add(cert);
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Pooled::builder(TokioExecutor::new()).build(connector);
        Ok(HttpTransport { base, client })
    }

    async fn exchange(&self, request: Request) -> Result<Response, Fault> {
        let uri = format!(
            "{}{}",
            self.base.to_string().trim_end_matches('/'),
            request.path
        );
        let mut builder = http::Request::builder().method(request.method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|e| Fault::Unreachable(format!("the request cannot be sent: {e}")))?;
        let answer = self.client.request(request).await.map_err(|e| {
            let what = if e.is_connect() {
                "no connection"
            } else {
                "the connection was lost before the answer"
            };
            let mut message = format!("{what}: {}", chain(&e));
            if message.contains("CaUsedAsEndEntity") {
                message.push_str(
                    " (the server's certificate is a CA certificate: rustls takes only an \
                     end-entity one, basicConstraints CA:FALSE, as a server's)",
                );
            }
            Fault::Unreachable(message)
        })?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = answer.into_body().collect().await.map_err(|e| {
            Fault::Unreachable(format!(
                "the connection was lost in the answer: {}",
                chain(&e)
            ))
        })?;
        Ok(Response {
            status,
            headers,
            body: body.to_bytes().to_vec(),
        })
    }
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for HttpTransport {
    fn send(&self, request: Request, timeout: Duration) -> BoxFuture<'_, Result<Response, Fault>> {
        Box::pin(async move {
            match tokio::time::timeout(timeout, self.exchange(request)).await {
                Ok(result) => result,
                Err(_) => Err(Fault::Timeout),
            }
        })
    }
}
