//! One HTTP/1.x exchange on a connection, bounded: the request's head read
//! within a size and a time, never a body; one answer, then the connection
//! closed (`Connection: close`, no keep-alive).
//!
//! The server ([`crate::server`]) hands each accepted connection to one of
//! its handler threads, which calls [`exchange`]. Nothing here allocates
//! per connection: the head is read into the handler's own buffer of
//! [`HttpLimits::max_request_head`] bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::HttpLimits;

/// What became of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A request was read and answered (whatever its status).
    Answered,
    /// The head went past the limit: answered 431.
    TooLarge,
    /// No complete head within the time allowed: closed (after 408 when
    /// some of it had come).
    TimedOut,
    /// The client closed, or the connection failed, before a whole head.
    Closed,
}

/// A parsed request line: what the routes need.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// `GET` or `HEAD` (other methods are answered 405 before routing).
    pub(crate) head_only: bool,
    /// The path, without its query or fragment.
    pub(crate) path: &'a str,
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// One more header line (`Name: value`), if any.
    pub(crate) extra: Option<&'static str>,
}

impl Response {
    /// A plain-text answer.
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into().into_bytes(),
            extra: None,
        }
    }
}

/// The content type of plain-text answers.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// What a client may still send after its answer that is read and thrown
/// away before the connection closes (so that the close does not reset
/// the connection under an answer the client has not read yet).
const DRAIN_BYTES: usize = 64 * 1024;

/// How long that reading waits for the client to close, at most.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads one request from `stream` into `buffer` (its length is the limit
/// on the head), answers it with `route`, and closes the connection;
/// `count` learns the outcome before the client can see it.
pub(crate) fn exchange(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    limits: &HttpLimits,
    route: impl FnOnce(&Request<'_>) -> Response,
    count: impl FnOnce(Outcome),
) {
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    let deadline = Instant::now() + limits.request_timeout;
    let (outcome, response, head_only) = match read_head(stream, buffer, deadline) {
        Head::Complete(end) => match parse(&buffer[..end]) {
            Ok(request) => (Outcome::Answered, route(&request), request.head_only),
            Err(refusal) => (Outcome::Answered, refusal, false),
        },
        Head::TooLarge => {
            let message = format!(
                "the request's head is longer than the monitor takes ({} bytes)\n",
                buffer.len()
            );
            (Outcome::TooLarge, Response::text(431, message), false)
        }
        Head::TimedOut { started: true } => {
            let message = "no whole request in time\n";
            (Outcome::TimedOut, Response::text(408, message), false)
        }
        Head::TimedOut { started: false } => {
            count(Outcome::TimedOut);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        Head::Closed => return count(Outcome::Closed),
    };
    count(outcome);
    if write_response(stream, &response, head_only).is_ok() {
        close_gently(stream, buffer);
    }
}

/// How reading a request's head ended.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The head is the buffer's first bytes up to here (its blank line
    /// included).
    Complete(usize),
    /// The buffer filled up without the blank line.
    TooLarge,
    /// The deadline passed; `started` when some bytes had come.
    TimedOut { started: bool },
    /// The client closed first, or the connection failed.
    Closed,
}

/// Reads until the blank line that ends a head, the buffer full, the
/// deadline or the end of the connection. What follows the head in the
/// buffer (a body, another request) is ignored.
fn read_head(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> Head {
    let mut filled = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Head::TimedOut {
                started: filled > 0,
            };
        }
        if filled == buffer.len() {
            return Head::TooLarge;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Head::Closed;
        }
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => return Head::Closed,
            Ok(n) => {
                // (the blank line may straddle the last read)
                let from = filled.saturating_sub(3);
                filled += n;
                if let Some(end) = head_end(&buffer[from..filled]) {
                    return Head::Complete(from + end);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Head::TimedOut {
                    started: filled > 0,
                }
            }
            Err(_) => return Head::Closed,
        }
    }
}

/// Where the head in `bytes` ends, after its blank line (`\r\n\r\n`, or a
/// bare `\n\n`, which RFC 9112 lets a server take).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The request line of a head, or the answer refusing it: 400 when it is
/// not `METHOD TARGET HTTP/1.x`, 505 for another version, 405 for a
/// method other than `GET` and `HEAD`. Header fields are not read: the
/// routes need none, and a body is never read.
fn parse(head: &[u8]) -> Result<Request<'_>, Response> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let bad = || Response::text(400, "not an HTTP request\n");
    let line = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/") {
        return Err(bad());
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(Response::text(505, "only HTTP/1.0 and HTTP/1.1\n"));
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Err(Response {
                extra: Some("Allow: GET, HEAD"),
                ..Response::text(405, "only GET\n")
            })
        }
    };
    // The origin form (`/path?query`), or the absolute form a proxy sends
    // (`http://host/path`).
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !target.starts_with('/') {
        return Err(bad());
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    Ok(Request { head_only, path })
}

/// The reason phrase of the statuses the monitor answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes `response` (its body left out for `HEAD`), one write for the
/// head and one for the body.
pub(crate) fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
    );
    if let Some(extra) = response.extra {
        head.push_str(extra);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

/// Ends the connection after an answer: says the end of it (FIN), then
/// reads and drops what the client still sends, a bounded amount for a
/// bounded time, until it closes. Closing with unread bytes would reset
/// the connection, and a reset can destroy the answer before the client
/// reads it (a request with a body, or a head too large).
fn close_gently(stream: &mut TcpStream, buffer: &mut [u8]) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + DRAIN_TIME;
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(buffer) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(head: &str) -> Result<String, u16> {
        parse(head.as_bytes())
            .map(|r| r.path.to_string())
            .map_err(|r| r.status)
    }

    #[test]
    fn request_lines_parse_or_are_refused_with_their_status() {
        assert_eq!(
            path("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok("/metrics".into())
        );
        assert_eq!(path("GET /a?b#c HTTP/1.0\n\n"), Ok("/a".into()));
        assert_eq!(
            path("GET http://h:1/status.json HTTP/1.1\r\n\r\n"),
            Ok("/status.json".into())
        );
        assert_eq!(path("GET http://h HTTP/1.1\r\n\r\n"), Ok("/".into()));
        assert!(parse(b"HEAD / HTTP/1.1\r\n\r\n").unwrap().head_only);
        assert_eq!(path("GET\r\n\r\n"), Err(400));
        assert_eq!(path("GET  / HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(path("GET nope HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(path("GET / FTP/1.0\r\n\r\n"), Err(400));
        assert_eq!(path("\u{0}\u{ff} garbage\r\n\r\n"), Err(400));
        assert_eq!(path("GET / HTTP/9.9\r\n\r\n"), Err(505));
        assert_eq!(path("POST / HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(
            parse(b"\xff / HTTP/1.1\r\n\r\n")
                .map(|_| ())
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn a_head_ends_at_its_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nrest\r\n\r\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
